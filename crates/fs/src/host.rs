//! Host file descriptors passed through to the application (the standard streams of
//! `runsc do`). The sentry owns a duplicate of each; the application only ever sees the
//! sandbox's fd numbers.
//!
//! Readiness is the host's: `readiness` asks the host with poll(2) and a zero timeout. To
//! learn of changes without polling in a loop, a host file that someone waits on (poll,
//! select, epoll) is added to one host epoll instance, edge-triggered, served by a single
//! sentry thread ([`Notifier`]) that turns every host edge into a notification of the file's
//! [`WaitQueue`]. Edge-triggered because the thread must not spin while a file stays ready
//! and nobody reads it: it hears of each new arrival (or new room) once, and the waiters
//! re-check readiness with poll(2). Files the host can't poll (regular files, /dev/null)
//! are refused by the host epoll with EPERM; those are always ready and have no queue, as in
//! the sandbox's own filesystems.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

use crate::tty::{Layout, Terminal, When, WinSize};
use crate::waiter::WaitQueue;
use crate::{Errno, FileDescription, Stat};

/// A host file descriptor.
pub struct HostFile {
    fd: OwnedFd,
    may_block: bool,
    queue: WaitQueue,
    /// The file's id in the notifier, once someone has waited on it (None inside: the host
    /// can't poll it).
    watch: OnceLock<Option<u64>>,
    /// The host refused RWF_NOWAIT once: don't ask again.
    no_rwf_nowait: std::sync::atomic::AtomicBool,
    /// The terminal's device number, when the file is a terminal.
    tty_id: Option<u64>,
}

static NOTIFIER: OnceLock<Option<Notifier>> = OnceLock::new();

/// The thread that watches host files for readiness changes.
struct Notifier {
    /// Readable when either of `directions` has events.
    epfd: OwnedFd,
    /// The input and output registrations ([`Direction`]).
    directions: [OwnedFd; 2],
    queues: Mutex<HashMap<u64, WaitQueue>>,
    next_id: AtomicU64,
    /// Held while host events are read and turned into notifications, by the notifier
    /// thread or by [`flush`]: once a flush has taken it, every host edge that happened
    /// before has been delivered, none is still in flight in the thread.
    delivery: Mutex<()>,
}

/// The two host epoll instances a watched descriptor is in: one for input, one for
/// output. A host epoll reports a descriptor's whole readiness, not what changed, so one
/// registration for both would turn every output edge (an ACK freeing send space) into an
/// input notification too, and an edge-triggered EPOLLIN item in the sandbox would see a
/// second edge for data it was already told about. Linux's own epoll filters a wake-up by
/// its key; two registrations, each woken only by its direction, give the same.
#[derive(Clone, Copy)]
enum Direction {
    Input = 0,
    Output = 1,
}

impl Direction {
    /// What a registration in this direction waits for (edge-triggered).
    fn interest(self) -> u32 {
        let bits = match self {
            Direction::Input => libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLPRI,
            Direction::Output => libc::EPOLLOUT,
        };
        bits as u32 | libc::EPOLLET as u32
    }

    /// The events of a host report that belong to this direction (errors and hang-ups go
    /// to both).
    fn relevant(self, bits: u32) -> u32 {
        let own = match self {
            Direction::Input => {
                libc::EPOLLIN
                    | libc::EPOLLRDNORM
                    | libc::EPOLLRDBAND
                    | libc::EPOLLPRI
                    | libc::EPOLLRDHUP
            }
            Direction::Output => libc::EPOLLOUT | libc::EPOLLWRNORM | libc::EPOLLWRBAND,
        };
        bits & (own | libc::EPOLLERR | libc::EPOLLHUP) as u32
    }
}

