//! x86-64 four-level page tables kept in the memory file.
//!
//! The tables are written only by the sentry through its own mapping; the guest never maps
//! them, so they are trusted. They are a cache of the memory manager's mappings.
//!
//! Each address space has a root. Every vCPU running it gets a *copy* of that root whose slot
//! 255 points at the vCPU's private tables (trampoline, shared page, doorbell); all other
//! slots point at the same lower-level tables. A top-level entry added to the address space is
//! therefore copied into every vCPU root that mirrors it.

use std::sync::Arc;

use super::layout::{KERNEL_PML4_INDEX, PAGE_SIZE, PER_VCPU_PML4_INDEX};
use crate::memory::{Gpa, MemoryFile};
use crate::PlatformError;

pub const PTE_PRESENT: u64 = 1 << 0;
pub const PTE_WRITE: u64 = 1 << 1;
pub const PTE_USER: u64 = 1 << 2;
pub const PTE_ACCESSED: u64 = 1 << 5;
pub const PTE_DIRTY: u64 = 1 << 6;
pub const PTE_NX: u64 = 1 << 63;
pub const PTE_ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

/// Flags of a table entry pointing at a lower table: permissions are decided at the leaf.
/// Accessed is preset so KVM never needs to write it back.
const TABLE_USER: u64 = PTE_PRESENT | PTE_WRITE | PTE_USER | PTE_ACCESSED;
const TABLE_KERNEL: u64 = PTE_PRESENT | PTE_WRITE | PTE_ACCESSED;

fn index(va: u64, level: u32) -> u64 {
    (va >> (12 + 9 * level)) & 0x1ff
}

/// One tree of page tables.
pub struct PageTables {
    mem: Arc<MemoryFile>,
    root: Gpa,
    /// Every table page of the tree (the root included), freed with the tree.
    tables: Vec<Gpa>,
    /// Per-vCPU roots that mirror this root's entries.
    mirrors: Vec<Gpa>,
}

impl PageTables {
    /// Creates an empty tree.
    pub fn new(mem: Arc<MemoryFile>) -> Result<Self, PlatformError> {
        let root = mem.alloc_page()?;
        Ok(PageTables {
            mem,
            root,
            tables: vec![root],
            mirrors: Vec::new(),
        })
    }

    /// Points top-level slot `slot` at an existing table (shared kernel region, per-vCPU slot).
    pub fn set_top_level(&mut self, slot: usize, table: Gpa, user: bool) {
        let flags = if user { TABLE_USER } else { TABLE_KERNEL };
        self.mem
            .write_u64(self.root + slot as u64 * 8, table | flags);
    }

    /// Creates a root for a vCPU that shares everything with this tree but slot 255, which
    /// points at `per_vcpu_table`. The new root is kept in sync with this one.
    pub fn new_mirror(&mut self, per_vcpu_table: Gpa) -> Result<Gpa, PlatformError> {
        let mirror = self.mem.alloc_page()?;
        for slot in 0..512u64 {
            let entry = self.mem.read_u64(self.root + slot * 8);
            self.mem.write_u64(mirror + slot * 8, entry);
        }
        self.mem.write_u64(
            mirror + PER_VCPU_PML4_INDEX as u64 * 8,
            per_vcpu_table | TABLE_USER,
        );
        self.mirrors.push(mirror);
        Ok(mirror)
    }

    /// Like [`new_mirror`](Self::new_mirror), for PVM's direct switch: a Linux-PTI pair of
    /// roots, the "kernel" one on an 8 KiB boundary and the "user" one on the next page, both
    /// mirroring this tree. They differ in the kernel slot: the user root keeps this tree's
    /// (supervisor pages), the kernel root points at `kernel_view`, the same pages marked
    /// user-accessible, because guest-kernel code runs at CPL 3 under the direct switch.
    /// Returns the user root; the kernel root is 4 KiB below it.
    pub fn new_mirror_pair(
        &mut self,
        per_vcpu_table: Gpa,
        kernel_view: Gpa,
    ) -> Result<Gpa, PlatformError> {
        let kernel = self.mem.alloc_page_pair()?;
        let user = kernel + PAGE_SIZE;
        for root in [kernel, user] {
            for slot in 0..512u64 {
                let entry = self.mem.read_u64(self.root + slot * 8);
                self.mem.write_u64(root + slot * 8, entry);
            }
            self.mem.write_u64(
                root + PER_VCPU_PML4_INDEX as u64 * 8,
                per_vcpu_table | TABLE_USER,
            );
            self.mirrors.push(root);
        }
        self.mem.write_u64(
            kernel + KERNEL_PML4_INDEX as u64 * 8,
            kernel_view | TABLE_USER,
        );
        Ok(user)
    }

    /// Forgets a mirror root made by [`new_mirror`](Self::new_mirror). The caller retires
    /// the page (it was a page table: KVM may still shadow it).
    pub fn drop_mirror(&mut self, mirror: Gpa) {
        self.mirrors.retain(|&m| m != mirror);
    }

    /// Walks to the leaf table for `va`, creating tables if `create`.
    fn leaf_table(&mut self, va: u64, create: bool) -> Result<Option<Gpa>, PlatformError> {
        let mut table = self.root;
        for level in (1..=3).rev() {
            let slot = index(va, level);
            let entry_addr = table + slot * 8;
            let entry = self.mem.read_u64(entry_addr);
            if entry & PTE_PRESENT != 0 {
                table = entry & PTE_ADDR_MASK;
                continue;
            }
            if !create {
                return Ok(None);
            }
            let next = self.mem.alloc_page()?;
            self.tables.push(next);
            let kernel = level == 3 && slot as usize == KERNEL_PML4_INDEX;
            let value = next | if kernel { TABLE_KERNEL } else { TABLE_USER };
            self.mem.write_u64(entry_addr, value);
            if level == 3 {
                for &mirror in &self.mirrors {
                    self.mem.write_u64(mirror + slot * 8, value);
                }
            }
            table = next;
        }
        Ok(Some(table))
    }

    /// Sets the leaf entry for `va` and returns the previous one (0 if none).
    pub fn map(&mut self, va: u64, gpa: Gpa, flags: u64) -> Result<u64, PlatformError> {
        let table = self
            .leaf_table(va, true)?
            .expect("leaf table created on demand");
        let addr = table + index(va, 0) * 8;
        let old = self.mem.read_u64(addr);
        self.mem.write_u64(addr, (gpa & PTE_ADDR_MASK) | flags);
        Ok(old)
    }

    /// Clears the leaf entry for `va` and returns the previous one (0 if none).
    pub fn unmap(&mut self, va: u64) -> u64 {
        match self.leaf_table(va, false) {
            Ok(Some(table)) => {
                let addr = table + index(va, 0) * 8;
                let old = self.mem.read_u64(addr);
                self.mem.write_u64(addr, 0);
                old
            }
            _ => 0,
        }
    }

    /// Returns the leaf entry for `va` (0 if none).
    pub fn lookup(&mut self, va: u64) -> u64 {
        match self.leaf_table(va, false) {
            Ok(Some(table)) => self.mem.read_u64(table + index(va, 0) * 8),
            _ => 0,
        }
    }

    /// Takes every table page of this tree (mirrors included) for the caller to retire; the
    /// tree must not be used afterwards.
    pub fn take_pages(&mut self) -> Vec<Gpa> {
        let mut pages = std::mem::take(&mut self.tables);
        pages.append(&mut self.mirrors);
        pages
    }
}

/// Page-aligned start of the page holding `va`.
pub fn page_floor(va: u64) -> u64 {
    va & !(PAGE_SIZE - 1)
}
