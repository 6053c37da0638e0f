//! Mounts and mount namespaces.
//!
//! A [`MountNamespace`] is a tree of [`Mount`]s: each attaches a dentry tree of a filesystem
//! (its root, or a subtree of it for a bind mount) over a dentry of its parent mount.
//! Namespaces are copied (unshare, clone with CLONE_NEWNS): the copy has new mounts over the
//! same dentries, so both see the same files but mount and unmount independently.
//!
//! Dentries of one filesystem form a cycle (a child names its parent, the parent caches the
//! child), so a dentry tree is never freed by reference counting alone. Every mount of a tree
//! (the first, its bind mounts and copies) holds one [`DentryTree`]; when the last of them
//! goes, the tree's cache is emptied and the dentries and inodes go with it. That is what
//! keeps unmounted, and lazily detached, filesystems from leaking.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::dentry::Dentry;
use super::inode::{FileType, Inode};
use crate::Errno;

/// Per-mount flags (the MNT_* Linux keeps per mount, shown in mountinfo's fourth column).
pub mod flags {
    pub const RDONLY: u32 = 1;
    pub const NOSUID: u32 = 2;
    pub const NODEV: u32 = 4;
    pub const NOEXEC: u32 = 8;
    pub const NOATIME: u32 = 0x400;
    pub const NODIRATIME: u32 = 0x800;
    pub const RELATIME: u32 = 0x20_0000;
    pub const STRICTATIME: u32 = 0x100_0000;
    /// Every flag a mount records (MS_* values, which Linux's mount(2) uses for them).
    pub const ALL: u32 = RDONLY | NOSUID | NODEV | NOEXEC | NOATIME | NODIRATIME | RELATIME;
}

/// A mount's propagation type. Recorded and shown (mountinfo's optional fields); events are
/// not propagated between peers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    #[default]
    Private,
    /// A member of peer group `N`.
    Shared(u64),
    /// Receives from peer group `N`.
    Slave(u64),
    Unbindable,
}

/// Peer group numbers, as mountinfo's `shared:N` shows them.
static NEXT_PEER_GROUP: AtomicU64 = AtomicU64::new(1);
/// The mounts of each peer group (weak: a mount leaves with its last reference).
static PEERS: Mutex<BTreeMap<u64, Vec<Weak<Mount>>>> = Mutex::new(BTreeMap::new());

/// Whether peer group `g` has a live shared member other than `me`.
fn has_other_peer(g: u64, me: &Arc<Mount>) -> bool {
    let members: Vec<Arc<Mount>> = {
        let mut peers = lock(&PEERS);
        let Some(v) = peers.get_mut(&g) else {
            return false;
        };
        v.retain(|w| w.strong_count() > 0);
        let live = v.iter().filter_map(Weak::upgrade).collect();
        if v.is_empty() {
            peers.remove(&g);
        }
        live
    };
    members
        .iter()
        .any(|m| !Arc::ptr_eq(m, me) && m.propagation() == Propagation::Shared(g))
}

/// Mount ids are unique across namespaces, as Linux's.
static NEXT_MOUNT_ID: AtomicU64 = AtomicU64::new(1);
/// Namespace inode numbers (what /proc/PID/ns links show) after Linux's fixed initial ones.
static NEXT_NS_INO: AtomicU64 = AtomicU64::new(4026532160);

/// A fresh namespace inode number (shared by every kind of namespace, as Linux's proc inums).
pub fn next_ns_ino() -> u64 {
    NEXT_NS_INO.fetch_add(1, Ordering::Relaxed)
}

/// The inode number of the initial mount namespace of a sandbox.
pub const INIT_MNT_NS_INO: u64 = 4026531832;

/// A filesystem's dentry tree, shared by the mounts that show it. Dropped with the last of
/// them, it empties the dentry cache (see the module's note on cycles).
pub struct DentryTree {
    root: Arc<Dentry>,
}

impl Drop for DentryTree {
    fn drop(&mut self) {
        self.root.prune();
    }
}

