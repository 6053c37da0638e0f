//! The file system `runsc do` gives a sandbox: the host root as the read-only lower layer of
//! an overlay whose upper layer is a tmpfs (writes land in memory, never on the host), with
//! the sandbox's own /proc, /dev (a tmpfs holding the sandbox's device nodes) and /dev/shm.
//! /tmp is the host's, seen through the overlay: a working directory under it stays
//! reachable.

use std::path::Path;
use std::sync::Arc;

use fs::hostfs::HostFs;
use fs::tmpfs::{Tmpfs, TmpfsOptions};
use fs::vfs::{Creds, Inode, MountNamespace, NewNode, Owner, ResolveFlags, Resolver};

use crate::BootError;

/// Device numbers of the sandbox's filesystems (anonymous, like Linux's 0:N).
const UPPER_DEV: u64 = fs::dev::makedev(0, 40);
const DEV_DEV: u64 = fs::dev::makedev(0, 41);
const SHM_DEV: u64 = fs::dev::makedev(0, 42);

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
fn tmpfs(dev: u64, mode: u32) -> Arc<dyn Inode> {
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
fn devfs() -> Result<Arc<dyn Inode>, BootError> {
    let root = tmpfs(DEV_DEV, 0o755);
    let owner = Owner { uid: 0, gid: 0 };
    let nodes = [
        (&b"null"[..], fs::dev::NULL),
        (b"zero", fs::dev::ZERO),
        (b"full", fs::dev::FULL),
        (b"random", fs::dev::RANDOM),
        (b"urandom", fs::dev::URANDOM),
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
    ];
    for (name, target) in links {
        root.create(name, NewNode::Symlink(target.to_vec()), 0o777, owner)
            .map_err(|e| mount_error("/dev", e))?;
    }
    for dir in [&b"pts"[..], b"shm"] {
        let mode = if dir == b"shm" { 0o1777 } else { 0o755 };
        root.create(dir, NewNode::Directory, mode, owner)
            .map_err(|e| mount_error("/dev", e))?;
    }
    Ok(root)
}

/// Builds the namespace: host `/` under a memory upper layer, then /proc, /dev and /dev/shm.
pub fn host_root(procfs: &sentry::procfs::ProcFs) -> Result<Arc<MountNamespace>, BootError> {
    let host = HostFs::new(Path::new("/")).map_err(|e| mount_error("/ (host root)", e))?;
    let root = fs::overlay::new_overlay(tmpfs(UPPER_DEV, 0o755), host.root());
    let ns = Arc::new(MountNamespace::new(root, "overlay", "overlay", false));
    let root = ns.root();
    let creds = Creds::default();
    let resolver = Resolver {
        ns: &ns,
        root: &root,
        creds: &creds,
    };
    let at = |path: &[u8]| {
        resolver
            .resolve(&root, path, ResolveFlags::follow())
            .map_err(|e| mount_error(&String::from_utf8_lossy(path), e))
    };
    ns.mount(&at(b"/proc")?, procfs.root(), "proc", "proc", false)
        .map_err(|e| mount_error("/proc", e))?;
    ns.mount(&at(b"/dev")?, devfs()?, "tmpfs", "devtmpfs", false)
        .map_err(|e| mount_error("/dev", e))?;
    ns.mount(
        &at(b"/dev/shm")?,
        tmpfs(SHM_DEV, 0o1777),
        "tmpfs",
        "shm",
        false,
    )
    .map_err(|e| mount_error("/dev/shm", e))?;
    Ok(ns)
}
