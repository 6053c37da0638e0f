//! Metadata: the stat family, statx, access, chmod, chown, truncate, fallocate, utimensat,
//! statfs, the sync family and extended attributes.

use std::sync::Arc;

use fs::vfs::acl::{self, AclKind};
use fs::vfs::{perm, FileType, Inode, ResolveFlags, SetAttr};
use fs::Stat;
use platform::UserRegs;

use super::fd::read_only;
use super::path::{fd_location, fs_creds, read_path, resolve_at, target_inode};
use crate::errno::{Errno, SysResult};
use crate::task::TaskState;

/// Encodes Linux's x86-64 `struct stat` (144 bytes).
fn stat_bytes(s: &Stat) -> [u8; 144] {
    let mut b = [0u8; 144];
    let mut put = |off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    put(0, s.dev);
    put(8, s.ino);
    put(16, s.nlink);
    put(24, s.mode as u64 | ((s.uid as u64) << 32));
    put(32, s.gid as u64);
    put(40, s.rdev);
    put(48, s.size as u64);
    put(56, s.blksize as u64);
    put(64, s.blocks as u64);
    put(72, s.atime.0 as u64);
    put(80, s.atime.1 as u64);
    put(88, s.mtime.0 as u64);
    put(96, s.mtime.1 as u64);
    put(104, s.ctime.0 as u64);
    put(112, s.ctime.1 as u64);
    b
}

/// `st` with its owner and group as the caller's user namespace names them (the overflow
/// ids when it doesn't map them).
fn seen_by(t: &TaskState, st: &Stat) -> Stat {
    let ns = &t.creds.user_ns;
    Stat {
        uid: ns.uid_seen(st.uid),
        gid: ns.gid_seen(st.gid),
        ..*st
    }
}

fn write_stat(t: &mut TaskState, out: u64, st: &Stat) -> SysResult {
    let st = seen_by(t, st);
    t.mm.copy_out(out, &stat_bytes(&st))?;
    Ok(0)
}

pub fn fstat(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let st = t.fds.get(a[0])?.stat().map_err(Errno)?;
    write_stat(t, a[1], &st)
}

pub fn newfstatat(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let flags = a[3] as i32;
    if flags & !(libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW | libc::AT_NO_AUTOMOUNT) != 0 {
        return Err(Errno::EINVAL);
    }
    let st = stat_at(t, a[0], a[1], flags)?;
    write_stat(t, a[2], &st)
}

/// The metadata a stat-like call with `flags` designates (an open file via AT_EMPTY_PATH).
fn stat_at(t: &mut TaskState, dirfd: u64, path: u64, flags: i32) -> Result<Stat, Errno> {
    let p = read_path(t, path)?;
    if p.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
        if let (_, Some(f)) = fd_location(t, dirfd)? {
            return f.stat().map_err(Errno);
        }
    }
    target_inode(t, dirfd, path, flags)?.stat().map_err(Errno)
}

pub fn stat(t: &mut TaskState, r: &mut UserRegs, a: [u64; 6]) -> SysResult {
    newfstatat(t, r, [libc::AT_FDCWD as u64, a[0], a[1], 0, 0, 0])
}

pub fn lstat(t: &mut TaskState, r: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let nofollow = libc::AT_SYMLINK_NOFOLLOW as u64;
    newfstatat(t, r, [libc::AT_FDCWD as u64, a[0], a[1], nofollow, 0, 0])
}

const STATX_BASIC_STATS: u32 = 0x7ff;
const AT_STATX_SYNC_TYPE: i32 = 0x6000;

