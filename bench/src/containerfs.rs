//! ContainerFS benchmarks (`bench --containerfs`), issue 9 item 6:
//!
//! 1. The original Container FS's three file benchmarks (`programs/layerbench.c`): open+close
//!    of 10 layers x 2000 files, 4000-byte reads of pre-opened files (10 x 1000), stat of
//!    10 x 2000, the files ~1.5 KB of random bytes (NULs included), each layer's files in
//!    one directory `/data` that every layer has. Run natively on the flattened tree (plain
//!    host file system), natively on Linux overlayfs with the same 10 layers (root only: a
//!    mount), in the sandbox on the flattened tree through the host root, and in the sandbox
//!    on ContainerFS (the 10 layers converted into a store, `runsc do --image`). Time per
//!    operation for each layer, and the ratio of the deepest layer to the top one.
//! 2. Cold start: `runsc do --image` of the Debian minbase image running /bin/true, start to
//!    exit (goal: under 50 ms), against native /bin/true and `runsc do -- /bin/true`.
//! 3. Conversion of the Debian image (`runsc image convert` of an OCI layout holding the
//!    debootstrap tarball as its layer): time and size against `runsc image build`,
//!    `mkfs.erofs` and `mksquashfs` (uncompressed, as in `bench --imgfs`) on the flattened
//!    tree.
//!
//! "Cold" here means a new process (and, for overlayfs, a new mount): the sandbox's caches
//! and overlayfs's dentries start empty; the host's page cache is warm. Figures are medians
//! and are never asserted. Missing tools, root or the Debian cache are reported as SKIPPED.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use image::testing::{self, Comp, Layer};

use crate::imgfs::{drop_caches, have, median, skipped, time_command};

const LAYERS: usize = 10;
const FILES: usize = 2000;
const MODES: [&str; 3] = ["open", "read", "stat"];

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

