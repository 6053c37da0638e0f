//! Linux AIO contexts (fs/aio.c): the completion ring each context maps into the guest,
//! the table of a memory manager's contexts, completion, poll requests and cancellation.
//! The system calls are `syscalls::aio`.
//!
//! The ring is a real guest mapping: a shared mapping of an unnamed memory file, which the
//! sentry writes through the file (coherent with the mapping, `fs::vfs::OpenFile::pwrite`),
//! so that libaio and fio's `userspace_reap` can take completions without a system call, and
//! advance the head themselves, as on Linux. Everything the guest can write in the ring
//! (id, head, tail) is read back as untrusted, and reduced modulo the ring's size as Linux
//! does.
//!
//! Reads and writes run inside io_submit (as Linux's buffered AIO does: the event is in the
//! ring when io_submit returns); fsync runs on the aio worker thread (Linux: a workqueue),
//! and a poll request waits on its file's queue and completes from the worker.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use fs::vfs::{Inode, OpenFile};
use fs::waiter::{Listener, Registration, WaitQueue, POLLIN};

/// `AIO_RING_MAGIC`.
pub const RING_MAGIC: u32 = 0xa10a_10a1;
/// `AIO_RING_COMPAT_FEATURES` (1) and `AIO_RING_INCOMPAT_FEATURES` (0).
const COMPAT_FEATURES: u32 = 1;
/// `sizeof(struct aio_ring)`: id, nr, head, tail, magic, compat, incompat, header_length.
pub const HEADER_LEN: u64 = 32;
/// `sizeof(struct io_event)`: data, obj, res, res2.
pub const EVENT_LEN: u64 = 32;
const HEAD_OFF: u64 = 8;
const TAIL_OFF: u64 = 12;

/// /proc/sys/fs/aio-max-nr: Linux's default, read-only here.
pub const AIO_MAX_NR: u64 = 65536;
/// /proc/sys/fs/aio-nr: the events io_setup asked for, over the sandbox's live contexts
/// (one sandbox per sentry process).
static AIO_NR: AtomicU64 = AtomicU64::new(0);

/// The current aio-nr.
pub fn aio_nr() -> u64 {
    AIO_NR.load(Ordering::Relaxed)
}

/// Counts `n` more requested events against aio-max-nr: false (EAGAIN) if they don't fit.
pub fn reserve_aio_nr(n: u64) -> bool {
    AIO_NR
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
            cur.checked_add(n).filter(|&sum| sum <= AIO_MAX_NR)
        })
        .is_ok()
}

fn release_aio_nr(n: u64) {
    let _ = AIO_NR.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |cur| {
        Some(cur.saturating_sub(n))
    });
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// One `struct io_event`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoEvent {
    pub data: u64,
    pub obj: u64,
    pub res: i64,
    pub res2: i64,
}

impl IoEvent {
    fn bytes(&self) -> [u8; EVENT_LEN as usize] {
        let mut b = [0u8; EVENT_LEN as usize];
        b[0..8].copy_from_slice(&self.data.to_le_bytes());
        b[8..16].copy_from_slice(&self.obj.to_le_bytes());
        b[16..24].copy_from_slice(&self.res.to_le_bytes());
        b[24..32].copy_from_slice(&self.res2.to_le_bytes());
        b
    }
}

/// What a request reports when it completes: its event (res filled in at completion) and
/// the eventfd to signal (IOCB_FLAG_RESFD), held like Linux's eventfd_ctx reference.
pub struct Completion {
    pub event: IoEvent,
    pub resfd: Option<Arc<OpenFile>>,
}

impl Completion {
    fn signal(&self) {
        if let Some(e) = self
            .resfd
            .as_ref()
            .and_then(|f| f.special_desc())
            .and_then(|d| d.as_eventfd())
        {
            e.signal();
        }
    }
}

/// The sizes io_setup derives from the caller's `nr_events` (ioctx_alloc, aio_setup_ring):
/// the ring's slots and its mapping's length, or the errno Linux gives.
pub fn ring_geometry(nr_events: u32, possible_cpus: u32) -> Result<(u32, u64), i32> {
    // Linux doubles the count (per-CPU slot caches may hold up to half) after raising it to
    // 4 per possible CPU, in 32-bit arithmetic, and checks for overflow before the limit.
    let doubled = nr_events
        .max(possible_cpus.saturating_mul(4))
        .wrapping_mul(2);
    if doubled as u64 > 0x1000_0000 / EVENT_LEN {
        return Err(libc::EINVAL);
    }
    if doubled == 0 || nr_events as u64 > AIO_MAX_NR {
        return Err(libc::EAGAIN);
    }
    // "1 is required, 2 for good luck", then as many events as fill the pages.
    let size = HEADER_LEN + EVENT_LEN * (doubled as u64 + 2);
    let len = size.div_ceil(platform::PAGE_SIZE) * platform::PAGE_SIZE;
    let slots = ((len - HEADER_LEN) / EVENT_LEN) as u32;
    Ok((slots, len))
}

