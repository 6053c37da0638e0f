//! Advisory file locks, as Linux's `fs/locks.c`:
//!
//! - **POSIX record locks** (`fcntl` F_SETLK, F_SETLKW, F_GETLK): byte ranges owned by a
//!   process (Linux keys them by the `files_struct`, i.e. the fd table). A process's locks on a
//!   file go when it closes *any* descriptor of that file, and never conflict with each other.
//! - **OFD record locks** (F_OFD_SETLK & co.): the same byte ranges, owned by the open file
//!   description, released when its last reference goes. They live in the same list as POSIX
//!   locks and conflict with them, even with those of the same process.
//! - **flock(2) locks**: whole-file, owned by the description, independent of record locks.
//!
//! # Which file a lock is on
//!
//! Locks are keyed by inode *identity*: the address of the `Arc` of the [`Inode`]. Every
//! filesystem hands out one object per live file (tmpfs by construction, hostfs interns by
//! host `(dev, ino)`, the overlay keeps one object per file in use), so this names the file.
//! `(dev, ino)` from `stat` would not: an overlay file changes both when it is copied up, and
//! `stat` may fail or cost a host call. The key holds a `Weak` to the inode, which keeps the
//! allocation (and so the address) from being reused while any lock record names it.
//!
//! Descriptions without an inode (pipes made by `pipe2`, sockets, inherited host streams) are
//! keyed by the `(dev, ino)` their `stat` reports instead: the two ends of a pipe are two
//! descriptions of one file, as on Linux, and those numbers are never reused while the file
//! lives.
//!
//! # Owners
//!
//! [`LockOwner::Description`] is the address of the `OpenFile`: its `Drop` releases the
//! description's OFD and flock locks (see [`description_closed`]) before the address can be
//! reused. [`LockOwner::Process`] is the fd table's id; the fd table calls [`file_closed`]
//! whenever a descriptor goes away, and [`release_owner`] when it is dropped.
//!
//! # Blocking
//!
//! F_SETLKW and flock without LOCK_NB wait on one condition variable, woken on every change.
//! Waiting POSIX owners are recorded with the owner they wait for, so that a request that
//! would close a cycle fails with EDEADLK (Linux does the same, for POSIX owners only).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};

use crate::vfs::{Inode, OpenFile};
use crate::{Errno, FileDescription};

/// The largest offset (Linux's OFFSET_MAX): a lock ending here runs to the end of any file.
pub const OFFSET_MAX: i64 = i64::MAX;

/// How many owners deep the deadlock detector follows a chain of waiters (as Linux's
/// MAX_DEADLK_ITERATIONS).
const MAX_DEADLK_ITERATIONS: usize = 10;

/// The kind of a lock, or of a request (which may be an unlock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockType {
    /// Shared: F_RDLCK, LOCK_SH.
    Read,
    /// Exclusive: F_WRLCK, LOCK_EX.
    Write,
    /// F_UNLCK, LOCK_UN. Never stored.
    Unlock,
}

impl LockType {
    /// From `l_type` of `struct flock`.
    pub fn from_flock(l_type: i16) -> Option<LockType> {
        match l_type as i32 {
            libc::F_RDLCK => Some(LockType::Read),
            libc::F_WRLCK => Some(LockType::Write),
            libc::F_UNLCK => Some(LockType::Unlock),
            _ => None,
        }
    }

    /// As `l_type` of `struct flock`.
    pub fn to_flock(self) -> i16 {
        (match self {
            LockType::Read => libc::F_RDLCK,
            LockType::Write => libc::F_WRLCK,
            LockType::Unlock => libc::F_UNLCK,
        }) as i16
    }

    /// Whether a lock of this type and one of `other` exclude each other (given that they
    /// have different owners and overlap).
    fn conflicts(self, other: LockType) -> bool {
        self == LockType::Write || other == LockType::Write
    }
}

/// Who holds a lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LockOwner {
    /// POSIX record locks: a process's fd table, by its id.
    Process(u64),
    /// OFD record locks and flock locks: an open file description, by address.
    Description(usize),
}

impl LockOwner {
    /// The owner of OFD and flock locks taken through `file`.
    pub fn of_description(file: &OpenFile) -> LockOwner {
        LockOwner::Description(file as *const OpenFile as usize)
    }
}

