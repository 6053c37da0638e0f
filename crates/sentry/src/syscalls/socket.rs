//! Sockets: socket, socketpair, bind, listen, accept, accept4, connect, getsockname,
//! getpeername, sendto, recvfrom, sendmsg, recvmsg, sendmmsg, recvmmsg, shutdown, getsockopt
//! and setsockopt. AF_UNIX only; the sockets themselves are [`fs::unix`].
//!
//! This file owns the sandbox's AF_UNIX namespace: the abstract names, and which socket
//! listens on which file system node. Binding to a path creates a socket inode through the
//! parent directory's `Inode::create`; the registry maps the node's (dev, ino) to the bound
//! socket, so that connect resolves the path like any other (symlinks, permissions: write
//! access to the node is needed) and then looks the node up. A name whose socket has closed
//! is free again (abstract) or refuses connections (path: the node stays, as on Linux).
//! There is one namespace per runsc process, which runs one sandbox.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use fs::unix::{Received, RecvOpts, SendOpts, SockType, Ucred, UnixAddr, UnixSocket};
use fs::vfs::acl;
use fs::vfs::{perm, FileType, NewNode, OpenFile, Owner, ResolveFlags};
use platform::UserRegs;

use super::fd::{fd_limit, read_only};
use super::inet;
use super::path::{fs_creds, resolve_at, resolve_parent_at};
use crate::errno::{Errno, SysResult};
use crate::task::TaskState;

/// Linux caps a single transfer at this many bytes.
pub(super) const MAX_RW_COUNT: usize = 0x7fff_f000;
/// Bytes of a stream send copied from the application at a time.
pub(super) const CHUNK: usize = 1 << 20;
/// UIO_MAXIOV.
const IOV_MAX: u64 = 1024;
/// `struct sockaddr_storage`: longer addresses are refused (or clamped in msghdr).
pub(super) const SOCKADDR_MAX: usize = 128;
/// Control buffers larger than this are refused with ENOBUFS (Linux's net.core.optmem_max).
pub(super) const CONTROL_MAX: usize = 128 << 10;
/// SOCK_TYPE_MASK, and the families Linux knows (NPROTO).
const SOCK_TYPE_MASK: i32 = 0xf;
const NPROTO: i32 = 46;
/// SOCK_MAX: type values at or above it are EINVAL rather than ESOCKTNOSUPPORT.
const SOCK_MAX: i32 = 11;
/// The tick socket timeouts are rounded up to, as with a 250 Hz kernel.
const JIFFY_US: i64 = 4000;
/// Sizes of `struct msghdr`, `struct mmsghdr` and `struct cmsghdr`.
pub(super) const MSGHDR_SIZE: usize = 56;
const MMSGHDR_SIZE: u64 = 64;
pub(super) const CMSGHDR_SIZE: usize = 16;

fn err(e: i32) -> Errno {
    Errno(e)
}

// --- the namespace -----------------------------------------------------------------------

#[derive(Clone, PartialEq, Eq, Hash)]
enum BindKey {
    Abstract(Vec<u8>),
    /// A socket node: its (dev, ino).
    Node(u64, u64),
}

struct Registry {
    names: HashMap<BindKey, u64>,
    /// Entries of closed sockets are pruned when the map reaches this size.
    prune_at: usize,
    next_auto: u64,
}

fn registry() -> MutexGuard<'static, Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| {
            Mutex::new(Registry {
                names: HashMap::new(),
                prune_at: 64,
                next_auto: crate::kernel::random_u64(),
            })
        })
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

impl Registry {
    /// The open socket bound to `key`.
    fn get(&self, key: &BindKey) -> Option<u64> {
        self.names
            .get(key)
            .copied()
            .filter(|&id| fs::unix::socket_exists(id))
    }

    fn insert(&mut self, key: BindKey, id: u64) {
        if self.names.len() >= self.prune_at {
            self.names.retain(|_, id| fs::unix::socket_exists(*id));
            self.prune_at = (self.names.len() * 2).max(64);
        }
        self.names.insert(key, id);
    }
}

// --- helpers -----------------------------------------------------------------------------

/// The socket open at `fd`: EBADF, or ENOTSOCK for another kind of file.
fn socket_file(t: &TaskState, fd: u64) -> Result<Arc<OpenFile>, Errno> {
    let file = t.fds.get(fd)?;
    if inet::host(&file).is_none() {
        unix(&file)?;
    }
    Ok(file)
}

fn unix(file: &OpenFile) -> Result<&UnixSocket, Errno> {
    file.special_desc()
        .and_then(|d| d.unix_socket())
        .ok_or(err(libc::ENOTSOCK))
}

pub(super) fn nonblocking(file: &OpenFile) -> bool {
    file.flags() & libc::O_NONBLOCK as u32 != 0
}

/// What SCM_CREDENTIALS reports of the caller: its pid and real ids.
fn msg_creds(t: &TaskState) -> Ucred {
    Ucred {
        pid: t.pid,
        uid: t.creds.uid,
        gid: t.creds.gid,
    }
}

/// What SO_PEERCRED reports of the caller: its pid and effective ids.
fn peer_creds(t: &TaskState) -> Ucred {
    Ucred {
        pid: t.pid,
        uid: t.creds.euid,
        gid: t.creds.egid,
    }
}

/// Credentials as the reader's namespaces name them (the overflow ids when unmapped, pid 0
/// for a process its pid namespace doesn't see), as SCM_CREDENTIALS and SO_PEERCRED show
/// them (Linux's cred_to_ucred).
fn seen_ucred(t: &TaskState, c: Ucred) -> Ucred {
    Ucred {
        pid: crate::namespaces::pid_view(&t.process, c.pid),
        // -1: no peer (an unconnected socket's SO_PEERCRED), shown as is.
        uid: match c.uid {
            u32::MAX => u32::MAX,
            uid => t.creds.user_ns.uid_seen(uid),
        },
        gid: match c.gid {
            u32::MAX => u32::MAX,
            gid => t.creds.user_ns.gid_seen(gid),
        },
    }
}

