//! personality and syslog: a process's execution domain, and the kernel log the sandbox
//! doesn't give out.

use platform::UserRegs;

use crate::errno::{Errno, SysResult};
use crate::task::TaskState;

/// personality(persona): sets the process's personality unless `persona` is 0xffffffff
/// (a query), and returns the previous one. Inherited by fork; execve of a 64-bit
/// program clears only READ_IMPLIES_EXEC (see `crate::sched::SchedState::exec`).
pub fn personality(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let persona = a[0] as u32;
    let old = t.group.sched.personality();
    if persona != 0xffff_ffff {
        t.group.sched.set_personality(persona);
    }
    Ok(u64::from(old))
}

/// syslog(type, buf, len): the sandbox has no kernel log to show, and behaves as a Linux
/// with kernel.dmesg_restrict = 1 to a caller without CAP_SYSLOG: every action is EPERM.
pub fn syslog(_: &mut TaskState, _: &mut UserRegs, _: [u64; 6]) -> SysResult {
    Err(Errno::EPERM)
}
