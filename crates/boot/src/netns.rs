//! `runsc do --network=none`: a fresh network namespace with only loopback, made before
//! the sandbox starts. Every host socket the sentry creates for the sandbox (hostinet)
//! then lives there, so nothing in the sandbox can reach the host's network.
//!
//! Making a network namespace needs CAP_SYS_ADMIN. Root has it; anyone else gets it inside
//! a new user namespace (mapping their own uid and gid to themselves), where the host
//! allows unprivileged user namespaces. Both `unshare` calls affect the calling thread
//! only (and, for a user namespace, require a single-threaded process), so this runs
//! first thing in `main`, before any thread starts: threads made later inherit it.

use std::os::fd::{FromRawFd, OwnedFd};

/// Why the namespace could not be made.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error(
        "--network=none needs a new network namespace, which the host refused ({0}); \
         run as root, or allow unprivileged user namespaces \
         (sysctl kernel.unprivileged_userns_clone=1 / user.max_user_namespaces > 0)"
    )]
    Unshare(nix::Error),
    #[error("--network=none: writing {0}: {1}")]
    IdMap(&'static str, std::io::Error),
    #[error("--network=none: bringing up the loopback interface: {0}")]
    Loopback(nix::Error),
}

static OWN: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Records that the sentry's network namespace is the sandbox's own (made for it, or a
/// bundle's that is not the one the runtime started in), not the host's.
pub fn mark_own() {
    OWN.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether [`mark_own`] was called: only then may the sandbox change its network.
pub fn is_own() -> bool {
    OWN.load(std::sync::atomic::Ordering::Relaxed)
}

/// The identity (inode) of the calling thread's network namespace.
pub fn current_id() -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/thread-self/ns/net")
        .ok()
        .map(|m| m.ino())
}

/// Moves this (single-threaded) process into a new network namespace and brings its
/// loopback interface up.
pub fn isolate_network() -> Result<(), NetnsError> {
    use nix::sched::{unshare, CloneFlags};
    if nix::unistd::geteuid().is_root() {
        unshare(CloneFlags::CLONE_NEWNET).map_err(NetnsError::Unshare)?;
    } else {
        let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
        unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET)
            .map_err(NetnsError::Unshare)?;
        let write = |path: &'static str, text: String| {
            std::fs::write(path, text).map_err(|e| NetnsError::IdMap(path, e))
        };
        write("/proc/self/setgroups", "deny".into())?;
        write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
        write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;
    }
    loopback_up().map_err(NetnsError::Loopback)?;
    mark_own();
    tracing::debug!("network: a new namespace with loopback only");
    Ok(())
}

fn loopback_up() -> Result<(), nix::Error> {
    // SAFETY: plain socket(2); the result is checked.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: fd is a fresh descriptor we own.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: an all-zero ifreq is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *d = *s as libc::c_char;
    }
    use std::os::fd::AsRawFd;
    // SAFETY: req is a valid ifreq naming "lo"; the ioctl fills in its flags.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
        return Err(nix::Error::last());
    }
    // SAFETY: the union's flags member is what SIOCGIFFLAGS filled in.
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: as above; SIOCSIFFLAGS reads the ifreq.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) } < 0 {
        return Err(nix::Error::last());
    }
    Ok(())
}
