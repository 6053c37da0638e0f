//! /proc/PID/fd/N as a magic link.
//!
//! On Linux, following /proc/PID/fd/N lands on the open file itself, whatever its link
//! text says (`/tmp/x`, `pipe:[INO]`, `/tmp/x (deleted)`): opening it opens that file
//! again, even if it was renamed or deleted since, and `..` below a directory's link is
//! the directory's real parent. Shells lean on it: bash's `<(...)` hands the program
//! `/dev/fd/63`, a pipe, and `/dev/stdin` is `/proc/self/fd/0`. A file with a place in a
//! tree (live or deleted) is reached at that place ([`Inode::magic_location`]); one without
//! (a pipe, a host stream, a socket) through a node of its own ([`Inode::magic_link`]).
//!
//! What an open through the link gives (Linux's rules, fs/pipe.c fifo_open and the
//! file systems' open):
//! - a file with a place: the file again, a new description with its own offset;
//! - a pipe: a new end of the same pipe, with the access mode asked for, as a FIFO opens;
//! - a host stream (`runsc do`'s standard streams, a terminal): the same host descriptor
//!   in a new description (partial: a host regular file's offset is shared, where Linux
//!   opens it anew at 0, and O_TRUNC leaves it whole; a pipe or terminal has neither);
//! - anything else (sockets, eventfd, epoll, timerfd, signalfd, inotify): ENXIO, as Linux
//!   gives for files without an open (sock_no_open, anon inodes).
//!
//! /proc/PID/exe, cwd and root are magic links too ([`TaskLink`]): to the program's file,
//! the working directory and the root directory themselves.
//!
//! Reading or following any of them for another process passes Linux's ptrace access
//! check (PTRACE_MODE_READ_FSCREDS, fs/proc/base.c proc_fd_access_allowed), EACCES
//! otherwise: the link's directory's mode alone would let a root without CAP_SYS_PTRACE
//! open another user's pipes and deleted files.

use std::any::Any;
use std::sync::{Arc, Weak};

use fs::vfs::{FileType, Inode, Location, OpenFile};
use fs::{Errno, FileDescription, Stat};

use super::process::ProcessInfo;
use crate::ptrace::AccessMode;

/// Linux's proc_fd_access_allowed: whether the caller may read or follow a link into
/// `process`.
fn access(process: &Weak<ProcessInfo>) -> Result<(), Errno> {
    let p = process.upgrade().ok_or(libc::ENOENT)?;
    if p.may_be_accessed(AccessMode::READ_FSCREDS) {
        Ok(())
    } else {
        Err(libc::EACCES)
    }
}

/// The path of `loc` as the reader of a link sees it, as Linux's d_path from the caller's
/// root: from the root of the process whose system call this thread serves (else from
/// `p`'s). A chrooted process's files are named in full to a reader outside its root.
fn path_for_reader(p: &ProcessInfo, loc: &Location) -> Vec<u8> {
    let root = p
        .kernel
        .upgrade()
        .and_then(|k| k.procfs.current())
        .map(|reader| reader.fs.root())
        .unwrap_or_else(|| p.fs.root());
    p.fs.ns().path(loc, &root)
}

/// /proc/PID/fd/N: a link whose text is `text` (or the file's path, as the reader sees
/// it, when None) and whose target is the open file itself. It holds the file weakly, as
/// Linux's link looks the descriptor up when followed: a link left in a cache must not
/// keep a pipe's end open (its reader would never see EOF).
pub(super) struct FdLink {
    stat: Stat,
    text: Option<Vec<u8>>,
    file: Weak<OpenFile>,
    owner: (u32, u32),
    process: Weak<ProcessInfo>,
}

