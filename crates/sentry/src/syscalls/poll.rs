//! Waiting for readiness, and moving data through pipes: poll, ppoll, select, pselect6, the
//! epoll family, eventfd, splice, tee and vmsplice.
//!
//! Every wait follows `fs::waiter`'s protocol: register the task's waiter on the queues of
//! the files of interest, check readiness, sleep until a notification, the deadline or an
//! interrupt (`Waiter::wake`, for signals: EINTR when a handler runs), check again. A zero
//! timeout checks once without registering, as Linux does.
//!
//! ppoll, pselect6, epoll_pwait and epoll_pwait2 put their signal mask in force for the
//! wait (see `with_sigmask`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use fs::epoll::{Epoll, EPOLLEXCLUSIVE, EPOLLWAKEUP};
use fs::eventfd::EventFd;
use fs::pipe::PipeEnd;
use fs::vfs::OpenFile;
use fs::waiter::{
    Registration, WaitQueue, Waiter, Wake, POLLERR, POLLHUP, POLLIN, POLLNVAL, POLLOUT, POLLPRI,
    POLLRDBAND, POLLRDNORM, POLLWRBAND, POLLWRNORM,
};
use platform::UserRegs;

use super::fd::fd_limit;
use crate::errno::{Errno, SysResult};
use crate::task::TaskState;

/// Linux's TASK_SIZE_MAX: `access_ok` refuses user ranges reaching past it.
const TASK_SIZE: u64 = 0x7fff_ffff_f000;
/// Linux caps a single transfer at this many bytes.
const MAX_RW_COUNT: u64 = 0x7fff_f000;
/// Linux's UIO_MAXIOV.
const IOV_MAX: u64 = 1024;
/// Bytes gathered from guest memory per vmsplice (a pipe never holds more than this
/// unprivileged anyway).
const CHUNK: usize = 1 << 20;

/// Linux's default `fs.nr_open`: no process has more descriptors.
const NR_OPEN: u64 = 1 << 20;

const NSEC_PER_SEC: i64 = 1_000_000_000;
const USEC_PER_SEC: i64 = 1_000_000;

fn fs_err(e: i32) -> Errno {
    Errno(e)
}

/// The open file at `fd` as Linux's `fdget` sees it: O_PATH descriptors don't count.
fn get_file(t: &TaskState, fd: u64) -> Result<Arc<OpenFile>, Errno> {
    let file = t.fds.get(fd)?;
    if file.flags() & libc::O_PATH as u32 != 0 {
        return Err(Errno::EBADF);
    }
    Ok(file)
}

fn pipe_of(file: &OpenFile) -> Option<&PipeEnd> {
    file.special_desc().and_then(|d| d.as_pipe())
}

fn epoll_of(file: &OpenFile) -> Option<&Epoll> {
    file.special_desc().and_then(|d| d.as_epoll())
}

fn nonblocking(file: &OpenFile) -> bool {
    file.flags() & libc::O_NONBLOCK as u32 != 0
}

// ---------------------------------------------------------------------------------------
// Timeouts.

/// When a wait ends: never (None), or at an instant (the present for a zero timeout).
#[derive(Clone, Copy)]
struct Deadline {
    at: Option<Instant>,
    /// The timeout was zero: check once, never sleep, and report no remaining time.
    zero: bool,
}

impl Deadline {
    const NEVER: Deadline = Deadline {
        at: None,
        zero: false,
    };

    /// `poll_select_set_timeout`: a validated (sec, nsec) from now. A deadline too far to
    /// represent is no deadline.
    fn after(sec: i64, nsec: i64) -> Result<Deadline, Errno> {
        if sec < 0 || !(0..NSEC_PER_SEC).contains(&nsec) {
            return Err(Errno::EINVAL);
        }
        if sec == 0 && nsec == 0 {
            return Ok(Deadline {
                at: Some(Instant::now()),
                zero: true,
            });
        }
        let d = Duration::new(sec as u64, nsec as u32);
        Ok(Deadline {
            at: Instant::now().checked_add(d),
            zero: false,
        })
    }

    /// A millisecond timeout (poll, epoll_wait): negative waits forever.
    fn from_ms(ms: i32) -> Deadline {
        if ms < 0 {
            return Deadline::NEVER;
        }
        let ms = ms as i64;
        Deadline::after(ms / 1000, (ms % 1000) * 1_000_000).unwrap_or(Deadline::NEVER)
    }

