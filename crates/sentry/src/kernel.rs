//! Starting the sandbox's first process.

use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use platform::{Platform, Prot, UserRegs, PAGE_SIZE};

use fs::vfs::{MountNamespace, OpenFile, ResolveFlags, Resolver};

use crate::errno::Errno;
use crate::fdtable::FdTable;
use crate::fs_context::FsContext;
use crate::loader::stack::*;
use crate::loader::{self, ElfImage, StackArgs};
use crate::mm::{page_align_down, page_align_up, FileMapping, MemoryManager, Vma, VmaKind};
use crate::process::{Kernel, ThreadGroup};
use crate::program::Program;
use crate::rlimit::stack::layout as stack_layout;
use crate::signal::SignalState;
use crate::task::{Creds, ExitStatus, Task, TaskState, TaskSyscalls, RLIM_NLIMITS};
use crate::vdso::Vdso;
use crate::SentryError;

/// What to run as the sandbox's first process.
pub struct ProcessSpec {
    /// The program, found in the sandbox's file system ([`crate::program::find`]).
    pub program: Program,
    /// Its parsed image ([`loader::parse`]).
    pub image: ElfImage,
    pub argv: Vec<Vec<u8>>,
    pub envp: Vec<Vec<u8>>,
    /// The file system the sandbox sees.
    pub mounts: Arc<MountNamespace>,
    /// The sandbox's /proc, where the process is registered.
    pub procfs: Arc<crate::procfs::ProcFs>,
    /// Working directory the program starts in (the root if it doesn't resolve).
    pub cwd: Vec<u8>,
    pub creds: Creds,
    /// Starts with no_new_privs set (OCI `process.noNewPrivileges`).
    pub no_new_privs: bool,
    /// Resource limits (resource, soft, hard) set over the host's (OCI `process.rlimits`);
    /// the caller checks them as setrlimit would.
    pub rlimits: Vec<(usize, u64, u64)>,
    /// Standard input, output and error (None: closed).
    pub stdio: [Option<OwnedFd>; 3],
}

/// Fills `buf` from the host's random source.
pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), crate::errno::Errno> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: rest is a valid writable buffer of rest.len() bytes.
        let r = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(crate::errno::Errno::from_io(&e));
        }
        filled += r as usize;
    }
    Ok(())
}

pub(crate) fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // Failure leaves zeros: a less random but still valid layout.
    let _ = fill_random(&mut b);
    u64::from_le_bytes(b)
}

fn prot(p: loader::Prot) -> Prot {
    Prot {
        read: p.read,
        write: p.write,
        exec: p.exec,
    }
}

/// Maps the program's segments and returns the load bias.
fn load_image(
    mm: &mut MemoryManager,
    image: &ElfImage,
    program: &Program,
) -> Result<u64, SentryError> {
    load_image_at(mm, image, program, image.load_bias(random_u64()))
}

/// Maps the part of a segment that comes from the file as a private file mapping, when the
/// file lends its pages (an ImgFS image), or when the segment is read-only (text, read-only
/// data) and its pages can come from the file cache (`mm::file_cache`): the program's text
/// is then the image's or the cache's pages, not a copy of its own in every process, and a
/// write (relocations, .data) copies just the page written, as on Linux. Returns the start
/// and end of what was mapped, or None where the segment must be copied instead: a writable
/// segment of a file that doesn't lend its pages, file and memory offsets not congruent
/// modulo the page size, or a page already used by an earlier segment.
fn map_segment_from_file(
    mm: &mut MemoryManager,
    seg: &loader::Segment,
    program: &Program,
    bias: u64,
) -> Option<(u64, u64)> {
    if program.inode.mappable().is_none() && seg.prot.write {
        return None;
    }
    let vaddr = seg.vaddr.checked_add(bias)?;
    if seg.filesz == 0 || vaddr.wrapping_sub(seg.file_offset) % PAGE_SIZE != 0 {
        return None;
    }
    let start = page_align_down(vaddr);
    let end = page_align_up(vaddr.checked_add(seg.filesz)?)?;
    if !mm.is_free(start, end) {
        return None;
    }
    mm.insert_vma(Vma {
        start,
        end,
        prot: prot(seg.prot),
        kind: VmaKind::File,
        file: Some(FileMapping {
            shm: None,
            inode: program.inode.clone(),
            offset: page_align_down(seg.file_offset),
            shared: false,
            may_write: false,
            path: program.exe.clone(),
            name: None,
        }),
        flags: Default::default(),
    });
    // The rest of the last page belongs to .bss: zeros, not the bytes that follow in the file.
    let file_end = vaddr + seg.filesz;
    if seg.memsz > seg.filesz && file_end < end {
        mm.write_force(file_end, &vec![0u8; (end - file_end) as usize])
            .ok()?;
    }
    Some((start, end))
}

