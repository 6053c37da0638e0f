//! Unit tests of tmpfs: every rule of the module, with Linux's errnos.

use std::time::{Duration, Instant};

use super::*;

const ME: Owner = Owner {
    uid: 1000,
    gid: 1000,
};

fn new_fs() -> (Arc<Tmpfs>, Arc<dyn Inode>) {
    let fs = Tmpfs::new(42);
    let root = fs.root();
    (fs, root)
}

/// An instance with a small byte budget and inode budget.
fn small_fs(bytes: u64, inodes: u64) -> (Arc<Tmpfs>, Arc<dyn Inode>) {
    let fs = Tmpfs::with_options(
        7,
        TmpfsOptions {
            size_bytes: bytes,
            max_inodes: inodes,
            ..TmpfsOptions::default()
        },
    );
    let root = fs.root();
    (fs, root)
}

fn mk(dir: &Arc<dyn Inode>, name: &str, node: NewNode) -> Arc<dyn Inode> {
    dir.create(name.as_bytes(), node, 0o644, ME).unwrap()
}

fn file(dir: &Arc<dyn Inode>, name: &str) -> Arc<dyn Inode> {
    mk(dir, name, NewNode::Regular)
}

fn mkdir(dir: &Arc<dyn Inode>, name: &str) -> Arc<dyn Inode> {
    dir.create(name.as_bytes(), NewNode::Directory, 0o755, ME)
        .unwrap()
}

fn errno<T>(r: Result<T, Errno>) -> Errno {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e,
    }
}

fn st(i: &Arc<dyn Inode>) -> Stat {
    i.stat().unwrap()
}

fn names(dir: &Arc<dyn Inode>) -> Vec<String> {
    dir.readdir()
        .unwrap()
        .into_iter()
        .map(|e| String::from_utf8(e.name).unwrap())
        .collect()
}

fn read_all(f: &Arc<dyn Inode>, off: u64, len: usize) -> Vec<u8> {
    let mut buf = vec![0xAA; len];
    let n = f.read_at(off, &mut buf).unwrap();
    buf.truncate(n);
    buf
}

fn tmp(i: &Arc<dyn Inode>) -> &TmpfsInode {
    i.as_any().downcast_ref::<TmpfsInode>().unwrap()
}

/// Lets CLOCK_REALTIME move so "updated" timestamps compare strictly greater.
fn tick() {
    std::thread::sleep(Duration::from_millis(2));
}

fn used(fs: &Tmpfs) -> u64 {
    fs.shared.space.used.load(Ordering::Acquire)
}

const RENAME_NOREPLACE: u32 = libc::RENAME_NOREPLACE;
const RENAME_EXCHANGE: u32 = libc::RENAME_EXCHANGE;

// --- the instance and its root --------------------------------------------------------

#[test]
fn root_defaults() {
    let (fs, root) = new_fs();
    let s = st(&root);
    assert_eq!(s.ino, ROOT_INO);
    assert_eq!(s.dev, 42);
    assert_eq!(fs.dev(), 42);
    assert_eq!(s.mode, libc::S_IFDIR | 0o1777);
    assert_eq!((s.uid, s.gid), (0, 0));
    assert_eq!(s.nlink, 2);
    assert_eq!(s.size, 40);
    assert_eq!(s.blksize, 4096);
    assert_eq!(root.file_type(), FileType::Directory);
    assert!(!root.read_only());
    assert!(tmp(&root).parent().is_none());
}

#[test]
fn root_options() {
    let fs = Tmpfs::with_options(
        3,
        TmpfsOptions {
            root_mode: 0o40755,
            root_owner: ME,
            ..TmpfsOptions::default()
        },
    );
    let s = st(&fs.root());
    assert_eq!(s.mode, libc::S_IFDIR | 0o755);
    assert_eq!((s.uid, s.gid), (1000, 1000));
}

#[test]
fn inode_numbers_unique_and_increasing() {
    let (_fs, root) = new_fs();
    let mut last = ROOT_INO;
    for i in 0..50 {
        let f = file(&root, &format!("f{i}"));
        let ino = st(&f).ino;
        assert!(ino > last);
        last = ino;
    }
    // Not reused after removal.
    root.unlink(b"f0", false).unwrap();
    assert!(st(&file(&root, "again")).ino > last);
}

// --- creating nodes ---------------------------------------------------------------------

#[test]
fn create_every_type() {
    let (_fs, root) = new_fs();
    let f = root
        .create(b"f", NewNode::Regular, 0o100644 | 0o4000, ME)
        .unwrap();
    let s = st(&f);
    // Only permission bits are taken from `mode`.
    assert_eq!(s.mode, libc::S_IFREG | 0o4644);
    assert_eq!(
        (s.uid, s.gid, s.nlink, s.size, s.blocks),
        (1000, 1000, 1, 0, 0)
    );
    assert_eq!(f.file_type(), FileType::Regular);

    let d = mkdir(&root, "d");
    assert_eq!(st(&d).mode, libc::S_IFDIR | 0o755);
    assert_eq!(st(&d).nlink, 2);
    assert_eq!(tmp(&d).parent().unwrap().ino(), ROOT_INO);

    let l = root
        .create(b"l", NewNode::Symlink(b"target/x".to_vec()), 0o600, ME)
        .unwrap();
    let s = st(&l);
    assert_eq!(s.mode, libc::S_IFLNK | 0o777, "symlinks are always 0777");
    assert_eq!(s.size, 8);
    assert_eq!(s.blocks, 0);
    assert_eq!(l.readlink().unwrap(), b"target/x");

    let p = mk(&root, "p", NewNode::Fifo);
    let so = mk(&root, "s", NewNode::Socket);
    let c = mk(&root, "c", NewNode::CharDevice(0x0103));
    let b = mk(&root, "b", NewNode::BlockDevice(0x0801));
    assert_eq!(st(&p).mode & libc::S_IFMT, libc::S_IFIFO);
    assert_eq!(st(&so).mode & libc::S_IFMT, libc::S_IFSOCK);
    assert_eq!(st(&c).mode & libc::S_IFMT, libc::S_IFCHR);
    assert_eq!(st(&b).mode & libc::S_IFMT, libc::S_IFBLK);
    assert_eq!(st(&c).rdev, 0x0103);
    assert_eq!(st(&b).rdev, 0x0801);
    assert_eq!(st(&p).rdev, 0);
    // The VFS serves every one of these itself.
    for i in [&f, &d, &l, &p, &so, &c, &b] {
        assert!(i.open(libc::O_RDONLY).unwrap().is_none());
    }
    // Lookup gives back the same inode.
    assert_eq!(st(&root.lookup(b"c").unwrap()).ino, st(&c).ino);
    assert_eq!(st(&root).nlink, 3);
}

#[test]
fn readlink_on_non_symlink_einval_and_long_targets() {
    let (_fs, root) = new_fs();
    let f = file(&root, "f");
    assert_eq!(errno(f.readlink()), libc::EINVAL);
    assert_eq!(errno(root.readlink()), libc::EINVAL);
    // Targets up to 127 bytes live in the inode; longer ones take a page.
    let short = mk(&root, "s", NewNode::Symlink(vec![b'a'; 127]));
    assert_eq!(st(&short).blocks, 0);
    let long = mk(&root, "l", NewNode::Symlink(vec![b'a'; 128]));
    assert_eq!((st(&long).size, st(&long).blocks), (128, 8));
    // The target with its NUL must fit a page.
    let max = mk(&root, "m", NewNode::Symlink(vec![b'a'; 4095]));
    assert_eq!(max.readlink().unwrap().len(), 4095);
    let too_long = root.create(b"t", NewNode::Symlink(vec![b'a'; 4096]), 0, ME);
    assert_eq!(errno(too_long), libc::ENAMETOOLONG);
    let empty = root.create(b"e", NewNode::Symlink(Vec::new()), 0, ME);
    assert_eq!(errno(empty), libc::ENOENT);
}

