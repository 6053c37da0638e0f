//! A sandbox built from an OCI bundle (`runsc create`): the root directory through hostfs
//! under a memory layer (the host directory is never written), the bundle's mounts in order,
//! and processes as the bundle's `process` describes them. The OCI types stay in the `oci`
//! crate: this module takes plain values.

use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fs::hostfs::HostFs;
use fs::vfs::{
    Creds as FsCreds, FileType, Location, MountNamespace, NewNode, Owner, ResolveFlags, Resolver,
    SetAttr,
};
use platform::kvm::KvmConfig;
use sentry::loader::{self, LoadError};
use sentry::procfs::ProcFs;
use sentry::{Creds, ProcessSpec};

use crate::mounts::{devfs, devpts, mount_point_in, tmpfs, UPPER_DEV};
use crate::{BootError, PlatformKind};

/// What kind of file system a bundle mount is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A host file or directory (`bind`, or options holding `bind`/`rbind`).
    Bind(PathBuf),
    /// A memory file system; `mode` for its root.
    Tmpfs { mode: u32 },
    /// The sandbox's /proc.
    Proc,
    /// A minimal read-only /sys.
    Sysfs,
    /// /dev/pts: a new devpts instance (the sandbox's own pseudo-terminals).
    Devpts,
    /// /dev/mqueue: the sandbox's POSIX message queues.
    Mqueue,
    /// /sys/fs/cgroup (empty).
    Cgroup,
}

/// One entry of the bundle's `mounts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleMount {
    /// Absolute path in the container.
    pub destination: String,
    pub kind: MountKind,
    pub read_only: bool,
}

/// The file system part of a bundle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bundle {
    /// The root directory on the host (`root.path`, made absolute against the bundle).
    pub root: PathBuf,
    /// `root.readonly`.
    pub root_read_only: bool,
    /// A ContainerFS root instead of `root`: the layers (bottom first) and merged index of a
    /// converted image (the `dev.runsc.image` annotation).
    pub root_image: Option<(Vec<PathBuf>, PathBuf)>,
    pub mounts: Vec<BundleMount>,
    /// `linux.maskedPaths`: directories hidden under an empty read-only tmpfs, other files
    /// under /dev/null (as runc masks them).
    pub masked_paths: Vec<String>,
    /// `linux.readonlyPaths`: files and directories made read-only where they are (runc's
    /// read-only bind mount of a path over itself).
    pub readonly_paths: Vec<String>,
}

/// A process of a bundle (`process`, or `runsc exec --process`).
#[derive(Debug, Default)]
pub struct BundleProcess {
    /// The program, when it is not `args[0]` looked up along PATH (a hook's `path`).
    pub path: Option<String>,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// `process.capabilities`, as masks (bit N: capability N). None (no `capabilities`)
    /// is what runc makes of it: every set empty.
    pub capabilities: Option<CapabilitySets>,
    /// `process.noNewPrivileges`.
    pub no_new_privileges: bool,
    /// `process.rlimits`: (resource number, soft, hard), set over the host's limits.
    pub rlimits: Vec<(u32, u64, u64)>,
    pub stdio: [Option<OwnedFd>; 3],
}

/// Checks `process.rlimits` as runc's setrlimit calls would: a known resource, the soft
/// limit within the hard one (EINVAL), at most fs.nr_open descriptors (EPERM).
fn check_rlimits(rlimits: &[(u32, u64, u64)]) -> Result<Vec<(usize, u64, u64)>, BootError> {
    rlimits
        .iter()
        .map(|&(resource, soft, hard)| {
            let bad = |why: &str| {
                Err(BootError::Container(format!(
                    "process.rlimits: resource {resource} (soft {soft}, hard {hard}): {why}"
                )))
            };
            if resource as usize >= sentry::task::RLIM_NLIMITS {
                return bad("no such resource");
            }
            if soft > hard {
                return bad("the soft limit is above the hard limit (setrlimit: invalid argument)");
            }
            // (glibc's resource type is u32, musl's c_int.)
            #[allow(clippy::unnecessary_cast)]
            let nofile = libc::RLIMIT_NOFILE as u32;
            if resource == nofile && hard > sentry::rlimit::NR_OPEN {
                return bad(&format!(
                    "above fs.nr_open, {} (setrlimit: operation not permitted)",
                    sentry::rlimit::NR_OPEN
                ));
            }
            Ok((resource as usize, soft, hard))
        })
        .collect()
}

