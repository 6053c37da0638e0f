//! A vCPU and the [`Context`] built on it.
//!
//! A context is created on, and always run from, the host thread of the application thread it
//! serves: KVM charges ~20-30 us when a vCPU moves between host threads.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Once};

use kvm_bindings::{kvm_msr_entry, kvm_regs, Msrs};
use kvm_ioctls::{SyncReg, VcpuExit, VcpuFd};

use super::address_space::KvmAddressSpace;
use super::cpu;
use super::guest_code;
use super::layout::*;
use super::pagetables::*;
use super::ring::{
    Handed, Kicker, RingSlot, SharedPage, KICK_SIGNAL, KIND_EXCEPTION, KIND_FPU_SAVED, STATE_DEFER,
    STATE_EXIT,
};
use super::{SyscallEntry, VmShared};
use crate::memory::Gpa;
use crate::{
    AccessType, AddressSpace, Context, Event, FastSyscalls, Fault, GuestTsc, Interrupter,
    PlatformError, UserRegs, PAGE_SIZE,
};

extern "C" fn ignore_kick(_: libc::c_int) {}

/// Installs the no-op handler of the kick signal; its only effect is to interrupt `KVM_RUN`.
pub fn install_kick_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: installing a handler that does nothing; no SA_RESTART so KVM_RUN returns EINTR.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = ignore_kick as *const () as usize;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(KICK_SIGNAL, &sa, std::ptr::null_mut());
        }
    });
}

/// What a run of the vCPU ended with, copied out of `kvm_run`.
#[derive(Debug)]
pub(super) enum RawExit {
    Io(u16),
    Mmio(u64),
    Interrupted,
    Other(String),
}

/// The user-mode state the CPU pushed on the ring-0 stack, plus what the stub added.
#[derive(Debug, Clone, Copy)]
pub(super) struct ExceptionFrame {
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
}

const FRAME_WORDS: u64 = 7;

/// A KVM vCPU and the guest pages that belong to it. KVM cannot destroy a vCPU before its
/// VM, nor reuse its id, so a vCPU whose context ended goes back to a pool in [`VmShared`]
/// and is reset for the next context instead.
pub(super) struct VcpuHw {
    pub fd: VcpuFd,
    pub index: usize,
    /// Top page of the ring-0 stack, where exception frames land.
    stack_top_page: Gpa,
    /// PDPT for PML4 slot 255 of this vCPU's roots.
    per_vcpu_pdpt: Gpa,
    pub shared_page: Gpa,
    /// PVM's control page of this vCPU (direct switch: the host writes CR2 there).
    pv_page: Gpa,
    /// System registers of a freshly reset vCPU (ring 0, bootstrap root).
    initial_sregs: kvm_bindings::kvm_sregs,
    /// Whether this vCPU runs under PVM's direct switch (set at reset).
    pub ds: bool,
    /// The KERNEL_GS_BASE last written (direct switch keeps it equal to the GS base).
    kernel_gs_base: u64,
    /// The root the vCPU last ran, kept while it waits in the pool: a thread of the same
    /// address space that takes the vCPU next uses it as it is. Making a root and dropping
    /// one costs a flush of every shadow page table of the VM (`retire_tables`), which
    /// thread churn paid at every thread exit. A root whose address space died went with it.
    kept_root: Option<(Gpa, std::sync::Weak<dyn AddressSpace>)>,
}

/// A vCPU in use, with the root it currently runs.
pub(super) struct Vcpu {
    hw: Option<VcpuHw>,
    pub vm: Arc<VmShared>,
    /// The root currently loaded and the address space it mirrors.
    root: Option<(Gpa, Arc<dyn AddressSpace>)>,
    /// CR3 must be (re)loaded at the next activate: the vCPU was reset since.
    load_cr3: bool,
}

impl std::ops::Deref for Vcpu {
    type Target = VcpuHw;
    fn deref(&self) -> &VcpuHw {
        self.hw
            .as_ref()
            .expect("a live Vcpu always has its hardware")
    }
}

impl std::ops::DerefMut for Vcpu {
    fn deref_mut(&mut self) -> &mut VcpuHw {
        self.hw
            .as_mut()
            .expect("a live Vcpu always has its hardware")
    }
}

fn kvm(what: &str, e: kvm_ioctls::Error) -> PlatformError {
    PlatformError::Kvm(format!("{what}: {e}"))
}

impl Vcpu {
    /// A vCPU from the pool, reset, or a new one.
    pub fn new(vm: Arc<VmShared>, lstar: u64, ds: bool) -> Result<Self, PlatformError> {
        let pooled = vm.vcpu_pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut root = None;
        let hw = match pooled {
            Some(mut hw) => {
                root = hw
                    .kept_root
                    .take()
                    .and_then(|(gpa, space)| Some((gpa, space.upgrade()?)));
                if let Err(e) = hw.reset(&vm, lstar, ds) {
                    vm.quarantine
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(hw);
                    return Err(e);
                }
                hw
            }
            None => {
                let index = vm.alloc_vcpu_index()?;
                VcpuHw::build(&vm, index, lstar, ds)
                    .inspect_err(|_| vm.release_vcpu_index(index))?
            }
        };
        Ok(Vcpu {
            hw: Some(hw),
            vm,
            root,
            load_cr3: true,
        })
    }
}

