//! Readiness events and waiting for them.
//!
//! A file that can change readiness (a pipe, an eventfd, a socket, an epoll instance, a host
//! stream) owns a [`WaitQueue`] and calls [`WaitQueue::notify`] with the events that may have
//! become true. Whoever wants to learn of such changes registers a [`Listener`] on the queue:
//! a [`Waiter`] (a task sleeping in poll, select or epoll_wait), or an epoll item that moves
//! itself onto its instance's ready list. Files without a queue (regular files, directories,
//! memory devices) are always ready and never change.
//!
//! The protocol for a waiting task, which is what makes lost wake-ups impossible:
//!
//! 1. register the task's waiter on every queue of interest;
//! 2. check readiness ([`crate::FileDescription::readiness`]);
//! 3. if nothing is ready, [`Waiter::wait`]; on return go back to 2.
//!
//! A change after 1 notifies the waiter, so a wait in 3 returns at once even if the change
//! came between 2 and 3. Notifications are hints: a woken task always re-checks readiness.
//!
//! Interrupts: [`Waiter::wake`] ends the current or next wait of a task (signals), and an
//! interrupt check installed with [`Waiter::set_interrupt_check`] (the task's thread group
//! is ending) is polled every [`SLICE`] while the task sleeps. File operations that block
//! inside a file (a pipe read) reach the task through [`current`], which the sentry sets
//! for the calls it serves on the task's thread, and sleep with [`wait_on`], which gives
//! [`ERESTARTSYS`] once the task is interrupted.
//!
//! Rules for queue owners: notify after every change that can make an event true (data
//! arrived: POLLIN; room appeared: POLLOUT; an end went away: POLLHUP/POLLERR with
//! POLLIN/POLLOUT), and preferably after releasing the file's own lock. Listeners never call
//! back into the file from `notify`, so notifying under the file's lock is also safe.

use std::cell::RefCell;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use crate::Errno;

/// Event bits, as poll(2) and epoll(7) use them (the two share values).
pub const POLLIN: u32 = 0x001;
pub const POLLPRI: u32 = 0x002;
pub const POLLOUT: u32 = 0x004;
pub const POLLERR: u32 = 0x008;
pub const POLLHUP: u32 = 0x010;
pub const POLLNVAL: u32 = 0x020;
pub const POLLRDNORM: u32 = 0x040;
pub const POLLRDBAND: u32 = 0x080;
pub const POLLWRNORM: u32 = 0x100;
pub const POLLWRBAND: u32 = 0x200;
pub const POLLMSG: u32 = 0x400;
pub const POLLRDHUP: u32 = 0x2000;

/// What a file without a queue reports: always readable and writable (Linux's
/// DEFAULT_POLLMASK).
pub const DEFAULT_READY: u32 = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM;
/// Events reported whether asked for or not.
pub const ALWAYS: u32 = POLLERR | POLLHUP;
/// Every event bit, for listeners that filter for themselves.
pub const ALL_EVENTS: u32 = u32::MAX;

/// Something told when a queue's events may have changed.
pub trait Listener: Send + Sync {
    /// `events` may have become true. Must be quick, must not block, and must not call
    /// back into the file that notified (it may hold its own lock).
    fn notify(&self, events: u32);
}

struct Entry {
    id: u64,
    mask: u32,
    listener: Weak<dyn Listener>,
}

#[derive(Default)]
struct QueueInner {
    entries: Vec<Entry>,
    next_id: u64,
}

