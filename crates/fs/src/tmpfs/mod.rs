//! tmpfs: a filesystem in memory, implementing the [`Inode`] contract.
//!
//! A [`Tmpfs`] is one instance (one superblock, one device number). Its root directory is
//! created with the instance ([`TmpfsOptions`] give its mode and owner, by default 01777
//! root:root like a fresh Linux tmpfs) and is inode number 1, as on Linux; later inodes are
//! numbered 2, 3, ... from the instance's counter and numbers are never reused.
//!
//! What lives where:
//! - Regular files keep their bytes in a sparse page map ([`file`]).
//! - Directories keep entries in insertion order (a rename onto an existing name keeps that
//!   name's position), so `readdir` order is stable. `st_nlink` is 2 + subdirectories (0 once
//!   removed) and `st_size` is 20 bytes per entry plus 40, Linux's "bogo" sizes.
//! - Symlinks keep their target; fifos, sockets and device nodes are metadata only (`open`
//!   returns `Ok(None)`: the VFS serves them).
//!
//! Space: an instance has a byte budget (pages of file data, long symlinks, xattrs) and an
//! inode budget, like Linux's `size=` and `nr_inodes=`; exceeding either gives ENOSPC, so a
//! guest cannot grow the sentry's memory without bound. Sparse holes cost nothing. As on
//! Linux, each extra hard link takes an inode slot too.
//!
//! Locking: every inode has one `RwLock` for its metadata and contents. A thread holds at
//! most one directory lock, plus locks of non-directories (which are leaves: nothing is
//! acquired while one is held) — except `rename` and `rmdir`, which hold several directory
//! locks and therefore first take the instance's rename lock, so at most one thread at a time
//! holds more than one directory lock. Directories' parent pointers have their own leaf
//! mutex and only change under the rename lock. Locks are never held across a call out of
//! this module.
//!
//! What the VFS does, not tmpfs: permission checks, clearing setuid/setgid on write by an
//! unprivileged caller and on chmod by a non-member of the group, sticky-directory rules,
//! `.`/`..`, mounts. tmpfs does what Linux's filesystem code does: setgid-directory
//! inheritance at create, and clearing S_ISUID (and S_ISGID when group-executable) when
//! `setattr` changes the owner of a non-directory.
//!
//! Times (CLOCK_REALTIME, nanoseconds): a write or a size change sets mtime and ctime;
//! `setattr` sets ctime and the given atime/mtime (an empty one, or a truncate to the
//! current size, changes nothing, as truncate(2)); adding or removing a name sets the
//! directory's mtime and ctime, and the ctime of the inode named (link, unlink, rename).
//! Reads, `readdir` and `readlink` move atime with Linux's default `relatime` rule.
//!
//! Where we differ from Linux's tmpfs on purpose: `FALLOC_FL_ZERO_RANGE` is supported (as
//! on ext4; shmem says EOPNOTSUPP).
//!
//! POSIX ACLs (`system.posix_acl_access`, `system.posix_acl_default`) are kept parsed, as
//! Linux's tmpfs with `CONFIG_TMPFS_POSIX_ACL` keeps them: setting an access ACL rewrites
//! the mode (and is dropped when the mode says it all), chmod rewrites the ACL, and both
//! count against the byte budget like other xattrs. Who may set them, and inheritance at
//! create, are the VFS's (`vfs::acl`); other `system.*` names are refused (EOPNOTSUPP).

mod file;
#[cfg(test)]
mod tests;

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};

use crate::vfs::acl::{Acl, AclKind};
use crate::vfs::{DirEntry, FileType, Inode, NewNode, Owner, SetAttr, StatFs, Timespec};
use crate::{Errno, Stat};
use file::{Charge, FileData, MAX_FILE_SIZE, PAGE};

/// `statfs` type of tmpfs.
pub const TMPFS_MAGIC: i64 = 0x0102_1994;

/// Longest name in a directory.
const NAME_MAX: usize = 255;
/// Longest xattr name and value (Linux's `XATTR_NAME_MAX`, `XATTR_SIZE_MAX`).
const XATTR_NAME_MAX: usize = 255;
const XATTR_SIZE_MAX: usize = 65536;
/// Symlink targets up to this length (with the NUL) are kept in the inode and use no block,
/// longer ones take a page (Linux's `SHORT_SYMLINK_LEN`).
const SHORT_SYMLINK_LEN: usize = 128;
/// Linux's bogus directory sizes: 20 per entry, plus 40 for `.` and `..`.
const BOGO_DIRENT_SIZE: i64 = 20;
/// Root's inode number.
pub const ROOT_INO: u64 = 1;

/// Configuration of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TmpfsOptions {
    /// Permission bits of the root directory.
    pub root_mode: u32,
    pub root_owner: Owner,
    /// Byte budget (Linux's `size=`); the default is half the host's memory, as on Linux.
    pub size_bytes: u64,
    /// Inode budget, the root included (Linux's `nr_inodes=`); the default is half the
    /// host's pages.
    pub max_inodes: u64,
}

impl Default for TmpfsOptions {
    fn default() -> Self {
        let half_pages = host_pages() / 2;
        TmpfsOptions {
            root_mode: 0o1777,
            root_owner: Owner { uid: 0, gid: 0 },
            size_bytes: half_pages.saturating_mul(PAGE),
            max_inodes: half_pages,
        }
    }
}

/// The host's physical pages (a fallback of 1 GiB worth if unknown).
fn host_pages() -> u64 {
    use nix::unistd::{sysconf, SysconfVar};
    match sysconf(SysconfVar::_PHYS_PAGES) {
        Ok(Some(n)) if n > 0 => n as u64,
        _ => 1 << 18,
    }
}

/// The budgets of an instance.
struct Space {
    capacity: u64,
    used: AtomicU64,
    max_inodes: u64,
    inodes: AtomicU64,
}

