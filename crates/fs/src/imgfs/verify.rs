//! `verify`: every checksum and every rule of `docs/imgfs-format.md`, stopping at the first
//! fault. O(image size); memory O(inodes).

use std::collections::VecDeque;

use sha2::Digest as _;

use super::error::{hex, Fault, ImageError};
use super::format::{
    page_round_up, valid_name, valid_xattr_name, FileType, ENTRY_WHITEOUT, HEADER_SIZE,
    INODE_IMPLIED, INODE_OPAQUE, MAX_DEPTH, MAX_SYMLINK, MAX_XATTR_LIST, PAGE_SIZE, PERM_MASK,
    ROOT_INO, S_IFMT,
};
use super::reader::{Image, Ino};

/// What `verify` found in a good image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub inodes: u64,
    pub directories: u64,
    pub regular_files: u64,
    pub symlinks: u64,
    pub devices: u64,
    pub fifos_and_sockets: u64,
    pub entries: u64,
    pub whiteouts: u64,
    pub opaque_dirs: u64,
    pub xattr_records: u64,
    pub extents: u64,
    /// Bytes of file data stored (each extent once, without padding).
    pub data_bytes: u64,
    /// Depth of the deepest directory below the root.
    pub max_depth: usize,
}

/// Checks `image` completely. `progress` is called with the number of data bytes hashed so
/// far, after each extent.
pub fn verify(image: &Image, progress: &mut dyn FnMut(u64)) -> Result<Summary, ImageError> {
    let h = image.header().clone();
    let mut sum = Summary::default();

    // The header page past the header, and the compatible features.
    if h.features_compat != 0 {
        return Err(image.err(Fault::Header(format!(
            "unknown compatible features {:#x}",
            h.features_compat
        ))));
    }
    let pad = image
        .slice(HEADER_SIZE as u64, PAGE_SIZE - HEADER_SIZE as u64)
        .ok_or_else(|| image.err(Fault::Header("header page truncated".into())))?;
    if pad.iter().any(|&b| b != 0) {
        return Err(image.err(Fault::Header(
            "header page is not zero after the header".into(),
        )));
    }
    image.check_metadata()?;

    // Extents: packed, page-aligned, zero tails, digests.
    let mut expected = h.data_offset;
    let mut hashed = 0u64;
    for index in 0..h.extent_count {
        let bad = |what: String| image.err(Fault::Extent { index, what });
        let x = image
            .extent_record(index)
            .ok_or_else(|| bad("record outside the extent table".into()))?;
        if x.length == 0 {
            return Err(bad("empty extent".into()));
        }
        if x.offset != expected {
            return Err(bad(format!(
                "at {:#x}, expected {:#x} (extents overlap or leave a gap)",
                x.offset, expected
            )));
        }
        let padded = page_round_up(x.length).ok_or_else(|| bad("absurd length".into()))?;
        let end = x
            .offset
            .checked_add(padded)
            .filter(|&e| e <= h.metadata_offset)
            .ok_or_else(|| {
                bad(format!(
                    "{:#x}+{:#x} past the end of the data region ({:#x})",
                    x.offset, x.length, h.metadata_offset
                ))
            })?;
        let all = image
            .slice(x.offset, padded)
            .ok_or_else(|| bad("outside the image".into()))?;
        let (data, tail) = all.split_at(usize::try_from(x.length).unwrap_or(all.len()));
        if tail.iter().any(|&b| b != 0) {
            return Err(bad("bytes after the end of the data are not zero".into()));
        }
        let digest: [u8; 32] = sha2::Sha256::digest(data).into();
        if digest != x.sha256 {
            return Err(bad(format!(
                "data checksum mismatch (stored {}, computed {})",
                hex(&x.sha256),
                hex(&digest)
            )));
        }
        hashed += x.length;
        progress(hashed);
        expected = end;
    }
    if expected != h.metadata_offset {
        return Err(image.err(Fault::Structure(format!(
            "extents end at {expected:#x} but the data region ends at {:#x}",
            h.metadata_offset
        ))));
    }
    sum.extents = h.extent_count;
    sum.data_bytes = hashed;

    // Inodes, one by one.
    for n in 1..=h.inode_count {
        verify_inode(image, n, &mut sum)?;
    }
    sum.inodes = h.inode_count;

    // The tree: breadth-first from the root, each directory reached once.
    let count = usize::try_from(h.inode_count)
        .map_err(|_| image.err(Fault::Header("too many inodes".into())))?;
    let mut refs = vec![0u32; count + 1];
    let mut reached_dir = vec![false; count + 1];
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    let mut queue: VecDeque<(Ino, usize)> = VecDeque::new();
    queue.push_back((ROOT_INO, 0));
    if let Some(r) = reached_dir.get_mut(ROOT_INO as usize) {
        *r = true;
    }
    while let Some((dir, depth)) = queue.pop_front() {
        sum.max_depth = sum.max_depth.max(depth);
        let rec = image.inode_record(u64::from(dir))?;
        if rec.size > 0 {
            ranges.push((rec.location, rec.size));
        }
        let mut subdirs = 0u64;
        let mut prev: Option<&[u8]> = None;
        for (i, e) in image.read_dir(dir)?.enumerate() {
            let e = e?;
            let index = rec.location + i as u64;
            let bad = |what: String| {
                image.err(Fault::Entry {
                    dir: u64::from(dir),
                    index,
                    what,
                })
            };
            let raw = image
                .entry_record(index)
                .ok_or_else(|| bad("record outside the entry table".into()))?;
            if raw.reserved != 0 || raw.flags & !ENTRY_WHITEOUT != 0 {
                return Err(bad("reserved bits set".into()));
            }
            if !valid_name(e.name) {
                return Err(bad(format!(
                    "invalid name {:?}",
                    e.name.escape_ascii().to_string()
                )));
            }
            if let Some(p) = prev {
                if p >= e.name {
                    return Err(bad(format!(
                        "{:?} not sorted after {:?}",
                        e.name.escape_ascii().to_string(),
                        p.escape_ascii().to_string()
                    )));
                }
            }
            prev = Some(e.name);
            if e.whiteout {
                sum.whiteouts += 1;
                continue;
            }
            let target = image.attrs(e.ino)?;
            if Some(target.file_type) != e.file_type {
                return Err(bad(format!(
                    "type {:?} but inode {} is {:?}",
                    e.file_type, e.ino, target.file_type
                )));
            }
            let slot = refs
                .get_mut(e.ino as usize)
                .ok_or_else(|| bad("inode out of range".into()))?;
            *slot = slot.saturating_add(1);
            if e.ino == ROOT_INO {
                return Err(bad("refers to the root directory (a cycle)".into()));
            }
            if target.file_type == FileType::Directory {
                subdirs += 1;
                let seen = reached_dir
                    .get_mut(e.ino as usize)
                    .ok_or_else(|| bad("inode out of range".into()))?;
                if *seen {
                    return Err(bad(format!(
                        "directory inode {} reached a second time (a cycle or a directory hard link)",
                        e.ino
                    )));
                }
                *seen = true;
                let parent = image.parent(e.ino)?;
                if parent != dir {
                    return Err(bad(format!(
                        "directory inode {} names {parent} as its parent",
                        e.ino
                    )));
                }
                if depth + 1 > MAX_DEPTH {
                    return Err(bad(format!("deeper than {MAX_DEPTH} directories")));
                }
                queue.push_back((e.ino, depth + 1));
            }
        }
        sum.entries += rec.size;
        let want = subdirs + 2;
        if u64::from(rec.nlink) != want {
            return Err(image.err(Fault::Inode {
                ino: u64::from(dir),
                what: format!("directory nlink {} but {want} expected", rec.nlink),
            }));
        }
    }
    if image.parent(ROOT_INO)? != ROOT_INO {
        return Err(image.err(Fault::Inode {
            ino: u64::from(ROOT_INO),
            what: "the root's parent is not itself".into(),
        }));
    }
    for n in 2..=count {
        let r = refs.get(n).copied().unwrap_or(0);
        if r == 0 {
            return Err(image.err(Fault::Inode {
                ino: n as u64,
                what: "not reachable from the root".into(),
            }));
        }
        let rec = image.inode_record(n as u64)?;
        if rec.mode & S_IFMT != FileType::Directory.mode_bits() && rec.nlink != r {
            return Err(image.err(Fault::Inode {
                ino: n as u64,
                what: format!("nlink {} but {r} entries refer to it", rec.nlink),
            }));
        }
    }
    ranges.sort_unstable();
    let mut next = 0u64;
    for (start, len) in ranges {
        if start != next {
            return Err(image.err(Fault::Structure(format!(
                "entry table: directories' entries overlap or leave a gap at entry {next}"
            ))));
        }
        next = start + len;
    }
    if next != h.entry_count {
        return Err(image.err(Fault::Structure(format!(
            "entry table: entries {next}..{} belong to no directory",
            h.entry_count
        ))));
    }
    Ok(sum)
}

