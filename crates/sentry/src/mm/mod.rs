//! The memory manager: an application's virtual memory areas and the pages behind them.
//!
//! The MM owns the truth (VMAs and the memory-file page backing each populated virtual
//! page); the platform address space is a cache of it, filled eagerly in windows because a
//! user-mode page fault costs tens of microseconds under KVM.

mod file_cache;
pub mod policy;
mod vma;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use fs::vfs::{Mappable, MappedRange, Translation};
use platform::{AccessType, AddressSpace, Gpa, MemoryFile, PlatformError, Prot, PAGE_SIZE};

use crate::errno::Errno;
pub use vma::{FileMapping, VmFlags, Vma, VmaKind};

/// First address the application may use (Linux's default `vm.mmap_min_addr`).
pub const MIN_ADDR: u64 = 0x1_0000;
/// How many pages a fault populates: the aligned window of this many pages that holds the
/// faulting page. A fault served through the ring costs 3 exits here (docs/architecture.md,
/// "What a page fault costs"), a page already in the guest tables one exit on first touch,
/// or none when KVM prefetches it with a neighbour.
const FAULT_WINDOW_PAGES: u64 = 16;
/// How many recent fault windows a new fault is compared with to detect streaming.
const RECENT_WINDOWS: usize = 4;
/// The window when the program streams through memory (the fault lands just past the last
/// fault's window), like Linux's readahead: such a program touches every page of it.
const STREAMING_FAULT_WINDOW_PAGES: u64 = 64;
/// The same for a file that lends its pages (ImgFS): mapping one costs no copy and no
/// memory, only a page-table entry, while each fault avoided saves tens of microseconds.
const LENT_FAULT_WINDOW_PAGES: u64 = 256;

pub fn page_align_down(v: u64) -> u64 {
    v & !(PAGE_SIZE - 1)
}

/// Rounds up to a page, or None on overflow.
pub fn page_align_up(v: u64) -> Option<u64> {
    v.checked_add(PAGE_SIZE - 1).map(page_align_down)
}

/// A page of a file as shared mappings see it: (inode identity, file page index).
type FilePageKey = (usize, u64);

/// A memory-file page that every MAP_SHARED mapping of one file page uses.
struct SharedPage {
    gpa: Gpa,
    /// Mapped pages (in any address space) using it.
    users: usize,
    mem: Arc<MemoryFile>,
}

type SharedPageIndex = std::collections::HashMap<FilePageKey, SharedPage>;

/// The memory-file page each file page has in shared mappings, so that every MAP_SHARED
/// mapping of a file (in any process) sees the same page, and read/write of the file see it
/// too (`shared_page_hooks`). Each user holds a reference on the page
/// (`MemoryFile::share_page`); the index holds none, and an entry leaves the index, under
/// its lock, before its last user frees the page.
fn shared_index() -> MutexGuard<'static, SharedPageIndex> {
    static PAGES: std::sync::OnceLock<Mutex<SharedPageIndex>> = std::sync::OnceLock::new();
    PAGES
        .get_or_init(|| Mutex::new(SharedPageIndex::new()))
        .lock()
        .unwrap_or_else(|e| e.into_inner())
}

/// How many entries the shared-page index has (kept under its lock, read without it).
static SHARED_PAGES: AtomicUsize = AtomicUsize::new(0);

/// Drops one user of a shared file page.
fn release_shared_page(index: &mut SharedPageIndex, key: &FilePageKey) {
    if let Some(entry) = index.get_mut(key) {
        entry.users -= 1;
        if entry.users == 0 {
            index.remove(key);
            SHARED_PAGES.store(index.len(), Ordering::Release);
        }
    }
}

/// Calls `each(page, offset in page, range in the caller's buffer)` for every file page in
/// `[offset, offset+len)` that a shared mapping holds.
fn for_shared_pages(
    file: usize,
    offset: u64,
    len: usize,
    mut each: impl FnMut(&SharedPage, u64, std::ops::Range<usize>),
) {
    // Most reads and writes happen with no shared mapping anywhere: skip the lock then. A
    // mapping made concurrently with this call may or may not be seen, as on Linux.
    if SHARED_PAGES.load(Ordering::Acquire) == 0 {
        return;
    }
    let index = shared_index();
    if index.is_empty() || len == 0 {
        return;
    }
    let end = offset.saturating_add(len as u64);
    let mut page = offset / PAGE_SIZE;
    while page * PAGE_SIZE < end {
        let page_start = page * PAGE_SIZE;
        if let Some(entry) = index.get(&(file, page)) {
            let from = page_start.max(offset);
            let to = (page_start + PAGE_SIZE).min(end);
            let range = (from - offset) as usize..(to - offset) as usize;
            each(entry, from - page_start, range);
        }
        page += 1;
    }
}

/// The functions that keep file read/write coherent with shared mappings (see
/// `fs::vfs::SharedPageHooks`).
fn shared_page_hooks() -> fs::vfs::SharedPageHooks {
    fs::vfs::SharedPageHooks {
        read: |file, offset, buf| {
            for_shared_pages(file, offset, buf.len(), |p, in_page, range| {
                p.mem.read(p.gpa + in_page, &mut buf[range]);
            })
        },
        write: |file, offset, data| {
            file_cache::invalidate(file, offset, data.len() as u64);
            for_shared_pages(file, offset, data.len(), |p, in_page, range| {
                p.mem.write(p.gpa + in_page, &data[range]);
            })
        },
    }
}

/// The sandbox changed `inode`'s content other than by writing it (truncate, fallocate):
/// pages private mappings kept of it are out of date.
pub fn file_content_changed(inode: &Arc<dyn fs::vfs::Inode>) {
    file_cache::forget(fs::vfs::file_identity(inode));
}

/// What populating pages of a VMA needs to know of its file, from one stat (so callers ask
/// once per fault, not per page).
#[derive(Clone, Copy)]
struct FileState {
    /// The first address of a file mapping whose page lies wholly past the end of the file,
    /// where Linux raises SIGBUS (the rest of the file's last page reads as zeros); u64::MAX
    /// for anything else.
    limit: u64,
    /// For a private read-only mapping of a file that doesn't lend its pages: the file's
    /// version, under which its pages are kept in the file cache (`file_cache`).
    cache_version: Option<file_cache::Version>,
}