pub fn statx(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (dirfd, path, flags, mask, out) = (a[0], a[1], a[2] as i32, a[3] as u32, a[4]);
    let known = libc::AT_EMPTY_PATH
        | libc::AT_SYMLINK_NOFOLLOW
        | libc::AT_NO_AUTOMOUNT
        | AT_STATX_SYNC_TYPE;
    if flags & !known != 0 || flags & AT_STATX_SYNC_TYPE == AT_STATX_SYNC_TYPE {
        return Err(Errno::EINVAL);
    }
    if mask & 0x8000_0000 != 0 {
        // STATX__RESERVED
        return Err(Errno::EINVAL);
    }
    let s = stat_at(t, dirfd, path, flags)?;
    let s = seen_by(t, &s);
    let mut b = [0u8; 256];
    let put32 =
        |b: &mut [u8; 256], off: usize, v: u32| b[off..off + 4].copy_from_slice(&v.to_le_bytes());
    put32(&mut b, 0, STATX_BASIC_STATS);
    put32(&mut b, 4, s.blksize as u32);
    put32(&mut b, 16, s.nlink as u32);
    put32(&mut b, 20, s.uid);
    put32(&mut b, 24, s.gid);
    b[28..30].copy_from_slice(&(s.mode as u16).to_le_bytes());
    let put64 =
        |b: &mut [u8; 256], off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    put64(&mut b, 32, s.ino);
    put64(&mut b, 40, s.size as u64);
    put64(&mut b, 48, s.blocks as u64);
    let time = |b: &mut [u8; 256], off: usize, ts: (i64, i64)| {
        b[off..off + 8].copy_from_slice(&ts.0.to_le_bytes());
        b[off + 8..off + 12].copy_from_slice(&(ts.1 as u32).to_le_bytes());
    };
    time(&mut b, 64, s.atime);
    time(&mut b, 96, s.ctime);
    time(&mut b, 112, s.mtime);
    put32(&mut b, 128, libc::major(s.rdev));
    put32(&mut b, 132, libc::minor(s.rdev));
    put32(&mut b, 136, libc::major(s.dev));
    put32(&mut b, 140, libc::minor(s.dev));
    t.mm.copy_out(out, &b)?;
    Ok(0)
}

fn access_at(t: &mut TaskState, dirfd: u64, path: u64, mode: u64, flags: i32) -> SysResult {
    if mode & !7 != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & !(libc::AT_EACCESS | libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let p = read_path(t, path)?;
    let follow = flags & libc::AT_SYMLINK_NOFOLLOW == 0;
    let loc = if p.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
        fd_location(t, dirfd)?.0.ok_or(Errno::EBADF)?
    } else {
        let rf = if follow {
            ResolveFlags::follow()
        } else {
            ResolveFlags::nofollow()
        };
        resolve_at(t, dirfd, &p, rf)?
    };
    if mode == 0 {
        return Ok(0);
    }
    // access() checks with the real IDs unless AT_EACCESS.
    let mut creds = fs_creds(t);
    if flags & libc::AT_EACCESS == 0 {
        creds.uid = t.creds.uid;
        creds.gid = t.creds.gid;
    }
    let st = loc.inode().stat().map_err(Errno)?;
    perm::check(&**loc.inode(), &st, &creds, mode as u32).map_err(Errno)?;
    let special = !matches!(
        loc.inode().file_type(),
        FileType::Regular | FileType::Directory | FileType::Symlink
    );
    if mode & perm::MAY_WRITE as u64 != 0 && !special && read_only(&loc) {
        return Err(Errno::EROFS);
    }
    Ok(0)
}

pub fn access(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    access_at(t, libc::AT_FDCWD as u64, a[0], a[1], 0)
}

pub fn faccessat(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    access_at(t, a[0], a[1], a[2], 0)
}

pub fn faccessat2(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    access_at(t, a[0], a[1], a[2], a[3] as i32)
}

/// The name a metadata call reached its file by, for inotify's events (None for a file
/// without one).
type At = Option<Arc<fs::vfs::Dentry>>;

/// Reports a metadata change to inotify: through the name, so that the directory's watches
/// see it too, or to the inode alone.
fn notify_change(at: &At, inode: &Arc<dyn Inode>, mask: u32) {
    if mask == 0 || !fs::inotify::active() {
        return;
    }
    match at {
        Some(d) => fs::inotify::file_event(d, mask),
        None => {
            let isdir = if inode.file_type() == FileType::Directory {
                fs::inotify::IN_ISDIR
            } else {
                0
            };
            fs::inotify::inode_event(inode, mask | isdir)
        }
    }
}

/// The inode and whether it lives on a read-only mount, for an fd.
fn fd_inode(t: &TaskState, fd: u64) -> Result<(Arc<dyn Inode>, bool, At), Errno> {
    let file = t.fds.get(fd)?;
    if file.flags() & libc::O_PATH as u32 != 0 {
        return Err(Errno::EBADF);
    }
    fd_inode_any(t, fd)
}

