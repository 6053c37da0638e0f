//! AF_UNIX sockets: stream, datagram and seqpacket endpoints, their connections and queues,
//! control messages (SCM_RIGHTS, SCM_CREDENTIALS) and options, with Linux's semantics.
//!
//! The objects here know nothing of tasks, descriptor tables or names. The sentry resolves
//! addresses to sockets (the abstract-name and bound-path registries are its own), passes the
//! caller's credentials, installs received files in the receiver's table, and builds the
//! control messages.
//!
//! # State and locking
//!
//! Every endpoint's state lives in one table behind one lock, the way Linux's own
//! `unix_state_lock` pairs are almost always taken together: a send touches the sender (its
//! buffer accounting, its shutdown flags) and the receiver (its queue), a connect touches the
//! client, the listener and the new server-side socket, and the collection of in-flight
//! descriptors needs a consistent view of every queue. Endpoints refer to each other by id,
//! never by reference, so there are no reference cycles between them; a [`UnixSocket`] (the
//! open file's description) owns exactly one endpoint, and dropping it is `close`.
//!
//! Blocking follows the [`crate::waiter`] protocol: an operation that would block registers a
//! waiter on the queues whose notification can unblock it, then sleeps outside the lock. The
//! same queues serve poll and epoll ([`FileDescription::readiness`]). Notifications are
//! collected while the lock is held and sent after it is released.
//!
//! Nothing that may drop an [`OpenFile`] runs under the lock: passed descriptors leave the
//! table in returned values or in the context's garbage, which is dropped after unlocking
//! (dropping the last reference to a socket's file closes it, which takes the lock).
//!
//! # Buffers
//!
//! As on Linux, the bytes a socket has sent that are still queued at a receiver are charged
//! to the sender (`wmem`, with a fixed per-message overhead standing in for an skb's
//! truesize) and limited by its SO_SNDBUF; a datagram receiver not connected back to the
//! sender also accepts at most [`MAX_DGRAM_QLEN`]` + 1` queued messages. SO_RCVBUF is stored
//! and reported but limits nothing, as for Linux's unix sockets.
//!
//! # Descriptors in flight
//!
//! A file passed with SCM_RIGHTS is held by the message until it is received (and installed
//! in the receiver's table by the sentry) or the message is discarded: when the receiving
//! socket is closed, when a datagram socket is reconnected, or when the receiver reads it
//! with `read`/`recv` without a control buffer (or one too small: MSG_CTRUNC). A discarded
//! file is released; if that was its last reference it is closed, and a socket closed that
//! way discards its own queue in turn. Sockets sent over each other (or over themselves)
//! and then closed by every process would keep each other alive; [`collect_garbage`] finds
//! them as Linux's `unix_gc` does (sockets whose every reference is in flight and which no
//! live socket's queue can reach) and discards their queues. It runs whenever a unix socket
//! is closed or created and when descriptors are sent, so such a cycle lives at most until
//! the next of those.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::vfs::OpenFile;
use crate::waiter::{
    WaitQueue, Waiter, Wake, ALL_EVENTS, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDHUP, POLLRDNORM,
    POLLWRBAND, POLLWRNORM,
};
use crate::{Errno, FileDescription, Stat};

/// SO_SNDBUF and SO_RCVBUF of a new socket (Linux's net.core.wmem_default/rmem_default).
pub const DEFAULT_BUF: usize = 212_992;
/// Largest value an unprivileged SO_SNDBUF/SO_RCVBUF asks for is clamped to (Linux's default
/// net.core.wmem_max/rmem_max), before doubling.
pub const MAX_BUF: usize = 212_992;
/// Smallest SO_SNDBUF (Linux's SOCK_MIN_SNDBUF on x86-64).
pub const MIN_SNDBUF: usize = 4608;
/// Smallest SO_RCVBUF (Linux's SOCK_MIN_RCVBUF on x86-64).
pub const MIN_RCVBUF: usize = 2304;
/// net.unix.max_dgram_qlen: a datagram receiver holds at most this many + 1 messages from
/// senders it is not connected to.
pub const MAX_DGRAM_QLEN: usize = 10;
/// net.core.somaxconn: listen backlogs are clamped to it.
pub const SOMAXCONN: usize = 4096;
/// Most descriptors one SCM_RIGHTS message may carry.
pub const SCM_MAX_FD: usize = 253;
/// The uid and gid reported for credentials nobody attached (Linux's overflowuid/gid).
pub const OVERFLOW_ID: u32 = 65534;
/// Bytes charged to the sender per queued message on top of its data (an skb's overhead).
const MSG_OVERHEAD: usize = 768;
/// Largest piece a stream write is queued in.
const STREAM_CHUNK: usize = 32768;
/// sockfs's device number.
pub(crate) const SOCKFS_DEV: u64 = crate::dev::makedev(0, 8);
/// `sk_shutdown` bits.
pub const RCV_SHUTDOWN: u32 = 1;
pub const SEND_SHUTDOWN: u32 = 2;
const SHUTDOWN_MASK: u32 = RCV_SHUTDOWN | SEND_SHUTDOWN;
/// Offset of `sun_path` in `struct sockaddr_un`, and the structure's size.
pub const SUN_PATH_OFFSET: usize = 2;
pub const SOCKADDR_UN_SIZE: usize = 110;

const EV_IN: u32 = POLLIN | POLLRDNORM;
const EV_OUT: u32 = POLLOUT | POLLWRNORM | POLLWRBAND;

/// The socket types AF_UNIX supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockType {
    Stream,
    Dgram,
    SeqPacket,
}

impl SockType {
    /// The type argument of socket(2) without its flags. SOCK_RAW makes a datagram socket,
    /// as on Linux; other known types are ESOCKTNOSUPPORT and unknown ones EINVAL.
    pub fn from_raw(ty: i32) -> Result<SockType, Errno> {
        match ty {
            libc::SOCK_STREAM => Ok(SockType::Stream),
            libc::SOCK_DGRAM | libc::SOCK_RAW => Ok(SockType::Dgram),
            libc::SOCK_SEQPACKET => Ok(SockType::SeqPacket),
            0..=10 => Err(libc::ESOCKTNOSUPPORT),
            _ => Err(libc::EINVAL),
        }
    }

    /// The SOCK_* value (SO_TYPE).
    pub fn raw(self) -> i32 {
        match self {
            SockType::Stream => libc::SOCK_STREAM,
            SockType::Dgram => libc::SOCK_DGRAM,
            SockType::SeqPacket => libc::SOCK_SEQPACKET,
        }
    }

    fn connection_based(self) -> bool {
        self != SockType::Dgram
    }
}

/// `struct ucred`: who sent a message, or who is at the other end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ucred {
    pub pid: i32,
    pub uid: u32,
    pub gid: u32,
}

impl Ucred {
    /// Credentials of a message nobody attached any to (Linux: no pid, invalid ids).
    pub const NONE: Ucred = Ucred {
        pid: 0,
        uid: OVERFLOW_ID,
        gid: OVERFLOW_ID,
    };
    /// SO_PEERCRED of a socket without a peer.
    pub const NO_PEER: Ucred = Ucred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };

    /// The 12 bytes of `struct ucred`.
    pub fn to_bytes(self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[0..4].copy_from_slice(&self.pid.to_le_bytes());
        b[4..8].copy_from_slice(&self.uid.to_le_bytes());
        b[8..12].copy_from_slice(&self.gid.to_le_bytes());
        b
    }

    pub fn from_bytes(b: &[u8; 12]) -> Ucred {
        let word = |i: usize| [b[i], b[i + 1], b[i + 2], b[i + 3]];
        Ucred {
            pid: i32::from_le_bytes(word(0)),
            uid: u32::from_le_bytes(word(4)),
            gid: u32::from_le_bytes(word(8)),
        }
    }
}

