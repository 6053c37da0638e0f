//! File system calls. Until the VFS lands, descriptors are the standard streams.

use platform::UserRegs;

use crate::errno::{Errno, SysResult};
use crate::task::TaskState;

/// Linux caps a single read or write at this many bytes.
const MAX_RW_COUNT: u64 = 0x7fff_f000;
/// Bytes moved through the sentry per host call.
const CHUNK: usize = 1 << 20;
/// Linux's UIO_MAXIOV.
const IOV_MAX: u64 = 1024;

fn fs_err(e: i32) -> Errno {
    Errno(e)
}

pub fn read(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    let len = a[2].min(MAX_RW_COUNT).min(CHUNK as u64) as usize;
    t.mm.check_range(a[1], len, true)?;
    let mut buf = vec![0u8; len];
    let n = file.read(&mut buf).map_err(fs_err)?;
    t.mm.copy_out(a[1], &buf[..n])?;
    Ok(n as u64)
}

pub fn pread64(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    let offset = a[3] as i64;
    if offset < 0 {
        return Err(Errno::EINVAL);
    }
    let len = a[2].min(MAX_RW_COUNT).min(CHUNK as u64) as usize;
    t.mm.check_range(a[1], len, true)?;
    let mut buf = vec![0u8; len];
    let n = file.pread(&mut buf, offset).map_err(fs_err)?;
    t.mm.copy_out(a[1], &buf[..n])?;
    Ok(n as u64)
}

/// Writes `len` bytes from `addr` in chunks, stopping at the first short write.
fn write_from(t: &mut TaskState, fd: u64, addr: u64, len: u64, offset: Option<i64>) -> SysResult {
    let file = t.fds.get(fd)?;
    let len = len.min(MAX_RW_COUNT);
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(CHUNK as u64) as usize;
        let mut buf = vec![0u8; n];
        if let Err(e) = t.mm.copy_in(addr + done, &mut buf) {
            return if done > 0 { Ok(done) } else { Err(e) };
        }
        let r = match offset {
            Some(off) => file.pwrite(&buf, off + done as i64),
            None => file.write(&buf),
        };
        match r {
            Ok(w) => {
                done += w as u64;
                if w < n {
                    break;
                }
            }
            Err(e) if done == 0 => return Err(fs_err(e)),
            Err(_) => break,
        }
    }
    Ok(done)
}

pub fn write(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    write_from(t, a[0], a[1], a[2], None)
}

pub fn pwrite64(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let offset = a[3] as i64;
    if offset < 0 {
        return Err(Errno::EINVAL);
    }
    // Check the descriptor first: a pipe gives ESPIPE even for an empty write.
    t.fds.get(a[0])?.pwrite(&[], offset).map_err(fs_err)?;
    write_from(t, a[0], a[1], a[2], Some(offset))
}

/// Reads an iovec array: (base, len) pairs, validated as Linux does.
fn read_iovecs(t: &mut TaskState, addr: u64, count: u64) -> Result<Vec<(u64, u64)>, Errno> {
    if count > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; count as usize * 16];
    t.mm.copy_in(addr, &mut raw)?;
    let mut total: u64 = 0;
    let mut iovs = Vec::with_capacity(count as usize);
    for c in raw.chunks_exact(16) {
        let base = u64::from_le_bytes(c[0..8].try_into().expect("8 bytes"));
        let len = u64::from_le_bytes(c[8..16].try_into().expect("8 bytes"));
        if len > i64::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        total = total.checked_add(len).ok_or(Errno::EINVAL)?;
        if total > i64::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        iovs.push((base, len));
    }
    Ok(iovs)
}

pub fn writev(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    let iovs = read_iovecs(t, a[1], a[2])?;
    // Gather into one buffer so the write reaches the file in one piece, as Linux does for
    // pipes up to PIPE_BUF.
    let mut buf = Vec::new();
    for (base, len) in iovs {
        let room = (MAX_RW_COUNT as usize).min(CHUNK).saturating_sub(buf.len());
        let take = (len as usize).min(room);
        if take == 0 {
            continue;
        }
        let start = buf.len();
        buf.resize(start + take, 0);
        if let Err(e) = t.mm.copy_in(base, &mut buf[start..]) {
            buf.truncate(start);
            if buf.is_empty() {
                return Err(e);
            }
            break;
        }
    }
    Ok(file.write(&buf).map_err(fs_err)? as u64)
}

