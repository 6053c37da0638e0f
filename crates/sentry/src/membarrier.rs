//! membarrier(2)'s barriers, made by the host, and the registrations an address space
//! holds (Linux's kernel/sched/membarrier.c).
//!
//! Every thread of the sandbox runs on a host thread of the sentry (a vCPU thread in
//! KVM_RUN, or a sentry thread serving a call), so a barrier across the sandbox's running
//! threads is the host's own MEMBARRIER_CMD_PRIVATE_EXPEDITED on the sentry process: an IPI
//! to every CPU running a sentry thread, guest code or not. The host wants the sentry
//! registered for that first, and the registration command is not in the sentry's seccomp
//! filter: [`prepare_host`] registers before the filter goes on. A host that refuses (before
//! Linux 4.14) leaves MEMBARRIER_CMD_GLOBAL (an RCU grace period, slow but a barrier on
//! every CPU), and one without membarrier at all leaves nothing: [`supported`] then answers
//! QUERY without the commands that can't be honoured, and they fail with EINVAL.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

use crate::errno::Errno;

/// Commands (linux/membarrier.h).
pub const CMD_QUERY: u32 = 0;
pub const CMD_GLOBAL: u32 = 1 << 0;
pub const CMD_GLOBAL_EXPEDITED: u32 = 1 << 1;
pub const CMD_REGISTER_GLOBAL_EXPEDITED: u32 = 1 << 2;
pub const CMD_PRIVATE_EXPEDITED: u32 = 1 << 3;
pub const CMD_REGISTER_PRIVATE_EXPEDITED: u32 = 1 << 4;
pub const CMD_PRIVATE_EXPEDITED_SYNC_CORE: u32 = 1 << 5;
pub const CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE: u32 = 1 << 6;
pub const CMD_PRIVATE_EXPEDITED_RSEQ: u32 = 1 << 7;
pub const CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ: u32 = 1 << 8;
pub const CMD_GET_REGISTRATIONS: u32 = 1 << 9;
/// The one flag (for the RSEQ command only): `cpu_id` names the CPU.
pub const CMD_FLAG_CPU: u32 = 1;

/// The barriers the host gives the sentry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Host {
    /// The sentry is registered for MEMBARRIER_CMD_PRIVATE_EXPEDITED.
    pub expedited: bool,
    /// ... and for MEMBARRIER_CMD_PRIVATE_EXPEDITED_SYNC_CORE.
    pub sync_core: bool,
    /// The host has MEMBARRIER_CMD_GLOBAL (not with nohz_full CPUs).
    pub global: bool,
}

static HOST: OnceLock<Host> = OnceLock::new();

fn host_membarrier(cmd: u32) -> Result<u32, i32> {
    // SAFETY: membarrier takes no pointers; flags 0 and cpu_id 0 are valid for every
    // command the sentry makes.
    let r = unsafe { libc::syscall(libc::SYS_membarrier, cmd as libc::c_int, 0u32, 0i32) };
    if r < 0 {
        Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EINVAL))
    } else {
        Ok(r as u32)
    }
}

/// Asks the host what it offers and registers the sentry for the expedited barriers. Call
/// once, before the sentry's seccomp filter (which allows only the barrier commands
/// themselves, not QUERY or the registrations); later calls return the first answer.
pub fn prepare_host() -> Host {
    *HOST.get_or_init(|| {
        let offered = match host_membarrier(CMD_QUERY) {
            Ok(mask) => mask,
            Err(e) => {
                tracing::debug!("membarrier: the host has none (errno {e})");
                0
            }
        };
        let register = |reg: u32, cmd: u32| {
            offered & cmd != 0
                && host_membarrier(reg)
                    .inspect_err(|e| tracing::debug!("membarrier: registering {reg}: errno {e}"))
                    .is_ok()
        };
        let host = Host {
            expedited: register(CMD_REGISTER_PRIVATE_EXPEDITED, CMD_PRIVATE_EXPEDITED),
            sync_core: register(
                CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE,
                CMD_PRIVATE_EXPEDITED_SYNC_CORE,
            ),
            global: offered & CMD_GLOBAL != 0,
        };
        tracing::debug!("membarrier: host {offered:#x}, using {host:?}");
        host
    })
}

/// The host's barriers, as [`prepare_host`] found them (none if it never ran).
pub fn host() -> Host {
    HOST.get().copied().unwrap_or_default()
}

/// The host commands the sentry may make once its seccomp filter is on.
pub const HOST_COMMANDS: [u32; 3] = [
    CMD_GLOBAL,
    CMD_PRIVATE_EXPEDITED,
    CMD_PRIVATE_EXPEDITED_SYNC_CORE,
];

/// The commands the sandbox honours on `host`: what QUERY reports. No RSEQ commands (rseq
/// is absent, as in a Linux built without CONFIG_RSEQ).
pub fn supported(host: Host) -> u32 {
    let mut mask = CMD_GET_REGISTRATIONS;
    if host.expedited || host.global {
        mask |= CMD_GLOBAL
            | CMD_GLOBAL_EXPEDITED
            | CMD_REGISTER_GLOBAL_EXPEDITED
            | CMD_PRIVATE_EXPEDITED
            | CMD_REGISTER_PRIVATE_EXPEDITED;
    }
    if host.sync_core {
        mask |= CMD_PRIVATE_EXPEDITED_SYNC_CORE | CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE;
    }
    mask
}

/// Which barrier a command needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Barrier {
    /// A memory barrier on every CPU running a thread of the sandbox.
    Memory,
    /// That, and core serialization before those threads run user code again.
    SyncCore,
}