/// Maps the segments of `image` with load bias `bias`.
fn load_image_at(
    mm: &mut MemoryManager,
    image: &ElfImage,
    program: &Program,
    bias: u64,
) -> Result<u64, SentryError> {
    let oom = |_| SentryError::OutOfMemory;
    for seg in &image.segments {
        let mut start = page_align_down(seg.vaddr + bias);
        let end = page_align_up(seg.vaddr + bias + seg.memsz).ok_or(SentryError::OutOfMemory)?;
        let copy_data = match map_segment_from_file(mm, seg, program, bias) {
            Some((mapped_start, mapped_end)) => {
                // Pages a file lends cost nothing to leave to faults; cached ones are mapped
                // now, as copied ones are, since a fault costs tens of microseconds here.
                if program.inode.mappable().is_none() {
                    mm.populate(mapped_start, mapped_end)
                        .map_err(|_| SentryError::OutOfMemory)?;
                }
                start = mapped_end;
                false
            }
            None => true,
        };
        // Segments may share a boundary page; keep what an earlier one wrote there.
        let mut at = start;
        while at < end {
            let next = mm.vma_at(at).map(|v| v.end.min(end)).unwrap_or_else(|| {
                mm.vmas()
                    .map(|v| v.start)
                    .find(|&s| s > at)
                    .unwrap_or(end)
                    .min(end)
            });
            if mm.vma_at(at).is_none() {
                mm.map_anonymous(at, next - at, prot(seg.prot), VmaKind::Image);
            }
            at = next;
        }
        if copy_data {
            let data = program.bytes_at(seg.file_offset, seg.filesz).map_err(|e| {
                let path = PathBuf::from(String::from_utf8_lossy(&program.path).into_owned());
                SentryError::Load(loader::LoadError::io(
                    &path,
                    std::io::Error::from_raw_os_error(e.0),
                ))
            })?;
            mm.write_force(seg.vaddr + bias, &data).map_err(oom)?;
        }
        if start < end {
            mm.populate(start, end)
                .map_err(|_| SentryError::OutOfMemory)?;
        }
    }
    // Shared boundary pages get the union of both segments' rights, as Linux's would.
    Ok(bias)
}

fn host_auxv(key: u64) -> u64 {
    // SAFETY: getauxval has no preconditions.
    unsafe { libc::getauxval(key) }
}

fn host_rlimits() -> [(u64, u64); RLIM_NLIMITS] {
    let mut out = [(libc::RLIM_INFINITY, libc::RLIM_INFINITY); RLIM_NLIMITS];
    for (i, slot) in out.iter_mut().enumerate() {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: r is a valid out-pointer; i is below RLIM_NLIMITS.
        if unsafe { libc::getrlimit(i as _, &mut r) } == 0 {
            *slot = (r.rlim_cur, r.rlim_max);
        }
    }
    // The sandbox's fs.nr_open caps descriptors whatever the host allows.
    let nofile = &mut out[libc::RLIMIT_NOFILE as usize];
    *nofile = (
        nofile.0.min(crate::rlimit::NR_OPEN),
        nofile.1.min(crate::rlimit::NR_OPEN),
    );
    out
}

/// The first task's view of the file system: the namespace root, and `cwd` if it resolves.
fn start_fs(mounts: &Arc<MountNamespace>, cwd: &[u8], creds: &Creds) -> FsContext {
    let root = mounts.root();
    let fs_creds = creds.fs_creds();
    let resolver = Resolver {
        ns: mounts,
        root: &root,
        creds: &fs_creds,
    };
    let cwd = match resolver.resolve(&root, cwd, ResolveFlags::follow()) {
        Ok(loc) => loc,
        Err(e) => {
            tracing::debug!(
                "working directory {:?}: errno {e}; using /",
                String::from_utf8_lossy(cwd)
            );
            root.clone()
        }
    };
    FsContext::new(mounts.clone(), root, cwd)
}

/// Largest interpreter the loader reads.
const MAX_INTERP_SIZE: u64 = 64 << 20;

