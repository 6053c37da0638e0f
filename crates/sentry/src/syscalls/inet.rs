//! Sockets of the AF_INET, AF_INET6 and AF_NETLINK (NETLINK_ROUTE) families: the system call
//! side of [`fs::hostinet`]. Each sandbox socket is a host socket the sentry owns; this file
//! checks what the application asks for against what the sandbox offers, copies addresses,
//! data and control messages between the application's memory and sentry buffers, and
//! calls the socket. No application pointer ever reaches the host.
//!
//! socket.rs routes here every call on a host-backed socket; options are in sockopt.rs and
//! the interface ioctls in ifioctl.rs.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, OnceLock};

use fs::hostinet::HostSocket;
use fs::vfs::OpenFile;

use super::fd::fd_limit;
use super::socket::{
    check_writable, gather, gather_into, iov_total, nonblocking, read_iovecs, read_msg_name,
    read_msghdr, read_sockaddr, scatter, write_sockaddr, CHUNK, CMSGHDR_SIZE, CONTROL_MAX,
    MAX_RW_COUNT,
};
use crate::errno::{Errno, SysResult};
use crate::task::TaskState;

/// Families Linux knows (NPROTO) and SOCK_MAX.
const NPROTO: i32 = 46;
const SOCK_MAX: i32 = 11;
/// The largest datagram an IP socket can send (a 16-bit length, headers aside): longer
/// ones are EMSGSIZE before their bytes are looked at.
const MAX_DATAGRAM: usize = 65535;
/// The largest netlink request copied (Linux refuses more than the send buffer).
const MAX_NETLINK: usize = 1 << 20;

fn err(e: i32) -> Errno {
    Errno(e)
}

/// The host-backed socket behind `file`.
pub(super) fn host(file: &OpenFile) -> Option<&HostSocket> {
    file.special_desc().and_then(|d| d.host_socket())
}

fn sock(file: &OpenFile) -> Result<&HostSocket, Errno> {
    host(file).ok_or(err(libc::ENOTSOCK))
}

/// The open file at `fd` when it is a host-backed socket.
pub(super) fn host_at(t: &TaskState, fd: u64) -> Option<Arc<OpenFile>> {
    t.fds.get(fd).ok().filter(|f| host(f).is_some())
}

/// Calls on a network socket the ring poller may serve when they complete without waiting
/// ([`completes_at_once`]): a ring round trip instead of a vCPU exit to the task's thread.
pub(super) fn poller_candidate(nr: u64) -> bool {
    [
        libc::SYS_read,
        libc::SYS_write,
        libc::SYS_sendto,
        libc::SYS_recvfrom,
        libc::SYS_recvmsg,
        libc::SYS_accept,
        libc::SYS_accept4,
        libc::SYS_connect,
    ]
    .contains(&(nr as i64))
}

/// Whether `fd` names a host stream socket that a connect(2) would wait on (not
/// O_NONBLOCK): such a connect may wait on the ring (`ring_wait`). On loopback the
/// handshake is done within the host's connect (softirq on the way out), so the retry finds
/// it complete: the second connect answers at once, with no exit to the task's thread.
pub(super) fn connect_may_wait(t: &TaskState, fd: u64) -> bool {
    host_at(t, fd).is_some_and(|f| !nonblocking(&f) && host(&f).is_some_and(|s| s.is_stream()))
}

/// Stream sends at most this long go to the poller when the socket is writable: a host
/// socket that says POLLOUT has at least a third of its send buffer free, which takes them
/// whole. (Should it take only part, the rest would be a short write: the poller must not
/// wait after changing something.)
const POLLER_SEND_MAX: u64 = 1024;

