//! The contract between the VFS and a filesystem: [`Inode`].
//!
//! A filesystem hands out inodes; the VFS owns names (dentries), mounts, path resolution,
//! permission checks and open file descriptions. An inode knows its metadata, and, depending
//! on its type, its directory entries, its bytes or its link target. Operations an inode does
//! not support keep the default, which fails with the errno Linux gives for that type.

use std::any::Any;
use std::sync::Arc;

use crate::{Errno, FileDescription, Stat};

/// The type of a file, as in the `S_IFMT` bits of its mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    /// The `S_IFMT` bits.
    pub fn mode_bits(self) -> u32 {
        match self {
            FileType::Regular => libc::S_IFREG,
            FileType::Directory => libc::S_IFDIR,
            FileType::Symlink => libc::S_IFLNK,
            FileType::CharDevice => libc::S_IFCHR,
            FileType::BlockDevice => libc::S_IFBLK,
            FileType::Fifo => libc::S_IFIFO,
            FileType::Socket => libc::S_IFSOCK,
        }
    }

    /// The type encoded in a mode, if valid.
    pub fn from_mode(mode: u32) -> Option<FileType> {
        Some(match mode & libc::S_IFMT {
            libc::S_IFREG => FileType::Regular,
            libc::S_IFDIR => FileType::Directory,
            libc::S_IFLNK => FileType::Symlink,
            libc::S_IFCHR => FileType::CharDevice,
            libc::S_IFBLK => FileType::BlockDevice,
            libc::S_IFIFO => FileType::Fifo,
            libc::S_IFSOCK => FileType::Socket,
            _ => return None,
        })
    }

    /// The `d_type` of `getdents64`.
    pub fn dirent_type(self) -> u8 {
        match self {
            FileType::Regular => libc::DT_REG,
            FileType::Directory => libc::DT_DIR,
            FileType::Symlink => libc::DT_LNK,
            FileType::CharDevice => libc::DT_CHR,
            FileType::BlockDevice => libc::DT_BLK,
            FileType::Fifo => libc::DT_FIFO,
            FileType::Socket => libc::DT_SOCK,
        }
    }
}

/// One entry of a directory listing (without `.` and `..`, which the VFS adds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    pub name: Vec<u8>,
    pub ino: u64,
    pub file_type: FileType,
}

/// What to create in a directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NewNode {
    Regular,
    Directory,
    Symlink(Vec<u8>),
    Fifo,
    Socket,
    CharDevice(u64),
    BlockDevice(u64),
}

impl NewNode {
    pub fn file_type(&self) -> FileType {
        match self {
            NewNode::Regular => FileType::Regular,
            NewNode::Directory => FileType::Directory,
            NewNode::Symlink(_) => FileType::Symlink,
            NewNode::Fifo => FileType::Fifo,
            NewNode::Socket => FileType::Socket,
            NewNode::CharDevice(_) => FileType::CharDevice,
            NewNode::BlockDevice(_) => FileType::BlockDevice,
        }
    }
}

/// A timestamp: seconds and nanoseconds since the epoch.
pub type Timespec = (i64, i64);

/// Metadata changes (chmod, chown, truncate, utimensat). `None` leaves a field alone. The
/// VFS has already checked permissions; the inode applies the change and updates ctime.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// Permission bits only (07777); the type never changes.
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<Timespec>,
    pub mtime: Option<Timespec>,
}

impl SetAttr {
    /// Whether it changes the size alone (or nothing): what an open's O_TRUNC asks of a
    /// file, which files without a size of their own (procfs's) may ignore.
    pub fn only_size(&self) -> bool {
        self.mode.is_none()
            && self.uid.is_none()
            && self.gid.is_none()
            && self.atime.is_none()
            && self.mtime.is_none()
    }
}

/// Who creates a node: owner of the new inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub uid: u32,
    pub gid: u32,
}

