//! Hostile images: a corpus of crafted bad images (truncated, bad offsets, cycles, absurd
//! sizes, overlapping extents, bad checksums, bad magic and version), each of which must give
//! an error naming the image and the fault, and a deterministic mutation test. Nothing may
//! panic, read outside the image or loop.

use std::path::{Path, PathBuf};

use ::fs::imgfs::format::{
    EntryRecord, ExtentRecord, Header, InodeRecord, ENTRY_SIZE, EXTENT_SIZE, HEADER_SIZE,
    INODE_SIZE,
};
use ::fs::imgfs::{self, fuzzing, BuildOptions, FileType, Image, Ino};

/// A small layer with directories, files of several sizes, a symlink, xattrs, devices,
/// whiteouts and an opaque directory.
fn base_tar() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_gnu();
        h.set_path(path).unwrap();
        h.set_entry_type(kind);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        if let Some(l) = link {
            h.set_link_name(l).unwrap();
        }
        if kind == tar::EntryType::Char {
            h.set_device_major(1).unwrap();
            h.set_device_minor(3).unwrap();
        }
        h.set_cksum();
        b.append(&h, data).unwrap();
    };
    use tar::EntryType as T;
    add("etc/", T::Directory, b"", None);
    add("etc/hostname", T::Regular, b"sandbox\n", None);
    add("etc/big", T::Regular, &vec![0x5a; 10_000], None);
    add("etc/sub/", T::Directory, b"", None);
    add("etc/sub/file", T::Regular, b"x", None);
    add("bin/sh", T::Symlink, b"", Some("busybox"));
    add("bin/busybox", T::Regular, &vec![0x7f; 5000], None);
    add("dev/null", T::Char, b"", None);
    add(".wh.old", T::Regular, b"", None);
    add("var/.wh..wh..opq", T::Regular, b"", None);
    let mut data = b.into_inner().unwrap();
    // An xattr on bin/busybox, through a PAX header appended by hand.
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions([("SCHILY.xattr.security.capability", &[1u8, 0, 0, 2][..])])
        .unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_path("bin/ping").unwrap();
    h.set_entry_type(T::Regular);
    h.set_mode(0o4755);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1);
    h.set_size(4);
    h.set_cksum();
    b.append(&h, &b"ping"[..]).unwrap();
    let extra = b.into_inner().unwrap();
    // Drop the first archive's two zero end blocks and append.
    data.truncate(data.len() - 1024);
    data.extend_from_slice(&extra);
    data
}

struct Base {
    dir: tempfile::TempDir,
    bytes: Vec<u8>,
}

fn base() -> Base {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("base.img");
    imgfs::build_from_tar(
        &base_tar()[..],
        "base.tar",
        &out,
        &BuildOptions::default(),
        None,
    )
    .unwrap();
    let bytes = std::fs::read(&out).unwrap();
    let img = Image::from_bytes("base", bytes.clone()).unwrap();
    imgfs::verify(&img, &mut |_| {}).unwrap();
    Base { dir, bytes }
}

fn header(b: &[u8]) -> Header {
    Header::decode(b[..HEADER_SIZE].try_into().unwrap())
}

fn put_header(b: &mut [u8], h: &Header) {
    let mut h = h.clone();
    h.seal();
    b[..HEADER_SIZE].copy_from_slice(&h.encode());
}

fn inode_at(b: &[u8], ino: u64) -> usize {
    (header(b).inode_table_offset + (ino - 1) * INODE_SIZE as u64) as usize
}

fn patch_inode(b: &mut [u8], ino: Ino, f: impl FnOnce(&mut InodeRecord)) {
    let at = inode_at(b, u64::from(ino));
    let mut r = InodeRecord::decode(b[at..at + INODE_SIZE].try_into().unwrap());
    f(&mut r);
    b[at..at + INODE_SIZE].copy_from_slice(&r.encode());
    fuzzing::reseal(b);
}

