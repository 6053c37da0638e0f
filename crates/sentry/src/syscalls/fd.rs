//! Opening and closing files, and descriptor operations: open, openat, openat2, creat,
//! close, close_range, dup, dup2, dup3, fcntl.

use fs::vfs::acl;
use fs::vfs::{perm, FileType, Location, NewNode, OpenFile, Owner, ResolveFlags, SetAttr};
use platform::UserRegs;

use super::path::{fs_creds, read_path, resolve_at, resolve_parent_at};
use crate::errno::{Errno, SysResult};
use crate::sigio;
use crate::task::TaskState;

/// The kernel sets O_LARGEFILE on every file opened by a 64-bit process; F_GETFL shows it.
const O_LARGEFILE: u32 = 0o100000;

/// Flags open(2) knows; openat2 refuses others with EINVAL.
const VALID_OPEN_FLAGS: u64 = (libc::O_ACCMODE
    | libc::O_CREAT
    | libc::O_EXCL
    | libc::O_NOCTTY
    | libc::O_TRUNC
    | libc::O_APPEND
    | libc::O_NONBLOCK
    | libc::O_DSYNC
    | libc::O_ASYNC
    | libc::O_DIRECT
    | libc::O_LARGEFILE
    | libc::O_DIRECTORY
    | libc::O_NOFOLLOW
    | libc::O_NOATIME
    | libc::O_CLOEXEC
    | libc::O_PATH
    | libc::O_SYNC
    | libc::O_TMPFILE) as u64;

const RESOLVE_NO_XDEV: u64 = 0x01;
const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;
const RESOLVE_IN_ROOT: u64 = 0x10;
const RESOLVE_CACHED: u64 = 0x20;

/// The soft RLIMIT_NOFILE: descriptors must stay below it.
pub fn fd_limit(t: &TaskState) -> u64 {
    t.rlimits[libc::RLIMIT_NOFILE as usize].0
}

/// Whether a write to `loc` must fail with EROFS.
pub fn read_only(loc: &Location) -> bool {
    loc.mount.read_only() || loc.inode().read_only()
}

/// Creates the regular file `name` in `dir` for O_CREAT.
fn create_regular(
    t: &TaskState,
    dir: &Location,
    name: &[u8],
    mode: u32,
) -> Result<Location, Errno> {
    let creds = fs_creds(t);
    perm::check_inode(&**dir.inode(), &creds, perm::MAY_WRITE | perm::MAY_EXEC).map_err(Errno)?;
    if read_only(dir) {
        return Err(Errno::EROFS);
    }
    let owner = Owner {
        uid: creds.uid,
        gid: creds.gid,
    };
    let new = acl::inherit(&**dir.inode(), FileType::Regular, mode & 0o7777, t.umask);
    let inode = dir
        .inode()
        .create(name, NewNode::Regular, new.mode, owner)
        .map_err(Errno)?;
    give_inherited_acls(&new, &*inode);
    fs::inotify::dir_event(dir.inode(), fs::inotify::IN_CREATE, name, false);
    Ok(Location {
        dentry: dir.dentry.insert_child(name, inode),
        mount: dir.mount.clone(),
    })
}

/// Gives a new file the ACLs it inherited from its directory's default ACL. Only a full
/// file system refuses them, and by then the file exists: Linux would undo the create; we
/// keep the file (with the mode the default ACL gave it) and log.
pub(super) fn give_inherited_acls(new: &acl::Inherited, inode: &dyn fs::vfs::Inode) {
    if let Err(e) = new.apply(inode) {
        tracing::debug!(errno = e, "inherited ACLs not stored");
    }
}

