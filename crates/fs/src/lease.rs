//! File leases (fcntl F_SETLEASE, F_GETLEASE), kept as Linux's fs/locks.c keeps them.
//!
//! A lease belongs to an open file description. A read lease may be taken while nobody has
//! the file open for writing; a write lease only by the file's sole opener. An open that
//! conflicts (any open for writing, or truncate, against any lease; an open for reading
//! against a write lease) *breaks* the lease: the holder is signalled (the caller supplies
//! how: SIGIO or F_SETSIG's signal with POLL_MSG), F_GETLEASE then shows what the lease must
//! become (F_RDLCK for a downgrade, F_UNLCK for a release), and the opener waits until the
//! holder gives way or the break time passes (then the lease is downgraded or removed for
//! it), or fails at once with EWOULDBLOCK when it opened with O_NONBLOCK. A signal ends the
//! wait (ERESTARTSYS). Files are known by (st_dev, st_ino), as `vfs::write_access` knows them,
//! whose open counts decide who may take a lease.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::vfs::write_access::{self, open_counts};
use crate::vfs::{Inode, OpenFile};
use crate::Errno;

pub const F_RDLCK: i32 = 0;
pub const F_WRLCK: i32 = 1;
pub const F_UNLCK: i32 = 2;

/// How a break tells the holder: called with the holder's description.
pub type BreakSignal = Arc<dyn Fn(&Arc<OpenFile>) + Send + Sync>;

/// Linux's /proc/sys/fs/lease-break-time, in milliseconds (45 s by default; tests shorten it).
static BREAK_TIME_MS: AtomicU64 = AtomicU64::new(45_000);

/// The lease break time (Linux's default unless a test changed it).
pub fn break_time() -> Duration {
    Duration::from_millis(BREAK_TIME_MS.load(Ordering::Relaxed))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    None,
    /// A reader is waiting: the write lease must become a read lease by then.
    Downgrade(Instant),
    /// A writer is waiting: the lease must go by then.
    Unlock(Instant),
}

struct Lease {
    holder: Weak<OpenFile>,
    /// F_RDLCK or F_WRLCK.
    typ: i32,
    pending: Pending,
    signal: BreakSignal,
}

impl Lease {
    fn held_by(&self, file: &OpenFile) -> bool {
        std::ptr::eq(self.holder.as_ptr(), file)
    }

    /// Linux's leases_conflict for a breaker that wants to write (or only read).
    fn conflicts(&self, write: bool) -> bool {
        write || self.typ == F_WRLCK
    }
}

type Key = (u64, u64);

struct Table {
    files: Mutex<Option<HashMap<Key, Vec<Lease>>>>,
    /// Told whenever a lease changes or goes.
    changed: Condvar,
    /// Leases held anywhere: opens skip the table while it is 0.
    held: AtomicUsize,
}

static TABLE: Table = Table {
    files: Mutex::new(None),
    changed: Condvar::new(),
    held: AtomicUsize::new(0),
};

type Guard = MutexGuard<'static, Option<HashMap<Key, Vec<Lease>>>>;

fn files() -> Guard {
    TABLE.files.lock().unwrap_or_else(|e| e.into_inner())
}

/// Recounts the leases and drops empty entries, after a change to `key`'s list.
fn settle(guard: &mut Guard, key: Key) {
    let map = guard.get_or_insert_with(HashMap::new);
    if map.get(&key).is_some_and(|l| l.is_empty()) {
        map.remove(&key);
    }
    let held = map.values().map(Vec::len).sum();
    TABLE.held.store(held, Ordering::Release);
    TABLE.changed.notify_all();
}

/// Linux's time_out_leases: breaks that ran out of time happen now.
fn time_out(list: &mut Vec<Lease>, now: Instant) {
    for l in list.iter_mut() {
        if let Pending::Downgrade(by) = l.pending {
            if now >= by {
                l.typ = F_RDLCK;
                l.pending = Pending::None;
            }
        }
    }
    list.retain(|l| !matches!(l.pending, Pending::Unlock(by) if now >= by));
}

