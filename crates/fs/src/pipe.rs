//! Pipes: a bounded byte buffer between a read end and a write end, with Linux's semantics
//! (atomic writes up to PIPE_BUF, EOF when the last writer goes, EPIPE when no reader is
//! left, EAGAIN for non-blocking ends, F_GETPIPE_SZ/F_SETPIPE_SZ), readiness for poll and
//! epoll, and the primitives of splice and tee.
//!
//! Blocking reads and writes sleep on the pipe's Condvar; poll, epoll and splice's callers
//! learn of changes through the pipe's [`WaitQueue`], shared by both ends.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::byte_queue::take_front;
use crate::waiter::{WaitQueue, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use crate::{Errno, FileDescription, Stat};

/// Writes of at most this many bytes are never interleaved with others.
pub const PIPE_BUF: usize = 4096;
/// Default capacity (16 pages, as Linux).
pub const DEFAULT_CAPACITY: usize = 65536;
/// Largest capacity an unprivileged F_SETPIPE_SZ may ask for (/proc/sys/fs/pipe-max-size).
pub const MAX_CAPACITY: usize = 1 << 20;
/// pipefs's device number.
const PIPE_DEV: u64 = crate::dev::makedev(0, 12);

static NEXT_INO: AtomicU64 = AtomicU64::new(1);

struct State {
    buf: VecDeque<u8>,
    capacity: usize,
    readers: usize,
    writers: usize,
    /// Opens of a FIFO for reading and for writing so far (Linux's r_counter and
    /// w_counter): a blocked open waits for the other side's count to move.
    read_opens: u64,
    write_opens: u64,
}

/// The buffer shared by both ends.
pub struct Pipe {
    state: Mutex<State>,
    /// Signalled whenever data, room or an end comes or goes.
    changed: Condvar,
    /// Readiness listeners of both ends (poll, epoll).
    queue: WaitQueue,
    ino: u64,
}

impl State {
    fn room(&self) -> usize {
        self.capacity.saturating_sub(self.buf.len())
    }

    /// Whether a writer sees the pipe as writable (POLLOUT). Linux counts page-sized slots
    /// and calls a pipe full when none is free; in bytes that is less than a page of room.
    fn writable(&self) -> bool {
        self.room() >= PIPE_BUF
    }
}

impl Pipe {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps until something changes; ERESTARTSYS when the calling task is interrupted.
    fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> Result<MutexGuard<'a, State>, Errno> {
        crate::waiter::wait_on(&self.changed, guard)
    }
}

/// One end of a pipe. Dropping the last reader or writer is what EOF and EPIPE see. A FIFO
/// opened O_RDWR is both ends at once.
pub struct PipeEnd {
    pipe: Arc<Pipe>,
    read: bool,
    write: bool,
}

fn new_buffer(readers: usize, writers: usize, ino: u64) -> Arc<Pipe> {
    Arc::new(Pipe {
        state: Mutex::new(State {
            buf: VecDeque::new(),
            capacity: DEFAULT_CAPACITY,
            readers,
            writers,
            read_opens: readers as u64,
            write_opens: writers as u64,
        }),
        changed: Condvar::new(),
        queue: WaitQueue::new(),
        ino,
    })
}

/// Creates a pipe: (read end, write end).
pub fn new_pipe() -> (Arc<PipeEnd>, Arc<PipeEnd>) {
    let pipe = new_buffer(1, 1, NEXT_INO.fetch_add(1, Ordering::Relaxed));
    (
        Arc::new(PipeEnd {
            pipe: pipe.clone(),
            read: true,
            write: false,
        }),
        Arc::new(PipeEnd {
            pipe,
            read: false,
            write: true,
        }),
    )
}

/// The buffers of the FIFOs open now, by the FIFO's (st_dev, st_ino): every open of one FIFO
/// shares its buffer, which goes (with what it held) when the last end closes, as Linux's.
static FIFOS: Mutex<Option<FifoBuffers>> = Mutex::new(None);

type FifoBuffers = std::collections::HashMap<(u64, u64), std::sync::Weak<Pipe>>;