/// Reads a socket address argument (EINVAL past sockaddr_storage).
pub(super) fn read_sockaddr(t: &mut TaskState, addr: u64, len: u64) -> Result<Vec<u8>, Errno> {
    let len = len as u32 as i32;
    if len < 0 || len as usize > SOCKADDR_MAX {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; len as usize];
    if len > 0 {
        t.mm.copy_in(addr, &mut raw)?;
    }
    Ok(raw)
}

/// Linux's move_addr_to_user: copies as much of `addr` as `*len_ptr` allows, and stores
/// the full length there.
pub(super) fn write_sockaddr(
    t: &mut TaskState,
    addr: &[u8],
    uaddr: u64,
    len_ptr: u64,
) -> Result<(), Errno> {
    let ulen = t.mm.read_u32(len_ptr)? as i32;
    if ulen < 0 {
        return Err(Errno::EINVAL);
    }
    let n = (ulen as usize).min(addr.len());
    if n > 0 {
        t.mm.copy_out(uaddr, &addr[..n])?;
    }
    t.mm.copy_out(len_ptr, &(addr.len() as u32).to_le_bytes())
}

fn sockaddr_of(addr: Option<&UnixAddr>) -> Vec<u8> {
    UnixAddr::to_sockaddr(addr)
}

/// Installs a new socket file; `flags` are SOCK_NONBLOCK / SOCK_CLOEXEC.
fn install(t: &TaskState, sock: Arc<UnixSocket>, flags: i32) -> Result<i32, Errno> {
    let status = libc::O_RDWR as u32 | (flags & libc::SOCK_NONBLOCK) as u32;
    let file = OpenFile::special(None, None, sock, status);
    t.fds
        .alloc(0, file, flags & libc::SOCK_CLOEXEC != 0, fd_limit(t))
}

