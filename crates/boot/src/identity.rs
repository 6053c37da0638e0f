//! The host user the sentry runs as (issue 13, item 3).
//!
//! Started by root (`runsc do` run as root, and the OCI sandbox process under Docker or
//! containerd), the sentry gives up uid 0 once it has opened everything it needs: real,
//! effective, saved and file-system ids all become a user of its own (below), with no
//! supplementary groups, keeping across the change only the capabilities of
//! [`crate::caps::KEPT`]. A compromised sentry then owns nothing on the host (a root-owned
//! file is not its own, a root process not its peer) and holds only those capabilities,
//! under its seccomp filter and Landlock ruleset. gVisor's sandbox process gives up root
//! for the same reason (it takes `nobody`).
//!
//! **A user per sandbox.** Each sentry takes a uid and gid that no other live sentry and no
//! ordinary host user has: [`ID_BASE`] plus the number Linux gave the sentry's pid
//! namespace, which is made for it (it is pid 1 there) and lives exactly as long as it.
//! Linux numbers the namespaces it makes from `PROC_DYNAMIC_FIRST` (0xf0000000) up,
//! lowest free first, unique on the host while they live, whatever container the caller
//! runs in; the id is the namespace's inode in nsfs. So one sandbox's sentry can't signal
//! another's, nor can a host process that runs as `nobody` (or any other service user)
//! signal any sentry. Firecracker's jailer asks the same of its operator (a uid per
//! microVM). The range, 0x7f000000 up to systemd's "foreign" range at 0x7ffe0000, is
//! below 2^31 (systemd's advice: some tools take ids as signed) and above the ranges
//! distributions, systemd's dynamic users and the usual /etc/subuid allotments use. A
//! sentry without a pid namespace of its own (namespaces off or refused), one whose
//! namespace number falls past the range, or one where its id is not mapped (root of a
//! user namespace that maps few ids) takes `nobody` (65534) as before; if that is not
//! mapped either, a warning says so and it stays root.
//!
//! What still needs power over the host's files is done with the kept capabilities: files
//! the guest makes on a hostfs volume are made by the sentry's user and at once given to
//! the guest's owner (CAP_CHOWN; hostfs decides that when the volume is opened, as root).
//!
//! `runsc do`'s waiting parent passes signals on to the sentry, and kill(2) needs a uid in
//! common. It keeps its real uid (root, until the sentry changes) and takes the sentry's as
//! its effective and saved ids ([`follow_sentry`]), so that its signals reach the sentry
//! before and after the change; it holds no capability.
//!
//! The host judges ICMP datagram sockets against the sentry's gid: Docker's namespaces
//! admit every gid below 2^31 (`ping_group_range` "0 2147483647"); the host's default ("1
//! 0") admits none, root's included. RLIMIT_NPROC, which counts per user and from which
//! root is exempt, is raised to unlimited before the change: the sandbox's bound is its
//! pids limit. A caller without CAP_SYS_RESOURCE (root with it dropped) can't raise it;
//! the user being the sandbox's own, the limit then counts that sandbox's threads alone.
//!
//! Not done where the sentry does not run as root (a normal user's `runsc do` keeps the
//! caller's uid), with `--seccomp=off` (which keeps every confinement off for debugging),
//! or with `RUNSC_NO_UID_CHANGE=1`.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::OnceLock;

/// The first of the host uids (and gids) root-started sentries take, one per sandbox.
pub const ID_BASE: u32 = 0x7f00_0000;
/// How many there are: up to systemd's foreign range (0x7ffe0000).
pub const ID_COUNT: u32 = 0x00fe_0000;
// Below 2^31, where Docker's ping_group_range ends and signed readers still agree.
const _: () = assert!(ID_BASE + ID_COUNT - 1 < 0x8000_0000);
/// The host uid and gid a root-started sentry takes when it can't have its own:
/// `nobody` and `nogroup`.
pub const NOBODY: u32 = 65534;
/// The inode number of the first namespace Linux makes after boot (`PROC_DYNAMIC_FIRST`,
/// fs/proc/generic.c); the host's initial namespaces have fixed numbers below it.
const FIRST_NAMESPACE_INODE: u64 = 0xf000_0000;

/// Set to 1 to keep a root-started sentry as root (to debug).
pub const DISABLE_ENV: &str = "RUNSC_NO_UID_CHANGE";

/// `runsc do`'s child: the read end of a pipe whose write end only the waiting parent
/// holds, to learn whether the parent died while the parent-death signal was unset.
static PARENT_ALIVE: OnceLock<OwnedFd> = OnceLock::new();

#[derive(Debug, thiserror::Error)]
#[error("the sentry's host user: {0}")]
pub struct IdentityError(String);

/// Whether a sentry running with `seccomp` gives up root: decided the same way by
/// `runsc do`'s parent (before the fork) and by the sentry.
pub fn changes(seccomp: crate::seccomp::Mode) -> bool {
    seccomp != crate::seccomp::Mode::Off
        && !platform::env_flag(DISABLE_ENV)
        && nix::unistd::geteuid().is_root()
}