/// Opens the FIFO whose inode is (`dev`, `ino`) with access mode `acc` (O_RDONLY, O_WRONLY
/// or O_RDWR), as Linux's fifo_open: O_RDWR never waits; O_RDONLY waits for a writer and
/// O_WRONLY for a reader unless `nonblock`, when O_WRONLY without a reader is ENXIO.
/// ERESTARTSYS when the wait is interrupted; [`crate::waiter::WOULD_SLEEP`] on a thread that
/// must not sleep, before anything changed.
pub fn open_fifo(dev: u64, ino: u64, acc: i32, nonblock: bool) -> Result<Arc<PipeEnd>, Errno> {
    let pipe = {
        let mut fifos = FIFOS.lock().unwrap_or_else(|e| e.into_inner());
        let map = fifos.get_or_insert_with(Default::default);
        map.retain(|_, p| p.strong_count() > 0);
        match map.get(&(dev, ino)).and_then(|p| p.upgrade()) {
            Some(p) => p,
            None => {
                let p = new_buffer(0, 0, ino);
                map.insert((dev, ino), Arc::downgrade(&p));
                p
            }
        }
    };
    attach(pipe, acc, nonblock, false)
}

impl PipeEnd {
    /// A new end of this end's pipe with access mode `acc`: what an open of
    /// /proc/PID/fd/N gives for a pipe on Linux (bash's `<(...)` and `/dev/stdin` open
    /// them). As Linux's fifo_open for a pipe (not a FIFO), it never waits for the other
    /// side, nor refuses a writer without readers.
    pub fn reopen(&self, acc: i32, nonblock: bool) -> Result<Arc<PipeEnd>, Errno> {
        attach(self.pipe.clone(), acc, nonblock, true)
    }
}

/// A new end of `pipe` with access mode `acc`, as Linux's fifo_open (see [`open_fifo`]);
/// `is_pipe`: an anonymous pipe, which neither waits for a partner nor refuses a
/// non-blocking writer without readers.
fn attach(pipe: Arc<Pipe>, acc: i32, nonblock: bool, is_pipe: bool) -> Result<Arc<PipeEnd>, Errno> {
    let (read, write) = match acc {
        libc::O_RDONLY => (true, false),
        libc::O_WRONLY => (false, true),
        libc::O_RDWR => (true, true),
        _ => return Err(libc::EINVAL),
    };
    let mut st = pipe.lock();
    if !is_pipe && write && !read && nonblock && st.readers == 0 {
        return Err(libc::ENXIO);
    }
    let must_wait = !is_pipe
        && !nonblock
        && ((read && !write && st.writers == 0) || (write && !read && st.readers == 0));
    if must_wait && crate::waiter::no_sleep() {
        return Err(crate::waiter::WOULD_SLEEP);
    }
    if read {
        st.readers += 1;
        st.read_opens += 1;
    }
    if write {
        st.writers += 1;
        st.write_opens += 1;
    }
    pipe.changed.notify_all();
    let end = Arc::new(PipeEnd {
        pipe: pipe.clone(),
        read,
        write,
    });
    if must_wait {
        if read {
            let seen = st.write_opens;
            while st.writers == 0 && st.write_opens == seen {
                st = pipe.wait(st)?;
            }
        } else {
            let seen = st.read_opens;
            while st.readers == 0 && st.read_opens == seen {
                st = pipe.wait(st)?;
            }
        }
    }
    drop(st);
    // A new end: pollers of the other side see it (POLLHUP/POLLERR may end).
    pipe.queue.notify(0);
    Ok(end)
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        let mut st = self.pipe.lock();
        let mut last = false;
        if self.write {
            st.writers -= 1;
            last |= st.writers == 0;
        }
        if self.read {
            st.readers -= 1;
            last |= st.readers == 0;
        }
        self.pipe.changed.notify_all();
        drop(st);
        if last {
            // The other end now sees EOF (POLLHUP) or EPIPE (POLLERR): wake everyone, as
            // Linux does.
            self.pipe.queue.notify(0);
        }
    }
}

impl PipeEnd {
    fn do_read(&self, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        if !self.read {
            return Err(libc::EBADF);
        }
        if buf.is_empty() {
            return Ok(0);
        }
        let mut st = self.pipe.lock();
        while st.buf.is_empty() {
            if st.writers == 0 {
                return Ok(0);
            }
            if nonblock {
                return Err(libc::EAGAIN);
            }
            st = self.pipe.wait(st)?;
        }
        let was_writable = st.writable();
        let n = take_front(&mut st.buf, buf);
        self.pipe.changed.notify_all();
        let now_writable = st.writable();
        drop(st);
        self.notify_room(was_writable, now_writable);
        Ok(n)
    }

