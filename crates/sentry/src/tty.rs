//! Terminals as the sandbox's processes see them: the session a terminal controls and its
//! foreground process group (Linux's tty->session and tty->pgrp).
//!
//! These are the sandbox's own ids. A host terminal passed as a standard stream becomes the
//! controlling terminal of the first process's session, with that process's group in the
//! foreground, as a login shell's terminal is. Only the device's attributes (termios, window
//! size, queues) reach the host terminal: a host process group never shows inside, and no
//! process group or session of the guest is ever set on the host.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fs::tty::WinSize;
use fs::FileDescription;

/// What a terminal controls, while it is some session's controlling terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtyJob {
    pub session: i32,
    /// The foreground process group.
    pub foreground: i32,
}

/// A controlling terminal: the job it controls and the device, which `/dev/tty` opens.
struct Controlling {
    job: TtyJob,
    device: Arc<dyn FileDescription>,
}

/// The sandbox's terminals, by device id ([`fs::tty::Terminal::tty_id`]).
#[derive(Default)]
pub struct Ttys {
    jobs: Mutex<HashMap<u64, Controlling>>,
    /// The window size the sandbox last saw of each terminal (Linux's tty->winsize), so
    /// that a resize sends SIGWINCH once whether the guest or the user made it.
    sizes: Mutex<HashMap<u64, WinSize>>,
}

impl Ttys {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Controlling>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records that terminal `tty` is now `size` (it was `before` if nothing was recorded):
    /// whether that is a change, worth a SIGWINCH.
    pub fn resized(&self, tty: u64, size: WinSize, before: WinSize) -> bool {
        let mut sizes = self.sizes.lock().unwrap_or_else(|e| e.into_inner());
        let old = sizes.insert(tty, size).unwrap_or(before);
        old != size
    }

    /// The session terminal `tty` controls and its foreground group, if any.
    pub fn job(&self, tty: u64) -> Option<TtyJob> {
        self.lock().get(&tty).map(|c| c.job)
    }

    /// The device of terminal `tty` while it controls a session (what `/dev/tty` opens).
    pub fn device(&self, tty: u64) -> Option<Arc<dyn FileDescription>> {
        self.lock().get(&tty).map(|c| c.device.clone())
    }

    /// Makes `tty` (the file `device`) the controlling terminal of `session`, `foreground`
    /// in front.
    pub fn attach(
        &self,
        tty: u64,
        session: i32,
        foreground: i32,
        device: Arc<dyn FileDescription>,
    ) {
        let job = TtyJob {
            session,
            foreground,
        };
        self.lock().insert(tty, Controlling { job, device });
    }

    /// Changes the foreground group of a terminal that controls a session.
    pub fn set_foreground(&self, tty: u64, foreground: i32) {
        if let Some(c) = self.lock().get_mut(&tty) {
            c.job.foreground = foreground;
        }
    }

    /// `tty` controls no session any more; returns what it controlled.
    pub fn detach(&self, tty: u64) -> Option<TtyJob> {
        self.lock().remove(&tty).map(|c| c.job)
    }

    /// The terminal session `session` is controlled by, if any.
    pub fn of_session(&self, session: i32) -> Option<(u64, TtyJob)> {
        self.lock()
            .iter()
            .find(|(_, c)| c.job.session == session)
            .map(|(&t, c)| (t, c.job))
    }
}

/// The write end of the pipe the signal handler reports to (-1 until forwarding starts).
static FORWARD_PIPE: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// The signals a terminal sends its foreground group that reach runsc instead, since runsc
/// is what the host terminal sees in front: interrupt (^C), quit (^\) and window changes.
/// SIGTSTP (^Z) is left to stop runsc as a whole, which gives the user's shell back.
const FORWARDED: [i32; 3] = [libc::SIGINT, libc::SIGQUIT, libc::SIGWINCH];

extern "C" fn on_terminal_signal(sig: libc::c_int) {
    let fd = FORWARD_PIPE.load(std::sync::atomic::Ordering::Relaxed);
    let b = sig as u8;
    // SAFETY: write(2) is async-signal-safe; b is one valid byte. A full pipe drops the
    // signal, as a pending standard signal merges with the next.
    unsafe { libc::write(fd, (&b as *const u8).cast(), 1) };
}

