//! ImgFS images mounted in the sandbox (`runsc do --mount-image IMG:/PATH`).
//!
//! - Round trips: a tree holding every file type and attribute is built into an image (from
//!   the directory, and from a gzipped layer tarball with whiteouts); `treewalk` lists the
//!   tree natively and the mounted image in the sandbox (type, mode, owner, size, link count
//!   and hard-link groups, rdev, symlink target, mtime with nanoseconds, every xattr, the
//!   SHA-256 of every file), and the listings must be identical. Access and change times are
//!   left out: reading moves the first, and a copy can't keep the second.
//! - Every change to a mounted image fails as on Linux's erofs (`imgfs_erofs`, checked
//!   against the errnos a real erofs mount gives).
//! - A missing, truncated or damaged image is refused with one line naming it and status 125;
//!   damage past the header (found on use) is EIO in the sandbox, never a crash.
//!
//! Building the trees needs root (mknod, chown, trusted.* xattrs); without it, or without
//! /dev/kvm, each test says SKIPPED loudly and returns.

use std::ffi::{CString, OsStr};
use std::fs;
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use conformance::{
    build, compare, finish, fixed_env, loud, run_dir, run_native, run_with_timeout, runsc_path,
    skip_without_kvm, Case, Input, Libc, Outcome, ScratchDir, TIMEOUT,
};

/// Where the images are mounted in the sandbox (created in the memory layer: /mnt exists on
/// the host, the directory below it need not).
const MOUNT: &str = "/mnt/imgfs-test";

fn skip(test: &str) -> bool {
    if skip_without_kvm(test) {
        return true;
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        loud(&format!(
            "*** SKIPPED: `{test}` needs root (mknod, chown, trusted xattrs) and did NOT run ***"
        ));
        return true;
    }
    runsc_path();
    false
}

fn cpath(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("no NUL in test paths")
}

