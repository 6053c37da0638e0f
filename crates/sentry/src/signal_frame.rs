//! Running signal handlers: the x86-64 `rt_sigframe` (ucontext with the full register file,
//! the XSAVE image and siginfo) built on the user stack, and its undoing by rt_sigreturn.
//!
//! Layout as Linux's `setup_rt_frame`/`get_sigframe`: below the red zone (or on the
//! alternate stack), the XSAVE image 64-byte aligned with its `fx_sw_bytes` and trailing
//! magic, then the frame aligned so that `rsp + 8` is 16-byte aligned at handler entry.

use std::time::Duration;

use platform::UserRegs;

use crate::errno::Errno;
use crate::mm::Mm;
use crate::signal::SigAction;
use crate::task::ExitStatus;

const SA_SIGINFO: u64 = 0x4;
const SA_ONSTACK: u64 = 0x0800_0000;
const SA_RESTORER: u64 = 0x0400_0000;
const SA_NODEFER: u64 = 0x4000_0000;
const SA_RESETHAND: u64 = 0x8000_0000;

const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
/// The offset of `uc_mcontext` in the kernel's `ucontext` (flags, link, stack_t).
const UC_MCONTEXT: u64 = 40;
/// sizeof(struct sigcontext) on x86-64.
const SIGCONTEXT_SIZE: u64 = 256;
/// sizeof(rt_sigframe): pretcode, ucontext (304), siginfo (128).
const FRAME_SIZE: u64 = 8 + 304 + 128;
/// Flags a signal frame may set on return (Linux's FIX_EFLAGS).
const FIX_EFLAGS: u64 =
    0x0004_0000 | 0x800 | 0x400 | 0x100 | 0x80 | 0x40 | 0x10 | 0x4 | 0x1 | 0x1_0000;

/// What a handler is told about a signal (the fields of siginfo_t we fill).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SigInfo {
    pub signo: i32,
    pub code: i32,
    pub pid: i32,
    pub uid: u32,
    /// Faulting address (SIGSEGV, SIGBUS, SIGILL, SIGFPE).
    pub addr: u64,
    /// POSIX timer signals (code SI_TIMER): the timer, its overrun count and sigev_value.
    pub timerid: i32,
    pub overrun: i32,
    pub value: u64,
    /// A child's end told to its parent (SIGCHLD or clone's exit signal).
    pub child: Option<ChildExit>,
    /// An I/O readiness signal (F_SETSIG): si_band and si_fd.
    pub poll: Option<(i64, i32)>,
    /// si_errno (a seccomp SIGSYS: the filter's data).
    pub errno: i32,
    /// A seccomp SIGSYS: si_syscall and si_arch (si_call_addr is `addr`).
    pub sys: Option<(i32, u32)>,
}

/// The `_sigchld` part of a siginfo: how a child ended and the CPU time it used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChildExit {
    /// The exit code (CLD_EXITED) or the signal that killed it (CLD_KILLED).
    pub status: i32,
    /// CPU time in clock ticks (USER_HZ).
    pub utime: i64,
    pub stime: i64,
}

/// Clock ticks per second as user space counts them (Linux's USER_HZ).
const USER_HZ: u128 = 100;
const CLD_EXITED: i32 = 1;
const CLD_KILLED: i32 = 2;

/// si_code of a POSIX timer's signal.
pub const SI_TIMER: i32 = -2;
/// si_code of signals the kernel itself sends (interval timers).
pub const SI_KERNEL: i32 = 0x80;