pub fn main(runsc: &Path, programs: &Path, target: &Path, quick: bool) -> anyhow::Result<()> {
    std::fs::create_dir_all(programs)?;
    let prog = crate::programs::build_one(programs, "layerbench")?;
    let work = std::env::temp_dir().join(format!("runsc-bench-cfs-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let result =
        layers(runsc, &prog, &work, quick).and_then(|()| debian(runsc, target, &work, quick));
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// xorshift64: the same files on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Per-layer figures of one layerbench run: (microseconds, bytes), deepest layer first.
type Figures = Vec<(f64, u64)>;

fn layerbench(cmd: Command) -> anyhow::Result<Figures> {
    let out = layerbench_lines(cmd)?;
    if out.len() != LAYERS {
        bail!("{} layers in the output, {LAYERS} expected", out.len());
    }
    Ok(out)
}

/// The "layer K US BYTES" lines of a layerbench run.
fn layerbench_lines(mut cmd: Command) -> anyhow::Result<Figures> {
    let o = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    let text = String::from_utf8_lossy(&o.stdout);
    if !o.status.success() {
        bail!(
            "{cmd:?} failed with {}: {text}{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let mut out = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        match f.as_slice() {
            ["layer", _, us, bytes] => out.push((us.parse()?, bytes.parse()?)),
            _ => bail!("{cmd:?}: unexpected line {line:?}"),
        }
    }
    Ok(out)
}

/// Layer by layer median of `runs` runs.
fn median_figures(
    runs: usize,
    mut make: impl FnMut() -> anyhow::Result<Figures>,
) -> anyhow::Result<Figures> {
    let all = (0..runs)
        .map(|_| make())
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok((0..LAYERS)
        .map(|k| {
            let mut v: Vec<f64> = all.iter().map(|f| f[k].0).collect();
            v.sort_by(|a, b| a.total_cmp(b));
            (v[v.len() / 2], all[0][k].1)
        })
        .collect())
}

/// Writes the layers (`work/layers/lK/data/fK_I`), the flattened tree (`work/flat`), and an
/// OCI layout of the layers (the program at /layerbench in the top layer), converted into
/// `work/store` as `layerbench`.
fn make_layers(runsc: &Path, prog: &Path, work: &Path) -> anyhow::Result<PathBuf> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let flat = work.join("flat/data");
    std::fs::create_dir_all(&flat)?;
    let program = std::fs::read(prog)?;
    let mut oci_layers: Vec<Layer> = Vec::new();
    for k in 0..LAYERS {
        let dir = work.join(format!("layers/l{k}/data"));
        std::fs::create_dir_all(&dir)?;
        let mut files: Vec<(String, Vec<u8>)> = Vec::with_capacity(FILES);
        for i in 0..FILES {
            let len = 1400 + (rng.next() % 200) as usize;
            let mut data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            data[len / 3] = 0; // a NUL early in every file, whatever the random bytes
            let name = format!("f{k}_{i}");
            std::fs::write(dir.join(&name), &data)?;
            std::fs::write(flat.join(&name), &data)?;
            files.push((format!("data/{name}"), data));
        }
        let mut members: Vec<testing::Member<'_>> = vec![("data", None, 0o755)];
        members.extend(
            files
                .iter()
                .map(|(p, d)| (p.as_str(), Some(d.as_slice()), 0o644)),
        );
        if k == LAYERS - 1 {
            members.push(("layerbench", Some(&program), 0o755));
        }
        oci_layers.push(testing::layer(&members, Comp::Plain));
    }
    let oci = work.join("oci");
    testing::oci_layout(&oci, "layerbench", &oci_layers, serde_json::json!({}));
    let store = work.join("store");
    let mut src = std::ffi::OsString::from("oci:");
    src.push(&oci);
    src.push(":layerbench");
    let o = Command::new(runsc)
        .args(["image", "convert", "--quiet", "--name", "layerbench", "-o"])
        .arg(&store)
        .arg(&src)
        .output()?;
    if !o.status.success() {
        bail!(
            "runsc image convert: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok(store)
}

/// Mounts overlayfs of the layers at `mnt` (top layer first in lowerdir), runs `make()`,
/// unmounts.
fn on_overlay<T>(
    work: &Path,
    mnt: &Path,
    run: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let lower: Vec<String> = (0..LAYERS)
        .rev()
        .map(|k| work.join(format!("layers/l{k}")).display().to_string())
        .collect();
    std::fs::create_dir_all(mnt)?;
    let st = Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o"])
        .arg(format!("ro,lowerdir={}", lower.join(":")))
        .arg(mnt)
        .status()?;
    if !st.success() {
        bail!("mount -t overlay failed ({st})");
    }
    let r = run();
    let st = Command::new("umount").arg(mnt).status()?;
    if !st.success() {
        bail!("umount {} failed ({st}): unmount it by hand", mnt.display());
    }
    r
}

fn layers(runsc: &Path, prog: &Path, work: &Path, quick: bool) -> anyhow::Result<()> {
    let runs = if quick { 3 } else { 5 };
    println!("ContainerFS file benchmarks: {LAYERS} layers x {FILES} files of ~1.5 KB in /data (median of {runs} cold runs)");
    let t = Instant::now();
    let store = make_layers(runsc, prog, work)?;
    println!(
        "  (layers written and converted in {:.1} s)",
        t.elapsed().as_secs_f64()
    );
    println!(
        "  NOTE: the sandbox-on-host-root column runs one sandbox per layer: hostfs keeps a host \
         descriptor per file opened, and 20000 files exhaust a 20000-descriptor limit (EMFILE)"
    );
    let flat = work.join("flat");
    let mnt = work.join("mnt");
    let overlay = is_root();
    if !overlay {
        println!("*** SKIPPED: not root: no native overlayfs column (mounting needs root) ***");
    }
    let (l, f) = (LAYERS.to_string(), FILES.to_string());
    for mode in MODES {
        let native = median_figures(runs, || {
            let mut c = Command::new(prog);
            c.args([mode]).arg(&flat).args([&l, &f]);
            layerbench(c)
        })?;
        let ovl = if overlay {
            Some(median_figures(runs, || {
                on_overlay(work, &mnt, || {
                    let mut c = Command::new(prog);
                    c.args([mode]).arg(&mnt).args([&l, &f]);
                    layerbench(c)
                })
            })?)
        } else {
            None
        };
        // One sandbox per layer: the sandbox's host file system keeps a host descriptor
        // for every file opened (found here: 20000 opens and closes of distinct files end
        // in EMFILE under a 20000 descriptor limit), so one process can't open all 20000.
        let host = median_figures(runs, || {
            let mut all = Vec::new();
            for k in 0..LAYERS {
                let mut c = Command::new(runsc);
                c.args(["do", "--"])
                    .arg(prog)
                    .args([mode])
                    .arg(&flat)
                    .args([&l, &f, &k.to_string()]);
                all.extend(layerbench_lines(c)?);
            }
            Ok(all)
        })?;
        let cfs = median_figures(runs, || {
            let mut c = Command::new(runsc);
            c.args(["do", "--image", "layerbench", "--store"])
                .arg(&store)
                .args(["--", "/layerbench", mode, "/", &l, &f]);
            layerbench(c)
        })?;
        let ops = if mode == "read" {
            FILES.min(1000)
        } else {
            FILES
        } as f64;
        let what = match mode {
            "open" => "open+close",
            "read" => "read(4000) of a pre-opened file",
            _ => "stat",
        };
        println!("{what}, us per operation (sandbox hostfs: one sandbox per layer, see above):");
        println!(
            "  {:<12} {:>12} {:>12} {:>16} {:>14}",
            "layer", "native flat", "overlayfs", "sandbox hostfs", "sandbox cfs"
        );
        let mut cols: Vec<(&str, &Figures)> = vec![("native flat", &native)];
        if let Some(o) = &ovl {
            cols.push(("overlayfs", o));
        }
        cols.push(("sandbox hostfs", &host));
        cols.push(("sandbox cfs", &cfs));
        for (name, c) in &cols[1..] {
            for k in 0..LAYERS {
                if c[k].1 != native[k].1 {
                    println!(
                        "*** WARNING: {name}: layer {k}: {} bytes, native {}: the trees differ ***",
                        c[k].1, native[k].1
                    );
                }
            }
        }
        let cell = |c: Option<&Figures>, k: usize| match c {
            Some(c) => format!("{:.2}", c[k].0 / ops),
            None => "skipped".into(),
        };
        for k in (0..LAYERS).rev() {
            let label = match k {
                0 => "0 (deepest)".to_string(),
                k if k == LAYERS - 1 => format!("{k} (top)"),
                k => k.to_string(),
            };
            println!(
                "  {label:<12} {:>12} {:>12} {:>16} {:>14}",
                cell(Some(&native), k),
                cell(ovl.as_ref(), k),
                cell(Some(&host), k),
                cell(Some(&cfs), k)
            );
        }
        let ratio = |c: Option<&Figures>| match c {
            Some(c) => format!("x{:.2}", c[0].0 / c[LAYERS - 1].0),
            None => "skipped".into(),
        };
        println!(
            "  {:<12} {:>12} {:>12} {:>16} {:>14}",
            "deepest/top",
            ratio(Some(&native)),
            ratio(ovl.as_ref()),
            ratio(Some(&host)),
            ratio(Some(&cfs))
        );
        let total = |c: &Figures| c.iter().map(|x| x.0).sum::<f64>();
        let vs = |c: Option<&Figures>| match c {
            Some(c) => format!("x{:.2}", total(c) / total(&native)),
            None => "skipped".into(),
        };
        println!(
            "  {:<12} {:>12} {:>12} {:>16} {:>14}",
            "vs native",
            vs(Some(&native)),
            vs(ovl.as_ref()),
            vs(Some(&host)),
            vs(Some(&cfs))
        );
        if let Some(o) = &ovl {
            println!(
                "  sandbox cfs vs native overlayfs: x{:.2}",
                total(&cfs) / total(o)
            );
        }
    }
    Ok(())
}

fn gunzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out)?;
    Ok(out)
}

fn dir_size(dir: &Path, ext: &str) -> anyhow::Result<u64> {
    let mut n = 0;
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == ext) {
            n += p.metadata()?.len();
        }
    }
    Ok(n)
}