#[test]
fn create_errors_and_names() {
    let (_fs, root) = new_fs();
    let f = file(&root, "f");
    assert_eq!(
        errno(root.create(b"f", NewNode::Regular, 0o644, ME)),
        libc::EEXIST
    );
    assert_eq!(
        errno(root.create(b"f", NewNode::Directory, 0o755, ME)),
        libc::EEXIST
    );
    assert_eq!(
        errno(f.create(b"x", NewNode::Regular, 0o644, ME)),
        libc::ENOTDIR
    );
    assert_eq!(errno(f.lookup(b"x")), libc::ENOTDIR);
    assert_eq!(errno(f.readdir()), libc::ENOTDIR);
    assert_eq!(errno(f.unlink(b"x", false)), libc::ENOTDIR);
    assert_eq!(errno(f.link(b"x", &f)), libc::ENOTDIR);
    assert_eq!(errno(f.rename(b"x", &root, b"y", 0)), libc::ENOTDIR);

    let create = |name: &[u8]| root.create(name, NewNode::Regular, 0o644, ME);
    assert_eq!(errno(create(b"")), libc::ENOENT);
    assert_eq!(errno(create(b".")), libc::EEXIST);
    assert_eq!(errno(create(b"..")), libc::EEXIST);
    assert_eq!(errno(create(&[b'n'; 256])), libc::ENAMETOOLONG);
    assert_eq!(errno(create(b"a/b")), libc::EINVAL);
    assert_eq!(errno(create(b"a\0b")), libc::EINVAL);
    create(&[b'n'; 255]).unwrap();
    // Any other byte is fine.
    create(b"\xff\x01 ...").unwrap();

    assert_eq!(errno(root.lookup(b"missing")), libc::ENOENT);
    assert_eq!(errno(root.lookup(b"")), libc::ENOENT);
    assert_eq!(errno(root.lookup(b".")), libc::EINVAL);
    assert_eq!(errno(root.lookup(b"..")), libc::EINVAL);
    assert_eq!(errno(root.lookup(&[b'n'; 256])), libc::ENAMETOOLONG);
    assert_eq!(errno(root.lookup(b"a/b")), libc::EINVAL);
}

#[test]
fn setgid_directory_inheritance() {
    let (_fs, root) = new_fs();
    let d = mkdir(&root, "d");
    d.setattr(&SetAttr {
        mode: Some(0o2775),
        gid: Some(500),
        ..SetAttr::default()
    })
    .unwrap();
    let f = file(&d, "f");
    assert_eq!((st(&f).uid, st(&f).gid), (1000, 500));
    assert_eq!(
        st(&f).mode & libc::S_ISGID,
        0,
        "files do not inherit the bit"
    );
    let sub = mkdir(&d, "sub");
    assert_eq!(st(&sub).gid, 500);
    assert_ne!(st(&sub).mode & libc::S_ISGID, 0, "directories do");
    let t = tmp(&d).create_tmpfile(0o600, ME).unwrap();
    assert_eq!(st(&t).gid, 500);
}

// --- directories ------------------------------------------------------------------------

#[test]
fn directory_nlink_and_size() {
    let (_fs, root) = new_fs();
    let a = mkdir(&root, "a");
    mkdir(&root, "b");
    file(&root, "f");
    assert_eq!(st(&root).nlink, 4);
    assert_eq!(st(&root).size, 40 + 3 * 20);
    mkdir(&a, "x");
    assert_eq!(st(&a).nlink, 3);
    assert_eq!(st(&root).nlink, 4);
    a.unlink(b"x", true).unwrap();
    assert_eq!(st(&a).nlink, 2);
    root.unlink(b"f", false).unwrap();
    root.unlink(b"b", true).unwrap();
    assert_eq!(st(&root).nlink, 3);
    assert_eq!(st(&root).size, 60);
    assert_eq!(st(&root).blocks, 0);
}

#[test]
fn readdir_order_is_stable() {
    let (_fs, root) = new_fs();
    for n in ["zeta", "alpha", "mid", "beta"] {
        file(&root, n);
    }
    let d = mkdir(&root, "dir");
    assert_eq!(names(&root), ["zeta", "alpha", "mid", "beta", "dir"]);
    assert_eq!(names(&root), names(&root));
    let entries = root.readdir().unwrap();
    assert_eq!(entries[4].file_type, FileType::Directory);
    assert_eq!(entries[4].ino, st(&d).ino);
    assert_eq!(entries[0].file_type, FileType::Regular);
    root.unlink(b"alpha", false).unwrap();
    assert_eq!(names(&root), ["zeta", "mid", "beta", "dir"]);
    // A rename onto an existing name keeps that name's place; a new name goes last.
    root.rename(b"dir", &root, b"new", 0).unwrap();
    assert_eq!(names(&root), ["zeta", "mid", "beta", "new"]);
    root.rename(b"beta", &root, b"zeta", 0).unwrap();
    assert_eq!(names(&root), ["zeta", "mid", "new"]);
    assert_eq!(names(&d), Vec::<String>::new());
}

// --- unlink -----------------------------------------------------------------------------

#[test]
fn unlink_rules() {
    let (_fs, root) = new_fs();
    let d = mkdir(&root, "d");
    file(&root, "f");
    file(&d, "inner");
    assert_eq!(errno(root.unlink(b"d", false)), libc::EISDIR);
    assert_eq!(errno(root.unlink(b"f", true)), libc::ENOTDIR);
    assert_eq!(errno(root.unlink(b"d", true)), libc::ENOTEMPTY);
    assert_eq!(errno(root.unlink(b"missing", false)), libc::ENOENT);
    assert_eq!(errno(root.unlink(b"missing", true)), libc::ENOENT);
    assert_eq!(errno(root.unlink(b".", true)), libc::EINVAL);
    assert_eq!(errno(root.unlink(b"..", true)), libc::ENOTEMPTY);
    assert_eq!(errno(root.unlink(b".", false)), libc::EISDIR);
    assert_eq!(errno(root.unlink(b"..", false)), libc::EISDIR);
    assert_eq!(errno(root.unlink(b"", false)), libc::ENOENT);
    assert_eq!(errno(root.unlink(&[b'n'; 256], false)), libc::ENAMETOOLONG);
    assert_eq!(errno(root.unlink(b"a/b", false)), libc::EINVAL);

    d.unlink(b"inner", false).unwrap();
    root.unlink(b"d", true).unwrap();
    assert_eq!(errno(root.lookup(b"d")), libc::ENOENT);
    // A removed directory is dead: nlink 0, nothing can be created in it.
    assert_eq!(st(&d).nlink, 0);
    assert_eq!(
        errno(d.create(b"x", NewNode::Regular, 0o644, ME)),
        libc::ENOENT
    );
    assert_eq!(
        errno(d.create(b"x", NewNode::Directory, 0o755, ME)),
        libc::ENOENT
    );
    let f = root.lookup(b"f").unwrap();
    assert_eq!(errno(d.link(b"x", &f)), libc::ENOENT);
    assert_eq!(errno(tmp(&d).create_tmpfile(0o600, ME)), libc::ENOENT);
    assert!(d.readdir().unwrap().is_empty());
}

