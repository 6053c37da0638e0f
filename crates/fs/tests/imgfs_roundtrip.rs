//! ImgFS round trips: build an image from a directory holding every file type and attribute
//! (as root), read it back through the reader and compare with the tree read natively; the
//! same from a layer tarball with whiteouts and opaque directories; reproducibility; dedup.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{Read as _, Write as _};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use ::fs::imgfs::{self, BuildOptions, FileType, Image, Ino, NoProgress};
use nix::sys::stat::{mknod, utimensat, Mode, SFlag, UtimensatFlags};
use nix::sys::time::TimeSpec;
use sha2::{Digest as _, Sha256};

/// Everything compared about one file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Info {
    mode: u32,
    nlink: u64,
    uid: u32,
    gid: u32,
    /// Not compared for directories (file-system specific).
    size: Option<u64>,
    rdev: u64,
    atime: (i64, i64),
    mtime: (i64, i64),
    ctime: (i64, i64),
    xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    target: Option<Vec<u8>>,
    sha256: Option<[u8; 32]>,
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The tree under `root` read natively (lstat, llistxattr), keyed by relative path; plus
/// the host inode of each path (for hard links).
fn native(root: &Path) -> (BTreeMap<Vec<u8>, Info>, BTreeMap<Vec<u8>, u64>) {
    let mut out = BTreeMap::new();
    let mut inos = BTreeMap::new();
    let mut stack = vec![(root.to_path_buf(), Vec::new())];
    while let Some((path, rel)) = stack.pop() {
        // readlink moves a symlink's atime: read it before the times, as the builder does.
        let target = fs::read_link(&path).ok();
        let md = fs::symlink_metadata(&path).unwrap();
        let mut xattrs = BTreeMap::new();
        for name in xattr::list(&path).unwrap() {
            let v = xattr::get(&path, &name).unwrap().unwrap();
            xattrs.insert(name.as_bytes().to_vec(), v);
        }
        let ft = md.file_type();
        let info = Info {
            mode: md.mode(),
            nlink: md.nlink(),
            uid: md.uid(),
            gid: md.gid(),
            size: (!ft.is_dir()).then_some(md.size()),
            rdev: if ft.is_symlink() || ft.is_file() || ft.is_dir() {
                0
            } else {
                md.rdev()
            },
            atime: (md.atime(), md.atime_nsec()),
            mtime: (md.mtime(), md.mtime_nsec()),
            ctime: (md.ctime(), md.ctime_nsec()),
            xattrs,
            target: target.map(|t| t.as_os_str().as_bytes().to_vec()),
            sha256: ft.is_file().then(|| {
                let mut f = fs::OpenOptions::new()
                    .read(true)
                    .custom_flags(libc::O_NOATIME)
                    .open(&path)
                    .unwrap();
                let mut data = Vec::new();
                f.read_to_end(&mut data).unwrap();
                Sha256::digest(&data).into()
            }),
        };
        inos.insert(rel.clone(), md.ino());
        out.insert(rel.clone(), info);
        if ft.is_dir() {
            use nix::fcntl::OFlag;
            let dir = nix::dir::Dir::open(
                &path,
                OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOATIME,
                Mode::empty(),
            )
            .unwrap();
            for e in dir {
                let e = e.unwrap();
                let name = e.file_name().to_bytes();
                if name == b"." || name == b".." {
                    continue;
                }
                let mut r = rel.clone();
                if !r.is_empty() {
                    r.push(b'/');
                }
                r.extend_from_slice(name);
                stack.push((path.join(OsStr::from_bytes(name)), r));
            }
        }
    }
    (out, inos)
}

