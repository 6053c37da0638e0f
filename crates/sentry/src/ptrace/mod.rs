//! ptrace: tracer/tracee links and ptrace-stops.
//!
//! Shaped like gVisor's `kernel/ptrace.go` and Linux's `kernel/ptrace.c`: a traced thread
//! (a *tracee*) is linked to a tracer process; at the points Linux defines (signal
//! delivery, system call entry and exit, events such as exec, fork, clone and exit, group
//! stops, PTRACE_INTERRUPT) the tracee enters a *ptrace-stop*: it publishes its registers,
//! FPU state, siginfo and a wait status here, tells its tracer (a wait report and SIGCHLD
//! with CLD_TRAPPED), lets go of its task state and sleeps until the tracer resumes it
//! (PTRACE_CONT, PTRACE_SYSCALL, PTRACE_DETACH...), SIGKILL, or the end of the process.
//! Meanwhile the tracer reads and writes the published state (PEEKUSER, GETREGS,
//! SETREGSET...) and the tracee's memory; the tracee takes it back when it resumes.
//!
//! The stop itself runs on the tracee's own thread, in `Task::run` (task.rs); this module
//! holds the shared state, the wait side and the `ptrace` system call (`request.rs`).
//! Links are per thread (tid), tracers are processes: any thread of the tracer may wait
//! for and command its tracees.

pub mod regs;
pub mod request;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use platform::UserRegs;

use crate::mm::Mm;
use crate::process::ThreadGroup;
use crate::signal_frame::SigInfo;
use crate::task::ExitStatus;

pub const PTRACE_O_TRACESYSGOOD: u32 = 1;
pub const PTRACE_O_TRACEFORK: u32 = 1 << 1;
pub const PTRACE_O_TRACEVFORK: u32 = 1 << 2;
pub const PTRACE_O_TRACECLONE: u32 = 1 << 3;
pub const PTRACE_O_TRACEEXEC: u32 = 1 << 4;
pub const PTRACE_O_TRACEVFORKDONE: u32 = 1 << 5;
pub const PTRACE_O_TRACEEXIT: u32 = 1 << 6;
pub const PTRACE_O_TRACESECCOMP: u32 = 1 << 7;
pub const PTRACE_O_EXITKILL: u32 = 1 << 20;
pub const PTRACE_O_SUSPEND_SECCOMP: u32 = 1 << 21;
/// Every option Linux accepts.
pub const PTRACE_O_MASK: u32 = 0xff | PTRACE_O_EXITKILL | PTRACE_O_SUSPEND_SECCOMP;

pub const PTRACE_EVENT_FORK: u32 = 1;
pub const PTRACE_EVENT_VFORK: u32 = 2;
pub const PTRACE_EVENT_CLONE: u32 = 3;
pub const PTRACE_EVENT_EXEC: u32 = 4;
pub const PTRACE_EVENT_VFORK_DONE: u32 = 5;
pub const PTRACE_EVENT_EXIT: u32 = 6;
pub const PTRACE_EVENT_STOP: u32 = 128;

/// PTRACE_GETEVENTMSG at a syscall-entry and -exit stop (Linux 5.3+).
pub const EVENTMSG_SYSCALL_ENTRY: u64 = 1;
pub const EVENTMSG_SYSCALL_EXIT: u64 = 2;

/// waitid's si_code for a ptrace-stop.
pub const CLD_TRAPPED: i32 = 4;

/// How long a stopped tracee sleeps before looking whether it was killed meanwhile.
const STOP_SLICE: Duration = Duration::from_millis(20);

/// Which kind of ptrace-stop a tracee is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopKind {
    /// Signal-delivery-stop: the tracer may change or suppress the signal.
    Signal,
    SyscallEntry,
    SyscallExit,
    /// PTRACE_EVENT_* (exec, fork, clone, exit, and PTRACE_EVENT_STOP).
    Event(u32),
    /// A group-stop (SIGSTOP and the like) seen by the tracer.
    Group,
}

/// How the tracee continues after a stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// Runs on; `sig` (0 for none) is the signal to deliver (signal-delivery-stop) or to
    /// send (syscall-stops).
    Run { sig: i32 },
    /// Detached: runs on untraced with `sig`.
    Detach { sig: i32 },
    /// PTRACE_LISTEN: stays in the group stop; its end is reported as a new stop.
    Listen,
}

/// What the tracee does once resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Cont,
    /// PTRACE_SYSCALL: stop at the next system call's entry and exit.
    Syscall,
    /// PTRACE_SINGLESTEP.
    Step,
}

