//! Linux AIO: io_setup, io_destroy, io_submit, io_cancel, io_getevents, io_pgetevents
//! (fs/aio.c). The contexts, their rings and completion are `crate::aio`.
//!
//! Checks come in Linux's order, and every guest pointer is untrusted: a bad one gives
//! EFAULT where Linux gives it (at submission for the iocb, its key and an iovec array or a
//! buffer outside user space; in the event's `res` for a buffer that faults during the
//! transfer).

use std::sync::Arc;
use std::time::{Duration, Instant};

use fs::vfs::{FileType, OpenFile};
use fs::waiter::{Wake, ERESTARTNOHAND, POLLERR, POLLHUP, POLLIN, POLLOUT};
use platform::{Prot, UserRegs};

use crate::aio::{self, Completion, Context, IoEvent, EVENT_LEN};
use crate::errno::{Errno, SysResult};
use crate::mm::{FileMapping, Vma, VmaKind};
use crate::task::TaskState;

const IOCB_CMD_PREAD: u16 = 0;
const IOCB_CMD_PWRITE: u16 = 1;
const IOCB_CMD_FSYNC: u16 = 2;
const IOCB_CMD_FDSYNC: u16 = 3;
const IOCB_CMD_POLL: u16 = 5;
const IOCB_CMD_PREADV: u16 = 7;
const IOCB_CMD_PWRITEV: u16 = 8;

const IOCB_FLAG_RESFD: u32 = 1;
const IOCB_FLAG_IOPRIO: u32 = 2;

/// RWF_HIPRI, DSYNC, SYNC, NOWAIT, APPEND, NOAPPEND.
const RWF_ACCEPTED: u32 = 0x3f;
const RWF_NOWAIT: u32 = 0x8;
const RWF_APPEND: u32 = 0x10;

/// `sizeof(struct iocb)`.
const IOCB_LEN: usize = 64;
/// Linux's TASK_SIZE_MAX: `access_ok` refuses ranges reaching past it.
const TASK_SIZE: u64 = 0x7fff_ffff_f000;
/// Linux caps one transfer at this many bytes.
const MAX_RW_COUNT: u64 = 0x7fff_f000;
/// Linux's UIO_MAXIOV.
const IOV_MAX: u64 = 1024;
/// Bytes moved through the sentry per file call.
const CHUNK: u64 = 1 << 20;
/// ktime's largest whole second count (KTIME_SEC_MAX): later is "no timeout".
const KTIME_SEC_MAX: i64 = i64::MAX / 1_000_000_000;

/// A `struct iocb` as read from the guest.
struct Iocb {
    data: u64,
    rw_flags: u32,
    opcode: u16,
    reqprio: u16,
    fd: u32,
    buf: u64,
    nbytes: u64,
    offset: i64,
    reserved2: u64,
    flags: u32,
    resfd: u32,
}

impl Iocb {
    fn parse(b: &[u8; IOCB_LEN]) -> Iocb {
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4 bytes"));
        let u16_at = |o: usize| u16::from_le_bytes(b[o..o + 2].try_into().expect("2 bytes"));
        Iocb {
            data: u64_at(0),
            rw_flags: u32_at(12),
            opcode: u16_at(16),
            reqprio: u16_at(18),
            fd: u32_at(20),
            buf: u64_at(24),
            nbytes: u64_at(32),
            offset: u64_at(40) as i64,
            reserved2: u64_at(48),
            flags: u32_at(56),
            resfd: u32_at(60),
        }
    }
}

/// The live context `ctx_id` names: the id in the ring at that address, which must map
/// back to a context whose ring is there (Linux's lookup_ioctx). EINVAL otherwise.
fn lookup(t: &TaskState, ctx_id: u64) -> Result<Arc<Context>, Errno> {
    let ring_id = t.mm.read_u32(ctx_id).map_err(|_| Errno::EINVAL)?;
    t.mm.aio.lookup(ctx_id, ring_id).ok_or(Errno::EINVAL)
}

/// CPUs the ring is sized for (Linux: the possible CPUs).
fn possible_cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

