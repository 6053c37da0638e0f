//! KVM's binary statistics of a vCPU (`KVM_GET_STATS_FD`), for debugging and benchmarks:
//! how many exits, page faults and emulated instructions a run cost.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const KVM_GET_STATS_FD: libc::c_ulong = 0xAECE; // listed in host_ioctls for seccomp

/// Reads every statistic of the vCPU behind `fd` as (name, value); histograms are summed.
pub fn read_vcpu_stats(fd: &impl AsRawFd) -> std::io::Result<Vec<(String, u64)>> {
    // SAFETY: KVM_GET_STATS_FD takes no argument and returns a new descriptor.
    let sfd = unsafe { libc::ioctl(fd.as_raw_fd(), KVM_GET_STATS_FD, 0) };
    if sfd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor we own.
    let sfd = unsafe { OwnedFd::from_raw_fd(sfd) };
    let file = std::fs::File::from(sfd);
    let read_at = |off: u64, len: usize| -> std::io::Result<Vec<u8>> {
        let mut b = vec![0u8; len];
        std::os::unix::fs::FileExt::read_exact_at(&file, &mut b, off)?;
        Ok(b)
    };
    let h = read_at(0, 24)?;
    let u32_at = |b: &[u8], o: usize| u32::from_le_bytes(b[o..o + 4].try_into().expect("4"));
    let (name_size, num_desc) = (u32_at(&h, 4) as usize, u32_at(&h, 8) as usize);
    let (desc_off, data_off) = (u32_at(&h, 16) as u64, u32_at(&h, 20) as u64);
    let desc_size = 16 + name_size;
    let descs = read_at(desc_off, desc_size * num_desc)?;
    // (name, offset in the data block, values): the whole block is then read at once, one
    // pread instead of one per statistic (~40; the start-up self-test reads them twice).
    let stats: Vec<(String, usize, usize)> = descs
        .chunks_exact(desc_size)
        .map(|d| {
            let name = String::from_utf8_lossy(&d[16..])
                .trim_end_matches('\0')
                .to_string();
            let size = u16::from_le_bytes([d[6], d[7]]) as usize;
            (name, u32_at(d, 8) as usize, size)
        })
        .collect();
    let data_len = stats
        .iter()
        .map(|&(_, offset, size)| offset + size * 8)
        .max()
        .unwrap_or(0);
    let data = read_at(data_off, data_len)?;
    Ok(stats
        .into_iter()
        .map(|(name, offset, size)| {
            let sum = data[offset..offset + size * 8]
                .chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().expect("8")))
                .sum();
            (name, sum)
        })
        .collect())
}
