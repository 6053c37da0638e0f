//! Resource leaks of the sentry: a guest program (tests/conformance/leak_workload.c)
//! forks, execs and reaps children and creates and joins threads, in rounds the test asks
//! for over its stdin. Between rounds the test looks at the `runsc` process from the host
//! (`runsc do` is one host process: the sentry and every vCPU thread): its threads
//! (/proc/PID/task), descriptors (/proc/PID/fd) and resident memory (VmRSS). After more
//! rounds they must be back where they were after the first one, within a small
//! tolerance. The first round is a warm-up: caches, malloc arenas and pools that grow once
//! are not leaks.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use conformance::{build, loud, runsc_do_command, skip_without_kvm, Libc};

/// What the host sees of the runsc process.
#[derive(Debug, Clone, Copy)]
struct Usage {
    threads: usize,
    fds: usize,
    /// Descriptors of vCPUs (KVM frees a vCPU only with its VM: the sentry pools them).
    vcpus: usize,
    rss_kib: u64,
}

fn usage(pid: u32) -> Usage {
    let count = |dir: &str| {
        std::fs::read_dir(format!("/proc/{pid}/{dir}"))
            .map(|d| d.count())
            .unwrap_or_else(|e| panic!("read /proc/{pid}/{dir}: {e}"))
    };
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/PID/status");
    let vcpus = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fd directory")
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("anon_inode:kvm-vcpu"))
        .count();
    Usage {
        threads: count("task"),
        fds: count("fd"),
        vcpus,
        rss_kib,
    }
}

/// The guest, with its stdin to send "go" and its stdout lines arriving on a channel.
struct Guest {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Guest {
    fn start(prog: &Path) -> Guest {
        let mut cmd = runsc_do_command(prog, &[] as &[&str]);
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn runsc");
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
        Guest {
            child,
            stdin,
            lines,
        }
    }

    /// Waits for the guest's next line, which must be `want`.
    fn expect(&mut self, want: &str) {
        match self.lines.recv_timeout(Duration::from_secs(60)) {
            Ok(l) if l == want => {}
            Ok(l) => panic!("guest said {l:?}, expected {want:?}"),
            Err(e) => panic!("no {want:?} from the guest within 60 s: {e}"),
        }
    }

    /// Runs one round of the workload: "go" (everything) or "seq" (one thread or child
    /// at a time).
    fn round(&mut self, kind: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{kind}").expect("write to the guest");
        stdin.flush().expect("flush");
        self.expect("done");
    }