pub fn io_setup(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (nr_events, ctxp) = (a[0] as u32, a[1]);
    if t.mm.read_u64(ctxp)? != 0 || nr_events == 0 {
        return Err(Errno::EINVAL);
    }
    let (slots, len) = aio::ring_geometry(nr_events, possible_cpus()).map_err(Errno)?;
    let inode = super::copy::shared_anonymous_object(t, len)?;
    let start = {
        let mut mm = t.mm.lock();
        let start = mm.find_free(len, mm.mmap_base).ok_or(Errno::ENOMEM)?;
        if mm.mapped_bytes(0, u64::MAX) + len > t.rlimits[libc::RLIMIT_AS as usize].0 {
            return Err(Errno::ENOMEM);
        }
        mm.insert_vma(Vma {
            start,
            end: start + len,
            prot: Prot {
                read: true,
                write: true,
                exec: false,
            },
            kind: VmaKind::File,
            file: Some(FileMapping {
                inode: inode.clone(),
                offset: 0,
                shared: true,
                may_write: true,
                path: b"/[aio] (deleted)".to_vec(),
                shm: None,
                name: None,
            }),
            flags: crate::mm::VmFlags {
                dontexpand: true,
                ..Default::default()
            },
        });
        start
    };
    let unmap = |t: &TaskState| t.mm.lock().unmap(start, len);
    let ctx = match Context::new(inode, slots, nr_events, len, start) {
        Ok(c) => c,
        Err(e) => {
            unmap(t);
            return Err(Errno(e));
        }
    };
    if !aio::reserve_aio_nr(nr_events as u64) {
        unmap(t);
        return Err(Errno::EAGAIN);
    }
    if let Err(e) = t.mm.aio.insert(&ctx) {
        t.mm.aio.remove(&ctx);
        unmap(t);
        return Err(Errno(e));
    }
    if t.mm.copy_out(ctxp, &start.to_le_bytes()).is_err() {
        // As Linux: the context was made, and goes again.
        destroy(t, &ctx);
        return Err(Errno::EFAULT);
    }
    Ok(0)
}

/// Kills `ctx`, unmaps its ring wherever it is now, and waits for its requests: false if
/// someone else destroyed it first.
fn destroy(t: &TaskState, ctx: &Arc<Context>) -> bool {
    if !t.mm.aio.remove(ctx) {
        return false;
    }
    t.mm.lock().unmap(ctx.user_id(), ctx.map_len());
    aio::destroy_wait(ctx);
    true
}

