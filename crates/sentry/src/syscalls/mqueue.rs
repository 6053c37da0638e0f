//! POSIX message queues: mq_open, mq_unlink, mq_timedsend, mq_timedreceive, mq_notify,
//! mq_getsetattr (the queues: `crate::ipc::mqueue`). Waits sleep on the queue's wait
//! queue with the task's waiter; a signal gives ERESTARTSYS (restarted under SA_RESTART,
//! as Linux), the absolute CLOCK_REALTIME timeout ETIMEDOUT.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fs::vfs::OpenFile;
use platform::UserRegs;

use crate::caps::{capable, Cap};
use crate::errno::{Errno, SysResult};
use crate::ipc::mqueue::{self as mq, MqFile, Notify, Queue};
use crate::ipc::{limits, lock};
use crate::task::TaskState;

const NAME_MAX: usize = 255;
const SIGEV_SIGNAL: i32 = 0;
const SIGEV_NONE: i32 = 1;
const SIGEV_THREAD: i32 = 2;

fn read_name(t: &TaskState, addr: u64) -> Result<Vec<u8>, Errno> {
    check_name(copy_name(t, addr)?)
}

/// The name as getname copies it (EFAULT, ENAMETOOLONG).
fn copy_name(t: &TaskState, addr: u64) -> Result<Vec<u8>, Errno> {
    let name = t.mm.copy_in_cstring(addr, libc::PATH_MAX as usize)?;
    if name.len() >= libc::PATH_MAX as usize {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(name)
}

/// The name as a lookup in the mqueue file system's root takes it (lookup_one_len).
fn check_name(name: Vec<u8>) -> Result<Vec<u8>, Errno> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(Errno::EACCES);
    }
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(name)
}

