//! ImgFS in the VFS: an image as a read-only filesystem ([`Inode`]).
//!
//! [`ImgFs::open`] opens an image (O(1): the header is checked and the file mapped) and
//! [`ImgFs::root`] hands out its root directory. Inodes are cheap handles, the image and an
//! inode number, made on each lookup: the VFS caches dentries, so a file has one identity
//! per name (hard links are several handles with the same `st_ino`). Every answer comes from
//! the mapping, with the reader's checks: a damaged image gives `EIO` (and a warning naming
//! the image and the fault), never a panic.
//!
//! # What Linux's erofs answers, and so do we
//!
//! | operation | errno |
//! |---|---|
//! | open a regular file for writing, or with `O_TRUNC` | `EROFS` |
//! | open a directory for writing | `EISDIR` |
//! | create, mkdir, mknod, symlink, link, unlink, rmdir, rename, `O_TMPFILE` in a directory | `EROFS` (`ENOTDIR` on a non-directory) |
//! | write, fallocate, truncate, chmod, chown, utimes (`setattr`) | `EROFS` |
//! | setxattr, removexattr | `EROFS` |
//!
//! (The sentry's system calls check [`Inode::read_only`] and the mount's read-only flag
//! before they call the inode, in Linux's order; these answers are the last line.)
//!
//! Devices, fifos and sockets stored in an image are inodes like any other: `open` gives
//! `Ok(None)`, and the VFS serves character devices by number and refuses fifos (`ENXIO`).
//!
//! `statfs` reports [`IMGFS_MAGIC`], 4096-byte blocks, the image size in blocks with none
//! free, the inode count with none free, names of up to 255 bytes, and `ST_RDONLY`.
//!
//! # Device numbers
//!
//! Every file of one mounted image has the same `st_dev`: given in [`ImgFsOptions::dev`], or
//! else the next anonymous device number `0:N` with `N` counting up from
//! [`FIRST_ANON_MINOR`], so two images mounted in one sandbox never share a device number.
//!
//! # Whiteouts and opaque directories
//!
//! An image mounted by itself ([`ImgFsOptions::overlay_layer`] false, what `runsc do
//! --mount-image` does) is one complete tree: whiteout entries are absent (lookup `ENOENT`,
//! not listed) and the opaque flag has no effect, because there is nothing below to hide.
//!
//! An image used as a lower layer of an overlay (`overlay_layer` true) shows them in
//! overlayfs's own conventions, which [`crate::overlay`] already reads in its upper layer:
//! a whiteout entry is a character device 0:0 (mode `c---------`, owner 0:0, link count 1,
//! times 0, an inode number above every real one), and an opaque directory has the xattr
//! `trusted.overlay.opaque = "y"` (listed and readable, unless the image stores that xattr
//! itself). This is how Linux stacks erofs layers under overlayfs (composefs, containerd's
//! erofs snapshotter), so a layer reads the same to either.
//!
//! What a multi-layer overlay (ContainerFS) will need beyond today's one-upper-one-lower
//! [`crate::overlay`]:
//! - a list of lower layers, top first, each an ImgFS root opened with `overlay_layer`;
//! - lookup walks the layers top-down: a whiteout in a layer ends the walk (the name is
//!   absent); a non-directory is the answer unless a directory was already found above (then
//!   it ends the walk); directories merge, and an opaque one ends the walk after itself. The
//!   same `is_whiteout`/`is_opaque` tests the overlay applies to its upper layer today apply
//!   to every layer but the bottom one (in the bottom one, nothing lies below);
//! - readdir merges top-down: a name met in a higher layer, whiteouts included, hides the
//!   same name below, and listing stops at an opaque directory; whiteouts never show;
//! - copy-up reads from the topmost layer that has the file, and "does a lower layer have
//!   this name" (which decides whether unlink and rename leave a whiteout in the upper
//!   layer) asks the merged lower view, not one layer;
//! - the overlay hides `trusted.overlay.*` from programs already (`getxattr`, `listxattr`).

