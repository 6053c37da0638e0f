//! The sentry's own seccomp filter: the host system calls it may make once the sandbox runs.
//!
//! The sentry is the only thing between untrusted code and the host; a bug in it must not
//! reach calls it never needs (execve, ptrace, mount, bpf, keyctl, perf_event_open...). Once
//! the sandbox is built and before the first guest instruction, [`install`] loads a filter
//! (built with `seccompiler`, behind a binary search for the calls allowed whatever their
//! arguments: see [`build`]) into every thread of the process (TSYNC); threads started
//! later inherit it. A call outside the list raises SIGSYS, whose handler writes one line
//! naming the call to stderr and ends the process (status 159, as a SIGSYS death), so a
//! missing entry shows at once and by name. `Mode::Log` lets every call through and has the
//! kernel log the ones outside the list (`--seccomp=log`), to find what is missing.
//!
//! The list is one entry per call with the reason ([`ALLOWED`]), and the calls allowed only
//! with some arguments ([`narrowed`]): ioctl only with the requests the crates list next to
//! the code that makes them (KVM's, terminals', sockets'), socket only with the families
//! the sentry serves, mmap and mprotect never executable, prctl only for thread names.

use std::collections::BTreeMap;

use seccompiler::{BpfProgram, SeccompAction, SeccompFilter, SeccompRule, TargetArch};

/// What the filter does with a call outside the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// SIGSYS: the sentry names the call and ends.
    Enforce,
    /// Allowed, and logged by the kernel (dmesg / audit).
    Log,
    /// No filter.
    Off,
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "enforce" => Ok(Mode::Enforce),
            "log" => Ok(Mode::Log),
            "off" => Ok(Mode::Off),
            _ => Err(format!("unknown seccomp mode {s:?} (enforce, log or off)")),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SeccompError {
    #[error("building the sentry's seccomp filter: {0}")]
    Build(String),
    #[error("installing the sentry's seccomp filter: {0}")]
    Install(String),
}

