//! epoll instances, modelled on Linux's `fs/eventpoll.c` so that programs see the same
//! events in the same order.
//!
//! An instance watches (open file, fd) pairs: the same file under two descriptors is two
//! items, and an item lives as long as its open file does (closing one of several
//! descriptors of a file leaves the item in place), exactly as on Linux. Each item is a
//! [`Listener`] on its file's [`WaitQueue`]; a notification puts it on the ready list, and
//! `epoll_wait` ([`Epoll::send_events`]) polls the ready items, reports those with events,
//! and keeps level-triggered ones on the list (at the back, so busy items take turns).
//! EPOLLET items leave the list until the next notification; EPOLLONESHOT items are
//! disabled until EPOLL_CTL_MOD. An instance is itself pollable (readable when an item is
//! ready), so instances nest, up to [`MAX_NESTS`] deep and never in a loop.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use crate::vfs::OpenFile;
use crate::waiter::{Listener, Registration, WaitQueue, ALL_EVENTS, ALWAYS, POLLIN, POLLRDNORM};
use crate::{Errno, FileDescription, Stat};

pub const EPOLLEXCLUSIVE: u32 = 1 << 28;
pub const EPOLLWAKEUP: u32 = 1 << 29;
pub const EPOLLONESHOT: u32 = 1 << 30;
pub const EPOLLET: u32 = 1 << 31;
/// Bits that configure an item rather than name events.
pub const PRIVATE_BITS: u32 = EPOLLWAKEUP | EPOLLONESHOT | EPOLLET | EPOLLEXCLUSIVE;
/// What may accompany EPOLLEXCLUSIVE (Linux's EPOLLEXCLUSIVE_OK_BITS).
const EXCLUSIVE_OK_BITS: u32 = crate::waiter::POLLIN
    | crate::waiter::POLLOUT
    | crate::waiter::POLLERR
    | crate::waiter::POLLHUP
    | EPOLLWAKEUP
    | EPOLLET
    | EPOLLEXCLUSIVE;
/// How deep instances may nest (Linux's EP_MAX_NESTS).
pub const MAX_NESTS: usize = 4;

static NEXT_ITEM_ID: AtomicU64 = AtomicU64::new(1);
/// Serialises adding an instance to an instance, so two such adds can't build a loop
/// between them (Linux's `epnested_mutex`).
static NESTING: Mutex<()> = Mutex::new(());

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// An item's identity: the open file's address and the descriptor number. The item holds a
/// `Weak` to the file, which keeps the address from being reused while the key exists.
type Key = (usize, i32);

fn key_of(file: &Arc<OpenFile>, fd: i32) -> Key {
    (Arc::as_ptr(file) as usize, fd)
}

struct Item {
    /// Distinguishes this item from a later one with the same key (after DEL and ADD), so
    /// stale entries in the ready list are skipped.
    id: u64,
    file: Weak<OpenFile>,
    /// Requested events, always with POLLERR|POLLHUP; only PRIVATE_BITS once a oneshot item
    /// has fired.
    events: u32,
    data: u64,
    /// On the ready list (or in the list being scanned).
    linked: bool,
    /// Notified during a scan and queued in `overflow`.
    in_overflow: bool,
    /// Dropping the item unregisters it from the file's queue.
    _registration: Registration,
    _listener: Arc<ItemListener>,
}

#[derive(Default)]
struct State {
    items: HashMap<Key, Item>,
    ready: VecDeque<(Key, u64)>,
    /// While a scan has taken the ready list out, notifications land here.
    scanning: bool,
    overflow: Vec<(Key, u64)>,
}

struct Inner {
    state: Mutex<State>,
    /// Held by scans and by epoll_ctl (Linux's `ep->mtx`): one at a time per instance.
    mtx: Mutex<()>,
    /// Waiters in epoll_wait, poll/select on the instance, and instances watching this one.
    queue: WaitQueue,
    ino: u64,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Puts item (key, id) on the ready list (or the overflow list during a scan), unless
    /// it is already there or disabled. Returns whether waiters should hear of it.
    fn link(&self, key: Key, id: u64, events: u32) -> bool {
        let mut st = self.state();
        let st = &mut *st;
        let Some(item) = st.items.get_mut(&key).filter(|i| i.id == id) else {
            return false;
        };
        if item.events & !PRIVATE_BITS == 0 {
            // A oneshot item that fired: silent until EPOLL_CTL_MOD.
            return false;
        }
        if events != 0 && events & item.events == 0 {
            return false;
        }
        if st.scanning {
            if !item.in_overflow {
                item.in_overflow = true;
                st.overflow.push((key, id));
            }
        } else if !item.linked {
            item.linked = true;
            st.ready.push_back((key, id));
        }
        true
    }
}

