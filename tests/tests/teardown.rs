//! `runsc do` leaves the VM's destruction to a kernel worker after the sentry exits
//! (`platform::kvm::teardown`), so that its caller does not wait for it. What must not change
//! with it: the exit status and death by signal the caller sees, the output (a pipeline
//! reader gets all of it, and its end), and nothing left behind: the VMs are destroyed, and
//! no process outlives `runsc do`, so no orphan (live or zombie) is ever reparented.
//!
//! This test binary makes itself a child subreaper (PR_SET_CHILD_SUBREAPER: it affects this
//! process's descendants only), so that any orphan of a `runsc do` would be reparented to it
//! and seen, where the host's init might keep it as a zombie unseen.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use conformance::{build, runsc_path, skip_without_kvm, Libc};

/// Whether this process has any child left (living or a zombie), without reaping it.
fn any_child_left() -> Option<libc::pid_t> {
    // SAFETY: waitid with WNOHANG | WNOWAIT only looks; `info` has room for one siginfo.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_ALL,
            0,
            &mut info,
            libc::WEXITED | libc::WSTOPPED | libc::WNOHANG | libc::WNOWAIT,
        );
        if r < 0 {
            return None;
        }
        let pid = info.si_pid();
        // WNOHANG with living children and none to report leaves si_pid 0; look further.
        if pid != 0 {
            return Some(pid);
        }
    }
    conformance::child_of(std::process::id()).map(|pid| pid as libc::pid_t)
}

#[test]
fn the_caller_sees_the_exit_and_the_output_and_nothing_is_left_behind() {
    if skip_without_kvm("the_caller_sees_the_exit_and_the_output_and_nothing_is_left_behind") {
        return;
    }
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer; it marks this process only.
    assert_eq!(
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) },
        0
    );
    let runsc = runsc_path();
    let exit_code = build("exit_code", Libc::Glibc);

    // The teardown is handed to the kernel where the host allows io_uring; the log says
    // which (and the rest of this test holds either way).
    let out = Command::new(&runsc)
        .args(["do", "--debug", "--"])
        .arg(&exit_code)
        .arg("7")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert!(
        err.contains("VM teardown: left to a kernel worker")
            || err.contains("VM teardown at exit, in this process"),
        "{err}"
    );

    for code in [0, 1, 42, 255] {
        let status = Command::new(&runsc)
            .args(["do", "--"])
            .arg(&exit_code)
            .arg(code.to_string())
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(code));
    }

    // A program killed by a signal: 128 + its number, as a shell reports it.
    let status = Command::new(&runsc)
        .args(["do", "--", "/bin/sh", "-c", "kill -TERM $$"])
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{status:?}");
    // The sentry killed from outside (SIGKILL cannot be passed on): `runsc do` dies of it.
    let mut child = Command::new(&runsc)
        .args(["do", "--", "/bin/sh", "-c", "read x"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let sentry = loop {
        if let Some(pid) = conformance::child_of(child.id()) {
            break pid;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    // SAFETY: kill(2) on the sentry, a child of our child.
    assert_eq!(
        unsafe { libc::kill(sentry as libc::pid_t, libc::SIGKILL) },
        0
    );
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");

    // A pipeline: the reader gets every line and its end of file (it would hang otherwise),
    // and the shell sees the sandbox's status (pipefail).
    let script = format!(
        "set -o pipefail; {} do -- /bin/sh -c 'seq 1 20000; echo to-stderr >&2; exit 3' | wc -l",
        runsc.display()
    );
    let mut child = Command::new("/bin/bash")
        .args(["-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the pipeline never ended"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "20000\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "to-stderr\n");
    assert_eq!(out.status.code(), Some(3));

    // The VMs are destroyed all the same, a little later. A live VM holds host memory the
    // kernel counts in /proc/meminfo (its memory file's pages, Shmem; its memory slot's
    // arrays, VmallocUsed): measure what five idle sandboxes hold, then check that 30 runs
    // leave less than 15 sandboxes' worth (the rest allows for sandboxes others run).
    let held_kib = || -> i64 {
        std::fs::read_to_string("/proc/meminfo")
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("Shmem:").or(l.strip_prefix("VmallocUsed:")))
            .map(|v| {
                v.trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<i64>()
                    .unwrap()
            })
            .sum()
    };
    let poll_stdin = build("poll_stdin", Libc::Glibc);
    let idle = held_kib();
    let mut waiting: Vec<_> = (0..5)
        .map(|_| {
            Command::new(&runsc)
                .args(["do", "--"])
                .arg(&poll_stdin)
                .arg("poll")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    std::thread::sleep(Duration::from_secs(2));
    let per_sandbox = (held_kib() - idle) / 5;
    for mut c in waiting.drain(..) {
        drop(c.stdin.take());
        assert_eq!(c.wait().unwrap().code(), Some(0));
    }
    assert!(per_sandbox > 0, "five sandboxes held no memory?");
    let before = held_kib();
    for _ in 0..30 {
        let status = Command::new(&runsc)
            .args(["do", "--"])
            .arg(&exit_code)
            .status()
            .unwrap();
        assert_eq!(status.code(), Some(0));
    }
    let start = std::time::Instant::now();
    let mut grown = held_kib() - before;
    while grown >= 15 * per_sandbox && start.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        grown = held_kib() - before;
    }
    assert!(
        grown < 15 * per_sandbox,
        "30 runs left {grown} KiB held ({per_sandbox} KiB a live sandbox)"
    );

    // Every process those runs made was reaped by its own parent: none was reparented to
    // this subreaper (give a straggler time to show up).
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(any_child_left(), None, "a process outlived its runsc do");
}
