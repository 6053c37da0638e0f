//! OCI hooks, run as runc runs them: `path` with `args` (args[0] is argv[0]) and `env`, the
//! container's state JSON on stdin, killed after `timeout` seconds; a non-zero exit is an
//! error naming the hook.
//!
//! Where they run: prestart, createRuntime, poststart and poststop on the host, in the
//! runtime's namespaces, as the spec says. createContainer hooks belong in the container's
//! namespaces: they run on the host (their path is the runtime's, as the spec says) in the
//! namespaces the sandbox process holds for the container, its user (if it has one of its
//! own), network, IPC and UTS namespaces ([`container_namespaces`]); not in its mount
//! namespace, whose root is empty: the container's mounts exist only in the sentry.
//! startContainer hooks run in the container itself, as processes of the sandbox
//! (`crate::container_hooks`). gVisor's runsc skips both with a warning.

use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

use crate::OciError;

/// The hook points of the runtime.
#[derive(Debug, Clone, Copy)]
pub enum Point {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

/// The hooks of `spec` at `point`.
pub fn of(spec: &oci_spec::runtime::Spec, point: Point) -> Vec<Hook> {
    let Some(h) = spec.hooks() else {
        return Vec::new();
    };
    #[allow(deprecated)]
    let list = match point {
        Point::Prestart => h.prestart(),
        Point::CreateRuntime => h.create_runtime(),
        Point::CreateContainer => h.create_container(),
        Point::StartContainer => h.start_container(),
        Point::Poststart => h.poststart(),
        Point::Poststop => h.poststop(),
    };
    list.clone().unwrap_or_default()
}

/// The namespaces of process `pid` (the sandbox process) that differ from ours, to join in
/// that order: user first, which gives the joiner its capabilities over the others.
pub fn container_namespaces(pid: i32) -> Result<Vec<OwnedFd>, OciError> {
    let mut out = Vec::new();
    for ns in ["user", "net", "ipc", "uts"] {
        let theirs = format!("/proc/{pid}/ns/{ns}");
        let ours = format!("/proc/self/ns/{ns}");
        let same = match (std::fs::metadata(&theirs), std::fs::metadata(&ours)) {
            (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
            (Err(e), _) | (_, Err(e)) => return Err(OciError::io(theirs, e)),
        };
        if !same {
            let f = std::fs::File::open(&theirs).map_err(|e| OciError::io(theirs, e))?;
            out.push(OwnedFd::from(f));
        }
    }
    Ok(out)
}

/// Runs one hook with `state` on its stdin, in the namespaces `join` (see
/// [`container_namespaces`]) if any.
pub fn run(hook: &Hook, state: &serde_json::Value, join: &[OwnedFd]) -> Result<(), OciError> {
    let path = hook.path();
    let mut cmd = Command::new(path);
    if !join.is_empty() {
        let fds: Vec<i32> = join.iter().map(AsRawFd::as_raw_fd).collect();
        // SAFETY: the closure makes only setns calls (async-signal-safe) on descriptors
        // opened before the fork, and allocates nothing.
        unsafe {
            cmd.pre_exec(move || {
                for &fd in &fds {
                    if libc::setns(fd, 0) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    }
    if let Some(args) = hook.args() {
        if let Some((arg0, rest)) = args.split_first() {
            cmd.arg0(arg0);
            cmd.args(rest);
        }
    }
    cmd.env_clear();
    for e in hook.env().iter().flatten() {
        if let Some((k, v)) = e.split_once('=') {
            cmd.env(k, v);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let shown = path.display().to_string();
    let mut child = cmd.spawn().map_err(|e| {
        let place = if join.is_empty() {
            ""
        } else {
            " (in the container's namespaces)"
        };
        OciError::Hook(format!("{shown}{place}: {e}"))
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that doesn't read its stdin is fine.
        let _ = stdin.write_all(state.to_string().as_bytes());
    }
    let deadline = hook
        .timeout()
        .filter(|&t| t > 0)
        .map(|t| Instant::now() + Duration::from_secs(t as u64));
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                if status.success() {
                    return Ok(());
                }
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                return Err(OciError::Hook(format!(
                    "{shown}: {status}{}{}",
                    if err.trim().is_empty() {
                        ""
                    } else {
                        ", stderr: "
                    },
                    err.trim()
                )));
            }
            Ok(None) => {}
            Err(e) => return Err(OciError::Hook(format!("{shown}: {e}"))),
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(OciError::Hook(format!("{shown}: timed out")));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Runs the hooks of `point` in order; the first failure stops them. createContainer hooks
/// join the namespaces of the sandbox process `state["pid"]`.
pub fn run_all(
    spec: &oci_spec::runtime::Spec,
    point: Point,
    state: &serde_json::Value,
) -> Result<(), OciError> {
    let hooks = of(spec, point);
    let join = match (point, state["pid"].as_i64()) {
        (Point::CreateContainer, Some(pid)) if !hooks.is_empty() => {
            container_namespaces(pid as i32)?
        }
        _ => Vec::new(),
    };
    for h in hooks {
        run(&h, state, &join).map_err(|e| match e {
            OciError::Hook(m) => OciError::Hook(format!("{point:?} hook {m}")),
            e => e,
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn namespaces_equal_to_ours_are_not_joined() {
        // A sandbox left in its caller's namespaces (unprivileged, or RUNSC_NO_NAMESPACES):
        // nothing to join, so a hook needs no privilege to run.
        assert!(container_namespaces(std::process::id() as i32)
            .unwrap()
            .is_empty());
    }

    /// A sandbox in a user namespace of its own (how an unprivileged caller gets the
    /// others): the hook joins it first, then its UTS namespace.
    #[test]
    fn a_hook_joins_a_user_namespace_first() {
        let unshare = Path::new("/usr/bin/unshare");
        if !unshare.exists() {
            eprintln!("*** SKIPPED: a_hook_joins_a_user_namespace_first: no unshare(1) ***");
            return;
        }
        let mut holder = Command::new(unshare)
            .args(["--user", "--map-root-user", "--uts", "sleep", "30"])
            .spawn()
            .unwrap();
        let pid = holder.id() as i32;
        let end = Instant::now() + Duration::from_secs(10);
        while std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() != "sleep\n"
        {
            if holder.try_wait().unwrap().is_some() || Instant::now() > end {
                eprintln!("*** SKIPPED: a_hook_joins...: no user namespace here ***");
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let want: Vec<String> = ["user", "uts"]
            .iter()
            .map(|n| {
                std::fs::read_link(format!("/proc/{pid}/ns/{n}"))
                    .map(|l| l.display().to_string())
                    .unwrap_or_default()
            })
            .collect();
        let join = container_namespaces(pid).unwrap();
        assert_eq!(join.len(), 2, "the user and UTS namespaces");
        let out = std::env::temp_dir().join(format!("runsc-hook-test-{}", std::process::id()));
        let hook: Hook = serde_json::from_value(serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!(
                "readlink /proc/self/ns/user /proc/self/ns/uts > {}", out.display()
            )],
        }))
        .unwrap();
        let result = run(&hook, &serde_json::json!({}), &join);
        let _ = holder.kill();
        let _ = holder.wait();
        result.unwrap();
        let got = std::fs::read_to_string(&out).unwrap();
        let _ = std::fs::remove_file(&out);
        assert_eq!(got.lines().collect::<Vec<_>>(), want);
    }
}
