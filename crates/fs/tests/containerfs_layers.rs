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

/// Makes the missing directories above `path` (relative to `root`) as Docker's layer
/// extraction does: mode 0755; an existing directory is left as it is. A non-directory in the
/// way is replaced by the directory (ContainerFS's rule: the layer holds a directory there;
/// Docker would fail to extract the member, ENOTDIR).
fn make_parents(root: &Path, path: &str) {
    let mut cur = root.to_path_buf();
    let parts: Vec<&str> = path.split('/').collect();
    for part in &parts[..parts.len() - 1] {
        cur.push(part);
        if !std::fs::symlink_metadata(&cur).is_ok_and(|md| md.is_dir()) {
            remove(&cur);
            std::fs::create_dir(&cur).unwrap();
            std::fs::set_permissions(&cur, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
    }
}

/// Applies `layers` (bottom first) to `root` as umoci does.
fn flatten(layers: &[Vec<M>], root: &Path) {
    for members in layers {
        // Whiteouts and opaque markers apply to what lower layers left, before this layer's
        // members: opaque markers first, then whiteouts. A directory the layer holds only
        // because a whiteout or a member below it needs it (implied) is the layer's own: an
        // opaque marker above it does not remove it (Docker would, when no member names it).
        for m in members {
            if let M::Opaque(d) = m {
                make_parents(root, &format!("{d}/.wh..wh..opq"));
                if let Ok(rd) = std::fs::read_dir(root.join(d)) {
                    for e in rd {
                        remove(&e.unwrap().path());
                    }
                }
            }
        }
        for m in members {
            if let M::Whiteout(p) = m {
                make_parents(root, p);
                remove(&root.join(p));
            }
        }
        for m in members {
            match m {
                M::Dir(p, mode) => {
                    make_parents(root, p);
                    let path = root.join(p);
                    if !std::fs::symlink_metadata(&path).is_ok_and(|md| md.is_dir()) {
                        remove(&path);
                        std::fs::create_dir(&path).unwrap();
                    }
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))
                        .unwrap();
                }
                M::File(p, mode, data) => {
                    make_parents(root, p);
                    let path = root.join(p);
                    remove(&path);
                    std::fs::write(&path, data).unwrap();
                    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(*mode))
                        .unwrap();
                }
                M::Symlink(p, target) => {
                    make_parents(root, p);
                    let path = root.join(p);
                    remove(&path);
                    std::os::unix::fs::symlink(target, &path).unwrap();
                }
                M::Hard(p, target) => {
                    make_parents(root, p);
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
        eprintln!("the layers, bottom first: {layers:#?}");
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

/// A directory a layer holds only because a deeper path needs it (`IMPLIED`) keeps the
/// attributes of the same directory below; so does an implied directory with an opaque
/// marker (its contents go, not its mode); a directory whited out and re-made in one layer
/// is new, with the made-up attributes.
#[test]
fn an_implied_directory_keeps_the_lower_attributes() {
    let cfs = check(&[
        vec![
            M::Dir("p", 0o700),
            M::Dir("p/r", 0o711),
            file("p/r/old", b"o"),
            M::Dir("o", 0o750),
            file("o/gone", b"g"),
            M::Dir("w", 0o700),
        ],
        // No member for p, p/r, o or w: they are implied.
        vec![
            file("p/r/new", b"n"),
            M::Opaque("o"),
            file("o/kept", b"k"),
            M::Whiteout("w"),
            file("w/in", b"i"),
        ],
    ]);
    let root = cfs.root();
    let mode = |path: &[&[u8]]| {
        let mut i = root.clone();
        for c in path {
            i = i.lookup(c).unwrap();
        }
        i.stat().unwrap().mode & 0o7777
    };
    assert_eq!(mode(&[b"p"]), 0o700);
    assert_eq!(mode(&[b"p", b"r"]), 0o711);
    assert_eq!(mode(&[b"o"]), 0o750);
    assert_eq!(names(&root.lookup(b"o").unwrap()), ["kept"]);
    assert_eq!(mode(&[b"w"]), 0o755);
}

/// ~200 random stacks where parent directories are often not listed (implied), listed after
/// their contents, or listed with another mode than below; every directory's mode must be
/// what applying the layers in order gives.
#[test]
fn random_stacks_with_implied_directories_match_the_flattening() {
    const DIRS: [&str; 5] = ["p", "q", "p/r", "q/s", "p/r/t"];
    const LEAVES: [&str; 5] = ["x", "y", "r", "s", "t"];
    const MODES: [u32; 5] = [0o700, 0o711, 0o750, 0o755, 0o775];
    let leak = |s: String| -> &'static str { Box::leak(s.into_boxed_str()) };
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut implied = 0;
    for round in 0..200 {
        let nlayers = 2 + rng.below(5) as usize;
        let mut layers = Vec::new();
        for _ in 0..nlayers {
            let mut m: Vec<M> = Vec::new();
            let mut late: Vec<M> = Vec::new();
            let mut kinds: BTreeMap<String, bool> = BTreeMap::new();
            for _ in 0..1 + rng.below(8) {
                let dir = DIRS[rng.below(DIRS.len() as u64) as usize];
                let path = format!("{dir}/{}", LEAVES[rng.below(5) as usize]);
                let parts: Vec<&str> = dir.split('/').collect();
                let parents: Vec<String> =
                    (1..=parts.len()).map(|n| parts[..n].join("/")).collect();
                if kinds.contains_key(&path) || parents.iter().any(|p| kinds.get(p) == Some(&false))
                {
                    continue;
                }
                for p in parents {
                    if let std::collections::btree_map::Entry::Vacant(v) = kinds.entry(p) {
                        let mode = MODES[rng.below(5) as usize];
                        match rng.below(3) {
                            0 => implied += 1,
                            1 => late.push(M::Dir(leak(v.key().clone()), mode)),
                            _ => m.push(M::Dir(leak(v.key().clone()), mode)),
                        }
                        v.insert(true);
                    }
                }
                let data = format!("{round}:{path}:{}", rng.below(3)).into_bytes();
                let member = match rng.below(6) {
                    0 => M::Whiteout(leak(path.clone())),
                    1 => M::Symlink(leak(path.clone()), "../t"),
                    2 => M::Dir(leak(path.clone()), MODES[rng.below(5) as usize]),
                    3 => M::File(path.clone(), 0o600, data),
                    _ => M::File(path.clone(), 0o644, data),
                };
                kinds.insert(path, matches!(member, M::Dir(..)));
                m.push(member);
            }
            if rng.below(3) == 0 {
                // An opaque marker, its directory listed or not.
                let d = DIRS[rng.below(DIRS.len() as u64) as usize];
                let parts: Vec<&str> = d.split('/').collect();
                if (1..=parts.len()).all(|n| kinds.get(&parts[..n].join("/")) != Some(&false)) {
                    m.push(M::Opaque(leak(d.to_string())));
                }
            }
            m.extend(late);
            layers.push(m);
        }
        check(&layers);
    }
    assert!(implied > 100, "only {implied} implied directories");
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

/// Where the page at `offset` of `inode` is lent from: (region key, region length, offset in
/// the region, the page's bytes), or None when the file lends no pages.
fn lent_page(inode: &Arc<dyn Inode>, offset: u64) -> Option<(u64, u64, u64, Vec<u8>)> {
    let m = inode.mappable()?;
    match m.translate(offset, false).unwrap() {
        ::fs::vfs::mappable::Translation::Region { region, offset } => {
            assert!(offset + 4096 <= region.len);
            // SAFETY: `region` is readable memory of `region.len` bytes kept mapped by
            // `region.owner`, which lives until the end of this block; the page is inside it.
            let page = unsafe {
                std::slice::from_raw_parts(region.base.as_ptr().add(offset as usize), 4096)
            };
            Some((region.key, region.len, offset, page.to_vec()))
        }
        ::fs::vfs::mappable::Translation::Copy => None,
    }
}

/// mmap through the writable layer of a file not copied up maps the layer's own pages: the
/// overlay lends the very page the merged tree lends (the layer image's mapping, at the
/// file's data extent), with no copy; once the file is copied up (written), or another name
/// of it is, it lends nothing and mappings copy.
#[test]
fn layer_pages_are_lent_through_the_writable_layer_until_copy_up() {
    let t = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..3 * 4096 + 100).map(|i| (i * 7 % 251) as u8).collect();
    let (paths, index) = build(
        t.path(),
        &[
            vec![
                M::Dir("d", 0o755),
                M::File("d/big".into(), 0o644, data.clone()),
                M::File("d/linked".into(), 0o644, data.clone()),
                M::Hard("d/other", "d/linked"),
            ],
            vec![M::Dir("d", 0o755), file("d/top", b"t")],
        ],
    );
    let cfs = ContainerFs::open(&paths, &index).unwrap();
    let upper = ::fs::tmpfs::Tmpfs::new(::fs::dev::makedev(0, 98)).root();
    let root = cfs.writable_root(upper);
    let d = root.lookup(b"d").unwrap();
    let big = d.lookup(b"big").unwrap();
    let merged_big = cfs.root().lookup(b"d").unwrap().lookup(b"big").unwrap();

    // The layer's extent of d/big, read from the layer image itself.
    let layer0 = ::fs::imgfs::Image::open(&paths[0]).unwrap();
    let ino = layer0.lookup_path(b"d/big").unwrap().unwrap();
    let extent = layer0.data_extent(ino).unwrap().unwrap();
    for page in 0..4u64 {
        let through_overlay = lent_page(&big, page * 4096).expect("the overlay lends the page");
        let from_merged = lent_page(&merged_big, page * 4096).unwrap();
        assert_eq!(
            through_overlay, from_merged,
            "page {page}: not the layer's page"
        );
        let (_, region_len, offset, bytes) = through_overlay;
        assert_eq!(
            offset,
            extent.offset + page * 4096,
            "page {page}: offset in the layer"
        );
        assert_eq!(
            region_len,
            layer0.bytes().len().next_multiple_of(4096) as u64
        );
        let start = (page * 4096) as usize;
        let end = data.len().min(start + 4096);
        assert_eq!(&bytes[..end - start], &data[start..end]);
        assert!(
            bytes[end - start..].iter().all(|&b| b == 0),
            "page {page}: zero tail"
        );
    }
    assert!(
        lent_page(&big, 4 * 4096).is_none(),
        "past the end: nothing to lend"
    );

    // Copied up: the copy in memory is mapped by copying.
    big.write_at(0, b"changed").unwrap();
    assert!(
        big.mappable().is_none(),
        "a copied-up file lends no layer pages"
    );
    assert!(d.lookup(b"big").unwrap().mappable().is_none());
    // A hard link: writing one name copies the file up for both names.
    let other = d.lookup(b"other").unwrap();
    assert!(lent_page(&other, 0).is_some());
    d.lookup(b"linked").unwrap().write_at(0, b"x").unwrap();
    assert!(d.lookup(b"other").unwrap().mappable().is_none());
    // The merged tree below is unchanged and still lends the layer's pages.
    assert_eq!(lent_page(&merged_big, 0).unwrap().3[..7], data[..7]);
}
