//! A global allocator for the fuzz runner's test binary that refuses what no input of a
//! small size should make a parser allocate: one allocation over [`MAX_ONE`], or more
//! than [`MAX_LIVE`] live at once. A refusal prints which limit was hit and the target
//! being run, and is counted per thread ([`refused`]): the runner fails the case even when
//! the code under test survived it (`Vec::try_reserve`, `read_to_end` turn a refusal into
//! an error), and an infallible allocation aborts the process. Either way an unbounded
//! allocation is a failure, not a swap storm.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The largest single allocation allowed.
pub const MAX_ONE: usize = 256 << 20;
/// The most bytes live at once (every test thread together).
pub const MAX_LIVE: usize = 1536 << 20;

pub struct LimitAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// What this thread is running, for the message (set by the runner).
    static CURRENT: std::cell::Cell<&'static str> = const { std::cell::Cell::new("") };
}

thread_local! {
    /// Allocations refused on this thread.
    static REFUSED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many allocations were refused on this thread so far.
pub fn refused() -> usize {
    REFUSED.try_with(|r| r.get()).unwrap_or(0)
}

/// Records the target this thread runs, for the message of a refused allocation.
pub fn set_current(target: &'static str) {
    CURRENT.with(|c| c.set(target));
}

fn refuse(what: &str, size: usize) {
    let _ = REFUSED.try_with(|r| r.set(r.get() + 1));
    // No allocation here: write(2) of a fixed buffer.
    let mut buf = [0u8; 200];
    let mut n = 0;
    let mut put = |s: &[u8]| {
        for &b in s {
            if n < buf.len() {
                buf[n] = b;
                n += 1;
            }
        }
    };
    put(b"fuzz: refused an allocation (");
    put(what.as_bytes());
    put(b") of ");
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut v = size;
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    put(&digits[i..]);
    put(b" bytes while running target ");
    if let Ok(cur) = CURRENT.try_with(|c| c.get()) {
        put(cur.as_bytes());
    }
    put(b"\n");
    // SAFETY: writes `n` initialized bytes of `buf` to stderr; no memory is retained.
    unsafe {
        libc::write(2, buf.as_ptr().cast(), n);
    }
}

/// Counts `size` new bytes as live, or refuses them (and says why) when one allocation or
/// the live total would pass its limit.
fn admit(size: usize) -> bool {
    if size > MAX_ONE {
        refuse("one allocation over the limit", size);
        return false;
    }
    if LIVE.fetch_add(size, Ordering::Relaxed) + size > MAX_LIVE {
        LIVE.fetch_sub(size, Ordering::Relaxed);
        refuse("live memory over the limit", size);
        return false;
    }
    true
}

// SAFETY: every call forwards to `System` with the same layout; the counter only
// decides whether to forward, and a refusal returns null as the contract allows.
unsafe impl GlobalAlloc for LimitAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let size = layout.size();
        if !admit(size) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc(layout) };
        if p.is_null() {
            LIVE.fetch_sub(size, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc`/`realloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let size = layout.size();
        if !admit(size) {
            return std::ptr::null_mut();
        }
        // SAFETY: forwarded with the caller's layout.
        let p = unsafe { System.alloc_zeroed(layout) };
        if p.is_null() {
            LIVE.fetch_sub(size, Ordering::Relaxed);
        }
        p
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let old = layout.size();
        if new_size > MAX_ONE {
            refuse("one allocation over the limit", new_size);
            return std::ptr::null_mut();
        }
        if new_size > old {
            let grow = new_size - old;
            if LIVE.fetch_add(grow, Ordering::Relaxed) + grow > MAX_LIVE {
                LIVE.fetch_sub(grow, Ordering::Relaxed);
                refuse("live memory over the limit", new_size);
                return std::ptr::null_mut();
            }
        } else {
            LIVE.fetch_sub(old - new_size, Ordering::Relaxed);
        }
        // SAFETY: `ptr` came from this allocator with `layout`; forwarded as is.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if p.is_null() {
            // The old block stays: undo the change.
            if new_size > old {
                LIVE.fetch_sub(new_size - old, Ordering::Relaxed);
            } else {
                LIVE.fetch_add(old - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}
