//! Open file descriptions: what a file descriptor refers to. The offset and the status flags
//! live here, so `dup` and `fork` share them.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use super::inode::{DirEntry, FileType, Inode};
use super::mount::Location;
use crate::{Errno, FileDescription, Stat};

/// Status flags `fcntl(F_SETFL)` may change.
pub const SETTABLE_FLAGS: u32 =
    (libc::O_APPEND | libc::O_NONBLOCK | libc::O_DIRECT | libc::O_NOATIME | libc::O_ASYNC) as u32;

enum Backing {
    /// Served by the VFS from the inode (regular files, directories, symlinks via O_PATH).
    Inode(Arc<dyn Inode>),
    /// A file with its own read/write semantics (streams, devices, generated files).
    Special {
        desc: Arc<dyn FileDescription>,
        inode: Option<Arc<dyn Inode>>,
    },
}

/// An open file description.
pub struct OpenFile {
    /// Where it was opened (None for pipes, sockets and inherited host streams).
    pub location: Option<Location>,
    backing: Backing,
    /// Access mode and status flags, as `fcntl(F_GETFL)` reports them.
    flags: AtomicU32,
    offset: Mutex<u64>,
    /// The directory listing being read by getdents64, taken when reading from offset 0.
    listing: Mutex<Option<Vec<DirEntry>>>,
    /// Who is told of I/O readiness by signal (F_SETOWN, F_SETSIG, O_ASYNC).
    pub owner: Mutex<FileOwner>,
    /// The description's write access to its file, for ETXTBSY (regular files opened for
    /// writing).
    write_access: OnceLock<super::write_access::WriteAccess>,
    /// The same for read-only openers of regular files (file leases count them).
    read_access: OnceLock<super::write_access::ReadAccess>,
}

