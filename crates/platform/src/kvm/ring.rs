//! The exitless system call transport: per-vCPU shared pages polled by one sentry thread.
//!
//! Protocol (the trampoline's side is in `guest_code.rs`): the guest saves its registers in
//! the page and sets `state` to REQUEST. The poller claims a request with a compare-and-swap
//! REQUEST -> SERVING, serves it and stores DONE; the guest reloads registers and returns. When
//! `poller_active` is zero the guest claims its own request (REQUEST -> EXIT) and writes the
//! doorbell, exiting to its vCPU thread, which serves it the same way. Exactly one side wins
//! each request. A request the poller may not serve (it could block) stays SERVING and is
//! handed to the vCPU thread by kicking it out of `KVM_RUN`.
//!
//! The page is guest-writable: the sentry copies registers out once, never re-reads them,
//! and treats every value as untrusted.

use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::kvm::layout::PAGE_SIZE;
use crate::memory::{Gpa, MemoryFile};
use crate::{FastSyscalls, Fault, Interrupter, Retry, RingFpu, UserRegs};

pub const STATE_IDLE: u32 = 0;
pub const STATE_REQUEST: u32 = 1;
pub const STATE_SERVING: u32 = 2;
pub const STATE_DONE: u32 = 3;
pub const STATE_EXIT: u32 = 4;
/// The poller declined the request: the guest rings the doorbell so that its own thread,
/// which finds the request in `RingSlot::deferred`, serves it.
pub const STATE_DEFER: u32 = 5;

const OFF_STATE: u64 = 0x00;
const OFF_ACTIVE: u64 = 0x04;
const OFF_KIND: u64 = 0x08;
const OFF_BEAT: u64 = 0x10;
const OFF_BEAT_LIMIT: u64 = 0x18;
const OFF_EXCEPTION: u64 = 0xd0;
const OFF_FPOP: u64 = 0x20;
const OFF_XSAVE: u64 = 0x100;
/// Room for the XSAVE image in the page (up to the trampoline's frame at 0xf00).
pub const XSAVE_ROOM: usize = 0xe00;
/// FPU operations of an answer (see `RingFpu`), bits: XRSTOR from the page first, then
/// XSAVE to it and ask again.
const FPOP_SAVE: u32 = 1;
const FPOP_RESTORE: u32 = 2;
/// Request kinds.
pub const KIND_SYSCALL: u32 = 0;
pub const KIND_EXCEPTION: u32 = 1;
/// The trampoline saved the FPU state in the page, as an answer asked (`FpuOp::Save`), and
/// waits for the pending signals' delivery; the registers are the thread's.
pub const KIND_FPU_SAVED: u32 = 2;
const OFF_REGS: u64 = 0x40;
/// Registers in the page, in order: the 16 GPRs, RIP, RFLAGS.
const NREGS: usize = 18;

/// How long the poller keeps spinning after the last request before it sleeps: its window,
/// between these bounds. A program making calls more often than the window stays on the ring;
/// a call that finds the poller asleep costs an exit (tens of microseconds quiet, hundreds
/// under load).
const SPIN_MIN: Duration = Duration::from_micros(200);
const SPIN_MAX: Duration = Duration::from_millis(2);
/// Spin time counted per clock reading at most: time the poller spent preempted is not time it
/// spent waiting for requests. Without this a poller that lost its core for a few ms went to
/// sleep the moment it came back, and every request after that took the exit.
const MAX_STEP: Duration = Duration::from_micros(50);
/// A poller woken by an exit within this many windows of going to sleep, having answered
/// requests in its last waking spell, slept too soon (the program's calls come further apart
/// than the window, typically because each one that missed the poller paid an exit: a
/// self-sustaining fall-back to exits); its window doubles. One that slept for more than
/// `SHRINK_AFTER` windows halves it.
const GROW_BEFORE: u32 = 16;
const SHRINK_AFTER: u32 = 256;
/// Waking spells in a row, each begun by an exit, in which the poller answered nothing,
/// after which it spins only `1/FRUITLESS_DIVISOR` of its window until it answers again.
/// Under load (other jobs on both cores) the poller rarely has a core when a request
/// comes: every call takes the exit, each exit wakes the poller, and it spun its whole
/// window (at least 200 us) for nothing, taking CPU from the vCPU threads that do the work.
/// Measured then (load 6-8 on 2 cores): loopback TCP request/response 424-570 us on the ring
/// path against 292-373 us with `--syscall-path=exit`, connect+accept+close 780-860 us
/// against 500-640 us. A program whose calls come often still finds the poller within the
/// short spin after an exit, and its first answer restores the window.
const FRUITLESS_SPELLS: u32 = 2;
const FRUITLESS_DIVISOR: u32 = 8;
/// While spells are fruitless, only one exit in this many wakes the poller. Each wake-up is a
/// futex wake, a context switch and a short spin: in `netbench rr` under load (load average
/// ~10 on the 2 cores) every call went by exit, the poller was woken ~2 times per round trip
/// and still took 26-29% of the sandbox's CPU samples (`perf record`), all spent finding
/// nothing. A program whose calls would find the poller again still gets there: the probe
/// that answers ends the fruitless run, and every exit wakes it again.
const FRUITLESS_WAKE_EVERY: u32 = 16;