pub fn readv(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    let iovs = read_iovecs(t, a[1], a[2])?;
    let mut total = 0usize;
    for &(base, len) in &iovs {
        t.mm.check_range(base, len as usize, true)?;
        total += len as usize;
    }
    let mut buf = vec![0u8; total.min(CHUNK)];
    let n = file.read(&mut buf).map_err(fs_err)?;
    let mut off = 0usize;
    for (base, len) in iovs {
        if off >= n {
            break;
        }
        let take = (len as usize).min(n - off);
        t.mm.copy_out(base, &buf[off..off + take])?;
        off += take;
    }
    Ok(n as u64)
}

/// Encodes Linux's x86-64 `struct stat` (144 bytes).
fn stat_bytes(s: &::fs::Stat) -> [u8; 144] {
    let mut b = [0u8; 144];
    let mut put = |off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    put(0, s.dev);
    put(8, s.ino);
    put(16, s.nlink);
    put(24, s.mode as u64 | ((s.uid as u64) << 32));
    put(32, s.gid as u64);
    put(40, s.rdev);
    put(48, s.size as u64);
    put(56, s.blksize as u64);
    put(64, s.blocks as u64);
    put(72, s.atime.0 as u64);
    put(80, s.atime.1 as u64);
    put(88, s.mtime.0 as u64);
    put(96, s.mtime.1 as u64);
    put(104, s.ctime.0 as u64);
    put(112, s.ctime.1 as u64);
    b
}

fn stat_fd(t: &mut TaskState, fd: u64, out: u64) -> SysResult {
    let st = t.fds.get(fd)?.stat().map_err(fs_err)?;
    t.mm.copy_out(out, &stat_bytes(&st))?;
    Ok(0)
}

pub fn fstat(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    stat_fd(t, a[0], a[1])
}

pub fn newfstatat(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (dirfd, path, out, flags) = (a[0], a[1], a[2], a[3] as i32);
    let known = libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW | libc::AT_NO_AUTOMOUNT;
    if flags & !known != 0 {
        return Err(Errno::EINVAL);
    }
    let name = t.mm.copy_in_cstring(path, libc::PATH_MAX as usize)?;
    if name.is_empty() {
        if flags & libc::AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        return stat_fd(t, dirfd, out);
    }
    Err(Errno::ENOENT)
}

pub fn ioctl(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    match a[1] {
        r if r == libc::TCGETS => {
            let termios = file.tcgets().map_err(fs_err)?;
            t.mm.copy_out(a[2], &termios)?;
            Ok(0)
        }
        r if r == libc::TIOCGWINSZ => {
            let ws = file.window_size().map_err(fs_err)?;
            t.mm.copy_out(a[2], &ws)?;
            Ok(0)
        }
        _ => Err(Errno::ENOTTY),
    }
}

fn readlink_path(t: &mut TaskState, path: u64, buf: u64, size: u64) -> SysResult {
    if size as i64 <= 0 {
        return Err(Errno::EINVAL);
    }
    let name = t.mm.copy_in_cstring(path, libc::PATH_MAX as usize)?;
    if name != b"/proc/self/exe" && name != format!("/proc/{}/exe", t.pid).as_bytes() {
        return Err(Errno::ENOENT);
    }
    let target = t.exe.clone();
    let n = target.len().min(size as usize);
    t.mm.copy_out(buf, &target[..n])?;
    Ok(n as u64)
}

pub fn readlink(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    readlink_path(t, a[0], a[1], a[2])
}

pub fn readlinkat(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    // Only absolute paths exist for now, so the directory fd does not matter.
    readlink_path(t, a[1], a[2], a[3])
}

pub fn getcwd(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let mut cwd = t.cwd.clone();
    cwd.push(0);
    if (a[1] as usize) < cwd.len() {
        return Err(Errno::ERANGE);
    }
    t.mm.copy_out(a[0], &cwd)?;
    Ok(cwd.len() as u64)
}

pub fn lseek(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let whence = a[2] as i32;
    if !(libc::SEEK_SET..=libc::SEEK_HOLE).contains(&whence) {
        return Err(Errno::EINVAL);
    }
    let off = t.fds.get(a[0])?.seek(a[1] as i64, whence).map_err(fs_err)?;
    Ok(off as u64)
}
