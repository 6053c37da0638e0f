//! Building an image from a directory or from a layer tarball.
//!
//! Both inputs become the same in-memory tree (metadata only), then one writer lays out the
//! image of `docs/imgfs-format.md`: header page, file data, metadata tables. File contents
//! are never held whole in memory: each is streamed to its final place in the output while its
//! SHA-256 is computed, and taken back if that content is already stored.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::os::unix::fs::{FileExt as _, FileTypeExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use sha2::Digest as _;

use super::format::{
    page_round_up, valid_name, valid_xattr_name, EntryRecord, ExtentRecord, FileType, Header,
    InodeRecord, XattrRecord, ENTRY_SIZE, ENTRY_WHITEOUT, EXTENT_SIZE, HEADER_SIZE, INODE_IMPLIED,
    INODE_OPAQUE, INODE_SIZE, MAGIC, MAX_DEPTH, MAX_IMAGE_SIZE, MAX_INODES, MAX_SYMLINK, MAX_TABLE,
    MAX_XATTR_LIST, MAX_XATTR_VALUE, PAGE_SIZE, PERM_MASK, ROOT_INO, VERSION, XATTR_SIZE,
};
use super::reader::Timespec;
use super::Progress;

/// Why a build failed.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Reading the input or writing the image failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The input holds something the format cannot represent, or is malformed.
    #[error("{at}: {what}")]
    Input { at: String, what: String },
    /// The input is over one of the format's limits.
    #[error("over a limit of the format: {0}")]
    Limit(String),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BuildError + '_ {
    move |source| BuildError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Choices about what a build keeps.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    /// Keep each inode's own atime and ctime. By default (false) both are stored as the
    /// mtime, as mkfs.erofs and mksquashfs store only mtimes: a host tree's ctimes record
    /// when its files were last changed on this host (an unpacking, a copy) and cannot be
    /// set, and reading a symlink moves its atime, so two copies of one tree differ in them
    /// and would build to different bytes (OCI layer tarballs usually carry only mtimes).
    pub keep_host_times: bool,
}

/// What a build produced.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BuildSummary {
    pub inodes: u64,
    pub entries: u64,
    pub whiteouts: u64,
    pub regular_files: u64,
    /// Distinct contents stored.
    pub extents: u64,
    /// Non-empty regular files whose content was already stored.
    pub deduplicated: u64,
    /// Bytes of file data stored (without page padding).
    pub data_bytes: u64,
    pub image_size: u64,
}

// ---------------------------------------------------------------------------------------
// The in-memory tree.

