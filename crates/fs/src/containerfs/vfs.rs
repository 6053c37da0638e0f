//! The merged tree as a read-only filesystem ([`Inode`]).
//!
//! A directory is a merged directory of the index: lookup is one binary search in the
//! index, readdir reads its sorted entries, and its attributes and xattrs are those of its
//! layer directory its record names (the topmost not `IMPLIED`). Anything else is a layer inode, served by that layer's
//! [`ImgInode`] (reads, link targets, xattrs, and mappings of the layer's own pages through
//! [`Mappable`]: no copy).
//!
//! Every file reports the merged tree's device number and the inode number
//! `(layer + 1) << 32 | layer inode`: stable, unique across layers, and shared by hard links
//! (one layer inode).

use std::any::Any;
use std::sync::Arc;

use super::index::{Index, DT_DIR};
use crate::imgfs::vfs::IMGFS_MAGIC;
use crate::imgfs::{ImgFs, ImgInode};
use crate::vfs::{DirEntry, FileType, Inode, Mappable, NewNode, Owner, SetAttr, StatFs};
use crate::{Errno, FileDescription, Stat};

/// The inode number of `ino` of layer `layer` in the merged tree.
pub fn merged_ino(layer: u32, ino: u32) -> u64 {
    (u64::from(layer) + 1) << 32 | u64::from(ino)
}

/// The read-only merged tree of a layer stack.
pub struct MergedFs {
    pub(super) layers: Vec<Arc<ImgFs>>,
    pub(super) index: Index,
    pub(super) dev: u64,
}

impl std::fmt::Debug for MergedFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MergedFs")
            .field("index", &self.index.path())
            .field("layers", &self.layers.len())
            .field("dev", &self.dev)
            .finish()
    }
}

impl MergedFs {
    /// A damaged index or layer found in use: a warning naming the file, and `EIO`.
    fn eio(&self, what: impl std::fmt::Display) -> Errno {
        tracing::warn!("containerfs: {what}");
        libc::EIO
    }

    fn layer(&self, layer: u32) -> Result<&Arc<ImgFs>, Errno> {
        self.layers.get(layer as usize).ok_or_else(|| {
            self.eio(format_args!(
                "{}: layer {layer} out of range",
                self.index.path().display()
            ))
        })
    }

    /// The handle of merged directory `dir`.
    fn dir(self: &Arc<Self>, dir: u32) -> Result<Arc<MergedInode>, Errno> {
        let rec = self.index.dir(dir).map_err(|e| self.eio(e))?;
        self.node(rec.layer, rec.ino, Some(dir), FileType::Directory)
    }

    fn node(
        self: &Arc<Self>,
        layer: u32,
        ino: u32,
        dir: Option<u32>,
        expect: FileType,
    ) -> Result<Arc<MergedInode>, Errno> {
        let inner = self.layer(layer)?.inode(ino)?;
        if inner.file_type() != expect {
            return Err(self.eio(format_args!(
                "{}: layer {layer} inode {ino} is a {:?}, the index says {expect:?}",
                self.index.path().display(),
                inner.file_type()
            )));
        }
        Ok(Arc::new(MergedInode {
            fs: self.clone(),
            layer,
            dir,
            inner,
        }))
    }

    /// The root directory.
    pub fn root(self: &Arc<Self>) -> Result<Arc<dyn Inode>, Errno> {
        Ok(self.dir(0)?)
    }
}

/// A file of the merged tree.
pub struct MergedInode {
    fs: Arc<MergedFs>,
    layer: u32,
    /// The merged directory index, for a directory.
    dir: Option<u32>,
    /// The layer's inode: attributes, data, link target, xattrs.
    inner: Arc<ImgInode>,
}

fn type_of(d_type: u8) -> Option<FileType> {
    Some(match d_type {
        libc::DT_REG => FileType::Regular,
        libc::DT_DIR => FileType::Directory,
        libc::DT_LNK => FileType::Symlink,
        libc::DT_CHR => FileType::CharDevice,
        libc::DT_BLK => FileType::BlockDevice,
        libc::DT_FIFO => FileType::Fifo,
        libc::DT_SOCK => FileType::Socket,
        _ => return None,
    })
}

impl MergedInode {
    fn merged_dir(&self) -> Result<u32, Errno> {
        self.dir.ok_or(libc::ENOTDIR)
    }
}

