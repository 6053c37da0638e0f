//! OCI hooks, run as runc runs them: `path` with `args` (args[0] is argv[0]) and `env`, the
//! container's state JSON on stdin, killed after `timeout` seconds; a non-zero exit is an
//! error naming the hook.

use std::io::Write;
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

/// Runs one hook with `state` on its stdin.
pub fn run(hook: &Hook, state: &serde_json::Value) -> Result<(), OciError> {
    let path = hook.path();
    let mut cmd = Command::new(path);
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
    let mut child = cmd
        .spawn()
        .map_err(|e| OciError::Hook(format!("{shown}: {e}")))?;
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

/// Runs the hooks of `point` in order; the first failure stops them.
pub fn run_all(
    spec: &oci_spec::runtime::Spec,
    point: Point,
    state: &serde_json::Value,
) -> Result<(), OciError> {
    for h in of(spec, point) {
        run(&h, state).map_err(|e| match e {
            OciError::Hook(m) => OciError::Hook(format!("{point:?} hook {m}")),
            e => e,
        })?;
    }
    Ok(())
}
