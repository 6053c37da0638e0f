//! Builds a sandbox from what the user asked for and runs it.
//!
//! `runsc do` is the first way in: a program from the host file system, the caller's
//! environment, working directory, credentials and standard streams.

pub mod bundle;
pub mod caps;
pub mod confine;
pub mod container;
pub mod identity;
pub mod landlock;
pub mod mounts;
pub mod netns;
pub mod platform_thread;
pub mod seccomp;

use std::ffi::OsString;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use platform::SyscallPath;
use sentry::loader::{self, LoadError};
use sentry::{Creds, ProcessSpec, SentryError};

/// Platforms `runsc` knows by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlatformKind {
    Kvm,
    Systrap,
}

/// Options of `runsc do`.
#[derive(Debug, Clone)]
pub struct DoOptions {
    pub platform: PlatformKind,
    pub syscall_path: SyscallPath,
    /// Bytes of memory the sandbox may use (its memory file); None for the default.
    pub total_memory: Option<u64>,
    /// Program and arguments.
    pub argv: Vec<OsString>,
    /// ImgFS images to mount read-only (`--mount-image IMG:/PATH`), in order.
    pub image_mounts: Vec<ImageMount>,
    /// Host directories bind-mounted (`--volume HOSTDIR:/PATH[:ro]`), after the images.
    pub volumes: Vec<Volume>,
    /// The sentry's own seccomp filter (`--seccomp`).
    pub seccomp: seccomp::Mode,
    /// The most tasks (threads included) the sandbox may have (`--pids-limit`, as the OCI
    /// `linux.resources.pids.limit`): fork and clone past it give EAGAIN. None: no limit.
    pub pids_limit: Option<u64>,
}

/// A host directory bind-mounted in the sandbox (`--volume HOSTDIR:/PATH[:ro|:rw]`, as
/// `docker run -v`): through hostfs, and writable unless `ro`, so that the sandbox's
/// writes reach the host directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Volume {
    pub source: PathBuf,
    pub target: PathBuf,
    pub read_only: bool,
}

impl Volume {
    /// Parses `HOSTDIR:/PATH[:ro|:rw]`.
    pub fn parse(arg: &str) -> Result<Volume, String> {
        let mut parts: Vec<&str> = arg.split(':').collect();
        let read_only = match parts.last() {
            Some(&"ro") if parts.len() == 3 => true,
            Some(&"rw") if parts.len() == 3 => false,
            _ if parts.len() == 2 => false,
            _ => return Err(format!("{arg:?}: expected HOSTDIR:/PATH[:ro|:rw]")),
        };
        parts.truncate(2);
        let (source, target) = (parts[0], parts[1]);
        if source.is_empty() {
            return Err(format!("{arg:?}: the host directory is empty"));
        }
        if !target.starts_with('/') {
            return Err(format!(
                "{arg:?}: the mount point {target:?} must be an absolute path"
            ));
        }
        Ok(Volume {
            source: source.into(),
            target: target.into(),
            read_only,
        })
    }
}

/// An ImgFS image to mount read-only at a path of the sandbox (`--mount-image IMG:/PATH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageMount {
    /// The image file on the host.
    pub image: PathBuf,
    /// The absolute path in the sandbox; created (as a directory in the memory layer over
    /// the host root) if missing.
    pub target: PathBuf,
}

impl ImageMount {
    /// Parses `IMG:/PATH`. The split is at the last `:`, so image file names may hold colons
    /// (`sha256:...` blobs) and the path may not.
    pub fn parse(arg: &str) -> Result<ImageMount, String> {
        let Some((image, target)) = arg.rsplit_once(':') else {
            return Err(format!("{arg:?}: expected IMG:/PATH"));
        };
        if image.is_empty() {
            return Err(format!("{arg:?}: no image before the ':'"));
        }
        if !target.starts_with('/') {
            return Err(format!(
                "{arg:?}: the mount point {target:?} must be an absolute path"
            ));
        }
        Ok(ImageMount {
            image: image.into(),
            target: target.into(),
        })
    }
}

