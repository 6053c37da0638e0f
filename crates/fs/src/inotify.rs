//! inotify: instances (a file description with an event queue), watches on inodes, and the
//! events the VFS reports for changes made inside the sandbox (Linux's fsnotify hooks:
//! open, read, write, close, setattr, create, unlink, rename, link).
//!
//! Watches live in one table keyed by inode identity. The hooks cost one relaxed atomic load
//! while no watch exists anywhere ([`active`]); only then do they look anything up.
//!
//! Semantics follow Linux's `fs/notify/inotify`: a watch's events go to its instance's
//! queue; an event identical to the last queued one (same wd, mask, cookie and name) is
//! merged into it; a queue holding `max_queued_events` events takes one IN_Q_OVERFLOW (wd
//! -1) and drops the rest; removing a watch (inotify_rm_watch, IN_ONESHOT after its event,
//! the inode's deletion, the instance's close) queues IN_IGNORED.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};

use crate::vfs::{Dentry, FileType, Inode, OpenFile};
use crate::waiter::{WaitQueue, POLLIN, POLLRDNORM};
use crate::{Errno, FileDescription, Stat};

pub const IN_ACCESS: u32 = 0x0000_0001;
pub const IN_MODIFY: u32 = 0x0000_0002;
pub const IN_ATTRIB: u32 = 0x0000_0004;
pub const IN_CLOSE_WRITE: u32 = 0x0000_0008;
pub const IN_CLOSE_NOWRITE: u32 = 0x0000_0010;
pub const IN_OPEN: u32 = 0x0000_0020;
pub const IN_MOVED_FROM: u32 = 0x0000_0040;
pub const IN_MOVED_TO: u32 = 0x0000_0080;
pub const IN_CREATE: u32 = 0x0000_0100;
pub const IN_DELETE: u32 = 0x0000_0200;
pub const IN_DELETE_SELF: u32 = 0x0000_0400;
pub const IN_MOVE_SELF: u32 = 0x0000_0800;
pub const IN_UNMOUNT: u32 = 0x0000_2000;
pub const IN_Q_OVERFLOW: u32 = 0x0000_4000;
pub const IN_IGNORED: u32 = 0x0000_8000;
pub const IN_ONLYDIR: u32 = 0x0100_0000;
pub const IN_DONT_FOLLOW: u32 = 0x0200_0000;
pub const IN_EXCL_UNLINK: u32 = 0x0400_0000;
pub const IN_MASK_CREATE: u32 = 0x1000_0000;
pub const IN_MASK_ADD: u32 = 0x2000_0000;
pub const IN_ISDIR: u32 = 0x4000_0000;
pub const IN_ONESHOT: u32 = 0x8000_0000;
pub const IN_ALL_EVENTS: u32 = 0xfff;
/// Every bit inotify_add_watch knows (Linux's ALL_INOTIFY_BITS).
pub const ALL_INOTIFY_BITS: u32 = IN_ALL_EVENTS
    | IN_UNMOUNT
    | IN_Q_OVERFLOW
    | IN_IGNORED
    | IN_ONLYDIR
    | IN_DONT_FOLLOW
    | IN_EXCL_UNLINK
    | IN_MASK_CREATE
    | IN_MASK_ADD
    | IN_ISDIR
    | IN_ONESHOT;
/// Marks a rename within one directory (Linux's FS_DN_RENAME), for dnotify's DN_RENAME;
/// never shown to inotify.
const DN_RENAME_BIT: u32 = 0x1000_0000;
/// What an inotify event's mask may show (Linux's inotify_mask_to_arg).
const INOTIFY_VISIBLE: u32 = IN_ALL_EVENTS | IN_ISDIR | IN_UNMOUNT | IN_IGNORED | IN_Q_OVERFLOW;

pub const DN_ACCESS: u32 = 0x1;
pub const DN_MODIFY: u32 = 0x2;
pub const DN_CREATE: u32 = 0x4;
pub const DN_DELETE: u32 = 0x8;
pub const DN_RENAME: u32 = 0x10;
pub const DN_ATTRIB: u32 = 0x20;
pub const DN_MULTISHOT: u32 = 0x8000_0000;
/// Events dnotify reports.
const DN_EVENTS: u32 = IN_ACCESS
    | IN_MODIFY
    | IN_ATTRIB
    | IN_CREATE
    | IN_DELETE
    | IN_MOVED_FROM
    | IN_MOVED_TO
    | DN_RENAME_BIT;