fn patch_entry(b: &mut [u8], index: u64, f: impl FnOnce(&mut EntryRecord)) {
    let at = (header(b).entry_table_offset + index * ENTRY_SIZE as u64) as usize;
    let mut r = EntryRecord::decode(b[at..at + ENTRY_SIZE].try_into().unwrap());
    f(&mut r);
    b[at..at + ENTRY_SIZE].copy_from_slice(&r.encode());
    fuzzing::reseal(b);
}

fn patch_extent(b: &mut [u8], index: u64, f: impl FnOnce(&mut ExtentRecord)) {
    let at = (header(b).extent_table_offset + index * EXTENT_SIZE as u64) as usize;
    let mut r = ExtentRecord::decode(b[at..at + EXTENT_SIZE].try_into().unwrap());
    f(&mut r);
    b[at..at + EXTENT_SIZE].copy_from_slice(&r.encode());
    fuzzing::reseal(b);
}

/// The inode at `path` in the good image.
fn ino_of(bytes: &[u8], path: &str) -> Ino {
    let img = Image::from_bytes("base", bytes.to_vec()).unwrap();
    img.lookup_path(path.as_bytes()).unwrap().unwrap()
}

/// Where the image holds `path`'s directory entries: (first index, count).
fn entries_of(bytes: &[u8], path: &str) -> (u64, u64) {
    let ino = ino_of(bytes, path);
    let at = inode_at(bytes, u64::from(ino));
    let r = InodeRecord::decode(bytes[at..at + INODE_SIZE].try_into().unwrap());
    (r.location, r.size)
}

/// A reader call that must fail on a crafted image, returning its error text.
type Probe = dyn Fn(&Image) -> String;

/// How a crafted image must fail.
enum Expect {
    /// `Image::open` refuses it.
    Open,
    /// It opens; `verify` and the reader call `probe` find the fault.
    Verify,
}

/// Writes `bytes` as `<name>.img`, opens it and checks that the fault is found and named:
/// the error text holds the image path and `what`. Walks the image in every way too.
fn check(
    base: &Base,
    name: &str,
    bytes: &[u8],
    expect: Expect,
    what: &str,
    probe: Option<(&str, &Probe)>,
) {
    let path: PathBuf = base.dir.path().join(format!("{name}.img"));
    std::fs::write(&path, bytes).unwrap();
    let shown = path.display().to_string();
    let has = |msg: &str, what: &str| {
        assert!(
            msg.starts_with(&format!("{shown}: ")) && msg.contains(what),
            "{name}: expected \"{shown}: ...{what}...\", got \"{msg}\""
        )
    };
    match (Image::open(&path), expect) {
        (Err(e), Expect::Open) => has(&e.to_string(), what),
        (Ok(_), Expect::Open) => panic!("{name}: opened"),
        (Err(e), Expect::Verify) => panic!("{name}: did not open: {e}"),
        (Ok(img), Expect::Verify) => {
            let e = imgfs::verify(&img, &mut |_| {}).unwrap_err();
            has(&e.to_string(), what);
            if let Some((probe_what, p)) = probe {
                has(&p(&img), probe_what);
            }
            fuzzing::exercise(&img);
        }
    }
    // The same bytes in memory behave the same (and never panic).
    if let Ok(img) = Image::from_bytes(path.clone(), bytes.to_vec()) {
        fuzzing::exercise(&img);
    }
    fuzzing::exercise_vfs(bytes);
}

#[test]
fn truncated() {
    let b = base();
    check(
        &b,
        "short",
        &b.bytes[..100],
        Expect::Open,
        "too short",
        None,
    );
    let len = b.bytes.len();
    check(
        &b,
        "cut",
        &b.bytes[..len - 10],
        Expect::Open,
        "but the header says",
        None,
    );
    // Cut and resealed so the header agrees with the length: the tables no longer fit.
    let mut cut = b.bytes[..len - 10].to_vec();
    fuzzing::reseal(&mut cut);
    check(
        &b,
        "cut_resealed",
        &cut,
        Expect::Open,
        "end of the string table",
        None,
    );
    // Only the header page.
    let mut page = b.bytes[..4096].to_vec();
    fuzzing::reseal(&mut page);
    check(&b, "header_only", &page, Expect::Open, "header: ", None);
}