#[derive(Debug, Clone, Default)]
struct Meta {
    perm: u32,
    uid: u32,
    gid: u32,
    atime: Timespec,
    mtime: Timespec,
    ctime: Timespec,
    xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Meta {
    fn implicit_dir() -> Meta {
        Meta {
            perm: 0o755,
            ..Meta::default()
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Child {
    Node(usize),
    Whiteout,
}

#[derive(Debug, Default)]
struct Dir {
    children: BTreeMap<Vec<u8>, Child>,
    /// Names this layer whites out although it also holds them (see the format's OCI rules).
    whited: BTreeSet<Vec<u8>>,
    opaque: bool,
    /// Made only because a member below it needs it (a tarball without a member for it):
    /// stored with the `IMPLIED` flag so its made-up attributes don't hide a lower layer's.
    implied: bool,
}

#[derive(Debug)]
enum Kind {
    Dir(Dir),
    Regular {
        size: u64,
        extent: Option<u32>,
        source: Option<PathBuf>,
    },
    Symlink(Vec<u8>),
    Device(FileType, u64),
    Fifo,
    Socket,
}

impl Kind {
    fn file_type(&self) -> FileType {
        match self {
            Kind::Dir(_) => FileType::Directory,
            Kind::Regular { .. } => FileType::Regular,
            Kind::Symlink(_) => FileType::Symlink,
            Kind::Device(t, _) => *t,
            Kind::Fifo => FileType::Fifo,
            Kind::Socket => FileType::Socket,
        }
    }
}

#[derive(Debug)]
struct Node {
    meta: Meta,
    kind: Kind,
}

struct Tree {
    nodes: Vec<Node>,
}

const ROOT: usize = 0;

impl Tree {
    fn new(root: Meta) -> Tree {
        Tree {
            nodes: vec![Node {
                meta: root,
                kind: Kind::Dir(Dir::default()),
            }],
        }
    }

    fn add(&mut self, meta: Meta, kind: Kind) -> usize {
        self.nodes.push(Node { meta, kind });
        self.nodes.len() - 1
    }

    fn dir_mut(&mut self, id: usize) -> Option<&mut Dir> {
        match self.nodes.get_mut(id).map(|n| &mut n.kind) {
            Some(Kind::Dir(d)) => Some(d),
            _ => None,
        }
    }

    fn is_dir(&self, id: usize) -> bool {
        matches!(self.nodes.get(id).map(|n| &n.kind), Some(Kind::Dir(_)))
    }

    /// Puts `child` at `name` in directory `parent`. A node replaces what was there (a later
    /// tar member wins); a whiteout next to a real entry only marks the name as whited out.
    fn insert(&mut self, parent: usize, name: Vec<u8>, child: Child) {
        let Some(dir) = self.dir_mut(parent) else {
            return;
        };
        match (child, dir.children.get(&name)) {
            (Child::Whiteout, Some(Child::Node(_))) => {
                dir.whited.insert(name);
            }
            (Child::Node(_), Some(Child::Whiteout)) => {
                dir.whited.insert(name.clone());
                dir.children.insert(name, child);
            }
            _ => {
                dir.children.insert(name, child);
            }
        }
    }

    fn child(&self, dir: usize, name: &[u8]) -> Option<Child> {
        match self.nodes.get(dir).map(|n| &n.kind) {
            Some(Kind::Dir(d)) => d.children.get(name).copied(),
            _ => None,
        }
    }

    /// The directory at `components`, creating missing ones (mode 0755, owner 0, time 0).
    fn make_dirs(&mut self, components: &[Vec<u8>]) -> Result<usize, String> {
        let mut cur = ROOT;
        for c in components {
            cur = match self.child(cur, c) {
                Some(Child::Node(id)) if self.is_dir(id) => id,
                Some(Child::Node(_)) => {
                    return Err(format!("{} is not a directory", show(c)));
                }
                None | Some(Child::Whiteout) => {
                    let id = self.add(
                        Meta::implicit_dir(),
                        Kind::Dir(Dir {
                            implied: true,
                            ..Dir::default()
                        }),
                    );
                    self.insert(cur, c.clone(), Child::Node(id));
                    id
                }
            };
        }
        Ok(cur)
    }

    /// The node at `components`, if any.
    fn find(&self, components: &[Vec<u8>]) -> Option<usize> {
        let mut cur = ROOT;
        for c in components {
            match self.child(cur, c)? {
                Child::Node(id) => cur = id,
                Child::Whiteout => return None,
            }
        }
        Some(cur)
    }

    /// A directory both whited out and present in this layer replaces the lower one: it
    /// becomes opaque, and is not implied (applying the layer removes the lower one and
    /// makes this one, with these attributes, even if only a member below it names it).
    fn resolve_whiteouts(&mut self) {
        let mut opaque = Vec::new();
        for node in &self.nodes {
            if let Kind::Dir(d) = &node.kind {
                for name in &d.whited {
                    if let Some(Child::Node(id)) = d.children.get(name) {
                        opaque.push(*id);
                    }
                }
            }
        }
        for id in opaque {
            if let Some(d) = self.dir_mut(id) {
                d.opaque = true;
                d.implied = false;
            }
        }
    }
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// What a name in a layer means.
enum LayerName<'a> {
    Plain(&'a [u8]),
    Whiteout(&'a [u8]),
    Opaque,
    /// Other `.wh..wh.*` names (aufs bookkeeping): dropped.
    Ignored,
}

fn classify(name: &[u8]) -> LayerName<'_> {
    if name == b".wh..wh..opq" {
        LayerName::Opaque
    } else if name.starts_with(b".wh..wh.") {
        LayerName::Ignored
    } else if let Some(rest) = name.strip_prefix(b".wh.") {
        LayerName::Whiteout(rest)
    } else {
        LayerName::Plain(name)
    }
}

// ---------------------------------------------------------------------------------------
// Writing file data.

const CHUNK: usize = 1 << 20;

/// The most bytes of holes a GNU sparse member of a layer tar may have (they are stored
/// as zeros).
pub const MAX_SPARSE_HOLES: u64 = 256 << 20;

struct DataWriter<'a> {
    file: &'a File,
    path: &'a Path,
    /// End of the data written so far (page-aligned).
    end: u64,
    extents: Vec<ExtentRecord>,
    by_digest: HashMap<[u8; 32], u32>,
    buf: Vec<u8>,
    deduplicated: u64,
    progress: Option<&'a dyn Progress>,
}

impl<'a> DataWriter<'a> {
    fn new(file: &'a File, path: &'a Path, progress: Option<&'a dyn Progress>) -> Self {
        DataWriter {
            file,
            path,
            end: PAGE_SIZE,
            extents: Vec::new(),
            by_digest: HashMap::new(),
            buf: vec![0; CHUNK + PAGE_SIZE as usize],
            deduplicated: 0,
            progress,
        }
    }

    fn write_at(&self, buf: &[u8], at: u64) -> Result<(), BuildError> {
        self.file.write_all_at(buf, at).map_err(io_err(self.path))
    }

    fn known(&mut self, digest: &[u8; 32], size: u64) -> Option<u32> {
        let i = *self.by_digest.get(digest)?;
        let same = self.extents.get(i as usize)?.length == size;
        if same {
            self.deduplicated += 1;
            Some(i)
        } else {
            None
        }
    }

    /// Stores exactly `size` bytes from `r`; returns the extent (`None` for an empty file).
    /// `at` names the input in errors.
    fn add(&mut self, r: &mut dyn Read, size: u64, at: &str) -> Result<Option<u32>, BuildError> {
        if size == 0 {
            return Ok(None);
        }
        let start = self.end;
        let padded = page_round_up(size)
            .filter(|&p| start.checked_add(p).is_some_and(|e| e <= MAX_IMAGE_SIZE))
            .ok_or_else(|| BuildError::Limit(format!("{at}: image larger than 2^48 bytes")))?;
        let mut hasher = sha2::Sha256::new();
        let mut remaining = size;
        let mut pos = start;
        let mut first = true;
        while remaining > 0 {
            let want = usize::try_from(remaining.min(CHUNK as u64)).unwrap_or(CHUNK);
            let chunk = &mut self.buf[..want];
            r.read_exact(chunk).map_err(|e| BuildError::Input {
                at: at.to_string(),
                what: if e.kind() == io::ErrorKind::UnexpectedEof {
                    format!("shorter than its size {size}")
                } else {
                    format!("reading: {e}")
                },
            })?;
            hasher.update(&*chunk);
            remaining -= want as u64;
            if let Some(p) = self.progress {
                p.advance(want as u64);
            }
            if first && remaining == 0 {
                // The whole file fits in one chunk: look for it before writing anything.
                let digest: [u8; 32] = hasher.finalize().into();
                if let Some(i) = self.known(&digest, size) {
                    return Ok(Some(i));
                }
                let padded_len = usize::try_from(padded).unwrap_or(usize::MAX);
                self.buf[want..padded_len].fill(0);
                self.write_at(&self.buf[..padded_len], start)?;
                return self.push(start, size, padded, digest);
            }
            first = false;
            self.write_at(&self.buf[..want], pos)?;
            pos += want as u64;
        }
        let digest: [u8; 32] = hasher.finalize().into();
        if let Some(i) = self.known(&digest, size) {
            // Take it back: the next data (or the metadata) overwrites these bytes, and the
            // image is cut to its final length at the end.
            return Ok(Some(i));
        }
        let tail = (start + padded - pos) as usize;
        if tail > 0 {
            self.write_at(&vec![0u8; tail], pos)?;
        }
        self.push(start, size, padded, digest)
    }

    fn into_stored(self) -> Stored {
        Stored {
            end: self.end,
            extents: self.extents,
            deduplicated: self.deduplicated,
        }
    }

    fn push(
        &mut self,
        offset: u64,
        length: u64,
        padded: u64,
        digest: [u8; 32],
    ) -> Result<Option<u32>, BuildError> {
        let index = u32::try_from(self.extents.len())
            .ok()
            .filter(|&i| u64::from(i) < MAX_TABLE)
            .ok_or_else(|| BuildError::Limit("more than 2^32 - 1 distinct contents".into()))?;
        self.extents.push(ExtentRecord {
            offset,
            length,
            sha256: digest,
        });
        self.by_digest.insert(digest, index);
        self.end = offset + padded;
        Ok(Some(index))
    }
}

/// The data region as written.
struct Stored {
    end: u64,
    extents: Vec<ExtentRecord>,
    deduplicated: u64,
}

// ---------------------------------------------------------------------------------------
// The output file.

/// The image being written: a temporary file next to the output, renamed over it at the end
/// and removed if the build fails.
struct Output {
    tmp: PathBuf,
    out: PathBuf,
    file: File,
    done: bool,
}

impl Output {
    fn create(out: &Path) -> Result<Output, BuildError> {
        let name = out.file_name().ok_or_else(|| BuildError::Input {
            at: out.display().to_string(),
            what: "not a file name".into(),
        })?;
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".tmp{}", std::process::id()));
        let tmp = out.with_file_name(tmp_name);
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        Ok(Output {
            tmp,
            out: out.to_path_buf(),
            file,
            done: false,
        })
    }

    fn commit(mut self) -> Result<(), BuildError> {
        std::fs::rename(&self.tmp, &self.out).map_err(io_err(&self.out))?;
        self.done = true;
        Ok(())
    }
}

impl Drop for Output {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Numbering and the metadata tables.

struct Numbering {
    /// Node ids in inode order (inode n is `order[n - 1]`).
    order: Vec<usize>,
    /// Inode number of each node (0: not in the tree).
    ino_of: Vec<u32>,
    /// Entries referring to each node.
    refs: Vec<u32>,
    /// Parent inode of each directory node.
    parent: Vec<u32>,
}

/// Inode numbers breadth-first from the root, children in name order.
fn number(tree: &Tree) -> Result<Numbering, BuildError> {
    let n = tree.nodes.len();
    let mut num = Numbering {
        order: vec![ROOT],
        ino_of: vec![0; n],
        refs: vec![0; n],
        parent: vec![0; n],
    };
    let mut depth = vec![0usize; n];
    num.ino_of[ROOT] = ROOT_INO;
    num.parent[ROOT] = ROOT_INO;
    let mut qi = 0;
    while let Some(&id) = num.order.get(qi) {
        qi += 1;
        let Kind::Dir(d) = &tree.nodes[id].kind else {
            continue;
        };
        for child in d.children.values() {
            let Child::Node(c) = *child else { continue };
            num.refs[c] = num.refs[c].saturating_add(1);
            if num.ino_of[c] != 0 {
                continue;
            }
            if num.order.len() as u64 >= MAX_INODES {
                return Err(BuildError::Limit("more than 2^32 - 2 inodes".into()));
            }
            num.order.push(c);
            num.ino_of[c] = num.order.len() as u32;
            if tree.is_dir(c) {
                num.parent[c] = num.ino_of[id];
                depth[c] = depth[id] + 1;
                if depth[c] > MAX_DEPTH {
                    return Err(BuildError::Limit(format!(
                        "directories nested deeper than {MAX_DEPTH}"
                    )));
                }
            }
        }
    }
    Ok(num)
}

#[derive(Default)]
struct Strings {
    bytes: Vec<u8>,
    index: HashMap<Vec<u8>, u32>,
}

impl Strings {
    fn intern(&mut self, s: &[u8]) -> Result<u32, BuildError> {
        if let Some(&off) = self.index.get(s) {
            return Ok(off);
        }
        let off = u32::try_from(self.bytes.len())
            .ok()
            .filter(|_| (self.bytes.len() + s.len()) as u64 <= MAX_TABLE)
            .ok_or_else(|| BuildError::Limit("string table over 4 GiB".into()))?;
        self.bytes.extend_from_slice(s);
        self.index.insert(s.to_vec(), off);
        Ok(off)
    }
}

fn table_len(len: usize, what: &str) -> Result<u64, BuildError> {
    let n = len as u64;
    if n > MAX_TABLE {
        return Err(BuildError::Limit(format!("more than 2^32 - 1 {what}")));
    }
    Ok(n)
}

/// An inode's xattrs, sorted by name: inodes with equal sets share their records.
type XattrSet = Vec<(Vec<u8>, Vec<u8>)>;

/// Writes the metadata and the header after the data; renames the image into place.
fn finish(
    tree: &Tree,
    num: &Numbering,
    data: Stored,
    output: Output,
    opts: &BuildOptions,
) -> Result<BuildSummary, BuildError> {
    let mut strings = Strings::default();
    let mut inodes = Vec::with_capacity(num.order.len() * INODE_SIZE);
    let mut entries: Vec<u8> = Vec::new();
    let mut xattrs: Vec<u8> = Vec::new();
    let mut xattr_sets: HashMap<XattrSet, (u32, u32)> = HashMap::new();
    let mut sum = BuildSummary {
        inodes: num.order.len() as u64,
        extents: data.extents.len() as u64,
        deduplicated: data.deduplicated,
        data_bytes: data.extents.iter().map(|x| x.length).sum(),
        ..BuildSummary::default()
    };

    for &id in &num.order {
        let node = &tree.nodes[id];
        let m = &node.meta;
        let ft = node.kind.file_type();
        let (atime, ctime) = if opts.keep_host_times {
            (m.atime, m.ctime)
        } else {
            (m.mtime, m.mtime)
        };
        let mut rec = InodeRecord {
            mode: ft.mode_bits() | (m.perm & PERM_MASK),
            nlink: num.refs[id],
            uid: m.uid,
            gid: m.gid,
            atime_sec: atime.sec,
            atime_nsec: atime.nsec,
            mtime_sec: m.mtime.sec,
            mtime_nsec: m.mtime.nsec,
            ctime_sec: ctime.sec,
            ctime_nsec: ctime.nsec,
            ..InodeRecord::default()
        };
        match &node.kind {
            Kind::Dir(d) => {
                rec.location = (entries.len() / ENTRY_SIZE) as u64;
                rec.size = d.children.len() as u64;
                rec.parent = num.parent[id];
                if d.opaque {
                    rec.flags |= INODE_OPAQUE;
                }
                if d.implied {
                    rec.flags |= INODE_IMPLIED;
                }
                let mut subdirs = 0u32;
                for (name, child) in &d.children {
                    let name_len = u16::try_from(name.len()).unwrap_or(u16::MAX);
                    let name_offset = strings.intern(name)?;
                    let e = match *child {
                        Child::Node(c) => {
                            let t = tree.nodes[c].kind.file_type();
                            if t == FileType::Directory {
                                subdirs += 1;
                            }
                            EntryRecord {
                                ino: num.ino_of[c],
                                name_offset,
                                name_len,
                                dtype: t.dtype(),
                                flags: 0,
                                reserved: 0,
                            }
                        }
                        Child::Whiteout => {
                            sum.whiteouts += 1;
                            EntryRecord {
                                ino: 0,
                                name_offset,
                                name_len,
                                dtype: 0,
                                flags: ENTRY_WHITEOUT,
                                reserved: 0,
                            }
                        }
                    };
                    entries.extend_from_slice(&e.encode());
                }
                rec.nlink = subdirs.saturating_add(2);
            }
            Kind::Regular { size, extent, .. } => {
                sum.regular_files += 1;
                rec.size = *size;
                rec.location = u64::from(extent.unwrap_or(0));
            }
            Kind::Symlink(target) => {
                rec.size = target.len() as u64;
                rec.location = u64::from(strings.intern(target)?);
            }
            Kind::Device(_, rdev) => rec.rdev = *rdev,
            Kind::Fifo | Kind::Socket => {}
        }
        if !m.xattrs.is_empty() {
            let key: XattrSet = m
                .xattrs
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            let (start, count) = match xattr_sets.get(&key) {
                Some(&sc) => sc,
                None => {
                    let start = u32::try_from(xattrs.len() / XATTR_SIZE)
                        .map_err(|_| BuildError::Limit("too many xattrs".into()))?;
                    for (name, value) in &key {
                        let x = XattrRecord {
                            name_offset: strings.intern(name)?,
                            value_offset: strings.intern(value)?,
                            value_len: value.len() as u32,
                            name_len: name.len() as u16,
                            reserved: 0,
                        };
                        xattrs.extend_from_slice(&x.encode());
                    }
                    let sc = (start, key.len() as u32);
                    xattr_sets.insert(key, sc);
                    sc
                }
            };
            rec.xattr_start = start;
            rec.xattr_count = count;
        }
        inodes.extend_from_slice(&rec.encode());
    }

    let entry_count = table_len(entries.len() / ENTRY_SIZE, "directory entries")?;
    let xattr_count = table_len(xattrs.len() / XATTR_SIZE, "xattr records")?;
    let extent_count = table_len(data.extents.len(), "extents")?;
    sum.entries = entry_count;
    let mut meta = inodes;
    meta.extend_from_slice(&entries);
    meta.extend_from_slice(&xattrs);
    for x in &data.extents {
        meta.extend_from_slice(&x.encode());
    }
    let strings_at = meta.len() as u64;
    meta.extend_from_slice(&strings.bytes);

    let metadata_offset = data.end;
    let metadata_size = meta.len() as u64;
    let image_size = metadata_offset
        .checked_add(metadata_size)
        .filter(|&s| s <= MAX_IMAGE_SIZE)
        .ok_or_else(|| BuildError::Limit("image larger than 2^48 bytes".into()))?;
    let inode_table_offset = metadata_offset;
    let entry_table_offset = inode_table_offset + sum.inodes * INODE_SIZE as u64;
    let xattr_table_offset = entry_table_offset + entry_count * ENTRY_SIZE as u64;
    let extent_table_offset = xattr_table_offset + xattr_count * XATTR_SIZE as u64;
    let mut header = Header {
        magic: MAGIC,
        version: VERSION,
        header_size: HEADER_SIZE as u32,
        page_size: PAGE_SIZE as u32,
        image_size,
        data_offset: PAGE_SIZE,
        data_size: metadata_offset - PAGE_SIZE,
        metadata_offset,
        metadata_size,
        inode_table_offset,
        inode_count: sum.inodes,
        entry_table_offset,
        entry_count,
        xattr_table_offset,
        xattr_count,
        extent_table_offset,
        extent_count,
        string_table_offset: metadata_offset + strings_at,
        string_table_size: strings.bytes.len() as u64,
        inode_size: INODE_SIZE as u32,
        entry_size: ENTRY_SIZE as u32,
        xattr_size: XATTR_SIZE as u32,
        extent_size: EXTENT_SIZE as u32,
        root_ino: ROOT_INO,
        metadata_sha256: sha2::Sha256::digest(&meta).into(),
        ..Header::default()
    };
    debug_assert_eq!(
        header.string_table_offset,
        extent_table_offset + extent_count * EXTENT_SIZE as u64
    );
    header.seal();
    let mut page = vec![0u8; PAGE_SIZE as usize];
    page[..HEADER_SIZE].copy_from_slice(&header.encode());

    let f = &output.file;
    let p = output.tmp.clone();
    f.write_all_at(&meta, metadata_offset).map_err(io_err(&p))?;
    f.write_all_at(&page, 0).map_err(io_err(&p))?;
    f.set_len(image_size).map_err(io_err(&p))?;
    sum.image_size = image_size;
    output.commit()?;
    Ok(sum)
}

// ---------------------------------------------------------------------------------------
// From a directory.

fn timespec(sec: i64, nsec: i64) -> Timespec {
    Timespec {
        sec,
        nsec: u32::try_from(nsec).unwrap_or(0).min(999_999_999),
    }
}

fn read_xattrs(path: &Path) -> Result<BTreeMap<Vec<u8>, Vec<u8>>, BuildError> {
    let mut out = BTreeMap::new();
    let names = match xattr::list(path) {
        Ok(n) => n,
        Err(e) if e.raw_os_error() == Some(libc::ENOTSUP) => return Ok(out),
        Err(e) => return Err(io_err(path)(e)),
    };
    for name in names {
        // `xattr::get` does not follow symlinks (lgetxattr).
        if let Some(v) = xattr::get(path, &name).map_err(io_err(path))? {
            out.insert(name.as_bytes().to_vec(), v);
        }
    }
    check_xattrs(&out, &path.display().to_string())?;
    Ok(out)
}

fn check_xattrs(x: &BTreeMap<Vec<u8>, Vec<u8>>, at: &str) -> Result<(), BuildError> {
    let mut list = 0usize;
    for (name, value) in x {
        if !valid_xattr_name(name) {
            return Err(BuildError::Input {
                at: at.to_string(),
                what: format!("invalid xattr name {:?}", show(name)),
            });
        }
        if value.len() > MAX_XATTR_VALUE {
            return Err(BuildError::Limit(format!(
                "{at}: xattr {} over 64 KiB",
                show(name)
            )));
        }
        list += name.len() + 1;
    }
    if list > MAX_XATTR_LIST {
        return Err(BuildError::Limit(format!("{at}: xattr names over 64 KiB")));
    }
    Ok(())
}

fn meta_of(path: &Path, md: &std::fs::Metadata) -> Result<Meta, BuildError> {
    Ok(Meta {
        perm: md.mode() & PERM_MASK,
        uid: md.uid(),
        gid: md.gid(),
        atime: timespec(md.atime(), md.atime_nsec()),
        mtime: timespec(md.mtime(), md.mtime_nsec()),
        ctime: timespec(md.ctime(), md.ctime_nsec()),
        xattrs: read_xattrs(path)?,
    })
}

/// The names in directory `path` (without `.` and `..`), read without touching its atime
/// where the kernel allows (`O_NOATIME`: owner or CAP_FOWNER), so building an image leaves the
/// source as it was and a second build sees the same times.
fn list_dir(path: &Path) -> Result<Vec<Vec<u8>>, BuildError> {
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    let dir = match nix::dir::Dir::open(path, flags | OFlag::O_NOATIME, Mode::empty()) {
        Err(nix::errno::Errno::EPERM) => nix::dir::Dir::open(path, flags, Mode::empty()),
        r => r,
    }
    .map_err(|e| io_err(path)(e.into()))?;
    let mut names = Vec::new();
    for e in dir {
        let e = e.map_err(|e| io_err(path)(e.into()))?;
        let n = e.file_name().to_bytes();
        if n != b"." && n != b".." {
            names.push(n.to_vec());
        }
    }
    Ok(names)
}

/// Opens a regular file for reading without following a symlink and, where allowed, without
/// touching its atime.
fn open_noatime(path: &Path) -> io::Result<File> {
    let open = |flags| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(flags)
            .open(path)
    };
    match open(libc::O_NOFOLLOW | libc::O_NOATIME) {
        Err(e) if e.raw_os_error() == Some(libc::EPERM) => open(libc::O_NOFOLLOW),
        r => r,
    }
}

fn checked_name(name: &[u8], at: &Path) -> Result<Vec<u8>, BuildError> {
    if !valid_name(name) {
        return Err(BuildError::Input {
            at: at.display().to_string(),
            what: "name longer than 255 bytes".into(),
        });
    }
    Ok(name.to_vec())
}

/// Builds the image `out` from the directory tree at `src` (never following symlinks inside
/// it). `.wh.NAME` and `.wh..wh..opq` files are taken as OCI whiteouts and opaque markers.
pub fn build_from_dir(
    src: &Path,
    out: &Path,
    opts: &BuildOptions,
    progress: &dyn Progress,
) -> Result<BuildSummary, BuildError> {
    let root = src.canonicalize().map_err(io_err(src))?;
    let md = std::fs::symlink_metadata(&root).map_err(io_err(&root))?;
    if !md.is_dir() {
        return Err(BuildError::Input {
            at: root.display().to_string(),
            what: "not a directory".into(),
        });
    }
    progress.start("scanning", 0, false);
    let mut tree = Tree::new(meta_of(&root, &md)?);
    let mut links: HashMap<(u64, u64), usize> = HashMap::new();
    let mut total_bytes = 0u64;
    let mut stack = vec![(root.clone(), ROOT, 0usize)];
    while let Some((dir_path, dir_id, depth)) = stack.pop() {
        for name in list_dir(&dir_path)? {
            let path = dir_path.join(std::ffi::OsStr::from_bytes(&name));
            progress.advance(1);
            let name = match classify(&name) {
                LayerName::Plain(n) => n.to_vec(),
                LayerName::Opaque => {
                    if let Some(d) = tree.dir_mut(dir_id) {
                        d.opaque = true;
                    }
                    continue;
                }
                LayerName::Ignored => continue,
                LayerName::Whiteout(n) => {
                    let n = checked_name(n, &path)?;
                    tree.insert(dir_id, n, Child::Whiteout);
                    continue;
                }
            };
            let name = checked_name(&name, &path)?;
            let mut md = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
            let mut target = None;
            if md.file_type().is_symlink() {
                // readlink moves a symlink's atime (there is no O_NOATIME for it): read the
                // target first and the times after, so a second build sees the same times.
                let t = std::fs::read_link(&path).map_err(io_err(&path))?;
                target = Some(t.into_os_string().into_vec());
                md = std::fs::symlink_metadata(&path).map_err(io_err(&path))?;
            }
            let ft = md.file_type();
            if !ft.is_dir() && md.nlink() > 1 {
                if let Some(&id) = links.get(&(md.dev(), md.ino())) {
                    tree.insert(dir_id, name, Child::Node(id));
                    continue;
                }
            }
            let meta = meta_of(&path, &md)?;
            let kind = if ft.is_dir() {
                Kind::Dir(Dir::default())
            } else if ft.is_file() {
                total_bytes = total_bytes.saturating_add(md.len());
                Kind::Regular {
                    size: md.len(),
                    extent: None,
                    source: Some(path.clone()),
                }
            } else if ft.is_symlink() {
                let t = target.take().unwrap_or_default();
                if t.is_empty() || t.len() > MAX_SYMLINK {
                    return Err(BuildError::Input {
                        at: path.display().to_string(),
                        what: "symlink target longer than 4095 bytes".into(),
                    });
                }
                Kind::Symlink(t)
            } else if ft.is_char_device() {
                Kind::Device(FileType::CharDevice, md.rdev())
            } else if ft.is_block_device() {
                Kind::Device(FileType::BlockDevice, md.rdev())
            } else if ft.is_fifo() {
                Kind::Fifo
            } else {
                Kind::Socket
            };
            let is_dir = ft.is_dir();
            let id = tree.add(meta, kind);
            tree.insert(dir_id, name, Child::Node(id));
            if is_dir {
                if depth + 1 > MAX_DEPTH {
                    return Err(BuildError::Limit(format!(
                        "{}: deeper than {MAX_DEPTH} directories",
                        path.display()
                    )));
                }
                stack.push((path, id, depth + 1));
            } else if md.nlink() > 1 {
                links.insert((md.dev(), md.ino()), id);
            }
        }
    }
    progress.finish();
    tree.resolve_whiteouts();
    let num = number(&tree)?;

    let output = Output::create(out)?;
    progress.start("writing data", total_bytes, true);
    let mut data = DataWriter::new(&output.file, &output.tmp, Some(progress));
    for &id in &num.order {
        let Kind::Regular {
            size,
            source: Some(path),
            ..
        } = &tree.nodes[id].kind
        else {
            continue;
        };
        let (size, path) = (*size, path.clone());
        let mut f = open_noatime(&path).map_err(io_err(&path))?;
        let at = path.display().to_string();
        let extent = data.add(&mut f, size, &at)?;
        let mut probe = [0u8; 1];
        if f.read(&mut probe).map_err(io_err(&path))? != 0 {
            return Err(BuildError::Input {
                at,
                what: "file grew during the build".into(),
            });
        }
        if let Kind::Regular { extent: e, .. } = &mut tree.nodes[id].kind {
            *e = extent;
        }
    }
    progress.finish();
    let stored = data.into_stored();
    finish(&tree, &num, stored, output, opts)
}

// ---------------------------------------------------------------------------------------
// From a tar.

/// Splits a member path into components: drops `.`, empty components and a leading `/`;
/// refuses `..`.
fn components(path: &[u8], at: &str) -> Result<Vec<Vec<u8>>, BuildError> {
    let mut out = Vec::new();
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => {
                return Err(BuildError::Input {
                    at: at.to_string(),
                    what: "path with a .. component".into(),
                })
            }
            c => {
                if !valid_name(c) {
                    return Err(BuildError::Input {
                        at: at.to_string(),
                        what: "invalid name (over 255 bytes or holding NUL)".into(),
                    });
                }
                out.push(c.to_vec());
            }
        }
    }
    Ok(out)
}

