//! timerfd_create, timerfd_settime, timerfd_gettime. The file is `fs::timerfd`.

use fs::timerfd::{TimerFd, TFD_TIMER_ABSTIME, TFD_TIMER_CANCEL_ON_SET};
use fs::vfs::OpenFile;
use platform::UserRegs;

use super::fd::fd_limit;
use super::timer::{read_itimerspec, write_itimerspec};
use crate::errno::{Errno, SysResult};
use crate::task::TaskState;

const CLOCK_REALTIME_ALARM: i32 = 8;
const CLOCK_BOOTTIME_ALARM: i32 = 9;

pub fn timerfd_create(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let flags = a[1] as i32;
    if flags & !(libc::TFD_CLOEXEC | libc::TFD_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    // The alarm clocks differ only in waking a suspended machine: the host's plain clocks
    // (the sentry may lack CAP_WAKE_ALARM).
    let clock = match a[0] as i32 {
        c @ (libc::CLOCK_REALTIME | libc::CLOCK_MONOTONIC | libc::CLOCK_BOOTTIME) => c,
        CLOCK_REALTIME_ALARM => libc::CLOCK_REALTIME,
        CLOCK_BOOTTIME_ALARM => libc::CLOCK_BOOTTIME,
        _ => return Err(Errno::EINVAL),
    };
    let tfd = TimerFd::new(clock).map_err(Errno)?;
    let status = libc::O_RDWR as u32 | (flags as u32 & libc::O_NONBLOCK as u32);
    let file = OpenFile::special(None, None, tfd, status);
    let cloexec = flags & libc::TFD_CLOEXEC != 0;
    Ok(t.fds.alloc(0, file, cloexec, fd_limit(t))? as u64)
}

/// The timerfd of an open file: EINVAL if it is something else.
fn timerfd_of(file: &OpenFile) -> Result<&TimerFd, Errno> {
    file.special_desc()
        .and_then(|d| d.as_timerfd())
        .ok_or(Errno::EINVAL)
}

pub fn timerfd_settime(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let new = read_itimerspec(t, a[2])?;
    let flags = a[1] as i32;
    if flags & !(TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET) != 0 {
        return Err(Errno::EINVAL);
    }
    let file = t.fds.get(a[0])?;
    let old = timerfd_of(&file)?.set(flags, new).map_err(Errno)?;
    if a[3] != 0 {
        write_itimerspec(t, a[3], &old)?;
    }
    Ok(0)
}

pub fn timerfd_gettime(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    let cur = timerfd_of(&file)?.get().map_err(Errno)?;
    write_itimerspec(t, a[1], &cur)?;
    Ok(0)
}