/// The tree of `img` read through the reader, keyed like [`native`]; plus each path's inode.
fn from_image(img: &Image) -> (BTreeMap<Vec<u8>, Info>, BTreeMap<Vec<u8>, Ino>) {
    let mut out = BTreeMap::new();
    let mut inos = BTreeMap::new();
    let mut stack = vec![(img.root(), Vec::new())];
    while let Some((ino, rel)) = stack.pop() {
        let a = img.attrs(ino).unwrap();
        let mut xattrs = BTreeMap::new();
        for x in img.xattrs(ino).unwrap() {
            let (n, v) = x.unwrap();
            assert_eq!(img.get_xattr(ino, n).unwrap(), Some(v));
            xattrs.insert(n.to_vec(), v.to_vec());
        }
        assert_eq!(img.get_xattr(ino, b"user.absent").unwrap(), None);
        let sha256 = (a.file_type == FileType::Regular).then(|| {
            // Through read() in odd chunks, and through the mapping: the same bytes.
            let mut data = Vec::new();
            let mut buf = vec![0u8; 7777];
            loop {
                let n = img.read(ino, data.len() as u64, &mut buf).unwrap();
                if n == 0 {
                    break;
                }
                data.extend_from_slice(&buf[..n]);
            }
            assert_eq!(data, img.file_bytes(ino).unwrap());
            assert_eq!(data.len() as u64, a.size);
            if let Some(x) = img.data_extent(ino).unwrap() {
                assert_eq!(x.offset % 4096, 0);
                assert_eq!(x.mapped_len % 4096, 0);
                let page = img.slice(x.offset, x.mapped_len).unwrap();
                assert!(
                    page[x.len as usize..].iter().all(|&b| b == 0),
                    "tail not zero"
                );
            } else {
                assert_eq!(a.size, 0);
            }
            Sha256::digest(&data).into()
        });
        let info = Info {
            mode: a.mode,
            nlink: u64::from(a.nlink),
            uid: a.uid,
            gid: a.gid,
            size: (a.file_type != FileType::Directory).then_some(a.size),
            rdev: a.rdev,
            atime: (a.atime.sec, i64::from(a.atime.nsec)),
            mtime: (a.mtime.sec, i64::from(a.mtime.nsec)),
            ctime: (a.ctime.sec, i64::from(a.ctime.nsec)),
            xattrs,
            target: (a.file_type == FileType::Symlink).then(|| img.readlink(ino).unwrap().to_vec()),
            sha256,
        };
        inos.insert(rel.clone(), ino);
        out.insert(rel.clone(), info);
        if a.file_type == FileType::Directory {
            let mut prev: Option<Vec<u8>> = None;
            for e in img.read_dir(ino).unwrap() {
                let e = e.unwrap();
                assert!(prev.as_deref() < Some(e.name), "entries sorted");
                prev = Some(e.name.to_vec());
                assert_eq!(
                    img.lookup(ino, e.name).unwrap(),
                    (!e.whiteout).then_some(e.ino)
                );
                if e.whiteout {
                    continue;
                }
                assert_eq!(Some(img.attrs(e.ino).unwrap().file_type), e.file_type);
                let mut r = rel.clone();
                if !r.is_empty() {
                    r.push(b'/');
                }
                r.extend_from_slice(e.name);
                stack.push((e.ino, r));
            }
        }
    }
    (out, inos)
}

fn set_times(path: &Path, atime: (i64, i64), mtime: (i64, i64)) {
    utimensat(
        None,
        path,
        &TimeSpec::new(atime.0, atime.1),
        &TimeSpec::new(mtime.0, mtime.1),
        UtimensatFlags::NoFollowSymlink,
    )
    .unwrap();
}

fn chown(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
}

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

/// `security.capability` (VFS_CAP_REVISION_2, effective) granting cap_net_bind_service.
fn cap_net_bind_service() -> Vec<u8> {
    let mut v = Vec::new();
    for w in [0x0200_0001u32, 1 << 10, 0, 0, 0] {
        v.extend_from_slice(&w.to_le_bytes());
    }
    v
}