    /// Time left, for select's and ppoll's write-back.
    fn remaining(&self) -> Duration {
        self.at
            .map(|at| at.saturating_duration_since(Instant::now()))
            .unwrap_or(Duration::MAX)
    }
}

/// Reads a `struct timespec` deadline (NULL: none): EFAULT, or EINVAL when invalid.
fn read_timespec_deadline(t: &TaskState, addr: u64) -> Result<Deadline, Errno> {
    if addr == 0 {
        return Ok(Deadline::NEVER);
    }
    let ts = super::time::read_timespec(t, addr)?;
    Deadline::after(ts.tv_sec, ts.tv_nsec)
}

/// `poll_select_finish`: writes the time left back to a timespec or timeval, as Linux does
/// for select, pselect6 and ppoll whatever the result (a failed write is ignored). Nothing
/// is written for a zero or absent timeout.
fn write_remaining(t: &TaskState, addr: u64, deadline: &Deadline, timeval: bool) {
    if addr == 0 || deadline.zero || deadline.at.is_none() {
        return;
    }
    let left = deadline.remaining();
    let sec = left.as_secs().min(i64::MAX as u64) as i64;
    let sub = if timeval {
        left.subsec_micros() as i64
    } else {
        left.subsec_nanos() as i64
    };
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&sec.to_le_bytes());
    b[8..].copy_from_slice(&sub.to_le_bytes());
    let _ = t.mm.copy_out(addr, &b);
}

/// Runs `wait` with the signal mask at `addr` in force, if any (`set_user_sigmask`): EINVAL
/// for a wrong size, EFAULT for an unreadable set. When a signal interrupts the wait, the
/// caller's mask comes back only after delivery, so that the handler runs under the
/// temporary one and its frame restores the caller's (Linux's restore_saved_sigmask_unless).
pub(super) fn with_sigmask(
    t: &mut TaskState,
    addr: u64,
    size: u64,
    wait: impl FnOnce(&mut TaskState) -> SysResult,
) -> SysResult {
    if addr == 0 {
        return wait(t);
    }
    if size != 8 {
        return Err(Errno::EINVAL);
    }
    let mask = t.mm.read_u64(addr)?;
    let old = t.signals.mask();
    t.signals.set_mask(mask);
    let r = wait(t);
    match r {
        Err(Errno(e)) if fs::waiter::is_restart(e) => t.signals.saved_mask = Some(old),
        _ => t.signals.set_mask(old),
    }
    r
}

// ---------------------------------------------------------------------------------------
// Interruptible sleeps.

/// Held while a call is served on the task's own thread, where calls may sleep: names the
/// task as the thread's current one (so that blocking inside a file, such as a pipe read,
/// sleeps interruptibly) and gives the task's waiter its interrupt check, once: a signal
/// the thread doesn't block is pending for it or its process, or the process is ending, or
/// another thread's execve ends this one.
/// Senders also `wake()` the waiter, which only hurries the check: the flag is cleared
/// here, for a wake whose signal another thread took.
pub struct ServingTask(Option<Arc<Waiter>>, Option<crate::signal::Current>);

impl ServingTask {
    pub fn enter(t: &TaskState) -> ServingTask {
        if !t.waiter.has_interrupt_check() {
            // Weak: the thread's signal state holds the waiter, so strong references here
            // would make a cycle that kept every ended thread, and its process, alive.
            let group = Arc::downgrade(&t.group);
            let thread = Arc::downgrade(&t.signals.thread);
            let tid = t.tid;
            t.waiter.set_interrupt_check(move || {
                let (Some(group), Some(thread)) = (group.upgrade(), thread.upgrade()) else {
                    return true;
                };
                // Ending for execve too: its kick (`interrupt`) is cleared by the next call
                // served here, so a thread that was on its way into a sleep when the kick
                // came would otherwise sleep on, and the execve wait for it.
                group.must_end(tid) || thread.deliverable() || group.has_pending(thread.mask())
            });
        }
        t.waiter.clear_interrupt();
        let previous = crate::signal::set_current(Some(crate::signal::Current {
            thread: t.signals.thread.clone(),
            group: t.group.clone(),
        }));
        ServingTask(fs::waiter::set_current(Some(t.waiter.clone())), previous)
    }
}

