//! Priorities and scheduling policies: getpriority, setpriority and the sched_* calls.
//!
//! The sandbox's threads keep the host's scheduling: these calls keep a process's nice
//! value, policy and real-time priority (`crate::sched::SchedState`), check them as Linux
//! does and report them back.

use std::sync::Arc;

use platform::UserRegs;

use crate::caps::{capable, Cap};
use crate::errno::{Errno, SysResult};
use crate::process::ThreadGroup;
use crate::sched::{
    SCHED_BATCH, SCHED_DEADLINE, SCHED_FIFO, SCHED_IDLE, SCHED_OTHER, SCHED_RESET_ON_FORK, SCHED_RR,
};
use crate::task::TaskState;

const PRIO_PROCESS: u64 = 0;
const PRIO_PGRP: u64 = 1;
const PRIO_USER: u64 = 2;

const RLIMIT_NICE: usize = 13;
const RLIMIT_RTPRIO: usize = 14;

/// Linux's MAX_RT_PRIO - 1.
const MAX_RT_PRIORITY: i32 = 99;

/// SCHED_FLAG_* that sched_setattr knows (SCHED_FLAG_ALL).
const SCHED_FLAG_RESET_ON_FORK: u64 = 0x01;
const SCHED_FLAG_KEEP_POLICY: u64 = 0x08;
const SCHED_FLAG_KEEP_PARAMS: u64 = 0x10;
const SCHED_FLAG_ALL: u64 = 0x7f;

const SCHED_ATTR_SIZE_VER0: u64 = 48;
const SCHED_ATTR_SIZE: u64 = 56;
const PAGE_SIZE: u64 = 4096;

/// A process or thread id the caller gave, in its pid namespace, as the sandbox's id.
fn global_id(t: &TaskState, local: i32) -> Result<i32, Errno> {
    if local < 0 {
        return Err(Errno::ESRCH);
    }
    crate::namespaces::pid_global(&t.process, local).ok_or(Errno::ESRCH)
}

/// The live process with pid (or thread id) `who` (in the caller's pid namespace), 0 for
/// the caller's.
fn find_process(t: &TaskState, who: i32) -> Result<Arc<ThreadGroup>, Errno> {
    if who == 0 {
        return Ok(t.group.clone());
    }
    let who = global_id(t, who)?;
    if who == t.pid {
        return Ok(t.group.clone());
    }
    if let Some(g) = t.kernel.group(who) {
        return Ok(g);
    }
    t.kernel
        .thread_owner(who)
        .map(|r| r.group)
        .ok_or(Errno::ESRCH)
}

/// The processes getpriority and setpriority name.
pub(super) fn prio_targets(
    t: &TaskState,
    which: u64,
    who: u64,
) -> Result<Vec<Arc<ThreadGroup>>, Errno> {
    let who = who as i32;
    match which {
        PRIO_PROCESS => Ok(find_process(t, who).map(|g| vec![g]).unwrap_or_default()),
        PRIO_PGRP => {
            let pgid = if who == 0 {
                t.kernel.ids(t.pid).map(|(g, _)| g).unwrap_or(t.pid)
            } else {
                global_id(t, who)?
            };
            Ok(t.kernel
                .live_processes()
                .into_iter()
                .filter(|&(_, g, _)| g == pgid)
                .map(|(_, _, group)| group)
                .collect())
        }
        PRIO_USER => {
            let uid = if who == 0 { t.creds.uid } else { who as u32 };
            Ok(t.kernel
                .live_processes()
                .into_iter()
                .filter(|(_, _, g)| g.uids().uid == uid)
                .map(|(_, _, group)| group)
                .collect())
        }
        _ => Err(Errno::EINVAL),
    }
}

/// Linux's can_nice: `nice` is within RLIMIT_NICE (20 - nice <= limit) or the caller has
/// CAP_SYS_NICE. The limit is the caller's (Linux reads the target's).
fn can_nice(t: &TaskState, nice: i32) -> bool {
    (20 - nice) as u64 <= t.rlimits[RLIMIT_NICE].0 || capable(&t.creds, Cap::SysNice)
}

/// Linux's set_one_prio_perm and check_same_owner: the caller's effective uid is the
/// target's real or effective uid, or the caller has CAP_SYS_NICE.
fn same_owner(t: &TaskState, g: &ThreadGroup) -> bool {
    let u = g.uids();
    t.creds.euid == u.uid || t.creds.euid == u.euid || capable(&t.creds, Cap::SysNice)
}

/// The raw call returns 20 - nice (1..=40) for the highest priority among the targets.
pub fn getpriority(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let targets = prio_targets(t, a[0], a[1])?;
    let best = targets.iter().map(|g| 20 - g.sched.nice()).max();
    best.map(|p| p as u64).ok_or(Errno::ESRCH)
}

