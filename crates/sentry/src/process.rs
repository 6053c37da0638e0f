//! Processes and threads: the process table, thread groups, fork/clone plumbing, exit and
//! wait.
//!
//! A thread is a `Task` run by its own host thread on its own vCPU. A process is a thread
//! group; its threads share what clone asked them to share (address space, descriptors,
//! file system context) through `Arc`s. The table records parents, process groups and
//! sessions, and keeps zombies until their parent reaps them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use platform::{Interrupter, Platform};

use fs::waiter::WaitQueue;

use crate::caps::Uids;
use crate::job::{JobControl, JobEvent};
use crate::namespaces::PidNs;
use crate::procfs::ProcFs;
use crate::rlimit::nproc::TaskCounts;
use crate::signal::{bit, PendingSet, SigHandlers, ThreadSignals, NSIG};
use crate::signal_frame::SigInfo;
use crate::task::ExitStatus;
use crate::timers::{CpuClocks, ProcessTimers};

/// A live thread: its id, its signal state, and once its vCPU exists, how to interrupt it.
struct ThreadSlot {
    tid: i32,
    signals: Arc<ThreadSignals>,
    interrupter: Option<Arc<dyn Interrupter>>,
    /// The thread's seccomp state, for SECCOMP_FILTER_FLAG_TSYNC.
    seccomp: Option<Arc<crate::seccomp::ThreadSeccomp>>,
    /// The thread's capability sets as last committed, for another thread's capget.
    caps: Option<crate::caps::CapSets>,
    /// sched_setaffinity's CPU mask (bit N: CPU N), None for every CPU. Kept here, not in
    /// the thread's own state, because another thread may set or read it by tid.
    affinity: Option<Arc<[u64]>>,
    /// The thread's I/O context (`crate::ioprio`): None until ioprio_set gives it one.
    /// Here for the same reason as `affinity`.
    io: Option<Arc<crate::ioprio::IoContext>>,
}

impl ThreadSlot {
    /// Makes the thread notice a signal: out of user code, and out of a sleep in a system
    /// call unless its mask blocks the signal.
    fn kick(&self, sig: i32) {
        if let Some(i) = &self.interrupter {
            i.interrupt();
        }
        if self.signals.mask() & bit(sig) == 0 {
            self.signals.waiter.wake();
        }
    }
}

/// One process's threads and its pending group exit.
pub struct ThreadGroup {
    pub pid: i32,
    /// Set when the whole group must end (exit_group, a fatal signal, the sandbox ending).
    exiting: Mutex<Option<ExitStatus>>,
    /// Live threads, in creation order.
    threads: Mutex<Vec<ThreadSlot>>,
    /// Signals sent to the process, taken by whichever thread doesn't block them.
    pending: Mutex<PendingSet>,
    /// The signal handlers (shared with other processes cloned with CLONE_SIGHAND).
    handlers: Mutex<Arc<SigHandlers>>,
    /// Notified whenever a signal is sent to the process or one of its threads (for
    /// signalfd readiness).
    pub signal_queue: WaitQueue,
    /// prctl(PR_SET_PDEATHSIG): sent to this process when its parent exits (0: none).
    /// Linux keeps it per thread and sends it when the parent *thread* exits; here both are
    /// per process.
    pub parent_death_signal: std::sync::atomic::AtomicI32,
    /// prctl(PR_SET_CHILD_SUBREAPER): orphaned descendants are reparented here, not to init.
    pub child_subreaper: std::sync::atomic::AtomicBool,
    /// The CPU time of the process's threads.
    pub cpu: CpuClocks,
    /// Nice value, scheduling policy, personality and resource usage.
    pub sched: crate::sched::SchedState,
    /// Interval timers and POSIX timers.
    pub timers: ProcessTimers,
    /// The main thread's user ids, which decide who may signal the process (Linux checks
    /// the leader's credentials for kill).
    uids: Mutex<Uids>,
    /// Stopped or running (SIGSTOP and SIGCONT).
    pub job: JobControl,
    /// The signal the parent gets when this process ends (Linux's exit_signal): clone's
    /// low byte (SIGCHLD for fork), 0 for none.
    pub exit_signal: AtomicI32,
    /// The thread running execve while the others are made to end (Linux's de_thread), or 0.
    execing: AtomicI32,
    /// How many of its threads are traced: their tracer sees every signal, ignored ones
    /// too (Linux's sig_ignored), so none is discarded on arrival.
    pub traced: std::sync::atomic::AtomicUsize,
    /// It is the init of a pid namespace made in the sandbox (Linux's SIGNAL_UNKILLABLE):
    /// signals whose action is the default don't reach it, but SIGKILL and SIGSTOP from
    /// outside its namespace. The sandbox's own first process is not marked: `runsc do`
    /// runs the user's program as pid 1, and programs expect a default action to work.
    pub unkillable: std::sync::atomic::AtomicBool,
    /// Linux's sysvsem.undo_list exists: made by the first semop with SEM_UNDO or clone
    /// with CLONE_SYSVSEM (threads), shared by the threads, not given to a forked child;
    /// kcmp's KCMP_SYSVSEM compares it.
    pub sem_undo_list: std::sync::atomic::AtomicBool,
}

impl ThreadGroup {
    pub fn new(pid: i32, uids: Uids, handlers: Arc<SigHandlers>) -> Arc<ThreadGroup> {
        Arc::new(ThreadGroup {
            pid,
            exiting: Mutex::new(None),
            threads: Mutex::new(Vec::new()),
            pending: Mutex::new(PendingSet::default()),
            handlers: Mutex::new(handlers),
            signal_queue: WaitQueue::new(),
            parent_death_signal: std::sync::atomic::AtomicI32::new(0),
            child_subreaper: std::sync::atomic::AtomicBool::new(false),
            cpu: CpuClocks::default(),
            sched: Default::default(),
            timers: ProcessTimers::default(),
            uids: Mutex::new(uids),
            job: JobControl::default(),
            exit_signal: AtomicI32::new(0),
            execing: AtomicI32::new(0),
            traced: Default::default(),
            unkillable: Default::default(),
            sem_undo_list: Default::default(),
        })
    }

