//! The host root is only ever read: whatever a sandboxed program does to the files it sees
//! through the overlay stays in the sandbox's memory.

use std::fs;
use std::path::Path;

use conformance::{build, run_with_timeout, runsc_do_command, skip_without_kvm, Input, Libc};

/// Every file under `dir` with its content and mode, for before/after comparison.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let meta = fs::symlink_metadata(e.path()).unwrap();
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            let content = if meta.is_file() {
                fs::read(e.path()).unwrap()
            } else {
                Vec::new()
            };
            out.push((rel, content, meta.permissions().mode()));
            if meta.is_dir() {
                todo.push(e.path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn writes_never_reach_the_host() {
    if skip_without_kvm("writes_never_reach_the_host") {
        return;
    }
    let prog = build("host_write", Libc::Glibc);
    let dir = conformance::target_dir().join("escape-host-write");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(dir.join("subdir")).unwrap();
    fs::write(dir.join("keep"), "host").unwrap();
    fs::write(dir.join("victim"), "victim").unwrap();
    fs::write(dir.join("subdir/inner"), "inner").unwrap();
    fs::write(dir.join("subdir/big"), vec![7u8; 100_000]).unwrap();
    let before = snapshot(&dir);

    let mut cmd = runsc_do_command(&prog, &[dir.as_os_str()]);
    let out = run_with_timeout(&mut cmd, &Input::Null, std::time::Duration::from_secs(60)).unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status,
        0,
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Inside, every change took effect...
    for line in [
        "truncate+write keep: 7",
        "create new: 1",
        "unlink victim: 0",
        "rename subdir/inner: 0",
        "mkdir made: 0",
        "chmod keep: 0",
        "symlink: 0",
        "truncate subdir/big: 0",
        "keep reads: sandbox",
        "victim gone: 1",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    // ...and outside, nothing changed.
    assert_eq!(snapshot(&dir), before, "the host tree changed");
    fs::remove_dir_all(&dir).unwrap();
}
