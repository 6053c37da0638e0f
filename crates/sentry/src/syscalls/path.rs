//! Helpers shared by the path-based system calls: reading paths from the guest, picking the
//! starting directory of `*at` calls, and resolving.

use fs::vfs::{Creds, Location, OpenFile, Parent, ResolveFlags, Resolver};

use crate::errno::Errno;
use crate::task::TaskState;

/// `AT_FDCWD` as the guest passes it in a 64-bit register.
pub const AT_FDCWD: i32 = libc::AT_FDCWD;

/// Reads a path argument: EFAULT for a bad pointer, ENAMETOOLONG past PATH_MAX.
pub fn read_path(t: &mut TaskState, addr: u64) -> Result<Vec<u8>, Errno> {
    t.mm.copy_in_cstring(addr, fs::vfs::resolve::PATH_MAX)
}

/// The credentials file access is checked with.
pub fn fs_creds(t: &TaskState) -> Creds {
    t.creds.fs_creds()
}

/// The directory a relative path starts from: the cwd for AT_FDCWD, else the directory open
/// at `dirfd` (ENOTDIR if it is not one). Absolute paths ignore it, as Linux does, but an
/// invalid dirfd is still EBADF only when the path is relative.
pub fn start_dir(t: &TaskState, dirfd: u64, path: &[u8]) -> Result<Location, Errno> {
    start_dir_with(t, dirfd, path, false)
}

/// As [`start_dir`]; `scoped` (RESOLVE_BENEATH / RESOLVE_IN_ROOT) makes even an absolute
/// path start at `dirfd`, which is then its root.
fn start_dir_with(t: &TaskState, dirfd: u64, path: &[u8], scoped: bool) -> Result<Location, Errno> {
    if dirfd as i64 as i32 == AT_FDCWD || (!scoped && path.first() == Some(&b'/')) {
        return Ok(t.fs.cwd());
    }
    let file = t.fds.get(dirfd)?;
    let loc = file.location.clone().ok_or(Errno::ENOTDIR)?;
    if loc.inode().file_type() != fs::vfs::FileType::Directory {
        return Err(Errno::ENOTDIR);
    }
    Ok(loc)
}

/// Resolves `path` relative to `dirfd`.
pub fn resolve_at(
    t: &TaskState,
    dirfd: u64,
    path: &[u8],
    flags: ResolveFlags,
) -> Result<Location, Errno> {
    let start = start_dir_with(t, dirfd, path, flags.beneath || flags.in_root)?;
    let creds = fs_creds(t);
    let r = Resolver {
        ns: &t.fs.ns(),
        root: &t.fs.root(),
        creds: &creds,
    };
    r.resolve(&start, path, flags).map_err(Errno)
}

/// Resolves all but the last component of `path` relative to `dirfd`.
pub fn resolve_parent_at(t: &TaskState, dirfd: u64, path: &[u8]) -> Result<Parent, Errno> {
    let start = start_dir(t, dirfd, path)?;
    let creds = fs_creds(t);
    let r = Resolver {
        ns: &t.fs.ns(),
        root: &t.fs.root(),
        creds: &creds,
    };
    r.resolve_parent(&start, path, ResolveFlags::follow())
        .map_err(Errno)
}

/// The location an `AT_EMPTY_PATH` call refers to: the file open at `dirfd` (or the cwd).
pub fn fd_location(
    t: &TaskState,
    dirfd: u64,
) -> Result<(Option<Location>, Option<std::sync::Arc<OpenFile>>), Errno> {
    if dirfd as i64 as i32 == AT_FDCWD {
        return Ok((Some(t.fs.cwd()), None));
    }
    let file = t.fds.get(dirfd)?;
    Ok((file.location.clone(), Some(file)))
}

/// Resolves the target of a stat-like call: `path` from `dirfd` with AT_EMPTY_PATH and
/// AT_SYMLINK_NOFOLLOW semantics. Returns the inode to look at.
pub fn target_inode(
    t: &mut TaskState,
    dirfd: u64,
    path_addr: u64,
    flags: i32,
) -> Result<std::sync::Arc<dyn fs::vfs::Inode>, Errno> {
    let path = read_path(t, path_addr)?;
    if path.is_empty() {
        if flags & libc::AT_EMPTY_PATH == 0 {
            return Err(Errno::ENOENT);
        }
        let (loc, file) = fd_location(t, dirfd)?;
        if let Some(f) = file {
            if let Some(i) = f.inode() {
                return Ok(i.clone());
            }
        }
        return loc.map(|l| l.inode().clone()).ok_or(Errno::EBADF);
    }
    let follow = flags & libc::AT_SYMLINK_NOFOLLOW == 0;
    let flags = if follow {
        ResolveFlags::follow()
    } else {
        ResolveFlags::nofollow()
    };
    Ok(resolve_at(t, dirfd, &path, flags)?.inode().clone())
}
