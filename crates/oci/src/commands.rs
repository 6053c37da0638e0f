//! The runtime commands.

use std::ffi::OsString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::control::{self, Reply, Request};
use crate::hooks::{self, Point};
use crate::state::{self, Record, Status};
use crate::{spec, OciError};

/// What every command needs: where state lives, and how to start this program again (for
/// the sandbox and exec processes) with the same global flags.
#[derive(Debug, Clone)]
pub struct Globals {
    pub root: PathBuf,
    pub exe: PathBuf,
    /// Global flags for a re-executed runsc (`--platform`, `--log`, `--debug-log`, ...).
    pub args: Vec<OsString>,
}

/// Parses a signal: a number, or a name with or without SIG (`TERM`, `SIGTERM`, `15`).
pub fn parse_signal(s: &str) -> Result<i32, OciError> {
    if let Ok(n) = s.parse::<i32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
        return Err(OciError::Invalid(format!("invalid signal: {s}")));
    }
    let up = s.to_ascii_uppercase();
    let name = up.strip_prefix("SIG").unwrap_or(&up);
    let named = [
        ("HUP", 1),
        ("INT", 2),
        ("QUIT", 3),
        ("ILL", 4),
        ("TRAP", 5),
        ("ABRT", 6),
        ("IOT", 6),
        ("BUS", 7),
        ("FPE", 8),
        ("KILL", 9),
        ("USR1", 10),
        ("SEGV", 11),
        ("USR2", 12),
        ("PIPE", 13),
        ("ALRM", 14),
        ("TERM", 15),
        ("STKFLT", 16),
        ("CHLD", 17),
        ("CONT", 18),
        ("STOP", 19),
        ("TSTP", 20),
        ("TTIN", 21),
        ("TTOU", 22),
        ("URG", 23),
        ("XCPU", 24),
        ("XFSZ", 25),
        ("VTALRM", 26),
        ("PROF", 27),
        ("WINCH", 28),
        ("IO", 29),
        ("POLL", 29),
        ("PWR", 30),
        ("SYS", 31),
    ];
    if let Some(&(_, n)) = named.iter().find(|(n, _)| *n == name) {
        return Ok(n);
    }
    if let Some(rest) = name.strip_prefix("RTMIN") {
        let off: i32 = if rest.is_empty() {
            0
        } else {
            rest.trim_start_matches('+').parse().unwrap_or(-1)
        };
        if (0..=30).contains(&off) {
            return Ok(34 + off);
        }
    }
    Err(OciError::Invalid(format!("invalid signal: {s}")))
}

fn pipe() -> Result<(OwnedFd, OwnedFd), OciError> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(OciError::io("pipe", std::io::Error::last_os_error()));
    }
    // SAFETY: pipe2 made two new descriptors.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Starts `exe GLOBALS ARGS` in a new session with `keep` inherited (its close-on-exec flag
/// cleared in the child).
fn spawn_self(
    g: &Globals,
    args: &[OsString],
    keep: RawFd,
) -> Result<std::process::Child, OciError> {
    let mut cmd = Command::new(&g.exe);
    cmd.args(&g.args).args(args);
    // SAFETY: the closure only makes async-signal-safe calls (setsid, fcntl).
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::fcntl(keep, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.spawn()
        .map_err(|e| OciError::io(format!("starting {}", g.exe.display()), e))
}

/// The sandbox process `create` started: std's child, or (in a pid namespace of its own)
/// one cloned by hand.
pub enum SandboxChild {
    Std(std::process::Child),
    Cloned(i32),
}

impl SandboxChild {
    /// Its host pid (for `--pid-file`, the state, and the shim's wait).
    pub fn id(&self) -> i32 {
        match self {
            SandboxChild::Std(c) => c.id() as i32,
            SandboxChild::Cloned(pid) => *pid,
        }
    }

    fn kill(&mut self) {
        match self {
            SandboxChild::Std(c) => {
                let _ = c.kill();
            }
            // SAFETY: kill(2) on our own child, not reaped yet.
            SandboxChild::Cloned(pid) => unsafe {
                libc::kill(*pid, libc::SIGKILL);
            },
        }
    }

    /// Waits for it: its exit status (128+N for signal N).
    pub fn wait(&mut self) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        match self {
            SandboxChild::Std(c) => match c.wait() {
                Ok(s) => s
                    .code()
                    .unwrap_or_else(|| 128 + s.signal().unwrap_or(libc::SIGKILL)),
                Err(_) => 1,
            },
            SandboxChild::Cloned(pid) => loop {
                let mut status = 0;
                // SAFETY: waitpid on our own child.
                let r = unsafe { libc::waitpid(*pid, &mut status, 0) };
                if r == *pid {
                    if libc::WIFEXITED(status) {
                        return libc::WEXITSTATUS(status);
                    }
                    if libc::WIFSIGNALED(status) {
                        return 128 + libc::WTERMSIG(status);
                    }
                } else if r < 0
                    && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR)
                {
                    return 1;
                }
            },
        }
    }
}

