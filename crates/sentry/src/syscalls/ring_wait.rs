//! Calls that would wait, kept on the ring for a short while (issue 12 item 3).
//!
//! A call the ring poller can't finish at once because it would wait (a futex wait, a read
//! of an empty pipe, a short sleep) normally goes to the task's own thread: an exit from the
//! guest, a sleep in the host, a new `KVM_RUN`, tens of microseconds quiet and hundreds under
//! load. Here the poller keeps such a call for up to [`WINDOW`] instead, trying it again
//! while the guest spins in the trampoline; a wake-up in the meantime answers it through the
//! ring. A wait that outlasts the window goes to the thread as before, and sleeps there
//! without holding a host core.
//!
//! Spinning only pays when the wake-up comes from something that has a core meanwhile: on a
//! 2-core host a futex ping-pong between two application threads can't complete while one
//! spins and the poller polls. So futex and pipe waits are adaptive: after [`MISSES`] waits
//! in a row that ran out, only every [`PROBE_EVERY`]th is tried, until one succeeds. Short
//! sleeps (at most the window) always stay: their end is known.

use std::time::{Duration, Instant};

use platform::{Retry, UserRegs};

use crate::futex;
use crate::task::{has_deliverable, TaskState};

/// How long a call may wait on the ring: about what the exit it saves costs here.
pub const WINDOW: Duration = Duration::from_micros(50);
/// Waits in a row that ran out before the ring stops trying (see the module docs).
const MISSES: u32 = 2;
/// While it has stopped, one call in this many is tried anyway.
const PROBE_EVERY: u32 = 16;

/// What a call kept on the ring waits for.
enum Pending {
    /// A short sleep, until then.
    Sleep(Instant),
    /// A futex wait, queued without sleeping.
    Futex(futex::Queued),
    /// A pipe read or write, or a connect on a host stream socket, tried again each time.
    Stream,
    /// Already answered (a futex word that had changed): the value of RAX.
    Answer(u64),
}

/// One task's state of waits on the ring.
#[derive(Default)]
pub struct RingWaits {
    pending: Option<Pending>,
    misses: u32,
    skipped: u32,
}

/// Whether an adaptive wait should be tried now (see the module docs).
fn worth_trying(w: &mut RingWaits) -> bool {
    if w.misses < MISSES {
        return true;
    }
    w.skipped = w.skipped.wrapping_add(1);
    w.skipped.is_multiple_of(PROBE_EVERY)
}

/// For a call the poller declined: how long it may wait on the ring (None: to the thread).
pub fn begin(w: &mut RingWaits, st: &TaskState, regs: &UserRegs) -> Option<Duration> {
    if has_deliverable(st) {
        return None;
    }
    let nr = regs.rax as u32 as i64;
    let a = regs.syscall_args();
    let pending = match nr {
        libc::SYS_nanosleep => Pending::Sleep(short_sleep(st, a[0])?),
        libc::SYS_clock_nanosleep => {
            let relative = a[1] as i32 & libc::TIMER_ABSTIME == 0;
            let clock = a[0] as i64 as i32;
            let known = [
                libc::CLOCK_REALTIME,
                libc::CLOCK_MONOTONIC,
                libc::CLOCK_BOOTTIME,
                libc::CLOCK_TAI,
            ]
            .contains(&clock);
            if !relative || !known {
                return None;
            }
            Pending::Sleep(short_sleep(st, a[2])?)
        }
        libc::SYS_futex => {
            // Decided before queueing: a wait queued and then withdrawn could take a wake
            // that nobody then sees.
            if !super::futex::is_untimed_wait(a) || !worth_trying(w) {
                return None;
            }
            match super::futex::queue_untimed_wait(st, a)? {
                Some(q) => Pending::Futex(q),
                None => Pending::Answer((-(libc::EAGAIN as i64)) as u64),
            }
        }
        // A write of at most PIPE_BUF bytes is all or nothing; a longer one may wait
        // part-way, after writing some.
        libc::SYS_read | libc::SYS_write
            if (nr == libc::SYS_read || a[2] <= libc::PIPE_BUF as u64)
                && st
                    .fds
                    .get(a[0])
                    .ok()
                    .is_some_and(|f| f.special_desc().and_then(|d| d.as_pipe()).is_some()) =>
        {
            if !worth_trying(w) {
                return None;
            }
            Pending::Stream
        }
        // A blocking connect on a host stream socket: the first try starts the connection
        // (EINPROGRESS on the host), each retry asks the host again, which answers 0 once it
        // is established (or its error) and EALREADY meanwhile; a connect handed over later
        // finds the attempt in progress (EALREADY) and waits for it on the task's thread,
        // as a connect restarted after a signal does.
        libc::SYS_connect if super::inet::connect_may_wait(st, a[0]) => {
            if !worth_trying(w) {
                return None;
            }
            Pending::Stream
        }
        _ => return None,
    };
    w.pending = Some(pending);
    Some(WINDOW)
}

/// The end of a sleep of at most [`WINDOW`] given by the timespec at `addr`.
fn short_sleep(st: &TaskState, addr: u64) -> Option<Instant> {
    let ts = super::time::read_timespec(st, addr).ok()?;
    let d = Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
    (d <= WINDOW).then(|| Instant::now() + d)
}

/// Tries again the call kept on the ring (see [`platform::FastSyscalls::retry`]).
pub fn retry(w: &mut RingWaits, st: &mut TaskState, regs: &mut UserRegs, last: bool) -> Retry {
    let Some(pending) = w.pending.take() else {
        return Retry::HandOver;
    };
    // A signal to deliver: the thread serves the call, with the rules for interrupted calls.
    let last = last || has_deliverable(st);
    let outcome = match pending {
        Pending::Answer(v) => {
            regs.rax = v;
            Retry::Done
        }
        Pending::Sleep(until) if Instant::now() >= until => {
            regs.rax = 0;
            Retry::Done
        }
        p @ Pending::Sleep(_) => {
            if last {
                Retry::HandOver
            } else {
                w.pending = Some(p);
                Retry::Wait
            }
        }
        Pending::Futex(q) => {
            if q.woken() || last {
                // Leaving the queue tells whether a waker took the wait first: then it ends
                // as woken, whatever else happened.
                if q.cancel() {
                    regs.rax = 0;
                    Retry::Done
                } else {
                    Retry::HandOver
                }
            } else {
                w.pending = Some(Pending::Futex(q));
                Retry::Wait
            }
        }
        Pending::Stream if last => Retry::HandOver,
        Pending::Stream => {
            if super::dispatch_on_poller(st, regs) {
                if st.signals.interrupted_call.take().is_some() {
                    regs.rax = (-(libc::EINTR as i64)) as u64;
                }
                if has_deliverable(st) {
                    // The call raised a signal (SIGPIPE): the thread must come to deliver it.
                    st.group.interrupt_thread(st.tid);
                }
                Retry::Done
            } else {
                w.pending = Some(Pending::Stream);
                Retry::Wait
            }
        }
    };
    match outcome {
        Retry::Done => w.misses = 0,
        Retry::HandOver => w.misses = w.misses.saturating_add(1),
        Retry::Wait => {}
    }
    outcome
}
