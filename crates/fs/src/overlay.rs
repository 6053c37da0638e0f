//! An overlay: a read-only lower filesystem under a writable upper one, as Linux's
//! overlayfs. `runsc do` puts a tmpfs over the host root so writes land in memory; the same
//! mechanics stack ImgFS layers under a writable layer for containers.
//!
//! Conventions are overlayfs's: a whiteout is a 0:0 character device in the upper layer, and
//! an upper directory that hides everything below carries `trusted.overlay.opaque = "y"`.
//! Changing a file that exists only below first copies it up (data, mode, owner, times,
//! xattrs), with its parent directories.
//!
//! # Identity across copy-up
//!
//! A file keeps its `st_dev` and `st_ino` for its life in the sandbox, whatever layer holds
//! it, as overlayfs's `xino` gives Linux: programs that walk trees (fts: rm -r, find, du,
//! chmod -R) compare a directory's identity before and after they enter it, and a copy-up
//! in between must not look like the tree changing under them. A file that exists below
//! reports the lower file's identity, also once copied up: the upper copy records it in the
//! xattr `trusted.overlay.origin` (overlayfs's name), so a later lookup that finds only the
//! upper copy still knows it. A file created in the upper layer reports its own.
//!
//! Hard links stay hard links across copy-up (overlayfs's `index` feature): the first name
//! of a multiply-linked lower file to be copied up is copied, and the overlay remembers the
//! copy by the lower identity; the other names then read it, and become links to it when
//! they are copied up in turn. Link counts add what is left below to what is above.
//! A directory holding both layers reports a link count of 1, as overlayfs does for merged
//! directories ("unknown" to fts and find, which then don't count subdirectories).

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use crate::vfs::{DirEntry, FileType, Inode, NewNode, Owner, SetAttr, StatFs};
use crate::{Errno, FileDescription, Stat};

const OPAQUE_XATTR: &[u8] = b"trusted.overlay.opaque";
/// On an upper copy: the identity (`dev`, `ino`, little-endian u64s) of the file it was
/// copied from.
const ORIGIN_XATTR: &[u8] = b"trusted.overlay.origin";
/// The overlay's own xattrs: never shown to programs nor copied up from a lower layer.
const PRIVATE_XATTRS: &[u8] = b"trusted.overlay.";
/// Bytes copied per step when copying a file up.
const COPY_CHUNK: usize = 1 << 20;

/// Whether `inode` (in an upper layer) is a whiteout.
fn is_whiteout(inode: &Arc<dyn Inode>) -> bool {
    inode.file_type() == FileType::CharDevice && inode.stat().map(|s| s.rdev == 0).unwrap_or(false)
}

fn is_opaque(upper: &Arc<dyn Inode>) -> bool {
    upper
        .getxattr(OPAQUE_XATTR)
        .map(|v| v == b"y")
        .unwrap_or(false)
}

/// `st_dev` and `st_ino`.
type Identity = (u64, u64);

/// What the overlay knows of a multiply-linked lower file once one of its names has been
/// copied up or removed.
struct Linked {
    /// The upper copy every name shares, once one was copied up.
    upper: Option<Arc<dyn Inode>>,
    /// The lower file's link count.
    lower_nlink: u64,
    /// Lower names since copied up, removed or renamed: they no longer count below.
    lower_gone: u64,
}

/// State shared by every file of one overlay.
struct Shared {
    /// Multiply-linked lower files, by identity.
    linked: Mutex<HashMap<Identity, Linked>>,
    /// Whether `linked` has ever had an entry (spares the lock on every read until then).
    any_linked: AtomicBool,
}