/// A record lock: `[start, end]` (inclusive; `end` is [`OFFSET_MAX`] for "to the end").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLock {
    pub owner: LockOwner,
    /// The holder's pid, which F_GETLK reports (callers show -1 for OFD locks).
    pub pid: i32,
    pub typ: LockType,
    pub start: i64,
    pub end: i64,
}

impl RecordLock {
    fn overlaps(&self, other: &RecordLock) -> bool {
        self.start <= other.end && other.start <= self.end
    }

    /// POSIX conflict: different owners, overlapping ranges, one of them a write lock.
    fn conflicts_with(&self, held: &RecordLock) -> bool {
        self.owner != held.owner && self.overlaps(held) && self.typ.conflicts(held.typ)
    }

    /// `l_len` for this range, as F_GETLK reports it: 0 for a lock to the end.
    pub fn flock_len(&self) -> i64 {
        if self.end == OFFSET_MAX {
            0
        } else {
            self.end - self.start + 1
        }
    }
}

/// The byte range of a `struct flock`, as Linux's `flock64_to_posix_lock`: `base` is the
/// offset `l_whence` names (0, the file offset or the file size), never negative. Returns
/// the inclusive `(start, end)`.
///
/// A start past OFFSET_MAX is EOVERFLOW, a negative start EINVAL; a positive length is
/// counted from the start (EOVERFLOW past OFFSET_MAX), a negative one ends just before it
/// (EINVAL if it would start below 0), and 0 runs to the end of any file.
pub fn flock_range(base: i64, l_start: i64, l_len: i64) -> Result<(i64, i64), Errno> {
    if base < 0 {
        return Err(libc::EINVAL);
    }
    if l_start > OFFSET_MAX - base {
        return Err(libc::EOVERFLOW);
    }
    // No overflow: base >= 0 and l_start <= OFFSET_MAX - base.
    let start = base + l_start;
    if start < 0 {
        return Err(libc::EINVAL);
    }
    match l_len {
        0 => Ok((start, OFFSET_MAX)),
        len if len > 0 => {
            if len - 1 > OFFSET_MAX - start {
                return Err(libc::EOVERFLOW);
            }
            Ok((start, start + (len - 1)))
        }
        // start >= 0, so start + len cannot overflow.
        len => {
            if start + len < 0 {
                return Err(libc::EINVAL);
            }
            Ok((start + len, start - 1))
        }
    }
}

/// Which file: an object's address, or the `(dev, ino)` of an inode-less description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum FileId {
    Object(usize),
    Stat(u64, u64),
}

/// The object a file id names, kept weakly: the allocation stays (so its address is not
/// reused) while a record names it, and a record whose object died is stale.
#[derive(Clone)]
enum Anchor {
    Inode(Weak<dyn Inode>),
    Stream(Weak<dyn FileDescription>),
    /// Keyed by `(dev, ino)`: nothing to keep.
    Numbers,
}

impl Anchor {
    fn alive(&self) -> bool {
        match self {
            Anchor::Inode(w) => w.strong_count() > 0,
            Anchor::Stream(w) => w.strong_count() > 0,
            Anchor::Numbers => true,
        }
    }
}

/// The file a lock is on. See the module documentation.
#[derive(Clone)]
pub struct FileKey {
    id: FileId,
    anchor: Anchor,
}

/// The identity of an inode: the address of its `Arc` (the vtable half of the fat pointer
/// is dropped, since one object may be reached through different vtables).
fn inode_addr(inode: &Arc<dyn Inode>) -> usize {
    Arc::as_ptr(inode) as *const () as usize
}

fn stream_addr(desc: &Arc<dyn FileDescription>) -> usize {
    Arc::as_ptr(desc) as *const () as usize
}

/// The id of an inode-less description: its `(dev, ino)`, or if it can't say, its address.
fn stream_id(desc: &Arc<dyn FileDescription>) -> FileId {
    match desc.stat() {
        Ok(st) => FileId::Stat(st.dev, st.ino),
        Err(_) => FileId::Object(stream_addr(desc)),
    }
}

/// The id locks on `file` are keyed by (without taking a reference).
fn file_id(file: &OpenFile) -> Option<FileId> {
    match (file.inode(), file.special_desc()) {
        (Some(inode), _) => Some(FileId::Object(inode_addr(inode))),
        (None, Some(desc)) => Some(stream_id(desc)),
        (None, None) => None,
    }
}

