//! membarrier(2), over crate::membarrier.

use platform::UserRegs;

use crate::errno::{Errno, SysResult};
use crate::membarrier::{self as mb, Barrier, Registration};
use crate::task::TaskState;

/// The barrier a command makes, if it makes one.
fn barrier_of(cmd: u32) -> Option<Barrier> {
    match cmd {
        mb::CMD_GLOBAL | mb::CMD_GLOBAL_EXPEDITED | mb::CMD_PRIVATE_EXPEDITED => {
            Some(Barrier::Memory)
        }
        mb::CMD_PRIVATE_EXPEDITED_SYNC_CORE => Some(Barrier::SyncCore),
        _ => None,
    }
}

/// Whether the call in `a` ends at once: anything but a barrier the host makes with an RCU
/// grace period (hosts without expedited membarrier), which the ring poller shouldn't wait
/// for.
pub fn never_blocks(a: [u64; 6]) -> bool {
    barrier_of(a[0] as u32).is_none_or(|b| mb::is_quick(mb::host(), b))
}

/// membarrier(cmd, flags, cpu_id), as Linux's: flags must be 0 (MEMBARRIER_CMD_FLAG_CPU only
/// with the RSEQ command, which is EINVAL anyway: no rseq here); the private commands need
/// their registration (EPERM); a command the host can't back isn't offered by QUERY and is
/// EINVAL, as a command the kernel lacks.
pub fn membarrier(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (cmd, flags) = (a[0] as u32, a[1] as u32);
    let flags_ok = match cmd {
        mb::CMD_PRIVATE_EXPEDITED_RSEQ => flags == 0 || flags == mb::CMD_FLAG_CPU,
        _ => flags == 0,
    };
    if !flags_ok {
        return Err(Errno::EINVAL);
    }
    let host = mb::host();
    let supported = mb::supported(host);
    if cmd == mb::CMD_QUERY {
        return Ok(u64::from(supported));
    }
    // One bit, and one QUERY offers; the RSEQ commands (never offered) end here too.
    if !cmd.is_power_of_two() || supported & cmd == 0 {
        return Err(Errno::EINVAL);
    }
    let registrations = &t.mm.membarrier;
    let registration = match cmd {
        mb::CMD_GET_REGISTRATIONS => return Ok(u64::from(registrations.commands())),
        mb::CMD_REGISTER_GLOBAL_EXPEDITED => Some(Registration::GlobalExpedited),
        mb::CMD_REGISTER_PRIVATE_EXPEDITED => Some(Registration::PrivateExpedited),
        mb::CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE => {
            Some(Registration::PrivateExpeditedSyncCore)
        }
        _ => None,
    };
    if let Some(r) = registration {
        registrations.register(r);
        return Ok(0);
    }
    let barrier = barrier_of(cmd).ok_or(Errno::EINVAL)?;
    let private = matches!(
        cmd,
        mb::CMD_PRIVATE_EXPEDITED | mb::CMD_PRIVATE_EXPEDITED_SYNC_CORE
    );
    if private && !registrations.ready(barrier) {
        return Err(Errno::EPERM);
    }
    mb::barrier(host, barrier)?;
    Ok(0)
}
