//! I/O priorities (Linux's block/ioprio.c): recorded per thread in an I/O context, as Linux
//! keeps them, and reported back. They have no effect: the sentry's file I/O is the host's,
//! at the sentry's own priority.
//!
//! As Linux, a thread has no context until ioprio_set gives it one; clone(CLONE_IO) shares
//! its creator's, and any other clone copies it only when it holds a valid class
//! (copy_io). kcmp's KCMP_IO compares these contexts.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;

use crate::sched::{SCHED_FIFO, SCHED_IDLE, SCHED_RR};

const CLASS_SHIFT: u32 = 13;
pub const CLASS_NONE: u32 = 0;
pub const CLASS_RT: u32 = 1;
pub const CLASS_BE: u32 = 2;
pub const CLASS_IDLE: u32 = 3;

/// IOPRIO_PRIO_CLASS: bits 13..15 (what lies above is ignored, and cut off when stored).
pub fn class(ioprio: u32) -> u32 {
    (ioprio >> CLASS_SHIFT) & 7
}

/// IOPRIO_PRIO_LEVEL: bits 0..2.
pub fn level(ioprio: u32) -> u32 {
    ioprio & 7
}

fn value(class: u32, level: u32) -> u16 {
    ((class << CLASS_SHIFT) | level) as u16
}

/// ioprio_valid: a class that says something (RT, BE or IDLE).
fn valid(ioprio: u16) -> bool {
    matches!(class(u32::from(ioprio)), CLASS_RT..=CLASS_IDLE)
}

/// A thread's I/O context: its priority as ioprio_set stored it (16 bits).
#[derive(Debug)]
pub struct IoContext(AtomicU16);

impl IoContext {
    pub fn new(ioprio: u16) -> Arc<IoContext> {
        Arc::new(IoContext(AtomicU16::new(ioprio)))
    }

    pub fn get(&self) -> u16 {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set(&self, ioprio: u16) {
        self.0.store(ioprio, Ordering::Relaxed);
    }
}

/// A new task's context (Linux's copy_io): its creator's with CLONE_IO, a copy when the
/// creator's holds a valid class, else none.
pub fn for_child(parent: Option<&Arc<IoContext>>, clone_io: bool) -> Option<Arc<IoContext>> {
    let parent = parent?;
    if clone_io {
        Some(parent.clone())
    } else if valid(parent.get()) {
        Some(IoContext::new(parent.get()))
    } else {
        None
    }
}

/// What a thread's priority counts as when ioprio_get compares a group's or a user's
/// threads (Linux's __get_task_ioprio, then ioprio_best): the stored value if its class is
/// valid, else one made from the scheduling policy (SCHED_IDLE: IDLE, real-time: RT, else
/// BE) and the nice value ((nice + 20) / 5).
pub fn effective(ctx: Option<&IoContext>, nice: i32, policy: i32) -> u16 {
    if let Some(v) = ctx.map(IoContext::get).filter(|&v| valid(v)) {
        return v;
    }
    let class = match policy {
        SCHED_IDLE => CLASS_IDLE,
        SCHED_FIFO | SCHED_RR => CLASS_RT,
        _ => CLASS_BE,
    };
    value(class, ((nice + 20) / 5).clamp(0, 7) as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_share_copy_or_lose_the_context_as_linux() {
        let none_class = IoContext::new(8);
        assert!(for_child(Some(&none_class), false).is_none());
        assert!(for_child(None, true).is_none());
        let be = IoContext::new(value(CLASS_BE, 3));
        let shared = for_child(Some(&be), true).unwrap();
        assert!(Arc::ptr_eq(&shared, &be));
        let copied = for_child(Some(&be), false).unwrap();
        assert!(!Arc::ptr_eq(&copied, &be));
        assert_eq!(copied.get(), 0x4003);
    }

    #[test]
    fn the_effective_priority_follows_nice_and_policy_without_a_class() {
        assert_eq!(effective(None, 0, 0), 0x4004);
        assert_eq!(
            effective(Some(&IoContext(AtomicU16::new(8))), 19, 0),
            0x4007
        );
        assert_eq!(effective(None, 19, SCHED_IDLE), 0x6007);
        assert_eq!(effective(None, 19, SCHED_FIFO), 0x2007);
        assert_eq!(effective(None, -20, 0), 0x4000);
        assert_eq!(
            effective(Some(&IoContext(AtomicU16::new(0x6005))), 0, 0),
            0x6005
        );
    }
}