fn check(what: &str, p: &Path, r: i32) {
    assert!(
        r == 0,
        "{what} {}: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

fn mknod(p: &Path, kind: libc::mode_t, perm: libc::mode_t, major: u32, minor: u32) {
    // SAFETY: a valid C string; mknod only reads it.
    let r = unsafe { libc::mknod(cpath(p).as_ptr(), kind | perm, libc::makedev(major, minor)) };
    check("mknod", p, r);
}

fn set_xattr(p: &Path, name: &str, value: &[u8]) {
    let n = CString::new(name).unwrap();
    // SAFETY: valid C strings and a value buffer of the given length.
    let r = unsafe {
        libc::lsetxattr(
            cpath(p).as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    check("lsetxattr", p, r);
}

fn set_times(p: &Path, atime: (i64, i64), mtime: (i64, i64)) {
    let ts = [
        libc::timespec {
            tv_sec: atime.0,
            tv_nsec: atime.1,
        },
        libc::timespec {
            tv_sec: mtime.0,
            tv_nsec: mtime.1,
        },
    ];
    // SAFETY: a valid C string and two timespecs.
    let r = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            cpath(p).as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    check("utimensat", p, r);
}

fn chown(p: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(p, Some(uid), Some(gid)).unwrap();
}

fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

/// `security.capability` (VFS_CAP_REVISION_2, effective) granting cap_net_bind_service.
fn cap_net_bind_service() -> Vec<u8> {
    [0x0200_0001u32, 1 << 10, 0, 0, 0]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect()
}

/// Every file type and attribute root can make here. With `sockets` false, no socket (tar
/// can't hold one).
fn make_rich_tree(root: &Path, sockets: bool) {
    let p = |s: &str| root.join(s);
    fs::write(p("file.txt"), b"hello, imgfs\n").unwrap();
    fs::write(p("empty"), b"").unwrap();
    {
        // Larger than a page run, with a hole: zeros read as zeros.
        use std::os::unix::fs::FileExt as _;
        let f = fs::File::create(p("big.bin")).unwrap();
        f.set_len(3 * 1024 * 1024 + 123).unwrap();
        f.write_all_at(&[0xabu8; 10000], 0).unwrap();
        f.write_all_at(b"middle of nowhere", 2 * 1024 * 1024)
            .unwrap();
    }
    fs::write(p("page"), vec![7u8; 4096]).unwrap();
    fs::write(p("page_plus"), vec![9u8; 4097]).unwrap();
    fs::write(p("dup1"), b"same contents").unwrap();
    fs::write(p("dup2"), b"same contents").unwrap();
    fs::create_dir_all(p("dir/sub/subsub")).unwrap();
    fs::write(p("dir/sub/deep.txt"), b"deep").unwrap();
    fs::create_dir(p("sticky")).unwrap();
    fs::write(p("setuid"), b"#!/bin/sh\n").unwrap();
    fs::write(p("setgid"), b"#!/bin/sh\necho\n").unwrap();
    std::os::unix::fs::symlink("file.txt", p("link")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/target", p("dir/dangling")).unwrap();
    std::os::unix::fs::symlink("../..", p("dir/sub/up")).unwrap();
    fs::hard_link(p("file.txt"), p("dir/hard")).unwrap();
    fs::hard_link(p("file.txt"), p("dir/sub/hard2")).unwrap();
    mknod(&p("fifo"), libc::S_IFIFO, 0o640, 0, 0);
    mknod(&p("null"), libc::S_IFCHR, 0o666, 1, 3);
    mknod(&p("dir/loop0"), libc::S_IFBLK, 0o660, 7, 0);
    if sockets {
        drop(std::os::unix::net::UnixListener::bind(p("sock")).unwrap());
    }
    fs::write(root.join(OsStr::from_bytes(b"caf\xe9")), b"latin-1").unwrap();
    fs::write(p(&"n".repeat(255)), b"long name").unwrap();

    // Owners first (chown clears setuid and capabilities), then modes, then xattrs.
    chown(&p("file.txt"), 1000, 1000);
    chown(&p("setuid"), 4_000_000_000, 123_456);
    chown(&p("link"), 7, 8);
    chown(&p("dir"), 65534, 65534);
    chown(&p("fifo"), 42, 43);
    chmod(&p("setuid"), 0o4755);
    chmod(&p("setgid"), 0o2711);
    chmod(&p("sticky"), 0o1777);
    chmod(&p("dir/sub"), 0o700);
    chmod(&p("empty"), 0o000);
    set_xattr(&p("file.txt"), "user.comment", b"a comment");
    set_xattr(&p("file.txt"), "user.empty", b"");
    set_xattr(&p("file.txt"), "trusted.overlay.x", b"y");
    set_xattr(&p("setuid"), "security.capability", &cap_net_bind_service());
    set_xattr(&p("dir"), "user.dir", &[0u8, 1, 2, 255]);
    set_xattr(&p("link"), "trusted.on_symlink", b"yes");
    set_xattr(&p("dup1"), "user.big", &[b'v'; 3000]);
}

/// Sets every time under `root` (children first, so directories keep theirs): nanoseconds,
/// before 1970 and far in the future.
fn set_all_times(root: &Path) {
    let mut all = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        all.push(d.clone());
        if fs::symlink_metadata(&d).unwrap().is_dir() {
            for e in fs::read_dir(&d).unwrap() {
                stack.push(e.unwrap().path());
            }
        }
    }
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for (i, path) in all.iter().enumerate() {
        let i = i as i64;
        set_times(
            path,
            (1_600_000_000 + i, 123_456_789 + i),
            (1_500_000_000 - i * 1000, 987_654_321 - i),
        );
    }
    if root.join("file.txt").exists() {
        set_times(&root.join("file.txt"), (-100_000, 5), (-1, 999_999_999));
        set_times(&root.join("page"), (4_000_000_000, 1), (4_102_444_800, 0));
        set_times(root, (1, 1), (1_234_567_890, 123_456_789));
    }
}

/// `runsc image build ARGS -q`; panics with its stderr on failure.
fn build_image(args: &[&OsStr], out: &Path) {
    let o = Command::new(runsc_path())
        .args(["image", "build", "-q", "-o"])
        .arg(out)
        .args(args)
        .output()
        .expect("run runsc image build");
    assert!(
        o.status.success(),
        "runsc image build {args:?} failed:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `runsc do --mount-image IMG:PATH... -- prog args`, with the harness's fixed environment
/// and working directory.
fn run_with_images(images: &[(&Path, &str)], prog: &Path, args: &[&str]) -> Outcome {
    let mut cmd = Command::new(runsc_path());
    cmd.arg("do");
    for (img, at) in images {
        let mut spec = img.as_os_str().to_os_string();
        spec.push(":");
        spec.push(at);
        cmd.arg("--mount-image").arg(spec);
    }
    cmd.args(conformance::runsc_flags())
        .arg("--")
        .arg(prog)
        .args(args)
        .env_clear()
        .envs(fixed_env())
        .current_dir(run_dir());
    run_with_timeout(&mut cmd, &Input::Null, TIMEOUT).unwrap()
}

/// Lists `src` natively and the image mounted in the sandbox with treewalk (both libcs);
/// `expect` turns the native listing into what the image must show. Returns failures.
fn compare_listings(
    name: &str,
    src: &Path,
    img: &Path,
    expect: impl Fn(&[u8]) -> Vec<u8>,
) -> Vec<String> {
    let mut failures = Vec::new();
    for libc in Libc::ALL {
        let prog = build("treewalk", libc);
        let native = run_native(&prog, &Case::args([src.to_str().unwrap()])).unwrap();
        let text = String::from_utf8_lossy(&native.stdout);
        assert_eq!(native.status, 0, "treewalk natively:\n{text}");
        assert!(text.contains("failures=0"), "{text}");
        let native = Outcome {
            stdout: expect(&native.stdout),
            ..native
        };
        let sandbox = run_with_images(&[(img, MOUNT)], &prog, &[MOUNT]);
        let label = format!("{name} [{}]", libc.name());
        if let Err(report) = compare(&label, &native, &sandbox, "sandbox") {
            failures.push(report);
        }
    }
    failures
}

#[test]
fn directory_image_round_trip() {
    if skip("directory_image_round_trip") {
        return;
    }
    let scratch = ScratchDir::new("imgfs-dir");
    let src = scratch.path().join("src");
    fs::create_dir(&src).unwrap();
    make_rich_tree(&src, true);
    set_all_times(&src);
    let img = scratch.path().join("rich.img");
    build_image(&[src.as_os_str()], &img);
    let failures = compare_listings("directory image", &src, &img, |l| l.to_vec());
    finish("directory_image_round_trip", failures);
}

/// Whether a listing line's path has a component starting with `.wh.`.
fn is_whiteout_line(line: &[u8]) -> bool {
    let path = line.split(|&b| b == b' ').next().unwrap_or(b"");
    path.split(|&b| b == b'/').any(|c| c.starts_with(b".wh."))
}

#[test]
fn tarball_image_with_whiteouts_round_trip() {
    if skip("tarball_image_with_whiteouts_round_trip") {
        return;
    }
    if Command::new("tar").arg("--version").output().is_err() {
        loud("*** SKIPPED: no `tar`: tarball_image_with_whiteouts_round_trip did NOT run ***");
        return;
    }
    let scratch = ScratchDir::new("imgfs-tar");
    let src = scratch.path().join("src");
    fs::create_dir(&src).unwrap();
    make_rich_tree(&src, false);
    // An OCI layer's whiteouts: a file, a name in a subdirectory, an opaque directory, and
    // a name both whited out and present (the whiteout is for lower layers only).
    let p = |s: &str| src.join(s);
    fs::write(p(".wh.gone"), b"").unwrap();
    fs::write(p("dir/.wh.removed"), b"").unwrap();
    fs::create_dir(p("opq")).unwrap();
    fs::write(p("opq/.wh..wh..opq"), b"").unwrap();
    fs::write(p("opq/kept"), b"kept in an opaque directory").unwrap();
    fs::write(p(".wh.both"), b"").unwrap();
    fs::create_dir(p("both")).unwrap();
    fs::write(p("both/f"), b"in both").unwrap();
    set_all_times(&src);
    let tar = scratch.path().join("layer.tar.gz");
    let o = Command::new("tar")
        .args([
            "--format=pax",
            "--xattrs",
            "--xattrs-include=*",
            "--numeric-owner",
            "-czf",
        ])
        .arg(&tar)
        .arg("-C")
        .arg(&src)
        .arg(".")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let img = scratch.path().join("layer.img");
    build_image(&[OsStr::new("--tar"), tar.as_os_str()], &img);
    // The whiteout files are metadata, never files; nothing else changes (the opaque flag
    // means nothing for an image mounted by itself).
    let failures = compare_listings("tarball image", &src, &img, |listing| {
        let mut out = Vec::new();
        let mut entries = 0usize;
        for line in listing.split_inclusive(|&b| b == b'\n') {
            if is_whiteout_line(line) {
                continue;
            }
            if line.starts_with(b"entries=") {
                out.extend_from_slice(format!("entries={entries} failures=0\n").as_bytes());
                continue;
            }
            entries += 1;
            out.extend_from_slice(line);
        }
        out
    });
    finish("tarball_image_with_whiteouts_round_trip", failures);
}

/// What Linux's erofs answers (recorded from a real erofs mount on Linux 6.18, glibc and
/// musl alike); ImgFS in the sandbox must answer the same.
const EROFS_EXPECTED: &str = "\
open O_WRONLY: EROFS
open O_RDWR: EROFS
open O_RDONLY|O_TRUNC: EROFS
open O_WRONLY|O_APPEND: EROFS
open O_CREAT new: EROFS
open O_CREAT existing: 0
open O_CREAT|O_EXCL existing: EEXIST
open dir O_WRONLY: EISDIR
open dir O_RDONLY: 0
open O_TMPFILE: EROFS
creat: EROFS
open O_RDONLY: 0
read: 6
write on a read-only fd: EBADF
ftruncate on a read-only fd: EINVAL
fchmod: EROFS
fchown: EROFS
fsetxattr: EROFS
fremovexattr: EROFS
futimens: EROFS
truncate: EROFS
unlink: EROFS
unlink missing: EROFS
rmdir: EROFS
mkdir new: EROFS
mkdir existing: EEXIST
symlink: EROFS
link: EROFS
rename: EROFS
rename onto itself: EROFS
mknod fifo: EROFS
chmod: EROFS
chmod dir: EROFS
chown: EROFS
lchown symlink: EROFS
utimensat: EROFS
setxattr: EROFS
setxattr replace: EROFS
lsetxattr symlink: EROFS
removexattr: EROFS
access W_OK: EROFS
access R_OK: 0
rename to another mount: EXDEV
link to another mount: EXDEV
open char device 1:3: 0
write to it: 3
read from it: 0
statfs: 0
statfs read-only: 1
statfs namelen: 255
statfs free blocks: 0
stat file: 0
mode after: 0644 size after: 6
stat new: ENOENT
";

/// A small tree for the errno checks: file.txt (with user.comment), dir/, link, null.
fn erofs_tree(root: &Path) {
    fs::create_dir_all(root.join("dir/sub")).unwrap();
    fs::write(root.join("file.txt"), b"hello\n").unwrap();
    chmod(&root.join("file.txt"), 0o644);
    set_xattr(&root.join("file.txt"), "user.comment", b"hi");
    std::os::unix::fs::symlink("file.txt", root.join("link")).unwrap();
    mknod(&root.join("null"), libc::S_IFCHR, 0o666, 1, 3);
}

#[test]
fn every_change_to_a_mounted_image_fails_as_on_erofs() {
    if skip("every_change_to_a_mounted_image_fails_as_on_erofs") {
        return;
    }
    let scratch = ScratchDir::new("imgfs-erofs");
    let src = scratch.path().join("src");
    erofs_tree(&src);
    let img = scratch.path().join("small.img");
    build_image(&[src.as_os_str()], &img);
    // A writable directory on another mount (the host root, through the overlay).
    let outside = scratch.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let mut failures = Vec::new();
    for libc in Libc::ALL {
        let prog = build("imgfs_erofs", libc);
        let out = run_with_images(&[(&img, MOUNT)], &prog, &[MOUNT, outside.to_str().unwrap()]);
        let expected = Outcome {
            stdout: EROFS_EXPECTED.as_bytes().to_vec(),
            stderr: Vec::new(),
            status: 0,
            signal: None,
            elapsed: Default::default(),
        };
        let label = format!("imgfs_erofs [{}]", libc.name());
        if let Err(r) = compare(&label, &expected, &out, "sandbox") {
            failures.push(r);
        }
    }
    // Nothing reached the host either.
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    finish(
        "every_change_to_a_mounted_image_fails_as_on_erofs",
        failures,
    );
}

/// `runsc do --mount-image SPEC -- true`: status and stderr.
fn refused(spec: &str, prog: &Path) -> (i32, String) {
    let o = Command::new(runsc_path())
        .args(["do", "--mount-image", spec, "--"])
        .arg(prog)
        .output()
        .unwrap();
    (
        conformance::shell_status(o.status),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn bad_images_are_refused_with_one_line_naming_them() {
    if skip("bad_images_are_refused_with_one_line_naming_them") {
        return;
    }
    let scratch = ScratchDir::new("imgfs-bad");
    let src = scratch.path().join("src");
    erofs_tree(&src);
    let good = scratch.path().join("good.img");
    build_image(&[src.as_os_str()], &good);
    let bytes = fs::read(&good).unwrap();
    let prog = build("hello", Libc::Glibc);
    let dir = scratch.path();

    let mut cases: Vec<(PathBuf, &str)> = Vec::new();
    let mut write = |name: &str, data: &[u8], why: &'static str| {
        let p = dir.join(name);
        fs::write(&p, data).unwrap();
        cases.push((p, why));
    };
    write("empty.img", b"", "too short");
    write("garbage.img", &[0x5a; 8192], "bad magic");
    write("truncated.img", &bytes[..bytes.len() - 4096], "header says");
    let mut flipped = bytes.clone();
    flipped[60] ^= 0xff; // data_size: the header checksum no longer matches
    write("flipped.img", &flipped, "header checksum mismatch");
    let mut version = bytes.clone();
    version[8] = 2;
    write("version.img", &version, "unsupported version");
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0; 4096]);
    write("longer.img", &longer, "header says");
    cases.push((dir.join("missing.img"), "No such file"));
    cases.push((dir.to_path_buf(), "not a regular file"));

    for (img, why) in &cases {
        let spec = format!("{}:{MOUNT}", img.display());
        let (status, stderr) = refused(&spec, &prog);
        assert_eq!(status, 125, "{spec}: {stderr}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{spec}: one line, got:\n{stderr}"
        );
        assert!(
            stderr.starts_with(&format!("runsc: --mount-image {spec}: ")),
            "{spec}: {stderr}"
        );
        assert!(stderr.contains(why), "{spec}: expected {why:?} in {stderr}");
    }

    // Mount points that can't be.
    let file_target = format!("{}:{}", good.display(), good.display());
    for (spec, why) in [
        (format!("{}:/", good.display()), "over /"),
        (file_target, "Not a directory"),
        (
            format!("{}:/proc/self/imgfs", good.display()),
            "cannot create the mount point",
        ),
    ] {
        let (status, stderr) = refused(&spec, &prog);
        assert_eq!(status, 125, "{spec}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{spec}: {stderr}");
        assert!(stderr.contains(why), "{spec}: expected {why:?} in {stderr}");
    }
    // Inside a read-only image nothing can be created.
    let o = Command::new(runsc_path())
        .arg("do")
        .arg("--mount-image")
        .arg(format!("{}:{MOUNT}", good.display()))
        .arg("--mount-image")
        .arg(format!("{}:{MOUNT}/dir/new", good.display()))
        .arg("--")
        .arg(&prog)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(conformance::shell_status(o.status), 125, "{stderr}");
    assert!(stderr.contains("Read-only file system"), "{stderr}");
}

#[test]
fn damage_past_the_header_is_eio_in_the_sandbox() {
    if skip("damage_past_the_header_is_eio_in_the_sandbox") {
        return;
    }
    let scratch = ScratchDir::new("imgfs-damaged");
    let src = scratch.path().join("src");
    erofs_tree(&src);
    let good = scratch.path().join("good.img");
    build_image(&[src.as_os_str()], &good);
    let mut bytes = fs::read(&good).unwrap();
    let u64_at = |b: &[u8], off: usize| u64::from_le_bytes(b[off..off + 8].try_into().unwrap());
    // Open checks the header only (O(1)): scribble over the inode records but the root's,
    // and point the root's second entry's name outside the string table.
    let inodes = u64_at(&bytes, 80) as usize;
    let count = u64_at(&bytes, 88) as usize;
    let entries = u64_at(&bytes, 96) as usize;
    for b in &mut bytes[inodes + 96..inodes + 96 * count] {
        *b = 0xff;
    }
    bytes[entries + 16 + 4..entries + 16 + 8].copy_from_slice(&[0xee; 4]);
    let img = scratch.path().join("damaged.img");
    fs::write(&img, &bytes).unwrap();
    let prog = build("treewalk", Libc::Glibc);
    let out = run_with_images(&[(&img, MOUNT)], &prog, &[MOUNT]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.signal, None, "runsc crashed:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        out.status, 1,
        "treewalk must see errors:\n{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("Input/output error"),
        "EIO expected:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("imgfs: {}", img.display())),
        "the warning names the image:\n{stderr}"
    );
}

/// Deterministic bytes that don't repeat within a page (an xorshift stream).
fn pseudo_random(len: usize, mut seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        out.extend_from_slice(&seed.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Size of the file whose pages the mapping tests touch.
const BIG: usize = 64 << 20;

/// The tree `imgfs_mmap` reads: a big file, one whose last page is partial, and one that
/// ends exactly on a page boundary (followed in the image by another file's data).
fn mmap_tree(root: &Path) {
    fs::create_dir_all(root).unwrap();
    fs::write(root.join("big"), pseudo_random(BIG, 0x1234_5678)).unwrap();
    fs::write(root.join("tail"), vec![0x5a; 5000]).unwrap();
    let mut exact = vec![7u8; 4096];
    exact[4095] = 9;
    fs::write(root.join("exact"), exact).unwrap();
    fs::write(root.join("zz-after-exact"), vec![0xee; 4096]).unwrap();
}

#[test]
fn mapped_image_files_read_as_natively() {
    if skip("mapped_image_files_read_as_natively") {
        return;
    }
    let scratch = ScratchDir::new("imgfs-mmap");
    let src = scratch.path().join("src");
    mmap_tree(&src);
    let img = scratch.path().join("mmap.img");
    build_image(&[src.as_os_str()], &img);
    let mut failures = Vec::new();
    for libc in Libc::ALL {
        let prog = build("imgfs_mmap", libc);
        let native = run_native(&prog, &Case::args([src.to_str().unwrap()])).unwrap();
        assert_eq!(
            native.status,
            0,
            "{}",
            String::from_utf8_lossy(&native.stdout)
        );
        let sandbox = run_with_images(&[(&img, MOUNT)], &prog, &[MOUNT]);
        let label = format!("imgfs_mmap [{}]", libc.name());
        if let Err(r) = compare(&label, &native, &sandbox, "sandbox") {
            failures.push(r);
        }
    }
    finish("mapped_image_files_read_as_natively", failures);
}

/// `RssShmem` and `RssFile` of a host process, in KiB.
fn host_rss(pid: u32) -> (u64, u64) {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    (field("RssShmem:"), field("RssFile:"))
}

/// Touching every page of a 64 MiB ImgFS file costs the sandbox no memory of its own: the
/// guest maps the image's pages (file-backed in the runsc process, `RssFile`) instead of
/// copies in the sandbox's memory file (a memfd, `RssShmem`).
#[test]
fn mapping_an_image_file_copies_nothing() {
    use std::io::{BufRead, BufReader, Write};
    if skip("mapping_an_image_file_copies_nothing") {
        return;
    }
    let scratch = ScratchDir::new("imgfs-zero-copy");
    let src = scratch.path().join("src");
    mmap_tree(&src);
    let img = scratch.path().join("mmap.img");
    build_image(&[src.as_os_str()], &img);
    let prog = build("imgfs_mmap", Libc::Glibc);
    let mut spec = img.as_os_str().to_os_string();
    spec.push(format!(":{MOUNT}"));
    let mut child = Command::new(runsc_path())
        .arg("do")
        .arg("--mount-image")
        .arg(spec)
        .args(conformance::runsc_flags())
        .arg("--")
        .arg(&prog)
        .args([MOUNT, "hold"])
        .env_clear()
        .envs(fixed_env())
        .current_dir(run_dir())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start runsc do");
    let pid = conformance::sentry_pid(child.id());
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut wait_line = |want: &str| loop {
        let line = lines
            .next()
            .unwrap_or_else(|| panic!("sandbox ended before printing {want:?}"))
            .unwrap();
        assert!(!line.contains("FAIL"), "{line}");
        if line == want {
            break;
        }
    };
    wait_line("mapped");
    let before = host_rss(pid);
    stdin.write_all(b"x").unwrap();
    wait_line("touched");
    let after = host_rss(pid);
    stdin.write_all(b"x").unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "imgfs_mmap in the sandbox: {status}");
    let big_kib = (BIG / 1024) as u64;
    let (shmem, file) = (after.0 - before.0, after.1.saturating_sub(before.1));
    eprintln!("touching {big_kib} KiB: sandbox memory +{shmem} KiB, image pages +{file} KiB");
    assert!(
        shmem < big_kib / 8,
        "touching a {big_kib} KiB image file grew the sandbox's memory by {shmem} KiB: its pages were copied"
    );
    assert!(
        file >= big_kib * 9 / 10,
        "the image's pages were not mapped: RssFile grew by {file} KiB only"
    );
}

/// A dynamic program, its interpreter and its C library all in an image: the loader reads
/// the program and ld.so from it, and ld.so maps libc.so.6 from it (through the mapping
/// contract). Runs as it runs natively from the source directory.
#[test]
fn dynamic_program_runs_from_an_image() {
    if skip("dynamic_program_runs_from_an_image") {
        return;
    }
    let scratch = ScratchDir::new("imgfs-dynamic");
    let src = scratch.path().join("src");
    fs::create_dir_all(&src).unwrap();
    let o = Command::new("gcc")
        .args(["-O2", "-o"])
        .arg(src.join("hello_dyn"))
        .arg(conformance::source_dir().join("hello.c"))
        .output()
        .expect("run gcc");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for lib in [
        "/lib64/ld-linux-x86-64.so.2",
        "/lib/x86_64-linux-gnu/libc.so.6",
    ] {
        let name = Path::new(lib).file_name().unwrap();
        fs::copy(fs::canonicalize(lib).unwrap(), src.join(name)).unwrap();
    }
    let img = scratch.path().join("dynamic.img");
    build_image(&[src.as_os_str()], &img);
    let args = |dir: &str| {
        vec![
            "--library-path".to_string(),
            dir.to_string(),
            format!("{dir}/hello_dyn"),
        ]
    };
    let native = run_native(
        &src.join("ld-linux-x86-64.so.2"),
        &Case::args(args(src.to_str().unwrap())),
    )
    .unwrap();
    assert_eq!(native.stdout, b"Hello, world!\n");
    let sandbox_args = args(MOUNT);
    let sandbox_args: Vec<&str> = sandbox_args.iter().map(String::as_str).collect();
    let sandbox = run_with_images(
        &[(&img, MOUNT)],
        &Path::new(MOUNT).join("ld-linux-x86-64.so.2"),
        &sandbox_args,
    );
    let failures = compare(
        "dynamic program from an image",
        &native,
        &sandbox,
        "sandbox",
    )
    .err()
    .into_iter()
    .collect();
    finish("dynamic_program_runs_from_an_image", failures);
}

/// `system.posix_acl_access` as Linux stores it: the owner rw, user 1000 r, nothing for the
/// group and others, a mask of r.
fn acl_user_1000_reads() -> Vec<u8> {
    let entries: [(u16, u16, u32); 5] = [
        (0x01, 6, u32::MAX),
        (0x02, 4, 1000),
        (0x04, 0, u32::MAX),
        (0x10, 4, u32::MAX),
        (0x20, 0, u32::MAX),
    ];
    let mut v = 2u32.to_le_bytes().to_vec();
    for (tag, perm, id) in entries {
        v.extend_from_slice(&tag.to_le_bytes());
        v.extend_from_slice(&perm.to_le_bytes());
        v.extend_from_slice(&id.to_le_bytes());
    }
    v
}

/// `setpriv` as `uid` (no groups) running `cat path`, natively or in the sandbox.
fn cat_as(uid: u32, path: &str, images: Option<&[(&Path, &str)]>) -> Outcome {
    let id = uid.to_string();
    let args = [
        "--reuid",
        &id,
        "--regid",
        &id,
        "--clear-groups",
        "cat",
        path,
    ];
    let setpriv = Path::new("/usr/bin/setpriv");
    match images {
        Some(images) => run_with_images(images, setpriv, &args),
        None => {
            let mut cmd = Command::new(setpriv);
            cmd.args(args).env_clear().envs(fixed_env());
            run_with_timeout(&mut cmd, &Input::Null, TIMEOUT).unwrap()
        }
    }
}

/// ACLs a layer's files carry are enforced in the sandbox: the named user the ACL lets read
/// can, another user can't, as natively on the directory the image was built from.
#[test]
fn acls_from_an_image_are_enforced() {
    if skip("acls_from_an_image_are_enforced") {
        return;
    }
    if !Path::new("/usr/bin/setpriv").exists() {
        loud("*** SKIPPED: acls_from_an_image_are_enforced needs setpriv (util-linux) ***");
        return;
    }
    let scratch = ScratchDir::new("imgfs-acl");
    let src = scratch.path().join("src");
    fs::create_dir(&src).unwrap();
    chmod(&src, 0o755);
    let file = src.join("f");
    fs::write(&file, "for 1000 only\n").unwrap();
    chmod(&file, 0o600);
    set_xattr(&file, "system.posix_acl_access", &acl_user_1000_reads());
    let img = scratch.path().join("acl.img");
    build_image(&[src.as_os_str()], &img);
    let inside = format!("{MOUNT}/f");
    let mut failures = Vec::new();
    for (uid, reads) in [(1000, true), (1001, false)] {
        let native = cat_as(uid, file.to_str().unwrap(), None);
        if (native.status == 0) != reads {
            loud(&format!(
                "*** SKIPPED: acls_from_an_image_are_enforced: natively uid {uid} got status {} \
                 (the scratch directory's parents must be searchable by others) ***",
                native.status
            ));
            return;
        }
        let sandbox = cat_as(uid, &inside, Some(&[(&img, MOUNT)]));
        if sandbox.status != native.status || sandbox.stdout != native.stdout {
            failures.push(format!(
                "uid {uid}: native status {} {:?}, sandbox status {} {:?} (stderr {})",
                native.status,
                String::from_utf8_lossy(&native.stdout),
                sandbox.status,
                String::from_utf8_lossy(&sandbox.stdout),
                String::from_utf8_lossy(&sandbox.stderr)
            ));
        }
    }
    finish("acls_from_an_image_are_enforced", failures);
}
