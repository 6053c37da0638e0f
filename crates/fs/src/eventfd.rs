//! eventfd: a 64-bit counter read and written 8 bytes at a time, with Linux's rules. A
//! write adds (blocking, or EAGAIN, while the sum would reach 2^64-1); a read takes the
//! whole count, or 1 in semaphore mode (blocking, or EAGAIN, while it is 0).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::waiter::{WaitQueue, POLLERR, POLLIN, POLLOUT};
use crate::{Errno, FileDescription, Stat};

/// EFD_SEMAPHORE.
pub const EFD_SEMAPHORE: u32 = 1;
/// The largest count: a write may bring the counter up to this, never to u64::MAX.
pub const MAX_COUNT: u64 = u64::MAX - 1;
/// anon_inodefs's device number (Linux gives every anonymous inode the same one).
pub(crate) const ANON_DEV: u64 = crate::dev::makedev(0, 15);

/// What fstat shows of a file on an anonymous inode (eventfd, epoll, signalfd, timerfd).
pub fn anon_inode_stat(ino: u64) -> Stat {
    Stat {
        dev: ANON_DEV,
        ino,
        nlink: 1,
        mode: 0o600,
        blksize: 4096,
        ..Default::default()
    }
}

static NEXT_INO: AtomicU64 = AtomicU64::new(1);

/// A fresh inode number for an anonymous-inode file (eventfd, epoll, signalfd, timerfd).
pub fn next_anon_ino() -> u64 {
    NEXT_INO.fetch_add(1, Ordering::Relaxed)
}

/// An eventfd's counter.
pub struct EventFd {
    count: Mutex<u64>,
    changed: Condvar,
    queue: WaitQueue,
    semaphore: bool,
    ino: u64,
}

