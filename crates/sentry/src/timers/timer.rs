//! One timer: a host timerfd (real-time clocks) or a deadline on a CPU-time clock, and what
//! it does when it expires.

use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use fs::timerfd::{HostTimer, TimerSpec, TFD_TIMER_ABSTIME};

use super::cpu::CpuClock;
use super::service::Service;
use crate::errno::Errno;

/// What a timer does when it expires.
pub trait Target: Send + Sync {
    /// `count` expirations happened. Returns whether to report the next ones; if not, the
    /// timer stays quiet (expirations still count) until [`Timer::resume`].
    fn expired(&self, count: u64) -> bool;
}

/// A target shared with its owner (a POSIX timer's table reads its overrun counts).
impl<T: Target + ?Sized> Target for Arc<T> {
    fn expired(&self, count: u64) -> bool {
        (**self).expired(count)
    }
}

/// The clock a timer runs on.
pub enum Clock {
    /// A host clock the host's timerfd accepts.
    Host(libc::clockid_t),
    Cpu(CpuClock),
}

struct CpuState {
    /// The next expiry on the clock (None: disarmed).
    deadline: Option<Duration>,
    interval: Duration,
    /// Whether the service reports expiries (see `Target::expired`).
    watched: bool,
}

enum Backend {
    Host(HostTimer),
    Cpu {
        clock: CpuClock,
        state: Mutex<CpuState>,
    },
}