/// The length and flags of call `nr` (a [`poller_candidate`]); None for recvmsg's length,
/// which is in the message header.
fn len_and_flags(nr: u64, args: [u64; 6]) -> (Option<u64>, i32) {
    match nr as i64 {
        libc::SYS_read | libc::SYS_write => (Some(args[2]), 0),
        libc::SYS_recvmsg => (None, args[2] as i32),
        libc::SYS_accept => (None, 0),
        libc::SYS_accept4 => (None, args[3] as i32),
        _ => (Some(args[2]), args[3] as i32),
    }
}

/// Whether call `nr` with `args` on `s` will complete without waiting: any call that may
/// not wait (O_NONBLOCK, MSG_DONTWAIT), a receive or accept with something to take (with
/// MSG_WAITALL on a stream: all of it), a datagram or short stream send with room. If
/// another thread gets there first, the call still doesn't wait on the poller: it is
/// declined before anything changed ([`fs::waiter::WOULD_SLEEP`]) and served again on the
/// task's thread.
pub(super) fn completes_at_once(file: &OpenFile, nr: u64, args: [u64; 6]) -> bool {
    use fs::waiter::{POLLERR, POLLHUP, POLLIN, POLLOUT};
    use fs::FileDescription;
    let Some(s) = host(file) else {
        return false;
    };
    // connect(2) has no flags: only O_NONBLOCK decides whether it waits (a blocking one may
    // still wait on the ring: `ring_wait`).
    if nr as i64 == libc::SYS_connect {
        return nonblocking(file);
    }
    let (len, flags) = len_and_flags(nr, args);
    let accepting = matches!(nr as i64, libc::SYS_accept | libc::SYS_accept4);
    // accept4's flags are SOCK_*, not MSG_*: only O_NONBLOCK decides whether it waits.
    if nonblocking(file) || (!accepting && flags & libc::MSG_DONTWAIT != 0) {
        return true;
    }
    match nr as i64 {
        libc::SYS_read | libc::SYS_recvfrom | libc::SYS_recvmsg
            if flags & libc::MSG_WAITALL != 0 && s.is_stream() =>
        {
            // MSG_PEEK|MSG_WAITALL waits for new data even with some queued; recvmsg's
            // length would need its header read first.
            match len {
                Some(len) if flags & libc::MSG_PEEK == 0 => {
                    s.whole_receive_ready(len.min(super::socket::CHUNK as u64) as usize)
                }
                _ => false,
            }
        }
        libc::SYS_read | libc::SYS_recvfrom | libc::SYS_recvmsg => {
            s.readiness(POLLIN | POLLERR | POLLHUP) != 0
        }
        libc::SYS_accept | libc::SYS_accept4 => s.readiness(POLLIN | POLLERR | POLLHUP) != 0,
        _ => {
            let ready = s.readiness(POLLOUT | POLLERR | POLLHUP);
            ready == POLLOUT && (!s.is_stream() || len.unwrap_or(0) <= POLLER_SEND_MAX)
        }
    }
}

/// Logs a refused kind of socket once, at debug level.
fn refuse(what: String, e: i32) -> Errno {
    static SEEN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    let mut seen = SEEN
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if seen.insert(what.clone()) {
        tracing::debug!("socket: {what} refused (errno {e})");
    }
    err(e)
}

