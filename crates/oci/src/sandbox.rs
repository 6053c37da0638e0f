//! The sandbox process of a container: started by `runsc create` in a new session, it builds
//! the sandbox from the bundle, reports to `create` on a pipe, then serves the control socket.
//! Its exit status is the container's (128+N for signal N), which is what containerd's shim
//! waits for.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use fs::vfs::MountNamespace;
use sentry::process::Kernel;
use sentry::procfs::ProcFs;

use crate::container_hooks::StartHooks;
use crate::control::{self, Reply, Request};
use crate::resources::{Limits, Usage, UNLIMITED};
use crate::{spec, OciError};

/// What `runsc create` hands the sandbox process.
pub struct SandboxArgs {
    pub root: PathBuf,
    pub id: String,
    pub bundle: PathBuf,
    /// The write end of the pipe `create` reads the outcome from.
    pub ready_fd: RawFd,
    pub console_socket: Option<PathBuf>,
    pub platform: boot::PlatformKind,
    pub total_memory: Option<u64>,
    /// The sentry's seccomp filter, loaded before `create` returns (so before the first guest
    /// instruction).
    pub seccomp: boot::seccomp::Mode,
}

/// Writes the outcome of the build to `create`: "ok", or the error message.
fn report(fd: &OwnedFd, outcome: &Result<(), OciError>) {
    let msg = match outcome {
        Ok(()) => "ok".to_string(),
        Err(e) => format!("error:{e}"),
    };
    let mut f = std::fs::File::from(fd.try_clone().expect("dup of the ready pipe"));
    let _ = f.write_all(msg.as_bytes());
}

/// Default action terminates (or dumps core): a created container dies of it.
fn fatal_by_default(sig: i32) -> bool {
    !matches!(
        sig,
        libc::SIGCHLD
            | libc::SIGCONT
            | libc::SIGURG
            | libc::SIGWINCH
            | libc::SIGSTOP
            | libc::SIGTSTP
            | libc::SIGTTIN
            | libc::SIGTTOU
    )
}

/// Joins or makes the network namespace the bundle asks for (the sandbox's sockets, when it
/// has some, and Docker's network hooks work on this process's namespace).
/// A namespace that is not the one the runtime started in is the sandbox's own
/// (`boot::netns::mark_own`): a bundle that names the host's own namespace gets no more than
/// one that names none.
fn enter_network_namespace(spec: &oci_spec::runtime::Spec) -> Result<(), OciError> {
    let started_in = boot::netns::current_id();
    match spec::network_namespace(spec) {
        None => return Ok(()),
        Some(Some(path)) => {
            let f = std::fs::File::open(&path)
                .map_err(|e| OciError::io(format!("network namespace {}", path.display()), e))?;
            nix::sched::setns(f.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
                OciError::io(
                    format!("joining network namespace {}", path.display()),
                    e.into(),
                )
            })?;
        }
        Some(None) => nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| OciError::io("making a network namespace", e.into()))?,
    }
    if started_in.is_some() && boot::netns::current_id() != started_in {
        boot::netns::mark_own();
    }
    Ok(())
}

/// Joins the IPC and UTS namespaces the bundle names by path (`spec::joined_namespaces`),
/// in place of the sandbox's own (`boot::confine`). A container without `hostname` then
/// has the joined namespace's host name (the sentry reads it live); one with `hostname`
/// keeps its own, and the joined namespace's is not changed. The container's System V IPC
/// and POSIX queues stay the sentry's own: they are not shared with that namespace's host
/// processes.
fn join_namespaces(spec: &oci_spec::runtime::Spec) -> Result<(), OciError> {
    use nix::sched::CloneFlags;
    use oci_spec::runtime::LinuxNamespaceType as T;
    for (typ, path) in spec::joined_namespaces(spec)? {
        let (flag, name) = match typ {
            T::Ipc => (CloneFlags::CLONE_NEWIPC, "ipc"),
            _ => (CloneFlags::CLONE_NEWUTS, "uts"),
        };
        let f = std::fs::File::open(&path)
            .map_err(|e| OciError::io(format!("{name} namespace {}", path.display()), e))?;
        nix::sched::setns(f.as_fd(), flag).map_err(|e| {
            OciError::io(
                format!("joining {name} namespace {}", path.display()),
                e.into(),
            )
        })?;
    }
    Ok(())
}

