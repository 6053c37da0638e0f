//! hostfs: a passthrough of a host directory, read-only unless made writable (a bind
//! mount not marked `ro`: [`HostFsOptions::writable`]).
//!
//! # How host files are reached
//!
//! An inode reaches its host object through an `O_PATH | O_NOFOLLOW` descriptor, held while
//! the inode is in use and given back when the filesystem holds too many (see
//! *Descriptors*). The root's descriptor comes from `open(root, O_PATH | O_DIRECTORY)` and is
//! always held; every other descriptor comes from [`Inode::lookup`] on its parent, or from
//! reopening the same name in the same parent later, which hands the host
//! exactly one path component, validated (not empty, not `.` or `..`, no `/`, no NUL), to
//! `openat2(parent, name, O_PATH | O_NOFOLLOW, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
//! RESOLVE_NO_MAGICLINKS)`. On kernels without `openat2` (`ENOSYS`, before 5.6) it falls
//! back to `openat(parent, name, O_PATH | O_NOFOLLOW)`, which for a single component that
//! is not `..` resolves exactly the same thing.
//!
//! Hence:
//! - the host never follows a symlink for us: a symlink is an inode of type
//!   [`FileType::Symlink`] whose target [`Inode::readlink`] returns (`readlinkat(fd, "")`);
//!   the VFS resolves it in the sandbox's own tree;
//! - `..` is never passed to the host; the VFS handles it with its dentry tree;
//! - so no path the guest controls can name a host object outside the root. (Only the host
//!   itself could: a host process moving a directory the sandbox holds out of the root.)
//!
//! A descriptor obtained again by name (or an `fstatat(parent, name, AT_SYMLINK_NOFOLLOW)`
//! instead of one) is checked to be the same host object, by `(st_dev, st_ino)` and file
//! type: if the host renamed or replaced the file meanwhile, the inode gives `ESTALE`
//! (`ENOENT` if the name is gone) rather than another file's contents.
//!
//! Other descriptors are opened from the pinned one and never by name: a directory is opened
//! for `getdents64` as `openat(fd, ".", O_RDONLY | O_DIRECTORY)` and closed once read; a
//! regular file is opened for reading through its `/proc/self/fd/N` magic link (checked to
//! be procfs when the filesystem is created), then `fstat`ed to check it is the same regular
//! file. Only regular files are ever opened for I/O, and with `O_NONBLOCK`: hostfs never
//! opens a host device, fifo or socket.
//!
//! # Never modifying the host (unless writable)
//!
//! By default every modifying operation fails with `EROFS` (or, as in Linux, `ENOTDIR` for a
//! directory operation on a non-directory and `EISDIR` for opening a directory for writing),
//! before any host call. Reads and directory
//! listings open with `O_NOATIME` when the sentry may (it owns the file or has
//! `CAP_FOWNER`), so even access times stay untouched then. Nothing is ever opened for
//! writing.
//!
//! # Writable hostfs
//!
//! With [`HostFsOptions::writable`] (the sandbox's rw bind mounts, whose writes must reach
//! the host directory), changes are made with the same discipline as lookups: a new name
//! is one validated component created relative to the parent's held descriptor with calls
//! that never follow it (`openat(O_CREAT | O_EXCL | O_NOFOLLOW)`, `mkdirat`, `symlinkat`,
//! `mknodat` for fifos and sockets only: never a device), and so are `unlinkat` and
//! `renameat2` (both directories must be of this filesystem, else `EXDEV`). An object that
//! was looked up is changed through its own descriptor: `linkat` and `chmod`, `utimensat`,
//! and the write descriptor (reopened as for reads, `O_WRONLY`, checked to be the same
//! regular file) reach it through its `/proc/self/fd/N` magic link, `fchownat` with
//! `AT_EMPTY_PATH`; a symlink's times through its parent and name with
//! `AT_SYMLINK_NOFOLLOW`. No path the guest controls is ever resolved by the host, so a
//! host symlink is never followed out of the directory. New files get the sandbox's mode
//! exactly (the host's umask undone) and, when the sentry runs as host root, the creating
//! sandbox user as owner, as runc's bind mounts would show. Shared mappings of these files
//! reach the host at msync, munmap and exit (the memory manager's write-back).
//!
//! # Pseudo filesystems
//!
//! Crossing into a mount is allowed (the sandbox root is the host `/`, which spans several
//! mounts), unless [`HostFsOptions::same_mount_only`]. But mounts of kernel pseudo
//! filesystems whose files are interfaces rather than data (procfs, sysfs, debugfs, tracefs,
//! securityfs, cgroupfs, bpffs, configfs, devpts, efivarfs, ...: reading
//! `/proc/<sentry>/mem` or `tracing/trace_pipe` would leak the sentry or change host state)
//! are *denied*, and so is autofs (a lookup in it mounts something on the host): such an
//! inode exists (so the VFS can mount its own /proc or /sys over it) and can be `stat`ed,
//! but lookup, readdir, open and read give `EACCES`. Whether a lookup crossed into another
//! filesystem is told by `st_dev` differing from the parent's, then `fstatfs`.
//!
//! # What the VFS must do itself
//!
//! Devices, fifos and sockets found on the host are ordinary inodes here ([`Inode::open`]
//! gives `Ok(None)`, reads fail with `EINVAL`). The VFS must never let the guest talk to the
//! host through them: opening one, or `connect`ing to a host socket (think of
//! `/var/run/docker.sock`), must be refused (`EACCES`) or served by a sandbox-side object.
//! [`is_host_special`] tells such inodes apart.
//!
//! # Identity
//!
//! `stat` reports the host's `st_dev` and `st_ino`, unchanged: `(dev, ino)` is unique across
//! all host mounts under the root and stable while an inode lives (the pinned descriptor
//! keeps the host inode number allocated), and programs that compare `st_dev` (`find
//! -xdev`, `du -x`) behave as natively. The cost is that host device numbers are visible in
//! the sandbox. Lookups of the same host object (hard links, repeated lookups) return the
//! same [`HostInode`] while one is alive.
//!
//! # Descriptors
//!
//! The VFS's dentry cache keeps every inode it looked up, so descriptors must not live as
//! long as inodes (a `find /usr | xargs stat` would run out of them). At most
//! [`HostFsOptions::max_cached_path_fds`] `O_PATH` descriptors are held for the whole
//! filesystem, besides the root's: past that, the least recently used one is closed (a
//! second-chance clock) and its inode opens its name in its parent again when it needs one
//! (the parent keeps its own parent alive, so the chain back to the root is always there).
//! `stat` of an inode without a descriptor is an `fstatat` in its parent and opens nothing.
//! A descriptor in use by an operation stays open until that operation ends.
//!
//! A regular file that was read also caches its read descriptor, up to
//! [`HostFsOptions::max_cached_read_fds`] of them for the whole filesystem (beyond that a
//! read opens and closes a descriptor). Descriptors are released when the inode is dropped.

