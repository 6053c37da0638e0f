//! procfs: the sandbox's /proc, generated from the sentry's own kernel objects.
//!
//! The system-wide files about memory, load and time (meminfo, stat, uptime, loadavg)
//! describe the sandbox (its memory, its processes' CPU time, its start); those that
//! describe hardware and the kernel (cpuinfo, version) pass the host's through; everything
//! about processes is the sandbox's.

mod fd_link;
mod mem;
mod net;
mod nodes;
mod process;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use fs::vfs::Inode;

pub use fd_link::is_reopened;
use nodes::{DynDir, DynLink, GenFile, SysctlFile};
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

/// The process whose system call this thread serves (0: none).
pub fn current_pid() -> i32 {
    CURRENT_PID.with(|c| c.get())
}

/// One procfs instance (one per sandbox).
pub struct ProcFs {
    processes: Mutex<BTreeMap<i32, Arc<ProcessInfo>>>,
    me: Weak<ProcFs>,
    /// The sandbox's host name (its UTS name), when it has its own: `uname` and
    /// /proc/sys/kernel/hostname give it; `None`: the host's.
    hostname: Mutex<Option<Vec<u8>>>,
    /// The sandbox's NIS domain name (setdomainname; Linux's default "(none)").
    domainname: Mutex<Vec<u8>>,
    /// The sandbox's kernel, for the system-wide files (set once it exists).
    kernel: std::sync::OnceLock<Weak<crate::process::Kernel>>,
    /// /proc/sys/kernel/random/boot_id: one random UUID per sandbox.
    boot_id: String,
}

/// A random (version 4) UUID, as /proc/sys/kernel/random/uuid gives.
fn random_uuid() -> String {
    let mut b = [0u8; 16];
    if crate::kernel::fill_random(&mut b).is_err() {
        // No randomness: a UUID still, never the same twice in a run.
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        b[..8].copy_from_slice(
            &N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                .to_le_bytes(),
        );
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        h[0..4].concat(),
        h[4..6].concat(),
        h[6..8].concat(),
        h[8..10].concat(),
        h[10..16].concat()
    )
}

/// Clock ticks per second of /proc/stat and /proc/PID/stat (USER_HZ).
const USER_HZ: u128 = 100;

fn online_cpus() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

/// `key value kB` rows in /proc/meminfo's layout.
fn kb_rows(rows: &[(&str, u64)]) -> String {
    let mut out = String::new();
    for (k, v) in rows {
        out.push_str(&format!("{:<16}{v:>8} kB\n", format!("{k}:")));
    }
    out
}

impl ProcFs {
    /// Connects procfs to the kernel whose state its system-wide files show.
    pub fn set_kernel(&self, kernel: &Arc<crate::process::Kernel>) {
        let _ = self.kernel.set(Arc::downgrade(kernel));
    }

    fn kernel(&self) -> Result<Arc<crate::process::Kernel>, fs::Errno> {
        self.kernel
            .get()
            .and_then(|k| k.upgrade())
            .ok_or(libc::ENOENT)
    }

    /// Memory in bytes: (total, free).
    fn memory(&self) -> Result<(u64, u64), fs::Errno> {
        let k = self.kernel()?;
        let mem = k.platform.memory();
        Ok((mem.limit(), mem.free_bytes()))
    }