/// The five capability sets of an OCI process (bit N: capability N).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapabilitySets {
    pub bounding: u64,
    pub effective: u64,
    pub inheritable: u64,
    pub permitted: u64,
    pub ambient: u64,
}

/// The credentials a bundle process starts with: what runc's init leaves for the
/// container's program once the kernel's execve has run. runc's init (finalizeNamespace)
/// holds every capability; it cuts the bounding set to `bounding`, keeps its capabilities
/// through setuid to the process's user (SECBIT_KEEP_CAPS), then capset()s the effective,
/// permitted and inheritable sets, raises each ambient capability (ignoring failures: one
/// that isn't both permitted and inheritable stays out) and calls execve, which for a
/// program without file capabilities gives root the bounding and inheritable sets and
/// anyone else the ambient set ([`sentry::caps::exec`]), within the old permitted set under
/// no_new_privs. The capset()s runc's would fail with EPERM are refused, naming the field.
pub fn process_creds(p: &BundleProcess) -> Result<Creds, BootError> {
    let mut creds = Creds::login(p.uid, p.gid, p.additional_gids.clone());
    let c = p.capabilities.unwrap_or_default();
    let valid = sentry::caps::CAP_VALID_MASK;
    for (field, mask) in [
        ("bounding", c.bounding),
        ("effective", c.effective),
        ("inheritable", c.inheritable),
        ("permitted", c.permitted),
        ("ambient", c.ambient),
    ] {
        if mask & !valid != 0 {
            return Err(BootError::Container(format!(
                "process.capabilities.{field}: {}: not a capability of this kernel",
                crate::caps::names(mask & !valid)
            )));
        }
    }
    if c.effective & !c.permitted != 0 {
        return Err(BootError::Container(format!(
            "process.capabilities.effective: {}: not in process.capabilities.permitted \
             (capset: operation not permitted)",
            crate::caps::names(c.effective & !c.permitted)
        )));
    }
    if c.inheritable & !c.bounding != 0 {
        return Err(BootError::Container(format!(
            "process.capabilities.inheritable: {}: not in process.capabilities.bounding \
             (capset: operation not permitted)",
            crate::caps::names(c.inheritable & !c.bounding)
        )));
    }
    creds.caps = sentry::caps::CapSets {
        bounding: c.bounding,
        effective: c.effective,
        inheritable: c.inheritable,
        permitted: c.permitted,
        ambient: c.ambient & c.permitted & c.inheritable,
        securebits: 0,
    };
    sentry::caps::exec(&mut creds, p.no_new_privileges);
    Ok(creds)
}

fn fail(what: impl std::fmt::Display) -> BootError {
    BootError::Io(
        "building the container's file system",
        std::io::Error::other(what.to_string()),
    )
}

fn errno_text(e: i32) -> std::io::Error {
    std::io::Error::from_raw_os_error(e)
}

fn owner0() -> Owner {
    Owner { uid: 0, gid: 0 }
}

/// A free anonymous device number for the n-th mount of a bundle.
fn mount_dev(n: usize) -> u64 {
    fs::dev::makedev(0, 64 + (n as u32 % 180))
}

const FILE_OVER_DIRECTORY: &str = "a file bind mount over a directory";

/// The directory that will hold `dest` (made if missing) and the name in it.
fn parent_of<'a>(resolver: &Resolver<'_>, dest: &'a str) -> Result<(Location, &'a str), BootError> {
    let (parent, name) = match dest.trim_end_matches('/').rsplit_once('/') {
        Some((p, n)) if !n.is_empty() => (if p.is_empty() { "/" } else { p }, n),
        _ => return Err(fail(format_args!("bind mount destination {dest:?}"))),
    };
    let dir = mount_point_in(resolver, parent.as_bytes(), true).map_err(fail)?;
    Ok((dir, name))
}