/// An item's presence on its file's wait queue.
struct ItemListener {
    epoll: Weak<Inner>,
    key: Key,
    id: u64,
}

impl Listener for ItemListener {
    fn notify(&self, events: u32) {
        if let Some(ep) = self.epoll.upgrade() {
            if ep.link(self.key, self.id, events) {
                ep.queue.notify(POLLIN | POLLRDNORM);
            }
        }
    }
}

/// What a scan does with ready items.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ScanMode {
    /// epoll_wait: report up to this many, applying EPOLLET and EPOLLONESHOT.
    Report(usize),
    /// poll on the instance: stop at the first ready item, changing nothing but dropping
    /// items that turned out not ready.
    Peek,
}

/// An epoll instance: the description behind an epoll fd.
pub struct Epoll {
    inner: Arc<Inner>,
}

impl Default for Epoll {
    fn default() -> Self {
        Epoll {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                mtx: Mutex::new(()),
                queue: WaitQueue::new(),
                ino: crate::eventfd::next_anon_ino(),
            }),
        }
    }
}

impl Epoll {
    pub fn new() -> Arc<Epoll> {
        Arc::new(Epoll::default())
    }

    /// The queue epoll_wait's waiter registers on (notified with POLLIN when an item
    /// becomes ready).
    pub fn queue(&self) -> &WaitQueue {
        &self.inner.queue
    }

    /// Whether `self` and `other` are the same instance.
    pub fn same(&self, other: &Epoll) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// EPOLL_CTL_ADD. The caller has checked that `file` is pollable, is not this instance,
    /// and (for instances) creates no loop ([`Epoll::would_loop`]).
    pub fn add(&self, file: &Arc<OpenFile>, fd: i32, events: u32, data: u64) -> Result<(), Errno> {
        if events & EPOLLEXCLUSIVE != 0 && events & !EXCLUSIVE_OK_BITS != 0 {
            return Err(libc::EINVAL);
        }
        let queue = file.wait_queue().ok_or(libc::EPERM)?;
        let events = events | ALWAYS;
        let key = key_of(file, fd);
        let id = NEXT_ITEM_ID.fetch_add(1, Ordering::Relaxed);
        let _mtx = lock(&self.inner.mtx);
        {
            let mut st = self.inner.state();
            if st.items.contains_key(&key) {
                return Err(libc::EEXIST);
            }
            // Sweep items whose files are gone now and then (at each power of two), so
            // an instance that outlives many files doesn't keep them all.
            if st.items.len() >= 64 && st.items.len().is_power_of_two() {
                st.items.retain(|_, i| i.file.strong_count() > 0);
            }
            let listener = Arc::new(ItemListener {
                epoll: Arc::downgrade(&self.inner),
                key,
                id,
            });
            // Filtering by the item's current events happens in `link`, so MOD needs no
            // re-registration.
            let registration = queue.register(&listener, ALL_EVENTS);
            st.items.insert(
                key,
                Item {
                    id,
                    file: Arc::downgrade(file),
                    events,
                    data,
                    linked: false,
                    in_overflow: false,
                    _registration: registration,
                    _listener: listener,
                },
            );
        }
        self.link_if_ready(file, key, id, events);
        Ok(())
    }

    /// EPOLL_CTL_MOD: new events and data; re-arms a oneshot item.
    pub fn modify(
        &self,
        file: &Arc<OpenFile>,
        fd: i32,
        events: u32,
        data: u64,
    ) -> Result<(), Errno> {
        let key = key_of(file, fd);
        let events = events | ALWAYS;
        let _mtx = lock(&self.inner.mtx);
        let id = {
            let mut st = self.inner.state();
            let item = st.items.get_mut(&key).ok_or(libc::ENOENT)?;
            if item.events & EPOLLEXCLUSIVE != 0 {
                return Err(libc::EINVAL);
            }
            item.events = events;
            item.data = data;
            item.id
        };
        self.link_if_ready(file, key, id, events);
        Ok(())
    }

