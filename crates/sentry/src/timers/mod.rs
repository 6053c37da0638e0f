//! A process's timers: the three interval timers (setitimer, alarm) and POSIX timers
//! (timer_create). Both kinds are [`Timer`]s served by the sentry's one timer thread
//! ([`service`]); their signals go through the process's signal queues like kill's.
//!
//! As on Linux, interval timers survive execve and POSIX timers don't; a child starts with
//! neither; everything goes when the process ends. A POSIX timer's signal is queued once:
//! expiries while it is pending are counted as overruns, reported when it is delivered
//! (`si_overrun`, timer_getoverrun), and only then is the timer watched again.

pub mod cpu;
mod service;
pub mod timer;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

pub use cpu::{CpuClock, CpuClocks};
pub use fs::timerfd::TimerSpec;
pub use timer::{Clock, Target, Timer};

use crate::errno::Errno;
use crate::process::ThreadGroup;
use crate::signal_frame::{SigInfo, SI_KERNEL, SI_TIMER};

/// ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF.
pub const ITIMER_COUNT: usize = 3;
/// Most POSIX timers a process may have (each is a host descriptor).
pub const MAX_POSIX_TIMERS: usize = 4096;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where a POSIX timer's signal goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notify {
    /// SIGEV_NONE: no signal.
    None,
    /// SIGEV_SIGNAL: the process.
    Process,
    /// SIGEV_THREAD_ID: one thread of the process.
    Thread(i32),
}

/// A timer's `struct sigevent`, checked.
#[derive(Debug, Clone, Copy)]
pub struct SigEvent {
    pub signo: i32,
    pub value: u64,
    pub notify: Notify,
}

/// An interval timer's target: its signal, from the kernel, to the process.
struct ITimerSignal {
    group: Weak<ThreadGroup>,
    signo: i32,
}

impl Target for ITimerSignal {
    fn expired(&self, _count: u64) -> bool {
        let Some(group) = self.group.upgrade() else {
            return false;
        };
        // Expiries while the signal is pending are lost, as on Linux.
        group.send(SigInfo {
            signo: self.signo,
            code: SI_KERNEL,
            ..Default::default()
        });
        true
    }
}

#[derive(Default)]
struct Overruns {
    /// The timer's signal is queued and not yet delivered.
    queued: bool,
    /// Expiries beyond the first since the signal was queued.
    pending: u64,
    /// What the last delivered signal reported (timer_getoverrun).
    last: i32,
}

/// A POSIX timer's target: its signal, queued once.
struct TimerSignal {
    id: i32,
    event: SigEvent,
    group: Weak<ThreadGroup>,
    overruns: Mutex<Overruns>,
}

impl Target for TimerSignal {
    fn expired(&self, count: u64) -> bool {
        let Some(group) = self.group.upgrade() else {
            return false;
        };
        let mut o = lock(&self.overruns);
        let info = SigInfo {
            signo: self.event.signo,
            code: SI_TIMER,
            timerid: self.id,
            value: self.event.value,
            ..Default::default()
        };
        let queued = match self.event.notify {
            Notify::Process => group.send(info),
            // The timer thread is never the target: always wake it.
            Notify::Thread(tid) => group.send_thread(tid, info, true).unwrap_or(false),
            Notify::None => false,
        };
        if queued {
            o.queued = true;
            o.pending = count - 1;
        }
        // Quiet until delivery; a signal that couldn't be queued (already pending from
        // elsewhere) leaves the timer watched.
        !queued
    }
}

struct PosixTimer {
    timer: Arc<Timer>,
    signal: Option<Arc<TimerSignal>>,
}

#[derive(Default)]
struct PosixTable {
    next_id: i32,
    timers: BTreeMap<i32, PosixTimer>,
}

/// One process's timers.
#[derive(Default)]
pub struct ProcessTimers {
    itimers: Mutex<[Option<Arc<Timer>>; ITIMER_COUNT]>,
    posix: Mutex<PosixTable>,
}

impl ProcessTimers {
    /// setitimer: `which` is ITIMER_REAL, ITIMER_VIRTUAL or ITIMER_PROF (checked by the
    /// caller). Returns the previous setting.
    pub fn set_itimer(
        &self,
        group: &Arc<ThreadGroup>,
        which: usize,
        new: TimerSpec,
    ) -> Result<TimerSpec, Errno> {
        let mut itimers = lock(&self.itimers);
        if itimers[which].is_none() {
            if new.value.is_zero() {
                return Ok(TimerSpec::default());
            }
            let (clock, signo) = match which {
                0 => (Clock::Host(libc::CLOCK_MONOTONIC), libc::SIGALRM),
                1 => (
                    Clock::Cpu(CpuClock::Process(Arc::downgrade(group))),
                    libc::SIGVTALRM,
                ),
                _ => (
                    Clock::Cpu(CpuClock::Process(Arc::downgrade(group))),
                    libc::SIGPROF,
                ),
            };
            let target = ITimerSignal {
                group: Arc::downgrade(group),
                signo,
            };
            itimers[which] = Some(Timer::new(clock, Some(Box::new(target)))?);
        }
        let timer = itimers[which].as_ref().ok_or(Errno::EINVAL)?;
        let mut new = new;
        if which != 0 && !new.value.is_zero() {
            // Linux's set_cpu_itimer adds a tick to the first expiry (getitimer shows it).
            new.value += cpu::tick();
        }
        timer.set(false, new)
    }