pub fn io_destroy(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let ctx = lookup(t, a[0])?;
    if !destroy(t, &ctx) {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

pub fn io_submit(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (nr, list) = (a[1] as i64, a[2]);
    if nr < 0 {
        return Err(Errno::EINVAL);
    }
    let ctx = lookup(t, a[0])?;
    let nr = nr.min(ctx.slots() as i64) as u64;
    let mut done = 0u64;
    let mut err = None;
    while done < nr {
        let at = list.checked_add(done * 8).ok_or(Errno::EFAULT);
        let iocb = match at.and_then(|at| t.mm.read_u64(at)) {
            Ok(p) => p,
            Err(_) => {
                err = Some(Errno::EFAULT);
                break;
            }
        };
        if let Err(e) = submit_one(t, &ctx, iocb) {
            err = Some(e);
            break;
        }
        done += 1;
    }
    match err {
        Some(e) if done == 0 => Err(e),
        _ => Ok(done),
    }
}

/// io_submit_one: reads and checks one iocb, reserves its slot, and starts it.
fn submit_one(t: &mut TaskState, ctx: &Arc<Context>, user_iocb: u64) -> Result<(), Errno> {
    let mut raw = [0u8; IOCB_LEN];
    t.mm.copy_in(user_iocb, &mut raw)?;
    let iocb = Iocb::parse(&raw);
    if iocb.reserved2 != 0 || (iocb.nbytes as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    ctx.reserve().map_err(Errno)?;
    let r = start(t, ctx, user_iocb, &iocb);
    if r.is_err() {
        ctx.unreserve();
    }
    r
}

/// The open file at `fd` as Linux's `fget` sees it: O_PATH descriptors don't count.
fn get_file(t: &TaskState, fd: u64) -> Result<Arc<OpenFile>, Errno> {
    let file = t.fds.get(fd)?;
    if file.flags() & libc::O_PATH as u32 != 0 {
        return Err(Errno::EBADF);
    }
    Ok(file)
}

/// __io_submit_one: the file, the eventfd, the key, then the operation.
fn start(t: &mut TaskState, ctx: &Arc<Context>, user_iocb: u64, iocb: &Iocb) -> Result<(), Errno> {
    let file = get_file(t, iocb.fd as u64)?;
    let resfd = if iocb.flags & IOCB_FLAG_RESFD != 0 {
        let f = get_file(t, iocb.resfd as u64)?;
        if f.special_desc().and_then(|d| d.as_eventfd()).is_none() {
            return Err(Errno::EINVAL);
        }
        Some(f)
    } else {
        None
    };
    // aio_key: the kernel writes 0 (KIOCB_KEY) into the caller's iocb.
    t.mm.copy_out(user_iocb + 8, &0u32.to_le_bytes())?;
    let completion = Completion {
        event: IoEvent {
            data: iocb.data,
            obj: user_iocb,
            res: 0,
            res2: 0,
        },
        resfd,
    };
    match iocb.opcode {
        IOCB_CMD_PREAD | IOCB_CMD_PREADV => {
            prep_rw(t, iocb)?;
            if !file.readable() {
                return Err(Errno::EBADF);
            }
            check_rw_file(&file)?;
            let segs = setup_rw(t, iocb, iocb.opcode == IOCB_CMD_PREADV)?;
            let total = segs.iter().map(|s| s.1).sum();
            verify_area(iocb.offset, total)?;
            let res = if would_wait(&file, iocb, POLLIN | POLLHUP) {
                -(libc::EAGAIN as i64)
            } else {
                read_op(t, &file, &segs, iocb.offset as u64)
            };
            ctx.complete(completion, res);
        }
        IOCB_CMD_PWRITE | IOCB_CMD_PWRITEV => {
            prep_rw(t, iocb)?;
            if !file.writable() {
                return Err(Errno::EBADF);
            }
            check_rw_file(&file)?;
            let segs = setup_rw(t, iocb, iocb.opcode == IOCB_CMD_PWRITEV)?;
            let total = segs.iter().map(|s| s.1).sum();
            verify_area(iocb.offset, total)?;
            let append = iocb.rw_flags & RWF_APPEND != 0;
            let res = if would_wait(&file, iocb, POLLOUT | POLLERR) {
                -(libc::EAGAIN as i64)
            } else {
                write_op(t, &file, &segs, iocb.offset as u64, append)
            };
            if res == -(libc::EPIPE as i64) {
                // pipe_write raises SIGPIPE itself, also for aio.
                let _ = super::signal::sigpipe_on_epipe(t, Err(Errno(libc::EPIPE)));
            }
            ctx.complete(completion, res);
        }
        IOCB_CMD_FSYNC | IOCB_CMD_FDSYNC => {
            if iocb.buf != 0 || iocb.offset != 0 || iocb.nbytes != 0 || iocb.rw_flags != 0 {
                return Err(Errno::EINVAL);
            }
            // Only files with an fsync method: regular files and directories.
            let inode = match (file.special_desc(), file.inode()) {
                (None, Some(i)) => i.clone(),
                _ => return Err(Errno::EINVAL),
            };
            let ctx = ctx.clone();
            aio::run_on_worker(Box::new(move || {
                let res = inode.sync().map_or_else(|e| -(e as i64), |()| 0);
                ctx.complete(completion, res);
            }));
        }
        IOCB_CMD_POLL => {
            // Only the poll bits of a 16-bit mask, and no other fields.
            if iocb.buf as u16 as u64 != iocb.buf
                || iocb.offset != 0
                || iocb.nbytes != 0
                || iocb.rw_flags != 0
            {
                return Err(Errno::EINVAL);
            }
            let events = iocb.buf as u32 | POLLERR | POLLHUP;
            ctx.start_poll(file, events, completion).map_err(Errno)?;
        }
        _ => return Err(Errno::EINVAL),
    }
    Ok(())
}

/// aio_prep_rw: the I/O priority (IOCB_FLAG_IOPRIO) and the RWF_* flags.
fn prep_rw(t: &TaskState, iocb: &Iocb) -> Result<(), Errno> {
    if iocb.flags & IOCB_FLAG_IOPRIO != 0 {
        let (class, level) = (iocb.reqprio >> 13, iocb.reqprio & 0x1fff);
        match class {
            // IOPRIO_CLASS_RT needs CAP_SYS_NICE or CAP_SYS_ADMIN.
            1 if !crate::caps::capable(&t.creds, crate::caps::Cap::SysNice)
                && !crate::caps::capable(&t.creds, crate::caps::Cap::SysAdmin) =>
            {
                return Err(Errno::EPERM)
            }
            1..=3 if level >= 8 => return Err(Errno::EINVAL),
            0..=3 => {}
            _ => return Err(Errno::EINVAL),
        }
    }
    if iocb.rw_flags & !RWF_ACCEPTED != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    Ok(())
}

/// Files without read_iter/write_iter, which Linux's aio refuses with EINVAL: directories,
/// epoll instances, timerfds.
fn check_rw_file(file: &OpenFile) -> Result<(), Errno> {
    let refused = match file.special_desc() {
        Some(d) => d.as_epoll().is_some() || d.as_timerfd().is_some(),
        None => file
            .inode()
            .is_some_and(|i| i.file_type() == FileType::Directory),
    };
    if refused {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Whether `[addr, addr+len)` lies in user space (Linux's access_ok).
fn access_ok(addr: u64, len: u64) -> bool {
    addr.checked_add(len).is_some_and(|end| end <= TASK_SIZE)
}

/// aio_setup_rw: the guest buffers, as (address, length) pairs, at most MAX_RW_COUNT bytes
/// in all.
fn setup_rw(t: &TaskState, iocb: &Iocb, vectored: bool) -> Result<Vec<(u64, u64)>, Errno> {
    if !vectored {
        let len = iocb.nbytes.min(MAX_RW_COUNT);
        if !access_ok(iocb.buf, len) {
            return Err(Errno::EFAULT);
        }
        return Ok(vec![(iocb.buf, len)]);
    }
    let count = iocb.nbytes;
    if count > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; count as usize * 16];
    t.mm.copy_in(iocb.buf, &mut raw)?;
    let iovs: Vec<(u64, u64)> = raw
        .chunks_exact(16)
        .map(|c| {
            (
                u64::from_le_bytes(c[0..8].try_into().expect("8 bytes")),
                u64::from_le_bytes(c[8..16].try_into().expect("8 bytes")),
            )
        })
        .collect();
    if iovs.iter().any(|&(_, len)| (len as i64) < 0) {
        return Err(Errno::EINVAL);
    }
    let mut total = 0u64;
    let mut segs = Vec::with_capacity(iovs.len());
    for (base, len) in iovs {
        if !access_ok(base, len) {
            return Err(Errno::EFAULT);
        }
        let len = len.min(MAX_RW_COUNT - total);
        total += len;
        segs.push((base, len));
    }
    Ok(segs)
}

/// rw_verify_area for a position and count.
fn verify_area(pos: i64, count: u64) -> Result<(), Errno> {
    if pos < 0 || pos.checked_add(count as i64).is_none() {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// A transfer's result as an event's `res`: bytes, or -errno. An interrupted transfer is
/// EINTR (aio_rw_done: other requests may be running, so there is no restart).
fn res_of(r: Result<u64, i32>) -> i64 {
    match r {
        Ok(n) => n as i64,
        Err(e) if fs::waiter::is_restart(e) => -(libc::EINTR as i64),
        Err(e) => -(e as i64),
    }
}

/// RWF_NOWAIT on a stream that isn't ready for `events`: EAGAIN instead of waiting (a
/// regular file never waits here).
fn would_wait(file: &OpenFile, iocb: &Iocb, events: u32) -> bool {
    iocb.rw_flags & RWF_NOWAIT != 0 && is_stream(file) && file.readiness(events) == 0
}

/// A stream (pipe, socket, terminal, eventfd) ignores the position, as its read_iter does.
fn is_stream(file: &OpenFile) -> bool {
    file.may_block()
}

/// Reads at `pos` (or from the stream), ESPIPE-free: a special file without positioned
/// reads is read as a stream, as its read_iter would.
fn read_at(file: &OpenFile, buf: &mut [u8], pos: u64) -> Result<usize, i32> {
    if is_stream(file) {
        return file.read(buf);
    }
    match file.pread(buf, pos) {
        Err(libc::ESPIPE) => file.read(buf),
        r => r,
    }
}

fn write_at(file: &OpenFile, buf: &[u8], pos: u64) -> Result<usize, i32> {
    if is_stream(file) {
        return file.write(buf);
    }
    match file.pwrite(buf, pos) {
        Err(libc::ESPIPE) => file.write(buf),
        r => r,
    }
}

/// PREAD and PREADV into `segs`: a regular file is read until done or short; a stream
/// gets one read, with the buffers checked first so that no data is consumed and lost.
fn read_op(t: &mut TaskState, file: &OpenFile, segs: &[(u64, u64)], pos: u64) -> i64 {
    let r = (|| -> Result<u64, i32> {
        super::tty::check_io(t, file, false).map_err(|e| e.0)?;
        let total: u64 = segs.iter().map(|s| s.1).sum();
        if is_stream(file) {
            let want = total.min(CHUNK);
            let mut left = want;
            for &(base, len) in segs {
                let n = len.min(left);
                t.mm.check_range(base, n as usize, true).map_err(|e| e.0)?;
                left -= n;
            }
            let mut buf = vec![0u8; want as usize];
            let n = file.read(&mut buf)? as u64;
            scatter(t, segs, &buf[..n as usize]).map_err(|e| e.0)?;
            return Ok(n);
        }
        let mut done = 0u64;
        for &(base, len) in segs {
            let mut seg_done = 0u64;
            while seg_done < len {
                let want = (len - seg_done).min(CHUNK);
                let mut buf = vec![0u8; want as usize];
                let n = match read_at(file, &mut buf, pos + done) {
                    Ok(n) => n as u64,
                    Err(_) if done > 0 => return Ok(done),
                    Err(e) => return Err(e),
                };
                if n > 0 && t.mm.copy_out(base + seg_done, &buf[..n as usize]).is_err() {
                    return if done > 0 {
                        Ok(done)
                    } else {
                        Err(libc::EFAULT)
                    };
                }
                done += n;
                seg_done += n;
                if n < want {
                    return Ok(done);
                }
            }
        }
        Ok(done)
    })();
    t.process.io.count(true, &r.map_err(Errno));
    res_of(r)
}

/// Copies `data` into the guest buffers `segs` in order.
fn scatter(t: &TaskState, segs: &[(u64, u64)], mut data: &[u8]) -> Result<(), Errno> {
    for &(base, len) in segs {
        if data.is_empty() {
            break;
        }
        let n = (len as usize).min(data.len());
        t.mm.copy_out(base, &data[..n])?;
        data = &data[n..];
    }
    Ok(())
}

/// PWRITE and PWRITEV from `segs`: a stream gets the buffers in one write (a pipe sees one
/// write, atomic up to PIPE_BUF); a regular file is written in chunks until done or short.
/// RWF_APPEND writes at the end.
fn write_op(
    t: &mut TaskState,
    file: &OpenFile,
    segs: &[(u64, u64)],
    pos: u64,
    append: bool,
) -> i64 {
    let r = (|| -> Result<u64, i32> {
        super::tty::check_io(t, file, true).map_err(|e| e.0)?;
        if is_stream(file) {
            let mut buf = Vec::new();
            for &(base, len) in segs {
                let take = (len as usize).min(CHUNK as usize - buf.len());
                let at = buf.len();
                buf.resize(at + take, 0);
                if t.mm.copy_in(base, &mut buf[at..]).is_err() {
                    buf.truncate(at);
                    if buf.is_empty() {
                        return Err(libc::EFAULT);
                    }
                    break;
                }
            }
            return file.write(&buf).map(|n| n as u64);
        }
        let mut pos = pos;
        if append {
            pos = file.stat()?.size.max(0) as u64;
        }
        let total: u64 = segs.iter().map(|s| s.1).sum();
        if total == 0 {
            return write_at(file, &[], pos).map(|n| n as u64);
        }
        let mut done = 0u64;
        for &(base, len) in segs {
            let mut seg_done = 0u64;
            while seg_done < len {
                let want = (len - seg_done).min(CHUNK);
                let mut buf = vec![0u8; want as usize];
                if t.mm.copy_in(base + seg_done, &mut buf).is_err() {
                    return if done > 0 {
                        Ok(done)
                    } else {
                        Err(libc::EFAULT)
                    };
                }
                let n = match write_at(file, &buf, pos + done) {
                    Ok(n) => n as u64,
                    Err(_) if done > 0 => return Ok(done),
                    Err(e) => return Err(e),
                };
                done += n;
                seg_done += n;
                if n < want {
                    return Ok(done);
                }
            }
        }
        Ok(done)
    })();
    t.process.io.count(false, &r.map_err(Errno));
    res_of(r)
}

/// Whether the ring poller may serve this io_submit or io_getevents (a ring round trip
/// instead of a kick and an exit): an io_submit whose reads and writes are all of files that
/// never block (fsync and poll requests never wait in io_submit); an io_getevents that
/// won't wait (zero timeout, or min_nr events already in the ring). Should another thread
/// take the events first, the poller declines the call (see `read_events`).
pub fn poller_candidate(t: &TaskState, nr: u64, a: [u64; 6]) -> bool {
    if nr == libc::SYS_io_getevents as u64 {
        let min_nr = a[1] as i64;
        if min_nr <= 0 {
            return true;
        }
        let mut ts = [0u8; 16];
        if a[4] != 0 && t.mm.copy_in(a[4], &mut ts).is_ok() && ts == [0u8; 16] {
            return true;
        }
        return lookup(t, a[0]).map_or(true, |ctx| ctx.available() >= min_nr as u64);
    }
    // io_submit: a handful of iocbs are looked at; a bad pointer fails at once anyway.
    let count = a[1] as i64;
    if count > 16 {
        return false;
    }
    (0..count.max(0) as u64).all(|i| {
        let Ok(p) = t.mm.read_u64(a[2].wrapping_add(i * 8)) else {
            return true;
        };
        let mut raw = [0u8; IOCB_LEN];
        if t.mm.copy_in(p, &mut raw).is_err() {
            return true;
        }
        let iocb = Iocb::parse(&raw);
        match iocb.opcode {
            IOCB_CMD_FSYNC | IOCB_CMD_FDSYNC | IOCB_CMD_POLL => true,
            _ => t.fds.get(iocb.fd as u64).map_or(true, |f| !f.may_block()),
        }
    })
}

pub fn io_cancel(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let iocb = a[1];
    let key = t.mm.read_u32(iocb.checked_add(8).ok_or(Errno::EFAULT)?)?;
    if key != 0 {
        return Err(Errno::EINVAL);
    }
    let ctx = lookup(t, a[0])?;
    ctx.cancel(iocb).map_err(Errno)?;
    // The event goes to the ring; the result argument is unused since Linux 4.19.
    Err(Errno(libc::EINPROGRESS))
}

/// io_getevents' timeout: None waits forever, Some(None) checks once, Some(Some(t)) waits
/// until `t`. Linux converts it to ktime without checking it, so tv_nsec past a second
/// just adds up; a negative total never expires (the hrtimer's ktime_add_safe turns a
/// relative time that ends before now into KTIME_MAX).
fn read_timeout(t: &TaskState, addr: u64) -> Result<Option<Option<Instant>>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let (sec, nsec) = super::time::read_raw_timespec(t, addr)?;
    if sec >= KTIME_SEC_MAX {
        return Ok(None);
    }
    let ns = sec.wrapping_mul(1_000_000_000).wrapping_add(nsec);
    if ns < 0 {
        return Ok(None);
    }
    if ns == 0 {
        return Ok(Some(None));
    }
    Ok(Instant::now()
        .checked_add(Duration::from_nanos(ns as u64))
        .map(Some))
}

/// How a wait for events ended without a count to return.
enum Interrupted {
    Yes,
}

/// read_events: takes events until `min_nr` have come (at most `nr`), the deadline passes
/// or a signal comes. Returns the count, an errno (EFAULT, EINVAL for a context destroyed
/// meanwhile) when nothing was taken, or Interrupted when a signal ended the wait with
/// nothing taken.
fn read_events(
    t: &TaskState,
    ctx: &Context,
    min_nr: u64,
    nr: u64,
    events: u64,
    timeout: Option<Option<Instant>>,
) -> Result<Result<u64, Errno>, Interrupted> {
    let mut got = 0u64;
    // On the ring poller, which must not sleep: all min_nr events or none, and a wait
    // declined (WOULD_SLEEP: the task's own thread serves the call from the start).
    let no_sleep = fs::waiter::no_sleep();
    let need = if no_sleep && timeout != Some(None) {
        min_nr
    } else {
        0
    };
    // One aio_read_events: Some(result) when the wait is over.
    let step = |got: &mut u64| -> Option<Result<u64, Errno>> {
        let base = *got;
        let r = ctx.take_events(nr - base, need, |bytes, off| {
            let at = events.checked_add(base * EVENT_LEN + off).ok_or(())?;
            t.mm.copy_out(at, bytes).map_err(|_| ())
        });
        let failed = match r {
            Ok(n) => {
                *got += n;
                None
            }
            Err(e) => Some(Errno(e)),
        };
        let failed = failed.or(ctx.dead().then_some(Errno::EINVAL));
        match failed {
            Some(e) if *got == 0 => Some(Err(e)),
            Some(_) => Some(Ok(*got)),
            None if *got >= min_nr => Some(Ok(*got)),
            None => None,
        }
    };
    let deadline = match timeout {
        Some(None) => return Ok(step(&mut got).unwrap_or(Ok(got))),
        Some(Some(at)) => Some(at),
        None => None,
    };
    if no_sleep {
        return Ok(step(&mut got).unwrap_or(Err(Errno(fs::waiter::WOULD_SLEEP))));
    }
    let waiter = &t.waiter;
    waiter.reset();
    let _registration = ctx.queue().register(waiter, fs::waiter::POLLIN);
    loop {
        if let Some(r) = step(&mut got) {
            return Ok(r);
        }
        match waiter.wait(deadline) {
            Wake::Notified => {}
            Wake::TimedOut => {
                let r = step(&mut got).unwrap_or(Ok(got));
                if r == Ok(0) && waiter.interrupted() {
                    return Err(Interrupted::Yes);
                }
                return Ok(r);
            }
            Wake::Interrupted if got > 0 => return Ok(Ok(got)),
            Wake::Interrupted => return Err(Interrupted::Yes),
        }
    }
}

/// do_io_getevents: the context and the counts, then the wait.
fn do_getevents(
    t: &TaskState,
    a: [u64; 6],
    timeout: Option<Option<Instant>>,
) -> Result<Result<u64, Errno>, Interrupted> {
    let (min_nr, nr) = (a[1] as i64, a[2] as i64);
    let Ok(ctx) = lookup(t, a[0]) else {
        return Ok(Err(Errno::EINVAL));
    };
    if min_nr < 0 || min_nr > nr {
        return Ok(Err(Errno::EINVAL));
    }
    read_events(t, &ctx, min_nr as u64, nr as u64, a[3], timeout)
}

pub fn io_getevents(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let timeout = read_timeout(t, a[4])?;
    match do_getevents(t, a, timeout) {
        Ok(r) => r,
        // Never restarted, handler or not (and so also after a stop and SIGCONT, which
        // signal(7) lists for io_getevents).
        Err(Interrupted::Yes) => Err(Errno::EINTR),
    }
}

pub fn io_pgetevents(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let timeout = read_timeout(t, a[4])?;
    // struct __aio_sigset: the mask's address and its size.
    let (mask, size) = if a[5] != 0 {
        let mut b = [0u8; 16];
        t.mm.copy_in(a[5], &mut b)?;
        (
            u64::from_le_bytes(b[..8].try_into().expect("8 bytes")),
            u64::from_le_bytes(b[8..].try_into().expect("8 bytes")),
        )
    } else {
        (0, 0)
    };
    super::poll::with_sigmask(t, mask, size, |t| match do_getevents(t, a, timeout) {
        Ok(r) => r,
        // Restarted when no handler runs, else EINTR.
        Err(Interrupted::Yes) => Err(Errno(ERESTARTNOHAND)),
    })
}
