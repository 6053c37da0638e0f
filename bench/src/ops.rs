//! File, process and thread operations (issues 3 and 4), each a ratio to native.

use std::path::Path;
use std::process::Command;

use crate::{row, Bench};
use platform::SyscallPath;

/// Operations also measured with `RUNSC_NO_DIRECT_SWITCH=1` (PVM hosts: the exit path).
const BOTH_PATHS: &[&str] = &["stat", "open_close", "fault", "fault_seq", "signal"];

/// (name shown, ops.c kind, iterations in full mode)
const OPS: &[(&str, &str, u64)] = &[
    (
        "clock_gettime(CLOCK_MONOTONIC) (vDSO)",
        "clock_gettime",
        1_000_000,
    ),
    ("open+close", "open_close", 20_000),
    ("stat", "stat", 20_000),
    ("page fault (first write to a fresh page)", "fault", 5_000),
    (
        "first write to each page of a fresh region, in order",
        "fault_seq",
        20_000,
    ),
    ("4 KiB read (pread)", "read4k", 20_000),
    ("1 MiB sequential read", "read1m", 200),
    ("getdents of a 1000-entry directory", "getdents", 100),
    ("4 KiB write then read through a pipe", "pipe4k", 5_000),
    ("fork+exec+wait of a static do-nothing", "fork_exec", 50),
    ("thread create and join", "thread", 200),
    ("futex ping-pong between two threads", "futex", 2_000),
    ("nanosleep of 20 us", "sleep20", 5_000),
    (
        "signal to self and back (raise, handler, sigreturn)",
        "signal",
        20_000,
    ),
    (
        "signal to a thread asleep in read (until EINTR; includes a 0.2 ms nap)",
        "signal_read",
        200,
    ),
    (
        "signal to a thread asleep in a futex wait (until its handler ran; includes a 0.2 ms nap)",
        "signal_futex",
        200,
    ),
    (
        "pipe() while keeping every pipe open (60,000 pipes, or as many as the hard RLIMIT_NOFILE allows)",
        "pipe_storm",
        60_000,
    ),
    ("getrusage(RUSAGE_SELF)", "getrusage", 20_000),
    (
        "a byte through a pty and back (raw mode, devpts)",
        "pty",
        20_000,
    ),
    ("create+write 4 KiB+close+unlink", "create_write", 5_000),
    (
        "create+write 4 KiB+close+unlink, directory watched by inotify (events read each round)",
        "create_write_watched",
        5_000,
    ),
    ("4 KiB pwrite", "write4k", 20_000),
    (
        "Linux AIO: io_submit of a 4 KiB pread + io_getevents of its event",
        "aio_pread4k",
        20_000,
    ),
    (
        "Linux AIO: io_submit of 16 4 KiB preads + io_getevents of their 16 events",
        "aio_batch16",
        2_000,
    ),
    ("getpriority (a recorded attribute)", "getpriority", 100_000),
    (
        "System V semop ping-pong between two processes",
        "semop",
        5_000,
    ),
    (
        "System V msgsnd+msgrcv round trip between two processes (64 B)",
        "msg",
        5_000,
    ),
    (
        "POSIX mq_send+mq_receive round trip between two processes (64 B)",
        "mq",
        5_000,
    ),
    (
        "shmget+shmat+first touch+shmdt+IPC_RMID (64 KiB)",
        "shm",
        2_000,
    ),
    (
        "mount+umount2 of a tmpfs (in a private mount namespace of its own)",
        "mount",
        2_000,
    ),
    (
        "ptrace: a traced getppid with its entry and exit stops (PTRACE_SYSCALL, waitpid)",
        "ptrace_syscall",
        2_000,
    ),
    ("ptrace: PTRACE_PEEKDATA of a stopped tracee", "ptrace_peek", 20_000),
];

pub fn run(b: &Bench, ops: &Path, quick: bool) -> anyhow::Result<()> {
    let nothing = b.programs.donothing.display().to_string();
    for &(name, kind, full) in OPS {
        let n = if quick { (full / 10).max(5) } else { full }.to_string();
        let args = [kind, n.as_str(), nothing.as_str()];
        let native = b.per_call(|| b.native(&ops.to_path_buf(), &args));
        let sandbox = b.per_call(|| b.sandboxed(SyscallPath::Ring, &ops.to_path_buf(), &args));
        match (native, sandbox) {
            (Ok(nat), Ok(sb)) => {
                row(&format!("{name}, native"), nat, "ns", Some(nat));
                row(&format!("{name}, sandbox"), sb, "ns", Some(nat));
                if BOTH_PATHS.contains(&kind) {
                    let exits = b.per_call(|| {
                        let mut c = b.sandboxed(SyscallPath::Ring, &ops.to_path_buf(), &args);
                        c.env(platform::kvm::NO_DIRECT_SWITCH_ENV, "1");
                        c
                    });
                    if let Ok(e) = exits {
                        row(
                            &format!("{name}, sandbox, no direct switch"),
                            e,
                            "ns",
                            Some(nat),
                        );
                    }
                }
            }
            (n, s) => println!(
                "{name}: failed (native {:?}, sandbox {:?})",
                n.err(),
                s.err()
            ),
        }
    }
    // File writes on a read-write bind mount (`runsc do -v`): hostfs writing to the host
    // directory, against native on the same host file system.
    let vol = std::env::temp_dir().join(format!("runsc-bench-vol-{}", std::process::id()));
    std::fs::create_dir_all(&vol)?;
    for (name, kind, full) in [
        ("4 KiB pwrite, rw bind mount (hostfs)", "write4k", 20_000u64),
        (
            "create+write 4 KiB+close+unlink, rw bind mount (hostfs)",
            "create_write",
            5_000,
        ),
    ] {
        let n = if quick { full / 10 } else { full }.to_string();
        let args = [kind, n.as_str()];
        let native = b.per_call(|| b.native(&ops.to_path_buf(), &args));
        let sandbox = b.per_call(|| {
            let mut c = Command::new(&b.runsc);
            c.arg("do")
                .arg("-v")
                .arg(format!("{}:/tmp", vol.display()))
                .arg("--")
                .arg(ops)
                .args(args);
            c
        });
        match (native, sandbox) {
            (Ok(nat), Ok(sb)) => {
                row(&format!("{name}, native"), nat, "ns", Some(nat));
                row(&format!("{name}, sandbox"), sb, "ns", Some(nat));
            }
            (n, s) => println!(
                "{name}: failed (native {:?}, sandbox {:?})",
                n.err(),
                s.err()
            ),
        }
    }
    let _ = std::fs::remove_dir_all(&vol);
    Ok(())
}
