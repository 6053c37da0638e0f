//! Permission checks against a task's credentials, as Linux's `generic_permission`.

use super::acl::AclKind;
use std::sync::Arc;

use super::Inode;
use crate::{Errno, Stat};

/// Access bits of `access(2)` and of permission checks.
pub const MAY_EXEC: u32 = 1;
pub const MAY_WRITE: u32 = 2;
pub const MAY_READ: u32 = 4;

/// The credentials file access is checked against (Linux's fsuid/fsgid and groups, and
/// the effective capabilities that override file permissions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creds {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
    /// The effective capability set (bit N: capability N), in the caller's user
    /// namespace.
    pub caps: u64,
    /// The kernel ids the caller's user namespace maps; None for the initial namespace.
    /// Outside it, a capability overrides a file's permissions only when the file's owner
    /// and group are both mapped there (Linux's capable_wrt_inode_uidgid), and the
    /// capabilities that aren't about files ([`Creds::has_cap`]) don't hold at all.
    pub userns: Option<Arc<MappedIds>>,
}

/// The kernel ids a user namespace maps, as (first, count) ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MappedIds {
    pub uids: Vec<(u32, u32)>,
    pub gids: Vec<(u32, u32)>,
}

impl MappedIds {
    fn has(ranges: &[(u32, u32)], id: u32) -> bool {
        ranges
            .iter()
            .any(|&(first, count)| id >= first && id - first < count)
    }

    /// Whether a file owned by `uid`:`gid` (kernel ids) has both mapped (Linux's
    /// privileged_wrt_inode_uidgid).
    pub fn maps(&self, uid: u32, gid: u32) -> bool {
        Self::has(&self.uids, uid) && Self::has(&self.gids, gid)
    }

    pub fn maps_uid(&self, uid: u32) -> bool {
        Self::has(&self.uids, uid)
    }

    pub fn maps_gid(&self, gid: u32) -> bool {
        Self::has(&self.gids, gid)
    }
}

/// Capabilities the file permission checks look at (linux/capability.h).
pub const CAP_CHOWN: u32 = 0;
pub const CAP_DAC_OVERRIDE: u32 = 1;
pub const CAP_DAC_READ_SEARCH: u32 = 2;
pub const CAP_FOWNER: u32 = 3;
pub const CAP_FSETID: u32 = 4;
pub const CAP_SYS_ADMIN: u32 = 21;
pub const CAP_MKNOD: u32 = 27;

/// Root with every capability: the sandbox's own setup work.
impl Default for Creds {
    fn default() -> Self {
        Creds {
            uid: 0,
            gid: 0,
            groups: Vec::new(),
            caps: u64::MAX,
            userns: None,
        }
    }
}

impl Creds {
    /// Whether capability `cap` is effective in the initial user namespace (Linux's
    /// capable(): CAP_MKNOD, CAP_SYS_ADMIN for trusted.* attributes).
    pub fn has_cap(&self, cap: u32) -> bool {
        self.userns.is_none() && cap < 64 && self.caps & (1 << cap) != 0
    }

    /// Whether capability `cap` is effective against a file whose metadata is `stat`
    /// (Linux's capable_wrt_inode_uidgid): in the caller's namespace, with the file's
    /// owner and group mapped there. Root in a new user namespace must not override the
    /// permissions of files that belong to ids outside it.
    pub fn has_cap_over(&self, cap: u32, stat: &Stat) -> bool {
        cap < 64
            && self.caps & (1 << cap) != 0
            && self
                .userns
                .as_ref()
                .is_none_or(|m| m.maps(stat.uid, stat.gid))
    }

    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}

/// Checks `mask` (MAY_*) for `inode`, whose metadata is `stat`, as Linux's
/// generic_permission: the owner's mode bits for the owner; for anyone else the access ACL
/// if the file has one (and a group class), else the group or other bits; then the
/// overriding capabilities: CAP_DAC_OVERRIDE for anything but executing a file no execute
/// bit allows, CAP_DAC_READ_SEARCH for reading a file and reading or searching a directory.
/// A file system with a check of its own ([`Inode::permission`]) is asked instead.
pub fn check(inode: &dyn Inode, stat: &Stat, creds: &Creds, mask: u32) -> Result<(), Errno> {
    if let Some(verdict) = inode.permission(creds, mask) {
        return verdict;
    }
    let mode = stat.mode;
    let allowed = if creds.uid == stat.uid {
        (mode >> 6) & 7 & mask == mask
    } else {
        // Linux asks the ACL only when the group class grants something: with a mask of
        // nothing, no named entry could grant anything either.
        let acl = if mode & 0o070 != 0 {
            inode.acl(AclKind::Access).ok().flatten()
        } else {
            None
        };
        match acl {
            Some(acl) => acl.permission(stat, creds, mask).is_ok(),
            None if creds.in_group(stat.gid) => (mode >> 3) & 7 & mask == mask,
            None => mode & 7 & mask == mask,
        }
    };
    if allowed {
        return Ok(());
    }
    let is_dir = mode & libc::S_IFMT == libc::S_IFDIR;
    if (mask & MAY_EXEC == 0 || is_dir || mode & 0o111 != 0)
        && creds.has_cap_over(CAP_DAC_OVERRIDE, stat)
    {
        return Ok(());
    }
    let read_search = if is_dir {
        mask & MAY_WRITE == 0
    } else {
        mask == MAY_READ
    };
    if read_search && creds.has_cap_over(CAP_DAC_READ_SEARCH, stat) {
        return Ok(());
    }
    Err(libc::EACCES)
}

/// [`check`] for `inode` as it is now.
pub fn check_inode(inode: &dyn Inode, creds: &Creds, mask: u32) -> Result<(), Errno> {
    check(inode, &inode.stat()?, creds, mask)
}

/// Whether `creds` may change the metadata of a file they don't own (chmod, utimes...):
/// the owner, or CAP_FOWNER (Linux's inode_owner_or_capable).
pub fn is_owner_or_root(stat: &Stat, creds: &Creds) -> bool {
    creds.uid == stat.uid || creds.has_cap_over(CAP_FOWNER, stat)
}

/// The sticky-bit rule for removing or renaming `victim` from directory `dir`.
pub fn may_delete_from(
    dir_inode: &dyn Inode,
    dir: &Stat,
    victim: &Stat,
    creds: &Creds,
) -> Result<(), Errno> {
    check(dir_inode, dir, creds, MAY_WRITE | MAY_EXEC)?;
    if dir.mode & libc::S_ISVTX != 0
        && !creds.has_cap_over(CAP_FOWNER, victim)
        && creds.uid != victim.uid
        && creds.uid != dir.uid
    {
        return Err(libc::EPERM);
    }
    Ok(())
}