/// As [`fd_inode`], also for O_PATH descriptors (the `*at(fd, "", AT_EMPTY_PATH)` calls).
fn fd_inode_any(t: &TaskState, fd: u64) -> Result<(Arc<dyn Inode>, bool, At), Errno> {
    let file = t.fds.get(fd)?;
    let inode = file.inode().cloned().ok_or(Errno::EINVAL)?;
    let ro = file.location.as_ref().is_some_and(read_only) || inode.read_only();
    let at = file.location.as_ref().map(|l| l.dentry.clone());
    Ok((inode, ro, at))
}

/// The inode a path-or-fd metadata call changes, and whether it is read-only.
fn path_inode(
    t: &mut TaskState,
    dirfd: u64,
    path: u64,
    flags: i32,
) -> Result<(Arc<dyn Inode>, bool, At), Errno> {
    let p = read_path(t, path)?;
    if p.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
        if dirfd as i64 as i32 == libc::AT_FDCWD {
            let loc = t.fs.cwd();
            return Ok((
                loc.inode().clone(),
                read_only(&loc),
                Some(loc.dentry.clone()),
            ));
        }
        return fd_inode_any(t, dirfd);
    }
    let rf = if flags & libc::AT_SYMLINK_NOFOLLOW != 0 {
        ResolveFlags::nofollow()
    } else {
        ResolveFlags::follow()
    };
    let loc = resolve_at(t, dirfd, &p, rf)?;
    Ok((
        loc.inode().clone(),
        read_only(&loc),
        Some(loc.dentry.clone()),
    ))
}

fn chmod_inode(t: &TaskState, inode: &Arc<dyn Inode>, ro: bool, at: &At, mode: u32) -> SysResult {
    let st = inode.stat().map_err(Errno)?;
    let creds = fs_creds(t);
    if !perm::is_owner_or_root(&st, &creds) {
        return Err(Errno::EPERM);
    }
    if ro {
        return Err(Errno::EROFS);
    }
    let mut mode = mode & 0o7777;
    // Only a member of the file's group (or a holder of CAP_FSETID) may set setgid.
    if !creds.has_cap_over(perm::CAP_FSETID, &st) && !creds.in_group(st.gid) {
        mode &= !libc::S_ISGID;
    }
    inode
        .setattr(&SetAttr {
            mode: Some(mode),
            ..Default::default()
        })
        .map_err(Errno)?;
    notify_change(at, inode, fs::inotify::IN_ATTRIB);
    Ok(0)
}

pub fn fchmod(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (inode, ro, at) = fd_inode(t, a[0])?;
    chmod_inode(t, &inode, ro, &at, a[1] as u32)
}

pub fn fchmodat(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (inode, ro, at) = path_inode(t, a[0], a[1], 0)?;
    chmod_inode(t, &inode, ro, &at, a[2] as u32)
}

pub fn chmod(t: &mut TaskState, r: &mut UserRegs, a: [u64; 6]) -> SysResult {
    fchmodat(t, r, [libc::AT_FDCWD as u64, a[0], a[1], 0, 0, 0])
}

fn chown_inode(
    t: &TaskState,
    inode: &Arc<dyn Inode>,
    ro: bool,
    at: &At,
    uid: u32,
    gid: u32,
) -> SysResult {
    let st = inode.stat().map_err(Errno)?;
    let creds = fs_creds(t);
    // The ids are the caller's user namespace's; one it doesn't map is EINVAL (Linux's
    // chown_common).
    let ns = &t.creds.user_ns;
    let new_uid = match (uid != u32::MAX).then_some(uid) {
        Some(u) => Some(ns.make_kuid(u).ok_or(Errno::EINVAL)?),
        None => None,
    };
    let new_gid = match (gid != u32::MAX).then_some(gid) {
        Some(g) => Some(ns.make_kgid(g).ok_or(Errno::EINVAL)?),
        None => None,
    };
    if !creds.has_cap_over(perm::CAP_CHOWN, &st) {
        // Without CAP_CHOWN, an owner may only give the file to a group they belong to.
        let uid_ok = new_uid.is_none_or(|u| u == st.uid);
        let gid_ok = new_gid.is_none_or(|g| creds.in_group(g) || g == st.gid);
        if creds.uid != st.uid || !uid_ok || !gid_ok {
            return Err(Errno::EPERM);
        }
    }
    if ro {
        return Err(Errno::EROFS);
    }
    // Even chown(-1, -1) is a chown: Linux applies it, updating ctime and dropping setuid.
    let mut attr = SetAttr {
        uid: Some(new_uid.unwrap_or(st.uid)),
        gid: Some(new_gid.unwrap_or(st.gid)),
        ..Default::default()
    };
    // Changing the owner of a non-directory drops setuid, and setgid when group-executable.
    if inode.file_type() == FileType::Regular {
        let mut mode = st.mode & 0o7777;
        mode &= !libc::S_ISUID;
        if mode & libc::S_IXGRP != 0 {
            mode &= !libc::S_ISGID;
        }
        if mode != st.mode & 0o7777 {
            attr.mode = Some(mode);
        }
    }
    inode.setattr(&attr).map_err(Errno)?;
    // chown(-1, -1) changes only ctime: no event, as on Linux.
    if new_uid.is_some() || new_gid.is_some() || attr.mode.is_some() {
        notify_change(at, inode, fs::inotify::IN_ATTRIB);
    }
    Ok(0)
}

