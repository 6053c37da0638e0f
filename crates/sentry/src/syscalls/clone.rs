//! Creating and reaping tasks: clone, clone3, fork, vfork, wait4, waitid.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use platform::UserRegs;

use crate::errno::{Errno, SysResult};
use crate::fdtable::FdTable;
use crate::fs_context::FsContext;
use crate::job::JobEvent;
use crate::mm::Mm;
use crate::process::{ChildState, Completion, ThreadGroup, WaitEvents, WaitFor};
use crate::signal_frame::SigInfo;
use crate::task::{ExitStatus, Task, TaskState, TaskSyscalls};

const CLONE_VM: u64 = 0x100;
const CLONE_FS: u64 = 0x200;
const CLONE_FILES: u64 = 0x400;
const CLONE_SIGHAND: u64 = 0x800;
const CLONE_PIDFD: u64 = 0x1000;
/// waitid's idtype for a pidfd.
const P_PIDFD: u32 = 3;
const CLONE_PTRACE: u64 = 0x2000;
const CLONE_VFORK: u64 = 0x4000;
const CLONE_PARENT: u64 = 0x8000;
const CLONE_THREAD: u64 = 0x10000;
const CLONE_SYSVSEM: u64 = 0x40000;
const CLONE_SETTLS: u64 = 0x80000;
const CLONE_PARENT_SETTID: u64 = 0x100000;
const CLONE_CHILD_CLEARTID: u64 = 0x200000;
const CLONE_DETACHED: u64 = 0x400000;
const CLONE_UNTRACED: u64 = 0x800000;
const CLONE_CHILD_SETTID: u64 = 0x1000000;
const CLONE_IO: u64 = 0x8000_0000;

/// Flags we implement; namespaces and the rest are refused with EINVAL/EPERM-like errors.
const SUPPORTED: u64 = CLONE_VM
    | CLONE_FS
    | CLONE_FILES
    | CLONE_SIGHAND
    | CLONE_VFORK
    | CLONE_PARENT
    | CLONE_THREAD
    | CLONE_SYSVSEM
    | CLONE_SETTLS
    | CLONE_PARENT_SETTID
    | CLONE_CHILD_CLEARTID
    | CLONE_DETACHED
    | CLONE_UNTRACED
    | CLONE_CHILD_SETTID
    | CLONE_PIDFD
    | CLONE_IO
    | CLONE_PTRACE;

/// The arguments of clone and clone3, normalized.
struct CloneArgs {
    flags: u64,
    stack: u64,
    /// Where CLONE_PIDFD stores the child's pidfd.
    pidfd: u64,
    parent_tid: u64,
    child_tid: u64,
    tls: u64,
}