    /// The main thread's user ids.
    pub fn uids(&self) -> Uids {
        *lock(&self.uids)
    }

    /// Records the main thread's new user ids.
    pub fn set_uids(&self, uids: Uids) {
        *lock(&self.uids) = uids;
    }

    pub fn exiting(&self) -> Option<ExitStatus> {
        *lock(&self.exiting)
    }

    /// Ends the whole group with `status` (the first request wins) and stops every thread.
    pub fn exit(&self, status: ExitStatus) {
        {
            let mut e = lock(&self.exiting);
            if e.is_none() {
                *e = Some(status);
            }
        }
        // Stopped threads must run on to end.
        self.job.release();
        self.interrupt_all();
    }

    /// Makes every thread come back to the sentry: from guest code, or out of a sleep
    /// (job control: they stop at their next return to user mode).
    pub fn interrupt_all(&self) {
        for slot in lock(&self.threads).iter() {
            if let Some(i) = &slot.interrupter {
                i.interrupt();
            }
            slot.signals.waiter.interrupt();
        }
    }

    /// The live threads' ids, in creation order.
    pub fn tids(&self) -> Vec<i32> {
        lock(&self.threads).iter().map(|s| s.tid).collect()
    }

    /// Counts a new thread (at clone time, before it runs).
    pub fn add_thread(&self, tid: i32, signals: Arc<ThreadSignals>) {
        lock(&self.threads).push(ThreadSlot {
            tid,
            signals,
            interrupter: None,
            seccomp: None,
            caps: None,
            affinity: None,
            io: None,
        });
    }

    /// Sets a live thread's CPU mask (None: every CPU). False if there is no such thread.
    pub fn set_thread_affinity(&self, tid: i32, mask: Option<Arc<[u64]>>) -> bool {
        match lock(&self.threads).iter_mut().find(|s| s.tid == tid) {
            Some(slot) => {
                slot.affinity = mask;
                true
            }
            None => false,
        }
    }

    /// A live thread's CPU mask: None if there is no such thread, Some(None) for every CPU.
    pub fn thread_affinity(&self, tid: i32) -> Option<Option<Arc<[u64]>>> {
        lock(&self.threads)
            .iter()
            .find(|s| s.tid == tid)
            .map(|s| s.affinity.clone())
    }

    /// Gives a live thread an I/O context. False if there is no such thread.
    pub fn set_thread_io(&self, tid: i32, io: Option<Arc<crate::ioprio::IoContext>>) -> bool {
        match lock(&self.threads).iter_mut().find(|s| s.tid == tid) {
            Some(slot) => {
                slot.io = io;
                true
            }
            None => false,
        }
    }

    /// A live thread's I/O context: None if there is no such thread, Some(None) if it has
    /// none.
    pub fn thread_io(&self, tid: i32) -> Option<Option<Arc<crate::ioprio::IoContext>>> {
        lock(&self.threads)
            .iter()
            .find(|s| s.tid == tid)
            .map(|s| s.io.clone())
    }

    /// Records a thread's capability sets (at clone time and whenever they change).
    pub fn set_thread_caps(&self, tid: i32, caps: crate::caps::CapSets) {
        if let Some(slot) = lock(&self.threads).iter_mut().find(|s| s.tid == tid) {
            slot.caps = Some(caps);
        }
    }

    /// A live thread's capability sets, if recorded.
    pub fn thread_caps(&self, tid: i32) -> Option<crate::caps::CapSets> {
        lock(&self.threads)
            .iter()
            .find(|s| s.tid == tid)
            .and_then(|s| s.caps)
    }

    /// Records a thread's seccomp state (at clone time, with `add_thread`).
    pub fn set_seccomp(&self, tid: i32, seccomp: Arc<crate::seccomp::ThreadSeccomp>) {
        if let Some(slot) = lock(&self.threads).iter_mut().find(|s| s.tid == tid) {
            slot.seccomp = Some(seccomp);
        }
    }

    /// The live threads' seccomp states.
    pub fn seccomp_states(&self) -> Vec<(i32, Arc<crate::seccomp::ThreadSeccomp>)> {
        lock(&self.threads)
            .iter()
            .filter_map(|s| Some((s.tid, s.seccomp.clone()?)))
            .collect()
    }

    /// Records how to interrupt a thread once its vCPU exists. Called on the thread itself,
    /// which also starts counting its CPU time for the process.
    pub fn set_interrupter(&self, tid: i32, interrupter: Arc<dyn Interrupter>) {
        self.cpu.add_current_thread(tid);
        let mut threads = lock(&self.threads);
        if let Some(slot) = threads.iter_mut().find(|s| s.tid == tid) {
            // Asked under the thread list's lock: `exit` and `end_other_threads` set their
            // flag before `interrupt_all` takes that lock, so either they find this
            // interrupter or this finds their flag. A thread just starting (its vCPU made
            // after the kicks went out) would otherwise run on, a spinning one for ever,
            // and an execve in another thread would wait for it for ever.
            if self.must_end(tid) {
                interrupter.interrupt();
            }
            slot.interrupter = Some(interrupter);
        }
    }

    /// Forgets how to interrupt a thread whose vCPU is going away.
    pub fn clear_interrupter(&self, tid: i32) {
        if let Some(slot) = lock(&self.threads).iter_mut().find(|s| s.tid == tid) {
            slot.interrupter = None;
        }
    }

