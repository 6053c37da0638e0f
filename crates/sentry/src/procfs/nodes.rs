//! The three kinds of procfs inode: directories whose entries are computed, symlinks whose
//! targets are computed, and files whose content is generated when they are opened.

use std::any::Any;
use std::sync::Arc;

use fs::vfs::{DirEntry, FileType, Inode, StatFs};
use fs::{Errno, FileDescription, Stat};

/// procfs's magic, as statfs reports it.
pub const PROC_SUPER_MAGIC: i64 = 0x9fa0;
/// procfs's device number (anonymous 0:N, like Linux's).
pub const PROC_DEV: u64 = fs::dev::makedev(0, 23);

/// Where lseek moves a file's offset `current` (SEEK_SET, SEEK_CUR, and SEEK_END when the
/// file has an `end`): EINVAL for another whence, or an offset before 0 or past i64::MAX.
pub fn seek_to(current: u64, end: Option<u64>, offset: i64, whence: i32) -> Result<i64, Errno> {
    let base = match (whence, end) {
        (libc::SEEK_SET, _) => 0,
        (libc::SEEK_CUR, _) => current as i64,
        (libc::SEEK_END, Some(end)) => end as i64,
        _ => return Err(libc::EINVAL),
    };
    base.checked_add(offset)
        .filter(|&n| n >= 0)
        .ok_or(libc::EINVAL)
}

/// A stable inode number for a procfs path (FNV-1a), so repeated lookups agree.
pub fn ino_of(path: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h | 1
}

pub(super) fn base_stat(ino: u64, mode: u32, nlink: u64) -> Stat {
    Stat {
        dev: PROC_DEV,
        ino,
        nlink,
        mode,
        blksize: 1024,
        ..Default::default()
    }
}

pub(super) fn statfs() -> StatFs {
    StatFs {
        fs_type: PROC_SUPER_MAGIC,
        block_size: 4096,
        name_max: 255,
        ..Default::default()
    }
}

type Children = Box<dyn Fn() -> Vec<(Vec<u8>, Arc<dyn Inode>)> + Send + Sync>;

/// A directory whose entries are computed on each lookup and listing.
pub struct DynDir {
    ino: u64,
    mode: u32,
    children: Children,
    /// Who owns it (uid, gid), asked at each stat; None: root.
    owner: Option<Owner>,
    /// The process a private directory describes, which may always search and list it
    /// (Linux's proc_fd_permission), whoever the owner shows.
    process: Option<i32>,
}

/// A /proc/PID entry's owner, as Linux's task_dump_owner gives it: the process's effective
/// ids.
pub type Owner = Box<dyn Fn() -> (u32, u32) + Send + Sync>;

impl DynDir {
    pub fn build(path: &str, mode: u32, children: Children) -> Arc<dyn Inode> {
        Self::make(path, mode, None, children)
    }

    /// A directory owned by `owner` (a private one, such as /proc/PID/fd, mode 0500), which
    /// process `pid` itself may list and search whatever its owner.
    pub fn build_owned(
        path: &str,
        mode: u32,
        pid: i32,
        owner: Owner,
        children: Children,
    ) -> Arc<dyn Inode> {
        Arc::new(DynDir {
            ino: ino_of(path),
            mode,
            children,
            owner: Some(owner),
            process: Some(pid),
        })
    }

    fn make(path: &str, mode: u32, owner: Option<Owner>, children: Children) -> Arc<dyn Inode> {
        Arc::new(DynDir {
            ino: ino_of(path),
            mode,
            children,
            owner,
            process: None,
        })
    }
}

impl Inode for DynDir {
    fn stat(&self) -> Result<Stat, Errno> {
        let mut st = base_stat(self.ino, libc::S_IFDIR | self.mode, 2);
        if let Some(owner) = &self.owner {
            (st.uid, st.gid) = owner();
        }
        Ok(st)
    }

