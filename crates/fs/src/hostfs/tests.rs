//! hostfs tests: on a temporary tree with a sibling "outside" directory that the tree's
//! symlinks point into, so that any escape would be visible.

use std::collections::BTreeMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;
use crate::vfs::{FileType, Inode, NewNode, Owner, SetAttr};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// `base/outside/secret` and the hostfs root `base/root`, removed on drop.
struct Tree {
    base: PathBuf,
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

impl Tree {
    fn root(&self) -> PathBuf {
        self.base.join("root")
    }
    fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("test path has no NUL")
}

fn mkfifo(p: &Path) {
    let c = cstr(p);
    // SAFETY: `c` is a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

fn set_user_xattr(p: &Path, name: &str, value: &[u8]) -> bool {
    let c = cstr(p);
    let n = CString::new(name).expect("no NUL");
    // SAFETY: both strings are NUL-terminated; `value` is readable for its length.
    let r = unsafe {
        libc::setxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    r == 0
}

fn tree() -> Tree {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let base = std::env::temp_dir().join(format!("hostfs-test-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let t = Tree { base };
    let w = |rel: &str, data: &[u8]| std::fs::write(t.base.join(rel), data).expect("write");
    let d = |rel: &str| std::fs::create_dir_all(t.base.join(rel)).expect("mkdir");
    let l = |target: &str, rel: &str| {
        std::os::unix::fs::symlink(target, t.base.join(rel)).expect("symlink")
    };
    d("outside");
    w("outside/secret", b"SECRET");
    d("root/dir/sub");
    d("root/empty");
    w("root/file.txt", b"hello world");
    w("root/dir/nested.txt", b"nested");
    let big: Vec<u8> = (0..(1u32 << 20) + 123)
        .map(|i| (i * 7 % 251) as u8)
        .collect();
    w("root/big", &big);
    l("/etc/passwd", "root/abs_link");
    l("../../..", "root/rel_link");
    l("../outside/secret", "root/escape_link");
    l("../../outside", "root/dir/up_link");
    l("file.txt", "root/inner_link");
    std::fs::hard_link(t.path("file.txt"), t.path("hard")).expect("link");
    mkfifo(&t.path("fifo"));
    drop(std::os::unix::net::UnixListener::bind(t.path("sock")).expect("bind"));
    t
}

fn fs(t: &Tree) -> Arc<HostFs> {
    HostFs::new(&t.root()).expect("HostFs::new")
}

/// Walks `path` component by component with `lookup` (no symlink following: that is the
/// VFS's job).
fn walk(root: &Arc<dyn Inode>, path: &str) -> Result<Arc<dyn Inode>, Errno> {
    let mut cur = root.clone();
    for c in path.split('/').filter(|c| !c.is_empty()) {
        cur = cur.lookup(c.as_bytes())?;
    }
    Ok(cur)
}

fn read_all(inode: &Arc<dyn Inode>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 7000];
    loop {
        let n = inode.read_at(out.len() as u64, &mut buf).expect("read_at");
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

fn host_inode(inode: &Arc<dyn Inode>) -> &HostInode {
    inode
        .as_any()
        .downcast_ref::<HostInode>()
        .expect("a hostfs inode")
}

fn err<T>(r: Result<T, Errno>) -> Errno {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

/// Everything observable about a host tree, to compare before and after.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, String> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<PathBuf, String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .expect("read_dir")
            .map(|e| e.expect("entry").path())
            .collect();
        entries.sort();
        for p in entries {
            let m = std::fs::symlink_metadata(&p).expect("lstat");
            let extra = if m.file_type().is_symlink() {
                format!("-> {:?}", std::fs::read_link(&p).expect("readlink"))
            } else if m.file_type().is_file() {
                format!("{:?}", std::fs::read(&p).expect("read"))
            } else {
                String::new()
            };
            let desc = format!(
                "mode {:o} ino {} nlink {} uid {} gid {} size {} mtime {}.{} ctime {}.{} atime {}.{} {}",
                m.mode(),
                m.ino(),
                m.nlink(),
                m.uid(),
                m.gid(),
                m.size(),
                m.mtime(),
                m.mtime_nsec(),
                m.ctime(),
                m.ctime_nsec(),
                m.atime(),
                m.atime_nsec(),
                extra
            );
            out.insert(p.strip_prefix(base).expect("prefix").to_path_buf(), desc);
            if m.is_dir() {
                walk(&p, base, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

#[test]
fn lookup_and_stat() {
    let t = tree();
    let fs = fs(&t);
    let root = fs.root();
    assert_eq!(root.file_type(), FileType::Directory);
    assert!(root.read_only());
    let st = root.stat().expect("stat");
    let m = std::fs::metadata(t.root()).expect("metadata");
    assert_eq!((st.dev, st.ino), (m.dev(), m.ino()));
    assert_eq!(st.mode & libc::S_IFMT, libc::S_IFDIR);

    let f = root.lookup(b"file.txt").expect("lookup");
    assert_eq!(f.file_type(), FileType::Regular);
    let st = f.stat().expect("stat");
    let m = std::fs::metadata(t.path("file.txt")).expect("metadata");
    assert_eq!((st.dev, st.ino, st.size), (m.dev(), m.ino(), 11));
    assert_eq!(st.mode, m.mode());
    assert_eq!((st.mtime.0, st.mtime.1), (m.mtime(), m.mtime_nsec()));

    let nested = walk(&root, "dir/nested.txt").expect("walk");
    assert_eq!(read_all(&nested), b"nested");
    assert_eq!(
        walk(&root, "dir/sub").expect("walk").file_type(),
        FileType::Directory
    );
    assert_eq!(err(root.lookup(b"missing")), libc::ENOENT);
    assert_eq!(err(f.lookup(b"x")), libc::ENOTDIR);
    assert_eq!(err(f.readdir()), libc::ENOTDIR);
}

#[test]
fn readdir_matches_host() {
    let t = tree();
    let fs = fs(&t);
    let root = fs.root();
    let entries = root.readdir().expect("readdir");
    let mut ours: Vec<(Vec<u8>, u64, FileType)> = entries
        .into_iter()
        .map(|e| (e.name, e.ino, e.file_type))
        .collect();
    ours.sort_by(|a, b| a.0.cmp(&b.0));
    let mut host: Vec<(Vec<u8>, u64, FileType)> = std::fs::read_dir(t.root())
        .expect("read_dir")
        .map(|e| {
            let e = e.expect("entry");
            let m = std::fs::symlink_metadata(e.path()).expect("lstat");
            let ty = FileType::from_mode(m.mode()).expect("type");
            (e.file_name().as_bytes().to_vec(), m.ino(), ty)
        })
        .collect();
    host.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(ours, host);
    assert!(!ours.iter().any(|(n, _, _)| n == b"." || n == b".."));
    assert_eq!(
        walk(&root, "empty")
            .expect("walk")
            .readdir()
            .expect("readdir"),
        vec![]
    );
    // Stable order across calls.
    let a: Vec<_> = root
        .readdir()
        .expect("readdir")
        .into_iter()
        .map(|e| e.name)
        .collect();
    let b: Vec<_> = root
        .readdir()
        .expect("readdir")
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(a, b);
}

#[test]
fn read_regular_files() {
    let t = tree();
    let fs = fs(&t);
    let root = fs.root();
    let f = root.lookup(b"file.txt").expect("lookup");
    let mut buf = [0u8; 5];
    assert_eq!(f.read_at(6, &mut buf), Ok(5));
    assert_eq!(&buf, b"world");
    assert_eq!(f.read_at(9, &mut buf), Ok(2));
    assert_eq!(&buf[..2], b"ld");
    assert_eq!(f.read_at(11, &mut buf), Ok(0));
    assert_eq!(f.read_at(1 << 40, &mut buf), Ok(0));
    assert_eq!(f.read_at(u64::MAX, &mut buf), Err(libc::EINVAL));
    // As pread(2) natively: offset + length overflowing loff_t is EINVAL.
    assert_eq!(f.read_at(i64::MAX as u64, &mut buf), Err(libc::EINVAL));
    assert_eq!(f.read_at(i64::MAX as u64 - 5, &mut buf), Ok(0));
    assert_eq!(f.read_at(0, &mut []), Ok(0));

    let big = root.lookup(b"big").expect("lookup");
    assert_eq!(read_all(&big), std::fs::read(t.path("big")).expect("read"));
    let mut whole = vec![0u8; 2 << 20];
    let n = big.read_at(0, &mut whole).expect("read_at");
    assert_eq!(n, (1 << 20) + 123, "a large read is served whole");

    assert_eq!(err(root.read_at(0, &mut buf)), libc::EISDIR);
    let link = root.lookup(b"inner_link").expect("lookup");
    assert_eq!(err(link.read_at(0, &mut buf)), libc::EINVAL);
}

#[test]
fn symlinks_are_never_followed() {
    let t = tree();
    let fs = fs(&t);
    let root = fs.root();
    for (name, target) in [
        ("abs_link", &b"/etc/passwd"[..]),
        ("rel_link", b"../../.."),
        ("escape_link", b"../outside/secret"),
        ("inner_link", b"file.txt"),
        ("dir/up_link", b"../../outside"),
    ] {
        let l = walk(&root, name).expect(name);
        assert_eq!(l.file_type(), FileType::Symlink, "{name}");
        assert_eq!(l.readlink().expect("readlink"), target, "{name}");
        let st = l.stat().expect("stat");
        assert_eq!(st.mode & libc::S_IFMT, libc::S_IFLNK, "{name}");
        assert_eq!(st.size as usize, target.len());
        let m = std::fs::symlink_metadata(t.path(name)).expect("lstat");
        assert_eq!(st.ino, m.ino());
        assert_eq!(err(l.lookup(b"secret")), libc::ENOTDIR, "{name}");
        assert_eq!(err(l.lookup(b"passwd")), libc::ENOTDIR, "{name}");
        assert_eq!(err(l.readdir()), libc::ENOTDIR, "{name}");
        assert_eq!(err(l.read_at(0, &mut [0u8; 16])), libc::EINVAL, "{name}");
        assert_eq!(l.listxattr(), Ok(vec![]));
        assert_eq!(l.getxattr(b"user.x"), Err(libc::ENODATA));
        assert!(!is_host_special(&*l));
    }
    assert_eq!(err(root.readlink()), libc::EINVAL);
    assert_eq!(
        err(root.lookup(b"file.txt").expect("lookup").readlink()),
        libc::EINVAL
    );
}

#[test]
fn bad_names_are_refused() {
    let t = tree();
    let fs = fs(&t);
    let root = fs.root();
    let dir = root.lookup(b"dir").expect("lookup");
    let long = vec![b'a'; 256];
    for name in [
        &b""[..],
        b".",
        b"..",
        b"dir/nested.txt",
        b"/etc",
        b"/",
        b"../outside",
        b"../outside/secret",
        b"a\0b",
        b"file.txt\0",
        b"dir/",
    ] {
        assert_eq!(
            err(root.lookup(name)),
            libc::EINVAL,
            "{:?}",
            String::from_utf8_lossy(name)
        );
        assert_eq!(
            err(dir.lookup(name)),
            libc::EINVAL,
            "{:?}",
            String::from_utf8_lossy(name)
        );
    }
    assert_eq!(err(root.lookup(&long)), libc::ENAMETOOLONG);
}

#[test]
fn hard_links_and_repeated_lookups_share_the_inode() {
    let t = tree();
    let fs = fs(&t);
    let root = fs.root();
    let a = root.lookup(b"file.txt").expect("lookup");
    let b = root.lookup(b"hard").expect("lookup");
    let c = root.lookup(b"file.txt").expect("lookup");
    assert!(Arc::ptr_eq(&a, &b));
    assert!(Arc::ptr_eq(&a, &c));
    let (sa, sb) = (a.stat().expect("stat"), b.stat().expect("stat"));
    assert_eq!(sa.ino, sb.ino);
    assert_eq!(sa.nlink, 2);
    assert_eq!(read_all(&b), b"hello world");
    // The root itself, reached again through a lookup chain, is the same inode.
    let dir = root.lookup(b"dir").expect("lookup");
    assert!(!Arc::ptr_eq(&dir, &root));
}

#[test]
fn inode_cache_forgets_dropped_inodes() {
    let t = tree();
    let fs = fs(&t);
    let root = fs.root();
    let shared = Arc::clone(&host_inode(&root).shared);
    assert_eq!(shared.inodes().len(), 1);
    let f = root.lookup(b"file.txt").expect("lookup");
    let d = walk(&root, "dir/sub").expect("walk");
    // root, file.txt, dir/sub and dir (which dir/sub keeps, to open it again by name).
    assert_eq!(shared.inodes().len(), 4);
    drop(f);
    drop(d);
    assert_eq!(shared.inodes().len(), 1);
}

#[test]
fn host_specials() {
    let t = tree();
    let dev = t.path("null");
    let c = cstr(&dev);
    // SAFETY: `c` is NUL-terminated. Makes a /dev/null-like node (needs CAP_MKNOD).
    let have_dev =
        unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) } == 0;
    let fs = fs(&t);
    let root = fs.root();
    let mut kinds = vec![("fifo", FileType::Fifo), ("sock", FileType::Socket)];
    if have_dev {
        kinds.push(("null", FileType::CharDevice));
    } else {
        eprintln!("host_specials: cannot mknod, skipping the device case");
    }
    for (name, ty) in kinds {
        let start = Instant::now();
        let i = root.lookup(name.as_bytes()).expect(name);
        assert_eq!(i.file_type(), ty);
        assert!(is_host_special(&*i), "{name}");
        assert!(host_inode(&i).is_host_special());
        assert_eq!(i.open(libc::O_RDONLY).map(|d| d.is_none()), Ok(true));
        assert_eq!(err(i.read_at(0, &mut [0u8; 8])), libc::EINVAL, "{name}");
        assert_eq!(err(i.write_at(0, b"x")), libc::EROFS, "{name}");
        i.stat().expect("stat");
        i.listxattr().expect("listxattr");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{name}: nothing blocks"
        );
    }
    for name in ["file.txt", "dir", "inner_link"] {
        assert!(!is_host_special(
            &*root.lookup(name.as_bytes()).expect(name)
        ));
    }
}

#[test]
fn every_change_is_erofs_and_the_host_is_untouched() {
    let t = tree();
    let _ = set_user_xattr(&t.path("file.txt"), "user.keep", b"v");
    let fs = fs(&t);
    let root = fs.root();
    let _ = snapshot(&t.base);
    let before = snapshot(&t.base);

    let dir = root.lookup(b"dir").expect("lookup");
    let file = root.lookup(b"file.txt").expect("lookup");
    let link = root.lookup(b"inner_link").expect("lookup");
    let fifo = root.lookup(b"fifo").expect("lookup");
    let owner = Owner { uid: 0, gid: 0 };
    let nodes = [
        NewNode::Regular,
        NewNode::Directory,
        NewNode::Symlink(b"/etc".to_vec()),
        NewNode::Fifo,
        NewNode::Socket,
        NewNode::CharDevice(libc::makedev(1, 3)),
        NewNode::BlockDevice(libc::makedev(7, 0)),
    ];
    for d in [&root, &dir] {
        for node in &nodes {
            assert_eq!(
                err(d.create(b"new", node.clone(), 0o777, owner)),
                libc::EROFS
            );
            assert_eq!(
                err(d.create(b"file.txt", node.clone(), 0o777, owner)),
                libc::EROFS
            );
        }
        assert_eq!(d.link(b"newlink", &file), Err(libc::EROFS));
        assert_eq!(d.unlink(b"file.txt", false), Err(libc::EROFS));
        assert_eq!(d.unlink(b"nested.txt", false), Err(libc::EROFS));
        assert_eq!(d.unlink(b"sub", true), Err(libc::EROFS));
        assert_eq!(d.unlink(b"empty", true), Err(libc::EROFS));
        for flags in [0, libc::RENAME_NOREPLACE, libc::RENAME_EXCHANGE] {
            assert_eq!(
                d.rename(b"file.txt", &dir, b"moved", flags),
                Err(libc::EROFS)
            );
            assert_eq!(
                d.rename(b"nested.txt", &root, b"file.txt", flags),
                Err(libc::EROFS)
            );
        }
    }
    for i in [&file, &link, &fifo] {
        assert_eq!(
            err(i.create(b"x", NewNode::Regular, 0o644, owner)),
            libc::ENOTDIR
        );
        assert_eq!(i.link(b"x", &file), Err(libc::ENOTDIR));
        assert_eq!(i.unlink(b"x", false), Err(libc::ENOTDIR));
        assert_eq!(i.rename(b"x", &root, b"y", 0), Err(libc::ENOTDIR));
    }
    let attrs = [
        SetAttr {
            mode: Some(0o777),
            ..Default::default()
        },
        SetAttr {
            uid: Some(1),
            gid: Some(1),
            ..Default::default()
        },
        SetAttr {
            size: Some(0),
            ..Default::default()
        },
        SetAttr {
            size: Some(1 << 20),
            ..Default::default()
        },
        SetAttr {
            atime: Some((1, 0)),
            mtime: Some((1, 0)),
            ..Default::default()
        },
        SetAttr::default(),
    ];
    for i in [&root, &dir, &file, &link, &fifo] {
        assert_eq!(i.write_at(0, b"pwned"), Err(libc::EROFS));
        assert_eq!(i.write_at(1 << 30, b"pwned"), Err(libc::EROFS));
        assert_eq!(i.allocate(0, 0, 4096), Err(libc::EROFS));
        assert_eq!(
            i.allocate(libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE, 0, 4),
            Err(libc::EROFS)
        );
        for a in &attrs {
            assert_eq!(i.setattr(a), Err(libc::EROFS));
        }
        assert_eq!(i.setxattr(b"user.x", b"v", 0), Err(libc::EROFS));
        assert_eq!(
            i.setxattr(b"user.keep", b"w", libc::XATTR_REPLACE),
            Err(libc::EROFS)
        );
        assert_eq!(i.removexattr(b"user.keep"), Err(libc::EROFS));
        assert_eq!(i.sync(), Ok(()));
        assert!(i.read_only());
    }
    for flags in [
        libc::O_WRONLY,
        libc::O_RDWR,
        libc::O_RDONLY | libc::O_TRUNC,
        libc::O_WRONLY | libc::O_APPEND,
        libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC,
    ] {
        assert_eq!(err(file.open(flags)), libc::EROFS, "{flags:#x}");
        assert_eq!(err(dir.open(flags)), libc::EISDIR, "{flags:#x}");
    }
    assert_eq!(file.open(libc::O_RDONLY).map(|d| d.is_none()), Ok(true));
    assert_eq!(
        dir.open(libc::O_RDONLY | libc::O_DIRECTORY)
            .map(|d| d.is_none()),
        Ok(true)
    );

    // Reads and listings do not change anything either.
    read_all(&file);
    root.readdir().expect("readdir");
    dir.readdir().expect("readdir");
    drop((dir, file, link, fifo, root, fs));
    assert_eq!(snapshot(&t.base), before);
}

#[test]
fn reading_keeps_host_access_times() {
    let t = tree();
    let old = libc::timespec {
        tv_sec: 1_000_000_000,
        tv_nsec: 0,
    };
    let keep = libc::timespec {
        tv_sec: 0,
        tv_nsec: libc::UTIME_OMIT,
    };
    let set_old_atime = |p: &Path| {
        let c = cstr(p);
        let times = [old, keep];
        // SAFETY: `c` is NUL-terminated; `times` holds two timespecs.
        let r = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), 0) };
        assert_eq!(r, 0);
    };
    let atime = |p: &Path| std::fs::metadata(p).expect("metadata").atime();
    // Does this mount update access times on a read at all?
    std::fs::write(t.path("control"), b"c").expect("write");
    set_old_atime(&t.path("control"));
    std::fs::read(t.path("control")).expect("read");
    if atime(&t.path("control")) == old.tv_sec {
        eprintln!("reading_keeps_host_access_times: the mount does not update atime; trivial");
    }
    set_old_atime(&t.path("file.txt"));
    set_old_atime(&t.path("dir"));
    let fs = fs(&t);
    let root = fs.root();
    read_all(&root.lookup(b"file.txt").expect("lookup"));
    root.lookup(b"dir")
        .expect("lookup")
        .readdir()
        .expect("readdir");
    assert_eq!(atime(&t.path("file.txt")), old.tv_sec);
    assert_eq!(atime(&t.path("dir")), old.tv_sec);
}

#[test]
fn a_swapped_symlink_cannot_escape() {
    let t = tree();
    let fs = fs(&t);
    let root = fs.root();

    // A symlink looked up, then replaced by a directory: the inode still is that symlink.
    std::os::unix::fs::symlink("../outside", t.path("swap")).expect("symlink");
    let s = root.lookup(b"swap").expect("lookup");
    std::fs::remove_file(t.path("swap")).expect("rm");
    std::fs::create_dir(t.path("swap")).expect("mkdir");
    std::fs::write(t.path("swap/secret"), b"inside").expect("write");
    assert_eq!(s.file_type(), FileType::Symlink);
    assert_eq!(s.readlink().expect("readlink"), b"../outside");
    assert_eq!(err(s.lookup(b"secret")), libc::ENOTDIR);
    let now = root.lookup(b"swap").expect("lookup");
    assert_eq!(now.file_type(), FileType::Directory);
    assert_eq!(read_all(&now.lookup(b"secret").expect("lookup")), b"inside");

    // A directory looked up, then moved away and replaced by a symlink out of the root:
    // lookups in the inode stay in the directory it pinned.
    std::fs::create_dir(t.path("victim")).expect("mkdir");
    std::fs::write(t.path("victim/secret"), b"inside").expect("write");
    let v = root.lookup(b"victim").expect("lookup");
    std::fs::rename(t.path("victim"), t.path("victim.old")).expect("rename");
    std::os::unix::fs::symlink("../outside", t.path("victim")).expect("symlink");
    assert_eq!(read_all(&v.lookup(b"secret").expect("lookup")), b"inside");
    let l = root.lookup(b"victim").expect("lookup");
    assert_eq!(l.file_type(), FileType::Symlink);
    assert_eq!(err(l.lookup(b"secret")), libc::ENOTDIR);

    // A regular file looked up, then replaced by a symlink to a file outside: reads still
    // give the pinned file.
    std::fs::write(t.path("f"), b"inside").expect("write");
    let f = root.lookup(b"f").expect("lookup");
    std::fs::remove_file(t.path("f")).expect("rm");
    std::os::unix::fs::symlink("../outside/secret", t.path("f")).expect("symlink");
    assert_eq!(read_all(&f), b"inside");
}

#[test]
fn racing_swaps_never_reach_outside() {
    let t = tree();
    let fs = fs(&t);
    let root = fs.root();
    let flip = t.path("flip");
    let stop = Arc::new(AtomicBool::new(false));
    let swapper = {
        let stop = Arc::clone(&stop);
        let (dir, link, tmp) = (flip.clone(), t.path("flip.link"), t.path("flip.tmp"));
        std::fs::create_dir(&dir).expect("mkdir");
        std::fs::write(dir.join("secret"), b"inside").expect("write");
        std::os::unix::fs::symlink("../outside", &link).expect("symlink");
        std::thread::spawn(move || {
            // Exchanges flip (dir) and flip.link (symlink) by renames, over and over.
            while !stop.load(Ordering::Relaxed) {
                let _ = std::fs::rename(&dir, &tmp);
                let _ = std::fs::rename(&link, &dir);
                let _ = std::fs::rename(&dir, &link);
                let _ = std::fs::rename(&tmp, &dir);
            }
        })
    };
    let (mut dirs, mut links) = (0, 0);
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline || dirs == 0 {
        match root.lookup(b"flip") {
            Ok(i) if i.file_type() == FileType::Directory => {
                dirs += 1;
                if let Ok(s) = i.lookup(b"secret") {
                    assert_eq!(read_all(&s), b"inside");
                }
            }
            Ok(i) => {
                links += 1;
                assert_eq!(i.file_type(), FileType::Symlink);
                assert_eq!(err(i.lookup(b"secret")), libc::ENOTDIR);
            }
            Err(e) => assert_eq!(e, libc::ENOENT),
        }
        if Instant::now() > deadline + Duration::from_secs(10) {
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    swapper.join().expect("swapper");
    eprintln!("racing_swaps: {dirs} directory and {links} symlink lookups");
}

#[test]
fn openat_fallback_behaves_the_same() {
    let t = tree();
    let fs = fs(&t);
    let root = fs.root();
    host_inode(&root)
        .shared
        .use_openat2
        .store(false, Ordering::Relaxed);
    let l = root.lookup(b"escape_link").expect("lookup");
    assert_eq!(l.file_type(), FileType::Symlink);
    assert_eq!(err(l.lookup(b"secret")), libc::ENOTDIR);
    let l = walk(&root, "dir/up_link").expect("walk");
    assert_eq!(l.file_type(), FileType::Symlink);
    assert_eq!(
        read_all(&walk(&root, "dir/nested.txt").expect("walk")),
        b"nested"
    );
    for name in [&b".."[..], b"../outside", b"."] {
        assert_eq!(err(root.lookup(name)), libc::EINVAL);
    }
    assert!(!host_inode(&root).shared.use_openat2.load(Ordering::Relaxed));
}

#[test]
fn xattrs() {
    let t = tree();
    if !set_user_xattr(&t.path("file.txt"), "user.test", b"value") {
        eprintln!("xattrs: the temporary filesystem has no user xattrs; skipped");
        return;
    }
    assert!(set_user_xattr(&t.path("dir"), "user.d", b""));
    let fs = fs(&t);
    let root = fs.root();
    let f = root.lookup(b"file.txt").expect("lookup");
    assert_eq!(f.getxattr(b"user.test"), Ok(b"value".to_vec()));
    assert!(f
        .listxattr()
        .expect("listxattr")
        .contains(&b"user.test".to_vec()));
    assert_eq!(f.getxattr(b"user.missing"), Err(libc::ENODATA));
    assert_eq!(f.getxattr(b"trusted.overlay.opaque"), Err(libc::ENODATA));
    assert_eq!(f.getxattr(b"bogus.x"), Err(libc::EOPNOTSUPP));
    assert_eq!(f.getxattr(b"user.te\0st"), Err(libc::EINVAL));
    assert_eq!(f.getxattr(b""), Err(libc::ERANGE));
    assert_eq!(f.getxattr(&[b'u'; 300]), Err(libc::ERANGE));
    let d = root.lookup(b"dir").expect("lookup");
    assert_eq!(d.getxattr(b"user.d"), Ok(vec![]));
    assert!(d
        .listxattr()
        .expect("listxattr")
        .iter()
        .all(|n| !n.starts_with(b"trusted.")));
}

#[test]
fn statfs_is_the_hosts_and_read_only() {
    let t = tree();
    let fs = fs(&t);
    let s = fs.root().statfs().expect("statfs");
    let c = cstr(&t.root());
    let mut host = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `c` is NUL-terminated; `host` is writable.
    assert_eq!(unsafe { libc::statfs(c.as_ptr(), host.as_mut_ptr()) }, 0);
    // SAFETY: statfs succeeded.
    let host = unsafe { host.assume_init() };
    assert_eq!(s.fs_type as u32, fs_magic(&host));
    assert_eq!(s.name_max, 255);
    assert_ne!(s.flags & libc::ST_RDONLY as i64, 0);
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("fds").count()
}

#[test]
fn readdir_closes_its_descriptors() {
    let t = tree();
    let fs = fs(&t);
    let root = fs.root();
    let dir = root.lookup(b"dir").expect("lookup");
    let before = open_fds();
    for _ in 0..1000 {
        root.readdir().expect("readdir");
        dir.readdir().expect("readdir");
    }
    // Other tests run in parallel and open descriptors too, but not 2000 of them.
    assert!(open_fds() < before + 500, "readdir leaks descriptors");
}

#[test]
fn cached_read_descriptors_are_capped_and_released() {
    let t = tree();
    for i in 0..6 {
        std::fs::write(t.path(&format!("f{i}")), format!("file {i}")).expect("write");
    }
    let options = HostFsOptions {
        max_cached_read_fds: Some(2),
        ..Default::default()
    };
    let fs = HostFs::with_options(&t.root(), options).expect("HostFs");
    let root = fs.root();
    let shared = Arc::clone(&host_inode(&root).shared);
    let files: Vec<_> = (0..6)
        .map(|i| root.lookup(format!("f{i}").as_bytes()).expect("lookup"))
        .collect();
    for _ in 0..3 {
        for (i, f) in files.iter().enumerate() {
            assert_eq!(read_all(f), format!("file {i}").as_bytes());
            assert!(shared.read_fds.load(Ordering::Relaxed) <= 2);
        }
    }
    assert_eq!(shared.read_fds.load(Ordering::Relaxed), 2);
    drop(files);
    assert_eq!(shared.read_fds.load(Ordering::Relaxed), 0);
    assert!(default_read_fd_cap() >= 16);
}

#[test]
fn path_descriptors_are_capped_and_reopened_by_name() {
    let t = tree();
    std::fs::create_dir(t.path("many")).expect("mkdir");
    for i in 0..50 {
        std::fs::write(t.path(&format!("many/f{i}")), format!("file {i}")).expect("write");
    }
    let options = HostFsOptions {
        max_cached_path_fds: Some(4),
        max_cached_read_fds: Some(2),
        ..Default::default()
    };
    let fs = HostFs::with_options(&t.root(), options).expect("HostFs");
    let root = fs.root();
    let shared = Arc::clone(&host_inode(&root).shared);
    let before = open_fds();
    let files: Vec<_> = (0..50)
        .map(|i| walk(&root, &format!("many/f{i}")).expect("lookup"))
        .collect();
    assert!(shared.path_fds().held <= 4);
    for _ in 0..2 {
        for (i, f) in files.iter().enumerate() {
            let ino = std::fs::symlink_metadata(t.path(&format!("many/f{i}")))
                .expect("metadata")
                .ino();
            assert_eq!(f.stat().expect("stat").ino, ino);
            assert_eq!(read_all(f), format!("file {i}").as_bytes());
            assert!(shared.path_fds().held <= 4);
        }
    }
    // Other tests run in parallel and open descriptors too, but not 50 of them.
    assert!(open_fds() < before + 40, "a descriptor per file is kept");
    // Looked up again (same host object): the same inode.
    assert!(Arc::ptr_eq(
        &files[0],
        &walk(&root, "many/f0").expect("lookup")
    ));

    // Replaced on the host while its descriptor was given back: not the new file. (Files
    // 0 and 1 hold the two cached read descriptors, which keep reading what they opened.)
    let many = walk(&root, "many").expect("lookup");
    for i in 10..20 {
        many.lookup(format!("f{i}").as_bytes()).expect("lookup");
    }
    for f in &files[5..9] {
        assert!(host_inode(f).fd_slot().is_none());
        assert!(host_inode(f).read_fd.get().is_none());
    }
    std::fs::rename(t.path("many/f6"), t.path("many/f5")).expect("rename");
    assert_eq!(err(files[5].stat()), libc::ESTALE);
    assert_eq!(err(files[5].read_at(0, &mut [0u8; 4])), libc::ESTALE);
    // A symlink in its place is not followed either.
    std::fs::remove_file(t.path("many/f7")).expect("unlink");
    std::os::unix::fs::symlink("/etc/passwd", t.path("many/f7")).expect("symlink");
    assert_eq!(err(files[7].stat()), libc::ESTALE);
    assert_eq!(err(files[7].read_at(0, &mut [0u8; 4])), libc::ESTALE);
    // Gone: ENOENT.
    std::fs::remove_file(t.path("many/f8")).expect("unlink");
    assert_eq!(err(files[8].stat()), libc::ENOENT);
    assert_eq!(err(files[8].read_at(0, &mut [0u8; 4])), libc::ENOENT);
    // Found again under its new name: reachable again, by that name.
    let moved = many.lookup(b"f5").expect("lookup");
    assert_eq!(read_all(&moved), b"file 6");
    drop(files);
    drop(many);
    drop(moved);
    assert_eq!(shared.path_fds().held, 0);
}

#[test]
fn concurrent_use() {
    let t = tree();
    let fs = fs(&t);
    let expected_names = fs.root().readdir().expect("readdir").len();
    let nested_ino = std::fs::metadata(t.path("dir/nested.txt"))
        .expect("metadata")
        .ino();
    let threads: Vec<_> = (0..8)
        .map(|n| {
            let root = fs.root();
            std::thread::spawn(move || {
                for i in 0..200 {
                    let f = walk(&root, "dir/nested.txt").expect("walk");
                    assert_eq!(f.stat().expect("stat").ino, nested_ino);
                    let mut buf = [0u8; 6];
                    assert_eq!(f.read_at(0, &mut buf), Ok(6));
                    assert_eq!(&buf, b"nested");
                    if (i + n) % 10 == 0 {
                        assert_eq!(root.readdir().expect("readdir").len(), expected_names);
                    }
                    let big = root.lookup(b"big").expect("lookup");
                    let mut b = [0u8; 4];
                    assert_eq!(big.read_at(1000, &mut b), Ok(4));
                    assert_eq!(b[0], (1000u32 * 7 % 251) as u8);
                    assert_eq!(err(root.lookup(b"..")), libc::EINVAL);
                }
            })
        })
        .collect();
    for th in threads {
        th.join().expect("thread");
    }
}

#[test]
fn new_rejects_bad_roots() {
    let t = tree();
    assert_eq!(err(HostFs::new(&t.path("missing"))), libc::ENOENT);
    assert_eq!(err(HostFs::new(&t.path("file.txt"))), libc::ENOTDIR);
    assert_eq!(err(HostFs::new(Path::new("/tmp/a\0b"))), libc::EINVAL);
    assert_eq!(err(HostFs::new(Path::new("/proc"))), libc::EACCES);
    assert_eq!(err(HostFs::new(Path::new("/proc/self"))), libc::EACCES);
    // The root itself may be a symlink: the host chose it.
    let fs = HostFs::new(&t.path("dir/up_link")).expect("root through a symlink");
    assert!(fs.root().lookup(b"secret").is_ok());
    // Mode bits do not matter to an O_PATH root.
    std::fs::set_permissions(t.path("empty"), std::fs::Permissions::from_mode(0o000))
        .expect("chmod");
    HostFs::new(&t.path("empty")).expect("mode 000 root");
}

#[test]
fn pseudo_filesystems_are_denied() {
    let fs = HostFs::new(Path::new("/")).expect("HostFs /");
    let root = fs.root();
    let proc_ = root.lookup(b"proc").expect("lookup /proc");
    assert!(host_inode(&proc_).is_denied());
    assert_eq!(proc_.file_type(), FileType::Directory);
    proc_.stat().expect("stat");
    assert_eq!(err(proc_.lookup(b"self")), libc::EACCES);
    assert_eq!(err(proc_.lookup(b"1")), libc::EACCES);
    assert_eq!(err(proc_.readdir()), libc::EACCES);
    assert_eq!(err(proc_.open(libc::O_RDONLY)), libc::EACCES);
    assert_eq!(proc_.listxattr(), Ok(vec![]));
    if let Ok(sys) = root.lookup(b"sys") {
        let sysfs = sys.statfs().expect("statfs").fs_type == 0x6265_6572;
        assert_eq!(host_inode(&sys).is_denied(), sysfs);
    }
    let etc = root.lookup(b"etc").expect("lookup /etc");
    assert!(!host_inode(&etc).is_denied());
    assert!(!etc.readdir().expect("readdir").is_empty());

    let options = HostFsOptions {
        same_mount_only: true,
        ..Default::default()
    };
    let fs = HostFs::with_options(Path::new("/"), options).expect("HostFs /");
    assert_eq!(err(fs.root().lookup(b"proc")), libc::EXDEV);
}

fn writable(t: &Tree, path_fds: Option<usize>) -> Arc<HostFs> {
    HostFs::with_options(
        &t.root(),
        HostFsOptions {
            writable: true,
            max_cached_path_fds: path_fds,
            ..Default::default()
        },
    )
    .expect("writable HostFs")
}

const OWNER: Owner = Owner { uid: 0, gid: 0 };

#[test]
fn writable_changes_reach_the_host() {
    let t = tree();
    let root = writable(&t, None).root();
    assert!(!root.read_only());
    // A new file, written, grown, truncated, with the exact mode asked for.
    let f = root.create(b"new", NewNode::Regular, 0o640, OWNER).unwrap();
    assert_eq!(f.write_at(0, b"hello").unwrap(), 5);
    assert_eq!(f.write_at(10, b"!").unwrap(), 1);
    assert_eq!(std::fs::read(t.path("new")).unwrap(), b"hello\0\0\0\0\0!");
    assert_eq!(read_all(&f), b"hello\0\0\0\0\0!");
    f.setattr(&SetAttr {
        size: Some(3),
        mode: Some(0o600),
        mtime: Some((1_000_000, 5)),
        ..Default::default()
    })
    .unwrap();
    let md = std::fs::metadata(t.path("new")).unwrap();
    assert_eq!(
        (md.len(), md.mode() & 0o7777, md.mtime()),
        (3, 0o600, 1_000_000)
    );
    assert_eq!(
        err(root.create(b"new", NewNode::Regular, 0o600, OWNER)),
        libc::EEXIST
    );
    // Directories, symlinks (stored, never followed), hard links.
    let d = root.create(b"d", NewNode::Directory, 0o705, OWNER).unwrap();
    assert_eq!(
        std::fs::metadata(t.path("d")).unwrap().mode() & 0o777,
        0o705
    );
    d.create(b"inner", NewNode::Regular, 0o644, OWNER).unwrap();
    root.create(
        b"sl",
        NewNode::Symlink(b"../outside/secret".to_vec()),
        0o777,
        OWNER,
    )
    .unwrap();
    assert_eq!(
        std::fs::read_link(t.path("sl")).unwrap(),
        Path::new("../outside/secret")
    );
    d.link(b"hard_new", &f).unwrap();
    assert_eq!(std::fs::metadata(t.path("new")).unwrap().nlink(), 2);
    assert_eq!(
        err(root.create(b"dev", NewNode::CharDevice(0x103), 0o666, OWNER)),
        libc::EPERM
    );
    // Rename, then the moved inode is found again by its new name (descriptors given back).
    root.rename(b"new", &d, b"moved", 0).unwrap();
    assert!(t.path("d/moved").exists() && !t.path("new").exists());
    f.write_at(3, b"X").unwrap();
    assert_eq!(std::fs::read(t.path("d/moved")).unwrap(), b"helX");
    // Removal.
    assert_eq!(err(root.unlink(b"d", false)), libc::EISDIR);
    assert_eq!(err(root.unlink(b"d", true)), libc::ENOTEMPTY);
    d.unlink(b"inner", false).unwrap();
    d.unlink(b"hard_new", false).unwrap();
    d.unlink(b"moved", false).unwrap();
    root.unlink(b"d", true).unwrap();
    root.unlink(b"sl", false).unwrap();
    assert!(!t.path("d").exists() && !t.path("sl").exists());
    // Across filesystems: EXDEV.
    let other = fs(&t).root();
    assert_eq!(err(root.rename(b"file.txt", &other, b"x", 0)), libc::EXDEV);
}

#[test]
fn writable_never_follows_a_host_symlink_out() {
    let t = tree();
    // The first snapshot reads the files (their atime moves once): take the second.
    let _ = snapshot(&t.base.join("outside"));
    let before = snapshot(&t.base.join("outside"));
    let root = writable(&t, Some(1)).root();
    // A symlink to a directory outside is an inode of its own: nothing is made through it.
    let up = walk(&root, "dir/up_link").unwrap();
    assert_eq!(up.file_type(), FileType::Symlink);
    assert_eq!(
        err(up.create(b"x", NewNode::Regular, 0o644, OWNER)),
        libc::ENOTDIR
    );
    assert_eq!(err(up.write_at(0, b"x")), libc::EINVAL);
    let esc = walk(&root, "escape_link").unwrap();
    assert_eq!(err(esc.write_at(0, b"x")), libc::EINVAL);
    assert_eq!(
        err(esc.setattr(&SetAttr {
            mode: Some(0o777),
            ..Default::default()
        })),
        libc::EOPNOTSUPP
    );
    // Removing or renaming the symlink changes the link, not its target.
    let dir = walk(&root, "dir").unwrap();
    dir.rename(b"up_link", &root, b"renamed_link", 0).unwrap();
    root.unlink(b"renamed_link", false).unwrap();
    root.unlink(b"escape_link", false).unwrap();
    // A name the host replaced by a symlink after the lookup is not written through.
    let f = walk(&root, "file.txt").unwrap();
    std::fs::remove_file(t.path("file.txt")).unwrap();
    std::os::unix::fs::symlink("../outside/secret", t.path("file.txt")).unwrap();
    // The descriptor cap is 1: the file's descriptor was given back and is reopened by name.
    let _ = walk(&root, "dir/nested.txt").unwrap();
    let r = f.write_at(0, b"OVERWRITE");
    assert!(r.is_err(), "wrote through a swapped symlink: {r:?}");
    assert_eq!(before, snapshot(&t.base.join("outside")));
    assert_eq!(
        std::fs::read(t.base.join("outside/secret")).unwrap(),
        b"SECRET"
    );
}

#[test]
fn read_only_by_default() {
    let t = tree();
    let root = fs(&t).root();
    assert_eq!(
        err(root.create(b"n", NewNode::Regular, 0o644, OWNER)),
        libc::EROFS
    );
    let f = walk(&root, "file.txt").unwrap();
    assert_eq!(err(f.write_at(0, b"x")), libc::EROFS);
    assert_eq!(err(f.open(libc::O_WRONLY)), libc::EROFS);
    assert!(root.read_only());
}

/// `live_roots` lists each live hostfs's root descriptor (the same host directory), how it
/// may be used, and forgets a filesystem once it is gone: what the sentry's Landlock
/// ruleset is made from.
#[test]
fn live_roots_lists_the_trees_while_they_live() {
    let t = tree();
    let file = t.path("file.txt");
    let ro = fs(&t);
    let rw = HostFs::with_options(
        &t.path("dir"),
        HostFsOptions {
            writable: true,
            ..Default::default()
        },
    )
    .expect("writable hostfs");
    let one = HostFs::file_with_options(&file, HostFsOptions::default()).expect("file hostfs");
    let find = |p: &Path| live_roots().into_iter().find(|r| r.path == p);
    let (r, w, f) = (
        find(&t.root()).expect("root listed"),
        find(&t.path("dir")).expect("dir listed"),
        find(&file).expect("file listed"),
    );
    assert!(r.directory && !r.writable);
    assert!(w.directory && w.writable);
    assert!(!f.directory && !f.writable);
    let same = |fd: &OwnedFd, p: &Path| {
        let st = sys::fstat(fd.as_fd()).expect("fstat");
        let m = std::fs::metadata(p).expect("stat");
        (st.st_dev, st.st_ino) == (m.dev(), m.ino())
    };
    assert!(same(&r.fd, &t.root()) && same(&w.fd, &t.path("dir")) && same(&f.fd, &file));
    drop((r, w, f));
    drop(rw);
    assert!(
        find(&t.path("dir")).is_none(),
        "a dropped hostfs is forgotten"
    );
    assert!(find(&t.root()).is_some());
    drop((ro, one));
}