/// A pending IOCB_CMD_POLL: registered on its file's queue until an event it asked for
/// holds, or it is cancelled.
pub struct PollReq {
    me: Weak<PollReq>,
    ctx: Weak<Context>,
    file: Arc<OpenFile>,
    /// The events asked for, with POLLERR and POLLHUP.
    events: u32,
    completion: Completion,
    registration: Mutex<Option<Registration>>,
    /// A readiness check is queued on the worker (don't queue another).
    queued: AtomicBool,
    /// The events of the notifications since the last check (Linux's wake key).
    key: AtomicU32,
}

impl Listener for PollReq {
    fn notify(&self, events: u32) {
        if events != 0 && events & self.events == 0 {
            return;
        }
        self.key.fetch_or(events, Ordering::AcqRel);
        // The file may hold its own lock here: look at its readiness from the worker.
        if !self.queued.swap(true, Ordering::AcqRel) {
            if let Some(me) = self.me.upgrade() {
                run_on_worker(Box::new(move || {
                    me.queued.store(false, Ordering::Release);
                    me.check();
                }));
            }
        }
    }
}

impl PollReq {
    /// Completes the request if one of its events holds now. Woken by a notification that
    /// named its events, it reports them as they were named, unmasked (Linux's aio_poll_wake
    /// completes with the wake key: a pipe write gives POLLIN|POLLRDNORM to a POLLIN
    /// request); otherwise (at submission, or a wake without events) the events that hold,
    /// masked by those asked for (aio_poll_complete_work).
    fn check(self: &Arc<Self>) {
        let key = self.key.swap(0, Ordering::AcqRel);
        let mask = self.file.readiness(self.events) & self.events;
        if mask != 0 {
            let res = if key & self.events != 0 { key } else { mask };
            if let Some(ctx) = self.ctx.upgrade() {
                ctx.finish_poll(self, res as i64);
            }
        }
    }
}

#[derive(Default)]
struct State {
    /// The trusted tail (Linux's ctx->tail): where the next event goes.
    tail: u32,
    /// Requests submitted and not yet completed.
    inflight: u32,
    /// io_destroy or the memory manager's end: no more submissions, waiters give EINVAL.
    dead: bool,
    /// Poll requests still waiting: the only cancellable requests, as on Linux.
    polls: Vec<Arc<PollReq>>,
}

/// One AIO context (Linux's kioctx).
pub struct Context {
    /// The ring's memory file, opened read-write for the sentry's coherent writes.
    ring: Arc<OpenFile>,
    ring_inode: Arc<dyn Inode>,
    /// Slots in the ring (trusted; the ring's `nr` field is the guest's copy).
    slots: u32,
    /// What io_setup asked for: counted in aio-nr.
    max_reqs: u32,
    /// The mapping's length.
    map_len: u64,
    /// The ring's address, which is the context's id (moves with mremap).
    user_id: AtomicU64,
    state: Mutex<State>,
    /// Told when an event lands (io_getevents waits here).
    queue: WaitQueue,
    /// Told when the last in-flight request completes (io_destroy waits for it).
    idle: Condvar,
}

impl Context {
    /// A context over a ring file of `map_len` bytes mapped at `user_id`, with its header
    /// written (id comes with [`Table::insert`]).
    pub fn new(
        ring_inode: Arc<dyn Inode>,
        slots: u32,
        max_reqs: u32,
        map_len: u64,
        user_id: u64,
    ) -> Result<Arc<Context>, i32> {
        let ring = OpenFile::new(None, ring_inode.clone(), libc::O_RDWR as u32);
        let ctx = Arc::new(Context {
            ring,
            ring_inode,
            slots,
            max_reqs,
            map_len,
            user_id: AtomicU64::new(user_id),
            state: Mutex::new(State::default()),
            queue: WaitQueue::new(),
            idle: Condvar::new(),
        });
        let header = [
            u32::MAX,
            slots,
            0,
            0,
            RING_MAGIC,
            COMPAT_FEATURES,
            0,
            HEADER_LEN as u32,
        ];
        let bytes: Vec<u8> = header.iter().flat_map(|v| v.to_le_bytes()).collect();
        ctx.write_ring(0, &bytes)?;
        Ok(ctx)
    }

