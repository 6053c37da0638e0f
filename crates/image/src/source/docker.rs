//! A `docker save` archive: a tar holding `manifest.json` (a list of images, each with its
//! config file, tags and layer files). Docker before 25 writes `ID.json` configs and
//! `ID/layer.tar` layers (uncompressed, so a layer's digest is its diff_id; a layer met
//! twice may be a symlink to the first); Docker 25 and later write an OCI layout inside the
//! tar (`blobs/sha256/HEX`) and point `manifest.json` into it. Members are read in place,
//! never extracted.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::{LayerDesc, Source, SourceImage};
use crate::digest::Digest;
use crate::error::{io_at, ImageError, Result};

/// The media type given to a layer of a `docker save` archive (its compression, if any,
/// is found from its content).
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar";

#[derive(Debug, Clone)]
enum Member {
    File { offset: u64, size: u64 },
    Link(String),
}

pub struct DockerArchive {
    path: PathBuf,
    members: HashMap<String, Member>,
    /// Layer digest -> member path.
    layer_paths: HashMap<Digest, String>,
    image: SourceImage,
}

#[derive(serde::Deserialize)]
struct ManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

/// `a/./b/../c` -> `a/c`; None if it climbs out of the archive.
fn normalize(path: &str) -> Option<String> {
    let mut out: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                out.pop()?;
            }
            c => out.push(c),
        }
    }
    Some(out.join("/"))
}

impl DockerArchive {
    /// Indexes the archive at `file` and reads the image named `name` (or its only image).
    pub fn open(source_name: &str, file: &Path, name: Option<&str>) -> Result<DockerArchive> {
        let malformed = |what: &str, problem: String| ImageError::Malformed {
            source_name: source_name.into(),
            what: what.into(),
            problem,
        };
        let f = File::open(file).map_err(io_at(file))?;
        let mut members = HashMap::new();
        let mut archive = tar::Archive::new(f);
        let bad_tar = |e: std::io::Error| malformed("archive", format!("bad tar: {e}"));
        for entry in archive.entries().map_err(bad_tar)? {
            let entry = entry.map_err(bad_tar)?;
            let Some(path) = normalize(&String::from_utf8_lossy(&entry.path_bytes())) else {
                continue;
            };
            let kind = entry.header().entry_type();
            let member = if kind.is_file() {
                Member::File {
                    offset: entry.raw_file_position(),
                    size: entry.size(),
                }
            } else if kind.is_symlink() {
                match entry.link_name_bytes() {
                    Some(l) => Member::Link(String::from_utf8_lossy(&l).into_owned()),
                    None => continue,
                }
            } else if kind.is_hard_link() {
                match entry.link_name_bytes() {
                    // A hard link names its target from the archive's root.
                    Some(l) => Member::Link(format!("/{}", String::from_utf8_lossy(&l))),
                    None => continue,
                }
            } else {
                continue;
            };
            members.insert(path, member);
        }
        let mut this = DockerArchive {
            path: file.to_path_buf(),
            members,
            layer_paths: HashMap::new(),
            image: SourceImage::empty(source_name),
        };

        let (_, manifest_json, _) = super::read_json_blob(
            source_name,
            "manifest.json",
            this.member("manifest.json")?,
            None,
            None,
        )?;
        let entries: Vec<ManifestEntry> = serde_json::from_value(manifest_json.clone())
            .map_err(|e| malformed("manifest.json", e.to_string()))?;
        let entry = match name {
            Some(n) => entries
                .iter()
                .find(|e| e.repo_tags.iter().flatten().any(|t| t == n))
                .ok_or_else(|| ImageError::NoSuchImage {
                    source_name: source_name.into(),
                    what: format!("no image tagged {n:?} in manifest.json"),
                })?,
            None => match entries.as_slice() {
                [one] => one,
                many => {
                    return Err(ImageError::NoSuchImage {
                        source_name: source_name.into(),
                        what: format!(
                            "manifest.json lists {} images: name one as docker-archive:FILE:NAME",
                            many.len()
                        ),
                    })
                }
            },
        };

        // The config's name holds its digest (ID.json or blobs/sha256/ID).
        let config_expected = digest_in_path(&entry.config);
        let (config_digest, config_json, config_bytes) = super::read_json_blob(
            source_name,
            &entry.config,
            this.member(&entry.config)?,
            config_expected.as_ref(),
            None,
        )?;
        let (config, diff_ids) =
            super::parse_config(source_name, config_digest.as_str(), &config_bytes)?;
        if diff_ids.len() != entry.layers.len() {
            return Err(malformed(
                "manifest.json",
                format!(
                    "{} layers listed but the config's rootfs has {} diff_ids",
                    entry.layers.len(),
                    diff_ids.len()
                ),
            ));
        }
        let mut blobs = Vec::new();
        for (path, diff_id) in entry.layers.iter().zip(&diff_ids) {
            // Docker 25+: the blob's digest is in its name. Before: layers are plain tars,
            // their digest is the diff_id.
            let digest = digest_in_path(path)
                .filter(|_| path.starts_with("blobs/"))
                .unwrap_or_else(|| diff_id.clone());
            let (_, size) = this.locate(path).map_err(|_| ImageError::MissingBlob {
                source_name: source_name.into(),
                blob: format!("{path} ({digest})"),
            })?;
            this.layer_paths.insert(digest.clone(), path.clone());
            blobs.push((digest, size, DOCKER_LAYER.to_string()));
        }
        let layers = super::pair_layers(source_name, blobs, diff_ids)?;
        // A Docker 25+ archive also holds the OCI manifest: keep it if it is there.
        let manifest = this.oci_manifest(&config_digest);
        this.image = SourceImage {
            source_name: source_name.into(),
            manifest,
            config_digest,
            config_json,
            config,
            layers,
            names: entry.repo_tags.clone().unwrap_or_default(),
        };
        Ok(this)
    }

