//! Reading and writing open files: read, write and their vectored and positioned forms,
//! lseek, ioctl.

use platform::UserRegs;

use super::signal::sigpipe_on_epipe;
use crate::errno::{Errno, SysResult};
use crate::task::TaskState;

/// Linux caps a single read or write at this many bytes.
const MAX_RW_COUNT: u64 = 0x7fff_f000;
/// Bytes moved through the sentry per host call.
const CHUNK: usize = 1 << 20;
/// Linux's UIO_MAXIOV.
const IOV_MAX: u64 = 1024;

/// Runs a read (`is_read`) or write and counts it for /proc/PID/io.
fn counted(
    t: &mut TaskState,
    is_read: bool,
    call: impl FnOnce(&mut TaskState) -> SysResult,
) -> SysResult {
    let r = call(t);
    t.process.io.count(is_read, &r);
    r
}

pub fn fs_err(e: i32) -> Errno {
    Errno(e)
}

/// Reads up to `len` bytes into guest memory at `addr`, at `offset` or the file offset.
/// Regular files are read in chunks until done or short (Linux returns whole reads from
/// them); streams get one read, with the buffer checked first so that no data is consumed
/// and then lost to EFAULT.
/// Counts the call for /proc/PID/io.
fn read_into(t: &mut TaskState, fd: u64, addr: u64, len: u64, offset: Option<u64>) -> SysResult {
    counted(t, true, |t| read_into_uncounted(t, fd, addr, len, offset))
}

fn read_into_uncounted(
    t: &mut TaskState,
    fd: u64,
    addr: u64,
    len: u64,
    offset: Option<u64>,
) -> SysResult {
    let file = t.fds.get(fd)?;
    super::tty::check_io(t, &file, false)?;
    let len = len.min(MAX_RW_COUNT);
    let stream = file.may_block() || file.special_desc().is_some();
    if stream {
        t.mm.check_range(addr, len as usize, true)?;
    }
    // A regular file is read at its offset, which moves only by what reached the guest: a
    // fault in the buffer leaves it where it was, as on Linux.
    if offset.is_none() && !stream {
        if !file.readable() {
            return Err(Errno::EBADF);
        }
        let pos = file.seek(0, libc::SEEK_CUR).map_err(fs_err)?;
        let n = read_into(t, fd, addr, len, Some(pos))?;
        file.seek((pos + n) as i64, libc::SEEK_SET)
            .map_err(fs_err)?;
        return Ok(n);
    }
    super::scratch::with(len.min(CHUNK as u64) as usize, |buf| {
        let mut done = 0u64;
        loop {
            let want = (len - done).min(CHUNK as u64) as usize;
            let r = match offset {
                Some(off) => file.pread(&mut buf[..want], off + done),
                None => file.read(&mut buf[..want]),
            };
            let n = match r {
                Ok(n) => n.min(want),
                Err(e) if done == 0 => return Err(fs_err(e)),
                Err(_) => break,
            };
            if n > 0 {
                if let Err(e) = t.mm.copy_out(addr + done, &buf[..n]) {
                    return if done > 0 { Ok(done) } else { Err(e) };
                }
            }
            done += n as u64;
            if stream || n < want || done >= len {
                break;
            }
        }
        Ok(done)
    })
}

pub fn read(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    read_into(t, a[0], a[1], a[2], None)
}

pub fn pread64(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let offset = a[3] as i64;
    if offset < 0 {
        return Err(Errno::EINVAL);
    }
    read_into(t, a[0], a[1], a[2], Some(offset as u64))
}

/// Writes `len` bytes from `addr` in chunks, stopping at the first short write.
/// Counts the call for /proc/PID/io.
fn write_from(t: &mut TaskState, fd: u64, addr: u64, len: u64, offset: Option<i64>) -> SysResult {
    counted(t, false, |t| write_from_uncounted(t, fd, addr, len, offset))
}

