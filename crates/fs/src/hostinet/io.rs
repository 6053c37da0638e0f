//! The calls of a host-backed socket that may wait: connect, accept, send and receive.
//!
//! Each tries the host once (non-blocking); on EAGAIN a blocking caller sleeps on the
//! socket's queue until the host notifier reports an edge, a signal interrupts it, or the
//! socket's timeout passes, then tries again ([`HostSocket::wait_for`]). The waiting
//! protocol is [`crate::waiter`]'s: register, try, sleep, so no edge is lost.

use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use super::netlink::{Plan, Refused, Rights};
use super::{check, last_errno, HostSocket, SOCKADDR_MAX};
use crate::waiter::{self, Wake, ERESTARTSYS, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDHUP};
use crate::{Errno, FileDescription};

/// Send flags passed on to the host (the rest are the sentry's business or refused).
const SEND_FLAGS: i32 = libc::MSG_OOB
    | libc::MSG_DONTROUTE
    | libc::MSG_EOR
    | libc::MSG_MORE
    | libc::MSG_CONFIRM
    | libc::MSG_FASTOPEN;
/// Receive flags passed on to the host.
const RECV_FLAGS: i32 = libc::MSG_OOB | libc::MSG_PEEK | libc::MSG_TRUNC | libc::MSG_ERRQUEUE;

/// What a receive got.
#[derive(Debug, Default)]
pub struct Received {
    /// The length the call returns: with MSG_TRUNC a datagram's full length, which may
    /// exceed the buffer.
    pub len: usize,
    /// The sender's address (datagrams; empty when not asked for).
    pub name: Vec<u8>,
    /// Control messages, as the host laid them out (no descriptors: these families carry
    /// none).
    pub control: Vec<u8>,
    /// msg_flags (MSG_TRUNC, MSG_CTRUNC, MSG_EOR, ...).
    pub flags: i32,
}

impl HostSocket {
    /// Runs `op` until it stops failing with EAGAIN: once when `nonblock`; otherwise
    /// sleeping between tries until the host reports one of `events`, a signal comes
    /// (ERESTARTSYS; EINTR when a timeout is set, as Linux's sock_intr_errno) or `timeout`
    /// passes (EAGAIN).
    ///
    /// The task sleeps in the host's poll(2) on the socket and its waiter's wake eventfd:
    /// one host wake-up when the peer acts, or when a signal's [`waiter::Waiter::wake`]
    /// comes. `edge`: wait for a new arrival instead of readiness (MSG_PEEK|MSG_WAITALL,
    /// which sleeps while some data is already queued): then the task registers on the
    /// socket's queue, which the host notifier feeds with edges.
    pub(super) fn wait_for<T>(
        &self,
        events: u32,
        nonblock: bool,
        timeout: Option<Duration>,
        edge: bool,
        mut op: impl FnMut() -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        let interrupted = if timeout.is_some() {
            libc::EINTR
        } else {
            ERESTARTSYS
        };
        let mut registration = None;
        let mut deadline: Option<Instant> = None;
        let mut first = true;
        let waiter = if nonblock { None } else { waiter::current() };
        let mask = events | POLLERR | POLLHUP;
        loop {
            match op() {
                Err(libc::EAGAIN) if !nonblock => {}
                r => return r,
            }
            if waiter::no_sleep() {
                return Err(waiter::WOULD_SLEEP);
            }
            if first {
                if timeout == Some(Duration::ZERO) {
                    return Err(libc::EAGAIN);
                }
                deadline = timeout.map(|t| Instant::now() + t);
                first = false;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(libc::EAGAIN);
            }
            let Some(w) = waiter.as_ref() else {
                // No task (unit tests): wait in the host.
                self.host_wait(mask, deadline, None);
                continue;
            };
            if w.interrupted() {
                return Err(interrupted);
            }
            // The queue only when waiting for edges: asking for it registers the socket
            // with the host notifier for good, whose thread then wakes at every readiness
            // edge of the socket (a context switch per packet on a 2-core host) although
            // nothing listens.
            let queue = if edge { self.wait_queue() } else { None };
            match (edge, queue) {
                (true, Some(q)) => {
                    if registration.is_none() {
                        // Registered, then tried again: an edge in between notifies.
                        w.reset();
                        registration = Some(q.register(w, mask));
                        continue;
                    }
                    match w.wait(deadline) {
                        Wake::Notified => {}
                        Wake::TimedOut => return Err(libc::EAGAIN),
                        Wake::Interrupted => return Err(interrupted),
                    }
                }
                (true, None) => std::thread::sleep(Duration::from_millis(1)),
                (false, _) => {
                    self.host_wait(mask, deadline, w.host_wake_fd());
                    if w.interrupted() {
                        return Err(interrupted);
                    }
                }
            }
        }
    }