/// The checks socket(2) and socketpair(2) share: the type's flags, the family, the type
/// and the protocol, in Linux's order.
fn socket_type(domain: u64, ty: u64, protocol: u64) -> Result<(SockType, i32), Errno> {
    let (domain, ty, protocol) = (domain as i32, ty as i32, protocol as i32);
    let flags = ty & !SOCK_TYPE_MASK;
    if flags & !(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let ty = ty & SOCK_TYPE_MASK;
    if !(0..NPROTO).contains(&domain) {
        return Err(err(libc::EAFNOSUPPORT));
    }
    if ty >= SOCK_MAX {
        return Err(Errno::EINVAL);
    }
    if domain != libc::AF_UNIX {
        return Err(err(libc::EAFNOSUPPORT));
    }
    if protocol != 0 && protocol != libc::PF_UNIX {
        return Err(err(libc::EPROTONOSUPPORT));
    }
    Ok((SockType::from_raw(ty).map_err(err)?, flags))
}

/// Gives an unbound socket a free abstract name of five hex digits. A bound socket keeps
/// its name.
fn autobind(sock: &UnixSocket) -> Result<(), Errno> {
    let mut reg = registry();
    if sock.local_addr().is_some() {
        return Ok(());
    }
    for _ in 0..=0xfffff {
        let n = reg.next_auto & 0xfffff;
        reg.next_auto = reg.next_auto.wrapping_add(1);
        let name = format!("{n:05x}").into_bytes();
        let key = BindKey::Abstract(name.clone());
        if reg.get(&key).is_some() {
            continue;
        }
        sock.bind(UnixAddr::Abstract(name)).map_err(err)?;
        reg.insert(key, sock.id());
        return Ok(());
    }
    Err(err(libc::EADDRINUSE))
}

fn bind_abstract(sock: &UnixSocket, name: Vec<u8>) -> Result<(), Errno> {
    let mut reg = registry();
    if sock.local_addr().is_some() {
        return Err(Errno::EINVAL);
    }
    let key = BindKey::Abstract(name.clone());
    if reg.get(&key).is_some() {
        return Err(err(libc::EADDRINUSE));
    }
    sock.bind(UnixAddr::Abstract(name)).map_err(err)?;
    reg.insert(key, sock.id());
    Ok(())
}

/// Creates the socket node `path` (EADDRINUSE if anything is there) and binds to it.
fn bind_path(t: &TaskState, sock: &UnixSocket, path: Vec<u8>) -> Result<(), Errno> {
    let parent = resolve_parent_at(t, libc::AT_FDCWD as u64, &path)?;
    let name = parent.name.clone();
    if name.is_empty() || name == b"." || name == b".." {
        return Err(err(libc::EADDRINUSE));
    }
    match parent.dir.dentry.child(&name) {
        Ok(_) => return Err(err(libc::EADDRINUSE)),
        Err(libc::ENOENT) => {}
        Err(e) => return Err(err(e)),
    }
    if parent.trailing_slash {
        return Err(Errno::ENOENT);
    }
    let creds = fs_creds(t);
    perm::check_inode(
        &**parent.dir.inode(),
        &creds,
        perm::MAY_WRITE | perm::MAY_EXEC,
    )
    .map_err(err)?;
    if read_only(&parent.dir) {
        return Err(Errno::EROFS);
    }
    let owner = Owner {
        uid: creds.uid,
        gid: creds.gid,
    };
    let mut reg = registry();
    let new = acl::inherit(&**parent.dir.inode(), FileType::Socket, 0o777, t.umask);
    let inode = parent
        .dir
        .inode()
        .create(&name, NewNode::Socket, new.mode, owner)
        .map_err(|e| {
            err(if e == libc::EEXIST {
                libc::EADDRINUSE
            } else {
                e
            })
        })?;
    parent.dir.dentry.insert_child(&name, inode.clone());
    super::fd::give_inherited_acls(&new, &*inode);
    let bound = inode
        .stat()
        .map_err(err)
        .and_then(|st| sock.bind(UnixAddr::Path(path)).map_err(err).map(|_| st));
    match bound {
        Ok(st) => {
            reg.insert(BindKey::Node(st.dev, st.ino), sock.id());
            fs::inotify::dir_event(parent.dir.inode(), fs::inotify::IN_CREATE, &name, false);
            Ok(())
        }
        Err(e) => {
            // Already bound: the node goes again, as on Linux.
            let _ = parent.dir.inode().unlink(&name, false);
            parent.dir.dentry.remove_child(&name);
            Err(e)
        }
    }
}

/// The socket an address names: ENOENT and friends for a bad path, ECONNREFUSED when
/// nobody is bound there.
fn resolve_target(t: &TaskState, addr: &UnixAddr) -> Result<u64, Errno> {
    match addr {
        UnixAddr::Abstract(name) => registry()
            .get(&BindKey::Abstract(name.clone()))
            .ok_or(err(libc::ECONNREFUSED)),
        UnixAddr::Path(path) => {
            let loc = resolve_at(t, libc::AT_FDCWD as u64, path, ResolveFlags::follow())?;
            let st = loc.inode().stat().map_err(err)?;
            perm::check(&**loc.inode(), &st, &fs_creds(t), perm::MAY_WRITE).map_err(err)?;
            if loc.inode().file_type() != FileType::Socket {
                return Err(err(libc::ECONNREFUSED));
            }
            registry()
                .get(&BindKey::Node(st.dev, st.ino))
                .ok_or(err(libc::ECONNREFUSED))
        }
    }
}

/// Reads an iovec array as sendmsg/recvmsg do (EMSGSIZE past UIO_MAXIOV), with the total
/// clamped to MAX_RW_COUNT.
pub(super) fn read_iovecs(
    t: &mut TaskState,
    addr: u64,
    count: u64,
) -> Result<Vec<(u64, usize)>, Errno> {
    if count > IOV_MAX {
        return Err(err(libc::EMSGSIZE));
    }
    let mut raw = vec![0u8; count as usize * 16];
    t.mm.copy_in(addr, &mut raw)?;
    let mut total = 0usize;
    let mut out = Vec::with_capacity(count as usize);
    for c in raw.chunks_exact(16) {
        let base = u64::from_le_bytes(c[0..8].try_into().unwrap_or_default());
        let len = u64::from_le_bytes(c[8..16].try_into().unwrap_or_default());
        if len > i64::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        let len = (len as usize).min(MAX_RW_COUNT - total);
        total += len;
        out.push((base, len));
    }
    Ok(out)
}

pub(super) fn iov_total(iovs: &[(u64, usize)]) -> usize {
    iovs.iter().map(|&(_, l)| l).sum()
}

/// Copies bytes [skip, skip + max) of the iovecs' concatenation from the application.
pub(super) fn gather(
    t: &mut TaskState,
    iovs: &[(u64, usize)],
    skip: usize,
    max: usize,
) -> Result<Vec<u8>, Errno> {
    let mut out = Vec::with_capacity(max.min(CHUNK));
    let mut pos = 0usize;
    for &(base, len) in iovs {
        if out.len() >= max {
            break;
        }
        let (start, end) = (pos, pos + len);
        pos = end;
        if end <= skip {
            continue;
        }
        let from = skip.max(start) - start;
        let take = (len - from).min(max - out.len());
        let at = out.len();
        out.resize(at + take, 0);
        t.mm.copy_in(base.wrapping_add(from as u64), &mut out[at..])?;
    }
    Ok(out)
}

/// Copies bytes [skip, skip + buf.len()) of the iovecs' concatenation from the
/// application into `buf`, which the iovecs must cover (the caller bounds it by their
/// total).
pub(super) fn gather_into(
    t: &mut TaskState,
    iovs: &[(u64, usize)],
    skip: usize,
    buf: &mut [u8],
) -> Result<(), Errno> {
    let mut pos = 0usize;
    let mut at = 0usize;
    for &(base, len) in iovs {
        if at >= buf.len() {
            break;
        }
        let (start, end) = (pos, pos + len);
        pos = end;
        if end <= skip {
            continue;
        }
        let from = skip.max(start) - start;
        let take = (len - from).min(buf.len() - at);
        t.mm.copy_in(base.wrapping_add(from as u64), &mut buf[at..at + take])?;
        at += take;
    }
    if at < buf.len() {
        // Never reached by the callers; a short cover would leave stale bytes to send.
        return Err(Errno::EFAULT);
    }
    Ok(())
}

/// Copies `data` into the iovecs.
pub(super) fn scatter(t: &mut TaskState, iovs: &[(u64, usize)], data: &[u8]) -> Result<(), Errno> {
    let mut off = 0;
    for &(base, len) in iovs {
        if off >= data.len() {
            break;
        }
        let take = len.min(data.len() - off);
        t.mm.copy_out(base, &data[off..off + take])?;
        off += take;
    }
    Ok(())
}

/// Checks that the iovecs can take `n` bytes before anything is consumed.
pub(super) fn check_writable(
    t: &TaskState,
    iovs: &[(u64, usize)],
    mut n: usize,
) -> Result<(), Errno> {
    for &(base, len) in iovs {
        if n == 0 {
            break;
        }
        let take = len.min(n);
        t.mm.check_range(base, take, true)?;
        n -= take;
    }
    Ok(())
}

// --- creating, naming, connecting --------------------------------------------------------

pub fn socket(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    if a[0] as i32 != libc::AF_UNIX {
        return inet::socket(t, a);
    }
    let (stype, flags) = socket_type(a[0], a[1], a[2])?;
    if t.fds.lowest_free(0) as u64 >= fd_limit(t) {
        return Err(Errno::EMFILE);
    }
    let sock = UnixSocket::new(stype, msg_creds(t));
    Ok(install(t, sock, flags)? as u64)
}

pub fn socketpair(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    if matches!(
        a[0] as i32,
        libc::AF_INET | libc::AF_INET6 | libc::AF_NETLINK
    ) {
        return inet::socketpair(a);
    }
    let (stype, flags) = socket_type(a[0], a[1], a[2])?;
    t.mm.check_range(a[3], 8, true)?;
    let (x, y) = UnixSocket::pair(stype, msg_creds(t), peer_creds(t));
    let fx = install(t, x, flags)?;
    let fy = match install(t, y, flags) {
        Ok(fd) => fd,
        Err(e) => {
            let _ = t.fds.remove(fx as u64);
            return Err(e);
        }
    };
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&fx.to_le_bytes());
    out[4..].copy_from_slice(&fy.to_le_bytes());
    if let Err(e) = t.mm.copy_out(a[3], &out) {
        let _ = t.fds.remove(fx as u64);
        let _ = t.fds.remove(fy as u64);
        return Err(e);
    }
    Ok(0)
}

