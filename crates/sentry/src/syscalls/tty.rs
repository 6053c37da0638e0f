//! The terminal ioctls (Linux's drivers/tty/tty_io.c and tty_ioctl.c), on a file whose
//! description is a terminal. Attributes, window size and queues are the device's (the host
//! terminal's); sessions and process groups are the sandbox's own (`crate::tty`).
//!
//! Every structure is the kernel's: `struct termios` is 36 bytes, `termios2` 44, `termio`
//! 18, `winsize` 8, and pids and ints 4. Each is copied exactly, through the memory manager,
//! so a bad pointer gives EFAULT and nothing past the structure is touched.

use std::sync::Arc;

use fs::tty::{Layout, Terminal, When};
use fs::FileDescription;

use super::sigsend::kernel_signal_group;
use crate::errno::{Errno, SysResult};
use crate::task::TaskState;

const TCGETS: u64 = 0x5401;
const TCSETS: u64 = 0x5402;
const TCSETSW: u64 = 0x5403;
const TCSETSF: u64 = 0x5404;
const TCGETA: u64 = 0x5405;
const TCSETA: u64 = 0x5406;
const TCSETAW: u64 = 0x5407;
const TCSETAF: u64 = 0x5408;
const TCSBRK: u64 = 0x5409;
const TCXONC: u64 = 0x540a;
const TCFLSH: u64 = 0x540b;
const TIOCSCTTY: u64 = 0x540e;
const TIOCGPGRP: u64 = 0x540f;
const TIOCSPGRP: u64 = 0x5410;
const TIOCOUTQ: u64 = 0x5411;
const TIOCSTI: u64 = 0x5412;
const TIOCGWINSZ: u64 = 0x5413;
const TIOCSWINSZ: u64 = 0x5414;
const TIOCNOTTY: u64 = 0x5422;
const TIOCSETD: u64 = 0x5423;
const TIOCGETD: u64 = 0x5424;
const TCSBRKP: u64 = 0x5425;
const TIOCGSID: u64 = 0x5429;
const TCGETS2: u64 = 0x802c_542a;
const TCSETS2: u64 = 0x402c_542b;
const TCSETSW2: u64 = 0x402c_542c;
const TCSETSF2: u64 = 0x402c_542d;
const TIOCGPTN: u64 = 0x8004_5430;
const TIOCSPTLCK: u64 = 0x4004_5431;
const TIOCGPTLCK: u64 = 0x8004_5439;
const TIOCGPTPEER: u64 = 0x5441;

/// The requests served here, for the syscall table's description.
pub const SUPPORTED: &str = "terminals: TCGETS, TCSETS, TCSETSW, TCSETSF, TCGETS2, TCSETS2, TCSETSW2, TCSETSF2, TCGETA, TCSETA, TCSETAW, TCSETAF, TIOCGWINSZ, TIOCSWINSZ (SIGWINCH to the foreground group), TCFLSH, TCXONC, TCSBRK, TCSBRKP, TIOCOUTQ, TIOCGETD, TIOCSETD (N_TTY only), and on the sandbox's own sessions TIOCGPGRP, TIOCSPGRP, TIOCGSID, TIOCSCTTY, TIOCNOTTY, with SIGTTOU for background groups; TIOCSTI gives EIO (as Linux without legacy_tiocsti); on the master of a sandbox pty (devpts) TIOCGPTN, TIOCSPTLCK, TIOCGPTLCK, TIOCGPTPEER (TIOCPKT: ENOTTY); other terminal requests give ENOTTY; reading from a background group raises SIGTTIN, writing raises SIGTTOU under TOSTOP. Any file: FIONREAD, FIONBIO, FIOCLEX, FIONCLEX. Sockets: SIOCOUTQ; network sockets also SIOCATMARK; any socket SIOCGIFCONF, SIOCGIFFLAGS, SIOCGIFADDR, SIOCGIFDSTADDR, SIOCGIFBRDADDR, SIOCGIFNETMASK, SIOCGIFMETRIC, SIOCGIFMTU, SIOCGIFHWADDR, SIOCGIFINDEX, SIOCGIFNAME, SIOCGIFTXQLEN, SIOCGIFMAP (the sentry's namespace), SIOCS* and route changes EPERM";