/// Finds or creates the target of an O_CREAT open: follows symlinks in the last component
/// (creating a dangling symlink's target, as Linux does) and creates a missing file.
fn open_or_create(
    t: &TaskState,
    dirfd: u64,
    path: &[u8],
    flags: i32,
    mode: u32,
    resolve: ResolveFlags,
) -> Result<Location, Errno> {
    let mut parent = resolve_parent_at(t, dirfd, path)?;
    let mut links = 0;
    loop {
        if parent.trailing_slash
            || parent.name.is_empty()
            || parent.name == b"."
            || parent.name == b".."
        {
            return Err(Errno::EISDIR);
        }
        match parent.dir.dentry.child(&parent.name) {
            Ok(_) if flags & libc::O_EXCL != 0 => return Err(Errno::EEXIST),
            Ok(child) if child.inode().file_type() == FileType::Symlink && resolve.follow => {
                links += 1;
                if links > fs::vfs::resolve::MAX_SYMLINKS || resolve.no_symlinks {
                    return Err(Errno::ELOOP);
                }
                // A /proc magic link (`> /dev/stderr` on a pipe) names a file that exists:
                // it is opened, never created through its text.
                if let Some(file) =
                    fs::vfs::resolve::magic_jump(child.inode(), &parent.dir.mount, resolve)
                        .map_err(Errno)?
                {
                    if file.inode().file_type() == FileType::Directory {
                        return Err(Errno::EISDIR);
                    }
                    return Ok(file);
                }
                let target = child.inode().readlink().map_err(Errno)?;
                if target.is_empty() {
                    return Err(Errno::ENOENT);
                }
                let creds = fs_creds(t);
                let root = t.fs.root();
                let r = fs::vfs::Resolver {
                    ns: &t.fs.ns(),
                    root: &root,
                    creds: &creds,
                };
                parent = r
                    .resolve_parent(&parent.dir, &target, ResolveFlags::follow())
                    .map_err(Errno)?;
            }
            Ok(child) => {
                let loc = Location {
                    dentry: child,
                    mount: parent.dir.mount.clone(),
                };
                let loc = t.fs.ns().mounted_at(&loc).unwrap_or(loc);
                if loc.inode().file_type() == FileType::Directory {
                    return Err(Errno::EISDIR);
                }
                return Ok(loc);
            }
            Err(libc::ENOENT) => return create_regular(t, &parent.dir, &parent.name, mode),
            Err(e) => return Err(Errno(e)),
        }
    }
}

/// An O_TMPFILE open: an unnamed file in the directory `path`.
fn open_tmpfile(
    t: &TaskState,
    dirfd: u64,
    path: &[u8],
    mode: u32,
    linkable: bool,
) -> Result<Location, Errno> {
    let dir = resolve_at(t, dirfd, path, ResolveFlags::follow())?;
    if dir.inode().file_type() != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    let creds = fs_creds(t);
    perm::check_inode(&**dir.inode(), &creds, perm::MAY_WRITE | perm::MAY_EXEC).map_err(Errno)?;
    if read_only(&dir) {
        return Err(Errno::EROFS);
    }
    let owner = Owner {
        uid: creds.uid,
        gid: creds.gid,
    };
    let new = acl::inherit(&**dir.inode(), FileType::Regular, mode & 0o7777, t.umask);
    let inode = dir
        .inode()
        .create_tmpfile(new.mode, owner, linkable)
        .map_err(Errno)?;
    give_inherited_acls(&new, &*inode);
    // A name outside the tree: /proc shows it as "/#ino (deleted)" like Linux's.
    let ino = inode.stat().map(|s| s.ino).unwrap_or(0);
    let dentry = fs::vfs::Dentry::new_root(inode);
    let detached = dir
        .dentry
        .insert_child(format!("#{ino}").as_bytes(), dentry.inode().clone());
    dir.dentry.remove_child(format!("#{ino}").as_bytes());
    Ok(Location {
        dentry: detached,
        mount: dir.mount.clone(),
    })
}