/// Events a directory's watch gets for its children (with the child's name).
const EVENTS_ON_CHILD: u32 =
    IN_ACCESS | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_CLOSE_NOWRITE | IN_OPEN;
/// What a watch keeps of the mask it was given (Linux's INOTIFY_USER_MASK less the
/// add-time flags).
const KEPT_BITS: u32 = IN_ALL_EVENTS | IN_EXCL_UNLINK | IN_ONESHOT;

/// Linux's defaults for /proc/sys/fs/inotify.
pub const MAX_QUEUED_EVENTS: usize = 16384;
pub const MAX_USER_INSTANCES: usize = 128;
pub const MAX_USER_WATCHES: usize = 65536;

/// The size of `struct inotify_event` without its name.
const EVENT_SIZE: usize = 16;

/// Number of watches in the sandbox: the hooks do nothing while it is 0.
static WATCHES: AtomicUsize = AtomicUsize::new(0);

/// Whether any watch exists (the hooks' one cheap check).
#[inline]
pub fn active() -> bool {
    WATCHES.load(Ordering::Relaxed) != 0
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One watch as the inode table sees it.
struct WatchRef {
    instance: Weak<Inotify>,
    instance_id: u64,
    wd: i32,
    mask: u32,
}

/// A watched inode: the inode (held, so its address stays its identity) and its watches.
struct Target {
    /// Held, never read: a watched inode lives as long as its watches, as on Linux.
    _inode: Arc<dyn Inode>,
    watches: Vec<WatchRef>,
}

/// Tells a dnotify registration's owner (the sentry sends SIGIO or F_SETSIG's signal).
pub type DnotifySignal = Arc<dyn Fn(&Arc<OpenFile>) + Send + Sync>;

/// A dnotify registration (`fcntl(F_NOTIFY)` on a directory descriptor).
struct DnWatch {
    file: Weak<OpenFile>,
    file_id: usize,
    /// IN_* events (and [`DN_RENAME_BIT`]), with [`DN_MULTISHOT`].
    mask: u32,
    signal: DnotifySignal,
}

/// Watches by inode address; users' instance and watch counts.
#[derive(Default)]
struct Table {
    targets: HashMap<usize, Target>,
    /// dnotify registrations by directory inode address (the inode held).
    dnotify: HashMap<usize, (Arc<dyn Inode>, Vec<DnWatch>)>,
    instances_by_uid: HashMap<u32, usize>,
    watches_by_uid: HashMap<u32, usize>,
}

fn table() -> MutexGuard<'static, Table> {
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    lock(TABLE.get_or_init(Mutex::default))
}

fn key(inode: &Arc<dyn Inode>) -> usize {
    Arc::as_ptr(inode) as *const () as usize
}

/// Cookies tying IN_MOVED_FROM to IN_MOVED_TO.
static COOKIE: AtomicU32 = AtomicU32::new(0);

/// A fresh rename cookie (never 0).
pub fn next_cookie() -> u32 {
    loop {
        let c = COOKIE.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
        if c != 0 {
            return c;
        }
    }
}

static NEXT_INSTANCE: AtomicU64 = AtomicU64::new(1);

#[derive(Clone, PartialEq, Eq)]
struct Event {
    wd: i32,
    mask: u32,
    cookie: u32,
    name: Vec<u8>,
}

impl Event {
    /// The name field's length: the name, a NUL, padded to a multiple of the event size.
    fn name_len(&self) -> usize {
        if self.name.is_empty() {
            0
        } else {
            (self.name.len() + 1).div_ceil(EVENT_SIZE) * EVENT_SIZE
        }
    }

    fn size(&self) -> usize {
        EVENT_SIZE + self.name_len()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let len = self.name_len();
        out.extend_from_slice(&self.wd.to_ne_bytes());
        out.extend_from_slice(&self.mask.to_ne_bytes());
        out.extend_from_slice(&self.cookie.to_ne_bytes());
        out.extend_from_slice(&(len as u32).to_ne_bytes());
        let start = out.len();
        out.extend_from_slice(&self.name);
        out.resize(start + len, 0);
    }
}

