//! System V shared memory: shmget, shmat, shmdt, shmctl (the segments: `crate::ipc::shm`).

use std::sync::Arc;

use platform::{Prot, UserRegs, PAGE_SIZE};

use crate::caps::{capable, Cap};
use crate::errno::{Errno, SysResult};
use crate::ipc::shm::{self, Segment, SHM_DEST, SHM_LOCKED};
use crate::ipc::{limits, lock, put_u32, put_u64, IPC_INFO, IPC_RMID, IPC_SET, IPC_STAT};
use crate::mm::{page_align_up, FileMapping, Vma, VmaKind, MIN_ADDR};
use crate::task::TaskState;

const SHM_RDONLY: i32 = 0o10000;
const SHM_NORESERVE: i32 = 0o10000;
const SHM_RND: i32 = 0o20000;
const SHM_REMAP: i32 = 0o40000;
const SHM_EXEC: i32 = 0o100000;

const SHM_LOCK: i32 = 11;
const SHM_UNLOCK: i32 = 12;
const SHM_STAT: i32 = 13;
const SHM_INFO: i32 = 14;
const SHM_STAT_ANY: i32 = 15;

const S_IRUGO: u32 = 0o444;
const S_IWUGO: u32 = 0o222;
const S_IXUGO: u32 = 0o111;

pub fn shmget(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (key, size, flags) = (a[0] as i32, a[1], a[2] as i32);
    let ns = t.process.namespaces().ipc.ns;
    let mut tab = lock(&ns.shm);
    tab.sweep(ns.tunables.shm_rmid_forced());
    let pages_now = tab.pages;
    let creds = t.creds.clone();
    let id = tab.ids.get_or_create(
        key,
        flags,
        &creds,
        ns.tunables.shmmni(),
        |seg| {
            if seg.size < size {
                Err(Errno::EINVAL)
            } else {
                Ok(())
            }
        },
        |perm, id, _| {
            if !(limits::SHMMIN..=ns.tunables.shmmax()).contains(&size) {
                return Err(Errno::EINVAL);
            }
            let pages = size.div_ceil(PAGE_SIZE);
            // As Linux's heuristic overcommit: a segment larger than all the memory there is
            // is refused, unless SHM_NORESERVE.
            if flags & SHM_NORESERVE == 0 && size > t.kernel.platform.memory().size() {
                return Err(Errno::ENOMEM);
            }
            if pages_now
                .checked_add(pages)
                .is_none_or(|p| p > ns.tunables.shmall())
            {
                return Err(Errno(libc::ENOSPC));
            }
            let inode = super::copy::shared_anonymous_object(t, size)?;
            Ok(Segment::new(&ns, perm, id, size, inode, (t.pid, t.tid)))
        },
    )?;
    tab.pages = tab.ids.iter().map(|(_, s)| s.pages()).sum();
    Ok(id as u64)
}

pub fn shmat(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (id, mut addr, flags) = (a[0] as i32, a[1], a[2] as i32);
    if id < 0 {
        return Err(Errno::EINVAL);
    }
    let fixed = addr != 0;
    if fixed {
        if !addr.is_multiple_of(PAGE_SIZE) {
            if flags & SHM_RND == 0 {
                return Err(Errno::EINVAL);
            }
            addr &= !(PAGE_SIZE - 1);
            if addr == 0 && flags & SHM_REMAP != 0 {
                return Err(Errno::EINVAL);
            }
        }
    } else if flags & SHM_REMAP != 0 {
        return Err(Errno::EINVAL);
    }
    let (mut prot, mut acc) = if flags & SHM_RDONLY != 0 {
        (
            Prot {
                read: true,
                write: false,
                exec: false,
            },
            S_IRUGO,
        )
    } else {
        (
            Prot {
                read: true,
                write: true,
                exec: false,
            },
            S_IRUGO | S_IWUGO,
        )
    };
    if flags & SHM_EXEC != 0 {
        prot.exec = true;
        acc |= S_IXUGO;
    }
    let ns = t.process.namespaces().ipc.ns;
    let (inode, token, key) = {
        let mut tab = lock(&ns.shm);
        tab.sweep(ns.tunables.shm_rmid_forced());
        let seg = tab.ids.get(id)?;
        seg.perm.check(&t.creds, acc)?;
        (seg.inode.clone(), seg.attach.clone(), seg.perm.key)
    };
    let len = page_align_up(token.size).ok_or(Errno::EINVAL)?;
    let start = {
        let mut mm = t.mm.lock();
        let start = if fixed {
            let end = addr.checked_add(len).ok_or(Errno::EINVAL)?;
            if addr < MIN_ADDR {
                return Err(Errno::EPERM);
            }
            if end > mm.limit() {
                return Err(Errno::EINVAL);
            }
            if flags & SHM_REMAP == 0 && !mm.is_free(addr, end) {
                return Err(Errno::EINVAL);
            }
            addr
        } else {
            let below = mm.mmap_base;
            mm.find_free(len, below).ok_or(Errno::ENOMEM)?
        };
        let total = mm.mapped_bytes(0, u64::MAX) - mm.mapped_bytes(start, start + len) + len;
        if total > t.rlimits[libc::RLIMIT_AS as usize].0 {
            return Err(Errno::ENOMEM);
        }
        mm.insert_vma(Vma {
            start,
            end: start + len,
            prot,
            kind: VmaKind::File,
            file: Some(FileMapping {
                inode,
                offset: 0,
                shared: true,
                may_write: flags & SHM_RDONLY == 0,
                path: format!("/SYSV{:08x} (deleted)", key as u32).into_bytes(),
                shm: Some(token),
                name: None,
            }),
            flags: Default::default(),
        });
        start
    };
    shm::attached(&ns, id, t.pid);
    Ok(start)
}

