//! Clocks and sleeping.

use std::time::{Duration, Instant};

use fs::waiter::Wake;
use platform::UserRegs;

use crate::errno::{Errno, SysResult};
use crate::signal::RestartBlock;
use crate::task::TaskState;

/// Clocks a program may read; each maps to the host clock of the same id, but for the
/// CPU-time clocks (see `cpu_clock`).
fn check_clock(id: u64) -> Result<libc::clockid_t, Errno> {
    let id = id as i64 as i32;
    match id {
        libc::CLOCK_REALTIME
        | libc::CLOCK_MONOTONIC
        | libc::CLOCK_PROCESS_CPUTIME_ID
        | libc::CLOCK_THREAD_CPUTIME_ID
        | libc::CLOCK_MONOTONIC_RAW
        | libc::CLOCK_REALTIME_COARSE
        | libc::CLOCK_MONOTONIC_COARSE
        | libc::CLOCK_BOOTTIME
        | libc::CLOCK_TAI => Ok(id),
        _ => Err(Errno::EINVAL),
    }
}

fn host_clock(id: libc::clockid_t) -> Result<libc::timespec, Errno> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    if unsafe { libc::clock_gettime(id, &mut ts) } != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(ts)
}

/// The time on a wall or monotonic clock as the sandbox sees it: the vDSO's reading where
/// it serves the clock, so that a program mixing the vDSO and system calls sees one clock;
/// the host's otherwise.
pub(super) fn sandbox_clock(t: &TaskState, id: libc::clockid_t) -> Result<libc::timespec, Errno> {
    use crate::vdso::Clock;
    let clock = match id {
        libc::CLOCK_REALTIME | libc::CLOCK_REALTIME_COARSE => Clock::Realtime,
        libc::CLOCK_MONOTONIC | libc::CLOCK_MONOTONIC_COARSE | libc::CLOCK_MONOTONIC_RAW => {
            Clock::Monotonic
        }
        libc::CLOCK_BOOTTIME => Clock::Boottime,
        _ => return host_clock(id),
    };
    match t.kernel.vdso.now(clock) {
        Some(d) => Ok(libc::timespec {
            tv_sec: d.as_secs() as libc::time_t,
            tv_nsec: d.subsec_nanos() as libc::c_long,
        }),
        None => host_clock(id),
    }
}

fn timespec_bytes(ts: &libc::timespec) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&ts.tv_sec.to_le_bytes());
    b[8..].copy_from_slice(&ts.tv_nsec.to_le_bytes());
    b
}

/// Reads and validates a guest `struct timespec`.
/// A guest `struct timespec` as it is (seconds, nanoseconds), unchecked: callers that take
/// what Linux's timespec64_to_ktime takes without validation (io_getevents).
pub(super) fn read_raw_timespec(t: &TaskState, addr: u64) -> Result<(i64, i64), Errno> {
    let mut b = [0u8; 16];
    t.mm.copy_in(addr, &mut b)?;
    let sec = i64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
    let nsec = i64::from_le_bytes(b[8..].try_into().expect("8 bytes"));
    Ok((sec, nsec))
}

pub(super) fn read_timespec(t: &TaskState, addr: u64) -> Result<libc::timespec, Errno> {
    let (sec, nsec) = read_raw_timespec(t, addr)?;
    if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
        return Err(Errno::EINVAL);
    }
    Ok(libc::timespec {
        tv_sec: sec,
        tv_nsec: nsec,
    })
}

/// The CPU-time clocks are the task threads' (the same time CPU-time timers count); the
/// ring poller, which may serve this call, is not the task's thread.
fn cpu_clock(t: &TaskState, id: libc::clockid_t) -> Option<libc::timespec> {
    let d = match id {
        libc::CLOCK_PROCESS_CPUTIME_ID => t.group.cpu.process(),
        libc::CLOCK_THREAD_CPUTIME_ID => t.group.cpu.thread(t.tid)?,
        _ => return None,
    };
    Some(libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    })
}

