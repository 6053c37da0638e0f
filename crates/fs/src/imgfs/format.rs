//! The on-disk records of ImgFS version 1, exactly as `docs/imgfs-format.md` lays them out.
//!
//! Records are decoded from byte arrays field by field (little-endian); nothing here casts
//! mapped memory to a struct. Decoding a record never fails: the rules about what its fields
//! may hold are checked by the reader where a field is used, and all of them by `verify`.

/// `\x89ImgFS\r\n`.
pub const MAGIC: [u8; 8] = *b"\x89ImgFS\r\n";
/// The only version this crate reads and writes.
pub const VERSION: u32 = 1;
/// Bytes of the header proper (the rest of the header page is zeros).
pub const HEADER_SIZE: usize = 256;
/// Bytes of the header covered by `header_sha256`.
pub const HEADER_HASHED: usize = 224;
/// The page size of version 1 images.
pub const PAGE_SIZE: u64 = 4096;
/// The root directory's inode number.
pub const ROOT_INO: u32 = 1;

/// Size of an inode record.
pub const INODE_SIZE: usize = 96;
/// Size of a directory entry record.
pub const ENTRY_SIZE: usize = 16;
/// Size of an xattr record.
pub const XATTR_SIZE: usize = 16;
/// Size of a data extent record.
pub const EXTENT_SIZE: usize = 48;

/// Largest image (and so file) size.
pub const MAX_IMAGE_SIZE: u64 = 1 << 48;
/// Largest inode count (inode numbers are u32 and 0 means "none").
pub const MAX_INODES: u64 = (1 << 32) - 2;
/// Largest count of entries, xattr records or extents, and largest string table.
pub const MAX_TABLE: u64 = (1 << 32) - 1;
/// Longest name.
pub const MAX_NAME: usize = 255;
/// Longest symlink target.
pub const MAX_SYMLINK: usize = 4095;
/// Longest xattr value.
pub const MAX_XATTR_VALUE: usize = 65536;
/// Largest `listxattr` list of one inode (sum of name lengths plus one NUL each).
pub const MAX_XATTR_LIST: usize = 65536;
/// Deepest directory nesting below the root.
pub const MAX_DEPTH: usize = 2048;

/// Inode flag: the directory is opaque (hides lower layers' contents).
pub const INODE_OPAQUE: u32 = 1;
/// Inode flag: the directory is *implied*: the layer has no member for it, only members
/// below it (a tarball listing `a/b/c` without `a/`). Its attributes are made up (mode
/// 0755, owner 0, time 0), so in a layer stack they must not hide those of the same
/// directory in a lower layer.
pub const INODE_IMPLIED: u32 = 2;
/// Entry flag: the entry is a whiteout (hides the name in lower layers).
pub const ENTRY_WHITEOUT: u8 = 1;

/// Linux `S_IFMT` and the file type values.
pub const S_IFMT: u32 = 0o170000;
pub const S_IFSOCK: u32 = 0o140000;
pub const S_IFLNK: u32 = 0o120000;
pub const S_IFREG: u32 = 0o100000;
pub const S_IFBLK: u32 = 0o060000;
pub const S_IFDIR: u32 = 0o040000;
pub const S_IFCHR: u32 = 0o020000;
pub const S_IFIFO: u32 = 0o010000;
/// The 12 permission bits, setuid, setgid and sticky included.
pub const PERM_MASK: u32 = 0o7777;

/// A file type, as the mode's `S_IFMT` bits and a directory entry's `d_type` say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileType {
    Regular,
    Directory,
    Symlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Socket,
}

impl FileType {
    /// The type of a mode, or `None` if its `S_IFMT` bits name no type.
    pub fn from_mode(mode: u32) -> Option<FileType> {
        Some(match mode & S_IFMT {
            S_IFREG => FileType::Regular,
            S_IFDIR => FileType::Directory,
            S_IFLNK => FileType::Symlink,
            S_IFCHR => FileType::CharDevice,
            S_IFBLK => FileType::BlockDevice,
            S_IFIFO => FileType::Fifo,
            S_IFSOCK => FileType::Socket,
            _ => return None,
        })
    }

