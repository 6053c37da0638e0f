//! Memory system calls.

use platform::{Prot, UserRegs, PAGE_SIZE};

use crate::caps::{capable, Cap};
use crate::errno::{Errno, SysResult};
use crate::mm::{page_align_up, FileMapping, Vma, VmaKind, MIN_ADDR};
use crate::task::TaskState;

const PROT_MASK: u64 = 0x7;
const PROT_GROWSDOWN: u64 = 0x0100_0000;
const PROT_GROWSUP: u64 = 0x0200_0000;

fn aligned(v: u64) -> bool {
    v.is_multiple_of(PAGE_SIZE)
}

/// Checks and rounds a (start, length) pair the way munmap/mprotect/madvise do.
fn range(start: u64, len: u64) -> Result<(u64, u64), Errno> {
    if !aligned(start) {
        return Err(Errno::EINVAL);
    }
    let len = page_align_up(len).ok_or(Errno::ENOMEM)?;
    let end = start.checked_add(len).ok_or(Errno::ENOMEM)?;
    Ok((start, end))
}

/// RLIMIT_AS, as Linux's may_expand_vm: the address space may not grow past the soft limit
/// to `new_total` bytes.
fn check_address_space_limit(t: &TaskState, new_total: u64) -> Result<(), Errno> {
    if new_total > t.rlimits[libc::RLIMIT_AS as usize].0 {
        return Err(Errno::ENOMEM);
    }
    Ok(())
}

pub fn brk(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let want = a[0];
    let mut mm = t.mm.lock();
    if want < mm.brk_start {
        return Ok(mm.brk);
    }
    let old_top = page_align_up(mm.brk).ok_or(Errno::ENOMEM)?;
    let Some(new_top) = page_align_up(want) else {
        return Ok(mm.brk);
    };
    if new_top > old_top {
        let total = mm.mapped_bytes(0, u64::MAX) + (new_top - old_top);
        if !mm.is_free(old_top, new_top) || check_address_space_limit(t, total).is_err() {
            return Ok(mm.brk);
        }
        let rw = Prot {
            read: true,
            write: true,
            exec: false,
        };
        // mlockall(MCL_FUTURE) locks the heap's growth too, within RLIMIT_MEMLOCK.
        let lock = mm.lock_future;
        if lock
            && !capable(&t.creds, Cap::IpcLock)
            && (new_top - old_top) + mm.locked_bytes(0, u64::MAX)
                > t.rlimits[libc::RLIMIT_MEMLOCK as usize].0
        {
            return Ok(mm.brk);
        }
        mm.map_anonymous(old_top, new_top - old_top, rw, VmaKind::Heap);
        if lock {
            mm.set_vm_flags(old_top, new_top, |f| f.locked = true);
            let _ = populate_locked(&mut mm, old_top, new_top);
        }
    } else if new_top < old_top {
        mm.unmap(new_top, old_top - new_top);
    }
    mm.brk = want;
    Ok(want)
}

