//! System V message queues.

use std::collections::VecDeque;

use fs::waiter::WaitQueue;

use super::{now, Object, Perm, PERM_SIZE};

/// Size of `struct msqid64_ds`.
pub const DS_SIZE: usize = 120;

/// Bytes and messages all queues of the sandbox may hold together, whatever their
/// msg_qbytes (a privileged program may raise those without bound): the sentry's memory
/// is not the guest's.
pub const TOTAL_BYTES: usize = 256 << 20;
pub const TOTAL_MESSAGES: usize = 1 << 20;

pub struct Message {
    pub mtype: i64,
    pub data: Vec<u8>,
}

pub struct Queue {
    pub perm: Perm,
    pub messages: VecDeque<Message>,
    pub cbytes: u64,
    pub qbytes: u64,
    pub stime: i64,
    pub rtime: i64,
    pub ctime: i64,
    pub lspid: i32,
    pub lrpid: i32,
    /// Told whenever a message comes or goes, the limits change or the queue is removed.
    pub wq: WaitQueue,
    /// Tells this queue from a later one at the same identifier.
    pub serial: u64,
}

impl Object for Queue {
    fn perm(&self) -> &Perm {
        &self.perm
    }
    fn perm_mut(&mut self) -> &mut Perm {
        &mut self.perm
    }
}

impl Queue {
    /// A queue holding at most `qbytes` bytes (the namespace's msgmnb when it is made).
    pub fn new(perm: Perm, serial: u64, qbytes: u64) -> Queue {
        Queue {
            perm,
            messages: VecDeque::new(),
            cbytes: 0,
            qbytes,
            stime: 0,
            rtime: 0,
            ctime: now(),
            lspid: 0,
            lrpid: 0,
            wq: WaitQueue::new(),
            serial,
        }
    }

    /// Whether a message of `len` bytes fits (Linux's msg_fits_inqueue).
    pub fn fits(&self, len: u64) -> bool {
        len + self.cbytes <= self.qbytes && (self.messages.len() as u64) < self.qbytes
    }

    /// `struct msqid64_ds`.
    pub fn to_bytes(&self) -> [u8; DS_SIZE] {
        let mut b = [0u8; DS_SIZE];
        b[..PERM_SIZE].copy_from_slice(&self.perm.to_bytes());
        super::put_u64(&mut b, 48, self.stime as u64);
        super::put_u64(&mut b, 56, self.rtime as u64);
        super::put_u64(&mut b, 64, self.ctime as u64);
        super::put_u64(&mut b, 72, self.cbytes);
        super::put_u64(&mut b, 80, self.messages.len() as u64);
        super::put_u64(&mut b, 88, self.qbytes);
        super::put_u32(&mut b, 96, self.lspid as u32);
        super::put_u32(&mut b, 100, self.lrpid as u32);
        b
    }
}

/// How msgrcv picks a message (Linux's SEARCH_*).
#[derive(Debug, Clone, Copy)]
pub enum Search {
    Any,
    Equal(i64),
    NotEqual(i64),
    /// The first message of the lowest type at most this.
    LessEqual(i64),
    /// MSG_COPY: the message at this position.
    Number(i64),
}

/// The index of the message `search` picks.
pub fn find(q: &Queue, search: Search) -> Option<usize> {
    match search {
        Search::Any => (!q.messages.is_empty()).then_some(0),
        Search::Equal(t) => q.messages.iter().position(|m| m.mtype == t),
        Search::NotEqual(t) => q.messages.iter().position(|m| m.mtype != t),
        Search::LessEqual(t) => {
            let mut best: Option<(usize, i64)> = None;
            for (i, m) in q.messages.iter().enumerate() {
                if m.mtype <= t && best.is_none_or(|(_, bt)| m.mtype < bt) {
                    best = Some((i, m.mtype));
                }
            }
            best.map(|(i, _)| i)
        }
        Search::Number(n) => (n >= 0 && (n as u64) < q.messages.len() as u64).then_some(n as usize),
    }
}
