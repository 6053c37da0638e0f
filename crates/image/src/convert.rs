//! Conversion: each layer of a source image becomes an ImgFS image in the store (unless the
//! store has it already), then the stack's merged index, then the image's record.

use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;

use fs::imgfs::{self, BuildError, BuildOptions};

use crate::digest::{Digest, Hashing};
use crate::error::{io_at, ImageError, Result};
use crate::source::{LayerDesc, Source, SourceImage};
use crate::store::{ImageRecord, LayerRecord, RunConfig, Store};

/// Receives the progress of a conversion: one layer at a time.
pub trait ConvertProgress {
    /// Layer `what` starts; `total` bytes of blob will be read (0 if the store has it).
    fn layer_start(&self, _what: &str, _total: u64) {}
    /// `n` more bytes of the blob were read.
    fn advance(&self, _n: u64) {}
    /// The layer is done: `outcome` says how ("converted", "already stored").
    fn layer_end(&self, _outcome: &str) {}
}

/// Progress that goes nowhere.
pub struct Quiet;
impl ConvertProgress for Quiet {}

/// What a conversion did.
#[derive(Debug, Clone)]
pub struct Converted {
    pub image: ImageRecord,
    /// Layers converted now (the others were in the store).
    pub layers_written: usize,
    /// Whether the merged index was written now.
    pub index_written: bool,
    /// Whether the image record changed (a new image, or new names).
    pub record_written: bool,
}

struct Counting<'a, R> {
    inner: R,
    progress: &'a dyn ConvertProgress,
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.advance(n as u64);
        Ok(n)
    }
}

/// Converts the image of `source` into `store`, under its names and `extra_names`. On
/// failure, layers converted on the way that no image uses are removed again.
pub fn convert(
    source: &dyn Source,
    store: &Store,
    extra_names: &[String],
    progress: &dyn ConvertProgress,
) -> Result<Converted> {
    let r = convert_image(source, store, extra_names, progress);
    if r.is_err() {
        if let Err(e) = store.collect_garbage() {
            tracing::warn!("cleaning the store after a failed conversion: {e}");
        }
    }
    r
}

fn convert_image(
    source: &dyn Source,
    store: &Store,
    extra_names: &[String],
    progress: &dyn ConvertProgress,
) -> Result<Converted> {
    let img = source.image();
    // A stored layer is reused only if it is still the image made from its blob (its
    // SHA-256 as recorded); a damaged one is removed and converted again.
    for layer in &img.layers {
        if let Some(rec) = store.layer(&layer.digest) {
            if let Err(what) = store.check_layer(&rec) {
                tracing::warn!(
                    "{}: {what}: the stored layer is damaged; converting it again",
                    store.layer_path(&layer.digest).display()
                );
                store.remove_layer(&layer.digest)?;
            }
        }
    }
    // Every blob must be there with its size before any work is done.
    for layer in &img.layers {
        if store.layer(&layer.digest).is_none() {
            drop(source.open_layer(layer)?);
        }
    }
    let count = img.layers.len();
    let mut layers = Vec::with_capacity(count);
    let mut layers_written = 0;
    for (i, layer) in img.layers.iter().enumerate() {
        let short = &layer.digest.hex()[..12];
        let what = format!("layer {}/{count} {short}", i + 1);
        if let Some(rec) = store.layer(&layer.digest) {
            progress.layer_start(&what, 0);
            progress.layer_end("already stored (checked)");
            layers.push(rec);
            continue;
        }
        progress.layer_start(&what, layer.size);
        let r = convert_layer(source, store, layer, progress);
        progress.layer_end(if r.is_ok() { "converted" } else { "failed" });
        layers.push(r?);
        layers_written += 1;
    }

    let digests: Vec<Digest> = layers.iter().map(|l| l.digest.clone()).collect();
    let chain = Digest::chain(&digests).expect("a source image has at least one layer");
    let index = store.index_path(&chain);
    let index_written = !index.is_file();
    if index_written {
        let paths: Vec<_> = digests.iter().map(|d| store.layer_path(d)).collect();
        let refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
        let tmp = tempfile::Builder::new()
            .suffix(".idx")
            .tempfile_in(store.tmp_dir())
            .map_err(io_at(store.tmp_dir()))?;
        fs::containerfs::write_index(&refs, tmp.path())?;
        tmp.persist(&index).map_err(|e| io_at(&index)(e.error))?;
    }

    let mut names: Vec<String> = img.names.iter().chain(extra_names).cloned().collect();
    // Names already given to this image stay.
    if let Ok(old) = store.find(img.config_digest.as_str()) {
        if old.id == img.config_digest {
            names.extend(old.names);
        }
    }
    names.sort();
    names.dedup();
    let record = ImageRecord {
        id: img.config_digest.clone(),
        names,
        layers,
        chain,
        run: run_config(img),
        manifest_digest: img.manifest.as_ref().map(|(d, _)| d.clone()),
        manifest: img.manifest.as_ref().map(|(_, m)| m.clone()),
        config: img.config_json.clone(),
    };
    let record_written = store.put_image(&record)?;
    // Another conversion of this ID may have used other layers (recompressed blobs).
    store.collect_garbage()?;
    Ok(Converted {
        image: record,
        layers_written,
        index_written,
        record_written,
    })
}