/// Parses a PAX time, `[-]SECONDS[.FRACTION]`.
fn parse_pax_time(v: &[u8]) -> Option<Timespec> {
    let s = std::str::from_utf8(v).ok()?.trim();
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s),
    };
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let sec: i64 = int.parse().ok()?;
    let mut nsec: u32 = 0;
    for (i, b) in frac.bytes().take(9).enumerate() {
        nsec += u32::from(b - b'0') * 10u32.pow(8 - i as u32);
    }
    Some(if !neg {
        Timespec { sec, nsec }
    } else if nsec == 0 {
        Timespec { sec: -sec, nsec: 0 }
    } else {
        Timespec {
            sec: -sec - 1,
            nsec: 1_000_000_000 - nsec,
        }
    })
}

/// Counts bytes read from the archive file for the progress bar.
struct Counting<'a, R> {
    inner: R,
    progress: &'a dyn Progress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// Builds the image `out` from the layer tarball at `tar` (plain, gzip or zstd, detected
/// from its first bytes; `-` reads standard input), streaming it.
pub fn build_from_tar_file(
    tar: &Path,
    out: &Path,
    opts: &BuildOptions,
    progress: &dyn Progress,
) -> Result<BuildSummary, BuildError> {
    let name = tar.display().to_string();
    if tar == Path::new("-") {
        progress.start("reading tar", 0, true);
        let counting = Counting {
            inner: io::stdin().lock(),
            progress,
        };
        return build_from_tar(
            BufReader::with_capacity(CHUNK, counting),
            &name,
            out,
            opts,
            None,
        );
    }
    let f = File::open(tar).map_err(io_err(tar))?;
    let total = f.metadata().map(|m| m.len()).unwrap_or(0);
    progress.start("reading tar", total, true);
    let counting = Counting { inner: f, progress };
    let r = build_from_tar(
        BufReader::with_capacity(CHUNK, counting),
        &name,
        out,
        opts,
        None,
    );
    progress.finish();
    r
}