/// The host system calls the running sentry makes, and why.
pub const ALLOWED: &[(i64, &str)] = &[
    // Memory: the memory file, guest memory, image mappings, thread stacks.
    (libc::SYS_munmap, "unmap them"),
    (libc::SYS_mremap, "allocator growth"),
    (
        libc::SYS_madvise,
        "free memory-file pages, back fault windows, allocator",
    ),
    (libc::SYS_brk, "allocator"),
    (libc::SYS_msync, "MAP_SHARED write-back to hostfs files"),
    (
        libc::SYS_memfd_create,
        "the memory file, memfd-backed files",
    ),
    (
        libc::SYS_fallocate,
        "punch holes in the memory file, fallocate on hostfs",
    ),
    (
        libc::SYS_ftruncate,
        "size the memory file, truncate hostfs files",
    ),
    // Threads and synchronisation.
    (
        libc::SYS_clone3,
        "none: its flags are in memory, where a filter can't look, so the second filter \
         answers ENOSYS and glibc falls back to clone, which is narrowed to threads",
    ),
    (
        libc::SYS_futex,
        "locks, condition variables, thread parking",
    ),
    (libc::SYS_set_robust_list, "new threads (libc)"),
    (libc::SYS_rseq, "new threads (glibc)"),
    (libc::SYS_exit, "a task thread ends"),
    (libc::SYS_exit_group, "the sandbox ends"),
    (libc::SYS_sched_yield, "spin loops back off"),
    (
        libc::SYS_sched_getaffinity,
        "sched_getaffinity for the guest, CPU counts",
    ),
    (libc::SYS_getcpu, "getcpu for the guest"),
    (libc::SYS_set_tid_address, "new threads (libc)"),
    // Signals: vCPU kicks, host signals forwarded to the sandbox.
    (libc::SYS_rt_sigaction, "the kick and SIGSYS handlers"),
    (libc::SYS_rt_sigprocmask, "thread signal masks"),
    (libc::SYS_rt_sigreturn, "return from a host signal handler"),
    (libc::SYS_sigaltstack, "std's stack overflow handler"),
    (libc::SYS_tgkill, "kick a vCPU thread out of KVM_RUN"),
    (
        libc::SYS_kill,
        "forward signals to host children (none yet), self",
    ),
    (libc::SYS_rt_sigtimedwait, "the signal-forwarding thread"),
    (libc::SYS_restart_syscall, "restarted host calls"),
    // Time.
    (libc::SYS_clock_gettime, "clocks"),
    (libc::SYS_clock_getres, "clock_getres for the guest"),
    (libc::SYS_clock_nanosleep, "sleeps"),
    (libc::SYS_nanosleep, "sleeps"),
    (libc::SYS_gettimeofday, "time"),
    (libc::SYS_timerfd_create, "interval timers"),
    (libc::SYS_timerfd_settime, "interval timers"),
    (libc::SYS_timerfd_gettime, "interval timers"),
    // Descriptors the sentry holds (hostfs directories, images, sockets, streams).
    (libc::SYS_read, "read host files and streams"),
    (libc::SYS_write, "write host files, streams, logs"),
    (libc::SYS_readv, "vectored I/O on host files"),
    (libc::SYS_writev, "vectored I/O on host files"),
    (libc::SYS_pread64, "hostfs reads"),
    (libc::SYS_pwrite64, "hostfs writes"),
    (libc::SYS_preadv, "hostfs reads"),
    (libc::SYS_pwritev, "hostfs writes"),
    (libc::SYS_preadv2, "hostfs reads"),
    (libc::SYS_pwritev2, "hostfs writes"),
    (libc::SYS_lseek, "hostfs offsets, SEEK_DATA/HOLE"),
    (libc::SYS_sendfile, "copy between host files"),
    (libc::SYS_copy_file_range, "copy between host files"),
    (libc::SYS_splice, "copy between host descriptors"),
    (libc::SYS_close, "close descriptors"),
    (libc::SYS_close_range, "close descriptors"),
    (libc::SYS_dup, "duplicate descriptors"),
    (libc::SYS_dup2, "duplicate descriptors"),
    (libc::SYS_dup3, "duplicate descriptors"),
    (libc::SYS_fcntl, "flags, locks, pipe sizes"),
    (libc::SYS_flock, "hostfs locks"),
    (libc::SYS_fsync, "hostfs fsync"),
    (libc::SYS_fdatasync, "hostfs fdatasync"),
    (libc::SYS_sync_file_range, "hostfs sync_file_range"),
    (libc::SYS_pipe2, "internal wake-ups"),
    (libc::SYS_eventfd2, "waiter wake-ups"),
    (libc::SYS_poll, "wait on host descriptors"),
    (libc::SYS_ppoll, "wait on host descriptors"),
    (libc::SYS_epoll_create1, "the host notifier"),
    (libc::SYS_epoll_ctl, "the host notifier"),
    (libc::SYS_epoll_wait, "the host notifier"),
    (libc::SYS_epoll_pwait, "the host notifier"),
    // hostfs: every path is relative to a directory descriptor taken before the start
    // (openat2 with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), one checked name at a time.
    (
        libc::SYS_openat,
        "hostfs lookups relative to held directories",
    ),
    (
        libc::SYS_openat2,
        "hostfs lookups, beneath held directories",
    ),
    (libc::SYS_open, "/proc/self files of the sentry (libc)"),
    (libc::SYS_newfstatat, "hostfs stat"),
    (libc::SYS_fstat, "stat of held descriptors"),
    (libc::SYS_statx, "hostfs stat"),
    (libc::SYS_statfs, "statfs of held paths"),
    (libc::SYS_fstatfs, "hostfs statfs"),
    (libc::SYS_getdents64, "hostfs directories"),
    (libc::SYS_readlinkat, "hostfs symlinks"),
    (libc::SYS_faccessat, "hostfs access"),
    (libc::SYS_faccessat2, "hostfs access"),
    (libc::SYS_access, "libc probes"),
    (libc::SYS_mkdirat, "hostfs writes"),
    (libc::SYS_mknodat, "hostfs writes (FIFOs, sockets)"),
    (libc::SYS_unlinkat, "hostfs writes"),
    (libc::SYS_renameat, "hostfs writes"),
    (libc::SYS_renameat2, "hostfs writes"),
    (libc::SYS_linkat, "hostfs writes"),
    (libc::SYS_symlinkat, "hostfs writes"),
    (libc::SYS_fchmod, "hostfs writes"),
    (libc::SYS_fchmodat, "hostfs writes"),
    (
        libc::SYS_chmod,
        "hostfs chmod of an O_PATH descriptor through /proc/self/fd",
    ),
    (libc::SYS_fchown, "hostfs writes"),
    (libc::SYS_fchownat, "hostfs writes"),
    (libc::SYS_utimensat, "hostfs writes"),
    (libc::SYS_fgetxattr, "hostfs xattrs"),
    (libc::SYS_fsetxattr, "hostfs xattrs"),
    (libc::SYS_flistxattr, "hostfs xattrs"),
    (libc::SYS_fremovexattr, "hostfs xattrs"),
    (libc::SYS_getxattr, "hostfs xattrs (by /proc/self/fd path)"),
    (libc::SYS_lgetxattr, "hostfs xattrs"),
    (libc::SYS_setxattr, "hostfs xattrs (by /proc/self/fd path)"),
    (libc::SYS_lsetxattr, "hostfs xattrs"),
    (libc::SYS_listxattr, "hostfs xattrs (by /proc/self/fd path)"),
    (libc::SYS_llistxattr, "hostfs xattrs"),
    (
        libc::SYS_removexattr,
        "hostfs xattrs (by /proc/self/fd path)",
    ),
    (libc::SYS_lremovexattr, "hostfs xattrs"),
    (libc::SYS_getcwd, "libc"),
    // Sockets: hostinet (the sandbox's network namespace), the OCI control socket, the
    // console socket, AF_UNIX sockets bound on hostfs.
    (libc::SYS_bind, "hostinet, host AF_UNIX"),
    (libc::SYS_listen, "hostinet, control socket"),
    (libc::SYS_accept, "hostinet, control socket"),
    (libc::SYS_accept4, "hostinet, control socket"),
    (libc::SYS_connect, "hostinet, host AF_UNIX"),
    (libc::SYS_getsockname, "hostinet"),
    (libc::SYS_getpeername, "hostinet"),
    (libc::SYS_shutdown, "hostinet"),
    (libc::SYS_sendto, "hostinet"),
    (libc::SYS_recvfrom, "hostinet"),
    (libc::SYS_sendmsg, "hostinet, descriptor passing"),
    (libc::SYS_recvmsg, "hostinet, descriptor passing"),
    (libc::SYS_sendmmsg, "hostinet"),
    (libc::SYS_recvmmsg, "hostinet"),
    (libc::SYS_setsockopt, "hostinet (allowlisted options)"),
    (libc::SYS_getsockopt, "hostinet (allowlisted options)"),
    // Identity and limits, read only.
    (libc::SYS_getpid, "logs, kicks"),
    (libc::SYS_gettid, "kicks"),
    (libc::SYS_getppid, "parent checks"),
    (libc::SYS_getuid, "credentials"),
    (libc::SYS_geteuid, "credentials"),
    (libc::SYS_getgid, "credentials"),
    (libc::SYS_getegid, "credentials"),
    (libc::SYS_getgroups, "credentials"),
    (
        libc::SYS_getrandom,
        "random numbers for the guest and hash maps",
    ),
    (libc::SYS_uname, "uname for the guest"),
    (libc::SYS_sysinfo, "sysinfo for the guest"),
    (libc::SYS_getrusage, "CPU time of sentry threads"),
    (libc::SYS_prlimit64, "limits"),
    (libc::SYS_getrlimit, "limits"),
    (
        libc::SYS_sched_rr_get_interval,
        "sched_rr_get_interval for the guest",
    ),
    (libc::SYS_arch_prctl, "new threads (libc)"),
    (
        libc::SYS_wait4,
        "reap host children (hooks run before the start)",
    ),
];

