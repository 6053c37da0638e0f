//! Why a conversion, or a use of the store, failed. Every error names what is at fault: the
//! source, the blob (by digest or path), the store file.

use std::path::PathBuf;

/// Failures of the image crate.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The SOURCE argument is not a reference this crate reads.
    #[error("{0}")]
    BadReference(String),
    /// The source does not hold the image asked for, or holds several and none was named.
    #[error("{source_name}: {what}")]
    NoSuchImage { source_name: String, what: String },
    /// A blob the manifest (or index, or config) refers to is not in the source.
    #[error("{source_name}: missing blob {blob}")]
    MissingBlob { source_name: String, blob: String },
    /// A blob's bytes do not have the digest they are named by.
    #[error("{source_name}: blob {blob}: digest mismatch: the content's digest is {actual}")]
    DigestMismatch {
        source_name: String,
        blob: String,
        actual: String,
    },
    /// A blob does not have the size its descriptor gives.
    #[error(
        "{source_name}: blob {blob}: size mismatch: {expected} bytes expected, {actual} found"
    )]
    SizeMismatch {
        source_name: String,
        blob: String,
        expected: u64,
        actual: u64,
    },
    /// A layer's uncompressed content is not the diff_id the config gives for it.
    #[error("{source_name}: layer {blob}: its uncompressed digest {actual} is not the config's diff_id {expected}")]
    DiffIdMismatch {
        source_name: String,
        blob: String,
        expected: String,
        actual: String,
    },
    /// A layer can't be read: truncated, bad compression, bad tar.
    #[error("{source_name}: layer {blob}: {what}")]
    CorruptLayer {
        source_name: String,
        blob: String,
        what: String,
    },
    /// A blob of a type this crate does not read (a foreign layer, bzip2, an artifact).
    #[error("{source_name}: blob {blob}: unsupported media type {media_type}")]
    UnsupportedMediaType {
        source_name: String,
        blob: String,
        media_type: String,
    },
    /// A manifest, index or config that is not what the specifications describe.
    #[error("{source_name}: {what}: {problem}")]
    Malformed {
        source_name: String,
        what: String,
        problem: String,
    },
    /// No image in the store has this name or digest (or a digest prefix matches several).
    #[error("{0}")]
    NotInStore(String),
    /// A store file that is not what this crate wrote.
    #[error("{}: {what}", path.display())]
    BadStore { path: PathBuf, what: String },
    /// The merged index of a layer stack could not be written.
    #[error(transparent)]
    Index(#[from] fs::containerfs::ContainerFsError),
}

/// A closure turning an `io::Error` into [`ImageError::Io`] naming `path`.
pub(crate) fn io_at(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ImageError {
    let path = path.into();
    move |source| ImageError::Io { path, source }
}

pub type Result<T, E = ImageError> = std::result::Result<T, E>;