/// A bound name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum UnixAddr {
    /// A file system path, as given to bind (relative paths stay relative).
    Path(Vec<u8>),
    /// An abstract name: the bytes of `sun_path` after its leading NUL, up to the address
    /// length (NULs included).
    Abstract(Vec<u8>),
}

impl UnixAddr {
    /// Parses a `sockaddr_un` of `raw.len()` bytes (the address length). `Ok(None)` is a
    /// bare family (length 2): autobind, when the caller allows it. Everything else that
    /// isn't a valid AF_UNIX address is EINVAL.
    pub fn parse(raw: &[u8], allow_bare: bool) -> Result<Option<UnixAddr>, Errno> {
        let family_ok =
            raw.len() >= 2 && u16::from_le_bytes([raw[0], raw[1]]) == libc::AF_UNIX as u16;
        if raw.len() == SUN_PATH_OFFSET && family_ok && allow_bare {
            return Ok(None);
        }
        if raw.len() <= SUN_PATH_OFFSET || raw.len() > SOCKADDR_UN_SIZE || !family_ok {
            return Err(libc::EINVAL);
        }
        let path = &raw[SUN_PATH_OFFSET..];
        if path[0] == 0 {
            return Ok(Some(UnixAddr::Abstract(path[1..].to_vec())));
        }
        let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
        Ok(Some(UnixAddr::Path(path[..end].to_vec())))
    }

    /// The `sockaddr_un` bytes getsockname and friends return, of Linux's exact length:
    /// 2 + strlen + 1 for a path, 2 + 1 + name length for an abstract name, 2 for none.
    pub fn to_sockaddr(addr: Option<&UnixAddr>) -> Vec<u8> {
        let mut out = (libc::AF_UNIX as u16).to_le_bytes().to_vec();
        match addr {
            None => {}
            Some(UnixAddr::Path(p)) => {
                out.extend_from_slice(p);
                out.push(0);
            }
            Some(UnixAddr::Abstract(n)) => {
                out.push(0);
                out.extend_from_slice(n);
            }
        }
        out
    }
}

// --- the table ---------------------------------------------------------------------------

/// One queued message (a datagram, or a piece of a stream).
struct Msg {
    data: Vec<u8>,
    /// Bytes already read (streams read messages piecewise).
    off: usize,
    files: Vec<Arc<OpenFile>>,
    /// The sender's credentials, when it, the receiver or nobody yet (a connection not yet
    /// accepted) asked for them, or when given explicitly.
    creds: Option<Ucred>,
    /// The sending endpoint, charged `charge` bytes until the message goes.
    sender: u64,
    charge: usize,
    /// The sender's address when it sent.
    from: Option<UnixAddr>,
}

impl Msg {
    fn left(&self) -> usize {
        self.data.len() - self.off
    }
}

struct Listen {
    backlog: usize,
    /// Connections made and not yet accepted: server-side endpoints already connected to
    /// their clients.
    pending: VecDeque<u64>,
}

/// An endpoint's state.
struct Ep {
    stype: SockType,
    /// This socket's readiness listeners.
    queue: WaitQueue,
    /// Senders (and connecting clients) waiting for room in this socket's queue.
    peer_wait: WaitQueue,
    addr: Option<UnixAddr>,
    listen: Option<Listen>,
    /// Linux's TCP_ESTABLISHED: connected (stream, seqpacket), or with a default peer (dgram).
    connected: bool,
    /// The connected peer or default destination. It may be gone (closed): then
    /// `peer_addr` keeps its address for getpeername.
    peer: Option<u64>,
    peer_addr: Option<UnixAddr>,
    /// A server-side endpoint not accepted yet (Linux: no `sk_socket`).
    embryo: bool,
    rx: VecDeque<Msg>,
    rx_bytes: usize,
    /// Bytes of this socket's messages still queued somewhere.
    wmem: usize,
    shutdown: u32,
    /// The pending error (SO_ERROR).
    err: i32,
    sndbuf: usize,
    rcvbuf: usize,
    passcred: bool,
    peercred: Option<Ucred>,
}

impl Ep {
    fn new(stype: SockType) -> Ep {
        Ep {
            stype,
            queue: WaitQueue::new(),
            peer_wait: WaitQueue::new(),
            addr: None,
            listen: None,
            connected: false,
            peer: None,
            peer_addr: None,
            embryo: false,
            rx: VecDeque::new(),
            rx_bytes: 0,
            wmem: 0,
            shutdown: 0,
            err: 0,
            sndbuf: DEFAULT_BUF,
            rcvbuf: DEFAULT_BUF,
            passcred: false,
            peercred: None,
        }
    }

    fn take_err(&mut self) -> i32 {
        std::mem::take(&mut self.err)
    }

    fn recvq_full(&self) -> bool {
        self.rx.len() > MAX_DGRAM_QLEN
    }

    /// Linux's unix_poll / unix_dgram_poll, minus the peer check (see [`readiness`]).
    fn events(&self) -> u32 {
        let mut ev = 0;
        if self.err != 0 {
            ev |= POLLERR;
        }
        if self.shutdown == SHUTDOWN_MASK {
            ev |= POLLHUP;
        }
        if self.shutdown & RCV_SHUTDOWN != 0 {
            ev |= POLLRDHUP | EV_IN;
        }
        let pending = self.listen.as_ref().is_some_and(|l| !l.pending.is_empty());
        if !self.rx.is_empty() || pending {
            ev |= EV_IN;
        }
        if self.stype.connection_based() && !self.connected && self.listen.is_none() {
            ev |= POLLHUP;
        }
        if self.listen.is_none() && self.wmem * 4 <= self.sndbuf {
            ev |= EV_OUT;
        }
        ev
    }
}

struct Table {
    eps: BTreeMap<u64, Ep>,
    next_id: u64,
}

static TABLE: Mutex<Table> = Mutex::new(Table {
    eps: BTreeMap::new(),
    next_id: 1,
});

/// Socket files queued in messages (changed under the table lock; read without it to skip
/// the collector when nothing is in flight).
static INFLIGHT: AtomicUsize = AtomicUsize::new(0);
static GC_RUNNING: AtomicBool = AtomicBool::new(false);

/// Notifications to send once the table is unlocked.
struct Notes(Vec<(WaitQueue, u32)>);

impl Drop for Notes {
    fn drop(&mut self) {
        for (q, ev) in self.0.drain(..) {
            q.notify(ev);
        }
    }
}

/// The locked table. Fields drop in order: the lock goes first, then the notifications are
/// sent, then discarded messages (and the files they hold) are dropped.
struct Ctx {
    tab: MutexGuard<'static, Table>,
    notes: Notes,
    garbage: Vec<Msg>,
}

impl Ctx {
    fn lock() -> Ctx {
        Ctx {
            tab: TABLE.lock().unwrap_or_else(|e| e.into_inner()),
            notes: Notes(Vec::new()),
            garbage: Vec::new(),
        }
    }

    fn note(&mut self, q: &WaitQueue, ev: u32) {
        self.notes.0.push((q.clone(), ev));
    }

    fn ep(&mut self, id: u64) -> Result<&mut Ep, Errno> {
        // A socket's endpoint lives as long as the socket: a miss is a closed peer.
        self.tab.eps.get_mut(&id).ok_or(libc::ECONNRESET)
    }

