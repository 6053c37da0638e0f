//! RLIMIT_STACK: the size of the main thread's stack at execve, and where the mmap area
//! starts below it (Linux's mmap_base, arch/x86/mm/mmap.c).
//!
//! Linux maps a small stack and grows it on faults until it would pass the soft limit in
//! force at the time of the fault. Here the stack doesn't grow: the whole reservation is
//! mapped at execve (pages are still populated on first touch), so the limit is read once,
//! at execve, and the reservation is capped, as gVisor caps it.

use platform::PAGE_SIZE;

use crate::loader::USER_ADDR_LIMIT;
use crate::mm::page_align_down;

/// The largest stack reserved. A larger (or unlimited) RLIMIT_STACK gets this much: the
/// reservation counts toward RLIMIT_AS, so it can't follow an unlimited limit.
pub const MAX_STACK: u64 = 128 << 20;
/// The smallest: the 128 KiB Linux's setup_arg_pages always adds below the arguments.
pub const MIN_STACK: u64 = 128 << 10;
/// Linux keeps at least this much between the stack top and the mmap area.
const GAP_MIN: u64 = 128 << 20;
/// Linux's stack_guard_gap: 256 pages the stack never grows into another mapping within.
const STACK_GUARD_GAP: u64 = 256 * PAGE_SIZE;
/// How far the stack top is randomized, in pages (x86-64 STACK_RND_MASK: 22 bits).
pub const STACK_RANDOM_PAGES: u64 = 1 << 22;
/// How far the mmap base is randomized, in pages (x86-64 mmap_rnd_bits: 28).
const MMAP_RANDOM_PAGES: u64 = 1 << 28;

/// Where the main thread's stack and the mmap area go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StackLayout {
    /// Lowest address of the stack; it ends at the `stack_top` it was computed from.
    pub bottom: u64,
    pub size: u64,
    /// Top of the area mmap allocates from, top-down.
    pub mmap_base: u64,
}

/// The stack reserved for a soft RLIMIT_STACK of `soft` bytes.
pub fn reservation(soft: u64) -> u64 {
    if soft == libc::RLIM_INFINITY {
        return MAX_STACK;
    }
    page_align_down(soft).clamp(MIN_STACK, MAX_STACK)
}

/// The layout for a stack ending at `stack_top` (at most `STACK_RANDOM_PAGES` pages below
/// the top of the address space) under a soft RLIMIT_STACK of `soft`; `random` picks the
/// mmap base's offset.
pub fn layout(stack_top: u64, soft: u64, random: u64) -> StackLayout {
    let task_size = USER_ADDR_LIMIT;
    let size = reservation(soft);
    let bottom = stack_top - size;
    // Linux leaves the limit, the stack's randomization and the guard gap between the top
    // of the address space and the mmap area, within [128 MiB, 5/6 of the space]. An
    // unlimited stack can't grow past the reservation here, so it needs no more room.
    let limit = if soft == libc::RLIM_INFINITY {
        size
    } else {
        soft
    };
    let pad = STACK_RANDOM_PAGES * PAGE_SIZE + STACK_GUARD_GAP;
    let gap = limit.saturating_add(pad).clamp(GAP_MIN, task_size / 6 * 5);
    let rnd = (random % MMAP_RANDOM_PAGES) * PAGE_SIZE;
    let mmap_base = page_align_down(task_size.saturating_sub(gap).saturating_sub(rnd))
        .min(bottom.saturating_sub(STACK_GUARD_GAP));
    StackLayout {
        bottom,
        size,
        mmap_base,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TASK: u64 = USER_ADDR_LIMIT;

    #[test]
    fn reservation_follows_the_soft_limit_within_bounds() {
        assert_eq!(reservation(8 << 20), 8 << 20);
        assert_eq!(reservation((1 << 20) + 5), 1 << 20);
        assert_eq!(reservation(4096), MIN_STACK);
        assert_eq!(reservation(1 << 40), MAX_STACK);
        assert_eq!(reservation(libc::RLIM_INFINITY), MAX_STACK);
    }

    #[test]
    fn mmap_base_is_below_the_stack_and_its_gap() {
        let lowest_top = TASK - PAGE_SIZE - STACK_RANDOM_PAGES * PAGE_SIZE;
        for soft in [0, 1 << 20, 8 << 20, 1 << 30, 1 << 45, libc::RLIM_INFINITY] {
            for random in [0, u64::MAX] {
                let l = layout(lowest_top, soft, random);
                assert_eq!(l.bottom + l.size, lowest_top);
                assert!(l.mmap_base + STACK_GUARD_GAP <= l.bottom, "soft {soft:#x}");
                assert!(l.mmap_base <= TASK - GAP_MIN);
                assert!(l.mmap_base >= TASK / 6 - MMAP_RANDOM_PAGES * PAGE_SIZE);
                assert_eq!(l.mmap_base % PAGE_SIZE, 0);
            }
        }
    }

    #[test]
    fn a_larger_limit_moves_the_mmap_base_down() {
        let top = TASK - PAGE_SIZE;
        let small = layout(top, 8 << 20, 0);
        let large = layout(top, 1 << 30, 0);
        assert_eq!(small.mmap_base - large.mmap_base, (1 << 30) - (8 << 20));
    }
}
