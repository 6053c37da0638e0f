//! Sending signals: kill, tkill, tgkill, rt_sigqueueinfo and rt_tgsigqueueinfo, with
//! Linux's permission rules (kernel/signal.c check_kill_permission).

use platform::UserRegs;

use crate::caps::may_signal;
use crate::errno::{Errno, SysResult};
use crate::job::JobEvent;
use crate::process::{ProcessSet, Recipient, ThreadGroup};
use crate::signal::{bit, NSIG};
use crate::signal_frame::SigInfo;
use crate::task::TaskState;

/// si_code values a sender may not forge for another task (Linux's SI_USER, SI_KERNEL and
/// everything >= 0, and SI_TKILL), and the one kill and tkill use.
const SI_USER: i32 = 0;
const SI_TKILL: i32 = -6;
/// The size of the kernel's siginfo (the part rt_sigqueueinfo reads).
const KERNEL_SIGINFO_SIZE: usize = 48;

/// The siginfo a signal the caller sends carries: who sent it, by the id the sender's pid
/// namespace gives it (Linux's prepare_kill_siginfo: task_tgid_vnr). A receiver that can't
/// see the sender gets 0 instead ([`as_received`]).
pub(super) fn sender_info(t: &TaskState, sig: i32, code: i32) -> SigInfo {
    SigInfo {
        signo: sig,
        code,
        pid: t.own_pid(),
        uid: t.creds.uid,
        ..Default::default()
    }
}

