//! Job control: stopping and continuing a process (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU and
//! SIGCONT), and the changes its parent can wait for (wait4's WUNTRACED and WCONTINUED,
//! waitid's WSTOPPED and WCONTINUED).
//!
//! A stop is decided by the thread that takes the stop signal (its default action); the
//! other threads are kicked and each parks at its next return to user mode, so a stopped
//! process runs no application code. A continue happens when SIGCONT is *sent*, as Linux's
//! prepare_signal does: the threads are released whether or not SIGCONT is blocked or
//! handled. SIGKILL releases them too, to die.

use std::sync::{Condvar, Mutex};

/// A stop or continue the parent hasn't collected with wait yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobEvent {
    /// Stopped by this signal.
    Stopped(i32),
    Continued,
}

#[derive(Default)]
struct State {
    stopped: bool,
    /// The signal that stopped it, while stopped.
    signal: i32,
    /// The last change, until a wait collects it.
    report: Option<JobEvent>,
}

/// A process's job-control state.
#[derive(Default)]
pub struct JobControl {
    state: Mutex<State>,
    resumed: Condvar,
}

impl JobControl {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops the process because of `sig`. False if it was already stopped.
    pub fn stop(&self, sig: i32) -> bool {
        let mut s = self.lock();
        if s.stopped {
            return false;
        }
        s.stopped = true;
        s.signal = sig;
        s.report = Some(JobEvent::Stopped(sig));
        true
    }

    /// Continues a stopped process (SIGCONT), calling `announce` (telling the parent)
    /// before any of its threads can run, so that the parent hears of the continue before
    /// anything the process does next. False if it wasn't stopped.
    pub fn resume(&self, announce: impl FnOnce()) -> bool {
        let mut s = self.lock();
        if !s.stopped {
            return false;
        }
        s.stopped = false;
        s.report = Some(JobEvent::Continued);
        announce();
        self.resumed.notify_all();
        true
    }

    /// Releases the threads of a stopped process without a report (SIGKILL, exit).
    pub fn release(&self) {
        self.lock().stopped = false;
        self.resumed.notify_all();
    }

    /// The signal the process is stopped by, if stopped.
    pub fn stop_signal(&self) -> Option<i32> {
        let s = self.lock();
        s.stopped.then_some(s.signal)
    }

    pub fn is_stopped(&self) -> bool {
        self.lock().stopped
    }

    /// Parks the calling thread while the process is stopped, until it is continued or
    /// `ending()` says the process is going away.
    pub fn wait_while_stopped(&self, ending: impl Fn() -> bool) {
        let mut s = self.lock();
        while s.stopped && !ending() {
            s = self
                .resumed
                .wait_timeout(s, std::time::Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The change a wait asks for (`stopped`: WUNTRACED/WSTOPPED, `continued`: WCONTINUED),
    /// collected unless `keep` (WNOWAIT).
    pub fn collect(&self, stopped: bool, continued: bool, keep: bool) -> Option<JobEvent> {
        let mut s = self.lock();
        let wanted = match s.report? {
            JobEvent::Stopped(_) => stopped,
            JobEvent::Continued => continued,
        };
        if !wanted {
            return None;
        }
        let report = s.report;
        if !keep {
            s.report = None;
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_then_continue_reports_each_once() {
        let j = JobControl::default();
        assert!(j.stop(libc::SIGSTOP));
        assert!(!j.stop(libc::SIGTSTP));
        assert_eq!(j.collect(false, true, false), None);
        assert_eq!(
            j.collect(true, false, true),
            Some(JobEvent::Stopped(libc::SIGSTOP))
        );
        assert_eq!(
            j.collect(true, false, false),
            Some(JobEvent::Stopped(libc::SIGSTOP))
        );
        assert_eq!(j.collect(true, true, false), None);
        let mut announced = 0;
        assert!(j.resume(|| announced += 1));
        assert!(!j.is_stopped());
        assert_eq!(j.collect(true, true, false), Some(JobEvent::Continued));
        assert!(!j.resume(|| announced += 1));
        assert_eq!(announced, 1);
    }
}
