//! seccomp for sandboxed programs (seccomp(2)): strict mode and classic BPF filters, run by
//! the sentry on every system call of a thread that has them, before the call is served.
//!
//! Each thread has a [`ThreadSeccomp`]: its mode, its stack of filters (newest first, each
//! sharing its ancestors with the threads and processes it was copied to, as Linux's
//! refcounted list) and its no_new_privs flag. It is shared (an `Arc`) so that another
//! thread of the process can synchronise it (SECCOMP_FILTER_FLAG_TSYNC) and /proc can read
//! it while the thread sleeps holding its task state. A thread without seccomp pays one
//! relaxed atomic load and a branch per call ([`ThreadSeccomp::active`]).
//!
//! SECCOMP_RET_USER_NOTIF goes to the filter's listener (notify.rs; ENOSYS without one, as
//! Linux). Not done: SECCOMP_RET_TRACE gives ENOSYS, as without a tracer (no
//! PTRACE_EVENT_SECCOMP stop);
//! LOG actions and SECCOMP_FILTER_FLAG_LOG go to the sentry's log at debug level, not to
//! an audit log; SECCOMP_FILTER_FLAG_SPEC_ALLOW is accepted and changes nothing (the
//! guest's speculation controls are the host's).

pub mod bpf;
pub mod notify;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::errno::Errno;

pub const MODE_DISABLED: u8 = 0;
pub const MODE_STRICT: u8 = 1;
pub const MODE_FILTER: u8 = 2;

/// Filter return values (linux/seccomp.h).
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_KILL_THREAD: u32 = 0x0000_0000;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;
const RET_ACTION_FULL: u32 = 0xffff_0000;
const RET_DATA: u32 = 0x0000_ffff;

/// AUDIT_ARCH_X86_64, seccomp_data's arch.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

/// Linux's MAX_INSNS_PER_PATH: instructions across a thread's filters (as converted to
/// eBPF), each counting 4 more.
const MAX_INSNS_PER_PATH: usize = (1 << 18) / bpf::Insn::SIZE;

/// One installed filter and the ones installed before it.
#[derive(Debug)]
pub struct Filter {
    prog: bpf::Program,
    /// SECCOMP_FILTER_FLAG_LOG: log the actions other than ALLOW.
    log: bool,
    /// SECCOMP_FILTER_FLAG_NEW_LISTENER: where USER_NOTIF verdicts go.
    listener: Option<Arc<notify::Listener>>,
    prev: Option<Arc<Filter>>,
}

impl Drop for Filter {
    fn drop(&mut self) {
        // No task uses the filter any more: its listener hangs up.
        if let Some(l) = &self.listener {
            l.hung_up();
        }
    }
}

impl Filter {
    fn chain(self: &Arc<Filter>) -> impl Iterator<Item = &Arc<Filter>> {
        std::iter::successors(Some(self), |f| f.prev.as_ref())
    }
}

#[derive(Debug, Clone, Default)]
struct State {
    mode: u8,
    filter: Option<Arc<Filter>>,
}

/// A thread's seccomp state and no_new_privs flag.
#[derive(Debug, Default)]
pub struct ThreadSeccomp {
    /// Whether mode is not MODE_DISABLED: the fast path's only check.
    active: AtomicBool,
    no_new_privs: AtomicBool,
    state: Mutex<State>,
}

/// What /proc/PID/status shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Status {
    pub no_new_privs: bool,
    pub mode: u8,
    pub filters: usize,
}

/// The outcome of the filters for one system call.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// Serve the call.
    Allow,
    /// Don't serve it; return this value (a negative errno as u64, or 0).
    Return(u64),
    /// Don't serve it; raise SIGSYS with this si_errno (the registers stay as they were).
    Trap(u16),
    /// End the thread (`signal`: what it dies of), or the process if it is the last one.
    KillThread(i32),
    KillProcess,
    /// Hand the call to this listener's supervisor and wait for its answer.
    Notify(Arc<notify::Listener>),
}