mod sys;

#[cfg(test)]
mod tests;

use std::any::Any;
use std::collections::{HashMap, VecDeque};
use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use crate::vfs::{DirEntry, FileType, Inode, NewNode, Owner, SetAttr, StatFs};
use crate::{Errno, FileDescription, Stat};

/// `f_type` of filesystems hostfs refuses to look into (from `linux/magic.h`).
const DENIED_FS_TYPES: &[(u32, &str)] = &[
    (0x9fa0, "proc"),
    (0x6265_6572, "sysfs"),
    (0x6462_6720, "debugfs"),
    (0x7472_6163, "tracefs"),
    (0x7363_6673, "securityfs"),
    (0xcafe_4a11, "bpf"),
    (0x6265_6570, "configfs"),
    (0x1cd1, "devpts"),
    (0xde5e_81e4, "efivarfs"),
    (0x4249_4e4d, "binfmt_misc"),
    (0x6573_5543, "fusectl"),
    (0x6165_676c, "pstore"),
    (0x0027_e0eb, "cgroup"),
    (0x6367_7270, "cgroup2"),
    (0x6e73_6673, "nsfs"),
    (0xf97c_ff8c, "selinuxfs"),
    (0x4341_5d53, "smackfs"),
    // Looking up a name in an autofs directory mounts something on the host.
    (0x0187, "autofs"),
];

/// The low 32 bits of `f_type` (magic numbers are 32-bit; `f_type`'s width and sign vary).
fn fs_magic(st: &libc::statfs) -> u32 {
    #[allow(clippy::unnecessary_cast)]
    let t = st.f_type as u64;
    t as u32
}

fn is_denied_fs(st: &libc::statfs) -> bool {
    let magic = fs_magic(st);
    DENIED_FS_TYPES.iter().any(|&(m, _)| m == magic)
}

/// Options of [`HostFs::with_options`].
#[derive(Debug, Clone, Default)]
pub struct HostFsOptions {
    /// Refuse (`EXDEV`) to cross into another host mount (`RESOLVE_NO_XDEV`).
    pub same_mount_only: bool,
    /// How many read descriptors of regular files the filesystem keeps open at most.
    /// `None`: a quarter of the sentry's `RLIMIT_NOFILE`, between 16 and 4096.
    pub max_cached_read_fds: Option<usize>,
    /// How many `O_PATH` descriptors (besides the root's) the filesystem keeps open at most.
    /// `None`: a quarter of the sentry's `RLIMIT_NOFILE`, between 16 and 4096.
    pub max_cached_path_fds: Option<usize>,
    /// Let the sandbox change the host directory (a rw bind mount).
    pub writable: bool,
}

/// Where an inode is found again: its parent directory and its name there.
type Origin = (Arc<HostInode>, CString);

/// The inodes holding an `O_PATH` descriptor, oldest first (a second-chance clock).
#[derive(Default)]
struct PathFds {
    /// Inodes holding a descriptor (the root excepted).
    held: usize,
    /// Every inode holding a descriptor, once; and dropped ones, until they come up.
    queue: VecDeque<Weak<HostInode>>,
}

/// State shared by a filesystem and its inodes.
struct Shared {
    same_mount_only: bool,
    writable: bool,
    /// New files are given to the creating sandbox user (the sentry is host root).
    chown_new: bool,
    /// Cleared once `openat2` turned out to be missing.
    use_openat2: AtomicBool,
    read_fd_cap: usize,
    read_fds: AtomicUsize,
    path_fd_cap: usize,
    path_fds: Mutex<PathFds>,
    /// Live inodes by host `(st_dev, st_ino)`.
    inodes: Mutex<HashMap<(u64, u64), Weak<HostInode>>>,
}