pub fn bind(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = socket_file(t, a[0])?;
    if inet::host(&file).is_some() {
        return inet::bind(t, &file, a);
    }
    let sock = unix(&file)?;
    let raw = read_sockaddr(t, a[1], a[2])?;
    match UnixAddr::parse(&raw, true).map_err(err)? {
        None => autobind(sock)?,
        Some(UnixAddr::Abstract(name)) => bind_abstract(sock, name)?,
        Some(UnixAddr::Path(path)) => bind_path(t, sock, path)?,
    }
    Ok(0)
}

pub fn listen(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = socket_file(t, a[0])?;
    if inet::host(&file).is_some() {
        return inet::listen(&file, a);
    }
    unix(&file)?
        .listen(a[1] as i32, peer_creds(t))
        .map_err(err)?;
    Ok(0)
}

fn do_accept(t: &mut TaskState, fd: u64, addr: u64, len_ptr: u64, flags: u64) -> SysResult {
    let flags = flags as i32;
    if flags & !(libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let file = socket_file(t, fd)?;
    if inet::host(&file).is_some() {
        return inet::accept(t, &file, addr, len_ptr, flags);
    }
    let sock = unix(&file)?;
    // Linux reserves the descriptor first: a full table fails before a connection is taken.
    if t.fds.lowest_free(0) as u64 >= fd_limit(t) {
        return Err(Errno::EMFILE);
    }
    let new = sock.accept(msg_creds(t), nonblocking(&file)).map_err(err)?;
    if addr != 0 {
        let peer = sockaddr_of(new.peer_addr().ok().flatten().as_ref());
        write_sockaddr(t, &peer, addr, len_ptr)?;
    }
    Ok(install(t, new, flags)? as u64)
}

pub fn accept(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    do_accept(t, a[0], a[1], a[2], 0)
}

pub fn accept4(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    do_accept(t, a[0], a[1], a[2], a[3])
}

pub fn connect(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = socket_file(t, a[0])?;
    if inet::host(&file).is_some() {
        return inet::connect(t, &file, a);
    }
    let sock = unix(&file)?;
    let raw = read_sockaddr(t, a[1], a[2])?;
    if sock.sock_type() == SockType::Dgram {
        if raw.len() < 2 {
            return Err(Errno::EINVAL);
        }
        if u16::from_le_bytes([raw[0], raw[1]]) == libc::AF_UNSPEC as u16 {
            sock.disconnect().map_err(err)?;
            return Ok(0);
        }
    }
    let addr = UnixAddr::parse(&raw, false)
        .map_err(err)?
        .ok_or(Errno::EINVAL)?;
    if sock.passcred() {
        autobind(sock)?;
    }
    let target = resolve_target(t, &addr).map_err(|e| e.0);
    sock.connect(target, peer_creds(t), nonblocking(&file))
        .map_err(err)?;
    Ok(0)
}

pub fn getsockname(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = socket_file(t, a[0])?;
    if inet::host(&file).is_some() {
        return inet::getname(t, &file, a, false);
    }
    let addr = sockaddr_of(unix(&file)?.local_addr().as_ref());
    write_sockaddr(t, &addr, a[1], a[2])?;
    Ok(0)
}

pub fn getpeername(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = socket_file(t, a[0])?;
    if inet::host(&file).is_some() {
        return inet::getname(t, &file, a, true);
    }
    let peer = unix(&file)?.peer_addr().map_err(err)?;
    write_sockaddr(t, &sockaddr_of(peer.as_ref()), a[1], a[2])?;
    Ok(0)
}

pub fn shutdown(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = socket_file(t, a[0])?;
    if inet::host(&file).is_some() {
        return inet::shutdown(&file, a);
    }
    unix(&file)?.shutdown(a[1] as i32).map_err(err)?;
    Ok(0)
}

// --- sending -----------------------------------------------------------------------------

/// What a send carries besides its data.
#[derive(Default)]
struct Control {
    files: Vec<Arc<OpenFile>>,
    creds: Option<Ucred>,
}

/// Parses a sendmsg control buffer: SCM_RIGHTS (the files open at the given descriptors)
/// and SCM_CREDENTIALS (checked against the caller's own), with Linux's errors.
fn parse_control(t: &TaskState, ctl: &[u8]) -> Result<Control, Errno> {
    let mut out = Control::default();
    let mut off = 0usize;
    while off + CMSGHDR_SIZE <= ctl.len() {
        let h = &ctl[off..off + CMSGHDR_SIZE];
        let len = u64::from_le_bytes(h[0..8].try_into().unwrap_or_default());
        let level = i32::from_le_bytes(h[8..12].try_into().unwrap_or_default());
        let ty = i32::from_le_bytes(h[12..16].try_into().unwrap_or_default());
        if len < CMSGHDR_SIZE as u64 || len > (ctl.len() - off) as u64 {
            return Err(Errno::EINVAL);
        }
        let len = len as usize;
        let data = &ctl[off + CMSGHDR_SIZE..off + len];
        if level == libc::SOL_SOCKET {
            match ty {
                libc::SCM_RIGHTS => {
                    let n = data.len() / 4;
                    if n > fs::unix::SCM_MAX_FD || out.files.len() + n > fs::unix::SCM_MAX_FD {
                        return Err(Errno::EINVAL);
                    }
                    for c in data.chunks_exact(4).take(n) {
                        let fd = i32::from_le_bytes(c.try_into().unwrap_or_default());
                        if fd < 0 {
                            return Err(Errno::EBADF);
                        }
                        out.files.push(t.fds.get(fd as u64)?);
                    }
                }
                libc::SCM_CREDENTIALS => {
                    let raw: [u8; 12] = data.try_into().map_err(|_| Errno::EINVAL)?;
                    out.creds = Some(check_creds(t, Ucred::from_bytes(&raw))?);
                }
                _ => return Err(Errno::EINVAL),
            }
        }
        off += len.div_ceil(8) * 8;
    }
    Ok(out)
}

/// Linux's scm_check_creds: one's own pid and ids (real or effective), unless privileged.
fn check_creds(t: &TaskState, c: Ucred) -> Result<Ucred, Errno> {
    use crate::caps::{capable, own_capable, Cap};
    // The ids are the sender's namespace's: kernel ids from here on, EINVAL for one the
    // namespace doesn't map (-1 is checked below, in this order).
    let ns = &t.creds.user_ns;
    let c = Ucred {
        uid: match c.uid {
            u32::MAX => u32::MAX,
            u => ns.make_kuid(u).ok_or(Errno::EINVAL)?,
        },
        gid: match c.gid {
            u32::MAX => u32::MAX,
            g => ns.make_kgid(g).ok_or(Errno::EINVAL)?,
        },
        ..c
    };
    // The pid is the caller's pid namespace's; the message carries the kernel's id, which
    // each receiver sees as its own namespace does.
    let global = crate::namespaces::pid_global(&t.process, c.pid).unwrap_or(0);
    let pid_ok = global == t.pid || capable(&t.creds, Cap::SysAdmin);
    let uid_ok = c.uid == t.creds.uid
        || c.uid == t.creds.euid
        || c.uid == t.creds.suid
        || own_capable(&t.creds, Cap::Setuid);
    let gid_ok = c.gid == t.creds.gid
        || c.gid == t.creds.egid
        || c.gid == t.creds.sgid
        || own_capable(&t.creds, Cap::Setgid);
    if !(pid_ok && uid_ok && gid_ok) {
        return Err(Errno::EPERM);
    }
    if global != t.pid {
        // Only this process exists until fork does.
        return Err(Errno::ESRCH);
    }
    if c.uid == u32::MAX || c.gid == u32::MAX {
        return Err(Errno::EINVAL);
    }
    Ok(Ucred { pid: global, ..c })
}

/// The common part of sendto, sendmsg and sendmmsg: `len` bytes from the iovecs to the
/// socket, with the control data, to `to` (a raw sockaddr) or the peer.
fn do_send(
    t: &mut TaskState,
    file: &OpenFile,
    iovs: &[(u64, usize)],
    flags: u64,
    to: Option<Vec<u8>>,
    ctl: Control,
) -> SysResult {
    let sock = unix(file)?;
    let flags = flags as i32;
    let len = iov_total(iovs);
    if flags & libc::MSG_OOB != 0 {
        return Err(Errno::EOPNOTSUPP);
    }
    let nonblock = nonblocking(file) || flags & libc::MSG_DONTWAIT != 0;
    let stype = sock.sock_type();
    // Streams refuse any address (EISCONN, EOPNOTSUPP) and seqpackets ignore it; datagram
    // addresses must be valid, and the socket they name is found now (a failure to find
    // it is reported where Linux reports it, after the socket's own checks).
    let to = match (to, stype) {
        (None, _) => None,
        (Some(_), SockType::Stream) => Some(Err(libc::EINVAL)),
        (Some(_), SockType::SeqPacket) => None,
        (Some(raw), SockType::Dgram) => {
            let addr = UnixAddr::parse(&raw, false)
                .map_err(err)?
                .ok_or(Errno::EINVAL)?;
            Some(resolve_target(t, &addr).map_err(|e| e.0))
        }
    };
    if stype != SockType::Stream && sock.passcred() {
        autobind(sock)?;
    }
    let mut opts = SendOpts {
        to,
        files: ctl.files,
        creds: msg_creds(t),
        explicit_creds: ctl.creds,
        nonblock,
    };
    if stype != SockType::Stream {
        // Whole or nothing; a datagram longer than the send buffer is refused before its
        // bytes are looked at, so only as many as make that visible are copied.
        let limit = sock.sndbuf();
        let data = if len > limit {
            vec![0u8; limit]
        } else {
            gather(t, iovs, 0, len)?
        };
        return Ok(sock.send(&data, opts).map_err(err)? as u64);
    }
    let mut sent = 0usize;
    loop {
        let want = (len - sent).min(CHUNK);
        let data = match gather(t, iovs, sent, want) {
            Ok(d) => d,
            Err(e) if sent == 0 => return Err(e),
            Err(_) => break,
        };
        let piece = SendOpts {
            files: std::mem::take(&mut opts.files),
            to: opts.to,
            ..opts
        };
        match sock.send(&data, piece) {
            Ok(n) => {
                sent += n;
                if n < want || sent >= len {
                    break;
                }
            }
            Err(e) if sent == 0 => {
                if e == libc::EPIPE && flags & libc::MSG_NOSIGNAL == 0 {
                    super::signal::raise_sigpipe(t);
                }
                return Err(err(e));
            }
            Err(_) => break,
        }
    }
    Ok(sent as u64)
}

pub fn sendto(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = socket_file(t, a[0])?;
    if inet::host(&file).is_some() {
        return inet::sendto(t, &file, a);
    }
    let len = (a[2] as usize).min(MAX_RW_COUNT);
    let to = if a[4] != 0 && a[5] as u32 != 0 {
        Some(read_sockaddr(t, a[4], a[5])?)
    } else {
        None
    };
    do_send(t, &file, &[(a[1], len)], a[3], to, Control::default())
}

/// A `struct msghdr` as read from the application.
pub(super) struct MsgHdr {
    pub name: u64,
    pub namelen: i32,
    pub iov: u64,
    pub iovlen: u64,
    pub control: u64,
    pub controllen: u64,
}

/// The destination address of a sendmsg (`msg_name`, `msg_namelen`), if it names one: as
/// Linux, a null name means none, a negative length is EINVAL, a long one is cut.
pub(super) fn read_msg_name(t: &mut TaskState, m: &MsgHdr) -> Result<Option<Vec<u8>>, Errno> {
    let namelen = if m.name == 0 { 0 } else { m.namelen };
    if namelen < 0 {
        return Err(Errno::EINVAL);
    }
    if namelen == 0 {
        return Ok(None);
    }
    let n = (namelen as usize).min(SOCKADDR_MAX) as u64;
    Ok(Some(read_sockaddr(t, m.name, n)?))
}

pub(super) fn read_msghdr(t: &mut TaskState, addr: u64) -> Result<MsgHdr, Errno> {
    let mut b = [0u8; MSGHDR_SIZE];
    t.mm.copy_in(addr, &mut b)?;
    let word = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or_default());
    Ok(MsgHdr {
        name: word(0),
        namelen: i32::from_le_bytes(b[8..12].try_into().unwrap_or_default()),
        iov: word(16),
        iovlen: word(24),
        control: word(32),
        controllen: word(40),
    })
}

