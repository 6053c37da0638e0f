//! Differential conformance harness for runsc-rs.
//!
//! Each C program in `tests/conformance/*.c` is built statically against glibc
//! and musl, run natively and under `runsc do -- PROGRAM ARGS`, and the two
//! runs must agree byte for byte on stdout and on the exit status (a death by
//! signal N counts as 128+N, the way a shell and `runsc` report it).
//!
//! Environment variables understood by the harness:
//! - `RUNSC`: path of the runsc binary (default `<target>/release/runsc`).
//! - `RUNSC_FLAGS`: extra flags for `runsc do`, split on whitespace, placed
//!   before `--` (e.g. `--debug --debug-log=/tmp/runsc-logs`).
//! - `CONFORMANCE_NATIVE_ONLY=1`: don't use runsc at all; run every program
//!   natively twice and compare the runs (checks that the programs are
//!   deterministic and pass on this host).
//! - `CARGO_TARGET_DIR`: honoured when locating `target/`.
//!
//! Without a usable `/dev/kvm` every sandbox test prints `SKIPPED: no usable
//! /dev/kvm` to stderr and returns: that is a skip, not a pass.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

pub mod elf;

/// How long any single run (native or sandboxed) may take before it is killed.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The C libraries every program is built against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Libc {
    Glibc,
    Musl,
}

impl Libc {
    pub const ALL: [Libc; 2] = [Libc::Glibc, Libc::Musl];

    pub fn name(self) -> &'static str {
        match self {
            Libc::Glibc => "glibc",
            Libc::Musl => "musl",
        }
    }

    fn compiler(self) -> &'static str {
        match self {
            Libc::Glibc => "gcc",
            Libc::Musl => "musl-gcc",
        }
    }
}

/// What a run's stdin is.
#[derive(Clone, Debug, Default)]
pub enum Input {
    /// `/dev/null`
    #[default]
    Null,
    /// a pipe fed with these bytes, then closed
    Bytes(Vec<u8>),
}

/// One invocation of a program: its arguments and stdin.
#[derive(Clone, Debug, Default)]
pub struct Case {
    pub args: Vec<String>,
    pub stdin: Input,
    /// How long each run may take, if not [`TIMEOUT`] (stress programs on a busy machine).
    pub timeout: Option<Duration>,
}

impl Case {
    pub fn args<I, S>(args: I) -> Case
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Case {
            args: args.into_iter().map(Into::into).collect(),
            stdin: Input::Null,
            timeout: None,
        }
    }

    /// Each run may take up to `timeout` (a stress program whose time grows with the load).
    pub fn with_timeout(mut self, timeout: Duration) -> Case {
        self.timeout = Some(timeout);
        self
    }

    pub fn with_stdin(mut self, data: impl Into<Vec<u8>>) -> Case {
        self.stdin = Input::Bytes(data.into());
        self
    }
}

/// The result of one finished run.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// exit code, or 128 + signal number for a death by signal
    pub status: i32,
    /// the signal that killed the process itself, if one did
    pub signal: Option<i32>,
    pub elapsed: Duration,
}

/// Exit code, or 128 + signal for a death by signal (what a shell shows).
pub fn shell_status(st: ExitStatus) -> i32 {
    match (st.code(), st.signal()) {
        (Some(c), _) => c,
        (None, Some(s)) => 128 + s,
        (None, None) => -1,
    }
}

/// The static busybox the OCI tests put in their bundles' root file systems.
pub const BUSYBOX: &str = "/bin/busybox";

/// Returns true (after printing a loud SKIPPED line) when test `test` cannot run because
/// the host has no static busybox to put in a bundle. A skip is not a pass.
pub fn skip_without_busybox(test: &str) -> bool {
    if Path::new(BUSYBOX).is_file() {
        return false;
    }
    loud(&format!(
        "*** SKIPPED: {test}: no {BUSYBOX} (apt-get install busybox-static) ***"
    ));
    true
}

// ---------------------------------------------------------------------------
// Locations

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = here.parent().expect("tests/ has a parent");
    root.canonicalize().unwrap_or_else(|_| root.to_path_buf())
}

