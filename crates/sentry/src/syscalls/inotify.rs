//! inotify_init, inotify_init1, inotify_add_watch, inotify_rm_watch. The instances, watches
//! and events are `fs::inotify`'s; the VFS hooks that report changes are in the calls that
//! make them (open, read, write, close, setattr, namespace changes).

use fs::inotify::{self as ino, Inotify};
use fs::vfs::{perm, FileType, OpenFile, ResolveFlags};
use platform::UserRegs;

use super::fd::fd_limit;
use super::path::{fs_creds, read_path, resolve_at};
use crate::errno::{Errno, SysResult};
use crate::task::TaskState;

pub fn inotify_init1(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let flags = a[0] as u32 as i32;
    if flags & !(libc::IN_NONBLOCK | libc::IN_CLOEXEC) != 0 {
        return Err(Errno::EINVAL);
    }
    let limit = fd_limit(t);
    if t.fds.lowest_free(0) as u64 >= limit {
        return Err(Errno::EMFILE);
    }
    let inst = Inotify::new(t.creds.uid).map_err(Errno)?;
    // An inotify descriptor is read-only: write gives EBADF, as on Linux.
    let status = libc::O_RDONLY as u32 | (flags & libc::IN_NONBLOCK) as u32;
    let file = OpenFile::special(None, None, inst, status);
    Ok(t.fds.alloc(0, file, flags & libc::IN_CLOEXEC != 0, limit)? as u64)
}

pub fn inotify_init(t: &mut TaskState, r: &mut UserRegs, _: [u64; 6]) -> SysResult {
    inotify_init1(t, r, [0; 6])
}

/// The instance open at `fd`: EBADF for no descriptor, EINVAL for another kind of file.
fn instance(t: &TaskState, fd: u64) -> Result<std::sync::Arc<OpenFile>, Errno> {
    let file = t.fds.get(fd)?;
    match file.special_desc().and_then(ino::instance) {
        Some(_) => Ok(file),
        None => Err(Errno::EINVAL),
    }
}

pub fn inotify_add_watch(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let mask = a[2] as u32;
    if mask & ino::ALL_INOTIFY_BITS == 0 {
        return Err(Errno::EINVAL);
    }
    if mask & ino::IN_MASK_ADD != 0 && mask & ino::IN_MASK_CREATE != 0 {
        return Err(Errno::EINVAL);
    }
    let file = instance(t, a[0])?;
    let path = read_path(t, a[1])?;
    let flags = if mask & ino::IN_DONT_FOLLOW != 0 {
        ResolveFlags::nofollow()
    } else {
        ResolveFlags::follow()
    };
    let loc = resolve_at(t, libc::AT_FDCWD as u64, &path, flags)?;
    let inode = loc.inode().clone();
    if mask & ino::IN_ONLYDIR != 0 && inode.file_type() != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    perm::check_inode(&*inode, &fs_creds(t), perm::MAY_READ).map_err(Errno)?;
    let inst = file
        .special_desc()
        .and_then(ino::instance)
        .ok_or(Errno::EINVAL)?;
    Ok(inst.add_watch(&inode, mask).map_err(Errno)? as u64)
}

pub fn inotify_rm_watch(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = instance(t, a[0])?;
    let inst = file
        .special_desc()
        .and_then(ino::instance)
        .ok_or(Errno::EINVAL)?;
    inst.rm_watch(a[1] as u32 as i32).map_err(Errno)?;
    Ok(0)
}