fn sendmsg_one(t: &mut TaskState, file: &OpenFile, msg_addr: u64, flags: u64) -> SysResult {
    if inet::host(file).is_some() {
        return inet::sendmsg_one(t, file, msg_addr, flags);
    }
    let m = read_msghdr(t, msg_addr)?;
    let to = read_msg_name(t, &m)?;
    let iovs = read_iovecs(t, m.iov, m.iovlen)?;
    if m.controllen > i32::MAX as u64 {
        return Err(err(libc::ENOBUFS));
    }
    let ctl = if m.controllen > 0 {
        if m.controllen as usize > CONTROL_MAX {
            return Err(err(libc::ENOBUFS));
        }
        let mut raw = vec![0u8; m.controllen as usize];
        t.mm.copy_in(m.control, &mut raw)?;
        parse_control(t, &raw)?
    } else {
        Control::default()
    };
    do_send(t, file, &iovs, flags, to, ctl)
}

pub fn sendmsg(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = socket_file(t, a[0])?;
    let r = sendmsg_one(t, &file, a[1], a[2]);
    fs::unix::collect_garbage();
    r
}

pub fn sendmmsg(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = socket_file(t, a[0])?;
    let (vec, vlen, flags) = (a[1], (a[2] as u32 as u64).min(IOV_MAX), a[3]);
    let mut done = 0u64;
    while done < vlen {
        let entry = vec.wrapping_add(done * MMSGHDR_SIZE);
        match sendmsg_one(t, &file, entry, flags) {
            Ok(n) => {
                if let Err(e) = t.mm.copy_out(
                    entry.wrapping_add(MSGHDR_SIZE as u64),
                    &(n as u32).to_le_bytes(),
                ) {
                    if done == 0 {
                        return Err(e);
                    }
                    break;
                }
                done += 1;
            }
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
        if t.exit.is_some() {
            break;
        }
    }
    fs::unix::collect_garbage();
    Ok(done)
}

// --- receiving ---------------------------------------------------------------------------

fn recv_opts(file: &OpenFile, flags: i32) -> RecvOpts {
    RecvOpts {
        peek: flags & libc::MSG_PEEK != 0,
        waitall: flags & libc::MSG_WAITALL != 0,
        trunc: flags & libc::MSG_TRUNC != 0,
        nonblock: nonblocking(file) || flags & libc::MSG_DONTWAIT != 0,
    }
}

fn recv_checks(sock: &UnixSocket, flags: i32) -> Result<(), Errno> {
    if flags & libc::MSG_OOB != 0 {
        return Err(if sock.sock_type() == SockType::Stream {
            Errno::EINVAL
        } else {
            Errno::EOPNOTSUPP
        });
    }
    Ok(())
}

pub fn recvfrom(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = socket_file(t, a[0])?;
    if inet::host(&file).is_some() {
        return inet::recvfrom(t, &file, a);
    }
    let sock = unix(&file)?;
    let flags = a[3] as i32;
    recv_checks(sock, flags)?;
    let len = (a[2] as usize).min(MAX_RW_COUNT);
    let iovs = [(a[1], len)];
    check_writable(t, &iovs, len)?;
    let r = sock.recv(len, recv_opts(&file, flags)).map_err(err)?;
    scatter(t, &iovs, &r.data)?;
    if a[4] != 0 {
        let from = r
            .from
            .as_ref()
            .map(|f| sockaddr_of(Some(f)))
            .unwrap_or_default();
        write_sockaddr(t, &from, a[4], a[5])?;
    }
    Ok(r.len as u64)
}

/// The control messages of a received message, laid out as Linux's put_cmsg and
/// scm_detach_fds do: pieces to write at offsets of the control buffer, the bytes used, and
/// the flags (MSG_CTRUNC) to report.
struct CmsgWriter {
    room: usize,
    used: usize,
    writes: Vec<(usize, Vec<u8>)>,
    flags: i32,
}

fn cmsg_header(len: usize, ty: i32) -> Vec<u8> {
    let mut h = Vec::with_capacity(CMSGHDR_SIZE);
    h.extend_from_slice(&(len as u64).to_le_bytes());
    h.extend_from_slice(&libc::SOL_SOCKET.to_le_bytes());
    h.extend_from_slice(&ty.to_le_bytes());
    h
}

impl CmsgWriter {
    fn advance(&mut self, len: usize) {
        let step = (len.div_ceil(8) * 8).min(self.room);
        self.used += step;
        self.room -= step;
    }

    /// put_cmsg: as much of the message as fits (MSG_CTRUNC when not all of it).
    fn put(&mut self, ty: i32, data: &[u8]) {
        let mut len = CMSGHDR_SIZE + data.len();
        if self.room < CMSGHDR_SIZE {
            self.flags |= libc::MSG_CTRUNC;
            return;
        }
        if self.room < len {
            self.flags |= libc::MSG_CTRUNC;
            len = self.room;
        }
        let mut bytes = cmsg_header(len, ty);
        bytes.extend_from_slice(&data[..len - CMSGHDR_SIZE]);
        self.writes.push((self.used, bytes));
        self.advance(CMSGHDR_SIZE + data.len());
    }

    /// scm_detach_fds: installs as many of `files` as the buffer has room for.
    fn put_files(&mut self, t: &TaskState, files: Vec<Arc<OpenFile>>, cloexec: bool) {
        let fdmax = if self.room <= CMSGHDR_SIZE {
            0
        } else {
            (self.room - CMSGHDR_SIZE) / 4
        };
        let total = files.len();
        let mut fds: Vec<i32> = Vec::new();
        for f in files.into_iter().take(fdmax) {
            match t.fds.alloc(0, f, cloexec, fd_limit(t)) {
                Ok(fd) => fds.push(fd),
                Err(_) => break,
            }
        }
        if !fds.is_empty() {
            let len = CMSGHDR_SIZE + 4 * fds.len();
            let mut bytes = cmsg_header(len, libc::SCM_RIGHTS);
            for fd in &fds {
                bytes.extend_from_slice(&fd.to_le_bytes());
            }
            self.writes.push((self.used, bytes));
            self.advance(len);
        }
        if fds.len() < total {
            self.flags |= libc::MSG_CTRUNC;
        }
    }
}

fn recvmsg_one(t: &mut TaskState, file: &OpenFile, msg_addr: u64, flags: u64) -> SysResult {
    if inet::host(file).is_some() {
        return inet::recvmsg_one(t, file, msg_addr, flags);
    }
    let sock = unix(file)?;
    let flags = flags as i32;
    let m = read_msghdr(t, msg_addr)?;
    let iovs = read_iovecs(t, m.iov, m.iovlen)?;
    recv_checks(sock, flags)?;
    let len = iov_total(&iovs);
    check_writable(t, &iovs, len)?;
    if m.control != 0 {
        t.mm.check_range(
            m.control,
            m.controllen.min(CONTROL_MAX as u64) as usize,
            true,
        )?;
    }
    let r: Received = sock.recv(len, recv_opts(file, flags)).map_err(err)?;
    scatter(t, &iovs, &r.data)?;
    if m.name != 0 {
        let from = r
            .from
            .as_ref()
            .map(|f| sockaddr_of(Some(f)))
            .unwrap_or_default();
        write_sockaddr(t, &from, m.name, msg_addr.wrapping_add(8))?;
    }
    let mut w = CmsgWriter {
        room: m.controllen.min(i32::MAX as u64) as usize,
        used: 0,
        writes: Vec::new(),
        flags: flags & libc::MSG_CMSG_CLOEXEC,
    };
    if r.truncated {
        w.flags |= libc::MSG_TRUNC;
    }
    if m.control == 0 {
        if r.creds.is_some() || !r.files.is_empty() {
            w.flags |= libc::MSG_CTRUNC;
        }
    } else {
        if let Some(c) = r.creds {
            w.put(libc::SCM_CREDENTIALS, &seen_ucred(t, c).to_bytes());
        }
        if !r.files.is_empty() {
            w.put_files(t, r.files, flags & libc::MSG_CMSG_CLOEXEC != 0);
        }
    }
    for (off, bytes) in &w.writes {
        t.mm.copy_out(m.control.wrapping_add(*off as u64), bytes)?;
    }
    t.mm.copy_out(msg_addr.wrapping_add(48), &w.flags.to_le_bytes())?;
    t.mm.copy_out(msg_addr.wrapping_add(40), &(w.used as u64).to_le_bytes())?;
    Ok(r.len as u64)
}

pub fn recvmsg(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = socket_file(t, a[0])?;
    recvmsg_one(t, &file, a[1], a[2])
}

/// recvmmsg(2). The timeout is Linux's: checked after each datagram received (a wait for
/// the first is not bounded by it), the time left written back when any datagram came.
pub fn recvmmsg(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = socket_file(t, a[0])?;
    let (vec, vlen) = (a[1], (a[2] as u32 as u64).min(IOV_MAX));
    let mut flags = a[3];
    let timeout_ptr = a[4];
    let deadline = if timeout_ptr == 0 {
        None
    } else {
        let mut ts = [0u8; 16];
        t.mm.copy_in(timeout_ptr, &mut ts)?;
        let sec = i64::from_le_bytes(ts[..8].try_into().unwrap_or_default());
        let nsec = i64::from_le_bytes(ts[8..].try_into().unwrap_or_default());
        if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
            return Err(Errno::EINVAL);
        }
        let wait = Duration::new(sec as u64, nsec as u32);
        Some(Instant::now().checked_add(wait).unwrap_or_else(far_future))
    };
    let mut left = Duration::ZERO;
    let mut done = 0u64;
    while done < vlen {
        let entry = vec.wrapping_add(done * MMSGHDR_SIZE);
        match recvmsg_one(t, &file, entry, flags) {
            Ok(n) => {
                t.mm.copy_out(
                    entry.wrapping_add(MSGHDR_SIZE as u64),
                    &(n as u32).to_le_bytes(),
                )?;
                done += 1;
            }
            Err(e) if done == 0 => return Err(e),
            Err(_) => break,
        }
        if flags & libc::MSG_WAITFORONE as u64 != 0 {
            flags |= libc::MSG_DONTWAIT as u64;
        }
        if let Some(end) = deadline {
            left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
        }
    }
    if deadline.is_some() && done > 0 {
        let mut ts = (left.as_secs() as i64).to_le_bytes().to_vec();
        ts.extend_from_slice(&i64::from(left.subsec_nanos()).to_le_bytes());
        t.mm.copy_out(timeout_ptr, &ts)?;
    }
    Ok(done)
}

