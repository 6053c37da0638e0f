//! A host terminal shown as `/dev/pts/N` of a devpts instance.
//!
//! A container started with a terminal gets a host pty from the runtime (its master went to
//! `--console-socket`); `runsc do` on a terminal gets the caller's. Under runc such a
//! terminal is the container's `/dev/pts/0`, so `tty`, `ttyname(3)` and `ps` name it, and
//! programs that check `ttyname` (login shells, `script`, `ssh`-like prompts) work. Here the
//! terminal stays the host's (reads, writes and terminal ioctls go to the host pty, which
//! the runtime's caller drives), but the sandbox sees it as a node of its own devpts: the
//! node has the instance's device number, a slave number of its own (the lowest free one,
//! as if the sandbox had allocated it) and the owner the runtime gives a console.
//!
//! The node lives while a sandbox file of the terminal is open, like a pty slave whose
//! master is open.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex, Weak};

use super::{lock, now, Devpts, SLAVE_MAJOR};
use crate::host::HostFile;
use crate::vfs::{FileType, Inode, SetAttr};
use crate::{dev::makedev, Errno, FileDescription, Stat};

/// A host terminal with a number in a devpts instance.
pub struct HostConsole {
    index: u32,
    dev: u64,
    /// The host terminal's device number: the same terminal is shown once per instance.
    host_rdev: u64,
    /// Kept to open new descriptions of the terminal (`open("/dev/pts/N")`).
    fd: OwnedFd,
    node: Mutex<NodeAttrs>,
}

struct NodeAttrs {
    uid: u32,
    gid: u32,
    mode: u32,
    times: (i64, i64),
}

/// The host terminal's device number, if `fd` is a terminal.
pub fn host_terminal(fd: BorrowedFd<'_>) -> Option<u64> {
    // SAFETY: isatty only reads the descriptor's state.
    if unsafe { libc::isatty(fd.as_raw_fd()) } != 1 {
        return None;
    }
    nix::sys::stat::fstat(fd.as_raw_fd())
        .ok()
        .map(|st| st.st_rdev)
}

fn dup(fd: BorrowedFd<'_>) -> Result<OwnedFd, Errno> {
    fd.try_clone_to_owned()
        .map_err(|e| e.raw_os_error().unwrap_or(libc::EMFILE))
}

impl Devpts {
    /// Shows the host terminal `fd` in this instance, owned by `uid` (as runc chowns the
    /// console to the container's user): the node it already has, or one at the lowest free
    /// number. EINVAL if `fd` is not a terminal.
    pub fn show_host_terminal(
        &self,
        fd: BorrowedFd<'_>,
        uid: u32,
    ) -> Result<Arc<HostConsole>, Errno> {
        let host_rdev = host_terminal(fd).ok_or(libc::EINVAL)?;
        let ptys = lock(&self.ptys);
        let mut consoles = lock(&self.consoles);
        consoles.retain(|_, w| w.strong_count() > 0);
        if let Some(c) = consoles
            .values()
            .filter_map(Weak::upgrade)
            .find(|c| c.host_rdev == host_rdev)
        {
            return Ok(c);
        }
        let index = Devpts::free_index(&ptys, &consoles)?;
        let console = Arc::new(HostConsole {
            index,
            dev: self.dev,
            host_rdev,
            fd: dup(fd)?,
            node: Mutex::new(NodeAttrs {
                uid,
                gid: self.slave_gid,
                mode: self.slave_mode,
                times: now(),
            }),
        });
        consoles.insert(index, Arc::downgrade(&console));
        Ok(console)
    }

    /// The host terminal shown as number `index`, if any.
    pub(super) fn console(&self, index: u32) -> Option<Arc<HostConsole>> {
        lock(&self.consoles).get(&index).and_then(Weak::upgrade)
    }
}

impl HostConsole {
    /// Its number: the node is `/dev/pts/{index}`.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// The inode of its node.
    pub fn node(self: &Arc<Self>) -> Arc<dyn Inode> {
        Arc::new(ConsoleNode {
            console: self.clone(),
        })
    }

    /// A sandbox description of the terminal over `fd`, a host descriptor of it (a
    /// standard stream handed to the sandbox).
    pub fn file(self: &Arc<Self>, fd: OwnedFd) -> Arc<dyn FileDescription> {
        Arc::new(ConsoleFile {
            host: HostFile::new(fd),
            console: self.clone(),
        })
    }

    pub(super) fn stat(&self) -> Stat {
        let n = lock(&self.node);
        Stat {
            dev: self.dev,
            ino: self.index as u64 + 3,
            nlink: 1,
            mode: libc::S_IFCHR | n.mode,
            uid: n.uid,
            gid: n.gid,
            rdev: makedev(SLAVE_MAJOR, self.index),
            blksize: 1024,
            atime: n.times,
            mtime: n.times,
            ctime: n.times,
            ..Default::default()
        }
    }
}