/// F_SETLEASE: `typ` F_RDLCK, F_WRLCK or F_UNLCK on `file`, a description of the regular
/// file `inode` (the caller checked ownership and the file type). `signal` is how a break
/// will tell the holder.
pub fn set(
    file: &Arc<OpenFile>,
    inode: &dyn Inode,
    typ: i32,
    signal: BreakSignal,
) -> Result<(), Errno> {
    let key = write_access::key(inode)?;
    let mut guard = files();
    let list = guard
        .get_or_insert_with(HashMap::new)
        .entry(key)
        .or_default();
    time_out(list, Instant::now());
    let mine = list.iter().position(|l| l.held_by(file));
    let result = match typ {
        F_UNLCK => match mine {
            Some(i) => {
                list.remove(i);
                Ok(())
            }
            None => Err(libc::EAGAIN),
        },
        F_RDLCK | F_WRLCK => add(file, key, list, mine, typ, signal),
        _ => Err(libc::EINVAL),
    };
    settle(&mut guard, key);
    result
}

/// Linux's generic_add_lease.
fn add(
    file: &Arc<OpenFile>,
    key: Key,
    list: &mut Vec<Lease>,
    mine: Option<usize>,
    typ: i32,
    signal: BreakSignal,
) -> Result<(), Errno> {
    // check_conflicting_open: nobody writes for a read lease; for a write lease the only
    // opener is this description.
    let (readers, writers) = open_counts(key);
    let ok = if typ == F_RDLCK {
        writers <= 0
    } else {
        let access = file.flags() & libc::O_ACCMODE as u32;
        let self_w = i64::from(access != libc::O_RDONLY as u32);
        let self_r = i64::from(access == libc::O_RDONLY as u32);
        writers == self_w && readers == self_r
    };
    if !ok {
        return Err(libc::EAGAIN);
    }
    for (i, other) in list.iter().enumerate() {
        if Some(i) == mine {
            continue;
        }
        // No write lease beside another lease; no new lease while one is being released.
        if typ == F_WRLCK || matches!(other.pending, Pending::Unlock(_)) {
            return Err(libc::EAGAIN);
        }
    }
    match mine {
        Some(i) => {
            let l = &mut list[i];
            l.typ = typ;
            l.pending = Pending::None;
            l.signal = signal;
        }
        None => list.push(Lease {
            holder: Arc::downgrade(file),
            typ,
            pending: Pending::None,
            signal,
        }),
    }
    Ok(())
}

/// F_GETLEASE: the lease `file` holds, or what a pending break will make of it.
pub fn get(file: &OpenFile, inode: &dyn Inode) -> i32 {
    if TABLE.held.load(Ordering::Acquire) == 0 {
        return F_UNLCK;
    }
    let Ok(key) = write_access::key(inode) else {
        return F_UNLCK;
    };
    let mut guard = files();
    let Some(list) = guard.as_mut().and_then(|m| m.get_mut(&key)) else {
        return F_UNLCK;
    };
    time_out(list, Instant::now());
    let typ = list
        .iter()
        .find(|l| l.held_by(file))
        .map_or(F_UNLCK, |l| match l.pending {
            Pending::Unlock(_) => F_UNLCK,
            Pending::Downgrade(_) => F_RDLCK,
            Pending::None => l.typ,
        });
    settle(&mut guard, key);
    typ
}

