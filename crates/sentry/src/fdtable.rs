//! The file descriptor table of a process.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use fs::lock::LockOwner;
use fs::vfs::OpenFile;

use crate::errno::Errno;

/// One descriptor: an open file description and the close-on-exec flag.
#[derive(Clone)]
pub struct FdEntry {
    pub file: Arc<OpenFile>,
    pub cloexec: bool,
}

/// Which descriptors are in use, for finding the lowest free one quickly with many open
/// (Linux's open_fds and full_fds_bits): one bit per descriptor, and one bit per word of
/// those telling that the word is full. Finding a free descriptor reads at most one summary
/// word per 4096 descriptors.
#[derive(Clone, Default)]
struct FdBitmap {
    words: Vec<u64>,
    full: Vec<u64>,
}

impl FdBitmap {
    fn set(&mut self, fd: i32, used: bool) {
        let (w, b) = (fd as usize / 64, fd as usize % 64);
        if w >= self.words.len() {
            if !used {
                return;
            }
            self.words.resize(w + 1, 0);
            self.full.resize(w / 64 + 1, 0);
        }
        if used {
            self.words[w] |= 1 << b;
        } else {
            self.words[w] &= !(1 << b);
        }
        let (sw, sb) = (w / 64, w % 64);
        if self.words[w] == u64::MAX {
            self.full[sw] |= 1 << sb;
        } else {
            self.full[sw] &= !(1 << sb);
        }
    }

    /// The lowest descriptor at or above `min` not in use.
    fn lowest_free(&self, min: i32) -> i32 {
        let min = min.max(0) as usize;
        let mut w = min / 64;
        if w >= self.words.len() {
            return min as i32;
        }
        let word = self.words[w] | ((1u64 << (min % 64)) - 1);
        if word != u64::MAX {
            return (w * 64 + word.trailing_ones() as usize) as i32;
        }
        w += 1;
        // The first word at or after w that isn't full, by the summary.
        let mut sw = w / 64;
        while sw < self.full.len() {
            let below = if sw == w / 64 {
                (1u64 << (w % 64)) - 1
            } else {
                0
            };
            let summary = self.full[sw] | below;
            if summary != u64::MAX {
                let word_index = sw * 64 + summary.trailing_ones() as usize;
                let word = self.words.get(word_index).copied().unwrap_or(0);
                return (word_index * 64 + word.trailing_ones() as usize) as i32;
            }
            sw += 1;
        }
        (self.full.len() * 64 * 64) as i32
    }
}

/// The descriptors, in order, and the bitmap of those in use, kept in step.
#[derive(Clone, Default)]
struct Entries {
    map: BTreeMap<i32, FdEntry>,
    used: FdBitmap,
}

impl Entries {
    fn insert(&mut self, fd: i32, entry: FdEntry) -> Option<FdEntry> {
        self.used.set(fd, true);
        self.map.insert(fd, entry)
    }

    fn remove(&mut self, fd: &i32) -> Option<FdEntry> {
        let old = self.map.remove(fd);
        if old.is_some() {
            self.used.set(*fd, false);
        }
        old
    }

    fn retain(&mut self, mut keep: impl FnMut(&i32, &mut FdEntry) -> bool) {
        let used = &mut self.used;
        self.map.retain(|fd, e| {
            let k = keep(fd, e);
            if !k {
                used.set(*fd, false);
            }
            k
        });
    }

    fn get_mut(&mut self, fd: &i32) -> Option<&mut FdEntry> {
        self.map.get_mut(fd)
    }
}

impl std::ops::Deref for Entries {
    type Target = BTreeMap<i32, FdEntry>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

/// Maps descriptor numbers to open file descriptions. Internally locked, so that it can be
/// shared (threads with CLONE_FILES, /proc/PID/fd) and read while a system call runs.
///
/// The table is also the owner of POSIX record locks, as Linux's `files_struct` is: every
/// descriptor that goes away (close, close_range, replaced by dup2, close-on-exec, the table
/// dropped) releases the table's record locks on its file.
pub struct FdTable {
    entries: Mutex<Entries>,
    /// This table's identity as a lock owner: unique for the sandbox's life, unlike an
    /// address, so a new table never inherits a dead one's locks.
    lock_owner: u64,
    /// How many live processes use the table (clone with CLONE_FILES shares it between
    /// processes), so that execve can tell whether it must take a copy of its own.
    processes: std::sync::atomic::AtomicUsize,
}

impl Default for FdTable {
    fn default() -> Self {
        static NEXT_LOCK_OWNER: AtomicU64 = AtomicU64::new(1);
        FdTable {
            entries: Mutex::default(),
            lock_owner: NEXT_LOCK_OWNER.fetch_add(1, Ordering::Relaxed),
            processes: std::sync::atomic::AtomicUsize::new(1),
        }
    }
}

impl Drop for FdTable {
    fn drop(&mut self) {
        fs::lock::release_owner(self.lock_owner());
    }
}

/// A guest-supplied descriptor number. Linux takes descriptors as 32-bit ints: the upper
/// half of the register is ignored, and a negative number is not open.
fn fd_number(fd: u64) -> Result<i32, Errno> {
    let fd = fd as u32 as i32;
    if fd < 0 {
        return Err(Errno::EBADF);
    }
    Ok(fd)
}

impl FdTable {
    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The owner of the POSIX record locks taken through this table.
    pub fn lock_owner(&self) -> LockOwner {
        LockOwner::Process(self.lock_owner)
    }

    /// A descriptor of `file` went away: the table's record locks on the file go too.
    fn closed(&self, file: &OpenFile) {
        fs::lock::file_closed(file, self.lock_owner());
        crate::ipc::mqueue::file_closed(file, crate::procfs::current_pid());
    }