/// Serves terminal request `req`, or None when it isn't one.
pub fn ioctl(
    t: &mut TaskState,
    file: &fs::vfs::OpenFile,
    desc: &Arc<dyn FileDescription>,
    readable: bool,
    req: u64,
    arg: u64,
) -> Option<SysResult> {
    let term = desc.terminal()?;
    let master = desc
        .as_any()
        .and_then(|a| a.downcast_ref::<fs::devpts::Master>());
    if let Some(master) = master {
        match req {
            TIOCGPTN => return Some(put_int(t, arg, Ok(master.index()))),
            TIOCGPTLCK => return Some(put_int(t, arg, Ok(master.locked() as u32))),
            TIOCSPTLCK => {
                return Some(t.mm.read_u32(arg).map(|v| {
                    master.set_locked(v != 0);
                    0
                }))
            }
            TIOCGPTPEER => return Some(open_peer(t, file, master, arg)),
            _ => {}
        }
    }
    let tty = term.tty_id();
    let r = match req {
        TCGETS => get_attrs(t, term, Layout::Termios, arg),
        TCGETS2 => get_attrs(t, term, Layout::Termios2, arg),
        TCGETA => get_attrs(t, term, Layout::Termio, arg),
        TCSETS => set_attrs(t, term, Layout::Termios, When::Now, arg),
        TCSETSW => set_attrs(t, term, Layout::Termios, When::Drain, arg),
        TCSETSF => set_attrs(t, term, Layout::Termios, When::Flush, arg),
        TCSETS2 => set_attrs(t, term, Layout::Termios2, When::Now, arg),
        TCSETSW2 => set_attrs(t, term, Layout::Termios2, When::Drain, arg),
        TCSETSF2 => set_attrs(t, term, Layout::Termios2, When::Flush, arg),
        TCSETA => set_attrs(t, term, Layout::Termio, When::Now, arg),
        TCSETAW => set_attrs(t, term, Layout::Termio, When::Drain, arg),
        TCSETAF => set_attrs(t, term, Layout::Termio, When::Flush, arg),
        TIOCGWINSZ => term
            .window_size()
            .map_err(Errno)
            .and_then(|ws| t.mm.copy_out(arg, &ws))
            .map(|_| 0),
        TIOCSWINSZ => set_window_size(t, term, arg),
        TCFLSH => check_change(t, tty).and_then(|_| ok(term.flush(arg as i32))),
        TCXONC => check_change(t, tty).and_then(|_| ok(term.flow(arg as i32))),
        TCSBRK | TCSBRKP => {
            check_change(t, tty).and_then(|_| ok(term.send_break(arg as i32, req == TCSBRKP)))
        }
        TIOCOUTQ => put_int(t, arg, term.output_queued()),
        TIOCGETD => put_int(t, arg, term.line_discipline()),
        TIOCSETD => set_line_discipline(t, term, arg),
        TIOCGPGRP => foreground(t, tty, term.is_pty_master())
            .and_then(|pgrp| put_int(t, arg, Ok(pgrp as u32))),
        TIOCSPGRP => set_foreground(t, tty, arg),
        TIOCGSID => {
            session(t, tty, term.is_pty_master()).and_then(|sid| put_int(t, arg, Ok(sid as u32)))
        }
        TIOCSCTTY => set_controlling(t, desc, tty, readable, arg),
        TIOCNOTTY => drop_controlling(t, tty),
        // Input injected into the host terminal would be read by whoever reads it after the
        // sandbox (the user's shell): never. Linux without legacy TIOCSTI says EIO too.
        TIOCSTI => Err(Errno::EIO),
        _ => return None,
    };
    Some(r)
}