    /// EPOLL_CTL_DEL.
    pub fn delete(&self, file: &Arc<OpenFile>, fd: i32) -> Result<(), Errno> {
        let key = key_of(file, fd);
        let _mtx = lock(&self.inner.mtx);
        // Dropped after the state lock: unregistering takes the file queue's lock.
        let item = self.inner.state().items.remove(&key);
        item.map(drop).ok_or(libc::ENOENT)
    }

    /// kcmp's KCMP_EPOLL_TFD: the file of the `toff`-th item (counting from 0) registered
    /// under descriptor `tfd`, in Linux's order (its red-black tree sorts items by file,
    /// then descriptor). None when there is no such item, or its file is gone.
    pub fn target(&self, tfd: i32, toff: u64) -> Option<Arc<OpenFile>> {
        let st = self.inner.state();
        let mut keys: Vec<Key> = st.items.keys().filter(|k| k.1 == tfd).copied().collect();
        keys.sort_unstable();
        let key = keys.get(usize::try_from(toff).ok()?)?;
        st.items.get(key)?.file.upgrade()
    }

    /// After ADD or MOD: an item ready now goes on the ready list at once.
    fn link_if_ready(&self, file: &Arc<OpenFile>, key: Key, id: u64, events: u32) {
        if file.readiness(events & !PRIVATE_BITS) & events != 0 && self.inner.link(key, id, 0) {
            self.inner.queue.notify(POLLIN | POLLRDNORM);
        }
    }

    /// Whether adding the instance `target` to this one would make a loop or nest deeper
    /// than [`MAX_NESTS`] (ELOOP). Call with [`Epoll::nesting_lock`] held.
    pub fn would_loop(&self, target: &Epoll) -> bool {
        fn bad(ep: &Inner, into: &Inner, depth: usize) -> bool {
            if depth > MAX_NESTS {
                return true;
            }
            // Collect first: no lock is held while descending.
            let children: Vec<Arc<OpenFile>> = ep
                .state()
                .items
                .values()
                .filter_map(|i| i.file.upgrade())
                .collect();
            children
                .iter()
                .any(|f| match f.special_desc().and_then(|d| d.as_epoll()) {
                    Some(child) if std::ptr::eq(&*child.inner, into) => true,
                    Some(child) => bad(&child.inner, into, depth + 1),
                    None => false,
                })
        }
        std::ptr::eq(&*target.inner, &*self.inner) || bad(&target.inner, &self.inner, 1)
    }

