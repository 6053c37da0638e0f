//! The sentry's namespaces and root (issue 13, item 2).
//!
//! The process that holds the VM runs in mount, pid, ipc and uts namespaces of its own (and a
//! user namespace of its own when it is not privileged, where the host allows one), and,
//! once every host file it needs is open (the root or rootfs directory, bind-mount sources,
//! images, /dev/kvm, the standard streams, the log file, the control socket), in a root
//! that holds nothing of the host: a read-only tmpfs with one directory, `/proc`, the
//! procfs of the sentry's own pid namespace (which shows the sentry alone). The sentry's
//! runtime reads of /proc (hostfs's `/proc/self/fd/N` magic links, /proc/cpuinfo,
//! /proc/net/*, /proc/sys/net/*) go there; /proc/sys and /proc/sysrq-trigger are
//! read-only, as runc's readonlyPaths make them. The network namespace is not changed here:
//! it is the one the sandbox's sockets live in (`netns`, or the OCI bundle's).
//!
//! A pid namespace holds the children of the process that makes it, so:
//! - `runsc do` forks once, first thing in `main` (single-threaded): the child, pid 1 of the
//!   new namespace, is the sentry; the parent stays in the host's namespaces, waits for it,
//!   passes signals on and exits as it exits (or dies of the signal it died of) — see
//!   [`enter_for_do`].
//! - the OCI sandbox process is cloned by `runsc create` straight into a new pid namespace
//!   (`oci::commands`), so the pid in `--pid-file` and the state is the sentry's own host
//!   pid, the process containerd's shim reaps; it makes the other namespaces itself
//!   ([`enter_for_sandbox`]).
//!
//! If the host refuses a namespace (unprivileged, without user namespaces), a warning says
//! so and the sandbox runs without them. `RUNSC_NO_NAMESPACES=1` turns all of this off
//! (to measure its cost, or to debug).

use std::ffi::CString;
use std::sync::OnceLock;

use sentry::Creds;

/// Set to 1 to run the sentry in its caller's namespaces and root.
pub const DISABLE_ENV: &str = "RUNSC_NO_NAMESPACES";

/// What [`pivot_to_empty_root`] may do: set once the namespaces are made.
static ENTERED: OnceLock<bool> = OnceLock::new();
/// The caller's credentials, read before any user namespace changes them.
static CALLER: OnceLock<Creds> = OnceLock::new();

#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    #[error("the sentry's empty root: {0}: {1}")]
    Pivot(String, std::io::Error),
}

fn disabled() -> bool {
    platform::env_flag(DISABLE_ENV)
}

/// Remembers the caller's credentials (ids, groups, capability sets) for `runsc do`'s
/// program, before a user namespace (here or `netns`) makes them the namespace's.
pub fn remember_caller() {
    let _ = CALLER.get_or_init(crate::read_caller_creds);
}

/// The credentials [`remember_caller`] kept, if it ran.
pub(crate) fn caller() -> Option<Creds> {
    CALLER.get().cloned()
}

/// Whether this thread has CAP_SYS_ADMIN in its user namespace (root, or a user namespace
/// made already by `netns`).
fn has_sys_admin() -> bool {
    ::caps::has_cap(
        None,
        ::caps::CapSet::Effective,
        ::caps::Capability::CAP_SYS_ADMIN,
    )
    .unwrap_or(false)
}

/// A user namespace mapping our uid and gid to themselves (an unprivileged caller's way to
/// CAP_SYS_ADMIN over its own namespaces). Single-threaded callers only.
fn enter_user_namespace() -> Result<(), String> {
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
        .map_err(|e| format!("a user namespace: {e}"))?;
    let write = |path: &str, text: String| {
        std::fs::write(path, text).map_err(|e| format!("writing {path}: {e}"))
    };
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
    write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;
    Ok(())
}

