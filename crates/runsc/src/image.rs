//! `runsc image`: build, inspect and verify ImgFS images (`docs/imgfs-format.md`).

use std::cell::RefCell;
use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use fs::imgfs::{self, Image, Progress};

/// Arguments of `runsc image`.
#[derive(clap::Args, Debug)]
pub struct ImageArgs {
    #[command(subcommand)]
    command: ImageCommand,
}

#[derive(clap::Subcommand, Debug)]
enum ImageCommand {
    /// Build an image from a directory (DIR) or from a layer tarball (--tar). The output is
    /// byte-identical for the same input; identical file contents are stored once.
    Build {
        /// The directory to build from (symlinks inside it are never followed).
        #[arg(
            required_unless_present = "tar",
            conflicts_with = "tar",
            value_name = "DIR"
        )]
        dir: Option<PathBuf>,
        /// A layer tarball (plain, gzip or zstd; `-` for standard input), streamed without
        /// unpacking. OCI whiteouts and opaque markers become metadata.
        #[arg(long, value_name = "LAYER.tar[.gz|.zst]")]
        tar: Option<PathBuf>,
        /// The image file to write.
        #[arg(short, long, value_name = "IMG")]
        output: PathBuf,
        /// Keep each inode's host atime and ctime. By default both are stored as the mtime
        /// (as mkfs.erofs and mksquashfs do), so copies of one tree build to the same bytes: a
        /// host tree's ctimes cannot be set and reading a symlink moves its atime.
        #[arg(long)]
        keep_ctime: bool,
        /// No progress bar and no summary.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Convert a container image into the store: each layer becomes an ImgFS image, kept
    /// under its blob's digest (layers already there are reused), with the image's config
    /// and the merged index of its layers.
    Convert {
        /// `oci:DIR[:TAG]` (an OCI image layout) or `docker-archive:FILE[:NAME]` (a
        /// `docker save` archive), as skopeo names them.
        #[arg(value_name = "SOURCE")]
        source: String,
        /// The store (default: $XDG_DATA_HOME/runsc/images, /var/lib/runsc/images for root).
        #[arg(
            short = 'o',
            long = "store",
            visible_alias = "output",
            value_name = "STORE"
        )]
        store: Option<PathBuf>,
        /// Also name the image NAME (repeatable).
        #[arg(long = "name", value_name = "NAME")]
        names: Vec<String>,
        /// No progress bars and no summary.
        #[arg(short, long)]
        quiet: bool,
    },
    /// List the images of a store: name, ID, layers, size.
    List {
        #[arg(long, value_name = "STORE")]
        store: Option<PathBuf>,
    },
    /// Remove an image (by name, ID or ID prefix) and the layers no other image uses.
    Rm {
        #[arg(value_name = "NAME|DIGEST", required = true)]
        images: Vec<String>,
        #[arg(long, value_name = "STORE")]
        store: Option<PathBuf>,
    },
    /// Print an image's header and its tree, like `ls -lR`.
    Inspect {
        #[arg(value_name = "IMG")]
        image: PathBuf,
    },
    /// Check every checksum and every rule of the format; print OK or the first fault.
    Verify {
        #[arg(value_name = "IMG")]
        image: PathBuf,
        /// No progress bar.
        #[arg(short, long)]
        quiet: bool,
    },
}

/// A progress bar on standard error, shown only on a terminal.
struct Bar {
    enabled: bool,
    bar: RefCell<Option<indicatif::ProgressBar>>,
}

impl Bar {
    fn new(quiet: bool) -> Bar {
        Bar {
            enabled: !quiet && std::io::stderr().is_terminal(),
            bar: RefCell::new(None),
        }
    }
}