    /// After a read: writers are told of room only when the pipe stops being full (Linux
    /// wakes them only then, which is what an edge-triggered epoll on a write end sees).
    fn notify_room(&self, was_writable: bool, now_writable: bool) {
        if !was_writable && now_writable {
            self.pipe.queue.notify(POLLOUT | POLLWRNORM);
        }
    }

    /// After a write: readers are told every time (Linux wakes them on every write once the
    /// pipe has been polled, so each write is an edge for epoll).
    fn notify_data(&self) {
        self.pipe.queue.notify(POLLIN | POLLRDNORM);
    }

    fn do_write(&self, buf: &[u8], nonblock: bool) -> Result<usize, Errno> {
        if !self.write {
            return Err(libc::EBADF);
        }
        if buf.is_empty() {
            // A null write succeeds, even without readers (Linux's pipe_write).
            return Ok(0);
        }
        let mut st = self.pipe.lock();
        let mut done = 0;
        loop {
            if st.readers == 0 {
                return if done > 0 { Ok(done) } else { Err(libc::EPIPE) };
            }
            if done == buf.len() {
                return Ok(done);
            }
            let room = st.capacity.saturating_sub(st.buf.len());
            let rest = buf.len() - done;
            // Small writes go in whole or wait; large ones may be split.
            let fits = if buf.len() <= PIPE_BUF {
                room >= rest
            } else {
                room > 0
            };
            if fits {
                let n = rest.min(room);
                st.buf.extend(&buf[done..done + n]);
                done += n;
                self.pipe.changed.notify_all();
                // Tell pollers without dropping the lock: listeners never call back in.
                self.notify_data();
                continue;
            }
            if nonblock {
                return if done > 0 {
                    Ok(done)
                } else {
                    Err(libc::EAGAIN)
                };
            }
            st = match self.pipe.wait(st) {
                Ok(st) => st,
                // Interrupted: what was written stays written, as on Linux.
                Err(e) => return if done > 0 { Ok(done) } else { Err(e) },
            };
        }
    }
}

impl FileDescription for PipeEnd {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        self.do_read(buf, false)
    }

    fn write(&self, buf: &[u8]) -> Result<usize, Errno> {
        self.do_write(buf, false)
    }

    fn read_with_flags(&self, buf: &mut [u8], flags: u32) -> Result<usize, Errno> {
        self.do_read(buf, flags & libc::O_NONBLOCK as u32 != 0)
    }

    fn write_with_flags(&self, buf: &[u8], flags: u32) -> Result<usize, Errno> {
        self.do_write(buf, flags & libc::O_NONBLOCK as u32 != 0)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(Stat {
            dev: PIPE_DEV,
            ino: self.pipe.ino,
            nlink: 1,
            mode: libc::S_IFIFO | 0o600,
            blksize: 4096,
            ..Default::default()
        })
    }

    fn may_block(&self) -> bool {
        true
    }

    fn bytes_available(&self) -> Result<u32, Errno> {
        Ok(self.pipe.lock().buf.len().min(u32::MAX as usize) as u32)
    }

    fn pipe_size(&self, set: Option<u64>, privileged: bool) -> Result<u64, Errno> {
        let mut st = self.pipe.lock();
        if let Some(want) = set {
            // Linux's pipe_set_size: the argument is an unsigned int; past 2 GiB (and so
            // -1) is EINVAL; the size rounds up to a power of two of at least a page;
            // growing past pipe-max-size needs CAP_SYS_RESOURCE; shrinking below what the
            // pipe holds (in pages) is EBUSY.
            let want = want as u32 as u64;
            if want > 1 << 31 {
                return Err(libc::EINVAL);
            }
            let size = (want.max(PIPE_BUF as u64) as usize).next_power_of_two();
            if size > st.capacity && size > MAX_CAPACITY && !privileged {
                return Err(libc::EPERM);
            }
            if size / PIPE_BUF < st.buf.len().div_ceil(PIPE_BUF) {
                return Err(libc::EBUSY);
            }
            let was_writable = st.writable();
            st.capacity = size;
            self.pipe.changed.notify_all();
            let now_writable = st.writable();
            drop(st);
            self.notify_room(was_writable, now_writable);
            return Ok(size as u64);
        }
        Ok(st.capacity as u64)
    }

    fn readiness(&self, mask: u32) -> u32 {
        let st = self.pipe.lock();
        let mut ready = 0;
        if self.write {
            if st.writable() {
                ready |= POLLOUT | POLLWRNORM;
            }
            if st.readers == 0 {
                ready |= POLLERR;
            }
        }
        if self.read {
            if !st.buf.is_empty() {
                ready |= POLLIN | POLLRDNORM;
            }
            if st.writers == 0 {
                ready |= POLLHUP;
            }
        }
        ready & mask
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.pipe.queue)
    }

    fn as_pipe(&self) -> Option<&PipeEnd> {
        Some(self)
    }
}