/// A filesystem attached to the tree.
pub struct Mount {
    pub id: u64,
    pub root: Arc<Dentry>,
    tree: Arc<DentryTree>,
    /// Where it is attached: the parent mount and the dentry covered. None for a namespace's
    /// root and for a detached mount.
    parent: Mutex<Option<(Arc<Mount>, Arc<Dentry>)>>,
    flags: AtomicU32,
    propagation: Mutex<Propagation>,
    /// umount2(MNT_EXPIRE) marked it: the next such call unmounts it if it is idle.
    expiry_mark: std::sync::atomic::AtomicBool,
    /// Linux's MNT_LOCK_* and MNT_LOCKED ([`LOCKED`] and the per-mount flags a remount may
    /// not clear), set when a mount namespace is copied for a less privileged user
    /// namespace ([`MountNamespace::lock_all`]): what was hidden or read-only there stays
    /// so for root in the new user namespace.
    locks: AtomicU32,
    /// Filesystem type name, as /proc/mounts shows it ("tmpfs", "proc", ...).
    pub fs_type: String,
    /// Mount source, as /proc/mounts shows it.
    pub source: String,
    /// Filesystem options mountinfo shows after the source (tmpfs' `size=`, `mode=`).
    pub options: String,
    /// Which superblock this is, for filesystems that have one per namespace (proc per pid
    /// namespace, mqueue per IPC namespace, sysfs): mounting the same one again on its own
    /// root is EBUSY. 0: every mount of the type is a new superblock (tmpfs).
    pub sb_key: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Mount {
    /// A mount of the whole filesystem whose root is `root`, in no namespace yet.
    pub fn new(root: Arc<dyn Inode>, fs_type: &str, source: &str, flags: u32) -> Arc<Mount> {
        let root = Dentry::new_root(root);
        let tree = Arc::new(DentryTree { root: root.clone() });
        Mount::build(root, tree, fs_type, source, "", flags, 0)
    }

    fn build(
        root: Arc<Dentry>,
        tree: Arc<DentryTree>,
        fs_type: &str,
        source: &str,
        options: &str,
        flags: u32,
        sb_key: u64,
    ) -> Arc<Mount> {
        Arc::new(Mount {
            id: NEXT_MOUNT_ID.fetch_add(1, Ordering::Relaxed),
            root,
            tree,
            parent: Mutex::new(None),
            flags: AtomicU32::new(flags & flags::ALL),
            propagation: Mutex::new(Propagation::Private),
            expiry_mark: Default::default(),
            locks: AtomicU32::new(0),
            fs_type: fs_type.into(),
            source: source.into(),
            options: options.into(),
            sb_key,
        })
    }

    /// A new mount of the same files (a bind mount of `root`, or a namespace copy), flags and
    /// locks and all; propagation is the caller's to set.
    fn clone_at(&self, root: &Arc<Dentry>) -> Arc<Mount> {
        let m = Mount::build(
            root.clone(),
            self.tree.clone(),
            &self.fs_type,
            &self.source,
            &self.options,
            self.flags(),
            self.sb_key,
        );
        m.locks.store(self.locks(), Ordering::Relaxed);
        m
    }

    fn locks(&self) -> u32 {
        self.locks.load(Ordering::Relaxed)
    }

    /// It may not be unmounted or moved alone (Linux's MNT_LOCKED): it hides what is under
    /// it from a less privileged user namespace.
    pub fn is_locked(&self) -> bool {
        self.locks() & LOCKED != 0
    }

    /// It came from a namespace of a more privileged user namespace (its file system's
    /// superblock isn't the copy's to reconfigure).
    pub fn is_inherited(&self) -> bool {
        self.locks() != 0
    }

    /// Whether a remount may give it `new` flags (Linux's can_change_locked_flags): a
    /// locked ro, nosuid, nodev or noexec stays, and locked atime flags don't change.
    pub fn may_set_flags(&self, new: u32) -> bool {
        let locks = self.locks();
        let kept = locks & (flags::RDONLY | flags::NOSUID | flags::NODEV | flags::NOEXEC);
        let atime = flags::NOATIME | flags::NODIRATIME | flags::RELATIME;
        new & kept == kept && (locks & LOCK_ATIME == 0 || new & atime == self.flags() & atime)
    }

    /// With filesystem options (mountinfo's last column).
    pub fn with_options(
        root: Arc<dyn Inode>,
        fs_type: &str,
        source: &str,
        options: &str,
        flags: u32,
        sb_key: u64,
    ) -> Arc<Mount> {
        let root = Dentry::new_root(root);
        let tree = Arc::new(DentryTree { root: root.clone() });
        Mount::build(root, tree, fs_type, source, options, flags, sb_key)
    }

    /// The parent mount and the dentry this one covers.
    pub fn parent(&self) -> Option<(Arc<Mount>, Arc<Dentry>)> {
        lock(&self.parent).clone()
    }

    pub fn flags(&self) -> u32 {
        self.flags.load(Ordering::Relaxed)
    }

    pub fn set_flags(&self, f: u32) {
        self.flags.store(f & flags::ALL, Ordering::Relaxed);
    }

    pub fn read_only(&self) -> bool {
        self.flags() & flags::RDONLY != 0
    }

    pub fn noexec(&self) -> bool {
        self.flags() & flags::NOEXEC != 0
    }

    pub fn nosuid(&self) -> bool {
        self.flags() & flags::NOSUID != 0
    }

    pub fn nodev(&self) -> bool {
        self.flags() & flags::NODEV != 0
    }

    pub fn propagation(&self) -> Propagation {
        *lock(&self.propagation)
    }

    /// Sets the propagation type (MS_SHARED, MS_PRIVATE, MS_SLAVE, MS_UNBINDABLE): a mount
    /// made shared gets a new peer group unless it has one; a shared mount made a slave
    /// receives from its old group if that has other members, else it is private (Linux's
    /// do_make_slave).
    pub fn set_propagation(self: &Arc<Self>, kind: PropagationChange) {
        let cur = self.propagation();
        let peers = match cur {
            Propagation::Shared(g) => has_other_peer(g, self),
            _ => false,
        };
        let new = match (kind, cur) {
            (PropagationChange::Shared, Propagation::Shared(g)) => Propagation::Shared(g),
            (PropagationChange::Shared, _) => {
                Propagation::Shared(NEXT_PEER_GROUP.fetch_add(1, Ordering::Relaxed))
            }
            (PropagationChange::Slave, Propagation::Shared(g)) if peers => Propagation::Slave(g),
            (PropagationChange::Slave, Propagation::Slave(g)) => Propagation::Slave(g),
            // Linux: a private mount made a slave stays private (it has no master).
            (PropagationChange::Slave, other) if other != Propagation::Unbindable => {
                Propagation::Private
            }
            (PropagationChange::Slave, other) => other,
            (PropagationChange::Private, _) => Propagation::Private,
            (PropagationChange::Unbindable, _) => Propagation::Unbindable,
        };
        self.set_propagation_state(new);
    }

    /// Records `p`, joining its peer group if it is shared.
    fn set_propagation_state(self: &Arc<Self>, p: Propagation) {
        if let Propagation::Shared(g) = p {
            lock(&PEERS)
                .entry(g)
                .or_default()
                .push(Arc::downgrade(self));
        }
        *lock(&self.propagation) = p;
    }
}

/// What mount(2)'s MS_SHARED, MS_PRIVATE, MS_SLAVE and MS_UNBINDABLE ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropagationChange {
    Shared,
    Private,
    Slave,
    Unbindable,
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

/// What /proc/PID/mounts and mountinfo print for a mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountInfo {
    pub id: u64,
    pub parent_id: u64,
    pub dev: u64,
    /// The mount's root within its filesystem ("/" unless a bind mount of a subtree).
    pub root: Vec<u8>,
    pub source: String,
    pub path: Vec<u8>,
    pub fs_type: String,
    pub read_only: bool,
    pub flags: u32,
    pub propagation: Propagation,
    pub options: String,
}

