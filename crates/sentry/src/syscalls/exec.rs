//! execve and execveat: replacing the program a process runs.

use std::sync::Arc;

use fs::vfs::ResolveFlags;
use platform::UserRegs;

use super::path::{fd_location, fs_creds, read_path, resolve_at};
use crate::errno::{Errno, SysResult};
use crate::kernel::{auxv_bytes, load_program, nul_joined};
use crate::loader::{self, LoadError};
use crate::mm::Mm;
use crate::program::{self, Program, ScriptError};
use crate::task::TaskState;
use crate::SentryError;

/// Linux's limit on the argument count.
const MAX_ARG_STRINGS: usize = 0x7fff_ffff;
/// Largest program read (as the loader's limit for `runsc do`).
const MAX_PROGRAM_SIZE: u64 = 1 << 30;

/// Reads a NULL-terminated array of string pointers (argv or envp).
fn read_string_array(t: &TaskState, addr: u64) -> Result<Vec<Vec<u8>>, Errno> {
    let mut out = Vec::new();
    if addr == 0 {
        return Ok(out);
    }
    let mut total = 0usize;
    for i in 0.. {
        if i >= MAX_ARG_STRINGS {
            return Err(Errno::E2BIG);
        }
        let ptr = t.mm.read_u64(addr + 8 * i as u64)?;
        if ptr == 0 {
            break;
        }
        let s =
            t.mm.copy_in_cstring(ptr, loader::stack::MAX_ARG_STRLEN)
                .map_err(|e| {
                    if e == Errno::ENAMETOOLONG {
                        Errno::E2BIG
                    } else {
                        e
                    }
                })?;
        total += s.len() + 1;
        if total > loader::stack::MAX_ARG_BYTES {
            return Err(Errno::E2BIG);
        }
        out.push(s);
    }
    Ok(out)
}

/// Resolves and reads the program execve names (or the file `dirfd` refers to, for
/// execveat with AT_EMPTY_PATH and an empty path).
fn open_program(t: &TaskState, dirfd: u64, path: &[u8], flags: i32) -> Result<Program, Errno> {
    let loc = if path.is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
        fd_location(t, dirfd)?.0.ok_or(Errno::EBADF)?
    } else {
        let follow = if flags & libc::AT_SYMLINK_NOFOLLOW != 0 {
            ResolveFlags::nofollow()
        } else {
            ResolveFlags::follow()
        };
        resolve_at(t, dirfd, path, follow)?
    };
    program::read_at(
        &t.fs.ns(),
        &t.fs.root(),
        &loc,
        path,
        &fs_creds(t),
        MAX_PROGRAM_SIZE,
    )
}

fn load_error_errno(e: &SentryError) -> Errno {
    match e {
        SentryError::Load(LoadError::Unsupported { .. })
        | SentryError::Load(LoadError::Malformed { .. }) => Errno::ENOEXEC,
        SentryError::Load(l) => Errno(l.errno()),
        SentryError::Stack(..) => Errno::E2BIG,
        SentryError::OutOfMemory => Errno::ENOMEM,
        SentryError::Platform(_) => Errno::ENOMEM,
    }
}

