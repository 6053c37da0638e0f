//! The OCI runtime commands, driven as containerd and Docker drive runc: bundles made here
//! from the static busybox (busybox-static, which .ci/run installs), state under a private
//! `--root`, errors in the `--log` JSON file.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use conformance::{loud, runsc_path, skip_without_kvm, ScratchDir};
use serde_json::{json, Value};

use conformance::BUSYBOX;

/// The capabilities Docker gives a container by default (moby's oci/caps/defaults.go);
/// CapEff 00000000a80425fb under runc.
const DOCKER_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

struct Env {
    dir: ScratchDir,
}

/// Every container still in the state directory is deleted (with --force) when the test
/// ends, a failed one included: a sandbox left running would hold the test's output pipe,
/// and whoever reads it to the end (the suite) would wait for ever.
impl Drop for Env {
    fn drop(&mut self) {
        let Ok(ids) = fs::read_dir(self.root()) else {
            return;
        };
        for id in ids.flatten() {
            if let Some(id) = id.file_name().to_str() {
                let _ = self.run(&["delete", "--force", id]);
            }
        }
    }
}

impl Env {
    /// A scratch directory with a busybox root at `rootfs/`; None (loudly) when the test
    /// can't run here.
    fn new(test: &str) -> Option<Env> {
        if skip_without_kvm(test) {
            return None;
        }
        if conformance::skip_without_busybox(test) {
            return None;
        }
        let dir = ScratchDir::new("oci");
        let root = dir.path().join("bundle/rootfs");
        for d in ["bin", "etc", "tmp", "proc", "dev", "sys", "data"] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::copy(BUSYBOX, root.join("bin/busybox")).unwrap();
        for app in [
            "sh", "echo", "cat", "sleep", "id", "hostname", "pwd", "ls", "true", "kill", "grep",
            "chown",
        ] {
            symlink("busybox", root.join("bin").join(app)).unwrap();
        }
        fs::write(root.join("etc/motd"), "from the bundle\n").unwrap();
        fs::create_dir_all(dir.path().join("hostdir")).unwrap();
        fs::write(dir.path().join("hostdir/f"), "host file\n").unwrap();
        Some(Env { dir })
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("log.json")
    }

    /// Writes config.json running `sh -c SCRIPT`, changed by `edit`.
    fn config(&self, script: &str, edit: impl FnOnce(&mut Value)) {
        let mut c = json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": { "uid": 0, "gid": 0 },
                "args": ["sh", "-c", script],
                "env": ["PATH=/bin", "A=b"],
                "cwd": "/",
                "capabilities": {
                    "bounding": DOCKER_CAPS,
                    "effective": DOCKER_CAPS,
                    "permitted": DOCKER_CAPS
                }
            },
            "root": { "path": "rootfs", "readonly": false },
            "hostname": "ocitest",
            "mounts": [
                { "destination": "/proc", "type": "proc", "source": "proc" },
                { "destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["mode=755"] },
                { "destination": "/dev/pts", "type": "devpts", "source": "devpts" },
                { "destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["mode=1777"] },
                { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue" },
                { "destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["ro"] },
                { "destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro"] },
                { "destination": "/data", "type": "bind", "source": self.dir.path().join("hostdir"), "options": ["rbind", "ro"] },
                { "destination": "/scratch", "type": "tmpfs", "source": "tmpfs" }
            ],
            "linux": { "namespaces": [ { "type": "pid" }, { "type": "mount" } ], "maskedPaths": ["/proc/kcore"] }
        });
        edit(&mut c);
        fs::write(self.bundle().join("config.json"), c.to_string()).unwrap();
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(runsc_path());
        c.arg("--root")
            .arg(self.root())
            .arg("--log")
            .arg(self.log())
            .arg("--log-format")
            .arg("json")
            .args(args)
            .current_dir(self.bundle())
            .stdin(Stdio::null());
        c
    }

    /// Runs a command to its end: (status, stdout, stderr).
    fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = self
            .cmd(args)
            .output()
            .unwrap_or_else(|e| panic!("runsc {args:?}: {e}"));
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn state(&self, id: &str) -> Value {
        let (st, out, err) = self.run(&["state", id]);
        assert_eq!(st, 0, "state {id}: {err}");
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("state JSON {out:?}: {e}"))
    }

    fn wait_status(&self, id: &str, want: &str) {
        let end = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.state(id);
            if s["status"] == want {
                return;
            }
            assert!(Instant::now() < end, "{id} never became {want}: {s}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn last_log_line(&self) -> Value {
        let text = fs::read_to_string(self.log()).unwrap_or_default();
        let line = text.lines().last().unwrap_or("{}").to_string();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("log line {line:?}: {e}"))
    }
}

/// The `Seccomp:` field of every thread of host process `pid`.
fn seccomp_modes(pid: i64) -> Vec<String> {
    thread_field(pid, "Seccomp:")
}

/// The field `key` ("Seccomp:") of every thread of host process `pid`.
fn thread_field(pid: i64, key: &str) -> Vec<String> {
    thread_statuses(pid)
        .iter()
        .filter_map(|s| field(s, key))
        .collect()
}