fn write_from_uncounted(
    t: &mut TaskState,
    fd: u64,
    addr: u64,
    len: u64,
    offset: Option<i64>,
) -> SysResult {
    let file = t.fds.get(fd)?;
    super::tty::check_io(t, &file, true)?;
    let len = len.min(MAX_RW_COUNT);
    if len == 0 && offset.is_none() {
        // Linux hands empty writes to the file too: most return 0, an eventfd EINVAL.
        return file.write(&[]).map(|n| n as u64).map_err(fs_err);
    }
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(CHUNK as u64) as usize;
        let r = super::scratch::with(n, |buf| {
            t.mm.copy_in(addr + done, buf)?;
            Ok(match offset {
                Some(off) => file.pwrite(buf, off as u64 + done),
                None => file.write(buf),
            })
        });
        let r = match r {
            Ok(r) => r,
            Err(e) => return if done > 0 { Ok(done) } else { Err(e) },
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
    let r = write_from(t, a[0], a[1], a[2], None);
    sigpipe_on_epipe(t, r)
}

pub fn pwrite64(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let offset = a[3] as i64;
    if offset < 0 {
        return Err(Errno::EINVAL);
    }
    // Check the descriptor first: a pipe gives ESPIPE even for an empty write.
    t.fds
        .get(a[0])?
        .pwrite(&[], offset as u64)
        .map_err(fs_err)?;
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

/// Gathers the buffers of an iovec array and writes them in one piece (so a pipe sees one
/// write, as Linux does up to PIPE_BUF), at `offset` or the file offset.
/// Counts the call for /proc/PID/io.
fn write_vectored(
    t: &mut TaskState,
    fd: u64,
    iov: u64,
    count: u64,
    offset: Option<u64>,
) -> SysResult {
    counted(t, false, |t| {
        write_vectored_uncounted(t, fd, iov, count, offset)
    })
}

fn write_vectored_uncounted(
    t: &mut TaskState,
    fd: u64,
    iov: u64,
    count: u64,
    offset: Option<u64>,
) -> SysResult {
    let file = t.fds.get(fd)?;
    super::tty::check_io(t, &file, true)?;
    let iovs = read_iovecs(t, iov, count)?;
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
    let n = match offset {
        Some(off) => file.pwrite(&buf, off),
        None => file.write(&buf),
    };
    Ok(n.map_err(fs_err)? as u64)
}

/// Reads into the buffers of an iovec array, at `offset` or the file offset.
/// Counts the call for /proc/PID/io.
fn read_vectored(
    t: &mut TaskState,
    fd: u64,
    iov: u64,
    count: u64,
    offset: Option<u64>,
) -> SysResult {
    counted(t, true, |t| {
        read_vectored_uncounted(t, fd, iov, count, offset)
    })
}

fn read_vectored_uncounted(
    t: &mut TaskState,
    fd: u64,
    iov: u64,
    count: u64,
    offset: Option<u64>,
) -> SysResult {
    let file = t.fds.get(fd)?;
    super::tty::check_io(t, &file, false)?;
    let iovs = read_iovecs(t, iov, count)?;
    let mut total = 0usize;
    for &(base, len) in &iovs {
        t.mm.check_range(base, len as usize, true)?;
        total = total.saturating_add(len as usize);
    }
    let mut buf = vec![0u8; total.min(CHUNK)];
    let n = match offset {
        Some(off) => file.pread(&mut buf, off),
        None => file.read(&mut buf),
    }
    .map_err(fs_err)?;
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

pub fn writev(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let r = write_vectored(t, a[0], a[1], a[2], None);
    sigpipe_on_epipe(t, r)
}

pub fn readv(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    read_vectored(t, a[0], a[1], a[2], None)
}

/// The offset argument of preadv/pwritev (pos_l holds all 64 bits on x86-64).
fn vector_offset(pos: u64) -> Result<u64, Errno> {
    if (pos as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    Ok(pos)
}

pub fn preadv(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    read_vectored(t, a[0], a[1], a[2], Some(vector_offset(a[3])?))
}

pub fn pwritev(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    write_vectored(t, a[0], a[1], a[2], Some(vector_offset(a[3])?))
}

/// RWF_HIPRI, RWF_DSYNC, RWF_SYNC, RWF_NOWAIT, RWF_APPEND: accepted; the memory-backed
/// filesystems make them no-ops.
const RWF_KNOWN: u64 = 0x1f;

/// preadv2/pwritev2: an offset of -1 means the file offset.
fn v2_offset(pos: u64, flags: u64) -> Result<Option<u64>, Errno> {
    if flags & !RWF_KNOWN != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    if pos as i64 == -1 {
        return Ok(None);
    }
    vector_offset(pos).map(Some)
}

pub fn preadv2(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let offset = v2_offset(a[3], a[5])?;
    read_vectored(t, a[0], a[1], a[2], offset)
}

const RWF_APPEND: u64 = 0x10;

pub fn pwritev2(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let mut offset = v2_offset(a[3], a[5])?;
    if a[5] & RWF_APPEND != 0 {
        // Appends whatever the offset says, and leaves the file offset alone.
        let file = t.fds.get(a[0])?;
        if file.special_desc().is_none() {
            offset = Some(file.stat().map_err(fs_err)?.size as u64);
        }
    }
    let r = write_vectored(t, a[0], a[1], a[2], offset);
    sigpipe_on_epipe(t, r)
}

pub fn ioctl(t: &mut TaskState, _: &mut UserRegs, mut a: [u64; 6]) -> SysResult {
    // The request is an unsigned int: musl passes it as an int, sign-extended (TIOCGPTN,
    // 0x80045430, arrives as 0xffffffff80045430), and Linux looks at the low 32 bits.
    a[1] = a[1] as u32 as u64;
    let file = t.fds.get(a[0])?;
    match a[1] {
        r if r == libc::FIOCLEX || r == libc::FIONCLEX => {
            t.fds.set_cloexec(a[0], r == libc::FIOCLEX)?;
            return Ok(0);
        }
        r if r == libc::FIONBIO => {
            let on = t.mm.read_u32(a[2])? != 0;
            let flags = file.flags() & !(libc::O_NONBLOCK as u32);
            file.set_flags(flags | if on { libc::O_NONBLOCK as u32 } else { 0 });
            return Ok(0);
        }
        r if r == libc::FIONREAD => {
            let available = match file.inode() {
                Some(i) if i.file_type() == fs::vfs::FileType::Regular => {
                    let size = i.stat().map_err(fs_err)?.size as u64;
                    let pos = file.seek(0, libc::SEEK_CUR).map_err(fs_err)?;
                    size.saturating_sub(pos).min(i32::MAX as u64) as u32
                }
                _ => match file.special_desc() {
                    Some(d) => d.bytes_available().map_err(fs_err)?,
                    None => return Err(Errno::ENOTTY),
                },
            };
            t.mm.copy_out(a[2], &available.to_le_bytes())?;
            return Ok(0);
        }
        _ => {}
    }
    if let Some(sock) = file.special_desc().and_then(|d| d.host_socket()) {
        return super::ifioctl::ioctl(t, sock, a[1], a[2]).unwrap_or(Err(Errno::ENOTTY));
    }
    if let Some(r) = super::seccomp::listener_ioctl(t, &file, a[1], a[2]) {
        return r;
    }
    if let Some(sock) = file.special_desc().and_then(|d| d.unix_socket()) {
        if let Some(r) = super::ifioctl::interface_ioctl(t, a[1], a[2]) {
            return r;
        }
        // SIOCOUTQ is TIOCOUTQ's number.
        if a[1] == libc::TIOCOUTQ {
            let n = sock.bytes_unread_by_peer().map_err(fs_err)?;
            t.mm.copy_out(a[2], &(n.min(i32::MAX as usize) as u32).to_le_bytes())?;
            return Ok(0);
        }
        return Err(Errno::ENOTTY);
    }
    let Some(desc) = file.special_desc().filter(|d| d.terminal().is_some()) else {
        return Err(Errno::ENOTTY);
    };
    let readable = file.flags() & libc::O_ACCMODE as u32 != libc::O_WRONLY as u32;
    super::tty::ioctl(t, &file, desc, readable, a[1], a[2]).unwrap_or(Err(Errno::ENOTTY))
}

pub fn lseek(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let whence = a[2] as i32;
    if !(libc::SEEK_SET..=libc::SEEK_HOLE).contains(&whence) {
        return Err(Errno::EINVAL);
    }
    let off = t.fds.get(a[0])?.seek(a[1] as i64, whence).map_err(fs_err)?;
    Ok(off)
}