/// Whether `barrier` on `host` is an expedited host call (an IPI, microseconds) rather than
/// an RCU grace period: the ring poller may make the former.
pub fn is_quick(host: Host, barrier: Barrier) -> bool {
    match barrier {
        Barrier::Memory => host.expedited,
        Barrier::SyncCore => host.sync_core,
    }
}

/// Makes `barrier` through the host. EINVAL when the host can't (QUERY didn't offer it).
pub fn barrier(host: Host, barrier: Barrier) -> Result<(), Errno> {
    let cmd = match barrier {
        Barrier::SyncCore if host.sync_core => CMD_PRIVATE_EXPEDITED_SYNC_CORE,
        Barrier::Memory if host.expedited => CMD_PRIVATE_EXPEDITED,
        // An RCU grace period: every CPU passes a full barrier, the sentry's among them.
        Barrier::Memory if host.global => CMD_GLOBAL,
        _ => return Err(Errno::EINVAL),
    };
    host_membarrier(cmd).map(drop).map_err(|e| {
        // The host offered and accepted this before: a refusal now is the host's
        // business, reported to the caller as Linux's own failure would be.
        tracing::warn!("membarrier: the host refused command {cmd}: errno {e}");
        Errno(e)
    })
}

/// Registration state bits (Linux's MEMBARRIER_STATE_*, in mm->membarrier_state).
const GLOBAL_EXPEDITED_READY: u32 = 1 << 0;
const GLOBAL_EXPEDITED: u32 = 1 << 1;
const PRIVATE_EXPEDITED_READY: u32 = 1 << 2;
const PRIVATE_EXPEDITED: u32 = 1 << 3;
const SYNC_CORE_READY: u32 = 1 << 4;
const SYNC_CORE: u32 = 1 << 5;

/// The registrations of one address space (Linux keeps them in the mm): shared by the
/// threads and CLONE_VM children using it, copied by fork, gone at execve (a new address
/// space starts empty).
#[derive(Debug, Default)]
pub struct Registrations(AtomicU32);

/// What a registration asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registration {
    GlobalExpedited,
    PrivateExpedited,
    PrivateExpeditedSyncCore,
}

impl Registrations {
    /// A copy for a forked address space (Linux's dup_mm copies the mm whole).
    pub fn fork(&self) -> Registrations {
        Registrations(AtomicU32::new(self.0.load(Ordering::Relaxed)))
    }

    /// Records a registration. Nothing more to do: the host barrier covers every thread of
    /// the sentry already, registered or not.
    pub fn register(&self, r: Registration) {
        let bits = match r {
            Registration::GlobalExpedited => GLOBAL_EXPEDITED | GLOBAL_EXPEDITED_READY,
            Registration::PrivateExpedited => PRIVATE_EXPEDITED | PRIVATE_EXPEDITED_READY,
            // As Linux: the private-expedited state without its READY bit, so the plain
            // command still needs a registration of its own (EPERM without).
            Registration::PrivateExpeditedSyncCore => {
                PRIVATE_EXPEDITED | SYNC_CORE | SYNC_CORE_READY
            }
        };
        self.0.fetch_or(bits, Ordering::SeqCst);
    }

    /// Whether the plain (`SyncCore`: the sync-core) private expedited command may be used.
    pub fn ready(&self, barrier: Barrier) -> bool {
        let bit = match barrier {
            Barrier::Memory => PRIVATE_EXPEDITED_READY,
            Barrier::SyncCore => SYNC_CORE_READY,
        };
        self.0.load(Ordering::SeqCst) & bit != 0
    }

    /// MEMBARRIER_CMD_GET_REGISTRATIONS: the registration commands that were made.
    pub fn commands(&self) -> u32 {
        let state = self.0.load(Ordering::SeqCst);
        [
            (
                GLOBAL_EXPEDITED | GLOBAL_EXPEDITED_READY,
                CMD_REGISTER_GLOBAL_EXPEDITED,
            ),
            (
                PRIVATE_EXPEDITED | PRIVATE_EXPEDITED_READY,
                CMD_REGISTER_PRIVATE_EXPEDITED,
            ),
            (
                SYNC_CORE | SYNC_CORE_READY,
                CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE,
            ),
        ]
        .into_iter()
        .filter(|&(bits, _)| state & bits != 0)
        .fold(0, |mask, (_, cmd)| mask | cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_report_as_linux() {
        let r = Registrations::default();
        assert_eq!(r.commands(), 0);
        assert!(!r.ready(Barrier::Memory));
        r.register(Registration::PrivateExpeditedSyncCore);
        // The sync-core registration shows the private one too, but doesn't make it ready.
        assert_eq!(
            r.commands(),
            CMD_REGISTER_PRIVATE_EXPEDITED | CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE
        );
        assert!(r.ready(Barrier::SyncCore));
        assert!(!r.ready(Barrier::Memory));
        r.register(Registration::GlobalExpedited);
        let child = r.fork();
        r.register(Registration::PrivateExpedited);
        assert!(r.ready(Barrier::Memory));
        assert!(
            !child.ready(Barrier::Memory),
            "a fork copies, it doesn't share"
        );
        assert_eq!(child.commands(), 0x54);
    }

    #[test]
    fn query_offers_only_what_the_host_backs() {
        assert_eq!(supported(Host::default()), CMD_GET_REGISTRATIONS);
        let global_only = Host {
            global: true,
            ..Host::default()
        };
        assert_eq!(supported(global_only) & CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0);
        assert_eq!(barrier(global_only, Barrier::SyncCore), Err(Errno::EINVAL));
        let all = Host {
            expedited: true,
            sync_core: true,
            global: true,
        };
        assert_eq!(supported(all), 0x27f, "everything but the RSEQ commands");
        assert_eq!(
            barrier(Host::default(), Barrier::Memory),
            Err(Errno::EINVAL)
        );
    }
}
