//! Signal system calls: actions, masks, sending, waiting, restart_syscall.

use fs::vfs::OpenFile;
use fs::waiter::ERESTARTNOHAND;
use platform::UserRegs;

use crate::errno::{Errno, SysResult};
use crate::signal::{RestartBlock, SigAction, NSIG, UNBLOCKABLE};
use crate::signal_frame::{AltStack, SigInfo};
use crate::signalfd::SignalFd;
use crate::task::TaskState;

pub fn rt_sigaction(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (sig, act, oldact, setsize) = (a[0], a[1], a[2], a[3]);
    if setsize != 8 || sig == 0 || sig > NSIG as u64 {
        return Err(Errno::EINVAL);
    }
    let sig = sig as i32;
    let new = if act != 0 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
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
    let handlers = t.group.handlers();
    let old = match new {
        Some(new) => handlers.replace(sig, new),
        None => handlers.get(sig),
    };
    if oldact != 0 {
        if let Err(e) = t.mm.copy_out(oldact, &old.to_bytes()) {
            // Linux writes the old action before installing the new one.
            if new.is_some() {
                handlers.set(sig, old);
            }
            return Err(e);
        }
    }
    if new.is_some() && handlers.discards(sig, 0) {
        t.group.discard(sig);
    }
    Ok(0)
}

pub fn rt_sigprocmask(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (how, set, oldset, setsize) = (a[0], a[1], a[2], a[3]);
    if setsize != 8 {
        return Err(Errno::EINVAL);
    }
    let mask = t.signals.mask();
    let new = if set != 0 {
        let requested = t.mm.read_u64(set)?;
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
        t.mm.copy_out(oldset, &mask.to_le_bytes())?;
    }
    if let Some(m) = new {
        t.signals.set_mask(m);
        t.group.retarget(m & !mask);
    }
    Ok(0)
}

/// SIGPIPE for the calling thread, as Linux sends with every EPIPE of a write to a pipe or
/// stream socket without readers (MSG_NOSIGNAL aside): a handler runs, an ignored one
/// leaves just the EPIPE, the default action ends the process once the call returns.
pub(super) fn raise_sigpipe(t: &TaskState) {
    let info = SigInfo {
        signo: libc::SIGPIPE,
        code: 0, // SI_USER
        pid: t.pid,
        uid: t.creds.uid,
        ..Default::default()
    };
    t.group.send_thread(t.tid, info, false);
}

/// SIGPIPE when a write of the write or splice family failed with EPIPE: only pipes and
/// stream sockets without a reader give it, and Linux signals it from each.
pub(super) fn sigpipe_on_epipe(t: &TaskState, r: SysResult) -> SysResult {
    if r == Err(Errno(libc::EPIPE)) {
        raise_sigpipe(t);
    }
    r
}