/// Reads the program interpreter named by PT_INTERP, through the sandbox's file system.
fn read_interpreter(
    fs: &FsContext,
    creds: &Creds,
    name: &[u8],
    program: &std::path::Path,
) -> Result<(Program, ElfImage), SentryError> {
    let shown = String::from_utf8_lossy(name).into_owned();
    let fail = |reason: String| {
        SentryError::Load(loader::LoadError::Unsupported {
            path: program.to_path_buf(),
            reason: format!("interpreter {shown}: {reason}"),
        })
    };
    let errno = |e: i32| fail(std::io::Error::from_raw_os_error(e).to_string());
    let root = fs.root();
    let fs_creds = creds.fs_creds();
    let resolver = Resolver {
        ns: &fs.ns(),
        root: &root,
        creds: &fs_creds,
    };
    let loc = resolver
        .resolve(&fs.cwd(), name, ResolveFlags::follow())
        .map_err(errno)?;
    let mut interp =
        crate::program::read_at(&fs.ns(), &root, &loc, name, &fs_creds, MAX_INTERP_SIZE).map_err(
            |e| match e {
                Errno::ENOMEM => fail("too large".into()),
                e => errno(e.0),
            },
        )?;
    let path = std::path::PathBuf::from(shown.clone());
    let image = interp.image(&path)?;
    if image.interp.is_some() || image.kind != loader::ElfKind::StaticPie {
        return Err(fail("not a position-independent interpreter".into()));
    }
    Ok((interp, image))
}

/// A program loaded into a new address space, ready to run.
pub struct Loaded {
    pub mm: MemoryManager,
    pub regs: UserRegs,
    pub stack: loader::InitialStack,
}

/// Builds a process image: the program (and its interpreter, read through `fs`), the
/// stack with argv, envp and auxv, brk and the mmap area, as Linux's load_elf_binary.
/// `stack_limit` is the soft RLIMIT_STACK the stack is sized by.
#[allow(clippy::too_many_arguments)]
pub fn load_program(
    platform: &dyn Platform,
    vdso: &Vdso,
    fs: &FsContext,
    creds: &Creds,
    program: &Program,
    image: &ElfImage,
    argv: &[Vec<u8>],
    envp: &[Vec<u8>],
    execfn: &[u8],
    stack_limit: u64,
) -> Result<Loaded, SentryError> {
    let path = &PathBuf::from(String::from_utf8_lossy(&program.path).into_owned());
    let interp = match &image.interp {
        Some(name) => Some(read_interpreter(fs, creds, name, path)?),
        None => None,
    };
    let space = platform.new_address_space()?;
    let mut mm = MemoryManager::new(platform.memory().clone(), space, loader::USER_ADDR_LIMIT);
    let bias = load_image(&mut mm, image, program)?;

    // Layout as Linux's: stack at the top (randomized), mmap area below it, brk after the image.
    let stack_top = page_align_down(
        loader::USER_ADDR_LIMIT - PAGE_SIZE - (random_u64() % (1 << 22)) * PAGE_SIZE,
    );
    let layout = stack_layout(stack_top, stack_limit, random_u64());
    let rw = Prot {
        read: true,
        write: true,
        exec: image.stack_exec,
    };
    mm.map_anonymous(layout.bottom, layout.size, rw, VmaKind::Stack);
    mm.mmap_base = layout.mmap_base;
    let image_end = page_align_up(image.max_vaddr + bias).ok_or(SentryError::OutOfMemory)?;
    mm.brk_start = image_end + (random_u64() % (1 << 13)) * PAGE_SIZE;
    mm.brk = mm.brk_start;
    // The interpreter goes at the top of the mmap area, as Linux places ld.so.
    let (interp_base, start_rip) = match &interp {
        Some((interp, ii)) => {
            let span = ii.max_vaddr - ii.min_vaddr;
            let at = mm
                .find_free(span, mm.mmap_base)
                .ok_or(SentryError::OutOfMemory)?;
            let ibias = at.wrapping_sub(ii.min_vaddr);
            load_image_at(&mut mm, ii, interp, ibias)?;
            (ibias, ii.entry.wrapping_add(ibias))
        }
        None => (0, image.entry + bias),
    };
    let vdso_base = vdso
        .map_into(&mut mm)
        .map_err(|_| SentryError::OutOfMemory)?;

    let mut random = [0u8; 16];
    random[..8].copy_from_slice(&random_u64().to_le_bytes());
    random[8..].copy_from_slice(&random_u64().to_le_bytes());
    let phdr = image.phdr_vaddr.map(|p| p + bias).unwrap_or(0);
    let auxv = vec![
        (AT_HWCAP, host_auxv(libc::AT_HWCAP)),
        (AT_PAGESZ, PAGE_SIZE),
        (AT_CLKTCK, 100),
        (AT_PHDR, phdr),
        (AT_PHENT, image.phent as u64),
        (AT_PHNUM, image.phnum as u64),
        (AT_BASE, interp_base),
        (AT_FLAGS, 0),
        (AT_ENTRY, image.entry + bias),
        (AT_UID, creds.uid as u64),
        (AT_EUID, creds.euid as u64),
        (AT_GID, creds.gid as u64),
        (AT_EGID, creds.egid as u64),
        (AT_SECURE, 0),
        (AT_SYSINFO_EHDR, vdso_base),
        (AT_HWCAP2, host_auxv(libc::AT_HWCAP2)),
        (AT_MINSIGSTKSZ, host_auxv(AT_MINSIGSTKSZ).max(2048)),
    ];
    let stack = loader::build_initial_stack(
        stack_top,
        &StackArgs {
            argv: argv.to_vec(),
            envp: envp.to_vec(),
            execfn: execfn.to_vec(),
            platform: b"x86_64".to_vec(),
            random,
            auxv,
        },
    )
    .map_err(|e| SentryError::Stack(path.display().to_string(), e.to_string()))?;
    mm.write_force(stack.sp, &stack.bytes)
        .map_err(|_| SentryError::OutOfMemory)?;
    let regs = UserRegs {
        rip: start_rip,
        rsp: stack.sp,
        rflags: 0x202,
        ..Default::default()
    };
    Ok(Loaded { mm, regs, stack })
}

