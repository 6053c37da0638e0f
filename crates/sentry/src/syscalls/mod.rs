//! The system call table and dispatch. One file per family; this table is the single map from
//! numbers to handlers, and generates `docs/syscalls.md`.

mod admin;
mod aio;
mod attr;
mod clone;
mod copy;
mod exec;
mod fd;
mod futex;
mod futex_waitv;
mod ifioctl;
mod inotify;
mod ioprio;
mod kcmp;
pub use ifioctl::host_socket_ioctls;
mod inet;
mod locks;
mod membarrier;
mod mempolicy;
mod mm;
mod mount;
mod mount_fs;
mod mqueue;
mod msg;
mod namei;
pub mod names;
mod path;
mod persona;
mod pidfd;
mod poll;
mod process;
mod resource;
pub mod ring_wait;
mod rw;
mod sched;
mod scratch;
mod seccomp;
mod sem;
mod shm;
mod signal;
mod sigsend;
mod socket;
mod sockopt;
mod time;
mod timer;
mod timerfd;
mod tty;

pub use admin::snapshot_host_clock;

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

const CPU_TIMERS: &str = "CPU-time timers (ITIMER_VIRTUAL, ITIMER_PROF, CPU clocks) count the host CPU time of the process's task threads (guest code and the calls served on them, not those the ring poller serves), checked when the clock could first reach the deadline; ITIMER_VIRTUAL counts system time too";
const INOTIFY_PARTIAL: &str = "events only for changes made inside the sandbox (not by the host under a host directory); a running program's removed binary reports IN_DELETE_SELF when its last name goes, not at exit (its mapping holds no name); no IN_UNMOUNT when a watched file's mount goes; no events for exec's open and read, nor for writes through shared mappings (as Linux); /proc/PID/fdinfo shows no watches; the /proc/sys/fs/inotify limits are fixed at Linux's defaults (max_user_watches 65536)";
const PIPE_SLOTS: &str = "a pipe's room is counted in bytes, not in page-sized slots";
const THREAD_SIGNAL_PERMISSION: &str = "the permission check uses the target process's main thread's user ids, not the target thread's";
const RLIMITS: &str = "enforced: RLIMIT_NOFILE, RLIMIT_AS, RLIMIT_NPROC (at fork and clone; execve after a setuid to a user over the limit isn't refused) and RLIMIT_STACK (read at execve: the main stack is reserved whole, at most 128 MiB, also when unlimited); RLIMIT_CORE: no core file is ever written; the others are recorded, not enforced";
const SCHED_KEPT: &str = "nice values and policies are per process (Linux: per thread) and only recorded: the host schedules the sandbox's threads as it did; RLIMIT_NICE is the caller's (Linux reads the target's)";
const SCHED_POLICY: &str = "policies are per process (Linux: per thread) and only recorded, never applied to the host; SCHED_DEADLINE is EPERM without CAP_SYS_NICE and EBUSY with it (no bandwidth to admit)";
const USAGE_CPU: &str = "the CPU time the CPU-time clocks count (see clock_gettime), all of it as user time (system time 0); children's time is that of waited-for children";
const MLOCK: &str = "locked memory is counted against RLIMIT_MEMLOCK (CAP_IPC_LOCK exempt) and populated (unless ONFAULT); the sandbox never pages out, so nothing else changes; mlockall(MCL_FUTURE|MCL_ONFAULT) locks future mappings populated anyway";
const MEMPOLICY: &str = "one memory node (node 0), as on this host: policies are checked, recorded (per thread, per VMA by mbind) and reported as Linux reports them, never applied; mbind's MPOL_MF_MOVE/STRICT have nothing to move or report; a shared mapping's policy is its VMA's, not the shared file's (Linux's shmem shared policy); no /proc/PID/numa_maps";
const SECCOMP: &str = "strict mode and classic BPF filters run by the sentry before each call, with Linux's checks, precedence, TSYNC and inheritance; user notification (SET_FLAGS' SYNC_WAKE_UP accepted as the hint it is; WAIT_KILLABLE_RECV accepted but the wait stays interruptible); RET_TRACE gives ENOSYS (as without a tracer: no PTRACE_EVENT_SECCOMP stop yet); LOG goes to the sentry's debug log, not the audit log; SPEC_ALLOW changes nothing";
const PTRACE_ACCESS: &str = "within the sandbox; the ptrace access check is Linux's (PTRACE_MODE_ATTACH_REALCREDS: all the target's user and group ids the caller's, else CAP_SYS_PTRACE over its user namespace; CAP_SYS_PTRACE for a target that is not dumpable; the commoncap capability subset; Yama scope 1), with another process's credentials taken as its main thread's";
const MEMBARRIER: &str = "barriers are the host's MEMBARRIER_CMD_PRIVATE_EXPEDITED (SYNC_CORE: its sync-core form) on the sentry process, which covers every thread of the sandbox (registered or not, and the sentry's own), not host processes sharing a file mapping with it; GLOBAL is expedited too; without the host's expedited commands GLOBAL and the memory barriers fall back to its MEMBARRIER_CMD_GLOBAL and the sync-core commands are not offered (QUERY reports what is backed); no RSEQ commands (EINVAL, as a kernel without rseq)";
const IOPRIO: &str = "I/O priorities are checked (RT needs CAP_SYS_ADMIN or CAP_SYS_NICE), recorded per thread in an I/O context (shared by CLONE_IO, copied by clone when it holds a class) and reported, but have no effect: the sandbox's I/O is the sentry's; a thread's ownership for the permission check is its process's real uid; the nice value and policy a group's or user's answer is computed from are per process";
const OPEN_NOTE: &str =
    "a FIFO in a host directory connects the sandbox's processes only, never host processes; \
     /proc/PID/fd/N of a host stream (runsc do's standard streams) opens the same host \
     descriptor again, so a host regular file's offset is shared (Linux opens it anew) and \
     O_TRUNC leaves it whole";

/// io_pgetevents' number (the libc crate doesn't name it on x86-64).
const SYS_IO_PGETEVENTS: i64 = 333;
const AIO_SETUP: &str = "rings are sized for the CPUs the sentry may run on (Linux: the possible CPUs); /proc/sys/fs/aio-max-nr is Linux's default 65536, read-only; aio-nr counts the sandbox's contexts";
const AIO_SUBMIT: &str = "reads and writes complete inside io_submit, as Linux's buffered AIO does (O_DIRECT is not asynchronous either); fsync and fdsync run on a worker thread; RWF_NOWAIT gives EAGAIN for a stream that isn't ready (a regular file never waits), RWF_NOAPPEND is accepted without effect, RWF_ATOMIC and RWF_DONTCACHE refused (EOPNOTSUPP); the I/O priority is checked, not applied";

/// poll and epoll_wait restarted because a signal nobody handled woke them.
const RESTART_FULL_TIMEOUT: &str = "when a signal without a handler (one another thread took first) interrupts the wait, it restarts with the full timeout";
const SIGNALFD: &str = "reads the signals of the reading thread and its process; a signalfd polled or added to epoll outside a call of the task's own thread (epoll_ctl) reports its creator's";

