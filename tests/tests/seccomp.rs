//! The sentry's confinement (issue 13): its own seccomp filter, loaded into every thread
//! of a running sandbox with no_new_privs (a host call outside its list stops the sandbox
//! and is named), only the capabilities it needs (boot::caps::KEPT), and a Landlock
//! ruleset that lets it open host files only beneath the trees the sandbox was given
//! (boot::landlock; its state isn't in /proc, so the tests make the sentry try opens).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use conformance::{runsc_path, skip_without_kvm};

/// The Seccomp, NoNewPrivs, CapEff, CapPrm and CapBnd lines of every thread of a running
/// `runsc do -- sleep`.
fn thread_status(extra: &[&str]) -> Vec<[String; 5]> {
    thread_fields(
        extra,
        &[],
        ["Seccomp:", "NoNewPrivs:", "CapEff:", "CapPrm:", "CapBnd:"],
    )
    .into_iter()
    .map(|(_, f)| f)
    .collect()
}

/// The name and the lines `keys` of every thread of a running `runsc do -- sleep`, run
/// with the options `extra` and the environment `env`.
fn thread_fields<const N: usize>(
    extra: &[&str],
    env: &[(&str, &str)],
    keys: [&str; N],
) -> Vec<(String, [String; N])> {
    let (mut child, sentry) = start_sandbox(extra, env);
    let found = sentry
        .map(|pid| read_thread_fields(pid, keys))
        .unwrap_or_default();
    let status = child.wait().expect("wait runsc");
    assert!(status.success(), "runsc do -- sleep: {status:?}");
    assert!(!found.is_empty(), "never saw the sandbox's threads");
    found
}

/// Starts `runsc do -- sleep 3` and waits until its guest runs (the filter goes in before
/// its first instruction): the child, and the sentry's pid once its ring poller and task
/// thread exist (None if they never showed within 20 s).
fn start_sandbox(extra: &[&str], env: &[(&str, &str)]) -> (std::process::Child, Option<u32>) {
    let child = Command::new(runsc_path())
        .envs(env.iter().copied())
        .args(extra)
        .args(["do", "--", "/bin/sleep", "3"])
        .stdin(Stdio::null())
        .spawn()
        .expect("start runsc");
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(300));
        let sentry = conformance::sentry_pid(child.id());
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{sentry}/task")) else {
            continue;
        };
        // The ring poller starts once the first task's vCPU runs: every change of the
        // sentry's credentials and confinement is behind it.
        let ring = tasks
            .flatten()
            .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
            .any(|n| n.starts_with("ring"));
        if ring {
            return (child, Some(sentry));
        }
    }
    (child, None)
}

/// Each thread of process `pid`: its name and the values of `keys` in its status.
fn read_thread_fields<const N: usize>(pid: u32, keys: [&str; N]) -> Vec<(String, [String; N])> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .flatten()
        .filter_map(|t| {
            let status = std::fs::read_to_string(t.path().join("status")).ok()?;
            let name = std::fs::read_to_string(t.path().join("comm")).ok()?;
            Some((name.trim().to_string(), status))
        })
        .map(|(name, s)| {
            let field = |k: &str| {
                s.lines()
                    .find(|l| l.starts_with(k))
                    .map(|l| l[k.len()..].trim().to_string())
                    .unwrap_or_default()
            };
            (name, keys.map(field))
        })
        .collect()
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

