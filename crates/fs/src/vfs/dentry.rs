//! Dentries: the VFS's names for inodes, cached so that a file has one identity (for mounts,
//! `getcwd` and `/proc/self/fd`) however often it is looked up.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::inode::Inode;
use crate::Errno;

/// A name in the tree, pointing at an inode.
pub struct Dentry {
    inode: Arc<dyn Inode>,
    /// Name in the parent and the parent; both change on rename. None for a filesystem root.
    link: Mutex<Option<(Vec<u8>, Arc<Dentry>)>>,
    children: Mutex<HashMap<Vec<u8>, Arc<Dentry>>>,
    /// Set when the name was removed (unlinked, or replaced by a rename).
    dead: AtomicBool,
    /// Something is mounted here: the parent keeps this dentry even if it caches nothing.
    pinned: AtomicBool,
    /// This was the file's last name and something still held it (an open descriptor, a
    /// mapping, a working directory) when it was removed: the file's deletion is reported
    /// (inotify's IN_DELETE_SELF) when the dentry goes, as Linux reports it when the last
    /// reference to the dentry is dropped.
    deletion_pending: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for Dentry {
    fn drop(&mut self) {
        if *self.deletion_pending.get_mut() {
            crate::inotify::deleted(&self.inode);
        }
    }
}

impl Dentry {
    /// The dentry of a filesystem's root.
    pub fn new_root(inode: Arc<dyn Inode>) -> Arc<Dentry> {
        Arc::new(Dentry {
            inode,
            link: Mutex::new(None),
            children: Mutex::new(HashMap::new()),
            dead: AtomicBool::new(false),
            pinned: AtomicBool::new(false),
            deletion_pending: AtomicBool::new(false),
        })
    }

    pub fn inode(&self) -> &Arc<dyn Inode> {
        &self.inode
    }

    /// The parent dentry (None at a filesystem root).
    pub fn parent(&self) -> Option<Arc<Dentry>> {
        lock(&self.link).as_ref().map(|(_, p)| p.clone())
    }

    /// The name in the parent (empty at a filesystem root).
    pub fn name(&self) -> Vec<u8> {
        lock(&self.link)
            .as_ref()
            .map(|(n, _)| n.clone())
            .unwrap_or_default()
    }

    /// Reports the file's deletion when this dentry goes (see `deletion_pending`).
    pub fn defer_deletion_notice(&self) {
        self.deletion_pending.store(true, Ordering::Relaxed);
    }

    /// Marks this dentry as a mount point.
    pub fn pin(&self) {
        self.pinned.store(true, Ordering::Relaxed);
    }

    /// Whether this name was removed from the tree.
    pub fn is_dead(&self) -> bool {
        self.dead.load(Ordering::Relaxed)
    }

    /// The child called `name`, from the cache or the filesystem.
    pub fn child(self: &Arc<Self>, name: &[u8]) -> Result<Arc<Dentry>, Errno> {
        let cache = self.inode.cache_children();
        if let Some(d) = lock(&self.children).get(name) {
            // A mount point stays, even where children aren't cached (/proc/sys made
            // read-only): mounts are found by dentry.
            if cache || d.pinned.load(Ordering::Relaxed) {
                return Ok(d.clone());
            }
        }
        match self.inode.lookup(name) {
            Ok(inode) => Ok(self.insert_child(name, inode)),
            Err(e) => {
                if !self.inode.cache_children() {
                    lock(&self.children).remove(name);
                }
                Err(e)
            }
        }
    }

    /// Records a child the filesystem just created (or found).
    pub fn insert_child(self: &Arc<Self>, name: &[u8], inode: Arc<dyn Inode>) -> Arc<Dentry> {
        let mut children = lock(&self.children);
        if let Some(d) = children.get(name) {
            if Arc::ptr_eq(d.inode(), &inode) {
                return d.clone();
            }
        }
        let d = Arc::new(Dentry {
            inode,
            link: Mutex::new(Some((name.to_vec(), self.clone()))),
            children: Mutex::new(HashMap::new()),
            dead: AtomicBool::new(false),
            pinned: AtomicBool::new(false),
            deletion_pending: AtomicBool::new(false),
        });
        children.insert(name.to_vec(), d.clone());
        d
    }

    /// Forgets a child whose name the filesystem removed.
    pub fn remove_child(&self, name: &[u8]) {
        if let Some(d) = lock(&self.children).remove(name) {
            d.dead.store(true, Ordering::Relaxed);
        }
    }

    /// Forgets every cached child (the filesystem changed behind our back).
    pub fn drop_cached_child(&self, name: &[u8]) {
        lock(&self.children).remove(name);
    }

    /// Moves the cached child `old` of `from` to `new` in `to` after the filesystem renamed it;
    /// a dentry that was at `new` is dead. With `exchange`, the two swap instead.
    pub fn move_child(
        from: &Arc<Dentry>,
        old: &[u8],
        to: &Arc<Dentry>,
        new: &[u8],
        exchange: bool,
    ) {
        let moved = lock(&from.children).remove(old);
        let replaced = lock(&to.children).remove(new);
        if let Some(d) = &moved {
            *lock(&d.link) = Some((new.to_vec(), to.clone()));
            lock(&to.children).insert(new.to_vec(), d.clone());
        }
        if let Some(r) = replaced {
            if exchange {
                *lock(&r.link) = Some((old.to_vec(), from.clone()));
                lock(&from.children).insert(old.to_vec(), r);
            } else {
                r.dead.store(true, Ordering::Relaxed);
            }
        }
    }

    /// Empties the cache of this tree, from here down, so that dentries that only the cache
    /// kept alive go (each child names its parent: without this a tree is a cycle). Called
    /// when the last mount showing the tree goes. Iterative: trees may be deep.
    pub fn prune(&self) {
        let mut stack: Vec<Arc<Dentry>> = std::mem::take(&mut *lock(&self.children))
            .into_values()
            .collect();
        while let Some(d) = stack.pop() {
            stack.extend(std::mem::take(&mut *lock(&d.children)).into_values());
        }
    }

    /// Whether `self` is `other` or lies below it (following parents, within one filesystem).
    pub fn is_descendant_of(self: &Arc<Self>, other: &Arc<Dentry>) -> bool {
        let mut cur = Some(self.clone());
        while let Some(d) = cur {
            if Arc::ptr_eq(&d, other) {
                return true;
            }
            cur = d.parent();
        }
        false
    }
}