fn verify_inode(image: &Image, n: u64, sum: &mut Summary) -> Result<(), ImageError> {
    let bad = |what: String| image.err(Fault::Inode { ino: n, what });
    let h = image.header();
    let r = image.inode_record(n)?;
    let ino = Ino::try_from(n).map_err(|_| image.err(Fault::BadIno(n)))?;
    let a = image.attrs(ino)?;
    for (what, ns) in [
        ("atime", r.atime_nsec),
        ("mtime", r.mtime_nsec),
        ("ctime", r.ctime_nsec),
    ] {
        if ns >= 1_000_000_000 {
            return Err(bad(format!("{what} nanoseconds {ns} out of range")));
        }
    }
    if r.reserved != 0 {
        return Err(bad("reserved field is not zero".into()));
    }
    if r.mode & !(S_IFMT | PERM_MASK) != 0 {
        return Err(bad(format!("bad mode {:#o}", r.mode)));
    }
    let is_dir = a.file_type == FileType::Directory;
    if r.flags & !(INODE_OPAQUE | INODE_IMPLIED) != 0 || (!is_dir && r.flags != 0) {
        return Err(bad(format!("bad flags {:#x}", r.flags)));
    }
    if !is_dir && r.parent != 0 {
        return Err(bad("a parent on a non-directory".into()));
    }
    let is_dev = matches!(a.file_type, FileType::CharDevice | FileType::BlockDevice);
    if !is_dev && r.rdev != 0 {
        return Err(bad("a device number on a non-device".into()));
    }
    match a.file_type {
        FileType::Regular => {
            sum.regular_files += 1;
            if r.size == 0 {
                if r.location != 0 {
                    return Err(bad("empty file with an extent".into()));
                }
            } else {
                image.file_bytes(ino)?;
            }
        }
        FileType::Directory => {
            sum.directories += 1;
            if a.opaque {
                sum.opaque_dirs += 1;
            }
            image.dir_len(ino)?;
        }
        FileType::Symlink => {
            sum.symlinks += 1;
            let t = image.readlink(ino)?;
            if t.contains(&0) || t.len() > MAX_SYMLINK {
                return Err(bad("symlink target holds a NUL".into()));
            }
        }
        _ => {
            if is_dev {
                sum.devices += 1;
            } else {
                sum.fifos_and_sockets += 1;
            }
            if r.size != 0 || r.location != 0 {
                return Err(bad("size or location on a special file".into()));
            }
        }
    }
    if r.xattr_count == 0 && r.xattr_start != 0 {
        return Err(bad("xattr start without xattrs".into()));
    }
    let mut list = 0usize;
    let mut prev: Option<&[u8]> = None;
    for (i, x) in image.xattrs(ino)?.enumerate() {
        let (name, _) = x?;
        let index = u64::from(r.xattr_start) + i as u64;
        let raw = image
            .xattr_record(index)
            .ok_or_else(|| bad(format!("xattr {index}: outside the table")))?;
        if raw.reserved != 0 {
            return Err(bad(format!("xattr {index}: reserved field is not zero")));
        }
        if !valid_xattr_name(name) {
            return Err(bad(format!(
                "xattr {index}: invalid name {:?}",
                name.escape_ascii().to_string()
            )));
        }
        if let Some(p) = prev {
            if p >= name {
                return Err(bad(format!("xattr {index}: names not sorted")));
            }
        }
        prev = Some(name);
        list += name.len() + 1;
        if list > MAX_XATTR_LIST {
            return Err(bad("xattr names over 64 KiB".into()));
        }
    }
    sum.xattr_records = h.xattr_count;
    Ok(())
}
