//! Fuzzes the ImgFS reader: any bytes, opened as an image, then every entry point on every
//! inode, and every VFS operation on every file. The input is tried as it is and re-sealed
//! (checksums recomputed), so mutations reach the structural checks behind the header digest.
//! Seed it with real images, then run it on the stable toolchain through RUSTC_BOOTSTRAP
//! (cargo fuzz passes nightly-only flags):
//!
//! ```text
//! cd crates/fs/fuzz && mkdir -p corpus/imgfs_reader
//! runsc image build -q /etc/apt -o corpus/imgfs_reader/etc_apt.img
//! RUSTC_BOOTSTRAP=1 cargo fuzz run imgfs_reader -- -max_total_time=300 -max_len=200000
//! ```
#![no_main]

use fs::imgfs::{fuzzing, Image};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(img) = Image::from_bytes("fuzz.img", data.to_vec()) {
        fuzzing::exercise(&img);
    }
    fuzzing::exercise_vfs(data);
    let mut sealed = data.to_vec();
    fuzzing::reseal(&mut sealed);
    fuzzing::exercise_vfs(&sealed);
    if let Ok(img) = Image::from_bytes("fuzz.img", sealed) {
        fuzzing::exercise(&img);
    }
});
