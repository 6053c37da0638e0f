//! Permission checks against a task's credentials, as Linux's `generic_permission`.

use crate::{Errno, Stat};

/// Access bits of `access(2)` and of permission checks.
pub const MAY_EXEC: u32 = 1;
pub const MAY_WRITE: u32 = 2;
pub const MAY_READ: u32 = 4;

/// The credentials file access is checked against (Linux's fsuid/fsgid and groups).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Creds {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

impl Creds {
    /// Root bypasses read and write checks, and execute checks when any execute bit is set
    /// (CAP_DAC_OVERRIDE; the sandbox's root has it).
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }
}

/// Checks `mask` (MAY_*) against the mode, owner and group in `stat`.
pub fn check(stat: &Stat, creds: &Creds, mask: u32) -> Result<(), Errno> {
    let mode = stat.mode;
    if creds.is_root() {
        let is_dir = mode & libc::S_IFMT == libc::S_IFDIR;
        if mask & MAY_EXEC == 0 || is_dir || mode & 0o111 != 0 {
            return Ok(());
        }
        return Err(libc::EACCES);
    }
    let bits = if creds.uid == stat.uid {
        (mode >> 6) & 7
    } else if creds.in_group(stat.gid) {
        (mode >> 3) & 7
    } else {
        mode & 7
    };
    if bits & mask == mask {
        Ok(())
    } else {
        Err(libc::EACCES)
    }
}

/// Whether `creds` may change the metadata of a file they don't own (chmod, utimes...).
pub fn is_owner_or_root(stat: &Stat, creds: &Creds) -> bool {
    creds.is_root() || creds.uid == stat.uid
}

/// The sticky-bit rule for removing or renaming `victim` from directory `dir`.
pub fn may_delete_from(dir: &Stat, victim: &Stat, creds: &Creds) -> Result<(), Errno> {
    check(dir, creds, MAY_WRITE | MAY_EXEC)?;
    if dir.mode & libc::S_ISVTX != 0
        && !creds.is_root()
        && creds.uid != victim.uid
        && creds.uid != dir.uid
    {
        return Err(libc::EPERM);
    }
    Ok(())
}