fn run_config(img: &SourceImage) -> RunConfig {
    let Some(c) = img.config.config() else {
        return RunConfig::default();
    };
    RunConfig {
        entrypoint: c.entrypoint().clone().unwrap_or_default(),
        cmd: c.cmd().clone().unwrap_or_default(),
        env: c.env().clone().unwrap_or_default(),
        working_dir: c.working_dir().clone().unwrap_or_default(),
        user: c.user().clone().unwrap_or_default(),
    }
}

/// Reads one layer blob, checking its size, digest and diff_id, and builds its ImgFS image
/// in `tmp/`; moves it into the store once every check passed.
fn convert_layer(
    source: &dyn Source,
    store: &Store,
    layer: &LayerDesc,
    progress: &dyn ConvertProgress,
) -> Result<LayerRecord> {
    let name = &source.image().source_name;
    let blob = layer.digest.to_string();
    let corrupt = |what: String| ImageError::CorruptLayer {
        source_name: name.clone(),
        blob: blob.clone(),
        what,
    };
    let reader = source.open_layer(layer)?;
    let raw = Hashing::new(Counting {
        inner: reader,
        progress,
    });
    let mut raw = BufReader::with_capacity(1 << 20, raw);
    let magic = raw
        .fill_buf()
        .map_err(|e| corrupt(format!("cannot read: {e}")))?;
    let decoder: Box<dyn Read + '_> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::bufread::MultiGzDecoder::new(&mut raw))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(
            zstd::stream::read::Decoder::with_buffer(&mut raw)
                .map_err(|e| corrupt(format!("bad zstd stream: {e}")))?,
        )
    } else if magic.starts_with(b"BZh") || magic.starts_with(&[0xfd, b'7', b'z', b'X', b'Z']) {
        return Err(ImageError::UnsupportedMediaType {
            source_name: name.clone(),
            blob,
            media_type: format!("{} (bzip2 or xz content)", layer.media_type),
        });
    } else {
        Box::new(&mut raw)
    };
    let mut tar = Hashing::new(decoder);
    let tmp = tempfile::Builder::new()
        .suffix(".img")
        .tempfile_in(store.tmp_dir())
        .map_err(io_at(store.tmp_dir()))?;
    let built = {
        let mut tar_buf = BufReader::with_capacity(1 << 20, &mut tar);
        imgfs::build_from_tar(
            &mut tar_buf,
            &blob,
            tmp.path(),
            &BuildOptions::default(),
            None,
        )
    };
    let summary = built.map_err(|e| match e {
        BuildError::Io { path, source } if path == tmp.path() => io_at(path)(source),
        e => corrupt(e.to_string()),
    })?;
    let (diff_id, _) = tar
        .finish()
        .map_err(|e| corrupt(format!("bad compressed stream: {e}")))?;
    let (digest, size) = raw
        .into_inner()
        .finish()
        .map_err(|e| corrupt(format!("cannot read: {e}")))?;
    if size != layer.size {
        return Err(ImageError::SizeMismatch {
            source_name: name.clone(),
            blob,
            expected: layer.size,
            actual: size,
        });
    }
    if digest != layer.digest {
        return Err(ImageError::DigestMismatch {
            source_name: name.clone(),
            blob,
            actual: digest.to_string(),
        });
    }
    if diff_id != layer.diff_id {
        return Err(ImageError::DiffIdMismatch {
            source_name: name.clone(),
            blob,
            expected: layer.diff_id.to_string(),
            actual: diff_id.to_string(),
        });
    }
    let (image_sha256, _) = Hashing::new(BufReader::with_capacity(
        1 << 20,
        std::fs::File::open(tmp.path()).map_err(io_at(tmp.path()))?,
    ))
    .finish()
    .map_err(io_at(tmp.path()))?;
    let rec = LayerRecord {
        digest: layer.digest.clone(),
        diff_id,
        media_type: layer.media_type.clone(),
        size,
        image_size: summary.image_size,
        image_sha256: Some(image_sha256),
    };
    let (_, path) = tmp.keep().map_err(|e| io_at(store.tmp_dir())(e.error))?;
    if let Err(e) = store.add_layer(&path, &rec) {
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    Ok(rec)
}