    /// Removes a thread; returns how many are left.
    pub fn remove_thread(&self, tid: i32) -> usize {
        self.cpu.remove_thread(tid);
        let mut t = lock(&self.threads);
        t.retain(|s| s.tid != tid);
        t.len()
    }

    /// The signal handler table.
    pub fn handlers(&self) -> Arc<SigHandlers> {
        lock(&self.handlers).clone()
    }

    /// Replaces the handler table (execve unsharing it).
    pub fn set_handlers(&self, handlers: Arc<SigHandlers>) {
        *lock(&self.handlers) = handlers;
    }

    /// Queues a process-directed signal (unless the process ignores it) and makes the
    /// threads that don't block it notice, so that one takes it. Those that lose the race
    /// restart what they were doing. Returns whether it was queued (false: ignored, or
    /// already pending), which POSIX timers need to know.
    pub fn send(&self, info: SigInfo) -> bool {
        let threads = lock(&self.threads);
        // Linux asks the main thread's mask (kill's target) whether it is ignored.
        let blocked = threads.first().map(|s| s.signals.mask()).unwrap_or(0);
        if self.traced.load(Ordering::Relaxed) == 0 && self.handlers().discards(info.signo, blocked)
        {
            return false;
        }
        let queued = lock(&self.pending).add(info);
        for slot in threads.iter() {
            slot.kick(info.signo);
        }
        drop(threads);
        self.signal_queue.notify(fs::waiter::POLLIN);
        queued
    }

    /// Queues a signal for thread `tid` of this process (kill to oneself, tgkill, SIGPIPE,
    /// SIGEV_THREAD_ID timers). `kick` false for the calling thread itself, which notices
    /// on its way out of the call. None (ESRCH-worthy) when there is no such thread; else
    /// whether the signal was queued (false: ignored, or already pending for the thread).
    pub fn send_thread(&self, tid: i32, info: SigInfo, kick: bool) -> Option<bool> {
        let threads = lock(&self.threads);
        let slot = threads.iter().find(|s| s.tid == tid)?;
        if self.traced.load(Ordering::Relaxed) == 0
            && self.handlers().discards(info.signo, slot.signals.mask())
        {
            return Some(false);
        }
        let queued = slot.signals.queue(info);
        if kick {
            slot.kick(info.signo);
        }
        drop(threads);
        self.signal_queue.notify(fs::waiter::POLLIN);
        Some(queued)
    }

    /// Thread `tid`'s mask and pending signals (a tracer's GETSIGMASK and SETSIGMASK).
    pub fn thread_signals(&self, tid: i32) -> Option<Arc<ThreadSignals>> {
        lock(&self.threads)
            .iter()
            .find(|s| s.tid == tid)
            .map(|s| s.signals.clone())
    }

    /// Interrupts thread `tid`'s vCPU (a call served on the ring poller raised a signal
    /// for it, which only its own thread delivers).
    pub fn interrupt_thread(&self, tid: i32) {
        if let Some(i) = lock(&self.threads)
            .iter()
            .find(|s| s.tid == tid)
            .and_then(|s| s.interrupter.as_ref())
        {
            i.interrupt();
        }
    }

    /// A thread blocked `newly_blocked`: process signals among them that are pending go to
    /// the other threads (Linux's retarget_shared_pending).
    pub fn retarget(&self, newly_blocked: u64) {
        let pending = lock(&self.pending).set & newly_blocked;
        if pending == 0 {
            return;
        }
        for slot in lock(&self.threads).iter() {
            let sig = (pending & !slot.signals.mask()).trailing_zeros() as i32 + 1;
            if sig <= NSIG as i32 {
                slot.kick(sig);
            }
        }
    }

    /// Forgets `sig` wherever it is pending in the process: its action became "ignore"
    /// (POSIX: pending instances are discarded, blocked or not).
    pub fn discard(&self, sig: i32) {
        lock(&self.pending).remove(sig);
        for slot in lock(&self.threads).iter() {
            slot.signals.discard(sig);
        }
    }

    /// Takes the lowest pending signal not in `blocked`.
    pub fn take_pending(&self, blocked: u64) -> Option<SigInfo> {
        lock(&self.pending).take(blocked)
    }

    /// Takes the next signal not in `blocked` for the thread whose signals are `thread`:
    /// its own first, then the process's (delivery and signalfd reads, Linux's
    /// dequeue_signal). A POSIX timer's signal learns its overrun count here and its timer
    /// is watched again; one of a deleted timer is dropped.
    pub fn dequeue(&self, thread: &ThreadSignals, blocked: u64) -> Option<SigInfo> {
        loop {
            let info = thread
                .take(blocked)
                .or_else(|| self.take_pending(blocked))?;
            if let Some(info) = self.timers.signal_dequeued(info) {
                return Some(info);
            }
        }
    }

    /// Whether a signal not in `blocked` is pending for the process.
    pub fn has_pending(&self, blocked: u64) -> bool {
        lock(&self.pending).set & !blocked != 0
    }

    /// The signals pending for the process.
    pub fn pending(&self) -> u64 {
        lock(&self.pending).set
    }

    pub fn thread_count(&self) -> usize {
        lock(&self.threads).len()
    }

    /// execve in a multi-threaded process (Linux's de_thread): every other thread ends (at
    /// its next return to user mode, leaving any call it sleeps in), and the caller waits
    /// until they are gone. False if the process is ending meanwhile.
    pub fn end_other_threads(&self, tid: i32) -> bool {
        use std::sync::atomic::Ordering;
        if self.thread_count() <= 1 {
            return true;
        }
        self.execing.store(tid, Ordering::SeqCst);
        self.interrupt_all();
        let start = Instant::now();
        let mut warned = false;
        while self.thread_count() > 1 && self.exiting().is_none() {
            std::thread::sleep(Duration::from_millis(1));
            if !warned && start.elapsed() > EXEC_WAIT_WARN {
                // Every thread ends within a sleep slice (50 ms) of the kick; one that
                // doesn't is a bug that would hang execve: say which, for the report of the
                // test that times out.
                warned = true;
                let left: Vec<String> = lock(&self.threads)
                    .iter()
                    .filter(|s| s.tid != tid)
                    .map(|s| match s.interrupter {
                        Some(_) => s.tid.to_string(),
                        None => format!("{} (no vCPU yet)", s.tid),
                    })
                    .collect();
                tracing::warn!(
                    "execve in thread {tid} of process {}: threads [{}] still running after {:?}",
                    self.pid,
                    left.join(", "),
                    EXEC_WAIT_WARN
                );
            }
        }
        self.execing.store(0, Ordering::SeqCst);
        self.exiting().is_none()
    }