/// The state shared between a tracee and its tracer.
pub struct Inner {
    /// The tracer's process id; 0 once detached.
    pub tracer: i32,
    /// Attached with PTRACE_SEIZE (or auto-attached from a seized tracee).
    pub seized: bool,
    pub options: u32,
    pub mode: Mode,
    /// The stop the tracee is in, if any.
    pub stop: Option<StopKind>,
    /// The stop's wait code (Linux's exit_code: the signal, with the event in bits 8-15),
    /// until a wait of the tracer collects it.
    pub report: Option<i32>,
    /// The tracee ended (reported to a tracer that isn't its parent).
    pub exited: Option<ExitStatus>,
    /// Registers while stopped (the tracer reads and writes these).
    pub regs: UserRegs,
    /// Linux's orig_rax: the system call number at syscall-stops, -1 elsewhere (or the
    /// interrupted call's, which a restart reruns).
    pub orig_rax: u64,
    /// XSAVE image while stopped; `fpu_dirty` once the tracer changed it.
    pub fpu: Vec<u8>,
    pub fpu_dirty: bool,
    /// The tracee's memory.
    pub mm: Option<Arc<Mm>>,
    /// The stop's siginfo (GETSIGINFO, SETSIGINFO), and whether the tracer wrote it.
    pub siginfo: [u8; 128],
    pub siginfo_written: bool,
    pub event_msg: u64,
    /// Set by the tracer to end the stop.
    pub resume: Option<Resume>,
    /// PTRACE_INTERRUPT asked for a stop.
    pub interrupt: bool,
    /// An event stop due at the end of the current system call (exec, fork...).
    pub pending_event: Option<(u32, u64)>,
    /// A signal the tracer let through a signal-delivery-stop, to be delivered now.
    pub injected: Option<SigInfo>,
    /// The current group stop was reported already.
    pub group_stop_reported: bool,
    /// Debug registers as PEEKUSER/POKEUSER see them (only DR7 = 0 is accepted).
    pub debugreg: [u64; 8],
    /// The trap flag was set for PTRACE_SINGLESTEP (Linux's TIF_FORCED_TF): cleared again
    /// when the tracee resumes otherwise.
    pub forced_tf: bool,
    /// Single-stepping over a `syscall` instruction: the trap is reported after the call
    /// (the trampoline the call enters must not run with the trap flag).
    pub step_syscall: bool,
}