/// `<workspace>/target`, or `$CARGO_TARGET_DIR`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => {
            let d = PathBuf::from(d);
            if d.is_absolute() {
                d
            } else {
                workspace_root().join(d)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// `tests/conformance`, where the C programs live.
pub fn source_dir() -> PathBuf {
    workspace_root().join("tests").join("conformance")
}

/// `target/conformance/{glibc,musl}`
pub fn build_dir(libc: Libc) -> PathBuf {
    target_dir().join("conformance").join(libc.name())
}

/// The directory every run uses as its working directory (and `$PWD`).
pub fn run_dir() -> PathBuf {
    let d = target_dir().join("conformance").join("cwd");
    fs::create_dir_all(&d).expect("create target/conformance/cwd");
    d.canonicalize().expect("canonicalize run dir")
}

/// The runsc binary: `$RUNSC`, or `<target>/release/runsc`. Panics with
/// instructions when it does not exist.
pub fn runsc_path() -> PathBuf {
    let p = match std::env::var_os("RUNSC") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => target_dir().join("release").join("runsc"),
    };
    if !p.is_file() {
        panic!(
            "runsc not found at {}: build it first with `cargo build --release -p runsc` \
             (or point $RUNSC at a runsc binary)",
            p.display()
        );
    }
    p
}

/// True when the harness runs programs natively only (no runsc).
pub fn native_only() -> bool {
    matches!(
        std::env::var("CONFORMANCE_NATIVE_ONLY").as_deref(),
        Ok("1") | Ok("yes") | Ok("true")
    )
}

/// Checks that /dev/kvm can be opened read-write.
pub fn kvm_usable() -> Result<(), String> {
    fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .map(|_| ())
        .map_err(|e| format!("cannot open /dev/kvm read-write: {e}"))
}

/// The host pid of the sentry of a `runsc do` started as `pid`: its child, pid 1 of the
/// sandbox's own pid namespace (boot::confine), once it exists; `pid` itself when runsc
/// runs without namespaces (RUNSC_NO_NAMESPACES, or the host refused them: no child shows
/// up within 5 s, or `pid` ended).
pub fn sentry_pid(pid: u32) -> u32 {
    if std::env::var_os("RUNSC_NO_NAMESPACES").is_some_and(|v| v != "0" && !v.is_empty()) {
        return pid;
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        if let Some(c) = child_of(pid) {
            return c;
        }
        if !Path::new(&format!("/proc/{pid}")).exists() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    pid
}

/// Whether host uid `uid` is mapped in this process's user namespace (root of a user
/// namespace that maps only itself can't become `nobody`; the sentry then stays root).
pub fn uid_mapped(uid: u32) -> bool {
    let map = fs::read_to_string("/proc/self/uid_map").unwrap_or_default();
    boot::identity::in_map(&map, uid)
}

/// A child process of `pid` (from /proc/*/status PPid).
pub fn child_of(pid: u32) -> Option<u32> {
    fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let n: u32 = e.file_name().to_str()?.parse().ok()?;
        let status = fs::read_to_string(e.path().join("status")).ok()?;
        let ppid: u32 = status
            .lines()
            .find_map(|l| l.strip_prefix("PPid:"))?
            .trim()
            .parse()
            .ok()?;
        (ppid == pid).then_some(n)
    })
}

/// Writes a line straight to the process's stderr. Unlike `eprintln!`, this
/// is not captured by the test runner, so it shows even for passing tests.
pub fn loud(msg: &str) {
    let _ = std::io::stderr().write_all(format!("{msg}\n").as_bytes());
}

/// Returns true (after printing a loud SKIPPED line) when this test cannot
/// run because there is no usable /dev/kvm. A skip is not a pass.
pub fn skip_without_kvm(test: &str) -> bool {
    if native_only() {
        return false;
    }
    match kvm_usable() {
        Ok(()) => false,
        Err(e) => {
            loud(&format!(
                "*** SKIPPED: no usable /dev/kvm ({e}): test `{test}` did NOT run; \
                 this is a skip, not a pass ***"
            ));
            true
        }
    }
}

// ---------------------------------------------------------------------------
// Building the C programs

fn mtime(p: &Path) -> Option<SystemTime> {
    fs::metadata(p).and_then(|m| m.modified()).ok()
}

static BUILD_LOCK: Mutex<()> = Mutex::new(());