type Key = (u64, usize);

fn key(mount: &Arc<Mount>, dentry: &Arc<Dentry>) -> Key {
    (mount.id, Arc::as_ptr(dentry) as *const u8 as usize)
}

/// The mounts of a namespace, under one lock so that a change is seen whole.
struct Tree {
    root: Arc<Mount>,
    /// Mounts by the (parent mount, covered dentry) they are attached at.
    children: HashMap<Key, Arc<Mount>>,
    /// Every mount, by id: creation order, which /proc/mounts lists.
    all: BTreeMap<u64, Arc<Mount>>,
}

/// A tree of mounts: what a task sees of the file systems.
pub struct MountNamespace {
    /// The inode number /proc/PID/ns/mnt shows.
    pub ino: u64,
    tree: Mutex<Tree>,
    /// The user namespace that owns it (the sentry's; unset: the initial one), set once
    /// when unshare or clone makes the copy: mounting here asks for CAP_SYS_ADMIN in it.
    pub owner: std::sync::OnceLock<Arc<dyn std::any::Any + Send + Sync>>,
}

/// The most mounts a namespace holds (Linux's default /proc/sys/fs/mount-max): more is
/// ENOSPC, so that a program repeating recursive binds can't grow the tree without end.
pub const MOUNT_MAX: usize = 100_000;

/// umount2's flags.
/// [`Mount::is_locked`]'s bit and the atime lock, beside the locked per-mount flags.
const LOCKED: u32 = 1 << 31;
const LOCK_ATIME: u32 = 1 << 30;

pub const MNT_FORCE: u32 = 1;
pub const MNT_DETACH: u32 = 2;
pub const MNT_EXPIRE: u32 = 4;

impl MountNamespace {
    /// A namespace whose root is `root` of a filesystem of type `fs_type`.
    pub fn new(root: Arc<dyn Inode>, fs_type: &str, source: &str, read_only: bool) -> Self {
        let root = Mount::new(
            root,
            fs_type,
            source,
            if read_only { flags::RDONLY } else { 0 },
        );
        Self::with_root(root, INIT_MNT_NS_INO)
    }

    fn with_root(root: Arc<Mount>, ino: u64) -> Self {
        let mut all = BTreeMap::new();
        all.insert(root.id, root.clone());
        MountNamespace {
            ino,
            owner: std::sync::OnceLock::new(),
            tree: Mutex::new(Tree {
                root,
                children: HashMap::new(),
                all,
            }),
        }
    }