#[derive(Default)]
struct Queue {
    events: VecDeque<Event>,
    bytes: usize,
    /// Watches of this instance: wd to the watched inode's key.
    watches: HashMap<i32, usize>,
    next_wd: i32,
}

/// An inotify instance.
pub struct Inotify {
    /// Itself, for the weak references its watches hold.
    me: Weak<Inotify>,
    id: u64,
    uid: u32,
    ino: u64,
    queue: Mutex<Queue>,
    changed: Condvar,
    waiters: WaitQueue,
}

impl Inotify {
    /// A new instance of user `uid` (EMFILE past max_user_instances).
    pub fn new(uid: u32) -> Result<Arc<Inotify>, Errno> {
        let mut t = table();
        let n = t.instances_by_uid.entry(uid).or_default();
        if *n >= MAX_USER_INSTANCES {
            return Err(libc::EMFILE);
        }
        *n += 1;
        Ok(Arc::new_cyclic(|me| Inotify {
            me: me.clone(),
            id: NEXT_INSTANCE.fetch_add(1, Ordering::Relaxed),
            uid,
            ino: crate::eventfd::next_anon_ino(),
            queue: Mutex::new(Queue {
                next_wd: 1,
                ..Default::default()
            }),
            changed: Condvar::new(),
            waiters: WaitQueue::new(),
        }))
    }

    /// inotify_add_watch on `inode` (already resolved and permission-checked): the watch
    /// descriptor.
    pub fn add_watch(&self, inode: &Arc<dyn Inode>, mask: u32) -> Result<i32, Errno> {
        let k = key(inode);
        let mut t = table();
        let mut q = lock(&self.queue);
        let existing = q.watches.iter().find(|(_, &v)| v == k).map(|(&wd, _)| wd);
        if let Some(wd) = existing {
            if mask & IN_MASK_CREATE != 0 {
                return Err(libc::EEXIST);
            }
            if let Some(w) = t
                .targets
                .get_mut(&k)
                .and_then(|tg| tg.watches.iter_mut().find(|w| w.instance_id == self.id))
            {
                w.mask = if mask & IN_MASK_ADD != 0 {
                    w.mask | (mask & KEPT_BITS)
                } else {
                    mask & KEPT_BITS
                };
            }
            return Ok(wd);
        }
        let count = t.watches_by_uid.entry(self.uid).or_default();
        if *count >= MAX_USER_WATCHES {
            return Err(libc::ENOSPC);
        }
        *count += 1;
        // Linux allocates watch descriptors cyclically: a removed wd isn't reused soon.
        let mut wd = q.next_wd;
        while q.watches.contains_key(&wd) {
            wd = if wd == i32::MAX { 1 } else { wd + 1 };
        }
        q.next_wd = if wd == i32::MAX { 1 } else { wd + 1 };
        q.watches.insert(wd, k);
        t.targets
            .entry(k)
            .or_insert_with(|| Target {
                _inode: inode.clone(),
                watches: Vec::new(),
            })
            .watches
            .push(WatchRef {
                instance: self.me.clone(),
                instance_id: self.id,
                wd,
                mask: mask & KEPT_BITS,
            });
        WATCHES.fetch_add(1, Ordering::Relaxed);
        Ok(wd)
    }

    /// inotify_rm_watch: EINVAL for a wd this instance doesn't have.
    pub fn rm_watch(&self, wd: i32) -> Result<(), Errno> {
        let mut pending = Pending::new();
        {
            let mut t = table();
            let k = lock(&self.queue).watches.get(&wd).copied();
            let k = k.ok_or(libc::EINVAL)?;
            remove_watch(&mut t, k, self.id, &mut pending);
        }
        flush(pending);
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        lock(&self.queue)
    }