    /// /proc/meminfo: the sandbox's memory (the memory file its pages come from). Nothing
    /// is cached or swapped; what is in use is counted as anonymous memory.
    fn meminfo(&self) -> Result<Vec<u8>, fs::Errno> {
        let (total, free) = self.memory()?;
        let (total, free) = (total / 1024, free / 1024);
        let used = total.saturating_sub(free);
        let mut out = kb_rows(&[
            ("MemTotal", total),
            ("MemFree", free),
            ("MemAvailable", free),
            ("Buffers", 0),
            ("Cached", 0),
            ("SwapCached", 0),
            ("Active", used),
            ("Inactive", 0),
            ("Active(anon)", used),
            ("Inactive(anon)", 0),
            ("Active(file)", 0),
            ("Inactive(file)", 0),
            ("Unevictable", 0),
            ("Mlocked", 0),
            ("SwapTotal", 0),
            ("SwapFree", 0),
            ("Dirty", 0),
            ("Writeback", 0),
            ("AnonPages", used),
            ("Mapped", 0),
            ("Shmem", 0),
            ("KReclaimable", 0),
            ("Slab", 0),
            ("SReclaimable", 0),
            ("SUnreclaim", 0),
            ("KernelStack", 0),
            ("PageTables", 0),
            ("NFS_Unstable", 0),
            ("Bounce", 0),
            ("WritebackTmp", 0),
            ("CommitLimit", total),
            ("Committed_AS", used),
            ("VmallocTotal", 34_359_738_367),
            ("VmallocUsed", 0),
            ("VmallocChunk", 0),
            ("Percpu", 0),
        ]);
        for k in [
            "HugePages_Total",
            "HugePages_Free",
            "HugePages_Rsvd",
            "HugePages_Surp",
        ] {
            out.push_str(&format!("{:<16}{:>8}\n", format!("{k}:"), 0));
        }
        out.push_str(&kb_rows(&[("Hugepagesize", 2048), ("Hugetlb", 0)]));
        Ok(out.into_bytes())
    }

    /// CPU time of the sandbox's live processes, and time since it started.
    fn cpu_and_uptime(&self) -> Result<(std::time::Duration, std::time::Duration), fs::Errno> {
        let k = self.kernel()?;
        let cpu = k.all_groups().iter().map(|g| g.cpu.process()).sum();
        Ok((cpu, k.booted.elapsed()))
    }