impl Space {
    fn take(counter: &AtomicU64, max: u64, n: u64) -> Result<(), Errno> {
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= max)
            })
            .map(|_| ())
            .map_err(|_| libc::ENOSPC)
    }

    fn give(counter: &AtomicU64, n: u64) {
        // Never below zero, even if accounting were off: a wrong statfs beats a panic.
        let _ = counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
            Some(used.saturating_sub(n))
        });
    }

    fn charge(&self, bytes: u64) -> Result<(), Errno> {
        if bytes == 0 {
            return Ok(());
        }
        Self::take(&self.used, self.capacity, bytes)
    }

    fn refund(&self, bytes: u64) {
        Self::give(&self.used, bytes)
    }
}

/// What all inodes of an instance share.
struct Shared {
    dev: u64,
    next_ino: AtomicU64,
    /// Taken first by `rename` and `rmdir`, the operations that lock several directories.
    rename_lock: Mutex<()>,
    space: Space,
}

impl Shared {
    /// One name of a non-directory goes away; the slot an extra name took comes back.
    fn drop_link(&self, st: &mut State) {
        if st.nlink > 1 {
            Space::give(&self.space.inodes, 1);
        }
        st.nlink = st.nlink.saturating_sub(1);
    }
}

/// A tmpfs instance.
pub struct Tmpfs {
    shared: Arc<Shared>,
    root: Arc<TmpfsInode>,
}

impl Tmpfs {
    /// An instance with default options (root 01777 root:root, Linux's default budgets).
    pub fn new(dev: u64) -> Arc<Tmpfs> {
        Self::with_options(dev, TmpfsOptions::default())
    }

    /// An instance with the given root mode, owner and budgets.
    pub fn with_options(dev: u64, opts: TmpfsOptions) -> Arc<Tmpfs> {
        let shared = Arc::new(Shared {
            dev,
            next_ino: AtomicU64::new(ROOT_INO + 1),
            rename_lock: Mutex::new(()),
            space: Space {
                capacity: opts.size_bytes,
                used: AtomicU64::new(0),
                max_inodes: opts.max_inodes,
                // The root counts, as on Linux (it exists even with a budget of 0).
                inodes: AtomicU64::new(1),
            },
        });
        let root = TmpfsInode::new(
            &shared,
            ROOT_INO,
            FileType::Directory,
            opts.root_mode & 0o7777,
            opts.root_owner,
            Body::Dir(DirData::default()),
            0,
        );
        Arc::new(Tmpfs { shared, root })
    }

    /// The root directory.
    pub fn root(&self) -> Arc<dyn Inode> {
        self.root.clone()
    }

    /// The root directory as a tmpfs inode (for [`TmpfsInode::create_tmpfile`]).
    pub fn root_inode(&self) -> Arc<TmpfsInode> {
        self.root.clone()
    }

    /// The device number given at creation.
    pub fn dev(&self) -> u64 {
        self.shared.dev
    }
}

/// The current time, CLOCK_REALTIME.
fn now() -> Timespec {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_REALTIME) {
        Ok(ts) => (ts.tv_sec(), ts.tv_nsec()),
        Err(_) => (0, 0),
    }
}

// A poisoned lock means a panic elsewhere while holding it; the data is still consistent
// at the granularity of our updates, and failing every later call would be worse.
fn rd<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}
fn wr<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}
fn lock<T>(l: &Mutex<T>) -> MutexGuard<'_, T> {
    l.lock().unwrap_or_else(|e| e.into_inner())
}

/// Checks a name for a directory operation. `dot` is the errno for `.` and `..`, which
/// differs by operation as on Linux.
fn check_name(name: &[u8], dot: Errno) -> Result<(), Errno> {
    if name.is_empty() {
        return Err(libc::ENOENT);
    }
    if name == b"." || name == b".." {
        return Err(dot);
    }
    if name.len() > NAME_MAX {
        return Err(libc::ENAMETOOLONG);
    }
    if name.iter().any(|&b| b == b'/' || b == 0) {
        return Err(libc::EINVAL);
    }
    Ok(())
}

/// Entries of a directory, in insertion order.
#[derive(Default)]
struct DirData {
    /// Position -> (name, inode).
    order: BTreeMap<u64, (Vec<u8>, Arc<TmpfsInode>)>,
    /// Name -> position.
    index: HashMap<Vec<u8>, u64>,
    next_pos: u64,
    subdirs: u64,
    /// Removed by rmdir or replaced by rename: nothing can be created in it.
    removed: bool,
}

impl DirData {
    fn get(&self, name: &[u8]) -> Option<&Arc<TmpfsInode>> {
        self.index
            .get(name)
            .and_then(|pos| self.order.get(pos))
            .map(|(_, i)| i)
    }

    fn insert(&mut self, name: &[u8], inode: Arc<TmpfsInode>) {
        let pos = self.next_pos;
        self.next_pos += 1;
        if inode.file_type == FileType::Directory {
            self.subdirs += 1;
        }
        self.index.insert(name.to_vec(), pos);
        self.order.insert(pos, (name.to_vec(), inode));
    }

    fn remove(&mut self, name: &[u8]) -> Option<Arc<TmpfsInode>> {
        let pos = self.index.remove(name)?;
        let (_, inode) = self.order.remove(&pos)?;
        if inode.file_type == FileType::Directory {
            self.subdirs = self.subdirs.saturating_sub(1);
        }
        Some(inode)
    }

    /// Points an existing name at another inode, keeping its position; returns the old one.
    fn replace(&mut self, name: &[u8], inode: Arc<TmpfsInode>) -> Option<Arc<TmpfsInode>> {
        let pos = *self.index.get(name)?;
        let slot = self.order.get_mut(&pos)?;
        let is_dir = inode.file_type == FileType::Directory;
        let old = std::mem::replace(&mut slot.1, inode);
        match (old.file_type == FileType::Directory, is_dir) {
            (true, false) => self.subdirs = self.subdirs.saturating_sub(1),
            (false, true) => self.subdirs += 1,
            _ => {}
        }
        Some(old)
    }

    fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    fn take_all(&mut self) -> Vec<Arc<TmpfsInode>> {
        self.index.clear();
        self.subdirs = 0;
        std::mem::take(&mut self.order)
            .into_values()
            .map(|(_, i)| i)
            .collect()
    }
}

enum Body {
    File(FileData),
    Dir(DirData),
    Symlink(Vec<u8>),
    /// Fifos, sockets and device nodes.
    Special {
        rdev: u64,
    },
}

struct State {
    /// Type and permission bits.
    mode: u32,
    uid: u32,
    gid: u32,
    /// Links of a non-directory (directories compute theirs).
    nlink: u64,
    /// An `O_TMPFILE` file that may still be given a name by `link`.
    linkable: bool,
    atime: Timespec,
    mtime: Timespec,
    ctime: Timespec,
    xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// The access and default ACLs, shared with permission checks in progress.
    acl_access: Option<Arc<Acl>>,
    acl_default: Option<Arc<Acl>>,
    /// Bytes charged to the instance's budget, refunded when the inode is dropped.
    charged: u64,
    body: Body,
}

impl State {
    fn acl_mut(&mut self, kind: AclKind) -> &mut Option<Arc<Acl>> {
        match kind {
            AclKind::Access => &mut self.acl_access,
            AclKind::Default => &mut self.acl_default,
        }
    }

    fn dir(&self) -> Result<&DirData, Errno> {
        match &self.body {
            Body::Dir(d) => Ok(d),
            _ => Err(libc::ENOTDIR),
        }
    }

    fn dir_mut(&mut self) -> Result<&mut DirData, Errno> {
        match &mut self.body {
            Body::Dir(d) => Ok(d),
            _ => Err(libc::ENOTDIR),
        }
    }

    /// Entries changed: mtime and ctime.
    fn touch_modified(&mut self, t: Timespec) {
        self.mtime = t;
        self.ctime = t;
    }

    /// relatime: atime moves only if older than mtime or ctime, or a day old.
    fn atime_stale(&self, t: Timespec) -> bool {
        self.atime <= self.mtime
            || self.atime <= self.ctime
            || t.0.saturating_sub(self.atime.0) >= 24 * 3600
    }
}

/// An inode of a tmpfs instance.
pub struct TmpfsInode {
    fs: Arc<Shared>,
    ino: u64,
    file_type: FileType,
    this: Weak<TmpfsInode>,
    /// A directory's parent (its `..`); empty for the root and non-directories.
    parent: Mutex<Weak<TmpfsInode>>,
    state: RwLock<State>,
    /// File seals (`fcntl(F_ADD_SEALS)`): F_SEAL_SEAL from birth, as Linux's shmem files,
    /// unless memfd_create says otherwise ([`TmpfsInode::set_seals`]).
    seals: AtomicU32,
}

impl TmpfsInode {
    /// Replaces the seals (memfd_create's initial ones, fcntl's F_ADD_SEALS).
    pub fn set_seals(&self, seals: u32) {
        self.seals.store(seals, Ordering::Relaxed);
    }

    fn new(
        fs: &Arc<Shared>,
        ino: u64,
        file_type: FileType,
        perm: u32,
        owner: Owner,
        body: Body,
        charged: u64,
    ) -> Arc<TmpfsInode> {
        let t = now();
        Arc::new_cyclic(|this| TmpfsInode {
            fs: fs.clone(),
            ino,
            file_type,
            this: this.clone(),
            parent: Mutex::new(Weak::new()),
            seals: AtomicU32::new(crate::vfs::seals::F_SEAL_SEAL),
            state: RwLock::new(State {
                mode: file_type.mode_bits() | perm,
                uid: owner.uid,
                gid: owner.gid,
                nlink: 1,
                linkable: false,
                atime: t,
                mtime: t,
                ctime: t,
                xattrs: BTreeMap::new(),
                acl_access: None,
                acl_default: None,
                charged,
                body,
            }),
        })
    }

    /// A new inode of this instance, charged to its budgets.
    fn alloc(&self, node: NewNode, perm: u32, owner: Owner) -> Result<Arc<TmpfsInode>, Errno> {
        let file_type = node.file_type();
        let (body, bytes) = match node {
            NewNode::Regular => (Body::File(FileData::default()), 0),
            NewNode::Directory => (Body::Dir(DirData::default()), 0),
            NewNode::Symlink(target) => {
                if target.is_empty() {
                    return Err(libc::ENOENT);
                }
                if target.len() + 1 > PAGE as usize {
                    return Err(libc::ENAMETOOLONG);
                }
                let bytes = if target.len() + 1 > SHORT_SYMLINK_LEN {
                    PAGE
                } else {
                    0
                };
                (Body::Symlink(target), bytes)
            }
            NewNode::Fifo | NewNode::Socket => (Body::Special { rdev: 0 }, 0),
            NewNode::CharDevice(rdev) | NewNode::BlockDevice(rdev) => (Body::Special { rdev }, 0),
        };
        let space = &self.fs.space;
        Space::take(&space.inodes, space.max_inodes, 1)?;
        if let Err(e) = space.charge(bytes) {
            Space::give(&space.inodes, 1);
            return Err(e);
        }
        let perm = if file_type == FileType::Symlink {
            0o777
        } else {
            perm & 0o7777
        };
        let ino = self.fs.next_ino.fetch_add(1, Ordering::Relaxed);
        Ok(TmpfsInode::new(
            &self.fs, ino, file_type, perm, owner, body, bytes,
        ))
    }

    /// Owner and permission bits of a new child, with setgid-directory inheritance.
    fn child_owner(parent: &State, is_dir: bool, perm: u32, owner: Owner) -> (u32, Owner) {
        if parent.mode & libc::S_ISGID != 0 {
            let perm = if is_dir { perm | libc::S_ISGID } else { perm };
            (
                perm,
                Owner {
                    uid: owner.uid,
                    gid: parent.gid,
                },
            )
        } else {
            (perm, owner)
        }
    }