impl FileState {
    const NO_FILE: FileState = FileState {
        limit: u64::MAX,
        cache_version: None,
    };

    fn of(vma: &Vma) -> FileState {
        let Some(f) = vma.file.as_ref() else {
            return FileState::NO_FILE;
        };
        let st = f.inode.stat().ok();
        let size = st.as_ref().map_or(0, |s| s.size.max(0) as u64);
        let limit = match page_align_up(size) {
            Some(end) if end <= f.offset => vma.start,
            Some(end) => vma.start.saturating_add(end - f.offset),
            None => u64::MAX,
        };
        let cacheable = !f.shared
            && !vma.prot.write
            && f.inode.file_type() == fs::vfs::FileType::Regular
            && f.inode.mappable().is_none();
        FileState {
            limit,
            cache_version: st
                .filter(|_| cacheable)
                .map(|s| file_cache::Version::of(&s)),
        }
    }
}

/// Why a fault could not be resolved: Linux's SEGV_MAPERR or SEGV_ACCERR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultError {
    NotMapped,
    AccessDenied,
    OutOfMemory,
    /// A page of a file mapping wholly past the end of the file: SIGBUS (BUS_ADRERR).
    BeyondEof,
}

/// One address space's memory.
pub struct MemoryManager {
    mem: Arc<MemoryFile>,
    space: Arc<dyn AddressSpace>,
    /// Application address limit (exclusive).
    limit: u64,
    vmas: BTreeMap<u64, Vma>,
    /// Populated pages: virtual page -> memory-file page.
    pages: BTreeMap<u64, Gpa>,
    /// Populated pages of shared file mappings: virtual page -> their file page.
    shared_keys: BTreeMap<u64, FilePageKey>,
    /// Top of the area top-down mmap allocation searches below.
    pub mmap_base: u64,
    pub brk_start: u64,
    pub brk: u64,
    /// The program this address space runs, kept from being written (ETXTBSY) while it
    /// lives; a forked copy holds it too.
    pub exe_access: Option<fs::vfs::write_access::ExecAccess>,
    /// Where the program is (Linux's mm->exe_file): what /proc/PID/exe leads to, even once
    /// the file is renamed or deleted. Kept as long as `exe_access`.
    pub exe_file: Option<fs::vfs::Location>,
    /// mlockall(MCL_FUTURE): new mappings are locked.
    pub lock_future: bool,
    /// The windows the last new-page faults populated, `[start, end)`, most recent first: a
    /// fault right next to one means the program is streaming through memory (see
    /// `handle_fault`). Several, because a program streams through a few regions at once
    /// (heap, malloc arenas, stack) and its faults interleave.
    recent_windows: [(u64, u64); RECENT_WINDOWS],
}

impl MemoryManager {
    pub fn new(mem: Arc<MemoryFile>, space: Arc<dyn AddressSpace>, limit: u64) -> Self {
        fs::vfs::set_shared_page_hooks(shared_page_hooks());
        MemoryManager {
            mem,
            space,
            limit,
            vmas: BTreeMap::new(),
            pages: BTreeMap::new(),
            shared_keys: BTreeMap::new(),
            mmap_base: limit,
            brk_start: 0,
            brk: 0,
            exe_access: None,
            exe_file: None,
            lock_future: false,
            recent_windows: [(0, 0); RECENT_WINDOWS],
        }
    }