/// Linux's valid_signal: 0 (a check only) to 64; a negative int is out of range too.
fn check_signo(sig: i32) -> Result<(), Errno> {
    if sig as u32 > NSIG as u32 {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Queues a signal the caller sends its own process (`to_process`) or its own thread; it is
/// delivered when the call returns. A process-directed one goes to the caller unless it
/// blocks it, as Linux's complete_signal prefers. Signal 0 only checks.
fn signal_self(t: &mut TaskState, info: SigInfo, to_process: bool) {
    if info.signo == 0 {
        return;
    }
    if to_process && t.signals.mask() & bit(info.signo) != 0 {
        t.group.send(info);
    } else {
        t.group.send_thread(t.tid, info, false);
    }
}

/// si_code of signals that carry no sender (their siginfo has no si_pid): a POSIX
/// timer's, and an I/O readiness signal's.
const SI_SIGIO: i32 = -5;

/// What `info`, sent by the caller, becomes for process `target` (Linux's
/// send_signal_locked): None when the target drops it on arrival, because it is a pid
/// namespace's init and SIGKILL or SIGSTOP comes from inside the namespace. A sender the
/// target's namespace doesn't see (an ancestor namespace's) shows as pid 0.
fn as_received(t: &TaskState, target: &ThreadGroup, mut info: SigInfo) -> Option<SigInfo> {
    let Some(ns) = t.kernel.pid_ns(target.pid) else {
        return Some(info);
    };
    let from_inside = ns.view(t.pid) != 0;
    let has_sender = info.code != crate::signal_frame::SI_TIMER && info.code != SI_SIGIO;
    if !from_inside && has_sender {
        info.pid = 0;
    }
    let kernel_only = info.signo == libc::SIGKILL || info.signo == libc::SIGSTOP;
    if from_inside && kernel_only && target.unkillable.load(std::sync::atomic::Ordering::Relaxed) {
        return None;
    }
    Some(info)
}

/// May the caller signal `target`? Its own process always; another when the credentials
/// allow it, or for SIGCONT within the caller's session.
fn check_permission(t: &TaskState, target: &Recipient, sig: i32) -> Result<(), Errno> {
    check_signo(sig)?;
    if target.group.pid == t.pid || may_signal(&t.creds, target.group.uids()) {
        return Ok(());
    }
    let own_session = t.kernel.ids(t.pid).map(|(_, sid)| sid);
    if sig == libc::SIGCONT && own_session == Some(target.sid) {
        return Ok(());
    }
    Err(Errno::EPERM)
}

/// What sending SIGCONT does at once, whatever the target's mask and handlers (Linux's
/// prepare_signal): pending stop signals go, and a stopped process continues.
fn continue_on_sigcont(t: &TaskState, group: &ThreadGroup, sig: i32) {
    if sig != libc::SIGCONT {
        return;
    }
    for stop in [libc::SIGSTOP, libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU] {
        group.discard(stop);
    }
    group
        .job
        .resume(|| t.kernel.job_changed(group, JobEvent::Continued));
}

/// After SIGKILL is queued: a stopped process's threads must run on, to die of it.
fn release_on_sigkill(group: &ThreadGroup, sig: i32) {
    if sig == libc::SIGKILL {
        group.job.release();
    }
}

/// Sends `info` to a process (the caller's own signals go to the calling thread).
pub(super) fn send_to_process(
    t: &mut TaskState,
    target: &Recipient,
    info: SigInfo,
) -> Result<(), Errno> {
    check_permission(t, target, info.signo)?;
    if info.signo == 0 || target.zombie {
        return Ok(());
    }
    continue_on_sigcont(t, &target.group, info.signo);
    if target.group.pid == t.pid {
        signal_self(t, info, true);
    } else if let Some(info) = as_received(t, &target.group, info) {
        target.group.send(info);
        release_on_sigkill(&target.group, info.signo);
    }
    Ok(())
}

/// Sends `info` to process `pid`.
fn send_to_pid(t: &mut TaskState, pid: i32, info: SigInfo) -> SysResult {
    let target = t
        .kernel
        .recipients(ProcessSet::Pid(pid))
        .pop()
        .ok_or(Errno::ESRCH)?;
    send_to_process(t, &target, info)?;
    Ok(0)
}

pub fn kill(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    // The signal is checked per recipient, after the lookup, as Linux does: a missing
    // process is ESRCH whatever the signal.
    let (pid, sig) = (a[0] as i32, a[1] as i32);
    let info = sender_info(t, sig, SI_USER);
    // Pids of the caller's pid namespace; one it doesn't see is no process (ESRCH).
    let global = |p: i32| crate::namespaces::pid_global(&t.process, p).unwrap_or(i32::MAX);
    match pid {
        p if p > 0 => send_to_pid(t, global(p), info),
        -1 => {
            // Every process of the caller's pid namespace (and below) but its init and the
            // caller: success unless there is none; a process the caller may not signal is
            // skipped.
            let mut count = 0;
            for target in t.kernel.recipients(ProcessSet::All) {
                let seen_as = crate::namespaces::pid_view(&t.process, target.group.pid);
                if seen_as <= 1 || target.group.pid == t.pid {
                    continue;
                }
                count += 1;
                let _ = send_to_process(t, &target, info);
            }
            if count == 0 {
                return Err(Errno::ESRCH);
            }
            Ok(0)
        }
        // -INT_MIN doesn't exist.
        i32::MIN => Err(Errno::ESRCH),
        p => {
            // A process group (0: the caller's): success when any member got it, else the
            // last member's error (ESRCH for an empty group).
            let pgid = if p == 0 {
                t.kernel.ids(t.pid).map(|(g, _)| g).unwrap_or(t.pid)
            } else {
                global(-p)
            };
            let mut result = Err(Errno::ESRCH);
            let mut delivered = false;
            for target in t.kernel.recipients(ProcessSet::Group(pgid)) {
                result = send_to_process(t, &target, info);
                delivered |= result.is_ok();
            }
            if delivered {
                return Ok(0);
            }
            result.map(|_| 0)
        }
    }
}

/// Sends `sig` from the kernel (SI_KERNEL, no permission check) to every live process of
/// group `pgid`, as Linux's kill_pgrp(..., 1) does for terminal signals (SIGTTOU, SIGTTIN,
/// SIGWINCH, SIGHUP).
pub(super) fn kernel_signal_group(t: &mut TaskState, pgid: i32, sig: i32) {
    let info = SigInfo {
        signo: sig,
        code: crate::signal_frame::SI_KERNEL,
        ..Default::default()
    };
    for target in t.kernel.recipients(ProcessSet::Group(pgid)) {
        if target.zombie {
            continue;
        }
        continue_on_sigcont(t, &target.group, sig);
        if target.group.pid == t.pid {
            signal_self(t, info, true);
        } else {
            target.group.send(info);
        }
    }
}

/// Sends `info` to thread `tid` (of process `tgid` when given), as Linux's do_send_specific.
fn send_to_thread(t: &mut TaskState, tgid: Option<i32>, tid: i32, info: SigInfo) -> SysResult {
    if tid == t.tid && tgid.is_none_or(|g| g == t.pid) {
        check_signo(info.signo)?;
        signal_self(t, info, false);
        return Ok(0);
    }
    let target = t.kernel.thread_owner(tid).ok_or(Errno::ESRCH)?;
    if tgid.is_some_and(|g| g != target.group.pid) {
        return Err(Errno::ESRCH);
    }
    check_permission(t, &target, info.signo)?;
    if info.signo != 0 {
        continue_on_sigcont(t, &target.group, info.signo);
        let own_process = target.group.pid == t.pid;
        let received = if own_process {
            Some(info)
        } else {
            as_received(t, &target.group, info)
        };
        if let Some(info) = received {
            // The thread may have exited meanwhile: Linux reports success then too.
            target.group.send_thread(tid, info, true);
            release_on_sigkill(&target.group, info.signo);
        }
    }
    Ok(0)
}

/// Whether a tkill or tgkill in `regs` is aimed at the caller itself (raise): then it only
/// queues a signal for the caller and may be served on the ring poller.
pub fn targets_caller(t: &TaskState, regs: &UserRegs) -> bool {
    let global = |p: u64| crate::namespaces::pid_global(&t.process, p as i32);
    match regs.rax as u32 as i64 {
        libc::SYS_tkill => global(regs.rdi) == Some(t.tid),
        libc::SYS_tgkill => global(regs.rdi) == Some(t.pid) && global(regs.rsi) == Some(t.tid),
        _ => false,
    }
}

pub fn tkill(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let tid = a[0] as i32;
    if tid <= 0 {
        return Err(Errno::EINVAL);
    }
    let info = sender_info(t, a[1] as i32, SI_TKILL);
    let tid = crate::namespaces::pid_global(&t.process, tid).unwrap_or(i32::MAX);
    send_to_thread(t, None, tid, info)
}

pub fn tgkill(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (tgid, tid) = (a[0] as i32, a[1] as i32);
    if tgid <= 0 || tid <= 0 {
        return Err(Errno::EINVAL);
    }
    let info = sender_info(t, a[2] as i32, SI_TKILL);
    let global = |p: i32| crate::namespaces::pid_global(&t.process, p).unwrap_or(i32::MAX);
    send_to_thread(t, Some(global(tgid)), global(tid), info)
}

/// Reads the siginfo rt_sigqueueinfo passes. Nobody may pretend to be the kernel (si_code
/// >= 0) or kill/tkill (SI_TKILL) towards another task: only `to_self` may.
pub(super) fn queued_info(
    t: &TaskState,
    addr: u64,
    sig: i32,
    to_self: bool,
) -> Result<SigInfo, Errno> {
    let mut b = [0u8; KERNEL_SIGINFO_SIZE];
    t.mm.copy_in(addr, &mut b)?;
    let word = |i: usize| i32::from_le_bytes(b[i..i + 4].try_into().expect("4 bytes"));
    let code = word(8);
    if (code >= 0 || code == SI_TKILL) && !to_self {
        return Err(Errno::EPERM);
    }
    Ok(SigInfo {
        signo: sig,
        code,
        pid: word(16),
        uid: word(20) as u32,
        value: u64::from_le_bytes(b[24..32].try_into().expect("8 bytes")),
        ..Default::default()
    })
}

pub fn rt_sigqueueinfo(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (pid, sig) = (a[0] as i32, a[1] as i32);
    // Linux compares the pid with the caller's thread id.
    let info = queued_info(t, a[2], sig, pid == t.tid)?;
    if pid <= 0 {
        return Err(Errno::ESRCH);
    }
    send_to_pid(t, pid, info)
}

pub fn rt_tgsigqueueinfo(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (tgid, tid, sig) = (a[0] as i32, a[1] as i32, a[2] as i32);
    if tgid <= 0 || tid <= 0 {
        return Err(Errno::EINVAL);
    }
    let info = queued_info(t, a[3], sig, tid == t.tid)?;
    send_to_thread(t, Some(tgid), tid, info)
}