    /// getitimer.
    pub fn get_itimer(&self, which: usize) -> TimerSpec {
        lock(&self.itimers)[which]
            .as_ref()
            .map(|t| t.get())
            .unwrap_or_default()
    }

    /// timer_create: a disarmed timer on `clock`; `event` None is a NULL sigevent
    /// (SIGALRM to the process, carrying the timer's id). Returns the timer's id.
    pub fn create(
        &self,
        group: &Arc<ThreadGroup>,
        clock: Clock,
        event: Option<SigEvent>,
        limit: usize,
    ) -> Result<i32, Errno> {
        let mut table = lock(&self.posix);
        if table.timers.len() >= limit.min(MAX_POSIX_TIMERS) {
            return Err(Errno::EAGAIN);
        }
        // Ids count up from 0 per process and skip those in use, as Linux's.
        let mut id = table.next_id;
        while table.timers.contains_key(&id) {
            id = id.checked_add(1).unwrap_or(0);
        }
        let event = event.unwrap_or(SigEvent {
            signo: libc::SIGALRM,
            value: id as u64,
            notify: Notify::Process,
        });
        let signal = (event.notify != Notify::None).then(|| {
            Arc::new(TimerSignal {
                id,
                event,
                group: Arc::downgrade(group),
                overruns: Mutex::new(Overruns::default()),
            })
        });
        let target = signal.clone().map(|s| Box::new(s) as Box<dyn Target>);
        let timer = Timer::new(clock, target)?;
        table.timers.insert(id, PosixTimer { timer, signal });
        table.next_id = id.checked_add(1).unwrap_or(0);
        Ok(id)
    }

    fn with_timer<R>(&self, id: i32, f: impl FnOnce(&PosixTimer) -> R) -> Result<R, Errno> {
        let table = lock(&self.posix);
        table.timers.get(&id).map(f).ok_or(Errno::EINVAL)
    }

    /// timer_settime. Returns the previous setting.
    pub fn settime(&self, id: i32, absolute: bool, new: TimerSpec) -> Result<TimerSpec, Errno> {
        self.with_timer(id, |t| t.timer.set(absolute, new))?
    }

    /// timer_gettime.
    pub fn gettime(&self, id: i32) -> Result<TimerSpec, Errno> {
        self.with_timer(id, |t| t.timer.get())
    }

    /// timer_getoverrun: the overrun count of the last delivered signal.
    pub fn getoverrun(&self, id: i32) -> Result<i32, Errno> {
        self.with_timer(id, |t| {
            t.signal.as_ref().map_or(0, |s| lock(&s.overruns).last)
        })
    }

    /// timer_delete.
    pub fn delete(&self, id: i32) -> Result<(), Errno> {
        let removed = lock(&self.posix).timers.remove(&id);
        removed.map(drop).ok_or(Errno::EINVAL)
    }

    /// A signal leaves a queue for delivery: a POSIX timer's learns its overrun count and
    /// the timer is watched again; one whose timer was deleted is dropped (None), as Linux
    /// drops the signals of deleted timers.
    pub fn signal_dequeued(&self, mut info: SigInfo) -> Option<SigInfo> {
        if info.code != SI_TIMER {
            return Some(info);
        }
        let table = lock(&self.posix);
        let t = table.timers.get(&info.timerid)?;
        let Some(signal) = t.signal.as_ref().filter(|s| s.event.signo == info.signo) else {
            return Some(info);
        };
        let mut o = lock(&signal.overruns);
        if !o.queued {
            return Some(info);
        }
        let overrun = o.pending.saturating_add(t.timer.take_expirations());
        o.last = overrun.min(i32::MAX as u64) as i32;
        o.pending = 0;
        o.queued = false;
        info.overrun = o.last;
        drop(o);
        t.timer.resume();
        Some(info)
    }

    /// execve: POSIX timers are deleted; interval timers stay.
    pub fn exec(&self) {
        let old = std::mem::take(&mut lock(&self.posix).timers);
        drop(old);
    }

    /// The process ended: every timer goes.
    pub fn clear(&self) {
        self.exec();
        let old = std::mem::take(&mut *lock(&self.itimers));
        drop(old);
    }
}
