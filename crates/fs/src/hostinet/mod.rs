//! hostinet: sandbox sockets of the AF_INET, AF_INET6 and AF_NETLINK families, each backed
//! by a host socket that the sentry creates in its own network namespace (under the OCI
//! runtime, the bundle's) and never hands to the application.
//!
//! The host socket is always non-blocking. Whether a call waits is the sandbox
//! description's business (O_NONBLOCK, MSG_DONTWAIT, SO_RCVTIMEO/SO_SNDTIMEO, which the
//! sentry keeps), and waiting is done in the sentry with the same machinery as host streams:
//! the host notifier ([`crate::host`]) turns host readiness edges into notifications of the
//! socket's [`WaitQueue`], and the calling task sleeps on its [`crate::waiter::Waiter`], so a
//! signal interrupts the wait (ERESTARTSYS, or EINTR once a timeout is set, as Linux).
//!
//! Every buffer and address handed to the host here is the sentry's own memory; the system
//! call layer copies the application's in and out.
//!
//! One job per file: this one holds the socket object and its [`FileDescription`]; `io.rs`
//! the calls that may wait (connect, accept, send, receive); `netlink.rs` the filter that
//! decides what a NETLINK_ROUTE request may change.

mod io;
pub mod netlink;

use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

pub use io::Received;

use crate::waiter::WaitQueue;
use crate::{Errno, FileDescription, Stat};

/// Largest socket address the host returns (`struct sockaddr_storage`).
pub const SOCKADDR_MAX: usize = 128;

