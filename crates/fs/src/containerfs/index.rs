//! The merged index file (`docs/containerfs-index.md`): its records, the writer's encoding,
//! and a reader that checks the whole file when it opens it, so that nothing it hands out
//! afterwards points outside the file or forms a cycle.
//!
//! The index is untrusted input like a layer: every offset, length and count is checked with
//! checked arithmetic before use, and a fault is an error naming the file, never a panic.

use std::path::{Path, PathBuf};

use sha2::Digest as _;

use super::ContainerFsError;

pub const MAGIC: [u8; 8] = *b"\x89CFSIx\r\n";
pub const VERSION: u32 = 1;
pub const HEADER_SIZE: usize = 256;
pub const LAYER_SIZE: usize = 64;
pub const DIR_SIZE: usize = 24;
pub const ENTRY_SIZE: usize = 16;
pub const NLINK_SIZE: usize = 16;
/// Most layers an index may stack (OCI images in practice stay under 128).
pub const MAX_LAYERS: u32 = 1024;
const MAX_NAME: usize = 255;
const MAX_COUNT: u64 = u32::MAX as u64;

/// The `d_type`s an entry may carry.
pub const DT_VALID: [u8; 7] = [1, 2, 4, 6, 8, 10, 12];
pub const DT_DIR: u8 = 4;

/// Header fields (bytes 0..256).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    pub layer_count: u32,
    pub file_size: u64,
    pub layer_table_offset: u64,
    pub dir_table_offset: u64,
    pub dir_count: u64,
    pub entry_table_offset: u64,
    pub entry_count: u64,
    pub nlink_table_offset: u64,
    pub nlink_count: u64,
    pub string_table_offset: u64,
    pub string_table_size: u64,
    pub body_sha256: [u8; 32],
}

/// What the index records of one layer image, to recognise it at open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerRecord {
    pub image_size: u64,
    pub inode_count: u64,
    /// The layer header's own `header_sha256`, which covers its `metadata_sha256`, which
    /// covers every extent digest: the identity of the whole layer.
    pub header_sha256: [u8; 32],
}

/// A directory of the merged tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirRecord {
    /// The topmost layer really holding the directory (not `IMPLIED`; else the topmost
    /// holding it), and its inode there: the directory's attributes and xattrs.
    pub layer: u32,
    pub ino: u32,
    /// Merged index of the parent directory (the root's is itself, 0).
    pub parent: u32,
    pub first_entry: u32,
    pub entry_count: u32,
    /// 2 + merged subdirectories.
    pub nlink: u32,
}

/// An entry of a merged directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryRecord {
    pub name_offset: u32,
    pub name_len: u16,
    pub d_type: u8,
    pub layer: u32,
    /// A directory: its merged directory index. Anything else: its inode in `layer`.
    pub target: u32,
}

/// A link count that differs from the layer's own (a hard link hidden by an upper layer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct NlinkRecord {
    pub layer: u32,
    pub ino: u32,
    pub nlink: u32,
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    u16::from_le_bytes([b[off], b[off + 1]])
}
fn u32_at(b: &[u8], off: usize) -> u32 {
    u32::from_le_bytes(b[off..off + 4].try_into().unwrap_or([0; 4]))
}
fn u64_at(b: &[u8], off: usize) -> u64 {
    u64::from_le_bytes(b[off..off + 8].try_into().unwrap_or([0; 8]))
}

