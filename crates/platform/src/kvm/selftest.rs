//! The start-up probe that decides how `syscall` reaches the sentry on this host.
//!
//! On hardware VMX/SVM, `syscall` in guest ring 3 enters ring 0 at LSTAR. On this host's PVM,
//! it jumps to LSTAR but stays in ring 3. The probe runs one user `syscall` on a throwaway
//! vCPU whose LSTAR is a supervisor-only page of ring-0 code: ring 0 reaches the code and
//! writes the self-test port; ring 3 takes a page fault on the instruction fetch at LSTAR.

use std::sync::Arc;

use super::guest_code;
use super::layout::*;
use super::ring::{SharedPage, KIND_EXCEPTION, STATE_EXIT};
use super::vcpu::{decode_fault, RawExit, Vcpu};
use super::VmShared;
use crate::{AddressSpace, Fault, PlatformError, Prot, UserRegs, PAGE_SIZE};

/// Where a guest `syscall` lands, hence which trampoline LSTAR points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyscallEntry {
    /// PVM: user mode at LSTAR; the user-mode trampoline page.
    UserTrampoline,
    /// Hardware virtualization: ring 0 at LSTAR; the ring-0 trampoline with `sysretq`.
    Ring0,
}

const PROBE_CODE_VA: u64 = 0x40_0000;

pub(super) fn probe(vm: &Arc<VmShared>) -> Result<SyscallEntry, PlatformError> {
    let space: Arc<dyn AddressSpace> =
        Arc::new(super::address_space::KvmAddressSpace::new(vm.clone())?);
    let code = vm.mem.alloc_page()?;
    vm.mem.write(code, guest_code::selftest_user());
    space.map(
        PROBE_CODE_VA,
        code,
        PAGE_SIZE,
        Prot {
            read: true,
            write: false,
            exec: true,
        },
    )?;
    let lstar = KERNEL_CODE_VA + guest_code::selftest_ring0_offset();
    let result = run_probe(vm, &space, lstar);
    space.unmap(PROBE_CODE_VA, PAGE_SIZE);
    vm.mem.free_pages(&[code]);
    result
}

/// System calls the direct-switch self-test makes.
pub const DS_PROBE_CALLS: u64 = 32;

/// Runs [`DS_PROBE_CALLS`] user `syscall`s under PVM's direct switch on a throwaway vCPU, then
/// a #UD that must reach the exception stub and resume past it, then as many calls again.
/// Returns the exits from the resume to the end (KVM's statistics), or why the direct switch
/// is unusable.
pub(super) fn probe_direct_switch(vm: &Arc<VmShared>) -> Result<u64, String> {
    let space: Arc<dyn AddressSpace> = Arc::new(
        super::address_space::KvmAddressSpace::new(vm.clone()).map_err(|e| e.to_string())?,
    );
    let (user, lstar_offset) = guest_code::dstest_user();
    let code = vm.mem.alloc_page().map_err(|e| e.to_string())?;
    vm.mem.write(code, user);
    let prot = Prot {
        read: true,
        write: false,
        exec: true,
    };
    let result = match space.map(PROBE_CODE_VA, code, PAGE_SIZE, prot) {
        Ok(()) => run_ds_probe(vm, &space, PROBE_CODE_VA + lstar_offset),
        Err(e) => Err(e.to_string()),
    };
    space.unmap(PROBE_CODE_VA, PAGE_SIZE);
    vm.mem.free_pages(&[code]);
    result
}

fn exits(vcpu: &Vcpu) -> Result<u64, String> {
    vcpu.stats()
        .map_err(|e| format!("KVM statistics: {e}"))?
        .into_iter()
        .find(|(name, _)| name == "exits")
        .map(|(_, v)| v)
        .ok_or_else(|| "KVM statistics lack an exit count".to_string())
}

fn run_ds_probe(
    vm: &Arc<VmShared>,
    space: &Arc<dyn AddressSpace>,
    lstar: u64,
) -> Result<u64, String> {
    let mut vcpu = Vcpu::new(vm.clone(), lstar, true).map_err(|e| e.to_string())?;
    let outcome = (|| {
        vcpu.activate(space).map_err(|e| e.to_string())?;
        vcpu.enter_user(&UserRegs {
            rip: PROBE_CODE_VA,
            rflags: 0x202,
            r12: DS_PROBE_CALLS,
            r13: DS_PROBE_CALLS,
            ..Default::default()
        });
        // Under the direct switch the exception stub reports through the shared page; with
        // no poller it rings the doorbell.
        let page = SharedPage::new(vm.mem.clone(), vcpu.shared_page);
        match vcpu.run() {
            RawExit::Mmio(addr) if addr & !(PAGE_SIZE - 1) == vm.doorbell_gpa => {}
            other => return Err(format!("the system calls ended with {other:?}")),
        }
        if !page.claim(STATE_EXIT) || page.kind() != KIND_EXCEPTION {
            return Err("the doorbell rang without an exception request".into());
        }
        let (vector, _, _) = page.read_exception();
        if vector != 6 {
            return Err(format!("expected #UD, got vector {vector}"));
        }
        let mut regs = UserRegs::default();
        page.read_regs(&mut regs);
        if regs.r12 != 0 {
            return Err(format!("{} system calls did not return", regs.r12));
        }
        regs.rip += 2;
        page.answer(&regs);
        let before = exits(&vcpu)?;
        match vcpu.run() {
            RawExit::Mmio(addr) if addr & !(PAGE_SIZE - 1) == vm.doorbell_gpa => {}
            other => return Err(format!("resuming after #UD gave {other:?}")),
        }
        let taken = exits(&vcpu)? - before;
        // The return from the exception and the doorbell exit; the system calls take none
        // (without the direct switch each takes one).
        if taken > DS_PROBE_CALLS / 4 {
            return Err(format!("{DS_PROBE_CALLS} system calls took {taken} exits"));
        }
        Ok(taken)
    })();
    if outcome.is_err() {
        vcpu.quarantine();
    }
    outcome
}

fn run_probe(
    vm: &Arc<VmShared>,
    space: &Arc<dyn AddressSpace>,
    lstar: u64,
) -> Result<SyscallEntry, PlatformError> {
    let mut vcpu = Vcpu::new(vm.clone(), lstar, false)?;
    vcpu.activate(space)?;
    vcpu.enter_user(&UserRegs {
        rip: PROBE_CODE_VA,
        rsp: 0,
        rflags: 0x202,
        ..Default::default()
    });
    match vcpu.run() {
        RawExit::Io(SELFTEST_PORT) => Ok(SyscallEntry::Ring0),
        RawExit::Io(EXCEPTION_PORT) => {
            let frame = vcpu.read_frame()?;
            match decode_fault(&frame, vcpu.cr2()) {
                Fault::Page { addr, access } if addr == lstar && access.exec => {
                    Ok(SyscallEntry::UserTrampoline)
                }
                other => Err(PlatformError::GuestKernel(format!(
                    "self-test: syscall in user mode gave {other:?} at {:#x}",
                    frame.rip
                ))),
            }
        }
        other => Err(PlatformError::GuestKernel(format!(
            "self-test: syscall in user mode gave {other:?}"
        ))),
    }
}
