//! Descriptor tables and the architectural register values of a vCPU.

use kvm_bindings::{kvm_segment, kvm_sregs};

use super::layout::*;

/// CR0: PG, AM, WP, NE, ET, MP, PE (values measured to be accepted on this host).
pub const CR0: u64 = 0x8005_0033;
/// CR4: PAE, PGE, OSFXSR, OSXMMEXCPT, OSXSAVE, SMEP, SMAP. OSXSAVE lets programs find and use
/// AVX (with XCR0 set from the host's, see [`xcr0`]), as they do natively.
pub const CR4: u64 = 0x0034_06a0;
/// CR4 under PVM's direct switch: as [`CR4`] without SMEP (the first user instruction would
/// triple-fault) and SMAP (the trampoline's write to the doorbell would fault).
pub const CR4_DIRECT_SWITCH: u64 = 0x0004_06a0;
/// EFER: SCE, LME, LMA, NXE.
pub const EFER: u64 = 0xd01;

pub const MSR_STAR: u32 = 0xc000_0081;
pub const MSR_LSTAR: u32 = 0xc000_0082;
pub const MSR_CSTAR: u32 = 0xc000_0083;
pub const MSR_SYSCALL_MASK: u32 = 0xc000_0084;
pub const MSR_KERNEL_GS_BASE: u32 = 0xc000_0102;
pub const MSR_PAT: u32 = 0x277;
/// PVM's PV-feature MSR: (GPA of a per-vCPU zeroed page) | feature flags.
pub const MSR_PVM_FEATURES: u32 = 0x4b56_4d10;
/// Flags written with it: kpti (0), preflip (1), preflip on syscall (2), direct iret (3), CR2
/// cell (4) and the eretu return (6), the set measured to work on this host.
pub const PVM_FEATURE_FLAGS: u64 = 0x5f;

/// STAR: kernel CS in bits 47:32; `sysretq` takes CS = base+16, SS = base+8 from bits 63:48.
pub const STAR: u64 = ((USER_CS32 as u64) << 48) | ((KERNEL_CS as u64) << 32);
/// SFMASK: TF, IF, DF, IOPL, NT, AC cleared on a ring-0 `syscall` entry.
pub const SYSCALL_MASK: u64 = 0x47700;
/// Power-on PAT.
pub const PAT: u64 = 0x0007_0406_0007_0406;

/// The GDT, as 8-byte descriptors; the TSS descriptor takes the last two slots.
pub fn gdt(tss_base: u64) -> [u64; 9] {
    let tss_limit = TSS_LIMIT as u64;
    let tss_low = (tss_limit & 0xffff)
        | ((tss_base & 0xff_ffff) << 16)
        | (0x89u64 << 40) // present, type 9: available 64-bit TSS
        | (((tss_limit >> 16) & 0xf) << 48)
        | (((tss_base >> 24) & 0xff) << 56);
    let tss_high = tss_base >> 32;
    [
        0,
        0,
        0x00af_9b00_0000_ffff, // 0x10 kernel code, 64-bit
        0x00cf_9300_0000_ffff, // 0x18 kernel data
        0x00cf_fb00_0000_ffff, // 0x20 user code, 32-bit
        0x00cf_f300_0000_ffff, // 0x28 user data
        0x00af_fb00_0000_ffff, // 0x30 user code, 64-bit
        tss_low,               // 0x38 TSS
        tss_high,
    ]
}

/// A 64-bit TSS whose only job is to give the ring-0 stack; no I/O bitmap.
pub fn tss(rsp0: u64) -> [u8; 104] {
    let mut t = [0u8; 104];
    t[4..12].copy_from_slice(&rsp0.to_le_bytes());
    t[102..104].copy_from_slice(&104u16.to_le_bytes());
    t
}

/// One IDT gate pointing at `handler` in the kernel code segment.
pub fn idt_gate(handler: u64, user_callable: bool) -> [u8; 16] {
    let mut g = [0u8; 16];
    g[0..2].copy_from_slice(&(handler as u16).to_le_bytes());
    g[2..4].copy_from_slice(&KERNEL_CS.to_le_bytes());
    // Present interrupt gate; DPL 3 only where Linux lets `int3`/`into` from user mode.
    g[5] = if user_callable { 0xee } else { 0x8e };
    g[6..8].copy_from_slice(&((handler >> 16) as u16).to_le_bytes());
    g[8..12].copy_from_slice(&((handler >> 32) as u32).to_le_bytes());
    g
}

