//! Futex wait queues, keyed by (address space, address) for private futexes and by (file,
//! offset) for futexes in shared mappings.
//!
//! The value check and the enqueue happen under the table lock, and a waker takes the same
//! lock, so a wake between a waiter's check and its sleep is never lost (Linux's hash-bucket
//! rule).

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use crate::mm::Mm;

/// Identifies a futex word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// A word only one address space sees there: the address space and the address.
    Private { mm: usize, addr: u64 },
    /// A word in a MAP_SHARED mapping: the mapped file (`fs::vfs::file_identity`) and the
    /// word's offset in it, the same in every process and at every address that maps it.
    Shared { file: usize, offset: u64 },
}

impl Key {
    /// The key of the word at `addr` in `mm`. As Linux's get_futex_key: FUTEX_PRIVATE_FLAG
    /// (`private`) promises that only this address space uses the word; otherwise a word in
    /// a shared file mapping (shared anonymous memory is one too) is keyed by the file page,
    /// so that processes meet whatever address they map it at.
    pub fn of(mm: &Arc<Mm>, addr: u64, private: bool) -> Key {
        if !private {
            let m = mm.lock();
            let shared = m.vma_at(addr).and_then(|v| {
                let f = v.file.as_ref().filter(|f| f.shared)?;
                Some(Key::Shared {
                    file: fs::vfs::file_identity(&f.inode),
                    offset: v.file_offset(addr)?,
                })
            });
            if let Some(k) = shared {
                return k;
            }
        }
        Key::Private {
            mm: Arc::as_ptr(mm) as usize,
            addr,
        }
    }
}

/// One thread's wait, on one futex or (futex_waitv) on several.
struct Sleeper {
    /// The highest index (in the futex_waitv vector; 0 for a single futex) among the
    /// futexes a waker took, once one did.
    woken: Mutex<Option<usize>>,
    cv: Condvar,
}

/// A queue entry: one futex of a sleeper's wait.
struct Waiter {
    bitset: u32,
    index: usize,
    /// The queue it is on, which a requeue changes; read and written under the table lock.
    key: Mutex<Key>,
    sleeper: Arc<Sleeper>,
}

impl Waiter {
    fn key(&self) -> Key {
        *self.key.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the wait: the sleeper wakes (Linux's futex_wake_mark).
    fn wake(&self) {
        let mut woken = self.sleeper.woken.lock().unwrap_or_else(|e| e.into_inner());
        // As Linux's futex_unqueue_multiple: the last woken entry in vector order counts.
        *woken = Some(woken.map_or(self.index, |i| i.max(self.index)));
        self.sleeper.cv.notify_one();
    }
}

#[derive(Default)]
struct Table {
    queues: HashMap<Key, Vec<Arc<Waiter>>>,
}

fn table() -> &'static Mutex<Table> {
    static TABLE: OnceLock<Mutex<Table>> = OnceLock::new();
    TABLE.get_or_init(|| Mutex::new(Table::default()))
}

fn lock() -> MutexGuard<'static, Table> {
    table().lock().unwrap_or_else(|e| e.into_inner())
}

/// How a wait ended.
#[derive(Debug, PartialEq, Eq)]
pub enum WaitResult {
    /// Woken: the index of the futex a waker took (the highest, if several; 0 for a
    /// single futex).
    Woken(usize),
    /// The word didn't hold the expected value (EAGAIN).
    ValueChanged,
    TimedOut,
    /// `interrupted()` said to stop waiting (the thread's group is ending).
    Interrupted,
}

/// How often a waiter checks whether it was interrupted.
const SLICE: std::time::Duration = std::time::Duration::from_millis(50);

/// Waits on `key` if `check()` (reading the word, under the table lock) is true, until woken
/// with a matching bit or `deadline`.
pub fn wait(
    key: Key,
    bitset: u32,
    deadline: Option<Instant>,
    check: impl FnOnce() -> bool,
    interrupted: impl Fn() -> bool,
) -> WaitResult {
    match enqueue(key, bitset, check) {
        Some(queued) => queued.sleep(deadline, interrupted),
        None => WaitResult::ValueChanged,
    }
}