/// A vCPU's shared page.
pub struct SharedPage {
    mem: Arc<MemoryFile>,
    gpa: Gpa,
    /// The page's host address, found once: the poller reads its words every round, and
    /// `MemoryFile::host_ptr` (a call with its bounds check) was 6% of the poller's samples
    /// in a profile of `tar czf`.
    host: NonNull<u8>,
}

// SAFETY: `host` points into the memory file's mapping, which `mem` keeps alive and never
// moves; the page's words are only accessed through atomics or volatile copies, from any
// thread, as the guest accesses them concurrently anyway.
unsafe impl Send for SharedPage {}
// SAFETY: as for Send: no method hands out a Rust reference to non-atomic page memory.
unsafe impl Sync for SharedPage {}

impl SharedPage {
    pub fn new(mem: Arc<MemoryFile>, gpa: Gpa) -> Self {
        let host = NonNull::new(mem.host_ptr(gpa, PAGE_SIZE))
            .expect("the memory file's mapping is not at address 0");
        SharedPage { mem, gpa, host }
    }

    /// Host address of the word at `offset`, which must lie inside the page.
    fn word(&self, offset: u64, len: u64) -> *mut u8 {
        debug_assert!(offset + len <= PAGE_SIZE);
        // SAFETY: offset + len is within the page (every caller passes a constant offset
        // below PAGE_SIZE), so the result stays inside the mapping.
        unsafe { self.host.as_ptr().add(offset as usize) }
    }

    fn atomic(&self, offset: u64) -> &AtomicU32 {
        let ptr = self.word(offset, 4) as *mut u32;
        // SAFETY: aligned, inside the memory file which outlives self; the guest accesses the
        // word only with plain or locked 32-bit instructions, which are atomic on x86.
        unsafe { AtomicU32::from_ptr(ptr) }
    }

    pub fn state(&self) -> &AtomicU32 {
        self.atomic(OFF_STATE)
    }

    pub fn set_poller_active(&self, active: bool) {
        self.atomic(OFF_ACTIVE)
            .store(active as u32, Ordering::SeqCst);
    }

    fn atomic64(&self, offset: u64) -> &AtomicU64 {
        let ptr = self.word(offset, 8) as *mut u64;
        // SAFETY: 8-aligned, inside the memory file which outlives self; the guest only reads
        // these words, with plain 64-bit loads (atomic on x86).
        unsafe { AtomicU64::from_ptr(ptr) }
    }

    /// Records that the poller ran at guest TSC `tsc`.
    fn beat(&self, tsc: u64) {
        self.atomic64(OFF_BEAT).store(tsc, Ordering::Relaxed);
    }

    /// How many TSC ticks after the last heartbeat the guest stops waiting for the poller.
    fn set_beat_limit(&self, ticks: u64) {
        self.atomic64(OFF_BEAT_LIMIT)
            .store(ticks, Ordering::Relaxed);
    }