    /// Whether thread `tid` must end because another thread is running execve.
    pub fn ended_by_exec(&self, tid: i32) -> bool {
        let execing = self.execing.load(std::sync::atomic::Ordering::SeqCst);
        execing != 0 && execing != tid
    }

    /// Whether thread `tid` must stop whatever it waits for and come back to end: the
    /// process is ending, or another thread is running execve (Linux's de_thread sends
    /// SIGKILL, which every interruptible sleep notices, whenever it starts).
    pub fn must_end(&self, tid: i32) -> bool {
        self.exiting().is_some() || self.ended_by_exec(tid)
    }

    /// Finds thread `tid` among the live processes' threads: its process.
    pub fn find_thread(kernel: &Kernel, tid: i32) -> Option<Arc<ThreadGroup>> {
        kernel
            .all_groups()
            .into_iter()
            .find(|g| lock(&g.threads).iter().any(|s| s.tid == tid))
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Entry {
    group: Arc<ThreadGroup>,
    ppid: i32,
    pgid: i32,
    sid: i32,
    /// Its controlling terminal (`crate::tty` id), inherited by fork, dropped by setsid.
    ctty: Option<u64>,
    /// Set when every thread has ended: a zombie waiting for its parent.
    zombie: Option<ExitStatus>,
    /// Its parent is gone and nobody inherits it (the init of its pid namespace ended): it
    /// is forgotten as soon as it ends, as the dying init reaps it in Linux.
    autoreap: bool,
}

/// A process as wait reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    pub pid: i32,
    pub state: ChildState,
    /// The child's real user id (waitid's si_uid).
    pub uid: u32,
    /// Its CPU time and its waited-for children's (wait4's rusage).
    pub cpu: Duration,
    /// Its largest resident set, or its waited-for children's, in KiB.
    pub maxrss_kb: u64,
}

/// A process's CPU time and largest resident set, its waited-for children's included
/// (Linux's RUSAGE_BOTH, which wait4 reports).
fn usage_both(g: &ThreadGroup) -> (Duration, u64) {
    let c = g.sched.children();
    (
        g.cpu.process() + c.cpu,
        g.sched.maxrss_kb().max(c.maxrss_kb),
    )
}

/// What a wait found a child in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildState {
    /// Ended (a zombie, reaped unless WNOWAIT).
    Exited(ExitStatus),
    /// Stopped or continued (WUNTRACED, WCONTINUED).
    Job(JobEvent),
    /// In a ptrace-stop, reported to its tracer: the stop's code (the signal, with a
    /// PTRACE_EVENT_* in bits 8-15).
    Traced(i32),
}

/// Which changes a wait is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitEvents {
    pub exited: bool,
    /// WUNTRACED / WSTOPPED.
    pub stopped: bool,
    pub continued: bool,
}

/// Which children a wait is for (wait4's pid argument, waitid's idtype/id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitFor {
    Any,
    Pid(i32),
    Group(i32),
}

/// Which processes a signal goes to (kill's pid argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessSet {
    All,
    Pid(i32),
    Group(i32),
}

/// A process a signal may be sent to, with what the permission check needs.
pub struct Recipient {
    pub group: Arc<ThreadGroup>,
    /// Its session (SIGCONT may be sent within a session without other permission).
    pub sid: i32,
    /// Exited, not yet reaped: a signal to it succeeds and does nothing.
    pub zombie: bool,
}

/// The sandbox's kernel-wide state.
pub struct Kernel {
    pub platform: Arc<dyn Platform>,
    pub procfs: Arc<ProcFs>,
    /// The vDSO every process maps.
    pub vdso: Arc<crate::vdso::Vdso>,
    table: Mutex<BTreeMap<i32, Entry>>,
    /// Signalled when a process becomes a zombie.
    changed: Condvar,
    /// Pids and tids come from one counter, as Linux's.
    next_id: AtomicI32,
    /// Tasks per real uid, for RLIMIT_NPROC.
    pub tasks: TaskCounts,
    /// Which sessions the terminals control.
    pub ttys: crate::tty::Ttys,
    /// When the sandbox started (sysinfo's uptime, times' epoch).
    pub booted: Instant,
    /// Told (POLLIN) whenever a process ends: pidfds poll on it.
    pub exits: fs::waiter::WaitQueue,
    /// The sandbox's IPC namespace (System V IPC, POSIX message queues).
    pub ipc: Arc<crate::ipc::IpcNs>,
    /// Tracer/tracee links (ptrace).
    pub ptrace: crate::ptrace::Registry,
}

/// How long execve waits for the other threads to end before it logs which are left.
const EXEC_WAIT_WARN: Duration = Duration::from_secs(5);

/// How long a blocked wait sleeps before checking whether its own group is ending.
const WAIT_SLICE: Duration = Duration::from_millis(50);

