//! Errors of the reader, `verify` and `inspect`: each names the image and the fault.

use std::path::PathBuf;

/// An error reading an image: which image, and what is wrong with it.
#[derive(Debug, thiserror::Error)]
#[error("{}: {fault}", path.display())]
pub struct ImageError {
    /// The image file (or the label given to [`super::Image::from_bytes`]).
    pub path: PathBuf,
    /// What is wrong.
    pub fault: Fault,
}

impl ImageError {
    /// The errno a file system should answer with: `ENOTDIR`, `EINVAL` (not a symlink, or
    /// `ENODATA` for a missing xattr) for misuse of the API, `EIO` for a damaged image.
    pub fn errno(&self) -> i32 {
        match self.fault {
            Fault::NotDirectory(_) => libc::ENOTDIR,
            Fault::NotSymlink(_) => libc::EINVAL,
            Fault::IsDirectory(_) => libc::EISDIR,
            Fault::NotRegular(_) => libc::EINVAL,
            _ => libc::EIO,
        }
    }
}

/// What is wrong with an image (or with a request made of it).
#[derive(Debug, thiserror::Error)]
pub enum Fault {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("file is {0} bytes, too short for an ImgFS header")]
    TooShort(u64),
    #[error("bad magic {0:02x?}: not an ImgFS image")]
    BadMagic([u8; 8]),
    #[error("unsupported version {0} (this reader reads version 1)")]
    BadVersion(u32),
    #[error("unknown incompatible features {0:#x}")]
    UnknownFeatures(u64),
    #[error("header checksum mismatch (stored {stored}, computed {computed})")]
    HeaderChecksum { stored: String, computed: String },
    #[error("metadata checksum mismatch (stored {stored}, computed {computed})")]
    MetadataChecksum { stored: String, computed: String },
    #[error("file is {actual:#x} bytes but the header says {expected:#x}")]
    SizeMismatch { expected: u64, actual: u64 },
    #[error("header: {0}")]
    Header(String),
    #[error("inode {0}: out of range")]
    BadIno(u64),
    #[error("inode {ino}: {what}")]
    Inode { ino: u64, what: String },
    #[error("directory inode {dir}: entry {index}: {what}")]
    Entry { dir: u64, index: u64, what: String },
    #[error("extent {index}: {what}")]
    Extent { index: u64, what: String },
    #[error("{0}")]
    Structure(String),
    #[error("inode {0}: not a directory")]
    NotDirectory(u64),
    #[error("inode {0}: is a directory")]
    IsDirectory(u64),
    #[error("inode {0}: not a regular file")]
    NotRegular(u64),
    #[error("inode {0}: not a symbolic link")]
    NotSymlink(u64),
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}
