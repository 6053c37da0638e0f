//! Where io_uring is refused (a seccomp profile, `kernel.io_uring_disabled`), `runsc do`
//! destroys the VM itself at exit instead of leaving it to a kernel worker
//! (`platform::kvm::teardown`), and the program's status is the same.

use std::os::unix::process::CommandExt;
use std::process::Command;

use conformance::{build, runsc_path, skip_without_kvm, Libc};

/// Makes the calling (single-threaded, just forked) process refuse io_uring_setup with
/// EPERM from here on, as Docker's default seccomp profile does.
fn refuse_io_uring() -> std::io::Result<()> {
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const RET_ERRNO: u32 = 0x0005_0000; // SECCOMP_RET_ERRNO
    const RET_ALLOW: u32 = 0x7fff_0000; // SECCOMP_RET_ALLOW
    let op = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    // The system call number is the first word of struct seccomp_data (x86-64 only here).
    let filter = [
        op(LD_W_ABS, 0, 0, 0),
        op(JEQ_K, 0, 1, libc::SYS_io_uring_setup as u32),
        op(RET_K, 0, 0, RET_ERRNO | libc::EPERM as u32),
        op(RET_K, 0, 0, RET_ALLOW),
    ];
    let prog = libc::sock_fprog {
        len: filter.len() as u16,
        filter: filter.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prctl with integer arguments, then with a filter program that outlives the
    // call (the kernel copies it).
    let r = unsafe {
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
        libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &prog as *const libc::sock_fprog,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[test]
fn without_io_uring_the_sentry_destroys_its_vm_itself() {
    if skip_without_kvm("without_io_uring_the_sentry_destroys_its_vm_itself") {
        return;
    }
    let exit_code = build("exit_code", Libc::Glibc);
    let mut cmd = Command::new(runsc_path());
    cmd.args(["do", "--debug", "--"]).arg(&exit_code).arg("7");
    // SAFETY: the closure runs in the forked child before exec and only makes system
    // calls (prctl), which are async-signal-safe.
    unsafe { cmd.pre_exec(refuse_io_uring) };
    let out = cmd.output().expect("runsc do");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{err}");
    assert!(
        err.contains("VM teardown at exit, in this process (io_uring: Operation not permitted"),
        "{err}"
    );
    // Statuses as usual, for a few in a row.
    for code in [0, 1, 255] {
        let mut cmd = Command::new(runsc_path());
        cmd.args(["do", "--"]).arg(&exit_code).arg(code.to_string());
        // SAFETY: as above.
        unsafe { cmd.pre_exec(refuse_io_uring) };
        assert_eq!(cmd.status().expect("runsc do").code(), Some(code));
    }
}
