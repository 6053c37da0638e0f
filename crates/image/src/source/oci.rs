//! An OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/...`), as
//! skopeo, umoci and buildah write it.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use oci_spec::image::{Arch, Descriptor, ImageIndex, ImageManifest, MediaType, Os};

use super::{LayerDesc, Source, SourceImage};
use crate::digest::Digest;
use crate::error::{io_at, ImageError, Result};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

pub struct OciLayout {
    dir: PathBuf,
    image: SourceImage,
}

impl OciLayout {
    /// Opens the image tagged `tag` in the layout at `dir` (or its only image if no tag).
    pub fn open(source_name: &str, dir: &Path, tag: Option<&str>) -> Result<OciLayout> {
        let layout = OciLayout {
            dir: dir.to_path_buf(),
            image: SourceImage::empty(source_name),
        };
        let image = layout.read(tag)?;
        Ok(OciLayout { image, ..layout })
    }

    fn name(&self) -> &str {
        &self.image.source_name
    }

    fn malformed(&self, what: &str, problem: impl ToString) -> ImageError {
        ImageError::Malformed {
            source_name: self.name().into(),
            what: what.into(),
            problem: problem.to_string(),
        }
    }

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join("blobs/sha256").join(digest.hex())
    }

    /// Opens a blob, checking that it exists and has `size` bytes.
    fn open_blob(&self, digest: &Digest, size: u64) -> Result<File> {
        let path = self.blob_path(digest);
        let f = File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ImageError::MissingBlob {
                source_name: self.name().into(),
                blob: digest.to_string(),
            },
            _ => io_at(&path)(e),
        })?;
        let md = f.metadata().map_err(io_at(&path))?;
        if !md.is_file() {
            return Err(self.malformed(&format!("blob {digest}"), "not a regular file"));
        }
        let len = md.len();
        if len != size {
            return Err(ImageError::SizeMismatch {
                source_name: self.name().into(),
                blob: digest.to_string(),
                expected: size,
                actual: len,
            });
        }
        Ok(f)
    }

    fn descriptor_digest(&self, d: &Descriptor) -> Result<Digest> {
        Digest::parse(d.digest().as_ref()).map_err(|e| self.malformed("descriptor", e))
    }

    /// Reads and checks the JSON blob a descriptor points to.
    fn json_blob(&self, d: &Descriptor) -> Result<(Digest, serde_json::Value, Vec<u8>)> {
        let digest = self.descriptor_digest(d)?;
        let f = self.open_blob(&digest, d.size())?;
        super::read_json_blob(
            self.name(),
            digest.as_str(),
            f,
            Some(&digest),
            Some(d.size()),
        )
    }

    fn read(&self, tag: Option<&str>) -> Result<SourceImage> {
        let layout_file = self.dir.join("oci-layout");
        let text = std::fs::read(&layout_file).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => self.malformed(
                "oci-layout",
                "missing: this directory is not an OCI image layout",
            ),
            _ => io_at(&layout_file)(e),
        })?;
        let version = serde_json::from_slice::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v.get("imageLayoutVersion")?.as_str().map(String::from));
        if version.as_deref() != Some("1.0.0") {
            return Err(self.malformed("oci-layout", "imageLayoutVersion is not \"1.0.0\""));
        }

        let index_path = self.dir.join("index.json");
        let f = File::open(&index_path).map_err(io_at(&index_path))?;
        let (_, _, bytes) = super::read_json_blob(self.name(), "index.json", f, None, None)?;
        let index =
            ImageIndex::from_reader(&bytes[..]).map_err(|e| self.malformed("index.json", e))?;
        let chosen = match tag {
            Some(tag) => index
                .manifests()
                .iter()
                .find(|d| tagged(d) == Some(tag))
                .ok_or_else(|| ImageError::NoSuchImage {
                    source_name: self.name().into(),
                    what: format!(
                        "no image tagged {tag:?} (tags: {})",
                        tag_list(index.manifests().iter().filter_map(tagged))
                    ),
                })?,
            None => match index.manifests().as_slice() {
                [one] => one,
                many => {
                    return Err(ImageError::NoSuchImage {
                        source_name: self.name().into(),
                        what: format!(
                            "index.json lists {} images: name one as oci:DIR:TAG (tags: {})",
                            many.len(),
                            tag_list(many.iter().filter_map(tagged))
                        ),
                    })
                }
            },
        };
        let names = match tag {
            Some(t) => vec![t.to_string()],
            None => tagged(chosen).map(String::from).into_iter().collect(),
        };
        let manifest_desc = self.resolve_index(chosen.clone(), 0)?;
        let (manifest_digest, manifest_json, manifest_bytes) = self.json_blob(&manifest_desc)?;
        let what = format!("manifest {manifest_digest}");
        let manifest = ImageManifest::from_reader(&manifest_bytes[..])
            .map_err(|e| self.malformed(&what, e))?;
        let config_desc = manifest.config();
        let (config_digest, config_json, config_bytes) = self.json_blob(config_desc)?;
        let (config, diff_ids) =
            super::parse_config(self.name(), config_digest.as_str(), &config_bytes)?;
        let blobs = manifest
            .layers()
            .iter()
            .map(|d| {
                Ok((
                    self.descriptor_digest(d)?,
                    d.size(),
                    d.media_type().to_string(),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let layers: Vec<LayerDesc> = super::pair_layers(self.name(), blobs, diff_ids)?;
        Ok(SourceImage {
            source_name: self.name().into(),
            manifest: Some((manifest_digest, manifest_json)),
            config_digest,
            config_json,
            config,
            layers,
            names,
        })
    }

    /// Follows image indexes (multi-platform images) down to the linux/amd64 manifest.
    fn resolve_index(&self, d: Descriptor, depth: usize) -> Result<Descriptor> {
        let digest = self.descriptor_digest(&d)?;
        match d.media_type() {
            MediaType::ImageManifest => Ok(d),
            MediaType::Other(t) if t == DOCKER_MANIFEST => Ok(d),
            MediaType::ImageIndex if depth < 4 => self.pick_platform(&d, depth),
            MediaType::Other(t) if t == DOCKER_LIST && depth < 4 => self.pick_platform(&d, depth),
            t => Err(ImageError::UnsupportedMediaType {
                source_name: self.name().into(),
                blob: digest.to_string(),
                media_type: t.to_string(),
            }),
        }
    }

    fn pick_platform(&self, d: &Descriptor, depth: usize) -> Result<Descriptor> {
        let (digest, _, bytes) = self.json_blob(d)?;
        let what = format!("index {digest}");
        let index = ImageIndex::from_reader(&bytes[..]).map_err(|e| self.malformed(&what, e))?;
        let amd64 = index.manifests().iter().find(|m| {
            m.platform()
                .as_ref()
                .is_some_and(|p| *p.architecture() == Arch::Amd64 && *p.os() == Os::Linux)
        });
        let chosen = match (amd64, index.manifests().as_slice()) {
            (Some(m), _) => m,
            (None, [one]) => one,
            _ => {
                return Err(ImageError::NoSuchImage {
                    source_name: self.name().into(),
                    what: format!("{what} has no linux/amd64 image"),
                })
            }
        };
        self.resolve_index(chosen.clone(), depth + 1)
    }
}

/// The tag of an index entry.
fn tagged(d: &Descriptor) -> Option<&str> {
    d.annotations()
        .as_ref()
        .and_then(|a| a.get(REF_NAME))
        .map(String::as_str)
}

fn tag_list<'a>(tags: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = tags.collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

impl Source for OciLayout {
    fn image(&self) -> &SourceImage {
        &self.image
    }

    fn open_layer(&self, layer: &LayerDesc) -> Result<Box<dyn Read + Send + '_>> {
        Ok(Box::new(self.open_blob(&layer.digest, layer.size)?))
    }
}