    /// /proc/stat: the sandbox's CPU time (all of it user time, spread evenly over the CPUs;
    /// the rest idle), its start, and its process counts. No interrupts or context switches
    /// are counted.
    fn stat(&self) -> Result<Vec<u8>, fs::Errno> {
        let k = self.kernel()?;
        let (cpu, up) = self.cpu_and_uptime()?;
        let ncpu = online_cpus();
        let ticks = |d: std::time::Duration| (d.as_nanos() * USER_HZ / 1_000_000_000) as u64;
        let user = ticks(cpu);
        let idle = (ticks(up) * ncpu).saturating_sub(user);
        let mut out = format!("cpu  {user} 0 0 {idle} 0 0 0 0 0 0\n");
        for i in 0..ncpu {
            out.push_str(&format!(
                "cpu{i} {} 0 0 {} 0 0 0 0 0 0\n",
                user / ncpu,
                idle / ncpu
            ));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let btime = now.saturating_sub(up).as_secs();
        out.push_str(&format!(
            "intr 0\nctxt 0\nbtime {btime}\nprocesses {}\nprocs_running 1\nprocs_blocked 0\nsoftirq 0 0 0 0 0 0 0 0 0 0 0\n",
            k.last_id().max(1)
        ));
        Ok(out.into_bytes())
    }

    /// /proc/loadavg: no load average is kept (sysinfo's loads are 0 too); the reader is the
    /// running task, of all the sandbox's tasks; the last pid given out.
    fn loadavg(&self) -> Result<Vec<u8>, fs::Errno> {
        let k = self.kernel()?;
        let total = k.tasks.total().max(1);
        Ok(format!("0.00 0.00 0.00 1/{total} {}\n", k.last_id().max(1)).into_bytes())
    }

    /// /proc/uptime: time since the sandbox started, and the CPUs' idle time.
    fn uptime(&self) -> Result<Vec<u8>, fs::Errno> {
        let (cpu, up) = self.cpu_and_uptime()?;
        let idle = (up.as_secs_f64() * online_cpus() as f64 - cpu.as_secs_f64()).max(0.0);
        Ok(format!("{:.2} {idle:.2}\n", up.as_secs_f64()).into_bytes())
    }

    /// /proc/sys/kernel/threads-max as Linux sizes it from memory (a task per 128 KiB).
    fn threads_max(&self) -> Result<Vec<u8>, fs::Errno> {
        let (total, _) = self.memory()?;
        Ok(format!("{}\n", (total / 131_072).clamp(20, 0x3fff_ffff)).into_bytes())
    }
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
            domainname: Mutex::new(b"(none)".to_vec()),
            kernel: std::sync::OnceLock::new(),
            boot_id: random_uuid(),
        })
    }

    /// Gives the sandbox its own host name (a container's, as Docker names it from the
    /// container ID) instead of the host's. At most 64 bytes are kept, as Linux's UTS name.
    pub fn set_hostname(&self, name: &[u8]) {
        let name = name[..name.len().min(64)].to_vec();
        *self.hostname.lock().unwrap_or_else(|e| e.into_inner()) = Some(name);
    }

    /// Sets the sandbox's domain name (at most 64 bytes kept).
    pub fn set_domainname(&self, name: &[u8]) {
        *self.domainname.lock().unwrap_or_else(|e| e.into_inner()) =
            name[..name.len().min(64)].to_vec();
    }

    /// The sandbox's domain name.
    pub fn domainname(&self) -> Vec<u8> {
        self.domainname
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The sandbox's host name: its own, or the host's.
    pub fn hostname(&self) -> Result<Vec<u8>, fs::Errno> {
        if let Some(n) = &*self.hostname.lock().unwrap_or_else(|e| e.into_inner()) {
            return Ok(n.clone());
        }
        let u = nix::sys::utsname::uname().map_err(|e| e as i32)?;
        Ok(u.nodename().as_encoded_bytes().to_vec())
    }

    /// (host name, domain name) in the UTS namespace `uts`.
    pub fn uts_names(&self, uts: &crate::namespaces::UtsNs) -> (Vec<u8>, Vec<u8>) {
        uts.names()
            .unwrap_or_else(|| (self.hostname().unwrap_or_default(), self.domainname()))
    }

    /// The reader's IPC namespace (ENOENT when no sandbox process reads).
    fn current_ipc_ns(&self) -> Result<Arc<crate::ipc::IpcNs>, fs::Errno> {
        let p = self.process(current_pid()).ok_or(libc::ENOENT)?;
        Ok(p.namespaces().ipc.ns)
    }

    /// The names /proc/sys/kernel/{hostname,domainname} show: the reader's UTS namespace's.
    fn current_uts_names(&self) -> (Vec<u8>, Vec<u8>) {
        match self.process(current_pid()) {
            Some(p) => self.uts_names(&p.namespaces().uts),
            None => (self.hostname().unwrap_or_default(), self.domainname()),
        }
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

    /// Every process procfs knows (each with its address space while it runs).
    pub fn processes(&self) -> Vec<Arc<ProcessInfo>> {
        self.lock().values().cloned().collect()
    }

    /// What procfs knows of process `pid` until it is reaped (its command line for `runsc ps`).
    pub fn process(&self, pid: i32) -> Option<Arc<ProcessInfo>> {
        self.lock().get(&pid).cloned()
    }

    /// The mqueue file system to mount at /dev/mqueue: the sandbox's first IPC namespace's
    /// POSIX message queues (looked up when listed: the kernel may not exist yet at the
    /// sandbox's first mounts).
    pub fn mqueue_root(&self) -> Arc<dyn Inode> {
        let me = self.me.clone();
        mqueue_dir(move || Some(me.upgrade()?.kernel().ok()?.ipc.clone()))
    }

    /// The mqueue file system of IPC namespace `ns`, for a mount made in it (the mount
    /// holds the namespace, as Linux's superblock does).
    pub fn mqueue_root_of(&self, ns: Arc<crate::ipc::IpcNs>) -> Arc<dyn Inode> {
        mqueue_dir(move || Some(ns.clone()))
    }

    /// The root directory, to mount at /proc.
    pub fn root(&self) -> Arc<dyn Inode> {
        self.root_in(None)
    }

    /// The root of a proc mounted in the pid namespace `pid_ns` (None: the sandbox's
    /// first): it lists the processes that namespace sees, by its ids, and `self` is the
    /// reader's id there.
    pub fn root_in(&self, pid_ns: Option<Arc<crate::namespaces::PidNs>>) -> Arc<dyn Inode> {
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
                        DynLink::build("/self", {
                            let ns = pid_ns.clone();
                            Box::new(move || {
                                let me = match &ns {
                                    Some(ns) => ns.view(current_pid()),
                                    None => current_pid(),
                                };
                                Ok(me.to_string().into_bytes())
                            })
                        }),
                    ),
                    (
                        b"cpuinfo".to_vec(),
                        GenFile::build("/cpuinfo", host_file("/proc/cpuinfo")),
                    ),
                    (
                        b"meminfo".to_vec(),
                        GenFile::build("/meminfo", {
                            let me = fs.me.clone();
                            Box::new(move || me.upgrade().ok_or(libc::ENOENT)?.meminfo())
                        }),
                    ),
                    (
                        b"stat".to_vec(),
                        GenFile::build("/stat", {
                            let me = fs.me.clone();
                            Box::new(move || me.upgrade().ok_or(libc::ENOENT)?.stat())
                        }),
                    ),
                    (
                        b"uptime".to_vec(),
                        GenFile::build("/uptime", {
                            let me = fs.me.clone();
                            Box::new(move || me.upgrade().ok_or(libc::ENOENT)?.uptime())
                        }),
                    ),
                    (
                        b"loadavg".to_vec(),
                        GenFile::build("/loadavg", {
                            let me = fs.me.clone();
                            Box::new(move || me.upgrade().ok_or(libc::ENOENT)?.loadavg())
                        }),
                    ),
                    (
                        b"version".to_vec(),
                        GenFile::build("/version", host_file("/proc/version")),
                    ),
                    (
                        b"filesystems".to_vec(),
                        GenFile::build(
                            "/filesystems",
                            text("nodev\tsysfs\nnodev\ttmpfs\nnodev\tproc\nnodev\tdevtmpfs\nnodev\tdevpts\nnodev\tmqueue\n"),
                        ),
                    ),
                    (
                        b"mounts".to_vec(),
                        DynLink::build("/mounts", Box::new(|| Ok(b"self/mounts".to_vec()))),
                    ),
                    (b"sys".to_vec(), sys_dir(fs.me.clone())),
                    (b"sysvipc".to_vec(), sysvipc_dir(fs.me.clone())),
                    (b"net".to_vec(), net::net_dir()),
                ];
                for (pid, info) in fs.lock().iter() {
                    let id = match &pid_ns {
                        Some(ns) => ns.view(*pid),
                        None => *pid,
                    };
                    if id > 0 {
                        out.push((id.to_string().into_bytes(), process::pid_dir(info.clone())));
                    }
                }
                out
            }),
        )
    }
}

