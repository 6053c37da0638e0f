//! ContainerFS: a container's root filesystem, its image's ImgFS layers stacked with OCI
//! rules under a writable layer.
//!
//! - [`write_index`] merges a layer stack once, at conversion time, into a *merged index*
//!   (`docs/containerfs-index.md`): every path of the merged tree mapped to the layer inode
//!   that holds it, whiteouts and opaque directories already applied, each directory's
//!   entries sorted. A lookup in the sandbox is then one binary search whatever the number
//!   of layers.
//! - [`ContainerFs::open`] opens the layers (O(1) each) and the index (checked whole), and
//!   checks that the index was made from exactly these layers.
//! - [`ContainerFs::root`] is the read-only merged tree ([`vfs::MergedFs`]): files read and
//!   map the layers' own pages. [`ContainerFs::writable_root`] puts the overlay
//!   ([`crate::overlay`]: copy-up, whiteouts, merged readdir, stable inode numbers) of a
//!   writable upper directory over it.

pub mod index;
pub mod merge;
pub mod vfs;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::imgfs::{Image, ImageError, ImgFs, ImgFsOptions};
use crate::vfs::Inode;

pub use vfs::{merged_ino, MergedFs, MergedInode};

/// Why a layer stack or its index can't be used. Each names the file at fault.
#[derive(Debug, thiserror::Error)]
pub enum ContainerFsError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A layer image is damaged or unreadable (the error names it).
    #[error(transparent)]
    Layer(#[from] ImageError),
    /// The index is damaged, or was not made from these layers.
    #[error("{}: {what}", path.display())]
    Index { path: PathBuf, what: String },
    #[error("{0}")]
    Usage(String),
}

fn check_count(n: usize) -> Result<(), ContainerFsError> {
    if n == 0 || n > index::MAX_LAYERS as usize {
        return Err(ContainerFsError::Usage(format!(
            "{n} layers: a stack has 1 to {} layers",
            index::MAX_LAYERS
        )));
    }
    Ok(())
}

/// Checks every layer (`imgfs::verify`: every rule and checksum) and writes the merged index
/// of `layers` (bottom first) to `out`, atomically: a temporary file beside it renamed over
/// it. The same layers always give the same bytes.
pub fn write_index(layers: &[&Path], out: &Path) -> Result<(), ContainerFsError> {
    check_count(layers.len())?;
    let mut images = Vec::with_capacity(layers.len());
    for path in layers {
        let image = Image::open(path)?;
        crate::imgfs::verify(&image, &mut |_| {})?;
        images.push(image);
    }
    let bytes = merge::merge(&images)?.encode();
    write_atomically(out, &bytes)
}

fn write_atomically(out: &Path, bytes: &[u8]) -> Result<(), ContainerFsError> {
    use std::io::Write as _;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ContainerFsError::Io { path, source }
    };
    let mut name = std::ffi::OsString::from(".");
    name.push(out.file_name().unwrap_or_default());
    name.push(format!(".tmp{}", std::process::id()));
    let tmp = out.with_file_name(name);
    let result = (|| {
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(bytes).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, out).map_err(io(out))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// An opened layer stack with its merged index.
#[derive(Clone)]
pub struct ContainerFs {
    merged: Arc<MergedFs>,
    root: Arc<dyn Inode>,
}

impl std::fmt::Debug for ContainerFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.merged.fmt(f)
    }
}

impl ContainerFs {
    /// Opens `layers` (bottom first) and their merged `index`. Each layer is checked as
    /// `Image::open` does (its header, O(1)) and must be the very image the index was made
    /// from (size, inode count and header digest, which covers the layer's metadata digest);
    /// the index is checked whole.
    pub fn open(layers: &[PathBuf], index: &Path) -> Result<ContainerFs, ContainerFsError> {
        check_count(layers.len())?;
        let idx = index::Index::open(index)?;
        let mismatch = |what: String| ContainerFsError::Index {
            path: index.to_path_buf(),
            what,
        };
        if idx.header().layer_count as usize != layers.len() {
            return Err(mismatch(format!(
                "made for {} layers, given {}",
                idx.header().layer_count,
                layers.len()
            )));
        }
        let mut fss = Vec::with_capacity(layers.len());
        for (i, path) in layers.iter().enumerate() {
            let image = Image::open(path)?;
            let h = image.header();
            let rec = idx
                .layer(i as u32)
                .ok_or_else(|| mismatch(format!("layer {i}: no record")))?;
            if rec.image_size != h.image_size
                || rec.inode_count != h.inode_count
                || rec.header_sha256 != h.header_sha256
            {
                return Err(mismatch(format!(
                    "layer {i} ({}) is not the image this index was made from",
                    path.display()
                )));
            }
            fss.push(ImgFs::new(image, ImgFsOptions::default()));
        }
        let merged = Arc::new(MergedFs {
            layers: fss,
            index: idx,
            dev: crate::imgfs::vfs::next_anon_dev(),
        });
        // The root must be a directory of its layer.
        let root = merged.root().map_err(|e| {
            mismatch(format!(
                "the root directory can't be read: {}",
                std::io::Error::from_raw_os_error(e)
            ))
        })?;
        Ok(ContainerFs { merged, root })
    }

    /// The read-only merged tree's root.
    pub fn root(&self) -> Arc<dyn Inode> {
        self.root.clone()
    }

    /// The merged tree under a writable `upper` directory (a tmpfs root): the overlay of
    /// [`crate::overlay`], as `runsc do` puts a tmpfs over the host root.
    pub fn writable_root(&self, upper: Arc<dyn Inode>) -> Arc<dyn Inode> {
        crate::overlay::new_overlay(upper, self.root())
    }

    /// The merged tree's device number (`st_dev` of every file not copied up).
    pub fn dev(&self) -> u64 {
        self.merged.dev
    }

    /// The merged tree as a filesystem.
    pub fn merged(&self) -> &Arc<MergedFs> {
        &self.merged
    }
}