fn ok(r: Result<(), fs::Errno>) -> SysResult {
    r.map(|_| 0).map_err(Errno)
}

fn put_int(t: &mut TaskState, arg: u64, v: Result<u32, fs::Errno>) -> SysResult {
    let v = v.map_err(Errno)?;
    t.mm.copy_out(arg, &v.to_le_bytes())?;
    Ok(0)
}

fn get_attrs(t: &mut TaskState, term: &dyn Terminal, layout: Layout, arg: u64) -> SysResult {
    let attrs = term.attrs(layout).map_err(Errno)?;
    t.mm.copy_out(arg, &attrs)?;
    Ok(0)
}

fn set_attrs(
    t: &mut TaskState,
    term: &dyn Terminal,
    layout: Layout,
    when: When,
    arg: u64,
) -> SysResult {
    // As Linux's set_termios: a background group is stopped before anything is read.
    check_change(t, term.tty_id())?;
    let mut attrs = vec![0u8; layout.size()];
    t.mm.copy_in(arg, &mut attrs)?;
    ok(term.set_attrs(layout, when, &attrs))
}

/// TIOCSWINSZ: a new size sends SIGWINCH to the foreground group, as Linux's tty_do_resize.
fn set_window_size(t: &mut TaskState, term: &dyn Terminal, arg: u64) -> SysResult {
    let mut ws = [0u8; 8];
    t.mm.copy_in(arg, &mut ws)?;
    let old = term.window_size().map_err(Errno)?;
    term.set_window_size(&ws).map_err(Errno)?;
    if t.kernel.ttys.resized(term.tty_id(), ws, old) {
        if let Some(job) = t.kernel.ttys.job(term.tty_id()) {
            kernel_signal_group(t, job.foreground, libc::SIGWINCH);
        }
    }
    Ok(0)
}

/// TIOCSETD: the host terminal's line discipline is not the guest's to change; asking for
/// the one it has succeeds.
fn set_line_discipline(t: &mut TaskState, term: &dyn Terminal, arg: u64) -> SysResult {
    let wanted = t.mm.read_u32(arg)?;
    if wanted == term.line_discipline().map_err(Errno)? {
        Ok(0)
    } else {
        Err(Errno::EPERM)
    }
}

/// The caller's (pgid, sid).
fn ids(t: &TaskState) -> (i32, i32) {
    t.kernel.ids(t.pid).unwrap_or((t.pid, t.pid))
}

/// Whether `tty` is the caller's controlling terminal.
fn is_controlling(t: &TaskState, tty: u64) -> bool {
    t.kernel.ctty(t.pid) == Some(tty)
}

/// Linux's tty_check_change: a process of a background group that changes its controlling
/// terminal gets SIGTTOU sent to its group (and the call restarts once it continues),
/// unless it ignores or blocks SIGTTOU; an orphaned group can't be stopped and gets EIO.
fn check_change(t: &mut TaskState, tty: u64) -> Result<(), Errno> {
    check_background(t, tty, libc::SIGTTOU)
}

/// Linux's __tty_check_change with `sig`: SIGTTOU (changing the terminal, or writing with
/// TOSTOP) lets a process that ignores or blocks it go on; SIGTTIN (reading) gives it EIO.
fn check_background(t: &mut TaskState, tty: u64, sig: i32) -> Result<(), Errno> {
    if !in_background(t, tty) {
        return Ok(());
    }
    let (pgid, _) = ids(t);
    let blocked = t.signals.mask() & crate::signal::bit(sig) != 0;
    let ignored = t.group.handlers().get(sig).handler == libc::SIG_IGN as u64;
    if blocked || ignored {
        return if sig == libc::SIGTTIN {
            Err(Errno::EIO)
        } else {
            Ok(())
        };
    }
    if t.kernel.orphaned_pgrp(pgid) {
        return Err(Errno::EIO);
    }
    kernel_signal_group(t, pgid, sig);
    Err(Errno(fs::waiter::ERESTARTSYS))
}