/// Locks two different pipes in address order (two splices in opposite directions must not
/// deadlock), returning the guards in argument order.
fn lock_both<'a>(a: &'a Pipe, b: &'a Pipe) -> (MutexGuard<'a, State>, MutexGuard<'a, State>) {
    if (a as *const Pipe) < (b as *const Pipe) {
        let ga = a.lock();
        (ga, b.lock())
    } else {
        let gb = b.lock();
        (a.lock(), gb)
    }
}

/// The splice family (splice, tee, vmsplice). Unlike read and write these move as much as
/// is there (never all-or-nothing, whatever the size), and `nonblock` (SPLICE_F_NONBLOCK or
/// O_NONBLOCK on either pipe) turns waiting into EAGAIN.
impl PipeEnd {
    /// Whether `self` and `other` are ends of the same pipe.
    pub fn same_pipe(&self, other: &PipeEnd) -> bool {
        Arc::ptr_eq(&self.pipe, &other.pipe)
    }

    /// Whether this is the write end.
    pub fn is_write_end(&self) -> bool {
        self.write
    }

    /// Waits until the pipe has data or no writer (Linux's `ipipe_prep`).
    fn wait_for_data(&self, nonblock: bool) -> Result<(), Errno> {
        let mut st = self.pipe.lock();
        while st.buf.is_empty() && st.writers > 0 {
            if nonblock {
                return Err(libc::EAGAIN);
            }
            st = self.pipe.wait(st)?;
        }
        Ok(())
    }

    /// Waits until the pipe has a free page of room (Linux's `opipe_prep`); EPIPE without
    /// readers.
    fn wait_for_room(&self, nonblock: bool) -> Result<(), Errno> {
        let mut st = self.pipe.lock();
        loop {
            if st.readers == 0 {
                return Err(libc::EPIPE);
            }
            if st.writable() {
                return Ok(());
            }
            if nonblock {
                return Err(libc::EAGAIN);
            }
            st = self.pipe.wait(st)?;
        }
    }

    /// Pipe to elsewhere (splice to a file, vmsplice to memory): waits for data, then offers
    /// up to `len` buffered bytes to `sink`, which returns how many it took; those leave the
    /// pipe, the rest stay. 0 at EOF. The pipe stays locked while `sink` runs, as Linux holds
    /// the pipe's mutex, so no reader sees the bytes twice.
    pub fn splice_read(
        &self,
        len: usize,
        nonblock: bool,
        sink: impl FnOnce(&[u8]) -> Result<usize, Errno>,
    ) -> Result<usize, Errno> {
        if !self.read {
            return Err(libc::EBADF);
        }
        let mut st = self.pipe.lock();
        loop {
            if !st.buf.is_empty() {
                break;
            }
            if st.writers == 0 {
                return Ok(0);
            }
            if nonblock {
                return Err(libc::EAGAIN);
            }
            st = self.pipe.wait(st)?;
        }
        let n = len.min(st.buf.len());
        let taken = sink(&st.buf.make_contiguous()[..n])?.min(n);
        let was_writable = st.writable();
        st.buf.drain(..taken);
        self.pipe.changed.notify_all();
        let now_writable = st.writable();
        drop(st);
        self.notify_room(was_writable, now_writable);
        Ok(taken)
    }

