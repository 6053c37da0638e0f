//! System V semaphores: semget, semop, semtimedop, semctl (the sets: `crate::ipc::sem`).
//!
//! semop applies all its operations or none. A task that would block sleeps on the set's
//! wait queue and tries again whenever the set changes; a signal ends the sleep with EINTR
//! (semop is never restarted, as on Linux), removing the set with EIDRM, the timeout with
//! EAGAIN.

use std::time::{Duration, Instant};

use platform::UserRegs;

use crate::errno::{Errno, SysResult};
use crate::ipc::sem::{Blocked, Set, Undo};
use crate::ipc::{limits, lock, put_u32, IPC_INFO, IPC_NOWAIT, IPC_RMID, IPC_SET, IPC_STAT};
use crate::task::TaskState;

const GETPID: i32 = 11;
const GETVAL: i32 = 12;
const GETALL: i32 = 13;
const GETNCNT: i32 = 14;
const GETZCNT: i32 = 15;
const SETVAL: i32 = 16;
const SETALL: i32 = 17;
const SEM_STAT: i32 = 18;
const SEM_INFO: i32 = 19;
const SEM_STAT_ANY: i32 = 20;
const SEM_UNDO: i16 = 0x1000;

const S_IRUGO: u32 = 0o444;
const S_IWUGO: u32 = 0o222;

/// SEMUSZ (Linux's seminfo constant).
const SEMUSZ: u32 = 20;

pub fn semget(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (key, nsems, flags) = (a[0] as i32, a[1] as i32, a[2] as i32);
    let ns = t.process.namespaces().ipc.ns;
    if nsems < 0 || nsems as usize > ns.tunables.semmsl() {
        return Err(Errno::EINVAL);
    }
    let nsems = nsems as usize;
    let mut tab = lock(&ns.sem);
    let used = tab.used_sems;
    let creds = t.creds.clone();
    let before = tab.ids.in_use();
    let id = tab.ids.get_or_create(
        key,
        flags,
        &creds,
        ns.tunables.semmni(),
        |set| {
            if nsems > set.sems.len() {
                Err(Errno::EINVAL)
            } else {
                Ok(())
            }
        },
        |perm, _, serial| {
            if nsems == 0 {
                return Err(Errno::EINVAL);
            }
            if used + nsems > ns.tunables.semmns() {
                return Err(Errno(libc::ENOSPC));
            }
            Ok(Set::new(perm, nsems, serial))
        },
    )?;
    if tab.ids.in_use() > before {
        tab.used_sems += nsems;
    }
    Ok(id as u64)
}

pub fn semop(t: &mut TaskState, regs: &mut UserRegs, a: [u64; 6]) -> SysResult {
    semtimedop(t, regs, [a[0], a[1], a[2], 0, 0, 0])
}

#[derive(Clone, Copy)]
struct Op {
    num: u16,
    op: i16,
    flg: i16,
}

/// What trying the operations gave.
enum Try {
    Done,
    /// Operation `i` would block.
    Block(usize),
}

/// Linux's perform_atomic_semop: all or nothing.
fn attempt(set: &mut Set, undo: Option<&mut Undo>, ops: &[Op], pid: i32) -> Result<Try, Errno> {
    let mut vals: Vec<i32> = set.sems.iter().map(|s| s.val).collect();
    let mut adj: Option<Vec<i32>> = undo.as_ref().map(|u| u.adj.clone());
    for (i, o) in ops.iter().enumerate() {
        let cur = vals[o.num as usize];
        if o.op == 0 {
            if cur != 0 {
                return block(o, i);
            }
            continue;
        }
        let result = cur + o.op as i32;
        if result < 0 {
            return block(o, i);
        }
        if result > limits::SEMVMX {
            return Err(Errno::ERANGE);
        }
        if o.flg & SEM_UNDO != 0 {
            if let Some(adj) = adj.as_mut() {
                let a = adj[o.num as usize] - o.op as i32;
                if !(-limits::SEMAEM - 1..=limits::SEMAEM).contains(&a) {
                    return Err(Errno::ERANGE);
                }
                adj[o.num as usize] = a;
            }
        }
        vals[o.num as usize] = result;
    }
    for o in ops {
        set.sems[o.num as usize].pid = pid;
    }
    for (s, v) in set.sems.iter_mut().zip(vals) {
        s.val = v;
    }
    if let (Some(u), Some(adj)) = (undo, adj) {
        u.adj = adj;
    }
    set.otime = crate::ipc::now();
    Ok(Try::Done)
}

fn block(o: &Op, i: usize) -> Result<Try, Errno> {
    if o.flg as i32 & IPC_NOWAIT != 0 {
        Err(Errno::EAGAIN)
    } else {
        Ok(Try::Block(i))
    }
}

