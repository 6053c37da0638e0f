//! futex_waitv(2): one wait on up to 128 futexes (Linux's kernel/futex/syscalls.c and
//! waitwake.c), over crate::futex's queues, so a plain FUTEX_WAKE on any of them wakes it.

use platform::UserRegs;

use crate::errno::{Errno, SysResult};
use crate::futex::{self, Key, WaitResult};
use crate::task::TaskState;

/// FUTEX_WAITV_MAX.
const MAX_FUTEXES: u64 = 128;
/// sizeof(struct futex_waitv): u64 val, u64 uaddr, u32 flags, u32 __reserved.
const ENTRY_SIZE: u64 = 24;
const FUTEX2_SIZE_U32: u32 = 0x02;
const FUTEX2_SIZE_MASK: u32 = 0x03;
/// FUTEX2_PRIVATE is FUTEX_PRIVATE_FLAG.
const FUTEX2_PRIVATE: u32 = 128;

/// One parsed `struct futex_waitv`.
struct Entry {
    val: u32,
    uaddr: u64,
    private: bool,
}

/// Reads entry `i` of the vector at `base`, with Linux's futex_parse_waitv checks: only
/// FUTEX2_SIZE_U32 and FUTEX2_PRIVATE (FUTEX2_NUMA and FUTEX2_MPOL are EINVAL, as before
/// Linux 6.16), `__reserved` 0, a value that fits in 32 bits.
fn read_entry(t: &TaskState, base: u64, i: u64) -> Result<Entry, Errno> {
    let addr = base.checked_add(i * ENTRY_SIZE).ok_or(Errno::EFAULT)?;
    let mut raw = [0u8; ENTRY_SIZE as usize];
    t.mm.copy_in(addr, &mut raw)?;
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&raw[o..o + 8]);
        u64::from_le_bytes(b)
    };
    let u32_at = |o: usize| {
        let mut b = [0u8; 4];
        b.copy_from_slice(&raw[o..o + 4]);
        u32::from_le_bytes(b)
    };
    let (val, uaddr, flags, reserved) = (u64_at(0), u64_at(8), u32_at(16), u32_at(20));
    if flags & !(FUTEX2_SIZE_MASK | FUTEX2_PRIVATE) != 0 || reserved != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & FUTEX2_SIZE_MASK != FUTEX2_SIZE_U32 {
        return Err(Errno::EINVAL);
    }
    let val = u32::try_from(val).map_err(|_| Errno::EINVAL)?;
    Ok(Entry {
        val,
        uaddr,
        private: flags & FUTEX2_PRIVATE != 0,
    })
}

/// futex_waitv(waiters, nr_futexes, flags, timeout, clockid): sleeps while every word holds
/// its value, until a FUTEX_WAKE on one of them (the call returns its index: the highest,
/// if several were woken), the absolute `timeout` on `clockid` (CLOCK_MONOTONIC or
/// CLOCK_REALTIME; ignored without a timeout), or a signal (restarted under SA_RESTART or
/// when no handler runs, EINTR otherwise: Linux's -ERESTARTSYS; the deadline is absolute,
/// so a restart keeps it). EAGAIN when a word differs, checked in order.
pub fn futex_waitv(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (waiters, nr, flags, timeout, clockid) =
        (a[0], a[1] as u32 as u64, a[2] as u32, a[3], a[4] as i32);
    if flags != 0 || nr == 0 || nr > MAX_FUTEXES || waiters == 0 {
        return Err(Errno::EINVAL);
    }
    let deadline = if timeout == 0 {
        None
    } else {
        let realtime = match clockid {
            libc::CLOCK_REALTIME => true,
            libc::CLOCK_MONOTONIC => false,
            _ => return Err(Errno::EINVAL),
        };
        super::futex::deadline(t, timeout, true, realtime)?
    };
    let entries = (0..nr)
        .map(|i| read_entry(t, waiters, i))
        .collect::<Result<Vec<_>, _>>()?;
    // Every key before any value, as Linux: a misaligned word is EINVAL whatever the others
    // hold.
    let keys = entries
        .iter()
        .map(|e| super::futex::key(t, e.uaddr, e.private))
        .collect::<Result<Vec<Key>, _>>()?;
    let mm = t.mm.clone();
    let check = |i: usize| {
        let e = &entries[i];
        mm.read_u32(e.uaddr).map(|v| v == e.val)
    };
    let Some(queued) = futex::enqueue_many(&keys, u32::MAX, check)? else {
        return Err(Errno::EAGAIN);
    };
    let waiter = t.waiter.clone();
    match queued.sleep(deadline, || waiter.interrupted()) {
        WaitResult::Woken(i) => Ok(i as u64),
        WaitResult::TimedOut => Err(Errno(libc::ETIMEDOUT)),
        WaitResult::Interrupted => Err(Errno(fs::waiter::ERESTARTSYS)),
        WaitResult::ValueChanged => Err(Errno::EAGAIN),
    }
}
