//! POSIX access control lists, as Linux keeps them (fs/posix_acl.c).
//!
//! An ACL is a list of entries (owner, named users, owning group, named groups, the mask,
//! others), each with read/write/execute rights. A file's *access* ACL extends its mode
//! bits: the owner, group and other classes of the mode are the ACL's owner, mask (or owning
//! group, without a mask) and other entries, and the two are kept in step both ways. A
//! directory's *default* ACL is what files created in it start with, instead of the umask.
//!
//! Programs see ACLs as the xattrs `system.posix_acl_access` and `system.posix_acl_default`
//! in Linux's binary form (version 2, little-endian entries). This module parses and
//! validates that form, and holds the rules; filesystems that keep ACLs (tmpfs, and the
//! writable layer through it) store parsed [`Acl`]s and answer [`Inode::acl`].

use super::perm::{Creds, MAY_EXEC, MAY_READ, MAY_WRITE};
use super::{FileType, Inode};
use crate::{Errno, Stat};

/// Entry tags (linux/posix_acl.h), in the order a valid ACL lists them.
pub const ACL_USER_OBJ: u16 = 0x01;
pub const ACL_USER: u16 = 0x02;
pub const ACL_GROUP_OBJ: u16 = 0x04;
pub const ACL_GROUP: u16 = 0x08;
pub const ACL_MASK: u16 = 0x10;
pub const ACL_OTHER: u16 = 0x20;

/// The id of entries that name no one (the owner, owning group, mask and other).
const UNDEFINED_ID: u32 = u32::MAX;
/// `posix_acl_xattr_header.a_version`.
const XATTR_VERSION: u32 = 2;
const HEADER: usize = 4;
const ENTRY: usize = 8;

/// Which of a file's two ACLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclKind {
    Access,
    Default,
}

