//! futex(2).

use std::time::{Duration, Instant};

use platform::UserRegs;

use crate::errno::{Errno, SysResult};
use crate::futex::{self, Key, WaitResult};
use crate::signal::RestartBlock;
use crate::task::TaskState;

const FUTEX_WAIT: u64 = 0;
const FUTEX_WAKE: u64 = 1;
const FUTEX_REQUEUE: u64 = 3;
const FUTEX_CMP_REQUEUE: u64 = 4;
const FUTEX_WAKE_OP: u64 = 5;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_WAKE_BITSET: u64 = 10;
const FUTEX_PRIVATE_FLAG: u64 = 128;
const FUTEX_CLOCK_REALTIME: u64 = 256;
const FUTEX_BITSET_MATCH_ANY: u32 = u32::MAX;

/// The operation part of `op`.
pub fn command(op: u64) -> u64 {
    op & !(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME)
}

/// Whether the command never blocks (the ring poller may serve it).
pub fn never_blocks(op: u64) -> bool {
    matches!(
        command(op),
        FUTEX_WAKE | FUTEX_WAKE_BITSET | FUTEX_REQUEUE | FUTEX_CMP_REQUEUE | FUTEX_WAKE_OP
    )
}

pub(super) fn key(t: &TaskState, addr: u64, private: bool) -> Result<Key, Errno> {
    if !addr.is_multiple_of(4) {
        return Err(Errno::EINVAL);
    }
    Ok(Key::of(&t.mm, addr, private))
}

/// Reads a timespec and turns it into a deadline: relative for FUTEX_WAIT, absolute (on
/// the chosen clock) for FUTEX_WAIT_BITSET.
pub(super) fn deadline(
    t: &TaskState,
    addr: u64,
    absolute: bool,
    realtime: bool,
) -> Result<Option<Instant>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let ts = super::time::read_timespec(t, addr)?;
    let given = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
    let wait = if absolute {
        let clock = if realtime {
            libc::CLOCK_REALTIME
        } else {
            libc::CLOCK_MONOTONIC
        };
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: now is a valid out-pointer.
        unsafe { libc::clock_gettime(clock, &mut now) };
        given.saturating_sub(Duration::new(now.tv_sec as u64, now.tv_nsec as u32))
    } else {
        given
    };
    Ok(Some(Instant::now() + wait))
}

/// A FUTEX_WAIT(_BITSET) on the word at `addr`; `private` is FUTEX_PRIVATE_FLAG, which
/// decides the key (and which a restart keeps).
fn wait(
    t: &mut TaskState,
    (addr, private): (u64, bool),
    val: u32,
    dl: Option<Instant>,
    bitset: u32,
) -> SysResult {
    let k = key(t, addr, private)?;
    // Fault before queueing: a bad address is EFAULT, not a hang.
    t.mm.read_u32(addr)?;
    let mm = t.mm.clone();
    let waiter = t.waiter.clone();
    let check = || mm.read_u32(addr).map(|v| v == val).unwrap_or(false);
    match futex::wait(k, bitset, dl, check, || waiter.interrupted()) {
        WaitResult::Woken(_) => Ok(0),
        WaitResult::ValueChanged => Err(Errno::EAGAIN),
        WaitResult::TimedOut => Err(Errno(libc::ETIMEDOUT)),
        // As Linux: an untimed wait restarts under SA_RESTART; a timed one goes on through
        // restart_syscall to the same deadline when no handler runs, else EINTR.
        WaitResult::Interrupted => match dl {
            None => Err(Errno(fs::waiter::ERESTARTSYS)),
            Some(deadline) => {
                t.signals.restart_block = Some(RestartBlock::FutexWait {
                    addr,
                    private,
                    val,
                    bitset,
                    deadline,
                });
                Err(Errno(fs::waiter::ERESTART_RESTARTBLOCK))
            }
        },
    }
}

/// restart_syscall for a timed wait interrupted by a signal nobody handled.
pub fn resume_wait(
    t: &mut TaskState,
    _: &mut UserRegs,
    (addr, private): (u64, bool),
    val: u32,
    bitset: u32,
    deadline: Instant,
) -> SysResult {
    wait(t, (addr, private), val, Some(deadline), bitset)
}

/// Applies a FUTEX_WAKE_OP operation to the word at `addr`; returns whether the comparison
/// on its old value holds.
fn apply_wake_op(t: &TaskState, addr: u64, encoded: u32) -> Result<bool, Errno> {
    let op = (encoded >> 28) & 7;
    let shift_arg = (encoded >> 28) & 8 != 0;
    let cmp = (encoded >> 24) & 15;
    let mut oparg = (encoded >> 12) & 0xfff;
    let cmparg = encoded & 0xfff;
    if shift_arg {
        oparg = 1u32.checked_shl(oparg).unwrap_or(0);
    }
    let old = t.mm.read_u32(addr)?;
    let new = match op {
        0 => oparg,
        1 => old.wrapping_add(oparg),
        2 => old | oparg,
        3 => old & !oparg,
        4 => old ^ oparg,
        _ => return Err(Errno(libc::ENOSYS)),
    };
    t.mm.copy_out(addr, &new.to_le_bytes())?;
    let (old, cmparg) = (old as i32, cmparg as i32);
    Ok(match cmp {
        0 => old == cmparg,
        1 => old != cmparg,
        2 => old < cmparg,
        3 => old <= cmparg,
        4 => old > cmparg,
        5 => old >= cmparg,
        _ => return Err(Errno(libc::ENOSYS)),
    })
}