/// Started by root, the sentry gives up uid 0 in every thread for a uid and gid of its own
/// (boot::identity: the range's base plus its pid namespace's number), with no
/// supplementary groups: two sandboxes running at once have different ones.
/// `RUNSC_NO_UID_CHANGE=1` keeps it root, which shows the check can fail. KVM's own
/// workers (`kvm-*`, kernel code only, made with the VM before the change) are not the
/// sentry's threads.
#[test]
fn a_root_started_sentry_runs_as_a_user_of_its_own() {
    let name = "a_root_started_sentry_runs_as_a_user_of_its_own";
    if skip_without_kvm(name) {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0
        || !conformance::uid_mapped(boot::identity::ID_BASE)
        || !conformance::uid_mapped(boot::identity::ID_BASE + boot::identity::ID_COUNT - 1)
    {
        eprintln!("SKIPPED: {name}: needs root, with the sentries' uid range mapped");
        return;
    }
    let sandboxes = [start_sandbox(&[], &[]), start_sandbox(&[], &[])];
    let mut seen = Vec::new();
    for (_, sentry) in &sandboxes {
        let pid = sentry.expect("never saw the sandbox's threads");
        let expected = boot::identity::id_for_pid_namespace(std::path::Path::new(&format!(
            "/proc/{pid}/ns/pid"
        )))
        .expect("the sentry's pid namespace is numbered within the range");
        let threads: Vec<_> = read_thread_fields(pid, ["Uid:", "Gid:", "Groups:"])
            .into_iter()
            .filter(|(name, _)| !name.starts_with("kvm-"))
            .collect();
        assert!(
            threads.iter().any(|(name, _)| name.starts_with("ring")),
            "{threads:?}"
        );
        let all = format!("{expected}\t{expected}\t{expected}\t{expected}");
        for (_, [uid, gid, groups]) in &threads {
            assert_eq!(uid, &all, "{threads:?}");
            assert_eq!(gid, &all, "{threads:?}");
            assert_eq!(groups, "", "{threads:?}");
        }
        seen.push(expected);
    }
    for (mut child, _) in sandboxes {
        assert!(child.wait().expect("wait runsc").success());
    }
    assert_ne!(seen[0], seen[1], "two sandboxes share a uid");
    assert!(
        seen.iter().all(|&id| id >= boot::identity::ID_BASE),
        "{seen:?}"
    );
    let kept = thread_fields(&[], &[(boot::identity::DISABLE_ENV, "1")], ["Uid:"]);
    assert!(
        kept.iter()
            .filter(|(name, _)| !name.starts_with("kvm-"))
            .all(|(_, [uid])| uid == "0\t0\t0\t0"),
        "{kept:?}"
    );
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
    let sentry = conformance::sentry_pid(parent);
    let sentry_uid = boot::identity::id_for_pid_namespace(std::path::Path::new(&format!(
        "/proc/{sentry}/ns/pid"
    )))
    .unwrap_or(boot::identity::NOBODY);
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
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 && conformance::uid_mapped(sentry_uid) {
        // Root's sentry takes a user of its own: the parent keeps a uid in common with it
        // before and after (real root, effective and saved the sentry's), and no more.
        assert_eq!(
            field("Uid:"),
            format!("0\t{sentry_uid}\t{sentry_uid}\t{sentry_uid}"),
            "the waiting parent's uids"
        );
    }
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

/// The lines of the sentry's Landlock self-test (`boot::landlock::SELFTEST_ENV`) about the
/// tree at host path `tree`: `(OP:PATH, result)`, result "ok", "ok (the tree itself)" or
/// "errno N".
fn landlock_tries(stderr: &str, tree: &std::path::Path) -> Tries {
    let prefix = format!("runsc: landlock self-test: {} ", tree.display());
    stderr
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|l| l.split_once(" -> "))
        .map(|(op, r)| (op.to_string(), r.to_string()))
        .collect()
}

/// `(OP:PATH, result)` of each try, in order.
type Tries = Vec<(String, String)>;

fn eacces() -> String {
    format!("errno {}", libc::EACCES)
}

/// The tries of `runsc [extra] do` with a read-write and a read-only volume in a scratch
/// directory that also holds a file beside them: (rw volume's tries, ro volume's tries,
/// the scratch directory, stderr).
fn landlock_do(
    extra: &[&str],
    env: &[(&str, &str)],
) -> (Tries, Tries, conformance::ScratchDir, String) {
    let dir = conformance::ScratchDir::new("landlock-do");
    let (rw, ro) = (dir.path().join("rw"), dir.path().join("ro"));
    std::fs::create_dir_all(&rw).unwrap();
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::write(ro.join("f"), "read-only volume\n").unwrap();
    std::fs::write(dir.path().join("beside"), "beside the volumes\n").unwrap();
    let tries = format!(
        "{} read:.,write:made-by-sentry,write:../escaped,read:../beside,proc:../beside",
        dir.path().display()
    );
    let out = Command::new(runsc_path())
        .args(extra)
        .arg("do")
        .arg("-v")
        .arg(format!("{}:/rw", rw.display()))
        .arg("-v")
        .arg(format!("{}:/ro:ro", ro.display()))
        .args([
            "--",
            "/bin/sh",
            "-c",
            "echo guest > /rw/g && cat /rw/g /ro/f && ! (echo x > /ro/h) 2>/dev/null",
        ])
        .env(boot::landlock::SELFTEST_ENV, tries)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("run runsc");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).as_ref()
        ),
        (Some(0), "guest\nread-only volume\n"),
        "the volumes as the guest sees them; stderr: {stderr}"
    );
    assert_eq!(std::fs::read_to_string(rw.join("g")).unwrap(), "guest\n");
    assert!(!ro.join("h").exists());
    (
        landlock_tries(&stderr, &rw),
        landlock_tries(&stderr, &ro),
        dir,
        stderr,
    )
}