impl Drop for ServingTask {
    fn drop(&mut self) {
        fs::waiter::set_current(self.0.take());
        crate::signal::set_current(self.1.take());
    }
}

// ---------------------------------------------------------------------------------------
// The wait loop.

/// Registers the task's waiter on `queues` (unless the deadline is zero), then runs `scan`
/// until it finds something, the deadline passes (scanning one last time), or the wait is
/// interrupted: ERESTARTNOHAND, so that poll, select and epoll_wait fail with EINTR when a
/// handler runs, SA_RESTART or not, and go on as if nothing happened when none does (a
/// signal another thread took, or one ignored meanwhile).
fn wait_until(
    waiter: &Arc<Waiter>,
    queues: &[(&WaitQueue, u32)],
    deadline: Deadline,
    mut scan: impl FnMut() -> usize,
) -> Result<usize, Errno> {
    if deadline.zero {
        return Ok(scan());
    }
    waiter.reset();
    let _registrations: Vec<Registration> = queues
        .iter()
        .map(|&(q, mask)| q.register(waiter, mask))
        .collect();
    let mut timed_out = false;
    loop {
        let n = scan();
        if n > 0 || timed_out {
            return Ok(n);
        }
        match waiter.wait(deadline.at) {
            Wake::Notified => {}
            Wake::TimedOut => timed_out = true,
            Wake::Interrupted => return Err(Errno(fs::waiter::ERESTARTNOHAND)),
        }
    }
}

// ---------------------------------------------------------------------------------------
// poll and ppoll.

fn do_poll(t: &TaskState, addr: u64, nfds: u64, deadline: Deadline) -> SysResult {
    let nfds = nfds as u32 as u64;
    // Linux's bound is RLIMIT_NOFILE; the sentry also caps it at the default nr_open, so
    // that a limit inherited from the host can't make it allocate gigabytes.
    if nfds > fd_limit(t).min(NR_OPEN) {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; nfds as usize * 8];
    t.mm.copy_in(addr, &mut raw)?;
    // Each entry: its file (None: ignored, fd < 0) and requested events, or POLLNVAL.
    enum Entry {
        Ignored,
        Invalid,
        File(Arc<OpenFile>, u32),
    }
    let entries: Vec<Entry> = raw
        .chunks_exact(8)
        .map(|c| {
            let fd = i32::from_le_bytes(c[0..4].try_into().expect("4 bytes"));
            let events = u16::from_le_bytes(c[4..6].try_into().expect("2 bytes")) as u32;
            if fd < 0 {
                Entry::Ignored
            } else {
                match get_file(t, fd as u64) {
                    Ok(f) => Entry::File(f, events | POLLERR | POLLHUP),
                    Err(_) => Entry::Invalid,
                }
            }
        })
        .collect();
    let mut revents = vec![0u32; entries.len()];
    let queues: Vec<(&WaitQueue, u32)> = entries
        .iter()
        .filter_map(|e| match e {
            Entry::File(f, mask) => f.wait_queue().map(|q| (q, *mask)),
            _ => None,
        })
        .collect();
    let n = wait_until(&t.waiter, &queues, deadline, || {
        let mut count = 0;
        for (e, r) in entries.iter().zip(revents.iter_mut()) {
            *r = match e {
                Entry::Ignored => 0,
                Entry::Invalid => POLLNVAL,
                Entry::File(f, mask) => f.readiness(*mask) & mask,
            };
            if *r != 0 {
                count += 1;
            }
        }
        count
    })?;
    // Linux stores every entry's revents, ready or not. The whole array goes back (fd and
    // events as read), which only differs if another thread changed them meanwhile.
    for (c, r) in raw.chunks_exact_mut(8).zip(&revents) {
        c[6..8].copy_from_slice(&(*r as u16).to_le_bytes());
    }
    t.mm.copy_out(addr, &raw)?;
    Ok(n as u64)
}

pub fn poll(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    do_poll(t, a[0], a[1], Deadline::from_ms(a[2] as i32))
}

pub fn ppoll(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let deadline = read_timespec_deadline(t, a[2])?;
    let r = with_sigmask(t, a[3], a[4], |t| do_poll(t, a[0], a[1], deadline));
    write_remaining(t, a[2], &deadline, false);
    r
}

// ---------------------------------------------------------------------------------------
// select and pselect6.