/// `/dev/pts/N` for a host terminal.
struct ConsoleNode {
    console: Arc<HostConsole>,
}

impl Inode for ConsoleNode {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.console.stat())
    }
    fn file_type(&self) -> FileType {
        FileType::CharDevice
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn open(&self, _flags: i32) -> Result<Option<Arc<dyn FileDescription>>, Errno> {
        let fd = dup(self.console.fd.as_fd())?;
        Ok(Some(self.console.file(fd)))
    }
    fn setattr(&self, attr: &SetAttr) -> Result<(), Errno> {
        if attr.size.is_some() {
            return Err(libc::EINVAL);
        }
        let mut n = lock(&self.console.node);
        if let Some(m) = attr.mode {
            n.mode = m & 0o7777;
        }
        if let Some(u) = attr.uid {
            n.uid = u;
        }
        if let Some(g) = attr.gid {
            n.gid = g;
        }
        n.times = now();
        Ok(())
    }
}

/// A description of a host terminal that keeps its node alive. Everything but `stat` is the
/// host file's (the VFS answers `fstat` from the node).
struct ConsoleFile {
    host: HostFile,
    console: Arc<HostConsole>,
}

impl FileDescription for ConsoleFile {
    fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        self.host.read(buf)
    }
    fn write(&self, buf: &[u8]) -> Result<usize, Errno> {
        self.host.write(buf)
    }
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.console.stat())
    }
    fn terminal(&self) -> Option<&dyn crate::tty::Terminal> {
        self.host.terminal()
    }
    fn may_block(&self) -> bool {
        self.host.may_block()
    }
    fn read_with_flags(&self, buf: &mut [u8], flags: u32) -> Result<usize, Errno> {
        self.host.read_with_flags(buf, flags)
    }
    fn write_with_flags(&self, buf: &[u8], flags: u32) -> Result<usize, Errno> {
        self.host.write_with_flags(buf, flags)
    }
    fn bytes_available(&self) -> Result<u32, Errno> {
        self.host.bytes_available()
    }
    fn readiness(&self, mask: u32) -> u32 {
        self.host.readiness(mask)
    }
    fn wait_queue(&self) -> Option<&crate::waiter::WaitQueue> {
        self.host.wait_queue()
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::FromRawFd;

    use super::*;

    /// A host pty pair: (master, slave).
    fn host_pty() -> (OwnedFd, OwnedFd) {
        let (mut m, mut s) = (-1, -1);
        // SAFETY: openpty writes two descriptors; the name and settings pointers may be null.
        let r = unsafe {
            libc::openpty(
                &mut m,
                &mut s,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
        // SAFETY: both are fresh descriptors we own.
        unsafe { (OwnedFd::from_raw_fd(m), OwnedFd::from_raw_fd(s)) }
    }

    #[test]
    fn a_host_terminal_takes_the_lowest_number_while_its_files_live() {
        let fs = Devpts::new(makedev(0, 98), 0o620, 5);
        let (_m, s) = host_pty();
        let console = fs.show_host_terminal(s.as_fd(), 1000).unwrap();
        assert_eq!(console.index(), 0);
        // The same terminal again is the same node.
        let again = fs.show_host_terminal(s.as_fd(), 1000).unwrap();
        assert!(Arc::ptr_eq(&console, &again));
        drop(again);
        let st = fs.root().lookup(b"0").unwrap().stat().unwrap();
        assert_eq!(
            (st.mode, st.uid, st.gid, st.rdev),
            (libc::S_IFCHR | 0o620, 1000, 5, makedev(SLAVE_MAJOR, 0))
        );
        // A pair made in the sandbox gets the next number.
        let m = fs.root().lookup(b"ptmx").unwrap().open(0).unwrap().unwrap();
        let names: Vec<Vec<u8>> = fs
            .root()
            .readdir()
            .unwrap()
            .into_iter()
            .map(|e| e.name)
            .collect();
        assert_eq!(names, [&b"ptmx"[..], b"0", b"1"]);
        // Its files keep the node; with the last gone, the number is free.
        let file = console.file(s.try_clone().unwrap());
        let opened = fs.root().lookup(b"0").unwrap().open(0).unwrap().unwrap();
        assert_eq!(opened.stat().unwrap().rdev, makedev(SLAVE_MAJOR, 0));
        drop(console);
        assert!(fs.root().lookup(b"0").is_ok());
        drop((file, opened));
        assert_eq!(fs.root().lookup(b"0").err(), Some(libc::ENOENT));
        drop(m);
        // Not a terminal: refused.
        let null = std::fs::File::open("/dev/null").unwrap();
        assert_eq!(
            fs.show_host_terminal(null.as_fd(), 0).err(),
            Some(libc::EINVAL)
        );
    }
}