/// Under `runsc do` the sentry's Landlock ruleset lets it write only in read-write volumes:
/// even as host root with CAP_DAC_OVERRIDE, it can't create a file beside a volume
/// (`openat(volume_fd, "../escaped")`), nor write in a read-only one, while the volumes
/// work for the guest as before. (The host root is given read-only, so reads beside a
/// volume stay allowed here; the OCI test below shows reads refused outside a rootfs.)
#[test]
fn landlock_keeps_the_sentrys_writes_in_its_read_write_volumes() {
    if skip_without_kvm("landlock_keeps_the_sentrys_writes_in_its_read_write_volumes") {
        return;
    }
    let (rw, ro, dir, stderr) = landlock_do(&[], &[]);
    let ok = "ok".to_string();
    let itself = "ok (the tree itself)".to_string();
    let expect_rw = [
        ("read:.", itself.clone()),
        ("write:made-by-sentry", ok.clone()),
        ("write:../escaped", eacces()),
        ("read:../beside", ok.clone()),
        ("proc:../beside", ok.clone()),
    ];
    let expect_ro = [
        ("read:.", itself.clone()),
        ("write:made-by-sentry", eacces()),
        ("write:../escaped", eacces()),
        ("read:../beside", ok.clone()),
        ("proc:../beside", ok.clone()),
    ];
    let owned = |e: &[(&str, String)]| -> Tries {
        e.iter().map(|(o, r)| (o.to_string(), r.clone())).collect()
    };
    assert_eq!(rw, owned(&expect_rw), "read-write volume; stderr: {stderr}");
    assert_eq!(ro, owned(&expect_ro), "read-only volume; stderr: {stderr}");
    assert!(!dir.path().join("escaped").exists());
    assert!(!dir.path().join("ro/made-by-sentry").exists());
    assert!(dir.path().join("rw/made-by-sentry").exists());
}

/// `--landlock=off` and `RUNSC_NO_LANDLOCK=1` really turn the ruleset off: the same tries
/// get out of the volumes (into the test's scratch directory), so the test above can fail.
#[test]
fn landlock_off_lets_the_sentry_out_of_its_volumes() {
    if skip_without_kvm("landlock_off_lets_the_sentry_out_of_its_volumes") {
        return;
    }
    for (extra, env) in [
        (&["--landlock=off"][..], &[][..]),
        (&[][..], &[(boot::landlock::DISABLE_ENV, "1")][..]),
    ] {
        let (rw, ro, dir, stderr) = landlock_do(extra, env);
        assert!(
            rw.iter().chain(&ro).all(|(_, r)| r.starts_with("ok"))
                && rw.len() == 5
                && ro.len() == 5,
            "{extra:?} {env:?}: {rw:?} {ro:?}; stderr: {stderr}"
        );
        assert!(dir.path().join("escaped").exists());
    }
}

