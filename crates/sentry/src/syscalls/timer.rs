//! Timers: alarm, setitimer and getitimer (interval timers), and the POSIX timer calls
//! (timer_create and friends). The timers themselves are `crate::timers`.

use std::time::Duration;

use platform::UserRegs;

use crate::errno::{Errno, SysResult};
use crate::signal::NSIG;
use crate::task::TaskState;
use crate::timers::{Clock, CpuClock, Notify, SigEvent, TimerSpec, ITIMER_COUNT};

const NSEC_PER_SEC: i64 = 1_000_000_000;
const USEC_PER_SEC: i64 = 1_000_000;

/// Linux keeps times in signed 64-bit nanoseconds (KTIME_MAX): longer ones saturate.
fn ktime(sec: i64, nsec: i64) -> Duration {
    let max = Duration::from_nanos(i64::MAX as u64);
    Duration::new(sec as u64, 0)
        .checked_add(Duration::from_nanos(nsec as u64))
        .map_or(max, |d| d.min(max))
}

/// Reads two (sec, fraction) pairs: a `struct itimerspec` (`unit` nanoseconds) or a
/// `struct itimerval` (`unit` microseconds), interval first. EINVAL for a negative or
/// out-of-range part, as Linux's timespec64_valid and timeval_valid.
fn read_pair(t: &TaskState, addr: u64, per_sec: i64) -> Result<TimerSpec, Errno> {
    let mut b = [0u8; 32];
    t.mm.copy_in(addr, &mut b)?;
    let w = |i: usize| i64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
    let (isec, ifrac, vsec, vfrac) = (w(0), w(8), w(16), w(24));
    let valid = |sec: i64, frac: i64| sec >= 0 && (0..per_sec).contains(&frac);
    if !valid(isec, ifrac) || !valid(vsec, vfrac) {
        return Err(Errno::EINVAL);
    }
    let scale = NSEC_PER_SEC / per_sec;
    Ok(TimerSpec {
        interval: ktime(isec, ifrac * scale),
        value: ktime(vsec, vfrac * scale),
    })
}

fn write_pair(t: &TaskState, addr: u64, spec: &TimerSpec, per_sec: i64) -> Result<(), Errno> {
    let scale = (NSEC_PER_SEC / per_sec) as u32;
    let mut b = [0u8; 32];
    for (i, d) in [spec.interval, spec.value].iter().enumerate() {
        b[i * 16..i * 16 + 8].copy_from_slice(&(d.as_secs() as i64).to_le_bytes());
        let frac = (d.subsec_nanos() / scale) as i64;
        b[i * 16 + 8..i * 16 + 16].copy_from_slice(&frac.to_le_bytes());
    }
    t.mm.copy_out(addr, &b)
}

/// A guest `struct itimerspec`.
pub(super) fn read_itimerspec(t: &TaskState, addr: u64) -> Result<TimerSpec, Errno> {
    read_pair(t, addr, NSEC_PER_SEC)
}

pub(super) fn write_itimerspec(t: &TaskState, addr: u64, spec: &TimerSpec) -> Result<(), Errno> {
    write_pair(t, addr, spec, NSEC_PER_SEC)
}

// ---------------------------------------------------------------------------------------
// Interval timers.

fn itimer_which(which: u64) -> Result<usize, Errno> {
    match which as i32 {
        w @ 0..=2 if (w as usize) < ITIMER_COUNT => Ok(w as usize),
        _ => Err(Errno::EINVAL),
    }
}

pub fn getitimer(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let which = itimer_which(a[0])?;
    let cur = t.group.timers.get_itimer(which);
    write_pair(t, a[1], &cur, USEC_PER_SEC)?;
    Ok(0)
}

pub fn setitimer(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    // Linux reads the new value first; NULL disarms (a legacy quirk it still honours).
    let new = if a[1] != 0 {
        read_pair(t, a[1], USEC_PER_SEC)?
    } else {
        TimerSpec::default()
    };
    let which = itimer_which(a[0])?;
    let old = t.group.timers.set_itimer(&t.group, which, new)?;
    if a[2] != 0 {
        write_pair(t, a[2], &old, USEC_PER_SEC)?;
    }
    Ok(0)
}

pub fn alarm(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let new = TimerSpec {
        value: Duration::from_secs(a[0] as u32 as u64),
        interval: Duration::ZERO,
    };
    let old = t.group.timers.set_itimer(&t.group, 0, new)?.value;
    // Linux rounds to the nearest second, and never reports a pending alarm as 0.
    let mut secs = old.as_secs();
    if (secs == 0 && old.subsec_nanos() > 0) || old.subsec_nanos() >= 500_000_000 {
        secs += 1;
    }
    Ok(secs)
}

