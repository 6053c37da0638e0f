//! Virtual memory areas.

use std::sync::Arc;

use fs::vfs::Inode;
use platform::Prot;

/// What backs a VMA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmaKind {
    /// Private anonymous memory (shared anonymous memory is a file mapping of an unnamed
    /// shared-memory file).
    Anonymous,
    /// A segment of the program image (anonymous memory filled at load).
    Image,
    /// The brk heap.
    Heap,
    /// The main thread's stack.
    Stack,
    /// A mapping of a file (see [`Vma::file`]).
    File,
    /// The vDSO's code (`crate::vdso`).
    Vdso,
    /// The vDSO's parameter page: readable, never writable.
    Vvar,
}

/// The file behind a file mapping.
#[derive(Clone)]
pub struct FileMapping {
    pub inode: Arc<dyn Inode>,
    /// File offset of the VMA's first byte.
    pub offset: u64,
    /// MAP_SHARED: changes are written back to the file.
    pub shared: bool,
    /// Whether the descriptor allowed writing (bounds mprotect of shared mappings).
    pub may_write: bool,
    /// Path for /proc/PID/maps.
    pub path: Vec<u8>,
    /// A System V shared memory attachment: the segment's token (`crate::ipc::shm`).
    pub shm: Option<Arc<crate::ipc::shm::Attach>>,
    /// The name the file was mapped through. A mapping holds it as Linux's VMA holds its
    /// struct file, so a removed file's deletion is reported (inotify) at the last munmap.
    pub name: Option<Arc<fs::vfs::Dentry>>,
}

impl std::fmt::Debug for FileMapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileMapping")
            .field("offset", &self.offset)
            .field("shared", &self.shared)
            .field("path", &String::from_utf8_lossy(&self.path))
            .finish()
    }
}

/// What mlock, madvise and mbind set on a VMA (Linux's VM_LOCKED, VM_DONTCOPY, VM_WIPEONFORK,
/// vm_policy).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VmFlags {
    /// mlock, mlock2, mlockall: counted against RLIMIT_MEMLOCK; not inherited by fork.
    pub locked: bool,
    /// MADV_DONTFORK: a forked child doesn't get the mapping.
    pub dontfork: bool,
    /// MADV_WIPEONFORK: a forked child gets the mapping empty (zeros).
    pub wipeonfork: bool,
    /// VM_DONTEXPAND (an aio ring): mremap may move the mapping but not grow it (EFAULT).
    pub dontexpand: bool,
    /// mbind's NUMA policy (None: the default); kept by fork, as Linux's vm_policy.
    pub policy: Option<super::policy::MemPolicy>,
}

/// A contiguous range of the address space with one protection and one kind.
#[derive(Debug, Clone)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub prot: Prot,
    pub kind: VmaKind,
    pub file: Option<FileMapping>,
    pub flags: VmFlags,
}

impl Vma {
    /// File offset of `addr` in a file mapping.
    pub fn file_offset(&self, addr: u64) -> Option<u64> {
        self.file.as_ref().map(|f| f.offset + (addr - self.start))
    }
}