/// /proc/sys: kernel/, fs/ and vm/ files programs read, read-only but for the IPC
/// namespace's limits root may write (`ipc_sysctls`: the System V ones, shm_rmid_forced
/// and fs/mqueue), and the network sysctls (net.rs).
fn sys_dir(me: Weak<ProcFs>) -> Arc<dyn Inode> {
    DynDir::build(
        "/sys",
        0o555,
        Box::new(move || {
            let me = me.clone();
            vec![
                (b"fs".to_vec(), sys_fs_dir(me.clone())),
                (b"vm".to_vec(), sys_vm_dir()),
                (b"net".to_vec(), net::sys_net_dir()),
                (
                    b"kernel".to_vec(),
                    DynDir::build(
                        "/sys/kernel",
                        0o555,
                        Box::new(move || {
                            let me = me.clone();
                            let me_host = me.clone();
                            vec![
                                // What an id with no mapping in a user namespace reads as.
                                (
                                    b"overflowuid".to_vec(),
                                    GenFile::build(
                                        "/sys/kernel/overflowuid",
                                        Box::new(|| {
                                            Ok(format!("{}\n", crate::namespaces::OVERFLOW_ID)
                                                .into_bytes())
                                        }),
                                    ),
                                ),
                                (
                                    b"overflowgid".to_vec(),
                                    GenFile::build(
                                        "/sys/kernel/overflowgid",
                                        Box::new(|| {
                                            Ok(format!("{}\n", crate::namespaces::OVERFLOW_ID)
                                                .into_bytes())
                                        }),
                                    ),
                                ),
                                (
                                    b"hostname".to_vec(),
                                    GenFile::build(
                                        "/sys/kernel/hostname",
                                        Box::new(move || {
                                            let fs = me_host.upgrade().ok_or(libc::ENOENT)?;
                                            let mut v = fs.current_uts_names().0;
                                            v.push(b'\n');
                                            Ok(v)
                                        }),
                                    ),
                                ),
                                (
                                    b"domainname".to_vec(),
                                    GenFile::build("/sys/kernel/domainname", {
                                        let me = me.clone();
                                        Box::new(move || {
                                            let mut v = me
                                                .upgrade()
                                                .ok_or(libc::ENOENT)?
                                                .current_uts_names()
                                                .1;
                                            v.push(b'\n');
                                            Ok(v)
                                        })
                                    }),
                                ),
                                (
                                    b"ostype".to_vec(),
                                    GenFile::build("/sys/kernel/ostype", text("Linux\n")),
                                ),
                                // Pids count up from 1 and are never reused; Linux's largest
                                // pid_max.
                                (
                                    b"pid_max".to_vec(),
                                    GenFile::build("/sys/kernel/pid_max", text("4194304\n")),
                                ),
                                (
                                    b"threads-max".to_vec(),
                                    GenFile::build("/sys/kernel/threads-max", {
                                        let me = me.clone();
                                        Box::new(move || {
                                            me.upgrade().ok_or(libc::ENOENT)?.threads_max()
                                        })
                                    }),
                                ),
                                // Yama's relational mode, enforced by ptrace.
                                (
                                    b"yama".to_vec(),
                                    DynDir::build(
                                        "/sys/kernel/yama",
                                        0o555,
                                        Box::new(|| {
                                            vec![(
                                                b"ptrace_scope".to_vec(),
                                                GenFile::build(
                                                    "/sys/kernel/yama/ptrace_scope",
                                                    text("1\n"),
                                                ),
                                            )]
                                        }),
                                    ),
                                ),
                                (
                                    b"ngroups_max".to_vec(),
                                    GenFile::build("/sys/kernel/ngroups_max", text("65536\n")),
                                ),
                                (b"random".to_vec(), random_dir(me.clone())),
                                (
                                    b"osrelease".to_vec(),
                                    GenFile::build(
                                        "/sys/kernel/osrelease",
                                        uname_field(|u| u.release().as_encoded_bytes().to_vec()),
                                    ),
                                ),
                            ]
                            .into_iter()
                            .chain(ipc_sysctls(&me, "kernel", crate::ipc::tunables::NAMES))
                            .collect()
                        }),
                    ),
                ),
            ]
        }),
    )
}

