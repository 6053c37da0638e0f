//! The VFS vocabulary and filesystems.
//!
//! For now this holds what the foundation needs: the [`FileDescription`] contract and a
//! passthrough of host file descriptors, used for the standard streams `runsc do` hands to
//! the application. Path resolution, mounts, tmpfs, devfs, procfs and ImgFS come with the VFS.

mod byte_queue;
pub mod containerfs;
pub mod dev;
pub mod devpts;
pub mod epoll;
pub mod eventfd;
pub mod host;
pub mod hostfs;
pub mod hostinet;
pub mod imgfs;
pub mod inotify;
pub mod lease;
pub mod lock;
pub mod overlay;
pub mod pipe;
pub mod timerfd;
pub mod tmpfs;
pub mod tty;
pub mod unix;
pub mod vfs;
pub mod waiter;

/// A Linux errno (positive).
pub type Errno = i32;

/// Metadata of an open file, in Linux's `struct stat` terms.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stat {
    pub dev: u64,
    pub ino: u64,
    pub nlink: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub rdev: u64,
    pub size: i64,
    pub blksize: i64,
    pub blocks: i64,
    pub atime: (i64, i64),
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

/// An open file description: what an fd refers to. Offsets and status flags live here.
pub trait FileDescription: Send + Sync {
    /// Reads at the current offset.
    fn read(&self, buf: &mut [u8]) -> Result<usize, Errno>;
    /// Writes at the current offset.
    fn write(&self, buf: &[u8]) -> Result<usize, Errno>;
    /// Reads at `offset` without moving the file offset. The default is a stream's: ESPIPE.
    fn pread(&self, _buf: &mut [u8], _offset: i64) -> Result<usize, Errno> {
        Err(libc::ESPIPE)
    }
    /// Writes at `offset` without moving the file offset. The default is a stream's: ESPIPE.
    fn pwrite(&self, _buf: &[u8], _offset: i64) -> Result<usize, Errno> {
        Err(libc::ESPIPE)
    }
    /// Moves the file offset (`lseek`). The default is a stream's: ESPIPE.
    fn seek(&self, _offset: i64, _whence: i32) -> Result<i64, Errno> {
        Err(libc::ESPIPE)
    }
    /// File metadata.
    fn stat(&self) -> Result<Stat, Errno>;
    /// The terminal behind this description (a host terminal passed as a standard stream),
    /// for the terminal ioctls; None gives ENOTTY, as for any file that is no terminal.
    fn terminal(&self) -> Option<&dyn tty::Terminal> {
        None
    }
    /// Whether an operation on this file may block (pipes, terminals, sockets).
    fn may_block(&self) -> bool;
    /// `read` honouring the description's status flags (O_NONBLOCK).
    fn read_with_flags(&self, buf: &mut [u8], _flags: u32) -> Result<usize, Errno> {
        self.read(buf)
    }
    /// `write` honouring the description's status flags (O_NONBLOCK).
    fn write_with_flags(&self, buf: &[u8], _flags: u32) -> Result<usize, Errno> {
        self.write(buf)
    }
    /// F_GETPIPE_SZ (`set` None) and F_SETPIPE_SZ: EBADF for anything but a pipe.
    fn pipe_size(&self, _set: Option<u64>, _privileged: bool) -> Result<u64, Errno> {
        Err(libc::EBADF)
    }
    /// Bytes readable without blocking (`FIONREAD`).
    fn bytes_available(&self) -> Result<u32, Errno> {
        Err(libc::ENOTTY)
    }
    /// The events among `mask` (`waiter::POLL*` bits) that hold now. Callers put POLLERR and
    /// POLLHUP in `mask` when they want them (poll and epoll always do). The default is a
    /// regular file's: always readable and writable. Must not block.
    fn readiness(&self, mask: u32) -> u32 {
        mask & waiter::DEFAULT_READY
    }
    /// The queue notified when readiness may change, or None for a file whose readiness
    /// never changes (the default). epoll refuses files without one (EPERM), as Linux refuses
    /// files without a poll method.
    fn wait_queue(&self) -> Option<&waiter::WaitQueue> {
        None
    }
    /// The pipe end behind this description, for splice and tee.
    fn as_pipe(&self) -> Option<&pipe::PipeEnd> {
        None
    }
    /// The epoll instance behind this description, for epoll_ctl and epoll_wait.
    fn as_epoll(&self) -> Option<&epoll::Epoll> {
        None
    }
    /// The eventfd behind this description, for aio's completion notification (IOCB_FLAG_RESFD).
    fn as_eventfd(&self) -> Option<&eventfd::EventFd> {
        None
    }
    /// The timerfd behind this description, for timerfd_settime and timerfd_gettime.
    fn as_timerfd(&self) -> Option<&timerfd::TimerFd> {
        None
    }
    /// The AF_UNIX socket behind this description, for the socket calls.
    fn unix_socket(&self) -> Option<&unix::UnixSocket> {
        None
    }
    /// The host-backed socket (AF_INET, AF_INET6, AF_NETLINK) behind this description.
    fn host_socket(&self) -> Option<&hostinet::HostSocket> {
        None
    }
    /// The concrete description, for kinds defined outside this crate (the sentry's
    /// signalfd) that their own system calls need back.
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
}