impl VcpuHw {
    fn build(
        vm: &Arc<VmShared>,
        index: usize,
        lstar: u64,
        ds: bool,
    ) -> Result<Self, PlatformError> {
        let fd = vm
            .vm
            .create_vcpu(index as u64)
            .map_err(|e| kvm("create vCPU", e))?;
        fd.set_cpuid2(&vm.cpuid).map_err(|e| kvm("set CPUID", e))?;
        let mem = &vm.mem;
        // These pages live as long as the VM: the vCPU is pooled, never destroyed.
        let page = || mem.alloc_page();
        // Kernel pages: GDT+TSS, two stack pages.
        let gdt_page = page()?;
        let stack_low = page()?;
        let stack_top_page = page()?;
        // Per-vCPU user slot: PDPT -> PD -> PT -> {trampoline, shared page, doorbell}.
        let pdpt = page()?;
        let pd = page()?;
        let pt = page()?;
        let shared_page = page()?;
        let pv_page = page()?;

        let gdt_va = vcpu_gdt_va(index);
        let gdt = cpu::gdt(gdt_va + TSS_OFFSET);
        for (i, d) in gdt.iter().enumerate() {
            mem.write_u64(gdt_page + i as u64 * 8, *d);
        }
        mem.write(gdt_page + TSS_OFFSET, &cpu::tss(vcpu_stack_top(index)));
        vm.map_kernel_page(gdt_va, gdt_page, true, false);
        vm.map_kernel_page(gdt_va + PAGE_SIZE, stack_low, true, false);
        vm.map_kernel_page(gdt_va + 2 * PAGE_SIZE, stack_top_page, true, false);

        let table = PTE_PRESENT | PTE_WRITE | PTE_USER | PTE_ACCESSED;
        mem.write_u64(pdpt + 511 * 8, pd | table);
        mem.write_u64(pd + 511 * 8, pt | table);
        let user_rw = PTE_PRESENT | PTE_WRITE | PTE_USER | PTE_ACCESSED | PTE_DIRTY | PTE_NX;
        mem.write_u64(
            pt + 511 * 8,
            vm.trampoline_page | PTE_PRESENT | PTE_USER | PTE_ACCESSED,
        );
        mem.write_u64(pt + 510 * 8, shared_page | user_rw);
        mem.write_u64(pt + 509 * 8, vm.doorbell_gpa | user_rw);
        mem.write_u64(
            pt + 508 * 8,
            pv_page | PTE_PRESENT | PTE_USER | PTE_ACCESSED | PTE_NX,
        );

        // A bootstrap root holding only the kernel region, until an address space is loaded.
        let boot_root = page()?;
        mem.write_u64(
            boot_root + KERNEL_PML4_INDEX as u64 * 8,
            vm.kernel_pdpt | PTE_PRESENT | PTE_WRITE | PTE_ACCESSED,
        );
        let sregs = fd.get_sregs().map_err(|e| kvm("get sregs", e))?;
        let mut hw = VcpuHw {
            fd,
            index,
            stack_top_page,
            per_vcpu_pdpt: pdpt,
            shared_page,
            pv_page,
            initial_sregs: cpu::initial_sregs(sregs, index, boot_root, cpu::CR4),
            ds,
            kernel_gs_base: 0,
            kept_root: None,
        };
        let mut xcrs = kvm_bindings::kvm_xcrs {
            nr_xcrs: 1,
            ..Default::default()
        };
        xcrs.xcrs[0].xcr = 0;
        xcrs.xcrs[0].value = cpu::xcr0(&vm.cpuid);
        hw.fd.set_xcrs(&xcrs).map_err(|e| kvm("set XCR0", e))?;
        hw.fd.set_sync_valid_reg(SyncReg::Register);
        hw.fd.set_sync_valid_reg(SyncReg::SystemRegister);
        if let Err(e) = hw.reset(vm, lstar, ds) {
            // The vCPU exists but its state is unknown: keep it out of the pool.
            vm.quarantine
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(hw);
            return Err(e);
        }
        Ok(hw)
    }