/// What a narrowed call may be asked.
#[derive(Debug, Clone)]
pub enum Args {
    /// Argument `index` (as a 32-bit value) is one of these.
    OneOf(u8, Vec<u64>),
    /// Argument `index` has none of the bits of `mask`.
    Without(u8, u64),
}

/// The calls allowed only with some arguments, each with the reason.
pub fn narrowed() -> Vec<(i64, &'static str, Args)> {
    let mut ioctls: Vec<u64> = platform::kvm::host_ioctls::KVM_IOCTLS
        .iter()
        .map(|&(r, _)| r)
        .collect();
    ioctls.extend(fs::host::HOST_FILE_IOCTLS);
    ioctls.extend(sentry::syscalls::host_socket_ioctls());
    ioctls.sort_unstable();
    ioctls.dedup();
    let prot_exec = libc::PROT_EXEC as u64;
    vec![
        (
            libc::SYS_ioctl,
            "the platform's KVM requests (platform::kvm::host_ioctls), terminal requests on \
             host streams (fs::host) and socket requests on hostinet sockets",
            Args::OneOf(1, ioctls),
        ),
        (
            libc::SYS_socket,
            "hostinet (inet, inet6), netlink route dumps, host AF_UNIX (control socket, \
             sockets bound on hostfs)",
            Args::OneOf(
                0,
                [
                    libc::AF_UNIX,
                    libc::AF_INET,
                    libc::AF_INET6,
                    libc::AF_NETLINK,
                ]
                .map(|f| f as u64)
                .to_vec(),
            ),
        ),
        (
            libc::SYS_socketpair,
            "internal channels (AF_UNIX only)",
            Args::OneOf(0, vec![libc::AF_UNIX as u64]),
        ),
        (
            libc::SYS_mmap,
            "the memory file, images, thread stacks; never executable on the host (the \
             guest's code runs in the VM)",
            Args::Without(2, prot_exec),
        ),
        (
            libc::SYS_mprotect,
            "thread stack guards (std), allocator; never executable",
            Args::Without(2, prot_exec),
        ),
        (
            libc::SYS_clone,
            "threads only, with the flags of glibc's pthread_create: the running sentry never \
             starts a process",
            Args::OneOf(0, vec![PTHREAD_CLONE_FLAGS]),
        ),
        (
            libc::SYS_membarrier,
            "the guest's membarrier (sentry::membarrier): only the barriers; QUERY and the \
             registrations are made before the filter",
            Args::OneOf(0, sentry::membarrier::HOST_COMMANDS.map(u64::from).to_vec()),
        ),
        (
            libc::SYS_prctl,
            "thread names only",
            Args::OneOf(0, vec![libc::PR_SET_NAME as u64, libc::PR_GET_NAME as u64]),
        ),
    ]
}

