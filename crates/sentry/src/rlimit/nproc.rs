//! RLIMIT_NPROC: how many tasks (processes and threads) each real user id has, as Linux's
//! per-user counts. A task is charged to its real uid when it is created, moves with it
//! when its real uid changes, and is released when it is gone: a thread when it exits, a
//! process's main thread when the process is reaped (a zombie still counts).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::caps::{capable, Cap};
use crate::errno::Errno;
use crate::task::Creds;

/// Live tasks per real uid, and the sandbox's task limit.
#[derive(Debug)]
pub struct TaskCounts {
    by_uid: Mutex<HashMap<u32, u64>>,
    /// The most tasks the whole sandbox may have (an OCI bundle's
    /// `linux.resources.pids.limit`, as the cgroup pids controller's pids.max): every
    /// task, threads included, and no one is exempt. u64::MAX: no limit.
    pids_max: AtomicU64,
}

impl Default for TaskCounts {
    fn default() -> Self {
        TaskCounts {
            by_uid: Mutex::new(HashMap::new()),
            pids_max: AtomicU64::new(u64::MAX),
        }
    }
}

/// A task charged by [`TaskCounts::charge`]: released again when dropped before
/// [`Charge::commit`] (the task was not created after all).
#[must_use]
pub struct Charge<'a> {
    counts: &'a TaskCounts,
    uid: u32,
    committed: bool,
}

impl Charge<'_> {
    /// The task exists: it keeps its charge until it is released.
    pub fn commit(mut self) {
        self.committed = true;
    }
}

impl Drop for Charge<'_> {
    fn drop(&mut self) {
        if !self.committed {
            self.counts.release(self.uid);
        }
    }
}

impl TaskCounts {
    fn lock(&self) -> MutexGuard<'_, HashMap<u32, u64>> {
        self.by_uid.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a task created without the fork check (the sandbox's first).
    pub fn add(&self, uid: u32) {
        *self.lock().entry(uid).or_default() += 1;
    }

    /// fork/clone: charges a new task to `creds`'s real uid. EAGAIN when that user already
    /// has `limit` (the soft RLIMIT_NPROC) tasks, unless the user is root or the caller has
    /// CAP_SYS_RESOURCE or CAP_SYS_ADMIN, as Linux's copy_process.
    pub fn charge(&self, creds: &Creds, limit: u64) -> Result<Charge<'_>, Errno> {
        let exempt =
            creds.uid == 0 || capable(creds, Cap::SysResource) || capable(creds, Cap::SysAdmin);
        let mut counts = self.lock();
        // The cgroup's pids.max: fork and clone fail with EAGAIN past it, for root too.
        if counts.values().sum::<u64>() >= self.pids_max.load(Ordering::Relaxed) {
            return Err(Errno::EAGAIN);
        }
        let n = counts.entry(creds.uid).or_default();
        if *n >= limit && !exempt {
            return Err(Errno::EAGAIN);
        }
        *n += 1;
        Ok(Charge {
            counts: self,
            uid: creds.uid,
            committed: false,
        })
    }

    /// Sets the sandbox's task limit (None: no limit).
    pub fn set_pids_max(&self, max: Option<u64>) {
        self.pids_max
            .store(max.unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// A task of `uid` is gone.
    pub fn release(&self, uid: u32) {
        let mut counts = self.lock();
        if let Some(n) = counts.get_mut(&uid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&uid);
            }
        }
    }

    /// A task's real uid changed from `from` to `to`.
    pub fn transfer(&self, from: u32, to: u32) {
        if from != to {
            self.release(from);
            self.add(to);
        }
    }

    /// Every task of every user (sysinfo's procs, the pids cgroup's pids.current).
    pub fn total(&self) -> u64 {
        self.lock().values().sum()
    }

    /// The sandbox's task limit (None: no limit).
    pub fn pids_max(&self) -> Option<u64> {
        Some(self.pids_max.load(Ordering::Relaxed)).filter(|&m| m != u64::MAX)
    }

    /// How many tasks `uid` has.
    pub fn count(&self, uid: u32) -> u64 {
        self.lock().get(&uid).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(uid: u32) -> Creds {
        Creds {
            uid,
            euid: uid,
            suid: uid,
            ..Default::default()
        }
    }

    #[test]
    fn the_pids_limit_binds_everyone() {
        let c = TaskCounts::default();
        c.add(0);
        c.set_pids_max(Some(3));
        c.charge(&user(0), u64::MAX).expect("second").commit();
        c.charge(&user(5), u64::MAX).expect("third").commit();
        assert_eq!(c.charge(&user(0), u64::MAX).err(), Some(Errno::EAGAIN));
        c.release(5);
        c.charge(&user(0), u64::MAX).expect("room again").commit();
        c.set_pids_max(None);
        c.charge(&user(0), u64::MAX).expect("no limit").commit();
    }

    #[test]
    fn charges_up_to_the_limit() {
        let c = TaskCounts::default();
        c.add(7);
        c.charge(&user(7), 3).expect("second").commit();
        c.charge(&user(7), 3).expect("third").commit();
        assert_eq!(c.charge(&user(7), 3).err(), Some(Errno::EAGAIN));
        assert_eq!(c.count(7), 3);
        c.release(7);
        assert!(c.charge(&user(7), 3).is_ok());
    }

    #[test]
    fn an_uncommitted_charge_is_released() {
        let c = TaskCounts::default();
        drop(c.charge(&user(7), 1).expect("first"));
        assert_eq!(c.count(7), 0);
    }

    #[test]
    fn root_and_capable_callers_are_exempt() {
        let c = TaskCounts::default();
        c.add(0);
        assert!(c.charge(&user(0), 0).is_ok());
        let setuid_root = Creds {
            uid: 7,
            euid: 0,
            caps: crate::caps::CapSets::full(),
            ..Default::default()
        };
        assert!(c.charge(&setuid_root, 0).is_ok());
    }

    #[test]
    fn transfer_moves_a_task() {
        let c = TaskCounts::default();
        c.add(0);
        c.transfer(0, 7);
        assert_eq!((c.count(0), c.count(7)), (0, 1));
    }
}