    /// Queues an event: merged with an identical last one, or IN_Q_OVERFLOW when full.
    fn push(&self, ev: Event) {
        let mut q = self.lock();
        if q.events.back() == Some(&ev) {
            return;
        }
        let max = MAX_QUEUED_EVENTS;
        let ev = if q.events.len() >= max {
            let overflow = Event {
                wd: -1,
                mask: IN_Q_OVERFLOW,
                cookie: 0,
                name: Vec::new(),
            };
            if q.events.back() == Some(&overflow) || q.events.len() > max {
                return;
            }
            overflow
        } else {
            ev
        };
        q.bytes += ev.size();
        q.events.push_back(ev);
        drop(q);
        self.changed.notify_all();
        self.waiters.notify(POLLIN | POLLRDNORM);
    }

    fn do_read(&self, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        let mut q = self.lock();
        while q.events.is_empty() {
            if nonblock {
                return Err(libc::EAGAIN);
            }
            q = crate::waiter::wait_on(&self.changed, q)?;
        }
        let mut out = Vec::new();
        while let Some(ev) = q.events.front() {
            let size = ev.size();
            if out.len() + size > buf.len() {
                break;
            }
            ev.encode(&mut out);
            q.bytes -= size;
            q.events.pop_front();
        }
        if out.is_empty() {
            return Err(libc::EINVAL);
        }
        buf[..out.len()].copy_from_slice(&out);
        Ok(out.len())
    }
}

/// Events to queue once the table's lock is released: an instance reached through a weak
/// reference may be dropped with it, and its Drop takes the table's lock.
type Pending = Vec<(Arc<Inotify>, Event)>;

fn flush(pending: Pending) {
    for (inst, ev) in pending {
        inst.push(ev);
    }
}

/// Removes instance `id`'s watch on the target `k`; its IN_IGNORED goes to `pending`.
fn remove_watch(t: &mut Table, k: usize, id: u64, pending: &mut Pending) {
    let Some(target) = t.targets.get_mut(&k) else {
        return;
    };
    let Some(pos) = target.watches.iter().position(|w| w.instance_id == id) else {
        return;
    };
    let w = target.watches.swap_remove(pos);
    if target.watches.is_empty() {
        t.targets.remove(&k);
    }
    WATCHES.fetch_sub(1, Ordering::Relaxed);
    if let Some(inst) = w.instance.upgrade() {
        if let Some(c) = t.watches_by_uid.get_mut(&inst.uid) {
            *c = c.saturating_sub(1);
        }
        inst.lock().watches.remove(&w.wd);
        pending.push((
            inst,
            Event {
                wd: w.wd,
                mask: IN_IGNORED,
                cookie: 0,
                name: Vec::new(),
            },
        ));
    }
}

impl Drop for Inotify {
    /// Closing the instance drops its watches.
    fn drop(&mut self) {
        let mut t = table();
        let keys: Vec<usize> = self.lock().watches.values().copied().collect();
        for k in keys {
            if let Some(target) = t.targets.get_mut(&k) {
                let before = target.watches.len();
                target.watches.retain(|w| w.instance_id != self.id);
                let removed = before - target.watches.len();
                WATCHES.fetch_sub(removed, Ordering::Relaxed);
                if target.watches.is_empty() {
                    t.targets.remove(&k);
                }
                if let Some(c) = t.watches_by_uid.get_mut(&self.uid) {
                    *c = c.saturating_sub(removed);
                }
            }
        }
        if let Some(n) = t.instances_by_uid.get_mut(&self.uid) {
            *n = n.saturating_sub(1);
        }
    }
}

impl FileDescription for Inotify {
    fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        self.do_read(buf, false)
    }

    fn write(&self, _buf: &[u8]) -> Result<usize, Errno> {
        Err(libc::EINVAL)
    }

    fn read_with_flags(&self, buf: &mut [u8], flags: u32) -> Result<usize, Errno> {
        self.do_read(buf, flags & libc::O_NONBLOCK as u32 != 0)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(crate::eventfd::anon_inode_stat(self.ino))
    }

    fn may_block(&self) -> bool {
        true
    }

    fn bytes_available(&self) -> Result<u32, Errno> {
        Ok(self.lock().bytes.min(i32::MAX as usize) as u32)
    }

    fn readiness(&self, mask: u32) -> u32 {
        if self.lock().events.is_empty() {
            0
        } else {
            mask & (POLLIN | POLLRDNORM)
        }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.waiters)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

// --- events --------------------------------------------------------------------------------

