//! Signal-driven I/O (fcntl F_SETOWN, F_SETOWN_EX, F_SETSIG and O_ASYNC): a description with
//! O_ASYNC set and an owner sends its owner SIGIO (or F_SETSIG's signal, with si_code, si_band
//! and si_fd) when it becomes readable (read side) or writable (write side of a pipe), as
//! Linux's kill_fasync/send_sigio.
//!
//! The file's wait queue tells a listener, which may run under the file's own lock; the
//! listener only queues the event for one delivery thread, which looks the owner up and
//! sends the signal without any file lock held.

use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};

use fs::vfs::file::FileOwner;
use fs::vfs::OpenFile;
use fs::waiter::{
    Listener, POLLERR, POLLHUP, POLLIN, POLLMSG, POLLOUT, POLLPRI, POLLRDBAND, POLLRDNORM,
    POLLWRBAND, POLLWRNORM,
};

use crate::process::{Kernel, ProcessSet};
use crate::signal_frame::{SigInfo, SI_KERNEL};

pub const F_OWNER_TID: i32 = 0;
pub const F_OWNER_PID: i32 = 1;
pub const F_OWNER_PGRP: i32 = 2;

struct Event {
    kernel: Weak<Kernel>,
    file: Weak<OpenFile>,
    events: u32,
    /// A dnotify event (POLL_MSG), sent whether or not O_ASYNC is set.
    dnotify: bool,
    /// The descriptor F_NOTIFY was called on (si_fd of a dnotify signal).
    fd: i32,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The delivery thread's queue, started on first use.
fn sender() -> &'static Sender<Event> {
    static SENDER: OnceLock<Sender<Event>> = OnceLock::new();
    SENDER.get_or_init(|| {
        let (tx, rx) = channel::<Event>();
        let spawned = std::thread::Builder::new()
            .name("sigio".into())
            .spawn(move || {
                for ev in rx {
                    deliver(ev);
                }
            });
        if let Err(e) = spawned {
            tracing::warn!("no signal-driven I/O: cannot start its thread: {e}");
        }
        tx
    })
}

struct AsyncListener {
    kernel: Weak<Kernel>,
    file: Weak<OpenFile>,
}

impl Listener for AsyncListener {
    fn notify(&self, events: u32) {
        // 0 is "something changed" (an end closed): Linux's fasync reports data and room,
        // which come with their own events.
        if events == 0 {
            return;
        }
        let _ = sender().send(Event {
            kernel: self.kernel.clone(),
            file: self.file.clone(),
            events,
            dnotify: false,
            fd: 0,
        });
    }
}

/// Linux's si_code for the readiness `events` and the band that goes with it.
fn reason(events: u32) -> (i32, i64) {
    const POLL_IN: i32 = 1;
    const POLL_OUT: i32 = 2;
    const POLL_ERR: i32 = 4;
    const POLL_PRI: i32 = 5;
    const POLL_HUP: i32 = 6;
    let (code, band) = if events & (POLLIN | POLLRDNORM) != 0 {
        (POLL_IN, POLLIN | POLLRDNORM | POLLMSG)
    } else if events & (POLLOUT | POLLWRNORM) != 0 {
        (POLL_OUT, POLLOUT | POLLWRNORM | POLLWRBAND)
    } else if events & POLLPRI != 0 {
        (POLL_PRI, POLLPRI | POLLRDBAND)
    } else if events & POLLHUP != 0 {
        (POLL_HUP, POLLHUP | POLLERR)
    } else {
        (POLL_ERR, POLLERR)
    };
    (code, band as i64)
}

fn deliver(ev: Event) {
    let (Some(kernel), Some(file)) = (ev.kernel.upgrade(), ev.file.upgrade()) else {
        return;
    };
    let (kind, id, sig, fd) = {
        let o = lock(&file.owner);
        if (o.listener.is_none() && !ev.dnotify) || o.id == 0 {
            return;
        }
        (o.kind, o.id, o.sig, o.fd)
    };
    let info = if sig == 0 {
        SigInfo {
            signo: libc::SIGIO,
            code: SI_KERNEL,
            ..Default::default()
        }
    } else if ev.dnotify {
        // Linux's send_sigio(fown, fd, POLL_MSG).
        const POLL_MSG: i32 = 3;
        SigInfo {
            signo: sig,
            code: POLL_MSG,
            poll: Some(((POLLIN | POLLRDNORM | POLLMSG) as i64, ev.fd)),
            ..Default::default()
        }
    } else {
        let (code, band) = reason(ev.events);
        SigInfo {
            signo: sig,
            code,
            poll: Some((band, fd)),
            ..Default::default()
        }
    };
    match kind {
        F_OWNER_TID => {
            if let Some(r) = kernel.thread_owner(id) {
                r.group.send_thread(id, info, true);
            }
        }
        F_OWNER_PGRP => {
            for r in kernel.recipients(ProcessSet::Group(id)) {
                if !r.zombie {
                    r.group.send(info);
                }
            }
        }
        _ => {
            for r in kernel.recipients(ProcessSet::Pid(id)) {
                if !r.zombie {
                    r.group.send(info);
                }
            }
        }
    }
}

/// The function dnotify calls when a directory registered with F_NOTIFY through descriptor
/// `fd` changes, and a lease break when an open conflicts with a lease taken through `fd`:
/// the description's owner gets SIGIO, or F_SETSIG's signal with si_code POLL_MSG and si_fd
/// (Linux's kill_fasync(..., POLL_MSG)).
pub fn msg_signal(kernel: &Arc<Kernel>, fd: i32) -> fs::inotify::DnotifySignal {
    let kernel = Arc::downgrade(kernel);
    Arc::new(move |file: &Arc<OpenFile>| {
        let _ = sender().send(Event {
            kernel: kernel.clone(),
            file: Arc::downgrade(file),
            events: 0,
            dnotify: true,
            fd,
        });
    })
}

/// Brings `file`'s listener in line with its flags: registered while O_ASYNC is set (through
/// descriptor `fd`) on a file whose readiness can change, gone otherwise.
pub fn update(kernel: &Arc<Kernel>, file: &Arc<OpenFile>, fd: i32) {
    let wants = file.flags() & libc::O_ASYNC as u32 != 0;
    let mut owner: MutexGuard<'_, FileOwner> = lock(&file.owner);
    if !wants {
        owner.listener = None;
        return;
    }
    owner.fd = fd;
    if owner.listener.is_some() {
        return;
    }
    let Some(queue) = file.wait_queue() else {
        return;
    };
    // Readers hear of data, writers of room (a socket, read and written, of data only: Linux
    // signals its write space only after a write found it full).
    let mask = if file.readable() {
        POLLIN | POLLRDNORM | POLLPRI
    } else {
        POLLOUT | POLLWRNORM
    };
    let listener = Arc::new(AsyncListener {
        kernel: Arc::downgrade(kernel),
        file: Arc::downgrade(file),
    });
    let registration = queue.register(&listener, mask);
    owner.listener = Some((listener, registration));
}
