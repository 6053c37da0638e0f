//! The virtual file system: names, mounts and path resolution over [`Inode`]s.
//!
//! Filesystems implement [`Inode`]. The VFS gives inodes names ([`Dentry`], cached so that a
//! file has one identity), attaches filesystems to a tree ([`MountNamespace`]), resolves
//! paths with Linux's rules ([`Resolver`]), checks permissions ([`perm`]) and keeps open file
//! descriptions ([`OpenFile`]).

pub mod acl;
pub mod dentry;
pub mod file;
pub mod inode;
pub mod mappable;
pub mod mount;
pub mod perm;
pub mod resolve;
pub mod seals;
pub mod write_access;

pub use dentry::Dentry;
pub use file::{file_identity, set_shared_page_hooks, DirentFormat, OpenFile, SharedPageHooks};
pub use inode::*;
pub use mappable::{HostRegion, Mappable, MappedRange, Translation};
pub use mount::{
    flags as mount_flags, next_ns_ino, Location, Mount, MountInfo, MountMap, MountNamespace,
    Propagation, PropagationChange,
};
pub use perm::Creds;
pub use resolve::{Parent, ResolveFlags, Resolver};
