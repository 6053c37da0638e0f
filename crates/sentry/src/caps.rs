//! Capabilities and the credential checks between tasks.
//!
//! There is no per-task capability set yet: a task holds every capability while its
//! effective uid is 0 and none otherwise. That is what Linux gives a process that never
//! calls capset and has no file capabilities: setuid-style changes clear the effective set
//! when the effective uid leaves 0 and restore it when it returns.

use crate::task::Creds;

/// Capability numbers (linux/capability.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cap {
    Fowner = 3,
    Kill = 5,
    NetBindService = 10,
    NetAdmin = 12,
    NetRaw = 13,
    IpcLock = 14,
    IpcOwner = 15,
    SysPtrace = 19,
    SysAdmin = 21,
    SysNice = 23,
    SysResource = 24,
    SysTime = 25,
    Syslog = 34,
}

/// Whether `creds` has `cap` in its effective set.
pub fn capable(creds: &Creds, _cap: Cap) -> bool {
    creds.euid == 0
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
    }
}
