//! The sandbox's memory file: one memfd holding every guest-physical page (application memory,
//! page tables, kernel pages), mapped once into the sentry and registered as one KVM memory
//! slot at guest-physical address 0. Guest-physical address == offset in the file.
//!
//! Read-only host memory that is not part of the file (an ImgFS image's mapping) can be added
//! above the file as an *external region* (`map_region`): its pages then have guest-physical
//! addresses too and are mapped into the guest without a copy. They are never allocated, freed
//! or written; the memory manager copies them before a write, as it does copy-on-write pages.
//!
//! Pages are handed out by a simple allocator. A page is freed only once no guest translation
//! can reach it: the memory manager drops a live address space's translations of a page
//! before it frees it (`AddressSpace::unmap` and narrowing `map`s make KVM's MMU notifier
//! forget them), and a dead address space's tables are never loaded again (their pages are
//! retired until KVM drops every shadow page, `retire_tables`). A freed page is either kept,
//! zeroed and still backed by the host, for the next allocation ([`BACKED_POOL_BYTES`] of
//! them at most), or returned to the host with `FALLOCATE_PUNCH_HOLE`, which zeroes it too.
//! Keeping some matters on this host: a punch is a TLB shootdown of the host's on every CPU
//! running the sandbox (an exit of each vCPU there), the next use of the page a host fault
//! and a zeroing, and a page the host does not back defeats KVM's shadow prefetch.

use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use nix::sys::memfd::{memfd_create, MemFdCreateFlag};

use crate::PlatformError;
use crate::PAGE_SIZE;

/// A guest-physical address (offset in the memory file).
pub type Gpa = u64;

struct Allocator {
    /// Pages below this have been handed out at least once.
    next: Gpa,
    /// Pages returned by `free` as holes, ready for reuse.
    free: Vec<Gpa>,
    /// Pages returned by `free`, zeroed but still backed by the host: handed out first.
    backed: Vec<Gpa>,
    /// Extra owners of shared pages (a page absent here has one owner).
    extra_refs: std::collections::HashMap<Gpa, u32>,
    /// The most bytes ever in use at once.
    peak: u64,
    /// Pages below this are behind the hardware's memory slots, so they may be handed out;
    /// the rest of the file gets slots as the allocator reaches it ([`SlotGrower`]).
    usable: Gpa,
}

impl Allocator {
    /// Bytes handed out and not freed (page 0, never handed out, not counted).
    fn in_use(&self) -> u64 {
        (self.next - PAGE_SIZE)
            .saturating_sub((self.free.len() + self.backed.len()) as u64 * PAGE_SIZE)
    }

    fn note_peak(&mut self) {
        self.peak = self.peak.max(self.in_use());
    }
}

/// Freed pages kept backed by the host for reuse, at most (see the module's documentation):
/// what a short-lived process gives back at its end and the next one takes, while staying
/// small beside the sandbox's own memory (host memory that the sandbox does not use).
pub const BACKED_POOL_BYTES: u64 = 4 << 20;

/// Guest-physical addresses of external regions start here (above the memory file, the
/// doorbell and the scratch slot the KVM platform keeps right above it).
const REGIONS_GPA_OFFSET: u64 = 1 << 30;
/// External regions are placed at multiples of this, with at least this much unmapped
/// between two of them.
const REGION_ALIGN: u64 = 2 << 20;

/// Host memory that is not part of the memory file but has guest-physical addresses.
struct ExternalRegion {
    key: u64,
    gpa: Gpa,
    len: u64,
    host: NonNull<u8>,
    /// Keeps the host memory mapped as long as the memory file (and so the VM) lives.
    _owner: Arc<dyn std::any::Any + Send + Sync>,
}

/// Makes more of the memory file visible to the hardware (the KVM platform adds a memory
/// slot): `(start, end)` guest-physical addresses, `start` the end of what is visible now.
pub type SlotGrower = Box<dyn Fn(Gpa, Gpa) -> Result<(), PlatformError> + Send + Sync>;

/// Slots added by a [`SlotGrower`] end on a multiple of this.
const SLOT_GROWTH_ALIGN: u64 = 2 << 20;

/// Makes an external region visible to the hardware (the KVM platform adds a read-only
/// memory slot): `(guest-physical address, host address, length)`.
pub type RegionInstaller = Box<dyn Fn(Gpa, u64, u64) -> Result<(), PlatformError> + Send + Sync>;

