//! The file descriptor table of a process.

use std::collections::BTreeMap;
use std::sync::Arc;

use fs::FileDescription;

use crate::errno::Errno;

/// One descriptor: an open file description and the close-on-exec flag.
#[derive(Clone)]
pub struct FdEntry {
    pub file: Arc<dyn FileDescription>,
    pub cloexec: bool,
}

/// Maps descriptor numbers to open file descriptions.
#[derive(Default)]
pub struct FdTable {
    entries: BTreeMap<i32, FdEntry>,
}

impl FdTable {
    /// Installs `file` at `fd`, replacing what was there.
    pub fn install(&mut self, fd: i32, file: Arc<dyn FileDescription>) {
        self.entries.insert(
            fd,
            FdEntry {
                file,
                cloexec: false,
            },
        );
    }

    /// The file at `fd`, or EBADF. Guest-supplied fds are u64 registers: anything that
    /// isn't a non-negative i32 is simply not open.
    pub fn get(&self, fd: u64) -> Result<Arc<dyn FileDescription>, Errno> {
        let fd = i32::try_from(fd as i64).map_err(|_| Errno::EBADF)?;
        self.entries
            .get(&fd)
            .map(|e| e.file.clone())
            .ok_or(Errno::EBADF)
    }
}