pub fn shmdt(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let addr = a[0];
    if !addr.is_multiple_of(PAGE_SIZE) {
        return Err(Errno::EINVAL);
    }
    let mut mm = t.mm.lock();
    // As Linux: the first attachment VMA at or above `addr` that maps its segment from
    // `addr` on, then the rest of that attachment within the segment's size.
    let candidates: Vec<(u64, u64, u64, Arc<shm::Attach>)> = mm
        .vmas()
        .filter(|v| v.start >= addr)
        .filter_map(|v| {
            let f = v.file.as_ref()?;
            Some((v.start, v.end, f.offset, f.shm.clone()?))
        })
        .collect();
    let mut first: Option<Arc<shm::Attach>> = None;
    let mut doomed = Vec::new();
    for (start, end, offset, token) in candidates {
        let from_addr = start - addr == offset;
        match &first {
            None if from_addr => {
                doomed.push((start, end));
                first = Some(token);
            }
            None => {}
            Some(f) => {
                let size = page_align_up(f.size).unwrap_or(u64::MAX);
                if end - addr > size {
                    break;
                }
                if from_addr && Arc::ptr_eq(f, &token) {
                    doomed.push((start, end));
                }
            }
        }
    }
    if first.is_none() {
        return Err(Errno::EINVAL);
    }
    drop(first);
    for (start, end) in doomed {
        mm.unmap(start, end - start);
    }
    Ok(0)
}

pub fn shmctl(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (id, cmd, buf) = (a[0] as i32, a[1] as i32, a[2]);
    if cmd < 0 || id < 0 {
        return Err(Errno::EINVAL);
    }
    let ns = t.process.namespaces().ipc.ns;
    match cmd {
        IPC_INFO => {
            // struct shminfo64.
            let mut b = [0u8; 72];
            put_u64(&mut b, 0, ns.tunables.shmmax());
            put_u64(&mut b, 8, limits::SHMMIN);
            put_u64(&mut b, 16, ns.tunables.shmmni() as u64);
            put_u64(&mut b, 24, ns.tunables.shmmni() as u64);
            put_u64(&mut b, 32, ns.tunables.shmall());
            let max = {
                let mut tab = lock(&ns.shm);
                tab.sweep(ns.tunables.shm_rmid_forced());
                tab.ids.max_idx()
            };
            t.mm.copy_out(buf, &b)?;
            Ok(max.max(0) as u64)
        }
        SHM_INFO => {
            // struct shm_info: used_ids, shm_tot, shm_rss, shm_swp, swap_attempts,
            // swap_successes.
            let mut b = [0u8; 48];
            let max = {
                let mut tab = lock(&ns.shm);
                tab.sweep(ns.tunables.shm_rmid_forced());
                put_u32(&mut b, 0, tab.ids.in_use() as u32);
                put_u64(&mut b, 8, tab.pages);
                let rss: u64 = tab
                    .ids
                    .iter()
                    .map(|(_, s)| s.inode.stat().map_or(0, |st| st.blocks as u64 / 8))
                    .sum();
                put_u64(&mut b, 16, rss);
                tab.ids.max_idx()
            };
            t.mm.copy_out(buf, &b)?;
            Ok(max.max(0) as u64)
        }
        SHM_STAT | SHM_STAT_ANY | IPC_STAT => {
            let (ret, bytes) = {
                let mut tab = lock(&ns.shm);
                tab.sweep(ns.tunables.shm_rmid_forced());
                let (ret, seg) = if cmd == IPC_STAT {
                    (0, tab.ids.get(id)?)
                } else {
                    tab.ids.by_idx(id)?
                };
                if cmd != SHM_STAT_ANY {
                    seg.perm.check(&t.creds, S_IRUGO)?;
                }
                (ret, crate::ipc::perm_seen(seg.to_bytes(), &t.creds.user_ns))
            };
            t.mm.copy_out(buf, &bytes)?;
            Ok(ret as u64)
        }
        IPC_SET => {
            let mut b = [0u8; shm::DS_SIZE];
            t.mm.copy_in(buf, &mut b)?;
            let mut tab = lock(&ns.shm);
            let seg = tab.ids.get_mut(id)?;
            seg.perm.check_owner(&t.creds)?;
            seg.perm.set_from(&b, &t.creds.user_ns)?;
            seg.ctime = crate::ipc::now();
            Ok(0)
        }
        IPC_RMID => {
            let mut tab = lock(&ns.shm);
            let seg = tab.ids.get_mut(id)?;
            seg.perm.check_owner(&t.creds)?;
            if seg.nattch() == 0 {
                tab.destroy(id);
            } else {
                seg.perm.mode |= SHM_DEST;
                seg.perm.key = crate::ipc::IPC_PRIVATE;
            }
            Ok(0)
        }
        SHM_LOCK | SHM_UNLOCK => {
            let mut tab = lock(&ns.shm);
            let seg = tab.ids.get_mut(id)?;
            if !capable(&t.creds, Cap::IpcLock) {
                if t.creds.euid != seg.perm.uid && t.creds.euid != seg.perm.cuid {
                    return Err(Errno::EPERM);
                }
                if cmd == SHM_LOCK && t.rlimits[libc::RLIMIT_MEMLOCK as usize].0 == 0 {
                    return Err(Errno::EPERM);
                }
            }
            if cmd == SHM_LOCK {
                seg.perm.mode |= SHM_LOCKED;
            } else {
                seg.perm.mode &= !SHM_LOCKED;
            }
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}
