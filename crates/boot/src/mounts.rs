//! The file system `runsc do` gives a sandbox: the host root as the read-only lower layer of
//! an overlay whose upper layer is a tmpfs (writes land in memory, never on the host), with
//! the sandbox's own /proc, /dev (a tmpfs holding the sandbox's device nodes) and /dev/shm.
//! /tmp is the host's, seen through the overlay: a working directory under it stays
//! reachable. ImgFS images given with `--mount-image` are mounted read-only last, in order.

use std::os::unix::ffi::OsStrExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fs::containerfs::ContainerFs;
use fs::hostfs::HostFs;
use fs::imgfs::{Fault, ImgFs};
use fs::tmpfs::{Tmpfs, TmpfsOptions};
use fs::vfs::{
    Creds, FileType, Inode, Location, MountNamespace, NewNode, Owner, ResolveFlags, Resolver,
};

use crate::{BootError, ImageMount};

/// Device numbers of the sandbox's filesystems (anonymous, like Linux's 0:N).
pub(crate) const UPPER_DEV: u64 = fs::dev::makedev(0, 40);
const DEV_DEV: u64 = fs::dev::makedev(0, 41);
const SHM_DEV: u64 = fs::dev::makedev(0, 42);
const PTS_DEV: u64 = fs::dev::makedev(0, 44);

/// A new devpts instance's root (slaves mode 0620, group tty (5), as Docker and systemd
/// mount it).
pub(crate) fn devpts(dev: u64) -> Arc<dyn Inode> {
    fs::devpts::Devpts::new(dev, 0o620, 5).root()
}

fn mount_error(what: &str, errno: i32) -> BootError {
    BootError::Io(
        "building the sandbox's file system",
        std::io::Error::other(format!(
            "{what}: {}",
            std::io::Error::from_raw_os_error(errno)
        )),
    )
}

/// A tmpfs owned by root with `mode` on its root directory.
pub(crate) fn tmpfs(dev: u64, mode: u32) -> Arc<dyn Inode> {
    Tmpfs::with_options(
        dev,
        TmpfsOptions {
            root_mode: mode,
            root_owner: Owner { uid: 0, gid: 0 },
            ..TmpfsOptions::default()
        },
    )
    .root()
}

/// The sandbox's /dev: device nodes served by the sentry, and the usual links.
pub(crate) fn devfs() -> Result<Arc<dyn Inode>, BootError> {
    let root = tmpfs(DEV_DEV, 0o755);
    let owner = Owner { uid: 0, gid: 0 };
    let nodes = [
        (&b"null"[..], fs::dev::NULL),
        (b"zero", fs::dev::ZERO),
        (b"full", fs::dev::FULL),
        (b"random", fs::dev::RANDOM),
        (b"urandom", fs::dev::URANDOM),
        (b"tty", fs::dev::TTY),
    ];
    for (name, rdev) in nodes {
        root.create(name, NewNode::CharDevice(rdev), 0o666, owner)
            .map_err(|e| mount_error("/dev", e))?;
    }
    let links = [
        (&b"stdin"[..], &b"/proc/self/fd/0"[..]),
        (b"stdout", b"/proc/self/fd/1"),
        (b"stderr", b"/proc/self/fd/2"),
        (b"fd", b"/proc/self/fd"),
        // As runc makes it: the devpts mounted on /dev/pts serves /dev/ptmx.
        (b"ptmx", b"pts/ptmx"),
    ];
    for (name, target) in links {
        root.create(name, NewNode::Symlink(target.to_vec()), 0o777, owner)
            .map_err(|e| mount_error("/dev", e))?;
    }
    for dir in [&b"pts"[..], b"shm", b"mqueue"] {
        let mode = if dir == b"pts" { 0o755 } else { 0o1777 };
        root.create(dir, NewNode::Directory, mode, owner)
            .map_err(|e| mount_error("/dev", e))?;
    }
    Ok(root)
}

/// An image opened for `--mount-image`, not yet mounted.
pub struct OpenImage {
    spec: ImageMount,
    fs: Arc<ImgFs>,
}

