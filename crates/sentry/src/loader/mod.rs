//! Program loading, as pure logic: validating an untrusted static ELF
//! executable ([`elf`]) and building the initial user stack ([`stack`]).
//!
//! Nothing here touches KVM or the memory manager. The caller reads the file
//! ([`read_program`]), parses it ([`parse`]), picks a load bias
//! ([`ElfImage::load_bias`]), maps the segments, then writes the bytes
//! produced by [`build_initial_stack`] below its chosen stack top.

pub mod elf;
pub mod stack;

pub use elf::{
    parse, parse_head, parse_with_limit, read_program, ElfImage, ElfKind, LoadError, Prot, Segment,
    ELF_ET_DYN_BASE, MAX_PROGRAM_SIZE, MIN_USER_ADDR, USER_ADDR_LIMIT,
};
pub use stack::{build_initial_stack, InitialStack, StackArgs, StackError};

/// Page size of the guest (x86-64 base pages).
pub const PAGE_SIZE: u64 = 4096;

/// Rounds `addr` down to a page boundary.
pub const fn page_down(addr: u64) -> u64 {
    addr & !(PAGE_SIZE - 1)
}

/// Rounds `addr` up to a page boundary; `None` on overflow.
pub const fn page_up(addr: u64) -> Option<u64> {
    match addr.checked_add(PAGE_SIZE - 1) {
        Some(a) => Some(page_down(a)),
        None => None,
    }
}