/// Whether `(family, type, protocol)` is a kind of socket the sandbox offers, with Linux's
/// errno when not: TCP and UDP over IPv4 and IPv6, ICMP datagram ("ping") sockets where the
/// namespace's ping_group_range allows them (the host says), and NETLINK_ROUTE.
fn check_kind(domain: i32, ty: i32, protocol: i32) -> Result<(), Errno> {
    let what = || format!("socket({domain}, {ty}, {protocol})");
    match domain {
        libc::AF_INET | libc::AF_INET6 => match ty {
            libc::SOCK_STREAM if matches!(protocol, 0 | libc::IPPROTO_TCP) => Ok(()),
            libc::SOCK_DGRAM if matches!(protocol, 0 | libc::IPPROTO_UDP) => Ok(()),
            libc::SOCK_DGRAM
                if (domain == libc::AF_INET && protocol == libc::IPPROTO_ICMP)
                    || (domain == libc::AF_INET6 && protocol == libc::IPPROTO_ICMPV6) =>
            {
                Ok(())
            }
            libc::SOCK_STREAM | libc::SOCK_DGRAM => Err(refuse(what(), libc::EPROTONOSUPPORT)),
            // Raw sockets need CAP_NET_RAW on the host, which the sandbox never has.
            libc::SOCK_RAW => Err(refuse(what(), libc::EPERM)),
            _ => Err(refuse(what(), libc::ESOCKTNOSUPPORT)),
        },
        libc::AF_NETLINK => match ty {
            libc::SOCK_RAW | libc::SOCK_DGRAM if protocol == libc::NETLINK_ROUTE => Ok(()),
            libc::SOCK_RAW | libc::SOCK_DGRAM => Err(refuse(what(), libc::EPROTONOSUPPORT)),
            _ => Err(refuse(what(), libc::ESOCKTNOSUPPORT)),
        },
        _ => Err(refuse(what(), libc::EAFNOSUPPORT)),
    }
}

/// socket(2) for every family but AF_UNIX, with Linux's checks in Linux's order.
pub(super) fn socket(t: &mut TaskState, a: [u64; 6]) -> SysResult {
    let (domain, ty, protocol) = (a[0] as i32, a[1] as i32, a[2] as i32);
    let flags = ty & !0xf;
    if flags & !(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let ty = ty & 0xf;
    if !(0..NPROTO).contains(&domain) {
        return Err(err(libc::EAFNOSUPPORT));
    }
    if ty >= SOCK_MAX {
        return Err(Errno::EINVAL);
    }
    check_kind(domain, ty, protocol)?;
    if ty == libc::SOCK_DGRAM && matches!(protocol, libc::IPPROTO_ICMP | libc::IPPROTO_ICMPV6) {
        check_ping_group(t)?;
    }
    if t.fds.lowest_free(0) as u64 >= fd_limit(t) {
        return Err(Errno::EMFILE);
    }
    let s = HostSocket::new(domain, ty, protocol).map_err(err)?;
    Ok(install(t, s, flags)? as u64)
}

/// ICMP datagram sockets: one of the caller's groups must be in the namespace's
/// net.ipv4.ping_group_range (Linux's ping_init_sock), judged on the guest's groups, not
/// the sentry's.
fn check_ping_group(t: &TaskState) -> Result<(), Errno> {
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range").unwrap_or_default();
    let mut it = range.split_whitespace().map(|v| v.parse::<u32>().ok());
    let (Some(Some(lo)), Some(Some(hi))) = (it.next(), it.next()) else {
        return Err(err(libc::EACCES));
    };
    let inside = |g: u32| lo <= g && g <= hi;
    if inside(t.creds.egid) || t.creds.groups.iter().any(|&g| inside(g)) {
        Ok(())
    } else {
        Err(err(libc::EACCES))
    }
}

/// socketpair(2) of these families: Linux's EOPNOTSUPP for a kind that exists.
pub(super) fn socketpair(a: [u64; 6]) -> SysResult {
    let ty = (a[1] as i32) & 0xf;
    check_kind(a[0] as i32, ty, a[2] as i32)?;
    Err(Errno::EOPNOTSUPP)
}

fn install(t: &TaskState, s: HostSocket, flags: i32) -> Result<i32, Errno> {
    let status = libc::O_RDWR as u32 | (flags & libc::SOCK_NONBLOCK) as u32;
    let file = OpenFile::special(None, None, Arc::new(s), status);
    t.fds
        .alloc(0, file, flags & libc::SOCK_CLOEXEC != 0, fd_limit(t))
}

/// A netlink destination must be the kernel (port 0, no groups): the sandbox talks to
/// rtnetlink, never to other processes of the namespace.
fn check_netlink_peer(s: &HostSocket, addr: &[u8]) -> Result<(), Errno> {
    if s.family() != libc::AF_NETLINK || addr.len() < 12 {
        return Ok(());
    }
    let pid = u32::from_ne_bytes([addr[4], addr[5], addr[6], addr[7]]);
    let groups = u32::from_ne_bytes([addr[8], addr[9], addr[10], addr[11]]);
    if pid != 0 || groups != 0 {
        return Err(Errno::EPERM);
    }
    Ok(())
}

/// net.ipv4.ip_unprivileged_port_start of the sentry's namespace (1024 if unreadable).
fn unprivileged_port_start() -> u16 {
    static START: OnceLock<u16> = OnceLock::new();
    *START.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(1024)
    })
}

