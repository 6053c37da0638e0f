//! System V message queues: msgget, msgsnd, msgrcv, msgctl (the queues: `crate::ipc::msg`).
//!
//! A sender waiting for room and a receiver waiting for a message sleep on the queue's wait
//! queue with the task's waiter, as poll does: a signal ends the wait (ERESTARTNOHAND, so
//! EINTR when a handler runs, SA_RESTART or not, as Linux), and removing the queue wakes
//! them with EIDRM.

use platform::UserRegs;

use crate::caps::{capable, Cap};
use crate::errno::{Errno, SysResult};
use crate::ipc::msg::{self, find, Message, Queue, Search};
use crate::ipc::{
    limits, lock, put_u32, u64_at, Ids, IPC_INFO, IPC_NOWAIT, IPC_RMID, IPC_SET, IPC_STAT,
};
use crate::task::TaskState;

const MSG_STAT: i32 = 11;
const MSG_INFO: i32 = 12;
const MSG_STAT_ANY: i32 = 13;
const MSG_NOERROR: i32 = 0o10000;
const MSG_EXCEPT: i32 = 0o20000;
const MSG_COPY: i32 = 0o40000;

const S_IRUGO: u32 = 0o444;
const S_IWUGO: u32 = 0o222;

/// MSGSSZ and MSGSEG (Linux's msginfo constants).
const MSGSSZ: u32 = 16;
const MSGSEG: u32 = 0xffff;

pub fn msgget(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (key, flags) = (a[0] as i32, a[1] as i32);
    let ns = t.process.namespaces().ipc.ns;
    let mut ids = lock(&ns.msg);
    let id = ids.get_or_create(
        key,
        flags,
        &t.creds,
        ns.tunables.msgmni(),
        |_| Ok(()),
        |perm, _, serial| Ok(Queue::new(perm, serial, ns.tunables.msgmnb() as u64)),
    )?;
    Ok(id as u64)
}

/// The queue `id` as the waiter first saw it (`serial`): EINVAL for a bad identifier, EIDRM
/// once the queue it waited on is gone.
fn queue<'a>(
    ids: &'a mut Ids<Queue>,
    id: i32,
    serial: &mut Option<u64>,
) -> Result<&'a mut Queue, Errno> {
    match ids.get_mut(id) {
        Ok(q) if serial.is_none_or(|s| s == q.serial) => {
            *serial = Some(q.serial);
            Ok(q)
        }
        _ if serial.is_some() => Err(Errno(libc::EIDRM)),
        Err(e) => Err(e),
        Ok(_) => Err(Errno::EINVAL),
    }
}

/// Sleeps on `wq` (registering on the first call) until told; ERESTARTNOHAND on a signal.
fn wait(
    t: &TaskState,
    wq: &fs::waiter::WaitQueue,
    reg: &mut Option<fs::waiter::Registration>,
) -> Result<bool, Errno> {
    if reg.is_none() {
        t.waiter.reset();
        *reg = Some(wq.register(&t.waiter, fs::waiter::ALL_EVENTS));
        // Check again before sleeping: the change may have come before registering.
        return Ok(false);
    }
    match t.waiter.wait(None) {
        fs::waiter::Wake::Interrupted => Err(Errno(fs::waiter::ERESTARTNOHAND)),
        _ => Ok(true),
    }
}

pub fn msgsnd(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (id, msgp, size, flags) = (a[0] as i32, a[1], a[2], a[3] as i32);
    let mtype = t.mm.read_u64(msgp)? as i64;
    let ns = t.process.namespaces().ipc.ns;
    if size > ns.tunables.msgmax() as u64 || id < 0 {
        return Err(Errno::EINVAL);
    }
    if mtype < 1 {
        return Err(Errno::EINVAL);
    }
    let mut data = vec![0u8; size as usize];
    t.mm.copy_in(msgp.checked_add(8).ok_or(Errno::EFAULT)?, &mut data)?;
    let mut serial = None;
    let mut reg = None;
    let mut data = Some(data);
    loop {
        let wq = {
            let mut ids = lock(&ns.msg);
            let (total_bytes, total_msgs) = ids.iter().fold((0, 0), |(b, m), (_, q)| {
                (b + q.cbytes as usize, m + q.messages.len())
            });
            let q = queue(&mut ids, id, &mut serial)?;
            q.perm.check(&t.creds, S_IWUGO)?;
            if q.fits(size)
                && total_bytes + size as usize <= msg::TOTAL_BYTES
                && total_msgs < msg::TOTAL_MESSAGES
            {
                let data = data.take().expect("sent once");
                q.cbytes += data.len() as u64;
                q.messages.push_back(Message { mtype, data });
                q.stime = crate::ipc::now();
                q.lspid = t.pid;
                q.wq.notify(fs::waiter::POLLIN);
                return Ok(0);
            }
            if flags & IPC_NOWAIT != 0 {
                return Err(Errno::EAGAIN);
            }
            q.wq.clone()
        };
        wait(t, &wq, &mut reg)?;
    }
}

