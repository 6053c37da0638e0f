//! Path resolution with Linux's rules: `.` and `..`, mount crossing, symlinks (at most 40),
//! trailing slashes, search permission, and openat2's RESOLVE_* restrictions.

use std::collections::VecDeque;
use std::sync::Arc;

use super::inode::{FileType, Inode};
use super::mount::{Location, MountNamespace};
use super::perm::{self, Creds, MAY_EXEC};
use crate::Errno;

/// Linux's limits.
pub const PATH_MAX: usize = 4096;
pub const NAME_MAX: usize = 255;
pub const MAX_SYMLINKS: u32 = 40;

/// How to resolve a path.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResolveFlags {
    /// Follow a symlink in the last component.
    pub follow: bool,
    /// RESOLVE_BENEATH: never leave the starting directory (EXDEV).
    pub beneath: bool,
    /// RESOLVE_IN_ROOT: treat the starting directory as `/`.
    pub in_root: bool,
    /// RESOLVE_NO_SYMLINKS: any symlink is ELOOP.
    pub no_symlinks: bool,
    /// RESOLVE_NO_MAGICLINKS: /proc magic links are refused (ELOOP).
    pub no_magiclinks: bool,
    /// RESOLVE_NO_XDEV: never cross a mount (EXDEV).
    pub no_xdev: bool,
}

impl ResolveFlags {
    pub fn follow() -> Self {
        ResolveFlags {
            follow: true,
            ..Default::default()
        }
    }

    pub fn nofollow() -> Self {
        ResolveFlags::default()
    }
}

/// The result of resolving all but the last component.
pub struct Parent {
    pub dir: Location,
    /// The last component; `.` or `..` are returned as is, empty for "/".
    pub name: Vec<u8>,
    /// The path ended with a slash.
    pub trailing_slash: bool,
}

/// Resolves paths for one task.
pub struct Resolver<'a> {
    pub ns: &'a MountNamespace,
    /// The task's root (chroot).
    pub root: &'a Location,
    pub creds: &'a Creds,
}

fn split(path: &[u8]) -> VecDeque<Vec<u8>> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty())
        .map(|c| c.to_vec())
        .collect()
}