/// Starts the sandbox process, `exe GLOBALS ARGS`, as [`spawn_self`] does, but cloned into
/// a new pid namespace, where it is pid 1 (boot::confine): its host pid is still the one
/// `create` reports and the shim reaps. Falls back to [`spawn_self`] (with a warning)
/// where the host refuses the namespace, or with RUNSC_NO_NAMESPACES.
fn spawn_sandbox(g: &Globals, args: &[OsString], keep: RawFd) -> Result<SandboxChild, OciError> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let disabled = platform::env_flag(boot::confine::DISABLE_ENV);
    if disabled {
        return spawn_self(g, args, keep).map(SandboxChild::Std);
    }
    let cstring = |s: &std::ffi::OsStr| {
        CString::new(s.as_bytes()).map_err(|_| OciError::Invalid(format!("{s:?} holds a NUL byte")))
    };
    let exe = cstring(g.exe.as_os_str())?;
    let mut argv = vec![exe.clone()];
    for a in g.args.iter().chain(args) {
        argv.push(cstring(a)?);
    }
    let mut envp = Vec::new();
    for (k, v) in std::env::vars_os() {
        let mut kv = k;
        kv.push("=");
        kv.push(v);
        envp.push(cstring(&kv)?);
    }
    let mut argv_p: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_p.push(std::ptr::null());
    let mut envp_p: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_p.push(std::ptr::null());
    let flags = (libc::CLONE_NEWPID | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: clone without CLONE_VM, like fork: the child gets a copy of this process and,
    // below, makes only async-signal-safe calls on memory prepared before the clone, then
    // execs or exits.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    if pid == 0 {
        // SAFETY: in the child: setsid, fcntl, execve and _exit on prepared memory only.
        unsafe {
            if libc::setsid() < 0 || libc::fcntl(keep, libc::F_SETFD, 0) < 0 {
                libc::_exit(125);
            }
            libc::execve(exe.as_ptr(), argv_p.as_ptr(), envp_p.as_ptr());
            libc::_exit(127);
        }
    }
    if pid < 0 {
        let e = std::io::Error::last_os_error();
        tracing::warn!(
            "namespaces: the sandbox process gets no pid namespace of its own \
             (clone(CLONE_NEWPID): {e}); the sentry stays in the caller's namespaces and root"
        );
        return spawn_self(g, args, keep).map(SandboxChild::Std);
    }
    Ok(SandboxChild::Cloned(pid as i32))
}

/// Reads what a child reports on `read`: Ok(text after "ok"), or its error.
fn read_report(read: OwnedFd) -> Result<String, OciError> {
    let mut f = std::fs::File::from(read);
    let mut s = String::new();
    f.read_to_string(&mut s)
        .map_err(|e| OciError::io("reading the sandbox's report", e))?;
    if let Some(rest) = s.strip_prefix("ok") {
        Ok(rest.trim().to_string())
    } else if let Some(msg) = s.strip_prefix("error:") {
        Err(OciError::Sandbox(msg.to_string()))
    } else {
        Err(OciError::Sandbox(
            "the sandbox process ended before reporting (see the debug log)".into(),
        ))
    }
}

