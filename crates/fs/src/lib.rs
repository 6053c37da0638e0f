//! The VFS vocabulary and filesystems.
//!
//! For now this holds what the foundation needs: the [`FileDescription`] contract and a
//! passthrough of host file descriptors, used for the standard streams `runsc do` hands to
//! the application. Path resolution, mounts, tmpfs, devfs, procfs and ImgFS come with the VFS.

pub mod host;
pub mod vfs;

/// A Linux errno (positive).
pub type Errno = i32;

/// Metadata of an open file, in Linux's `struct stat` terms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: i64,
    pub blksize: i64,
    pub blocks: i64,
    pub atime: (i64, i64),
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

/// An open file description: what an fd refers to. Offsets and status flags live here.
pub trait FileDescription: Send + Sync {
    /// Reads at the current offset.
    fn read(&self, buf: &mut [u8]) -> Result<usize, Errno>;
    /// Writes at the current offset.
    fn write(&self, buf: &[u8]) -> Result<usize, Errno>;
    /// Reads at `offset` without moving the file offset.
    fn pread(&self, buf: &mut [u8], offset: i64) -> Result<usize, Errno>;
    /// Writes at `offset` without moving the file offset.
    fn pwrite(&self, buf: &[u8], offset: i64) -> Result<usize, Errno>;
    /// Moves the file offset (`lseek`); streams give ESPIPE.
    fn seek(&self, offset: i64, whence: i32) -> Result<i64, Errno>;
    /// File metadata.
    fn stat(&self) -> Result<Stat, Errno>;
    /// Terminal attributes (`TCGETS`): the raw 60-byte `struct termios`.
    fn tcgets(&self) -> Result<[u8; 60], Errno>;
    /// Window size (`TIOCGWINSZ`): the raw 8-byte `struct winsize`.
    fn window_size(&self) -> Result<[u8; 8], Errno>;
    /// Whether an operation on this file may block (pipes, terminals, sockets).
    fn may_block(&self) -> bool;
}
