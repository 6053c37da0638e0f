//! A per-thread scratch buffer for data passing through the sentry (socket and stream
//! reads and writes), instead of a fresh zeroed `Vec` per call.
//!
//! A 1 MiB `vec![0; n]` per call costs an allocation the size of a large chunk (an mmap
//! and the page faults of touching it, when the allocator does not keep it) and a memset
//! of the whole length, however little the call then moves: in a profile of the loopback
//! throughput bench (1 MiB writes), memset alone was 3.4% of the sandbox's CPU time. The
//! buffer here is allocated once per thread, page-aligned (so host copies into it start on
//! a page), zeroed once, and grown when a call wants more, up to [`MAX_KEPT`]. What it holds
//! between calls is data of this thread's earlier calls, which on the ring poller (and a
//! pooled vCPU thread) served other tasks: a caller passes on only bytes it wrote itself.

use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::cell::Cell;
use std::ptr::NonNull;

/// Largest buffer a thread keeps between calls (the sentry's chunk for data moved per host
/// call); a call asking for more gets a buffer of its own for its duration.
const MAX_KEPT: usize = 1 << 20;
const PAGE: usize = 4096;

/// A page-aligned, zero-initialised heap buffer.
struct Buffer {
    ptr: NonNull<u8>,
    cap: usize,
}

impl Buffer {
    fn new(len: usize) -> Buffer {
        let cap = len.max(1).div_ceil(PAGE) * PAGE;
        let layout = Layout::from_size_align(cap, PAGE).expect("scratch buffer layout");
        // SAFETY: the layout has a non-zero size.
        let raw = unsafe { alloc_zeroed(layout) };
        let ptr = NonNull::new(raw).unwrap_or_else(|| std::alloc::handle_alloc_error(layout));
        Buffer { ptr, cap }
    }

    fn slice(&mut self, len: usize) -> &mut [u8] {
        debug_assert!(len <= self.cap);
        // SAFETY: ptr points at cap initialised bytes owned by this buffer, len <= cap, and
        // the borrow of self keeps anyone else from using them meanwhile.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), len.min(self.cap)) }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout (cap is a multiple of PAGE, already
        // validated there), freed once.
        unsafe {
            dealloc(
                self.ptr.as_ptr(),
                Layout::from_size_align_unchecked(self.cap, PAGE),
            )
        }
    }
}

thread_local! {
    static KEPT: Cell<Option<Buffer>> = const { Cell::new(None) };
}

/// Runs `f` with a buffer of `len` bytes. Its contents are unspecified (earlier calls'
/// data, or zeros): `f` must pass on only what it wrote. A nested call gets a buffer
/// of its own.
pub fn with<R>(len: usize, f: impl FnOnce(&mut [u8]) -> R) -> R {
    let mut buf = match KEPT.with(|k| k.take()) {
        Some(b) if b.cap >= len => b,
        _ => Buffer::new(len),
    };
    let r = f(buf.slice(len));
    if buf.cap <= MAX_KEPT {
        KEPT.with(|k| {
            // Keep the larger of this one and one a nested call may have left.
            match k.take() {
                Some(other) if other.cap > buf.cap => k.set(Some(other)),
                _ => k.set(Some(buf)),
            }
        });
    }
    r
}

#[cfg(test)]
mod tests {
    use super::with;

    #[test]
    fn sizes_alignment_and_nesting() {
        with(10, |b| {
            assert_eq!(b.len(), 10);
            assert_eq!(b.as_ptr() as usize % 4096, 0);
            b.fill(7);
            with(5000, |inner| {
                assert_eq!(inner.len(), 5000);
                assert_ne!(inner.as_ptr(), b.as_ptr());
            });
        });
        // The larger buffer is kept and reused.
        let a = with(100, |b| b.as_ptr() as usize);
        let b = with(4000, |b| b.as_ptr() as usize);
        assert_eq!(a, b);
        with(0, |b| assert!(b.is_empty()));
        with(3 << 20, |b| assert_eq!(b.len(), 3 << 20));
    }
}
