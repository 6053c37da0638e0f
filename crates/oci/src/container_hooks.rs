//! startContainer hooks, run as the OCI spec places them: in the container, before its
//! process. Each is a process of the sandbox (the path resolved in the container's file
//! system, as the spec says), with the container process's user, capabilities and working
//! directory (runc runs them from its init, after switching to them), the hook's `args` and
//! `env`, the state JSON on its stdin, and killed after `timeout` seconds. Its output
//! (stdout and stderr) is kept for the error message.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use fs::vfs::MountNamespace;
use oci_spec::runtime::{Hook, Process};
use sentry::process::Kernel;
use sentry::procfs::ProcFs;

/// What the sandbox needs to run the bundle's startContainer hooks at `start`.
pub struct StartHooks {
    pub hooks: Vec<Hook>,
    /// The container's `process` (user, capabilities, cwd, rlimits).
    pub process: Process,
}

fn pipe() -> Result<(OwnedFd, OwnedFd), String> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: pipe2 made two new descriptors.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Runs one hook in the sandbox to its end: Err(message) if it could not start, failed or
/// timed out.
fn run_one(
    kernel: &Arc<Kernel>,
    ns: &Arc<MountNamespace>,
    procfs: &Arc<ProcFs>,
    process: &Process,
    hook: &Hook,
    state: &serde_json::Value,
) -> Result<(), String> {
    let path = hook.path().to_string_lossy().into_owned();
    let (stdin_r, stdin_w) = pipe()?;
    let (out_r, out_w) = pipe()?;
    let mut p = crate::spec::process(process);
    p.path = Some(path.clone());
    p.args = match hook.args() {
        Some(a) if !a.is_empty() => a.clone(),
        _ => vec![path.clone()],
    };
    p.env = hook.env().clone().unwrap_or_default();
    p.stdio = [Some(stdin_r), out_w.try_clone().ok(), Some(out_w)];
    let spec = boot::bundle::process_spec(ns, procfs, p).map_err(|e| e.to_string())?;
    let (pid, exited) = sentry::spawn_process(kernel, spec).map_err(|e| e.to_string())?;
    // Written from a thread: a hook that doesn't read its stdin must not hold us up.
    let text = state.to_string();
    std::thread::spawn(move || {
        let _ = std::fs::File::from(stdin_w).write_all(text.as_bytes());
    });
    let output = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::fs::File::from(out_r).read_to_string(&mut s);
        s
    });
    let limit = hook
        .timeout()
        .filter(|&t| t > 0)
        .map(|t| Duration::from_secs(t as u64));
    let status = match limit {
        None => exited.recv().map_err(|_| "the hook's process vanished")?,
        Some(limit) => match exited.recv_timeout(limit) {
            Ok(s) => s,
            Err(_) => {
                if let Some(g) = kernel.group(pid) {
                    g.send(sentry::signal_frame::SigInfo {
                        signo: libc::SIGKILL,
                        ..Default::default()
                    });
                }
                let _ = exited.recv();
                return Err("timed out".into());
            }
        },
    };
    let code = status.shell_status();
    if code == 0 {
        return Ok(());
    }
    let out = output.join().unwrap_or_default();
    let out = out.trim();
    Err(if out.is_empty() {
        format!("exit status {code}")
    } else {
        format!("exit status {code}, output: {out}")
    })
}

/// Runs the hooks in order, in the container; the first failure stops them.
pub fn run_all(
    kernel: &Arc<Kernel>,
    ns: &Arc<MountNamespace>,
    procfs: &Arc<ProcFs>,
    hooks: &StartHooks,
    state: &serde_json::Value,
) -> Result<(), String> {
    for hook in &hooks.hooks {
        run_one(kernel, ns, procfs, &hooks.process, hook, state).map_err(|e| {
            format!(
                "StartContainer hook {} (in the container): {e}",
                hook.path().display()
            )
        })?;
    }
    Ok(())
}
