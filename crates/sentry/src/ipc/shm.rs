//! System V shared memory segments.
//!
//! A segment's memory is an unnamed file of the memfd file system, the same object that
//! backs MAP_SHARED|MAP_ANONYMOUS memory, so an attachment is a shared file mapping: every
//! process that attaches it sees the same pages, and fork shares them. Each VMA of an
//! attachment holds the segment's [`Attach`] token, so the number of attachments (Linux's
//! shm_nattch, which counts VMAs) is the token's reference count; VMAs that go away tell the
//! segment ([`detached`]), which destroys a segment marked for removal at its last detach.

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
        pid: i32,
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
        }
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
    /// that was briefly alive when the last attachment went).
    pub fn sweep(&mut self) {
        let doomed: Vec<i32> = self
            .ids
            .iter()
            .filter(|(_, s)| s.perm.mode & SHM_DEST != 0 && s.nattch() == 0)
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
    let gone = seg.perm.mode & SHM_DEST != 0 && seg.nattch() == 0;
    if gone {
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