impl Shared {
    fn inodes(&self) -> MutexGuard<'_, HashMap<(u64, u64), Weak<HostInode>>> {
        self.inodes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes one of the cached read descriptor slots, if any is left.
    fn reserve_read_fd(&self) -> bool {
        self.read_fds
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.read_fd_cap).then_some(n + 1)
            })
            .is_ok()
    }

    fn release_read_fd(&self) {
        self.read_fds.fetch_sub(1, Ordering::AcqRel);
    }

    fn path_fds(&self) -> MutexGuard<'_, PathFds> {
        self.path_fds.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts the descriptor `inode` just took and closes the least recently used ones over
    /// the cap. The caller holds no lock of this filesystem (an inode dropped here locks
    /// `inodes` and `path_fds`).
    fn track_path_fd(&self, inode: Weak<HostInode>) {
        // Inodes upgraded while looking for victims, dropped once the lock is released.
        let mut seen = Vec::new();
        {
            let mut lru = self.path_fds();
            lru.held += 1;
            lru.queue.push_back(inode);
            // Each inode gets at most one second chance per call.
            let mut budget = 2 * lru.queue.len();
            while lru.held > self.path_fd_cap && budget > 0 {
                budget -= 1;
                let Some(weak) = lru.queue.pop_front() else {
                    break;
                };
                // A dropped inode gave its count back when it was dropped.
                let Some(victim) = weak.upgrade() else {
                    continue;
                };
                if victim.referenced.swap(false, Ordering::AcqRel) {
                    lru.queue.push_back(weak);
                } else if victim.fd_slot().take().is_some() {
                    lru.held -= 1;
                }
                seen.push(victim);
            }
            // Entries of dropped inodes only go when they come up: sweep them now and then.
            if lru.queue.len() > 2 * self.path_fd_cap + 64 {
                lru.queue.retain(|w| w.strong_count() > 0);
            }
        }
        drop(seen);
    }

    /// The inode for the host object `fd` refers to (found as `name` in `parent`): the live
    /// one if there is one, else a new one.
    fn intern(
        self: &Arc<Self>,
        fd: OwnedFd,
        st: &libc::stat,
        file_type: FileType,
        denied: bool,
        origin: Option<Origin>,
    ) -> Arc<HostInode> {
        let key = (st.st_dev, st.st_ino);
        // References that may be the last ones, dropped only once `inodes` is unlocked (an
        // inode's drop locks it).
        let mut unused: (Option<Arc<HostInode>>, Option<Origin>) = (None, None);
        let inode = {
            let mut inodes = self.inodes();
            match inodes.get(&key).and_then(Weak::upgrade) {
                Some(live) if live.file_type == file_type => {
                    // A file found again, maybe under another name (a hard link): that name
                    // is the one to reopen. Not a directory: found again, it is a bind mount,
                    // maybe of an ancestor, and its parent chain must stay the one it was
                    // created with (older inodes only: no cycle, a finite walk to the root).
                    if file_type != FileType::Directory && origin.is_some() {
                        unused.1 = std::mem::replace(&mut *live.origin_slot(), origin);
                    }
                    live
                }
                other => {
                    unused.0 = other;
                    let root = origin.is_none();
                    let inode = Arc::new_cyclic(|me| HostInode {
                        me: me.clone(),
                        shared: Arc::clone(self),
                        fd: Mutex::new(None),
                        origin: Mutex::new(origin),
                        referenced: AtomicBool::new(false),
                        file_type,
                        dev: st.st_dev,
                        ino: st.st_ino,
                        denied,
                        read_fd: OnceLock::new(),
                        write_fd: OnceLock::new(),
                    });
                    if root {
                        // The root's descriptor is never counted nor given back.
                        *inode.fd_slot() = Some(Arc::new(fd));
                        inodes.insert(key, Arc::downgrade(&inode));
                        return inode;
                    }
                    inodes.insert(key, Arc::downgrade(&inode));
                    inode
                }
            }
        };
        drop(unused);
        // Outside the `inodes` lock: this may close other inodes' descriptors.
        inode.install_fd(fd);
        inode
    }
}

/// A read-only passthrough of a host directory.
pub struct HostFs {
    root: Arc<HostInode>,
}

impl std::fmt::Debug for HostFs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostFs").field("root", &self.root).finish()
    }
}

impl HostFs {
    /// Opens the host directory `root` (`O_PATH | O_DIRECTORY`, following symlinks in `root`
    /// itself: it is the host's choice) with default options.
    ///
    /// Fails with the host's errno, `EACCES` if `root` is on a denied pseudo filesystem, or
    /// `ENOENT` if `/proc/self/fd` is not procfs (hostfs reopens files through it).
    pub fn new(root: &Path) -> Result<Arc<HostFs>, Errno> {
        Self::with_options(root, HostFsOptions::default())
    }

    /// [`HostFs::new`] with options.
    pub fn with_options(root: &Path, options: HostFsOptions) -> Result<Arc<HostFs>, Errno> {
        Self::open_root(root, options, FileType::Directory)
    }

    /// A filesystem of one host regular file (a file bind mount, as Docker's /etc/hosts and
    /// /etc/resolv.conf): served live, so that changes the host makes in place after the
    /// sandbox started (Docker's prestart hook rewrites resolv.conf) are seen, as through
    /// runc's bind mount. Fails with `EINVAL` if `file` is not a regular file.
    pub fn file_with_options(file: &Path, options: HostFsOptions) -> Result<Arc<HostFs>, Errno> {
        Self::open_root(file, options, FileType::Regular)
    }

    fn open_root(
        root: &Path,
        options: HostFsOptions,
        want: FileType,
    ) -> Result<Arc<HostFs>, Errno> {
        let path = CString::new(root.as_os_str().as_bytes()).map_err(|_| libc::EINVAL)?;
        let only_dirs = if want == FileType::Directory {
            libc::O_DIRECTORY
        } else {
            0
        };
        // SAFETY: `path` is NUL-terminated; the returned fd is owned right away.
        let raw = unsafe { libc::open(path.as_ptr(), libc::O_PATH | only_dirs | libc::O_CLOEXEC) };
        let fd = sys::owned_fd(raw)?;
        let st = sys::fstat(fd.as_fd())?;
        match FileType::from_mode(st.st_mode) {
            Some(t) if t == want => {}
            _ if want == FileType::Directory => return Err(libc::ENOTDIR),
            _ => return Err(libc::EINVAL),
        }
        if is_denied_fs(&sys::fstatfs(fd.as_fd())?) {
            return Err(libc::EACCES);
        }
        if !sys::proc_fd_is_procfs() {
            tracing::warn!("hostfs: /proc/self/fd is not procfs; refusing to start");
            return Err(libc::ENOENT);
        }
        let shared = Arc::new(Shared {
            same_mount_only: options.same_mount_only,
            writable: options.writable,
            // SAFETY: geteuid has no preconditions.
            chown_new: options.writable && unsafe { libc::geteuid() } == 0,
            use_openat2: AtomicBool::new(true),
            read_fd_cap: options
                .max_cached_read_fds
                .unwrap_or_else(default_read_fd_cap),
            read_fds: AtomicUsize::new(0),
            path_fd_cap: options
                .max_cached_path_fds
                .unwrap_or_else(default_read_fd_cap)
                .max(1),
            path_fds: Mutex::new(PathFds::default()),
            inodes: Mutex::new(HashMap::new()),
        });
        let source = root.to_path_buf();
        let root = shared.intern(fd, &st, want, false, None);
        roots().push((Arc::downgrade(&root), source));
        Ok(Arc::new(HostFs { root }))
    }

