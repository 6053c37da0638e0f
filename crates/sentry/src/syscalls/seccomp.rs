//! seccomp(2), prctl(PR_SET_SECCOMP) and the check every system call of a thread with a
//! seccomp mode goes through before it is served (the filters themselves: crate::seccomp).

use platform::UserRegs;

use crate::caps::{capable, Cap};
use crate::errno::{Errno, SysResult};
use crate::seccomp::{self, bpf, AttachError, Data, Verdict};
use crate::signal_frame::SigInfo;
use crate::task::{ExitStatus, TaskState};

const SECCOMP_SET_MODE_STRICT: u64 = 0;
const SECCOMP_SET_MODE_FILTER: u64 = 1;
const SECCOMP_GET_ACTION_AVAIL: u64 = 2;
const SECCOMP_GET_NOTIF_SIZES: u64 = 3;

const FLAG_TSYNC: u64 = 1;
const FLAG_LOG: u64 = 2;
const FLAG_SPEC_ALLOW: u64 = 4;
const FLAG_NEW_LISTENER: u64 = 8;
const FLAG_TSYNC_ESRCH: u64 = 16;
const FLAG_WAIT_KILLABLE_RECV: u64 = 32;
const FLAG_MASK: u64 = FLAG_TSYNC
    | FLAG_LOG
    | FLAG_SPEC_ALLOW
    | FLAG_NEW_LISTENER
    | FLAG_TSYNC_ESRCH
    | FLAG_WAIT_KILLABLE_RECV;

/// si_code of a seccomp SIGSYS.
const SYS_SECCOMP: i32 = 1;

pub fn seccomp(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    do_seccomp(t, a[0] as u32 as u64, a[1] as u32 as u64, a[2])
}