use std::any::Any;
use std::path::Path;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use super::error::ImageError;
use super::format::{self, PAGE_SIZE};
use super::reader::{Image, Ino};
use crate::vfs::acl::{Acl, AclKind};
use crate::vfs::{
    DirEntry, FileType, HostRegion, Inode, Mappable, MappedRange, NewNode, Owner, SetAttr, StatFs,
    Translation,
};
use crate::{Errno, FileDescription, Stat};

/// `statfs`'s `f_type` for ImgFS: the ASCII bytes "ImgF".
pub const IMGFS_MAGIC: i64 = 0x496d_6746;

/// The first minor of the anonymous device numbers given to images (0:256 and up; the
/// sandbox's own tmpfs and devfs use smaller ones).
pub const FIRST_ANON_MINOR: u32 = 256;

static NEXT_MINOR: AtomicU32 = AtomicU32::new(FIRST_ANON_MINOR);

/// The overlay's opaque-directory xattr.
const OPAQUE_XATTR: &[u8] = b"trusted.overlay.opaque";

/// How an image is presented.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ImgFsOptions {
    /// `st_dev` of every file; `None` picks the next anonymous device number.
    pub dev: Option<u64>,
    /// Show whiteouts and opaque directories in overlayfs's conventions, for use as an
    /// overlay's lower layer (module docs).
    pub overlay_layer: bool,
}

/// An open image, as a filesystem.
pub struct ImgFs {
    image: Image,
    dev: u64,
    overlay_layer: bool,
    /// Bytes of the image's files mapped by some address space (the mapping contract's
    /// bookkeeping; an image never changes, so nothing needs invalidating).
    mapped_bytes: AtomicU64,
}

impl std::fmt::Debug for ImgFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImgFs")
            .field("image", &self.image.path())
            .field("dev", &self.dev)
            .field("overlay_layer", &self.overlay_layer)
            .finish()
    }
}

impl ImgFs {
    /// Opens the image at `path` to be mounted by itself, on a new anonymous device number.
    pub fn open(path: impl AsRef<Path>) -> Result<Arc<ImgFs>, ImageError> {
        Self::open_with(path, ImgFsOptions::default())
    }

    /// Opens the image at `path` with `opts`.
    pub fn open_with(path: impl AsRef<Path>, opts: ImgFsOptions) -> Result<Arc<ImgFs>, ImageError> {
        Ok(Self::new(Image::open(path)?, opts))
    }

    /// A filesystem over an image already open.
    pub fn new(image: Image, opts: ImgFsOptions) -> Arc<ImgFs> {
        let dev = opts.dev.unwrap_or_else(next_anon_dev);
        Arc::new(ImgFs {
            image,
            dev,
            overlay_layer: opts.overlay_layer,
            mapped_bytes: AtomicU64::new(0),
        })
    }

    /// Bytes of this image's files currently mapped in some address space.
    pub fn mapped_bytes(&self) -> u64 {
        self.mapped_bytes.load(Ordering::Relaxed)
    }

    /// The image's mapping as a region the guest can map, if the image is a mapped file
    /// (an image held in a buffer, in tests, lends nothing).
    fn host_region(self: &Arc<Self>) -> Option<HostRegion> {
        self.image.file()?;
        let bytes = self.image.bytes();
        let base = std::ptr::NonNull::new(bytes.as_ptr().cast_mut())?;
        // The host maps the image's last partial page whole (zeros past the end).
        let len = (bytes.len() as u64).next_multiple_of(PAGE_SIZE);
        Some(HostRegion {
            key: Arc::as_ptr(self) as *const () as u64,
            base,
            len,
            owner: self.clone(),
        })
    }

    /// The root directory.
    pub fn root(self: &Arc<Self>) -> Arc<dyn Inode> {
        Arc::new(ImgInode {
            fs: self.clone(),
            ino: self.image.root(),
            whiteout: 0,
            file_type: FileType::Directory,
        })
    }

    /// The image.
    pub fn image(&self) -> &Image {
        &self.image
    }

    /// The device number its files report.
    pub fn dev(&self) -> u64 {
        self.dev
    }

    /// An errno for a reader error; damage is logged with the image and the fault.
    fn errno(&self, e: ImageError) -> Errno {
        let errno = e.errno();
        if errno == libc::EIO {
            tracing::warn!("imgfs: {e}");
        }
        errno
    }