    /// Closes its input and waits for it to exit.
    fn finish(mut self) -> i32 {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return conformance::shell_status(st);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the guest did not exit within 60 s of the end of its input");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Guest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Samples usage until the host threads are down to `threads` (the threads of ended tasks
/// take a moment to go), or for at most 10 s; returns the last sample.
fn settled(pid: u32, threads: usize) -> Usage {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let u = usage(pid);
        if u.threads <= threads || Instant::now() > deadline {
            return u;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Extra rounds after the warm-up; each makes 200 processes and 200 threads.
const ROUNDS: usize = 3;
/// Host threads and descriptors that may differ (a helper thread that happens to be alive).
/// vCPUs are never freed, only pooled: the pool grows to the peak of live threads in the
/// warm-up round, and stays there only if each vCPU is back in the pool before the end of
/// its thread shows.
const COUNT_TOLERANCE: usize = 2;
/// Resident memory that may be added over all the rounds, in KiB. A leak of one guest page
/// per process or thread would be 600 * 4 KiB * ROUNDS = 7 MiB; a vCPU's or address
/// space's worth per process, far more.
const RSS_TOLERANCE_KIB: u64 = 6 * 1024;

/// The guest (musl: small, quick to exec 200 times a round) started and ready, its host
/// pid and its usage while idle; None (said loudly) when the test can't run here.
fn start_guest(name: &str) -> Option<(Guest, u32, Usage)> {
    if conformance::native_only() {
        loud(&format!("{name}: skipped with CONFORMANCE_NATIVE_ONLY"));
        return None;
    }
    if skip_without_kvm(name) {
        return None;
    }
    let mut guest = Guest::start(&build("leak_workload", Libc::Musl));
    let pid = conformance::sentry_pid(guest.child.id());
    guest.expect("ready");
    let idle = usage(pid);
    Some((guest, pid, idle))
}

#[test]
fn sentry_returns_to_baseline_after_processes_and_threads() {
    let name = "sentry_returns_to_baseline_after_processes_and_threads";
    let Some((mut guest, pid, idle)) = start_guest(name) else {
        return;
    };
    guest.round("go");
    let base = settled(pid, idle.threads);
    for _ in 0..ROUNDS {
        guest.round("go");
    }
    let after = settled(pid, base.threads);
    loud(&format!(
        "{name}: idle {idle:?}, after the warm-up round {base:?}, after {ROUNDS} more {after:?}"
    ));
    assert!(
        after.threads <= base.threads + COUNT_TOLERANCE,
        "host threads grew from {} to {}",
        base.threads,
        after.threads
    );
    assert!(
        after.fds <= base.fds + COUNT_TOLERANCE,
        "host descriptors grew from {} to {}",
        base.fds,
        after.fds
    );
    assert!(
        after.rss_kib <= base.rss_kib + RSS_TOLERANCE_KIB,
        "resident memory grew from {} KiB to {} KiB",
        base.rss_kib,
        after.rss_kib
    );
    assert_eq!(guest.finish(), 0, "the guest's exit status");
}

/// Threads and processes made one at a time, each after the previous one was waited for
/// (and reaped), need one vCPU besides the main thread's: the ended one's, back in the
/// pool. (Released after the end showed, a vCPU was often still busy when the next thread
/// started, and the pool grew by one each time: to about 100 in two rounds.)
#[test]
fn one_at_a_time_threads_and_processes_reuse_one_vcpu() {
    let name = "one_at_a_time_threads_and_processes_reuse_one_vcpu";
    let Some((mut guest, pid, idle)) = start_guest(name) else {
        return;
    };
    for _ in 0..2 {
        guest.round("seq");
    }
    let after = settled(pid, idle.threads);
    loud(&format!("{name}: idle {idle:?}, after 2 rounds {after:?}"));
    assert!(
        after.vcpus <= idle.vcpus + 1,
        "vCPUs went from {} to {}: more than one was added",
        idle.vcpus,
        after.vcpus
    );
    assert_eq!(guest.finish(), 0, "the guest's exit status");
}

/// Mounted and unmounted file systems go with their last reference: rounds of 40 tmpfs
/// mounts, each filled with 128 KiB and some dentries, then unmounted (half lazily, with
/// a file open until after the unmount). A dentry tree kept by its parent/child cycle
/// would keep 5 MiB a round.
#[test]
fn unmounted_file_systems_are_freed() {
    let name = "unmounted_file_systems_are_freed";
    if conformance::native_only() || skip_without_kvm(name) {
        return;
    }
    let mut guest = Guest::start(&build("mount_leak", Libc::Musl));
    let pid = conformance::sentry_pid(guest.child.id());
    guest.expect("ready");
    guest.round("go");
    let base = settled(pid, usage(pid).threads);
    for _ in 0..ROUNDS {
        guest.round("go");
    }
    let after = settled(pid, base.threads);
    loud(&format!(
        "{name}: after the warm-up round {base:?}, after {ROUNDS} more {after:?}"
    ));
    assert!(
        after.rss_kib <= base.rss_kib + RSS_TOLERANCE_KIB,
        "resident memory grew from {} KiB to {} KiB",
        base.rss_kib,
        after.rss_kib
    );
    assert_eq!(guest.finish(), 0, "the guest's exit status");
}