/// The common path of open, openat, openat2 and creat.
pub fn do_open(
    t: &mut TaskState,
    dirfd: u64,
    path: &[u8],
    flags: u64,
    mode: u32,
    resolve: ResolveFlags,
) -> SysResult {
    if path.is_empty() {
        return Err(Errno::ENOENT);
    }
    let flags = flags as u32 as i32;
    let path_only = flags & libc::O_PATH != 0;
    let acc = flags & libc::O_ACCMODE;
    let wants_write = !path_only && (acc == libc::O_WRONLY || acc == libc::O_RDWR);
    let wants_read = !path_only && (acc == libc::O_RDONLY || acc == libc::O_RDWR);
    let tmpfile = flags & libc::O_TMPFILE == libc::O_TMPFILE;
    let creating = !path_only && flags & libc::O_CREAT != 0;
    if (tmpfile && !wants_write) || (creating && !tmpfile && flags & libc::O_DIRECTORY != 0) {
        return Err(Errno::EINVAL);
    }
    // Linux reserves the descriptor before touching the file system: no file is created
    // when the table is full.
    let limit = fd_limit(t);
    if t.fds.lowest_free(0) as u64 >= limit {
        return Err(Errno::EMFILE);
    }
    let follow = flags & libc::O_NOFOLLOW == 0;
    let resolve = ResolveFlags { follow, ..resolve };
    let creds = fs_creds(t);

    let loc = if tmpfile {
        open_tmpfile(t, dirfd, path, mode, flags & libc::O_EXCL == 0)?
    } else if creating {
        open_or_create(t, dirfd, path, flags, mode, resolve)?
    } else {
        resolve_at(t, dirfd, path, resolve)?
    };

    let inode = loc.inode().clone();
    let ftype = inode.file_type();
    if flags & libc::O_DIRECTORY != 0 && !tmpfile && ftype != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    if ftype == FileType::Symlink && !path_only {
        return Err(Errno::ELOOP);
    }
    let truncate = flags & libc::O_TRUNC != 0 && !path_only;
    if ftype == FileType::Directory && (wants_write || truncate) && !tmpfile {
        return Err(Errno::EISDIR);
    }
    let (mut write_access, mut read_access) = (None, None);
    if !path_only {
        let stat = inode.stat().map_err(Errno)?;
        let mut mask = 0;
        if wants_read {
            mask |= perm::MAY_READ;
        }
        if wants_write || truncate {
            mask |= perm::MAY_WRITE;
        }
        perm::check(&*inode, &stat, &creds, mask).map_err(Errno)?;
        if flags & libc::O_NOATIME != 0
            && t.creds.euid != stat.uid
            && !crate::caps::capable(&t.creds, crate::caps::Cap::Fowner)
        {
            return Err(Errno::EPERM);
        }
        let writes_content = matches!(ftype, FileType::Regular | FileType::Directory);
        if writes_content && (wants_write || truncate) && read_only(&loc) {
            return Err(Errno::EROFS);
        }
        // A file a process runs can't be opened for writing or truncated (ETXTBSY).
        if ftype == FileType::Regular && wants_write {
            write_access = Some(fs::vfs::write_access::get_write(&*inode).map_err(Errno)?);
        } else if ftype == FileType::Regular && truncate {
            fs::vfs::write_access::check_write(&*inode).map_err(Errno)?;
        }
        if ftype == FileType::Regular {
            if !wants_write {
                read_access = Some(fs::vfs::write_access::get_read(&*inode).map_err(Errno)?);
            }
            // Counted first, as Linux's do_dentry_open: a lease taken meanwhile sees us.
            let nonblock = flags & libc::O_NONBLOCK != 0;
            fs::lease::break_for_open(&*inode, wants_write, nonblock).map_err(Errno)?;
        }
        // Linux truncates even with O_RDONLY, given write permission.
        if truncate && ftype == FileType::Regular {
            inode
                .setattr(&SetAttr {
                    size: Some(0),
                    ..Default::default()
                })
                .map_err(Errno)?;
        }
    }
    let status = (flags as u32
        & (libc::O_ACCMODE
            | libc::O_APPEND
            | libc::O_NONBLOCK
            | libc::O_DSYNC
            | libc::O_SYNC
            | libc::O_DIRECT
            | libc::O_NOATIME
            | libc::O_PATH
            | libc::O_ASYNC) as u32)
        | O_LARGEFILE;
    // Device nodes on a nodev mount don't open (Linux's may_open_dev). A terminal reached
    // through /proc/PID/fd/N is judged on Linux by its own mount, which a host stream
    // doesn't have in the sandbox: not by /proc's.
    if !path_only
        && matches!(ftype, FileType::CharDevice | FileType::BlockDevice)
        && loc.mount.nodev()
        && !crate::procfs::is_reopened(&*inode)
    {
        return Err(Errno::EACCES);
    }
    let file = if path_only {
        OpenFile::new(Some(loc), inode, status)
    } else {
        match inode.open(flags).map_err(Errno)? {
            Some(desc) => {
                if let Some(master) = desc
                    .as_any()
                    .and_then(|a| a.downcast_ref::<fs::devpts::Master>())
                {
                    master.set_owner(creds.uid);
                } else if flags & libc::O_NOCTTY == 0 {
                    super::tty::take_as_controlling(t, &desc);
                }
                if crate::procfs::is_reopened(&*inode) {
                    // A pipe or host stream opened again through /proc/PID/fd/N: as the
                    // file it came from, it has no path (and shows as pipe:[INO]).
                    OpenFile::special(None, None, desc, status)
                } else {
                    OpenFile::special(Some(loc), Some(inode), desc, status)
                }
            }
            None => match ftype {
                FileType::Regular | FileType::Directory => OpenFile::new(Some(loc), inode, status),
                // Character devices are the sandbox's own, by number; host devices seen
                // through a host directory have numbers the sandbox doesn't serve.
                FileType::CharDevice => {
                    let rdev = inode.stat().map_err(Errno)?.rdev;
                    let desc = if rdev == fs::dev::TTY {
                        controlling_terminal(t)?
                    } else {
                        fs::dev::open(rdev).ok_or(Errno(libc::ENXIO))?
                    };
                    OpenFile::special(Some(loc), Some(inode), desc, status)
                }
                // Every open of a FIFO shares one pipe buffer, the sandbox's own (a host
                // FIFO seen through a host directory doesn't reach host processes).
                FileType::Fifo => {
                    let st = inode.stat().map_err(Errno)?;
                    let nonblock = flags & libc::O_NONBLOCK != 0;
                    let end = fs::pipe::open_fifo(st.dev, st.ino, acc, nonblock).map_err(Errno)?;
                    OpenFile::special(Some(loc), Some(inode), end, status)
                }
                // Sockets are opened with connect, never open.
                _ => return Err(Errno(libc::ENXIO)),
            },
        }
    };
    if let Some(access) = write_access {
        file.hold_write_access(access);
    }
    if let Some(access) = read_access {
        file.hold_read_access(access);
    }
    if fs::inotify::active() {
        file.notify(fs::inotify::IN_OPEN);
        if truncate && ftype == FileType::Regular {
            file.notify(fs::inotify::IN_MODIFY);
        }
    }
    let cloexec = flags & libc::O_CLOEXEC != 0;
    Ok(t.fds.alloc(0, file, cloexec, limit)? as u64)
}