fn image_error(spec: &ImageMount, problem: impl std::fmt::Display) -> BootError {
    BootError::MountImage {
        image: spec.image.clone(),
        target: spec.target.clone(),
        problem: problem.to_string(),
    }
}

/// Opens every image (O(1) each: header checked, file mapped), before any VM exists.
pub fn open_images(specs: &[ImageMount]) -> Result<Vec<OpenImage>, BootError> {
    specs
        .iter()
        .map(|spec| {
            if spec
                .target
                .as_os_str()
                .as_bytes()
                .iter()
                .all(|&b| b == b'/')
            {
                return Err(image_error(
                    spec,
                    "mounting an image over / is not supported",
                ));
            }
            // The reader's error names the image already; the BootError names it once.
            let fs = ImgFs::open(&spec.image).map_err(|e| match e.fault {
                Fault::Io(e) => image_error(spec, format_args!("cannot read the image: {e}")),
                fault => image_error(spec, format_args!("not a valid ImgFS image: {fault}")),
            })?;
            Ok(OpenImage {
                spec: spec.clone(),
                fs,
            })
        })
        .collect()
}

/// The directory at `target`, made (like `mkdir -p`, mode 0755, owner root) where it is
/// missing: in the overlay's memory layer, never on the host.
pub(crate) fn mount_point(resolver: &Resolver<'_>, target: &[u8]) -> Result<Location, String> {
    mount_point_in(resolver, target, false)
}

/// [`mount_point`]; with `over_read_only_mount`, directories are made in the memory layer
/// of a mount that is read-only for the sandbox (a bundle's `root.readonly`), as runc makes
/// mount points before it remounts the root read-only.
pub(crate) fn mount_point_in(
    resolver: &Resolver<'_>,
    target: &[u8],
    over_read_only_mount: bool,
) -> Result<Location, String> {
    let describe = |path: &[u8], errno: i32| {
        format!(
            "{}: {}",
            String::from_utf8_lossy(path),
            std::io::Error::from_raw_os_error(errno)
        )
    };
    let mut cur = resolver.root.clone();
    let mut prefix = Vec::new();
    for name in target.split(|&b| b == b'/').filter(|c| !c.is_empty()) {
        prefix.push(b'/');
        prefix.extend_from_slice(name);
        cur = match resolver.resolve(resolver.root, &prefix, ResolveFlags::follow()) {
            Ok(loc) => loc,
            Err(libc::ENOENT) => {
                if (cur.mount.read_only() && !over_read_only_mount) || cur.inode().read_only() {
                    return Err(format!(
                        "cannot create the mount point: {}",
                        describe(&prefix, libc::EROFS)
                    ));
                }
                let owner = Owner { uid: 0, gid: 0 };
                let made = cur
                    .inode()
                    .create(name, NewNode::Directory, 0o755, owner)
                    .map_err(|e| {
                        format!("cannot create the mount point: {}", describe(&prefix, e))
                    })?;
                cur.dentry.insert_child(name, made);
                resolver
                    .resolve(resolver.root, &prefix, ResolveFlags::follow())
                    .map_err(|e| describe(&prefix, e))?
            }
            Err(e) => return Err(describe(&prefix, e)),
        };
    }
    if cur.inode().file_type() != FileType::Directory {
        return Err(describe(target, libc::ENOTDIR));
    }
    Ok(cur)
}

/// Builds the namespace: host `/` under a memory upper layer, then /proc, /dev and /dev/shm,
/// then the images.
pub fn host_root(
    procfs: &sentry::procfs::ProcFs,
    images: Vec<OpenImage>,
    volumes: &[crate::Volume],
) -> Result<Arc<MountNamespace>, BootError> {
    let host = HostFs::new(Path::new("/")).map_err(|e| mount_error("/ (host root)", e))?;
    let root = fs::overlay::new_overlay(tmpfs(UPPER_DEV, 0o755), host.root());
    let ns = Arc::new(MountNamespace::new(root, "overlay", "overlay", false));
    populate(&ns, procfs, images, volumes)?;
    Ok(ns)
}

