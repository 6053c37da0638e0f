//! The sentry's confinement (issue 13): its own seccomp filter, loaded into every thread
//! of a running sandbox with no_new_privs (a host call outside its list stops the sandbox
//! and is named), and only the capabilities it needs (boot::caps::KEPT).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use conformance::{runsc_path, skip_without_kvm};

/// The Seccomp, NoNewPrivs, CapEff, CapPrm and CapBnd lines of every thread of a running
/// `runsc do -- sleep`.
fn thread_status(extra: &[&str]) -> Vec<[String; 5]> {
    let mut child = Command::new(runsc_path())
        .args(extra)
        .args(["do", "--", "/bin/sleep", "3"])
        .stdin(Stdio::null())
        .spawn()
        .expect("start runsc");
    // Wait until the guest runs (the filter goes in before its first instruction): the
    // ring poller and the task thread exist by then.
    let start = Instant::now();
    let mut found = Vec::new();
    while start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(300));
        let dir = format!("/proc/{}/task", conformance::sentry_pid(child.id()));
        let Ok(tasks) = std::fs::read_dir(&dir) else {
            continue;
        };
        let names: Vec<String> = tasks
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
            .collect();
        if !names
            .iter()
            .any(|n| n.starts_with("task-") || n.starts_with("ring"))
        {
            continue;
        }
        found = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
            .map(|s| {
                let field = |k: &str| {
                    s.lines()
                        .find(|l| l.starts_with(k))
                        .map(|l| l[k.len()..].trim().to_string())
                        .unwrap_or_default()
                };
                [
                    field("Seccomp:"),
                    field("NoNewPrivs:"),
                    field("CapEff:"),
                    field("CapPrm:"),
                    field("CapBnd:"),
                ]
            })
            .collect();
        break;
    }
    let status = child.wait().expect("wait runsc");
    assert!(status.success(), "runsc do -- sleep: {status:?}");
    assert!(!found.is_empty(), "never saw the sandbox's threads");
    found
}

#[test]
fn every_thread_runs_under_the_filter_with_no_new_privs() {
    if skip_without_kvm("every_thread_runs_under_the_filter_with_no_new_privs") {
        return;
    }
    let threads = thread_status(&[]);
    for [seccomp, nnp, ..] in &threads {
        assert_eq!(seccomp, "2", "a thread without the filter: {threads:?}");
        assert_eq!(nnp, "1", "a thread without no_new_privs: {threads:?}");
    }
}

#[test]
fn every_thread_keeps_only_the_capabilities_it_needs() {
    if skip_without_kvm("every_thread_keeps_only_the_capabilities_it_needs") {
        return;
    }
    let kept: u64 = boot::caps::KEPT.iter().map(|&(c, _)| c.bitmask()).sum();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let threads = thread_status(&[]);
    for [_, _, eff, prm, bnd] in &threads {
        let mask = |s: &str| u64::from_str_radix(s, 16).expect("hex capability mask");
        assert_eq!(
            mask(eff) & !kept,
            0,
            "CapEff beyond the kept set: {threads:?}"
        );
        assert_eq!(
            mask(prm) & !kept,
            0,
            "CapPrm beyond the kept set: {threads:?}"
        );
        if root {
            assert_eq!(mask(eff), kept, "{threads:?}");
            assert_eq!(
                mask(bnd) & !kept,
                0,
                "CapBnd beyond the kept set: {threads:?}"
            );
        }
    }
}