pub fn msgrcv(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (id, msgp, size, msgtyp, flags) = (a[0] as i32, a[1], a[2], a[3] as i64, a[4] as i32);
    if id < 0 || (size as i64) < 0 {
        return Err(Errno::EINVAL);
    }
    if flags & MSG_COPY != 0 && (flags & MSG_EXCEPT != 0 || flags & IPC_NOWAIT == 0) {
        return Err(Errno::EINVAL);
    }
    let search = if flags & MSG_COPY != 0 {
        Search::Number(msgtyp)
    } else if msgtyp == 0 {
        Search::Any
    } else if msgtyp < 0 {
        Search::LessEqual(if msgtyp == i64::MIN {
            i64::MAX
        } else {
            -msgtyp
        })
    } else if flags & MSG_EXCEPT != 0 {
        Search::NotEqual(msgtyp)
    } else {
        Search::Equal(msgtyp)
    };
    let ns = t.process.namespaces().ipc.ns;
    let mut serial = None;
    let mut reg = None;
    let message = loop {
        let wq = {
            let mut ids = lock(&ns.msg);
            let q = queue(&mut ids, id, &mut serial)?;
            q.perm.check(&t.creds, S_IRUGO)?;
            if let Some(i) = find(q, search) {
                let len = q.messages[i].data.len() as u64;
                if size < len && flags & MSG_NOERROR == 0 {
                    return Err(Errno::E2BIG);
                }
                if flags & MSG_COPY != 0 {
                    if len > size.min(ns.tunables.msgmax() as u64) {
                        return Err(Errno::EINVAL);
                    }
                    let m = &q.messages[i];
                    break Message {
                        mtype: m.mtype,
                        data: m.data.clone(),
                    };
                }
                let m = q.messages.remove(i).expect("found");
                q.cbytes -= len;
                q.rtime = crate::ipc::now();
                q.lrpid = t.pid;
                q.wq.notify(fs::waiter::POLLOUT);
                break m;
            }
            if flags & IPC_NOWAIT != 0 {
                return Err(Errno(libc::ENOMSG));
            }
            q.wq.clone()
        };
        wait(t, &wq, &mut reg)?;
    };
    // As Linux: a message that can't be stored is lost.
    let n = (message.data.len() as u64).min(size) as usize;
    t.mm.copy_out(msgp, &message.mtype.to_le_bytes())?;
    t.mm.copy_out(
        msgp.checked_add(8).ok_or(Errno::EFAULT)?,
        &message.data[..n],
    )?;
    Ok(n as u64)
}

pub fn msgctl(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (id, cmd, buf) = (a[0] as i32, a[1] as i32, a[2]);
    if cmd < 0 || id < 0 {
        return Err(Errno::EINVAL);
    }
    let ns = t.process.namespaces().ipc.ns;
    match cmd {
        IPC_INFO | MSG_INFO => {
            // struct msginfo.
            let mut b = [0u8; 32];
            let max = {
                let ids = lock(&ns.msg);
                let (pool, map, tql) = if cmd == MSG_INFO {
                    let (bytes, msgs) = ids.iter().fold((0u64, 0u64), |(b, m), (_, q)| {
                        (b + q.cbytes, m + q.messages.len() as u64)
                    });
                    (
                        ids.in_use() as u32,
                        msgs.min(i32::MAX as u64) as u32,
                        bytes.min(i32::MAX as u64) as u32,
                    )
                } else {
                    // Linux's fixed MSGPOOL, MSGMAP and MSGTQL, whatever the namespace's
                    // limits (msgctl_info).
                    let pool = (limits::MSGMNI * limits::MSGMNB / 1024) as u32;
                    (pool, limits::MSGMNB as u32, limits::MSGMNB as u32)
                };
                put_u32(&mut b, 0, pool);
                put_u32(&mut b, 4, map);
                put_u32(&mut b, 8, ns.tunables.msgmax() as u32);
                put_u32(&mut b, 12, ns.tunables.msgmnb() as u32);
                put_u32(&mut b, 16, ns.tunables.msgmni() as u32);
                put_u32(&mut b, 20, MSGSSZ);
                put_u32(&mut b, 24, tql);
                b[28..30].copy_from_slice(&(MSGSEG as u16).to_le_bytes());
                ids.max_idx()
            };
            t.mm.copy_out(buf, &b)?;
            Ok(max.max(0) as u64)
        }
        MSG_STAT | MSG_STAT_ANY | IPC_STAT => {
            let (ret, bytes) = {
                let ids = lock(&ns.msg);
                let (ret, q) = if cmd == IPC_STAT {
                    (0, ids.get(id)?)
                } else {
                    ids.by_idx(id)?
                };
                if cmd != MSG_STAT_ANY {
                    q.perm.check(&t.creds, S_IRUGO)?;
                }
                (ret, crate::ipc::perm_seen(q.to_bytes(), &t.creds.user_ns))
            };
            t.mm.copy_out(buf, &bytes)?;
            Ok(ret as u64)
        }
        IPC_SET => {
            let mut b = [0u8; msg::DS_SIZE];
            t.mm.copy_in(buf, &mut b)?;
            let qbytes = u64_at(&b, 88);
            let mut ids = lock(&ns.msg);
            let q = ids.get_mut(id)?;
            q.perm.check_owner(&t.creds)?;
            if qbytes > ns.tunables.msgmnb() as u64 && !capable(&t.creds, Cap::SysResource) {
                return Err(Errno::EPERM);
            }
            q.perm.set_from(&b, &t.creds.user_ns)?;
            q.qbytes = qbytes;
            q.ctime = crate::ipc::now();
            // Room may have appeared.
            q.wq.notify(0);
            Ok(0)
        }
        IPC_RMID => {
            let mut ids = lock(&ns.msg);
            ids.get(id)?.perm.check_owner(&t.creds)?;
            if let Some(q) = ids.remove(id) {
                q.wq.notify(0);
            }
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}