/// Writes a pid file as runc does: a temporary file renamed into place.
fn write_pid_file(path: &Path, pid: i32) -> Result<(), OciError> {
    let tmp = path.with_extension(format!("runsc-tmp-{}", std::process::id()));
    std::fs::write(&tmp, pid.to_string())
        .map_err(|e| OciError::io(format!("writing {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path).map_err(|e| OciError::io(format!("writing {}", path.display()), e))
}

/// Waits (up to `limit`) for the sandbox of `rec` to end.
fn wait_gone(rec: &Record, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while state::alive(rec) {
        if Instant::now() > end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Kills the sandbox process of `rec` (SIGKILL, also when paused) and waits for it.
fn kill_sandbox(rec: &Record) {
    if state::alive(rec) {
        // SAFETY: kill(2) on the pid we recorded and just checked (pid and start time).
        unsafe { libc::kill(rec.pid, libc::SIGKILL) };
        if !wait_gone(rec, Duration::from_secs(10)) {
            tracing::warn!("sandbox {} (pid {}) did not end", rec.id, rec.pid);
        }
    }
}

/// `create`: starts the sandbox process and leaves the container created. Returns the
/// sandbox process (our child until we exit).
pub fn create(
    g: &Globals,
    id: &str,
    bundle: Option<&Path>,
    pid_file: Option<&Path>,
    console_socket: Option<&Path>,
) -> Result<SandboxChild, OciError> {
    state::check_id(id)?;
    let bundle = match bundle {
        Some(b) => b.to_path_buf(),
        None => std::env::current_dir().map_err(|e| OciError::io("current directory", e))?,
    };
    let bundle = std::fs::canonicalize(&bundle)
        .map_err(|e| OciError::io(format!("bundle {}", bundle.display()), e))?;
    let spec = spec::load(&bundle)?;
    // Refuse a bad config here, before any process exists.
    spec::bundle(&spec, &bundle)?;
    spec::joined_namespaces(&spec)?;
    std::fs::create_dir_all(&g.root)
        .map_err(|e| OciError::io(format!("creating {}", g.root.display()), e))?;
    let dir = state::dir(&g.root, id);
    match std::fs::create_dir(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(OciError::Exists(id.to_string()))
        }
        Err(e) => return Err(OciError::io(format!("creating {}", dir.display()), e)),
    }
    let cleanup = |e: OciError| {
        let _ = std::fs::remove_dir_all(&dir);
        e
    };
    let _lock = state::lock(&g.root, id).map_err(cleanup)?;
    let (read, write) = pipe().map_err(cleanup)?;
    let mut args: Vec<OsString> = vec![
        "sandbox".into(),
        "--bundle".into(),
        bundle.clone().into(),
        "--ready-fd".into(),
        write.as_raw_fd().to_string().into(),
    ];
    if let Some(c) = console_socket {
        args.push("--console-socket".into());
        args.push(c.into());
    }
    args.push(id.into());
    let mut child = spawn_sandbox(g, &args, write.as_raw_fd()).map_err(cleanup)?;
    drop(write);
    let fail = |child: &mut SandboxChild, e: OciError| {
        child.kill();
        child.wait();
        let _ = std::fs::remove_dir_all(&dir);
        e
    };
    if let Err(e) = read_report(read) {
        return Err(fail(&mut child, e));
    }
    let pid = child.id();
    let rec = Record {
        id: id.to_string(),
        pid,
        start_time: state::start_time(pid).unwrap_or(0),
        bundle: bundle.clone(),
        created: state::now_rfc3339(),
        started: false,
        paused: false,
        annotations: spec
            .annotations()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
    };
    if let Err(e) = state::save(&g.root, &rec) {
        return Err(fail(&mut child, e));
    }
    let st = state::state_json(id, Some(&rec), None);
    for point in [
        Point::Prestart,
        Point::CreateRuntime,
        Point::CreateContainer,
    ] {
        if let Err(e) = hooks::run_all(&spec, point, &st) {
            return Err(fail(&mut child, e));
        }
    }
    if let Some(p) = pid_file {
        if let Err(e) = write_pid_file(p, pid) {
            return Err(fail(&mut child, e));
        }
    }
    Ok(child)
}

/// `start`.
pub fn start(g: &Globals, id: &str) -> Result<(), OciError> {
    state::check_id(id)?;
    let _lock = state::lock(&g.root, id)?;
    let mut rec = state::load(&g.root, id)?
        .ok_or_else(|| OciError::State(format!("container {id} is still being created")))?;
    match state::status(Some(&rec)) {
        Status::Created => {}
        Status::Stopped => {
            return Err(OciError::State(
                "cannot start a container that has stopped".into(),
            ))
        }
        s => {
            return Err(OciError::State(format!(
                "cannot start an already running container (status {})",
                s.as_str()
            )))
        }
    }
    let spec = spec::load(&rec.bundle).ok();
    // The startContainer hooks run in the sandbox, in the container (container_hooks).
    let st = state::state_json(id, Some(&rec), None);
    control::call(&state::dir(&g.root, id), &Request::Start { state: st }, &[])?;
    rec.started = true;
    state::save(&g.root, &rec)?;
    if let Some(spec) = &spec {
        let st = state::state_json(id, Some(&rec), None);
        if let Err(e) = hooks::run_all(spec, Point::Poststart, &st) {
            tracing::warn!("{e}");
        }
    }
    Ok(())
}

/// `state`: the OCI state JSON.
pub fn state_of(g: &Globals, id: &str) -> Result<serde_json::Value, OciError> {
    state::check_id(id)?;
    let rec = state::load(&g.root, id)?;
    Ok(state::state_json(id, rec.as_ref(), None))
}

/// `kill [--all] ID SIGNAL`.
pub fn kill(g: &Globals, id: &str, signal: &str, all: bool) -> Result<(), OciError> {
    state::check_id(id)?;
    let signo = parse_signal(signal)?;
    let _lock = state::lock(&g.root, id)?;
    let rec = state::load(&g.root, id)?
        .ok_or_else(|| OciError::State(format!("container {id} is still being created")))?;
    match state::status(Some(&rec)) {
        Status::Stopped | Status::Creating => {
            return Err(OciError::State("container not running".into()))
        }
        // A paused sandbox serves nothing; SIGKILL ends it from outside.
        Status::Paused if signo == libc::SIGKILL => {
            kill_sandbox(&rec);
            return Ok(());
        }
        Status::Paused => {
            return Err(OciError::State(
                "container is paused: only SIGKILL can be sent".into(),
            ))
        }
        _ => {}
    }
    if signo == libc::SIGKILL && !all {
        // The first process's death ends the sandbox: end it from outside, which works
        // even if the sentry were stuck. Its exit status is 128+9 either way.
        // SAFETY: kill(2) on the sandbox pid checked just now.
        unsafe { libc::kill(rec.pid, libc::SIGKILL) };
        return Ok(());
    }
    let sent = control::call(
        &state::dir(&g.root, id),
        &Request::Signal {
            signo,
            all,
            pid: None,
        },
        &[],
    );
    match sent {
        Ok(_) => Ok(()),
        // A signal that ends the first process ends the sandbox, which may be gone before
        // its answer is sent (`kill --all ID KILL` under load): the signal did its work.
        Err(_) if wait_gone(&rec, Duration::from_secs(2)) => Ok(()),
        Err(e) => Err(e),
    }
}

/// `delete [--force]`.
pub fn delete(g: &Globals, id: &str, force: bool) -> Result<(), OciError> {
    state::check_id(id)?;
    let dir = state::dir(&g.root, id);
    if !dir.is_dir() {
        return if force {
            Ok(())
        } else {
            Err(OciError::NotFound(id.to_string()))
        };
    }
    let _lock = state::lock(&g.root, id)?;
    let rec = state::load(&g.root, id)?;
    let status = state::status(rec.as_ref());
    match (status, force) {
        (Status::Stopped | Status::Created, _) | (_, true) => {}
        (s, false) => {
            return Err(OciError::State(format!(
                "cannot delete container {id} that is not stopped: {}",
                s.as_str()
            )))
        }
    }
    if let Some(rec) = &rec {
        kill_sandbox(rec);
        if let Ok(spec) = spec::load(&rec.bundle) {
            let mut st = state::state_json(id, Some(rec), None);
            st["status"] = "stopped".into();
            if let Err(e) = hooks::run_all(&spec, Point::Poststop, &st) {
                tracing::warn!("{e}");
            }
        }
    }
    std::fs::remove_dir_all(&dir)
        .map_err(|e| OciError::io(format!("removing {}", dir.display()), e))
}

/// `list`: every container under the root.
pub fn list(g: &Globals) -> Result<Vec<serde_json::Value>, OciError> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(&g.root) else {
        return Ok(out);
    };
    let mut ids: Vec<String> = entries
        .flatten()
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    ids.sort();
    for id in ids {
        if let Ok(rec) = state::load(&g.root, &id) {
            out.push(state::state_json(&id, rec.as_ref(), None));
        }
    }
    Ok(out)
}

/// `ps`: the host pids that stand for the container (`--format json`, for Docker's top),
/// or the sandbox's own processes as (pid, ppid).
pub fn ps(g: &Globals, id: &str, json: bool) -> Result<String, OciError> {
    state::check_id(id)?;
    let rec = state::load(&g.root, id)?
        .ok_or_else(|| OciError::State(format!("container {id} is still being created")))?;
    let alive = state::alive(&rec);
    if json {
        let pids: Vec<i32> = if alive { vec![rec.pid] } else { Vec::new() };
        return Ok(serde_json::to_string(&pids).unwrap_or_else(|_| "[]".into()));
    }
    if !alive {
        return Err(OciError::State("container not running".into()));
    }
    let (_, reply) = control::call(&state::dir(&g.root, id), &Request::Ps, &[])?;
    // The sandbox's processes, with their sandbox pids, as gVisor's runsc lists them.
    let mut out = String::from("UID   PID   PPID  CMD\n");
    if let Reply::Processes { list } = reply {
        for (pid, ppid, what) in list {
            let (uid, cmd) = what.split_once(' ').unwrap_or(("0", &what));
            out.push_str(&format!("{uid:<5} {pid:<5} {ppid:<5} {cmd}\n"));
        }
    }
    Ok(out)
}

/// `pause` (`true`) and `resume`: the whole sandbox process stops and continues, as the
/// cgroup freezer stops runc's.
pub fn pause(g: &Globals, id: &str, pause: bool) -> Result<(), OciError> {
    state::check_id(id)?;
    let _lock = state::lock(&g.root, id)?;
    let mut rec = state::load(&g.root, id)?
        .ok_or_else(|| OciError::State(format!("container {id} is still being created")))?;
    let status = state::status(Some(&rec));
    let (want, sig) = if pause {
        (Status::Running, libc::SIGSTOP)
    } else {
        (Status::Paused, libc::SIGCONT)
    };
    if status != want {
        return Err(OciError::State(format!(
            "container not {}: {}",
            if pause { "running" } else { "paused" },
            status.as_str()
        )));
    }
    // SAFETY: kill(2) on the sandbox pid checked just now.
    if unsafe { libc::kill(rec.pid, sig) } < 0 {
        return Err(OciError::io(
            "signalling the sandbox",
            std::io::Error::last_os_error(),
        ));
    }
    rec.paused = pause;
    state::save(&g.root, &rec)
}

/// `events --stats`: one sample of the sandbox's resource use.
pub fn stats(g: &Globals, id: &str) -> Result<serde_json::Value, OciError> {
    state::check_id(id)?;
    let rec = state::load(&g.root, id)?
        .ok_or_else(|| OciError::State(format!("container {id} is still being created")))?;
    if !state::alive(&rec) {
        return Err(OciError::State("container not running".into()));
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", rec.pid)).unwrap_or_default();
    let kb = |key: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    // The sandbox's own accounting: the memory its limit applies to and its tasks (threads
    // included, as the pids cgroup counts). A paused sandbox answers nothing: then only what
    // the host shows of it.
    let usage = if rec.paused {
        None
    } else {
        sandbox_usage(g, id, &Request::Usage).ok()
    };
    // utime and stime (fields 14 and 15 of /proc/PID/stat, the whole thread group) in
    // clock ticks; runc reports nanoseconds.
    let (user, kernel) = std::fs::read_to_string(format!("/proc/{}/stat", rec.pid))
        .ok()
        .and_then(|s| {
            let rest = s.get(s.rfind(')')? + 2..)?.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((
                f.get(11)?.parse::<u64>().ok()?,
                f.get(12)?.parse::<u64>().ok()?,
            ))
        })
        .unwrap_or((0, 0));
    // SAFETY: sysconf has no memory effects.
    let hz = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        n if n > 0 => n as u64,
        _ => 100,
    };
    let ns = |ticks: u64| ticks.saturating_mul(1_000_000_000 / hz);
    Ok(serde_json::json!({
        "type": "stats",
        "id": id,
        "data": {
            "cpu": { "usage": {
                "total": ns(user + kernel),
                "kernel": ns(kernel),
                "user": ns(user),
            }},
            "memory": { "usage": match &usage {
                Some(u) => serde_json::json!({
                    "usage": u.memory_usage,
                    "max": u.memory_max_usage,
                    "limit": u.memory_limit,
                }),
                None => serde_json::json!({ "usage": kb("VmRSS:") * 1024 }),
            }},
            "pids": match &usage {
                Some(u) => serde_json::json!({
                    "current": u.pids_current,
                    // runc's stats give 0 for no limit.
                    "limit": u.pids_limit.unwrap_or(0),
                }),
                None => serde_json::json!({ "current": 0 }),
            },
        }
    }))
}

/// Asks the sandbox of `id` for its limits and use (`Usage`, or `Update`, which answers
/// with them).
fn sandbox_usage(
    g: &Globals,
    id: &str,
    req: &Request,
) -> Result<crate::resources::Usage, OciError> {
    let (_, reply) = control::call_within(
        &state::dir(&g.root, id),
        req,
        &[],
        Some(Duration::from_secs(10)),
    )?;
    match reply {
        Reply::Usage { usage } => Ok(usage),
        _ => Err(OciError::Sandbox(
            "unexpected reply to a usage request".into(),
        )),
    }
}

/// `update`: applies `resources` (a `linux.resources` object, runc's flags applied over
/// it) to the running sandbox, as far as it can enforce them (`crate::resources`), and
/// returns the limits now in force.
pub fn update(
    g: &Globals,
    id: &str,
    resources: &serde_json::Value,
) -> Result<crate::resources::Usage, OciError> {
    state::check_id(id)?;
    let _lock = state::lock(&g.root, id)?;
    let rec = state::load(&g.root, id)?
        .ok_or_else(|| OciError::State(format!("container {id} is still being created")))?;
    match state::status(Some(&rec)) {
        Status::Created | Status::Running => {}
        Status::Paused => {
            return Err(OciError::State(
                "cannot update a paused container: its sandbox answers nothing until resumed"
                    .into(),
            ))
        }
        s => {
            return Err(OciError::State(format!(
                "container not running (status {})",
                s.as_str()
            )))
        }
    }
    let spec = spec::load(&rec.bundle)?;
    let created = spec
        .linux()
        .as_ref()
        .and_then(|l| l.resources().as_ref())
        .and_then(|r| serde_json::to_value(r).ok());
    let limits = crate::resources::plan(resources, created.as_ref())?;
    tracing::debug!("update {id}: {limits:?}");
    sandbox_usage(g, id, &Request::Update { limits })
}

/// `events` without `--stats`: as runc, one stats event every `interval` (the first after
/// one interval), given to `emit`, until the container stops.
pub fn events(
    g: &Globals,
    id: &str,
    interval: std::time::Duration,
    mut emit: impl FnMut(&serde_json::Value) -> Result<(), OciError>,
) -> Result<(), OciError> {
    let alive = || -> Result<bool, OciError> {
        Ok(state::load(&g.root, id)?.as_ref().is_some_and(state::alive))
    };
    if !alive()? {
        return Err(OciError::State(format!("container {id} is not running")));
    }
    let step = std::time::Duration::from_millis(100);
    loop {
        // Sleep one interval, looking every 100 ms whether the container has stopped.
        let end = std::time::Instant::now() + interval;
        loop {
            if !alive()? {
                return Ok(());
            }
            let now = std::time::Instant::now();
            if now >= end {
                break;
            }
            std::thread::sleep(step.min(end - now));
        }
        match stats(g, id) {
            Ok(ev) => emit(&ev)?,
            // Stopped between the look and the sample.
            Err(_) if !alive()? => return Ok(()),
            Err(e) => tracing::warn!("events: stats of {id}: {e}"),
        }
    }
}

/// A Go duration as runc's `--interval` takes it ("5s", "200ms", "1m30s", "1.5s"); more
/// than zero.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, OciError> {
    let bad = || OciError::Invalid(format!("invalid duration {text:?} (e.g. 5s, 200ms)"));
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let value: f64 = rest[..n].parse().map_err(|_| bad())?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += value * scale;
        rest = &rest[u..];
    }
    if !(total > 0.0 && total < 1e9) {
        return Err(OciError::Invalid(
            "duration interval must be greater than 0".into(),
        ));
    }
    Ok(std::time::Duration::from_secs_f64(total))
}

/// `features`: what this runtime supports, as runc prints it.
pub fn features() -> serde_json::Value {
    let capabilities: Vec<String> = (0..=sentry::caps::CAP_LAST_CAP as u8)
        .map(boot::caps::name)
        .collect();
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.1.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["ro", "rw", "bind", "rbind", "nosuid", "nodev", "noexec", "mode"],
        "linux": {
            "namespaces": ["network", "mount", "pid", "ipc", "uts", "user", "cgroup"],
            "capabilities": capabilities,
            "cgroup": { "v1": false, "v2": false, "systemd": false, "systemdUser": false },
            "seccomp": { "enabled": false },
            "apparmor": { "enabled": false },
            "selinux": { "enabled": false }
        },
        "annotations": { "org.opencontainers.runc.version": "runsc-rs" }
    })
}