/// The status file of every thread of process `pid`.
fn thread_statuses(pid: i64) -> Vec<String> {
    fs::read_dir(format!("/proc/{pid}/task"))
        .map(|dir| {
            dir.filter_map(|e| fs::read_to_string(e.ok()?.path().join("status")).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The value of line `key` of a status file.
fn field(status: &str, key: &str) -> Option<String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.trim().to_string())
}

#[test]
fn run_gives_the_process_its_config_and_status() {
    let Some(env) = Env::new("run_gives_the_process_its_config_and_status") else {
        return;
    };
    env.config(
        "echo $A $(hostname) $(id -u):$(id -g) $(pwd); cat /data/f /etc/motd; \
         echo x > w && cat w; { echo y > /data/g; } 2>/dev/null || echo ro-bind; \
         echo t > /scratch/t && cat /scratch/t; ls /dev/null /proc/self/status; exit 7",
        |c| {
            c["process"]["user"] = json!({ "uid": 1000, "gid": 1001 });
            c["process"]["cwd"] = json!("/tmp/made");
        },
    );
    let (st, out, err) = env.run(&["run", "c1"]);
    assert_eq!(
        out,
        "b ocitest 1000:1001 /tmp/made\nhost file\nfrom the bundle\nx\nro-bind\nt\n/dev/null\n/proc/self/status\n",
        "stderr: {err}"
    );
    assert_eq!(st, 7, "stderr: {err}");
    // The bundle and the host directory are untouched, and nothing is left under --root.
    assert_eq!(
        fs::read_to_string(env.bundle().join("rootfs/etc/motd")).unwrap(),
        "from the bundle\n"
    );
    assert!(!env.dir.path().join("hostdir/g").exists());
    assert_eq!(fs::read_dir(env.root()).unwrap().count(), 0);

    env.config("echo x > /etc/motd && cat /etc/motd", |_| {});
    assert_eq!(env.run(&["run", "c4"]).1, "x\n");
    assert_eq!(
        fs::read_to_string(env.bundle().join("rootfs/etc/motd")).unwrap(),
        "from the bundle\n"
    );
    env.config("kill -9 $$", |_| {});
    assert_eq!(env.run(&["run", "c2"]).0, 137);
    env.config("echo x > /etc/motd", |c| {
        c["root"]["readonly"] = json!(true)
    });
    let (st, _, err) = env.run(&["run", "c3"]);
    assert_ne!(st, 0, "a read-only root took a write: {err}");
}

#[test]
fn lifecycle_create_start_exec_pause_kill_delete() {
    let Some(env) = Env::new("lifecycle_create_start_exec_pause_kill_delete") else {
        return;
    };
    let hook_out = env.dir.path().join("hook.json");
    env.config(
        "trap 'echo got TERM; exit 3' TERM; echo started; while :; do sleep 0.05; done",
        |c| {
            c["hooks"] = json!({ "prestart": [ {
                "path": "/bin/sh",
                "args": ["sh", "-c", format!("cat > {}", hook_out.display())]
            } ] });
        },
    );
    let stdout = env.dir.path().join("stdout");
    let pid_file = env.dir.path().join("init.pid");
    let mut create = env.cmd(&["create", "--bundle", ".", "--pid-file"]);
    create
        .arg(&pid_file)
        .arg("life")
        .stdout(fs::File::create(&stdout).unwrap());
    let st = create.status().unwrap();
    assert!(st.success(), "create: {:?}", fs::read_to_string(env.log()));
    let s = env.state("life");
    assert_eq!(s["status"], "created");
    assert_eq!(s["id"], "life");
    let pid: i64 = fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(s["pid"], pid);
    assert_eq!(s["bundle"], json!(env.bundle().canonicalize().unwrap()));
    let hook: Value = serde_json::from_slice(&fs::read(&hook_out).unwrap()).unwrap();
    assert_eq!(
        (hook["id"].clone(), hook["pid"].clone()),
        (json!("life"), json!(pid))
    );
    // Nothing runs before start.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(fs::read_to_string(&stdout).unwrap(), "");
    // The sandbox process is under its seccomp filter from create on, every thread.
    let modes = seccomp_modes(pid);
    assert!(
        !modes.is_empty() && modes.iter().all(|m| m == "2"),
        "Seccomp of the created sandbox's threads: {modes:?}"
    );
    // ... and, created by root, runs as a user of its own (boot::identity: the range's
    // base plus its pid namespace's number), every thread.
    let own =
        boot::identity::id_for_pid_namespace(std::path::Path::new(&format!("/proc/{pid}/ns/pid")));
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 && own.is_some_and(conformance::uid_mapped) {
        // KVM's own workers (`kvm-*`, kernel code only) are made with the VM by the thread
        // that makes it (boot::platform_thread), before the change: not the sentry's.
        let uids: Vec<String> = thread_statuses(pid)
            .iter()
            .filter(|s| !field(s, "Name:").is_some_and(|n| n.starts_with("kvm-")))
            .filter_map(|s| field(s, "Uid:"))
            .collect();
        let own = format!("{0}\t{0}\t{0}\t{0}", own.unwrap_or_default());
        assert!(
            !uids.is_empty() && uids.iter().all(|u| *u == own),
            "Uid of the created sandbox's threads: {uids:?}"
        );
    }
    // A second create with the same id is refused.
    assert_ne!(env.run(&["create", "life"]).0, 0);
    assert!(env.last_log_line()["msg"]
        .as_str()
        .unwrap()
        .contains("container with id exists: life"));

    assert_eq!(env.run(&["start", "life"]).0, 0);
    env.wait_status("life", "running");
    let (st, out, _) = env.run(&["exec", "life", "sh", "-c", "echo in exec $A; exit 5"]);
    assert_eq!((st, out.as_str()), (5, "in exec b\n"));
    let proc_file = env.file_json(
        "process.json",
        json!({ "args": ["pwd"], "cwd": "/tmp", "env": ["PATH=/bin"], "user": { "uid": 0, "gid": 0 } }),
    );
    let (st, out, _) = env.run(&["exec", "--process", &proc_file, "life"]);
    assert_eq!((st, out.as_str()), (0, "/tmp\n"));
    // The table lists the sandbox's own pids: the container's first process is 1.
    let (st, out, _) = env.run(&["ps", "life"]);
    assert_eq!(st, 0);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("UID   PID   PPID  CMD"));
    let first: Vec<&str> = lines.next().unwrap_or("").split_whitespace().collect();
    assert_eq!(first[..4], ["0", "1", "0", "sh"], "ps: {out}");
    let (st, out, _) = env.run(&["ps", "--format", "json", "life"]);
    assert_eq!(st, 0);
    assert_eq!(serde_json::from_str::<Value>(&out).unwrap(), json!([pid]));
    assert_eq!(env.run(&["pause", "life"]).0, 0);
    assert_eq!(env.state("life")["status"], "paused");
    assert_eq!(env.run(&["resume", "life"]).0, 0);
    assert_eq!(env.state("life")["status"], "running");
    let (st, list, _) = env.run(&["list", "--format", "json"]);
    assert_eq!(st, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&list).unwrap()[0]["id"],
        "life"
    );
    // A running container can't be deleted without --force.
    assert_ne!(env.run(&["delete", "life"]).0, 0);
    assert!(env.last_log_line()["msg"]
        .as_str()
        .unwrap()
        .contains("that is not stopped: running"));

    assert_eq!(env.run(&["kill", "life", "SIGTERM"]).0, 0);
    env.wait_status("life", "stopped");
    assert_eq!(fs::read_to_string(&stdout).unwrap(), "started\ngot TERM\n");
    assert_eq!(env.run(&["delete", "life"]).0, 0);
    assert!(!env.root().join("life").exists());
    assert_ne!(env.run(&["state", "life"]).0, 0);
    // delete --force of what doesn't exist is not an error (Docker calls it after delete).
    assert_eq!(env.run(&["delete", "--force", "life"]).0, 0);
}

#[test]
fn delete_force_kills_and_names_and_numbers_work() {
    let Some(env) = Env::new("delete_force_kills_and_names_and_numbers_work") else {
        return;
    };
    env.config("sleep 1000", |_| {});
    // The container keeps the stdio it was given: a file, so nobody waits for its end.
    let mut run = env.cmd(&["run", "--detach", "k1"]);
    run.stdout(fs::File::create(env.dir.path().join("out1")).unwrap());
    assert!(run.status().unwrap().success());
    env.wait_status("k1", "running");
    let pid = env.state("k1")["pid"].as_i64().unwrap();
    assert_eq!(env.run(&["delete", "--force", "k1"]).0, 0);
    assert!(!env.root().join("k1").exists());
    assert!(
        !Path::new(&format!("/proc/{pid}/cmdline")).exists()
            || fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.contains(") Z"))
                .unwrap_or(true),
        "the sandbox process {pid} still runs"
    );
    // kill by number; a created container dies of it without running.
    env.config("echo ran", |_| {});
    let out = env.dir.path().join("out2");
    let mut c = env.cmd(&["create", "k2"]);
    c.stdout(fs::File::create(&out).unwrap());
    assert!(c.status().unwrap().success());
    assert_eq!(env.run(&["kill", "k2", "9"]).0, 0);
    env.wait_status("k2", "stopped");
    assert_eq!(fs::read_to_string(&out).unwrap(), "");
    assert_eq!(env.run(&["delete", "k2"]).0, 0);
    assert_ne!(env.run(&["kill", "k2", "NOSUCHSIG"]).0, 0);
}

#[test]
fn a_missing_entrypoint_fails_create_as_runc_says() {
    let Some(env) = Env::new("a_missing_entrypoint_fails_create_as_runc_says") else {
        return;
    };
    env.config("", |c| c["process"]["args"] = json!(["/no/such"]));
    let (st, _, err) = env.run(&["create", "m1"]);
    assert_eq!(st, 1, "{err}");
    let line = env.last_log_line();
    assert_eq!(line["level"], "error");
    assert_eq!(
        line["msg"],
        "exec: \"/no/such\": stat /no/such: no such file or directory"
    );
    assert!(line["time"].as_str().is_some());
    assert!(!env.root().join("m1").exists(), "create left state behind");
    env.config("", |c| c["process"]["args"] = json!(["nosuch"]));
    assert_eq!(env.run(&["create", "m2"]).0, 1);
    assert_eq!(
        env.last_log_line()["msg"],
        "exec: \"nosuch\": executable file not found in $PATH"
    );
    // Bad ids and bad configs are refused with a message.
    assert_ne!(env.run(&["create", "../x"]).0, 0);
    fs::write(
        env.bundle().join("config.json"),
        r#"{"ociVersion":"1.0.2","process":{"args":"notalist"}}"#,
    )
    .unwrap();
    assert_ne!(env.run(&["create", "m3"]).0, 0);
    let msg = env.last_log_line()["msg"].as_str().unwrap().to_string();
    // The message names the field.
    assert!(
        msg.contains("config.json: process.args: invalid type"),
        "{msg}"
    );
}

#[test]
fn the_memory_limit_bounds_the_sandbox() {
    let Some(env) = Env::new("the_memory_limit_bounds_the_sandbox") else {
        return;
    };
    // 64 MB of string in awk: fine without a limit, killed under a 32 MB one.
    let script = "awk 'BEGIN{s=\"x\"; while(length(s)<64000000) s=s s; print length(s)}' 2>/dev/null; echo $?";
    env.config(script, |_| {});
    assert_eq!(env.run(&["run", "l1"]).1, "67108864\n0\n");
    env.config(script, |c| {
        c["linux"]["resources"] = json!({ "memory": { "limit": 32 << 20 } })
    });
    let out = env.run(&["run", "l2"]).1;
    assert_ne!(out, "67108864\n0\n", "the limit did not hold");
    assert!(out.ends_with("137\n") || out.ends_with("1\n"), "{out:?}");
}