    /// The root of the namespace.
    pub fn root(&self) -> Location {
        let root = lock(&self.tree).root.clone();
        Location {
            dentry: root.root.clone(),
            mount: root,
        }
    }

    /// Whether `mount` is one of this namespace's (Linux's check_mnt).
    pub fn contains(&self, mount: &Arc<Mount>) -> bool {
        lock(&self.tree)
            .all
            .get(&mount.id)
            .is_some_and(|m| Arc::ptr_eq(m, mount))
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
        let flags = if read_only { flags::RDONLY } else { 0 };
        self.attach(at, Mount::new(fs_root, fs_type, source, flags))
    }

    /// Attaches the new mount `mount` (in no namespace yet) at `at`.
    pub fn attach(&self, at: &Location, mount: Arc<Mount>) -> Result<Location, Errno> {
        let (at_dir, root_dir) = (
            at.inode().file_type() == FileType::Directory,
            mount.root.inode().file_type() == FileType::Directory,
        );
        if at_dir != root_dir {
            return Err(if at_dir { libc::EISDIR } else { libc::ENOTDIR });
        }
        let mut tree = lock(&self.tree);
        if tree.all.len() >= MOUNT_MAX {
            return Err(libc::ENOSPC);
        }
        Self::attach_locked(&mut tree, at, mount.clone());
        Ok(Location {
            dentry: mount.root.clone(),
            mount,
        })
    }

    fn attach_locked(tree: &mut Tree, at: &Location, mount: Arc<Mount>) {
        // Found again by name even in a directory that doesn't cache its children.
        at.dentry.pin();
        *lock(&mount.parent) = Some((at.mount.clone(), at.dentry.clone()));
        // A mount over a mount point goes on top: the one that was there moves onto the
        // new mount's root, as Linux's attach_recursive_mnt does for a stacked mount.
        let k = key(&at.mount, &at.dentry);
        if let Some(under) = tree.children.remove(&k) {
            *lock(&under.parent) = Some((mount.clone(), mount.root.clone()));
            mount.root.pin();
            tree.children.insert(key(&mount, &mount.root), under);
        }
        tree.children.insert(k, mount.clone());
        tree.all.insert(mount.id, mount);
    }

    /// A bind mount of `src` at `at`; with `recursive`, the mounts below `src` come along
    /// (MS_BIND|MS_REC). An unbindable source is EINVAL, as a source from another
    /// namespace; unbindable mounts below are left out.
    pub fn bind(&self, at: &Location, src: &Location, recursive: bool) -> Result<(), Errno> {
        let mut tree = lock(&self.tree);
        if !tree.all.contains_key(&src.mount.id) {
            return Err(libc::EINVAL);
        }
        if src.mount.propagation() == Propagation::Unbindable {
            return Err(libc::EINVAL);
        }
        let (at_dir, src_dir) = (
            at.inode().file_type() == FileType::Directory,
            src.inode().file_type() == FileType::Directory,
        );
        if at_dir != src_dir {
            return Err(if at_dir { libc::EISDIR } else { libc::ENOTDIR });
        }
        // Without MS_REC a bind would show what locked mounts hide (Linux's
        // has_locked_children; here any locked child of the source mount counts).
        if !recursive
            && tree.all.values().any(|m| {
                m.is_locked() && m.parent().is_some_and(|(p, _)| Arc::ptr_eq(&p, &src.mount))
            })
        {
            return Err(libc::EINVAL);
        }
        let top = src.mount.clone_at(&src.dentry);
        // The top of a bind is never locked (its flags' locks stay).
        top.locks.fetch_and(!LOCKED, Ordering::Relaxed);
        if let Propagation::Shared(g) = src.mount.propagation() {
            top.set_propagation_state(Propagation::Shared(g));
        }
        // The copies to make: (original, where it is attached in the original) pairs, found
        // before anything is attached so that a bind into its own subtree ends.
        let mut copies: Vec<(Arc<Mount>, Arc<Mount>)> = vec![(src.mount.clone(), top.clone())];
        let mut pending: Vec<(Arc<Mount>, Arc<Dentry>, Arc<Mount>)> = Vec::new();
        if recursive {
            let index = Self::children_index(&tree);
            let mut i = 0;
            while i < copies.len() {
                let (orig, copy) = copies[i].clone();
                for m in index.get(&orig.id).into_iter().flatten() {
                    let Some((_, d)) = m.parent() else { continue };
                    if m.propagation() == Propagation::Unbindable {
                        continue;
                    }
                    // Only mounts inside the bound subtree of the source's own mount.
                    if i == 0 && !d.is_descendant_of(&src.dentry) {
                        continue;
                    }
                    let c = m.clone_at(&m.root);
                    pending.push((c.clone(), d, copy.clone()));
                    copies.push((m.clone(), c));
                }
                i += 1;
            }
        }
        if tree.all.len() + copies.len() > MOUNT_MAX {
            return Err(libc::ENOSPC);
        }
        Self::attach_locked(&mut tree, at, top);
        for (m, d, parent) in pending {
            Self::attach_locked(
                &mut tree,
                &Location {
                    mount: parent,
                    dentry: d,
                },
                m,
            );
        }
        Ok(())
    }