impl Kernel {
    pub fn new(
        platform: Arc<dyn Platform>,
        procfs: Arc<ProcFs>,
        vdso: Arc<crate::vdso::Vdso>,
    ) -> Arc<Kernel> {
        let procfs_handle = procfs.clone();
        let kernel = Arc::new(Kernel {
            platform,
            procfs,
            vdso,
            table: Mutex::new(BTreeMap::new()),
            changed: Condvar::new(),
            next_id: AtomicI32::new(1),
            tasks: TaskCounts::default(),
            ttys: Default::default(),
            booted: Instant::now(),
            exits: fs::waiter::WaitQueue::new(),
            ipc: crate::ipc::IpcNs::new(),
            ptrace: Default::default(),
        });
        procfs_handle.set_kernel(&kernel);
        kernel
    }

    /// The last pid or tid given out (/proc/loadavg, /proc/stat's processes).
    pub fn last_id(&self) -> i32 {
        self.next_id.load(Ordering::Relaxed) - 1
    }

    /// Removes a reaped process from the table (its /proc entry goes separately, outside
    /// the table lock).
    fn forget(&self, table: &mut BTreeMap<i32, Entry>, pid: i32) {
        if let Some(e) = table.remove(&pid) {
            // The main thread counts for RLIMIT_NPROC until it is reaped.
            self.tasks.release(e.group.uids().uid);
        }
    }

    /// A child stopped or continued: its parent's waits look again, and the parent gets
    /// SIGCHLD (CLD_STOPPED or CLD_CONTINUED) unless its SIGCHLD action has SA_NOCLDSTOP.
    pub fn job_changed(&self, child: &ThreadGroup, event: JobEvent) {
        self.changed.notify_all();
        let Some(parent) = self.group(self.ppid(child.pid)) else {
            return;
        };
        const SA_NOCLDSTOP: u64 = 1;
        if parent.handlers().get(libc::SIGCHLD).flags & SA_NOCLDSTOP != 0 {
            return;
        }
        self.notify(
            &parent,
            SigInfo::child_job(child.pid, child.uids().uid, event),
        );
    }

    /// A tracee entered a ptrace-stop with `code`: its tracer's waits look again, and the
    /// tracer gets SIGCHLD (CLD_TRAPPED) unless its SIGCHLD action has SA_NOCLDSTOP.
    pub fn ptrace_stopped(&self, tracer: i32, tid: i32, uid: u32, code: i32) {
        {
            // Taking the table lock orders this with a wait about to sleep.
            let _t = lock(&self.table);
            self.changed.notify_all();
        }
        let Some(g) = self.group(tracer) else {
            return;
        };
        const SA_NOCLDSTOP: u64 = 1;
        if g.handlers().get(libc::SIGCHLD).flags & SA_NOCLDSTOP != 0 {
            return;
        }
        self.notify(
            &g,
            SigInfo {
                signo: libc::SIGCHLD,
                code: crate::ptrace::CLD_TRAPPED,
                pid: tid,
                uid,
                child: Some(crate::signal_frame::ChildExit {
                    status: code & 0x7f,
                    utime: 0,
                    stime: 0,
                }),
                ..Default::default()
            },
        );
    }

    /// A fresh process or thread id.
    pub fn new_id(&self) -> i32 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Records a new process. It inherits the controlling terminal of `ppid` when it joins
    /// that process's session (fork), as Linux copies signal->tty.
    pub fn add_process(&self, group: Arc<ThreadGroup>, ppid: i32, pgid: i32, sid: i32) {
        let mut t = lock(&self.table);
        let ctty = t.get(&ppid).filter(|p| p.sid == sid).and_then(|p| p.ctty);
        t.insert(
            group.pid,
            Entry {
                group,
                ppid,
                pgid,
                sid,
                ctty,
                zombie: None,
                autoreap: false,
            },
        );
    }

    /// The controlling terminal of live process `pid`.
    pub fn ctty(&self, pid: i32) -> Option<u64> {
        lock(&self.table)
            .get(&pid)
            .filter(|e| e.zombie.is_none())
            .and_then(|e| e.ctty)
    }

    /// Sets or drops the controlling terminal of `pid` alone.
    pub fn set_ctty(&self, pid: i32, tty: Option<u64>) {
        if let Some(e) = lock(&self.table).get_mut(&pid) {
            e.ctty = tty;
        }
    }

    /// Drops terminal `tty` as the controlling terminal of every process of session `sid`
    /// (Linux's session_clear_tty).
    pub fn clear_session_ctty(&self, sid: i32, tty: u64) {
        for e in lock(&self.table).values_mut() {
            if e.sid == sid && e.ctty == Some(tty) {
                e.ctty = None;
            }
        }
    }

    /// The session of process group `pgid`, None if it has no live member.
    pub fn pgrp_session(&self, pgid: i32) -> Option<i32> {
        lock(&self.table)
            .values()
            .find(|e| e.pgid == pgid && e.zombie.is_none())
            .map(|e| e.sid)
    }

    /// Whether process group `pgid` is orphaned: no live member has a live parent in another
    /// group of the same session (POSIX; Linux's will_become_orphaned_pgrp). Stop signals
    /// from the terminal aren't for such a group, which no shell could continue.
    pub fn orphaned_pgrp(&self, pgid: i32) -> bool {
        let t = lock(&self.table);
        !t.values()
            .filter(|e| e.pgid == pgid && e.zombie.is_none())
            .any(|e| {
                t.get(&e.ppid)
                    .is_some_and(|p| p.zombie.is_none() && p.pgid != pgid && p.sid == e.sid)
            })
    }

    /// The parent of `pid` (it changes when the parent dies).
    pub fn ppid(&self, pid: i32) -> i32 {
        lock(&self.table).get(&pid).map(|e| e.ppid).unwrap_or(0)
    }

    /// (pgid, sid) of `pid`, if it exists.
    pub fn ids(&self, pid: i32) -> Option<(i32, i32)> {
        lock(&self.table)
            .get(&pid)
            .filter(|e| e.zombie.is_none())
            .map(|e| (e.pgid, e.sid))
    }