#[test]
fn features_and_spec() {
    let Some(env) = Env::new("features_and_spec") else {
        return;
    };
    let (st, out, _) = env.run(&["features"]);
    assert_eq!(st, 0);
    let f: Value = serde_json::from_str(&out).unwrap();
    assert!(f["hooks"].as_array().unwrap().contains(&json!("prestart")));
    let d = env.dir.path().join("spec");
    fs::create_dir_all(&d).unwrap();
    let (st, _, _) = env.run(&["spec", "--bundle", d.to_str().unwrap()]);
    assert_eq!(st, 0);
    let c: Value = serde_json::from_slice(&fs::read(d.join("config.json")).unwrap()).unwrap();
    assert_eq!(c["root"]["path"], "rootfs");
    assert_ne!(env.run(&["spec", "--bundle", d.to_str().unwrap()]).0, 0);
}

impl Env {
    fn file_json(&self, name: &str, v: Value) -> String {
        let p = self.dir.path().join(name);
        fs::write(&p, v.to_string()).unwrap();
        p.display().to_string()
    }
}

#[test]
fn the_pids_limit_bounds_fork() {
    let Some(env) = Env::new("the_pids_limit_bounds_fork") else {
        return;
    };
    // Six background sleeps: all start without a limit; under pids.limit 4 (the shell and
    // three sleeps) the fourth fork fails with EAGAIN, which the shell reports.
    let script = "for i in 1 2 3 4 5 6; do sleep 1 & done 2>&1 | cat; wait; echo done";
    env.config(script, |_| {});
    let (_, out, err) = env.run(&["run", "p1"]);
    assert_eq!(out, "done\n", "stderr: {err}");
    let script = "for i in 1 2 3 4 5 6; do sleep 1 & done; wait; echo done";
    env.config(script, |c| {
        c["linux"]["resources"] = json!({ "pids": { "limit": 4 } })
    });
    let (_, out, err) = env.run(&["run", "p2"]);
    assert!(
        out.contains("Resource temporarily unavailable")
            || err.contains("Resource temporarily unavailable"),
        "no fork failed under the limit: {out:?} {err:?}"
    );
}

#[test]
fn readonly_and_masked_paths_cover_files_and_directories() {
    let Some(env) = Env::new("readonly_and_masked_paths_cover_files_and_directories") else {
        return;
    };
    let script =
        "wc -c < /etc/motd; ls /data | wc -l; test -c /etc/motd && echo masked-file-is-null; \
         { echo x > /etc/new; } 2>/dev/null || echo ro-dir; \
         { echo x >> /file; } 2>/dev/null || echo ro-file; \
         echo y > /tmp/rw && echo rw-elsewhere; \
         { echo h > /proc/sys/kernel/hostname; } 2>/dev/null || echo ro-proc-sys; \
         cat /bin/true > /dev/null && echo still-readable";
    // A file of its own for the read-only file: not /bin/busybox, which the shell runs
    // (writing a running program is ETXTBSY anyway, as on Linux).
    fs::write(env.bundle().join("rootfs/file"), "a file\n").unwrap();
    env.config(script, |_| {});
    let (_, before, err) = env.run(&["run", "r1"]);
    assert_eq!(
        before, "16\n1\nrw-elsewhere\nro-proc-sys\nstill-readable\n",
        "unmasked: {err}"
    );
    env.config(script, |c| {
        c["linux"]["readonlyPaths"] = json!(["/etc", "/file", "/proc/sys", "/no/such"]);
        c["linux"]["maskedPaths"] = json!(["/etc/motd", "/data", "/no/such/file"]);
    });
    let (st, out, err) = env.run(&["run", "r2"]);
    assert_eq!(
        out,
        "0\n0\nmasked-file-is-null\nro-dir\nro-file\nrw-elsewhere\nro-proc-sys\nstill-readable\n",
        "status {st}, stderr: {err}"
    );
    // The bundle is untouched.
    assert_eq!(
        fs::read_to_string(env.bundle().join("rootfs/etc/motd")).unwrap(),
        "from the bundle\n"
    );
}

#[test]
fn the_image_annotation_selects_a_converted_image_as_root() {
    use image::testing::{self, Comp};
    let Some(env) = Env::new("the_image_annotation_selects_a_converted_image_as_root") else {
        return;
    };
    // A one-layer image: busybox and an /etc/motd of its own, converted into a store.
    let busybox = fs::read(BUSYBOX).unwrap();
    let layer = testing::layer_of_tar(
        testing::layer_tar_owned(&[
            ("bin", None, 0o755, 0),
            ("bin/busybox", Some(&busybox), 0o755, 0),
            ("etc", None, 0o755, 0),
            ("etc/motd", Some(b"from the image\n"), 0o644, 0),
            ("tmp", None, 0o1777, 0),
        ]),
        Comp::Gzip,
    );
    let layout = env.dir.path().join("layout");
    testing::oci_layout(
        &layout,
        "annotated",
        &[layer],
        json!({ "Cmd": ["/bin/busybox"] }),
    );
    let store = env.dir.path().join("store");
    let (st, _, err) = env.run(&[
        "image",
        "convert",
        &format!("oci:{}:annotated", layout.display()),
        "-o",
        store.to_str().unwrap(),
        "--quiet",
    ]);
    assert_eq!(st, 0, "convert: {err}");
    let script = "read l < /etc/motd; echo \"$l\"; echo w > /tmp/x && read y < /tmp/x && echo $y";
    let with = |name: &str| {
        let store = store.clone();
        let name = name.to_string();
        move |c: &mut Value| {
            c["process"]["args"] = json!(["/bin/busybox", "sh", "-c", script]);
            c["annotations"] = json!({
                "dev.runsc.image": name,
                "dev.runsc.image-store": store,
            });
        }
    };
    env.config(script, with("annotated"));
    let (st, out, err) = env.run(&["run", "i1"]);
    assert_eq!(
        (st, out.as_str()),
        (0, "from the image\nw\n"),
        "stderr: {err}"
    );
    // Without the annotation the bundle's root.path is the root.
    env.config(script, |c| {
        c["process"]["args"] = json!(["/bin/busybox", "sh", "-c", script]);
    });
    assert_eq!(env.run(&["run", "i2"]).1, "from the bundle\nw\n");
    // An image the store doesn't have: create fails, naming the annotation.
    env.config(script, with("no-such-image"));
    assert_ne!(env.run(&["create", "i3"]).0, 0);
    let msg = env.last_log_line()["msg"].as_str().unwrap().to_string();
    assert!(msg.contains("dev.runsc.image=no-such-image"), "{msg}");
}

/// Receives one descriptor sent with SCM_RIGHTS on `stream` (as containerd's shim receives
/// the pty master from `--console-socket`).
fn receive_fd(stream: &std::os::unix::net::UnixStream) -> std::os::fd::OwnedFd {
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut name = [0u8; 256];
    let mut iov = libc::iovec {
        iov_base: name.as_mut_ptr().cast(),
        iov_len: name.len(),
    };
    // Room for one cmsghdr with one int, aligned as the kernel wants.
    let mut control = [0u64; 8];
    // SAFETY: an all-zero msghdr is valid; the pointers set below outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: msg points at buffers we own for the call's duration.
    let n = unsafe { libc::recvmsg(stream.as_raw_fd(), &mut msg, 0) };
    assert!(
        n > 0,
        "recvmsg on the console socket: {}",
        std::io::Error::last_os_error()
    );
    // SAFETY: msg was filled in by recvmsg; CMSG_FIRSTHDR/CMSG_DATA walk its control buffer.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        assert!(!c.is_null(), "no descriptor came with the console");
        assert_eq!(
            ((*c).cmsg_level, (*c).cmsg_type),
            (libc::SOL_SOCKET, libc::SCM_RIGHTS)
        );
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<i32>());
        std::os::fd::OwnedFd::from_raw_fd(fd)
    }
}

/// `process.terminal`: the pty master goes to `--console-socket`, and the terminal starts at
/// `process.consoleSize` (so a program's first TIOCGWINSZ sees the caller's size, not 0x0,
/// as with runc); the program's standard streams are that terminal, which it sees as its
/// /dev/pts/0.
#[test]
fn a_terminal_starts_at_the_console_size() {
    let Some(env) = Env::new("a_terminal_starts_at_the_console_size") else {
        return;
    };
    env.config(
        "stty size; [ -t 0 ] && echo stdin is a tty; tty; ls -1 /dev/pts",
        |c| {
            c["process"]["terminal"] = json!(true);
            c["process"]["consoleSize"] = json!({ "height": 33, "width": 77 });
        },
    );
    let sock_path = env.dir.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock_path).unwrap();
    let receiver = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        receive_fd(&stream)
    });
    let (st, _, err) = env.run(&[
        "run",
        "--detach",
        "--console-socket",
        sock_path.to_str().unwrap(),
        "tty1",
    ]);
    assert_eq!(st, 0, "run: {err} {:?}", fs::read_to_string(env.log()));
    let master = fs::File::from(receiver.join().unwrap());
    env.wait_status("tty1", "stopped");
    // The pty's output until the slave is gone (EIO); the line discipline adds \r.
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    let mut reader = &master;
    use std::io::Read;
    while let Ok(n) = reader.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&out).replace('\r', "");
    // Its terminal is the container's /dev/pts/0, as under runc.
    assert_eq!(text, "33 77\nstdin is a tty\n/dev/pts/0\n0\nptmx\n");
    assert_eq!(env.run(&["delete", "tty1"]).0, 0);
}