    /// Puts the vCPU in the state of a new one: ring 0 on the bootstrap root, `lstar` as the
    /// syscall entry, FPU and vector registers in their initial state (nothing of a previous
    /// thread survives), an idle shared page.
    fn reset(&mut self, vm: &VmShared, lstar: u64, ds: bool) -> Result<(), PlatformError> {
        self.ds = ds;
        self.initial_sregs.cr4 = if ds { cpu::CR4_DIRECT_SWITCH } else { cpu::CR4 };
        // The ring-0 trampoline (VMX/SVM) finds the shared page through KERNEL_GS_BASE; under
        // the direct switch, which swaps GS base with it on every entry, it mirrors GS base.
        self.kernel_gs_base = if ds { 0 } else { SHARED_VA };
        vm.mem.zero(self.pv_page, PAGE_SIZE);
        let fd = &mut self.fd;
        fd.set_sregs(&self.initial_sregs)
            .map_err(|e| kvm("set sregs", e))?;
        fd.set_regs(&kvm_regs {
            rflags: 0x2,
            ..Default::default()
        })
        .map_err(|e| kvm("set regs", e))?;
        // The sync-register copy is only filled by an exit; seed it so that the first run can
        // mark it dirty without loading garbage.
        fd.sync_regs_mut().sregs = self.initial_sregs;
        fd.sync_regs_mut().regs = kvm_regs {
            rflags: 0x2,
            ..Default::default()
        };
        let mut entries = vec![
            msr(cpu::MSR_STAR, cpu::STAR),
            msr(cpu::MSR_LSTAR, lstar),
            msr(cpu::MSR_CSTAR, lstar),
            msr(cpu::MSR_SYSCALL_MASK, cpu::SYSCALL_MASK),
            msr(cpu::MSR_KERNEL_GS_BASE, self.kernel_gs_base),
            msr(cpu::MSR_PAT, cpu::PAT),
        ];
        if ds {
            entries.push(msr(
                cpu::MSR_PVM_FEATURES,
                self.pv_page | cpu::PVM_FEATURE_FLAGS,
            ));
        }
        let msrs = Msrs::from_entries(&entries)
            .map_err(|e| PlatformError::Kvm(format!("MSR list: {e:?}")))?;
        let written = fd.set_msrs(&msrs).map_err(|e| kvm("set MSRs", e))?;
        if written != entries.len() {
            return Err(PlatformError::Kvm(format!(
                "set MSRs: the host took {written} of {} (MSR {:#x} refused)",
                entries.len(),
                entries[written].index
            )));
        }
        fd.set_xsave(&cpu::initial_xsave())
            .map_err(|e| kvm("set XSAVE", e))?;
        fd.set_kvm_immediate_exit(0);
        vm.mem.zero(self.shared_page, PAGE_SIZE);
        Ok(())
    }

    /// Lets KVM finish any operation pending from the last exit (an MMIO write completes on
    /// the next `KVM_RUN` and would otherwise rewrite RIP after a reset), without running
    /// guest code: `KVM_RUN` with `immediate_exit` returns at once with EINTR.
    fn quiesce(&mut self) {
        self.fd.set_kvm_immediate_exit(1);
        let _ = self.fd.run();
        self.fd.set_kvm_immediate_exit(0);
    }
}

impl Vcpu {
    /// Loads a root mirroring `space`, unless it is already loaded.
    pub fn activate(&mut self, space: &Arc<dyn AddressSpace>) -> Result<(), PlatformError> {
        let same = matches!(&self.root, Some((_, current)) if Arc::ptr_eq(current, space));
        if same && !self.load_cr3 {
            return Ok(());
        }
        if !same {
            let kvm_space = space
                .as_any()
                .downcast_ref::<KvmAddressSpace>()
                .ok_or_else(|| PlatformError::Kvm("address space of another platform".into()))?;
            let root = {
                let mut tables = kvm_space.tables.lock().unwrap_or_else(|e| e.into_inner());
                if self.ds {
                    tables.new_mirror_pair(self.per_vcpu_pdpt, self.vm.kernel_view_pdpt)?
                } else {
                    tables.new_mirror(self.per_vcpu_pdpt)?
                }
            };
            self.deactivate();
            self.root = Some((root, space.clone()));
        }
        self.load_cr3 = false;
        let root = self.root.as_ref().map(|(r, _)| *r).expect("set above");
        let ds = self.ds;
        let sregs = &mut self.fd.sync_regs_mut().sregs;
        // Under the direct switch a vCPU stopped in guest-kernel code (the trampoline, a
        // stub) runs on the kernel root of the pair; the host goes to kernel root + 4 KiB
        // when it returns to user mode.
        sregs.cr3 = if ds && sregs.cs.dpl == 0 {
            root - PAGE_SIZE
        } else {
            root
        };
        self.fd.set_sync_dirty_reg(SyncReg::SystemRegister);
        Ok(())
    }

    /// Keeps a vCPU whose state is unknown (a failed self-test) out of the pool for good.
    pub fn quarantine(mut self) {
        self.deactivate();
        if let Some(hw) = self.hw.take() {
            self.vm
                .quarantine
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(hw);
        }
    }

    /// KVM's statistics of this vCPU.
    pub fn stats(&self) -> std::io::Result<Vec<(String, u64)>> {
        super::stats::read_vcpu_stats(&self.fd)
    }

    fn deactivate(&mut self) {
        if let Some((root, space)) = self.root.take() {
            let roots = if self.hw.as_ref().is_some_and(|hw| hw.ds) {
                vec![root - PAGE_SIZE, root]
            } else {
                vec![root]
            };
            if let Some(s) = space.as_any().downcast_ref::<KvmAddressSpace>() {
                let mut tables = s.tables.lock().unwrap_or_else(|e| e.into_inner());
                for &r in &roots {
                    tables.drop_mirror(r);
                }
            }
            // A root page KVM shadowed must not come back as another table unflushed.
            self.vm.retire_tables(roots);
        }
    }