impl EventFd {
    /// A new eventfd holding `initval`, in semaphore mode if `flags` has EFD_SEMAPHORE.
    pub fn new(initval: u32, flags: u32) -> Arc<EventFd> {
        Arc::new(EventFd {
            count: Mutex::new(initval as u64),
            changed: Condvar::new(),
            queue: WaitQueue::new(),
            semaphore: flags & EFD_SEMAPHORE != 0,
            ino: next_anon_ino(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, u64> {
        self.count.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sleeps until the count changes; ERESTARTSYS when the calling task is interrupted.
    fn wait<'a>(&self, g: MutexGuard<'a, u64>) -> Result<MutexGuard<'a, u64>, Errno> {
        crate::waiter::wait_on(&self.changed, g)
    }

    /// Adds 1 without ever blocking or failing, for completions the kernel side reports
    /// (Linux's eventfd_signal, as aio's IOCB_FLAG_RESFD uses it): the count saturates at
    /// u64::MAX, which reads as POLLERR, instead of waiting for room.
    pub fn signal(&self) {
        let mut count = self.lock();
        *count = count.saturating_add(1);
        self.changed.notify_all();
        drop(count);
        self.queue.notify(POLLIN);
    }

    /// The current count (for tests and /proc fdinfo).
    pub fn count(&self) -> u64 {
        *self.lock()
    }

    fn do_read(&self, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        if buf.len() < 8 {
            return Err(libc::EINVAL);
        }
        let mut count = self.lock();
        while *count == 0 {
            if nonblock {
                return Err(libc::EAGAIN);
            }
            count = self.wait(count)?;
        }
        let value = if self.semaphore { 1 } else { *count };
        *count -= value;
        buf[..8].copy_from_slice(&value.to_ne_bytes());
        self.changed.notify_all();
        drop(count);
        self.queue.notify(POLLOUT);
        Ok(8)
    }

    fn do_write(&self, buf: &[u8], nonblock: bool) -> Result<usize, Errno> {
        // Exactly 8 bytes since Linux 6.6 (shorter or longer: EINVAL).
        let bytes: [u8; 8] = buf.try_into().map_err(|_| libc::EINVAL)?;
        let value = u64::from_ne_bytes(bytes);
        if value == u64::MAX {
            return Err(libc::EINVAL);
        }
        let mut count = self.lock();
        // The sum must stay below u64::MAX: `MAX_COUNT - count >= value`.
        while MAX_COUNT - *count < value {
            if nonblock {
                return Err(libc::EAGAIN);
            }
            count = self.wait(count)?;
        }
        *count += value;
        self.changed.notify_all();
        drop(count);
        // Every write is an event (an edge for epoll), even of 0, as on Linux.
        self.queue.notify(POLLIN);
        Ok(8)
    }
}

impl FileDescription for EventFd {
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
        Ok(anon_inode_stat(self.ino))
    }

    fn may_block(&self) -> bool {
        true
    }

    fn readiness(&self, mask: u32) -> u32 {
        let count = *self.lock();
        let mut ready = 0;
        // Linux's eventfd reports POLLIN and POLLOUT without the RDNORM/WRNORM twins.
        if count > 0 {
            ready |= POLLIN;
        }
        if count < MAX_COUNT {
            ready |= POLLOUT;
        }
        if count == u64::MAX {
            // Only an in-kernel overflow gets here on Linux; kept for fidelity.
            ready |= POLLERR;
        }
        ready & mask
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }

    fn as_eventfd(&self) -> Option<&EventFd> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NB: u32 = libc::O_NONBLOCK as u32;

    fn write(e: &EventFd, v: u64) -> Result<usize, Errno> {
        e.write_with_flags(&v.to_ne_bytes(), NB)
    }

    fn read(e: &EventFd) -> Result<u64, Errno> {
        let mut b = [0u8; 8];
        e.read_with_flags(&mut b, NB)?;
        Ok(u64::from_ne_bytes(b))
    }

    #[test]
    fn counter_rules() {
        let e = EventFd::new(3, 0);
        assert_eq!(e.readiness(POLLIN | POLLOUT), POLLIN | POLLOUT);
        assert_eq!(read(&e), Ok(3));
        assert_eq!(read(&e), Err(libc::EAGAIN));
        assert_eq!(e.readiness(POLLIN | POLLOUT), POLLOUT);
        assert_eq!(write(&e, u64::MAX), Err(libc::EINVAL));
        assert_eq!(write(&e, MAX_COUNT), Ok(8));
        assert_eq!(e.readiness(POLLIN | POLLOUT), POLLIN);
        assert_eq!(write(&e, 1), Err(libc::EAGAIN));
        assert_eq!(write(&e, 0), Ok(8));
        assert_eq!(e.read_with_flags(&mut [0u8; 7], NB), Err(libc::EINVAL));
        assert_eq!(e.write_with_flags(&[0u8; 7], NB), Err(libc::EINVAL));
        assert_eq!(e.write_with_flags(&[0u8; 16], NB), Err(libc::EINVAL));
        assert_eq!(read(&e), Ok(MAX_COUNT));
    }

    #[test]
    fn signal_adds_one_and_saturates() {
        let e = EventFd::new(0, 0);
        e.signal();
        e.signal();
        assert_eq!(read(&e), Ok(2));
        assert_eq!(write(&e, MAX_COUNT), Ok(8));
        e.signal();
        e.signal();
        assert_eq!(e.count(), u64::MAX);
        assert_eq!(e.readiness(POLLERR), POLLERR);
    }

    #[test]
    fn semaphore_mode() {
        let e = EventFd::new(2, EFD_SEMAPHORE);
        assert_eq!(read(&e), Ok(1));
        assert_eq!(read(&e), Ok(1));
        assert_eq!(read(&e), Err(libc::EAGAIN));
    }

    #[test]
    fn blocked_reader_is_woken_by_writer() {
        let e = EventFd::new(0, 0);
        let e2 = e.clone();
        let t = std::thread::spawn(move || {
            let mut b = [0u8; 8];
            e2.read(&mut b).map(|_| u64::from_ne_bytes(b))
        });
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert_eq!(e.write(&5u64.to_ne_bytes()), Ok(8));
        assert_eq!(t.join().unwrap(), Ok(5));
    }
}