// ---------------------------------------------------------------------------------------
// POSIX timers.

const SIGEV_SIGNAL: i32 = 0;
const SIGEV_NONE: i32 = 1;
const SIGEV_THREAD: i32 = 2;
const SIGEV_THREAD_ID: i32 = 4;
const CLOCK_REALTIME_ALARM: i32 = 8;
const CLOCK_BOOTTIME_ALARM: i32 = 9;

/// The clock of a new POSIX timer, as Linux's clockid_to_kclock and `timer_create` method.
fn timer_clock(t: &TaskState, id: u64) -> Result<Clock, Errno> {
    match id as i32 {
        libc::CLOCK_REALTIME => Ok(Clock::Host(libc::CLOCK_REALTIME)),
        libc::CLOCK_MONOTONIC => Ok(Clock::Host(libc::CLOCK_MONOTONIC)),
        libc::CLOCK_BOOTTIME => Ok(Clock::Host(libc::CLOCK_BOOTTIME)),
        libc::CLOCK_PROCESS_CPUTIME_ID => Ok(Clock::Cpu(CpuClock::Process(
            std::sync::Arc::downgrade(&t.group),
        ))),
        libc::CLOCK_THREAD_CPUTIME_ID => Ok(Clock::Cpu(CpuClock::Thread(
            std::sync::Arc::downgrade(&t.group),
            t.tid,
        ))),
        // Clocks without timers; the alarm clocks need an RTC the sandbox doesn't have.
        libc::CLOCK_MONOTONIC_RAW
        | libc::CLOCK_REALTIME_COARSE
        | libc::CLOCK_MONOTONIC_COARSE
        | CLOCK_REALTIME_ALARM
        | CLOCK_BOOTTIME_ALARM => Err(Errno::EOPNOTSUPP),
        _ => Err(Errno::EINVAL),
    }
}

/// Reads and checks a `struct sigevent`, as Linux's good_sigevent.
fn read_sigevent(t: &TaskState, addr: u64) -> Result<SigEvent, Errno> {
    let mut b = [0u8; 20];
    t.mm.copy_in(addr, &mut b)?;
    let value = u64::from_le_bytes(b[0..8].try_into().expect("8 bytes"));
    let signo = i32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
    let notify = i32::from_le_bytes(b[12..16].try_into().expect("4 bytes"));
    let tid = i32::from_le_bytes(b[16..20].try_into().expect("4 bytes"));
    let notify = match notify {
        SIGEV_NONE => Notify::None,
        // The kernel treats SIGEV_THREAD as SIGEV_SIGNAL (the C library makes the thread).
        SIGEV_SIGNAL | SIGEV_THREAD => Notify::Process,
        SIGEV_THREAD_ID if t.group.tids().contains(&tid) => Notify::Thread(tid),
        _ => return Err(Errno::EINVAL),
    };
    if notify != Notify::None && !(1..=NSIG as i32).contains(&signo) {
        return Err(Errno::EINVAL);
    }
    Ok(SigEvent {
        signo,
        value,
        notify,
    })
}

pub fn timer_create(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let event = if a[1] != 0 {
        Some(read_sigevent(t, a[1])?)
    } else {
        None
    };
    let clock = timer_clock(t, a[0])?;
    let limit = t.rlimits[libc::RLIMIT_SIGPENDING as usize].0;
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let id = t.group.timers.create(&t.group, clock, event, limit)?;
    if let Err(e) = t.mm.copy_out(a[2], &id.to_le_bytes()) {
        let _ = t.group.timers.delete(id);
        return Err(e);
    }
    Ok(0)
}

pub fn timer_settime(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let new = read_itimerspec(t, a[2])?;
    let absolute = a[1] as i32 & libc::TIMER_ABSTIME != 0;
    let old = t.group.timers.settime(a[0] as i32, absolute, new)?;
    if a[3] != 0 {
        write_itimerspec(t, a[3], &old)?;
    }
    Ok(0)
}

pub fn timer_gettime(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let cur = t.group.timers.gettime(a[0] as i32)?;
    write_itimerspec(t, a[1], &cur)?;
    Ok(0)
}

pub fn timer_getoverrun(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    Ok(t.group.timers.getoverrun(a[0] as i32)? as u64)
}

pub fn timer_delete(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    t.group.timers.delete(a[0] as i32)?;
    Ok(0)
}
