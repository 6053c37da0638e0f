//! Differential conformance: every program in tests/conformance/*.c, built
//! with glibc and musl, must print the same stdout and exit with the same
//! status natively and under `runsc do`. See tests/src/lib.rs for the knobs
//! (RUNSC, RUNSC_FLAGS, CONFORMANCE_NATIVE_ONLY).
//!
//! Without a usable /dev/kvm each test prints "SKIPPED: no usable /dev/kvm"
//! on stderr and returns early: that is a skip, not a pass.

use conformance::*;
use std::path::Path;
use std::time::Duration;

/// One #[test] per C program: `program_test!(name)` runs it with no
/// arguments; `program_test!(name, cases)` with the given cases.
macro_rules! program_test {
    ($name:ident) => {
        program_test!($name, vec![Case::default()]);
    };
    ($name:ident, $cases:expr) => {
        #[test]
        fn $name() {
            let cases: Vec<Case> = $cases;
            check_program(stringify!($name), &cases);
        }
    };
}

program_test!(hello);
program_test!(
    args_env_auxv,
    vec![
        Case::default(),
        Case::args(["one", "two words", "", "ünïcödé ✓", "--flag=x", "a\tb"]),
        Case::args((0..200).map(|i| format!("arg{i}"))),
    ]
);
program_test!(malloc_stress);
program_test!(mem_slots);
program_test!(mmap_patterns);
program_test!(rlimit_as);
program_test!(write_readonly);
program_test!(null_deref);
program_test!(
    faults,
    [
        "ud2",
        "int3",
        "div0",
        "hlt",
        "cli",
        "read_null",
        "jump_null",
        "exec_nx",
        "prot_none",
        "unmapped",
        "noncanonical",
        "stack_overflow",
        "align",
        "bogus",
    ]
    .into_iter()
    .map(|k| Case::args([k]))
    .collect()
);
program_test!(
    fault_contexts,
    [
        "regs",
        "stack",
        "cow",
        "handler",
        "segv_fix",
        "unmap_race",
        "signals_mid_call",
    ]
    .into_iter()
    .map(|k| Case::args([k]))
    .collect()
);

program_test!(
    ring_wait,
    ["sleep", "futex", "pipe", "signal"]
        .into_iter()
        .map(|k| Case::args([k]))
        .collect()
);

/// 10 rounds of 48 short-lived threads that fault in pages. It hung now and then (both
/// platform paths, "DEFER without a request" logged): the ring poller served a slot whose
/// vCPU had gone to the next thread (fixed with `RingSlot::live` in platform's ring.rs).
#[test]
fn thread_storm() {
    check_program("fault_contexts", &[Case::args(["storm"])]);
}
program_test!(uname);
program_test!(clock);
program_test!(itimer);
program_test!(posix_timer);
program_test!(timerfd);
program_test!(getrandom);
program_test!(ids_misc);
program_test!(proc_task);
program_test!(pdeathsig);
program_test!(sa_restart);
program_test!(sighand_shared);
program_test!(signalfd);
program_test!(timer_signals);
program_test!(creds);
program_test!(caps);
program_test!(seccomp);
program_test!(seccomp_fuzz);
program_test!(rlimit_nproc);
program_test!(rlimit_stack);
program_test!(kill_perm);
program_test!(tls);
program_test!(fpu);
// The FPU state across signal handlers, delivered by the ring poller or the thread, and
// signals landing while threads are created and joined.
program_test!(
    signal_fpu,
    vec![
        Case::args(["xmm"]),
        Case::args(["ymm"]),
        Case::args(["threads"])
    ]
);
program_test!(stack);
program_test!(
    stdio_io,
    vec![
        Case::default().with_stdin(*b""),
        Case::default().with_stdin("hello\nworld\nhéllo wörld ✓\nno newline at the end".as_bytes()),
        Case::default().with_stdin(big_text()),
    ]
);

/// ~330 KiB of numbered lines: more than a pipe buffer, so reads block.
fn big_text() -> Vec<u8> {
    let mut s = String::new();
    for i in 0..6000 {
        s.push_str(&format!(
            "line {i:05}: the quick brown fox jumps over the lazy dog\n"
        ));
    }
    s.into_bytes()
}