/// The port of an IP address of the socket's own family (None for anything else, which
/// the host judges).
fn ip_port(s: &HostSocket, addr: &[u8]) -> Option<u16> {
    let family = u16::from_ne_bytes([*addr.first()?, *addr.get(1)?]) as i32;
    let min = match s.family() {
        libc::AF_INET => 16,
        libc::AF_INET6 => 24,
        _ => return None,
    };
    (family == s.family() && addr.len() >= min).then(|| u16::from_be_bytes([addr[2], addr[3]]))
}

pub(super) fn bind(t: &mut TaskState, file: &OpenFile, a: [u64; 6]) -> SysResult {
    let s = sock(file)?;
    let raw = read_sockaddr(t, a[1], a[2])?;
    // The host socket is the sentry's, which may be privileged: the guest's own right to a
    // low port is checked here (Linux: CAP_NET_BIND_SERVICE).
    if let Some(port) = ip_port(s, &raw) {
        if port != 0
            && port < unprivileged_port_start()
            && !crate::caps::capable(&t.creds, crate::caps::Cap::NetBindService)
        {
            return Err(Errno(libc::EACCES));
        }
    }
    s.bind(&raw).map_err(err)?;
    Ok(0)
}

pub(super) fn listen(file: &OpenFile, a: [u64; 6]) -> SysResult {
    sock(file)?.listen(a[1] as i32).map_err(err)?;
    Ok(0)
}

pub(super) fn accept(
    t: &mut TaskState,
    file: &OpenFile,
    addr: u64,
    len_ptr: u64,
    flags: i32,
) -> SysResult {
    let s = sock(file)?;
    if t.fds.lowest_free(0) as u64 >= fd_limit(t) {
        return Err(Errno::EMFILE);
    }
    let (new, peer) = s.accept(nonblocking(file)).map_err(err)?;
    if addr != 0 {
        write_sockaddr(t, &peer, addr, len_ptr)?;
    }
    Ok(install(t, new, flags)? as u64)
}

pub(super) fn connect(t: &mut TaskState, file: &OpenFile, a: [u64; 6]) -> SysResult {
    let s = sock(file)?;
    let raw = read_sockaddr(t, a[1], a[2])?;
    check_netlink_peer(s, &raw)?;
    s.connect(&raw, nonblocking(file)).map_err(err)?;
    Ok(0)
}

pub(super) fn getname(t: &mut TaskState, file: &OpenFile, a: [u64; 6], peer: bool) -> SysResult {
    let s = sock(file)?;
    let addr = if peer { s.peer_addr() } else { s.local_addr() }.map_err(err)?;
    write_sockaddr(t, &addr, a[1], a[2])?;
    Ok(0)
}

pub(super) fn shutdown(file: &OpenFile, a: [u64; 6]) -> SysResult {
    sock(file)?.shutdown(a[1] as i32).map_err(err)?;
    Ok(0)
}

// --- sending -----------------------------------------------------------------------------

/// Control messages a sandbox may send on an IP socket: (level, type). Anything else at
/// these levels, and any SOL_SOCKET message, is EINVAL; other levels pass (the host
/// ignores them, as Linux does).
const SEND_CMSGS: &[(i32, i32)] = &[
    (libc::IPPROTO_IP, libc::IP_PKTINFO),
    (libc::IPPROTO_IP, libc::IP_TOS),
    (libc::IPPROTO_IP, libc::IP_TTL),
    (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO),
    (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT),
    (libc::IPPROTO_IPV6, libc::IPV6_TCLASS),
];

