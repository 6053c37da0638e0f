//! User notification (SECCOMP_RET_USER_NOTIF): a filter installed with
//! SECCOMP_FILTER_FLAG_NEW_LISTENER hands the calls it returns USER_NOTIF for to a
//! supervisor through a listener descriptor. The calling thread sleeps (interruptibly)
//! until the supervisor answers with SECCOMP_IOCTL_NOTIF_SEND: a return value, an error,
//! or SECCOMP_USER_NOTIF_FLAG_CONTINUE (serve the call). SECCOMP_IOCTL_NOTIF_RECV takes the
//! oldest unreceived notification, NOTIF_ID_VALID checks one is still waiting; poll shows
//! POLLIN for an unreceived one, POLLOUT for a received one not yet answered, POLLHUP once
//! no task uses the filter. Closing the listener answers every waiting call with ENOSYS,
//! as do later USER_NOTIF verdicts. NOTIF_ADDFD puts a supervisor's file in the waiting
//! thread's table (by the supervisor's thread, where Linux has the target do it: the same
//! table, limit and result). NOTIF_SET_FLAGS accepts SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (a
//! scheduling hint). Not done: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is accepted but the
//! wait stays interruptible after the supervisor received the notification.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};

use fs::waiter::{WaitQueue, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use fs::{Errno as FsErrno, FileDescription, Stat};

use super::{Data, Filter};

/// SECCOMP_USER_NOTIF_FLAG_CONTINUE.
pub const FLAG_CONTINUE: u32 = 1;
/// sizeof(struct seccomp_notif), sizeof(struct seccomp_notif_resp).
pub const NOTIF_SIZE: usize = 80;
pub const RESP_SIZE: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Init,
    Sent,
    Replied { val: i64, error: i32, flags: u32 },
}

struct Note {
    id: u64,
    tid: i32,
    data: Data,
    state: State,
    /// The waiting thread's descriptor table and RLIMIT_NOFILE, for NOTIF_ADDFD.
    fds: Weak<crate::fdtable::FdTable>,
    nofile: u64,
}

#[derive(Default)]
struct Inner {
    next_id: u64,
    notes: Vec<Note>,
    /// The listener descriptor was closed.
    closed: bool,
}

/// The supervisor's side of a filter: its pending notifications.
pub struct Listener {
    inner: Mutex<Inner>,
    /// Signalled when a notification arrives or is answered, or the listener closes.
    changed: Condvar,
    queue: WaitQueue,
    /// The filter this listener serves: gone once no task uses it (POLLHUP).
    filter: Mutex<Weak<Filter>>,
    ino: u64,
}

/// How the supervisor answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Serve the call after all.
    Continue,
    /// The call's result (a negative errno, or the value).
    Return(i64),
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener").field("ino", &self.ino).finish()
    }
}