/// Linux's break_lease: an open of `inode` (for writing if `write`; truncate counts as
/// writing) waits until no lease conflicts with it, telling each conflicting holder once.
/// EWOULDBLOCK at once for `nonblock`; ERESTARTSYS when a signal interrupts the wait.
pub fn break_for_open(inode: &dyn Inode, write: bool, nonblock: bool) -> Result<(), Errno> {
    if TABLE.held.load(Ordering::Acquire) == 0 {
        return Ok(());
    }
    let key = write_access::key(inode)?;
    let now = Instant::now();
    let deadline = now + break_time();
    let mut tell = Vec::new();
    {
        let mut guard = files();
        let Some(list) = guard.as_mut().and_then(|m| m.get_mut(&key)) else {
            return Ok(());
        };
        time_out(list, now);
        if !list.iter().any(|l| l.conflicts(write)) {
            settle(&mut guard, key);
            return Ok(());
        }
        for l in list.iter_mut().filter(|l| l.conflicts(write)) {
            let first = if write {
                let already = matches!(l.pending, Pending::Unlock(_));
                l.pending = Pending::Unlock(deadline);
                !already
            } else if l.pending == Pending::None {
                l.pending = Pending::Downgrade(deadline);
                true
            } else {
                false
            };
            if first {
                if let Some(holder) = l.holder.upgrade() {
                    tell.push((l.signal.clone(), holder));
                }
            }
        }
    }
    // Told, and the holders let go of, without the table: a holder's last reference may go
    // here, and its close takes the table (`description_closed`).
    for (signal, holder) in tell {
        signal(&holder);
    }
    if nonblock {
        return Err(libc::EWOULDBLOCK);
    }
    let mut guard = files();
    loop {
        let now = Instant::now();
        let Some(list) = guard.as_mut().and_then(|m| m.get_mut(&key)) else {
            return Ok(());
        };
        time_out(list, now);
        let Some(until) = list
            .iter()
            .filter(|l| l.conflicts(write))
            .map(|l| match l.pending {
                Pending::Downgrade(by) | Pending::Unlock(by) => by,
                // Changed back by its holder after the break (Linux waits the break time
                // again from the first break).
                Pending::None => deadline,
            })
            .min()
        else {
            settle(&mut guard, key);
            return Ok(());
        };
        settle(&mut guard, key);
        guard = match crate::waiter::wait_on_until(&TABLE.changed, guard, until) {
            Ok((g, _)) => g,
            Err(e) => return Err(e),
        };
    }
}

/// The last reference to the description at `addr` went: its leases go.
pub fn description_closed(addr: usize) {
    if TABLE.held.load(Ordering::Acquire) == 0 {
        return;
    }
    let mut guard = files();
    let Some(map) = guard.as_mut() else {
        return;
    };
    let keys: Vec<Key> = map
        .iter_mut()
        .filter_map(|(k, list)| {
            let before = list.len();
            list.retain(|l| l.holder.as_ptr() as usize != addr);
            (list.len() != before).then_some(*k)
        })
        .collect();
    for k in keys {
        settle(&mut guard, k);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tmpfs::Tmpfs;
    use crate::vfs::{NewNode, Owner};

    fn file(root: &Arc<dyn Inode>, name: &[u8], flags: u32) -> (Arc<dyn Inode>, Arc<OpenFile>) {
        let owner = Owner { uid: 0, gid: 0 };
        let inode = root.create(name, NewNode::Regular, 0o644, owner).unwrap();
        let f = OpenFile::new(None, inode.clone(), flags);
        f.hold_read_access(write_access::get_read(&*inode).unwrap());
        (inode, f)
    }

    #[test]
    fn a_break_that_runs_out_of_time_removes_the_lease() {
        BREAK_TIME_MS.store(100, Ordering::Relaxed);
        let fs = Tmpfs::new(9);
        let (inode, holder) = file(&fs.root(), b"leased", libc::O_RDONLY as u32);
        let told = Arc::new(AtomicUsize::new(0));
        let t = told.clone();
        let signal: BreakSignal = Arc::new(move |_| {
            t.fetch_add(1, Ordering::SeqCst);
        });
        set(&holder, &*inode, F_WRLCK, signal).unwrap();
        assert_eq!(get(&holder, &*inode), F_WRLCK);
        // A reader waits for the downgrade, which the break time makes happen.
        let start = Instant::now();
        break_for_open(&*inode, false, false).unwrap();
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert_eq!(get(&holder, &*inode), F_RDLCK);
        // A writer waits for the release.
        break_for_open(&*inode, true, false).unwrap();
        assert_eq!(get(&holder, &*inode), F_UNLCK);
        assert_eq!(told.load(Ordering::SeqCst), 2);
        // Nothing left: an open doesn't wait.
        assert_eq!(break_for_open(&*inode, true, true), Ok(()));
        drop(holder);
        assert_eq!(TABLE.held.load(Ordering::Acquire), 0);
    }
}