/// /proc/sys/kernel/{shmmax, shmall, shmmni, msgmax, msgmnb, msgmni, sem, shm_rmid_forced}
/// (`dir` "kernel", `names` tunables::NAMES) or /proc/sys/fs/mqueue/* ("fs/mqueue",
/// tunables::MQUEUE_NAMES): the reader's IPC namespace's limits, which root may change
/// (crate::ipc::tunables).
fn ipc_sysctls(
    me: &Weak<ProcFs>,
    dir: &str,
    names: &'static [&'static str],
) -> Vec<(Vec<u8>, Arc<dyn Inode>)> {
    names
        .iter()
        .map(|&name| {
            let path = format!("/sys/{dir}/{name}");
            let me = me.clone();
            let file = SysctlFile::build(
                &path,
                Box::new(move || {
                    // The opener's namespace, for the reads and writes of this open.
                    let ns = me.upgrade().ok_or(libc::ENOENT)?.current_ipc_ns()?;
                    let text = ns.tunables.text(name).unwrap_or_default().into_bytes();
                    let apply: nodes::Apply =
                        Box::new(move |bytes| ns.set_sysctl(name, bytes).map_err(|e| e.0));
                    Ok((text, apply))
                }),
            );
            (name.as_bytes().to_vec(), file)
        })
        .collect()
}

