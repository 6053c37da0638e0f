//! The KVM platform: application threads run in guest ring 3 of one VM.
//!
//! See `docs/architecture.md` and the module docs of [`guest_code`], [`ring`] and [`layout`]
//! for how system calls, exceptions and page tables work on this PVM host.

mod address_space;
mod cpu;
pub mod guest_code;
pub mod host_ioctls;
pub mod layout;
mod pagetables;
pub mod ring;
mod selftest;
pub mod selftest_cache;
pub mod stats;
mod teardown;
mod vcpu;

use std::sync::{Arc, Mutex};

use kvm_bindings::{kvm_userspace_memory_region, CpuId, KVM_MAX_CPUID_ENTRIES};
use kvm_ioctls::{Cap, Kvm, VmFd};

use self::address_space::KvmAddressSpace;
use self::layout::*;
use self::pagetables::{PTE_ACCESSED, PTE_NX, PTE_PRESENT, PTE_WRITE};
use self::ring::Poller;
use crate::memory::{Gpa, MemoryFile};
use crate::{
    AddressSpace, Context, FastSyscalls, GuestTsc, Platform, PlatformError, SyscallPath, PAGE_SIZE,
};

pub use self::selftest::SyscallEntry;
use self::selftest_cache::DirectSwitch;

/// Default size of the memory file (sparse: only touched pages cost host memory).
pub const DEFAULT_MEMORY_SIZE: u64 = 2 << 30;

/// Options of the KVM platform.
#[derive(Debug, Clone)]
pub struct KvmConfig {
    pub device: String,
    /// `device` opened already (by [`open_device`], before the sentry left the host's file
    /// system): used instead of opening `device`.
    pub device_fd: Option<std::sync::Arc<std::os::fd::OwnedFd>>,
    pub memory_size: u64,
    pub syscall_path: SyscallPath,
    /// The self-tests' answers from earlier runs, and where to keep this run's
    /// ([`selftest_cache::SelftestCache::prepare`], before the sentry leaves the host's file
    /// system). None: the self-tests run.
    pub selftest_cache: Option<Arc<selftest_cache::SelftestCache>>,
    /// Leave the VM's destruction to a kernel worker after the process exits ([`teardown`]),
    /// so that whoever waits for the process does not wait for it (`runsc do`).
    pub defer_teardown: bool,
}

impl Default for KvmConfig {
    fn default() -> Self {
        KvmConfig {
            device: "/dev/kvm".into(),
            device_fd: None,
            memory_size: DEFAULT_MEMORY_SIZE,
            syscall_path: SyscallPath::Ring,
            selftest_cache: None,
            defer_teardown: false,
        }
    }
}

/// State shared by the platform, its address spaces and its contexts.
pub(crate) struct VmShared {
    pub vm: VmFd,
    pub mem: Arc<MemoryFile>,
    pub cpuid: CpuId,
    /// The kernel region's tables, shared by every root (supervisor pages).
    pub kernel_pdpt: Gpa,
    kernel_pt: Gpa,
    /// The same region as the direct switch's kernel roots see it: the same pages, marked
    /// user-accessible (guest-kernel code runs at CPL 3 there).
    pub kernel_view_pdpt: Gpa,
    kernel_view_pt: Gpa,
    pub trampoline_page: Gpa,
    code_page: Gpa,
    /// Whether vCPUs run under PVM's direct switch (decided once by the start-up self-test).
    direct_switch: std::sync::atomic::AtomicBool,
    /// vCPUs left in an unknown state by a failed self-test: kept, never reused.
    quarantine: Mutex<Vec<vcpu::VcpuHw>>,
    /// Guest-physical address with no memory behind it: the doorbell.
    pub doorbell_gpa: Gpa,
    pub entry: Mutex<SyscallEntry>,
    pub poller: Option<Poller>,
    free_vcpu_indexes: Mutex<Vec<usize>>,
    /// vCPUs whose contexts ended, ready for reuse.
    vcpu_pool: Mutex<Vec<vcpu::VcpuHw>>,
    /// Signalled (with `vcpu_pool` held) when a vCPU goes back to the pool.
    vcpu_freed: std::sync::Condvar,
    /// Contexts on a vCPU now, and contexts waiting for one: the contexts that may give
    /// theirs up do so only when vCPUs are scarce (see [`VmShared::vcpus_scarce`]).
    vcpus_bound: std::sync::atomic::AtomicUsize,
    vcpu_waiters: std::sync::atomic::AtomicUsize,
    /// A host page used to add and remove a throwaway memory slot (see `retire_tables`).
    scratch_slot_page: u64,
    /// Table pages waiting for the next flush before they may be reused (see
    /// `retire_tables`); the lock also serializes the add/delete of the throwaway slot.
    retired: Mutex<Vec<Gpa>>,
}