    fn new_ep(&mut self, stype: SockType) -> u64 {
        let id = self.tab.next_id;
        self.tab.next_id += 1;
        self.tab.eps.insert(id, Ep::new(stype));
        id
    }

    /// Queues `msg` at `to` (which must exist) and charges its sender.
    fn enqueue(&mut self, to: u64, msg: Msg) {
        let sockets = socket_files(&msg.files);
        if sockets > 0 {
            INFLIGHT.fetch_add(sockets, Ordering::Relaxed);
        }
        if let Some(s) = self.tab.eps.get_mut(&msg.sender) {
            s.wmem += msg.charge;
        }
        if let Some(ep) = self.tab.eps.get_mut(&to) {
            ep.rx_bytes += msg.left();
            ep.rx.push_back(msg);
            let q = ep.queue.clone();
            self.note(&q, EV_IN);
        }
    }

    /// Takes the files out of a queued message.
    fn take_files(msg: &mut Msg) -> Vec<Arc<OpenFile>> {
        let files = std::mem::take(&mut msg.files);
        let sockets = socket_files(&files);
        if sockets > 0 {
            INFLIGHT.fetch_sub(sockets, Ordering::Relaxed);
        }
        files
    }

    /// A message left its queue: its sender is no longer charged for it.
    fn uncharge(&mut self, msg: &Msg) {
        if let Some(s) = self.tab.eps.get_mut(&msg.sender) {
            s.wmem = s.wmem.saturating_sub(msg.charge);
            let q = s.queue.clone();
            self.note(&q, EV_OUT);
        }
    }

    /// Drops a message that nobody will receive (after the lock is released).
    fn discard(&mut self, mut msg: Msg) {
        self.uncharge(&msg);
        let files = Ctx::take_files(&mut msg);
        msg.files = files;
        self.garbage.push(msg);
    }

    /// Empties `id`'s queue.
    fn purge(&mut self, id: u64) {
        let Some(ep) = self.tab.eps.get_mut(&id) else {
            return;
        };
        let msgs: Vec<Msg> = ep.rx.drain(..).collect();
        ep.rx_bytes = 0;
        let pw = ep.peer_wait.clone();
        for m in msgs {
            self.discard(m);
        }
        self.note(&pw, EV_OUT);
    }

    /// Closes endpoint `id` (Linux's unix_release_sock). `embryo`: a connection closed before
    /// it was accepted, which resets its client.
    fn release(&mut self, id: u64, embryo: bool) {
        let Some(mut ep) = self.tab.eps.remove(&id) else {
            return;
        };
        let had_data = !ep.rx.is_empty();
        for m in ep.rx.drain(..) {
            self.discard(m);
        }
        if let Some(l) = ep.listen.take() {
            for e in l.pending {
                self.release(e, true);
            }
        }
        if let Some(p) = ep.peer {
            if let Some(peer) = self.tab.eps.get_mut(&p) {
                if ep.stype.connection_based() && peer.peer == Some(id) {
                    peer.shutdown = SHUTDOWN_MASK;
                    if had_data || embryo {
                        peer.err = libc::ECONNRESET;
                    }
                    peer.peer_addr = ep.addr.clone();
                    let q = peer.queue.clone();
                    self.note(&q, 0);
                }
            }
        }
        // Datagram sockets connected to this one find out when they next send; their
        // writability may change now.
        let followers: Vec<WaitQueue> = self
            .tab
            .eps
            .values_mut()
            .filter(|e| e.peer == Some(id))
            .map(|e| {
                e.peer_addr = ep.addr.clone();
                e.queue.clone()
            })
            .collect();
        for q in followers {
            self.note(&q, 0);
        }
        let (q, pw) = (ep.queue.clone(), ep.peer_wait.clone());
        self.note(&pw, 0);
        self.note(&q, 0);
    }

    /// A datagram socket left `old` (Linux's unix_dgram_disconnected): its queue is purged
    /// and, if `old` was connected back, `old` learns of it with ECONNRESET.
    fn dgram_disconnected(&mut self, id: u64, old: u64) {
        let nonempty = self.tab.eps.get(&id).is_some_and(|e| !e.rx.is_empty());
        if !nonempty {
            return;
        }
        self.purge(id);
        if let Some(o) = self.tab.eps.get_mut(&old) {
            if o.peer == Some(id) {
                o.err = libc::ECONNRESET;
                let q = o.queue.clone();
                self.note(&q, POLLERR);
            }
        }
    }

    /// After a datagram left `id`'s queue: senders waiting for room learn of it.
    fn dgram_room(&mut self, id: u64, was_full: bool) {
        let Some(ep) = self.tab.eps.get(&id) else {
            return;
        };
        let pw = ep.peer_wait.clone();
        let now_full = ep.recvq_full();
        self.note(&pw, EV_OUT);
        if was_full && !now_full {
            let followers: Vec<WaitQueue> = self
                .tab
                .eps
                .iter()
                .filter(|(&k, e)| k != id && e.peer == Some(id))
                .map(|(_, e)| e.queue.clone())
                .collect();
            for q in followers {
                self.note(&q, EV_OUT);
            }
        }
    }
}

/// How many of `files` are unix sockets.
fn socket_files(files: &[Arc<OpenFile>]) -> usize {
    files.iter().filter(|f| socket_of(f).is_some()).count()
}

fn socket_of(f: &OpenFile) -> Option<&UnixSocket> {
    f.special_desc()?.unix_socket()
}

/// The outcome of one attempt of a blocking operation.
enum Step<T> {
    Done(Result<T, Errno>),
    /// Would block; these queues' notifications may change that.
    Block(Vec<WaitQueue>),
}

/// Runs `step` (given the locked table and whether it may block) until it is done. A step
/// that would block when it may not gets EAGAIN, as does one still blocked when `timeout`
/// has passed. The sleep is the calling task's (see [`crate::waiter::current`]), so a signal
/// interrupts it: ERESTARTSYS, or EINTR when the socket has a timeout, which Linux never
/// restarts (`sock_intr_errno`).
fn run<T>(
    nonblock: bool,
    timeout: Option<Duration>,
    mut step: impl FnMut(&mut Ctx, bool) -> Step<T>,
) -> Result<T, Errno> {
    let deadline = timeout.and_then(|d| Instant::now().checked_add(d));
    let mut waiter: Option<Arc<Waiter>> = None;
    let mut expired = false;
    loop {
        let mut ctx = Ctx::lock();
        let can_block = !nonblock && !expired;
        let queues = match step(&mut ctx, can_block) {
            Step::Done(r) => return r,
            Step::Block(_) if !can_block => return Err(libc::EAGAIN),
            Step::Block(queues) => queues,
        };
        let w = waiter
            .get_or_insert_with(|| crate::waiter::current().unwrap_or_default())
            .clone();
        w.reset();
        // Registered before the lock goes: a change made after it notifies the waiter.
        let regs: Vec<_> = queues.iter().map(|q| q.register(&w, ALL_EVENTS)).collect();
        drop(ctx);
        match w.wait(deadline) {
            Wake::Notified => {}
            Wake::TimedOut => expired = true,
            Wake::Interrupted if timeout.is_some() => return Err(libc::EINTR),
            Wake::Interrupted => return Err(crate::waiter::ERESTARTSYS),
        }
        drop(regs);
    }
}

