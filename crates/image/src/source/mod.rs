//! Image sources, named as skopeo names them: `oci:DIR[:TAG]` (an OCI image layout) and
//! `docker-archive:FILE[:NAME]` (a `docker save` tarball). A source gives the image's
//! manifest and config (checked against their digests) and a reader of each layer blob.

pub mod docker;
pub mod oci;

use std::io::Read;

use oci_spec::image::ImageConfiguration;

use crate::digest::Digest;
use crate::error::{ImageError, Result};

/// Largest manifest, index or config read (they are small JSON documents; this bounds the
/// memory a hostile source can make us use).
pub const MAX_JSON: u64 = 16 << 20;

/// A layer as the source describes it.
#[derive(Debug, Clone)]
pub struct LayerDesc {
    /// The digest of the blob as stored (compressed, for a compressed layer): the layer's
    /// name in the store.
    pub digest: Digest,
    /// The blob's size.
    pub size: u64,
    pub media_type: String,
    /// The digest of the uncompressed tar, from the config's `rootfs.diff_ids`.
    pub diff_id: Digest,
}

/// The image a source holds: what conversion needs, all of it verified.
#[derive(Debug, Clone)]
pub struct SourceImage {
    /// How the user named the source (for errors).
    pub source_name: String,
    /// The manifest's digest and content, when the source has one (an OCI layout; a
    /// `docker save` archive of Docker 25 or later).
    pub manifest: Option<(Digest, serde_json::Value)>,
    pub config_digest: Digest,
    pub config_json: serde_json::Value,
    pub config: ImageConfiguration,
    /// Bottom first.
    pub layers: Vec<LayerDesc>,
    /// The names (tags) the image is converted under.
    pub names: Vec<String>,
}

impl SourceImage {
    /// Nothing yet: a source fills it in once read.
    fn empty(source_name: &str) -> SourceImage {
        SourceImage {
            source_name: source_name.into(),
            manifest: None,
            config_digest: Digest::of(b""),
            config_json: serde_json::Value::Null,
            config: Default::default(),
            layers: Vec::new(),
            names: Vec::new(),
        }
    }
}

/// A source of one image.
pub trait Source {
    fn image(&self) -> &SourceImage;
    /// A reader of exactly the blob's bytes. The blob is checked to exist and to have the
    /// descriptor's size; its digest is the caller's to check as it reads.
    fn open_layer(&self, layer: &LayerDesc) -> Result<Box<dyn Read + Send + '_>>;
}

/// Opens the source named `reference` (`oci:DIR[:TAG]` or `docker-archive:FILE[:NAME]`).
pub fn open(reference: &str) -> Result<Box<dyn Source>> {
    if let Some(rest) = reference.strip_prefix("oci:") {
        // As skopeo does, the path ends at the first ':'.
        let (dir, tag) = split_ref(rest);
        return Ok(Box::new(oci::OciLayout::open(
            reference,
            dir.as_ref(),
            tag,
        )?));
    }
    if let Some(rest) = reference.strip_prefix("docker-archive:") {
        let (file, name) = split_ref(rest);
        return Ok(Box::new(docker::DockerArchive::open(
            reference,
            file.as_ref(),
            name,
        )?));
    }
    Err(ImageError::BadReference(format!(
        "{reference:?}: expected oci:DIR[:TAG] or docker-archive:FILE[:NAME]"
    )))
}

fn split_ref(rest: &str) -> (&str, Option<&str>) {
    match rest.split_once(':') {
        Some((path, tag)) if !tag.is_empty() => (path, Some(tag)),
        Some((path, _)) => (path, None),
        None => (rest, None),
    }
}

/// Whether a layer of this media type can be read: plain, gzip or zstd tar layers of OCI
/// and Docker (the compression itself is found from the content).
pub fn supported_layer_type(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.zstd"
    )
}

/// Reads a whole JSON blob of at most [`MAX_JSON`] bytes from `r`, checking its digest
/// (and size, if known) and parsing it.
pub(crate) fn read_json_blob(
    source_name: &str,
    blob: &str,
    r: impl Read,
    expected: Option<&Digest>,
    size: Option<u64>,
) -> Result<(Digest, serde_json::Value, Vec<u8>)> {
    let mut bytes = Vec::new();
    r.take(MAX_JSON + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ImageError::Malformed {
            source_name: source_name.into(),
            what: blob.into(),
            problem: e.to_string(),
        })?;
    if bytes.len() as u64 > MAX_JSON {
        return Err(ImageError::Malformed {
            source_name: source_name.into(),
            what: blob.into(),
            problem: format!("larger than {MAX_JSON} bytes"),
        });
    }
    if let Some(size) = size {
        if bytes.len() as u64 != size {
            return Err(ImageError::SizeMismatch {
                source_name: source_name.into(),
                blob: blob.into(),
                expected: size,
                actual: bytes.len() as u64,
            });
        }
    }
    let digest = Digest::of(&bytes);
    if let Some(expected) = expected {
        if &digest != expected {
            return Err(ImageError::DigestMismatch {
                source_name: source_name.into(),
                blob: blob.into(),
                actual: digest.to_string(),
            });
        }
    }
    let value = serde_json::from_slice(&bytes).map_err(|e| ImageError::Malformed {
        source_name: source_name.into(),
        what: blob.into(),
        problem: format!("not valid JSON: {e}"),
    })?;
    Ok((digest, value, bytes))
}

/// Parses a config and pairs its diff_ids with the manifest's layers (bottom first).
pub(crate) fn parse_config(
    source_name: &str,
    blob: &str,
    bytes: &[u8],
) -> Result<(ImageConfiguration, Vec<Digest>)> {
    let malformed = |problem: String| ImageError::Malformed {
        source_name: source_name.into(),
        what: format!("config {blob}"),
        problem,
    };
    let config = ImageConfiguration::from_reader(bytes).map_err(|e| malformed(e.to_string()))?;
    let diff_ids = config
        .rootfs()
        .diff_ids()
        .iter()
        .map(|d| Digest::parse(d).map_err(&malformed))
        .collect::<Result<Vec<_>>>()?;
    Ok((config, diff_ids))
}

/// Builds the layer list from (blob digest, size, media type) triples and the diff_ids.
pub(crate) fn pair_layers(
    source_name: &str,
    blobs: Vec<(Digest, u64, String)>,
    diff_ids: Vec<Digest>,
) -> Result<Vec<LayerDesc>> {
    if blobs.len() != diff_ids.len() {
        return Err(ImageError::Malformed {
            source_name: source_name.into(),
            what: "config".into(),
            problem: format!(
                "the manifest has {} layers but the config's rootfs has {} diff_ids",
                blobs.len(),
                diff_ids.len()
            ),
        });
    }
    if blobs.is_empty() {
        return Err(ImageError::Malformed {
            source_name: source_name.into(),
            what: "manifest".into(),
            problem: "the image has no layers".into(),
        });
    }
    blobs
        .into_iter()
        .zip(diff_ids)
        .map(|((digest, size, media_type), diff_id)| {
            if !supported_layer_type(&media_type) {
                return Err(ImageError::UnsupportedMediaType {
                    source_name: source_name.into(),
                    blob: digest.to_string(),
                    media_type,
                });
            }
            Ok(LayerDesc {
                digest,
                size,
                media_type,
                diff_id,
            })
        })
        .collect()
}