/// exit_code exits with atoi(argv[1]). A representative spread always runs
/// (including values that wrap: 256, 257, -1, 1000); every code 0..=255 runs
/// too when sandboxed runs are quick (mean under 50 ms), which keeps the
/// test well under a minute on slow machines.
#[test]
fn exit_code() {
    let name = "exit_code";
    if skip_without_kvm(name) {
        return;
    }
    if !native_only() {
        runsc_path();
    }
    let spread = [
        "0", "1", "2", "42", "126", "127", "128", "139", "255", "256", "257", "-1", "1000",
    ];
    let mut failures = Vec::new();
    let mut times = Vec::new();
    let progs: Vec<_> = Libc::ALL.iter().map(|&l| (l, build(name, l))).collect();
    for (libc, prog) in &progs {
        let cases: Vec<Case> = spread.iter().map(|a| Case::args([*a])).collect();
        failures.extend(check_cases(name, *libc, prog, &cases, &mut times));
    }
    let mean = times.iter().sum::<Duration>() / times.len().max(1) as u32;
    if mean < Duration::from_millis(50) {
        for (libc, prog) in &progs {
            let cases: Vec<Case> = (0..=255)
                .map(|c: i32| c.to_string())
                .filter(|c| !spread.contains(&c.as_str()))
                .map(|c| Case::args([c]))
                .collect();
            failures.extend(check_cases(name, *libc, prog, &cases, &mut times));
        }
        loud(&format!(
            "exit_code: ran every code 0..=255 (mean run {mean:?})"
        ));
    } else {
        loud(&format!(
            "exit_code: ran the representative spread only (mean sandboxed run {mean:?} >= 50ms)"
        ));
    }
    finish(name, failures);
}

/// Hand-made valid executables: the loader must run them like Linux does.
#[test]
fn handmade_elf() {
    let name = "handmade_elf";
    if skip_without_kvm(name) {
        return;
    }
    let dir = ScratchDir::new("handmade");
    let files = [
        ("minimal-exit-42", elf::minimal(42), 42),
        ("bss-check-exit-7", elf::bss_check(), 7),
    ];
    let mut failures = Vec::new();
    for (file, bytes, want) in files {
        let path = dir.file(file, &bytes, 0o755);
        let case = Case::default();
        let native = run_native(&path, &case).expect("native run");
        assert_eq!(
            native.status, want,
            "{file}: the hand-made ELF itself is wrong (native status)"
        );
        let other = if native_only() {
            run_native(&path, &case)
        } else {
            run_sandboxed(&path, &case)
        };
        match other {
            Err(e) => failures.push(format!("=== {file}: {e}")),
            Ok(o) => {
                if let Some(f) = runsc_killed(file, &o) {
                    failures.push(f);
                } else if let Err(r) = compare(file, &native, &o, "sandbox") {
                    failures.push(r);
                }
            }
        }
    }
    finish(name, failures);
}