    /// Held while checking for loops and adding an instance to an instance.
    pub fn nesting_lock() -> MutexGuard<'static, ()> {
        lock(&NESTING)
    }

    /// Whether any item is on the ready list (maybe not really ready: a scan decides).
    pub fn has_ready(&self) -> bool {
        !self.inner.state().ready.is_empty()
    }

    /// epoll_wait's core: reports up to `max` ready items through `sink(events, data)`,
    /// which returns false when it can't take one (EFAULT): that item stays ready and the
    /// scan stops. Returns how many were taken.
    pub fn send_events(&self, max: usize, sink: &mut dyn FnMut(u32, u64) -> bool) -> usize {
        self.scan(ScanMode::Report(max), sink)
    }

    fn scan(&self, mode: ScanMode, sink: &mut dyn FnMut(u32, u64) -> bool) -> usize {
        if let ScanMode::Report(_) = mode {
            // Edges that happened on host files must be linked before the scan looks, or
            // they arrive after it and count twice (see `host::flush`).
            crate::host::flush();
        }
        let inner = &*self.inner;
        let _mtx = lock(&inner.mtx);
        let mut tx = {
            let mut st = inner.state();
            if st.ready.is_empty() {
                return 0;
            }
            st.scanning = true;
            std::mem::take(&mut st.ready)
        };
        let mut reported = 0;
        while let Some((key, id)) = tx.pop_front() {
            if let ScanMode::Report(max) = mode {
                if reported >= max {
                    tx.push_front((key, id));
                    break;
                }
            }
            let (file, events, data) = {
                let mut st = inner.state();
                match st.items.get_mut(&key) {
                    Some(i) if i.id == id && i.linked => {
                        i.linked = false;
                        (i.file.upgrade(), i.events, i.data)
                    }
                    _ => continue,
                }
            };
            let Some(file) = file else {
                // The file was closed for good: Linux drops its items then.
                let gone = inner.state().items.remove(&key);
                drop(gone);
                continue;
            };
            let revents = file.readiness(events & !PRIVATE_BITS) & events & !PRIVATE_BITS;
            // Dropped without the state lock: it may be the last reference, whose release
            // notifies queues that lead back to `link`.
            drop(file);
            if revents == 0 {
                continue;
            }
            match mode {
                ScanMode::Peek => {
                    if let Some(i) = inner.state().items.get_mut(&key).filter(|i| i.id == id) {
                        i.linked = true;
                        tx.push_front((key, id));
                    }
                    reported = 1;
                    break;
                }
                ScanMode::Report(_) => {
                    if !sink(revents, data) {
                        if let Some(i) = inner.state().items.get_mut(&key).filter(|i| i.id == id) {
                            i.linked = true;
                            tx.push_front((key, id));
                        }
                        break;
                    }
                    reported += 1;
                    let mut st = inner.state();
                    let st = &mut *st;
                    if let Some(i) = st.items.get_mut(&key).filter(|i| i.id == id) {
                        if i.events & EPOLLONESHOT != 0 {
                            i.events &= PRIVATE_BITS;
                        } else if i.events & EPOLLET == 0 && !i.linked {
                            // Level-triggered: stays ready, behind the others.
                            i.linked = true;
                            st.ready.push_back((key, id));
                        }
                    }
                }
            }
        }
        let more = {
            let mut st = inner.state();
            let st = &mut *st;
            st.scanning = false;
            // Notified during the scan: back on the list, ahead of the level-triggered
            // re-adds; then what the scan didn't reach, at the very front (as Linux).
            for (key, id) in std::mem::take(&mut st.overflow) {
                if let Some(i) = st.items.get_mut(&key).filter(|i| i.id == id) {
                    i.in_overflow = false;
                    if !i.linked {
                        i.linked = true;
                        st.ready.push_front((key, id));
                    }
                }
            }
            for entry in tx.into_iter().rev() {
                st.ready.push_front(entry);
            }
            !st.ready.is_empty()
        };
        if more && matches!(mode, ScanMode::Report(_)) {
            // Others waiting on this instance may take what is left.
            inner.queue.notify(POLLIN | POLLRDNORM);
        }
        reported
    }

    /// How many items are watched (for tests and fdinfo).
    pub fn len(&self) -> usize {
        self.inner.state().items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl FileDescription for Epoll {
    fn read(&self, _: &mut [u8]) -> Result<usize, Errno> {
        Err(libc::EINVAL)
    }

    fn write(&self, _: &[u8]) -> Result<usize, Errno> {
        Err(libc::EINVAL)
    }

    fn seek(&self, _: i64, _: i32) -> Result<i64, Errno> {
        // noop_llseek, as Linux's eventpoll_fops.
        Ok(0)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(crate::eventfd::anon_inode_stat(self.inner.ino))
    }

    fn may_block(&self) -> bool {
        // Reads fail at once; epoll_wait blocks, but it is a call of its own.
        false
    }

    fn readiness(&self, mask: u32) -> u32 {
        // Readable when some item on the ready list really has events (Linux polls them).
        if self.scan(ScanMode::Peek, &mut |_, _| true) > 0 {
            (POLLIN | POLLRDNORM) & mask
        } else {
            0
        }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.inner.queue)
    }

    fn as_epoll(&self) -> Option<&Epoll> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipe::new_pipe;
    use crate::waiter::{POLLHUP, POLLOUT};

    fn special(desc: Arc<dyn FileDescription>, flags: i32) -> Arc<OpenFile> {
        OpenFile::special(None, None, desc, flags as u32)
    }

    fn collect(ep: &Epoll, max: usize) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        ep.send_events(max, &mut |e, d| {
            out.push((e, d));
            true
        });
        out
    }

    #[test]
    fn level_edge_and_oneshot() {
        let (r, w) = new_pipe();
        let rf = special(r, libc::O_RDONLY);
        let wf = special(w.clone(), libc::O_WRONLY);
        let ep = Epoll::new();
        ep.add(&rf, 3, POLLIN, 1).unwrap();
        assert_eq!(ep.add(&rf, 3, POLLIN, 1), Err(libc::EEXIST));
        assert!(collect(&ep, 8).is_empty());
        wf.write(b"x").unwrap();
        assert_eq!(collect(&ep, 8), vec![(POLLIN, 1)]);
        assert_eq!(collect(&ep, 8), vec![(POLLIN, 1)], "level-triggered stays");
        ep.modify(&rf, 3, POLLIN | EPOLLET, 2).unwrap();
        assert_eq!(collect(&ep, 8), vec![(POLLIN, 2)]);
        assert!(collect(&ep, 8).is_empty(), "edge-triggered reports once");
        wf.write(b"y").unwrap();
        assert_eq!(
            collect(&ep, 8),
            vec![(POLLIN, 2)],
            "a new write is a new edge"
        );
        ep.modify(&rf, 3, POLLIN | EPOLLONESHOT, 3).unwrap();
        assert_eq!(collect(&ep, 8), vec![(POLLIN, 3)]);
        wf.write(b"z").unwrap();
        assert!(collect(&ep, 8).is_empty(), "oneshot is disabled");
        ep.modify(&rf, 3, POLLIN, 4).unwrap();
        assert_eq!(collect(&ep, 8), vec![(POLLIN, 4)]);
        drop(wf);
        drop(w);
        assert_eq!(collect(&ep, 8), vec![(POLLIN | POLLHUP, 4)]);
        ep.delete(&rf, 3).unwrap();
        assert_eq!(ep.delete(&rf, 3), Err(libc::ENOENT));
        assert!(collect(&ep, 8).is_empty());
    }

    #[test]
    fn a_late_host_notifier_never_doubles_an_edge() {
        let (ours, peer) = crate::host::tests::host_socketpair();
        let file = special(Arc::new(ours), libc::O_RDWR);
        let send = |b: &[u8]| {
            // SAFETY: writes from a valid buffer to a descriptor this test owns.
            let n = unsafe {
                libc::write(
                    std::os::fd::AsRawFd::as_raw_fd(&peer),
                    b.as_ptr().cast(),
                    b.len(),
                )
            };
            assert_eq!(n, b.len() as isize);
        };
        let ep = Epoll::new();
        let stall = crate::host::tests::stall();
        // Writable at once: ADD links it, and the host queues an output edge for the new
        // registration that the stalled notifier doesn't deliver.
        ep.add(&file, 3, POLLOUT | EPOLLET, 1).unwrap();
        assert_eq!(collect(&ep, 8), vec![(POLLOUT, 1)]);
        ep.modify(&file, 3, POLLIN | EPOLLET, 2).unwrap();
        send(b"x");
        assert_eq!(collect(&ep, 8), vec![(POLLIN, 2)], "the arrival is an edge");
        assert!(collect(&ep, 8).is_empty(), "one arrival, one edge");
        drop(stall);
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(
            collect(&ep, 8).is_empty(),
            "nothing left for the notifier to add"
        );
        send(b"y");
        assert_eq!(
            collect(&ep, 8),
            vec![(POLLIN, 2)],
            "a new arrival, a new edge"
        );
    }

    #[test]
    fn round_robin_and_two_fds_for_one_file() {
        let ep = Epoll::new();
        let mut keep = Vec::new();
        for i in 0..3 {
            let (r, w) = new_pipe();
            let rf = special(r, libc::O_RDONLY);
            w.write(b"x").unwrap();
            ep.add(&rf, i, POLLIN, i as u64).unwrap();
            keep.push((rf, w));
        }
        assert_eq!(collect(&ep, 2), vec![(POLLIN, 0), (POLLIN, 1)]);
        assert_eq!(collect(&ep, 2), vec![(POLLIN, 2), (POLLIN, 0)]);
        // The same file under another fd is another item.
        ep.add(&keep[0].0, 10, POLLIN, 10).unwrap();
        assert_eq!(collect(&ep, 8).len(), 4);
    }

    #[test]
    fn closed_files_leave_and_instances_nest() {
        let (r, w) = new_pipe();
        let rf = special(r, libc::O_RDONLY);
        let inner = Epoll::new();
        let inner_file = special(inner.clone(), libc::O_RDWR);
        let outer = Epoll::new();
        let outer_file = special(outer.clone(), libc::O_RDWR);
        inner.add(&rf, 3, POLLIN, 7).unwrap();
        assert!(!outer.would_loop(&inner));
        outer.add(&inner_file, 4, POLLIN, 8).unwrap();
        assert!(inner.would_loop(&outer), "outer contains inner");
        assert!(outer.would_loop(&outer));
        assert_eq!(outer_file.readiness(POLLIN), 0);
        w.write(b"x").unwrap();
        assert_eq!(outer_file.readiness(POLLIN | POLLOUT), POLLIN);
        assert_eq!(collect(&outer, 8), vec![(POLLIN, 8)]);
        drop(rf);
        assert_eq!(collect(&inner, 8), vec![]);
        assert!(inner.is_empty(), "the item went with its file");
    }
}
