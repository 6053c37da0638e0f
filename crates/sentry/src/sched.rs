//! Scheduling attributes, resource usage and personality a process keeps for the calls
//! that read and set them. None of it changes the host: the policy and nice value are
//! recorded and reported, the sandbox's threads keep the host's scheduling.

use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

pub const SCHED_OTHER: i32 = 0;
pub const SCHED_FIFO: i32 = 1;
pub const SCHED_RR: i32 = 2;
pub const SCHED_BATCH: i32 = 3;
pub const SCHED_IDLE: i32 = 5;
pub const SCHED_DEADLINE: i32 = 6;
pub const SCHED_RESET_ON_FORK: i32 = 0x4000_0000;

/// personality's READ_IMPLIES_EXEC, which a 64-bit execve clears (set_personality_64bit).
pub const READ_IMPLIES_EXEC: u32 = 0x0040_0000;

/// A process's scheduling attributes (Linux keeps them per thread: see docs/syscalls.md).
#[derive(Default)]
pub struct SchedState {
    /// -20..=19.
    nice: AtomicI32,
    /// SCHED_*, with SCHED_RESET_ON_FORK or'ed in when set.
    policy: AtomicI32,
    /// The real-time priority (1..=99 under SCHED_FIFO/RR, else 0).
    rt_priority: AtomicI32,
    /// personality(2)'s value.
    personality: AtomicU32,
    /// Largest resident set seen, in KiB (ru_maxrss).
    maxrss_kb: AtomicU64,
    /// Usage of waited-for children and their waited-for descendants.
    children: Mutex<ChildUsage>,
}

/// What RUSAGE_CHILDREN and times' cutime/cstime report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ChildUsage {
    pub cpu: Duration,
    pub maxrss_kb: u64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SchedState {
    /// A forked child takes its parent's attributes: but SCHED_RESET_ON_FORK puts a
    /// real-time or idle policy back to SCHED_OTHER and a negative nice back to 0, as
    /// Linux's sched_fork, and the child doesn't keep the flag. Usage starts from nothing.
    pub fn inherit(&self, parent: &SchedState) {
        let (mut policy, reset) = parent.policy();
        let mut nice = parent.nice();
        let mut prio = parent.rt_priority();
        if reset {
            if matches!(policy, SCHED_FIFO | SCHED_RR | SCHED_DEADLINE | SCHED_IDLE) {
                policy = SCHED_OTHER;
                prio = 0;
            }
            nice = nice.max(0);
        }
        self.set_nice(nice);
        self.set_policy(policy, false, prio);
        self.set_personality(parent.personality());
    }

    pub fn nice(&self) -> i32 {
        self.nice.load(Ordering::Relaxed)
    }

    pub fn set_nice(&self, nice: i32) {
        self.nice.store(nice.clamp(-20, 19), Ordering::Relaxed);
    }

    /// The policy without the flag, and whether SCHED_RESET_ON_FORK is set.
    pub fn policy(&self) -> (i32, bool) {
        let p = self.policy.load(Ordering::Relaxed);
        (p & !SCHED_RESET_ON_FORK, p & SCHED_RESET_ON_FORK != 0)
    }

    pub fn rt_priority(&self) -> i32 {
        self.rt_priority.load(Ordering::Relaxed)
    }

    pub fn set_policy(&self, policy: i32, reset_on_fork: bool, rt_priority: i32) {
        let flag = if reset_on_fork {
            SCHED_RESET_ON_FORK
        } else {
            0
        };
        self.policy.store(policy | flag, Ordering::Relaxed);
        self.rt_priority.store(rt_priority, Ordering::Relaxed);
    }

    pub fn personality(&self) -> u32 {
        self.personality.load(Ordering::Relaxed)
    }

    pub fn set_personality(&self, p: u32) {
        self.personality.store(p, Ordering::Relaxed);
    }

    /// execve of a 64-bit program.
    pub fn exec(&self) {
        self.personality
            .fetch_and(!READ_IMPLIES_EXEC, Ordering::Relaxed);
    }

    /// Records a resident-set reading; returns the largest so far (KiB).
    pub fn note_rss(&self, kb: u64) -> u64 {
        self.maxrss_kb.fetch_max(kb, Ordering::Relaxed).max(kb)
    }

    pub fn maxrss_kb(&self) -> u64 {
        self.maxrss_kb.load(Ordering::Relaxed)
    }

    pub fn children(&self) -> ChildUsage {
        *lock(&self.children)
    }

    /// A child was reaped: its CPU time and its own children's count, and the largest
    /// resident set of either, as Linux's wait_task_zombie.
    pub fn add_child(&self, child: &SchedState, child_cpu: Duration) {
        let theirs = child.children();
        let mut c = lock(&self.children);
        c.cpu += child_cpu + theirs.cpu;
        c.maxrss_kb = c.maxrss_kb.max(child.maxrss_kb()).max(theirs.maxrss_kb);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fork_inherits_and_reset_on_fork_resets() {
        let parent = SchedState::default();
        parent.set_nice(-5);
        parent.set_policy(SCHED_FIFO, true, 10);
        parent.set_personality(0x0040_0000 | 0x0004_0000);
        let child = SchedState::default();
        child.inherit(&parent);
        assert_eq!(child.policy(), (SCHED_OTHER, false));
        assert_eq!(child.rt_priority(), 0);
        assert_eq!(child.nice(), 0);
        assert_eq!(child.personality(), parent.personality());
        // Without the flag everything is kept; BATCH is not reset even with it.
        parent.set_policy(SCHED_BATCH, true, 0);
        parent.set_nice(7);
        let child = SchedState::default();
        child.inherit(&parent);
        assert_eq!(child.policy(), (SCHED_BATCH, false));
        assert_eq!(child.nice(), 7);
        child.exec();
        assert_eq!(child.personality(), 0x0004_0000);
    }

    #[test]
    fn nice_is_clamped_and_children_accumulate() {
        let s = SchedState::default();
        s.set_nice(100);
        assert_eq!(s.nice(), 19);
        s.set_nice(-100);
        assert_eq!(s.nice(), -20);
        let child = SchedState::default();
        child.note_rss(300);
        let grandchild = SchedState::default();
        grandchild.note_rss(900);
        child.add_child(&grandchild, Duration::from_millis(5));
        s.add_child(&child, Duration::from_millis(10));
        assert_eq!(
            s.children(),
            ChildUsage {
                cpu: Duration::from_millis(15),
                maxrss_kb: 900
            }
        );
    }
}
