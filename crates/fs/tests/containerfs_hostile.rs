//! Hostile merged indexes: crafted faults (truncation, bad magic, version and checksums,
//! tables out of place, directory cycles, names out of order, entries pointing outside the
//! tables or at the wrong kind of layer inode) must each be refused with an error naming
//! the index, and a deterministic mutation test re-seals thousands of damaged indexes and
//! walks whatever opens: nothing may panic, read outside the file or loop.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ::fs::containerfs::index::{self, Index, DIR_SIZE, ENTRY_SIZE, HEADER_SIZE};
use ::fs::containerfs::{write_index, ContainerFs};
use ::fs::imgfs::{build_from_tar, BuildOptions};
use ::fs::vfs::Inode;

fn tarball(members: &[(&str, tar::EntryType, &[u8], &str)]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for &(path, kind, data, link) in members {
        common::tar_member(&mut b, path, kind, 0o755, data, link).unwrap();
    }
    b.into_inner().unwrap()
}

struct Base {
    dir: tempfile::TempDir,
    layers: Vec<PathBuf>,
    bytes: Vec<u8>,
}

/// Three layers with directories at several depths, whiteouts, an opaque directory, a
/// symlink and hard links.
fn base() -> Base {
    use tar::EntryType as T;
    let dir = tempfile::tempdir().unwrap();
    let tars = [
        tarball(&[
            ("etc/", T::Directory, b"", ""),
            ("etc/a", T::Regular, b"a", ""),
            ("etc/b", T::Regular, b"bb", ""),
            ("usr/", T::Directory, b"", ""),
            ("usr/lib/", T::Directory, b"", ""),
            ("usr/lib/x", T::Regular, &[0u8; 5000], ""),
            ("usr/lib/y", T::Link, b"", "usr/lib/x"),
        ]),
        tarball(&[
            ("etc/", T::Directory, b"", ""),
            ("etc/.wh.a", T::Regular, b"", ""),
            ("etc/c", T::Symlink, b"", "b"),
            ("usr/", T::Directory, b"", ""),
            ("usr/.wh..wh..opq", T::Regular, b"", ""),
            ("usr/bin/", T::Directory, b"", ""),
            ("usr/bin/sh", T::Regular, b"#!", ""),
        ]),
        tarball(&[
            ("var/", T::Directory, b"", ""),
            ("var/log", T::Regular, b"l", ""),
        ]),
    ];
    let mut layers = Vec::new();
    for (i, t) in tars.iter().enumerate() {
        let p = dir.path().join(format!("l{i}.img"));
        build_from_tar(&t[..], "l.tar", &p, &BuildOptions::default(), None).unwrap();
        layers.push(p);
    }
    let out = dir.path().join("good.cfs");
    let refs: Vec<&Path> = layers.iter().map(|p| p.as_path()).collect();
    write_index(&refs, &out).unwrap();
    let bytes = std::fs::read(&out).unwrap();
    Base { dir, layers, bytes }
}

/// Every `Inode` call on at most 2,000 files of the tree: errors are fine, panics are not.
fn exercise(root: &Arc<dyn Inode>) {
    let mut todo = vec![root.clone()];
    let mut seen = 0;
    let mut buf = vec![0u8; 4096];
    while let Some(dir) = todo.pop() {
        let _ = dir.stat();
        let _ = dir.statfs();
        let _ = dir.listxattr();
        let _ = dir.lookup(b"missing");
        let Ok(entries) = dir.readdir() else { continue };
        for e in entries.into_iter().take(500) {
            seen += 1;
            if seen > 2000 {
                return;
            }
            let Ok(child) = dir.lookup(&e.name) else {
                continue;
            };
            let _ = child.stat();
            let _ = child.read_at(0, &mut buf);
            let _ = child.readlink();
            let _ = child.getxattr(b"user.x");
            if let Some(m) = child.mappable() {
                let _ = m.translate(0, false);
                let _ = m.map_internal(0, 100);
            }
            if child.file_type() == ::fs::vfs::FileType::Directory {
                todo.push(child);
            }
        }
    }
}

