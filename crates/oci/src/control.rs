//! The control protocol between the runtime commands and a sandbox process: a
//! `SOCK_SEQPACKET` Unix socket at `ROOT/ID/control.sock`, one JSON object per message,
//! descriptors (an exec's stdio) passed with `SCM_RIGHTS`.
//!
//! Paths under Docker's `--root` are longer than a socket address allows (108 bytes), so the
//! socket is named through `/proc/self/fd/N/`, N a descriptor of the container's directory.

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;

use nix::sys::socket::{
    self, AddressFamily, Backlog, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag,
    SockType, UnixAddr,
};
use serde::{Deserialize, Serialize};

use crate::OciError;

/// The socket's name in the container's directory.
pub const SOCKET: &str = "control.sock";

/// Largest message.
const MAX_MESSAGE: usize = 1 << 20;

/// A request to the sandbox.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Run the container's startContainer hooks (in the sandbox, with `state` on their
    /// stdin), then its process.
    Start {
        #[serde(default)]
        state: serde_json::Value,
    },
    /// Send `signo` to the container's first process, or with `all` to every process
    /// (`pid`: to that process instead, an exec's).
    Signal {
        signo: i32,
        all: bool,
        #[serde(default)]
        pid: Option<i32>,
    },
    /// Start another process (its stdio comes with the message); the reply is `Started`,
    /// then `Exited` when it ends.
    Exec {
        args: Vec<String>,
        env: Vec<String>,
        cwd: String,
        uid: u32,
        gid: u32,
        additional_gids: Vec<u32>,
        /// `process.capabilities` (None: every set empty).
        #[serde(default)]
        capabilities: Option<Capabilities>,
        /// `process.noNewPrivileges`.
        #[serde(default)]
        no_new_privileges: bool,
        /// `process.rlimits`: (resource, soft, hard).
        #[serde(default)]
        rlimits: Vec<(u32, u64, u64)>,
    },
    /// The sandbox's processes.
    Ps,
    /// Set the sandbox's limits (`runsc update`); the reply is `Usage`.
    Update { limits: crate::resources::Limits },
    /// The limits in force and the use (`events --stats`); the reply is `Usage`.
    Usage,
}

/// An exec's capability sets (bit N: capability N).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub bounding: u64,
    pub effective: u64,
    pub inheritable: u64,
    pub permitted: u64,
    pub ambient: u64,
}

impl From<boot::bundle::CapabilitySets> for Capabilities {
    fn from(c: boot::bundle::CapabilitySets) -> Self {
        Capabilities {
            bounding: c.bounding,
            effective: c.effective,
            inheritable: c.inheritable,
            permitted: c.permitted,
            ambient: c.ambient,
        }
    }
}

impl From<Capabilities> for boot::bundle::CapabilitySets {
    fn from(c: Capabilities) -> Self {
        boot::bundle::CapabilitySets {
            bounding: c.bounding,
            effective: c.effective,
            inheritable: c.inheritable,
            permitted: c.permitted,
            ambient: c.ambient,
        }
    }
}

/// A reply from the sandbox.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Ok,
    Error { message: String },
    Started { pid: i32 },
    Exited { status: i32 },
    Processes { list: Vec<(i32, i32, String)> },
    Usage { usage: crate::resources::Usage },
}

fn addr_in(dir: &impl AsRawFd) -> Result<UnixAddr, OciError> {
    let path = format!("/proc/self/fd/{}/{SOCKET}", dir.as_raw_fd());
    UnixAddr::new(path.as_str()).map_err(|e| OciError::io("socket address", e.into()))
}

fn open_dir(dir: &Path) -> Result<std::fs::File, OciError> {
    std::fs::File::open(dir).map_err(|e| OciError::io(format!("opening {}", dir.display()), e))
}

/// A new control socket (SOCK_SEQPACKET: one message per request).
fn new_socket() -> Result<OwnedFd, OciError> {
    socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(|e| OciError::io("control socket", e.into()))
}

/// Binds and listens on the control socket of the container directory `dir`.
pub fn listen(dir: &Path) -> Result<OwnedFd, OciError> {
    let d = open_dir(dir)?;
    let fd = new_socket()?;
    socket::bind(fd.as_raw_fd(), &addr_in(&d)?)
        .map_err(|e| OciError::io(format!("binding {}/{SOCKET}", dir.display()), e.into()))?;
    socket::listen(&fd, Backlog::new(64).unwrap_or(Backlog::MAXCONN))
        .map_err(|e| OciError::io("listening on the control socket", e.into()))?;
    Ok(fd)
}

/// Connects to the sandbox of the container directory `dir`.
pub fn connect(dir: &Path) -> Result<OwnedFd, OciError> {
    let d = open_dir(dir)?;
    let fd = new_socket()?;
    socket::connect(fd.as_raw_fd(), &addr_in(&d)?).map_err(|e| {
        OciError::io(
            format!("connecting to the sandbox ({}/{SOCKET})", dir.display()),
            e.into(),
        )
    })?;
    Ok(fd)
}

/// Accepts one connection.
pub fn accept(listener: &OwnedFd) -> Result<OwnedFd, OciError> {
    let raw = socket::accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC)
        .map_err(|e| OciError::io("accepting a control connection", e.into()))?;
    // SAFETY: accept4 returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Sends one message with `fds` attached.