/// A file of the merged tree. There is one object per file while it is in use (directories
/// keep their children's), so that a copy-up is seen by every holder.
pub struct OverlayInode {
    me: Weak<OverlayInode>,
    shared: Arc<Shared>,
    /// The identity, found at the first stat.
    identity: OnceLock<Identity>,
    upper: Mutex<Option<Arc<dyn Inode>>>,
    lower: Option<Arc<dyn Inode>>,
    /// Parent and name, to copy up into; None for the root.
    parent: Mutex<Option<(Arc<OverlayInode>, Vec<u8>)>>,
    children: Mutex<HashMap<Vec<u8>, Weak<OverlayInode>>>,
    file_type: FileType,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Builds the root of an overlay of `upper` (writable) over `lower`.
pub fn new_overlay(upper: Arc<dyn Inode>, lower: Arc<dyn Inode>) -> Arc<dyn Inode> {
    Arc::new_cyclic(|me| OverlayInode {
        me: me.clone(),
        shared: Arc::new(Shared {
            linked: Mutex::new(HashMap::new()),
            any_linked: AtomicBool::new(false),
        }),
        identity: OnceLock::new(),
        upper: Mutex::new(Some(upper)),
        lower: Some(lower),
        parent: Mutex::new(None),
        children: Mutex::new(HashMap::new()),
        file_type: FileType::Directory,
    })
}

impl OverlayInode {
    fn upper(&self) -> Option<Arc<dyn Inode>> {
        lock(&self.upper).clone()
    }

    /// The layer that answers reads: upper once it exists; for a lower file, the upper
    /// copy made through another of its names, if any.
    fn top(&self) -> Result<Arc<dyn Inode>, Errno> {
        if let Some(u) = self.upper() {
            return Ok(u);
        }
        let lower = self.lower.clone().ok_or(libc::ENOENT)?;
        if self.file_type != FileType::Directory && self.shared.any_linked.load(Ordering::Acquire) {
            let id = self.identity()?;
            if let Some(u) = lock(&self.shared.linked)
                .get(&id)
                .and_then(|l| l.upper.clone())
            {
                return Ok(u);
            }
        }
        Ok(lower)
    }

    /// `st_dev` and `st_ino`: the lower file's, also after a copy-up (the upper copy's origin
    /// xattr says it when the lower file is no longer known), else the upper file's own.
    fn identity(&self) -> Result<Identity, Errno> {
        if let Some(&id) = self.identity.get() {
            return Ok(id);
        }
        let id = match (&self.lower, self.upper()) {
            (Some(l), _) => {
                let st = l.stat()?;
                (st.dev, st.ino)
            }
            (None, Some(u)) => match u
                .getxattr(ORIGIN_XATTR)
                .ok()
                .and_then(|v| decode_origin(&v))
            {
                Some(id) => id,
                None => {
                    let st = u.stat()?;
                    (st.dev, st.ino)
                }
            },
            (None, None) => return Err(libc::ENOENT),
        };
        Ok(*self.identity.get_or_init(|| id))
    }

    /// The merged link count of a non-directory that is (or was) multiply linked below.
    fn linked_nlink(&self, id: Identity, upper_nlink: Option<u64>) -> Option<u64> {
        if !self.shared.any_linked.load(Ordering::Acquire) {
            return None;
        }
        let linked = lock(&self.shared.linked);
        let l = linked.get(&id)?;
        let above = match (&l.upper, upper_nlink) {
            (_, Some(n)) => n,
            (Some(u), None) => u.stat().map(|s| s.nlink).unwrap_or(0),
            (None, None) => 0,
        };
        Some(l.lower_nlink.saturating_sub(l.lower_gone) + above)
    }

