//! timerfd: a timer read as a file. Each sandbox timerfd is backed by a host timerfd, so
//! clocks, absolute deadlines, interval counting, clock-set cancellation and the expiration
//! count are exactly the host kernel's. Readiness changes reach waiters through the host
//! notifier (`host::watch`), the thread that already serves host streams: every expiry is a
//! host edge, which notifies the file's [`WaitQueue`].
//!
//! [`HostTimer`] is the host timerfd itself, also used by the sentry's POSIX timers and
//! interval timers.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;
use std::time::Duration;

use crate::waiter::{WaitQueue, Wake, POLLERR, POLLHUP, POLLIN};
use crate::{Errno, FileDescription, Stat};

/// TFD_TIMER_ABSTIME: the value is a deadline on the timer's clock.
pub const TFD_TIMER_ABSTIME: i32 = 1;
/// TFD_TIMER_CANCEL_ON_SET: reads fail with ECANCELED when CLOCK_REALTIME is set.
pub const TFD_TIMER_CANCEL_ON_SET: i32 = 2;

/// A timer's setting: time to the next expiry (zero: disarmed) and the reload interval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimerSpec {
    pub value: Duration,
    pub interval: Duration,
}

fn to_timespec(d: Duration) -> libc::timespec {
    libc::timespec {
        tv_sec: d.as_secs() as libc::time_t,
        tv_nsec: d.subsec_nanos() as libc::c_long,
    }
}

