//! Hostile-input robustness of the sentry's system call layer.
//!
//! `tests/robustness/syscall_fuzz.c` makes thousands of raw system calls with
//! garbage arguments (random numbers, edge values, pointers into a scratch
//! region and across its end into an unmapped guard page, a read-only page,
//! kernel and non-canonical addresses, NULL, the KVM platform's own pages —
//! trampoline, shared page, doorbell, PVM page, the supervisor stubs, IDT,
//! GDT and stacks — and ranges straddling the end of user space into them),
//! chosen by a PRNG from a seed. Memory-management calls are also aimed at
//! the platform's pages; an mmap or mremap that returns one fails the run.
//! Everything a guest passes is untrusted: the sentry may answer with errnos,
//! or kill the program with a fault signal as Linux would, but it must never
//! panic, fail (runsc exit 125), die, or hang.
//!
//! For every seed, each build (glibc and musl) runs under `runsc do` with
//! stdin /dev/null in an empty scratch directory (which the sandbox sees on
//! its read-only view of the host); every second seed moves into the
//! sandbox's private /tmp first (`SYSCALL_FUZZ_CHDIR=/tmp`), so that the
//! fuzzer's relative paths create, rename, truncate and remove real files on
//! a writable file system. A run passes when it ends in
//! time with status 0 and stdout ending in "survived N calls". A guest killed
//! by SIGSEGV, SIGBUS, SIGILL, SIGFPE or SIGTRAP is accepted but reported
//! loudly. Anything else fails the test: the report gives the seed, the exact
//! command to reproduce, and the last system call made (found by re-running
//! the seed with the fuzzer's logging on; the call sequence depends only on
//! the seed).
//!
//! Knobs: `SYSCALL_FUZZ_SEEDS=1,2,3` and `SYSCALL_FUZZ_CALLS=N` replace the
//! default seeds and call count (for longer local runs); `RUNSC` and
//! `RUNSC_FLAGS` as for the conformance tests.

use conformance::*;
use std::fmt::Write as _;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

const DEFAULT_SEEDS: [u64; 8] = [
    1,
    2,
    3,
    4,
    0x5eed,
    0xdead_beef,
    31337,
    0x0123_4567_89ab_cdef,
];
const DEFAULT_CALLS: u64 = 3000;
/// A run takes well under a second; anything near this is a hang.
const RUN_TIMEOUT: Duration = Duration::from_secs(30);

/// Signals a guest may legitimately die of when it passes garbage to the kernel.
const FAULT_SIGNALS: [(i32, &str); 5] = [
    (4, "SIGILL"),
    (5, "SIGTRAP"),
    (7, "SIGBUS"),
    (8, "SIGFPE"),
    (11, "SIGSEGV"),
];

fn seeds() -> Vec<u64> {
    match std::env::var("SYSCALL_FUZZ_SEEDS") {
        Ok(s) if !s.trim().is_empty() => s
            .split(',')
            .map(|x| {
                let x = x.trim();
                let parsed = match x.strip_prefix("0x") {
                    Some(h) => u64::from_str_radix(h, 16),
                    None => x.parse(),
                };
                parsed.unwrap_or_else(|e| panic!("bad seed {x:?} in SYSCALL_FUZZ_SEEDS: {e}"))
            })
            .collect(),
        _ => DEFAULT_SEEDS.to_vec(),
    }
}

fn calls() -> u64 {
    match std::env::var("SYSCALL_FUZZ_CALLS") {
        Ok(s) if !s.trim().is_empty() => s
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("bad SYSCALL_FUZZ_CALLS {s:?}: {e}")),
        _ => DEFAULT_CALLS,
    }
}

fn source() -> PathBuf {
    workspace_root()
        .join("tests")
        .join("robustness")
        .join("syscall_fuzz.c")
}

