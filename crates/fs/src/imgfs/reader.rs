//! Reading an ImgFS image: open checks the header in O(1); every other field is checked where
//! it is used, with checked arithmetic, so a hostile image yields errors, never a panic or a
//! read outside the image.

use std::fs::File;
use std::path::{Path, PathBuf};

use sha2::Digest as _;

use super::error::{hex, Fault, ImageError};
use super::format::{
    page_round_up, EntryRecord, ExtentRecord, FileType, Header, InodeRecord, XattrRecord,
    ENTRY_SIZE, ENTRY_WHITEOUT, EXTENT_SIZE, HEADER_HASHED, HEADER_SIZE, INODE_IMPLIED,
    INODE_OPAQUE, INODE_SIZE, MAGIC, MAX_IMAGE_SIZE, MAX_INODES, MAX_NAME, MAX_SYMLINK, MAX_TABLE,
    MAX_XATTR_VALUE, PAGE_SIZE, PERM_MASK, ROOT_INO, VERSION, XATTR_SIZE,
};

/// An inode number (1-based; 0 is "none").
pub type Ino = u32;

/// Seconds and nanoseconds since the epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timespec {
    pub sec: i64,
    pub nsec: u32,
}

/// The attributes of an inode, as `stat` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attrs {
    pub ino: Ino,
    pub file_type: FileType,
    /// Full `st_mode`: type bits and the 12 permission bits.
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    /// `st_size`: regular file length, symlink target length, 16 x entries for a directory.
    pub size: u64,
    pub rdev: u64,
    pub atime: Timespec,
    pub mtime: Timespec,
    pub ctime: Timespec,
    /// 512-byte blocks of data.
    pub blocks: u64,
    /// The directory is opaque (hides lower layers).
    pub opaque: bool,
    /// The directory is implied: no layer member made it, only members below it
    /// ([`super::format::INODE_IMPLIED`]).
    pub implied: bool,
}

impl Attrs {
    /// The attributes as a [`crate::Stat`], on device `dev`.
    pub fn to_stat(&self, dev: u64) -> crate::Stat {
        crate::Stat {
            dev,
            ino: u64::from(self.ino),
            nlink: u64::from(self.nlink),
            mode: self.mode,
            uid: self.uid,
            gid: self.gid,
            rdev: self.rdev,
            size: self.size as i64,
            blksize: PAGE_SIZE as i64,
            blocks: self.blocks as i64,
            atime: (self.atime.sec, i64::from(self.atime.nsec)),
            mtime: (self.mtime.sec, i64::from(self.mtime.nsec)),
            ctime: (self.ctime.sec, i64::from(self.ctime.nsec)),
        }
    }
}

/// A directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DirEntry<'a> {
    pub name: &'a [u8],
    /// The inode; 0 for a whiteout.
    pub ino: Ino,
    /// The inode's type; `None` for a whiteout.
    pub file_type: Option<FileType>,
    /// The name is whited out: it hides the same name in lower layers.
    pub whiteout: bool,
}

/// Where a regular file's data lies in the image file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataExtent {
    /// Offset in the image file; a multiple of the page size.
    pub offset: u64,
    /// The file's length.
    pub len: u64,
    /// `len` rounded up to whole pages: the bytes past `len` are zeros and belong to the file.
    pub mapped_len: u64,
}

enum Backing {
    Map(memmap2::Mmap),
    Bytes(Vec<u8>),
}

/// An open image.
pub struct Image {
    path: PathBuf,
    file: Option<File>,
    data: Backing,
    header: Header,
}

impl std::fmt::Debug for Image {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Image")
            .field("path", &self.path)
            .field("size", &self.bytes().len())
            .finish()
    }
}

fn get_array<const N: usize>(b: &[u8], off: u64) -> Option<&[u8; N]> {
    let start = usize::try_from(off).ok()?;
    let end = start.checked_add(N)?;
    b.get(start..end)?.try_into().ok()
}