const UNIX_ONLY: &str = "AF_UNIX is the sandbox's own; AF_INET/AF_INET6 TCP, UDP and ICMP datagram sockets and AF_NETLINK NETLINK_ROUTE are host sockets of the sentry's network namespace (inet.rs); SOCK_RAW gives EPERM, AF_PACKET and other families EAFNOSUPPORT";
const PAIR: &str = "AF_UNIX; EOPNOTSUPP for AF_INET, AF_INET6 and AF_NETLINK, as Linux";
const SOCK_SEND: &str = "AF_UNIX: no MSG_OOB; network sockets: only the IP_PKTINFO, IP_TOS, IP_TTL, IPV6_PKTINFO, IPV6_HOPLIMIT and IPV6_TCLASS control messages; netlink changes (links, addresses, routes, neighbours; plain attributes only) only by a caller with CAP_NET_ADMIN in the sandbox's own namespace, else answered with NLMSG_ERROR EPERM as Linux; a write mixing reads and refused changes fails with EPERM";
const SOCK_RECV: &str = "AF_UNIX: no MSG_OOB or MSG_ERRQUEUE, SO_RCVLOWAT ignored; network sockets: at most 1 MiB per call";
const SOCK_OPTS: &str = "AF_UNIX: SOL_SOCKET only, SO_REUSEADDR, SO_KEEPALIVE, SO_LINGER and the like stored without effect, buffer sizes capped at Linux's default maxima; network sockets: an allowlist passed to the host (sockopt.rs), SO_RCVTIMEO/SO_SNDTIMEO kept by the sentry, SO_MARK and IP_TRANSPARENT EPERM, anything else ENOPROTOOPT";

const SHM_CTL: &str = "SHM_LOCK/SHM_UNLOCK set and clear the flag only (the sandbox never pages out; no RLIMIT_MEMLOCK accounting); shm_rss counts the pages the segments' files hold";
const MSG_WAKE: &str = "waiting senders and receivers are woken together and race for the queue (Linux hands a message straight to the first waiting receiver that takes it); all queues together hold at most 256 MiB and 2^20 messages, whatever msg_qbytes";
const SEM_WAKE: &str = "waiters are woken together on every change and retry (Linux's queue order among waiters isn't kept); CLONE_SYSVSEM isn't needed: threads share their process's SEM_UNDO adjustments, processes never do";

const MQ_OPEN: &str = "queues are the IPC namespace's own; limits are its /proc/sys/fs/mqueue (queues_max, msg_max, msgsize_max, msg_default, msgsize_default; Linux's defaults and ranges, root may write them), CAP_SYS_RESOURCE passes queues_max and the maxima up to the hard limits; RLIMIT_MSGQUEUE counts Linux's bytes per queue (with 48 per message and per priority node) for the real uid, but within the IPC namespace (Linux: across all of them); /dev/mqueue lists the queues and reads their status lines but can't create or remove them (use mq_open, mq_unlink)";
const MQ_WAKE: &str = "waiters are woken together and race (Linux wakes the longest-waiting, highest-priority task first); all queues together hold at most 256 MiB";
const MQ_NOTIFY: &str =
    "SIGEV_SIGNAL and SIGEV_NONE; SIGEV_THREAD (glibc hands the kernel a netlink socket) is EINVAL";

const NAMESPACES: &str = "UTS, IPC, mount, cgroup, user and pid namespaces are the sandbox's own objects; per process, not per thread (a thread's unshare moves its whole process; clone with CLONE_THREAD and a CLONE_NEW* flag is EINVAL); a pid namespace numbers its processes from 1 for every call taking or giving a pid, the proc mounted in it, and siginfo's si_pid (0 for a sender outside it); its init reaps its orphans, takes no default action from inside (SIGKILL and SIGSTOP only from outside), and its end kills the rest of the namespace, after which fork into it is ENOMEM; kill(-1) stays within the caller's namespace; the sandbox's own first process is not protected as an init is (`runsc do` programs expect a default action to work); a user namespace may be made by anyone (EINVAL from a threaded process, EPERM when chroot'ed or when the creator's ids aren't mapped, ENOSPC past 32 levels); its uid_map and gid_map are written once with Linux's rules (at most 340 lines, no overlaps, outside ids mapped in the parent, only one's own euid/egid without CAP_SETUID/CAP_SETGID in the parent, the egid only after setgroups \"deny\") and read relative to the reader's namespace; ids are the sandbox's inside and translated at the edges (unmapped: 65534): get*id, getgroups, setfsuid/setfsgid, stat/statx, /proc/PID/status, SO_PEERCRED, SCM_CREDENTIALS, si_uid (handlers, rt_sigtimedwait, waitid), IPC_STAT show them, set*id, setgroups, chown, SCM_CREDENTIALS and IPC_SET take them (EINVAL unmapped); its creator has every capability in it and over the UTS, IPC, mount and pid namespaces it owns (hostname, mount of tmpfs/devpts/proc/mqueue, setns), while capabilities over files hold only for files whose owner and group it maps, and the rest (devices, clocks, kill, ptrace, IPC permissions, sysfs) only in the initial namespace; mounts copied into a mount namespace owned by another user namespace are locked as Linux's (no umount or move of them, their ro/nosuid/nodev/noexec and atime flags kept, no non-recursive bind of their parent, no superblock remount); not yet translated: si_uid from signalfd and PTRACE_GETSIGINFO, /proc/sysvipc, file owners in /proc/PID; /proc/PID files stay the process's even when it is not dumpable; CLONE_NEWNET and CLONE_NEWTIME are EPERM (the network namespace is the sandbox's already)";
const SETNS: &str = "/proc/PID/ns files only (a pidfd is EINVAL); per process, as unshare";
const MOUNT: &str = "tmpfs (a new one each time; size, nr_inodes, mode, uid, gid), proc, sysfs and devpts (the sandbox's own instances), mqueue (the mounter's IPC namespace's queues), bind and recursive bind, MS_MOVE, remount (the per-mount flags; a tmpfs' size isn't changed), ro/nosuid/nodev/noexec and the atime flags per mount (noexec, nodev and ro enforced); propagation types are recorded and shown in mountinfo, but no mount or unmount propagates to peers or slaves; other types ENODEV";

