//! Tasks: the state of an application thread and the loop that runs it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use platform::{Context, Event, FastSyscalls, Fault, Retry, RingFpu, UserRegs};

use crate::fdtable::FdTable;
use crate::fs_context::FsContext;
use crate::mm::{FaultError, Mm};
use crate::process::{Completion, Kernel, ThreadGroup};
use crate::ptrace::{Mode, Resume, StopKind, Tracee};
use crate::signal::{SignalState, Signo, NSIG};
use crate::signal_frame::SigInfo;
use crate::syscalls;
use crate::SentryError;

/// Credentials of a task.
#[derive(Debug, Clone, Default)]
pub struct Creds {
    pub uid: u32,
    pub euid: u32,
    pub gid: u32,
    pub egid: u32,
    pub groups: Vec<u32>,
    /// Saved set-user-ID and set-group-ID.
    pub suid: u32,
    pub sgid: u32,
    /// Capability sets and securebits (caps.rs), which hold in `user_ns` and the
    /// namespaces it owns.
    pub caps: crate::caps::CapSets,
    /// The user namespace (Linux's cred->user_ns). The ids above are kernel ids (the
    /// sandbox's), translated at the system call boundary through its maps.
    pub user_ns: crate::namespaces::UserNsRef,
}

impl Creds {
    /// The credentials file access is checked with: the effective ids (the file-system
    /// ids follow them here) and the effective capabilities.
    pub fn fs_creds(&self) -> fs::vfs::Creds {
        fs::vfs::Creds {
            uid: self.euid,
            gid: self.egid,
            groups: self.groups.clone(),
            caps: self.caps.effective,
            userns: self.user_ns.mapped_ids(),
        }
    }

    /// Credentials for `uid` as a login would give them: root has every capability,
    /// anyone else none.
    pub fn login(uid: u32, gid: u32, groups: Vec<u32>) -> Creds {
        Creds {
            uid,
            euid: uid,
            suid: uid,
            gid,
            egid: gid,
            sgid: gid,
            groups,
            caps: if uid == 0 {
                crate::caps::CapSets::full()
            } else {
                Default::default()
            },
            user_ns: Default::default(),
        }
    }
}

/// How a thread group ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// `exit(code)`: the low 8 bits are what the parent sees.
    Code(u8),
    /// Killed by a signal.
    Signal(Signo),
}

impl ExitStatus {
    /// The status a shell reports: the code, or 128 + signal.
    pub fn shell_status(&self) -> i32 {
        match *self {
            ExitStatus::Code(c) => c as i32,
            ExitStatus::Signal(s) => 128 + s.0,
        }
    }
}

/// What prctl sets on a thread. (PR_SET_DUMPABLE is the process's: `ProcessInfo::dumpable`.)
#[derive(Debug, Clone, Default)]
pub struct Prctl {
    /// PR_SET_NAME (at most 15 bytes); empty means the program's name.
    pub name: Vec<u8>,
}

/// Resource limits (soft, hard) indexed by RLIMIT_*.
pub const RLIM_NLIMITS: usize = 16;

/// Everything a system call may touch. Guarded by one mutex: the ring poller and the task's
/// own thread take turns, never at once, since the application thread waits for each call.
pub struct TaskState {
    pub mm: Arc<Mm>,
    pub fds: Arc<FdTable>,
    pub fs: Arc<FsContext>,
    pub creds: Creds,
    pub pid: i32,
    pub tid: i32,
    pub ppid: i32,
    /// Path of the running program, as `/proc/self/exe` shows it.
    pub exe: Vec<u8>,
    pub signals: SignalState,
    pub clear_child_tid: u64,
    pub robust_list: (u64, u64),
    pub rlimits: [(u64, u64); RLIM_NLIMITS],
    pub umask: u32,
    /// Set by exit and exit_group.
    pub exit: Option<ExitStatus>,
    /// System calls already reported as unimplemented (logged once each).
    pub logged_missing: HashSet<u64>,
    /// What runs the task's code (execve builds new address spaces with it).
    pub platform: Arc<dyn platform::Platform>,
    /// What /proc shows of the process.
    pub process: Arc<crate::procfs::ProcessInfo>,
    pub kernel: Arc<Kernel>,
    /// The thread group (process) this thread belongs to.
    pub group: Arc<ThreadGroup>,
    /// exit() ends only this thread; exit_group and fatal signals end the group.
    pub thread_exit: bool,
    /// A vfork parent waiting for this child to exec or exit.
    pub vfork_done: Option<Arc<Completion>>,
    /// An XSAVE image rt_sigreturn read from a signal frame, loaded before the next run.
    pub restore_fpu: Option<Vec<u8>>,
    /// prctl state: the thread's name, the signal sent when the parent dies, and flags.
    pub prctl: Prctl,
    /// set_mempolicy's NUMA policy (None: the default); inherited by fork and clone, kept
    /// across execve.
    pub mempolicy: Option<crate::mm::policy::MemPolicy>,
    /// seccomp mode and filters, and no_new_privs (shared: TSYNC and /proc reach it).
    pub seccomp: Arc<crate::seccomp::ThreadSeccomp>,
    /// What the task sleeps on in poll, select and epoll_wait. A signal interrupts the
    /// sleep with `waiter.wake()`; keep a clone outside this struct to do so, since a
    /// sleeping task holds the lock on its state.
    pub waiter: Arc<fs::waiter::Waiter>,
}

impl TaskState {
    /// The process's pid as its own pid namespace numbers it (getpid's answer).
    pub fn own_pid(&self) -> i32 {
        crate::namespaces::pid_view(&self.process, self.pid)
    }
}

/// A task: its state and the context that runs it.
pub struct Task {
    pub state: Arc<Mutex<TaskState>>,
}

fn lock(state: &Mutex<TaskState>) -> MutexGuard<'_, TaskState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// The fast path the platform's poller calls: serves calls that never block.
pub struct TaskSyscalls {
    pub state: Arc<Mutex<TaskState>>,
    /// The call kept waiting on the ring, if any (see `syscalls::ring_wait`).
    ring: Mutex<syscalls::ring_wait::RingWaits>,
}

impl TaskSyscalls {
    pub fn new(state: Arc<Mutex<TaskState>>) -> Self {
        TaskSyscalls {
            state,
            ring: Mutex::new(Default::default()),
        }
    }
}