fn rules(args: &Args) -> Result<Vec<SeccompRule>, seccompiler::BackendError> {
    use seccompiler::{SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition as Cond};
    match args {
        Args::OneOf(index, values) => values
            .iter()
            .map(|&v| SeccompRule::new(vec![Cond::new(*index, Len::Dword, Op::Eq, v)?]))
            .collect(),
        Args::Without(index, mask) => Ok(vec![SeccompRule::new(vec![Cond::new(
            *index,
            Len::Qword,
            Op::MaskedEq(*mask),
            0,
        )?])?]),
    }
}

/// The clone flags of glibc's pthread_create (nptl's create_thread).
const PTHREAD_CLONE_FLAGS: u64 = (libc::CLONE_VM
    | libc::CLONE_FS
    | libc::CLONE_FILES
    | libc::CLONE_SYSVSEM
    | libc::CLONE_SIGHAND
    | libc::CLONE_THREAD
    | libc::CLONE_SETTLS
    | libc::CLONE_PARENT_SETTID
    | libc::CLONE_CHILD_CLEARTID) as u64;

/// The calls the sentry may make but gets an error for: clone3 (ENOSYS, so that glibc
/// creates threads with clone, whose flags the main filter can check). A second filter,
/// because a seccompiler filter has one action for its matches; the kernel takes the
/// strictest answer of the two (ERRNO over ALLOW).
fn refusals() -> Result<BpfProgram, SeccompError> {
    let build_err = |e: seccompiler::BackendError| SeccompError::Build(e.to_string());
    let rules = BTreeMap::from([(libc::SYS_clone3, Vec::new())]);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        TargetArch::x86_64,
    )
    .map_err(|e| SeccompError::Build(e.to_string()))?;
    filter.try_into().map_err(build_err)
}

/// Builds the filter for `mode` (None for `Mode::Off`).
///
/// The calls allowed whatever their arguments are found by a binary search over their
/// numbers ([`with_allowed_prefix`]); seccompiler's program, which tests every listed call
/// in turn, serves the narrowed calls and everything else. The verdicts are the same as
/// seccompiler's program for the whole list (unit test
/// `the_search_gives_the_same_verdicts_as_the_plain_list`), but the kernel runs the filter
/// over every call number when it is installed (seccomp_cache_prepare, under a spinlock),
/// and over the plain list of ~150 calls that took ~0.3 ms of each start; every host call
/// the sentry makes runs it too.
pub fn build(mode: Mode) -> Result<Option<BpfProgram>, SeccompError> {
    let Some(mismatch) = mismatch_action(mode) else {
        return Ok(None);
    };
    let build_err = |e: seccompiler::BackendError| SeccompError::Build(e.to_string());
    let narrowed = narrowed();
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for (nr, _, args) in &narrowed {
        rules.insert(*nr, self::rules(args).map_err(build_err)?);
    }
    // A call both listed and narrowed is narrowed (as in the plain list, where the narrowed
    // entry replaces the other).
    let plain: Vec<u32> = ALLOWED
        .iter()
        .map(|&(nr, _)| nr)
        .filter(|nr| !rules.contains_key(nr))
        .map(|nr| u32::try_from(nr).map_err(|_| SeccompError::Build(format!("call {nr}"))))
        .collect::<Result<_, _>>()?;
    let filter = SeccompFilter::new(rules, mismatch, SeccompAction::Allow, TargetArch::x86_64)
        .map_err(|e| SeccompError::Build(e.to_string()))?;
    let rest: BpfProgram = filter.try_into().map_err(build_err)?;
    with_allowed_prefix(plain, rest).map(Some)
}

fn mismatch_action(mode: Mode) -> Option<SeccompAction> {
    match mode {
        Mode::Enforce => Some(SeccompAction::Trap),
        Mode::Log => Some(SeccompAction::Log),
        Mode::Off => None,
    }
}

/// The audit architecture of x86-64 (linux/audit.h).
const AUDIT_ARCH_X86_64: u32 = 62 | 0x8000_0000 | 0x4000_0000;
/// Classic BPF opcodes (linux/bpf_common.h, linux/filter.h): BPF_LD | BPF_W | BPF_ABS
/// (0x00 | 0x00 | 0x20), BPF_JMP | BPF_JA, BPF_JMP | BPF_JEQ | BPF_K, BPF_JMP | BPF_JGE |
/// BPF_K, BPF_RET | BPF_K.
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JMP_JA: u16 = 0x05;
const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JMP_JGE_K: u16 = 0x05 | 0x30;
const BPF_RET_K: u16 = 0x06;
/// Offsets in struct seccomp_data.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
/// Calls tested one after the other at a leaf of the search.
const LEAF: usize = 3;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> seccompiler::sock_filter {
    seccompiler::sock_filter { code, jt, jf, k }
}