    /// The `S_IFMT` bits.
    pub fn mode_bits(self) -> u32 {
        match self {
            FileType::Regular => S_IFREG,
            FileType::Directory => S_IFDIR,
            FileType::Symlink => S_IFLNK,
            FileType::CharDevice => S_IFCHR,
            FileType::BlockDevice => S_IFBLK,
            FileType::Fifo => S_IFIFO,
            FileType::Socket => S_IFSOCK,
        }
    }

    /// The `d_type` value (`DT_*`).
    pub fn dtype(self) -> u8 {
        match self {
            FileType::Fifo => 1,
            FileType::CharDevice => 2,
            FileType::Directory => 4,
            FileType::BlockDevice => 6,
            FileType::Regular => 8,
            FileType::Symlink => 10,
            FileType::Socket => 12,
        }
    }

    /// The type of a `d_type` value, or `None` for 0 (whiteout) and unknown values.
    pub fn from_dtype(t: u8) -> Option<FileType> {
        Some(match t {
            1 => FileType::Fifo,
            2 => FileType::CharDevice,
            4 => FileType::Directory,
            6 => FileType::BlockDevice,
            8 => FileType::Regular,
            10 => FileType::Symlink,
            12 => FileType::Socket,
            _ => return None,
        })
    }

    /// The first character of `ls -l`'s mode string.
    pub fn ls_char(self) -> char {
        match self {
            FileType::Regular => '-',
            FileType::Directory => 'd',
            FileType::Symlink => 'l',
            FileType::CharDevice => 'c',
            FileType::BlockDevice => 'b',
            FileType::Fifo => 'p',
            FileType::Socket => 's',
        }
    }
}

/// Rounds `n` up to a multiple of the page size; `None` on overflow.
pub fn page_round_up(n: u64) -> Option<u64> {
    Some(n.checked_add(PAGE_SIZE - 1)? & !(PAGE_SIZE - 1))
}

fn u16_at(b: &[u8], off: usize) -> u16 {
    let mut a = [0u8; 2];
    a.copy_from_slice(&b[off..off + 2]);
    u16::from_le_bytes(a)
}

fn u32_at(b: &[u8], off: usize) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[off..off + 4]);
    u32::from_le_bytes(a)
}

fn u64_at(b: &[u8], off: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[off..off + 8]);
    u64::from_le_bytes(a)
}

fn put(b: &mut [u8], off: usize, v: &[u8]) {
    b[off..off + v.len()].copy_from_slice(v);
}

// The decoders below take fixed-size arrays, so every constant index is in bounds by
// construction (checked by the type, not by untrusted input).

/// The header (bytes 0..256 of the image).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Header {
    pub magic: [u8; 8],
    pub version: u32,
    pub header_size: u32,
    pub page_size: u32,
    pub reserved0: u32,
    pub features_compat: u64,
    pub features_incompat: u64,
    pub image_size: u64,
    pub data_offset: u64,
    pub data_size: u64,
    pub metadata_offset: u64,
    pub metadata_size: u64,
    pub inode_table_offset: u64,
    pub inode_count: u64,
    pub entry_table_offset: u64,
    pub entry_count: u64,
    pub xattr_table_offset: u64,
    pub xattr_count: u64,
    pub extent_table_offset: u64,
    pub extent_count: u64,
    pub string_table_offset: u64,
    pub string_table_size: u64,
    pub inode_size: u32,
    pub entry_size: u32,
    pub xattr_size: u32,
    pub extent_size: u32,
    pub root_ino: u32,
    pub reserved1: [u8; 12],
    pub metadata_sha256: [u8; 32],
    pub header_sha256: [u8; 32],
}