/// argv or envp as /proc shows them: each string NUL-terminated.
pub fn nul_joined(v: &[Vec<u8>]) -> Vec<u8> {
    v.iter()
        .flat_map(|s| s.iter().copied().chain(std::iter::once(0)))
        .collect()
}

/// The auxiliary vector as /proc/PID/auxv shows it.
pub fn auxv_bytes(auxv: &[(u64, u64)]) -> Vec<u8> {
    auxv.iter()
        .flat_map(|(k, v)| k.to_le_bytes().into_iter().chain(v.to_le_bytes()))
        .collect()
}

/// Loads `spec` into a fresh address space and runs it to completion.
pub fn run(platform: Arc<dyn Platform>, spec: ProcessSpec) -> Result<ExitStatus, SentryError> {
    prepare(platform, spec)?.run()
}

/// A sandbox whose first process is loaded but has not run an instruction yet (an OCI
/// container between `create` and `start`). Its kernel takes signals and more processes
/// ([`spawn_process`]) meanwhile.
pub struct Sandbox {
    kernel: Arc<Kernel>,
    group: Arc<ThreadGroup>,
    task: Task,
    ctx: Box<dyn platform::Context>,
    regs: UserRegs,
}

impl Sandbox {
    /// The sandbox's kernel.
    pub fn kernel(&self) -> &Arc<Kernel> {
        &self.kernel
    }

    /// Runs the first process (on this thread, the one that prepared it) to its end, then
    /// ends every other process, as Linux does when init dies. A signal sent before the
    /// start is delivered at the first instruction, so a SIGKILL ends it before it runs.
    pub fn run(self) -> Result<ExitStatus, SentryError> {
        let Sandbox {
            kernel,
            group,
            task,
            ctx,
            regs,
        } = self;
        let status = task.run(ctx, regs)?;
        while group.thread_count() > 0 {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let status = group.exiting().unwrap_or(status);
        for g in kernel.all_groups() {
            g.exit(ExitStatus::Signal(crate::signal::Signo::SIGKILL));
        }
        Ok(status)
    }
}

/// Installs the standard streams in a new fd table. A stream that is a host terminal shows
/// as a node of the devpts mounted at /dev/pts, when there is one (as runc's console is the
/// container's /dev/pts/0), so that ttyname(3) and /proc/PID/fd name it.
fn stdio_table(stdio: [Option<OwnedFd>; 3], fs: &FsContext, creds: &Creds) -> Arc<FdTable> {
    let fds = Arc::new(FdTable::default());
    let devpts = resolve_absolute(fs, creds, b"/dev/pts")
        .and_then(|dir| fs::devpts::Devpts::of_root(dir.inode()));
    for (i, fd) in stdio.into_iter().enumerate() {
        if let Some(fd) = fd {
            // The sandbox sees the stream with the access mode and flags it was opened with.
            // SAFETY: F_GETFL on a descriptor we own.
            let flags = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&fd), libc::F_GETFL) };
            let flags = flags.max(0) as u32;
            let console = devpts.as_ref().and_then(|devpts| {
                fs::devpts::host_terminal(std::os::fd::AsFd::as_fd(&fd))?;
                let console = devpts
                    .show_host_terminal(std::os::fd::AsFd::as_fd(&fd), creds.euid)
                    .ok()?;
                let path = format!("/dev/pts/{}", console.index());
                let node = resolve_absolute(fs, creds, path.as_bytes())?;
                Some((console, node))
            });
            let file = match console {
                Some((console, node)) => {
                    let inode = node.inode().clone();
                    OpenFile::special(Some(node), Some(inode), console.file(fd), flags)
                }
                None => {
                    let desc = Arc::new(fs::host::HostFile::new(fd));
                    OpenFile::special(None, None, desc, flags)
                }
            };
            fds.install(i as i32, file, false);
        }
    }
    fds
}