/// `spec`: a starter config.json (runc's), running `sh` with a terminal.
pub fn spec_template() -> serde_json::Value {
    serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": true,
            "user": { "uid": 0, "gid": 0 },
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
            "cwd": "/",
            "capabilities": {
                "bounding": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "effective": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "permitted": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
                "ambient": ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
            },
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": true },
        "hostname": "runsc",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"] },
            { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["nosuid", "noexec", "nodev", "relatime", "ro"] }
        ],
        "linux": {
            "namespaces": [ { "type": "pid" }, { "type": "network" }, { "type": "ipc" }, { "type": "uts" }, { "type": "mount" } ],
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
        }
    })
}

/// What `exec` runs: from `--process FILE` or from the arguments over the container's own
/// process (env, cwd, user).
pub struct ExecSpec {
    pub request: Request,
    pub terminal: bool,
    /// The terminal's starting window size (`consoleSize`).
    pub console_size: Option<control::ConsoleSize>,
}

/// What `exec`'s arguments change in the process (without `--process`).
#[derive(Debug, Default)]
pub struct ExecOverrides<'a> {
    pub args: &'a [String],
    pub env: &'a [String],
    pub cwd: Option<&'a str>,
    /// UID[:GID].
    pub user: Option<&'a str>,
    pub tty: bool,
    /// `--cap`: capabilities added to the bounding, effective, permitted and ambient sets
    /// (runc's exec adds to ambient only where the inheritable set is given; the kernel
    /// keeps an ambient capability only if it is inheritable, so that is the same).
    pub caps: &'a [String],
    /// `--no-new-privs`.
    pub no_new_privs: bool,
}