    /// Puts `regs` where the exception tail's `iretq` and the vCPU will take them: RIP, RSP
    /// and RFLAGS in the frame on the ring-0 stack, the rest in the sync registers.
    fn load_user_state(&mut self, regs: &UserRegs) {
        let frame = [
            0,
            0,
            regs.rip,
            USER_CS as u64,
            user_rflags(regs.rflags),
            regs.rsp,
            USER_DS as u64,
        ];
        self.write_frame(&frame);
        set_gprs(&mut self.fd.sync_regs_mut().regs, regs);
        self.fd.set_sync_dirty_reg(SyncReg::Register);
        self.set_segment_bases(regs);
    }

    /// Makes the next run enter user mode at `regs` through `iretq` from the exception tail.
    pub fn enter_user(&mut self, regs: &UserRegs) {
        if self.ds {
            // Under the direct switch guest-kernel code returns with `int $0x17`; entering
            // user mode straight through the system registers needs none.
            let root = self.root.as_ref().map_or(0, |(r, _)| *r);
            cpu::to_user_mode(
                &mut self.fd.sync_regs_mut().sregs,
                root,
                regs.fs_base,
                regs.gs_base,
            );
            self.fd.set_sync_dirty_reg(SyncReg::SystemRegister);
            self.set_user_regs_now(regs);
            return;
        }
        self.load_user_state(regs);
        let frame_va = vcpu_stack_top(self.index) - FRAME_WORDS * 8;
        let r = &mut self.fd.sync_regs_mut().regs;
        r.rip = KERNEL_CODE_VA + guest_code::resume_offset();
        r.rsp = frame_va;
        r.rflags = 0x2;
    }

    /// Sets FS and GS bases, if they differ from the vCPU's.
    pub fn set_segment_bases(&mut self, regs: &UserRegs) {
        let s = &mut self.fd.sync_regs_mut().sregs;
        if s.fs.base != regs.fs_base || s.gs.base != regs.gs_base {
            s.fs.base = regs.fs_base;
            s.gs.base = regs.gs_base;
            self.fd.set_sync_dirty_reg(SyncReg::SystemRegister);
        }
        if self.ds && self.kernel_gs_base != regs.gs_base {
            // The direct switch swaps GS base with KERNEL_GS_BASE on every entry to and
            // return from guest-kernel code; with both equal, the swap changes nothing,
            // wherever the vCPU stopped. (An application's own `wrgsbase` is seen at the next
            // arch_prctl, clone or fork, when the sentry sets GS again.)
            let set = Msrs::from_entries(&[msr(cpu::MSR_KERNEL_GS_BASE, regs.gs_base)])
                .ok()
                .and_then(|m| self.fd.set_msrs(&m).ok());
            if set == Some(1) {
                self.kernel_gs_base = regs.gs_base;
            } else {
                tracing::warn!("vCPU {}: could not set KERNEL_GS_BASE", self.index);
            }
        }
    }

    fn frame_gpa(&self) -> Gpa {
        self.stack_top_page + PAGE_SIZE - FRAME_WORDS * 8
    }

    fn write_frame(&self, words: &[u64; 7]) {
        for (i, w) in words.iter().enumerate() {
            self.vm.mem.write_u64(self.frame_gpa() + i as u64 * 8, *w);
        }
    }

    /// Reads the exception frame after an exit on the exception port.
    pub fn read_frame(&self) -> Result<ExceptionFrame, PlatformError> {
        let regs = &self.fd.sync_regs().regs;
        let expected_rsp = vcpu_stack_top(self.index) - FRAME_WORDS * 8;
        let w = |i: u64| self.vm.mem.read_u64(self.frame_gpa() + i * 8);
        let frame = ExceptionFrame {
            vector: w(0),
            error_code: w(1),
            rip: w(2),
            cs: w(3),
            rflags: w(4),
            rsp: w(5),
        };
        if regs.rsp != expected_rsp || frame.cs & 3 != 3 {
            return Err(PlatformError::GuestKernel(format!(
                "exception {} in guest ring 0 (rip {:#x}, rsp {:#x})",
                frame.vector, frame.rip, regs.rsp
            )));
        }
        Ok(frame)
    }

    /// Resumes after an exception with `regs` (the stub's `iretq` returns to them).
    pub fn resume_from_exception(&mut self, regs: &UserRegs) {
        self.load_user_state(regs);
    }

    /// Runs until the next exit the platform must look at.
    pub fn run(&mut self) -> RawExit {
        let exit = match self.fd.run() {
            Ok(VcpuExit::IoOut(port, _)) => RawExit::Io(port),
            Ok(VcpuExit::MmioWrite(addr, _)) => RawExit::Mmio(addr),
            Ok(VcpuExit::MmioRead(_, data)) => {
                // Only a misbehaving application reads the doorbell; give it zeros.
                data.fill(0);
                return RawExit::Mmio(u64::MAX);
            }
            Ok(VcpuExit::IoIn(_, data)) => {
                data.fill(0);
                return RawExit::Other("port input from the guest".into());
            }
            Ok(other) => RawExit::Other(format!("{other:?}")),
            Err(e) if e.errno() == libc::EINTR => RawExit::Interrupted,
            Err(e) => RawExit::Other(format!("KVM_RUN: {e}")),
        };
        if matches!(exit, RawExit::Interrupted) {
            self.fd.set_kvm_immediate_exit(0);
        }
        exit
    }