impl FileKey {
    /// The file `file` is open on: its inode, or for inode-less files what `stat` says.
    pub fn of(file: &OpenFile) -> Option<FileKey> {
        match (file.inode(), file.special_desc()) {
            (Some(inode), _) => Some(FileKey::inode(inode)),
            (None, Some(desc)) => {
                let id = stream_id(desc);
                let anchor = match id {
                    FileId::Stat(..) => Anchor::Numbers,
                    FileId::Object(_) => Anchor::Stream(Arc::downgrade(desc)),
                };
                Some(FileKey { id, anchor })
            }
            (None, None) => None,
        }
    }

    /// The key of an inode.
    pub fn inode(inode: &Arc<dyn Inode>) -> FileKey {
        FileKey {
            id: FileId::Object(inode_addr(inode)),
            anchor: Anchor::Inode(Arc::downgrade(inode)),
        }
    }

    /// Whether two keys name the same file.
    pub fn same(&self, other: &FileKey) -> bool {
        self.id == other.id
    }
}

/// The locks on one file.
struct FileLocks {
    anchor: Anchor,
    /// Record locks, POSIX and OFD together. As in Linux's list, each owner's locks are
    /// contiguous and sorted by start, never overlap, and same-type neighbours are merged; an
    /// owner's group stays where its first lock was put. F_GETLK reports the first conflict
    /// in this order.
    records: Vec<RecordLock>,
    /// flock locks: one per description, in the order taken.
    flocks: Vec<(LockOwner, LockType)>,
}

impl FileLocks {
    fn is_empty(&self) -> bool {
        self.records.is_empty() && self.flocks.is_empty()
    }

    fn holds_any(&self, owner: LockOwner) -> bool {
        self.records.iter().any(|l| l.owner == owner) || self.flocks.iter().any(|f| f.0 == owner)
    }
}

#[derive(Default)]
struct State {
    files: HashMap<FileId, FileLocks>,
    /// Every file where an owner holds some lock, to release all of an owner's locks.
    held: HashMap<LockOwner, HashSet<FileId>>,
    /// Blocked POSIX requests: (waiter, the owner it waits for), for deadlock detection.
    waiting: Vec<(LockOwner, LockOwner)>,
}

impl State {
    /// The locks of `key`, created if needed (a stale entry, whose object is gone, is
    /// replaced).
    fn file(&mut self, key: &FileKey) -> &mut FileLocks {
        let stale = self.files.get(&key.id).is_some_and(|f| !f.anchor.alive());
        if stale {
            self.drop_file(key.id);
        }
        self.files.entry(key.id).or_insert_with(|| FileLocks {
            anchor: key.anchor.clone(),
            records: Vec::new(),
            flocks: Vec::new(),
        })
    }

    /// Forgets every lock on the file `id`.
    fn drop_file(&mut self, id: FileId) {
        if let Some(f) = self.files.remove(&id) {
            let owners = f
                .records
                .iter()
                .map(|l| l.owner)
                .chain(f.flocks.iter().map(|x| x.0));
            for owner in owners {
                self.forget_held(owner, id);
            }
        }
    }

    fn forget_held(&mut self, owner: LockOwner, id: FileId) {
        if let Some(set) = self.held.get_mut(&owner) {
            set.remove(&id);
            if set.is_empty() {
                self.held.remove(&owner);
            }
        }
    }

    /// Brings `held` up to date for `owner` on `id` after a change, and drops the file's
    /// entry once it has no locks.
    fn settle(&mut self, id: FileId, owner: LockOwner) {
        let (holds, empty) = match self.files.get(&id) {
            Some(f) => (f.holds_any(owner), f.is_empty()),
            None => (false, true),
        };
        if holds {
            self.held.entry(owner).or_default().insert(id);
        } else {
            self.forget_held(owner, id);
        }
        if empty {
            self.files.remove(&id);
        }
    }

    /// Whether `me`, about to wait for `blocker`, would wait for itself: the chain of
    /// POSIX owners each waits for leads back to `me`.
    fn would_deadlock(&self, me: LockOwner, blocker: LockOwner) -> bool {
        if !matches!(me, LockOwner::Process(_)) {
            // Linux can't attribute OFD locks to a process either, and doesn't try.
            return false;
        }
        let mut cur = blocker;
        for _ in 0..=MAX_DEADLK_ITERATIONS {
            let next = self
                .waiting
                .iter()
                .find(|(w, _)| *w == cur && matches!(w, LockOwner::Process(_)));
            match next {
                Some(&(_, next)) if next == me => return true,
                Some(&(_, next)) => cur = next,
                None => return false,
            }
        }
        false
    }

