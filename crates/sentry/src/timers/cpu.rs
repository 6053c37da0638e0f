//! CPU time of processes and threads. Every task thread is a host thread that runs its
//! vCPU, so the host's CPU clock of that thread counts the task's guest code and the calls
//! the sentry serves on it; a process's time is the sum over its threads, plus what its
//! ended threads used. Calls served by the ring poller are not counted (they run on the
//! poller's thread).

use std::sync::{Mutex, MutexGuard, Weak};
use std::time::Duration;

use crate::process::ThreadGroup;

#[derive(Default)]
struct Clocks {
    /// Live threads and their host CPU clocks.
    threads: Vec<(i32, libc::clockid_t)>,
    /// Time used by threads that have ended.
    ended: Duration,
}

/// The CPU clocks of one process's threads.
#[derive(Default)]
pub struct CpuClocks {
    clocks: Mutex<Clocks>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn read_clock(id: libc::clockid_t) -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer. A clock of a live thread of this host process
    // (threads are removed, on their own thread, before they end) is always valid.
    if unsafe { libc::clock_gettime(id, &mut ts) } != 0 {
        return Duration::ZERO;
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// The host kernel's tick (1/HZ), which the coarse clocks' resolution is.
pub fn tick() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    if unsafe { libc::clock_getres(libc::CLOCK_REALTIME_COARSE, &mut ts) } != 0 {
        return Duration::from_millis(4);
    }
    Duration::new(
        ts.tv_sec.max(0) as u64,
        ts.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

impl CpuClocks {
    /// Starts counting the calling host thread as task `tid`.
    pub fn add_current_thread(&self, tid: i32) {
        let mut id: libc::clockid_t = 0;
        // SAFETY: pthread_self is the calling thread; id is a valid out-pointer.
        if unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut id) } == 0 {
            lock(&self.clocks).threads.push((tid, id));
        }
    }

    /// Task `tid` ends: its time so far stays in the process's total. Called on the
    /// thread itself, so its clock is still valid.
    pub fn remove_thread(&self, tid: i32) {
        let mut c = lock(&self.clocks);
        if let Some(i) = c.threads.iter().position(|&(t, _)| t == tid) {
            let (_, id) = c.threads.swap_remove(i);
            c.ended += read_clock(id);
        }
    }

    /// The process's CPU time.
    pub fn process(&self) -> Duration {
        let c = lock(&self.clocks);
        c.ended
            + c.threads
                .iter()
                .map(|&(_, id)| read_clock(id))
                .sum::<Duration>()
    }

    /// Thread `tid`'s CPU time, if it is a live thread of the process.
    pub fn thread(&self, tid: i32) -> Option<Duration> {
        let c = lock(&self.clocks);
        let &(_, id) = c.threads.iter().find(|&&(t, _)| t == tid)?;
        Some(read_clock(id))
    }

    /// How many threads count: CPU time grows at most this many times faster than real
    /// time.
    pub fn threads(&self) -> u32 {
        lock(&self.clocks).threads.len().max(1) as u32
    }
}

/// A CPU-time clock a timer counts.
#[derive(Clone)]
pub enum CpuClock {
    Process(Weak<ThreadGroup>),
    Thread(Weak<ThreadGroup>, i32),
}

impl CpuClock {
    /// The clock's time now; None once the process or thread is gone.
    pub fn now(&self) -> Option<Duration> {
        match self {
            CpuClock::Process(g) => Some(g.upgrade()?.cpu.process()),
            CpuClock::Thread(g, tid) => g.upgrade()?.cpu.thread(*tid),
        }
    }

    /// How many times faster than real time the clock can advance at most.
    pub fn max_rate(&self) -> u32 {
        match self {
            CpuClock::Process(g) => g.upgrade().map_or(1, |g| g.cpu.threads()),
            CpuClock::Thread(..) => 1,
        }
    }
}
