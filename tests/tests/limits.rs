//! Limits (issue 13, item 7): a fork bomb under `runsc do --pids-limit` gets EAGAIN and a
//! memory hog past `--total-memory` gets ENOMEM (or is killed), while the host is
//! unaffected: the sentry's host threads and memory stay bounded, and the host can still
//! start processes. The workload (tests/conformance/limits_workload.c) only ever runs in
//! the sandbox. The OCI `linux.resources` limits are tests/tests/oci.rs
//! (`the_pids_limit_bounds_fork`, `the_memory_limit_bounds_the_sandbox`).

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use conformance::{build, runsc_path, sentry_pid, skip_without_kvm, Libc};

/// A status field of host process `pid` (a number, kB for memory), 0 if gone.
fn status_field(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs the workload with `args` under the `runsc do` flags `flags`, sampling the sentry's host
/// threads and memory (VmHWM, kB) and checking the host can still start a process meanwhile.
/// Returns (exit status, stdout, max threads, peak kB).
fn run_watched(flags: &[&str], args: &[&str]) -> (i32, String, u64, u64) {
    let prog = build("limits_workload", Libc::Musl);
    let mut child = Command::new(runsc_path())
        .arg("do")
        .args(flags)
        .arg("--")
        .arg(&prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("start runsc");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let sentry = sentry_pid(child.id());
    let (mut threads, mut peak) = (0, 0);
    let start = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        threads = threads.max(status_field(sentry, "Threads:"));
        peak = peak.max(status_field(sentry, "VmHWM:"));
        // The host is unaffected: it still starts processes.
        assert!(
            Command::new("/bin/true").status().unwrap().success(),
            "the host could not start /bin/true"
        );
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("the workload {args:?} did not end in 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = reader.join().unwrap();
    let status = conformance::shell_status(status);
    eprintln!("{args:?} under {flags:?}: status {status}, {threads} host threads at most, peak RSS {peak} kB, output:\n{out}");
    (status, out, threads, peak)
}

#[test]
fn fork_past_the_pids_limit_fails_with_eagain() {
    if skip_without_kvm("fork_past_the_pids_limit_fails_with_eagain") {
        return;
    }
    let (status, out, threads, _) = run_watched(&["--pids-limit=32"], &["fork"]);
    assert_eq!(status, 0, "{out}");
    // 32 tasks: the program and 31 children.
    assert_eq!(out, "forked 31: EAGAIN\n");
    assert!(threads < 32 + 40, "the sentry ran {threads} host threads");
}

#[test]
fn a_fork_bomb_is_held_by_the_pids_limit() {
    if skip_without_kvm("a_fork_bomb_is_held_by_the_pids_limit") {
        return;
    }
    let (status, out, threads, _) = run_watched(&["--pids-limit=64"], &["bomb", "3"]);
    assert_eq!(status, 0, "{out}");
    assert_eq!(out, "bomb: EAGAIN seen\n");
    assert!(threads < 64 + 40, "the sentry ran {threads} host threads");
}

#[test]
fn a_memory_hog_past_total_memory_gets_enomem_or_is_killed() {
    if skip_without_kvm("a_memory_hog_past_total_memory_gets_enomem_or_is_killed") {
        return;
    }
    let (status, out, _, peak_kb) = run_watched(&["--total-memory=64M"], &["mem"]);
    let last = out.lines().last().unwrap_or("");
    let mib: u64 = last
        .strip_prefix("mapped ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    let enomem = status == 0 && last.ends_with(": ENOMEM") && mib < 64;
    let killed = status == 128 + libc::SIGKILL || status == 128 + libc::SIGBUS;
    assert!(
        enomem || killed,
        "status {status}, output ends {last:?}: neither ENOMEM below 64 MiB nor killed"
    );
    // The sentry's own memory, the guest's 64 MiB included, stays bounded.
    assert!(
        peak_kb < 64 * 1024 + 192 * 1024,
        "the sentry's peak RSS was {peak_kb} kB"
    );
}
