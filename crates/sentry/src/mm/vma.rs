//! Virtual memory areas.

use platform::Prot;

/// What backs a VMA. Only anonymous memory exists until the VFS lands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VmaKind {
    /// Private or shared anonymous memory (the same thing while there is no fork).
    Anonymous,
    /// A segment of the program image (anonymous memory filled at load).
    Image,
    /// The brk heap.
    Heap,
    /// The main thread's stack.
    Stack,
}

/// A contiguous range of the address space with one protection and one kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vma {
    pub start: u64,
    pub end: u64,
    pub prot: Prot,
    pub kind: VmaKind,
}