impl FdLink {
    /// The link for descriptor `file` of `process`, shown as `text` (None: the file's
    /// path, as each reader sees it). `owner` is the (uid, gid) a pipe or host stream
    /// opened through it is judged against: the process's effective ids, as the creator
    /// of a pipe owns it on Linux. `shown` is the link's own owner
    /// ([`ProcessInfo::dump_owner`]).
    pub(super) fn build(
        ino: u64,
        process: &Arc<ProcessInfo>,
        file: &Arc<OpenFile>,
        text: Option<Vec<u8>>,
        owner: (u32, u32),
        shown: (u32, u32),
    ) -> Arc<dyn Inode> {
        let mut stat = super::nodes::base_stat(ino, libc::S_IFLNK | link_mode(file), 1);
        stat.size = 64;
        (stat.uid, stat.gid) = shown;
        Arc::new(FdLink {
            stat,
            text,
            file: Arc::downgrade(file),
            owner,
            process: Arc::downgrade(process),
        })
    }
}

/// Linux's proc_fd_link mode: read and execute for the owner when the file is open for
/// reading, write and execute when for writing.
fn link_mode(file: &OpenFile) -> u32 {
    let mut mode = 0;
    if file.readable() {
        mode |= 0o500;
    }
    if file.writable() {
        mode |= 0o300;
    }
    mode
}

impl Inode for FdLink {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.stat)
    }

    fn file_type(&self) -> FileType {
        FileType::Symlink
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        access(&self.process)?;
        // A descriptor closed since this link was made: gone, as Linux's link is.
        let file = self.file.upgrade().ok_or(libc::ENOENT)?;
        match (&self.text, &file.location, self.process.upgrade()) {
            (Some(text), _, _) => Ok(text.clone()),
            (None, Some(loc), Some(p)) => Ok(path_for_reader(&p, loc)),
            _ => Err(libc::ENOENT),
        }
    }

    fn magic_location(&self) -> Option<Location> {
        // A file with a place (a deleted one's is dead): that place, so that it reopens as
        // itself and its new descriptors show the same path. A descriptor closed since:
        // None, and the walk's readlink gives ENOENT, as Linux's. A caller refused by the
        // access check: None too, and the walk's readlink gives EACCES.
        access(&self.process).ok()?;
        self.file.upgrade()?.location.clone()
    }

    fn magic_link(&self) -> Option<Arc<dyn Inode>> {
        access(&self.process).ok()?;
        let file = self.file.upgrade()?;
        Some(Arc::new(Reopen {
            file: Arc::downgrade(&file),
            owner: self.owner,
        }))
    }
}

/// An open file without a path, as the walk through its fd link reaches it.
struct Reopen {
    file: Weak<OpenFile>,
    owner: (u32, u32),
}

/// What an open through the link makes of the file's description.
enum Kind<'a> {
    Pipe(&'a fs::pipe::PipeEnd),
    HostStream(&'a Arc<dyn FileDescription>),
    Other,
}

fn kind(file: &OpenFile) -> Kind<'_> {
    let Some(desc) = file.special_desc() else {
        return Kind::Other;
    };
    let any = desc.as_any();
    if let Some(end) = any.and_then(|a| a.downcast_ref::<fs::pipe::PipeEnd>()) {
        Kind::Pipe(end)
    } else if any.is_some_and(|a| a.is::<fs::host::HostFile>()) {
        Kind::HostStream(desc)
    } else {
        Kind::Other
    }
}

/// Whether `inode` is a file without a path reached through an fd magic link: what an open
/// of it makes has no path either, and its own mount is not the one the walk ended on (see
/// syscalls::fd's nodev rule).
pub fn is_reopened(inode: &dyn Inode) -> bool {
    inode.as_any().is::<Reopen>()
}

impl Inode for Reopen {
    fn stat(&self) -> Result<Stat, Errno> {
        let file = self.file.upgrade().ok_or(libc::ENOENT)?;
        let mut st = file.stat()?;
        if !matches!(kind(&file), Kind::Other) {
            (st.uid, st.gid) = self.owner;
        }
        Ok(st)
    }

