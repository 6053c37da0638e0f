//! Helpers for the fuzz target and the hostile-image tests: call every reader entry point on
//! every inode (and every VFS operation on every file), and re-seal a damaged image's checksums so that damage reaches the structural
//! checks instead of stopping at the header digest.

use sha2::Digest as _;

use super::format::{Header, HEADER_HASHED, HEADER_SIZE};
use super::reader::Image;

/// Calls every reader entry point on every inode of `image` (at most 10,000 inodes and
/// 1,000 entries per directory), ignoring the errors: whatever the image holds, this must
/// return without a panic, an out-of-bounds read or an endless loop.
pub fn exercise(image: &Image) {
    let _ = super::verify(image, &mut |_| {});
    let _ = super::inspect(image, &mut std::io::sink());
    let _ = image.check_metadata();
    let _ = image.lookup_path(b"a/../b/./c");
    let mut buf = vec![0u8; 5000];
    let n = image.inode_count().min(10_000) as u32;
    for ino in 0..=n.saturating_add(1) {
        let _ = image.attrs(ino);
        let _ = image.is_opaque(ino);
        let _ = image.parent(ino);
        let _ = image.dir_len(ino);
        if let Ok(rd) = image.read_dir(ino) {
            for e in rd.take(1000).flatten() {
                let _ = image.lookup(ino, e.name);
                let _ = image.lookup_entry(ino, e.name);
            }
        }
        let _ = image.lookup(ino, b"x");
        let _ = image.readlink(ino);
        if let Ok(xs) = image.xattrs(ino) {
            for (name, _) in xs.take(1000).flatten() {
                let _ = image.get_xattr(ino, name);
            }
        }
        let _ = image.get_xattr(ino, b"user.x");
        if let Ok(Some(x)) = image.data_extent(ino) {
            let _ = image.slice(x.offset, x.mapped_len);
            for off in [0, x.len / 2, x.len.saturating_sub(1), x.len, u64::MAX] {
                let _ = image.read(ino, off, &mut buf);
            }
        }
        let _ = image.file_bytes(ino);
    }
}

/// Walks `bytes`, opened as an image, through the VFS ([`super::ImgFs`]), mounted alone and
/// as an overlay layer: every `Inode` call on at most 10,000 files (a damaged image may make
/// its tree endless), ignoring the errors. Like [`exercise`], this must never panic.
pub fn exercise_vfs(bytes: &[u8]) {
    use crate::vfs::{Inode, Owner, SetAttr};
    use std::sync::Arc;
    for overlay_layer in [false, true] {
        let Ok(image) = Image::from_bytes("fuzz.img", bytes.to_vec()) else {
            return;
        };
        let opts = super::ImgFsOptions {
            dev: Some(1),
            overlay_layer,
        };
        let fs = super::ImgFs::new(image, opts);
        let mut todo: Vec<Arc<dyn Inode>> = vec![fs.root()];
        let mut seen = 0;
        let mut buf = vec![0u8; 5000];
        while let Some(inode) = todo.pop() {
            seen += 1;
            if seen > 10_000 {
                break;
            }
            let _ = inode.stat();
            let _ = inode.statfs();
            let _ = inode.readlink();
            let _ = inode.open(0);
            for off in [0, 4095, 4096, u64::MAX] {
                let _ = inode.read_at(off, &mut buf);
            }
            let _ = inode.seek_data_or_hole(0, true);
            for name in inode.listxattr().unwrap_or_default().iter().take(100) {
                let _ = inode.getxattr(name);
            }
            let _ = inode.getxattr(b"trusted.overlay.opaque");
            let _ = inode.setattr(&SetAttr::default());
            let _ = inode.create_tmpfile(0o600, Owner { uid: 0, gid: 0 }, false);
            let _ = inode.lookup(b"x");
            if let Ok(entries) = inode.readdir() {
                for e in entries.iter().take(1000) {
                    if let Ok(child) = inode.lookup(&e.name) {
                        todo.push(child);
                    }
                }
            }
        }
    }
}

/// Recomputes the metadata digest (when the header's metadata range lies inside `bytes`),
/// sets `image_size` to the length of `bytes` and recomputes the header digest.
pub fn reseal(bytes: &mut [u8]) {
    let Some(raw) = bytes.get(..HEADER_SIZE) else {
        return;
    };
    let Ok(raw) = <&[u8; HEADER_SIZE]>::try_from(raw) else {
        return;
    };
    let mut h = Header::decode(raw);
    h.image_size = bytes.len() as u64;
    let range = usize::try_from(h.metadata_offset).ok().and_then(|start| {
        let end = start.checked_add(usize::try_from(h.metadata_size).ok()?)?;
        bytes.get(start..end)
    });
    if let Some(meta) = range {
        h.metadata_sha256 = sha2::Sha256::digest(meta).into();
    }
    h.seal();
    let enc = h.encode();
    if let Some(dst) = bytes.get_mut(..HEADER_HASHED + 32) {
        dst.copy_from_slice(&enc);
    }
}

/// Appends one member to a layer tarball being built for a test: owner 0:0, a fixed mtime,
/// `link` as the link target of symlinks and hard links.
pub fn tar_member(
    b: &mut tar::Builder<Vec<u8>>,
    path: &str,
    kind: tar::EntryType,
    mode: u32,
    data: &[u8],
    link: &str,
) -> std::io::Result<()> {
    let mut h = tar::Header::new_gnu();
    h.set_path(path)?;
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_650_000_000);
    h.set_size(data.len() as u64);
    if !link.is_empty() {
        h.set_link_name(link)?;
    }
    h.set_cksum();
    b.append(&h, data)
}
