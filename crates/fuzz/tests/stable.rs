//! The stable, fixed-budget fuzz runs CI makes (`cargo test --release -p fuzz`): per
//! target, the seed corpus (valid inputs made by the project's own builders, and real
//! static programs for the ELF loader) and a few thousand deterministic mutants, each
//! under a time check and this binary's memory limit ([`fuzz::alloc::LimitAlloc`]).
//! Then every saved regression input (`corpus/regressions/TARGET/*`) — crashers found
//! once and fixed — must give Ok or a clean error.
//!
//! Knobs: `FUZZ_CASES=N` mutants per target, `FUZZ_SEED`, `FUZZ_SECONDS` (cap per
//! target). Longer runs: `docs/fuzzing.md` (cargo fuzz).

use std::path::{Path, PathBuf};

use fuzz::runner::{self, Budget};

#[global_allocator]
static ALLOC: fuzz::alloc::LimitAlloc = fuzz::alloc::LimitAlloc;

fn target(name: &str) -> fn(&[u8]) -> fuzz::Outcome {
    fuzz::TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .unwrap_or_else(|| panic!("no fuzz target {name:?}"))
        .1
}

fn seeds(name: &str) -> Vec<Vec<u8>> {
    fuzz::seeds::for_target(name)
}

fn go(name: &'static str, seeds: Vec<Vec<u8>>, cases: usize) {
    let r = runner::run(name, target(name), seeds, &Budget::from_env(cases));
    conformance::loud(&r.to_string());
    assert!(
        r.accepted > 0,
        "fuzz {name}: no input was accepted: the seeds are wrong"
    );
}

#[test]
fn fuzz_imgfs() {
    go("imgfs", seeds("imgfs"), 3000);
}

/// Real static programs (the conformance programs, built with musl and glibc) besides
/// the hand-made files.
#[test]
fn fuzz_elf() {
    let mut s = seeds("elf");
    for libc in [conformance::Libc::Musl, conformance::Libc::Glibc] {
        let prog = conformance::build("hello", libc);
        s.push(std::fs::read(&prog).expect("read a conformance program"));
    }
    go("elf", s, 4000);
}

#[test]
fn fuzz_layer_tar() {
    go("layer_tar", seeds("layer_tar"), 1500);
}

#[test]
fn fuzz_docker_archive() {
    go("docker_archive", seeds("docker_archive"), 1500);
}

#[test]
fn fuzz_oci_layout() {
    go("oci_layout", seeds("oci_layout"), 1500);
}

#[test]
fn fuzz_resolve() {
    go("resolve", seeds("resolve"), 4000);
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

/// Every input kept in `corpus/regressions/TARGET/` (crashers found and fixed) runs to
/// Ok or a clean error, under the runner's time check.
#[test]
fn regressions() {
    let dir = corpus().join("regressions");
    let mut n = 0;
    for (name, _) in fuzz::TARGETS {
        let Ok(entries) = std::fs::read_dir(dir.join(name)) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        let inputs: Vec<Vec<u8>> = paths
            .iter()
            .map(|p| std::fs::read(p).expect("read a regression input"))
            .collect();
        if inputs.is_empty() {
            continue;
        }
        n += inputs.len();
        let mut budget = Budget::from_env(0);
        budget.cases = 0;
        runner::run(name, target(name), inputs, &budget);
    }
    conformance::loud(&format!("fuzz regressions: {n} inputs"));
}

/// Replays one input: `FUZZ_TARGET=NAME FUZZ_INPUT=FILE cargo test --release -p fuzz
/// --test stable -- --ignored replay --nocapture`.
#[test]
#[ignore]
fn replay() {
    let name = std::env::var("FUZZ_TARGET").expect("set FUZZ_TARGET");
    let input = std::env::var("FUZZ_INPUT").expect("set FUZZ_INPUT");
    let bytes = std::fs::read(&input).expect("read FUZZ_INPUT");
    let outcome = target(&name)(&bytes);
    println!("{name} {input}: {outcome:?}");
    assert_eq!(
        fuzz::alloc::refused(),
        0,
        "an allocation over the memory limit was refused"
    );
}

/// Writes the seeds as cargo-fuzz corpus files: `cargo test --release -p fuzz --test
/// stable -- --ignored write_corpus` fills `crates/fuzz/fuzz/corpus/TARGET/`.
#[test]
#[ignore]
fn write_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    for (name, _) in fuzz::TARGETS {
        let mut inputs = fuzz::seeds::for_target(name);
        if *name == "elf" {
            let prog = conformance::build("hello", conformance::Libc::Musl);
            inputs.push(std::fs::read(prog).unwrap());
        }
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        for (i, input) in inputs.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), input).unwrap();
        }
        println!("{}: {} seeds", dir.display(), inputs.len());
    }
}

/// The layer tar crashers say what is wrong: a member the tar crate would hold whole in
/// memory over the limit, a sparse file whose holes would be written out.
#[test]
fn layer_tar_bombs_are_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    for (file, expect) in [
        (
            "pax_header_1gib_zstd.tar.zst",
            "PAX extended header member of 1073741824 bytes: over the limit",
        ),
        (
            "gnu_long_name_1gib_zstd.tar.zst",
            "GNU long name member of 1073741824 bytes: over the limit",
        ),
        (
            "gnu_sparse_1tib_of_holes.tar",
            "GNU sparse file of 1099511627776 bytes with 4096 bytes of data",
        ),
    ] {
        let bytes = std::fs::read(corpus().join("regressions/layer_tar").join(file)).unwrap();
        let e = fs::imgfs::build_from_tar(
            &bytes[..],
            file,
            &dir.path().join("out.img"),
            &fs::imgfs::BuildOptions::default(),
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with(file) && e.contains(expect), "{file}: {e}");
    }
}