pub fn clock_gettime(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let id = check_clock(a[0])?;
    let ts = match cpu_clock(t, id) {
        Some(ts) => ts,
        None => sandbox_clock(t, id)?,
    };
    t.mm.copy_out(a[1], &timespec_bytes(&ts))?;
    Ok(0)
}

pub fn clock_getres(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let id = check_clock(a[0])?;
    if a[1] != 0 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: ts is a valid out-pointer.
        unsafe { libc::clock_getres(id, &mut ts) };
        t.mm.copy_out(a[1], &timespec_bytes(&ts))?;
    }
    Ok(0)
}

pub fn gettimeofday(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    if a[0] != 0 {
        let ts = sandbox_clock(t, libc::CLOCK_REALTIME)?;
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&ts.tv_sec.to_le_bytes());
        b[8..].copy_from_slice(&(ts.tv_nsec / 1000).to_le_bytes());
        t.mm.copy_out(a[0], &b)?;
    }
    if a[1] != 0 {
        // struct timezone: the kernel's is always zero unless settimeofday set it.
        t.mm.copy_out(a[1], &[0u8; 8])?;
    }
    Ok(0)
}

pub fn time(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let now = sandbox_clock(t, libc::CLOCK_REALTIME)?.tv_sec;
    if a[0] != 0 {
        t.mm.copy_out(a[0], &now.to_le_bytes())?;
    }
    Ok(now as u64)
}

/// Sleeps until `deadline`, interruptibly. An interrupted sleep writes the time left to
/// `rmtp` (if not 0) and saves the rest for restart_syscall: a handler makes it EINTR, no
/// handler resumes it (Linux's hrtimer_nanosleep_restart).
pub fn sleep_until(t: &mut TaskState, deadline: Instant, rmtp: u64) -> SysResult {
    t.waiter.reset();
    loop {
        match t.waiter.wait(Some(deadline)) {
            Wake::TimedOut => return Ok(0),
            Wake::Notified => continue,
            Wake::Interrupted => break,
        }
    }
    if rmtp != 0 {
        let left = deadline.saturating_duration_since(Instant::now());
        let ts = libc::timespec {
            tv_sec: left.as_secs() as i64,
            tv_nsec: left.subsec_nanos() as i64,
        };
        t.mm.copy_out(rmtp, &timespec_bytes(&ts))?;
    }
    t.signals.restart_block = Some(RestartBlock::Sleep { deadline, rmtp });
    Err(Errno(fs::waiter::ERESTART_RESTARTBLOCK))
}

fn duration(ts: &libc::timespec) -> Duration {
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// `now + d`, saturating far in the future.
fn instant_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}

pub fn nanosleep(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let ts = read_timespec(t, a[0])?;
    sleep_until(t, instant_after(duration(&ts)), a[1])
}

pub fn clock_nanosleep(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let id = a[0] as i64 as i32;
    let clock = match id {
        libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC | libc::CLOCK_BOOTTIME | libc::CLOCK_TAI => id,
        libc::CLOCK_PROCESS_CPUTIME_ID => return Err(Errno::ENOTSUP),
        libc::CLOCK_THREAD_CPUTIME_ID => return Err(Errno::EINVAL),
        _ => return Err(Errno::EINVAL),
    };
    let flags = a[1] as i32;
    let ts = read_timespec(t, a[2])?;
    if flags & libc::TIMER_ABSTIME == 0 {
        return sleep_until(t, instant_after(duration(&ts)), a[3]);
    }
    // An absolute time, as a deadline on the monotonic clock. An interrupted absolute sleep
    // restarts as it was (ERESTARTNOHAND), with nothing to write back.
    let now = duration(&host_clock(clock)?);
    match sleep_until(t, instant_after(duration(&ts).saturating_sub(now)), 0) {
        Err(Errno(fs::waiter::ERESTART_RESTARTBLOCK)) => {
            t.signals.restart_block = None;
            Err(Errno(fs::waiter::ERESTARTNOHAND))
        }
        r => r,
    }
}