/// Builds `tests/conformance/NAME.c` with `gcc -static -O2` (glibc) or
/// `musl-gcc -static -O2` (musl) into `target/conformance/{glibc,musl}/NAME`,
/// unless the binary is newer than the source and `conf.h`. Returns its
/// absolute path. Panics (with the compiler's output) on failure.
pub fn build(name: &str, libc: Libc) -> PathBuf {
    let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let src = source_dir().join(format!("{name}.c"));
    assert!(
        src.is_file(),
        "no such conformance program: {}",
        src.display()
    );
    let dir = build_dir(libc);
    fs::create_dir_all(&dir).expect("create build dir");
    let out = dir.join(name);
    // The program and every shared header (conf.h, net.h, sysctl.h...): a changed header
    // rebuilds the programs.
    let headers = fs::read_dir(source_dir())
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "h"))
                .filter_map(|p| mtime(&p))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let newest_input = headers.into_iter().chain(mtime(&src)).max();
    if let (Some(o), Some(i)) = (mtime(&out), newest_input) {
        if o >= i {
            return out;
        }
    }
    // Compile to a temporary name and rename, so a concurrent reader (another
    // test process) never sees a half-written binary.
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = Command::new(libc.compiler())
        .args(["-static", "-O2", "-Wall", "-o"])
        .arg(&tmp)
        .arg(&src)
        .arg("-lm")
        .output();
    let output = match result {
        Ok(o) => o,
        Err(e) => panic!(
            "cannot run `{}` to build {} ({e}); install gcc and musl-tools (`.ci/run` does)",
            libc.compiler(),
            src.display()
        ),
    };
    if !output.status.success() {
        let _ = fs::remove_file(&tmp);
        panic!(
            "building {} with {} failed:\n{}{}",
            src.display(),
            libc.compiler(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    fs::rename(&tmp, &out).expect("rename built program");
    out
}

// ---------------------------------------------------------------------------
// Running

/// The fixed environment every run gets (after `env_clear`).
pub fn fixed_env() -> Vec<(String, String)> {
    vec![
        ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
        ("PWD".into(), run_dir().to_string_lossy().into_owned()),
        ("HOME".into(), "/nonexistent-conformance-home".into()),
        ("CONF_A".into(), "1".into()),
        ("CONF_B".into(), "two words".into()),
    ]
}

extern "C" {
    fn setrlimit(resource: i32, rlim: *const [u64; 2]) -> i32;
}
const RLIMIT_CORE: i32 = 4;

/// Prepares a command: fixed env, run dir, no core dumps.
fn prepare(cmd: &mut Command) {
    cmd.env_clear().envs(fixed_env()).current_dir(run_dir());
    // SAFETY: setrlimit is async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(|| {
            let zero = [0u64, 0u64];
            setrlimit(RLIMIT_CORE, &zero);
            Ok(())
        });
    }
}

fn spawn_reader<R: Read + Send + 'static>(mut r: R) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        let _ = tx.send(buf);
    });
    rx
}