impl PartialEq for Verdict {
    fn eq(&self, other: &Verdict) -> bool {
        use Verdict::*;
        match (self, other) {
            (Allow, Allow) | (KillProcess, KillProcess) => true,
            (Return(a), Return(b)) => a == b,
            (Trap(a), Trap(b)) => a == b,
            (KillThread(a), KillThread(b)) => a == b,
            (Notify(a), Notify(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl ThreadSeccomp {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether any mode is set: when false, nothing else needs looking at.
    #[inline]
    pub fn active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    pub fn no_new_privs(&self) -> bool {
        self.no_new_privs.load(Ordering::Relaxed)
    }

    pub fn set_no_new_privs(&self) {
        self.no_new_privs.store(true, Ordering::Relaxed);
    }

    pub fn mode(&self) -> u8 {
        self.lock().mode
    }

    pub fn status(&self) -> Status {
        let s = self.lock();
        Status {
            no_new_privs: self.no_new_privs(),
            mode: s.mode,
            filters: s.filter.as_ref().map_or(0, |f| f.chain().count()),
        }
    }

    /// A copy for a new thread or process (fork, clone): same mode, same filters.
    pub fn copy(&self) -> Arc<ThreadSeccomp> {
        let s = self.lock().clone();
        Arc::new(ThreadSeccomp {
            active: AtomicBool::new(s.mode != MODE_DISABLED),
            no_new_privs: AtomicBool::new(self.no_new_privs()),
            state: Mutex::new(s),
        })
    }

    /// The thread has ended: its filters are no longer used (a listener of the last user
    /// hangs up), whatever still refers to this state.
    pub fn release(&self) {
        let filter = self.lock().filter.take();
        drop(filter);
    }

    /// SECCOMP_SET_MODE_STRICT: EINVAL once filters are installed.
    pub fn set_strict(&self) -> Result<(), Errno> {
        let mut s = self.lock();
        if s.mode != MODE_DISABLED && s.mode != MODE_STRICT {
            return Err(Errno::EINVAL);
        }
        s.mode = MODE_STRICT;
        self.active.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Adds a checked filter on top of this thread's (seccomp_attach_filter). With `tsync`,
    /// every thread in `others` gets the same stack (and no_new_privs if this thread has
    /// it), provided each has no filter or one this thread's stack descends from;
    /// otherwise nothing changes and the first thread that can't follow is returned.
    pub fn attach(
        &self,
        prog: bpf::Program,
        log: bool,
        listener: Option<Arc<notify::Listener>>,
        tsync: Option<&[(i32, Arc<ThreadSeccomp>)]>,
    ) -> Result<(), AttachError> {
        let mut s = self.lock();
        if s.mode != MODE_DISABLED && s.mode != MODE_FILTER {
            return Err(AttachError::Errno(Errno::EINVAL));
        }
        // One listener per filter stack (Linux's has_duplicate_listener).
        if listener.is_some()
            && s.filter
                .as_ref()
                .is_some_and(|f| f.chain().any(|f| f.listener.is_some()))
        {
            return Err(AttachError::Errno(Errno::EBUSY));
        }
        let mut total = prog.converted_len();
        if let Some(f) = &s.filter {
            total += f.chain().map(|f| f.prog.converted_len() + 4).sum::<usize>();
        }
        if total > MAX_INSNS_PER_PATH {
            return Err(AttachError::Errno(Errno::ENOMEM));
        }
        if let Some(others) = tsync {
            for (tid, other) in others {
                if std::ptr::eq(Arc::as_ptr(other), self) {
                    continue;
                }
                let o = other.lock();
                let ok = match o.mode {
                    MODE_DISABLED => true,
                    MODE_FILTER => is_ancestor(o.filter.as_ref(), s.filter.as_ref()),
                    _ => false,
                };
                if !ok {
                    return Err(AttachError::Thread(*tid));
                }
            }
        }
        let new = Arc::new(Filter {
            prog,
            log,
            listener,
            prev: s.filter.take(),
        });
        if let Some(l) = &new.listener {
            l.set_filter(&new);
        }
        s.filter = Some(new.clone());
        s.mode = MODE_FILTER;
        self.active.store(true, Ordering::Relaxed);
        drop(s);
        if let Some(others) = tsync {
            let nnp = self.no_new_privs();
            for (_, other) in others {
                if std::ptr::eq(Arc::as_ptr(other), self) {
                    continue;
                }
                let mut o = other.lock();
                o.filter = Some(new.clone());
                o.mode = MODE_FILTER;
                if nnp {
                    other.set_no_new_privs();
                }
                other.active.store(true, Ordering::Relaxed);
            }
        }
        Ok(())
    }

    /// Runs this thread's filters (or strict mode's list) for a call.
    pub fn evaluate(&self, data: &Data) -> Verdict {
        let s = self.lock();
        match s.mode {
            MODE_STRICT => {
                const ALLOWED: [i64; 4] = [
                    libc::SYS_read,
                    libc::SYS_write,
                    libc::SYS_exit,
                    libc::SYS_rt_sigreturn,
                ];
                if ALLOWED.contains(&(data.nr as i64)) {
                    Verdict::Allow
                } else {
                    Verdict::KillThread(libc::SIGKILL)
                }
            }
            MODE_FILTER => {
                let Some(filter) = &s.filter else {
                    return Verdict::Allow;
                };
                let words = data.words();
                // Newest first; the lowest action (as a signed number) wins, the first
                // seen among equals.
                let mut ret = RET_ALLOW;
                let mut matched = filter;
                for f in filter.chain() {
                    let cur = bpf::run(&f.prog, &words);
                    if ((cur & RET_ACTION_FULL) as i32) < ((ret & RET_ACTION_FULL) as i32) {
                        ret = cur;
                        matched = f;
                    }
                }
                if ret & RET_ACTION_FULL == RET_USER_NOTIF {
                    if let Some(l) = &matched.listener {
                        return Verdict::Notify(l.clone());
                    }
                }
                verdict(ret, matched.log, data)
            }
            _ => Verdict::Allow,
        }
    }
}

/// Whether `parent` is `child` or one of its ancestors (no filter is everyone's).
fn is_ancestor(parent: Option<&Arc<Filter>>, child: Option<&Arc<Filter>>) -> bool {
    let Some(parent) = parent else {
        return true;
    };
    child.is_some_and(|c| c.chain().any(|f| Arc::ptr_eq(f, parent)))
}

fn verdict(ret: u32, log: bool, data: &Data) -> Verdict {
    let action = ret & RET_ACTION_FULL;
    let value = ret & RET_DATA;
    let logged = |what: &str| {
        tracing::debug!(
            "seccomp: {what} for system call {} ({}) at {:#x}",
            crate::syscalls::name(data.nr as u64),
            data.nr,
            data.ip
        );
    };
    match action {
        RET_ALLOW => Verdict::Allow,
        RET_LOG => {
            logged("LOG");
            Verdict::Allow
        }
        RET_ERRNO => {
            if log {
                logged("ERRNO");
            }
            // Linux caps the errno at MAX_ERRNO.
            Verdict::Return((-(value.min(4095) as i64)) as u64)
        }
        // No ptrace: as without a tracer. USER_NOTIF here: a filter without a listener.
        RET_TRACE | RET_USER_NOTIF => Verdict::Return((-(libc::ENOSYS as i64)) as u64),
        RET_TRAP => {
            if log {
                logged("TRAP");
            }
            Verdict::Trap(value as u16)
        }
        RET_KILL_THREAD => {
            logged("KILL_THREAD");
            Verdict::KillThread(libc::SIGSYS)
        }
        // KILL_PROCESS, and any action Linux doesn't know.
        _ => {
            logged("KILL_PROCESS");
            Verdict::KillProcess
        }
    }
}

/// Why a filter could not be attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachError {
    Errno(Errno),
    /// SECCOMP_FILTER_FLAG_TSYNC: this thread has a filter the caller's doesn't descend
    /// from.
    Thread(i32),
}

/// struct seccomp_data.
#[derive(Debug, Clone, Copy, Default)]
pub struct Data {
    pub nr: i32,
    pub arch: u32,
    pub ip: u64,
    pub args: [u64; 6],
}

impl Data {
    /// The words a filter loads (little-endian, as the structure lies in memory).
    pub fn words(&self) -> [u32; 16] {
        let mut w = [0u32; 16];
        w[0] = self.nr as u32;
        w[1] = self.arch;
        w[2] = self.ip as u32;
        w[3] = (self.ip >> 32) as u32;
        for (i, a) in self.args.iter().enumerate() {
            w[4 + 2 * i] = *a as u32;
            w[5 + 2 * i] = (*a >> 32) as u32;
        }
        w
    }
}

/// Whether an action value is one Linux knows (SECCOMP_GET_ACTION_AVAIL).
pub fn action_available(action: u32) -> bool {
    matches!(
        action,
        RET_KILL_PROCESS
            | RET_KILL_THREAD
            | RET_TRAP
            | RET_ERRNO
            | RET_USER_NOTIF
            | RET_TRACE
            | RET_LOG
            | RET_ALLOW
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpf::Insn;

    fn ret(v: u32) -> bpf::Program {
        bpf::check(&[Insn {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: v,
        }])
        .expect("valid")
    }

    #[test]
    fn the_most_restrictive_action_wins() {
        let t = ThreadSeccomp::default();
        assert!(!t.active());
        t.attach(ret(RET_ERRNO | 5), false, None, None)
            .expect("attach");
        t.attach(ret(RET_TRAP | 1), false, None, None)
            .expect("attach");
        t.attach(ret(RET_ERRNO | 7), false, None, None)
            .expect("attach");
        assert!(t.active());
        assert_eq!(t.evaluate(&Data::default()), Verdict::Trap(1));
        t.attach(ret(RET_ALLOW), false, None, None).expect("attach");
        t.attach(ret(RET_KILL_PROCESS), false, None, None)
            .expect("attach");
        assert_eq!(t.evaluate(&Data::default()), Verdict::KillProcess);
        assert_eq!(t.status().filters, 5);
        let u = ThreadSeccomp::default();
        u.attach(ret(RET_ERRNO | 9), false, None, None)
            .expect("attach");
        u.attach(ret(RET_ERRNO | 3), false, None, None)
            .expect("attach");
        assert_eq!(
            u.evaluate(&Data::default()),
            Verdict::Return((-3i64) as u64),
            "the newest among equals"
        );
        assert_eq!(u.set_strict(), Err(Errno::EINVAL));
    }

    /// The cost of one evaluation of bench/'s filter (arch check, 8-call allowlist, getpid
    /// the last entry): a measurement, not a test. `cargo test --release -p sentry --lib
    /// filter_cost -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn filter_cost() {
        let mut insns = vec![
            Insn {
                code: 0x20,
                jt: 0,
                jf: 0,
                k: 4,
            },
            Insn {
                code: 0x15,
                jt: 1,
                jf: 0,
                k: AUDIT_ARCH_X86_64,
            },
            Insn {
                code: 0x06,
                jt: 0,
                jf: 0,
                k: RET_KILL_PROCESS,
            },
            Insn {
                code: 0x20,
                jt: 0,
                jf: 0,
                k: 0,
            },
        ];
        for (i, nr) in [0u32, 1, 60, 231, 228, 12, 9, 39].into_iter().enumerate() {
            insns.push(Insn {
                code: 0x15,
                jt: 8 - i as u8,
                jf: 0,
                k: nr,
            });
        }
        insns.push(Insn {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: RET_ERRNO | 1,
        });
        insns.push(Insn {
            code: 0x06,
            jt: 0,
            jf: 0,
            k: RET_ALLOW,
        });
        let t = ThreadSeccomp::default();
        t.attach(bpf::check(&insns).expect("valid"), false, None, None)
            .expect("attach");
        let data = Data {
            nr: 39,
            arch: AUDIT_ARCH_X86_64,
            ..Default::default()
        };
        assert_eq!(t.evaluate(&data), Verdict::Allow);
        // The thread's CPU time, so that a busy machine's preemptions don't count.
        let cpu_ns = || {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: a valid out-pointer for the calling thread's CPU clock.
            unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
            ts.tv_sec as f64 * 1e9 + ts.tv_nsec as f64
        };
        let n = 2_000_000;
        let start = cpu_ns();
        for _ in 0..n {
            std::hint::black_box(t.evaluate(std::hint::black_box(&data)));
        }
        println!(
            "seccomp filter evaluation: {:.1} ns of CPU time",
            (cpu_ns() - start) / n as f64
        );
    }

    #[test]
    fn tsync_needs_related_filters() {
        let a = Arc::new(ThreadSeccomp::default());
        let b = Arc::new(ThreadSeccomp::default());
        a.attach(ret(RET_ALLOW), false, None, None).expect("attach");
        let child = a.copy();
        // b has no filter, child descends: both follow.
        let group = vec![(1, a.clone()), (2, b.clone()), (3, child.clone())];
        a.attach(ret(RET_ERRNO | 1), false, None, Some(&group))
            .expect("tsync");
        assert_eq!(b.status().filters, 2);
        assert_eq!(child.status().filters, 2);
        // An unrelated filter on b: refused, naming b.
        b.attach(ret(RET_ERRNO | 2), false, None, None)
            .expect("attach");
        assert_eq!(
            a.attach(ret(RET_ALLOW), false, None, Some(&group)),
            Err(AttachError::Thread(2))
        );
    }
}
