//! /proc/PID: what procfs shows of one process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use fs::vfs::Inode;

use super::fd_link::Place;
use super::nodes::{DynDir, GenFile};
use crate::fdtable::FdTable;
use crate::fs_context::FsContext;
use crate::mm::{Mm, VmaKind};
use crate::namespaces::{MapKind, UserNs};
use crate::task::Creds;

/// The parts of a process procfs reads. Each is shared with the process and locked on its
/// own, so reading /proc never waits for a system call to finish.
pub struct ProcessInfo {
    pub pid: i32,
    pub ppid: i32,
    /// Weak: a process that exited must not keep its files open (its pipes would never see
    /// EOF) while it waits to be reaped.
    pub fds: std::sync::Mutex<std::sync::Weak<FdTable>>,
    pub fs: Arc<FsContext>,
    /// The main thread's credentials, as of its last change (set*id, capset, prctl, execve).
    pub creds: std::sync::Mutex<Creds>,
    /// The main thread's no_new_privs and seccomp state (/proc/PID/status), set once the
    /// main thread exists.
    pub seccomp: std::sync::OnceLock<Arc<crate::seccomp::ThreadSeccomp>>,
    /// What execve replaces.
    pub image: std::sync::Mutex<ImageInfo>,
    /// The process's threads (set once the group exists; weak, as a zombie has none).
    pub group: std::sync::OnceLock<std::sync::Weak<crate::process::ThreadGroup>>,
    /// The resource limits as last set (/proc/PID/limits).
    pub limits: std::sync::Mutex<[(u64, u64); crate::task::RLIM_NLIMITS]>,
    /// What the process read and wrote (/proc/PID/io).
    pub io: IoCounters,
    /// When it was made (fork, or the start of the sandbox's first process).
    pub started: std::time::Instant,
    /// The kernel, for what changes over the process's life (parent, group, session).
    pub kernel: std::sync::Weak<crate::process::Kernel>,
    /// Its namespaces but the mount namespace (which is in `fs`). Per process here; Linux
    /// keeps them per thread.
    pub ns: std::sync::Mutex<crate::namespaces::Namespaces>,
    /// Its pid namespace isn't the sandbox's first (pids seen and given are translated).
    pub pid_nested: bool,
    /// Whether it is dumpable (Linux's per-mm flag: PR_SET_DUMPABLE, cleared by a change
    /// of ids, set again by execve), for the ptrace access check of other processes.
    pub dumpable: std::sync::atomic::AtomicBool,
}

/// Linux's task_io_accounting as /proc/PID/io shows it: bytes and calls of read and write
/// (the read, write, pread, pwrite and vector forms). No storage I/O is counted apart:
/// read_bytes and write_bytes stay 0, as for a file system without a block device.
#[derive(Default)]
pub struct IoCounters {
    rchar: AtomicU64,
    wchar: AtomicU64,
    syscr: AtomicU64,
    syscw: AtomicU64,
}