#[test]
fn bad_magic_version_features() {
    let b = base();
    let mut x = b.bytes.clone();
    x[0] = b'X';
    check(&b, "magic", &x, Expect::Open, "bad magic", None);
    let mut x = b.bytes.clone();
    let mut h = header(&x);
    h.version = 2;
    put_header(&mut x, &h);
    check(
        &b,
        "version",
        &x,
        Expect::Open,
        "unsupported version 2",
        None,
    );
    let mut x = b.bytes.clone();
    let mut h = header(&x);
    h.features_incompat = 1 << 7;
    put_header(&mut x, &h);
    check(
        &b,
        "features",
        &x,
        Expect::Open,
        "unknown incompatible features 0x80",
        None,
    );
    let mut x = b.bytes.clone();
    let mut h = header(&x);
    h.page_size = 65536;
    put_header(&mut x, &h);
    check(&b, "page_size", &x, Expect::Open, "page size 65536", None);
}

#[test]
fn bad_checksums() {
    let b = base();
    let mut x = b.bytes.clone();
    x[150] ^= 1;
    check(
        &b,
        "header_sum",
        &x,
        Expect::Open,
        "header checksum mismatch",
        None,
    );
    let mut x = b.bytes.clone();
    let last = x.len() - 1;
    x[last] ^= 1;
    check(
        &b,
        "metadata_sum",
        &x,
        Expect::Verify,
        "metadata checksum mismatch",
        None,
    );
    let mut x = b.bytes.clone();
    x[4096] ^= 1;
    check(
        &b,
        "data_sum",
        &x,
        Expect::Verify,
        "extent 0: data checksum mismatch",
        None,
    );
    // Garbage after a file's end, in the zero tail of its last page.
    let mut x = b.bytes.clone();
    x[4096 + 4095] = 1;
    check(
        &b,
        "tail",
        &x,
        Expect::Verify,
        "extent 0: bytes after the end",
        None,
    );
    // The header page past the header.
    let mut x = b.bytes.clone();
    x[HEADER_SIZE + 10] = 1;
    check(
        &b,
        "header_pad",
        &x,
        Expect::Verify,
        "header page is not zero",
        None,
    );
}

#[test]
fn absurd_sizes_and_counts() {
    let b = base();
    let mut x = b.bytes.clone();
    let mut h = header(&x);
    h.inode_count = (1 << 32) - 2;
    put_header(&mut x, &h);
    check(&b, "inode_count", &x, Expect::Open, "entry table at", None);
    let mut x = b.bytes.clone();
    let mut h = header(&x);
    h.entry_count = u64::MAX;
    put_header(&mut x, &h);
    check(&b, "entry_count", &x, Expect::Open, "entry count", None);
    let mut x = b.bytes.clone();
    let mut h = header(&x);
    h.data_size = u64::MAX - 4095;
    put_header(&mut x, &h);
    check(&b, "data_size", &x, Expect::Open, "overflow", None);

    let hostname = ino_of(&b.bytes, "etc/hostname");
    let mut x = b.bytes.clone();
    patch_inode(&mut x, hostname, |r| r.size = u64::MAX);
    let probe = move |img: &Image| img.read(hostname, 0, &mut [0; 10]).unwrap_err().to_string();
    check(
        &b,
        "file_size",
        &x,
        Expect::Verify,
        &format!("inode {hostname}: "),
        Some((&format!("inode {hostname}: "), &probe)),
    );

    let etc = ino_of(&b.bytes, "etc");
    let mut x = b.bytes.clone();
    patch_inode(&mut x, etc, |r| r.size = 1 << 40);
    let probe = move |img: &Image| img.read_dir(etc).unwrap_err().to_string();
    check(
        &b,
        "dir_size",
        &x,
        Expect::Verify,
        "past the end of the entry table",
        Some(("past the end of the entry table", &probe)),
    );

    let sh = ino_of(&b.bytes, "bin/sh");
    let mut x = b.bytes.clone();
    patch_inode(&mut x, sh, |r| r.size = 1 << 20);
    let probe = move |img: &Image| img.readlink(sh).unwrap_err().to_string();
    check(
        &b,
        "symlink_size",
        &x,
        Expect::Verify,
        "bad symlink target length",
        Some(("bad symlink target length", &probe)),
    );
}