    pub fn user_id(&self) -> u64 {
        self.user_id.load(Ordering::Relaxed)
    }

    pub fn map_len(&self) -> u64 {
        self.map_len
    }

    pub fn slots(&self) -> u32 {
        self.slots
    }

    pub fn queue(&self) -> &WaitQueue {
        &self.queue
    }

    fn write_ring(&self, offset: u64, data: &[u8]) -> Result<(), i32> {
        match self.ring.pwrite(data, offset)? {
            n if n == data.len() => Ok(()),
            _ => Err(libc::EIO),
        }
    }

    fn read_ring_u32(&self, offset: u64) -> u32 {
        let mut b = [0u8; 4];
        // The ring file is never shorter than its header: a failure reads as 0.
        let _ = self.ring.pread(&mut b, offset);
        u32::from_le_bytes(b)
    }

    fn slot_offset(&self, slot: u32) -> u64 {
        HEADER_LEN + slot as u64 * EVENT_LEN
    }

    /// The guest's head, reduced into the ring as Linux does with what user space wrote.
    fn head(&self) -> u32 {
        self.read_ring_u32(HEAD_OFF) % self.slots
    }

    /// Reserves a slot for one request (Linux's aio_get_req): EAGAIN while the requests in
    /// flight and the events not yet taken fill the ring but one slot; EINVAL once dead.
    pub fn reserve(&self) -> Result<(), i32> {
        let mut st = lock(&self.state);
        if st.dead {
            return Err(libc::EINVAL);
        }
        let unread = (st.tail + self.slots - self.head()) % self.slots;
        if st.inflight as u64 + unread as u64 >= self.slots as u64 - 1 {
            return Err(libc::EAGAIN);
        }
        st.inflight += 1;
        Ok(())
    }

    /// Gives back a slot whose request failed at submission.
    pub fn unreserve(&self) {
        let mut st = lock(&self.state);
        st.inflight = st.inflight.saturating_sub(1);
        if st.inflight == 0 {
            self.idle.notify_all();
        }
    }

    /// Puts a completed request's event in the ring (Linux's aio_complete), under the state
    /// lock: the event first, then the tail the guest reads.
    fn post_locked(&self, st: &mut State, event: &IoEvent) {
        let slot = st.tail % self.slots;
        // The ring file is the sentry's own, sized at io_setup: these writes can't fail
        // short of the sandbox running out of memory, and then the event is lost.
        if let Err(e) = self.write_ring(self.slot_offset(slot), &event.bytes()) {
            tracing::warn!("aio: event lost writing the ring: errno {e}");
        }
        st.tail = (slot + 1) % self.slots;
        let _ = self.write_ring(TAIL_OFF, &st.tail.to_le_bytes());
        st.inflight = st.inflight.saturating_sub(1);
        if st.inflight == 0 {
            self.idle.notify_all();
        }
    }

    /// Completes a request with `res`: the event in the ring, the eventfd signalled, the
    /// waiters told.
    pub fn complete(&self, c: Completion, res: i64) {
        let event = IoEvent { res, ..c.event };
        self.post_locked(&mut lock(&self.state), &event);
        c.signal();
        self.queue.notify(POLLIN);
    }

    /// Starts an IOCB_CMD_POLL on `file` for `events` (with POLLERR and POLLHUP): completes
    /// at once if one holds, else waits on the file's queue. A file without a queue that
    /// isn't ready can never become so: EINVAL, as Linux (no wait queue was added).
    pub fn start_poll(
        self: &Arc<Self>,
        file: Arc<OpenFile>,
        events: u32,
        completion: Completion,
    ) -> Result<(), i32> {
        let Some(queue) = file.wait_queue().cloned() else {
            let mask = file.readiness(events) & events;
            if mask == 0 {
                return Err(libc::EINVAL);
            }
            self.complete(completion, mask as i64);
            return Ok(());
        };
        let req = Arc::new_cyclic(|me| PollReq {
            me: me.clone(),
            ctx: Arc::downgrade(self),
            file,
            events,
            completion,
            registration: Mutex::new(None),
            queued: AtomicBool::new(false),
            key: AtomicU32::new(0),
        });
        // Listed and registered before the first check, so that no change is missed.
        lock(&self.state).polls.push(req.clone());
        *lock(&req.registration) = Some(queue.register(&req, events));
        req.check();
        Ok(())
    }

