//! Linux's `i_writecount`: a regular file open for writing can't be executed, and a file a
//! process runs can't be opened for writing or truncated (ETXTBSY both ways). Files are
//! known by (st_dev, st_ino), which stay the same for a file's life (across copy-up too).
//!
//! A count above zero is that many writers; below zero, that many running images.
//!
//! Read-only openers are counted too (Linux's `i_readcount`): file leases need both counts
//! (`crate::lease`).

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use super::inode::Inode;
use crate::Errno;

type Key = (u64, u64);

static COUNTS: Mutex<Option<HashMap<Key, i64>>> = Mutex::new(None);
static READERS: Mutex<Option<HashMap<Key, i64>>> = Mutex::new(None);

fn counts() -> MutexGuard<'static, Option<HashMap<Key, i64>>> {
    COUNTS.lock().unwrap_or_else(|e| e.into_inner())
}

fn readers() -> MutexGuard<'static, Option<HashMap<Key, i64>>> {
    READERS.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn key(inode: &dyn Inode) -> Result<Key, Errno> {
    let st = inode.stat()?;
    Ok((st.dev, st.ino))
}

/// Adds `delta` to the count of `key`, if `allowed` by the count as it is.
fn change(key: Key, delta: i64, allowed: impl Fn(i64) -> bool) -> Result<(), Errno> {
    let mut guard = counts();
    let map = guard.get_or_insert_with(HashMap::new);
    let count = map.get(&key).copied().unwrap_or(0);
    if !allowed(count) {
        return Err(libc::ETXTBSY);
    }
    if count + delta == 0 {
        map.remove(&key);
    } else {
        map.insert(key, count + delta);
    }
    Ok(())
}

/// The (readers, writers) counts of `key`: read-only open descriptions, and writers (or,
/// below zero, running images).
pub(crate) fn open_counts(key: Key) -> (i64, i64) {
    let r = readers().as_ref().and_then(|m| m.get(&key).copied());
    let w = counts().as_ref().and_then(|m| m.get(&key).copied());
    (r.unwrap_or(0), w.unwrap_or(0))
}

fn change_readers(key: Key, delta: i64) {
    let mut guard = readers();
    let map = guard.get_or_insert_with(HashMap::new);
    let count = map.get(&key).copied().unwrap_or(0) + delta;
    if count == 0 {
        map.remove(&key);
    } else {
        map.insert(key, count);
    }
}

/// A read-only open description of a regular file, until dropped.
pub struct ReadAccess(Key);

/// Counts a read-only opener of `inode`.
pub fn get_read(inode: &dyn Inode) -> Result<ReadAccess, Errno> {
    let k = key(inode)?;
    change_readers(k, 1);
    Ok(ReadAccess(k))
}

impl Drop for ReadAccess {
    fn drop(&mut self) {
        change_readers(self.0, -1);
    }
}

/// A writer of a file (an open file description with write access), until dropped.
pub struct WriteAccess(Key);

/// A running image of a file (a process's executable), until dropped; cloned by fork.
pub struct ExecAccess(Key);

/// Write access to `inode`: ETXTBSY while a process runs it.
pub fn get_write(inode: &dyn Inode) -> Result<WriteAccess, Errno> {
    let k = key(inode)?;
    change(k, 1, |c| c >= 0)?;
    Ok(WriteAccess(k))
}

/// Whether `inode` may be changed by path (truncate): ETXTBSY while a process runs it.
pub fn check_write(inode: &dyn Inode) -> Result<(), Errno> {
    let k = key(inode)?;
    change(k, 0, |c| c >= 0)
}

/// Marks `inode` as run by a process: ETXTBSY while it is open for writing.
pub fn deny_write(inode: &dyn Inode) -> Result<ExecAccess, Errno> {
    let k = key(inode)?;
    change(k, -1, |c| c <= 0)?;
    Ok(ExecAccess(k))
}

impl Drop for WriteAccess {
    fn drop(&mut self) {
        let _ = change(self.0, -1, |_| true);
    }
}

impl Drop for ExecAccess {
    fn drop(&mut self) {
        let _ = change(self.0, 1, |_| true);
    }
}

impl Clone for ExecAccess {
    fn clone(&self) -> Self {
        let _ = change(self.0, -1, |_| true);
        ExecAccess(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writers_and_images_exclude_each_other() {
        let k = (u64::MAX, 7);
        change(k, 1, |c| c >= 0).unwrap();
        assert_eq!(change(k, -1, |c| c <= 0), Err(libc::ETXTBSY));
        let w = WriteAccess(k);
        drop(w);
        let e = {
            change(k, -1, |c| c <= 0).unwrap();
            ExecAccess(k)
        };
        let e2 = e.clone();
        assert_eq!(change(k, 1, |c| c >= 0), Err(libc::ETXTBSY));
        drop(e);
        assert_eq!(change(k, 1, |c| c >= 0), Err(libc::ETXTBSY));
        drop(e2);
        assert_eq!(change(k, 0, |c| c >= 0), Ok(()));
        assert!(counts().as_ref().unwrap().get(&k).is_none());
    }
}