    /// The mount attached at `loc`, if any (the topmost when stacked).
    pub fn mounted_at(&self, loc: &Location) -> Option<Location> {
        let tree = lock(&self.tree);
        let mut found = tree.children.get(&key(&loc.mount, &loc.dentry)).cloned()?;
        while let Some(next) = tree.children.get(&key(&found, &found.root)) {
            found = next.clone();
        }
        Some(Location {
            dentry: found.root.clone(),
            mount: found,
        })
    }

    /// Each mount's children, by the parent's id: one pass, so that walking a subtree is
    /// linear in the namespace's size.
    fn children_index(tree: &Tree) -> HashMap<u64, Vec<Arc<Mount>>> {
        let mut index: HashMap<u64, Vec<Arc<Mount>>> = HashMap::new();
        for m in tree.all.values() {
            if let Some((p, _)) = m.parent() {
                index.entry(p.id).or_default().push(m.clone());
            }
        }
        index
    }

    /// The mounts below `mount` in this namespace, `mount` first.
    fn subtree(tree: &Tree, mount: &Arc<Mount>) -> Vec<Arc<Mount>> {
        let index = Self::children_index(tree);
        let mut out = vec![mount.clone()];
        let mut i = 0;
        while i < out.len() {
            if let Some(children) = index.get(&out[i].id) {
                out.extend(children.iter().cloned());
            }
            i += 1;
        }
        out
    }

    /// Unmounts the mount whose root `loc` is (umount2). `held` is how many references to
    /// the mount the caller holds besides `loc` (its own root or working directory there
    /// make it busy, as Linux counts them). Linux's rules: not a mount root or not in this
    /// namespace EINVAL; MNT_EXPIRE with MNT_FORCE or MNT_DETACH EINVAL, and EAGAIN the first
    /// time (marking), then EBUSY or done; busy (open files, working directories, mounts on
    /// it) EBUSY unless MNT_DETACH, which takes the whole subtree out of the namespace at
    /// once and leaves what is open working.
    pub fn umount(&self, loc: Location, umount_flags: u32) -> Result<(), Errno> {
        let mount = loc.mount.clone();
        if !loc.is_mount_root() {
            return Err(libc::EINVAL);
        }
        drop(loc);
        let mut tree = lock(&self.tree);
        if !tree
            .all
            .get(&mount.id)
            .is_some_and(|m| Arc::ptr_eq(m, &mount))
        {
            return Err(libc::EINVAL);
        }
        if umount_flags & MNT_EXPIRE != 0 && umount_flags & (MNT_FORCE | MNT_DETACH) != 0 {
            return Err(libc::EINVAL);
        }
        if mount.is_locked() {
            return Err(libc::EINVAL);
        }
        let is_root = Arc::ptr_eq(&tree.root, &mount);
        if is_root {
            // Linux remounts a busy root read-only instead; the sandbox's root stays.
            return Err(if umount_flags & MNT_DETACH != 0 {
                libc::EINVAL
            } else {
                libc::EBUSY
            });
        }
        // References: `mount` here, `all` and `children` (two), plus one per open file,
        // working directory, root and child mount.
        let has_children = tree
            .all
            .values()
            .any(|m| m.parent().is_some_and(|(p, _)| Arc::ptr_eq(&p, &mount)));
        let busy = has_children || Arc::strong_count(&mount) > 3;
        if umount_flags & MNT_EXPIRE != 0 {
            if busy {
                return Err(libc::EBUSY);
            }
            // The first call marks it (EAGAIN); the next unmounts it.
            if !mount.expiry_mark.swap(true, Ordering::Relaxed) {
                return Err(libc::EAGAIN);
            }
        }
        if busy && umount_flags & MNT_DETACH == 0 {
            return Err(libc::EBUSY);
        }
        for m in Self::subtree(&tree, &mount).into_iter().rev() {
            Self::detach_locked(&mut tree, &m);
        }
        Ok(())
    }

    /// Takes `m` out of the namespace, putting back a mount it covered on its own root.
    fn detach_locked(tree: &mut Tree, m: &Arc<Mount>) {
        tree.all.remove(&m.id);
        let parent = lock(&m.parent).take();
        let Some((p, d)) = parent else { return };
        let k = key(&p, &d);
        if tree.children.get(&k).is_some_and(|c| Arc::ptr_eq(c, m)) {
            tree.children.remove(&k);
            if let Some(under) = tree.children.remove(&key(m, &m.root)) {
                *lock(&under.parent) = Some((p, d));
                tree.children.insert(k, under);
            }
        }
    }

