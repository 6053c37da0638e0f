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
        let deliverable = t.signals.pending & !t.signals.mask;
        if deliverable != 0 {
            let sig = deliverable.trailing_zeros() as u64 + 1;
            t.signals.pending &= !(1u64 << (sig - 1));
            signal_self(t, sig)?;
        }
    }
    Ok(0)
}

/// Default actions: true when the signal terminates the process (with a core dump or not);
/// false for the signals ignored by default (SIGCHLD, SIGURG, SIGWINCH, SIGCONT).
fn terminates_by_default(sig: i32) -> bool {
    !matches!(
        sig,
        libc::SIGCHLD | libc::SIGURG | libc::SIGWINCH | libc::SIGCONT
    )
}

/// Sends `sig` to this process. Handlers can't run yet, so a signal that isn't ignored takes
/// its default action; stop signals are ignored (there is no one to continue us).
fn signal_self(t: &mut TaskState, sig: u64) -> SysResult {
    if sig > NSIG as u64 {
        return Err(Errno::EINVAL);
    }
    if sig == 0 {
        return Ok(0);
    }
    let sig = sig as i32;
    let action = t.signals.actions[sig as usize - 1];
    let ignored = action.handler == libc::SIG_IGN as u64 && sig != libc::SIGKILL;
    let blocked = t.signals.mask & (1u64 << (sig - 1)) != 0;
    let stop = matches!(
        sig,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
    );
    if ignored || stop || !terminates_by_default(sig) {
        return Ok(0);
    }
    if blocked {
        // Pending until unblocked (rt_sigprocmask takes it then).
        t.signals.pending |= 1u64 << (sig - 1);
        return Ok(0);
    }
    if action.handler != libc::SIG_DFL as u64 {
        tracing::debug!("signal {sig} has a handler, which can't run yet: default action taken");
    }
    t.group
        .exit(crate::task::ExitStatus::Signal(crate::signal::Signo(sig)));
    Ok(0)
}

pub fn kill(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let pid = a[0] as i32;
    // The process, its group (0, -pid) or everyone (-1): all just us until fork exists.
    if pid != t.pid && pid != 0 && pid != -1 && pid != -t.pid {
        return Err(Errno::ESRCH);
    }
    signal_self(t, a[1])
}

pub fn tkill(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    if a[0] as i32 <= 0 {
        return Err(Errno::EINVAL);
    }
    if a[0] as i32 != t.tid {
        return Err(Errno::ESRCH);
    }
    signal_self(t, a[1])
}

pub fn tgkill(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    if a[0] as i32 <= 0 || a[1] as i32 <= 0 {
        return Err(Errno::EINVAL);
    }
    if a[0] as i32 != t.pid || a[1] as i32 != t.tid {
        return Err(Errno::ESRCH);
    }
    signal_self(t, a[2])
}