impl Progress for Bar {
    fn start(&self, what: &str, total: u64, bytes: bool) {
        if !self.enabled {
            return;
        }
        let template = match (total, bytes) {
            (0, true) => "{spinner} {msg}: {bytes} ({binary_bytes_per_sec})",
            (0, false) => "{spinner} {msg}: {pos}",
            (_, true) => {
                "{msg:>13} [{bar:40}] {bytes}/{total_bytes} ({binary_bytes_per_sec}, {eta})"
            }
            (_, false) => "{msg:>13} [{bar:40}] {pos}/{len}",
        };
        let bar = if total == 0 {
            indicatif::ProgressBar::new_spinner()
        } else {
            indicatif::ProgressBar::new(total)
        };
        if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_string());
        if let Some(old) = self.bar.replace(Some(bar)) {
            old.finish_and_clear();
        }
    }

    fn advance(&self, n: u64) {
        if let Some(b) = &*self.bar.borrow() {
            b.inc(n);
        }
    }

    fn finish(&self) {
        if let Some(b) = self.bar.take() {
            b.finish_and_clear();
        }
    }
}

/// One progress bar per layer on a terminal (each left on screen with its outcome); nothing
/// otherwise.
struct LayerBars {
    enabled: bool,
    bar: RefCell<Option<indicatif::ProgressBar>>,
}

impl image::ConvertProgress for LayerBars {
    fn layer_start(&self, what: &str, total: u64) {
        if !self.enabled {
            return;
        }
        let bar = indicatif::ProgressBar::new(total);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{msg:<24} [{bar:30}] {bytes}/{total_bytes} ({binary_bytes_per_sec})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(what.to_string());
        self.bar.replace(Some(bar));
    }

    fn advance(&self, n: u64) {
        if let Some(b) = &*self.bar.borrow() {
            b.inc(n);
        }
    }

    fn layer_end(&self, outcome: &str) {
        if let Some(b) = self.bar.take() {
            if let Ok(style) = indicatif::ProgressStyle::with_template("{msg}") {
                b.set_style(style);
            }
            let what = b.message();
            b.finish_with_message(format!("{what:<24} {outcome}"));
        }
    }
}

/// The store named by `--store`, or the default one.
pub fn store_path(store: Option<PathBuf>) -> PathBuf {
    store.unwrap_or_else(image::default_store)
}