fn do_execve(
    t: &mut TaskState,
    regs: &mut UserRegs,
    dirfd: u64,
    path: &[u8],
    argv_addr: u64,
    envp_addr: u64,
    flags: i32,
) -> SysResult {
    if flags & !(libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW) != 0 {
        return Err(Errno::EINVAL);
    }
    let argv = read_string_array(t, argv_addr)?;
    let envp = read_string_array(t, envp_addr)?;
    let program = open_program(t, dirfd, path, flags)?;
    let (mut program, argv) = program::follow_scripts(program, argv, |interp| {
        open_program(t, libc::AT_FDCWD as u64, interp, 0)
    })
    .map_err(|e| match e {
        ScriptError::NoInterpreter => Errno::ENOEXEC,
        ScriptError::TooDeep => Errno::ELOOP,
        ScriptError::Interpreter { error, .. } => error,
    })?;
    // A program open for writing can't run (ETXTBSY); while it runs, it can't be written.
    let exe_access = fs::vfs::write_access::deny_write(&*program.inode).map_err(Errno)?;
    let execfn = program.execfn.clone();
    let shown = std::path::PathBuf::from(String::from_utf8_lossy(&program.path).into_owned());
    let image = program
        .image(&shown)
        .map_err(|e| load_error_errno(&SentryError::Load(e)))?;
    let loaded = load_program(
        t.platform.as_ref(),
        &t.kernel.vdso,
        &t.fs,
        &t.creds,
        &program,
        &image,
        &argv,
        &envp,
        &execfn,
        t.rlimits[crate::rlimit::RLIMIT_STACK].0,
    )
    .map_err(|e| load_error_errno(&e))?;

    // Every other thread of the process ends first (the process is ending if that fails:
    // this thread will end with it when the call returns).
    if !t.group.end_other_threads(t.tid) {
        return Err(Errno::EINTR);
    }
    // The point of no return: the old image is gone from here on.
    let mut new_mm = loaded.mm;
    new_mm.exe_access = Some(exe_access);
    new_mm.exe_file = Some(program.location.clone());
    let mm = Arc::new(Mm::new(new_mm));
    // ru_maxrss is the process's, across execve.
    t.group
        .sched
        .note_rss(t.mm.lock().resident_pages() as u64 * 4);
    t.group.sched.exec();
    t.mm = mm.clone();
    if t.fds.shared_with_another_process() {
        // Linux's unshare_files: close-on-exec must not close the other process's files.
        let own = Arc::new(crate::fdtable::FdTable::copy_of(&t.fds));
        t.fds.remove_process();
        t.fds = own;
        t.process.set_fd_table(&t.fds);
    }
    t.fds.close_on_exec();
    // Handled signals go back to their default action, in a table of the process's own:
    // one shared with another process (CLONE_SIGHAND) is copied first.
    let handlers = t.group.handlers().copy();
    handlers.reset_for_exec();
    t.group.set_handlers(handlers);
    t.group.timers.exec();
    reset_thread_state(t);
    t.exe = program.exe.clone();
    t.process.set_image(crate::procfs::ImageInfo {
        exe: program.exe,
        cmdline: nul_joined(&argv),
        environ: nul_joined(&envp),
        auxv: auxv_bytes(&loaded.stack.auxv),
        mm: Arc::downgrade(&mm),
        comm: crate::procfs::comm_of(&execfn),
    });
    *regs = loaded.regs;
    crate::ptrace::on_exec(t);
    // A vfork parent may run again: the child no longer uses its memory.
    if let Some(v) = t.vfork_done.take() {
        v.complete();
    }
    Ok(0)
}

/// What the new program starts without, as Linux's begin_new_exec, setup_new_exec and
/// flush_thread leave it (the signal mask, pending signals, interval timers, the
/// parent-death signal of a non-set-id exec and descriptors without FD_CLOEXEC stay).
fn reset_thread_state(t: &mut TaskState) {
    t.clear_child_tid = 0;
    t.robust_list = (0, 0);
    // An alternate stack in the old image would be garbage in the new one.
    t.signals.altstack = crate::signal_frame::AltStack {
        flags: crate::signal_frame::AltStack::SS_DISABLE,
        ..Default::default()
    };
    t.signals.restart_block = None;
    // The name goes back to the program's (the image's comm), the process is dumpable
    // again (no set-id exec exists here); the capability sets change as for a program
    // without file capabilities (which clears SECBIT_KEEP_CAPS).
    t.prctl.name = Vec::new();
    t.process.set_dumpable(true);
    crate::caps::exec(&mut t.creds, t.seccomp.no_new_privs());
    t.process.set_creds(&t.creds);
    t.group.set_thread_caps(t.tid, t.creds.caps);
    // A fresh FPU: x87 control word 0x37f, MXCSR 0x1f80, every register zero.
    t.restore_fpu = Some(initial_fpu_state());
}

/// The XSAVE image of a freshly started thread: the x87 and SSE components given
/// explicitly (XSTATE_BV bits 0 and 1, so that MXCSR is loaded), every other one in its
/// initial state.
fn initial_fpu_state() -> Vec<u8> {
    const FCW: u16 = 0x037f;
    const MXCSR: u32 = 0x1f80;
    const XSTATE_BV_X87_SSE: u64 = 0b11;
    let mut image = vec![0u8; 4096];
    image[0..2].copy_from_slice(&FCW.to_le_bytes());
    image[24..28].copy_from_slice(&MXCSR.to_le_bytes());
    image[512..520].copy_from_slice(&XSTATE_BV_X87_SSE.to_le_bytes());
    image
}

pub fn execve(t: &mut TaskState, regs: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let path = read_path(t, a[0])?;
    do_execve(t, regs, libc::AT_FDCWD as u64, &path, a[1], a[2], 0)?;
    // The new program starts with every register as set by the loader (RAX 0).
    Ok(regs.rax)
}

pub fn execveat(t: &mut TaskState, regs: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let path = read_path(t, a[1])?;
    do_execve(t, regs, a[0], &path, a[2], a[3], a[4] as i32)?;
    Ok(regs.rax)
}