impl Inode for MergedInode {
    fn stat(&self) -> Result<Stat, Errno> {
        let mut st = self.inner.stat()?;
        st.dev = self.fs.dev;
        st.ino = merged_ino(self.layer, self.inner.ino());
        match self.dir {
            Some(d) => {
                let rec = self.fs.index.dir(d).map_err(|e| self.fs.eio(e))?;
                st.nlink = u64::from(rec.nlink);
                st.size = 16 * i64::from(rec.entry_count);
            }
            None => {
                if let Some(n) = self.fs.index.nlink_override(self.layer, self.inner.ino()) {
                    st.nlink = u64::from(n);
                }
            }
        }
        Ok(st)
    }

    fn file_type(&self) -> FileType {
        self.inner.file_type()
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn mappable(&self) -> Option<&dyn Mappable> {
        self.inner.mappable()
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        let dir = self.merged_dir()?;
        if name.len() > 255 {
            return Err(libc::ENAMETOOLONG);
        }
        let fs = &self.fs;
        let e = fs
            .index
            .lookup(dir, name)
            .map_err(|e| fs.eio(e))?
            .ok_or(libc::ENOENT)?;
        if e.d_type == DT_DIR {
            return Ok(fs.dir(e.target)?);
        }
        let t = type_of(e.d_type).ok_or_else(|| fs.eio("bad entry type"))?;
        Ok(fs.node(e.layer, e.target, None, t)?)
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        let dir = self.merged_dir()?;
        let fs = &self.fs;
        let mut out = Vec::new();
        for e in fs.index.entries(dir).map_err(|e| fs.eio(e))? {
            let e = e.map_err(|e| fs.eio(e))?;
            let file_type = type_of(e.d_type).ok_or_else(|| fs.eio("bad entry type"))?;
            let ino = if e.d_type == DT_DIR {
                let rec = fs.index.dir(e.target).map_err(|e| fs.eio(e))?;
                merged_ino(rec.layer, rec.ino)
            } else {
                merged_ino(e.layer, e.target)
            };
            out.push(DirEntry {
                name: e.name.to_vec(),
                ino,
                file_type,
            });
        }
        Ok(out)
    }

    fn create(
        &self,
        name: &[u8],
        node: NewNode,
        mode: u32,
        owner: Owner,
    ) -> Result<Arc<dyn Inode>, Errno> {
        self.inner.create(name, node, mode, owner)
    }

    fn create_tmpfile(
        &self,
        mode: u32,
        owner: Owner,
        linkable: bool,
    ) -> Result<Arc<dyn Inode>, Errno> {
        self.inner.create_tmpfile(mode, owner, linkable)
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Inode>) -> Result<(), Errno> {
        self.inner.link(name, target)
    }

    fn unlink(&self, name: &[u8], dir: bool) -> Result<(), Errno> {
        self.inner.unlink(name, dir)
    }

    fn rename(
        &self,
        old: &[u8],
        new_dir: &Arc<dyn Inode>,
        new: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        self.inner.rename(old, new_dir, new, flags)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        self.inner.read_at(offset, buf)
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        self.inner.write_at(offset, buf)
    }

    fn allocate(&self, mode: i32, offset: u64, len: u64) -> Result<(), Errno> {
        self.inner.allocate(mode, offset, len)
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        self.inner.readlink()
    }

    fn setattr(&self, attr: &SetAttr) -> Result<(), Errno> {
        self.inner.setattr(attr)
    }

    fn open(&self, flags: i32) -> Result<Option<Arc<dyn FileDescription>>, Errno> {
        self.inner.open(flags)
    }

    fn getxattr(&self, name: &[u8]) -> Result<Vec<u8>, Errno> {
        self.inner.getxattr(name)
    }

    fn acl(
        &self,
        kind: crate::vfs::acl::AclKind,
    ) -> Result<Option<Arc<crate::vfs::acl::Acl>>, Errno> {
        self.inner.acl(kind)
    }

    fn setxattr(&self, name: &[u8], value: &[u8], flags: i32) -> Result<(), Errno> {
        self.inner.setxattr(name, value, flags)
    }

    fn listxattr(&self) -> Result<Vec<Vec<u8>>, Errno> {
        self.inner.listxattr()
    }

    fn removexattr(&self, name: &[u8]) -> Result<(), Errno> {
        self.inner.removexattr(name)
    }

    fn statfs(&self) -> Result<StatFs, Errno> {
        let blocks = self
            .fs
            .layers
            .iter()
            .map(|l| l.image().header().image_size / 4096)
            .sum();
        Ok(StatFs {
            fs_type: IMGFS_MAGIC,
            block_size: 4096,
            blocks,
            blocks_free: 0,
            blocks_available: 0,
            files: self.fs.index.entry_count() + 1,
            files_free: 0,
            name_max: 255,
            flags: libc::ST_RDONLY as i64,
        })
    }

    fn read_only(&self) -> bool {
        true
    }
}
