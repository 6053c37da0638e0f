//! `runsc do -v HOSTDIR:/PATH[:ro]`: bind mounts of host directories through hostfs, whose
//! writes reach the host directory (Docker's `-v`). The file-system conformance programs
//! work in a fresh `/tmp/fsconf-XXXXXX`: run natively on the host's /tmp and in the sandbox
//! with a host directory (on the same host file system) mounted read-write over /tmp, their
//! output must match, and every change they make lands in that host directory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use conformance::{
    build, run_native, run_with_timeout, runsc_do_command_with, skip_without_kvm, Case, Input, Libc,
};

/// A fresh host directory under /tmp, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("runsc-vol-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("make the volume directory");
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn volume(dir: &Path, at: &str, ro: bool) -> Vec<String> {
    let mut v = format!("{}:{at}", dir.display());
    if ro {
        v.push_str(":ro");
    }
    vec!["-v".into(), v]
}

fn sandboxed_sh(flags: &[String], script: &str) -> conformance::Outcome {
    let mut cmd = runsc_do_command_with(flags, Path::new("/bin/sh"), &["-c", script]);
    run_with_timeout(&mut cmd, &Input::Null, Duration::from_secs(60)).expect("runsc do")
}

#[test]
fn fs_programs_on_a_rw_volume_match_native() {
    if skip_without_kvm("fs_programs_on_a_rw_volume_match_native") {
        return;
    }
    let programs = [
        "fs_dir",
        "fs_rw",
        "fs_attr",
        "fs_open",
        "utimes",
        "mmap_file",
        "mmap_coherent",
        "copy_range",
        "lock_fcntl",
    ];
    let mut failures = Vec::new();
    for libc in Libc::ALL {
        for name in programs {
            let prog = build(name, libc);
            let native = run_native(&prog, &Case::default()).expect("native run");
            let vol = TempDir::new(name);
            // The program runs from inside the volume: the volume covers the sandbox's /tmp,
            // which would hide a build directory under the host's /tmp.
            let inside = vol.0.join(format!(".prog-{name}"));
            std::fs::copy(&prog, &inside).expect("copy the program into the volume");
            let prog_in_sandbox = Path::new("/tmp").join(inside.file_name().expect("a name"));
            let mut cmd =
                runsc_do_command_with(&volume(&vol.0, "/tmp", false), &prog_in_sandbox, &[""; 0]);
            let sandboxed = run_with_timeout(&mut cmd, &Input::Null, Duration::from_secs(60))
                .expect("sandboxed run");
            if native.stdout != sandboxed.stdout || native.status != sandboxed.status {
                let n = String::from_utf8_lossy(&native.stdout);
                let s = String::from_utf8_lossy(&sandboxed.stdout);
                let diff: Vec<String> = n
                    .lines()
                    .zip(s.lines())
                    .filter(|(a, b)| a != b)
                    .take(5)
                    .map(|(a, b)| format!("  native:  {a}\n  sandbox: {b}"))
                    .collect();
                failures.push(format!(
                    "{name} [{}]: status native {} sandbox {}\n{}\nstderr: {}",
                    libc.name(),
                    native.status,
                    sandboxed.status,
                    diff.join("\n"),
                    String::from_utf8_lossy(&sandboxed.stderr)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn writes_reach_the_host_directory() {
    if skip_without_kvm("writes_reach_the_host_directory") {
        return;
    }
    let vol = TempDir::new("host");
    std::fs::write(vol.0.join("old"), b"from the host\n").unwrap();
    std::os::unix::fs::symlink("/etc", vol.0.join("etc_link")).unwrap();
    let out = sandboxed_sh(
        &volume(&vol.0, "/data", false),
        "set -e; cat /data/old; echo hi > /data/f; mkdir -p /data/d/e; echo deep > /data/d/e/g; \
         ln -s f /data/l; ln /data/f /data/hard; mv /data/old /data/d/renamed; \
         chmod 640 /data/f; rm /data/etc_link; \
         echo via-symlink > /data/l; grep -c . /proc/mounts >/dev/null",
    );
    assert_eq!(
        (out.status, String::from_utf8_lossy(&out.stdout).as_ref()),
        (0, "from the host\n"),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |p: &str| std::fs::read_to_string(vol.0.join(p)).unwrap();
    assert_eq!(read("f"), "via-symlink\n");
    assert_eq!(read("hard"), "via-symlink\n");
    assert_eq!(read("d/e/g"), "deep\n");
    assert_eq!(read("d/renamed"), "from the host\n");
    assert_eq!(std::fs::read_link(vol.0.join("l")).unwrap(), Path::new("f"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(vol.0.join("f"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
    assert!(!vol.0.join("etc_link").exists() && !vol.0.join("old").exists());
    assert!(Path::new("/etc/passwd").exists());

    // A read-only volume refuses every change and leaves the directory alone.
    let out = sandboxed_sh(
        &volume(&vol.0, "/data", true),
        "cat /data/f; echo x > /data/new || echo refused; rm /data/f || echo refused",
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "via-symlink\nrefused\nrefused\n"
    );
    assert!(!vol.0.join("new").exists() && vol.0.join("f").exists());

    // A bad volume is a clear error, before anything runs.
    let mut cmd = runsc_do_command_with(
        &["-v", "/no/such/dir:/data"],
        Path::new("/bin/true"),
        &[""; 0],
    );
    let out = run_with_timeout(&mut cmd, &Input::Null, Duration::from_secs(60)).unwrap();
    assert_eq!(out.status, 125);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--volume /no/such/dir:/data"), "{err}");
    let _ = Command::new("true");
}

/// What the guest makes on a volume belongs on the host to the guest's user, whatever user
/// the sentry itself runs as (root's sentry runs as a user of its own: boot::identity): files,
/// directories, symlinks and FIFOs of root, a file of another user in a shared directory,
/// and an explicit chown.
#[test]
fn new_files_belong_to_the_guests_user() {
    if skip_without_kvm("new_files_belong_to_the_guests_user") {
        return;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: new_files_belong_to_the_guests_user: needs root (chown)");
        return;
    }
    let vol = TempDir::new("owner");
    let out = sandboxed_sh(
        &volume(&vol.0, "/data", false),
        "set -e; echo x > /data/f; mkdir /data/d; ln -s f /data/l; mkfifo /data/p; \
         mkdir -m 1777 /data/shared; \
         setpriv --reuid 1234 --regid 1235 --clear-groups sh -c 'echo y > /data/shared/u'; \
         echo z > /data/given; chown 1500:1501 /data/given",
    );
    assert_eq!(
        out.status,
        0,
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    use std::os::unix::fs::MetadataExt;
    let owner = |p: &str| {
        let m = std::fs::symlink_metadata(vol.0.join(p)).expect(p);
        (m.uid(), m.gid())
    };
    for p in ["f", "d", "l", "p", "shared"] {
        assert_eq!(owner(p), (0, 0), "{p}");
    }
    assert_eq!(owner("shared/u"), (1234, 1235));
    assert_eq!(owner("given"), (1500, 1501));
}