fn convert(
    source: &str,
    store: &std::path::Path,
    names: &[String],
    quiet: bool,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let t0 = Instant::now();
    let src = image::source::open(source)?;
    let st = image::Store::open_for_writing(store)
        .with_context(|| format!("opening the image store {}", store.display()))?;
    let bars = LayerBars {
        enabled: !quiet && std::io::stderr().is_terminal(),
        bar: RefCell::new(None),
    };
    let c = image::convert(src.as_ref(), &st, names, &bars)?;
    if !quiet {
        let name = c.image.names.first().map_or("<none>", String::as_str);
        println!(
            "{name} {}: {} layers ({} converted, {} reused), {} bytes, index {}, {:.2}s",
            c.image.id,
            c.image.layers.len(),
            c.layers_written,
            c.image.layers.len() - c.layers_written,
            c.image.size(),
            if c.index_written { "written" } else { "reused" },
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn list(store: &std::path::Path) -> anyhow::Result<()> {
    let images = match image::Store::open(store) {
        Ok(s) => s.images()?,
        Err(image::ImageError::NotInStore(_)) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let mut rows = vec![(
        "NAME".to_string(),
        "ID".to_string(),
        "LAYERS".to_string(),
        "SIZE".to_string(),
    )];
    for i in &images {
        let names: Vec<&str> = if i.names.is_empty() {
            vec!["<none>"]
        } else {
            i.names.iter().map(String::as_str).collect()
        };
        for n in names {
            rows.push((
                n.to_string(),
                i.id.hex()[..12].to_string(),
                i.layers.len().to_string(),
                i.size().to_string(),
            ));
        }
    }
    let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(4);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for (n, id, l, s) in rows {
        if writeln!(out, "{n:<w$}  {id:<12}  {l:>6}  {s:>12}").is_err() {
            break;
        }
    }
    Ok(())
}

fn remove(store: &std::path::Path, what: &[String]) -> anyhow::Result<()> {
    // Fails if there is no store (rather than making an empty one).
    drop(image::Store::open(store)?);
    let st = image::Store::open_for_writing(store)?;
    for w in what {
        let rec = st.remove(w)?;
        println!("removed {}", rec.id);
    }
    Ok(())
}

/// Runs `runsc image ...`.
pub fn run(args: ImageArgs) -> ExitCode {
    let report = |r: anyhow::Result<()>, what: &str| match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("runsc: image {what}: {e:#}");
            ExitCode::FAILURE
        }
    };
    match args.command {
        ImageCommand::Convert {
            source,
            store,
            names,
            quiet,
        } => report(
            convert(&source, &store_path(store), &names, quiet),
            "convert",
        ),
        ImageCommand::List { store } => report(list(&store_path(store)), "list"),
        ImageCommand::Rm { images, store } => report(remove(&store_path(store), &images), "rm"),
        ImageCommand::Build {
            dir,
            tar,
            output,
            keep_ctime,
            quiet,
        } => {
            let opts = imgfs::BuildOptions {
                keep_host_times: keep_ctime,
            };
            let bar = Bar::new(quiet);
            let t0 = Instant::now();
            let r = match (&dir, &tar) {
                (_, Some(tar)) => imgfs::build_from_tar_file(tar, &output, &opts, &bar),
                (Some(dir), None) => imgfs::build_from_dir(dir, &output, &opts, &bar),
                (None, None) => unreachable!("clap requires DIR or --tar"),
            };
            bar.finish();
            match r {
                Ok(s) => {
                    if !quiet {
                        println!(
                            "{}: {} inodes, {} entries ({} whiteouts), {} regular files, {} contents stored ({} files deduplicated), {} bytes of data, image {} bytes, {:.2}s",
                            output.display(),
                            s.inodes,
                            s.entries,
                            s.whiteouts,
                            s.regular_files,
                            s.extents,
                            s.deduplicated,
                            s.data_bytes,
                            s.image_size,
                            t0.elapsed().as_secs_f64()
                        );
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("runsc: image build: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        ImageCommand::Inspect { image } => {
            let img = match Image::open(&image) {
                Ok(i) => i,
                Err(e) => {
                    eprintln!("runsc: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let r = imgfs::inspect(&img, &mut out).and_then(|()| Ok(out.flush()?));
            match r {
                Ok(()) => ExitCode::SUCCESS,
                Err(imgfs::InspectError::Output(e))
                    if e.kind() == std::io::ErrorKind::BrokenPipe =>
                {
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    let _ = out.flush();
                    eprintln!("runsc: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        ImageCommand::Verify { image, quiet } => {
            let img = match Image::open(&image) {
                Ok(i) => i,
                Err(e) => {
                    println!("{e}");
                    return ExitCode::FAILURE;
                }
            };
            let bar = Bar::new(quiet);
            bar.start("verifying", img.header().data_size, true);
            let mut last = 0u64;
            let r = imgfs::verify(&img, &mut |done| {
                bar.advance(done.saturating_sub(last));
                last = done;
            });
            bar.finish();
            match r {
                Ok(s) => {
                    println!(
                        "{}: OK: {} inodes ({} directories, {} regular files, {} symlinks, {} devices, {} fifos/sockets), {} entries ({} whiteouts, {} opaque directories), {} extents ({} bytes), depth {}",
                        image.display(),
                        s.inodes,
                        s.directories,
                        s.regular_files,
                        s.symlinks,
                        s.devices,
                        s.fifos_and_sockets,
                        s.entries,
                        s.whiteouts,
                        s.opaque_dirs,
                        s.extents,
                        s.data_bytes,
                        s.max_depth
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    println!("{e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