fn time_run(cmd: &mut Command) -> anyhow::Result<Duration> {
    cmd.stdin(Stdio::null()).stdout(Stdio::null());
    let t = Instant::now();
    let st = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    let d = t.elapsed();
    if !st.success() {
        bail!("{cmd:?} failed with {st}");
    }
    Ok(d)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Cold start and conversion of the Debian image.
fn debian(runsc: &Path, target: &Path, work: &Path, quick: bool) -> anyhow::Result<()> {
    let tarball = target.join("debian/bookworm-minbase.tar.gz");
    if !tarball.is_file() {
        skipped(&format!(
            "{} is missing (scripts/debian-cache.sh makes it, as root, from Debian's mirror): \
             no cold start or conversion figures",
            tarball.display()
        ));
        return Ok(());
    }
    let blob = std::fs::read(&tarball)?;
    let layer = Layer {
        tar: gunzip(&blob)?,
        blob,
        media_type: "application/vnd.oci.image.layer.v1.tar+gzip".into(),
    };
    let oci = work.join("debian-oci");
    testing::oci_layout(
        &oci,
        "debian",
        &[layer],
        serde_json::json!({"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]}),
    );
    let mut src = std::ffi::OsString::from("oci:");
    src.push(&oci);
    src.push(":debian");

    // Conversion: a new store each time, from a cold page cache (root only).
    let store = work.join("debian-store");
    let runs = 3;
    let mut times = Vec::new();
    for _ in 0..runs {
        let _ = std::fs::remove_dir_all(&store);
        drop_caches();
        let t = Instant::now();
        let o = Command::new(runsc)
            .args(["image", "convert", "--quiet", "--name", "debian", "-o"])
            .arg(&store)
            .arg(&src)
            .output()?;
        times.push(t.elapsed());
        if !o.status.success() {
            bail!(
                "runsc image convert: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
    let convert = median(times);
    let convert_size = dir_size(&store.join("layers"), "img")?;
    let index_size = dir_size(&store.join("indexes"), "idx")?;
    // Again into the same store: nothing is written, the stored layer is re-hashed.
    let mut times = Vec::new();
    for _ in 0..runs {
        drop_caches();
        let t = Instant::now();
        let o = Command::new(runsc)
            .args(["image", "convert", "--quiet", "--name", "debian", "-o"])
            .arg(&store)
            .arg(&src)
            .output()?;
        times.push(t.elapsed());
        if !o.status.success() {
            bail!(
                "runsc image convert: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
    }
    let reconvert = median(times);

    // Cold start.
    let starts = if quick { 7 } else { 21 };
    let med = |mut make: Box<dyn FnMut() -> Command>| -> anyhow::Result<Duration> {
        let v = (0..starts)
            .map(|_| time_run(&mut make()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(median(v))
    };
    let native = med(Box::new(|| Command::new("/bin/true")))?;
    let host = med(Box::new(move || {
        let mut c = Command::new(runsc);
        c.args(["do", "--", "/bin/true"]);
        c
    }))?;
    let store2 = store.clone();
    let image = med(Box::new(move || {
        let mut c = Command::new(runsc);
        c.args(["do", "--image", "debian", "--store"])
            .arg(&store2)
            .args(["--", "/bin/true"]);
        c
    }))?;
    println!("cold start, /bin/true, start to exit (median of {starts}):");
    println!("  native                          {:>8.2} ms", ms(native));
    println!(
        "  runsc do -- /bin/true (host)    {:>8.2} ms  x{:.1}",
        ms(host),
        ms(host) / ms(native)
    );
    println!(
        "  runsc do --image debian         {:>8.2} ms  x{:.1}  (goal < 50 ms: {})",
        ms(image),
        ms(image) / ms(native),
        if ms(image) < 50.0 { "met" } else { "NOT MET" }
    );

    // The flattened tree, for the other builders.
    println!("conversion of Debian bookworm minbase (median of {runs}, cold page cache):");
    println!(
        "  {:<34} {:>9.3} s  {:>12} bytes (+ index {} bytes)",
        "runsc image convert (gzip OCI)",
        convert.as_secs_f64(),
        convert_size,
        index_size
    );
    println!(
        "  {:<34} {:>9.3} s  (the stored layer re-hashed, nothing written)",
        "again, into the same store",
        reconvert.as_secs_f64()
    );
    if !is_root() {
        skipped("not root: can't unpack the Debian tree (device nodes, owners): no mkfs.erofs or mksquashfs comparison");
        return Ok(());
    }
    let flat = work.join("debian-flat");
    std::fs::create_dir_all(&flat)?;
    let st = Command::new("tar")
        .args(["--numeric-owner", "--xattrs", "--xattrs-include=*", "-xzf"])
        .arg(&tarball)
        .arg("-C")
        .arg(&flat)
        .status()?;
    if !st.success() {
        bail!("tar -x of {} failed", tarball.display());
    }
    let mut rows: Vec<(&str, Duration, u64)> = Vec::new();
    let img = work.join("debian.img");
    let t = time_command(
        || {
            let mut c = Command::new(runsc);
            c.args(["image", "build"]).arg(&flat).arg("-o").arg(&img);
            c
        },
        &img,
    )?;
    rows.push(("runsc image build (flat tree)", t, img.metadata()?.len()));
    let erofs = work.join("debian.erofs");
    if have("mkfs.erofs") {
        let t = time_command(
            || {
                let mut c = Command::new("mkfs.erofs");
                c.args(["-E", "noinline_data"]).arg(&erofs).arg(&flat);
                c
            },
            &erofs,
        )?;
        rows.push(("mkfs.erofs -E noinline_data", t, erofs.metadata()?.len()));
    } else {
        skipped("mkfs.erofs not found (apt-get install erofs-utils): no EROFS comparison");
    }
    let squash = work.join("debian.squashfs");
    if have("mksquashfs") {
        let t = time_command(
            || {
                let mut c = Command::new("mksquashfs");
                c.arg(&flat).arg(&squash).args([
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
        )?;
        rows.push(("mksquashfs (uncompressed)", t, squash.metadata()?.len()));
    } else {
        skipped("mksquashfs not found (apt-get install squashfs-tools): no SquashFS comparison");
    }
    for (name, t, size) in rows {
        println!(
            "  {name:<34} {:>9.3} s  {size:>12} bytes   convert x{:.2} time, x{:.3} size",
            t.as_secs_f64(),
            convert.as_secs_f64() / t.as_secs_f64(),
            convert_size as f64 / size as f64
        );
    }
    Ok(())
}