/// Builds the image `out` from a layer tarball read from `input` (plain, gzip or zstd);
/// `name` names the input in errors. `progress`, if given, advances by file data written.
pub fn build_from_tar<R: BufRead>(
    mut input: R,
    name: &str,
    out: &Path,
    opts: &BuildOptions,
    progress: Option<&dyn Progress>,
) -> Result<BuildSummary, BuildError> {
    let ioe = |e: io::Error| BuildError::Input {
        at: name.to_string(),
        what: e.to_string(),
    };
    let magic = input.fill_buf().map_err(ioe)?;
    if magic.starts_with(&[0x1f, 0x8b]) {
        build_tar_stream(
            flate2::bufread::MultiGzDecoder::new(input),
            name,
            out,
            opts,
            progress,
        )
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        let z = zstd::stream::read::Decoder::with_buffer(input).map_err(ioe)?;
        build_tar_stream(z, name, out, opts, progress)
    } else if magic.starts_with(b"BZh") || magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z']) {
        Err(BuildError::Input {
            at: name.to_string(),
            what: "bzip2 and xz layers are not supported (use plain, gzip or zstd)".into(),
        })
    } else {
        build_tar_stream(input, name, out, opts, progress)
    }
}

fn build_tar_stream<R: Read>(
    input: R,
    name: &str,
    out: &Path,
    opts: &BuildOptions,
    progress: Option<&dyn Progress>,
) -> Result<BuildSummary, BuildError> {
    let tar_err = |e: io::Error| BuildError::Input {
        at: name.to_string(),
        what: format!("bad tar archive: {e}"),
    };
    let output = Output::create(out)?;
    let mut data = DataWriter::new(&output.file, &output.tmp, progress);
    let mut tree = Tree::new(Meta::implicit_dir());
    // The root is implied until the tarball has a member for it (`./`).
    if let Some(d) = tree.dir_mut(ROOT) {
        d.implied = true;
    }
    // Bounds the members the tar crate reads whole (long names, PAX records).
    let mut archive = tar::Archive::new(super::targuard::TarGuard::new(input));
    for entry in archive.entries().map_err(tar_err)? {
        let mut entry = entry.map_err(tar_err)?;
        let raw_path = entry.path_bytes().into_owned();
        let at = format!("{name}: {}", show(&raw_path));
        let bad = |what: String| BuildError::Input {
            at: at.clone(),
            what,
        };
        let header = entry.header().clone();
        let etype = header.entry_type();
        if etype.is_pax_global_extensions() {
            continue;
        }

        // Metadata: ustar/GNU fields, overridden by PAX records.
        let mut xattrs = BTreeMap::new();
        let (mut atime, mut mtime, mut ctime) = (None, None, None);
        if let Some(pax) = entry.pax_extensions().map_err(tar_err)? {
            for ext in pax {
                let ext = ext.map_err(tar_err)?;
                let key = ext.key_bytes();
                let value = ext.value_bytes();
                match key {
                    b"mtime" => mtime = parse_pax_time(value),
                    b"atime" => atime = parse_pax_time(value),
                    b"ctime" => ctime = parse_pax_time(value),
                    _ => {
                        if let Some(x) = key.strip_prefix(b"SCHILY.xattr.") {
                            xattrs.insert(x.to_vec(), value.to_vec());
                        }
                    }
                }
            }
        }
        check_xattrs(&xattrs, &at)?;
        let mtime = match mtime {
            Some(t) => t,
            None => Timespec {
                sec: i64::try_from(header.mtime().map_err(tar_err)?).unwrap_or(i64::MAX),
                nsec: 0,
            },
        };
        let gnu_time = |t: Option<u64>| {
            t.filter(|&s| s != 0).map(|s| Timespec {
                sec: i64::try_from(s).unwrap_or(i64::MAX),
                nsec: 0,
            })
        };
        let gnu = header.as_gnu();
        let atime = atime
            .or_else(|| gnu_time(gnu.and_then(|g| g.atime().ok())))
            .unwrap_or(mtime);
        let ctime = ctime
            .or_else(|| gnu_time(gnu.and_then(|g| g.ctime().ok())))
            .unwrap_or(mtime);
        let uid = header.uid().map_err(tar_err)?;
        let gid = header.gid().map_err(tar_err)?;
        let meta = Meta {
            perm: header.mode().map_err(tar_err)? & PERM_MASK,
            uid: u32::try_from(uid).map_err(|_| bad(format!("uid {uid} over 2^32")))?,
            gid: u32::try_from(gid).map_err(|_| bad(format!("gid {gid} over 2^32")))?,
            atime,
            mtime,
            ctime,
            xattrs,
        };

        let mut comps = components(&raw_path, &at)?;
        if comps
            .iter()
            .rev()
            .skip(1)
            .any(|c| c.starts_with(b".wh..wh."))
        {
            // Inside an aufs bookkeeping directory (`.wh..wh.plnk/...`): dropped.
            continue;
        }
        let Some(last) = comps.pop() else {
            // The root itself ("./").
            if etype.is_dir() {
                tree.nodes[ROOT].meta = meta;
                if let Some(d) = tree.dir_mut(ROOT) {
                    d.implied = false;
                }
                continue;
            }
            return Err(bad("the root of the layer is not a directory".into()));
        };
        let parent = tree.make_dirs(&comps).map_err(&bad)?;
        let last = match classify(&last) {
            LayerName::Plain(n) => n.to_vec(),
            LayerName::Opaque => {
                if let Some(d) = tree.dir_mut(parent) {
                    d.opaque = true;
                }
                continue;
            }
            LayerName::Ignored => continue,
            LayerName::Whiteout(n) => {
                if !valid_name(n) {
                    return Err(bad("invalid whiteout name".into()));
                }
                tree.insert(parent, n.to_vec(), Child::Whiteout);
                continue;
            }
        };

        let kind = match etype {
            tar::EntryType::Directory => {
                if let Some(Child::Node(id)) = tree.child(parent, &last) {
                    if tree.is_dir(id) {
                        // A directory listed again (or after its contents): new metadata.
                        tree.nodes[id].meta = meta;
                        if let Some(d) = tree.dir_mut(id) {
                            d.implied = false;
                        }
                        continue;
                    }
                }
                Kind::Dir(Dir::default())
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let size = entry.size();
                if etype == tar::EntryType::GNUSparse {
                    // ImgFS stores every byte of a file: a sparse member's holes would be
                    // written out as zeros, so a few bytes of tar could make the builder
                    // write up to 2^48 bytes. Holes are allowed up to a bound.
                    let stored = header.entry_size().map_err(tar_err)?;
                    if size.saturating_sub(stored) > MAX_SPARSE_HOLES {
                        return Err(bad(format!(
                            "GNU sparse file of {size} bytes with {stored} bytes of data: \
                             holes over {MAX_SPARSE_HOLES} bytes are refused (ImgFS stores \
                             files whole)"
                        )));
                    }
                }
                let extent = data.add(&mut entry, size, &at)?;
                Kind::Regular {
                    size,
                    extent,
                    source: None,
                }
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| bad("hard link without a target".into()))?
                    .into_owned();
                let tcomps = components(&target, &at)?;
                let id = tree.find(&tcomps).ok_or_else(|| {
                    bad(format!(
                        "hard link to {}, which is not earlier in the layer",
                        show(&target)
                    ))
                })?;
                if tree.is_dir(id) {
                    return Err(bad("hard link to a directory".into()));
                }
                tree.insert(parent, last, Child::Node(id));
                continue;
            }
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name_bytes()
                    .ok_or_else(|| bad("symlink without a target".into()))?
                    .into_owned();
                if target.is_empty() || target.len() > MAX_SYMLINK || target.contains(&0) {
                    return Err(bad("symlink target empty or over 4095 bytes".into()));
                }
                Kind::Symlink(target)
            }
            tar::EntryType::Char | tar::EntryType::Block => {
                let major = header.device_major().map_err(tar_err)?.unwrap_or(0);
                let minor = header.device_minor().map_err(tar_err)?.unwrap_or(0);
                let t = if etype == tar::EntryType::Char {
                    FileType::CharDevice
                } else {
                    FileType::BlockDevice
                };
                Kind::Device(t, libc::makedev(major, minor))
            }
            tar::EntryType::Fifo => Kind::Fifo,
            other => {
                tracing::warn!("{at}: skipping tar member of type {other:?}");
                continue;
            }
        };
        let id = tree.add(meta, kind);
        tree.insert(parent, last, Child::Node(id));
    }
    tree.resolve_whiteouts();
    let num = number(&tree)?;
    let stored = data.into_stored();
    finish(&tree, &num, stored, output, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_times() {
        let t = |s: &str| parse_pax_time(s.as_bytes());
        assert_eq!(t("12"), Some(Timespec { sec: 12, nsec: 0 }));
        assert_eq!(
            t("12.5"),
            Some(Timespec {
                sec: 12,
                nsec: 500_000_000
            })
        );
        assert_eq!(
            t("1700000000.123456789123"),
            Some(Timespec {
                sec: 1_700_000_000,
                nsec: 123_456_789
            })
        );
        assert_eq!(
            t("-1.25"),
            Some(Timespec {
                sec: -2,
                nsec: 750_000_000
            })
        );
        assert_eq!(t("-3"), Some(Timespec { sec: -3, nsec: 0 }));
        assert_eq!(t("x"), None);
        assert_eq!(t("1.x"), None);
        assert_eq!(t(""), None);
    }

    #[test]
    fn layer_names() {
        assert!(matches!(classify(b".wh..wh..opq"), LayerName::Opaque));
        assert!(matches!(classify(b".wh..wh.plnk"), LayerName::Ignored));
        assert!(matches!(classify(b".wh.foo"), LayerName::Whiteout(b"foo")));
        assert!(matches!(classify(b"foo"), LayerName::Plain(b"foo")));
    }
}