/// Every implemented system call.
pub static TABLE: &[Syscall] = &[
    // Reading and writing (rw.rs). May block on streams: see `can_serve_on_poller`.
    sys(n::SYS_read, rw::read, Full, Own),
    sys(n::SYS_write, rw::write, Full, Own),
    sys(n::SYS_readv, rw::readv, Full, Own),
    sys(n::SYS_writev, rw::writev, Full, Own),
    sys(n::SYS_pread64, rw::pread64, Full, Own),
    sys(n::SYS_pwrite64, rw::pwrite64, Full, Own),
    sys(n::SYS_preadv, rw::preadv, Full, Own),
    sys(n::SYS_pwritev, rw::pwritev, Full, Own),
    sys(n::SYS_preadv2, rw::preadv2, Partial("RWF_* flags are accepted and ignored"), Own),
    sys(n::SYS_pwritev2, rw::pwritev2, Partial("RWF_* flags are accepted and ignored"), Own),
    sys(n::SYS_lseek, rw::lseek, Partial("SEEK_DATA/SEEK_HOLE report no holes"), Any),
    sys(n::SYS_ioctl, rw::ioctl, Partial(tty::SUPPORTED), Own),
    // Opening and descriptors (fd.rs).
    sys(n::SYS_open, fd::open, Partial(OPEN_NOTE), Any),
    sys(n::SYS_openat, fd::openat, Partial(OPEN_NOTE), Any),
    sys(n::SYS_openat2, fd::openat2, Partial("RESOLVE_CACHED gives EAGAIN only with O_CREAT, O_TRUNC or O_TMPFILE: every other lookup counts as cached (Linux also refuses a lookup that would need I/O)"), Any),
    sys(n::SYS_creat, fd::creat, Full, Any),
    sys(n::SYS_close, fd::close, Full, Any),
    sys(n::SYS_close_range, fd::close_range, Full, Any),
    sys(n::SYS_dup, fd::dup, Full, Any),
    sys(n::SYS_dup2, fd::dup2, Full, Any),
    sys(n::SYS_dup3, fd::dup3, Full, Any),
    sys(n::SYS_fcntl, fd::fcntl, Partial("leases (F_SETLEASE, F_GETLEASE) break on opens and truncate by the sandbox's processes only (not the host's, under a host directory), with the break time fixed at Linux's default 45 s, and show nowhere in /proc/locks; F_NOTIFY (dnotify) registrations go when the description goes, not at the close of each descriptor as on Linux; O_ASYNC signals (SIGIO or F_SETSIG's) tell readers of data and pipe writers of room, not of hang-ups, and go without Linux's sigio_perm credential check; F_SETPIPE_SZ applies pipe-max-size but no per-user pipe-user-pages accounting"), Any),
    sys(n::SYS_pipe, fd::pipe, Full, Any),
    sys(n::SYS_pipe2, fd::pipe2, Full, Any),
    // The namespace (namei.rs).
    sys(n::SYS_mkdir, namei::mkdir, Full, Any),
    sys(n::SYS_mkdirat, namei::mkdirat, Full, Any),
    sys(n::SYS_mknod, namei::mknod, Partial("device nodes other than the sandbox's own devices (null, zero, full, random, urandom, tty) open with ENXIO"), Any),
    sys(n::SYS_mknodat, namei::mknodat, Partial("device nodes other than the sandbox's own devices (null, zero, full, random, urandom, tty) open with ENXIO"), Any),
    sys(n::SYS_symlink, namei::symlink, Full, Any),
    sys(n::SYS_symlinkat, namei::symlinkat, Full, Any),
    sys(n::SYS_unlink, namei::unlink, Full, Any),
    sys(n::SYS_unlinkat, namei::unlinkat, Full, Any),
    sys(n::SYS_rmdir, namei::rmdir, Full, Any),
    sys(n::SYS_rename, namei::rename, Full, Any),
    sys(n::SYS_renameat, namei::renameat, Full, Any),
    sys(n::SYS_renameat2, namei::renameat2, Partial("RENAME_WHITEOUT is refused"), Any),
    sys(n::SYS_link, namei::link, Full, Any),
    sys(n::SYS_linkat, namei::linkat, Full, Any),
    sys(n::SYS_readlink, namei::readlink, Full, Any),
    sys(n::SYS_readlinkat, namei::readlinkat, Full, Any),
    sys(n::SYS_chdir, namei::chdir, Full, Any),
    sys(n::SYS_fchdir, namei::fchdir, Full, Any),
    sys(n::SYS_getcwd, namei::getcwd, Full, Any),
    sys(n::SYS_getdents, namei::getdents, Full, Any),
    sys(n::SYS_getdents64, namei::getdents64, Full, Any),
    // Metadata (attr.rs).
    sys(n::SYS_stat, attr::stat, Full, Any),
    sys(n::SYS_lstat, attr::lstat, Full, Any),
    sys(n::SYS_fstat, attr::fstat, Full, Any),
    sys(n::SYS_newfstatat, attr::newfstatat, Full, Any),
    sys(n::SYS_statx, attr::statx, Partial("basic fields only; no btime, mount id or attributes"), Any),
    sys(n::SYS_access, attr::access, Full, Any),
    sys(n::SYS_faccessat, attr::faccessat, Full, Any),
    sys(n::SYS_faccessat2, attr::faccessat2, Full, Any),
    sys(n::SYS_chmod, attr::chmod, Full, Any),
    sys(n::SYS_fchmod, attr::fchmod, Full, Any),
    sys(n::SYS_fchmodat, attr::fchmodat, Full, Any),
    sys(n::SYS_chown, attr::chown, Full, Any),
    sys(n::SYS_fchown, attr::fchown, Full, Any),
    sys(n::SYS_lchown, attr::lchown, Full, Any),
    sys(n::SYS_fchownat, attr::fchownat, Full, Any),
    sys(n::SYS_truncate, attr::truncate, Full, Any),
    sys(n::SYS_ftruncate, attr::ftruncate, Full, Any),
    sys(n::SYS_fallocate, attr::fallocate, Full, Any),
    sys(n::SYS_utimensat, attr::utimensat, Full, Any),
    sys(n::SYS_utime, attr::utime, Full, Any),
    sys(n::SYS_utimes, attr::utimes, Full, Any),
    sys(n::SYS_futimesat, attr::futimesat, Full, Any),
    sys(n::SYS_statfs, attr::statfs, Full, Any),
    sys(n::SYS_fstatfs, attr::fstatfs, Full, Any),
    sys(n::SYS_sync, attr::sync, Full, Any),
    sys(n::SYS_syncfs, attr::fsync, Full, Any),
    sys(n::SYS_fsync, attr::fsync, Full, Any),
    sys(n::SYS_fdatasync, attr::fsync, Full, Any),
    sys(n::SYS_sync_file_range, attr::sync_file_range, Partial("writing a range syncs the whole file's data, as fdatasync"), Any),
    sys(n::SYS_getxattr, attr::getxattr, Full, Any),
    sys(n::SYS_lgetxattr, attr::lgetxattr, Full, Any),
    sys(n::SYS_fgetxattr, attr::fgetxattr, Full, Any),
    sys(n::SYS_setxattr, attr::setxattr, Full, Any),
    sys(n::SYS_lsetxattr, attr::lsetxattr, Full, Any),
    sys(n::SYS_fsetxattr, attr::fsetxattr, Full, Any),
    sys(n::SYS_listxattr, attr::listxattr, Full, Any),
    sys(n::SYS_llistxattr, attr::llistxattr, Full, Any),
    sys(n::SYS_flistxattr, attr::flistxattr, Full, Any),
    sys(n::SYS_removexattr, attr::removexattr, Full, Any),
    sys(n::SYS_lremovexattr, attr::lremovexattr, Full, Any),
    sys(n::SYS_fremovexattr, attr::fremovexattr, Full, Any),
    sys(n::SYS_brk, mm::brk, Full, Any),
    sys(n::SYS_mmap, mm::mmap, Partial("pages of files other than ImgFS images are copied at first touch, so a private mapping doesn't see later changes to a page it already read; shared mappings of a file (and shared anonymous memory, backed by an unnamed memfd-fs file as Linux uses shmem) share one page per file page between processes and are coherent with read/write, but truncating the file doesn't zero pages already mapped"), Any),
    sys(n::SYS_msync, mm::msync, Partial("writes back every populated page of shared file mappings"), Own),
    sys(n::SYS_munmap, mm::munmap, Full, Any),
    sys(n::SYS_mprotect, mm::mprotect, Partial("PROT_GROWSDOWN/GROWSUP ignored"), Any),
    sys(n::SYS_mremap, mm::mremap, Partial("old_size 0 (duplicating a shared mapping) and MREMAP_DONTUNMAP are refused with EINVAL"), Any),
    sys(n::SYS_madvise, mm::madvise, Partial("DONTNEED/FREE/REMOVE discard pages (FREE at once, not lazily; REMOVE doesn't punch a hole in the file); DONTFORK/DOFORK, WIPEONFORK/KEEPONFORK and POPULATE_READ/WRITE act; Linux's refusals (locked, file-backed, shared); the other advice (paging, huge pages, KSM) is accepted and ignored"), Any),
    sys(n::SYS_mincore, mm::mincore, Partial("a page is resident once the mapping has populated it (a file's page cache isn't consulted)"), Any),
    sys(n::SYS_mbind, mempolicy::mbind, Partial(MEMPOLICY), Any),
    sys(n::SYS_set_mempolicy, mempolicy::set_mempolicy, Partial(MEMPOLICY), Any),
    sys(n::SYS_get_mempolicy, mempolicy::get_mempolicy, Partial(MEMPOLICY), Any),
    sys(n::SYS_mlock, mm::mlock, Partial(MLOCK), Any),
    sys(n::SYS_mlock2, mm::mlock2, Partial(MLOCK), Any),
    sys(n::SYS_munlock, mm::munlock, Full, Any),
    sys(n::SYS_mlockall, mm::mlockall, Partial(MLOCK), Any),
    sys(n::SYS_munlockall, mm::munlockall, Full, Any),
    sys(n::SYS_clone, clone::clone, Partial("namespaces as unshare's (CLONE_NEWNET EPERM); CLONE_PIDFD for processes only (with CLONE_THREAD: EINVAL)"), Own),
    sys(n::SYS_clone3, clone::clone3, Partial("as clone; set_tid and cgroup refused"), Own),
    sys(n::SYS_fork, clone::fork, Full, Own),
    sys(n::SYS_vfork, clone::vfork, Full, Own),
    sys(n::SYS_wait4, clone::wait4, Partial("rusage has CPU time (as user time) and ru_maxrss only; WCOREDUMP is never set (no core files are written)"), Own),
    sys(n::SYS_waitid, clone::waitid, Partial("never CLD_DUMPED (no core files are written)"), Own),
    sys(n::SYS_getpgid, process::getpgid, Full, Any),
    sys(n::SYS_getpgrp, process::getpgrp, Full, Any),
    sys(n::SYS_getsid, process::getsid, Full, Any),
    sys(n::SYS_setpgid, process::setpgid, Full, Any),
    sys(n::SYS_setsid, process::setsid, Full, Any),
    sys(n::SYS_execve, exec::execve, Partial("the other threads of the process end first, but a thread other than the main one keeps its own thread id (Linux gives it the process id); no setuid/setgid or file capabilities"), Own),
    sys(n::SYS_execveat, exec::execveat, Partial("the other threads of the process end first, but a thread other than the main one keeps its own thread id (Linux gives it the process id); no setuid/setgid or file capabilities"), Own),
    sys(n::SYS_futex_waitv, futex_waitv::futex_waitv, Partial("FUTEX2_SIZE_U32 with or without FUTEX2_PRIVATE; FUTEX2_NUMA and FUTEX2_MPOL are EINVAL (as before Linux 6.16)"), Own),
    sys(n::SYS_membarrier, membarrier::membarrier, Partial(MEMBARRIER), Own),
    sys(n::SYS_futex, futex::futex, Partial("WAIT, WAKE, REQUEUE, CMP_REQUEUE, WAKE_OP and the BITSET forms; no PI futexes"), Own),
    sys(n::SYS_kill, sigsend::kill, Full, Own),
    sys(n::SYS_tkill, sigsend::tkill, Partial(THREAD_SIGNAL_PERMISSION), Own),
    sys(n::SYS_tgkill, sigsend::tgkill, Partial(THREAD_SIGNAL_PERMISSION), Own),
    sys(n::SYS_rt_sigqueueinfo, sigsend::rt_sigqueueinfo, Full, Own),
    sys(n::SYS_rt_tgsigqueueinfo, sigsend::rt_tgsigqueueinfo, Partial(THREAD_SIGNAL_PERMISSION), Own),
    sys(n::SYS_rt_sigreturn, signal::rt_sigreturn, Full, Own),
    sys(n::SYS_restart_syscall, signal::restart_syscall, Full, Own),
    sys(n::SYS_pause, signal::pause, Full, Own),
    sys(n::SYS_rt_sigsuspend, signal::rt_sigsuspend, Full, Own),
    sys(n::SYS_rt_sigtimedwait, signal::rt_sigtimedwait, Full, Own),
    sys(n::SYS_sigaltstack, signal::sigaltstack, Full, Any),
    sys(n::SYS_rt_sigpending, signal::rt_sigpending, Full, Any),
    sys(n::SYS_signalfd, signal::signalfd, Partial(SIGNALFD), Own),
    sys(n::SYS_signalfd4, signal::signalfd4, Partial(SIGNALFD), Own),
    sys(n::SYS_exit, process::exit, Full, Own),
    sys(n::SYS_exit_group, process::exit_group, Full, Own),
    sys(n::SYS_arch_prctl, process::arch_prctl, Partial("ARCH_SET/GET_FS and _GS only"), Own),
    sys(n::SYS_set_tid_address, process::set_tid_address, Full, Any),
    sys(n::SYS_set_robust_list, process::set_robust_list, Partial("processed at thread exit (owner-died marking and one wake per held lock), but the owner-died write is not atomic against a waiter setting FUTEX_WAITERS at that moment"), Any),
    sys(n::SYS_get_robust_list, process::get_robust_list, Partial("the calling thread's list only: another thread's is EPERM (no ptrace rights in the sandbox)"), Any),
    // ptrace (crates/sentry/src/ptrace/).
    sys(n::SYS_ptrace, crate::ptrace::request::ptrace, Partial(crate::ptrace::request::SUPPORT), Any),
    sys(n::SYS_uname, process::uname, Full, Any),
    sys(n::SYS_pidfd_open, pidfd::pidfd_open, Partial("processes only (PIDFD_THREAD is EINVAL); the descriptor reads as anon_inodefs' (Linux 6.9+ has pidfs); a pidfd's O_NONBLOCK doesn't make waitid(P_PIDFD) EAGAIN"), Any),
    sys(n::SYS_pidfd_send_signal, pidfd::pidfd_send_signal, Partial("flags must be 0 (no PIDFD_SIGNAL_THREAD/THREAD_GROUP/PROCESS_GROUP)"), Own),
    sys(n::SYS_pidfd_getfd, pidfd::pidfd_getfd, Partial(PTRACE_ACCESS), Any),
    sys(n::SYS_kcmp, kcmp::kcmp, Partial("KCMP_FILE, KCMP_VM, KCMP_FILES, KCMP_FS, KCMP_SIGHAND, KCMP_IO (the I/O contexts of ioprio_set, none before it), KCMP_SYSVSEM (a process's SEM_UNDO list, from its first SEM_UNDO semop or CLONE_SYSVSEM clone; processes cloned with CLONE_SYSVSEM get one each instead of sharing it) and KCMP_EPOLL_TFD; another process's thread is compared by its process's descriptor table and fs context (a thread cloned without CLONE_FILES or CLONE_FS has its own); the access check is ptrace's (PTRACE_MODE_READ_REALCREDS: ids, CAP_SYS_PTRACE, dumpable, no Yama), with another process's credentials taken as its main thread's"), Any),
    sys(n::SYS_process_vm_readv, pidfd::process_vm_readv, Partial(PTRACE_ACCESS), Own),
    sys(n::SYS_process_vm_writev, pidfd::process_vm_writev, Partial(PTRACE_ACCESS), Own),
    sys(n::SYS_sethostname, admin::sethostname, Full, Any),
    sys(n::SYS_setdomainname, admin::setdomainname, Full, Any),
    // Namespaces and mounts inside the sandbox (mount.rs, mount_fs.rs, crate::namespaces).
    sys(n::SYS_chroot, mount::chroot, Full, Any),
    sys(n::SYS_unshare, mount::unshare, Partial(NAMESPACES), Any),
    sys(n::SYS_setns, mount::setns, Partial(SETNS), Any),
    sys(n::SYS_mount, mount::mount, Partial(MOUNT), Any),
    sys(n::SYS_umount2, mount::umount2, Partial("MNT_FORCE has nothing to abort; unmounting the root is EBUSY (Linux remounts it read-only)"), Any),
    sys(n::SYS_pivot_root, mount::pivot_root, Full, Any),
    sys(n::SYS_settimeofday, admin::settimeofday, Partial("the clock is the host's: EPERM for every caller (after Linux's argument checks), CAP_SYS_TIME or not"), Any),
    sys(n::SYS_clock_settime, admin::clock_settime, Partial("the clock is the host's: EPERM for every caller (after Linux's argument checks), CAP_SYS_TIME or not"), Any),
    sys(n::SYS_adjtimex, admin::adjtimex, Partial("reads give the host clock's state as it was when the sandbox started (the sentry may not call adjtimex once its seccomp filter is on), with the current time; any change is EPERM, CAP_SYS_TIME or not"), Any),
    sys(n::SYS_clock_adjtime, admin::clock_adjtime, Partial("CLOCK_REALTIME as adjtimex; other clocks EOPNOTSUPP (dynamic POSIX clocks are EINVAL)"), Any),
    sys(n::SYS_fadvise64, admin::fadvise64, Partial("the advice is checked and has no effect (nothing is cached apart from the host's page cache)"), Any),
    sys(n::SYS_readahead, admin::readahead, Partial("checks the file and reads nothing ahead"), Any),
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
    sys(n::SYS_setuid, process::setuid, Partial("ids are per thread (POSIX wants them per process)"), Any),
    sys(n::SYS_setgid, process::setgid, Partial("ids are per thread (POSIX wants them per process)"), Any),
    sys(n::SYS_setreuid, process::setreuid, Partial("ids are per thread (POSIX wants them per process)"), Any),
    sys(n::SYS_setregid, process::setregid, Partial("ids are per thread (POSIX wants them per process)"), Any),
    sys(n::SYS_setresuid, process::setresuid, Partial("ids are per thread (POSIX wants them per process)"), Any),
    sys(n::SYS_setresgid, process::setresgid, Partial("ids are per thread (POSIX wants them per process)"), Any),
    sys(n::SYS_setfsuid, process::setfsuid, Partial("file-system ids always follow the effective ids"), Any),
    sys(n::SYS_setfsgid, process::setfsgid, Partial("file-system ids always follow the effective ids"), Any),
    sys(n::SYS_setgroups, process::setgroups, Full, Any),
    sys(n::SYS_capget, process::capget, Full, Any),
    sys(n::SYS_capset, process::capset, Full, Any),
    sys(n::SYS_prctl, process::prctl, Partial("NAME, PDEATHSIG and CHILD_SUBREAPER (per process, not per thread), NO_NEW_PRIVS, DUMPABLE, KEEPCAPS, CAPBSET_READ/DROP, CAP_AMBIENT, GET/SET_SECUREBITS, GET/SET_SECCOMP, GET_TIMERSLACK"), Any),
    sys(n::SYS_seccomp, seccomp::seccomp, Partial(SECCOMP), Any),
    sys(n::SYS_getrandom, process::getrandom, Full, Any),
    sys(n::SYS_prlimit64, process::prlimit64, Partial(RLIMITS), Any),
    sys(n::SYS_getrlimit, process::getrlimit, Partial(RLIMITS), Any),
    sys(n::SYS_setrlimit, process::setrlimit, Partial(RLIMITS), Any),
    sys(n::SYS_sched_setaffinity, sched::sched_setaffinity, Partial("the mask is checked, recorded per thread (inherited by clone and fork, kept by execve) and reported; the sandbox's host threads are not pinned to it"), Any),
    sys(n::SYS_sched_getaffinity, sched::sched_getaffinity, Partial("the thread's mask within the sentry's host CPU set"), Any),
    sys(n::SYS_sched_yield, process::sched_yield, Full, Own),
    // Priorities and policies (sched.rs): recorded and checked, the host's scheduling is untouched.
    sys(n::SYS_getpriority, sched::getpriority, Partial(SCHED_KEPT), Any),
    sys(n::SYS_setpriority, sched::setpriority, Partial(SCHED_KEPT), Any),
    sys(n::SYS_sched_setscheduler, sched::sched_setscheduler, Partial(SCHED_POLICY), Any),
    sys(n::SYS_sched_getscheduler, sched::sched_getscheduler, Partial(SCHED_KEPT), Any),
    sys(n::SYS_sched_setparam, sched::sched_setparam, Partial(SCHED_POLICY), Any),
    sys(n::SYS_sched_getparam, sched::sched_getparam, Partial(SCHED_KEPT), Any),
    sys(n::SYS_sched_setattr, sched::sched_setattr, Partial(SCHED_POLICY), Any),
    sys(n::SYS_sched_getattr, sched::sched_getattr, Partial("as sched_getscheduler; no utilization clamps (reports 0..1024)"), Any),
    sys(n::SYS_ioprio_set, ioprio::ioprio_set, Partial(IOPRIO), Any),
    sys(n::SYS_ioprio_get, ioprio::ioprio_get, Partial(IOPRIO), Any),
    sys(n::SYS_sched_get_priority_max, sched::sched_get_priority_max, Full, Any),
    sys(n::SYS_sched_get_priority_min, sched::sched_get_priority_min, Full, Any),
    sys(n::SYS_sched_rr_get_interval, sched::sched_rr_get_interval, Partial("SCHED_RR: 100 ms; the fair policies report the host's slice for the serving thread"), Any),
    // Usage and system information (resource.rs).
    sys(n::SYS_sysinfo, resource::sysinfo, Partial("uptime counts from the sandbox's start; loads are 0; totalram is the sandbox's memory, freeram what it never handed out or got back; no swap"), Any),
    sys(n::SYS_times, resource::times, Partial(USAGE_CPU), Any),
    sys(n::SYS_getrusage, resource::getrusage, Partial("CPU time and ru_maxrss (the largest resident set seen at getrusage, execve and exit); the other counters are 0; all CPU time is user time (see times)"), Any),
    // Execution domain and kernel log (persona.rs).
    sys(n::SYS_personality, persona::personality, Partial("recorded, inherited by fork, READ_IMPLIES_EXEC cleared by execve; the flags change nothing (ADDR_NO_RANDOMIZE: the sentry's layout is not randomized anyway; no UNAME26 or 32-bit domains)"), Any),
    sys(n::SYS_syslog, persona::syslog, Partial("every action is EPERM, as under kernel.dmesg_restrict=1 without CAP_SYSLOG, also for root: the sandbox has no kernel log"), Any),
    sys(n::SYS_getcpu, process::getcpu, Full, Own),
    sys(n::SYS_umask, process::umask, Full, Any),
    sys(n::SYS_rt_sigaction, signal::rt_sigaction, Full, Any),
    sys(n::SYS_rt_sigprocmask, signal::rt_sigprocmask, Full, Own),
    sys(n::SYS_clock_gettime, time::clock_gettime, Partial("CPU-time clocks count the host CPU time of the task threads (guest code and the calls served on them, not those the ring poller serves)"), Any),
    sys(n::SYS_clock_getres, time::clock_getres, Full, Any),
    sys(n::SYS_gettimeofday, time::gettimeofday, Full, Any),
    sys(n::SYS_time, time::time, Full, Any),
    sys(n::SYS_alarm, timer::alarm, Full, Any),
    sys(n::SYS_getitimer, timer::getitimer, Partial(CPU_TIMERS), Any),
    sys(n::SYS_setitimer, timer::setitimer, Partial(CPU_TIMERS), Any),
    sys(n::SYS_timer_create, timer::timer_create, Partial("CPU-time clocks of the caller only (no clock ids of other processes or threads), CLOCK_TAI refused (EINVAL), alarm clocks refused (EOPNOTSUPP, as without an RTC); at most 4096 timers per process"), Any),
    sys(n::SYS_timer_settime, timer::timer_settime, Partial(CPU_TIMERS), Any),
    sys(n::SYS_timer_gettime, timer::timer_gettime, Full, Any),
    sys(n::SYS_timer_getoverrun, timer::timer_getoverrun, Full, Any),
    sys(n::SYS_timer_delete, timer::timer_delete, Full, Any),
    sys(n::SYS_timerfd_create, timerfd::timerfd_create, Partial("the alarm clocks don't wake a suspended host"), Any),
    sys(n::SYS_timerfd_settime, timerfd::timerfd_settime, Full, Any),
    sys(n::SYS_timerfd_gettime, timerfd::timerfd_gettime, Full, Any),
    sys(n::SYS_nanosleep, time::nanosleep, Full, Own),
    sys(n::SYS_clock_nanosleep, time::clock_nanosleep, Partial("an absolute sleep doesn't follow CLOCK_REALTIME changes made while it sleeps"), Own),
    // Readiness, events and pipes (poll.rs). The waits block: the task's own thread.
    sys(n::SYS_poll, poll::poll, Partial(RESTART_FULL_TIMEOUT), Own),
    sys(n::SYS_ppoll, poll::ppoll, Full, Own),
    sys(n::SYS_select, poll::select, Full, Own),
    sys(n::SYS_pselect6, poll::pselect6, Full, Own),
    sys(n::SYS_epoll_create, poll::epoll_create, Full, Any),
    sys(n::SYS_epoll_create1, poll::epoll_create1, Full, Any),
    sys(n::SYS_epoll_ctl, poll::epoll_ctl, Partial("EPOLLEXCLUSIVE accepted, wakes every waiter; EPOLLWAKEUP dropped (no CAP_BLOCK_SUSPEND)"), Any),
    sys(n::SYS_epoll_wait, poll::epoll_wait, Partial(RESTART_FULL_TIMEOUT), Own),
    sys(n::SYS_epoll_pwait, poll::epoll_pwait, Partial(RESTART_FULL_TIMEOUT), Own),
    sys(n::SYS_epoll_pwait2, poll::epoll_pwait2, Partial(RESTART_FULL_TIMEOUT), Own),
    sys(n::SYS_eventfd, poll::eventfd, Full, Any),
    sys(n::SYS_eventfd2, poll::eventfd2, Full, Any),
    // inotify (inotify.rs; events from the VFS hooks in fd.rs, namei.rs, attr.rs, fs::vfs::file).
    sys(n::SYS_inotify_init, inotify::inotify_init, Full, Any),
    sys(n::SYS_inotify_init1, inotify::inotify_init1, Full, Any),
    sys(n::SYS_inotify_add_watch, inotify::inotify_add_watch, Partial(INOTIFY_PARTIAL), Any),
    sys(n::SYS_inotify_rm_watch, inotify::inotify_rm_watch, Full, Any),
    sys(n::SYS_splice, poll::splice, Partial(PIPE_SLOTS), Own),
    sys(n::SYS_tee, poll::tee, Partial(PIPE_SLOTS), Own),
    sys(n::SYS_vmsplice, poll::vmsplice, Partial("the pages are copied into the pipe, not referenced; SIGPIPE as for splice"), Own),
    // Locks and copies (locks.rs, copy.rs). flock and fcntl wait for a lock on the task's
    // thread only in their blocking forms: see `locks::may_wait`.
    sys(n::SYS_flock, locks::flock, Full, Any),
    sys(n::SYS_sendfile, copy::sendfile, Partial("a socket as in_fd gives EINVAL (Linux reads from it)"), Own),
    sys(n::SYS_copy_file_range, copy::copy_file_range, Full, Any),
    sys(n::SYS_memfd_create, copy::memfd_create, Partial("no MFD_HUGETLB (EINVAL)"), Any),
    // Sockets: AF_UNIX (socket.rs), network families (inet.rs, sockopt.rs, ifioctl.rs).
    // Calls that may wait for a peer run on the task's thread.
    sys(n::SYS_socket, socket::socket, Partial(UNIX_ONLY), Any),
    sys(n::SYS_socketpair, socket::socketpair, Partial(PAIR), Any),
    sys(n::SYS_bind, socket::bind, Full, Any),
    sys(n::SYS_listen, socket::listen, Full, Any),
    sys(n::SYS_accept, socket::accept, Full, Own),
    sys(n::SYS_accept4, socket::accept4, Full, Own),
    sys(n::SYS_connect, socket::connect, Full, Own),
    sys(n::SYS_getsockname, socket::getsockname, Full, Any),
    sys(n::SYS_getpeername, socket::getpeername, Full, Any),
    sys(n::SYS_sendto, socket::sendto, Partial(SOCK_SEND), Own),
    sys(n::SYS_sendmsg, socket::sendmsg, Partial(SOCK_SEND), Own),
    sys(n::SYS_sendmmsg, socket::sendmmsg, Partial(SOCK_SEND), Own),
    sys(n::SYS_recvfrom, socket::recvfrom, Partial(SOCK_RECV), Own),
    sys(n::SYS_recvmsg, socket::recvmsg, Partial(SOCK_RECV), Own),
    sys(n::SYS_recvmmsg, socket::recvmmsg, Partial("MSG_OOB unsupported; an error after some datagrams is dropped, where Linux keeps it for SO_ERROR"), Own),
    sys(n::SYS_shutdown, socket::shutdown, Full, Any),
    sys(n::SYS_getsockopt, socket::getsockopt, Partial(SOCK_OPTS), Any),
    sys(n::SYS_setsockopt, socket::setsockopt, Partial(SOCK_OPTS), Any),
    // System V IPC (shm.rs, msg.rs, sem.rs over crate::ipc): one namespace per sandbox.
    sys(n::SYS_shmget, shm::shmget, Full, Any),
    sys(n::SYS_shmat, shm::shmat, Full, Any),
    sys(n::SYS_shmdt, shm::shmdt, Full, Any),
    sys(n::SYS_shmctl, shm::shmctl, Partial(SHM_CTL), Any),
    sys(n::SYS_msgget, msg::msgget, Full, Any),
    sys(n::SYS_msgsnd, msg::msgsnd, Partial(MSG_WAKE), Own),
    sys(n::SYS_msgrcv, msg::msgrcv, Partial(MSG_WAKE), Own),
    sys(n::SYS_msgctl, msg::msgctl, Full, Any),
    sys(n::SYS_semget, sem::semget, Full, Any),
    sys(n::SYS_semop, sem::semop, Partial(SEM_WAKE), Own),
    sys(n::SYS_semtimedop, sem::semtimedop, Partial(SEM_WAKE), Own),
    sys(n::SYS_semctl, sem::semctl, Full, Any),
    // POSIX message queues (mqueue.rs).
    sys(n::SYS_mq_open, mqueue::mq_open, Partial(MQ_OPEN), Any),
    sys(n::SYS_mq_unlink, mqueue::mq_unlink, Full, Any),
    sys(n::SYS_mq_timedsend, mqueue::mq_timedsend, Partial(MQ_WAKE), Own),
    sys(n::SYS_mq_timedreceive, mqueue::mq_timedreceive, Partial(MQ_WAKE), Own),
    sys(n::SYS_mq_notify, mqueue::mq_notify, Partial(MQ_NOTIFY), Any),
    sys(n::SYS_mq_getsetattr, mqueue::mq_getsetattr, Full, Any),
    // Linux AIO (aio.rs over crate::aio). io_submit may block on a stream, io_destroy waits
    // for requests in flight: the task's own thread.
    sys(n::SYS_io_setup, aio::io_setup, Partial(AIO_SETUP), Any),
    sys(n::SYS_io_destroy, aio::io_destroy, Full, Own),
    sys(n::SYS_io_submit, aio::io_submit, Partial(AIO_SUBMIT), Own),
    sys(n::SYS_io_cancel, aio::io_cancel, Full, Any),
    sys(n::SYS_io_getevents, aio::io_getevents, Full, Own),
    sys(SYS_IO_PGETEVENTS, aio::io_pgetevents, Full, Own),
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

/// Calls whose first argument is a descriptor and which block only if that file may.
fn blocks_only_on_streams(nr: u64) -> bool {
    [
        n::SYS_read,
        n::SYS_write,
        n::SYS_readv,
        n::SYS_writev,
        n::SYS_pread64,
        n::SYS_pwrite64,
        n::SYS_preadv,
        n::SYS_pwritev,
        n::SYS_preadv2,
        n::SYS_pwritev2,
        // Its input is never a stream; only writing to out_fd (the first argument) may block.
        n::SYS_sendfile,
    ]
    .contains(&(nr as i64))
}

/// Whether the call in `regs` may wait in the sentry for long (for another thread, a
/// descriptor, a timer, a signal): the task's thread then lets the platform give its vCPU
/// to others if they run short (`Context::may_block`). A call missing here that waits holds
/// a vCPU meanwhile; that is slower under pressure, never wrong, as long as something not
/// waiting for a vCPU ends the wait.
pub fn may_wait_long(task: &TaskState, regs: &UserRegs) -> bool {
    let nr = regs.rax as u32 as u64;
    if blocks_only_on_streams(nr) {
        return task.fds.get(regs.rdi).is_ok_and(|f| f.may_block());
    }
    if nr == n::SYS_futex as u64 {
        return !futex::never_blocks(regs.rsi);
    }
    if nr == n::SYS_clone as u64 {
        // The parent of a vfork waits for the child's exec or exit.
        return regs.rdi & libc::CLONE_VFORK as u64 != 0;
    }
    locks::may_wait(regs)
        || [
            n::SYS_vfork,
            n::SYS_clone3,
            n::SYS_open,
            n::SYS_openat,
            n::SYS_openat2,
            n::SYS_recvfrom,
            n::SYS_recvmsg,
            n::SYS_recvmmsg,
            n::SYS_sendto,
            n::SYS_sendmsg,
            n::SYS_sendmmsg,
            n::SYS_accept,
            n::SYS_accept4,
            n::SYS_connect,
            n::SYS_poll,
            n::SYS_ppoll,
            n::SYS_select,
            n::SYS_pselect6,
            n::SYS_epoll_wait,
            n::SYS_epoll_pwait,
            n::SYS_epoll_pwait2,
            n::SYS_futex_waitv,
            n::SYS_nanosleep,
            n::SYS_clock_nanosleep,
            n::SYS_wait4,
            n::SYS_waitid,
            n::SYS_pause,
            n::SYS_rt_sigsuspend,
            n::SYS_rt_sigtimedwait,
            n::SYS_splice,
            n::SYS_tee,
            n::SYS_vmsplice,
            n::SYS_ioctl,
            n::SYS_io_getevents,
            SYS_IO_PGETEVENTS,
            n::SYS_io_submit,
            n::SYS_io_destroy,
            n::SYS_msgrcv,
            n::SYS_msgsnd,
            n::SYS_semop,
            n::SYS_semtimedop,
            n::SYS_mq_timedreceive,
            n::SYS_mq_timedsend,
        ]
        .contains(&(nr as i64))
}

/// Whether the ring poller may serve the call in `regs` (unknown numbers too: they just
/// fail with ENOSYS). Reads and writes of files that never block (regular files) are served
/// there; streams go to the task's thread.
pub fn can_serve_on_poller(task: &TaskState, regs: &UserRegs) -> bool {
    let nr = regs.rax as u32 as u64;
    match lookup(nr) {
        None => true,
        Some(_) if locks::may_wait(regs) => false,
        Some(s) if s.thread == Thread::Any => true,
        Some(_) if nr == n::SYS_futex as u64 => futex::never_blocks(regs.rsi),
        Some(_) if nr == n::SYS_membarrier as u64 => membarrier::never_blocks(regs.syscall_args()),
        Some(_) if nr == n::SYS_clone as u64 || nr == n::SYS_clone3 as u64 => {
            clone::thread_on_poller(task, regs)
        }
        Some(_) if inet::poller_candidate(nr) && inet::host_at(task, regs.rdi).is_some() => {
            inet::host_at(task, regs.rdi)
                .is_some_and(|f| inet::completes_at_once(&f, nr, regs.syscall_args()))
        }
        Some(_) if nr == n::SYS_io_submit as u64 || nr == n::SYS_io_getevents as u64 => {
            aio::poller_candidate(task, nr, regs.syscall_args())
        }
        Some(_) if blocks_only_on_streams(nr) => match task.fds.get(regs.rdi) {
            Ok(file) => !file.may_block() || pipe_io_ready(&file, nr, regs.rdx),
            // A bad descriptor fails at once.
            Err(_) => true,
        },
        // Terminal requests may wait for output to drain or signal the caller's group, so
        // they stay on the task's own thread; the rest never wait.
        Some(_) if nr == n::SYS_ioctl as u64 => match task.fds.get(regs.rdi) {
            Ok(file) => file.special_desc().and_then(|d| d.terminal()).is_none(),
            Err(_) => true,
        },
        Some(_) => false,
    }
}

/// Calls that change only the caller's own signal state, which the ring poller may serve
/// where the trampoline can save the FPU state for a delivery they make due (see
/// `TaskSyscalls::serve_ring`): sigprocmask, and raise's tkill or tgkill of the caller.
/// Elsewhere they stay on the task's thread, which delivers at once.
pub fn own_signal_call(task: &TaskState, regs: &UserRegs) -> bool {
    regs.rax as u32 as i64 == n::SYS_rt_sigprocmask || sigsend::targets_caller(task, regs)
}

/// Whether a read or write of a sandbox pipe would complete without waiting, so that the
/// poller may serve it (a ring round trip instead of a kick and an exit: several times
/// cheaper). Should another thread drain or fill the pipe first, the poller still doesn't
/// wait (`dispatch_on_poller`). A write of more than PIPE_BUF bytes may wait part-way,
/// after writing some, so it stays on the task's own thread.
fn pipe_io_ready(file: &fs::vfs::OpenFile, nr: u64, count: u64) -> bool {
    use fs::waiter::{POLLERR, POLLHUP, POLLIN, POLLOUT};
    if file.special_desc().and_then(|d| d.as_pipe()).is_none() {
        return false;
    }
    match nr as i64 {
        n::SYS_read => file.readiness(POLLIN | POLLHUP) != 0,
        // Not a write to a pipe without readers: its EPIPE raises SIGPIPE, which the task's
        // own thread delivers, so it may as well serve the call.
        n::SYS_write => {
            let ready = file.readiness(POLLOUT | POLLERR);
            count <= fs::pipe::PIPE_BUF as u64 && ready & POLLOUT != 0 && ready & POLLERR == 0
        }
        _ => false,
    }
}

/// `dispatch` on the ring poller, which serves every task and must never sleep: a call that
/// would sleep after all ([`fs::waiter::WOULD_SLEEP`]) is declined with the registers as
/// they were, for the task's own thread to serve from the start. Returns whether it was
/// served.
pub fn dispatch_on_poller(task: &mut TaskState, regs: &mut UserRegs) -> bool {
    let saved = *regs;
    let was = fs::waiter::set_no_sleep(true);
    dispatch(task, regs, false);
    fs::waiter::set_no_sleep(was);
    if regs.rax == (-(fs::waiter::WOULD_SLEEP as i64)) as u64 {
        *regs = saved;
        return false;
    }
    true
}

/// Name of a system call number, for logs.
pub fn name(nr: u64) -> &'static str {
    match NAMES.get(nr as usize) {
        Some(n) if !n.is_empty() => n,
        _ => "unknown",
    }
}