impl Listener {
    pub fn new() -> Arc<Listener> {
        Arc::new(Listener {
            // Linux starts its ids at a random number; any start will do for callers.
            inner: Mutex::new(Inner {
                next_id: 0x5ecc_0000_0000_0001,
                ..Default::default()
            }),
            changed: Condvar::new(),
            queue: WaitQueue::new(),
            filter: Mutex::new(Weak::new()),
            ino: fs::eventfd::next_anon_ino(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn set_filter(&self, filter: &Arc<Filter>) {
        *self.filter.lock().unwrap_or_else(|e| e.into_inner()) = Arc::downgrade(filter);
    }

    /// The calling thread `tid`'s call `data`, handed to the supervisor; sleeps until it
    /// answers. ENOSYS once the listener is closed; ERESTARTSYS when the thread is
    /// interrupted (the notification is withdrawn and the call restarts or fails with
    /// EINTR by the signal's rules, as Linux's).
    pub fn notify(
        &self,
        tid: i32,
        data: Data,
        fds: &Arc<crate::fdtable::FdTable>,
        nofile: u64,
    ) -> Result<Reply, i32> {
        let mut g = self.lock();
        if g.closed {
            return Ok(Reply::Return(-(libc::ENOSYS as i64)));
        }
        let id = g.next_id;
        g.next_id = g.next_id.wrapping_add(1);
        g.notes.push(Note {
            id,
            tid,
            data,
            state: State::Init,
            fds: Arc::downgrade(fds),
            nofile,
        });
        self.changed.notify_all();
        self.queue.notify(POLLIN | POLLRDNORM);
        loop {
            if g.closed {
                g.notes.retain(|n| n.id != id);
                return Ok(Reply::Return(-(libc::ENOSYS as i64)));
            }
            let state = g.notes.iter().find(|n| n.id == id).map(|n| n.state);
            if let Some(State::Replied { val, error, flags }) = state {
                g.notes.retain(|n| n.id != id);
                return Ok(if flags & FLAG_CONTINUE != 0 {
                    Reply::Continue
                } else if error != 0 {
                    Reply::Return(error as i64)
                } else {
                    Reply::Return(val)
                });
            }
            match fs::waiter::wait_on(&self.changed, g) {
                Ok(next) => g = next,
                Err(e) => {
                    let mut g = self.lock();
                    g.notes.retain(|n| n.id != id);
                    drop(g);
                    self.queue.notify(POLLOUT | POLLWRNORM);
                    return Err(e);
                }
            }
        }
    }

    /// SECCOMP_IOCTL_NOTIF_RECV: the oldest unreceived notification as struct
    /// seccomp_notif (id, pid, flags, data), marked received; sleeps until there is one.
    pub fn receive(&self) -> Result<[u8; NOTIF_SIZE], i32> {
        let mut g = self.lock();
        loop {
            if let Some(n) = g.notes.iter_mut().find(|n| n.state == State::Init) {
                n.state = State::Sent;
                let mut out = [0u8; NOTIF_SIZE];
                out[0..8].copy_from_slice(&n.id.to_le_bytes());
                out[8..12].copy_from_slice(&n.tid.to_le_bytes());
                // flags (12..16) stay 0.
                for (i, w) in n.data.words().iter().enumerate() {
                    out[16 + 4 * i..20 + 4 * i].copy_from_slice(&w.to_le_bytes());
                }
                drop(g);
                self.queue.notify(POLLOUT | POLLWRNORM);
                return Ok(out);
            }
            g = fs::waiter::wait_on(&self.changed, g)?;
        }
    }

    /// Puts back a notification whose copy to the supervisor failed (Linux: EFAULT, and the
    /// notification may be received again).
    pub fn unreceive(&self, id: u64) {
        let mut g = self.lock();
        if let Some(n) = g
            .notes
            .iter_mut()
            .find(|n| n.id == id && n.state == State::Sent)
        {
            n.state = State::Init;
        }
    }

    /// SECCOMP_IOCTL_NOTIF_SEND: struct seccomp_notif_resp (id, val, error, flags).
    pub fn send(&self, resp: &[u8; RESP_SIZE]) -> Result<(), i32> {
        let id = u64::from_le_bytes(resp[0..8].try_into().expect("8 bytes"));
        let val = i64::from_le_bytes(resp[8..16].try_into().expect("8 bytes"));
        let error = i32::from_le_bytes(resp[16..20].try_into().expect("4 bytes"));
        let flags = u32::from_le_bytes(resp[20..24].try_into().expect("4 bytes"));
        if flags & !FLAG_CONTINUE != 0 || (flags & FLAG_CONTINUE != 0 && (error != 0 || val != 0)) {
            return Err(libc::EINVAL);
        }
        let mut g = self.lock();
        let note = g
            .notes
            .iter_mut()
            .find(|n| n.id == id)
            .ok_or(libc::ENOENT)?;
        if note.state != State::Sent {
            return Err(libc::EINPROGRESS);
        }
        note.state = State::Replied { val, error, flags };
        self.changed.notify_all();
        Ok(())
    }

    /// SECCOMP_IOCTL_NOTIF_ADDFD: installs `file` in the waiting thread's descriptor table
    /// (at `newfd` with SETFD, else the lowest free one) and returns its number; with
    /// SEND that number is also the call's answer.
    pub fn addfd(
        &self,
        id: u64,
        file: Arc<fs::vfs::OpenFile>,
        setfd: Option<i32>,
        cloexec: bool,
        send: bool,
    ) -> Result<i32, i32> {
        let mut g = self.lock();
        let note = g
            .notes
            .iter_mut()
            .find(|n| n.id == id)
            .ok_or(libc::ENOENT)?;
        if note.state != State::Sent {
            return Err(libc::EINPROGRESS);
        }
        let table = note.fds.upgrade().ok_or(libc::ENOENT)?;
        let fd = match setfd {
            Some(fd) => {
                if fd as u64 >= note.nofile {
                    return Err(libc::EBADF);
                }
                table.install(fd, file, cloexec);
                fd
            }
            None => table
                .alloc(0, file, cloexec, note.nofile)
                .map_err(|e| e.0)?,
        };
        if send {
            note.state = State::Replied {
                val: fd as i64,
                error: 0,
                flags: 0,
            };
            self.changed.notify_all();
        }
        Ok(fd)
    }

    /// SECCOMP_IOCTL_NOTIF_ID_VALID: whether notification `id` was received and still
    /// waits for its answer.
    pub fn id_valid(&self, id: u64) -> bool {
        self.lock()
            .notes
            .iter()
            .any(|n| n.id == id && n.state == State::Sent)
    }

    /// The filter is gone: pollers see POLLHUP.
    pub(super) fn hung_up(&self) {
        self.queue.notify(POLLHUP);
    }

    /// The listener descriptor is gone: every waiting call gets ENOSYS.
    fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    fn filter_alive(&self) -> bool {
        self.filter
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .strong_count()
            > 0
    }
}

/// The listener descriptor ("anon_inode:seccomp notify"). Dropping the last reference to it
/// (the last descriptor closed) closes the listener.
pub struct ListenerFile {
    pub listener: Arc<Listener>,
}

impl Drop for ListenerFile {
    fn drop(&mut self) {
        self.listener.close();
    }
}

impl FileDescription for ListenerFile {
    fn read(&self, _: &mut [u8]) -> Result<usize, FsErrno> {
        Err(libc::EINVAL)
    }

    fn write(&self, _: &[u8]) -> Result<usize, FsErrno> {
        Err(libc::EINVAL)
    }

    fn stat(&self) -> Result<Stat, FsErrno> {
        Ok(fs::eventfd::anon_inode_stat(self.listener.ino))
    }

    fn may_block(&self) -> bool {
        true
    }

    fn readiness(&self, mask: u32) -> u32 {
        let l = &self.listener;
        let mut ready = 0;
        for n in &l.lock().notes {
            match n.state {
                State::Init => ready |= POLLIN | POLLRDNORM,
                State::Sent => ready |= POLLOUT | POLLWRNORM,
                State::Replied { .. } => {}
            }
        }
        if !l.filter_alive() {
            ready |= POLLHUP;
        }
        ready & mask
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.listener.queue)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
