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
use std::time::Duration;

use platform::{Interrupter, Platform};

use crate::procfs::ProcFs;
use crate::task::ExitStatus;

/// A live thread: its id and, once its vCPU exists, how to interrupt it.
type ThreadSlot = (i32, Option<Arc<dyn Interrupter>>);

/// One process's threads and its pending group exit.
pub struct ThreadGroup {
    pub pid: i32,
    /// Set when the whole group must end (exit_group, a fatal signal, the sandbox ending).
    exiting: Mutex<Option<ExitStatus>>,
    /// Live threads and how to interrupt them (None until the thread's vCPU exists).
    threads: Mutex<Vec<ThreadSlot>>,
    /// Signals sent to the process, taken by whichever thread doesn't block them.
    pending: Mutex<(u64, [Option<crate::signal_frame::SigInfo>; 64])>,
    /// Signals another thread sent to one thread (tgkill), kept here until that thread
    /// takes them into its own pending set: a thread asleep in a system call holds the lock
    /// on its state.
    directed: Mutex<Vec<(i32, crate::signal_frame::SigInfo)>>,
    /// prctl(PR_SET_PDEATHSIG): sent to this process when its parent exits (0: none).
    /// Linux keeps it per thread and sends it when the parent *thread* exits; here both are
    /// per process.
    pub parent_death_signal: std::sync::atomic::AtomicI32,
    /// prctl(PR_SET_CHILD_SUBREAPER): orphaned descendants are reparented here, not to init.
    pub child_subreaper: std::sync::atomic::AtomicBool,
    /// The signal the parent gets when this process ends: clone's low byte (SIGCHLD for
    /// fork), 0 for none.
    pub exit_signal: AtomicI32,
}

impl ThreadGroup {
    pub fn new(pid: i32) -> Arc<ThreadGroup> {
        Arc::new(ThreadGroup {
            pid,
            exiting: Mutex::new(None),
            threads: Mutex::new(Vec::new()),
            pending: Mutex::new((0, [None; 64])),
            directed: Mutex::new(Vec::new()),
            parent_death_signal: std::sync::atomic::AtomicI32::new(0),
            child_subreaper: std::sync::atomic::AtomicBool::new(false),
            exit_signal: AtomicI32::new(0),
        })
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
        for (_, i) in lock(&self.threads).iter() {
            if let Some(i) = i {
                i.interrupt();
            }
        }
    }

    /// Counts a new thread (at clone time, before it runs).
    /// The live threads' ids, in creation order.
    pub fn tids(&self) -> Vec<i32> {
        lock(&self.threads).iter().map(|(tid, _)| *tid).collect()
    }

    pub fn add_thread(&self, tid: i32) {
        lock(&self.threads).push((tid, None));
    }

    /// Records how to interrupt a thread once its vCPU exists.
    pub fn set_interrupter(&self, tid: i32, interrupter: Arc<dyn Interrupter>) {
        let exiting = self.exiting().is_some();
        if let Some(slot) = lock(&self.threads).iter_mut().find(|(id, _)| *id == tid) {
            if exiting {
                interrupter.interrupt();
            }
            slot.1 = Some(interrupter);
        }
    }

    /// Forgets how to interrupt a thread whose vCPU is going away.
    pub fn clear_interrupter(&self, tid: i32) {
        if let Some(slot) = lock(&self.threads).iter_mut().find(|(id, _)| *id == tid) {
            slot.1 = None;
        }
    }

    /// Removes a thread; returns how many are left.
    pub fn remove_thread(&self, tid: i32) -> usize {
        lock(&self.directed).retain(|(id, _)| *id != tid);
        let mut t = lock(&self.threads);
        t.retain(|(id, _)| *id != tid);
        t.len()
    }

    /// Queues a signal for thread `tid` of this group and interrupts it; false when the
    /// group has no such thread.
    pub fn send_to_thread(&self, tid: i32, info: crate::signal_frame::SigInfo) -> bool {
        let threads = lock(&self.threads);
        let Some((_, interrupter)) = threads.iter().find(|(id, _)| *id == tid) else {
            return false;
        };
        lock(&self.directed).push((tid, info));
        if let Some(i) = interrupter {
            i.interrupt();
        }
        true
    }