fn do_seccomp(t: &mut TaskState, op: u64, flags: u64, uargs: u64) -> SysResult {
    match op {
        SECCOMP_SET_MODE_STRICT => {
            if flags != 0 || uargs != 0 {
                return Err(Errno::EINVAL);
            }
            t.seccomp.set_strict()?;
            Ok(0)
        }
        SECCOMP_SET_MODE_FILTER => set_mode_filter(t, flags, uargs),
        SECCOMP_GET_ACTION_AVAIL => {
            if flags != 0 {
                return Err(Errno::EINVAL);
            }
            let action = t.mm.read_u32(uargs)?;
            if seccomp::action_available(action) {
                Ok(0)
            } else {
                Err(Errno(libc::EOPNOTSUPP))
            }
        }
        SECCOMP_GET_NOTIF_SIZES => {
            if flags != 0 {
                return Err(Errno::EINVAL);
            }
            // struct seccomp_notif, seccomp_notif_resp, seccomp_data.
            let mut sizes = Vec::with_capacity(6);
            for s in [80u16, 24, 64] {
                sizes.extend_from_slice(&s.to_le_bytes());
            }
            t.mm.copy_out(uargs, &sizes)?;
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

/// prctl(PR_SET_SECCOMP, mode, filter): seccomp(2) without flags (strict mode ignores the
/// filter argument).
pub fn prctl_set_seccomp(t: &mut TaskState, mode: u64, filter: u64) -> SysResult {
    match mode {
        m if m == seccomp::MODE_STRICT as u64 => do_seccomp(t, SECCOMP_SET_MODE_STRICT, 0, 0),
        m if m == seccomp::MODE_FILTER as u64 => do_seccomp(t, SECCOMP_SET_MODE_FILTER, 0, filter),
        _ => Err(Errno::EINVAL),
    }
}

/// seccomp_set_mode_filter: flags, the program (struct sock_fprog), the no_new_privs or
/// CAP_SYS_ADMIN rule, Linux's checks, then the filter goes on top of the thread's (and,
/// with TSYNC, of every thread of the process).
fn set_mode_filter(t: &mut TaskState, flags: u64, uargs: u64) -> SysResult {
    if flags & !FLAG_MASK != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & FLAG_TSYNC != 0 && flags & FLAG_NEW_LISTENER != 0 && flags & FLAG_TSYNC_ESRCH == 0 {
        return Err(Errno::EINVAL);
    }
    if flags & FLAG_WAIT_KILLABLE_RECV != 0 && flags & FLAG_NEW_LISTENER == 0 {
        return Err(Errno::EINVAL);
    }
    // struct sock_fprog { unsigned short len; struct sock_filter *filter; }
    let mut fprog = [0u8; 16];
    t.mm.copy_in(uargs, &mut fprog)?;
    let len = u16::from_le_bytes([fprog[0], fprog[1]]) as usize;
    let addr = u64::from_le_bytes(fprog[8..16].try_into().expect("8 bytes"));
    if len == 0 || len > bpf::MAX_INSNS {
        return Err(Errno::EINVAL);
    }
    if !t.seccomp.no_new_privs() && !capable(&t.creds, Cap::SysAdmin) {
        return Err(Errno::EACCES);
    }
    let mut raw = vec![0u8; len * bpf::Insn::SIZE];
    t.mm.copy_in(addr, &mut raw)?;
    let insns: Vec<bpf::Insn> = raw
        .chunks_exact(bpf::Insn::SIZE)
        .map(|c| bpf::Insn::from_bytes(c.try_into().expect("8 bytes")))
        .collect();
    let prog = bpf::check(&insns).map_err(|e| {
        tracing::debug!("seccomp filter refused: {e}");
        Errno::EINVAL
    })?;
    if flags & FLAG_NEW_LISTENER != 0 {
        // No user notification listeners yet (see crate::seccomp).
        return Err(Errno::EINVAL);
    }
    let others = (flags & FLAG_TSYNC != 0).then(|| t.group.seccomp_states());
    match t
        .seccomp
        .attach(prog, flags & FLAG_LOG != 0, others.as_deref())
    {
        Ok(()) => Ok(0),
        Err(AttachError::Errno(e)) => Err(e),
        Err(AttachError::Thread(tid)) => {
            if flags & FLAG_TSYNC_ESRCH != 0 {
                Err(Errno::ESRCH)
            } else {
                Ok(tid as u64)
            }
        }
    }
}

/// Runs the thread's seccomp mode on the call in `regs`. Returns true when the call must
/// be served, false when the verdict settled it (RAX holds the result, or a signal or the
/// thread's end is on its way). On the ring poller (`own_thread` false) a verdict that
/// needs the task's own thread (a signal, an end) is declined with WOULD_SLEEP, so that
/// the call is served again from the start there.
pub fn check(t: &mut TaskState, regs: &mut UserRegs, own_thread: bool) -> bool {
    let nr = regs.rax as u32 as i32;
    let data = Data {
        nr,
        arch: seccomp::AUDIT_ARCH_X86_64,
        ip: regs.rip,
        args: regs.syscall_args(),
    };
    match t.seccomp.evaluate(&data) {
        Verdict::Allow => true,
        Verdict::Return(v) => {
            regs.rax = v;
            false
        }
        _ if !own_thread => {
            regs.rax = (-(fs::waiter::WOULD_SLEEP as i64)) as u64;
            false
        }
        Verdict::Trap(errno) => {
            // RAX keeps the call number (Linux's syscall_rollback) for the handler.
            force_sigsys(
                t,
                SigInfo {
                    signo: libc::SIGSYS,
                    code: SYS_SECCOMP,
                    errno: errno as i32,
                    addr: regs.rip,
                    sys: Some((nr, seccomp::AUDIT_ARCH_X86_64)),
                    ..Default::default()
                },
            );
            false
        }
        Verdict::KillThread(sig) if t.group.thread_count() > 1 => {
            t.exit = Some(ExitStatus::Signal(crate::signal::Signo(sig)));
            t.thread_exit = true;
            false
        }
        Verdict::KillThread(sig) => {
            kill_process(t, sig);
            false
        }
        Verdict::KillProcess => {
            kill_process(t, libc::SIGSYS);
            false
        }
    }
}

fn kill_process(t: &mut TaskState, sig: i32) {
    let status = ExitStatus::Signal(crate::signal::Signo(sig));
    t.group.exit(status);
    t.exit = Some(status);
}

/// Linux's force_sig_seccomp: the handler runs if there is one and SIGSYS isn't blocked;
/// otherwise (blocked, ignored or default) the process dies of SIGSYS.
fn force_sigsys(t: &mut TaskState, info: SigInfo) {
    let action = t.group.handlers().get(libc::SIGSYS);
    let blocked = t.signals.mask() & crate::signal::bit(libc::SIGSYS) != 0;
    let handled = action.handler != libc::SIG_DFL as u64 && action.handler != libc::SIG_IGN as u64;
    if !handled || blocked {
        kill_process(t, libc::SIGSYS);
        return;
    }
    t.signals.thread.queue(info);
}
