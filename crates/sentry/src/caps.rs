//! Capabilities (capabilities(7)) and the credential checks between tasks.
//!
//! Every thread has Linux's five capability sets (permitted, effective, inheritable,
//! bounding, ambient) and the securebits, in its [`Creds`]; a permission check asks for a
//! capability in the effective set ([`capable`]), never for euid 0. The rules are
//! security/commoncap.c's: capset ([`capset`]), the set*id fixups
//! ([`fix_setuid`], cap_emulate_setxuid), execve ([`exec`], without file capabilities:
//! the sandbox never reads `security.capability`, so only root's legacy rules and the
//! ambient set give an exec'd program capabilities), and the prctl options ([`prctl`]).
//!
//! The sets hold in the thread's user namespace (`Creds::user_ns`) and, as Linux's
//! cap_capable, every capability holds in a namespace the thread's effective uid owns
//! below its own ([`ns_capable`]). [`capable`] asks about the initial namespace (the
//! sandbox's: devices, clocks, modules...); a check about an object asks the namespace
//! that owns the object (hostname: the UTS namespace's owner, mount: the mount
//! namespace's, set*id: the caller's own), and a file's capability overrides hold only
//! when its owner and group are mapped in the caller's namespace
//! (`fs::vfs::Creds::has_cap_over`). "Root" for execve and the set*id fixups is uid 0 of
//! the thread's namespace, which may be unmapped (then nobody is root).

use crate::errno::Errno;
use crate::namespaces::UserNs;
use crate::task::Creds;

/// The highest capability number Linux 6.x knows (CAP_CHECKPOINT_RESTORE).
pub const CAP_LAST_CAP: u32 = 40;
/// Every valid capability bit.
pub const CAP_VALID_MASK: u64 = (1 << (CAP_LAST_CAP + 1)) - 1;

/// Capability numbers (linux/capability.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Cap {
    Chown = 0,
    DacOverride = 1,
    DacReadSearch = 2,
    Fowner = 3,
    Fsetid = 4,
    Kill = 5,
    Setgid = 6,
    Setuid = 7,
    Setpcap = 8,
    LinuxImmutable = 9,
    NetBindService = 10,
    NetBroadcast = 11,
    NetAdmin = 12,
    NetRaw = 13,
    IpcLock = 14,
    IpcOwner = 15,
    SysModule = 16,
    SysRawio = 17,
    SysChroot = 18,
    SysPtrace = 19,
    SysPacct = 20,
    SysAdmin = 21,
    SysBoot = 22,
    SysNice = 23,
    SysResource = 24,
    SysTime = 25,
    SysTtyConfig = 26,
    Mknod = 27,
    Lease = 28,
    AuditWrite = 29,
    AuditControl = 30,
    Setfcap = 31,
    MacOverride = 32,
    MacAdmin = 33,
    Syslog = 34,
    WakeAlarm = 35,
    BlockSuspend = 36,
    AuditRead = 37,
    Perfmon = 38,
    Bpf = 39,
    CheckpointRestore = 40,
}

impl Cap {
    pub const fn bit(self) -> u64 {
        1 << self as u8
    }
}

/// The capabilities a change of fsuid to or from 0 drops or raises (CAP_FS_MASK).
pub const CAP_FS_MASK: u64 = Cap::Chown.bit()
    | Cap::MacOverride.bit()
    | Cap::DacOverride.bit()
    | Cap::DacReadSearch.bit()
    | Cap::Fowner.bit()
    | Cap::Fsetid.bit()
    | Cap::LinuxImmutable.bit()
    | Cap::Mknod.bit();

/// securebits (linux/securebits.h): each bit and its lock (the next bit up).
pub const SECBIT_NOROOT: u32 = 1 << 0;
pub const SECBIT_NO_SETUID_FIXUP: u32 = 1 << 2;
pub const SECBIT_KEEP_CAPS: u32 = 1 << 4;
pub const SECBIT_KEEP_CAPS_LOCKED: u32 = 1 << 5;
pub const SECBIT_NO_CAP_AMBIENT_RAISE: u32 = 1 << 6;
/// Every settable bit, with Linux 6.14's SECBIT_EXEC_RESTRICT_FILE and
/// SECBIT_EXEC_DENY_INTERACTIVE (recorded: they only matter to interpreters that ask
/// execveat(AT_EXECVE_CHECK), which the sandbox doesn't have).
pub const SECURE_ALL_BITS: u32 = 0x555;
pub const SECURE_ALL_LOCKS: u32 = SECURE_ALL_BITS << 1;

