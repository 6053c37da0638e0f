//! The namespace: mkdir, mknod, unlink, rmdir, rename, link, symlink, readlink, chdir,
//! getcwd, getdents, getdents64.

use fs::inotify;
use fs::vfs::acl;
use fs::vfs::{perm, Dentry, DirentFormat, FileType, Location, NewNode, Owner, ResolveFlags};
use platform::UserRegs;

use super::fd::read_only;
use super::path::{fd_location, fs_creds, read_path, resolve_at, resolve_parent_at};
use crate::errno::{Errno, SysResult};
use crate::task::TaskState;

/// Checks that `dir` may get or lose entries.
fn may_modify_dir(t: &TaskState, dir: &Location) -> Result<(), Errno> {
    perm::check_inode(
        &**dir.inode(),
        &fs_creds(t),
        perm::MAY_WRITE | perm::MAY_EXEC,
    )
    .map_err(Errno)?;
    if read_only(dir) {
        return Err(Errno::EROFS);
    }
    Ok(())
}

/// Creates `node` at `path` (mkdir, mknod, symlink).
fn make_node(t: &mut TaskState, dirfd: u64, path: &[u8], node: NewNode, mode: u32) -> SysResult {
    let parent = resolve_parent_at(t, dirfd, path)?;
    if parent.name.is_empty() || parent.name == b"." || parent.name == b".." {
        return Err(Errno::EEXIST);
    }
    if parent.trailing_slash && node != NewNode::Directory {
        return Err(match parent.dir.dentry.child(&parent.name) {
            Ok(_) => Errno::EEXIST,
            Err(_) => Errno::ENOENT,
        });
    }
    match parent.dir.dentry.child(&parent.name) {
        Ok(_) => return Err(Errno::EEXIST),
        Err(libc::ENOENT) => {}
        Err(e) => return Err(Errno(e)),
    }
    may_modify_dir(t, &parent.dir)?;
    let creds = fs_creds(t);
    let owner = Owner {
        uid: creds.uid,
        gid: creds.gid,
    };
    let is_dir = node == NewNode::Directory;
    let new = acl::inherit(&**parent.dir.inode(), node.file_type(), mode, t.umask);
    let inode = parent
        .dir
        .inode()
        .create(&parent.name, node, new.mode, owner)
        .map_err(Errno)?;
    super::fd::give_inherited_acls(&new, &*inode);
    parent.dir.dentry.insert_child(&parent.name, inode);
    inotify::dir_event(parent.dir.inode(), inotify::IN_CREATE, &parent.name, is_dir);
    Ok(0)
}

pub fn mkdirat(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let path = read_path(t, a[1])?;
    make_node(t, a[0], &path, NewNode::Directory, a[2] as u32 & 0o1777)
}

pub fn mkdir(t: &mut TaskState, r: &mut UserRegs, a: [u64; 6]) -> SysResult {
    mkdirat(t, r, [libc::AT_FDCWD as u64, a[0], a[1], 0, 0, 0])
}

pub fn mknodat(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let path = read_path(t, a[1])?;
    let mode = a[2] as u32;
    let dev = a[3];
    let node = match mode & libc::S_IFMT {
        0 | libc::S_IFREG => NewNode::Regular,
        libc::S_IFIFO => NewNode::Fifo,
        libc::S_IFSOCK => NewNode::Socket,
        libc::S_IFCHR | libc::S_IFBLK => {
            if !crate::caps::capable(&t.creds, crate::caps::Cap::Mknod) {
                return Err(Errno::EPERM);
            }
            if mode & libc::S_IFMT == libc::S_IFCHR {
                NewNode::CharDevice(dev)
            } else {
                NewNode::BlockDevice(dev)
            }
        }
        libc::S_IFDIR => return Err(Errno::EPERM),
        _ => return Err(Errno::EINVAL),
    };
    make_node(t, a[0], &path, node, mode & 0o7777)
}

