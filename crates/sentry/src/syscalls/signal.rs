//! Signal system calls (bookkeeping until delivery exists).

use platform::UserRegs;

use crate::errno::{Errno, SysResult};
use crate::signal::{SigAction, NSIG, UNBLOCKABLE};
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