/// `runsc do` on things that are not runnable static x86-64 executables:
/// the status must be 127 for a missing file and 126 for the rest, with
/// exactly one line on stderr that names the file.
#[test]
fn bad_inputs() {
    let name = "bad_inputs";
    if native_only() {
        loud("bad_inputs: skipped with CONFORMANCE_NATIVE_ONLY");
        return;
    }
    if skip_without_kvm(name) {
        return;
    }
    runsc_path();
    let dir = ScratchDir::new("bad-inputs");
    let hello = std::fs::read(build("hello", Libc::Glibc)).expect("read hello");

    let mut cases: Vec<(&str, std::path::PathBuf, i32)> = vec![
        ("missing file", dir.path().join("does-not-exist"), 127),
        (
            "text file without #!",
            dir.file("not-elf.txt", b"echo hello\nexit 3\n", 0o755),
            126,
        ),
        ("empty file", dir.file("empty", b"", 0o755), 126),
        (
            "ELFCLASS32 (i386) executable",
            dir.file("elf32-i386", &elf::elf32_i386(), 0o755),
            126,
        ),
        (
            "wrong e_machine (aarch64)",
            dir.file("elf-aarch64", &elf::wrong_machine(), 0o755),
            126,
        ),
        (
            "ET_REL object",
            dir.file("elf-rel", &elf::relocatable(), 0o755),
            126,
        ),
        (
            "truncated (first 30 bytes of a static binary)",
            dir.file("truncated", &hello[..30], 0o755),
            126,
        ),
        (
            "program headers past the end",
            dir.file("phdrs-past-end", &elf::phdrs_past_end(), 0o755),
            126,
        ),
        (
            "e_phnum = 65535",
            dir.file("phnum-65535", &elf::absurd_phnum(), 0o755),
            126,
        ),
        (
            "e_phentsize = 32",
            dir.file("phentsize-32", &elf::bad_phentsize(), 0o755),
            126,
        ),
        (
            "overlapping PT_LOAD segments",
            dir.file("overlapping-loads", &elf::overlapping_loads(), 0o755),
            126,
        ),
        (
            "PT_LOAD with p_filesz > p_memsz",
            dir.file("filesz-over-memsz", &elf::filesz_over_memsz(), 0o755),
            126,
        ),
        (
            "file without execute permission",
            dir.file("not-executable", &elf::minimal(0), 0o644),
            126,
        ),
    ];
    let subdir = dir.path().join("a-directory");
    std::fs::create_dir(&subdir).expect("mkdir");
    cases.push(("a directory", subdir, 126));
    // Scripts execve refuses: ENOENT for a missing interpreter (127, as a shell says),
    // ENOEXEC for a #! line without one, EACCES for a directory as the interpreter.
    cases.push((
        "script whose interpreter is missing",
        dir.file(
            "missing-interp.sh",
            b"#!/nonexistent/interpreter\necho no\n",
            0o755,
        ),
        127,
    ));
    cases.push((
        "script whose #! names nothing",
        dir.file("empty-interp.sh", b"#!  \necho no\n", 0o755),
        126,
    ));
    cases.push((
        "script whose interpreter is a directory",
        dir.file("dir-interp.sh", b"#!/etc\necho no\n", 0o755),
        126,
    ));

    let mut failures = Vec::new();
    for (what, path, want) in &cases {
        let out = run_with_timeout(
            &mut runsc_do_command(path, &[] as &[&str]),
            &Input::Null,
            TIMEOUT,
        );
        let out = match out {
            Ok(o) => o,
            Err(e) => {
                failures.push(format!("=== {what}: {e}"));
                continue;
            }
        };
        if let Err(e) = check_refusal(path, *want, &out) {
            failures.push(format!(
                "=== {what} ({}): {e}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                path.display(),
                clip(&String::from_utf8_lossy(&out.stdout)),
                clip(&String::from_utf8_lossy(&out.stderr)),
            ));
        }
    }
    finish(name, failures);
}

/// `#!` scripts run under `runsc do` as execve runs them: the same output and status as
/// natively (where the test's own spawn is an execve of the script).
#[test]
fn scripts() {
    let name = "scripts";
    if skip_without_kvm(name) {
        return;
    }
    let dir = ScratchDir::new("scripts");
    let plain = dir.file(
        "plain.sh",
        b"#!/bin/sh\necho \"plain: $(basename $0) $# $*\"\nexit 3\n",
        0o755,
    );
    let with_arg = dir.file(
        "with-arg.sh",
        b"#!/bin/sh -eu\ncase $- in *e*u*|*u*e*) echo \"flags from the #! line\";; esac\necho \"$*\"\n",
        0o755,
    );
    let via_env = dir.file(
        "via-env.sh",
        b"#!/usr/bin/env sh\necho \"through env: $1\"\n",
        0o755,
    );
    // A script whose interpreter is itself a script (Linux follows up to four levels).
    let mut nested_src = b"#!".to_vec();
    nested_src.extend_from_slice(plain.as_os_str().as_encoded_bytes());
    nested_src.extend_from_slice(b" from-nested\n");
    let nested = dir.file("nested.sh", &nested_src, 0o755);
    let cases = [
        (&plain, vec!["a", "b c"]),
        (&with_arg, vec!["x", "y"]),
        (&via_env, vec!["z"]),
        (&nested, vec!["n"]),
    ];
    let mut failures = Vec::new();
    for (path, args) in cases {
        let case = Case::args(args);
        let file = path.file_name().unwrap_or_default().to_string_lossy();
        let native = run_native(path, &case).expect("native run");
        match run_sandboxed(path, &case) {
            Err(e) => failures.push(format!("=== {file}: {e}")),
            Ok(o) => {
                if let Err(r) = compare(&file, &native, &o, "sandbox") {
                    failures.push(r);
                }
            }
        }
    }
    // What execve gives natively for the refused scripts of `bad_inputs`.
    let missing = dir.file("missing.sh", b"#!/nonexistent/interpreter\n", 0o755);
    let err = spawn_past_busy_text(&mut std::process::Command::new(&missing)).map(|_| 0);
    assert_eq!(
        err.map_err(|e| e.raw_os_error()),
        Err(Some(libc::ENOENT)),
        "execve of a script with a missing interpreter"
    );
    finish(name, failures);
}