/// Opens `bytes` as an index of the base layers; the error text, if it is refused.
fn open(base: &Base, name: &str, bytes: &[u8]) -> Result<ContainerFs, String> {
    let path = base.dir.path().join(format!("{name}.cfs"));
    std::fs::write(&path, bytes).unwrap();
    let r = ContainerFs::open(&base.layers, &path).map_err(|e| e.to_string());
    if let Ok(cfs) = &r {
        exercise(&cfs.root());
    }
    r
}

fn refused(base: &Base, name: &str, bytes: &[u8], what: &str) {
    let path = base.dir.path().join(format!("{name}.cfs"));
    match open(base, name, bytes) {
        Ok(_) => panic!("{name}: opened"),
        Err(e) => assert!(
            e.starts_with(&format!("{}: ", path.display())) && e.contains(what),
            "{name}: expected \"{}: ...{what}...\", got \"{e}\"",
            path.display()
        ),
    }
}

fn header(b: &[u8]) -> index::Header {
    Index::from_bytes("x", b.to_vec()).unwrap().header().clone()
}

fn patch(b: &[u8], off: u64, value: &[u8]) -> Vec<u8> {
    let mut b = b.to_vec();
    let off = off as usize;
    b[off..off + value.len()].copy_from_slice(value);
    index::reseal(&mut b);
    b
}

#[test]
fn the_good_index_opens_and_walks() {
    let b = base();
    let cfs = open(&b, "good2", &b.bytes).unwrap();
    let root = cfs.root();
    let mut names: Vec<_> = root
        .readdir()
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    names.sort();
    assert_eq!(names, [b"etc".to_vec(), b"usr".to_vec(), b"var".to_vec()]);
}

#[test]
fn truncated_and_unsealed() {
    let b = base();
    for len in [0, 1, 8, 255, 256, 300, b.bytes.len() - 1] {
        let what = if len < HEADER_SIZE { "too short" } else { "" };
        refused(&b, &format!("trunc{len}"), &b.bytes[..len], what);
    }
    let mut bad = b.bytes.clone();
    bad[0] ^= 1;
    refused(&b, "magic", &bad, "not a ContainerFS index");
    let bad = patch(&b.bytes, 8, &2u32.to_le_bytes());
    refused(&b, "version", &bad, "unsupported version 2");
    let mut bad = b.bytes.clone();
    bad[100] ^= 1;
    refused(&b, "header-sum", &bad, "header checksum");
    let mut bad = b.bytes.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    refused(&b, "body-sum", &bad, "body checksum");
    let mut longer = b.bytes.clone();
    longer.push(0);
    index::reseal(&mut longer);
    refused(&b, "longer", &longer, "but the header says");
}