const POLLIN_SET: u32 = POLLRDNORM | POLLRDBAND | POLLIN | POLLHUP | POLLERR;
const POLLOUT_SET: u32 = POLLWRBAND | POLLWRNORM | POLLOUT | POLLERR;
const POLLEX_SET: u32 = POLLPRI;

/// The size of the fd table Linux would have (`fdt->max_fds`): select ignores descriptors
/// at or above it. It starts at 64 and grows, when a descriptor beyond it is opened, to
/// a power-of-two multiple of 128 above that descriptor (`alloc_fdtable`). The sentry's
/// table has no size, so it is derived from the highest open descriptor.
fn linux_max_fds(t: &TaskState) -> u64 {
    const NR_OPEN_DEFAULT: u64 = 64;
    let highest = t
        .fds
        .snapshot()
        .last()
        .map(|(fd, _)| *fd as u64)
        .unwrap_or(0);
    if highest < NR_OPEN_DEFAULT {
        return NR_OPEN_DEFAULT;
    }
    ((highest / 128) + 1).next_power_of_two() * 128
}

/// Reads an fd_set of `bytes` bytes (all zero for NULL) as 64-bit words.
fn read_fd_set(t: &TaskState, addr: u64, bytes: usize) -> Result<Vec<u64>, Errno> {
    let mut raw = vec![0u8; bytes];
    if addr != 0 {
        t.mm.copy_in(addr, &mut raw)?;
    }
    Ok(raw
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect())
}

fn write_fd_set(t: &TaskState, addr: u64, set: &[u64]) -> Result<(), Errno> {
    if addr == 0 {
        return Ok(());
    }
    let raw: Vec<u8> = set.iter().flat_map(|w| w.to_le_bytes()).collect();
    t.mm.copy_out(addr, &raw)
}

fn do_select(t: &TaskState, nfds: u64, sets: [u64; 3], deadline: Deadline) -> SysResult {
    let nfds = nfds as u32 as i32;
    if nfds < 0 {
        return Err(Errno::EINVAL);
    }
    // Linux's table never has fewer than 64 slots: only larger nfds need the table size.
    let n = if nfds <= 64 {
        nfds as u64
    } else {
        (nfds as u64).min(linux_max_fds(t))
    };
    let bytes = n.div_ceil(64) as usize * 8;
    let [inp, outp, exp] = sets;
    let input = [
        read_fd_set(t, inp, bytes)?,
        read_fd_set(t, outp, bytes)?,
        read_fd_set(t, exp, bytes)?,
    ];
    // Every descriptor named in a set must be open (EBADF); bits at or above n don't count.
    struct Watch {
        fd: usize,
        file: Arc<OpenFile>,
        /// Which sets name it: bit 0 in, 1 out, 2 except.
        sets: u8,
    }
    let mut watched = Vec::new();
    for fd in 0..n as usize {
        let (word, bit) = (fd / 64, 1u64 << (fd % 64));
        let sets = (0..3).fold(0u8, |acc, s| {
            acc | if input[s][word] & bit != 0 { 1 << s } else { 0 }
        });
        if sets != 0 {
            // O_PATH descriptors count as open (no EBADF), and are polled below.
            let file = t.fds.get(fd as u64)?;
            watched.push(Watch { fd, file, sets });
        }
    }
    let words = bytes / 8;
    let mut result = [vec![0u64; words], vec![0u64; words], vec![0u64; words]];
    let queues: Vec<(&WaitQueue, u32)> = watched
        .iter()
        .filter(|w| w.file.flags() & libc::O_PATH as u32 == 0)
        .filter_map(|w| {
            let mut mask = POLLEX_SET;
            if w.sets & 1 != 0 {
                mask |= POLLIN_SET;
            }
            if w.sets & 2 != 0 {
                mask |= POLLOUT_SET;
            }
            w.file.wait_queue().map(|q| (q, mask))
        })
        .collect();
    let count = wait_until(&t.waiter, &queues, deadline, || {
        let mut count = 0;
        for r in result.iter_mut() {
            r.fill(0);
        }
        for w in &watched {
            // Linux's select polls an O_PATH file like one without a poll method (always
            // ready), where poll reports POLLNVAL.
            let ready = if w.file.flags() & libc::O_PATH as u32 != 0 {
                fs::waiter::DEFAULT_READY
            } else {
                w.file.readiness(POLLIN_SET | POLLOUT_SET | POLLEX_SET)
            };
            let (word, bit) = (w.fd / 64, 1u64 << (w.fd % 64));
            for (s, set_mask) in [POLLIN_SET, POLLOUT_SET, POLLEX_SET].iter().enumerate() {
                if w.sets & (1 << s) != 0 && ready & set_mask != 0 {
                    result[s][word] |= bit;
                    count += 1;
                }
            }
        }
        count
    })?;
    write_fd_set(t, inp, &result[0])?;
    write_fd_set(t, outp, &result[1])?;
    write_fd_set(t, exp, &result[2])?;
    Ok(count as u64)
}