/// Every file type and attribute root can create here.
fn make_rich_tree(root: &Path) {
    let p = |s: &str| root.join(s);
    fs::write(p("file.txt"), b"hello, imgfs\n").unwrap();
    File::create(p("empty")).unwrap();
    // Large and sparse-ish: holes read as zeros, data at 0 and 3 MiB.
    {
        let f = File::create(p("big.bin")).unwrap();
        f.set_len(5 * 1024 * 1024 + 123).unwrap();
        use std::os::unix::fs::FileExt as _;
        f.write_all_at(&[0xabu8; 10000], 0).unwrap();
        f.write_all_at(b"middle of nowhere", 3 * 1024 * 1024)
            .unwrap();
    }
    // Exactly one page, and a page plus one byte.
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
    fs::hard_link(p("file.txt"), p("dir/hard")).unwrap();
    fs::hard_link(p("file.txt"), p("dir/sub/hard2")).unwrap();
    nix::unistd::mkfifo(&p("fifo"), Mode::from_bits_truncate(0o640)).unwrap();
    mknod(
        &p("null"),
        SFlag::S_IFCHR,
        Mode::from_bits_truncate(0o666),
        libc::makedev(1, 3),
    )
    .unwrap();
    mknod(
        &p("dir/loop0"),
        SFlag::S_IFBLK,
        Mode::from_bits_truncate(0o660),
        libc::makedev(7, 0),
    )
    .unwrap();
    drop(std::os::unix::net::UnixListener::bind(p("sock")).unwrap());
    // Names: not UTF-8, and the longest allowed.
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
    xattr::set(p("file.txt"), "user.comment", b"a comment").unwrap();
    xattr::set(p("file.txt"), "user.empty", b"").unwrap();
    xattr::set(p("file.txt"), "trusted.overlay.x", b"y").unwrap();
    xattr::set(p("setuid"), "security.capability", &cap_net_bind_service()).unwrap();
    xattr::set(p("dir"), "user.dir", &[0u8, 1, 2, 255]).unwrap();
    xattr::set(p("link"), "trusted.on_symlink", b"yes").unwrap();
    xattr::set(p("dup1"), "user.big", &vec![b'v'; 3000]).unwrap();

    // Times last, children before parents: nanoseconds, before 1970, far future.
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
    set_times(&p("file.txt"), (-100_000, 5), (-1, 999_999_999));
    set_times(&p("page"), (4_000_000_000, 1), (4_102_444_800, 0));
}

/// Builds with every time kept (`--keep-ctime`): these tests check that nothing is lost.
fn keep_all() -> BuildOptions {
    BuildOptions {
        keep_host_times: true,
    }
}

fn build_dir(src: &Path, out: &Path) -> imgfs::BuildSummary {
    imgfs::build_from_dir(src, out, &keep_all(), &NoProgress).unwrap()
}

#[test]
fn directory_round_trip() {
    if !is_root() {
        eprintln!("skipped: needs root (mknod, chown, trusted xattrs)");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    make_rich_tree(&src);
    // Snapshot before building: reading files may move their atime (relatime).
    let (want, host_inos) = native(&src);
    let out = tmp.path().join("rich.img");
    let summary = build_dir(&src, &out);
    assert_eq!(
        summary.inodes as usize,
        want.len() - 2,
        "two extra hard links"
    );
    assert_eq!(summary.deduplicated, 1, "dup2 shares dup1's data");

    let img = Image::open(&out).unwrap();
    let s = imgfs::verify(&img, &mut |_| {}).unwrap();
    assert_eq!(s.devices, 2);
    assert_eq!(s.fifos_and_sockets, 2);
    let (got, img_inos) = from_image(&img);
    assert_eq!(
        want.keys()
            .map(|k| String::from_utf8_lossy(k))
            .collect::<Vec<_>>(),
        got.keys()
            .map(|k| String::from_utf8_lossy(k))
            .collect::<Vec<_>>()
    );
    for (path, w) in &want {
        let g = &got[path];
        assert_eq!(w, g, "{}", String::from_utf8_lossy(path));
    }
    // Hard links: same host inode <=> same image inode.
    for (a, ia) in &host_inos {
        for (b, ib) in &host_inos {
            assert_eq!(ia == ib, img_inos[a] == img_inos[b]);
        }
    }
    // A few specific points, to not only trust the comparison.
    let f = img.lookup_path(b"setuid").unwrap().unwrap();
    let a = img.attrs(f).unwrap();
    assert_eq!(a.mode, 0o104755);
    assert_eq!((a.uid, a.gid), (4_000_000_000, 123_456));
    assert_eq!(
        img.get_xattr(f, b"security.capability").unwrap(),
        Some(&cap_net_bind_service()[..])
    );
    let hard = img.lookup_path(b"dir/sub/hard2").unwrap().unwrap();
    assert_eq!(img.attrs(hard).unwrap().nlink, 3);
    assert_eq!(
        img.lookup_path(b"dir/sub/../../link").unwrap(),
        img.lookup_path(b"link").unwrap()
    );
    let null = img.lookup_path(b"null").unwrap().unwrap();
    assert_eq!(img.attrs(null).unwrap().rdev, libc::makedev(1, 3));
    assert_eq!(img.lookup(img.root(), b"missing").unwrap(), None);
    assert_eq!(img.read_dir(null).unwrap_err().errno(), libc::ENOTDIR);
    let mut listing = Vec::new();
    imgfs::inspect(&img, &mut listing).unwrap();
    let listing = String::from_utf8(listing).unwrap();
    assert!(listing.contains("-rwsr-xr-x"), "{listing}");
    assert!(listing.contains("drwxrwxrwt"), "{listing}");
    assert!(
        listing.contains("link -> file.txt [xattrs: trusted.on_symlink]"),
        "{listing}"
    );
    assert!(listing.contains("1, 3 "), "{listing}");
    assert!(listing.contains("\n/dir/sub:\n"), "{listing}");
    assert!(
        listing.contains("1969-12-31 23:59:59.999999999 file.txt"),
        "{listing}"
    );
}

// -------------------------------------------------------------------------------------
// Tarballs.

struct TarMember<'a> {
    path: &'a str,
    kind: tar::EntryType,
    mode: u32,
    data: &'a [u8],
    link: Option<&'a str>,
    dev: (u32, u32),
    pax: Vec<(&'a str, Vec<u8>)>,
}

fn member(path: &str, kind: tar::EntryType) -> TarMember<'_> {
    TarMember {
        path,
        kind,
        mode: if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        },
        data: b"",
        link: None,
        dev: (0, 0),
        pax: Vec::new(),
    }
}

