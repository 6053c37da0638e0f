//! A real image: Debian bookworm minbase (debootstrap, cached by `scripts/debian-cache.sh`
//! under `target/debian/`) as the base layer of an OCI layout, with two more layers made
//! here that add, change and delete files, white out a directory and make an opaque
//! directory. The image is converted and commands run in the sandbox with
//! `runsc do --image`; the same commands run natively in a chroot of the flattened tree (the
//! base unpacked, then each layer applied with the OCI rules), and the outputs must match.
//!
//! Without the cached tarball (it needs Debian's mirror) or without root (unpacking and
//! chroot), the test says SKIPPED loudly and returns; `.ci/run` builds the cache.

use std::fs;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use conformance::{
    loud, run_with_timeout, runsc_path, skip_without_kvm, target_dir, Input, Outcome, ScratchDir,
    TIMEOUT,
};
use image::testing::{self, Comp, Layer};
use serde_json::json;

const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const GREET: &[u8] = b"#!/bin/sh\necho \"hello from $0: $*\"\n";

fn base_tarball() -> PathBuf {
    target_dir().join("debian/bookworm-minbase.tar.gz")
}

/// The layers above Debian: (tar, what it does).
fn upper_layers() -> (Vec<u8>, Vec<u8>) {
    let added = testing::layer_tar(&[
        ("usr", None, 0o755),
        ("usr/local", None, 0o755),
        ("usr/local/bin", None, 0o755),
        ("usr/local/bin/greet", Some(GREET), 0o755),
        ("etc", None, 0o755),
        ("etc/motd", Some(b"changed by a layer\n"), 0o644),
        ("etc/.wh.issue.net", Some(b""), 0o644),
        ("usr/share", None, 0o755),
        ("usr/share/doc", None, 0o755),
        ("usr/share/doc/.wh.dash", Some(b""), 0o644),
    ]);
    let opaque = testing::layer_tar(&[
        ("etc", None, 0o755),
        ("etc/default", None, 0o755),
        ("etc/default/.wh..wh..opq", Some(b""), 0o644),
        ("etc/default/custom", Some(b"ONLY=this\n"), 0o644),
        ("usr", None, 0o755),
        ("usr/share", None, 0o755),
        ("usr/share/doc", None, 0o755),
        ("usr/share/doc/dash", None, 0o755),
        (
            "usr/share/doc/dash/recreated",
            Some(b"after the whiteout\n"),
            0o644,
        ),
    ]);
    (added, opaque)
}

/// Decompresses with the system's gzip (the test crate has no flate2).
fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    let mut stdin = child.stdin.take().unwrap();
    let data = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    writer.join().unwrap().unwrap();
    assert!(child.wait().unwrap().success());
    out
}

fn tar_x(dir: &Path, tar: &[u8], gz: bool) {
    let mut cmd = Command::new("tar");
    cmd.arg(if gz { "-xzpf" } else { "-xpf" })
        .arg("-")
        .args([
            "--numeric-owner",
            "--xattrs",
            "--xattrs-include=*",
            "--exclude=.wh.*",
        ])
        .arg("-C")
        .arg(dir)
        .stdin(Stdio::piped());
    let mut child = cmd.spawn().expect("tar");
    child.stdin.take().unwrap().write_all(tar).unwrap();
    assert!(
        child.wait().unwrap().success(),
        "tar -x into {}",
        dir.display()
    );
}

/// Removes a file, or a directory and all it holds (never following a symlink).
fn remove(q: &Path) {
    if q.is_dir() && !q.is_symlink() {
        fs::remove_dir_all(q).unwrap();
    } else {
        fs::remove_file(q).unwrap();
    }
}

/// Applies a layer's whiteouts and opaque markers to `flat`, then unpacks the rest.
fn apply(flat: &Path, tar: &[u8]) {
    let mut list = Command::new("tar")
        .arg("-tf")
        .arg("-")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    list.stdin.take().unwrap().write_all(tar).unwrap();
    let out = list.wait_with_output().unwrap();
    for name in String::from_utf8(out.stdout).unwrap().lines() {
        let p = Path::new(name.trim_end_matches('/'));
        let base = p.file_name().unwrap().to_str().unwrap();
        let dir = flat.join(p.parent().unwrap());
        if base == ".wh..wh..opq" {
            for e in fs::read_dir(&dir).unwrap().flatten() {
                remove(&e.path());
            }
        } else if let Some(hidden) = base.strip_prefix(".wh.") {
            remove(&dir.join(hidden));
        }
    }
    tar_x(flat, tar, false);
}

