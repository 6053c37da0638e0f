//! Moving bytes out of the byte queues behind pipes and pseudo-terminals.
//!
//! `VecDeque<u8>` keeps its bytes in at most two runs; copying an element at a time through
//! `drain` (as the pipe once did) costs a few nanoseconds a byte, which made a 4 KiB pipe
//! read several microseconds. These copy each run with one `copy_from_slice`.

use std::collections::VecDeque;

/// Copies the first `min(out.len(), queue.len())` bytes of `queue` into `out` and removes them.
/// Returns how many were moved.
pub(crate) fn take_front(queue: &mut VecDeque<u8>, out: &mut [u8]) -> usize {
    let n = out.len().min(queue.len());
    let (a, b) = queue.as_slices();
    let from_a = n.min(a.len());
    out[..from_a].copy_from_slice(&a[..from_a]);
    out[from_a..n].copy_from_slice(&b[..n - from_a]);
    // Draining a run of `u8` drops nothing: this only moves the queue's head.
    queue.drain(..n);
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn takes_across_the_wrap_and_no_more_than_either_side_holds() {
        let mut q: VecDeque<u8> = VecDeque::with_capacity(8);
        q.extend([0, 0, 0, 0, 0, 0]);
        q.drain(..5);
        // The queue now wraps: [0] at the end of the ring, then 1..=6 from its start.
        q.extend(1..=6);
        assert!(
            !q.as_slices().1.is_empty(),
            "the test needs a wrapped queue"
        );
        let mut out = [9u8; 4];
        assert_eq!(take_front(&mut q, &mut out), 4);
        assert_eq!(out, [0, 1, 2, 3]);
        let mut big = [9u8; 10];
        assert_eq!(take_front(&mut q, &mut big), 3);
        assert_eq!(&big[..4], &[4, 5, 6, 9]);
        assert!(q.is_empty());
        assert_eq!(take_front(&mut q, &mut big), 0);
    }
}