/// Where the absolute `path` leads in `fs`, for `creds`.
fn resolve_absolute(fs: &FsContext, creds: &Creds, path: &[u8]) -> Option<fs::vfs::Location> {
    let root = fs.root();
    let fs_creds = creds.fs_creds();
    let resolver = Resolver {
        ns: &fs.ns(),
        root: &root,
        creds: &fs_creds,
    };
    resolver.resolve(&root, path, ResolveFlags::follow()).ok()
}

/// A new process of `kernel` from `spec`, leading its own session and group, with parent
/// `ppid` (0: none, as the first process and processes started from outside). Its terminal,
/// if one of its streams is a terminal, becomes the session's controlling terminal.
fn new_process(
    kernel: &Arc<Kernel>,
    spec: ProcessSpec,
    ppid: i32,
    forward_tty_signals: bool,
) -> Result<(Task, Arc<ThreadGroup>, UserRegs), SentryError> {
    let platform = kernel.platform.clone();
    let fs = Arc::new(start_fs(&spec.mounts, &spec.cwd, &spec.creds));
    let execfn = spec.program.execfn.clone();
    let mut rlimits = host_rlimits();
    for &(resource, soft, hard) in &spec.rlimits {
        if let Some(slot) = rlimits.get_mut(resource) {
            *slot = (soft, hard);
        }
    }
    let loaded = load_program(
        platform.as_ref(),
        &kernel.vdso,
        &fs,
        &spec.creds,
        &spec.program,
        &spec.image,
        &spec.argv,
        &spec.envp,
        &execfn,
        rlimits[crate::rlimit::RLIMIT_STACK].0,
    )?;
    let (mut mm, regs, stack) = (loaded.mm, loaded.regs, loaded.stack);
    mm.exe_access = fs::vfs::write_access::deny_write(&*spec.program.inode).ok();
    mm.exe_file = Some(spec.program.location.clone());
    let fds = stdio_table(spec.stdio, &fs, &spec.creds);
    let exe = spec.program.exe.clone();
    let mm = Arc::new(crate::mm::Mm::new(mm));
    let pid = kernel.new_id();
    let info = Arc::new(crate::procfs::ProcessInfo {
        pid,
        ppid,
        fds: std::sync::Mutex::new(Arc::downgrade(&fds)),
        fs: fs.clone(),
        creds: std::sync::Mutex::new(spec.creds.clone()),
        seccomp: std::sync::OnceLock::new(),
        image: std::sync::Mutex::new(crate::procfs::ImageInfo {
            exe: exe.clone(),
            cmdline: nul_joined(&spec.argv),
            environ: nul_joined(&spec.envp),
            auxv: auxv_bytes(&stack.auxv),
            mm: Arc::downgrade(&mm),
            comm: crate::procfs::comm_of(&execfn),
        }),
        group: std::sync::OnceLock::new(),
        limits: std::sync::Mutex::new(rlimits),
        io: Default::default(),
        started: std::time::Instant::now(),
        kernel: Arc::downgrade(kernel),
        ns: std::sync::Mutex::new(crate::namespaces::Namespaces::initial(kernel.ipc.clone())),
        pid_nested: false,
        dumpable: std::sync::atomic::AtomicBool::new(true),
    });
    kernel.procfs.register(info.clone());
    let waiter = fs::waiter::Waiter::new();
    let signals = SignalState::new(0, waiter.clone());
    let group = ThreadGroup::new(pid, crate::caps::Uids::of(&spec.creds), Default::default());
    kernel.tasks.add(spec.creds.uid);
    group.add_thread(pid, signals.thread.clone());
    let seccomp: Arc<crate::seccomp::ThreadSeccomp> = Default::default();
    if spec.no_new_privs {
        seccomp.set_no_new_privs();
    }
    group.set_seccomp(pid, seccomp.clone());
    group.set_thread_caps(pid, spec.creds.caps);
    let _ = info.group.set(Arc::downgrade(&group));
    let _ = info.seccomp.set(seccomp.clone());
    kernel.add_process(group.clone(), ppid, pid, pid);
    // A terminal among the standard streams is the controlling terminal of the new
    // session, with the process's group in front, as a login shell's is.
    let terminal = (0..3).find_map(|fd| {
        let desc = fds.get(fd).ok()?.special_desc()?.clone();
        let term = desc.terminal()?;
        Some((term.tty_id(), term.window_size().ok(), desc.clone()))
    });
    if let Some((tty, size, desc)) = terminal {
        kernel.ttys.attach(tty, pid, pid, desc.clone());
        kernel.set_ctty(pid, Some(tty));
        if let Some(size) = size {
            kernel.ttys.resized(tty, size, size);
        }
        if forward_tty_signals
            && !crate::tty::forward_terminal_signals(Arc::downgrade(kernel), desc)
        {
            tracing::warn!("the terminal's signals (^C, ^\\, resizes) will act on runsc itself");
        }
    }
    let state = Arc::new(Mutex::new(TaskState {
        mm,
        fds,
        fs,
        creds: spec.creds,
        pid,
        tid: pid,
        ppid,
        exe,
        signals,
        clear_child_tid: 0,
        robust_list: (0, 0),
        rlimits,
        umask: 0o022,
        exit: None,
        logged_missing: Default::default(),
        platform: platform.clone(),
        process: info,
        kernel: kernel.clone(),
        group: group.clone(),
        thread_exit: false,
        vfork_done: None,
        restore_fpu: None,
        prctl: Default::default(),
        mempolicy: None,
        seccomp,
        waiter,
    }));
    Ok((Task { state }, group, regs))
}

