//! Signal bookkeeping. Delivery (frames, handlers, masks in effect) comes with the process
//! model; for now actions and the mask are recorded and reported back faithfully.

/// A signal number, 1..=64.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signo(pub i32);

impl Signo {
    pub const SIGILL: Signo = Signo(libc::SIGILL);
    pub const SIGTRAP: Signo = Signo(libc::SIGTRAP);
    pub const SIGBUS: Signo = Signo(libc::SIGBUS);
    pub const SIGFPE: Signo = Signo(libc::SIGFPE);
    pub const SIGKILL: Signo = Signo(libc::SIGKILL);
    pub const SIGSEGV: Signo = Signo(libc::SIGSEGV);
    pub const SIGSTOP: Signo = Signo(libc::SIGSTOP);
}

/// Number of signals (1..=64).
pub const NSIG: usize = 64;

/// The kernel's `struct sigaction` on x86-64.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SigAction {
    pub handler: u64,
    pub flags: u64,
    pub restorer: u64,
    pub mask: u64,
}

impl SigAction {
    pub const SIZE: usize = 32;

    pub fn to_bytes(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[0..8].copy_from_slice(&self.handler.to_le_bytes());
        b[8..16].copy_from_slice(&self.flags.to_le_bytes());
        b[16..24].copy_from_slice(&self.restorer.to_le_bytes());
        b[24..32].copy_from_slice(&self.mask.to_le_bytes());
        b
    }

    pub fn from_bytes(b: &[u8; 32]) -> Self {
        let w = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        SigAction {
            handler: w(0),
            flags: w(8),
            restorer: w(16),
            mask: w(24),
        }
    }
}

/// Signals that can be neither caught nor blocked.
pub const UNBLOCKABLE: u64 = (1 << (libc::SIGKILL - 1)) | (1 << (libc::SIGSTOP - 1));

/// Per-task signal state.
#[derive(Debug, Clone)]
pub struct SignalState {
    pub actions: [SigAction; NSIG],
    pub mask: u64,
    /// Signals directed at this thread, not yet delivered.
    pub pending: u64,
    /// What each pending signal carries (its sender, or the faulting address).
    pub info: [Option<crate::signal_frame::SigInfo>; NSIG],
    pub altstack: crate::signal_frame::AltStack,
    /// The mask sigsuspend replaced, restored by the handler's frame.
    pub saved_mask: Option<u64>,
}

impl SignalState {
    /// execve: handled signals return to their default action; ignored ones stay ignored,
    /// and the mask is kept.
    pub fn reset_for_exec(&mut self) {
        for a in self.actions.iter_mut() {
            if a.handler != libc::SIG_IGN as u64 {
                *a = SigAction::default();
            }
        }
    }
}

impl Default for SignalState {
    fn default() -> Self {
        SignalState {
            actions: [SigAction::default(); NSIG],
            mask: 0,
            pending: 0,
            info: [None; NSIG],
            altstack: crate::signal_frame::AltStack {
                flags: crate::signal_frame::AltStack::SS_DISABLE,
                ..Default::default()
            },
            saved_mask: None,
        }
    }
}

/// Signals whose default action is to do nothing.
pub fn ignored_by_default(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGCHLD | libc::SIGURG | libc::SIGWINCH | libc::SIGCONT
    )
}

/// Whether `action` makes `sig` do nothing when delivered (stops count: without job
/// control they are ignored).
pub fn ignores(action: &SigAction, sig: i32) -> bool {
    if sig == libc::SIGKILL {
        return false;
    }
    action.handler == libc::SIG_IGN as u64
        || (action.handler == libc::SIG_DFL as u64 || sig == libc::SIGSTOP)
            && (ignored_by_default(sig) || stops_by_default(sig))
}

/// Stop signals: without job control they are treated as ignored.
pub fn stops_by_default(sig: i32) -> bool {
    matches!(
        sig,
        libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU
    )
}