fn do_clone(t: &mut TaskState, regs: &mut UserRegs, args: CloneArgs) -> SysResult {
    let flags = args.flags & !0xff; // the low byte is the exit signal
    if flags & CLONE_THREAD == 0 || flags & CLONE_VFORK != 0 {
        // Only a new thread is made on the ring poller (see `thread_on_poller`), which must
        // not sleep: a vfork parent waits for its child, and a new process is the thread's
        // work. (The flags were read again since that check: they may have changed.)
        if fs::waiter::no_sleep() {
            return Err(Errno(fs::waiter::WOULD_SLEEP));
        }
    }
    use crate::namespaces as ns;
    let ns_flags = flags & ns::SUPPORTED;
    // Linux's copy_process: a new mount or user namespace can't share the fs_struct, and a
    // thread can't be in other user or pid namespaces than its process. (Namespaces are
    // per process here, so a thread can't be in another of any kind.)
    if flags & CLONE_FS != 0 && flags & (ns::CLONE_NEWNS | ns::CLONE_NEWUSER) != 0 {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_THREAD != 0 && ns_flags != 0 {
        return Err(Errno::EINVAL);
    }
    // A network namespace of the sandbox's own isn't made from inside it.
    if flags & ns::CLONE_NEWNET != 0 {
        return Err(Errno::EPERM);
    }
    if flags & !SUPPORTED & !ns::SUPPORTED & !0xff != 0 {
        return Err(Errno::EINVAL);
    }
    // A new user namespace is the child's (anyone may make one: Linux's copy_creds); the
    // other new namespaces are owned by the child's user namespace and need CAP_SYS_ADMIN
    // in it (copy_namespaces), which its creator has.
    let child_creds = if flags & ns::CLONE_NEWUSER != 0 {
        super::mount::creds_in_new_userns(t)?
    } else {
        t.creds.clone()
    };
    if ns_flags & !ns::CLONE_NEWUSER != 0
        && !crate::caps::ns_capable(&t.creds, &child_creds.user_ns, crate::caps::Cap::SysAdmin)
    {
        return Err(Errno::EPERM);
    }
    // A pidfd names a process here (Linux 6.9+ also gives threads one).
    if flags & CLONE_PIDFD != 0 && flags & (CLONE_THREAD | CLONE_DETACHED) != 0 {
        return Err(Errno::EINVAL);
    }
    // Linux's consistency rules.
    if flags & CLONE_THREAD != 0 && flags & CLONE_SIGHAND == 0 {
        return Err(Errno::EINVAL);
    }
    if flags & CLONE_SIGHAND != 0 && flags & CLONE_VM == 0 {
        return Err(Errno::EINVAL);
    }
    // A pid namespace whose init has ended takes no one new (Linux's alloc_pid).
    let joins_dead_ns = flags & (CLONE_THREAD | ns::CLONE_NEWPID) == 0
        && t.process.namespaces().pid_for_children.is_dead();
    if joins_dead_ns {
        return Err(Errno::ENOMEM);
    }

    let kernel = t.kernel.clone();
    // RLIMIT_NPROC counts every task, threads included, against the caller's real uid.
    let charge = kernel
        .tasks
        .charge(&t.creds, t.rlimits[crate::rlimit::RLIMIT_NPROC].0)?;
    let tid = kernel.new_id();
    let thread = flags & CLONE_THREAD != 0;
    let mm = if flags & CLONE_VM != 0 {
        t.mm.clone()
    } else {
        let space = kernel
            .platform
            .new_address_space()
            .map_err(|_| Errno::ENOMEM)?;
        let child = t.mm.lock().fork(space).map_err(|_| Errno::ENOMEM)?;
        let mut child = Mm::new(child);
        child.membarrier = t.mm.membarrier.fork();
        Arc::new(child)
    };
    let fds = if flags & CLONE_FILES != 0 {
        if !thread {
            t.fds.add_process();
        }
        t.fds.clone()
    } else {
        Arc::new(FdTable::copy_of(&t.fds))
    };
    let fs = if flags & CLONE_FS != 0 {
        t.fs.clone()
    } else if flags & ns::CLONE_NEWNS != 0 {
        let (new, map) = super::mount::copy_mnt_ns(&t.fs.ns(), &child_creds.user_ns);
        let (root, cwd) = (map.translate(&t.fs.root()), map.translate(&t.fs.cwd()));
        Arc::new(FsContext::new(new, root, cwd))
    } else {
        Arc::new(FsContext::new(t.fs.ns(), t.fs.root(), t.fs.cwd()))
    };
    let namespaces = t
        .process
        .namespaces()
        .with_new(ns_flags, &child_creds.user_ns, || {
            kernel.procfs.uts_names(&t.process.namespaces().uts)
        })
        .for_child();
    // The parent's pidfd for the child: after the child's copy of the table (it doesn't get
    // one) and before the child exists, so that a bad address leaves no child behind.
    if flags & CLONE_PIDFD != 0 {
        let fd = super::pidfd::new_pidfd(t, tid, false)?;
        if let Err(e) = t.mm.copy_out(args.pidfd, &fd.to_le_bytes()) {
            let _ = t.fds.remove(fd as u64);
            return Err(e);
        }
    }
    let waiter = fs::waiter::Waiter::new();
    // Linux drops the alternate stack of a clone that shares the address space (a thread
    // would run its handlers on its creator's stack), but not of a vfork child.
    let keep_altstack = flags & (CLONE_VM | CLONE_VFORK) != CLONE_VM;
    let signals = t.signals.for_child(waiter.clone(), keep_altstack);
    // Every new task keeps its creator's seccomp filters and no_new_privs.
    let seccomp = t.seccomp.copy();
    // A new thread or process runs where its creator may (Linux copies cpus_mask).
    let affinity = t.group.thread_affinity(t.tid).flatten();
    let io = crate::ioprio::for_child(
        t.group.thread_io(t.tid).flatten().as_ref(),
        flags & CLONE_IO != 0,
    );
    // CLONE_SYSVSEM makes the creator's SEM_UNDO list if it had none (Linux's
    // copy_semundo), for the child to share; a process child here gets one of its own.
    let sysvsem = flags & CLONE_SYSVSEM != 0;
    if sysvsem {
        t.group
            .sem_undo_list
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let (pid, group, process) = if thread {
        t.group.add_thread(tid, signals.thread.clone());
        t.group.set_seccomp(tid, seccomp.clone());
        t.group.set_thread_caps(tid, t.creds.caps);
        t.group.set_thread_affinity(tid, affinity);
        t.group.set_thread_io(tid, io);
        (t.pid, t.group.clone(), t.process.clone())
    } else {
        // CLONE_SIGHAND shares the handler table; otherwise the child gets a copy.
        let handlers = if flags & CLONE_SIGHAND != 0 {
            t.group.handlers()
        } else {
            t.group.handlers().copy()
        };
        let group = ThreadGroup::new(tid, crate::caps::Uids::of(&child_creds), handlers);
        group.add_thread(tid, signals.thread.clone());
        group.set_seccomp(tid, seccomp.clone());
        group.set_thread_caps(tid, child_creds.caps);
        group.set_thread_affinity(tid, affinity);
        group.set_thread_io(tid, io);
        group.sched.inherit(&t.group.sched);
        group
            .sem_undo_list
            .store(sysvsem, std::sync::atomic::Ordering::Relaxed);
        group.exit_signal.store(
            (args.flags & 0xff) as i32,
            std::sync::atomic::Ordering::Relaxed,
        );
        let ppid = if flags & CLONE_PARENT != 0 {
            kernel.ppid(t.pid)
        } else {
            t.pid
        };
        let (pgid, sid) = kernel.ids(t.pid).unwrap_or((t.pid, t.pid));
        kernel.add_process(group.clone(), ppid, pgid, sid);
        let mut image = t.process.image();
        image.mm = Arc::downgrade(&mm);
        let info = Arc::new(crate::procfs::ProcessInfo {
            pid: tid,
            ppid,
            fds: std::sync::Mutex::new(Arc::downgrade(&fds)),
            fs: fs.clone(),
            creds: Mutex::new(child_creds.clone()),
            seccomp: std::sync::OnceLock::new(),
            image: Mutex::new(image),
            group: std::sync::OnceLock::new(),
            limits: Mutex::new(t.rlimits),
            io: Default::default(),
            started: std::time::Instant::now(),
            kernel: Arc::downgrade(&kernel),
            pid_nested: !namespaces.pid.is_initial(),
            dumpable: std::sync::atomic::AtomicBool::new(t.process.dumpable()),
            ns: Mutex::new(namespaces),
        });
        let _ = info.group.set(Arc::downgrade(&group));
        let _ = info.seccomp.set(seccomp.clone());
        kernel.procfs.register(info.clone());
        (tid, group, info)
    };
    // Its ids in its pid namespace and those above (the process's, for a thread).
    let child_pid_ns = process.namespaces().pid;
    child_pid_ns.register(tid);
    if !thread && !child_pid_ns.is_initial() && child_pid_ns.view(tid) == 1 {
        group
            .unkillable
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let parent_view = crate::namespaces::pid_view(&t.process, tid);
    if flags & CLONE_PARENT_SETTID != 0 {
        t.mm.copy_out(args.parent_tid, &parent_view.to_le_bytes())?;
    }

    if flags & CLONE_CHILD_SETTID != 0 {
        let own = crate::namespaces::pid_view(&process, tid);
        mm.copy_out(args.child_tid, &own.to_le_bytes())?;
    }
    let vfork_done = (flags & CLONE_VFORK != 0).then(|| Arc::new(Completion::default()));

    let mut child_regs = *regs;
    child_regs.rax = 0;
    if args.stack != 0 {
        child_regs.rsp = args.stack;
    }
    if flags & CLONE_SETTLS != 0 {
        child_regs.fs_base = args.tls;
    }
    let child = TaskState {
        mm,
        fds,
        fs,
        creds: child_creds,
        pid,
        tid,
        ppid: if thread { t.ppid } else { t.pid },
        exe: t.exe.clone(),
        signals,
        clear_child_tid: if flags & CLONE_CHILD_CLEARTID != 0 {
            args.child_tid
        } else {
            0
        },
        robust_list: (0, 0),
        rlimits: t.rlimits,
        umask: t.umask,
        exit: None,
        logged_missing: Default::default(),
        platform: kernel.platform.clone(),
        process,
        kernel: kernel.clone(),
        group,
        thread_exit: false,
        vfork_done: vfork_done.clone(),
        restore_fpu: None,
        prctl: t.prctl.clone(),
        mempolicy: t.mempolicy,
        seccomp,
        waiter,
    };
    crate::ptrace::on_clone(t, args.flags, tid, &child.group, &child.signals.thread);
    spawn(child, child_regs)?;
    charge.commit();
    if let Some(done) = vfork_done {
        // The parent sleeps until the child execs or exits (its memory is ours).
        done.wait();
    }
    Ok(parent_view as u64)
}

/// Starts a task on its own host thread, with its own vCPU.
pub fn spawn(state: TaskState, regs: UserRegs) -> Result<(), Errno> {
    let tid = state.tid;
    let kernel = state.kernel.clone();
    let group = state.group.clone();
    let state = Arc::new(Mutex::new(state));
    let task_state = state.clone();
    let started = host_threads::run(format!("task-{tid}"), move || {
        let fast = Arc::new(TaskSyscalls::new(task_state.clone()));
        let task = Task { state: task_state };
        let ctx = match kernel.platform.new_context(fast) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("task {tid}: no vCPU: {e}");
                group.exit(ExitStatus::Signal(crate::signal::Signo::SIGKILL));
                task.finish();
                return;
            }
        };
        group.set_interrupter(tid, ctx.interrupter());
        if let Err(e) = task.run(ctx, regs) {
            tracing::warn!("task {tid}: {e}");
            group.exit(ExitStatus::Signal(crate::signal::Signo::SIGKILL));
            task.finish();
        }
    });
    match started {
        Ok(_) => Ok(()),
        Err(_) => {
            let st = state.lock().unwrap_or_else(|e| e.into_inner());
            st.group.remove_thread(tid);
            Err(Errno::EAGAIN)
        }
    }
}

/// Whether a clone or clone3 in `regs` makes a thread (CLONE_THREAD, no CLONE_VFORK): that
/// never waits, so the ring poller may serve it (one exit less per pthread_create).
pub fn thread_on_poller(t: &TaskState, regs: &UserRegs) -> bool {
    let flags = match regs.rax as u32 as i64 {
        libc::SYS_clone => regs.rdi,
        libc::SYS_clone3 => match t.mm.read_u64(regs.rdi) {
            Ok(f) => f,
            Err(_) => return false,
        },
        _ => return false,
    };
    flags & CLONE_THREAD != 0 && flags & CLONE_VFORK == 0
}

/// The host threads tasks run on. One whose task ended waits a while for the next task
/// instead of exiting: a new thread costs a host clone and a dozen set-up and tear-down
/// calls (signal stack, robust list, name; munmap and madvise at exit), a good part of a
/// pthread_create and join in the sandbox.
mod host_threads {
    use std::sync::{Arc, Condvar, Mutex, MutexGuard};
    use std::time::{Duration, Instant};

    type Job = Box<dyn FnOnce() + Send>;

    /// Idle threads kept at most, and how long each waits before it exits.
    const MAX_IDLE: usize = 16;
    const IDLE_TIME: Duration = Duration::from_secs(2);

    /// An idle thread: a job is handed over in `job`, with `cv` notified.
    #[derive(Default)]
    struct Idle {
        job: Mutex<Option<(String, Job)>>,
        cv: Condvar,
    }

    static IDLE: Mutex<Vec<Arc<Idle>>> = Mutex::new(Vec::new());

    fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
        m.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `job` on an idle host thread, or a new one named `name`.
    pub fn run(name: String, job: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        let job: Job = Box::new(job);
        if let Some(idle) = lock(&IDLE).pop() {
            *lock(&idle.job) = Some((name, job));
            idle.cv.notify_one();
            return Ok(());
        }
        std::thread::Builder::new()
            .name(name)
            .spawn(move || worker(job))
            .map(|_| ())
    }

    fn worker(mut job: Job) {
        loop {
            job();
            match wait_for_job() {
                Some((name, next)) => {
                    set_name(&name);
                    job = next;
                }
                None => return,
            }
        }
    }

    /// Waits in the idle list for a job; None when the time is up (or the list is full).
    fn wait_for_job() -> Option<(String, Job)> {
        let me = Arc::new(Idle::default());
        {
            let mut idle = lock(&IDLE);
            if idle.len() >= MAX_IDLE {
                return None;
            }
            idle.push(me.clone());
        }
        let deadline = Instant::now() + IDLE_TIME;
        let mut job = lock(&me.job);
        loop {
            if let Some(j) = job.take() {
                return Some(j);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                drop(job);
                let mut idle = lock(&IDLE);
                if let Some(i) = idle.iter().position(|i| Arc::ptr_eq(i, &me)) {
                    idle.remove(i);
                    return None;
                }
                // Taken off the list by `run`, which is handing a job over: wait for it.
                drop(idle);
                job = lock(&me.job);
                while job.is_none() {
                    job = me.cv.wait(job).unwrap_or_else(|e| e.into_inner());
                }
                continue;
            }
            job = me
                .cv
                .wait_timeout(job, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Names the host thread after its new task (as a new thread's name would be).
    fn set_name(name: &str) {
        let mut bytes = [0u8; 16];
        let n = name.len().min(15);
        bytes[..n].copy_from_slice(&name.as_bytes()[..n]);
        // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes, which
        // `bytes` is (zeroed past the name); it changes only this thread's name.
        unsafe {
            libc::prctl(libc::PR_SET_NAME, bytes.as_ptr());
        }
    }
}

pub fn clone(t: &mut TaskState, regs: &mut UserRegs, a: [u64; 6]) -> SysResult {
    // x86-64: clone(flags, stack, parent_tid, child_tid, tls). CLONE_PIDFD stores the pidfd
    // where CLONE_PARENT_SETTID would store the tid: not both.
    if a[0] & CLONE_PIDFD != 0 && a[0] & CLONE_PARENT_SETTID != 0 {
        return Err(Errno::EINVAL);
    }
    do_clone(
        t,
        regs,
        CloneArgs {
            flags: a[0],
            stack: a[1],
            pidfd: a[2],
            parent_tid: a[2],
            child_tid: a[3],
            tls: a[4],
        },
    )
}

pub fn clone3(t: &mut TaskState, regs: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let size = a[1];
    // CLONE_ARGS_SIZE_VER0 is 64 bytes; later versions add set_tid and cgroup.
    if !(64..=4096).contains(&size) {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; size as usize];
    t.mm.copy_in(a[0], &mut raw)?;
    let w = |i: usize| u64::from_le_bytes(raw[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    let (flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls) =
        (w(0), w(1), w(2), w(3), w(4), w(5), w(6), w(7));
    if size > 64 && (w(8) != 0 || w(9) != 0) {
        // set_tid needs CAP_SYS_ADMIN in a pid namespace.
        return Err(Errno::EPERM);
    }
    if raw.len() > 88 && raw[88..].iter().any(|&b| b != 0) {
        return Err(Errno::E2BIG);
    }
    if exit_signal > 64 || flags & 0xff != 0 {
        return Err(Errno::EINVAL);
    }
    if (stack == 0) != (stack_size == 0) {
        return Err(Errno::EINVAL);
    }
    do_clone(
        t,
        regs,
        CloneArgs {
            flags: flags | exit_signal,
            stack: if stack != 0 { stack + stack_size } else { 0 },
            pidfd,
            parent_tid,
            child_tid,
            tls,
        },
    )
}

pub fn fork(t: &mut TaskState, regs: &mut UserRegs, _: [u64; 6]) -> SysResult {
    do_clone(
        t,
        regs,
        CloneArgs {
            flags: libc::SIGCHLD as u64,
            stack: 0,
            pidfd: 0,
            parent_tid: 0,
            child_tid: 0,
            tls: 0,
        },
    )
}

pub fn vfork(t: &mut TaskState, regs: &mut UserRegs, _: [u64; 6]) -> SysResult {
    do_clone(
        t,
        regs,
        CloneArgs {
            flags: CLONE_VM | CLONE_VFORK | libc::SIGCHLD as u64,
            stack: 0,
            pidfd: 0,
            parent_tid: 0,
            child_tid: 0,
            tls: 0,
        },
    )
}

const WNOHANG: i32 = 1;
const WUNTRACED: i32 = 2;
const WEXITED: i32 = 4;
const WCONTINUED: i32 = 8;
const WNOWAIT: i32 = 0x0100_0000;
const WNOTHREAD: i32 = 0x2000_0000;
const WALL: i32 = 0x4000_0000;
const WCLONE: i32 = 0x8000_0000u32 as i32;

/// The wait status word: code << 8 for an exit, the signal for a kill, signal << 8 | 0x7f
/// for a stop, 0xffff for a continue. Linux sets the core bit (WCOREDUMP) only when it wrote
/// a core file, which needs a nonzero RLIMIT_CORE; the sentry writes none, so the bit is
/// never set, whatever the limit.
fn status_word(s: ChildState) -> i32 {
    match s {
        ChildState::Exited(ExitStatus::Code(c)) => (c as i32) << 8,
        ChildState::Exited(ExitStatus::Signal(sig)) => sig.0,
        ChildState::Job(JobEvent::Stopped(sig)) => (sig << 8) | 0x7f,
        ChildState::Job(JobEvent::Continued) => 0xffff,
        ChildState::Traced(code) => crate::ptrace::status_word(code),
    }
}

pub fn wait4(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (pid, status_addr, options, rusage) = (a[0] as i32, a[1], a[2] as i32, a[3]);
    if options & !(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE) != 0 {
        return Err(Errno::EINVAL);
    }
    // Ids of the caller's pid namespace; one it doesn't see is no child of it (ECHILD).
    let global = |p: i32| crate::namespaces::pid_global(&t.process, p).unwrap_or(i32::MAX);
    let which = match pid {
        -1 => WaitFor::Any,
        0 => WaitFor::Group(t.kernel.ids(t.pid).map(|(g, _)| g).unwrap_or(t.pid)),
        p if p < -1 => WaitFor::Group(global(-p)),
        p => WaitFor::Pid(global(p)),
    };
    let waiter = t.waiter.clone();
    let reaped = t
        .kernel
        .wait(
            t.pid,
            which,
            WaitEvents {
                exited: true,
                stopped: options & WUNTRACED != 0,
                continued: options & WCONTINUED != 0,
            },
            options & WNOHANG != 0,
            false,
            || waiter.interrupted(),
        )
        .map_err(Errno)?;
    let Some(r) = reaped else { return Ok(0) };
    if status_addr != 0 {
        t.mm.copy_out(status_addr, &status_word(r.state).to_le_bytes())?;
    }
    if rusage != 0 {
        let usage = super::resource::rusage_bytes(r.cpu, r.maxrss_kb);
        t.mm.copy_out(rusage, &usage)?;
    }
    Ok(crate::namespaces::pid_view(&t.process, r.pid) as u64)
}

pub fn waitid(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (idtype, id, infop, options) = (a[0] as u32, a[1] as i32, a[2], a[3] as i32);
    if options & !(WNOHANG | WUNTRACED | WEXITED | WCONTINUED | WNOWAIT | WNOTHREAD | WALL | WCLONE)
        != 0
        || options & (WEXITED | WUNTRACED | WCONTINUED) == 0
    {
        return Err(Errno::EINVAL);
    }
    let global = |p: i32| crate::namespaces::pid_global(&t.process, p).unwrap_or(i32::MAX);
    let which = match idtype {
        libc::P_ALL => WaitFor::Any,
        libc::P_PID if id > 0 => WaitFor::Pid(global(id)),
        libc::P_PGID if id > 0 => WaitFor::Group(global(id)),
        libc::P_PGID => WaitFor::Group(t.kernel.ids(t.pid).map(|(g, _)| g).unwrap_or(t.pid)),
        P_PIDFD => WaitFor::Pid(super::pidfd::pidfd_target(t, id as u32 as u64)?),
        _ => return Err(Errno::EINVAL),
    };
    let waiter = t.waiter.clone();
    let reaped = t
        .kernel
        .wait(
            t.pid,
            which,
            WaitEvents {
                exited: options & WEXITED != 0,
                stopped: options & WUNTRACED != 0,
                continued: options & WCONTINUED != 0,
            },
            options & WNOHANG != 0,
            options & WNOWAIT != 0,
            || waiter.interrupted(),
        )
        .map_err(Errno)?;
    let reaped = reaped.map(|mut r| {
        r.pid = crate::namespaces::pid_view(&t.process, r.pid);
        r.uid = t.creds.user_ns.uid_seen(r.uid);
        r
    });
    if infop != 0 {
        // siginfo_t: signo, errno, code, then pid, uid, status (no CPU times, as Linux's
        // waitid); all zeros when WNOHANG found nothing.
        let info = reaped.map_or([0u8; 128], |r| match r.state {
            ChildState::Exited(status) => {
                SigInfo::child_exit(libc::SIGCHLD, r.pid, r.uid, status, Duration::ZERO).bytes()
            }
            ChildState::Job(event) => SigInfo::child_job(r.pid, r.uid, event).bytes(),
            // CLD_TRAPPED with the whole stop code, as Linux's wait_task_stopped.
            ChildState::Traced(code) => SigInfo {
                signo: libc::SIGCHLD,
                code: crate::ptrace::CLD_TRAPPED,
                pid: r.pid,
                uid: r.uid,
                child: Some(crate::signal_frame::ChildExit {
                    status: code,
                    utime: 0,
                    stime: 0,
                }),
                ..Default::default()
            }
            .bytes(),
        });
        t.mm.copy_out(infop, &info)?;
    }
    Ok(0)
}