/// Delivers `mask` (one event, maybe with IN_ISDIR) to the watches of `inode`. `name` is the
/// child's name for a directory's events. `unlinked`: the event comes through a name that
/// was removed (IN_EXCL_UNLINK watches skip it).
fn deliver(inode: &Arc<dyn Inode>, mask: u32, cookie: u32, name: &[u8], unlinked: bool) {
    let k = key(inode);
    let mut pending = Pending::new();
    let mut signals = Vec::new();
    {
        let mut t = table();
        if !t.dnotify.is_empty() {
            dnotify_deliver(&mut t, k, mask, &mut signals);
        }
        let Some(target) = t.targets.get(&k) else {
            drop(t);
            for (signal, file) in signals {
                signal(&file);
            }
            return;
        };
        let mut oneshots = Vec::new();
        for w in &target.watches {
            if w.mask & mask & IN_ALL_EVENTS == 0 {
                continue;
            }
            if unlinked && w.mask & IN_EXCL_UNLINK != 0 {
                continue;
            }
            if let Some(inst) = w.instance.upgrade() {
                pending.push((
                    inst,
                    Event {
                        wd: w.wd,
                        mask: mask & INOTIFY_VISIBLE,
                        cookie,
                        name: name.to_vec(),
                    },
                ));
            }
            if w.mask & IN_ONESHOT != 0 {
                oneshots.push(w.instance_id);
            }
        }
        for id in oneshots {
            remove_watch(&mut t, k, id, &mut pending);
        }
    }
    flush(pending);
    for (signal, file) in signals {
        signal(&file);
    }
}

/// dnotify registrations on the directory `k` that `mask` concerns: their signals go to
/// `signals`; a registration without DN_MULTISHOT goes once it fired, as does one whose
/// description is gone.
fn dnotify_deliver(
    t: &mut Table,
    k: usize,
    mask: u32,
    signals: &mut Vec<(DnotifySignal, Arc<OpenFile>)>,
) {
    let test = mask & DN_EVENTS;
    let Some((_, list)) = t.dnotify.get_mut(&k) else {
        return;
    };
    let before = list.len();
    // A description is only upgraded to be kept in `signals`: dropping the last reference
    // here, under the table's lock, would run its close hook, which takes the lock.
    list.retain(|dn| {
        if dn.file.strong_count() == 0 {
            return false;
        }
        if dn.mask & test == 0 {
            return true;
        }
        match dn.file.upgrade() {
            Some(file) => signals.push((dn.signal.clone(), file)),
            None => return false,
        }
        dn.mask & DN_MULTISHOT != 0
    });
    let removed = before - list.len();
    if list.is_empty() {
        t.dnotify.remove(&k);
    }
    WATCHES.fetch_sub(removed, Ordering::Relaxed);
}