impl Image {
    /// Opens and maps an image read-only. Checks the header and the bounds of the tables
    /// (O(1)); nothing is read per inode.
    ///
    /// The image file must not be modified or truncated while it is open (the sandbox keeps
    /// its layers in its own directory and never writes them).
    pub fn open(path: impl AsRef<Path>) -> Result<Image, ImageError> {
        let path = path.as_ref().to_path_buf();
        let err = |fault: Fault| ImageError {
            path: path.clone(),
            fault,
        };
        let file = File::open(&path).map_err(|e| err(e.into()))?;
        let md = file.metadata().map_err(|e| err(e.into()))?;
        if !md.is_file() {
            return Err(err(Fault::Io(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a regular file",
            ))));
        }
        let len = md.len();
        if len < HEADER_SIZE as u64 {
            return Err(err(Fault::TooShort(len)));
        }
        // SAFETY: the mapping is read-only and private to this Image; the file is an image
        // the runtime owns and does not modify while it is open (documented above). If it
        // were changed anyway, readers would see other bytes, all of which are bounds-checked
        // before use; truncation could raise SIGBUS, which is why layer files are never
        // truncated.
        let map = unsafe { memmap2::MmapOptions::new().map(&file) }.map_err(|e| err(e.into()))?;
        let header = check_header(&map, len).map_err(err)?;
        let image = Image {
            path,
            file: Some(file),
            data: Backing::Map(map),
            header,
        };
        image.check_root()?;
        Ok(image)
    }

    /// An image held in memory (tests and fuzzing); `label` names it in errors.
    pub fn from_bytes(label: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<Image, ImageError> {
        let path = label.into();
        let len = bytes.len() as u64;
        if len < HEADER_SIZE as u64 {
            return Err(ImageError {
                path,
                fault: Fault::TooShort(len),
            });
        }
        let header = match check_header(&bytes, len) {
            Ok(h) => h,
            Err(fault) => return Err(ImageError { path, fault }),
        };
        let image = Image {
            path,
            file: None,
            data: Backing::Bytes(bytes),
            header,
        };
        image.check_root()?;
        Ok(image)
    }

    fn check_root(&self) -> Result<(), ImageError> {
        let root = self.attrs(ROOT_INO)?;
        if root.file_type != FileType::Directory {
            return Err(self.err(Fault::Header("root inode 1 is not a directory".into())));
        }
        Ok(())
    }

    /// The image's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open image file (`None` for an in-memory image), for mapping its pages elsewhere.
    pub fn file(&self) -> Option<&File> {
        self.file.as_ref()
    }

    /// The whole image as mapped.
    pub fn bytes(&self) -> &[u8] {
        match &self.data {
            Backing::Map(m) => m,
            Backing::Bytes(b) => b,
        }
    }

    /// The decoded header (already checked by `open`).
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The root directory.
    pub fn root(&self) -> Ino {
        ROOT_INO
    }

    /// Number of inodes (inode numbers run from 1 to this).
    pub fn inode_count(&self) -> u64 {
        self.header.inode_count
    }

    pub(crate) fn err(&self, fault: Fault) -> ImageError {
        ImageError {
            path: self.path.clone(),
            fault,
        }
    }

    fn inode_err(&self, ino: u64, what: String) -> ImageError {
        self.err(Fault::Inode { ino, what })
    }

    /// Bytes `[off, off + len)` of the image, or `None` if that is not inside it.
    pub fn slice(&self, off: u64, len: u64) -> Option<&[u8]> {
        let start = usize::try_from(off).ok()?;
        let end = start.checked_add(usize::try_from(len).ok()?)?;
        self.bytes().get(start..end)
    }

    /// Bytes `[off, off + len)` of the string table.
    pub(crate) fn string(&self, off: u64, len: u64) -> Option<&[u8]> {
        let end = off.checked_add(len)?;
        if end > self.header.string_table_size {
            return None;
        }
        self.slice(self.header.string_table_offset.checked_add(off)?, len)
    }

    /// The raw inode record of `ino`.
    pub fn inode_record(&self, ino: u64) -> Result<InodeRecord, ImageError> {
        if ino == 0 || ino > self.header.inode_count {
            return Err(self.err(Fault::BadIno(ino)));
        }
        let off = (ino - 1)
            .checked_mul(INODE_SIZE as u64)
            .and_then(|o| o.checked_add(self.header.inode_table_offset));
        off.and_then(|o| get_array::<INODE_SIZE>(self.bytes(), o))
            .map(InodeRecord::decode)
            .ok_or_else(|| self.inode_err(ino, "record outside the image".into()))
    }

    /// The raw entry record at `index` of the entry table.
    pub fn entry_record(&self, index: u64) -> Option<EntryRecord> {
        if index >= self.header.entry_count {
            return None;
        }
        let off = index
            .checked_mul(ENTRY_SIZE as u64)?
            .checked_add(self.header.entry_table_offset)?;
        get_array::<ENTRY_SIZE>(self.bytes(), off).map(EntryRecord::decode)
    }

    /// The raw xattr record at `index` of the xattr table.
    pub fn xattr_record(&self, index: u64) -> Option<XattrRecord> {
        if index >= self.header.xattr_count {
            return None;
        }
        let off = index
            .checked_mul(XATTR_SIZE as u64)?
            .checked_add(self.header.xattr_table_offset)?;
        get_array::<XATTR_SIZE>(self.bytes(), off).map(XattrRecord::decode)
    }

    /// The raw extent record at `index` of the extent table.
    pub fn extent_record(&self, index: u64) -> Option<ExtentRecord> {
        if index >= self.header.extent_count {
            return None;
        }
        let off = index
            .checked_mul(EXTENT_SIZE as u64)?
            .checked_add(self.header.extent_table_offset)?;
        get_array::<EXTENT_SIZE>(self.bytes(), off).map(ExtentRecord::decode)
    }

    /// The attributes of `ino`.
    pub fn attrs(&self, ino: Ino) -> Result<Attrs, ImageError> {
        let r = self.inode_record(u64::from(ino))?;
        let file_type = self.file_type_of(u64::from(ino), &r)?;
        let size = match file_type {
            FileType::Regular | FileType::Symlink => r.size,
            FileType::Directory => r.size.checked_mul(ENTRY_SIZE as u64).ok_or_else(|| {
                self.inode_err(u64::from(ino), format!("absurd entry count {}", r.size))
            })?,
            _ => 0,
        };
        let blocks = match file_type {
            FileType::Regular => page_round_up(r.size).map(|n| n / 512).ok_or_else(|| {
                self.inode_err(u64::from(ino), format!("absurd size {:#x}", r.size))
            })?,
            _ => 0,
        };
        Ok(Attrs {
            ino,
            file_type,
            mode: r.mode,
            nlink: r.nlink,
            uid: r.uid,
            gid: r.gid,
            size,
            rdev: match file_type {
                FileType::CharDevice | FileType::BlockDevice => r.rdev,
                _ => 0,
            },
            atime: Timespec {
                sec: r.atime_sec,
                nsec: r.atime_nsec,
            },
            mtime: Timespec {
                sec: r.mtime_sec,
                nsec: r.mtime_nsec,
            },
            ctime: Timespec {
                sec: r.ctime_sec,
                nsec: r.ctime_nsec,
            },
            blocks,
            opaque: file_type == FileType::Directory && r.flags & INODE_OPAQUE != 0,
            implied: file_type == FileType::Directory && r.flags & INODE_IMPLIED != 0,
        })
    }

    fn file_type_of(&self, ino: u64, r: &InodeRecord) -> Result<FileType, ImageError> {
        if r.mode & !(super::format::S_IFMT | PERM_MASK) != 0 {
            return Err(self.inode_err(ino, format!("bad mode {:#o}", r.mode)));
        }
        FileType::from_mode(r.mode)
            .ok_or_else(|| self.inode_err(ino, format!("bad file type in mode {:#o}", r.mode)))
    }

    fn dir_range(&self, dir: Ino) -> Result<(u64, u64), ImageError> {
        let ino = u64::from(dir);
        let r = self.inode_record(ino)?;
        if self.file_type_of(ino, &r)? != FileType::Directory {
            return Err(self.err(Fault::NotDirectory(ino)));
        }
        let end = r.location.checked_add(r.size);
        match end {
            Some(end) if end <= self.header.entry_count => Ok((r.location, r.size)),
            _ => Err(self.inode_err(
                ino,
                format!(
                    "entries {}+{} past the end of the entry table ({})",
                    r.location, r.size, self.header.entry_count
                ),
            )),
        }
    }

    /// The number of entries of `dir` (without `.` and `..`).
    pub fn dir_len(&self, dir: Ino) -> Result<u64, ImageError> {
        self.dir_range(dir).map(|(_, n)| n)
    }

    /// Whether `dir` is opaque.
    pub fn is_opaque(&self, dir: Ino) -> Result<bool, ImageError> {
        let a = self.attrs(dir)?;
        if a.file_type != FileType::Directory {
            return Err(self.err(Fault::NotDirectory(u64::from(dir))));
        }
        Ok(a.opaque)
    }

    /// The parent of directory `dir` (the root is its own parent).
    pub fn parent(&self, dir: Ino) -> Result<Ino, ImageError> {
        let ino = u64::from(dir);
        let r = self.inode_record(ino)?;
        if self.file_type_of(ino, &r)? != FileType::Directory {
            return Err(self.err(Fault::NotDirectory(ino)));
        }
        if r.parent == 0 || u64::from(r.parent) > self.header.inode_count {
            return Err(self.inode_err(ino, format!("bad parent {}", r.parent)));
        }
        Ok(r.parent)
    }

    fn decode_entry(&self, dir: Ino, index: u64) -> Result<DirEntry<'_>, ImageError> {
        let bad = |what: String| {
            self.err(Fault::Entry {
                dir: u64::from(dir),
                index,
                what,
            })
        };
        let e = self
            .entry_record(index)
            .ok_or_else(|| bad("record outside the entry table".into()))?;
        let len = usize::from(e.name_len);
        if len == 0 || len > MAX_NAME {
            return Err(bad(format!("bad name length {len}")));
        }
        let name = self
            .string(u64::from(e.name_offset), len as u64)
            .ok_or_else(|| {
                bad(format!(
                    "name {:#x}+{len} outside the string table ({:#x})",
                    e.name_offset, self.header.string_table_size
                ))
            })?;
        if e.flags & ENTRY_WHITEOUT != 0 {
            if e.ino != 0 || e.dtype != 0 {
                return Err(bad("whiteout with an inode".into()));
            }
            return Ok(DirEntry {
                name,
                ino: 0,
                file_type: None,
                whiteout: true,
            });
        }
        if e.ino == 0 || u64::from(e.ino) > self.header.inode_count {
            return Err(bad(format!("inode {} out of range", e.ino)));
        }
        let file_type =
            FileType::from_dtype(e.dtype).ok_or_else(|| bad(format!("bad type {}", e.dtype)))?;
        Ok(DirEntry {
            name,
            ino: e.ino,
            file_type: Some(file_type),
            whiteout: false,
        })
    }

    /// The entries of `dir`, in name order, starting at entry `start` (for `getdents`
    /// offsets).
    pub fn read_dir_from(&self, dir: Ino, start: u64) -> Result<ReadDir<'_>, ImageError> {
        let (first, count) = self.dir_range(dir)?;
        Ok(ReadDir {
            image: self,
            dir,
            first,
            pos: start.min(count),
            count,
        })
    }

    /// The entries of `dir`, in name order (without `.` and `..`; whiteouts included).
    pub fn read_dir(&self, dir: Ino) -> Result<ReadDir<'_>, ImageError> {
        self.read_dir_from(dir, 0)
    }

    /// The entry `name` of `dir`, whiteouts included: a binary search.
    pub fn lookup_entry(&self, dir: Ino, name: &[u8]) -> Result<Option<DirEntry<'_>>, ImageError> {
        Ok(self.lookup_entry_index(dir, name)?.map(|(_, e)| e))
    }

    /// As [`Image::lookup_entry`], with the entry's position in the directory (0-based, the
    /// order of [`Image::read_dir`]).
    pub fn lookup_entry_index(
        &self,
        dir: Ino,
        name: &[u8],
    ) -> Result<Option<(u64, DirEntry<'_>)>, ImageError> {
        let (first, count) = self.dir_range(dir)?;
        if name.is_empty() || name.len() > MAX_NAME {
            return Ok(None);
        }
        let (mut lo, mut hi) = (0u64, count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            // first + mid <= first + count, which dir_range checked does not overflow.
            let e = self.decode_entry(dir, first + mid)?;
            match e.name.cmp(name) {
                std::cmp::Ordering::Equal => return Ok(Some((mid, e))),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Ok(None)
    }

    /// The inode named `name` in `dir`; `None` if there is none or it is whited out.
    pub fn lookup(&self, dir: Ino, name: &[u8]) -> Result<Option<Ino>, ImageError> {
        Ok(self
            .lookup_entry(dir, name)?
            .filter(|e| !e.whiteout)
            .map(|e| e.ino))
    }

    /// Resolves a `/`-separated path from the root without following symlinks (tools and
    /// tests; the VFS resolves paths itself).
    pub fn lookup_path(&self, path: &[u8]) -> Result<Option<Ino>, ImageError> {
        let mut ino = ROOT_INO;
        for comp in path
            .split(|&c| c == b'/')
            .filter(|c| !c.is_empty() && *c != b".")
        {
            if comp == b".." {
                ino = self.parent(ino)?;
                continue;
            }
            match self.lookup(ino, comp)? {
                Some(next) => ino = next,
                None => return Ok(None),
            }
        }
        Ok(Some(ino))
    }

    /// The target of symlink `ino`.
    pub fn readlink(&self, ino: Ino) -> Result<&[u8], ImageError> {
        let n = u64::from(ino);
        let r = self.inode_record(n)?;
        if self.file_type_of(n, &r)? != FileType::Symlink {
            return Err(self.err(Fault::NotSymlink(n)));
        }
        if r.size == 0 || r.size > MAX_SYMLINK as u64 {
            return Err(self.inode_err(n, format!("bad symlink target length {}", r.size)));
        }
        self.string(r.location, r.size).ok_or_else(|| {
            self.inode_err(
                n,
                format!(
                    "symlink target {:#x}+{} outside the string table ({:#x})",
                    r.location, r.size, self.header.string_table_size
                ),
            )
        })
    }

    fn xattr_range(&self, ino: Ino) -> Result<(u64, u64), ImageError> {
        let n = u64::from(ino);
        let r = self.inode_record(n)?;
        let (start, count) = (u64::from(r.xattr_start), u64::from(r.xattr_count));
        // u32 + u32 cannot overflow u64.
        if start + count > self.header.xattr_count {
            return Err(self.inode_err(
                n,
                format!(
                    "xattrs {start}+{count} past the end of the xattr table ({})",
                    self.header.xattr_count
                ),
            ));
        }
        Ok((start, count))
    }

    fn decode_xattr(&self, ino: Ino, index: u64) -> Result<(&[u8], &[u8]), ImageError> {
        let bad = |what: String| self.inode_err(u64::from(ino), format!("xattr {index}: {what}"));
        let x = self
            .xattr_record(index)
            .ok_or_else(|| bad("record outside the xattr table".into()))?;
        let nlen = u64::from(x.name_len);
        if nlen == 0 || nlen > MAX_NAME as u64 {
            return Err(bad(format!("bad name length {nlen}")));
        }
        if x.value_len as usize > MAX_XATTR_VALUE {
            return Err(bad(format!("value of {} bytes is too long", x.value_len)));
        }
        let name = self
            .string(u64::from(x.name_offset), nlen)
            .ok_or_else(|| bad("name outside the string table".into()))?;
        let value = self
            .string(u64::from(x.value_offset), u64::from(x.value_len))
            .ok_or_else(|| bad("value outside the string table".into()))?;
        Ok((name, value))
    }

    /// The extended attributes of `ino`, in name order.
    pub fn xattrs(&self, ino: Ino) -> Result<Xattrs<'_>, ImageError> {
        let (start, count) = self.xattr_range(ino)?;
        Ok(Xattrs {
            image: self,
            ino,
            pos: start,
            end: start + count,
        })
    }

    /// The value of xattr `name` of `ino`: a binary search.
    pub fn get_xattr(&self, ino: Ino, name: &[u8]) -> Result<Option<&[u8]>, ImageError> {
        let (start, count) = self.xattr_range(ino)?;
        let (mut lo, mut hi) = (0u64, count);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let (n, v) = self.decode_xattr(ino, start + mid)?;
            match n.cmp(name) {
                std::cmp::Ordering::Equal => return Ok(Some(v)),
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
            }
        }
        Ok(None)
    }

    /// Where the data of regular file `ino` lies in the image (`None` for an empty file):
    /// page-aligned and inside the data region, for mapping it without a copy.
    pub fn data_extent(&self, ino: Ino) -> Result<Option<DataExtent>, ImageError> {
        let n = u64::from(ino);
        let r = self.inode_record(n)?;
        match self.file_type_of(n, &r)? {
            FileType::Regular => {}
            FileType::Directory => return Err(self.err(Fault::IsDirectory(n))),
            _ => return Err(self.err(Fault::NotRegular(n))),
        }
        if r.size == 0 {
            return Ok(None);
        }
        let x = self.extent_record(r.location).ok_or_else(|| {
            self.inode_err(
                n,
                format!(
                    "extent {} out of range ({} extents)",
                    r.location, self.header.extent_count
                ),
            )
        })?;
        if x.length != r.size {
            return Err(self.inode_err(
                n,
                format!(
                    "size {:#x} differs from its extent's length {:#x}",
                    r.size, x.length
                ),
            ));
        }
        let h = &self.header;
        let mapped_len = page_round_up(x.length);
        let end = mapped_len.and_then(|m| x.offset.checked_add(m));
        match (mapped_len, end) {
            (Some(mapped_len), Some(end))
                if x.offset % PAGE_SIZE == 0
                    && x.offset >= h.data_offset
                    && end <= h.metadata_offset =>
            {
                Ok(Some(DataExtent {
                    offset: x.offset,
                    len: x.length,
                    mapped_len,
                }))
            }
            _ => Err(self.inode_err(
                n,
                format!(
                    "data extent {:#x}+{:#x} not page-aligned inside the data region ({:#x}..{:#x})",
                    x.offset, x.length, h.data_offset, h.metadata_offset
                ),
            )),
        }
    }

    /// The contents of regular file `ino`, straight from the mapping.
    pub fn file_bytes(&self, ino: Ino) -> Result<&[u8], ImageError> {
        match self.data_extent(ino)? {
            None => Ok(&[]),
            Some(x) => self.slice(x.offset, x.len).ok_or_else(|| {
                self.inode_err(
                    u64::from(ino),
                    format!(
                        "data extent {:#x}+{:#x} past end of image ({:#x})",
                        x.offset,
                        x.len,
                        self.bytes().len()
                    ),
                )
            }),
        }
    }

    /// Reads from regular file `ino` at `offset` into `buf`; returns the bytes read (0 at or
    /// past the end of the file).
    pub fn read(&self, ino: Ino, offset: u64, buf: &mut [u8]) -> Result<usize, ImageError> {
        let data = self.file_bytes(ino)?;
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        let Some(rest) = data.get(start..) else {
            return Ok(0);
        };
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        Ok(n)
    }

    /// Checks the metadata digest: O(metadata size). `open` does not; `verify` does.
    pub fn check_metadata(&self) -> Result<(), ImageError> {
        let h = &self.header;
        let meta = self
            .slice(h.metadata_offset, h.metadata_size)
            .ok_or_else(|| self.err(Fault::Header("metadata region outside the image".into())))?;
        let computed: [u8; 32] = sha2::Sha256::digest(meta).into();
        if computed != h.metadata_sha256 {
            return Err(self.err(Fault::MetadataChecksum {
                stored: hex(&h.metadata_sha256),
                computed: hex(&computed),
            }));
        }
        Ok(())
    }
}