    /// Whether thread `tid` has a signal from `send_to_thread` that is not in `blocked`.
    pub fn has_directed(&self, tid: i32, blocked: u64) -> bool {
        lock(&self.directed)
            .iter()
            .any(|(id, i)| *id == tid && blocked & (1u64 << (i.signo - 1)) == 0)
    }

    /// Takes thread `tid`'s signals from `send_to_thread`, oldest first.
    pub fn take_directed(&self, tid: i32) -> Vec<crate::signal_frame::SigInfo> {
        let mut d = lock(&self.directed);
        if d.is_empty() {
            return Vec::new();
        }
        let (mine, others) = std::mem::take(&mut *d)
            .into_iter()
            .partition(|(id, _)| *id == tid);
        *d = others;
        mine.into_iter().map(|(_, i): (i32, _)| i).collect()
    }

    /// Queues a process-directed signal and interrupts the threads so one can take it.
    pub fn send(&self, info: crate::signal_frame::SigInfo) {
        {
            let mut p = lock(&self.pending);
            let bit = 1u64 << (info.signo - 1);
            if p.0 & bit == 0 {
                p.0 |= bit;
                p.1[info.signo as usize - 1] = Some(info);
            }
        }
        for (_, i) in lock(&self.threads).iter() {
            if let Some(i) = i {
                i.interrupt();
            }
        }
    }

    /// Takes the lowest pending signal not in `blocked`.
    pub fn take_pending(&self, blocked: u64) -> Option<crate::signal_frame::SigInfo> {
        let mut p = lock(&self.pending);
        let ready = p.0 & !blocked;
        if ready == 0 {
            return None;
        }
        let sig = ready.trailing_zeros() as usize + 1;
        p.0 &= !(1u64 << (sig - 1));
        Some(p.1[sig - 1].take().unwrap_or(crate::signal_frame::SigInfo {
            signo: sig as i32,
            ..Default::default()
        }))
    }

    /// Drops the pending signals in `signals`.
    pub fn discard_pending(&self, signals: u64) {
        let mut p = lock(&self.pending);
        p.0 &= !signals;
        for (i, info) in p.1.iter_mut().enumerate() {
            if signals & (1u64 << i) != 0 {
                *info = None;
            }
        }
    }

    /// The signals pending for the process.
    pub fn pending_signals(&self) -> u64 {
        lock(&self.pending).0
    }

    /// Whether a signal not in `blocked` is pending for the process.
    pub fn has_pending(&self, blocked: u64) -> bool {
        lock(&self.pending).0 & !blocked != 0
    }

    pub fn thread_count(&self) -> usize {
        lock(&self.threads).len()
    }
}

/// What the parent's exit signal says about a child that ended (Linux's do_notify_parent).
fn child_signal_info(
    sig: i32,
    pid: i32,
    uid: u32,
    status: ExitStatus,
) -> crate::signal_frame::SigInfo {
    const CLD_EXITED: i32 = 1;
    const CLD_KILLED: i32 = 2;
    let (code, status) = match status {
        ExitStatus::Code(c) => (CLD_EXITED, c as i32),
        // No core dumps are written, so never CLD_DUMPED (as wait's core bit).
        ExitStatus::Signal(s) => (CLD_KILLED, s.0),
    };
    crate::signal_frame::SigInfo {
        signo: sig,
        code,
        pid,
        uid,
        status,
        ..Default::default()
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
    /// Set when every thread has ended: a zombie waiting for its parent.
    zombie: Option<ExitStatus>,
}

/// A process as wait reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reaped {
    pub pid: i32,
    pub status: ExitStatus,
}

/// Which children a wait is for (wait4's pid argument, waitid's idtype/id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitFor {
    Any,
    Pid(i32),
    Group(i32),
}

/// The sandbox's kernel-wide state.
pub struct Kernel {
    pub platform: Arc<dyn Platform>,
    pub procfs: Arc<ProcFs>,
    table: Mutex<BTreeMap<i32, Entry>>,
    /// Signalled when a process becomes a zombie.
    changed: Condvar,
    /// Pids and tids come from one counter, as Linux's.
    next_id: AtomicI32,
}

