//! Advisory locks: fcntl's record-lock commands (F_GETLK, F_SETLK, F_SETLKW and the OFD
//! variants) and flock(2). The lock manager is `fs::lock`; this file turns the guest's
//! `struct flock` and flags into its requests, with Linux's checks in Linux's order.

use std::sync::Arc;

use fs::lock::{flock_range, FileKey, LockManager, LockOwner, LockType, RecordLock};
use fs::vfs::OpenFile;
use platform::UserRegs;

use crate::errno::{Errno, SysResult};
use crate::task::TaskState;

/// `struct flock` on x86-64: l_type (i16), l_whence (i16), 4 bytes of padding, l_start
/// (i64), l_len (i64), l_pid (i32), 4 bytes of padding.
const FLOCK_SIZE: usize = 32;

struct Flock {
    /// The bytes as the guest gave them: padding goes back untouched.
    raw: [u8; FLOCK_SIZE],
}

impl Flock {
    fn read(t: &TaskState, addr: u64) -> Result<Flock, Errno> {
        let mut raw = [0u8; FLOCK_SIZE];
        t.mm.copy_in(addr, &mut raw)?;
        Ok(Flock { raw })
    }

    fn i16_at(&self, at: usize) -> i16 {
        i16::from_le_bytes([self.raw[at], self.raw[at + 1]])
    }

    fn i64_at(&self, at: usize) -> i64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.raw[at..at + 8]);
        i64::from_le_bytes(b)
    }

    fn l_type(&self) -> i16 {
        self.i16_at(0)
    }
    fn l_whence(&self) -> i16 {
        self.i16_at(2)
    }
    fn l_start(&self) -> i64 {
        self.i64_at(8)
    }
    fn l_len(&self) -> i64 {
        self.i64_at(16)
    }
    fn l_pid(&self) -> i32 {
        i32::from_le_bytes([self.raw[24], self.raw[25], self.raw[26], self.raw[27]])
    }

    fn set_type(&mut self, typ: LockType) {
        self.raw[0..2].copy_from_slice(&typ.to_flock().to_le_bytes());
    }

    /// Describes `lock` as F_GETLK reports a conflict.
    fn set_lock(&mut self, lock: &RecordLock) {
        self.set_type(lock.typ);
        self.raw[2..4].copy_from_slice(&(libc::SEEK_SET as i16).to_le_bytes());
        self.raw[8..16].copy_from_slice(&lock.start.to_le_bytes());
        self.raw[16..24].copy_from_slice(&lock.flock_len().to_le_bytes());
        // OFD locks belong to no process: Linux reports -1.
        let pid = match lock.owner {
            LockOwner::Process(_) => lock.pid,
            LockOwner::Description(_) => -1,
        };
        self.raw[24..28].copy_from_slice(&pid.to_le_bytes());
    }
}

/// The inclusive byte range `fl` names on `file` (Linux's `flock64_to_posix_lock`, before
/// the type is checked): EINVAL for a bad l_whence, EOVERFLOW / EINVAL from the arithmetic.
fn range_of(file: &OpenFile, fl: &Flock) -> Result<(i64, i64), Errno> {
    let base = match fl.l_whence() as i32 {
        libc::SEEK_SET => 0,
        // Streams have no offset to speak of; Linux uses their f_pos, which stays 0.
        libc::SEEK_CUR => file.seek(0, libc::SEEK_CUR).unwrap_or(0) as i64,
        libc::SEEK_END => file.stat().map_err(Errno)?.size,
        _ => return Err(Errno::EINVAL),
    };
    flock_range(base, fl.l_start(), fl.l_len()).map_err(Errno)
}

fn key_of(file: &OpenFile) -> Result<FileKey, Errno> {
    // Every description has an inode or a description of its own; without either there is
    // nothing to lock.
    FileKey::of(file).ok_or(Errno(libc::ENOLCK))
}

/// fcntl's record-lock commands on `file`, the description open at the descriptor.
pub fn fcntl_lock(t: &TaskState, file: &Arc<OpenFile>, cmd: i32, arg: u64) -> SysResult {
    // O_PATH descriptors only take F_DUPFD*, F_GETFD/SETFD and F_GETFL.
    if file.flags() & libc::O_PATH as u32 != 0 {
        return Err(Errno::EBADF);
    }
    let mut fl = Flock::read(t, arg)?;
    let ofd = matches!(
        cmd,
        libc::F_OFD_GETLK | libc::F_OFD_SETLK | libc::F_OFD_SETLKW
    );
    let owner = if ofd {
        LockOwner::of_description(file)
    } else {
        t.fds.lock_owner()
    };
    let manager = LockManager::global();
    match cmd {
        libc::F_GETLK | libc::F_OFD_GETLK => {
            // F_OFD_GETLK also takes F_UNLCK: "which of my own locks overlap this range".
            let typ = fl.l_type() as i32;
            if cmd == libc::F_GETLK && typ != libc::F_RDLCK && typ != libc::F_WRLCK {
                return Err(Errno::EINVAL);
            }
            let (start, end) = range_of(file, &fl)?;
            let typ = LockType::from_flock(fl.l_type()).ok_or(Errno::EINVAL)?;
            if ofd && fl.l_pid() != 0 {
                return Err(Errno::EINVAL);
            }
            let probe = RecordLock {
                owner,
                pid: t.pid,
                typ,
                start,
                end,
            };
            match manager.test_record(&key_of(file)?, &probe) {
                Some(held) => fl.set_lock(&held),
                None => fl.set_type(LockType::Unlock),
            }
            t.mm.copy_out(arg, &fl.raw)?;
            Ok(0)
        }
        _ => {
            let (start, end) = range_of(file, &fl)?;
            let typ = LockType::from_flock(fl.l_type()).ok_or(Errno::EINVAL)?;
            // The description must allow the kind of access the lock protects.
            let allowed = match typ {
                LockType::Read => file.readable(),
                LockType::Write => file.writable(),
                LockType::Unlock => true,
            };
            if !allowed {
                return Err(Errno::EBADF);
            }
            if ofd && fl.l_pid() != 0 {
                return Err(Errno::EINVAL);
            }
            let req = RecordLock {
                owner,
                pid: t.pid,
                typ,
                start,
                end,
            };
            let wait = cmd == libc::F_SETLKW || cmd == libc::F_OFD_SETLKW;
            manager
                .set_record(&key_of(file)?, req, wait)
                .map_err(Errno)?;
            Ok(0)
        }
    }
}