impl IoCounters {
    /// Counts a read (`read`) or write call that reached a file and gave `result`.
    pub fn count(&self, read: bool, result: &crate::errno::SysResult) {
        let (calls, bytes) = if read {
            (&self.syscr, &self.rchar)
        } else {
            (&self.syscw, &self.wchar)
        };
        match result {
            Ok(n) => {
                calls.fetch_add(1, Ordering::Relaxed);
                bytes.fetch_add(*n, Ordering::Relaxed);
            }
            // Served again on the task's own thread, or no file at all: not a call yet.
            Err(e) if e.0 == fs::waiter::WOULD_SLEEP || *e == crate::errno::Errno::EBADF => {}
            Err(_) => {
                calls.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn text(&self) -> Vec<u8> {
        format!(
            "rchar: {}\nwchar: {}\nsyscr: {}\nsyscw: {}\nread_bytes: 0\nwrite_bytes: 0\ncancelled_write_bytes: 0\n",
            self.rchar.load(Ordering::Relaxed),
            self.wchar.load(Ordering::Relaxed),
            self.syscr.load(Ordering::Relaxed),
            self.syscw.load(Ordering::Relaxed),
        )
        .into_bytes()
    }
}

/// The program a process runs, as of its last execve.
#[derive(Clone)]
pub struct ImageInfo {
    /// The program's path, as /proc/PID/exe shows it.
    pub exe: Vec<u8>,
    /// argv and envp, each string NUL-terminated.
    pub cmdline: Vec<u8>,
    pub environ: Vec<u8>,
    /// The auxiliary vector, as raw (key, value) u64 pairs ending with AT_NULL.
    pub auxv: Vec<u8>,
    /// Weak, for the same reason as `fds`: a zombie holds no memory.
    pub mm: std::sync::Weak<Mm>,
    /// The name execve gave the process (Linux's comm): see [`comm_of`].
    pub comm: Vec<u8>,
}

/// The name a process gets from execve: the last component of the path it was given (not
/// the interpreter of a script, nor where a symlink leads), at most 15 bytes.
pub fn comm_of(path: &[u8]) -> Vec<u8> {
    let base = path.rsplit(|&b| b == b'/').next().unwrap_or_default();
    base[..base.len().min(15)].to_vec()
}

impl ProcessInfo {
    /// The process's namespaces.
    pub fn namespaces(&self) -> crate::namespaces::Namespaces {
        self.ns.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// After unshare or setns.
    pub fn set_namespaces(&self, ns: crate::namespaces::Namespaces) {
        *self.ns.lock().unwrap_or_else(|e| e.into_inner()) = ns;
    }

    /// The descriptor table, while the process lives.
    pub fn fd_table(&self) -> Option<Arc<FdTable>> {
        self.fds.lock().unwrap_or_else(|e| e.into_inner()).upgrade()
    }

    /// execve gave the process a table of its own.
    pub fn set_fd_table(&self, fds: &Arc<FdTable>) {
        *self.fds.lock().unwrap_or_else(|e| e.into_inner()) = Arc::downgrade(fds);
    }

    /// A copy of the current image description.
    pub fn image(&self) -> ImageInfo {
        self.image.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The address space, while the process has one (not once it has ended).
    pub fn mm(&self) -> Option<Arc<Mm>> {
        self.image
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .mm
            .upgrade()
    }

    /// Records a new program (execve).
    pub fn set_image(&self, image: ImageInfo) {
        *self.image.lock().unwrap_or_else(|e| e.into_inner()) = image;
    }

    /// The main thread's credentials.
    pub fn creds(&self) -> Creds {
        self.creds.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records the main thread's new credentials.
    pub fn set_creds(&self, creds: &Creds) {
        *self.creds.lock().unwrap_or_else(|e| e.into_inner()) = creds.clone();
    }

    /// Who /proc/PID's private files show as their owner (Linux's task_dump_owner): the
    /// process's effective ids while it is dumpable, root otherwise (partial: Linux shows
    /// the root of the process's user namespace when that one is mapped).
    pub fn dump_owner(&self) -> (u32, u32) {
        if self.dumpable() {
            let c = self.creds();
            (c.euid, c.egid)
        } else {
            (0, 0)
        }
    }

    /// Whether the process is dumpable.
    pub fn dumpable(&self) -> bool {
        self.dumpable.load(Ordering::Relaxed)
    }

    /// PR_SET_DUMPABLE, execve (on) and a change of credentials that lowers trust (off).
    pub fn set_dumpable(&self, dumpable: bool) {
        self.dumpable.store(dumpable, Ordering::Relaxed);
    }

    /// The ptrace access check (`crate::ptrace::may_access`) of the process whose system
    /// call this thread serves against this one, as Linux's /proc checks it for the links
    /// that lead into the process (fd, exe, cwd, root). Its own process always passes.
    pub fn may_be_accessed(&self, mode: crate::ptrace::AccessMode) -> bool {
        let me = super::current_pid();
        if me == self.pid {
            return true;
        }
        let Some(kernel) = self.kernel.upgrade() else {
            return false;
        };
        let Some(caller) = kernel.procfs.process(me) else {
            return false;
        };
        crate::ptrace::may_access_process(&kernel, me, &caller.creds(), self.pid, mode)
    }

    /// The ids of the process's live threads (none once it has exited).
    pub fn tids(&self) -> Vec<i32> {
        self.group
            .get()
            .and_then(|g| g.upgrade())
            .map(|g| g.tids())
            .unwrap_or_default()
    }

    /// The command name: the program's base name, at most 15 bytes.
    pub fn comm(&self) -> Vec<u8> {
        self.image().comm
    }
}

fn ok(v: Vec<u8>) -> Result<Vec<u8>, fs::Errno> {
    Ok(v)
}

/// The content of a file that tells about a process's memory, environment or I/O
/// (environ, auxv, maps, smaps, io), for a reader that passes the ptrace access check
/// (Linux's do_io_accounting, PTRACE_MODE_READ_FSCREDS) or, for one read through the
/// process's memory (`of_mm`: Linux's mm_access), holds CAP_PERFMON or CAP_SYS_ADMIN
/// (perfmon_capable); EACCES at the open otherwise (Linux refuses io at the read).
fn readable(
    p: &ProcessInfo,
    of_mm: bool,
    content: impl FnOnce(&ProcessInfo) -> Vec<u8>,
) -> Result<Vec<u8>, fs::Errno> {
    use crate::caps::{capable, Cap};
    if !p.may_be_accessed(crate::ptrace::AccessMode::READ_FSCREDS) {
        let perfmon = of_mm
            && p.kernel
                .upgrade()
                .and_then(|k| k.procfs.current())
                .is_some_and(|reader| {
                    let c = reader.creds();
                    capable(&c, Cap::Perfmon) || capable(&c, Cap::SysAdmin)
                });
        if !perfmon {
            return Err(libc::EACCES);
        }
    }
    Ok(content(p))
}

/// /proc/PID.
pub fn pid_dir(p: Arc<ProcessInfo>) -> Arc<dyn Inode> {
    let base = format!("/{}", p.pid);
    let dir_path = base.clone();
    DynDir::build(
        &dir_path,
        0o555,
        Box::new(move || {
            let mut entries = process_entries(p.clone(), &base);
            entries.push((
                b"task".to_vec(),
                task_dir(p.clone(), &format!("{base}/task")),
            ));
            entries
        }),
    )
}

/// /proc/PID/task: a directory per thread. Its files describe the process (per-thread
/// values such as a thread's own stat times aren't kept apart yet).
fn task_dir(p: Arc<ProcessInfo>, path: &str) -> Arc<dyn Inode> {
    let base = path.to_string();
    DynDir::build(
        path,
        0o555,
        Box::new(move || {
            p.tids()
                .into_iter()
                .map(|tid| {
                    let dir = format!("{base}/{tid}");
                    let p = p.clone();
                    let inode = DynDir::build(
                        &dir.clone(),
                        0o555,
                        Box::new(move || process_entries(p.clone(), &dir)),
                    );
                    (tid.to_string().into_bytes(), inode)
                })
                .collect()
        }),
    )
}

/// The files of /proc/PID (and of /proc/PID/task/TID), under `base`.
fn process_entries(p: Arc<ProcessInfo>, base: &str) -> Vec<(Vec<u8>, Arc<dyn Inode>)> {
    {
        {
            let path = |name: &str| format!("{base}/{name}");
            let (p12, p13, p14, p15) = (p.clone(), p.clone(), p.clone(), p.clone());
            let p17 = p.clone();
            let (p3, p4, p5, p6, p7, p8, p9, p10, p11) = (
                p.clone(),
                p.clone(),
                p.clone(),
                p.clone(),
                p.clone(),
                p.clone(),
                p.clone(),
                p.clone(),
                p.clone(),
            );
            vec![
                (b"exe".to_vec(), task_link(&p, &path("exe"), Place::Exe)),
                (b"cwd".to_vec(), task_link(&p, &path("cwd"), Place::Cwd)),
                (b"root".to_vec(), task_link(&p, &path("root"), Place::Root)),
                (
                    b"cmdline".to_vec(),
                    GenFile::build(&path("cmdline"), Box::new(move || ok(p3.image().cmdline))),
                ),
                (
                    b"environ".to_vec(),
                    GenFile::build(
                        &path("environ"),
                        Box::new(move || readable(&p4, true, |p| p.image().environ)),
                    ),
                ),
                (
                    b"auxv".to_vec(),
                    GenFile::build(
                        &path("auxv"),
                        Box::new(move || readable(&p5, true, |p| p.image().auxv)),
                    ),
                ),
                (
                    b"comm".to_vec(),
                    GenFile::build(
                        &path("comm"),
                        Box::new(move || {
                            let mut c = p6.comm();
                            c.push(b'\n');
                            ok(c)
                        }),
                    ),
                ),
                (
                    b"maps".to_vec(),
                    GenFile::build(&path("maps"), Box::new(move || readable(&p7, true, maps))),
                ),
                (
                    b"status".to_vec(),
                    GenFile::build(&path("status"), Box::new(move || ok(status(&p8)))),
                ),
                (
                    b"stat".to_vec(),
                    GenFile::build(&path("stat"), Box::new(move || ok(stat(&p9)))),
                ),
                (
                    b"mounts".to_vec(),
                    GenFile::build(&path("mounts"), Box::new(move || ok(mounts(&p10)))),
                ),
                (
                    b"mountinfo".to_vec(),
                    GenFile::build(&path("mountinfo"), Box::new(move || ok(mountinfo(&p17)))),
                ),
                (b"ns".to_vec(), ns_dir(p.clone(), &path("ns"))),
                (b"fd".to_vec(), fd_dir(p11, &path("fd"))),
                (
                    b"mem".to_vec(),
                    super::mem::MemFile::build(&path("mem"), p.clone()),
                ),
                (
                    b"smaps".to_vec(),
                    GenFile::build(
                        &path("smaps"),
                        Box::new(move || readable(&p12, true, smaps)),
                    ),
                ),
                (
                    b"smaps_rollup".to_vec(),
                    GenFile::build(
                        &path("smaps_rollup"),
                        Box::new(move || readable(&p13, true, smaps_rollup)),
                    ),
                ),
                (
                    b"limits".to_vec(),
                    GenFile::build(&path("limits"), Box::new(move || ok(limits(&p14)))),
                ),
                (
                    b"io".to_vec(),
                    GenFile::build(
                        &path("io"),
                        Box::new(move || readable(&p15, false, |p| p.io.text())),
                    ),
                ),
                (
                    b"uid_map".to_vec(),
                    UserNsFile::build(&path("uid_map"), &p, UserNsFileKind::Map(MapKind::Uid)),
                ),
                (
                    b"gid_map".to_vec(),
                    UserNsFile::build(&path("gid_map"), &p, UserNsFileKind::Map(MapKind::Gid)),
                ),
                (
                    b"setgroups".to_vec(),
                    UserNsFile::build(&path("setgroups"), &p, UserNsFileKind::Setgroups),
                ),
            ]
        }
    }
}

fn task_link(p: &Arc<ProcessInfo>, path: &str, place: Place) -> Arc<dyn Inode> {
    super::fd_link::TaskLink::build(super::nodes::ino_of(path), p, place)
}

/// What Linux shows for a descriptor without a path: `socket:[INO]`, `pipe:[INO]`,
/// `anon_inode:inotify`.
fn anon_link(file: &fs::vfs::OpenFile) -> Option<Vec<u8>> {
    if file
        .special_desc()
        .and_then(fs::inotify::instance)
        .is_some()
    {
        return Some(b"anon_inode:inotify".to_vec());
    }
    let st = file.stat().ok()?;
    let kind = match st.mode & libc::S_IFMT {
        libc::S_IFSOCK => "socket",
        libc::S_IFIFO => "pipe",
        _ => return None,
    };
    Some(format!("{kind}:[{}]", st.ino).into_bytes())
}

/// /proc/PID/fd: a link per open descriptor to what it refers to.
fn fd_dir(p: Arc<ProcessInfo>, path: &str) -> Arc<dyn Inode> {
    let base = path.to_string();
    let weak = Arc::downgrade(&p);
    DynDir::build_owned(
        path,
        0o500,
        p.pid,
        Box::new(move || weak.upgrade().map(|p| p.dump_owner()).unwrap_or((0, 0))),
        Box::new(move || {
            let creds = p.creds();
            p.fd_table()
                .map(|f| f.snapshot())
                .unwrap_or_default()
                .into_iter()
                .map(|(fd, entry)| {
                    let path = format!("{base}/{fd}");
                    // A magic link to the file itself (super::fd_link): the walk lands on
                    // the file's own place, or on the file for one without a path, never
                    // on what the text names now. The text of a file with a place is its
                    // path as each reader sees it; a pipe or host stream opened with
                    // O_PATH through its fd link has the link's place, a node without a
                    // parent, and shows as the file itself (`pipe:[INO]`), as Linux's.
                    let text = match &entry.file.location {
                        Some(loc) if !super::fd_link::is_reopened(&**loc.inode()) => None,
                        _ => Some(
                            anon_link(&entry.file)
                                .unwrap_or_else(|| format!("host:[{fd}]").into_bytes()),
                        ),
                    };
                    let inode = super::fd_link::FdLink::build(
                        super::nodes::ino_of(&path),
                        &p,
                        &entry.file,
                        text,
                        (creds.euid, creds.egid),
                        p.dump_owner(),
                    );
                    (fd.to_string().into_bytes(), inode)
                })
                .collect()
        }),
    )
}

/// One mapping as /proc/PID/maps and smaps describe it.
struct MapEntry {
    line: String,
    start: u64,
    end: u64,
    resident_kb: u64,
    anonymous: bool,
    shared: bool,
    writable: bool,
    locked: bool,
    flags: String,
}

/// The process's mappings, in order.
fn map_entries(p: &ProcessInfo) -> Vec<MapEntry> {
    let image = p.image();
    let Some(mm) = image.mm.upgrade() else {
        return Vec::new();
    };
    let mm = mm.lock();
    let mut out = Vec::new();
    for v in mm.vmas() {
        let perms = format!(
            "{}{}{}p",
            if v.prot.read { 'r' } else { '-' },
            if v.prot.write { 'w' } else { '-' },
            if v.prot.exec { 'x' } else { '-' }
        );
        let name = match v.kind {
            VmaKind::Heap => "[heap]".to_string(),
            VmaKind::Stack => "[stack]".to_string(),
            VmaKind::Vdso => "[vdso]".to_string(),
            VmaKind::Vvar => "[vvar]".to_string(),
            VmaKind::Image => String::from_utf8_lossy(&image.exe).into_owned(),
            VmaKind::Anonymous => String::new(),
            VmaKind::File => v
                .file
                .as_ref()
                .map(|f| String::from_utf8_lossy(&f.path).into_owned())
                .unwrap_or_default(),
        };
        let shared = v.file.as_ref().is_some_and(|f| f.shared);
        let perms = if shared {
            perms.replace('p', "s")
        } else {
            perms
        };
        let (offset, dev, ino) = match &v.file {
            Some(f) => {
                let st = f.inode.stat().unwrap_or_default();
                (
                    f.offset,
                    format!("{:02x}:{:02x}", libc::major(st.dev), libc::minor(st.dev)),
                    st.ino,
                )
            }
            None => (0, "00:00".to_string(), 0),
        };
        let line = format!(
            "{:08x}-{:08x} {perms} {offset:08x} {dev} {ino}",
            v.start, v.end
        );
        let line = if name.is_empty() {
            line
        } else {
            format!("{line:<73}{name}")
        };
        // Linux's VmFlags letters for what the sandbox knows of a mapping.
        let mut flags = String::new();
        for (on, f) in [
            (v.prot.read, "rd"),
            (v.prot.write, "wr"),
            (v.prot.exec, "ex"),
            (shared, "sh"),
            (true, "mr"),
            (true, "mw"),
            (true, "me"),
            (shared, "ms"),
            (v.flags.locked, "lo"),
            (v.flags.dontfork, "dc"),
            (v.flags.wipeonfork, "wf"),
            (v.kind == VmaKind::Stack, "gd"),
            (!shared && v.prot.write, "ac"),
        ] {
            if on {
                flags.push(' ');
                flags.push_str(f);
            }
        }
        out.push(MapEntry {
            line,
            start: v.start,
            end: v.end,
            resident_kb: mm.resident_in(v.start, v.end) as u64 * 4,
            anonymous: v.file.is_none() || v.kind == VmaKind::Heap || v.kind == VmaKind::Stack,
            shared,
            writable: v.prot.write,
            locked: v.flags.locked,
            flags,
        });
    }
    out
}

/// /proc/PID/maps, in Linux's format.
fn maps(p: &ProcessInfo) -> Vec<u8> {
    let mut out = String::new();
    for e in map_entries(p) {
        out.push_str(&e.line);
        out.push('\n');
    }
    out.into_bytes()
}

/// The memory counters smaps and smaps_rollup share, for `entries`. Pages are counted as the
/// sandbox knows them: populated pages are resident, private ones dirty when the mapping is
/// writable (clean otherwise), shared ones shared; nothing is swapped, locked or huge.
fn smaps_counters(entries: &[&MapEntry], rollup: bool) -> String {
    let rss: u64 = entries.iter().map(|e| e.resident_kb).sum();
    let sum = |f: &dyn Fn(&MapEntry) -> bool| -> u64 {
        entries.iter().filter(|e| f(e)).map(|e| e.resident_kb).sum()
    };
    let shared = sum(&|e| e.shared);
    let private_dirty = sum(&|e| !e.shared && e.writable);
    let private_clean = sum(&|e| !e.shared && !e.writable);
    let anon = sum(&|e| e.anonymous);
    let locked = sum(&|e| e.locked);
    let mut rows: Vec<(&str, u64)> = vec![("Rss", rss), ("Pss", rss), ("Pss_Dirty", private_dirty)];
    if rollup {
        rows.push(("Pss_Anon", anon));
        rows.push(("Pss_File", rss - anon));
        rows.push(("Pss_Shmem", 0));
    }
    rows.extend([
        ("Shared_Clean", shared),
        ("Shared_Dirty", 0),
        ("Private_Clean", private_clean),
        ("Private_Dirty", private_dirty),
        ("Referenced", rss),
        ("Anonymous", anon),
        ("KSM", 0),
        ("LazyFree", 0),
        ("AnonHugePages", 0),
        ("ShmemPmdMapped", 0),
        ("FilePmdMapped", 0),
        ("Shared_Hugetlb", 0),
        ("Private_Hugetlb", 0),
        ("Swap", 0),
        ("SwapPss", 0),
        ("Locked", locked),
    ]);
    let mut out = String::new();
    for (k, v) in rows {
        out.push_str(&format!("{:<16}{v:>8} kB\n", format!("{k}:")));
    }
    out
}

/// /proc/PID/smaps: each mapping with its memory counters.
fn smaps(p: &ProcessInfo) -> Vec<u8> {
    let mut out = String::new();
    for e in map_entries(p) {
        out.push_str(&e.line);
        out.push('\n');
        let size = (e.end - e.start) / 1024;
        for (k, v) in [("Size", size), ("KernelPageSize", 4), ("MMUPageSize", 4)] {
            out.push_str(&format!("{:<16}{v:>8} kB\n", format!("{k}:")));
        }
        out.push_str(&smaps_counters(&[&e], false));
        out.push_str("THPeligible:    0\n");
        out.push_str(&format!("VmFlags:{} \n", e.flags));
    }
    out.into_bytes()
}

/// /proc/PID/smaps_rollup: the counters of every mapping summed.
fn smaps_rollup(p: &ProcessInfo) -> Vec<u8> {
    let entries = map_entries(p);
    let (start, end) = match (entries.first(), entries.last()) {
        (Some(a), Some(b)) => (a.start, b.end),
        _ => (0, 0),
    };
    let refs: Vec<&MapEntry> = entries.iter().collect();
    let head = format!("{start:08x}-{end:08x} ---p 00000000 00:00 0");
    format!("{head:<73}[rollup]\n{}", smaps_counters(&refs, true)).into_bytes()
}

/// Linux's names and units of the resource limits, by RLIMIT_* number.
const LIMIT_NAMES: [(&str, &str); 16] = [
    ("Max cpu time", "seconds"),
    ("Max file size", "bytes"),
    ("Max data size", "bytes"),
    ("Max stack size", "bytes"),
    ("Max core file size", "bytes"),
    ("Max resident set", "bytes"),
    ("Max processes", "processes"),
    ("Max open files", "files"),
    ("Max locked memory", "bytes"),
    ("Max address space", "bytes"),
    ("Max file locks", "locks"),
    ("Max pending signals", "signals"),
    ("Max msgqueue size", "bytes"),
    ("Max nice priority", ""),
    ("Max realtime priority", ""),
    ("Max realtime timeout", "us"),
];

/// /proc/PID/limits, in Linux's layout.
fn limits(p: &ProcessInfo) -> Vec<u8> {
    let limits = *p.limits.lock().unwrap_or_else(|e| e.into_inner());
    let mut out = format!(
        "{:<25} {:<20} {:<20} {:<10}\n",
        "Limit", "Soft Limit", "Hard Limit", "Units"
    );
    let show = |v: u64| {
        if v == libc::RLIM_INFINITY {
            "unlimited".to_string()
        } else {
            v.to_string()
        }
    };
    for (i, (name, unit)) in LIMIT_NAMES.iter().enumerate() {
        let (soft, hard) = limits.get(i).copied().unwrap_or((0, 0));
        out.push_str(&format!(
            "{name:<25} {:<20} {:<20} ",
            show(soft),
            show(hard)
        ));
        if unit.is_empty() {
            out.push('\n');
        } else {
            out.push_str(&format!("{unit:<10}\n"));
        }
    }
    out.into_bytes()
}

/// A path or name as /proc/mounts and mountinfo print it: space, tab, newline and
/// backslash as octal escapes (Linux's mangle).
fn mangle(out: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        match b {
            b' ' | b'\t' | b'\n' | b'\\' => out.extend_from_slice(format!("\\{b:03o}").as_bytes()),
            _ => out.push(b),
        }
    }
}

/// A mount's per-mount options, as Linux's show_mnt_opts: `rw` or `ro`, then the rest.
fn mount_opts(m: &fs::vfs::MountInfo) -> String {
    use fs::vfs::mount_flags as f;
    let mut o = String::from(if m.read_only { "ro" } else { "rw" });
    for (bit, name) in [
        (f::NOSUID, ",nosuid"),
        (f::NODEV, ",nodev"),
        (f::NOEXEC, ",noexec"),
        (f::NOATIME, ",noatime"),
        (f::NODIRATIME, ",nodiratime"),
        (f::RELATIME, ",relatime"),
    ] {
        if m.flags & bit != 0 {
            o.push_str(name);
        }
    }
    o
}

/// /proc/PID/mounts (and /proc/mounts): the mounts the process's root reaches.
fn mounts(p: &ProcessInfo) -> Vec<u8> {
    let mut out = Vec::new();
    for m in p.fs.ns().mounts(&p.fs.root()) {
        mangle(&mut out, m.source.as_bytes());
        out.push(b' ');
        mangle(&mut out, &m.path);
        out.push(b' ');
        mangle(&mut out, m.fs_type.as_bytes());
        let mut opts = mount_opts(&m);
        if !m.options.is_empty() {
            opts.push(',');
            opts.push_str(&m.options);
        }
        out.extend_from_slice(format!(" {opts} 0 0\n").as_bytes());
    }
    out
}

/// /proc/PID/mountinfo: `id parent major:minor root mount-point options [optional] -
/// type source super-options`, the optional fields being the propagation (shared:N,
/// master:N, unbindable).
fn mountinfo(p: &ProcessInfo) -> Vec<u8> {
    use fs::vfs::Propagation;
    let mut out = Vec::new();
    for m in p.fs.ns().mounts(&p.fs.root()) {
        let (major, minor) = (fs::dev::major(m.dev), fs::dev::minor(m.dev));
        out.extend_from_slice(format!("{} {} {major}:{minor} ", m.id, m.parent_id).as_bytes());
        mangle(&mut out, &m.root);
        out.push(b' ');
        mangle(&mut out, &m.path);
        out.push(b' ');
        out.extend_from_slice(mount_opts(&m).as_bytes());
        match m.propagation {
            Propagation::Shared(g) => out.extend_from_slice(format!(" shared:{g}").as_bytes()),
            Propagation::Slave(g) => out.extend_from_slice(format!(" master:{g}").as_bytes()),
            Propagation::Unbindable => out.extend_from_slice(b" unbindable"),
            Propagation::Private => {}
        }
        out.extend_from_slice(b" - ");
        mangle(&mut out, m.fs_type.as_bytes());
        out.push(b' ');
        mangle(&mut out, m.source.as_bytes());
        out.extend_from_slice(if m.read_only { b" ro" } else { b" rw" });
        if !m.options.is_empty() {
            out.push(b',');
            out.extend_from_slice(m.options.as_bytes());
        }
        out.push(b'\n');
    }
    out
}

/// How a /proc/PID/ns link finds its namespace.
type NsOf = fn(&ProcessInfo) -> crate::namespaces::NsRef;

/// /proc/PID/ns: a magic link per namespace kind (`uts:[4026531838]`), leading to the file
/// setns takes.
fn ns_dir(p: Arc<ProcessInfo>, path: &str) -> Arc<dyn Inode> {
    use crate::namespaces::{NsLink, NsRef};
    let base = path.to_string();
    DynDir::build(
        path,
        0o511,
        Box::new(move || {
            let kinds: [(&str, NsOf); 10] = [
                ("cgroup", |p| NsRef::Cgroup(p.namespaces().cgroup)),
                ("ipc", |p| NsRef::Ipc(p.namespaces().ipc)),
                ("mnt", |p| NsRef::Mnt(p.fs.ns())),
                ("net", |p| NsRef::Net(p.namespaces().net)),
                ("pid", |p| NsRef::Pid(p.namespaces().pid)),
                ("pid_for_children", |p| {
                    NsRef::Pid(p.namespaces().pid_for_children)
                }),
                ("time", |p| NsRef::Time(p.namespaces().time)),
                ("time_for_children", |p| NsRef::Time(p.namespaces().time)),
                ("user", |p| NsRef::User(p.creds().user_ns.0)),
                ("uts", |p| NsRef::Uts(p.namespaces().uts)),
            ];
            kinds
                .into_iter()
                .map(|(name, get)| {
                    let weak = Arc::downgrade(&p);
                    let link = NsLink::build(
                        super::nodes::ino_of(&format!("{base}/{name}")),
                        super::PROC_DEV,
                        // Linux's proc_ns_get_link and proc_ns_readlink: the ptrace
                        // access check (PTRACE_MODE_READ_FSCREDS), EACCES.
                        Box::new(move || {
                            let p = weak.upgrade().ok_or(libc::ENOENT)?;
                            if !p.may_be_accessed(crate::ptrace::AccessMode::READ_FSCREDS) {
                                return Err(libc::EACCES);
                            }
                            Ok(get(&p))
                        }),
                    );
                    (name.as_bytes().to_vec(), link)
                })
                .collect()
        }),
    )
}

fn status(p: &ProcessInfo) -> Vec<u8> {
    let c = &p.creds();
    // The ids as the reader's user namespace names them.
    let ns = reader_userns(p);
    let (u, g) = (|id| ns.uid_seen(id), |id| ns.gid_seen(id));
    let groups: Vec<String> = c.groups.iter().map(|&id| g(id).to_string()).collect();
    let (vm_kb, rss_kb, lck_kb) = {
        let image = p.image();
        match image.mm.upgrade() {
            Some(mm) => {
                let mm = mm.lock();
                let vm: u64 = mm.vmas().map(|v| v.end - v.start).sum();
                (
                    vm / 1024,
                    mm.resident_pages() as u64 * 4,
                    mm.locked_bytes(0, u64::MAX) / 1024,
                )
            }
            None => (0, 0, 0),
        }
    };
    let seccomp = p.seccomp.get().map(|s| s.status()).unwrap_or_default();
    format!(
        "Name:\t{}\nUmask:\t0022\nState:\t{}\nTgid:\t{pid}\nNgid:\t0\nPid:\t{pid}\nPPid:\t{}\n\
         TracerPid:\t{}\nUid:\t{}\t{}\t{}\t{}\nGid:\t{}\t{}\t{}\t{}\nFDSize:\t64\nGroups:\t{} \n\
         VmPeak:\t{vm_kb} kB\nVmSize:\t{vm_kb} kB\nVmLck:\t{lck_kb} kB\nVmRSS:\t{rss_kb} kB\nThreads:\t{}\n\
         SigQ:\t0/0\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n\
         CapInh:\t{:016x}\nCapPrm:\t{:016x}\nCapEff:\t{:016x}\nCapBnd:\t{:016x}\nCapAmb:\t{:016x}\n\
         NoNewPrivs:\t{}\nSeccomp:\t{}\nSeccomp_filters:\t{}\n",
        String::from_utf8_lossy(&p.comm()),
        state(p),
        parent(p),
        seen(p, p.kernel.upgrade().map_or(0, |k| k.ptrace.tracer_of(p.pid))),
        u(c.uid),
        u(c.euid),
        u(c.suid),
        u(c.euid),
        g(c.gid),
        g(c.egid),
        g(c.sgid),
        g(c.egid),
        // Linux ends the list with a space, even an empty one.
        groups.join(" "),
        p.tids().len().max(1),
        c.caps.inheritable,
        c.caps.permitted,
        c.caps.effective,
        c.caps.bounding,
        c.caps.ambient,
        seccomp.no_new_privs as u8,
        seccomp.mode,
        seccomp.filters,
        pid = seen(p, p.pid),
    )
    .into_bytes()
}

/// Its parent now (the parent it was born with may have gone: then init, or a subreaper),
/// as the reader sees it.
fn parent(p: &ProcessInfo) -> i32 {
    seen(p, p.kernel.upgrade().map_or(p.ppid, |k| k.ppid(p.pid)))
}

/// The id the process reading /proc gives the task `global` (its pid namespace's; 0 if it
/// doesn't see it).
fn seen(p: &ProcessInfo, global: i32) -> i32 {
    let Some(k) = p.kernel.upgrade() else {
        return global;
    };
    match k.procfs.process(super::current_pid()) {
        Some(reader) => crate::namespaces::pid_view(&reader, global),
        None => global,
    }
}

/// The process's state as /proc/PID/status names it: running when it reads its own files,
/// stopped by job control, a zombie once its threads are gone; otherwise sleeping (the
/// sandbox doesn't know which of its threads are on a CPU at this instant).
fn state(p: &ProcessInfo) -> &'static str {
    match p.group.get().and_then(|g| g.upgrade()) {
        None => "Z (zombie)",
        Some(g) if g.thread_count() == 0 => "Z (zombie)",
        Some(g) if g.job.is_stopped() => "T (stopped)",
        Some(_) if super::current_pid() == p.pid => "R (running)",
        Some(_) => "S (sleeping)",
    }
}

/// /proc/PID/stat. What the sandbox doesn't track reads as 0: the fault counts, the split of
/// CPU time between user and system (all of it is utime), the terminal's number, and the
/// signal and scheduling fields past rsslim.
fn stat(p: &ProcessInfo) -> Vec<u8> {
    let (vsize, rss) = {
        let image = p.image();
        match image.mm.upgrade() {
            Some(mm) => {
                let mm = mm.lock();
                let vm: u64 = mm.vmas().map(|v| v.end - v.start).sum();
                (vm, mm.resident_pages())
            }
            None => (0, 0),
        }
    };
    let kernel = p.kernel.upgrade();
    let group = p.group.get().and_then(|g| g.upgrade());
    let ppid = parent(p);
    let (pgrp, session) = kernel
        .as_ref()
        .and_then(|k| k.ids(p.pid))
        .unwrap_or((p.pid, p.pid));
    let (pgrp, session) = (seen(p, pgrp), seen(p, session));
    let state = state(p).chars().next().unwrap_or('S');
    let ticks = |d: std::time::Duration| d.as_nanos() as u64 * 100 / 1_000_000_000;
    let (utime, cutime, nice, threads) = match &group {
        Some(g) => (
            ticks(g.cpu.process()),
            ticks(g.sched.children().cpu),
            g.sched.nice(),
            g.thread_count(),
        ),
        None => (0, 0, 0, 0),
    };
    let starttime = kernel
        .as_ref()
        .map(|k| ticks(p.started.saturating_duration_since(k.booted)))
        .unwrap_or(0);
    let rsslim = p.limits.lock().unwrap_or_else(|e| e.into_inner())[libc::RLIMIT_RSS as usize].0;
    // pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
    // utime stime cutime cstime priority nice num_threads itrealvalue starttime vsize rss
    // rsslim, then 27 more.
    let mut s = format!(
        "{} ({}) {state} {ppid} {pgrp} {session} 0 -1 4194304 0 0 0 0 {utime} 0 {cutime} 0 {} {nice} {threads} 0 {starttime} {vsize} {rss} {rsslim}",
        seen(p, p.pid),
        String::from_utf8_lossy(&p.comm()),
        20 + nice,
    );
    // startcode .. exit_code: zero.
    for _ in 0..27 {
        s.push_str(" 0");
    }
    s.push('\n');
    s.into_bytes()
}

/// The user namespace of the process reading /proc (the initial one when none is);
/// `p` is any process of the same kernel.
pub(super) fn reader_userns(p: &ProcessInfo) -> Arc<UserNs> {
    reader_creds(p).user_ns.0
}

/// The credentials of the process whose system call this thread serves.
fn reader_creds(p: &ProcessInfo) -> Creds {
    let me = super::current_pid();
    p.kernel
        .upgrade()
        .and_then(|k| k.procfs.process(me))
        .map(|p| p.creds())
        .unwrap_or_default()
}

#[derive(Clone, Copy)]
enum UserNsFileKind {
    Map(MapKind),
    Setgroups,
}

/// /proc/PID/uid_map, gid_map and setgroups: the process's user namespace's maps as the
/// reader sees them (`UserNs::map_text`), written once by a process in that namespace or
/// its parent (`UserNs::write_map`). Owned by the process's effective ids, as Linux's
/// /proc/PID files of a dumpable process, so that it may open its own for writing.
struct UserNsFile {
    ino: u64,
    p: std::sync::Weak<ProcessInfo>,
    kind: UserNsFileKind,
}

impl UserNsFile {
    fn build(path: &str, p: &Arc<ProcessInfo>, kind: UserNsFileKind) -> Arc<dyn Inode> {
        Arc::new(UserNsFile {
            ino: super::nodes::ino_of(path),
            p: Arc::downgrade(p),
            kind,
        })
    }

    fn stat_now(&self) -> fs::Stat {
        let (uid, gid) = self
            .p
            .upgrade()
            .map(|p| {
                let c = p.creds();
                (c.euid, c.egid)
            })
            .unwrap_or((0, 0));
        fs::Stat {
            uid,
            gid,
            ..super::nodes::base_stat(self.ino, libc::S_IFREG | 0o644, 1)
        }
    }
}

impl Inode for UserNsFile {
    fn stat(&self) -> Result<fs::Stat, fs::Errno> {
        Ok(self.stat_now())
    }

    fn file_type(&self) -> fs::vfs::FileType {
        fs::vfs::FileType::Regular
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }

    fn open(&self, flags: i32) -> Result<Option<Arc<dyn fs::FileDescription>>, fs::Errno> {
        let p = self.p.upgrade().ok_or(libc::ESRCH)?;
        let target = p.creds().user_ns.0;
        let opener = reader_creds(&p);
        let writing = flags & libc::O_ACCMODE != libc::O_RDONLY;
        // Linux's proc_setgroups_open: writing needs CAP_SYS_ADMIN in the namespace.
        if writing
            && matches!(self.kind, UserNsFileKind::Setgroups)
            && !crate::caps::ns_capable(&opener, &target, crate::caps::Cap::SysAdmin)
        {
            return Err(libc::EPERM);
        }
        let data = match self.kind {
            UserNsFileKind::Map(k) => target.map_text(k, &opener.user_ns),
            UserNsFileKind::Setgroups if target.setgroups_allowed() => b"allow\n".to_vec(),
            UserNsFileKind::Setgroups => b"deny\n".to_vec(),
        };
        Ok(Some(Arc::new(UserNsFd {
            data,
            offset: std::sync::Mutex::new(0),
            stat: self.stat_now(),
            target,
            opener,
            kind: self.kind,
        })))
    }

    fn setattr(&self, _: &fs::vfs::SetAttr) -> Result<(), fs::Errno> {
        Err(libc::EPERM)
    }

    fn statfs(&self) -> Result<fs::vfs::StatFs, fs::Errno> {
        Ok(super::nodes::statfs())
    }
}

/// An open uid_map, gid_map or setgroups: the text as of the open, and the opener's
/// credentials, which a write is checked against (Linux's file->f_cred).
struct UserNsFd {
    data: Vec<u8>,
    offset: std::sync::Mutex<u64>,
    stat: fs::Stat,
    target: Arc<UserNs>,
    opener: Creds,
    kind: UserNsFileKind,
}

impl UserNsFd {
    fn read_at(&self, at: u64, buf: &mut [u8]) -> usize {
        let rest = self.data.get(at as usize..).unwrap_or_default();
        let n = rest.len().min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        n
    }

    /// One write, which must start at offset 0 (EINVAL otherwise, as Linux's).
    fn write_at(&self, at: u64, buf: &[u8]) -> Result<usize, fs::Errno> {
        if at != 0 {
            return Err(libc::EINVAL);
        }
        match self.kind {
            UserNsFileKind::Map(k) => self.target.write_map(k, buf, &self.opener),
            UserNsFileKind::Setgroups => self.target.write_setgroups(buf),
        }
        .map_err(|e| e.0)?;
        Ok(buf.len())
    }
}

impl fs::FileDescription for UserNsFd {
    fn read(&self, buf: &mut [u8]) -> Result<usize, fs::Errno> {
        let mut off = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        let n = self.read_at(*off, buf);
        *off += n as u64;
        Ok(n)
    }

    fn write(&self, buf: &[u8]) -> Result<usize, fs::Errno> {
        let mut off = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        let n = self.write_at(*off, buf)?;
        *off += n as u64;
        Ok(n)
    }

    fn pread(&self, buf: &mut [u8], offset: i64) -> Result<usize, fs::Errno> {
        if offset < 0 {
            return Err(libc::EINVAL);
        }
        Ok(self.read_at(offset as u64, buf))
    }

    /// A seq file's: no pwrite (Linux's seq_open clears FMODE_PWRITE).
    fn pwrite(&self, _: &[u8], _: i64) -> Result<usize, fs::Errno> {
        Err(libc::ESPIPE)
    }

    fn seek(&self, offset: i64, whence: i32) -> Result<i64, fs::Errno> {
        let mut off = self.offset.lock().unwrap_or_else(|e| e.into_inner());
        // A map file has no end to seek from (SEEK_END is EINVAL).
        let new = super::nodes::seek_to(*off, None, offset, whence)?;
        *off = new as u64;
        Ok(new)
    }

    fn stat(&self) -> Result<fs::Stat, fs::Errno> {
        Ok(self.stat)
    }

    fn may_block(&self) -> bool {
        false
    }
}