pub fn mknod(t: &mut TaskState, r: &mut UserRegs, a: [u64; 6]) -> SysResult {
    mknodat(t, r, [libc::AT_FDCWD as u64, a[0], a[1], a[2], 0, 0])
}

pub fn symlinkat(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let target = read_path(t, a[0])?;
    if target.is_empty() {
        return Err(Errno::ENOENT);
    }
    let path = read_path(t, a[2])?;
    make_node(t, a[1], &path, NewNode::Symlink(target), 0o777)
}

pub fn symlink(t: &mut TaskState, r: &mut UserRegs, a: [u64; 6]) -> SysResult {
    symlinkat(t, r, [a[0], libc::AT_FDCWD as u64, a[1], 0, 0, 0])
}

/// Whether a filesystem is mounted on `loc` (it can't be removed or renamed then).
fn is_mountpoint(t: &TaskState, loc: &Location) -> bool {
    t.fs.ns().mounted_at(loc).is_some()
}

fn remove(t: &mut TaskState, dirfd: u64, path: &[u8], dir: bool) -> SysResult {
    let parent = resolve_parent_at(t, dirfd, path)?;
    let name = parent.name.as_slice();
    match name {
        b"" => return Err(if dir { Errno::EBUSY } else { Errno::EISDIR }),
        b"." => return Err(if dir { Errno::EINVAL } else { Errno::EISDIR }),
        b".." => {
            return Err(if dir {
                Errno(libc::ENOTEMPTY)
            } else {
                Errno::EISDIR
            })
        }
        _ => {}
    }
    // Linux asks for write access to the mount before it looks the name up: on a read-only
    // filesystem even a missing name is EROFS.
    if read_only(&parent.dir) {
        return Err(Errno::EROFS);
    }
    let victim = Location {
        dentry: parent.dir.dentry.child(name).map_err(Errno)?,
        mount: parent.dir.mount.clone(),
    };
    let is_dir = victim.inode().file_type() == FileType::Directory;
    if !dir && is_dir {
        return Err(Errno::EISDIR);
    }
    if dir && !is_dir {
        return Err(Errno::ENOTDIR);
    }
    if parent.trailing_slash && !is_dir {
        return Err(Errno::ENOTDIR);
    }
    let creds = fs_creds(t);
    perm::may_delete_from(
        &**parent.dir.inode(),
        &parent.dir.inode().stat().map_err(Errno)?,
        &victim.inode().stat().map_err(Errno)?,
        &creds,
    )
    .map_err(Errno)?;
    if is_mountpoint(t, &victim) {
        return Err(Errno::EBUSY);
    }
    parent.dir.inode().unlink(name, dir).map_err(Errno)?;
    parent.dir.dentry.remove_child(name);
    if inotify::active() {
        inotify::unlinked(&victim.dentry, !is_dir);
        inotify::dir_event(parent.dir.inode(), inotify::IN_DELETE, name, is_dir);
    }
    Ok(0)
}

pub fn unlinkat(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let flags = a[2] as i32;
    if flags & !libc::AT_REMOVEDIR != 0 {
        return Err(Errno::EINVAL);
    }
    let path = read_path(t, a[1])?;
    remove(t, a[0], &path, flags & libc::AT_REMOVEDIR != 0)
}

pub fn unlink(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let path = read_path(t, a[0])?;
    remove(t, libc::AT_FDCWD as u64, &path, false)
}

pub fn rmdir(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let path = read_path(t, a[0])?;
    remove(t, libc::AT_FDCWD as u64, &path, true)
}

const RENAME_NOREPLACE: u64 = 1;
const RENAME_EXCHANGE: u64 = 2;
const RENAME_WHITEOUT: u64 = 4;

