//! Signal system calls (bookkeeping until delivery exists).

use platform::UserRegs;

use crate::errno::{Errno, SysResult};
use crate::process::ThreadGroup;
use crate::signal::{SigAction, NSIG, UNBLOCKABLE};
use crate::signal_frame::{AltStack, SigInfo};
use crate::task::TaskState;

pub fn rt_sigaction(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (sig, act, oldact, setsize) = (a[0], a[1], a[2], a[3]);
    if setsize != 8 || sig == 0 || sig > NSIG as u64 {
        return Err(Errno::EINVAL);
    }
    let idx = sig as usize - 1;
    let new = if act != 0 {
        if sig == libc::SIGKILL as u64 || sig == libc::SIGSTOP as u64 {
            return Err(Errno::EINVAL);
        }
        let mut b = [0u8; SigAction::SIZE];
        t.mm.copy_in(act, &mut b)?;
        let mut new = SigAction::from_bytes(&b);
        new.mask &= !UNBLOCKABLE;
        Some(new)
    } else {
        None
    };
    if oldact != 0 {
        let old = t.signals.actions[idx].to_bytes();
        t.mm.copy_out(oldact, &old)?;
    }
    if let Some(new) = new {
        t.signals.actions[idx] = new;
    }
    Ok(0)
}

pub fn rt_sigprocmask(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (how, set, oldset, setsize) = (a[0], a[1], a[2], a[3]);
    if setsize != 8 {
        return Err(Errno::EINVAL);
    }
    let new = if set != 0 {
        let requested = t.mm.read_u64(set)?;
        let mask = t.signals.mask;
        Some(match how as i32 {
            libc::SIG_BLOCK => mask | requested,
            libc::SIG_UNBLOCK => mask & !requested,
            libc::SIG_SETMASK => requested,
            _ => return Err(Errno::EINVAL),
        })
    } else {
        None
    };
    if oldset != 0 {
        t.mm.copy_out(oldset, &t.signals.mask.to_le_bytes())?;
    }
    if let Some(m) = new {
        t.signals.mask = m & !UNBLOCKABLE;
    }
    Ok(0)
}

/// Queues `sig` for the calling thread; it is delivered (handler or default action) when
/// the call returns.
fn signal_self(t: &mut TaskState, sig: u64, code: i32) -> SysResult {
    if sig > NSIG as u64 {
        return Err(Errno::EINVAL);
    }
    if sig == 0 {
        return Ok(0);
    }
    let sig = sig as i32;
    let bit = 1u64 << (sig - 1);
    if t.signals.pending & bit == 0 {
        t.signals.pending |= bit;
        t.signals.info[sig as usize - 1] = Some(SigInfo {
            signo: sig,
            code,
            pid: t.pid,
            uid: t.creds.uid,
            ..Default::default()
        });
    }
    Ok(0)
}

/// Sends `sig` to another process.
fn signal_process(t: &TaskState, pid: i32, sig: u64) -> SysResult {
    if sig > NSIG as u64 {
        return Err(Errno::EINVAL);
    }
    let group = t.kernel.group(pid).ok_or(Errno::ESRCH)?;
    if sig != 0 {
        group.send(SigInfo {
            signo: sig as i32,
            code: 0, // SI_USER
            pid: t.pid,
            uid: t.creds.uid,
            ..Default::default()
        });
    }
    Ok(0)
}

pub fn kill(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (pid, sig) = (a[0] as i32, a[1]);
    if sig > NSIG as u64 {
        return Err(Errno::EINVAL);
    }
    if pid == t.pid {
        return signal_self(t, sig, 0);
    }
    if pid > 0 {
        return signal_process(t, pid, sig);
    }
    // A process group (0: the caller's), or every process but init (-1).
    let members: Vec<i32> = match pid {
        -1 => t
            .kernel
            .all_groups()
            .iter()
            .map(|g| g.pid)
            .filter(|&p| p != 1)
            .collect(),
        0 => {
            let pgid = t.kernel.ids(t.pid).map(|(g, _)| g).unwrap_or(t.pid);
            t.kernel.group_members(pgid).iter().map(|g| g.pid).collect()
        }
        p => t.kernel.group_members(-p).iter().map(|g| g.pid).collect(),
    };
    if members.is_empty() {
        return Err(Errno::ESRCH);
    }
    for p in members {
        if p == t.pid {
            signal_self(t, sig, 0)?;
        } else {
            let _ = signal_process(t, p, sig);
        }
    }
    Ok(0)
}

pub fn tkill(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    if a[0] as i32 <= 0 {
        return Err(Errno::EINVAL);
    }
    let tid = a[0] as i32;
    if tid == t.tid {
        return signal_self(t, a[1], SI_TKILL);
    }
    let group = t.kernel.group_of_thread(tid).ok_or(Errno::ESRCH)?;
    signal_thread(t, &group, tid, a[1])
}