pub fn fchown(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (inode, ro, at) = fd_inode(t, a[0])?;
    chown_inode(t, &inode, ro, &at, a[1] as u32, a[2] as u32)
}

pub fn fchownat(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let flags = a[4] as i32;
    if flags & !(libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let (inode, ro, at) = path_inode(t, a[0], a[1], flags)?;
    chown_inode(t, &inode, ro, &at, a[2] as u32, a[3] as u32)
}

pub fn chown(t: &mut TaskState, r: &mut UserRegs, a: [u64; 6]) -> SysResult {
    fchownat(t, r, [libc::AT_FDCWD as u64, a[0], a[1], a[2], 0, 0])
}

pub fn lchown(t: &mut TaskState, r: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let nofollow = libc::AT_SYMLINK_NOFOLLOW as u64;
    fchownat(t, r, [libc::AT_FDCWD as u64, a[0], a[1], a[2], nofollow, 0])
}

fn truncate_inode(inode: &Arc<dyn Inode>, ro: bool, at: &At, len: u64) -> SysResult {
    if (len as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    match inode.file_type() {
        FileType::Directory => return Err(Errno::EISDIR),
        FileType::Regular => {}
        _ => return Err(Errno::EINVAL),
    }
    if ro {
        return Err(Errno::EROFS);
    }
    // truncate always touches mtime, even to the same size.
    inode
        .setattr(&SetAttr {
            size: Some(len),
            mtime: Some(now()),
            ..Default::default()
        })
        .map_err(Errno)?;
    crate::mm::file_content_changed(inode);
    notify_change(at, inode, fs::inotify::IN_MODIFY);
    Ok(0)
}

pub fn truncate(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let p = read_path(t, a[0])?;
    let loc = resolve_at(t, libc::AT_FDCWD as u64, &p, ResolveFlags::follow())?;
    if loc.inode().file_type() == FileType::Regular {
        perm::check_inode(&**loc.inode(), &fs_creds(t), perm::MAY_WRITE).map_err(Errno)?;
        if !read_only(&loc) {
            // Held while truncating, as Linux's vfs_truncate: no lease is granted meanwhile.
            let _writer = fs::vfs::write_access::get_write(&**loc.inode()).map_err(Errno)?;
            fs::lease::break_for_open(&**loc.inode(), true, false).map_err(Errno)?;
            return truncate_inode(loc.inode(), false, &Some(loc.dentry.clone()), a[1]);
        }
    }
    truncate_inode(
        loc.inode(),
        read_only(&loc),
        &Some(loc.dentry.clone()),
        a[1],
    )
}

pub fn ftruncate(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    if !file.writable() {
        return Err(Errno::EINVAL);
    }
    let (inode, ro, at) = fd_inode(t, a[0])?;
    truncate_inode(&inode, ro, &at, a[1])
}

pub fn fallocate(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (mode, offset, len) = (a[1] as i32, a[2] as i64, a[3] as i64);
    if offset < 0 || len <= 0 {
        return Err(Errno::EINVAL);
    }
    let file = t.fds.get(a[0])?;
    if !file.writable() {
        return Err(Errno::EBADF);
    }
    let (inode, ro, at) = fd_inode(t, a[0])?;
    match inode.file_type() {
        FileType::Regular => {}
        FileType::Directory => return Err(Errno::EISDIR),
        FileType::Fifo => return Err(Errno::ESPIPE),
        _ => return Err(Errno::ENODEV),
    }
    if ro {
        return Err(Errno::EROFS);
    }
    if offset.checked_add(len).is_none() {
        return Err(Errno::EFBIG);
    }
    inode
        .allocate(mode, offset as u64, len as u64)
        .map_err(Errno)?;
    crate::mm::file_content_changed(&inode);
    notify_change(&at, &inode, fs::inotify::IN_MODIFY);
    Ok(0)
}

const UTIME_NOW: i64 = (1 << 30) - 1;
const UTIME_OMIT: i64 = (1 << 30) - 2;

fn now() -> (i64, i64) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos() as i64)
}

