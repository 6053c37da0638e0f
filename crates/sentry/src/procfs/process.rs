//! /proc/PID: what procfs shows of one process.

use std::sync::Arc;

use fs::vfs::Inode;

use super::nodes::{DynDir, DynLink, GenFile};
use crate::fdtable::FdTable;
use crate::fs_context::FsContext;
use crate::mm::{Mm, VmaKind};
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
    pub creds: Creds,
    /// What execve replaces.
    pub image: std::sync::Mutex<ImageInfo>,
    /// The process's threads (set once the group exists; weak, as a zombie has none).
    pub group: std::sync::OnceLock<std::sync::Weak<crate::process::ThreadGroup>>,
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

    /// Records a new program (execve).
    pub fn set_image(&self, image: ImageInfo) {
        *self.image.lock().unwrap_or_else(|e| e.into_inner()) = image;
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
            let (p1, p2, p3, p4, p5, p6, p7, p8, p9, p10, p11) = (
                p.clone(),
                p.clone(),
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
                (
                    b"exe".to_vec(),
                    DynLink::build(&path("exe"), Box::new(move || ok(p1.image().exe))),
                ),
                (
                    b"cwd".to_vec(),
                    DynLink::build(
                        &path("cwd"),
                        Box::new(move || ok(p2.fs.ns.path(&p2.fs.cwd(), &p2.fs.root()))),
                    ),
                ),
                (
                    b"root".to_vec(),
                    DynLink::build(&path("root"), Box::new(|| ok(b"/".to_vec()))),
                ),
                (
                    b"cmdline".to_vec(),
                    GenFile::build(&path("cmdline"), Box::new(move || ok(p3.image().cmdline))),
                ),
                (
                    b"environ".to_vec(),
                    GenFile::build(&path("environ"), Box::new(move || ok(p4.image().environ))),
                ),
                (
                    b"auxv".to_vec(),
                    GenFile::build(&path("auxv"), Box::new(move || ok(p5.image().auxv))),
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
                    GenFile::build(&path("maps"), Box::new(move || ok(maps(&p7)))),
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
                (b"fd".to_vec(), fd_dir(p11, &path("fd"))),
            ]
        }
    }
}

/// What Linux shows for a descriptor without a path: `socket:[INO]` and `pipe:[INO]`.
fn anon_link(file: &fs::vfs::OpenFile) -> Option<Vec<u8>> {
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
    DynDir::build(
        path,
        0o500,
        Box::new(move || {
            let root = p.fs.root();
            p.fd_table()
                .map(|f| f.snapshot())
                .unwrap_or_default()
                .into_iter()
                .map(|(fd, entry)| {
                    let target = match &entry.file.location {
                        Some(loc) => p.fs.ns.path(loc, &root),
                        None => anon_link(&entry.file)
                            .unwrap_or_else(|| format!("host:[{fd}]").into_bytes()),
                    };
                    let inode = DynLink::build(
                        &format!("{base}/{fd}"),
                        Box::new(move || ok(target.clone())),
                    );
                    (fd.to_string().into_bytes(), inode)
                })
                .collect()
        }),
    )
}

/// /proc/PID/maps, in Linux's format.
fn maps(p: &ProcessInfo) -> Vec<u8> {
    let image = p.image();
    let Some(mm) = image.mm.upgrade() else {
        return Vec::new();
    };
    let mm = mm.lock();
    let mut out = String::new();
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
        if name.is_empty() {
            out.push_str(&line);
        } else {
            out.push_str(&format!("{line:<73}{name}"));
        }
        out.push('\n');
    }
    out.into_bytes()
}

/// /proc/PID/mounts (and /proc/mounts): the namespace as seen from the process's root.
fn mounts(p: &ProcessInfo) -> Vec<u8> {
    let mut out = Vec::new();
    for m in p.fs.ns.mounts(&p.fs.root()) {
        out.extend_from_slice(m.source.as_bytes());
        out.push(b' ');
        out.extend_from_slice(&m.path);
        let opts = if m.read_only { "ro" } else { "rw" };
        out.extend_from_slice(format!(" {} {opts} 0 0\n", m.fs_type).as_bytes());
    }
    out
}

fn status(p: &ProcessInfo) -> Vec<u8> {
    let c = &p.creds;
    let groups: Vec<String> = c.groups.iter().map(|g| g.to_string()).collect();
    let (vm_kb, rss_kb) = {
        let image = p.image();
        match image.mm.upgrade() {
            Some(mm) => {
                let mm = mm.lock();
                let vm: u64 = mm.vmas().map(|v| v.end - v.start).sum();
                (vm / 1024, mm.resident_pages() as u64 * 4)
            }
            None => (0, 0),
        }
    };
    format!(
        "Name:\t{}\nUmask:\t0022\nState:\tR (running)\nTgid:\t{pid}\nNgid:\t0\nPid:\t{pid}\nPPid:\t{}\n\
         TracerPid:\t0\nUid:\t{}\t{}\t{}\t{}\nGid:\t{}\t{}\t{}\t{}\nFDSize:\t64\nGroups:\t{}\n\
         VmPeak:\t{vm_kb} kB\nVmSize:\t{vm_kb} kB\nVmRSS:\t{rss_kb} kB\nThreads:\t{}\n\
         SigQ:\t0/0\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000000000\n\
         CapInh:\t0000000000000000\nSeccomp:\t0\n",
        String::from_utf8_lossy(&p.comm()),
        p.ppid,
        c.uid,
        c.euid,
        c.suid,
        c.euid,
        c.gid,
        c.egid,
        c.sgid,
        c.egid,
        groups.join(" "),
        p.tids().len().max(1),
        pid = p.pid,
    )
    .into_bytes()
}

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
    // pid (comm) state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
    // utime stime cutime cstime priority nice num_threads itrealvalue starttime vsize rss ...
    let mut s = format!(
        "{} ({}) R {} {} {} 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 1 0 0 {vsize} {rss}",
        p.pid,
        String::from_utf8_lossy(&p.comm()),
        p.ppid,
        p.pid,
        p.pid,
    );
    // The remaining 28 fields (rsslim .. exit_code) are zero.
    for _ in 0..28 {
        s.push_str(" 0");
    }
    s.push('\n');
    s.into_bytes()
}