    fn file_type(&self) -> FileType {
        FileType::Directory
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn permission(&self, _: &fs::vfs::perm::Creds, _: u32) -> Option<Result<(), Errno>> {
        // The process itself: allowed (a process that is not dumpable shows root as the
        // owner, yet lists its own descriptors). Anyone else: the mode bits.
        (self.process.is_some() && self.process == Some(super::current_pid())).then_some(Ok(()))
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        (self.children)()
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, i)| i)
            .ok_or(libc::ENOENT)
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        Ok((self.children)()
            .into_iter()
            .map(|(name, inode)| DirEntry {
                ino: inode.stat().map(|s| s.ino).unwrap_or(0),
                file_type: inode.file_type(),
                name,
            })
            .collect())
    }

    fn create(
        &self,
        _: &[u8],
        _: fs::vfs::NewNode,
        _: u32,
        _: fs::vfs::Owner,
    ) -> Result<Arc<dyn Inode>, Errno> {
        Err(libc::EACCES)
    }

    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(statfs())
    }

    fn cache_children(&self) -> bool {
        false
    }
}

type Target = Box<dyn Fn() -> Result<Vec<u8>, Errno> + Send + Sync>;

/// A symlink whose target is computed when read.
pub struct DynLink {
    ino: u64,
    target: Target,
}

impl DynLink {
    pub fn build(path: &str, target: Target) -> Arc<dyn Inode> {
        Arc::new(DynLink {
            ino: ino_of(path),
            target,
        })
    }
}

impl Inode for DynLink {
    fn stat(&self) -> Result<Stat, Errno> {
        let mut st = base_stat(self.ino, libc::S_IFLNK | 0o777, 1);
        st.size = 64;
        Ok(st)
    }

    fn file_type(&self) -> FileType {
        FileType::Symlink
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        (self.target)()
    }

    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(statfs())
    }
}

type Content = Box<dyn Fn() -> Result<Vec<u8>, Errno> + Send + Sync>;

/// A read-only file whose content is generated at open, like Linux's seq files.
pub struct GenFile {
    ino: u64,
    content: Content,
}

impl GenFile {
    pub fn build(path: &str, content: Content) -> Arc<dyn Inode> {
        Arc::new(GenFile {
            ino: ino_of(path),
            content,
        })
    }
}

impl Inode for GenFile {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(base_stat(self.ino, libc::S_IFREG | 0o444, 1))
    }

    fn file_type(&self) -> FileType {
        FileType::Regular
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn open(&self, flags: i32) -> Result<Option<Arc<dyn FileDescription>>, Errno> {
        if flags & libc::O_ACCMODE != libc::O_RDONLY {
            return Err(libc::EACCES);
        }
        Ok(Some(Arc::new(Snapshot {
            data: (self.content)()?,
            offset: std::sync::Mutex::new(0),
            ino: self.ino,
        })))
    }

    fn setattr(&self, _: &fs::vfs::SetAttr) -> Result<(), Errno> {
        Err(libc::EPERM)
    }

    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(statfs())
    }
}

/// The content of a generated file as of its opening.
struct Snapshot {
    data: Vec<u8>,
    offset: std::sync::Mutex<usize>,
    ino: u64,
}

impl Snapshot {
    fn read_from(&self, at: usize, buf: &mut [u8]) -> usize {
        let rest = self.data.get(at..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        n
    }
}

impl FileDescription for Snapshot {
    fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        let mut off = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        let n = self.read_from(*off, buf);
        *off += n;
        Ok(n)
    }

    fn write(&self, _: &[u8]) -> Result<usize, Errno> {
        Err(libc::EBADF)
    }

    fn pread(&self, buf: &mut [u8], offset: i64) -> Result<usize, Errno> {
        if offset < 0 {
            return Err(libc::EINVAL);
        }
        Ok(self.read_from(offset as usize, buf))
    }

    fn pwrite(&self, _: &[u8], _: i64) -> Result<usize, Errno> {
        Err(libc::EBADF)
    }

    fn seek(&self, offset: i64, whence: i32) -> Result<i64, Errno> {
        let mut off = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        let new = seek_to(*off as u64, Some(self.data.len() as u64), offset, whence)?;
        *off = new as usize;
        Ok(new)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(base_stat(self.ino, libc::S_IFREG | 0o444, 1))
    }

