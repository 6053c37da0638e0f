//! File seals (`fcntl(F_ADD_SEALS)`, memfd_create(2)): the bits, and the rule a write must
//! pass. Memory files keep their seals ([`super::Inode::seals`]).

pub const F_SEAL_SEAL: u32 = 0x1;
pub const F_SEAL_SHRINK: u32 = 0x2;
pub const F_SEAL_GROW: u32 = 0x4;
pub const F_SEAL_WRITE: u32 = 0x8;
pub const F_SEAL_FUTURE_WRITE: u32 = 0x10;
pub const F_SEAL_EXEC: u32 = 0x20;
pub const F_ALL_SEALS: u32 =
    F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_FUTURE_WRITE | F_SEAL_EXEC;
/// Seals that forbid writing through write(2) and new shared writable mappings.
pub const WRITE_SEALS: u32 = F_SEAL_WRITE | F_SEAL_FUTURE_WRITE;

const PAGE: u64 = 4096;

/// How many of `len` bytes a write at `offset` may store in a file of `size` bytes with
/// `seals`: EPERM under a write seal; under F_SEAL_GROW, Linux's shmem writes page by page
/// and refuses the first page-sized chunk that would end past the size, so a write stops at
/// the last page boundary inside the file (EPERM when that leaves nothing).
pub fn writable_len(seals: u32, size: u64, offset: u64, len: usize) -> Result<usize, i32> {
    if len == 0 {
        return Ok(0);
    }
    if seals & WRITE_SEALS != 0 {
        return Err(libc::EPERM);
    }
    if seals & F_SEAL_GROW == 0 || offset.saturating_add(len as u64) <= size {
        return Ok(len);
    }
    let boundary = size / PAGE * PAGE;
    if boundary <= offset {
        return Err(libc::EPERM);
    }
    Ok((boundary - offset) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grow_seal_stops_at_a_page_boundary() {
        assert_eq!(writable_len(F_SEAL_GROW, 4900, 0, 8192), Ok(4096));
        assert_eq!(writable_len(F_SEAL_GROW, 4900, 4950, 100), Err(libc::EPERM));
        assert_eq!(writable_len(F_SEAL_GROW, 4900, 10, 3), Ok(3));
        assert_eq!(writable_len(F_SEAL_WRITE, 4900, 10, 0), Ok(0));
        assert_eq!(
            writable_len(F_SEAL_FUTURE_WRITE, 4900, 10, 1),
            Err(libc::EPERM)
        );
        assert_eq!(writable_len(F_SEAL_SHRINK, 0, 10, 1), Ok(1));
    }
}