/// `runsc do`'s child keeps the read end of the parent's pipe (see [`PARENT_ALIVE`]).
pub(crate) fn keep_parent_pipe(read_end: OwnedFd) {
    let _ = PARENT_ALIVE.set(read_end);
}

/// The uid (and gid) of the root-started sentry that is pid 1 of the pid namespace at
/// `pid_namespace` (a `/proc/PID/ns/pid` or `pid_for_children` link): [`ID_BASE`] plus the
/// namespace's number, or None when it is not a namespace made after boot or its number is
/// past the range.
pub fn id_for_pid_namespace(pid_namespace: &std::path::Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    id_for_namespace_inode(std::fs::metadata(pid_namespace).ok()?.ino())
}

/// [`ID_BASE`] plus the number of the namespace whose nsfs inode is `inode`, if it is one
/// made after boot and its number is within the range.
fn id_for_namespace_inode(inode: u64) -> Option<u32> {
    let number = inode.checked_sub(FIRST_NAMESPACE_INODE)?;
    let number = u32::try_from(number).ok().filter(|&n| n < ID_COUNT)?;
    Some(ID_BASE + number)
}

/// The ids a root-started sentry tries, in order: its own, when it is pid 1 of a pid
/// namespace (made for it, so its number is the sentry's alone), then `nobody`.
fn sentry_ids() -> Vec<u32> {
    // SAFETY: getpid has no preconditions.
    let own_namespace = unsafe { libc::getpid() } == 1;
    let own = own_namespace
        .then(|| id_for_pid_namespace(std::path::Path::new("/proc/self/ns/pid")))
        .flatten();
    candidates(own)
}

/// `own` (if any), then `nobody`: those whose uid and gid are both mapped in this user
/// namespace. The sentry and `runsc do`'s waiting parent share a user namespace and decide
/// with this same rule, so that they settle on the same uid (an id mapped as a uid but not
/// as a gid would fail the sentry's setresgid, but not the parent's setresuid).
fn candidates(own: Option<u32>) -> Vec<u32> {
    let maps = ["/proc/self/uid_map", "/proc/self/gid_map"].map(std::fs::read_to_string);
    own.into_iter()
        .chain([NOBODY])
        .filter(|&id| {
            maps.iter().all(|map| match map {
                Ok(text) => in_map(text, id),
                // Unreadable: try it, as before the maps were consulted.
                Err(_) => true,
            })
        })
        .collect()
}

/// Whether `id` is inside one of the ranges of a /proc/PID/{uid,gid}_map text.
pub fn in_map(text: &str, id: u32) -> bool {
    text.lines().any(|line| {
        let mut f = line.split_whitespace().map(|v| v.parse::<u64>().ok());
        match (f.next().flatten(), f.next().flatten(), f.next().flatten()) {
            (Some(inside), Some(_), Some(count)) => {
                (inside..inside.saturating_add(count)).contains(&u64::from(id))
            }
            _ => false,
        }
    })
}

/// The sentry becomes a user of its own (or `nobody`; see the module's comment) with no
/// supplementary groups, then keeps only the capabilities it needs
/// (crate::caps::drop_unneeded). Call it once the host files are open, with the calling
/// thread the process's only one (capabilities, and the keep-capabilities flag, are per
/// thread): another thread is an error.
pub fn become_sentry_user(network_admin: bool) -> Result<(), IdentityError> {
    let threads = crate::landlock::thread_names();
    if threads.len() > 1 {
        return Err(IdentityError(format!(
            "other threads exist ({}); each would keep its own capabilities",
            threads.join(", ")
        )));
    }
    let death_signal = parent_death_signal();
    // Root's threads are exempt from RLIMIT_NPROC, other users' are not. The sandbox's own
    // bound is its pids limit; keep the host's limit out of it, as it was. Raising the hard
    // limit needs CAP_SYS_RESOURCE, held until the change where the caller had it.
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit with a valid rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NPROC, &unlimited) } < 0 {
        tracing::debug!("RLIMIT_NPROC stays: {}", std::io::Error::last_os_error());
    }
    let changed = change_to_first(&sentry_ids(), change_ids);
    // Any change of credentials (a partial one too) clears the parent-death signal.
    restore_parent_death_signal(death_signal);
    match changed {
        Ok(id) => {
            // The change emptied the effective set; drop_unneeded raises what is permitted
            // again before it narrows the sets.
            crate::caps::drop_unneeded(network_admin).map_err(|e| IdentityError(e.to_string()))?;
            tracing::debug!("sentry: host uid {id}, gid {id}, no groups");
            Ok(())
        }
        Err(e) => {
            tracing::warn!("{e}; the sentry stays root (are its ids mapped here?)");
            crate::caps::drop_unneeded(network_admin).map_err(|e| IdentityError(e.to_string()))
        }
    }
}