fn make_tar(members: &[TarMember<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for m in members {
        if !m.pax.is_empty() {
            b.append_pax_extensions(m.pax.iter().map(|(k, v)| (*k, &v[..])))
                .unwrap();
        }
        let mut h = tar::Header::new_ustar();
        h.set_path(m.path).unwrap();
        h.set_entry_type(m.kind);
        h.set_mode(m.mode);
        h.set_mtime(1_234_567_890);
        h.set_uid(0);
        h.set_gid(0);
        h.set_size(m.data.len() as u64);
        if let Some(l) = m.link {
            h.set_link_name(l).unwrap();
        }
        if m.dev != (0, 0) {
            h.set_device_major(m.dev.0).unwrap();
            h.set_device_minor(m.dev.1).unwrap();
        }
        h.set_cksum();
        b.append(&h, m.data).unwrap();
    }
    b.into_inner().unwrap()
}

fn layer_members() -> Vec<TarMember<'static>> {
    use tar::EntryType as T;
    let caps = cap_net_bind_service();
    vec![
        TarMember {
            pax: vec![("mtime", b"1700000000.5".to_vec())],
            ..member("./", T::Directory)
        },
        member("etc/", T::Directory),
        TarMember {
            data: b"root:x:0:0:root:/root:/bin/sh\n",
            pax: vec![
                ("mtime", b"1700000000.123456789".to_vec()),
                ("atime", b"1700000001.000000001".to_vec()),
                ("ctime", b"1700000002.2".to_vec()),
                ("SCHILY.xattr.user.test", b"abc".to_vec()),
            ],
            ..member("etc/passwd", T::Regular)
        },
        TarMember {
            mode: 0o4755,
            data: b"\x7fELF pretend",
            pax: vec![("SCHILY.xattr.security.capability", caps)],
            ..member("usr/bin/ping", T::Regular)
        },
        TarMember {
            link: Some("usr/bin/ping"),
            ..member("usr/bin/ping6", T::Link)
        },
        TarMember {
            link: Some("dash"),
            mode: 0o777,
            ..member("usr/bin/sh", T::Symlink)
        },
        TarMember {
            dev: (1, 3),
            mode: 0o666,
            ..member("dev/null", T::Char)
        },
        TarMember {
            dev: (7, 0),
            mode: 0o660,
            ..member("dev/loop0", T::Block)
        },
        member("run/fifo", T::Fifo),
        TarMember {
            pax: vec![
                ("uid", b"4000000000".to_vec()),
                ("gid", b"3000000000".to_vec()),
            ],
            ..member("home/u/", T::Directory)
        },
        TarMember {
            mode: 0o1777,
            ..member("tmp/", T::Directory)
        },
        member(".wh.gone", T::Regular),
        member("var/lib/", T::Directory),
        member("var/.wh..wh..opq", T::Regular),
        member("opt/.wh.x", T::Regular),
        member(".wh.both", T::Regular),
        member("both/", T::Directory),
        TarMember {
            data: b"in both",
            ..member("both/f", T::Regular)
        },
        TarMember {
            data: b"file2",
            ..member("file2", T::Regular)
        },
        member(".wh.file2", T::Regular),
        member(".wh..wh.plnk/123", T::Regular),
        TarMember {
            data: b"duplicate",
            ..member("dup_a", T::Regular)
        },
        TarMember {
            data: b"duplicate",
            ..member("dup_b", T::Regular)
        },
        TarMember {
            data: b"first",
            ..member("replaced", T::Regular)
        },
        TarMember {
            data: b"second",
            ..member("replaced", T::Regular)
        },
    ]
}

