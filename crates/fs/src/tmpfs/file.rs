//! The bytes of a tmpfs regular file: a sparse map of 4 KiB pages.
//!
//! A hole (no entry) reads as zeros and costs nothing, so a 1 TiB `ftruncate` is one field
//! write. A page allocated by `fallocate` but never written is a `None` page: it counts in
//! `st_blocks` and against the filesystem's space, like Linux's preallocated pages, but holds
//! no memory of its own (`None`). Invariant: every byte at or past `size` is zero (a shrinking
//! truncate zeroes the tail of the last page), so growing the file again exposes zeros.

use std::collections::BTreeMap;

use super::Space;
use crate::Errno;

/// Page size: the unit of allocation, `st_blocks` and space accounting.
pub(super) const PAGE: u64 = 4096;

/// Linux's `MAX_LFS_FILESIZE` on 64-bit: offsets past it fail with EFBIG.
pub(super) const MAX_FILE_SIZE: u64 = i64::MAX as u64;

/// One allocated page: `None` was allocated (fallocate) but never written and reads as
/// zeros; `Some` holds `PAGE` bytes of written data.
type Page = Option<Box<[u8]>>;

fn bytes_mut(page: &mut Page) -> &mut [u8] {
    page.get_or_insert_with(|| vec![0u8; PAGE as usize].into_boxed_slice())
}

/// Space charged by one inode against its filesystem; refunded when the inode goes away.
pub(super) struct Charge<'a> {
    pub space: &'a Space,
    pub charged: &'a mut u64,
}

impl Charge<'_> {
    pub fn take(&mut self, bytes: u64) -> Result<(), Errno> {
        self.space.charge(bytes)?;
        *self.charged += bytes;
        Ok(())
    }

    pub fn give_back(&mut self, bytes: u64) {
        let bytes = bytes.min(*self.charged);
        self.space.refund(bytes);
        *self.charged -= bytes;
    }
}

#[derive(Default)]
pub(super) struct FileData {
    size: u64,
    pages: BTreeMap<u64, Page>,
}

impl FileData {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The first offset at or after `off` that holds data (`hole` false) or is in a hole
    /// (`hole` true), as SEEK_DATA / SEEK_HOLE; the end of the file counts as a hole.
    pub fn seek(&self, off: u64, hole: bool) -> Option<u64> {
        if off >= self.size {
            return None;
        }
        let mut idx = off / PAGE;
        if hole {
            while self.pages.contains_key(&idx) {
                idx += 1;
            }
            Some((idx * PAGE).max(off).min(self.size))
        } else {
            let next = self.pages.range(idx..).next().map(|(&i, _)| i)?;
            let at = (next * PAGE).max(off);
            (at < self.size).then_some(at)
        }
    }

    /// Allocated pages (for `st_blocks`).
    pub fn pages(&self) -> u64 {
        self.pages.len() as u64
    }

    /// Reads at `off`; 0 at or past the end. Holes read as zeros.
    pub fn read(&self, off: u64, buf: &mut [u8]) -> usize {
        if off >= self.size || buf.is_empty() {
            return 0;
        }
        let n = (buf.len() as u64).min(self.size - off);
        let buf = &mut buf[..n as usize];
        let end = off + n;
        let mut filled = 0usize;
        for (&idx, page) in self.pages.range(off / PAGE..=(end - 1) / PAGE) {
            let start = idx * PAGE;
            let s = (start.max(off) - off) as usize;
            let e = ((start + PAGE).min(end) - off) as usize;
            buf[filled..s].fill(0);
            match page {
                None => buf[s..e].fill(0),
                Some(d) => {
                    let from = (off + s as u64 - start) as usize;
                    buf[s..e].copy_from_slice(&d[from..from + (e - s)]);
                }
            }
            filled = e;
        }
        buf[filled..].fill(0);
        n as usize
    }