pub fn setpriority(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let nice = (a[2] as i32).clamp(-20, 19);
    let targets = prio_targets(t, a[0], a[1])?;
    let mut error = Some(Errno::ESRCH);
    for g in targets {
        if !same_owner(t, &g) {
            error = Some(Errno::EPERM);
        } else if nice < g.sched.nice() && !can_nice(t, nice) {
            error = Some(Errno::EACCES);
        } else {
            if error == Some(Errno::ESRCH) {
                error = None;
            }
            g.sched.set_nice(nice);
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(0),
    }
}

fn valid_policy(policy: i32) -> bool {
    matches!(
        policy,
        SCHED_OTHER | SCHED_FIFO | SCHED_RR | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE
    )
}

fn rt_policy(policy: i32) -> bool {
    matches!(policy, SCHED_FIFO | SCHED_RR)
}

/// A request to change a process's scheduling (Linux's struct sched_attr, after the
/// calls' own checks). `policy` None keeps the current one (sched_setparam).
struct Request {
    policy: Option<i32>,
    priority: i32,
    /// sched_setattr's nice for the fair policies; None keeps the current one.
    nice: Option<i32>,
    reset_on_fork: bool,
    flags: u64,
}

/// Linux's __sched_setscheduler, without the host: checks and records the request.
fn set_scheduler(t: &TaskState, g: &ThreadGroup, r: Request) -> SysResult {
    let (cur_policy, cur_reset) = g.sched.policy();
    let policy = r.policy.unwrap_or(cur_policy);
    if !valid_policy(policy) {
        return Err(Errno::EINVAL);
    }
    if r.flags & !SCHED_FLAG_ALL != 0 {
        return Err(Errno::EINVAL);
    }
    if !(0..=MAX_RT_PRIORITY).contains(&r.priority) || rt_policy(policy) != (r.priority != 0) {
        return Err(Errno::EINVAL);
    }
    let nice = r.nice.unwrap_or(g.sched.nice());
    if !capable(&t.creds, Cap::SysNice) {
        if policy == SCHED_DEADLINE {
            return Err(Errno::EPERM);
        }
        if !rt_policy(policy) && nice < g.sched.nice() && !can_nice(t, nice) {
            return Err(Errno::EPERM);
        }
        if rt_policy(policy) {
            let limit = t.rlimits[RLIMIT_RTPRIO].0;
            if policy != cur_policy && limit == 0 {
                return Err(Errno::EPERM);
            }
            if r.priority > g.sched.rt_priority() && r.priority as u64 > limit {
                return Err(Errno::EPERM);
            }
        }
        // Leaving SCHED_IDLE needs the right to the current nice value.
        if cur_policy == SCHED_IDLE && policy != SCHED_IDLE && !can_nice(t, g.sched.nice()) {
            return Err(Errno::EPERM);
        }
        if !same_owner(t, g) {
            return Err(Errno::EPERM);
        }
        // Only a privileged caller may clear SCHED_RESET_ON_FORK.
        if cur_reset && !r.reset_on_fork {
            return Err(Errno::EPERM);
        }
    }
    if policy == SCHED_DEADLINE {
        // Admission control: the sandbox grants no deadline bandwidth.
        return Err(Errno::EBUSY);
    }
    g.sched.set_policy(policy, r.reset_on_fork, r.priority);
    if !rt_policy(policy) {
        g.sched.set_nice(nice);
    }
    Ok(0)
}

fn read_param(t: &TaskState, addr: u64) -> Result<i32, Errno> {
    let mut b = [0u8; 4];
    t.mm.copy_in(addr, &mut b)?;
    Ok(i32::from_le_bytes(b))
}

pub fn sched_setscheduler(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (pid, policy, param) = (a[0] as i32, a[1] as i32, a[2]);
    if policy < 0 || param == 0 || pid < 0 {
        return Err(Errno::EINVAL);
    }
    let priority = read_param(t, param)?;
    let g = find_process(t, pid)?;
    let reset_on_fork = policy & SCHED_RESET_ON_FORK != 0;
    let policy = policy & !SCHED_RESET_ON_FORK;
    set_scheduler(
        t,
        &g,
        Request {
            policy: Some(policy),
            priority,
            nice: None,
            reset_on_fork,
            flags: 0,
        },
    )
}

pub fn sched_setparam(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (pid, param) = (a[0] as i32, a[1]);
    if param == 0 || pid < 0 {
        return Err(Errno::EINVAL);
    }
    let priority = read_param(t, param)?;
    let g = find_process(t, pid)?;
    let reset_on_fork = g.sched.policy().1;
    set_scheduler(
        t,
        &g,
        Request {
            policy: None,
            priority,
            nice: None,
            reset_on_fork,
            flags: 0,
        },
    )
}

pub fn sched_getscheduler(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let pid = a[0] as i32;
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    let g = find_process(t, pid)?;
    let (policy, reset) = g.sched.policy();
    let flag = if reset { SCHED_RESET_ON_FORK } else { 0 };
    Ok((policy | flag) as u64)
}

pub fn sched_getparam(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (pid, param) = (a[0] as i32, a[1]);
    if param == 0 || pid < 0 {
        return Err(Errno::EINVAL);
    }
    let g = find_process(t, pid)?;
    t.mm.copy_out(param, &g.sched.rt_priority().to_le_bytes())?;
    Ok(0)
}

pub fn sched_get_priority_max(_: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    match a[0] as i32 {
        SCHED_FIFO | SCHED_RR => Ok(MAX_RT_PRIORITY as u64),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

pub fn sched_get_priority_min(_: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    match a[0] as i32 {
        SCHED_FIFO | SCHED_RR => Ok(1),
        SCHED_OTHER | SCHED_BATCH | SCHED_IDLE | SCHED_DEADLINE => Ok(0),
        _ => Err(Errno::EINVAL),
    }
}

/// SCHED_RR's slice is Linux's RR_TIMESLICE (100 ms); SCHED_FIFO has none; the fair
/// policies report the host's slice for the sentry's thread.
pub fn sched_rr_get_interval(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let pid = a[0] as i32;
    if pid < 0 {
        return Err(Errno::EINVAL);
    }
    let g = find_process(t, pid)?;
    let (sec, nsec): (i64, i64) = match g.sched.policy().0 {
        SCHED_RR => (0, 100_000_000),
        SCHED_FIFO => (0, 0),
        _ => {
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: ts is a valid out-pointer; pid 0 is the calling host thread.
            if unsafe { libc::sched_rr_get_interval(0, &mut ts) } != 0 {
                (0, 0)
            } else {
                (ts.tv_sec, ts.tv_nsec)
            }
        }
    };
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&sec.to_le_bytes());
    b[8..].copy_from_slice(&nsec.to_le_bytes());
    t.mm.copy_out(a[1], &b)?;
    Ok(0)
}

/// sched_getattr(pid, attr, size, flags): Linux's struct sched_attr (56 bytes), cut to
/// `size`, with `size` set to what was written.
pub fn sched_getattr(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (pid, addr, size, flags) = (a[0] as i32, a[1], a[2] as u32 as u64, a[3] as u32);
    if addr == 0 || pid < 0 || !(SCHED_ATTR_SIZE_VER0..=PAGE_SIZE).contains(&size) || flags != 0 {
        return Err(Errno::EINVAL);
    }
    let g = find_process(t, pid)?;
    let (policy, reset) = g.sched.policy();
    // Linux's copy_struct_to_user: the struct, zeros after it up to `size`.
    let mut b = vec![0u8; size.max(SCHED_ATTR_SIZE) as usize];
    b[0..4].copy_from_slice(&(size.min(SCHED_ATTR_SIZE) as u32).to_le_bytes());
    b[4..8].copy_from_slice(&(policy as u32).to_le_bytes());
    let flags = if reset { SCHED_FLAG_RESET_ON_FORK } else { 0 };
    b[8..16].copy_from_slice(&flags.to_le_bytes());
    if rt_policy(policy) {
        b[20..24].copy_from_slice(&(g.sched.rt_priority() as u32).to_le_bytes());
    } else {
        b[16..20].copy_from_slice(&g.sched.nice().to_le_bytes());
    }
    // sched_util_max: no clamp (1024), as a kernel with uclamp reports.
    b[52..56].copy_from_slice(&1024u32.to_le_bytes());
    t.mm.copy_out(addr, &b[..size as usize])?;
    Ok(0)
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

pub fn sched_setattr(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (pid, addr, flags) = (a[0] as i32, a[1], a[2] as u32);
    if addr == 0 || pid < 0 || flags != 0 {
        return Err(Errno::EINVAL);
    }
    let mut size_b = [0u8; 4];
    t.mm.copy_in(addr, &mut size_b)?;
    let mut size = u64::from(u32::from_le_bytes(size_b));
    if size == 0 {
        size = SCHED_ATTR_SIZE_VER0;
    }
    let too_big = |t: &TaskState| -> SysResult {
        t.mm.copy_out(addr, &(SCHED_ATTR_SIZE as u32).to_le_bytes())?;
        Err(Errno::E2BIG)
    };
    if !(SCHED_ATTR_SIZE_VER0..=PAGE_SIZE).contains(&size) {
        return too_big(t);
    }
    let mut b = vec![0u8; size as usize];
    t.mm.copy_in(addr, &mut b)?;
    // A larger struct than this kernel's is fine only if the rest is zeros.
    if b.len() > SCHED_ATTR_SIZE as usize && b[SCHED_ATTR_SIZE as usize..].iter().any(|&x| x != 0) {
        return too_big(t);
    }
    b.resize(SCHED_ATTR_SIZE as usize, 0);
    let mut policy = u32_at(&b, 4) as i32;
    if policy < 0 {
        return Err(Errno::EINVAL);
    }
    let sflags = u64::from_le_bytes(b[8..16].try_into().expect("8 bytes"));
    let mut nice = (u32_at(&b, 16) as i32).clamp(-20, 19);
    let mut priority = u32_at(&b, 20) as i32;
    let g = find_process(t, pid)?;
    let keep_policy = sflags & SCHED_FLAG_KEEP_POLICY != 0;
    if keep_policy {
        policy = g.sched.policy().0;
    }
    if sflags & SCHED_FLAG_KEEP_PARAMS != 0 {
        nice = g.sched.nice();
        priority = g.sched.rt_priority();
    }
    set_scheduler(
        t,
        &g,
        Request {
            policy: Some(policy),
            priority,
            nice: Some(nice),
            reset_on_fork: sflags & SCHED_FLAG_RESET_ON_FORK != 0,
            flags: sflags,
        },
    )
}

/// Linux's nr_cpu_ids: the CPUs the host could have.
fn possible_cpus() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_CONF) };
    n.max(1) as usize
}