/// Builds the exec request.
pub fn exec_spec(
    g: &Globals,
    id: &str,
    process_file: Option<&Path>,
    o: &ExecOverrides<'_>,
) -> Result<ExecSpec, OciError> {
    let ExecOverrides {
        args,
        env,
        cwd,
        user,
        tty,
        caps,
        no_new_privs,
    } = *o;
    let container_process = || -> Result<oci_spec::runtime::Process, OciError> {
        let rec = state::load(&g.root, id)?
            .ok_or_else(|| OciError::State(format!("container {id} is still being created")))?;
        let spec = spec::load(&rec.bundle)?;
        spec.process()
            .clone()
            .ok_or_else(|| OciError::Invalid("config.json: process: missing".into()))
    };
    let p: oci_spec::runtime::Process = match process_file {
        Some(f) => {
            let bytes =
                std::fs::read(f).map_err(|e| OciError::io(format!("{}", f.display()), e))?;
            spec::parse_process_json(&bytes, f)?
        }
        None => container_process()?,
    };
    let mut bp = spec::process(&p);
    if process_file.is_some() && (bp.capabilities.is_none() || bp.rlimits.is_empty()) {
        // runc's exec falls back to the container's capabilities (finalizeNamespace) and
        // resource limits (a process without rlimits takes the container's).
        let container = container_process()?;
        if bp.capabilities.is_none() {
            bp.capabilities = spec::capabilities(&container);
        }
        if bp.rlimits.is_empty() {
            bp.rlimits = spec::rlimits(&container);
        }
    }
    if !caps.is_empty() {
        let c = bp.capabilities.get_or_insert_with(Default::default);
        let mut unknown = Vec::new();
        for name in caps {
            match boot::caps::number(name) {
                Some(n) => {
                    let bit = 1u64 << n;
                    c.bounding |= bit;
                    c.effective |= bit;
                    c.permitted |= bit;
                    c.ambient |= bit;
                }
                None => unknown.push(name.as_str()),
            }
        }
        if !unknown.is_empty() {
            // As runc: a warning, and the process runs without them.
            tracing::warn!(
                "--cap: ignoring unknown or unavailable capabilities: [{}]",
                unknown.join(", ")
            );
        }
    }
    if no_new_privs {
        bp.no_new_privileges = true;
    }
    if process_file.is_none() {
        if args.is_empty() {
            return Err(OciError::Invalid("exec: no command given".into()));
        }
        bp.args = args.to_vec();
        bp.env.extend(env.iter().cloned());
        if let Some(c) = cwd {
            bp.cwd = c.to_string();
        }
        if let Some(u) = user {
            let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
            bp.uid = uid
                .parse()
                .map_err(|_| OciError::Invalid(format!("--user {u}: expected UID[:GID]")))?;
            bp.gid = gid
                .parse()
                .map_err(|_| OciError::Invalid(format!("--user {u}: expected UID[:GID]")))?;
        }
    }
    if bp.args.is_empty() {
        return Err(OciError::Invalid("process: args must not be empty".into()));
    }
    Ok(ExecSpec {
        terminal: tty || p.terminal().unwrap_or(false),
        console_size: control::ConsoleSize::from_spec(&p),
        request: Request::Exec {
            args: bp.args,
            env: bp.env,
            cwd: bp.cwd,
            uid: bp.uid,
            gid: bp.gid,
            additional_gids: bp.additional_gids,
            capabilities: bp.capabilities.map(Into::into),
            no_new_privileges: bp.no_new_privileges,
            rlimits: bp.rlimits,
        },
    })
}