/// A pty for the container's terminal: its master goes to the console socket, its slave is
/// returned (and made this process's controlling terminal, so ^C and resizes reach the
/// sentry, which passes them on).
fn terminal(
    console: &std::path::Path,
    size: Option<control::ConsoleSize>,
) -> Result<OwnedFd, OciError> {
    let slave = control::open_console(console, size)?;
    // SAFETY: TIOCSCTTY on the slave we own; this process leads its session (create
    // started it with setsid).
    unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0) };
    Ok(slave)
}

/// Points descriptors 0, 1 and 2 at /dev/null.
pub fn null_stdio() {
    if let Ok(null) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")
    {
        for fd in 0..3 {
            // SAFETY: dup2 onto the standard descriptors, which we own.
            unsafe { libc::dup2(null.as_raw_fd(), fd) };
        }
    }
}

/// Writes `adj` to /proc/self/oom_score_adj.
fn set_oom_score_adj(adj: i32) -> Result<(), OciError> {
    if !(-1000..=1000).contains(&adj) {
        return Err(OciError::Invalid(format!(
            "config.json: process.oomScoreAdj: {adj} is outside -1000..1000"
        )));
    }
    std::fs::write("/proc/self/oom_score_adj", adj.to_string()).map_err(|e| {
        OciError::io(
            format!("process.oomScoreAdj: writing {adj} to /proc/self/oom_score_adj"),
            e,
        )
    })
}

fn dup(fd: RawFd) -> Option<OwnedFd> {
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) makes a new descriptor we then own, or fails.
    let n = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    // SAFETY: n is a fresh descriptor.
    (n >= 0).then(|| unsafe { OwnedFd::from_raw_fd(n) })
}

struct Built {
    sandbox: sentry::Sandbox,
    ns: Arc<MountNamespace>,
    procfs: Arc<ProcFs>,
    listener: OwnedFd,
    start_hooks: Arc<StartHooks>,
}

