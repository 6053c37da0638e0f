//! Process descriptors and cross-process memory: pidfd_open, pidfd_send_signal,
//! pidfd_getfd, process_vm_readv and process_vm_writev, within the sandbox.

use std::sync::{Arc, Weak};

use fs::vfs::OpenFile;
use fs::waiter::{WaitQueue, POLLIN, POLLRDNORM};
use fs::{Errno as FsErrno, FileDescription, Stat};
use platform::UserRegs;

use super::sigsend::{queued_info, send_to_process, sender_info};
use crate::errno::{Errno, SysResult};
use crate::process::{Kernel, ProcessSet, Recipient};
use crate::ptrace::AccessMode;
use crate::task::TaskState;

/// A process descriptor: names one process for its life; readable (POLLIN) once it ended.
pub struct PidFd {
    pid: i32,
    kernel: Weak<Kernel>,
    exits: WaitQueue,
}

impl PidFd {
    fn ended(&self) -> bool {
        self.kernel
            .upgrade()
            .is_none_or(|k| k.alive(self.pid) != Some(true))
    }
}

impl FileDescription for PidFd {
    fn read(&self, _: &mut [u8]) -> Result<usize, FsErrno> {
        Err(libc::EINVAL)
    }

    fn write(&self, _: &[u8]) -> Result<usize, FsErrno> {
        Err(libc::EINVAL)
    }

    fn stat(&self) -> Result<Stat, FsErrno> {
        Ok(Stat {
            // anon_inodefs, as before Linux 6.9's pidfs.
            dev: fs::dev::makedev(0, 13),
            ino: 1,
            nlink: 1,
            mode: 0o600,
            blksize: 4096,
            ..Default::default()
        })
    }

    fn may_block(&self) -> bool {
        false
    }

    fn readiness(&self, mask: u32) -> u32 {
        if self.ended() {
            (POLLIN | POLLRDNORM) & mask
        } else {
            0
        }
    }

    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.exits)
    }

    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

/// PIDFD_NONBLOCK (O_NONBLOCK).
const PIDFD_NONBLOCK: u64 = libc::O_NONBLOCK as u64;

pub fn pidfd_open(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (pid, flags) = (a[0] as i32, a[1]);
    if flags & !PIDFD_NONBLOCK != 0 || pid <= 0 {
        return Err(Errno::EINVAL);
    }
    let pid = crate::namespaces::pid_global(&t.process, pid).ok_or(Errno::ESRCH)?;
    if t.kernel.alive(pid).is_none() {
        // A thread's id: a pidfd names a process (PIDFD_THREAD isn't supported).
        return Err(if t.kernel.thread_owner(pid).is_some() {
            Errno::EINVAL
        } else {
            Errno::ESRCH
        });
    }
    Ok(new_pidfd(t, pid, flags & PIDFD_NONBLOCK != 0)? as u64)
}

/// A close-on-exec pidfd for process `pid` at the caller's lowest free descriptor
/// (pidfd_open, clone's CLONE_PIDFD).
pub(super) fn new_pidfd(t: &mut TaskState, pid: i32, nonblock: bool) -> Result<i32, Errno> {
    let desc = Arc::new(PidFd {
        pid,
        kernel: Arc::downgrade(&t.kernel),
        exits: t.kernel.exits.clone(),
    });
    let status = libc::O_RDWR as u32 | if nonblock { libc::O_NONBLOCK as u32 } else { 0 };
    let file = OpenFile::special(None, None, desc, status);
    let limit = super::fd::fd_limit(t);
    t.fds.alloc(0, file, true, limit)
}

/// The process a pidfd names.
pub(super) fn pidfd_target(t: &TaskState, fd: u64) -> Result<i32, Errno> {
    let file = t.fds.get(fd)?;
    file.special_desc()
        .and_then(|d| d.as_any())
        .and_then(|a| a.downcast_ref::<PidFd>())
        .map(|p| p.pid)
        .ok_or(Errno::EBADF)
}

pub fn pidfd_send_signal(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (fd, sig, info_addr, flags) = (a[0], a[1] as i32, a[2], a[3]);
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let pid = pidfd_target(t, fd)?;
    if !(0..=crate::signal::NSIG as i32).contains(&sig) {
        return Err(Errno::EINVAL);
    }
    let info = if info_addr != 0 {
        let info = queued_info(t, info_addr, sig, pid == t.pid)?;
        let mut b = [0u8; 4];
        t.mm.copy_in(info_addr, &mut b)?;
        if i32::from_le_bytes(b) != sig {
            return Err(Errno::EINVAL);
        }
        info
    } else {
        sender_info(t, sig, 0)
    };
    let target = t
        .kernel
        .recipients(ProcessSet::Pid(pid))
        .pop()
        .ok_or(Errno::ESRCH)?;
    send_to_process(t, &target, info)?;
    Ok(0)
}

/// Linux's ptrace_may_access(`mode`) of the caller against `target`
/// ([`crate::ptrace::may_access_process`]).
pub(super) fn may_access(t: &TaskState, target: &Recipient, mode: AccessMode) -> bool {
    crate::ptrace::may_access_process(&t.kernel, t.pid, &t.creds, target.group.pid, mode)
}