    fn may_block(&self) -> bool {
        false
    }
}

/// Where the writes of one open sysctl file go: parses and applies their bytes.
pub type Apply = Box<dyn Fn(&[u8]) -> Result<(), Errno> + Send + Sync>;
/// What an open of a sysctl file binds: its text then, and where its writes go (the
/// opener's namespace, as Linux keeps it in the open file).
type Bind = Box<dyn Fn() -> Result<(Vec<u8>, Apply), Errno> + Send + Sync>;

/// A sysctl file root may write (mode 0644): an open binds its text and its target
/// (`bind`); a write at offset 0 hands its bytes to the target (which parses and applies
/// them, or fails changing nothing); a write further on is ignored, as Linux's
/// sysctl_writes_strict mode (its default) ignores it for numbers.
pub struct SysctlFile {
    ino: u64,
    bind: Bind,
}

impl SysctlFile {
    pub fn build(path: &str, bind: Bind) -> Arc<dyn Inode> {
        Arc::new(SysctlFile {
            ino: ino_of(path),
            bind,
        })
    }
}

impl Inode for SysctlFile {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(base_stat(self.ino, libc::S_IFREG | 0o644, 1))
    }

    fn file_type(&self) -> FileType {
        FileType::Regular
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn open(&self, _flags: i32) -> Result<Option<Arc<dyn FileDescription>>, Errno> {
        let (data, apply) = (self.bind)()?;
        Ok(Some(Arc::new(SysctlFd {
            read: Snapshot {
                data,
                offset: std::sync::Mutex::new(0),
                ino: self.ino,
            },
            apply,
        })))
    }

    /// Linux's proc_sys_permission: no capability overrides a sysctl's mode (0644): root
    /// (uid 0) reads and writes, the rest (group root too) read, nobody executes. (Linux
    /// compares the euid; the fsuid here, which is the euid but after setfsuid.)
    fn permission(&self, creds: &fs::vfs::perm::Creds, mask: u32) -> Option<Result<(), Errno>> {
        let mode = if creds.uid == 0 { 0o6 } else { 0o4 };
        Some(if mask & !mode & 0o7 == 0 {
            Ok(())
        } else {
            Err(libc::EACCES)
        })
    }

    /// O_TRUNC (`echo N > file`) is ignored, as procfs ignores it; nothing else changes.
    fn setattr(&self, attr: &fs::vfs::SetAttr) -> Result<(), Errno> {
        let only_size = attr.only_size();
        if only_size {
            Ok(())
        } else {
            Err(libc::EPERM)
        }
    }

    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(statfs())
    }
}

/// An open [`SysctlFile`]: the text as of the open, and where writes go.
struct SysctlFd {
    read: Snapshot,
    apply: Apply,
}

impl SysctlFd {
    fn write_at(&self, at: u64, buf: &[u8]) -> Result<usize, Errno> {
        if at == 0 {
            (self.apply)(buf)?;
        }
        Ok(buf.len())
    }
}

impl FileDescription for SysctlFd {
    fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        self.read.read(buf)
    }

    fn write(&self, buf: &[u8]) -> Result<usize, Errno> {
        let mut off = self.read.offset.lock().unwrap_or_else(|e| e.into_inner());
        let n = self.write_at(*off as u64, buf)?;
        *off += n;
        Ok(n)
    }

    fn pread(&self, buf: &mut [u8], offset: i64) -> Result<usize, Errno> {
        self.read.pread(buf, offset)
    }

    fn pwrite(&self, buf: &[u8], offset: i64) -> Result<usize, Errno> {
        if offset < 0 {
            return Err(libc::EINVAL);
        }
        self.write_at(offset as u64, buf)
    }

    fn seek(&self, offset: i64, whence: i32) -> Result<i64, Errno> {
        self.read.seek(offset, whence)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(base_stat(self.read.ino, libc::S_IFREG | 0o644, 1))
    }

    fn may_block(&self) -> bool {
        false
    }
}