/// A deadline past any wait (a timeout too large for `Instant`).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

// --- options -----------------------------------------------------------------------------

/// Options stored and reported back without effect, with their defaults.
const STORED_INT: [(i32, i32); 9] = [
    (libc::SO_REUSEADDR, 0),
    (libc::SO_KEEPALIVE, 0),
    (libc::SO_BROADCAST, 0),
    (libc::SO_DONTROUTE, 0),
    (libc::SO_OOBINLINE, 0),
    (libc::SO_REUSEPORT, 0),
    (libc::SO_PASSSEC, 0),
    (libc::SO_PRIORITY, 0),
    (libc::SO_RCVLOWAT, 1),
];

pub(super) fn timeval_bytes(d: Option<Duration>) -> Vec<u8> {
    let (sec, usec) = match d {
        None => (0i64, 0i64),
        Some(d) => (d.as_secs() as i64, d.subsec_micros() as i64),
    };
    let mut b = sec.to_le_bytes().to_vec();
    b.extend_from_slice(&usec.to_le_bytes());
    b
}

pub fn getsockopt(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (level, name, val, len_ptr) = (a[1] as i32, a[2] as i32, a[3], a[4]);
    let file = socket_file(t, a[0])?;
    if let Some(s) = inet::host(&file) {
        return super::sockopt::getsockopt(t, s, a);
    }
    let sock = unix(&file)?;
    if level != libc::SOL_SOCKET {
        return Err(Errno::EOPNOTSUPP);
    }
    let len = t.mm.read_u32(len_ptr)? as i32;
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let int = |v: i32| v.to_le_bytes().to_vec();
    let value: Vec<u8> = match name {
        libc::SO_TYPE => int(sock.sock_type().raw()),
        libc::SO_PROTOCOL => int(0),
        libc::SO_DOMAIN => int(libc::AF_UNIX),
        libc::SO_ERROR => int(sock.take_error()),
        libc::SO_ACCEPTCONN => int(sock.listening() as i32),
        libc::SO_SNDBUF => int(sock.sndbuf() as i32),
        libc::SO_RCVBUF => int(sock.rcvbuf() as i32),
        libc::SO_PASSCRED => int(sock.passcred() as i32),
        libc::SO_PEERCRED => seen_ucred(t, sock.peer_cred()).to_bytes().to_vec(),
        libc::SO_RCVTIMEO | libc::SO_SNDTIMEO => {
            timeval_bytes(sock.timeout(name == libc::SO_SNDTIMEO))
        }
        libc::SO_SNDLOWAT => int(1),
        libc::SO_PEEK_OFF => int(-1),
        libc::SO_LINGER => sock
            .stored_option(libc::SO_LINGER)
            .unwrap_or_else(|| vec![0; 8]),
        _ => match STORED_INT.iter().find(|(n, _)| *n == name) {
            Some(&(n, default)) => sock.stored_option(n).unwrap_or_else(|| int(default)),
            None => return Err(err(libc::ENOPROTOOPT)),
        },
    };
    let n = (len as usize).min(value.len());
    if n > 0 {
        t.mm.copy_out(val, &value[..n])?;
    }
    t.mm.copy_out(len_ptr, &(n as u32).to_le_bytes())?;
    Ok(0)
}

