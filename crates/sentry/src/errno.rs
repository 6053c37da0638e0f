//! Linux error numbers as the guest sees them.

/// A positive Linux errno. System calls return `-errno` in RAX.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Errno(pub i32);

macro_rules! errnos {
    ($($name:ident),* $(,)?) => {
        impl Errno {
            $(pub const $name: Errno = Errno(libc::$name);)*
        }
    };
}

errnos!(
    EPERM,
    ENOENT,
    ESRCH,
    EINTR,
    EIO,
    E2BIG,
    ENOEXEC,
    EBADF,
    ECHILD,
    EAGAIN,
    ENOMEM,
    EACCES,
    EFAULT,
    EBUSY,
    EEXIST,
    ENODEV,
    ENOTDIR,
    EISDIR,
    EINVAL,
    EMFILE,
    ENOTTY,
    EFBIG,
    ESPIPE,
    EROFS,
    ERANGE,
    ENAMETOOLONG,
    ENOSYS,
    ELOOP,
    EOVERFLOW,
    EOPNOTSUPP,
    ENOTSUP,
);

/// Result of a system call handler: the value for RAX, or an errno.
pub type SysResult = Result<u64, Errno>;

impl Errno {
    /// The errno of a host `nix` error (host calls made on the guest's behalf).
    pub fn from_nix(e: nix::errno::Errno) -> Errno {
        Errno(e as i32)
    }

    /// The errno of a host I/O error.
    pub fn from_io(e: &std::io::Error) -> Errno {
        Errno(e.raw_os_error().unwrap_or(libc::EIO))
    }
}

impl From<nix::errno::Errno> for Errno {
    fn from(e: nix::errno::Errno) -> Self {
        Errno::from_nix(e)
    }
}