    pub fn address_space(&self) -> &Arc<dyn AddressSpace> {
        &self.space
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// The VMA containing `addr`.
    pub fn vma_at(&self, addr: u64) -> Option<&Vma> {
        self.vmas
            .range(..=addr)
            .next_back()
            .map(|(_, v)| v)
            .filter(|v| addr < v.end)
    }

    /// Whether any VMA intersects `[start, end)`.
    /// Bytes of address space mapped in `[start, end)` (all of it: `mapped_bytes(0, u64::MAX)`).
    pub fn mapped_bytes(&self, start: u64, end: u64) -> u64 {
        self.vmas
            .range(..end)
            .rev()
            .take_while(|(_, v)| v.end > start)
            .map(|(_, v)| v.end.min(end) - v.start.max(start))
            .sum()
    }

    pub fn is_free(&self, start: u64, end: u64) -> bool {
        if start < MIN_ADDR || end > self.limit || start >= end {
            return false;
        }
        if let Some((_, v)) = self.vmas.range(..end).next_back() {
            if v.end > start {
                return false;
            }
        }
        true
    }

    /// Finds a free range of `len` bytes, top-down below `mmap_base` (or below 2 GiB for
    /// MAP_32BIT), as Linux's default layout does.
    pub fn find_free(&self, len: u64, below: u64) -> Option<u64> {
        let mut top = below.min(self.limit);
        for (_, v) in self.vmas.range(..top).rev() {
            if v.end <= top && top - v.end >= len {
                return Some(top - len);
            }
            top = top.min(v.start);
        }
        (top >= MIN_ADDR + len).then(|| top - len)
    }

    /// All VMAs in address order.
    pub fn vmas(&self) -> impl Iterator<Item = &Vma> {
        self.vmas.values()
    }

    /// Splits VMAs so that `addr` is a boundary.
    fn split_at(&mut self, addr: u64) {
        let Some((&start, v)) = self.vmas.range(..addr).next_back() else {
            return;
        };
        if v.end > addr {
            let mut tail = v.clone();
            if let Some(f) = tail.file.as_mut() {
                f.offset += addr - start;
            }
            tail.start = addr;
            self.vmas.get_mut(&start).expect("present").end = addr;
            self.vmas.insert(addr, tail);
        }
    }

    /// Inserts a new anonymous VMA, replacing anything in its range.
    pub fn map_anonymous(&mut self, start: u64, len: u64, prot: Prot, kind: VmaKind) {
        self.insert_vma(Vma {
            start,
            end: start + len,
            prot,
            kind,
            file: None,
            flags: Default::default(),
        });
    }

    /// Maps memory-file pages that belong to someone else (the vDSO's) at `start` as a VMA
    /// of `kind`, sharing them: a private write copies the page, as for a page shared since
    /// fork.
    pub fn map_shared_pages(
        &mut self,
        start: u64,
        pages: &[Gpa],
        prot: Prot,
        kind: VmaKind,
    ) -> Result<(), FaultError> {
        self.insert_vma(Vma {
            start,
            end: start + pages.len() as u64 * PAGE_SIZE,
            prot,
            kind,
            file: None,
            flags: Default::default(),
        });
        for (i, &gpa) in pages.iter().enumerate() {
            self.mem.share_page(gpa);
            self.install_page(start + i as u64 * PAGE_SIZE, gpa, prot)
                .map_err(|_| FaultError::OutOfMemory)?;
        }
        Ok(())
    }

    /// Records `gpa` as the page behind `va` and maps it with `prot` (write access withheld
    /// while the page is copy-on-write).
    fn install_page(&mut self, va: u64, gpa: Gpa, prot: Prot) -> Result<(), PlatformError> {
        self.pages.insert(va, gpa);
        if prot.any() {
            self.space
                .map(va, gpa, PAGE_SIZE, self.page_prot(va, gpa, prot))?;
        }
        Ok(())
    }

    /// Inserts a VMA (anonymous or file), replacing anything in its range.
    pub fn insert_vma(&mut self, vma: Vma) {
        let (start, end) = (vma.start, vma.end);
        self.unmap(start, end - start);
        self.tell_mappable(&vma, |m, range| m.add_mapping(range));
        self.vmas.insert(start, vma);
        self.merge_around(start, end);
    }

    /// Removes `[start, start+len)` from the address space and frees its pages (shared file
    /// mappings are written back first).
    pub fn unmap(&mut self, start: u64, len: u64) {
        let end = start + len;
        self.split_at(start);
        self.split_at(end);
        self.write_back(start, end);
        self.remove_vmas(start, end);
        self.release_pages(start, end);
    }

    /// Calls `f` with the VMA's file, if it lends its pages ([`fs::vfs::Mappable`]), and the
    /// range the VMA maps.
    fn tell_mappable(&self, vma: &Vma, f: impl FnOnce(&dyn Mappable, MappedRange)) {
        let Some(file) = vma.file.as_ref() else {
            return;
        };
        if let Some(m) = file.inode.mappable() {
            f(
                m,
                MappedRange {
                    space: Arc::as_ptr(&self.space) as *const () as usize,
                    addr: vma.start,
                    len: vma.end - vma.start,
                    offset: file.offset,
                    writable: file.shared && vma.prot.write,
                },
            );
        }
    }

    /// The page an ImgFS-like file lends for `va` of a file mapping, as a guest-physical
    /// address in the image's region: mapped without a copy, never written.
    fn lent_page(&self, vma: &Vma, va: u64) -> Option<Gpa> {
        let m = vma.file.as_ref()?.inode.mappable()?;
        let offset = vma.file_offset(va)?;
        match m.translate(offset, false) {
            Ok(Translation::Region { region, offset }) => {
                let base = self
                    .mem
                    .map_region(region.key, region.base, region.len, region.owner)
                    .map_err(|e| tracing::debug!("can't map a file's pages directly: {e}"))
                    .ok()?;
                Some(base + offset)
            }
            Ok(Translation::Copy) | Err(_) => None,
        }
    }

    /// Drops the pages of `[start, end)`: unmapped from the guest and returned as zeros.
    fn release_pages(&mut self, start: u64, end: u64) {
        let vas: Vec<u64> = self.pages.range(start..end).map(|(&va, _)| va).collect();
        if vas.is_empty() {
            return;
        }
        let mut frames = Vec::with_capacity(vas.len());
        for va in &vas {
            if let Some(gpa) = self.pages.remove(va) {
                frames.push(gpa);
            }
            if let Some(key) = self.shared_keys.remove(va) {
                release_shared_page(&mut shared_index(), &key);
            }
        }
        self.unmap_runs(&vas);
        self.mem.free_pages(&frames);
    }

    /// Removes guest mappings of the given virtual pages, in contiguous runs.
    fn unmap_runs(&self, vas: &[u64]) {
        let mut vas = vas.to_vec();
        platform::for_each_page_run(&mut vas, |start, len| self.space.unmap(start, len));
    }

    /// Changes the protection of `[start, end)`, which must be fully mapped.
    pub fn protect(&mut self, start: u64, end: u64, prot: Prot) -> Result<(), Errno> {
        if !self.is_fully_mapped(start, end) {
            return Err(Errno::ENOMEM);
        }
        // A shared mapping of a file opened read-only can never become writable, nor can
        // the vDSO's parameter page.
        let denied = self
            .vmas
            .range(..end)
            .rev()
            .take_while(|(_, v)| v.end > start)
            .any(|(_, v)| {
                prot.write
                    && (v.kind == VmaKind::Vvar
                        || v.file.as_ref().is_some_and(|f| f.shared && !f.may_write))
            });
        if denied {
            return Err(Errno::EACCES);
        }
        self.split_at(start);
        self.split_at(end);
        for (_, v) in self.vmas.range_mut(start..end) {
            v.prot = prot;
        }
        let populated: Vec<(u64, Gpa)> = self
            .pages
            .range(start..end)
            .map(|(&va, &g)| (va, g))
            .collect();
        if prot.any() {
            for (va, gpa) in populated {
                self.space
                    .map(va, gpa, PAGE_SIZE, self.page_prot(va, gpa, prot))
                    .map_err(|_| Errno::ENOMEM)?;
            }
        } else {
            let vas: Vec<u64> = populated.iter().map(|&(va, _)| va).collect();
            self.unmap_runs(&vas);
        }
        self.merge_around(start, end);
        Ok(())
    }

    /// Merges VMAs with equal attributes at the edges of `[start, end)`, as Linux does, so
    /// that repeated mprotect calls don't fragment the tree.
    fn merge_around(&mut self, start: u64, end: u64) {
        let keys: Vec<u64> = self
            .vmas
            .range(..=end)
            .rev()
            .take_while(|(_, v)| v.end >= start)
            .map(|(&k, _)| k)
            .collect();
        for k in keys.into_iter().rev() {
            let Some(v) = self.vmas.get(&k).cloned() else {
                continue;
            };
            if let Some(next) = self.vmas.get(&v.end).cloned() {
                if next.prot == v.prot
                    && next.kind == v.kind
                    && next.flags == v.flags
                    && v.file.is_none()
                    && next.file.is_none()
                {
                    self.vmas.remove(&next.start);
                    self.vmas.get_mut(&k).expect("present").end = next.end;
                }
            }
        }
    }

    /// Bytes of locked VMAs (Linux's locked_vm), in `[start, end)`.
    pub fn locked_bytes(&self, start: u64, end: u64) -> u64 {
        self.vmas
            .range(..end)
            .rev()
            .take_while(|(_, v)| v.end > start)
            .filter(|(_, v)| v.flags.locked)
            .map(|(_, v)| v.end.min(end) - v.start.max(start))
            .sum()
    }

    /// Changes the flags of every VMA in `[start, end)` (splitting those at the edges),
    /// then merges what became alike.
    pub fn set_vm_flags(&mut self, start: u64, end: u64, change: impl Fn(&mut VmFlags)) {
        self.split_at(start);
        self.split_at(end);
        for (_, v) in self.vmas.range_mut(start..end) {
            change(&mut v.flags);
        }
        self.merge_around(start, end);
    }

    /// Populates the readable or writable pages of `[start, end)` (mlock, MADV_POPULATE):
    /// EINVAL where the mapping forbids the access (`write`: for writing), EFAULT for a page
    /// that can't be had (past the end of a file), ENOMEM for a hole or no memory.
    pub fn populate_range(&mut self, start: u64, end: u64, write: bool) -> Result<(), Errno> {
        let mut va = start;
        while va < end {
            let v = self.vma_at(va).ok_or(Errno::ENOMEM)?.clone();
            let stop = v.end.min(end);
            // Linux's madvise_populate: an access the mapping forbids is EINVAL; a fault that
            // would raise SIGBUS or SIGSEGV is EFAULT.
            if (write && !v.prot.write) || (!write && !v.prot.read) {
                return Err(Errno::EINVAL);
            }
            while va < stop {
                let present = self.pages.contains_key(&va);
                if present && !write {
                    va += PAGE_SIZE;
                    continue;
                }
                let access = AccessType {
                    write,
                    exec: false,
                    present,
                };
                self.handle_fault(va, access).map_err(|e| match e {
                    FaultError::OutOfMemory => Errno::ENOMEM,
                    _ => Errno::EFAULT,
                })?;
                va += PAGE_SIZE;
            }
        }
        Ok(())
    }

    /// Whether every byte of `[start, end)` lies in some VMA.
    pub fn is_fully_mapped(&self, start: u64, end: u64) -> bool {
        let mut at = start;
        while at < end {
            match self.vma_at(at) {
                Some(v) => at = v.end,
                None => return false,
            }
        }
        true
    }

    /// MADV_DONTNEED: the range reads as zeros afterwards (a shared mapping's as its file).
    /// The vDSO's pages are the vDSO's, as Linux's special mappings: its code stays (it would
    /// fault back the same), and discarding its parameter page is EINVAL.
    pub fn discard(&mut self, start: u64, end: u64) -> Result<(), Errno> {
        let special: Vec<(u64, u64, VmaKind)> = self
            .vmas
            .range(..end)
            .rev()
            .take_while(|(_, v)| v.end > start)
            .filter(|(_, v)| matches!(v.kind, VmaKind::Vdso | VmaKind::Vvar))
            .map(|(_, v)| (v.start.max(start), v.end.min(end), v.kind))
            .collect();
        if special.iter().any(|&(_, _, kind)| kind == VmaKind::Vvar) {
            return Err(Errno::EINVAL);
        }
        // A shared mapping's data lives on in its file, as in Linux's page cache: save it
        // before the pages go.
        self.write_back(start, end);
        let mut at = start;
        for (from, to, _) in special.into_iter().rev() {
            self.release_pages(at, from);
            at = to;
        }
        self.release_pages(at, end);
        Ok(())
    }

    /// Moves the pages of `[old, old+len)` to `new` (same length), without copying data.
    pub fn move_pages(&mut self, old: u64, new: u64, len: u64) -> Result<(), Errno> {
        let moved: Vec<(u64, Gpa)> = self
            .pages
            .range(old..old + len)
            .map(|(&va, &g)| (va, g))
            .collect();
        let vas: Vec<u64> = moved.iter().map(|&(va, _)| va).collect();
        for &(va, _) in &moved {
            self.pages.remove(&va);
        }
        self.unmap_runs(&vas);
        let prot = self.vma_at(new).map(|v| v.prot).unwrap_or(Prot::NONE);
        let mut result = Ok(());
        for (va, gpa) in moved {
            let to = va - old + new;
            if let Some(key) = self.shared_keys.remove(&va) {
                self.shared_keys.insert(to, key);
            }
            // Every page is recorded at its new place even if mapping one fails, so that
            // none is lost; a page left unmapped faults back in.
            if self.install_page(to, gpa, prot).is_err() {
                result = Err(Errno::ENOMEM);
            }
        }
        result
    }

    /// Detaches every System V shared memory attachment (a process's exit, before its
    /// parent may see it, as Linux's exit_mm).
    pub fn detach_shm(&mut self) {
        let ranges: Vec<(u64, u64)> = self
            .vmas
            .values()
            .filter(|v| v.file.as_ref().is_some_and(|f| f.shm.is_some()))
            .map(|v| (v.start, v.end))
            .collect();
        for (start, end) in ranges {
            self.unmap(start, end - start);
        }
    }

    /// Removes the VMA bookkeeping of a range without touching pages (used by mremap after
    /// the pages moved away).
    pub fn remove_vmas(&mut self, start: u64, end: u64) {
        self.split_at(start);
        self.split_at(end);
        let doomed: Vec<u64> = self.vmas.range(start..end).map(|(&s, _)| s).collect();
        for s in doomed {
            if let Some(mut vma) = self.vmas.remove(&s) {
                self.tell_mappable(&vma, |m, range| m.remove_mapping(range));
                if let Some(token) = vma.file.as_mut().and_then(|f| f.shm.take()) {
                    crate::ipc::shm::detached(token, crate::procfs::current_pid());
                }
            }
        }
    }

    /// Writes the populated pages of shared file mappings in `[start, end)` back to their
    /// files (munmap, msync, exit). Every populated page is written: dirtiness isn't tracked.
    pub fn write_back(&self, start: u64, end: u64) {
        for v in self
            .vmas
            .range(..end)
            .rev()
            .take_while(|(_, v)| v.end > start)
            .map(|(_, v)| v)
        {
            let Some(f) = v.file.as_ref().filter(|f| f.shared && f.may_write) else {
                continue;
            };
            let size = f.inode.stat().map(|s| s.size.max(0) as u64).unwrap_or(0);
            let from = v.start.max(start);
            let to = v.end.min(end);
            for (&va, &gpa) in self.pages.range(from..to) {
                let off = f.offset + (va - v.start);
                if off >= size {
                    continue;
                }
                // Never grow the file: only the part of the page inside it goes back.
                let n = (size - off).min(PAGE_SIZE) as usize;
                let mut buf = vec![0u8; n];
                self.mem.read(gpa, &mut buf);
                file_cache::invalidate(fs::vfs::file_identity(&f.inode), off, n as u64);
                if let Err(e) = f.inode.write_at(off, &buf) {
                    tracing::debug!("write-back of a shared mapping failed: errno {e}");
                }
            }
        }
    }

    /// Fills a new page of a file mapping from the file (zeros past its end). False if a
    /// read failed (the page then holds what was read before the failure).
    fn fill_from_file(&self, gpa: Gpa, vma: &Vma, va: u64) -> bool {
        let Some(off) = vma.file_offset(va) else {
            return false;
        };
        let Some(f) = vma.file.as_ref() else {
            return false;
        };
        let mut buf = vec![0u8; PAGE_SIZE as usize];
        let mut filled = 0;
        let mut complete = true;
        while filled < buf.len() {
            match f.inode.read_at(off + filled as u64, &mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(_) => {
                    complete = false;
                    break;
                }
            }
        }
        if filled > 0 {
            self.mem.write(gpa, &buf[..filled]);
        }
        complete
    }

    /// A zeroed page from the memory file; when it is full, the file cache's pages are given
    /// back first and the allocation tried again.
    fn alloc_page(&self) -> Result<Gpa, FaultError> {
        match self.mem.alloc_page() {
            Ok(gpa) => Ok(gpa),
            Err(_) if file_cache::drop_all(&self.mem) => {
                self.mem.alloc_page().map_err(|_| FaultError::OutOfMemory)
            }
            Err(_) => Err(FaultError::OutOfMemory),
        }
    }

    /// Maps the page of a private read-only file mapping at `va` if the file cache holds it.
    fn map_if_cached(&mut self, vma: &Vma, va: u64, version: file_cache::Version) {
        let (Some(f), Some(off)) = (vma.file.as_ref(), vma.file_offset(va)) else {
            return;
        };
        if let Some(gpa) = file_cache::lookup(&self.mem, &f.inode, version, off / PAGE_SIZE) {
            if self.install_page(va, gpa, vma.prot).is_err() {
                // Not mapped in the guest: the page stays ours until unmapped, as any other.
                tracing::debug!("mapping a cached file page failed");
            }
        }
    }

    /// The page of a private read-only file mapping at `va` from the file cache, or a new
    /// page read from the file and kept there.
    fn cached_file_page(
        &self,
        vma: &Vma,
        va: u64,
        version: file_cache::Version,
    ) -> Result<Gpa, FaultError> {
        let (Some(f), Some(off)) = (vma.file.as_ref(), vma.file_offset(va)) else {
            return self.alloc_page();
        };
        let index = off / PAGE_SIZE;
        if let Some(gpa) = file_cache::lookup(&self.mem, &f.inode, version, index) {
            return Ok(gpa);
        }
        let gpa = self.alloc_page()?;
        if self.fill_from_file(gpa, vma, va) {
            file_cache::insert(&self.mem, &f.inode, version, index, gpa);
        }
        Ok(gpa)
    }

    /// Whether the private page at `va` (backed by `gpa`) is still shared with another
    /// address space since a fork: it must be copied before it is written.
    fn is_cow(&self, va: u64, gpa: Gpa) -> bool {
        !self.shared_keys.contains_key(&va) && self.mem.owners(gpa) > 1
    }

    /// The protection a populated page is mapped with: its VMA's, minus write access while
    /// the page is shared copy-on-write.
    fn page_prot(&self, va: u64, gpa: Gpa, prot: Prot) -> Prot {
        if prot.write && self.is_cow(va, gpa) {
            Prot {
                write: false,
                ..prot
            }
        } else {
            prot
        }
    }

    /// Gives the populated page at `va` an exclusive memory-file page, copying it if it is
    /// shared copy-on-write, and maps it with the VMA's full protection `prot`.
    fn make_writable(&mut self, va: u64, prot: Prot) -> Result<Gpa, FaultError> {
        self.make_writable_together(va, &[], prot)?;
        self.pages.get(&va).copied().ok_or(FaultError::NotMapped)
    }

    /// [`make_writable`](Self::make_writable) for `page` (which must succeed) and as many of
    /// `others` as memory allows, with the old translations of all of them dropped in one
    /// go: the pages a copy-on-write fault copies were mapped read-only, and each drop is a
    /// TLB shootdown of the host's on every CPU running the sandbox (one per page copied was
    /// the largest source of them in a shell pipeline, `perf record -e tlb:tlb_flush`).
    fn make_writable_together(
        &mut self,
        page: u64,
        others: &[u64],
        prot: Prot,
    ) -> Result<(), FaultError> {
        let mut copies: Vec<(u64, Gpa)> = Vec::with_capacity(others.len() + 1);
        let mut originals = Vec::with_capacity(others.len() + 1);
        for (i, &va) in std::iter::once(&page).chain(others).enumerate() {
            let Some(&gpa) = self.pages.get(&va) else {
                if i == 0 {
                    return Err(FaultError::NotMapped);
                }
                continue;
            };
            if !self.is_cow(va, gpa) {
                if prot.write {
                    copies.push((va, gpa));
                }
                continue;
            }
            let copy = match self.alloc_page() {
                Ok(copy) => copy,
                Err(e) if i == 0 => return Err(e),
                Err(_) => break,
            };
            let mut buf = vec![0u8; PAGE_SIZE as usize];
            self.mem.read(gpa, &mut buf);
            self.mem.write(copy, &buf);
            self.pages.insert(va, copy);
            copies.push((va, copy));
            originals.push(gpa);
        }
        let mapped = if prot.any() {
            self.space.map_pages(&copies, prot)
        } else {
            Ok(())
        };
        // Drops our ownership of the originals, now that no translation of ours reaches
        // them (whether or not mapping the copies worked: the copies are ours now); the
        // last owner of each then writes it in place.
        self.mem.free_pages(&originals);
        mapped.map_err(|_| FaultError::OutOfMemory)
    }

    /// The memory-file page behind `va`, allocating (filling from the file for file
    /// mappings) and mapping it if needed. With `write`, a copy-on-write page is copied first
    /// so that writing it can't be seen by another address space.
    fn populate_page(
        &mut self,
        va: u64,
        prot: Prot,
        write: bool,
        file: FileState,
    ) -> Result<Gpa, FaultError> {
        if let Some(&gpa) = self.pages.get(&va) {
            return if write {
                self.make_writable(va, prot)
            } else {
                Ok(gpa)
            };
        }
        let file_vma = self.vma_at(va).filter(|v| v.file.is_some()).cloned();
        if let Some(gpa) = file_vma.as_ref().and_then(|v| self.lent_page(v, va)) {
            if write {
                self.pages.insert(va, gpa);
                return self.make_writable(va, prot);
            }
            self.install_page(va, gpa, prot)
                .map_err(|_| FaultError::OutOfMemory)?;
            return Ok(gpa);
        }
        let shared_key = file_vma.as_ref().and_then(|v| {
            let f = v.file.as_ref()?;
            let off = v.file_offset(va)?;
            f.shared
                .then_some((fs::vfs::file_identity(&f.inode), off / PAGE_SIZE))
        });
        let gpa = match shared_key {
            Some(key) => {
                let mut index = shared_index();
                match index.get_mut(&key) {
                    Some(entry) => {
                        self.mem.share_page(entry.gpa);
                        entry.users += 1;
                        entry.gpa
                    }
                    None => {
                        let gpa = self.alloc_page()?;
                        if let Some(vma) = &file_vma {
                            self.fill_from_file(gpa, vma, va);
                        }
                        index.insert(
                            key,
                            SharedPage {
                                gpa,
                                users: 1,
                                mem: self.mem.clone(),
                            },
                        );
                        SHARED_PAGES.store(index.len(), Ordering::Release);
                        gpa
                    }
                }
            }
            None => match (&file_vma, file.cache_version) {
                // A page of a private read-only file mapping: shared with the file cache,
                // so mapped copy-on-write.
                (Some(vma), Some(version)) => {
                    let gpa = self.cached_file_page(vma, va, version)?;
                    self.install_page(va, gpa, prot)
                        .map_err(|_| FaultError::OutOfMemory)?;
                    return if write {
                        self.make_writable(va, prot)
                    } else {
                        Ok(gpa)
                    };
                }
                _ => {
                    let gpa = self.alloc_page()?;
                    if let Some(vma) = &file_vma {
                        self.fill_from_file(gpa, vma, va);
                    }
                    gpa
                }
            },
        };
        if let Some(key) = shared_key {
            self.shared_keys.insert(va, key);
        }
        self.pages.insert(va, gpa);
        if prot.any() {
            self.space
                .map(va, gpa, PAGE_SIZE, prot)
                .map_err(|_| FaultError::OutOfMemory)?;
        }
        Ok(gpa)
    }

    /// Populates `[start, end)` (page aligned, inside one VMA) eagerly.
    pub fn populate(&mut self, start: u64, end: u64) -> Result<(), FaultError> {
        let file = self.vma_at(start).map_or(FileState::NO_FILE, FileState::of);
        let mut va = start;
        while va < end {
            let prot = self.vma_at(va).ok_or(FaultError::NotMapped)?.prot;
            if va >= file.limit && !self.pages.contains_key(&va) {
                return Err(FaultError::BeyondEof);
            }
            self.populate_page(va, prot, false, file)?;
            va += PAGE_SIZE;
        }
        Ok(())
    }

    /// Resolves a user page fault, or says which signal code it deserves.
    pub fn handle_fault(&mut self, addr: u64, access: AccessType) -> Result<(), FaultError> {
        let vma = self.vma_at(addr).ok_or(FaultError::NotMapped)?.clone();
        let allowed = if access.exec {
            vma.prot.exec
        } else if access.write {
            vma.prot.write
        } else {
            vma.prot.any()
        };
        if !allowed {
            return Err(FaultError::AccessDenied);
        }
        let page = page_align_down(addr);
        if let Some(&gpa) = self.pages.get(&page) {
            if !access.write {
                // The guest's view was stale (e.g. raced with mprotect): map it again.
                return self
                    .space
                    .map(page, gpa, PAGE_SIZE, self.page_prot(page, gpa, vma.prot))
                    .map_err(|_| FaultError::OutOfMemory);
            }
            // A write to a copy-on-write page. Its populated neighbours (within the usual
            // window) are made writable too, copied if still shared: a fault costs tens of
            // microseconds here, a page copy well under one, and a process that writes one
            // page after fork usually writes the next. Pages a file lends are left alone:
            // copying them is never free, and reading them never faults.
            let half = FAULT_WINDOW_PAGES / 2 * PAGE_SIZE;
            let (start, end) = (
                page.saturating_sub(half).max(vma.start),
                page.saturating_add(half).min(vma.end),
            );
            let neighbours: Vec<u64> = self
                .pages
                .range(start..end)
                .filter(|(&va, &gpa)| va != page && !self.mem.is_external(gpa))
                .map(|(&va, _)| va)
                .collect();
            return self.make_writable_together(page, &neighbours, vma.prot);
        }
        // A new page: none wholly past the end of the file (one stat for the whole window).
        let file = FileState::of(&vma);
        let limit = file.limit;
        if page >= limit {
            return Err(FaultError::BeyondEof);
        }
        let lends = vma
            .file
            .as_ref()
            .is_some_and(|f| f.inode.mappable().is_some());
        // Streaming: this fault lands just past either end of the window the last one
        // populated (a growing heap, a memset, a stack growing down).
        let gap = FAULT_WINDOW_PAGES * PAGE_SIZE;
        let streaming = self.recent_windows.iter().any(|&(last_start, last_end)| {
            last_end > last_start
                && ((page >= last_end && page - last_end < gap)
                    || (page < last_start && last_start - page <= gap))
        });
        let window = if lends || file.cache_version.is_some() {
            LENT_FAULT_WINDOW_PAGES
        } else if streaming {
            STREAMING_FAULT_WINDOW_PAGES
        } else {
            FAULT_WINDOW_PAGES
        };
        // The window is aligned, as Linux's fault-around is: KVM prefetches shadow entries
        // in aligned groups of 8 and stops at the first guest entry that isn't present, so
        // a window centred on the fault left a partial group on each side that prefetched
        // nothing (`seq` below: 515 faults and 3,617 shadow fills for 4,096 pages written in
        // order, centred; 259 and 288 aligned, with the host backing).
        let span = window * PAGE_SIZE;
        let base = page & !(span - 1);
        let start = base.max(vma.start);
        let end = base.saturating_add(span).min(vma.end).min(limit);
        // The faulting page first, so running out of memory fails on it and nowhere else.
        let mut fresh = Vec::with_capacity(window as usize);
        if !self.pages.contains_key(&page) {
            fresh.push(self.populate_page(page, vma.prot, access.write, file)?);
        }
        // A cached file's window maps only what the cache holds, beyond the usual window
        // around the fault: those pages cost no copy and no host memory, while reading the
        // rest from the file would cost a read each.
        let (read_start, read_end) = if file.cache_version.is_some() {
            let small = FAULT_WINDOW_PAGES * PAGE_SIZE;
            let base = page & !(small - 1);
            (base, base.saturating_add(small))
        } else {
            (start, end)
        };
        let mut va = start;
        while va < end {
            if (va < read_start || va >= read_end) && !self.pages.contains_key(&va) {
                if let Some(version) = file.cache_version {
                    self.map_if_cached(&vma, va, version);
                }
                va += PAGE_SIZE;
                continue;
            }
            let new = !self.pages.contains_key(&va);
            match self.populate_page(va, vma.prot, false, file) {
                Ok(gpa) if new && !lends => fresh.push(gpa),
                Ok(_) => {}
                Err(_) => break,
            }
            va += PAGE_SIZE;
        }
        // A program streaming through memory (this window touches the last one: a growing
        // heap, a memset, a stack growing down) will touch the whole window: have the host
        // back it now, so that the shadow fault on the retried access fills the neighbours'
        // entries too (KVM's prefetch, 8 at a time) instead of one exit per page. Otherwise
        // don't: backing a page costs the host an allocation and a zeroing (~1-5 us), paid
        // for nothing (and kept as memory) when the program touches memory sparsely.
        self.recent_windows.rotate_right(1);
        self.recent_windows[0] = (start, end);
        if streaming {
            self.mem.prefault(&mut fresh);
        }
        Ok(())
    }

    /// Walks `[addr, addr+len)` page by page, giving each piece's memory-file address.
    /// `write` selects the permission checked (reads need any access, as Linux's
    /// `access_ok` plus a fault would). Ignores protections if `force`.
    fn for_each_piece(
        &mut self,
        addr: u64,
        len: usize,
        write: bool,
        force: bool,
        mut f: impl FnMut(Gpa, usize, usize),
    ) -> Result<(), Errno> {
        let end = addr.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        if end > self.limit {
            return Err(Errno::EFAULT);
        }
        let mut at = addr;
        let mut done = 0usize;
        while at < end {
            let vma = self.vma_at(at).ok_or(Errno::EFAULT)?;
            let prot = vma.prot;
            let ok = force
                || if write {
                    prot.write
                } else {
                    prot.read || prot.write
                };
            if !ok {
                return Err(Errno::EFAULT);
            }
            let page = page_align_down(at);
            let file = if self.pages.contains_key(&page) {
                FileState::NO_FILE
            } else {
                FileState::of(vma)
            };
            if page >= file.limit {
                // Linux's copy routines fault there as the program would: EFAULT.
                return Err(Errno::EFAULT);
            }
            let gpa = self
                .populate_page(page, prot, write, file)
                .map_err(|_| Errno::EFAULT)?;
            let off = (at - page) as usize;
            let n = ((PAGE_SIZE as usize) - off).min((end - at) as usize);
            f(gpa + off as u64, done, n);
            done += n;
            at += n as u64;
        }
        Ok(())
    }

    /// Checks that `[addr, addr+len)` is mapped with the access a copy would need, before a
    /// side effect (consuming pipe data) that a later EFAULT could not undo.
    pub fn check_range(&self, addr: u64, len: usize, write: bool) -> Result<(), Errno> {
        let end = addr.checked_add(len as u64).ok_or(Errno::EFAULT)?;
        if end > self.limit {
            return Err(Errno::EFAULT);
        }
        let mut at = addr;
        while at < end {
            let v = self.vma_at(at).ok_or(Errno::EFAULT)?;
            let ok = if write {
                v.prot.write
            } else {
                v.prot.read || v.prot.write
            };
            if !ok {
                return Err(Errno::EFAULT);
            }
            at = v.end;
        }
        Ok(())
    }

    /// Copies `data` to application memory at `addr`.
    pub fn copy_out(&mut self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        let mem = self.mem.clone();
        self.for_each_piece(addr, data.len(), true, false, |gpa, done, n| {
            mem.write(gpa, &data[done..done + n])
        })
    }

    /// Copies application memory at `addr` into `buf`.
    pub fn copy_in(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let mem = self.mem.clone();
        self.for_each_piece(addr, buf.len(), false, false, |gpa, done, n| {
            mem.read(gpa, &mut buf[done..done + n])
        })
    }

    /// Writes to application memory ignoring protections (loading a program).
    pub fn write_force(&mut self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        let mem = self.mem.clone();
        self.for_each_piece(addr, data.len(), true, true, |gpa, done, n| {
            mem.write(gpa, &data[done..done + n])
        })
    }

    /// Reads a NUL-terminated string of at most `max` bytes.
    pub fn copy_in_cstring(&mut self, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
        let mut out = Vec::new();
        let mut at = addr;
        loop {
            let chunk = (PAGE_SIZE - (at % PAGE_SIZE)) as usize;
            let mut buf = vec![0u8; chunk];
            self.copy_in(at, &mut buf)?;
            if let Some(nul) = buf.iter().position(|&b| b == 0) {
                out.extend_from_slice(&buf[..nul]);
                return Ok(out);
            }
            out.extend_from_slice(&buf);
            if out.len() >= max {
                return Err(Errno::ENAMETOOLONG);
            }
            at += chunk as u64;
        }
    }

    /// Reads a u32.
    pub fn read_u32(&mut self, addr: u64) -> Result<u32, Errno> {
        let mut b = [0u8; 4];
        self.copy_in(addr, &mut b)?;
        Ok(u32::from_le_bytes(b))
    }

    /// Reads a u64.
    pub fn read_u64(&mut self, addr: u64) -> Result<u64, Errno> {
        let mut b = [0u8; 8];
        self.copy_in(addr, &mut b)?;
        Ok(u64::from_le_bytes(b))
    }

    /// A copy for a forked child, in the new address space `space`. Every populated page is
    /// shared with the child: shared mappings for good, private ones copy-on-write (both
    /// sides lose write access until one of them writes, see `make_writable`).
    pub fn fork(&self, space: Arc<dyn AddressSpace>) -> Result<MemoryManager, FaultError> {
        // Whether the child gets the pages of a mapping.
        let copied = |v: &Vma| !v.flags.dontfork && !v.flags.wipeonfork;
        let mut child = MemoryManager::new(self.mem.clone(), space, self.limit);
        // MADV_DONTFORK mappings stay behind; locks aren't inherited (Linux's dup_mmap).
        child.vmas = self
            .vmas
            .iter()
            .filter(|(_, v)| !v.flags.dontfork)
            .map(|(&k, v)| {
                let mut v = v.clone();
                v.flags.locked = false;
                (k, v)
            })
            .collect();
        for vma in child.vmas.values() {
            if let Some(token) = vma.file.as_ref().and_then(|f| f.shm.as_ref()) {
                token.opened(crate::procfs::current_pid());
            }
            self.tell_mappable(vma, |m, src| {
                let dst = MappedRange {
                    space: Arc::as_ptr(&child.space) as *const () as usize,
                    ..src
                };
                m.copy_mapping(src, dst)
            });
        }
        child.mmap_base = self.mmap_base;
        child.brk_start = self.brk_start;
        child.brk = self.brk;
        child.exe_access = self.exe_access.clone();
        child.exe_file = self.exe_file.clone();
        // Write-protect the parent first: a write by one of its other threads between
        // sharing a page and protecting it would leak into the child.
        let private_writable: Vec<u64> = self
            .pages
            .keys()
            .copied()
            .filter(|va| !self.shared_keys.contains_key(va))
            .filter(|&va| self.vma_at(va).is_some_and(|v| v.prot.write && copied(v)))
            .collect();
        self.space.write_protect(&private_writable);
        for (&va, &gpa) in &self.pages {
            let Some(vma) = self.vma_at(va) else { continue };
            // MADV_WIPEONFORK: the child's pages start empty.
            if !copied(vma) {
                continue;
            }
            self.mem.share_page(gpa);
            if let Some(&key) = self.shared_keys.get(&va) {
                if let Some(entry) = shared_index().get_mut(&key) {
                    entry.users += 1;
                }
                child.shared_keys.insert(va, key);
            }
            child
                .install_page(va, gpa, vma.prot)
                .map_err(|_| FaultError::OutOfMemory)?;
        }
        Ok(child)
    }

    /// Number of populated pages (for tests and accounting).
    pub fn resident_pages(&self) -> usize {
        self.pages.len()
    }

    /// Populated pages in `[start, end)`.
    pub fn resident_in(&self, start: u64, end: u64) -> usize {
        self.pages.range(start..end).count()
    }
}

impl Drop for MemoryManager {
    fn drop(&mut self) {
        self.write_back(0, u64::MAX);
        for vma in self.vmas.values() {
            self.tell_mappable(vma, |m, range| m.remove_mapping(range));
        }
        let tokens: Vec<_> = self
            .vmas
            .values_mut()
            .filter_map(|v| v.file.as_mut().and_then(|f| f.shm.take()))
            .collect();
        for token in tokens {
            crate::ipc::shm::detached(token, crate::procfs::current_pid());
        }
        let keys: Vec<FilePageKey> = std::mem::take(&mut self.shared_keys)
            .into_values()
            .collect();
        let mut index = shared_index();
        for key in keys {
            release_shared_page(&mut index, &key);
        }
        drop(index);
        let frames: Vec<Gpa> = self.pages.values().copied().collect();
        self.pages.clear();
        // The address space goes with us; its tables are retired by the platform.
        self.mem.free_pages(&frames);
    }
}

/// A memory manager shared by the threads of a process (and read by /proc), with its own
/// lock. The copy helpers lock for the duration of one copy.
pub struct Mm {
    inner: Mutex<MemoryManager>,
    space: Arc<dyn AddressSpace>,
    /// The AIO contexts of this address space (Linux's mm->ioctx_table): they end with it.
    pub aio: crate::aio::Table,
    /// membarrier's registrations (Linux's mm->membarrier_state).
    pub membarrier: crate::membarrier::Registrations,
}

impl Mm {
    pub fn new(mm: MemoryManager) -> Self {
        Mm {
            space: mm.address_space().clone(),
            inner: Mutex::new(mm),
            aio: Default::default(),
            membarrier: Default::default(),
        }
    }

    /// The manager itself, for operations that change the address space.
    pub fn lock(&self) -> MutexGuard<'_, MemoryManager> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn address_space(&self) -> &Arc<dyn AddressSpace> {
        &self.space
    }

    pub fn copy_out(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        self.lock().copy_out(addr, data)
    }

    pub fn copy_in(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.lock().copy_in(addr, buf)
    }

    pub fn copy_in_cstring(&self, addr: u64, max: usize) -> Result<Vec<u8>, Errno> {
        self.lock().copy_in_cstring(addr, max)
    }

    pub fn read_u32(&self, addr: u64) -> Result<u32, Errno> {
        self.lock().read_u32(addr)
    }

    pub fn read_u64(&self, addr: u64) -> Result<u64, Errno> {
        self.lock().read_u64(addr)
    }

    pub fn check_range(&self, addr: u64, len: usize, write: bool) -> Result<(), Errno> {
        self.lock().check_range(addr, len, write)
    }

    pub fn handle_fault(&self, addr: u64, access: AccessType) -> Result<(), FaultError> {
        self.lock().handle_fault(addr, access)
    }
}