impl FastSyscalls for TaskSyscalls {
    fn serve(&self, regs: &mut UserRegs) -> bool {
        self.serve_ring(regs, None)
    }

    fn serve_ring(&self, regs: &mut UserRegs, mut fpu: Option<&mut RingFpu>) -> bool {
        let mut st = lock(&self.state);
        // A pending signal is delivered by the task's own thread: send the call there. So
        // is every call of a traced thread, which may stop at its entry and exit.
        if has_deliverable(&st) || st.kernel.ptrace.is_traced(st.tid) {
            return false;
        }
        let nr = regs.rax as u32 as u64;
        if nr == libc::SYS_rt_sigreturn as u64 {
            // Where the trampoline can load the frame's FPU state itself.
            match fpu.as_deref_mut() {
                Some(f) if !st.seccomp.active() => {
                    if !sigreturn_on_ring(&mut st, regs, f) {
                        return false;
                    }
                }
                _ => return false,
            }
        } else {
            let own = fpu.is_some() && syscalls::own_signal_call(&st, regs);
            if !own && !syscalls::can_serve_on_poller(&st, regs) {
                return false;
            }
            if !syscalls::dispatch_on_poller(&mut st, regs) {
                return false;
            }
            if st.signals.interrupted_call.take().is_some() {
                // Calls served here never sleep, so nothing interrupts them; should one
                // report an interruption anyway, it must not reach the application as a
                // restart code.
                regs.rax = (-(libc::EINTR as i64)) as u64;
            }
        }
        if has_deliverable(&st) {
            match fpu {
                // The call unblocked or raised a signal (sigprocmask, kill of itself,
                // SIGPIPE): the trampoline saves the FPU state and comes back for the
                // delivery (`deliver`), still on the ring.
                Some(f) => f.save = true,
                // The task's thread must come to deliver it.
                None => st.group.interrupt_thread(st.tid),
            }
        }
        true
    }

    fn deliver(&self, regs: &mut UserRegs, xsave: &[u8], _fpu: &mut RingFpu) -> bool {
        let mut st = lock(&self.state);
        // What needs the thread (a tracer's delivery stops, a stop, the end) goes there.
        if st.kernel.ptrace.is_traced(st.tid)
            || st.group.exiting().is_some()
            || st.exit.is_some()
            || st.group.job.stop_signal().is_some()
        {
            return false;
        }
        // Only handlers run here: a default action (the end, a stop) is the thread's,
        // which parks or exits before any more user code runs.
        let mask = st.signals.mask();
        let due = (st.signals.thread.pending() | st.group.pending()) & !mask;
        let handlers = st.group.handlers();
        let all_handled = (1..=NSIG as i32)
            .filter(|&sig| due & crate::signal::bit(sig) != 0)
            .all(|sig| {
                let h = handlers.get(sig).handler;
                sig != libc::SIGKILL
                    && sig != libc::SIGSTOP
                    && h != libc::SIG_DFL as u64
                    && h != libc::SIG_IGN as u64
            });
        if !all_handled {
            return false;
        }
        let mut image = || xsave.to_vec();
        deliver_signals_with(&mut st, &mut image, regs, None);
        if st.group.job.stop_signal().is_some() || st.group.exiting().is_some() {
            // Something changed an action meanwhile (another thread's sigaction) and a
            // default action ran after all: make sure the thread comes to a safe point
            // once it is back in user mode.
            let group = st.group.clone();
            let tid = st.tid;
            let _ = std::thread::Builder::new()
                .name("rekick".into())
                .spawn(move || {
                    std::thread::sleep(REKICK_DELAY);
                    group.interrupt_thread(tid);
                });
        }
        true
    }

    fn ring_wait(&self, regs: &UserRegs) -> Option<std::time::Duration> {
        let st = lock(&self.state);
        if st.kernel.ptrace.is_traced(st.tid) {
            return None;
        }
        let mut w = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        syscalls::ring_wait::begin(&mut w, &st, regs)
    }

    fn retry(&self, regs: &mut UserRegs, last: bool) -> Retry {
        let mut st = lock(&self.state);
        let mut w = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        syscalls::ring_wait::retry(&mut w, &mut st, regs, last)
    }

    fn serve_fault(&self, fault: &Fault, _regs: &mut UserRegs) -> bool {
        // Only a page fault the memory manager resolves is served here; anything that ends
        // in a signal goes to the task's thread, which handles the fault again and signals.
        let Fault::Page { addr, access } = *fault else {
            return false;
        };
        let st = lock(&self.state);
        if has_deliverable(&st) {
            return false;
        }
        st.mm.handle_fault(addr, access).is_ok()
    }
}

/// rt_sigreturn served on the ring: the frame's registers and mask, and its XSAVE image for
/// the trampoline to load. False (nothing changed) where the thread must do it: a frame
/// that can't be read (SIGSEGV) or an image XRSTOR would refuse (KVM judges it there).
fn sigreturn_on_ring(st: &mut TaskState, regs: &mut UserRegs, fpu: &mut RingFpu) -> bool {
    let mut restored = *regs;
    let Ok((mask, image)) = crate::signal_frame::restore(&st.mm, &mut restored) else {
        return false;
    };
    if image
        .as_ref()
        .is_some_and(|i| !platform::xrstor_ok(i, fpu.xcr0))
    {
        return false;
    }
    *regs = restored;
    st.signals.set_mask(mask);
    fpu.restore = image;
    true
}

/// Whether a signal could be delivered to this thread now.
pub fn has_deliverable(st: &TaskState) -> bool {
    st.signals.thread.deliverable() || st.group.has_pending(st.signals.mask())
}