    fn file_type(&self) -> FileType {
        self.file
            .upgrade()
            .and_then(|f| f.stat().ok())
            .and_then(|st| FileType::from_mode(st.mode))
            .unwrap_or(FileType::Regular)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    /// O_TRUNC through the link (`echo x > /dev/stderr` when stderr is a host file):
    /// ignored for a host stream, whose host file the sandbox never truncates (partial: Linux
    /// truncates it); a pipe has no size. Anything else is refused, as before the open.
    fn setattr(&self, attr: &fs::vfs::SetAttr) -> Result<(), Errno> {
        let file = self.file.upgrade().ok_or(libc::ENOENT)?;
        let only_size = attr.only_size();
        match kind(&file) {
            Kind::Pipe(_) | Kind::HostStream(_) if only_size => Ok(()),
            _ => Err(libc::EPERM),
        }
    }

    fn open(&self, flags: i32) -> Result<Option<Arc<dyn FileDescription>>, Errno> {
        let file = self.file.upgrade().ok_or(libc::ENOENT)?;
        match kind(&file) {
            Kind::Pipe(end) => {
                let nonblock = flags & libc::O_NONBLOCK != 0;
                Ok(Some(end.reopen(flags & libc::O_ACCMODE, nonblock)?))
            }
            Kind::HostStream(desc) => Ok(Some(desc.clone())),
            Kind::Other => Err(libc::ENXIO),
        }
    }
}

/// Which of a process's places a [`TaskLink`] leads to.
#[derive(Clone, Copy)]
pub(super) enum Place {
    /// /proc/PID/exe: the program (Linux's mm->exe_file).
    Exe,
    /// /proc/PID/cwd: the working directory.
    Cwd,
    /// /proc/PID/root: the root directory (another than the sandbox's after chroot).
    Root,
}

/// /proc/PID/exe, cwd and root: magic links, as Linux's proc_exe_link, proc_cwd_link and
/// proc_root_link. Following one lands on the file or directory itself, wherever it has
/// been renamed to or if it was deleted since; the text only names it.
pub(super) struct TaskLink {
    stat: Stat,
    process: Weak<ProcessInfo>,
    place: Place,
}

impl TaskLink {
    pub(super) fn build(ino: u64, process: &Arc<ProcessInfo>, place: Place) -> Arc<dyn Inode> {
        let mut stat = super::nodes::base_stat(ino, libc::S_IFLNK | 0o777, 1);
        stat.size = 64;
        (stat.uid, stat.gid) = process.dump_owner();
        Arc::new(TaskLink {
            stat,
            process: Arc::downgrade(process),
            place,
        })
    }

    /// Where the link leads, after the access check. ENOENT for a process that has
    /// ended (a zombie has neither program nor directories, as Linux's).
    fn target(&self) -> Result<Location, Errno> {
        access(&self.process)?;
        let p = self.process.upgrade().ok_or(libc::ENOENT)?;
        match self.place {
            Place::Exe => {
                let mm = p.mm().ok_or(libc::ENOENT)?;
                let exe = mm.lock().exe_file.clone();
                exe.ok_or(libc::ENOENT)
            }
            _ if p.tids().is_empty() => Err(libc::ENOENT),
            Place::Cwd => Ok(p.fs.cwd()),
            Place::Root => Ok(p.fs.root()),
        }
    }
}

impl Inode for TaskLink {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.stat)
    }

    fn file_type(&self) -> FileType {
        FileType::Symlink
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn readlink(&self) -> Result<Vec<u8>, Errno> {
        let target = self.target()?;
        let p = self.process.upgrade().ok_or(libc::ENOENT)?;
        Ok(path_for_reader(&p, &target))
    }

    fn magic_location(&self) -> Option<Location> {
        // Refused or gone: None, and the walk's readlink gives the error.
        self.target().ok()
    }

    fn statfs(&self) -> Result<fs::vfs::StatFs, Errno> {
        Ok(super::nodes::statfs())
    }
}