/// `runsc do`'s waiting parent (the process its caller started, which waits for the
/// sentry and passes signals on) runs under its own filter with no capabilities.
#[test]
fn the_waiting_parent_is_filtered_and_holds_no_capabilities() {
    if skip_without_kvm("the_waiting_parent_is_filtered_and_holds_no_capabilities") {
        return;
    }
    let mut child = Command::new(runsc_path())
        .args(["do", "--", "/bin/sleep", "2"])
        .stdin(Stdio::null())
        .spawn()
        .expect("start runsc");
    let parent = child.id();
    if conformance::sentry_pid(parent) == parent {
        let _ = child.wait();
        eprintln!(
            "SKIPPED: the_waiting_parent_is_filtered_and_holds_no_capabilities: no waiting \
             parent (the sentry kept the caller's namespaces)"
        );
        return;
    }
    // The filter goes in right after the fork; give it a moment.
    std::thread::sleep(Duration::from_millis(500));
    let status = std::fs::read_to_string(format!("/proc/{parent}/status")).expect("status");
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let seen = [
        field("Seccomp:"),
        field("NoNewPrivs:"),
        field("CapEff:"),
        field("CapPrm:"),
    ];
    assert!(child.wait().expect("wait runsc").success());
    assert_eq!(
        seen,
        ["2", "1", "0000000000000000", "0000000000000000"],
        "the waiting parent's Seccomp, NoNewPrivs, CapEff, CapPrm"
    );
}

#[test]
fn seccomp_off_leaves_the_sentry_unfiltered() {
    if skip_without_kvm("seccomp_off_leaves_the_sentry_unfiltered") {
        return;
    }
    let threads = thread_status(&["--seccomp=off"]);
    assert!(threads.iter().all(|[s, ..]| s == "0"), "{threads:?}");
}

/// `runsc do -- /bin/true` with the sentry's seccomp self-test `which`
/// (`boot::seccomp::SELFTEST_ENV`): its exit status and stderr.
fn self_test(which: &str) -> (Option<i32>, String) {
    let out = Command::new(runsc_path())
        .args(["do", "--", "/bin/true"])
        .env(boot::seccomp::SELFTEST_ENV, which)
        .stdin(Stdio::null())
        .output()
        .expect("run runsc");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_forbidden_host_call_stops_the_sandbox_and_is_named() {
    if skip_without_kvm("a_forbidden_host_call_stops_the_sandbox_and_is_named") {
        return;
    }
    let (status, stderr) = self_test("1");
    assert_eq!(status, Some(159), "stderr: {stderr}");
    assert!(
        stderr.contains("forbidden host system call personality (135)"),
        "stderr: {stderr}"
    );
}

/// Calls the filter allows only with some arguments: an ioctl request, a socket family and
/// an executable mapping the sentry never asks for stop it, named with their arguments.
#[test]
fn forbidden_arguments_stop_the_sandbox_and_are_named() {
    if skip_without_kvm("forbidden_arguments_stop_the_sandbox_and_are_named") {
        return;
    }
    for (test, named) in [
        (
            "ioctl",
            "forbidden host system call ioctl (16) with arguments 0x0, 0x5412,",
        ),
        (
            "socket",
            "forbidden host system call socket (41) with arguments 0x11, 0x3, 0x0",
        ),
        (
            "mmap",
            "forbidden host system call mmap (9) with arguments 0x0, 0x1000, 0x5",
        ),
        // clone only for threads: a fork is stopped.
        (
            "fork",
            "forbidden host system call clone (56) with arguments 0x11, 0x0, 0x0",
        ),
        // adjtimex's modes are in memory: the sentry reads the clock's state before the
        // filter and never calls it again.
        // (glibc makes adjtimex a clock_adjtime of CLOCK_REALTIME.)
        ("adjtimex", "forbidden host system call clock_adjtime (305)"),
    ] {
        let (status, stderr) = self_test(test);
        assert_eq!(status, Some(159), "{test}: stderr: {stderr}");
        assert!(stderr.contains(named), "{test}: stderr: {stderr}");
    }
}

/// clone3's flags are in memory, out of a filter's reach: the sentry gets ENOSYS for it
/// (glibc then creates threads with clone, which the filter checks) and goes on.
#[test]
fn clone3_is_refused_with_enosys_and_the_sandbox_goes_on() {
    if skip_without_kvm("clone3_is_refused_with_enosys_and_the_sandbox_goes_on") {
        return;
    }
    let (status, stderr) = self_test("clone3");
    assert_eq!(status, Some(0), "stderr: {stderr}");
    assert!(
        stderr.contains(&format!("clone3 gave errno {}", libc::ENOSYS)),
        "stderr: {stderr}"
    );
}