/// Whether the socket with this id is still open (registries drop names of closed sockets).
pub fn socket_exists(id: u64) -> bool {
    Ctx::lock().tab.eps.contains_key(&id)
}

/// Finds sockets kept alive only by messages in flight between unreachable sockets and
/// discards their queues (Linux's unix_gc). Cheap when no socket is in flight.
pub fn collect_garbage() {
    if INFLIGHT.load(Ordering::Relaxed) == 0 || GC_RUNNING.swap(true, Ordering::Acquire) {
        return;
    }
    let mut ctx = Ctx::lock();
    gc(&mut ctx);
    // Unlock, then drop the discarded messages: closing their files may close sockets,
    // whose own release must not run the collector again (GC_RUNNING) but may lock.
    drop(ctx);
    GC_RUNNING.store(false, Ordering::Release);
}

fn gc(ctx: &mut Ctx) {
    // References to each socket's file held by queued messages, and the file's reference
    // count (usize::MAX when something other than its open file holds the socket).
    let mut refs: BTreeMap<u64, (usize, usize)> = BTreeMap::new();
    for ep in ctx.tab.eps.values() {
        for f in ep.rx.iter().flat_map(|m| m.files.iter()) {
            let Some(sock) = socket_of(f) else { continue };
            let sole = f.special_desc().is_some_and(|d| Arc::strong_count(d) == 1);
            let count = if sole {
                Arc::strong_count(f)
            } else {
                usize::MAX
            };
            refs.entry(sock.id).or_insert((0, count)).0 += 1;
        }
    }
    // Sockets whose every reference is in flight.
    let candidates: BTreeSet<u64> = refs
        .iter()
        .filter(|(_, &(n, count))| n == count)
        .map(|(&id, _)| id)
        .collect();
    if candidates.is_empty() {
        return;
    }
    let embryos: BTreeSet<u64> = ctx
        .tab
        .eps
        .values()
        .filter_map(|e| e.listen.as_ref())
        .flat_map(|l| l.pending.iter().copied())
        .collect();
    // Mark everything reachable from a socket some process still holds.
    let mut marked: BTreeSet<u64> = BTreeSet::new();
    let mut work: Vec<u64> = ctx
        .tab
        .eps
        .keys()
        .copied()
        .filter(|id| !candidates.contains(id) && !embryos.contains(id))
        .collect();
    while let Some(id) = work.pop() {
        if !marked.insert(id) {
            continue;
        }
        let Some(ep) = ctx.tab.eps.get(&id) else {
            continue;
        };
        for f in ep.rx.iter().flat_map(|m| m.files.iter()) {
            if let Some(s) = socket_of(f) {
                work.push(s.id);
            }
        }
        if let Some(l) = &ep.listen {
            work.extend(l.pending.iter().copied());
        }
    }
    let dead: Vec<u64> = ctx
        .tab
        .eps
        .keys()
        .copied()
        .filter(|id| !marked.contains(id))
        .collect();
    for id in dead {
        ctx.purge(id);
    }
}

// --- sockets -----------------------------------------------------------------------------

/// Options of [`UnixSocket::send`].
pub struct SendOpts {
    /// The destination given with sendto/sendmsg, as the sentry resolved it (a socket id, or
    /// the error finding one gave). None: the connected peer.
    pub to: Option<Result<u64, Errno>>,
    /// Files to pass (SCM_RIGHTS).
    pub files: Vec<Arc<OpenFile>>,
    /// The sender's credentials, attached when the sender or receiver wants them.
    pub creds: Ucred,
    /// Credentials given with SCM_CREDENTIALS (already checked by the caller).
    pub explicit_creds: Option<Ucred>,
    pub nonblock: bool,
}

/// Options of [`UnixSocket::recv`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RecvOpts {
    pub peek: bool,
    /// MSG_WAITALL (streams only).
    pub waitall: bool,
    /// MSG_TRUNC: return a datagram's full length.
    pub trunc: bool,
    pub nonblock: bool,
}

/// What a receive got.
#[derive(Default)]
pub struct Received {
    pub data: Vec<u8>,
    /// The call's result: the bytes copied, or a datagram's full length with MSG_TRUNC.
    pub len: usize,
    /// A datagram didn't fit (MSG_TRUNC in msg_flags).
    pub truncated: bool,
    /// The sender's address (None: unnamed, or nothing received).
    pub from: Option<UnixAddr>,
    /// Files passed with the data (SCM_RIGHTS); the caller installs or drops them.
    pub files: Vec<Arc<OpenFile>>,
    /// The sender's credentials, when the socket has SO_PASSCRED (SCM_CREDENTIALS).
    pub creds: Option<Ucred>,
}

/// /proc/net/unix: every AF_UNIX socket of the sandbox, in Linux's format (unix_seq_show).
/// The kernel address column is zeros, as Linux shows it to a reader without CAP_SYSLOG
/// under kptr_restrict; the reference count is the usual 2 of a socket with one file.
pub fn proc_net_unix() -> Vec<u8> {
    const ACCEPTCON: u32 = 1 << 16;
    let (unconnected, connecting, connected, disconnecting) = (1, 2, 3, 4);
    let mut out = b"Num       RefCount Protocol Flags    Type St Inode Path\n".to_vec();
    let ctx = Ctx::lock();
    for (id, ep) in &ctx.tab.eps {
        let established = ep.connected && ep.peer.is_some();
        // Linux: a socket with a file is connected or unconnected; an embryo (accepted by
        // nobody yet) connecting or disconnecting.
        let state = match (ep.embryo, established) {
            (false, true) => connected,
            (false, false) => unconnected,
            (true, true) => connecting,
            (true, false) => disconnecting,
        };
        let ty = match ep.stype {
            SockType::Stream => libc::SOCK_STREAM,
            SockType::Dgram => libc::SOCK_DGRAM,
            SockType::SeqPacket => libc::SOCK_SEQPACKET,
        };
        let flags = if ep.listen.is_some() { ACCEPTCON } else { 0 };
        // Linux's inode column is the socket file's; an embryo has none yet.
        let id = if ep.embryo { 0 } else { *id };
        out.extend_from_slice(
            format!("0000000000000000: 00000002 00000000 {flags:08X} {ty:04X} {state:02X} {id:5}")
                .as_bytes(),
        );
        match &ep.addr {
            Some(UnixAddr::Path(p)) => {
                out.push(b' ');
                out.extend_from_slice(p);
            }
            Some(UnixAddr::Abstract(name)) => {
                out.extend_from_slice(b" @");
                out.extend(name.iter().map(|&b| if b == 0 { b'@' } else { b }));
            }
            None => {}
        }
        out.push(b'\n');
    }
    out
}

/// An AF_UNIX socket: the description an open socket file refers to. Dropping it closes
/// the socket.
pub struct UnixSocket {
    id: u64,
    stype: SockType,
    /// Who created it: the credentials `write` attaches, and the owner fstat shows.
    owner: Ucred,
    queue: WaitQueue,
    /// SO_RCVTIMEO and SO_SNDTIMEO in nanoseconds (0: none).
    rcvtimeo: AtomicU64,
    sndtimeo: AtomicU64,
    /// Options stored and reported back without effect (SO_REUSEADDR, SO_KEEPALIVE, ...).
    stored: Mutex<BTreeMap<i32, Vec<u8>>>,
}

impl Drop for UnixSocket {
    fn drop(&mut self) {
        let mut ctx = Ctx::lock();
        ctx.release(self.id, false);
        drop(ctx);
        collect_garbage();
    }
}

