//! ImgFS benchmark (`bench --imgfs`):
//! - build time and image size of `runsc image build` against `mkfs.erofs -E noinline_data`
//!   and uncompressed `mksquashfs` (Debian's erofs-utils and squashfs-tools) on the same tree,
//!   in one run;
//! - host-side reader costs (stat of every file, reads of 500 random files) against the same
//!   tree read natively;
//! - the same two in the sandbox, by a static C program (`programs/fsbench.c`): through an
//!   ImgFS mount (`--mount-image`), through the host root (overlay over hostfs), and natively.
//!
//! The tree is a Debian minbase root cached at [`MINBASE`], made with `debootstrap
//! --variant=minbase bookworm` (Debian's default mirror) when missing; without debootstrap
//! or a reachable mirror the benchmark falls back to [`FALLBACK_TREE`] and says so. A missing
//! tool is reported as SKIPPED, loudly. Timings are medians of `RUNS` runs and are printed
//! with ratios; they are never asserted.

use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use fs::imgfs::{self, BuildOptions, FileType, Image, Ino, NoProgress};

const RUNS: usize = 3;

/// Where the Debian minbase tree is cached.
pub const MINBASE: &str = "/var/cache/runsc-bench/minbase";
/// The tree used when no minbase tree can be had.
pub const FALLBACK_TREE: &str = "/usr/share/doc";
/// Where the ImgFS image is mounted in the sandbox.
const MOUNT: &str = "/mnt/runsc-bench-imgfs";

pub(crate) fn skipped(what: &str) {
    println!("*** SKIPPED: {what} ***");
}

/// Whether `tool` is on `$PATH` (or in /sbin, /usr/sbin, where Debian puts debootstrap).
pub(crate) fn have(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .any(|d| d.join(tool).is_file())
}

/// The tree to measure: the cached minbase root, made now if needed; else the fallback.
fn tree() -> PathBuf {
    let cache = Path::new(MINBASE);
    if cache.join("etc").is_dir() {
        return cache.to_path_buf();
    }
    let fallback = || {
        println!(
            "*** NOTE: no Debian minbase tree: measuring {FALLBACK_TREE} instead (figures are \
             not comparable with a minbase run) ***"
        );
        PathBuf::from(FALLBACK_TREE)
    };
    if !have("debootstrap") {
        skipped("debootstrap not found (apt-get install debootstrap): no minbase tree");
        return fallback();
    }
    println!("making the minbase tree at {MINBASE} with debootstrap (once; cached)...");
    let tmp = cache.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    let _ = std::fs::create_dir_all(cache.parent().unwrap_or(Path::new("/")));
    let log = cache.with_file_name("debootstrap.log");
    let ok = std::fs::File::create(&log)
        .ok()
        .and_then(|f| {
            let err = f.try_clone().ok()?;
            Command::new("debootstrap")
                .args(["--variant=minbase", "bookworm"])
                .arg(&tmp)
                .stdout(f)
                .stderr(err)
                .status()
                .ok()
        })
        .is_some_and(|s| s.success());
    if ok && std::fs::rename(&tmp, cache).is_ok() {
        return cache.to_path_buf();
    }
    let _ = std::fs::remove_dir_all(&tmp);
    skipped(&format!(
        "debootstrap failed (no reachable Debian mirror?), see {}",
        log.display()
    ));
    fallback()
}

/// `bench --imgfs`: everything in this module.
pub fn main(runsc: &Path, programs: &Path) -> anyhow::Result<()> {
    let tree = tree();
    let work = std::env::temp_dir().join(format!("runsc-bench-imgfs-{}", std::process::id()));
    let result = run(&tree, &work).and_then(|img| {
        std::fs::create_dir_all(programs)?;
        let fsbench = crate::programs::build_one(programs, "fsbench")?;
        in_sandbox(runsc, &fsbench, &tree, &img)
    });
    let _ = std::fs::remove_dir_all(&work);
    result
}

pub(crate) fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

pub(crate) fn drop_caches() {
    // Best effort (root only): compare builds from a cold page cache, like a first build.
    let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
}

/// Runs `cmd` `RUNS` times; returns the median wall time.
pub(crate) fn time_command(
    mut make: impl FnMut() -> Command,
    out: &Path,
) -> anyhow::Result<Duration> {
    let mut times = Vec::new();
    for _ in 0..RUNS {
        let _ = std::fs::remove_file(out);
        let mut c = make();
        drop_caches();
        let t = Instant::now();
        let o = c.output().with_context(|| format!("running {c:?}"))?;
        times.push(t.elapsed());
        if !o.status.success() {
            bail!("{c:?} failed: {}", String::from_utf8_lossy(&o.stderr));
        }
    }
    Ok(median(times))
}

struct Row {
    name: &'static str,
    time: Duration,
    size: u64,
}