pub fn renameat2(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let flags = a[4];
    if flags & !(RENAME_NOREPLACE | RENAME_EXCHANGE | RENAME_WHITEOUT) != 0
        || flags & (RENAME_NOREPLACE | RENAME_EXCHANGE) == (RENAME_NOREPLACE | RENAME_EXCHANGE)
        || flags & RENAME_WHITEOUT != 0
    {
        return Err(Errno::EINVAL);
    }
    let old_path = read_path(t, a[1])?;
    let new_path = read_path(t, a[3])?;
    let old = resolve_parent_at(t, a[0], &old_path)?;
    let new = resolve_parent_at(t, a[2], &new_path)?;
    let special = |n: &[u8]| n.is_empty() || n == b"." || n == b"..";
    if special(&old.name) || special(&new.name) {
        return Err(if flags & RENAME_NOREPLACE != 0 && !special(&old.name) {
            Errno::EEXIST
        } else {
            Errno::EBUSY
        });
    }
    if !std::sync::Arc::ptr_eq(&old.dir.mount, &new.dir.mount) {
        return Err(Errno(libc::EXDEV));
    }
    // As in Linux, before any lookup: a rename on a read-only filesystem is EROFS even when
    // the source is missing or is the target.
    if read_only(&old.dir) {
        return Err(Errno::EROFS);
    }
    let source = Location {
        dentry: old.dir.dentry.child(&old.name).map_err(Errno)?,
        mount: old.dir.mount.clone(),
    };
    let source_is_dir = source.inode().file_type() == FileType::Directory;
    let target = match new.dir.dentry.child(&new.name) {
        Ok(d) => Some(Location {
            dentry: d,
            mount: new.dir.mount.clone(),
        }),
        Err(libc::ENOENT) => None,
        Err(e) => return Err(Errno(e)),
    };
    if flags & RENAME_EXCHANGE != 0 && target.is_none() {
        return Err(Errno::ENOENT);
    }
    if !source_is_dir && (old.trailing_slash || new.trailing_slash) && flags & RENAME_EXCHANGE == 0
    {
        return Err(Errno::ENOTDIR);
    }
    // A directory can't move below itself; nor can the target be an ancestor of the source.
    if source_is_dir && new.dir.dentry.is_descendant_of(&source.dentry) {
        return Err(Errno::EINVAL);
    }
    if let Some(target) = &target {
        if std::sync::Arc::ptr_eq(target.inode(), source.inode()) {
            return Ok(0);
        }
        if old.dir.dentry.is_descendant_of(&target.dentry) {
            return Err(Errno(if flags & RENAME_EXCHANGE != 0 {
                libc::EINVAL
            } else {
                libc::ENOTEMPTY
            }));
        }
        if is_mountpoint(t, target) {
            return Err(Errno::EBUSY);
        }
    }
    if is_mountpoint(t, &source) {
        return Err(Errno::EBUSY);
    }
    let creds = fs_creds(t);
    let old_dir_stat = old.dir.inode().stat().map_err(Errno)?;
    perm::may_delete_from(
        &**old.dir.inode(),
        &old_dir_stat,
        &source.inode().stat().map_err(Errno)?,
        &creds,
    )
    .map_err(Errno)?;
    let new_dir_stat = new.dir.inode().stat().map_err(Errno)?;
    match &target {
        Some(tg) => perm::may_delete_from(
            &**new.dir.inode(),
            &new_dir_stat,
            &tg.inode().stat().map_err(Errno)?,
            &creds,
        )
        .map_err(Errno)?,
        None => perm::check(
            &**new.dir.inode(),
            &new_dir_stat,
            &creds,
            perm::MAY_WRITE | perm::MAY_EXEC,
        )
        .map_err(Errno)?,
    }
    // Moving a directory to another parent rewrites its "..": it must be writable.
    if source_is_dir && !std::sync::Arc::ptr_eq(&old.dir.dentry, &new.dir.dentry) {
        perm::check_inode(&**source.inode(), &creds, perm::MAY_WRITE).map_err(Errno)?;
    }
    old.dir
        .inode()
        .rename(&old.name, new.dir.inode(), &new.name, flags as u32)
        .map_err(Errno)?;
    Dentry::move_child(
        &old.dir.dentry,
        &old.name,
        &new.dir.dentry,
        &new.name,
        flags & RENAME_EXCHANGE != 0,
    );
    if inotify::active() {
        // Linux's fsnotify_move: the pair of names, the replaced target's link count, the
        // source's IN_MOVE_SELF; an exchange is two moves; a replaced target goes last.
        let (od, nd) = (old.dir.inode(), new.dir.inode());
        inotify::moved(od, &old.name, nd, &new.name, source.inode());
        let exchange = flags & RENAME_EXCHANGE != 0;
        if let (Some(tg), false) = (&target, exchange) {
            inotify::inode_event(tg.inode(), inotify::IN_ATTRIB);
        }
        inotify::move_self(source.inode());
        if let Some(tg) = &target {
            if exchange {
                inotify::moved(nd, &new.name, od, &old.name, tg.inode());
                inotify::move_self(tg.inode());
            } else {
                inotify::unlinked(&tg.dentry, false);
            }
        }
    }
    Ok(0)
}