    fn stop_waiting(&mut self, me: LockOwner) {
        if let Some(i) = self.waiting.iter().position(|(w, _)| *w == me) {
            self.waiting.swap_remove(i);
        }
    }
}

/// The first lock in `records` that `req` conflicts with. An unlock request (F_OFD_GETLK
/// with F_UNLCK) asks instead for the first lock of the same owner overlapping the range.
fn first_conflict(records: &[RecordLock], req: &RecordLock) -> Option<RecordLock> {
    records
        .iter()
        .find(|held| {
            if req.typ == LockType::Unlock {
                held.owner == req.owner && held.overlaps(req)
            } else {
                req.conflicts_with(held)
            }
        })
        .copied()
}

/// Applies `req` (a lock or an unlock of its owner) to `records`, with Linux's result:
/// within the range the owner's old locks are replaced (split where they stick out), and
/// same-type locks that touch or overlap are merged into one.
fn apply(records: &mut Vec<RecordLock>, req: &RecordLock) {
    let first = records.iter().position(|l| l.owner == req.owner);
    let (at, mine): (usize, Vec<RecordLock>) = match first {
        Some(i) => {
            let n = records[i..]
                .iter()
                .take_while(|l| l.owner == req.owner)
                .count();
            (i, records.drain(i..i + n).collect())
        }
        None => (records.len(), Vec::new()),
    };
    let mut next: Vec<RecordLock> = Vec::with_capacity(mine.len() + 2);
    for old in mine {
        if !old.overlaps(req) {
            next.push(old);
            continue;
        }
        if old.start < req.start {
            next.push(RecordLock {
                end: req.start - 1,
                ..old
            });
        }
        if old.end > req.end {
            // req.end < old.end <= OFFSET_MAX, so req.end + 1 can't overflow.
            next.push(RecordLock {
                start: req.end + 1,
                ..old
            });
        }
    }
    if req.typ != LockType::Unlock {
        next.push(*req);
    }
    next.sort_by_key(|l| l.start);
    let mut merged: Vec<RecordLock> = Vec::with_capacity(next.len());
    for l in next {
        match merged.last_mut() {
            // `l.start - 1` rather than `last.end + 1`, which overflows at OFFSET_MAX.
            Some(last) if last.typ == l.typ && last.end >= l.start - 1 => {
                last.end = last.end.max(l.end);
            }
            _ => merged.push(l),
        }
    }
    records.splice(at..at, merged);
}

/// All advisory locks of a sandbox.
#[derive(Default)]
pub struct LockManager {
    state: Mutex<State>,
    /// Signalled whenever a lock goes or shrinks, for blocked requests to look again.
    changed: Condvar,
    /// How many files have locks: lets close and drop skip the mutex when none do.
    files_locked: AtomicUsize,
}

impl LockManager {
    pub fn new() -> LockManager {
        LockManager::default()
    }

    /// The sandbox's lock manager.
    pub fn global() -> &'static LockManager {
        static GLOBAL: OnceLock<LockManager> = OnceLock::new();
        GLOBAL.get_or_init(LockManager::new)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Publishes the count of locked files and wakes the waiters.
    fn changed(&self, st: &State) {
        self.files_locked.store(st.files.len(), Ordering::Release);
        self.changed.notify_all();
    }

    /// F_GETLK: the first lock that would conflict with `probe` (see [`first_conflict`]).
    pub fn test_record(&self, key: &FileKey, probe: &RecordLock) -> Option<RecordLock> {
        let st = self.lock();
        let f = st.files.get(&key.id).filter(|f| f.anchor.alive())?;
        first_conflict(&f.records, probe)
    }

    /// F_SETLK (`wait` false: EAGAIN on a conflict) and F_SETLKW (waits; EDEADLK when
    /// waiting would close a cycle of POSIX owners).
    pub fn set_record(&self, key: &FileKey, req: RecordLock, wait: bool) -> Result<(), Errno> {
        let mut st = self.lock();
        loop {
            let conflict = match req.typ {
                LockType::Unlock => None,
                _ => first_conflict(&st.file(key).records, &req),
            };
            let Some(conflict) = conflict else {
                apply(&mut st.file(key).records, &req);
                st.settle(key.id, req.owner);
                self.changed(&st);
                return Ok(());
            };
            // An entry made just for the check goes again.
            st.settle(key.id, req.owner);
            if !wait {
                return Err(libc::EAGAIN);
            }
            if st.would_deadlock(req.owner, conflict.owner) {
                return Err(libc::EDEADLK);
            }
            if matches!(conflict.owner, LockOwner::Process(_)) {
                st.waiting.push((req.owner, conflict.owner));
            }
            // A signal ends the wait (ERESTARTSYS): F_SETLKW restarts under SA_RESTART.
            let woken = crate::waiter::wait_on(&self.changed, st);
            st = match woken {
                Ok(st) => st,
                Err(e) => {
                    self.lock().stop_waiting(req.owner);
                    return Err(e);
                }
            };
            st.stop_waiting(req.owner);
        }
    }

