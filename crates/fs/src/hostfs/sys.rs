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