fn build_tar_bytes(tar: &[u8], out: &Path) -> imgfs::BuildSummary {
    imgfs::build_from_tar(tar, "layer.tar", out, &keep_all(), None).unwrap()
}

#[test]
fn tarball_round_trip_with_whiteouts() {
    let tmp = tempfile::tempdir().unwrap();
    let tar = make_tar(&layer_members());
    let out = tmp.path().join("layer.img");
    let s = build_tar_bytes(&tar, &out);
    assert_eq!(s.whiteouts, 2, "gone and opt/x");
    assert_eq!(s.deduplicated, 1);
    let img = Image::open(&out).unwrap();
    let v = imgfs::verify(&img, &mut |_| {}).unwrap();
    assert_eq!(v.whiteouts, 2);
    assert_eq!(v.opaque_dirs, 2, "var and both");
    let at = |p: &str| img.lookup_path(p.as_bytes()).unwrap().unwrap();
    let root = img.attrs(img.root()).unwrap();
    assert_eq!(root.mtime.sec, 1_700_000_000);
    assert_eq!(root.mtime.nsec, 500_000_000);

    let passwd = img.attrs(at("etc/passwd")).unwrap();
    assert_eq!(passwd.mode, 0o100644);
    assert_eq!(
        (passwd.mtime.sec, passwd.mtime.nsec),
        (1_700_000_000, 123_456_789)
    );
    assert_eq!((passwd.atime.sec, passwd.atime.nsec), (1_700_000_001, 1));
    assert_eq!(
        (passwd.ctime.sec, passwd.ctime.nsec),
        (1_700_000_002, 200_000_000)
    );
    assert_eq!(
        img.get_xattr(at("etc/passwd"), b"user.test").unwrap(),
        Some(&b"abc"[..])
    );
    assert_eq!(
        img.file_bytes(at("etc/passwd")).unwrap(),
        b"root:x:0:0:root:/root:/bin/sh\n"
    );

    let ping = img.attrs(at("usr/bin/ping")).unwrap();
    assert_eq!(ping.mode, 0o104755);
    assert_eq!(ping.nlink, 2);
    assert_eq!(at("usr/bin/ping"), at("usr/bin/ping6"));
    assert_eq!(
        img.get_xattr(ping.ino, b"security.capability").unwrap(),
        Some(&cap_net_bind_service()[..])
    );
    assert_eq!(img.readlink(at("usr/bin/sh")).unwrap(), b"dash");
    let null = img.attrs(at("dev/null")).unwrap();
    assert_eq!(
        (null.file_type, null.rdev),
        (FileType::CharDevice, libc::makedev(1, 3))
    );
    let loop0 = img.attrs(at("dev/loop0")).unwrap();
    assert_eq!(
        (loop0.file_type, loop0.rdev),
        (FileType::BlockDevice, libc::makedev(7, 0))
    );
    assert_eq!(img.attrs(at("run/fifo")).unwrap().file_type, FileType::Fifo);
    // Implicit parents.
    let usr = img.attrs(at("usr")).unwrap();
    assert_eq!((usr.mode, usr.uid, usr.mtime.sec), (0o40755, 0, 0));
    let home = img.attrs(at("home/u")).unwrap();
    assert_eq!((home.uid, home.gid), (4_000_000_000, 3_000_000_000));
    assert_eq!(img.attrs(at("tmp")).unwrap().mode, 0o41777);
    // atime and ctime default to mtime.
    let tmpd = img.attrs(at("tmp")).unwrap();
    assert_eq!((tmpd.atime, tmpd.ctime), (tmpd.mtime, tmpd.mtime));

    // Whiteouts are entries with a flag, not .wh. files.
    let gone = img.lookup_entry(img.root(), b"gone").unwrap().unwrap();
    assert!(gone.whiteout && gone.ino == 0 && gone.file_type.is_none());
    assert_eq!(img.lookup(img.root(), b"gone").unwrap(), None);
    assert!(img.lookup_entry(img.root(), b".wh.gone").unwrap().is_none());
    assert!(img.lookup_entry(at("opt"), b"x").unwrap().unwrap().whiteout);
    assert!(img.is_opaque(at("var")).unwrap());
    assert!(img
        .lookup_entry(at("var"), b".wh..wh..opq")
        .unwrap()
        .is_none());
    assert_eq!(img.dir_len(at("var")).unwrap(), 1);
    // Whited out and present: a directory becomes opaque, a file just stays.
    assert!(img.is_opaque(at("both")).unwrap());
    assert!(
        !img.lookup_entry(img.root(), b"both")
            .unwrap()
            .unwrap()
            .whiteout
    );
    assert_eq!(img.file_bytes(at("both/f")).unwrap(), b"in both");
    assert!(
        !img.lookup_entry(img.root(), b"file2")
            .unwrap()
            .unwrap()
            .whiteout
    );
    assert!(!img.is_opaque(img.root()).unwrap());
    assert!(!img.is_opaque(at("etc")).unwrap());
    // aufs bookkeeping is dropped; a later member replaces an earlier one.
    assert!(img
        .lookup_entry(img.root(), b".wh..wh.plnk")
        .unwrap()
        .is_none());
    assert_eq!(img.file_bytes(at("replaced")).unwrap(), b"second");
    let (a, b) = (at("dup_a"), at("dup_b"));
    assert_ne!(a, b);
    assert_eq!(img.data_extent(a).unwrap(), img.data_extent(b).unwrap());

    let mut listing = Vec::new();
    imgfs::inspect(&img, &mut listing).unwrap();
    let listing = String::from_utf8(listing).unwrap();
    assert!(listing.contains("gone [whiteout]"), "{listing}");
    assert!(listing.contains("var [opaque]"), "{listing}");
    assert!(
        listing.contains("[xattrs: security.capability]"),
        "{listing}"
    );

    // The same layer compressed gives the same image.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::encode_all(&tar[..], 3).unwrap();
    let plain = fs::read(&out).unwrap();
    for (name, bytes) in [("layer.tar.gz", gz), ("layer.tar.zst", zst)] {
        let f = tmp.path().join(name);
        fs::write(&f, bytes).unwrap();
        let o = tmp.path().join(format!("{name}.img"));
        imgfs::build_from_tar_file(&f, &o, &keep_all(), &NoProgress).unwrap();
        assert!(fs::read(&o).unwrap() == plain, "{name}");
    }
}

