//! The host user the sentry runs as (issue 13, item 3).
//!
//! Started by root (`runsc do` run as root, and the OCI sandbox process under Docker or
//! containerd), the sentry gives up uid 0 once it has opened everything it needs: real,
//! effective, saved and file-system ids all become `nobody` (65534), with no supplementary
//! groups, keeping across the change only the capabilities of [`crate::caps::KEPT`]. A
//! compromised sentry then owns nothing on the host (a root-owned file is not its own, a
//! root process not its peer) and holds only those capabilities, under its seccomp filter
//! and Landlock ruleset. gVisor's sandbox process runs as `nobody` for the same reason.
//!
//! What still needs power over the host's files is done with the kept capabilities: files
//! the guest makes on a hostfs volume are made by `nobody` and at once given to the
//! guest's owner (CAP_CHOWN; hostfs decides that when the volume is opened, as root).
//!
//! `runsc do`'s waiting parent passes signals on to the sentry, and kill(2) needs a uid in
//! common. It keeps its real uid (root, until the sentry changes) and takes the sentry's as
//! its effective and saved ids ([`follow_sentry`]), so that its signals reach the sentry
//! before and after the change; it holds no capability.
//!
//! What sharing `nobody` with the host brings (gVisor's sandbox shares it too): a host
//! process running as `nobody` may signal the sentry (and `runsc do`'s waiting parent),
//! where only root could before; the host judges ICMP datagram sockets against the
//! sentry's gid, so a namespace whose `ping_group_range` leaves out 65534 refuses them.
//! RLIMIT_NPROC, which counts per user and from which root is exempt, is raised to
//! unlimited before the change, so that sandboxes don't share one count (their bound is
//! their pids limit).
//!
//! Not done where the sentry does not run as root (a normal user's `runsc do` keeps the
//! caller's uid), with `--seccomp=off` (which keeps every confinement off for debugging),
//! or with `RUNSC_NO_UID_CHANGE=1`. Where `nobody` is not mapped (root of a user namespace
//! that maps only itself), a warning says so and the sentry stays root.

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::OnceLock;

/// The host uid and gid the sentry runs as when started by root: `nobody` and `nogroup`.
pub const SENTRY_UID: u32 = 65534;
pub const SENTRY_GID: u32 = 65534;

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

/// The sentry becomes [`SENTRY_UID`]/[`SENTRY_GID`] with no supplementary groups, then
/// keeps only the capabilities it needs (crate::caps::drop_unneeded). Call it once the
/// host files are open, with the calling thread the process's only one (capabilities,
/// and the keep-capabilities flag, are per thread): another thread is an error.
pub fn become_sentry_user(network_admin: bool) -> Result<(), IdentityError> {
    let threads = crate::landlock::thread_names();
    if threads.len() > 1 {
        return Err(IdentityError(format!(
            "other threads exist ({}); each would keep its own capabilities",
            threads.join(", ")
        )));
    }
    let death_signal = parent_death_signal();
    // Root's threads are exempt from RLIMIT_NPROC, nobody's are not, and the count is per
    // user: every root-started sandbox (and any other `nobody` process) would share one.
    // The sandbox's own bound is its pids limit; keep the host's count out of it, as it
    // was. Raising the hard limit needs CAP_SYS_RESOURCE, held until the change.
    let unlimited = libc::rlimit {
        rlim_cur: libc::RLIM_INFINITY,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: setrlimit with a valid rlimit.
    if unsafe { libc::setrlimit(libc::RLIMIT_NPROC, &unlimited) } < 0 {
        tracing::debug!("RLIMIT_NPROC stays: {}", std::io::Error::last_os_error());
    }
    let changed = change_ids();
    // Any change of credentials (a partial one too) clears the parent-death signal.
    restore_parent_death_signal(death_signal);
    if let Err(e) = changed {
        tracing::warn!("{e}; the sentry stays root (is uid {SENTRY_UID} mapped here?)");
        return crate::caps::drop_unneeded(network_admin).map_err(|e| IdentityError(e.to_string()));
    }
    // The change emptied the effective set; drop_unneeded raises what is permitted again
    // before it narrows the sets.
    crate::caps::drop_unneeded(network_admin).map_err(|e| IdentityError(e.to_string()))?;
    tracing::debug!("sentry: host uid {SENTRY_UID}, gid {SENTRY_GID}, no groups");
    Ok(())
}

/// No groups, then gid and uid [`SENTRY_GID`]/[`SENTRY_UID`], all four of each, keeping the
/// permitted capabilities across the change.
fn change_ids() -> Result<(), IdentityError> {
    let err = |what: &str, e: nix::Error| IdentityError(format!("{what}: {e}"));
    // Permitted capabilities survive the uid change only with this flag (the kernel clears
    // it again at the next execve; the sentry never execs).
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0) } < 0 {
        return Err(err("PR_SET_KEEPCAPS", nix::Error::last()));
    }
    let gid = nix::unistd::Gid::from_raw(SENTRY_GID);
    let uid = nix::unistd::Uid::from_raw(SENTRY_UID);
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
/// uid). Before the parent drops its capabilities (it needs CAP_SETUID here).
pub fn follow_sentry() -> Result<(), IdentityError> {
    let uid = nix::unistd::Uid::from_raw(SENTRY_UID);
    nix::unistd::setresuid(nix::unistd::Uid::from_raw(0), uid, uid)
        .map_err(|e| IdentityError(format!("setresuid: {e}")))
}