/// The mqueue file system's root directory listing the queues of the namespace `ns` gives:
/// each a file reading its status line. Queues are made and removed with mq_open and
/// mq_unlink only (not by creating or removing files here).
fn mqueue_dir(
    ns: impl Fn() -> Option<Arc<crate::ipc::IpcNs>> + Send + Sync + 'static,
) -> Arc<dyn Inode> {
    DynDir::build(
        "/mqueue",
        0o1777,
        Box::new(move || {
            let Some(ns) = ns() else {
                return Vec::new();
            };
            let queues: Vec<_> = crate::ipc::lock(&ns.mq.queues)
                .iter()
                .map(|(n, q)| (n.clone(), std::sync::Arc::downgrade(q)))
                .collect();
            queues
                .into_iter()
                .map(|(name, q)| {
                    let file = GenFile::build(
                        "/mqueue/queue",
                        Box::new(move || {
                            let q = q.upgrade().ok_or(libc::ENOENT)?;
                            Ok(q.status_line().into_bytes())
                        }),
                    );
                    (name, file)
                })
                .collect()
        }),
    )
}

/// /proc/sysvipc: the sandbox's System V IPC objects, in Linux's layout (what `ipcs` reads).
fn sysvipc_dir(me: Weak<ProcFs>) -> Arc<dyn Inode> {
    DynDir::build(
        "/sysvipc",
        0o555,
        Box::new(move || {
            let file = |name: &'static str, show: fn(&crate::ipc::IpcNs) -> String| {
                let me = me.clone();
                (
                    name.as_bytes().to_vec(),
                    GenFile::build(
                        if name == "shm" {
                            "/sysvipc/shm"
                        } else if name == "msg" {
                            "/sysvipc/msg"
                        } else {
                            "/sysvipc/sem"
                        },
                        // The reader's IPC namespace, as Linux's sysvipc files show.
                        Box::new(move || {
                            let ns = me.upgrade().ok_or(libc::ENOENT)?.current_ipc_ns()?;
                            Ok(show(&ns).into_bytes())
                        }),
                    ),
                )
            };
            vec![
                file("shm", crate::ipc::proc_shm),
                file("msg", crate::ipc::proc_msg),
                file("sem", crate::ipc::proc_sem),
            ]
        }),
    )
}

/// /proc/sys/kernel/random: a fresh UUID per read, and the sandbox's boot id.
fn random_dir(me: Weak<ProcFs>) -> Arc<dyn Inode> {
    DynDir::build(
        "/sys/kernel/random",
        0o555,
        Box::new(move || {
            let me = me.clone();
            vec![
                (
                    b"uuid".to_vec(),
                    GenFile::build(
                        "/sys/kernel/random/uuid",
                        Box::new(|| Ok(format!("{}\n", random_uuid()).into_bytes())),
                    ),
                ),
                (
                    b"boot_id".to_vec(),
                    GenFile::build(
                        "/sys/kernel/random/boot_id",
                        Box::new(move || {
                            let fs = me.upgrade().ok_or(libc::ENOENT)?;
                            Ok(format!("{}\n", fs.boot_id).into_bytes())
                        }),
                    ),
                ),
            ]
        }),
    )
}