    fn arc(&self) -> Option<Arc<TmpfsInode>> {
        self.this.upgrade()
    }

    /// The inode number.
    pub fn ino(&self) -> u64 {
        self.ino
    }

    /// A directory's parent (`..`); `None` for the root, non-directories, and a directory
    /// whose parent is gone.
    pub fn parent(&self) -> Option<Arc<TmpfsInode>> {
        lock(&self.parent).upgrade()
    }

    /// `O_TMPFILE`: a regular file in this directory's filesystem with no name (nlink 0)
    /// that `link` may name later. The VFS drops linkability for `O_EXCL` by not linking.
    pub fn create_tmpfile(&self, mode: u32, owner: Owner) -> Result<Arc<dyn Inode>, Errno> {
        if self.file_type != FileType::Directory {
            return Err(libc::ENOTDIR);
        }
        let (perm, owner) = {
            let st = rd(&self.state);
            if st.dir()?.removed {
                return Err(libc::ENOENT);
            }
            Self::child_owner(&st, false, mode, owner)
        };
        let inode = self.alloc(NewNode::Regular, perm, owner)?;
        {
            let mut st = wr(&inode.state);
            st.nlink = 0;
            st.linkable = true;
        }
        Ok(inode)
    }

    /// Whether `self` is `of` or one of its ancestors. Parent pointers only change under
    /// the rename lock, which the caller holds.
    fn is_ancestor_or_self(&self, of: &Arc<TmpfsInode>) -> bool {
        let mut cur = of.clone();
        loop {
            if std::ptr::eq(&*cur, self) {
                return true;
            }
            let parent = lock(&cur.parent).upgrade();
            match parent {
                Some(p) => cur = p,
                None => return false,
            }
        }
    }

    /// `other` as an inode of this same instance, else EXDEV.
    fn same_fs(&self, other: &Arc<dyn Inode>) -> Result<Arc<TmpfsInode>, Errno> {
        let t = other
            .as_any()
            .downcast_ref::<TmpfsInode>()
            .ok_or(libc::EXDEV)?;
        if !Arc::ptr_eq(&t.fs, &self.fs) {
            return Err(libc::EXDEV);
        }
        t.arc().ok_or(libc::ENOENT)
    }

    fn charge<'a>(&'a self, charged: &'a mut u64) -> Charge<'a> {
        Charge {
            space: &self.fs.space,
            charged,
        }
    }

    fn rename_locked(
        &self,
        old: &[u8],
        nd: &Arc<TmpfsInode>,
        new: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        let same_dir = std::ptr::eq(self, &**nd);
        // Two directory locks in inode order; we also hold the rename lock, so the order is
        // belt and braces.
        let (mut g_old, mut g_new) = if same_dir {
            (wr(&self.state), None)
        } else if self.ino < nd.ino {
            let a = wr(&self.state);
            (a, Some(wr(&nd.state)))
        } else {
            let b = wr(&nd.state);
            (wr(&self.state), Some(b))
        };

        let src = g_old.dir()?.get(old).cloned().ok_or(libc::ENOENT)?;
        let (dst, nd_removed) = {
            let d = match &g_new {
                Some(g) => g.dir()?,
                None => g_old.dir()?,
            };
            (d.get(new).cloned(), d.removed)
        };
        if flags & libc::RENAME_NOREPLACE != 0 && dst.is_some() {
            return Err(libc::EEXIST);
        }
        let exchange = flags & libc::RENAME_EXCHANGE != 0;
        if exchange && dst.is_none() {
            return Err(libc::ENOENT);
        }
        // Linux's "source should not be ancestor of target" and "target should not be an
        // ancestor of source" (the VFS checks these too; a cycle would orphan a subtree).
        if src.file_type == FileType::Directory && src.is_ancestor_or_self(nd) {
            return Err(libc::EINVAL);
        }
        let self_arc = self.arc().ok_or(libc::ENOENT)?;
        if let Some(dst) = &dst {
            if dst.file_type == FileType::Directory && dst.is_ancestor_or_self(&self_arc) {
                return Err(if exchange {
                    libc::EINVAL
                } else {
                    libc::ENOTEMPTY
                });
            }
            if Arc::ptr_eq(&src, dst) {
                // Two names of one inode (or one name): nothing to do.
                return Ok(());
            }
        }
        let src_dir = src.file_type == FileType::Directory;
        let t = now();

        if exchange {
            let Some(dst) = dst else {
                return Err(libc::ENOENT);
            };
            let dst_dir = dst.file_type == FileType::Directory;
            g_old.dir_mut()?.replace(old, dst.clone());
            match g_new.as_mut() {
                Some(g) => g.dir_mut()?,
                None => g_old.dir_mut()?,
            }
            .replace(new, src.clone());
            if src_dir {
                *lock(&src.parent) = Arc::downgrade(nd);
            }
            if dst_dir {
                *lock(&dst.parent) = self.this.clone();
            }
            wr(&src.state).ctime = t;
            wr(&dst.state).ctime = t;
        } else {
            // Every check before any change.
            let mut dst_state = None;
            if let Some(dst) = &dst {
                let dst_dir = dst.file_type == FileType::Directory;
                if src_dir && !dst_dir {
                    return Err(libc::ENOTDIR);
                }
                if !src_dir && dst_dir {
                    return Err(libc::EISDIR);
                }
                // Not the old directory (checked above: it would be an ancestor) nor the new
                // one (a directory does not contain itself), so this lock is not held yet.
                let ds = wr(&dst.state);
                if dst_dir && !ds.dir()?.is_empty() {
                    return Err(libc::ENOTEMPTY);
                }
                dst_state = Some(ds);
            } else if nd_removed {
                return Err(libc::ENOENT);
            }
            // RENAME_WHITEOUT leaves a 0:0 character device at the old name; made before
            // anything moves so that ENOSPC leaves the tree untouched. Its owner is root:
            // the VFS allows whiteouts only with CAP_MKNOD and the contract does not carry
            // the caller's ids.
            let whiteout = if flags & libc::RENAME_WHITEOUT != 0 {
                Some(self.alloc(NewNode::CharDevice(0), 0, Owner { uid: 0, gid: 0 })?)
            } else {
                None
            };
            if let Some(mut ds) = dst_state {
                match &mut ds.body {
                    Body::Dir(d) => d.removed = true,
                    _ => self.fs.drop_link(&mut ds),
                }
                ds.ctime = t;
            }
            g_old.dir_mut()?.remove(old);
            let target = match g_new.as_mut() {
                Some(g) => g.dir_mut()?,
                None => g_old.dir_mut()?,
            };
            if dst.is_some() {
                target.replace(new, src.clone());
            } else {
                target.insert(new, src.clone());
            }
            if let Some(w) = whiteout {
                g_old.dir_mut()?.insert(old, w);
            }
            if src_dir {
                *lock(&src.parent) = Arc::downgrade(nd);
            }
            wr(&src.state).ctime = t;
        }
        g_old.touch_modified(t);
        if let Some(g) = g_new.as_mut() {
            g.touch_modified(t);
        }
        Ok(())
    }