static NETWORK_CHANGES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Lets a sandbox caller with CAP_NET_ADMIN change the network (interfaces, addresses,
/// routes: [`netlink`], and the SIOCSIF* ioctls). The runtime calls this only when the
/// namespace the sentry's sockets live in is the sandbox's own (never the host's) and the
/// sentry kept CAP_NET_ADMIN to act on it.
pub fn allow_network_changes() {
    NETWORK_CHANGES.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// Whether [`allow_network_changes`] was called.
pub fn network_changes_allowed() -> bool {
    NETWORK_CHANGES.load(std::sync::atomic::Ordering::Relaxed)
}

/// A sandbox socket backed by a host socket.
pub struct HostSocket {
    /// Closed in `drop`, possibly on another thread (SO_LINGER).
    fd: ManuallyDrop<OwnedFd>,
    family: i32,
    stype: i32,
    protocol: i32,
    queue: WaitQueue,
    /// The socket's id in the host notifier, once someone has waited on it.
    watch: OnceLock<Option<u64>>,
    /// SO_RCVTIMEO and SO_SNDTIMEO: None waits forever.
    timeouts: Mutex<[Option<Duration>; 2]>,
    ino: u64,
    /// NETLINK_ROUTE: the sentry's answers to refused requests (NLMSG_ERROR messages),
    /// read before anything the host has queued ([`netlink::Plan::Answer`]).
    answers: Mutex<std::collections::VecDeque<Vec<u8>>>,
    /// Held around every host receive, so that a MSG_WAITALL receive on the ring poller
    /// (which must not wait after consuming anything) can check that enough is queued and
    /// take it with no other receiver in between ([`HostSocket::recv`]).
    recv_lock: Mutex<()>,
}

pub(crate) fn last_errno() -> Errno {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

pub(crate) fn check(r: isize) -> Result<usize, Errno> {
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(r as usize)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl HostSocket {
    /// Creates a host socket: `stype` without flags. The caller has checked the family, type
    /// and protocol against what the sandbox offers; the host's errno comes back as is.
    pub fn new(family: i32, stype: i32, protocol: i32) -> Result<HostSocket, Errno> {
        // SAFETY: plain socket(2); the result is checked.
        let fd = unsafe {
            libc::socket(
                family,
                stype | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                protocol,
            )
        };
        if fd < 0 {
            return Err(last_errno());
        }
        // SAFETY: fd is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self::wrap(fd, family, stype, protocol))
    }

    fn wrap(fd: OwnedFd, family: i32, stype: i32, protocol: i32) -> HostSocket {
        let ino = nix::sys::stat::fstat(fd.as_raw_fd())
            .map(|st| st.st_ino)
            .unwrap_or(0);
        HostSocket {
            fd: ManuallyDrop::new(fd),
            family,
            stype,
            protocol,
            queue: WaitQueue::new(),
            watch: OnceLock::new(),
            timeouts: Mutex::new([None, None]),
            ino,
            answers: Mutex::new(std::collections::VecDeque::new()),
            recv_lock: Mutex::new(()),
        }
    }

    fn raw(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    pub fn family(&self) -> i32 {
        self.family
    }

    /// The SOCK_* type, without flags.
    pub fn sock_type(&self) -> i32 {
        self.stype
    }

    pub fn protocol(&self) -> i32 {
        self.protocol
    }

    pub fn is_stream(&self) -> bool {
        self.stype == libc::SOCK_STREAM
    }

    /// SO_RCVTIMEO (`send` false) or SO_SNDTIMEO.
    pub fn timeout(&self, send: bool) -> Option<Duration> {
        lock(&self.timeouts)[send as usize]
    }

    pub fn set_timeout(&self, send: bool, d: Option<Duration>) {
        lock(&self.timeouts)[send as usize] = d;
    }

    pub fn bind(&self, addr: &[u8]) -> Result<(), Errno> {
        // SAFETY: addr is a sentry buffer of addr.len() bytes.
        let r = unsafe {
            libc::bind(
                self.raw(),
                addr.as_ptr().cast(),
                addr.len() as libc::socklen_t,
            )
        };
        check(r as isize).map(|_| ())
    }

    pub fn listen(&self, backlog: i32) -> Result<(), Errno> {
        // SAFETY: plain listen(2) on a socket we own.
        check(unsafe { libc::listen(self.raw(), backlog) } as isize).map(|_| ())
    }

    pub fn shutdown(&self, how: i32) -> Result<(), Errno> {
        // SAFETY: plain shutdown(2) on a socket we own.
        check(unsafe { libc::shutdown(self.raw(), how) } as isize).map(|_| ())
    }

    fn name(&self, peer: bool) -> Result<Vec<u8>, Errno> {
        let mut buf = [0u8; SOCKADDR_MAX];
        let mut len = SOCKADDR_MAX as libc::socklen_t;
        let f = if peer {
            libc::getpeername
        } else {
            libc::getsockname
        };
        // SAFETY: buf has room for len bytes; len is a valid socklen_t.
        let r = unsafe { f(self.raw(), buf.as_mut_ptr().cast(), &mut len) };
        check(r as isize)?;
        Ok(buf[..(len as usize).min(SOCKADDR_MAX)].to_vec())
    }

    /// getsockname(2): the host's address of the socket.
    pub fn local_addr(&self) -> Result<Vec<u8>, Errno> {
        self.name(false)
    }

    /// getpeername(2).
    pub fn peer_addr(&self) -> Result<Vec<u8>, Errno> {
        self.name(true)
    }

    /// getsockopt(2) into a sentry buffer; returns the length the host reports.
    pub fn getsockopt(&self, level: i32, name: i32, buf: &mut [u8]) -> Result<usize, Errno> {
        let mut len = buf.len() as libc::socklen_t;
        // SAFETY: buf has room for len bytes.
        let r =
            unsafe { libc::getsockopt(self.raw(), level, name, buf.as_mut_ptr().cast(), &mut len) };
        check(r as isize)?;
        Ok(len as usize)
    }

    /// setsockopt(2) from a sentry buffer.
    pub fn setsockopt(&self, level: i32, name: i32, buf: &[u8]) -> Result<(), Errno> {
        // SAFETY: buf holds buf.len() readable bytes.
        let r = unsafe {
            libc::setsockopt(
                self.raw(),
                level,
                name,
                buf.as_ptr().cast(),
                buf.len() as libc::socklen_t,
            )
        };
        check(r as isize).map(|_| ())
    }

    /// An ioctl whose argument is a structure in `buf` (an ifreq, an int), sentry memory
    /// the host reads and writes.
    pub fn ioctl_buf(&self, request: u64, buf: &mut [u8]) -> Result<i32, Errno> {
        // SAFETY: buf is a sentry buffer sized for the request by the caller, which only
        // passes requests whose argument is a structure of at most buf.len() bytes.
        let r = unsafe { libc::ioctl(self.raw(), request as _, buf.as_mut_ptr()) };
        check(r as isize).map(|n| n as i32)
    }

    /// SIOCGIFCONF into a sentry buffer (None: ask for the length only). Returns the
    /// length the host reports.
    pub fn ifconf(&self, buf: Option<&mut [u8]>) -> Result<usize, Errno> {
        let (ptr, len) = match buf {
            Some(b) => (b.as_mut_ptr(), b.len()),
            None => (std::ptr::null_mut(), 0),
        };
        let mut ifc = libc::ifconf {
            ifc_len: len as i32,
            ifc_ifcu: libc::__c_anonymous_ifc_ifcu {
                ifcu_buf: ptr.cast(),
            },
        };
        // SAFETY: ifc points at a sentry buffer of ifc_len bytes (or null for the length).
        let r = unsafe { libc::ioctl(self.raw(), libc::SIOCGIFCONF, &mut ifc) };
        check(r as isize)?;
        Ok(ifc.ifc_len.max(0) as usize)
    }

    fn ioctl_int(&self, request: u64) -> Result<u32, Errno> {
        let mut v: libc::c_int = 0;
        // SAFETY: the request writes one int to v.
        let r = unsafe { libc::ioctl(self.raw(), request as _, &mut v) };
        check(r as isize)?;
        Ok(v as u32)
    }

    /// SIOCOUTQ: bytes not yet acknowledged (TCP) or not yet sent (UDP).
    pub fn bytes_unsent(&self) -> Result<u32, Errno> {
        self.ioctl_int(libc::TIOCOUTQ)
    }

    /// poll(2) with a zero timeout: the events among `mask` that hold now.
    fn host_readiness(&self, mask: u32) -> u32 {
        crate::host::poll_now(self.raw(), mask)
    }
}

impl Drop for HostSocket {
    fn drop(&mut self) {
        if let Some(Some(id)) = self.watch.get() {
            crate::host::unwatch(self.fd.as_raw_fd(), *id);
        }
        // With SO_LINGER set, the host's close waits (up to the linger time) for unsent
        // data, whatever O_NONBLOCK says, and the last reference may go on the ring poller,
        // which serves every task: such a close happens on a thread of its own.
        let mut linger = [0u8; 8];
        let lingers = self
            .getsockopt(libc::SOL_SOCKET, libc::SO_LINGER, &mut linger)
            .is_ok_and(|_| linger[..4] != [0; 4] && linger[4..] != [0; 4]);
        // SAFETY: self.fd is taken once, here, and not used again.
        let fd = unsafe { ManuallyDrop::take(&mut self.fd) };
        if lingers {
            let _ = std::thread::Builder::new()
                .name("linger-close".into())
                .spawn(move || drop(fd));
        }
    }
}

impl FileDescription for HostSocket {
    fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        self.read_with_flags(buf, 0)
    }

    fn write(&self, buf: &[u8]) -> Result<usize, Errno> {
        self.write_with_flags(buf, 0)
    }

    fn read_with_flags(&self, buf: &mut [u8], flags: u32) -> Result<usize, Errno> {
        let nonblock = flags & libc::O_NONBLOCK as u32 != 0;
        let r = self.recv(buf, 0, nonblock, false, 0)?;
        Ok(r.len.min(buf.len()))
    }

    fn write_with_flags(&self, buf: &[u8], flags: u32) -> Result<usize, Errno> {
        let nonblock = flags & libc::O_NONBLOCK as u32 != 0;
        self.send(buf, None, &[], 0, nonblock)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(Stat {
            dev: crate::unix::SOCKFS_DEV,
            ino: self.ino,
            nlink: 1,
            mode: libc::S_IFSOCK | 0o777,
            blksize: 4096,
            ..Default::default()
        })
    }

    fn may_block(&self) -> bool {
        true
    }

    fn bytes_available(&self) -> Result<u32, Errno> {
        self.ioctl_int(libc::FIONREAD)
    }

    fn readiness(&self, mask: u32) -> u32 {
        let answered = if self.has_answers() {
            crate::waiter::POLLIN | crate::waiter::POLLRDNORM
        } else {
            0
        };
        self.host_readiness(mask) | (answered & mask)
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        let watched = self
            .watch
            .get_or_init(|| crate::host::watch(self.raw(), self.queue.clone()));
        watched.map(|_| &self.queue)
    }

    fn host_socket(&self) -> Option<&HostSocket> {
        Some(self)
    }
}

#[cfg(test)]
mod tests;
