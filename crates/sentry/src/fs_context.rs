//! A task's view of the file system: the mount namespace, its root and working directory.

use std::sync::{Arc, Mutex, MutexGuard};

use fs::vfs::{Location, MountNamespace};

/// Linux's `fs_struct` plus the namespace. Internally locked so that it can be shared
/// (CLONE_FS) and read by /proc while a system call runs.
pub struct FsContext {
    pub ns: Arc<MountNamespace>,
    root: Mutex<Location>,
    cwd: Mutex<Location>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FsContext {
    pub fn new(ns: Arc<MountNamespace>, root: Location, cwd: Location) -> Self {
        FsContext {
            ns,
            root: Mutex::new(root),
            cwd: Mutex::new(cwd),
        }
    }

    pub fn root(&self) -> Location {
        lock(&self.root).clone()
    }

    pub fn cwd(&self) -> Location {
        lock(&self.cwd).clone()
    }

    pub fn set_cwd(&self, cwd: Location) {
        *lock(&self.cwd) = cwd;
    }
}