fn check_control(s: &HostSocket, ctl: &[u8]) -> Result<(), Errno> {
    if s.family() == libc::AF_NETLINK {
        return Err(Errno::EINVAL);
    }
    let mut off = 0usize;
    while off + CMSGHDR_SIZE <= ctl.len() {
        let h = &ctl[off..off + CMSGHDR_SIZE];
        let len = u64::from_ne_bytes(h[0..8].try_into().unwrap_or_default());
        let level = i32::from_ne_bytes(h[8..12].try_into().unwrap_or_default());
        let ty = i32::from_ne_bytes(h[12..16].try_into().unwrap_or_default());
        if len < CMSGHDR_SIZE as u64 || len > (ctl.len() - off) as u64 {
            return Err(Errno::EINVAL);
        }
        let known = level == libc::IPPROTO_IP || level == libc::IPPROTO_IPV6;
        if level == libc::SOL_SOCKET || (known && !SEND_CMSGS.contains(&(level, ty))) {
            return Err(Errno::EINVAL);
        }
        off += (len as usize).div_ceil(8) * 8;
    }
    Ok(())
}

/// The common part of sendto, sendmsg and sendmmsg for host sockets.
fn send(
    t: &mut TaskState,
    file: &OpenFile,
    iovs: &[(u64, usize)],
    flags: i32,
    to: Option<Vec<u8>>,
    ctl: Vec<u8>,
) -> SysResult {
    let s = sock(file)?;
    if let Some(to) = &to {
        check_netlink_peer(s, to)?;
    }
    let rights = network_rights(t);
    let nonblock = nonblocking(file);
    let len = iov_total(iovs);
    let result = if s.is_stream() {
        let mut sent = 0usize;
        loop {
            let want = (len - sent).min(CHUNK);
            let c = if sent == 0 { &ctl[..] } else { &[] };
            let r = super::scratch::with(want, |buf| {
                gather_into(t, iovs, sent, buf)?;
                Ok(s.send_as(rights, buf, to.as_deref(), c, flags, nonblock))
            });
            let r = match r {
                Ok(r) => r,
                Err(e) if sent == 0 => return Err(e),
                Err(_) => break Ok(sent),
            };
            match r {
                Ok(n) => {
                    sent += n;
                    if n < want || sent >= len {
                        break Ok(sent);
                    }
                }
                Err(_) if sent > 0 => break Ok(sent),
                Err(e) => break Err(e),
            }
        }
    } else {
        let limit = if s.family() == libc::AF_NETLINK {
            MAX_NETLINK
        } else {
            MAX_DATAGRAM
        };
        if len > limit {
            return Err(err(libc::EMSGSIZE));
        }
        let data = gather(t, iovs, 0, len)?;
        s.send_as(rights, &data, to.as_deref(), &ctl, flags, nonblock)
    };
    match result {
        Ok(n) => Ok(n as u64),
        Err(e) => {
            if e == libc::EPIPE && flags & libc::MSG_NOSIGNAL == 0 {
                super::signal::raise_sigpipe(t);
            }
            Err(err(e))
        }
    }
}

pub(super) fn sendto(t: &mut TaskState, file: &OpenFile, a: [u64; 6]) -> SysResult {
    let len = (a[2] as usize).min(MAX_RW_COUNT);
    let to = if a[4] != 0 && a[5] as u32 != 0 {
        Some(read_sockaddr(t, a[4], a[5])?)
    } else {
        None
    };
    send(t, file, &[(a[1], len)], a[3] as i32, to, Vec::new())
}