impl SigInfo {
    /// What `signo` tells a parent about child `pid` (run by `uid`) that ended with
    /// `status` after using `cpu` of CPU time (Linux's do_notify_parent). No core dumps are
    /// written, so never CLD_DUMPED (as wait's core bit). The host's clocks don't split
    /// user and system time: all of it counts as user time.
    pub fn child_exit(
        signo: i32,
        pid: i32,
        uid: u32,
        status: ExitStatus,
        cpu: Duration,
    ) -> SigInfo {
        let (code, status) = match status {
            ExitStatus::Code(c) => (CLD_EXITED, c as i32),
            ExitStatus::Signal(s) => (CLD_KILLED, s.0),
        };
        let ticks = cpu.as_nanos() * USER_HZ / 1_000_000_000;
        SigInfo {
            signo,
            code,
            pid,
            uid,
            child: Some(ChildExit {
                status,
                utime: i64::try_from(ticks).unwrap_or(i64::MAX),
                stime: 0,
            }),
            ..Default::default()
        }
    }

    /// What SIGCHLD tells a parent about child `pid` (run by `uid`) stopping or continuing
    /// (CLD_STOPPED with the stop signal, CLD_CONTINUED with SIGCONT).
    pub fn child_job(pid: i32, uid: u32, event: crate::job::JobEvent) -> SigInfo {
        let (code, status) = match event {
            crate::job::JobEvent::Stopped(sig) => (libc::CLD_STOPPED, sig),
            crate::job::JobEvent::Continued => (libc::CLD_CONTINUED, libc::SIGCONT),
        };
        SigInfo {
            signo: libc::SIGCHLD,
            code,
            pid,
            uid,
            child: Some(ChildExit {
                status,
                utime: 0,
                stime: 0,
            }),
            ..Default::default()
        }
    }

    /// The siginfo_t a handler or sigtimedwait's caller sees.
    /// The info as a receiver in user namespace `ns` sees it: a sender's uid in its terms
    /// (Linux's userns_fixup_signal_uid; 65534 when unmapped). Signals the kernel makes
    /// (no sender) keep uid 0.
    pub fn seen_by(mut self, ns: &crate::namespaces::UserNs) -> SigInfo {
        if self.pid != 0 || self.child.is_some() {
            self.uid = ns.uid_seen(self.uid);
        }
        self
    }

    pub fn bytes(&self) -> [u8; 128] {
        let mut b = [0u8; 128];
        b[0..4].copy_from_slice(&self.signo.to_le_bytes());
        b[4..8].copy_from_slice(&self.errno.to_le_bytes());
        b[8..12].copy_from_slice(&self.code.to_le_bytes());
        if let Some((nr, arch)) = self.sys {
            b[16..24].copy_from_slice(&self.addr.to_le_bytes());
            b[24..28].copy_from_slice(&nr.to_le_bytes());
            b[28..32].copy_from_slice(&arch.to_le_bytes());
        } else if self.code == SI_TIMER {
            b[16..20].copy_from_slice(&self.timerid.to_le_bytes());
            b[20..24].copy_from_slice(&self.overrun.to_le_bytes());
            b[24..32].copy_from_slice(&self.value.to_le_bytes());
        } else if self.addr != 0 {
            b[16..24].copy_from_slice(&self.addr.to_le_bytes());
        } else if let Some((band, fd)) = self.poll {
            b[16..24].copy_from_slice(&band.to_le_bytes());
            b[24..28].copy_from_slice(&fd.to_le_bytes());
        } else {
            b[16..20].copy_from_slice(&self.pid.to_le_bytes());
            b[20..24].copy_from_slice(&self.uid.to_le_bytes());
            match self.child {
                // A child's end: si_status, si_utime, si_stime (whatever the signal: the
                // handler sees the union as do_notify_parent filled it).
                Some(c) => {
                    b[24..28].copy_from_slice(&c.status.to_le_bytes());
                    b[32..40].copy_from_slice(&c.utime.to_le_bytes());
                    b[40..48].copy_from_slice(&c.stime.to_le_bytes());
                }
                // sigqueue's si_value (zero for kill and tkill).
                None => b[24..32].copy_from_slice(&self.value.to_le_bytes()),
            }
        }
        b
    }
}

/// An alternate signal stack (sigaltstack).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AltStack {
    pub sp: u64,
    pub flags: i32,
    pub size: u64,
}