/// Replaces the file at `dest` (in the memory layer) with a copy of the host file `source`:
/// how a bind mount of a host file that hostfs doesn't serve (a device node) is given.
fn copy_file_in(resolver: &Resolver<'_>, dest: &str, source: &Path) -> Result<(), BootError> {
    let contents = std::fs::read(source)
        .map_err(|e| fail(format_args!("bind mount {}: {e}", source.display())))?;
    let (dir, name) = parent_of(resolver, dest)?;
    crate::container::replace_file(&dir, name.as_bytes(), &contents, dest, FILE_OVER_DIRECTORY)
}

/// The non-directory at `dest` that a file bind mount covers, made (empty, in the memory
/// layer) if the image has none, as runc makes the mount point.
fn file_mount_point(resolver: &Resolver<'_>, dest: &str) -> Result<Location, BootError> {
    let found = |loc: Location| {
        if loc.inode().file_type() == FileType::Directory {
            Err(fail(format_args!("{dest}: {FILE_OVER_DIRECTORY}")))
        } else {
            Ok(loc)
        }
    };
    match resolver.resolve(resolver.root, dest.as_bytes(), ResolveFlags::follow()) {
        Ok(loc) => return found(loc),
        Err(libc::ENOENT) => {}
        Err(e) => return Err(fail(format_args!("{dest}: {}", errno_text(e)))),
    }
    let (dir, name) = parent_of(resolver, dest)?;
    crate::container::replace_file(&dir, name.as_bytes(), b"", dest, FILE_OVER_DIRECTORY)?;
    let loc = resolver
        .resolve(resolver.root, dest.as_bytes(), ResolveFlags::follow())
        .map_err(|e| fail(format_args!("{dest}: {}", errno_text(e))))?;
    found(loc)
}