impl Header {
    /// The header bytes with both digests filled in (`body_sha256` must be set).
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..12].copy_from_slice(&VERSION.to_le_bytes());
        b[12..16].copy_from_slice(&(HEADER_SIZE as u32).to_le_bytes());
        b[16..20].copy_from_slice(&self.layer_count.to_le_bytes());
        let fields = [
            self.file_size,
            self.layer_table_offset,
            self.dir_table_offset,
            self.dir_count,
            self.entry_table_offset,
            self.entry_count,
            self.nlink_table_offset,
            self.nlink_count,
            self.string_table_offset,
            self.string_table_size,
        ];
        for (i, v) in fields.iter().enumerate() {
            b[24 + 8 * i..32 + 8 * i].copy_from_slice(&v.to_le_bytes());
        }
        b[192..224].copy_from_slice(&self.body_sha256);
        let digest: [u8; 32] = sha2::Sha256::digest(&b[..224]).into();
        b[224..256].copy_from_slice(&digest);
        b
    }

    /// Decodes and checks the fixed fields; the layout is checked by [`Index`].
    fn decode(b: &[u8]) -> Result<Header, String> {
        if b.len() < HEADER_SIZE {
            return Err(format!(
                "file is {} bytes, too short for an index header",
                b.len()
            ));
        }
        if b[0..8] != MAGIC {
            return Err(format!(
                "bad magic {:02x?}: not a ContainerFS index",
                &b[0..8]
            ));
        }
        let version = u32_at(b, 8);
        if version != VERSION {
            return Err(format!(
                "unsupported version {version} (this reader reads version 1)"
            ));
        }
        if u32_at(b, 12) != HEADER_SIZE as u32 {
            return Err(format!("header size {} is not 256", u32_at(b, 12)));
        }
        let computed: [u8; 32] = sha2::Sha256::digest(&b[..224]).into();
        if computed[..] != b[224..256] {
            return Err("header checksum mismatch".into());
        }
        if u32_at(b, 20) != 0 || b[104..192].iter().any(|&x| x != 0) {
            return Err("reserved header bytes are not zero".into());
        }
        let f = |i: usize| u64_at(b, 24 + 8 * i);
        let mut body_sha256 = [0u8; 32];
        body_sha256.copy_from_slice(&b[192..224]);
        Ok(Header {
            layer_count: u32_at(b, 16),
            file_size: f(0),
            layer_table_offset: f(1),
            dir_table_offset: f(2),
            dir_count: f(3),
            entry_table_offset: f(4),
            entry_count: f(5),
            nlink_table_offset: f(6),
            nlink_count: f(7),
            string_table_offset: f(8),
            string_table_size: f(9),
            body_sha256,
        })
    }
}

impl LayerRecord {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.image_size.to_le_bytes());
        out.extend_from_slice(&self.inode_count.to_le_bytes());
        out.extend_from_slice(&self.header_sha256);
        out.extend_from_slice(&[0u8; 16]);
    }
    fn decode(b: &[u8]) -> (LayerRecord, bool) {
        let mut header_sha256 = [0u8; 32];
        header_sha256.copy_from_slice(&b[16..48]);
        let rec = LayerRecord {
            image_size: u64_at(b, 0),
            inode_count: u64_at(b, 8),
            header_sha256,
        };
        (rec, b[48..64].iter().all(|&x| x == 0))
    }
}

impl DirRecord {
    pub fn encode(&self, out: &mut Vec<u8>) {
        for v in [
            self.layer,
            self.ino,
            self.parent,
            self.first_entry,
            self.entry_count,
            self.nlink,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    fn decode(b: &[u8]) -> DirRecord {
        DirRecord {
            layer: u32_at(b, 0),
            ino: u32_at(b, 4),
            parent: u32_at(b, 8),
            first_entry: u32_at(b, 12),
            entry_count: u32_at(b, 16),
            nlink: u32_at(b, 20),
        }
    }
}

impl EntryRecord {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.name_offset.to_le_bytes());
        out.extend_from_slice(&self.name_len.to_le_bytes());
        out.push(self.d_type);
        out.push(0);
        out.extend_from_slice(&self.layer.to_le_bytes());
        out.extend_from_slice(&self.target.to_le_bytes());
    }
    fn decode(b: &[u8]) -> (EntryRecord, bool) {
        let rec = EntryRecord {
            name_offset: u32_at(b, 0),
            name_len: u16_at(b, 4),
            d_type: b[6],
            layer: u32_at(b, 8),
            target: u32_at(b, 12),
        };
        (rec, b[7] == 0)
    }
}