#[test]
fn bad_offsets() {
    let b = base();
    let big = ino_of(&b.bytes, "etc/big");
    let hostname = ino_of(&b.bytes, "etc/hostname");
    let h = header(&b.bytes);

    // A data extent past the end of the image.
    let mut x = b.bytes.clone();
    patch_extent(&mut x, 0, |e| e.offset = h.image_size);
    let probe = |img: &Image| {
        (1..=img.inode_count() as Ino)
            .filter(|&i| img.attrs(i).is_ok_and(|a| a.file_type == FileType::Regular))
            .find_map(|i| img.read(i, 0, &mut [0; 8]).err())
            .unwrap()
            .to_string()
    };
    check(
        &b,
        "extent_past_end",
        &x,
        Expect::Verify,
        "extent 0: at",
        Some(("not page-aligned inside the data region", &probe)),
    );
    // Not page-aligned.
    let mut x = b.bytes.clone();
    patch_extent(&mut x, 1, |e| e.offset += 1);
    check(
        &b,
        "extent_misaligned",
        &x,
        Expect::Verify,
        "extent 1: at",
        None,
    );
    // An inode naming an extent that does not exist.
    let mut x = b.bytes.clone();
    patch_inode(&mut x, big, |r| r.location = 1 << 40);
    let probe = move |img: &Image| img.file_bytes(big).unwrap_err().to_string();
    check(
        &b,
        "extent_index",
        &x,
        Expect::Verify,
        &format!("inode {big}: extent 1099511627776 out of range"),
        Some((
            &format!("inode {big}: extent 1099511627776 out of range"),
            &probe,
        )),
    );
    // A name outside the string table.
    let mut x = b.bytes.clone();
    patch_entry(&mut x, 0, |e| e.name_offset = u32::MAX);
    let probe = |img: &Image| {
        img.read_dir(img.root())
            .unwrap()
            .find_map(|e| e.err())
            .unwrap()
            .to_string()
    };
    check(
        &b,
        "name_offset",
        &x,
        Expect::Verify,
        "outside the string table",
        Some(("outside the string table", &probe)),
    );
    // An entry naming an inode that does not exist.
    let mut x = b.bytes.clone();
    patch_entry(&mut x, 0, |e| e.ino = 999_999);
    check(
        &b,
        "entry_ino",
        &x,
        Expect::Verify,
        "inode 999999 out of range",
        None,
    );
    // A symlink target outside the string table.
    let sh = ino_of(&b.bytes, "bin/sh");
    let mut x = b.bytes.clone();
    patch_inode(&mut x, sh, |r| r.location = u64::MAX - 3);
    let probe = move |img: &Image| img.readlink(sh).unwrap_err().to_string();
    check(
        &b,
        "symlink_offset",
        &x,
        Expect::Verify,
        "outside the string table",
        Some(("outside the string table", &probe)),
    );
    // Xattrs past the xattr table.
    let mut x = b.bytes.clone();
    patch_inode(&mut x, hostname, |r| {
        r.xattr_start = u32::MAX;
        r.xattr_count = u32::MAX;
    });
    let probe = move |img: &Image| img.get_xattr(hostname, b"user.a").unwrap_err().to_string();
    check(
        &b,
        "xattr_range",
        &x,
        Expect::Verify,
        "past the end of the xattr table",
        Some(("past the end of the xattr table", &probe)),
    );
    // A bad file type, and a root that is not a directory.
    let mut x = b.bytes.clone();
    patch_inode(&mut x, hostname, |r| r.mode = 0o170777);
    check(&b, "mode", &x, Expect::Verify, "bad file type", None);
    let mut x = b.bytes.clone();
    patch_inode(&mut x, 1, |r| r.mode = 0o100644);
    check(
        &b,
        "root_type",
        &x,
        Expect::Open,
        "root inode 1 is not a directory",
        None,
    );
    // An entry whose type disagrees with its inode.
    let mut x = b.bytes.clone();
    let (first, _) = entries_of(&b.bytes, "etc");
    patch_entry(&mut x, first, |e| e.dtype = 2);
    check(&b, "entry_type", &x, Expect::Verify, "but inode", None);
}