/// The tree of a directory built from a tarball of it compares equal to the tree itself.
#[test]
fn tarball_of_a_directory_round_trip() {
    if !is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    make_rich_tree(&src);
    fs::remove_file(src.join("sock")).unwrap(); // tar cannot hold sockets
    let (mut want, _) = native(&src);
    // Through GNU tar with PAX headers, as `docker export` style layers are made.
    let tarball = tmp.path().join("tree.tar");
    let st = std::process::Command::new("tar")
        .args([
            "--xattrs",
            "--xattrs-include=*",
            "--format=posix",
            "--numeric-owner",
        ])
        .arg("-C")
        .arg(&src)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status();
    let Ok(st) = st else {
        eprintln!("skipped: no tar");
        return;
    };
    assert!(st.success());
    let out = tmp.path().join("tree.img");
    imgfs::build_from_tar_file(&tarball, &out, &keep_all(), &NoProgress).unwrap();
    let img = Image::open(&out).unwrap();
    imgfs::verify(&img, &mut |_| {}).unwrap();
    let (got, _) = from_image(&img);
    // GNU tar's PAX headers carry atime and ctime with nanoseconds; the symlink's trusted xattr
    // and the root's own times depend on tar, so compare the rest.
    for (path, w) in want.iter_mut() {
        let g = &got[path];
        let name = String::from_utf8_lossy(path);
        assert_eq!(
            (w.mode, w.nlink, w.uid, w.gid, w.size, w.rdev, &w.target, &w.sha256),
            (g.mode, g.nlink, g.uid, g.gid, g.size, g.rdev, &g.target, &g.sha256),
            "{name}"
        );
        assert_eq!(w.mtime, g.mtime, "{name}");
        if fs::symlink_metadata(src.join(OsStr::from_bytes(path)))
            .unwrap()
            .is_file()
        {
            assert_eq!(w.xattrs, g.xattrs, "{name}");
        }
    }
}

// -------------------------------------------------------------------------------------
// Reproducibility and dedup.