    /// The root directory.
    pub fn root(&self) -> Arc<dyn Inode> {
        self.root.clone()
    }
}

/// The root of every hostfs opened in this process (while it lives), with the host path it
/// was opened from: the host trees the sandbox was given.
fn roots() -> MutexGuard<'static, Vec<(Weak<HostInode>, PathBuf)>> {
    static ROOTS: Mutex<Vec<(Weak<HostInode>, PathBuf)>> = Mutex::new(Vec::new());
    let mut roots = ROOTS.lock().unwrap_or_else(|e| e.into_inner());
    roots.retain(|(r, _)| r.strong_count() > 0);
    roots
}

/// A host tree a live hostfs serves: see [`live_roots`].
#[derive(Debug, Clone)]
pub struct HostRoot {
    /// The root's `O_PATH` descriptor, held as long as the filesystem.
    pub fd: Arc<OwnedFd>,
    /// The host path it was opened from (for messages).
    pub path: PathBuf,
    /// A directory (else a single regular file: a file bind mount).
    pub directory: bool,
    /// The sandbox may change it ([`HostFsOptions::writable`]).
    pub writable: bool,
}

/// Every host tree a live hostfs of this process serves, oldest first. Once the sandbox is
/// built, these are the only host files it may reach besides the descriptors it holds, so
/// the sentry confines its own host file access to them (boot's Landlock ruleset), from
/// their descriptors: no host path is looked up again.
pub fn live_roots() -> Vec<HostRoot> {
    roots()
        .iter()
        .filter_map(|(r, path)| {
            let r = r.upgrade()?;
            let fd = r.fd_slot().clone()?;
            Some(HostRoot {
                fd,
                path: path.clone(),
                directory: r.file_type == FileType::Directory,
                writable: r.shared.writable,
            })
        })
        .collect()
}

/// A quarter of the soft `RLIMIT_NOFILE`, between 16 and 4096.
fn default_read_fd_cap() -> usize {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX)
    } else {
        1024
    };
    (soft / 4).clamp(16, 4096)
}

/// Whether `inode` is a hostfs device, fifo or socket: something the VFS must not open or
/// connect to on the host.
pub fn is_host_special(inode: &dyn Inode) -> bool {
    inode
        .as_any()
        .downcast_ref::<HostInode>()
        .is_some_and(HostInode::is_host_special)
}

/// Checks a name the VFS passes to `lookup` and turns it into a C string.
fn component(name: &[u8]) -> Result<CString, Errno> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(libc::EINVAL);
    }
    if name.len() > 255 {
        return Err(libc::ENAMETOOLONG);
    }
    CString::new(name).map_err(|_| libc::EINVAL)
}

/// An xattr name the guest may read: `user.`, `security.` or `system.` (never `trusted.`,
/// which on the host needs `CAP_SYS_ADMIN`).
fn xattr_visible(name: &[u8]) -> bool {
    [&b"user."[..], b"security.", b"system."]
        .iter()
        .any(|p| name.starts_with(p) && name.len() > p.len())
}

fn to_stat(st: &libc::stat) -> Stat {
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    Stat {
        dev: st.st_dev,
        ino: st.st_ino,
        nlink: st.st_nlink as u64,
        mode: st.st_mode,
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: st.st_rdev,
        size: st.st_size,
        blksize: st.st_blksize as i64,
        blocks: st.st_blocks as i64,
        atime: (st.st_atime, st.st_atime_nsec),
        mtime: (st.st_mtime, st.st_mtime_nsec),
        ctime: (st.st_ctime, st.st_ctime_nsec),
    }
}

/// A host file, reached through an `O_PATH` descriptor held while in use.
pub struct HostInode {
    /// This inode (to count it among those holding a descriptor).
    me: Weak<HostInode>,
    shared: Arc<Shared>,
    /// `O_PATH | O_NOFOLLOW | O_CLOEXEC`, while held (always, for the root).
    fd: Mutex<Option<Arc<OwnedFd>>>,
    /// The directory and name to open it again by; `None` for the root.
    origin: Mutex<Option<Origin>>,
    /// Used since the clock last passed (its descriptor gets a second chance).
    referenced: AtomicBool,
    file_type: FileType,
    /// Host `st_dev` and `st_ino` when looked up.
    dev: u64,
    ino: u64,
    /// On a denied pseudo filesystem: only stat and statfs work.
    denied: bool,
    /// `O_RDONLY` descriptor of a regular file, opened on the first read.
    read_fd: OnceLock<OwnedFd>,
    /// `O_WRONLY` descriptor of a regular file of a writable filesystem, opened on the
    /// first change of its contents (counted with the read descriptors).
    write_fd: OnceLock<OwnedFd>,
}

impl std::fmt::Debug for HostInode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostInode")
            .field("file_type", &self.file_type)
            .field("dev", &self.dev)
            .field("ino", &self.ino)
            .field("denied", &self.denied)
            .finish_non_exhaustive()
    }
}

impl Drop for HostInode {
    fn drop(&mut self) {
        if self.read_fd.get().is_some() {
            self.shared.release_read_fd();
        }
        if self.write_fd.get().is_some() {
            self.shared.release_read_fd();
        }
        let held = self.fd_slot().take().is_some();
        if held && self.origin_slot().is_some() {
            self.shared.path_fds().held -= 1;
        }
        let mut inodes = self.shared.inodes();
        let key = (self.dev, self.ino);
        if inodes.get(&key).is_some_and(|w| w.strong_count() == 0) {
            inodes.remove(&key);
        }
    }
}

