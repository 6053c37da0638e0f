//! Helpers shared by the ContainerFS tests.

pub use ::fs::imgfs::fuzzing::tar_member;

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