fn timeout_of(ns: &AtomicU64) -> Option<Duration> {
    match ns.load(Ordering::Relaxed) {
        0 => None,
        n => Some(Duration::from_nanos(n)),
    }
}

impl UnixSocket {
    fn wrap(id: u64, stype: SockType, owner: Ucred, queue: WaitQueue) -> Arc<UnixSocket> {
        Arc::new(UnixSocket {
            id,
            stype,
            owner,
            queue,
            rcvtimeo: AtomicU64::new(0),
            sndtimeo: AtomicU64::new(0),
            stored: Mutex::new(BTreeMap::new()),
        })
    }

    /// A new unbound, unconnected socket created by `owner`.
    pub fn new(stype: SockType, owner: Ucred) -> Arc<UnixSocket> {
        collect_garbage();
        let mut ctx = Ctx::lock();
        let id = ctx.new_ep(stype);
        let queue = ctx.tab.eps[&id].queue.clone();
        drop(ctx);
        UnixSocket::wrap(id, stype, owner, queue)
    }

    /// socketpair: two sockets connected to each other, each with `owner` as its peer's
    /// credentials.
    pub fn pair(
        stype: SockType,
        owner: Ucred,
        peercred: Ucred,
    ) -> (Arc<UnixSocket>, Arc<UnixSocket>) {
        collect_garbage();
        let mut ctx = Ctx::lock();
        let a = ctx.new_ep(stype);
        let b = ctx.new_ep(stype);
        for (x, y) in [(a, b), (b, a)] {
            if let Some(e) = ctx.tab.eps.get_mut(&x) {
                e.peer = Some(y);
                e.connected = true;
                e.peercred = Some(peercred);
            }
        }
        let qa = ctx.tab.eps[&a].queue.clone();
        let qb = ctx.tab.eps[&b].queue.clone();
        drop(ctx);
        (
            UnixSocket::wrap(a, stype, owner, qa),
            UnixSocket::wrap(b, stype, owner, qb),
        )
    }

