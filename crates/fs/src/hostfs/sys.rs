//! Thin, checked wrappers around the host system calls hostfs uses.
//!
//! Every path handed to the host here is either a single, already validated component
//! relative to a directory descriptor we hold, the empty path with `AT_EMPTY_PATH`, `"."`
//! relative to a directory descriptor, or `/proc/self/fd/N` for a descriptor we hold.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::Errno;

/// `f_type` of procfs.
const PROC_SUPER_MAGIC: u32 = 0x9fa0;

/// The largest xattr value Linux allows (`XATTR_SIZE_MAX`).
const XATTR_SIZE_MAX: usize = 65536;
/// The largest xattr name list Linux returns (`XATTR_LIST_MAX`).
const XATTR_LIST_MAX: usize = 65536;

pub(super) fn errno() -> Errno {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Turns a returned descriptor into an [`OwnedFd`], or the errno.
fn owned(fd: libc::c_long) -> Result<OwnedFd, Errno> {
    if fd < 0 {
        return Err(errno());
    }
    let raw = RawFd::try_from(fd).map_err(|_| libc::EIO)?;
    // SAFETY: the kernel just returned `raw` as a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Turns a descriptor returned by `open(2)` and the like into an [`OwnedFd`].
pub(super) fn owned_fd(fd: libc::c_int) -> Result<OwnedFd, Errno> {
    owned(fd.into())
}

/// Whether `/proc/self/fd` is procfs, so that its entries are the kernel's magic links.
pub(super) fn proc_fd_is_procfs() -> bool {
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: the path is NUL-terminated; `st` is writable for one statfs.
    let r = unsafe { libc::statfs(c"/proc/self/fd".as_ptr(), st.as_mut_ptr()) };
    if r < 0 {
        return false;
    }
    // SAFETY: statfs succeeded, so it filled `st`.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)]
    let magic = st.f_type as u64 as u32;
    magic == PROC_SUPER_MAGIC
}

/// Opens `name`, a single validated component, in the directory `dir` as an `O_PATH`
/// descriptor without following a symlink and without leaving `dir`.
///
/// Uses `openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS`
/// (plus `RESOLVE_NO_XDEV` if `no_xdev`). On kernels without `openat2` (`ENOSYS`, before
/// 5.6) it falls back, once and for all (`use_openat2` is cleared), to
/// `openat(O_PATH | O_NOFOLLOW)`: with a single component that is neither `.` nor `..` and
/// holds no `/`, the kernel resolves nothing but that final component, which `O_NOFOLLOW`
/// keeps from being followed, so the two are equivalent except for `RESOLVE_NO_XDEV`,
/// which the fallback cannot express: the caller also compares `st_dev` with the parent's.
pub(super) fn open_beneath(
    dir: BorrowedFd<'_>,
    name: &CStr,
    no_xdev: bool,
    use_openat2: &AtomicBool,
) -> Result<OwnedFd, Errno> {
    let flags = libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    if use_openat2.load(Ordering::Relaxed) {
        let mut resolve =
            libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS;
        if no_xdev {
            resolve |= libc::RESOLVE_NO_XDEV;
        }
        // SAFETY: `open_how` is three integers, for which zero is valid.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = flags as u64;
        how.resolve = resolve;
        // openat2 may fail with EAGAIN when a concurrent rename races with the lookup; it
        // is worth a few retries.
        for _ in 0..8 {
            // SAFETY: `name` is a NUL-terminated string and `how` a valid `open_how` of the
            // size passed; both outlive the call. The returned fd is owned by `owned`.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_openat2,
                    dir.as_raw_fd(),
                    name.as_ptr(),
                    &how as *const libc::open_how,
                    std::mem::size_of::<libc::open_how>(),
                )
            };
            match owned(r) {
                Err(libc::EAGAIN) => continue,
                Err(libc::ENOSYS) => {
                    use_openat2.store(false, Ordering::Relaxed);
                    break;
                }
                other => return other,
            }
        }
        if use_openat2.load(Ordering::Relaxed) {
            return Err(libc::EAGAIN);
        }
    }
    // SAFETY: `name` is NUL-terminated and outlives the call; the fd is owned by `owned`.
    let r = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags) };
    owned(r.into())
}

