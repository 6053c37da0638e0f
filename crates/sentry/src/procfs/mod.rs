//! procfs: the sandbox's /proc, generated from the sentry's own kernel objects.
//!
//! The system-wide files that describe hardware and load (cpuinfo, meminfo, stat, uptime,
//! loadavg, version) pass the host's through; everything about processes is the sandbox's.

mod nodes;
mod process;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use fs::vfs::Inode;

use nodes::{DynDir, DynLink, GenFile};
pub use nodes::{PROC_DEV, PROC_SUPER_MAGIC};
pub use process::{comm_of, ImageInfo, ProcessInfo};

thread_local! {
    /// The pid of the task whose system call this thread is serving ("self").
    static CURRENT_PID: Cell<i32> = const { Cell::new(0) };
}

/// Records which task the current thread serves, for /proc/self.
pub fn set_current_pid(pid: i32) {
    CURRENT_PID.with(|c| c.set(pid));
}

fn current_pid() -> i32 {
    CURRENT_PID.with(|c| c.get())
}

/// One procfs instance (one per sandbox).
pub struct ProcFs {
    processes: Mutex<BTreeMap<i32, Arc<ProcessInfo>>>,
    me: Weak<ProcFs>,
    /// The sandbox's host name (its UTS name), when it has its own: `uname` and
    /// /proc/sys/kernel/hostname give it; `None`: the host's.
    hostname: Mutex<Option<Vec<u8>>>,
}

fn host_file(path: &'static str) -> Box<dyn Fn() -> Result<Vec<u8>, fs::Errno> + Send + Sync> {
    Box::new(move || std::fs::read(path).map_err(|e| e.raw_os_error().unwrap_or(libc::EIO)))
}

fn text(s: &'static str) -> Box<dyn Fn() -> Result<Vec<u8>, fs::Errno> + Send + Sync> {
    Box::new(move || Ok(s.as_bytes().to_vec()))
}

fn uname_field(
    f: fn(&nix::sys::utsname::UtsName) -> Vec<u8>,
) -> Box<dyn Fn() -> Result<Vec<u8>, fs::Errno> + Send + Sync> {
    Box::new(move || {
        let u = nix::sys::utsname::uname().map_err(|e| e as i32)?;
        let mut v = f(&u);
        v.push(b'\n');
        Ok(v)
    })
}

impl ProcFs {
    pub fn new() -> Arc<ProcFs> {
        Arc::new_cyclic(|me| ProcFs {
            processes: Mutex::new(BTreeMap::new()),
            me: me.clone(),
            hostname: Mutex::new(None),
        })
    }

    /// Gives the sandbox its own host name (a container's, as Docker names it from the
    /// container ID) instead of the host's. At most 64 bytes are kept, as Linux's UTS name.
    pub fn set_hostname(&self, name: &[u8]) {
        let name = name[..name.len().min(64)].to_vec();
        *self.hostname.lock().unwrap_or_else(|e| e.into_inner()) = Some(name);
    }

    /// The sandbox's host name: its own, or the host's.
    pub fn hostname(&self) -> Result<Vec<u8>, fs::Errno> {
        if let Some(n) = &*self.hostname.lock().unwrap_or_else(|e| e.into_inner()) {
            return Ok(n.clone());
        }
        let u = nix::sys::utsname::uname().map_err(|e| e as i32)?;
        Ok(u.nodename().as_encoded_bytes().to_vec())
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<i32, Arc<ProcessInfo>>> {
        self.processes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes a process visible as /proc/PID.
    pub fn register(&self, info: Arc<ProcessInfo>) {
        self.lock().insert(info.pid, info);
    }

    /// Removes /proc/PID (the process was reaped).
    pub fn unregister(&self, pid: i32) {
        self.lock().remove(&pid);
    }

    /// The registered process `pid` (its command line, for `runsc ps`).
    pub fn process(&self, pid: i32) -> Option<Arc<ProcessInfo>> {
        self.lock().get(&pid).cloned()
    }

    /// The root directory, to mount at /proc.
    pub fn root(&self) -> Arc<dyn Inode> {
        let me = self.me.clone();
        DynDir::build(
            "/",
            0o555,
            Box::new(move || {
                let Some(fs) = me.upgrade() else {
                    return Vec::new();
                };
                let mut out: Vec<(Vec<u8>, Arc<dyn Inode>)> = vec![
                    (
                        b"self".to_vec(),
                        DynLink::build(
                            "/self",
                            Box::new(|| Ok(current_pid().to_string().into_bytes())),
                        ),
                    ),
                    (
                        b"cpuinfo".to_vec(),
                        GenFile::build("/cpuinfo", host_file("/proc/cpuinfo")),
                    ),
                    (
                        b"meminfo".to_vec(),
                        GenFile::build("/meminfo", host_file("/proc/meminfo")),
                    ),
                    (
                        b"stat".to_vec(),
                        GenFile::build("/stat", host_file("/proc/stat")),
                    ),
                    (
                        b"uptime".to_vec(),
                        GenFile::build("/uptime", host_file("/proc/uptime")),
                    ),
                    (
                        b"loadavg".to_vec(),
                        GenFile::build("/loadavg", host_file("/proc/loadavg")),
                    ),
                    (
                        b"version".to_vec(),
                        GenFile::build("/version", host_file("/proc/version")),
                    ),
                    (
                        b"filesystems".to_vec(),
                        GenFile::build(
                            "/filesystems",
                            text("nodev\tproc\nnodev\ttmpfs\nnodev\tdevtmpfs\n"),
                        ),
                    ),
                    (
                        b"mounts".to_vec(),
                        DynLink::build("/mounts", Box::new(|| Ok(b"self/mounts".to_vec()))),
                    ),
                    (b"sys".to_vec(), sys_dir(fs.me.clone())),
                ];
                for (pid, info) in fs.lock().iter() {
                    out.push((pid.to_string().into_bytes(), process::pid_dir(info.clone())));
                }
                out
            }),
        )
    }
}

/// /proc/sys: only kernel/{hostname,ostype,osrelease} for now.
fn sys_dir(me: Weak<ProcFs>) -> Arc<dyn Inode> {
    DynDir::build(
        "/sys",
        0o555,
        Box::new(move || {
            let me = me.clone();
            vec![(
                b"kernel".to_vec(),
                DynDir::build(
                    "/sys/kernel",
                    0o555,
                    Box::new(move || {
                        let me = me.clone();
                        vec![
                            (
                                b"hostname".to_vec(),
                                GenFile::build(
                                    "/sys/kernel/hostname",
                                    Box::new(move || {
                                        let fs = me.upgrade().ok_or(libc::ENOENT)?;
                                        let mut v = fs.hostname()?;
                                        v.push(b'\n');
                                        Ok(v)
                                    }),
                                ),
                            ),
                            (
                                b"ostype".to_vec(),
                                GenFile::build("/sys/kernel/ostype", text("Linux\n")),
                            ),
                            (
                                b"osrelease".to_vec(),
                                GenFile::build(
                                    "/sys/kernel/osrelease",
                                    uname_field(|u| u.release().as_encoded_bytes().to_vec()),
                                ),
                            ),
                        ]
                    }),
                ),
            )]
        }),
    )
}

impl ProcFs {
    /// The process /proc/self names for the calling thread, if registered.
    pub fn current(&self) -> Option<Arc<ProcessInfo>> {
        self.process(current_pid())
    }
}