/// Serves the system call in `regs`, leaving the result in `rax`. `own_thread`: on the
/// task's own thread, where the call may sleep (not on the ring poller).
pub fn dispatch(task: &mut TaskState, regs: &mut UserRegs, own_thread: bool) {
    crate::procfs::set_current_pid(task.pid);
    // seccomp: one relaxed load and a branch for a thread without it.
    if task.seccomp.active() && !seccomp::check(task, regs, own_thread) {
        return;
    }
    // Linux reads the number as a 32-bit int: the upper half of RAX is ignored.
    let nr = regs.rax as u32 as u64;
    let args = regs.syscall_args();
    let result = match lookup(nr) {
        Some(s) if own_thread => {
            // Sleeps in the call can be interrupted (see poll::ServingTask), also in calls
            // that sleep only in some forms (flock, F_SETLKW).
            let _serving = poll::ServingTask::enter(task);
            (s.handler)(task, regs, args)
        }
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
    if let Err(Errno(e)) = result {
        if fs::waiter::is_restart(e) {
            // A signal interrupted the call: delivery decides between restart and EINTR.
            task.signals.interrupted_call = Some(nr);
        }
    }
    regs.rax = match result {
        Ok(v) => v,
        Err(Errno(e)) => (-(e as i64)) as u64,
    };
}

/// Calls left out on purpose (ENOSYS, as a kernel built without them answers), with why and
/// what programs do instead: shown in docs/syscalls.md's notes.
const ABSENT: &[(i64, &str)] = &[
    (
        n::SYS_io_uring_setup,
        IO_URING,
    ),
    (
        n::SYS_io_uring_enter,
        IO_URING,
    ),
    (
        n::SYS_io_uring_register,
        IO_URING,
    ),
    (
        n::SYS_rseq,
        "on purpose: restartable sequences need the kernel to abort a thread's critical section whenever it leaves its CPU or takes a signal, and to report CPU ids below the CPU count, which the sandbox can't promise while its threads outnumber its CPUs; glibc (2.35+) registers rseq at thread start and, given ENOSYS, falls back to getcpu for sched_getcpu; tcmalloc and others fall back to locks",
    ),
];

/// Why io_uring is absent.
const IO_URING: &str = "on purpose: io_uring is a second system call interface (its rings carry reads, writes, accepts, opens and more, outside the syscall path the sentry filters and serves), so the sandbox leaves it out as gVisor does by default; programs fall back on ENOSYS: libuv and RocksDB probe for io_uring and use threads or epoll instead, and fio users pick another engine (fio --ioengine=libaio runs: Linux AIO is implemented)";

/// The note for a call that is not in the table, if it is absent on purpose.
fn absent_note(nr: u64) -> &'static str {
    ABSENT
        .iter()
        .find(|&&(n, _)| n as u64 == nr)
        .map_or("", |&(_, why)| why)
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
            None => ("ENOSYS", absent_note(nr as u64)),
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
        for &(nr, _) in ABSENT {
            assert!(
                lookup(nr as u64).is_none(),
                "{} is absent and served",
                name(nr as u64)
            );
        }
    }
}