/// Makes the namespaces of `flags` (plus a user namespace first when unprivileged). Warns
/// and returns false when the host refuses.
fn unshare(flags: nix::sched::CloneFlags, what: &str) -> bool {
    if !has_sys_admin() {
        if let Err(e) = enter_user_namespace() {
            tracing::warn!(
                "{what}: the sentry stays in the caller's namespaces and root: {e} \
                 (allow unprivileged user namespaces, or run as root)"
            );
            return false;
        }
    }
    if let Err(e) = nix::sched::unshare(flags) {
        tracing::warn!(
            "{what}: the sentry stays in the caller's namespaces and root: \
             unshare({flags:?}): {e}"
        );
        return false;
    }
    true
}

/// `runsc do`: called first thing in `main` (no thread exists yet). Makes the mount, pid,
/// ipc and uts namespaces (and a user namespace when unprivileged), then forks: the child
/// (pid 1 of the new pid namespace) returns and becomes the sentry; the parent never
/// returns: it waits for the child, passes signals on, and exits as the child did.
pub fn enter_for_do(seccomp: crate::seccomp::Mode) {
    remember_caller();
    use nix::sched::CloneFlags as F;
    if disabled() {
        tracing::debug!("namespaces: off ({DISABLE_ENV})");
        let _ = ENTERED.set(false);
        return;
    }
    // The pid namespace here (it holds our children); the others in the child, so that
    // this process keeps the host's mount namespace and root (the child's pivot_root would
    // otherwise move it too), where it sees the child in the host's /proc.
    if !unshare(F::CLONE_NEWPID, "namespaces") {
        let _ = ENTERED.set(false);
        return;
    }
    let forwarded = forwarded_signals();
    // Its write end stays with the parent alone, for as long as it lives: the child learns
    // from the pipe whether the parent died while its parent-death signal was unset
    // (crate::identity).
    let parent_alive = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).ok();
    // Blocked across the fork, so that none is lost before the parent waits for it; the
    // child puts its mask back at once.
    let mut old = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigprocmask with a valid set and room for the old one.
    unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &forwarded, old.as_mut_ptr()) };
    // SAFETY: sigprocmask filled `old`.
    let old = unsafe { old.assume_init() };
    // SAFETY: no other thread exists (main calls this before any starts), so the child is a
    // full copy of a consistent process.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = std::io::Error::last_os_error();
        // SAFETY: restores the mask read above.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
        tracing::warn!("namespaces: fork into the new pid namespace: {e}; carrying on without");
        let _ = ENTERED.set(false);
        return;
    }
    if pid == 0 {
        // SAFETY: restores the mask read above; PR_SET_PDEATHSIG takes a signal number.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            // The sandbox ends with the process its caller knows (a SIGKILL of it included).
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
        }
        if let Some((read_end, write_end)) = parent_alive {
            drop(write_end);
            crate::identity::keep_parent_pipe(read_end);
        }
        let ok = unshare(
            F::CLONE_NEWNS | F::CLONE_NEWIPC | F::CLONE_NEWUTS,
            "namespaces",
        );
        let _ = ENTERED.set(ok);
        if ok {
            tracing::debug!("namespaces: mount, pid, ipc, uts (sentry is pid 1)");
        }
        return;
    }
    // Held, never closed, until this process exits.
    let _parent_alive = parent_alive.map(|(_, write_end)| write_end);
    let sentry = SentryStatus::open(pid);
    confine_supervisor(seccomp, pid);
    supervise(pid, &forwarded, &sentry)
}