impl AclKind {
    /// The xattr name programs use for it.
    pub fn xattr_name(self) -> &'static [u8] {
        match self {
            AclKind::Access => b"system.posix_acl_access",
            AclKind::Default => b"system.posix_acl_default",
        }
    }

    /// The kind an xattr name stands for, if it is one of the two ACL names.
    pub fn from_xattr_name(name: &[u8]) -> Option<AclKind> {
        [AclKind::Access, AclKind::Default]
            .into_iter()
            .find(|k| k.xattr_name() == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AclEntry {
    pub tag: u16,
    /// MAY_READ | MAY_WRITE | MAY_EXEC bits (4, 2, 1).
    pub perm: u16,
    /// The user or group of ACL_USER and ACL_GROUP entries.
    pub id: u32,
}

/// A parsed, valid ACL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acl {
    entries: Vec<AclEntry>,
}

impl Acl {
    /// Parses an xattr value as `setxattr` hands it over (Linux's `posix_acl_from_xattr`,
    /// then `posix_acl_valid`). `None` is the empty ACL (no value, or a header with no
    /// entries): setting it removes the ACL.
    pub fn from_xattr(value: &[u8]) -> Result<Option<Acl>, Errno> {
        if value.is_empty() {
            return Ok(None);
        }
        if value.len() < HEADER {
            return Err(libc::EINVAL);
        }
        let version = u32::from_le_bytes(value[..HEADER].try_into().expect("4 bytes"));
        if version != XATTR_VERSION {
            return Err(libc::EOPNOTSUPP);
        }
        let body = &value[HEADER..];
        if !body.len().is_multiple_of(ENTRY) {
            return Err(libc::EINVAL);
        }
        if body.is_empty() {
            return Ok(None);
        }
        let mut entries = Vec::with_capacity(body.len() / ENTRY);
        for raw in body.chunks_exact(ENTRY) {
            let tag = u16::from_le_bytes([raw[0], raw[1]]);
            let perm = u16::from_le_bytes([raw[2], raw[3]]);
            let id = u32::from_le_bytes([raw[4], raw[5], raw[6], raw[7]]);
            let id = match tag {
                ACL_USER_OBJ | ACL_GROUP_OBJ | ACL_MASK | ACL_OTHER => UNDEFINED_ID,
                // An id no one can have (-1) has no mapping: Linux's make_kuid fails.
                ACL_USER | ACL_GROUP if id != UNDEFINED_ID => id,
                _ => return Err(libc::EINVAL),
            };
            entries.push(AclEntry { tag, perm, id });
        }
        let acl = Acl { entries };
        acl.validate()?;
        Ok(Some(acl))
    }

    /// Linux's `posix_acl_valid`: rights within rwx, the owner, named users, owning group,
    /// named groups, mask and other in that order, each single entry once, and a mask
    /// whenever there is a named entry. (Since Linux 4.x, named ids need not be sorted or
    /// distinct.)
    fn validate(&self) -> Result<(), Errno> {
        #[derive(PartialEq)]
        enum State {
            UserObj,
            User,
            Group,
            Other,
            Done,
        }
        let mut state = State::UserObj;
        let mut needs_mask = false;
        for e in &self.entries {
            if e.perm & !7 != 0 {
                return Err(libc::EINVAL);
            }
            state = match (e.tag, state) {
                (ACL_USER_OBJ, State::UserObj) => State::User,
                (ACL_USER, State::User) => {
                    needs_mask = true;
                    State::User
                }
                (ACL_GROUP_OBJ, State::User) => State::Group,
                (ACL_GROUP, State::Group) => {
                    needs_mask = true;
                    State::Group
                }
                (ACL_MASK, State::Group) => State::Other,
                (ACL_OTHER, State::Other) => State::Done,
                (ACL_OTHER, State::Group) if !needs_mask => State::Done,
                _ => return Err(libc::EINVAL),
            };
        }
        if state == State::Done {
            Ok(())
        } else {
            Err(libc::EINVAL)
        }
    }

    /// The xattr value `getxattr` returns.
    pub fn to_xattr(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER + ENTRY * self.entries.len());
        out.extend_from_slice(&XATTR_VERSION.to_le_bytes());
        for e in &self.entries {
            out.extend_from_slice(&e.tag.to_le_bytes());
            out.extend_from_slice(&e.perm.to_le_bytes());
            out.extend_from_slice(&e.id.to_le_bytes());
        }
        out
    }

    /// The length of [`Acl::to_xattr`]'s value.
    pub fn xattr_len(&self) -> usize {
        HEADER + ENTRY * self.entries.len()
    }

    pub fn entries(&self) -> &[AclEntry] {
        &self.entries
    }

    /// Linux's `posix_acl_equiv_mode`: `mode` with its permission bits taken from the ACL,
    /// and whether the ACL says more than those bits can (named entries or a mask).
    pub fn equiv_mode(&self, mode: u32) -> (u32, bool) {
        let mut bits = 0;
        let mut not_equiv = false;
        for e in &self.entries {
            let perm = u32::from(e.perm);
            match e.tag {
                ACL_USER_OBJ => bits |= perm << 6,
                ACL_GROUP_OBJ => bits |= perm << 3,
                ACL_OTHER => bits |= perm,
                ACL_MASK => {
                    bits = (bits & !0o070) | (perm << 3);
                    not_equiv = true;
                }
                _ => not_equiv = true,
            }
        }
        ((mode & !0o777) | bits, not_equiv)
    }

    /// Linux's `__posix_acl_chmod`: a chmod rewrites the owner, mask (or owning group) and
    /// other entries from the new mode.
    pub fn chmod(&mut self, mode: u32) {
        let has_mask = self.entries.iter().any(|e| e.tag == ACL_MASK);
        for e in &mut self.entries {
            match e.tag {
                ACL_USER_OBJ => e.perm = ((mode >> 6) & 7) as u16,
                ACL_MASK => e.perm = ((mode >> 3) & 7) as u16,
                ACL_GROUP_OBJ if !has_mask => e.perm = ((mode >> 3) & 7) as u16,
                ACL_OTHER => e.perm = (mode & 7) as u16,
                _ => {}
            }
        }
    }

    /// Linux's `posix_acl_create_masq`: a parent's default ACL, copied for a new file
    /// created with `mode`, and `mode` both narrowed to what each allows. Returns the new
    /// mode and whether the ACL must be kept (it says more than the mode).
    fn create_masq(&mut self, mode: u32) -> (u32, bool) {
        let mut m = mode;
        let mut not_equiv = false;
        let mut class = None;
        for (i, e) in self.entries.iter_mut().enumerate() {
            let perm = u32::from(e.perm);
            match e.tag {
                ACL_USER_OBJ => {
                    let p = perm & ((m >> 6) & 7);
                    e.perm = p as u16;
                    m = (m & !0o700) | (p << 6);
                }
                ACL_OTHER => {
                    let p = perm & (m & 7);
                    e.perm = p as u16;
                    m = (m & !0o007) | p;
                }
                ACL_GROUP_OBJ if class.is_none() => class = Some(i),
                ACL_MASK => {
                    class = Some(i);
                    not_equiv = true;
                }
                ACL_GROUP_OBJ => {}
                _ => not_equiv = true,
            }
        }
        if let Some(i) = class {
            let e = &mut self.entries[i];
            let p = u32::from(e.perm) & ((m >> 3) & 7);
            e.perm = p as u16;
            m = (m & !0o070) | (p << 3);
        }
        (m, not_equiv)
    }

    /// Linux's `posix_acl_permission`, for a caller who is not the owner: named user, then
    /// the owning and named groups (any that matches and grants all of `mask`, limited by
    /// the mask; if groups matched but none granted, refused), then other.
    pub fn permission(&self, stat: &Stat, creds: &Creds, mask: u32) -> Result<(), Errno> {
        let want = (mask & (MAY_READ | MAY_WRITE | MAY_EXEC)) as u16;
        let class_mask = self
            .entries
            .iter()
            .find(|e| e.tag == ACL_MASK)
            .map_or(7, |e| e.perm);
        let granted = |perm: u16, masked: bool| {
            let perm = if masked { perm & class_mask } else { perm };
            if perm & want == want {
                Ok(())
            } else {
                Err(libc::EACCES)
            }
        };
        let mut group_matched = false;
        for e in &self.entries {
            match e.tag {
                ACL_USER_OBJ if creds.uid == stat.uid => return granted(e.perm, false),
                ACL_USER if e.id == creds.uid => return granted(e.perm, true),
                ACL_GROUP_OBJ | ACL_GROUP => {
                    let gid = if e.tag == ACL_GROUP_OBJ {
                        stat.gid
                    } else {
                        e.id
                    };
                    if creds.in_group(gid) {
                        group_matched = true;
                        if e.perm & want == want {
                            return granted(e.perm, true);
                        }
                    }
                }
                ACL_OTHER if group_matched => return Err(libc::EACCES),
                ACL_OTHER => return granted(e.perm, false),
                _ => {}
            }
        }
        Err(libc::EIO)
    }
}

