//! `runsc do --image`: container images made here (an OCI layout written with the tar crate:
//! a static probe built with gcc -static, dash with its libraries as /bin/sh, a shell script,
//! /etc/passwd and /etc/group), converted with `runsc image convert`, run with their config:
//! entrypoint and cmd (replaced by arguments after --), env, working directory, user; the
//! probe reports what a container's process sees (/proc, /dev, /dev/shm, /tmp, /sys,
//! /etc/hostname, /etc/hosts, /etc/resolv.conf), checked line by line.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use conformance::{
    loud, run_with_timeout, runsc_path, skip_without_kvm, target_dir, Input, Outcome, ScratchDir,
    TIMEOUT,
};
use image::testing::{self, Comp};
use serde_json::json;

/// Builds tests/image/probe.c (static) when its source is newer.
fn probe() -> PathBuf {
    let src = conformance::workspace_root().join("tests/image/probe.c");
    let dir = target_dir().join("conformance/image");
    fs::create_dir_all(&dir).unwrap();
    let out = dir.join("probe");
    let mtime = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    if mtime(&out).is_none() || mtime(&out) < mtime(&src) {
        let tmp = dir.join(format!(".probe.{}", std::process::id()));
        let st = Command::new("gcc")
            .args(["-static", "-O2", "-Wall", "-o"])
            .arg(&tmp)
            .arg(&src)
            .status()
            .expect("gcc (install it; .ci/run does)");
        assert!(st.success(), "gcc failed on {}", src.display());
        fs::rename(&tmp, &out).unwrap();
    }
    out
}

const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n";
const GROUP: &[u8] = b"root:x:0:\napp:x:1000:\nextra:x:2000:other,app\n";
const SCRIPT: &[u8] = b"#!/bin/sh\necho \"script: $0 $*\"\necho \"PWD=$PWD PATH=$PATH HOME=$HOME\"\nread h < /etc/hostname && [ -n \"$h\" ] && echo 'read /etc/hostname'\nexec /bin/probe from-script\n";

/// An OCI layout with two images sharing their layers: `probe` (the probe as entrypoint)
/// and `script` (a shell script as cmd).
fn layout(dir: &Path) {
    let probe = fs::read(probe()).unwrap();
    let dash = fs::read("/bin/dash").expect("/bin/dash");
    let libc = fs::read("/lib/x86_64-linux-gnu/libc.so.6").expect("libc.so.6");
    let ld = fs::read("/lib64/ld-linux-x86-64.so.2").expect("ld-linux-x86-64.so.2");
    let base = testing::layer_of_tar(
        testing::layer_tar_owned(&[
            ("bin", None, 0o755, 0),
            ("bin/probe", Some(&probe), 0o755, 0),
            ("bin/sh", Some(&dash), 0o755, 0),
            ("lib", None, 0o755, 0),
            ("lib/x86_64-linux-gnu", None, 0o755, 0),
            ("lib/x86_64-linux-gnu/libc.so.6", Some(&libc), 0o755, 0),
            ("lib64", None, 0o755, 0),
            ("lib64/ld-linux-x86-64.so.2", Some(&ld), 0o755, 0),
            ("etc", None, 0o755, 0),
            ("etc/passwd", Some(PASSWD), 0o644, 0),
            ("etc/group", Some(GROUP), 0o644, 0),
            ("etc/os-release", Some(b"ID=base\n"), 0o644, 0),
            ("etc/hostname", Some(b"from-the-image\n"), 0o644, 0),
            ("etc/hosts", Some(b"10.0.0.1 from-the-image\n"), 0o644, 0),
            ("tmp", None, 0o1777, 0),
        ]),
        Comp::Gzip,
    );
    let app = testing::layer_of_tar(
        testing::layer_tar_owned(&[
            ("etc", None, 0o755, 0),
            ("etc/os-release", Some(b"ID=changed\n"), 0o644, 0),
            ("app", None, 0o755, 1000),
            ("app/run.sh", Some(SCRIPT), 0o755, 1000),
        ]),
        Comp::Zstd,
    );
    let layers = [base, app];
    testing::oci_layout(
        dir,
        "probe",
        &layers,
        json!({
            "Entrypoint": ["/bin/probe", "--entry"],
            "Cmd": ["default"],
            "Env": ["A=1", "B=two words"],
            "WorkingDir": "/app",
            "User": "app",
        }),
    );
    testing::oci_layout(
        dir,
        "script",
        &layers,
        json!({
            "Cmd": ["/app/run.sh", "hello"],
            "Env": ["PATH=/bin", "A=from-script"],
            "WorkingDir": "/work/new",
            "User": "4242:4343",
        }),
    );
}