/// A thread's capability state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSets {
    pub permitted: u64,
    pub effective: u64,
    pub inheritable: u64,
    pub bounding: u64,
    pub ambient: u64,
    pub securebits: u32,
}

impl CapSets {
    /// What Linux's init has, and so a root login: every capability permitted, effective
    /// and in the bounding set.
    pub const fn full() -> CapSets {
        CapSets {
            permitted: CAP_VALID_MASK,
            effective: CAP_VALID_MASK,
            inheritable: 0,
            bounding: CAP_VALID_MASK,
            ambient: 0,
            securebits: 0,
        }
    }

    fn secure(&self, bit: u32) -> bool {
        self.securebits & bit != 0
    }
}

/// Whether `creds` has `cap` in the initial user namespace (Linux's capable()).
pub fn capable(creds: &Creds, cap: Cap) -> bool {
    creds.user_ns.is_initial() && own_capable(creds, cap)
}

/// Whether `creds` has `cap` in its own user namespace (ns_capable(current_user_ns())):
/// its effective set.
pub fn own_capable(creds: &Creds, cap: Cap) -> bool {
    creds.caps.effective & cap.bit() != 0
}

/// Linux's cap_capable: whether `creds` has `cap` in `target`. In its own namespace, its
/// effective set decides; in a namespace below its own whose parent is its own and whose
/// owner is its effective uid, every capability holds (the creator's); otherwise the
/// question moves to the target's parent, and a namespace not below the caller's gives
/// nothing.
pub fn ns_capable(creds: &Creds, target: &UserNs, cap: Cap) -> bool {
    let own = &creds.user_ns;
    let mut ns = target;
    loop {
        if ns.ino == own.ino {
            return own_capable(creds, cap);
        }
        if ns.level <= own.level {
            return false;
        }
        let Some(parent) = &ns.parent else {
            return false;
        };
        if parent.ino == own.ino && ns.owner == creds.euid {
            return true;
        }
        ns = parent;
    }
}

/// The kernel uid of root (uid 0) in the thread's namespace; None when 0 isn't mapped.
fn root_uid(c: &Creds) -> Option<u32> {
    c.user_ns.make_kuid(0)
}

fn any_root(c: &Creds, root: Option<u32>) -> bool {
    root.is_some_and(|r| c.uid == r || c.euid == r || c.suid == r)
}

/// Linux's cap_task_fix_setuid for setuid, setreuid and setresuid (cap_emulate_setxuid):
/// leaving uid 0 in all of real, effective and saved clears the permitted and effective
/// sets (unless SECBIT_KEEP_CAPS) and the ambient set; the effective set empties when the
/// effective uid leaves 0 and fills from the permitted set when it returns. Nothing
/// happens under SECBIT_NO_SETUID_FIXUP. The file-system uid follows the effective uid
/// here, so the fsuid fixup is contained in the effective one.
pub fn fix_setuid(old: &Creds, new: &mut Creds) {
    if old.caps.secure(SECBIT_NO_SETUID_FIXUP) {
        return;
    }
    let root = root_uid(old);
    let is_root = |id: u32| root == Some(id);
    let leaves_root = any_root(old, root) && !any_root(new, root);
    let c = &mut new.caps;
    if leaves_root {
        if !old.caps.secure(SECBIT_KEEP_CAPS) {
            c.permitted = 0;
            c.effective = 0;
        }
        c.ambient = 0;
    }
    if is_root(old.euid) && !is_root(new.euid) {
        c.effective = 0;
    }
    if !is_root(old.euid) && is_root(new.euid) {
        c.effective = c.permitted;
    }
}