impl NlinkRecord {
    pub fn encode(&self, out: &mut Vec<u8>) {
        for v in [self.layer, self.ino, self.nlink, 0] {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    fn decode(b: &[u8]) -> (NlinkRecord, bool) {
        let rec = NlinkRecord {
            layer: u32_at(b, 0),
            ino: u32_at(b, 4),
            nlink: u32_at(b, 8),
        };
        (rec, u32_at(b, 12) == 0)
    }
}

/// Whether `name` is a valid entry name: 1..=255 bytes, no `/` or NUL, not `.` or `..`.
pub fn valid_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name != b"."
        && name != b".."
        && !name.iter().any(|&c| c == b'/' || c == 0)
}

/// The tables of an index, ready to encode.
#[derive(Debug, Default)]
pub struct Tables {
    pub layers: Vec<LayerRecord>,
    pub dirs: Vec<DirRecord>,
    pub entries: Vec<EntryRecord>,
    pub nlinks: Vec<NlinkRecord>,
    pub strings: Vec<u8>,
}

impl Tables {
    /// The index file's bytes: header, then the tables in order.
    pub fn encode(&self) -> Vec<u8> {
        let mut body = Vec::new();
        for l in &self.layers {
            l.encode(&mut body);
        }
        let dir_off = body.len();
        for d in &self.dirs {
            d.encode(&mut body);
        }
        let entry_off = body.len();
        for e in &self.entries {
            e.encode(&mut body);
        }
        let nlink_off = body.len();
        for n in &self.nlinks {
            n.encode(&mut body);
        }
        let string_off = body.len();
        body.extend_from_slice(&self.strings);
        let h = HEADER_SIZE as u64;
        let header = Header {
            layer_count: self.layers.len() as u32,
            file_size: h + body.len() as u64,
            layer_table_offset: h,
            dir_table_offset: h + dir_off as u64,
            dir_count: self.dirs.len() as u64,
            entry_table_offset: h + entry_off as u64,
            entry_count: self.entries.len() as u64,
            nlink_table_offset: h + nlink_off as u64,
            nlink_count: self.nlinks.len() as u64,
            string_table_offset: h + string_off as u64,
            string_table_size: self.strings.len() as u64,
            body_sha256: sha2::Sha256::digest(&body).into(),
        };
        let mut out = header.encode().to_vec();
        out.extend_from_slice(&body);
        out
    }
}

enum Backing {
    Map(memmap2::Mmap),
    Bytes(Vec<u8>),
}

/// An open, fully checked index.
pub struct Index {
    path: PathBuf,
    data: Backing,
    header: Header,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("path", &self.path)
            .field("header", &self.header)
            .finish()
    }
}

/// One entry, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    pub name: &'a [u8],
    pub d_type: u8,
    pub layer: u32,
    pub target: u32,
}