pub fn select(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let tvp = a[4];
    let deadline = if tvp == 0 {
        Deadline::NEVER
    } else {
        let mut b = [0u8; 16];
        t.mm.copy_in(tvp, &mut b)?;
        let sec = i64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
        let usec = i64::from_le_bytes(b[8..].try_into().expect("8 bytes"));
        // Linux folds whole seconds of tv_usec into tv_sec before validating.
        Deadline::after(
            sec.wrapping_add(usec / USEC_PER_SEC),
            (usec % USEC_PER_SEC) * 1000,
        )?
    };
    let r = do_select(t, a[0], [a[1], a[2], a[3]], deadline);
    write_remaining(t, tvp, &deadline, true);
    r
}

pub fn pselect6(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    // The sixth argument points to { const sigset_t *ss; size_t ss_len; }.
    let (ss, ss_len) = if a[5] != 0 {
        (t.mm.read_u64(a[5])?, t.mm.read_u64(a[5].wrapping_add(8))?)
    } else {
        (0, 0)
    };
    let deadline = read_timespec_deadline(t, a[4])?;
    let r = with_sigmask(t, ss, ss_len, |t| {
        do_select(t, a[0], [a[1], a[2], a[3]], deadline)
    });
    write_remaining(t, a[4], &deadline, false);
    r
}

// ---------------------------------------------------------------------------------------
// epoll.

const EPOLL_CTL_ADD: u64 = 1;
const EPOLL_CTL_DEL: u64 = 2;
const EPOLL_CTL_MOD: u64 = 3;
/// sizeof(struct epoll_event): packed on x86-64.
const EVENT_SIZE: u64 = 12;
/// INT_MAX / sizeof(struct epoll_event).
const EP_MAX_EVENTS: u64 = i32::MAX as u64 / EVENT_SIZE;

fn new_epoll(t: &mut TaskState, flags: u64) -> SysResult {
    if flags & !(libc::EPOLL_CLOEXEC as u64) != 0 {
        return Err(Errno::EINVAL);
    }
    let file = OpenFile::special(None, None, Epoll::new(), libc::O_RDWR as u32);
    let cloexec = flags & libc::EPOLL_CLOEXEC as u64 != 0;
    let fd = t.fds.alloc(0, file, cloexec, fd_limit(t))?;
    Ok(fd as u64)
}

pub fn epoll_create(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    if a[0] as i32 <= 0 {
        return Err(Errno::EINVAL);
    }
    new_epoll(t, 0)
}

pub fn epoll_create1(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    new_epoll(t, a[0] as u32 as u64)
}

pub fn epoll_ctl(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (epfd, op, fd) = (a[0], a[1] as u32 as u64, a[2]);
    let has_event = op != EPOLL_CTL_DEL;
    let (mut events, data) = if has_event {
        let mut b = [0u8; EVENT_SIZE as usize];
        t.mm.copy_in(a[3], &mut b)?;
        (
            u32::from_le_bytes(b[0..4].try_into().expect("4 bytes")),
            u64::from_le_bytes(b[4..12].try_into().expect("8 bytes")),
        )
    } else {
        (0, 0)
    };
    let ep_file = get_file(t, epfd)?;
    let target = get_file(t, fd)?;
    if target.wait_queue().is_none() {
        return Err(Errno::EPERM);
    }
    // EPOLLWAKEUP needs CAP_BLOCK_SUSPEND, which the sandbox never grants: dropped silently.
    events &= !EPOLLWAKEUP;
    let ep = epoll_of(&ep_file).ok_or(Errno::EINVAL)?;
    if Arc::ptr_eq(&ep_file, &target) {
        return Err(Errno::EINVAL);
    }
    let target_ep = epoll_of(&target);
    if has_event
        && events & EPOLLEXCLUSIVE != 0
        && (op == EPOLL_CTL_MOD || (op == EPOLL_CTL_ADD && target_ep.is_some()))
    {
        return Err(Errno::EINVAL);
    }
    let fd = fd as u32 as i32;
    match op {
        EPOLL_CTL_ADD => match target_ep {
            Some(inner) => {
                let _nesting = Epoll::nesting_lock();
                if ep.would_loop(inner) {
                    return Err(Errno::ELOOP);
                }
                ep.add(&target, fd, events, data).map_err(fs_err)?
            }
            None => ep.add(&target, fd, events, data).map_err(fs_err)?,
        },
        EPOLL_CTL_DEL => ep.delete(&target, fd).map_err(fs_err)?,
        EPOLL_CTL_MOD => ep.modify(&target, fd, events, data).map_err(fs_err)?,
        _ => return Err(Errno::EINVAL),
    }
    Ok(0)
}

