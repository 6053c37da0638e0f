//! The register layouts ptrace speaks: `struct user_regs_struct` (GETREGS, NT_PRSTATUS),
//! `struct user` offsets (PEEKUSER, POKEUSER), `user_fpregs_struct` (GETFPREGS, NT_PRFPREG)
//! and the XSAVE image (NT_X86_XSTATE), as Linux's arch/x86/kernel/ptrace.c.

use platform::UserRegs;

use super::Inner;
use crate::errno::Errno;

/// sizeof(struct user_regs_struct): 27 registers.
pub const USER_REGS_SIZE: usize = 27 * 8;
/// offsetof(struct user, u_debugreg) and sizeof(struct user) (the kernel's, with error_code and
/// fault_address after the debug registers).
pub const U_DEBUGREG: u64 = 848;
pub const USER_SIZE: u64 = 928;
/// The FXSAVE area (user_fpregs_struct).
pub const FPREGS_SIZE: usize = 512;

const USER_CS: u64 = 0x33;
const USER_DS: u64 = 0x2b;
/// Highest user address + 1 (TASK_SIZE_MAX): FS and GS bases must stay below it.
const TASK_SIZE_MAX: u64 = 0x7fff_ffff_f000;
/// RFLAGS bits a tracer may change (Linux's FLAG_MASK): CF PF AF ZF SF TF DF OF NT RF AC.
/// TF is left out: single-stepping is asked with PTRACE_SINGLESTEP.
const FLAG_MASK: u64 =
    0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x400 | 0x800 | 0x4000 | 0x1_0000 | 0x4_0000;

/// user_regs_struct index of each register.
pub const R15: usize = 0;
pub const RBP: usize = 4;
pub const RAX: usize = 10;
pub const ORIG_RAX: usize = 15;
pub const RIP: usize = 16;
pub const RSP: usize = 19;

/// The register file as user_regs_struct orders it.
pub fn get_all(r: &UserRegs, orig_rax: u64) -> [u64; 27] {
    [
        r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx, r.r11, r.r10, r.r9, r.r8, r.rax, r.rcx, r.rdx,
        r.rsi, r.rdi, orig_rax, r.rip, USER_CS, r.rflags, r.rsp, USER_DS, r.fs_base, r.gs_base, 0,
        0, 0, 0,
    ]
}

/// Sets register `idx` of user_regs_struct, with Linux's checks (putreg): segment
/// selectors can't change here (a 64-bit process keeps CS 0x33, SS 0x2b and null data
/// selectors), bases must be user addresses, and only FLAG_MASK bits of RFLAGS change.
pub fn set_one(i: &mut Inner, idx: usize, v: u64) -> Result<(), Errno> {
    let r = &mut i.regs;
    match idx {
        0 => r.r15 = v,
        1 => r.r14 = v,
        2 => r.r13 = v,
        3 => r.r12 = v,
        4 => r.rbp = v,
        5 => r.rbx = v,
        6 => r.r11 = v,
        7 => r.r10 = v,
        8 => r.r9 = v,
        9 => r.r8 = v,
        10 => r.rax = v,
        11 => r.rcx = v,
        12 => r.rdx = v,
        13 => r.rsi = v,
        14 => r.rdi = v,
        15 => i.orig_rax = v,
        16 => r.rip = v,
        17 if v == USER_CS => {}
        18 => r.rflags = (r.rflags & !FLAG_MASK) | (v & FLAG_MASK),
        19 => r.rsp = v,
        20 if v == USER_DS => {}
        21 | 22 if v >= TASK_SIZE_MAX => return Err(Errno::EIO),
        21 => r.fs_base = v,
        22 => r.gs_base = v,
        23..=26 if v == 0 => {}
        _ => return Err(Errno::EIO),
    }
    Ok(())
}

/// Sets every register from a user_regs_struct image (SETREGS): all checked first, so a bad
/// one changes nothing.
pub fn set_all(i: &mut Inner, words: &[u64]) -> Result<(), Errno> {
    let (saved, saved_orig) = (i.regs, i.orig_rax);
    for (idx, &v) in words.iter().enumerate() {
        if let Err(e) = set_one(i, idx, v) {
            i.regs = saved;
            i.orig_rax = saved_orig;
            return Err(e);
        }
    }
    Ok(())
}

/// PEEKUSER: the word at `off` in struct user.
pub fn peek_user(i: &Inner, off: u64) -> Result<u64, Errno> {
    if !off.is_multiple_of(8) || off >= USER_SIZE {
        return Err(Errno::EIO);
    }
    if off < USER_REGS_SIZE as u64 {
        return Ok(get_all(&i.regs, i.orig_rax)[off as usize / 8]);
    }
    if (U_DEBUGREG..U_DEBUGREG + 64).contains(&off) {
        return Ok(i.debugreg[((off - U_DEBUGREG) / 8) as usize]);
    }
    Ok(0)
}

