//! Resource limits the sentry enforces beyond a simple comparison at the call that uses
//! them: the main thread's stack (RLIMIT_STACK) and tasks per user (RLIMIT_NPROC).

pub mod nproc;
pub mod stack;

/// Indices into [`crate::task::TaskState::rlimits`].
pub const RLIMIT_STACK: usize = libc::RLIMIT_STACK as usize;
pub const RLIMIT_NPROC: usize = libc::RLIMIT_NPROC as usize;
/// fs.nr_open: the most descriptors a process may have (RLIMIT_NOFILE's ceiling), Linux's default.
pub const NR_OPEN: u64 = 1 << 20;