#[test]
fn overlapping_extents() {
    let b = base();
    let mut x = b.bytes.clone();
    let e0 = {
        let h = header(&b.bytes);
        let at = h.extent_table_offset as usize;
        ExtentRecord::decode(b.bytes[at..at + EXTENT_SIZE].try_into().unwrap())
    };
    patch_extent(&mut x, 1, |e| e.offset = e0.offset);
    check(
        &b,
        "overlap",
        &x,
        Expect::Verify,
        "extent 1: at 0x1000, expected",
        None,
    );
}

#[test]
fn directory_cycles() {
    let b = base();
    let etc = ino_of(&b.bytes, "etc");
    let sub = ino_of(&b.bytes, "etc/sub");
    let (first, count) = entries_of(&b.bytes, "etc/sub");
    assert_eq!(count, 1);
    let inspect = |img: &Image| {
        imgfs::inspect(img, &mut std::io::sink())
            .unwrap_err()
            .to_string()
    };
    // etc/sub/file -> etc: a cycle through the parent.
    let mut x = b.bytes.clone();
    patch_entry(&mut x, first, |e| {
        e.ino = etc;
        e.dtype = FileType::Directory.dtype();
    });
    check(
        &b,
        "cycle_parent",
        &x,
        Expect::Verify,
        "reached a second time",
        Some(("reached a second time", &inspect)),
    );
    // etc/sub/file -> etc/sub itself.
    let mut x = b.bytes.clone();
    patch_entry(&mut x, first, |e| {
        e.ino = sub;
        e.dtype = FileType::Directory.dtype();
    });
    check(
        &b,
        "cycle_self",
        &x,
        Expect::Verify,
        "reached a second time",
        Some(("reached a second time", &inspect)),
    );
    // etc/sub/file -> the root.
    let mut x = b.bytes.clone();
    patch_entry(&mut x, first, |e| {
        e.ino = 1;
        e.dtype = FileType::Directory.dtype();
    });
    check(
        &b,
        "cycle_root",
        &x,
        Expect::Verify,
        "cycle",
        Some(("cycle", &inspect)),
    );
    // A directory whose entry range is its parent's: the same entries seen twice.
    let mut x = b.bytes.clone();
    let (root_first, root_count) = entries_of(&b.bytes, "");
    patch_inode(&mut x, sub, |r| {
        r.location = root_first;
        r.size = root_count;
    });
    check(
        &b,
        "shared_entries",
        &x,
        Expect::Verify,
        "reached a second time",
        Some(("reached a second time", &inspect)),
    );
}