/// Builds the container's mount namespace from `bundle`.
pub fn build_namespace(bundle: &Bundle, procfs: &ProcFs) -> Result<Arc<MountNamespace>, BootError> {
    let root = match &bundle.root_image {
        Some((layers, index)) => {
            let cfs = crate::mounts::open_containerfs(layers, index)?;
            cfs.writable_root(tmpfs(UPPER_DEV, 0o755))
        }
        None => {
            let host = HostFs::new(&bundle.root).map_err(|e| {
                fail(format_args!(
                    "root {}: {}",
                    bundle.root.display(),
                    errno_text(e)
                ))
            })?;
            fs::overlay::new_overlay(tmpfs(UPPER_DEV, 0o755), host.root())
        }
    };
    let ns = Arc::new(MountNamespace::new(
        root,
        "overlay",
        "overlay",
        bundle.root_read_only,
    ));
    let top = ns.root();
    let creds = FsCreds::default();
    let resolver = Resolver {
        ns: &ns,
        root: &top,
        creds: &creds,
    };
    let at = |dest: &str| -> Result<Location, BootError> {
        mount_point_in(&resolver, dest.as_bytes(), true).map_err(fail)
    };
    let mut has_dev = false;
    for (i, m) in bundle.mounts.iter().enumerate() {
        let dest = m.destination.as_str();
        if !dest.starts_with('/') {
            return Err(fail(format_args!(
                "mount destination {dest:?} is not an absolute path"
            )));
        }
        let mounted = |e: i32| fail(format_args!("mount {dest}: {}", errno_text(e)));
        let owner = Owner { uid: 0, gid: 0 };
        match &m.kind {
            MountKind::Bind(source) => {
                let meta = std::fs::metadata(source)
                    .map_err(|e| fail(format_args!("bind mount {}: {e}", source.display())))?;
                if !meta.is_dir() && !meta.is_file() {
                    copy_file_in(&resolver, dest, source)?;
                    continue;
                }
                // Served live, and writing to the host unless read-only, as runc's bind
                // mount: a directory, or a single file (Docker's /etc/resolv.conf, which its
                // prestart hook rewrites after the sandbox has started).
                let options = fs::hostfs::HostFsOptions {
                    writable: !m.read_only,
                    ..Default::default()
                };
                let (fs, point) = if meta.is_dir() {
                    (HostFs::with_options(source, options), at(dest)?)
                } else {
                    (
                        HostFs::file_with_options(source, options),
                        file_mount_point(&resolver, dest)?,
                    )
                };
                let fs = fs.map_err(|e| {
                    fail(format_args!(
                        "bind mount {}: {}",
                        source.display(),
                        errno_text(e)
                    ))
                })?;
                ns.mount(
                    &point,
                    fs.root(),
                    "bind",
                    &source.display().to_string(),
                    m.read_only,
                )
                .map_err(mounted)?;
            }
            MountKind::Tmpfs { mode } => {
                let (root, fs_type) = if dest == "/dev" {
                    has_dev = true;
                    (devfs()?, "tmpfs")
                } else {
                    (tmpfs(mount_dev(i), *mode), "tmpfs")
                };
                ns.mount(&at(dest)?, root, fs_type, "tmpfs", m.read_only)
                    .map_err(mounted)?;
            }
            MountKind::Proc => {
                ns.mount(&at(dest)?, procfs.root(), "proc", "proc", m.read_only)
                    .map_err(mounted)?;
            }
            MountKind::Sysfs => {
                let sys = crate::container::minimal_sys()?;
                ns.mount(&at(dest)?, sys, "sysfs", "sysfs", true)
                    .map_err(mounted)?;
            }
            MountKind::Devpts => {
                ns.mount(
                    &at(dest)?,
                    devpts(mount_dev(i)),
                    "devpts",
                    "devpts",
                    m.read_only,
                )
                .map_err(mounted)?;
            }
            MountKind::Mqueue => {
                ns.mount(
                    &at(dest)?,
                    procfs.mqueue_root(),
                    "mqueue",
                    "mqueue",
                    m.read_only,
                )
                .map_err(mounted)?;
            }
            MountKind::Cgroup => {
                let (fs_type, ro) = ("cgroup2", true);
                let root = tmpfs(mount_dev(i), 0o755);
                let _ = owner;
                ns.mount(&at(dest)?, root, fs_type, fs_type, ro || m.read_only)
                    .map_err(mounted)?;
            }
        }
    }
    // A bundle without /dev still gets the sandbox's device nodes.
    if !has_dev {
        ns.mount(&at("/dev")?, devfs()?, "tmpfs", "devtmpfs", false)
            .map_err(|e| fail(format_args!("mount /dev: {}", errno_text(e))))?;
        ns.mount(
            &at("/dev/pts")?,
            devpts(mount_dev(999)),
            "devpts",
            "devpts",
            false,
        )
        .map_err(|e| fail(format_args!("mount /dev/pts: {}", errno_text(e))))?;
    }
    for path in &bundle.readonly_paths {
        let Ok(loc) = resolver.resolve(&top, path.as_bytes(), ResolveFlags::follow()) else {
            continue;
        };
        let (fs_type, source) = (loc.mount.fs_type.clone(), loc.mount.source.clone());
        ns.mount(&loc, loc.inode().clone(), &fs_type, &source, true)
            .map_err(|e| fail(format_args!("read-only path {path}: {}", errno_text(e))))?;
    }
    for (i, path) in bundle.masked_paths.iter().enumerate() {
        let Ok(loc) = resolver.resolve(&top, path.as_bytes(), ResolveFlags::follow()) else {
            continue;
        };
        let dev = mount_dev(1000 + i);
        let (cover, fs_type) = if loc.inode().file_type() == FileType::Directory {
            (tmpfs(dev, 0o555), "tmpfs")
        } else {
            // A file: a character device /dev/null in its place.
            let null = tmpfs(dev, 0o755)
                .create(b"null", NewNode::CharDevice(fs::dev::NULL), 0o666, owner0())
                .map_err(|e| fail(format_args!("masking {path}: {}", errno_text(e))))?;
            (null, "devtmpfs")
        };
        ns.mount(&loc, cover, fs_type, fs_type, true)
            .map_err(|e| fail(format_args!("masking {path}: {}", errno_text(e))))?;
    }
    Ok(ns)
}

