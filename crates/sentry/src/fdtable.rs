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

/// Maps descriptor numbers to open file descriptions. Internally locked, so that it can be
/// shared (threads with CLONE_FILES, /proc/PID/fd) and read while a system call runs.
///
/// The table is also the owner of POSIX record locks, as Linux's `files_struct` is: every
/// descriptor that goes away (close, close_range, replaced by dup2, close-on-exec, the table
/// dropped) releases the table's record locks on its file.
pub struct FdTable {
    entries: Mutex<BTreeMap<i32, FdEntry>>,
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
    fn lock(&self) -> MutexGuard<'_, BTreeMap<i32, FdEntry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The owner of the POSIX record locks taken through this table.
    pub fn lock_owner(&self) -> LockOwner {
        LockOwner::Process(self.lock_owner)
    }

    /// A descriptor of `file` went away: the table's record locks on the file go too.
    fn closed(&self, file: &OpenFile) {
        fs::lock::file_closed(file, self.lock_owner());
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
        let entries = self.lock();
        let mut fd = min;
        for (&used, _) in entries.range(min..) {
            if used != fd {
                break;
            }
            fd += 1;
        }
        fd
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
        let mut fd = min;
        for (&used, _) in entries.range(min..) {
            if used != fd {
                break;
            }
            fd += 1;
        }
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
