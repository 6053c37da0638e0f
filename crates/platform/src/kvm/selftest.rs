//! The start-up probe that decides how `syscall` reaches the sentry on this host.
//!
//! On hardware VMX/SVM, `syscall` in guest ring 3 enters ring 0 at LSTAR. On this host's PVM,
//! it jumps to LSTAR but stays in ring 3. The probe runs one user `syscall` on a throwaway
//! vCPU whose LSTAR is a supervisor-only page of ring-0 code: ring 0 reaches the code and
//! writes the self-test port; ring 3 takes a page fault on the instruction fetch at LSTAR.

use std::sync::Arc;

use super::guest_code;
use super::layout::*;
use super::vcpu::{decode_fault, RawExit, Vcpu};
use super::VmShared;
use crate::{AddressSpace, Fault, PlatformError, Prot, UserRegs};

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

fn run_probe(
    vm: &Arc<VmShared>,
    space: &Arc<dyn AddressSpace>,
    lstar: u64,
) -> Result<SyscallEntry, PlatformError> {
    let mut vcpu = Vcpu::new(vm.clone(), lstar)?;
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