#[test]
fn broken_rules() {
    let b = base();
    // Unsorted entries: swap the root's first two.
    let (first, _) = entries_of(&b.bytes, "");
    let mut x = b.bytes.clone();
    let at = (header(&x).entry_table_offset + first * ENTRY_SIZE as u64) as usize;
    let (e0, e1) = (x[at..at + 16].to_vec(), x[at + 16..at + 32].to_vec());
    x[at..at + 16].copy_from_slice(&e1);
    x[at + 16..at + 32].copy_from_slice(&e0);
    fuzzing::reseal(&mut x);
    check(&b, "unsorted", &x, Expect::Verify, "not sorted", None);
    // A wrong link count.
    let hostname = ino_of(&b.bytes, "etc/hostname");
    let mut x = b.bytes.clone();
    patch_inode(&mut x, hostname, |r| r.nlink = 5);
    check(&b, "nlink", &x, Expect::Verify, "nlink 5 but 1", None);
    // Nanoseconds out of range.
    let mut x = b.bytes.clone();
    patch_inode(&mut x, hostname, |r| r.mtime_nsec = 1_000_000_000);
    check(&b, "nsec", &x, Expect::Verify, "mtime nanoseconds", None);
    // A name with a slash.
    let mut x = b.bytes.clone();
    let h = header(&x);
    let name_at = {
        let at = (h.entry_table_offset + first * ENTRY_SIZE as u64) as usize;
        let e = EntryRecord::decode(x[at..at + 16].try_into().unwrap());
        (h.string_table_offset + u64::from(e.name_offset)) as usize
    };
    x[name_at] = b'/';
    fuzzing::reseal(&mut x);
    check(&b, "slash", &x, Expect::Verify, "invalid name", None);
    // An orphan: etc/sub forgets its only entry.
    let sub = ino_of(&b.bytes, "etc/sub");
    let mut x = b.bytes.clone();
    patch_inode(&mut x, sub, |r| r.size = 0);
    check(
        &b,
        "orphan",
        &x,
        Expect::Verify,
        "not reachable from the root",
        None,
    );
    // A whiteout carrying an inode.
    let (first, count) = entries_of(&b.bytes, "");
    let img = Image::from_bytes("base", b.bytes.clone()).unwrap();
    let wh = img
        .read_dir(1)
        .unwrap()
        .position(|e| e.unwrap().whiteout)
        .unwrap() as u64;
    assert!(wh < count);
    let mut x = b.bytes.clone();
    patch_entry(&mut x, first + wh, |e| e.ino = 2);
    check(
        &b,
        "whiteout_ino",
        &x,
        Expect::Verify,
        "whiteout with an inode",
        None,
    );
}

/// xorshift64*: deterministic and good enough to pick bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn mutations_never_panic() {
    let b = base();
    let h = header(&b.bytes);
    let meta = h.metadata_offset as usize;
    let len = b.bytes.len();
    let mut rng = Rng(0x1a6f5_u64.wrapping_add(0x9e37_79b9_7f4a_7c15));
    let (mut opened, mut verified) = (0, 0);
    let rounds = 4000;
    for _ in 0..rounds {
        let mut x = b.bytes.clone();
        for _ in 0..1 + rng.below(6) {
            let at = match rng.below(10) {
                0 => rng.below(HEADER_SIZE),
                1 => 4096 + rng.below(meta - 4096),
                _ => meta + rng.below(len - meta),
            };
            x[at] = match rng.below(4) {
                0 => 0,
                1 => 0xff,
                2 => x[at] ^ (1 << rng.below(8)),
                _ => rng.next() as u8,
            };
        }
        if rng.below(4) != 0 {
            fuzzing::reseal(&mut x);
        }
        if let Ok(img) = Image::from_bytes("mutant", x) {
            opened += 1;
            if imgfs::verify(&img, &mut |_| {}).is_ok() {
                verified += 1;
            }
            fuzzing::exercise(&img);
        }
    }
    eprintln!("{rounds} mutants: {opened} opened, {verified} verified");
    assert!(opened > rounds / 2, "most resealed mutants should open");
    assert!(verified < opened);
}

#[test]
fn base_image_is_fine() {
    let b = base();
    let img = Image::from_bytes(Path::new("base"), b.bytes.clone()).unwrap();
    let s = imgfs::verify(&img, &mut |_| {}).unwrap();
    assert_eq!(s.whiteouts, 1);
    assert_eq!(s.opaque_dirs, 1);
    assert_eq!(
        img.get_xattr(
            img.lookup_path(b"bin/ping").unwrap().unwrap(),
            b"security.capability"
        )
        .unwrap(),
        Some(&[1u8, 0, 0, 2][..])
    );
    fuzzing::exercise(&img);
}