/// Failures of `runsc do`, each with the exit status a shell would use.
#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{0}: command not found")]
    NotFound(String),
    #[error(transparent)]
    Seccomp(#[from] seccomp::SeccompError),
    #[error(transparent)]
    Caps(#[from] caps::CapsError),
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    #[error(transparent)]
    Landlock(#[from] landlock::LandlockError),
    #[error(transparent)]
    Confine(#[from] confine::ConfineError),
    #[error("no program given")]
    NoProgram,
    #[error("platform {0} is not available yet; use --platform=kvm")]
    PlatformUnavailable(&'static str),
    #[error(transparent)]
    Sentry(#[from] SentryError),
    #[error(transparent)]
    Platform(#[from] platform::PlatformError),
    #[error("{0}: {1}")]
    Io(&'static str, std::io::Error),
    /// A ContainerFS root (layers and merged index) that can't be used.
    #[error("root file system: {0}")]
    RootFs(#[from] fs::containerfs::ContainerFsError),
    /// A container process that can't start (the message is runc's, for Docker to show).
    #[error("{0}")]
    Container(String),
    /// A `--volume` that can't be mounted: the host directory, where, and why.
    #[error("--volume {}:{}: {problem}", host.display(), target.display())]
    Volume {
        host: PathBuf,
        target: PathBuf,
        problem: String,
    },
    /// A `--mount-image` that can't be mounted: the image, where, and why.
    #[error("--mount-image {}:{}: {problem}", image.display(), target.display())]
    MountImage {
        image: PathBuf,
        target: PathBuf,
        problem: String,
    },
}

impl BootError {
    /// 127 for a missing program, 126 for one that can't run, 125 for the runtime failing.
    pub fn exit_status(&self) -> i32 {
        match self {
            BootError::Load(e) => e.exit_status(),
            BootError::NotFound(_) => 127,
            BootError::Sentry(e) => e.exit_status(),
            _ => 125,
        }
    }
}

/// Duplicates our standard streams for the sandbox; a closed one stays closed there too.
fn dup_stdio() -> Result<[Option<OwnedFd>; 3], BootError> {
    let dup = |fd: i32| -> Result<Option<OwnedFd>, BootError> {
        // SAFETY: fcntl(F_GETFD) only asks whether fd is open.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            return Ok(None);
        }
        // SAFETY: fd is open (checked above) and borrowed only for the dup call.
        let borrowed = unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) };
        borrowed
            .try_clone_to_owned()
            .map(Some)
            .map_err(|e| BootError::Io("duplicating a standard stream", e))
    };
    Ok([dup(0)?, dup(1)?, dup(2)?])
}

/// The credentials `runsc do`'s program starts with: the caller's ids, and the
/// capabilities execve would give it from the caller's sets (root: its bounding set, as
/// permitted and effective; anyone else: its ambient set), as if the caller ran it:
/// those `confine::remember_caller` kept, if it ran (before a user namespace).
fn caller_creds() -> Creds {
    confine::caller().unwrap_or_else(read_caller_creds)
}

/// The caller's credentials as the kernel has them now.
pub(crate) fn read_caller_creds() -> Creds {
    let groups = nix::unistd::getgroups()
        .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
        .unwrap_or_default();
    let set = |which: ::caps::CapSet| -> u64 {
        ::caps::read(None, which)
            .map(|s| s.iter().fold(0u64, |m, c| m | (1u64 << c.index())))
            .unwrap_or(0)
            & sentry::caps::CAP_VALID_MASK
    };
    // SAFETY: PR_GET_SECUREBITS takes no pointer and only reads the caller's state.
    let securebits = unsafe { libc::prctl(libc::PR_GET_SECUREBITS, 0, 0, 0, 0) };
    let mut creds = Creds {
        uid: nix::unistd::getuid().as_raw(),
        euid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getgid().as_raw(),
        egid: nix::unistd::getegid().as_raw(),
        groups,
        suid: nix::unistd::geteuid().as_raw(),
        sgid: nix::unistd::getegid().as_raw(),
        caps: sentry::caps::CapSets {
            permitted: set(::caps::CapSet::Permitted),
            effective: set(::caps::CapSet::Effective),
            inheritable: set(::caps::CapSet::Inheritable),
            bounding: set(::caps::CapSet::Bounding),
            ambient: set(::caps::CapSet::Ambient),
            securebits: securebits.max(0) as u32,
        },
        user_ns: Default::default(),
    };
    sentry::caps::exec(&mut creds, false);
    creds
}

/// The sandbox's root file system.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum RootFs {
    /// The host's `/`, read-only under a memory layer (`runsc do`).
    #[default]
    Host,
    /// A container image: ContainerFS layers (bottom first) and their merged index
    /// (`fs::containerfs::write_index`), under a memory layer. The program starts in `/`.
    Layers {
        layers: Vec<PathBuf>,
        index: PathBuf,
    },
    /// A container image run as Docker runs it (`runsc do --image`): the layers as
    /// [`RootFs::Layers`], and the process its config describes, with /etc/hostname,
    /// /etc/hosts, /etc/resolv.conf and /sys ([`container`]).
    Image {
        layers: Vec<PathBuf>,
        index: PathBuf,
        process: container::ContainerProcess,
    },
}

/// `INDEX LAYER... -- PROGRAM [ARGS...]`: runs PROGRAM, with the caller's environment and
/// stdio, on the ContainerFS root of the layers (bottom first) and their merged index. This
/// is how the tests and benchmarks run a layer stack until the CLI has its own way in.
pub fn run_layers_from_args(args: Vec<OsString>) -> Result<i32, BootError> {
    let usage = || {
        BootError::Io(
            "run_layers",
            std::io::Error::other("usage: INDEX LAYER... -- PROGRAM [ARGS...]"),
        )
    };
    let sep = args.iter().position(|a| a == "--").ok_or_else(usage)?;
    let (paths, argv) = (&args[..sep], &args[sep + 1..]);
    let (index, layers) = paths.split_first().ok_or_else(usage)?;
    let opts = DoOptions {
        platform: PlatformKind::Kvm,
        syscall_path: SyscallPath::Ring,
        total_memory: None,
        argv: argv.to_vec(),
        image_mounts: Vec::new(),
        volumes: Vec::new(),
        seccomp: seccomp::Mode::Enforce,
        pids_limit: None,
    };
    let rootfs = RootFs::Layers {
        layers: layers.iter().map(PathBuf::from).collect(),
        index: PathBuf::from(index),
    };
    run_do_in(opts, rootfs)
}

/// Runs `runsc do`: returns the program's exit status as a shell reports it.
pub fn run_do(opts: DoOptions) -> Result<i32, BootError> {
    run_do_in(opts, RootFs::Host)
}

/// Runs `runsc do` on the root file system `rootfs`.
pub fn run_do_in(opts: DoOptions, rootfs: RootFs) -> Result<i32, BootError> {
    let name = opts.argv.first().ok_or(BootError::NoProgram)?;
    // The caller's capabilities, read before the sentry drops its own.
    let caller = caller_creds();
    // A caller with CAP_NET_ADMIN may change a network namespace made for the sandbox
    // (--network=none), never the host's.
    let network_admin =
        netns::is_own() && sentry::caps::capable(&caller, sentry::caps::Cap::NetAdmin);
    // The VM is made on a thread of its own while this one builds the file system, finds
    // the program and leaves the host's root: most of its cost is waiting (KVM's memory
    // slot waits for an SRCU grace period) or host CPUID, and the two together took ~2 ms
    // one after the other (docs/architecture.md, "Start-up"). A bad program or image now
    // costs a VM made for nothing; the error is the same.
    // The guest's membarrier is the host's on the sentry process, which wants the sentry
    // registered first (the filter allows only the barrier commands). Now, while this is
    // the process's only user of its memory: registering later, with the VM's thread and
    // KVM's workers sharing it, waits for an RCU grace period (14-33 ms measured).
    sentry::membarrier::prepare_host();
    let vm = platform_thread::start(
        opts.platform,
        platform_thread::Request {
            syscall_path: opts.syscall_path,
            total_memory: opts.total_memory,
            // The caller waits for this process: the VM's destruction is left to the
            // kernel (platform::kvm::teardown).
            defer_teardown: true,
            drop_caps: opts.seccomp != seccomp::Mode::Off,
            network_admin,
        },
    );
    // The program is found in the sandbox's file system (so it may come from a mounted
    // image), along the caller's PATH, from the caller's directory.
    let images = mounts::open_images(&opts.image_mounts)?;
    let procfs = sentry::procfs::ProcFs::new();
    if let RootFs::Image { process, .. } = &rootfs {
        // The container's host name, not the host's (uname, /proc/sys/kernel/hostname).
        procfs.set_hostname(process.hostname.as_bytes());
    }
    let (mounts, cwd) = match &rootfs {
        RootFs::Host => {
            let cwd = std::env::current_dir()
                .map(|p| p.into_os_string().into_encoded_bytes())
                .unwrap_or_else(|_| b"/".to_vec());
            (mounts::host_root(&procfs, images, &opts.volumes)?, cwd)
        }
        RootFs::Layers { layers, index } | RootFs::Image { layers, index, .. } => {
            let cfs = mounts::open_containerfs(layers, index)?;
            (
                mounts::containerfs_root(&procfs, &cfs, images, &opts.volumes)?,
                b"/".to_vec(),
            )
        }
    };
    // A container image's process: its user, environment and directory; otherwise the
    // caller's.
    let prepared = match &rootfs {
        RootFs::Image { process, .. } => Some(container::prepare(&mounts, process)?),
        _ => None,
    };
    let (cwd, creds, search_path, envp) = match prepared {
        Some(p) => (p.cwd, p.creds, p.path, p.envp),
        None => (
            cwd,
            caller,
            std::env::var_os("PATH")
                .unwrap_or_else(|| "/usr/bin:/bin".into())
                .into_encoded_bytes(),
            std::env::vars_os()
                .map(|(k, v)| {
                    let mut e = k.into_encoded_bytes();
                    e.push(b'=');
                    e.extend_from_slice(v.as_encoded_bytes());
                    e
                })
                .collect(),
        ),
    };
    let fs_creds = creds.fs_creds();
    let program = sentry::program::find(
        &mounts,
        &cwd,
        &fs_creds,
        name.as_bytes(),
        &search_path,
        loader::MAX_PROGRAM_SIZE,
    )
    .map_err(|e| match e {
        LoadError::NotFound { .. } if !name.as_bytes().contains(&b'/') => {
            BootError::NotFound(name.to_string_lossy().into_owned())
        }
        e => e.into(),
    })?;
    // A `#!` script runs as execve runs it: its interpreter, opened from the working
    // directory, takes its place.
    let argv = opts.argv.iter().map(|a| a.as_bytes().to_vec()).collect();
    let (mut program, argv) = sentry::program::follow_scripts(program, argv, |interp| {
        sentry::program::open(&mounts, &cwd, &fs_creds, interp, loader::MAX_PROGRAM_SIZE)
    })
    .map_err(|e| e.into_load_error(name.as_bytes()))?;
    let path = PathBuf::from(String::from_utf8_lossy(&program.path).into_owned());
    let image = program.image(&path)?;
    tracing::debug!(
        "{}: {:?} image, entry {:#x}",
        path.display(),
        image.kind,
        image.entry
    );

    // Every host file the sentry needs is open now (the root's and volumes' directories,
    // the images, the standard streams, the log, /dev/kvm): leave the host's file system
    // for an empty root (when the namespaces were made).
    vm.wait_host_reads();
    if let Err(e) = confine::pivot_to_empty_root() {
        tracing::warn!("{e}; the sentry keeps the host's root");
    }
    // The VM's thread ends here; the platform starts no thread of its own until the first
    // task runs (the ring poller starts with the first vCPU's page).
    let platform = vm.finish()?;
    if identity::changes(opts.seccomp) {
        // Root gives up uid 0 for a user of its own, keeping only the capabilities it needs: while
        // this is the only thread (the VM's thread dropped its own before it made the VM,
        // `platform_thread::start`), after the pivot (which needs CAP_SYS_ADMIN).
        identity::become_sentry_user(network_admin)?;
    } else if opts.seccomp != seccomp::Mode::Off {
        // With the filter, as the confinement of the running sentry (`--seccomp=off`
        // keeps both off for debugging); the threads this one starts inherit these.
        caps::drop_unneeded(network_admin)?;
    }
    // The host trees the sandbox was given are all open: from here on the sentry opens
    // host files only beneath them. While this is the sentry's only thread (a Landlock
    // domain is per thread on kernels before ABI 8; `landlock::restrict` refuses to run
    // otherwise) and before the seccomp filter (which has no Landlock calls).
    landlock::restrict()?;
    if network_admin {
        fs::hostinet::allow_network_changes();
    }
    tracing::debug!(
        "platform: {}",
        platform::Platform::describe(platform.as_ref())
    );

    let spec = ProcessSpec {
        mounts,
        procfs,
        program,
        image,
        argv,
        envp,
        cwd,
        creds,
        no_new_privs: false,
        rlimits: Vec::new(),
        stdio: dup_stdio()?,
    };
    let sandbox = sentry::prepare(platform, spec)?;
    sandbox.kernel().tasks.set_pids_max(opts.pids_limit);
    // Everything the sentry opens by path is open now: from here on it needs only the calls
    // in seccomp::ALLOWED.
    seccomp::install(opts.seccomp)?;
    let status = sandbox.run()?;
    tracing::debug!("{}: exited with {status:?}", Path::new(&path).display());
    Ok(status.shell_status())
}