/// Prints build time and size of ImgFS, EROFS and SquashFS images of `tree`, written in
/// `work`, and the reader costs; returns the ImgFS image.
pub fn run(tree: &Path, work: &Path) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(work)?;
    let mut rows = Vec::new();

    let img = work.join("tree.imgfs");
    let mut times = Vec::new();
    for _ in 0..RUNS {
        drop_caches();
        let t = Instant::now();
        imgfs::build_from_dir(tree, &img, &BuildOptions::default(), &NoProgress)?;
        times.push(t.elapsed());
    }
    rows.push(Row {
        name: "imgfs",
        time: median(times),
        size: std::fs::metadata(&img)?.len(),
    });

    let erofs = work.join("tree.erofs");
    if !have("mkfs.erofs") {
        skipped("mkfs.erofs not found (apt-get install erofs-utils): no EROFS comparison");
    } else {
        match time_command(
            || {
                let mut c = Command::new("mkfs.erofs");
                c.arg("-E").arg("noinline_data").arg(&erofs).arg(tree);
                c
            },
            &erofs,
        ) {
            Ok(time) => rows.push(Row {
                name: "erofs (noinline_data)",
                time,
                size: std::fs::metadata(&erofs)?.len(),
            }),
            Err(e) => skipped(&format!("mkfs.erofs failed: {e:#}")),
        }
    }
    let squash = work.join("tree.squashfs");
    if !have("mksquashfs") {
        skipped("mksquashfs not found (apt-get install squashfs-tools): no SquashFS comparison");
    } else {
        match time_command(
            || {
                let mut c = Command::new("mksquashfs");
                c.arg(tree).arg(&squash).args([
                    "-noI",
                    "-noD",
                    "-noF",
                    "-noX",
                    "-no-progress",
                    "-quiet",
                ]);
                c
            },
            &squash,
        ) {
            Ok(time) => rows.push(Row {
                name: "squashfs (uncompressed)",
                time,
                size: std::fs::metadata(&squash)?.len(),
            }),
            Err(e) => skipped(&format!("mksquashfs failed: {e:#}")),
        }
    }

    println!(
        "build of {} (median of {RUNS}, cold cache):",
        tree.display()
    );
    let base = &rows[0];
    for r in &rows {
        println!(
            "  {:<24} {:>9.3} s  x{:<5.2}  {:>12} bytes  x{:.3}",
            r.name,
            r.time.as_secs_f64(),
            r.time.as_secs_f64() / base.time.as_secs_f64(),
            r.size,
            r.size as f64 / base.size as f64
        );
    }

    reader(tree, &img)?;
    let _ = std::fs::remove_file(&erofs);
    let _ = std::fs::remove_file(&squash);
    Ok(img)
}

/// Stat of every file and reads of 500 random files: the reader against native.
fn reader(tree: &Path, img_path: &Path) -> anyhow::Result<()> {
    let img = Image::open(img_path)?;
    // Native: every path, lstat.
    let mut paths: Vec<PathBuf> = Vec::new();
    let mut stack = vec![tree.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = std::fs::symlink_metadata(&p)?;
        if md.is_dir() {
            for e in std::fs::read_dir(&p)? {
                stack.push(e?.path());
            }
        }
        paths.push(p);
    }
    let mut native_stat = Duration::ZERO;
    for _ in 0..2 {
        let t = Instant::now();
        for p in &paths {
            std::hint::black_box(std::fs::symlink_metadata(p)?);
        }
        native_stat = t.elapsed();
    }

    // Reader: the same paths resolved from the root by lookups, then attrs.
    let rel: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| {
            p.strip_prefix(tree)
                .unwrap_or(p)
                .as_os_str()
                .as_bytes()
                .to_vec()
        })
        .collect();
    let mut imgfs_stat = Duration::ZERO;
    for _ in 0..2 {
        let t = Instant::now();
        for r in &rel {
            let ino = img.lookup_path(r)?.context("missing in the image")?;
            std::hint::black_box(img.attrs(ino)?);
        }
        imgfs_stat = t.elapsed();
    }

    // 500 random regular files (fixed seed), read whole.
    let mut files: Vec<(PathBuf, Ino)> = Vec::new();
    for (p, r) in paths.iter().zip(&rel) {
        if let Some(ino) = img.lookup_path(r)? {
            if img.attrs(ino)?.file_type == FileType::Regular {
                files.push((p.clone(), ino));
            }
        }
    }
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let picks: Vec<usize> = (0..500)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % files.len().max(1) as u64) as usize
        })
        .collect();
    let mut buf = vec![0u8; 1 << 16];
    // Twice each, timing the second pass: both sides read from a warm page cache.
    let mut native_read = Duration::ZERO;
    let mut imgfs_read = Duration::ZERO;
    for _ in 0..2 {
        let t = Instant::now();
        for &i in &picks {
            let data = std::fs::read(&files[i].0)?;
            std::hint::black_box(data);
        }
        native_read = t.elapsed();
        let t = Instant::now();
        for &i in &picks {
            let ino = files[i].1;
            let mut off = 0u64;
            loop {
                let n = img.read(ino, off, &mut buf)?;
                if n == 0 {
                    break;
                }
                off += n as u64;
            }
        }
        imgfs_read = t.elapsed();
    }
    println!(
        "reader on the host ({} paths, warm cache, second of two passes):",
        paths.len()
    );
    println!(
        "  stat every file: native {:.1} ms, imgfs {:.1} ms (x{:.2})",
        native_stat.as_secs_f64() * 1e3,
        imgfs_stat.as_secs_f64() * 1e3,
        imgfs_stat.as_secs_f64() / native_stat.as_secs_f64()
    );
    println!(
        "  read 500 random files: native {:.1} ms, imgfs {:.1} ms (x{:.2})",
        native_read.as_secs_f64() * 1e3,
        imgfs_read.as_secs_f64() * 1e3,
        imgfs_read.as_secs_f64() / native_read.as_secs_f64()
    );
    Ok(())
}