fn do_epoll_wait(t: &TaskState, epfd: u64, events: u64, max: u64, deadline: Deadline) -> SysResult {
    let max = max as u32 as i32;
    if max <= 0 || max as u64 > EP_MAX_EVENTS {
        return Err(Errno::EINVAL);
    }
    if events
        .checked_add(max as u64 * EVENT_SIZE)
        .is_none_or(|end| end > TASK_SIZE)
    {
        return Err(Errno::EFAULT);
    }
    let file = get_file(t, epfd)?;
    let ep = epoll_of(&file).ok_or(Errno::EINVAL)?;
    let mut fault = false;
    // Events go to the guest one by one, so that one that can't be stored stays ready
    // (Linux puts it back on the ready list).
    let n = wait_until(&t.waiter, &[(ep.queue(), POLLIN)], deadline, || {
        let mut out = events;
        let mut store = |ev: u32, data: u64| {
            let mut b = [0u8; EVENT_SIZE as usize];
            b[0..4].copy_from_slice(&ev.to_le_bytes());
            b[4..12].copy_from_slice(&data.to_le_bytes());
            if t.mm.copy_out(out, &b).is_err() {
                return false;
            }
            out += EVENT_SIZE;
            true
        };
        let stored = ep.send_events(max as usize, &mut store);
        if stored == 0 && ep.has_ready() {
            // Nothing could be stored although something may be ready: probe whether
            // the buffer is the reason, and end the wait with EFAULT if so.
            fault = t.mm.check_range(events, EVENT_SIZE as usize, true).is_err();
        }
        stored.max(fault as usize)
    })?;
    if fault {
        return Err(Errno::EFAULT);
    }
    Ok(n as u64)
}

pub fn epoll_wait(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    do_epoll_wait(t, a[0], a[1], a[2], Deadline::from_ms(a[3] as i32))
}

pub fn epoll_pwait(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    with_sigmask(t, a[4], a[5], |t| {
        do_epoll_wait(t, a[0], a[1], a[2], Deadline::from_ms(a[3] as i32))
    })
}

pub fn epoll_pwait2(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let deadline = read_timespec_deadline(t, a[3])?;
    with_sigmask(t, a[4], a[5], |t| {
        do_epoll_wait(t, a[0], a[1], a[2], deadline)
    })
}

// ---------------------------------------------------------------------------------------
// eventfd.

const EFD_SEMAPHORE: u64 = fs::eventfd::EFD_SEMAPHORE as u64;

pub fn eventfd2(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let flags = a[1] as u32 as u64;
    let known = libc::EFD_CLOEXEC as u64 | libc::EFD_NONBLOCK as u64 | EFD_SEMAPHORE;
    if flags & !known != 0 {
        return Err(Errno::EINVAL);
    }
    let efd = EventFd::new(a[0] as u32, flags as u32);
    let status = libc::O_RDWR as u32 | (flags as u32 & libc::O_NONBLOCK as u32);
    let file = OpenFile::special(None, None, efd, status);
    let cloexec = flags & libc::EFD_CLOEXEC as u64 != 0;
    Ok(t.fds.alloc(0, file, cloexec, fd_limit(t))? as u64)
}

pub fn eventfd(t: &mut TaskState, r: &mut UserRegs, a: [u64; 6]) -> SysResult {
    eventfd2(t, r, [a[0], 0, 0, 0, 0, 0])
}

// ---------------------------------------------------------------------------------------
// splice, tee, vmsplice.