/// How long a blocked wait sleeps before checking whether its own group is ending.
const WAIT_SLICE: Duration = Duration::from_millis(50);

impl Kernel {
    pub fn new(platform: Arc<dyn Platform>, procfs: Arc<ProcFs>) -> Arc<Kernel> {
        Arc::new(Kernel {
            platform,
            procfs,
            table: Mutex::new(BTreeMap::new()),
            changed: Condvar::new(),
            next_id: AtomicI32::new(1),
        })
    }

    /// A fresh process or thread id.
    pub fn new_id(&self) -> i32 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Records a new process.
    pub fn add_process(&self, group: Arc<ThreadGroup>, ppid: i32, pgid: i32, sid: i32) {
        lock(&self.table).insert(
            group.pid,
            Entry {
                group,
                ppid,
                pgid,
                sid,
                zombie: None,
            },
        );
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
        Ok(caller)
    }

    /// Marks `pid` (run by `uid`) a zombie with `status`, gives its children to init,
    /// signals its parent (SIGCHLD, or what clone asked for) and wakes waiters.
    pub fn process_exited(&self, pid: i32, uid: u32, status: ExitStatus) {
        use std::sync::atomic::Ordering;
        let mut t = lock(&self.table);
        let mut parent_signal = None;
        if let Some(e) = t.get_mut(&pid) {
            e.zombie = Some(status);
            let sig = e.group.exit_signal.load(Ordering::Relaxed);
            let ppid = e.ppid;
            // An exit signal that is no signal (legacy clone takes any low byte) is not sent.
            if (1..=64).contains(&sig) {
                parent_signal = t
                    .get(&ppid)
                    .filter(|p| p.zombie.is_none())
                    .map(|p| (p.group.clone(), child_signal_info(sig, pid, uid, status)));
            }
        }
        // Orphans go to the nearest living ancestor that is a subreaper, else to init.
        let mut reaper = 1;
        let mut ancestor = t.get(&pid).map(|e| e.ppid).unwrap_or(0);
        let mut hops = 0;
        while ancestor > 1 && hops < t.len() {
            match t.get(&ancestor) {
                Some(e)
                    if e.zombie.is_none() && e.group.child_subreaper.load(Ordering::Relaxed) =>
                {
                    reaper = ancestor;
                    break;
                }
                Some(e) => ancestor = e.ppid,
                None => break,
            }
            hops += 1;
        }
        let mut death_signals = Vec::new();
        for e in t.values_mut() {
            if e.ppid == pid {
                e.ppid = reaper;
                let sig = e.group.parent_death_signal.load(Ordering::Relaxed);
                if sig != 0 && e.zombie.is_none() {
                    death_signals.push((e.group.clone(), sig));
                }
            }
        }
        drop(t);
        if let Some((parent, info)) = parent_signal {
            parent.send(info);
        }
        for (group, sig) in death_signals {
            group.send(crate::signal_frame::SigInfo {
                signo: sig,
                code: 0, // SI_USER, from the parent
                pid,
                ..Default::default()
            });
        }
        self.changed.notify_all();
    }

    /// The group of the live process that has thread `tid`.
    pub fn group_of_thread(&self, tid: i32) -> Option<Arc<ThreadGroup>> {
        if let Some(g) = self.group(tid) {
            if g.tids().contains(&tid) {
                return Some(g);
            }
        }
        self.all_groups()
            .into_iter()
            .find(|g| g.tids().contains(&tid))
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
    /// done). ECHILD when there is no matching child. Gives up with EINTR when `interrupted`
    /// says so (the waiter's group is ending).
    pub fn wait(
        &self,
        parent: i32,
        which: WaitFor,
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
                    if let Some(status) = e.zombie {
                        done = Some(Reaped { pid, status });
                        break;
                    }
                }
            }
            if let Some(r) = done {
                if !keep {
                    t.remove(&r.pid);
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
                return Err(libc::EINTR);
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