pub fn mmap(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (addr, len, prot, flags, fd, offset) = (a[0], a[1], a[2], a[3] as i32, a[4] as i32, a[5]);
    if prot & !(PROT_MASK | PROT_GROWSDOWN | PROT_GROWSUP) != 0 || len == 0 || !aligned(offset) {
        return Err(Errno::EINVAL);
    }
    let sharing = flags & 0x3;
    if sharing != libc::MAP_PRIVATE && sharing != libc::MAP_SHARED && sharing != 0x3 {
        return Err(Errno::EINVAL);
    }
    let len = page_align_up(len).ok_or(Errno::ENOMEM)?;
    let shared = sharing == libc::MAP_SHARED || sharing == 0x3;
    let file = if flags & libc::MAP_ANONYMOUS == 0 {
        file_mapping(t, fd, offset, len, shared, prot)?
    } else {
        None
    };
    // Shared anonymous memory (and shared /dev/zero) is a file of its own, as Linux's shmem:
    // fork shares its pages instead of copying them on write.
    let file = match file {
        None if shared => Some(FileMapping {
            shm: None,
            inode: super::copy::shared_anonymous_object(t, len)?,
            offset: 0,
            shared: true,
            may_write: true,
            path: b"/dev/zero (deleted)".to_vec(),
            name: None,
        }),
        file => file,
    };
    if flags & libc::MAP_LOCKED != 0 {
        can_lock(t)?;
    }
    let mut mm = t.mm.lock();
    // MAP_LOCKED, or mlockall(MCL_FUTURE): the new mapping is locked, within RLIMIT_MEMLOCK
    // (Linux's mlock_future_ok: EAGAIN).
    let lock = flags & libc::MAP_LOCKED != 0 || mm.lock_future;
    if lock
        && !capable(&t.creds, Cap::IpcLock)
        && len + mm.locked_bytes(0, u64::MAX) > t.rlimits[libc::RLIMIT_MEMLOCK as usize].0
    {
        return Err(Errno::EAGAIN);
    }
    let fixed = flags & (libc::MAP_FIXED | libc::MAP_FIXED_NOREPLACE) != 0;
    let start = if fixed {
        if !aligned(addr) {
            return Err(Errno::EINVAL);
        }
        let end = addr.checked_add(len).ok_or(Errno::ENOMEM)?;
        if addr < MIN_ADDR || end > mm.limit() {
            return Err(if addr < MIN_ADDR {
                Errno::EPERM
            } else {
                Errno::ENOMEM
            });
        }
        if flags & libc::MAP_FIXED_NOREPLACE != 0
            && flags & libc::MAP_FIXED == 0
            && !mm.is_free(addr, end)
        {
            return Err(Errno::EEXIST);
        }
        addr
    } else {
        let hint = addr & !(PAGE_SIZE - 1);
        let hint_ok = hint >= MIN_ADDR
            && hint
                .checked_add(len)
                .is_some_and(|end| mm.is_free(hint, end));
        if hint_ok {
            hint
        } else {
            let below = if flags & libc::MAP_32BIT != 0 {
                0x8000_0000
            } else {
                mm.mmap_base
            };
            mm.find_free(len, below).ok_or(Errno::ENOMEM)?
        }
    };
    // A fixed mapping replaces what it overlaps: only the difference counts.
    let total = mm.mapped_bytes(0, u64::MAX) - mm.mapped_bytes(start, start + len) + len;
    check_address_space_limit(t, total)?;
    let prot = Prot::from_linux(prot as u32);
    let kind = if file.is_some() {
        VmaKind::File
    } else {
        VmaKind::Anonymous
    };
    mm.insert_vma(Vma {
        start,
        end: start + len,
        prot,
        kind,
        file,
        flags: crate::mm::VmFlags {
            locked: lock,
            ..Default::default()
        },
    });
    if lock {
        // Best effort, as Linux's mm_populate after a locked mmap.
        let _ = populate_locked(&mut mm, start, start + len);
    } else if flags & libc::MAP_POPULATE != 0 && prot.any() {
        // Best effort, as Linux: running out of memory here surfaces at first touch.
        let _ = mm.populate(start, start + len);
    }
    Ok(start)
}

/// Checks a file mapping request against the descriptor and describes it. /dev/zero maps
/// as anonymous memory (None).
fn file_mapping(
    t: &TaskState,
    fd: i32,
    offset: u64,
    len: u64,
    shared: bool,
    prot: u64,
) -> Result<Option<FileMapping>, Errno> {
    let file = t.fds.get(fd as u64)?;
    if file.flags() & libc::O_PATH as u32 != 0 {
        return Err(Errno::EBADF);
    }
    let inode = file.inode().cloned().ok_or(Errno::ENODEV)?;
    let st = inode.stat().map_err(Errno)?;
    match inode.file_type() {
        fs::vfs::FileType::Regular => {}
        fs::vfs::FileType::CharDevice if st.rdev == fs::dev::ZERO => return Ok(None),
        _ => return Err(Errno::ENODEV),
    }
    if !file.readable() {
        return Err(Errno::EACCES);
    }
    let mut may_write = file.writable() && file.flags() & libc::O_APPEND as u32 == 0;
    if shared && prot & libc::PROT_WRITE as u64 != 0 && !may_write {
        return Err(Errno::EACCES);
    }
    // A write-sealed memory file: no new shared writable mapping (EPERM), and a shared
    // read-only one can't become writable (mprotect: EACCES), as Linux's seal_check_write.
    if shared && inode.seals() & fs::vfs::seals::WRITE_SEALS != 0 {
        if prot & libc::PROT_WRITE as u64 != 0 {
            return Err(Errno::EPERM);
        }
        may_write = false;
    }
    if offset
        .checked_add(len)
        .is_none_or(|end| end > i64::MAX as u64)
    {
        return Err(Errno::EOVERFLOW);
    }
    let path = match &file.location {
        Some(loc) => t.fs.ns().path(loc, &t.fs.root()),
        None => Vec::new(),
    };
    Ok(Some(FileMapping {
        inode,
        offset,
        shared,
        may_write,
        path,
        shm: None,
        name: file.location.as_ref().map(|l| l.dentry.clone()),
    }))
}