/// Bytes of a CPU mask (Linux's cpumask_size()): nr_cpu_ids bits in whole longs.
fn cpumask_bytes() -> usize {
    possible_cpus().div_ceil(64) * 8
}

/// The CPUs the sandbox's threads may run on (the sentry's own host affinity), as words.
fn host_cpus() -> Result<Vec<u64>, Errno> {
    let host = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).map_err(Errno::from)?;
    let mut words = vec![0u64; cpumask_bytes() / 8];
    for cpu in 0..words.len() * 64 {
        if host.is_set(cpu).unwrap_or(false) {
            words[cpu / 64] |= 1 << (cpu % 64);
        }
    }
    Ok(words)
}

/// The thread sched_{set,get}affinity name: the caller for 0, else any live thread by id
/// (in the caller's pid namespace).
pub(super) fn find_thread(t: &TaskState, tid: i32) -> Result<(Arc<ThreadGroup>, i32), Errno> {
    if tid == 0 {
        return Ok((t.group.clone(), t.tid));
    }
    let tid = global_id(t, tid)?;
    if tid == t.tid {
        return Ok((t.group.clone(), t.tid));
    }
    let group = t.kernel.thread_owner(tid).ok_or(Errno::ESRCH)?.group;
    Ok((group, tid))
}

/// sched_setaffinity: the thread's CPU mask, as Linux checks it (the mask is read first, a
/// shorter buffer meaning the rest clear; then the thread, the owner rule, and EINVAL when
/// no allowed CPU is left). The mask is recorded and reported; the sandbox's host threads
/// stay where the host puts them.
pub fn sched_setaffinity(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (tid, len, addr) = (a[0] as i32, a[1] as usize, a[2]);
    let size = cpumask_bytes();
    let mut bytes = vec![0u8; size];
    let n = len.min(size);
    t.mm.copy_in(addr, &mut bytes[..n])?;
    let (group, tid) = find_thread(t, tid)?;
    if !same_owner(t, &group) {
        return Err(Errno::EPERM);
    }
    let host = host_cpus()?;
    let mask: Vec<u64> = bytes
        .chunks_exact(8)
        .zip(&host)
        .map(|(b, h)| u64::from_le_bytes(b.try_into().expect("8 bytes")) & h)
        .collect();
    if mask.iter().all(|&w| w == 0) {
        return Err(Errno::EINVAL);
    }
    if !group.set_thread_affinity(tid, Some(mask.into())) {
        return Err(Errno::ESRCH);
    }
    Ok(0)
}

/// sched_getaffinity: the thread's mask within the CPUs the sandbox has; returns the bytes
/// written (the smaller of the buffer and the mask size).
pub fn sched_getaffinity(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (tid, len, out) = (a[0] as i32, a[1] as usize, a[2]);
    // Linux: the buffer must hold nr_cpu_ids bits and be a whole number of longs.
    if len.saturating_mul(8) < possible_cpus() || len % 8 != 0 {
        return Err(Errno::EINVAL);
    }
    let (group, tid) = find_thread(t, tid)?;
    let host = host_cpus()?;
    let words: Vec<u64> = match group.thread_affinity(tid).ok_or(Errno::ESRCH)? {
        Some(mask) => mask.iter().zip(&host).map(|(m, h)| m & h).collect(),
        None => host,
    };
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    let n = len.min(bytes.len());
    t.mm.copy_out(out, &bytes[..n])?;
    Ok(n as u64)
}