/// Sends an exec to the sandbox with our stdio (or a new pty's slave, its master sent to
/// `console`), reports the sandbox pid on `ready` once it runs, forwards the usual signals,
/// and returns its exit status.
pub fn exec_session(
    g: &Globals,
    id: &str,
    spec: &ExecSpec,
    console: Option<&Path>,
    ready: Option<OwnedFd>,
) -> Result<i32, OciError> {
    let report = |ready: &Option<OwnedFd>, msg: &str| {
        if let Some(fd) = ready {
            // SAFETY: writing a buffer to a pipe we own.
            unsafe { libc::write(fd.as_raw_fd(), msg.as_ptr().cast(), msg.len()) };
        }
    };
    let result = (|| {
        let rec = state::load(&g.root, id)?
            .ok_or_else(|| OciError::State(format!("container {id} is still being created")))?;
        if !state::alive(&rec) {
            return Err(OciError::State("cannot exec in a stopped container".into()));
        }
        let pty = if spec.terminal {
            let console = console.ok_or_else(|| {
                OciError::Invalid("a terminal was asked for but no --console-socket given".into())
            })?;
            let slave = control::open_console(console, spec.console_size)?;
            if ready.is_some() {
                // A detached exec's stdio is the caller's output pipe, read to the end.
                crate::sandbox::null_stdio();
            }
            Some(slave)
        } else {
            None
        };
        let fds: Vec<RawFd> = match &pty {
            Some(s) => vec![s.as_raw_fd(); 3],
            None => vec![0, 1, 2],
        };
        let dir = state::dir(&g.root, id);
        let (sock, reply) = control::call(&dir, &spec.request, &fds)?;
        drop(pty);
        let Reply::Started { pid } = reply else {
            return Err(OciError::Sandbox("unexpected reply to exec".into()));
        };
        Ok((sock, pid, dir))
    })();
    let (sock, pid, dir) = match result {
        Ok(r) => r,
        Err(e) => {
            report(&ready, &format!("error:{e}"));
            return Err(e);
        }
    };
    report(&ready, &format!("ok {pid}"));
    drop(ready);
    forward_signals(dir, pid);
    loop {
        match control::recv::<Reply>(&sock)? {
            Some((Reply::Exited { status }, _)) => return Ok(status),
            Some(_) => continue,
            None => return Err(OciError::Sandbox("the sandbox ended".into())),
        }
    }
}