    /// setpgid: moves `pid` (the caller or one of its children, in the caller's session) to
    /// group `pgid` (0: its own pid).
    pub fn setpgid(&self, caller: i32, pid: i32, pgid: i32) -> Result<(), i32> {
        let mut t = lock(&self.table);
        let pid = if pid == 0 { caller } else { pid };
        if pgid < 0 {
            return Err(libc::EINVAL);
        }
        let pgid = if pgid == 0 { pid } else { pgid };
        let caller_sid = t.get(&caller).map(|e| e.sid).ok_or(libc::ESRCH)?;
        let target = t.get(&pid).ok_or(libc::ESRCH)?;
        if pid != caller && target.ppid != caller {
            return Err(libc::ESRCH);
        }
        if target.sid != caller_sid {
            return Err(libc::EPERM);
        }
        if target.sid == pid {
            // A session leader can't change group.
            return Err(libc::EPERM);
        }
        if pgid != pid
            && !t
                .values()
                .any(|e| e.pgid == pgid && e.sid == caller_sid && e.zombie.is_none())
        {
            return Err(libc::EPERM);
        }
        if let Some(e) = t.get_mut(&pid) {
            e.pgid = pgid;
        }
        Ok(())
    }

    /// setsid: the caller leads a new session and group, unless it already leads a group.
    pub fn setsid(&self, caller: i32) -> Result<i32, i32> {
        let mut t = lock(&self.table);
        if t.values().any(|e| e.pgid == caller && e.zombie.is_none()) {
            return Err(libc::EPERM);
        }
        let e = t.get_mut(&caller).ok_or(libc::ESRCH)?;
        e.pgid = caller;
        e.sid = caller;
        e.ctty = None;
        Ok(caller)
    }

    /// The pid namespace process `pid` is in (None once it is reaped).
    pub fn pid_ns(&self, pid: i32) -> Option<Arc<PidNs>> {
        self.procfs.process(pid).map(|p| p.namespaces().pid.clone())
    }

    /// The id process `observer`'s pid namespace gives task `global`: 0 if it can't see it.
    fn pid_seen_by(&self, observer: i32, global: i32) -> i32 {
        self.pid_ns(observer).map_or(global, |ns| ns.view(global))
    }

    /// Sends `to` a signal the kernel raises about a process (SIGCHLD, the parent-death
    /// signal): `info.pid` holds that process's kernel id, and `to` gets it as its own pid
    /// namespace sees it (Linux's do_notify_parent: task_pid_nr_ns of the receiver's).
    fn notify(&self, to: &ThreadGroup, mut info: SigInfo) {
        info.pid = self.pid_seen_by(to.pid, info.pid);
        to.send(info);
    }

    /// The end of a pid namespace's init (Linux's zap_pid_ns_processes): nothing may join
    /// the namespace any more, every other process in it or below it is killed, and the
    /// init's own end waits until they have all ended, so that its parent hears of it last.
    fn zap_pid_namespace(&self, init: i32, ns: &Arc<PidNs>) {
        ns.set_dead();
        let kill = SigInfo {
            signo: libc::SIGKILL,
            code: crate::signal_frame::SI_KERNEL,
            ..Default::default()
        };
        loop {
            let victims: Vec<Arc<ThreadGroup>> = self
                .procfs
                .processes()
                .into_iter()
                .filter(|p| p.pid != init && p.namespaces().pid.is_within(ns))
                .filter_map(|p| self.group(p.pid))
                .collect();
            if victims.is_empty() {
                return;
            }
            // Sent again each round: one forked before the namespace died needs it too.
            for g in victims {
                g.send(kill);
                g.job.release();
            }
            let t = lock(&self.table);
            let _ = self.changed.wait_timeout(t, WAIT_SLICE);
        }
    }

    /// Where the orphans of `pid` go (Linux's find_new_reaper): the nearest living ancestor
    /// that is a subreaper, within `pid`'s pid namespace, else that namespace's init. None
    /// when the namespace's init is the one ending (or has ended): nobody inherits them.
    fn new_reaper(table: &BTreeMap<i32, Entry>, pid: i32, ns: Option<&Arc<PidNs>>) -> Option<i32> {
        let ns_init = match ns {
            Some(ns) if ns.is_dead() => return None,
            Some(ns) => ns.init()?,
            None => 1,
        };
        if pid == ns_init {
            return None;
        }
        let mut ancestor = table.get(&pid).map(|e| e.ppid).unwrap_or(0);
        let mut hops = 0;
        while ancestor > 1 && ancestor != ns_init && hops < table.len() {
            match table.get(&ancestor) {
                Some(e)
                    if e.zombie.is_none() && e.group.child_subreaper.load(Ordering::Relaxed) =>
                {
                    return Some(ancestor);
                }
                Some(e) => ancestor = e.ppid,
                None => break,
            }
            hops += 1;
        }
        Some(ns_init)
    }