    /// The socket's identity, for the sentry's name registries and [`connect`](Self::connect).
    /// Ids are never reused.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn sock_type(&self) -> SockType {
        self.stype
    }

    /// Read a property of this socket's endpoint.
    fn with<T>(&self, f: impl FnOnce(&mut Ep) -> T) -> Result<T, Errno> {
        let mut ctx = Ctx::lock();
        let ep = ctx.ep(self.id)?;
        Ok(f(ep))
    }

    /// The bound address (None: unbound).
    pub fn local_addr(&self) -> Option<UnixAddr> {
        self.with(|e| e.addr.clone()).ok().flatten()
    }

    /// The peer's address (None: the peer is unbound). ENOTCONN without a peer.
    pub fn peer_addr(&self) -> Result<Option<UnixAddr>, Errno> {
        let mut ctx = Ctx::lock();
        let ep = ctx.ep(self.id)?;
        let peer = ep.peer.ok_or(libc::ENOTCONN)?;
        let cached = ep.peer_addr.clone();
        Ok(match ctx.tab.eps.get(&peer) {
            Some(p) => p.addr.clone(),
            None => cached,
        })
    }

    /// Gives the socket a name (the caller has made sure nobody else has it). EINVAL if the
    /// socket already has one.
    pub fn bind(&self, addr: UnixAddr) -> Result<(), Errno> {
        self.with(|e| {
            if e.addr.is_some() {
                return Err(libc::EINVAL);
            }
            e.addr = Some(addr);
            Ok(())
        })?
    }

    /// listen(2), with Linux's clamping of the backlog (a negative one is the maximum).
    /// `creds` become the peer credentials of those who connect.
    pub fn listen(&self, backlog: i32, creds: Ucred) -> Result<(), Errno> {
        if self.stype == SockType::Dgram {
            return Err(libc::EOPNOTSUPP);
        }
        let backlog = (backlog as u32 as usize).min(SOMAXCONN);
        let mut ctx = Ctx::lock();
        let ep = ctx.ep(self.id)?;
        if ep.addr.is_none() || ep.connected {
            return Err(libc::EINVAL);
        }
        ep.peercred = Some(creds);
        match &mut ep.listen {
            Some(l) => {
                let grew = backlog > l.backlog;
                l.backlog = backlog;
                if grew {
                    let pw = ep.peer_wait.clone();
                    ctx.note(&pw, EV_OUT);
                }
            }
            None => {
                ep.listen = Some(Listen {
                    backlog,
                    pending: VecDeque::new(),
                })
            }
        }
        Ok(())
    }

    /// accept(2): the next connection, as a socket owned by `owner`.
    pub fn accept(&self, owner: Ucred, nonblock: bool) -> Result<Arc<UnixSocket>, Errno> {
        if self.stype == SockType::Dgram {
            return Err(libc::EOPNOTSUPP);
        }
        let (id, queue) = run(nonblock, timeout_of(&self.rcvtimeo), |ctx, _| {
            let me = match ctx.ep(self.id) {
                Ok(me) => me,
                Err(e) => return Step::Done(Err(e)),
            };
            let passcred = me.passcred;
            let Some(l) = me.listen.as_mut() else {
                return Step::Done(Err(libc::EINVAL));
            };
            if let Some(e) = l.pending.pop_front() {
                let pw = me.peer_wait.clone();
                ctx.note(&pw, EV_OUT);
                let Some(new) = ctx.tab.eps.get_mut(&e) else {
                    return Step::Done(Err(libc::ECONNABORTED));
                };
                new.embryo = false;
                new.passcred = passcred;
                return Step::Done(Ok((e, new.queue.clone())));
            }
            if me.err != 0 {
                return Step::Done(Err(me.take_err()));
            }
            if me.shutdown & RCV_SHUTDOWN != 0 {
                return Step::Done(Err(libc::EINVAL));
            }
            Step::Block(vec![me.queue.clone()])
        })?;
        Ok(UnixSocket::wrap(id, self.stype, owner, queue))
    }

    /// connect(2) to the socket `target` (as the sentry resolved the address). Stream and
    /// seqpacket sockets connect to a listener: the connection waits in its backlog until
    /// accepted, and `creds` are what the accepted socket sees as its peer's. Datagram
    /// sockets set their default destination.
    pub fn connect(
        &self,
        target: Result<u64, Errno>,
        creds: Ucred,
        nonblock: bool,
    ) -> Result<(), Errno> {
        if self.stype == SockType::Dgram {
            return self.connect_dgram(target);
        }
        let target = target?;
        run(nonblock, timeout_of(&self.sndtimeo), |ctx, _| {
            let Some(other) = ctx.tab.eps.get(&target) else {
                return Step::Done(Err(libc::ECONNREFUSED));
            };
            if other.stype != self.stype {
                return Step::Done(Err(libc::EPROTOTYPE));
            }
            let Some(l) = other.listen.as_ref() else {
                return Step::Done(Err(libc::ECONNREFUSED));
            };
            if other.shutdown & RCV_SHUTDOWN != 0 {
                return Step::Done(Err(libc::ECONNREFUSED));
            }
            if l.pending.len() > l.backlog {
                return Step::Block(vec![other.peer_wait.clone()]);
            }
            let (other_addr, other_cred) = (other.addr.clone(), other.peercred);
            let me = match ctx.ep(self.id) {
                Ok(me) => me,
                Err(e) => return Step::Done(Err(e)),
            };
            if me.connected {
                return Step::Done(Err(libc::EISCONN));
            }
            if me.listen.is_some() {
                return Step::Done(Err(libc::EINVAL));
            }
            let my_addr = me.addr.clone();
            let e = ctx.new_ep(self.stype);
            if let Some(new) = ctx.tab.eps.get_mut(&e) {
                new.addr = other_addr.clone();
                new.peer = Some(self.id);
                new.peer_addr = my_addr;
                new.connected = true;
                new.embryo = true;
                new.peercred = Some(creds);
            }
            if let Some(me) = ctx.tab.eps.get_mut(&self.id) {
                me.peer = Some(e);
                me.peer_addr = other_addr;
                me.connected = true;
                me.peercred = other_cred;
            }
            if let Some(other) = ctx.tab.eps.get_mut(&target) {
                if let Some(l) = other.listen.as_mut() {
                    l.pending.push_back(e);
                }
                let q = other.queue.clone();
                ctx.note(&q, EV_IN);
            }
            Step::Done(Ok(()))
        })
    }

    fn connect_dgram(&self, target: Result<u64, Errno>) -> Result<(), Errno> {
        let target = target?;
        let mut ctx = Ctx::lock();
        let Some(other) = ctx.tab.eps.get(&target) else {
            return Err(libc::ECONNREFUSED);
        };
        if other.stype != self.stype {
            return Err(libc::EPROTOTYPE);
        }
        if other.peer.is_some_and(|p| p != self.id) {
            return Err(libc::EPERM);
        }
        let addr = other.addr.clone();
        let me = ctx.ep(self.id)?;
        let old = me.peer.replace(target);
        me.peer_addr = addr;
        me.connected = true;
        let q = me.queue.clone();
        ctx.note(&q, EV_OUT);
        if let Some(old) = old.filter(|&o| o != target) {
            ctx.dgram_disconnected(self.id, old);
        }
        Ok(())
    }

    /// connect(AF_UNSPEC) on a datagram socket: forget the default destination.
    pub fn disconnect(&self) -> Result<(), Errno> {
        let mut ctx = Ctx::lock();
        let me = ctx.ep(self.id)?;
        let old = me.peer.take();
        me.peer_addr = None;
        me.connected = false;
        if let Some(old) = old {
            ctx.dgram_disconnected(self.id, old);
        }
        Ok(())
    }

    /// shutdown(2): SHUT_RD, SHUT_WR or SHUT_RDWR. A connected peer sees the mirror image
    /// (EOF after our SHUT_WR, EPIPE after our SHUT_RD). Unconnected sockets may shut down.
    pub fn shutdown(&self, how: i32) -> Result<(), Errno> {
        if !(libc::SHUT_RD..=libc::SHUT_RDWR).contains(&how) {
            return Err(libc::EINVAL);
        }
        let mode = (how + 1) as u32;
        let mut ctx = Ctx::lock();
        let me = ctx.ep(self.id)?;
        me.shutdown |= mode;
        let peer = me.peer;
        let (q, pw) = (me.queue.clone(), me.peer_wait.clone());
        ctx.note(&q, 0);
        ctx.note(&pw, 0);
        if let (Some(p), true) = (peer, self.stype.connection_based()) {
            if let Some(peer) = ctx.tab.eps.get_mut(&p) {
                let mut peer_mode = 0;
                if mode & RCV_SHUTDOWN != 0 {
                    peer_mode |= SEND_SHUTDOWN;
                }
                if mode & SEND_SHUTDOWN != 0 {
                    peer_mode |= RCV_SHUTDOWN;
                }
                peer.shutdown |= peer_mode;
                let q = peer.queue.clone();
                ctx.note(&q, 0);
            }
        }
        Ok(())
    }

    /// sendmsg: `data` with `opts`' files and credentials. Streams take what fits and block
    /// for the rest (a non-blocking send returns what it queued); datagrams and seqpackets go
    /// whole or not at all.
    pub fn send(&self, data: &[u8], opts: SendOpts) -> Result<usize, Errno> {
        if self.stype == SockType::Stream {
            self.send_stream(data, opts)
        } else {
            self.send_dgram(data, opts)
        }
    }

    /// The credentials a message carries to `other`.
    fn msg_creds(me: &Ep, other: &Ep, opts: &SendOpts) -> Option<Ucred> {
        opts.explicit_creds
            .or_else(|| (me.passcred || other.passcred || other.embryo).then_some(opts.creds))
    }

    fn send_stream(&self, data: &[u8], mut opts: SendOpts) -> Result<usize, Errno> {
        let mut sent = 0usize;
        let mut first = true;
        let has_to = opts.to.is_some();
        let timeout = timeout_of(&self.sndtimeo);
        let nonblock = opts.nonblock;
        let r = run(nonblock, timeout, |ctx, can_block| {
            let partial =
                |sent: usize, e: Errno| Step::Done(if sent > 0 { Ok(sent) } else { Err(e) });
            let me = match ctx.ep(self.id) {
                Ok(me) => me,
                Err(e) => return Step::Done(Err(e)),
            };
            if first {
                first = false;
                if has_to {
                    return Step::Done(Err(if me.connected {
                        libc::EISCONN
                    } else {
                        libc::EOPNOTSUPP
                    }));
                }
                if me.peer.is_none() {
                    return Step::Done(Err(libc::ENOTCONN));
                }
                if me.shutdown & SEND_SHUTDOWN != 0 {
                    return Step::Done(Err(libc::EPIPE));
                }
                if data.is_empty() {
                    return Step::Done(Ok(0));
                }
            }
            while sent < data.len() {
                let me = match ctx.ep(self.id) {
                    Ok(me) => me,
                    Err(e) => return partial(sent, e),
                };
                if me.err != 0 {
                    let e = me.take_err();
                    return partial(sent, e);
                }
                if me.shutdown & SEND_SHUTDOWN != 0 {
                    return partial(sent, libc::EPIPE);
                }
                if me.wmem >= me.sndbuf {
                    if sent > 0 && !can_block {
                        return Step::Done(Ok(sent));
                    }
                    return Step::Block(vec![me.queue.clone()]);
                }
                let size = (data.len() - sent)
                    .min((me.sndbuf / 2).saturating_sub(64).max(1))
                    .min(STREAM_CHUNK);
                let from = me.addr.clone();
                let Some(peer) = me.peer else {
                    return partial(sent, libc::ENOTCONN);
                };
                let creds = {
                    let me = &ctx.tab.eps[&self.id];
                    match ctx.tab.eps.get(&peer) {
                        Some(other) if other.shutdown & RCV_SHUTDOWN == 0 => {
                            UnixSocket::msg_creds(me, other, &opts)
                        }
                        _ => return partial(sent, libc::EPIPE),
                    }
                };
                let msg = Msg {
                    data: data[sent..sent + size].to_vec(),
                    off: 0,
                    // Files go with the first piece.
                    files: std::mem::take(&mut opts.files),
                    creds,
                    sender: self.id,
                    charge: size + MSG_OVERHEAD,
                    from,
                };
                ctx.enqueue(peer, msg);
                sent += size;
            }
            Step::Done(Ok(sent))
        });
        // Files not sent (an error before the first piece) are dropped here, unlocked.
        drop(opts);
        r
    }

    fn send_dgram(&self, data: &[u8], mut opts: SendOpts) -> Result<usize, Errno> {
        let seqpacket = self.stype == SockType::SeqPacket;
        let mut first = true;
        let timeout = timeout_of(&self.sndtimeo);
        let nonblock = opts.nonblock;
        let to = if seqpacket { None } else { opts.to.take() };
        let r = run(nonblock, timeout, |ctx, _| {
            let me = match ctx.ep(self.id) {
                Ok(me) => me,
                Err(e) => return Step::Done(Err(e)),
            };
            if first {
                first = false;
                if seqpacket {
                    if me.err != 0 {
                        return Step::Done(Err(me.take_err()));
                    }
                    if !me.connected {
                        return Step::Done(Err(libc::ENOTCONN));
                    }
                } else if to.is_none() && me.peer.is_none() {
                    return Step::Done(Err(libc::ENOTCONN));
                }
                if data.len() > me.sndbuf.saturating_sub(32) {
                    return Step::Done(Err(libc::EMSGSIZE));
                }
            }
            if me.err != 0 {
                return Step::Done(Err(me.take_err()));
            }
            if me.shutdown & SEND_SHUTDOWN != 0 {
                return Step::Done(Err(libc::EPIPE));
            }
            if me.wmem >= me.sndbuf {
                return Step::Block(vec![me.queue.clone()]);
            }
            let from = me.addr.clone();
            let target = match &to {
                Some(Ok(id)) => *id,
                Some(Err(e)) => return Step::Done(Err(*e)),
                None => match me.peer {
                    Some(p) => p,
                    None => return Step::Done(Err(libc::ENOTCONN)),
                },
            };
            let Some(other) = ctx.tab.eps.get(&target) else {
                if to.is_some() {
                    return Step::Done(Err(libc::ECONNREFUSED));
                }
                if seqpacket {
                    return Step::Done(Err(libc::EPIPE));
                }
                // The connected peer is gone: disconnect, and say so once.
                if let Some(me) = ctx.tab.eps.get_mut(&self.id) {
                    me.peer = None;
                    me.connected = false;
                }
                ctx.dgram_disconnected(self.id, target);
                return Step::Done(Err(libc::ECONNREFUSED));
            };
            if other.stype != self.stype {
                return Step::Done(Err(libc::EPROTOTYPE));
            }
            if other.peer.is_some_and(|p| p != self.id) {
                return Step::Done(Err(libc::EPERM));
            }
            if other.shutdown & RCV_SHUTDOWN != 0 {
                return Step::Done(Err(libc::EPIPE));
            }
            if target != self.id && other.peer != Some(self.id) && other.recvq_full() {
                let me = &ctx.tab.eps[&self.id];
                return Step::Block(vec![me.queue.clone(), other.peer_wait.clone()]);
            }
            let creds = UnixSocket::msg_creds(&ctx.tab.eps[&self.id], other, &opts);
            let msg = Msg {
                data: data.to_vec(),
                off: 0,
                files: std::mem::take(&mut opts.files),
                creds,
                sender: self.id,
                charge: data.len() + MSG_OVERHEAD,
                from,
            };
            ctx.enqueue(target, msg);
            Step::Done(Ok(data.len()))
        });
        drop(opts);
        r
    }

    /// recvmsg: up to `max` bytes. Streams gather queued pieces (stopping after one that
    /// carried files, and before one from other credentials when SO_PASSCRED is set) and
    /// with MSG_WAITALL wait for all of `max`; datagrams and seqpackets return one message.
    pub fn recv(&self, max: usize, opts: RecvOpts) -> Result<Received, Errno> {
        if self.stype == SockType::Stream {
            self.recv_stream(max, opts)
        } else {
            self.recv_dgram(max, opts)
        }
    }

    fn recv_stream(&self, max: usize, opts: RecvOpts) -> Result<Received, Errno> {
        let mut out = Received::default();
        let mut first_creds: Option<Ucred> = None;
        let mut from_set = false;
        let mut first = true;
        let mut passcred = false;
        let target = if opts.waitall { max.max(1) } else { 1 };
        let r = run(
            opts.nonblock,
            timeout_of(&self.rcvtimeo),
            |ctx, can_block| {
                let me = match ctx.ep(self.id) {
                    Ok(me) => me,
                    Err(e) => return Step::Done(Err(e)),
                };
                if first {
                    first = false;
                    if !me.connected {
                        return Step::Done(Err(libc::EINVAL));
                    }
                }
                passcred = me.passcred;
                let mut idx = 0;
                loop {
                    let me = match ctx.ep(self.id) {
                        Ok(me) => me,
                        Err(e) => return Step::Done(Err(e)),
                    };
                    let Some(msg) = me.rx.get_mut(idx) else {
                        if out.data.len() >= target {
                            break;
                        }
                        if me.err != 0 {
                            let e = me.take_err();
                            if out.data.is_empty() {
                                return Step::Done(Err(e));
                            }
                            break;
                        }
                        if me.shutdown & RCV_SHUTDOWN != 0 || (opts.peek && !out.data.is_empty()) {
                            break;
                        }
                        if !can_block && !out.data.is_empty() {
                            break;
                        }
                        return Step::Block(vec![me.queue.clone()]);
                    };
                    let mc = msg.creds.unwrap_or(Ucred::NONE);
                    if passcred {
                        match first_creds {
                            Some(c) if c != mc => break,
                            Some(_) => {}
                            None => first_creds = Some(mc),
                        }
                    }
                    if !from_set {
                        from_set = true;
                        out.from = msg.from.clone();
                    }
                    let chunk = msg.left().min(max - out.data.len());
                    out.data
                        .extend_from_slice(&msg.data[msg.off..msg.off + chunk]);
                    if opts.peek {
                        if !msg.files.is_empty() {
                            out.files.extend(msg.files.iter().cloned());
                            break;
                        }
                        idx += 1;
                    } else {
                        msg.off += chunk;
                        me.rx_bytes = me.rx_bytes.saturating_sub(chunk);
                        let had_files = !msg.files.is_empty();
                        if had_files {
                            out.files.extend(Ctx::take_files(msg));
                        }
                        if msg.left() > 0 {
                            break;
                        }
                        if let Some(done) = me.rx.pop_front() {
                            ctx.uncharge(&done);
                        }
                        if had_files {
                            break;
                        }
                    }
                    if out.data.len() >= max {
                        break;
                    }
                }
                Step::Done(Ok(()))
            },
        );
        r?;
        if passcred {
            // Linux reports the first piece's credentials, or zeroes when nothing was read.
            out.creds = Some(first_creds.unwrap_or_default());
        }
        out.len = out.data.len();
        Ok(out)
    }

    fn recv_dgram(&self, max: usize, opts: RecvOpts) -> Result<Received, Errno> {
        let seqpacket = self.stype == SockType::SeqPacket;
        let mut first = true;
        run(
            opts.nonblock,
            timeout_of(&self.rcvtimeo),
            |ctx, can_block| {
                let me = match ctx.ep(self.id) {
                    Ok(me) => me,
                    Err(e) => return Step::Done(Err(e)),
                };
                if first {
                    first = false;
                    if seqpacket && !me.connected {
                        return Step::Done(Err(libc::ENOTCONN));
                    }
                }
                if me.err != 0 {
                    return Step::Done(Err(me.take_err()));
                }
                let passcred = me.passcred;
                let was_full = me.recvq_full();
                let Some(msg) = me.rx.front_mut() else {
                    // After SHUT_RD (or the peer's close) an empty queue is EOF, except that a
                    // datagram socket that may not block says EAGAIN.
                    if me.shutdown & RCV_SHUTDOWN != 0 && (seqpacket || can_block) {
                        return Step::Done(Ok(Received::default()));
                    }
                    return Step::Block(vec![me.queue.clone()]);
                };
                let full = msg.data.len();
                let n = full.min(max);
                let mut out = Received {
                    data: msg.data[..n].to_vec(),
                    len: if opts.trunc { full } else { n },
                    truncated: n < full,
                    from: msg.from.clone(),
                    files: Vec::new(),
                    creds: passcred.then(|| msg.creds.unwrap_or(Ucred::NONE)),
                };
                if opts.peek {
                    out.files = msg.files.clone();
                } else {
                    out.files = Ctx::take_files(msg);
                    me.rx_bytes = me.rx_bytes.saturating_sub(full);
                    if let Some(done) = me.rx.pop_front() {
                        ctx.uncharge(&done);
                    }
                    ctx.dgram_room(self.id, was_full);
                }
                Step::Done(Ok(out))
            },
        )
    }

    /// FIONREAD/SIOCINQ: every unread byte of a stream or seqpacket socket, the next
    /// datagram's size; EINVAL on a listening socket.
    pub fn bytes_queued(&self) -> Result<usize, Errno> {
        self.with(|e| {
            if e.listen.is_some() {
                return Err(libc::EINVAL);
            }
            Ok(match e.stype {
                SockType::Dgram => e.rx.front().map_or(0, |m| m.data.len()),
                _ => e.rx_bytes,
            })
        })?
    }

    /// SIOCOUTQ: what the socket has sent that its peer hasn't read yet, as its send buffer
    /// counts it (Linux's unix_outq_len); EINVAL on a listening socket.
    pub fn bytes_unread_by_peer(&self) -> Result<usize, Errno> {
        self.with(|e| {
            if e.listen.is_some() {
                return Err(libc::EINVAL);
            }
            Ok(e.wmem)
        })?
    }

    // --- options -------------------------------------------------------------------------

    /// SO_SNDBUF (`force`: SO_SNDBUFFORCE, not clamped). Linux stores twice the value.
    pub fn set_sndbuf(&self, val: i32, force: bool) -> Result<(), Errno> {
        let v = if force {
            val.max(0) as usize
        } else {
            (val as u32 as usize).min(MAX_BUF)
        };
        let v = v.min(i32::MAX as usize / 2);
        let mut ctx = Ctx::lock();
        let me = ctx.ep(self.id)?;
        me.sndbuf = (v * 2).max(MIN_SNDBUF);
        let q = me.queue.clone();
        ctx.note(&q, EV_OUT);
        Ok(())
    }

    /// SO_RCVBUF (`force`: SO_RCVBUFFORCE).
    pub fn set_rcvbuf(&self, val: i32, force: bool) -> Result<(), Errno> {
        let v = if force {
            val.max(0) as usize
        } else {
            (val as u32 as usize).min(MAX_BUF)
        };
        let v = v.min(i32::MAX as usize / 2);
        self.with(|e| e.rcvbuf = (v * 2).max(MIN_RCVBUF))
    }

    pub fn sndbuf(&self) -> usize {
        self.with(|e| e.sndbuf).unwrap_or(DEFAULT_BUF)
    }

    pub fn rcvbuf(&self) -> usize {
        self.with(|e| e.rcvbuf).unwrap_or(DEFAULT_BUF)
    }

    pub fn set_passcred(&self, on: bool) -> Result<(), Errno> {
        self.with(|e| e.passcred = on)
    }

    pub fn passcred(&self) -> bool {
        self.with(|e| e.passcred).unwrap_or(false)
    }

    /// SO_ERROR: the pending error, cleared.
    pub fn take_error(&self) -> i32 {
        self.with(|e| e.take_err()).unwrap_or(0)
    }

    /// SO_ACCEPTCONN.
    pub fn listening(&self) -> bool {
        self.with(|e| e.listen.is_some()).unwrap_or(false)
    }

    /// SO_PEERCRED: who was at the other end when the connection was made.
    pub fn peer_cred(&self) -> Ucred {
        self.with(|e| e.peercred)
            .ok()
            .flatten()
            .unwrap_or(Ucred::NO_PEER)
    }

    /// SO_RCVTIMEO / SO_SNDTIMEO (None: wait forever).
    pub fn set_timeout(&self, send: bool, t: Option<Duration>) {
        let ns = t.map_or(0, |d| d.as_nanos().clamp(1, u64::MAX as u128) as u64);
        let slot = if send { &self.sndtimeo } else { &self.rcvtimeo };
        slot.store(ns, Ordering::Relaxed);
    }

    pub fn timeout(&self, send: bool) -> Option<Duration> {
        timeout_of(if send { &self.sndtimeo } else { &self.rcvtimeo })
    }

    /// An option kept only to be reported back.
    pub fn stored_option(&self, name: i32) -> Option<Vec<u8>> {
        self.stored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&name)
            .cloned()
    }

    pub fn set_stored_option(&self, name: i32, value: &[u8]) {
        self.stored
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, value.to_vec());
    }

    fn read_impl(&self, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        // read(2) of nothing returns at once (recv of nothing may wait).
        if buf.is_empty() {
            return Ok(0);
        }
        let opts = RecvOpts {
            nonblock,
            ..Default::default()
        };
        let got = self.recv(buf.len(), opts)?;
        buf[..got.data.len()].copy_from_slice(&got.data);
        // Files passed to a reader without a control buffer are closed, as on Linux.
        drop(got.files);
        Ok(got.data.len())
    }

    fn write_impl(&self, buf: &[u8], nonblock: bool) -> Result<usize, Errno> {
        self.send(
            buf,
            SendOpts {
                to: None,
                files: Vec::new(),
                creds: self.owner,
                explicit_creds: None,
                nonblock,
            },
        )
    }
}