fn runsc(args: &[&str]) -> Outcome {
    let mut cmd = Command::new(runsc_path());
    cmd.args(args).env_clear().env("PATH", "/usr/bin:/bin");
    run_with_timeout(&mut cmd, &Input::Null, TIMEOUT).unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// What the probe prints after its arguments and environment, for a user and directory.
fn common_tail(cwd: &str, ids: &str, groups: &str) -> String {
    format!(
        "HOSTNAME is the node name: yes\nnode name is 12 hex digits: yes\n\
         /proc/sys/kernel/hostname is the node name: yes\ncwd={cwd}\n{ids}\ngroups:{groups}\n\
         /etc/hostname is the node name: yes\n/etc/hosts: 127.0.0.1\tlocalhost\n\
         /etc/resolv.conf has a nameserver: yes\n/etc/os-release: ID=changed\n\
         /proc/self: other 777\n/dev/null: chr 666\n/dev/shm: dir 1777\n/dev/pts: dir 755\n\
         /tmp: dir 1777\n/sys/fs/cgroup: dir 755\n/sys is read-only: yes\n\
         /tmp is writable: yes\n/etc/os-release opens for writing: no\n"
    )
}

fn check(what: &str, out: &Outcome, expected: &str, status: i32) {
    assert_eq!(
        text(&out.stdout),
        expected,
        "{what}: stdout differs; stderr: {}",
        text(&out.stderr)
    );
    assert_eq!(out.status, status, "{what}: stderr: {}", text(&out.stderr));
}

#[test]
fn images_run_with_their_config() {
    if skip_without_kvm("images_run_with_their_config") {
        return;
    }
    let scratch = ScratchDir::new("image_run");
    let oci = scratch.path().join("oci");
    layout(&oci);
    let store = scratch.path().join("store");
    let store_s = store.to_str().unwrap();
    for tag in ["probe", "script"] {
        let src = format!("oci:{}:{tag}", oci.display());
        let out = runsc(&["image", "convert", &src, "-o", store_s, "--quiet"]);
        assert_eq!(out.status, 0, "convert {tag}: {}", text(&out.stderr));
    }
    let list = runsc(&["image", "list", "--store", store_s]);
    let listed = text(&list.stdout);
    assert!(listed.starts_with("NAME"), "{listed}");
    for tag in ["probe ", "script "] {
        assert!(
            listed
                .lines()
                .any(|l| l.starts_with(tag) && l.split_whitespace().nth(2) == Some("2")),
            "{listed}"
        );
    }

    // The entrypoint and cmd, env, directory and user of the config.
    let out = runsc(&["do", "--image", "probe", "--store", store_s]);
    let head = "argv[0]=/bin/probe\nargv[1]=--entry\nargv[2]=default\n\
                PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n\
                HOME=/home/app\nA=1\nB=two words\n";
    let tail = common_tail(
        "/app",
        "uid=1000 euid=1000 gid=1000 egid=1000",
        " 1000 2000",
    );
    check("probe", &out, &format!("{head}{tail}"), 3);

    // Arguments after -- replace the cmd, not the entrypoint.
    let out = runsc(&[
        "do", "--image", "probe", "--store", store_s, "--", "x", "y z",
    ]);
    let head = head.replace("argv[2]=default\n", "argv[2]=x\nargv[3]=y z\n");
    check("probe -- x 'y z'", &out, &format!("{head}{tail}"), 3);

    // A #! script as cmd, run by the image's /bin/sh, as a numeric user with no passwd
    // entry, in a working directory the image lacks (made).
    let out = runsc(&["do", "--image", "script", "--store", store_s]);
    let expected = format!(
        "script: /app/run.sh hello\nPWD=/work/new PATH=/bin HOME=/\nread /etc/hostname\n\
         argv[0]=/bin/probe\nargv[1]=from-script\nPATH=/bin\nHOME=/\nA=from-script\nB=(unset)\n{}",
        common_tail(
            "/work/new",
            "uid=4242 euid=4242 gid=4343 egid=4343",
            " 4343"
        )
    );
    check("script", &out, &expected, 3);

    // Unknown images and bad stores give 125 and one line.
    let out = runsc(&["do", "--image", "nope", "--store", store_s]);
    assert_eq!(out.status, 125, "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("nope: no such image"),
        "{}",
        text(&out.stderr)
    );

    // rm: the shared layers stay until the last image goes.
    let out = runsc(&["image", "rm", "probe", "--store", store_s]);
    assert_eq!(out.status, 0, "{}", text(&out.stderr));
    assert_eq!(fs::read_dir(store.join("layers")).unwrap().count(), 4);
    let out = runsc(&["image", "rm", "script", "--store", store_s]);
    assert_eq!(out.status, 0, "{}", text(&out.stderr));
    assert_eq!(fs::read_dir(store.join("layers")).unwrap().count(), 0);
    loud("image_run: probe and script images ran with their config");
}

#[test]
fn do_runs_a_script_as_the_program() {
    // `runsc do -- ./script.sh` runs what execve runs: the #! interpreter (nested twice
    // here), found from the working directory and along PATH; output and status as native.
    if skip_without_kvm("do_runs_a_script_as_the_program") {
        return;
    }
    let scratch = ScratchDir::new("do_script");
    scratch.file(
        "outer.sh",
        b"#!/bin/sh\necho \"outer: $0 $# [$1] [$2]\"\nexit 7\n",
        0o755,
    );
    let inner = scratch.path().join("outer.sh");
    let wrapper = format!("#!{}\n", inner.display());
    scratch.file("wrapper", wrapper.as_bytes(), 0o755);
    let native = |prog: &str, args: &[&str]| {
        let mut cmd = Command::new(prog);
        cmd.args(args)
            .current_dir(scratch.path())
            .env_clear()
            .env("PATH", "/usr/bin:/bin");
        run_with_timeout(&mut cmd, &Input::Null, TIMEOUT).unwrap()
    };
    let sandboxed = |prog: &str, args: &[&str]| {
        let mut cmd = Command::new(runsc_path());
        cmd.arg("do").arg("--").arg(prog).args(args);
        cmd.current_dir(scratch.path())
            .env_clear()
            .env("PATH", "/usr/bin:/bin");
        run_with_timeout(&mut cmd, &Input::Null, TIMEOUT).unwrap()
    };
    for (prog, args) in [("./outer.sh", &["a b", "c"][..]), ("./wrapper", &["x"][..])] {
        let (n, s) = (native(prog, args), sandboxed(prog, args));
        assert_eq!(
            text(&s.stdout),
            text(&n.stdout),
            "{prog}: {}",
            text(&s.stderr)
        );
        assert_eq!((s.status, n.status), (7, 7), "{prog}: {}", text(&s.stderr));
    }
    // A script with an empty #! line can't run: 126, one line naming it.
    scratch.file("empty.sh", b"#!  \necho no\n", 0o755);
    let s = sandboxed("./empty.sh", &[]);
    assert_eq!(s.status, 126, "{}", text(&s.stderr));
    assert!(text(&s.stderr).contains("empty.sh"), "{}", text(&s.stderr));
}
