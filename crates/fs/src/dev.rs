//! Character devices the sandbox provides, found by device number wherever their node is
//! (the sandbox's /dev is a tmpfs holding nodes, as devtmpfs is on Linux): null, zero, full,
//! random, urandom. Other numbers, host devices among them, don't open (ENXIO).

use std::sync::Arc;

use crate::{Errno, FileDescription, Stat};

/// `makedev(major, minor)` as Linux encodes it.
/// The major number of a device number (glibc's gnu_dev_major).
pub const fn major(dev: u64) -> u32 {
    (((dev >> 32) & 0xffff_f000) | ((dev >> 8) & 0xfff)) as u32
}

/// The minor number of a device number (glibc's gnu_dev_minor).
pub const fn minor(dev: u64) -> u32 {
    (((dev >> 12) & 0xffff_ff00) | (dev & 0xff)) as u32
}

pub const fn makedev(major: u32, minor: u32) -> u64 {
    ((major as u64 & 0xfffff000) << 32)
        | ((major as u64 & 0xfff) << 8)
        | ((minor as u64 & 0xffffff00) << 12)
        | (minor as u64 & 0xff)
}

pub const NULL: u64 = makedev(1, 3);
pub const ZERO: u64 = makedev(1, 5);
pub const FULL: u64 = makedev(1, 7);
pub const RANDOM: u64 = makedev(1, 8);
pub const URANDOM: u64 = makedev(1, 9);
/// The opener's controlling terminal. The sentry serves it (it knows sessions); [`open`]
/// does not.
pub const TTY: u64 = makedev(5, 0);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Null,
    Zero,
    Full,
    Random,
}

/// One of the memory devices (major 1).
struct MemDevice {
    kind: Kind,
    rdev: u64,
}

fn fill_random(buf: &mut [u8]) -> Result<usize, Errno> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: rest is a valid writable buffer of rest.len() bytes.
        let r = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if r < 0 {
            let e = std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO);
            if e == libc::EINTR {
                continue;
            }
            return Err(e);
        }
        filled += r as usize;
    }
    Ok(filled)
}

impl FileDescription for MemDevice {
    fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        match self.kind {
            Kind::Null => Ok(0),
            Kind::Zero | Kind::Full => {
                buf.fill(0);
                Ok(buf.len())
            }
            Kind::Random => fill_random(buf),
        }
    }

    fn write(&self, buf: &[u8]) -> Result<usize, Errno> {
        match self.kind {
            Kind::Full => Err(libc::ENOSPC),
            _ => Ok(buf.len()),
        }
    }

    fn pread(&self, buf: &mut [u8], _offset: i64) -> Result<usize, Errno> {
        self.read(buf)
    }

    fn pwrite(&self, buf: &[u8], _offset: i64) -> Result<usize, Errno> {
        self.write(buf)
    }

    fn seek(&self, _offset: i64, _whence: i32) -> Result<i64, Errno> {
        // Linux's memory devices accept any seek and stay at 0.
        Ok(0)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(Stat {
            mode: libc::S_IFCHR | 0o666,
            rdev: self.rdev,
            nlink: 1,
            blksize: 4096,
            ..Default::default()
        })
    }

    fn may_block(&self) -> bool {
        false
    }
}

/// Opens the device numbered `rdev`, if the sandbox provides it.
pub fn open(rdev: u64) -> Option<Arc<dyn FileDescription>> {
    let kind = match rdev {
        NULL => Kind::Null,
        ZERO => Kind::Zero,
        FULL => Kind::Full,
        RANDOM | URANDOM => Kind::Random,
        _ => return None,
    };
    Some(Arc::new(MemDevice { kind, rdev }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_linux() {
        assert_eq!(NULL, libc::makedev(1, 3));
        assert_eq!(URANDOM, libc::makedev(1, 9));
        assert_eq!(makedev(259, 70000), libc::makedev(259, 70000));
    }

    #[test]
    fn devices_behave() {
        let mut buf = [7u8; 16];
        assert_eq!(open(NULL).unwrap().read(&mut buf), Ok(0));
        assert_eq!(open(ZERO).unwrap().read(&mut buf), Ok(16));
        assert_eq!(buf, [0; 16]);
        assert_eq!(open(FULL).unwrap().write(&buf), Err(libc::ENOSPC));
        assert_eq!(open(URANDOM).unwrap().read(&mut buf), Ok(16));
        assert!(open(makedev(4, 1)).is_none());
    }
}