pub fn pidfd_getfd(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (fd, target_fd, flags) = (a[0], a[1], a[2]);
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let pid = pidfd_target(t, fd)?;
    let target = t
        .kernel
        .recipients(ProcessSet::Pid(pid))
        .pop()
        .ok_or(Errno::ESRCH)?;
    if !may_access(t, &target, AccessMode::ATTACH_REALCREDS) {
        return Err(Errno::EPERM);
    }
    // A process that ended has closed its files: ESRCH, as Linux's for an exiting task.
    if target.zombie {
        return Err(Errno::ESRCH);
    }
    let table = t
        .kernel
        .procfs
        .process(pid)
        .and_then(|p| p.fd_table())
        .ok_or(Errno::ESRCH)?;
    let file = table.get(target_fd)?;
    let limit = super::fd::fd_limit(t);
    Ok(t.fds.alloc(0, file, true, limit)? as u64)
}

/// The process of task `id` (a process's or a thread's id in the sandbox), zombies
/// included; ESRCH if none.
pub(super) fn owner_of(t: &TaskState, id: i32) -> Result<Recipient, Errno> {
    if t.kernel.alive(id).is_some() {
        t.kernel.recipients(ProcessSet::Pid(id)).pop()
    } else {
        t.kernel.thread_owner(id)
    }
    .ok_or(Errno::ESRCH)
}

/// Linux's UIO_MAXIOV.
const IOV_MAX: u64 = 1024;

/// Reads an iovec array: (address, length) pairs.
fn iovecs(t: &TaskState, addr: u64, count: u64) -> Result<Vec<(u64, u64)>, Errno> {
    if count > IOV_MAX {
        return Err(Errno::EINVAL);
    }
    let mut b = vec![0u8; count as usize * 16];
    t.mm.copy_in(addr, &mut b)?;
    let v: Vec<(u64, u64)> = b
        .chunks_exact(16)
        .map(|c| {
            (
                u64::from_le_bytes(c[..8].try_into().expect("8 bytes")),
                u64::from_le_bytes(c[8..].try_into().expect("8 bytes")),
            )
        })
        .collect();
    let mut total: u64 = 0;
    for &(_, len) in &v {
        total = total.checked_add(len).ok_or(Errno::EINVAL)?;
        if total > isize::MAX as u64 {
            return Err(Errno::EINVAL);
        }
    }
    Ok(v)
}

/// Copies between the caller's `local` iovecs and process `pid`'s `remote` ones, in order,
/// a page at most at a time. Returns the bytes moved; a fault ends the copy (EFAULT if
/// nothing moved), as Linux's process_vm_rw_core.
fn process_vm(t: &mut TaskState, a: [u64; 6], write: bool) -> SysResult {
    let (pid, lvec, lcnt, rvec, rcnt, flags) = (a[0] as i32, a[1], a[2], a[3], a[4], a[5]);
    if flags != 0 {
        return Err(Errno::EINVAL);
    }
    let local = iovecs(t, lvec, lcnt)?;
    let remote = iovecs(t, rvec, rcnt)?;
    let pid = crate::namespaces::pid_global(&t.process, pid).ok_or(Errno::ESRCH)?;
    let owner = owner_of(t, pid)?;
    if !may_access(t, &owner, AccessMode::ATTACH_REALCREDS) {
        return Err(Errno::EPERM);
    }
    let mm = t
        .kernel
        .procfs
        .process(owner.group.pid)
        .and_then(|p| p.image().mm.upgrade())
        .filter(|_| !owner.zombie)
        .ok_or(Errno::ESRCH)?;
    const PAGE: u64 = 4096;
    let mut moved: u64 = 0;
    let mut li = local.iter().copied().filter(|&(_, l)| l > 0);
    let mut cur = li.next();
    let mut buf = vec![0u8; PAGE as usize];
    'outer: for (raddr, rlen) in remote {
        let mut done = 0;
        while done < rlen {
            let Some((laddr, llen)) = cur else {
                break 'outer;
            };
            // Up to the end of the remote page, of this local iovec and of this remote one.
            let at = raddr.wrapping_add(done);
            let n = (PAGE - at % PAGE).min(rlen - done).min(llen) as usize;
            let chunk = &mut buf[..n];
            let ok = if write {
                t.mm.copy_in(laddr, chunk).is_ok() && mm.copy_out(at, chunk).is_ok()
            } else {
                mm.copy_in(at, chunk).is_ok() && t.mm.copy_out(laddr, chunk).is_ok()
            };
            if !ok {
                break 'outer;
            }
            moved += n as u64;
            done += n as u64;
            cur = if llen > n as u64 {
                Some((laddr + n as u64, llen - n as u64))
            } else {
                li.next()
            };
        }
    }
    if moved == 0 && local.iter().any(|&(_, l)| l > 0) && rcnt > 0 {
        let any_remote = iovecs(t, rvec, rcnt)?.iter().any(|&(_, l)| l > 0);
        if any_remote {
            return Err(Errno::EFAULT);
        }
    }
    Ok(moved)
}

pub fn process_vm_readv(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    process_vm(t, a, false)
}

pub fn process_vm_writev(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    process_vm(t, a, true)
}
