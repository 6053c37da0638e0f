//! The sentry's namespaces and root (issue 13, items 2 and 4): a running sandbox's sentry
//! process is in mount, pid, ipc and uts namespaces other than the caller's, shares the
//! caller's network namespace (`--network=host`), and its root holds nothing of the host:
//! only `proc`, the procfs of its own pid namespace, in which it is alone (pid 1).
//! Under `runsc do` and under the OCI runtime (`runsc run --detach`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use conformance::{loud, runsc_path, sentry_pid, skip_without_kvm};

const NAMESPACES: [&str; 4] = ["mnt", "pid", "ipc", "uts"];

fn ns(pid: &str, name: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{name}"))
        .map(|l| l.display().to_string())
        .unwrap_or_else(|e| panic!("/proc/{pid}/ns/{name}: {e}"))
}

fn list(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Waits (up to 30 s) until the sentry `pid` has left the host's root (its root lists
/// only `proc`); false if it never does (or ends first).
fn wait_for_empty_root(pid: u32) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if std::fs::read_dir(format!("/proc/{pid}/root"))
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name())
                    .eq([std::ffi::OsString::from("proc")])
            })
            .unwrap_or(false)
        {
            return true;
        }
        if !Path::new(&format!("/proc/{pid}")).exists() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// The checks on a running sentry `pid`. `warned` is what runsc said on stderr (a warning
/// there means the host refused the namespaces: a loud skip, not a pass).
fn check_confined(label: &str, pid: u32, warned: impl Fn() -> String) -> bool {
    let me = "self";
    let p = pid.to_string();
    // The sentry makes its namespaces and leaves the host's root while it starts: wait for
    // the pivot, its last step.
    if !wait_for_empty_root(pid) {
        let why = warned();
        if why.contains("the sentry stays in the caller's namespaces") {
            loud(&format!(
                "*** SKIPPED: {label}: the host refused the sentry's namespaces ({}); \
                 this is a skip, not a pass ***",
                why.trim()
            ));
            return false;
        }
        panic!(
            "{label}: the sentry (pid {pid}) never left the host's root: {:?}; stderr: {why}",
            std::fs::read_dir(format!("/proc/{pid}/root"))
                .map(|d| d.flatten().map(|e| e.file_name()).collect::<Vec<_>>())
        );
    }
    for n in NAMESPACES {
        assert_ne!(
            ns(&p, n),
            ns(me, n),
            "{label}: {n} namespace is the caller's"
        );
    }
    assert_eq!(
        ns(&p, "net"),
        ns(me, "net"),
        "{label}: --network=host keeps the caller's network namespace"
    );
    let root = format!("/proc/{pid}/root");
    assert_eq!(list(&root), ["proc"], "{label}");
    for host_path in ["etc", "bin", "usr", "tmp", "dev", "proc/1/root/etc"] {
        assert!(
            !Path::new(&format!("{root}/{host_path}")).exists(),
            "{label}: {host_path} is reachable in the sentry's root"
        );
    }
    // Its /proc is its own pid namespace's, where it is alone, as pid 1.
    let pids: Vec<String> = list(&format!("{root}/proc"))
        .into_iter()
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        .collect();
    assert_eq!(pids, ["1"], "{label}: processes in the sentry's /proc");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let nspid = status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))
        .map(|s| s.split_whitespace().collect::<Vec<_>>())
        .unwrap_or_default();
    assert_eq!(nspid.last(), Some(&"1"), "{label}: NSpid {nspid:?}");
    assert_eq!(nspid.first(), Some(&p.as_str()), "{label}: NSpid {nspid:?}");
    true
}

#[test]
fn runsc_do_sentry_has_its_own_namespaces_and_an_empty_root() {
    let name = "runsc_do_sentry_has_its_own_namespaces_and_an_empty_root";
    if skip_without_kvm(name) {
        return;
    }
    let log = std::env::temp_dir().join(format!("runsc-ns-do-{}.stderr", std::process::id()));
    let mut child = Command::new(runsc_path())
        .args(["do", "--", "/bin/sleep", "4"])
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start runsc");
    let pid = sentry_pid(child.id());
    let warned = || std::fs::read_to_string(&log).unwrap_or_default();
    let confined = check_confined("runsc do", pid, warned);
    let status = child.wait().expect("wait runsc");
    assert!(
        status.success(),
        "runsc do -- sleep: {status:?}: {}",
        warned()
    );
    let _ = std::fs::remove_file(&log);
    if confined {
        assert_ne!(pid, child.id(), "the sentry is the caller's child");
    }
}