fn new_epoll() -> Option<OwnedFd> {
    // SAFETY: plain epoll_create1; the result is checked.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    // SAFETY: fd is a fresh descriptor we own.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

fn epoll_ctl(epfd: &OwnedFd, op: i32, fd: RawFd, events: u32, data: u64) -> bool {
    let mut ev = libc::epoll_event { events, u64: data };
    // SAFETY: ev is a valid epoll_event; the caller keeps fd open while it is registered.
    unsafe { libc::epoll_ctl(epfd.as_raw_fd(), op, fd, &mut ev) == 0 }
}

impl Notifier {
    /// The notifier, started on first use; None if the host refuses an epoll instance or a
    /// thread (then host files are simply not waitable).
    fn get() -> Option<&'static Notifier> {
        NOTIFIER
            .get_or_init(|| {
                let (epfd, input, output) = (new_epoll()?, new_epoll()?, new_epoll()?);
                for (inner, dir) in [(&input, Direction::Input), (&output, Direction::Output)] {
                    let readable = libc::EPOLLIN as u32;
                    if !epoll_ctl(
                        &epfd,
                        libc::EPOLL_CTL_ADD,
                        inner.as_raw_fd(),
                        readable,
                        dir as u64,
                    ) {
                        return None;
                    }
                }
                Some(Notifier {
                    epfd,
                    directions: [input, output],
                    queues: Mutex::new(HashMap::new()),
                    next_id: AtomicU64::new(1),
                    delivery: Mutex::new(()),
                })
            })
            .as_ref()
            .filter(|n| n.start())
    }

    /// Starts the thread once; false if it could not be started.
    fn start(&'static self) -> bool {
        static STARTED: OnceLock<bool> = OnceLock::new();
        *STARTED.get_or_init(|| {
            std::thread::Builder::new()
                .name("host-notifier".into())
                .spawn(move || self.run())
                .is_ok()
        })
    }

    fn run(&self) {
        let mut ready = [libc::epoll_event { events: 0, u64: 0 }; 2];
        loop {
            // SAFETY: ready has room for 2 entries.
            let n = unsafe { libc::epoll_wait(self.epfd.as_raw_fd(), ready.as_mut_ptr(), 2, -1) };
            if n < 0 {
                if last_errno() == libc::EINTR {
                    continue;
                }
                tracing::warn!("host notifier: epoll_wait failed: errno {}", last_errno());
                return;
            }
            #[cfg(test)]
            tests::stall_point();
            let _delivery = lock(&self.delivery);
            for r in &ready[..n as usize] {
                let dir = if r.u64 == Direction::Output as u64 {
                    Direction::Output
                } else {
                    Direction::Input
                };
                self.deliver(dir);
            }
        }
    }

    /// Reads every pending host event of one direction and notifies the files' queues.
    /// Call with `delivery` held.
    fn deliver(&self, dir: Direction) {
        const BATCH: usize = 32;
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; BATCH];
        let inner = &self.directions[dir as usize];
        loop {
            // SAFETY: events has room for BATCH entries; a zero timeout never blocks.
            let got = unsafe {
                libc::epoll_wait(inner.as_raw_fd(), events.as_mut_ptr(), BATCH as i32, 0)
            };
            for ev in &events[..got.max(0) as usize] {
                let (id, bits) = (ev.u64, dir.relevant(ev.events));
                let queue = lock(&self.queues).get(&id).cloned();
                if let (Some(q), true) = (queue, bits != 0) {
                    q.notify(bits);
                }
            }
            if got < BATCH as i32 {
                break;
            }
        }
    }

    /// Delivers, on the calling thread, every host edge that has happened and the notifier
    /// thread has not delivered yet.
    fn flush(&self) {
        let _delivery = lock(&self.delivery);
        let mut ready = [libc::epoll_event { events: 0, u64: 0 }; 2];
        // SAFETY: ready has room for 2 entries; a zero timeout never blocks.
        let n = unsafe { libc::epoll_wait(self.epfd.as_raw_fd(), ready.as_mut_ptr(), 2, 0) };
        if n > 0 {
            for dir in [Direction::Input, Direction::Output] {
                self.deliver(dir);
            }
        }
    }

    /// Watches `fd` for `queue`; None if the host can't poll it.
    fn add(&self, fd: RawFd, queue: WaitQueue) -> Option<u64> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        lock(&self.queues).insert(id, queue);
        let [input, output] = &self.directions;
        if !epoll_ctl(
            input,
            libc::EPOLL_CTL_ADD,
            fd,
            Direction::Input.interest(),
            id,
        ) {
            lock(&self.queues).remove(&id);
            return None;
        }
        if !epoll_ctl(
            output,
            libc::EPOLL_CTL_ADD,
            fd,
            Direction::Output.interest(),
            id,
        ) {
            epoll_ctl(input, libc::EPOLL_CTL_DEL, fd, 0, 0);
            lock(&self.queues).remove(&id);
            return None;
        }
        Some(id)
    }

    fn remove(&self, fd: RawFd, id: u64) {
        // fd is still open (called from HostFile's drop, before the fd closes).
        for inner in &self.directions {
            epoll_ctl(inner, libc::EPOLL_CTL_DEL, fd, 0, 0);
        }
        lock(&self.queues).remove(&id);
    }
}