/// Iterator over a directory's entries.
#[derive(Debug)]
pub struct ReadDir<'a> {
    image: &'a Image,
    dir: Ino,
    first: u64,
    pos: u64,
    count: u64,
}

impl ReadDir<'_> {
    /// Index of the next entry (a `getdents` offset).
    pub fn next_index(&self) -> u64 {
        self.pos
    }
}

impl<'a> Iterator for ReadDir<'a> {
    type Item = Result<DirEntry<'a>, ImageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.count {
            return None;
        }
        let index = self.first.checked_add(self.pos)?;
        self.pos += 1;
        let r = self.image.decode_entry(self.dir, index);
        if r.is_err() {
            // Stop after an error so a caller that ignores it does not loop over garbage.
            self.pos = self.count;
        }
        Some(r)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = usize::try_from(self.count - self.pos).unwrap_or(usize::MAX);
        (0, Some(n))
    }
}

/// Iterator over an inode's xattrs: `(name, value)`.
#[derive(Debug)]
pub struct Xattrs<'a> {
    image: &'a Image,
    ino: Ino,
    pos: u64,
    end: u64,
}

impl<'a> Iterator for Xattrs<'a> {
    type Item = Result<(&'a [u8], &'a [u8]), ImageError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.end {
            return None;
        }
        let r = self.image.decode_xattr(self.ino, self.pos);
        self.pos = if r.is_err() { self.end } else { self.pos + 1 };
        Some(r)
    }
}