    /// Sleeps in poll(2) until the socket has one of `mask`, `wake_fd` is signalled (then
    /// drained), `deadline` passes, or a [`waiter::SLICE`] ends (for the waiter's interrupt
    /// check).
    fn host_wait(&self, mask: u32, deadline: Option<Instant>, wake_fd: Option<RawFd>) {
        let slice = match deadline {
            Some(d) => d
                .saturating_duration_since(Instant::now())
                .min(waiter::SLICE),
            None => waiter::SLICE,
        };
        let ms = slice.as_micros().div_ceil(1000) as i32;
        let mut p = [
            libc::pollfd {
                fd: self.raw(),
                events: (mask & 0xffff) as i16,
                revents: 0,
            },
            libc::pollfd {
                fd: wake_fd.unwrap_or(-1),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds (a negative fd is ignored); bounded timeout.
        let n = unsafe { libc::poll(p.as_mut_ptr(), 2, ms) };
        if n > 0 && p[1].revents != 0 {
            if let Some(fd) = wake_fd {
                waiter::drain_wake_fd(fd);
            }
        }
    }

    fn host_connect(&self, addr: &[u8]) -> Result<(), Errno> {
        // SAFETY: addr is a sentry buffer of addr.len() bytes.
        let r = unsafe {
            libc::connect(
                self.raw(),
                addr.as_ptr().cast(),
                addr.len() as libc::socklen_t,
            )
        };
        check(r as isize).map(|_| ())
    }

    /// connect(2). Non-blocking: EINPROGRESS as the host says. Blocking: waits for the
    /// connection (SO_SNDTIMEO bounds it, then EINPROGRESS) and reports its outcome; a
    /// connect restarted after a signal finds the attempt in progress (EALREADY) and waits
    /// on, as Linux's does.
    pub fn connect(&self, addr: &[u8], nonblock: bool) -> Result<(), Errno> {
        match self.host_connect(addr) {
            Ok(()) => return Ok(()),
            Err(libc::EINPROGRESS) if !nonblock => {}
            Err(libc::EALREADY) if !nonblock => {}
            Err(e) => return Err(e),
        }
        let ready = self.wait_for(POLLOUT, false, self.timeout(true), false, || {
            if self.host_readiness(POLLOUT | POLLERR | POLLHUP) == 0 {
                Err(libc::EAGAIN)
            } else {
                Ok(())
            }
        });
        match ready {
            Ok(()) => {}
            Err(libc::EAGAIN) => return Err(libc::EINPROGRESS),
            Err(e) => return Err(e),
        }
        let mut v = [0u8; 4];
        self.getsockopt(libc::SOL_SOCKET, libc::SO_ERROR, &mut v)?;
        let e = i32::from_ne_bytes(v);
        if e != 0 {
            return Err(e);
        }
        // The host marks the socket connected on the next connect(2).
        match self.host_connect(addr) {
            Ok(()) | Err(libc::EISCONN) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// accept4(2): the new connection (non-blocking on the host, like every host socket
    /// here) and the peer's address. SO_RCVTIMEO bounds a blocking accept.
    pub fn accept(&self, nonblock: bool) -> Result<(HostSocket, Vec<u8>), Errno> {
        self.wait_for(POLLIN, nonblock, self.timeout(false), false, || {
            let mut buf = [0u8; SOCKADDR_MAX];
            let mut len = SOCKADDR_MAX as libc::socklen_t;
            // SAFETY: buf has room for len bytes.
            let fd = unsafe {
                libc::accept4(
                    self.raw(),
                    buf.as_mut_ptr().cast(),
                    &mut len,
                    libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                )
            };
            if fd < 0 {
                return Err(last_errno());
            }
            // SAFETY: fd is a fresh descriptor we own.
            let fd = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
            let sock = HostSocket::wrap(fd, self.family, self.stype, self.protocol);
            Ok((sock, buf[..(len as usize).min(SOCKADDR_MAX)].to_vec()))
        })
    }

    fn host_sendmsg(
        &self,
        data: &[u8],
        to: Option<&[u8]>,
        control: &[u8],
        flags: i32,
    ) -> Result<usize, Errno> {
        let mut iov = libc::iovec {
            iov_base: data.as_ptr().cast_mut().cast(),
            iov_len: data.len(),
        };
        // SAFETY: an all-zero msghdr is valid (no name, no iovecs, no control).
        let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
        if let Some(to) = to {
            m.msg_name = to.as_ptr().cast_mut().cast();
            m.msg_namelen = to.len() as libc::socklen_t;
        }
        m.msg_iov = &mut iov;
        m.msg_iovlen = 1;
        if !control.is_empty() {
            m.msg_control = control.as_ptr().cast_mut().cast();
            m.msg_controllen = control.len();
        }
        // SAFETY: every pointer in m is a sentry buffer of the stated length, only read by
        // sendmsg.
        check(unsafe { libc::sendmsg(self.raw(), &m, flags) })
    }

    /// Sends `data` (to `to`, or the peer) with control messages `control` (already
    /// checked by the caller). A blocking stream send waits until all of it is taken, or a
    /// signal or SO_SNDTIMEO ends it (what was sent counts); a datagram goes whole or not
    /// at all. EPIPE is returned, never raised: the caller sends SIGPIPE.
    pub fn send(
        &self,
        data: &[u8],
        to: Option<&[u8]>,
        control: &[u8],
        flags: i32,
        nonblock: bool,
    ) -> Result<usize, Errno> {
        self.send_as(Rights::ReadOnly, data, to, control, flags, nonblock)
    }

    /// [`send`](Self::send) by a sender whose netlink requests may change what `rights`
    /// allow (the system call layer decides from the caller's capabilities).
    pub fn send_as(
        &self,
        rights: Rights,
        data: &[u8],
        to: Option<&[u8]>,
        control: &[u8],
        flags: i32,
        nonblock: bool,
    ) -> Result<usize, Errno> {
        if self.family == libc::AF_NETLINK {
            match super::netlink::plan(data, rights) {
                Plan::Send => {}
                Plan::Refuse(e) => return Err(e),
                Plan::Answer(refused) => {
                    self.answer(data, &refused)?;
                    return Ok(data.len());
                }
            }
        }
        let nonblock = nonblock || flags & libc::MSG_DONTWAIT != 0;
        let host_flags = (flags & SEND_FLAGS) | libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        let timeout = self.timeout(true);
        let mut sent = 0usize;
        loop {
            let ctl = if sent == 0 { control } else { &[] };
            let r = self.wait_for(POLLOUT, nonblock, timeout, false, || {
                self.host_sendmsg(&data[sent..], to, ctl, host_flags)
            });
            match r {
                Ok(n) => {
                    sent += n;
                    if nonblock || !self.is_stream() || sent >= data.len() {
                        return Ok(sent);
                    }
                }
                Err(_) if sent > 0 => return Ok(sent),
                Err(e) => return Err(e),
            }
        }
    }

    fn host_recvmsg(
        &self,
        buf: &mut [u8],
        name: &mut [u8],
        control: &mut [u8],
        flags: i32,
    ) -> Result<(usize, usize, usize, i32), Errno> {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: an all-zero msghdr is valid.
        let mut m: libc::msghdr = unsafe { std::mem::zeroed() };
        if !name.is_empty() {
            m.msg_name = name.as_mut_ptr().cast();
            m.msg_namelen = name.len() as libc::socklen_t;
        }
        m.msg_iov = &mut iov;
        m.msg_iovlen = 1;
        if !control.is_empty() {
            m.msg_control = control.as_mut_ptr().cast();
            m.msg_controllen = control.len();
        }
        // SAFETY: every pointer in m is a sentry buffer of the stated length.
        let n = check(unsafe { libc::recvmsg(self.raw(), &mut m, flags) })?;
        Ok((
            n,
            (m.msg_namelen as usize).min(name.len()),
            m.msg_controllen.min(control.len()),
            m.msg_flags,
        ))
    }

    /// Receives into `buf`. MSG_WAITALL on a blocking stream waits for the whole buffer
    /// (with MSG_PEEK: until that much is queued), ending early at EOF, a signal or
    /// SO_RCVTIMEO with what came. `want_name`: report the sender's address;
    /// `control_len`: room for control messages.
    pub fn recv(
        &self,
        buf: &mut [u8],
        flags: i32,
        nonblock: bool,
        want_name: bool,
        control_len: usize,
    ) -> Result<Received, Errno> {
        if let Some(r) = self.recv_answer(buf, flags, want_name) {
            return Ok(r);
        }
        let nonblock = nonblock || flags & libc::MSG_DONTWAIT != 0;
        let waitall = flags & libc::MSG_WAITALL != 0 && self.is_stream() && !nonblock;
        let peek = flags & libc::MSG_PEEK != 0;
        let host_flags = (flags & RECV_FLAGS) | libc::MSG_DONTWAIT;
        let timeout = self.timeout(false);
        let mut name = vec![0u8; if want_name { SOCKADDR_MAX } else { 0 }];
        let mut control = vec![0u8; control_len];
        let mut out = Received::default();
        let len = buf.len();
        let mut got = 0usize;
        // On the ring poller, which must not wait once it has consumed something, a
        // MSG_WAITALL receive runs only when it will be whole: enough queued (or no more to
        // come), taken under the receive lock so that no other receiver gets there first.
        // Otherwise it is declined before anything changed.
        let held = if waitall && waiter::no_sleep() {
            if peek {
                return Err(waiter::WOULD_SLEEP);
            }
            let g = super::lock(&self.recv_lock);
            if !self.whole_receive_ready(len) {
                return Err(waiter::WOULD_SLEEP);
            }
            Some(g)
        } else {
            None
        };
        loop {
            let mut peeked = 0usize;
            let r = self.wait_for(POLLIN, nonblock, timeout, waitall && peek, || {
                let _g = held.is_none().then(|| super::lock(&self.recv_lock));
                let (n, nl, cl, fl) =
                    self.host_recvmsg(&mut buf[got..], &mut name, &mut control, host_flags)?;
                if waitall && peek && n > 0 && n < len {
                    peeked = n;
                    // Wait for more, unless no more can come.
                    if self.host_readiness(POLLRDHUP | POLLHUP | POLLERR) == 0 {
                        return Err(libc::EAGAIN);
                    }
                }
                Ok((n, nl, cl, fl))
            });
            match r {
                Ok((n, nl, cl, fl)) => {
                    if got == 0 {
                        out.name = name[..nl].to_vec();
                        out.control = control[..cl].to_vec();
                        out.flags = fl;
                    }
                    got += n;
                    if !waitall || peek || n == 0 || got >= len {
                        out.len = got;
                        return Ok(out);
                    }
                }
                Err(_) if peeked > 0 => {
                    out.len = peeked;
                    return Ok(out);
                }
                Err(_) if got > 0 => {
                    out.len = got;
                    return Ok(out);
                }
                Err(e) => return Err(e),
            }
        }
    }
}

impl HostSocket {
    /// Whether a stream receive of `len` bytes would complete now: that much is queued, or
    /// no more can come (end of stream, an error), when it returns what there is.
    pub fn whole_receive_ready(&self, len: usize) -> bool {
        self.bytes_available().is_ok_and(|n| n as usize >= len)
            || self.host_readiness(POLLRDHUP | POLLHUP | POLLERR) != 0
    }
}

/// NETLINK_ROUTE answers made by the sentry (see [`Plan::Answer`]).
impl HostSocket {
    pub(super) fn has_answers(&self) -> bool {
        self.family == libc::AF_NETLINK
            && !self
                .answers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
    }

    /// Queues the host's NLMSG_ERROR answer to each refused request of `data`.
    fn answer(&self, data: &[u8], refused: &[Refused]) -> Result<(), Errno> {
        let port = self.netlink_port()?;
        let mut capped = [0u8; 4];
        const SOL_NETLINK: i32 = 270;
        const NETLINK_CAP_ACK: i32 = 10;
        let capped = self
            .getsockopt(SOL_NETLINK, NETLINK_CAP_ACK, &mut capped)
            .is_ok()
            && u32::from_ne_bytes(capped) != 0;
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        for r in refused {
            let request = &data[r.offset..r.offset + r.len];
            answers.push_back(super::netlink::error_message(
                request, r.errno, port, capped,
            ));
        }
        drop(answers);
        self.queue.notify(POLLIN);
        Ok(())
    }

    /// The socket's netlink port id, binding it first as a send would (autobind).
    fn netlink_port(&self) -> Result<u32, Errno> {
        let port = |addr: &[u8]| {
            // struct sockaddr_nl: family (2), pad (2), pid (4), groups (4).
            addr.get(4..8)
                .map_or(0, |p| u32::from_ne_bytes([p[0], p[1], p[2], p[3]]))
        };
        let p = port(&self.local_addr()?);
        if p != 0 {
            return Ok(p);
        }
        let mut any = [0u8; 12];
        any[..2].copy_from_slice(&(libc::AF_NETLINK as u16).to_ne_bytes());
        self.bind(&any)?;
        Ok(port(&self.local_addr()?))
    }

    /// The oldest answer, if any, as recvmsg returns a datagram: cut to `buf` (MSG_TRUNC
    /// in the flags, and the whole length returned when the caller asked with MSG_TRUNC),
    /// left queued by MSG_PEEK, from the kernel's address (port 0).
    fn recv_answer(&self, buf: &mut [u8], flags: i32, want_name: bool) -> Option<Received> {
        if self.family != libc::AF_NETLINK {
            return None;
        }
        let mut answers = self.answers.lock().unwrap_or_else(|e| e.into_inner());
        let msg = if flags & libc::MSG_PEEK != 0 {
            answers.front()?.clone()
        } else {
            answers.pop_front()?
        };
        drop(answers);
        let n = msg.len().min(buf.len());
        buf[..n].copy_from_slice(&msg[..n]);
        let mut name = Vec::new();
        if want_name {
            name = vec![0u8; 12];
            name[..2].copy_from_slice(&(libc::AF_NETLINK as u16).to_ne_bytes());
        }
        Some(Received {
            len: if flags & libc::MSG_TRUNC != 0 {
                msg.len()
            } else {
                n
            },
            name,
            control: Vec::new(),
            flags: if n < msg.len() { libc::MSG_TRUNC } else { 0 },
        })
    }
}