impl HostInode {
    /// A device, fifo or socket of the host.
    pub fn is_host_special(&self) -> bool {
        !matches!(
            self.file_type,
            FileType::Regular | FileType::Directory | FileType::Symlink
        )
    }

    /// Whether this is (the root of) a denied pseudo filesystem mount.
    pub fn is_denied(&self) -> bool {
        self.denied
    }

    /// The host's `(st_dev, st_ino)`.
    pub fn host_id(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }

    /// The error of a namespace change in this inode: EROFS, or ENOTDIR if not a directory.
    fn dir_op(&self) -> Errno {
        if self.file_type == FileType::Directory {
            libc::EROFS
        } else {
            libc::ENOTDIR
        }
    }

    fn fd_slot(&self) -> MutexGuard<'_, Option<Arc<OwnedFd>>> {
        self.fd.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn origin_slot(&self) -> MutexGuard<'_, Option<Origin>> {
        self.origin.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn origin(&self) -> Option<Origin> {
        self.origin_slot().clone()
    }

    /// Keeps `fd` (known to refer to this inode's host object) as its descriptor, unless it
    /// has one already. The caller holds no lock of this filesystem.
    fn install_fd(&self, fd: OwnedFd) -> Arc<OwnedFd> {
        self.referenced.store(true, Ordering::Release);
        let fd = {
            let mut slot = self.fd_slot();
            if let Some(held) = slot.as_ref() {
                return Arc::clone(held);
            }
            let fd = Arc::new(fd);
            *slot = Some(Arc::clone(&fd));
            fd
        };
        self.shared.track_path_fd(self.me.clone());
        fd
    }

    /// Whether `st` is this inode's host object.
    fn is_same(&self, st: &libc::stat) -> bool {
        (st.st_dev, st.st_ino) == self.host_id()
            && FileType::from_mode(st.st_mode) == Some(self.file_type)
    }

    /// The `O_PATH` descriptor, opened again by name in the parent if it was given back.
    fn path_fd(&self) -> Result<Arc<OwnedFd>, Errno> {
        if let Some(fd) = self.fd_slot().as_ref() {
            self.referenced.store(true, Ordering::Release);
            return Ok(Arc::clone(fd));
        }
        let Some((parent, name)) = self.origin() else {
            // The root's descriptor is never given back.
            return Err(libc::EIO);
        };
        let parent_fd = parent.path_fd()?;
        let shared = &self.shared;
        let fd = sys::open_beneath(
            parent_fd.as_fd(),
            &name,
            shared.same_mount_only,
            &shared.use_openat2,
        )?;
        drop(parent_fd);
        let st = sys::fstat(fd.as_fd())?;
        if !self.is_same(&st) {
            tracing::debug!("hostfs: {:?} was replaced on the host", self.host_id());
            return Err(libc::ESTALE);
        }
        Ok(self.install_fd(fd))
    }

    /// Opens the regular file for reading and checks the result is that very file.
    fn open_for_read(&self) -> Result<OwnedFd, Errno> {
        let path_fd = self.path_fd()?;
        let fd = sys::reopen_read(path_fd.as_fd())?;
        drop(path_fd);
        let st = sys::fstat(fd.as_fd())?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG || (st.st_dev, st.st_ino) != self.host_id() {
            tracing::warn!("hostfs: reopening {:?} gave another file", self.host_id());
            return Err(libc::EIO);
        }
        Ok(fd)
    }

    /// The descriptor of this directory for a change of its entries: EROFS (or ENOTDIR)
    /// unless the filesystem is writable.
    fn writable_dir(&self) -> Result<Arc<OwnedFd>, Errno> {
        if self.file_type != FileType::Directory {
            return Err(libc::ENOTDIR);
        }
        if !self.shared.writable {
            return Err(libc::EROFS);
        }
        if self.denied {
            return Err(libc::EACCES);
        }
        self.path_fd()
    }