/// A traced thread.
pub struct Tracee {
    pub tid: i32,
    /// Its process.
    pub tgid: i32,
    pub group: Arc<ThreadGroup>,
    inner: Mutex<Inner>,
    cv: Condvar,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Tracee {
    pub fn new(tid: i32, tgid: i32, group: Arc<ThreadGroup>, tracer: i32, seized: bool) -> Self {
        Tracee {
            tid,
            tgid,
            group,
            inner: Mutex::new(Inner {
                tracer,
                seized,
                options: 0,
                mode: Mode::Cont,
                stop: None,
                report: None,
                exited: None,
                regs: UserRegs::default(),
                orig_rax: u64::MAX,
                fpu: Vec::new(),
                fpu_dirty: false,
                mm: None,
                siginfo: [0; 128],
                siginfo_written: false,
                event_msg: 0,
                resume: None,
                interrupt: false,
                pending_event: None,
                injected: None,
                group_stop_reported: false,
                debugreg: [0; 8],
                forced_tf: false,
                step_syscall: false,
            }),
            cv: Condvar::new(),
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    pub fn tracer(&self) -> i32 {
        self.lock().tracer
    }

    pub fn options(&self) -> u32 {
        self.lock().options
    }

    /// The tracee's side: enters a stop with everything the tracer may look at.
    #[allow(clippy::too_many_arguments)]
    pub fn enter_stop(
        &self,
        kind: StopKind,
        code: i32,
        regs: &UserRegs,
        orig_rax: u64,
        fpu: Vec<u8>,
        mm: Arc<Mm>,
        info: &SigInfo,
        event_msg: Option<u64>,
    ) {
        let mut i = self.lock();
        i.stop = Some(kind);
        i.report = Some(code);
        i.regs = *regs;
        i.orig_rax = orig_rax;
        i.fpu = fpu;
        i.fpu_dirty = false;
        i.mm = Some(mm);
        i.siginfo = info.bytes();
        i.siginfo_written = false;
        if let Some(m) = event_msg {
            i.event_msg = m;
        }
        i.resume = None;
    }

    /// The tracee's side: sleeps until the tracer resumes it, or `killed()` (SIGKILL, the
    /// process ending). None when killed.
    pub fn wait_resume(&self, killed: impl Fn() -> bool) -> Option<Resume> {
        let mut i = self.lock();
        loop {
            if let Some(r) = i.resume.take() {
                i.stop = None;
                i.report = None;
                i.mm = None;
                return Some(r);
            }
            if killed() {
                i.stop = None;
                i.report = None;
                return None;
            }
            if i.tracer == 0 {
                // The tracer went away: detached.
                i.stop = None;
                i.report = None;
                return Some(Resume::Detach { sig: 0 });
            }
            i = self
                .cv
                .wait_timeout(i, STOP_SLICE)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// The tracer's side: ends the stop.
    pub fn resume(&self, r: Resume) {
        let mut i = self.lock();
        i.resume = Some(r);
        self.cv.notify_all();
    }

    /// Wakes a stopped tracee to look again (SIGKILL, detach by the tracer's end).
    pub fn wake(&self) {
        let _i = self.lock();
        self.cv.notify_all();
    }
}

/// Every tracee of the sandbox, by tid, and who may trace whom (PR_SET_PTRACER).
#[derive(Default)]
pub struct Registry {
    /// How many links exist: the hot paths look at this alone when nothing is traced.
    count: AtomicUsize,
    tracees: Mutex<BTreeMap<i32, Arc<Tracee>>>,
    /// PR_SET_PTRACER: process -> the process allowed to trace it (-1: any).
    ptracers: Mutex<BTreeMap<i32, i32>>,
}

impl Registry {
    /// The link of thread `tid`, if it is traced (one relaxed load when nothing is).
    pub fn get(&self, tid: i32) -> Option<Arc<Tracee>> {
        if self.count.load(Ordering::Relaxed) == 0 {
            return None;
        }
        lock(&self.tracees)
            .get(&tid)
            .filter(|t| t.tracer() != 0)
            .cloned()
    }

    pub fn is_traced(&self, tid: i32) -> bool {
        self.get(tid).is_some()
    }

    /// Links a tracee; EPERM if the thread is traced already.
    pub fn link(&self, tracee: Arc<Tracee>) -> Result<(), i32> {
        let mut t = lock(&self.tracees);
        if t.get(&tracee.tid).is_some_and(|x| x.tracer() != 0) {
            return Err(libc::EPERM);
        }
        tracee.group.traced.fetch_add(1, Ordering::Relaxed);
        if let Some(old) = t.insert(tracee.tid, tracee) {
            old.group.traced.fetch_sub(1, Ordering::Relaxed);
        } else {
            self.count.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Forgets thread `tid`'s link.
    pub fn unlink(&self, tid: i32) {
        if let Some(old) = lock(&self.tracees).remove(&tid) {
            old.group.traced.fetch_sub(1, Ordering::Relaxed);
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// The links whose tracer is process `tracer`, exited tracees included.
    pub fn tracees_of(&self, tracer: i32) -> Vec<Arc<Tracee>> {
        if self.count.load(Ordering::Relaxed) == 0 {
            return Vec::new();
        }
        lock(&self.tracees)
            .values()
            .filter(|t| t.tracer() == tracer)
            .cloned()
            .collect()
    }

    /// The tracer of thread `tid` (0: none), as /proc/PID/status's TracerPid.
    pub fn tracer_of(&self, tid: i32) -> i32 {
        self.get(tid).map_or(0, |t| t.tracer())
    }

    /// PR_SET_PTRACER: `tracer` (-1: any, 0: none) may attach to process `pid`.
    pub fn set_ptracer(&self, pid: i32, tracer: i32) {
        let mut p = lock(&self.ptracers);
        if tracer == 0 {
            p.remove(&pid);
        } else {
            p.insert(pid, tracer);
        }
    }

    pub fn ptracer(&self, pid: i32) -> Option<i32> {
        lock(&self.ptracers).get(&pid).copied()
    }

    /// Thread `tid` of process `tgid` ended with `status`: its link goes, except that a
    /// tracer which isn't the parent keeps it until its wait reports the end.
    pub fn tracee_exited(&self, tid: i32, tgid: i32, parent: i32, status: ExitStatus, last: bool) {
        if tgid == tid {
            lock(&self.ptracers).remove(&tgid);
        }
        let Some(tr) = lock(&self.tracees).get(&tid).cloned() else {
            return;
        };
        let mut i = tr.lock();
        i.mm = None;
        i.fpu = Vec::new();
        // A thread's end is reported to the tracer; a process's, when the tracer isn't
        // the parent (which hears of it anyway).
        let report = if tid == tgid {
            i.tracer != parent && last
        } else {
            true
        };
        if i.tracer != 0 && report {
            i.exited = Some(status);
            i.stop = None;
            i.report = None;
            return;
        }
        drop(i);
        self.unlink(tid);
    }

    /// Process `pid` ended: its tracees are detached, or killed with PTRACE_O_EXITKILL.
    pub fn tracer_exited(&self, pid: i32) {
        for tr in self.tracees_of(pid) {
            let kill = {
                let mut i = tr.lock();
                i.tracer = 0;
                i.options & PTRACE_O_EXITKILL != 0
            };
            self.unlink(tr.tid);
            if kill {
                request::kill(&tr);
            } else {
                tr.wake();
            }
        }
    }
}

/// A wait status word for a ptrace-stop with code `code`.
pub fn status_word(code: i32) -> i32 {
    (code << 8) | 0x7f
}

/// The siginfo of a stop the tracee reports about itself (syscall-stops and events:
/// Linux's ptrace_do_notify).
pub fn self_info(code: i32, pid: i32, uid: u32) -> SigInfo {
    SigInfo {
        signo: libc::SIGTRAP,
        code,
        pid,
        uid,
        ..Default::default()
    }
}

/// Reads back a siginfo the tracer wrote with SETSIGINFO (the fields the sentry keeps).
pub fn parse_siginfo(b: &[u8; 128]) -> SigInfo {
    let i32_at = |o: usize| i32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));
    let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
    let signo = i32_at(0);
    let code = i32_at(8);
    let fault = matches!(
        signo,
        libc::SIGSEGV | libc::SIGBUS | libc::SIGILL | libc::SIGFPE | libc::SIGTRAP
    ) && code > 0;
    SigInfo {
        signo,
        errno: i32_at(4),
        code,
        pid: if fault { 0 } else { i32_at(16) },
        uid: if fault { 0 } else { i32_at(20) as u32 },
        addr: if fault { u64_at(16) } else { 0 },
        ..Default::default()
    }
}

/// clone by a traced thread (Linux's kernel_clone and ptrace_init_task): with the option
/// for this kind of clone (or CLONE_PTRACE), the child is traced by the same tracer from
/// its first instruction: a SIGSTOP is pending for it, or for a seized tracer, a
/// PTRACE_EVENT_STOP. The parent's event stop (the child's id as its message) follows at
/// the end of the call.
pub fn on_clone(
    t: &crate::task::TaskState,
    flags: u64,
    child_tid: i32,
    child_group: &Arc<ThreadGroup>,
    child_signals: &crate::signal::ThreadSignals,
) {
    const CLONE_PTRACE: u64 = 0x2000;
    const CLONE_VFORK: u64 = 0x4000;
    const CLONE_UNTRACED: u64 = 0x80_0000;
    let Some(parent) = t.kernel.ptrace.get(t.tid) else {
        return;
    };
    let (tracer, options, seized) = {
        let i = parent.lock();
        (i.tracer, i.options, i.seized)
    };
    let mut event = 0;
    if flags & CLONE_UNTRACED == 0 {
        let exit_signal = (flags & 0xff) as i32;
        let (e, option) = if flags & CLONE_VFORK != 0 {
            (PTRACE_EVENT_VFORK, PTRACE_O_TRACEVFORK)
        } else if exit_signal != libc::SIGCHLD {
            (PTRACE_EVENT_CLONE, PTRACE_O_TRACECLONE)
        } else {
            (PTRACE_EVENT_FORK, PTRACE_O_TRACEFORK)
        };
        if options & option != 0 {
            event = e;
        }
    }
    if event == 0 && flags & CLONE_PTRACE == 0 {
        return;
    }
    let child = Arc::new(Tracee::new(
        child_tid,
        child_group.pid,
        child_group.clone(),
        tracer,
        seized,
    ));
    {
        let mut i = child.lock();
        i.options = options;
        if seized {
            i.interrupt = true;
        }
    }
    if t.kernel.ptrace.link(child).is_err() {
        return;
    }
    if !seized {
        child_signals.queue(SigInfo {
            signo: libc::SIGSTOP,
            code: crate::signal_frame::SI_KERNEL,
            ..Default::default()
        });
    }
    if event != 0 {
        parent.lock().pending_event = Some((event, child_tid as u64));
    }
}

/// execve by a traced thread succeeded: PTRACE_EVENT_EXEC at the end of the call with
/// PTRACE_O_TRACEEXEC (its message the thread's former id), otherwise a SIGTRAP.
pub fn on_exec(t: &crate::task::TaskState) {
    let Some(tr) = t.kernel.ptrace.get(t.tid) else {
        return;
    };
    let mut i = tr.lock();
    if i.options & PTRACE_O_TRACEEXEC != 0 {
        i.pending_event = Some((PTRACE_EVENT_EXEC, t.tid as u64));
    } else if !i.seized {
        drop(i);
        t.signals.thread.queue(SigInfo {
            signo: libc::SIGTRAP,
            code: 0,
            pid: t.pid,
            uid: t.creds.uid,
            ..Default::default()
        });
    }
}

/// How one process looks at another (Linux's PTRACE_MODE_* bits): reading it (/proc links,
/// kcmp) or attaching to it (ptrace, its memory), judged with the caller's file-system or
/// real ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccessMode {
    pub attach: bool,
    pub fscreds: bool,
}

impl AccessMode {
    pub const READ_FSCREDS: AccessMode = AccessMode {
        attach: false,
        fscreds: true,
    };
    pub const READ_REALCREDS: AccessMode = AccessMode {
        attach: false,
        fscreds: false,
    };
    pub const ATTACH_FSCREDS: AccessMode = AccessMode {
        attach: true,
        fscreds: true,
    };
    pub const ATTACH_REALCREDS: AccessMode = AccessMode {
        attach: true,
        fscreds: false,
    };
}

/// The side of the access check the target process gives: its credentials and whether it
/// is dumpable.
pub struct AccessTarget<'a> {
    pub pid: i32,
    pub creds: &'a crate::task::Creds,
    pub dumpable: bool,
}

/// Linux's __ptrace_may_access with the commoncap check (cap_ptrace_access_check), without
/// Yama (which [`may_access_process`] adds for an attach): whether the process `caller_pid`, with
/// `caller`'s credentials, may look at `target` in `mode`. Its own process always; otherwise
/// the caller's user id (file-system or real, as `mode` says) must be all the target's user
/// ids and its group id all the target's group ids, or the caller must hold CAP_SYS_PTRACE
/// over the target's user namespace; a target that is not dumpable (it changed ids, or
/// PR_SET_DUMPABLE 0) needs CAP_SYS_PTRACE anyway; and the caller must hold, in the
/// target's user namespace, every capability the target may hold (or CAP_SYS_PTRACE over
/// it).
pub fn may_access(
    caller_pid: i32,
    caller: &crate::task::Creds,
    target: &AccessTarget<'_>,
    mode: AccessMode,
) -> bool {
    use crate::caps::{ns_capable, Cap};
    if caller_pid == target.pid {
        return true;
    }
    let t = target.creds;
    // The file-system ids follow the effective ones in the sandbox (task.rs, fs_creds).
    let (uid, gid) = if mode.fscreds {
        (caller.euid, caller.egid)
    } else {
        (caller.uid, caller.gid)
    };
    let has_cap = || ns_capable(caller, &t.user_ns, Cap::SysPtrace);
    let same_ids = [t.uid, t.euid, t.suid].iter().all(|&u| u == uid)
        && [t.gid, t.egid, t.sgid].iter().all(|&g| g == gid);
    if !same_ids && !has_cap() {
        return false;
    }
    if !target.dumpable && !has_cap() {
        return false;
    }
    // cap_ptrace_access_check: the effective set for a file-system look, the permitted set
    // otherwise.
    let caller_caps = if mode.fscreds {
        caller.caps.effective
    } else {
        caller.caps.permitted
    };
    let subset = t.user_ns.ino == caller.user_ns.ino && t.caps.permitted & !caller_caps == 0;
    subset || has_cap()
}

/// Linux's ptrace_may_access as a whole, against the process `target_pid` (false if it
/// isn't there): [`may_access`], then, for an attach, Yama's scope 1 (relational): the
/// target is a descendant of the caller, or named it (or one of its ancestors) with
/// PR_SET_PTRACER, or the caller holds CAP_SYS_PTRACE over the target's user namespace.
/// ptrace attach, process_vm_readv/writev, pidfd_getfd, /proc/PID/mem (attach), kcmp and
/// the /proc links into a process (read) all ask this.
pub fn may_access_process(
    kernel: &crate::process::Kernel,
    caller_pid: i32,
    caller: &crate::task::Creds,
    target_pid: i32,
    mode: AccessMode,
) -> bool {
    if caller_pid == target_pid {
        return true;
    }
    let Some(info) = kernel.procfs.process(target_pid) else {
        return false;
    };
    let theirs = info.creds();
    let target = AccessTarget {
        pid: target_pid,
        creds: &theirs,
        // A process that has ended has no memory, whose dumpable flag Linux checks.
        dumpable: info.dumpable() || info.mm().is_none(),
    };
    if !may_access(caller_pid, caller, &target, mode) {
        return false;
    }
    if !mode.attach || crate::caps::ns_capable(caller, &theirs.user_ns, crate::caps::Cap::SysPtrace)
    {
        return true;
    }
    let descends_from = |mut p: i32, ancestor: i32| {
        for _ in 0..4096 {
            if p == ancestor {
                return true;
            }
            if p <= 1 {
                break;
            }
            p = kernel.ppid(p);
        }
        false
    };
    if descends_from(target_pid, caller_pid) {
        return true;
    }
    match kernel.ptrace.ptracer(target_pid) {
        Some(-1) => true,
        // The named process or one of its descendants (Linux's ptracer_exception_found).
        Some(allowed) => descends_from(caller_pid, allowed),
        None => false,
    }
}

#[cfg(test)]
mod access_tests {
    use super::*;
    use crate::caps::Cap;
    use crate::task::Creds;

    fn target(creds: &Creds, dumpable: bool) -> AccessTarget<'_> {
        AccessTarget {
            pid: 2,
            creds,
            dumpable,
        }
    }

    fn without_ptrace(mut c: Creds) -> Creds {
        c.caps.effective &= !Cap::SysPtrace.bit();
        c.caps.permitted &= !Cap::SysPtrace.bit();
        c
    }

    #[test]
    fn same_user_may_read_a_dumpable_process_only() {
        let me = Creds::login(1000, 1000, vec![]);
        let them = Creds::login(1000, 1000, vec![]);
        assert!(may_access(
            1,
            &me,
            &target(&them, true),
            AccessMode::READ_FSCREDS
        ));
        assert!(!may_access(
            1,
            &me,
            &target(&them, false),
            AccessMode::READ_FSCREDS
        ));
        // Its own process, dumpable or not.
        let own = AccessTarget {
            pid: 1,
            creds: &them,
            dumpable: false,
        };
        assert!(may_access(1, &me, &own, AccessMode::READ_FSCREDS));
    }

    #[test]
    fn another_user_or_group_needs_cap_sys_ptrace() {
        let them = Creds::login(1000, 1000, vec![]);
        let other_user = Creds::login(1001, 1000, vec![]);
        let other_group = Creds::login(1000, 1001, vec![]);
        for me in [&other_user, &other_group] {
            assert!(!may_access(
                1,
                me,
                &target(&them, true),
                AccessMode::READ_FSCREDS
            ));
        }
        let root = Creds::login(0, 0, vec![]);
        assert!(may_access(
            1,
            &root,
            &target(&them, false),
            AccessMode::READ_FSCREDS
        ));
        let weak_root = without_ptrace(root);
        assert!(!may_access(
            1,
            &weak_root,
            &target(&them, true),
            AccessMode::READ_FSCREDS
        ));
    }

    #[test]
    fn fscreds_judge_the_effective_ids_realcreds_the_real_ones() {
        let them = Creds::login(1000, 1000, vec![]);
        let mut me = Creds::login(1000, 1000, vec![]);
        me.euid = 1001;
        assert!(!may_access(
            1,
            &me,
            &target(&them, true),
            AccessMode::READ_FSCREDS
        ));
        assert!(may_access(
            1,
            &me,
            &target(&them, true),
            AccessMode::READ_REALCREDS
        ));
    }

    #[test]
    fn a_target_with_more_capabilities_needs_cap_sys_ptrace() {
        // Same ids, but the target holds capabilities the caller lacks (commoncap).
        let mut them = Creds::login(1000, 1000, vec![]);
        them.caps.permitted = Cap::SysAdmin.bit();
        let me = Creds::login(1000, 1000, vec![]);
        assert!(!may_access(
            1,
            &me,
            &target(&them, true),
            AccessMode::ATTACH_REALCREDS
        ));
    }
}