/// Passes the signals a process usually gets (TERM, INT, HUP, QUIT, USR1, USR2) on to
/// process `pid` of the sandbox.
fn forward_signals(dir: PathBuf, pid: i32) {
    use nix::sys::signal::{SigSet, Signal};
    let mut set = SigSet::empty();
    for s in [
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGHUP,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
    ] {
        set.add(s);
    }
    if set.thread_block().is_err() {
        return;
    }
    let _ = std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            let Ok(sig) = set.wait() else { return };
            let _ = control::call(
                &dir,
                &Request::Signal {
                    signo: sig as i32,
                    all: false,
                    pid: Some(pid),
                },
                &[],
            );
        });
}

/// `exec --detach`: a process of ours in a new session stands for the exec'd one (the shim
/// waits on its pid); returns that pid once the process runs.
pub fn exec_detached(
    g: &Globals,
    id: &str,
    process_json: &str,
    console: Option<&Path>,
) -> Result<i32, OciError> {
    let (read, write) = pipe()?;
    let mut args: Vec<OsString> = vec![
        "exec-proxy".into(),
        "--ready-fd".into(),
        write.as_raw_fd().to_string().into(),
        "--request".into(),
        process_json.into(),
    ];
    if let Some(c) = console {
        args.push("--console-socket".into());
        args.push(c.into());
    }
    args.push(id.into());
    let mut child = spawn_self(g, &args, write.as_raw_fd())?;
    drop(write);
    match read_report(read) {
        Ok(_) => Ok(child.id() as i32),
        Err(e) => {
            let _ = child.wait();
            Err(e)
        }
    }
}