/// A fault's signal. A handler that is installed and not blocked runs; otherwise (blocked,
/// ignored or default) the process dies of it, as Linux's force_sig_fault.
fn force_fault_signal(st: &mut TaskState, fault: &Fault, err: FaultError, sig: Signo, rip: u64) {
    let action = st.group.handlers().get(sig.0);
    let blocked = st.signals.mask() & crate::signal::bit(sig.0) != 0;
    let handled = action.handler != libc::SIG_DFL as u64 && action.handler != libc::SIG_IGN as u64;
    let traced = st.kernel.ptrace.is_traced(st.tid);
    if traced && sig != Signo::SIGKILL {
        // Linux's force_sig_info_to_task: the signal is unblocked, an ignored action goes
        // back to the default, and it is queued: the tracer sees it at its delivery stop.
        if blocked {
            st.signals
                .set_mask(st.signals.mask() & !crate::signal::bit(sig.0));
        }
        if action.handler == libc::SIG_IGN as u64 {
            st.group.handlers().set(sig.0, Default::default());
        }
    } else if !handled || blocked || sig == Signo::SIGKILL {
        st.group.exit(ExitStatus::Signal(sig));
        return;
    }
    let (code, addr) = match fault {
        Fault::Page { addr, .. } => (
            match err {
                FaultError::AccessDenied => 2, // SEGV_ACCERR
                FaultError::BeyondEof => 2,    // BUS_ADRERR
                _ => 1,                        // SEGV_MAPERR
            },
            *addr,
        ),
        // Linux reports the instruction for these two, and their cause.
        Fault::InvalidOpcode => (2, rip), // ILL_ILLOPN
        Fault::DivideError => (1, rip),   // FPE_INTDIV
        // A single step (the trap flag): TRAP_TRACE at the next instruction.
        Fault::Debug => (2, rip),
        Fault::AlignmentCheck => (1, 0), // BUS_ADRALN
        _ => (0x80, 0),                  // SI_KERNEL
    };
    st.signals.thread.queue(crate::signal_frame::SigInfo {
        signo: sig.0,
        code,
        addr,
        ..Default::default()
    });
}

/// Delivers pending signals: ignored ones vanish, default actions end the process, and the
/// first handled one gets a frame (one per return to user mode, like Linux's nesting). A
/// system call that was interrupted (`interrupted_call`) restarts or fails with EINTR by
/// the rules of signal(7).
///
/// `traced`: the thread is traced, and this is the one signal its tracer let through its
/// delivery stop (none: only a pending restart is settled). Returns whether a handler
/// will run.
fn deliver_signals(
    st: &mut TaskState,
    ctx: &mut dyn Context,
    regs: &mut UserRegs,
    traced: Option<Option<SigInfo>>,
) -> bool {
    let mut fpu = || ctx.fpu_state().unwrap_or_else(|_| vec![0u8; 4096]);
    deliver_signals_with(st, &mut fpu, regs, traced)
}

/// [`deliver_signals`] with the thread's XSAVE image from `fpu` (the vCPU's, or the one the
/// ring trampoline saved).
fn deliver_signals_with(
    st: &mut TaskState,
    fpu: &mut dyn FnMut() -> Vec<u8>,
    regs: &mut UserRegs,
    mut traced: Option<Option<SigInfo>>,
) -> bool {
    let interrupted = st.signals.interrupted_call.take();
    let handled = run_handler(st, fpu, regs, interrupted, &mut traced);
    if handled && traced.is_none() {
        // As Linux's exit-to-user loop: a frame for every signal still deliverable under
        // the mask the last handler set, each on top of the previous, so the last one set
        // up runs first and the others run as each returns. (Bounded: a signal with
        // SA_NODEFER and a full real-time queue could otherwise go on for long.)
        for _ in 0..NSIG {
            if st.group.exiting().is_some() || !run_handler(st, fpu, regs, None, &mut None) {
                break;
            }
        }
    }
    if !handled && st.group.exiting().is_none() {
        if let Some(nr) = interrupted {
            crate::signal::restart_without_handler(regs, nr);
        }
        // sigsuspend and the like: without a handler's frame to restore it, the mask goes
        // back now.
        if let Some(mask) = st.signals.saved_mask.take() {
            st.signals.set_mask(mask);
        }
    }
    handled
}

/// Takes pending signals until one has a handler, and sets up its frame. Returns whether a
/// handler will run (false also when a default action ended the process).
fn run_handler(
    st: &mut TaskState,
    fpu: &mut dyn FnMut() -> Vec<u8>,
    regs: &mut UserRegs,
    interrupted: Option<u64>,
    traced: &mut Option<Option<SigInfo>>,
) -> bool {
    use crate::signal::{bit, ignored_by_default, stops_by_default, UNBLOCKABLE};
    loop {
        let mask = st.signals.mask();
        let next = match traced {
            // A traced thread delivers only what its tracer let through.
            Some(slot) => slot.take(),
            None => st.group.dequeue(&st.signals.thread, mask),
        };
        let Some(info) = next else {
            return false;
        };
        let sig = info.signo;
        let handlers = st.group.handlers();
        let action = handlers.get(sig);
        if action.handler == libc::SIG_IGN as u64 && sig != libc::SIGKILL {
            continue;
        }
        if action.handler == libc::SIG_DFL as u64 || sig == libc::SIGKILL || sig == libc::SIGSTOP {
            // A pid namespace's init takes no default action but SIGKILL's and SIGSTOP's,
            // which reach it only from outside its namespace (Linux's get_signal and
            // SIGNAL_UNKILLABLE).
            let unkillable = st
                .group
                .unkillable
                .load(std::sync::atomic::Ordering::Relaxed);
            if unkillable && sig != libc::SIGKILL && sig != libc::SIGSTOP {
                continue;
            }
            if stops_by_default(sig) {
                // The terminal's stop signals don't stop an orphaned process group, which
                // no shell could continue (POSIX; Linux's is_current_pgrp_orphaned).
                let from_terminal = sig != libc::SIGSTOP;
                let pgid = st.kernel.ids(st.pid).map_or(st.pid, |(g, _)| g);
                if !(from_terminal && st.kernel.orphaned_pgrp(pgid)) {
                    stop_process(st, sig);
                }
                continue;
            }
            if ignored_by_default(sig) {
                continue;
            }
            st.group.exit(ExitStatus::Signal(Signo(sig)));
            return false;
        }
        // The interrupted call's fate is settled before the frame saves the registers.
        if let Some(nr) = interrupted {
            crate::signal::restart_for_handler(regs, nr, action.flags);
        }
        let fpu = fpu();
        let alt = st.signals.altstack;
        // After sigsuspend, the frame restores the mask from before the call.
        let frame_mask = st.signals.saved_mask.take().unwrap_or(mask);
        let info = info.seen_by(&st.creds.user_ns);
        match crate::signal_frame::setup(&st.mm, regs, &action, &info, frame_mask, &alt, fpu) {
            Ok(_) => {
                // During the handler: the mask in force now, the action's, and the signal
                // itself unless SA_NODEFER.
                let mut new_mask = mask | action.mask;
                if !crate::signal_frame::nodefer(&action) {
                    new_mask |= bit(sig);
                }
                st.signals.set_mask(new_mask & !UNBLOCKABLE);
                if crate::signal_frame::resets(&action) {
                    handlers.set(sig, Default::default());
                }
            }
            Err(_) => st.group.exit(ExitStatus::Signal(Signo::SIGSEGV)),
        }
        return true;
    }
}