    /// Copies user registers out of the vCPU (after an exception exit).
    pub fn user_regs_after_exception(&self, frame: &ExceptionFrame) -> UserRegs {
        let s = self.fd.sync_regs();
        let r = &s.regs;
        UserRegs {
            rax: r.rax,
            rbx: r.rbx,
            rcx: r.rcx,
            rdx: r.rdx,
            rsi: r.rsi,
            rdi: r.rdi,
            rbp: r.rbp,
            rsp: frame.rsp,
            r8: r.r8,
            r9: r.r9,
            r10: r.r10,
            r11: r.r11,
            r12: r.r12,
            r13: r.r13,
            r14: r.r14,
            r15: r.r15,
            rip: frame.rip,
            rflags: frame.rflags,
            fs_base: s.sregs.fs.base,
            gs_base: s.sregs.gs.base,
        }
    }

    /// The user registers of a vCPU stopped in user mode.
    pub fn user_regs_now(&self) -> UserRegs {
        let s = self.fd.sync_regs();
        let r = &s.regs;
        UserRegs {
            rax: r.rax,
            rbx: r.rbx,
            rcx: r.rcx,
            rdx: r.rdx,
            rsi: r.rsi,
            rdi: r.rdi,
            rbp: r.rbp,
            rsp: r.rsp,
            r8: r.r8,
            r9: r.r9,
            r10: r.r10,
            r11: r.r11,
            r12: r.r12,
            r13: r.r13,
            r14: r.r14,
            r15: r.r15,
            rip: r.rip,
            rflags: r.rflags,
            fs_base: s.sregs.fs.base,
            gs_base: s.sregs.gs.base,
        }
    }

    /// Sets every user register of a vCPU stopped in user mode.
    pub fn set_user_regs_now(&mut self, regs: &UserRegs) {
        let r = &mut self.fd.sync_regs_mut().regs;
        set_gprs(r, regs);
        r.rsp = regs.rsp;
        r.rip = regs.rip;
        r.rflags = user_rflags(regs.rflags);
        self.fd.set_sync_dirty_reg(SyncReg::Register);
        self.set_segment_bases(regs);
    }

    pub fn cr2(&self) -> u64 {
        self.fd.sync_regs().sregs.cr2
    }

    /// Pointer to `kvm_run.immediate_exit`, for kicking from other threads.
    pub fn immediate_exit_ptr(&mut self) -> *mut u8 {
        &mut self.fd.get_kvm_run().immediate_exit as *mut u8
    }
}

impl Drop for Vcpu {
    fn drop(&mut self) {
        // The root stays with the vCPU in the pool (see `VcpuHw::kept_root`).
        if let Some(mut hw) = self.hw.take() {
            hw.quiesce();
            hw.kept_root = self
                .root
                .take()
                .map(|(gpa, space)| (gpa, Arc::downgrade(&space)));
            self.vm.pool_vcpu(hw);
        }
    }
}

/// The time-stamp counter MSR.
const MSR_IA32_TSC: u32 = 0x10;

/// Reads the host's time-stamp counter.
pub(super) fn host_tsc() -> u64 {
    // SAFETY: rdtsc has no side effects; every x86-64 CPU has it.
    unsafe { core::arch::x86_64::_rdtsc() }
}

impl VcpuHw {
    /// The guest's time-stamp counter: its frequency (KVM_GET_TSC_KHZ) and its offset from
    /// the host's.
    pub(super) fn guest_tsc(&self) -> Option<GuestTsc> {
        let khz = self.fd.get_tsc_khz().ok().filter(|&k| k > 0)?;
        Some(GuestTsc {
            offset: self.guest_tsc_offset()?,
            khz,
        })
    }

    /// How far the guest's time-stamp counter is ahead of the host's (`guest = host +
    /// offset`), from the vCPU's TSC MSR read between two host reads; None if KVM won't say.
    /// The tightest of a few readings is kept, and an offset within its uncertainty is taken
    /// as 0: where the guest reads the host's own counter (PVM), time computed in the guest
    /// and in the sentry then agree exactly.
    fn guest_tsc_offset(&self) -> Option<i64> {
        let mut best: Option<(u64, i64)> = None;
        for _ in 0..8 {
            let mut msrs = Msrs::from_entries(&[msr(MSR_IA32_TSC, 0)]).ok()?;
            let before = host_tsc();
            let read = self.fd.get_msrs(&mut msrs).ok()?;
            let after = host_tsc();
            if read != 1 {
                return None;
            }
            let width = after.wrapping_sub(before);
            let host = before.wrapping_add(width / 2);
            let offset = msrs.as_slice()[0].data.wrapping_sub(host) as i64;
            if best.is_none_or(|(w, _)| width < w) {
                best = Some((width, offset));
            }
        }
        let (width, offset) = best?;
        Some(if offset.unsigned_abs() <= width {
            0
        } else {
            offset
        })
    }
}

fn msr(index: u32, data: u64) -> kvm_msr_entry {
    kvm_msr_entry {
        index,
        data,
        ..Default::default()
    }
}

/// User RFLAGS: reserved bit 1 set, IF set (as Linux shows it), IOPL and VM cleared.
fn user_rflags(rflags: u64) -> u64 {
    (rflags & 0x0000_0000_003f_4fd5) | 0x202
}