/// `rest` preceded by a binary search over `allowed` (x86-64 call numbers) that allows them
/// at once; any other call, and any call of another architecture, goes on to `rest` at its
/// first instruction (which checks the architecture itself).
fn with_allowed_prefix(
    mut allowed: Vec<u32>,
    rest: BpfProgram,
) -> Result<BpfProgram, SeccompError> {
    allowed.sort_unstable();
    allowed.dedup();
    // Jumps to `rest` are JA with a placeholder, fixed once the prefix's length is known.
    const TO_REST: u32 = u32::MAX;
    let mut prog = vec![
        insn(BPF_LD_W_ABS, 0, 0, DATA_ARCH),
        insn(BPF_JMP_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        insn(BPF_JMP_JA, 0, 0, TO_REST),
        insn(BPF_LD_W_ABS, 0, 0, DATA_NR),
    ];
    prog.extend(search(&allowed, TO_REST)?);
    let start = prog.len();
    for (pc, i) in prog.iter_mut().enumerate() {
        if i.code == BPF_JMP_JA && i.k == TO_REST {
            i.k = (start - pc - 1) as u32;
        }
    }
    prog.extend(rest);
    if prog.len() >= 4096 {
        return Err(SeccompError::Build(format!(
            "the filter has {} instructions (BPF_MAXINSNS 4096)",
            prog.len()
        )));
    }
    Ok(prog)
}

/// The search over sorted `nrs` (the call number loaded): ALLOW on a hit, `JA miss` on a
/// miss. Conditional jumps reach 255 instructions at most; a subtree too large for that is
/// an error (the list would have to grow past ~700 calls).
fn search(nrs: &[u32], miss: u32) -> Result<Vec<seccompiler::sock_filter>, SeccompError> {
    if nrs.len() <= LEAF {
        // JEQ each (a hit jumps to the RET at the end), then the miss, then ALLOW.
        let n = nrs.len();
        let mut out: Vec<_> = nrs
            .iter()
            .enumerate()
            .map(|(i, &nr)| insn(BPF_JMP_JEQ_K, (n - i) as u8, 0, nr))
            .collect();
        out.push(insn(BPF_JMP_JA, 0, 0, miss));
        out.push(insn(BPF_RET_K, 0, 0, u32::from(SeccompAction::Allow)));
        return Ok(out);
    }
    let mid = nrs.len() / 2;
    let below = search(&nrs[..mid], miss)?;
    let above = search(&nrs[mid..], miss)?;
    let skip = u8::try_from(below.len())
        .map_err(|_| SeccompError::Build("the call search is too deep".into()))?;
    let mut out = vec![insn(BPF_JMP_JGE_K, skip, 0, nrs[mid])];
    out.extend(below);
    out.extend(above);
    Ok(out)
}

/// Loads the filter into every thread of the process (and sets no_new_privs, which an
/// unprivileged filter needs).
pub fn install(mode: Mode) -> Result<(), SeccompError> {
    let Some(program) = build(mode)? else {
        tracing::debug!("seccomp: off");
        return Ok(());
    };
    install_sigsys_handler();
    // The refusals first: installing a filter sets no_new_privs with prctl, which the main
    // filter then no longer allows.
    seccompiler::apply_filter_all_threads(&refusals()?)
        .map_err(|e| SeccompError::Install(e.to_string()))?;
    seccompiler::apply_filter_all_threads(&program)
        .map_err(|e| SeccompError::Install(e.to_string()))?;
    tracing::debug!(
        "seccomp: {mode:?}, {} host system calls allowed, {} of them narrowed by argument",
        ALLOWED.len() + narrowed().len(),
        narrowed().len()
    );
    if let Some(test) = std::env::var_os(SELFTEST_ENV) {
        self_test(&test.to_string_lossy());
    }
    Ok(())
}

/// The host calls of `runsc do`'s waiting parent (`crate::confine`), which only waits for
/// the sentry, passes signals on to it, and ends as it ended; and why.
const SUPERVISOR_ALLOWED: &[(i64, &str)] = &[
    (
        libc::SYS_rt_sigtimedwait,
        "sigwaitinfo: the signals it passes on",
    ),
    (libc::SYS_wait4, "waitpid: the sentry's end"),
    (
        libc::SYS_pread64,
        "the sentry's /proc status (which signals it handles), opened before the filter",
    ),
    (libc::SYS_write, "log lines"),
    (
        libc::SYS_rt_sigaction,
        "dying of the sentry's signal: its default action",
    ),
    (
        libc::SYS_rt_sigprocmask,
        "unblocking a signal to stop or die of it",
    ),
    (
        libc::SYS_rt_sigpending,
        "whether a SIGCONT came while it was stopped",
    ),
    (
        libc::SYS_rt_sigreturn,
        "the return from the SIGSYS handler's frame",
    ),
    (libc::SYS_getpid, "raise"),
    (libc::SYS_gettid, "raise"),
    (libc::SYS_exit, "the end"),
    (libc::SYS_exit_group, "the end, with the sentry's status"),
    (libc::SYS_futex, "std's locks (stderr)"),
    (libc::SYS_brk, "the allocator (log formatting)"),
    (libc::SYS_munmap, "the allocator"),
    (libc::SYS_mremap, "the allocator"),
    (libc::SYS_madvise, "the allocator"),
    (
        libc::SYS_clock_gettime,
        "log timestamps where the vDSO isn't used",
    ),
    (libc::SYS_sigaltstack, "std's stack overflow handler"),
    (libc::SYS_restart_syscall, "a wait interrupted by a stop"),
];

/// Confines `runsc do`'s waiting parent (single-threaded), whose child `sentry` runs the
/// sandbox: the calls of [`SUPERVISOR_ALLOWED`], kill only towards the sentry, tgkill only
/// towards itself (raise), mmap never executable. A call outside them stops it as the
/// sentry's filter does (its SIGKILL then reaches the sentry as its parent-death signal).
pub fn install_supervisor(mode: Mode, sentry: libc::pid_t) -> Result<(), SeccompError> {
    let mismatch = match mode {
        Mode::Enforce => SeccompAction::Trap,
        Mode::Log => SeccompAction::Log,
        Mode::Off => return Ok(()),
    };
    let build_err = |e: seccompiler::BackendError| SeccompError::Build(e.to_string());
    // SAFETY: getpid has no preconditions.
    let own = unsafe { libc::getpid() };
    let narrowed = [
        (libc::SYS_kill, Args::OneOf(0, vec![sentry as u64])),
        (libc::SYS_tgkill, Args::OneOf(0, vec![own as u64])),
        (libc::SYS_mmap, Args::Without(2, libc::PROT_EXEC as u64)),
    ];
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = SUPERVISOR_ALLOWED
        .iter()
        .map(|&(nr, _)| (nr, Vec::new()))
        .collect();
    for (nr, args) in narrowed {
        rules.insert(nr, self::rules(&args).map_err(build_err)?);
    }
    let filter = SeccompFilter::new(rules, mismatch, SeccompAction::Allow, TargetArch::x86_64)
        .map_err(|e| SeccompError::Build(e.to_string()))?;
    let program: BpfProgram = filter.try_into().map_err(build_err)?;
    install_sigsys_handler();
    seccompiler::apply_filter(&program).map_err(|e| SeccompError::Install(e.to_string()))?;
    tracing::debug!("seccomp: the waiting parent is under its filter ({mode:?})");
    Ok(())
}

/// Set to `1`, `adjtimex`, `ioctl`, `socket`, `mmap` or `fork`, makes the sentry attempt a
/// forbidden host call (`1`, `adjtimex`: calls never allowed; the others: an allowed call
/// with forbidden arguments) right after the filter is installed; tests check that it is
/// stopped and named. `clone3` makes it try clone3 and write the errno it got to stderr,
/// then go on. Only the host user who starts runsc can ask for it; the guest can't.
pub const SELFTEST_ENV: &str = "RUNSC_SECCOMP_SELFTEST";

fn self_test(which: &str) {
    match which {
        // SAFETY: personality(0xffffffff) only queries.
        "1" => unsafe {
            libc::syscall(libc::SYS_personality, 0xffff_ffffu64);
        },
        // SAFETY: TIOCSTI on stdin would push a byte into a terminal's input; the filter
        // stops it first. The byte is ours.
        "ioctl" => unsafe {
            let b = 0u8;
            libc::ioctl(0, libc::TIOCSTI, &b);
        },
        // SAFETY: an all-zero timex with modes 0 only reads; the filter stops it first.
        "adjtimex" => unsafe {
            let mut tx: libc::timex = std::mem::zeroed();
            libc::adjtimex(&mut tx);
        },
        // SAFETY: a fork-like clone (no shared memory, SIGCHLD at exit); the filter stops it
        // before a child exists.
        "fork" => unsafe {
            libc::syscall(
                libc::SYS_clone,
                libc::SIGCHLD as u64,
                0u64,
                0u64,
                0u64,
                0u64,
            );
        },
        "clone3" => {
            // An all-zero clone_args (size 64, CLONE_ARGS_SIZE_VER2) would fork; the second
            // filter answers ENOSYS before the kernel looks at it.
            let args = [0u64; 8];
            // SAFETY: args is a readable clone_args of the size given.
            let r = unsafe { libc::syscall(libc::SYS_clone3, args.as_ptr(), 64usize) };
            let errno = if r < 0 {
                std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
            } else {
                0
            };
            // The forked child, had there been one, must not go on as a second sentry.
            if r == 0 {
                // SAFETY: _exit has no preconditions.
                unsafe { libc::_exit(0) };
            }
            eprintln!("runsc: seccomp self-test: clone3 gave errno {errno}");
        }
        // SAFETY: a packet socket; the filter stops it before it exists.
        "socket" => unsafe {
            libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
        },
        // SAFETY: an anonymous executable mapping; the filter stops it first.
        "mmap" => unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_EXEC,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
        },
        _ => {}
    }
}