    /// Completes a waiting poll request with `res`, if it is still waiting.
    fn finish_poll(&self, req: &Arc<PollReq>, res: i64) {
        let mut st = lock(&self.state);
        let Some(i) = st.polls.iter().position(|p| Arc::ptr_eq(p, req)) else {
            return;
        };
        st.polls.swap_remove(i);
        let event = IoEvent {
            res,
            ..req.completion.event
        };
        self.post_locked(&mut st, &event);
        drop(st);
        lock(&req.registration).take();
        req.completion.signal();
        self.queue.notify(POLLIN);
    }

    /// io_cancel: cancels the waiting poll request whose iocb is at `obj`, which completes
    /// with 0 (Linux's aio_poll_cancel: a cancelled poll reports no events); EINVAL when
    /// no cancellable request has that iocb.
    pub fn cancel(&self, obj: u64) -> Result<(), i32> {
        let req = lock(&self.state)
            .polls
            .iter()
            .find(|p| p.completion.event.obj == obj)
            .cloned()
            .ok_or(libc::EINVAL)?;
        self.finish_poll(&req, 0);
        Ok(())
    }

    /// Copies up to `max` events to the guest with `store(events, byte index)` (Linux's
    /// aio_read_events_ring), advancing the ring's head past them. Head and tail are read
    /// from the ring, as Linux reads them, reduced modulo its size. A store that fails
    /// consumes nothing: EFAULT.
    /// With `need`, takes nothing unless at least that many are there (for a caller that
    /// must not wait and must not consume part of what it needs).
    pub fn take_events(
        &self,
        max: u64,
        need: u64,
        mut store: impl FnMut(&[u8], u64) -> Result<(), ()>,
    ) -> Result<u64, i32> {
        let _st = lock(&self.state);
        let head0 = self.read_ring_u32(HEAD_OFF);
        let tail0 = self.read_ring_u32(TAIL_OFF);
        if head0 == tail0 {
            return Ok(0);
        }
        let (mut head, tail) = (head0 % self.slots, tail0 % self.slots);
        if (((tail + self.slots - head) % self.slots) as u64) < need {
            return Ok(0);
        }
        let mut taken = 0u64;
        let mut buf = Vec::new();
        while taken < max && head != tail {
            let run = if head <= tail { tail } else { self.slots } - head;
            let run = (run as u64).min(max - taken);
            buf.resize((run * EVENT_LEN) as usize, 0);
            if self.ring.pread(&mut buf, self.slot_offset(head)).is_err() {
                return Err(libc::EFAULT);
            }
            store(&buf, taken * EVENT_LEN).map_err(|()| libc::EFAULT)?;
            taken += run;
            head = ((head as u64 + run) % self.slots as u64) as u32;
        }
        let _ = self.write_ring(HEAD_OFF, &head.to_le_bytes());
        Ok(taken)
    }

    /// Events in the ring not yet taken, as io_getevents would count them.
    pub fn available(&self) -> u64 {
        let _st = lock(&self.state);
        let (head, tail) = (self.head(), self.read_ring_u32(TAIL_OFF) % self.slots);
        ((tail + self.slots - head) % self.slots) as u64
    }

    pub fn dead(&self) -> bool {
        lock(&self.state).dead
    }

    /// Marks the context dead (false if it already was), wakes io_getevents waiters, then
    /// cancels its waiting polls (Linux's kill_ioctx up to the wait; Linux cancels later
    /// still, after an RCU grace period, so waiters nearly always see the death first).
    fn kill(&self) -> bool {
        let polls = {
            let mut st = lock(&self.state);
            if st.dead {
                return false;
            }
            st.dead = true;
            st.polls.clone()
        };
        release_aio_nr(self.max_reqs as u64);
        self.queue.notify(0);
        for p in &polls {
            self.finish_poll(p, 0);
        }
        true
    }