/// The listeners of one file (or of a group of files sharing state, like a pipe's two ends).
/// Cloning gives another handle on the same queue.
#[derive(Clone, Default)]
pub struct WaitQueue {
    inner: Arc<Mutex<QueueInner>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl WaitQueue {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `listener` for `mask` (POLLERR and POLLHUP are always included, as on
    /// Linux). The listener stays registered until the returned [`Registration`] is dropped;
    /// the queue holds it weakly, so a listener dropped without unregistering just goes quiet.
    pub fn register<L: Listener + 'static>(&self, listener: &Arc<L>, mask: u32) -> Registration {
        let weak: Weak<dyn Listener> = Arc::downgrade(listener) as Weak<dyn Listener>;
        let mut q = lock(&self.inner);
        // Drop entries whose listener is gone, so a queue never grows without bound.
        q.entries.retain(|e| e.listener.strong_count() > 0);
        let id = q.next_id;
        q.next_id += 1;
        q.entries.push(Entry {
            id,
            mask: mask | ALWAYS,
            listener: weak,
        });
        Registration {
            queue: Arc::downgrade(&self.inner),
            id,
        }
    }

    /// Tells every listener whose mask meets `events` (all of them when `events` is 0, which
    /// means "something changed"). Listeners run after the queue's lock is released, so they
    /// may register and unregister freely.
    pub fn notify(&self, events: u32) {
        let listeners: Vec<Arc<dyn Listener>> = {
            let q = lock(&self.inner);
            if q.entries.is_empty() {
                return;
            }
            q.entries
                .iter()
                .filter(|e| events == 0 || e.mask & events != 0)
                .filter_map(|e| e.listener.upgrade())
                .collect()
        };
        for l in listeners {
            l.notify(events);
        }
    }

    /// Whether anyone is listening (lets owners skip work nobody would see).
    pub fn has_listeners(&self) -> bool {
        !lock(&self.inner).entries.is_empty()
    }
}

/// A listener's place in a queue; dropping it unregisters.
#[must_use = "dropping a Registration unregisters at once"]
pub struct Registration {
    queue: Weak<Mutex<QueueInner>>,
    id: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(q) = self.queue.upgrade() {
            lock(&q).entries.retain(|e| e.id != self.id);
        }
    }
}

/// Why [`Waiter::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// A queue the waiter is registered on was notified (re-check readiness).
    Notified,
    /// The deadline passed.
    TimedOut,
    /// [`Waiter::wake`] was called: the task must return to user mode (a signal).
    Interrupted,
}

#[derive(Default)]
struct WaiterState {
    notified: bool,
    /// [`Waiter::interrupt`]: every wait fails until cleared.
    interrupted: bool,
    /// [`Waiter::wake`]: a signal was sent. With an interrupt check installed, the check
    /// decides whether the task stops waiting (the signal may be gone already: taken by
    /// another thread, or delivered before a wake that came late); without one, as
    /// `interrupted`.
    hinted: bool,
}

/// Kernel-internal results of an interrupted sleep, as Linux's (include/linux/errno.h). They
/// never reach the application: when the system call returns, the sentry turns them into a
/// restart of the call or EINTR, by whether a handler runs and has SA_RESTART (signal(7)).
/// Restart if no handler runs, or the handler has SA_RESTART; else EINTR. What blocking
/// file operations (pipes, sockets, eventfds, locks) give.
pub const ERESTARTSYS: Errno = 512;
/// Restart whatever happens.
pub const ERESTARTNOINTR: Errno = 513;
/// Restart if no handler runs; EINTR if one does, SA_RESTART or not (poll, pause...).
pub const ERESTARTNOHAND: Errno = 514;
/// As ERESTARTNOHAND, but the restart goes through restart_syscall, which resumes the call
/// from what it saved (the remaining time of a sleep).
pub const ERESTART_RESTARTBLOCK: Errno = 516;

/// Whether `e` is one of the restart results above.
pub fn is_restart(e: Errno) -> bool {
    matches!(
        e,
        ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND | ERESTART_RESTARTBLOCK
    )
}

/// How often a sleeping task asks its interrupt check (the same period as futex waits).
pub const SLICE: Duration = Duration::from_millis(50);

type InterruptCheck = Box<dyn Fn() -> bool + Send + Sync>;

/// A sleeping task's side of waiting. One per task, reused by every blocking call; the
/// sentry keeps a handle so that a signal can [`wake`](Waiter::wake) the task.
#[derive(Default)]
pub struct Waiter {
    state: Mutex<WaiterState>,
    cv: Condvar,
    /// Asked while sleeping: whether the task must stop waiting for a reason nobody wakes
    /// it for (its thread group is ending).
    check: OnceLock<InterruptCheck>,
    /// The condition variable of a file the task sleeps on in [`wait_on`] (its address), so
    /// that [`wake`](Waiter::wake) reaches it at once.
    sleeping_on: Mutex<Option<usize>>,
    /// An eventfd [`wake`](Waiter::wake) signals, for a task that sleeps in the host's poll(2)
    /// on a host descriptor (a network socket) rather than on a condvar; made on first use.
    wake_fd: OnceLock<Option<std::os::fd::OwnedFd>>,
}

