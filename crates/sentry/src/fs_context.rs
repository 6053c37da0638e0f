//! A task's view of the file system: the mount namespace, its root and working directory.

use std::sync::{Arc, Mutex, MutexGuard};

use fs::vfs::{Location, MountNamespace};

/// Linux's `fs_struct` plus the mount namespace (Linux keeps that in the nsproxy; here the
/// three change together on unshare, setns and pivot_root). Internally locked so that it can
/// be shared (CLONE_FS) and read by /proc while a system call runs.
pub struct FsContext {
    ns: Mutex<Arc<MountNamespace>>,
    root: Mutex<Location>,
    cwd: Mutex<Location>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl FsContext {
    pub fn new(ns: Arc<MountNamespace>, root: Location, cwd: Location) -> Self {
        FsContext {
            ns: Mutex::new(ns),
            root: Mutex::new(root),
            cwd: Mutex::new(cwd),
        }
    }

    /// The mount namespace.
    pub fn ns(&self) -> Arc<MountNamespace> {
        lock(&self.ns).clone()
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

    /// chroot.
    pub fn set_root(&self, root: Location) {
        *lock(&self.root) = root;
    }

    /// Moves to another mount namespace (unshare, setns) with a root and working directory
    /// in it.
    pub fn enter(&self, ns: Arc<MountNamespace>, root: Location, cwd: Location) {
        *lock(&self.ns) = ns;
        *lock(&self.root) = root;
        *lock(&self.cwd) = cwd;
    }
}