const LOCK_MAND: u64 = 32;

pub fn flock(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let cmd = a[1] as u32 as u64;
    // LOCK_MAND never worked; Linux accepts and ignores it, before even looking at the fd.
    if cmd & LOCK_MAND != 0 {
        return Ok(0);
    }
    let typ = match (cmd & !(libc::LOCK_NB as u64)) as i32 {
        libc::LOCK_SH => LockType::Read,
        libc::LOCK_EX => LockType::Write,
        libc::LOCK_UN => LockType::Unlock,
        _ => return Err(Errno::EINVAL),
    };
    let file = t.fds.get(a[0])?;
    if file.flags() & libc::O_PATH as u32 != 0 {
        return Err(Errno::EBADF);
    }
    if typ != LockType::Unlock && !file.readable() && !file.writable() {
        return Err(Errno::EBADF);
    }
    let wait = cmd & libc::LOCK_NB as u64 == 0;
    LockManager::global()
        .flock(&key_of(&file)?, LockOwner::of_description(&file), typ, wait)
        .map_err(Errno)?;
    Ok(0)
}

/// Whether the call in `regs` may wait for a lock (F_SETLKW, F_OFD_SETLKW, flock without
/// LOCK_NB), and so must run on the task's own thread rather than the ring poller.
pub fn may_wait(regs: &UserRegs) -> bool {
    let nr = regs.rax as u32 as i64;
    if nr == libc::SYS_fcntl {
        let cmd = regs.rsi as u32 as i32;
        return cmd == libc::F_SETLKW || cmd == libc::F_OFD_SETLKW;
    }
    if nr == libc::SYS_flock {
        let cmd = regs.rsi as u32 as u64;
        let unlock = cmd & !(libc::LOCK_NB as u64) == libc::LOCK_UN as u64;
        return cmd & libc::LOCK_NB as u64 == 0 && cmd & LOCK_MAND == 0 && !unlock;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regs(nr: i64, arg1: u64) -> UserRegs {
        UserRegs {
            rax: nr as u64,
            rsi: arg1,
            ..UserRegs::default()
        }
    }

    #[test]
    fn only_blocking_lock_requests_leave_the_poller() {
        let fcntl = |cmd: i32| may_wait(&regs(libc::SYS_fcntl, cmd as u64));
        assert!(fcntl(libc::F_SETLKW));
        assert!(fcntl(libc::F_OFD_SETLKW));
        assert!(!fcntl(libc::F_SETLK));
        assert!(!fcntl(libc::F_OFD_GETLK));
        assert!(!fcntl(libc::F_GETFL));
        let flock = |op: i32| may_wait(&regs(libc::SYS_flock, op as u64));
        assert!(flock(libc::LOCK_EX));
        assert!(flock(libc::LOCK_SH));
        assert!(!flock(libc::LOCK_EX | libc::LOCK_NB));
        assert!(!flock(libc::LOCK_UN));
        assert!(!flock(libc::LOCK_SH | LOCK_MAND as i32));
        assert!(!may_wait(&regs(libc::SYS_read, libc::F_SETLKW as u64)));
    }

    #[test]
    fn flock_struct_round_trip() {
        let mut fl = Flock {
            raw: [0xaa; FLOCK_SIZE],
        };
        fl.set_lock(&RecordLock {
            owner: LockOwner::Description(1),
            pid: 5,
            typ: LockType::Read,
            start: 10,
            end: fs::lock::OFFSET_MAX,
        });
        assert_eq!(fl.l_type(), libc::F_RDLCK as i16);
        assert_eq!(fl.l_whence(), libc::SEEK_SET as i16);
        assert_eq!((fl.l_start(), fl.l_len(), fl.l_pid()), (10, 0, -1));
        // Padding is left as the guest wrote it.
        assert_eq!(&fl.raw[4..8], &[0xaa; 4]);
        assert_eq!(&fl.raw[28..32], &[0xaa; 4]);
    }
}