/// /proc/sys/vm: how the sandbox gives memory out (pages on first touch, like Linux's
/// heuristic overcommit), read-only.
fn sys_vm_dir() -> Arc<dyn Inode> {
    DynDir::build(
        "/sys/vm",
        0o555,
        Box::new(|| {
            vec![
                (
                    b"overcommit_memory".to_vec(),
                    GenFile::build("/sys/vm/overcommit_memory", text("0\n")),
                ),
                (
                    b"overcommit_ratio".to_vec(),
                    GenFile::build("/sys/vm/overcommit_ratio", text("50\n")),
                ),
                (
                    b"max_map_count".to_vec(),
                    GenFile::build("/sys/vm/max_map_count", text("65530\n")),
                ),
            ]
        }),
    )
}

/// /proc/sys/fs: the limits the sandbox applies, read-only, and aio-nr; fs/mqueue is the
/// reader's IPC namespace's, writable (`ipc_sysctls`).
fn sys_fs_dir(me: Weak<ProcFs>) -> Arc<dyn Inode> {
    DynDir::build(
        "/sys/fs",
        0o555,
        Box::new(move || {
            let file = |name: &str, value: String| {
                let path = format!("/sys/fs/{name}");
                let content = format!("{value}\n").into_bytes();
                (
                    name.as_bytes().to_vec(),
                    GenFile::build(&path, Box::new(move || Ok(content.clone()))),
                )
            };
            vec![
                file("pipe-max-size", fs::pipe::MAX_CAPACITY.to_string()),
                // Pipe pages per user aren't limited (hard 0 is Linux's "no limit"); the
                // soft value is Linux's default, shown for programs that read it.
                file("pipe-user-pages-hard", "0".into()),
                file("pipe-user-pages-soft", "16384".into()),
                file("nr_open", crate::rlimit::NR_OPEN.to_string()),
                file("dir-notify-enable", "1".into()),
                file("aio-max-nr", crate::aio::AIO_MAX_NR.to_string()),
                (
                    b"aio-nr".to_vec(),
                    GenFile::build(
                        "/sys/fs/aio-nr",
                        Box::new(|| Ok(format!("{}\n", crate::aio::aio_nr()).into_bytes())),
                    ),
                ),
                (b"inotify".to_vec(), sys_fs_inotify_dir()),
                (
                    b"mqueue".to_vec(),
                    DynDir::build("/sys/fs/mqueue", 0o555, {
                        let me = me.clone();
                        Box::new(move || {
                            ipc_sysctls(&me, "fs/mqueue", crate::ipc::tunables::MQUEUE_NAMES)
                        })
                    }),
                ),
            ]
        }),
    )
}

/// /proc/sys/fs/inotify: the limits `fs::inotify` applies, read-only.
fn sys_fs_inotify_dir() -> Arc<dyn Inode> {
    DynDir::build(
        "/sys/fs/inotify",
        0o555,
        Box::new(|| {
            let file = |name: &str, value: usize| {
                let path = format!("/sys/fs/inotify/{name}");
                let content = format!("{value}\n").into_bytes();
                (
                    name.as_bytes().to_vec(),
                    GenFile::build(&path, Box::new(move || Ok(content.clone()))),
                )
            };
            vec![
                file("max_queued_events", fs::inotify::MAX_QUEUED_EVENTS),
                file("max_user_instances", fs::inotify::MAX_USER_INSTANCES),
                file("max_user_watches", fs::inotify::MAX_USER_WATCHES),
            ]
        }),
    )
}

impl ProcFs {
    /// The process /proc/self names for the calling thread, if registered.
    pub fn current(&self) -> Option<Arc<ProcessInfo>> {
        self.process(current_pid())
    }
}
