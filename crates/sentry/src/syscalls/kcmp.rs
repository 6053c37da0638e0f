//! kcmp(2): whether two tasks share a kernel object (Linux's kernel/kcmp.c).

use std::sync::{Arc, OnceLock};

use fs::vfs::OpenFile;
use platform::UserRegs;

use crate::errno::{Errno, SysResult};
use crate::fdtable::FdTable;
use crate::process::Recipient;
use crate::procfs::ProcessInfo;
use crate::task::TaskState;

const KCMP_FILE: u64 = 0;
const KCMP_VM: u64 = 1;
const KCMP_FILES: u64 = 2;
const KCMP_FS: u64 = 3;
const KCMP_SIGHAND: u64 = 4;
const KCMP_IO: u64 = 5;
const KCMP_SYSVSEM: u64 = 6;
const KCMP_EPOLL_TFD: u64 = 7;
const KCMP_TYPES: usize = 8;

/// Per-type keys that turn an object's address into an order that says nothing about the
/// sentry's memory (Linux's kptr_obfuscate): `(v ^ k0) * k1` with k1 odd is one-to-one, so
/// equal stays equal, and the order of different objects is consistent but meaningless.
fn cookies() -> &'static [[u64; 2]; KCMP_TYPES] {
    static COOKIES: OnceLock<[[u64; 2]; KCMP_TYPES]> = OnceLock::new();
    COOKIES.get_or_init(|| {
        let mut raw = [0u8; KCMP_TYPES * 16];
        // SAFETY: raw is a writable buffer of the length given. A short or failed read
        // leaves zeros: the order is then the addresses', still consistent.
        unsafe { libc::getrandom(raw.as_mut_ptr().cast(), raw.len(), 0) };
        let mut out = [[0u64; 2]; KCMP_TYPES];
        for (i, pair) in out.iter_mut().enumerate() {
            for (j, k) in pair.iter_mut().enumerate() {
                let at = (i * 2 + j) * 8;
                let mut b = [0u8; 8];
                b.copy_from_slice(&raw[at..at + 8]);
                *k = u64::from_le_bytes(b);
            }
            pair[1] |= (1 << 63) | 1;
        }
        out
    })
}

/// 0 when the objects are the same, 1 when the first orders before the second, 2 after.
fn order(a: usize, b: usize, kind: u64) -> u64 {
    let [k0, k1] = cookies()[kind as usize];
    let obfuscate = |v: usize| ((v as u64 ^ k0).wrapping_mul(k1)) as i64;
    let (a, b) = (obfuscate(a), obfuscate(b));
    u64::from(a < b) | (u64::from(a > b) << 1)
}

/// A task kcmp names: its process's objects, or the caller's own thread's.
struct Task {
    recipient: Recipient,
    info: Arc<ProcessInfo>,
    /// Its thread id in the sandbox (the process's id for a process).
    tid: i32,
    /// The caller's own thread: its own descriptor table and fs context, which may differ
    /// from the process's (a thread cloned without CLONE_FILES).
    own: bool,
}

/// The task `pid` names in the caller's pid namespace (ESRCH if none).
fn find(t: &TaskState, pid: i32) -> Result<Task, Errno> {
    if pid <= 0 {
        return Err(Errno::ESRCH);
    }
    let global = crate::namespaces::pid_global(&t.process, pid).ok_or(Errno::ESRCH)?;
    let recipient = super::pidfd::owner_of(t, global)?;
    let info = t
        .kernel
        .procfs
        .process(recipient.group.pid)
        .ok_or(Errno::ESRCH)?;
    Ok(Task {
        recipient,
        info,
        tid: global,
        own: global == t.tid,
    })
}

impl Task {
    /// The descriptor table (None once the process ended, as Linux's exit_files leaves).
    fn files(&self, t: &TaskState) -> Option<Arc<FdTable>> {
        if self.own {
            Some(t.fds.clone())
        } else {
            self.info.fd_table()
        }
    }

    fn file(&self, t: &TaskState, fd: u64) -> Option<Arc<OpenFile>> {
        self.files(t)?.get(fd).ok()
    }