impl Index {
    /// Maps and checks the index at `path`.
    pub fn open(path: &Path) -> Result<Index, ContainerFsError> {
        let io = |e: std::io::Error| ContainerFsError::Io {
            path: path.to_path_buf(),
            source: e,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let md = file.metadata().map_err(io)?;
        if !md.is_file() {
            return Err(io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            )));
        }
        // An empty file can't be mapped; it is refused as too short below.
        let data = if md.len() == 0 {
            Backing::Bytes(Vec::new())
        } else {
            // SAFETY: a read-only private mapping of an index the runtime owns and does not
            // change while it is open; every byte read from it is bounds checked, so other
            // contents could only give errors.
            Backing::Map(unsafe { memmap2::Mmap::map(&file) }.map_err(io)?)
        };
        Self::new(path.to_path_buf(), data)
    }

    /// An index held in memory (tests); `label` names it in errors.
    pub fn from_bytes(
        label: impl Into<PathBuf>,
        bytes: Vec<u8>,
    ) -> Result<Index, ContainerFsError> {
        Self::new(label.into(), Backing::Bytes(bytes))
    }

    fn new(path: PathBuf, data: Backing) -> Result<Index, ContainerFsError> {
        let bytes: &[u8] = match &data {
            Backing::Map(m) => m,
            Backing::Bytes(b) => b,
        };
        let header = match Header::decode(bytes).and_then(|h| check(&h, bytes).map(|()| h)) {
            Ok(h) => h,
            Err(what) => return Err(ContainerFsError::Index { path, what }),
        };
        Ok(Index { path, data, header })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    fn bytes(&self) -> &[u8] {
        match &self.data {
            Backing::Map(m) => m,
            Backing::Bytes(b) => b,
        }
    }

    fn err(&self, what: String) -> ContainerFsError {
        ContainerFsError::Index {
            path: self.path.clone(),
            what,
        }
    }

    fn record(&self, table: u64, size: usize, count: u64, i: u64) -> Option<&[u8]> {
        if i >= count {
            return None;
        }
        let off = table.checked_add(i.checked_mul(size as u64)?)?;
        let start = usize::try_from(off).ok()?;
        self.bytes().get(start..start.checked_add(size)?)
    }

    /// The record of layer `i`.
    pub fn layer(&self, i: u32) -> Option<LayerRecord> {
        let h = &self.header;
        let b = self.record(
            h.layer_table_offset,
            LAYER_SIZE,
            u64::from(h.layer_count),
            u64::from(i),
        )?;
        Some(LayerRecord::decode(b).0)
    }

    /// Merged directory `i` (0 is the root).
    pub fn dir(&self, i: u32) -> Result<DirRecord, ContainerFsError> {
        let h = &self.header;
        self.record(h.dir_table_offset, DIR_SIZE, h.dir_count, u64::from(i))
            .map(DirRecord::decode)
            .ok_or_else(|| self.err(format!("directory {i}: out of range")))
    }

    /// Entry `i` of the entry table.
    pub fn entry(&self, i: u64) -> Result<Entry<'_>, ContainerFsError> {
        let h = &self.header;
        let (e, _) = self
            .record(h.entry_table_offset, ENTRY_SIZE, h.entry_count, i)
            .map(EntryRecord::decode)
            .ok_or_else(|| self.err(format!("entry {i}: out of range")))?;
        let name = self
            .string(u64::from(e.name_offset), u64::from(e.name_len))
            .ok_or_else(|| self.err(format!("entry {i}: name outside the string table")))?;
        Ok(Entry {
            name,
            d_type: e.d_type,
            layer: e.layer,
            target: e.target,
        })
    }

    fn string(&self, off: u64, len: u64) -> Option<&[u8]> {
        if off.checked_add(len)? > self.header.string_table_size {
            return None;
        }
        let start = usize::try_from(self.header.string_table_offset.checked_add(off)?).ok()?;
        self.bytes()
            .get(start..start.checked_add(usize::try_from(len).ok()?)?)
    }

    /// The entries of merged directory `dir`, in name order.
    pub fn entries(
        &self,
        dir: u32,
    ) -> Result<impl Iterator<Item = Result<Entry<'_>, ContainerFsError>> + '_, ContainerFsError>
    {
        let d = self.dir(dir)?;
        let first = u64::from(d.first_entry);
        Ok((first..first + u64::from(d.entry_count)).map(move |i| self.entry(i)))
    }

    /// The entry `name` of merged directory `dir`: one binary search, whatever the number of
    /// layers.
    pub fn lookup(&self, dir: u32, name: &[u8]) -> Result<Option<Entry<'_>>, ContainerFsError> {
        let d = self.dir(dir)?;
        let (mut lo, mut hi) = (0u64, u64::from(d.entry_count));
        let first = u64::from(d.first_entry);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let e = self.entry(first + mid)?;
            match e.name.cmp(name) {
                std::cmp::Ordering::Equal => return Ok(Some(e)),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Ok(None)
    }

    /// The merged link count of a non-directory, if it differs from its layer's.
    pub fn nlink_override(&self, layer: u32, ino: u32) -> Option<u32> {
        let h = &self.header;
        let (mut lo, mut hi) = (0u64, h.nlink_count);
        let key = (layer, ino);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (r, _) = NlinkRecord::decode(self.record(
                h.nlink_table_offset,
                NLINK_SIZE,
                h.nlink_count,
                mid,
            )?);
            match (r.layer, r.ino).cmp(&key) {
                std::cmp::Ordering::Equal => return Some(r.nlink),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        None
    }

    /// Number of entries in the merged tree (every name, all directories).
    pub fn entry_count(&self) -> u64 {
        self.header.entry_count
    }
}