/// The bitset of an untimed FUTEX_WAIT or FUTEX_WAIT_BITSET with valid arguments.
fn untimed_wait_bitset(a: [u64; 6]) -> Option<u32> {
    if a[3] != 0 {
        return None;
    }
    match command(a[1]) {
        FUTEX_WAIT => Some(FUTEX_BITSET_MATCH_ANY),
        FUTEX_WAIT_BITSET if a[5] as u32 != 0 => Some(a[5] as u32),
        _ => None,
    }
}

/// Whether the call is one [`queue_untimed_wait`] takes.
pub(super) fn is_untimed_wait(a: [u64; 6]) -> bool {
    untimed_wait_bitset(a).is_some()
}

/// For the ring poller (see `ring_wait`): queues an untimed FUTEX_WAIT or FUTEX_WAIT_BITSET
/// without sleeping. None when the call is anything else or has a bad argument (the task's
/// thread serves it, and fails it); Some(None) when the word no longer holds the value
/// (EAGAIN).
pub(super) fn queue_untimed_wait(t: &TaskState, a: [u64; 6]) -> Option<Option<futex::Queued>> {
    let (addr, op, val) = (a[0], a[1], a[2] as u32);
    let bitset = untimed_wait_bitset(a)?;
    let k = key(t, addr, op & FUTEX_PRIVATE_FLAG != 0).ok()?;
    t.mm.read_u32(addr).ok()?;
    let mm = t.mm.clone();
    Some(futex::enqueue(k, bitset, || {
        mm.read_u32(addr).map(|v| v == val).unwrap_or(false)
    }))
}

pub fn futex(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (addr, op, val, timeout, addr2, val3) = (a[0], a[1], a[2] as u32, a[3], a[4], a[5] as u32);
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;
    let cmd = command(op);
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    if realtime && cmd != FUTEX_WAIT && cmd != FUTEX_WAIT_BITSET {
        return Err(Errno(libc::ENOSYS));
    }
    match cmd {
        FUTEX_WAIT => {
            let dl = deadline(t, timeout, false, realtime)?;
            wait(t, (addr, private), val, dl, FUTEX_BITSET_MATCH_ANY)
        }
        FUTEX_WAIT_BITSET => {
            if val3 == 0 {
                return Err(Errno::EINVAL);
            }
            let dl = deadline(t, timeout, true, realtime)?;
            wait(t, (addr, private), val, dl, val3)
        }
        FUTEX_WAKE | FUTEX_WAKE_BITSET => {
            let bitset = if cmd == FUTEX_WAKE {
                FUTEX_BITSET_MATCH_ANY
            } else {
                val3
            };
            if bitset == 0 {
                return Err(Errno::EINVAL);
            }
            Ok(futex::wake(key(t, addr, private)?, bitset, val as usize) as u64)
        }
        FUTEX_REQUEUE | FUTEX_CMP_REQUEUE => {
            let (from, to) = (key(t, addr, private)?, key(t, addr2, private)?);
            let max_requeue = (timeout as u32 as i32).max(0) as usize;
            let mm = t.mm.clone();
            let compare = cmd == FUTEX_CMP_REQUEUE;
            if compare {
                mm.read_u32(addr)?;
            }
            let check = || !compare || mm.read_u32(addr).map(|v| v == val3).unwrap_or(false);
            futex::requeue(from, to, val as usize, max_requeue, check)
                .map(|n| n as u64)
                .ok_or(Errno::EAGAIN)
        }
        FUTEX_WAKE_OP => {
            let (k1, k2) = (key(t, addr, private)?, key(t, addr2, private)?);
            let max2 = (timeout as u32 as i32).max(0) as usize;
            let mut failure = None;
            let r = futex::wake_op(k1, k2, val as usize, max2, || {
                match apply_wake_op(t, addr2, val3) {
                    Ok(c) => Some(c),
                    Err(e) => {
                        failure = Some(e);
                        None
                    }
                }
            });
            match (r, failure) {
                (Some(n), _) => Ok(n as u64),
                (None, Some(e)) => Err(e),
                (None, None) => Err(Errno::EFAULT),
            }
        }
        // Priority-inheritance futexes need owner tracking in the sentry.
        _ => Err(Errno(libc::ENOSYS)),
    }
}