/// A wait queued without sleeping yet: for futex_waitv (queued on several futexes at once,
/// then [`Queued::sleep`]), or for a waiter that can't sleep (the ring poller waiting
/// briefly on a thread's behalf). It is woken like any other, and must end with
/// [`Queued::cancel`] (which `sleep` does).
pub struct Queued {
    entries: Vec<Arc<Waiter>>,
    sleeper: Arc<Sleeper>,
}

/// Queues a wait on `key` if `check()` (reading the word, under the table lock) is true;
/// None when the word didn't hold the expected value.
pub fn enqueue(key: Key, bitset: u32, check: impl FnOnce() -> bool) -> Option<Queued> {
    let mut check = Some(check);
    enqueue_many(&[key], bitset, |_| {
        Ok::<_, ()>(check.take().is_some_and(|c| c()))
    })
    .ok()
    .flatten()
}

/// Queues one wait on every key of `keys` (futex_waitv) if `check(i)` (reading word `i`,
/// under the table lock) is true for each: all of them or none, so no wake can come
/// between the checks. None when a word didn't hold its value; `check`'s error when it
/// failed.
pub fn enqueue_many<E>(
    keys: &[Key],
    bitset: u32,
    mut check: impl FnMut(usize) -> Result<bool, E>,
) -> Result<Option<Queued>, E> {
    let sleeper = Arc::new(Sleeper {
        woken: Mutex::new(None),
        cv: Condvar::new(),
    });
    let mut t = lock();
    for i in 0..keys.len() {
        if !check(i)? {
            return Ok(None);
        }
    }
    let entries = keys
        .iter()
        .enumerate()
        .map(|(index, &key)| {
            let w = Arc::new(Waiter {
                bitset,
                index,
                key: Mutex::new(key),
                sleeper: sleeper.clone(),
            });
            t.queues.entry(key).or_default().push(w.clone());
            w
        })
        .collect();
    Ok(Some(Queued { entries, sleeper }))
}