/// The error runc gives for a program that can't be found, so that Docker shows the same
/// message: `exec: "/no/such": stat /no/such: no such file or directory`.
pub fn exec_error(name: &str, e: &LoadError) -> String {
    match e {
        LoadError::NotFound { .. } if !name.contains('/') => {
            format!("exec: \"{name}\": executable file not found in $PATH")
        }
        LoadError::NotFound { .. } => {
            format!("exec: \"{name}\": stat {name}: no such file or directory")
        }
        LoadError::PermissionDenied { .. } => format!("exec: \"{name}\": permission denied"),
        LoadError::IsADirectory { .. } => format!("exec: \"{name}\": is a directory"),
        e => format!("exec: \"{name}\": {e}"),
    }
}

/// Resolves a bundle process in the container's namespace: the program (along its PATH,
/// from its working directory, made if missing), credentials and environment.
pub fn process_spec(
    ns: &Arc<MountNamespace>,
    procfs: &Arc<ProcFs>,
    p: BundleProcess,
) -> Result<ProcessSpec, BootError> {
    let name = match &p.path {
        Some(path) => path.clone(),
        None => p.args.first().cloned().ok_or(BootError::NoProgram)?,
    };
    let creds = process_creds(&p)?;
    let rlimits = check_rlimits(&p.rlimits)?;
    let fs_creds = creds.fs_creds();
    let root = ns.root();
    let cwd = if p.cwd.is_empty() {
        "/".to_string()
    } else {
        p.cwd.clone()
    };
    if !cwd.starts_with('/') {
        return Err(BootError::Container(format!(
            "cwd {cwd:?}: must be an absolute path"
        )));
    }
    {
        let admin = FsCreds::default();
        let resolver = Resolver {
            ns,
            root: &root,
            creds: &admin,
        };
        if resolver
            .resolve(&root, cwd.as_bytes(), ResolveFlags::follow())
            .is_err()
        {
            // runc makes a missing working directory.
            let made = mount_point_in(&resolver, cwd.as_bytes(), true)
                .map_err(|e| BootError::Container(format!("cwd {cwd:?}: {e}")))?;
            let _ = made.inode().setattr(&SetAttr {
                uid: Some(p.uid),
                gid: Some(p.gid),
                ..SetAttr::default()
            });
        }
    }
    let search_path = p
        .env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(crate::container::DEFAULT_PATH)
        .as_bytes()
        .to_vec();
    let program = sentry::program::find(
        ns,
        cwd.as_bytes(),
        &fs_creds,
        name.as_bytes(),
        &search_path,
        loader::MAX_PROGRAM_SIZE,
    )
    .map_err(|e| BootError::Container(exec_error(&name, &e)))?;
    let argv: Vec<Vec<u8>> = p.args.iter().map(|a| a.as_bytes().to_vec()).collect();
    let (mut program, argv) = sentry::program::follow_scripts(program, argv, |interp| {
        sentry::program::open(
            ns,
            cwd.as_bytes(),
            &fs_creds,
            interp,
            loader::MAX_PROGRAM_SIZE,
        )
    })
    .map_err(|e| BootError::Container(exec_error(&name, &e.into_load_error(name.as_bytes()))))?;
    let path = PathBuf::from(String::from_utf8_lossy(&program.path).into_owned());
    let image = program
        .image(&path)
        .map_err(|e| BootError::Container(exec_error(&name, &e)))?;
    Ok(ProcessSpec {
        mounts: ns.clone(),
        procfs: procfs.clone(),
        program,
        image,
        argv,
        envp: p.env.into_iter().map(String::into_bytes).collect(),
        cwd: cwd.into_bytes(),
        creds,
        no_new_privs: p.no_new_privileges,
        rlimits,
        stdio: p.stdio,
    })
}

/// Opens the device of platform `kind` (/dev/kvm), before the sentry leaves the host's root
/// (`confine::pivot_to_empty_root`); None for a platform without one.
pub fn open_device(kind: PlatformKind) -> Result<Option<Arc<std::os::fd::OwnedFd>>, BootError> {
    match kind {
        PlatformKind::Kvm => Ok(Some(Arc::new(platform::kvm::open_device(
            &KvmConfig::default().device,
        )?))),
        PlatformKind::Systrap => Ok(None),
    }
}