/// `statfs` results.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatFs {
    pub fs_type: i64,
    pub block_size: i64,
    pub blocks: u64,
    pub blocks_free: u64,
    pub blocks_available: u64,
    pub files: u64,
    pub files_free: u64,
    pub name_max: i64,
    pub flags: i64,
}

/// A file in some filesystem.
///
/// Inodes are shared (`Arc`) and must be internally synchronized. Errors are Linux errnos.
pub trait Inode: Send + Sync + Any {
    /// Metadata. `ino` must be stable for the inode's life and unique in its filesystem;
    /// `dev` identifies the filesystem.
    fn stat(&self) -> Result<Stat, Errno>;

    /// The file's type (cheap: no I/O).
    fn file_type(&self) -> FileType;

    /// For downcasting (a filesystem recognising its own inodes, e.g. in `link`).
    fn as_any(&self) -> &dyn Any;

    /// For a /proc magic link (such as /proc/PID/ns/uts): the file that following it reaches,
    /// which no path names. None for an ordinary symlink, which is followed by its target.
    fn magic_link(&self) -> Option<Arc<dyn Inode>> {
        None
    }

    /// For a /proc magic link to a file that has a place in a tree (a deleted file's dead
    /// dentry, as /proc/PID/fd/N leads to): that place, which the walk goes on from, as
    /// Linux's nd_jump_link does. Asked before [`Inode::magic_link`].
    fn magic_location(&self) -> Option<super::Location> {
        None
    }

    /// The file's pages for mappings without a copy ([`super::mappable`]), if it can lend
    /// them. Files that can't are mapped by copying their contents into private pages.
    fn mappable(&self) -> Option<&dyn super::Mappable> {
        None
    }

    // --- directories -------------------------------------------------------------------

    /// The child called `name` (never `.` or `..`, never empty, no `/`): ENOENT if absent.
    fn lookup(&self, _name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        Err(libc::ENOTDIR)
    }

