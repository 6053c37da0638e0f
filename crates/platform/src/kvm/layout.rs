//! Guest virtual and physical layout of the KVM platform.
//!
//! The application owns the lower half of the address space up to [`USER_LIMIT`]. The last
//! top-level slot of the lower half (PML4 entry 255, `0x7f80_0000_0000..0x8000_0000_0000`) is
//! reserved by the platform: each vCPU's page-table root points that slot at per-vCPU tables
//! holding the syscall trampoline, the vCPU's shared page and its doorbell page. Because the
//! slot differs per vCPU while every other slot is shared with the address space, the
//! trampoline finds *its own* shared page at a fixed address without any privileged
//! instruction. Linux would put the stack there; we put it lower, which programs don't notice.
//!
//! The upper half holds only supervisor pages: exception stubs, the IDT, and per-vCPU GDT/TSS
//! and ring-0 stack. None of the sentry, no page table and no other address space is mapped.

/// Page size of the guest.
pub const PAGE_SIZE: u64 = 4096;

/// First address the application may not use: PML4 slot 255 belongs to the platform.
pub const USER_LIMIT: u64 = 0x7f80_0000_0000;
/// Index of the PML4 slot reserved for per-vCPU pages.
pub const PER_VCPU_PML4_INDEX: usize = 255;
/// Index of the PML4 slot holding the supervisor-only kernel region.
pub const KERNEL_PML4_INDEX: usize = 511;

/// The syscall trampoline: user-accessible, read-only, executable (PVM entry).
pub const TRAMPOLINE_VA: u64 = 0x7fff_ffff_f000;
/// The vCPU's shared page (registers and the ring's state word), user read-write.
pub const SHARED_VA: u64 = 0x7fff_ffff_e000;
/// A page whose guest-physical address has no memory slot: writing it exits as MMIO.
pub const DOORBELL_VA: u64 = 0x7fff_ffff_d000;
/// The vCPU's PVM control page (direct switch only; user read-only): the host writes the
/// faulting address of a page fault at offset 8 (the "cr2 cell").
pub const PV_PAGE_VA: u64 = 0x7fff_ffff_c000;
/// Offset of the CR2 cell in the PVM control page.
pub const PV_CR2_OFFSET: u64 = 8;

/// Start of the supervisor-only kernel region.
pub const KERNEL_BASE: u64 = 0xffff_ff80_0000_0000;
/// Exception stubs and ring-0 code.
pub const KERNEL_CODE_VA: u64 = KERNEL_BASE;
/// The interrupt descriptor table (one page, 256 gates).
pub const IDT_VA: u64 = KERNEL_BASE + 0x1000;
/// Per-vCPU kernel pages start here: [GDT+TSS page][two stack pages][unmapped guard].
pub const PER_VCPU_KERNEL_VA: u64 = KERNEL_BASE + 0x10000;
/// Bytes of kernel virtual space each vCPU uses.
pub const PER_VCPU_KERNEL_STRIDE: u64 = 0x4000;
/// How many vCPUs fit in the single kernel page table (2 MiB region).
pub const MAX_VCPUS: usize = ((0x20_0000 - 0x10000) / PER_VCPU_KERNEL_STRIDE) as usize;

/// Offset of the TSS inside the per-vCPU GDT page.
pub const TSS_OFFSET: u64 = 0x100;
/// Size of a 64-bit TSS minus one.
pub const TSS_LIMIT: u32 = 103;

/// GDT selectors, as Linux lays them out.
pub const KERNEL_CS: u16 = 0x10;
pub const KERNEL_DS: u16 = 0x18;
pub const USER_CS32: u16 = 0x23;
pub const USER_DS: u16 = 0x2b;
pub const USER_CS: u16 = 0x33;
pub const TSS_SELECTOR: u16 = 0x38;

/// I/O port the exception stubs write to: the exit tells the vCPU thread an exception came.
pub const EXCEPTION_PORT: u16 = 0x10;
/// I/O port of the ring-0 (VMX/SVM) trampoline's fallback exit.
pub const RING0_DOORBELL_PORT: u16 = 0x11;
/// I/O port the self-test's ring-0 LSTAR target writes to.
pub const SELFTEST_PORT: u16 = 0x12;

/// Kernel virtual address of vCPU `index`'s GDT page.
pub fn vcpu_gdt_va(index: usize) -> u64 {
    PER_VCPU_KERNEL_VA + index as u64 * PER_VCPU_KERNEL_STRIDE
}

/// Kernel virtual address of the top of vCPU `index`'s ring-0 stack.
pub fn vcpu_stack_top(index: usize) -> u64 {
    vcpu_gdt_va(index) + 3 * PAGE_SIZE
}

/// Whether `addr` is a canonical lower-half address the application may use.
pub fn is_user_address(addr: u64) -> bool {
    addr < USER_LIMIT
}