/// A socket timeout from a `struct timeval`, rounded up to the tick as Linux does:
/// None waits forever (0, 0), zero gives up at once (a negative time).
pub(super) fn timeout_from(
    t: &mut TaskState,
    val: u64,
    len: usize,
) -> Result<Option<Duration>, Errno> {
    if len < 16 {
        return Err(Errno::EINVAL);
    }
    let mut b = [0u8; 16];
    t.mm.copy_in(val, &mut b)?;
    let sec = i64::from_le_bytes(b[0..8].try_into().unwrap_or_default());
    let usec = i64::from_le_bytes(b[8..16].try_into().unwrap_or_default());
    if !(0..1_000_000).contains(&usec) {
        return Err(err(libc::EDOM));
    }
    if sec < 0 {
        return Ok(Some(Duration::ZERO));
    }
    if sec == 0 && usec == 0 {
        return Ok(None);
    }
    let usec = (usec + JIFFY_US - 1) / JIFFY_US * JIFFY_US;
    Ok(Some(
        Duration::from_secs(sec as u64) + Duration::from_micros(usec as u64),
    ))
}

pub fn setsockopt(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (level, name, val, len) = (a[1] as i32, a[2] as i32, a[3], a[4] as u32 as i32);
    if len < 0 {
        return Err(Errno::EINVAL);
    }
    let file = socket_file(t, a[0])?;
    if let Some(s) = inet::host(&file) {
        return super::sockopt::setsockopt(t, s, a);
    }
    let sock = unix(&file)?;
    if level != libc::SOL_SOCKET {
        return Err(Errno::EOPNOTSUPP);
    }
    let len = len as usize;
    if len < 4 {
        return Err(Errno::EINVAL);
    }
    let v = t.mm.read_u32(val)? as i32;
    // SO_*BUFFORCE and SO_PRIORITY outside 0..=6 need CAP_NET_ADMIN.
    let privileged = crate::caps::capable(&t.creds, crate::caps::Cap::NetAdmin);
    match name {
        libc::SO_SNDBUF | libc::SO_SNDBUFFORCE | libc::SO_RCVBUF | libc::SO_RCVBUFFORCE => {
            let force = name == libc::SO_SNDBUFFORCE || name == libc::SO_RCVBUFFORCE;
            if force && !privileged {
                return Err(Errno::EPERM);
            }
            if name == libc::SO_SNDBUF || name == libc::SO_SNDBUFFORCE {
                sock.set_sndbuf(v, force)
            } else {
                sock.set_rcvbuf(v, force)
            }
            .map_err(err)?;
        }
        libc::SO_PASSCRED => sock.set_passcred(v != 0).map_err(err)?,
        libc::SO_RCVTIMEO | libc::SO_SNDTIMEO => {
            let d = timeout_from(t, val, len)?;
            sock.set_timeout(name == libc::SO_SNDTIMEO, d);
        }
        libc::SO_LINGER => {
            if len < 8 {
                return Err(Errno::EINVAL);
            }
            let linger = t.mm.read_u32(val.wrapping_add(4))?;
            let mut b = ((v != 0) as i32).to_le_bytes().to_vec();
            b.extend_from_slice(&linger.to_le_bytes());
            sock.set_stored_option(libc::SO_LINGER, &b);
        }
        libc::SO_PRIORITY => {
            if !(0..=6).contains(&v) && !privileged {
                return Err(Errno::EPERM);
            }
            sock.set_stored_option(name, &v.to_le_bytes());
        }
        libc::SO_RCVLOWAT => {
            let v = if v < 0 { i32::MAX } else { v.max(1) };
            sock.set_stored_option(name, &v.to_le_bytes());
        }
        _ if STORED_INT.iter().any(|(n, _)| *n == name) => {
            sock.set_stored_option(name, &((v != 0) as i32).to_le_bytes());
        }
        _ => return Err(err(libc::ENOPROTOOPT)),
    }
    Ok(0)
}