/// Checks everything `open` checks about the header (O(1)).
fn check_header(bytes: &[u8], file_len: u64) -> Result<Header, Fault> {
    let raw: &[u8; HEADER_SIZE] = get_array(bytes, 0).ok_or(Fault::TooShort(bytes.len() as u64))?;
    let h = Header::decode(raw);
    if h.magic != MAGIC {
        return Err(Fault::BadMagic(h.magic));
    }
    if h.version != VERSION {
        return Err(Fault::BadVersion(h.version));
    }
    let hdr = |s: String| Fault::Header(s);
    if h.header_size as usize != HEADER_SIZE {
        return Err(hdr(format!("header size {} (expected 256)", h.header_size)));
    }
    let computed: [u8; 32] = sha2::Sha256::digest(&raw[..HEADER_HASHED]).into();
    if computed != h.header_sha256 {
        return Err(Fault::HeaderChecksum {
            stored: hex(&h.header_sha256),
            computed: hex(&computed),
        });
    }
    if u64::from(h.page_size) != PAGE_SIZE {
        return Err(hdr(format!("page size {} (expected 4096)", h.page_size)));
    }
    if h.features_incompat != 0 {
        return Err(Fault::UnknownFeatures(h.features_incompat));
    }
    if h.reserved0 != 0 || h.reserved1 != [0; 12] {
        return Err(hdr("reserved fields are not zero".into()));
    }
    if h.image_size != file_len {
        return Err(Fault::SizeMismatch {
            expected: h.image_size,
            actual: file_len,
        });
    }
    if h.image_size > MAX_IMAGE_SIZE {
        return Err(hdr(format!(
            "image size {:#x} over the limit",
            h.image_size
        )));
    }
    if (h.inode_size, h.entry_size, h.xattr_size, h.extent_size)
        != (
            INODE_SIZE as u32,
            ENTRY_SIZE as u32,
            XATTR_SIZE as u32,
            EXTENT_SIZE as u32,
        )
    {
        return Err(hdr(format!(
            "record sizes {}/{}/{}/{} (expected 96/16/16/48)",
            h.inode_size, h.entry_size, h.xattr_size, h.extent_size
        )));
    }
    if h.root_ino != ROOT_INO {
        return Err(hdr(format!("root inode {} (expected 1)", h.root_ino)));
    }
    if h.data_offset != PAGE_SIZE || !h.data_size.is_multiple_of(PAGE_SIZE) {
        return Err(hdr(format!(
            "data region {:#x}+{:#x} not page-aligned after the header page",
            h.data_offset, h.data_size
        )));
    }
    if h.inode_count == 0 || h.inode_count > MAX_INODES {
        return Err(hdr(format!("inode count {} out of range", h.inode_count)));
    }
    for (what, n) in [
        ("entry count", h.entry_count),
        ("xattr count", h.xattr_count),
        ("extent count", h.extent_count),
        ("string table size", h.string_table_size),
    ] {
        if n > MAX_TABLE {
            return Err(hdr(format!("{what} {n} out of range")));
        }
    }
    // Every product below is at most 2^32 x 96 and every sum of a few such terms and offsets
    // bounded by 2^48 fits in u64, but check anyway: the header is untrusted.
    let overflow = || hdr("table offsets overflow".into());
    let expect = |what: &str, got: u64, want: Option<u64>| -> Result<u64, Fault> {
        let want = want.ok_or_else(overflow)?;
        if got != want {
            return Err(hdr(format!("{what} at {got:#x}, expected {want:#x}")));
        }
        Ok(want)
    };
    let meta = expect(
        "metadata",
        h.metadata_offset,
        h.data_offset.checked_add(h.data_size),
    )?;
    let inodes = expect("inode table", h.inode_table_offset, Some(meta))?;
    let entries = expect(
        "entry table",
        h.entry_table_offset,
        h.inode_count
            .checked_mul(INODE_SIZE as u64)
            .and_then(|n| n.checked_add(inodes)),
    )?;
    let xattrs = expect(
        "xattr table",
        h.xattr_table_offset,
        h.entry_count
            .checked_mul(ENTRY_SIZE as u64)
            .and_then(|n| n.checked_add(entries)),
    )?;
    let extents = expect(
        "extent table",
        h.extent_table_offset,
        h.xattr_count
            .checked_mul(XATTR_SIZE as u64)
            .and_then(|n| n.checked_add(xattrs)),
    )?;
    let strings = expect(
        "string table",
        h.string_table_offset,
        h.extent_count
            .checked_mul(EXTENT_SIZE as u64)
            .and_then(|n| n.checked_add(extents)),
    )?;
    expect(
        "end of the string table",
        h.image_size,
        strings.checked_add(h.string_table_size),
    )?;
    expect(
        "end of the metadata",
        h.image_size,
        meta.checked_add(h.metadata_size),
    )?;
    Ok(h)
}
