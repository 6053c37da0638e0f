//! Pipes: a bounded byte buffer between a read end and a write end, with Linux's semantics
//! (atomic writes up to PIPE_BUF, EOF when the last writer goes, EPIPE when no reader is
//! left, EAGAIN for non-blocking ends, F_GETPIPE_SZ/F_SETPIPE_SZ).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

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
}

/// The buffer shared by both ends.
pub struct Pipe {
    state: Mutex<State>,
    /// Signalled whenever data, room or an end comes or goes.
    changed: Condvar,
    ino: u64,
}

impl Pipe {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed.wait(guard).unwrap_or_else(|e| e.into_inner())
    }
}

/// One end of a pipe. Dropping the last reader or writer is what EOF and EPIPE see.
pub struct PipeEnd {
    pipe: Arc<Pipe>,
    write: bool,
}

/// Creates a pipe: (read end, write end).
pub fn new_pipe() -> (Arc<PipeEnd>, Arc<PipeEnd>) {
    let pipe = Arc::new(Pipe {
        state: Mutex::new(State {
            buf: VecDeque::new(),
            capacity: DEFAULT_CAPACITY,
            readers: 1,
            writers: 1,
        }),
        changed: Condvar::new(),
        ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
    });
    (
        Arc::new(PipeEnd {
            pipe: pipe.clone(),
            write: false,
        }),
        Arc::new(PipeEnd { pipe, write: true }),
    )
}

impl Drop for PipeEnd {
    fn drop(&mut self) {
        let mut st = self.pipe.lock();
        if self.write {
            st.writers -= 1;
        } else {
            st.readers -= 1;
        }
        self.pipe.changed.notify_all();
    }
}

impl PipeEnd {
    fn do_read(&self, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        if self.write {
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
            st = self.pipe.wait(st);
        }
        let n = buf.len().min(st.buf.len());
        for (dst, src) in buf.iter_mut().zip(st.buf.drain(..n)) {
            *dst = src;
        }
        self.pipe.changed.notify_all();
        Ok(n)
    }

    fn do_write(&self, buf: &[u8], nonblock: bool) -> Result<usize, Errno> {
        if !self.write {
            return Err(libc::EBADF);
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
                continue;
            }
            if nonblock {
                return if done > 0 {
                    Ok(done)
                } else {
                    Err(libc::EAGAIN)
                };
            }
            st = self.pipe.wait(st);
        }
    }
}

impl FileDescription for PipeEnd {
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

    fn pread(&self, _: &mut [u8], _: i64) -> Result<usize, Errno> {
        Err(libc::ESPIPE)
    }

    fn pwrite(&self, _: &[u8], _: i64) -> Result<usize, Errno> {
        Err(libc::ESPIPE)
    }

    fn seek(&self, _: i64, _: i32) -> Result<i64, Errno> {
        Err(libc::ESPIPE)
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
            if want > u32::MAX as u64 || (want as usize > MAX_CAPACITY && !privileged) {
                return Err(libc::EPERM);
            }
            let size = (want.max(4096) as usize).next_power_of_two();
            if size < st.buf.len() {
                return Err(libc::EBUSY);
            }
            st.capacity = size;
            self.pipe.changed.notify_all();
        }
        Ok(st.capacity as u64)
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
