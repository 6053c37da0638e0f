//! Signal system calls (bookkeeping until delivery exists).

use platform::UserRegs;

use crate::errno::{Errno, SysResult};
use crate::signal::{SigAction, NSIG, UNBLOCKABLE};
use crate::signal_frame::AltStack;
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
    // The thread's own signals and the process's, as Linux reports them.
    let pending = t.signals.pending | t.group.directed_pending(t.tid) | t.group.pending_mask();
    t.mm.copy_out(a[0], &pending.to_le_bytes()[..a[1] as usize])?;
    Ok(0)
}

/// Sleeps until a signal can be delivered (or the process ends): pause, sigsuspend.
fn wait_for_signal(t: &TaskState) {
    while !crate::task::has_deliverable(t) && t.group.exiting().is_none() {
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
