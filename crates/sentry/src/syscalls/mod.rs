//! The system call table and dispatch. One file per family; this table is the single map from
//! numbers to handlers, and generates `docs/syscalls.md`.

mod fs;
mod mm;
pub mod names;
mod process;
mod signal;
mod time;

use std::sync::OnceLock;

use platform::UserRegs;

use crate::errno::{Errno, SysResult};
use crate::task::TaskState;
use names::{NAMES, SYSCALL_COUNT};

/// A handler: task state, the caller's registers (for calls that read or set more than the
/// arguments), and the six arguments.
pub type Handler = fn(&mut TaskState, &mut UserRegs, [u64; 6]) -> SysResult;

/// How complete an implementation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support {
    Full,
    /// Works for common use; the text says what is missing.
    Partial(&'static str),
}

/// Where a call may be served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Thread {
    /// Never blocks and needs only the task state: the ring poller may serve it.
    Any,
    /// May block, ends the task, or needs the thread's CPU state: the task's own thread.
    Own,
}

/// One row of the table.
pub struct Syscall {
    pub nr: u64,
    pub handler: Handler,
    pub support: Support,
    pub thread: Thread,
}

const fn sys(nr: i64, handler: Handler, support: Support, thread: Thread) -> Syscall {
    Syscall {
        nr: nr as u64,
        handler,
        support,
        thread,
    }
}

use libc as n;
use Support::{Full, Partial};
use Thread::{Any, Own};

const NO_FS: &str = "standard streams only: there is no file system yet";

/// Every implemented system call.
pub static TABLE: &[Syscall] = &[
    sys(n::SYS_read, fs::read, Partial(NO_FS), Own),
    sys(n::SYS_write, fs::write, Partial(NO_FS), Own),
    sys(n::SYS_readv, fs::readv, Partial(NO_FS), Own),
    sys(n::SYS_writev, fs::writev, Partial(NO_FS), Own),
    sys(n::SYS_pread64, fs::pread64, Partial(NO_FS), Own),
    sys(n::SYS_pwrite64, fs::pwrite64, Partial(NO_FS), Own),
    sys(n::SYS_lseek, fs::lseek, Partial(NO_FS), Any),
    sys(n::SYS_fstat, fs::fstat, Partial(NO_FS), Any),
    sys(n::SYS_newfstatat, fs::newfstatat, Partial("AT_EMPTY_PATH on an open fd only; paths give ENOENT until the VFS lands"), Any),
    sys(n::SYS_ioctl, fs::ioctl, Partial("TCGETS and TIOCGWINSZ only; others give ENOTTY"), Any),
    sys(n::SYS_readlink, fs::readlink, Partial("/proc/self/exe only"), Any),
    sys(n::SYS_readlinkat, fs::readlinkat, Partial("/proc/self/exe only"), Any),
    sys(n::SYS_getcwd, fs::getcwd, Full, Any),
    sys(n::SYS_brk, mm::brk, Full, Any),
    sys(n::SYS_mmap, mm::mmap, Partial("anonymous memory only; MAP_SHARED is private until fork exists"), Any),
    sys(n::SYS_munmap, mm::munmap, Full, Any),
    sys(n::SYS_mprotect, mm::mprotect, Partial("PROT_GROWSDOWN/GROWSUP ignored"), Any),
    sys(n::SYS_mremap, mm::mremap, Partial("old_size 0 (duplicating a shared mapping) and MREMAP_DONTUNMAP are refused with EINVAL"), Any),
    sys(n::SYS_madvise, mm::madvise, Partial("DONTNEED/FREE/REMOVE discard pages; other advice is accepted and ignored"), Any),
    sys(n::SYS_exit, process::exit, Partial("single-threaded: ends the process"), Own),
    sys(n::SYS_exit_group, process::exit_group, Full, Own),
    sys(n::SYS_arch_prctl, process::arch_prctl, Partial("ARCH_SET/GET_FS and _GS only"), Own),
    sys(n::SYS_set_tid_address, process::set_tid_address, Partial("address recorded; cleared on exit once threads exist"), Any),
    sys(n::SYS_set_robust_list, process::set_robust_list, Partial("list recorded; processed on exit once threads exist"), Any),
    sys(n::SYS_uname, process::uname, Full, Any),
    sys(n::SYS_getpid, process::getpid, Full, Any),
    sys(n::SYS_gettid, process::gettid, Full, Any),
    sys(n::SYS_getppid, process::getppid, Full, Any),
    sys(n::SYS_getuid, process::getuid, Full, Any),
    sys(n::SYS_geteuid, process::geteuid, Full, Any),
    sys(n::SYS_getgid, process::getgid, Full, Any),
    sys(n::SYS_getegid, process::getegid, Full, Any),
    sys(n::SYS_getgroups, process::getgroups, Full, Any),
    sys(n::SYS_getresuid, process::getresuid, Full, Any),
    sys(n::SYS_getresgid, process::getresgid, Full, Any),
    sys(n::SYS_getrandom, process::getrandom, Full, Any),
    sys(n::SYS_prlimit64, process::prlimit64, Partial("limits are recorded, not enforced"), Any),
    sys(n::SYS_getrlimit, process::getrlimit, Partial("limits are recorded, not enforced"), Any),
    sys(n::SYS_setrlimit, process::setrlimit, Partial("limits are recorded, not enforced"), Any),
    sys(n::SYS_sched_getaffinity, process::sched_getaffinity, Partial("reports the sandbox's host CPU set"), Any),
    sys(n::SYS_sched_yield, process::sched_yield, Full, Own),
    sys(n::SYS_umask, process::umask, Full, Any),
    sys(n::SYS_rt_sigaction, signal::rt_sigaction, Partial("bookkeeping only: handlers are not delivered yet"), Any),
    sys(n::SYS_rt_sigprocmask, signal::rt_sigprocmask, Partial("bookkeeping only"), Any),
    sys(n::SYS_clock_gettime, time::clock_gettime, Partial("CPU-time clocks report the host thread's time"), Any),
    sys(n::SYS_clock_getres, time::clock_getres, Full, Any),
    sys(n::SYS_gettimeofday, time::gettimeofday, Full, Any),
    sys(n::SYS_time, time::time, Full, Any),
    sys(n::SYS_nanosleep, time::nanosleep, Partial("not interruptible by signals yet"), Own),
    sys(n::SYS_clock_nanosleep, time::clock_nanosleep, Partial("not interruptible by signals yet"), Own),
];