/// What a new file in a directory starts with: its permission bits, and the ACLs it
/// inherits from the directory's default ACL (Linux's `posix_acl_create`).
#[derive(Debug, Default)]
pub struct Inherited {
    /// Permission bits (07777).
    pub mode: u32,
    pub access: Option<Acl>,
    /// For a new directory: the parent's default ACL, unchanged.
    pub default: Option<Acl>,
}

/// The permission bits and ACLs of a file of `file_type` created with `mode` (07777) in
/// `dir` by a task with `umask`. Without a default ACL in `dir` they are `mode & !umask` as
/// always; with one, the umask is ignored and the default ACL narrows the mode instead.
/// Symlinks take no part.
pub fn inherit(dir: &dyn Inode, file_type: FileType, mode: u32, umask: u32) -> Inherited {
    let plain = Inherited {
        mode: mode & !umask,
        ..Inherited::default()
    };
    if file_type == FileType::Symlink {
        return plain;
    }
    let Ok(Some(default)) = dir.acl(AclKind::Default) else {
        return plain;
    };
    let mut access = (*default).clone();
    let (mode, keep) = access.create_masq(mode);
    Inherited {
        mode,
        access: keep.then_some(access),
        default: (file_type == FileType::Directory).then(|| (*default).clone()),
    }
}