/// A description's signal-driven I/O state (Linux's `fown_struct` and fasync entry). The
/// sentry interprets it; the file system only keeps it with the description.
#[derive(Default)]
pub struct FileOwner {
    /// F_OWNER_TID (0), F_OWNER_PID (1) or F_OWNER_PGRP (2); `id` 0 is no owner.
    pub kind: i32,
    pub id: i32,
    /// F_SETSIG's signal; 0 sends SIGIO without the readiness details.
    pub sig: i32,
    /// The descriptor O_ASYNC was set through (the signal's si_fd).
    pub fd: i32,
    /// While O_ASYNC is set on a file with a wait queue: the listener, kept alive here, and
    /// its place in the queue.
    pub listener: Option<(
        Arc<dyn crate::waiter::Listener>,
        crate::waiter::Registration,
    )>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Largest file offset (Linux's MAX_LFS_FILESIZE).
const MAX_OFFSET: u64 = i64::MAX as u64;

/// A file's identity for the pages shared mappings hold: the address of its inode.
pub fn file_identity(inode: &Arc<dyn Inode>) -> usize {
    Arc::as_ptr(inode) as *const () as usize
}

/// Pages of a file that MAP_SHARED mappings hold outside the file (in the sentry's memory
/// file). read and write go through them so that a mapping and read/write agree, as they do
/// on Linux where both are the page cache: a read sees what was stored through a mapping, a
/// write shows in every mapping at once. The sentry owns those pages, so it supplies the
/// functions; without them (the file system alone, in tests) there is nothing to keep
/// coherent.
#[derive(Clone, Copy)]
pub struct SharedPageHooks {
    /// Overwrites `buf` (file bytes at `offset`) with the bytes of any shared page in range.
    pub read: fn(file: usize, offset: u64, buf: &mut [u8]),
    /// Copies `data`, just written at `offset`, into any shared page in range.
    pub write: fn(file: usize, offset: u64, data: &[u8]),
}

static SHARED_PAGE_HOOKS: OnceLock<SharedPageHooks> = OnceLock::new();

/// Installs the shared-page functions (once per process; later calls keep the first).
pub fn set_shared_page_hooks(hooks: SharedPageHooks) {
    let _ = SHARED_PAGE_HOOKS.set(hooks);
}

/// Reads from a regular file's inode, seeing what shared mappings have stored.
fn read_coherent(inode: &Arc<dyn Inode>, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
    let n = inode.read_at(offset, buf)?;
    if let Some(hooks) = SHARED_PAGE_HOOKS.get() {
        (hooks.read)(file_identity(inode), offset, &mut buf[..n]);
    }
    Ok(n)
}

/// Writes to a regular file's inode and into the pages shared mappings of it hold.
fn write_coherent(inode: &Arc<dyn Inode>, offset: u64, data: &[u8]) -> Result<usize, Errno> {
    let n = inode.write_at(offset, data)?;
    if let Some(hooks) = SHARED_PAGE_HOOKS.get() {
        (hooks.write)(file_identity(inode), offset, &data[..n]);
    }
    Ok(n)
}

/// How much of a `len`-byte write at `offset` the file's seals let through (memory files
/// only; one virtual call for any other file).
fn sealed_len(inode: &Arc<dyn Inode>, offset: u64, len: usize) -> Result<usize, Errno> {
    use super::seals::{writable_len, F_SEAL_GROW, WRITE_SEALS};
    let seals = inode.seals() & (WRITE_SEALS | F_SEAL_GROW);
    if seals == 0 {
        return Ok(len);
    }
    let size = inode.stat()?.size.max(0) as u64;
    writable_len(seals, size, offset, len)
}

impl OpenFile {
    /// A description served from `inode`.
    pub fn new(location: Option<Location>, inode: Arc<dyn Inode>, flags: u32) -> Arc<OpenFile> {
        Arc::new(OpenFile {
            location,
            backing: Backing::Inode(inode),
            flags: AtomicU32::new(flags),
            offset: Mutex::new(0),
            listing: Mutex::new(None),
            owner: Mutex::default(),
            write_access: OnceLock::new(),
            read_access: OnceLock::new(),
        })
    }

    /// A description with its own semantics (a device, a pipe end, a host stream).
    pub fn special(
        location: Option<Location>,
        inode: Option<Arc<dyn Inode>>,
        desc: Arc<dyn FileDescription>,
        flags: u32,
    ) -> Arc<OpenFile> {
        Arc::new(OpenFile {
            location,
            backing: Backing::Special { desc, inode },
            flags: AtomicU32::new(flags),
            offset: Mutex::new(0),
            listing: Mutex::new(None),
            owner: Mutex::default(),
            write_access: OnceLock::new(),
            read_access: OnceLock::new(),
        })
    }

    /// Keeps `access` for the description's life.
    pub fn hold_write_access(&self, access: super::write_access::WriteAccess) {
        let _ = self.write_access.set(access);
    }

    /// Keeps `access` for the description's life.
    pub fn hold_read_access(&self, access: super::write_access::ReadAccess) {
        let _ = self.read_access.set(access);
    }

    /// The inode, if the description has one.
    pub fn inode(&self) -> Option<&Arc<dyn Inode>> {
        match &self.backing {
            Backing::Inode(i) => Some(i),
            Backing::Special { inode, .. } => inode.as_ref(),
        }
    }

    /// The special description, if any.
    pub fn special_desc(&self) -> Option<&Arc<dyn FileDescription>> {
        match &self.backing {
            Backing::Special { desc, .. } => Some(desc),
            Backing::Inode(_) => None,
        }
    }

    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    /// F_SETFL: only the settable status flags change.
    pub fn set_flags(&self, flags: u32) {
        let old = self.flags();
        let new = (old & !SETTABLE_FLAGS) | (flags & SETTABLE_FLAGS);
        self.flags.store(new, Ordering::Relaxed);
    }

    /// Reports `mask` (IN_ACCESS, IN_MODIFY, IN_OPEN, ...) to inotify watches of the file
    /// and its directory; nothing but one atomic load while nothing is watched.
    #[inline]
    pub fn notify(&self, mask: u32) {
        if crate::inotify::active() && !self.is_path_only() {
            if let Some(loc) = &self.location {
                crate::inotify::file_event(&loc.dentry, mask);
            }
        }
    }

    /// As [`OpenFile::notify`] when `r` is a transfer of at least one byte.
    #[inline]
    fn notify_moved(&self, r: &Result<usize, Errno>, mask: u32) {
        if matches!(r, Ok(n) if *n > 0) {
            self.notify(mask);
        }
    }

    fn is_path_only(&self) -> bool {
        self.flags() & libc::O_PATH as u32 != 0
    }

    pub fn readable(&self) -> bool {
        let acc = self.flags() & libc::O_ACCMODE as u32;
        !self.is_path_only() && (acc == libc::O_RDONLY as u32 || acc == libc::O_RDWR as u32)
    }

    pub fn writable(&self) -> bool {
        let acc = self.flags() & libc::O_ACCMODE as u32;
        !self.is_path_only() && (acc == libc::O_WRONLY as u32 || acc == libc::O_RDWR as u32)
    }

    /// Whether operations may block (the sentry serves such calls on the task's thread).
    pub fn may_block(&self) -> bool {
        match &self.backing {
            Backing::Special { desc, .. } => desc.may_block(),
            Backing::Inode(_) => false,
        }
    }

    /// The events among `mask` that hold now (poll, select, epoll). Files served from an
    /// inode are regular files and directories: always readable and writable.
    pub fn readiness(&self, mask: u32) -> u32 {
        match &self.backing {
            Backing::Special { desc, .. } => desc.readiness(mask),
            Backing::Inode(_) => mask & crate::waiter::DEFAULT_READY,
        }
    }

    /// The queue told of readiness changes; None when readiness never changes.
    pub fn wait_queue(&self) -> Option<&crate::waiter::WaitQueue> {
        match &self.backing {
            Backing::Special { desc, .. } => desc.wait_queue(),
            Backing::Inode(_) => None,
        }
    }

    fn regular(&self) -> Result<&Arc<dyn Inode>, Errno> {
        match &self.backing {
            Backing::Inode(i) if i.file_type() == FileType::Directory => Err(libc::EISDIR),
            Backing::Inode(i) => Ok(i),
            Backing::Special { .. } => Err(libc::EINVAL),
        }
    }

    pub fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        let r = self.read_inner(buf);
        self.notify_moved(&r, crate::inotify::IN_ACCESS);
        r
    }

    fn read_inner(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        if !self.readable() {
            return Err(libc::EBADF);
        }
        if let Backing::Special { desc, .. } = &self.backing {
            return desc.read_with_flags(buf, self.flags());
        }
        let inode = self.regular()?;
        let mut off = lock(&self.offset);
        let n = read_coherent(inode, *off, buf)?;
        *off += n as u64;
        Ok(n)
    }

    pub fn pread(&self, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        let r = self.pread_inner(buf, offset);
        self.notify_moved(&r, crate::inotify::IN_ACCESS);
        r
    }

    fn pread_inner(&self, buf: &mut [u8], offset: u64) -> Result<usize, Errno> {
        if !self.readable() {
            return Err(libc::EBADF);
        }
        if let Backing::Special { desc, .. } = &self.backing {
            return desc.pread(buf, offset as i64);
        }
        read_coherent(self.regular()?, offset, buf)
    }

    pub fn write(&self, buf: &[u8]) -> Result<usize, Errno> {
        let r = self.write_inner(buf);
        self.notify_moved(&r, crate::inotify::IN_MODIFY);
        r
    }

    fn write_inner(&self, buf: &[u8]) -> Result<usize, Errno> {
        if !self.writable() {
            return Err(libc::EBADF);
        }
        if let Backing::Special { desc, .. } = &self.backing {
            return desc.write_with_flags(buf, self.flags());
        }
        let inode = self.regular()?;
        let mut off = lock(&self.offset);
        if self.flags() & libc::O_APPEND as u32 != 0 {
            *off = inode.stat()?.size as u64;
        }
        let room = MAX_OFFSET.saturating_sub(*off) as usize;
        if room == 0 && !buf.is_empty() {
            return Err(libc::EFBIG);
        }
        let len = sealed_len(inode, *off, buf.len().min(room))?;
        let n = write_coherent(inode, *off, &buf[..len])?;
        *off += n as u64;
        Ok(n)
    }

    pub fn pwrite(&self, buf: &[u8], offset: u64) -> Result<usize, Errno> {
        let r = self.pwrite_inner(buf, offset);
        self.notify_moved(&r, crate::inotify::IN_MODIFY);
        r
    }

    fn pwrite_inner(&self, buf: &[u8], offset: u64) -> Result<usize, Errno> {
        if !self.writable() {
            return Err(libc::EBADF);
        }
        if let Backing::Special { desc, .. } = &self.backing {
            return desc.pwrite(buf, offset as i64);
        }
        let inode = self.regular()?;
        // Linux writes at the end for O_APPEND even with pwrite.
        let at = if self.flags() & libc::O_APPEND as u32 != 0 {
            inode.stat()?.size as u64
        } else {
            offset
        };
        if at
            .checked_add(buf.len() as u64)
            .is_none_or(|end| end > MAX_OFFSET)
        {
            return Err(libc::EFBIG);
        }
        let len = sealed_len(inode, at, buf.len())?;
        write_coherent(inode, at, &buf[..len])
    }

    /// lseek.
    pub fn seek(&self, offset: i64, whence: i32) -> Result<u64, Errno> {
        if self.is_path_only() {
            return Err(libc::EBADF);
        }
        let inode = match &self.backing {
            Backing::Special { desc, .. } => return desc.seek(offset, whence).map(|o| o as u64),
            Backing::Inode(i) => i,
        };
        let mut off = lock(&self.offset);
        let size = inode.stat()?.size;
        let base: i64 = match whence {
            libc::SEEK_SET => 0,
            libc::SEEK_CUR => *off as i64,
            libc::SEEK_END => size,
            libc::SEEK_DATA | libc::SEEK_HOLE => {
                if inode.file_type() == FileType::Directory {
                    return Err(libc::EINVAL);
                }
                if offset < 0 || offset >= size {
                    return Err(libc::ENXIO);
                }
                let at = inode.seek_data_or_hole(offset as u64, whence == libc::SEEK_HOLE)?;
                *off = at;
                return Ok(at);
            }
            _ => return Err(libc::EINVAL),
        };
        let new = base.checked_add(offset).ok_or(libc::EOVERFLOW)?;
        if new < 0 {
            return Err(libc::EINVAL);
        }
        if inode.file_type() == FileType::Directory && new == 0 {
            *lock(&self.listing) = None;
        }
        *off = new as u64;
        Ok(new as u64)
    }

    /// Metadata of the open file.
    pub fn stat(&self) -> Result<Stat, Errno> {
        match &self.backing {
            Backing::Inode(i) => i.stat(),
            Backing::Special { inode: Some(i), .. } => i.stat(),
            Backing::Special { desc, .. } => desc.stat(),
        }
    }

    /// getdents and getdents64: as many records of `format` as fit in `max` bytes (EINVAL
    /// when not even the first does). `.` and `..` come first; the offset is the index of
    /// the next entry.
    pub fn getdents(
        &self,
        max: usize,
        parent_ino: u64,
        format: DirentFormat,
    ) -> Result<Vec<u8>, Errno> {
        let inode = match &self.backing {
            Backing::Inode(i) if i.file_type() == FileType::Directory => i,
            _ => return Err(libc::ENOTDIR),
        };
        if self.is_path_only() {
            return Err(libc::EBADF);
        }
        let mut off = lock(&self.offset);
        let mut listing = lock(&self.listing);
        if listing.is_none() || *off == 0 {
            let ino = inode.stat()?.ino;
            let mut entries = vec![
                DirEntry {
                    name: b".".to_vec(),
                    ino,
                    file_type: FileType::Directory,
                },
                DirEntry {
                    name: b"..".to_vec(),
                    ino: parent_ino,
                    file_type: FileType::Directory,
                },
            ];
            entries.extend(inode.readdir()?);
            *listing = Some(entries);
        }
        let entries = listing.as_ref().map(Vec::as_slice).unwrap_or_default();
        let mut out = Vec::new();
        let mut index = *off as usize;
        while let Some(e) = entries.get(index) {
            if out.len() + format.record_len(e.name.len()) > max {
                if out.is_empty() {
                    return Err(libc::EINVAL);
                }
                break;
            }
            format.encode(&mut out, e, (index + 1) as i64);
            index += 1;
        }
        *off = index as u64;
        drop(off);
        drop(listing);
        self.notify(crate::inotify::IN_ACCESS);
        Ok(out)
    }
}

/// The record layout of a directory listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirentFormat {
    /// getdents64's `struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type;
    /// char d_name[]; }`.
    Dirent64,
    /// getdents' `struct linux_dirent { unsigned long d_ino; unsigned long d_off; unsigned
    /// short d_reclen; char d_name[]; }`, then the name's NUL, padding, and d_type as the
    /// record's last byte. On x86-64 its d_ino is 64 bits, so no inode number overflows it.
    Dirent,
}

