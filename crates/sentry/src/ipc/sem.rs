//! System V semaphore sets and their SEM_UNDO adjustments.

use std::collections::HashMap;

use fs::waiter::WaitQueue;

use super::{limits, lock, now, Ids, IpcNs, Object, Perm, PERM_SIZE};

/// Size of `struct semid64_ds`.
pub const DS_SIZE: usize = 104;

#[derive(Debug, Clone, Copy, Default)]
pub struct Sem {
    pub val: i32,
    pub pid: i32,
}

/// What a task sleeping in semop waits for: the operation that would block.
#[derive(Debug, Clone, Copy)]
pub struct Blocked {
    pub ticket: u64,
    pub num: u16,
    pub op: i16,
}

pub struct Set {
    pub perm: Perm,
    pub sems: Vec<Sem>,
    pub otime: i64,
    pub ctime: i64,
    /// Told whenever values change or the set is removed.
    pub wq: WaitQueue,
    pub serial: u64,
    /// Tasks asleep in semop (GETNCNT, GETZCNT).
    pub waiting: Vec<Blocked>,
}

impl Object for Set {
    fn perm(&self) -> &Perm {
        &self.perm
    }
    fn perm_mut(&mut self) -> &mut Perm {
        &mut self.perm
    }
}

impl Set {
    pub fn new(perm: Perm, nsems: usize, serial: u64) -> Set {
        Set {
            perm,
            sems: vec![Sem::default(); nsems],
            otime: 0,
            ctime: now(),
            wq: WaitQueue::new(),
            serial,
            waiting: Vec::new(),
        }
    }

    /// `struct semid64_ds`.
    pub fn to_bytes(&self) -> [u8; DS_SIZE] {
        let mut b = [0u8; DS_SIZE];
        b[..PERM_SIZE].copy_from_slice(&self.perm.to_bytes());
        super::put_u64(&mut b, 48, self.otime as u64);
        super::put_u64(&mut b, 64, self.ctime as u64);
        super::put_u64(&mut b, 80, self.sems.len() as u64);
        b
    }

    /// Tasks waiting for semaphore `num` to grow (`zero`: to become zero).
    pub fn count_waiting(&self, num: usize, zero: bool) -> usize {
        self.waiting
            .iter()
            .filter(|w| w.num as usize == num && (w.op == 0) == zero && (zero || w.op < 0))
            .count()
    }
}

/// A process's adjustments of one set, applied when it exits.
pub struct Undo {
    pub serial: u64,
    pub adj: Vec<i32>,
}

#[derive(Default)]
pub struct Table {
    pub ids: Ids<Set>,
    /// Semaphores in all sets (bounded by SEMMNS).
    pub used_sems: usize,
    /// SEM_UNDO adjustments: process -> set identifier -> adjustments.
    pub undo: HashMap<i32, HashMap<i32, Undo>>,
    /// Numbers the waiters of semop.
    pub next_ticket: u64,
}

impl Table {
    pub fn remove(&mut self, id: i32) -> Option<Set> {
        let set = self.ids.remove(id)?;
        self.used_sems -= set.sems.len();
        for u in self.undo.values_mut() {
            u.remove(&id);
        }
        set.wq.notify(0);
        Some(set)
    }

    /// SETVAL and SETALL: adjustments of semaphore `num` (None: all) are reset.
    pub fn clear_undo(&mut self, id: i32, serial: u64, num: Option<usize>) {
        for u in self.undo.values_mut() {
            if let Some(un) = u.get_mut(&id).filter(|un| un.serial == serial) {
                match num {
                    Some(n) => {
                        if let Some(a) = un.adj.get_mut(n) {
                            *a = 0;
                        }
                    }
                    None => un.adj.iter_mut().for_each(|a| *a = 0),
                }
            }
        }
    }
}

/// A process ended: its adjustments are added to the semaphores, clamped to
/// [0, SEMVMX] as Linux's exit_sem.
pub fn exit(ns: &IpcNs, pid: i32) {
    let mut t = lock(&ns.sem);
    let Some(undos) = t.undo.remove(&pid) else {
        return;
    };
    for (id, un) in undos {
        let Ok(set) = t.ids.get_mut(id) else {
            continue;
        };
        if set.serial != un.serial {
            continue;
        }
        let mut changed = false;
        for (i, &a) in un.adj.iter().enumerate() {
            if a == 0 {
                continue;
            }
            if let Some(s) = set.sems.get_mut(i) {
                s.val = (s.val + a).clamp(0, limits::SEMVMX);
                s.pid = pid;
                changed = true;
            }
        }
        if changed {
            set.wq.notify(0);
        }
    }
}