pub fn utimensat(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (dirfd, path, times, flags) = (a[0], a[1], a[2], a[3] as i32);
    if flags & !(libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let requested = if times == 0 {
        [(0, UTIME_NOW), (0, UTIME_NOW)]
    } else {
        let mut b = [0u8; 32];
        t.mm.copy_in(times, &mut b)?;
        let w = |i: usize| i64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        [(w(0), w(1)), (w(2), w(3))]
    };
    set_times(t, dirfd, path, flags, requested)
}

/// Sets the times of the file at `path` (relative to `dirfd`; the file open at `dirfd` for
/// a NULL path) to `requested` (seconds and nanoseconds, or UTIME_NOW or UTIME_OMIT in the
/// nanoseconds): the common part of utimensat, utime, utimes and futimesat.
fn set_times(
    t: &mut TaskState,
    dirfd: u64,
    path: u64,
    flags: i32,
    requested: [(i64, i64); 2],
) -> SysResult {
    for &(_, ns) in &requested {
        if ns != UTIME_NOW && ns != UTIME_OMIT && !(0..1_000_000_000).contains(&ns) {
            return Err(Errno::EINVAL);
        }
    }
    // A NULL path (futimens) means the file open at dirfd.
    let (inode, ro, at) = if path == 0 {
        fd_inode(t, dirfd)?
    } else {
        path_inode(t, dirfd, path, flags)?
    };
    if requested.iter().all(|&(_, ns)| ns == UTIME_OMIT) {
        return Ok(0);
    }
    let st = inode.stat().map_err(Errno)?;
    let creds = fs_creds(t);
    let only_now = requested
        .iter()
        .all(|&(_, ns)| ns == UTIME_NOW || ns == UTIME_OMIT);
    if !perm::is_owner_or_root(&st, &creds) {
        if !only_now {
            return Err(Errno::EPERM);
        }
        perm::check(&*inode, &st, &creds, perm::MAY_WRITE).map_err(Errno)?;
    }
    if ro {
        return Err(Errno::EROFS);
    }
    let pick = |(s, ns): (i64, i64)| match ns {
        UTIME_OMIT => None,
        UTIME_NOW => Some(now()),
        _ => Some((s, ns)),
    };
    let attr = SetAttr {
        atime: pick(requested[0]),
        mtime: pick(requested[1]),
        ..Default::default()
    };
    inode.setattr(&attr).map_err(Errno)?;
    notify_change(&at, &inode, fs::inotify::setattr_mask(&attr));
    Ok(0)
}

/// Reads utimes' and futimesat's `struct timeval[2]` as utimensat's times (NULL: now).
fn timevals(t: &TaskState, addr: u64) -> Result<[(i64, i64); 2], Errno> {
    if addr == 0 {
        return Ok([(0, UTIME_NOW), (0, UTIME_NOW)]);
    }
    let mut b = [0u8; 32];
    t.mm.copy_in(addr, &mut b)?;
    let w = |i: usize| i64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    let mut out = [(0, 0); 2];
    for (i, o) in out.iter_mut().enumerate() {
        let (sec, usec) = (w(2 * i), w(2 * i + 1));
        if !(0..1_000_000).contains(&usec) {
            return Err(Errno::EINVAL);
        }
        *o = (sec, usec * 1000);
    }
    Ok(out)
}

const AT_FDCWD: u64 = libc::AT_FDCWD as i64 as u64;

/// utime(path, struct utimbuf *): whole seconds; NULL sets both times to now.
pub fn utime(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (path, times) = (a[0], a[1]);
    if path == 0 {
        return Err(Errno::EFAULT);
    }
    let requested = if times == 0 {
        [(0, UTIME_NOW), (0, UTIME_NOW)]
    } else {
        let mut b = [0u8; 16];
        t.mm.copy_in(times, &mut b)?;
        let w = |i: usize| i64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        [(w(0), 0), (w(1), 0)]
    };
    set_times(t, AT_FDCWD, path, 0, requested)
}

pub fn utimes(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (path, times) = (a[0], a[1]);
    let requested = timevals(t, times)?;
    if path == 0 {
        return Err(Errno::EFAULT);
    }
    set_times(t, AT_FDCWD, path, 0, requested)
}

/// futimesat(dirfd, path, struct timeval[2]): a NULL path means the file open at dirfd.
pub fn futimesat(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (dirfd, path, times) = (a[0], a[1], a[2]);
    let requested = timevals(t, times)?;
    if path == 0 && dirfd as i32 == libc::AT_FDCWD {
        return Err(Errno::EFAULT);
    }
    set_times(t, dirfd, path, 0, requested)
}

/// Encodes `struct statfs` (120 bytes).
fn statfs_bytes(s: &fs::vfs::StatFs) -> [u8; 120] {
    let mut b = [0u8; 120];
    let mut put = |off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    put(0, s.fs_type as u64);
    put(8, s.block_size as u64);
    put(16, s.blocks);
    put(24, s.blocks_free);
    put(32, s.blocks_available);
    put(40, s.files);
    put(48, s.files_free);
    put(64, s.name_max as u64);
    put(72, s.block_size as u64);
    put(80, s.flags as u64);
    b
}

pub fn statfs(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let p = read_path(t, a[0])?;
    let loc = resolve_at(t, libc::AT_FDCWD as u64, &p, ResolveFlags::follow())?;
    let mut s = loc.inode().statfs().map_err(Errno)?;
    s.flags |= statfs_flags(&loc.mount);
    t.mm.copy_out(a[1], &statfs_bytes(&s))?;
    Ok(0)
}

/// statfs' f_flags for a mount's flags (ST_* are MS_*, but ST_RELATIME is 4096).
fn statfs_flags(m: &fs::vfs::Mount) -> i64 {
    use fs::vfs::mount_flags as f;
    let mf = m.flags();
    let mut out =
        (mf & (f::RDONLY | f::NOSUID | f::NODEV | f::NOEXEC | f::NOATIME | f::NODIRATIME)) as i64;
    if mf & f::RELATIME != 0 {
        out |= libc::ST_RELATIME as i64;
    }
    out
}

/// The statfs of a file without an inode in a mounted file system: pipes (pipefs), sockets
/// (sockfs), terminals (devpts) and anonymous files (eventfd, epoll, timerfd, signalfd:
/// anon_inodefs), as Linux's pseudo file systems report them.
fn pseudo_statfs(file: &fs::vfs::OpenFile) -> Result<fs::vfs::StatFs, Errno> {
    const PIPEFS_MAGIC: i64 = 0x5049_5045;
    const SOCKFS_MAGIC: i64 = 0x534F_434B;
    const DEVPTS_SUPER_MAGIC: i64 = 0x1cd1;
    const ANON_INODE_FS_MAGIC: i64 = 0x0904_1934;
    let mode = file.stat().map_err(Errno)?.mode & libc::S_IFMT;
    let fs_type = match mode {
        libc::S_IFIFO => PIPEFS_MAGIC,
        libc::S_IFSOCK => SOCKFS_MAGIC,
        libc::S_IFCHR => DEVPTS_SUPER_MAGIC,
        _ => ANON_INODE_FS_MAGIC,
    };
    Ok(fs::vfs::StatFs {
        fs_type,
        block_size: 4096,
        name_max: 255,
        ..Default::default()
    })
}

pub fn fstatfs(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    let mut s = match file.inode() {
        Some(inode) => inode.statfs().map_err(Errno)?,
        None => pseudo_statfs(&file)?,
    };
    if let Some(l) = &file.location {
        s.flags |= statfs_flags(&l.mount);
    }
    t.mm.copy_out(a[1], &statfs_bytes(&s))?;
    Ok(0)
}

pub fn sync(_: &mut TaskState, _: &mut UserRegs, _: [u64; 6]) -> SysResult {
    Ok(0)
}

pub fn fsync(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    if let Some(i) = file.inode() {
        i.sync().map_err(Errno)?;
    }
    Ok(0)
}

/// sync_file_range's flags (linux/fs.h).
const SYNC_FILE_RANGE_WAIT_BEFORE: u32 = 1;
const SYNC_FILE_RANGE_WRITE: u32 = 2;
const SYNC_FILE_RANGE_WAIT_AFTER: u32 = 4;

/// sync_file_range: Linux's checks (the descriptor, flags, a negative or overflowing range, ESPIPE for
/// anything but regular files, directories, symlinks and block devices), then, when writing
/// is asked, the file's data synced as fdatasync syncs it (the whole file: the sandbox's
/// file systems have no range writeback; memory-backed ones have nothing to write).
pub fn sync_file_range(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (offset, nbytes, flags) = (a[1] as i64, a[2] as i64, a[3]);
    let file = t.fds.get(a[0])?;
    let known = SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER;
    if flags & !u64::from(known) != 0 {
        return Err(Errno::EINVAL);
    }
    if offset < 0 || nbytes < 0 || offset.checked_add(nbytes).is_none() {
        return Err(Errno::EINVAL);
    }
    let mode = file.stat().map_err(Errno)?.mode & libc::S_IFMT;
    if !matches!(
        mode,
        libc::S_IFREG | libc::S_IFDIR | libc::S_IFLNK | libc::S_IFBLK
    ) {
        return Err(Errno::ESPIPE);
    }
    if flags as u32 & SYNC_FILE_RANGE_WRITE != 0 {
        if let Some(i) = file.inode() {
            i.sync().map_err(Errno)?;
        }
    }
    Ok(0)
}

// --- extended attributes ---------------------------------------------------------------

const XATTR_SIZE_MAX: u64 = 65536;
const XATTR_NAME_MAX: usize = 255;

fn xattr_name(t: &mut TaskState, addr: u64) -> Result<Vec<u8>, Errno> {
    let name =
        t.mm.copy_in_cstring(addr, XATTR_NAME_MAX + 1)
            .map_err(|e| {
                if e == Errno::ENAMETOOLONG {
                    Errno::ERANGE
                } else {
                    e
                }
            })?;
    if name.is_empty() || name.len() > XATTR_NAME_MAX {
        return Err(Errno::ERANGE);
    }
    Ok(name)
}

/// Who may touch an attribute namespace: trusted.* and writes to security.* need
/// CAP_SYS_ADMIN.
fn check_xattr_access(
    t: &TaskState,
    inode: &Arc<dyn Inode>,
    name: &[u8],
    write: bool,
) -> Result<(), Errno> {
    let creds = fs_creds(t);
    if name.starts_with(b"trusted.") || (write && name.starts_with(b"security.")) {
        return if creds.has_cap(perm::CAP_SYS_ADMIN) {
            Ok(())
        } else {
            Err(Errno::EPERM)
        };
    }
    if name.starts_with(b"user.") {
        let ft = inode.file_type();
        if !matches!(ft, FileType::Regular | FileType::Directory) {
            // Linux: user attributes exist only on files and directories.
            return Err(if write {
                Errno::EPERM
            } else {
                Errno(libc::ENODATA)
            });
        }
        let mask = if write {
            perm::MAY_WRITE
        } else {
            perm::MAY_READ
        };
        perm::check_inode(&**inode, &creds, mask).map_err(Errno)?;
    }
    Ok(())
}

/// The inode of a path (follow or not) or an fd, for the xattr families.
fn xattr_target(
    t: &mut TaskState,
    target: u64,
    by_fd: bool,
    follow: bool,
) -> Result<(Arc<dyn Inode>, bool, At), Errno> {
    if by_fd {
        return fd_inode(t, target);
    }
    let flags = if follow { 0 } else { libc::AT_SYMLINK_NOFOLLOW };
    path_inode(t, libc::AT_FDCWD as u64, target, flags)
}

fn getxattr_common(t: &mut TaskState, a: [u64; 6], by_fd: bool, follow: bool) -> SysResult {
    let (inode, _, _) = xattr_target(t, a[0], by_fd, follow)?;
    let name = xattr_name(t, a[1])?;
    check_xattr_access(t, &inode, &name, false)?;
    let value = inode.getxattr(&name).map_err(Errno)?;
    let size = a[3];
    if size == 0 {
        return Ok(value.len() as u64);
    }
    if (value.len() as u64) > size {
        return Err(Errno::ERANGE);
    }
    t.mm.copy_out(a[2], &value)?;
    Ok(value.len() as u64)
}

fn setxattr_common(t: &mut TaskState, a: [u64; 6], by_fd: bool, follow: bool) -> SysResult {
    let (inode, ro, at) = xattr_target(t, a[0], by_fd, follow)?;
    let name = xattr_name(t, a[1])?;
    let (size, flags) = (a[3], a[4] as i32);
    if flags & !(libc::XATTR_CREATE | libc::XATTR_REPLACE) != 0 {
        return Err(Errno::EINVAL);
    }
    if size > XATTR_SIZE_MAX {
        return Err(Errno::E2BIG);
    }
    let mut value = vec![0u8; size as usize];
    t.mm.copy_in(a[2], &mut value)?;
    if let Some(kind) = AclKind::from_xattr_name(&name) {
        return set_acl(t, &inode, ro, &at, kind, Some(&value));
    }
    check_xattr_access(t, &inode, &name, true)?;
    if ro {
        return Err(Errno::EROFS);
    }
    inode.setxattr(&name, &value, flags).map_err(Errno)?;
    notify_change(&at, &inode, fs::inotify::IN_ATTRIB);
    Ok(0)
}

/// setxattr or removexattr (`value` `None`) of an ACL: Linux's checks (`acl::check_set`),
/// the filesystem's store, and the S_ISGID Linux drops alongside for an owner outside the
/// file's group.
fn set_acl(
    t: &TaskState,
    inode: &Arc<dyn Inode>,
    ro: bool,
    at: &At,
    kind: AclKind,
    value: Option<&[u8]>,
) -> SysResult {
    if ro {
        return Err(Errno::EROFS);
    }
    let Some(clear_sgid) = acl::check_set(&**inode, kind, value, &fs_creds(t)).map_err(Errno)?
    else {
        return Ok(0);
    };
    match value {
        Some(v) => inode.setxattr(kind.xattr_name(), v, 0),
        None => inode.removexattr(kind.xattr_name()),
    }
    .map_err(Errno)?;
    let mode = inode.stat().map_err(Errno)?.mode;
    if clear_sgid && mode & libc::S_ISGID != 0 {
        inode
            .setattr(&SetAttr {
                mode: Some(mode & 0o7777 & !libc::S_ISGID),
                ..SetAttr::default()
            })
            .map_err(Errno)?;
    }
    notify_change(at, inode, fs::inotify::IN_ATTRIB);
    Ok(0)
}

fn listxattr_common(t: &mut TaskState, a: [u64; 6], by_fd: bool, follow: bool) -> SysResult {
    let (inode, _, _) = xattr_target(t, a[0], by_fd, follow)?;
    let creds = fs_creds(t);
    let mut list = Vec::new();
    for name in inode.listxattr().map_err(Errno)? {
        if name.starts_with(b"trusted.") && !creds.has_cap(perm::CAP_SYS_ADMIN) {
            continue;
        }
        list.extend_from_slice(&name);
        list.push(0);
    }
    let size = a[2];
    if size == 0 {
        return Ok(list.len() as u64);
    }
    if (list.len() as u64) > size {
        return Err(Errno::ERANGE);
    }
    t.mm.copy_out(a[1], &list)?;
    Ok(list.len() as u64)
}

fn removexattr_common(t: &mut TaskState, a: [u64; 6], by_fd: bool, follow: bool) -> SysResult {
    let (inode, ro, at) = xattr_target(t, a[0], by_fd, follow)?;
    let name = xattr_name(t, a[1])?;
    if let Some(kind) = AclKind::from_xattr_name(&name) {
        return set_acl(t, &inode, ro, &at, kind, None);
    }
    check_xattr_access(t, &inode, &name, true)?;
    if ro {
        return Err(Errno::EROFS);
    }
    inode.removexattr(&name).map_err(Errno)?;
    notify_change(&at, &inode, fs::inotify::IN_ATTRIB);
    Ok(0)
}

macro_rules! xattr_calls {
    ($($name:ident => $common:ident($by_fd:expr, $follow:expr);)*) => {
        $(pub fn $name(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
            $common(t, a, $by_fd, $follow)
        })*
    };
}

xattr_calls! {
    getxattr => getxattr_common(false, true);
    lgetxattr => getxattr_common(false, false);
    fgetxattr => getxattr_common(true, true);
    setxattr => setxattr_common(false, true);
    lsetxattr => setxattr_common(false, false);
    fsetxattr => setxattr_common(true, true);
    listxattr => listxattr_common(false, true);
    llistxattr => listxattr_common(false, false);
    flistxattr => listxattr_common(true, true);
    removexattr => removexattr_common(false, true);
    lremovexattr => removexattr_common(false, false);
    fremovexattr => removexattr_common(true, true);
}