    /// Installs `file` at `fd`, replacing (and returning) what was there.
    pub fn install(&self, fd: i32, file: Arc<OpenFile>, cloexec: bool) -> Option<FdEntry> {
        let old = self.lock().insert(fd, FdEntry { file, cloexec });
        if let Some(old) = &old {
            self.closed(&old.file);
        }
        old
    }

    /// The lowest descriptor at or above `min` not in use.
    pub fn lowest_free(&self, min: i32) -> i32 {
        self.lock().used.lowest_free(min)
    }

    /// Installs `file` at the lowest free descriptor at or above `min`, below `limit`.
    pub fn alloc(
        &self,
        min: i32,
        file: Arc<OpenFile>,
        cloexec: bool,
        limit: u64,
    ) -> Result<i32, Errno> {
        let mut entries = self.lock();
        let fd = entries.used.lowest_free(min);
        if fd as u64 >= limit {
            return Err(Errno::EMFILE);
        }
        entries.insert(fd, FdEntry { file, cloexec });
        Ok(fd)
    }

    /// The file at `fd`, or EBADF.
    pub fn get(&self, fd: u64) -> Result<Arc<OpenFile>, Errno> {
        self.entry(fd).map(|e| e.file)
    }

    pub fn entry(&self, fd: u64) -> Result<FdEntry, Errno> {
        self.lock()
            .get(&fd_number(fd)?)
            .cloned()
            .ok_or(Errno::EBADF)
    }

    pub fn set_cloexec(&self, fd: u64, cloexec: bool) -> Result<(), Errno> {
        let fd = fd_number(fd)?;
        self.lock()
            .get_mut(&fd)
            .map(|e| e.cloexec = cloexec)
            .ok_or(Errno::EBADF)
    }

    /// Removes `fd`.
    pub fn remove(&self, fd: u64) -> Result<FdEntry, Errno> {
        let entry = self.lock().remove(&fd_number(fd)?).ok_or(Errno::EBADF)?;
        self.closed(&entry.file);
        Ok(entry)
    }

    /// close_range: removes (or marks close-on-exec) every fd in `[first, last]`.
    pub fn close_range(&self, first: u32, last: u32, cloexec_only: bool) -> Vec<FdEntry> {
        let first = first.min(i32::MAX as u32) as i32;
        let last = last.min(i32::MAX as u32) as i32;
        let mut entries = self.lock();
        let fds: Vec<i32> = entries.range(first..=last).map(|(&fd, _)| fd).collect();
        let mut closed = Vec::new();
        for fd in fds {
            if cloexec_only {
                if let Some(e) = entries.get_mut(&fd) {
                    e.cloexec = true;
                }
            } else if let Some(e) = entries.remove(&fd) {
                closed.push(e);
            }
        }
        drop(entries);
        for e in &closed {
            self.closed(&e.file);
        }
        closed
    }

    /// A table with the same descriptors (fork without CLONE_FILES). It is a new lock
    /// owner: POSIX record locks belong to the parent only, as on Linux.
    pub fn copy_of(other: &FdTable) -> FdTable {
        let table = FdTable::default();
        *table.lock() = other.lock().clone();
        table
    }

    /// Another process uses the table (clone with CLONE_FILES, not CLONE_THREAD).
    pub fn add_process(&self) {
        self.processes.fetch_add(1, Ordering::Relaxed);
    }

    /// A process using the table ended or took a copy of its own.
    /// A process using the table ended. The last one closes every descriptor at once, as
    /// Linux's exit_files, so that a zombie holds no file open: readers of its pipes see
    /// EOF, and a program it had open for writing can run.
    pub fn remove_process(&self) {
        let before = self
            .processes
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        if before == Ok(1) {
            self.close_range(0, u32::MAX, false);
        }
    }

    /// Whether another live process uses the table too.
    pub fn shared_with_another_process(&self) -> bool {
        self.processes.load(Ordering::Relaxed) > 1
    }

    /// Closes every close-on-exec descriptor (execve).
    pub fn close_on_exec(&self) {
        let mut closed = Vec::new();
        self.lock().retain(|_, e| {
            if e.cloexec {
                closed.push(e.file.clone());
            }
            !e.cloexec
        });
        for file in &closed {
            self.closed(file);
        }
    }

    /// A snapshot of every open descriptor, in order (for /proc/PID/fd).
    pub fn snapshot(&self) -> Vec<(i32, FdEntry)> {
        self.lock().iter().map(|(&fd, e)| (fd, e.clone())).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::FdBitmap;
    use std::collections::BTreeSet;

    fn naive(set: &BTreeSet<i32>, min: i32) -> i32 {
        let mut fd = min;
        while set.contains(&fd) {
            fd += 1;
        }
        fd
    }

    #[test]
    fn bitmap_finds_the_lowest_free_descriptor() {
        let mut bits = FdBitmap::default();
        let mut set = BTreeSet::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for round in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Dense at the bottom, sparse above, so that full words and summaries occur.
            let fd = if round % 3 == 0 {
                (x % 300_000) as i32
            } else {
                (x % 9000) as i32
            };
            let used = !x.is_multiple_of(5);
            bits.set(fd, used);
            if used {
                set.insert(fd);
            } else {
                set.remove(&fd);
            }
            let min = ((x >> 20) % 10_000) as i32;
            assert_eq!(bits.lowest_free(min), naive(&set, min), "min {min}");
            assert_eq!(bits.lowest_free(0), naive(&set, 0));
        }
        for fd in 0..300_000 {
            bits.set(fd, true);
        }
        assert_eq!(bits.lowest_free(0), 300_000);
        assert_eq!(bits.lowest_free(5_000_000), 5_000_000);
        bits.set(4097, false);
        assert_eq!(bits.lowest_free(3), 4097);
    }
}