fn from_timespec(ts: &libc::timespec) -> Duration {
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

fn last_errno() -> Errno {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// A host timerfd, non-blocking, on one of the clocks the host's timerfd accepts.
pub struct HostTimer {
    fd: OwnedFd,
}

impl HostTimer {
    /// A disarmed timer on `clock` (CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME).
    pub fn new(clock: libc::clockid_t) -> Result<HostTimer, Errno> {
        // SAFETY: plain timerfd_create; the result is checked.
        let fd = unsafe { libc::timerfd_create(clock, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        if fd < 0 {
            return Err(last_errno());
        }
        // SAFETY: fd is a fresh descriptor nobody else owns.
        Ok(HostTimer {
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Arms (or, with a zero value, disarms) the timer; returns the previous setting.
    /// `flags`: TFD_TIMER_ABSTIME, TFD_TIMER_CANCEL_ON_SET.
    pub fn set(&self, flags: i32, new: TimerSpec) -> Result<TimerSpec, Errno> {
        let new = libc::itimerspec {
            it_interval: to_timespec(new.interval),
            it_value: to_timespec(new.value),
        };
        let mut old = libc::itimerspec {
            it_interval: to_timespec(Duration::ZERO),
            it_value: to_timespec(Duration::ZERO),
        };
        // SAFETY: new and old are valid itimerspecs; fd is our timerfd.
        if unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), flags, &new, &mut old) } < 0 {
            return Err(last_errno());
        }
        Ok(TimerSpec {
            value: from_timespec(&old.it_value),
            interval: from_timespec(&old.it_interval),
        })
    }

    /// The time to the next expiry and the interval.
    pub fn get(&self) -> Result<TimerSpec, Errno> {
        let mut cur = libc::itimerspec {
            it_interval: to_timespec(Duration::ZERO),
            it_value: to_timespec(Duration::ZERO),
        };
        // SAFETY: cur is a valid out-pointer; fd is our timerfd.
        if unsafe { libc::timerfd_gettime(self.fd.as_raw_fd(), &mut cur) } < 0 {
            return Err(last_errno());
        }
        Ok(TimerSpec {
            value: from_timespec(&cur.it_value),
            interval: from_timespec(&cur.it_interval),
        })
    }

    /// Takes the expirations since the last call (0 if none); ECANCELED after a clock set
    /// with TFD_TIMER_CANCEL_ON_SET.
    pub fn take_expirations(&self) -> Result<u64, Errno> {
        let mut count = 0u64;
        loop {
            // SAFETY: count is 8 writable bytes; the fd is non-blocking.
            let r = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    (&mut count as *mut u64).cast(),
                    std::mem::size_of::<u64>(),
                )
            };
            if r == 8 {
                return Ok(count);
            }
            match last_errno() {
                libc::EINTR => continue,
                libc::EAGAIN => return Ok(0),
                e => return Err(e),
            }
        }
    }

    /// Whether an expiration is waiting to be read.
    pub fn expired(&self) -> bool {
        let mut p = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: p is one valid pollfd; timeout 0 never blocks.
        unsafe { libc::poll(&mut p, 1, 0) > 0 && p.revents & libc::POLLIN != 0 }
    }
}

impl AsRawFd for HostTimer {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// A sandbox timerfd.
pub struct TimerFd {
    timer: HostTimer,
    queue: WaitQueue,
    /// The notifier's id for the host fd, once someone waits (None inside: not watchable).
    watch: OnceLock<Option<u64>>,
    ino: u64,
}

impl TimerFd {
    /// A disarmed timerfd on `clock`.
    pub fn new(clock: libc::clockid_t) -> Result<std::sync::Arc<TimerFd>, Errno> {
        Ok(std::sync::Arc::new(TimerFd {
            timer: HostTimer::new(clock)?,
            queue: WaitQueue::new(),
            watch: OnceLock::new(),
            ino: crate::eventfd::next_anon_ino(),
        }))
    }

    /// timerfd_settime: `flags` are TFD_TIMER_ABSTIME and TFD_TIMER_CANCEL_ON_SET.
    pub fn set(&self, flags: i32, new: TimerSpec) -> Result<TimerSpec, Errno> {
        let old = self.timer.set(flags, new)?;
        // Setting clears unread expirations: readiness may have changed.
        self.queue.notify(0);
        Ok(old)
    }

    /// timerfd_gettime.
    pub fn get(&self) -> Result<TimerSpec, Errno> {
        self.timer.get()
    }

    fn do_read(&self, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        if buf.len() < 8 {
            return Err(libc::EINVAL);
        }
        let mut registration = None;
        loop {
            let count = self.timer.take_expirations()?;
            if count > 0 {
                buf[..8].copy_from_slice(&count.to_ne_bytes());
                return Ok(8);
            }
            if nonblock {
                return Err(libc::EAGAIN);
            }
            let (Some(waiter), Some(queue)) = (crate::waiter::current(), self.wait_queue()) else {
                // No task to interrupt (unit tests): wait in the host.
                let mut p = libc::pollfd {
                    fd: self.timer.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                // SAFETY: p is one valid pollfd.
                unsafe { libc::poll(&mut p, 1, -1) };
                continue;
            };
            if registration.is_none() {
                // Registered, then tried again: an expiry in between notifies.
                waiter.reset();
                registration = Some(queue.register(&waiter, POLLIN | POLLERR | POLLHUP));
                continue;
            }
            if waiter.wait(None) == Wake::Interrupted {
                // Restarted under SA_RESTART, as Linux's timerfd_read.
                return Err(crate::waiter::ERESTARTSYS);
            }
        }
    }
}

impl Drop for TimerFd {
    fn drop(&mut self) {
        if let Some(Some(id)) = self.watch.get() {
            crate::host::unwatch(self.timer.as_raw_fd(), *id);
        }
    }
}

impl FileDescription for TimerFd {
    fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        self.do_read(buf, false)
    }

    fn read_with_flags(&self, buf: &mut [u8], flags: u32) -> Result<usize, Errno> {
        self.do_read(buf, flags & libc::O_NONBLOCK as u32 != 0)
    }

    /// Linux's timerfd has no write method.
    fn write(&self, _: &[u8]) -> Result<usize, Errno> {
        Err(libc::EINVAL)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(crate::eventfd::anon_inode_stat(self.ino))
    }

    fn may_block(&self) -> bool {
        true
    }

    fn readiness(&self, mask: u32) -> u32 {
        // Linux's timerfd reports POLLIN alone (no POLLRDNORM).
        if self.timer.expired() {
            POLLIN & mask
        } else {
            0
        }
    }

    fn as_timerfd(&self) -> Option<&TimerFd> {
        Some(self)
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        self.watch
            .get_or_init(|| crate::host::watch(self.timer.as_raw_fd(), self.queue.clone()))
            .map(|_| &self.queue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NB: u32 = libc::O_NONBLOCK as u32;

    fn read(t: &TimerFd, flags: u32) -> Result<u64, Errno> {
        let mut b = [0u8; 8];
        t.read_with_flags(&mut b, flags)?;
        Ok(u64::from_ne_bytes(b))
    }

    #[test]
    fn counts_interval_expirations() {
        let t = TimerFd::new(libc::CLOCK_MONOTONIC).unwrap();
        assert_eq!(read(&t, NB), Err(libc::EAGAIN));
        assert_eq!(t.readiness(POLLIN), 0);
        let ms = Duration::from_millis;
        let spec = TimerSpec {
            value: ms(5),
            interval: ms(5),
        };
        assert_eq!(t.set(0, spec), Ok(TimerSpec::default()));
        std::thread::sleep(ms(30));
        assert_eq!(t.readiness(POLLIN), POLLIN);
        assert!(read(&t, NB).unwrap() >= 3);
        assert_eq!(t.get().unwrap().interval, ms(5));
        // Blocking read waits for the next one.
        assert!(read(&t, 0).unwrap() >= 1);
        assert_eq!(t.read_with_flags(&mut [0u8; 7], NB), Err(libc::EINVAL));
        assert_eq!(t.set(0, TimerSpec::default()).unwrap().interval, ms(5));
        assert_eq!(read(&t, NB), Err(libc::EAGAIN));
    }

    #[test]
    fn notifier_reports_expiry() {
        use crate::waiter::Waiter;
        let t = TimerFd::new(libc::CLOCK_MONOTONIC).unwrap();
        let w = Waiter::new();
        let _reg = t.wait_queue().unwrap().register(&w, POLLIN);
        let spec = TimerSpec {
            value: Duration::from_millis(5),
            interval: Duration::ZERO,
        };
        t.set(0, spec).unwrap();
        // set() notifies once; the expiry notifies again.
        w.reset();
        let d = std::time::Instant::now() + Duration::from_secs(5);
        assert_eq!(w.wait(Some(d)), Wake::Notified);
        assert_eq!(read(&t, NB), Ok(1));
    }
}