pub fn renameat(t: &mut TaskState, r: &mut UserRegs, a: [u64; 6]) -> SysResult {
    renameat2(t, r, [a[0], a[1], a[2], a[3], 0, 0])
}

pub fn rename(t: &mut TaskState, r: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let cwd = libc::AT_FDCWD as u64;
    renameat2(t, r, [cwd, a[0], cwd, a[1], 0, 0])
}

pub fn linkat(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let flags = a[4] as i32;
    if flags & !(libc::AT_SYMLINK_FOLLOW | libc::AT_EMPTY_PATH) != 0 {
        return Err(Errno::EINVAL);
    }
    let old_path = read_path(t, a[1])?;
    let new_path = read_path(t, a[3])?;
    let source = if old_path.is_empty() {
        if flags & libc::AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        fd_location(t, a[0])?.0.ok_or(Errno::EBADF)?
    } else {
        let follow = if flags & libc::AT_SYMLINK_FOLLOW != 0 {
            ResolveFlags::follow()
        } else {
            ResolveFlags::nofollow()
        };
        resolve_at(t, a[0], &old_path, follow)?
    };
    if source.inode().file_type() == FileType::Directory {
        return Err(Errno::EPERM);
    }
    let new = resolve_parent_at(t, a[2], &new_path)?;
    if new.name.is_empty() || new.name == b"." || new.name == b".." {
        return Err(Errno::EEXIST);
    }
    match new.dir.dentry.child(&new.name) {
        Ok(_) => return Err(Errno::EEXIST),
        // "name/" can only name a directory, and links to directories don't exist.
        Err(libc::ENOENT) if new.trailing_slash => return Err(Errno::ENOENT),
        _ => {}
    }
    if !std::sync::Arc::ptr_eq(&source.mount, &new.dir.mount) {
        return Err(Errno(libc::EXDEV));
    }
    may_modify_dir(t, &new.dir)?;
    new.dir
        .inode()
        .link(&new.name, source.inode())
        .map_err(Errno)?;
    new.dir
        .dentry
        .insert_child(&new.name, source.inode().clone());
    if inotify::active() {
        inotify::inode_event(source.inode(), inotify::IN_ATTRIB);
        inotify::dir_event(new.dir.inode(), inotify::IN_CREATE, &new.name, false);
    }
    Ok(0)
}

pub fn link(t: &mut TaskState, r: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let cwd = libc::AT_FDCWD as u64;
    linkat(t, r, [cwd, a[0], cwd, a[1], 0, 0])
}