/// The OCI sandbox process opens host files only beneath its rootfs and bind sources:
/// `openat(rootfs_fd, "..")` and a file beside the rootfs are refused (EACCES), directly and
/// through `/proc/self/fd/N/..`, while a file inside opens; a read-write bind takes writes,
/// a read-only one refuses them, to the sentry as to the guest.
#[test]
fn landlock_keeps_the_oci_sentry_beneath_its_rootfs_and_binds() {
    let name = "landlock_keeps_the_oci_sentry_beneath_its_rootfs_and_binds";
    if skip_without_kvm(name) {
        return;
    }
    if conformance::skip_without_busybox(name) {
        return;
    }
    let dir = conformance::ScratchDir::new("landlock-oci");
    let bundle = dir.path().join("bundle");
    let rootfs = bundle.join("rootfs");
    let (rw, ro) = (dir.path().join("rw"), dir.path().join("ro"));
    for d in [
        rootfs.join("bin"),
        rootfs.join("proc"),
        rw.clone(),
        ro.clone(),
    ] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::copy(conformance::BUSYBOX, rootfs.join("bin/busybox")).unwrap();
    std::fs::write(rootfs.join("inside"), "in the rootfs\n").unwrap();
    // Beside the rootfs, and beside the binds.
    std::fs::write(bundle.join("beside"), "beside the rootfs\n").unwrap();
    std::fs::write(dir.path().join("beside"), "beside the binds\n").unwrap();
    std::fs::write(ro.join("f"), "read-only bind\n").unwrap();
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["/bin/busybox", "sh", "-c",
                     "echo guest > /rw/g && cat /rw/g /ro/f && ! (echo x > /ro/h) 2>/dev/null"],
            "env": ["PATH=/bin"],
            "cwd": "/"
        },
        "root": { "path": "rootfs" },
        "hostname": "landlock",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/rw", "type": "bind", "source": rw, "options": ["rbind"] },
            { "destination": "/ro", "type": "bind", "source": ro, "options": ["rbind", "ro"] }
        ],
        "linux": { "namespaces": [ { "type": "pid" }, { "type": "mount" } ] }
    });
    std::fs::write(bundle.join("config.json"), config.to_string()).unwrap();
    let tries = format!(
        "{} read:inside,read:f,read:..,read:../beside,proc:../beside,write:made-by-sentry",
        dir.path().display()
    );
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let status = Command::new(runsc_path())
        .arg("--root")
        .arg(dir.path().join("state"))
        .args(["run", "landlock1"])
        .current_dir(&bundle)
        .env(boot::landlock::SELFTEST_ENV, tries)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .status()
        .expect("runsc run");
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    assert_eq!(
        (status.code(), stdout.as_str()),
        (Some(0), "guest\nread-only bind\n"),
        "the binds as the guest sees them; stderr: {stderr}"
    );
    let ok = "ok".to_string();
    let enoent = format!("errno {}", libc::ENOENT);
    let owned = |e: &[(&str, &String)]| -> Tries {
        e.iter()
            .map(|(o, r)| (o.to_string(), r.to_string()))
            .collect()
    };
    assert_eq!(
        landlock_tries(&stderr, &rootfs),
        owned(&[
            ("read:inside", &ok),
            ("read:f", &enoent),
            ("read:..", &eacces()),
            ("read:../beside", &eacces()),
            ("proc:../beside", &eacces()),
            ("write:made-by-sentry", &eacces()),
        ]),
        "rootfs (read-only for the sentry: the guest writes to memory); stderr: {stderr}"
    );
    assert_eq!(
        landlock_tries(&stderr, &ro),
        owned(&[
            ("read:inside", &enoent),
            ("read:f", &ok),
            ("read:..", &eacces()),
            ("read:../beside", &eacces()),
            ("proc:../beside", &eacces()),
            ("write:made-by-sentry", &eacces()),
        ]),
        "read-only bind; stderr: {stderr}"
    );
    assert_eq!(
        landlock_tries(&stderr, &rw),
        owned(&[
            ("read:inside", &enoent),
            ("read:f", &enoent),
            ("read:..", &eacces()),
            ("read:../beside", &eacces()),
            ("proc:../beside", &eacces()),
            ("write:made-by-sentry", &ok),
        ]),
        "read-write bind; stderr: {stderr}"
    );
    assert_eq!(std::fs::read_to_string(rw.join("g")).unwrap(), "guest\n");
    assert!(!ro.join("h").exists() && !ro.join("made-by-sentry").exists());
    let _ = Command::new(runsc_path())
        .arg("--root")
        .arg(dir.path().join("state"))
        .args(["delete", "--force", "landlock1"])
        .status();
}