    /// flock(2) for the description `owner`. As on Linux, a conversion first drops the
    /// description's current lock, so a failed LOCK_NB upgrade leaves it unlocked.
    pub fn flock(
        &self,
        key: &FileKey,
        owner: LockOwner,
        typ: LockType,
        wait: bool,
    ) -> Result<(), Errno> {
        let mut st = self.lock();
        let f = st.file(key);
        if let Some(i) = f.flocks.iter().position(|x| x.0 == owner) {
            if f.flocks[i].1 == typ {
                return Ok(());
            }
            f.flocks.remove(i);
            st.settle(key.id, owner);
            self.changed(&st);
        }
        if typ == LockType::Unlock {
            st.settle(key.id, owner);
            return Ok(());
        }
        loop {
            let f = st.file(key);
            let blocked = f
                .flocks
                .iter()
                .any(|&(o, t)| o != owner && typ.conflicts(t));
            if !blocked {
                f.flocks.push((owner, typ));
                st.settle(key.id, owner);
                self.changed(&st);
                return Ok(());
            }
            st.settle(key.id, owner);
            if !wait {
                return Err(libc::EWOULDBLOCK);
            }
            st = crate::waiter::wait_on(&self.changed, st)?;
        }
    }

    /// Drops every record lock `owner` holds on the file (a process closed a descriptor of
    /// it).
    pub fn release_file(&self, key: &FileKey, owner: LockOwner) {
        self.release_id(key.id, owner);
    }

    fn release_id(&self, id: FileId, owner: LockOwner) {
        if self.files_locked.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut st = self.lock();
        let Some(f) = st.files.get_mut(&id) else {
            return;
        };
        let before = f.records.len();
        f.records.retain(|l| l.owner != owner);
        if f.records.len() != before {
            st.settle(id, owner);
            self.changed(&st);
        }
    }

    /// Drops every lock `owner` holds anywhere (a description's last reference went, or a
    /// process's fd table).
    pub fn release_owner(&self, owner: LockOwner) {
        if self.files_locked.load(Ordering::Acquire) == 0 {
            return;
        }
        let mut st = self.lock();
        let Some(ids) = st.held.remove(&owner) else {
            return;
        };
        for id in ids {
            if let Some(f) = st.files.get_mut(&id) {
                f.records.retain(|l| l.owner != owner);
                f.flocks.retain(|x| x.0 != owner);
                if f.is_empty() {
                    st.files.remove(&id);
                }
            }
        }
        self.changed(&st);
    }

    /// The record locks on a file, in list order (for tests and debugging).
    pub fn records(&self, key: &FileKey) -> Vec<RecordLock> {
        let st = self.lock();
        st.files
            .get(&key.id)
            .map(|f| f.records.clone())
            .unwrap_or_default()
    }
}

/// The close hook: a process whose fd table is `owner` closed a descriptor of `file`, which
/// releases all its POSIX record locks on that file (POSIX's rule, whichever descriptor
/// took them).
pub fn file_closed(file: &OpenFile, owner: LockOwner) {
    let manager = LockManager::global();
    if manager.files_locked.load(Ordering::Acquire) == 0 {
        return;
    }
    if let Some(id) = file_id(file) {
        manager.release_id(id, owner);
    }
}

/// The last reference to the description at `addr` went: its OFD and flock locks go.
pub fn description_closed(addr: usize) {
    LockManager::global().release_owner(LockOwner::Description(addr));
}