/// Linux's cap_bprm_creds_from_file for a program without file capabilities and without
/// set-id bits (the sandbox honours neither): root (real or effective, unless
/// SECBIT_NOROOT) gets the bounding and inheritable sets as permitted, effective only for
/// an effective root; everyone else keeps only the ambient set. With no_new_privs a
/// program gains nothing it didn't have. SECBIT_KEEP_CAPS is cleared.
pub fn exec(creds: &mut Creds, no_new_privs: bool) {
    let old = creds.caps;
    let root = root_uid(creds);
    let (uid_root, euid_root) = (root == Some(creds.uid), root == Some(creds.euid));
    let c = &mut creds.caps;
    c.permitted = 0;
    let mut effective = false;
    if !old.secure(SECBIT_NOROOT) {
        if euid_root || uid_root {
            c.permitted = old.bounding | old.inheritable;
        }
        effective = euid_root;
    }
    if no_new_privs && c.permitted & !old.permitted != 0 {
        c.permitted &= old.permitted;
    }
    c.permitted |= c.ambient;
    c.effective = if effective { c.permitted } else { c.ambient };
    c.securebits &= !SECBIT_KEEP_CAPS;
}

/// Linux's cap_capset: the new permitted set within the old, the new effective within the
/// new permitted, the new inheritable within the old inheritable and the bounding set, and
/// (without CAP_SETPCAP) within the old inheritable and permitted. The ambient set keeps
/// only what stays both permitted and inheritable.
pub fn capset(
    creds: &mut Creds,
    effective: u64,
    permitted: u64,
    inheritable: u64,
) -> Result<(), Errno> {
    let (e, p, i) = (
        effective & CAP_VALID_MASK,
        permitted & CAP_VALID_MASK,
        inheritable & CAP_VALID_MASK,
    );
    let old = creds.caps;
    if !own_capable(creds, Cap::Setpcap) && i & !(old.inheritable | old.permitted) != 0 {
        return Err(Errno::EPERM);
    }
    if i & !(old.inheritable | old.bounding) != 0 {
        return Err(Errno::EPERM);
    }
    if p & !old.permitted != 0 || e & !p != 0 {
        return Err(Errno::EPERM);
    }
    let c = &mut creds.caps;
    (c.effective, c.permitted, c.inheritable) = (e, p, i);
    c.ambient &= p & i;
    Ok(())
}

const PR_CAPBSET_READ: i32 = 23;
const PR_CAPBSET_DROP: i32 = 24;
const PR_GET_KEEPCAPS: i32 = 7;
const PR_SET_KEEPCAPS: i32 = 8;
const PR_GET_SECUREBITS: i32 = 27;
const PR_SET_SECUREBITS: i32 = 28;
const PR_CAP_AMBIENT: i32 = 47;
const PR_CAP_AMBIENT_IS_SET: u64 = 1;
const PR_CAP_AMBIENT_RAISE: u64 = 2;
const PR_CAP_AMBIENT_LOWER: u64 = 3;
const PR_CAP_AMBIENT_CLEAR_ALL: u64 = 4;

fn cap_valid(cap: u64) -> bool {
    cap <= CAP_LAST_CAP as u64
}

/// The capability options of prctl (Linux's cap_task_prctl), or None for another option.
/// May change `creds`.
pub fn prctl(creds: &mut Creds, option: i32, a: [u64; 4]) -> Option<Result<u64, Errno>> {
    let c = creds.caps;
    let r = match option {
        PR_CAPBSET_READ => {
            if !cap_valid(a[0]) {
                return Some(Err(Errno::EINVAL));
            }
            Ok((c.bounding >> a[0]) & 1)
        }
        PR_CAPBSET_DROP => {
            if !own_capable(creds, Cap::Setpcap) {
                Err(Errno::EPERM)
            } else if !cap_valid(a[0]) {
                Err(Errno::EINVAL)
            } else {
                creds.caps.bounding &= !(1 << a[0]);
                Ok(0)
            }
        }
        PR_GET_SECUREBITS => Ok(c.securebits as u64),
        PR_SET_SECUREBITS => {
            let new = a[0];
            let locks = (c.securebits & SECURE_ALL_LOCKS) as u64;
            if (locks >> 1) & (c.securebits as u64 ^ new) != 0
                || locks & !new != 0
                || new & !((SECURE_ALL_BITS | SECURE_ALL_LOCKS) as u64) != 0
                || !own_capable(creds, Cap::Setpcap)
            {
                Err(Errno::EPERM)
            } else {
                creds.caps.securebits = new as u32;
                Ok(0)
            }
        }
        PR_GET_KEEPCAPS => Ok(c.secure(SECBIT_KEEP_CAPS) as u64),
        PR_SET_KEEPCAPS => {
            if a[0] > 1 {
                Err(Errno::EINVAL)
            } else if c.secure(SECBIT_KEEP_CAPS_LOCKED) {
                Err(Errno::EPERM)
            } else {
                if a[0] == 1 {
                    creds.caps.securebits |= SECBIT_KEEP_CAPS;
                } else {
                    creds.caps.securebits &= !SECBIT_KEEP_CAPS;
                }
                Ok(0)
            }
        }
        PR_CAP_AMBIENT => Ok(match ambient(creds, a) {
            Ok(v) => v,
            Err(e) => return Some(Err(e)),
        }),
        _ => return None,
    };
    Some(r)
}