    /// Notes that a lower name of a multiply-linked file no longer counts below (it was
    /// copied up, removed or renamed); `upper` is the copy made of it, if any.
    fn note_lower_gone(
        &self,
        lower_nlink: u64,
        upper: Option<Arc<dyn Inode>>,
    ) -> Result<(), Errno> {
        let id = self.identity()?;
        let mut linked = lock(&self.shared.linked);
        let l = linked.entry(id).or_insert(Linked {
            upper: None,
            lower_nlink,
            lower_gone: 0,
        });
        l.lower_gone += 1;
        if l.upper.is_none() {
            l.upper = upper;
        }
        self.shared.any_linked.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether the lower directory shows through (not hidden by an opaque upper).
    fn lower_dir(&self) -> Option<Arc<dyn Inode>> {
        let lower = self.lower.clone()?;
        if lower.file_type() != FileType::Directory {
            return None;
        }
        match self.upper() {
            Some(u) if is_opaque(&u) => None,
            _ => Some(lower),
        }
    }

    /// The merged child `name`, from this directory's cache or built from the layers.
    fn lookup_impl(&self, name: &[u8]) -> Result<Arc<OverlayInode>, Errno> {
        if let Some(c) = lock(&self.children).get(name).and_then(Weak::upgrade) {
            return Ok(c);
        }
        let upper = match self.upper() {
            Some(u) if u.file_type() == FileType::Directory => match u.lookup(name) {
                Ok(c) if is_whiteout(&c) => return Err(libc::ENOENT),
                Ok(c) => Some(c),
                Err(libc::ENOENT) => None,
                Err(e) => return Err(e),
            },
            _ => None,
        };
        // A lower entry only merges under an upper directory that isn't opaque; an upper
        // file replaces it.
        let merge_lower = match &upper {
            Some(u) => u.file_type() == FileType::Directory && !is_opaque(u),
            None => true,
        };
        let lower = match self.lower_dir() {
            Some(l) if merge_lower => match l.lookup(name) {
                Ok(c) if upper.is_none() || c.file_type() == FileType::Directory => Some(c),
                Ok(_) => None,
                Err(libc::ENOENT) => None,
                Err(e) if upper.is_none() => return Err(e),
                Err(_) => None,
            },
            _ => None,
        };
        let file_type = match (&upper, &lower) {
            (Some(u), _) => u.file_type(),
            (None, Some(l)) => l.file_type(),
            (None, None) => return Err(libc::ENOENT),
        };
        let me = self.me.upgrade().ok_or(libc::ENOENT)?;
        let child = Arc::new_cyclic(|w| OverlayInode {
            me: w.clone(),
            shared: self.shared.clone(),
            identity: OnceLock::new(),
            upper: Mutex::new(upper),
            lower,
            parent: Mutex::new(Some((me, name.to_vec()))),
            children: Mutex::new(HashMap::new()),
            file_type,
        });
        lock(&self.children).insert(name.to_vec(), Arc::downgrade(&child));
        Ok(child)
    }

    fn forget(&self, name: &[u8]) {
        lock(&self.children).remove(name);
    }

    /// RENAME_EXCHANGE: both copied up, swapped in the upper layer (directories with lower
    /// contents can't move: EXDEV, as overlayfs without redirects).
    fn exchange(
        &self,
        source: &Arc<OverlayInode>,
        new_dir: &OverlayInode,
        old: &[u8],
        new: &[u8],
    ) -> Result<(), Errno> {
        let target = new_dir.lookup_impl(new)?;
        for f in [source, &target] {
            if f.file_type == FileType::Directory && f.lower.is_some() {
                return Err(libc::EXDEV);
            }
        }
        source.copy_up()?;
        target.copy_up()?;
        let old_upper = self.copy_up()?;
        let new_upper = new_dir.copy_up()?;
        old_upper.rename(old, &new_upper, new, libc::RENAME_EXCHANGE)?;
        self.forget(old);
        new_dir.forget(new);
        if let (Some(a), Some(b)) = (self.me.upgrade(), new_dir.me.upgrade()) {
            *lock(&source.parent) = Some((b, new.to_vec()));
            *lock(&target.parent) = Some((a, old.to_vec()));
        }
        lock(&new_dir.children).insert(new.to_vec(), Arc::downgrade(source));
        lock(&self.children).insert(old.to_vec(), Arc::downgrade(&target));
        Ok(())
    }

    /// Makes sure this file has an upper copy, copying it (and its ancestors) up if needed.
    fn copy_up(&self) -> Result<Arc<dyn Inode>, Errno> {
        if let Some(u) = self.upper() {
            return Ok(u);
        }
        let lower = self.lower.clone().ok_or(libc::ENOENT)?;
        let (parent, name) = lock(&self.parent).clone().ok_or(libc::EROFS)?;
        let parent_upper = parent.copy_up()?;
        let st = lower.stat()?;
        let identity = self.identity()?;
        let multi = lower.file_type() != FileType::Directory && st.nlink > 1;
        // Held across the copy, so two names of one file are not copied twice at once.
        let linked = multi.then(|| lock(&self.shared.linked));
        let mut guard = lock(&self.upper);
        if let Some(u) = guard.as_ref() {
            return Ok(u.clone());
        }
        // Another name of this file was copied up already: this name becomes a link to it.
        if let Some(existing) = linked
            .as_ref()
            .and_then(|l| l.get(&identity))
            .and_then(|l| l.upper.clone())
        {
            parent_upper.link(&name, &existing)?;
            drop(linked);
            self.note_lower_gone(st.nlink, None)?;
            *guard = Some(existing.clone());
            return Ok(existing);
        }
        let upper = Self::copy_file(&lower, &st, &parent_upper, &name)?;
        upper.setxattr(ORIGIN_XATTR, &encode_origin(identity), 0)?;
        drop(linked);
        if multi {
            self.note_lower_gone(st.nlink, Some(upper.clone()))?;
        }
        *guard = Some(upper.clone());
        Ok(upper)
    }

    /// Copies `lower` (whose metadata is `st`) to `name` in `parent_upper`: contents, mode,
    /// owner, times and xattrs (but the overlay's own).
    fn copy_file(
        lower: &Arc<dyn Inode>,
        st: &Stat,
        parent_upper: &Arc<dyn Inode>,
        name: &[u8],
    ) -> Result<Arc<dyn Inode>, Errno> {
        let owner = Owner {
            uid: st.uid,
            gid: st.gid,
        };
        let node = match lower.file_type() {
            FileType::Regular => NewNode::Regular,
            FileType::Directory => NewNode::Directory,
            FileType::Symlink => NewNode::Symlink(lower.readlink()?),
            FileType::Fifo => NewNode::Fifo,
            FileType::Socket => NewNode::Socket,
            FileType::CharDevice => NewNode::CharDevice(st.rdev),
            FileType::BlockDevice => NewNode::BlockDevice(st.rdev),
        };
        let upper = parent_upper.create(name, node, st.mode & 0o7777, owner)?;
        if lower.file_type() == FileType::Regular {
            let mut buf = vec![0u8; COPY_CHUNK.min(st.size.max(0) as usize).max(1)];
            let mut off = 0u64;
            loop {
                let n = lower.read_at(off, &mut buf)?;
                if n == 0 {
                    break;
                }
                upper.write_at(off, &buf[..n])?;
                off += n as u64;
            }
        }
        for xattr in lower.listxattr().unwrap_or_default() {
            if xattr.starts_with(PRIVATE_XATTRS) {
                continue;
            }
            if let Ok(v) = lower.getxattr(&xattr) {
                let _ = upper.setxattr(&xattr, &v, 0);
            }
        }
        if lower.file_type() != FileType::Symlink {
            upper.setattr(&SetAttr {
                mode: Some(st.mode & 0o7777),
                atime: Some(st.atime),
                mtime: Some(st.mtime),
                ..Default::default()
            })?;
        }
        Ok(upper)
    }

    /// Removes a whiteout at `name` in this (copied-up) directory, if there is one.
    fn clear_whiteout(upper: &Arc<dyn Inode>, name: &[u8]) -> Result<bool, Errno> {
        match upper.lookup(name) {
            Ok(existing) if is_whiteout(&existing) => {
                upper.unlink(name, false)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Whether the lower layer has `name` visible in this directory.
    fn lower_has(&self, name: &[u8]) -> bool {
        self.lower_dir().is_some_and(|l| l.lookup(name).is_ok())
    }

    fn whiteout(upper: &Arc<dyn Inode>, name: &[u8]) -> Result<(), Errno> {
        upper
            .create(name, NewNode::CharDevice(0), 0, Owner { uid: 0, gid: 0 })
            .map(|_| ())
    }

    fn overlay_of(inode: &Arc<dyn Inode>) -> Option<&OverlayInode> {
        inode.as_any().downcast_ref::<OverlayInode>()
    }
}

fn encode_origin((dev, ino): Identity) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&dev.to_le_bytes());
    v[8..].copy_from_slice(&ino.to_le_bytes());
    v
}

fn decode_origin(v: &[u8]) -> Option<Identity> {
    let v: &[u8; 16] = v.try_into().ok()?;
    let (dev, ino) = v.split_at(8);
    Some((
        u64::from_le_bytes(dev.try_into().ok()?),
        u64::from_le_bytes(ino.try_into().ok()?),
    ))
}

/// The inode number a listing shows for `name` of the upper directory `dir`: its origin's
/// when it was copied up, as its `st_ino` is.
fn upper_entry_ino(dir: &Arc<dyn Inode>, name: &[u8], ino: u64) -> u64 {
    dir.lookup(name)
        .ok()
        .and_then(|c| c.getxattr(ORIGIN_XATTR).ok())
        .and_then(|v| decode_origin(&v))
        .map_or(ino, |(_, ino)| ino)
}

impl Inode for OverlayInode {
    fn stat(&self) -> Result<Stat, Errno> {
        let upper = self.upper();
        let mut st = self.top()?.stat()?;
        let (dev, ino) = self.identity()?;
        st.dev = dev;
        st.ino = ino;
        if self.file_type == FileType::Directory {
            if upper.is_some() && self.lower_dir().is_some() {
                st.nlink = 1;
            }
        } else if let Some(n) = self.linked_nlink((dev, ino), upper.is_some().then_some(st.nlink)) {
            st.nlink = n;
        }
        Ok(st)
    }

    fn mappable(&self) -> Option<&dyn crate::vfs::Mappable> {
        // A file not copied up lends the lower layer's pages (an ImgFS layer's, mapped with
        // no copy); a copy in memory (of this name or of another link) is mapped by copying.
        if lock(&self.upper).is_some() {
            return None;
        }
        let lower = self.lower.as_ref()?;
        if !Arc::ptr_eq(&self.top().ok()?, lower) {
            return None;
        }
        lower.mappable()
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
        Ok(self.lookup_impl(name)?)
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        let mut entries: Vec<DirEntry> = Vec::new();
        let mut hidden: Vec<Vec<u8>> = Vec::new();
        if let Some(u) = self.upper() {
            for e in u.readdir()? {
                if e.file_type == FileType::CharDevice
                    && u.lookup(&e.name).map(|i| is_whiteout(&i)).unwrap_or(false)
                {
                    hidden.push(e.name);
                } else {
                    hidden.push(e.name.clone());
                    let ino = upper_entry_ino(&u, &e.name, e.ino);
                    entries.push(DirEntry { ino, ..e });
                }
            }
        }
        if let Some(l) = self.lower_dir() {
            for e in l.readdir()? {
                if !hidden.contains(&e.name) {
                    entries.push(e);
                }
            }
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
        if self.lookup_impl(name).is_ok() {
            return Err(libc::EEXIST);
        }
        let upper = self.copy_up()?;
        let replaced_whiteout = Self::clear_whiteout(&upper, name)?;
        let is_dir = node == NewNode::Directory;
        let created = upper.create(name, node, mode, owner)?;
        // A new directory over a removed lower one must not show the old contents.
        if is_dir && (replaced_whiteout || self.lower_has(name)) {
            created.setxattr(OPAQUE_XATTR, b"y", 0)?;
        }
        self.forget(name);
        Ok(self.lookup_impl(name)?)
    }

    fn create_tmpfile(
        &self,
        mode: u32,
        owner: Owner,
        linkable: bool,
    ) -> Result<Arc<dyn Inode>, Errno> {
        // The unnamed file lives in the upper layer only; linking it names it there.
        self.copy_up()?.create_tmpfile(mode, owner, linkable)
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Inode>) -> Result<(), Errno> {
        let target_upper = match Self::overlay_of(target) {
            Some(t) => t.copy_up()?,
            // An O_TMPFILE file is an upper-layer inode already.
            None => target.clone(),
        };
        let upper = self.copy_up()?;
        Self::clear_whiteout(&upper, name)?;
        upper.link(name, &target_upper)?;
        self.forget(name);
        Ok(())
    }

    fn unlink(&self, name: &[u8], dir: bool) -> Result<(), Errno> {
        let victim = self.lookup_impl(name)?;
        let is_dir = victim.file_type() == FileType::Directory;
        if dir && !is_dir {
            return Err(libc::ENOTDIR);
        }
        if !dir && is_dir {
            return Err(libc::EISDIR);
        }
        if dir && !victim.readdir()?.is_empty() {
            return Err(libc::ENOTEMPTY);
        }
        let upper = self.copy_up()?;
        if victim.upper().is_none() && !is_dir {
            if let Some(l) = &victim.lower {
                let nlink = l.stat()?.nlink;
                if nlink > 1 {
                    victim.note_lower_gone(nlink, None)?;
                }
            }
        }
        if let Some(vu) = victim.upper() {
            if is_dir {
                // The upper copy may hold whiteouts of the lower contents: clear them.
                for e in vu.readdir()? {
                    vu.unlink(&e.name, e.file_type == FileType::Directory)?;
                }
            }
            upper.unlink(name, dir)?;
        }
        if self.lower_has(name) {
            Self::whiteout(&upper, name)?;
        }
        self.forget(name);
        Ok(())
    }

    fn rename(
        &self,
        old: &[u8],
        new_dir: &Arc<dyn Inode>,
        new: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        let new_dir = Self::overlay_of(new_dir).ok_or(libc::EXDEV)?;
        let source_ov = self.lookup_impl(old)?;
        let source: Arc<dyn Inode> = source_ov.clone();
        // A directory with lower contents would need redirects; overlayfs says EXDEV and
        // mv copies instead.
        if source.file_type() == FileType::Directory && source_ov.lower.is_some() {
            return Err(libc::EXDEV);
        }
        if flags & libc::RENAME_EXCHANGE != 0 {
            return self.exchange(&source_ov, new_dir, old, new);
        }
        if let Ok(target) = new_dir.lookup_impl(new) {
            if flags & libc::RENAME_NOREPLACE != 0 {
                return Err(libc::EEXIST);
            }
            match (
                source.file_type() == FileType::Directory,
                target.file_type() == FileType::Directory,
            ) {
                (true, false) => return Err(libc::ENOTDIR),
                (false, true) => return Err(libc::EISDIR),
                (true, true) if !target.readdir()?.is_empty() => return Err(libc::ENOTEMPTY),
                _ => {}
            }
        }
        source_ov.copy_up()?;
        let old_upper = self.copy_up()?;
        let new_upper = new_dir.copy_up()?;
        Self::clear_whiteout(&new_upper, new)?;
        let new_hides_lower = new_dir.lower_has(new);
        old_upper.rename(old, &new_upper, new, flags & libc::RENAME_NOREPLACE)?;
        if self.lower_has(old) {
            Self::whiteout(&old_upper, old)?;
        }
        if new_hides_lower && source.file_type() == FileType::Directory {
            if let Ok(moved) = new_upper.lookup(new) {
                moved.setxattr(OPAQUE_XATTR, b"y", 0)?;
            }
        }
        // The object moves with its name: same copy-up state, new place.
        self.forget(old);
        new_dir.forget(new);
        if let Some(new_dir_arc) = new_dir.me.upgrade() {
            *lock(&source_ov.parent) = Some((new_dir_arc, new.to_vec()));
        }
        lock(&new_dir.children).insert(new.to_vec(), Arc::downgrade(&source_ov));
        Ok(())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.top()?.read_at(offset, buf)
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        self.copy_up()?.write_at(offset, buf)
    }

    fn allocate(&self, mode: i32, offset: u64, len: u64) -> Result<(), Errno> {
        self.copy_up()?.allocate(mode, offset, len)
    }

    fn seek_data_or_hole(&self, offset: u64, hole: bool) -> Result<u64, Errno> {
        self.top()?.seek_data_or_hole(offset, hole)
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        self.top()?.readlink()
    }

    fn setattr(&self, attr: &SetAttr) -> Result<(), Errno> {
        self.copy_up()?.setattr(attr)
    }

    fn open(&self, flags: i32) -> Result<Option<Arc<dyn FileDescription>>, Errno> {
        let acc = flags & libc::O_ACCMODE;
        if acc != libc::O_RDONLY || flags & libc::O_TRUNC != 0 {
            return self.copy_up()?.open(flags);
        }
        self.top()?.open(flags)
    }

    fn getxattr(&self, name: &[u8]) -> Result<Vec<u8>, Errno> {
        if name.starts_with(PRIVATE_XATTRS) {
            return Err(libc::ENODATA);
        }
        self.top()?.getxattr(name)
    }

    fn setxattr(&self, name: &[u8], value: &[u8], flags: i32) -> Result<(), Errno> {
        if name.starts_with(PRIVATE_XATTRS) {
            return Err(libc::EPERM);
        }
        self.copy_up()?.setxattr(name, value, flags)
    }

    fn listxattr(&self) -> Result<Vec<Vec<u8>>, Errno> {
        Ok(self
            .top()?
            .listxattr()?
            .into_iter()
            .filter(|n| !n.starts_with(PRIVATE_XATTRS))
            .collect())
    }

    fn removexattr(&self, name: &[u8]) -> Result<(), Errno> {
        self.copy_up()?.removexattr(name)
    }

    fn acl(
        &self,
        kind: crate::vfs::acl::AclKind,
    ) -> Result<Option<Arc<crate::vfs::acl::Acl>>, Errno> {
        self.top()?.acl(kind)
    }

    fn statfs(&self) -> Result<StatFs, Errno> {
        match self.upper() {
            Some(u) => u.statfs(),
            None => self.lower.clone().ok_or(libc::ENOENT)?.statfs(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tmpfs::Tmpfs;

    const ROOT: Owner = Owner { uid: 0, gid: 0 };

    /// A lower tree: dir/{a,b}, file "f" with content, symlink "l".
    fn layers() -> (Arc<dyn Inode>, Arc<dyn Inode>) {
        let lower = Tmpfs::new(1).root();
        let dir = lower
            .create(b"dir", NewNode::Directory, 0o755, ROOT)
            .unwrap();
        dir.create(b"a", NewNode::Regular, 0o644, ROOT).unwrap();
        dir.create(b"b", NewNode::Regular, 0o644, ROOT).unwrap();
        let f = lower.create(b"f", NewNode::Regular, 0o640, ROOT).unwrap();
        f.write_at(0, b"lower data").unwrap();
        lower
            .create(b"l", NewNode::Symlink(b"f".to_vec()), 0o777, ROOT)
            .unwrap();
        (Tmpfs::new(2).root(), lower)
    }

    fn names(dir: &Arc<dyn Inode>) -> Vec<String> {
        let mut v: Vec<String> = dir
            .readdir()
            .unwrap()
            .into_iter()
            .map(|e| String::from_utf8(e.name).unwrap())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn writes_copy_up_and_leave_the_lower_alone() {
        let (upper, lower) = layers();
        let root = new_overlay(upper.clone(), lower.clone());
        let f = root.lookup(b"f").unwrap();
        f.write_at(0, b"UPPER").unwrap();
        let mut buf = [0u8; 10];
        assert_eq!(f.read_at(0, &mut buf).unwrap(), 10);
        assert_eq!(&buf, b"UPPER data");
        lower.lookup(b"f").unwrap().read_at(0, &mut buf).unwrap();
        assert_eq!(&buf, b"lower data");
        assert_eq!(
            upper.lookup(b"f").unwrap().stat().unwrap().mode & 0o777,
            0o640
        );
        // The same object is handed out again: the copy-up is seen by every holder.
        assert!(Arc::ptr_eq(&f, &root.lookup(b"f").unwrap()));
    }

    #[test]
    fn unlink_leaves_a_whiteout_and_recreating_a_dir_is_opaque() {
        let (upper, lower) = layers();
        let root = new_overlay(upper.clone(), lower);
        let dir = root.lookup(b"dir").unwrap();
        dir.unlink(b"a", false).unwrap();
        assert_eq!(names(&dir), ["b"]);
        assert_eq!(dir.lookup(b"a").err(), Some(libc::ENOENT));
        dir.unlink(b"b", false).unwrap();
        root.unlink(b"dir", true).unwrap();
        assert_eq!(root.lookup(b"dir").err(), Some(libc::ENOENT));
        let again = root
            .create(b"dir", NewNode::Directory, 0o700, ROOT)
            .unwrap();
        assert!(
            names(&again).is_empty(),
            "old lower contents must stay hidden"
        );
        assert_eq!(names(&root), ["dir", "f", "l"]);
    }

    #[test]
    fn rmdir_of_a_merged_non_empty_dir_fails() {
        let (upper, lower) = layers();
        let root = new_overlay(upper, lower);
        assert_eq!(root.unlink(b"dir", true).err(), Some(libc::ENOTEMPTY));
    }

    #[test]
    fn rename_of_a_lower_file_whites_out_the_old_name() {
        let (upper, lower) = layers();
        let root = new_overlay(upper, lower);
        root.rename(b"f", &root.clone(), b"g", 0).unwrap();
        assert_eq!(names(&root), ["dir", "g", "l"]);
        let mut buf = [0u8; 10];
        root.lookup(b"g").unwrap().read_at(0, &mut buf).unwrap();
        assert_eq!(&buf, b"lower data");
        assert_eq!(
            root.rename(b"dir", &root.clone(), b"d2", 0).err(),
            Some(libc::EXDEV)
        );
    }

    #[test]
    fn symlinks_and_xattrs_show_through_and_copy_up() {
        let (upper, lower) = layers();
        let root = new_overlay(upper, lower);
        let l = root.lookup(b"l").unwrap();
        assert_eq!(l.readlink().unwrap(), b"f");
        let f = root.lookup(b"f").unwrap();
        f.setxattr(b"user.k", b"v", 0).unwrap();
        assert_eq!(f.getxattr(b"user.k").unwrap(), b"v");
        assert_eq!(
            f.getxattr(b"trusted.overlay.opaque").err(),
            Some(libc::ENODATA)
        );
    }

    fn id(i: &Arc<dyn Inode>) -> (u64, u64) {
        let st = i.stat().unwrap();
        (st.dev, st.ino)
    }

    #[test]
    fn identities_survive_copy_up_and_a_fresh_lookup() {
        let (upper, lower) = layers();
        let root = new_overlay(upper, lower.clone());
        let dir = root.lookup(b"dir").unwrap();
        let a = dir.lookup(b"a").unwrap();
        let (dir_id, a_id, root_id) = (id(&dir), id(&a), id(&root));
        assert_eq!(dir_id, id(&lower.lookup(b"dir").unwrap()));
        a.write_at(0, b"changed").unwrap();
        assert_eq!((id(&dir), id(&a), id(&root)), (dir_id, a_id, root_id));
        // A new object for the same file (the VFS dropped its dentry) finds the origin.
        drop(a);
        let dir_ov = OverlayInode::overlay_of(&dir).unwrap();
        dir_ov.forget(b"a");
        let again = dir.lookup(b"a").unwrap();
        assert_eq!(id(&again), a_id);
        assert!(
            again.listxattr().unwrap().is_empty(),
            "origin xattr is private"
        );
        // Listings show the same numbers as stat.
        for e in dir.readdir().unwrap() {
            assert_eq!(e.ino, dir.lookup(&e.name).unwrap().stat().unwrap().ino);
        }
        // A merged directory has an unknown link count, as on overlayfs.
        assert_eq!(dir.stat().unwrap().nlink, 1);
        // A new file gets an identity of its own.
        let n = dir.create(b"n", NewNode::Regular, 0o644, ROOT).unwrap();
        assert_ne!(id(&n), a_id);
    }

    #[test]
    fn hard_links_stay_one_file_across_copy_up() {
        let lower = Tmpfs::new(1).root();
        let f = lower.create(b"f", NewNode::Regular, 0o644, ROOT).unwrap();
        f.write_at(0, b"lower").unwrap();
        lower.link(b"g", &f).unwrap();
        lower.link(b"h", &f).unwrap();
        let root = new_overlay(Tmpfs::new(2).root(), lower);
        let f = root.lookup(b"f").unwrap();
        let g = root.lookup(b"g").unwrap();
        assert_eq!(id(&f), id(&g));
        f.write_at(0, b"UPPER").unwrap();
        let mut buf = [0u8; 5];
        g.read_at(0, &mut buf).unwrap();
        assert_eq!(&buf, b"UPPER", "the other name sees the copy");
        assert_eq!(id(&f), id(&g));
        assert_eq!(f.stat().unwrap().nlink, 3);
        assert_eq!(g.stat().unwrap().nlink, 3);
        // Copying up the second name links it to the first copy.
        g.setattr(&SetAttr {
            mode: Some(0o600),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(f.stat().unwrap().mode & 0o777, 0o600);
        assert_eq!(g.stat().unwrap().nlink, 3);
        root.unlink(b"h", false).unwrap();
        assert_eq!(f.stat().unwrap().nlink, 2);
        root.unlink(b"f", false).unwrap();
        assert_eq!(g.stat().unwrap().nlink, 1);
    }
}
