//! Namespaces and mounts with real programs (issue 15 item 5): util-linux's `chroot` into a
//! copied busybox tree as a build tool uses it, `unshare -m` with a private tmpfs that
//! nothing outside sees, and `unshare -p -f --mount-proc`. Each is compared with the same
//! command run natively, which is safe here: natively chroot changes only the command's own
//! root, and `unshare -m` makes a new mount namespace (private by default) before it mounts.
//! The differential semantics are the conformance programs ns_uts, mount_ns and pivot_root.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use conformance::{
    diff_lines, loud, run_with_timeout, runsc_do_command, skip_without_kvm, Input, ScratchDir,
};

const CHROOT: &str = "/usr/sbin/chroot";
const UNSHARE: &str = "/usr/bin/unshare";
const BUSYBOX: &str = "/usr/bin/busybox";

/// (status, stdout, stderr) of `args` natively and in the sandbox.
fn both(args: &[&str]) -> ((i32, String, String), (i32, String, String)) {
    let run = |mut cmd: Command, label: &str| {
        let out = run_with_timeout(&mut cmd, &Input::Null, Duration::from_secs(120))
            .unwrap_or_else(|e| panic!("running {args:?} {label}: {e}"));
        (
            out.status,
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let mut native = Command::new(args[0]);
    native.args(&args[1..]);
    let native = run(native, "natively");
    let sandboxed = run(
        runsc_do_command(Path::new(args[0]), &args[1..]),
        "sandboxed",
    );
    (native, sandboxed)
}

fn have(paths: &[&str], test: &str) -> bool {
    for p in paths {
        if !Path::new(p).exists() {
            loud(&format!(
                "*** SKIPPED: {p} is missing: test `{test}` did NOT run (install util-linux, busybox-static) ***"
            ));
            return false;
        }
    }
    // Natively these need root (CAP_SYS_CHROOT, CAP_SYS_ADMIN).
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        loud(&format!(
            "*** SKIPPED: not root: test `{test}` did NOT run (natively it needs CAP_SYS_ADMIN) ***"
        ));
        return false;
    }
    true
}

fn assert_same(native: &(i32, String, String), sandboxed: &(i32, String, String)) {
    assert_eq!(native.0, 0, "natively: {}\n{}", native.2, native.1);
    assert_eq!(
        sandboxed.0, native.0,
        "status: sandbox {} native {}; sandbox stderr: {}",
        sandboxed.0, native.0, sandboxed.2
    );
    assert_eq!(
        sandboxed.1,
        native.1,
        "{}\nsandbox stderr: {}",
        diff_lines(&native.1, &sandboxed.1),
        sandboxed.2
    );
}

/// A build tool's chroot: a tree holding a static busybox and its links, entered with
/// util-linux `chroot DIR /bin/sh -c ...`; the shell sees only the tree.
#[test]
fn chroot_into_a_busybox_tree() {
    let name = "chroot_into_a_busybox_tree";
    if skip_without_kvm(name) || !have(&[CHROOT, BUSYBOX], name) {
        return;
    }
    let dir = ScratchDir::new("chroot-tree");
    let root = dir.path();
    for d in ["bin", "etc", "tmp", "work/src"] {
        std::fs::create_dir_all(root.join(d)).expect("mkdir");
    }
    std::fs::copy(BUSYBOX, root.join("bin/busybox")).expect("copy busybox");
    for applet in [
        "sh", "echo", "cat", "ls", "pwd", "wc", "sort", "mkdir", "cp",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).expect("symlink");
    }
    std::fs::write(root.join("etc/greeting"), "hello from the tree\n").expect("write");
    std::fs::write(
        root.join("work/src/main.c"),
        "int main(void) { return 0; }\n",
    )
    .expect("write");
    let script = "cd /work && mkdir -p out && cp src/main.c out/ && ls -R / | wc -l; \
                  cat /etc/greeting; ls /; ls out; pwd; cd .. && cd .. && pwd && ls; \
                  test -e /usr && echo escaped || echo confined";
    let root_s = root.to_str().expect("utf-8 path");
    let (native, sandboxed) = both(&[CHROOT, root_s, "/bin/sh", "-c", script]);
    assert_same(&native, &sandboxed);
    assert!(native.1.contains("confined"), "{}", native.1);
}