fn segment(selector: u16, code: bool, dpl: u8) -> kvm_segment {
    kvm_segment {
        base: 0,
        limit: 0xffff_ffff,
        selector,
        type_: if code { 11 } else { 3 },
        present: 1,
        dpl,
        db: if code { 0 } else { 1 },
        s: 1,
        l: if code { 1 } else { 0 },
        g: 1,
        avl: 0,
        unusable: 0,
        padding: 0,
    }
}

/// System registers of a vCPU starting in ring 0 on vCPU `index`'s tables with `cr3`.
pub fn initial_sregs(mut sregs: kvm_sregs, index: usize, cr3: u64, cr4: u64) -> kvm_sregs {
    let gdt_va = vcpu_gdt_va(index);
    sregs.cs = segment(KERNEL_CS, true, 0);
    let data = segment(KERNEL_DS, false, 0);
    sregs.ds = data;
    sregs.es = data;
    sregs.ss = data;
    sregs.fs = data;
    sregs.gs = data;
    sregs.tr = kvm_segment {
        base: gdt_va + TSS_OFFSET,
        limit: TSS_LIMIT,
        selector: TSS_SELECTOR,
        type_: 11, // busy 64-bit TSS, as after `ltr`
        present: 1,
        dpl: 0,
        db: 0,
        s: 0,
        l: 0,
        g: 0,
        avl: 0,
        unusable: 0,
        padding: 0,
    };
    sregs.ldt = kvm_segment {
        unusable: 1,
        ..Default::default()
    };
    sregs.gdt.base = gdt_va;
    sregs.gdt.limit = (9 * 8 - 1) as u16;
    sregs.idt.base = IDT_VA;
    sregs.idt.limit = 4095;
    sregs.cr0 = CR0;
    sregs.cr3 = cr3;
    sregs.cr4 = cr4;
    sregs.efer = EFER;
    sregs
}

/// Puts `sregs` in user mode (64-bit code, user data) with the given segment bases and root:
/// how a vCPU under the direct switch enters user code without running guest-kernel code.
pub fn to_user_mode(sregs: &mut kvm_sregs, cr3: u64, fs_base: u64, gs_base: u64) {
    sregs.cs = segment(USER_CS, true, 3);
    let data = segment(USER_DS, false, 3);
    sregs.ss = data;
    sregs.ds = data;
    sregs.es = data;
    sregs.fs = kvm_segment {
        base: fs_base,
        ..data
    };
    sregs.gs = kvm_segment {
        base: gs_base,
        ..data
    };
    sregs.cr3 = cr3;
}

/// The XCR0 for the guest: the host's enabled state components that KVM supports, so the
/// guest sees the same vector extensions (and signal frame sizes) as a native process.
pub fn xcr0(cpuid: &kvm_bindings::CpuId) -> u64 {
    let supported = cpuid
        .as_slice()
        .iter()
        .find(|e| e.function == 0xd && e.index == 0)
        .map(|e| e.eax as u64 | ((e.edx as u64) << 32))
        .unwrap_or(0x3);
    let host: u64;
    // SAFETY: xgetbv(0) only reads XCR0; the sentry runs on x86-64 Linux, which enables
    // OSXSAVE on every CPU that has XSAVE (and this host has it: KVM requires it).
    unsafe {
        let (lo, hi): (u32, u32);
        std::arch::asm!("xgetbv", in("ecx") 0, out("eax") lo, out("edx") hi, options(nomem, nostack));
        host = lo as u64 | ((hi as u64) << 32);
    }
    (host & supported) | 0x3
}

/// The guest's XCR0 and the size of an XSAVE image of the host's enabled components (at
/// least the guest's), computed once: CPUID and XGETBV trap on this host, itself a virtual
/// machine, and every vCPU binding asks.
pub fn xsave_layout(cpuid: &kvm_bindings::CpuId) -> (u64, usize) {
    static LAYOUT: std::sync::OnceLock<(u64, usize)> = std::sync::OnceLock::new();
    *LAYOUT.get_or_init(|| {
        (
            xcr0(cpuid),
            core::arch::x86_64::__cpuid_count(0xd, 0).ebx as usize,
        )
    })
}

/// XSAVE image of a reset CPU: x87 control word 0x37f, MXCSR 0x1f80, every other component
/// in its initial state.
pub fn initial_xsave() -> kvm_bindings::kvm_xsave {
    let mut x = kvm_bindings::kvm_xsave::default();
    x.region[0] = 0x037f; // FCW (low half), FSW 0
    x.region[6] = 0x1f80; // MXCSR at byte 24
    x.region[7] = 0xffff; // MXCSR_MASK at byte 28 (ignored on restore)
    x.region[128] = 0x3; // XSTATE_BV at byte 512: x87 and SSE hold the values above
    x
}