const SPLICE_F_NONBLOCK: u64 = 0x02;
/// SPLICE_F_MOVE, _NONBLOCK, _MORE, _GIFT: all accepted (moving and gifting are
/// optimisations Linux may skip too).
const SPLICE_F_ALL: u64 = 0x0f;

/// `rw_verify_area` for a transfer of `len` at `pos`.
fn verify_area(pos: i64, len: u64) -> Result<(), Errno> {
    if len > i64::MAX as u64 || pos < 0 || pos.checked_add(len as i64).is_none() {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

fn read_offset(t: &TaskState, addr: u64) -> Result<Option<i64>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    Ok(Some(t.mm.read_u64(addr)? as i64))
}

pub fn splice(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let r = do_splice(t, a);
    super::signal::sigpipe_on_epipe(t, r)
}

pub fn tee(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let r = do_tee(t, a);
    super::signal::sigpipe_on_epipe(t, r)
}

pub fn vmsplice(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let r = do_vmsplice(t, a);
    super::signal::sigpipe_on_epipe(t, r)
}

fn do_splice(t: &mut TaskState, a: [u64; 6]) -> SysResult {
    let (fd_in, off_in_addr, fd_out, off_out_addr, len, flags) =
        (a[0], a[1], a[2], a[3], a[4], a[5]);
    let flags = flags as u32 as u64;
    if len == 0 {
        return Ok(0);
    }
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    let input = get_file(t, fd_in)?;
    let output = get_file(t, fd_out)?;
    let (ipipe, opipe) = (pipe_of(&input), pipe_of(&output));
    if (ipipe.is_some() && off_in_addr != 0) || (opipe.is_some() && off_out_addr != 0) {
        return Err(Errno::ESPIPE);
    }
    let off_out = read_offset(t, off_out_addr)?;
    let off_in = read_offset(t, off_in_addr)?;
    if !input.readable() || !output.writable() {
        return Err(Errno::EBADF);
    }
    let mut nonblock = flags & SPLICE_F_NONBLOCK != 0;
    let n = match (ipipe, opipe) {
        (Some(i), Some(o)) => {
            if i.same_pipe(o) {
                return Err(Errno::EINVAL);
            }
            nonblock |= nonblocking(&input) || nonblocking(&output);
            i.splice_to(o, len.min(MAX_RW_COUNT) as usize, nonblock)
                .map_err(fs_err)?
        }
        (Some(i), None) => {
            // Pipe to file: written at *off_out or the file offset, never appended.
            if off_out.is_some() && output.may_block() {
                return Err(Errno::EINVAL);
            }
            if output.flags() & libc::O_APPEND as u32 != 0 || epoll_of(&output).is_some() {
                return Err(Errno::EINVAL);
            }
            let pos = match off_out {
                Some(p) => p,
                None if output.may_block() || output.special_desc().is_some() => 0,
                None => output.seek(0, libc::SEEK_CUR).map_err(fs_err)? as i64,
            };
            verify_area(pos, len)?;
            nonblock |= nonblocking(&input);
            let n = i
                .splice_read(
                    len.min(MAX_RW_COUNT) as usize,
                    nonblock,
                    |data| match off_out {
                        Some(p) => output.pwrite(data, p as u64),
                        None => output.write(data),
                    },
                )
                .map_err(fs_err)?;
            if let Some(p) = off_out {
                t.mm.copy_out(off_out_addr, &(p + n as i64).to_le_bytes())?;
            }
            n
        }
        (None, Some(o)) => {
            // File to pipe: read at *off_in or the file offset.
            if off_in.is_some() && input.may_block() {
                return Err(Errno::EINVAL);
            }
            let is_dir = input
                .inode()
                .is_some_and(|i| i.file_type() == fs::vfs::FileType::Directory);
            if is_dir || epoll_of(&input).is_some() {
                return Err(Errno::EINVAL);
            }
            let pos = match off_in {
                Some(p) => p,
                None if input.may_block() || input.special_desc().is_some() => 0,
                None => input.seek(0, libc::SEEK_CUR).map_err(fs_err)? as i64,
            };
            verify_area(pos, len)?;
            nonblock |= nonblocking(&output);
            let n = o
                .splice_write(
                    len.min(MAX_RW_COUNT) as usize,
                    nonblock,
                    |buf| match off_in {
                        Some(p) => input.pread(buf, p as u64),
                        None => input.read(buf),
                    },
                )
                .map_err(fs_err)?;
            if let Some(p) = off_in {
                t.mm.copy_out(off_in_addr, &(p + n as i64).to_le_bytes())?;
            }
            n
        }
        (None, None) => return Err(Errno::EINVAL),
    };
    Ok(n as u64)
}

fn do_tee(t: &mut TaskState, a: [u64; 6]) -> SysResult {
    let (fd_in, fd_out, len, flags) = (a[0], a[1], a[2], a[3] as u32 as u64);
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    if len == 0 {
        return Ok(0);
    }
    let input = get_file(t, fd_in)?;
    let output = get_file(t, fd_out)?;
    if !input.readable() || !output.writable() {
        return Err(Errno::EBADF);
    }
    match (pipe_of(&input), pipe_of(&output)) {
        (Some(i), Some(o)) if !i.same_pipe(o) => {
            let nonblock =
                flags & SPLICE_F_NONBLOCK != 0 || nonblocking(&input) || nonblocking(&output);
            let n = i
                .tee_to(o, len.min(MAX_RW_COUNT) as usize, nonblock)
                .map_err(fs_err)?;
            Ok(n as u64)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// Reads an iovec array as Linux's `import_iovec`: EINVAL for too many or too long, EFAULT
/// for an unreadable array.
fn read_iovecs(t: &TaskState, addr: u64, count: u64) -> Result<Vec<(u64, u64)>, Errno> {
    if count > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; count as usize * 16];
    t.mm.copy_in(addr, &mut raw)?;
    let mut total: u64 = 0;
    let mut iovs = Vec::with_capacity(count as usize);
    for c in raw.chunks_exact(16) {
        let base = u64::from_le_bytes(c[0..8].try_into().expect("8 bytes"));
        let len = u64::from_le_bytes(c[8..16].try_into().expect("8 bytes"));
        if len > i64::MAX as u64 {
            return Err(Errno::EINVAL);
        }
        // Linux shortens the total to MAX_RW_COUNT rather than failing.
        let take = len.min(MAX_RW_COUNT - total);
        total += take;
        iovs.push((base, take));
    }
    Ok(iovs)
}

fn do_vmsplice(t: &mut TaskState, a: [u64; 6]) -> SysResult {
    let (fd, iov, nr_segs, flags) = (a[0], a[1], a[2], a[3] as u32 as u64);
    if flags & !SPLICE_F_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    let file = get_file(t, fd)?;
    let to_pipe = if file.writable() {
        true
    } else if file.readable() {
        false
    } else {
        return Err(Errno::EBADF);
    };
    let iovs = read_iovecs(t, iov, nr_segs)?;
    let total: u64 = iovs.iter().map(|&(_, l)| l).sum();
    if total == 0 {
        return Ok(0);
    }
    let pipe = pipe_of(&file).ok_or(Errno::EBADF)?;
    // Only the flag counts: Linux's vmsplice ignores O_NONBLOCK on the pipe.
    let nonblock = flags & SPLICE_F_NONBLOCK != 0;
    if to_pipe {
        // Gather what could fit, then append as much as there is room for.
        let mut data = Vec::new();
        for &(base, len) in &iovs {
            let take = (len as usize).min(CHUNK - data.len());
            if take == 0 {
                break;
            }
            let start = data.len();
            data.resize(start + take, 0);
            if let Err(e) = t.mm.copy_in(base, &mut data[start..]) {
                data.truncate(start);
                if data.is_empty() {
                    return Err(e);
                }
                break;
            }
        }
        let n = pipe
            .splice_write(data.len(), nonblock, |buf| {
                buf.copy_from_slice(&data[..buf.len()]);
                Ok(buf.len())
            })
            .map_err(fs_err)?;
        Ok(n as u64)
    } else {
        let n = pipe
            .splice_read(total as usize, nonblock, |data| {
                let mut done = 0;
                for &(base, len) in &iovs {
                    if done == data.len() {
                        break;
                    }
                    let take = (len as usize).min(data.len() - done);
                    if t.mm.copy_out(base, &data[done..done + take]).is_err() {
                        return if done > 0 {
                            Ok(done)
                        } else {
                            Err(libc::EFAULT)
                        };
                    }
                    done += take;
                }
                Ok(done)
            })
            .map_err(fs_err)?;
        Ok(n as u64)
    }
}