/// The commands, each run by /bin/sh -c in both places.
const COMMANDS: &[&str] = &[
    "echo $((6 * 7)); for i in 1 2 3; do printf '%s-' $i; done; echo; greet a 'b c'",
    "cat /etc/motd; ls -a /etc/default; cat /etc/default/custom; ls /usr/share/doc/dash",
    "test -e /etc/issue.net || echo issue.net whited out; ls /usr/share/doc | wc -l",
    "dpkg -l",
    // No cache files written: the chroot's tree must stay as the image is.
    "apt-cache -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= policy",
    "dpkg --verify --verify-format rpm base-files coreutils dash; echo verify=$?",
    // Everything ls -l shows of every file under /usr, but what depends on the file system
    // and not on the image: block counts ("total" lines), and a directory's size and link
    // count (ext4's against a merged directory's, which are overlayfs's: size of the
    // upper, nlink 1), with the column padding they cause.
    "ls -lR --time-style=+%s /usr | grep -v '^total ' | tr -s ' ' | sed -E 's/^(d[^ ]+) [0-9]+ ([^ ]+ [^ ]+) [0-9]+ /\\1 \\2 /' | sha256sum",
    "find / -xdev -path /proc -prune -o -path /dev -prune -o -path /sys -prune -o -path /etc -prune -o -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum",
    "ls -l --time-style=+%s /usr/bin | tr -s ' ' | sed -n '2,40p'",
    "stat -c '%n %A %u %g %s %Y %h' /etc/passwd /usr/bin/ls /bin/sh /usr/local/bin/greet",
    "bash -c 'declare -A m=([k]=v); echo ${m[k]} ${BASH_VERSINFO[0]}; echo $(( RANDOM >= 0 ))'",
    "command -v python3 >/dev/null && python3 -c 'print(sum(range(10)))' || echo no python3",
    "id; umask; cd /tmp && echo x > f && cat f && rm f && echo tmp ok",
];

fn native(flat: &Path, command: &str) -> Outcome {
    let mut cmd = Command::new("chroot");
    cmd.arg(flat)
        .args(["/bin/sh", "-c", command])
        .env_clear()
        .env("PATH", PATH)
        .env("HOME", "/root")
        .current_dir("/");
    run_with_timeout(&mut cmd, &Input::Null, TIMEOUT).unwrap()
}

fn sandboxed(store: &Path, command: &str) -> Outcome {
    let mut cmd = Command::new(runsc_path());
    cmd.args(["do", "--image", "debian-test", "--store"])
        .arg(store)
        .args(["--", "/bin/sh", "-c", command])
        .env_clear()
        .env("PATH", "/usr/bin:/bin");
    run_with_timeout(&mut cmd, &Input::Null, TIMEOUT).unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn debian_runs_as_in_a_chroot_of_the_flattened_tree() {
    let name = "debian_runs_as_in_a_chroot_of_the_flattened_tree";
    if skip_without_kvm(name) {
        return;
    }
    if !base_tarball().is_file() {
        loud(&format!(
            "*** SKIPPED: `{name}` needs {} (run scripts/debian-cache.sh as root; .ci/run does) and did NOT run ***",
            base_tarball().display()
        ));
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        loud(&format!(
            "*** SKIPPED: `{name}` needs root (unpacking, chroot) and did NOT run ***"
        ));
        return;
    }
    let scratch = ScratchDir::new("debian");
    let base_gz = fs::read(base_tarball()).unwrap();
    let base = Layer {
        tar: gunzip(&base_gz),
        blob: base_gz,
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
    };
    let (added, opaque) = upper_layers();
    let layers = [
        base,
        testing::layer_of_tar(added.clone(), Comp::Zstd),
        testing::layer_of_tar(opaque.clone(), Comp::Plain),
    ];
    let oci = scratch.path().join("oci");
    testing::oci_layout(
        &oci,
        "debian-test",
        &layers,
        json!({"Env": [format!("PATH={PATH}")], "Cmd": ["/bin/bash"]}),
    );

    let store = scratch.path().join("store");
    let t0 = Instant::now();
    let out = Command::new(runsc_path())
        .args(["image", "convert", "--quiet", "-o"])
        .arg(&store)
        .arg(format!("oci:{}:debian-test", oci.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "convert: {}", text(&out.stderr));
    loud(&format!(
        "debian_image: converted in {:.2}s",
        t0.elapsed().as_secs_f64()
    ));

    let flat = scratch.path().join("flat");
    fs::create_dir(&flat).unwrap();
    tar_x(&flat, &layers[0].blob, true);
    apply(&flat, &added);
    apply(&flat, &opaque);

    // DEBIAN_IMAGE_OUT=DIR keeps every output (N.native, N.sandbox) for a closer look.
    let keep = std::env::var_os("DEBIAN_IMAGE_OUT").map(PathBuf::from);
    let mut failures = Vec::new();
    for (i, c) in COMMANDS.iter().enumerate() {
        let (n, s) = (native(&flat, c), sandboxed(&store, c));
        if let Some(dir) = &keep {
            fs::create_dir_all(dir).unwrap();
            fs::write(dir.join(format!("{i}.native")), &n.stdout).unwrap();
            fs::write(dir.join(format!("{i}.sandbox")), &s.stdout).unwrap();
        }
        if n.stdout != s.stdout || n.status != s.status {
            failures.push(format!(
                "`{c}`: native status {} sandbox {}\n--- native\n{}\n--- sandbox\n{}\n--- sandbox stderr\n{}",
                n.status,
                s.status,
                text(&n.stdout),
                text(&s.stdout),
                text(&s.stderr)
            ));
        }
    }
    // The flattened tree is root's: remove it here rather than leave it to the next run.
    fs::remove_dir_all(&flat).unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
