//! Container images for the sandbox: reading OCI image layouts and `docker save` archives
//! ([`source`]), converting each layer into an ImgFS image ([`convert`]) kept in a
//! content-addressed store with the image's config and the stack's merged index ([`store`],
//! `docs/image-store.md`).

pub mod convert;
pub mod digest;
pub mod error;
pub mod source;
pub mod store;
pub mod testing;

pub use convert::{convert, ConvertProgress, Converted, Quiet};
pub use digest::Digest;
pub use error::ImageError;
pub use store::{default_store, ImageRecord, LayerRecord, RunConfig, Store};