pub struct Timer {
    /// The service's id for the timer.
    id: u64,
    backend: Backend,
    /// None: nobody is told of expiries (SIGEV_NONE); they are only counted.
    target: Option<Box<dyn Target>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Timer {
    /// A disarmed timer on `clock`.
    pub fn new(clock: Clock, target: Option<Box<dyn Target>>) -> Result<Arc<Timer>, Errno> {
        let service = Service::get()?;
        let id = service.new_id();
        let backend = match clock {
            Clock::Host(c) => Backend::Host(HostTimer::new(c).map_err(Errno)?),
            Clock::Cpu(clock) => Backend::Cpu {
                clock,
                state: Mutex::new(CpuState {
                    deadline: None,
                    interval: Duration::ZERO,
                    watched: true,
                }),
            },
        };
        let timer = Arc::new(Timer {
            id,
            backend,
            target,
        });
        if timer.target.is_some() {
            match &timer.backend {
                Backend::Host(h) => service.add_host(h.as_raw_fd(), id, Arc::downgrade(&timer))?,
                Backend::Cpu { .. } => service.add_cpu(id, Arc::downgrade(&timer)),
            }
        }
        Ok(timer)
    }

    /// Arms the timer (disarms it with a zero value); `absolute`: the value is a time on the
    /// timer's clock. Returns the previous setting.
    pub fn set(&self, absolute: bool, new: TimerSpec) -> Result<TimerSpec, Errno> {
        match &self.backend {
            Backend::Host(h) => h
                .set(if absolute { TFD_TIMER_ABSTIME } else { 0 }, new)
                .map_err(Errno),
            Backend::Cpu { clock, state } => {
                let now = clock.now().ok_or(Errno::EINVAL)?;
                let mut st = lock(state);
                let old = Self::cpu_spec(&st, now);
                st.deadline = match new.value {
                    v if v.is_zero() => None,
                    v if absolute => Some(v),
                    v => Some(now + v),
                };
                st.interval = new.interval;
                drop(st);
                if let Ok(s) = Service::get() {
                    s.kick();
                }
                Ok(old)
            }
        }
    }

    fn cpu_spec(st: &CpuState, now: Duration) -> TimerSpec {
        match st.deadline {
            // An expiry not yet reported shows as due in 1 ns, as Linux shows it.
            Some(d) => TimerSpec {
                value: d.saturating_sub(now).max(Duration::from_nanos(1)),
                interval: st.interval,
            },
            None => TimerSpec::default(),
        }
    }

    /// The time to the next expiry and the interval.
    pub fn get(&self) -> TimerSpec {
        match &self.backend {
            Backend::Host(h) => h.get().unwrap_or_default(),
            Backend::Cpu { clock, state } => {
                let now = clock.now().unwrap_or_default();
                Self::cpu_spec(&lock(state), now)
            }
        }
    }

    /// Takes the expirations not yet reported or taken.
    pub fn take_expirations(&self) -> u64 {
        match &self.backend {
            Backend::Host(h) => h.take_expirations().unwrap_or(0),
            Backend::Cpu { clock, state } => match clock.now() {
                Some(now) => Self::cpu_expirations(&mut lock(state), now),
                None => 0,
            },
        }
    }

    /// Counts the expirations up to `now` and moves the deadline past them.
    fn cpu_expirations(st: &mut CpuState, now: Duration) -> u64 {
        let Some(deadline) = st.deadline.filter(|&d| d <= now) else {
            return 0;
        };
        if st.interval.is_zero() {
            st.deadline = None;
            return 1;
        }
        let periods = ((now - deadline).as_nanos() / st.interval.as_nanos()) as u64 + 1;
        st.deadline = st
            .interval
            .checked_mul(periods.min(u32::MAX as u64) as u32)
            .and_then(|d| deadline.checked_add(d));
        periods
    }

    /// Reports the next expiry again, after a target declined to.
    pub fn resume(&self) {
        let Ok(service) = Service::get() else {
            return;
        };
        match &self.backend {
            Backend::Host(h) => service.rearm_host(h.as_raw_fd(), self.id),
            Backend::Cpu { state, .. } => {
                lock(state).watched = true;
                service.kick();
            }
        }
    }

    /// The service saw the host timerfd expire (it is no longer watched).
    pub(super) fn host_fired(&self) {
        let count = self.take_expirations();
        let again = match &self.target {
            Some(t) if count > 0 => t.expired(count),
            // A spurious wake-up (the timer was set again meanwhile).
            _ => true,
        };
        if again {
            self.resume();
        }
    }

    /// For the service: fires the CPU timer if it expired, and says how long until it could
    /// next expire (None: not armed or not watched).
    pub(super) fn check_cpu(&self) -> Option<Duration> {
        let Backend::Cpu { clock, state } = &self.backend else {
            return None;
        };
        let now = clock.now()?;
        let count = {
            let mut st = lock(state);
            if !st.watched {
                return None;
            }
            let count = Self::cpu_expirations(&mut st, now);
            if count > 0 {
                st.watched = false;
            }
            count
        };
        if count > 0 && self.target.as_ref().is_some_and(|t| t.expired(count)) {
            lock(state).watched = true;
        }
        let st = lock(state);
        if !st.watched {
            return None;
        }
        let left = st.deadline?.saturating_sub(now);
        // The clock can't reach the deadline sooner; a millisecond at least, so an idle
        // process's timer is looked at a thousand times a second at most.
        Some((left / clock.max_rate()).max(Duration::from_millis(1)))
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        if self.target.is_none() {
            return;
        }
        if let Ok(service) = Service::get() {
            match &self.backend {
                Backend::Host(h) => service.remove_host(h.as_raw_fd(), self.id),
                Backend::Cpu { .. } => service.remove_cpu(self.id),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(deadline: u64, interval: u64) -> CpuState {
        CpuState {
            deadline: Some(Duration::from_millis(deadline)),
            interval: Duration::from_millis(interval),
            watched: true,
        }
    }

    #[test]
    fn cpu_expirations_count_whole_periods() {
        let ms = Duration::from_millis;
        let mut st = state(10, 0);
        assert_eq!(Timer::cpu_expirations(&mut st, ms(9)), 0);
        assert_eq!(Timer::cpu_expirations(&mut st, ms(10)), 1);
        assert_eq!(st.deadline, None);
        let mut st = state(10, 5);
        assert_eq!(Timer::cpu_expirations(&mut st, ms(22)), 3);
        assert_eq!(st.deadline, Some(ms(25)));
        assert_eq!(Timer::cpu_expirations(&mut st, ms(24)), 0);
    }
}