    /// Follows links to a regular member: its offset and size.
    fn locate(&self, path: &str) -> std::result::Result<(u64, u64), ()> {
        let mut cur = normalize(path).ok_or(())?;
        for _ in 0..16 {
            match self.members.get(&cur).ok_or(())? {
                Member::File { offset, size } => return Ok((*offset, *size)),
                Member::Link(target) => {
                    let base = if target.starts_with('/') {
                        String::new()
                    } else {
                        cur.rsplit_once('/')
                            .map(|(d, _)| d.to_string())
                            .unwrap_or_default()
                    };
                    cur = normalize(&format!("{base}/{target}")).ok_or(())?;
                }
            }
        }
        Err(())
    }

    /// A reader of a member's bytes.
    fn member(&self, path: &str) -> Result<std::io::Take<File>> {
        let (offset, size) = self.locate(path).map_err(|_| ImageError::MissingBlob {
            source_name: self.image.source_name.clone(),
            blob: path.into(),
        })?;
        let mut f = File::open(&self.path).map_err(io_at(&self.path))?;
        f.seek(SeekFrom::Start(offset)).map_err(io_at(&self.path))?;
        Ok(f.take(size))
    }

    /// The OCI manifest whose config is `config`, from a Docker 25+ archive's index.json.
    fn oci_manifest(&self, config: &Digest) -> Option<(Digest, serde_json::Value)> {
        let name = &self.image.source_name;
        let (_, index, _) = super::read_json_blob(
            name,
            "index.json",
            self.member("index.json").ok()?,
            None,
            None,
        )
        .ok()?;
        for m in index.get("manifests")?.as_array()? {
            let digest = Digest::parse(m.get("digest")?.as_str()?).ok()?;
            let path = format!("blobs/sha256/{}", digest.hex());
            let Ok((_, value, _)) =
                super::read_json_blob(name, &path, self.member(&path).ok()?, Some(&digest), None)
            else {
                continue;
            };
            let cfg = value
                .get("config")
                .and_then(|c| c.get("digest"))
                .and_then(|d| d.as_str());
            if cfg == Some(config.as_str()) {
                return Some((digest, value));
            }
        }
        None
    }
}

/// `blobs/sha256/HEX` or `HEX.json` or `HEX/layer.tar` -> the digest it names, if any.
fn digest_in_path(path: &str) -> Option<Digest> {
    let path = normalize(path)?;
    if let Some(hex) = path.strip_prefix("blobs/sha256/") {
        return Digest::parse(&format!("sha256:{hex}")).ok();
    }
    let hex = path.strip_suffix(".json")?;
    Digest::parse(&format!("sha256:{hex}")).ok()
}

impl Source for DockerArchive {
    fn image(&self) -> &SourceImage {
        &self.image
    }

    fn open_layer(&self, layer: &LayerDesc) -> Result<Box<dyn Read + Send + '_>> {
        let path = self
            .layer_paths
            .get(&layer.digest)
            .ok_or_else(|| ImageError::MissingBlob {
                source_name: self.image.source_name.clone(),
                blob: layer.digest.to_string(),
            })?;
        Ok(Box::new(self.member(path)?))
    }
}