impl DirentFormat {
    /// The offset of d_name.
    fn name_offset(self) -> usize {
        match self {
            DirentFormat::Dirent64 => 19,
            DirentFormat::Dirent => 18,
        }
    }

    /// A record's length (Linux's filldir/filldir64): the name, its NUL (and getdents'
    /// d_type byte), rounded up to 8 bytes.
    fn record_len(self, name_len: usize) -> usize {
        let extra = match self {
            DirentFormat::Dirent64 => 1,
            DirentFormat::Dirent => 2,
        };
        (self.name_offset() + name_len + extra).div_ceil(8) * 8
    }

    /// Appends `e`'s record, whose d_off is `next_off`; padding is zeros.
    fn encode(self, out: &mut Vec<u8>, e: &DirEntry, next_off: i64) {
        let start = out.len();
        let reclen = self.record_len(e.name.len());
        out.extend_from_slice(&e.ino.to_le_bytes());
        out.extend_from_slice(&next_off.to_le_bytes());
        out.extend_from_slice(&(reclen as u16).to_le_bytes());
        if self == DirentFormat::Dirent64 {
            out.push(e.file_type.dirent_type());
        }
        out.extend_from_slice(&e.name);
        out.resize(start + reclen, 0);
        if self == DirentFormat::Dirent {
            out[start + reclen - 1] = e.file_type.dirent_type();
        }
    }
}

impl Drop for OpenFile {
    /// OFD record locks and flock locks belong to the description: they go with its last
    /// reference (Linux's `locks_remove_file`). Cheap when no file has locks.
    /// Closing the last reference is inotify's IN_CLOSE_WRITE or IN_CLOSE_NOWRITE.
    fn drop(&mut self) {
        crate::lock::description_closed(self as *const OpenFile as usize);
        crate::lease::description_closed(self as *const OpenFile as usize);
        if crate::inotify::active() {
            self.notify(if self.writable() {
                crate::inotify::IN_CLOSE_WRITE
            } else {
                crate::inotify::IN_CLOSE_NOWRITE
            });
        }
    }
}