    /// The identity of the object of kind `kind` (0 for none), for the kinds that need no
    /// index.
    fn object(&self, t: &TaskState, kind: u64) -> usize {
        match kind {
            KCMP_VM if self.own => Arc::as_ptr(&t.mm) as usize,
            KCMP_VM => self.info.image().mm.as_ptr() as usize,
            KCMP_FILES => self.files(t).map_or(0, |f| Arc::as_ptr(&f) as usize),
            KCMP_FS if self.own => Arc::as_ptr(&t.fs) as usize,
            KCMP_FS => Arc::as_ptr(&self.info.fs) as usize,
            KCMP_SIGHAND => Arc::as_ptr(&self.recipient.group.handlers()) as usize,
            KCMP_SYSVSEM => {
                let group = &self.recipient.group;
                if group
                    .sem_undo_list
                    .load(std::sync::atomic::Ordering::Relaxed)
                {
                    Arc::as_ptr(group) as usize
                } else {
                    0
                }
            }
            // None until ioprio_set makes one, as Linux's lazily made io_context.
            KCMP_IO => self
                .recipient
                .group
                .thread_io(self.tid)
                .flatten()
                .map_or(0, |c| Arc::as_ptr(&c) as usize),
            _ => 0,
        }
    }
}

/// struct kcmp_epoll_slot { __u32 efd, tfd, toff; }.
fn read_epoll_slot(t: &TaskState, addr: u64) -> Result<(u64, i32, u64), Errno> {
    let mut b = [0u8; 12];
    t.mm.copy_in(addr, &mut b)?;
    let word = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    Ok((u64::from(word(0)), word(4) as i32, u64::from(word(8))))
}

/// KCMP_EPOLL_TFD: task 1's descriptor `idx1` against the file registered in task 2's epoll
/// instance as the slot at `slot_addr` says.
fn epoll_target(t: &TaskState, t1: &Task, t2: &Task, idx1: u64, slot_addr: u64) -> SysResult {
    let (efd, tfd, toff) = read_epoll_slot(t, slot_addr)?;
    let file = t1.file(t, idx1).ok_or(Errno::EBADF)?;
    let epoll_file = t2.file(t, efd).ok_or(Errno::EBADF)?;
    let epoll = epoll_file
        .special_desc()
        .and_then(|d| d.as_epoll())
        .ok_or(Errno::EINVAL)?;
    let target = epoll.target(tfd, toff).ok_or(Errno(libc::ENOENT))?;
    Ok(order(
        Arc::as_ptr(&file) as usize,
        Arc::as_ptr(&target) as usize,
        KCMP_FILE,
    ))
}

/// kcmp(pid1, pid2, type, idx1, idx2): both tasks looked up in the caller's pid namespace
/// (ESRCH), both readable by the caller under ptrace's rules (EPERM), then the comparison.
pub fn kcmp(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (pid1, pid2, kind, idx1, idx2) = (a[0] as i32, a[1] as i32, a[2] as u32 as u64, a[3], a[4]);
    let (t1, t2) = (find(t, pid1)?, find(t, pid2)?);
    let mode = crate::ptrace::AccessMode::READ_REALCREDS;
    if !super::pidfd::may_access(t, &t1.recipient, mode)
        || !super::pidfd::may_access(t, &t2.recipient, mode)
    {
        return Err(Errno::EPERM);
    }
    match kind {
        KCMP_FILE => match (t1.file(t, idx1), t2.file(t, idx2)) {
            (Some(f1), Some(f2)) => Ok(order(
                Arc::as_ptr(&f1) as usize,
                Arc::as_ptr(&f2) as usize,
                KCMP_FILE,
            )),
            _ => Err(Errno::EBADF),
        },
        KCMP_VM | KCMP_FILES | KCMP_FS | KCMP_SIGHAND | KCMP_IO | KCMP_SYSVSEM => {
            Ok(order(t1.object(t, kind), t2.object(t, kind), kind))
        }
        KCMP_EPOLL_TFD => epoll_target(t, &t1, &t2, idx1, idx2),
        _ => Err(Errno::EINVAL),
    }
}