impl FileDescription for UnixSocket {
    fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        self.read_impl(buf, false)
    }

    fn write(&self, buf: &[u8]) -> Result<usize, Errno> {
        self.write_impl(buf, false)
    }

    fn read_with_flags(&self, buf: &mut [u8], flags: u32) -> Result<usize, Errno> {
        self.read_impl(buf, flags & libc::O_NONBLOCK as u32 != 0)
    }

    fn write_with_flags(&self, buf: &[u8], flags: u32) -> Result<usize, Errno> {
        self.write_impl(buf, flags & libc::O_NONBLOCK as u32 != 0)
    }

    fn stat(&self) -> Result<Stat, Errno> {
        Ok(Stat {
            dev: SOCKFS_DEV,
            ino: self.id,
            nlink: 1,
            mode: libc::S_IFSOCK | 0o777,
            uid: self.owner.uid,
            gid: self.owner.gid,
            blksize: 4096,
            ..Default::default()
        })
    }

    fn may_block(&self) -> bool {
        true
    }

    fn bytes_available(&self) -> Result<u32, Errno> {
        Ok(self.bytes_queued()?.min(u32::MAX as usize) as u32)
    }

    fn readiness(&self, mask: u32) -> u32 {
        let ctx = Ctx::lock();
        let Some(me) = ctx.tab.eps.get(&self.id) else {
            return mask & (POLLHUP | POLLERR);
        };
        let mut ev = me.events();
        // A datagram socket can't send while its peer's queue is full (unless the peer is
        // connected back to it).
        if me.stype != SockType::Stream {
            if let Some(other) = me.peer.and_then(|p| ctx.tab.eps.get(&p)) {
                if other.peer != Some(self.id) && other.recvq_full() {
                    ev &= !EV_OUT;
                }
            }
        }
        ev & mask
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.queue)
    }

    fn unix_socket(&self) -> Option<&UnixSocket> {
        Some(self)
    }
}

#[cfg(test)]
mod tests;