/// Whether `tty` is the caller's controlling terminal and another group is in front.
fn in_background(t: &TaskState, tty: u64) -> bool {
    if !is_controlling(t, tty) {
        return false;
    }
    let (pgid, _) = ids(t);
    t.kernel
        .ttys
        .job(tty)
        .is_some_and(|job| job.foreground != pgid)
}

/// Job control for reading and writing `file` (Linux's n_tty_read and n_tty_write): a
/// background process reading its controlling terminal gets SIGTTIN, and one writing it
/// gets SIGTTOU when the terminal has TOSTOP set.
pub fn check_io(t: &mut TaskState, file: &fs::vfs::OpenFile, write: bool) -> Result<(), Errno> {
    let Some(term) = file.special_desc().and_then(|d| d.terminal()) else {
        return Ok(());
    };
    if term.is_pty_master() {
        return Ok(());
    }
    let tty = term.tty_id();
    if !in_background(t, tty) {
        return Ok(());
    }
    if !write {
        return check_background(t, tty, libc::SIGTTIN);
    }
    const TOSTOP: u32 = 0o400;
    let attrs = term.attrs(Layout::Termios).map_err(Errno)?;
    let lflag = u32::from_le_bytes(attrs[12..16].try_into().expect("4 bytes"));
    if lflag & TOSTOP == 0 {
        return Ok(());
    }
    check_background(t, tty, libc::SIGTTOU)
}

/// The terminal's session, for the caller whose controlling terminal it is, or through a
/// pty's master (Linux's tiocgsid asks the slave's for anyone holding the master).
fn session(t: &TaskState, tty: u64, master: bool) -> Result<i32, Errno> {
    if !master && !is_controlling(t, tty) {
        return Err(Errno::ENOTTY);
    }
    t.kernel
        .ttys
        .job(tty)
        .map(|j| j.session)
        .ok_or(Errno::ENOTTY)
}

/// TIOCGPGRP: for the terminal's session, or through a pty's master (how `script` and
/// terminal emulators see which job is in front).
fn foreground(t: &TaskState, tty: u64, master: bool) -> Result<i32, Errno> {
    if master {
        // No session yet: no group (0), as Linux's pid_vnr of none.
        return Ok(t.kernel.ttys.job(tty).map(|j| j.foreground).unwrap_or(0));
    }
    if !is_controlling(t, tty) {
        return Err(Errno::ENOTTY);
    }
    Ok(t.kernel.ttys.job(tty).map(|j| j.foreground).unwrap_or(0))
}

/// TIOCSPGRP, as Linux's tiocspgrp.
fn set_foreground(t: &mut TaskState, tty: u64, arg: u64) -> SysResult {
    match check_change(t, tty) {
        Err(Errno::EIO) => return Err(Errno::ENOTTY),
        r => r?,
    }
    let (_, sid) = ids(t);
    if !is_controlling(t, tty) || t.kernel.ttys.job(tty).map(|j| j.session) != Some(sid) {
        return Err(Errno::ENOTTY);
    }
    let pgrp = t.mm.read_u32(arg)? as i32;
    if pgrp < 0 {
        return Err(Errno::EINVAL);
    }
    match t.kernel.pgrp_session(pgrp) {
        None => Err(Errno::ESRCH),
        Some(s) if s != sid => Err(Errno::EPERM),
        Some(_) => {
            t.kernel.ttys.set_foreground(tty, pgrp);
            Ok(0)
        }
    }
}