fn build(args: &SandboxArgs) -> Result<Built, OciError> {
    let spec = spec::load(&args.bundle)?;
    enter_network_namespace(&spec)?;
    join_namespaces(&spec)?;
    // linux.resources.memory.limit bounds the sandbox's memory (whole pages, at least 16M).
    let limit = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.memory().as_ref())
        .and_then(|m| m.limit())
        .filter(|&l| l > 0)
        .map(|l| {
            (l as u64)
                .div_ceil(4096)
                .saturating_mul(4096)
                .max(crate::resources::MIN_MEMORY as u64)
        });
    // The memory file is sized once (`--total-memory`, or the platform's default, or more
    // for a larger limit); the limit is enforced under it and `runsc update` moves it.
    let memory_size = args
        .total_memory
        .unwrap_or_else(|| platform::kvm::DEFAULT_MEMORY_SIZE.max(limit.unwrap_or(0)));
    // The container's process may hold CAP_NET_ADMIN (its bounding set has it): then it
    // may change its own network namespace, as under runc, never the host's.
    let network_admin = boot::netns::is_own()
        && spec
            .process()
            .as_ref()
            .and_then(|p| p.capabilities().as_ref())
            .and_then(|c| c.bounding().as_ref())
            .is_some_and(|b| b.contains(&oci_spec::runtime::Capability::NetAdmin));
    // The host's membarrier registration, which the filter doesn't allow, as `runsc do`
    // makes it: before the VM's thread and KVM's workers share this process's memory, when
    // it costs no RCU grace period (boot::run_do_in).
    sentry::membarrier::prepare_host();
    // The VM is made on a thread of its own while the bundle is read (boot::platform_thread),
    // in the namespaces joined above.
    let vm = boot::platform_thread::start(
        args.platform,
        boot::platform_thread::Request {
            syscall_path: platform::SyscallPath::Ring,
            total_memory: Some(memory_size),
            defer_teardown: false,
            drop_caps: args.seccomp != boot::seccomp::Mode::Off,
            network_admin,
        },
    );
    let bundle = spec::bundle(&spec, &args.bundle)?;
    let proc = spec
        .process()
        .as_ref()
        .ok_or_else(|| OciError::Invalid("config.json: process: missing".into()))?;
    // process.oomScoreAdj: the host's OOM killer weighs the whole sandbox by it. Written
    // while /proc is the host's (before the pivot) and CAP_SYS_RESOURCE is held (lowering
    // needs it), as runc's init writes it before the container's program.
    if let Some(adj) = proc.oom_score_adj() {
        set_oom_score_adj(adj)?;
    }
    let mut p = spec::process(proc);
    if proc.terminal().unwrap_or(false) {
        let console = args.console_socket.as_ref().ok_or_else(|| {
            OciError::Invalid("process.terminal is set but no --console-socket was given".into())
        })?;
        let slave = terminal(console, control::ConsoleSize::from_spec(proc))?;
        // Our own stdio is the caller's output pipe, which it reads to the end (go-runc's
        // create does): let go of it, as runc's init does when its stdio becomes the pty.
        null_stdio();
        p.stdio = [slave.try_clone().ok(), slave.try_clone().ok(), Some(slave)];
    } else {
        p.stdio = [dup(0), dup(1), dup(2)];
    }
    let procfs = ProcFs::new();
    // linux.sysctl: in the container's network namespace, through the host's /proc, with
    // the capabilities the sentry gives up below.
    let ipc_sysctls = crate::sysctl::apply(
        &spec,
        crate::sysctl::Own::of(&spec, boot::netns::is_own()),
        &procfs,
    )?;
    let ns = boot::bundle::build_namespace(&bundle, &procfs).map_err(OciError::boot)?;
    let pspec = boot::bundle::process_spec(&ns, &procfs, p).map_err(OciError::boot)?;
    // The control socket, ROOT/ID/control.sock: bound now, while the state directory is in
    // reach; exec, kill and ps reach the sandbox through it by path from the host.
    let listener = control::listen(&crate::state::dir(&args.root, &args.id))?;
    // Every host file the sentry needs is open (the rootfs and bind sources, the stdio or
    // terminal, the log, the control socket, /dev/kvm and the self-test cache): leave the
    // host's file system for an empty root (boot::confine).
    vm.wait_host_reads();
    if let Err(e) = boot::confine::pivot_to_empty_root() {
        tracing::warn!("{e}; the sentry keeps the host's root");
    }
    // The VM's thread ends here: the sentry's user, Landlock and the filter below are for
    // this thread alone while it is the only one.
    let platform: Arc<dyn platform::Platform> = vm.finish().map_err(OciError::boot)?;
    // The namespace is joined and the bundle's files are open: from here on the sentry
    // needs only boot::caps::KEPT, and (started by root) runs as a user of its own
    // (boot::identity). Before the platform starts its threads (capabilities are per
    // thread), after the pivot (it needs CAP_SYS_ADMIN).
    if boot::identity::changes(args.seccomp) {
        boot::identity::become_sentry_user(network_admin)
            .map_err(|e| OciError::Sandbox(e.to_string()))?;
    } else if args.seccomp != boot::seccomp::Mode::Off {
        boot::caps::drop_unneeded(network_admin).map_err(|e| OciError::Sandbox(e.to_string()))?;
    }
    // The rootfs and bind sources are open: from here on the sentry opens host files only
    // beneath them (boot::landlock). Before the platform and the control socket start
    // their threads (a Landlock domain is per thread before ABI 8).
    boot::landlock::restrict().map_err(|e| OciError::Sandbox(e.to_string()))?;
    if network_admin {
        fs::hostinet::allow_network_changes();
    }
    if let Some(limit) = limit {
        let mem = platform.memory();
        // Above an operator's --total-memory: the whole file, as before update existed.
        mem.set_limit(limit.min(mem.size()))
            .map_err(|e| OciError::Sandbox(e.to_string()))?;
    }
    let sandbox = sentry::prepare(platform, pspec).map_err(|e| OciError::Sandbox(e.to_string()))?;
    ipc_sysctls.apply(&sandbox.kernel().ipc)?;
    // linux.resources.pids.limit: the cgroup pids.max of the sandbox (0 or less: none).
    let pids = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| r.pids().as_ref())
        .map(|p| p.limit())
        .filter(|&l| l > 0);
    sandbox.kernel().tasks.set_pids_max(pids.map(|l| l as u64));
    if let Some(h) = spec.hostname() {
        procfs.set_hostname(h.as_bytes());
    }
    let start_hooks = Arc::new(StartHooks {
        hooks: crate::hooks::of(&spec, crate::hooks::Point::StartContainer),
        process: proc.clone(),
    });
    Ok(Built {
        sandbox,
        ns,
        procfs,
        listener,
        start_hooks,
    })
}

enum Main {
    Start,
    Exit(i32),
}

/// Sends `signo` (SI_USER) to process `pid` of the sandbox. As Linux treats a pid
/// namespace's init, the first process gets a signal from outside only if it handles it
/// (or it is SIGKILL or SIGSTOP): `docker stop` on a program that ignores SIGTERM waits for
/// the timeout and kills.
fn signal(kernel: &Kernel, pid: i32, signo: i32) -> bool {
    let Some(g) = kernel.group(pid) else {
        return false;
    };
    if pid == 1
        && signo != libc::SIGKILL
        && signo != libc::SIGSTOP
        && g.handlers().get(signo).handler == libc::SIG_DFL as u64
    {
        return true;
    }
    g.send(sentry::signal_frame::SigInfo {
        signo,
        code: 0,
        ..Default::default()
    });
    true
}

