//! The sandbox's IPC namespace: System V shared memory, message queues and semaphore sets,
//! and POSIX message queues. One namespace per sandbox, held by the kernel; the system
//! calls (`syscalls::{shm,msg,sem,mqueue}`) are thin layers over the objects here.
//!
//! Identifiers are Linux's: an object's index in its table plus 32768 times a sequence
//! number that grows with every object made, so a stale identifier of a removed object is
//! refused (EINVAL) rather than reaching a new one. Limits start at Linux's defaults; the
//! ones Linux lets root change per namespace are in `tunables` (/proc/sys/kernel).

pub mod mqueue;
pub mod msg;
pub mod sem;
pub mod shm;
pub mod tunables;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::caps::{capable, Cap};
use crate::errno::Errno;
use crate::task::Creds;

pub const IPC_PRIVATE: i32 = 0;
pub const IPC_CREAT: i32 = 0o1000;
pub const IPC_EXCL: i32 = 0o2000;
pub const IPC_NOWAIT: i32 = 0o4000;
pub const IPC_RMID: i32 = 0;
pub const IPC_SET: i32 = 1;
pub const IPC_STAT: i32 = 2;
pub const IPC_INFO: i32 = 3;

/// Objects per table (Linux's IPCMNI without ipcmni_extend): also the sequence multiplier.
pub const IPCMNI: u32 = 32768;
/// The permission bits of a mode.
pub const S_IRWXUGO: u32 = 0o777;

/// Size of `struct ipc64_perm`.
pub const PERM_SIZE: usize = 48;

/// An object's `struct kern_ipc_perm`.
#[derive(Debug, Clone)]
pub struct Perm {
    pub key: i32,
    pub uid: u32,
    pub gid: u32,
    pub cuid: u32,
    pub cgid: u32,
    /// Permission bits and the family's state bits (SHM_DEST, SHM_LOCKED).
    pub mode: u32,
    pub seq: u16,
}

fn in_group(creds: &Creds, gid: u32) -> bool {
    creds.egid == gid || creds.groups.contains(&gid)
}

impl Perm {
    pub fn new(key: i32, flags: i32, creds: &Creds) -> Perm {
        Perm {
            key,
            uid: creds.euid,
            gid: creds.egid,
            cuid: creds.euid,
            cgid: creds.egid,
            mode: flags as u32 & S_IRWXUGO,
            seq: 0,
        }
    }

    /// Linux's ipcperms: whether `creds` may have the access `flag` asks for (its low nine
    /// bits, any of the three classes: read 4, write 2). CAP_IPC_OWNER overrides.
    pub fn allows(&self, creds: &Creds, flag: u32) -> bool {
        let requested = (flag >> 6) | (flag >> 3) | flag;
        let mut granted = self.mode;
        if creds.euid == self.cuid || creds.euid == self.uid {
            granted >>= 6;
        } else if in_group(creds, self.cgid) || in_group(creds, self.gid) {
            granted >>= 3;
        }
        requested & !granted & 0o7 == 0 || capable(creds, Cap::IpcOwner)
    }