impl AltStack {
    pub const SS_ONSTACK: i32 = 1;
    pub const SS_DISABLE: i32 = 2;

    pub fn contains(&self, sp: u64) -> bool {
        self.flags & Self::SS_DISABLE == 0
            && self.size != 0
            && sp > self.sp
            && sp <= self.sp + self.size
    }
}

/// The size of the XSAVE image the host enabled (CPUID 0xD.0 EBX), at least the legacy area.
pub fn xstate_size() -> usize {
    // Read once: this host is itself a virtual machine, where CPUID traps to its
    // hypervisor. Asked twice per signal round trip it was a tenth of the ring poller's time.
    static SIZE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *SIZE.get_or_init(|| {
        let ebx = core::arch::x86_64::__cpuid_count(0xd, 0).ebx as usize;
        ebx.clamp(576, 4096)
    })
}

/// Builds the frame for `action` and points `regs` at the handler; `mask` is what the frame
/// restores on return. `fpu` is the thread's XSAVE image.
pub fn setup(
    mm: &Mm,
    regs: &mut UserRegs,
    action: &SigAction,
    info: &SigInfo,
    mask: u64,
    alt: &AltStack,
    mut fpu: Vec<u8>,
) -> Result<(), Errno> {
    if action.flags & SA_RESTORER == 0 {
        // x86-64 has no vDSO trampoline for returning: without a restorer there is no way
        // back, and Linux forces SIGSEGV.
        return Err(Errno::EFAULT);
    }
    let on_alt = alt.contains(regs.rsp);
    let mut sp = if action.flags & SA_ONSTACK != 0
        && alt.flags & AltStack::SS_DISABLE == 0
        && alt.size != 0
        && !on_alt
    {
        alt.sp + alt.size
    } else {
        regs.rsp.wrapping_sub(128)
    };
    let xsize = xstate_size();
    fpu.resize(xsize.max(fpu.len()).min(4096), 0);
    fpu.truncate(xsize);
    // fx_sw_bytes in the legacy area's software-reserved bytes: magic, sizes, features.
    let xfeatures = u64::from_le_bytes(fpu[512..520].try_into().map_err(|_| Errno::EFAULT)?);
    let sw = 464;
    fpu[sw..sw + 4].copy_from_slice(&FP_XSTATE_MAGIC1.to_le_bytes());
    fpu[sw + 4..sw + 8].copy_from_slice(&((xsize + 4) as u32).to_le_bytes());
    fpu[sw + 8..sw + 16].copy_from_slice(&xfeatures.to_le_bytes());
    fpu[sw + 16..sw + 20].copy_from_slice(&(xsize as u32).to_le_bytes());
    fpu.extend_from_slice(&FP_XSTATE_MAGIC2.to_le_bytes());
    sp = sp.wrapping_sub(fpu.len() as u64) & !63;
    let fpstate = sp;
    let frame = (sp.wrapping_sub(FRAME_SIZE) & !15).wrapping_sub(8);

    let uc = frame + 8;
    let mut ucontext = vec![0u8; 304];
    let put = |b: &mut [u8], off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_le_bytes());
    // uc_flags: UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS, as Linux sets.
    put(&mut ucontext, 0, 0x7);
    put(&mut ucontext, 16, alt.sp);
    ucontext[24..28].copy_from_slice(
        &(if on_alt {
            AltStack::SS_ONSTACK
        } else {
            alt.flags
        })
        .to_le_bytes(),
    );
    put(&mut ucontext, 32, alt.size);
    let sc = UC_MCONTEXT as usize;
    let gprs = [
        regs.r8,
        regs.r9,
        regs.r10,
        regs.r11,
        regs.r12,
        regs.r13,
        regs.r14,
        regs.r15,
        regs.rdi,
        regs.rsi,
        regs.rbp,
        regs.rbx,
        regs.rdx,
        regs.rax,
        regs.rcx,
        regs.rsp,
        regs.rip,
        regs.rflags,
    ];
    for (i, v) in gprs.iter().enumerate() {
        put(&mut ucontext, sc + i * 8, *v);
    }
    // cs, gs, fs, ss as Linux reports them for a 64-bit task.
    ucontext[sc + 144..sc + 146].copy_from_slice(&0x33u16.to_le_bytes());
    ucontext[sc + 150..sc + 152].copy_from_slice(&0x2bu16.to_le_bytes());
    put(&mut ucontext, sc + 168, mask);
    // struct sigcontext: err 152, trapno 160, oldmask 168, cr2 176, fpstate 184 (glibc's
    // gregs[REG_CR2] and uc_mcontext.fpregs). They were written 8 bytes too far once: a
    // handler found fpregs NULL, and rt_sigreturn ignored changes made through it.
    put(&mut ucontext, sc + 176, info.addr);
    put(&mut ucontext, sc + 184, fpstate);
    put(&mut ucontext, sc + SIGCONTEXT_SIZE as usize, mask);

    mm.copy_out(fpstate, &fpu)?;
    mm.copy_out(frame, &action.restorer.to_le_bytes())?;
    mm.copy_out(uc, &ucontext)?;
    mm.copy_out(uc + 304, &info.bytes())?;

    regs.rip = action.handler;
    regs.rsp = frame;
    regs.rdi = info.signo as u64;
    regs.rsi = uc + 304;
    regs.rdx = uc;
    regs.rax = 0;
    // The handler starts with DF and TF clear, as after any kernel entry.
    regs.rflags &= !(0x400 | 0x100);
    Ok(())
}