#[test]
fn unlinked_open_file_keeps_data() {
    let (fs, root) = new_fs();
    let f = file(&root, "f");
    f.write_at(0, b"still here").unwrap();
    root.unlink(b"f", false).unwrap();
    assert_eq!(st(&f).nlink, 0);
    assert_eq!(read_all(&f, 0, 100), b"still here");
    f.write_at(10, b"!").unwrap();
    assert_eq!(read_all(&f, 0, 100), b"still here!");
    assert_eq!(used(&fs), PAGE);
    // An unlinked file cannot be linked back.
    assert_eq!(errno(root.link(b"g", &f)), libc::ENOENT);
    drop(f);
    assert_eq!(used(&fs), 0, "space comes back with the last reference");
}

// --- hard links -------------------------------------------------------------------------

#[test]
fn hard_links() {
    let (fs, root) = new_fs();
    let d = mkdir(&root, "d");
    let f = file(&root, "f");
    f.write_at(0, b"shared").unwrap();
    tick();
    let before = st(&f).ctime;
    let dir_before = st(&d).mtime;
    tick();
    d.link(b"g", &f).unwrap();
    assert!(st(&f).ctime > before, "link changes the target's ctime");
    assert!(st(&d).mtime > dir_before && st(&d).ctime > dir_before);
    let g = d.lookup(b"g").unwrap();
    assert_eq!(st(&g).ino, st(&f).ino);
    assert_eq!(st(&f).nlink, 2);
    g.write_at(0, b"SH").unwrap();
    assert_eq!(read_all(&f, 0, 6), b"SHared");
    root.link(b"h", &f).unwrap();
    assert_eq!(st(&f).nlink, 3);
    assert_eq!(st(&d).nlink, 2, "a file link is not a subdirectory");

    tick();
    let before = st(&f).ctime;
    tick();
    root.unlink(b"f", false).unwrap();
    assert!(st(&g).ctime > before, "unlink changes the target's ctime");
    assert_eq!(st(&g).nlink, 2);
    d.unlink(b"g", false).unwrap();
    assert_eq!(st(&g).nlink, 1);
    assert_eq!(read_all(&root.lookup(b"h").unwrap(), 0, 6), b"SHared");

    // Errors, in Linux's order.
    assert_eq!(errno(root.link(b"h", &g)), libc::EEXIST);
    assert_eq!(errno(root.link(b".", &g)), libc::EEXIST);
    assert_eq!(errno(root.link(b"dlink", &d)), libc::EPERM);
    let (_other, other_root) = new_fs();
    let foreign = file(&other_root, "x");
    assert_eq!(errno(root.link(b"x", &foreign)), libc::EXDEV);
    assert_eq!(errno(root.link(b"x", &other_root)), libc::EXDEV);
    drop(fs);
}

#[test]
fn tmpfile_is_linkable_once() {
    let (_fs, root) = new_fs();
    let t = tmp(&root).create_tmpfile(0o600, ME).unwrap();
    let s = st(&t);
    assert_eq!((s.nlink, s.mode), (0, libc::S_IFREG | 0o600));
    assert!(root.readdir().unwrap().is_empty());
    t.write_at(0, b"tmp").unwrap();
    root.link(b"named", &t).unwrap();
    assert_eq!(st(&t).nlink, 1);
    assert_eq!(read_all(&root.lookup(b"named").unwrap(), 0, 3), b"tmp");
    root.unlink(b"named", false).unwrap();
    // Once named and unlinked again it is an ordinary deleted file.
    assert_eq!(errno(root.link(b"again", &t)), libc::ENOENT);
    let f = file(&root, "f");
    assert_eq!(errno(tmp(&f).create_tmpfile(0o600, ME)), libc::ENOTDIR);
}

// --- rename -----------------------------------------------------------------------------

#[test]
fn rename_simple_and_overwrite() {
    let (_fs, root) = new_fs();
    let a = file(&root, "a");
    a.write_at(0, b"A").unwrap();
    let b = file(&root, "b");
    tick();
    let t0 = st(&root).mtime;
    tick();
    root.rename(b"a", &root, b"c", 0).unwrap();
    assert_eq!(errno(root.lookup(b"a")), libc::ENOENT);
    assert_eq!(st(&root.lookup(b"c").unwrap()).ino, st(&a).ino);
    assert!(st(&root).mtime > t0 && st(&root).ctime > t0);
    assert!(st(&a).ctime > t0, "the moved inode's ctime changes");
    // Overwrite: the victim loses its link.
    root.rename(b"c", &root, b"b", 0).unwrap();
    assert_eq!(st(&b).nlink, 0);
    assert_eq!(read_all(&root.lookup(b"b").unwrap(), 0, 1), b"A");
    assert_eq!(names(&root), ["b"]);
    assert_eq!(errno(root.rename(b"missing", &root, b"x", 0)), libc::ENOENT);
}

#[test]
fn rename_flags() {
    let (_fs, root) = new_fs();
    file(&root, "a");
    file(&root, "b");
    assert_eq!(
        errno(root.rename(b"a", &root, b"b", RENAME_NOREPLACE)),
        libc::EEXIST
    );
    root.rename(b"a", &root, b"c", RENAME_NOREPLACE).unwrap();
    assert_eq!(
        errno(root.rename(b"c", &root, b"x", RENAME_EXCHANGE)),
        libc::ENOENT
    );
    assert_eq!(
        errno(root.rename(b"x", &root, b"c", RENAME_EXCHANGE)),
        libc::ENOENT
    );
    let both = RENAME_EXCHANGE | RENAME_NOREPLACE;
    assert_eq!(errno(root.rename(b"c", &root, b"b", both)), libc::EINVAL);
    let ex_wo = RENAME_EXCHANGE | libc::RENAME_WHITEOUT;
    assert_eq!(errno(root.rename(b"c", &root, b"b", ex_wo)), libc::EINVAL);
    assert_eq!(errno(root.rename(b"c", &root, b"b", 0x80)), libc::EINVAL);
    assert_eq!(errno(root.rename(b".", &root, b"b", 0)), libc::EBUSY);
    assert_eq!(errno(root.rename(b"c", &root, b"..", 0)), libc::EBUSY);
    assert_eq!(errno(root.rename(b"", &root, b"b", 0)), libc::ENOENT);
    assert_eq!(
        errno(root.rename(b"c", &root, &[b'n'; 256], 0)),
        libc::ENAMETOOLONG
    );
    let f = root.lookup(b"b").unwrap();
    assert_eq!(errno(root.rename(b"c", &f, b"x", 0)), libc::ENOTDIR);
}