    /// Claims a request in state `from` for the sentry.
    pub fn claim(&self, from: u32) -> bool {
        self.state()
            .compare_exchange(from, STATE_SERVING, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// The kind of the pending request.
    pub fn kind(&self) -> u32 {
        self.atomic(OFF_KIND).load(Ordering::Relaxed)
    }

    /// The exception of a request of kind [`KIND_EXCEPTION`]: vector, error code and CR2.
    pub fn read_exception(&self) -> (u64, u64, u64) {
        let mut raw = [0u8; 24];
        self.mem.read(self.gpa + OFF_EXCEPTION, &mut raw);
        let v = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        (v(0), v(1), v(2))
    }

    /// Copies the guest's registers out of the page (FS/GS base are not part of it).
    pub fn read_regs(&self, regs: &mut UserRegs) {
        let mut raw = [0u8; NREGS * 8];
        self.mem.read(self.gpa + OFF_REGS, &mut raw);
        let v = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
        regs.rax = v(0);
        regs.rbx = v(1);
        regs.rcx = v(2);
        regs.rdx = v(3);
        regs.rsi = v(4);
        regs.rdi = v(5);
        regs.rbp = v(6);
        regs.rsp = v(7);
        regs.r8 = v(8);
        regs.r9 = v(9);
        regs.r10 = v(10);
        regs.r11 = v(11);
        regs.r12 = v(12);
        regs.r13 = v(13);
        regs.r14 = v(14);
        regs.r15 = v(15);
        regs.rip = v(16);
        regs.rflags = v(17);
    }

    /// The exception of a request of kind [`KIND_EXCEPTION`], decoded.
    pub fn fault(&self) -> Fault {
        let (vector, error_code, cr2) = self.read_exception();
        super::vcpu::decode_fault(
            &super::vcpu::ExceptionFrame {
                vector,
                error_code,
                rip: 0,
                cs: 0,
                rflags: 0,
                rsp: 0,
            },
            cr2,
        )
    }

    /// Writes the registers the guest resumes with and answers the request.
    pub fn answer(&self, regs: &UserRegs) {
        self.answer_fpu(regs, None);
    }

    /// The XSAVE image the trampoline saved (kind [`KIND_FPU_SAVED`]), `len` bytes.
    pub fn read_xsave(&self, len: usize) -> Vec<u8> {
        let mut image = vec![0u8; len.min(XSAVE_ROOM)];
        self.mem.read(self.gpa + OFF_XSAVE, &mut image);
        image
    }

    /// As [`SharedPage::answer`], with what the trampoline does with the FPU state first.
    /// An image to restore must fit the page and have passed `xrstor_ok`.
    pub fn answer_fpu(&self, regs: &UserRegs, fpu: Option<&RingFpu>) {
        let mut op = 0;
        if let Some(f) = fpu {
            if let Some(image) = &f.restore {
                // The page is the thread's alone while it waits in the trampoline: no
                // other thread can change the image between this write and its XRSTOR.
                self.mem
                    .write(self.gpa + OFF_XSAVE, &image[..image.len().min(XSAVE_ROOM)]);
                op |= FPOP_RESTORE;
            }
            if f.save {
                op |= FPOP_SAVE;
            }
        }
        self.atomic(OFF_FPOP).store(op, Ordering::Relaxed);
        let values = [
            regs.rax,
            regs.rbx,
            regs.rcx,
            regs.rdx,
            regs.rsi,
            regs.rdi,
            regs.rbp,
            regs.rsp,
            regs.r8,
            regs.r9,
            regs.r10,
            regs.r11,
            regs.r12,
            regs.r13,
            regs.r14,
            regs.r15,
            sanitize_rip(regs.rip),
            // As Linux lets user mode set them: the direct switch's return takes RFLAGS as
            // given, so IOPL, VM and the like are cleared here; IF is always on.
            (regs.rflags & 0x0000_0000_003f_4fd5) | 0x202,
        ];
        let mut raw = [0u8; NREGS * 8];
        for (i, v) in values.iter().enumerate() {
            raw[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
        }
        self.mem.write(self.gpa + OFF_REGS, &raw);
        self.state().store(STATE_DONE, Ordering::Release);
    }
}

/// A non-canonical or kernel return address would fault inside the ring-0 trampoline's
/// `sysretq` on some CPUs; send such a thread to address 0 instead, where it faults in user
/// mode just as it would have at the bad address.
fn sanitize_rip(rip: u64) -> u64 {
    if rip < 0x8000_0000_0000 {
        rip
    } else {
        0
    }
}

/// Kicks a context's thread out of `KVM_RUN`. It lives as long as the context; the vCPU under
/// it may change (a context waiting in a long call gives its vCPU up when they are scarce).
pub struct Kicker {
    tid: libc::pid_t,
    /// `kvm_run.immediate_exit` of the vCPU the context is on; null while it has none.
    immediate_exit: AtomicPtr<u8>,
    /// Set when the kick asks the thread to return `Event::Interrupted`.
    pub interrupted: AtomicBool,
    /// Set when the context ended: a kick that comes later (a delayed re-kick) would stop
    /// the vCPU's next context for nothing and signal a thread id that may be reused.
    retired: AtomicBool,
    /// Keeps the VM, and with it the vCPU's kvm_run mapping, alive as long as this kicker:
    /// a kick can come after the context ended (a delayed re-kick), even after the sandbox
    /// finished, and must not write to an unmapped page (it crashed runsc that way).
    _vm: Arc<dyn std::any::Any + Send + Sync>,
}

/// The signal used to kick vCPU threads; its handler does nothing.
pub const KICK_SIGNAL: libc::c_int = libc::SIGUSR2;

impl Kicker {
    pub fn new(tid: libc::pid_t, vm: Arc<dyn std::any::Any + Send + Sync>) -> Self {
        Kicker {
            tid,
            immediate_exit: AtomicPtr::new(std::ptr::null_mut()),
            interrupted: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            _vm: vm,
        }
    }

    /// Makes the vCPU's current or next `KVM_RUN` return EINTR (nothing once retired).
    pub fn kick(&self) {
        if self.retired.load(Ordering::SeqCst) {
            return;
        }
        Self::set_immediate_exit(self.immediate_exit.load(Ordering::SeqCst));
        // SAFETY: plain syscall; a stale tid at worst signals a thread that ignores it.
        unsafe {
            libc::syscall(libc::SYS_tgkill, libc::getpid(), self.tid, KICK_SIGNAL);
        }
    }
}

impl Kicker {
    /// Called when the context ends, before its vCPU goes back to the pool.
    pub fn retire(&self) {
        self.retired.store(true, Ordering::SeqCst);
    }

    /// The context is now on the vCPU whose `kvm_run.immediate_exit` is `ptr`. An interrupt
    /// that came while it had none is applied now, so that its first `KVM_RUN` returns.
    pub fn attach(&self, ptr: *mut u8) {
        self.immediate_exit.store(ptr, Ordering::SeqCst);
        // Paired with `interrupt`, which sets the flag before it reads the pointer: one of
        // the two sees the other's store.
        if self.interrupted.load(Ordering::SeqCst) {
            Self::set_immediate_exit(ptr);
        }
    }

    /// The context left its vCPU (before the vCPU goes back to the pool).
    pub fn detach(&self) {
        self.immediate_exit
            .store(std::ptr::null_mut(), Ordering::SeqCst);
    }

    fn set_immediate_exit(ptr: *mut u8) {
        if ptr.is_null() {
            return;
        }
        // SAFETY: `ptr` points into a vCPU's kvm_run mapping. vCPUs are never destroyed
        // before their VM (they are pooled), and the kicker holds the VM (`_vm`), so the
        // mapping outlives every kicker; the byte is only accessed with atomic stores here
        // and by KVM. A kick racing `detach` may set it on the vCPU's next context: that
        // one's `KVM_RUN` returns once for nothing, and runs on.
        unsafe { AtomicU8::from_ptr(ptr) }.store(1, Ordering::SeqCst);
    }
}

impl Interrupter for Kicker {
    fn interrupt(&self) {
        self.interrupted.store(true, Ordering::SeqCst);
        self.kick();
    }
}

/// A request the poller handed to the context's thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handed {
    Syscall,
    Fault(Fault),
    /// The trampoline saved the FPU state for a signal's delivery (kind
    /// [`KIND_FPU_SAVED`]): the thread delivers it, as at any return to user mode.
    SignalPoint,
}

/// How a context's system calls were served (reported at debug level when it ends).
#[derive(Debug, Default)]
pub struct RingStats {
    pub by_poller: AtomicU64,
    pub deferred: AtomicU64,
    pub by_exit: AtomicU64,
    /// Exceptions (direct switch) resolved by the poller, handed to the thread, or rung.
    pub faults_by_poller: AtomicU64,
    pub faults_deferred: AtomicU64,
    pub faults_by_exit: AtomicU64,
    /// Calls that would have waited, kept on the ring for a while: answered there, or handed
    /// to the thread when their time was up (counted in `deferred` too).
    pub ring_waits_served: AtomicU64,
    pub ring_waits_handed_over: AtomicU64,
    /// Signal deliveries after a saved FPU state (kind 2): by the poller, or by the thread.
    pub signals_by_poller: AtomicU64,
    pub signals_by_thread: AtomicU64,
}

/// One context's end of the ring.
pub struct RingSlot {
    pub page: SharedPage,
    pub stats: RingStats,
    fast: Arc<dyn FastSyscalls>,
    /// A request the poller declined, waiting for the vCPU thread (with its exception, if
    /// it is one).
    deferred: Mutex<Option<(UserRegs, Handed)>>,
    pub kicker: Arc<Kicker>,
    /// Whether the guest code rings the doorbell on DEFER (the user-mode trampoline and the
    /// stubs do; the ring-0 trampoline does not, and is kicked instead).
    defer_by_doorbell: bool,
    /// The guest's XCR0 where the trampoline does FPU operations (`FpuOp`), and the size of
    /// the XSAVE image; None where it doesn't (the ring-0 trampoline).
    fpu_ops: Option<(u64, usize)>,
    /// False once the context has ended. The poller serves the slot only while holding this
    /// lock with the flag true, and [`Poller::unregister`] clears it under the lock, so once
    /// unregister returns the poller never touches the page through this slot again. Without
    /// it the poller, working from a copy of the slot list, could claim a request on the
    /// shared page after its vCPU went back to the pool and to another thread: it served
    /// the new thread's call with the old thread's state, or parked it in the old slot's
    /// `deferred`, where the new thread's doorbell found nothing ("DEFER without a
    /// request") and the guest waited for ever (the thread-storm hang).
    live: Mutex<bool>,
    /// A call waiting on the ring (see [`FastSyscalls::ring_wait`]) and when its time is
    /// up; the page stays SERVING meanwhile. `has_waiting` is the cheap look.
    waiting: Mutex<Option<(UserRegs, Instant)>>,
    has_waiting: AtomicBool,
}

impl RingSlot {
    pub fn new(
        page: SharedPage,
        fast: Arc<dyn FastSyscalls>,
        kicker: Arc<Kicker>,
        defer_by_doorbell: bool,
        fpu_ops: Option<(u64, usize)>,
    ) -> Self {
        RingSlot {
            page,
            stats: RingStats::default(),
            fast,
            deferred: Mutex::new(None),
            kicker,
            defer_by_doorbell,
            fpu_ops: fpu_ops.filter(|&(_, len)| len <= XSAVE_ROOM),
            live: Mutex::new(true),
            waiting: Mutex::new(None),
            has_waiting: AtomicBool::new(false),
        }
    }

    /// The request the poller declined, if one waits for the vCPU thread (taking it).
    pub fn take_deferred(&self) -> Option<(UserRegs, Handed)> {
        self.deferred
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Serves a pending request if there is one. Returns whether one was found, and whether
    /// the poller answered it or keeps it waiting on the ring (rather than handing it to the
    /// thread).
    fn poll(&self) -> (bool, bool) {
        if self.has_waiting.load(Ordering::Relaxed) {
            return self.poll_waiting();
        }
        // A cheap look first: most polls find nothing, and the page may already belong to
        // another slot (then the check under `live` below says no).
        if self.page.state().load(Ordering::Relaxed) != STATE_REQUEST {
            return (false, false);
        }
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if !*live || !self.page.claim(STATE_REQUEST) {
            return (false, false);
        }
        let mut regs = UserRegs::default();
        self.page.read_regs(&mut regs);
        let kind = self.page.kind();
        if kind == KIND_FPU_SAVED {
            return self.deliver(regs);
        }
        let fault = (kind == KIND_EXCEPTION).then(|| self.page.fault());
        let mut fpu = self.fpu_ops.map(|(xcr0, _)| RingFpu {
            xcr0,
            ..Default::default()
        });
        let served = match &fault {
            None => self.fast.serve_ring(&mut regs, fpu.as_mut()),
            Some(f) => self.fast.serve_fault(f, &mut regs),
        };
        let (done, deferred) = match fault {
            None => (&self.stats.by_poller, &self.stats.deferred),
            Some(_) => (&self.stats.faults_by_poller, &self.stats.faults_deferred),
        };
        if served {
            self.page.answer_fpu(&regs, fpu.as_ref());
            done.fetch_add(1, Ordering::Relaxed);
        } else if let Some(d) = fault
            .is_none()
            .then(|| self.fast.ring_wait(&regs))
            .flatten()
        {
            // It would wait: keep it on the ring for a while (the guest spins in SERVING).
            *self.waiting.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((regs, Instant::now() + d));
            self.has_waiting.store(true, Ordering::Relaxed);
            return (true, true);
        } else {
            deferred.fetch_add(1, Ordering::Relaxed);
            self.hand_over(regs, fault.map_or(Handed::Syscall, Handed::Fault));
        }
        (true, served)
    }

    /// A request of kind [`KIND_FPU_SAVED`] (claimed): the pending signals are delivered
    /// with the saved FPU state, here or by the thread.
    fn deliver(&self, mut regs: UserRegs) -> (bool, bool) {
        let before = regs;
        if let Some((xcr0, len)) = self.fpu_ops {
            let xsave = self.page.read_xsave(len);
            let mut fpu = RingFpu {
                xcr0,
                ..Default::default()
            };
            if self.fast.deliver(&mut regs, &xsave, &mut fpu) {
                self.page.answer_fpu(&regs, Some(&fpu));
                self.stats.signals_by_poller.fetch_add(1, Ordering::Relaxed);
                return (true, true);
            }
        }
        self.hand_over(before, Handed::SignalPoint);
        (true, false)
    }

    /// Retries the call waiting on the ring: answers it, leaves it, or hands it to the
    /// thread when its time is up (or the slot died).
    fn poll_waiting(&self) -> (bool, bool) {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let Some((regs, until)) = waiting.as_mut() else {
            self.has_waiting.store(false, Ordering::Relaxed);
            return (false, false);
        };
        let last = !*live || Instant::now() >= *until;
        let outcome = self.fast.retry(regs, last);
        if !*live {
            // The context ended (its thread left the call): only clean up.
            *waiting = None;
            self.has_waiting.store(false, Ordering::Relaxed);
            return (false, false);
        }
        match outcome {
            // Still waiting counts as found, which keeps the poller awake: the guest spins
            // until the call is answered or handed over.
            Retry::Wait if !last => (true, true),
            Retry::Done => {
                self.page.answer(regs);
                *waiting = None;
                self.has_waiting.store(false, Ordering::Relaxed);
                self.stats.by_poller.fetch_add(1, Ordering::Relaxed);
                self.stats.ring_waits_served.fetch_add(1, Ordering::Relaxed);
                (true, true)
            }
            Retry::Wait | Retry::HandOver => {
                let regs = *regs;
                *waiting = None;
                self.has_waiting.store(false, Ordering::Relaxed);
                self.stats.deferred.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .ring_waits_handed_over
                    .fetch_add(1, Ordering::Relaxed);
                self.hand_over(regs, Handed::Syscall);
                (true, false)
            }
        }
    }

    /// Gives a claimed request (state SERVING) to the context's thread.
    fn hand_over(&self, regs: UserRegs, what: Handed) {
        {
            *self.deferred.lock().unwrap_or_else(|e| e.into_inner()) = Some((regs, what));
            if self.defer_by_doorbell {
                // Only from SERVING: a kick (a signal for the thread) may already have made
                // the thread take the request and answer it (DONE); a plain store would then
                // turn DONE into DEFER, and the doorbell that follows would find nothing to
                // take while the guest waits for ever.
                let _ = self.page.state().compare_exchange(
                    STATE_SERVING,
                    STATE_DEFER,
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
            } else {
                self.kicker.kick();
            }
        }
    }
}

struct PollerShared {
    slots: Mutex<Vec<Arc<RingSlot>>>,
    /// Bumped whenever `slots` changes, so the poller copies the list only then.
    generation: AtomicU64,
    stop: AtomicBool,
    sleeping: AtomicBool,
    /// Set by [`Poller::wake`]: a request took the exit because the poller slept.
    woken_by_exit: AtomicBool,
    /// Guest TSC minus host TSC, and the heartbeat limit in TSC ticks (see `beat_all`).
    tsc_offset: AtomicU64,
    beat_limit: AtomicU64,
    /// Times the poller slept, and woke because of an exit (reported at debug level).
    sleeps: AtomicU64,
    exit_wakes: AtomicU64,
    /// The widest window reached, in microseconds.
    widest_us: AtomicU64,
    /// Whether the poller's last spells were fruitless (see [`FRUITLESS_WAKE_EVERY`]), and
    /// exits that found it asleep meanwhile.
    fruitless: AtomicBool,
    skipped_wakes: AtomicU32,
}

/// How long the guest waits for a poller that stopped beating before it takes the exit. The
/// poller beats every few microseconds while it runs; silence this long means it lost its
/// core, typically for a scheduler slice (milliseconds). 30 us was tried first: with two CPU
/// hogs beside the sandbox, getpid runs came out at ~100 us (every call by exit) in 9 of 12
/// runs against 5 of 12 at 200 us and 4 of 12 before the heartbeat (the others 3-10 us); so
/// the guest gives up only a little earlier than its spin limit (~250 us).
const BEAT_TIMEOUT_US: u64 = 200;
/// Environment variable overriding [`BEAT_TIMEOUT_US`] (microseconds; 0 turns the heartbeat
/// check off).
pub const BEAT_ENV: &str = "RUNSC_RING_BEAT_US";
/// TSC ticks per microsecond assumed until the platform gives the real rate.
const DEFAULT_TICKS_PER_US: u64 = 3_000;
/// Poll rounds between heartbeats.
const BEAT_ROUNDS: u32 = 16;

fn host_tsc() -> u64 {
    // SAFETY: RDTSC has no preconditions on x86-64.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The sentry thread that polls every registered shared page. The thread starts with the
/// first page registered, not with the platform: the platform is made while the sentry is
/// still being confined (on a thread of its own, `boot::start_platform`), and a thread
/// started then would escape what is applied per thread afterwards (Landlock, before its
/// ABI 8). The first page comes with the first task, once the sentry is confined.
pub struct Poller {
    shared: Arc<PollerShared>,
    thread: std::sync::OnceLock<Option<JoinHandle<()>>>,
}

impl Poller {
    pub fn start() -> std::io::Result<Self> {
        let shared = Arc::new(PollerShared {
            slots: Mutex::new(Vec::new()),
            generation: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            woken_by_exit: AtomicBool::new(false),
            tsc_offset: AtomicU64::new(0),
            beat_limit: AtomicU64::new(BEAT_TIMEOUT_US * DEFAULT_TICKS_PER_US),
            sleeps: AtomicU64::new(0),
            exit_wakes: AtomicU64::new(0),
            widest_us: AtomicU64::new(SPIN_MIN.as_micros() as u64),
            fruitless: AtomicBool::new(false),
            skipped_wakes: AtomicU32::new(0),
        });
        Ok(Poller {
            shared,
            thread: std::sync::OnceLock::new(),
        })
    }

    /// The poller's thread, started on first use (see [`Poller`]). If it can't be started,
    /// the poller counts as asleep for good, so that every request takes the exit at once.
    fn thread(&self) -> Option<&JoinHandle<()>> {
        self.thread
            .get_or_init(|| {
                let s = self.shared.clone();
                match std::thread::Builder::new()
                    .name("ring-poller".into())
                    .spawn(move || poll_loop(&s))
                {
                    Ok(t) => Some(t),
                    Err(e) => {
                        tracing::warn!("ring poller thread: {e}; system calls take exits");
                        self.shared.sleeping.store(true, Ordering::SeqCst);
                        None
                    }
                }
            })
            .as_ref()
    }

    /// Tells the poller how the guest's TSC relates to the host's (`guest = host + offset`)
    /// and its rate, for the heartbeat. Without it (None) the guest never gives up on a
    /// beating poller early: the limit is effectively infinite.
    pub fn set_tsc(&self, tsc: Option<crate::GuestTsc>) {
        // RUNSC_RING_BEAT_US overrides the timeout (0: never give up on a beating poller
        // early), for measuring.
        let timeout_us = std::env::var(BEAT_ENV)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(BEAT_TIMEOUT_US);
        let (offset, limit) = match tsc {
            Some(t) if timeout_us > 0 => (
                t.offset as u64,
                timeout_us.saturating_mul((t.khz as u64).div_ceil(1000)),
            ),
            Some(t) => (t.offset as u64, i64::MAX as u64),
            None => (0, i64::MAX as u64),
        };
        let limit = limit.min(i64::MAX as u64);
        self.shared.tsc_offset.store(offset, Ordering::Relaxed);
        self.shared.beat_limit.store(limit, Ordering::Relaxed);
        let slots = self.shared.slots.lock().unwrap_or_else(|e| e.into_inner());
        for slot in slots.iter() {
            slot.page.set_beat_limit(limit);
        }
    }

    /// Adds a context's page. Done under the slot lock, which the poller also holds while it
    /// flips `poller_active` on going to sleep, so a page registered at that moment can't
    /// keep claiming an active poller that is asleep.
    pub fn register(&self, slot: Arc<RingSlot>) {
        self.thread();
        let mut slots = self.shared.slots.lock().unwrap_or_else(|e| e.into_inner());
        slot.page
            .set_beat_limit(self.shared.beat_limit.load(Ordering::Relaxed));
        slot.page.beat(guest_tsc(&self.shared));
        slot.page
            .set_poller_active(!self.shared.sleeping.load(Ordering::SeqCst));
        slots.push(slot);
        self.shared.generation.fetch_add(1, Ordering::Release);
    }

    /// Removes a context's page. On return the poller is done with the slot (a request it
    /// was serving is answered) and never looks at it again, so the vCPU and its shared page
    /// may go to another context. The caller must not hold anything `FastSyscalls::serve`
    /// takes (the task's state), since this waits for a serve in progress.
    pub fn unregister(&self, slot: &Arc<RingSlot>) {
        {
            let mut live = slot.live.lock().unwrap_or_else(|e| e.into_inner());
            *live = false;
            // A call left waiting on the ring (its thread was stopped meanwhile) ends here,
            // so that nothing it queued (a futex wait) outlives the context.
            let waiting = slot
                .waiting
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some((mut regs, _)) = waiting {
                slot.has_waiting.store(false, Ordering::Relaxed);
                let _ = slot.fast.retry(&mut regs, true);
            }
        }
        self.shared
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|s| !Arc::ptr_eq(s, slot));
        self.shared.generation.fetch_add(1, Ordering::Release);
    }

    /// Times the poller slept, times an exit woke it, and its widest window in microseconds.
    pub fn stats(&self) -> (u64, u64, u64) {
        (
            self.shared.sleeps.load(Ordering::Relaxed),
            self.shared.exit_wakes.load(Ordering::Relaxed),
            self.shared.widest_us.load(Ordering::Relaxed),
        )
    }

    /// Wakes the poller after an exit showed it was asleep.
    pub fn wake(&self) {
        if self.shared.sleeping.load(Ordering::Relaxed) {
            if self.shared.fruitless.load(Ordering::Relaxed)
                && !(self.shared.skipped_wakes.fetch_add(1, Ordering::Relaxed))
                    .wrapping_add(1)
                    .is_multiple_of(FRUITLESS_WAKE_EVERY)
            {
                return;
            }
            self.shared.woken_by_exit.store(true, Ordering::Relaxed);
            if let Some(Some(t)) = self.thread.get() {
                t.thread().unpark();
            }
        }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        tracing::debug!(
            "ring poller: slept {} times, {} woken by an exit, widest window {} us",
            self.shared.sleeps.load(Ordering::Relaxed),
            self.shared.exit_wakes.load(Ordering::Relaxed),
            self.shared.widest_us.load(Ordering::Relaxed)
        );
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take().flatten() {
            t.thread().unpark();
            // The poller's own last reference (a ring slot's handler holds the sentry, which
            // holds the platform) can drop it on the poller thread at exit: it then just
            // returns, as `stop` says; joining itself would fail (EDEADLK) and panic.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

/// Records whether the poller sleeps and tells every trampoline, atomically with respect to
/// `register`.
fn set_sleeping(shared: &PollerShared, sleeping: bool) {
    let slots = shared.slots.lock().unwrap_or_else(|e| e.into_inner());
    shared.sleeping.store(sleeping, Ordering::SeqCst);
    for slot in slots.iter() {
        slot.page.set_poller_active(!sleeping);
    }
}

fn guest_tsc(shared: &PollerShared) -> u64 {
    host_tsc().wrapping_add(shared.tsc_offset.load(Ordering::Relaxed))
}

/// Tells every trampoline that the poller is running now.
fn beat_all(shared: &PollerShared, slots: &[Arc<RingSlot>]) {
    let now = guest_tsc(shared);
    for slot in slots {
        slot.page.beat(now);
    }
}

fn poll_all(shared: &PollerShared) -> bool {
    let slots = shared
        .slots
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    poll_slots(&slots).0
}

/// Polls every slot once: whether a request was found, and whether one was answered (or is
/// waiting) here.
fn poll_slots(slots: &[Arc<RingSlot>]) -> (bool, bool) {
    let (mut found, mut answered) = (false, false);
    for slot in slots {
        let (f, a) = slot.poll();
        found |= f;
        answered |= a;
    }
    (found, answered)
}

/// Brings the poller's copy of the slot list up to date if the list changed since `seen`.
fn refresh(shared: &PollerShared, slots: &mut Vec<Arc<RingSlot>>, seen: &mut u64) {
    let generation = shared.generation.load(Ordering::Acquire);
    if generation != *seen {
        *slots = shared
            .slots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        *seen = generation;
    }
}

fn poll_loop(shared: &PollerShared) {
    // A copy of the slot list, refreshed when it changes (copying it every round cost an
    // allocation per round). A slot removed meanwhile is harmless: `RingSlot::live` keeps the
    // poller off it.
    let mut slots: Vec<Arc<RingSlot>> = Vec::new();
    let mut seen = u64::MAX;
    let mut window = SPIN_MIN;
    let mut idle = Duration::ZERO;
    let mut last_check = Instant::now();
    let mut rounds = 0u32;
    // Whether the poller answered (or kept waiting) a request since it last woke: only then
    // would a longer window have saved the exits (a program whose calls all go to its thread
    // anyway, such as a loop of long sleeps, must not keep the poller spinning).
    let mut useful = false;
    // Spells in a row begun by an exit that answered nothing, and whether this one was.
    let mut fruitless = 0u32;
    let mut woken_by_exit = false;
    while !shared.stop.load(Ordering::Relaxed) {
        refresh(shared, &mut slots, &mut seen);
        if rounds.is_multiple_of(BEAT_ROUNDS) {
            beat_all(shared, &slots);
        }
        let (found, answered) = poll_slots(&slots);
        useful |= answered;
        if found {
            idle = Duration::ZERO;
            rounds = 0;
            last_check = Instant::now();
            continue;
        }
        std::hint::spin_loop();
        rounds += 1;
        // Reading the clock costs more than a poll: check it every few hundred rounds.
        if !rounds.is_multiple_of(256) {
            continue;
        }
        let now = Instant::now();
        idle += (now - last_check).min(MAX_STEP);
        last_check = now;
        let limit = if fruitless >= FRUITLESS_SPELLS {
            window / FRUITLESS_DIVISOR
        } else {
            window
        };
        if idle < limit {
            continue;
        }
        if useful {
            fruitless = 0;
        } else if woken_by_exit {
            fruitless = fruitless.saturating_add(1);
        }
        shared
            .fruitless
            .store(fruitless >= FRUITLESS_SPELLS, Ordering::Relaxed);
        // Go to sleep: tell the trampolines first, then serve anything that raced in.
        shared.woken_by_exit.store(false, Ordering::Relaxed);
        set_sleeping(shared, true);
        poll_all(shared);
        // Let go of the copy while asleep: a slot unregistered meanwhile holds its context's
        // handler, and through it the task and its whole address space. Kept, a process that
        // died while the poller slept kept its memory until the next exit woke the poller,
        // which in an idle sandbox may be never (`runsc update --memory` saw the memory of an
        // OOM-killed process never come back).
        slots.clear();
        seen = u64::MAX;
        let asleep_since = Instant::now();
        std::thread::park();
        let asleep = asleep_since.elapsed();
        shared.sleeps.fetch_add(1, Ordering::Relaxed);
        let by_exit = shared.woken_by_exit.swap(false, Ordering::Relaxed);
        if by_exit {
            shared.exit_wakes.fetch_add(1, Ordering::Relaxed);
        }
        woken_by_exit = by_exit;
        if by_exit && useful && asleep < window * GROW_BEFORE {
            window = (window * 2).min(SPIN_MAX);
            shared
                .widest_us
                .fetch_max(window.as_micros() as u64, Ordering::Relaxed);
        } else if asleep > window * SHRINK_AFTER {
            window = (window / 2).max(SPIN_MIN);
        }
        refresh(shared, &mut slots, &mut seen);
        beat_all(shared, &slots);
        set_sleeping(shared, false);
        useful = false;
        idle = Duration::ZERO;
        last_check = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kvm::layout::PAGE_SIZE;
    use crate::memory::MemoryFile;

    /// A handler that serves nothing; only its lifetime matters.
    struct Idle;

    impl FastSyscalls for Idle {
        fn serve(&self, _regs: &mut UserRegs) -> bool {
            false
        }
    }

    /// A context's handler (in the sentry: the task, and through it its address space) is
    /// let go when the context unregisters, even while the poller sleeps and no exit comes
    /// to wake it. The poller used to sleep holding its copy of the slot list: an idle
    /// sandbox then kept a dead process's memory for as long as nothing else ran.
    #[test]
    fn an_unregistered_slot_is_not_kept_by_a_sleeping_poller() {
        let mem = Arc::new(MemoryFile::new(1 << 20).unwrap());
        let poller = Poller::start().unwrap();
        let fast: Arc<dyn FastSyscalls> = Arc::new(Idle);
        let handler = Arc::downgrade(&fast);
        let slot = Arc::new(RingSlot::new(
            SharedPage::new(mem, PAGE_SIZE),
            fast,
            Arc::new(Kicker::new(0, Arc::new(()))),
            true,
            None,
        ));
        let asleep = |what: &str| {
            let end = Instant::now() + Duration::from_secs(10);
            while !poller.shared.sleeping.load(Ordering::SeqCst) {
                assert!(
                    Instant::now() < end,
                    "the poller never went to sleep {what}"
                );
                std::thread::sleep(Duration::from_millis(1));
            }
        };
        // The poller's thread starts with the first page, lists it, and goes to sleep
        // holding its copy of the list (its window is at most SPIN_MAX).
        poller.register(slot.clone());
        asleep("with the slot listed");
        std::thread::sleep(SPIN_MAX * 5);
        poller.unregister(&slot);
        drop(slot);
        std::thread::sleep(Duration::from_millis(20));
        assert!(
            handler.upgrade().is_none(),
            "the sleeping poller still holds the unregistered context's handler"
        );
    }
}