/// Sends the terminal signals runsc receives to the sandbox's foreground process group of
/// terminal `tty`, as the terminal would send them to a program run natively (Linux's
/// isig: SIGINT, SIGQUIT, and SIGWINCH after a resize). Returns false if the host refused
/// a pipe, a handler or a thread (the signals then act on runsc as before).
pub fn forward_terminal_signals(
    kernel: std::sync::Weak<crate::process::Kernel>,
    terminal: Arc<dyn FileDescription>,
) -> bool {
    let Some(tty) = terminal.terminal().map(|t| t.tty_id()) else {
        return false;
    };
    let mut fds = [0i32; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return false;
    }
    let [read_end, write_end] = fds;
    FORWARD_PIPE.store(write_end, std::sync::atomic::Ordering::Relaxed);
    let spawned = std::thread::Builder::new()
        .name("tty-signals".into())
        .spawn(move || {
            let mut b = 0u8;
            // SAFETY: reading one byte into b from the pipe this thread owns.
            while unsafe { libc::read(read_end, (&mut b as *mut u8).cast(), 1) } == 1 {
                let Some(kernel) = kernel.upgrade() else {
                    return;
                };
                let Some(job) = kernel.ttys.job(tty) else {
                    continue;
                };
                if b as i32 == libc::SIGWINCH {
                    // The guest's own TIOCSWINSZ makes the host signal runsc too: only a
                    // size the sandbox hasn't seen yet is news.
                    let now = terminal.terminal().map(|t| t.window_size());
                    match now {
                        Some(Ok(ws)) if kernel.ttys.resized(tty, ws, ws) => {}
                        _ => continue,
                    }
                }
                for group in kernel.group_members(job.foreground) {
                    group.send(crate::signal_frame::SigInfo {
                        signo: b as i32,
                        code: crate::signal_frame::SI_KERNEL,
                        ..Default::default()
                    });
                }
            }
        });
    if spawned.is_err() {
        return false;
    }
    for sig in FORWARDED {
        // SAFETY: a zeroed sigaction with a handler that only calls write(2); SA_RESTART so
        // that the sentry's own host calls carry on (KVM_RUN returns EINTR regardless, which
        // the platform treats as an interruption).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_terminal_signal as *const () as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(sig, &sa, std::ptr::null_mut()) < 0 {
                return false;
            }
        }
    }
    true
}

/// The sandbox's own pseudo-terminals (devpts) raise their signals through the kernel.
impl fs::devpts::JobControl for crate::process::Kernel {
    /// ISIG: VINTR, VQUIT and VSUSP typed on a pty's master.
    fn signal_foreground(&self, tty: u64, sig: i32) {
        let Some(job) = self.ttys.job(tty) else {
            return;
        };
        for group in self.group_members(job.foreground) {
            group.send(crate::signal_frame::SigInfo {
                signo: sig,
                code: crate::signal_frame::SI_KERNEL,
                ..Default::default()
            });
        }
    }

    /// The master closed (Linux's tty_vhangup of the slave): the session loses its
    /// controlling terminal, and its leader gets SIGHUP and SIGCONT
    /// (tty_signal_session_leader).
    fn hangup(&self, tty: u64) {
        let Some(job) = self.ttys.detach(tty) else {
            return;
        };
        self.clear_session_ctty(job.session, tty);
        if let Some(leader) = self.group(job.session) {
            for signo in [libc::SIGHUP, libc::SIGCONT] {
                leader.send(crate::signal_frame::SigInfo {
                    signo,
                    code: crate::signal_frame::SI_KERNEL,
                    ..Default::default()
                });
            }
        }
    }
}

/// Lets every devpts mounted in `mounts` signal through `kernel`.
pub fn connect_devpts(kernel: &Arc<crate::process::Kernel>, mounts: &fs::vfs::MountNamespace) {
    let weak: std::sync::Weak<dyn fs::devpts::JobControl> =
        Arc::downgrade(kernel) as std::sync::Weak<dyn fs::devpts::JobControl>;
    for root in mounts.mount_roots() {
        if let Some(devpts) = fs::devpts::Devpts::of_root(&root) {
            devpts.set_job_control(weak.clone());
        }
    }
}
