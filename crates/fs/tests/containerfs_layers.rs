//! ContainerFS against an independent flattening: each test builds small OCI layer tarballs,
//! turns each into an ImgFS layer, merges them with `write_index`, and compares the merged
//! tree (walked through the `Inode` API) with the same tarballs applied one after another to
//! a host temp directory, as umoci unpacks an image: whiteouts and opaque markers remove
//! what lower layers put there, then the layer's members are extracted over the result.
//!
//! Compared: every path, its type, permission bits, size, contents, link target, and which
//! paths are hard links of each other.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::fs::containerfs::{self, ContainerFs};
use ::fs::imgfs::{build_from_tar, BuildOptions};
use ::fs::vfs::{FileType, Inode, NewNode, Owner};

/// One member of a layer tarball.
#[derive(Debug, Clone)]
enum M {
    Dir(&'static str, u32),
    File(String, u32, Vec<u8>),
    Symlink(&'static str, &'static str),
    Hard(&'static str, &'static str),
    /// `.wh.NAME` for the path.
    Whiteout(&'static str),
    /// `.wh..wh..opq` in the directory.
    Opaque(&'static str),
}

fn file(path: &str, data: &[u8]) -> M {
    M::File(path.to_string(), 0o644, data.to_vec())
}

fn tarball(members: &[M]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind, mode, data: &[u8], link: &str| {
        common::tar_member(&mut b, path, kind, mode, data, link).unwrap()
    };
    use tar::EntryType as T;
    for m in members {
        match m {
            M::Dir(p, mode) => add(&format!("{p}/"), T::Directory, *mode, b"", ""),
            M::File(p, mode, data) => add(p, T::Regular, *mode, data, ""),
            M::Symlink(p, target) => add(p, T::Symlink, 0o777, b"", target),
            M::Hard(p, target) => add(p, T::Link, 0o644, b"", target),
            M::Whiteout(p) => {
                let (dir, name) = p.rsplit_once('/').unwrap_or(("", p));
                let wh = if dir.is_empty() {
                    format!(".wh.{name}")
                } else {
                    format!("{dir}/.wh.{name}")
                };
                add(&wh, T::Regular, 0o644, b"", "");
            }
            M::Opaque(dir) => add(&format!("{dir}/.wh..wh..opq"), T::Regular, 0o644, b"", ""),
        }
    }
    b.into_inner().unwrap()
}

fn remove(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.is_dir() => std::fs::remove_dir_all(path).unwrap(),
        Ok(_) => std::fs::remove_file(path).unwrap(),
        Err(_) => {}
    }
}

/// Applies `layers` (bottom first) to `root` as umoci does.
fn flatten(layers: &[Vec<M>], root: &Path) {
    for members in layers {
        // Whiteouts apply to what lower layers left, before this layer's members.
        for m in members {
            match m {
                M::Whiteout(p) => remove(&root.join(p)),
                M::Opaque(d) => {
                    if let Ok(rd) = std::fs::read_dir(root.join(d)) {
                        for e in rd {
                            remove(&e.unwrap().path());
                        }
                    }
                }
                _ => {}
            }
        }
        for m in members {
            match m {
                M::Dir(p, mode) => {
                    let path = root.join(p);
                    if !std::fs::symlink_metadata(&path).is_ok_and(|md| md.is_dir()) {
                        remove(&path);
                        std::fs::create_dir(&path).unwrap();
                    }
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))
                        .unwrap();
                }
                M::File(p, mode, data) => {
                    let path = root.join(p);
                    remove(&path);
                    std::fs::write(&path, data).unwrap();
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))
                        .unwrap();
                }
                M::Symlink(p, target) => {
                    let path = root.join(p);
                    remove(&path);
                    std::os::unix::fs::symlink(target, &path).unwrap();
                }
                M::Hard(p, target) => {
                    let path = root.join(p);
                    remove(&path);
                    std::fs::hard_link(root.join(target), &path).unwrap();
                }
                M::Whiteout(_) | M::Opaque(_) => {}
            }
        }
    }
}

/// What the comparison sees of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    kind: &'static str,
    perm: u32,
    content: Vec<u8>,
    /// The first path (in walk order) sharing this file's inode: hard links.
    link_group: String,
}

impl Seen {
    /// `groups` maps each (dev, ino) seen so far to the first path that had it.
    fn new(
        groups: &mut BTreeMap<(u64, u64), String>,
        rel: &str,
        kind: &'static str,
        mode: u32,
        content: Vec<u8>,
        id: (u64, u64),
    ) -> Seen {
        let link_group = if kind == "dir" {
            rel.to_string()
        } else {
            groups.entry(id).or_insert(rel.to_string()).clone()
        };
        let perm = if kind == "symlink" { 0 } else { mode & 0o7777 };
        Seen {
            kind,
            perm,
            content,
            link_group,
        }
    }
}

