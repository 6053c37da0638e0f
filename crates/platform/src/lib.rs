//! How application code runs and comes back to the sentry.
//!
//! A [`Platform`] makes [`AddressSpace`]s (page mappings of the memory file into an
//! application's virtual address space) and [`Context`]s (one per application thread: a way to
//! run user code until it makes a system call or faults). The platform knows nothing about
//! Linux semantics beyond the x86-64 user register file.
//!
//! System calls take two routes. The usual one for a platform with a fast transport (KVM's
//! ring) is [`FastSyscalls::serve`], called on a sentry polling thread while the application
//! thread spins; calls that may block, or that need the thread's full machine state, are
//! declined there and come back from [`Context::switch`] as [`Event::Syscall`] on the thread
//! that owns the context, where blocking is fine.

pub mod kvm;
pub mod memory;

use std::any::Any;
use std::sync::Arc;

pub use memory::{Gpa, MemoryFile};

/// Page size of the application.
pub const PAGE_SIZE: u64 = 4096;

/// Calls `f(start, len)` for each run of adjacent pages among `pages` (page-aligned
/// addresses, sorted here; duplicates allowed), so that per-range operations (unmapping,
/// punching holes, dropping translations) are made once per run rather than per page.
pub fn for_each_page_run(pages: &mut [u64], mut f: impl FnMut(u64, u64)) {
    pages.sort_unstable();
    let mut i = 0;
    while i < pages.len() {
        let start = pages[i];
        let mut end = start + PAGE_SIZE;
        i += 1;
        while i < pages.len() && pages[i] <= end {
            end = end.max(pages[i] + PAGE_SIZE);
            i += 1;
        }
        f(start, end - start);
    }
}

/// Errors of the platform layer.
#[derive(Debug, thiserror::Error)]
pub enum PlatformError {
    #[error("/dev/kvm: {0}")]
    KvmUnavailable(String),
    #[error("KVM: {0}")]
    Kvm(String),
    #[error("memory file: {0}")]
    Memory(String),
    #[error("out of sandbox memory")]
    OutOfMemory,
    #[error("guest kernel failure: {0}")]
    GuestKernel(String),
    #[error("too many threads: the platform supports at most {0} vCPUs")]
    TooManyVcpus(usize),
}

/// The user-visible register file of an x86-64 thread.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct UserRegs {
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rbp: u64,
    pub rsp: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub rip: u64,
    pub rflags: u64,
    pub fs_base: u64,
    pub gs_base: u64,
}

impl UserRegs {
    /// System call number, as the `syscall` instruction leaves it.
    pub fn syscall_nr(&self) -> u64 {
        self.rax
    }

    /// The six system call arguments in ABI order.
    pub fn syscall_args(&self) -> [u64; 6] {
        [self.rdi, self.rsi, self.rdx, self.r10, self.r8, self.r9]
    }
}

/// Memory protection of a mapping.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Prot {
    pub read: bool,
    pub write: bool,
    pub exec: bool,
}

impl Prot {
    pub const NONE: Prot = Prot {
        read: false,
        write: false,
        exec: false,
    };

    /// Builds a protection from Linux `PROT_*` bits.
    pub fn from_linux(bits: u32) -> Prot {
        Prot {
            read: bits & 1 != 0,
            write: bits & 2 != 0,
            exec: bits & 4 != 0,
        }
    }

    /// Whether any access is allowed.
    pub fn any(&self) -> bool {
        self.read || self.write || self.exec
    }
}

/// What kind of access faulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessType {
    pub write: bool,
    pub exec: bool,
    /// The page was present: the fault is a protection violation, not a missing page.
    pub present: bool,
}

/// A user-mode exception reported by the CPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// #PF at `addr`.
    Page { addr: u64, access: AccessType },
    /// #GP, with the CPU's error code.
    GeneralProtection { error_code: u64 },
    /// #UD.
    InvalidOpcode,
    /// #DE.
    DivideError,
    /// #BP (int3).
    Breakpoint,
    /// #AC.
    AlignmentCheck,
    /// #DB (single step, hardware breakpoint).
    Debug,
    /// x87 (#MF) or SIMD (#XM) floating-point exception.
    FloatingPoint,
    /// Any other vector.
    Other { vector: u8, error_code: u64 },
}

/// Why [`Context::switch`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The thread made a system call; registers hold it. Put the result in `rax` (and change
    /// any other register) before switching again.
    Syscall,
    /// The thread took an exception; registers hold the faulting state.
    Fault(Fault),
    /// The context was interrupted through its [`Interrupter`]. `at_user` says whether the
    /// thread stopped in plain user code: then `regs` hold its state and may be changed (to
    /// deliver a signal); otherwise (mid system call) they are unchanged and must stay so.
    Interrupted { at_user: bool },
}