    /// Elsewhere to pipe (splice from a file, vmsplice from memory): waits for room, then
    /// lets `source` fill up to `len` bytes (at most the room there is) and appends what it
    /// filled. EPIPE without readers.
    pub fn splice_write(
        &self,
        len: usize,
        nonblock: bool,
        source: impl FnOnce(&mut [u8]) -> Result<usize, Errno>,
    ) -> Result<usize, Errno> {
        if !self.write {
            return Err(libc::EBADF);
        }
        let mut st = self.pipe.lock();
        loop {
            if st.readers == 0 {
                return Err(libc::EPIPE);
            }
            if st.writable() {
                break;
            }
            if nonblock {
                return Err(libc::EAGAIN);
            }
            st = self.pipe.wait(st)?;
        }
        let mut buf = vec![0u8; len.min(st.room())];
        let n = source(&mut buf)?.min(buf.len());
        st.buf.extend(&buf[..n]);
        self.pipe.changed.notify_all();
        drop(st);
        if n > 0 {
            self.notify_data();
        }
        Ok(n)
    }

    /// splice between pipes: moves up to `len` bytes from this (read) end to `out` (a write
    /// end of another pipe). 0 when this pipe is empty with no writer.
    pub fn splice_to(&self, out: &PipeEnd, len: usize, nonblock: bool) -> Result<usize, Errno> {
        self.pipe_to_pipe(out, len, nonblock, true)
    }

    /// tee: copies up to `len` bytes from the front of this pipe into `out`, consuming
    /// nothing.
    pub fn tee_to(&self, out: &PipeEnd, len: usize, nonblock: bool) -> Result<usize, Errno> {
        self.pipe_to_pipe(out, len, nonblock, false)
    }