/// A fixed tree, its entries created in `order` (forward or reverse), every settable
/// attribute set explicitly.
fn make_ordered_tree(root: &Path, reverse: bool) {
    let mut names: Vec<String> = (0..40).map(|i| format!("f{i:02}")).collect();
    let mut dirs: Vec<String> = (0..5).map(|i| format!("d{i}")).collect();
    if reverse {
        names.reverse();
        dirs.reverse();
    }
    for d in &dirs {
        fs::create_dir(root.join(d)).unwrap();
        for n in &names {
            fs::write(root.join(d).join(n), format!("{d}/{n}")).unwrap();
        }
        std::os::unix::fs::symlink(format!("../{d}"), root.join(d).join("up")).unwrap();
    }
    for n in &names {
        fs::write(root.join(n), n.repeat(1000)).unwrap();
    }
    let mut all = vec![root.to_path_buf()];
    for d in &dirs {
        all.push(root.join(d));
        all.push(root.join(d).join("up"));
        for n in &names {
            all.push(root.join(d).join(n));
        }
    }
    for n in &names {
        all.push(root.join(n));
    }
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in &all {
        if !fs::symlink_metadata(p).unwrap().file_type().is_symlink() {
            chmod(p, if p.is_dir() { 0o750 } else { 0o640 });
        }
        if is_root() {
            chown(p, 1234, 5678);
        }
        set_times(p, (1_000_000_000, 1), (1_100_000_000, 2));
    }
}

#[test]
fn reproducible_whatever_the_directory_order() {
    // tmpfs lists a directory newest first: the two trees are read in opposite orders.
    let base = if Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let tmp = tempfile::tempdir_in(base).unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    fs::create_dir(&a).unwrap();
    fs::create_dir(&b).unwrap();
    make_ordered_tree(&a, false);
    make_ordered_tree(&b, true);
    let first: Vec<_> = fs::read_dir(&a)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let second: Vec<_> = fs::read_dir(&b)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_ne!(first, second, "the trees should list in different orders");
    // The default stores only mtimes (atime = ctime = mtime), as mkfs.erofs does.
    let opts = BuildOptions::default();
    let (ia, ib) = (tmp.path().join("a.img"), tmp.path().join("b.img"));
    imgfs::build_from_dir(&a, &ia, &opts, &NoProgress).unwrap();
    imgfs::build_from_dir(&b, &ib, &opts, &NoProgress).unwrap();
    let (ba, bb) = (fs::read(&ia).unwrap(), fs::read(&ib).unwrap());
    if ba != bb {
        let list = |p: &Path| {
            let mut v = Vec::new();
            imgfs::inspect(&Image::open(p).unwrap(), &mut v).unwrap();
            String::from_utf8(v).unwrap()
        };
        let (la, lb) = (list(&ia), list(&ib));
        for (x, y) in la
            .lines()
            .zip(lb.lines())
            .filter(|(x, _)| !x.contains("image ") && !x.contains("sha256"))
        {
            assert_eq!(x, y);
        }
        panic!("images differ ({} and {} bytes)", ba.len(), bb.len());
    }
    // And the same tree built twice, all times kept (the builder reads without moving atimes).
    let ia2 = tmp.path().join("a2.img");
    let ia3 = tmp.path().join("a3.img");
    build_dir(&a, &ia2);
    build_dir(&a, &ia3);
    assert!(fs::read(&ia2).unwrap() == fs::read(&ia3).unwrap());
    imgfs::verify(&Image::open(&ia).unwrap(), &mut |_| {}).unwrap();
}