impl Waiter {
    pub fn new() -> Arc<Waiter> {
        Arc::new(Waiter::default())
    }

    /// Forgets notifications from earlier waits (call before registering for a new one).
    /// A pending interrupt stays: it is consumed only by [`clear_interrupt`](Self::clear_interrupt).
    pub fn reset(&self) {
        lock(&self.state).notified = false;
    }

    /// Installs the check asked every [`SLICE`] while the task sleeps; the first one stays.
    pub fn set_interrupt_check(&self, check: impl Fn() -> bool + Send + Sync + 'static) {
        let _ = self.check.set(Box::new(check));
    }

    /// Whether an interrupt check is installed.
    pub fn has_interrupt_check(&self) -> bool {
        self.check.get().is_some()
    }

    /// Sleeps until notified, interrupted, or `deadline` (None: no deadline). Returns at once
    /// if a notification or an interrupt came since the last wait (or [`reset`](Self::reset)).
    /// A notification is consumed; an interrupt is not: it stays until cleared, so that every
    /// wait of the task fails until the signal is dealt with.
    pub fn wait(&self, deadline: Option<Instant>) -> Wake {
        let mut st = lock(&self.state);
        loop {
            if self.must_stop(&mut st) {
                return Wake::Interrupted;
            }
            if st.notified {
                st.notified = false;
                return Wake::Notified;
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Wake::TimedOut;
            }
            // With an interrupt check, sleep in slices to ask it again.
            let slice = self.check.get().map(|_| now + SLICE);
            let until = match (deadline, slice) {
                (Some(d), Some(s)) => Some(d.min(s)),
                (d, s) => d.or(s),
            };
            st = match until {
                None => self.cv.wait(st).unwrap_or_else(|e| e.into_inner()),
                Some(u) => {
                    self.cv
                        .wait_timeout(st, u.saturating_duration_since(now))
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }

    /// Whether the task must stop waiting: an interrupt, or a signal's wake that the
    /// interrupt check confirms (see `WaiterState::hinted`), or the check on its own.
    fn must_stop(&self, st: &mut WaiterState) -> bool {
        if st.interrupted {
            return true;
        }
        match self.check.get() {
            Some(check) if check() => true,
            Some(_) => {
                // A late wake for a signal that is no longer there (a timer's signal sent,
                // seen and handled by the task, and only then the sender's wake): the
                // conformance test aio got EINTR from a later io_getevents under load.
                st.hinted = false;
                false
            }
            None => st.hinted,
        }
    }

    /// A signal was sent to the task: its current or next wait stops if the signal is still
    /// there to deliver (the interrupt check says so; without a check, it stops, and every
    /// later wait too until [`clear_interrupt`](Self::clear_interrupt)).
    pub fn wake(&self) {
        lock(&self.state).hinted = true;
        self.rouse();
    }

    /// Interrupts the current or next wait, whatever the interrupt check says (a ptrace
    /// interrupt, a group stop or exit). Sticky until
    /// [`clear_interrupt`](Self::clear_interrupt).
    pub fn interrupt(&self) {
        lock(&self.state).interrupted = true;
        self.rouse();
    }

    /// Gets a sleeping task to look at its state again, wherever it sleeps.
    fn rouse(&self) {
        self.cv.notify_all();
        if let Some(Some(fd)) = self.wake_fd.get() {
            let one = 1u64;
            // SAFETY: writes 8 bytes from `one` to an eventfd we own; a full counter
            // (EAGAIN) still leaves it readable, which is all a sleeper needs.
            unsafe {
                libc::write(
                    std::os::fd::AsRawFd::as_raw_fd(fd),
                    (&one as *const u64).cast(),
                    8,
                )
            };
        }
        if let Some(cv) = *lock(&self.sleeping_on) {
            // SAFETY: `wait_on` and `NotifyOnWake` set this to a condvar they borrow for the
            // whole wait, and clear it (under this same lock) before it ends, so the condvar
            // is alive while the lock is held here. Notifying is allowed from any thread.
            unsafe { (*(cv as *const Condvar)).notify_all() };
        }
    }

    /// Whether an interrupt is pending, or the interrupt check says to stop.
    pub fn interrupted(&self) -> bool {
        let mut st = lock(&self.state);
        self.must_stop(&mut st)
    }

    /// The eventfd [`wake`](Self::wake) makes readable, for sleeping in the host's poll(2)
    /// alongside a host descriptor; None if the host refuses an eventfd. A sleeper drains
    /// it ([`drain_wake_fd`]) and then asks [`interrupted`](Self::interrupted).
    pub fn host_wake_fd(&self) -> Option<std::os::fd::RawFd> {
        self.wake_fd
            .get_or_init(|| {
                // SAFETY: plain eventfd(2); the result is checked.
                let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
                // SAFETY: a fresh descriptor we own.
                (fd >= 0).then(|| unsafe { std::os::fd::FromRawFd::from_raw_fd(fd) })
            })
            .as_ref()
            .map(std::os::fd::AsRawFd::as_raw_fd)
    }

    /// Consumes a pending interrupt (once the signal has been handled).
    pub fn clear_interrupt(&self) {
        let mut st = lock(&self.state);
        st.interrupted = false;
        st.hinted = false;
    }
}

impl Listener for Waiter {
    fn notify(&self, _events: u32) {
        lock(&self.state).notified = true;
        self.cv.notify_all();
    }
}

thread_local! {
    /// The waiter of the task whose system call this thread is serving.
    static CURRENT: RefCell<Option<Arc<Waiter>>> = const { RefCell::new(None) };
    /// This thread must never sleep (the ring poller, which serves every task).
    static NO_SLEEP: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// What [`wait_on`] returns on a thread that must not sleep: an internal errno, above
/// Linux's ERESTART* range, that no system call gives the guest. The sentry then serves the
/// call on the task's own thread instead, from the start: a file operation that sleeps has
/// changed nothing before its first sleep, so running it again there is safe.
pub const WOULD_SLEEP: Errno = 600;

/// Marks this thread as one that must not sleep (true) or may (false); returns the old mark.
pub fn set_no_sleep(no_sleep: bool) -> bool {
    NO_SLEEP.with(|n| n.replace(no_sleep))
}

/// Whether this thread must not sleep: a wait gives [`WOULD_SLEEP`] instead.
pub fn no_sleep() -> bool {
    NO_SLEEP.with(|n| n.get())
}

/// Names the task this thread serves (None: none), returning the previous one. The sentry
/// sets it around the calls it serves on a task's own thread.
pub fn set_current(waiter: Option<Arc<Waiter>>) -> Option<Arc<Waiter>> {
    CURRENT.with(|c| std::mem::replace(&mut *c.borrow_mut(), waiter))
}

/// The waiter of the task this thread serves, for operations that block inside a file.
pub fn current() -> Option<Arc<Waiter>> {
    CURRENT.with(|c| c.borrow().clone())
}

/// Empties a [`Waiter::host_wake_fd`] that poll(2) reported readable.
pub fn drain_wake_fd(fd: std::os::fd::RawFd) {
    let mut v = 0u64;
    // SAFETY: reads 8 bytes into `v` from a non-blocking eventfd.
    unsafe { libc::read(fd, (&mut v as *mut u64).cast(), 8) };
}

/// While alive, a [`Waiter::wake`] of the current task (a signal, or its thread group ending)
/// also notifies `cv`: for a sleeper that waits on a condition variable of its own (a futex
/// wait) rather than through [`wait_on`], which would otherwise see the wake only at its
/// next [`SLICE`] (a signal to a thread in `pthread_join` took 30 ms on average, 50 at
/// worst). Nothing when no task is current (unit tests).
pub struct NotifyOnWake<'a> {
    waiter: Option<Arc<Waiter>>,
    _cv: std::marker::PhantomData<&'a Condvar>,
}

/// See [`NotifyOnWake`].
pub fn notify_on_wake(cv: &Condvar) -> NotifyOnWake<'_> {
    let waiter = current();
    if let Some(w) = &waiter {
        *lock(&w.sleeping_on) = Some(cv as *const Condvar as usize);
    }
    NotifyOnWake {
        waiter,
        _cv: std::marker::PhantomData,
    }
}

impl Drop for NotifyOnWake<'_> {
    fn drop(&mut self) {
        // Cleared under the lock `rouse` holds while it notifies: once this returns, the
        // borrowed condvar is no longer reached.
        if let Some(w) = &self.waiter {
            *lock(&w.sleeping_on) = None;
        }
    }
}

/// `Condvar::wait` for a file operation that blocks (a pipe read): ERESTARTSYS once the current
/// task is interrupted. A signal's [`Waiter::wake`] notifies the condvar, so the sleeper
/// sees it at once; the interrupt check is also asked every [`SLICE`] (for a wake that
/// came between the check and the sleep). [`WOULD_SLEEP`] on a thread that must not sleep
/// (the ring poller), and a plain wait when no task is current (unit tests).
pub fn wait_on<'a, T>(cv: &Condvar, guard: MutexGuard<'a, T>) -> Result<MutexGuard<'a, T>, Errno> {
    if no_sleep() {
        return Err(WOULD_SLEEP);
    }
    let Some(w) = current() else {
        return Ok(cv.wait(guard).unwrap_or_else(|e| e.into_inner()));
    };
    *lock(&w.sleeping_on) = Some(cv as *const Condvar as usize);
    let result = if w.interrupted() {
        Err(ERESTARTSYS)
    } else {
        let guard = cv
            .wait_timeout(guard, SLICE)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        if w.interrupted() {
            Err(ERESTARTSYS)
        } else {
            Ok(guard)
        }
    };
    *lock(&w.sleeping_on) = None;
    result
}