/// `fcntl(F_NOTIFY, arg)` on the directory description `file`: adds `arg`'s events to the
/// description's registration (or removes it when `arg` names no event). ENOTDIR for a
/// non-directory.
pub fn dnotify(file: &Arc<OpenFile>, arg: u32, signal: DnotifySignal) -> Result<(), Errno> {
    let file_id = Arc::as_ptr(file) as usize;
    let inode = file.inode().cloned().ok_or(libc::ENOTDIR)?;
    let k = key(&inode);
    let mut t = table();
    if arg & !DN_MULTISHOT == 0 {
        if let Some((_, list)) = t.dnotify.get_mut(&k) {
            let before = list.len();
            list.retain(|dn| dn.file_id != file_id);
            WATCHES.fetch_sub(before - list.len(), Ordering::Relaxed);
            if list.is_empty() {
                t.dnotify.remove(&k);
            }
        }
        return Ok(());
    }
    if !is_dir(&inode) {
        return Err(libc::ENOTDIR);
    }
    let mut mask = arg & DN_MULTISHOT;
    for (dn, events) in [
        (DN_ACCESS, IN_ACCESS),
        (DN_MODIFY, IN_MODIFY),
        (DN_CREATE, IN_CREATE | IN_MOVED_TO),
        (DN_DELETE, IN_DELETE | IN_MOVED_FROM),
        (DN_RENAME, DN_RENAME_BIT),
        (DN_ATTRIB, IN_ATTRIB),
    ] {
        if arg & dn != 0 {
            mask |= events;
        }
    }
    let (_, list) = t
        .dnotify
        .entry(k)
        .or_insert_with(|| (inode.clone(), Vec::new()));
    if let Some(dn) = list.iter_mut().find(|dn| dn.file_id == file_id) {
        dn.mask |= mask;
        dn.signal = signal;
        return Ok(());
    }
    list.push(DnWatch {
        file: Arc::downgrade(file),
        file_id,
        mask,
        signal,
    });
    WATCHES.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

fn is_dir(inode: &Arc<dyn Inode>) -> bool {
    inode.file_type() == FileType::Directory
}

/// An event about a file opened or named through `dentry` (IN_ACCESS, IN_MODIFY, IN_ATTRIB,
/// IN_OPEN, IN_CLOSE_*): to its directory's watches with its name, then to its own.
pub fn file_event(dentry: &Dentry, mask: u32) {
    if !active() {
        return;
    }
    let inode = dentry.inode();
    let mask = if is_dir(inode) { mask | IN_ISDIR } else { mask };
    let unlinked = dentry.is_dead();
    if mask & EVENTS_ON_CHILD != 0 {
        if let Some(parent) = dentry.parent() {
            deliver(parent.inode(), mask, 0, &dentry.name(), unlinked);
        }
    }
    deliver(inode, mask, 0, b"", unlinked);
}

/// An event about an inode alone, without a name (IN_ATTRIB on a link count change).
pub fn inode_event(inode: &Arc<dyn Inode>, mask: u32) {
    if !active() {
        return;
    }
    deliver(inode, mask, 0, b"", false);
}

/// A directory entry event (IN_CREATE, IN_DELETE) for `name` in `dir`; `child_is_dir` adds
/// IN_ISDIR.
pub fn dir_event(dir: &Arc<dyn Inode>, mask: u32, name: &[u8], child_is_dir: bool) {
    if !active() {
        return;
    }
    let mask = if child_is_dir { mask | IN_ISDIR } else { mask };
    deliver(dir, mask, 0, name, false);
}

/// The name `victim` was removed (unlink, rmdir, replaced by a rename), and the caller's
/// is its only reference it expects: IN_ATTRIB for a non-directory (its link count
/// changed) and, when no link is left, the deletion: IN_DELETE_SELF and the watches'
/// removal (IN_IGNORED). As Linux's `d_delete`, the deletion is reported at once only when
/// nothing else holds the name; otherwise when the last holder lets go (the last close,
/// munmap or chdir away: `Dentry`'s drop calls [`deleted`]).
pub fn unlinked(victim: &Arc<Dentry>, link_count_event: bool) {
    if !active() {
        return;
    }
    let inode = victim.inode();
    if link_count_event {
        deliver(inode, IN_ATTRIB, 0, b"", false);
    }
    if Arc::strong_count(victim) > 1 {
        victim.defer_deletion_notice();
    } else {
        deleted(inode);
    }
}

/// A removed name's last reference went: if the file has no link left (a directory has
/// none once removed), IN_DELETE_SELF and IN_IGNORED to its watches.
pub fn deleted(inode: &Arc<dyn Inode>) {
    if !active() {
        return;
    }
    let gone = is_dir(inode) || inode.stat().map(|s| s.nlink == 0).unwrap_or(true);
    if gone {
        deliver(inode, IN_DELETE_SELF, 0, b"", false);
        remove_all(inode);
    }
}

/// Drops every watch of `inode` (queueing IN_IGNORED to each).
fn remove_all(inode: &Arc<dyn Inode>) {
    let k = key(inode);
    let mut pending = Pending::new();
    {
        let mut t = table();
        let ids: Vec<u64> = match t.targets.get(&k) {
            Some(tg) => tg.watches.iter().map(|w| w.instance_id).collect(),
            None => return,
        };
        for id in ids {
            remove_watch(&mut t, k, id, &mut pending);
        }
    }
    flush(pending);
}

/// A rename of `old_name` in `old_dir` to `new_name` in `new_dir` of `source`: IN_MOVED_FROM
/// and IN_MOVED_TO with one cookie, then IN_MOVE_SELF on the source. The caller reports a
/// replaced target with [`unlinked`] afterwards, and an exchange as two moves.
pub fn moved(
    old_dir: &Arc<dyn Inode>,
    old_name: &[u8],
    new_dir: &Arc<dyn Inode>,
    new_name: &[u8],
    source: &Arc<dyn Inode>,
) {
    if !active() {
        return;
    }
    let cookie = next_cookie();
    let isdir = if is_dir(source) { IN_ISDIR } else { 0 };
    let same_dir = if key(old_dir) == key(new_dir) {
        DN_RENAME_BIT
    } else {
        0
    };
    deliver(
        old_dir,
        IN_MOVED_FROM | isdir | same_dir,
        cookie,
        old_name,
        false,
    );
    deliver(new_dir, IN_MOVED_TO | isdir, cookie, new_name, false);
}

/// IN_MOVE_SELF for a renamed inode.
pub fn move_self(source: &Arc<dyn Inode>) {
    if !active() {
        return;
    }
    deliver(source, IN_MOVE_SELF, 0, b"", false);
}

/// The events of a metadata change (Linux's `fsnotify_change`): what changed to the mask.
pub fn setattr_mask(attr: &crate::vfs::SetAttr) -> u32 {
    let mut mask = 0;
    if attr.uid.is_some() || attr.gid.is_some() || attr.mode.is_some() {
        mask |= IN_ATTRIB;
    }
    if attr.size.is_some() {
        mask |= IN_MODIFY;
    }
    match (attr.atime.is_some(), attr.mtime.is_some()) {
        (true, true) => mask |= IN_ATTRIB,
        (true, false) => mask |= IN_ACCESS,
        (false, true) => mask |= IN_MODIFY,
        (false, false) => {}
    }
    mask
}

/// The instance behind a description, if it is one.
pub fn instance(desc: &Arc<dyn FileDescription>) -> Option<&Inotify> {
    desc.as_any().and_then(|a| a.downcast_ref::<Inotify>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tmpfs::Tmpfs;
    use crate::vfs::{NewNode, Owner};

    fn read_all(i: &Inotify) -> Vec<(i32, u32, Vec<u8>)> {
        let mut buf = vec![0u8; 4096];
        let n = i
            .read_with_flags(&mut buf, libc::O_NONBLOCK as u32)
            .unwrap_or(0);
        let mut out = Vec::new();
        let mut off = 0;
        while off < n {
            let wd = i32::from_ne_bytes(buf[off..off + 4].try_into().unwrap());
            let mask = u32::from_ne_bytes(buf[off + 4..off + 8].try_into().unwrap());
            let len = u32::from_ne_bytes(buf[off + 12..off + 16].try_into().unwrap()) as usize;
            let name = buf[off + 16..off + 16 + len]
                .iter()
                .copied()
                .take_while(|&b| b != 0)
                .collect();
            out.push((wd, mask, name));
            off += 16 + len;
        }
        out
    }

    #[test]
    fn watch_events_merge_and_ignore() {
        let fs = Tmpfs::new(crate::dev::makedev(0, 99));
        let root: Arc<dyn Inode> = fs.root_inode();
        let owner = Owner { uid: 0, gid: 0 };
        let i = Inotify::new(4242).unwrap();
        let wd = i.add_watch(&root, IN_CREATE | IN_MODIFY).unwrap();
        assert!(active());
        root.create(b"f", NewNode::Regular, 0o644, owner).unwrap();
        dir_event(&root, IN_CREATE, b"f", false);
        dir_event(&root, IN_CREATE, b"f", false);
        dir_event(&root, IN_DELETE, b"f", false);
        assert_eq!(i.bytes_available(), Ok(32));
        let mut small = [0u8; 31];
        assert_eq!(i.read_with_flags(&mut small, 0), Err(libc::EINVAL));
        assert_eq!(read_all(&i), vec![(wd, IN_CREATE, b"f".to_vec())]);
        assert_eq!(
            i.add_watch(&root, IN_MODIFY | IN_MASK_CREATE),
            Err(libc::EEXIST)
        );
        i.rm_watch(wd).unwrap();
        assert_eq!(i.rm_watch(wd), Err(libc::EINVAL));
        assert_eq!(read_all(&i), vec![(wd, IN_IGNORED, Vec::new())]);
        drop(i);
    }
}