pub fn msync(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let flags = a[2] as i32;
    let known = libc::MS_ASYNC | libc::MS_SYNC | libc::MS_INVALIDATE;
    if flags & !known != 0
        || flags & (libc::MS_ASYNC | libc::MS_SYNC) == (libc::MS_ASYNC | libc::MS_SYNC)
    {
        return Err(Errno::EINVAL);
    }
    let (start, end) = range(a[0], a[1])?;
    let mm = t.mm.lock();
    if end > mm.limit() || !mm.is_fully_mapped(start, end) {
        return Err(Errno::ENOMEM);
    }
    mm.write_back(start, end);
    Ok(0)
}

pub fn munmap(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    if a[1] == 0 {
        return Err(Errno::EINVAL);
    }
    let (start, end) = range(a[0], a[1]).map_err(|_| Errno::EINVAL)?;
    let mut mm = t.mm.lock();
    if end > mm.limit() {
        return Err(Errno::EINVAL);
    }
    mm.unmap(start, end - start);
    Ok(0)
}

pub fn mprotect(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let prot = a[2];
    if prot & !(PROT_MASK | PROT_GROWSDOWN | PROT_GROWSUP) != 0
        || prot & (PROT_GROWSDOWN | PROT_GROWSUP) == (PROT_GROWSDOWN | PROT_GROWSUP)
    {
        return Err(Errno::EINVAL);
    }
    let (start, end) = range(a[0], a[1])?;
    if start == end {
        return Ok(0);
    }
    let mut mm = t.mm.lock();
    if end > mm.limit() {
        return Err(Errno::ENOMEM);
    }
    mm.protect(start, end, Prot::from_linux(prot as u32))?;
    Ok(0)
}

pub fn mremap(t: &mut TaskState, r: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let to = do_mremap(t, r, a)?;
    if to != a[0] {
        // A moved aio ring keeps its context: the context's id follows it (Linux's
        // aio_ring_mremap).
        let ring =
            t.mm.lock()
                .vma_at(to)
                .filter(|v| v.flags.dontexpand)
                .and_then(|v| v.file.as_ref().map(|f| f.inode.clone()));
        if let Some(inode) = ring {
            t.mm.aio.ring_moved(&inode, to);
        }
    }
    Ok(to)
}

