//! Files keep their st_dev and st_ino across copy-up (issue 14 item 3): tree walkers built
//! on fts (rm -r, find, du, chmod -R) check that a directory is the same before and after
//! they enter it, and a copy-up in between used to change both numbers ("fts_read failed").
//!
//! Each test makes a fresh tree in a host temp directory, runs the tools in the sandbox on it
//! (the host tree seen through the overlay, so every change copies up), runs the same script
//! natively on a copy, compares, and checks the host tree was not touched.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use conformance::{run_with_timeout, runsc_do_command, skip_without_kvm, Input, Outcome};

/// A fresh directory under the host's temp dir, removed on drop.
struct Fixture(PathBuf);

impl Fixture {
    fn new(tag: &str) -> Fixture {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let dir = std::env::temp_dir().join(format!("runsc-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        Fixture(dir)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `r/1/2/3/4/5/6` with files at several depths, a hard link pair and a symlink.
fn make_tree(root: &Path) {
    let deep = root.join("r/1/2/3/4/5/6");
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(root.join("r/f0"), b"zero").unwrap();
    std::fs::write(root.join("r/1/2/f2"), vec![b'x'; 5000]).unwrap();
    std::fs::write(deep.join("f6"), b"six").unwrap();
    std::fs::hard_link(root.join("r/f0"), root.join("r/1/2/3/hard")).unwrap();
    std::os::unix::fs::symlink("../f0", root.join("r/1/link")).unwrap();
    for d in ["r/1/2/3", "r/1/2/3/4/5"] {
        std::fs::set_permissions(root.join(d), std::fs::Permissions::from_mode(0o775)).unwrap();
    }
}

/// Every path under `dir` with its type, mode, inode and contents.
fn snapshot(dir: &Path) -> Vec<(String, u32, u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let md = std::fs::symlink_metadata(e.path()).unwrap();
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            let content = if md.is_file() {
                std::fs::read(e.path()).unwrap()
            } else {
                Vec::new()
            };
            out.push((rel, md.mode(), md.ino(), content));
            if md.is_dir() {
                todo.push(e.path());
            }
        }
    }
    out.sort();
    out
}

fn bash(script: &str, cwd: &Path, sandboxed: bool) -> Outcome {
    let mut cmd = if sandboxed {
        runsc_do_command(Path::new("/bin/bash"), &["-c", script])
    } else {
        let mut c = std::process::Command::new("/bin/bash");
        c.args(["-c", script]);
        c
    };
    cmd.current_dir(cwd).env("LC_ALL", "C");
    run_with_timeout(&mut cmd, &Input::Null, Duration::from_secs(60)).unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The issue's reproducer: `rm -rf` of a deep host directory.
#[test]
fn rm_rf_of_a_deep_host_tree() {
    if skip_without_kvm("rm_rf_of_a_deep_host_tree") {
        return;
    }
    let fx = Fixture::new("rmrf");
    make_tree(&fx.0);
    let before = snapshot(&fx.0);
    let r = fx.0.join("r");
    let script = format!(
        "rm -rf {0}; echo rm=$?; test -e {0}; echo exists=$?",
        r.display()
    );
    let out = bash(&script, &fx.0, true);
    assert_eq!(
        (
            text(&out.stdout).as_str(),
            text(&out.stderr).as_str(),
            out.status
        ),
        ("rm=0\nexists=1\n", "", 0)
    );
    assert_eq!(snapshot(&fx.0), before, "the host tree changed");
}

/// chmod -R, find (with -delete), du and rm -rf in one sandbox, against the same script on
/// a native copy.
#[test]
fn fts_walkers_match_native_across_copy_up() {
    if skip_without_kvm("fts_walkers_match_native_across_copy_up") {
        return;
    }
    let sandbox = Fixture::new("fts-sandbox");
    let native = Fixture::new("fts-native");
    make_tree(&sandbox.0);
    make_tree(&native.0);
    let before = snapshot(&sandbox.0);
    // Directories' link counts are left out: a directory holding both layers reports 1, as
    // on overlayfs.
    let script = "\
        chmod -R go-w r; echo chmod=$?
        find r -type d -printf '%p %M\\n' | sort; echo find=$?
        find r ! -type d -printf '%p %M %n\\n' | sort
        du -s --inodes r; echo du=$?
        find r -name 'f*' -delete; echo delete=$?
        find r | sort
        chmod -R u-w r/1/2/3/4; echo chmod2=$?
        chmod -R u+w r; echo chmod3=$?
        rm -rf r; echo rm=$?
        ls -A";
    let expected = bash(script, &native.0, false);
    let got = bash(script, &sandbox.0, true);
    assert_eq!(
        text(&got.stdout),
        text(&expected.stdout),
        "sandbox stderr: {}",
        text(&got.stderr)
    );
    assert_eq!(text(&got.stderr), text(&expected.stderr));
    assert_eq!(got.status, expected.status);
    assert!(text(&expected.stdout).contains("rm=0"));
    assert_eq!(snapshot(&sandbox.0), before, "the host tree changed");
}

/// The fixture of `tests/conformance/copyup_ino.c`.
fn make_copyup_fixture(root: &Path) {
    std::fs::create_dir_all(root.join("d/sub/deep")).unwrap();
    std::fs::write(root.join("d/f"), b"file").unwrap();
    std::fs::write(root.join("d/h1"), b"link").unwrap();
    std::fs::hard_link(root.join("d/h1"), root.join("d/h2")).unwrap();
}

/// copyup_ino.c, glibc and musl: natively on one fixture, in the sandbox on another (seen
/// through the overlay, so its first changes copy up); the outputs must match.
#[test]
fn copyup_ino_matches_native() {
    if skip_without_kvm("copyup_ino_matches_native") {
        return;
    }
    for libc in conformance::Libc::ALL {
        let prog = conformance::build("copyup_ino", libc);
        let native = Fixture::new("copyup-native");
        let sandbox = Fixture::new("copyup-sandbox");
        make_copyup_fixture(&native.0);
        make_copyup_fixture(&sandbox.0);
        let before = snapshot(&sandbox.0);
        let mut cmd = std::process::Command::new(&prog);
        cmd.arg(&native.0);
        let expected = run_with_timeout(&mut cmd, &Input::Null, Duration::from_secs(60)).unwrap();
        let mut cmd = runsc_do_command(&prog, &[sandbox.0.as_os_str()]);
        let got = run_with_timeout(&mut cmd, &Input::Null, Duration::from_secs(60)).unwrap();
        assert_eq!(expected.status, 0, "{}", text(&expected.stderr));
        assert!(!text(&expected.stdout).contains("CHANGED"));
        assert_eq!(
            text(&got.stdout),
            text(&expected.stdout),
            "{libc:?}: sandbox stderr: {}",
            text(&got.stderr)
        );
        assert_eq!(got.status, expected.status);
        assert_eq!(snapshot(&sandbox.0), before, "the host tree changed");
    }
}
