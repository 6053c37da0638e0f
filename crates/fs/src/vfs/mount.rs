//! Mounts and the mount namespace.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::dentry::Dentry;
use super::inode::Inode;
use crate::Errno;

/// A filesystem attached to the tree.
pub struct Mount {
    pub id: u64,
    pub root: Arc<Dentry>,
    /// Where it is attached: the parent mount and the dentry covered. None for the root mount.
    pub parent: Option<(Arc<Mount>, Arc<Dentry>)>,
    pub read_only: bool,
    /// Filesystem type name, as /proc/mounts shows it ("tmpfs", "proc", ...).
    pub fs_type: String,
    /// Mount source, as /proc/mounts shows it.
    pub source: String,
}

/// A position in the tree: a dentry seen through a mount.
#[derive(Clone)]
pub struct Location {
    pub mount: Arc<Mount>,
    pub dentry: Arc<Dentry>,
}

impl Location {
    pub fn inode(&self) -> &Arc<dyn Inode> {
        self.dentry.inode()
    }

    /// Same mount and same dentry.
    pub fn same(&self, other: &Location) -> bool {
        Arc::ptr_eq(&self.mount, &other.mount) && Arc::ptr_eq(&self.dentry, &other.dentry)
    }

    /// Whether this is the root of its mount.
    pub fn is_mount_root(&self) -> bool {
        Arc::ptr_eq(&self.dentry, &self.mount.root)
    }
}

/// What /proc/mounts prints for a mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub source: String,
    pub path: Vec<u8>,
    pub fs_type: String,
    pub read_only: bool,
}

fn key(mount: &Arc<Mount>, dentry: &Arc<Dentry>) -> (u64, usize) {
    (mount.id, Arc::as_ptr(dentry) as *const u8 as usize)
}

/// The tree of mounts every task of a sandbox sees.
pub struct MountNamespace {
    root: Arc<Mount>,
    /// Mounts by the (parent mount, covered dentry) they are attached at.
    children: Mutex<HashMap<(u64, usize), Arc<Mount>>>,
    /// Mounts in the order they were made, for /proc/mounts.
    order: Mutex<Vec<Arc<Mount>>>,
    next_id: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MountNamespace {
    /// A namespace whose root is `root` of a filesystem of type `fs_type`.
    pub fn new(root: Arc<dyn Inode>, fs_type: &str, source: &str, read_only: bool) -> Self {
        let root = Arc::new(Mount {
            id: 1,
            root: Dentry::new_root(root),
            parent: None,
            read_only,
            fs_type: fs_type.into(),
            source: source.into(),
        });
        MountNamespace {
            order: Mutex::new(vec![root.clone()]),
            root,
            children: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(2),
        }
    }

    /// The root of the namespace.
    pub fn root(&self) -> Location {
        Location {
            mount: self.root.clone(),
            dentry: self.root.root.clone(),
        }
    }

    /// Mounts a filesystem whose root is `fs_root` over the directory `at`, or a single
    /// non-directory over a non-directory (a file bind mount, as runc's /dev/null over a
    /// masked file).
    pub fn mount(
        &self,
        at: &Location,
        fs_root: Arc<dyn Inode>,
        fs_type: &str,
        source: &str,
        read_only: bool,
    ) -> Result<Location, Errno> {
        use super::inode::FileType::Directory;
        let (at_dir, root_dir) = (
            at.inode().file_type() == Directory,
            fs_root.file_type() == Directory,
        );
        if at_dir != root_dir {
            return Err(if at_dir { libc::EISDIR } else { libc::ENOTDIR });
        }
        // Found again by name even in a directory that doesn't cache its children.
        at.dentry.pin();
        let mount = Arc::new(Mount {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            root: Dentry::new_root(fs_root),
            parent: Some((at.mount.clone(), at.dentry.clone())),
            read_only,
            fs_type: fs_type.into(),
            source: source.into(),
        });
        lock(&self.children).insert(key(&at.mount, &at.dentry), mount.clone());
        lock(&self.order).push(mount.clone());
        Ok(Location {
            dentry: mount.root.clone(),
            mount,
        })
    }

    /// The mount attached at `loc`, if any (the topmost when stacked).
    pub fn mounted_at(&self, loc: &Location) -> Option<Location> {
        let children = lock(&self.children);
        let mut found = children.get(&key(&loc.mount, &loc.dentry)).cloned()?;
        while let Some(next) = children.get(&key(&found, &found.root)) {
            found = next.clone();
        }
        Some(Location {
            dentry: found.root.clone(),
            mount: found,
        })
    }

    /// The absolute path of `loc` as seen from `root` (what getcwd and /proc show). A location
    /// outside `root` is shown from the namespace root.
    pub fn path(&self, loc: &Location, root: &Location) -> Vec<u8> {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        let mut cur = loc.clone();
        loop {
            if cur.same(root) {
                break;
            }
            if cur.is_mount_root() {
                match &cur.mount.parent {
                    Some((m, d)) => {
                        cur = Location {
                            mount: m.clone(),
                            dentry: d.clone(),
                        };
                        continue;
                    }
                    None => break,
                }
            }
            match cur.dentry.parent() {
                Some(p) => {
                    parts.push(cur.dentry.name());
                    cur = Location {
                        mount: cur.mount.clone(),
                        dentry: p,
                    };
                }
                None => break,
            }
        }
        let mut out = Vec::new();
        for p in parts.iter().rev() {
            out.push(b'/');
            out.extend_from_slice(p);
        }
        if out.is_empty() {
            out.push(b'/');
        }
        if loc.dentry.is_dead() && !loc.is_mount_root() {
            out.extend_from_slice(b" (deleted)");
        }
        out
    }

    /// Every mount, as /proc/mounts lists them, with paths seen from `root`.
    /// The root inode of every mount, in mount order.
    pub fn mount_roots(&self) -> Vec<Arc<dyn Inode>> {
        lock(&self.order)
            .iter()
            .map(|m| m.root.inode().clone())
            .collect()
    }

    pub fn mounts(&self, root: &Location) -> Vec<MountInfo> {
        lock(&self.order)
            .iter()
            .map(|m| MountInfo {
                source: m.source.clone(),
                path: self.path(
                    &Location {
                        mount: m.clone(),
                        dentry: m.root.clone(),
                    },
                    root,
                ),
                fs_type: m.fs_type.clone(),
                read_only: m.read_only,
            })
            .collect()
    }
}
