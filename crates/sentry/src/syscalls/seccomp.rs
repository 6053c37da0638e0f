//! seccomp(2), prctl(PR_SET_SECCOMP) and the check every system call of a thread with a
//! seccomp mode goes through before it is served (the filters themselves: crate::seccomp).

use platform::UserRegs;

use crate::caps::{capable, Cap};
use crate::errno::{Errno, SysResult};
use crate::seccomp::{self, bpf, notify, AttachError, Data, Verdict};
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
    // The listener's descriptor (always close-on-exec) is taken first, and given back if
    // the filter can't be attached.
    let listener = if flags & FLAG_NEW_LISTENER != 0 {
        let l = notify::Listener::new();
        let file = fs::vfs::OpenFile::special(
            None,
            None,
            std::sync::Arc::new(notify::ListenerFile {
                listener: l.clone(),
            }),
            libc::O_RDWR as u32,
        );
        let fd = t.fds.alloc(0, file, true, super::fd::fd_limit(t))?;
        Some((l, fd))
    } else {
        None
    };
    let others = (flags & FLAG_TSYNC != 0).then(|| t.group.seccomp_states());
    let result = t.seccomp.attach(
        prog,
        flags & FLAG_LOG != 0,
        listener.as_ref().map(|(l, _)| l.clone()),
        others.as_deref(),
    );
    if result.is_err() {
        if let Some((_, fd)) = &listener {
            let _ = t.fds.remove(*fd as u64);
        }
    }
    match result {
        Ok(()) => Ok(listener.map_or(0, |(_, fd)| fd as u64)),
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

const NOTIF_RECV: u64 = 0xc050_2100;
const NOTIF_SEND: u64 = 0xc018_2101;
const NOTIF_ID_VALID: u64 = 0x4008_2102;
/// The number NOTIF_ID_VALID had before Linux 5.17 (_IOR by mistake), still accepted.
const NOTIF_ID_VALID_WRONG_DIR: u64 = 0x8008_2102;

const NOTIF_SET_FLAGS: u64 = 0x4008_2104;
const USER_NOTIF_FD_SYNC_WAKE_UP: u64 = 1;

/// SECCOMP_IOCTL_NOTIF_ADDFD for struct seccomp_notif_addfd's first version; an
/// extensible argument: the size is in the request, bytes past the known ones must be 0.
const NOTIF_ADDFD: u64 = 0x4018_2103;
const IOC_SIZE_MASK: u64 = 0x3fff << 16;
const ADDFD_FLAG_SETFD: u32 = 1;
const ADDFD_FLAG_SEND: u32 = 2;

fn addfd(t: &mut TaskState, l: &notify::Listener, request: u64, arg: u64) -> SysResult {
    let size = ((request & IOC_SIZE_MASK) >> 16) as usize;
    if size < 24 {
        return Err(Errno::EINVAL);
    }
    if size > 4096 {
        return Err(Errno::E2BIG);
    }
    let mut buf = vec![0u8; size];
    t.mm.copy_in(arg, &mut buf)?;
    if buf[24..].iter().any(|&b| b != 0) {
        return Err(Errno::E2BIG);
    }
    let word = |i: usize| u32::from_le_bytes(buf[i..i + 4].try_into().expect("4 bytes"));
    let id = u64::from_le_bytes(buf[0..8].try_into().expect("8 bytes"));
    let (flags, srcfd, newfd, newfd_flags) = (word(8), word(12), word(16), word(20));
    if newfd_flags & !(libc::O_CLOEXEC as u32) != 0
        || flags & !(ADDFD_FLAG_SETFD | ADDFD_FLAG_SEND) != 0
        || (newfd != 0 && flags & ADDFD_FLAG_SETFD == 0)
    {
        return Err(Errno::EINVAL);
    }
    let file = t.fds.get(srcfd as u64)?;
    let setfd = (flags & ADDFD_FLAG_SETFD != 0).then_some(newfd as i32);
    if setfd.is_some_and(|fd| fd < 0) {
        return Err(Errno::EBADF);
    }
    let cloexec = newfd_flags & libc::O_CLOEXEC as u32 != 0;
    l.addfd(id, file, setfd, cloexec, flags & ADDFD_FLAG_SEND != 0)
        .map(|fd| fd as u64)
        .map_err(Errno)
}

/// The ioctls of a listener descriptor, or None when `file` is no listener.
pub fn listener_ioctl(
    t: &mut TaskState,
    file: &fs::vfs::OpenFile,
    request: u64,
    arg: u64,
) -> Option<SysResult> {
    let l = file
        .special_desc()
        .and_then(|d| d.as_any())
        .and_then(|a| a.downcast_ref::<notify::ListenerFile>())?
        .listener
        .clone();
    Some(match request {
        NOTIF_RECV => (|| {
            // The structure must come zeroed (room for future extensions).
            let mut buf = [0u8; notify::NOTIF_SIZE];
            t.mm.copy_in(arg, &mut buf)?;
            if buf.iter().any(|&b| b != 0) {
                return Err(Errno::EINVAL);
            }
            let note = l.receive().map_err(Errno)?;
            if let Err(e) = t.mm.copy_out(arg, &note) {
                l.unreceive(u64::from_le_bytes(note[0..8].try_into().expect("8 bytes")));
                return Err(e);
            }
            Ok(0)
        })(),
        NOTIF_SEND => (|| {
            let mut resp = [0u8; notify::RESP_SIZE];
            t.mm.copy_in(arg, &mut resp)?;
            l.send(&resp).map_err(Errno)?;
            Ok(0)
        })(),
        NOTIF_ID_VALID | NOTIF_ID_VALID_WRONG_DIR => (|| {
            let id = t.mm.read_u64(arg)?;
            if l.id_valid(id) {
                Ok(0)
            } else {
                Err(Errno::ENOENT)
            }
        })(),
        r if r & !IOC_SIZE_MASK == NOTIF_ADDFD & !IOC_SIZE_MASK => addfd(t, &l, r, arg),
        // SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP is the only flag: a scheduling hint (wake
        // the waiting thread on the supervisor's CPU), accepted with nothing to do.
        NOTIF_SET_FLAGS => {
            if arg & !USER_NOTIF_FD_SYNC_WAKE_UP != 0 {
                Err(Errno::EINVAL)
            } else {
                Ok(0)
            }
        }
        _ => Err(Errno::EINVAL),
    })
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
        Verdict::Notify(listener) => {
            // The wait for the supervisor is interruptible, as any sleep in a call.
            let serving = super::poll::ServingTask::enter(t);
            let nofile = super::fd::fd_limit(t);
            let reply = listener.notify(t.tid, data, &t.fds, nofile);
            drop(serving);
            match reply {
                Ok(notify::Reply::Continue) => true,
                Ok(notify::Reply::Return(v)) => {
                    regs.rax = v as u64;
                    false
                }
                Err(e) => {
                    // Delivery decides between restarting the call and EINTR.
                    regs.rax = (-(e as i64)) as u64;
                    if fs::waiter::is_restart(e) {
                        t.signals.interrupted_call = Some(nr as u32 as u64);
                    }
                    false
                }
            }
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
