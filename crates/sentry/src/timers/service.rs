//! The timer service: one sentry thread (`timer-service`) that serves every interval timer
//! and POSIX timer of the sandbox. Timers on real-time clocks are host timerfds in one host
//! epoll instance, one-shot: an expiry is reported once, and the timer is watched again when
//! its owner says so (after the signal it sent is delivered, as Linux rearms a POSIX timer
//! only at delivery), so a fast timer whose signal is blocked never wakes the service.
//! CPU-time timers have no host equivalent: the service reads their clocks when they could
//! first have expired (CPU time grows at most as fast as real time per thread) and sleeps in
//! between, in epoll_wait's timeout. An eventfd in the same epoll wakes the service when a
//! CPU timer changes.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use super::timer::Timer;
use crate::errno::Errno;

/// The epoll data of the wake-up eventfd (timer ids start at 1).
const KICK: u64 = 0;

pub struct Service {
    epfd: OwnedFd,
    kick: OwnedFd,
    /// Host-clock timers by id.
    host: Mutex<HashMap<u64, Weak<Timer>>>,
    /// CPU-clock timers by id.
    cpu: Mutex<HashMap<u64, Weak<Timer>>>,
    next_id: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn last_errno() -> Errno {
    Errno(
        std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO),
    )
}

impl Service {
    /// The service, started on first use; EAGAIN if the host refuses its epoll, eventfd or
    /// thread.
    pub fn get() -> Result<&'static Service, Errno> {
        static SERVICE: OnceLock<Option<Service>> = OnceLock::new();
        static STARTED: OnceLock<bool> = OnceLock::new();
        let service = SERVICE
            .get_or_init(|| Service::new().ok())
            .as_ref()
            .ok_or(Errno::EAGAIN)?;
        let started = *STARTED.get_or_init(|| {
            std::thread::Builder::new()
                .name("timer-service".into())
                .spawn(move || service.run())
                .is_ok()
        });
        if started {
            Ok(service)
        } else {
            Err(Errno::EAGAIN)
        }
    }

    fn new() -> Result<Service, Errno> {
        // SAFETY: plain epoll_create1; the result is checked.
        let ep = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if ep < 0 {
            return Err(last_errno());
        }
        // SAFETY: ep is a fresh descriptor we own.
        let epfd = unsafe { OwnedFd::from_raw_fd(ep) };
        // SAFETY: plain eventfd; the result is checked.
        let ev = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if ev < 0 {
            return Err(last_errno());
        }
        // SAFETY: ev is a fresh descriptor we own.
        let kick = unsafe { OwnedFd::from_raw_fd(ev) };
        let s = Service {
            epfd,
            kick,
            host: Mutex::new(HashMap::new()),
            cpu: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(KICK + 1),
        };
        s.ctl(
            libc::EPOLL_CTL_ADD,
            s.kick.as_raw_fd(),
            KICK,
            libc::EPOLLIN as u32,
        )?;
        Ok(s)
    }

    fn ctl(&self, op: i32, fd: RawFd, id: u64, events: u32) -> Result<(), Errno> {
        let mut ev = libc::epoll_event { events, u64: id };
        // SAFETY: ev is a valid epoll_event; fd is open (callers own it).
        if unsafe { libc::epoll_ctl(self.epfd.as_raw_fd(), op, fd, &mut ev) } < 0 {
            return Err(last_errno());
        }
        Ok(())
    }

    /// A fresh timer id.
    pub fn new_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Watches host timerfd `fd` of `timer` for one expiry.
    pub fn add_host(&self, fd: RawFd, id: u64, timer: Weak<Timer>) -> Result<(), Errno> {
        lock(&self.host).insert(id, timer);
        let r = self.ctl(libc::EPOLL_CTL_ADD, fd, id, Self::ONE_EXPIRY);
        if r.is_err() {
            lock(&self.host).remove(&id);
        }
        r
    }

    const ONE_EXPIRY: u32 = (libc::EPOLLIN | libc::EPOLLONESHOT) as u32;

    /// Watches host timerfd `fd` for its next expiry again.
    pub fn rearm_host(&self, fd: RawFd, id: u64) {
        if let Err(e) = self.ctl(libc::EPOLL_CTL_MOD, fd, id, Self::ONE_EXPIRY) {
            tracing::warn!("timer service: rearming timer {id}: errno {}", e.0);
        }
    }

    /// Stops watching a host timerfd; call before it closes.
    pub fn remove_host(&self, fd: RawFd, id: u64) {
        // SAFETY: fd is still open; a null event is allowed for EPOLL_CTL_DEL.
        unsafe {
            libc::epoll_ctl(
                self.epfd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd,
                std::ptr::null_mut(),
            )
        };
        lock(&self.host).remove(&id);
    }

    pub fn add_cpu(&self, id: u64, timer: Weak<Timer>) {
        lock(&self.cpu).insert(id, timer);
    }

    pub fn remove_cpu(&self, id: u64) {
        lock(&self.cpu).remove(&id);
    }

    /// Makes the service look at its CPU timers again (one was set or resumed).
    pub fn kick(&self) {
        let one = 1u64;
        // SAFETY: one is 8 readable bytes; a full counter (EAGAIN) already means "wake".
        unsafe {
            libc::write(
                self.kick.as_raw_fd(),
                (&one as *const u64).cast(),
                std::mem::size_of::<u64>(),
            )
        };
    }

    fn run(&self) {
        const BATCH: usize = 32;
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; BATCH];
        let mut wait: Option<Duration> = None;
        loop {
            let timeout = wait.map_or(-1, |d| d.as_millis().clamp(1, i32::MAX as u128) as i32);
            // SAFETY: events has room for BATCH entries.
            let n = unsafe {
                libc::epoll_wait(
                    self.epfd.as_raw_fd(),
                    events.as_mut_ptr(),
                    BATCH as i32,
                    timeout,
                )
            };
            if n < 0 {
                if last_errno() == Errno::EINTR {
                    continue;
                }
                tracing::warn!("timer service: epoll_wait failed: errno {}", last_errno().0);
                return;
            }
            for ev in &events[..n as usize] {
                let id = ev.u64;
                if id == KICK {
                    let mut count = 0u64;
                    // SAFETY: count is 8 writable bytes; the eventfd is non-blocking.
                    unsafe {
                        libc::read(
                            self.kick.as_raw_fd(),
                            (&mut count as *mut u64).cast(),
                            std::mem::size_of::<u64>(),
                        )
                    };
                    continue;
                }
                let timer = lock(&self.host).get(&id).and_then(Weak::upgrade);
                if let Some(t) = timer {
                    t.host_fired();
                }
            }
            wait = self.check_cpu_timers();
        }
    }

    /// Fires the CPU timers that expired; returns how long until one could expire next.
    fn check_cpu_timers(&self) -> Option<Duration> {
        let timers: Vec<_> = {
            let mut cpu = lock(&self.cpu);
            cpu.retain(|_, t| t.strong_count() > 0);
            cpu.values().filter_map(Weak::upgrade).collect()
        };
        timers.iter().filter_map(|t| t.check_cpu()).min()
    }
}