fn do_mremap(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (old, old_len, new_len, flags, new_addr) = (a[0], a[1], a[2], a[3] as i32, a[4]);
    let known = libc::MREMAP_MAYMOVE | libc::MREMAP_FIXED | 4; // 4: MREMAP_DONTUNMAP
    if flags & !known != 0
        || (flags & libc::MREMAP_FIXED != 0 && flags & libc::MREMAP_MAYMOVE == 0)
        || !aligned(old)
        || flags & 4 != 0
    {
        return Err(Errno::EINVAL);
    }
    let old_len = page_align_up(old_len).ok_or(Errno::EINVAL)?;
    let new_len = page_align_up(new_len).ok_or(Errno::EINVAL)?;
    if new_len == 0 || old_len == 0 {
        return Err(Errno::EINVAL);
    }
    let mut mm = t.mm.lock();
    let old_end = old.checked_add(old_len).ok_or(Errno::EFAULT)?;
    let vma = mm.vma_at(old).ok_or(Errno::EFAULT)?.clone();
    if new_len <= old_len && flags & libc::MREMAP_FIXED == 0 {
        // Shrinking is an munmap of the tail, whatever VMAs it spans (as Linux).
        mm.unmap(old + new_len, old_len - new_len);
        return Ok(old);
    }
    if old_end > vma.end {
        return Err(Errno::EFAULT);
    }
    if new_len > old_len && vma.flags.dontexpand {
        return Err(Errno::EFAULT);
    }
    check_address_space_limit(
        t,
        mm.mapped_bytes(0, u64::MAX) + new_len.saturating_sub(old_len),
    )?;
    let old_offset = vma.file_offset(old);
    let moved_vma = |to: u64, len: u64| Vma {
        start: to,
        end: to + len,
        prot: vma.prot,
        kind: vma.kind,
        file: vma.file.clone().map(|mut f| {
            f.offset = old_offset.unwrap_or(f.offset);
            f
        }),
        flags: vma.flags,
    };
    let move_to = |mm: &mut crate::mm::MemoryManager, to: u64| -> SysResult {
        mm.insert_vma(moved_vma(to, new_len));
        let moved = old_len.min(new_len);
        mm.move_pages(old, to, moved)?;
        mm.unmap(old, old_len);
        Ok(to)
    };
    if flags & libc::MREMAP_FIXED != 0 {
        let new_end = new_addr.checked_add(new_len).ok_or(Errno::EINVAL)?;
        if !aligned(new_addr) || (new_addr < old_end && old < new_end) {
            return Err(Errno::EINVAL);
        }
        if new_addr < MIN_ADDR || new_end > mm.limit() {
            return Err(Errno::EINVAL);
        }
        return move_to(&mut mm, new_addr);
    }
    let grow_end = old.checked_add(new_len).ok_or(Errno::ENOMEM)?;
    if old_end == vma.end && mm.is_free(old_end, grow_end) {
        let mut grown = moved_vma(old_end, grow_end - old_end);
        if let (Some(f), Some(off)) = (grown.file.as_mut(), vma.file_offset(old_end)) {
            f.offset = off;
        }
        mm.insert_vma(grown);
        return Ok(old);
    }
    if flags & libc::MREMAP_MAYMOVE == 0 {
        return Err(Errno::ENOMEM);
    }
    let to = mm.find_free(new_len, mm.mmap_base).ok_or(Errno::ENOMEM)?;
    move_to(&mut mm, to)
}

const MADV_WIPEONFORK: i32 = 18;
const MADV_KEEPONFORK: i32 = 19;
const MADV_COLD: i32 = 20;
const MADV_PAGEOUT: i32 = 21;
const MADV_POPULATE_READ: i32 = 22;
const MADV_POPULATE_WRITE: i32 = 23;
const MADV_DONTNEED_LOCKED: i32 = 24;

pub fn madvise(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let advice = a[2] as i32;
    match advice {
        0..=4 | 8..=23 | MADV_DONTNEED_LOCKED => {}
        libc::MADV_HWPOISON => return Err(Errno::EPERM),
        _ => return Err(Errno::EINVAL),
    }
    let (start, end) = range(a[0], a[1])?;
    if start == end {
        return Ok(0);
    }
    let mut mm = t.mm.lock();
    if end > mm.limit() || !mm.is_fully_mapped(start, end) {
        return Err(Errno::ENOMEM);
    }
    // Linux's per-VMA refusals.
    let vmas: Vec<crate::mm::Vma> = mm
        .vmas()
        .filter(|v| v.end > start && v.start < end)
        .cloned()
        .collect();
    for v in &vmas {
        let shared = v.file.as_ref().is_some_and(|f| f.shared);
        let file_backed = v.kind == VmaKind::File;
        let refused = match advice {
            libc::MADV_DONTNEED | MADV_COLD | MADV_PAGEOUT => v.flags.locked,
            libc::MADV_FREE => file_backed || shared || v.flags.locked,
            // Only shared, writable file mappings have pages to punch out of the file.
            libc::MADV_REMOVE if v.flags.locked || !file_backed => true,
            libc::MADV_REMOVE if !(shared && v.file.as_ref().is_some_and(|f| f.may_write)) => {
                return Err(Errno::EACCES)
            }
            MADV_WIPEONFORK => file_backed || shared,
            _ => false,
        };
        if refused {
            return Err(Errno::EINVAL);
        }
    }
    match advice {
        libc::MADV_DONTNEED | libc::MADV_FREE | libc::MADV_REMOVE | MADV_DONTNEED_LOCKED => {
            mm.discard(start, end)?
        }
        libc::MADV_DONTFORK => mm.set_vm_flags(start, end, |f| f.dontfork = true),
        libc::MADV_DOFORK => mm.set_vm_flags(start, end, |f| f.dontfork = false),
        MADV_WIPEONFORK => mm.set_vm_flags(start, end, |f| f.wipeonfork = true),
        MADV_KEEPONFORK => mm.set_vm_flags(start, end, |f| f.wipeonfork = false),
        MADV_POPULATE_READ | MADV_POPULATE_WRITE => {
            mm.populate_range(start, end, advice == MADV_POPULATE_WRITE)?
        }
        // The rest is advice about paging that the sandbox's memory doesn't need.
        _ => {}
    }
    Ok(0)
}