/// Serves system calls on a platform thread while the application waits. Must not block.
pub trait FastSyscalls: Send + Sync {
    /// Tries to serve the call in `regs`. Returns false to decline: the call then comes back
    /// from [`Context::switch`] as [`Event::Syscall`] on the context's own thread.
    fn serve(&self, regs: &mut UserRegs) -> bool;
    /// As [`FastSyscalls::serve`], where the trampoline can also save or load the thread's
    /// FPU state itself on the way back (`fpu`; None where it can't): the call may then ask
    /// for an XSAVE image to be loaded (rt_sigreturn), and for the state to be saved and
    /// handed to [`FastSyscalls::deliver`] (a signal became deliverable). Either way the
    /// signal round trip stays on the ring instead of taking two exits and two XSAVE ioctls.
    fn serve_ring(&self, regs: &mut UserRegs, fpu: Option<&mut RingFpu>) -> bool {
        let _ = fpu;
        self.serve(regs)
    }
    /// After a call answered with [`FpuOp::Save`]: delivers the pending signals with `xsave`,
    /// the thread's FPU state as its trampoline saved it (standard-form XSAVE image),
    /// pointing `regs` at the handler. `fpu` as in [`FastSyscalls::serve_ring`] (an image
    /// to load on the way back). Returns false to decline (`regs` unchanged): the thread's
    /// own context then reports [`Event::Interrupted`] at user mode, as after a kick.
    fn deliver(&self, _regs: &mut UserRegs, _xsave: &[u8], _fpu: &mut RingFpu) -> bool {
        false
    }
    /// Tries to resolve a user exception (a page fault the memory manager can map) while the
    /// thread waits; `regs` may be changed. Returns false to decline: the fault then comes
    /// back from [`Context::switch`] as [`Event::Fault`] on the context's own thread.
    fn serve_fault(&self, _fault: &Fault, _regs: &mut UserRegs) -> bool {
        false
    }
    /// For a call [`FastSyscalls::serve`] declined because it would wait now: how long it may
    /// wait on the ring instead (the application spins in the trampoline meanwhile and the
    /// platform asks [`FastSyscalls::retry`] again and again) before it goes to the context's
    /// thread, which sleeps in the host. None: to the thread at once. A wait that ends in
    /// time saves the exit to the thread; one that doesn't costs the spin, so keep it short.
    fn ring_wait(&self, _regs: &UserRegs) -> Option<std::time::Duration> {
        None
    }
    /// Tries again a call [`FastSyscalls::ring_wait`] accepted. `last`: its time is up, so
    /// the answer is [`Retry::Done`] or [`Retry::HandOver`], with nothing left waiting.
    fn retry(&self, _regs: &mut UserRegs, _last: bool) -> Retry {
        Retry::HandOver
    }
}

/// The FPU side of a ring answer: what the trampoline does with the thread's FPU state
/// before it returns to user mode.
#[derive(Debug, Clone, Default)]
pub struct RingFpu {
    /// The guest's XCR0 (the state components an image may hold).
    pub xcr0: u64,
    /// Load this standard-form XSAVE image (XRSTOR) first. It must pass [`xrstor_ok`]: a
    /// bad one would fault in the trampoline.
    pub restore: Option<Vec<u8>>,
    /// Then save the state (XSAVE) and come back through the ring for
    /// [`FastSyscalls::deliver`].
    pub save: bool,
}

/// Whether XRSTOR of `image` (standard form, every component requested) with `xcr0` would
/// load it rather than raise #GP: XSTATE_BV within XCR0, the rest of the header (XCOMP_BV
/// and the reserved bytes) zero, MXCSR without reserved bits. Stricter than the CPU where
/// that is simpler; whatever fails here takes the thread's path, where KVM checks it.
pub fn xrstor_ok(image: &[u8], xcr0: u64) -> bool {
    if image.len() < 576 {
        return false;
    }
    let mxcsr = u32::from_le_bytes(image[24..28].try_into().expect("4 bytes"));
    let bv = u64::from_le_bytes(image[512..520].try_into().expect("8 bytes"));
    mxcsr & 0xffff_0000 == 0 && bv & !xcr0 == 0 && image[520..576].iter().all(|b| *b == 0)
}

/// What [`FastSyscalls::retry`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Served: `regs` hold the result.
    Done,
    /// Still waiting.
    Wait,
    /// To the context's thread, with `regs` as they were.
    HandOver,
}

/// An application address space: a mapping of memory-file pages at user addresses.
/// Whether the environment switch `name` is on: set, and neither empty nor `0` (the form
/// of every `RUNSC_NO_*` switch).
pub fn env_flag(name: &str) -> bool {
    std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0")
}