/// Takes from the waiting parent what it doesn't need: every capability, and every host
/// call but the few it makes (crate::seccomp::install_supervisor). A failure is a warning:
/// the sentry itself is confined either way.
fn confine_supervisor(seccomp: crate::seccomp::Mode, sentry: libc::pid_t) {
    if crate::identity::changes(seccomp) {
        // The sentry will give up root: keep a uid it shares before and after.
        match crate::identity::follow_sentry() {
            Ok(id) => tracing::debug!("runsc do: the waiting parent follows the sentry's uid {id}"),
            Err(e) => tracing::warn!("runsc do: the waiting parent: {e}"),
        }
    }
    if let Err(e) = crate::caps::drop_all() {
        tracing::warn!("runsc do: the waiting parent keeps its capabilities: {e}");
    }
    if let Err(e) = crate::seccomp::install_supervisor(seccomp, sentry) {
        tracing::warn!("runsc do: the waiting parent runs without its filter: {e}");
    }
}

/// The OCI sandbox process (cloned by `create` into a new pid namespace): makes its mount,
/// ipc and uts namespaces. Called before any thread starts.
pub fn enter_for_sandbox() {
    use nix::sched::CloneFlags as F;
    if disabled() {
        let _ = ENTERED.set(false);
        return;
    }
    // SAFETY: getpid has no preconditions.
    if unsafe { libc::getpid() } != 1 {
        tracing::warn!(
            "namespaces: the sandbox process is not in a pid namespace of its own \
             (create could not make one); it stays in the caller's namespaces and root"
        );
        let _ = ENTERED.set(false);
        return;
    }
    let ok = unshare(
        F::CLONE_NEWNS | F::CLONE_NEWIPC | F::CLONE_NEWUTS,
        "namespaces",
    );
    let _ = ENTERED.set(ok);
}

/// Whether the sentry is in namespaces of its own (so [`pivot_to_empty_root`] will act).
pub fn entered() -> bool {
    ENTERED.get().copied().unwrap_or(false)
}

fn cstr(s: &str) -> CString {
    CString::new(s).expect("no NUL in a fixed path")
}

fn check(r: libc::c_int, what: impl Into<String>) -> Result<(), ConfineError> {
    if r < 0 {
        Err(ConfineError::Pivot(
            what.into(),
            std::io::Error::last_os_error(),
        ))
    } else {
        Ok(())
    }
}