    /// The handle of inode `ino` (its record checked; a damaged one gives `EIO`).
    pub fn inode(self: &Arc<Self>, ino: Ino) -> Result<Arc<ImgInode>, Errno> {
        let attrs = self.image.attrs(ino).map_err(|e| self.errno(e))?;
        Ok(Arc::new(ImgInode {
            fs: self.clone(),
            ino,
            whiteout: 0,
            file_type: vfs_type(attrs.file_type),
        }))
    }
}

/// The next anonymous device number `0:N` (N from [`FIRST_ANON_MINOR`] up), shared by every
/// read-only image filesystem of the process (ImgFS mounts, ContainerFS merged trees), so no
/// two of them report the same `st_dev`.
pub fn next_anon_dev() -> u64 {
    let minor = NEXT_MINOR.fetch_add(1, Ordering::Relaxed);
    crate::dev::makedev(0, minor)
}

pub(crate) fn vfs_type(t: format::FileType) -> FileType {
    match t {
        format::FileType::Regular => FileType::Regular,
        format::FileType::Directory => FileType::Directory,
        format::FileType::Symlink => FileType::Symlink,
        format::FileType::CharDevice => FileType::CharDevice,
        format::FileType::BlockDevice => FileType::BlockDevice,
        format::FileType::Fifo => FileType::Fifo,
        format::FileType::Socket => FileType::Socket,
    }
}

/// The inode number a whiteout shows in overlay-layer mode: `dir << 32 | position`, above
/// every real inode number (those fit in 32 bits) and unique in the image.
fn whiteout_ino(dir: Ino, position: u64) -> u64 {
    (u64::from(dir) << 32) | (position & 0xffff_ffff)
}

/// A file of an image.
pub struct ImgInode {
    fs: Arc<ImgFs>,
    /// The inode number; 0 for a whiteout.
    ino: Ino,
    /// For a whiteout (overlay-layer mode): the inode number it shows.
    whiteout: u64,
    file_type: FileType,
}

impl ImgInode {
    /// The filesystem (and through it the image) this file belongs to.
    pub fn fs(&self) -> &Arc<ImgFs> {
        &self.fs
    }

    /// The inode number in the image (0 for a whiteout), e.g. to find a regular file's data
    /// extent with [`Image::data_extent`] for mapping it.
    pub fn ino(&self) -> Ino {
        self.ino
    }

    /// Whether this is a whiteout shown as a 0:0 character device (overlay-layer mode).
    pub fn is_whiteout(&self) -> bool {
        self.ino == 0
    }

    fn image(&self) -> &Image {
        &self.fs.image
    }

    /// The error of a namespace change in this inode: EROFS, or ENOTDIR if not a directory.
    fn dir_op(&self) -> Errno {
        if self.file_type == FileType::Directory {
            libc::EROFS
        } else {
            libc::ENOTDIR
        }
    }

    fn opaque(&self) -> bool {
        self.fs.overlay_layer
            && self.file_type == FileType::Directory
            && self.image().is_opaque(self.ino).unwrap_or(false)
    }
}

/// Regular files lend the image's pages: the data extent is page aligned and its last page
/// is zero-filled past the end of the file (`docs/imgfs-format.md`), so a page of the image
/// is exactly the page of the file. Only `verify` checks the zero tails, so `translate`
/// checks the last page of a file before lending it, and hands out a copy if a damaged image
/// has bytes there.
impl Mappable for ImgInode {
    fn add_mapping(&self, range: MappedRange) {
        self.fs.mapped_bytes.fetch_add(range.len, Ordering::Relaxed);
    }

    fn remove_mapping(&self, range: MappedRange) {
        self.fs.mapped_bytes.fetch_sub(range.len, Ordering::Relaxed);
    }

    fn copy_mapping(&self, _src: MappedRange, dst: MappedRange) {
        self.add_mapping(dst);
    }