fn set_gprs(r: &mut kvm_regs, regs: &UserRegs) {
    r.rax = regs.rax;
    r.rbx = regs.rbx;
    r.rcx = regs.rcx;
    r.rdx = regs.rdx;
    r.rsi = regs.rsi;
    r.rdi = regs.rdi;
    r.rbp = regs.rbp;
    r.r8 = regs.r8;
    r.r9 = regs.r9;
    r.r10 = regs.r10;
    r.r11 = regs.r11;
    r.r12 = regs.r12;
    r.r13 = regs.r13;
    r.r14 = regs.r14;
    r.r15 = regs.r15;
}

/// Decodes an exception frame into a platform fault.
pub(super) fn decode_fault(frame: &ExceptionFrame, cr2: u64) -> Fault {
    let e = frame.error_code;
    match frame.vector {
        0 => Fault::DivideError,
        1 => Fault::Debug,
        3 => Fault::Breakpoint,
        6 => Fault::InvalidOpcode,
        13 => Fault::GeneralProtection { error_code: e },
        14 => Fault::Page {
            addr: cr2,
            access: AccessType {
                write: e & 2 != 0,
                exec: e & 0x10 != 0,
                present: e & 1 != 0,
            },
        },
        16 | 19 => Fault::FloatingPoint,
        17 => Fault::AlignmentCheck,
        v => Fault::Other {
            vector: v as u8,
            error_code: e,
        },
    }
}

/// How the next `switch` resumes the thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resume {
    /// Not on a vCPU's user state (new, or moved off its vCPU): enter user mode with every
    /// register from `regs` (and the kept FPU state).
    Enter,
    /// Stopped in a system call: answer through the shared page.
    Syscall,
    /// Stopped in an exception stub: rewrite the frame and `iretq`.
    Exception,
    /// Interrupted somewhere: run on unchanged.
    Continue,
    /// Interrupted in user code: load the (possibly changed) registers directly.
    Direct,
}

/// A context's vCPU while it has one, and its end of the ring on that vCPU's page.
struct Binding {
    vcpu: Vcpu,
    slot: Arc<RingSlot>,
}

/// How long a context without a vCPU waits for one before it looks at its interrupt flag.
const VCPU_WAIT_SLICE: std::time::Duration = std::time::Duration::from_millis(20);

/// The KVM context of one application thread.
///
/// It runs on a vCPU, and keeps it between switches (KVM charges tens of microseconds when a
/// vCPU moves to another host thread). When vCPUs run short, a context about to wait in a
/// long call gives its vCPU up ([`Context::may_block`]), keeping its registers and FPU state,
/// and the next switch takes a vCPU from the pool, waiting for one if need be: there can be
/// many more threads than vCPUs, as long as most of them wait (as gVisor's KVM platform does).
pub struct KvmContext {
    vm: Arc<VmShared>,
    fast: Arc<dyn FastSyscalls>,
    kicker: Arc<Kicker>,
    bound: Option<Binding>,
    /// The FPU state of a context that is not on a vCPU (XSAVE image), if not the initial one.
    fpu: Option<kvm_bindings::kvm_xsave>,
    resume: Resume,
}