/// `struct mq_attr`: flags, maxmsg, msgsize, curmsgs.
fn read_attr(t: &TaskState, addr: u64) -> Result<[i64; 4], Errno> {
    let mut b = [0u8; 64];
    t.mm.copy_in(addr, &mut b)?;
    let f = |i: usize| i64::from_le_bytes(b[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    Ok([f(0), f(1), f(2), f(3)])
}

fn write_attr(t: &TaskState, addr: u64, attr: [i64; 4]) -> Result<(), Errno> {
    let mut b = [0u8; 64];
    for (i, v) in attr.iter().enumerate() {
        b[i * 8..i * 8 + 8].copy_from_slice(&v.to_le_bytes());
    }
    t.mm.copy_out(addr, &b)
}

fn access_wanted(oflag: i32) -> u32 {
    match oflag & libc::O_ACCMODE {
        libc::O_RDONLY => 0o4,
        libc::O_WRONLY => 0o2,
        _ => 0o6,
    }
}

/// The owner/group/other permission check of a queue file.
fn permitted(t: &TaskState, q: &Queue, want: u32) -> bool {
    if capable(&t.creds, Cap::Fowner) || t.creds.euid == 0 {
        return true;
    }
    let mode = *lock(&q.mode);
    let bits = if t.creds.euid == q.uid {
        mode >> 6
    } else if t.creds.egid == q.gid || t.creds.groups.contains(&q.gid) {
        mode >> 3
    } else {
        mode
    };
    bits & want == want
}

static NEXT_INO: AtomicU64 = AtomicU64::new(1);

pub fn mq_open(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (name_addr, oflag, mode, attr_addr) = (a[0], a[1] as i32, a[2] as u32, a[3]);
    let attr = if attr_addr != 0 {
        Some(read_attr(t, attr_addr)?)
    } else {
        None
    };
    let name = copy_name(t, name_addr)?;
    // Linux's do_mq_open takes the descriptor before it looks the name up: a full table
    // is EMFILE whatever the name, and never leaves a queue made.
    if t.fds.lowest_free(0) as u64 >= super::fd::fd_limit(t) {
        return Err(Errno::EMFILE);
    }
    let name = check_name(name)?;
    let ns = t.process.namespaces().ipc.ns;
    let queue = {
        let mut queues = lock(&ns.mq.queues);
        match queues.get(&name) {
            Some(q) => {
                if oflag & libc::O_CREAT != 0 && oflag & libc::O_EXCL != 0 {
                    return Err(Errno::EEXIST);
                }
                // Only an existing queue refuses O_ACCMODE (prepare_open); a new one is
                // made and opened for neither reading nor writing, as Linux's
                // dentry_open gives it.
                if oflag & libc::O_ACCMODE == libc::O_ACCMODE {
                    return Err(Errno::EINVAL);
                }
                if !permitted(t, q, access_wanted(oflag)) {
                    return Err(Errno::EACCES);
                }
                q.clone()
            }
            None if oflag & libc::O_CREAT == 0 => return Err(Errno::ENOENT),
            None => {
                // Linux's mqueue_create_attr, then mqueue_get_inode: the number of queues
                // first (ENOSPC), then the attributes (EINVAL), then RLIMIT_MSGQUEUE
                // (EMFILE). CAP_SYS_RESOURCE passes queues_max, and may ask for up to the
                // hard limits rather than the namespace's.
                let privileged = capable(&t.creds, Cap::SysResource);
                let lim = &ns.tunables;
                let mut accounts = lock(&ns.mq.accounts);
                // Linux keeps queues_max in an unsigned int: -1 written is no limit.
                let queues_max = lim.mq_queues_max() as u32 as i64;
                if accounts.queues >= queues_max && !privileged {
                    return Err(Errno(libc::ENOSPC));
                }
                // Without attributes, the defaults, capped by the maxima.
                let (maxmsg, msgsize) = match attr {
                    Some([_, maxmsg, msgsize, _]) => (maxmsg, msgsize),
                    None => (
                        lim.mq_msg_max().min(lim.mq_msg_default()),
                        lim.mq_msgsize_max().min(lim.mq_msgsize_default()),
                    ),
                };
                if maxmsg <= 0 || msgsize <= 0 {
                    return Err(Errno::EINVAL);
                }
                let (most, most_size) = if privileged {
                    (limits::HARD_MSGMAX, limits::HARD_MSGSIZEMAX)
                } else {
                    (lim.mq_msg_max(), lim.mq_msgsize_max())
                };
                if maxmsg > most || msgsize > most_size {
                    return Err(Errno::EINVAL);
                }
                // RLIMIT_MSGQUEUE, against the bytes of the real user's queues.
                let bytes = mq::queue_bytes(maxmsg, msgsize);
                let user = t.creds.uid;
                let mine = accounts.bytes.get(&user).copied().unwrap_or(0);
                if mine.saturating_add(bytes) > t.rlimits[libc::RLIMIT_MSGQUEUE as usize].0 {
                    return Err(Errno::EMFILE);
                }
                let charge = mq::Charge::new(&ns.mq.accounts, &mut accounts, user, bytes);
                drop(accounts);
                let q = Arc::new(Queue {
                    name: name.clone(),
                    maxmsg,
                    msgsize,
                    mode: std::sync::Mutex::new(mode & 0o7777 & !t.umask),
                    uid: t.creds.euid,
                    gid: t.creds.egid,
                    ino: NEXT_INO.fetch_add(1, Ordering::Relaxed),
                    state: Default::default(),
                    wq: Default::default(),
                    charge,
                });
                queues.insert(name, q.clone());
                q
            }
        }
    };
    let status =
        (oflag as u32 & (libc::O_ACCMODE | libc::O_NONBLOCK) as u32) | libc::O_LARGEFILE as u32;
    let file = OpenFile::special(None, None, MqFile::new(queue), status);
    // Linux makes every queue descriptor close-on-exec.
    Ok(t.fds.alloc(0, file, true, super::fd::fd_limit(t))? as u64)
}

pub fn mq_unlink(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let name = read_name(t, a[0])?;
    let ns = t.process.namespaces().ipc.ns;
    let mut queues = lock(&ns.mq.queues);
    let q = queues.get(&name).ok_or(Errno::ENOENT)?;
    // The root directory is sticky: the owner (or CAP_FOWNER) removes.
    if t.creds.euid != q.uid && !capable(&t.creds, Cap::Fowner) {
        return Err(Errno::EPERM);
    }
    queues.remove(&name);
    Ok(0)
}

/// The queue behind descriptor `fd`, and the descriptor's status flags (EBADF if it isn't one).
fn queue_of(t: &TaskState, fd: u64) -> Result<(Arc<OpenFile>, Arc<Queue>), Errno> {
    let file = t.fds.get(fd)?;
    let q = file
        .special_desc()
        .and_then(|d| d.as_any())
        .and_then(|a| a.downcast_ref::<MqFile>())
        .map(|m| m.queue.clone())
        .ok_or(Errno::EBADF)?;
    Ok((file, q))
}

/// An absolute CLOCK_REALTIME timeout as a deadline (EFAULT, EINVAL as Linux).
fn deadline(t: &TaskState, addr: u64) -> Result<Option<Instant>, Errno> {
    if addr == 0 {
        return Ok(None);
    }
    let ts = super::time::read_timespec(t, addr)?;
    let (sec, nsec) = (ts.tv_sec, ts.tv_nsec);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let left = Duration::new(sec as u64, nsec as u32).saturating_sub(now);
    Ok(Some(Instant::now() + left))
}

/// Waits for the queue to change; false once the deadline passed.
fn wait(
    t: &TaskState,
    q: &Queue,
    reg: &mut Option<fs::waiter::Registration>,
    deadline: Option<Instant>,
) -> Result<(), Errno> {
    if reg.is_none() {
        t.waiter.reset();
        *reg = Some(q.wq.register(&t.waiter, fs::waiter::ALL_EVENTS));
        return Ok(());
    }
    match t.waiter.wait(deadline) {
        fs::waiter::Wake::Interrupted => Err(Errno(fs::waiter::ERESTARTSYS)),
        fs::waiter::Wake::TimedOut => Err(Errno(libc::ETIMEDOUT)),
        fs::waiter::Wake::Notified => Ok(()),
    }
}

pub fn mq_timedsend(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (fd, ptr, len, prio, timeout) = (a[0], a[1], a[2], a[3] as u32, a[4]);
    let deadline = deadline(t, timeout)?;
    if a[3] >= mq::MQ_PRIO_MAX as u64 {
        return Err(Errno::EINVAL);
    }
    let (file, q) = queue_of(t, fd)?;
    if !file.writable() {
        return Err(Errno::EBADF);
    }
    if len > q.msgsize as u64 {
        return Err(Errno(libc::EMSGSIZE));
    }
    let mut data = vec![0u8; len as usize];
    t.mm.copy_in(ptr, &mut data)?;
    let nonblock = file.flags() & libc::O_NONBLOCK as u32 != 0;
    let ns = t.process.namespaces().ipc.ns;
    let mut reg = None;
    let mut data = Some(data);
    loop {
        let total = ns.mq.total_bytes();
        {
            let mut st = lock(&q.state);
            if st.count < q.maxmsg && total + len <= mq::TOTAL_BYTES as u64 {
                let d = data.take().expect("sent once");
                q.push(&mut st, d, prio, (t.pid, t.creds.uid));
                return Ok(0);
            }
        }
        if nonblock {
            return Err(Errno::EAGAIN);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(Errno(libc::ETIMEDOUT));
        }
        wait(t, &q, &mut reg, deadline)?;
    }
}

pub fn mq_timedreceive(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (fd, ptr, len, prio_ptr, timeout) = (a[0], a[1], a[2], a[3], a[4]);
    let deadline = deadline(t, timeout)?;
    let (file, q) = queue_of(t, fd)?;
    if !file.readable() {
        return Err(Errno::EBADF);
    }
    if len < q.msgsize as u64 {
        return Err(Errno(libc::EMSGSIZE));
    }
    let nonblock = file.flags() & libc::O_NONBLOCK as u32 != 0;
    let mut reg = None;
    let mut counted = false;
    let result = loop {
        {
            let mut st = lock(&q.state);
            if let Some(m) = q.pop(&mut st) {
                break Ok(m);
            }
            if !counted && !nonblock {
                st.receivers += 1;
                counted = true;
            }
        }
        if nonblock {
            break Err(Errno::EAGAIN);
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break Err(Errno(libc::ETIMEDOUT));
        }
        if let Err(e) = wait(t, &q, &mut reg, deadline) {
            break Err(e);
        }
    };
    if counted {
        lock(&q.state).receivers -= 1;
    }
    let (data, prio) = result?;
    t.mm.copy_out(ptr, &data)?;
    if prio_ptr != 0 {
        t.mm.copy_out(prio_ptr, &prio.to_le_bytes())?;
    }
    Ok(data.len() as u64)
}

pub fn mq_notify(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (fd, sevp) = (a[0], a[1]);
    let ev = if sevp != 0 {
        let mut b = [0u8; 64];
        t.mm.copy_in(sevp, &mut b)?;
        let value = u64::from_le_bytes(b[0..8].try_into().expect("8 bytes"));
        let signo = i32::from_le_bytes(b[8..12].try_into().expect("4 bytes"));
        let notify = i32::from_le_bytes(b[12..16].try_into().expect("4 bytes"));
        match notify {
            SIGEV_NONE => Some((SIGEV_NONE, 0, value)),
            SIGEV_SIGNAL => {
                // Linux's valid_signal: 0 passes (and then nothing is sent).
                if !(0..=crate::signal::NSIG as i32).contains(&signo) {
                    return Err(Errno::EINVAL);
                }
                Some((SIGEV_SIGNAL, signo, value))
            }
            // glibc's SIGEV_THREAD hands the kernel a netlink socket, which the sandbox
            // doesn't have for this.
            SIGEV_THREAD => return Err(Errno::EINVAL),
            _ => return Err(Errno::EINVAL),
        }
    } else {
        None
    };
    let (_, q) = queue_of(t, fd)?;
    let mut st = lock(&q.state);
    match ev {
        None => {
            if st.notify.as_ref().is_some_and(|n| n.pid == t.pid) {
                st.notify = None;
            }
        }
        Some((kind, signo, value)) => {
            if let Some(n) = &st.notify {
                if n.group.strong_count() > 0 {
                    return Err(Errno::EBUSY);
                }
            }
            st.notify = Some(Notify {
                group: Arc::downgrade(&t.group),
                pid: t.pid,
                kind,
                signo,
                value,
            });
        }
    }
    Ok(0)
}

pub fn mq_getsetattr(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (fd, new, old) = (a[0], a[1], a[2]);
    let new = if new != 0 {
        let attr = read_attr(t, new)?;
        if attr[0] & !(libc::O_NONBLOCK as i64) != 0 {
            return Err(Errno::EINVAL);
        }
        Some(attr)
    } else {
        None
    };
    let (file, q) = queue_of(t, fd)?;
    let flags = file.flags();
    let count = lock(&q.state).count;
    let before = [
        (flags & libc::O_NONBLOCK as u32) as i64,
        q.maxmsg,
        q.msgsize,
        count,
    ];
    if let Some(attr) = new {
        let nb = if attr[0] & libc::O_NONBLOCK as i64 != 0 {
            libc::O_NONBLOCK as u32
        } else {
            0
        };
        file.set_flags((flags & !(libc::O_NONBLOCK as u32)) | nb);
    }
    if old != 0 {
        write_attr(t, old, before)?;
    }
    Ok(0)
}