#[test]
fn crafted_structural_faults() {
    let b = base();
    let h = header(&b.bytes);
    let dir_at = |d: u64, field: u64| h.dir_table_offset + d * DIR_SIZE as u64 + field;
    let entry_at = |e: u64, field: u64| h.entry_table_offset + e * ENTRY_SIZE as u64 + field;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "layers0",
            patch(&b.bytes, 16, &0u32.to_le_bytes()),
            "layer count 0",
        ),
        (
            "dircount",
            patch(&b.bytes, 48, &0u64.to_le_bytes()),
            "directory count 0",
        ),
        (
            "dirtable",
            patch(&b.bytes, 40, &(h.dir_table_offset + 8).to_le_bytes()),
            "directory table at",
        ),
        (
            "entries-huge",
            patch(&b.bytes, 64, &u64::MAX.to_le_bytes()),
            "above 2^32",
        ),
        (
            "root-parent",
            patch(&b.bytes, dir_at(0, 8), &1u32.to_le_bytes()),
            "root's parent",
        ),
        (
            "dir-layer",
            patch(&b.bytes, dir_at(1, 0), &7u32.to_le_bytes()),
            "layer 7",
        ),
        (
            "dir-ino0",
            patch(&b.bytes, dir_at(1, 4), &0u32.to_le_bytes()),
            "inode 0",
        ),
        (
            "dir-first",
            patch(&b.bytes, dir_at(1, 12), &9u32.to_le_bytes()),
            "entries start at",
        ),
        (
            "dir-count",
            patch(&b.bytes, dir_at(0, 16), &u32::MAX.to_le_bytes()),
            "past the end",
        ),
        (
            "dir-nlink",
            patch(&b.bytes, dir_at(0, 20), &9u32.to_le_bytes()),
            "link count 9",
        ),
        // Entry 0 of the root names directory 1 ("etc"): make it name the root (a cycle).
        (
            "cycle",
            patch(&b.bytes, entry_at(0, 12), &0u32.to_le_bytes()),
            "directory 0 out of range",
        ),
        (
            "dir-twice",
            patch(&b.bytes, entry_at(1, 12), &1u32.to_le_bytes()),
            "directory 1",
        ),
        (
            "name-range",
            patch(&b.bytes, entry_at(0, 0), &u32::MAX.to_le_bytes()),
            "name outside",
        ),
        (
            "name-empty",
            patch(&b.bytes, entry_at(0, 4), &0u16.to_le_bytes()),
            "invalid name",
        ),
        (
            "dtype",
            patch(&b.bytes, entry_at(2, 6), &[3]),
            "invalid type 3",
        ),
        (
            "reserved",
            patch(&b.bytes, entry_at(2, 7), &[1]),
            "reserved byte",
        ),
        (
            "entry-layer",
            patch(&b.bytes, entry_at(2, 8), &9u32.to_le_bytes()),
            "layer 9 out of range",
        ),
        (
            "reserved-header",
            patch(&b.bytes, 150, &[1]),
            "reserved header bytes",
        ),
    ];
    for (name, bytes, what) in cases {
        refused(&b, name, &bytes, what);
    }
    // Names out of order: swap the root's first two names' offsets.
    let e0 = Index::from_bytes("x", b.bytes.clone()).unwrap();
    let (n0, n1) = (
        e0.entry(0).unwrap().name.to_vec(),
        e0.entry(1).unwrap().name.to_vec(),
    );
    assert!(n0 < n1);
    let mut swapped = b.bytes.clone();
    let (a, c) = (entry_at(0, 0) as usize, entry_at(1, 0) as usize);
    let first: Vec<u8> = swapped[a..a + 6].to_vec();
    let second: Vec<u8> = swapped[c..c + 6].to_vec();
    swapped[a..a + 6].copy_from_slice(&second);
    swapped[c..c + 6].copy_from_slice(&first);
    index::reseal(&mut swapped);
    refused(&b, "order", &swapped, "strictly increasing");
}

/// An index that passes its own checks but points at layer inodes of the wrong kind (a
/// file where it says directory): the merged tree answers EIO for them, never a panic.
#[test]
fn entries_pointing_at_the_wrong_layer_inode_give_eio() {
    let b = base();
    let idx = Index::from_bytes("x", b.bytes.clone()).unwrap();
    let h = idx.header().clone();
    // Make every non-directory entry point at inode 1 (a layer's root directory).
    let mut bad = b.bytes.clone();
    for i in 0..h.entry_count {
        let e = idx.entry(i).unwrap();
        if e.d_type != index::DT_DIR {
            let at = (h.entry_table_offset + i * ENTRY_SIZE as u64 + 12) as usize;
            bad[at..at + 4].copy_from_slice(&1u32.to_le_bytes());
        }
    }
    index::reseal(&mut bad);
    let cfs = open(&b, "wrong-kind", &bad).unwrap();
    let etc = cfs.root().lookup(b"etc").unwrap();
    assert_eq!(etc.lookup(b"b").err(), Some(libc::EIO));
}

use common::Rng;

/// Random damage, re-sealed so it reaches the structural checks: whatever opens is walked.
#[test]
fn mutations_never_panic() {
    let b = base();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut opened = 0;
    for round in 0..3000 {
        let mut bytes = b.bytes.clone();
        for _ in 0..1 + rng.next() % 4 {
            let at = HEADER_SIZE + (rng.next() as usize) % (bytes.len() - HEADER_SIZE);
            bytes[at] = match rng.next() % 4 {
                0 => 0,
                1 => 0xff,
                2 => bytes[at].wrapping_add(1),
                _ => rng.next() as u8,
            };
        }
        index::reseal(&mut bytes);
        // In memory first (fast), then as a file with the layers for what opens.
        if Index::from_bytes("m", bytes.clone()).is_ok() {
            opened += 1;
            let _ = open(&b, &format!("m{round}"), &bytes);
        }
    }
    // Some damage (inside names, xattr-free bytes) leaves a valid index: those were walked.
    assert!(opened > 0);
}