    fn xattr_name(&self, name: &[u8]) -> Result<bool, Errno> {
        if name.is_empty() || name.len() > XATTR_NAME_MAX {
            return Err(libc::ERANGE);
        }
        let user = name.starts_with(b"user.");
        let rest = [b"user.".as_slice(), b"trusted.", b"security."]
            .iter()
            .find(|p| name.starts_with(p))
            .map(|p| &name[p.len()..])
            // system.* holds POSIX ACLs, which tmpfs does not enforce: refuse rather than
            // store ACLs that mean nothing (Linux without CONFIG_TMPFS_POSIX_ACL).
            .ok_or(libc::EOPNOTSUPP)?;
        if rest.is_empty() {
            return Err(libc::EINVAL);
        }
        Ok(user)
    }

    /// Symlinks have no ACLs (Linux: EOPNOTSUPP).
    fn acls_allowed(&self) -> Result<(), Errno> {
        if self.file_type == FileType::Symlink {
            Err(libc::EOPNOTSUPP)
        } else {
            Ok(())
        }
    }

    /// Stores (or with `None` removes) an ACL, as Linux's `simple_set_acl`: a default ACL
    /// only on a directory; an access ACL rewrites the mode's permission bits and is
    /// dropped when they say all it says. Its bytes are charged like an xattr's.
    fn set_acl(&self, kind: AclKind, acl: Option<Acl>) -> Result<(), Errno> {
        self.acls_allowed()?;
        if kind == AclKind::Default && self.file_type != FileType::Directory {
            return if acl.is_some() {
                Err(libc::EACCES)
            } else {
                Ok(())
            };
        }
        let mut st = wr(&self.state);
        let mut acl = acl;
        let mut mode = st.mode;
        if kind == AclKind::Access {
            if let Some(a) = &acl {
                let keep;
                (mode, keep) = a.equiv_mode(st.mode);
                if !keep {
                    acl = None;
                }
            }
        }
        let bytes = |a: &Option<Arc<Acl>>| {
            a.as_ref()
                .map_or(0, |a| (kind.xattr_name().len() + a.xattr_len()) as u64)
        };
        let acl = acl.map(Arc::new);
        let (old_bytes, new_bytes) = (bytes(st.acl_mut(kind)), bytes(&acl));
        let State { charged, .. } = &mut *st;
        let mut charge = self.charge(charged);
        if new_bytes > old_bytes {
            charge.take(new_bytes - old_bytes)?;
        } else {
            charge.give_back(old_bytes - new_bytes);
        }
        *st.acl_mut(kind) = acl;
        st.mode = mode;
        st.ctime = now();
        Ok(())
    }

    /// Linux keeps user.* xattrs to regular files and directories.
    fn user_xattrs_allowed(&self) -> bool {
        matches!(self.file_type, FileType::Regular | FileType::Directory)
    }
}

impl Drop for TmpfsInode {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        self.fs.space.refund(st.charged);
        Space::give(&self.fs.space.inodes, 1);
        // Tear a directory tree down iteratively: recursive drops of a deep tree (which a
        // guest can build) would overflow the stack.
        let mut stack = match &mut st.body {
            Body::Dir(d) => d.take_all(),
            _ => return,
        };
        while let Some(child) = stack.pop() {
            if let Ok(mut inner) = Arc::try_unwrap(child) {
                let cst = inner.state.get_mut().unwrap_or_else(|e| e.into_inner());
                if let Body::Dir(d) = &mut cst.body {
                    stack.extend(d.take_all());
                }
                // `inner` drops here with no children left.
            }
        }
    }
}

impl Inode for TmpfsInode {
    fn seals(&self) -> u32 {
        self.seals.load(Ordering::Relaxed)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        let st = rd(&self.state);
        let (nlink, size, blocks, rdev) = match &st.body {
            Body::File(f) => (st.nlink, f.size() as i64, f.pages() * (PAGE / 512), 0),
            Body::Dir(d) => {
                let nlink = if d.removed { 0 } else { 2 + d.subdirs };
                let size = 2 * BOGO_DIRENT_SIZE + BOGO_DIRENT_SIZE * d.order.len() as i64;
                (nlink, size, 0, 0)
            }
            Body::Symlink(t) => {
                let blocks = if t.len() + 1 > SHORT_SYMLINK_LEN {
                    PAGE / 512
                } else {
                    0
                };
                (st.nlink, t.len() as i64, blocks, 0)
            }
            Body::Special { rdev } => (st.nlink, 0, 0, *rdev),
        };
        Ok(Stat {
            dev: self.fs.dev,
            ino: self.ino,
            nlink,
            mode: st.mode,
            uid: st.uid,
            gid: st.gid,
            rdev,
            size,
            blksize: PAGE as i64,
            blocks: blocks as i64,
            atime: st.atime,
            mtime: st.mtime,
            ctime: st.ctime,
        })
    }

