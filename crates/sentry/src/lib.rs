//! The sentry: the application kernel that serves a sandboxed program's system calls.
//!
//! It implements the Linux x86-64 ABI on top of a [`platform::Platform`]: tasks, the memory
//! manager, the fd table, the ELF loader and the system call table (one file per family in
//! [`syscalls`]).

pub mod aio;
pub mod caps;
pub mod errno;
pub mod fdtable;
pub mod fs_context;
pub mod futex;
pub mod ioprio;
pub mod ipc;
pub mod job;
pub mod kernel;
pub mod loader;
pub mod membarrier;
pub mod mm;
pub mod namespaces;
pub mod process;
pub mod procfs;
pub mod program;
pub mod ptrace;
pub mod rlimit;
pub mod sched;
pub mod seccomp;
pub mod sigio;
pub mod signal;
pub mod signal_frame;
pub mod signalfd;
pub mod syscalls;
pub mod task;
pub mod timers;
pub mod tty;
pub mod vdso;

pub use kernel::{prepare, run, spawn_process, ProcessSpec, Sandbox};
pub use task::{Creds, ExitStatus};

/// Errors that stop the sandbox (as opposed to errnos returned to the application).
#[derive(Debug, thiserror::Error)]
pub enum SentryError {
    #[error(transparent)]
    Load(#[from] loader::LoadError),
    #[error("{0}: cannot build the initial stack: {1}")]
    Stack(String, String),
    #[error(transparent)]
    Platform(#[from] platform::PlatformError),
    #[error("out of sandbox memory")]
    OutOfMemory,
}

impl SentryError {
    /// The exit status a shell would use for this failure to start a program.
    pub fn exit_status(&self) -> i32 {
        match self {
            SentryError::Load(e) => e.exit_status(),
            SentryError::Stack(..) => 126,
            _ => 125,
        }
    }
}