#[test]
fn rename_exchange() {
    let (_fs, root) = new_fs();
    let d1 = mkdir(&root, "d1");
    let d2 = mkdir(&root, "d2");
    let f = file(&d1, "f");
    let sub = mkdir(&d2, "sub");
    file(&sub, "inside");
    file(&d1, "other");
    assert_eq!((st(&d1).nlink, st(&d2).nlink), (2, 3));
    tick();
    let t0 = st(&f).ctime;
    tick();
    // A file and a non-empty directory swap places across directories.
    d1.rename(b"f", &d2, b"sub", RENAME_EXCHANGE).unwrap();
    assert_eq!(st(&d1.lookup(b"f").unwrap()).ino, st(&sub).ino);
    assert_eq!(st(&d2.lookup(b"sub").unwrap()).ino, st(&f).ino);
    assert_eq!((st(&d1).nlink, st(&d2).nlink), (3, 2));
    assert_eq!(tmp(&sub).parent().unwrap().ino(), st(&d1).ino);
    assert!(st(&f).ctime > t0 && st(&sub).ctime > t0);
    assert!(st(&d1).mtime > t0 && st(&d2).mtime > t0);
    assert_eq!(st(&f).nlink, 1);
    // Order of the entries is kept.
    assert_eq!(names(&d1), ["f", "other"]);
    // In one directory.
    d1.rename(b"f", &d1, b"other", RENAME_EXCHANGE).unwrap();
    assert_eq!(st(&d1.lookup(b"other").unwrap()).ino, st(&sub).ino);
    assert_eq!(st(&d1).nlink, 3);
}

#[test]
fn rename_type_rules() {
    let (_fs, root) = new_fs();
    let d = mkdir(&root, "d");
    let full = mkdir(&root, "full");
    file(&full, "x");
    let empty = mkdir(&root, "empty");
    file(&root, "f");
    assert_eq!(errno(root.rename(b"d", &root, b"full", 0)), libc::ENOTEMPTY);
    assert_eq!(errno(root.rename(b"d", &root, b"f", 0)), libc::ENOTDIR);
    assert_eq!(errno(root.rename(b"f", &root, b"d", 0)), libc::EISDIR);
    // Failures change nothing.
    assert_eq!(names(&root), ["d", "full", "empty", "f"]);
    assert_eq!(st(&root).nlink, 5);
    // A directory over an empty directory replaces it.
    root.rename(b"d", &root, b"empty", 0).unwrap();
    assert_eq!(st(&empty).nlink, 0);
    assert_eq!(st(&root.lookup(b"empty").unwrap()).ino, st(&d).ino);
    assert_eq!(st(&root).nlink, 4);
    assert_eq!(
        errno(empty.create(b"x", NewNode::Regular, 0o644, ME)),
        libc::ENOENT
    );
}

#[test]
fn rename_same_inode_is_a_no_op() {
    let (_fs, root) = new_fs();
    let f = file(&root, "a");
    root.link(b"b", &f).unwrap();
    root.rename(b"a", &root, b"b", 0).unwrap();
    assert_eq!(names(&root), ["a", "b"]);
    assert_eq!(st(&f).nlink, 2);
    root.rename(b"a", &root, b"b", RENAME_EXCHANGE).unwrap();
    assert_eq!(names(&root), ["a", "b"]);
    assert_eq!(
        errno(root.rename(b"a", &root, b"b", RENAME_NOREPLACE)),
        libc::EEXIST
    );
    // A name onto itself.
    mkdir(&root, "d");
    root.rename(b"d", &root, b"d", 0).unwrap();
    assert_eq!(st(&root).nlink, 3);
}

#[test]
fn rename_moves_directories() {
    let (_fs, root) = new_fs();
    let a = mkdir(&root, "a");
    let b = mkdir(&root, "b");
    let m = mkdir(&a, "m");
    let deep = mkdir(&m, "deep");
    assert_eq!((st(&a).nlink, st(&b).nlink), (3, 2));
    a.rename(b"m", &b, b"m2", 0).unwrap();
    assert_eq!((st(&a).nlink, st(&b).nlink), (2, 3));
    assert_eq!(tmp(&m).parent().unwrap().ino(), st(&b).ino);
    assert_eq!(st(&m).nlink, 3);
    assert_eq!(st(&b.lookup(b"m2").unwrap()).ino, st(&m).ino);
    // Into itself or a descendant: EINVAL.
    assert_eq!(errno(b.rename(b"m2", &m, b"x", 0)), libc::EINVAL);
    assert_eq!(errno(b.rename(b"m2", &deep, b"x", 0)), libc::EINVAL);
    assert_eq!(
        errno(root.rename(b"b", &deep, b"x", RENAME_EXCHANGE)),
        libc::ENOENT
    );
    file(&deep, "x");
    assert_eq!(
        errno(root.rename(b"b", &deep, b"x", RENAME_EXCHANGE)),
        libc::EINVAL
    );
    // Onto an ancestor of the source: ENOTEMPTY (EINVAL for an exchange).
    file(&deep, "f");
    assert_eq!(errno(deep.rename(b"f", &b, b"m2", 0)), libc::ENOTEMPTY);
    assert_eq!(
        errno(deep.rename(b"f", &b, b"m2", RENAME_EXCHANGE)),
        libc::EINVAL
    );
    assert_eq!(errno(deep.rename(b"f", &root, b"b", 0)), libc::ENOTEMPTY);
    // Into a removed directory: ENOENT.
    let gone = mkdir(&root, "gone");
    root.unlink(b"gone", true).unwrap();
    assert_eq!(errno(deep.rename(b"f", &gone, b"f", 0)), libc::ENOENT);
}

#[test]
fn rename_across_instances_exdev() {
    let (_fs, root) = new_fs();
    let (_fs2, root2) = new_fs();
    file(&root, "a");
    assert_eq!(errno(root.rename(b"a", &root2, b"a", 0)), libc::EXDEV);
    assert!(root.lookup(b"a").is_ok());
}

#[test]
fn rename_whiteout() {
    let (_fs, root) = new_fs();
    let f = file(&root, "a");
    root.rename(b"a", &root, b"b", libc::RENAME_WHITEOUT)
        .unwrap();
    assert_eq!(st(&root.lookup(b"b").unwrap()).ino, st(&f).ino);
    let w = root.lookup(b"a").unwrap();
    assert_eq!(st(&w).mode, libc::S_IFCHR);
    assert_eq!(st(&w).rdev, 0);
}

// --- file contents ----------------------------------------------------------------------

#[test]
fn read_write_and_blocks() {
    let (_fs, root) = new_fs();
    let f = file(&root, "f");
    assert_eq!(read_all(&f, 0, 10), b"");
    assert_eq!(f.write_at(0, b"hello").unwrap(), 5);
    assert_eq!(read_all(&f, 0, 100), b"hello");
    assert_eq!(read_all(&f, 2, 2), b"ll");
    assert_eq!(read_all(&f, 5, 10), b"");
    assert_eq!(read_all(&f, u64::MAX, 10), b"");
    assert_eq!(f.write_at(0, b"").unwrap(), 0);
    let s = st(&f);
    assert_eq!((s.size, s.blocks), (5, 8));
    // A write past a hole: the hole reads as zeros and is not allocated.
    f.write_at(3 * 4096 + 10, b"xyz").unwrap();
    let s = st(&f);
    assert_eq!((s.size, s.blocks), (3 * 4096 + 13, 16));
    let all = read_all(&f, 0, 5 * 4096);
    assert_eq!(all.len(), 3 * 4096 + 13);
    assert_eq!(&all[..5], b"hello");
    assert!(all[5..3 * 4096 + 10].iter().all(|&b| b == 0));
    assert_eq!(&all[3 * 4096 + 10..], b"xyz");
    // A write across page boundaries.
    let big: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    f.write_at(4000, &big).unwrap();
    assert_eq!(read_all(&f, 4000, 10_000), big);
    assert_eq!(st(&f).blocks, 4 * 8);

    let d = mkdir(&root, "d");
    assert_eq!(errno(d.read_at(0, &mut [0; 4])), libc::EISDIR);
    assert_eq!(errno(d.write_at(0, b"x")), libc::EISDIR);
    let p = mk(&root, "p", NewNode::Fifo);
    assert_eq!(errno(p.read_at(0, &mut [0; 4])), libc::EINVAL);
    assert_eq!(errno(p.write_at(0, b"x")), libc::EINVAL);
}