    /// Moves the mount at `from` (a mount root) to `to` (MS_MOVE).
    pub fn move_mount(&self, from: &Location, to: &Location) -> Result<(), Errno> {
        let mut tree = lock(&self.tree);
        if !from.is_mount_root() || !tree.all.contains_key(&from.mount.id) {
            return Err(libc::EINVAL);
        }
        if Arc::ptr_eq(&tree.root, &from.mount) || from.mount.is_locked() {
            return Err(libc::EINVAL);
        }
        // Not into itself.
        if Self::subtree(&tree, &from.mount)
            .iter()
            .any(|m| Arc::ptr_eq(m, &to.mount))
        {
            return Err(libc::ELOOP);
        }
        let m = from.mount.clone();
        let subtree = Self::subtree(&tree, &m);
        Self::detach_locked(&mut tree, &m);
        Self::attach_locked(&mut tree, to, m);
        for s in subtree.into_iter().skip(1) {
            tree.all.insert(s.id, s);
        }
        Ok(())
    }

    /// pivot_root: the mount at `new_root` becomes the namespace's root and the old root
    /// is attached at `put_old`. `cur_root` is the caller's root. Linux's checks, in its
    /// order (do_pivot_root): any of put_old's mount, new_root's parent or the root's parent
    /// shared, or a mount from another namespace, EINVAL; new_root or put_old on the root's
    /// mount EBUSY; the root or new_root not a mount root, new_root not attached, put_old not
    /// at or below new_root, new_root not below the root, EINVAL. (The namespace's root has no
    /// parent here, where Linux's hangs on rootfs: it counts as attached.)
    pub fn pivot_root(
        &self,
        new_root: &Location,
        put_old: &Location,
        cur_root: &Location,
    ) -> Result<(), Errno> {
        let mut tree = lock(&self.tree);
        let shared = |m: &Arc<Mount>| matches!(m.propagation(), Propagation::Shared(_));
        let new_parent = new_root.mount.parent();
        if shared(&put_old.mount) || new_parent.as_ref().is_some_and(|(p, _)| shared(p)) {
            return Err(libc::EINVAL);
        }
        for l in [new_root, cur_root] {
            if !tree
                .all
                .get(&l.mount.id)
                .is_some_and(|m| Arc::ptr_eq(m, &l.mount))
            {
                return Err(libc::EINVAL);
            }
        }
        if Arc::ptr_eq(&new_root.mount, &cur_root.mount)
            || Arc::ptr_eq(&put_old.mount, &cur_root.mount)
        {
            return Err(libc::EBUSY);
        }
        if !cur_root.is_mount_root() || !new_root.is_mount_root() || new_parent.is_none() {
            return Err(libc::EINVAL);
        }
        if !self.reachable(put_old, new_root) || !self.reachable(new_root, cur_root) {
            return Err(libc::EINVAL);
        }
        let old = cur_root.mount.clone();
        let new = new_root.mount.clone();
        let old_parent = old.parent();
        // Take new_root off its mount point and the old root off its place.
        if let Some((np, nd)) = lock(&new.parent).take() {
            tree.children.remove(&key(&np, &nd));
        }
        if let Some((op, od)) = &old_parent {
            tree.children.remove(&key(op, od));
        }
        Self::attach_locked(&mut tree, put_old, old);
        match old_parent {
            Some((op, od)) => {
                let at = Location {
                    mount: op,
                    dentry: od,
                };
                Self::attach_locked(&mut tree, &at, new);
            }
            None => tree.root = new,
        }
        Ok(())
    }

    /// Applies a propagation change to the mount at `loc` (and, with `recursive`, below).
    pub fn set_propagation(
        &self,
        loc: &Location,
        change: PropagationChange,
        recursive: bool,
    ) -> Result<(), Errno> {
        let tree = lock(&self.tree);
        if !loc.is_mount_root() || !tree.all.contains_key(&loc.mount.id) {
            return Err(libc::EINVAL);
        }
        let targets = if recursive {
            Self::subtree(&tree, &loc.mount)
        } else {
            vec![loc.mount.clone()]
        };
        for m in targets {
            m.set_propagation(change);
        }
        Ok(())
    }