pub fn send<T: Serialize>(sock: &impl AsFd, msg: &T, fds: &[RawFd]) -> Result<(), OciError> {
    let bytes = serde_json::to_vec(msg).map_err(|e| OciError::Invalid(e.to_string()))?;
    let iov = [IoSlice::new(&bytes)];
    let cmsg = [ControlMessage::ScmRights(fds)];
    let cmsgs: &[ControlMessage] = if fds.is_empty() { &[] } else { &cmsg };
    socket::sendmsg::<()>(
        sock.as_fd().as_raw_fd(),
        &iov,
        cmsgs,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(|e| OciError::io("sending to the sandbox", e.into()))?;
    Ok(())
}

/// Receives one message and the descriptors that came with it; None at end of stream.
pub fn recv<T: for<'de> Deserialize<'de>>(
    sock: &impl AsFd,
) -> Result<Option<(T, Vec<OwnedFd>)>, OciError> {
    let mut buf = vec![0u8; MAX_MESSAGE];
    let mut space = nix::cmsg_space!([RawFd; 8]);
    let (n, fds) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = loop {
            match socket::recvmsg::<()>(
                sock.as_fd().as_raw_fd(),
                &mut iov,
                Some(&mut space),
                MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Err(nix::errno::Errno::EINTR) => continue,
                r => break r,
            }
        }
        .map_err(|e| OciError::io("reading a control message", e.into()))?;
        let mut fds = Vec::new();
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmRights(raw) = c {
                    for fd in raw {
                        // SAFETY: SCM_RIGHTS gave us these new descriptors.
                        fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
                    }
                }
            }
        }
        (msg.bytes, fds)
    };
    if n == 0 {
        return Ok(None);
    }
    let v = serde_json::from_slice(&buf[..n])
        .map_err(|e| OciError::Invalid(format!("control message: {e}")))?;
    Ok(Some((v, fds)))
}

/// Sends `req` and returns the first reply (an error reply becomes an error).
pub fn call(dir: &Path, req: &Request, fds: &[RawFd]) -> Result<(OwnedFd, Reply), OciError> {
    call_within(dir, req, fds, None)
}

/// [`call`], giving up on the reply after `limit` (a sandbox stopped from outside answers
/// nothing).
pub fn call_within(
    dir: &Path,
    req: &Request,
    fds: &[RawFd],
    limit: Option<std::time::Duration>,
) -> Result<(OwnedFd, Reply), OciError> {
    let sock = connect(dir)?;
    if let Some(limit) = limit {
        let tv = nix::sys::time::TimeVal::new(
            limit.as_secs() as libc::time_t,
            limit.subsec_micros() as libc::suseconds_t,
        );
        socket::setsockopt(&sock, socket::sockopt::ReceiveTimeout, &tv)
            .map_err(|e| OciError::io("control socket timeout", e.into()))?;
    }
    send(&sock, req, fds)?;
    let reply = recv::<Reply>(&sock).map_err(|e| match (e, limit) {
        (OciError::Io { error, .. }, Some(limit))
            if error.kind() == std::io::ErrorKind::WouldBlock =>
        {
            OciError::Sandbox(format!("the sandbox did not answer within {limit:?}"))
        }
        (e, _) => e,
    })?;
    match reply {
        None => Err(OciError::Sandbox(
            "the sandbox closed the connection".into(),
        )),
        Some((Reply::Error { message }, _)) => Err(OciError::Sandbox(message)),
        Some((reply, _)) => Ok((sock, reply)),
    }
}

/// The window size a terminal starts with: `process.consoleSize` (Docker fills it in from
/// the client's terminal, so that the program's first TIOCGWINSZ sees the real size
/// instead of 0x0 before the first resize arrives).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConsoleSize {
    pub rows: u16,
    pub cols: u16,
}

impl ConsoleSize {
    /// From the spec's `consoleSize` box (height, width); sizes beyond a u16 are clamped.
    pub fn from_spec(p: &oci_spec::runtime::Process) -> Option<ConsoleSize> {
        let b = p.console_size()?;
        let clamp = |v: u64| u16::try_from(v).unwrap_or(u16::MAX);
        Some(ConsoleSize {
            rows: clamp(b.height()),
            cols: clamp(b.width()),
        })
    }
}

/// Makes the pty of a terminal process and hands its master to `--console-socket` as runc
/// does; returns the slave, sized `size` when the spec gave one.
pub fn open_console(socket_path: &Path, size: Option<ConsoleSize>) -> Result<OwnedFd, OciError> {
    let winsize = size.map(|s| nix::pty::Winsize {
        ws_row: s.rows,
        ws_col: s.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    });
    let pty =
        nix::pty::openpty(winsize.as_ref(), None).map_err(|e| OciError::io("openpty", e.into()))?;
    let name = nix::unistd::ttyname(pty.slave.as_fd())
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    send_console(socket_path, &pty.master, &name)?;
    Ok(pty.slave)
}

/// Sends a pty master to a `--console-socket` as runc does: a stream socket, the pty's name
/// as the data and the descriptor as SCM_RIGHTS.
fn send_console(socket_path: &Path, master: &impl AsRawFd, name: &str) -> Result<(), OciError> {
    let stream = std::os::unix::net::UnixStream::connect(socket_path).map_err(|e| {
        OciError::io(
            format!("connecting to the console socket {}", socket_path.display()),
            e,
        )
    })?;
    let iov = [IoSlice::new(name.as_bytes())];
    let fds = [master.as_raw_fd()];
    socket::sendmsg::<()>(
        stream.as_raw_fd(),
        &iov,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| OciError::io("sending the console", e.into()))?;
    Ok(())
}
