//! /proc/PID/mem: the process's memory at file offsets equal to addresses, for the
//! process itself, its tracer, or whoever may trace it (debuggers read and write
//! memory through it rather than a word per PTRACE_PEEKDATA).

use std::any::Any;
use std::sync::{Arc, Mutex, Weak};

use fs::vfs::{FileType, Inode, StatFs};
use fs::{Errno, FileDescription, Stat};

use super::nodes::{base_stat, ino_of, statfs};
use super::process::ProcessInfo;
use crate::mm::Mm;

const PAGE: u64 = 4096;

pub struct MemFile {
    ino: u64,
    process: Arc<ProcessInfo>,
}

impl MemFile {
    pub fn build(path: &str, process: Arc<ProcessInfo>) -> Arc<dyn Inode> {
        Arc::new(MemFile {
            ino: ino_of(path),
            process,
        })
    }

    /// Linux's ptrace_may_access(PTRACE_MODE_ATTACH_FSCREDS) for the opener
    /// ([`crate::ptrace::may_access_process`]), or its tracer.
    fn may_open(&self) -> bool {
        let me = super::current_pid();
        let target = self.process.pid;
        if me == target {
            return true;
        }
        let Some(kernel) = self.process.kernel.upgrade() else {
            return false;
        };
        if kernel.ptrace.tracer_of(target) == me {
            return true;
        }
        let Some(opener) = kernel.procfs.process(me) else {
            return false;
        };
        crate::ptrace::may_access_process(
            &kernel,
            me,
            &opener.creds(),
            target,
            crate::ptrace::AccessMode::ATTACH_FSCREDS,
        )
    }
}

impl Inode for MemFile {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(base_stat(self.ino, libc::S_IFREG | 0o600, 1))
    }

    fn file_type(&self) -> FileType {
        FileType::Regular
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn open(&self, _flags: i32) -> Result<Option<Arc<dyn FileDescription>>, Errno> {
        if !self.may_open() {
            return Err(libc::EACCES);
        }
        let mm = self.process.image().mm.clone();
        if mm.upgrade().is_none() {
            return Err(libc::ESRCH);
        }
        Ok(Some(Arc::new(MemFd {
            mm,
            offset: Mutex::new(0),
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

/// An open /proc/PID/mem: the address space as of the open (execve gives a new one,
/// which this doesn't follow, as Linux's).
struct MemFd {
    mm: Weak<Mm>,
    offset: Mutex<u64>,
    ino: u64,
}

impl MemFd {
    /// Reads or writes page by page; stops at the first page that fails, EIO if that is
    /// the first.
    fn rw(
        &self,
        at: u64,
        len: usize,
        mut op: impl FnMut(&Mm, u64, usize, usize) -> bool,
    ) -> Result<usize, Errno> {
        let mm = self.mm.upgrade().ok_or(0)?;
        let mut done = 0;
        while done < len {
            let addr = at.checked_add(done as u64).ok_or(libc::EIO)?;
            let n = ((PAGE - addr % PAGE) as usize).min(len - done);
            if !op(&mm, addr, done, n) {
                break;
            }
            done += n;
        }
        if done == 0 && len > 0 {
            return Err(libc::EIO);
        }
        Ok(done)
    }

    fn pread_at(&self, buf: &mut [u8], at: u64) -> Result<usize, Errno> {
        self.rw(at, buf.len(), |mm, addr, done, n| {
            mm.lock().copy_in(addr, &mut buf[done..done + n]).is_ok()
        })
    }

    fn pwrite_at(&self, buf: &[u8], at: u64) -> Result<usize, Errno> {
        self.rw(at, buf.len(), |mm, addr, done, n| {
            mm.lock().write_force(addr, &buf[done..done + n]).is_ok()
        })
    }
}

impl FileDescription for MemFd {
    fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        let mut off = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        let n = self.pread_at(buf, *off)?;
        *off += n as u64;
        Ok(n)
    }

    fn write(&self, buf: &[u8]) -> Result<usize, Errno> {
        let mut off = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        let n = self.pwrite_at(buf, *off)?;
        *off += n as u64;
        Ok(n)
    }

    fn pread(&self, buf: &mut [u8], offset: i64) -> Result<usize, Errno> {
        self.pread_at(buf, offset as u64)
    }

    fn pwrite(&self, buf: &[u8], offset: i64) -> Result<usize, Errno> {
        self.pwrite_at(buf, offset as u64)
    }

    fn seek(&self, offset: i64, whence: i32) -> Result<i64, Errno> {
        let mut off = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        let new = match whence {
            libc::SEEK_SET => offset as u64,
            libc::SEEK_CUR => off.wrapping_add(offset as u64),
            _ => return Err(libc::EINVAL),
        };
        *off = new;
        // Addresses above 2^63 read as negative offsets, as Linux's (FMODE_UNSIGNED_OFFSET).
        Ok(new as i64)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(base_stat(self.ino, libc::S_IFREG | 0o600, 1))
    }

    fn may_block(&self) -> bool {
        false
    }
}
