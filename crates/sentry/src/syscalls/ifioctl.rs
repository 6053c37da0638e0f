//! ioctls of host-backed sockets: SIOCOUTQ, SIOCATMARK and the read-only interface
//! requests (SIOCGIFCONF, SIOCGIFFLAGS, SIOCGIFADDR, SIOCGIFINDEX, SIOCGIFHWADDR,
//! SIOCGIFMTU and friends), answered by the host for the sentry's network namespace.
//!
//! An ifreq is copied into a sentry buffer, its name NUL-terminated as Linux does, handed
//! to the host, and copied back; SIOCGIFCONF's array is a sentry buffer of the size the
//! application gave (bounded). Interface changes (SIOCS*) are EPERM, as for a sandbox
//! without CAP_NET_ADMIN, except [`IFREQ_CHANGES`] where the sandbox may change its own
//! network. FIONREAD and FIONBIO are the generic ones (rw.rs).

use std::sync::OnceLock;

use fs::hostinet::HostSocket;

use crate::errno::{Errno, SysResult};
use crate::task::TaskState;

/// sizeof(struct ifreq) and IFNAMSIZ.
const IFREQ_SIZE: usize = 40;
const IFNAMSIZ: usize = 16;
/// Most bytes of ifreqs SIOCGIFCONF returns (1638 interfaces).
const IFCONF_MAX: usize = 64 << 10;

const SIOCATMARK: u64 = 0x8905;
/// The read-only ifreq requests: SIOCGIFNAME, SIOCGIFFLAGS, SIOCGIFADDR, SIOCGIFDSTADDR,
/// SIOCGIFBRDADDR, SIOCGIFNETMASK, SIOCGIFMETRIC, SIOCGIFMTU, SIOCGIFHWADDR, SIOCGIFINDEX,
/// SIOCGIFTXQLEN, SIOCGIFMAP.
const GET_IFREQ: [u64; 12] = [
    0x8910, 0x8913, 0x8915, 0x8917, 0x8919, 0x891b, 0x891d, 0x8921, 0x8927, 0x8933, 0x8942, 0x8970,
];
/// The requests that change interfaces, routes or neighbours (SIOCADDRT, SIOCDELRT,
/// SIOCSIF*, SIOCDIFADDR, SIOCADDMULTI/SIOCDELMULTI, SIOCSARP/SIOCDARP, SIOCBRADDBR...).
const CHANGES: [u64; 30] = [
    0x890b, 0x890c, 0x890d, 0x8911, 0x8914, 0x8916, 0x8918, 0x891a, 0x891c, 0x891e, 0x8920, 0x8922,
    0x8923, 0x8924, 0x8926, 0x8930, 0x8931, 0x8932, 0x8934, 0x8936, 0x8937, 0x8943, 0x8953, 0x8955,
    0x8960, 0x8962, 0x8971, 0x89a0, 0x89a1, 0x89a2,
];

/// The changes served when the sandbox may change its own network (see
/// `fs::hostinet::allow_network_changes`): plain ifreqs, no pointers inside. SIOCSIFFLAGS,
/// SIOCSIFADDR, SIOCSIFBRDADDR, SIOCSIFNETMASK, SIOCSIFMTU, SIOCSIFHWADDR, SIOCSIFTXQLEN.
/// The rest of [`CHANGES`] (routes through `struct rtentry`, which holds a pointer; renames;
/// bridges; ARP) stays EPERM.
const IFREQ_CHANGES: [u64; 7] = [0x8914, 0x8916, 0x891a, 0x891c, 0x8922, 0x8924, 0x8943];

/// Every request the sentry makes on a host socket (hostinet), for its seccomp filter.
pub fn host_socket_ioctls() -> Vec<u64> {
    let mut v = vec![
        libc::FIONREAD,
        libc::TIOCOUTQ, /* SIOCOUTQ */
        SIOCATMARK,
        libc::SIOCGIFCONF,
    ];
    v.extend(GET_IFREQ);
    v.extend(IFREQ_CHANGES);
    v
}

fn changes_interfaces(req: u64) -> bool {
    CHANGES.contains(&req)
}

/// Serves `req` on a host-backed socket; None for requests this file doesn't know (the
/// caller gives ENOTTY).
pub(super) fn ioctl(t: &mut TaskState, s: &HostSocket, req: u64, arg: u64) -> Option<SysResult> {
    Some(match req {
        r if r == libc::TIOCOUTQ => s
            .bytes_unsent()
            .map_err(Errno)
            .and_then(|n| t.mm.copy_out(arg, &n.to_le_bytes()))
            .map(|_| 0),
        SIOCATMARK => {
            let mut v = [0u8; 4];
            s.ioctl_buf(req, &mut v)
                .map_err(Errno)
                .and_then(|_| t.mm.copy_out(arg, &v))
                .map(|_| 0)
        }
        r if r == libc::SIOCGIFCONF => ifconf(t, s, arg),
        r if GET_IFREQ.contains(&r) => ifreq(t, s, r, arg),
        r if IFREQ_CHANGES.contains(&r)
            && super::inet::network_rights(t) == fs::hostinet::netlink::Rights::Change =>
        {
            ifreq(t, s, r, arg)
        }
        r if changes_interfaces(r) => Err(Errno::EPERM),
        _ => return None,
    })
}

/// The interface requests on a socket that has no host socket of its own (AF_UNIX, which
/// glibc's if_nametoindex uses): served through one host datagram socket of the sentry's
/// namespace, created on first use. None for other requests.
pub(super) fn interface_ioctl(t: &mut TaskState, req: u64, arg: u64) -> Option<SysResult> {
    if req != libc::SIOCGIFCONF && !GET_IFREQ.contains(&req) && !changes_interfaces(req) {
        return None;
    }
    static HELPER: OnceLock<Result<HostSocket, i32>> = OnceLock::new();
    let helper = HELPER.get_or_init(|| HostSocket::new(libc::AF_UNIX, libc::SOCK_DGRAM, 0));
    Some(match helper {
        Ok(s) => return ioctl(t, s, req, arg),
        Err(e) => Err(Errno(*e)),
    })
}

fn ifreq(t: &mut TaskState, s: &HostSocket, req: u64, arg: u64) -> SysResult {
    let mut buf = [0u8; IFREQ_SIZE];
    t.mm.copy_in(arg, &mut buf)?;
    buf[IFNAMSIZ - 1] = 0;
    s.ioctl_buf(req, &mut buf).map_err(Errno)?;
    t.mm.copy_out(arg, &buf)?;
    Ok(0)
}

/// struct ifconf { int ifc_len; (pad) ; char *ifc_buf; }.
fn ifconf(t: &mut TaskState, s: &HostSocket, arg: u64) -> SysResult {
    let mut hdr = [0u8; 16];
    t.mm.copy_in(arg, &mut hdr)?;
    let len = i32::from_le_bytes(hdr[0..4].try_into().unwrap_or_default());
    let ptr = u64::from_le_bytes(hdr[8..16].try_into().unwrap_or_default());
    let n = if ptr == 0 {
        s.ifconf(None).map_err(Errno)?
    } else {
        let mut buf = vec![0u8; (len.max(0) as usize).min(IFCONF_MAX)];
        let n = s.ifconf(Some(&mut buf)).map_err(Errno)?.min(buf.len());
        if n > 0 {
            t.mm.copy_out(ptr, &buf[..n])?;
        }
        n
    };
    t.mm.copy_out(arg, &(n as i32).to_le_bytes())?;
    Ok(0)
}