    fn translate(&self, offset: u64, _write: bool) -> Result<Translation, Errno> {
        let extent = self
            .image()
            .data_extent(self.ino)
            .map_err(|e| self.fs.errno(e))?;
        let Some(x) = extent.filter(|x| offset < x.mapped_len) else {
            return Ok(Translation::Copy);
        };
        let page_end = offset + PAGE_SIZE;
        if page_end > x.len {
            let tail = self.image().slice(x.offset + x.len, page_end - x.len);
            if !tail.is_some_and(|t| t.iter().all(|&b| b == 0)) {
                return Ok(Translation::Copy);
            }
        }
        Ok(match self.fs.host_region() {
            Some(region) => Translation::Region {
                region,
                offset: x.offset + offset,
            },
            None => Translation::Copy,
        })
    }

    fn map_internal(&self, offset: u64, len: usize) -> Result<&[u8], Errno> {
        match self.file_type {
            FileType::Regular => {}
            FileType::Directory => return Err(libc::EISDIR),
            _ => return Err(libc::EINVAL),
        }
        let data = self
            .image()
            .file_bytes(self.ino)
            .map_err(|e| self.fs.errno(e))?;
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(data.len());
        let end = start.saturating_add(len).min(data.len());
        Ok(&data[start..end])
    }
}

impl Inode for ImgInode {
    fn stat(&self) -> Result<Stat, Errno> {
        if self.is_whiteout() {
            return Ok(Stat {
                dev: self.fs.dev,
                ino: self.whiteout,
                nlink: 1,
                mode: libc::S_IFCHR,
                blksize: PAGE_SIZE as i64,
                ..Stat::default()
            });
        }
        let attrs = self.image().attrs(self.ino).map_err(|e| self.fs.errno(e))?;
        Ok(attrs.to_stat(self.fs.dev))
    }