pub(super) fn sendmsg_one(
    t: &mut TaskState,
    file: &OpenFile,
    msg_addr: u64,
    flags: u64,
) -> SysResult {
    let s = sock(file)?;
    let m = read_msghdr(t, msg_addr)?;
    let to = read_msg_name(t, &m)?;
    let iovs = read_iovecs(t, m.iov, m.iovlen)?;
    if m.controllen > CONTROL_MAX as u64 {
        return Err(err(libc::ENOBUFS));
    }
    let mut ctl = vec![0u8; m.controllen as usize];
    if !ctl.is_empty() {
        t.mm.copy_in(m.control, &mut ctl)?;
        check_control(s, &ctl)?;
    }
    send(t, file, &iovs, flags as i32, to, ctl)
}

// --- receiving ---------------------------------------------------------------------------

pub(super) fn recvfrom(t: &mut TaskState, file: &OpenFile, a: [u64; 6]) -> SysResult {
    let s = sock(file)?;
    let flags = a[3] as i32;
    let len = (a[2] as usize).min(MAX_RW_COUNT).min(CHUNK);
    let iovs = [(a[1], len)];
    // A stream keeps what it could not copy out; Linux drops such a datagram.
    if s.is_stream() {
        check_writable(t, &iovs, len)?;
    }
    let r = super::scratch::with(len, |buf| {
        let r = s
            .recv(buf, flags, nonblocking(file), a[4] != 0, 0)
            .map_err(err)?;
        scatter(t, &iovs, &buf[..r.len.min(len)])?;
        Ok::<_, Errno>(r)
    })?;
    if a[4] != 0 {
        write_sockaddr(t, &r.name, a[4], a[5])?;
    }
    Ok(r.len as u64)
}

pub(super) fn recvmsg_one(
    t: &mut TaskState,
    file: &OpenFile,
    msg_addr: u64,
    flags: u64,
) -> SysResult {
    let s = sock(file)?;
    let flags = flags as i32;
    let m = read_msghdr(t, msg_addr)?;
    let iovs = read_iovecs(t, m.iov, m.iovlen)?;
    let len = iov_total(&iovs).min(CHUNK);
    if s.is_stream() {
        check_writable(t, &iovs, len)?;
    }
    let control_len = if m.control == 0 {
        0
    } else {
        m.controllen.min(CONTROL_MAX as u64) as usize
    };
    if control_len > 0 {
        t.mm.check_range(m.control, control_len, true)?;
    }
    let r = super::scratch::with(len, |buf| {
        let r = s
            .recv(buf, flags, nonblocking(file), m.name != 0, control_len)
            .map_err(err)?;
        scatter(t, &iovs, &buf[..r.len.min(len)])?;
        Ok::<_, Errno>(r)
    })?;
    if m.name != 0 {
        write_sockaddr(t, &r.name, m.name, msg_addr.wrapping_add(8))?;
    }
    if !r.control.is_empty() {
        t.mm.copy_out(m.control, &r.control)?;
    }
    let mut msg_flags = r.flags & !libc::MSG_CMSG_CLOEXEC;
    if r.len > len && !s.is_stream() {
        msg_flags |= libc::MSG_TRUNC;
    }
    t.mm.copy_out(msg_addr.wrapping_add(48), &msg_flags.to_le_bytes())?;
    t.mm.copy_out(
        msg_addr.wrapping_add(40),
        &(r.control.len() as u64).to_le_bytes(),
    )?;
    Ok(r.len as u64)
}

/// What the caller's NETLINK_ROUTE requests may do: change the network only where the
/// runtime allows it (the sandbox's own namespace) and the caller holds CAP_NET_ADMIN.
pub(super) fn network_rights(t: &TaskState) -> fs::hostinet::netlink::Rights {
    use fs::hostinet::netlink::Rights;
    if fs::hostinet::network_changes_allowed()
        && crate::caps::capable(&t.creds, crate::caps::Cap::NetAdmin)
    {
        Rights::Change
    } else {
        Rights::ReadOnly
    }
}