impl KvmContext {
    /// A context for the calling thread, on a vCPU if one is free (otherwise its first
    /// switch waits for one).
    pub(super) fn new(
        vm: Arc<VmShared>,
        fast: Arc<dyn FastSyscalls>,
    ) -> Result<Self, PlatformError> {
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() };
        let kicker = Arc::new(Kicker::new(tid, vm.clone()));
        let mut ctx = KvmContext {
            vm,
            fast,
            kicker,
            bound: None,
            fpu: None,
            resume: Resume::Enter,
        };
        match ctx.try_bind() {
            Ok(_) | Err(PlatformError::TooManyVcpus(_)) => Ok(ctx),
            Err(e) => Err(e),
        }
    }

    /// Takes a vCPU from the pool (or a new one) and loads the kept FPU state into it.
    /// TooManyVcpus when none is free.
    fn try_bind(&mut self) -> Result<(), PlatformError> {
        let entry = *self.vm.entry.lock().unwrap_or_else(|e| e.into_inner());
        let lstar = match entry {
            SyscallEntry::UserTrampoline => TRAMPOLINE_VA,
            SyscallEntry::Ring0 => KERNEL_CODE_VA + guest_code::ring0_syscall_offset(),
        };
        let mut vcpu = Vcpu::new(self.vm.clone(), lstar, self.vm.direct_switch())?;
        if let Some(fpu) = &self.fpu {
            // KVM checks the image (see set_fpu_state).
            vcpu.fd
                .set_xsave(fpu)
                .map_err(|e| PlatformError::Kvm(format!("set XSAVE: {e}")))?;
        }
        self.fpu = None;
        let page = SharedPage::new(self.vm.mem.clone(), vcpu.shared_page);
        let slot = Arc::new(RingSlot::new(
            page,
            self.fast.clone(),
            self.kicker.clone(),
            entry == SyscallEntry::UserTrampoline,
            (entry == SyscallEntry::UserTrampoline).then(|| cpu::xsave_layout(&self.vm.cpuid)),
        ));
        if let Some(poller) = &self.vm.poller {
            poller.register(slot.clone());
        }
        self.kicker.attach(vcpu.immediate_exit_ptr());
        self.vm.vcpus_bound.fetch_add(1, Ordering::SeqCst);
        self.bound = Some(Binding { vcpu, slot });
        Ok(())
    }

    /// Takes a vCPU, waiting for one. False if interrupted meanwhile (the interrupt is
    /// consumed: the caller reports it).
    fn bind(&mut self) -> Result<bool, PlatformError> {
        loop {
            match self.try_bind() {
                Ok(()) => return Ok(true),
                Err(PlatformError::TooManyVcpus(_)) => {}
                Err(e) => return Err(e),
            }
            if self.kicker.interrupted.swap(false, Ordering::SeqCst) {
                return Ok(false);
            }
            self.vm.wait_for_vcpu(VCPU_WAIT_SLICE);
        }
    }

    /// Gives the vCPU back to the pool. The caller has the thread's whole user state in its
    /// registers (or keeps the FPU state first).
    fn unbind(&mut self) {
        if let Some(b) = self.bound.take() {
            self.kicker.detach();
            if let Some(poller) = &self.vm.poller {
                poller.unregister(&b.slot);
            }
            self.vm.vcpus_bound.fetch_sub(1, Ordering::SeqCst);
            // Dropping the vCPU pools it.
            drop(b);
        }
    }

    /// Takes a request from the shared page (`from_page`, after the doorbell) or the one the
    /// poller deferred (`deferred`): a system call, or under the direct switch an exception.
    /// Either way it is answered through the page.
    fn take_syscall(&mut self, regs: &mut UserRegs, from_page: bool, mut what: Handed) -> Event {
        let b = self.bound.as_ref().expect("called on a vCPU");
        if from_page {
            match b.slot.page.kind() {
                KIND_EXCEPTION => {
                    what = Handed::Fault(b.slot.page.fault());
                    b.slot.stats.faults_by_exit.fetch_add(1, Ordering::Relaxed);
                }
                KIND_FPU_SAVED => what = Handed::SignalPoint,
                _ => {
                    b.slot.stats.by_exit.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        if what == Handed::SignalPoint {
            b.slot
                .stats
                .signals_by_thread
                .fetch_add(1, Ordering::Relaxed);
        }
        let sregs = &b.vcpu.fd.sync_regs().sregs;
        let (fs, gs) = (sregs.fs.base, sregs.gs.base);
        if from_page {
            b.slot.page.read_regs(regs);
        }
        regs.fs_base = fs;
        regs.gs_base = gs;
        self.resume = Resume::Syscall;
        match what {
            Handed::Fault(f) => Event::Fault(f),
            Handed::Syscall => Event::Syscall,
            // The trampoline saved the FPU state for a signal: the thread's state is in
            // `regs` (the FPU's is still in the vCPU, XSAVE leaves it) and the answer goes
            // back through the page, as a call's. The sentry delivers, as after a kick.
            Handed::SignalPoint => Event::Interrupted { at_user: true },
        }
    }
}

impl Context for KvmContext {
    fn switch(
        &mut self,
        space: &Arc<dyn AddressSpace>,
        regs: &mut UserRegs,
    ) -> Result<Event, PlatformError> {
        if self.bound.is_none() && !self.bind()? {
            // Interrupted while waiting for a vCPU: the thread is, in effect, stopped in
            // user mode with `regs`.
            return Ok(Event::Interrupted { at_user: true });
        }
        let b = self.bound.as_mut().expect("bound above");
        let (vcpu, slot) = (&mut b.vcpu, &b.slot);
        vcpu.activate(space)?;
        match self.resume {
            Resume::Enter => vcpu.enter_user(regs),
            Resume::Syscall => {
                vcpu.set_segment_bases(regs);
                slot.page.answer(regs);
            }
            Resume::Exception => vcpu.resume_from_exception(regs),
            Resume::Direct => vcpu.set_user_regs_now(regs),
            Resume::Continue => {}
        }
        loop {
            let b = self.bound.as_mut().expect("bound above");
            let (vcpu, slot) = (&mut b.vcpu, &b.slot);
            match vcpu.run() {
                RawExit::Io(EXCEPTION_PORT) => {
                    let frame = vcpu.read_frame()?;
                    *regs = vcpu.user_regs_after_exception(&frame);
                    self.resume = Resume::Exception;
                    return Ok(Event::Fault(decode_fault(&frame, vcpu.cr2())));
                }
                RawExit::Io(RING0_DOORBELL_PORT) => {
                    if slot.page.claim(STATE_EXIT) {
                        if let Some(p) = &self.vm.poller {
                            p.wake();
                        }
                        return Ok(self.take_syscall(regs, true, Handed::Syscall));
                    }
                }
                RawExit::Mmio(addr) if addr & !(PAGE_SIZE - 1) == self.vm.doorbell_gpa => {
                    if slot.page.claim(STATE_DEFER) {
                        if let Some((d, what)) = slot.take_deferred() {
                            *regs = d;
                            return Ok(self.take_syscall(regs, false, what));
                        }
                        // Cannot happen (the poller sets DEFER only over SERVING, with the
                        // request stored first); say so rather than leave the guest waiting.
                        tracing::warn!("vCPU {}: DEFER without a request", vcpu.index);
                    }
                    if slot.page.claim(STATE_EXIT) {
                        if let Some(p) = &self.vm.poller {
                            p.wake();
                        }
                        return Ok(self.take_syscall(regs, true, Handed::Syscall));
                    }
                }
                RawExit::Mmio(_) => {}
                RawExit::Interrupted => {
                    if let Some((d, what)) = slot.take_deferred() {
                        *regs = d;
                        return Ok(self.take_syscall(regs, false, what));
                    }
                    if self.kicker.interrupted.swap(false, Ordering::SeqCst) {
                        // In plain user code (not the trampoline, not ring 0) the state is
                        // the thread's own and may be rewritten through the sync registers.
                        let s = vcpu.fd.sync_regs();
                        let in_trampoline = s.regs.rip & !(PAGE_SIZE - 1) == TRAMPOLINE_VA;
                        let at_user = s.sregs.cs.dpl == 3 && !in_trampoline;
                        if at_user {
                            *regs = vcpu.user_regs_now();
                            self.resume = Resume::Direct;
                        } else {
                            self.resume = Resume::Continue;
                        }
                        return Ok(Event::Interrupted { at_user });
                    }
                }
                RawExit::Io(port) => {
                    return Err(PlatformError::GuestKernel(format!(
                        "unexpected port write {port:#x}"
                    )))
                }
                RawExit::Other(what) => {
                    return Err(PlatformError::GuestKernel(format!(
                        "unexpected exit: {what}"
                    )))
                }
            }
        }
    }

    fn may_block(&mut self) {
        // Only where `regs` hold the whole user state: stopped in a system call (or in user
        // code); a thread stopped in an exception stub or mid-trampoline keeps its vCPU.
        if self.bound.is_none()
            || !matches!(self.resume, Resume::Syscall | Resume::Direct)
            || !self.vm.vcpus_scarce()
        {
            return;
        }
        let b = self.bound.as_ref().expect("checked");
        match b.vcpu.fd.get_xsave() {
            Ok(x) => self.fpu = Some(x),
            Err(e) => {
                tracing::debug!("vCPU {}: kept (get XSAVE: {e})", b.vcpu.index);
                return;
            }
        }
        self.unbind();
        self.resume = Resume::Enter;
    }

    fn debug_stats(&self) -> Vec<(String, u64)> {
        self.bound
            .as_ref()
            .and_then(|b| super::stats::read_vcpu_stats(&b.vcpu.fd).ok())
            .unwrap_or_default()
    }

    fn interrupter(&self) -> Arc<dyn Interrupter> {
        self.kicker.clone()
    }

    fn fpu_state(&mut self) -> Result<Vec<u8>, PlatformError> {
        let bytes = |x: &kvm_bindings::kvm_xsave| -> Vec<u8> {
            x.region.iter().flat_map(|w| w.to_le_bytes()).collect()
        };
        Ok(match (&self.bound, &self.fpu) {
            (Some(b), _) => bytes(
                &b.vcpu
                    .fd
                    .get_xsave()
                    .map_err(|e| PlatformError::Kvm(format!("get XSAVE: {e}")))?,
            ),
            (None, Some(x)) => bytes(x),
            (None, None) => bytes(&cpu::initial_xsave()),
        })
    }

    fn set_fpu_state(&mut self, state: &[u8]) -> Result<(), PlatformError> {
        let mut x = kvm_bindings::kvm_xsave::default();
        for (i, chunk) in state.chunks_exact(4).take(x.region.len()).enumerate() {
            x.region[i] = u32::from_le_bytes(chunk.try_into().expect("4 bytes"));
        }
        // KVM validates the image (reserved bits, XSTATE_BV against XCR0) and refuses a bad
        // one with EINVAL rather than loading it: a guest-written frame can't hurt us.
        match &self.bound {
            Some(b) => b
                .vcpu
                .fd
                .set_xsave(&x)
                .map_err(|e| PlatformError::Kvm(format!("set XSAVE: {e}"))),
            None => {
                // Without a vCPU (it went to other threads) the image is checked when the
                // next switch takes one; a bad one then fails that switch, and the thread
                // is killed rather than sent SIGSEGV. Taking a vCPU here instead could wait
                // with the task's state locked.
                self.fpu = Some(x);
                Ok(())
            }
        }
    }
}

impl Drop for KvmContext {
    fn drop(&mut self) {
        self.kicker.retire();
        if let Some(b) = &self.bound {
            tracing::debug!("vCPU {} system calls: {:?}", b.vcpu.index, b.slot.stats);
            if let Some(p) = &self.vm.poller {
                let (sleeps, exit_wakes, widest) = p.stats();
                tracing::debug!(
                    "ring poller so far: slept {sleeps} times, {exit_wakes} woken by an exit, widest window {widest} us"
                );
            }
            if tracing::enabled!(tracing::Level::DEBUG) {
                let stats: Vec<String> = self
                    .debug_stats()
                    .into_iter()
                    .filter(|(_, v)| *v != 0)
                    .map(|(n, v)| format!("{n}={v}"))
                    .collect();
                tracing::debug!("vCPU {} KVM stats: {}", b.vcpu.index, stats.join(" "));
            }
        }
        self.unbind();
    }
}