    /// Marks `pid` a zombie with `status`, signals its parent (SIGCHLD, or the exit signal
    /// clone asked for), gives its children to their new reaper, and wakes waiters. A pid
    /// namespace's init first ends every other process of its namespace.
    pub fn process_exited(&self, pid: i32, status: ExitStatus) {
        let ns = self.pid_ns(pid);
        let is_ns_init = self
            .group(pid)
            .is_some_and(|g| g.unkillable.load(Ordering::Relaxed));
        if let Some(ns) = ns.as_ref().filter(|_| is_ns_init) {
            self.zap_pid_namespace(pid, ns);
        }
        let mut t = lock(&self.table);
        let mut parent_signal = None;
        let mut hangup = None;
        let mut autoreap = false;
        if let Some(e) = t.get_mut(&pid) {
            e.zombie = Some(status);
            autoreap = e.autoreap;
            if e.sid == pid {
                // A session leader's end releases its terminal, and the foreground group
                // hears of it (SIGHUP), as Linux's disassociate_ctty at exit.
                hangup = e.ctty.take();
            }
            let sig = e.group.exit_signal.load(Ordering::Relaxed);
            // Legacy clone takes any low byte; one that is no signal is not sent.
            if (1..=NSIG as i32).contains(&sig) {
                let info = SigInfo::child_exit(
                    sig,
                    pid,
                    e.group.uids().uid,
                    status,
                    e.group.cpu.process(),
                );
                let ppid = e.ppid;
                parent_signal = t
                    .get(&ppid)
                    .filter(|p| p.zombie.is_none())
                    .map(|p| (p.group.clone(), info));
            }
        }
        let reaper = Self::new_reaper(&t, pid, ns.as_ref());
        let hangup = hangup.and_then(|tty| {
            for other in t.values_mut() {
                if other.sid == pid && other.ctty == Some(tty) {
                    other.ctty = None;
                }
            }
            self.ttys.detach(tty).map(|j| j.foreground)
        });
        let mut death_signals = Vec::new();
        // Zombies among the orphans: the new parent hears of them as if they ended now.
        let mut orphan_exits = Vec::new();
        // Zombies nobody inherits: forgotten below.
        let mut unreaped = Vec::new();
        for (&child, e) in t.iter_mut() {
            if e.ppid == pid {
                e.ppid = reaper.unwrap_or(0);
                e.autoreap = reaper.is_none();
                // Linux's reparent_leader: a custom exit signal is not for the new parent.
                e.group.exit_signal.store(libc::SIGCHLD, Ordering::Relaxed);
                let sig = e.group.parent_death_signal.load(Ordering::Relaxed);
                match e.zombie {
                    None if sig != 0 => death_signals.push((e.group.clone(), sig)),
                    None => {}
                    Some(_) if reaper.is_none() => unreaped.push(child),
                    Some(status) => orphan_exits.push(SigInfo::child_exit(
                        libc::SIGCHLD,
                        child,
                        e.group.uids().uid,
                        status,
                        e.group.cpu.process(),
                    )),
                }
            }
        }
        let reaper_group = reaper
            .and_then(|r| t.get(&r))
            .filter(|e| e.zombie.is_none())
            .map(|e| e.group.clone());
        // A parent that ignores SIGCHLD, or set SA_NOCLDWAIT, leaves no zombies: the child
        // is reaped at once (its wait then ends with ECHILD when no child is left).
        let parent_discards = t.get(&pid).and_then(|e| t.get(&e.ppid)).is_some_and(|p| {
            const SA_NOCLDWAIT: u64 = 2;
            let action = p.group.handlers().get(libc::SIGCHLD);
            action.handler == libc::SIG_IGN as u64 || action.flags & SA_NOCLDWAIT != 0
        });
        if parent_discards || autoreap {
            unreaped.push(pid);
        }
        for &gone in &unreaped {
            self.forget(&mut t, gone);
        }
        drop(t);
        if let Some((parent, info)) = parent_signal.filter(|_| !autoreap) {
            self.notify(&parent, info);
        }
        if let Some(reaper) = reaper_group {
            for info in orphan_exits {
                self.notify(&reaper, info);
            }
        }
        for gone in unreaped {
            self.procfs.unregister(gone);
        }
        if let Some(pgid) = hangup {
            for g in self.group_members(pgid) {
                g.send(SigInfo {
                    signo: libc::SIGHUP,
                    code: crate::signal_frame::SI_KERNEL,
                    ..Default::default()
                });
            }
        }
        for (group, sig) in death_signals {
            let info = SigInfo {
                signo: sig,
                code: 0, // SI_USER, from the parent
                pid,
                ..Default::default()
            };
            self.notify(&group, info);
        }
        // Its tracees go free (or die, with PTRACE_O_EXITKILL).
        self.ptrace.tracer_exited(pid);
        self.changed.notify_all();
        self.exits
            .notify(fs::waiter::POLLIN | fs::waiter::POLLRDNORM);
    }

    /// Whether process `pid` is in the table and alive (not a zombie): None when it is gone.
    pub fn alive(&self, pid: i32) -> Option<bool> {
        lock(&self.table).get(&pid).map(|e| e.zombie.is_none())
    }

    /// Forgets process `pid` if it has ended and nobody will wait for it (a process
    /// started from outside the sandbox, whose status went back to the host).
    pub fn release(&self, pid: i32) {
        let mut t = lock(&self.table);
        if t.get(&pid).is_some_and(|e| e.zombie.is_some()) {
            self.forget(&mut t, pid);
            drop(t);
            self.procfs.unregister(pid);
        }
    }

    /// Every live process: (pid, parent pid), in pid order.
    pub fn processes(&self) -> Vec<(i32, i32)> {
        lock(&self.table)
            .iter()
            .filter(|(_, e)| e.zombie.is_none())
            .map(|(&pid, e)| (pid, e.ppid))
            .collect()
    }

    /// Every live process's group (to end the sandbox).
    pub fn all_groups(&self) -> Vec<Arc<ThreadGroup>> {
        lock(&self.table)
            .values()
            .filter(|e| e.zombie.is_none())
            .map(|e| e.group.clone())
            .collect()
    }

    /// The group of a live process.
    pub fn group(&self, pid: i32) -> Option<Arc<ThreadGroup>> {
        lock(&self.table)
            .get(&pid)
            .filter(|e| e.zombie.is_none())
            .map(|e| e.group.clone())
    }

    /// The processes `which` names that a signal may be sent to, in pid order. Zombies are
    /// included: Linux lets a signal be sent to one (it does nothing) until it is reaped.
    pub fn recipients(&self, which: ProcessSet) -> Vec<Recipient> {
        lock(&self.table)
            .iter()
            .filter(|(&pid, e)| match which {
                ProcessSet::All => true,
                ProcessSet::Pid(p) => p == pid,
                ProcessSet::Group(g) => e.pgid == g,
            })
            .map(|(_, e)| Recipient {
                group: e.group.clone(),
                sid: e.sid,
                zombie: e.zombie.is_some(),
            })
            .collect()
    }

