//! The content-addressed store of converted images (`docs/image-store.md`):
//!
//! ```text
//! STORE/lock                 flock(2): exclusive while converting or removing, shared to read
//! STORE/tmp/                 files being written (renamed into place when complete)
//! STORE/layers/HEX.img       the ImgFS image of the layer whose blob digest is sha256:HEX
//! STORE/layers/HEX.json      that layer's record (LayerRecord), written after the image
//! STORE/indexes/HEX.idx      the merged index of a layer stack, HEX its chain of layer digests
//! STORE/images/HEX.json      an image (ImageRecord), HEX its config digest (its image ID)
//! ```

use std::fs::File;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{io_at, ImageError, Result};

/// One layer of a converted image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRecord {
    /// The source blob's digest: the layer's name in the store.
    pub digest: Digest,
    /// The uncompressed tar's digest.
    pub diff_id: Digest,
    pub media_type: String,
    /// The source blob's size.
    pub size: u64,
    /// The ImgFS image's size.
    pub image_size: u64,
    /// The SHA-256 of the whole ImgFS image, checked before the stored layer is reused
    /// (absent in records written before it was kept: such a layer gets ImgFS's full
    /// `verify` instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_sha256: Option<Digest>,
}

/// How the image's config says to run it (the OCI `config` fields `runsc do --image` uses).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub working_dir: String,
    pub user: String,
}

impl RunConfig {
    /// The command line of a container, as `docker run IMAGE [ARGS]` makes it: the
    /// entrypoint, then `args` if any were given, else the config's Cmd.
    pub fn argv(&self, args: &[String]) -> Vec<String> {
        let tail = if args.is_empty() { &self.cmd } else { args };
        self.entrypoint.iter().chain(tail).cloned().collect()
    }
}

/// A converted image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageRecord {
    /// The config's digest (the image ID, as Docker shows it).
    pub id: Digest,
    /// Names (tags) it was converted under; each name belongs to one image.
    pub names: Vec<String>,
    /// Bottom first.
    pub layers: Vec<LayerRecord>,
    /// The key of the merged index: the chain of the layers' digests.
    pub chain: Digest,
    pub run: RunConfig,
    /// The manifest's digest and content, when the source had one.
    pub manifest_digest: Option<Digest>,
    pub manifest: Option<serde_json::Value>,
    /// The image config, as the source had it.
    pub config: serde_json::Value,
}

impl ImageRecord {
    /// Bytes of the ImgFS layers.
    pub fn size(&self) -> u64 {
        self.layers.iter().map(|l| l.image_size).sum()
    }
}

/// The store directory, its lock held.
pub struct Store {
    root: PathBuf,
    _lock: Flock<File>,
    exclusive: bool,
}

/// The default store: `/var/lib/runsc/images` for root, else `$XDG_DATA_HOME/runsc/images`
/// or `~/.local/share/runsc/images`.
pub fn default_store() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/lib/runsc/images");
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| Path::new(d).is_absolute())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    data.join("runsc/images")
}

fn write_json_if_changed(path: &Path, tmp_dir: &Path, value: &impl Serialize) -> Result<bool> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| ImageError::BadStore {
        path: path.into(),
        what: e.to_string(),
    })?;
    bytes.push(b'\n');
    if std::fs::read(path).ok().as_deref() == Some(&bytes[..]) {
        return Ok(false);
    }
    let tmp = tempfile::NamedTempFile::new_in(tmp_dir).map_err(io_at(tmp_dir))?;
    std::fs::write(tmp.path(), &bytes).map_err(io_at(tmp.path()))?;
    tmp.as_file().sync_all().map_err(io_at(tmp.path()))?;
    tmp.persist(path).map_err(|e| io_at(path)(e.error))?;
    Ok(true)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(io_at(path))?;
    serde_json::from_slice(&bytes).map_err(|e| ImageError::BadStore {
        path: path.into(),
        what: e.to_string(),
    })
}

