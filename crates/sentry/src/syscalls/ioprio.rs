//! ioprio_set and ioprio_get over crate::ioprio: per-thread I/O priorities, checked and
//! recorded as Linux's block/ioprio.c does, with no effect on I/O.

use std::sync::Arc;

use platform::UserRegs;

use super::sched::{find_thread, prio_targets};
use crate::caps::{capable, Cap};
use crate::errno::{Errno, SysResult};
use crate::ioprio::{self, IoContext};
use crate::process::ThreadGroup;
use crate::task::TaskState;

const IOPRIO_WHO_PROCESS: u64 = 1;
const IOPRIO_WHO_PGRP: u64 = 2;
const IOPRIO_WHO_USER: u64 = 3;
/// getpriority's PRIO_PGRP and PRIO_USER, for sched's target lookup.
const PRIO_PGRP: u64 = 1;
const PRIO_USER: u64 = 2;

/// Linux's ioprio_check_cap: the real-time class needs CAP_SYS_ADMIN or CAP_SYS_NICE; the
/// NONE class takes no level; classes past IDLE are EINVAL. (A level is 3 bits: never too
/// high.)
fn check_cap(t: &TaskState, ioprio: u32) -> Result<(), Errno> {
    match ioprio::class(ioprio) {
        ioprio::CLASS_RT => {
            if !capable(&t.creds, Cap::SysAdmin) && !capable(&t.creds, Cap::SysNice) {
                return Err(Errno::EPERM);
            }
            Ok(())
        }
        ioprio::CLASS_BE | ioprio::CLASS_IDLE => Ok(()),
        ioprio::CLASS_NONE if ioprio::level(ioprio) == 0 => Ok(()),
        _ => Err(Errno::EINVAL),
    }
}

/// The threads `which` and `who` name, each with its process. `who` 0 is the caller, its
/// process group, or (for ioprio_get) its user; ioprio_set's IOPRIO_WHO_USER takes 0 as
/// uid 0, as Linux's does.
fn targets(
    t: &TaskState,
    which: u64,
    who: i32,
    setting: bool,
) -> Result<Vec<(Arc<ThreadGroup>, i32)>, Errno> {
    let groups = match which {
        IOPRIO_WHO_PROCESS => {
            if who < 0 {
                return Err(Errno::ESRCH);
            }
            return Ok(vec![find_thread(t, who)?]);
        }
        IOPRIO_WHO_PGRP => prio_targets(t, PRIO_PGRP, who as u32 as u64)?,
        IOPRIO_WHO_USER if setting && who == 0 => t
            .kernel
            .live_processes()
            .into_iter()
            .filter(|(_, _, g)| g.uids().uid == 0)
            .map(|(_, _, g)| g)
            .collect(),
        IOPRIO_WHO_USER => prio_targets(t, PRIO_USER, who as u32 as u64)?,
        _ => return Err(Errno::EINVAL),
    };
    Ok(groups
        .into_iter()
        .flat_map(|g| g.tids().into_iter().map(move |tid| (g.clone(), tid)))
        .collect())
}

/// ioprio_set(which, who, ioprio): the value is checked first, then every thread named gets
/// it (stored in 16 bits) in turn; a thread whose process's real uid is neither the caller's
/// real nor effective uid stops it with EPERM, unless the caller has CAP_SYS_NICE. ESRCH
/// when nothing is named.
pub fn ioprio_set(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (which, who, value) = (a[0] as u32 as u64, a[1] as i32, a[2] as u32);
    check_cap(t, value)?;
    let threads = targets(t, which, who, true)?;
    if threads.is_empty() {
        return Err(Errno::ESRCH);
    }
    for (group, tid) in threads {
        let owner = group.uids().uid;
        if owner != t.creds.euid && owner != t.creds.uid && !capable(&t.creds, Cap::SysNice) {
            return Err(Errno::EPERM);
        }
        match group.thread_io(tid).flatten() {
            Some(ctx) => ctx.set(value as u16),
            // A thread that ended meanwhile is passed over, as Linux's PF_EXITING.
            None => {
                group.set_thread_io(tid, Some(IoContext::new(value as u16)));
            }
        }
    }
    Ok(0)
}

/// ioprio_get(which, who): a thread's stored priority (0 without a context: Linux's
/// IOPRIO_DEFAULT); for a process group or a user, the best (lowest) of their threads'
/// effective priorities (`ioprio::effective`).
pub fn ioprio_get(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (which, who) = (a[0] as u32 as u64, a[1] as i32);
    let threads = targets(t, which, who, false)?;
    if which == IOPRIO_WHO_PROCESS {
        let (group, tid) = threads.first().ok_or(Errno::ESRCH)?;
        let ctx = group.thread_io(*tid).ok_or(Errno::ESRCH)?;
        return Ok(u64::from(ctx.map_or(0, |c| c.get())));
    }
    threads
        .iter()
        .filter_map(|(group, tid)| {
            let ctx = group.thread_io(*tid)?;
            let (policy, _) = group.sched.policy();
            Some(ioprio::effective(
                ctx.as_deref(),
                group.sched.nice(),
                policy,
            ))
        })
        .min()
        .map(u64::from)
        .ok_or(Errno::ESRCH)
}
