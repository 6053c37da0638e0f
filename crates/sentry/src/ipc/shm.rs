//! System V shared memory segments.
//!
//! A segment's memory is an unnamed file of the memfd file system, the same object that
//! backs MAP_SHARED|MAP_ANONYMOUS memory, so an attachment is a shared file mapping: every
//! process that attaches it sees the same pages, and fork shares them. Each VMA of an
//! attachment holds the segment's [`Attach`] token, so the number of attachments (Linux's
//! shm_nattch, which counts VMAs) is the token's reference count; VMAs that go away tell the
//! segment ([`detached`]), which destroys a segment marked for removal at its last detach.
//!
//! kernel.shm_rmid_forced (per IPC namespace, `super::tunables`) works as Linux's
//! (ipc/shm.c): while it is 1 every segment is destroyed at its last detach, IPC_RMID or
//! not (shm_may_destroy); a segment outlives the thread that made it ([`exit_shm`]: its
//! exit, or its move to another IPC namespace) as an orphan, destroyed then if the
//! setting is 1 and nothing is attached; and setting it to 1 destroys the orphans nothing
//! has attached ([`Table::destroy_orphaned`]). A segment whose maker still runs and that
//! was never attached stays.

use std::sync::{Arc, Weak};

use fs::vfs::Inode;

use super::{lock, now, Ids, IpcNs, Object, Perm, PERM_SIZE};

/// Marked for removal (IPC_RMID with attachments left).
pub const SHM_DEST: u32 = 0o1000;
/// SHM_LOCK'ed.
pub const SHM_LOCKED: u32 = 0o2000;
/// Size of `struct shmid64_ds`.
pub const DS_SIZE: usize = 112;

/// The token every VMA of an attachment holds.
pub struct Attach {
    ns: Weak<IpcNs>,
    pub id: i32,
    /// The segment's size (shmdt detaches the attachment's VMAs within it).
    pub size: u64,
}

impl std::fmt::Debug for Attach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "shm {}", self.id)
    }
}

pub struct Segment {
    pub perm: Perm,
    pub size: u64,
    pub inode: Arc<dyn Inode>,
    pub atime: i64,
    pub dtime: i64,
    pub ctime: i64,
    pub cpid: i32,
    pub lpid: i32,
    pub attach: Arc<Attach>,
    /// The thread that made it while that thread lives in this namespace (Linux's
    /// shm_creator and the task's shm_clist); None once it is an orphan.
    pub creator: Option<i32>,
    /// Its last detach happened while shm_rmid_forced was 1 (so [`Table::sweep`] finishes
    /// a destruction a VMA copy alive at that moment put off).
    forced_detach: bool,
}

impl Object for Segment {
    fn perm(&self) -> &Perm {
        &self.perm
    }
    fn perm_mut(&mut self) -> &mut Perm {
        &mut self.perm
    }
}

impl Segment {
    pub fn new(
        ns: &Arc<IpcNs>,
        perm: Perm,
        id: i32,
        size: u64,
        inode: Arc<dyn Inode>,
        (pid, tid): (i32, i32),
    ) -> Segment {
        Segment {
            perm,
            size,
            inode,
            atime: 0,
            dtime: 0,
            ctime: now(),
            cpid: pid,
            lpid: 0,
            attach: Arc::new(Attach {
                ns: Arc::downgrade(ns),
                id,
                size,
            }),
            creator: Some(tid),
            forced_detach: false,
        }
    }

    /// Linux's shm_may_destroy: nothing attached, and marked for removal or `forced`
    /// (shm_rmid_forced).
    pub fn may_destroy(&self, forced: bool) -> bool {
        self.nattch() == 0 && (forced || self.perm.mode & SHM_DEST != 0)
    }

    /// Attachments: the VMAs holding the token.
    pub fn nattch(&self) -> u64 {
        Arc::strong_count(&self.attach) as u64 - 1
    }

    pub fn pages(&self) -> u64 {
        self.size.div_ceil(platform::PAGE_SIZE)
    }