/// Watches another host descriptor (a timerfd) with the notifier: every host edge notifies
/// `queue`. Returns the watch id for [`unwatch`], or None if the host can't poll `fd`.
pub(crate) fn watch(fd: RawFd, queue: WaitQueue) -> Option<u64> {
    Notifier::get().and_then(|n| n.add(fd, queue))
}

/// Delivers the host edges still on their way (see [`Notifier::flush`]). epoll_wait calls
/// this before it looks at its ready list: the notifier thread runs when the host schedules
/// it, so without this a scan could see a host file ready before that edge is delivered,
/// report it, and then report it a second time when the late edge links the item again; an
/// edge-triggered item would see two edges for one arrival, where Linux's own callback runs
/// as the data is queued. Costs one host epoll_wait when nothing is pending.
pub(crate) fn flush() {
    if let Some(Some(n)) = NOTIFIER.get() {
        n.flush();
    }
}

/// Ends a [`watch`]; call before `fd` closes.
pub(crate) fn unwatch(fd: RawFd, id: u64) {
    if let Some(n) = Notifier::get() {
        n.remove(fd, id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Drop for HostFile {
    fn drop(&mut self) {
        if let Some(Some(id)) = self.watch.get() {
            unwatch(self.fd.as_raw_fd(), *id);
        }
    }
}

fn last_errno() -> Errno {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

fn check(r: isize) -> Result<usize, Errno> {
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(r as usize)
    }
}

impl HostFile {
    /// Wraps an owned host descriptor.
    pub fn new(fd: OwnedFd) -> Self {
        let may_block = match nix::sys::stat::fstat(fd.as_raw_fd()) {
            Ok(st) => {
                let fmt = st.st_mode & libc::S_IFMT;
                fmt != libc::S_IFREG && fmt != libc::S_IFDIR && fmt != libc::S_IFBLK
            }
            Err(_) => true,
        };
        let tty_id = terminal_id(fd.as_raw_fd());
        HostFile {
            fd,
            may_block,
            queue: WaitQueue::new(),
            watch: OnceLock::new(),
            no_rwf_nowait: std::sync::atomic::AtomicBool::new(false),
            tty_id,
        }
    }

    fn raw(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// A blocking read that the calling task can be interrupted out of: non-blocking tries,
    /// sleeping on the notifier's queue in between. None when there is no task to interrupt
    /// or the host can't poll the file (then the read blocks in the host). Writes are left
    /// to block in the host: they wait only for a slow consumer, not for input that may
    /// never come.
    fn interruptible_read(&self, buf: &mut [u8]) -> Option<Result<usize, Errno>> {
        use crate::waiter::{Wake, POLLERR, POLLHUP, POLLIN};
        let waiter = crate::waiter::current()?;
        let queue = self.wait_queue()?;
        let mut registration = None;
        loop {
            match self.nonblocking_io(buf.as_mut_ptr(), buf.len(), false) {
                Err(libc::EAGAIN) => {}
                r => return Some(r),
            }
            if registration.is_none() {
                // Registered, then tried again: input arriving in between notifies.
                waiter.reset();
                registration = Some(queue.register(&waiter, POLLIN | POLLERR | POLLHUP));
                continue;
            }
            if waiter.wait(None) == Wake::Interrupted {
                return Some(Err(crate::waiter::ERESTARTSYS));
            }
        }
    }

    /// A read or write that must not block, for a sandbox description with O_NONBLOCK. The
    /// host description is shared with whoever started runsc (a shell's terminal), so its
    /// own O_NONBLOCK is never touched: `RWF_NOWAIT` asks for one non-blocking operation
    /// (pipes honour it); where the host refuses that, poll(2) says whether the operation
    /// can start, and a write is kept to PIPE_BUF bytes, which a writable pipe or terminal
    /// takes without waiting.
    fn nonblocking_io(&self, buf: *mut u8, len: usize, write: bool) -> Result<usize, Errno> {
        const RWF_NOWAIT: libc::c_long = 0x08;
        let iov = libc::iovec {
            iov_base: buf.cast(),
            iov_len: len,
        };
        let nr = if write {
            libc::SYS_pwritev2
        } else {
            libc::SYS_preadv2
        };
        if !self.no_rwf_nowait.load(Ordering::Relaxed) {
            // SAFETY: iov describes a valid buffer of len bytes (readable for writes,
            // writable for reads); offset -1 means the file offset, as for read(2).
            let r = unsafe { libc::syscall(nr, self.raw(), &iov, 1, -1i64, 0i64, RWF_NOWAIT) };
            if r >= 0 {
                return Ok(r as usize);
            }
            match last_errno() {
                libc::EOPNOTSUPP | libc::EINVAL | libc::ENOSYS => {
                    self.no_rwf_nowait.store(true, Ordering::Relaxed)
                }
                e => return Err(e),
            }
        }
        use crate::waiter::{POLLERR, POLLHUP, POLLIN, POLLOUT};
        let wanted = if write { POLLOUT } else { POLLIN };
        if self.readiness(wanted | POLLERR | POLLHUP) == 0 {
            return Err(libc::EAGAIN);
        }
        // The host calls themselves: `read` would come back here.
        if write {
            // SAFETY: buf is valid for len bytes; at most PIPE_BUF of them are written.
            check(unsafe { libc::write(self.raw(), buf.cast(), len.min(crate::pipe::PIPE_BUF)) })
        } else {
            // SAFETY: buf is valid and writable for len bytes.
            check(unsafe { libc::read(self.raw(), buf.cast(), len) })
        }
    }
}

impl FileDescription for HostFile {
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }

    fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        if self.may_block && !buf.is_empty() {
            if let Some(r) = self.interruptible_read(buf) {
                return r;
            }
        }
        // SAFETY: buf is a valid writable buffer of buf.len() bytes.
        check(unsafe { libc::read(self.raw(), buf.as_mut_ptr().cast(), buf.len()) })
    }

    fn write(&self, buf: &[u8]) -> Result<usize, Errno> {
        // SAFETY: buf is a valid readable buffer of buf.len() bytes.
        check(unsafe { libc::write(self.raw(), buf.as_ptr().cast(), buf.len()) })
    }

    fn pread(&self, buf: &mut [u8], offset: i64) -> Result<usize, Errno> {
        // SAFETY: as in `read`.
        check(unsafe { libc::pread(self.raw(), buf.as_mut_ptr().cast(), buf.len(), offset) })
    }

    fn pwrite(&self, buf: &[u8], offset: i64) -> Result<usize, Errno> {
        // SAFETY: as in `write`.
        check(unsafe { libc::pwrite(self.raw(), buf.as_ptr().cast(), buf.len(), offset) })
    }

    fn seek(&self, offset: i64, whence: i32) -> Result<i64, Errno> {
        // SAFETY: plain lseek on a descriptor we own.
        let r = unsafe { libc::lseek(self.raw(), offset, whence) };
        if r < 0 {
            Err(last_errno())
        } else {
            Ok(r)
        }
    }

    fn stat(&self) -> Result<Stat, Errno> {
        let st = nix::sys::stat::fstat(self.raw()).map_err(|e| e as i32)?;
        Ok(Stat {
            dev: st.st_dev,
            ino: st.st_ino,
            nlink: st.st_nlink,
            mode: st.st_mode,
            uid: st.st_uid,
            gid: st.st_gid,
            rdev: st.st_rdev,
            size: st.st_size,
            blksize: st.st_blksize,
            blocks: st.st_blocks,
            atime: (st.st_atime, st.st_atime_nsec),
            mtime: (st.st_mtime, st.st_mtime_nsec),
            ctime: (st.st_ctime, st.st_ctime_nsec),
        })
    }

    fn terminal(&self) -> Option<&dyn Terminal> {
        self.tty_id.map(|_| self as &dyn Terminal)
    }

    fn may_block(&self) -> bool {
        self.may_block
    }

    fn bytes_available(&self) -> Result<u32, Errno> {
        self.ioctl_get_int(libc::FIONREAD)
    }

    fn read_with_flags(&self, buf: &mut [u8], flags: u32) -> Result<usize, Errno> {
        if flags & libc::O_NONBLOCK as u32 != 0 && self.may_block {
            return self.nonblocking_io(buf.as_mut_ptr(), buf.len(), false);
        }
        self.read(buf)
    }

    fn write_with_flags(&self, buf: &[u8], flags: u32) -> Result<usize, Errno> {
        if flags & libc::O_NONBLOCK as u32 != 0 && self.may_block {
            // The pointer is only read from for a write.
            return self.nonblocking_io(buf.as_ptr().cast_mut(), buf.len(), true);
        }
        self.write(buf)
    }

    fn readiness(&self, mask: u32) -> u32 {
        poll_now(self.raw(), mask)
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        let watched = self
            .watch
            .get_or_init(|| watch(self.raw(), self.queue.clone()));
        watched.map(|_| &self.queue)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::waiter::{Waiter, Wake, POLLHUP, POLLIN, POLLOUT};
    use std::sync::atomic::AtomicUsize;
    use std::time::{Duration, Instant};

    static STALLS: AtomicUsize = AtomicUsize::new(0);

    /// Keeps the notifier thread from delivering (as a busy host that doesn't schedule it
    /// would) until the guard is dropped.
    pub(crate) struct Stall;

    pub(crate) fn stall() -> Stall {
        STALLS.fetch_add(1, Ordering::SeqCst);
        Stall
    }

    impl Drop for Stall {
        fn drop(&mut self) {
            STALLS.fetch_sub(1, Ordering::SeqCst);
        }
    }

    pub(super) fn stall_point() {
        while STALLS.load(Ordering::SeqCst) > 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Both ends of a host stream socketpair, the first as a sandbox file.
    pub(crate) fn host_socketpair() -> (HostFile, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: fds has room for two descriptors.
        let r = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        assert_eq!(r, 0);
        // SAFETY: both are fresh descriptors we own.
        unsafe {
            (
                HostFile::new(OwnedFd::from_raw_fd(fds[0])),
                OwnedFd::from_raw_fd(fds[1]),
            )
        }
    }

    fn host_pipe() -> (HostFile, OwnedFd) {
        let mut fds = [0; 2];
        // SAFETY: fds has room for two descriptors.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: both are fresh descriptors we own.
        unsafe {
            (
                HostFile::new(OwnedFd::from_raw_fd(fds[0])),
                OwnedFd::from_raw_fd(fds[1]),
            )
        }
    }

    #[test]
    fn readiness_and_notification_from_the_host() {
        let (r, w) = host_pipe();
        assert_eq!(r.readiness(POLLIN | POLLOUT), 0);
        let waiter = Waiter::new();
        let _reg = r
            .wait_queue()
            .expect("a host pipe is pollable")
            .register(&waiter, POLLIN);
        waiter.reset();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            // SAFETY: writes one byte from a valid buffer.
            unsafe { libc::write(w.as_raw_fd(), b"x".as_ptr().cast(), 1) };
            w
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        while r.readiness(POLLIN) == 0 {
            assert_eq!(waiter.wait(Some(deadline)), Wake::Notified);
        }
        assert_eq!(r.readiness(POLLIN | POLLOUT), POLLIN);
        drop(writer.join().unwrap());
        let deadline = Instant::now() + Duration::from_secs(10);
        while r.readiness(POLLHUP) == 0 {
            assert_eq!(waiter.wait(Some(deadline)), Wake::Notified);
        }
    }

    #[test]
    fn o_nonblock_never_blocks_on_the_host() {
        let (r, w) = host_pipe();
        let nb = libc::O_NONBLOCK as u32;
        let mut buf = [0u8; 8];
        assert_eq!(r.read_with_flags(&mut buf, nb), Err(libc::EAGAIN));
        let wf = HostFile::new(w);
        let big = vec![1u8; 1 << 20];
        let mut total = 0;
        loop {
            match wf.write_with_flags(&big, nb) {
                Ok(n) => total += n,
                Err(e) => {
                    assert_eq!(e, libc::EAGAIN);
                    break;
                }
            }
        }
        assert!(total >= 4096, "the pipe took {total} bytes");
        assert_eq!(r.read_with_flags(&mut buf, nb), Ok(8));
        // The host description itself stays blocking.
        // SAFETY: F_GETFL on a descriptor we own.
        let fl = unsafe { libc::fcntl(r.raw(), libc::F_GETFL) };
        assert_eq!(fl & libc::O_NONBLOCK, 0);
    }

    #[test]
    fn terminals_without_rwf_nowait_use_poll() {
        // SAFETY: plain libc calls on descriptors this test owns.
        let (master, slave) = unsafe {
            let m = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            if m < 0 || libc::grantpt(m) != 0 || libc::unlockpt(m) != 0 {
                return; // no ptys here: nothing to test
            }
            let name = libc::ptsname(m);
            let s = libc::open(name, libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            assert!(s >= 0);
            (
                OwnedFd::from_raw_fd(m),
                HostFile::new(OwnedFd::from_raw_fd(s)),
            )
        };
        let nb = libc::O_NONBLOCK as u32;
        let mut buf = [0u8; 16];
        assert_eq!(slave.read_with_flags(&mut buf, nb), Err(libc::EAGAIN));
        // SAFETY: writes a line from a valid buffer.
        unsafe { libc::write(master.as_raw_fd(), b"hi\n".as_ptr().cast(), 3) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while slave.readiness(POLLIN) == 0 {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(slave.read_with_flags(&mut buf, nb), Ok(3));
        assert_eq!(slave.write_with_flags(b"ok", nb), Ok(2));
        // A blocking read by a task goes through the notifier and can be interrupted.
        let waiter = Waiter::new();
        crate::waiter::set_current(Some(waiter.clone()));
        let w2 = waiter.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            w2.wake();
        });
        assert_eq!(slave.read(&mut buf), Err(crate::waiter::ERESTARTSYS));
        t.join().unwrap();
        crate::waiter::set_current(None);
    }

    #[test]
    fn regular_files_are_always_ready_and_have_no_queue() {
        let f = tempfile::tempfile().unwrap();
        let h = HostFile::new(OwnedFd::from(f));
        assert_eq!(h.readiness(POLLIN | POLLOUT), POLLIN | POLLOUT);
        assert!(h.wait_queue().is_none());
    }
}

/// The device number of the terminal open at `fd`, or None if it is no terminal.
fn terminal_id(fd: RawFd) -> Option<u64> {
    let mut t = [0u8; Layout::Termios.size()];
    // SAFETY: TCGETS writes the kernel's 36-byte struct termios into t.
    if unsafe { libc::ioctl(fd, libc::TCGETS, t.as_mut_ptr()) } < 0 {
        return None;
    }
    nix::sys::stat::fstat(fd).ok().map(|st| st.st_rdev)
}

/// Every request this module makes on a host descriptor (a terminal's, or FIONREAD on any
/// stream), for the sentry's seccomp filter.
pub const HOST_FILE_IOCTLS: &[u64] = &[
    libc::TCGETS,
    libc::TCSETS,
    libc::TCSETSW,
    libc::TCSETSF,
    libc::TCGETA,
    libc::TCSETA,
    libc::TCSETAW,
    libc::TCSETAF,
    req::TCGETS2,
    req::TCSETS2,
    req::TCSETSW2,
    req::TCSETSF2,
    libc::TIOCGWINSZ,
    libc::TIOCSWINSZ,
    libc::TCFLSH,
    libc::TCXONC,
    libc::TCSBRK,
    req::TCSBRKP,
    libc::TIOCOUTQ,
    libc::TIOCGETD,
    libc::FIONREAD,
];

/// Requests of the kernel's terminal ioctls that libc doesn't name on every target.
mod req {
    pub const TCGETS2: u64 = 0x802c_542a;
    pub const TCSETS2: u64 = 0x402c_542b;
    pub const TCSETSW2: u64 = 0x402c_542c;
    pub const TCSETSF2: u64 = 0x402c_542d;
    pub const TCSBRKP: u64 = 0x5425;
}

impl HostFile {
    /// An ioctl whose argument is a plain integer.
    fn ioctl_int(&self, request: u64, arg: libc::c_ulong) -> Result<(), Errno> {
        // SAFETY: the callers pass only requests that take their argument by value.
        let r = unsafe { libc::ioctl(self.raw(), request as _, arg) };
        if r < 0 {
            return Err(last_errno());
        }
        Ok(())
    }

    /// An ioctl that reads or writes one int through its pointer.
    fn ioctl_get_int(&self, request: u64) -> Result<u32, Errno> {
        let mut n: libc::c_int = 0;
        // SAFETY: the callers pass only requests that write one int.
        if unsafe { libc::ioctl(self.raw(), request as _, &mut n) } < 0 {
            return Err(last_errno());
        }
        Ok(n.max(0) as u32)
    }
}

impl Terminal for HostFile {
    fn tty_id(&self) -> u64 {
        self.tty_id.unwrap_or(0)
    }

    fn attrs(&self, layout: Layout) -> Result<Vec<u8>, Errno> {
        let request = match layout {
            Layout::Termio => libc::TCGETA,
            Layout::Termios => libc::TCGETS,
            Layout::Termios2 => req::TCGETS2,
        };
        let mut buf = vec![0u8; layout.size()];
        // SAFETY: each request writes exactly layout.size() bytes, the buffer's length.
        if unsafe { libc::ioctl(self.raw(), request as _, buf.as_mut_ptr()) } < 0 {
            return Err(last_errno());
        }
        Ok(buf)
    }

    fn set_attrs(&self, layout: Layout, when: When, attrs: &[u8]) -> Result<(), Errno> {
        use libc::{TCSETA, TCSETAF, TCSETAW, TCSETS, TCSETSF, TCSETSW};
        let request = match (layout, when) {
            (Layout::Termio, When::Now) => TCSETA,
            (Layout::Termio, When::Drain) => TCSETAW,
            (Layout::Termio, When::Flush) => TCSETAF,
            (Layout::Termios, When::Now) => TCSETS,
            (Layout::Termios, When::Drain) => TCSETSW,
            (Layout::Termios, When::Flush) => TCSETSF,
            (Layout::Termios2, When::Now) => req::TCSETS2,
            (Layout::Termios2, When::Drain) => req::TCSETSW2,
            (Layout::Termios2, When::Flush) => req::TCSETSF2,
        };
        if attrs.len() != layout.size() {
            return Err(libc::EINVAL);
        }
        // SAFETY: each request reads exactly layout.size() bytes, which attrs holds.
        if unsafe { libc::ioctl(self.raw(), request as _, attrs.as_ptr()) } < 0 {
            return Err(last_errno());
        }
        Ok(())
    }

    fn window_size(&self) -> Result<WinSize, Errno> {
        let mut w = [0u8; 8];
        // SAFETY: TIOCGWINSZ writes an 8-byte struct winsize into w.
        if unsafe { libc::ioctl(self.raw(), libc::TIOCGWINSZ, w.as_mut_ptr()) } < 0 {
            return Err(last_errno());
        }
        Ok(w)
    }

    fn set_window_size(&self, ws: &WinSize) -> Result<(), Errno> {
        // SAFETY: TIOCSWINSZ reads an 8-byte struct winsize from ws.
        if unsafe { libc::ioctl(self.raw(), libc::TIOCSWINSZ, ws.as_ptr()) } < 0 {
            return Err(last_errno());
        }
        Ok(())
    }

    fn flush(&self, queue: i32) -> Result<(), Errno> {
        self.ioctl_int(libc::TCFLSH, queue as libc::c_ulong)
    }

    fn flow(&self, action: i32) -> Result<(), Errno> {
        self.ioctl_int(libc::TCXONC, action as libc::c_ulong)
    }

    fn send_break(&self, arg: i32, posix: bool) -> Result<(), Errno> {
        let request = if posix { req::TCSBRKP } else { libc::TCSBRK };
        self.ioctl_int(request, arg as libc::c_ulong)
    }

    fn output_queued(&self) -> Result<u32, Errno> {
        self.ioctl_get_int(libc::TIOCOUTQ)
    }

    fn line_discipline(&self) -> Result<u32, Errno> {
        self.ioctl_get_int(libc::TIOCGETD)
    }
}

/// poll(2) of one host descriptor with a zero timeout: the events among `mask` that hold
/// now (POLLERR if the poll itself fails, rather than never-ready).
pub(crate) fn poll_now(fd: std::os::fd::RawFd, mask: u32) -> u32 {
    let mut p = libc::pollfd {
        fd,
        // Every poll bit fits in 16 bits (POLLRDHUP, the highest, is 0x2000).
        events: (mask & 0xffff) as i16,
        revents: 0,
    };
    loop {
        // SAFETY: p is one valid pollfd; timeout 0 never blocks.
        let r = unsafe { libc::poll(&mut p, 1, 0) };
        if r >= 0 {
            return p.revents as u16 as u32 & mask;
        }
        if last_errno() != libc::EINTR {
            return crate::waiter::POLLERR & mask;
        }
    }
}