/// Runs `cmd` with `stdin`, capturing stdout and stderr, killing it after
/// `timeout`. Errors describe a spawn failure or a timeout.
/// Spawns `cmd`, retrying while exec says ETXTBSY. A test that has just written an
/// executable (a script in a scratch directory) closes its descriptor before running it, but
/// another test thread of this process may fork in between and hold a copy of that write
/// descriptor until its child execs; Linux then refuses to exec the file for that moment.
/// The window is the few microseconds between a sibling's fork and its exec, so a short
/// bounded retry is the fix (Go's os/exec tests do the same).
pub fn spawn_past_busy_text(cmd: &mut Command) -> std::io::Result<Child> {
    let mut tries = 0;
    loop {
        match cmd.spawn() {
            Ok(child) => return Ok(child),
            Err(e) if e.kind() == std::io::ErrorKind::ExecutableFileBusy && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}

pub fn run_with_timeout(
    cmd: &mut Command,
    stdin: &Input,
    timeout: Duration,
) -> Result<Outcome, String> {
    cmd.stdin(match stdin {
        Input::Null => Stdio::null(),
        Input::Bytes(_) => Stdio::piped(),
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child: Child =
        spawn_past_busy_text(cmd).map_err(|e| format!("cannot spawn {cmd:?}: {e}"))?;
    if let (Input::Bytes(data), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let data = data.clone();
        // A program that stops reading early closes the pipe: ignore EPIPE.
        std::thread::spawn(move || {
            let _ = pipe.write_all(&data);
        });
    }
    let out_rx = spawn_reader(child.stdout.take().expect("stdout piped"));
    let err_rx = spawn_reader(child.stderr.take().expect("stderr piped"));
    let mut nap = Duration::from_millis(1);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => return Err(format!("waiting for {cmd:?}: {e}")),
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            let partial = out_rx
                .recv_timeout(Duration::from_secs(1))
                .unwrap_or_default();
            let err = err_rx
                .recv_timeout(Duration::from_secs(1))
                .unwrap_or_default();
            return Err(format!(
                "TIMEOUT: {cmd:?} did not finish in {}s and was killed\n--- stdout so far ---\n{}\n--- stderr so far ---\n{}",
                timeout.as_secs(),
                clip(&String::from_utf8_lossy(&partial)),
                clip(&String::from_utf8_lossy(&err)),
            ));
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(10));
    };
    let elapsed = start.elapsed();
    // The pipes close when the process exits, unless it left a descendant
    // holding them: don't wait forever for that.
    let grace = Duration::from_secs(5);
    let stdout = out_rx
        .recv_timeout(grace)
        .map_err(|_| format!("{cmd:?} exited but its stdout stayed open (a leftover child?)"))?;
    let stderr = err_rx
        .recv_timeout(grace)
        .map_err(|_| format!("{cmd:?} exited but its stderr stayed open (a leftover child?)"))?;
    Ok(Outcome {
        stdout,
        stderr,
        status: shell_status(status),
        signal: status.signal(),
        elapsed,
    })
}

/// Runs `prog args` natively.
pub fn run_native(prog: &Path, case: &Case) -> Result<Outcome, String> {
    let mut cmd = Command::new(prog);
    cmd.args(&case.args);
    prepare(&mut cmd);
    run_with_timeout(&mut cmd, &case.stdin, case.timeout.unwrap_or(TIMEOUT))
}

/// Extra flags for `runsc do` from `$RUNSC_FLAGS`.
pub fn runsc_flags() -> Vec<String> {
    std::env::var("RUNSC_FLAGS")
        .unwrap_or_default()
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// The command `runsc do [RUNSC_FLAGS] -- prog args...` (not yet run).
pub fn runsc_do_command<S: AsRef<OsStr>>(prog: &Path, args: &[S]) -> Command {
    runsc_do_command_with::<S, &str>(&[], prog, args)
}

/// [`runsc_do_command`] with extra `runsc do` flags (`-v HOSTDIR:/PATH`) before `--`.
pub fn runsc_do_command_with<S: AsRef<OsStr>, F: AsRef<OsStr>>(
    flags: &[F],
    prog: &Path,
    args: &[S],
) -> Command {
    let mut cmd = Command::new(runsc_path());
    cmd.arg("do")
        .args(runsc_flags())
        .args(flags)
        .arg("--")
        .arg(prog)
        .args(args);
    prepare(&mut cmd);
    cmd
}

/// Runs `runsc do -- prog args` with the same env, cwd and stdin as native.
pub fn run_sandboxed(prog: &Path, case: &Case) -> Result<Outcome, String> {
    let mut cmd = runsc_do_command(prog, &case.args);
    run_with_timeout(&mut cmd, &case.stdin, case.timeout.unwrap_or(TIMEOUT))
}

// ---------------------------------------------------------------------------
// Comparing

const CLIP_LINES: usize = 200;

/// At most CLIP_LINES lines of `s`.
pub fn clip(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    if lines.len() <= CLIP_LINES {
        return s.to_string();
    }
    let mut out = lines[..CLIP_LINES].join("\n");
    let _ = write!(out, "\n... ({} more lines)", lines.len() - CLIP_LINES);
    out
}

/// A unified-diff-like line view of `a` (native, "-") against `b`
/// (sandbox, "+"), with a little context.
pub fn diff_lines(a: &str, b: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    // (tag, line) with tag ' ', '-', '+'
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (n, m) = (a.len(), b.len());
    if n.saturating_mul(m) <= 4_000_000 {
        // LCS table from the end.
        let mut t = vec![0u32; (n + 1) * (m + 1)];
        let w = m + 1;
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                t[i * w + j] = if a[i] == b[j] {
                    t[(i + 1) * w + j + 1] + 1
                } else {
                    t[(i + 1) * w + j].max(t[i * w + j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && a[i] == b[j] {
                ops.push((' ', a[i]));
                i += 1;
                j += 1;
            } else if j < m && (i == n || t[i * w + j + 1] >= t[(i + 1) * w + j]) {
                ops.push(('+', b[j]));
                j += 1;
            } else {
                ops.push(('-', a[i]));
                i += 1;
            }
        }
    } else {
        for k in 0..n.max(m) {
            match (a.get(k), b.get(k)) {
                (Some(x), Some(y)) if x == y => ops.push((' ', x)),
                (x, y) => {
                    if let Some(x) = x {
                        ops.push(('-', x));
                    }
                    if let Some(y) = y {
                        ops.push(('+', y));
                    }
                }
            }
        }
    }
    // Print changed lines with 2 lines of context, eliding the rest.
    let changed: Vec<bool> = ops.iter().map(|(t, _)| *t != ' ').collect();
    let near = |k: usize| {
        (k.saturating_sub(2)..=(k + 2).min(ops.len().saturating_sub(1))).any(|x| changed[x])
    };
    let mut out = String::new();
    let mut elided = false;
    let mut shown = 0;
    for (k, (tag, line)) in ops.iter().enumerate() {
        if near(k) {
            if shown >= 2 * CLIP_LINES {
                out.push_str("... (diff clipped)\n");
                break;
            }
            let _ = writeln!(out, "{tag} {line}");
            shown += 1;
            elided = false;
        } else if !elided {
            out.push_str("  ...\n");
            elided = true;
        }
    }
    out
}

/// Describes a run for messages: `NAME [libc] args=[..]`.
pub fn describe(name: &str, libc: Libc, case: &Case) -> String {
    let mut s = if case.args.len() <= 8 {
        format!("{name} [{}] args={:?}", libc.name(), case.args)
    } else {
        format!(
            "{name} [{}] args={:?}... ({} args)",
            libc.name(),
            &case.args[..4],
            case.args.len()
        )
    };
    if let Input::Bytes(b) = &case.stdin {
        let _ = write!(s, " stdin={} bytes", b.len());
    }
    s
}

/// Compares two outcomes; on mismatch returns a full report.
pub fn compare(
    label: &str,
    native: &Outcome,
    sandbox: &Outcome,
    sandbox_name: &str,
) -> Result<(), String> {
    if native.stdout == sandbox.stdout && native.status == sandbox.status {
        return Ok(());
    }
    let ns = String::from_utf8_lossy(&native.stdout);
    let ss = String::from_utf8_lossy(&sandbox.stdout);
    let mut r = format!("=== MISMATCH: {label} ===\n");
    let _ = writeln!(
        r,
        "exit status: native {}, {sandbox_name} {}{}",
        native.status,
        sandbox.status,
        if native.status == sandbox.status {
            " (same)"
        } else {
            "  <-- differs"
        }
    );
    if native.stdout != sandbox.stdout {
        let _ = writeln!(r, "--- stdout diff (- native, + {sandbox_name}) ---");
        r.push_str(&diff_lines(&ns, &ss));
        if ns.lines().eq(ss.lines()) {
            r.push_str(
                "(lines equal: the difference is in line endings or a missing final newline)\n",
            );
        }
    }
    let _ = writeln!(r, "--- native stdout ---\n{}", clip(&ns));
    let _ = writeln!(r, "--- {sandbox_name} stdout ---\n{}", clip(&ss));
    if !native.stderr.is_empty() {
        let _ = writeln!(
            r,
            "--- native stderr ---\n{}",
            clip(&String::from_utf8_lossy(&native.stderr))
        );
    }
    let _ = writeln!(
        r,
        "--- {sandbox_name} stderr ---\n{}",
        clip(&String::from_utf8_lossy(&sandbox.stderr))
    );
    Err(r)
}

/// runsc reports the program's death by signal N as exit code 128+N, so
/// runsc itself dying by a signal is always a bug: returns a report then.
pub fn runsc_killed(label: &str, sandbox: &Outcome) -> Option<String> {
    if native_only() {
        return None;
    }
    sandbox.signal.map(|sig| {
        format!(
            "=== {label}: runsc itself was killed by signal {sig} ===\n--- sandbox stderr ---\n{}",
            clip(&String::from_utf8_lossy(&sandbox.stderr))
        )
    })
}

/// The cases of one program built for one libc: returns a failure report
/// per failing case (empty when all pass). Also records sandbox run times.
pub fn check_cases(
    name: &str,
    libc: Libc,
    prog: &Path,
    cases: &[Case],
    times: &mut Vec<Duration>,
) -> Vec<String> {
    let mut failures = Vec::new();
    for case in cases {
        let label = describe(name, libc, case);
        let native = match run_native(prog, case) {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("=== {label}: native run failed ===\n{e}"));
                continue;
            }
        };
        // A program reporting FAIL natively is a bug in the program (or this
        // host), not something the sandbox should be held to.
        if String::from_utf8_lossy(&native.stdout).contains(": FAIL") {
            failures.push(format!(
                "=== {label}: the program reports FAIL when run NATIVELY: fix the test program ===\n{}",
                clip(&String::from_utf8_lossy(&native.stdout))
            ));
            continue;
        }
        let (other, other_name) = if native_only() {
            (run_native(prog, case), "native rerun")
        } else {
            (run_sandboxed(prog, case), "sandbox")
        };
        let other = match other {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("=== {label}: {other_name} run failed ===\n{e}"));
                continue;
            }
        };
        times.push(other.elapsed);
        if let Some(f) = runsc_killed(&label, &other) {
            failures.push(f);
            continue;
        }
        if let Err(report) = compare(&label, &native, &other, other_name) {
            failures.push(report);
        }
    }
    failures
}

/// The body of one program's test: builds it for both libcs and runs every
/// case natively and sandboxed; panics with all mismatches at the end.
pub fn check_program(name: &str, cases: &[Case]) {
    if skip_without_kvm(name) {
        return;
    }
    if !native_only() {
        runsc_path();
    }
    let mut failures = Vec::new();
    let mut times = Vec::new();
    for libc in Libc::ALL {
        let prog = build(name, libc);
        failures.extend(check_cases(name, libc, &prog, cases, &mut times));
    }
    finish(name, failures);
}

/// Panics with the collected failure reports, if any.
pub fn finish(name: &str, failures: Vec<String>) {
    if failures.is_empty() {
        return;
    }
    let mut msg = format!("{name}: {} failing run(s)\n\n", failures.len());
    for f in &failures {
        msg.push_str(f);
        msg.push('\n');
    }
    panic!("{msg}");
}

// ---------------------------------------------------------------------------
// Scratch directories

/// A fresh directory under target/conformance, removed on drop.
pub struct ScratchDir(PathBuf);

impl ScratchDir {
    pub fn new(tag: &str) -> ScratchDir {
        static COUNTER: OnceLock<Mutex<HashMap<String, u32>>> = OnceLock::new();
        let n = {
            let mut m = COUNTER
                .get_or_init(Default::default)
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let c = m.entry(tag.to_string()).or_insert(0);
            *c += 1;
            *c
        };
        let p = target_dir()
            .join("conformance")
            .join(format!("scratch-{tag}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).expect("create scratch dir");
        ScratchDir(p.canonicalize().expect("canonicalize scratch dir"))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `name` with `data` and `mode`, returning its path.
    pub fn file(&self, name: &str, data: &[u8], mode: u32) -> PathBuf {
        let p = self.0.join(name);
        fs::write(&p, data).expect("write scratch file");
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).expect("chmod scratch file");
        p
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_script_still_open_for_writing_elsewhere_runs_once_it_is_closed() {
        // The CI failure this guards: a sibling thread's fork held a copy of the write
        // descriptor of a script just written, and its exec failed with ETXTBSY.
        let dir = ScratchDir::new("busy_text");
        let script = dir.file("busy.sh", b"#!/bin/sh\nexit 5\n", 0o755);
        let writer = std::fs::OpenOptions::new()
            .append(true)
            .open(&script)
            .unwrap();
        let held = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            drop(writer);
        });
        let o = run_with_timeout(&mut Command::new(&script), &Input::Null, TIMEOUT).unwrap();
        assert_eq!(o.status, 5);
        held.join().unwrap();
    }

    #[test]
    fn timeout_kills_the_run() {
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let start = Instant::now();
        let err = run_with_timeout(&mut cmd, &Input::Null, Duration::from_millis(200)).unwrap_err();
        assert!(err.contains("TIMEOUT"), "{err}");
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn stdin_is_fed_and_status_reported() {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "cat; exit 3"]);
        let o = run_with_timeout(&mut cmd, &Input::Bytes(b"abc\n".to_vec()), TIMEOUT).unwrap();
        assert_eq!(o.stdout, b"abc\n");
        assert_eq!(o.status, 3);
        assert_eq!(o.signal, None);
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "kill -SEGV $$"]);
        let o = run_with_timeout(&mut cmd, &Input::Null, TIMEOUT).unwrap();
        assert_eq!((o.status, o.signal), (139, Some(11)));
    }

    #[test]
    fn diff_marks_changed_lines() {
        let d = diff_lines("a\nb\nc\n", "a\nB\nc\nd\n");
        assert!(d.contains("- b"), "{d}");
        assert!(d.contains("+ B"), "{d}");
        assert!(d.contains("+ d"), "{d}");
        assert!(d.contains("  a"), "{d}");
    }
}