impl Header {
    pub fn decode(b: &[u8; HEADER_SIZE]) -> Header {
        let mut magic = [0u8; 8];
        magic.copy_from_slice(&b[0..8]);
        let mut reserved1 = [0u8; 12];
        reserved1.copy_from_slice(&b[180..192]);
        let mut metadata_sha256 = [0u8; 32];
        metadata_sha256.copy_from_slice(&b[192..224]);
        let mut header_sha256 = [0u8; 32];
        header_sha256.copy_from_slice(&b[224..256]);
        Header {
            magic,
            version: u32_at(b, 8),
            header_size: u32_at(b, 12),
            page_size: u32_at(b, 16),
            reserved0: u32_at(b, 20),
            features_compat: u64_at(b, 24),
            features_incompat: u64_at(b, 32),
            image_size: u64_at(b, 40),
            data_offset: u64_at(b, 48),
            data_size: u64_at(b, 56),
            metadata_offset: u64_at(b, 64),
            metadata_size: u64_at(b, 72),
            inode_table_offset: u64_at(b, 80),
            inode_count: u64_at(b, 88),
            entry_table_offset: u64_at(b, 96),
            entry_count: u64_at(b, 104),
            xattr_table_offset: u64_at(b, 112),
            xattr_count: u64_at(b, 120),
            extent_table_offset: u64_at(b, 128),
            extent_count: u64_at(b, 136),
            string_table_offset: u64_at(b, 144),
            string_table_size: u64_at(b, 152),
            inode_size: u32_at(b, 160),
            entry_size: u32_at(b, 164),
            xattr_size: u32_at(b, 168),
            extent_size: u32_at(b, 172),
            root_ino: u32_at(b, 176),
            reserved1,
            metadata_sha256,
            header_sha256,
        }
    }

    /// Encodes the header; `header_sha256` is written as stored in `self` (see [`Header::seal`]).
    pub fn encode(&self) -> [u8; HEADER_SIZE] {
        let mut b = [0u8; HEADER_SIZE];
        put(&mut b, 0, &self.magic);
        put(&mut b, 8, &self.version.to_le_bytes());
        put(&mut b, 12, &self.header_size.to_le_bytes());
        put(&mut b, 16, &self.page_size.to_le_bytes());
        put(&mut b, 20, &self.reserved0.to_le_bytes());
        put(&mut b, 24, &self.features_compat.to_le_bytes());
        put(&mut b, 32, &self.features_incompat.to_le_bytes());
        put(&mut b, 40, &self.image_size.to_le_bytes());
        put(&mut b, 48, &self.data_offset.to_le_bytes());
        put(&mut b, 56, &self.data_size.to_le_bytes());
        put(&mut b, 64, &self.metadata_offset.to_le_bytes());
        put(&mut b, 72, &self.metadata_size.to_le_bytes());
        put(&mut b, 80, &self.inode_table_offset.to_le_bytes());
        put(&mut b, 88, &self.inode_count.to_le_bytes());
        put(&mut b, 96, &self.entry_table_offset.to_le_bytes());
        put(&mut b, 104, &self.entry_count.to_le_bytes());
        put(&mut b, 112, &self.xattr_table_offset.to_le_bytes());
        put(&mut b, 120, &self.xattr_count.to_le_bytes());
        put(&mut b, 128, &self.extent_table_offset.to_le_bytes());
        put(&mut b, 136, &self.extent_count.to_le_bytes());
        put(&mut b, 144, &self.string_table_offset.to_le_bytes());
        put(&mut b, 152, &self.string_table_size.to_le_bytes());
        put(&mut b, 160, &self.inode_size.to_le_bytes());
        put(&mut b, 164, &self.entry_size.to_le_bytes());
        put(&mut b, 168, &self.xattr_size.to_le_bytes());
        put(&mut b, 172, &self.extent_size.to_le_bytes());
        put(&mut b, 176, &self.root_ino.to_le_bytes());
        put(&mut b, 180, &self.reserved1);
        put(&mut b, 192, &self.metadata_sha256);
        put(&mut b, 224, &self.header_sha256);
        b
    }

    /// The SHA-256 of the hashed part of the header as `self` would encode it.
    pub fn compute_sha256(&self) -> [u8; 32] {
        use sha2::Digest as _;
        let b = self.encode();
        sha2::Sha256::digest(&b[..HEADER_HASHED]).into()
    }

    /// Fills in `header_sha256`.
    pub fn seal(&mut self) {
        self.header_sha256 = self.compute_sha256();
    }
}

/// An inode record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InodeRecord {
    pub mode: u32,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub size: u64,
    pub rdev: u64,
    pub atime_sec: i64,
    pub mtime_sec: i64,
    pub ctime_sec: i64,
    pub atime_nsec: u32,
    pub mtime_nsec: u32,
    pub ctime_nsec: u32,
    pub flags: u32,
    pub location: u64,
    pub xattr_start: u32,
    pub xattr_count: u32,
    pub parent: u32,
    pub reserved: u32,
}