fn walk_host(root: &Path) -> BTreeMap<String, Seen> {
    let mut out = BTreeMap::new();
    let mut inodes = BTreeMap::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let mut names: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        for name in names {
            let path = dir.join(&name);
            let rel = format!("{rel}/{name}");
            let md = std::fs::symlink_metadata(&path).unwrap();
            let (kind, content) = if md.is_dir() {
                stack.push((path.clone(), rel.clone()));
                ("dir", Vec::new())
            } else if md.file_type().is_symlink() {
                let t = std::fs::read_link(&path).unwrap();
                ("symlink", t.into_os_string().into_encoded_bytes())
            } else {
                ("file", std::fs::read(&path).unwrap())
            };
            let seen = Seen::new(
                &mut inodes,
                &rel,
                kind,
                md.mode(),
                content,
                (md.dev(), md.ino()),
            );
            out.insert(rel, seen);
        }
    }
    out
}

fn read_all(inode: &Arc<dyn Inode>) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4096];
    loop {
        let n = inode.read_at(out.len() as u64, &mut buf).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

fn walk_merged(root: &Arc<dyn Inode>) -> BTreeMap<String, Seen> {
    let mut out = BTreeMap::new();
    let mut inodes = BTreeMap::new();
    let mut stack = vec![(root.clone(), String::new())];
    while let Some((dir, rel)) = stack.pop() {
        let mut entries = dir.readdir().unwrap();
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        for e in entries {
            let name = String::from_utf8(e.name.clone()).unwrap();
            let rel = format!("{rel}/{name}");
            let inode = dir.lookup(&e.name).unwrap();
            let st = inode.stat().unwrap();
            assert_eq!(st.ino, e.ino, "{rel}: d_ino differs from st_ino");
            assert_eq!(inode.file_type(), e.file_type, "{rel}: d_type");
            let (kind, content) = match inode.file_type() {
                FileType::Directory => {
                    stack.push((inode.clone(), rel.clone()));
                    ("dir", Vec::new())
                }
                FileType::Symlink => ("symlink", inode.readlink().unwrap()),
                _ => ("file", read_all(&inode)),
            };
            let seen = Seen::new(&mut inodes, &rel, kind, st.mode, content, (st.dev, st.ino));
            out.insert(rel, seen);
        }
    }
    out
}

/// Builds the layers and their index in `dir`; returns the layer paths and the index path.
fn build(dir: &Path, layers: &[Vec<M>]) -> (Vec<PathBuf>, PathBuf) {
    let mut paths = Vec::new();
    for (i, members) in layers.iter().enumerate() {
        let out = dir.join(format!("layer{i}.img"));
        let tar = tarball(members);
        build_from_tar(&tar[..], "layer.tar", &out, &BuildOptions::default(), None).unwrap();
        paths.push(out);
    }
    let index = dir.join("index.cfs");
    let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    containerfs::write_index(&refs, &index).unwrap();
    (paths, index)
}

/// Merges `layers` with ContainerFS and flattens them on the host; the two must agree.
fn check(layers: &[Vec<M>]) -> ContainerFs {
    let tmp = tempfile::tempdir().unwrap();
    let (paths, index) = build(tmp.path(), layers);
    let cfs = ContainerFs::open(&paths, &index).unwrap();
    let flat = tmp.path().join("flat");
    std::fs::create_dir(&flat).unwrap();
    flatten(layers, &flat);
    let expected = walk_host(&flat);
    let got = walk_merged(&cfs.root());
    if expected != got {
        for (k, v) in &expected {
            match got.get(k) {
                None => eprintln!("missing in ContainerFS: {k} {v:?}"),
                Some(g) if g != v => eprintln!("differs: {k}\n  flat {v:?}\n  cfs  {g:?}"),
                _ => {}
            }
        }
        for k in got.keys().filter(|k| !expected.contains_key(*k)) {
            eprintln!("extra in ContainerFS: {k} {:?}", got[k]);
        }
        panic!("the merged tree differs from the flattened layers");
    }
    cfs
}

fn names(dir: &Arc<dyn Inode>) -> Vec<String> {
    let mut v: Vec<String> = dir
        .readdir()
        .unwrap()
        .into_iter()
        .map(|e| String::from_utf8(e.name).unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn whiteout_of_a_file_and_of_a_directory() {
    let cfs = check(&[
        vec![
            M::Dir("etc", 0o755),
            file("etc/passwd", b"root"),
            file("etc/shadow", b"x"),
            M::Dir("var", 0o755),
            M::Dir("var/cache", 0o755),
            file("var/cache/a", b"a"),
        ],
        vec![
            M::Dir("etc", 0o755),
            M::Whiteout("etc/shadow"),
            M::Dir("var", 0o755),
            M::Whiteout("var/cache"),
        ],
        vec![file("top", b"t")],
    ]);
    let root = cfs.root();
    assert_eq!(names(&root), ["etc", "top", "var"]);
    assert_eq!(names(&root.lookup(b"etc").unwrap()), ["passwd"]);
    assert_eq!(
        root.lookup(b"var").unwrap().lookup(b"cache").err(),
        Some(libc::ENOENT)
    );
}

#[test]
fn an_opaque_directory_recreated_in_an_upper_layer() {
    check(&[
        vec![
            M::Dir("d", 0o755),
            file("d/old1", b"1"),
            M::Dir("d/sub", 0o700),
            file("d/sub/x", b"x"),
        ],
        vec![M::Whiteout("d")],
        vec![M::Dir("d", 0o750), file("d/new", b"n")],
        vec![M::Dir("o", 0o755), file("o/below", b"b")],
        vec![M::Dir("o", 0o711), M::Opaque("o"), file("o/above", b"a")],
    ]);
}

#[test]
fn a_symlink_over_a_directory_and_a_directory_over_a_symlink() {
    check(&[
        vec![
            M::Dir("lib", 0o755),
            file("lib/libc.so", b"elf"),
            M::Symlink("bin", "usr/bin"),
        ],
        vec![
            M::Symlink("lib", "usr/lib"),
            M::Dir("bin", 0o755),
            file("bin/sh", b"sh"),
        ],
    ]);
}

#[test]
fn a_file_replaced_by_a_directory_two_layers_up() {
    let cfs = check(&[
        vec![M::Dir("a", 0o755), file("a/x", b"x"), file("f", b"file")],
        vec![file("a", b"now a file"), file("g", b"g")],
        vec![
            M::Dir("a", 0o755),
            file("a/y", b"y"),
            M::Dir("f", 0o755),
            file("f/in", b"i"),
        ],
    ]);
    // The directory of layer 0 stays hidden below the file of layer 1.
    assert_eq!(names(&cfs.root().lookup(b"a").unwrap()), ["y"]);
}

#[test]
fn hard_links_share_an_inode_and_count_only_visible_names() {
    let cfs = check(&[
        vec![file("a", b"shared"), M::Hard("b", "a"), M::Hard("c", "a")],
        vec![M::Whiteout("c")],
    ]);
    let root = cfs.root();
    let a = root.lookup(b"a").unwrap().stat().unwrap();
    let b = root.lookup(b"b").unwrap().stat().unwrap();
    assert_eq!((a.ino, a.dev), (b.ino, b.dev));
    assert_eq!(a.nlink, 2, "the whited-out third name does not count");
}

#[test]
fn readdir_merges_layers_in_name_order_without_duplicates() {
    let cfs = check(&[
        vec![M::Dir("d", 0o755), file("d/b", b"1"), file("d/d", b"1")],
        vec![M::Dir("d", 0o755), file("d/a", b"2"), file("d/b", b"2")],
        vec![M::Dir("d", 0o755), file("d/c", b"3"), M::Whiteout("d/d")],
    ]);
    let d = cfs.root().lookup(b"d").unwrap();
    let listed: Vec<_> = d.readdir().unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(listed, [b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    let st = d.stat().unwrap();
    assert_eq!(st.nlink, 2);
    let mut buf = [0u8; 4];
    let n = d.lookup(b"b").unwrap().read_at(0, &mut buf).unwrap();
    assert_eq!(&buf[..n], b"2");
}

use common::Rng;

/// Random stacks over a small namespace, so names collide across layers in every way: a
/// name is a file in one layer, a directory, a symlink or a whiteout in another.
#[test]
fn random_layer_stacks_match_the_flattening() {
    const DIRS: [&str; 4] = ["p", "q", "p/r", "q/s"];
    const LEAVES: [&str; 5] = ["x", "y", "z", "r", "s"];
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for round in 0..60 {
        let nlayers = 2 + rng.below(5) as usize;
        let mut layers = Vec::new();
        for _ in 0..nlayers {
            let mut m: Vec<M> = Vec::new();
            // This layer's paths: whether each is a directory.
            let mut kinds: BTreeMap<String, bool> = BTreeMap::new();
            for _ in 0..1 + rng.below(8) {
                let dir = DIRS[rng.below(4) as usize];
                let path = format!("{dir}/{}", LEAVES[rng.below(5) as usize]);
                let mut parents = vec![dir.split('/').next().unwrap().to_string()];
                if dir.contains('/') {
                    parents.push(dir.to_string());
                }
                if kinds.contains_key(&path) || parents.iter().any(|p| kinds.get(p) == Some(&false))
                {
                    continue;
                }
                // Parent directories first, listed as Docker lists them.
                for p in parents {
                    if let std::collections::btree_map::Entry::Vacant(v) = kinds.entry(p) {
                        m.push(M::Dir(leak(v.key().clone()), 0o755));
                        v.insert(true);
                    }
                }
                let data = format!("{round}:{path}:{}", rng.below(3)).into_bytes();
                let member = match rng.below(6) {
                    0 => M::Whiteout(leak(path.clone())),
                    1 => M::Symlink(leak(path.clone()), "../t"),
                    2 => M::Dir(leak(path.clone()), 0o700),
                    3 => M::File(path.clone(), 0o600, data),
                    _ => M::File(path.clone(), 0o644, data),
                };
                kinds.insert(path, matches!(member, M::Dir(..)));
                m.push(member);
            }
            if rng.below(3) == 0 {
                let d = DIRS[rng.below(4) as usize];
                if kinds.get(d) == Some(&true) {
                    m.push(M::Opaque(leak(d.to_string())));
                }
            }
            layers.push(m);
        }
        check(&layers);
    }
}

#[test]
fn reproducible_index_bytes() {
    let layers = [
        vec![M::Dir("d", 0o755), file("d/a", b"1")],
        vec![M::Dir("d", 0o755), M::Whiteout("d/a"), file("d/b", b"2")],
    ];
    let t1 = tempfile::tempdir().unwrap();
    let t2 = tempfile::tempdir().unwrap();
    let (_, i1) = build(t1.path(), &layers);
    let (_, i2) = build(t2.path(), &layers);
    assert_eq!(std::fs::read(i1).unwrap(), std::fs::read(i2).unwrap());
}

#[test]
fn the_index_must_match_its_layers() {
    let t = tempfile::tempdir().unwrap();
    let (mut paths, index) = build(t.path(), &[vec![file("a", b"1")], vec![file("b", b"2")]]);
    paths.swap(0, 1);
    let err = ContainerFs::open(&paths, &index).unwrap_err().to_string();
    assert!(
        err.contains("index.cfs") && err.contains("not the image"),
        "{err}"
    );
    paths.pop();
    let err = ContainerFs::open(&paths, &index).unwrap_err().to_string();
    assert!(err.contains("made for 2 layers"), "{err}");
}

/// The writable layer over the merged tree: copy-up keeps the file's identity, a hard link
/// stays one file across the copy-up, and removing a layer file leaves it hidden.
#[test]
fn the_writable_layer_copies_up_and_keeps_identities() {
    let t = tempfile::tempdir().unwrap();
    let (paths, index) = build(
        t.path(),
        &[
            vec![
                M::Dir("d", 0o755),
                file("d/a", b"lower"),
                M::Hard("d/b", "d/a"),
            ],
            vec![M::Dir("d", 0o755), file("d/c", b"c")],
        ],
    );
    let cfs = ContainerFs::open(&paths, &index).unwrap();
    let upper = ::fs::tmpfs::Tmpfs::new(::fs::dev::makedev(0, 99)).root();
    let root = cfs.writable_root(upper);
    let d = root.lookup(b"d").unwrap();
    let d_before = d.stat().unwrap();
    let a = d.lookup(b"a").unwrap();
    let a_before = a.stat().unwrap();
    a.write_at(0, b"UPPER").unwrap();
    let a_after = a.stat().unwrap();
    assert_eq!((a_after.dev, a_after.ino), (a_before.dev, a_before.ino));
    let d_after = d.stat().unwrap();
    assert_eq!((d_after.dev, d_after.ino), (d_before.dev, d_before.ino));
    // The other name of the hard link sees the write and the same inode.
    let b = d.lookup(b"b").unwrap();
    let mut buf = [0u8; 5];
    b.read_at(0, &mut buf).unwrap();
    assert_eq!(&buf, b"UPPER");
    assert_eq!(b.stat().unwrap().ino, a_before.ino);
    assert_eq!(b.stat().unwrap().nlink, 2);
    d.unlink(b"c", false).unwrap();
    assert_eq!(names(&d), ["a", "b"]);
    let owner = Owner { uid: 0, gid: 0 };
    d.create(b"n", NewNode::Regular, 0o600, owner).unwrap();
    assert_eq!(names(&d), ["a", "b", "n"]);
}