#[test]
fn copies_on_different_file_systems_build_the_same_bytes() {
    // A tree in the temporary directory and a copy of it (`cp -a`: same modes, mtimes and
    // xattrs, new ctimes) on /dev/shm, another file system: by default both build to the same
    // bytes; keeping host times, they don't (the ctimes differ).
    let shm = Path::new("/dev/shm");
    if !shm.is_dir() {
        eprintln!("SKIPPED: no /dev/shm");
        return;
    }
    let a_tmp = tempfile::tempdir().unwrap();
    let b_tmp = tempfile::tempdir_in(shm).unwrap();
    let a = a_tmp.path().join("tree");
    fs::create_dir_all(a.join("etc/sub")).unwrap();
    fs::write(a.join("etc/passwd"), b"root:x:0:0::/root:/bin/sh\n").unwrap();
    fs::write(a.join("etc/sub/data"), vec![7u8; 9000]).unwrap();
    std::os::unix::fs::symlink("passwd", a.join("etc/link")).unwrap();
    fs::hard_link(a.join("etc/passwd"), a.join("etc/sub/hard")).unwrap();
    let mut all: Vec<PathBuf> = [
        "",
        "etc",
        "etc/sub",
        "etc/passwd",
        "etc/sub/data",
        "etc/link",
    ]
    .iter()
    .map(|p| a.join(p))
    .collect();
    all.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in &all {
        set_times(p, (1_000_000_000, 5), (1_100_000_000, 6));
    }
    let b = b_tmp.path().join("tree");
    let st = std::process::Command::new("cp")
        .arg("-a")
        .arg(&a)
        .arg(&b)
        .status()
        .unwrap();
    assert!(st.success());
    let out = a_tmp.path().join("out");
    fs::create_dir(&out).unwrap();
    let build = |src: &Path, name: &str, opts: &BuildOptions| {
        let img = out.join(name);
        imgfs::build_from_dir(src, &img, opts, &NoProgress).unwrap();
        fs::read(img).unwrap()
    };
    let (ia, ib) = (
        build(&a, "a.img", &BuildOptions::default()),
        build(&b, "b.img", &BuildOptions::default()),
    );
    assert!(ia == ib, "copies of one tree built different images");
    let (ka, kb) = (
        build(&a, "ka.img", &keep_all()),
        build(&b, "kb.img", &keep_all()),
    );
    assert!(
        ka != kb,
        "keeping host times, the copies' ctimes should show"
    );
}

#[test]
fn identical_contents_are_stored_once() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir_all(src.join("x/y")).unwrap();
    let small = vec![1u8; 10_000];
    // Over the builder's 1 MiB chunk: written, then taken back when found a duplicate.
    let large: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(src.join("a"), &small).unwrap();
    fs::write(src.join("x/b"), &small).unwrap();
    fs::write(src.join("x/y/c"), &small).unwrap();
    fs::write(src.join("big1"), &large).unwrap();
    fs::write(src.join("x/big2"), &large).unwrap();
    fs::write(
        src.join("x/y/z_after"),
        b"written after the taken-back copy",
    )
    .unwrap();
    fs::write(src.join("other"), vec![2u8; 10_000]).unwrap();
    let out = tmp.path().join("dedup.img");
    let s = build_dir(&src, &out);
    assert_eq!(s.regular_files, 7);
    assert_eq!(s.extents, 4);
    assert_eq!(s.deduplicated, 3);
    assert_eq!(s.data_bytes, 10_000 * 2 + 3_000_000 + 33);
    let img = Image::open(&out).unwrap();
    let sum = imgfs::verify(&img, &mut |_| {}).unwrap();
    assert_eq!(sum.extents, 4);
    let h = img.header();
    assert_eq!(h.data_size, 2 * 12288 + 3_002_368 + 4096);
    let get = |p: &str| img.lookup_path(p.as_bytes()).unwrap().unwrap();
    for p in ["a", "x/b", "x/y/c"] {
        assert_eq!(img.file_bytes(get(p)).unwrap(), &small[..]);
    }
    assert_eq!(
        img.data_extent(get("a")).unwrap(),
        img.data_extent(get("x/y/c")).unwrap()
    );
    assert_eq!(img.file_bytes(get("x/big2")).unwrap(), &large[..]);
    assert_eq!(
        img.file_bytes(get("x/y/z_after")).unwrap(),
        b"written after the taken-back copy"
    );
    assert_eq!(
        img.attrs(get("x/b")).unwrap().nlink,
        1,
        "dedup is not a hard link"
    );
}

#[test]
fn directory_whiteouts() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("layer");
    fs::create_dir_all(src.join("etc/opq")).unwrap();
    File::create(src.join("etc/.wh.removed")).unwrap();
    File::create(src.join("etc/opq/.wh..wh..opq")).unwrap();
    fs::write(src.join("etc/opq/kept"), b"k").unwrap();
    let out = tmp.path().join("layer.img");
    let s = build_dir(&src, &out);
    assert_eq!(s.whiteouts, 1);
    let img = Image::open(&out).unwrap();
    imgfs::verify(&img, &mut |_| {}).unwrap();
    let etc = img.lookup_path(b"etc").unwrap().unwrap();
    assert!(img.lookup_entry(etc, b"removed").unwrap().unwrap().whiteout);
    let opq = img.lookup_path(b"etc/opq").unwrap().unwrap();
    assert!(img.is_opaque(opq).unwrap());
    assert_eq!(img.dir_len(opq).unwrap(), 1);
}