    fn file_type(&self) -> FileType {
        self.file_type
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn mappable(&self) -> Option<&dyn Mappable> {
        (self.file_type == FileType::Regular).then_some(self as &dyn Mappable)
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        if self.file_type != FileType::Directory {
            return Err(libc::ENOTDIR);
        }
        if name.len() > format::MAX_NAME {
            return Err(libc::ENAMETOOLONG);
        }
        let found = self
            .image()
            .lookup_entry_index(self.ino, name)
            .map_err(|e| self.fs.errno(e))?;
        match found {
            None => Err(libc::ENOENT),
            Some((position, e)) if e.whiteout => {
                if !self.fs.overlay_layer {
                    return Err(libc::ENOENT);
                }
                Ok(Arc::new(ImgInode {
                    fs: self.fs.clone(),
                    ino: 0,
                    whiteout: whiteout_ino(self.ino, position),
                    file_type: FileType::CharDevice,
                }))
            }
            Some((_, e)) => Ok(self.fs.inode(e.ino)?),
        }
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        if self.file_type != FileType::Directory {
            return Err(libc::ENOTDIR);
        }
        let image = self.image();
        let err = |e| self.fs.errno(e);
        let mut out = Vec::new();
        let mut entries = image.read_dir(self.ino).map_err(err)?;
        loop {
            let position = entries.next_index();
            let Some(e) = entries.next() else { break };
            let e = e.map_err(err)?;
            match e.file_type {
                Some(t) => out.push(DirEntry {
                    name: e.name.to_vec(),
                    ino: u64::from(e.ino),
                    file_type: vfs_type(t),
                }),
                None if self.fs.overlay_layer => out.push(DirEntry {
                    name: e.name.to_vec(),
                    ino: whiteout_ino(self.ino, position),
                    file_type: FileType::CharDevice,
                }),
                None => {}
            }
        }
        Ok(out)
    }

    fn create(
        &self,
        _name: &[u8],
        _node: NewNode,
        _mode: u32,
        _owner: Owner,
    ) -> Result<Arc<dyn Inode>, Errno> {
        Err(self.dir_op())
    }

    fn create_tmpfile(
        &self,
        _mode: u32,
        _owner: Owner,
        _linkable: bool,
    ) -> Result<Arc<dyn Inode>, Errno> {
        Err(self.dir_op())
    }

    fn link(&self, _name: &[u8], _target: &Arc<dyn Inode>) -> Result<(), Errno> {
        Err(self.dir_op())
    }

    fn unlink(&self, _name: &[u8], _dir: bool) -> Result<(), Errno> {
        Err(self.dir_op())
    }

    fn rename(
        &self,
        _old: &[u8],
        _new_dir: &Arc<dyn Inode>,
        _new: &[u8],
        _flags: u32,
    ) -> Result<(), Errno> {
        Err(self.dir_op())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        match self.file_type {
            FileType::Regular => {}
            FileType::Directory => return Err(libc::EISDIR),
            _ => return Err(libc::EINVAL),
        }
        let data = self.map_internal(offset, buf.len())?;
        buf[..data.len()].copy_from_slice(data);
        Ok(data.len())
    }

    fn write_at(&self, _offset: u64, _buf: &[u8]) -> Result<usize, Errno> {
        Err(libc::EROFS)
    }

    fn allocate(&self, _mode: i32, _offset: u64, _len: u64) -> Result<(), Errno> {
        Err(libc::EROFS)
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        if self.file_type != FileType::Symlink {
            return Err(libc::EINVAL);
        }
        self.image()
            .readlink(self.ino)
            .map(<[u8]>::to_vec)
            .map_err(|e| self.fs.errno(e))
    }

    fn setattr(&self, _attr: &SetAttr) -> Result<(), Errno> {
        Err(libc::EROFS)
    }

    fn open(&self, flags: i32) -> Result<Option<Arc<dyn FileDescription>>, Errno> {
        let writes = flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0;
        match self.file_type {
            FileType::Directory if writes => Err(libc::EISDIR),
            FileType::Regular if writes => Err(libc::EROFS),
            // Regular files and directories are served with read_at/readdir; devices by
            // number and fifos (ENXIO for now) by the VFS.
            _ => Ok(None),
        }
    }

    fn getxattr(&self, name: &[u8]) -> Result<Vec<u8>, Errno> {
        if self.is_whiteout() {
            return Err(libc::ENODATA);
        }
        let value = self
            .image()
            .get_xattr(self.ino, name)
            .map_err(|e| self.fs.errno(e))?;
        match value {
            Some(v) => Ok(v.to_vec()),
            None if name == OPAQUE_XATTR && self.opaque() => Ok(b"y".to_vec()),
            None => Err(libc::ENODATA),
        }
    }

    /// An image keeps ACLs as the xattrs its tar entries carried. One that doesn't parse is
    /// treated as absent: the file's mode bits still apply.
    fn acl(&self, kind: AclKind) -> Result<Option<Arc<Acl>>, Errno> {
        match self.getxattr(kind.xattr_name()) {
            Ok(v) => Ok(Acl::from_xattr(&v).ok().flatten().map(Arc::new)),
            Err(libc::ENODATA) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn setxattr(&self, _name: &[u8], _value: &[u8], _flags: i32) -> Result<(), Errno> {
        Err(libc::EROFS)
    }

    fn listxattr(&self) -> Result<Vec<Vec<u8>>, Errno> {
        if self.is_whiteout() {
            return Ok(Vec::new());
        }
        let err = |e| self.fs.errno(e);
        let mut names = Vec::new();
        for x in self.image().xattrs(self.ino).map_err(err)? {
            names.push(x.map_err(err)?.0.to_vec());
        }
        if self.opaque() && !names.iter().any(|n| n == OPAQUE_XATTR) {
            names.push(OPAQUE_XATTR.to_vec());
        }
        Ok(names)
    }

    fn removexattr(&self, _name: &[u8]) -> Result<(), Errno> {
        Err(libc::EROFS)
    }

    fn statfs(&self) -> Result<StatFs, Errno> {
        let h = self.image().header();
        Ok(StatFs {
            fs_type: IMGFS_MAGIC,
            block_size: PAGE_SIZE as i64,
            blocks: h.image_size / PAGE_SIZE,
            blocks_free: 0,
            blocks_available: 0,
            files: h.inode_count,
            files_free: 0,
            name_max: format::MAX_NAME as i64,
            flags: libc::ST_RDONLY as i64,
        })
    }

    fn read_only(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imgfs::{build_from_tar, BuildOptions};

    /// A layer: dir/{a, b}, a whited-out `gone`, an opaque `opq/` holding `x`, a symlink,
    /// a hard link, a fifo, a device and xattrs.
    fn layer_tar() -> Vec<u8> {
        type B = tar::Builder<Vec<u8>>;
        fn add(b: &mut B, path: &str, kind: tar::EntryType, mode: u32, data: &[u8], link: &str) {
            let mut h = tar::Header::new_ustar();
            h.set_path(path).unwrap();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_mtime(1_700_000_000);
            h.set_uid(0);
            h.set_gid(0);
            h.set_size(data.len() as u64);
            if !link.is_empty() {
                h.set_link_name(link).unwrap();
            }
            if kind == tar::EntryType::Char {
                h.set_device_major(1).unwrap();
                h.set_device_minor(3).unwrap();
            }
            h.set_cksum();
            b.append(&h, data).unwrap();
        }
        let mut b = tar::Builder::new(Vec::new());
        use tar::EntryType as T;
        add(&mut b, "dir/", T::Directory, 0o755, b"", "");
        add(&mut b, "dir/a", T::Regular, 0o644, b"contents of a", "");
        add(&mut b, "dir/b", T::Regular, 0o4755, &[7u8; 5000], "");
        add(&mut b, ".wh.gone", T::Regular, 0o644, b"", "");
        add(&mut b, "opq/", T::Directory, 0o700, b"", "");
        add(&mut b, "opq/.wh..wh..opq", T::Regular, 0o644, b"", "");
        add(&mut b, "opq/x", T::Regular, 0o600, b"x", "");
        add(&mut b, "link", T::Symlink, 0o777, b"", "dir/a");
        add(&mut b, "hard", T::Link, 0o644, b"", "dir/a");
        add(&mut b, "fifo", T::Fifo, 0o640, b"", "");
        add(&mut b, "null", T::Char, 0o666, b"", "");
        b.append_pax_extensions([("SCHILY.xattr.user.k", &b"v"[..])])
            .unwrap();
        add(&mut b, "xa", T::Regular, 0o644, b"", "");
        b.into_inner().unwrap()
    }

    fn open(overlay_layer: bool) -> (tempfile::TempDir, Arc<ImgFs>) {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("layer.img");
        let tar = layer_tar();
        build_from_tar(&tar[..], "layer.tar", &out, &BuildOptions::default(), None).unwrap();
        let fs = ImgFs::open_with(
            &out,
            ImgFsOptions {
                dev: Some(crate::dev::makedev(0, 77)),
                overlay_layer,
            },
        )
        .unwrap();
        (dir, fs)
    }

    fn names(dir: &Arc<dyn Inode>) -> Vec<String> {
        dir.readdir()
            .unwrap()
            .into_iter()
            .map(|e| String::from_utf8(e.name).unwrap())
            .collect()
    }

    #[test]
    fn serves_the_tree() {
        let (_t, fs) = open(false);
        let root = fs.root();
        assert_eq!(
            names(&root),
            ["dir", "fifo", "hard", "link", "null", "opq", "xa"]
        );
        let st = root.stat().unwrap();
        assert_eq!((st.ino, st.dev), (1, crate::dev::makedev(0, 77)));
        assert_eq!(st.mode & libc::S_IFMT, libc::S_IFDIR);
        let a = root.lookup(b"dir").unwrap().lookup(b"a").unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(a.read_at(0, &mut buf).unwrap(), 13);
        assert_eq!(&buf[..13], b"contents of a");
        assert_eq!(a.read_at(3, &mut buf[..4]).unwrap(), 4);
        assert_eq!(&buf[..4], b"tent");
        assert_eq!(a.read_at(13, &mut buf).unwrap(), 0);
        assert_eq!(a.read_at(u64::MAX, &mut buf).unwrap(), 0);
        let hard = root.lookup(b"hard").unwrap();
        assert_eq!(hard.stat().unwrap().ino, a.stat().unwrap().ino);
        assert_eq!(hard.stat().unwrap().nlink, 2);
        let b = root.lookup(b"dir").unwrap().lookup(b"b").unwrap();
        assert_eq!(b.stat().unwrap().mode, libc::S_IFREG | 0o4755);
        assert_eq!(b.stat().unwrap().size, 5000);
        let link = root.lookup(b"link").unwrap();
        assert_eq!(link.file_type(), FileType::Symlink);
        assert_eq!(link.readlink().unwrap(), b"dir/a");
        assert_eq!(a.readlink(), Err(libc::EINVAL));
        let null = root.lookup(b"null").unwrap();
        assert_eq!(null.stat().unwrap().rdev, crate::dev::makedev(1, 3));
        assert!(null.open(libc::O_RDWR).unwrap().is_none());
        let fifo = root.lookup(b"fifo").unwrap();
        assert_eq!(fifo.file_type(), FileType::Fifo);
        assert!(fifo.open(libc::O_RDONLY).unwrap().is_none());
        let xa = root.lookup(b"xa").unwrap();
        assert_eq!(xa.getxattr(b"user.k").unwrap(), b"v");
        assert_eq!(xa.getxattr(b"user.none"), Err(libc::ENODATA));
        assert_eq!(xa.listxattr().unwrap(), vec![b"user.k".to_vec()]);
        assert_eq!(root.lookup(b"missing").err(), Some(libc::ENOENT));
        assert_eq!(a.lookup(b"x").err(), Some(libc::ENOTDIR));
        assert_eq!(root.lookup(&[b'n'; 256]).err(), Some(libc::ENAMETOOLONG));
        assert_eq!(root.read_at(0, &mut buf), Err(libc::EISDIR));
        assert_eq!(link.read_at(0, &mut buf), Err(libc::EINVAL));
        let s = root.statfs().unwrap();
        assert_eq!(s.fs_type, IMGFS_MAGIC);
        assert_eq!(s.flags & libc::ST_RDONLY as i64, libc::ST_RDONLY as i64);
        assert_eq!(s.files, 10);
        assert!(root.read_only());
    }

    #[test]
    fn whiteouts_are_absent_and_opaque_has_no_effect_when_mounted_alone() {
        let (_t, fs) = open(false);
        let root = fs.root();
        assert_eq!(root.lookup(b"gone").err(), Some(libc::ENOENT));
        let opq = root.lookup(b"opq").unwrap();
        assert_eq!(names(&opq), ["x"]);
        assert_eq!(opq.getxattr(OPAQUE_XATTR), Err(libc::ENODATA));
        assert!(opq.listxattr().unwrap().is_empty());
    }

    #[test]
    fn overlay_layer_mode_speaks_overlayfs() {
        let (_t, fs) = open(true);
        let root = fs.root();
        assert_eq!(
            names(&root),
            ["dir", "fifo", "gone", "hard", "link", "null", "opq", "xa"]
        );
        let gone = root.lookup(b"gone").unwrap();
        let st = gone.stat().unwrap();
        assert_eq!((st.mode, st.rdev, st.nlink), (libc::S_IFCHR, 0, 1));
        assert!(st.ino > u64::from(u32::MAX));
        let listed = root
            .readdir()
            .unwrap()
            .into_iter()
            .find(|e| e.name == b"gone")
            .unwrap();
        assert_eq!(
            (listed.ino, listed.file_type),
            (st.ino, FileType::CharDevice)
        );
        let opq = root.lookup(b"opq").unwrap();
        assert_eq!(opq.getxattr(OPAQUE_XATTR).unwrap(), b"y");
        assert_eq!(opq.listxattr().unwrap(), vec![OPAQUE_XATTR.to_vec()]);
        let dir = root.lookup(b"dir").unwrap();
        assert_eq!(dir.getxattr(OPAQUE_XATTR), Err(libc::ENODATA));
        // The overlay sees a whiteout in an upper layer made of an image.
        let lower = crate::tmpfs::Tmpfs::new(5).root();
        let owner = Owner { uid: 0, gid: 0 };
        lower
            .create(b"gone", NewNode::Regular, 0o644, owner)
            .unwrap();
        let opq_lower = lower
            .create(b"opq", NewNode::Directory, 0o755, owner)
            .unwrap();
        opq_lower
            .create(b"hidden", NewNode::Regular, 0o644, owner)
            .unwrap();
        let merged = crate::overlay::new_overlay(root, lower);
        assert_eq!(merged.lookup(b"gone").err(), Some(libc::ENOENT));
        assert_eq!(names(&merged.lookup(b"opq").unwrap()), ["x"]);
    }

    #[test]
    fn every_change_is_erofs() {
        let (_t, fs) = open(false);
        let root = fs.root();
        let a = root.lookup(b"dir").unwrap().lookup(b"a").unwrap();
        let owner = Owner { uid: 0, gid: 0 };
        assert_eq!(
            root.create(b"new", NewNode::Regular, 0o644, owner).err(),
            Some(libc::EROFS)
        );
        assert_eq!(
            root.create(b"dir", NewNode::Directory, 0o755, owner).err(),
            Some(libc::EROFS)
        );
        assert_eq!(
            a.create(b"new", NewNode::Regular, 0o644, owner).err(),
            Some(libc::ENOTDIR)
        );
        assert_eq!(
            root.create_tmpfile(0o600, owner, true).err(),
            Some(libc::EROFS)
        );
        assert_eq!(root.link(b"l2", &a), Err(libc::EROFS));
        assert_eq!(root.unlink(b"xa", false), Err(libc::EROFS));
        assert_eq!(root.unlink(b"dir", true), Err(libc::EROFS));
        assert_eq!(root.rename(b"xa", &root, b"xb", 0), Err(libc::EROFS));
        assert_eq!(a.write_at(0, b"x"), Err(libc::EROFS));
        assert_eq!(a.allocate(0, 0, 1), Err(libc::EROFS));
        for attr in [
            SetAttr {
                mode: Some(0o600),
                ..Default::default()
            },
            SetAttr {
                uid: Some(1),
                ..Default::default()
            },
            SetAttr {
                size: Some(0),
                ..Default::default()
            },
            SetAttr {
                mtime: Some((1, 2)),
                ..Default::default()
            },
        ] {
            assert_eq!(a.setattr(&attr), Err(libc::EROFS));
            assert_eq!(root.setattr(&attr), Err(libc::EROFS));
        }
        assert_eq!(a.setxattr(b"user.x", b"1", 0), Err(libc::EROFS));
        assert_eq!(a.removexattr(b"user.x"), Err(libc::EROFS));
        for flags in [libc::O_WRONLY, libc::O_RDWR, libc::O_RDONLY | libc::O_TRUNC] {
            assert_eq!(a.open(flags).err(), Some(libc::EROFS));
            assert_eq!(root.open(flags).err(), Some(libc::EISDIR));
        }
        assert!(a.open(libc::O_RDONLY).unwrap().is_none());
    }

    #[test]
    fn images_get_distinct_devices() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("l.img");
        build_from_tar(&layer_tar()[..], "l", &out, &BuildOptions::default(), None).unwrap();
        let a = ImgFs::open(&out).unwrap();
        let b = ImgFs::open(&out).unwrap();
        assert_ne!(a.dev(), b.dev());
        assert_eq!(a.root().stat().unwrap().dev, a.dev());
    }

    #[test]
    fn a_damaged_image_gives_eio_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("l.img");
        build_from_tar(&layer_tar()[..], "l", &out, &BuildOptions::default(), None).unwrap();
        let mut bytes = std::fs::read(&out).unwrap();
        let h = Image::from_bytes("x", bytes.clone())
            .unwrap()
            .header()
            .clone();
        // Scribble over every inode record but the root's, and every entry's name offset.
        let inodes = h.inode_table_offset as usize;
        for b in &mut bytes[inodes + 96..inodes + 96 * h.inode_count as usize] {
            *b = 0xff;
        }
        let entries = h.entry_table_offset as usize;
        for i in 0..h.entry_count as usize {
            bytes[entries + 16 * i + 4..entries + 16 * i + 8].copy_from_slice(&[0xee; 4]);
        }
        let fs = ImgFs::new(
            Image::from_bytes("damaged", bytes).unwrap(),
            ImgFsOptions::default(),
        );
        let root = fs.root();
        assert_eq!(root.readdir().err(), Some(libc::EIO));
        assert_eq!(root.lookup(b"dir").err(), Some(libc::EIO));
    }
}