/// A stop signal's default action: the process stops (its threads park at their next return
/// to user mode, see `Task::run`) and its parent hears of it.
fn stop_process(st: &TaskState, sig: i32) {
    if st.group.job.stop(sig) {
        st.group.interrupt_all();
        st.kernel
            .job_changed(&st.group, crate::job::JobEvent::Stopped(sig));
    }
}

/// Linux's exit_robust_list: every robust mutex the ending thread still holds (the list
/// set_robust_list registered, and the one it was taking or releasing) is marked
/// FUTEX_OWNER_DIED, and one waiter is woken, so that it gets EOWNERDEAD. The list lives in
/// guest memory: a bad pointer or a loop ends the walk, as Linux's limit does.
fn exit_robust_list(st: &TaskState) {
    const ROBUST_LIST_LIMIT: usize = 2048;
    let (head, len) = st.robust_list;
    if head == 0 || len != 24 {
        return;
    }
    let mm = &st.mm;
    let (Ok(mut entry), Ok(offset), Ok(pending)) = (
        mm.read_u64(head),
        mm.read_u64(head + 8),
        mm.read_u64(head + 16),
    ) else {
        return;
    };
    // The low bit of a list pointer flags a PI futex; the entry itself is the rest.
    let futex_of = |entry: u64| (entry & !1).wrapping_add(offset);
    let mut walked = 0;
    while entry != head && entry != 0 && walked < ROBUST_LIST_LIMIT {
        let Ok(next) = mm.read_u64(entry & !1) else {
            break;
        };
        if entry != pending {
            handle_futex_death(st, futex_of(entry));
        }
        entry = next;
        walked += 1;
    }
    if pending != 0 {
        handle_futex_death(st, futex_of(pending));
    }
}

/// One robust futex of an ending thread: if the thread owns it, the owner died.
fn handle_futex_death(st: &TaskState, addr: u64) {
    const FUTEX_WAITERS: u32 = 0x8000_0000;
    const FUTEX_OWNER_DIED: u32 = 0x4000_0000;
    const FUTEX_TID_MASK: u32 = 0x3fff_ffff;
    if !addr.is_multiple_of(4) {
        return;
    }
    let Ok(word) = st.mm.read_u32(addr) else {
        return;
    };
    if word & FUTEX_TID_MASK != st.tid as u32 {
        return;
    }
    // Linux swaps the word atomically; a waiter setting FUTEX_WAITERS concurrently could be
    // missed here, and would then see the owner-died word at its next try.
    let dead = (word & FUTEX_WAITERS) | FUTEX_OWNER_DIED;
    if st.mm.copy_out(addr, &dead.to_le_bytes()).is_ok() && word & FUTEX_WAITERS != 0 {
        crate::futex::wake(crate::futex::Key::of(&st.mm, addr, false), u32::MAX, 1);
    }
}

/// The signal a fault raises when the memory manager can't resolve it.
fn fault_signal(fault: &Fault, mm_result: Option<FaultError>) -> Signo {
    match fault {
        Fault::Page { .. } => match mm_result {
            Some(FaultError::OutOfMemory) => Signo::SIGKILL,
            Some(FaultError::BeyondEof) => Signo::SIGBUS,
            _ => Signo::SIGSEGV,
        },
        Fault::GeneralProtection { .. } => Signo::SIGSEGV,
        Fault::InvalidOpcode => Signo::SIGILL,
        Fault::DivideError | Fault::FloatingPoint => Signo::SIGFPE,
        Fault::Breakpoint | Fault::Debug => Signo::SIGTRAP,
        Fault::AlignmentCheck => Signo::SIGBUS,
        Fault::Other { .. } => Signo::SIGSEGV,
    }
}

/// Loads an XSAVE image rt_sigreturn or execve left for the next run.
fn restore_fpu(st: &mut TaskState, ctx: &mut dyn Context) {
    if let Some(fpu) = st.restore_fpu.take() {
        if ctx.set_fpu_state(&fpu).is_err() {
            // A damaged frame: Linux answers a bad sigreturn with SIGSEGV.
            st.group.exit(ExitStatus::Signal(Signo::SIGSEGV));
        }
    }
}

/// The x86 trap flag.
const TF: u64 = 0x100;

/// PTRACE_SINGLESTEP: the trap flag on for one instruction (a `syscall` instruction runs
/// whole and traps after, as Linux reports a step over a system call); off again when
/// resumed otherwise.
fn arm_single_step(st: &TaskState, tr: &Tracee, regs: &mut UserRegs) {
    let mut i = tr.lock();
    i.step_syscall = false;
    if i.mode != Mode::Step {
        if std::mem::take(&mut i.forced_tf) {
            regs.rflags &= !TF;
        }
        return;
    }
    let mut insn = [0u8; 2];
    if st.mm.copy_in(regs.rip, &mut insn).is_ok() && insn == [0x0f, 0x05] {
        i.step_syscall = true;
        return;
    }
    if regs.rflags & TF == 0 {
        i.forced_tf = true;
        regs.rflags |= TF;
    }
}

/// A signal the tracer gave when resuming from a syscall-stop is sent to the thread (as
/// Linux's ptrace_report_syscall, from the kernel).
fn syscall_stop_signal(st: &TaskState, r: Resume) {
    let sig = match r {
        Resume::Run { sig } | Resume::Detach { sig } => sig,
        Resume::Listen => 0,
    };
    if sig > 0 {
        st.signals.thread.queue(SigInfo {
            signo: sig,
            code: crate::signal_frame::SI_KERNEL,
            ..Default::default()
        });
    }
}