/// mincore: which pages of `[start, start+len)` are resident (populated in the sandbox's
/// memory; a file mapping's page counts once the mapping has it).
pub fn mincore(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (start, len, vec) = (a[0], a[1], a[2]);
    if !aligned(start) {
        return Err(Errno::EINVAL);
    }
    let pages = len.div_ceil(PAGE_SIZE);
    let end = pages
        .checked_mul(PAGE_SIZE)
        .and_then(|l| start.checked_add(l))
        .ok_or(Errno::ENOMEM)?;
    let out = {
        let mm = t.mm.lock();
        if end > mm.limit() {
            return Err(Errno::ENOMEM);
        }
        if !mm.is_fully_mapped(start, end) {
            return Err(Errno::ENOMEM);
        }
        (0..pages)
            .map(|i| {
                u8::from(mm.resident_in(start + i * PAGE_SIZE, start + (i + 1) * PAGE_SIZE) > 0)
            })
            .collect::<Vec<u8>>()
    };
    t.mm.copy_out(vec, &out)?;
    Ok(0)
}

const MLOCK_ONFAULT: u64 = 1;
const MCL_CURRENT: u64 = 1;
const MCL_FUTURE: u64 = 2;
const MCL_ONFAULT: u64 = 4;

/// Linux's can_do_mlock: CAP_IPC_LOCK, or a RLIMIT_MEMLOCK above 0.
fn can_lock(t: &TaskState) -> Result<(), Errno> {
    if capable(&t.creds, Cap::IpcLock) || t.rlimits[libc::RLIMIT_MEMLOCK as usize].0 != 0 {
        Ok(())
    } else {
        Err(Errno::EPERM)
    }
}

/// The rounded range of mlock and munlock: from the page of `start`, whole pages.
fn lock_range(start: u64, len: u64) -> Result<(u64, u64), Errno> {
    let offset = start % PAGE_SIZE;
    let len = len
        .checked_add(offset)
        .and_then(page_align_up)
        .ok_or(Errno::ENOMEM)?;
    let start = start - offset;
    let end = start.checked_add(len).ok_or(Errno::EINVAL)?;
    Ok((start, end))
}

/// Locks what mlock would: every VMA but the vDSO's (Linux's special mappings).
fn lockable(v: &crate::mm::Vma) -> bool {
    !matches!(v.kind, VmaKind::Vdso | VmaKind::Vvar)
}

/// Fills the locked pages of `[start, end)` (mlock without MLOCK_ONFAULT): private writable
/// pages for writing, as Linux breaks copy-on-write; PROT_NONE is skipped.
fn populate_locked(mm: &mut crate::mm::MemoryManager, start: u64, end: u64) -> Result<(), Errno> {
    let vmas: Vec<(u64, u64, Prot, bool)> = mm
        .vmas()
        .filter(|v| v.end > start && v.start < end && v.flags.locked && v.prot.any())
        .map(|v| {
            let shared = v.file.as_ref().is_some_and(|f| f.shared);
            (v.start.max(start), v.end.min(end), v.prot, shared)
        })
        .collect();
    for (s, e, prot, shared) in vmas {
        let write = prot.write && !shared;
        // Linux's __mlock_posix_error_return: no memory is EAGAIN; a page that can't be
        // read (past the end of a file) stays out, as Linux's.
        if let Err(Errno::ENOMEM) = mm.populate_range(s, e, write) {
            return Err(Errno::EAGAIN);
        }
    }
    Ok(())
}

