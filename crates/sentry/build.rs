//! Builds the vDSO (`vdso/vdso.c`, laid out by `vdso/vdso.lds`) into `$OUT_DIR/vdso.so`, which
//! `src/vdso.rs` embeds. It is C rather than Rust because it is a freestanding shared object
//! that runs inside application processes: a dozen lines of C and a linker script, the way
//! Linux and gVisor build theirs, against a no_std Rust cdylib target we'd have to maintain.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let src = dir.join("vdso/vdso.c");
    let script = dir.join("vdso/vdso.lds");
    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-env-changed=CC");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo")).join("vdso.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "gcc".into());
    let status = Command::new(&cc)
        .args([
            "-O2",
            "-fPIC",
            "-shared",
            "-nostdlib",
            "-fno-stack-protector",
            "-fno-builtin",
            "-mno-red-zone",
            "-Wall",
            "-Werror",
        ])
        .arg(format!("-Wl,-T,{}", script.display()))
        .args([
            "-Wl,-soname=linux-vdso.so.1",
            "-Wl,--hash-style=both",
            "-Wl,--no-undefined",
            "-Wl,--build-id=none",
            "-Wl,-z,max-page-size=4096",
            "-Wl,-z,noexecstack",
            "-o",
        ])
        .arg(&out)
        .arg(&src)
        .status()
        .unwrap_or_else(|e| {
            panic!("cannot run {cc} to build the vDSO ({e}): install gcc (`.ci/run` does)")
        });
    assert!(status.success(), "building the vDSO with {cc} failed");
}