fn mount(
    source: &str,
    target: &str,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<(), ConfineError> {
    let (s, t) = (cstr(source), cstr(target));
    let fstype = fstype.map(cstr);
    let data = data.map(cstr);
    // SAFETY: every pointer is a NUL-terminated string or null.
    let r = unsafe {
        libc::mount(
            s.as_ptr(),
            t.as_ptr(),
            fstype.as_ref().map_or(std::ptr::null(), |f| f.as_ptr()),
            flags,
            data.as_ref()
                .map_or(std::ptr::null(), |d| d.as_ptr().cast()),
        )
    };
    check(r, format!("mount {target}"))
}

/// Moves the sentry into an empty read-only root holding only its own /proc, once every
/// host file it needs is open. Does nothing unless [`enter_for_do`] or
/// [`enter_for_sandbox`] made the namespaces. Needs CAP_SYS_ADMIN (before
/// `caps::drop_unneeded`) in the calling thread. Threads started before (`runsc do`'s VM
/// thread and the ring poller it starts) share the caller's root (CLONE_FS), which
/// pivot_root moves for all of them; they open nothing by path. The namespaces themselves
/// were made while the process had one thread (unshare refuses CLONE_NEWNS otherwise).
pub fn pivot_to_empty_root() -> Result<(), ConfineError> {
    if !entered() {
        return Ok(());
    }
    let start = std::time::Instant::now();
    const RO: libc::c_ulong = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    // Nothing we mount from here on reaches the host's mount namespace.
    mount("none", "/", None, libc::MS_REC | libc::MS_PRIVATE, None)?;
    // Any directory will do to stage the new root (the mount is private).
    let stage = ["/tmp", "/mnt", "/run", "/var/tmp", "/dev"]
        .into_iter()
        .find(|d| std::fs::metadata(d).is_ok_and(|m| m.is_dir()))
        .ok_or_else(|| {
            ConfineError::Pivot(
                "a directory to stage the new root on".into(),
                std::io::Error::from_raw_os_error(libc::ENOENT),
            )
        })?;
    mount(
        "runsc-root",
        stage,
        Some("tmpfs"),
        RO,
        Some("mode=0755,size=16k,nr_inodes=16"),
    )?;
    let proc_dir = format!("{stage}/proc");
    let p = cstr(&proc_dir);
    // SAFETY: a NUL-terminated path.
    check(unsafe { libc::mkdir(p.as_ptr(), 0o555) }, "mkdir proc")?;
    // The procfs of the sentry's own pid namespace: no host process is in it.
    mount("proc", &proc_dir, Some("proc"), RO, None)?;
    for sub in ["sys", "sysrq-trigger", "irq", "bus", "fs"] {
        let path = format!("{proc_dir}/{sub}");
        if std::fs::symlink_metadata(&path).is_err() {
            continue;
        }
        mount(&path, &path, None, libc::MS_BIND | libc::MS_REC, None)?;
        mount(
            &path,
            &path,
            None,
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | RO,
            None,
        )?;
    }
    let s = cstr(stage);
    let dot = cstr(".");
    // SAFETY: NUL-terminated paths; pivot_root(".", ".") puts the old root on top of the new
    // one, and the detach below takes it away.
    unsafe {
        check(libc::chdir(s.as_ptr()), "chdir to the new root")?;
        check(
            libc::syscall(libc::SYS_pivot_root, dot.as_ptr(), dot.as_ptr()) as libc::c_int,
            "pivot_root",
        )?;
        check(
            libc::umount2(dot.as_ptr(), libc::MNT_DETACH),
            "detaching the host's root",
        )?;
        check(libc::chdir(c"/".as_ptr()), "chdir /")?;
    }
    mount(
        "none",
        "/",
        None,
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | RO,
        None,
    )?;
    tracing::debug!(
        "namespaces: the sentry's root is empty (but for its own /proc), in {:?}",
        start.elapsed()
    );
    Ok(())
}

/// Signals the `runsc do` parent passes on to the sentry.
fn forwarded_signals() -> libc::sigset_t {
    let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set; sigaddset adds valid signal numbers.
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        for sig in FORWARDED {
            libc::sigaddset(set.as_mut_ptr(), sig);
        }
        libc::sigaddset(set.as_mut_ptr(), libc::SIGCHLD);
        set.assume_init()
    }
}

const FORWARDED: [i32; 20] = [
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGPIPE,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGPWR,
    libc::SIGIO,
    libc::SIGTRAP,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGCONT,
    libc::SIGWINCH,
];

/// The sentry's /proc status, opened before the waiting parent's filter (which allows no
/// open): which signals the sentry handles.
struct SentryStatus(Option<std::fs::File>);

impl SentryStatus {
    fn open(pid: libc::pid_t) -> SentryStatus {
        SentryStatus(std::fs::File::open(format!("/proc/{pid}/status")).ok())
    }

