//! The platform made on a thread of its own, alongside the sentry's other start-up work.
//!
//! Making the VM (KVM_CREATE_VM, the memory slot, the vCPU self-tests or their cached
//! answers) takes 1-2.5 ms, none of it needing what the main thread does meanwhile
//! (namespaces, the root file system, the program or the bundle): `runsc do` and the OCI
//! sandbox process both start it early and join it before the sentry confines itself.
//!
//! The thread reads the self-test cache by path (platform::kvm::selftest_cache), so the
//! main thread waits for that ([`PendingPlatform::wait_host_reads`]) before it pivots to
//! the empty root; it drops its own capabilities as the main thread drops its own
//! (capabilities are per thread) before it makes the VM, and starts no guest code and no
//! thread (the ring poller starts with the first task). It must be joined
//! ([`PendingPlatform::finish`]) before the sentry changes its user (which refuses other
//! threads), restricts itself (Landlock is per thread before ABI 8) and installs the
//! seccomp filter. The VM's kernel workers (`kvm-*`, kernel code only) are made by this
//! thread, so they keep its uid.

use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

use platform::kvm::{KvmConfig, KvmPlatform};
use platform::SyscallPath;

use crate::{bundle, caps, BootError, PlatformKind};

/// How to make the platform.
pub struct Request {
    pub syscall_path: SyscallPath,
    /// The memory file's size (None: the platform's default).
    pub total_memory: Option<u64>,
    /// Leave the VM's destruction to a kernel worker after the process exits, so that
    /// whoever waits for the process does not wait for it.
    pub defer_teardown: bool,
    /// Drop the capabilities the running sentry doesn't need (crate::caps) on the thread,
    /// as the caller does on its own.
    pub drop_caps: bool,
    /// Keep CAP_NET_ADMIN (crate::caps::NETWORK_ADMIN) when dropping.
    pub network_admin: bool,
}

/// The platform being made on a thread of its own ([`start`]), or why it can't be.
pub enum PendingPlatform {
    Making {
        thread: JoinHandle<Result<KvmPlatform, BootError>>,
        /// Told (or dropped) once the thread has read what it reads by path on the host
        /// (the self-test cache): the sentry leaves the host's file system after that.
        host_reads: Receiver<()>,
    },
    Failed(BootError),
}

impl PendingPlatform {
    /// Waits until the VM's thread needs the host's file system no more (it is done long
    /// before the main thread gets to the pivot, in practice).
    pub fn wait_host_reads(&self) {
        if let PendingPlatform::Making { host_reads, .. } = self {
            // Err: the thread ended (or failed) first; either way it reads nothing more.
            let _ = host_reads.recv();
        }
    }

    /// Waits for the platform.
    pub fn finish(self) -> Result<Arc<KvmPlatform>, BootError> {
        match self {
            PendingPlatform::Making { thread, .. } => match thread.join() {
                Ok(made) => Ok(Arc::new(made?)),
                Err(panic) => std::panic::resume_unwind(panic),
            },
            PendingPlatform::Failed(e) => Err(e),
        }
    }
}

/// Opens the platform's device (while the host's file system is still there) and starts
/// making the VM on a new thread. Errors wait for [`PendingPlatform::finish`], so that the
/// caller's own errors (a missing program) are still reported first.
pub fn start(kind: PlatformKind, request: Request) -> PendingPlatform {
    let device_fd = match kind {
        PlatformKind::Kvm => match bundle::open_device(kind) {
            Ok(fd) => fd,
            Err(e) => return PendingPlatform::Failed(e),
        },
        PlatformKind::Systrap => {
            return PendingPlatform::Failed(BootError::PlatformUnavailable("systrap"))
        }
    };
    let mut config = KvmConfig {
        syscall_path: request.syscall_path,
        device_fd,
        defer_teardown: request.defer_teardown,
        ..Default::default()
    };
    if let Some(bytes) = request.total_memory {
        config.memory_size = bytes;
    }
    let (told, host_reads) = sync_channel(1);
    let made = std::thread::Builder::new()
        .name("vm-setup".into())
        .spawn(move || {
            // The self-tests' answers from earlier runs (platform::kvm::selftest_cache),
            // read by path: before the main thread pivots (it waits for this).
            config.selftest_cache =
                platform::kvm::selftest_cache::SelftestCache::prepare().map(Arc::new);
            let _ = told.send(());
            if request.drop_caps {
                caps::drop_unneeded(request.network_admin)?;
            }
            Ok(KvmPlatform::new(config)?)
        });
    match made {
        Ok(thread) => PendingPlatform::Making { thread, host_reads },
        Err(e) => PendingPlatform::Failed(BootError::Io("starting the VM's thread", e)),
    }
}
