//! Helpers shared by the ContainerFS tests.

/// Appends one member to a layer tarball: owner 0:0, a fixed mtime.
pub fn tar_member(
    b: &mut tar::Builder<Vec<u8>>,
    path: &str,
    kind: tar::EntryType,
    mode: u32,
    data: &[u8],
    link: &str,
) {
    let mut h = tar::Header::new_gnu();
    h.set_path(path).unwrap();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(1_650_000_000);
    h.set_size(data.len() as u64);
    if !link.is_empty() {
        h.set_link_name(link).unwrap();
    }
    h.set_cksum();
    b.append(&h, data).unwrap();
}

/// A deterministic xorshift generator, so a failure is reproducible.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    #[allow(dead_code)] // not every test file uses it
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