fn mtime(p: &Path) -> Option<SystemTime> {
    fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// Builds syscall_fuzz.c into `target/robustness/{glibc,musl}/syscall_fuzz`
/// (only when the source is newer). No stack protector: the fuzzer sets the
/// thread pointer to garbage for a moment, and a canary check would read it.
fn build_fuzzer(libc: Libc) -> PathBuf {
    let src = source();
    let dir = target_dir().join("robustness").join(libc.name());
    fs::create_dir_all(&dir).expect("create build dir");
    let out = dir.join("syscall_fuzz");
    if let (Some(o), Some(i)) = (mtime(&out), mtime(&src)) {
        if o >= i {
            return out;
        }
    }
    let compiler = match libc {
        Libc::Glibc => "gcc",
        Libc::Musl => "musl-gcc",
    };
    let tmp = dir.join(format!(".syscall_fuzz.tmp.{}", std::process::id()));
    let output = Command::new(compiler)
        .args(["-static", "-O2", "-Wall", "-fno-stack-protector", "-o"])
        .arg(&tmp)
        .arg(&src)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `{compiler}` ({e}); install gcc and musl-tools (`.ci/run` does)")
        });
    if !output.status.success() {
        let _ = fs::remove_file(&tmp);
        panic!(
            "building {} with {compiler} failed:\n{}{}",
            src.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    fs::rename(&tmp, &out).expect("rename built fuzzer");
    out
}

/// One run's parameters.
#[derive(Clone, Copy)]
struct Run<'a> {
    libc: Libc,
    prog: &'a Path,
    seed: u64,
    calls: u64,
    /// Move into the sandbox's private /tmp before fuzzing.
    in_tmp: bool,
}

impl Run<'_> {
    fn label(&self) -> String {
        format!(
            "syscall_fuzz [{}] seed={} calls={} cwd={}",
            self.libc.name(),
            self.seed,
            self.calls,
            if self.in_tmp {
                "/tmp (sandbox tmpfs)"
            } else {
                "scratch dir (read-only host fs)"
            }
        )
    }

    /// `runsc do -- fuzzer SEED CALLS [v]`, in `cwd`, told it is sandboxed.
    fn command(&self, verbose: bool, cwd: &Path) -> Command {
        let mut args = vec![self.seed.to_string(), self.calls.to_string()];
        if verbose {
            args.push("v".into());
        }
        let mut cmd = runsc_do_command(self.prog, &args);
        cmd.env("SYSCALL_FUZZ_SANDBOXED", "1")
            .env("PWD", cwd)
            .current_dir(cwd);
        if self.in_tmp {
            cmd.env("SYSCALL_FUZZ_CHDIR", "/tmp");
        }
        cmd
    }

    fn reproduce_line(&self) -> String {
        let flags = runsc_flags().join(" ");
        format!(
            "reproduce: cd $(mktemp -d) && SYSCALL_FUZZ_SANDBOXED=1 {}{} do {flags}{}-- {} {} {} v </dev/null | grep -a '^@' | tail",
            if self.in_tmp { "SYSCALL_FUZZ_CHDIR=/tmp " } else { "" },
            runsc_path().display(),
            if flags.is_empty() { "" } else { " " },
            self.prog.display(),
            self.seed,
            self.calls,
        )
    }
}

/// System call names from docs/syscalls.md (generated from the sentry's table).
fn syscall_name(nr: u64) -> String {
    let table =
        fs::read_to_string(workspace_root().join("docs").join("syscalls.md")).unwrap_or_default();
    let low = nr as u32 as u64;
    for line in table.lines() {
        let cols: Vec<&str> = line.split('|').map(str::trim).collect();
        if cols.len() > 3 && cols[1].parse::<u64>().ok() == Some(low) {
            return if low == nr {
                cols[2].to_string()
            } else {
                format!("{} (low 32 bits; rax has garbage above)", cols[2])
            };
        }
    }
    "no such system call".into()
}

