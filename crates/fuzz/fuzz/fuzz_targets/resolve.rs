//! cargo-fuzz harness of `fuzz::resolve` (crates/fuzz/src/targets.rs says what it feeds
//! and what must hold). Long runs: docs/fuzzing.md.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = fuzz::resolve(data);
});