pub fn semtimedop(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (id, sops, nsops, timeout) = (a[0] as i32, a[1], a[2], a[3]);
    let timeout = if timeout != 0 {
        let mut b = [0u8; 16];
        t.mm.copy_in(timeout, &mut b)?;
        Some((
            crate::ipc::u64_at(&b, 0) as i64,
            crate::ipc::u64_at(&b, 8) as i64,
        ))
    } else {
        None
    };
    if nsops < 1 || id < 0 || nsops > i32::MAX as u64 {
        return Err(Errno::EINVAL);
    }
    // One look at the namespace per call (a lock and a copy): semop is a hot path.
    let ns = t.process.namespaces().ipc.ns;
    if nsops as usize > ns.tunables.semopm() {
        return Err(Errno::E2BIG);
    }
    let mut raw = vec![0u8; nsops as usize * 6];
    t.mm.copy_in(sops, &mut raw)?;
    let ops: Vec<Op> = raw
        .chunks_exact(6)
        .map(|c| Op {
            num: u16::from_le_bytes([c[0], c[1]]),
            op: i16::from_le_bytes([c[2], c[3]]),
            flg: i16::from_le_bytes([c[4], c[5]]),
        })
        .collect();
    let deadline = match timeout {
        Some((sec, nsec)) => {
            if sec < 0 || !(0..1_000_000_000).contains(&nsec) {
                return Err(Errno::EINVAL);
            }
            Some(Instant::now() + Duration::new(sec as u64, nsec as u32))
        }
        None => None,
    };
    let max = ops.iter().map(|o| o.num).max().unwrap_or(0) as usize;
    let undos = ops.iter().any(|o| o.flg & SEM_UNDO != 0);
    if undos {
        // Linux makes the process's undo list here, before it looks the set up.
        t.group
            .sem_undo_list
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let alter = ops.iter().any(|o| o.op != 0);
    let mut serial = None;
    let mut reg: Option<fs::waiter::Registration> = None;
    let mut timed_out = false;
    let ticket = {
        let mut tab = lock(&ns.sem);
        tab.next_ticket += 1;
        tab.next_ticket
    };
    let mut run = || -> SysResult {
        loop {
            let wq = {
                let mut tab = lock(&ns.sem);
                let tab = &mut *tab;
                let set = match tab.ids.get_mut(id) {
                    Ok(s) if serial.is_none_or(|x| x == s.serial) => s,
                    _ if serial.is_some() => return Err(Errno(libc::EIDRM)),
                    Err(e) => return Err(e),
                    Ok(_) => return Err(Errno::EINVAL),
                };
                if serial.is_none() {
                    serial = Some(set.serial);
                    if max >= set.sems.len() {
                        return Err(Errno::EFBIG);
                    }
                    set.perm
                        .check(&t.creds, if alter { S_IWUGO } else { S_IRUGO })?;
                }
                let undo = if undos {
                    let nsems = set.sems.len();
                    let s = set.serial;
                    let per = tab.undo.entry(t.pid).or_default();
                    let un = per.entry(id).or_insert_with(|| Undo {
                        serial: s,
                        adj: vec![0; nsems],
                    });
                    if un.serial != s {
                        *un = Undo {
                            serial: s,
                            adj: vec![0; nsems],
                        };
                    }
                    Some(un)
                } else {
                    None
                };
                match attempt(set, undo, &ops, t.pid)? {
                    Try::Done => {
                        set.waiting.retain(|w| w.ticket != ticket);
                        if alter {
                            set.wq.notify(0);
                        }
                        return Ok(0);
                    }
                    Try::Block(i) => {
                        if timed_out {
                            return Err(Errno::EAGAIN);
                        }
                        let blocked = Blocked {
                            ticket,
                            num: ops[i].num,
                            op: ops[i].op,
                        };
                        match set.waiting.iter_mut().find(|w| w.ticket == ticket) {
                            Some(w) => *w = blocked,
                            None => set.waiting.push(blocked),
                        }
                        set.wq.clone()
                    }
                }
            };
            if reg.is_none() {
                t.waiter.reset();
                reg = Some(wq.register(&t.waiter, fs::waiter::ALL_EVENTS));
                continue;
            }
            match t.waiter.wait(deadline) {
                fs::waiter::Wake::Interrupted => return Err(Errno::EINTR),
                fs::waiter::Wake::TimedOut => timed_out = true,
                fs::waiter::Wake::Notified => {}
            }
        }
    };
    let result = run();
    // No longer waiting.
    if let Ok(set) = lock(&ns.sem).ids.get_mut(id) {
        set.waiting.retain(|w| w.ticket != ticket);
    }
    result
}

pub fn semctl(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (id, num, cmd, arg) = (a[0] as i32, a[1] as i32, a[2] as i32, a[3]);
    if id < 0 || cmd < 0 {
        return Err(Errno::EINVAL);
    }
    let ns = t.process.namespaces().ipc.ns;
    match cmd {
        IPC_INFO | SEM_INFO => {
            let mut b = [0u8; 40];
            let max = {
                let tab = lock(&ns.sem);
                let (usz, aem) = if cmd == SEM_INFO {
                    (tab.ids.in_use() as u32, tab.used_sems as u32)
                } else {
                    (SEMUSZ, limits::SEMAEM as u32)
                };
                let tun = &ns.tunables;
                // semmap semmni semmns semmnu semmsl semopm semume semusz semvmx semaem:
                // semmap, semmnu and semume are Linux's fixed SEMMAP, SEMMNU and SEMUME,
                // whatever the namespace's limits (semctl_info).
                let vals = [
                    limits::SEMMNS as u32,
                    tun.semmni() as u32,
                    tun.semmns() as u32,
                    limits::SEMMNS as u32,
                    tun.semmsl() as u32,
                    tun.semopm() as u32,
                    limits::SEMOPM as u32,
                    usz,
                    limits::SEMVMX as u32,
                    aem,
                ];
                for (i, v) in vals.iter().enumerate() {
                    put_u32(&mut b, i * 4, *v);
                }
                tab.ids.max_idx()
            };
            t.mm.copy_out(arg, &b)?;
            Ok(max.max(0) as u64)
        }
        IPC_STAT | SEM_STAT | SEM_STAT_ANY => {
            let (ret, bytes) = {
                let tab = lock(&ns.sem);
                let (ret, set) = if cmd == IPC_STAT {
                    (0, tab.ids.get(id)?)
                } else {
                    tab.ids.by_idx(id)?
                };
                if cmd != SEM_STAT_ANY {
                    set.perm.check(&t.creds, S_IRUGO)?;
                }
                (ret, crate::ipc::perm_seen(set.to_bytes(), &t.creds.user_ns))
            };
            t.mm.copy_out(arg, &bytes)?;
            Ok(ret as u64)
        }
        IPC_SET => {
            let mut b = [0u8; crate::ipc::sem::DS_SIZE];
            t.mm.copy_in(arg, &mut b)?;
            let mut tab = lock(&ns.sem);
            let set = tab.ids.get_mut(id)?;
            set.perm.check_owner(&t.creds)?;
            set.perm.set_from(&b, &t.creds.user_ns)?;
            set.ctime = crate::ipc::now();
            Ok(0)
        }
        IPC_RMID => {
            let mut tab = lock(&ns.sem);
            tab.ids.get(id)?.perm.check_owner(&t.creds)?;
            tab.remove(id);
            Ok(0)
        }
        GETALL => {
            let vals: Vec<u8> = {
                let tab = lock(&ns.sem);
                let set = tab.ids.get(id)?;
                set.perm.check(&t.creds, S_IRUGO)?;
                set.sems
                    .iter()
                    .flat_map(|s| (s.val as u16).to_le_bytes())
                    .collect()
            };
            t.mm.copy_out(arg, &vals)?;
            Ok(0)
        }
        SETALL => {
            let nsems = {
                let tab = lock(&ns.sem);
                let set = tab.ids.get(id)?;
                set.perm.check(&t.creds, S_IWUGO)?;
                set.sems.len()
            };
            let mut raw = vec![0u8; nsems * 2];
            t.mm.copy_in(arg, &mut raw)?;
            let vals: Vec<u16> = raw
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .collect();
            if vals.iter().any(|&v| v as i32 > limits::SEMVMX) {
                return Err(Errno::ERANGE);
            }
            let mut tab = lock(&ns.sem);
            let set = tab.ids.get_mut(id)?;
            if set.sems.len() != nsems {
                return Err(Errno(libc::EIDRM));
            }
            for (s, v) in set.sems.iter_mut().zip(vals) {
                s.val = v as i32;
                s.pid = t.pid;
            }
            set.ctime = crate::ipc::now();
            set.wq.notify(0);
            let serial = set.serial;
            tab.clear_undo(id, serial, None);
            Ok(0)
        }
        GETVAL | GETPID | GETNCNT | GETZCNT => {
            let tab = lock(&ns.sem);
            let set = tab.ids.get(id)?;
            set.perm.check(&t.creds, S_IRUGO)?;
            if num < 0 || num as usize >= set.sems.len() {
                return Err(Errno::EINVAL);
            }
            let s = set.sems[num as usize];
            Ok(match cmd {
                GETVAL => s.val as u64,
                GETPID => s.pid as u64,
                GETNCNT => set.count_waiting(num as usize, false) as u64,
                _ => set.count_waiting(num as usize, true) as u64,
            })
        }
        SETVAL => {
            let val = arg as i32;
            if !(0..=limits::SEMVMX).contains(&val) {
                return Err(Errno::ERANGE);
            }
            let mut tab = lock(&ns.sem);
            let set = tab.ids.get_mut(id)?;
            if num < 0 || num as usize >= set.sems.len() {
                return Err(Errno::EINVAL);
            }
            set.perm.check(&t.creds, S_IWUGO)?;
            set.sems[num as usize] = crate::ipc::sem::Sem { val, pid: t.pid };
            set.ctime = crate::ipc::now();
            set.wq.notify(0);
            let serial = set.serial;
            tab.clear_undo(id, serial, Some(num as usize));
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}
