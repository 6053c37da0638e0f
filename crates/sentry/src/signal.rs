//! Signal state: actions, masks, pending signals, and the rules for restarting a system
//! call a signal interrupted. Delivery itself (frames, default actions) is in task.rs.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use fs::waiter::{Waiter, ERESTARTNOHAND, ERESTARTNOINTR, ERESTARTSYS, ERESTART_RESTARTBLOCK};
use platform::UserRegs;

use crate::signal_frame::{AltStack, SigInfo};

/// SA_RESTART: calls interrupted by the handler restart (those Linux restarts).
pub const SA_RESTART: u64 = 0x1000_0000;

/// A signal number, 1..=64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signo(pub i32);

impl Signo {
    pub const SIGILL: Signo = Signo(libc::SIGILL);
    pub const SIGTRAP: Signo = Signo(libc::SIGTRAP);
    pub const SIGBUS: Signo = Signo(libc::SIGBUS);
    pub const SIGFPE: Signo = Signo(libc::SIGFPE);
    pub const SIGKILL: Signo = Signo(libc::SIGKILL);
    pub const SIGSEGV: Signo = Signo(libc::SIGSEGV);
    pub const SIGSTOP: Signo = Signo(libc::SIGSTOP);
}

/// Number of signals (1..=64).
pub const NSIG: usize = 64;

/// The kernel's `struct sigaction` on x86-64.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

impl SigAction {
    pub const SIZE: usize = 32;

    pub fn to_bytes(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[0..8].copy_from_slice(&self.handler.to_le_bytes());
        b[8..16].copy_from_slice(&self.flags.to_le_bytes());
        b[16..24].copy_from_slice(&self.restorer.to_le_bytes());
        b[24..32].copy_from_slice(&self.mask.to_le_bytes());
        b
    }

    pub fn from_bytes(b: &[u8; 32]) -> Self {
        let w = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        SigAction {
            handler: w(0),
            flags: w(8),
            restorer: w(16),
            mask: w(24),
        }
    }
}

/// Signals that can be neither caught nor blocked.
pub const UNBLOCKABLE: u64 = (1 << (libc::SIGKILL - 1)) | (1 << (libc::SIGSTOP - 1));