/// fsbench's figures.
#[derive(Debug, Clone, Copy, PartialEq)]
struct FsFigures {
    files: u64,
    read_bytes: u64,
    stat_us: f64,
    read_us: f64,
    map_us: f64,
}

fn fsbench(mut cmd: Command) -> anyhow::Result<FsFigures> {
    let o = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !o.status.success() {
        bail!(
            "{cmd:?} failed with {}: {}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let text = String::from_utf8_lossy(&o.stdout);
    let field = |name: &str| -> anyhow::Result<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .with_context(|| format!("{cmd:?}: no {name} in {text:?}"))
    };
    Ok(FsFigures {
        files: field("files ")? as u64,
        read_bytes: field("read_bytes ")? as u64,
        stat_us: field("stat_total_us ")?,
        read_us: field("read_total_us ")?,
        map_us: field("map_total_us ")?,
    })
}

/// Median of `RUNS` runs, field by field.
fn median_figures(mut make: impl FnMut() -> Command) -> anyhow::Result<FsFigures> {
    let runs = (0..RUNS)
        .map(|_| fsbench(make()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let med = |f: fn(&FsFigures) -> f64| {
        let mut v: Vec<f64> = runs.iter().map(f).collect();
        v.sort_by(|a, b| a.total_cmp(b));
        v[v.len() / 2]
    };
    Ok(FsFigures {
        files: runs[0].files,
        read_bytes: runs[0].read_bytes,
        stat_us: med(|f| f.stat_us),
        read_us: med(|f| f.read_us),
        map_us: med(|f| f.map_us),
    })
}

/// Stat of every file and reads of 500 random files inside the sandbox: through the ImgFS
/// mount and through the host root, against native.
fn in_sandbox(runsc: &Path, fsbench_prog: &Path, tree: &Path, img: &Path) -> anyhow::Result<()> {
    let native = median_figures(|| {
        let mut c = Command::new(fsbench_prog);
        c.arg(tree);
        c
    })?;
    let hostfs = median_figures(|| {
        let mut c = Command::new(runsc);
        c.args(["do", "--"]).arg(fsbench_prog).arg(tree);
        c
    })?;
    let imgfs = median_figures(|| {
        let mut spec = img.as_os_str().to_os_string();
        spec.push(":");
        spec.push(MOUNT);
        let mut c = Command::new(runsc);
        c.args(["do", "--mount-image"])
            .arg(spec)
            .arg("--")
            .arg(fsbench_prog)
            .arg(MOUNT);
        c
    })?;
    for (name, f) in [("host root", &hostfs), ("imgfs", &imgfs)] {
        if (f.files, f.read_bytes) != (native.files, native.read_bytes) {
            println!(
                "*** WARNING: {name} shows {} files and read {} bytes, native {} and {}: \
                 the trees differ ***",
                f.files, f.read_bytes, native.files, native.read_bytes
            );
        }
    }
    println!(
        "in the sandbox (fsbench, {} files, second of two passes, median of {RUNS} runs):",
        native.files
    );
    let line = |what: &str, n: f64, h: f64, i: f64| {
        println!(
            "  {what:<34} native {:>8.1} ms | host root {:>8.1} ms x{:<6.1} | imgfs {:>8.1} ms \
             x{:<6.1} | imgfs/host root x{:.2}",
            n / 1e3,
            h / 1e3,
            h / n,
            i / 1e3,
            i / n,
            i / h
        );
    };
    line(
        "stat every file",
        native.stat_us,
        hostfs.stat_us,
        imgfs.stat_us,
    );
    line(
        &format!("read 500 random files ({} KiB)", native.read_bytes / 1024),
        native.read_us,
        hostfs.read_us,
        imgfs.read_us,
    );
    line(
        "mmap the 500 files, touch each page",
        native.map_us,
        hostfs.map_us,
        imgfs.map_us,
    );
    Ok(())
}