#[test]
fn file_bind_mounts_are_the_host_files_live() {
    let Some(env) = Env::new("file_bind_mounts_are_the_host_files_live") else {
        return;
    };
    // Docker's resolv.conf is written again by its prestart hook after `create`: the
    // container must see what the file holds when it reads it, as through runc's bind mount.
    let resolv = env.dir.path().join("hostdir/resolv.conf");
    let rw = env.dir.path().join("hostdir/rw");
    fs::write(&resolv, "nameserver 10.0.0.1\n").unwrap();
    fs::write(&rw, "before\n").unwrap();
    env.config(
        "cat /etc/resolv.conf; echo written > /etc/rw; \
         { echo y > /etc/resolv.conf; } 2>/dev/null || echo ro-file; cat /new/dir/file",
        |c| {
            let mounts = c["mounts"].as_array_mut().unwrap();
            for (dest, source, mode) in [
                ("/etc/resolv.conf", &resolv, "ro"),
                ("/etc/rw", &rw, "rw"),
                ("/new/dir/file", &rw, "ro"),
            ] {
                mounts.push(json!({ "destination": dest, "type": "bind",
                    "source": source, "options": ["rbind", mode] }));
            }
        },
    );
    let stdout = env.dir.path().join("stdout");
    let st = env
        .cmd(&["create", "--bundle", ".", "f1"])
        .stdout(fs::File::create(&stdout).unwrap())
        .status()
        .unwrap();
    assert!(st.success(), "create: {:?}", fs::read_to_string(env.log()));
    fs::write(&resolv, "nameserver 127.0.0.11\n").unwrap();
    assert_eq!(env.run(&["start", "f1"]).0, 0);
    env.wait_status("f1", "stopped");
    assert_eq!(env.run(&["delete", "f1"]).0, 0);
    assert_eq!(
        fs::read_to_string(&stdout).unwrap(),
        "nameserver 127.0.0.11\nro-file\nwritten\n"
    );
    assert_eq!(
        fs::read_to_string(&rw).unwrap(),
        "written\n",
        "rw reaches the host"
    );
    assert_eq!(
        fs::read_to_string(&resolv).unwrap(),
        "nameserver 127.0.0.11\n"
    );
}

/// Deletes container `.1` (with --force) when dropped, so that a failed assertion leaves no
/// sandbox running.
struct Deleted<'a>(&'a Env, &'a str);

impl Drop for Deleted<'_> {
    fn drop(&mut self) {
        let _ = self.0.run(&["delete", "--force", self.1]);
    }
}

/// The capability and no_new_privs lines of /proc/self/status.
const STATUS_LINES: &str = "grep -E '^(Cap|NoNew)' /proc/self/status";

fn status_lines(inh: u64, prm: u64, eff: u64, bnd: u64, amb: u64, nnp: u8) -> String {
    format!(
        "CapInh:\t{inh:016x}\nCapPrm:\t{prm:016x}\nCapEff:\t{eff:016x}\nCapBnd:\t{bnd:016x}\n\
         CapAmb:\t{amb:016x}\nNoNewPrivs:\t{nnp}\n"
    )
}

/// process.capabilities and noNewPrivileges: the sets the program sees are what runc 1.1.5
/// gives for the same config.json (each expected value below was checked against
/// `runc run` on this host): runc's init applies the five sets, then the kernel's execve
/// recomputes them. An unknown name is ignored (as runc: a warning); a capset runc's
/// would fail is refused, naming the field.
#[test]
fn process_capabilities_and_no_new_privileges() {
    let Some(env) = Env::new("process_capabilities_and_no_new_privileges") else {
        return;
    };
    let reduced = json!({
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_SETUID", "CAP_NET_RAW"],
        "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_SETUID"],
        "effective": ["CAP_CHOWN"],
        "inheritable": ["CAP_KILL"],
        "ambient": ["CAP_KILL", "CAP_NET_RAW", "CAP_NO_SUCH"]
    });
    let cases = [
        // Root: permitted and effective become bounding | inheritable (with the ambient
        // set, cut to what is permitted and inheritable).
        (
            reduced.clone(),
            0,
            false,
            status_lines(0x20, 0x20a1, 0x20a1, 0x20a1, 0x20, 0),
        ),
        // no_new_privs: nothing beyond the permitted set the config gave.
        (
            reduced.clone(),
            0,
            true,
            status_lines(0x20, 0xa1, 0xa1, 0x20a1, 0x20, 1),
        ),
        // Not root: only the ambient set survives execve.
        (
            json!({
                "bounding": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
                "permitted": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
                "effective": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
                "inheritable": ["CAP_NET_BIND_SERVICE", "CAP_KILL"],
                "ambient": ["CAP_NET_BIND_SERVICE", "CAP_KILL"]
            }),
            1000,
            false,
            status_lines(0x420, 0x420, 0x420, 0x420, 0x420, 0),
        ),
        (
            json!({ "bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"] }),
            1000,
            false,
            status_lines(0, 0, 0, 0x20, 0, 0),
        ),
        // No capabilities at all: runc's init drops every set.
        (Value::Null, 0, false, status_lines(0, 0, 0, 0, 0, 0)),
    ];
    for (i, (caps, uid, nnp, want)) in cases.into_iter().enumerate() {
        env.config(STATUS_LINES, |c| {
            c["process"]["capabilities"] = caps.clone();
            c["process"]["user"] = json!({ "uid": uid, "gid": uid });
            c["process"]["noNewPrivileges"] = json!(nnp);
        });
        let (st, out, err) = env.run(&["run", &format!("caps{i}")]);
        assert_eq!((st, out.as_str()), (0, want.as_str()), "case {i}: {err}");
        if i == 0 {
            assert!(
                err.contains("ignoring unknown or unavailable capabilities")
                    && err.contains("CAP_NO_SUCH"),
                "no warning for the unknown capability: {err}"
            );
        }
    }
    // Docker's default set, as root: CapEff 00000000a80425fb, as under runc.
    env.config(STATUS_LINES, |_| {});
    let (_, out, err) = env.run(&["run", "docker-default"]);
    assert_eq!(
        out,
        status_lines(0, 0xa80425fb, 0xa80425fb, 0xa80425fb, 0, 0),
        "{err}"
    );
    // Without CAP_CHOWN root can't give a file away; with it, it can.
    let chown = "echo x > /tmp/f && chown 1000 /tmp/f && echo chowned";
    env.config(chown, |_| {});
    assert_eq!(env.run(&["run", "chown-yes"]).1, "chowned\n");
    env.config(chown, |c| {
        let no_chown: Vec<&str> = DOCKER_CAPS
            .iter()
            .copied()
            .filter(|&c| c != "CAP_CHOWN")
            .collect();
        c["process"]["capabilities"] = json!({
            "bounding": no_chown, "effective": no_chown, "permitted": no_chown
        });
    });
    let (st, out, err) = env.run(&["run", "chown-no"]);
    assert_eq!((st, out.as_str()), (1, ""), "{err}");
    assert!(err.contains("Operation not permitted"), "{err}");
    // An effective capability that isn't permitted: runc's capset fails; we refuse it.
    env.config("true", |c| {
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_CHOWN"], "permitted": ["CAP_CHOWN"], "effective": ["CAP_KILL"]
        });
    });
    assert_ne!(env.run(&["run", "caps-bad"]).0, 0);
    assert_eq!(
        env.last_log_line()["msg"],
        "process.capabilities.effective: CAP_KILL: not in process.capabilities.permitted \
         (capset: operation not permitted)"
    );
    // A set that isn't a list of names is refused by the parser, which names the field.
    env.config("true", |c| {
        c["process"]["capabilities"] = json!({ "bounding": "CAP_CHOWN" });
    });
    assert_ne!(env.run(&["run", "caps-shape"]).0, 0);
    let msg = env.last_log_line()["msg"].as_str().unwrap().to_string();
    assert!(
        msg.contains("config.json: process.capabilities.bounding: invalid type"),
        "{msg}"
    );
}