pub fn readlinkat(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (dirfd, path_addr, buf, size) = (a[0], a[1], a[2], a[3]);
    if size as i64 <= 0 {
        return Err(Errno::EINVAL);
    }
    let path = read_path(t, path_addr)?;
    let inode = if path.is_empty() {
        // Only an O_PATH descriptor of a symlink has a link to read; anything else is as if
        // the empty name didn't exist.
        let (loc, _) = fd_location(t, dirfd)?;
        let inode = loc.ok_or(Errno::ENOENT)?.inode().clone();
        if inode.file_type() != FileType::Symlink {
            return Err(Errno::ENOENT);
        }
        inode
    } else {
        resolve_at(t, dirfd, &path, ResolveFlags::nofollow())?
            .inode()
            .clone()
    };
    if inode.file_type() != FileType::Symlink {
        return Err(Errno::EINVAL);
    }
    let target = inode.readlink().map_err(Errno)?;
    let n = target.len().min(size.min(i32::MAX as u64) as usize);
    t.mm.copy_out(buf, &target[..n])?;
    Ok(n as u64)
}

pub fn readlink(t: &mut TaskState, r: &mut UserRegs, a: [u64; 6]) -> SysResult {
    readlinkat(t, r, [libc::AT_FDCWD as u64, a[0], a[1], a[2], 0, 0])
}

fn set_cwd(t: &mut TaskState, loc: Location) -> SysResult {
    if loc.inode().file_type() != FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    perm::check_inode(&**loc.inode(), &fs_creds(t), perm::MAY_EXEC).map_err(Errno)?;
    t.fs.set_cwd(loc);
    Ok(0)
}

pub fn chdir(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let path = read_path(t, a[0])?;
    let loc = resolve_at(t, libc::AT_FDCWD as u64, &path, ResolveFlags::follow())?;
    set_cwd(t, loc)
}

pub fn fchdir(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    let loc = file.location.clone().ok_or(Errno::ENOTDIR)?;
    set_cwd(t, loc)
}

pub fn getcwd(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let ns = t.fs.ns();
    let (loc, root) = (t.fs.cwd(), t.fs.root());
    let mut cwd = ns.path(&loc, &root);
    // A working directory the root doesn't reach (left outside by chroot) is shown as
    // Linux's getcwd shows it; glibc and musl make that ENOENT.
    if !ns.reachable(&loc, &root) {
        let mut v = b"(unreachable)".to_vec();
        v.extend_from_slice(&cwd);
        cwd = v;
    }
    if t.fs.cwd().dentry.is_dead() {
        // Linux reports a removed working directory as unreachable.
        return Err(Errno::ENOENT);
    }
    cwd.push(0);
    if (a[1] as usize) < cwd.len() {
        return Err(Errno::ERANGE);
    }
    t.mm.copy_out(a[0], &cwd)?;
    Ok(cwd.len() as u64)
}

pub fn getdents64(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    getdents_as(t, a, DirentFormat::Dirent64)
}

/// The old getdents: `struct linux_dirent`, d_type in each record's last byte.
pub fn getdents(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    getdents_as(t, a, DirentFormat::Dirent)
}

fn getdents_as(t: &mut TaskState, a: [u64; 6], format: DirentFormat) -> SysResult {
    let file = t.fds.get(a[0])?;
    let max = a[2].min(1 << 20) as usize;
    t.mm.check_range(a[1], max, true)?;
    // A removed directory lists nothing, not even "." and "..".
    if file.location.as_ref().is_some_and(|l| l.dentry.is_dead()) {
        return Ok(0);
    }
    let parent_ino = match &file.location {
        Some(loc) => {
            let up = if loc.is_mount_root() {
                match loc.mount.parent() {
                    Some((_, d)) => d.parent().unwrap_or_else(|| d.clone()),
                    None => loc.dentry.clone(),
                }
            } else {
                loc.dentry.parent().unwrap_or_else(|| loc.dentry.clone())
            };
            up.inode().stat().map(|s| s.ino).unwrap_or(0)
        }
        None => 0,
    };
    let bytes = file.getdents(max, parent_ino, format).map_err(Errno)?;
    t.mm.copy_out(a[1], &bytes)?;
    Ok(bytes.len() as u64)
}