fn do_mlock(t: &mut TaskState, start: u64, len: u64, onfault: bool) -> SysResult {
    can_lock(t)?;
    let (start, end) = lock_range(start, len)?;
    if start == end {
        return Ok(0);
    }
    let limit = t.rlimits[libc::RLIMIT_MEMLOCK as usize].0;
    let mut mm = t.mm.lock();
    let mut locked = (end - start) + mm.locked_bytes(0, u64::MAX);
    if locked > limit && !capable(&t.creds, Cap::IpcLock) {
        locked -= mm.locked_bytes(start, end);
        if locked > limit {
            return Err(Errno::ENOMEM);
        }
    }
    if end > mm.limit() || !mm.is_fully_mapped(start, end) {
        return Err(Errno::ENOMEM);
    }
    mm.set_vm_flags(start, end, |f| f.locked = true);
    // Only mappings mlock may lock (not the vDSO's) stay locked.
    let special: Vec<(u64, u64)> = mm
        .vmas()
        .filter(|v| v.end > start && v.start < end && !lockable(v))
        .map(|v| (v.start, v.end))
        .collect();
    for (s, e) in special {
        mm.set_vm_flags(s, e, |f| f.locked = false);
    }
    if !onfault {
        populate_locked(&mut mm, start, end)?;
    }
    Ok(0)
}

pub fn mlock(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    do_mlock(t, a[0], a[1], false)
}

pub fn mlock2(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    if a[2] & !MLOCK_ONFAULT != 0 {
        return Err(Errno::EINVAL);
    }
    do_mlock(t, a[0], a[1], a[2] & MLOCK_ONFAULT != 0)
}

pub fn munlock(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (start, end) = lock_range(a[0], a[1])?;
    if start == end {
        return Ok(0);
    }
    let mut mm = t.mm.lock();
    if end > mm.limit() || !mm.is_fully_mapped(start, end) {
        return Err(Errno::ENOMEM);
    }
    mm.set_vm_flags(start, end, |f| f.locked = false);
    Ok(0)
}

pub fn mlockall(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let flags = a[0];
    if flags == 0 || flags & !(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) != 0 || flags == MCL_ONFAULT
    {
        return Err(Errno::EINVAL);
    }
    can_lock(t)?;
    let limit = t.rlimits[libc::RLIMIT_MEMLOCK as usize].0;
    let mut mm = t.mm.lock();
    if flags & MCL_CURRENT != 0
        && mm.mapped_bytes(0, u64::MAX) > limit
        && !capable(&t.creds, Cap::IpcLock)
    {
        return Err(Errno::ENOMEM);
    }
    mm.lock_future = flags & MCL_FUTURE != 0;
    if flags & MCL_CURRENT != 0 {
        let ranges: Vec<(u64, u64)> = mm
            .vmas()
            .filter(|v| lockable(v))
            .map(|v| (v.start, v.end))
            .collect();
        for &(s, e) in &ranges {
            mm.set_vm_flags(s, e, |f| f.locked = true);
        }
        if flags & MCL_ONFAULT == 0 {
            // Best effort, as Linux's mm_populate after mlockall.
            for (s, e) in ranges {
                let _ = populate_locked(&mut mm, s, e);
            }
        }
    }
    Ok(0)
}

pub fn munlockall(t: &mut TaskState, _: &mut UserRegs, _: [u64; 6]) -> SysResult {
    let mut mm = t.mm.lock();
    mm.lock_future = false;
    let ranges: Vec<(u64, u64)> = mm
        .vmas()
        .filter(|v| v.flags.locked)
        .map(|v| (v.start, v.end))
        .collect();
    for (s, e) in ranges {
        mm.set_vm_flags(s, e, |f| f.locked = false);
    }
    Ok(0)
}