/// `unshare -m` with a private tmpfs: the mount and its file are seen inside, in
/// /proc/self/mountinfo and by findmnt, and nowhere outside once the command ends.
#[test]
fn unshare_m_private_tmpfs() {
    let name = "unshare_m_private_tmpfs";
    if skip_without_kvm(name) || !have(&[UNSHARE, "/usr/bin/findmnt", "/usr/bin/mount"], name) {
        return;
    }
    let dir = ScratchDir::new("unshare-m");
    let m = dir.path().join("m");
    std::fs::create_dir(&m).expect("mkdir");
    let m = m.to_str().expect("utf-8 path");
    let script = format!(
        "unshare -m sh -c 'mount -t tmpfs -o size=1m,mode=700 tmpfs {m} && echo inside > {m}/f \
         && cat {m}/f && grep -c \" {m} \" /proc/self/mountinfo \
         && findmnt -n -o FSTYPE,OPTIONS {m} && stat -c %a {m} \
         && umount {m} && test ! -e {m}/f && echo unmounted'; echo status $?; \
         test -e {m}/f && echo visible || echo invisible; \
         grep -c \" {m} \" /proc/self/mountinfo; echo end"
    );
    let (native, sandboxed) = both(&["/bin/sh", "-c", &script]);
    assert_same(&native, &sandboxed);
    assert!(native.1.contains("invisible"), "{}", native.1);
}

/// `unshare -p -f --mount-proc`: the command is pid 1 of a new pid namespace, its parent
/// (outside) is 0 to it, and the /proc mounted for it numbers processes as the namespace
/// does.
#[test]
fn unshare_pid_mount_proc() {
    let name = "unshare_pid_mount_proc";
    if skip_without_kvm(name) || !have(&[UNSHARE], name) {
        return;
    }
    let (native, sandboxed) = both(&[
        UNSHARE,
        "-p",
        "-f",
        "--mount-proc",
        "/bin/sh",
        "-c",
        "echo $$ $PPID; readlink /proc/self/ns/pid | cut -c1-5; \
         cut -d' ' -f1,4 /proc/self/stat; sleep 0.1 & wait $! && echo waited; \
         kill -0 1 && echo init-alive; ls /proc/1/ns/pid; test -e /proc/2 || echo no-2; \
         readlink /proc/self",
    ]);
    assert_same(&native, &sandboxed);
    assert!(native.1.starts_with("1 0\n"), "{}", native.1);
}

/// util-linux `unshare` with user namespaces, as root and as uid 1000 (through setpriv):
/// `-r` maps the caller to root (uid_map, setgroups "deny", gid_map written by unshare
/// itself), `-U` alone leaves every id unmapped (65534), the maps read back in the
/// namespace's own terms, and root in the namespace sets the hostname of a UTS namespace
/// it owns and mounts a tmpfs in a mount namespace it owns, where what it inherited is
/// locked and shared mounts became slaves. Natively every namespace is the command's own.
#[test]
fn unshare_user_namespaces() {
    let name = "unshare_user_namespaces";
    if skip_without_kvm(name) || !have(&[UNSHARE, "/usr/bin/setpriv", "/usr/bin/id"], name) {
        return;
    }
    let dir = ScratchDir::new("unshare-user");
    let m = dir.path().join("m");
    std::fs::create_dir(&m).expect("mkdir");
    let m = m.to_str().expect("utf-8 path");
    let script = format!(
        "unshare -r id; unshare -U id; \
         unshare -Ur sh -c 'cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups'; \
         unshare -U sh -c 'grep -E \"^(Uid|Gid|CapEff)\" /proc/self/status'; \
         unshare -Uru sh -c 'hostname inner && hostname'; \
         unshare -Urm sh -c 'mount -t tmpfs tmpfs {m} && touch {m}/f && stat -c %u:%g {m}/f'; \
         setpriv --reuid 1000 --regid 1000 --clear-groups sh -c \"unshare -r id; unshare -U id; \
           unshare -r sh -c 'cat /proc/self/uid_map /proc/self/gid_map; \
           grep CapEff /proc/self/status; stat -c %u:%g /etc/shadow; \
           head -c0 /etc/shadow 2>/dev/null || echo shadow-denied'\"; \
         unshare -m sh -c 'mount -t tmpfs t {m} && mount --make-shared {m} && \
           unshare -Urm --propagation unchanged sh -c \"grep -o \\\"{m} rw,relatime [a-z]*\\\" \
           /proc/self/mountinfo; umount {m} || echo locked\"'; \
         echo end"
    );
    let (native, sandboxed) = both(&["/bin/sh", "-c", &script]);
    assert_same(&native, &sandboxed);
    assert!(
        native.1.starts_with("uid=0(root) gid=0(root)"),
        "{}",
        native.1
    );
    assert!(native.1.contains("shadow-denied"), "{}", native.1);
    assert!(native.1.contains("master\nlocked"), "{}", native.1);
}
