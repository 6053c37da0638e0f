//! The ptrace system call: the tracer's requests (Linux's ptrace_request and
//! arch_ptrace).

use std::sync::Arc;

use platform::UserRegs;

use super::regs::{self, FPREGS_SIZE, USER_REGS_SIZE};
use super::{Mode, Resume, StopKind, Tracee};
use crate::errno::{Errno, SysResult};
use crate::process::ThreadGroup;
use crate::signal_frame::SigInfo;
use crate::task::TaskState;

const PTRACE_TRACEME: i64 = 0;
const PTRACE_PEEKTEXT: i64 = 1;
const PTRACE_PEEKDATA: i64 = 2;
const PTRACE_PEEKUSR: i64 = 3;
const PTRACE_POKETEXT: i64 = 4;
const PTRACE_POKEDATA: i64 = 5;
const PTRACE_POKEUSR: i64 = 6;
const PTRACE_CONT: i64 = 7;
const PTRACE_KILL: i64 = 8;
const PTRACE_SINGLESTEP: i64 = 9;
const PTRACE_GETREGS: i64 = 12;
const PTRACE_SETREGS: i64 = 13;
const PTRACE_GETFPREGS: i64 = 14;
const PTRACE_SETFPREGS: i64 = 15;
const PTRACE_ATTACH: i64 = 16;
const PTRACE_DETACH: i64 = 17;
const PTRACE_SYSCALL: i64 = 24;
const PTRACE_SETOPTIONS: i64 = 0x4200;
const PTRACE_GETEVENTMSG: i64 = 0x4201;
const PTRACE_GETSIGINFO: i64 = 0x4202;
const PTRACE_SETSIGINFO: i64 = 0x4203;
const PTRACE_GETREGSET: i64 = 0x4204;
const PTRACE_SETREGSET: i64 = 0x4205;
const PTRACE_SEIZE: i64 = 0x4206;
const PTRACE_INTERRUPT: i64 = 0x4207;
const PTRACE_LISTEN: i64 = 0x4208;
const PTRACE_GETSIGMASK: i64 = 0x420a;
const PTRACE_SETSIGMASK: i64 = 0x420b;
const PTRACE_GET_SYSCALL_INFO: i64 = 0x420e;

const NT_PRSTATUS: u64 = 1;
const NT_PRFPREG: u64 = 2;
const NT_X86_XSTATE: u64 = 0x202;

const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;

/// What the table says of ptrace.
pub const SUPPORT: &str = "TRACEME, ATTACH, SEIZE, INTERRUPT, LISTEN, DETACH, KILL; CONT and SYSCALL with signal injection; PEEK/POKE TEXT, DATA and USER; GETREGS, SETREGS, GETFPREGS, SETFPREGS, GETREGSET/SETREGSET (NT_PRSTATUS, NT_PRFPREG, NT_X86_XSTATE); GETSIGINFO, SETSIGINFO, GETSIGMASK, SETSIGMASK, GETEVENTMSG, GET_SYSCALL_INFO; every option but TRACESECCOMP (accepted; seccomp's RET_TRACE still gives ENOSYS) and TRACEVFORKDONE (no stop). SINGLESTEP (the trap flag; a `syscall` instruction is stepped over whole, its trap reported after the call); SYSEMU and PEEKSIGINFO are EIO; hardware breakpoints (DR7) EIO. Attach needs the target's uids and gids, and its user namespace with a superset of its permitted capabilities (else CAP_SYS_PTRACE over that namespace), as Linux's cap_ptrace_access_check, and a target that is not dumpable needs CAP_SYS_PTRACE; Yama scope 1 (descendants, or PR_SET_PTRACER) is enforced. Links are per thread; wait reports traced threads without __WALL too";

