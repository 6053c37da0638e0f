//! Host descriptors of hostfs: looking up (stat, open, read, close) many host files from
//! the sandbox must not keep one host descriptor per file. `runsc do` runs with a soft
//! `RLIMIT_NOFILE` of 1024 (lowered for the test, as a user's shell might have it) and the
//! guest (tests/conformance/many_files.c) goes through 30,000 files of a scratch directory
//! on the host; its summary must match the native run's (no EMFILE, identity of the first
//! file unchanged), and while it waits at the end, the `runsc` process must hold far fewer
//! than 1024 descriptors (/proc/PID/fd).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use conformance::{build, loud, run_native, runsc_do_command, skip_without_kvm, Case, Libc};

const FILES: usize = 30_000;
/// The soft `RLIMIT_NOFILE` runsc runs with.
const SOFT_NOFILE: u64 = 1024;
/// Descriptors the runsc process may hold at the end: hostfs caches at most a quarter of
/// the soft limit of path descriptors and as many read descriptors, plus the VM's own.
const MAX_FDS: usize = 700;

#[test]
fn stat_and_open_of_many_host_files_keeps_descriptors_bounded() {
    let name = "stat_and_open_of_many_host_files_keeps_descriptors_bounded";
    if conformance::native_only() {
        loud(&format!("{name}: skipped with CONFORMANCE_NATIVE_ONLY"));
        return;
    }
    if skip_without_kvm(name) {
        return;
    }
    let dir = conformance::ScratchDir::new("hostfs-fds");
    for i in 0..FILES {
        std::fs::write(dir.path().join(format!("f{i:05}")), b"x").expect("write a file");
    }
    let prog = build("many_files", Libc::Musl);
    let args = [dir.path().to_string_lossy().into_owned(), FILES.to_string()];

    let native = run_native(&prog, &Case::args(args.clone())).expect("native run");
    let native_out = String::from_utf8_lossy(&native.stdout).into_owned();
    assert!(
        native_out.starts_with(&format!("{FILES} ok, 0 failed\n")),
        "native: {native_out}"
    );

    let mut cmd = runsc_do_command(&prog, &args);
    // SAFETY: getrlimit and setrlimit are async-signal-safe; nothing else runs in the child.
    unsafe {
        cmd.pre_exec(|| {
            let mut lim = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            lim.rlim_cur = SOFT_NOFILE.min(lim.rlim_max);
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("spawn runsc");
    let pid = conformance::sentry_pid(child.id());
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut out = String::new();
    let mut fds = None;
    loop {
        match lines.recv_timeout(Duration::from_secs(300)) {
            Ok(l) if l == "waiting" => {
                fds = Some(
                    std::fs::read_dir(format!("/proc/{pid}/fd"))
                        .expect("/proc/PID/fd of runsc")
                        .count(),
                );
                out.push_str("waiting\n");
                break;
            }
            Ok(l) => {
                out.push_str(&l);
                out.push('\n');
            }
            Err(_) => break,
        }
    }
    let elapsed = started.elapsed();
    drop(stdin);
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().expect("try_wait").is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    loud(&format!(
        "{name}: {FILES} files, sandbox {:.2} s, runsc descriptors at the end {fds:?} (soft limit {SOFT_NOFILE})",
        elapsed.as_secs_f64()
    ));
    let native_head = native_out.trim_end_matches("bye\n");
    assert_eq!(out, native_head, "sandbox output differs from native");
    let fds = fds.expect("the guest got to the end");
    assert!(
        fds <= MAX_FDS,
        "runsc holds {fds} host descriptors after looking up {FILES} files"
    );
}
