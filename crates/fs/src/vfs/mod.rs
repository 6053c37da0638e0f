//! The virtual file system: names, mounts and path resolution over [`Inode`]s.

pub mod inode;

pub use inode::*;