pub fn ptrace(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (req, pid, addr, data) = (a[0] as i64, a[1] as i32, a[2], a[3]);
    tracing::debug!("ptrace({req:#x}, {pid}, {addr:#x}, {data:#x})");
    if req == PTRACE_TRACEME {
        return traceme(t);
    }
    // The tracee's id is in the caller's pid namespace.
    let pid = crate::namespaces::pid_global(&t.process, pid).ok_or(Errno::ESRCH)?;
    match req {
        PTRACE_ATTACH | PTRACE_SEIZE => return attach(t, pid, req == PTRACE_SEIZE, addr, data),
        _ => {}
    }
    let tr = t
        .kernel
        .ptrace
        .get(pid)
        .filter(|tr| tr.tracer() == t.pid)
        .ok_or(Errno::ESRCH)?;
    match req {
        PTRACE_KILL => {
            kill(&tr);
            return Ok(0);
        }
        PTRACE_INTERRUPT => {
            if !tr.lock().seized {
                return Err(Errno::EIO);
            }
            tr.lock().interrupt = true;
            tr.group.interrupt_thread(tr.tid);
            // Out of a call it sleeps in, too (which restarts after the stop).
            if let Some(s) = tr.group.thread_signals(tr.tid) {
                s.waiter.interrupt();
            }
            return Ok(0);
        }
        _ => {}
    }
    // Everything else needs the tracee in a ptrace-stop.
    let mut i = tr.lock();
    let Some(kind) = i.stop else {
        return Err(Errno::ESRCH);
    };
    match req {
        PTRACE_PEEKTEXT | PTRACE_PEEKDATA => {
            let mm = i.mm.clone().ok_or(Errno::ESRCH)?;
            drop(i);
            let mut word = [0u8; 8];
            mm.lock().copy_in(addr, &mut word).map_err(|_| Errno::EIO)?;
            t.mm.copy_out(data, &word)?;
            Ok(0)
        }
        PTRACE_POKETEXT | PTRACE_POKEDATA => {
            let mm = i.mm.clone().ok_or(Errno::ESRCH)?;
            drop(i);
            // As FOLL_FORCE: text is written through its protection (copy-on-write).
            mm.lock()
                .write_force(addr, &data.to_le_bytes())
                .map_err(|_| Errno::EIO)?;
            Ok(0)
        }
        PTRACE_PEEKUSR => {
            let v = regs::peek_user(&i, addr)?;
            drop(i);
            t.mm.copy_out(data, &v.to_le_bytes())?;
            Ok(0)
        }
        PTRACE_POKEUSR => regs::poke_user(&mut i, addr, data).map(|_| 0),
        PTRACE_GETREGS => {
            let b = regs_bytes(&i);
            drop(i);
            t.mm.copy_out(data, &b)?;
            Ok(0)
        }
        PTRACE_SETREGS => {
            let mut b = [0u8; USER_REGS_SIZE];
            t.mm.copy_in(data, &mut b)?;
            regs::set_all(&mut i, &words(&b)).map(|_| 0)
        }
        PTRACE_GETFPREGS => {
            let mut b = i.fpu.clone();
            drop(i);
            b.resize(FPREGS_SIZE, 0);
            t.mm.copy_out(data, &b[..FPREGS_SIZE])?;
            Ok(0)
        }
        PTRACE_SETFPREGS => {
            let mut b = [0u8; FPREGS_SIZE];
            t.mm.copy_in(data, &mut b)?;
            regs::set_fpregs(&mut i, &b).map(|_| 0)
        }
        PTRACE_GETREGSET | PTRACE_SETREGSET => {
            let mut iov = [0u8; 16];
            t.mm.copy_in(data, &mut iov)?;
            let base = u64::from_le_bytes(iov[0..8].try_into().expect("8 bytes"));
            let len = u64::from_le_bytes(iov[8..16].try_into().expect("8 bytes"));
            let full = match addr {
                NT_PRSTATUS => regs_bytes(&i).to_vec(),
                NT_PRFPREG => {
                    let mut b = i.fpu.clone();
                    b.resize(FPREGS_SIZE, 0);
                    b.truncate(FPREGS_SIZE);
                    b
                }
                NT_X86_XSTATE => regs::xstate_image(&i.fpu),
                _ => return Err(Errno::EINVAL),
            };
            let n = (len as usize).min(full.len());
            if req == PTRACE_GETREGSET {
                drop(i);
                t.mm.copy_out(base, &full[..n])?;
            } else {
                let mut b = vec![0u8; n];
                t.mm.copy_in(base, &mut b)?;
                match addr {
                    NT_PRSTATUS => {
                        let mut merged = full.clone();
                        merged[..n].copy_from_slice(&b);
                        regs::set_all(&mut i, &words(&merged))?;
                    }
                    NT_PRFPREG => regs::set_fpregs(&mut i, &b)?,
                    _ => regs::set_xstate(&mut i, &b)?,
                }
                drop(i);
            }
            t.mm.copy_out(data + 8, &(n as u64).to_le_bytes())?;
            Ok(0)
        }
        PTRACE_GETSIGINFO => {
            let b = i.siginfo;
            drop(i);
            t.mm.copy_out(data, &b)?;
            Ok(0)
        }
        PTRACE_SETSIGINFO => {
            let mut b = [0u8; 128];
            drop(i);
            t.mm.copy_in(data, &mut b)?;
            let mut i = tr.lock();
            i.siginfo = b;
            i.siginfo_written = true;
            Ok(0)
        }
        PTRACE_GETEVENTMSG => {
            let m = i.event_msg;
            drop(i);
            t.mm.copy_out(data, &m.to_le_bytes())?;
            Ok(0)
        }
        PTRACE_SETOPTIONS => {
            if data as u32 as u64 != data || data as u32 & !super::PTRACE_O_MASK != 0 {
                return Err(Errno::EINVAL);
            }
            i.options = data as u32;
            Ok(0)
        }
        PTRACE_GETSIGMASK | PTRACE_SETSIGMASK => {
            if addr != 8 {
                return Err(Errno::EINVAL);
            }
            drop(i);
            let signals = tr.group.thread_signals(tr.tid).ok_or(Errno::ESRCH)?;
            if req == PTRACE_GETSIGMASK {
                t.mm.copy_out(data, &signals.mask().to_le_bytes())?;
            } else {
                let mut b = [0u8; 8];
                t.mm.copy_in(data, &mut b)?;
                signals.set_mask(u64::from_le_bytes(b));
            }
            Ok(0)
        }
        PTRACE_GET_SYSCALL_INFO => {
            let b = syscall_info(&i, kind);
            drop(i);
            let n = (addr as usize).min(b.len());
            t.mm.copy_out(data, &b[..n])?;
            Ok(b.len() as u64)
        }
        PTRACE_CONT | PTRACE_SYSCALL | PTRACE_SINGLESTEP | PTRACE_DETACH => {
            let sig = data as i64;
            if !(0..=crate::signal::NSIG as i64).contains(&sig) {
                return Err(Errno::EIO);
            }
            let sig = sig as i32;
            match req {
                PTRACE_DETACH => {
                    i.tracer = 0;
                    i.mode = Mode::Cont;
                    drop(i);
                    t.kernel.ptrace.unlink(tr.tid);
                    tr.resume(Resume::Detach { sig });
                }
                _ => {
                    i.mode = match req {
                        PTRACE_SYSCALL => Mode::Syscall,
                        PTRACE_SINGLESTEP => Mode::Step,
                        _ => Mode::Cont,
                    };
                    drop(i);
                    tr.resume(Resume::Run { sig });
                }
            }
            Ok(0)
        }
        PTRACE_LISTEN => {
            // Only in a seized tracee's group-stop: it stays stopped; the next change
            // (the group continuing) is reported as a new stop.
            if !i.seized || kind != StopKind::Group {
                return Err(Errno::EIO);
            }
            i.mode = Mode::Cont;
            drop(i);
            tr.resume(Resume::Listen);
            Ok(0)
        }
        // PTRACE_SYSEMU, SYSEMU_SINGLESTEP, PEEKSIGINFO and the rest.
        _ => Err(Errno::EIO),
    }
}