    /// Every entry, in a stable order (offsets of `getdents64` are indexes in it).
    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        Err(libc::ENOTDIR)
    }

    /// Creates `name` (EEXIST if present). `mode` holds permission bits, already masked by
    /// the umask.
    fn create(
        &self,
        _name: &[u8],
        _node: NewNode,
        _mode: u32,
        _owner: Owner,
    ) -> Result<Arc<dyn Inode>, Errno> {
        Err(libc::ENOTDIR)
    }

    /// Creates an unnamed regular file in this directory (O_TMPFILE), with link count 0;
    /// `link` may give it a name later if `linkable` (O_TMPFILE without O_EXCL).
    fn create_tmpfile(
        &self,
        _mode: u32,
        _owner: Owner,
        _linkable: bool,
    ) -> Result<Arc<dyn Inode>, Errno> {
        Err(libc::EOPNOTSUPP)
    }

    /// Adds a hard link `name` to `target` (an inode of the same filesystem, else EXDEV).
    fn link(&self, _name: &[u8], _target: &Arc<dyn Inode>) -> Result<(), Errno> {
        Err(libc::ENOTDIR)
    }

    /// Removes `name`: a non-directory when `dir` is false (EISDIR otherwise), an empty
    /// directory when true (ENOTDIR, ENOTEMPTY).
    fn unlink(&self, _name: &[u8], _dir: bool) -> Result<(), Errno> {
        Err(libc::ENOTDIR)
    }

    /// Moves `old` in this directory to `new` in `new_dir` (same filesystem, else EXDEV),
    /// with `RENAME_NOREPLACE` / `RENAME_EXCHANGE` semantics from `flags`. The VFS has checked
    /// that a directory is not moved under itself.
    fn rename(
        &self,
        _old: &[u8],
        _new_dir: &Arc<dyn Inode>,
        _new: &[u8],
        _flags: u32,
    ) -> Result<(), Errno> {
        Err(libc::ENOTDIR)
    }

    // --- regular files -----------------------------------------------------------------

    /// Reads at `offset`; 0 at or past the end.
    fn read_at(&self, _offset: u64, _buf: &mut [u8]) -> Result<usize, Errno> {
        Err(libc::EINVAL)
    }

    /// Writes at `offset`, growing the file as needed.
    fn write_at(&self, _offset: u64, _buf: &[u8]) -> Result<usize, Errno> {
        Err(libc::EINVAL)
    }

    /// SEEK_DATA / SEEK_HOLE from `offset` (< size): the default reports no holes.
    fn seek_data_or_hole(&self, offset: u64, hole: bool) -> Result<u64, Errno> {
        let size = self.stat()?.size as u64;
        Ok(if hole { size } else { offset })
    }

    /// `fallocate(mode, offset, len)`.
    fn allocate(&self, _mode: i32, _offset: u64, _len: u64) -> Result<(), Errno> {
        Err(libc::EOPNOTSUPP)
    }

    /// The file's seals (`F_SEAL_*` of [`super::seals`]): only memory files have any. The
    /// inode enforces them on size changes and fallocate; the VFS on write and the memory
    /// manager on shared mappings.
    fn seals(&self) -> u32 {
        0
    }

    /// Flushes to stable storage (nothing to do for memory filesystems).
    fn sync(&self) -> Result<(), Errno> {
        Ok(())
    }

    // --- symlinks ------------------------------------------------------------------------

    /// The link target.
    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        Err(libc::EINVAL)
    }

    // --- everything ----------------------------------------------------------------------

    /// Applies metadata changes.
    fn setattr(&self, _attr: &SetAttr) -> Result<(), Errno> {
        Err(libc::EPERM)
    }

    /// For files whose reads and writes are not plain byte ranges (devices, fifos, sockets,
    /// generated files): a description of their own. `None` means the VFS serves the open
    /// file with `read_at`/`write_at`/`readdir`.
    fn open(&self, _flags: i32) -> Result<Option<Arc<dyn FileDescription>>, Errno> {
        Ok(None)
    }

    fn getxattr(&self, _name: &[u8]) -> Result<Vec<u8>, Errno> {
        Err(libc::ENODATA)
    }

    /// `flags`: XATTR_CREATE / XATTR_REPLACE.
    fn setxattr(&self, _name: &[u8], _value: &[u8], _flags: i32) -> Result<(), Errno> {
        Err(libc::EOPNOTSUPP)
    }

    fn listxattr(&self) -> Result<Vec<Vec<u8>>, Errno> {
        Ok(Vec::new())
    }

    /// The file system's own access check for `mask` (MAY_*) by `creds`, in place of the
    /// generic one (Linux's inode_operations.permission): None (the default) for the
    /// generic one, mode bits with the overriding capabilities (`super::perm::check`).
    fn permission(&self, _creds: &super::perm::Creds, _mask: u32) -> Option<Result<(), Errno>> {
        None
    }

    /// The file's access or default ACL, for permission checks and for files created in a
    /// directory. Filesystems that keep ACLs answer (tmpfs, and overlays through their
    /// layers); the rest (EOPNOTSUPP) are checked by their mode bits alone.
    fn acl(&self, _kind: super::acl::AclKind) -> Result<Option<Arc<super::acl::Acl>>, Errno> {
        Err(libc::EOPNOTSUPP)
    }

    fn removexattr(&self, _name: &[u8]) -> Result<(), Errno> {
        Err(libc::ENODATA)
    }

    fn statfs(&self) -> Result<StatFs, Errno> {
        Err(libc::ENOSYS)
    }

    /// Whether the filesystem refuses all changes (EROFS).
    fn read_only(&self) -> bool {
        false
    }

    /// Whether the VFS may cache this directory's children by name. Directories whose
    /// entries change without VFS calls (procfs) say no, and are asked on every lookup.
    fn cache_children(&self) -> bool {
        true
    }
}