/// `runsc do` still ends with its program's status and dies of the signal its sentry would
/// have died of (SIGTERM of the process its caller started).
#[test]
fn runsc_do_exit_status_and_signals_pass_through() {
    let name = "runsc_do_exit_status_and_signals_pass_through";
    if skip_without_kvm(name) {
        return;
    }
    let st = Command::new(runsc_path())
        .args(["do", "--", "/bin/sh", "-c", "exit 7"])
        .stdin(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(st.code(), Some(7));
    let (mut child, sentry) = sleeping_sandbox();
    assert!(wait_for_empty_root(sentry) || sentry == child.id());
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let start = Instant::now();
    let st = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(st.signal(), Some(libc::SIGTERM), "{st:?}");
    assert!(start.elapsed() < Duration::from_secs(20));
    wait_dead(sentry, "the sentry outlived runsc");
}

/// `runsc do -- sleep 30`, and the sentry's host pid (runsc's own without namespaces).
fn sleeping_sandbox() -> (std::process::Child, u32) {
    let child = Command::new(runsc_path())
        .args(["do", "--", "/bin/sleep", "30"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let sentry = sentry_pid(child.id());
    (child, sentry)
}

/// Waits (up to 10 s) until host process `pid` is gone or a zombie (this host's init may
/// never reap it); fails with `why` otherwise.
fn wait_dead(pid: u32, why: &str) {
    let start = Instant::now();
    while std::fs::read_to_string(format!("/proc/{pid}/status"))
        .is_ok_and(|s| !s.contains("State:\tZ"))
    {
        assert!(start.elapsed() < Duration::from_secs(10), "{why}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SIGKILL of `runsc do` (the waiting parent, which can't pass it on) ends the sentry by
/// its parent-death signal. A change of credentials clears that signal, and root's sentry
/// changes its user once the guest is about to run (boot::identity): it must set it again.
#[test]
fn a_killed_runsc_do_takes_the_sentry_with_it() {
    let name = "a_killed_runsc_do_takes_the_sentry_with_it";
    if skip_without_kvm(name) {
        return;
    }
    let (mut child, sentry) = sleeping_sandbox();
    if sentry == child.id() {
        let _ = child.kill();
        let _ = child.wait();
        loud(&format!(
            "SKIPPED: {name}: no waiting parent (the sentry kept the caller's namespaces)"
        ));
        return;
    }
    // The guest runs (the ring poller starts with it), so every change of the sentry's
    // credentials is behind it.
    let start = Instant::now();
    while !list(&format!("/proc/{sentry}/task")).iter().any(|t| {
        std::fs::read_to_string(format!("/proc/{sentry}/task/{t}/comm"))
            .is_ok_and(|c| c.starts_with("ring"))
    }) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the guest never ran"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    let _ = child.wait();
    wait_dead(sentry, "the sentry outlived a killed runsc do");
}

/// The OCI runtime: `runsc run --detach` cloned the sandbox process into a pid namespace of
/// its own, so the pid in `--pid-file` and the state is the sentry itself (what the shim
/// reaps); it has the same namespaces and empty root; `exec`, `ps` and `kill` still reach
/// it through its control socket under `--root`.
#[test]
fn oci_sentry_has_its_own_namespaces_and_an_empty_root() {
    let name = "oci_sentry_has_its_own_namespaces_and_an_empty_root";
    if skip_without_kvm(name) {
        return;
    }
    if conformance::skip_without_busybox(name) {
        return;
    }
    let dir = conformance::ScratchDir::new("ns-oci");
    let bundle = dir.path().join("bundle");
    let rootfs = bundle.join("rootfs");
    for d in ["bin", "proc", "tmp"] {
        std::fs::create_dir_all(rootfs.join(d)).unwrap();
    }
    std::fs::copy(conformance::BUSYBOX, rootfs.join("bin/busybox")).unwrap();
    std::fs::create_dir_all(dir.path().join("hostdir")).unwrap();
    std::fs::write(dir.path().join("hostdir/f"), "host file\n").unwrap();
    let config = serde_json::json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": ["/bin/busybox", "sleep", "60"],
            "env": ["PATH=/bin"],
            "cwd": "/"
        },
        "root": { "path": "rootfs" },
        "hostname": "nstest",
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/data", "type": "bind", "source": dir.path().join("hostdir"), "options": ["rbind", "ro"] }
        ],
        "linux": { "namespaces": [ { "type": "pid" }, { "type": "mount" } ] }
    });
    std::fs::write(bundle.join("config.json"), config.to_string()).unwrap();
    let state = dir.path().join("state");
    let log = dir.path().join("log");
    let pid_file = dir.path().join("pid");
    // The sandbox process's warnings (a refused namespace) go to its debug log.
    let debug_dir = format!("{}/debug/", dir.path().display());
    // Output to files: a detached sandbox keeps the descriptors it was given.
    let (out_path, err_path) = (dir.path().join("stdout"), dir.path().join("stderr"));
    let runsc = |args: &[&str]| {
        let st = Command::new(runsc_path())
            .arg("--root")
            .arg(&state)
            .arg("--log")
            .arg(&log)
            .arg("--debug-log")
            .arg(&debug_dir)
            .args(args)
            .current_dir(&bundle)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out_path).unwrap())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .status()
            .unwrap();
        (
            st.code().unwrap_or(-1),
            std::fs::read_to_string(&out_path).unwrap_or_default(),
            std::fs::read_to_string(&err_path).unwrap_or_default(),
        )
    };
    let pf = pid_file.display().to_string();
    let (st, _, err) = runsc(&["run", "--detach", "--pid-file", &pf, "ns1"]);
    assert_eq!(
        st,
        0,
        "run --detach: {err} {:?}",
        std::fs::read_to_string(&log)
    );
    let pid: u32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let (_, out, _) = runsc(&["state", "ns1"]);
    let s: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(s["pid"], pid, "state {s}");
    assert_eq!(s["status"], "running", "state {s}");
    assert!(
        std::fs::read_dir(dir.path().join("state/ns1"))
            .unwrap()
            .flatten()
            .any(|e| e.file_name() == "state.json"),
        "state.json under --root"
    );
    let warned = || {
        std::fs::read_dir(dir.path().join("debug"))
            .map(|d| {
                d.flatten()
                    .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                    .filter(|t| t.contains("WARN"))
                    .collect::<String>()
            })
            .unwrap_or_default()
    };
    check_confined("runsc run", pid, warned);
    // exec reaches the sandbox through the control socket, and sees the bind mount.
    let (st, out, err) = runsc(&["exec", "ns1", "/bin/busybox", "cat", "/data/f"]);
    assert_eq!((st, out.as_str()), (0, "host file\n"), "exec: {err}");
    let (st, out, err) = runsc(&["ps", "ns1"]);
    assert_eq!(st, 0, "ps: {err}");
    assert!(out.contains("sleep"), "ps: {out}");
    let (st, _, err) = runsc(&["kill", "ns1", "KILL"]);
    assert_eq!(st, 0, "kill: {err}");
    let end = Instant::now() + Duration::from_secs(20);
    while Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .contains("State:\tZ")
    {
        assert!(Instant::now() < end, "the sandbox outlived kill");
        std::thread::sleep(Duration::from_millis(50));
    }
    let (st, _, err) = runsc(&["delete", "--force", "ns1"]);
    assert_eq!(st, 0, "delete: {err}");
}