    /// Whether the sentry has a handler for `sig` (its status's SigCgt).
    fn catches(&self, sig: i32) -> bool {
        use std::os::unix::fs::FileExt;
        let Some(file) = &self.0 else {
            return false;
        };
        let mut buf = vec![0u8; 16 << 10];
        let mut len = 0;
        while len < buf.len() {
            match file.read_at(&mut buf[len..], len as u64) {
                Ok(0) => break,
                Ok(n) => len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
        String::from_utf8_lossy(&buf[..len])
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .and_then(|m| u64::from_str_radix(m.trim(), 16).ok())
            .is_some_and(|m| m & (1u64 << (sig - 1)) != 0)
    }
}

/// Dies of `sig` as the sentry did (or exits 128+sig if it can't).
fn die_of(sig: i32) -> ! {
    // SAFETY: default action, unblocked, then raised: the process ends of it.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        let mut set = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), sig);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, set.as_ptr(), std::ptr::null_mut());
        libc::raise(sig);
        libc::_exit(128 + sig)
    }
}

/// The `runsc do` parent: waits for the sentry (`child`), passing signals on as they would
/// have reached it before it was a pid namespace's init (which the kernel spares signals
/// it does not handle), and ends as it ended.
fn supervise(child: libc::pid_t, set: &libc::sigset_t, status: &SentryStatus) -> ! {
    loop {
        let mut info = std::mem::MaybeUninit::<libc::siginfo_t>::uninit();
        // SAFETY: `set` is blocked in this thread; `info` has room for one siginfo.
        let sig = unsafe { libc::sigwaitinfo(set, info.as_mut_ptr()) };
        if sig < 0 {
            continue;
        }
        // SAFETY: sigwaitinfo filled `info`.
        let info = unsafe { info.assume_init() };
        // A signal the terminal sent went to the sentry too (same process group).
        let from_tty = info.si_code == libc::SI_KERNEL;
        tracing::debug!(
            "runsc do: signal {sig} (code {}) for the sentry",
            info.si_code
        );
        match sig {
            libc::SIGCHLD => {
                let mut status = 0;
                // SAFETY: waits for our own child, without blocking.
                let r = unsafe { libc::waitpid(child, &mut status, libc::WNOHANG) };
                if r == child {
                    if libc::WIFEXITED(status) {
                        std::process::exit(libc::WEXITSTATUS(status));
                    }
                    if libc::WIFSIGNALED(status) {
                        die_of(libc::WTERMSIG(status));
                    }
                }
            }
            libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU => {
                // Stop the sentry (from an ancestor namespace, SIGSTOP always reaches an
                // init), then ourselves by the same signal, so that the shell reports the
                // stop it would have; SIGCONT wakes both.
                // SAFETY: kill(2) on our child; the signal's default action, unblocked
                // and raised on ourselves (it stops us until SIGCONT), then blocked and
                // caught again.
                unsafe {
                    libc::kill(child, libc::SIGSTOP);
                    let mut one = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
                    libc::sigemptyset(one.as_mut_ptr());
                    libc::sigaddset(one.as_mut_ptr(), sig);
                    libc::signal(sig, libc::SIG_DFL);
                    libc::pthread_sigmask(libc::SIG_UNBLOCK, one.as_ptr(), std::ptr::null_mut());
                    libc::raise(sig);
                    libc::pthread_sigmask(libc::SIG_BLOCK, one.as_ptr(), std::ptr::null_mut());
                    // Stopped, we are back after a SIGCONT (blocked: pending, and passed
                    // on below). None pending: the kernel discarded the stop (an orphaned
                    // process group), as it would have for the sentry: wake it.
                    let mut pending = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
                    libc::sigemptyset(pending.as_mut_ptr());
                    libc::sigpending(pending.as_mut_ptr());
                    if libc::sigismember(pending.as_ptr(), libc::SIGCONT) != 1 {
                        libc::kill(child, libc::SIGCONT);
                    }
                }
            }
            libc::SIGCONT => {
                // SAFETY: kill(2) on our child.
                unsafe { libc::kill(child, libc::SIGCONT) };
            }
            libc::SIGWINCH => {
                if !from_tty {
                    // SAFETY: kill(2) on our child.
                    unsafe { libc::kill(child, libc::SIGWINCH) };
                }
            }
            _ if status.catches(sig) => {
                if !from_tty {
                    // SAFETY: kill(2) on our child.
                    unsafe { libc::kill(child, sig) };
                }
            }
            _ => {
                // The sentry would have died of it: it does now, and so do we.
                let mut status = 0;
                // SAFETY: kill(2) and waitpid on our own child.
                unsafe {
                    libc::kill(child, libc::SIGKILL);
                    while libc::waitpid(child, &mut status, 0) < 0
                        && *libc::__errno_location() == libc::EINTR
                    {}
                }
                die_of(sig)
            }
        }
    }
}