/// The bit of `sig` in a signal set.
pub fn bit(sig: i32) -> u64 {
    1u64 << (sig - 1)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The first real-time signal number (the kernel's SIGRTMIN; the C libraries keep one or
/// two of these for themselves and show a higher SIGRTMIN).
pub const SIGRTMIN: i32 = 32;
/// How many real-time signals may wait in one set beyond the first of each number (Linux
/// bounds them by RLIMIT_SIGPENDING, a few thousand by default).
const MAX_QUEUED: usize = 4096;

/// Signals waiting for delivery, with what each carries (its sender, or the faulting
/// address). Standard signals don't queue: a second one while pending is merged.
/// Real-time signals queue: each instance is delivered, in the order sent.
#[derive(Debug, Clone)]
pub struct PendingSet {
    pub set: u64,
    info: [Option<SigInfo>; NSIG],
    /// Real-time signals sent while one of the same number was pending, oldest first.
    queued: std::collections::VecDeque<SigInfo>,
}

impl Default for PendingSet {
    fn default() -> Self {
        PendingSet {
            set: 0,
            info: [None; NSIG],
            queued: std::collections::VecDeque::new(),
        }
    }
}

impl PendingSet {
    /// Adds `info`'s signal; returns whether it was added (false for a standard signal
    /// already pending, or a full queue).
    pub fn add(&mut self, info: SigInfo) -> bool {
        let b = bit(info.signo);
        if self.set & b != 0 {
            if info.signo < SIGRTMIN || self.queued.len() >= MAX_QUEUED {
                return false;
            }
            self.queued.push_back(info);
            return true;
        }
        self.set |= b;
        self.info[info.signo as usize - 1] = Some(info);
        true
    }

    /// Forgets `sig` if pending, every queued instance too.
    pub fn remove(&mut self, sig: i32) {
        self.set &= !bit(sig);
        self.info[sig as usize - 1] = None;
        self.queued.retain(|i| i.signo != sig);
    }

    /// Takes the lowest pending signal not in `blocked` (the oldest instance of it).
    pub fn take(&mut self, blocked: u64) -> Option<SigInfo> {
        let ready = self.set & !blocked;
        if ready == 0 {
            return None;
        }
        let sig = ready.trailing_zeros() as usize + 1;
        let info = self.info[sig - 1].take().unwrap_or(SigInfo {
            signo: sig as i32,
            ..Default::default()
        });
        match self.queued.iter().position(|i| i.signo == sig as i32) {
            Some(next) => self.info[sig - 1] = self.queued.remove(next),
            None => self.set &= !bit(sig as i32),
        }
        Some(info)
    }
}

/// The part of a thread's signal state other threads reach, without the lock of its task
/// state (which a sleeping thread holds): its mask, the signals sent to it, and the waiter
/// that a signal wakes it from a sleep in a system call with.
pub struct ThreadSignals {
    inner: Mutex<(u64, PendingSet)>,
    pub waiter: Arc<Waiter>,
}

impl ThreadSignals {
    pub fn new(mask: u64, waiter: Arc<Waiter>) -> Arc<ThreadSignals> {
        Arc::new(ThreadSignals {
            inner: Mutex::new((mask & !UNBLOCKABLE, PendingSet::default())),
            waiter,
        })
    }

    pub fn mask(&self) -> u64 {
        lock(&self.inner).0
    }

    pub fn set_mask(&self, mask: u64) {
        lock(&self.inner).0 = mask & !UNBLOCKABLE;
    }

    /// Signals sent to this thread and not yet delivered.
    pub fn pending(&self) -> u64 {
        lock(&self.inner).1.set
    }

    /// Queues a thread-directed signal. Returns whether it was queued (false: already
    /// pending).
    pub fn queue(&self, info: SigInfo) -> bool {
        lock(&self.inner).1.add(info)
    }

    /// Takes the lowest signal sent to this thread that is not in `blocked`.
    pub fn take(&self, blocked: u64) -> Option<SigInfo> {
        lock(&self.inner).1.take(blocked)
    }

    /// Forgets a pending `sig` (its action became "ignore").
    pub fn discard(&self, sig: i32) {
        lock(&self.inner).1.remove(sig);
    }

    /// Whether a signal sent to this thread is pending and unblocked.
    pub fn deliverable(&self) -> bool {
        let g = lock(&self.inner);
        g.1.set & !g.0 != 0
    }
}

/// A signal handler table. Threads cloned with CLONE_SIGHAND share one (every thread of a
/// process does); fork copies it.
pub struct SigHandlers(Mutex<[SigAction; NSIG]>);

impl Default for SigHandlers {
    fn default() -> Self {
        SigHandlers(Mutex::new([SigAction::default(); NSIG]))
    }
}

impl SigHandlers {
    pub fn get(&self, sig: i32) -> SigAction {
        lock(&self.0)[sig as usize - 1]
    }

    pub fn set(&self, sig: i32, action: SigAction) {
        lock(&self.0)[sig as usize - 1] = action;
    }

    /// Sets `sig`'s action and returns the one it replaces.
    pub fn replace(&self, sig: i32, action: SigAction) -> SigAction {
        std::mem::replace(&mut lock(&self.0)[sig as usize - 1], action)
    }

    /// An unshared copy (fork, or execve of a process that shared its table).
    pub fn copy(&self) -> Arc<SigHandlers> {
        Arc::new(SigHandlers(Mutex::new(*lock(&self.0))))
    }

    /// execve: handled signals return to their default action; ignored ones stay ignored,
    /// and every action loses its flags, mask and restorer (Linux's flush_signal_handlers).
    pub fn reset_for_exec(&self) {
        for a in lock(&self.0).iter_mut() {
            let ignored = a.handler == libc::SIG_IGN as u64;
            *a = SigAction::default();
            if ignored {
                a.handler = libc::SIG_IGN as u64;
            }
        }
    }

    /// Whether `sig` would be dropped on arrival for a thread blocking `blocked`: ignored,
    /// explicitly or by default, and not blocked (a blocked signal stays pending, since the
    /// action may change before it is unblocked), as Linux's sig_ignored.
    pub fn discards(&self, sig: i32, blocked: u64) -> bool {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || blocked & bit(sig) != 0 {
            return false;
        }
        let handler = self.get(sig).handler;
        handler == libc::SIG_IGN as u64
            || (handler == libc::SIG_DFL as u64 && ignored_by_default(sig))
    }
}

/// What restart_syscall resumes: a call interrupted with ERESTART_RESTARTBLOCK saved it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartBlock {
    /// nanosleep or a relative clock_nanosleep: sleep on to `deadline`, writing the time
    /// left to `rmtp` (if not 0) when interrupted again.
    Sleep { deadline: Instant, rmtp: u64 },
    /// A futex wait with a timeout.
    FutexWait {
        addr: u64,
        /// FUTEX_PRIVATE_FLAG: the key is the address space's, not the mapped file's.
        private: bool,
        val: u32,
        bitset: u32,
        deadline: Instant,
    },
}

/// Per-task signal state.
pub struct SignalState {
    /// The mask and thread-directed pending signals, shared with senders.
    pub thread: Arc<ThreadSignals>,
    pub altstack: crate::signal_frame::AltStack,
    /// The mask sigsuspend (or ppoll...) replaced, restored by the handler's frame or when
    /// the call returns.
    pub saved_mask: Option<u64>,
    /// Set by dispatch when the call just served returned a restart result (above): the
    /// call's number, which a restart puts back in RAX (Linux's orig_ax).
    pub interrupted_call: Option<u64>,
    /// What restart_syscall resumes.
    pub restart_block: Option<RestartBlock>,
}

impl SignalState {
    /// A new thread's state: mask `mask`, nothing pending, no alternate stack.
    pub fn new(mask: u64, waiter: Arc<Waiter>) -> SignalState {
        SignalState {
            thread: ThreadSignals::new(mask, waiter),
            altstack: AltStack {
                flags: AltStack::SS_DISABLE,
                ..Default::default()
            },
            saved_mask: None,
            interrupted_call: None,
            restart_block: None,
        }
    }

    /// A clone's state: the caller's mask, nothing pending; the alternate stack is kept
    /// if `keep_altstack` (Linux drops it for clones sharing the address space, not vfork).
    pub fn for_child(&self, waiter: Arc<Waiter>, keep_altstack: bool) -> SignalState {
        let mut s = SignalState::new(self.mask(), waiter);
        if keep_altstack {
            s.altstack = self.altstack;
        }
        s
    }

    pub fn mask(&self) -> u64 {
        self.thread.mask()
    }

    pub fn set_mask(&self, mask: u64) {
        self.thread.set_mask(mask)
    }
}

// ---------------------------------------------------------------------------------------
// Restarting interrupted system calls (Linux's arch/x86/kernel/signal.c).

/// The length of the `syscall` instruction: a restart runs it again.
const SYSCALL_INSN_LEN: u64 = 2;

fn restart(regs: &mut UserRegs, nr: u64) {
    regs.rax = nr;
    regs.rip = regs.rip.wrapping_sub(SYSCALL_INSN_LEN);
}

fn result_errno(regs: &UserRegs) -> i32 {
    (regs.rax as i64).wrapping_neg() as i32
}

/// A handler with `flags` is about to run after call `nr` returned a restart result:
/// restart it (the frame then returns to the `syscall` instruction) or make it EINTR.
pub fn restart_for_handler(regs: &mut UserRegs, nr: u64, flags: u64) {
    let eintr = (-(libc::EINTR as i64)) as u64;
    match result_errno(regs) {
        ERESTART_RESTARTBLOCK | ERESTARTNOHAND => regs.rax = eintr,
        ERESTARTSYS if flags & SA_RESTART == 0 => regs.rax = eintr,
        ERESTARTSYS | ERESTARTNOINTR => restart(regs, nr),
        _ => {}
    }
}

/// No handler ran after call `nr` returned a restart result: the call starts again, as if
/// never interrupted (through restart_syscall for ERESTART_RESTARTBLOCK).
pub fn restart_without_handler(regs: &mut UserRegs, nr: u64) {
    match result_errno(regs) {
        ERESTARTSYS | ERESTARTNOINTR | ERESTARTNOHAND => restart(regs, nr),
        ERESTART_RESTARTBLOCK => restart(regs, libc::SYS_restart_syscall as u64),
        _ => {}
    }
}

/// Signals whose default action is to do nothing.
pub fn ignored_by_default(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGCHLD | libc::SIGURG | libc::SIGWINCH | libc::SIGCONT
    )
}

/// Stop signals: without job control they are treated as ignored.
pub fn stops_by_default(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
    )
}

/// The signal state of the task whose system call this host thread serves: files that act
/// on the caller's signals (signalfd) find it here.
#[derive(Clone)]
pub struct Current {
    pub thread: Arc<ThreadSignals>,
    pub group: Arc<crate::process::ThreadGroup>,
}

thread_local! {
    static CURRENT: std::cell::RefCell<Option<Current>> = const { std::cell::RefCell::new(None) };
}

/// Names the task this thread serves (None: none), returning the previous one.
pub fn set_current(c: Option<Current>) -> Option<Current> {
    CURRENT.with(|cur| std::mem::replace(&mut *cur.borrow_mut(), c))
}

/// The task this thread serves, if any.
pub fn current() -> Option<Current> {
    CURRENT.with(|cur| cur.borrow().clone())
}