/// Without CAP_SYS_ADMIN (a normal user; here root with it dropped from its bounding set by
/// setpriv, which keeps /dev/kvm open to it), the sentry makes a user namespace first and
/// the rest works the same.
#[test]
fn without_cap_sys_admin_the_sentry_makes_a_user_namespace() {
    let name = "without_cap_sys_admin_the_sentry_makes_a_user_namespace";
    if skip_without_kvm(name) {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let setpriv = Path::new("/usr/bin/setpriv");
    if root && !setpriv.exists() {
        loud(&format!(
            "*** SKIPPED: {name}: no {} to drop CAP_SYS_ADMIN ***",
            setpriv.display()
        ));
        return;
    }
    let log = std::env::temp_dir().join(format!("runsc-ns-user-{}.stderr", std::process::id()));
    let mut cmd = if root {
        let mut c = Command::new(setpriv);
        c.arg("--bounding-set=-sys_admin").arg(runsc_path());
        c
    } else {
        Command::new(runsc_path())
    };
    let mut child = cmd
        .args(["do", "--", "/bin/sleep", "4"])
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start runsc");
    let pid = sentry_pid(child.id());
    let warned = || std::fs::read_to_string(&log).unwrap_or_default();
    if check_confined("runsc do without CAP_SYS_ADMIN", pid, warned) {
        assert_ne!(
            ns(&pid.to_string(), "user"),
            ns("self", "user"),
            "no user namespace of its own"
        );
    }
    let status = child.wait().expect("wait runsc");
    assert!(status.success(), "{status:?}: {}", warned());
    let _ = std::fs::remove_file(&log);
}

/// Issue 13 item 3: a normal user runs `runsc do` with nothing but access to /dev/kvm. The
/// test gives uid 65534 a /dev/kvm of its own: a device node of mode 0666 bound over
/// /dev/kvm in a private mount namespace (`unshare --mount`), so the host's /dev/kvm is
/// never touched. The sentry then runs as that uid on the host, confined as root's is: its
/// own namespaces (a user namespace first), an empty root, the seccomp filter and
/// no_new_privs in every thread.
#[test]
fn a_normal_user_runs_the_sandbox_with_only_dev_kvm() {
    let name = "a_normal_user_runs_the_sandbox_with_only_dev_kvm";
    if skip_without_kvm(name) {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        loud(&format!(
            "*** SKIPPED: {name}: needs root to give a normal user a /dev/kvm of its own ***"
        ));
        return;
    }
    for tool in ["/usr/bin/unshare", "/usr/bin/setpriv"] {
        if !Path::new(tool).exists() {
            loud(&format!("*** SKIPPED: {name}: no {tool} (util-linux) ***"));
            return;
        }
    }
    let host_kvm = std::fs::metadata("/dev/kvm").expect("stat /dev/kvm");
    let dir = conformance::ScratchDir::new("normal-user-kvm");
    // The private mount namespace's tmpfs goes over the scratch directory, inside it only.
    let script = format!(
        "mount -t tmpfs -o mode=0755 none {d} && mknod {d}/kvm c 10 232 && chmod 666 {d}/kvm \
         && mount --bind {d}/kvm /dev/kvm && exec setpriv --reuid=65534 --regid=65534 \
         --clear-groups {runsc} do -- /bin/sh -c 'id -u; sleep 3; echo done'",
        d = dir.path().display(),
        runsc = runsc_path().display(),
    );
    let log = dir.path().join("stderr");
    let out = dir.path().join("stdout");
    let mut child = Command::new("/usr/bin/unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "/bin/sh",
            "-c",
            &script,
        ])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .expect("start unshare");
    // unshare and sh exec into setpriv and then runsc: the child is runsc's waiting parent,
    // once it runs runsc. Before that, sh's children are mount, mknod and chmod: a search
    // for the sentry then found one of those, gone by the time it was checked (seen once in
    // a full-suite run: "never left the host's root: NotFound").
    let runsc = std::fs::canonicalize(runsc_path()).expect("runsc's path");
    let start = Instant::now();
    while std::fs::read_link(format!("/proc/{}/exe", child.id())).ok() != Some(runsc.clone()) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "runsc never started: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = sentry_pid(child.id());
    let warned = || std::fs::read_to_string(&log).unwrap_or_default();
    if check_confined("runsc do as uid 65534", pid, warned) {
        assert_ne!(
            ns(&pid.to_string(), "user"),
            ns("self", "user"),
            "no user namespace of its own"
        );
        // The filter goes on (on every thread at once) just before the first guest
        // instruction: wait for it on the main thread, for at most 10 s (the program runs
        // for 3), then look at every thread.
        let tasks = format!("/proc/{pid}/task");
        let filtered = || {
            std::fs::read_to_string(format!("/proc/{pid}/status")).is_ok_and(|s| {
                s.lines()
                    .any(|l| l.split_whitespace().eq(["Seccomp:", "2"]))
            })
        };
        let end = Instant::now() + Duration::from_secs(10);
        while !filtered() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        for task in std::fs::read_dir(&tasks).unwrap().flatten() {
            let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            let field = |f: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(f))
                    .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
                    .unwrap_or_default()
            };
            if status.is_empty() || field("Name:").starts_with("kvm-") {
                continue; // ended meanwhile, or KVM's kernel worker
            }
            assert_eq!(field("Uid:"), "65534 65534 65534 65534", "{status}");
            assert_eq!(field("Seccomp:"), "2", "{status}");
            assert_eq!(field("NoNewPrivs:"), "1", "{status}");
        }
    }
    let status = child.wait().expect("wait runsc");
    assert!(status.success(), "{status:?}: {}", warned());
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "65534\ndone\n",
        "stderr: {}",
        warned()
    );
    let after = std::fs::metadata("/dev/kvm").expect("stat /dev/kvm");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (after.mode(), after.uid(), after.rdev()),
        (host_kvm.mode(), host_kvm.uid(), host_kvm.rdev()),
        "the host's /dev/kvm changed"
    );
}