pub trait AddressSpace: Send + Sync {
    /// Maps `len` bytes of the memory file at `gpa` to `addr` with `prot`, replacing whatever
    /// was mapped there. `addr`, `gpa` and `len` are page aligned.
    fn map(&self, addr: u64, gpa: Gpa, len: u64, prot: Prot) -> Result<(), PlatformError>;
    /// Maps each `(addr, gpa)` page of `pages` with `prot`, as `map` of one page each, but
    /// dropping whatever translations the old entries leave behind in one go (each drop costs
    /// the host a TLB shootdown on every CPU running the sandbox, whatever its size).
    fn map_pages(&self, pages: &[(u64, Gpa)], prot: Prot) -> Result<(), PlatformError> {
        for &(addr, gpa) in pages {
            self.map(addr, gpa, PAGE_SIZE, prot)?;
        }
        Ok(())
    }
    /// Removes mappings in `[addr, addr+len)`.
    fn unmap(&self, addr: u64, len: u64);
    /// Takes write access away from the mapped pages among `pages` (page-aligned addresses),
    /// keeping them mapped: copy-on-write after fork. Pages not mapped are skipped.
    fn write_protect(&self, pages: &[u64]);
    /// The memory-file page mapped at `addr` and whether it is writable, if any.
    fn translate(&self, addr: u64) -> Option<(Gpa, bool)>;
    /// For downcasting to the platform's own type.
    fn as_any(&self) -> &dyn Any;
}

/// Interrupts a running context from another thread (for signals, exit of the thread group).
pub trait Interrupter: Send + Sync {
    fn interrupt(&self);
}

/// One application thread's execution context.
pub trait Context: Send {
    /// Runs the thread in `address_space` from `regs` until it needs the sentry.
    fn switch(
        &mut self,
        address_space: &Arc<dyn AddressSpace>,
        regs: &mut UserRegs,
    ) -> Result<Event, PlatformError>;
    /// Platform counters of this context (exits, faults...), for debugging; may be empty.
    fn debug_stats(&self) -> Vec<(String, u64)> {
        Vec::new()
    }
    /// A handle that makes a running `switch` return [`Event::Interrupted`].
    fn interrupter(&self) -> Arc<dyn Interrupter>;
    /// The thread is about to wait in the sentry, perhaps for long (a system call that may
    /// block, a job-control stop). A platform whose execution units are limited (KVM's
    /// vCPUs) may give this context's unit to other threads meanwhile; the next `switch`
    /// takes one back. Only between switches.
    fn may_block(&mut self) {}
    /// The thread's floating-point and vector state, in XSAVE format (for signal frames).
    /// Only between switches.
    fn fpu_state(&mut self) -> Result<Vec<u8>, PlatformError>;
    /// Loads XSAVE-format state saved by [`fpu_state`](Self::fpu_state) (or a signal frame).
    fn set_fpu_state(&mut self, state: &[u8]) -> Result<(), PlatformError>;
}

/// How the application's time-stamp counter relates to the host's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestTsc {
    /// `guest = host + offset`.
    pub offset: i64,
    /// Ticks per millisecond.
    pub khz: u32,
}

/// Which system call transports a context may use (benchmarks compare them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyscallPath {
    /// The ring with a polling sentry thread, falling back to an exit when the poller sleeps.
    #[default]
    Ring,
    /// Every system call is an exit served by the thread's own host thread.
    ExitOnly,
}

/// A way to run application code.
pub trait Platform: Send + Sync {
    /// The memory file all application memory comes from.
    fn memory(&self) -> &Arc<MemoryFile>;
    /// A new, empty address space.
    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>, PlatformError>;
    /// A new context whose fast system calls are served by `fast`.
    fn new_context(&self, fast: Arc<dyn FastSyscalls>) -> Result<Box<dyn Context>, PlatformError>;
    /// The time-stamp counter application code reads with `rdtsc`, if it tracks the
    /// host's; None if application code can't read such a counter. The vDSO computes time
    /// from it.
    fn guest_tsc(&self) -> Option<GuestTsc> {
        None
    }
    /// A short description for logs (platform and syscall entry in use).
    fn describe(&self) -> String;
}

#[cfg(test)]
mod xrstor_tests {
    use super::xrstor_ok;

    fn image(bv: u64) -> Vec<u8> {
        let mut i = vec![0u8; 832];
        i[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        i[512..520].copy_from_slice(&bv.to_le_bytes());
        i
    }

    #[test]
    fn what_xrstor_would_refuse_is_refused() {
        assert!(xrstor_ok(&image(0x7), 0x7));
        // A component the guest's XCR0 lacks.
        assert!(!xrstor_ok(&image(0x7), 0x3));
        // XCOMP_BV (compacted form) or a reserved header byte.
        let mut i = image(0x3);
        i[527] = 0x80;
        assert!(!xrstor_ok(&i, 0x7));
        let mut i = image(0x3);
        i[575] = 1;
        assert!(!xrstor_ok(&i, 0x7));
        // MXCSR's reserved bits.
        let mut i = image(0x3);
        i[26] = 1;
        assert!(!xrstor_ok(&i, 0x7));
        // Shorter than the legacy area and header.
        assert!(!xrstor_ok(&image(0x3)[..575], 0x7));
    }
}
