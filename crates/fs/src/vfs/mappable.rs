//! The mapping contract: how a file lends its pages to memory mappings without a copy.
//!
//! This is gVisor's `memmap.Mappable` cut down to what our filesystems need. A file whose
//! pages already live in host memory the sandbox may map (an ImgFS image, memory-mapped)
//! implements [`Mappable`]; the memory manager then puts those very pages into the guest's
//! page tables, read-only, and copies a page only when a private mapping writes it.
//!
//! The memory manager calls, in order:
//! - [`Mappable::add_mapping`] when a mapping of the file is created, and
//!   [`Mappable::copy_mapping`] when fork or mremap duplicates one;
//! - [`Mappable::translate`] on a fault, to learn where the page at a file offset lives;
//! - [`Mappable::remove_mapping`] when (part of) a mapping goes away.
//!
//! The add/remove bookkeeping lets a mutable file find and invalidate the mappings of pages
//! it changes (gVisor does this on truncate). ImgFS never changes, so its translations stay
//! valid for ever; it only counts what is mapped. [`Mappable::map_internal`] is the sentry's
//! own access path to the same bytes (gVisor's `MapInternal`): `read()` of an ImgFS file is a
//! copy out of it, never a second buffer.

use std::any::Any;
use std::ptr::NonNull;
use std::sync::Arc;

use crate::Errno;

/// Host memory holding file pages that may be mapped into the guest: page aligned, readable,
/// never written, and kept mapped for as long as `owner` lives.
#[derive(Clone)]
pub struct HostRegion {
    /// Identifies the region (the same memory always has the same key).
    pub key: u64,
    pub base: NonNull<u8>,
    /// Length in bytes, a multiple of the page size.
    pub len: u64,
    /// Keeps the memory mapped.
    pub owner: Arc<dyn Any + Send + Sync>,
}

// SAFETY: the region is read-only memory kept alive by `owner`, which is itself Send + Sync;
// the pointer is only dereferenced for reads.
unsafe impl Send for HostRegion {}
// SAFETY: as above.
unsafe impl Sync for HostRegion {}

/// Where the page at a file offset lives.
pub enum Translation {
    /// `offset` bytes into `region`: map it directly, read-only.
    Region { region: HostRegion, offset: u64 },
    /// No page to lend (past the end of the file, or a page whose bytes past the end of the
    /// file are not zeros in a damaged image): fill a private page with `read_at` instead.
    Copy,
}

/// A range of a file mapped at some addresses of some address space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MappedRange {
    /// Identifies the address space.
    pub space: usize,
    /// First mapped address.
    pub addr: u64,
    pub len: u64,
    /// File offset mapped at `addr`.
    pub offset: u64,
    /// Whether the mapping may write the file (MAP_SHARED with write access).
    pub writable: bool,
}

/// A file whose pages can be mapped without a copy.
pub trait Mappable: Send + Sync {
    /// `range` of the file is now mapped.
    fn add_mapping(&self, range: MappedRange);
    /// `range`, previously added (possibly as part of a larger range), is no longer mapped.
    fn remove_mapping(&self, range: MappedRange);
    /// `dst` is a copy of the mapped range `src` (fork, mremap).
    fn copy_mapping(&self, src: MappedRange, dst: MappedRange);
    /// Where the page at `offset` (page aligned) lives. `write` says whether the mapping
    /// wants to write it: a read-only file may still lend the page to a private mapping,
    /// which then copies it.
    fn translate(&self, offset: u64, write: bool) -> Result<Translation, Errno>;
    /// The file's bytes in `[offset, offset+len)` (shorter at the end of the file), read in
    /// place.
    fn map_internal(&self, offset: u64, len: usize) -> Result<&[u8], Errno>;
}