/// Opens a ContainerFS layer stack (bottom first) with its merged index, before any VM
/// exists: each layer's header and the whole index are checked, and the index must have been
/// made from these layers.
pub fn open_containerfs(layers: &[PathBuf], index: &Path) -> Result<ContainerFs, BootError> {
    Ok(ContainerFs::open(layers, index)?)
}

/// Builds the namespace of a container: the merged layers under a memory upper layer (the
/// same overlay as [`host_root`]'s), then /proc, /dev and /dev/shm (their mount points made
/// in the memory layer where the image lacks them), then the images.
pub fn containerfs_root(
    procfs: &sentry::procfs::ProcFs,
    rootfs: &ContainerFs,
    images: Vec<OpenImage>,
    volumes: &[crate::Volume],
) -> Result<Arc<MountNamespace>, BootError> {
    let root = rootfs.writable_root(tmpfs(UPPER_DEV, 0o755));
    let ns = Arc::new(MountNamespace::new(root, "overlay", "overlay", false));
    populate(&ns, procfs, images, volumes)?;
    Ok(ns)
}

/// Mounts /proc, /dev, /dev/shm and the images on a namespace whose root is mounted.
fn populate(
    ns: &Arc<MountNamespace>,
    procfs: &sentry::procfs::ProcFs,
    images: Vec<OpenImage>,
    volumes: &[crate::Volume],
) -> Result<(), BootError> {
    let root = ns.root();
    let creds = Creds::default();
    let resolver = Resolver {
        ns,
        root: &root,
        creds: &creds,
    };
    let at = |path: &[u8]| {
        mount_point(&resolver, path).map_err(|problem| {
            BootError::Io(
                "building the sandbox's file system",
                std::io::Error::other(problem),
            )
        })
    };
    ns.mount(&at(b"/proc")?, procfs.root(), "proc", "proc", false)
        .map_err(|e| mount_error("/proc", e))?;
    ns.mount(&at(b"/dev")?, devfs()?, "tmpfs", "devtmpfs", false)
        .map_err(|e| mount_error("/dev", e))?;
    ns.mount(
        &at(b"/dev/pts")?,
        devpts(PTS_DEV),
        "devpts",
        "devpts",
        false,
    )
    .map_err(|e| mount_error("/dev/pts", e))?;
    ns.mount(
        &at(b"/dev/shm")?,
        tmpfs(SHM_DEV, 0o1777),
        "tmpfs",
        "shm",
        false,
    )
    .map_err(|e| mount_error("/dev/shm", e))?;
    ns.mount(
        &at(b"/dev/mqueue")?,
        procfs.mqueue_root(),
        "mqueue",
        "mqueue",
        false,
    )
    .map_err(|e| mount_error("/dev/mqueue", e))?;
    for image in images {
        let at = mount_point(&resolver, image.spec.target.as_os_str().as_bytes())
            .map_err(|problem| image_error(&image.spec, problem))?;
        // /proc/mounts shows the image's absolute path.
        let source = std::fs::canonicalize(&image.spec.image)
            .unwrap_or_else(|_| image.spec.image.clone())
            .display()
            .to_string();
        ns.mount(&at, image.fs.root(), "imgfs", &source, true)
            .map_err(|e| image_error(&image.spec, std::io::Error::from_raw_os_error(e)))?;
    }
    for v in volumes {
        let problem = |p: String| BootError::Volume {
            host: v.source.clone(),
            target: v.target.clone(),
            problem: p,
        };
        let fs = HostFs::with_options(
            &v.source,
            fs::hostfs::HostFsOptions {
                writable: !v.read_only,
                ..Default::default()
            },
        )
        .map_err(|e| problem(std::io::Error::from_raw_os_error(e).to_string()))?;
        let at = mount_point(&resolver, v.target.as_os_str().as_bytes()).map_err(problem)?;
        let source = std::fs::canonicalize(&v.source)
            .unwrap_or_else(|_| v.source.clone())
            .display()
            .to_string();
        ns.mount(&at, fs.root(), "bind", &source, v.read_only)
            .map_err(|e| problem(std::io::Error::from_raw_os_error(e).to_string()))?;
    }
    Ok(())
}