    /// Another directory of this filesystem (EXDEV otherwise).
    fn same_fs<'a>(&self, other: &'a Arc<dyn Inode>) -> Result<&'a HostInode, Errno> {
        other
            .as_any()
            .downcast_ref::<HostInode>()
            .filter(|o| Arc::ptr_eq(&o.shared, &self.shared))
            .ok_or(libc::EXDEV)
    }

    /// Runs `f` on a write descriptor of this regular file (cached if a slot is free).
    fn with_write_fd<T>(
        &self,
        f: impl FnOnce(std::os::fd::BorrowedFd<'_>) -> Result<T, Errno>,
    ) -> Result<T, Errno> {
        if !self.shared.writable {
            return Err(libc::EROFS);
        }
        match self.file_type {
            FileType::Regular => {}
            FileType::Directory => return Err(libc::EISDIR),
            _ => return Err(libc::EINVAL),
        }
        if self.denied {
            return Err(libc::EACCES);
        }
        if let Some(fd) = self.write_fd.get() {
            return f(fd.as_fd());
        }
        let path_fd = self.path_fd()?;
        let fd = sys::reopen_write(path_fd.as_fd())?;
        drop(path_fd);
        let st = sys::fstat(fd.as_fd())?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG || (st.st_dev, st.st_ino) != self.host_id() {
            tracing::warn!("hostfs: reopening {:?} gave another file", self.host_id());
            return Err(libc::EIO);
        }
        if !self.shared.reserve_read_fd() {
            return f(fd.as_fd());
        }
        if let Err(fd) = self.write_fd.set(fd) {
            self.shared.release_read_fd();
            return f(fd.as_fd());
        }
        match self.write_fd.get() {
            Some(fd) => f(fd.as_fd()),
            None => Err(libc::EIO),
        }
    }

    /// After a rename: the inode of host object `st` (if live) is now `name` in `dir`.
    fn moved(&self, st: Option<libc::stat>, dir: &HostInode, name: CString) {
        let Some(st) = st else { return };
        let Some(dir) = dir.me.upgrade() else { return };
        let live = self
            .shared
            .inodes()
            .get(&(st.st_dev, st.st_ino))
            .and_then(Weak::upgrade);
        // The old origin may be the last reference to its directory: dropped unlocked.
        let old = live.as_ref().and_then(|inode| {
            let mut slot = inode.origin_slot();
            // The root keeps no origin; a bind-mounted directory found again keeps its own.
            if slot.is_some() {
                slot.replace((dir, name))
            } else {
                None
            }
        });
        drop(old);
        drop(live);
    }

    /// The name of an extended attribute to set or remove, checked as Linux does before it
    /// asks the file system: EROFS on a read-only mount, EINVAL for a bare namespace,
    /// EOPNOTSUPP for namespaces the sandbox doesn't pass through.
    fn xattr_name_to_change(&self, name: &[u8]) -> Result<CString, Errno> {
        if !self.shared.writable {
            return Err(libc::EROFS);
        }
        if [&b"user."[..], b"security.", b"system.", b"trusted."].contains(&name) {
            // A namespace without a name (Linux's xattr_resolve_name).
            return Err(libc::EINVAL);
        }
        if !xattr_visible(name) || name.starts_with(b"system.") {
            return Err(libc::EOPNOTSUPP);
        }
        CString::new(name).map_err(|_| libc::EINVAL)
    }

    /// `/proc/self/fd/N` of the descriptor, which must stay open while the path is used.
    fn xattr_path(&self) -> Result<Option<(Arc<OwnedFd>, CString)>, Errno> {
        // Symlinks: the magic link would resolve to the symlink, and host lgetxattr cannot
        // take an O_PATH fd; a symlink's xattrs are not offered. Denied filesystems neither.
        if self.file_type == FileType::Symlink || self.denied {
            return Ok(None);
        }
        let fd = self.path_fd()?;
        let path = sys::proc_path(fd.as_fd());
        Ok(Some((fd, path)))
    }
}

impl Inode for HostInode {
    fn stat(&self) -> Result<Stat, Errno> {
        let held = self.fd_slot().clone();
        if let Some(fd) = held {
            self.referenced.store(true, Ordering::Release);
            return Ok(to_stat(&sys::fstat(fd.as_fd())?));
        }
        // No descriptor: ask the parent, without opening one.
        let Some((parent, name)) = self.origin() else {
            return Err(libc::EIO);
        };
        let parent_fd = parent.path_fd()?;
        let st = sys::fstatat_nofollow(parent_fd.as_fd(), &name)?;
        if !self.is_same(&st) {
            tracing::debug!("hostfs: {:?} was replaced on the host", self.host_id());
            return Err(libc::ESTALE);
        }
        Ok(to_stat(&st))
    }