    fn pipe_to_pipe(
        &self,
        out: &PipeEnd,
        len: usize,
        nonblock: bool,
        consume: bool,
    ) -> Result<usize, Errno> {
        if !self.read || !out.write {
            return Err(libc::EBADF);
        }
        if self.same_pipe(out) {
            return Err(libc::EINVAL);
        }
        loop {
            self.wait_for_data(nonblock)?;
            out.wait_for_room(nonblock)?;
            let (mut src, mut dst) = lock_both(&self.pipe, &out.pipe);
            if dst.readers == 0 {
                return Err(libc::EPIPE);
            }
            if src.buf.is_empty() && src.writers == 0 {
                return Ok(0);
            }
            if src.buf.is_empty() || !dst.writable() {
                // Raced with another reader or writer between the waits and the locks.
                if nonblock {
                    return Err(libc::EAGAIN);
                }
                continue;
            }
            let n = len.min(src.buf.len()).min(dst.room());
            let src_was_writable = src.writable();
            if consume {
                let moved: Vec<u8> = src.buf.drain(..n).collect();
                dst.buf.extend(moved);
                self.pipe.changed.notify_all();
            } else {
                let (a, b) = src.buf.as_slices();
                let from_a = n.min(a.len());
                dst.buf.extend(&a[..from_a]);
                dst.buf.extend(&b[..n - from_a]);
            }
            out.pipe.changed.notify_all();
            let src_now_writable = src.writable();
            drop((src, dst));
            if consume {
                self.notify_room(src_was_writable, src_now_writable);
            }
            out.notify_data();
            return Ok(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eof_epipe_and_nonblocking() {
        let (r, w) = new_pipe();
        assert_eq!(w.write(b"abc"), Ok(3));
        let mut buf = [0u8; 8];
        assert_eq!(r.read(&mut buf), Ok(3));
        assert_eq!(
            r.read_with_flags(&mut buf, libc::O_NONBLOCK as u32),
            Err(libc::EAGAIN)
        );
        drop(w);
        assert_eq!(r.read(&mut buf), Ok(0));
        let (r, w) = new_pipe();
        drop(r);
        assert_eq!(w.write(b"x"), Err(libc::EPIPE));
    }

    #[test]
    fn full_pipe_and_sizes() {
        let (r, w) = new_pipe();
        let big = vec![7u8; DEFAULT_CAPACITY + 10];
        let nb = libc::O_NONBLOCK as u32;
        assert_eq!(w.write_with_flags(&big, nb), Ok(DEFAULT_CAPACITY));
        assert_eq!(w.write_with_flags(b"x", nb), Err(libc::EAGAIN));
        assert_eq!(w.pipe_size(Some(4096), false), Err(libc::EBUSY));
        assert_eq!(w.pipe_size(Some(100_000), false), Ok(131072));
        assert_eq!(r.bytes_available(), Ok(DEFAULT_CAPACITY as u32));
        assert_eq!(w.pipe_size(Some(2 << 20), false), Err(libc::EPERM));
        assert_eq!(w.pipe_size(Some(u64::MAX), true), Err(libc::EINVAL));
        assert_eq!(w.pipe_size(Some((1 << 31) + 1), true), Err(libc::EINVAL));
        assert_eq!(w.pipe_size(Some(1 << 32 | 8192), false), Err(libc::EBUSY));
    }

    #[test]
    fn readiness_follows_data_room_and_ends() {
        use crate::waiter::{Waiter, Wake};
        let all = POLLIN | POLLOUT | POLLERR | POLLHUP | POLLRDNORM | POLLWRNORM;
        let (r, w) = new_pipe();
        assert_eq!(r.readiness(all), 0);
        assert_eq!(w.readiness(all), POLLOUT | POLLWRNORM);
        let waiter = Waiter::new();
        let _reg = r.wait_queue().unwrap().register(&waiter, POLLIN);
        w.write(b"abc").unwrap();
        assert_eq!(waiter.wait(Some(std::time::Instant::now())), Wake::Notified);
        assert_eq!(r.readiness(all), POLLIN | POLLRDNORM);
        // Full: not writable until a page of room is back.
        let nb = libc::O_NONBLOCK as u32;
        while w.write_with_flags(&[0u8; 4096], nb).is_ok() {}
        while w.write_with_flags(b"x", nb).is_ok() {}
        assert_eq!(w.readiness(POLLOUT), 0);
        r.read(&mut [0u8; 100]).unwrap();
        assert_eq!(w.readiness(POLLOUT), 0);
        r.read(&mut [0u8; 4096]).unwrap();
        assert_eq!(w.readiness(POLLOUT), POLLOUT);
        drop(w);
        assert_eq!(r.readiness(POLLHUP), POLLHUP);
        let (r, w) = new_pipe();
        drop(r);
        assert_eq!(w.readiness(all), POLLOUT | POLLWRNORM | POLLERR);
    }

    #[test]
    fn splice_and_tee_between_pipes() {
        let (r1, w1) = new_pipe();
        let (r2, w2) = new_pipe();
        w1.write(b"hello world").unwrap();
        assert_eq!(r1.tee_to(&w2, 5, true), Ok(5));
        assert_eq!(r1.bytes_available(), Ok(11));
        assert_eq!(r1.splice_to(&w2, 100, true), Ok(11));
        let mut buf = [0u8; 32];
        assert_eq!(r2.read(&mut buf), Ok(16));
        assert_eq!(&buf[..16], b"hellohello world");
        assert_eq!(r1.splice_to(&w2, 1, true), Err(libc::EAGAIN));
        assert_eq!(w2.splice_to(&w1, 1, true), Err(libc::EBADF));
        assert_eq!(r1.splice_to(&w1, 1, true), Err(libc::EINVAL));
        let (r3, w3) = new_pipe();
        assert_eq!(r3.splice_to(&w3, 1, true), Err(libc::EINVAL));
        drop(w1);
        assert_eq!(r1.splice_to(&w2, 1, true), Ok(0));
        drop(r2);
        w3.write(b"x").unwrap();
        assert_eq!(r3.splice_to(&w2, 1, true), Err(libc::EPIPE));
        // To and from elsewhere: only what the sink takes leaves the pipe.
        assert_eq!(r3.splice_read(8, true, |b| Ok(b.len())), Ok(1));
        assert_eq!(
            w3.splice_write(3, true, |b| {
                b.copy_from_slice(b"abc");
                Ok(2)
            }),
            Ok(2)
        );
        assert_eq!(
            r3.splice_read(8, true, |b| {
                assert_eq!(b, b"ab");
                Ok(1)
            }),
            Ok(1)
        );
        assert_eq!(r3.bytes_available(), Ok(1));
    }

    #[test]
    fn blocked_writer_is_woken_by_reader() {
        let (r, w) = new_pipe();
        let writer = std::thread::spawn(move || w.write(&vec![1u8; DEFAULT_CAPACITY * 2]));
        let mut total = 0;
        let mut buf = vec![0u8; 8192];
        while total < DEFAULT_CAPACITY * 2 {
            total += r.read(&mut buf).unwrap();
        }
        assert_eq!(writer.join().unwrap(), Ok(DEFAULT_CAPACITY * 2));
    }
}