/// POKEUSER: registers, and the debug registers as long as no breakpoint is enabled (the
/// sandbox has no hardware breakpoints: DR7 must stay 0, the address registers are kept).
pub fn poke_user(i: &mut Inner, off: u64, v: u64) -> Result<(), Errno> {
    if !off.is_multiple_of(8) || off >= USER_SIZE {
        return Err(Errno::EIO);
    }
    if off < USER_REGS_SIZE as u64 {
        return set_one(i, off as usize / 8, v);
    }
    if (U_DEBUGREG..U_DEBUGREG + 64).contains(&off) {
        let n = ((off - U_DEBUGREG) / 8) as usize;
        match n {
            0..=3 if v < TASK_SIZE_MAX => i.debugreg[n] = v,
            6 => i.debugreg[n] = v,
            7 if v & 0xff == 0 => i.debugreg[n] = v,
            4 | 5 => return Err(Errno::EIO),
            _ => return Err(Errno::EIO),
        }
        return Ok(());
    }
    // The rest of struct user can't be written.
    Err(Errno::EIO)
}

/// The XSAVE image as NT_X86_XSTATE gives it: `xstate_size()` bytes whose legacy area's
/// software-reserved bytes hold the enabled features (XCR0) in their first word and zeros
/// after, as Linux's xstate_fx_sw_bytes (debuggers read XCR0 there to pick the
/// registers they show).
pub fn xstate_image(fpu: &[u8]) -> Vec<u8> {
    let size = crate::signal_frame::xstate_size();
    let mut out = vec![0u8; size];
    let n = size.min(fpu.len());
    out[..n].copy_from_slice(&fpu[..n]);
    out[464..512].fill(0);
    out[464..472].copy_from_slice(&xcr0().to_le_bytes());
    out
}

/// The state components the guest may use (as the host enabled them).
fn xcr0() -> u64 {
    let l = core::arch::x86_64::__cpuid_count(0xd, 0);
    let supported = l.eax as u64 | ((l.edx as u64) << 32);
    let host: u64;
    // SAFETY: xgetbv(0) only reads XCR0; x86-64 Linux enables OSXSAVE wherever XSAVE
    // exists, and the KVM platform requires it.
    unsafe {
        let (lo, hi): (u32, u32);
        std::arch::asm!("xgetbv", in("ecx") 0, out("eax") lo, out("edx") hi, options(nomem, nostack));
        host = lo as u64 | ((hi as u64) << 32);
    }
    (host & supported) | 0x3
}

/// MXCSR bits that exist (the rest must be zero, or XRSTOR faults).
const MXCSR_MASK: u32 = 0xffff;

/// SETFPREGS / NT_PRFPREG: the legacy area from `data` (512 bytes at most; a shorter write
/// changes that many bytes).
pub fn set_fpregs(i: &mut Inner, data: &[u8]) -> Result<(), Errno> {
    let mut image = i.fpu.clone();
    image.resize(image.len().max(4096), 0);
    let n = data.len().min(FPREGS_SIZE);
    image[..n].copy_from_slice(&data[..n]);
    let mxcsr = u32::from_le_bytes(image[24..28].try_into().expect("4 bytes"));
    if mxcsr & !MXCSR_MASK != 0 {
        return Err(Errno::EINVAL);
    }
    // The x87 and SSE components are now given explicitly (Linux: xfeatures |= FP|SSE).
    let bv = u64::from_le_bytes(image[512..520].try_into().expect("8 bytes")) | 0x3;
    image[512..520].copy_from_slice(&bv.to_le_bytes());
    i.fpu = image;
    i.fpu_dirty = true;
    Ok(())
}

/// SETREGSET NT_X86_XSTATE: a whole or partial XSAVE image, checked as Linux's
/// copy_uabi_from_kernel_to_xstate (known components only, standard format, MXCSR).
pub fn set_xstate(i: &mut Inner, data: &[u8]) -> Result<(), Errno> {
    let size = crate::signal_frame::xstate_size();
    if data.len() < 576 {
        // The header must be there.
        return set_fpregs(i, data);
    }
    let n = data.len().min(size);
    let mut image = i.fpu.clone();
    image.resize(image.len().max(4096), 0);
    // The software bytes are informational.
    let sw = image[464..512].to_vec();
    image[..n].copy_from_slice(&data[..n]);
    image[464..512].copy_from_slice(&sw);
    let bv = u64::from_le_bytes(image[512..520].try_into().expect("8 bytes"));
    let comp = u64::from_le_bytes(image[520..528].try_into().expect("8 bytes"));
    let mxcsr = u32::from_le_bytes(image[24..28].try_into().expect("4 bytes"));
    if bv & !xcr0() != 0 || comp != 0 || image[528..576].iter().any(|&b| b != 0) {
        return Err(Errno::EINVAL);
    }
    if mxcsr & !MXCSR_MASK != 0 {
        return Err(Errno::EINVAL);
    }
    i.fpu = image;
    i.fpu_dirty = true;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_offsets_round_trip() {
        let t = super::super::Tracee::new(
            1,
            1,
            crate::process::ThreadGroup::new(1, Default::default(), Default::default()),
            1,
            false,
        );
        let mut i = t.lock();
        poke_user(&mut i, (RIP * 8) as u64, 0x401000).unwrap();
        assert_eq!(peek_user(&i, (RIP * 8) as u64).unwrap(), 0x401000);
        assert_eq!(peek_user(&i, 17 * 8).unwrap(), USER_CS);
        assert!(poke_user(&mut i, 17 * 8, 0x23).is_err());
        assert!(peek_user(&i, 3).is_err());
        assert!(peek_user(&i, USER_SIZE).is_err());
        poke_user(&mut i, U_DEBUGREG + 7 * 8, 0).unwrap();
        assert!(poke_user(&mut i, U_DEBUGREG + 7 * 8, 1).is_err());
    }
}