    /// Writes at `off`, growing the file. Writes what fits under the maximum file size
    /// (EFBIG if nothing does) and the filesystem's space (ENOSPC if nothing does).
    pub fn write(&mut self, charge: &mut Charge<'_>, off: u64, buf: &[u8]) -> Result<usize, Errno> {
        if buf.is_empty() {
            return Ok(0);
        }
        if off >= MAX_FILE_SIZE {
            return Err(libc::EFBIG);
        }
        let len = (buf.len() as u64).min(MAX_FILE_SIZE - off) as usize;
        let mut done = 0usize;
        while done < len {
            let pos = off + done as u64;
            let idx = pos / PAGE;
            let in_page = (pos % PAGE) as usize;
            let n = (PAGE as usize - in_page).min(len - done);
            let page = match self.pages.entry(idx) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    if charge.take(PAGE).is_err() {
                        break;
                    }
                    v.insert(None)
                }
            };
            bytes_mut(page)[in_page..in_page + n].copy_from_slice(&buf[done..done + n]);
            done += n;
        }
        if done == 0 {
            return Err(libc::ENOSPC);
        }
        self.size = self.size.max(off + done as u64);
        Ok(done)
    }

    /// Sets the size. Shrinking frees every page past the new end (including pages
    /// preallocated past the old end, as Linux does) and zeroes the tail of the last one;
    /// growing allocates nothing.
    pub fn truncate(&mut self, charge: &mut Charge<'_>, size: u64) -> Result<(), Errno> {
        if size > MAX_FILE_SIZE {
            return Err(libc::EFBIG);
        }
        if size < self.size {
            let freed = self.pages.split_off(&size.div_ceil(PAGE));
            charge.give_back(freed.len() as u64 * PAGE);
            if !size.is_multiple_of(PAGE) {
                if let Some(Some(d)) = self.pages.get_mut(&(size / PAGE)) {
                    d[(size % PAGE) as usize..].fill(0);
                }
            }
        }
        self.size = size;
        Ok(())
    }

    /// Zeroes `[start, end)` inside pages that hold data; holes and zero pages are already
    /// zero.
    fn zero_bytes(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        for (&idx, page) in self.pages.range_mut(start / PAGE..=(end - 1) / PAGE) {
            if let Some(d) = page {
                let ps = idx * PAGE;
                let s = (start.max(ps) - ps) as usize;
                let e = (end.min(ps + PAGE) - ps) as usize;
                d[s..e].fill(0);
            }
        }
    }

    /// Page indexes `[first, last)` wholly inside `[start, end)`.
    fn whole_pages(start: u64, end: u64) -> (u64, u64) {
        (start.div_ceil(PAGE), end / PAGE)
    }

    /// Pages touched by `[start, end)` that are not allocated yet.
    fn missing_pages(&self, start: u64, end: u64) -> u64 {
        let (first, last) = (start / PAGE, (end - 1) / PAGE);
        let present = self.pages.range(first..=last).count() as u64;
        (last - first + 1) - present
    }

    /// `FALLOC_FL_PUNCH_HOLE`: zeroes `[start, end)` and frees the pages wholly inside it.
    pub fn punch_hole(&mut self, charge: &mut Charge<'_>, start: u64, end: u64) {
        let (first, last) = Self::whole_pages(start, end);
        if first < last {
            let doomed: Vec<u64> = self.pages.range(first..last).map(|(&k, _)| k).collect();
            for k in &doomed {
                self.pages.remove(k);
            }
            charge.give_back(doomed.len() as u64 * PAGE);
        }
        // Only the partial pages at the edges are left in the range.
        self.zero_bytes(start, end);
    }

    /// Allocates every page touched by `[start, end)` (all or nothing: ENOSPC), as mode 0
    /// of `fallocate`. With `zero`, also zeroes the range (`FALLOC_FL_ZERO_RANGE`). The
    /// size grows to `end` unless `keep_size`.
    pub fn allocate(
        &mut self,
        charge: &mut Charge<'_>,
        start: u64,
        end: u64,
        zero: bool,
        keep_size: bool,
    ) -> Result<(), Errno> {
        let missing = self.missing_pages(start, end);
        charge.take(missing * PAGE)?;
        if missing > 0 {
            for idx in start / PAGE..=(end - 1) / PAGE {
                self.pages.entry(idx).or_insert(None);
            }
        }
        if zero {
            let (first, last) = Self::whole_pages(start, end);
            if first < last {
                for (_, page) in self.pages.range_mut(first..last) {
                    *page = None;
                }
            }
            self.zero_bytes(start, end);
        }
        if !keep_size {
            self.size = self.size.max(end);
        }
        Ok(())
    }
}
