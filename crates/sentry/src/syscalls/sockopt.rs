//! getsockopt and setsockopt on host-backed sockets, through an explicit allowlist.
//!
//! Each allowed option names the largest value it takes; the value is copied between the
//! application and a sentry buffer of at most that size, and the host is called on the
//! buffer. SO_RCVTIMEO and SO_SNDTIMEO are the sentry's own (the host socket never blocks).
//! The host socket is the sentry's, which may be privileged, so the guest's own
//! capabilities are checked for the options that need them (SO_BINDTODEVICE once bound:
//! CAP_NET_RAW;
//! the *FORCE buffer sizes and SO_PRIORITY above 6: CAP_NET_ADMIN); SO_MARK and
//! IP_TRANSPARENT are always EPERM; anything not listed is ENOPROTOOPT, what Linux gives
//! for an option it doesn't know.

use fs::hostinet::HostSocket;

use crate::caps::{capable, Cap};

use super::socket::{timeout_from, timeval_bytes};
use crate::errno::{Errno, SysResult};
use crate::task::TaskState;

const INT: usize = 4;

enum Opt {
    /// Passed to the host, with a value of at most this many bytes.
    Host(usize),
    /// SO_RCVTIMEO / SO_SNDTIMEO, kept by the sentry.
    Timeout { send: bool },
    /// Needs a capability the sandbox lacks.
    Refused,
    /// Setting it needs a capability (the host socket is the sentry's, which may hold it):
    /// EPERM without.
    Privileged(usize, Cap),
    /// SO_BINDTODEVICE / SO_BINDTOIFINDEX: changing a binding already made needs
    /// CAP_NET_RAW (Linux's sock_bindtoindex_locked).
    BindDevice(usize),
}