/// `exec` takes the capabilities and no_new_privs of its process: the container's (without
/// --process, or a --process without capabilities, as runc's exec), plus `--cap`, or the
/// process file's own; `--no-new-privs` sets no_new_privs.
#[test]
fn exec_capabilities_and_no_new_privileges() {
    let Some(env) = Env::new("exec_capabilities_and_no_new_privileges") else {
        return;
    };
    env.config("sleep 1000", |c| {
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_CHOWN", "CAP_KILL"],
            "permitted": ["CAP_CHOWN", "CAP_KILL"],
            "effective": ["CAP_CHOWN", "CAP_KILL"]
        });
    });
    let _deleted = Deleted(&env, "ex");
    let mut run = env.cmd(&["run", "--detach", "ex"]);
    run.stdout(fs::File::create(env.dir.path().join("out")).unwrap());
    assert!(run.status().unwrap().success());
    env.wait_status("ex", "running");
    let exec = |args: &[&str]| {
        let mut a = vec!["exec"];
        a.extend_from_slice(args);
        env.run(&a)
    };
    let (st, out, err) = exec(&["ex", "sh", "-c", STATUS_LINES]);
    assert_eq!(
        (st, out),
        (0, status_lines(0, 0x21, 0x21, 0x21, 0, 0)),
        "{err}"
    );
    let (st, out, err) = exec(&[
        "--cap",
        "CAP_SYS_ADMIN",
        "--cap",
        "CAP_NO_SUCH",
        "--no-new-privs",
        "ex",
        "sh",
        "-c",
        STATUS_LINES,
    ]);
    let with_admin = 0x21 | 1 << 21;
    assert_eq!(
        (st, out),
        (0, status_lines(0, with_admin, with_admin, with_admin, 0, 1)),
        "{err}"
    );
    assert!(err.contains("CAP_NO_SUCH"), "{err}");
    let own = env.file_json(
        "own.json",
        json!({
            "args": ["sh", "-c", STATUS_LINES], "cwd": "/", "env": ["PATH=/bin"],
            "user": { "uid": 0, "gid": 0 }, "noNewPrivileges": true,
            "capabilities": { "bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"], "effective": ["CAP_KILL"] }
        }),
    );
    let (st, out, err) = exec(&["--process", &own, "ex"]);
    assert_eq!(
        (st, out),
        (0, status_lines(0, 0x20, 0x20, 0x20, 0, 1)),
        "{err}"
    );
    let inherit = env.file_json(
        "inherit.json",
        json!({
            "args": ["sh", "-c", STATUS_LINES], "cwd": "/", "env": ["PATH=/bin"],
            "user": { "uid": 0, "gid": 0 }
        }),
    );
    let (st, out, err) = exec(&["--process", &inherit, "ex"]);
    assert_eq!(
        (st, out),
        (0, status_lines(0, 0x21, 0x21, 0x21, 0, 0)),
        "{err}"
    );
    // The exec'd root without CAP_CHOWN in its own set can't chown.
    let no_chown = env.file_json(
        "nochown.json",
        json!({
            "args": ["chown", "1000", "/tmp"], "cwd": "/", "env": ["PATH=/bin"],
            "user": { "uid": 0, "gid": 0 },
            "capabilities": { "bounding": ["CAP_KILL"], "permitted": ["CAP_KILL"], "effective": ["CAP_KILL"] }
        }),
    );
    let (st, _, err) = exec(&["--process", &no_chown, "ex"]);
    assert_eq!(st, 1, "{err}");
    assert_eq!(env.run(&["delete", "--force", "ex"]).0, 0);
}

