//! Tasks: the state of an application thread and the loop that runs it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use platform::{Context, Event, FastSyscalls, Fault, UserRegs};

use crate::fdtable::FdTable;
use crate::fs_context::FsContext;
use crate::mm::{FaultError, Mm};
use crate::process::{Completion, Kernel, ThreadGroup};
use crate::signal::{SignalState, Signo};
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
}

impl FastSyscalls for TaskSyscalls {
    fn serve(&self, regs: &mut UserRegs) -> bool {
        let mut st = lock(&self.state);
        if !syscalls::can_serve_on_poller(&st, regs) {
            return false;
        }
        syscalls::dispatch(&mut st, regs);
        true
    }
}

/// The signal a fault raises when the memory manager can't resolve it.
fn fault_signal(fault: &Fault, mm_result: Option<FaultError>) -> Signo {
    match fault {
        Fault::Page { .. } => match mm_result {
            Some(FaultError::OutOfMemory) => Signo::SIGKILL,
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

impl Task {
    /// Runs the task until its thread group exits.
    pub fn run(
        &self,
        ctx: &mut dyn Context,
        mut regs: UserRegs,
    ) -> Result<ExitStatus, SentryError> {
        loop {
            // execve replaces the address space: pick up the current one each time.
            let space = lock(&self.state).mm.address_space().clone();
            let event = ctx.switch(&space, &mut regs)?;
            let mut st = lock(&self.state);
            match event {
                Event::Syscall => syscalls::dispatch(&mut st, &mut regs),
                Event::Fault(fault) => {
                    tracing::trace!("fault {fault:?} at rip {:#x}", regs.rip);
                    let unresolved = match fault {
                        Fault::Page { addr, access } => st.mm.handle_fault(addr, access).err(),
                        _ => Some(FaultError::AccessDenied),
                    };
                    if let Some(err) = unresolved {
                        let sig = fault_signal(&fault, Some(err));
                        tracing::debug!(
                            "fault {fault:?} at rip {:#x}: killed by signal {}",
                            regs.rip,
                            sig.0
                        );
                        st.group.exit(ExitStatus::Signal(sig));
                    }
                }
                Event::Interrupted => {}
            }
            if st.exit.is_some() || st.group.exiting().is_some() {
                drop(st);
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
        if st.clear_child_tid != 0 && group_status.is_none() {
            let addr = st.clear_child_tid;
            if st.mm.copy_out(addr, &0u32.to_le_bytes()).is_ok() {
                crate::futex::wake((Arc::as_ptr(&st.mm) as usize, addr), u32::MAX, 1);
            }
        }
        if let Some(v) = st.vfork_done.take() {
            v.complete();
        }
        let remaining = st.group.remove_thread(st.tid);
        if remaining == 0 {
            st.kernel.process_exited(st.pid, status);
        }
        status
    }
}