/// Table pages held back before one flush frees them all (2 MiB of them). A flush waits for
/// KVM's memory-slot update (an SRCU grace period, milliseconds under load) and makes every
/// vCPU rebuild its shadow tables, so fork+exec+exit, which retires three or four small sets
/// of tables, paid it several times per process: batching makes it rare.
const RETIRE_BATCH: usize = 512;

impl VmShared {
    /// Maps a supervisor page in the kernel region.
    pub fn map_kernel_page(&self, va: u64, gpa: Gpa, writable: bool, exec: bool) {
        let idx = (va - KERNEL_BASE) / PAGE_SIZE;
        assert!(idx < 512, "kernel region is one page table");
        let mut entry = gpa | PTE_PRESENT | PTE_ACCESSED;
        if writable {
            entry |= PTE_WRITE | pagetables::PTE_DIRTY;
        }
        if !exec {
            entry |= PTE_NX;
        }
        self.mem.write_u64(self.kernel_pt + idx * 8, entry);
        self.mem
            .write_u64(self.kernel_view_pt + idx * 8, entry | pagetables::PTE_USER);
    }

    /// Whether vCPUs run under PVM's direct switch.
    pub fn direct_switch(&self) -> bool {
        self.direct_switch
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn alloc_vcpu_index(&self) -> Result<usize, PlatformError> {
        self.free_vcpu_indexes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .ok_or(PlatformError::TooManyVcpus(MAX_VCPUS))
    }

    pub fn release_vcpu_index(&self, index: usize) {
        self.free_vcpu_indexes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(index);
        self.vcpu_freed.notify_one();
    }

    /// Puts a vCPU whose context left it back in the pool, and wakes a context waiting
    /// for one.
    pub(in crate::kvm) fn pool_vcpu(&self, hw: vcpu::VcpuHw) {
        self.vcpu_pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(hw);
        self.vcpu_freed.notify_one();
    }

    /// Waits up to `timeout` for a vCPU to come back to the pool (or for a free index).
    pub(in crate::kvm) fn wait_for_vcpu(&self, timeout: std::time::Duration) {
        use std::sync::atomic::Ordering;
        self.vcpu_waiters.fetch_add(1, Ordering::SeqCst);
        let pool = self.vcpu_pool.lock().unwrap_or_else(|e| e.into_inner());
        let free = !self
            .free_vcpu_indexes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty();
        if pool.is_empty() && !free {
            let _ = self.vcpu_freed.wait_timeout(pool, timeout);
        }
        self.vcpu_waiters.fetch_sub(1, Ordering::SeqCst);
    }

    /// Whether a context about to wait in the sentry should give its vCPU to others: when
    /// all but a few are in use, or someone waits for one. KVM allows only so many vCPUs
    /// (our layout: [`MAX_VCPUS`]) while programs run thousands of threads, most of them
    /// waiting; giving a vCPU up and taking one back costs tens of microseconds, so it is
    /// done only when they run short.
    pub(in crate::kvm) fn vcpus_scarce(&self) -> bool {
        use std::sync::atomic::Ordering;
        const SPARE: usize = 8;
        self.vcpu_waiters.load(Ordering::Relaxed) > 0
            || self.vcpus_bound.load(Ordering::Relaxed) + SPARE >= MAX_VCPUS
    }

    /// Frees the page-table pages of a dead address space (or a dropped root), once it is
    /// safe.
    ///
    /// KVM shadows guest page tables and trusts its shadow as long as the guest does not write
    /// the table pages; our writes come from the host and go unnoticed. A table page reused
    /// with new content could therefore be served from a stale shadow. Adding and deleting a
    /// memory slot makes KVM drop every shadow page, after which the pages are safe to reuse.
    /// The pages wait, unused, until [`RETIRE_BATCH`] of them have gathered, and one flush
    /// frees them all.
    pub fn retire_tables(&self, pages: Vec<Gpa>) {
        if pages.is_empty() {
            return;
        }
        let mut retired = self.retired.lock().unwrap_or_else(|e| e.into_inner());
        retired.extend(pages);
        if retired.len() < RETIRE_BATCH {
            return;
        }
        let pages = std::mem::take(&mut *retired);
        let scratch_gpa = self.mem.size() + 16 * PAGE_SIZE;
        let mut region = kvm_userspace_memory_region {
            slot: 1,
            flags: 0,
            guest_phys_addr: scratch_gpa,
            memory_size: PAGE_SIZE,
            userspace_addr: self.scratch_slot_page,
        };
        // SAFETY: the scratch page is a private anonymous page owned by VmShared, mapped for its
        // whole life; the slot lies above the memory file and is never mapped by a guest.
        let added = unsafe { self.vm.set_user_memory_region(region) };
        region.memory_size = 0;
        // SAFETY: deleting the slot added above.
        let removed = unsafe { self.vm.set_user_memory_region(region) };
        if added.is_err() || removed.is_err() {
            // Without the flush the pages must never be reused: leak them.
            tracing::warn!(
                "could not flush KVM shadow pages; leaking {} pages",
                pages.len()
            );
            return;
        }
        self.mem.free_pages(&pages);
    }
}

impl Drop for VmShared {
    fn drop(&mut self) {
        // SAFETY: unmapping the page mapped in `KvmPlatform::new`.
        unsafe {
            libc::munmap(
                self.scratch_slot_page as *mut libc::c_void,
                PAGE_SIZE as usize,
            )
        };
    }
}

/// The KVM platform.
pub struct KvmPlatform {
    shared: Arc<VmShared>,
    config: KvmConfig,
    tsc: Option<GuestTsc>,
    /// The io_uring holding the VM and the memory file for the kernel to release
    /// ([`KvmConfig::defer_teardown`]); closed at the process's exit.
    _teardown: Option<std::os::fd::OwnedFd>,
}

fn kvm_err(what: &str, e: kvm_ioctls::Error) -> PlatformError {
    PlatformError::Kvm(format!("{what}: {e}"))
}

impl KvmPlatform {
    /// Opens KVM, creates the VM and its memory, and runs the start-up self-test.
    pub fn new(config: KvmConfig) -> Result<Self, PlatformError> {
        vcpu::install_kick_handler();
        let kvm = match &config.device_fd {
            Some(fd) => {
                use std::os::fd::IntoRawFd;
                let fd = fd.try_clone().map_err(|e| {
                    PlatformError::KvmUnavailable(format!("{}: {e}", config.device))
                })?;
                // SAFETY: a duplicate of the KVM device descriptor open_device returned, owned
                // by the Kvm object from here on.
                unsafe { <Kvm as std::os::fd::FromRawFd>::from_raw_fd(fd.into_raw_fd()) }
            }
            None => open_kvm(&config.device)?,
        };
        if !kvm.check_extension(Cap::SyncRegs) {
            return Err(PlatformError::KvmUnavailable(
                "KVM lacks KVM_CAP_SYNC_REGS".into(),
            ));
        }
        let vm = kvm.create_vm().map_err(|e| kvm_err("create VM", e))?;
        let mem = Arc::new(MemoryFile::new(config.memory_size)?);
        // The first slot covers the start of the memory file only; the allocator adds slots
        // as it gets further (`install_growth_slots`).
        let first_slot = mem.size().min(FIRST_SLOT_SIZE);
        let region = kvm_userspace_memory_region {
            slot: 0,
            flags: 0,
            guest_phys_addr: 0,
            memory_size: first_slot,
            userspace_addr: mem.host_base(),
        };
        // SAFETY: the memory file mapping lives as long as VmShared (which owns both the VM
        // and an Arc of the file) and is never shrunk.
        unsafe { vm.set_user_memory_region(region) }.map_err(|e| kvm_err("memory slot", e))?;
        let teardown = if config.defer_teardown {
            use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
            // SAFETY: the VM's descriptor, open for the whole call (`vm` owns it).
            let vm_fd = unsafe { BorrowedFd::borrow_raw(vm.as_raw_fd()) };
            match teardown::hand_to_kernel(&[vm_fd, mem.file().as_fd()]) {
                Ok(ring) => {
                    tracing::debug!("VM teardown: left to a kernel worker after exit (io_uring)");
                    Some(ring)
                }
                Err(e) => {
                    tracing::debug!("VM teardown at exit, in this process (io_uring: {e})");
                    None
                }
            }
        } else {
            None
        };
        let cache = config.selftest_cache.as_deref();
        let cached = cache.and_then(|c| c.answers());
        if let Some(c) = cache.filter(|c| c.answers().is_none()) {
            tracing::debug!("self-test cache: {}", c.miss());
        }
        // The host's CPUID as KVM supports it: many host CPUIDs, each an exit to the outer
        // hypervisor on a nested host, so it is cached with the self-tests' answers.
        let cpuid = match cached {
            Some(a) => {
                let entries: Vec<kvm_bindings::kvm_cpuid_entry2> =
                    a.cpuid.iter().map(|&e| cpuid_entry(e)).collect();
                CpuId::from_entries(&entries)
                    .map_err(|e| PlatformError::Kvm(format!("cached CPUID: {e:?}")))?
            }
            None => kvm
                .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
                .map_err(|e| kvm_err("supported CPUID", e))?,
        };

        // The kernel region: PML4[511] -> PDPT -> PD -> one page table.
        let kernel_pdpt = mem.alloc_page()?;
        let kernel_pd = mem.alloc_page()?;
        let kernel_pt = mem.alloc_page()?;
        let table = PTE_PRESENT | PTE_WRITE | PTE_ACCESSED;
        mem.write_u64(kernel_pdpt, kernel_pd | table);
        mem.write_u64(kernel_pd, kernel_pt | table);
        let kernel_view_pdpt = mem.alloc_page()?;
        let kernel_view_pd = mem.alloc_page()?;
        let kernel_view_pt = mem.alloc_page()?;
        let user_table = table | pagetables::PTE_USER;
        mem.write_u64(kernel_view_pdpt, kernel_view_pd | user_table);
        mem.write_u64(kernel_view_pd, kernel_view_pt | user_table);
        let code_page = mem.alloc_page()?;
        mem.write(code_page, guest_code::kernel_code());
        let idt_page = mem.alloc_page()?;
        for vector in 0..guest_code::STUB_COUNT {
            let handler = KERNEL_CODE_VA + guest_code::stub_offset(vector);
            let gate = cpu::idt_gate(handler, vector == 3 || vector == 4);
            mem.write(idt_page + vector as u64 * 16, &gate);
        }
        let trampoline_page = mem.alloc_page()?;
        mem.write(trampoline_page, guest_code::trampoline());

        // SAFETY: a fresh private anonymous page.
        let scratch = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                PAGE_SIZE as usize,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if scratch == libc::MAP_FAILED {
            return Err(PlatformError::Memory("scratch page".into()));
        }
        let poller = match config.syscall_path {
            SyscallPath::Ring => Some(
                Poller::start().map_err(|e| PlatformError::Kvm(format!("poller thread: {e}")))?,
            ),
            SyscallPath::ExitOnly => None,
        };
        let shared = Arc::new(VmShared {
            vm,
            doorbell_gpa: mem.size(),
            mem,
            cpuid,
            kernel_pdpt,
            kernel_pt,
            kernel_view_pdpt,
            kernel_view_pt,
            trampoline_page,
            code_page,
            direct_switch: std::sync::atomic::AtomicBool::new(false),
            quarantine: Mutex::new(Vec::new()),
            entry: Mutex::new(SyscallEntry::UserTrampoline),
            poller,
            free_vcpu_indexes: Mutex::new((0..MAX_VCPUS).rev().collect()),
            vcpu_pool: Mutex::new(Vec::new()),
            vcpu_freed: std::sync::Condvar::new(),
            vcpus_bound: std::sync::atomic::AtomicUsize::new(0),
            vcpu_waiters: std::sync::atomic::AtomicUsize::new(0),
            scratch_slot_page: scratch as u64,
            retired: Mutex::new(Vec::new()),
        });
        let next_slot = Arc::new(std::sync::atomic::AtomicU32::new(2));
        install_region_slots(
            &shared,
            kvm.check_extension(Cap::ReadonlyMem),
            next_slot.clone(),
        );
        install_growth_slots(&shared, first_slot, next_slot)?;
        shared.map_kernel_page(KERNEL_CODE_VA, code_page, false, true);
        shared.map_kernel_page(IDT_VA, idt_page, false, false);

        let entry = match cached {
            Some(a) => {
                tracing::debug!("syscall entry: {:?} (cached)", a.entry);
                a.entry
            }
            None => {
                let entry = selftest::probe(&shared)?;
                tracing::debug!("syscall entry: {entry:?}");
                entry
            }
        };
        *shared.entry.lock().unwrap_or_else(|e| e.into_inner()) = entry;
        let direct_switch = if entry == SyscallEntry::UserTrampoline {
            decide_direct_switch(&shared, cached.map(|a| &a.direct_switch))
        } else {
            DirectSwitch::Untested
        };
        if let Some(c) = cache {
            let answers = selftest_cache::Answers {
                entry,
                direct_switch,
                cpuid: shared
                    .cpuid
                    .as_slice()
                    .iter()
                    .map(|e| [e.function, e.index, e.flags, e.eax, e.ebx, e.ecx, e.edx])
                    .collect(),
            };
            if cached != Some(&answers) {
                c.store(&answers);
            }
        }
        // Every vCPU of a VM shares one TSC offset (KVM synchronizes them), so one reading
        // serves all; the vCPU goes back to the pool.
        let tsc = vcpu::Vcpu::new(shared.clone(), 0, shared.direct_switch())?.guest_tsc();
        tracing::debug!("guest TSC: {tsc:?}");
        if let Some(p) = &shared.poller {
            p.set_tsc(tsc);
        }
        Ok(KvmPlatform {
            shared,
            config,
            tsc,
            _teardown: teardown,
        })
    }

