//! Address spaces of the KVM platform: a page-table tree per application address space.

use std::any::Any;
use std::sync::{Arc, Mutex};

use super::layout::KERNEL_PML4_INDEX;
use super::pagetables::*;
use super::VmShared;
use crate::memory::Gpa;
use crate::{AddressSpace, PlatformError, Prot, PAGE_SIZE};

/// An application address space.
pub struct KvmAddressSpace {
    vm: Arc<VmShared>,
    pub(super) tables: Mutex<PageTables>,
}

impl KvmAddressSpace {
    pub(super) fn new(vm: Arc<VmShared>) -> Result<Self, PlatformError> {
        let mut tables = PageTables::new(vm.mem.clone())?;
        tables.set_top_level(KERNEL_PML4_INDEX, vm.kernel_pdpt, false);
        Ok(KvmAddressSpace {
            vm,
            tables: Mutex::new(tables),
        })
    }
}

fn leaf_flags(prot: Prot) -> u64 {
    let mut flags = PTE_PRESENT | PTE_USER | PTE_ACCESSED;
    if prot.write {
        flags |= PTE_WRITE | PTE_DIRTY;
    }
    if !prot.exec {
        flags |= PTE_NX;
    }
    flags
}

/// Whether replacing `old` by `new` takes away something a cached translation could still
/// grant: the page, write access, or execute access.
fn narrows(old: u64, new: u64) -> bool {
    if old & PTE_PRESENT == 0 {
        return false;
    }
    new & PTE_PRESENT == 0
        || old & PTE_ADDR_MASK != new & PTE_ADDR_MASK
        || (old & PTE_WRITE != 0 && new & PTE_WRITE == 0)
        || (old & PTE_NX == 0 && new & PTE_NX != 0)
}

/// Collects pages whose guest translations must be dropped and drops them in runs.
#[derive(Default)]
struct Invalidations(Vec<Gpa>);

impl Invalidations {
    fn add(&mut self, old_entry: u64) {
        self.0.push(old_entry & PTE_ADDR_MASK);
    }

    fn flush(mut self, vm: &VmShared) {
        crate::for_each_page_run(&mut self.0, |start, len| {
            vm.mem.invalidate_translations(start, len)
        });
    }
}

impl AddressSpace for KvmAddressSpace {
    fn map(&self, addr: u64, gpa: Gpa, len: u64, prot: Prot) -> Result<(), PlatformError> {
        let flags = leaf_flags(prot);
        let mut inval = Invalidations::default();
        {
            let mut t = self.tables.lock().unwrap_or_else(|e| e.into_inner());
            let mut off = 0;
            while off < len {
                let new = (gpa + off) | flags;
                let old = t.map(addr + off, gpa + off, flags)?;
                if narrows(old, new) {
                    inval.add(old);
                }
                off += PAGE_SIZE;
            }
        }
        inval.flush(&self.vm);
        Ok(())
    }

    fn map_pages(&self, pages: &[(u64, Gpa)], prot: Prot) -> Result<(), PlatformError> {
        let flags = leaf_flags(prot);
        let mut inval = Invalidations::default();
        let mapped = {
            let mut t = self.tables.lock().unwrap_or_else(|e| e.into_inner());
            pages.iter().try_for_each(|&(addr, gpa)| {
                let old = t.map(addr, gpa, flags)?;
                if narrows(old, gpa | flags) {
                    inval.add(old);
                }
                Ok(())
            })
        };
        // Whatever was replaced before a failure is dropped too.
        inval.flush(&self.vm);
        mapped
    }

    fn unmap(&self, addr: u64, len: u64) {
        let mut inval = Invalidations::default();
        {
            let mut t = self.tables.lock().unwrap_or_else(|e| e.into_inner());
            let mut off = 0;
            while off < len {
                let old = t.unmap(addr + off);
                if old & PTE_PRESENT != 0 {
                    inval.add(old);
                }
                off += PAGE_SIZE;
            }
        }
        inval.flush(&self.vm);
    }

    fn write_protect(&self, pages: &[u64]) {
        let mut inval = Invalidations::default();
        {
            let mut t = self.tables.lock().unwrap_or_else(|e| e.into_inner());
            for &va in pages {
                let old = t.lookup(va);
                if old & PTE_PRESENT == 0 || old & PTE_WRITE == 0 {
                    continue;
                }
                let new = old & !(PTE_WRITE | PTE_DIRTY);
                // Remapping an address that is already mapped allocates no table page.
                if t.map(va, old & PTE_ADDR_MASK, new & !PTE_ADDR_MASK).is_ok() {
                    inval.add(old);
                }
            }
        }
        inval.flush(&self.vm);
    }

    fn translate(&self, addr: u64) -> Option<(Gpa, bool)> {
        let entry = self
            .tables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lookup(page_floor(addr));
        (entry & PTE_PRESENT != 0).then_some((entry & PTE_ADDR_MASK, entry & PTE_WRITE != 0))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Drop for KvmAddressSpace {
    fn drop(&mut self) {
        let pages = self
            .tables
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take_pages();
        self.vm.retire_tables(pages);
    }
}
