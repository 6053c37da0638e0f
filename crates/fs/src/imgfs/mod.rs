//! ImgFS: the read-only, page-aligned, memory-mappable image format of ContainerFS layers.
//!
//! The format is specified in `docs/imgfs-format.md`; [`format`] holds its records,
//! [`reader`] opens and serves an image from a read-only mapping (O(1) open, binary-search
//! lookups, every offset checked), [`builder`] writes one from a directory or a layer tarball,
//! [`verify()`] checks every rule and checksum, [`inspect()`] lists an image like `ls -lR`,
//! and [`vfs`] serves an image to the sandbox as a read-only filesystem ([`ImgFs`]).

pub mod builder;
pub mod error;
pub mod format;
pub mod fuzzing;
pub mod inspect;
pub mod reader;
mod targuard;
pub mod verify;
pub mod vfs;

pub use builder::{
    build_from_dir, build_from_tar, build_from_tar_file, BuildError, BuildOptions, BuildSummary,
};
pub use error::{Fault, ImageError};
pub use format::FileType;
pub use inspect::{inspect, InspectError};
pub use reader::{Attrs, DataExtent, DirEntry, Image, Ino, ReadDir, Timespec, Xattrs};
pub use verify::{verify, Summary};
pub use vfs::{ImgFs, ImgFsOptions, ImgInode, IMGFS_MAGIC};

/// Receives the progress of a long operation (the CLI shows a bar on a terminal).
pub trait Progress {
    /// A phase starts: `what` it is, its total (0 if unknown), and whether it counts bytes
    /// (otherwise items).
    fn start(&self, _what: &str, _total: u64, _bytes: bool) {}
    /// `n` more bytes (or items) are done.
    fn advance(&self, _n: u64) {}
    /// The phase is over.
    fn finish(&self) {}
}

/// Progress that goes nowhere.
pub struct NoProgress;

impl Progress for NoProgress {}
