//! Host file descriptors passed through to the application (the standard streams of
//! `runsc do`). The sentry owns a duplicate of each; the application only ever sees the
//! sandbox's fd numbers.

use std::os::fd::{AsRawFd, OwnedFd};

use crate::{Errno, FileDescription, Stat};

/// A host file descriptor.
pub struct HostFile {
    fd: OwnedFd,
    may_block: bool,
}

fn last_errno() -> Errno {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn check(r: isize) -> Result<usize, Errno> {
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(r as usize)
    }
}

impl HostFile {
    /// Wraps an owned host descriptor.
    pub fn new(fd: OwnedFd) -> Self {
        let may_block = match nix::sys::stat::fstat(fd.as_raw_fd()) {
            Ok(st) => {
                let fmt = st.st_mode & libc::S_IFMT;
                fmt != libc::S_IFREG && fmt != libc::S_IFDIR && fmt != libc::S_IFBLK
            }
            Err(_) => true,
        };
        HostFile { fd, may_block }
    }

    fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

impl FileDescription for HostFile {
    fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        // SAFETY: buf is a valid writable buffer of buf.len() bytes.
        check(unsafe { libc::read(self.raw(), buf.as_mut_ptr().cast(), buf.len()) })
    }

    fn write(&self, buf: &[u8]) -> Result<usize, Errno> {
        // SAFETY: buf is a valid readable buffer of buf.len() bytes.
        check(unsafe { libc::write(self.raw(), buf.as_ptr().cast(), buf.len()) })
    }

    fn pread(&self, buf: &mut [u8], offset: i64) -> Result<usize, Errno> {
        // SAFETY: as in `read`.
        check(unsafe { libc::pread(self.raw(), buf.as_mut_ptr().cast(), buf.len(), offset) })
    }

    fn pwrite(&self, buf: &[u8], offset: i64) -> Result<usize, Errno> {
        // SAFETY: as in `write`.
        check(unsafe { libc::pwrite(self.raw(), buf.as_ptr().cast(), buf.len(), offset) })
    }

    fn seek(&self, offset: i64, whence: i32) -> Result<i64, Errno> {
        // SAFETY: plain lseek on a descriptor we own.
        let r = unsafe { libc::lseek(self.raw(), offset, whence) };
        if r < 0 {
            Err(last_errno())
        } else {
            Ok(r)
        }
    }

    fn stat(&self) -> Result<Stat, Errno> {
        let st = nix::sys::stat::fstat(self.raw()).map_err(|e| e as i32)?;
        Ok(Stat {
            dev: st.st_dev,
            ino: st.st_ino,
            nlink: st.st_nlink,
            mode: st.st_mode,
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: st.st_rdev,
            size: st.st_size,
            blksize: st.st_blksize,
            blocks: st.st_blocks,
            atime: (st.st_atime, st.st_atime_nsec),
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
        })
    }

    fn tcgets(&self) -> Result<[u8; 60], Errno> {
        let mut t = [0u8; 60];
        // SAFETY: TCGETS writes a 60-byte kernel struct termios into t.
        let r = unsafe { libc::ioctl(self.raw(), libc::TCGETS, t.as_mut_ptr()) };
        if r < 0 {
            return Err(last_errno());
        }
        Ok(t)
    }

    fn window_size(&self) -> Result<[u8; 8], Errno> {
        let mut w = [0u8; 8];
        // SAFETY: TIOCGWINSZ writes an 8-byte struct winsize into w.
        let r = unsafe { libc::ioctl(self.raw(), libc::TIOCGWINSZ, w.as_mut_ptr()) };
        if r < 0 {
            return Err(last_errno());
        }
        Ok(w)
    }

    fn may_block(&self) -> bool {
        self.may_block
    }

    fn bytes_available(&self) -> Result<u32, Errno> {
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int into n.
        if unsafe { libc::ioctl(self.raw(), libc::FIONREAD, &mut n) } < 0 {
            return Err(last_errno());
        }
        Ok(n.max(0) as u32)
    }
}