impl InodeRecord {
    pub fn decode(b: &[u8; INODE_SIZE]) -> InodeRecord {
        InodeRecord {
            mode: u32_at(b, 0),
            nlink: u32_at(b, 4),
            uid: u32_at(b, 8),
            gid: u32_at(b, 12),
            size: u64_at(b, 16),
            rdev: u64_at(b, 24),
            atime_sec: u64_at(b, 32) as i64,
            mtime_sec: u64_at(b, 40) as i64,
            ctime_sec: u64_at(b, 48) as i64,
            atime_nsec: u32_at(b, 56),
            mtime_nsec: u32_at(b, 60),
            ctime_nsec: u32_at(b, 64),
            flags: u32_at(b, 68),
            location: u64_at(b, 72),
            xattr_start: u32_at(b, 80),
            xattr_count: u32_at(b, 84),
            parent: u32_at(b, 88),
            reserved: u32_at(b, 92),
        }
    }

    pub fn encode(&self) -> [u8; INODE_SIZE] {
        let mut b = [0u8; INODE_SIZE];
        put(&mut b, 0, &self.mode.to_le_bytes());
        put(&mut b, 4, &self.nlink.to_le_bytes());
        put(&mut b, 8, &self.uid.to_le_bytes());
        put(&mut b, 12, &self.gid.to_le_bytes());
        put(&mut b, 16, &self.size.to_le_bytes());
        put(&mut b, 24, &self.rdev.to_le_bytes());
        put(&mut b, 32, &self.atime_sec.to_le_bytes());
        put(&mut b, 40, &self.mtime_sec.to_le_bytes());
        put(&mut b, 48, &self.ctime_sec.to_le_bytes());
        put(&mut b, 56, &self.atime_nsec.to_le_bytes());
        put(&mut b, 60, &self.mtime_nsec.to_le_bytes());
        put(&mut b, 64, &self.ctime_nsec.to_le_bytes());
        put(&mut b, 68, &self.flags.to_le_bytes());
        put(&mut b, 72, &self.location.to_le_bytes());
        put(&mut b, 80, &self.xattr_start.to_le_bytes());
        put(&mut b, 84, &self.xattr_count.to_le_bytes());
        put(&mut b, 88, &self.parent.to_le_bytes());
        put(&mut b, 92, &self.reserved.to_le_bytes());
        b
    }
}

/// A directory entry record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EntryRecord {
    pub ino: u32,
    pub name_offset: u32,
    pub name_len: u16,
    pub dtype: u8,
    pub flags: u8,
    pub reserved: u32,
}

impl EntryRecord {
    pub fn decode(b: &[u8; ENTRY_SIZE]) -> EntryRecord {
        EntryRecord {
            ino: u32_at(b, 0),
            name_offset: u32_at(b, 4),
            name_len: u16_at(b, 8),
            dtype: b[10],
            flags: b[11],
            reserved: u32_at(b, 12),
        }
    }

    pub fn encode(&self) -> [u8; ENTRY_SIZE] {
        let mut b = [0u8; ENTRY_SIZE];
        put(&mut b, 0, &self.ino.to_le_bytes());
        put(&mut b, 4, &self.name_offset.to_le_bytes());
        put(&mut b, 8, &self.name_len.to_le_bytes());
        b[10] = self.dtype;
        b[11] = self.flags;
        put(&mut b, 12, &self.reserved.to_le_bytes());
        b
    }
}

/// An xattr record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct XattrRecord {
    pub name_offset: u32,
    pub value_offset: u32,
    pub value_len: u32,
    pub name_len: u16,
    pub reserved: u16,
}

impl XattrRecord {
    pub fn decode(b: &[u8; XATTR_SIZE]) -> XattrRecord {
        XattrRecord {
            name_offset: u32_at(b, 0),
            value_offset: u32_at(b, 4),
            value_len: u32_at(b, 8),
            name_len: u16_at(b, 12),
            reserved: u16_at(b, 14),
        }
    }

    pub fn encode(&self) -> [u8; XATTR_SIZE] {
        let mut b = [0u8; XATTR_SIZE];
        put(&mut b, 0, &self.name_offset.to_le_bytes());
        put(&mut b, 4, &self.value_offset.to_le_bytes());
        put(&mut b, 8, &self.value_len.to_le_bytes());
        put(&mut b, 12, &self.name_len.to_le_bytes());
        put(&mut b, 14, &self.reserved.to_le_bytes());
        b
    }
}