/// Serialises an exec spec for the exec proxy.
pub fn exec_spec_json(spec: &ExecSpec) -> String {
    serde_json::json!({
        "terminal": spec.terminal,
        "console_size": spec.console_size,
        "request": spec.request,
    })
    .to_string()
}

/// Reads what [`exec_spec_json`] wrote.
pub fn exec_spec_from_json(s: &str) -> Result<ExecSpec, OciError> {
    #[derive(serde::Deserialize)]
    struct Wire {
        terminal: bool,
        #[serde(default)]
        console_size: Option<control::ConsoleSize>,
        request: Request,
    }
    let w: Wire = serde_json::from_str(s).map_err(|e| OciError::Invalid(e.to_string()))?;
    Ok(ExecSpec {
        terminal: w.terminal,
        console_size: w.console_size,
        request: w.request,
    })
}

/// Waits for our child sandbox (for `run` without `--detach`): its exit status.
pub fn wait_child(mut child: SandboxChild) -> i32 {
    child.wait()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_by_name_and_number() {
        assert_eq!(parse_signal("TERM").unwrap(), 15);
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("15").unwrap(), 15);
        assert_eq!(parse_signal("kill").unwrap(), 9);
        assert_eq!(parse_signal("SIGRTMIN+2").unwrap(), 36);
        for bad in ["0", "65", "NOPE", "", "-1"] {
            assert!(parse_signal(bad).is_err(), "{bad}");
        }
    }
}

#[cfg(test)]
mod duration_tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("200ms").unwrap(), Duration::from_millis(200));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        for bad in ["", "5", "s", "0s", "-1s", "5x", "1e9h", "1..2s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