/// Checks every rule of the format (O(index size)): layout, digest, records, and the shape
/// of the tree (each directory but the root named exactly once, by a directory with a
/// smaller index, so the tree has no cycles and every directory is reachable).
fn check(h: &Header, b: &[u8]) -> Result<(), String> {
    let len = b.len() as u64;
    if h.file_size != len {
        return Err(format!(
            "file is {len:#x} bytes but the header says {:#x}",
            h.file_size
        ));
    }
    if h.layer_count == 0 || h.layer_count > MAX_LAYERS {
        return Err(format!(
            "layer count {} not in 1..={MAX_LAYERS}",
            h.layer_count
        ));
    }
    if h.dir_count == 0 || h.dir_count > MAX_COUNT {
        return Err(format!("directory count {} out of range", h.dir_count));
    }
    if h.entry_count > MAX_COUNT || h.nlink_count > MAX_COUNT || h.string_table_size > MAX_COUNT {
        return Err("a table count is above 2^32 - 1".into());
    }
    // The tables follow the header and each other, in order, and end at the end of the file.
    let tables = [
        (
            "layer",
            h.layer_table_offset,
            u64::from(h.layer_count),
            LAYER_SIZE,
        ),
        ("directory", h.dir_table_offset, h.dir_count, DIR_SIZE),
        ("entry", h.entry_table_offset, h.entry_count, ENTRY_SIZE),
        (
            "link count",
            h.nlink_table_offset,
            h.nlink_count,
            NLINK_SIZE,
        ),
        ("string", h.string_table_offset, h.string_table_size, 1),
    ];
    let mut expected = HEADER_SIZE as u64;
    for (what, off, count, size) in tables {
        if off != expected {
            return Err(format!("{what} table at {off:#x}, expected {expected:#x}"));
        }
        expected = count
            .checked_mul(size as u64)
            .and_then(|n| n.checked_add(off))
            .ok_or_else(|| format!("{what} table size overflows"))?;
    }
    if expected != len {
        return Err(format!("tables end at {expected:#x}, the file at {len:#x}"));
    }
    let body = &b[HEADER_SIZE..];
    let computed: [u8; 32] = sha2::Sha256::digest(body).into();
    if computed != h.body_sha256 {
        return Err("body checksum mismatch (the index is damaged)".into());
    }
    let at = |off: u64, i: u64, size: usize| -> &[u8] {
        // Inside the file: the layout was checked above.
        let s = (off + i * size as u64) as usize;
        &b[s..s + size]
    };
    for i in 0..u64::from(h.layer_count) {
        let (_, reserved_ok) = LayerRecord::decode(at(h.layer_table_offset, i, LAYER_SIZE));
        if !reserved_ok {
            return Err(format!("layer record {i}: reserved bytes are not zero"));
        }
    }
    let mut named = vec![false; h.dir_count as usize];
    let mut next_entry = 0u64;
    for d in 0..h.dir_count {
        let dir = DirRecord::decode(at(h.dir_table_offset, d, DIR_SIZE));
        let fault = |what: String| format!("directory {d}: {what}");
        if dir.layer >= h.layer_count {
            return Err(fault(format!("layer {} out of range", dir.layer)));
        }
        if dir.ino == 0 {
            return Err(fault("inode 0".into()));
        }
        if d == 0 && dir.parent != 0 {
            return Err(fault(format!("the root's parent is {}, not 0", dir.parent)));
        }
        if d > 0 && u64::from(dir.parent) >= d {
            return Err(fault(format!("parent {} is not before it", dir.parent)));
        }
        if u64::from(dir.first_entry) != next_entry {
            return Err(fault(format!(
                "entries start at {}, expected {next_entry}",
                dir.first_entry
            )));
        }
        next_entry += u64::from(dir.entry_count);
        if next_entry > h.entry_count {
            return Err(fault("entries past the end of the entry table".into()));
        }
        let mut subdirs = 0u64;
        let mut prev: Option<&[u8]> = None;
        for i in u64::from(dir.first_entry)..next_entry {
            let (e, reserved_ok) = EntryRecord::decode(at(h.entry_table_offset, i, ENTRY_SIZE));
            let fault = |what: String| format!("directory {d}: entry {i}: {what}");
            if !reserved_ok {
                return Err(fault("reserved byte is not zero".into()));
            }
            let name_end = u64::from(e.name_offset) + u64::from(e.name_len);
            if name_end > h.string_table_size {
                return Err(fault("name outside the string table".into()));
            }
            let name = at(
                h.string_table_offset + u64::from(e.name_offset),
                0,
                usize::from(e.name_len),
            );
            if !valid_name(name) {
                return Err(fault(format!(
                    "invalid name {:?}",
                    String::from_utf8_lossy(name)
                )));
            }
            if prev.is_some_and(|p| p >= name) {
                return Err(fault("names not in strictly increasing order".into()));
            }
            prev = Some(name);
            if !DT_VALID.contains(&e.d_type) {
                return Err(fault(format!("invalid type {}", e.d_type)));
            }
            if e.layer >= h.layer_count {
                return Err(fault(format!("layer {} out of range", e.layer)));
            }
            if e.d_type == DT_DIR {
                let t = u64::from(e.target);
                if t <= d || t >= h.dir_count {
                    return Err(fault(format!("directory {t} out of range")));
                }
                if std::mem::replace(&mut named[t as usize], true) {
                    return Err(fault(format!("directory {t} named twice")));
                }
                let child = DirRecord::decode(at(h.dir_table_offset, t, DIR_SIZE));
                if u64::from(child.parent) != d || child.layer != e.layer {
                    return Err(fault(format!(
                        "directory {t} has parent {} and layer {}",
                        child.parent, child.layer
                    )));
                }
                subdirs += 1;
            } else if e.target == 0 {
                return Err(fault("inode 0".into()));
            }
        }
        if u64::from(dir.nlink) != 2 + subdirs {
            return Err(fault(format!(
                "link count {}, expected {}",
                dir.nlink,
                2 + subdirs
            )));
        }
    }
    if next_entry != h.entry_count {
        return Err(format!(
            "directories hold {next_entry} entries, the table {}",
            h.entry_count
        ));
    }
    if let Some(d) = named.iter().skip(1).position(|&n| !n) {
        return Err(format!("directory {} is not named by any entry", d + 1));
    }
    let mut prev: Option<(u32, u32)> = None;
    for i in 0..h.nlink_count {
        let (r, reserved_ok) = NlinkRecord::decode(at(h.nlink_table_offset, i, NLINK_SIZE));
        if !reserved_ok || r.layer >= h.layer_count || r.ino == 0 {
            return Err(format!("link count record {i}: invalid"));
        }
        if prev.is_some_and(|p| p >= (r.layer, r.ino)) {
            return Err(format!("link count record {i}: not in increasing order"));
        }
        prev = Some((r.layer, r.ino));
    }
    Ok(())
}

/// Recomputes both digests of a damaged index so that the damage reaches the structural
/// checks instead of stopping at a checksum (fuzzing and the hostile-index tests).
pub fn reseal(bytes: &mut [u8]) {
    if bytes.len() < HEADER_SIZE {
        return;
    }
    let body: [u8; 32] = sha2::Sha256::digest(&bytes[HEADER_SIZE..]).into();
    bytes[192..224].copy_from_slice(&body);
    let header: [u8; 32] = sha2::Sha256::digest(&bytes[..224]).into();
    bytes[224..256].copy_from_slice(&header);
}