/// A data extent record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExtentRecord {
    pub offset: u64,
    pub length: u64,
    pub sha256: [u8; 32],
}

impl ExtentRecord {
    pub fn decode(b: &[u8; EXTENT_SIZE]) -> ExtentRecord {
        let mut sha256 = [0u8; 32];
        sha256.copy_from_slice(&b[16..48]);
        ExtentRecord {
            offset: u64_at(b, 0),
            length: u64_at(b, 8),
            sha256,
        }
    }

    pub fn encode(&self) -> [u8; EXTENT_SIZE] {
        let mut b = [0u8; EXTENT_SIZE];
        put(&mut b, 0, &self.offset.to_le_bytes());
        put(&mut b, 8, &self.length.to_le_bytes());
        put(&mut b, 16, &self.sha256);
        b
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

/// Whether `name` is a valid xattr name: a known namespace prefix followed by at least one
/// byte, at most 255 bytes, no NUL.
pub fn valid_xattr_name(name: &[u8]) -> bool {
    const PREFIXES: [&[u8]; 4] = [b"user.", b"trusted.", b"security.", b"system."];
    name.len() <= MAX_NAME
        && !name.contains(&0)
        && PREFIXES
            .iter()
            .any(|p| name.len() > p.len() && name.starts_with(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let mut h = Header {
            magic: MAGIC,
            version: VERSION,
            image_size: 0x1234_5678_9abc,
            string_table_size: 7,
            root_ino: ROOT_INO,
            metadata_sha256: [9; 32],
            ..Header::default()
        };
        h.seal();
        assert_eq!(Header::decode(&h.encode()), h);
        assert_eq!(h.encode()[..8], MAGIC);
        let i = InodeRecord {
            mode: S_IFREG | 0o4755,
            nlink: 2,
            uid: u32::MAX,
            gid: 7,
            size: u64::MAX,
            rdev: 3,
            atime_sec: -5,
            mtime_sec: i64::MAX,
            ctime_sec: i64::MIN,
            atime_nsec: 1,
            mtime_nsec: 2,
            ctime_nsec: 999_999_999,
            flags: INODE_OPAQUE,
            location: 42,
            xattr_start: 4,
            xattr_count: 5,
            parent: 6,
            reserved: 0,
        };
        assert_eq!(InodeRecord::decode(&i.encode()), i);
        let e = EntryRecord {
            ino: 9,
            name_offset: 10,
            name_len: 255,
            dtype: 4,
            flags: ENTRY_WHITEOUT,
            reserved: 0,
        };
        assert_eq!(EntryRecord::decode(&e.encode()), e);
        let x = XattrRecord {
            name_offset: 1,
            value_offset: 2,
            value_len: 65536,
            name_len: 19,
            reserved: 0,
        };
        assert_eq!(XattrRecord::decode(&x.encode()), x);
        let x = ExtentRecord {
            offset: 4096,
            length: 1,
            sha256: [0xab; 32],
        };
        assert_eq!(ExtentRecord::decode(&x.encode()), x);
    }

    #[test]
    fn names() {
        assert!(valid_name(b"a"));
        assert!(valid_name(&[b'n'; 255]));
        assert!(!valid_name(&[b'n'; 256]));
        assert!(!valid_name(b""));
        assert!(!valid_name(b"."));
        assert!(!valid_name(b".."));
        assert!(!valid_name(b"a/b"));
        assert!(!valid_name(b"a\0b"));
        assert!(valid_xattr_name(b"security.capability"));
        assert!(valid_xattr_name(b"user.x"));
        assert!(!valid_xattr_name(b"user."));
        assert!(!valid_xattr_name(b"other.x"));
        for t in [
            FileType::Regular,
            FileType::Directory,
            FileType::Symlink,
            FileType::CharDevice,
            FileType::BlockDevice,
            FileType::Fifo,
            FileType::Socket,
        ] {
            assert_eq!(FileType::from_mode(t.mode_bits() | 0o644), Some(t));
            assert_eq!(FileType::from_dtype(t.dtype()), Some(t));
        }
        assert_eq!(FileType::from_mode(0o170000), None);
        assert_eq!(FileType::from_dtype(0), None);
    }
}
