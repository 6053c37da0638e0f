//! The KVM requests the platform makes on its descriptors, for the sentry's seccomp filter
//! (boot::seccomp allows `ioctl` only with these and the terminal and socket requests of
//! the other crates). A request missing here stops the sandbox at its first use with a line
//! naming `ioctl` and the request, so the list is kept next to the code that makes them.

use std::mem::size_of;

use kvm_bindings::{
    kvm_cpuid2, kvm_msrs, kvm_regs, kvm_sregs, kvm_userspace_memory_region, kvm_xcrs, kvm_xsave,
};

const KVMIO: u64 = 0xAE;

/// `_IOC(dir, KVMIO, nr, size)` as linux/ioctl.h encodes it.
const fn ioc(dir: u64, nr: u64, size: usize) -> u64 {
    (dir << 30) | ((size as u64) << 16) | (KVMIO << 8) | nr
}
const fn io(nr: u64) -> u64 {
    ioc(0, nr, 0)
}
const fn iow(nr: u64, size: usize) -> u64 {
    ioc(1, nr, size)
}
const fn ior(nr: u64, size: usize) -> u64 {
    ioc(2, nr, size)
}
const fn iowr(nr: u64, size: usize) -> u64 {
    ioc(3, nr, size)
}

/// Every KVM request the platform makes after the sandbox starts, with its use.
pub const KVM_IOCTLS: &[(u64, &str)] = &[
    (io(0x03), "KVM_CHECK_EXTENSION"),
    (io(0x04), "KVM_GET_VCPU_MMAP_SIZE"),
    (
        iowr(0x05, size_of::<kvm_cpuid2>()),
        "KVM_GET_SUPPORTED_CPUID",
    ),
    (
        io(0x41),
        "KVM_CREATE_VCPU: vCPUs are made as threads need them",
    ),
    (
        iow(0x46, size_of::<kvm_userspace_memory_region>()),
        "KVM_SET_USER_MEMORY_REGION: memory slots change as the sandbox grows",
    ),
    (io(0x80), "KVM_RUN"),
    (ior(0x81, size_of::<kvm_regs>()), "KVM_GET_REGS"),
    (iow(0x82, size_of::<kvm_regs>()), "KVM_SET_REGS"),
    (ior(0x83, size_of::<kvm_sregs>()), "KVM_GET_SREGS"),
    (iow(0x84, size_of::<kvm_sregs>()), "KVM_SET_SREGS"),
    (iowr(0x88, size_of::<kvm_msrs>()), "KVM_GET_MSRS"),
    (iow(0x89, size_of::<kvm_msrs>()), "KVM_SET_MSRS"),
    (iow(0x90, size_of::<kvm_cpuid2>()), "KVM_SET_CPUID2"),
    (io(0xa3), "KVM_GET_TSC_KHZ"),
    (
        ior(0xa4, size_of::<kvm_xsave>()),
        "KVM_GET_XSAVE: a pooled vCPU's FPU state",
    ),
    (iow(0xa5, size_of::<kvm_xsave>()), "KVM_SET_XSAVE"),
    (ior(0xa6, size_of::<kvm_xcrs>()), "KVM_GET_XCRS"),
    (iow(0xa7, size_of::<kvm_xcrs>()), "KVM_SET_XCRS"),
    (
        io(0xce),
        "KVM_GET_STATS_FD: per-vCPU statistics (debug logs, bench)",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &str) -> u64 {
        KVM_IOCTLS
            .iter()
            .find(|(_, n)| n.split(':').next() == Some(name))
            .map(|&(r, _)| r)
            .unwrap_or_else(|| panic!("{name} not listed"))
    }

    /// The numbers linux/kvm.h gives (as printed by a C program including it).
    #[test]
    fn requests_match_the_kernel_headers() {
        assert_eq!(request("KVM_RUN"), 0xAE80);
        assert_eq!(request("KVM_CREATE_VCPU"), 0xAE41);
        assert_eq!(request("KVM_SET_USER_MEMORY_REGION"), 0x4020_AE46);
        assert_eq!(request("KVM_SET_REGS"), 0x4090_AE82);
        assert_eq!(request("KVM_GET_SREGS"), 0x8138_AE83);
        assert_eq!(request("KVM_GET_MSRS"), 0xC008_AE88);
        assert_eq!(request("KVM_SET_CPUID2"), 0x4008_AE90);
        assert_eq!(request("KVM_GET_XSAVE"), 0x9000_AEA4);
        assert_eq!(request("KVM_SET_XCRS"), 0x4188_AEA7);
        assert_eq!(request("KVM_GET_STATS_FD"), 0xAECE);
    }
}