    /// `struct shmid64_ds`.
    pub fn to_bytes(&self) -> [u8; DS_SIZE] {
        let mut b = [0u8; DS_SIZE];
        b[..PERM_SIZE].copy_from_slice(&self.perm.to_bytes());
        super::put_u64(&mut b, 48, self.size);
        super::put_u64(&mut b, 56, self.atime as u64);
        super::put_u64(&mut b, 64, self.dtime as u64);
        super::put_u64(&mut b, 72, self.ctime as u64);
        super::put_u32(&mut b, 80, self.cpid as u32);
        super::put_u32(&mut b, 84, self.lpid as u32);
        super::put_u64(&mut b, 88, self.nattch());
        b
    }
}

#[derive(Default)]
pub struct Table {
    pub ids: Ids<Segment>,
    /// Pages of all segments (SHM_INFO's shm_tot; bounded by shmall).
    pub pages: u64,
}

impl Table {
    /// Removes `id` now.
    pub fn destroy(&mut self, id: i32) {
        if let Some(seg) = self.ids.remove(id) {
            self.pages = self.pages.saturating_sub(seg.pages());
        }
    }

    /// Destroys segments marked for removal that nobody has attached any more (a VMA copy
    /// that was briefly alive when the last attachment went), and with shm_rmid_forced
    /// (`forced`) the ones whose last detach or maker's exit happened while it was set.
    pub fn sweep(&mut self, forced: bool) {
        self.destroy_where(|s| s.may_destroy(forced && (s.forced_detach || s.creator.is_none())));
    }

    /// shm_rmid_forced was set to 1: the orphans nothing has attached are destroyed
    /// (Linux's shm_destroy_orphaned).
    pub fn destroy_orphaned(&mut self) {
        self.destroy_where(|s| s.creator.is_none() && s.nattch() == 0);
    }

    fn destroy_where(&mut self, doomed: impl Fn(&Segment) -> bool) {
        let doomed: Vec<i32> = self
            .ids
            .iter()
            .filter(|(_, s)| doomed(s))
            .map(|(id, _)| id)
            .collect();
        for id in doomed {
            self.destroy(id);
        }
    }
}

/// A VMA of an attachment went away (shmdt, munmap, exit, execve): records the detach
/// time and process, and destroys a segment marked for removal once nothing is attached.
pub fn detached(token: Arc<Attach>, pid: i32) {
    let Some(ns) = token.ns.upgrade() else {
        return;
    };
    let mut t = lock(&ns.shm);
    let id = token.id;
    let Ok(seg) = t.ids.get_mut(id) else {
        return;
    };
    if !Arc::ptr_eq(&seg.attach, &token) {
        return;
    }
    drop(token);
    seg.dtime = now();
    seg.lpid = pid;
    let forced = ns.tunables.shm_rmid_forced();
    seg.forced_detach = forced;
    if seg.may_destroy(forced) {
        t.destroy(id);
    }
}

/// The segments `made_by` picks lost their maker (Linux's exit_shm: the thread exited, or
/// moved to another IPC namespace): they are orphans now, and with shm_rmid_forced set
/// those nothing has attached are destroyed.
pub fn exit_shm(ns: &IpcNs, made_by: impl Fn(&Segment) -> bool) {
    let forced = ns.tunables.shm_rmid_forced();
    let mut t = lock(&ns.shm);
    let mut doomed = Vec::new();
    for (id, seg) in t.ids.iter_mut() {
        if seg.creator.is_some() && made_by(seg) {
            seg.creator = None;
            if seg.may_destroy(forced) {
                doomed.push(id);
            }
        }
    }
    for id in doomed {
        t.destroy(id);
    }
}

impl Attach {
    /// A VMA of the attachment was copied (fork): as Linux's shm_open, the attach time and
    /// process are the copier's.
    pub fn opened(&self, pid: i32) {
        if let Some(ns) = self.ns.upgrade() {
            attached(&ns, self.id, pid);
        }
    }
}

/// A new attachment (shmat): records the attach time and process.
pub fn attached(ns: &IpcNs, id: i32, pid: i32) {
    let mut t = lock(&ns.shm);
    if let Ok(seg) = t.ids.get_mut(id) {
        seg.atime = now();
        seg.lpid = pid;
    }
}