impl Resolver<'_> {
    /// Checks length rules of a whole path.
    fn check_path(path: &[u8]) -> Result<(), Errno> {
        if path.is_empty() {
            return Err(libc::ENOENT);
        }
        if path.len() >= PATH_MAX {
            return Err(libc::ENAMETOOLONG);
        }
        Ok(())
    }

    /// Resolves `path` from `start` (the cwd or a dirfd) to a location.
    pub fn resolve(
        &self,
        start: &Location,
        path: &[u8],
        flags: ResolveFlags,
    ) -> Result<Location, Errno> {
        Self::check_path(path)?;
        let must_be_dir = path.ends_with(b"/");
        let loc = self.walk(start, path, flags, true)?;
        if must_be_dir && loc.inode().file_type() != FileType::Directory {
            return Err(libc::ENOTDIR);
        }
        Ok(loc)
    }

    /// Resolves everything but the last component (for create, unlink, rename, link).
    pub fn resolve_parent(
        &self,
        start: &Location,
        path: &[u8],
        flags: ResolveFlags,
    ) -> Result<Parent, Errno> {
        Self::check_path(path)?;
        let trailing_slash = path.ends_with(b"/");
        let trimmed = {
            let mut end = path.len();
            while end > 1 && path[end - 1] == b'/' {
                end -= 1;
            }
            &path[..end]
        };
        let (dir_part, name) = match trimmed.iter().rposition(|&b| b == b'/') {
            Some(0) if trimmed.len() == 1 => (&b"/"[..], Vec::new()),
            Some(i) => (&trimmed[..i.max(1)], trimmed[i + 1..].to_vec()),
            None => (&b""[..], trimmed.to_vec()),
        };
        if name.len() > NAME_MAX {
            return Err(libc::ENAMETOOLONG);
        }
        let dir = if dir_part.is_empty() {
            start.clone()
        } else {
            self.walk(
                start,
                dir_part,
                ResolveFlags {
                    follow: true,
                    ..flags
                },
                true,
            )?
        };
        if dir.inode().file_type() != FileType::Directory {
            return Err(libc::ENOTDIR);
        }
        Ok(Parent {
            dir,
            name,
            trailing_slash,
        })
    }

    /// Moves to the parent of `cur`, crossing mount roots; stays at `top`. With
    /// RESOLVE_NO_XDEV, crossing a mount root is EXDEV (Linux's follow_dotdot).
    fn dotdot(
        &self,
        cur: &Location,
        top: &Location,
        flags: ResolveFlags,
    ) -> Result<Location, Errno> {
        let mut cur = cur.clone();
        loop {
            if cur.same(top) || cur.same(self.root) {
                return Ok(cur);
            }
            if !cur.is_mount_root() {
                break;
            }
            match cur.mount.parent() {
                Some(_) if flags.no_xdev => return Err(libc::EXDEV),
                Some((m, d)) => {
                    cur = Location {
                        mount: m,
                        dentry: d,
                    }
                }
                None => return Ok(cur),
            }
        }
        Ok(match cur.dentry.parent() {
            Some(p) => Location {
                mount: cur.mount.clone(),
                dentry: p,
            },
            None => cur,
        })
    }

    /// Follows mounts stacked at `loc`.
    fn cross_mounts(&self, loc: Location, flags: ResolveFlags) -> Result<Location, Errno> {
        match self.ns.mounted_at(&loc) {
            Some(_) if flags.no_xdev => Err(libc::EXDEV),
            Some(m) => Ok(m),
            None => Ok(loc),
        }
    }

    fn walk(
        &self,
        start: &Location,
        path: &[u8],
        flags: ResolveFlags,
        last_follow_applies: bool,
    ) -> Result<Location, Errno> {
        // The directory ".." may not climb above: the task's root, or for
        // RESOLVE_IN_ROOT/RESOLVE_BENEATH the starting directory.
        let top = if flags.in_root || flags.beneath {
            start.clone()
        } else {
            self.root.clone()
        };
        let mut cur = if path.first() == Some(&b'/') {
            if flags.beneath {
                return Err(libc::EXDEV);
            }
            top.clone()
        } else {
            start.clone()
        };
        let mut todo = split(path);
        let mut links = 0u32;
        while let Some(name) = todo.pop_front() {
            if cur.inode().file_type() != FileType::Directory {
                return Err(libc::ENOTDIR);
            }
            perm::check_inode(&**cur.inode(), self.creds, MAY_EXEC)?;
            if name == b"." {
                continue;
            }
            if name == b".." {
                if flags.beneath && cur.same(&top) {
                    return Err(libc::EXDEV);
                }
                cur = self.dotdot(&cur, &top, flags)?;
                continue;
            }
            if name.len() > NAME_MAX {
                return Err(libc::ENAMETOOLONG);
            }
            let child = Location {
                dentry: cur.dentry.child(&name)?,
                mount: cur.mount.clone(),
            };
            let child = self.cross_mounts(child, flags)?;
            let is_last = todo.is_empty();
            let follow =
                !is_last || (last_follow_applies && (flags.follow || path.ends_with(b"/")));
            if child.inode().file_type() == FileType::Symlink && follow {
                if flags.no_symlinks {
                    return Err(libc::ELOOP);
                }
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(libc::ELOOP);
                }
                if let Some(target) = magic_jump(child.inode(), &child.mount, flags)? {
                    cur = target;
                    continue;
                }
                let target = child.inode().readlink()?;
                if target.is_empty() {
                    return Err(libc::ENOENT);
                }
                if target.first() == Some(&b'/') {
                    if flags.beneath {
                        return Err(libc::EXDEV);
                    }
                    // Linux's nd_jump_root: with RESOLVE_NO_XDEV, a symlink may jump to
                    // the root only from the root's own mount.
                    if flags.no_xdev && !Arc::ptr_eq(&cur.mount, &top.mount) {
                        return Err(libc::EXDEV);
                    }
                    cur = top.clone();
                }
                let mut expanded = split(&target);
                expanded.append(&mut todo);
                todo = expanded;
                continue;
            }
            cur = child;
        }
        Ok(cur)
    }
}

/// Where following the /proc magic link `link` (on `mount`) leads, as Linux's
/// nd_jump_link: the file itself (on its own place, or on the link's mount for a file that
/// has none), whatever the link's text says. None for an ordinary symlink. ELOOP under
/// RESOLVE_NO_MAGICLINKS; EXDEV under RESOLVE_BENEATH or RESOLVE_IN_ROOT, and under
/// RESOLVE_NO_XDEV when the file is on another mount.
pub fn magic_jump(
    link: &Arc<dyn Inode>,
    mount: &Arc<super::Mount>,
    flags: ResolveFlags,
) -> Result<Option<Location>, Errno> {
    let target = link.magic_location().or_else(|| {
        link.magic_link().map(|target| Location {
            dentry: super::Dentry::new_root(target),
            mount: mount.clone(),
        })
    });
    let Some(target) = target else {
        return Ok(None);
    };
    if flags.no_magiclinks {
        return Err(libc::ELOOP);
    }
    if flags.beneath || flags.in_root {
        return Err(libc::EXDEV);
    }
    if flags.no_xdev && !Arc::ptr_eq(&target.mount, mount) {
        return Err(libc::EXDEV);
    }
    Ok(Some(target))
}

/// Whether `a` and `b` are the same location (helper for callers holding `Arc`s).
pub fn same_location(a: &Location, b: &Location) -> bool {
    Arc::ptr_eq(&a.mount, &b.mount) && Arc::ptr_eq(&a.dentry, &b.dentry)
}