/// `/dev/tty`: the caller's controlling terminal, or ENXIO without one (Linux's tty_open_current_tty).
///
/// Partial: the file shares the terminal's open file description (the one the session got
/// its terminal through), where Linux opens a new one; status flags set with fcntl on one
/// are seen on the other.
fn controlling_terminal(t: &TaskState) -> Result<std::sync::Arc<dyn fs::FileDescription>, Errno> {
    let tty = t.kernel.ctty(t.pid).ok_or(Errno(libc::ENXIO))?;
    t.kernel.ttys.device(tty).ok_or(Errno(libc::ENXIO))
}

pub fn open(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let path = read_path(t, a[0])?;
    do_open(
        t,
        libc::AT_FDCWD as u64,
        &path,
        a[1],
        a[2] as u32,
        ResolveFlags::default(),
    )
}

pub fn openat(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let path = read_path(t, a[1])?;
    do_open(t, a[0], &path, a[2], a[3] as u32, ResolveFlags::default())
}

pub fn creat(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let path = read_path(t, a[0])?;
    let flags = (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64;
    do_open(
        t,
        libc::AT_FDCWD as u64,
        &path,
        flags,
        a[1] as u32,
        ResolveFlags::default(),
    )
}

pub fn openat2(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (dirfd, path_addr, how_addr, size) = (a[0], a[1], a[2], a[3]);
    // struct open_how { u64 flags; u64 mode; u64 resolve; }, extensible.
    if size < 24 {
        return Err(Errno::EINVAL);
    }
    if size > 4096 {
        return Err(Errno::E2BIG);
    }
    let mut how = vec![0u8; size as usize];
    t.mm.copy_in(how_addr, &mut how)?;
    if how[24..].iter().any(|&b| b != 0) {
        return Err(Errno::E2BIG);
    }
    let word = |i: usize| u64::from_le_bytes(how[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    let (flags, mode, resolve) = (word(0), word(1), word(2));
    if flags & !VALID_OPEN_FLAGS != 0 || flags >> 32 != 0 {
        return Err(Errno::EINVAL);
    }
    let creating = flags & (libc::O_CREAT as u64) != 0
        || flags & (libc::O_TMPFILE as u64) == libc::O_TMPFILE as u64;
    if mode & !0o7777 != 0 || (!creating && mode != 0) {
        return Err(Errno::EINVAL);
    }
    let known = RESOLVE_NO_XDEV
        | RESOLVE_NO_MAGICLINKS
        | RESOLVE_NO_SYMLINKS
        | RESOLVE_BENEATH
        | RESOLVE_IN_ROOT
        | RESOLVE_CACHED;
    if resolve & !known != 0
        || resolve & (RESOLVE_BENEATH | RESOLVE_IN_ROOT) == (RESOLVE_BENEATH | RESOLVE_IN_ROOT)
    {
        return Err(Errno::EINVAL);
    }
    // Linux's build_open_flags: a cached lookup never creates, truncates or makes a
    // temporary file (O_TMPFILE without its O_DIRECTORY bit is __O_TMPFILE).
    let never_cached =
        (libc::O_CREAT | libc::O_TRUNC | (libc::O_TMPFILE & !libc::O_DIRECTORY)) as u64;
    if resolve & RESOLVE_CACHED != 0 && flags & never_cached != 0 {
        return Err(Errno::EAGAIN);
    }
    let path = read_path(t, path_addr)?;
    let rflags = ResolveFlags {
        follow: true,
        beneath: resolve & RESOLVE_BENEATH != 0,
        in_root: resolve & RESOLVE_IN_ROOT != 0,
        no_symlinks: resolve & RESOLVE_NO_SYMLINKS != 0,
        no_magiclinks: resolve & RESOLVE_NO_MAGICLINKS != 0,
        no_xdev: resolve & RESOLVE_NO_XDEV != 0,
    };
    do_open(t, dirfd, &path, flags, mode as u32, rflags)
}

pub fn close(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    t.fds.remove(a[0])?;
    Ok(0)
}

const CLOSE_RANGE_UNSHARE: u64 = 2;
const CLOSE_RANGE_CLOEXEC: u64 = 4;

pub fn close_range(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (first, last, flags) = (a[0] as u32, a[1] as u32, a[2]);
    if flags & !(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC) != 0 || first > last {
        return Err(Errno::EINVAL);
    }
    // The table is per process until threads share it, so UNSHARE has nothing to do.
    t.fds
        .close_range(first, last, flags & CLOSE_RANGE_CLOEXEC != 0);
    Ok(0)
}

pub fn dup(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    let limit = fd_limit(t);
    Ok(t.fds.alloc(0, file, false, limit)? as u64)
}

fn dup_to(t: &mut TaskState, old: u64, new: u64, cloexec: bool) -> SysResult {
    let file = t.fds.get(old)?;
    let new_fd = i32::try_from(new as i64).map_err(|_| Errno::EBADF)?;
    if new_fd < 0 || new_fd as u64 >= fd_limit(t) {
        return Err(Errno::EBADF);
    }
    t.fds.install(new_fd, file, cloexec);
    Ok(new_fd as u64)
}

pub fn dup2(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    if a[0] == a[1] {
        t.fds.get(a[0])?;
        return Ok(a[1]);
    }
    dup_to(t, a[0], a[1], false)
}

pub fn dup3(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let flags = a[2] as i32;
    if flags & !libc::O_CLOEXEC != 0 || a[0] == a[1] {
        return Err(Errno::EINVAL);
    }
    dup_to(t, a[0], a[1], flags & libc::O_CLOEXEC != 0)
}

pub fn fcntl(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (fd, cmd, arg) = (a[0], a[1] as i32, a[2]);
    let file = t.fds.get(fd)?;
    // Linux's check_fcntl_cmd: an O_PATH descriptor answers only these.
    if file.flags() & libc::O_PATH as u32 != 0
        && !matches!(
            cmd,
            libc::F_DUPFD | libc::F_DUPFD_CLOEXEC | libc::F_GETFD | libc::F_SETFD | libc::F_GETFL
        )
    {
        return Err(Errno::EBADF);
    }
    match cmd {
        libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => {
            let limit = fd_limit(t);
            let min = i32::try_from(arg as i64).map_err(|_| Errno::EINVAL)?;
            if min < 0 || min as u64 >= limit {
                return Err(Errno::EINVAL);
            }
            let cloexec = cmd == libc::F_DUPFD_CLOEXEC;
            Ok(t.fds.alloc(min, file, cloexec, limit)? as u64)
        }
        libc::F_GETFD => Ok(t.fds.entry(fd)?.cloexec as u64),
        libc::F_SETFD => {
            t.fds.set_cloexec(fd, arg & libc::FD_CLOEXEC as u64 != 0)?;
            Ok(0)
        }
        libc::F_GETFL => Ok(file.flags() as u64),
        libc::F_SETFL => {
            let noatime = libc::O_NOATIME as u32;
            if arg as u32 & noatime != 0 && file.flags() & noatime == 0 {
                check_noatime(t, &file)?;
            }
            file.set_flags(arg as u32);
            crate::sigio::update(&t.kernel, &file, fd as i32);
            Ok(0)
        }
        F_GETOWN => {
            let o = file.owner.lock().unwrap_or_else(|e| e.into_inner());
            let id = crate::namespaces::pid_view(&t.process, o.id);
            Ok(if o.kind == sigio::F_OWNER_PGRP {
                -(id as i64) as u64
            } else {
                id as u64
            })
        }
        F_SETOWN => {
            let who = arg as i32;
            if who == i32::MIN {
                return Err(Errno::EINVAL);
            }
            let kind = if who < 0 {
                sigio::F_OWNER_PGRP
            } else {
                sigio::F_OWNER_PID
            };
            set_owner(t, &file, kind, who.abs())
        }
        F_GETOWN_EX => {
            let (kind, id) = {
                let o = file.owner.lock().unwrap_or_else(|e| e.into_inner());
                (o.kind, crate::namespaces::pid_view(&t.process, o.id))
            };
            let mut b = [0u8; 8];
            b[..4].copy_from_slice(&kind.to_le_bytes());
            b[4..].copy_from_slice(&id.to_le_bytes());
            t.mm.copy_out(arg, &b)?;
            Ok(0)
        }
        F_SETOWN_EX => {
            let mut b = [0u8; 8];
            t.mm.copy_in(arg, &mut b)?;
            let kind = i32::from_le_bytes(b[..4].try_into().expect("4 bytes"));
            let id = i32::from_le_bytes(b[4..].try_into().expect("4 bytes"));
            if !matches!(
                kind,
                sigio::F_OWNER_TID | sigio::F_OWNER_PID | sigio::F_OWNER_PGRP
            ) || id < 0
            {
                return Err(Errno::EINVAL);
            }
            set_owner(t, &file, kind, id)
        }
        F_NOTIFY => {
            // Linux's fcntl_dirnotify: removal first, then directories only; the caller
            // becomes the description's owner.
            if arg as u32 & !fs::inotify::DN_MULTISHOT != 0 {
                if file.inode().map(|i| i.file_type()) != Some(FileType::Directory) {
                    return Err(Errno::ENOTDIR);
                }
                set_owner(t, &file, sigio::F_OWNER_PID, t.own_pid())?;
            }
            let signal = sigio::msg_signal(&t.kernel, fd as i32);
            fs::inotify::dnotify(&file, arg as u32, signal).map_err(Errno)?;
            Ok(0)
        }
        F_SETLEASE => set_lease(t, &file, fd as i32, arg as i32),
        F_GETLEASE => Ok(match file.inode() {
            Some(inode) => fs::lease::get(&file, &**inode) as u64,
            None => fs::lease::F_UNLCK as u64,
        }),
        F_GETSIG => Ok(file.owner.lock().unwrap_or_else(|e| e.into_inner()).sig as u64),
        F_SETSIG => {
            let sig = arg as i32;
            if !(0..=crate::signal::NSIG as i32).contains(&sig) || arg >> 32 != 0 {
                return Err(Errno::EINVAL);
            }
            file.owner.lock().unwrap_or_else(|e| e.into_inner()).sig = sig;
            Ok(0)
        }
        libc::F_GETLK
        | libc::F_SETLK
        | libc::F_SETLKW
        | libc::F_OFD_GETLK
        | libc::F_OFD_SETLK
        | libc::F_OFD_SETLKW => super::locks::fcntl_lock(t, &file, cmd, arg),
        super::copy::F_ADD_SEALS | super::copy::F_GET_SEALS => {
            super::copy::fcntl_seals(t, &file, cmd, arg)
        }
        libc::F_GETPIPE_SZ | libc::F_SETPIPE_SZ => {
            let desc = file.special_desc().ok_or(Errno::EBADF)?;
            let set = (cmd == libc::F_SETPIPE_SZ).then_some(arg);
            let privileged = crate::caps::capable(&t.creds, crate::caps::Cap::SysResource);
            desc.pipe_size(set, privileged).map_err(Errno)
        }
        _ => Err(Errno::EINVAL),
    }
}

const F_SETLEASE: i32 = 1024;
const F_GETLEASE: i32 = 1025;
const F_SETOWN: i32 = 8;
const F_GETOWN: i32 = 9;
const F_SETSIG: i32 = 10;
const F_NOTIFY: i32 = 1026;
const F_GETSIG: i32 = 11;
const F_SETOWN_EX: i32 = 15;
const F_GETOWN_EX: i32 = 16;

/// F_SETOWN and F_SETOWN_EX: `id` 0 clears the owner; another must name a live process,
/// thread or group (ESRCH), as Linux's find_vpid. Partial: the owner's credentials aren't
/// kept, so the signal goes without Linux's sigio_perm check.
/// F_SETLEASE, in Linux's order of checks: the lease type, then (vfs_setlease) the file's
/// owner or CAP_LEASE, then a regular file. A lease makes the caller's process the
/// description's owner, which a break signals (SIGIO, or F_SETSIG's signal with POLL_MSG and
/// the descriptor); giving it up clears the owner and F_SETSIG's signal, as Linux's
/// lease_modify does.
fn set_lease(t: &TaskState, file: &std::sync::Arc<OpenFile>, fd: i32, typ: i32) -> SysResult {
    use fs::lease::{F_RDLCK, F_UNLCK, F_WRLCK};
    if ![F_RDLCK, F_WRLCK, F_UNLCK].contains(&typ) {
        return Err(Errno::EINVAL);
    }
    let stat = match file.inode() {
        Some(inode) => Some(inode.stat().map_err(Errno)?),
        None => file.stat().ok(),
    };
    // Pipes and sockets are the caller's own (their inode's owner is their creator). The
    // file-system uid is the effective one here (no setfsuid).
    let owner = stat.as_ref().map_or(t.creds.euid, |s| s.uid);
    if owner != t.creds.euid && !crate::caps::capable(&t.creds, crate::caps::Cap::Lease) {
        return Err(Errno::EACCES);
    }
    let inode = file
        .inode()
        .filter(|i| i.file_type() == FileType::Regular)
        .ok_or(Errno::EINVAL)?;
    let signal = sigio::msg_signal(&t.kernel, fd);
    fs::lease::set(file, &**inode, typ, signal).map_err(Errno)?;
    if typ == F_UNLCK {
        let mut o = file.owner.lock().unwrap_or_else(|e| e.into_inner());
        (o.kind, o.id, o.sig) = (sigio::F_OWNER_TID, 0, 0);
    } else {
        set_owner(t, file, sigio::F_OWNER_PID, t.own_pid())?;
    }
    Ok(0)
}

/// `id` is the caller's pid namespace's; the owner is kept by the kernel's id.
fn set_owner(t: &TaskState, file: &OpenFile, kind: i32, id: i32) -> SysResult {
    let id = if id > 0 {
        crate::namespaces::pid_global(&t.process, id).ok_or(Errno::ESRCH)?
    } else {
        id
    };
    if id != 0 {
        let exists = t.kernel.thread_owner(id).is_some()
            || !t
                .kernel
                .recipients(crate::process::ProcessSet::Group(id))
                .is_empty();
        if !exists {
            return Err(Errno::ESRCH);
        }
    }
    let mut o = file.owner.lock().unwrap_or_else(|e| e.into_inner());
    o.kind = if id == 0 { sigio::F_OWNER_TID } else { kind };
    o.id = id;
    Ok(0)
}

/// O_NOATIME is for the file's owner or a caller with CAP_FOWNER (Linux's
/// inode_owner_or_capable): EPERM otherwise.
fn check_noatime(t: &TaskState, file: &OpenFile) -> Result<(), Errno> {
    let Some(inode) = file.inode() else {
        return Ok(());
    };
    let st = inode.stat().map_err(Errno)?;
    if t.creds.euid == st.uid || crate::caps::capable(&t.creds, crate::caps::Cap::Fowner) {
        return Ok(());
    }
    Err(Errno::EPERM)
}

pub fn pipe2(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let flags = a[1] as i32;
    if flags & !(libc::O_CLOEXEC | libc::O_NONBLOCK | libc::O_DIRECT) != 0 {
        return Err(Errno::EINVAL);
    }
    let (r, w) = fs::pipe::new_pipe();
    let status = (flags & (libc::O_NONBLOCK | libc::O_DIRECT)) as u32;
    let reader = OpenFile::special(None, None, r, status | libc::O_RDONLY as u32);
    let writer = OpenFile::special(None, None, w, status | libc::O_WRONLY as u32);
    let cloexec = flags & libc::O_CLOEXEC != 0;
    let limit = fd_limit(t);
    let rfd = t.fds.alloc(0, reader, cloexec, limit)?;
    let wfd = match t.fds.alloc(0, writer, cloexec, limit) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = t.fds.remove(rfd as u64);
            return Err(e);
        }
    };
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&rfd.to_le_bytes());
    out[4..].copy_from_slice(&wfd.to_le_bytes());
    if let Err(e) = t.mm.copy_out(a[0], &out) {
        let _ = t.fds.remove(rfd as u64);
        let _ = t.fds.remove(wfd as u64);
        return Err(e);
    }
    Ok(0)
}

pub fn pipe(t: &mut TaskState, r: &mut UserRegs, a: [u64; 6]) -> SysResult {
    pipe2(t, r, [a[0], 0, 0, 0, 0, 0])
}