/// Writes "runsc: the sentry made a forbidden host system call NAME (NR) with arguments A,
/// B, C" and ends the process as a SIGSYS death would (status 159), without allocating
/// (signal context).
extern "C" fn on_sigsys(_: libc::c_int, info: *mut libc::siginfo_t, uc: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers; for SIGSYS from
    // seccomp, the syscall number is the int at offset 24 (`_sigsys._syscall`, after
    // si_signo, si_errno, si_code, padding and `_call_addr`).
    let nr = unsafe { *((info as *const u8).add(24) as *const libc::c_int) };
    let name = usize::try_from(nr)
        .ok()
        .and_then(|i| sentry::syscalls::names::NAMES.get(i).copied())
        .filter(|n| !n.is_empty())
        .unwrap_or("?");
    let mut line = [0u8; 160];
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        for &b in bytes {
            if len < line.len() {
                line[len] = b;
                len += 1;
            }
        }
    };
    put(b"runsc: the sentry made a forbidden host system call ");
    put(name.as_bytes());
    put(b" (");
    let mut digits = [0u8; 12];
    let mut n = nr.unsigned_abs();
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    put(&digits[i..]);
    put(b") with arguments ");
    // SAFETY: for an SA_SIGINFO handler the third argument is the interrupted context; a
    // seccomp trap leaves the call's arguments in its registers (rdi, rsi, rdx).
    let gregs = unsafe { (*(uc as *const libc::ucontext_t)).uc_mcontext.gregs };
    for (k, reg) in [libc::REG_RDI, libc::REG_RSI, libc::REG_RDX]
        .iter()
        .enumerate()
    {
        if k > 0 {
            put(b", ");
        }
        put(b"0x");
        let v = gregs[*reg as usize] as u64;
        let mut hex = [0u8; 16];
        let mut n = 0;
        let mut x = v;
        loop {
            hex[15 - n] = b"0123456789abcdef"[(x & 0xf) as usize];
            n += 1;
            x >>= 4;
            if x == 0 {
                break;
            }
        }
        put(&hex[16 - n..]);
    }
    put(b"; seccomp stopped the sandbox (see boot/src/seccomp.rs)\n");
    // SAFETY: write and _exit are async-signal-safe; the buffer is ours.
    unsafe {
        libc::write(2, line.as_ptr().cast(), len);
        libc::_exit(128 + libc::SIGSYS);
    }
}