fn ambient(creds: &mut Creds, a: [u64; 4]) -> Result<u64, Errno> {
    let [op, cap, a4, a5] = a;
    if op == PR_CAP_AMBIENT_CLEAR_ALL {
        if cap | a4 | a5 != 0 {
            return Err(Errno::EINVAL);
        }
        creds.caps.ambient = 0;
        return Ok(0);
    }
    if !cap_valid(cap) || a4 | a5 != 0 {
        return Err(Errno::EINVAL);
    }
    let bit = 1u64 << cap;
    let c = &mut creds.caps;
    match op {
        PR_CAP_AMBIENT_IS_SET => Ok((c.ambient & bit != 0) as u64),
        PR_CAP_AMBIENT_RAISE => {
            if c.permitted & bit == 0
                || c.inheritable & bit == 0
                || c.secure(SECBIT_NO_CAP_AMBIENT_RAISE)
            {
                return Err(Errno::EPERM);
            }
            c.ambient |= bit;
            Ok(0)
        }
        PR_CAP_AMBIENT_LOWER => {
            c.ambient &= !bit;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// Whether a change of credentials makes the process non-dumpable and forgets its
/// parent-death signal (Linux's commit_creds): a new effective user or group, or
/// permitted capabilities it didn't have.
/// Capabilities in another user namespace count as Linux's cred_cap_issubset counts them:
/// entering a namespace the old credentials' euid owns (unshare, setns into a child) gains
/// nothing the owner didn't have.
pub fn lowers_trust(old: &Creds, new: &Creds) -> bool {
    old.euid != new.euid || old.egid != new.egid || !cap_subset(old, new)
}

fn cap_subset(set: &Creds, subset: &Creds) -> bool {
    if set.user_ns.ino == subset.user_ns.ino {
        return subset.caps.permitted & !set.caps.permitted == 0;
    }
    let mut ns = &subset.user_ns.0;
    while let Some(parent) = &ns.parent {
        if parent.ino == set.user_ns.ino && ns.owner == set.euid {
            return true;
        }
        ns = parent;
    }
    false
}

/// The user ids another process's permission checks look at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Uids {
    pub uid: u32,
    pub euid: u32,
    pub suid: u32,
}

impl Uids {
    pub fn of(creds: &Creds) -> Uids {
        Uids {
            uid: creds.uid,
            euid: creds.euid,
            suid: creds.suid,
        }
    }
}

/// Linux's kill_ok_by_cred: the sender's real or effective uid is the target's real or
/// saved uid, or the sender has CAP_KILL. (The target's effective uid doesn't count, so a
/// set-user-ID program can't be signalled by the user it runs as.)
pub fn may_signal(sender: &Creds, target: Uids) -> bool {
    [sender.uid, sender.euid]
        .iter()
        .any(|&id| id == target.uid || id == target.suid)
        || capable(sender, Cap::Kill)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds(uid: u32, euid: u32, suid: u32) -> Creds {
        Creds {
            uid,
            euid,
            suid,
            caps: if euid == 0 {
                CapSets::full()
            } else {
                CapSets::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn signal_permission() {
        let target = Uids {
            uid: 10,
            euid: 20,
            suid: 30,
        };
        assert!(may_signal(&creds(10, 99, 99), target));
        assert!(may_signal(&creds(99, 30, 99), target));
        assert!(!may_signal(&creds(20, 20, 20), target), "target euid");
        assert!(!may_signal(&creds(99, 99, 10), target), "sender suid");
        assert!(may_signal(&creds(99, 0, 99), target), "CAP_KILL");
        assert!(!may_signal(&creds(0, 99, 0), target), "real root only");
        let mut no_kill = creds(99, 0, 99);
        no_kill.caps.effective &= !Cap::Kill.bit();
        assert!(!may_signal(&no_kill, target), "root without CAP_KILL");
    }

    #[test]
    fn setuid_fixups() {
        let root = creds(0, 0, 0);
        // seteuid(1000) and back.
        let mut e = root.clone();
        e.euid = 1000;
        fix_setuid(&root, &mut e);
        assert_eq!((e.caps.permitted, e.caps.effective), (CAP_VALID_MASK, 0));
        let mut back = e.clone();
        back.euid = 0;
        fix_setuid(&e, &mut back);
        assert_eq!(back.caps.effective, CAP_VALID_MASK);
        // setuid(1000): everything goes, unless KEEP_CAPS keeps the permitted set.
        let mut all = root.clone();
        (all.uid, all.euid, all.suid) = (1000, 1000, 1000);
        fix_setuid(&root, &mut all);
        assert_eq!((all.caps.permitted, all.caps.effective), (0, 0));
        let mut keep = root.clone();
        keep.caps.securebits = SECBIT_KEEP_CAPS;
        let old = keep.clone();
        (keep.uid, keep.euid, keep.suid) = (1000, 1000, 1000);
        fix_setuid(&old, &mut keep);
        assert_eq!(
            (keep.caps.permitted, keep.caps.effective),
            (CAP_VALID_MASK, 0)
        );
    }

    #[test]
    fn capset_rules() {
        let mut c = creds(1000, 1000, 1000);
        c.caps.permitted = Cap::Chown.bit() | Cap::Kill.bit();
        assert_eq!(capset(&mut c, 0, Cap::Setuid.bit(), 0), Err(Errno::EPERM));
        assert_eq!(
            capset(&mut c, Cap::Kill.bit(), Cap::Chown.bit(), 0),
            Err(Errno::EPERM),
            "effective outside permitted"
        );
        // Inheritable: within permitted without CAP_SETPCAP, within bounding always.
        let p = c.caps.permitted;
        assert_eq!(capset(&mut c, 0, p, Cap::Setuid.bit()), Err(Errno::EPERM));
        c.caps.bounding = CAP_VALID_MASK;
        capset(&mut c, Cap::Kill.bit(), Cap::Kill.bit(), Cap::Chown.bit()).expect("drop");
        assert_eq!(c.caps.permitted, Cap::Kill.bit());
    }

    #[test]
    fn exec_transforms() {
        let mut root = creds(0, 0, 0);
        root.caps.bounding &= !Cap::SysAdmin.bit();
        root.caps.permitted = 0;
        root.caps.effective = 0;
        exec(&mut root, false);
        assert_eq!(root.caps.permitted, CAP_VALID_MASK & !Cap::SysAdmin.bit());
        let mut nnp = creds(0, 0, 0);
        nnp.caps.permitted = Cap::Chown.bit();
        exec(&mut nnp, true);
        assert_eq!(nnp.caps.effective, Cap::Chown.bit(), "no_new_privs");
        let mut user = creds(1000, 1000, 1000);
        user.caps.permitted = Cap::Kill.bit();
        user.caps.inheritable = Cap::Kill.bit();
        user.caps.ambient = Cap::Kill.bit();
        exec(&mut user, false);
        assert_eq!(
            (user.caps.permitted, user.caps.effective),
            (Cap::Kill.bit(), Cap::Kill.bit())
        );
        let mut noroot = creds(0, 0, 0);
        noroot.caps.securebits = SECBIT_NOROOT;
        exec(&mut noroot, false);
        assert_eq!(noroot.caps.permitted, 0);
    }
}