fn check_refusal(path: &Path, want: i32, out: &Outcome) -> Result<(), String> {
    let mut problems = Vec::new();
    if out.status != want {
        problems.push(format!("exit status {} (want {want})", out.status));
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.trim_end_matches('\n').split('\n').collect();
    if err.trim().is_empty() {
        problems.push("nothing on stderr (want one line naming the file)".into());
    } else if lines.len() != 1 {
        problems.push(format!(
            "{} lines on stderr (want exactly one)",
            lines.len()
        ));
    }
    if !err.contains(&*path.to_string_lossy()) {
        problems.push(format!(
            "stderr does not contain the path {}",
            path.display()
        ));
    }
    if !out.stdout.is_empty() {
        problems.push("unexpected output on stdout".into());
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

// File-system programs: each works in a fresh /tmp/fsconf-XXXXXX and removes it.
program_test!(fs_open);
program_test!(fs_rw);
program_test!(fs_dir);
program_test!(fs_attr);
program_test!(fs_escape);
// inotify: watches, masks, the events of changes made in the sandbox, the read format,
// readiness and IN_Q_OVERFLOW.
program_test!(fs_inotify);
// dnotify: fcntl(F_NOTIFY) signals to the directory descriptor's owner.
program_test!(fs_dnotify);
program_test!(mmap_file);
// Private read-only mappings after the file changed (the sentry's file cache): writes,
// truncation, a punched hole, another process's write, a program rewritten and run again.
program_test!(mmap_file_cache);
program_test!(proc_fork);
// Locks and copies: record locks, flock, sendfile, copy_file_range, memfd_create.
program_test!(lock_fcntl);
program_test!(lock_flock);
program_test!(copy_sendfile);
program_test!(copy_range);
program_test!(copy_memfd);
// memfd seals enforced on write, truncation, fallocate and shared mappings.
program_test!(memfd_seals);
// /proc/self/fd/N opened again: pipes, deleted files, memfds (fd magic links).
program_test!(proc_fd_reopen);
program_test!(proc_magic_links);
program_test!(proc_pid_access);
// AF_UNIX sockets (single process): socketpair data paths and options; names and
// connections; SCM_RIGHTS, SCM_CREDENTIALS and SO_PEERCRED.
program_test!(unix_pair);
program_test!(unix_bind);
program_test!(unix_scm);
// recvmmsg's timeout: checked after each datagram, the time left written back.
program_test!(recvmmsg_timeout);
// /proc/net/unix lists the sandbox's own AF_UNIX sockets.
program_test!(unix_proc);
// Network sockets (hostinet): TCP and UDP over 127.0.0.1 and ::1 with threads; the
// namespace's interfaces through netlink and the SIOCGIF* ioctls.
program_test!(inet_tcp);
program_test!(inet_udp);
program_test!(inet_ifaces);

// Readiness and waiting: poll/ppoll, select/pselect6, epoll, eventfd, splice/tee/vmsplice.
program_test!(poll_poll);
program_test!(poll_select);
program_test!(poll_epoll);
program_test!(poll_eventfd);
program_test!(
    poll_splice,
    // Then killed by SIGPIPE from each call.
    std::iter::once(Case::default())
        .chain(["splice", "tee", "vmsplice"].map(|k| Case::args([k])))
        .collect()
);
program_test!(poll_stdin, {
    // 200 KB: more than a pipe holds, so the program waits several times.
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut cases = vec![Case::args(["null"])];
    for mode in ["poll", "select", "epoll", "epoll_et"] {
        cases.push(Case::args([mode]).with_stdin(data.clone()));
    }
    cases
});
program_test!(signals);
program_test!(shm_fork);
program_test!(shm_anon_fork);
program_test!(cow_fork);
program_test!(fault_stream);
program_test!(exec_exe_path);
program_test!(exec_reset);
program_test!(vdso);
program_test!(mmap_sigbus);
program_test!(sigtimedwait);
program_test!(timer_thread);
program_test!(job_control);
// ptrace inside the sandbox (crates/sentry/src/ptrace/).
program_test!(ptrace_basic);
program_test!(ptrace_syscall);
program_test!(ptrace_attach);
program_test!(ptrace_step);
program_test!(ptrace_caps);
// stdin /dev/null, then a pipe: every terminal request gives ENOTTY (on a pty, see
// tests/tests/terminal.rs).
program_test!(
    tty_ioctl,
    vec![
        Case::default(),
        Case::default().with_stdin(b"input".to_vec())
    ]
);
// The sandbox's own pseudo-terminals (devpts): pairs, line discipline, job signals.
program_test!(pty);
program_test!(exit_race);
program_test!(robust_mutex);
program_test!(fault_siginfo);
program_test!(sigchld_ignore);
program_test!(exec_threads);
// execve while the threads it ends are just starting or on their way into a sleep, 40
// times over: exec_threads' kinds (a spinner, a pipe read, nanosleep), then futex,
// sigsuspend and sigwait. Each hung execve in a run or two before the sentry's exec kick
// was made to stick (ThreadGroup::must_end); exec_threads itself timed out now and then
// under load.
program_test!(
    exec_threads_race,
    vec![
        Case::args(["spin,read,sleep"]),
        Case::args(["futex,suspend,sigwait"]),
    ]
);
// 2,000 threads at once, then 10,000 created and joined: about 15 s quiet, over 60 s with
// both cores taken by builds, so it gets three minutes.
program_test!(
    threads_many,
    vec![Case::default().with_timeout(std::time::Duration::from_secs(180))]
);
program_test!(rt_signals);
program_test!(pipe_threads);
program_test!(mmap_coherent);
program_test!(
    poll_threads,
    // Then leaving with threads asleep, by exit() and by returning from main.
    std::iter::once(Case::default())
        .chain(["exit", "return"].map(|k| Case::args([k])))
        .collect()
);
// Futexes in memory shared between processes (named semaphores, multiprocessing).
program_test!(futex_shared);
// A child's end signals its parent (SIGCHLD or clone's exit signal); shells sleep in
// sigsuspend until it comes.
program_test!(sigchld);
// Many processes and threads: 1000 fork/exec/wait, 64 threads on one futex mutex, signals
// (tgkill) to threads spinning in user mode and asleep in sigsuspend or read().
program_test!(
    stress,
    vec![
        Case::args(["forkexec"]),
        Case::args(["futex"]),
        Case::args(["signals", "sigsuspend"]),
        Case::args(["signals", "read"]),
    ]
);
// Resource usage and system information: sysinfo, times, getrusage, wait4's rusage.
program_test!(resource_usage);
// Priorities and policies: getpriority/setpriority, sched_* (nothing changes the host).
program_test!(sched_prio);
program_test!(fd_files);
program_test!(pipe_limits);
program_test!(proc_info);
// /proc/PID/stat and status follow state, parent, group, session, threads and nice.
program_test!(proc_stat);
program_test!(admin_calls);
program_test!(mm_calls);
// NUMA policies as a one-node machine answers them (set/get_mempolicy, mbind).
program_test!(mempolicy);
// File leases: the rules, breaks by open and truncate, signals, waiting openers.
program_test!(lease);
program_test!(pidfd_vm);
program_test!(clone_pidfd);
// utime, utimes and futimesat over utimensat's implementation.
program_test!(utimes);
// personality (query, fork, execve) and syslog's EPERM.
program_test!(personality);
// System V IPC and POSIX message queues (issue 15): one namespace per sandbox.
program_test!(sysv_shm);
program_test!(sysv_msg);
// The System V limits of /proc/sys/kernel, written by root in an IPC namespace of the
// program's own and applied by the calls.
program_test!(ipc_sysctl);
// The POSIX queue limits of /proc/sys/fs/mqueue, and kernel.shm_rmid_forced, the same way
// (an IPC namespace of the program's own natively).
program_test!(mq_sysctl);
program_test!(shm_rmid_forced);
program_test!(sysv_sem);
program_test!(posix_mq);
// POSIX ACLs on tmpfs: the xattr format and its checks, mode kept in step, who may set one,
// permission checks through named entries and the mask, default ACLs at create.
program_test!(acl);
// Linux AIO (issue 15): io_setup's ring as a real mapping, every command, eventfd, poll and
// cancel, io_getevents' waits and signals, io_pgetevents, destroy, munmap, mremap, fork.
program_test!(aio);
// CPU affinity per thread: set, read by tid, inherited, kept by execve, and its errors.
program_test!(sched_affinity);
// sync_file_range's checks and its use on files, directories, pipes and sockets.
program_test!(sync_file_range);
// Namespaces and mounts inside the sandbox (issue 15 item 5). Natively both make
// namespaces of their own and mount only in a private one (as `unshare -m`).
program_test!(ns_uts);
program_test!(pidns_signals);
program_test!(mount_ns);
// User namespaces: maps and their write rules, ids seen through them, capabilities in a
// namespace and over what it owns, and none over files of unmapped owners. Natively every
// namespace is the child's own; the one mount is in a mount namespace it made.
program_test!(userns);

// membarrier: QUERY (without the RSEQ bits), registrations across fork and execve, EPERM and
// EINVAL, and the asymmetric-fence pattern it exists for.
program_test!(membarrier);

// futex_waitv: woken through any of its futexes (private, and shared with another process),
// EAGAIN, absolute timeouts on both clocks, EINTR and SA_RESTART, the argument checks.
program_test!(futex_waitv);

// The old getdents against getdents64: names, inodes and types, record layout, small
// buffers, d_off.
program_test!(getdents);

// kcmp: shared objects after dup, fork, vfork, clone flags and threads; KCMP_EPOLL_TFD; the
// errors and the access check.
program_test!(kcmp);

// ioprio_set/ioprio_get: checks, defaults, per-thread values, inheritance, CLONE_IO (with
// kcmp's KCMP_IO), permissions.
program_test!(ioprio);

/// pivot_root runs only in the sandbox: swapping a root is not something a test should do
/// to the machine it runs on, private namespace or not. The expected output
/// (tests/conformance/pivot_root.expected) was recorded from a native run of the same
/// program, which makes its own private mount namespace first.
#[test]
fn pivot_root() {
    let name = "pivot_root";
    if skip_without_kvm(name) || native_only() {
        return;
    }
    let expected = std::fs::read_to_string(source_dir().join("pivot_root.expected"))
        .expect("pivot_root.expected");
    let mut failures = Vec::new();
    for libc in Libc::ALL {
        let prog = build(name, libc);
        let case = Case::default();
        let label = describe(name, libc, &case);
        match run_sandboxed(&prog, &case) {
            Err(e) => failures.push(format!("=== {label}: {e}")),
            Ok(o) => {
                let out = String::from_utf8_lossy(&o.stdout);
                if o.status != 0 || out != expected {
                    failures.push(format!(
                        "=== {label}: status {} ===\n{}\nstderr:\n{}",
                        o.status,
                        diff_lines(&expected, &out),
                        clip(&String::from_utf8_lossy(&o.stderr))
                    ));
                }
            }
        }
    }
    finish(name, failures);
}