/// user_regs_struct of a stopped tracee.
fn regs_bytes(i: &super::Inner) -> [u8; USER_REGS_SIZE] {
    let mut b = [0u8; USER_REGS_SIZE];
    for (k, w) in regs::get_all(&i.regs, i.orig_rax).iter().enumerate() {
        b[k * 8..k * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    b
}

fn words(b: &[u8]) -> Vec<u64> {
    b.chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().expect("8 bytes")))
        .collect()
}

/// struct ptrace_syscall_info for the stop the tracee is in.
fn syscall_info(i: &super::Inner, kind: StopKind) -> Vec<u8> {
    let r = &i.regs;
    let mut b = vec![0u8; 24];
    b[4..8].copy_from_slice(&AUDIT_ARCH_X86_64.to_le_bytes());
    b[8..16].copy_from_slice(&r.rip.to_le_bytes());
    b[16..24].copy_from_slice(&r.rsp.to_le_bytes());
    match kind {
        StopKind::SyscallEntry => {
            b[0] = 1;
            b.extend_from_slice(&i.orig_rax.to_le_bytes());
            for a in r.syscall_args() {
                b.extend_from_slice(&a.to_le_bytes());
            }
        }
        StopKind::SyscallExit => {
            b[0] = 2;
            b.extend_from_slice(&r.rax.to_le_bytes());
            let rval = r.rax as i64;
            b.push(u8::from((-4095..0).contains(&rval)));
        }
        _ => {}
    }
    b
}