fn install_sigsys_handler() {
    // SAFETY: installs a handler that only formats into a stack buffer, writes and exits.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigsys as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_builds_and_has_no_forbidden_calls() {
        assert!(build(Mode::Enforce).unwrap().is_some());
        assert!(build(Mode::Off).unwrap().is_none());
        for forbidden in [
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_ptrace,
            libc::SYS_mount,
            libc::SYS_umount2,
            libc::SYS_pivot_root,
            libc::SYS_bpf,
            libc::SYS_keyctl,
            libc::SYS_add_key,
            libc::SYS_perf_event_open,
            libc::SYS_init_module,
            libc::SYS_kexec_load,
            libc::SYS_process_vm_writev,
            libc::SYS_setns,
            libc::SYS_unshare,
            libc::SYS_chroot,
            libc::SYS_reboot,
            libc::SYS_settimeofday,
            libc::SYS_clock_settime,
            libc::SYS_adjtimex,
            libc::SYS_clock_adjtime,
        ] {
            assert!(
                !ALLOWED.iter().any(|&(nr, _)| nr == forbidden),
                "{forbidden} must not be allowed"
            );
        }
    }

    /// The filter as seccompiler builds it from the whole list, one call after the other
    /// (what `build` made before the search).
    fn plain_list(mode: Mode) -> BpfProgram {
        let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
            ALLOWED.iter().map(|&(nr, _)| (nr, Vec::new())).collect();
        for (nr, _, args) in narrowed() {
            rules.insert(nr, self::rules(&args).unwrap());
        }
        let mismatch = mismatch_action(mode).unwrap();
        SeccompFilter::new(rules, mismatch, SeccompAction::Allow, TargetArch::x86_64)
            .unwrap()
            .try_into()
            .unwrap()
    }

    fn checked(prog: &BpfProgram) -> sentry::seccomp::bpf::Program {
        let insns: Vec<_> = prog
            .iter()
            .map(|i| sentry::seccomp::bpf::Insn {
                code: i.code,
                jt: i.jt,
                jf: i.jf,
                k: i.k,
            })
            .collect();
        sentry::seccomp::bpf::check(&insns).expect("a program Linux accepts")
    }

    #[test]
    fn the_search_gives_the_same_verdicts_as_the_plain_list() {
        let narrowed = narrowed();
        for mode in [Mode::Enforce, Mode::Log] {
            let plain = checked(&plain_list(mode));
            let searched = build(mode).unwrap().unwrap();
            let fast = checked(&searched);
            // Argument values: none, each value a narrowed call allows (and one off), and
            // masks' bits, in every argument slot, so that every rule's both outcomes show.
            let mut values = vec![0u64, 1, u64::MAX, 0x7fff_ffff_0000_0000];
            for (_, _, args) in &narrowed {
                match args {
                    Args::OneOf(_, vs) => {
                        values.extend(vs.iter().flat_map(|&v| [v, v + 1, v | 1 << 32]))
                    }
                    Args::Without(_, m) => values.extend([*m, !*m, m << 1]),
                }
            }
            let mut compared = 0u64;
            for arch in [AUDIT_ARCH_X86_64, 0x4000_0003 /* i386 */, 0xc000_00b7] {
                let nrs = (0..1024u32)
                    .chain((0..600).map(|n| n | 0x4000_0000))
                    .chain([u32::MAX, 0x8000_0000]);
                for nr in nrs {
                    let narrowed_call = narrowed.iter().any(|(n, ..)| *n as u32 == nr);
                    let slots = if narrowed_call { 0..6 } else { 0..1 };
                    for slot in slots {
                        for &v in if narrowed_call {
                            &values[..]
                        } else {
                            &values[..1]
                        } {
                            let mut data = [0u32; 16];
                            data[0] = nr;
                            data[1] = arch;
                            data[4 + 2 * slot] = v as u32;
                            data[5 + 2 * slot] = (v >> 32) as u32;
                            let (a, b) = (
                                sentry::seccomp::bpf::run(&plain, &data),
                                sentry::seccomp::bpf::run(&fast, &data),
                            );
                            assert_eq!(a, b, "call {nr:#x} arch {arch:#x} arg {slot} = {v:#x}");
                            compared += 1;
                        }
                    }
                }
            }
            assert!(compared > 5000);
            // Every plainly allowed call is allowed, and execve is not.
            let allow = u32::from(SeccompAction::Allow);
            let verdict = |nr: i64| {
                let mut data = [0u32; 16];
                data[0] = nr as u32;
                data[1] = AUDIT_ARCH_X86_64;
                sentry::seccomp::bpf::run(&fast, &data)
            };
            for &(nr, _) in ALLOWED {
                assert_eq!(verdict(nr), allow, "{nr}");
            }
            assert_ne!(verdict(libc::SYS_execve), allow);
            // The search is what makes it cheap: far fewer instructions than the list.
            assert!(searched.len() < plain_list(mode).len() * 3 / 4);
        }
    }

    #[test]
    fn each_call_is_listed_once() {
        let mut seen = std::collections::HashSet::new();
        let narrowed = narrowed();
        let all = ALLOWED
            .iter()
            .copied()
            .chain(narrowed.iter().map(|(nr, why, _)| (*nr, *why)));
        for (nr, why) in all {
            assert!(seen.insert(nr), "{nr} listed twice");
            assert!(!why.is_empty());
        }
    }

    #[test]
    fn narrowed_calls_refuse_what_the_sentry_never_asks() {
        let narrowed = narrowed();
        let args = |nr: i64| &narrowed.iter().find(|(n, ..)| *n == nr).unwrap().2;
        let Args::OneOf(1, requests) = args(libc::SYS_ioctl) else {
            panic!("ioctl is narrowed by its request")
        };
        assert!(requests.contains(&0xAE80), "KVM_RUN");
        assert!(requests.contains(&libc::TCGETS));
        // Interface changes the sentry makes only for a sandbox that may change its own
        // namespace (SIOCSIFFLAGS...) are listed; routes through `struct rtentry`
        // (SIOCADDRT) and renames (SIOCSIFNAME) never are.
        for never in [
            libc::TIOCSTI,
            libc::TIOCSCTTY,
            libc::TIOCLINUX,
            libc::SIOCADDRT,
            libc::SIOCSIFNAME,
        ] {
            assert!(!requests.contains(&never), "{never:#x}");
        }
        let Args::OneOf(0, families) = args(libc::SYS_socket) else {
            panic!("socket is narrowed by its family")
        };
        assert!(!families.contains(&(libc::AF_PACKET as u64)));
        assert!(
            matches!(args(libc::SYS_mmap), Args::Without(2, m) if *m == libc::PROT_EXEC as u64)
        );
        // membarrier: the barriers only; QUERY and the registrations come before the filter.
        let Args::OneOf(0, commands) = args(libc::SYS_membarrier) else {
            panic!("membarrier is narrowed by its command")
        };
        assert!(commands.contains(&(sentry::membarrier::CMD_PRIVATE_EXPEDITED as u64)));
        for never in [
            sentry::membarrier::CMD_QUERY,
            sentry::membarrier::CMD_REGISTER_PRIVATE_EXPEDITED,
            sentry::membarrier::CMD_REGISTER_GLOBAL_EXPEDITED,
            sentry::membarrier::CMD_GET_REGISTRATIONS,
        ] {
            assert!(!commands.contains(&u64::from(never)), "{never}");
        }
    }
}