    fn file_type(&self) -> FileType {
        self.file_type
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        if self.file_type != FileType::Directory {
            return Err(libc::ENOTDIR);
        }
        if self.denied {
            return Err(libc::EACCES);
        }
        let name = component(name)?;
        let shared = &self.shared;
        let dir_fd = self.path_fd()?;
        let fd = sys::open_beneath(
            dir_fd.as_fd(),
            &name,
            shared.same_mount_only,
            &shared.use_openat2,
        )?;
        drop(dir_fd);
        let st = sys::fstat(fd.as_fd())?;
        let file_type = FileType::from_mode(st.st_mode).ok_or(libc::EIO)?;
        let crossed = st.st_dev != self.dev;
        if crossed && shared.same_mount_only && !shared.use_openat2.load(Ordering::Relaxed) {
            // The openat fallback cannot say RESOLVE_NO_XDEV; st_dev is the next best thing.
            return Err(libc::EXDEV);
        }
        // Same st_dev as a non-denied parent: same filesystem, not denied.
        let denied = crossed && is_denied_fs(&sys::fstatfs(fd.as_fd())?);
        let parent = self.me.upgrade().ok_or(libc::EIO)?;
        Ok(shared.intern(fd, &st, file_type, denied, Some((parent, name))))
    }

    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        if self.file_type != FileType::Directory {
            return Err(libc::ENOTDIR);
        }
        if self.denied {
            return Err(libc::EACCES);
        }
        // Closed when this function returns, whatever happens.
        let dir = sys::open_dir(self.path_fd()?.as_fd())?;
        let raw = sys::getdents(dir.as_fd())?;
        let mut out = Vec::with_capacity(raw.len());
        for e in raw {
            let file_type = match e.d_type {
                libc::DT_REG => Some(FileType::Regular),
                libc::DT_DIR => Some(FileType::Directory),
                libc::DT_LNK => Some(FileType::Symlink),
                libc::DT_CHR => Some(FileType::CharDevice),
                libc::DT_BLK => Some(FileType::BlockDevice),
                libc::DT_FIFO => Some(FileType::Fifo),
                libc::DT_SOCK => Some(FileType::Socket),
                _ => None,
            };
            let file_type = match file_type {
                Some(t) => t,
                // DT_UNKNOWN (some filesystems never fill d_type): ask.
                None => {
                    let Ok(name) = CString::new(e.name.clone()) else {
                        continue;
                    };
                    match sys::fstatat_nofollow(dir.as_fd(), &name) {
                        Ok(st) => match FileType::from_mode(st.st_mode) {
                            Some(t) => t,
                            None => continue,
                        },
                        // Removed meanwhile, or unreadable: leave it out.
                        Err(err) => {
                            tracing::debug!("hostfs: readdir: fstatat: errno {err}");
                            continue;
                        }
                    }
                }
            };
            out.push(DirEntry {
                name: e.name,
                ino: e.ino,
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
        if !self.shared.writable {
            return Err(self.dir_op());
        }
        let dir = self.writable_dir()?;
        let cname = component(name)?;
        let perm = mode & 0o7777;
        match &node {
            NewNode::Regular => sys::create_file(dir.as_fd(), &cname, perm)?,
            NewNode::Directory => sys::mkdirat(dir.as_fd(), &cname, perm)?,
            NewNode::Symlink(target) => {
                let target = CString::new(target.clone()).map_err(|_| libc::EINVAL)?;
                sys::symlinkat(&target, dir.as_fd(), &cname)?
            }
            NewNode::Fifo => sys::mknodat(dir.as_fd(), &cname, libc::S_IFIFO | perm)?,
            NewNode::Socket => sys::mknodat(dir.as_fd(), &cname, libc::S_IFSOCK | perm)?,
            // Never a host device node.
            NewNode::CharDevice(_) | NewNode::BlockDevice(_) => return Err(libc::EPERM),
        }
        drop(dir);
        let inode = self.lookup(name)?;
        let host = inode
            .as_any()
            .downcast_ref::<HostInode>()
            .ok_or(libc::EIO)?;
        let fd = host.path_fd()?;
        if host.file_type != FileType::Symlink {
            // The host's umask applied on top of the sandbox's: give the exact mode back
            // (keeping a set-group-ID bit the host inherited from the directory).
            let st = sys::fstat(fd.as_fd())?;
            if st.st_mode & 0o777 != perm & 0o777 {
                if let Err(e) = sys::chmod_fd(fd.as_fd(), (st.st_mode & 0o7000) | perm) {
                    tracing::debug!("hostfs: chmod of a new file: errno {e}");
                }
            }
        }
        if self.shared.chown_new {
            if let Err(e) = sys::chown_fd(fd.as_fd(), owner.uid, owner.gid) {
                tracing::debug!("hostfs: chown of a new file: errno {e}");
            }
        }
        Ok(inode)
    }

    fn link(&self, name: &[u8], target: &Arc<dyn Inode>) -> Result<(), Errno> {
        if !self.shared.writable {
            return Err(self.dir_op());
        }
        let dir = self.writable_dir()?;
        let cname = component(name)?;
        let target = self.same_fs(target)?;
        if target.file_type == FileType::Directory {
            return Err(libc::EPERM);
        }
        let fd = target.path_fd()?;
        sys::link_fd(fd.as_fd(), dir.as_fd(), &cname)
    }

    fn unlink(&self, name: &[u8], dir: bool) -> Result<(), Errno> {
        if !self.shared.writable {
            return Err(self.dir_op());
        }
        let dir_fd = self.writable_dir()?;
        let cname = component(name)?;
        sys::unlinkat(dir_fd.as_fd(), &cname, dir)
    }

    fn rename(
        &self,
        old: &[u8],
        new_dir: &Arc<dyn Inode>,
        new: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        if !self.shared.writable {
            return Err(self.dir_op());
        }
        let from = self.writable_dir()?;
        let to_inode = self.same_fs(new_dir)?;
        let to = to_inode.writable_dir()?;
        let (o, n) = (component(old)?, component(new)?);
        let moving = sys::fstatat_nofollow(from.as_fd(), &o).ok();
        let other = sys::fstatat_nofollow(to.as_fd(), &n).ok();
        sys::renameat2(from.as_fd(), &o, to.as_fd(), &n, flags)?;
        drop((from, to));
        self.moved(moving, to_inode, n);
        if flags & libc::RENAME_EXCHANGE != 0 {
            self.moved(other, self, o);
        }
        Ok(())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize, Errno> {
        match self.file_type {
            FileType::Regular => {}
            FileType::Directory => return Err(libc::EISDIR),
            _ => return Err(libc::EINVAL),
        }
        if self.denied {
            return Err(libc::EACCES);
        }
        let offset = i64::try_from(offset).map_err(|_| libc::EINVAL)?;
        if buf.is_empty() {
            return Ok(0);
        }
        if let Some(fd) = self.read_fd.get() {
            return sys::pread_full(fd.as_fd(), buf, offset);
        }
        let fd = self.open_for_read()?;
        if !self.shared.reserve_read_fd() {
            // Over the cap: this descriptor lives for this read only.
            return sys::pread_full(fd.as_fd(), buf, offset);
        }
        if self.read_fd.set(fd).is_err() {
            // Another reader cached one first; ours is closed.
            self.shared.release_read_fd();
        }
        match self.read_fd.get() {
            Some(fd) => sys::pread_full(fd.as_fd(), buf, offset),
            None => Err(libc::EIO),
        }
    }

    fn write_at(&self, offset: u64, buf: &[u8]) -> Result<usize, Errno> {
        if !self.shared.writable {
            return Err(libc::EROFS);
        }
        let offset = i64::try_from(offset).map_err(|_| libc::EFBIG)?;
        if buf.is_empty() {
            return self.with_write_fd(|_| Ok(0));
        }
        self.with_write_fd(|fd| sys::pwrite_full(fd, buf, offset))
    }

    fn seek_data_or_hole(&self, offset: u64, hole: bool) -> Result<u64, Errno> {
        if self.file_type != FileType::Regular {
            return Err(libc::EINVAL);
        }
        // Ask the host: its holes are the file's. A descriptor of our own, so that no
        // shared offset moves.
        let path_fd = self.path_fd()?;
        let fd = sys::reopen_read(path_fd.as_fd())?;
        sys::seek_data_or_hole(fd.as_fd(), offset, hole)
    }

    fn create_tmpfile(
        &self,
        mode: u32,
        owner: Owner,
        linkable: bool,
    ) -> Result<Arc<dyn Inode>, Errno> {
        if !self.shared.writable {
            return Err(self.dir_op());
        }
        let dir = self.writable_dir()?;
        let perm = mode & 0o7777;
        let fd = sys::tmpfile(dir.as_fd(), perm, linkable)?;
        drop(dir);
        let st = sys::fstat(fd.as_fd())?;
        if st.st_mode & 0o777 != perm & 0o777 {
            if let Err(e) = sys::chmod_fd(fd.as_fd(), perm) {
                tracing::debug!("hostfs: chmod of a new file: errno {e}");
            }
        }
        if self.shared.chown_new {
            if let Err(e) = sys::chown_fd(fd.as_fd(), owner.uid, owner.gid) {
                tracing::debug!("hostfs: chown of a new file: errno {e}");
            }
        }
        // No name to open it again by: like the root, it keeps its descriptor (an O_RDWR
        // one, which serves as its path descriptor too) for as long as it lives.
        Ok(self.shared.intern(fd, &st, FileType::Regular, false, None))
    }

    fn allocate(&self, mode: i32, offset: u64, len: u64) -> Result<(), Errno> {
        self.with_write_fd(|fd| sys::fallocate(fd, mode, offset, len))
    }

    fn sync(&self) -> Result<(), Errno> {
        match self.write_fd.get() {
            Some(fd) => sys::fsync(fd.as_fd()),
            None => Ok(()),
        }
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        if self.file_type != FileType::Symlink {
            return Err(libc::EINVAL);
        }
        sys::readlink(self.path_fd()?.as_fd())
    }

    fn setattr(&self, attr: &SetAttr) -> Result<(), Errno> {
        if !self.shared.writable {
            return Err(libc::EROFS);
        }
        if self.denied {
            return Err(libc::EACCES);
        }
        if let Some(size) = attr.size {
            self.with_write_fd(|fd| sys::ftruncate(fd, size))?;
        }
        if attr.uid.is_some() || attr.gid.is_some() {
            let fd = self.path_fd()?;
            sys::chown_fd(
                fd.as_fd(),
                attr.uid.unwrap_or(u32::MAX),
                attr.gid.unwrap_or(u32::MAX),
            )?;
        }
        if let Some(mode) = attr.mode {
            if self.file_type == FileType::Symlink {
                return Err(libc::EOPNOTSUPP);
            }
            sys::chmod_fd(self.path_fd()?.as_fd(), mode & 0o7777)?;
        }
        if attr.atime.is_some() || attr.mtime.is_some() {
            if self.file_type == FileType::Symlink {
                let (parent, name) = self.origin().ok_or(libc::EIO)?;
                let parent_fd = parent.path_fd()?;
                let st = sys::fstatat_nofollow(parent_fd.as_fd(), &name)?;
                if !self.is_same(&st) {
                    return Err(libc::ESTALE);
                }
                sys::utimens_at(parent_fd.as_fd(), &name, attr.atime, attr.mtime)?;
            } else {
                sys::utimens_fd(self.path_fd()?.as_fd(), attr.atime, attr.mtime)?;
            }
        }
        Ok(())
    }

    fn open(&self, flags: i32) -> Result<Option<Arc<dyn FileDescription>>, Errno> {
        let writes = flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0;
        match self.file_type {
            FileType::Directory if writes => Err(libc::EISDIR),
            FileType::Regular if writes && !self.shared.writable => Err(libc::EROFS),
            FileType::Directory | FileType::Regular if self.denied => Err(libc::EACCES),
            // Devices, fifos and sockets: the VFS must not open host ones (module docs);
            // `read_at` refuses them anyway.
            _ => Ok(None),
        }
    }

    fn getxattr(&self, name: &[u8]) -> Result<Vec<u8>, Errno> {
        if name.is_empty() || name.len() > 255 {
            return Err(libc::ERANGE);
        }
        if !xattr_visible(name) {
            return Err(if name.starts_with(b"trusted.") {
                libc::ENODATA
            } else {
                libc::EOPNOTSUPP
            });
        }
        let name = CString::new(name).map_err(|_| libc::EINVAL)?;
        let Some((_fd, path)) = self.xattr_path()? else {
            return Err(libc::ENODATA);
        };
        sys::getxattr(&path, &name)
    }

    fn setxattr(&self, name: &[u8], value: &[u8], flags: i32) -> Result<(), Errno> {
        let name = self.xattr_name_to_change(name)?;
        let Some((_fd, path)) = self.xattr_path()? else {
            return Err(libc::EPERM);
        };
        sys::setxattr(&path, &name, value, flags)
    }

    fn listxattr(&self) -> Result<Vec<Vec<u8>>, Errno> {
        let Some((_fd, path)) = self.xattr_path()? else {
            return Ok(Vec::new());
        };
        match sys::listxattr(&path) {
            Ok(names) => Ok(names.into_iter().filter(|n| xattr_visible(n)).collect()),
            Err(libc::EOPNOTSUPP) => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }

    fn removexattr(&self, name: &[u8]) -> Result<(), Errno> {
        let name = self.xattr_name_to_change(name)?;
        let Some((_fd, path)) = self.xattr_path()? else {
            return Err(libc::ENODATA);
        };
        sys::removexattr(&path, &name)
    }

    fn statfs(&self) -> Result<StatFs, Errno> {
        let fd = self.path_fd()?;
        let st = sys::fstatfs(fd.as_fd())?;
        let mount_flags = sys::mount_flags(fd.as_fd())?;
        #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
        Ok(StatFs {
            fs_type: i64::from(fs_magic(&st)),
            block_size: st.f_bsize as i64,
            blocks: st.f_blocks as u64,
            blocks_free: st.f_bfree as u64,
            blocks_available: st.f_bavail as u64,
            files: st.f_files as u64,
            files_free: st.f_ffree as u64,
            name_max: st.f_namelen as i64,
            flags: if self.shared.writable {
                mount_flags
            } else {
                mount_flags | libc::ST_RDONLY as u64
            } as i64,
        })
    }

    fn read_only(&self) -> bool {
        !self.shared.writable
    }
}
