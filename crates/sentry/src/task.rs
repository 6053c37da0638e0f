//! Tasks: the state of an application thread and the loop that runs it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use platform::{Context, Event, FastSyscalls, Fault, Retry, UserRegs};

use crate::fdtable::FdTable;
use crate::fs_context::FsContext;
use crate::mm::{FaultError, Mm};
use crate::process::{Completion, Kernel, ThreadGroup};
use crate::signal::{SignalState, Signo, NSIG};
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
    /// Capability sets and securebits (caps.rs).
    pub caps: crate::caps::CapSets,
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

/// What prctl sets on a thread.
#[derive(Debug, Clone)]
pub struct Prctl {
    /// PR_SET_NAME (at most 15 bytes); empty means the program's name.
    pub name: Vec<u8>,
    pub dumpable: bool,
}

impl Default for Prctl {
    fn default() -> Self {
        // Linux starts every process dumpable; everything else off.
        Prctl {
            name: Vec::new(),
            dumpable: true,
        }
    }
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
    /// seccomp mode and filters, and no_new_privs (shared: TSYNC and /proc reach it).
    pub seccomp: Arc<crate::seccomp::ThreadSeccomp>,
    /// What the task sleeps on in poll, select and epoll_wait. A signal interrupts the
    /// sleep with `waiter.wake()`; keep a clone outside this struct to do so, since a
    /// sleeping task holds the lock on its state.
    pub waiter: Arc<fs::waiter::Waiter>,
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
        let mut st = lock(&self.state);
        // A pending signal is delivered by the task's own thread: send the call there.
        if !syscalls::can_serve_on_poller(&st, regs) || has_deliverable(&st) {
            return false;
        }
        if !syscalls::dispatch_on_poller(&mut st, regs) {
            return false;
        }
        if st.signals.interrupted_call.take().is_some() {
            // Calls served here never sleep, so nothing interrupts them; should one report
            // an interruption anyway, it must not reach the application as a restart code.
            regs.rax = (-(libc::EINTR as i64)) as u64;
        }
        if has_deliverable(&st) {
            // The call raised a signal (SIGPIPE): the task's thread must come to deliver it.
            st.group.interrupt_thread(st.tid);
        }
        true
    }

    fn ring_wait(&self, regs: &UserRegs) -> Option<std::time::Duration> {
        let st = lock(&self.state);
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
    if !handled || blocked || sig == Signo::SIGKILL {
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
        Fault::AlignmentCheck => (1, 0),  // BUS_ADRALN
        _ => (0x80, 0),                   // SI_KERNEL
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
fn deliver_signals(st: &mut TaskState, ctx: &mut dyn Context, regs: &mut UserRegs) {
    let interrupted = st.signals.interrupted_call.take();
    let handled = run_handler(st, ctx, regs, interrupted);
    if handled {
        // As Linux's exit-to-user loop: a frame for every signal still deliverable under
        // the mask the last handler set, each on top of the previous, so the last one set
        // up runs first and the others run as each returns. (Bounded: a signal with
        // SA_NODEFER and a full real-time queue could otherwise go on for long.)
        for _ in 0..NSIG {
            if st.group.exiting().is_some() || !run_handler(st, ctx, regs, None) {
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
}

/// Takes pending signals until one has a handler, and sets up its frame. Returns whether a
/// handler will run (false also when a default action ended the process).
fn run_handler(
    st: &mut TaskState,
    ctx: &mut dyn Context,
    regs: &mut UserRegs,
    interrupted: Option<u64>,
) -> bool {
    use crate::signal::{bit, ignored_by_default, stops_by_default, UNBLOCKABLE};
    loop {
        let mask = st.signals.mask();
        let Some(info) = st.group.dequeue(&st.signals.thread, mask) else {
            return false;
        };
        let sig = info.signo;
        let handlers = st.group.handlers();
        let action = handlers.get(sig);
        if action.handler == libc::SIG_IGN as u64 && sig != libc::SIGKILL {
            continue;
        }
        if action.handler == libc::SIG_DFL as u64 || sig == libc::SIGKILL || sig == libc::SIGSTOP {
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
        let fpu = ctx.fpu_state().unwrap_or_else(|_| vec![0u8; 4096]);
        let alt = st.signals.altstack;
        // After sigsuspend, the frame restores the mask from before the call.
        let frame_mask = st.signals.saved_mask.take().unwrap_or(mask);
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
            match event {
                Event::Syscall => syscalls::dispatch(&mut st, &mut regs, true),
                Event::Fault(fault) => {
                    tracing::trace!("fault {fault:?} at rip {:#x}", regs.rip);
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
                if let Some(fpu) = st.restore_fpu.take() {
                    if ctx.set_fpu_state(&fpu).is_err() {
                        // A damaged frame: Linux answers a bad sigreturn with SIGSEGV.
                        st.group.exit(ExitStatus::Signal(Signo::SIGSEGV));
                    }
                }
                if safe_point {
                    deliver_signals(&mut st, ctx, &mut regs);
                    if st.group.job.is_stopped() {
                        // Job control: park until SIGCONT (or SIGKILL, or the end), then
                        // take what arrived meanwhile (SIGCONT's handler).
                        let group = st.group.clone();
                        drop(st);
                        ctx.may_block();
                        group.job.wait_while_stopped(|| group.exiting().is_some());
                        st = lock(&self.state);
                        if st.group.exiting().is_none() {
                            deliver_signals(&mut st, ctx, &mut regs);
                        }
                    }
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
                // Nobody may kick the vCPU once it is back in the pool.
                st.group.clear_interrupter(st.tid);
                drop(st);
                drop(vcpu);
                return Ok(self.finish());
            }
        }
    }

    /// Ends this thread: clears and wakes its child-tid word, releases a vfork parent, and
    /// when it was the last thread, makes the process a zombie. Returns the thread's status.
    pub fn finish(&self) -> ExitStatus {
        let mut st = lock(&self.state);
        let group_status = st.group.exiting();
        let status = group_status.or(st.exit).unwrap_or(ExitStatus::Code(0));
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
            st.kernel.ipc.process_exited(st.pid);
            if Arc::strong_count(&st.mm) == 1 {
                // System V segments are detached before the parent may see the exit.
                st.mm.lock().detach_shm();
                // As Linux's exit_mm before exit_notify: the program may be written again
                // once a waiter sees the exit (the address space itself goes with this
                // task's state, a moment later). Not when another process shares it (vfork).
                st.mm.lock().exe_access = None;
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