    /// Waits, without interruption as Linux, until no request is in flight: reads and
    /// writes other threads are doing end (or are interrupted when their group exits),
    /// fsyncs end on the worker, polls were cancelled by `kill`.
    fn wait_idle(&self) {
        let mut st = lock(&self.state);
        while st.inflight > 0 {
            st = self
                .idle
                .wait_timeout(st, Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Whether this context's ring is `inode`'s.
    fn has_ring(&self, inode: &Arc<dyn Inode>) -> bool {
        Arc::ptr_eq(&self.ring_inode, inode)
    }
}

/// A memory manager's contexts (Linux's mm->ioctx_table), indexed by the id written in each
/// ring. Threads sharing the memory manager share it; fork and exec start empty.
#[derive(Default)]
pub struct Table {
    slots: Mutex<Vec<Option<Arc<Context>>>>,
}

impl Table {
    /// Adds `ctx` at the first free index, which becomes the ring's id.
    pub fn insert(&self, ctx: &Arc<Context>) -> Result<(), i32> {
        let mut slots = lock(&self.slots);
        let id = match slots.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                slots.push(None);
                slots.len() - 1
            }
        };
        ctx.write_ring(0, &(id as u32).to_le_bytes())?;
        slots[id] = Some(ctx.clone());
        Ok(())
    }

    /// The live context `ctx_id` names, given the id its ring holds (read from guest memory
    /// at `ctx_id`, as Linux's lookup_ioctx: an unmapped ring finds nothing).
    pub fn lookup(&self, ctx_id: u64, ring_id: u32) -> Option<Arc<Context>> {
        let slots = lock(&self.slots);
        let ctx = slots.get(ring_id as usize)?.as_ref()?;
        (ctx.user_id() == ctx_id && !ctx.dead()).then(|| ctx.clone())
    }

    /// io_destroy's first half: takes `ctx` out and kills it; false if another caller got
    /// there first (EINVAL). The caller unmaps the ring, then waits with [`destroy_wait`].
    pub fn remove(&self, ctx: &Arc<Context>) -> bool {
        {
            let mut slots = lock(&self.slots);
            for s in slots.iter_mut() {
                if s.as_ref().is_some_and(|c| Arc::ptr_eq(c, ctx)) {
                    *s = None;
                }
            }
        }
        ctx.kill()
    }

    /// mremap moved the ring of one of these contexts to `to` (Linux's aio_ring_mremap).
    pub fn ring_moved(&self, inode: &Arc<dyn Inode>, to: u64) {
        let slots = lock(&self.slots);
        if let Some(ctx) = slots.iter().flatten().find(|c| c.has_ring(inode)) {
            if !ctx.dead() {
                ctx.user_id.store(to, Ordering::Relaxed);
            }
        }
    }
}

/// io_destroy's second half: waits until `ctx` has nothing in flight.
pub fn destroy_wait(ctx: &Context) {
    ctx.wait_idle();
}

impl Drop for Table {
    /// The memory manager ends (exit, exec): every context dies and its requests finish
    /// first (Linux's exit_aio), so that nothing writes into memory that is gone.
    fn drop(&mut self) {
        let slots = std::mem::take(&mut *lock(&self.slots));
        for ctx in slots.into_iter().flatten() {
            ctx.kill();
            ctx.wait_idle();
        }
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// Runs `job` on the aio worker thread (Linux's system workqueue for aio's fsync and poll
/// completion), started on first use. If the thread can't be started the job runs here.
pub fn run_on_worker(job: Job) {
    static WORKER: OnceLock<Option<Mutex<mpsc::Sender<Job>>>> = OnceLock::new();
    let worker = WORKER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("aio-worker".into())
            .spawn(move || {
                for job in rx {
                    job();
                }
            })
            .map_err(|e| tracing::warn!("aio: no worker thread: {e}"))
            .ok()
            .map(|_| Mutex::new(tx))
    });
    match worker {
        Some(tx) => {
            if let Err(mpsc::SendError(job)) = lock(tx).send(job) {
                job();
            }
        }
        None => job(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn geometry_as_linux() {
        // 2 possible CPUs: at least 8 events, doubled, +2, rounded up to whole pages.
        assert_eq!(ring_geometry(1, 2), Ok((127, 4096)));
        assert_eq!(ring_geometry(128, 2), Ok((383, 3 * 4096)));
        assert_eq!(ring_geometry(65536, 2).map(|g| g.0 >= 131072), Ok(true));
        assert_eq!(ring_geometry(65537, 2), Err(libc::EAGAIN));
        // Doubling past the overflow check before the limit: EINVAL.
        assert_eq!(ring_geometry(4_194_305, 2), Err(libc::EINVAL));
        assert_eq!(ring_geometry(0x7fff_ffff, 2), Err(libc::EINVAL));
        // Doubling wraps to 0: EAGAIN.
        assert_eq!(ring_geometry(0x8000_0000, 2), Err(libc::EAGAIN));
    }

    #[test]
    fn aio_nr_limit() {
        assert!(reserve_aio_nr(AIO_MAX_NR));
        assert!(!reserve_aio_nr(1));
        release_aio_nr(AIO_MAX_NR);
        assert!(reserve_aio_nr(1));
        release_aio_nr(1);
    }
}