    fn file_type(&self) -> FileType {
        self.file_type
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        if self.file_type != FileType::Directory {
            return Err(libc::ENOTDIR);
        }
        // `.` and `..` are the VFS's.
        check_name(name, libc::EINVAL)?;
        let st = rd(&self.state);
        match st.dir()?.get(name) {
            Some(i) => Ok(i.clone()),
            None => Err(libc::ENOENT),
        }
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        let t = now();
        let (entries, stale) = {
            let st = rd(&self.state);
            let d = st.dir()?;
            let entries = d
                .order
                .values()
                .map(|(name, i)| DirEntry {
                    name: name.clone(),
                    ino: i.ino,
                    file_type: i.file_type,
                })
                .collect();
            (entries, st.atime_stale(t))
        };
        if stale {
            wr(&self.state).atime = t;
        }
        Ok(entries)
    }

    fn create(
        &self,
        name: &[u8],
        node: NewNode,
        mode: u32,
        owner: Owner,
    ) -> Result<Arc<dyn Inode>, Errno> {
        if self.file_type != FileType::Directory {
            return Err(libc::ENOTDIR);
        }
        check_name(name, libc::EEXIST)?;
        let is_dir = node == NewNode::Directory;
        let mut st = wr(&self.state);
        let d = st.dir()?;
        if d.removed {
            return Err(libc::ENOENT);
        }
        if d.get(name).is_some() {
            return Err(libc::EEXIST);
        }
        let (perm, owner) = Self::child_owner(&st, is_dir, mode, owner);
        let child = self.alloc(node, perm, owner)?;
        if is_dir {
            *lock(&child.parent) = self.this.clone();
        }
        st.dir_mut()?.insert(name, child.clone());
        st.touch_modified(now());
        Ok(child)
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Inode>) -> Result<(), Errno> {
        if self.file_type != FileType::Directory {
            return Err(libc::ENOTDIR);
        }
        check_name(name, libc::EEXIST)?;
        let target = self.same_fs(target)?;
        let mut st = wr(&self.state);
        let d = st.dir()?;
        if d.removed {
            return Err(libc::ENOENT);
        }
        if d.get(name).is_some() {
            return Err(libc::EEXIST);
        }
        if target.file_type == FileType::Directory {
            return Err(libc::EPERM);
        }
        let t = now();
        {
            // A non-directory: a leaf lock.
            let mut ts = wr(&target.state);
            if ts.nlink == 0 && !ts.linkable {
                return Err(libc::ENOENT);
            }
            if ts.nlink >= u64::from(u32::MAX) {
                return Err(libc::EMLINK);
            }
            // Every extra name takes an inode slot, as on Linux: names cost memory, and a
            // guest must not make unbounded numbers of them.
            if ts.nlink > 0 {
                Space::take(&self.fs.space.inodes, self.fs.space.max_inodes, 1)?;
            }
            ts.nlink += 1;
            ts.linkable = false;
            ts.ctime = t;
        }
        st.dir_mut()?.insert(name, target);
        st.touch_modified(t);
        Ok(())
    }

    fn unlink(&self, name: &[u8], dir: bool) -> Result<(), Errno> {
        if self.file_type != FileType::Directory {
            return Err(libc::ENOTDIR);
        }
        // rmdir(".") is EINVAL, rmdir("..") ENOTEMPTY, unlink of either EISDIR.
        match (name, dir) {
            (b".", true) => return Err(libc::EINVAL),
            (b"..", true) => return Err(libc::ENOTEMPTY),
            (b"." | b"..", false) => return Err(libc::EISDIR),
            _ => check_name(name, libc::EINVAL)?,
        }
        let t = now();
        if dir {
            // Locks the child directory under its parent: rename lock first.
            let _rename = lock(&self.fs.rename_lock);
            let mut st = wr(&self.state);
            let child = st.dir()?.get(name).cloned().ok_or(libc::ENOENT)?;
            if child.file_type != FileType::Directory {
                return Err(libc::ENOTDIR);
            }
            {
                let mut cs = wr(&child.state);
                let cd = cs.dir_mut()?;
                if !cd.is_empty() {
                    return Err(libc::ENOTEMPTY);
                }
                cd.removed = true;
                cs.ctime = t;
            }
            st.dir_mut()?.remove(name);
            st.touch_modified(t);
        } else {
            let mut st = wr(&self.state);
            let child = st.dir()?.get(name).cloned().ok_or(libc::ENOENT)?;
            if child.file_type == FileType::Directory {
                return Err(libc::EISDIR);
            }
            {
                let mut cs = wr(&child.state);
                self.fs.drop_link(&mut cs);
                cs.ctime = t;
            }
            st.dir_mut()?.remove(name);
            st.touch_modified(t);
        }
        Ok(())
    }

    fn rename(
        &self,
        old: &[u8],
        new_dir: &Arc<dyn Inode>,
        new: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        if self.file_type != FileType::Directory {
            return Err(libc::ENOTDIR);
        }
        let known = libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE | libc::RENAME_WHITEOUT;
        if flags & !known != 0
            || (flags & libc::RENAME_EXCHANGE != 0
                && flags & (libc::RENAME_NOREPLACE | libc::RENAME_WHITEOUT) != 0)
        {
            return Err(libc::EINVAL);
        }
        check_name(old, libc::EBUSY)?;
        check_name(new, libc::EBUSY)?;
        let nd = self.same_fs(new_dir)?;
        if nd.file_type != FileType::Directory {
            return Err(libc::ENOTDIR);
        }
        let _rename = lock(&self.fs.rename_lock);
        self.rename_locked(old, &nd, new, flags)
    }

    fn create_tmpfile(
        &self,
        mode: u32,
        owner: Owner,
        linkable: bool,
    ) -> Result<Arc<dyn Inode>, Errno> {
        let inode = TmpfsInode::create_tmpfile(self, mode, owner)?;
        if !linkable {
            if let Some(t) = inode.as_any().downcast_ref::<TmpfsInode>() {
                wr(&t.state).linkable = false;
            }
        }
        Ok(inode)
    }