#[derive(Default)]
struct Regions {
    list: Vec<ExternalRegion>,
    installer: Option<RegionInstaller>,
}

/// The memory file and its host mapping.
pub struct MemoryFile {
    fd: OwnedFd,
    base: NonNull<u8>,
    size: u64,
    /// The most bytes in use at once: the sandbox's memory limit, at most `size`. The file
    /// (and the KVM memory slots over it, which cover at most the file) can't grow while the
    /// guest runs, so a limit changed live (`runsc update --memory`) moves this instead;
    /// past it allocation fails as it does when the file is full.
    limit: AtomicU64,
    alloc: Mutex<Allocator>,
    regions: RwLock<Regions>,
    grower: std::sync::OnceLock<SlotGrower>,
}

// SAFETY: the mapping is shared memory accessed only through raw pointers with explicit
// copies; the allocator state is behind a mutex.
// External regions are read-only host mappings kept alive by their owners.
unsafe impl Send for MemoryFile {}
// SAFETY: as above.
unsafe impl Sync for MemoryFile {}

impl MemoryFile {
    /// The memfd itself.
    pub fn file(&self) -> &OwnedFd {
        &self.fd
    }

    /// Creates a sparse memory file of `size` bytes and maps it.
    pub fn new(size: u64) -> Result<Self, PlatformError> {
        let fd = memfd_create(c"runsc-memory", MemFdCreateFlag::MFD_CLOEXEC)
            .map_err(|e| PlatformError::Memory(format!("memfd_create: {e}")))?;
        nix::unistd::ftruncate(&fd, size as i64)
            .map_err(|e| PlatformError::Memory(format!("ftruncate memory file: {e}")))?;
        // SAFETY: a fresh shared mapping of a file we own; the kernel picks the address.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_NORESERVE,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(PlatformError::Memory(format!(
                "mmap memory file: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(MemoryFile {
            fd,
            base: NonNull::new(ptr.cast()).expect("mmap never returns null on success"),
            size,
            limit: AtomicU64::new(size),
            // Page 0 is never handed out so that a zero GPA can mean "none".
            alloc: Mutex::new(Allocator {
                next: PAGE_SIZE,
                free: Vec::new(),
                backed: Vec::new(),
                extra_refs: std::collections::HashMap::new(),
                peak: 0,
                usable: size,
            }),
            regions: RwLock::new(Regions::default()),
            grower: std::sync::OnceLock::new(),
        })
    }

    /// Sets how external regions reach the hardware; the platform calls this once.
    pub fn set_region_installer(&self, installer: RegionInstaller) {
        self.regions
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .installer = Some(installer);
    }

    /// The guest-physical address of an external region of read-only host memory, adding it
    /// on first use. `key` identifies the region (a second call with the same key returns the
    /// same address); `host` must be page aligned and stay mapped, readable, for as long as
    /// `owner` lives, which the memory file keeps until it is dropped. Without an installer
    /// (a platform that can't map host memory) this fails and callers copy instead.
    pub fn map_region(
        &self,
        key: u64,
        host: NonNull<u8>,
        len: u64,
        owner: Arc<dyn std::any::Any + Send + Sync>,
    ) -> Result<Gpa, PlatformError> {
        if let Some(r) = self.region_by_key(key) {
            return Ok(r);
        }
        if !(host.as_ptr() as u64).is_multiple_of(PAGE_SIZE)
            || len == 0
            || !len.is_multiple_of(PAGE_SIZE)
        {
            return Err(PlatformError::Memory(format!(
                "external region {host:?}+{len:#x} is not whole pages"
            )));
        }
        let mut regions = self.regions.write().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = regions.list.iter().find(|r| r.key == key) {
            return Ok(r.gpa);
        }
        let first = (self.size + REGIONS_GPA_OFFSET).next_multiple_of(REGION_ALIGN);
        let gpa = regions.list.last().map_or(first, |r| {
            (r.gpa + r.len).next_multiple_of(REGION_ALIGN) + REGION_ALIGN
        });
        let installer = regions
            .installer
            .as_ref()
            .ok_or_else(|| PlatformError::Memory("platform can't map host regions".into()))?;
        installer(gpa, host.as_ptr() as u64, len)?;
        regions.list.push(ExternalRegion {
            key,
            gpa,
            len,
            host,
            _owner: owner,
        });
        Ok(gpa)
    }

    fn region_by_key(&self, key: u64) -> Option<Gpa> {
        let regions = self.regions.read().unwrap_or_else(|e| e.into_inner());
        regions.list.iter().find(|r| r.key == key).map(|r| r.gpa)
    }

    /// Whether `gpa` is in an external region rather than the file: such a page is never
    /// written, allocated or freed.
    pub fn is_external(&self, gpa: Gpa) -> bool {
        gpa >= self.size
    }

    /// Host address of `len` bytes at `gpa` in an external region.
    fn external_ptr(&self, gpa: Gpa, len: u64) -> *mut u8 {
        let regions = self.regions.read().unwrap_or_else(|e| e.into_inner());
        let r = regions
            .list
            .iter()
            .find(|r| gpa >= r.gpa && gpa.checked_add(len).is_some_and(|e| e <= r.gpa + r.len));
        let r = r.unwrap_or_else(|| {
            panic!("guest-physical range {gpa:#x}+{len:#x} outside the memory file and regions")
        });
        // SAFETY: in bounds of the region's host mapping, checked above.
        unsafe { r.host.as_ptr().add((gpa - r.gpa) as usize) }
    }

    /// Size of the file in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The memory limit: the most bytes in use at once (sysinfo's totalram).
    pub fn limit(&self) -> u64 {
        self.limit.load(Ordering::Relaxed)
    }

    /// Sets the memory limit, rounded down to whole pages. It may be below what is in use
    /// (as a cgroup's memory.max may): nothing is taken back, but no page is handed out
    /// until use falls below it. Above the file's size it can't be honoured: an error.
    pub fn set_limit(&self, bytes: u64) -> Result<(), PlatformError> {
        if bytes > self.size {
            return Err(PlatformError::Memory(format!(
                "a limit of {bytes} bytes is above the sandbox's memory, {} bytes, which is \
                 fixed when the sandbox starts",
                self.size
            )));
        }
        self.limit
            .store(bytes - bytes % PAGE_SIZE, Ordering::Relaxed);
        Ok(())
    }

    /// Bytes handed out and not freed (the memory cgroup's usage).
    pub fn used_bytes(&self) -> u64 {
        self.alloc
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .in_use()
    }

    /// The most bytes ever in use at once (the memory cgroup's max_usage).
    pub fn max_used_bytes(&self) -> u64 {
        self.alloc.lock().unwrap_or_else(|e| e.into_inner()).peak
    }

    /// Bytes that may still be handed out under the limit (sysinfo's freeram).
    pub fn free_bytes(&self) -> u64 {
        let a = self.alloc.lock().unwrap_or_else(|e| e.into_inner());
        self.limit().saturating_sub(a.in_use())
    }

    /// Whether `bytes` more fit under the limit.
    fn fits(&self, a: &Allocator, bytes: u64) -> bool {
        a.in_use() + bytes <= self.limit()
    }

    /// Host address of the start of the mapping (for the KVM memory slot).
    pub fn host_base(&self) -> u64 {
        self.base.as_ptr() as u64
    }

    /// Says that only the file's first `usable` bytes are visible to the hardware (its first
    /// memory slot), and how to make more of it visible when the allocator gets there: a
    /// KVM memory slot costs its VM's creation and destruction time in proportion to its
    /// size (docs/architecture.md, "Start-up"), and most sandboxes use a small part of
    /// their memory. Fails if pages past `usable` were handed out already, or if it was
    /// said already.
    pub fn set_slot_grower(&self, usable: u64, grower: SlotGrower) -> Result<(), PlatformError> {
        let mut a = self.alloc.lock().unwrap_or_else(|e| e.into_inner());
        if a.next > usable || usable > self.size || self.grower.set(grower).is_err() {
            return Err(PlatformError::Memory(format!(
                "cannot make only {usable:#x} bytes visible at first"
            )));
        }
        a.usable = usable;
        Ok(())
    }

    /// Makes the file visible to the hardware up to `end` at least (growing by doubling,
    /// so that a large sandbox adds a few slots, not many).
    fn make_usable(&self, a: &mut Allocator, end: Gpa) -> Result<(), PlatformError> {
        if end <= a.usable {
            return Ok(());
        }
        if end > self.size {
            return Err(PlatformError::OutOfMemory);
        }
        let grower = self.grower.get().ok_or(PlatformError::OutOfMemory)?;
        let new_end = (a.usable * 2)
            .max(end.next_multiple_of(SLOT_GROWTH_ALIGN))
            .min(self.size);
        grower(a.usable, new_end)?;
        a.usable = new_end;
        Ok(())
    }

    /// Allocates one zeroed page.
    pub fn alloc_page(&self) -> Result<Gpa, PlatformError> {
        let mut a = self.alloc.lock().unwrap_or_else(|e| e.into_inner());
        if !self.fits(&a, PAGE_SIZE) {
            return Err(PlatformError::OutOfMemory);
        }
        let page = match a.backed.pop().or_else(|| a.free.pop()) {
            Some(page) => page,
            None if a.next + PAGE_SIZE > self.size => return Err(PlatformError::OutOfMemory),
            None => {
                let end = a.next + PAGE_SIZE;
                self.make_usable(&mut a, end)?;
                a.next += PAGE_SIZE;
                a.next - PAGE_SIZE
            }
        };
        a.note_peak();
        Ok(page)
    }

    /// Allocates two adjacent pages, the first on an 8 KiB boundary (a PTI-style pair of
    /// page-table roots). Freed as two ordinary pages.
    pub fn alloc_page_pair(&self) -> Result<Gpa, PlatformError> {
        let mut a = self.alloc.lock().unwrap_or_else(|e| e.into_inner());
        if !self.fits(&a, 2 * PAGE_SIZE) {
            return Err(PlatformError::OutOfMemory);
        }
        if a.next & PAGE_SIZE != 0 {
            if a.next + PAGE_SIZE > self.size {
                return Err(PlatformError::OutOfMemory);
            }
            let end = a.next + PAGE_SIZE;
            self.make_usable(&mut a, end)?;
            let odd = a.next;
            a.free.push(odd);
            a.next += PAGE_SIZE;
        }
        if a.next + 2 * PAGE_SIZE > self.size {
            return Err(PlatformError::OutOfMemory);
        }
        let end = a.next + 2 * PAGE_SIZE;
        self.make_usable(&mut a, end)?;
        let pair = a.next;
        a.next += 2 * PAGE_SIZE;
        a.note_peak();
        Ok(pair)
    }

    /// Adds an owner to a page (a shared mapping inherited by fork): `free_pages` then
    /// frees it only when the last owner does.
    pub fn share_page(&self, page: Gpa) {
        if self.is_external(page) {
            return;
        }
        let mut a = self.alloc.lock().unwrap_or_else(|e| e.into_inner());
        *a.extra_refs.entry(page).or_insert(0) += 1;
    }

    /// How many owners a page has (copy-on-write: a private page with more than one owner
    /// must be copied before it is written).
    pub fn owners(&self, page: Gpa) -> u32 {
        if self.is_external(page) {
            // Nobody may write an external page: it counts as shared for ever.
            return u32::MAX;
        }
        let a = self.alloc.lock().unwrap_or_else(|e| e.into_inner());
        1 + a.extra_refs.get(&page).copied().unwrap_or(0)
    }

    /// Returns pages to the allocator, or drops one owner of shared ones. Freed pages read as
    /// zeros after.
    pub fn free_pages(&self, pages: &[Gpa]) {
        let mut freed = Vec::with_capacity(pages.len());
        {
            let mut a = self.alloc.lock().unwrap_or_else(|e| e.into_inner());
            for &page in pages.iter().filter(|&&p| !self.is_external(p)) {
                match a.extra_refs.get_mut(&page) {
                    Some(n) if *n > 1 => *n -= 1,
                    Some(_) => {
                        a.extra_refs.remove(&page);
                    }
                    None => freed.push(page),
                }
            }
        }
        if freed.is_empty() {
            return;
        }
        // Up to the pool's size, kept backed and zeroed here (outside the lock); the rest
        // punched, one hole per run of adjacent pages: each punch costs the host a TLB
        // shootdown on every CPU running the sandbox, whatever its length.
        let room = {
            let a = self.alloc.lock().unwrap_or_else(|e| e.into_inner());
            (BACKED_POOL_BYTES / PAGE_SIZE).saturating_sub(a.backed.len() as u64) as usize
        };
        let mut punched = freed.split_off(room.min(freed.len()));
        for &page in &freed {
            self.zero(page, PAGE_SIZE);
        }
        crate::for_each_page_run(&mut punched, |start, len| self.punch_hole(start, len));
        let mut a = self.alloc.lock().unwrap_or_else(|e| e.into_inner());
        a.backed.extend_from_slice(&freed);
        a.free.extend_from_slice(&punched);
    }

    /// Zeroes a range and gives its memory back to the host.
    pub fn punch_hole(&self, gpa: Gpa, len: u64) {
        let r = nix::fcntl::fallocate(
            self.fd.as_raw_fd(),
            nix::fcntl::FallocateFlags::FALLOC_FL_PUNCH_HOLE
                | nix::fcntl::FallocateFlags::FALLOC_FL_KEEP_SIZE,
            gpa as i64,
            len as i64,
        );
        if let Err(e) = r {
            // Punching holes in a memfd only fails on programming errors; zero by hand so the
            // page is still clean.
            tracing::warn!("punch hole at {gpa:#x}+{len:#x}: {e}");
            self.zero(gpa, len);
        }
    }

    /// Drops the host's page-table entries for a range without changing its content. KVM's
    /// MMU notifier then forgets every guest translation of these pages, so a guest page-table
    /// entry that was narrowed (unmapped, made read-only) takes effect on the next access.
    pub fn invalidate_translations(&self, gpa: Gpa, len: u64) {
        if let Err(e) = self.advise(gpa, len, libc::MADV_DONTNEED) {
            tracing::warn!("madvise(DONTNEED) at {gpa:#x}: {e}");
        }
    }

    /// `madvise` of a range of the file's own pages, with one of the two pieces of advice
    /// used here: MADV_DONTNEED (on a shared mapping it only drops the host's page-table
    /// entries; the file keeps the data) and MADV_POPULATE_WRITE (faults the pages in,
    /// allocating them in the file; no content changes).
    fn advise(&self, gpa: Gpa, len: u64, advice: libc::c_int) -> std::io::Result<()> {
        debug_assert!(advice == libc::MADV_DONTNEED || advice == libc::MADV_POPULATE_WRITE);
        let ptr = self.host_ptr(gpa, len);
        // SAFETY: the range lies inside our shared file mapping (`host_ptr` checks), and
        // neither advice changes what the file holds.
        if unsafe { libc::madvise(ptr.cast(), len as usize, advice) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// Host pointer to `len` bytes at `gpa` (in the file or an external region; the latter
    /// are read-only). Panics if the range is outside both: callers pass only addresses they
    /// allocated or translated, never guest-supplied ones.
    pub fn host_ptr(&self, gpa: Gpa, len: u64) -> *mut u8 {
        if self.is_external(gpa) {
            return self.external_ptr(gpa, len);
        }
        assert!(
            gpa.checked_add(len).is_some_and(|end| end <= self.size),
            "guest-physical range {gpa:#x}+{len:#x} outside the memory file"
        );
        // SAFETY: in bounds of the mapping, checked above.
        unsafe { self.base.as_ptr().add(gpa as usize) }
    }

    /// Copies bytes out of guest memory. Guest memory can change concurrently; the copy is
    /// a snapshot and must be treated as untrusted.
    pub fn read(&self, gpa: Gpa, buf: &mut [u8]) {
        let src = self.host_ptr(gpa, buf.len() as u64);
        // SAFETY: src is in bounds; no Rust reference to guest memory is formed; a racing
        // guest write can only produce garbage bytes, which callers validate.
        unsafe { std::ptr::copy_nonoverlapping(src, buf.as_mut_ptr(), buf.len()) }
    }

    /// Copies bytes into guest memory.
    pub fn write(&self, gpa: Gpa, data: &[u8]) {
        assert!(
            !self.is_external(gpa),
            "write to read-only external page {gpa:#x}"
        );
        let dst = self.host_ptr(gpa, data.len() as u64);
        // SAFETY: dst is in bounds of our mapping; see `read`.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), dst, data.len()) }
    }

    /// Makes the host back `pages` now (`MADV_POPULATE_WRITE`, one call per run of adjacent
    /// pages; the content is unchanged). Why: this host's KVM shadows guest page tables, and
    /// on a shadow fault it also fills the neighbouring entries of the faulting one (up to 8,
    /// `pte_prefetch`), but only for pages the host already maps writable; a fresh page is a
    /// hole in the file, so each neighbour would cost an exit of its own on first touch.
    /// Failure is harmless (the page is then faulted in on first touch) and not reported.
    pub fn prefault(&self, pages: &mut [Gpa]) {
        let mut own: Vec<Gpa> = pages
            .iter()
            .copied()
            .filter(|&p| !self.is_external(p))
            .collect();
        crate::for_each_page_run(&mut own, |start, len| {
            if let Err(e) = self.advise(start, len, libc::MADV_POPULATE_WRITE) {
                tracing::trace!("madvise(POPULATE_WRITE) at {start:#x}: {e}");
            }
        });
    }

    /// Fills a range with zeros.
    pub fn zero(&self, gpa: Gpa, len: u64) {
        let dst = self.host_ptr(gpa, len);
        // SAFETY: in bounds, see `host_ptr`.
        unsafe { std::ptr::write_bytes(dst, 0, len as usize) }
    }

    /// Reads a u64 (page-table entries and other sentry-owned structures).
    pub fn read_u64(&self, gpa: Gpa) -> u64 {
        let p = self.host_ptr(gpa, 8) as *const u64;
        // SAFETY: in bounds and 8-byte aligned by every caller (page tables, frames).
        unsafe { p.read_volatile() }
    }

    /// Writes a u32 in one store (a word the guest reads concurrently, such as a sequence
    /// count).
    pub fn write_u32(&self, gpa: Gpa, value: u32) {
        let p = self.host_ptr(gpa, 4) as *mut u32;
        // SAFETY: in bounds; callers pass 4-byte aligned addresses of sentry-owned pages.
        unsafe { p.write_volatile(value) }
    }

    /// Writes a u64.
    pub fn write_u64(&self, gpa: Gpa, value: u64) {
        let p = self.host_ptr(gpa, 8) as *mut u64;
        // SAFETY: in bounds and aligned, see `read_u64`.
        unsafe { p.write_volatile(value) }
    }
}

impl Drop for MemoryFile {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping created in `new`; no pointers into it outlive self.
        unsafe { libc::munmap(self.base.as_ptr().cast(), self.size as usize) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_grow_before_a_page_past_them_is_handed_out() {
        use std::sync::Mutex as StdMutex;
        const MIB: u64 = 1 << 20;
        let mem = MemoryFile::new(16 * MIB).unwrap();
        let grown = Arc::new(StdMutex::new(Vec::new()));
        let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (g, f) = (grown.clone(), fail.clone());
        mem.set_slot_grower(
            4 * MIB,
            Box::new(move |start, end| {
                if f.load(Ordering::Relaxed) {
                    return Err(PlatformError::Kvm("refused".into()));
                }
                g.lock().unwrap().push((start, end));
                Ok(())
            }),
        )
        .unwrap();
        // A second grower, or a first slot below what was handed out: refused.
        assert!(mem
            .set_slot_grower(4 * MIB, Box::new(|_, _| Ok(())))
            .is_err());
        let pages: Vec<Gpa> = (0..(4 * MIB / PAGE_SIZE) - 1)
            .map(|_| mem.alloc_page().unwrap())
            .collect();
        assert_eq!(pages.last(), Some(&(4 * MIB - PAGE_SIZE)));
        assert!(grown.lock().unwrap().is_empty());
        // The next page is past the first slot: one slot doubles what is visible first.
        assert_eq!(mem.alloc_page().unwrap(), 4 * MIB);
        assert_eq!(*grown.lock().unwrap(), [(4 * MIB, 8 * MIB)]);
        // A freed page is reused without growing.
        mem.free_pages(&[4 * MIB]);
        assert_eq!(mem.alloc_page().unwrap(), 4 * MIB);
        // A pair straddling the boundary grows first, up to the file's end at most.
        while mem.alloc_page().unwrap() < 8 * MIB - 2 * PAGE_SIZE {}
        let pair = mem.alloc_page_pair().unwrap();
        assert!(pair >= 8 * MIB, "{pair:#x}");
        assert_eq!(
            *grown.lock().unwrap(),
            [(4 * MIB, 8 * MIB), (8 * MIB, 16 * MIB)]
        );
        // The whole file is visible now: the end of the file is the end.
        while mem.alloc_page().is_ok() {}
        assert_eq!(grown.lock().unwrap().len(), 2);
        // A slot the hardware refuses: the allocation fails, and the page is not handed out.
        let mem = MemoryFile::new(16 * MIB).unwrap();
        let f2 = fail.clone();
        fail.store(true, Ordering::Relaxed);
        mem.set_slot_grower(
            2 * PAGE_SIZE,
            Box::new(move |_, _| {
                if f2.load(Ordering::Relaxed) {
                    Err(PlatformError::Kvm("refused".into()))
                } else {
                    Ok(())
                }
            }),
        )
        .unwrap();
        assert_eq!(mem.alloc_page().unwrap(), PAGE_SIZE);
        assert!(mem.alloc_page().is_err());
        fail.store(false, Ordering::Relaxed);
        assert_eq!(mem.alloc_page().unwrap(), 2 * PAGE_SIZE);
    }

    #[test]
    fn the_limit_bounds_allocation_and_moves_live() {
        let mem = MemoryFile::new(64 * PAGE_SIZE).unwrap();
        assert_eq!(mem.limit(), 64 * PAGE_SIZE);
        mem.set_limit(4 * PAGE_SIZE + 100).unwrap();
        assert_eq!(mem.limit(), 4 * PAGE_SIZE);
        let pages: Vec<Gpa> = (0..4).map(|_| mem.alloc_page().unwrap()).collect();
        assert_eq!(mem.used_bytes(), 4 * PAGE_SIZE);
        assert_eq!(mem.max_used_bytes(), 4 * PAGE_SIZE);
        assert_eq!(mem.free_bytes(), 0);
        assert!(matches!(mem.alloc_page(), Err(PlatformError::OutOfMemory)));
        assert!(matches!(
            mem.alloc_page_pair(),
            Err(PlatformError::OutOfMemory)
        ));
        // A freed page may be handed out again; a lower limit takes nothing back but stops
        // allocation until use falls under it.
        mem.free_pages(&pages[..1]);
        assert!(mem.alloc_page().is_ok());
        mem.set_limit(2 * PAGE_SIZE).unwrap();
        assert!(mem.alloc_page().is_err());
        mem.free_pages(&pages[1..]);
        assert_eq!(mem.used_bytes(), PAGE_SIZE);
        assert!(mem.alloc_page().is_ok());
        assert!(mem.set_limit(65 * PAGE_SIZE).is_err());
        mem.set_limit(64 * PAGE_SIZE).unwrap();
        assert!(mem.alloc_page_pair().is_ok());
    }

    /// Freed pages come back zeroed whether they were kept backed or punched, the kept ones
    /// first; at most BACKED_POOL_BYTES are kept, and kept pages don't count as used.
    #[test]
    fn freed_pages_are_kept_backed_up_to_the_pool_size_and_come_back_zeroed() {
        let pool = (BACKED_POOL_BYTES / PAGE_SIZE) as usize;
        let mem = MemoryFile::new((2 * pool as u64 + 8) * PAGE_SIZE).unwrap();
        let pages: Vec<Gpa> = (0..pool + 4).map(|_| mem.alloc_page().unwrap()).collect();
        for &p in &pages {
            mem.write(p, &[0xa5; PAGE_SIZE as usize]);
        }
        mem.free_pages(&pages);
        assert_eq!(mem.used_bytes(), 0);
        {
            let a = mem.alloc.lock().unwrap();
            assert_eq!(a.backed.len(), pool);
            assert_eq!(a.free.len(), 4);
        }
        let again: Vec<Gpa> = (0..pool + 4).map(|_| mem.alloc_page().unwrap()).collect();
        let mut sorted = again.clone();
        sorted.sort_unstable();
        let mut before = pages.clone();
        before.sort_unstable();
        assert_eq!(sorted, before, "the freed pages are reused before new ones");
        for &p in &again {
            let mut buf = [0xffu8; PAGE_SIZE as usize];
            mem.read(p, &mut buf);
            assert!(buf.iter().all(|&b| b == 0), "page {p:#x} came back dirty");
        }
        // A page with another owner is not freed by one owner's free.
        mem.share_page(again[0]);
        mem.free_pages(&again[..1]);
        assert_eq!(mem.owners(again[0]), 1);
        assert_eq!(mem.used_bytes(), (pool as u64 + 4) * PAGE_SIZE);
    }
}