    /// Whether vCPUs run under PVM's direct switch.
    pub fn direct_switch(&self) -> bool {
        self.shared.direct_switch()
    }

    /// How system calls enter the sentry on this host.
    pub fn syscall_entry(&self) -> SyscallEntry {
        *self.shared.entry.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A CPUID entry as KVM takes it, from the cache's words.
fn cpuid_entry(e: selftest_cache::CpuidEntry) -> kvm_bindings::kvm_cpuid_entry2 {
    let [function, index, flags, eax, ebx, ecx, edx] = e;
    kvm_bindings::kvm_cpuid_entry2 {
        function,
        index,
        flags,
        eax,
        ebx,
        ecx,
        edx,
        padding: [0; 3],
    }
}

/// Environment variable that keeps vCPUs off PVM's direct switch (the exit path then runs,
/// as on a host without it), whatever [`DIRECT_SWITCH_ENV`] says.
pub const NO_DIRECT_SWITCH_ENV: &str = "RUNSC_NO_DIRECT_SWITCH";

/// Environment variable that turns PVM's direct switch off when set to `0` (the same as
/// [`NO_DIRECT_SWITCH_ENV`]). The direct switch is on by default where the host has it. (It
/// was opt-in while thread churn hung now and then; the cause was the ring poller serving a
/// slot after its vCPU had gone to another thread, fixed in `ring.rs`, `RingSlot::live`.)
pub const DIRECT_SWITCH_ENV: &str = "RUNSC_DIRECT_SWITCH";

/// Turns on PVM's direct switch if the host has it: the self-test must see the PV-feature MSR
/// accepted, a batch of system calls come back without exits and an exception delivered and
/// resumed (or an earlier run's self-test, `cached`, must have seen it on this host).
/// Otherwise the exit path stays, and the log says why. Returns the self-test's answer, to
/// be cached ([`DirectSwitch::Untested`] when an environment switch kept it off).
fn decide_direct_switch(shared: &Arc<VmShared>, cached: Option<&DirectSwitch>) -> DirectSwitch {
    if crate::env_flag(NO_DIRECT_SWITCH_ENV) {
        tracing::debug!("direct switch: off ({NO_DIRECT_SWITCH_ENV} is set); exit path");
        return cached.cloned().unwrap_or(DirectSwitch::Untested);
    }
    if std::env::var_os(DIRECT_SWITCH_ENV).is_some_and(|v| v == "0") {
        tracing::debug!("direct switch: off ({DIRECT_SWITCH_ENV}=0); exit path");
        return cached.cloned().unwrap_or(DirectSwitch::Untested);
    }
    let from_cache = matches!(cached, Some(DirectSwitch::On | DirectSwitch::Off(_)));
    let (answer, detail) = match cached {
        Some(a @ (DirectSwitch::On | DirectSwitch::Off(_))) => {
            (a.clone(), "cached self-test answer".to_string())
        }
        _ => {
            shared
                .mem
                .write(shared.code_page, &guest_code::kernel_code_ds());
            match selftest::probe_direct_switch(shared) {
                Ok(exits) => (
                    DirectSwitch::On,
                    format!(
                        "self-test: {} system calls took {exits} exits",
                        selftest::DS_PROBE_CALLS
                    ),
                ),
                Err(why) => {
                    shared
                        .mem
                        .write(shared.code_page, guest_code::kernel_code());
                    (DirectSwitch::Off(why), String::new())
                }
            }
        }
    };
    match &answer {
        DirectSwitch::On => {
            if from_cache {
                shared
                    .mem
                    .write(shared.code_page, &guest_code::kernel_code_ds());
            }
            shared
                .mem
                .write(shared.trampoline_page, guest_code::trampoline_ds());
            shared
                .direct_switch
                .store(true, std::sync::atomic::Ordering::Relaxed);
            tracing::debug!("direct switch: on ({detail})");
        }
        DirectSwitch::Off(why) if from_cache => {
            tracing::debug!("direct switch: off ({why}; cached self-test answer); exit path");
        }
        DirectSwitch::Off(why) => tracing::debug!("direct switch: off ({why}); exit path"),
        DirectSwitch::Untested => {}
    }
    answer
}

/// The memory file's first KVM memory slot, at most. KVM allocates and zeroes a slot's
/// rmap and page-track arrays (10 bytes a page) when it is added and frees them with the
/// VM: for the whole default 2 GiB file that was ~0.8 ms of every start and as much at the
/// end, while a small program uses a few MiB.
const FIRST_SLOT_SIZE: u64 = 64 << 20;

/// Lets the memory file's allocator add a KVM memory slot for the next part of the file when
/// it gets past the part the slots cover (`first_slot` bytes at first; the file's mapping
/// is whole from the start, only the slots grow). Slot numbers come from `next_slot`, shared
/// with the external regions.
fn install_growth_slots(
    shared: &Arc<VmShared>,
    first_slot: u64,
    next_slot: Arc<std::sync::atomic::AtomicU32>,
) -> Result<(), PlatformError> {
    if first_slot == shared.mem.size() {
        return Ok(());
    }
    let vm = Arc::downgrade(shared);
    let host_base = shared.mem.host_base();
    shared.mem.set_slot_grower(
        first_slot,
        Box::new(move |start, end| {
            tracing::debug!("memory slot for {start:#x}..{end:#x}");
            // SAFETY: the part [start, end) of the memory file's mapping, which lives as long
            // as VmShared (the VM holds an Arc of the file) and is never shrunk.
            unsafe { add_slot(&vm, &next_slot, 0, start, end - start, host_base + start) }
                .map_err(|e| kvm_err("memory slot", e))
        }),
    )
}

/// Lets the memory file add external regions (ImgFS images mapped without a copy) as KVM
/// memory slots from `next_slot` up (0 is the memory file's first, 1 the scratch slot of
/// `retire_tables`; the memory file's next slots share the numbers).
/// The slots are read-only where KVM supports it; either way the guest page tables never
/// map such a page writable.
fn install_region_slots(
    shared: &Arc<VmShared>,
    readonly_slots: bool,
    next_slot: Arc<std::sync::atomic::AtomicU32>,
) {
    let vm = Arc::downgrade(shared);
    let flags = if readonly_slots {
        kvm_bindings::KVM_MEM_READONLY
    } else {
        0
    };
    shared
        .mem
        .set_region_installer(Box::new(move |gpa, host, len| {
            // SAFETY: the memory file keeps the region's host mapping alive (through its owner)
            // for as long as it lives, and the VM never outlives the memory file it shares.
            unsafe { add_slot(&vm, &next_slot, flags, gpa, len, host) }
                .map_err(|e| kvm_err("external memory slot", e))
        }));
}

/// Adds a memory slot numbered from `next_slot` to the VM, if it still lives.
///
/// # Safety
/// `[host, host+len)` must stay mapped for as long as the VM lives.
unsafe fn add_slot(
    vm: &std::sync::Weak<VmShared>,
    next_slot: &std::sync::atomic::AtomicU32,
    flags: u32,
    gpa: u64,
    len: u64,
    host: u64,
) -> Result<(), kvm_ioctls::Error> {
    let Some(vm) = vm.upgrade() else {
        return Err(kvm_ioctls::Error::new(libc::ENODEV));
    };
    let region = kvm_userspace_memory_region {
        slot: next_slot.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        flags,
        guest_phys_addr: gpa,
        memory_size: len,
        userspace_addr: host,
    };
    // SAFETY: the caller keeps the host range mapped for the VM's life.
    unsafe { vm.vm.set_user_memory_region(region) }
}

/// Opens the KVM device `device` (for [`KvmConfig::device_fd`]), with the same errors as
/// [`KvmPlatform::new`] gives for it.
pub fn open_device(device: &str) -> Result<std::os::fd::OwnedFd, PlatformError> {
    use std::os::fd::{FromRawFd, OwnedFd};
    let path = std::ffi::CString::new(device)
        .map_err(|_| PlatformError::KvmUnavailable(format!("bad device path {device:?}")))?;
    // SAFETY: opening a path; the fd is owned by the OwnedFd below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        let err = std::io::Error::last_os_error();
        let hint = match err.raw_os_error() {
            Some(libc::ENOENT) => " (is the kvm module loaded?)",
            Some(libc::EACCES) | Some(libc::EPERM) => {
                " (add the user to the kvm group or run as root)"
            }
            _ => "",
        };
        return Err(PlatformError::KvmUnavailable(format!(
            "{device}: {err}{hint}"
        )));
    }
    // SAFETY: fd is a freshly opened descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn open_kvm(device: &str) -> Result<Kvm, PlatformError> {
    use std::os::fd::{FromRawFd, IntoRawFd};
    let fd = open_device(device)?;
    // SAFETY: fd is a freshly opened KVM device descriptor, owned by the Kvm object from here.
    Ok(unsafe { Kvm::from_raw_fd(fd.into_raw_fd()) })
}

impl Platform for KvmPlatform {
    fn memory(&self) -> &Arc<MemoryFile> {
        &self.shared.mem
    }

    fn new_address_space(&self) -> Result<Arc<dyn AddressSpace>, PlatformError> {
        Ok(Arc::new(KvmAddressSpace::new(self.shared.clone())?))
    }

    fn new_context(&self, fast: Arc<dyn FastSyscalls>) -> Result<Box<dyn Context>, PlatformError> {
        Ok(Box::new(vcpu::KvmContext::new(self.shared.clone(), fast)?))
    }

    fn guest_tsc(&self) -> Option<GuestTsc> {
        self.tsc
    }

    fn describe(&self) -> String {
        format!(
            "kvm (syscall entry {:?}, path {:?}, {})",
            self.syscall_entry(),
            self.config.syscall_path,
            if self.shared.direct_switch() {
                "direct switch"
            } else {
                "exits (no direct switch)"
            }
        )
    }
}