impl Store {
    /// Opens (creating it) the store at `root` for changes: waits for the exclusive lock,
    /// then removes what an interrupted writer left in `tmp/`.
    pub fn open_for_writing(root: &Path) -> Result<Store> {
        for dir in ["tmp", "layers", "indexes", "images"] {
            let d = root.join(dir);
            std::fs::create_dir_all(&d).map_err(io_at(&d))?;
        }
        let store = Store::lock(root, FlockArg::LockExclusive)?;
        let tmp = store.tmp_dir();
        for entry in std::fs::read_dir(&tmp).map_err(io_at(&tmp))?.flatten() {
            let p = entry.path();
            let r = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            if let Err(e) = r {
                tracing::warn!("{}: {e}", p.display());
            }
        }
        Ok(store)
    }

    /// Opens the store at `root` to read it (a shared lock: no conversion runs meanwhile).
    pub fn open(root: &Path) -> Result<Store> {
        if !root.join("images").is_dir() {
            return Err(ImageError::NotInStore(format!(
                "{}: no image store here (runsc image convert makes one)",
                root.display()
            )));
        }
        Store::lock(root, FlockArg::LockShared)
    }

    fn lock(root: &Path, how: FlockArg) -> Result<Store> {
        let path = root.join("lock");
        let f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .or_else(|_| File::open(&path))
            .map_err(io_at(&path))?;
        let lock = Flock::lock(f, how).map_err(|(_, e)| io_at(&path)(e.into()))?;
        Ok(Store {
            root: root.to_path_buf(),
            _lock: lock,
            exclusive: how == FlockArg::LockExclusive,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    pub fn layer_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("layers")
            .join(format!("{}.img", digest.hex()))
    }

    fn layer_record_path(&self, digest: &Digest) -> PathBuf {
        self.root
            .join("layers")
            .join(format!("{}.json", digest.hex()))
    }

    pub fn index_path(&self, chain: &Digest) -> PathBuf {
        self.root
            .join("indexes")
            .join(format!("{}.idx", chain.hex()))
    }

    fn image_path(&self, id: &Digest) -> PathBuf {
        self.root.join("images").join(format!("{}.json", id.hex()))
    }

    /// The record of a stored layer, if the layer is complete in the store.
    pub fn layer(&self, digest: &Digest) -> Option<LayerRecord> {
        let rec: LayerRecord = read_json(&self.layer_record_path(digest)).ok()?;
        let len = std::fs::metadata(self.layer_path(digest)).ok()?.len();
        (rec.digest == *digest && len == rec.image_size).then_some(rec)
    }

    /// Checks a stored layer before it is reused: the image's SHA-256 against its record
    /// (so it is the very image made from the blob of that digest when the blob's digest,
    /// size and diff_id were checked), or, for an older record without it, ImgFS's full
    /// `verify` (every checksum and invariant). Err says what is wrong.
    pub fn check_layer(&self, rec: &LayerRecord) -> std::result::Result<(), String> {
        let path = self.layer_path(&rec.digest);
        match &rec.image_sha256 {
            Some(want) => {
                let f = File::open(&path).map_err(|e| e.to_string())?;
                let (got, len) =
                    crate::digest::Hashing::new(std::io::BufReader::with_capacity(1 << 20, f))
                        .finish()
                        .map_err(|e| e.to_string())?;
                if len != rec.image_size {
                    return Err(format!("{len} bytes, its record says {}", rec.image_size));
                }
                if got != *want {
                    return Err(format!("SHA-256 is {got}, its record says {want}"));
                }
                Ok(())
            }
            None => {
                let img = fs::imgfs::Image::open(&path).map_err(|e| e.to_string())?;
                fs::imgfs::verify(&img, &mut |_| {})
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Removes a stored layer (its record first, so a layer without a record is never
    /// taken as complete).
    pub fn remove_layer(&self, digest: &Digest) -> Result<()> {
        debug_assert!(self.exclusive);
        for p in [self.layer_record_path(digest), self.layer_path(digest)] {
            match std::fs::remove_file(&p) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io_at(&p)(e)),
                _ => {}
            }
        }
        Ok(())
    }

    /// Moves a complete layer image (written in `tmp/`) into place, then its record.
    pub fn add_layer(&self, image: &Path, rec: &LayerRecord) -> Result<()> {
        debug_assert!(self.exclusive);
        let dest = self.layer_path(&rec.digest);
        std::fs::rename(image, &dest).map_err(io_at(&dest))?;
        write_json_if_changed(&self.layer_record_path(&rec.digest), &self.tmp_dir(), rec)?;
        Ok(())
    }

    /// Every image, by ID.
    pub fn images(&self) -> Result<Vec<ImageRecord>> {
        let dir = self.root.join("images");
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(io_at(&dir))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        paths.sort();
        paths.iter().map(|p| read_json(p)).collect()
    }

    /// Writes an image's record, taking its names from any other image (a name belongs to
    /// one image). Returns whether anything changed.
    pub fn put_image(&self, rec: &ImageRecord) -> Result<bool> {
        debug_assert!(self.exclusive);
        let mut changed = false;
        for mut other in self.images()? {
            if other.id == rec.id {
                continue;
            }
            let before = other.names.len();
            other.names.retain(|n| !rec.names.contains(n));
            if other.names.len() != before {
                changed |=
                    write_json_if_changed(&self.image_path(&other.id), &self.tmp_dir(), &other)?;
            }
        }
        changed |= write_json_if_changed(&self.image_path(&rec.id), &self.tmp_dir(), rec)?;
        Ok(changed)
    }

    /// The image named `what`: a name (`NAME` also finds `NAME:latest`), an ID
    /// (`sha256:HEX`), or a prefix of at least 4 hex digits of one.
    pub fn find(&self, what: &str) -> Result<ImageRecord> {
        let images = self.images()?;
        let latest = format!("{what}:latest");
        if let Some(i) = images
            .iter()
            .find(|i| i.names.iter().any(|n| n == what))
            .or_else(|| images.iter().find(|i| i.names.contains(&latest)))
        {
            return Ok(i.clone());
        }
        let hex = what.strip_prefix("sha256:").unwrap_or(what);
        if hex.len() >= 4 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let hex = hex.to_ascii_lowercase();
            let hits: Vec<&ImageRecord> = images
                .iter()
                .filter(|i| i.id.hex().starts_with(&hex))
                .collect();
            match hits.as_slice() {
                [one] => return Ok((*one).clone()),
                [] => {}
                many => {
                    return Err(ImageError::NotInStore(format!(
                        "{what}: matches {} images; give more digits",
                        many.len()
                    )))
                }
            }
        }
        Err(ImageError::NotInStore(format!(
            "{what}: no such image in {} (runsc image list shows them)",
            self.root.display()
        )))
    }

    /// Removes an image (found as [`Store::find`] does) and the layers and indexes no other
    /// image uses. Returns the removed image.
    pub fn remove(&self, what: &str) -> Result<ImageRecord> {
        debug_assert!(self.exclusive);
        let rec = self.find(what)?;
        let path = self.image_path(&rec.id);
        std::fs::remove_file(&path).map_err(io_at(&path))?;
        self.collect_garbage()?;
        Ok(rec)
    }

    /// Removes layers and indexes no image refers to.
    pub fn collect_garbage(&self) -> Result<()> {
        debug_assert!(self.exclusive);
        let images = self.images()?;
        let used_layers: std::collections::HashSet<String> = images
            .iter()
            .flat_map(|i| i.layers.iter().map(|l| l.digest.hex().to_string()))
            .collect();
        let used_indexes: std::collections::HashSet<String> =
            images.iter().map(|i| i.chain.hex().to_string()).collect();
        for (dir, used) in [("layers", &used_layers), ("indexes", &used_indexes)] {
            let d = self.root.join(dir);
            for entry in std::fs::read_dir(&d).map_err(io_at(&d))?.flatten() {
                let p = entry.path();
                let stem = p.file_stem().and_then(|s| s.to_str()).unwrap_or("");
                if !used.contains(stem) {
                    std::fs::remove_file(&p).map_err(io_at(&p))?;
                }
            }
        }
        Ok(())
    }

    /// The layer images (bottom first) and the merged index of an image, checked to exist.
    pub fn root_files(&self, rec: &ImageRecord) -> Result<(Vec<PathBuf>, PathBuf)> {
        let layers: Vec<PathBuf> = rec
            .layers
            .iter()
            .map(|l| self.layer_path(&l.digest))
            .collect();
        let index = self.index_path(&rec.chain);
        for p in layers.iter().chain(std::iter::once(&index)) {
            if !p.is_file() {
                return Err(ImageError::BadStore {
                    path: p.clone(),
                    what: format!(
                        "missing (needed by image {}); convert the image again",
                        rec.id
                    ),
                });
            }
        }
        Ok((layers, index))
    }
}