impl Inherited {
    /// Gives the new file its inherited ACLs (through the xattrs, as copy-up does).
    pub fn apply(&self, inode: &dyn Inode) -> Result<(), Errno> {
        for (kind, acl) in [
            (AclKind::Access, &self.access),
            (AclKind::Default, &self.default),
        ] {
            if let Some(acl) = acl {
                inode.setxattr(kind.xattr_name(), &acl.to_xattr(), 0)?;
            }
        }
        Ok(())
    }
}

/// Checks a guest's `setxattr`/`removexattr` of an ACL (`value` `None` for a removal) in
/// Linux's order: the value's form and validity, a default ACL on anything but a directory
/// (EACCES, or nothing to do when removing), then ownership (the owner or CAP_FOWNER).
/// Returns whether the caller must lose S_ISGID (the mode change Linux makes alongside, for
/// an owner outside the file's group without CAP_FSETID), or `None` when there is nothing
/// to store.
pub fn check_set(
    inode: &dyn Inode,
    kind: AclKind,
    value: Option<&[u8]>,
    creds: &Creds,
) -> Result<Option<bool>, Errno> {
    let acl = match value {
        Some(v) => Acl::from_xattr(v)?,
        None => None,
    };
    let stat = inode.stat()?;
    let file_type = stat.mode & libc::S_IFMT;
    if file_type == libc::S_IFLNK {
        return Err(libc::EOPNOTSUPP);
    }
    if kind == AclKind::Default && file_type != libc::S_IFDIR {
        return if acl.is_some() {
            Err(libc::EACCES)
        } else {
            Ok(None)
        };
    }
    if !super::perm::is_owner_or_root(&stat, creds) {
        return Err(libc::EPERM);
    }
    let clear_sgid = kind == AclKind::Access
        && !creds.in_group(stat.gid)
        && !creds.has_cap_over(super::perm::CAP_FSETID, &stat);
    Ok(Some(clear_sgid))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(entries: &[(u16, u16, u32)]) -> Vec<u8> {
        let mut v = XATTR_VERSION.to_le_bytes().to_vec();
        for &(tag, perm, id) in entries {
            v.extend_from_slice(&tag.to_le_bytes());
            v.extend_from_slice(&perm.to_le_bytes());
            v.extend_from_slice(&id.to_le_bytes());
        }
        v
    }

    const U: u32 = UNDEFINED_ID;

    #[test]
    fn parsing_refuses_what_linux_refuses() {
        assert_eq!(Acl::from_xattr(&[]), Ok(None));
        assert_eq!(Acl::from_xattr(&acl(&[])), Ok(None));
        assert_eq!(Acl::from_xattr(&[2, 0, 0]), Err(libc::EINVAL));
        assert_eq!(Acl::from_xattr(&[1, 0, 0, 0]), Err(libc::EOPNOTSUPP));
        let base = acl(&[
            (ACL_USER_OBJ, 6, U),
            (ACL_GROUP_OBJ, 4, U),
            (ACL_OTHER, 0, U),
        ]);
        assert!(Acl::from_xattr(&base).unwrap().is_some());
        assert_eq!(Acl::from_xattr(&base[..base.len() - 1]), Err(libc::EINVAL));
        // Named entries need a mask; -1 is no one's id; rights beyond rwx; order.
        let no_mask = acl(&[
            (ACL_USER_OBJ, 6, U),
            (ACL_USER, 4, 1000),
            (ACL_GROUP_OBJ, 4, U),
            (ACL_OTHER, 0, U),
        ]);
        assert_eq!(Acl::from_xattr(&no_mask), Err(libc::EINVAL));
        let bad_id = acl(&[
            (ACL_USER_OBJ, 6, U),
            (ACL_USER, 4, U),
            (ACL_GROUP_OBJ, 4, U),
            (ACL_MASK, 4, U),
            (ACL_OTHER, 0, U),
        ]);
        assert_eq!(Acl::from_xattr(&bad_id), Err(libc::EINVAL));
        let rights = acl(&[
            (ACL_USER_OBJ, 8, U),
            (ACL_GROUP_OBJ, 4, U),
            (ACL_OTHER, 0, U),
        ]);
        assert_eq!(Acl::from_xattr(&rights), Err(libc::EINVAL));
        let order = acl(&[
            (ACL_GROUP_OBJ, 4, U),
            (ACL_USER_OBJ, 6, U),
            (ACL_OTHER, 0, U),
        ]);
        assert_eq!(Acl::from_xattr(&order), Err(libc::EINVAL));
        let after_other = acl(&[
            (ACL_USER_OBJ, 6, U),
            (ACL_GROUP_OBJ, 4, U),
            (ACL_OTHER, 0, U),
            (ACL_OTHER, 0, U),
        ]);
        assert_eq!(Acl::from_xattr(&after_other), Err(libc::EINVAL));
    }

    #[test]
    fn base_ids_read_back_as_undefined() {
        let v = acl(&[
            (ACL_USER_OBJ, 6, 5),
            (ACL_GROUP_OBJ, 4, 6),
            (ACL_OTHER, 0, 7),
        ]);
        let parsed = Acl::from_xattr(&v).unwrap().unwrap();
        assert!(parsed.entries().iter().all(|e| e.id == U));
        assert_eq!(
            parsed.to_xattr(),
            acl(&[
                (ACL_USER_OBJ, 6, U),
                (ACL_GROUP_OBJ, 4, U),
                (ACL_OTHER, 0, U)
            ])
        );
    }

    #[test]
    fn the_mask_limits_named_entries_and_groups_shut_out_other() {
        let v = acl(&[
            (ACL_USER_OBJ, 6, U),
            (ACL_USER, 6, 1000),
            (ACL_GROUP_OBJ, 0, U),
            (ACL_GROUP, 0, 3000),
            (ACL_MASK, 4, U),
            (ACL_OTHER, 6, U),
        ]);
        let a = Acl::from_xattr(&v).unwrap().unwrap();
        let stat = Stat {
            uid: 0,
            gid: 0,
            mode: libc::S_IFREG | 0o646,
            ..Stat::default()
        };
        let user = |uid, groups: &[u32]| Creds {
            uid,
            gid: uid,
            groups: groups.to_vec(),
            caps: 0,
            userns: None,
        };
        assert_eq!(a.permission(&stat, &user(1000, &[]), MAY_READ), Ok(()));
        assert_eq!(
            a.permission(&stat, &user(1000, &[]), MAY_WRITE),
            Err(libc::EACCES)
        );
        assert_eq!(
            a.permission(&stat, &user(1500, &[3000]), MAY_READ),
            Err(libc::EACCES)
        );
        assert_eq!(a.permission(&stat, &user(1001, &[]), MAY_WRITE), Ok(()));
        assert_eq!(
            a.equiv_mode(libc::S_IFREG | 0o777),
            (libc::S_IFREG | 0o646, true)
        );
    }

    #[test]
    fn a_default_acl_narrows_the_new_mode_instead_of_the_umask() {
        let v = acl(&[
            (ACL_USER_OBJ, 7, U),
            (ACL_USER, 7, 1000),
            (ACL_GROUP_OBJ, 5, U),
            (ACL_MASK, 7, U),
            (ACL_OTHER, 0, U),
        ]);
        let mut a = Acl::from_xattr(&v).unwrap().unwrap();
        assert_eq!(
            a.create_masq(libc::S_IFREG | 0o600),
            (libc::S_IFREG | 0o600, true)
        );
        let masks: Vec<u16> = a.entries().iter().map(|e| e.perm).collect();
        assert_eq!(masks, [6, 7, 5, 0, 0]);
    }
}