pub fn rt_sigreturn(t: &mut TaskState, regs: &mut UserRegs, _: [u64; 6]) -> SysResult {
    match crate::signal_frame::restore(&t.mm, regs) {
        Ok((mask, fpu)) => {
            t.signals.set_mask(mask);
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
    // Pending for the thread or the process, and blocked (unblocked ones are delivered).
    let pending = (t.signals.thread.pending() | t.group.pending()) & t.signals.mask();
    t.mm.copy_out(a[0], &pending.to_le_bytes()[..a[1] as usize])?;
    Ok(0)
}

/// Sleeps until a signal can be delivered (or the process ends, or another thread's execve
/// ends this thread): pause, sigsuspend. Then ERESTARTNOHAND: EINTR once a handler runs, a
/// fresh sleep if the signal was taken by another thread or ignored.
fn wait_for_signal(t: &TaskState) -> SysResult {
    while !crate::task::has_deliverable(t) && !t.group.must_end(t.tid) {
        t.waiter.wait(None);
        t.waiter.clear_interrupt();
    }
    Err(Errno(ERESTARTNOHAND))
}

pub fn pause(t: &mut TaskState, _: &mut UserRegs, _: [u64; 6]) -> SysResult {
    wait_for_signal(t)
}

pub fn rt_sigsuspend(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    if a[1] != 8 {
        return Err(Errno::EINVAL);
    }
    let mask = t.mm.read_u64(a[0])?;
    t.signals.saved_mask = Some(t.signals.mask());
    t.signals.set_mask(mask);
    wait_for_signal(t)
}

/// rt_sigtimedwait (sigwaitinfo, sigtimedwait): takes a pending signal of `set` (blocked or
/// not) off the queue, waiting for one up to the timeout; EAGAIN when the time runs out,
/// EINTR when another signal is delivered meanwhile (never restarted, per signal(7)).
pub fn rt_sigtimedwait(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (set_addr, info_addr, timeout_addr, setsize) = (a[0], a[1], a[2], a[3]);
    if setsize != 8 {
        return Err(Errno::EINVAL);
    }
    // SIGKILL and SIGSTOP can't be waited for, as they can't be blocked.
    let set = t.mm.read_u64(set_addr)? & !UNBLOCKABLE;
    let deadline = if timeout_addr != 0 {
        let ts = super::time::read_timespec(t, timeout_addr)?;
        let timeout = std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32);
        Some(std::time::Instant::now() + timeout)
    } else {
        None
    };
    let waiter = t.waiter.clone();
    waiter.reset();
    // Every signal queued for the process or one of its threads notifies this queue.
    let _registration = t.group.signal_queue.register(&waiter, fs::waiter::POLLIN);
    loop {
        if let Some(info) = t.group.dequeue(&t.signals.thread, !set) {
            if info_addr != 0 {
                let info = info.seen_by(&t.creds.user_ns);
                t.mm.copy_out(info_addr, &info.bytes())?;
            }
            return Ok(info.signo as u64);
        }
        // The thread ends (with its process, or for another thread's execve) before the
        // guest could see the EINTR.
        if crate::task::has_deliverable(t) || t.group.must_end(t.tid) {
            return Err(Errno::EINTR);
        }
        match waiter.wait(deadline) {
            fs::waiter::Wake::TimedOut => return Err(Errno::EAGAIN),
            fs::waiter::Wake::Interrupted => waiter.clear_interrupt(),
            fs::waiter::Wake::Notified => {}
        }
    }
}

/// restart_syscall: resumes the call interrupted with ERESTART_RESTARTBLOCK from what it
/// saved; EINTR when there is nothing to resume (Linux's do_no_restart_syscall).
pub fn restart_syscall(t: &mut TaskState, r: &mut UserRegs, _: [u64; 6]) -> SysResult {
    match t.signals.restart_block.take() {
        Some(RestartBlock::Sleep { deadline, rmtp }) => super::time::sleep_until(t, deadline, rmtp),
        Some(RestartBlock::FutexWait {
            addr,
            private,
            val,
            bitset,
            deadline,
        }) => super::futex::resume_wait(t, r, (addr, private), val, bitset, deadline),
        None => Err(Errno::EINTR),
    }
}

const SFD_CLOEXEC: u64 = libc::O_CLOEXEC as u64;
const SFD_NONBLOCK: u64 = libc::O_NONBLOCK as u64;

pub fn signalfd4(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (fd, mask_addr, size, flags) = (a[0] as i32, a[1], a[2], a[3]);
    if flags & !(SFD_CLOEXEC | SFD_NONBLOCK) != 0 || size != 8 {
        return Err(Errno::EINVAL);
    }
    let mask = t.mm.read_u64(mask_addr)?;
    if fd != -1 {
        // A new mask for an existing signalfd.
        let file = t.fds.get(fd as u64)?;
        let sfd = file
            .special_desc()
            .and_then(|d| d.as_any())
            .and_then(|d| d.downcast_ref::<SignalFd>())
            .ok_or(Errno::EINVAL)?;
        sfd.set_mask(mask);
        return Ok(fd as u64);
    }
    let creator = crate::signal::Current {
        thread: t.signals.thread.clone(),
        group: t.group.clone(),
    };
    let status = libc::O_RDWR as u32 | (flags & SFD_NONBLOCK) as u32;
    let file = OpenFile::special(None, None, SignalFd::new(mask, creator), status);
    let cloexec = flags & SFD_CLOEXEC != 0;
    Ok(t.fds.alloc(0, file, cloexec, super::fd::fd_limit(t))? as u64)
}

pub fn signalfd(t: &mut TaskState, r: &mut UserRegs, a: [u64; 6]) -> SysResult {
    signalfd4(t, r, [a[0], a[1], a[2], 0, 0, 0])
}