/// The fuzzer's verbose log: the last `@call` line, and its `@ret` if it returned.
fn last_call(stdout: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stdout);
    let mut last: Option<(String, Vec<String>)> = None;
    let mut ret: Option<String> = None;
    for line in text.lines() {
        // Fuzzed writes to stdout put garbage in front of a line sometimes.
        if let Some(pos) = line.find("@call ") {
            let words: Vec<String> = line[pos + 6..].split(' ').map(String::from).collect();
            if words.len() == 8 {
                last = Some((words[0].clone(), words));
                ret = None;
            }
        } else if let (Some(pos), Some((idx, _))) = (line.find("@ret "), &last) {
            let w: Vec<&str> = line[pos + 5..].split(' ').collect();
            if w.len() == 2 && w[0] == idx {
                ret = Some(w[1].to_string());
            }
        }
    }
    let (idx, w) = last?;
    let rax = u64::from_str_radix(w[1].trim_start_matches("0x"), 16).unwrap_or(u64::MAX);
    let mut s = format!(
        "call #{idx}: rax={} ({}) args=({})",
        w[1],
        syscall_name(rax),
        w[2..].join(", ")
    );
    match ret {
        Some(r) => {
            let _ = write!(s, " returned {r} (the end came after it returned)");
        }
        None => s.push_str(" did not return"),
    }
    Some(s)
}

struct Partial {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// shell-style status, None when killed for taking too long
    status: Option<i32>,
}