    /// Every live process: pid, process group and its thread group.
    pub fn live_processes(&self) -> Vec<(i32, i32, Arc<ThreadGroup>)> {
        lock(&self.table)
            .iter()
            .filter(|(_, e)| e.zombie.is_none())
            .map(|(&pid, e)| (pid, e.pgid, e.group.clone()))
            .collect()
    }

    /// The live process that has a thread `tid`.
    pub fn thread_owner(&self, tid: i32) -> Option<Recipient> {
        lock(&self.table)
            .values()
            .filter(|e| e.zombie.is_none())
            .find(|e| e.group.tids().contains(&tid))
            .map(|e| Recipient {
                group: e.group.clone(),
                sid: e.sid,
                zombie: false,
            })
    }

    /// Live processes in process group `pgid`.
    pub fn group_members(&self, pgid: i32) -> Vec<Arc<ThreadGroup>> {
        lock(&self.table)
            .values()
            .filter(|e| e.pgid == pgid && e.zombie.is_none())
            .map(|e| e.group.clone())
            .collect()
    }

    /// wait4/waitid: a zombie child of `parent` matching `which`, reaped unless `keep`
    /// (WNOWAIT). Blocks unless `nohang` (then Ok(None) when children exist but none is
    /// done). ECHILD when there is no matching child. Gives up with ERESTARTSYS when
    /// `interrupted` says so (a signal, or the waiter's group is ending).
    #[allow(clippy::too_many_arguments)]
    pub fn wait(
        &self,
        parent: i32,
        which: WaitFor,
        events: WaitEvents,
        nohang: bool,
        keep: bool,
        interrupted: impl Fn() -> bool,
    ) -> Result<Option<Reaped>, i32> {
        let mut t = lock(&self.table);
        loop {
            let matches = |pid: i32, e: &Entry| {
                e.ppid == parent
                    && match which {
                        WaitFor::Any => true,
                        WaitFor::Pid(p) => p == pid,
                        WaitFor::Group(g) => e.pgid == g,
                    }
            };
            let mut any = false;
            let mut done = None;
            for (&pid, e) in t.iter() {
                if matches(pid, e) {
                    any = true;
                    if let Some(status) = e.zombie.filter(|_| events.exited) {
                        let (cpu, maxrss_kb) = usage_both(&e.group);
                        done = Some(Reaped {
                            pid,
                            state: ChildState::Exited(status),
                            uid: e.group.uids().uid,
                            cpu,
                            maxrss_kb,
                        });
                        break;
                    }
                    let job = e
                        .zombie
                        .is_none()
                        .then(|| e.group.job.collect(events.stopped, events.continued, keep));
                    if let Some(event) = job.flatten() {
                        let (cpu, maxrss_kb) = usage_both(&e.group);
                        return Ok(Some(Reaped {
                            pid,
                            state: ChildState::Job(event),
                            uid: e.group.uids().uid,
                            cpu,
                            maxrss_kb,
                        }));
                    }
                }
            }
            // Tracees: their ptrace-stops (whether or not WUNTRACED was asked, as Linux)
            // and, for a tracer that isn't the parent, their end.
            for tr in self.ptrace.tracees_of(parent) {
                let pgid = t.get(&tr.tgid).map(|e| e.pgid);
                let wanted = match which {
                    WaitFor::Any => true,
                    WaitFor::Pid(p) => p == tr.tid,
                    WaitFor::Group(g) => pgid == Some(g),
                };
                if !wanted || done.is_some() {
                    continue;
                }
                any = true;
                let mut i = tr.lock();
                let (cpu, maxrss_kb) = usage_both(&tr.group);
                let uid = tr.group.uids().uid;
                if let Some(code) = i.report {
                    if !keep {
                        i.report = None;
                    }
                    return Ok(Some(Reaped {
                        pid: tr.tid,
                        state: ChildState::Traced(code),
                        uid,
                        cpu,
                        maxrss_kb,
                    }));
                }
                if let Some(status) = i.exited.filter(|_| events.exited) {
                    drop(i);
                    if !keep {
                        self.ptrace.unlink(tr.tid);
                    }
                    return Ok(Some(Reaped {
                        pid: tr.tid,
                        state: ChildState::Exited(status),
                        uid,
                        cpu,
                        maxrss_kb,
                    }));
                }
            }
            if let Some(r) = done {
                if !keep {
                    if let (Some(child), Some(p)) = (t.get(&r.pid), t.get(&parent)) {
                        p.group
                            .sched
                            .add_child(&child.group.sched, child.group.cpu.process());
                    }
                    self.forget(&mut t, r.pid);
                    self.procfs.unregister(r.pid);
                }
                return Ok(Some(r));
            }
            if !any {
                return Err(libc::ECHILD);
            }
            if nohang {
                return Ok(None);
            }
            if interrupted() {
                // wait4 and waitid restart under SA_RESTART.
                return Err(fs::waiter::ERESTARTSYS);
            }
            t = self
                .changed
                .wait_timeout(t, WAIT_SLICE)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// A one-shot event a thread can wait for (vfork's parent waits for the child to exec or
/// exit).
#[derive(Default)]
pub struct Completion {
    done: Mutex<bool>,
    cv: Condvar,
}

impl Completion {
    pub fn complete(&self) {
        *lock(&self.done) = true;
        self.cv.notify_all();
    }

    pub fn wait(&self) {
        let mut d = lock(&self.done);
        while !*d {
            d = self.cv.wait(d).unwrap_or_else(|e| e.into_inner());
        }
    }
}