#[test]
fn sparse_terabyte_truncate_is_cheap() {
    let (fs, root) = new_fs();
    let f = file(&root, "big");
    let tib = 1u64 << 40;
    let start = Instant::now();
    f.setattr(&SetAttr {
        size: Some(tib),
        ..SetAttr::default()
    })
    .unwrap();
    assert_eq!(st(&f).size as u64, tib);
    assert_eq!(st(&f).blocks, 0);
    let tail = read_all(&f, tib - 4096, 8192);
    assert_eq!(tail.len(), 4096);
    assert!(tail.iter().all(|&b| b == 0));
    let mid = read_all(&f, tib / 2, 1 << 20);
    assert!(mid.iter().all(|&b| b == 0));
    f.write_at(tib - 1, b"!").unwrap();
    assert_eq!(read_all(&f, tib - 2, 10), b"\0!");
    assert_eq!(st(&f).blocks, 8);
    assert_eq!(used(&fs), PAGE);
    f.setattr(&SetAttr {
        size: Some(0),
        ..SetAttr::default()
    })
    .unwrap();
    assert_eq!(used(&fs), 0);
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn truncate_rules() {
    let (fs, root) = new_fs();
    let f = file(&root, "f");
    f.write_at(0, &[7u8; 10_000]).unwrap();
    assert_eq!(st(&f).blocks, 24);
    let set_size = |i: &Arc<dyn Inode>, size: u64| {
        i.setattr(&SetAttr {
            size: Some(size),
            ..SetAttr::default()
        })
    };
    set_size(&f, 5000).unwrap();
    assert_eq!((st(&f).size, st(&f).blocks), (5000, 16));
    assert_eq!(used(&fs), 2 * PAGE);
    // Growing again exposes zeros, not the old bytes.
    set_size(&f, 9000).unwrap();
    let all = read_all(&f, 0, 20_000);
    assert_eq!(all.len(), 9000);
    assert!(all[..5000].iter().all(|&b| b == 7));
    assert!(all[5000..].iter().all(|&b| b == 0));
    assert_eq!(st(&f).blocks, 16, "growing allocates nothing");
    set_size(&f, MAX_FILE_SIZE).unwrap();
    assert_eq!(errno(set_size(&f, MAX_FILE_SIZE + 1)), libc::EFBIG);
    assert_eq!(errno(set_size(&f, u64::MAX)), libc::EFBIG);
    let d = mkdir(&root, "d");
    assert_eq!(errno(set_size(&d, 0)), libc::EISDIR);
    let l = mk(&root, "l", NewNode::Symlink(b"x".to_vec()));
    assert_eq!(errno(set_size(&l, 0)), libc::EINVAL);
    let p = mk(&root, "p", NewNode::Fifo);
    assert_eq!(errno(set_size(&p, 0)), libc::EINVAL);
}

#[test]
fn write_size_limit() {
    let (_fs, root) = new_fs();
    let f = file(&root, "f");
    assert_eq!(errno(f.write_at(MAX_FILE_SIZE, b"x")), libc::EFBIG);
    assert_eq!(errno(f.write_at(u64::MAX, b"x")), libc::EFBIG);
    // A zero-length write anywhere succeeds, as on Linux.
    assert_eq!(f.write_at(u64::MAX, b"").unwrap(), 0);
    // A write crossing the limit is cut short.
    assert_eq!(f.write_at(MAX_FILE_SIZE - 2, b"abcd").unwrap(), 2);
    assert_eq!(st(&f).size as u64, MAX_FILE_SIZE);
    assert_eq!(read_all(&f, MAX_FILE_SIZE - 3, 10), b"\0ab");
}

// --- fallocate --------------------------------------------------------------------------

#[test]
fn fallocate_allocate() {
    let (fs, root) = new_fs();
    let f = file(&root, "f");
    f.allocate(0, 100, 10_000).unwrap();
    let s = st(&f);
    assert_eq!((s.size, s.blocks), (10_100, 24));
    assert!(read_all(&f, 0, 20_000).iter().all(|&b| b == 0));
    // KEEP_SIZE allocates past the end without growing the file.
    f.allocate(libc::FALLOC_FL_KEEP_SIZE, 20_000, 4096).unwrap();
    let s = st(&f);
    assert_eq!((s.size, s.blocks), (10_100, 40));
    assert_eq!(used(&fs), 5 * PAGE);
    // Allocating what exists charges nothing more; a smaller range never shrinks.
    f.allocate(0, 0, 100).unwrap();
    assert_eq!((st(&f).size, st(&f).blocks), (10_100, 40));
    // Shrinking drops the pages preallocated past the end too.
    f.setattr(&SetAttr {
        size: Some(4096),
        ..SetAttr::default()
    })
    .unwrap();
    assert_eq!(st(&f).blocks, 8);
    assert_eq!(used(&fs), PAGE);
    // Data survives an allocate over it.
    f.write_at(0, b"data").unwrap();
    f.allocate(0, 0, 8192).unwrap();
    assert_eq!(read_all(&f, 0, 4), b"data");
}

#[test]
fn fallocate_punch_hole() {
    let (fs, root) = new_fs();
    let f = file(&root, "f");
    let punch = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
    f.write_at(0, &[1u8; 5 * 4096]).unwrap();
    assert_eq!(st(&f).blocks, 40);
    // From the middle of page 0 to the middle of page 3: pages 1 and 2 are freed.
    f.allocate(punch, 2048, 3 * 4096).unwrap();
    let s = st(&f);
    assert_eq!((s.size, s.blocks), (5 * 4096, 24));
    assert_eq!(used(&fs), 3 * PAGE);
    let all = read_all(&f, 0, 5 * 4096);
    assert!(all[..2048].iter().all(|&b| b == 1));
    assert!(all[2048..3 * 4096 + 2048].iter().all(|&b| b == 0));
    assert!(all[3 * 4096 + 2048..].iter().all(|&b| b == 1));
    // Inside one page: zeroes, frees nothing.
    f.allocate(punch, 10, 20).unwrap();
    assert_eq!(
        read_all(&f, 8, 24),
        [[1u8; 2].as_slice(), &[0; 20], &[1; 2]].concat()
    );
    assert_eq!(st(&f).blocks, 24);
    // Past the end: nothing changes size.
    f.allocate(punch, 1 << 30, 4096).unwrap();
    assert_eq!(st(&f).size, 5 * 4096);
    // PUNCH_HOLE needs KEEP_SIZE.
    assert_eq!(
        errno(f.allocate(libc::FALLOC_FL_PUNCH_HOLE, 0, 10)),
        libc::EOPNOTSUPP
    );
}

#[test]
fn fallocate_zero_range() {
    let (_fs, root) = new_fs();
    let f = file(&root, "f");
    f.write_at(0, &[9u8; 3 * 4096]).unwrap();
    f.allocate(libc::FALLOC_FL_ZERO_RANGE, 100, 2 * 4096)
        .unwrap();
    let all = read_all(&f, 0, 3 * 4096);
    assert!(all[..100].iter().all(|&b| b == 9));
    assert!(all[100..100 + 2 * 4096].iter().all(|&b| b == 0));
    assert!(all[100 + 2 * 4096..].iter().all(|&b| b == 9));
    assert_eq!(st(&f).blocks, 24, "zeroed pages stay allocated");
    // Past the end it allocates and grows the file, unless KEEP_SIZE.
    f.allocate(libc::FALLOC_FL_ZERO_RANGE, 4 * 4096, 4096)
        .unwrap();
    assert_eq!((st(&f).size, st(&f).blocks), (5 * 4096, 32));
    let keep = libc::FALLOC_FL_ZERO_RANGE | libc::FALLOC_FL_KEEP_SIZE;
    f.allocate(keep, 6 * 4096, 4096).unwrap();
    assert_eq!((st(&f).size, st(&f).blocks), (5 * 4096, 40));
}

#[test]
fn fallocate_errors() {
    let (_fs, root) = new_fs();
    let f = file(&root, "f");
    use libc::{
        FALLOC_FL_COLLAPSE_RANGE as COLLAPSE, FALLOC_FL_INSERT_RANGE as INSERT,
        FALLOC_FL_KEEP_SIZE as KEEP, FALLOC_FL_PUNCH_HOLE as PUNCH,
        FALLOC_FL_UNSHARE_RANGE as UNSHARE, FALLOC_FL_ZERO_RANGE as ZERO,
    };
    assert_eq!(errno(f.allocate(0, 0, 0)), libc::EINVAL);
    assert_eq!(
        errno(f.allocate(0, 1 << 63, 1)),
        libc::EINVAL,
        "negative offset"
    );
    assert_eq!(
        errno(f.allocate(0, 0, 1 << 63)),
        libc::EINVAL,
        "negative length"
    );
    assert_eq!(errno(f.allocate(0, MAX_FILE_SIZE, 1)), libc::EFBIG);
    assert_eq!(errno(f.allocate(0, MAX_FILE_SIZE - 10, 11)), libc::EFBIG);
    assert_eq!(
        errno(f.allocate(0x04, 0, 1)),
        libc::EOPNOTSUPP,
        "NO_HIDE_STALE"
    );
    assert_eq!(errno(f.allocate(-1, 0, 1)), libc::EOPNOTSUPP);
    assert_eq!(errno(f.allocate(0x100, 0, 1)), libc::EOPNOTSUPP);
    assert_eq!(
        errno(f.allocate(PUNCH | ZERO | KEEP, 0, 1)),
        libc::EOPNOTSUPP
    );
    assert_eq!(errno(f.allocate(COLLAPSE | KEEP, 0, 4096)), libc::EINVAL);
    assert_eq!(errno(f.allocate(INSERT | KEEP, 0, 4096)), libc::EINVAL);
    assert_eq!(errno(f.allocate(UNSHARE | ZERO, 0, 4096)), libc::EINVAL);
    // Valid for the VFS, not supported by tmpfs.
    assert_eq!(errno(f.allocate(COLLAPSE, 0, 4096)), libc::EOPNOTSUPP);
    assert_eq!(errno(f.allocate(INSERT, 0, 4096)), libc::EOPNOTSUPP);
    assert_eq!(errno(f.allocate(UNSHARE, 0, 4096)), libc::EOPNOTSUPP);
    // By type.
    let d = mkdir(&root, "d");
    assert_eq!(errno(d.allocate(0, 0, 1)), libc::EISDIR);
    assert_eq!(
        errno(mk(&root, "p", NewNode::Fifo).allocate(0, 0, 1)),
        libc::ESPIPE
    );
    assert_eq!(
        errno(mk(&root, "c", NewNode::CharDevice(1)).allocate(0, 0, 1)),
        libc::ENODEV
    );
    assert_eq!(
        errno(mk(&root, "l", NewNode::Symlink(b"x".to_vec())).allocate(0, 0, 1)),
        libc::ENODEV
    );
    assert_eq!(st(&f).size, 0, "failures change nothing");
}

// --- budgets ----------------------------------------------------------------------------

#[test]
fn space_budget() {
    let (fs, root) = small_fs(4 * PAGE, 100);
    let f = file(&root, "f");
    // A write that does not fit is cut short at the budget.
    assert_eq!(f.write_at(0, &[1u8; 5 * 4096]).unwrap(), 4 * 4096);
    assert_eq!(errno(f.write_at(4 * 4096, b"x")), libc::ENOSPC);
    // Writing inside allocated pages needs no space.
    f.write_at(0, b"ok").unwrap();
    let sfs = root.statfs().unwrap();
    assert_eq!(
        (sfs.blocks, sfs.blocks_free, sfs.blocks_available),
        (4, 0, 0)
    );
    // fallocate is all or nothing.
    let g = file(&root, "g");
    assert_eq!(errno(g.allocate(0, 0, 4096)), libc::ENOSPC);
    assert_eq!((st(&g).size, st(&g).blocks), (0, 0));
    // Sparse growth is free.
    g.setattr(&SetAttr {
        size: Some(1 << 40),
        ..SetAttr::default()
    })
    .unwrap();
    f.allocate(
        libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
        0,
        2 * 4096,
    )
    .unwrap();
    g.allocate(0, 0, 2 * 4096).unwrap();
    assert_eq!(errno(g.allocate(0, 1 << 30, 1)), libc::ENOSPC);
    // xattrs and long symlinks count too.
    root.unlink(b"f", false).unwrap();
    drop(f);
    assert_eq!(used(&fs), 2 * PAGE);
    root.create(b"l", NewNode::Symlink(vec![b'a'; 200]), 0, ME)
        .unwrap();
    assert_eq!(used(&fs), 3 * PAGE);
    g.setxattr(b"user.big", &vec![0; 4000], 0).unwrap();
    assert_eq!(errno(g.setxattr(b"user.more", &[0; 100], 0)), libc::ENOSPC);
    assert_eq!(
        errno(root.create(b"l2", NewNode::Symlink(vec![b'a'; 200]), 0, ME)),
        libc::ENOSPC
    );
    g.removexattr(b"user.big").unwrap();
    assert_eq!(used(&fs), 3 * PAGE);
}

#[test]
fn inode_budget() {
    let (fs, root) = small_fs(1 << 20, 4);
    file(&root, "a");
    mkdir(&root, "b");
    mk(&root, "c", NewNode::Fifo);
    assert_eq!(
        errno(root.create(b"d", NewNode::Regular, 0o644, ME)),
        libc::ENOSPC
    );
    let sfs = root.statfs().unwrap();
    assert_eq!(sfs.files_free, 0);
    root.unlink(b"a", false).unwrap();
    assert_eq!(root.statfs().unwrap().files_free, 1);
    let d = file(&root, "d");
    // Failed creates leave the directory unchanged.
    assert_eq!(names(&root), ["b", "c", "d"]);
    // Extra hard links take slots too.
    assert_eq!(errno(root.link(b"d2", &d)), libc::ENOSPC);
    root.unlink(b"c", false).unwrap();
    root.link(b"d2", &d).unwrap();
    assert_eq!(root.statfs().unwrap().files_free, 0);
    root.unlink(b"d", false).unwrap();
    assert_eq!(root.statfs().unwrap().files_free, 1);
    assert_eq!(st(&d).nlink, 1);
    root.rename(b"b", &root, b"b2", 0).unwrap();
    let e = file(&root, "e");
    root.rename(b"e", &root, b"d2", 0).unwrap();
    assert_eq!(st(&d).nlink, 0);
    drop(d);
    drop(e);
    assert_eq!(root.statfs().unwrap().files_free, 1);
    drop(root);
    drop(fs);
}

#[test]
fn statfs_values() {
    let (fs, root) = small_fs(1 << 30, 1000);
    let f = file(&root, "f");
    f.write_at(0, &[0; 8192]).unwrap();
    let s = f.statfs().unwrap();
    assert_eq!(s.fs_type, 0x0102_1994);
    assert_eq!(s.block_size, 4096);
    assert_eq!(s.name_max, 255);
    assert_eq!(s.blocks, (1 << 30) / 4096);
    assert_eq!(s.blocks_free, s.blocks - 2);
    assert_eq!(s.blocks_available, s.blocks_free);
    assert_eq!(s.files, 1000);
    assert_eq!(s.files_free, 1000 - 2);
    let d = Tmpfs::new(1).root().statfs().unwrap();
    assert!(d.blocks > 0 && d.files > 0);
    drop(fs);
}

#[test]
fn deep_tree_drops_without_recursion() {
    let (fs, root) = small_fs(1 << 20, 200_000);
    let mut dir = root.clone();
    for _ in 0..100_000 {
        dir = mkdir(&dir, "d");
    }
    drop(dir);
    drop(root);
    drop(fs);
}

// --- metadata and times ----------------------------------------------------------------

#[test]
fn write_and_read_times() {
    let (_fs, root) = new_fs();
    let f = file(&root, "f");
    let past = (1_000_000, 5);
    f.setattr(&SetAttr {
        atime: Some(past),
        mtime: Some(past),
        ..SetAttr::default()
    })
    .unwrap();
    let s = st(&f);
    assert_eq!((s.atime, s.mtime), (past, past));
    tick();
    let t0 = s.ctime;
    tick();
    f.write_at(0, b"x").unwrap();
    let s = st(&f);
    assert!(s.mtime > t0 && s.ctime > t0);
    assert_eq!(s.atime, past, "write does not touch atime");
    // relatime: a read moves an atime older than mtime.
    read_all(&f, 0, 1);
    let s = st(&f);
    assert!(s.atime >= s.mtime);
    let a1 = s.atime;
    tick();
    read_all(&f, 0, 1);
    assert_eq!(st(&f).atime, a1, "but not again until the file changes");
    // Nanoseconds are kept.
    f.setattr(&SetAttr {
        mtime: Some((5, 123_456_789)),
        ..SetAttr::default()
    })
    .unwrap();
    assert_eq!(st(&f).mtime, (5, 123_456_789));
    // Guest-chosen extreme times do not break relatime.
    f.setattr(&SetAttr {
        atime: Some((i64::MIN, 0)),
        ..SetAttr::default()
    })
    .unwrap();
    read_all(&f, 0, 1);
}

#[test]
fn setattr_times_and_modes() {
    let (_fs, root) = new_fs();
    let f = file(&root, "f");
    tick();
    let t0 = st(&f).ctime;
    let m0 = st(&f).mtime;
    tick();
    f.setattr(&SetAttr {
        mode: Some(0o100600 | libc::S_ISVTX),
        ..SetAttr::default()
    })
    .unwrap();
    let s = st(&f);
    assert_eq!(s.mode, libc::S_IFREG | 0o1600, "chmod keeps the type bits");
    assert!(s.ctime > t0);
    assert_eq!(s.mtime, m0, "chmod leaves mtime");
    // An empty setattr and a truncate to the same size change nothing.
    let c1 = s.ctime;
    tick();
    f.setattr(&SetAttr::default()).unwrap();
    f.setattr(&SetAttr {
        size: Some(0),
        ..SetAttr::default()
    })
    .unwrap();
    assert_eq!(st(&f).ctime, c1);
    // A real truncate changes mtime and ctime.
    f.setattr(&SetAttr {
        size: Some(10),
        ..SetAttr::default()
    })
    .unwrap();
    assert!(st(&f).mtime > c1 && st(&f).ctime > c1);
    // chmod of a directory.
    let d = mkdir(&root, "d");
    d.setattr(&SetAttr {
        mode: Some(0o700),
        ..SetAttr::default()
    })
    .unwrap();
    assert_eq!(st(&d).mode, libc::S_IFDIR | 0o700);
}

#[test]
fn chown_clears_setid_bits() {
    let (_fs, root) = new_fs();
    let f = file(&root, "f");
    let chmod = |i: &Arc<dyn Inode>, m: u32| {
        i.setattr(&SetAttr {
            mode: Some(m),
            ..SetAttr::default()
        })
        .unwrap()
    };
    let chown = |i: &Arc<dyn Inode>, uid: Option<u32>, gid: Option<u32>| {
        i.setattr(&SetAttr {
            uid,
            gid,
            ..SetAttr::default()
        })
        .unwrap()
    };
    chmod(&f, 0o6755);
    tick();
    let t0 = st(&f).ctime;
    tick();
    chown(&f, Some(5), None);
    let s = st(&f);
    assert_eq!((s.uid, s.gid), (5, 1000));
    assert_eq!(s.mode & 0o7777, 0o0755, "setuid and group-exec setgid go");
    assert!(s.ctime > t0);
    // setgid without group-exec (mandatory locking mark) stays.
    chmod(&f, 0o6745);
    chown(&f, None, Some(6));
    assert_eq!(st(&f).mode & 0o7777, 0o2745);
    assert_eq!(st(&f).gid, 6);
    // Directories keep theirs.
    let d = mkdir(&root, "d");
    chmod(&d, 0o6755);
    chown(&d, Some(1), Some(1));
    assert_eq!(st(&d).mode & 0o7777, 0o6755);
    // An explicit mode in the same call wins.
    f.setattr(&SetAttr {
        mode: Some(0o4755),
        uid: Some(9),
        ..SetAttr::default()
    })
    .unwrap();
    assert_eq!(st(&f).mode & 0o7777, 0o4755);
}

#[test]
fn directory_times_on_create_and_remove() {
    let (_fs, root) = new_fs();
    let d = mkdir(&root, "d");
    let check = |what: &str, op: &dyn Fn()| {
        tick();
        let t0 = st(&d).mtime;
        tick();
        op();
        let s = st(&d);
        assert!(s.mtime > t0 && s.ctime > t0, "{what}");
    };
    check("create", &|| {
        file(&d, "f");
    });
    check("mkdir", &|| {
        mkdir(&d, "sub");
    });
    check("symlink", &|| {
        mk(&d, "l", NewNode::Symlink(b"f".to_vec()));
    });
    check("unlink", &|| d.unlink(b"l", false).unwrap());
    check("rmdir", &|| d.unlink(b"sub", true).unwrap());
    check("rename", &|| d.rename(b"f", &d, b"g", 0).unwrap());
    // The removed directory's own ctime changes too.
    let sub = mkdir(&d, "sub2");
    tick();
    let t0 = st(&sub).ctime;
    tick();
    d.unlink(b"sub2", true).unwrap();
    assert!(st(&sub).ctime > t0);
    // readdir moves atime (relatime).
    let before = st(&d).atime;
    tick();
    d.readdir().unwrap();
    assert!(st(&d).atime > before);
}

// --- xattrs -----------------------------------------------------------------------------

#[test]
fn xattrs() {
    let (_fs, root) = new_fs();
    let f = file(&root, "f");
    assert_eq!(errno(f.getxattr(b"user.a")), libc::ENODATA);
    assert!(f.listxattr().unwrap().is_empty());
    tick();
    let t0 = st(&f).ctime;
    tick();
    f.setxattr(b"user.a", b"1", 0).unwrap();
    assert!(st(&f).ctime > t0, "setxattr changes ctime");
    assert_eq!(f.getxattr(b"user.a").unwrap(), b"1");
    f.setxattr(b"user.a", b"22", 0).unwrap();
    assert_eq!(f.getxattr(b"user.a").unwrap(), b"22");
    assert_eq!(
        errno(f.setxattr(b"user.a", b"3", libc::XATTR_CREATE)),
        libc::EEXIST
    );
    assert_eq!(
        errno(f.setxattr(b"user.b", b"3", libc::XATTR_REPLACE)),
        libc::ENODATA
    );
    f.setxattr(b"user.a", b"333", libc::XATTR_REPLACE).unwrap();
    f.setxattr(b"user.b", b"", libc::XATTR_CREATE).unwrap();
    assert_eq!(f.getxattr(b"user.b").unwrap(), b"");
    f.setxattr(b"trusted.t", b"t", 0).unwrap();
    f.setxattr(b"security.s", b"s", 0).unwrap();
    let mut list = f.listxattr().unwrap();
    list.sort();
    assert_eq!(
        list,
        [
            b"security.s".to_vec(),
            b"trusted.t".to_vec(),
            b"user.a".to_vec(),
            b"user.b".to_vec()
        ]
    );
    tick();
    let t1 = st(&f).ctime;
    tick();
    f.removexattr(b"user.a").unwrap();
    assert!(st(&f).ctime > t1);
    assert_eq!(errno(f.removexattr(b"user.a")), libc::ENODATA);
    assert_eq!(errno(f.getxattr(b"user.a")), libc::ENODATA);
    // Names.
    assert_eq!(errno(f.setxattr(b"nonamespace", b"", 0)), libc::EOPNOTSUPP);
    assert_eq!(errno(f.setxattr(b"system.other", b"", 0)), libc::EOPNOTSUPP);
    // ACLs are kept (vfs::acl); an empty one is a removal.
    f.setxattr(b"system.posix_acl_access", b"", 0).unwrap();
    assert_eq!(
        errno(f.setxattr(b"system.posix_acl_access", &[1, 0, 0, 0], 0)),
        libc::EOPNOTSUPP
    );
    assert_eq!(errno(f.getxattr(b"other.x")), libc::EOPNOTSUPP);
    assert_eq!(errno(f.removexattr(b"bad")), libc::EOPNOTSUPP);
    assert_eq!(errno(f.setxattr(b"user.", b"", 0)), libc::EINVAL);
    assert_eq!(errno(f.setxattr(b"", b"", 0)), libc::ERANGE);
    let long = [b"user.".as_slice(), &[b'n'; 251]].concat();
    assert_eq!(errno(f.setxattr(&long, b"", 0)), libc::ERANGE);
    assert_eq!(errno(f.getxattr(&long)), libc::ERANGE);
    f.setxattr(&long[..255], b"", 0).unwrap();
    // Values.
    f.setxattr(b"user.max", &vec![1; 65536], 0).unwrap();
    assert_eq!(
        errno(f.setxattr(b"user.max", &vec![1; 65537], 0)),
        libc::E2BIG
    );
    assert_eq!(errno(f.setxattr(b"user.x", b"", 4)), libc::EINVAL);
    // user.* only on regular files and directories.
    let d = mkdir(&root, "d");
    d.setxattr(b"user.d", b"dir", 0).unwrap();
    assert_eq!(d.getxattr(b"user.d").unwrap(), b"dir");
    let l = mk(&root, "l", NewNode::Symlink(b"f".to_vec()));
    assert_eq!(errno(l.setxattr(b"user.x", b"", 0)), libc::EPERM);
    assert_eq!(errno(l.getxattr(b"user.x")), libc::ENODATA);
    assert_eq!(errno(l.removexattr(b"user.x")), libc::EPERM);
    l.setxattr(b"trusted.x", b"ok", 0).unwrap();
    assert_eq!(l.getxattr(b"trusted.x").unwrap(), b"ok");
    // Hard links share xattrs.
    root.link(b"g", &f).unwrap();
    assert_eq!(root.lookup(b"g").unwrap().getxattr(b"user.b").unwrap(), b"");
}

// --- concurrency ------------------------------------------------------------------------

#[test]
fn concurrent_namespace_smoke() {
    let (fs, root) = new_fs();
    let a = mkdir(&root, "a");
    let b = mkdir(&root, "b");
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (a, b) = (a.clone(), b.clone());
            std::thread::spawn(move || {
                for i in 0..300 {
                    let name = format!("t{t}-{i}");
                    let n = name.as_bytes();
                    let (from, to) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
                    let f = from.create(n, NewNode::Regular, 0o644, ME).unwrap();
                    f.write_at(0, n).unwrap();
                    let sub = format!("d{t}-{i}");
                    from.create(sub.as_bytes(), NewNode::Directory, 0o755, ME)
                        .unwrap();
                    // Renames in both directions between the same two directories, with
                    // replacement and exchange, race with the other threads.
                    from.rename(n, to, n, 0).unwrap();
                    from.rename(sub.as_bytes(), to, b"shared-dir", 0).ok();
                    to.rename(n, from, b"shared", 0).unwrap();
                    from.rename(b"shared", to, b"shared", RENAME_EXCHANGE).ok();
                    from.link(b"tmp-link", &f).ok();
                    from.unlink(b"tmp-link", false).ok();
                    to.unlink(b"shared-dir", true).ok();
                    from.unlink(sub.as_bytes(), true).ok();
                    let _ = a.readdir().unwrap();
                    let _ = f.stat().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    // The tree is consistent: nlink matches the subdirectories, parents point back.
    for d in [&a, &b] {
        let entries = d.readdir().unwrap();
        let subdirs = entries
            .iter()
            .filter(|e| e.file_type == FileType::Directory)
            .count();
        assert_eq!(st(d).nlink, 2 + subdirs as u64);
        for e in entries {
            let child = d.lookup(&e.name).unwrap();
            if e.file_type == FileType::Directory {
                assert_eq!(tmp(&child).parent().unwrap().ino(), st(d).ino);
            } else {
                assert!(st(&child).nlink >= 1);
            }
        }
    }
    assert_eq!(st(&root).nlink, 4);
    for d in [&a, &b] {
        for e in d.readdir().unwrap() {
            d.unlink(&e.name, e.file_type == FileType::Directory)
                .unwrap();
        }
    }
    root.unlink(b"a", true).unwrap();
    root.unlink(b"b", true).unwrap();
    drop((a, b, root));
    assert_eq!(used(&fs), 0);
    assert_eq!(fs.shared.space.inodes.load(Ordering::Acquire), 1);
}

#[test]
fn concurrent_io_and_truncate() {
    let (fs, root) = new_fs();
    let f = file(&root, "f");
    let threads: Vec<_> = (0..3)
        .map(|t| {
            let f = f.clone();
            std::thread::spawn(move || {
                for i in 0..200u64 {
                    match t {
                        0 => {
                            f.write_at(i * 1000, &[1; 3000]).unwrap();
                        }
                        1 => {
                            f.setattr(&SetAttr {
                                size: Some((i * 7919) % 300_000),
                                ..SetAttr::default()
                            })
                            .unwrap();
                        }
                        _ => {
                            let mut buf = [0u8; 5000];
                            f.read_at(i * 500, &mut buf).unwrap();
                            f.allocate(
                                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                                i * 300,
                                9000,
                            )
                            .unwrap();
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = st(&f);
    assert_eq!(used(&fs), s.blocks as u64 * 512);
}