/// Runs `cmd` keeping whatever it printed even when it has to be killed.
fn run_keep_output(cmd: &mut Command, timeout: Duration) -> Result<Partial, String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot spawn {cmd:?}: {e}"))?;
    let collect = |mut r: Box<dyn Read + Send>| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let b = buf.clone();
        let t = std::thread::spawn(move || {
            let mut chunk = [0u8; 65536];
            while let Ok(n) = r.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                b.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        (buf, t)
    };
    let (out, out_t) = collect(Box::new(child.stdout.take().expect("piped")));
    let (err, err_t) = collect(Box::new(child.stderr.take().expect("piped")));
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().map_err(|e| e.to_string())? {
            break Some(shell_status(st));
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // Give the readers a moment to drain; a leftover holder of the pipes must not hang us.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !(out_t.is_finished() && err_t.is_finished()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let stdout = out.lock().unwrap().clone();
    let stderr = err.lock().unwrap().clone();
    Ok(Partial {
        stdout,
        stderr,
        status,
    })
}

/// Re-runs a seed with logging on, to name the last call made.
fn diagnose(run: &Run) -> String {
    let dir = ScratchDir::new("fuzz-verbose");
    let mut cmd = run.command(true, dir.path());
    match run_keep_output(&mut cmd, RUN_TIMEOUT) {
        Err(e) => format!("verbose re-run failed to start: {e}"),
        Ok(p) => {
            let how = match p.status {
                Some(s) => format!("exit status {s}"),
                None => format!("killed after {}s (hung)", RUN_TIMEOUT.as_secs()),
            };
            let call = last_call(&p.stdout).unwrap_or_else(|| "no call logged".into());
            let mut s = format!("verbose re-run: {how}; last {call}");
            if !p.stderr.is_empty() {
                let _ = write!(
                    s,
                    "\n  verbose re-run stderr: {}",
                    tail_text(&p.stderr, 1500)
                );
            }
            s
        }
    }
}

/// The end of `bytes` as text, with control bytes escaped (stdout is full of garbage).
fn tail_text(bytes: &[u8], max: usize) -> String {
    let start = bytes.len().saturating_sub(max);
    let mut s = String::new();
    if start > 0 {
        s.push_str("...");
    }
    for c in String::from_utf8_lossy(&bytes[start..]).chars() {
        match c {
            '\n' => s.push_str("\n    "),
            c if c.is_control() => {
                let _ = write!(s, "\\x{:02x}", c as u32);
            }
            c => s.push(c),
        }
    }
    s
}

fn stdout_survived(stdout: &[u8], calls: u64) -> bool {
    let want = format!("survived {calls} calls");
    String::from_utf8_lossy(stdout).lines().last() == Some(want.as_str())
}

/// One run: Ok(None) passed, Ok(Some(note)) passed with a guest fault worth
/// reporting, Err(report) failed.
fn check_seed(run: &Run) -> Result<Option<String>, String> {
    let label = run.label();
    let repro = run.reproduce_line();
    let calls = run.calls;
    let dir = ScratchDir::new("fuzz");
    let mut cmd = run.command(false, dir.path());
    let o = match run_with_timeout(&mut cmd, &Input::Null, RUN_TIMEOUT) {
        Ok(o) => o,
        Err(e) => {
            return Err(format!(
                "=== {label}: did not finish ===\n{}\n{}\n{repro}\n",
                clip(&e),
                diagnose(run)
            ))
        }
    };
    let stderr = String::from_utf8_lossy(&o.stderr);
    let fault = FAULT_SIGNALS
        .iter()
        .find(|(sig, _)| o.status == 128 + sig)
        .map(|(_, name)| *name);
    let problem = if let Some(sig) = o.signal {
        Some(format!("runsc itself was killed by signal {sig}"))
    } else if stderr.contains("panicked") {
        Some(format!("the sentry panicked (exit status {})", o.status))
    } else if o.status == 125 {
        Some("runsc failed (exit status 125: runtime error)".into())
    } else if o.status == 101 {
        Some("runsc exited 101 (a Rust panic)".into())
    } else if o.status == 0 && !stdout_survived(&o.stdout, calls) {
        Some(format!(
            "exit status 0, but stdout does not end in \"survived {calls} calls\""
        ))
    } else if o.status == 3 {
        Some("the fuzzer could not rebuild its scratch region with mmap(MAP_FIXED)/munmap/mprotect (exit 3)".into())
    } else if o.status == 4 {
        Some("a system call changed an argument register (exit 4)".into())
    } else if o.status == 5 {
        Some("mmap or mremap returned an address in the platform's reserved slot (exit 5)".into())
    } else if o.status != 0 && fault.is_none() {
        Some(format!("unexpected exit status {}", o.status))
    } else {
        None
    };
    if let Some(problem) = problem {
        return Err(format!(
            "=== {label}: {problem} ===\n  took {:?}\n  stdout tail: {}\n  stderr: {}\n  {}\n  {repro}\n",
            o.elapsed,
            tail_text(&o.stdout, 600),
            tail_text(&o.stderr, 3000),
            diagnose(run),
        ));
    }
    Ok(fault.map(|name| {
        format!(
            "{label}: the guest was killed by {name} (accepted: a fault, as Linux may deliver)\n  {}\n  {repro}",
            diagnose(run)
        )
    }))
}

fn fuzz(libc: Libc) {
    let name = format!("syscall_fuzz_{}", libc.name());
    if skip_without_kvm(&name) {
        return;
    }
    if native_only() {
        // Random system calls natively are not a test of anything here, and unsafe as root.
        loud(&format!(
            "*** SKIPPED: {name} only runs under runsc (CONFORMANCE_NATIVE_ONLY is set) ***"
        ));
        return;
    }
    runsc_path();
    let prog = build_fuzzer(libc);
    let calls = calls();
    let seeds = seeds();
    let start = Instant::now();
    let mut failures = Vec::new();
    for (i, &seed) in seeds.iter().enumerate() {
        let run = Run {
            libc,
            prog: &prog,
            seed,
            calls,
            in_tmp: i % 2 == 1,
        };
        match check_seed(&run) {
            Ok(None) => {}
            Ok(Some(note)) => loud(&note),
            Err(report) => failures.push(report),
        }
    }
    loud(&format!(
        "{name}: {} seeds x {calls} calls in {:.1?}",
        seeds.len(),
        start.elapsed()
    ));
    finish(&name, failures);
}

#[test]
fn syscall_fuzz_glibc() {
    fuzz(Libc::Glibc);
}

#[test]
fn syscall_fuzz_musl() {
    fuzz(Libc::Musl);
}

#[test]
fn last_call_parsing() {
    let log = b"\n@call 7 0x1 0x1 0x2 0x3 0x4 0x5 0x6\n@ret 7 -14\n\x01garbage\n@call 8 0x0 0x0 0x7f00 0x10 0x0 0x0 0x0\n";
    let s = last_call(log).unwrap();
    assert!(s.contains("call #8"), "{s}");
    assert!(s.contains("did not return"), "{s}");
    let log = b"@call 9 0x100000027 0x0 0x0 0x0 0x0 0x0 0x0\n@ret 9 -38\n";
    let s = last_call(log).unwrap();
    assert!(s.contains("returned -38"), "{s}");
    assert!(s.contains("getpid (low 32 bits"), "{s}");
    assert!(stdout_survived(b"\x00junk\nsurvived 5 calls\n", 5));
    assert!(!stdout_survived(b"survived 5 calls\nmore", 5));
}
