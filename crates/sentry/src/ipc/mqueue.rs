//! POSIX message queues: named queues of prioritised messages, opened as descriptors.
//!
//! A queue lives while its name is linked (mq_unlink removes the name) or a descriptor
//! holds it. Descriptors poll readable while messages wait and writable while there is
//! room; reading one gives Linux's status line (QSIZE, NOTIFY, SIGNO, NOTIFY_PID).
//!
//! The limits are the namespace's /proc/sys/fs/mqueue (`super::tunables`). Each queue is
//! counted, from mq_open until it is unlinked and closed, against queues_max and against
//! its maker's RLIMIT_MSGQUEUE with Linux's size ([`queue_bytes`]), as mqueue_get_inode
//! and mqueue_evict_inode count it. (Linux counts a user's bytes across all namespaces;
//! here within the namespace.)

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, Weak};

use fs::waiter::{WaitQueue, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use fs::{Errno as FsErrno, FileDescription, Stat};

use super::lock;
use crate::process::ThreadGroup;
use crate::signal_frame::SigInfo;

pub const MQ_PRIO_MAX: u32 = 32768;
/// SI_MESGQ.
const SI_MESGQ: i32 = -3;
/// Bytes of messages all queues may hold together (the sentry's memory is not the guest's).
pub const TOTAL_BYTES: usize = 256 << 20;

/// A registered mq_notify.
pub struct Notify {
    pub group: Weak<ThreadGroup>,
    pub pid: i32,
    /// SIGEV_SIGNAL (0) or SIGEV_NONE (1).
    pub kind: i32,
    /// SIGEV_SIGNAL's signal (0: none is sent, as Linux allows).
    pub signo: i32,
    pub value: u64,
}

#[derive(Default)]
pub struct State {
    /// Priority -> messages in arrival order.
    pub messages: BTreeMap<u32, VecDeque<Vec<u8>>>,
    pub count: i64,
    pub bytes: u64,
    pub notify: Option<Notify>,
    /// Tasks asleep in mq_timedreceive (a notification is sent only when none waits).
    pub receivers: usize,
}

/// sizeof(struct msg_msg) and sizeof(struct posix_msg_tree_node) on x86-64: what Linux
/// counts per message beside its bytes.
const MSG_MSG_SIZE: u64 = 48;
const TREE_NODE_SIZE: u64 = 48;

/// The bytes a queue of `maxmsg` messages of `msgsize` counts against RLIMIT_MSGQUEUE
/// (Linux's mq_bytes plus mq_treesize). The attributes are within the hard limits, so
/// this doesn't overflow (Linux's EOVERFLOW checks can't fire either).
pub fn queue_bytes(maxmsg: i64, msgsize: i64) -> u64 {
    let (maxmsg, msgsize) = (maxmsg as u64, msgsize as u64);
    maxmsg.saturating_mul(msgsize)
        + maxmsg.saturating_mul(MSG_MSG_SIZE)
        + maxmsg.min(MQ_PRIO_MAX as u64) * TREE_NODE_SIZE
}

/// The queues that exist and the bytes each user's count (Linux's mq_queues_count and
/// user_struct's mq_bytes).
#[derive(Default)]
pub struct Accounts {
    pub queues: i64,
    pub bytes: BTreeMap<u32, u64>,
}

/// A queue's share of its namespace's [`Accounts`], given back when the queue goes.
pub struct Charge {
    accounts: Arc<Mutex<Accounts>>,
    user: u32,
    bytes: u64,
}

impl Charge {
    /// Counts a new queue of `user` holding `bytes`, to the accounts `accounts`.
    pub fn new(accounts: &Arc<Mutex<Accounts>>, a: &mut Accounts, user: u32, bytes: u64) -> Charge {
        a.queues += 1;
        *a.bytes.entry(user).or_default() += bytes;
        Charge {
            accounts: accounts.clone(),
            user,
            bytes,
        }
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        let mut a = lock(&self.accounts);
        a.queues -= 1;
        if let Some(b) = a.bytes.get_mut(&self.user) {
            *b = b.saturating_sub(self.bytes);
            if *b == 0 {
                a.bytes.remove(&self.user);
            }
        }
    }
}

pub struct Queue {
    pub name: Vec<u8>,
    pub maxmsg: i64,
    pub msgsize: i64,
    pub mode: Mutex<u32>,
    pub uid: u32,
    pub gid: u32,
    pub ino: u64,
    pub state: Mutex<State>,
    pub wq: WaitQueue,
    /// What it counts against queues_max and RLIMIT_MSGQUEUE until it goes.
    pub charge: Charge,
}

impl Queue {
    /// The status line reading a queue gives.
    pub fn status_line(&self) -> String {
        let st = lock(&self.state);
        let (notify, signo, pid) = match &st.notify {
            Some(n) => (n.kind, n.signo, n.pid),
            None => (0, 0, 0),
        };
        format!(
            "QSIZE:{:<10} NOTIFY:{:<5} SIGNO:{:<5} NOTIFY_PID:{:<6}\n",
            st.bytes, notify, signo, pid
        )
    }

    /// Adds a message (room checked by the caller) and tells whoever should know.
    pub fn push(&self, st: &mut State, data: Vec<u8>, prio: u32, sender: (i32, u32)) {
        st.bytes += data.len() as u64;
        st.count += 1;
        st.messages.entry(prio).or_default().push_back(data);
        if st.count == 1 && st.receivers == 0 {
            if let Some(n) = st.notify.take() {
                if n.kind == 0 && n.signo != 0 {
                    if let Some(g) = n.group.upgrade() {
                        g.send(SigInfo {
                            signo: n.signo,
                            code: SI_MESGQ,
                            pid: sender.0,
                            uid: sender.1,
                            value: n.value,
                            ..Default::default()
                        });
                    }
                }
            }
        }
        self.wq.notify(POLLIN | POLLRDNORM);
    }

    /// Takes the oldest message of the highest priority.
    pub fn pop(&self, st: &mut State) -> Option<(Vec<u8>, u32)> {
        let (&prio, q) = st.messages.iter_mut().next_back()?;
        let m = q.pop_front()?;
        if q.is_empty() {
            st.messages.remove(&prio);
        }
        st.bytes -= m.len() as u64;
        st.count -= 1;
        self.wq.notify(POLLOUT | POLLWRNORM);
        Some((m, prio))
    }
}

/// The queues by name.
#[derive(Default)]
pub struct Registry {
    pub queues: Mutex<BTreeMap<Vec<u8>, Arc<Queue>>>,
    /// Every queue, linked or only open. Taken after `queues` when both are.
    pub accounts: Arc<Mutex<Accounts>>,
}

impl Registry {
    /// Bytes all live queues hold (linked ones; an unlinked queue still open is not counted).
    pub fn total_bytes(&self) -> u64 {
        lock(&self.queues)
            .values()
            .map(|q| lock(&q.state).bytes)
            .sum()
    }
}

/// An open queue: what the descriptor refers to.
pub struct MqFile {
    pub queue: Arc<Queue>,
    /// Position in the status line (read).
    pos: Mutex<usize>,
}

impl MqFile {
    pub fn new(queue: Arc<Queue>) -> Arc<MqFile> {
        Arc::new(MqFile {
            queue,
            pos: Mutex::new(0),
        })
    }
}

/// A descriptor was closed by process `pid`: a queue drops the notification that process
/// registered (Linux's mqueue_flush_file).
pub fn file_closed(file: &fs::vfs::OpenFile, pid: i32) {
    let Some(m) = file
        .special_desc()
        .and_then(|d| d.as_any())
        .and_then(|a| a.downcast_ref::<MqFile>())
    else {
        return;
    };
    let mut st = lock(&m.queue.state);
    if st.notify.as_ref().is_some_and(|n| n.pid == pid) {
        st.notify = None;
    }
}

/// The mqueue file system's device number.
pub const MQUEUE_DEV: u64 = fs::dev::makedev(0, 19);

pub fn queue_stat(q: &Queue) -> Stat {
    Stat {
        dev: MQUEUE_DEV,
        ino: q.ino,
        nlink: 1,
        mode: libc::S_IFREG | *lock(&q.mode),
        uid: q.uid,
        gid: q.gid,
        size: lock(&q.state).bytes as i64,
        blksize: 4096,
        ..Default::default()
    }
}

impl FileDescription for MqFile {
    fn read(&self, buf: &mut [u8]) -> Result<usize, FsErrno> {
        let line = self.queue.status_line().into_bytes();
        let mut pos = lock(&self.pos);
        let start = (*pos).min(line.len());
        let n = buf.len().min(line.len() - start);
        buf[..n].copy_from_slice(&line[start..start + n]);
        *pos = start + n;
        Ok(n)
    }

    fn write(&self, _buf: &[u8]) -> Result<usize, FsErrno> {
        Err(libc::EINVAL)
    }

    fn stat(&self) -> Result<Stat, FsErrno> {
        Ok(queue_stat(&self.queue))
    }

    fn may_block(&self) -> bool {
        false
    }

    fn readiness(&self, mask: u32) -> u32 {
        let st = lock(&self.queue.state);
        let mut r = 0;
        if st.count > 0 {
            r |= POLLIN | POLLRDNORM;
        }
        if st.count < self.queue.maxmsg {
            r |= POLLOUT | POLLWRNORM;
        }
        r & mask
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue.wq)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