/// Every lock of `owner` goes (a process's fd table is dropped).
pub fn release_owner(owner: LockOwner) {
    LockManager::global().release_owner(owner);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tmpfs::Tmpfs;
    use crate::vfs::{NewNode, Owner};
    use std::time::Duration;

    use LockType::{Read, Unlock, Write};

    const A: LockOwner = LockOwner::Process(1);
    const B: LockOwner = LockOwner::Process(2);
    const D: LockOwner = LockOwner::Description(0x1000);

    fn file() -> (Arc<Tmpfs>, Arc<dyn Inode>) {
        let fs = Tmpfs::new(99);
        let inode = fs
            .root()
            .create(b"f", NewNode::Regular, 0o644, Owner { uid: 0, gid: 0 })
            .expect("create");
        (fs, inode)
    }

    fn lk(owner: LockOwner, typ: LockType, start: i64, end: i64) -> RecordLock {
        RecordLock {
            owner,
            pid: 7,
            typ,
            start,
            end,
        }
    }

    /// (owner, type, start, end) of each record, in list order.
    fn shape(records: &[RecordLock]) -> Vec<(LockOwner, LockType, i64, i64)> {
        records
            .iter()
            .map(|l| (l.owner, l.typ, l.start, l.end))
            .collect()
    }

    fn applied(steps: &[RecordLock]) -> Vec<(LockOwner, LockType, i64, i64)> {
        let mut records = Vec::new();
        for s in steps {
            apply(&mut records, s);
        }
        shape(&records)
    }

    #[test]
    fn flock_range_arithmetic() {
        assert_eq!(flock_range(0, 0, 0), Ok((0, OFFSET_MAX)));
        assert_eq!(flock_range(0, 5, 10), Ok((5, 14)));
        assert_eq!(flock_range(100, -10, 5), Ok((90, 94)));
        // A negative length ends just before the start.
        assert_eq!(flock_range(0, 10, -5), Ok((5, 9)));
        assert_eq!(flock_range(0, 10, -10), Ok((0, 9)));
        assert_eq!(flock_range(0, 3, -5), Err(libc::EINVAL));
        assert_eq!(flock_range(10, -11, 1), Err(libc::EINVAL));
        assert_eq!(flock_range(10, -10, 0), Ok((0, OFFSET_MAX)));
        // Past OFFSET_MAX.
        assert_eq!(flock_range(1, OFFSET_MAX, 1), Err(libc::EOVERFLOW));
        assert_eq!(flock_range(0, OFFSET_MAX, 1), Ok((OFFSET_MAX, OFFSET_MAX)));
        assert_eq!(flock_range(0, OFFSET_MAX, 2), Err(libc::EOVERFLOW));
        assert_eq!(
            flock_range(0, OFFSET_MAX - 1, 2),
            Ok((OFFSET_MAX - 1, OFFSET_MAX))
        );
        assert_eq!(flock_range(0, 0, i64::MAX), Ok((0, OFFSET_MAX - 1)));
        assert_eq!(flock_range(0, 1, i64::MAX), Ok((1, OFFSET_MAX)));
        assert_eq!(flock_range(0, 2, i64::MAX), Err(libc::EOVERFLOW));
        assert_eq!(flock_range(0, i64::MIN, 1), Err(libc::EINVAL));
        assert_eq!(flock_range(5, 0, i64::MIN), Err(libc::EINVAL));
        assert_eq!(
            flock_range(OFFSET_MAX, 0, i64::MIN + 1),
            Ok((0, OFFSET_MAX - 1))
        );
    }

    #[test]
    fn unlock_splits_a_lock() {
        let r = applied(&[lk(A, Write, 0, OFFSET_MAX), lk(A, Unlock, 10, 19)]);
        assert_eq!(r, vec![(A, Write, 0, 9), (A, Write, 20, OFFSET_MAX)]);
        let r = applied(&[lk(A, Write, 10, 19), lk(A, Unlock, 0, 14)]);
        assert_eq!(r, vec![(A, Write, 15, 19)]);
        let r = applied(&[lk(A, Write, 10, 19), lk(A, Unlock, 0, OFFSET_MAX)]);
        assert_eq!(r, vec![]);
    }

    #[test]
    fn same_type_locks_merge_when_touching() {
        let r = applied(&[lk(A, Read, 0, 9), lk(A, Read, 10, 19)]);
        assert_eq!(r, vec![(A, Read, 0, 19)]);
        let r = applied(&[lk(A, Read, 10, 19), lk(A, Read, 0, 9)]);
        assert_eq!(r, vec![(A, Read, 0, 19)]);
        let r = applied(&[lk(A, Read, 0, 9), lk(A, Read, 11, 19)]);
        assert_eq!(r, vec![(A, Read, 0, 9), (A, Read, 11, 19)]);
        // Filling the gap joins all three.
        let r = applied(&[lk(A, Read, 0, 9), lk(A, Read, 11, 19), lk(A, Read, 10, 10)]);
        assert_eq!(r, vec![(A, Read, 0, 19)]);
        // A lock inside a larger one of the same type changes nothing.
        let r = applied(&[lk(A, Write, 0, OFFSET_MAX), lk(A, Write, 5, 5)]);
        assert_eq!(r, vec![(A, Write, 0, OFFSET_MAX)]);
        // Touching at OFFSET_MAX doesn't overflow.
        let r = applied(&[
            lk(A, Read, OFFSET_MAX, OFFSET_MAX),
            lk(A, Read, 0, OFFSET_MAX - 1),
        ]);
        assert_eq!(r, vec![(A, Read, 0, OFFSET_MAX)]);
    }

    #[test]
    fn a_different_type_replaces_the_middle() {
        let r = applied(&[lk(A, Read, 0, 99), lk(A, Write, 10, 19)]);
        assert_eq!(
            r,
            vec![(A, Read, 0, 9), (A, Write, 10, 19), (A, Read, 20, 99)]
        );
        // Different types that touch stay apart; making the middle a read lock rejoins.
        let r = applied(&[
            lk(A, Read, 0, 99),
            lk(A, Write, 10, 19),
            lk(A, Read, 10, 19),
        ]);
        assert_eq!(r, vec![(A, Read, 0, 99)]);
        // One request over several locks of both types.
        let r = applied(&[
            lk(A, Read, 0, 9),
            lk(A, Write, 20, 29),
            lk(A, Read, 40, 49),
            lk(A, Write, 5, 44),
        ]);
        assert_eq!(
            r,
            vec![(A, Read, 0, 4), (A, Write, 5, 44), (A, Read, 45, 49)]
        );
    }

    #[test]
    fn owners_keep_their_place_in_the_list() {
        let r = applied(&[
            lk(A, Read, 50, 59),
            lk(B, Read, 0, 9),
            lk(A, Read, 0, 9),
            lk(D, Read, 20, 29),
            lk(B, Unlock, 0, OFFSET_MAX),
            lk(B, Read, 70, 79),
        ]);
        assert_eq!(
            r,
            vec![
                (A, Read, 0, 9),
                (A, Read, 50, 59),
                (D, Read, 20, 29),
                (B, Read, 70, 79)
            ]
        );
    }

    #[test]
    fn conflicts_and_getlk() {
        let (_fs, inode) = file();
        let key = FileKey::inode(&inode);
        let m = LockManager::new();
        m.set_record(&key, lk(A, Read, 0, 9), false)
            .expect("A read");
        // Readers share; a writer is refused; the same owner never conflicts with itself.
        m.set_record(&key, lk(B, Read, 5, 14), false)
            .expect("B read");
        assert_eq!(
            m.set_record(&key, lk(B, Write, 9, 9), false),
            Err(libc::EAGAIN)
        );
        m.set_record(&key, lk(B, Write, 10, 20), false)
            .expect("B write past A");
        m.set_record(&key, lk(A, Write, 0, 4), false)
            .expect("A upgrades its own");
        // The first conflict in list order is reported.
        let c = m.test_record(&key, &lk(D, Read, 0, OFFSET_MAX));
        assert_eq!(
            c.map(|l| (l.owner, l.typ, l.start, l.end)),
            Some((A, Write, 0, 4))
        );
        let c = m.test_record(&key, &lk(D, Read, 5, OFFSET_MAX));
        assert_eq!(c.map(|l| (l.owner, l.start, l.end)), Some((B, 10, 20)));
        assert_eq!(m.test_record(&key, &lk(D, Read, 21, 30)), None);
        // F_OFD_GETLK with F_UNLCK: the owner's own lock.
        let c = m.test_record(&key, &lk(B, Unlock, 0, OFFSET_MAX));
        assert_eq!(c.map(|l| (l.owner, l.start)), Some((B, 5)));
    }

    #[test]
    fn releasing_by_file_and_by_owner() {
        let (_fs, one) = file();
        let (_fs2, two) = file();
        let (k1, k2) = (FileKey::inode(&one), FileKey::inode(&two));
        let m = LockManager::new();
        m.set_record(&k1, lk(A, Write, 0, 0), false).expect("lock");
        m.set_record(&k1, lk(B, Write, 1, 1), false).expect("lock");
        m.set_record(&k2, lk(A, Write, 0, 0), false).expect("lock");
        m.flock(&k2, D, Write, false).expect("flock");
        m.release_file(&k1, A);
        assert_eq!(shape(&m.records(&k1)), vec![(B, Write, 1, 1)]);
        assert_eq!(m.records(&k2).len(), 1);
        m.release_owner(A);
        assert!(m.records(&k2).is_empty());
        m.release_owner(B);
        assert_eq!(m.files_locked.load(Ordering::Relaxed), 1);
        m.release_owner(D);
        assert_eq!(m.files_locked.load(Ordering::Relaxed), 0);
        assert!(m.lock().held.is_empty());
    }

    #[test]
    fn flock_conversion_drops_the_old_lock_first() {
        let (_fs, inode) = file();
        let key = FileKey::inode(&inode);
        let m = LockManager::new();
        let (d1, d2) = (LockOwner::Description(1), LockOwner::Description(2));
        m.flock(&key, d1, Read, false).expect("sh");
        m.flock(&key, d2, Read, false).expect("sh");
        assert_eq!(m.flock(&key, d1, Write, false), Err(libc::EWOULDBLOCK));
        // d1 lost its shared lock, so d2 may now upgrade.
        m.flock(&key, d2, Write, false).expect("ex");
        assert_eq!(m.flock(&key, d1, Read, false), Err(libc::EWOULDBLOCK));
        m.flock(&key, d2, Write, false).expect("same type again");
        m.flock(&key, d2, Unlock, false).expect("un");
        m.flock(&key, d1, Write, false).expect("ex");
        // flock and record locks are independent.
        m.set_record(&key, lk(A, Write, 0, OFFSET_MAX), false)
            .expect("record");
        m.flock(&key, d1, Unlock, false).expect("un");
        m.flock(&key, d1, Unlock, false).expect("un twice");
    }

    #[test]
    fn a_stale_entry_is_forgotten() {
        let m = LockManager::new();
        let key = {
            let (_fs, inode) = file();
            let key = FileKey::inode(&inode);
            m.set_record(&key, lk(A, Write, 0, 0), false).expect("lock");
            key
        };
        assert_eq!(m.test_record(&key, &lk(B, Write, 0, 0)), None);
        m.set_record(&key, lk(B, Write, 0, 0), false)
            .expect("stale lock ignored");
        assert_eq!(shape(&m.records(&key)), vec![(B, Write, 0, 0)]);
    }

    fn wait_for_waiters(m: &LockManager, n: usize) {
        for _ in 0..1000 {
            if m.lock().waiting.len() >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        panic!("no waiter showed up");
    }

    #[test]
    fn setlkw_waits_and_detects_deadlock() {
        let (_fs, inode) = file();
        let key = FileKey::inode(&inode);
        let m = Arc::new(LockManager::new());
        m.set_record(&key, lk(A, Write, 0, 0), false).expect("A");
        m.set_record(&key, lk(B, Write, 1, 1), false).expect("B");
        let waiter = {
            let (m, key) = (m.clone(), key.clone());
            std::thread::spawn(move || m.set_record(&key, lk(A, Write, 1, 1), true))
        };
        wait_for_waiters(&m, 1);
        // B waiting for A, who waits for B: refused.
        assert_eq!(
            m.set_record(&key, lk(B, Write, 0, 0), true),
            Err(libc::EDEADLK)
        );
        m.set_record(&key, lk(B, Unlock, 0, OFFSET_MAX), false)
            .expect("unlock");
        assert_eq!(waiter.join().expect("join"), Ok(()));
        assert_eq!(shape(&m.records(&key)), vec![(A, Write, 0, 1)]);
        assert!(m.lock().waiting.is_empty());
    }

    #[test]
    fn blocking_flock_waits_for_release() {
        let (_fs, inode) = file();
        let key = FileKey::inode(&inode);
        let m = Arc::new(LockManager::new());
        let (d1, d2) = (LockOwner::Description(1), LockOwner::Description(2));
        m.flock(&key, d1, Write, false).expect("ex");
        let waiter = {
            let (m, key) = (m.clone(), key.clone());
            std::thread::spawn(move || m.flock(&key, d2, Read, true))
        };
        std::thread::sleep(Duration::from_millis(20));
        assert!(!waiter.is_finished());
        m.release_owner(d1);
        assert_eq!(waiter.join().expect("join"), Ok(()));
    }
}