/// process.rlimits: the container's process starts with them (over the host's limits), an
/// exec takes its own or, without any, the container's (as runc's exec); limits runc's
/// setrlimit would refuse are refused, naming the field.
#[test]
fn process_rlimits_for_init_and_exec() {
    let Some(env) = Env::new("process_rlimits_for_init_and_exec") else {
        return;
    };
    let limits = "echo $(ulimit -Sn) $(ulimit -Hn) $(ulimit -Sc) $(ulimit -Hc)";
    env.config(&format!("{limits}; sleep 1000"), |c| {
        c["process"]["rlimits"] = json!([
            { "type": "RLIMIT_NOFILE", "soft": 100, "hard": 200 },
            { "type": "RLIMIT_CORE", "soft": 0, "hard": 4096 }
        ]);
    });
    let out_file = env.dir.path().join("out");
    let _deleted = Deleted(&env, "rl");
    let mut run = env.cmd(&["run", "--detach", "rl"]);
    run.stdout(fs::File::create(&out_file).unwrap());
    assert!(run.status().unwrap().success());
    env.wait_status("rl", "running");
    let end = Instant::now() + Duration::from_secs(20);
    while fs::read_to_string(&out_file).unwrap_or_default().is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    // ulimit -c counts 512-byte blocks in busybox's sh.
    assert_eq!(fs::read_to_string(&out_file).unwrap(), "100 200 0 8\n");
    let (st, out, err) = env.run(&["exec", "rl", "sh", "-c", limits]);
    assert_eq!((st, out.as_str()), (0, "100 200 0 8\n"), "{err}");
    let inherit = env.file_json(
        "inherit.json",
        json!({ "args": ["sh", "-c", limits], "cwd": "/", "env": ["PATH=/bin"],
                "user": { "uid": 0, "gid": 0 } }),
    );
    let (st, out, err) = env.run(&["exec", "--process", &inherit, "rl"]);
    assert_eq!((st, out.as_str()), (0, "100 200 0 8\n"), "{err}");
    let own = env.file_json(
        "own.json",
        json!({ "args": ["sh", "-c", limits], "cwd": "/", "env": ["PATH=/bin"],
                "user": { "uid": 0, "gid": 0 },
                "rlimits": [ { "type": "RLIMIT_NOFILE", "soft": 50, "hard": 60 } ] }),
    );
    let (st, out, err) = env.run(&["exec", "--process", &own, "rl"]);
    let host_core = {
        let out = Command::new("sh")
            .args(["-c", "echo $(ulimit -Sc) $(ulimit -Hc)"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!((st, out), (0, format!("50 60 {host_core}\n")), "{err}");
    assert_eq!(env.run(&["delete", "--force", "rl"]).0, 0);

    env.config("true", |c| {
        c["process"]["rlimits"] = json!([{ "type": "RLIMIT_NOFILE", "soft": 300, "hard": 200 }]);
    });
    assert_ne!(env.run(&["run", "rl-bad"]).0, 0);
    let msg = env.last_log_line()["msg"].as_str().unwrap().to_string();
    assert!(
        msg.starts_with("process.rlimits: resource 7 (soft 300, hard 200): the soft limit"),
        "{msg}"
    );
}

/// A bind mount of a single host file (Docker's /etc/hosts, hostname and resolv.conf, or
/// `-v FILE:DEST`) is the host file itself, as runc binds it: the container's writes reach
/// it, the host's show, and a read-only one refuses writes.
#[test]
fn file_bind_mounts_are_the_host_file() {
    let Some(env) = Env::new("file_bind_mounts_are_the_host_file") else {
        return;
    };
    let host = env.dir.path().join("hostdir");
    fs::write(host.join("rw"), "rw on the host\n").unwrap();
    fs::write(host.join("ro"), "ro on the host\n").unwrap();
    env.config(
        "cat /etc/rwfile /etc/rofile /new/dir/file; echo from the container >> /etc/rwfile; \
         { echo x >> /etc/rofile; } 2>/dev/null && echo ro-written || echo ro-refused; \
         while [ ! -e /etc/rwfile.go ]; do [ \"$(cat /etc/rwfile)\" = changed ] && break; sleep 0.05; done; \
         cat /etc/rwfile",
        |c| {
            let m = c["mounts"].as_array_mut().unwrap();
            m.push(json!({ "destination": "/etc/rwfile", "type": "bind",
                           "source": host.join("rw"), "options": ["rbind", "rw"] }));
            m.push(json!({ "destination": "/etc/rofile", "type": "bind",
                           "source": host.join("ro"), "options": ["rbind", "ro"] }));
            m.push(json!({ "destination": "/new/dir/file", "type": "bind",
                           "source": host.join("f"), "options": ["rbind", "ro"] }));
        },
    );
    let out_file = env.dir.path().join("out");
    let _deleted = Deleted(&env, "fb");
    let mut run = env.cmd(&["run", "--detach", "fb"]);
    run.stdout(fs::File::create(&out_file).unwrap());
    assert!(run.status().unwrap().success());
    // The container's append reaches the host file; then the host's change shows inside.
    let end = Instant::now() + Duration::from_secs(20);
    while !fs::read_to_string(host.join("rw"))
        .unwrap()
        .contains("from the container")
    {
        assert!(
            Instant::now() < end,
            "the container's write never reached the host file"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        fs::read_to_string(host.join("rw")).unwrap(),
        "rw on the host\nfrom the container\n"
    );
    fs::write(host.join("rw"), "changed\n").unwrap();
    env.wait_status("fb", "stopped");
    assert_eq!(
        fs::read_to_string(&out_file).unwrap(),
        "rw on the host\nro on the host\nhost file\nro-refused\nchanged\n"
    );
    assert_eq!(
        fs::read_to_string(host.join("ro")).unwrap(),
        "ro on the host\n"
    );
    assert_eq!(env.run(&["delete", "fb"]).0, 0);
}

/// `kill --all` reaches every process of the container, where a plain `kill` reaches only
/// the first (which, as a pid namespace's init, takes only signals it handles); `events
/// --stats` gives one sample; the global flags runc takes are accepted and `--debug-log`
/// writes a log per command.
#[test]
fn kill_all_events_and_global_flags() {
    let Some(env) = Env::new("kill_all_events_and_global_flags") else {
        return;
    };
    let rw = env.dir.path().join("rw");
    fs::create_dir_all(&rw).unwrap();
    env.config(
        "(trap 'echo child got TERM > /rw/child; exit' TERM; while :; do sleep 0.05; done) & \
         while :; do sleep 0.05; done",
        |c| {
            c["mounts"].as_array_mut().unwrap().push(json!({
                "destination": "/rw", "type": "bind", "source": rw, "options": ["rbind", "rw"]
            }));
        },
    );
    let _deleted = Deleted(&env, "ka");
    let mut run = env.cmd(&["run", "--detach", "ka"]);
    run.stdout(Stdio::null());
    assert!(run.status().unwrap().success());
    env.wait_status("ka", "running");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(env.run(&["kill", "ka", "TERM"]).0, 0);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!rw.join("child").exists(), "a plain kill reached the child");
    assert_eq!(env.state("ka")["status"], "running");
    assert_eq!(env.run(&["kill", "--all", "ka", "TERM"]).0, 0);
    // The trap's redirection creates the file before echo writes it: wait for the line.
    let end = Instant::now() + Duration::from_secs(20);
    while fs::read_to_string(rw.join("child")).map_or(true, |s| !s.ends_with('\n')) {
        assert!(Instant::now() < end, "kill --all never reached the child");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        fs::read_to_string(rw.join("child")).unwrap(),
        "child got TERM\n"
    );
    // The first process has no handler: TERM leaves it running.
    assert_eq!(env.state("ka")["status"], "running");

    let (st, out, err) = env.run(&["events", "--stats", "ka"]);
    assert_eq!(st, 0, "{err}");
    let ev: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (ev["type"].clone(), ev["id"].clone()),
        (json!("stats"), json!("ka"))
    );
    assert!(ev["data"]["pids"]["current"].as_u64().unwrap() >= 2, "{ev}");

    let logs = env.dir.path().join("debug-logs/");
    let (st, _, err) = env.run(&[
        "--systemd-cgroup",
        "--rootless=false",
        "--debug-log",
        logs.to_str().unwrap(),
        "state",
        "ka",
    ]);
    assert_eq!(st, 0, "{err}");
    assert_eq!(fs::read_dir(&logs).unwrap().count(), 1);

    assert_eq!(env.run(&["kill", "--all", "ka", "KILL"]).0, 0);
    env.wait_status("ka", "stopped");
}

/// `events` without `--stats` streams one stats event a `--interval` (runc's JSON: type,
/// id, data with pids, memory and cpu) until the container stops, then ends with status 0.
#[test]
fn events_stream_stats_until_the_container_stops() {
    use std::io::BufRead;
    let Some(env) = Env::new("events_stream_stats_until_the_container_stops") else {
        return;
    };
    env.config("while :; do sleep 0.05; done", |_| {});
    let _deleted = Deleted(&env, "ev");
    let mut run = env.cmd(&["run", "--detach", "ev"]);
    run.stdout(Stdio::null());
    assert!(run.status().unwrap().success());
    env.wait_status("ev", "running");
    let mut events = env
        .cmd(&["events", "--interval", "200ms", "ev"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stdout = events.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    for _ in 0..2 {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("no stats event within 30 s");
        let ev: Value =
            serde_json::from_str(&line).unwrap_or_else(|e| panic!("event {line:?}: {e}"));
        assert_eq!(
            (ev["type"].clone(), ev["id"].clone()),
            (json!("stats"), json!("ev"))
        );
        assert!(ev["data"]["pids"]["current"].as_u64().unwrap() >= 1, "{ev}");
        assert!(
            ev["data"]["memory"]["usage"]["usage"].as_u64().unwrap() > 0,
            "{ev}"
        );
        assert!(
            ev["data"]["cpu"]["usage"]["total"].as_u64().is_some(),
            "{ev}"
        );
    }
    assert_eq!(env.run(&["kill", "ev", "KILL"]).0, 0);
    env.wait_status("ev", "stopped");
    let end = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(st) = events.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > end {
            let _ = events.kill();
            panic!("events went on after the container stopped");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut events.stderr.take().unwrap(), &mut err).unwrap();
    assert!(status.success(), "events: {status}: {err}");
}

/// `process.oomScoreAdj` is the sandbox process's host oom_score_adj (raised here: lowering
/// needs CAP_SYS_RESOURCE); a value outside -1000..=1000 is refused, naming the field.
#[test]
fn oom_score_adj_applies_to_the_sandbox_process() {
    let Some(env) = Env::new("oom_score_adj_applies_to_the_sandbox_process") else {
        return;
    };
    env.config("sleep 1000", |c| c["process"]["oomScoreAdj"] = json!(567));
    let _deleted = Deleted(&env, "oom");
    // The sandbox keeps create's stdout (the container's): don't wait for its end.
    let mut create = env.cmd(&["create", "oom"]);
    create.stdout(Stdio::null());
    assert!(create.status().unwrap().success(), "create failed");
    let pid = env.state("oom")["pid"].as_i64().unwrap();
    assert_eq!(
        fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
            .unwrap()
            .trim(),
        "567"
    );
    assert_eq!(env.run(&["delete", "--force", "oom"]).0, 0);

    env.config("true", |c| c["process"]["oomScoreAdj"] = json!(5000));
    let _deleted = Deleted(&env, "oombad");
    let (st, _, _) = env.run(&["create", "oombad"]);
    assert_ne!(st, 0, "an oomScoreAdj of 5000 was taken");
    let msg = env.last_log_line()["msg"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(msg.contains("oomScoreAdj"), "{msg}");
}

impl Env {
    /// `events --stats ID`'s data.
    fn stats(&self, id: &str) -> Value {
        let (st, out, err) = self.run(&["events", "--stats", id]);
        assert_eq!(st, 0, "events --stats {id}: {err}");
        let ev: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{out:?}: {e}"));
        ev["data"].clone()
    }

    /// `exec ID sh -c SCRIPT`: (status, stdout and stderr).
    fn exec_sh(&self, id: &str, script: &str) -> (i32, String) {
        let (st, out, err) = self.run(&["exec", id, "sh", "-c", script]);
        (st, out + &err)
    }
}

/// `update` changes the task limit and the memory limit of a running container, live (the
/// next fork, the next allocation), `events --stats` reports them, and what the sandbox
/// can't enforce is refused, naming the field.
#[test]
fn update_applies_pids_and_memory_limits_live() {
    let Some(env) = Env::new("update_applies_pids_and_memory_limits_live") else {
        return;
    };
    env.config("sleep 1000", |_| {});
    let _deleted = Deleted(&env, "up");
    let mut run = env.cmd(&["run", "--detach", "up"]);
    run.stdout(Stdio::null());
    assert!(run.status().unwrap().success());
    env.wait_status("up", "running");
    let forks = "for i in 1 2 3; do sleep 1 & done; wait; echo done";
    let refused = "Resource temporarily unavailable";

    // The first process and the exec'd shell are two tasks: a limit of 3 lets one fork by.
    assert_eq!(env.run(&["update", "--pids-limit", "3", "up"]).0, 0);
    let s = env.stats("up");
    assert_eq!(s["pids"]["limit"], 3, "{s}");
    let (_, out) = env.exec_sh("up", forks);
    assert!(
        out.contains(refused),
        "no fork failed under the limit: {out:?}"
    );
    assert_eq!(env.run(&["update", "--pids-limit", "-1", "up"]).0, 0);
    let (_, out) = env.exec_sh("up", forks);
    assert!(!out.contains(refused) && out.contains("done"), "{out:?}");
    assert_eq!(env.stats("up")["pids"]["limit"], 0);

    // 64 MB of string in awk: fine without a limit, not under a 32 MB one.
    let awk = "awk 'BEGIN{s=\"x\"; while(length(s)<64000000) s=s s; print length(s)}' 2>/dev/null; echo $?";
    assert_eq!(env.exec_sh("up", awk).1, "67108864\n0\n");
    assert_eq!(env.run(&["update", "--memory", "32m", "up"]).0, 0);
    let s = env.stats("up");
    assert_eq!(s["memory"]["usage"]["limit"], 32 << 20, "{s}");
    assert!(s["memory"]["usage"]["usage"].as_u64().unwrap() > 0, "{s}");
    let (_, out) = env.exec_sh("up", awk);
    assert_ne!(out, "67108864\n0\n", "the memory limit did not hold");
    // The killed process's pages come back once it is torn down.
    let end = Instant::now() + Duration::from_secs(20);
    while env.stats("up")["memory"]["usage"]["usage"]
        .as_u64()
        .unwrap()
        > 16 << 20
    {
        assert!(Instant::now() < end, "the memory never came back");
        std::thread::sleep(Duration::from_millis(50));
    }
    // The guest sees the limit as its memory.
    let (_, out) = env.exec_sh("up", "grep MemTotal /proc/meminfo");
    assert_eq!(out.split_whitespace().nth(1), Some("32768"), "{out}");
    assert_eq!(env.run(&["update", "--memory", "-1", "up"]).0, 0);
    assert_eq!(env.exec_sh("up", awk).1, "67108864\n0\n");

    // Docker's way: `--resources -` with the JSON on stdin.
    let mut update = env.cmd(&["update", "--resources", "-", "up"]);
    update.stdin(Stdio::piped());
    let mut child = update.spawn().unwrap();
    std::io::Write::write_all(
        &mut child.stdin.take().unwrap(),
        json!({ "memory": { "limit": 48 << 20, "swap": 96 << 20 },
                "cpu": { "period": 0, "quota": 0, "cpus": "", "mems": "" },
                "pids": { "limit": 7 } })
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    assert!(child.wait().unwrap().success(), "{:?}", env.last_log_line());
    let s = env.stats("up");
    assert_eq!(
        (
            s["memory"]["usage"]["limit"].clone(),
            s["pids"]["limit"].clone()
        ),
        (json!(48 << 20), json!(7)),
        "{s}"
    );

    // What can't be applied is refused, by name, and changes nothing.
    for (args, field) in [
        (&["--cpu-quota", "50000"][..], "cpu.quota"),
        (&["--cpuset-cpus", "0"][..], "cpu.cpus"),
        (
            &["--memory", "64m", "--memory-swap", "32m"][..],
            "memory.swap",
        ),
        (&["--memory", "1t"][..], "memory.limit"),
    ] {
        let mut a = vec!["update"];
        a.extend_from_slice(args);
        a.push("up");
        assert_ne!(env.run(&a).0, 0, "{args:?} was taken");
        let msg = env.last_log_line()["msg"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(msg.contains(field), "{args:?}: {msg}");
    }
    assert_eq!(env.stats("up")["memory"]["usage"]["limit"], 48 << 20);
    assert_ne!(env.run(&["update", "--pids-limit", "5", "nosuch"]).0, 0);
}

/// createContainer hooks run on the host in the sandbox's namespaces (network, IPC, UTS);
/// startContainer hooks run in the container, before its process, with its user and the
/// state on stdin; a failing one fails `start` and stops the container.
#[test]
fn container_hooks_run_in_the_container() {
    let Some(env) = Env::new("container_hooks_run_in_the_container") else {
        return;
    };
    // A new network namespace needs root; unprivileged, the sandbox may share the caller's
    // namespaces, and the hook then joins nothing (hooks::container_namespaces).
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let out = env.dir.path().join("hook-out");
    fs::create_dir_all(&out).unwrap();
    // Only in the container's root: the host has no /bin/start-hook.
    let hook = env.bundle().join("rootfs/bin/start-hook");
    fs::write(
        &hook,
        "#!/bin/sh\ncat > /tmp/hook-state; echo \"$0 $1 $HOOKVAR $(id -u)\" > /tmp/hooked\n",
    )
    .unwrap();
    fs::set_permissions(&hook, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let create_hook = format!(
        "readlink /proc/self/ns/net /proc/self/ns/ipc /proc/self/ns/uts > {0}/ns; cat > {0}/state",
        out.display()
    );
    env.config(
        "cat /tmp/hooked; grep -c '\"status\":\"created\"' /tmp/hook-state",
        |c| {
            if root {
                c["linux"]["namespaces"] =
                    json!([{ "type": "pid" }, { "type": "mount" }, { "type": "network" }]);
            }
            c["hooks"] = json!({
                "createContainer": [ { "path": "/bin/sh", "args": ["sh", "-c", create_hook] } ],
                "startContainer": [ {
                    "path": "/bin/start-hook", "args": ["start-hook", "arg1"],
                    "env": ["PATH=/bin", "HOOKVAR=v"]
                } ]
            });
        },
    );
    let _deleted = Deleted(&env, "hk");
    let stdout = env.dir.path().join("stdout");
    let mut create = env.cmd(&["create", "hk"]);
    create.stdout(fs::File::create(&stdout).unwrap());
    assert!(
        create.status().unwrap().success(),
        "{:?}",
        env.last_log_line()
    );
    let pid = env.state("hk")["pid"].as_i64().unwrap();
    let link = |p: String| fs::read_link(p).unwrap().display().to_string();
    let sandbox_ns: Vec<String> = ["net", "ipc", "uts"]
        .iter()
        .map(|n| link(format!("/proc/{pid}/ns/{n}")))
        .collect();
    let hook_ns = fs::read_to_string(out.join("ns")).unwrap();
    assert_eq!(hook_ns.lines().collect::<Vec<_>>(), sandbox_ns);
    if root {
        assert_ne!(sandbox_ns[0], link("/proc/self/ns/net".into()));
    }
    let state: Value = serde_json::from_slice(&fs::read(out.join("state")).unwrap()).unwrap();
    assert_eq!(
        (state["id"].clone(), state["pid"].clone()),
        (json!("hk"), json!(pid))
    );

    assert_eq!(env.run(&["start", "hk"]).0, 0, "{:?}", env.last_log_line());
    env.wait_status("hk", "stopped");
    assert_eq!(
        fs::read_to_string(&stdout).unwrap(),
        "/bin/start-hook arg1 v 0\n1\n"
    );

    // A failing startContainer hook: start fails naming it, and the container stops.
    env.config("echo ran", |c| {
        c["hooks"] = json!({ "startContainer": [ {
            "path": "/bin/sh", "args": ["sh", "-c", "echo bad hook; exit 3"]
        } ] });
    });
    let _deleted = Deleted(&env, "hk2");
    let mut create = env.cmd(&["create", "hk2"]);
    create.stdout(fs::File::create(&stdout).unwrap());
    // The sandbox's replies held back: its main thread, told to end the sandbox, would win
    // against the reply to the failed start if it were told first (it was).
    create.env("RUNSC_TEST_CONTROL_REPLY_DELAY_MS", "300"); // oci::sandbox::REPLY_DELAY_ENV
    assert!(create.status().unwrap().success());
    assert_ne!(env.run(&["start", "hk2"]).0, 0);
    let msg = env.last_log_line()["msg"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(
        msg.contains("StartContainer hook /bin/sh")
            && msg.contains("exit status 3")
            && msg.contains("bad hook"),
        "{msg}"
    );
    env.wait_status("hk2", "stopped");
    assert_eq!(fs::read_to_string(&stdout).unwrap(), "");
}

/// IPC and UTS namespaces given by path are joined by the sandbox process (a container
/// without `hostname` has the joined namespace's); a path for a namespace a sandbox can't
/// join is refused at create, naming the field.
#[test]
fn namespaces_by_path_join_ipc_and_uts_and_refuse_the_rest() {
    let Some(env) = Env::new("namespaces_by_path_join_ipc_and_uts_and_refuse_the_rest") else {
        return;
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || !Path::new("/usr/bin/unshare").exists() {
        loud("*** SKIPPED: namespaces_by_path...: needs root and unshare(1) ***");
        return;
    }
    // A host process in UTS and IPC namespaces of its own, its host name set.
    let mut holder = Command::new("/usr/bin/unshare")
        .args([
            "--uts",
            "--ipc",
            "sh",
            "-c",
            "hostname fromns && exec sleep 60",
        ])
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let pid = holder.id();
    let end = Instant::now() + Duration::from_secs(10);
    while fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default() != "sleep\n" {
        assert!(holder.try_wait().unwrap().is_none(), "unshare failed");
        assert!(Instant::now() < end, "unshare never ran sleep");
        std::thread::sleep(Duration::from_millis(10));
    }
    let holder = Kill(holder);
    let link = |p: String| fs::read_link(p).unwrap().display().to_string();
    env.config("hostname", |c| {
        c.as_object_mut().unwrap().remove("hostname");
        c["linux"]["namespaces"] = json!([
            { "type": "pid" }, { "type": "mount" },
            { "type": "uts", "path": format!("/proc/{pid}/ns/uts") },
            { "type": "ipc", "path": format!("/proc/{pid}/ns/ipc") }
        ]);
    });
    let _deleted = Deleted(&env, "ns");
    let stdout = env.dir.path().join("stdout");
    let mut create = env.cmd(&["create", "ns"]);
    create.stdout(fs::File::create(&stdout).unwrap());
    assert!(
        create.status().unwrap().success(),
        "{:?}",
        env.last_log_line()
    );
    let spid = env.state("ns")["pid"].as_i64().unwrap();
    for n in ["uts", "ipc"] {
        assert_eq!(
            link(format!("/proc/{spid}/ns/{n}")),
            link(format!("/proc/{pid}/ns/{n}")),
            "{n}"
        );
    }
    assert_eq!(env.run(&["start", "ns"]).0, 0);
    env.wait_status("ns", "stopped");
    assert_eq!(fs::read_to_string(&stdout).unwrap(), "fromns\n");
    drop(holder);

    for (i, typ) in [(2, "pid"), (2, "mount"), (2, "user")] {
        env.config("true", |c| {
            c["linux"]["namespaces"] = json!([
                { "type": "ipc" }, { "type": "uts" },
                { "type": typ, "path": "/proc/1/ns/pid" }
            ]);
        });
        let (st, _, _) = env.run(&["create", "nsbad"]);
        let _deleted = Deleted(&env, "nsbad");
        assert_ne!(st, 0, "{typ} by path was taken");
        let msg = env.last_log_line()["msg"]
            .as_str()
            .unwrap_or("")
            .to_string();
        let want = format!(
            "linux.namespaces[{i}].path: joining a {typ} namespace by path is not supported"
        );
        assert!(msg.contains(&want), "{msg}");
    }
}

/// `kill --all ID KILL` ends the first process, and with it the sandbox, which may be gone
/// before it answers the request: the kill still succeeded (main's runsc failed 4 in 20
/// with "the sandbox closed the connection").
#[test]
fn kill_all_kill_succeeds_when_the_sandbox_ends_first() {
    let Some(env) = Env::new("kill_all_kill_succeeds_when_the_sandbox_ends_first") else {
        return;
    };
    env.config(
        "sleep 1000 & sleep 1000 & while :; do sleep 0.05; done",
        |_| {},
    );
    for i in 0..20 {
        let id = format!("kk{i}");
        let _deleted = Deleted(&env, &id);
        let mut run = env.cmd(&["run", "--detach", &id]);
        run.stdout(Stdio::null());
        assert!(run.status().unwrap().success());
        env.wait_status(&id, "running");
        // The background sleeps are running: the signal loop has three processes to do.
        std::thread::sleep(Duration::from_millis(200));
        let (st, _, err) = env.run(&["kill", "--all", &id, "KILL"]);
        assert_eq!(st, 0, "kill --all {id} KILL: {err}");
        env.wait_status(&id, "stopped");
    }
}

/// linux.sysctl as runc applies it (oci::sysctl): Docker's two defaults reach the
/// container's own network namespace (a user without capabilities binds port 80, as under
/// runc with Docker), kernel.domainname and the IPC limits (System V's,
/// kernel.shm_rmid_forced, fs.mqueue.*) are the sandbox's; a net.* key with the host's
/// network namespace, an IPC key without an IPC namespace or with a value Linux refuses, a
/// key outside any namespace, and a name that could climb out of /proc/sys are refused at
/// create, naming the key.
#[test]
fn sysctls_apply_in_the_containers_namespaces_or_are_refused() {
    let Some(env) = Env::new("sysctls_apply_in_the_containers_namespaces_or_are_refused") else {
        return;
    };
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "SKIPPED: sysctls_apply_in_the_containers_namespaces_or_are_refused: a network \
             namespace of the container's own needs root"
        );
        return;
    }
    for app in ["nc", "seq"] {
        symlink("busybox", env.bundle().join("rootfs/bin").join(app)).unwrap();
    }
    let docker_defaults = json!({
        "net.ipv4.ip_unprivileged_port_start": "0",
        "net.ipv4.ping_group_range": "0 2147483647",
        "kernel.domainname": "example.org",
        "kernel.shmmax": "1048576",
        "kernel.sem": "250 32000 32 128",
        "kernel.shm_rmid_forced": "1",
        "fs.mqueue.msg_max": "100"
    });
    let own_network = json!([
        { "type": "pid" }, { "type": "mount" }, { "type": "network" }, { "type": "uts" },
        { "type": "ipc" }
    ]);
    let host_range = fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap();
    // The listener shows in the namespace's /proc/net/tcp or tcp6 (busybox nc may listen
    // on ::): port 80 is 0050, LISTEN is state 0A.
    env.config(
        "cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/net/ipv4/ping_group_range \
         /proc/sys/kernel/domainname /proc/sys/kernel/shmmax /proc/sys/kernel/sem \
         /proc/sys/kernel/shm_rmid_forced /proc/sys/fs/mqueue/msg_max; id -u; \
         nc -l -p 80 & p=$!; \
         for i in $(seq 100); do \
           grep -q ':0050 [0-9A-F]*:0000 0A' /proc/net/tcp /proc/net/tcp6 && \
             { echo bound; break; }; \
           sleep 0.1; \
         done; kill $p",
        |c| {
            c["process"]["user"] = json!({ "uid": 1000, "gid": 1000 });
            c["linux"]["namespaces"] = own_network.clone();
            c["linux"]["sysctl"] = docker_defaults.clone();
        },
    );
    let (st, out, err) = env.run(&["run", "sc1"]);
    assert_eq!(
        (st, out.as_str()),
        (
            0,
            "0\n0\t2147483647\nexample.org\n1048576\n250\t32000\t32\t128\n1\n100\n1000\nbound\n"
        ),
        "stderr: {err}; {:?}",
        env.last_log_line()
    );
    // The host's own namespace is untouched.
    assert_eq!(
        fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap(),
        host_range
    );

    let refused = |sysctl: Value, namespaces: Value, want: &str| {
        env.config("echo ran", |c| {
            c["linux"]["namespaces"] = namespaces;
            c["linux"]["sysctl"] = sysctl;
        });
        let (st, out, _) = env.run(&["run", "sc2"]);
        let msg = env.last_log_line()["msg"]
            .as_str()
            .unwrap_or("")
            .to_string();
        assert!(
            st != 0 && out.is_empty() && msg.contains(want),
            "{st} {out:?} {msg}"
        );
    };
    refused(
        json!({ "net.ipv4.ip_unprivileged_port_start": "0" }),
        json!([{ "type": "pid" }, { "type": "mount" }]),
        "\"net.ipv4.ip_unprivileged_port_start\" not allowed in the host's network namespace",
    );
    refused(
        json!({ "kernel.msgmax": "100" }),
        json!([{ "type": "pid" }, { "type": "mount" }]),
        "\"kernel.msgmax\" needs an IPC namespace",
    );
    refused(
        json!({ "fs.mqueue.queues_max": "10" }),
        json!([{ "type": "pid" }, { "type": "mount" }]),
        "\"fs.mqueue.queues_max\" needs an IPC namespace",
    );
    refused(
        json!({ "fs.mqueue.msg_max": "65537" }),
        own_network.clone(),
        "\"fs.mqueue.msg_max\": invalid value",
    );
    refused(
        json!({ "vm.swappiness": "10" }),
        own_network.clone(),
        "\"vm.swappiness\" is not in a separate kernel namespace",
    );
    refused(
        json!({ "net.ipv4/../../kernel/core_pattern": "x" }),
        own_network.clone(),
        "not a sysctl name",
    );
    refused(
        json!({ "net.ipv4.no_such_setting": "1" }),
        own_network,
        "net/ipv4/no_such_setting",
    );
}