    /// Locks every mount (Linux's lock_mnt_tree, for a copy made for a less privileged user
    /// namespace): the per-mount flags set now and the atime flags can't be changed by a
    /// remount, and every mount but the root can't be unmounted or moved alone. Shared
    /// mounts become slaves of their peer groups, as copy_mnt_ns makes them.
    pub fn lock_all(&self) {
        let tree = lock(&self.tree);
        for m in tree.all.values() {
            let f = m.flags() & (flags::RDONLY | flags::NOSUID | flags::NODEV | flags::NOEXEC);
            let mut l = f | LOCK_ATIME;
            if !Arc::ptr_eq(m, &tree.root) {
                l |= LOCKED;
            }
            m.locks.fetch_or(l, Ordering::Relaxed);
            // CL_SHARED_TO_SLAVE: the copy receives from its originals' group, never
            // sends to it.
            if matches!(m.propagation(), Propagation::Shared(_)) {
                m.set_propagation(PropagationChange::Slave);
            }
        }
    }

    /// A copy of this namespace (unshare or clone with CLONE_NEWNS): new mounts over the
    /// same dentries, in the same order, with the same flags; shared mounts stay peers of
    /// their originals. Also returns how to find a location's counterpart in the copy
    /// (for the task's root and working directory).
    pub fn copy(&self) -> (Arc<MountNamespace>, MountMap) {
        let tree = lock(&self.tree);
        let mut map: HashMap<u64, Arc<Mount>> = HashMap::new();
        for m in tree.all.values() {
            let c = m.clone_at(&m.root);
            // Shared mounts stay in their peer groups, as Linux's copy_mnt_ns.
            c.set_propagation_state(m.propagation());
            map.insert(m.id, c);
        }
        let root = map[&tree.root.id].clone();
        let ns = MountNamespace::with_root(root, next_ns_ino());
        {
            let mut new = lock(&ns.tree);
            for m in tree.all.values() {
                let c = map[&m.id].clone();
                new.all.insert(c.id, c.clone());
                let Some((p, d)) = m.parent() else { continue };
                let Some(cp) = map.get(&p.id) else { continue };
                *lock(&c.parent) = Some((cp.clone(), d.clone()));
                new.children.insert(key(cp, &d), c);
            }
        }
        (Arc::new(ns), MountMap(map))
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
                match cur.mount.parent() {
                    Some((m, d)) => {
                        cur = Location {
                            mount: m,
                            dentry: d,
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

    /// Whether `loc` can be reached from `root` (is at or below it).
    pub fn reachable(&self, loc: &Location, root: &Location) -> bool {
        let mut cur = loc.clone();
        loop {
            if cur.same(root) {
                return true;
            }
            if cur.is_mount_root() {
                match cur.mount.parent() {
                    Some((m, d)) => {
                        cur = Location {
                            mount: m,
                            dentry: d,
                        }
                    }
                    None => return false,
                }
            } else {
                match cur.dentry.parent() {
                    Some(p) => cur.dentry = p,
                    None => return false,
                }
            }
        }
    }

    /// The root inode of every mount, in mount order.
    pub fn mount_roots(&self) -> Vec<Arc<dyn Inode>> {
        lock(&self.tree)
            .all
            .values()
            .map(|m| m.root.inode().clone())
            .collect()
    }

    /// The mount of this namespace whose filesystem type is `fs_type`, if any.
    pub fn find_fs(&self, fs_type: &str) -> Option<Arc<Mount>> {
        lock(&self.tree)
            .all
            .values()
            .find(|m| m.fs_type == fs_type)
            .cloned()
    }

    /// Every mount visible from `root`, as /proc/PID/mounts and mountinfo list them.
    pub fn mounts(&self, root: &Location) -> Vec<MountInfo> {
        let all: Vec<Arc<Mount>> = lock(&self.tree).all.values().cloned().collect();
        all.iter()
            .filter_map(|m| {
                let at = Location {
                    mount: m.clone(),
                    dentry: m.root.clone(),
                };
                if !self.reachable(&at, root) {
                    return None;
                }
                let fs_root = Location {
                    mount: m.clone(),
                    dentry: m.tree.root.clone(),
                };
                let mut root_path = Vec::new();
                let mut d = m.root.clone();
                let mut parts = Vec::new();
                while !Arc::ptr_eq(&d, &fs_root.dentry) {
                    match d.parent() {
                        Some(p) => {
                            parts.push(d.name());
                            d = p;
                        }
                        None => break,
                    }
                }
                for p in parts.iter().rev() {
                    root_path.push(b'/');
                    root_path.extend_from_slice(p);
                }
                if root_path.is_empty() {
                    root_path.push(b'/');
                }
                let parent_id = m.parent().map(|(p, _)| p.id).unwrap_or(m.id);
                Some(MountInfo {
                    id: m.id,
                    parent_id,
                    dev: m.root.inode().stat().map(|s| s.dev).unwrap_or(0),
                    root: root_path,
                    source: m.source.clone(),
                    path: self.path(&at, root),
                    fs_type: m.fs_type.clone(),
                    read_only: m.read_only(),
                    flags: m.flags(),
                    propagation: m.propagation(),
                    options: m.options.clone(),
                })
            })
            .collect()
    }
}

/// Old mount id to its copy, from [`MountNamespace::copy`].
pub struct MountMap(HashMap<u64, Arc<Mount>>);

impl MountMap {
    /// `loc`'s counterpart in the copy (itself if its mount wasn't copied).
    pub fn translate(&self, loc: &Location) -> Location {
        match self.0.get(&loc.mount.id) {
            Some(m) => Location {
                mount: m.clone(),
                dentry: loc.dentry.clone(),
            },
            None => loc.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tmpfs::Tmpfs;
    use crate::vfs::{NewNode, Owner};

    fn mkdir(at: &Location, name: &[u8]) -> Location {
        let inode = at
            .inode()
            .create(name, NewNode::Directory, 0o755, Owner { uid: 0, gid: 0 })
            .unwrap();
        Location {
            dentry: at.dentry.insert_child(name, inode),
            mount: at.mount.clone(),
        }
    }

    fn lookup(ns: &MountNamespace, at: &Location, name: &[u8]) -> Location {
        let loc = Location {
            dentry: at.dentry.child(name).unwrap(),
            mount: at.mount.clone(),
        };
        ns.mounted_at(&loc).unwrap_or(loc)
    }

    /// An unmounted tmpfs goes, dentries, inodes and all, despite the parent/child cycle
    /// of its dentries; also when detached lazily while a location in it was held.
    #[test]
    fn unmounted_trees_are_freed() {
        let ns = MountNamespace::new(Tmpfs::new(1).root(), "tmpfs", "root", false);
        let mnt = mkdir(&ns.root(), b"mnt");
        for detach in [false, true] {
            let fs = Tmpfs::new(2);
            let top = ns.mount(&mnt, fs.root(), "tmpfs", "t", false).unwrap();
            let deep = mkdir(&mkdir(&top, b"a"), b"b");
            let weak_inode = Arc::downgrade(deep.inode());
            let weak_dentry = Arc::downgrade(&deep.dentry);
            let weak_mount = Arc::downgrade(&top.mount);
            drop(fs);
            drop(top);
            let held = detach.then(|| deep.clone());
            drop(deep);
            let at = lookup(&ns, &ns.root(), b"mnt");
            if detach {
                assert_eq!(ns.umount(at.clone(), 0), Err(libc::EBUSY));
                ns.umount(at, MNT_DETACH).unwrap();
                assert!(weak_inode.upgrade().is_some(), "held while in use");
                drop(held);
            } else {
                ns.umount(at, 0).unwrap();
            }
            assert!(weak_mount.upgrade().is_none(), "mount freed");
            assert!(weak_dentry.upgrade().is_none(), "dentries freed");
            assert!(weak_inode.upgrade().is_none(), "inodes freed");
        }
    }

    /// A copied namespace mounts and unmounts on its own; a recursive bind takes the
    /// mounts below along, a plain one doesn't.
    #[test]
    fn copies_and_binds() {
        let ns = MountNamespace::new(Tmpfs::new(1).root(), "tmpfs", "root", false);
        let root = ns.root();
        let (a, b, c) = (mkdir(&root, b"a"), mkdir(&root, b"b"), mkdir(&root, b"c"));
        let top = ns
            .mount(&a, Tmpfs::new(2).root(), "tmpfs", "a", false)
            .unwrap();
        let sub = mkdir(&top, b"sub");
        ns.mount(&sub, Tmpfs::new(3).root(), "tmpfs", "sub", false)
            .unwrap();
        let (copy, map) = ns.copy();
        assert_ne!(copy.ino, ns.ino);
        assert_eq!(copy.mounts(&copy.root()).len(), 3);
        let moved = map.translate(&a);
        assert!(copy.contains(&moved.mount) && !ns.contains(&moved.mount));
        // The map holds the copies: a mount it holds is busy.
        drop((map, moved));
        let a_copy = lookup(&copy, &copy.root(), b"a");
        copy.umount(lookup(&copy, &a_copy, b"sub"), 0).unwrap();
        assert_eq!(copy.mounts(&copy.root()).len(), 2);
        assert_eq!(ns.mounts(&ns.root()).len(), 3);

        let src = lookup(&ns, &root, b"a");
        ns.bind(&b, &src, false).unwrap();
        ns.bind(&c, &src, true).unwrap();
        let under = |dir: &[u8]| {
            let d = lookup(&ns, &root, dir);
            ns.mounted_at(&lookup(&ns, &d, b"sub").clone()).is_some()
                || lookup(&ns, &d, b"sub").is_mount_root()
        };
        assert!(!under(b"b"));
        assert!(under(b"c"));
        // Busy: a submount.
        assert_eq!(ns.umount(lookup(&ns, &root, b"c"), 0), Err(libc::EBUSY));
    }
}