    /// Checks `allows`, with EACCES.
    pub fn check(&self, creds: &Creds, flag: u32) -> Result<(), Errno> {
        if self.allows(creds, flag) {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }

    /// IPC_SET and IPC_RMID: the owner, the creator or CAP_SYS_ADMIN (else EPERM).
    pub fn check_owner(&self, creds: &Creds) -> Result<(), Errno> {
        if creds.euid == self.uid || creds.euid == self.cuid || capable(creds, Cap::SysAdmin) {
            Ok(())
        } else {
            Err(Errno::EPERM)
        }
    }

    /// `struct ipc64_perm`.
    pub fn to_bytes(&self) -> [u8; PERM_SIZE] {
        let mut b = [0u8; PERM_SIZE];
        b[0..4].copy_from_slice(&self.key.to_le_bytes());
        b[4..8].copy_from_slice(&self.uid.to_le_bytes());
        b[8..12].copy_from_slice(&self.gid.to_le_bytes());
        b[12..16].copy_from_slice(&self.cuid.to_le_bytes());
        b[16..20].copy_from_slice(&self.cgid.to_le_bytes());
        b[20..24].copy_from_slice(&self.mode.to_le_bytes());
        b[24..26].copy_from_slice(&self.seq.to_le_bytes());
        b
    }

    /// IPC_SET: the owner and the permission bits from a guest `struct ipc64_perm`, whose
    /// ids are the caller's user namespace's (EINVAL, and nothing changes, for one it
    /// doesn't map: Linux's ipc_update_perm).
    pub fn set_from(&mut self, b: &[u8], ns: &crate::namespaces::UserNs) -> Result<(), Errno> {
        let uid = ns.make_kuid(u32_at(b, 4)).ok_or(Errno::EINVAL)?;
        let gid = ns.make_kgid(u32_at(b, 8)).ok_or(Errno::EINVAL)?;
        self.uid = uid;
        self.gid = gid;
        self.mode = (self.mode & !S_IRWXUGO) | (u32_at(b, 20) & S_IRWXUGO);
        Ok(())
    }
}

/// An object's `*_ds` as IPC_STAT fills it, with the owner and creator ids of its leading
/// `struct ipc64_perm` in the caller's user namespace's terms (65534 when unmapped).
pub fn perm_seen<const N: usize>(mut b: [u8; N], ns: &crate::namespaces::UserNs) -> [u8; N] {
    for (at, uid) in [(4, true), (8, false), (12, true), (16, false)] {
        let id = u32_at(&b, at);
        let seen = if uid {
            ns.uid_seen(id)
        } else {
            ns.gid_seen(id)
        };
        b[at..at + 4].copy_from_slice(&seen.to_le_bytes());
    }
    b
}

pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

pub fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

pub fn put_u64(b: &mut [u8], at: usize, v: u64) {
    b[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

pub fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// Seconds since the epoch (the times IPC objects record).
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// What a table holds.
pub trait Object {
    fn perm(&self) -> &Perm;
    fn perm_mut(&mut self) -> &mut Perm;
}

/// One family's table (Linux's `struct ipc_ids`).
pub struct Ids<T> {
    objs: BTreeMap<u32, T>,
    seq: u16,
    /// Makes every object's serial unique, so that a waiter can tell its object from a new
    /// one at the same identifier.
    serial: u64,
}

impl<T> Default for Ids<T> {
    fn default() -> Self {
        Ids {
            objs: BTreeMap::new(),
            seq: 0,
            serial: 0,
        }
    }
}

/// The identifier of the object at `idx` with sequence number `seq`.
pub fn make_id(idx: u32, seq: u16) -> i32 {
    (seq as u32 * IPCMNI + idx) as i32
}

impl<T: Object> Ids<T> {
    pub fn in_use(&self) -> usize {
        self.objs.len()
    }

    /// The highest index in use, or -1.
    pub fn max_idx(&self) -> i32 {
        self.objs.keys().next_back().map_or(-1, |&i| i as i32)
    }

    fn find_key(&self, key: i32) -> Option<u32> {
        self.objs
            .iter()
            .find(|(_, o)| o.perm().key == key)
            .map(|(&i, _)| i)
    }

    /// The index `id` names, if its object is there with the same sequence number.
    fn idx(&self, id: i32) -> Result<u32, Errno> {
        if id < 0 {
            return Err(Errno::EINVAL);
        }
        let idx = id as u32 % IPCMNI;
        let seq = (id as u32 / IPCMNI) as u16;
        match self.objs.get(&idx) {
            Some(o) if o.perm().seq == seq => Ok(idx),
            _ => Err(Errno::EINVAL),
        }
    }

    pub fn get(&self, id: i32) -> Result<&T, Errno> {
        let i = self.idx(id)?;
        Ok(&self.objs[&i])
    }

    pub fn get_mut(&mut self, id: i32) -> Result<&mut T, Errno> {
        let i = self.idx(id)?;
        Ok(self.objs.get_mut(&i).expect("present"))
    }

    /// The object at index `idx` (the *_STAT commands), with its identifier.
    pub fn by_idx(&self, idx: i32) -> Result<(i32, &T), Errno> {
        if idx < 0 {
            return Err(Errno::EINVAL);
        }
        let o = self.objs.get(&(idx as u32)).ok_or(Errno::EINVAL)?;
        Ok((make_id(idx as u32, o.perm().seq), o))
    }

    pub fn remove(&mut self, id: i32) -> Option<T> {
        let i = self.idx(id).ok()?;
        self.objs.remove(&i)
    }

    pub fn iter(&self) -> impl Iterator<Item = (i32, &T)> {
        self.objs
            .iter()
            .map(|(&i, o)| (make_id(i, o.perm().seq), o))
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = (i32, &mut T)> {
        self.objs
            .iter_mut()
            .map(|(&i, o)| (make_id(i, o.perm().seq), o))
    }

    /// Adds an object made by `make(id, serial)` at the lowest free index; ENOSPC when
    /// `mni` objects exist.
    pub fn add(
        &mut self,
        mni: usize,
        make: impl FnOnce(i32, u64) -> Result<T, Errno>,
    ) -> Result<i32, Errno> {
        if self.objs.len() >= mni.min(IPCMNI as usize) {
            return Err(Errno(libc::ENOSPC));
        }
        let idx = (0..IPCMNI)
            .find(|i| !self.objs.contains_key(i))
            .ok_or(Errno(libc::ENOSPC))?;
        let seq = self.seq;
        let id = make_id(idx, seq);
        self.serial += 1;
        let mut obj = make(id, self.serial)?;
        obj.perm_mut().seq = seq;
        // Linux's IPCID_SEQ_MAX without ipcmni_extend: INT_MAX >> 15.
        self.seq = if self.seq as u32 >= (i32::MAX as u32 >> 15) {
            0
        } else {
            self.seq + 1
        };
        self.objs.insert(idx, obj);
        Ok(id)
    }

    /// The *get calls (Linux's ipcget): an existing object for `key` (IPC_EXCL: EEXIST;
    /// `more_checks`, then the permission `flags` ask for: EACCES), or a new one made by
    /// `create` (IPC_CREAT, else ENOENT). IPC_PRIVATE always makes a new one.
    pub fn get_or_create(
        &mut self,
        key: i32,
        flags: i32,
        creds: &Creds,
        mni: usize,
        more_checks: impl FnOnce(&T) -> Result<(), Errno>,
        create: impl FnOnce(Perm, i32, u64) -> Result<T, Errno>,
    ) -> Result<i32, Errno> {
        if key != IPC_PRIVATE {
            if let Some(idx) = self.find_key(key) {
                if flags & IPC_CREAT != 0 && flags & IPC_EXCL != 0 {
                    return Err(Errno::EEXIST);
                }
                let o = &self.objs[&idx];
                more_checks(o)?;
                o.perm().check(creds, flags as u32)?;
                return Ok(make_id(idx, o.perm().seq));
            }
            if flags & IPC_CREAT == 0 {
                return Err(Errno::ENOENT);
            }
        }
        let perm = Perm::new(key, flags, creds);
        self.add(mni, |id, serial| create(perm, id, serial))
    }
}

/// The sandbox's IPC namespace.
#[derive(Default)]
pub struct IpcNs {
    pub shm: Mutex<shm::Table>,
    pub msg: Mutex<Ids<msg::Queue>>,
    pub sem: Mutex<sem::Table>,
    pub mq: mqueue::Registry,
    /// The limits root may change (/proc/sys/kernel/shm*, msg*, sem, /proc/sys/fs/mqueue).
    pub tunables: tunables::Tunables,
}

pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl IpcNs {
    pub fn new() -> Arc<IpcNs> {
        Arc::new(IpcNs::default())
    }

    /// A process ended: its semaphore adjustments (SEM_UNDO) are applied.
    pub fn process_exited(&self, pid: i32) {
        sem::exit(self, pid);
    }

    /// Thread `tid` ended: the segments it made are orphans (Linux's exit_shm).
    pub fn thread_exited(&self, tid: i32) {
        shm::exit_shm(self, |s| s.creator == Some(tid));
    }

    /// Process `pid` moved to another IPC namespace (unshare, setns): the segments its
    /// threads made here are orphans, as Linux's unshare and setns make the caller's
    /// (here every thread of a process moves together).
    pub fn process_left(&self, pid: i32) {
        shm::exit_shm(self, |s| s.cpid == pid);
    }

    /// A write of the sysctl `name` (one of `tunables::NAMES` or `MQUEUE_NAMES`): the
    /// value, and for shm_rmid_forced set to 1 the orphaned segments nothing has attached
    /// destroyed then (Linux's proc_ipc_dointvec_minmax_orphans).
    pub fn set_sysctl(&self, name: &str, text: &[u8]) -> Result<(), Errno> {
        self.tunables.set(name, text)?;
        if name == "shm_rmid_forced" && self.tunables.shm_rmid_forced() {
            lock(&self.shm).destroy_orphaned();
        }
        Ok(())
    }
}

/// /proc/sysvipc/shm.
pub fn proc_shm(ns: &IpcNs) -> String {
    let mut out = String::from("       key      shmid perms                  size  cpid  lpid nattch   uid   gid  cuid  cgid      atime      dtime      ctime                   rss                  swap\n");
    let mut t = lock(&ns.shm);
    t.sweep(ns.tunables.shm_rmid_forced());
    for (id, s) in t.ids.iter() {
        let p = &s.perm;
        let rss = s.inode.stat().map_or(0, |st| st.blocks as u64 * 512);
        out.push_str(&format!(
            "{:>10} {:>10}  {:>4o} {:>21} {:>5} {:>5}  {:>5} {:>5} {:>5} {:>5} {:>5} {:>10} {:>10} {:>10} {:>21} {:>21}\n",
            p.key, id, p.mode, s.size, s.cpid, s.lpid, s.nattch(), p.uid, p.gid, p.cuid, p.cgid,
            s.atime, s.dtime, s.ctime, rss, 0
        ));
    }
    out
}

/// /proc/sysvipc/msg.
pub fn proc_msg(ns: &IpcNs) -> String {
    let mut out = String::from("       key      msqid perms      cbytes       qnum lspid lrpid   uid   gid  cuid  cgid      stime      rtime      ctime\n");
    for (id, q) in lock(&ns.msg).iter() {
        let p = &q.perm;
        out.push_str(&format!(
            "{:>10} {:>10}  {:>4o}  {:>10} {:>10} {:>5} {:>5} {:>5} {:>5} {:>5} {:>5} {:>10} {:>10} {:>10}\n",
            p.key, id, p.mode, q.cbytes, q.messages.len(), q.lspid, q.lrpid, p.uid, p.gid,
            p.cuid, p.cgid, q.stime, q.rtime, q.ctime
        ));
    }
    out
}

/// /proc/sysvipc/sem.
pub fn proc_sem(ns: &IpcNs) -> String {
    let mut out = String::from(
        "       key      semid perms      nsems   uid   gid  cuid  cgid      otime      ctime\n",
    );
    for (id, s) in lock(&ns.sem).ids.iter() {
        let p = &s.perm;
        out.push_str(&format!(
            "{:>10} {:>10}  {:>4o} {:>10} {:>5} {:>5} {:>5} {:>5} {:>10} {:>10}\n",
            p.key,
            id,
            p.mode,
            s.sems.len(),
            p.uid,
            p.gid,
            p.cuid,
            p.cgid,
            s.otime,
            s.ctime
        ));
    }
    out
}

/// Linux's defaults of the IPC limits (the starting `tunables`), and the fixed ones.
pub mod limits {
    /// SHMMAX and SHMALL: ULONG_MAX - 2^24.
    pub const SHMMAX: u64 = u64::MAX - (1 << 24);
    pub const SHMALL: u64 = u64::MAX - (1 << 24);
    pub const SHMMNI: usize = 4096;
    pub const SHMMIN: u64 = 1;
    pub const MSGMAX: usize = 8192;
    pub const MSGMNB: usize = 16384;
    pub const MSGMNI: usize = 32000;
    pub const SEMMSL: usize = 32000;
    pub const SEMMNS: usize = 1_024_000_000;
    pub const SEMOPM: usize = 500;
    pub const SEMMNI: usize = 32000;
    pub const SEMVMX: i32 = 32767;
    pub const SEMAEM: i32 = SEMVMX;
    /// /proc/sys/fs/mqueue's defaults (DFLT_QUEUESMAX, DFLT_MSGMAX, DFLT_MSGSIZEMAX,
    /// DFLT_MSG, DFLT_MSGSIZE).
    pub const MQ_QUEUES_MAX: i64 = 256;
    pub const MQ_MSG_MAX: i64 = 10;
    pub const MQ_MSGSIZE_MAX: i64 = 8192;
    pub const MQ_MSG_DEFAULT: i64 = 10;
    pub const MQ_MSGSIZE_DEFAULT: i64 = 8192;
    /// The ranges of msg_max (and msg_default) and msgsize_max (and msgsize_default); the
    /// most CAP_SYS_RESOURCE may ask of a queue.
    pub const MIN_MSGMAX: i64 = 1;
    pub const HARD_MSGMAX: i64 = 65536;
    pub const MIN_MSGSIZEMAX: i64 = 128;
    pub const HARD_MSGSIZEMAX: i64 = 16 << 20;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Obj(Perm);

    impl Object for Obj {
        fn perm(&self) -> &Perm {
            &self.0
        }
        fn perm_mut(&mut self) -> &mut Perm {
            &mut self.0
        }
    }

    /// A login's credentials: root holds every capability (CAP_IPC_OWNER among them).
    fn creds(euid: u32, egid: u32) -> Creds {
        Creds::login(euid, egid, Vec::new())
    }

    fn make(ids: &mut Ids<Obj>, key: i32, flags: i32, c: &Creds) -> Result<i32, Errno> {
        ids.get_or_create(key, flags, c, 4, |_| Ok(()), |p, _, _| Ok(Obj(p)))
    }

    #[test]
    fn identifiers_carry_a_sequence() {
        let mut ids: Ids<Obj> = Ids::default();
        let root = creds(0, 0);
        let a = make(&mut ids, IPC_PRIVATE, IPC_CREAT | 0o600, &root).unwrap();
        assert_eq!(a, 0);
        assert!(ids.remove(a).is_some());
        // The same index again, with the next sequence number: the old id is stale.
        let b = make(&mut ids, IPC_PRIVATE, IPC_CREAT | 0o600, &root).unwrap();
        assert_eq!(b, IPCMNI as i32);
        assert_eq!(ids.get(a).err(), Some(Errno::EINVAL));
        assert!(ids.get(b).is_ok());
        assert_eq!(ids.get(-1).err(), Some(Errno::EINVAL));
        assert_eq!(ids.by_idx(0).unwrap().0, b);
        assert_eq!(ids.max_idx(), 0);
    }

    #[test]
    fn keys_and_flags() {
        let mut ids: Ids<Obj> = Ids::default();
        let root = creds(0, 0);
        assert_eq!(make(&mut ids, 7, 0o600, &root), Err(Errno::ENOENT));
        let id = make(&mut ids, 7, IPC_CREAT | 0o600, &root).unwrap();
        assert_eq!(make(&mut ids, 7, 0, &root), Ok(id));
        assert_eq!(make(&mut ids, 7, IPC_CREAT, &root), Ok(id));
        assert_eq!(
            make(&mut ids, 7, IPC_CREAT | IPC_EXCL, &root),
            Err(Errno::EEXIST)
        );
        let user = creds(1000, 1000);
        assert_eq!(make(&mut ids, 7, 0o400, &user), Err(Errno::EACCES));
        assert_eq!(make(&mut ids, 7, 0, &user), Ok(id));
        for _ in 0..3 {
            make(&mut ids, IPC_PRIVATE, IPC_CREAT, &root).unwrap();
        }
        assert_eq!(
            make(&mut ids, IPC_PRIVATE, IPC_CREAT, &root),
            Err(Errno(libc::ENOSPC))
        );
    }

    #[test]
    fn permission_classes() {
        let mut p = Perm::new(0, 0o640, &creds(10, 20));
        assert!(p.allows(&creds(10, 99), 0o600));
        assert!(p.allows(&creds(11, 20), 0o040));
        assert!(!p.allows(&creds(11, 20), 0o020));
        assert!(!p.allows(&creds(11, 21), 0o004));
        // CAP_IPC_OWNER (root) passes.
        assert!(p.allows(&creds(0, 0), 0o777));
        // The creator keeps owner rights after IPC_SET gives the object away.
        let mut ds = p.to_bytes();
        ds[4..8].copy_from_slice(&50u32.to_le_bytes());
        ds[20..24].copy_from_slice(&0o7600u32.to_le_bytes());
        p.set_from(&ds, &crate::namespaces::UserNs::initial())
            .expect("mapped");
        assert_eq!((p.uid, p.cuid, p.mode), (50, 10, 0o600));
        assert!(p.check_owner(&creds(10, 0)).is_ok());
        assert_eq!(p.check_owner(&creds(11, 0)), Err(Errno::EPERM));
    }
}