/// PTRACE_KILL (and a tracer's exit with PTRACE_O_EXITKILL): the tracee dies (also when it
/// isn't stopped, as Linux before 6.x did).
pub(super) fn kill(tr: &Arc<Tracee>) {
    tr.group.send(SigInfo {
        signo: libc::SIGKILL,
        code: crate::signal_frame::SI_KERNEL,
        ..Default::default()
    });
    tr.group.job.release();
    tr.wake();
}

/// PTRACE_TRACEME: the parent becomes the caller's tracer.
fn traceme(t: &mut TaskState) -> SysResult {
    let parent = t.kernel.ppid(t.pid);
    if parent <= 0 {
        return Err(Errno::EPERM);
    }
    let tr = Arc::new(Tracee::new(t.tid, t.pid, t.group.clone(), parent, false));
    t.kernel.ptrace.link(tr).map_err(Errno)?;
    Ok(0)
}

/// Whether `tracer` may attach to process `target` (Linux's ptrace_may_access with
/// PTRACE_MODE_ATTACH_REALCREDS: [`super::may_access_process`]).
fn may_attach(t: &TaskState, target: &ThreadGroup) -> bool {
    super::may_access_process(
        &t.kernel,
        t.pid,
        &t.creds,
        target.pid,
        super::AccessMode::ATTACH_REALCREDS,
    )
}

/// PTRACE_ATTACH (a SIGSTOP follows) and PTRACE_SEIZE (no stop; `data` sets the options).
fn attach(t: &mut TaskState, tid: i32, seize: bool, addr: u64, data: u64) -> SysResult {
    if seize {
        if addr != 0 {
            return Err(Errno::EIO);
        }
        if data as u32 as u64 != data || data as u32 & !super::PTRACE_O_MASK != 0 {
            return Err(Errno::EIO);
        }
    }
    let group = ThreadGroup::find_thread(&t.kernel, tid).ok_or(Errno::ESRCH)?;
    if group.pid == t.pid {
        return Err(Errno::EPERM);
    }
    if group.exiting().is_some() {
        return Err(Errno::EPERM);
    }
    if !may_attach(t, &group) {
        return Err(Errno::EPERM);
    }
    let tr = Arc::new(Tracee::new(tid, group.pid, group.clone(), t.pid, seize));
    if seize {
        tr.lock().options = data as u32;
    }
    t.kernel.ptrace.link(tr).map_err(Errno)?;
    if !seize {
        // A stopped process is reported as stopped at once (Linux's JOBCTL_TRAP_STOP for
        // a task in group stop); otherwise SIGSTOP stops it.
        group.send_thread(
            tid,
            SigInfo {
                signo: libc::SIGSTOP,
                code: crate::signal_frame::SI_KERNEL,
                ..Default::default()
            },
            true,
        );
    }
    group.interrupt_thread(tid);
    Ok(0)
}