/// The allowlist: (level, name, what).
const OPTIONS: &[(i32, i32, Opt)] = {
    use libc::*;
    use Opt::*;
    &[
        (SOL_SOCKET, SO_REUSEADDR, Host(INT)),
        (SOL_SOCKET, SO_REUSEPORT, Host(INT)),
        (SOL_SOCKET, SO_TYPE, Host(INT)),
        (SOL_SOCKET, SO_PROTOCOL, Host(INT)),
        (SOL_SOCKET, SO_DOMAIN, Host(INT)),
        (SOL_SOCKET, SO_ERROR, Host(INT)),
        (SOL_SOCKET, SO_ACCEPTCONN, Host(INT)),
        (SOL_SOCKET, SO_DONTROUTE, Host(INT)),
        (SOL_SOCKET, SO_BROADCAST, Host(INT)),
        (SOL_SOCKET, SO_SNDBUF, Host(INT)),
        (SOL_SOCKET, SO_RCVBUF, Host(INT)),
        (SOL_SOCKET, SO_SNDBUFFORCE, Privileged(INT, Cap::NetAdmin)),
        (SOL_SOCKET, SO_RCVBUFFORCE, Privileged(INT, Cap::NetAdmin)),
        (SOL_SOCKET, SO_KEEPALIVE, Host(INT)),
        (SOL_SOCKET, SO_OOBINLINE, Host(INT)),
        (SOL_SOCKET, SO_NO_CHECK, Host(INT)),
        (SOL_SOCKET, SO_PRIORITY, Host(INT)),
        (SOL_SOCKET, SO_LINGER, Host(8)),
        (SOL_SOCKET, SO_RCVLOWAT, Host(INT)),
        (SOL_SOCKET, SO_SNDLOWAT, Host(INT)),
        (SOL_SOCKET, SO_RCVTIMEO, Timeout { send: false }),
        (SOL_SOCKET, SO_SNDTIMEO, Timeout { send: true }),
        (SOL_SOCKET, 66, Timeout { send: false }), // SO_RCVTIMEO_NEW
        (SOL_SOCKET, 67, Timeout { send: true }),  // SO_SNDTIMEO_NEW
        (SOL_SOCKET, SO_BINDTODEVICE, BindDevice(16)),
        (SOL_SOCKET, SO_BINDTOIFINDEX, BindDevice(INT)),
        (SOL_SOCKET, SO_TIMESTAMP, Host(INT)),
        (SOL_SOCKET, SO_TIMESTAMPNS, Host(INT)),
        (SOL_SOCKET, SO_PASSCRED, Host(INT)),
        (SOL_SOCKET, SO_PEERCRED, Host(12)),
        (SOL_SOCKET, SO_PEEK_OFF, Host(INT)),
        (SOL_SOCKET, SO_RXQ_OVFL, Host(INT)),
        (SOL_SOCKET, SO_COOKIE, Host(8)),
        (SOL_SOCKET, SO_MARK, Refused),
        (IPPROTO_TCP, TCP_NODELAY, Host(INT)),
        (IPPROTO_TCP, TCP_MAXSEG, Host(INT)),
        (IPPROTO_TCP, TCP_CORK, Host(INT)),
        (IPPROTO_TCP, TCP_KEEPIDLE, Host(INT)),
        (IPPROTO_TCP, TCP_KEEPINTVL, Host(INT)),
        (IPPROTO_TCP, TCP_KEEPCNT, Host(INT)),
        (IPPROTO_TCP, TCP_SYNCNT, Host(INT)),
        (IPPROTO_TCP, TCP_LINGER2, Host(INT)),
        (IPPROTO_TCP, TCP_DEFER_ACCEPT, Host(INT)),
        (IPPROTO_TCP, TCP_WINDOW_CLAMP, Host(INT)),
        (IPPROTO_TCP, TCP_INFO, Host(512)),
        (IPPROTO_TCP, TCP_QUICKACK, Host(INT)),
        (IPPROTO_TCP, TCP_CONGESTION, Host(16)),
        (IPPROTO_TCP, TCP_USER_TIMEOUT, Host(INT)),
        (IPPROTO_TCP, TCP_NOTSENT_LOWAT, Host(INT)),
        (IPPROTO_TCP, TCP_FASTOPEN, Host(INT)),
        (IPPROTO_TCP, TCP_FASTOPEN_CONNECT, Host(INT)),
        (IPPROTO_UDP, UDP_CORK, Host(INT)),
        (IPPROTO_IP, IP_TOS, Host(INT)),
        (IPPROTO_IP, IP_TTL, Host(INT)),
        (IPPROTO_IP, IP_OPTIONS, Host(40)),
        (IPPROTO_IP, IP_PKTINFO, Host(INT)),
        (IPPROTO_IP, IP_RECVTTL, Host(INT)),
        (IPPROTO_IP, IP_RECVTOS, Host(INT)),
        (IPPROTO_IP, IP_RECVERR, Host(INT)),
        (IPPROTO_IP, IP_RECVORIGDSTADDR, Host(INT)),
        (IPPROTO_IP, IP_MTU_DISCOVER, Host(INT)),
        (IPPROTO_IP, IP_MTU, Host(INT)),
        (IPPROTO_IP, IP_FREEBIND, Host(INT)),
        (IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, Host(INT)),
        (IPPROTO_IP, IP_MULTICAST_IF, Host(12)),
        (IPPROTO_IP, IP_MULTICAST_TTL, Host(INT)),
        (IPPROTO_IP, IP_MULTICAST_LOOP, Host(INT)),
        (IPPROTO_IP, IP_ADD_MEMBERSHIP, Host(12)),
        (IPPROTO_IP, IP_DROP_MEMBERSHIP, Host(12)),
        (IPPROTO_IP, IP_TRANSPARENT, Refused),
        (IPPROTO_IPV6, IPV6_V6ONLY, Host(INT)),
        (IPPROTO_IPV6, IPV6_UNICAST_HOPS, Host(INT)),
        (IPPROTO_IPV6, IPV6_MULTICAST_IF, Host(INT)),
        (IPPROTO_IPV6, IPV6_MULTICAST_HOPS, Host(INT)),
        (IPPROTO_IPV6, IPV6_MULTICAST_LOOP, Host(INT)),
        (IPPROTO_IPV6, IPV6_ADD_MEMBERSHIP, Host(20)),
        (IPPROTO_IPV6, IPV6_DROP_MEMBERSHIP, Host(20)),
        (IPPROTO_IPV6, IPV6_RECVPKTINFO, Host(INT)),
        (IPPROTO_IPV6, IPV6_PKTINFO, Host(20)),
        (IPPROTO_IPV6, IPV6_RECVHOPLIMIT, Host(INT)),
        (IPPROTO_IPV6, IPV6_TCLASS, Host(INT)),
        (IPPROTO_IPV6, IPV6_RECVTCLASS, Host(INT)),
        (IPPROTO_IPV6, IPV6_MTU_DISCOVER, Host(INT)),
        (IPPROTO_IPV6, IPV6_MTU, Host(INT)),
        (IPPROTO_IPV6, IPV6_RECVERR, Host(INT)),
        (IPPROTO_IPV6, IPV6_TRANSPARENT, Refused),
        (SOL_NETLINK, 1, Host(INT)),  // NETLINK_ADD_MEMBERSHIP
        (SOL_NETLINK, 2, Host(INT)),  // NETLINK_DROP_MEMBERSHIP
        (SOL_NETLINK, 3, Host(INT)),  // NETLINK_PKTINFO
        (SOL_NETLINK, 5, Host(INT)),  // NETLINK_NO_ENOBUFS
        (SOL_NETLINK, 10, Host(INT)), // NETLINK_CAP_ACK
        (SOL_NETLINK, 11, Host(INT)), // NETLINK_EXT_ACK
        (SOL_NETLINK, 12, Host(INT)), // NETLINK_GET_STRICT_CHK
    ]
};