/// What every control connection works on.
#[derive(Clone)]
struct Shared {
    kernel: Arc<Kernel>,
    ns: Arc<MountNamespace>,
    procfs: Arc<ProcFs>,
    started: Arc<Mutex<bool>>,
    start_hooks: Arc<StartHooks>,
    main: mpsc::Sender<Main>,
}

/// Sets the limits `runsc update` asks for: the memory the sandbox may use (no limit: all of
/// its memory file) and its task limit.
fn update_limits(kernel: &Kernel, limits: Limits) -> Result<(), String> {
    let mem = kernel.platform.memory();
    if let Some(m) = limits.memory {
        let bytes = if m == UNLIMITED { mem.size() } else { m as u64 };
        mem.set_limit(bytes)
            .map_err(|e| format!("memory.limit: {e}"))?;
    }
    if let Some(p) = limits.pids {
        kernel
            .tasks
            .set_pids_max((p != UNLIMITED).then_some(p as u64));
    }
    Ok(())
}

fn usage(kernel: &Kernel) -> Usage {
    let mem = kernel.platform.memory();
    Usage {
        memory_limit: mem.limit(),
        memory_usage: mem.used_bytes(),
        memory_max_usage: mem.max_used_bytes(),
        pids_limit: kernel.tasks.pids_max(),
        pids_current: kernel.tasks.total(),
    }
}

/// Start: the startContainer hooks, in the container, then the first process. A failed
/// hook ends the container (the spec's "stop the container"). The message for the main
/// thread goes after the reply (see `serve`).
fn start(sh: &Shared, state: &serde_json::Value) -> (Reply, Option<Main>) {
    let mut s = sh.started.lock().unwrap_or_else(|e| e.into_inner());
    if *s {
        let message = "the container was started already".into();
        return (Reply::Error { message }, None);
    }
    *s = true;
    if let Err(message) =
        crate::container_hooks::run_all(&sh.kernel, &sh.ns, &sh.procfs, &sh.start_hooks, state)
    {
        tracing::debug!("{message}");
        return (Reply::Error { message }, Some(Main::Exit(1)));
    }
    (Reply::Ok, Some(Main::Start))
}

fn serve(conn: OwnedFd, sh: Shared) {
    let Ok(Some((req, fds))) = control::recv::<Request>(&conn) else {
        return;
    };
    let Shared {
        kernel,
        ns,
        procfs,
        started,
        main,
        ..
    } = sh.clone();
    // What the main thread is told, once the reply is sent: told first, it could end the
    // sandbox, and this connection with it, before the reply went out (`start` of a
    // container whose hook failed then saw "the sandbox closed the connection").
    let mut after = None;
    let reply = match req {
        Request::Start { state } => {
            let (reply, then) = start(&sh, &state);
            after = then;
            reply
        }
        Request::Update { limits } => match update_limits(&kernel, limits) {
            Ok(()) => Reply::Usage {
                usage: usage(&kernel),
            },
            Err(message) => Reply::Error { message },
        },
        Request::Usage => Reply::Usage {
            usage: usage(&kernel),
        },
        Request::Signal { signo, all, pid } => {
            if !(1..=64).contains(&signo) {
                Reply::Error {
                    message: format!("invalid signal {signo}"),
                }
            } else if !*started.lock().unwrap_or_else(|e| e.into_inner()) && pid.is_none() {
                // Not running yet: the first process dies of a fatal signal before it starts.
                if fatal_by_default(signo) {
                    after = Some(Main::Exit(128 + signo));
                }
                Reply::Ok
            } else if all {
                for (p, _) in kernel.processes() {
                    signal(&kernel, p, signo);
                }
                Reply::Ok
            } else if signal(&kernel, pid.unwrap_or(1), signo) {
                Reply::Ok
            } else {
                Reply::Error {
                    message: "no such process".into(),
                }
            }
        }
        Request::Ps => Reply::Processes {
            // The sandbox's own pids, each with "UID CMD" (its command line).
            list: kernel
                .processes()
                .into_iter()
                .map(|(p, pp)| {
                    let uid = kernel.group(p).map(|g| g.uids().uid).unwrap_or(0);
                    let cmd = procfs
                        .process(p)
                        .map(|i| {
                            let line = i.image().cmdline;
                            let words: Vec<String> = line
                                .split(|&b| b == 0)
                                .filter(|w| !w.is_empty())
                                .map(|w| String::from_utf8_lossy(w).into_owned())
                                .collect();
                            words.join(" ")
                        })
                        .unwrap_or_default();
                    (p, pp, format!("{uid} {cmd}"))
                })
                .collect(),
        },
        Request::Exec {
            args,
            env,
            cwd,
            uid,
            gid,
            additional_gids,
            capabilities,
            no_new_privileges,
            rlimits,
        } => {
            let mut it = fds.into_iter();
            let p = boot::bundle::BundleProcess {
                path: None,
                args,
                env,
                cwd,
                uid,
                gid,
                additional_gids,
                capabilities: capabilities.map(Into::into),
                no_new_privileges,
                rlimits,
                stdio: [it.next(), it.next(), it.next()],
            };
            let spawned = boot::bundle::process_spec(&ns, &procfs, p)
                .map_err(|e| e.to_string())
                .and_then(|s| sentry::spawn_process(&kernel, s).map_err(|e| e.to_string()));
            match spawned {
                Err(message) => Reply::Error { message },
                Ok((pid, rx)) => {
                    if control::send(&conn, &Reply::Started { pid }, &[]).is_err() {
                        return;
                    }
                    let status = rx
                        .recv()
                        .map(|s| s.shell_status())
                        .unwrap_or(128 + libc::SIGKILL);
                    Reply::Exited { status }
                }
            }
        }
    };
    if let Some(delay) = reply_delay() {
        std::thread::sleep(delay);
    }
    let _ = control::send(&conn, &reply, &[]);
    if let Some(message) = after {
        let _ = main.send(message);
    }
}

