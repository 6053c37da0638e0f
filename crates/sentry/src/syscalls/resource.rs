//! Resource usage and system information: sysinfo, times, getrusage.
//!
//! CPU time is what the CPU-time clocks count (`crate::timers::cpu`): the host CPU time of
//! the task threads. The host doesn't split it between guest code and the calls served on
//! the thread in a way the sentry can read per thread cheaply, so all of it is reported as
//! user time and system time is 0.

use std::time::Duration;

use platform::UserRegs;

use crate::errno::{Errno, SysResult};
use crate::task::TaskState;

/// Clock ticks per second as user space counts them (USER_HZ).
const USER_HZ: u128 = 100;

const RUSAGE_SELF: i32 = 0;
const RUSAGE_CHILDREN: i32 = -1;
const RUSAGE_THREAD: i32 = 1;

fn ticks(d: Duration) -> i64 {
    i64::try_from(d.as_nanos() * USER_HZ / 1_000_000_000).unwrap_or(i64::MAX)
}

/// The resident set of the caller's process now, in KiB, noted as a high-water mark.
fn maxrss_kb(t: &TaskState) -> u64 {
    let now = t.mm.lock().resident_pages() as u64 * 4;
    t.group.sched.note_rss(now)
}

pub fn sysinfo(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let up = t.kernel.booted.elapsed();
    // Linux rounds a partial second up.
    let uptime = up.as_secs() + u64::from(up.subsec_nanos() > 0);
    let mem = t.kernel.platform.memory();
    let procs = t.kernel.tasks.total().min(u64::from(u16::MAX));
    let mut b = [0u8; 112];
    b[0..8].copy_from_slice(&uptime.to_le_bytes());
    // loads[3] (8..32) stay 0: the sandbox keeps no load average.
    b[32..40].copy_from_slice(&mem.limit().to_le_bytes());
    b[40..48].copy_from_slice(&mem.free_bytes().to_le_bytes());
    // sharedram, bufferram, totalswap, freeswap: 0.
    b[80..82].copy_from_slice(&(procs as u16).to_le_bytes());
    // totalhigh, freehigh: 0; mem_unit 1.
    b[104..108].copy_from_slice(&1u32.to_le_bytes());
    t.mm.copy_out(a[0], &b)?;
    Ok(0)
}

pub fn times(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    if a[0] != 0 {
        let children = t.group.sched.children();
        let mut b = [0u8; 32];
        b[0..8].copy_from_slice(&ticks(t.group.cpu.process()).to_le_bytes());
        // tms_stime 0 (see the module's note).
        b[16..24].copy_from_slice(&ticks(children.cpu).to_le_bytes());
        t.mm.copy_out(a[0], &b)?;
    }
    // Ticks since the sandbox started; Linux's count starts 300 s before 2^32 jiffies so
    // that wrap-around shows early, which programs must cope with anyway.
    Ok(ticks(t.kernel.booted.elapsed()) as u64)
}

/// A `struct rusage` with the fields the sandbox knows.
pub(super) fn rusage_bytes(cpu: Duration, maxrss_kb: u64) -> [u8; 144] {
    let mut b = [0u8; 144];
    b[0..8].copy_from_slice(&(cpu.as_secs() as i64).to_le_bytes());
    b[8..16].copy_from_slice(&i64::from(cpu.subsec_micros()).to_le_bytes());
    // ru_stime (16..32) 0.
    b[32..40].copy_from_slice(&maxrss_kb.to_le_bytes());
    b
}

pub fn getrusage(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (cpu, maxrss) = match a[0] as i32 {
        RUSAGE_SELF => (t.group.cpu.process(), maxrss_kb(t)),
        RUSAGE_THREAD => (t.group.cpu.thread(t.tid).unwrap_or_default(), maxrss_kb(t)),
        RUSAGE_CHILDREN => {
            let c = t.group.sched.children();
            (c.cpu, c.maxrss_kb)
        }
        _ => return Err(Errno::EINVAL),
    };
    t.mm.copy_out(a[1], &rusage_bytes(cpu, maxrss))?;
    Ok(0)
}
