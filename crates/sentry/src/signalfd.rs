//! signalfd: a file whose reads take pending signals of a mask, as `struct
//! signalfd_siginfo` records, instead of their delivery.
//!
//! As on Linux, the signals are the *reader's*: those sent to the thread that reads (or
//! polls) and to its process. The thread is the one the sentry is serving
//! ([`crate::signal::current`]); outside a task's call (an epoll_ctl on the ring poller) the
//! creator's signals stand in. Readiness changes are announced on the process's
//! `signal_queue`, which every signal sent to it notifies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fs::waiter::{WaitQueue, Wake, ERESTARTSYS, POLLIN};
use fs::{Errno, FileDescription, Stat};

use crate::signal::{Current, UNBLOCKABLE};
use crate::signal_frame::{SigInfo, SI_TIMER};

/// sizeof(struct signalfd_siginfo).
pub const SIGINFO_SIZE: usize = 128;

/// A signalfd's description.
pub struct SignalFd {
    /// The signals it reads (SIGKILL and SIGSTOP are silently left out, as Linux does).
    mask: AtomicU64,
    /// Whose signals it reads when no task is being served.
    creator: Current,
    ino: u64,
}

impl SignalFd {
    pub fn new(mask: u64, creator: Current) -> Arc<SignalFd> {
        Arc::new(SignalFd {
            mask: AtomicU64::new(mask & !UNBLOCKABLE),
            creator,
            ino: fs::eventfd::next_anon_ino(),
        })
    }

    /// signalfd4 on an existing signalfd: a new mask.
    pub fn set_mask(&self, mask: u64) {
        self.mask.store(mask & !UNBLOCKABLE, Ordering::Relaxed);
    }

    fn mask(&self) -> u64 {
        self.mask.load(Ordering::Relaxed)
    }

    fn owner(&self) -> Current {
        crate::signal::current().unwrap_or_else(|| self.creator.clone())
    }

    /// Takes one pending signal of the mask: the thread's first, then the process's.
    fn take(&self, owner: &Current) -> Option<SigInfo> {
        owner.group.dequeue(&owner.thread, !self.mask())
    }

    fn do_read(&self, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        let count = buf.len() / SIGINFO_SIZE;
        if count == 0 {
            return Err(libc::EINVAL);
        }
        let owner = self.owner();
        let first = match self.take(&owner) {
            Some(i) => i,
            None if nonblock => return Err(libc::EAGAIN),
            None => self.wait(&owner)?,
        };
        buf[..SIGINFO_SIZE].copy_from_slice(&record(&first));
        let mut n = 1;
        while n < count {
            let Some(info) = self.take(&owner) else { break };
            buf[n * SIGINFO_SIZE..(n + 1) * SIGINFO_SIZE].copy_from_slice(&record(&info));
            n += 1;
        }
        Ok(n * SIGINFO_SIZE)
    }

    /// Sleeps until a signal of the mask is pending; ERESTARTSYS when a signal interrupts
    /// (one the reader doesn't block and isn't reading through here).
    fn wait(&self, owner: &Current) -> Result<SigInfo, Errno> {
        let Some(waiter) = fs::waiter::current() else {
            // No task to sleep for (never on a task's own thread).
            return Err(libc::EAGAIN);
        };
        waiter.reset();
        let _registration = owner.group.signal_queue.register(&waiter, POLLIN);
        loop {
            if let Some(info) = self.take(owner) {
                return Ok(info);
            }
            if waiter.wait(None) == Wake::Interrupted {
                return Err(ERESTARTSYS);
            }
        }
    }
}

/// A `struct signalfd_siginfo` for `info`.
fn record(info: &SigInfo) -> [u8; SIGINFO_SIZE] {
    let mut b = [0u8; SIGINFO_SIZE];
    b[0..4].copy_from_slice(&(info.signo as u32).to_le_bytes());
    b[8..12].copy_from_slice(&info.code.to_le_bytes());
    if info.code == SI_TIMER {
        b[24..28].copy_from_slice(&(info.timerid as u32).to_le_bytes()); // ssi_tid
        b[32..36].copy_from_slice(&(info.overrun as u32).to_le_bytes()); // ssi_overrun
        b[44..48].copy_from_slice(&(info.value as u32).to_le_bytes()); // ssi_int
        b[48..56].copy_from_slice(&info.value.to_le_bytes()); // ssi_ptr
    } else if info.addr != 0 {
        b[72..80].copy_from_slice(&info.addr.to_le_bytes()); // ssi_addr
    } else if let Some((band, fd)) = info.poll {
        b[20..24].copy_from_slice(&fd.to_le_bytes()); // ssi_fd
        b[28..32].copy_from_slice(&(band as u32).to_le_bytes()); // ssi_band
    } else {
        b[12..16].copy_from_slice(&(info.pid as u32).to_le_bytes()); // ssi_pid
        b[16..20].copy_from_slice(&info.uid.to_le_bytes()); // ssi_uid

        // Linux fills the SIGCHLD fields only for SIGCHLD (its siginfo_layout).
        if let Some(c) = info.child.filter(|_| info.signo == libc::SIGCHLD) {
            b[40..44].copy_from_slice(&c.status.to_le_bytes()); // ssi_status
            b[56..64].copy_from_slice(&c.utime.to_le_bytes()); // ssi_utime
            b[64..72].copy_from_slice(&c.stime.to_le_bytes()); // ssi_stime
        }
    }
    b
}

impl FileDescription for SignalFd {
    fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        self.do_read(buf, false)
    }

    fn read_with_flags(&self, buf: &mut [u8], flags: u32) -> Result<usize, Errno> {
        self.do_read(buf, flags & libc::O_NONBLOCK as u32 != 0)
    }

    fn write(&self, _: &[u8]) -> Result<usize, Errno> {
        Err(libc::EINVAL)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(fs::eventfd::anon_inode_stat(self.ino))
    }

    fn may_block(&self) -> bool {
        true
    }

    fn readiness(&self, mask: u32) -> u32 {
        let owner = self.owner();
        let pending = owner.thread.pending() | owner.group.pending();
        if pending & self.mask() != 0 {
            mask & POLLIN
        } else {
            0
        }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.creator.group.signal_queue)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