/// TIOCSCTTY, as Linux's tiocsctty: a session leader without a controlling terminal takes
/// one that controls no session (or steals it with `arg` 1 and CAP_SYS_ADMIN).
fn set_controlling(
    t: &mut TaskState,
    desc: &Arc<dyn FileDescription>,
    tty: u64,
    readable: bool,
    arg: u64,
) -> SysResult {
    let (pgid, sid) = ids(t);
    let leader = sid == t.pid;
    let job = t.kernel.ttys.job(tty);
    if leader && job.is_some_and(|j| j.session == sid) {
        return Ok(0);
    }
    if !leader || t.kernel.ctty(t.pid).is_some() {
        return Err(Errno::EPERM);
    }
    let admin = crate::caps::capable(&t.creds, crate::caps::Cap::SysAdmin);
    if let Some(j) = job {
        if arg != 1 || !admin {
            return Err(Errno::EPERM);
        }
        t.kernel.clear_session_ctty(j.session, tty);
    }
    if !readable && !admin {
        return Err(Errno::EPERM);
    }
    t.kernel.ttys.attach(tty, sid, pgid, desc.clone());
    t.kernel.set_ctty(t.pid, Some(tty));
    Ok(0)
}

/// TIOCNOTTY: the caller gives up its controlling terminal; a session leader gives it up
/// for its whole session, sending SIGHUP and SIGCONT to the foreground group.
fn drop_controlling(t: &mut TaskState, tty: u64) -> SysResult {
    if !is_controlling(t, tty) {
        return Err(Errno::ENOTTY);
    }
    let (_, sid) = ids(t);
    if sid == t.pid {
        if let Some(job) = t.kernel.ttys.detach(tty) {
            kernel_signal_group(t, job.foreground, libc::SIGHUP);
            kernel_signal_group(t, job.foreground, libc::SIGCONT);
        }
        t.kernel.clear_session_ctty(sid, tty);
    }
    t.kernel.set_ctty(t.pid, None);
    Ok(0)
}

/// TIOCGPTPEER: a new file on the slave of `master`, opened with the flags in `arg`
/// (O_RDWR, O_NOCTTY, O_CLOEXEC, O_NONBLOCK...), at the slave's path beside the ptmx the
/// master came from.
fn open_peer(
    t: &mut TaskState,
    file: &fs::vfs::OpenFile,
    master: &fs::devpts::Master,
    arg: u64,
) -> SysResult {
    let flags = arg as i32;
    if flags & !(libc::O_ACCMODE | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NONBLOCK) != 0 {
        return Err(Errno::EINVAL);
    }
    let (inode, desc) = master.open_peer().map_err(Errno)?;
    let location = file.location.as_ref().and_then(|loc| {
        let dir = loc.dentry.parent()?;
        Some(fs::vfs::Location {
            mount: loc.mount.clone(),
            dentry: dir.insert_child(&master.slave_name(), inode.clone()),
        })
    });
    let status = (flags & (libc::O_ACCMODE | libc::O_NONBLOCK)) as u32 | libc::O_LARGEFILE as u32;
    let opened = fs::vfs::OpenFile::special(location, Some(inode), desc.clone(), status);
    if flags & libc::O_NOCTTY == 0 {
        take_as_controlling(t, &desc);
    }
    let limit = super::fd::fd_limit(t);
    Ok(t.fds
        .alloc(0, opened, flags & libc::O_CLOEXEC != 0, limit)? as u64)
}

/// Opening a terminal without O_NOCTTY makes it the controlling terminal of a session
/// leader that has none, if it controls no other session (Linux's tty_open_proc_set_tty).
/// A pty's master never becomes one.
pub fn take_as_controlling(t: &mut TaskState, desc: &Arc<dyn FileDescription>) {
    let Some(term) = desc.terminal() else {
        return;
    };
    if term.is_pty_master() {
        return;
    }
    let tty = term.tty_id();
    let (pgid, sid) = ids(t);
    if sid != t.pid || t.kernel.ctty(t.pid).is_some() || t.kernel.ttys.job(tty).is_some() {
        return;
    }
    t.kernel.ttys.attach(tty, sid, pgid, desc.clone());
    t.kernel.set_ctty(t.pid, Some(tty));
}