/// Whether the signal stays unblocked during its own handler.
pub fn nodefer(action: &SigAction) -> bool {
    action.flags & SA_NODEFER != 0
}

/// Whether the action resets to SIG_DFL once delivered.
pub fn resets(action: &SigAction) -> bool {
    action.flags & SA_RESETHAND != 0
}

/// Whether the handler wants siginfo (the frame has it either way).
pub fn wants_info(action: &SigAction) -> bool {
    action.flags & SA_SIGINFO != 0
}

/// rt_sigreturn: the registers, mask and XSAVE image saved by [`setup`], read back from the
/// frame at `rsp - 8`. Everything comes from user memory and is untrusted: RFLAGS keeps only
/// the bits a program may set, the XSAVE image is checked by KVM when loaded.
pub fn restore(mm: &Mm, regs: &mut UserRegs) -> Result<(u64, Option<Vec<u8>>), Errno> {
    let uc = regs.rsp;
    let mut ucontext = [0u8; 304];
    mm.copy_in(uc, &mut ucontext)?;
    let get = |off: usize| u64::from_le_bytes(ucontext[off..off + 8].try_into().expect("8 bytes"));
    let sc = UC_MCONTEXT as usize;
    let v: Vec<u64> = (0..18).map(|i| get(sc + i * 8)).collect();
    let old_flags = regs.rflags;
    *regs = UserRegs {
        r8: v[0],
        r9: v[1],
        r10: v[2],
        r11: v[3],
        r12: v[4],
        r13: v[5],
        r14: v[6],
        r15: v[7],
        rdi: v[8],
        rsi: v[9],
        rbp: v[10],
        rbx: v[11],
        rdx: v[12],
        rax: v[13],
        rcx: v[14],
        rsp: v[15],
        rip: v[16],
        rflags: (old_flags & !FIX_EFLAGS) | (v[17] & FIX_EFLAGS),
        fs_base: regs.fs_base,
        gs_base: regs.gs_base,
    };
    let mask = get(sc + SIGCONTEXT_SIZE as usize);
    let fpstate = get(sc + 184);
    let fpu = if fpstate != 0 {
        let mut buf = vec![0u8; xstate_size()];
        mm.copy_in(fpstate, &mut buf)?;
        Some(buf)
    } else {
        None
    };
    Ok((mask, fpu))
}