/// Tries `change` with each of `ids` in turn: the first that works, or the last error.
fn change_to_first(
    ids: &[u32],
    change: impl Fn(u32) -> Result<(), IdentityError>,
) -> Result<u32, IdentityError> {
    let mut last = IdentityError("no ids to take".into());
    for &id in ids {
        match change(id) {
            Ok(()) => return Ok(id),
            Err(e) => {
                tracing::debug!("host uid {id}: {e}");
                last = e;
            }
        }
    }
    Err(last)
}

/// The sentry: no groups, then gid and uid `id`, all four of each, keeping the permitted
/// capabilities across the change. A failed setresuid leaves the uid root, so the next id
/// can be tried.
fn change_ids(id: u32) -> Result<(), IdentityError> {
    let err = |what: &str, e: nix::Error| IdentityError(format!("{what}: {e}"));
    // Permitted capabilities survive the uid change only with this flag (the kernel clears
    // it again at the next execve; the sentry never execs).
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } < 0 {
        return Err(err("PR_SET_KEEPCAPS", nix::Error::last()));
    }
    let gid = nix::unistd::Gid::from_raw(id);
    let uid = nix::unistd::Uid::from_raw(id);
    let changed = nix::unistd::setgroups(&[])
        .map_err(|e| err("setgroups", e))
        .and_then(|()| nix::unistd::setresgid(gid, gid, gid).map_err(|e| err("setresgid", e)))
        .and_then(|()| nix::unistd::setresuid(uid, uid, uid).map_err(|e| err("setresuid", e)));
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0) };
    changed
}

/// The calling process's parent-death signal (0: none).
fn parent_death_signal() -> libc::c_int {
    let mut signal: libc::c_int = 0;
    // SAFETY: PR_GET_PDEATHSIG stores an int at the address given, which is ours.
    unsafe { libc::prctl(libc::PR_GET_PDEATHSIG, &mut signal as *mut libc::c_int) };
    signal
}

/// Sets the parent-death signal `signal` again after a change of credentials cleared it;
/// if `runsc do`'s parent died meanwhile (its pipe's only write end is closed), exits as
/// that signal would have ended us. Exits rather than raises: the sentry is pid 1 of its
/// pid namespace, which ignores a signal it sends itself, SIGKILL included.
fn restore_parent_death_signal(signal: libc::c_int) {
    if signal == 0 {
        return;
    }
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, signal, 0, 0, 0) };
    let Some(pipe) = PARENT_ALIVE.get() else {
        return;
    };
    let mut poll = libc::pollfd {
        fd: pipe.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll of one pollfd of ours, without waiting.
    let n = unsafe { libc::poll(&mut poll, 1, 0) };
    if n > 0 && poll.revents & libc::POLLHUP != 0 {
        tracing::debug!("the waiting parent died while the sentry changed its user");
        // SAFETY: _exit ends the process at once; nothing of the sandbox runs yet.
        unsafe { libc::_exit(128 + signal) };
    }
}

/// `runsc do`'s waiting parent, when its sentry [`changes`]: effective and saved uid
/// become the sentry's and the real uid stays root, so that kill(2) from here reaches the
/// sentry before its change (real uid to real uid) and after it (effective uid to real
/// uid). The sentry is pid 1 of the namespace this process made for its children, and
/// takes its ids as [`sentry_ids`] does, in the same order (an id unmapped here is
/// unmapped there). Before the parent drops its capabilities (it needs CAP_SETUID here).
pub fn follow_sentry() -> Result<u32, IdentityError> {
    let own = id_for_pid_namespace(std::path::Path::new("/proc/self/ns/pid_for_children"));
    change_to_first(&candidates(own), |id| {
        let uid = nix::unistd::Uid::from_raw(id);
        nix::unistd::setresuid(nix::unistd::Uid::from_raw(0), uid, uid)
            .map_err(|e| IdentityError(format!("setresuid: {e}")))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_counts_as_mapped_only_inside_a_range() {
        let map = "         0          0 4294967295\n";
        assert!(in_map(map, 0x7f00_0000));
        let map = "0 1000 1\n65534 65534 1\n";
        assert!(in_map(map, 0) && in_map(map, 65534));
        assert!(!in_map(map, 1) && !in_map(map, 65533) && !in_map(map, 0x7f00_0000));
        assert!(!in_map("", 0) && !in_map("garbage\n", 0));
    }

    #[test]
    fn namespace_numbers_map_into_the_range_and_no_further() {
        // The host's initial pid namespace (PROC_PID_INIT_INO) has no number of its own.
        assert_eq!(id_for_namespace_inode(0xefff_fffc), None);
        assert_eq!(id_for_namespace_inode(0xf000_0000), Some(ID_BASE));
        assert_eq!(
            id_for_namespace_inode(0xf000_0000 + 334),
            Some(0x7f00_0000 + 334)
        );
        let last = 0xf000_0000 + u64::from(ID_COUNT) - 1;
        assert_eq!(id_for_namespace_inode(last), Some(0x7ffd_ffff));
        assert_eq!(id_for_namespace_inode(last + 1), None);
    }
}