/// Milliseconds to hold every control reply back (unset: none), so that a test can make
/// anything racing a reply win (`oci container_hooks_run_in_the_container`: the main thread
/// ending the sandbox before the reply to a failed start went out). Read from the
/// environment `runsc create` was started with, which the guest can't touch.
pub const REPLY_DELAY_ENV: &str = "RUNSC_TEST_CONTROL_REPLY_DELAY_MS";

fn reply_delay() -> Option<std::time::Duration> {
    static DELAY: std::sync::OnceLock<Option<std::time::Duration>> = std::sync::OnceLock::new();
    *DELAY.get_or_init(|| {
        std::env::var(REPLY_DELAY_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .map(std::time::Duration::from_millis)
    })
}

/// Runs the sandbox process; returns its exit status.
pub fn main(args: SandboxArgs) -> i32 {
    // Still single-threaded: mount, ipc and uts namespaces of its own (create cloned this
    // process into a pid namespace of its own).
    boot::confine::enter_for_sandbox();
    // SAFETY: create handed us this descriptor and nothing else owns it.
    let ready = unsafe { OwnedFd::from_raw_fd(args.ready_fd) };
    // Don't let our descriptor leak into hooks or the sandbox.
    // SAFETY: F_SETFD on a descriptor we own.
    unsafe { libc::fcntl(ready.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC) };
    let built = build(&args);
    let built = match built {
        Ok(b) => b,
        Err(e) => {
            tracing::debug!("sandbox {}: {e}", args.id);
            report(&ready, &Err(e));
            return 1;
        }
    };
    let Built {
        sandbox,
        ns,
        procfs,
        listener,
        start_hooks,
    } = built;
    let (tx, rx) = mpsc::channel();
    let shared = Shared {
        kernel: sandbox.kernel().clone(),
        ns,
        procfs,
        started: Arc::new(Mutex::new(false)),
        start_hooks,
        main: tx,
    };
    std::thread::Builder::new()
        .name("control".into())
        .spawn(move || loop {
            let Ok(conn) = control::accept(&listener) else {
                continue;
            };
            let sh = shared.clone();
            let _ = std::thread::Builder::new()
                .name("control-conn".into())
                .spawn(move || serve(conn, sh));
        })
        .expect("control thread");
    // Every thread of this process (the control threads too) from here on, before create
    // returns: between create and start the sandbox only serves its control socket.
    if let Err(e) = boot::seccomp::install(args.seccomp) {
        tracing::warn!("sandbox {}: {e}", args.id);
        report(&ready, &Err(OciError::Sandbox(e.to_string())));
        return 128 + libc::SIGKILL;
    }
    report(&ready, &Ok(()));
    drop(ready);
    match rx.recv() {
        Ok(Main::Start) => {}
        Ok(Main::Exit(code)) => return code,
        Err(_) => return 1,
    }
    match sandbox.run() {
        Ok(status) => status.shell_status(),
        Err(e) => {
            tracing::warn!("sandbox {}: {e}", args.id);
            128 + libc::SIGKILL
        }
    }
}