/// `fstatat(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)`: the object `fd` refers to.
pub(super) fn fstat(fd: BorrowedFd<'_>) -> Result<libc::stat, Errno> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: the path is an empty NUL-terminated string; `st` is writable for one stat.
    let r = unsafe {
        libc::fstatat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            st.as_mut_ptr(),
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if r < 0 {
        return Err(errno());
    }
    // SAFETY: fstatat succeeded, so it filled `st`.
    Ok(unsafe { st.assume_init() })
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT)` for a single component
/// (returned by `getdents64`, or validated by the caller).
pub(super) fn fstatat_nofollow(dir: BorrowedFd<'_>, name: &CStr) -> Result<libc::stat, Errno> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: `name` is NUL-terminated; `st` is writable for one stat.
    let r = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW | libc::AT_NO_AUTOMOUNT,
        )
    };
    if r < 0 {
        return Err(errno());
    }
    // SAFETY: fstatat succeeded, so it filled `st`.
    Ok(unsafe { st.assume_init() })
}

/// `fstatfs` (allowed on `O_PATH` descriptors).
pub(super) fn fstatfs(fd: BorrowedFd<'_>) -> Result<libc::statfs, Errno> {
    let mut st = std::mem::MaybeUninit::<libc::statfs>::uninit();
    // SAFETY: `st` is writable for one statfs.
    let r = unsafe { libc::fstatfs(fd.as_raw_fd(), st.as_mut_ptr()) };
    if r < 0 {
        return Err(errno());
    }
    // SAFETY: fstatfs succeeded, so it filled `st`.
    Ok(unsafe { st.assume_init() })
}

/// The `ST_*` mount flags of the filesystem `fd` is on (`fstatvfs`; libc's `statfs` hides
/// `f_flags`).
pub(super) fn mount_flags(fd: BorrowedFd<'_>) -> Result<u64, Errno> {
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `st` is writable for one statvfs.
    let r = unsafe { libc::fstatvfs(fd.as_raw_fd(), st.as_mut_ptr()) };
    if r < 0 {
        return Err(errno());
    }
    // SAFETY: fstatvfs succeeded, so it filled `st`.
    #[allow(clippy::useless_conversion)]
    Ok(u64::from(unsafe { st.assume_init() }.f_flag))
}

/// `readlinkat(fd, "")`: the target of the symlink an `O_PATH | O_NOFOLLOW` fd refers to.
pub(super) fn readlink(fd: BorrowedFd<'_>) -> Result<Vec<u8>, Errno> {
    let mut len = libc::PATH_MAX as usize;
    loop {
        let mut buf = vec![0u8; len];
        // SAFETY: `buf` is writable for `buf.len()` bytes; the path is an empty C string.
        let r = unsafe {
            libc::readlinkat(
                fd.as_raw_fd(),
                c"".as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        if r < 0 {
            return Err(errno());
        }
        let n = r as usize;
        if n < buf.len() {
            buf.truncate(n);
            return Ok(buf);
        }
        // Possibly truncated: try a larger buffer, within reason.
        if len >= 1 << 20 {
            return Err(libc::ENAMETOOLONG);
        }
        len *= 4;
    }
}

/// `open(2)`s with `O_NOATIME` first, so reading does not touch the host's access times;
/// `O_NOATIME` needs ownership or `CAP_FOWNER` (EPERM otherwise), so it retries without.
fn open_noatime(
    open: impl Fn(libc::c_int) -> libc::c_int,
    flags: libc::c_int,
) -> Result<OwnedFd, Errno> {
    match owned(open(flags | libc::O_NOATIME).into()) {
        Err(libc::EPERM) => owned(open(flags).into()),
        other => other,
    }
}

/// Opens the directory `dir` (an `O_PATH` fd) for reading its entries.
pub(super) fn open_dir(dir: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    open_noatime(
        // SAFETY: "." is a NUL-terminated string; the fd is owned by `open_noatime`.
        |f| unsafe { libc::openat(dir.as_raw_fd(), c".".as_ptr(), f) },
        flags,
    )
}

/// `/proc/self/fd/N`: names exactly the object `fd` refers to (a magic link).
pub(super) fn proc_path(fd: BorrowedFd<'_>) -> CString {
    // Digits only: no interior NUL is possible.
    CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default()
}

/// Reopens the object an `O_PATH` fd refers to for reading, through its
/// `/proc/self/fd/N` magic link. The caller has checked it is a regular file; `O_NONBLOCK`
/// makes sure that, should it somehow not be, opening a fifo cannot block the sentry.
pub(super) fn reopen_read(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let path = proc_path(fd);
    let flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK;
    open_noatime(
        // SAFETY: `path` is NUL-terminated; the fd is owned by `open_noatime`.
        |f| unsafe { libc::open(path.as_ptr(), f) },
        flags,
    )
}

/// `pread` until `buf` is full or the end of the file.
pub(super) fn pread_full(fd: BorrowedFd<'_>, buf: &mut [u8], offset: i64) -> Result<usize, Errno> {
    let mut done = 0usize;
    while done < buf.len() {
        let pos = offset.checked_add(done as i64).ok_or(libc::EINVAL)?;
        let rest = &mut buf[done..];
        // SAFETY: `rest` is writable for `rest.len()` bytes.
        let r = unsafe { libc::pread(fd.as_raw_fd(), rest.as_mut_ptr().cast(), rest.len(), pos) };
        if r < 0 {
            match errno() {
                libc::EINTR => continue,
                e if done > 0 => {
                    tracing::debug!("hostfs: pread error {e} after {done} bytes");
                    break;
                }
                e => return Err(e),
            }
        }
        if r == 0 {
            break;
        }
        done += r as usize;
    }
    Ok(done)
}

/// One entry of a host directory.
pub(super) struct RawDirent {
    pub name: Vec<u8>,
    pub ino: u64,
    pub d_type: u8,
}

/// Every entry of the directory open for reading as `dir`, `.` and `..` excluded.
pub(super) fn getdents(dir: BorrowedFd<'_>) -> Result<Vec<RawDirent>, Errno> {
    // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
    const HEADER: usize = 19;
    let mut out = Vec::new();
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // SAFETY: `buf` is writable for `buf.len()` bytes.
        let r = unsafe {
            libc::syscall(
                libc::SYS_getdents64,
                dir.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.len(),
            )
        };
        if r < 0 {
            match errno() {
                libc::EINTR => continue,
                e => return Err(e),
            }
        }
        let n = (r as usize).min(buf.len());
        if n == 0 {
            return Ok(out);
        }
        let mut pos = 0usize;
        while pos + HEADER <= n {
            let rec = &buf[pos..n];
            let reclen = usize::from(u16::from_ne_bytes([rec[16], rec[17]]));
            if reclen < HEADER || reclen > rec.len() {
                return Err(libc::EIO);
            }
            let mut ino = [0u8; 8];
            ino.copy_from_slice(&rec[0..8]);
            let d_type = rec[18];
            let raw_name = &rec[HEADER..reclen];
            let len = raw_name
                .iter()
                .position(|&b| b == 0)
                .unwrap_or(raw_name.len());
            let name = &raw_name[..len];
            if name != b"." && name != b".." && !name.is_empty() {
                out.push(RawDirent {
                    name: name.to_vec(),
                    ino: u64::from_ne_bytes(ino),
                    d_type,
                });
            }
            pos += reclen;
        }
    }
}

fn check_len(r: isize) -> Result<usize, Errno> {
    if r < 0 {
        Err(errno())
    } else {
        Ok(r as usize)
    }
}

/// `getxattr(path, name)`, sized by a first call and retried if the value grows meanwhile.
pub(super) fn getxattr(path: &CStr, name: &CStr) -> Result<Vec<u8>, Errno> {
    for _ in 0..4 {
        // SAFETY: both strings are NUL-terminated; a null buffer of size 0 asks the size.
        let size = check_len(unsafe {
            libc::getxattr(path.as_ptr(), name.as_ptr(), std::ptr::null_mut(), 0)
        })?;
        let mut buf = vec![0u8; size.min(XATTR_SIZE_MAX)];
        // SAFETY: `buf` is writable for `buf.len()` bytes.
        let r = unsafe {
            libc::getxattr(
                path.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        };
        match check_len(r) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(libc::ERANGE) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(libc::ERANGE)
}

/// `listxattr(path)`: the names, split.
pub(super) fn listxattr(path: &CStr) -> Result<Vec<Vec<u8>>, Errno> {
    for _ in 0..4 {
        // SAFETY: `path` is NUL-terminated; a null buffer of size 0 asks the size.
        let size = check_len(unsafe { libc::listxattr(path.as_ptr(), std::ptr::null_mut(), 0) })?;
        let mut buf = vec![0u8; size.min(XATTR_LIST_MAX)];
        // SAFETY: `buf` is writable for `buf.len()` bytes.
        let r = unsafe { libc::listxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        match check_len(r) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf
                    .split(|&b| b == 0)
                    .filter(|s| !s.is_empty())
                    .map(<[u8]>::to_vec)
                    .collect());
            }
            Err(libc::ERANGE) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(libc::ERANGE)
}

// --- writing (only for filesystems made writable: a rw bind mount) ---------------------
//
// Every name below is a single validated component relative to a directory descriptor we
// hold (an `O_PATH` one: the `*at` calls take those as their directory), and no call
// follows a symlink in that component: creation is `O_EXCL`/`mkdirat`/`symlinkat`/
// `mknodat` (which never follow), removal and renaming act on the name itself. Objects
// already looked up are changed through their own descriptor (`/proc/self/fd/N`, a magic
// link naming exactly that object, never resolved by name).

fn check(r: libc::c_int) -> Result<(), Errno> {
    if r < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// Creates the regular file `name` in `dir` (`O_CREAT | O_EXCL | O_NOFOLLOW`).
pub(super) fn create_file(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> Result<(), Errno> {
    let flags = libc::O_CREAT
        | libc::O_EXCL
        | libc::O_WRONLY
        | libc::O_NOFOLLOW
        | libc::O_CLOEXEC
        | libc::O_NOCTTY
        | libc::O_NONBLOCK;
    // SAFETY: `name` is NUL-terminated; the fd is owned (and closed) right away.
    let r = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, mode) };
    owned(r.into()).map(drop)
}

/// `mkdirat(dir, name, mode)`.
pub(super) fn mkdirat(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> Result<(), Errno> {
    // SAFETY: `name` is NUL-terminated.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode) })
}

/// `symlinkat(target, dir, name)`: the target is stored, never resolved by the host for us.
pub(super) fn symlinkat(target: &CStr, dir: BorrowedFd<'_>, name: &CStr) -> Result<(), Errno> {
    // SAFETY: both strings are NUL-terminated.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) })
}

/// `mknodat(dir, name, mode, 0)` for a fifo or a socket node (never a device).
pub(super) fn mknodat(dir: BorrowedFd<'_>, name: &CStr, mode: u32) -> Result<(), Errno> {
    let kind = mode & libc::S_IFMT;
    if kind != libc::S_IFIFO && kind != libc::S_IFSOCK {
        return Err(libc::EPERM);
    }
    // SAFETY: `name` is NUL-terminated.
    check(unsafe { libc::mknodat(dir.as_raw_fd(), name.as_ptr(), mode, 0) })
}

/// `unlinkat(dir, name, AT_REMOVEDIR if dir_too)`.
pub(super) fn unlinkat(dir: BorrowedFd<'_>, name: &CStr, rmdir: bool) -> Result<(), Errno> {
    let flags = if rmdir { libc::AT_REMOVEDIR } else { 0 };
    // SAFETY: `name` is NUL-terminated.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) })
}

/// `renameat2(old_dir, old, new_dir, new, flags)`.
pub(super) fn renameat2(
    old_dir: BorrowedFd<'_>,
    old: &CStr,
    new_dir: BorrowedFd<'_>,
    new: &CStr,
    flags: u32,
) -> Result<(), Errno> {
    // SAFETY: both names are NUL-terminated.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            old_dir.as_raw_fd(),
            old.as_ptr(),
            new_dir.as_raw_fd(),
            new.as_ptr(),
            flags,
        )
    };
    if r < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// A new name `name` in `dir` for the object `fd` refers to: `linkat` of its
/// `/proc/self/fd/N` with `AT_SYMLINK_FOLLOW`, which links the object the magic link names
/// (no `CAP_DAC_READ_SEARCH` needed, unlike `AT_EMPTY_PATH`).
pub(super) fn link_fd(fd: BorrowedFd<'_>, dir: BorrowedFd<'_>, name: &CStr) -> Result<(), Errno> {
    let path = proc_path(fd);
    // SAFETY: both paths are NUL-terminated.
    check(unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            path.as_ptr(),
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    })
}

/// chmod of the object `fd` refers to (not a symlink), through its magic link.
pub(super) fn chmod_fd(fd: BorrowedFd<'_>, mode: u32) -> Result<(), Errno> {
    let path = proc_path(fd);
    // SAFETY: `path` is NUL-terminated.
    check(unsafe { libc::chmod(path.as_ptr(), mode) })
}

/// `fchownat(fd, "", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)` (u32::MAX: unchanged).
pub(super) fn chown_fd(fd: BorrowedFd<'_>, uid: u32, gid: u32) -> Result<(), Errno> {
    // SAFETY: the path is an empty NUL-terminated string.
    check(unsafe {
        libc::fchownat(
            fd.as_raw_fd(),
            c"".as_ptr(),
            uid,
            gid,
            libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

/// Sets the times of `name` in `dir` without following it (`None`: UTIME_OMIT).
/// A time for utimensat: seconds and nanoseconds, or None to leave it (UTIME_OMIT).
fn utime_spec(t: Option<(i64, i64)>) -> libc::timespec {
    match t {
        Some((s, ns)) => libc::timespec {
            tv_sec: s,
            tv_nsec: ns,
        },
        None => libc::timespec {
            tv_sec: 0,
            tv_nsec: libc::UTIME_OMIT,
        },
    }
}

pub(super) fn utimens_at(
    dir: BorrowedFd<'_>,
    name: &CStr,
    atime: Option<(i64, i64)>,
    mtime: Option<(i64, i64)>,
) -> Result<(), Errno> {
    let times = [utime_spec(atime), utime_spec(mtime)];
    // SAFETY: `name` is NUL-terminated; `times` is two timespecs.
    check(unsafe {
        libc::utimensat(
            dir.as_raw_fd(),
            name.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

/// Sets the times of the object `fd` refers to (not a symlink), through its magic link.
pub(super) fn utimens_fd(
    fd: BorrowedFd<'_>,
    atime: Option<(i64, i64)>,
    mtime: Option<(i64, i64)>,
) -> Result<(), Errno> {
    let path = proc_path(fd);
    let times = [utime_spec(atime), utime_spec(mtime)];
    // SAFETY: `path` is NUL-terminated; `times` is two timespecs.
    check(unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), times.as_ptr(), 0) })
}

/// Reopens the regular file an `O_PATH` fd refers to for writing, through its magic link.
pub(super) fn reopen_write(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    let path = proc_path(fd);
    let flags = libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK;
    // SAFETY: `path` is NUL-terminated; the fd is owned by `owned`.
    owned(unsafe { libc::open(path.as_ptr(), flags) }.into())
}

/// `pwrite` until all of `buf` is written.
pub(super) fn pwrite_full(fd: BorrowedFd<'_>, buf: &[u8], offset: i64) -> Result<usize, Errno> {
    let mut done = 0usize;
    while done < buf.len() {
        let pos = offset.checked_add(done as i64).ok_or(libc::EFBIG)?;
        let rest = &buf[done..];
        // SAFETY: `rest` is readable for `rest.len()` bytes.
        let r = unsafe { libc::pwrite(fd.as_raw_fd(), rest.as_ptr().cast(), rest.len(), pos) };
        if r < 0 {
            match errno() {
                libc::EINTR => continue,
                _ if done > 0 => break,
                e => return Err(e),
            }
        }
        if r == 0 {
            break;
        }
        done += r as usize;
    }
    Ok(done)
}

/// `ftruncate(fd, size)`.
pub(super) fn ftruncate(fd: BorrowedFd<'_>, size: u64) -> Result<(), Errno> {
    let size = i64::try_from(size).map_err(|_| libc::EFBIG)?;
    // SAFETY: plain ftruncate on a descriptor we hold.
    check(unsafe { libc::ftruncate(fd.as_raw_fd(), size) })
}

/// `fallocate(fd, mode, offset, len)`.
pub(super) fn fallocate(fd: BorrowedFd<'_>, mode: i32, offset: u64, len: u64) -> Result<(), Errno> {
    let off = i64::try_from(offset).map_err(|_| libc::EFBIG)?;
    let len = i64::try_from(len).map_err(|_| libc::EFBIG)?;
    // SAFETY: plain fallocate on a descriptor we hold.
    check(unsafe { libc::fallocate(fd.as_raw_fd(), mode, off, len) })
}

/// `fsync(fd)`.
pub(super) fn fsync(fd: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: plain fsync on a descriptor we hold.
    check(unsafe { libc::fsync(fd.as_raw_fd()) })
}

/// `setxattr(path, name, value, flags)`.
pub(super) fn setxattr(path: &CStr, name: &CStr, value: &[u8], flags: i32) -> Result<(), Errno> {
    // SAFETY: both strings are NUL-terminated; `value` is readable for its length.
    check(unsafe {
        libc::setxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            flags,
        )
    })
}

/// `removexattr(path, name)`.
pub(super) fn removexattr(path: &CStr, name: &CStr) -> Result<(), Errno> {
    // SAFETY: both strings are NUL-terminated.
    check(unsafe { libc::removexattr(path.as_ptr(), name.as_ptr()) })
}

/// `lseek(fd, offset, SEEK_DATA or SEEK_HOLE)`.
pub(super) fn seek_data_or_hole(fd: BorrowedFd<'_>, offset: u64, hole: bool) -> Result<u64, Errno> {
    let off = i64::try_from(offset).map_err(|_| libc::ENXIO)?;
    let whence = if hole {
        libc::SEEK_HOLE
    } else {
        libc::SEEK_DATA
    };
    // SAFETY: lseek on a descriptor we hold; the offset is private to this descriptor's
    // users, which only pread and pwrite (they never use the offset).
    let r = unsafe { libc::lseek(fd.as_raw_fd(), off, whence) };
    if r < 0 {
        Err(errno())
    } else {
        Ok(r as u64)
    }
}

/// An unnamed regular file in the directory `dir` (`O_TMPFILE | O_RDWR`, and `O_EXCL`
/// unless it may be linked later).
pub(super) fn tmpfile(dir: BorrowedFd<'_>, mode: u32, linkable: bool) -> Result<OwnedFd, Errno> {
    let mut flags = libc::O_TMPFILE | libc::O_RDWR | libc::O_CLOEXEC;
    if !linkable {
        flags |= libc::O_EXCL;
    }
    // SAFETY: "." is NUL-terminated; the fd is owned by `owned`.
    owned(unsafe { libc::openat(dir.as_raw_fd(), c".".as_ptr(), flags, mode) }.into())
}