/// [`wait_on`] with a deadline: `(guard, true)` once `deadline` has passed (a terminal's
/// VTIME). ERESTARTSYS when the task is interrupted; [`WOULD_SLEEP`] on a thread that must
/// not sleep.
pub fn wait_on_until<'a, T>(
    cv: &Condvar,
    guard: MutexGuard<'a, T>,
    deadline: Instant,
) -> Result<(MutexGuard<'a, T>, bool), Errno> {
    if no_sleep() {
        return Err(WOULD_SLEEP);
    }
    let now = Instant::now();
    if now >= deadline {
        return Ok((guard, true));
    }
    let slice = deadline.saturating_duration_since(now).min(SLICE);
    let Some(w) = current() else {
        let g = cv
            .wait_timeout(guard, slice)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        return Ok((g, Instant::now() >= deadline));
    };
    *lock(&w.sleeping_on) = Some(cv as *const Condvar as usize);
    let result = if w.interrupted() {
        Err(ERESTARTSYS)
    } else {
        let guard = cv
            .wait_timeout(guard, slice)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        if w.interrupted() {
            Err(ERESTARTSYS)
        } else {
            Ok((guard, Instant::now() >= deadline))
        }
    };
    *lock(&w.sleeping_on) = None;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    struct Count(AtomicU32);
    impl Listener for Count {
        fn notify(&self, _: u32) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn masks_filter_and_registrations_unregister() {
        let q = WaitQueue::new();
        let c = Arc::new(Count(AtomicU32::new(0)));
        let reg = q.register(&c, POLLIN);
        q.notify(POLLOUT);
        assert_eq!(c.0.load(Ordering::SeqCst), 0);
        q.notify(POLLIN | POLLOUT);
        q.notify(POLLHUP); // always included
        q.notify(0); // "something changed"
        assert_eq!(c.0.load(Ordering::SeqCst), 3);
        drop(reg);
        assert!(!q.has_listeners());
        q.notify(POLLIN);
        assert_eq!(c.0.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn dead_listeners_are_skipped_and_pruned() {
        let q = WaitQueue::new();
        let c = Arc::new(Count(AtomicU32::new(0)));
        let reg = q.register(&c, POLLIN);
        drop(c);
        q.notify(POLLIN);
        let c2 = Arc::new(Count(AtomicU32::new(0)));
        let _r2 = q.register(&c2, POLLIN);
        assert_eq!(lock(&q.inner).entries.len(), 1);
        drop(reg);
    }

    #[test]
    fn registration_outliving_queue_is_harmless() {
        let q = WaitQueue::new();
        let w = Waiter::new();
        let reg = q.register(&w, POLLIN);
        drop(q);
        drop(reg);
    }

    #[test]
    fn notification_before_wait_is_not_lost() {
        let q = WaitQueue::new();
        let w = Waiter::new();
        let _reg = q.register(&w, POLLIN);
        q.notify(POLLIN);
        assert_eq!(w.wait(None), Wake::Notified);
        // Consumed: the next wait times out.
        let d = Instant::now() + Duration::from_millis(5);
        assert_eq!(w.wait(Some(d)), Wake::TimedOut);
        assert!(Instant::now() >= d);
    }

    #[test]
    fn reset_forgets_stale_notifications() {
        let w = Waiter::new();
        w.notify(POLLIN);
        w.reset();
        assert_eq!(w.wait(Some(Instant::now())), Wake::TimedOut);
    }

    #[test]
    fn notify_from_another_thread_wakes() {
        let q = WaitQueue::new();
        let w = Waiter::new();
        let _reg = q.register(&w, POLLIN);
        let q2 = q.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            q2.notify(POLLIN);
        });
        assert_eq!(w.wait(None), Wake::Notified);
        t.join().unwrap();
    }

    #[test]
    fn wake_interrupts_until_cleared() {
        let w = Waiter::new();
        let w2 = w.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            w2.wake();
        });
        assert_eq!(w.wait(None), Wake::Interrupted);
        t.join().unwrap();
        assert!(w.interrupted());
        assert_eq!(w.wait(None), Wake::Interrupted);
        w.clear_interrupt();
        assert_eq!(w.wait(Some(Instant::now())), Wake::TimedOut);
    }

    /// With an interrupt check, a signal's wake ends a wait only while the check confirms
    /// a signal to deliver: a wake that comes after its signal was dealt with (the sender
    /// descheduled between queueing the signal and waking the task) is no interruption
    /// (conformance aio saw a later io_getevents fail with EINTR from one). An interrupt
    /// (ptrace, a group stop or exit) ends waits whatever the check says.
    #[test]
    fn a_wake_whose_signal_is_gone_does_not_interrupt() {
        use std::sync::atomic::AtomicBool;
        let pending = Arc::new(AtomicBool::new(false));
        let w = Waiter::new();
        let p = pending.clone();
        w.set_interrupt_check(move || p.load(Ordering::SeqCst));
        w.wake();
        assert!(!w.interrupted());
        assert_eq!(
            w.wait(Some(Instant::now() + Duration::from_millis(5))),
            Wake::TimedOut
        );
        pending.store(true, Ordering::SeqCst);
        w.wake();
        assert_eq!(w.wait(None), Wake::Interrupted);
        pending.store(false, Ordering::SeqCst);
        w.interrupt();
        assert_eq!(w.wait(None), Wake::Interrupted);
        assert!(w.interrupted());
        w.clear_interrupt();
        assert_eq!(w.wait(Some(Instant::now())), Wake::TimedOut);
    }

    #[test]
    fn interrupt_check_ends_waits() {
        use std::sync::atomic::AtomicBool;
        let stop = Arc::new(AtomicBool::new(false));
        let w = Waiter::new();
        let s = stop.clone();
        w.set_interrupt_check(move || s.load(Ordering::SeqCst));
        assert_eq!(
            w.wait(Some(Instant::now() + Duration::from_millis(5))),
            Wake::TimedOut
        );
        let s = stop.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            s.store(true, Ordering::SeqCst);
        });
        let start = Instant::now();
        assert_eq!(w.wait(None), Wake::Interrupted);
        assert!(start.elapsed() < Duration::from_secs(5));
        t.join().unwrap();
        // Blocking inside a file: a restart result for the current task, through the
        // condvar helper.
        let m = Mutex::new(());
        let cv = Condvar::new();
        assert!(set_current(Some(w.clone())).is_none());
        assert!(matches!(wait_on(&cv, lock(&m)), Err(ERESTARTSYS)));
        set_current(None);
    }

    #[test]
    fn listeners_may_unregister_during_notify() {
        struct SelfRemoving(Mutex<Option<Registration>>);
        impl Listener for SelfRemoving {
            fn notify(&self, _: u32) {
                self.0.lock().unwrap().take();
            }
        }
        let q = WaitQueue::new();
        let l = Arc::new(SelfRemoving(Mutex::new(None)));
        *l.0.lock().unwrap() = Some(q.register(&l, POLLIN));
        q.notify(POLLIN);
        assert!(!q.has_listeners());
    }
}