/// How long a thread stopped mid system call may run before it is kicked again.
const REKICK_DELAY: std::time::Duration = std::time::Duration::from_millis(1);

/// Interrupts a vCPU after `REKICK_DELAY`, from a short-lived thread (this is rare: a signal
/// that arrives while a system call is in the trampoline).
fn kick_later(kicker: Arc<dyn platform::Interrupter>) {
    let k = kicker.clone();
    let spawned = std::thread::Builder::new()
        .name("rekick".into())
        .spawn(move || {
            std::thread::sleep(REKICK_DELAY);
            k.interrupt();
        });
    if spawned.is_err() {
        kicker.interrupt();
    }
}

impl Task {
    /// Runs the task on `vcpu` until it ends. The vCPU is released before the end shows
    /// (the child-tid wake, the zombie), so that a thread or process created by whoever
    /// waited for this one reuses it instead of adding one: vCPUs are never freed, only
    /// pooled.
    pub fn run(
        &self,
        mut vcpu: Box<dyn Context>,
        mut regs: UserRegs,
    ) -> Result<ExitStatus, SentryError> {
        let ctx: &mut dyn Context = vcpu.as_mut();
        loop {
            // execve replaces the address space: pick up the current one each time.
            let space = lock(&self.state).mm.address_space().clone();
            let event = ctx.switch(&space, &mut regs)?;
            let mut st = lock(&self.state);
            if event == Event::Syscall && syscalls::may_wait_long(&st, &regs) {
                // Not holding the task's state: giving the vCPU up waits for the ring poller
                // to be done with it, and the poller may be waiting for that state.
                drop(st);
                ctx.may_block();
                st = lock(&self.state);
            }
            let mut safe_point = true;
            // Linux's orig_rax at a later signal-delivery-stop: the call's number, or -1
            // after a fault or an interrupt.
            let orig_rax = if event == Event::Syscall {
                regs.rax as u32 as u64
            } else {
                u64::MAX
            };
            match event {
                Event::Syscall => match st.kernel.ptrace.get(st.tid) {
                    Some(tr) => st = self.traced_syscall(st, ctx, &mut regs, &tr),
                    None => syscalls::dispatch(&mut st, &mut regs, true),
                },
                Event::Fault(fault) => {
                    tracing::trace!("fault {fault:?} at rip {:#x}", regs.rip);
                    if fault == Fault::Debug {
                        if let Some(tr) = st.kernel.ptrace.get(st.tid) {
                            if std::mem::take(&mut tr.lock().forced_tf) {
                                regs.rflags &= !TF;
                            }
                        }
                    }
                    let unresolved = match fault {
                        Fault::Page { addr, access } => st.mm.handle_fault(addr, access).err(),
                        _ => Some(FaultError::AccessDenied),
                    };
                    if let Some(err) = unresolved {
                        let sig = fault_signal(&fault, Some(err));
                        tracing::debug!("fault {fault:?} at rip {:#x}: signal {}", regs.rip, sig.0);
                        force_fault_signal(&mut st, &fault, err, sig, regs.rip);
                    }
                }
                Event::Interrupted { at_user } => safe_point = at_user,
            }
            if st.group.exiting().is_none() && st.exit.is_none() {
                restore_fpu(&mut st, ctx);
                if safe_point {
                    st = self.at_safe_point(st, ctx, &mut regs, orig_rax);
                } else if has_deliverable(&st) {
                    // Stopped in the trampoline mid system call: come back once it is
                    // answered. The guest has to run on for that (to ring the doorbell when
                    // the poller sleeps), so the kick must come later: kicking now would
                    // make the next KVM_RUN return at once, forever (this livelocked
                    // `signals`, about one run in ten).
                    kick_later(ctx.interrupter());
                }
            }
            if st.exit.is_none() && st.group.ended_by_exec(st.tid) {
                // Another thread is running execve: this one ends, as a thread exit.
                st.exit = Some(ExitStatus::Code(0));
                st.thread_exit = true;
            }
            if st.exit.is_some() || st.group.exiting().is_some() {
                st = self.exit_event(st, ctx, &mut regs);
                // Nobody may kick the vCPU once it is back in the pool.
                st.group.clear_interrupter(st.tid);
                drop(st);
                drop(vcpu);
                return Ok(self.finish());
            }
        }
    }