/// Builds the sandbox and loads its first process (pid 1), without running it.
pub fn prepare(platform: Arc<dyn Platform>, spec: ProcessSpec) -> Result<Sandbox, SentryError> {
    let vdso = Vdso::new(platform.memory().clone(), platform.guest_tsc())?;
    crate::syscalls::snapshot_host_clock();
    let kernel = Kernel::new(platform.clone(), spec.procfs.clone(), vdso);
    crate::tty::connect_devpts(&kernel, &spec.mounts);
    let (task, group, regs) = new_process(&kernel, spec, 0, true)?;
    let fast = Arc::new(TaskSyscalls::new(task.state.clone()));
    let ctx = platform.new_context(fast)?;
    group.set_interrupter(group.pid, ctx.interrupter());
    Ok(Sandbox {
        kernel,
        group,
        task,
        ctx,
        regs,
    })
}

/// Starts another process in a running sandbox (`runsc exec`): its own session, no parent,
/// on its own host thread. Returns its pid and where its exit status arrives (the status of
/// a process that could not start is SIGKILL's); the process is reaped once it has ended.
pub fn spawn_process(
    kernel: &Arc<Kernel>,
    spec: ProcessSpec,
) -> Result<(i32, std::sync::mpsc::Receiver<ExitStatus>), SentryError> {
    let (task, group, regs) = new_process(kernel, spec, 0, false)?;
    let pid = group.pid;
    let (tx, rx) = std::sync::mpsc::channel();
    let kernel = kernel.clone();
    let started = std::thread::Builder::new()
        .name(format!("exec-{pid}"))
        .spawn(move || {
            let killed = ExitStatus::Signal(crate::signal::Signo::SIGKILL);
            let fast = Arc::new(TaskSyscalls::new(task.state.clone()));
            let status = match kernel.platform.new_context(fast) {
                Ok(ctx) => {
                    group.set_interrupter(pid, ctx.interrupter());
                    match task.run(ctx, regs) {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::warn!("exec {pid}: {e}");
                            group.exit(killed);
                            task.finish();
                            killed
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!("exec {pid}: no vCPU: {e}");
                    group.exit(killed);
                    task.finish();
                    killed
                }
            };
            while group.thread_count() > 0 {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let status = group.exiting().unwrap_or(status);
            kernel.release(pid);
            let _ = tx.send(status);
        });
    if started.is_err() {
        return Err(SentryError::OutOfMemory);
    }
    Ok((pid, rx))
}