/// si_code of a signal from tkill/tgkill.
const SI_TKILL: i32 = -6;

/// Sends `sig` to thread `tid` of `group` (another thread than the caller).
fn signal_thread(t: &TaskState, group: &ThreadGroup, tid: i32, sig: u64) -> SysResult {
    if sig > NSIG as u64 {
        return Err(Errno::EINVAL);
    }
    let info = SigInfo {
        signo: sig as i32,
        code: SI_TKILL,
        pid: t.pid,
        uid: t.creds.uid,
        ..Default::default()
    };
    // Signal 0 only checks that the thread exists.
    let found = if sig == 0 {
        group.tids().contains(&tid)
    } else {
        group.send_to_thread(tid, info)
    };
    if found {
        Ok(0)
    } else {
        Err(Errno::ESRCH)
    }
}

pub fn tgkill(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    if a[0] as i32 <= 0 || a[1] as i32 <= 0 {
        return Err(Errno::EINVAL);
    }
    let (pid, tid) = (a[0] as i32, a[1] as i32);
    if pid == t.pid && tid == t.tid {
        return signal_self(t, a[2], SI_TKILL);
    }
    let group = if pid == t.pid {
        t.group.clone()
    } else {
        t.kernel.group(pid).ok_or(Errno::ESRCH)?
    };
    signal_thread(t, &group, tid, a[2])
}

pub fn rt_sigreturn(t: &mut TaskState, regs: &mut UserRegs, _: [u64; 6]) -> SysResult {
    match crate::signal_frame::restore(&t.mm, regs) {
        Ok((mask, fpu)) => {
            t.signals.mask = mask & !UNBLOCKABLE;
            t.restore_fpu = fpu;
            // The restored RAX is the interrupted code's, not a return value.
            Ok(regs.rax)
        }
        Err(_) => {
            t.group.exit(crate::task::ExitStatus::Signal(
                crate::signal::Signo::SIGSEGV,
            ));
            Ok(0)
        }
    }
}

pub fn sigaltstack(t: &mut TaskState, regs: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (new, old) = (a[0], a[1]);
    let cur = t.signals.altstack;
    let on_stack = cur.contains(regs.rsp);
    if old != 0 {
        let mut b = [0u8; 24];
        b[0..8].copy_from_slice(&cur.sp.to_le_bytes());
        let flags = if on_stack {
            AltStack::SS_ONSTACK
        } else {
            cur.flags & AltStack::SS_DISABLE
        };
        b[8..12].copy_from_slice(&flags.to_le_bytes());
        b[16..24].copy_from_slice(&cur.size.to_le_bytes());
        t.mm.copy_out(old, &b)?;
    }
    if new != 0 {
        let mut b = [0u8; 24];
        t.mm.copy_in(new, &mut b)?;
        let sp = u64::from_le_bytes(b[0..8].try_into().expect("8 bytes"));
        let flags = i32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
        let size = u64::from_le_bytes(b[16..24].try_into().expect("8 bytes"));
        if on_stack {
            return Err(Errno::EPERM);
        }
        // SS_AUTODISARM (1 << 31) is accepted and treated as plain.
        let mode = flags & !(1 << 31);
        if mode != 0 && mode != AltStack::SS_DISABLE && mode != AltStack::SS_ONSTACK {
            return Err(Errno::EINVAL);
        }
        t.signals.altstack = if mode == AltStack::SS_DISABLE {
            AltStack {
                flags: AltStack::SS_DISABLE,
                ..Default::default()
            }
        } else {
            if size < 2048 {
                return Err(Errno::ENOMEM);
            }
            AltStack { sp, flags: 0, size }
        };
    }
    Ok(0)
}

pub fn rt_sigpending(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    if a[1] > 8 {
        return Err(Errno::EINVAL);
    }
    crate::task::collect_directed(t);
    // Linux: the blocked ones among the thread's and the process's pending signals.
    let pending = (t.signals.pending | t.group.pending_signals()) & t.signals.mask;
    t.mm.copy_out(a[0], &pending.to_le_bytes()[..a[1] as usize])?;
    Ok(0)
}

/// Sleeps until a signal can be delivered (or the process ends): pause, sigsuspend.
fn wait_for_signal(t: &mut TaskState) {
    loop {
        crate::task::discard_ignored(t);
        if crate::task::has_deliverable(t) || t.group.exiting().is_some() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

pub fn pause(t: &mut TaskState, _: &mut UserRegs, _: [u64; 6]) -> SysResult {
    wait_for_signal(t);
    Err(Errno::EINTR)
}

pub fn rt_sigsuspend(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    if a[1] != 8 {
        return Err(Errno::EINVAL);
    }
    let mask = t.mm.read_u64(a[0])?;
    t.signals.saved_mask = Some(t.signals.mask);
    t.signals.mask = mask & !UNBLOCKABLE;
    wait_for_signal(t);
    Err(Errno::EINTR)
}