fn lookup_table() -> &'static [Option<&'static Syscall>] {
    static LOOKUP: OnceLock<Vec<Option<&'static Syscall>>> = OnceLock::new();
    LOOKUP.get_or_init(|| {
        let mut v: Vec<Option<&'static Syscall>> = vec![None; SYSCALL_COUNT];
        for s in TABLE {
            v[s.nr as usize] = Some(s);
        }
        v
    })
}

/// The table row of `nr`, if implemented.
pub fn lookup(nr: u64) -> Option<&'static Syscall> {
    lookup_table().get(nr as usize).copied().flatten()
}

/// Whether the ring poller may serve `nr` (unknown numbers too: they just fail with ENOSYS).
pub fn can_serve_on_poller(nr: u64) -> bool {
    lookup(nr).is_none_or(|s| s.thread == Thread::Any)
}

/// Name of a system call number, for logs.
pub fn name(nr: u64) -> &'static str {
    match NAMES.get(nr as usize) {
        Some(n) if !n.is_empty() => n,
        _ => "unknown",
    }
}

/// Serves the system call in `regs`, leaving the result in `rax`.
pub fn dispatch(task: &mut TaskState, regs: &mut UserRegs) {
    let nr = regs.rax;
    let args = regs.syscall_args();
    let result = match lookup(nr) {
        Some(s) => (s.handler)(task, regs, args),
        None => {
            if task.logged_missing.insert(nr) {
                tracing::debug!("unimplemented system call {} ({nr})", name(nr));
            }
            Err(Errno::ENOSYS)
        }
    };
    tracing::trace!(
        "{}({:#x}, {:#x}, {:#x}) = {result:?}",
        name(nr),
        args[0],
        args[1],
        args[2]
    );
    regs.rax = match result {
        Ok(v) => v,
        Err(Errno(e)) => (-(e as i64)) as u64,
    };
}

/// `docs/syscalls.md`: every x86-64 system call and its status.
pub fn markdown_status() -> String {
    let mut out = String::new();
    out.push_str("# System calls\n\n");
    out.push_str(
        "Generated by `runsc syscalls --markdown` from the sentry's table \
         (`crates/sentry/src/syscalls/mod.rs`). Do not edit by hand.\n\n",
    );
    let implemented = TABLE.iter().filter(|s| s.support == Full).count();
    let partial = TABLE.len() - implemented;
    let named = NAMES.iter().filter(|n| !n.is_empty()).count();
    out.push_str(&format!(
        "{implemented} implemented, {partial} partial, {} missing (ENOSYS) of {named}.\n\n",
        named - TABLE.len()
    ));
    out.push_str("| nr | name | status | notes |\n|---:|---|---|---|\n");
    for (nr, n) in NAMES.iter().enumerate() {
        if n.is_empty() {
            continue;
        }
        let (status, notes) = match lookup(nr as u64) {
            Some(s) => match s.support {
                Full => ("implemented", ""),
                Partial(why) => ("partial", why),
            },
            None => ("ENOSYS", ""),
        };
        out.push_str(&format!("| {nr} | {n} | {status} | {notes} |\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_numbers_are_unique_and_named() {
        let mut seen = std::collections::HashSet::new();
        for s in TABLE {
            assert!(seen.insert(s.nr), "duplicate {}", s.nr);
            assert_ne!(name(s.nr), "unknown", "{} has no name", s.nr);
        }
    }
}