    /// At a return to user mode: signals are delivered (through the tracer's delivery stops
    /// when traced), and a stopped process parks (or, traced, reports its group stop).
    fn at_safe_point<'a>(
        &'a self,
        mut st: MutexGuard<'a, TaskState>,
        ctx: &mut dyn Context,
        regs: &mut UserRegs,
        orig_rax: u64,
    ) -> MutexGuard<'a, TaskState> {
        // Each round parks or returns; the bound only guards against surprises.
        for _ in 0..64 {
            let tracee = st.kernel.ptrace.get(st.tid);
            match &tracee {
                Some(tr) => st = self.traced_signals(st, ctx, regs, tr, orig_rax),
                None => {
                    deliver_signals(&mut st, ctx, regs, None);
                }
            }
            if st.group.exiting().is_some() || st.exit.is_some() {
                return st;
            }
            let Some(sig) = st.group.job.stop_signal() else {
                match tracee {
                    Some(tr) => tr.lock().group_stop_reported = false,
                    // A tracer attached meanwhile (PTRACE_SEIZE of a process that was
                    // stopping and got SIGCONT at once, as strace starts its child): its
                    // PTRACE_INTERRUPT must trap before any more user code runs.
                    None if st.kernel.ptrace.is_traced(st.tid) => continue,
                    None => {}
                }
                return st;
            };
            match tracee {
                Some(tr) => {
                    let (reported, seized) = {
                        let i = tr.lock();
                        (i.group_stop_reported, i.seized)
                    };
                    if reported {
                        // Resumed by the tracer during the group stop: runs on (Linux).
                        return st;
                    }
                    tr.lock().group_stop_reported = true;
                    let code = if seized {
                        sig | ((crate::ptrace::PTRACE_EVENT_STOP as i32) << 8)
                    } else {
                        sig
                    };
                    let info = SigInfo {
                        signo: sig,
                        code: crate::signal_frame::SI_KERNEL,
                        ..Default::default()
                    };
                    let (g, r) = self.ptrace_stop(
                        st,
                        ctx,
                        regs,
                        &tr,
                        StopKind::Group,
                        code,
                        &info,
                        u64::MAX,
                        None,
                    );
                    st = g;
                    if r != Some(Resume::Listen) {
                        return st;
                    }
                    // PTRACE_LISTEN: stopped until the group continues, which is
                    // reported as PTRACE_EVENT_STOP.
                    let group = st.group.clone();
                    drop(st);
                    ctx.may_block();
                    group.job.wait_while_stopped(|| group.exiting().is_some());
                    st = lock(&self.state);
                    if st.group.exiting().is_none() {
                        st = self.event_stop(
                            st,
                            ctx,
                            regs,
                            &tr,
                            crate::ptrace::PTRACE_EVENT_STOP,
                            0,
                            u64::MAX,
                        );
                    }
                    return st;
                }
                None => {
                    // Job control: park until SIGCONT (or SIGKILL, or the end, or a tracer
                    // attaching), then take what arrived meanwhile (SIGCONT's handler).
                    let group = st.group.clone();
                    let kernel = st.kernel.clone();
                    let tid = st.tid;
                    drop(st);
                    ctx.may_block();
                    group.job.wait_while_stopped(|| {
                        group.exiting().is_some() || kernel.ptrace.is_traced(tid)
                    });
                    st = lock(&self.state);
                    if st.group.exiting().is_some() {
                        return st;
                    }
                }
            }
        }
        st
    }

    /// A pending PTRACE_INTERRUPT (taken): the PTRACE_EVENT_STOP it asks for, with
    /// `orig_rax` shown to the tracer. Returns whether there was one.
    fn interrupt_stop<'a>(
        &'a self,
        st: MutexGuard<'a, TaskState>,
        ctx: &mut dyn Context,
        regs: &mut UserRegs,
        tr: &Arc<Tracee>,
        orig_rax: u64,
    ) -> (MutexGuard<'a, TaskState>, bool) {
        if !std::mem::take(&mut tr.lock().interrupt) {
            return (st, false);
        }
        let event = crate::ptrace::PTRACE_EVENT_STOP;
        (self.event_stop(st, ctx, regs, tr, event, 0, orig_rax), true)
    }

    /// Signal delivery for a traced thread: each signal taken goes through a
    /// signal-delivery-stop, where the tracer may change it, suppress it, or let it through.
    fn traced_signals<'a>(
        &'a self,
        mut st: MutexGuard<'a, TaskState>,
        ctx: &mut dyn Context,
        regs: &mut UserRegs,
        tr: &Arc<Tracee>,
        orig_rax: u64,
    ) -> MutexGuard<'a, TaskState> {
        // PTRACE_INTERRUPT (or a seized tracee's first stop): PTRACE_EVENT_STOP.
        let (got, interrupted) = self.interrupt_stop(st, ctx, regs, tr, orig_rax);
        st = got;
        if interrupted && st.kernel.ptrace.get(st.tid).is_none() {
            deliver_signals(&mut st, ctx, regs, None);
            return st;
        }
        for _ in 0..NSIG {
            if st.group.exiting().is_some() {
                return st;
            }
            let mut injected = None;
            let mask = st.signals.mask();
            let next = if has_deliverable(&st) {
                st.group.dequeue(&st.signals.thread, mask)
            } else {
                None
            };
            let had_signal = next.is_some();
            if let Some(info) = next {
                if info.signo == libc::SIGKILL {
                    injected = Some(info);
                } else {
                    let orig = st.signals.interrupted_call.unwrap_or(orig_rax);
                    let (g, r) = self.ptrace_stop(
                        st,
                        ctx,
                        regs,
                        tr,
                        StopKind::Signal,
                        info.signo,
                        &info,
                        orig,
                        None,
                    );
                    st = g;
                    let sig = match r {
                        Some(Resume::Run { sig }) | Some(Resume::Detach { sig }) => sig,
                        _ => 0,
                    };
                    let (orig_after, written, raw) = {
                        let i = tr.lock();
                        (i.orig_rax, i.siginfo_written, i.siginfo)
                    };
                    if orig_after as u32 == u32::MAX {
                        // The tracer cancelled the interrupted call's restart.
                        st.signals.interrupted_call = None;
                    }
                    if sig != 0 && r.is_some() {
                        let mut inf = if written {
                            crate::ptrace::parse_siginfo(&raw)
                        } else {
                            info
                        };
                        if sig != inf.signo {
                            // Another signal than the one stopped for: from the tracer.
                            let tracer = tr.tracer();
                            inf = SigInfo {
                                signo: sig,
                                code: 0, // SI_USER
                                pid: tracer,
                                uid: st.kernel.group(tracer).map_or(0, |g| g.uids().uid),
                                ..Default::default()
                            };
                        }
                        if st.signals.mask() & crate::signal::bit(sig) != 0 {
                            // Blocked now: it waits, pending.
                            st.signals.thread.queue(inf);
                        } else {
                            injected = Some(inf);
                        }
                    }
                }
            }
            let traced = st.kernel.ptrace.is_traced(st.tid);
            let handled = if traced || injected.is_some() {
                deliver_signals(&mut st, ctx, regs, Some(injected))
            } else {
                deliver_signals(&mut st, ctx, regs, None)
            };
            if !traced {
                return st;
            }
            if handled
                || !had_signal
                || st.group.job.is_stopped()
                || st.group.exiting().is_some()
                || !has_deliverable(&st)
            {
                break;
            }
        }
        if has_deliverable(&st) && st.group.exiting().is_none() && !st.group.job.is_stopped() {
            // More to deliver after the handler's frame: come back at once to stop for it.
            ctx.interrupter().interrupt();
        }
        st
    }

    /// A system call of a traced thread: stops at its entry and exit under PTRACE_SYSCALL
    /// (where the tracer may change the number, the arguments and the result, or skip the
    /// call with number -1), and at the events it raises (exec, fork, clone).
    fn traced_syscall<'a>(
        &'a self,
        mut st: MutexGuard<'a, TaskState>,
        ctx: &mut dyn Context,
        regs: &mut UserRegs,
        tr: &Arc<Tracee>,
    ) -> MutexGuard<'a, TaskState> {
        // A PTRACE_INTERRUPT that came while the thread was on its way back to user mode
        // traps before the call starts.
        let (got, interrupted) = self.interrupt_stop(st, ctx, regs, tr, u64::MAX);
        st = got;
        if interrupted && st.group.exiting().is_some() {
            return st;
        }
        let nr = regs.rax;
        let stepped = std::mem::take(&mut tr.lock().step_syscall);
        let (mode, options) = {
            let i = tr.lock();
            (i.mode, i.options)
        };
        let good = if options & crate::ptrace::PTRACE_O_TRACESYSGOOD != 0 {
            0x80
        } else {
            0
        };
        let mut run = true;
        // orig_rax at the exit stop: the number the call ran with (or -1 if skipped).
        let mut exit_orig = nr;
        if mode == Mode::Syscall {
            let code = libc::SIGTRAP | good;
            let info = crate::ptrace::self_info(code, st.pid, st.creds.uid);
            regs.rax = (-(libc::ENOSYS as i64)) as u64;
            let (g, r) = self.ptrace_stop(
                st,
                ctx,
                regs,
                tr,
                StopKind::SyscallEntry,
                code,
                &info,
                nr,
                Some(crate::ptrace::EVENTMSG_SYSCALL_ENTRY),
            );
            st = g;
            let Some(r) = r else {
                return st;
            };
            syscall_stop_signal(&st, r);
            let orig = tr.lock().orig_rax;
            exit_orig = orig;
            if orig as u32 == u32::MAX {
                // Skipped: RAX stays what the tracer left (-ENOSYS unless it set one).
                run = false;
            } else {
                regs.rax = orig;
            }
        }
        if run {
            syscalls::dispatch(&mut st, regs, true);
        }
        if st.exit.is_some() || st.group.exiting().is_some() {
            return st;
        }
        restore_fpu(&mut st, ctx);
        if stepped {
            // Stepped over the call: the trap comes after it (TRAP_BRKPT, as Linux's
            // user_single_step_report).
            st.signals.thread.queue(SigInfo {
                signo: libc::SIGTRAP,
                code: 1,
                addr: regs.rip,
                ..Default::default()
            });
        }
        let event = tr.lock().pending_event.take();
        if let Some((event, msg)) = event {
            st = self.event_stop(st, ctx, regs, tr, event, msg, exit_orig);
        }
        let Some(tr) = st.kernel.ptrace.get(st.tid) else {
            return st;
        };
        if tr.lock().mode == Mode::Syscall && st.group.exiting().is_none() {
            let code = libc::SIGTRAP | good;
            let info = crate::ptrace::self_info(code, st.pid, st.creds.uid);
            let (g, r) = self.ptrace_stop(
                st,
                ctx,
                regs,
                &tr,
                StopKind::SyscallExit,
                code,
                &info,
                exit_orig,
                Some(crate::ptrace::EVENTMSG_SYSCALL_EXIT),
            );
            st = g;
            if let Some(r) = r {
                syscall_stop_signal(&st, r);
            }
        }
        st
    }

    /// A PTRACE_EVENT_* stop with message `msg`.
    #[allow(clippy::too_many_arguments)]
    fn event_stop<'a>(
        &'a self,
        st: MutexGuard<'a, TaskState>,
        ctx: &mut dyn Context,
        regs: &mut UserRegs,
        tr: &Arc<Tracee>,
        event: u32,
        msg: u64,
        orig_rax: u64,
    ) -> MutexGuard<'a, TaskState> {
        let code = libc::SIGTRAP | ((event as i32) << 8);
        let info = crate::ptrace::self_info(code, st.pid, st.creds.uid);
        self.ptrace_stop(
            st,
            ctx,
            regs,
            tr,
            StopKind::Event(event),
            code,
            &info,
            orig_rax,
            Some(msg),
        )
        .0
    }

    /// PTRACE_O_TRACEEXIT: the thread stops once more as it ends, its status as the
    /// message (not when killed by SIGKILL).
    fn exit_event<'a>(
        &'a self,
        st: MutexGuard<'a, TaskState>,
        ctx: &mut dyn Context,
        regs: &mut UserRegs,
    ) -> MutexGuard<'a, TaskState> {
        let Some(tr) = st.kernel.ptrace.get(st.tid) else {
            return st;
        };
        let status = st
            .group
            .exiting()
            .or(st.exit)
            .unwrap_or(ExitStatus::Code(0));
        if tr.options() & crate::ptrace::PTRACE_O_TRACEEXIT == 0
            || status == ExitStatus::Signal(Signo::SIGKILL)
        {
            return st;
        }
        let word = match status {
            ExitStatus::Code(c) => (c as u64) << 8,
            ExitStatus::Signal(s) => s.0 as u64,
        };
        let code = libc::SIGTRAP | ((crate::ptrace::PTRACE_EVENT_EXIT as i32) << 8);
        let info = crate::ptrace::self_info(code, st.pid, st.creds.uid);
        let fpu = ctx.fpu_state().unwrap_or_else(|_| vec![0u8; 4096]);
        tr.enter_stop(
            StopKind::Event(crate::ptrace::PTRACE_EVENT_EXIT),
            code,
            regs,
            u64::MAX,
            fpu,
            st.mm.clone(),
            &info,
            Some(word),
        );
        let (group, thread, kernel) = (
            st.group.clone(),
            st.signals.thread.clone(),
            st.kernel.clone(),
        );
        let (tid, uid, tracer) = (st.tid, st.group.uids().uid, tr.tracer());
        drop(st);
        kernel.ptrace_stopped(tracer, tid, uid, code);
        ctx.may_block();
        let sigkill = crate::signal::bit(libc::SIGKILL);
        tr.wait_resume(|| {
            group.exiting() == Some(ExitStatus::Signal(Signo::SIGKILL))
                || (group.pending() | thread.pending()) & sigkill != 0
        });
        lock(&self.state)
    }

    /// A ptrace-stop: publishes the thread's state for the tracer, tells it, lets go of the
    /// task state and sleeps until resumed; then takes back the registers and FPU state
    /// the tracer may have changed. None when SIGKILL (or the process's end) cut the stop
    /// short: the process is then ending.
    #[allow(clippy::too_many_arguments)]
    fn ptrace_stop<'a>(
        &'a self,
        st: MutexGuard<'a, TaskState>,
        ctx: &mut dyn Context,
        regs: &mut UserRegs,
        tr: &Arc<Tracee>,
        kind: StopKind,
        code: i32,
        info: &SigInfo,
        orig_rax: u64,
        msg: Option<u64>,
    ) -> (MutexGuard<'a, TaskState>, Option<Resume>) {
        let sigkill = crate::signal::bit(libc::SIGKILL);
        let (group, thread, kernel) = (
            st.group.clone(),
            st.signals.thread.clone(),
            st.kernel.clone(),
        );
        let killed =
            || group.exiting().is_some() || (group.pending() | thread.pending()) & sigkill != 0;
        if killed() {
            return (st, None);
        }
        let fpu = ctx.fpu_state().unwrap_or_else(|_| vec![0u8; 4096]);
        tr.enter_stop(kind, code, regs, orig_rax, fpu, st.mm.clone(), info, msg);
        let (tid, uid, tracer) = (st.tid, st.group.uids().uid, tr.tracer());
        drop(st);
        tracing::debug!("ptrace: {tid} stops ({kind:?}, code {code:#x}, orig_rax {orig_rax:#x})");
        kernel.ptrace_stopped(tracer, tid, uid, code);
        ctx.may_block();
        let r = tr.wait_resume(killed);
        tracing::debug!("ptrace: {tid} resumes: {r:?}");
        let st = lock(&self.state);
        match r {
            Some(_) => {
                let (new_regs, fpu) = {
                    let mut i = tr.lock();
                    let fpu = i.fpu_dirty.then(|| std::mem::take(&mut i.fpu));
                    i.fpu_dirty = false;
                    (i.regs, fpu)
                };
                *regs = new_regs;
                arm_single_step(&st, tr, regs);
                if let Some(f) = fpu {
                    if let Err(e) = ctx.set_fpu_state(&f) {
                        tracing::debug!("ptrace: the tracer's FPU state was refused: {e}");
                    }
                }
            }
            None => {
                if st.group.exiting().is_none() {
                    st.group.exit(ExitStatus::Signal(Signo::SIGKILL));
                }
            }
        }
        (st, r)
    }

    /// A traced thread ended: its link goes; a tracer that isn't the parent hears of the
    /// process's end (a wait report and SIGCHLD) before the parent.
    fn ptrace_exited(&self, st: &TaskState, last: bool, status: ExitStatus) {
        let Some(tr) = st.kernel.ptrace.get(st.tid) else {
            return;
        };
        let tracer = tr.tracer();
        let parent = st.kernel.ppid(st.pid);
        st.kernel
            .ptrace
            .tracee_exited(st.tid, st.pid, parent, status, last);
        if last && st.tid == st.pid && tracer != parent {
            if let Some(g) = st.kernel.group(tracer) {
                g.send(SigInfo::child_exit(
                    libc::SIGCHLD,
                    st.pid,
                    st.group.uids().uid,
                    status,
                    st.group.cpu.process(),
                ));
            }
        }
    }

    /// Ends this thread: clears and wakes its child-tid word, releases a vfork parent, and
    /// when it was the last thread, makes the process a zombie. Returns the thread's status.
    pub fn finish(&self) -> ExitStatus {
        let mut st = lock(&self.state);
        let group_status = st.group.exiting();
        // What a tracer is told: a thread's own exit code, unless the group ended first.
        let traced_status = st
            .exit
            .filter(|_| st.thread_exit)
            .or(group_status)
            .or(st.exit)
            .unwrap_or(ExitStatus::Code(0));
        let status = group_status.or(st.exit).unwrap_or(ExitStatus::Code(0));
        // The System V segments this thread made are orphans now (Linux's exit_shm); with
        // shm_rmid_forced, those nothing has attached go. Before the child-tid wake (Linux
        // does it a moment after): a joiner sees them gone.
        st.process.namespaces().ipc.ns.thread_exited(st.tid);
        exit_robust_list(&st);
        st.seccomp.release();
        if st.clear_child_tid != 0 && group_status.is_none() {
            let addr = st.clear_child_tid;
            if st.mm.copy_out(addr, &0u32.to_le_bytes()).is_ok() {
                // A shared wake, as Linux's: the word may be in memory other processes map.
                let key = crate::futex::Key::of(&st.mm, addr, false);
                crate::futex::wake(key, u32::MAX, 1);
            }
        }
        if let Some(v) = st.vfork_done.take() {
            v.complete();
        }
        if st.tid != st.pid {
            // A thread stops counting for RLIMIT_NPROC now; the main thread when reaped.
            st.kernel.tasks.release(st.creds.uid);
        }
        let remaining = st.group.remove_thread(st.tid);
        self.ptrace_exited(&st, remaining == 0, traced_status);
        if remaining == 0 {
            // The last thread out reports the process's status. It reads exit_group's
            // status again now: another thread may have called exit_group after this one
            // looked above (a thread's own exit racing the main thread's _exit made the
            // process exit with the thread's 0 instead of _exit's code).
            let status = st
                .group
                .exiting()
                .or(st.exit)
                .unwrap_or(ExitStatus::Code(0));
            st.group.timers.clear();
            st.process.namespaces().ipc.ns.process_exited(st.pid);
            if Arc::strong_count(&st.mm) == 1 {
                // System V segments are detached before the parent may see the exit.
                st.mm.lock().detach_shm();
                // As Linux's exit_mm before exit_notify: the program may be written again
                // once a waiter sees the exit (the address space itself goes with this
                // task's state, a moment later). Not when another process shares it (vfork).
                let exe_file = {
                    let mut mm = st.mm.lock();
                    mm.exe_access = None;
                    mm.exe_file.take()
                };
                // Let go of the program's place outside the address space's lock: the last
                // reference to a deleted file frees it.
                drop(exe_file);
            }
            st.group
                .sched
                .note_rss(st.mm.lock().resident_pages() as u64 * 4);
            st.fds.remove_process();
            st.kernel.process_exited(st.pid, status);
            return status;
        }
        status
    }
}