/// The entry for `(level, name)`, or ENOPROTOOPT.
fn lookup(level: i32, name: i32) -> Result<&'static Opt, Errno> {
    let opt = OPTIONS
        .iter()
        .find(|(l, n, _)| *l == level && *n == name)
        .map(|(_, _, o)| o)
        .ok_or(Errno(libc::ENOPROTOOPT))?;
    match opt {
        Opt::Refused => Err(Errno::EPERM),
        o => Ok(o),
    }
}

pub(super) fn getsockopt(t: &mut TaskState, s: &HostSocket, a: [u64; 6]) -> SysResult {
    let (level, name, val, len_ptr) = (a[1] as i32, a[2] as i32, a[3], a[4]);
    let len = t.mm.read_u32(len_ptr)? as i32;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let value = match lookup(level, name)? {
        Opt::Timeout { send } => timeval_bytes(s.timeout(*send)),
        Opt::Host(max) | Opt::Privileged(max, _) | Opt::BindDevice(max) => {
            let mut buf = vec![0u8; (len as usize).min(*max)];
            let n = s.getsockopt(level, name, &mut buf).map_err(Errno)?;
            buf.truncate(n.min(buf.len()));
            buf
        }
        Opt::Refused => return Err(Errno::EPERM),
    };
    let n = (len as usize).min(value.len());
    if n > 0 {
        t.mm.copy_out(val, &value[..n])?;
    }
    t.mm.copy_out(len_ptr, &(n as u32).to_le_bytes())?;
    Ok(0)
}

pub(super) fn setsockopt(t: &mut TaskState, s: &HostSocket, a: [u64; 6]) -> SysResult {
    let (level, name, val, len) = (a[1] as i32, a[2] as i32, a[3], a[4] as u32 as i32);
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let opt = lookup(level, name)?;
    match opt {
        Opt::Timeout { send } => {
            let d = timeout_from(t, val, len as usize)?;
            s.set_timeout(*send, d);
        }
        Opt::Host(max) | Opt::Privileged(max, _) | Opt::BindDevice(max) => {
            match opt {
                Opt::Privileged(_, cap) if !capable(&t.creds, *cap) => return Err(Errno::EPERM),
                Opt::BindDevice(_) if !capable(&t.creds, Cap::NetRaw) => {
                    let mut bound = [0u8; 4];
                    s.getsockopt(libc::SOL_SOCKET, libc::SO_BINDTOIFINDEX, &mut bound)
                        .map_err(Errno)?;
                    if u32::from_ne_bytes(bound) != 0 {
                        return Err(Errno::EPERM);
                    }
                }
                _ => {}
            }
            let mut buf = vec![0u8; (len as usize).min(*max)];
            if !buf.is_empty() {
                t.mm.copy_in(val, &mut buf)?;
            }
            // SO_PRIORITY outside 0..=6 needs CAP_NET_ADMIN (Linux's sk_setsockopt).
            if level == libc::SOL_SOCKET && name == libc::SO_PRIORITY && buf.len() >= INT {
                let v = i32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
                if !(0..=6).contains(&v) && !capable(&t.creds, Cap::NetAdmin) {
                    return Err(Errno::EPERM);
                }
            }
            s.setsockopt(level, name, &buf).map_err(Errno)?;
        }
        Opt::Refused => return Err(Errno::EPERM),
    }
    Ok(0)
}