    fn seek_data_or_hole(&self, offset: u64, hole: bool) -> Result<u64, Errno> {
        let st = rd(&self.state);
        match &st.body {
            Body::File(f) => f.seek(offset, hole).ok_or(libc::ENXIO),
            _ => Err(libc::EINVAL),
        }
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        let t = now();
        let (n, stale) = {
            let st = rd(&self.state);
            match &st.body {
                Body::File(f) => (f.read(offset, buf), st.atime_stale(t)),
                Body::Dir(_) => return Err(libc::EISDIR),
                _ => return Err(libc::EINVAL),
            }
        };
        if stale {
            wr(&self.state).atime = t;
        }
        Ok(n)
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        let mut st = wr(&self.state);
        let State { body, charged, .. } = &mut *st;
        let n = match body {
            Body::File(f) => f.write(&mut self.charge(charged), offset, buf)?,
            Body::Dir(_) => return Err(libc::EISDIR),
            _ => return Err(libc::EINVAL),
        };
        if n > 0 {
            st.touch_modified(now());
        }
        Ok(n)
    }

    fn allocate(&self, mode: i32, offset: u64, len: u64) -> Result<(), Errno> {
        use libc::{
            FALLOC_FL_COLLAPSE_RANGE as COLLAPSE, FALLOC_FL_INSERT_RANGE as INSERT,
            FALLOC_FL_KEEP_SIZE as KEEP, FALLOC_FL_PUNCH_HOLE as PUNCH,
            FALLOC_FL_UNSHARE_RANGE as UNSHARE, FALLOC_FL_ZERO_RANGE as ZERO,
        };
        // The checks of Linux's vfs_fallocate, in its order.
        if offset > MAX_FILE_SIZE || len == 0 || len > MAX_FILE_SIZE {
            return Err(libc::EINVAL);
        }
        if mode & !(PUNCH | COLLAPSE | ZERO | INSERT | UNSHARE | KEEP) != 0 {
            return Err(libc::EOPNOTSUPP);
        }
        if mode & (PUNCH | ZERO) == PUNCH | ZERO {
            return Err(libc::EOPNOTSUPP);
        }
        if mode & PUNCH != 0 && mode & KEEP == 0 {
            return Err(libc::EOPNOTSUPP);
        }
        if (mode & COLLAPSE != 0 && mode & !COLLAPSE != 0)
            || (mode & INSERT != 0 && mode & !INSERT != 0)
            || (mode & UNSHARE != 0 && mode & !(UNSHARE | KEEP) != 0)
        {
            return Err(libc::EINVAL);
        }
        match self.file_type {
            FileType::Regular => {}
            FileType::Fifo => return Err(libc::ESPIPE),
            FileType::Directory => return Err(libc::EISDIR),
            _ => return Err(libc::ENODEV),
        }
        let end = match offset.checked_add(len) {
            Some(end) if end <= MAX_FILE_SIZE => end,
            _ => return Err(libc::EFBIG),
        };
        // What tmpfs itself supports. Linux's shmem stops at KEEP_SIZE | PUNCH_HOLE; we
        // also do ZERO_RANGE (as ext4 does), which the VFS issue asks for.
        if mode & !(KEEP | PUNCH | ZERO) != 0 {
            return Err(libc::EOPNOTSUPP);
        }
        let mut st = wr(&self.state);
        let State { body, charged, .. } = &mut *st;
        let Body::File(f) = body else {
            return Err(libc::ENODEV);
        };
        // Seals, as Linux's shmem_fallocate: no hole in a write-sealed file, no growth
        // (even with KEEP_SIZE) past the size of a grow-sealed one.
        use crate::vfs::seals::{F_SEAL_FUTURE_WRITE, F_SEAL_GROW, F_SEAL_WRITE};
        let seals = self.seals();
        if mode & (PUNCH | ZERO) != 0 && seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE) != 0 {
            return Err(libc::EPERM);
        }
        if seals & F_SEAL_GROW != 0 && end > f.size() {
            return Err(libc::EPERM);
        }
        let mut charge = self.charge(charged);
        if mode & PUNCH != 0 {
            f.punch_hole(&mut charge, offset, end);
        } else {
            f.allocate(&mut charge, offset, end, mode & ZERO != 0, mode & KEEP != 0)?;
        }
        st.touch_modified(now());
        Ok(())
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        let t = now();
        let (target, stale) = {
            let st = rd(&self.state);
            match &st.body {
                Body::Symlink(target) => (target.clone(), st.atime_stale(t)),
                _ => return Err(libc::EINVAL),
            }
        };
        if stale {
            wr(&self.state).atime = t;
        }
        Ok(target)
    }

    fn setattr(&self, attr: &SetAttr) -> Result<(), Errno> {
        use crate::vfs::seals::{F_SEAL_EXEC, F_SEAL_GROW, F_SEAL_SHRINK};
        let mut st = wr(&self.state);
        // Seals first, as Linux's shmem_setattr: no size change they forbid, no change of
        // the execute bits under F_SEAL_EXEC.
        let seals = self.seals();
        if let (Some(size), Body::File(f)) = (attr.size, &st.body) {
            let old = f.size();
            if (size < old && seals & F_SEAL_SHRINK != 0)
                || (size > old && seals & F_SEAL_GROW != 0)
            {
                return Err(libc::EPERM);
            }
        }
        if let Some(mode) = attr.mode {
            if seals & F_SEAL_EXEC != 0 && (st.mode ^ mode) & 0o111 != 0 {
                return Err(libc::EPERM);
            }
        }
        // Validate everything before changing anything.
        if let Some(size) = attr.size {
            match self.file_type {
                FileType::Regular => {}
                FileType::Directory => return Err(libc::EISDIR),
                _ => return Err(libc::EINVAL),
            }
            if size > MAX_FILE_SIZE {
                return Err(libc::EFBIG);
            }
        }
        let t = now();
        let mut changed = false;
        if let Some(size) = attr.size {
            let State { body, charged, .. } = &mut *st;
            if let Body::File(f) = body {
                if f.size() != size {
                    f.truncate(&mut self.charge(charged), size)?;
                    changed = true;
                }
            }
            // A size change is a modification.
            if changed {
                st.mtime = t;
            }
        }
        if let Some(mode) = attr.mode {
            st.mode = (st.mode & libc::S_IFMT) | (mode & 0o7777);
            if let Some(acl) = st.acl_access.as_mut() {
                Arc::make_mut(acl).chmod(mode);
            }
            changed = true;
        }
        if attr.uid.is_some() || attr.gid.is_some() {
            if let Some(uid) = attr.uid {
                st.uid = uid;
            }
            if let Some(gid) = attr.gid {
                st.gid = gid;
            }
            // Linux's chown kills setuid, and setgid when group-executable (setgid without
            // group-exec is a locking mark), on non-directories; an explicit mode wins.
            if self.file_type != FileType::Directory && attr.mode.is_none() {
                st.mode &= !libc::S_ISUID;
                if st.mode & libc::S_IXGRP != 0 {
                    st.mode &= !libc::S_ISGID;
                }
            }
            changed = true;
        }
        if let Some(a) = attr.atime {
            st.atime = a;
            changed = true;
        }
        if let Some(m) = attr.mtime {
            st.mtime = m;
            changed = true;
        }
        // A truncate to the current size changes nothing, as truncate(2) on Linux.
        if changed {
            st.ctime = t;
        }
        Ok(())
    }

    fn getxattr(&self, name: &[u8]) -> Result<Vec<u8>, Errno> {
        if let Some(kind) = AclKind::from_xattr_name(name) {
            return self.acl(kind)?.map(|a| a.to_xattr()).ok_or(libc::ENODATA);
        }
        let user = self.xattr_name(name)?;
        if user && !self.user_xattrs_allowed() {
            return Err(libc::ENODATA);
        }
        rd(&self.state)
            .xattrs
            .get(name)
            .cloned()
            .ok_or(libc::ENODATA)
    }

    fn setxattr(&self, name: &[u8], value: &[u8], flags: i32) -> Result<(), Errno> {
        if flags & !(libc::XATTR_CREATE | libc::XATTR_REPLACE) != 0 {
            return Err(libc::EINVAL);
        }
        if name.is_empty() || name.len() > XATTR_NAME_MAX {
            return Err(libc::ERANGE);
        }
        if value.len() > XATTR_SIZE_MAX {
            return Err(libc::E2BIG);
        }
        if let Some(kind) = AclKind::from_xattr_name(name) {
            // As Linux since 6.2, ACLs are set whatever XATTR_CREATE/REPLACE say.
            return self.set_acl(kind, Acl::from_xattr(value)?);
        }
        let user = self.xattr_name(name)?;
        if user && !self.user_xattrs_allowed() {
            return Err(libc::EPERM);
        }
        let mut st = wr(&self.state);
        let old = st.xattrs.get(name).map(|v| v.len());
        match old {
            Some(_) if flags & libc::XATTR_CREATE != 0 => return Err(libc::EEXIST),
            None if flags & libc::XATTR_REPLACE != 0 => return Err(libc::ENODATA),
            _ => {}
        }
        let old_bytes = old.map_or(0, |v| (name.len() + v) as u64);
        let new_bytes = (name.len() + value.len()) as u64;
        let State {
            charged, xattrs, ..
        } = &mut *st;
        let mut charge = self.charge(charged);
        if new_bytes > old_bytes {
            charge.take(new_bytes - old_bytes)?;
        } else {
            charge.give_back(old_bytes - new_bytes);
        }
        xattrs.insert(name.to_vec(), value.to_vec());
        st.ctime = now();
        Ok(())
    }

    fn listxattr(&self) -> Result<Vec<Vec<u8>>, Errno> {
        let st = rd(&self.state);
        let mut names: Vec<Vec<u8>> = st.xattrs.keys().cloned().collect();
        for (kind, acl) in [
            (AclKind::Access, &st.acl_access),
            (AclKind::Default, &st.acl_default),
        ] {
            if acl.is_some() {
                names.push(kind.xattr_name().to_vec());
            }
        }
        Ok(names)
    }

    fn removexattr(&self, name: &[u8]) -> Result<(), Errno> {
        if let Some(kind) = AclKind::from_xattr_name(name) {
            return self.set_acl(kind, None);
        }
        let user = self.xattr_name(name)?;
        if user && !self.user_xattrs_allowed() {
            return Err(libc::EPERM);
        }
        let mut st = wr(&self.state);
        let State {
            charged, xattrs, ..
        } = &mut *st;
        let value = xattrs.remove(name).ok_or(libc::ENODATA)?;
        self.charge(charged)
            .give_back((name.len() + value.len()) as u64);
        st.ctime = now();
        Ok(())
    }

    fn acl(&self, kind: AclKind) -> Result<Option<Arc<Acl>>, Errno> {
        self.acls_allowed()?;
        let st = rd(&self.state);
        Ok(match kind {
            AclKind::Access => st.acl_access.clone(),
            AclKind::Default => st.acl_default.clone(),
        })
    }

    fn statfs(&self) -> Result<StatFs, Errno> {
        let space = &self.fs.space;
        let used = space.used.load(Ordering::Acquire);
        let inodes = space.inodes.load(Ordering::Acquire);
        let free = space.capacity.saturating_sub(used) / PAGE;
        Ok(StatFs {
            fs_type: TMPFS_MAGIC,
            block_size: PAGE as i64,
            blocks: space.capacity / PAGE,
            blocks_free: free,
            blocks_available: free,
            files: space.max_inodes,
            files_free: space.max_inodes.saturating_sub(inodes),
            name_max: NAME_MAX as i64,
            flags: 0,
        })
    }
}
