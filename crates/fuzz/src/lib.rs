//! Fuzz targets for the parsers of untrusted input, each one plain `fn(&[u8])`:
//!
//! | target | what it feeds | what must hold |
//! |---|---|---|
//! | [`imgfs`] | an ImgFS image, as is and resealed (checksums recomputed) | open/verify/every reader call and every VFS call: Ok or an error naming the image |
//! | [`elf`] | a program file | `loader::parse` is Ok with a layout that fits the address limit, or an error; the load bias keeps the image below the limit |
//! | [`layer_tar`] | a layer tarball (plain, gzip or zstd) | `build_from_tar` is Ok and the image it wrote verifies and reads back, or an error |
//! | [`docker_archive`] | a `docker save` tarball | `DockerArchive::open` and reading its layers: Ok or an error naming the source |
//! | [`oci_layout`] | index.json, an image manifest, a nested image index or a config of an OCI layout (first byte chooses which; the harness rewrites the digests that point to it) | `OciLayout::open`: Ok or an error naming the source |
//! | [`resolve`] | symlink targets and a path, resolved with random flags, start and credentials in a small tmpfs tree with a second mount | Ok or one of the errnos path resolution may give; never outside the task's root, never outside the start with RESOLVE_BENEATH/IN_ROOT |
//!
//! A target panics only when a property is broken (or the code under test panics): that
//! is a finding. Two runners call them: cargo-fuzz (`fuzz/`, nightly, for long runs) and
//! [`runner::run`], the fixed-budget runner of this crate's tests (stable, in CI), which
//! mutates a seed corpus ([`seeds`], [`mutate`]) under a per-case time check and a
//! memory limit ([`alloc::LimitAlloc`]). See `docs/fuzzing.md`.

pub mod alloc;
pub mod mutate;
pub mod runner;
pub mod seeds;
mod targets;

pub use targets::{docker_archive, elf, imgfs, layer_tar, oci_layout, resolve, Outcome};

/// A fuzz target.
pub type Target = fn(&[u8]) -> Outcome;

/// Every target by name, as the runners and `docs/fuzzing.md` name them.
pub const TARGETS: &[(&str, Target)] = &[
    ("imgfs", imgfs),
    ("elf", elf),
    ("layer_tar", layer_tar),
    ("docker_archive", docker_archive),
    ("oci_layout", oci_layout),
    ("resolve", resolve),
];
