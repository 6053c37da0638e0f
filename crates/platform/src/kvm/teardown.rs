//! The VM's destruction, left to the kernel after the sentry has gone.
//!
//! Destroying a VM costs about a millisecond of host CPU here (`kvm_destroy_vm`: the memory
//! slot's rmap and page-track arrays freed, the vCPUs destroyed with a static key flipped
//! back, KVM's debugfs directory removed, the shadow pages flushed; and the memory file's
//! pages freed), and it ran when the sentry closed its last KVM descriptor, at its end:
//! before `runsc do`'s caller saw the program's exit (docs/architecture.md, "Start-up").
//!
//! Ending the waiting parent early instead would leave the sentry to the host's init to reap,
//! which on some hosts never does (zombies), and any helper process that outlives its parent
//! has the same problem. So no process does the work: the VM's descriptor and the memory
//! file are also registered in an io_uring instance (as fixed files) that does nothing
//! else. When the sentry exits, its own references go cheaply (they are not the last), and
//! the ring's release hands its files to a kernel worker (`io_ring_exit_work`), whose last
//! `fput` runs the VM's and the memory file's release there (kernel threads defer it to
//! `delayed_fput`). KVM supports a VM released from another context (a descriptor passed to
//! another process: `kvm_arch_destroy_vm` checks `current->mm`). Where io_uring is
//! unavailable (`kernel.io_uring_disabled`, a seccomp profile), the teardown stays where it
//! was.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// `struct io_uring_params`: 120 bytes, zero for a plain ring.
#[repr(C, align(8))]
struct IoUringParams([u8; 120]);

const IORING_REGISTER_FILES: libc::c_uint = 2;

/// Registers `files` in a new io_uring instance, whose descriptor is returned: while it is
/// open, and until a kernel worker has released the ring after it is closed, the files stay
/// open. See the module's docs.
pub(crate) fn hand_to_kernel(files: &[BorrowedFd<'_>]) -> std::io::Result<OwnedFd> {
    let mut params = IoUringParams([0; 120]);
    // SAFETY: io_uring_setup with one entry and a zeroed parameter block of the kernel's
    // size, which it fills in; the ring's memory is never mapped (no I/O is submitted).
    let fd = unsafe {
        libc::syscall(
            libc::SYS_io_uring_setup,
            1 as libc::c_uint,
            &mut params as *mut IoUringParams,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a descriptor io_uring_setup just returned, owned from here.
    let ring = unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) };
    let raw: Vec<libc::c_int> = files.iter().map(|f| f.as_raw_fd()).collect();
    // SAFETY: IORING_REGISTER_FILES with an array of `raw.len()` open descriptors, which the
    // kernel only reads (it takes its own references to the files).
    let r = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring.as_raw_fd(),
            IORING_REGISTER_FILES,
            raw.as_ptr(),
            raw.len() as libc::c_uint,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(ring)
}