impl Queued {
    /// The index of the futex a waker took, if one did.
    fn taken(&self) -> Option<usize> {
        *self.sleeper.woken.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a waker took this wait.
    pub fn woken(&self) -> bool {
        self.taken().is_some()
    }

    /// Sleeps until a waker takes the wait, `deadline`, or `interrupted()`; then leaves the
    /// queues.
    pub fn sleep(self, deadline: Option<Instant>, interrupted: impl Fn() -> bool) -> WaitResult {
        // A signal or the group's end notifies the condvar, not just the next slice.
        let notify = fs::waiter::notify_on_wake(&self.sleeper.cv);
        let mut woken = self.sleeper.woken.lock().unwrap_or_else(|e| e.into_inner());
        let mut stopped = false;
        loop {
            if woken.is_some() {
                break;
            }
            if interrupted() {
                stopped = true;
                break;
            }
            let now = Instant::now();
            let slice = match deadline {
                Some(d) if now >= d => break,
                Some(d) => (d - now).min(SLICE),
                None => SLICE,
            };
            woken = self
                .sleeper
                .cv
                .wait_timeout(woken, slice)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(woken);
        drop(notify);
        // Leave every queue, unless a waker took us meanwhile (the wake counts).
        match self.cancel_taken() {
            Some(i) => WaitResult::Woken(i),
            None if stopped => WaitResult::Interrupted,
            None => WaitResult::TimedOut,
        }
    }

    /// Leaves the queues; returns whether a waker took the wait first (the wake counts, and
    /// the wait ends as woken).
    pub fn cancel(self) -> bool {
        self.cancel_taken().is_some()
    }

    fn cancel_taken(self) -> Option<usize> {
        let mut t = lock();
        for w in &self.entries {
            // Where it is now: a requeue may have moved it.
            let key = w.key();
            if let Some(q) = t.queues.get_mut(&key) {
                q.retain(|o| !Arc::ptr_eq(o, w));
                if q.is_empty() {
                    t.queues.remove(&key);
                }
            }
        }
        self.taken()
    }
}

fn wake_locked(t: &mut Table, key: Key, bitset: u32, max: usize) -> usize {
    let Some(q) = t.queues.get_mut(&key) else {
        return 0;
    };
    let mut woken = 0;
    q.retain(|w| {
        if woken < max && w.bitset & bitset != 0 {
            w.wake();
            woken += 1;
            false
        } else {
            true
        }
    });
    if q.is_empty() {
        t.queues.remove(&key);
    }
    woken
}

/// Wakes up to `max` waiters of `key` whose bitset intersects `bitset`.
pub fn wake(key: Key, bitset: u32, max: usize) -> usize {
    wake_locked(&mut lock(), key, bitset, max)
}

/// FUTEX_(CMP_)REQUEUE: wakes up to `max_wake` waiters of `from`, moves up to `max_requeue`
/// others to `to`, if `check()` (under the lock) holds. Returns woken + requeued, or None
/// when the check failed.
pub fn requeue(
    from: Key,
    to: Key,
    max_wake: usize,
    max_requeue: usize,
    check: impl FnOnce() -> bool,
) -> Option<usize> {
    let mut t = lock();
    if !check() {
        return None;
    }
    let woken = wake_locked(&mut t, from, u32::MAX, max_wake);
    let mut moved = Vec::new();
    if let Some(q) = t.queues.get_mut(&from) {
        let n = max_requeue.min(q.len());
        moved = q.drain(..n).collect();
        if q.is_empty() {
            t.queues.remove(&from);
        }
    }
    let count = moved.len();
    for w in &moved {
        *w.key.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }
    if count > 0 {
        t.queues.entry(to).or_default().extend(moved);
    }
    Some(woken + count)
}

/// FUTEX_WAKE_OP: under the lock, applies `op` to the word at `uaddr2` (via `apply`, which
/// returns the old value), wakes `max1` waiters of `k1`, and `max2` of `k2` if the
/// comparison on the old value holds.
pub fn wake_op(
    k1: Key,
    k2: Key,
    max1: usize,
    max2: usize,
    apply: impl FnOnce() -> Option<bool>,
) -> Option<usize> {
    let mut t = lock();
    let cond = apply()?;
    let mut n = wake_locked(&mut t, k1, u32::MAX, max1);
    if cond {
        n += wake_locked(&mut t, k2, u32::MAX, max2);
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn wait_checks_the_value_and_times_out() {
        let k = Key::Private {
            mm: 1,
            addr: 0x1000,
        };
        assert_eq!(
            wait(k, u32::MAX, None, || false, || false),
            WaitResult::ValueChanged
        );
        let soon = Instant::now() + Duration::from_millis(20);
        assert_eq!(
            wait(k, u32::MAX, Some(soon), || true, || false),
            WaitResult::TimedOut
        );
        assert!(Instant::now() >= soon);
        assert_eq!(wake(k, u32::MAX, 1), 0, "a timed-out waiter left the queue");
    }

    #[test]
    fn a_queued_wait_is_woken_or_cancelled() {
        let k = Key::Private {
            mm: 4,
            addr: 0x4000,
        };
        assert!(enqueue(k, u32::MAX, || false).is_none(), "value changed");
        let q = enqueue(k, u32::MAX, || true).unwrap();
        assert!(!q.woken());
        assert_eq!(wake(k, u32::MAX, 1), 1);
        assert!(q.woken());
        assert!(q.cancel(), "woken before the cancel");
        let q = enqueue(k, u32::MAX, || true).unwrap();
        assert!(!q.cancel());
        assert_eq!(wake(k, u32::MAX, 1), 0, "a cancelled wait left the queue");
    }

    #[test]
    fn wake_wakes_a_waiter_and_bitsets_filter() {
        let k = Key::Shared {
            file: 2,
            offset: 0x2000,
        };
        let waiter = std::thread::spawn(move || wait(k, 0b01, None, || true, || false));
        while lock().queues.get(&k).is_none_or(|q| q.is_empty()) {
            std::thread::yield_now();
        }
        assert_eq!(wake(k, 0b10, 1), 0, "bitset mismatch wakes nobody");
        assert_eq!(wake(k, 0b11, 1), 1);
        assert_eq!(waiter.join().unwrap(), WaitResult::Woken(0));
    }

    #[test]
    fn a_requeued_wait_leaves_the_queue_it_was_moved_to() {
        let (from, to) = (
            Key::Private {
                mm: 5,
                addr: 0x5000,
            },
            Key::Private {
                mm: 5,
                addr: 0x5004,
            },
        );
        let q = enqueue(from, u32::MAX, || true).unwrap();
        assert_eq!(requeue(from, to, 0, 1, || true), Some(1));
        assert!(!q.cancel());
        // A timed-out (cancelled) waiter must not stay behind and swallow a wake.
        assert_eq!(wake(to, u32::MAX, 1), 0);
        let soon = Instant::now() + Duration::from_millis(10);
        let q = enqueue(from, u32::MAX, || true).unwrap();
        requeue(from, to, 0, 1, || true);
        assert_eq!(q.sleep(Some(soon), || false), WaitResult::TimedOut);
        assert_eq!(wake(to, u32::MAX, 1), 0);
    }

    #[test]
    fn a_wait_on_several_futexes_is_woken_by_any_and_leaves_all() {
        let keys: Vec<Key> = (0..3)
            .map(|i| Key::Private {
                mm: 6,
                addr: 0x6000 + 4 * i,
            })
            .collect();
        let mut checked = Vec::new();
        let none = enqueue_many(&keys, u32::MAX, |i| {
            checked.push(i);
            Ok::<_, ()>(i != 1)
        });
        assert!(matches!(none, Ok(None)), "the second word differs");
        assert_eq!(
            checked,
            [0, 1],
            "checked in order, up to the first that differs"
        );
        assert_eq!(wake(keys[0], u32::MAX, 1), 0, "nothing queued");
        assert_eq!(
            enqueue_many(&keys, u32::MAX, |_| Err::<bool, _>("fault")).err(),
            Some("fault")
        );
        let waiter_keys = keys.clone();
        let waiter = std::thread::spawn(move || {
            let q = enqueue_many(&waiter_keys, u32::MAX, |_| Ok::<_, ()>(true))
                .unwrap()
                .unwrap();
            q.sleep(None, || false)
        });
        while lock().queues.get(&keys[2]).is_none_or(|q| q.is_empty()) {
            std::thread::yield_now();
        }
        assert_eq!(wake(keys[1], u32::MAX, 1), 1);
        assert_eq!(waiter.join().unwrap(), WaitResult::Woken(1));
        for k in &keys {
            assert_eq!(wake(*k, u32::MAX, 1), 0, "left every queue");
        }
    }

    #[test]
    fn requeue_moves_waiters() {
        let (from, to) = (
            Key::Private {
                mm: 3,
                addr: 0x3000,
            },
            Key::Shared {
                file: 3,
                offset: 0x3000,
            },
        );
        let waiters: Vec<_> = (0..3)
            .map(|_| std::thread::spawn(move || wait(from, u32::MAX, None, || true, || false)))
            .collect();
        while lock().queues.get(&from).map_or(0, |q| q.len()) < 3 {
            std::thread::yield_now();
        }
        assert_eq!(requeue(from, to, 1, 10, || false), None);
        assert_eq!(requeue(from, to, 1, 10, || true), Some(3));
        assert_eq!(wake(to, u32::MAX, 10), 2);
        for w in waiters {
            assert_eq!(w.join().unwrap(), WaitResult::Woken(0));
        }
    }
}
