//! devpts: the sandbox's own pseudo-terminals (Linux's drivers/tty/pty.c, n_tty.c and
//! fs/devpts). Opening `ptmx` makes a master/slave pair held entirely in the sentry: the
//! slave appears as `N` in the same directory once the master exists, and both ends share
//! one [`Pty`]: its termios, window size, and the two queues between them with the line
//! discipline (N_TTY) in the middle.
//!
//! What the line discipline does: input (master writes) goes through ISTRIP, IGNCR, ICRNL,
//! INLCR, IXON/IXANY flow control, ISIG (VINTR, VQUIT, VSUSP raise SIGINT, SIGQUIT, SIGTSTP
//! for the slave's foreground process group, flushing unless NOFLSH), and, with ICANON,
//! line editing (VERASE, VKILL, VWERASE, VLNEXT, VREPRINT, VEOF, VEOL, VEOL2, IUTF8
//! erasure) with a 4095-byte line limit; otherwise VMIN/VTIME reads. ECHO, ECHOE, ECHOK,
//! ECHOKE, ECHOCTL and ECHONL echo to the master. Output (slave writes and echoes) goes
//! through OPOST with ONLCR, OCRNL, ONOCR and OLCUC. Not done: packet mode (TIOCPKT),
//! tab expansion (XTABS), column tracking for erasing tabs, PARMRK and parity.
//!
//! Process groups and sessions are the sentry's (the [`JobControl`] it registers): this
//! module only says which signal the terminal raises and when the master hangs up.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::time::{Duration, Instant};

use crate::byte_queue::take_front;
use crate::tty::{Layout, Terminal, When, WinSize};
use crate::vfs::{DirEntry, FileType, Inode, SetAttr, StatFs};
use crate::waiter::{WaitQueue, POLLERR, POLLHUP, POLLIN, POLLOUT, POLLRDNORM, POLLWRNORM};
use crate::{dev::makedev, Errno, FileDescription, Stat};

mod console;
pub use console::{host_terminal, HostConsole};

/// /dev/ptmx and /dev/pts/ptmx.
pub const PTMX: u64 = makedev(5, 2);
/// The major number of the slaves (Unix98 ptys).
pub const SLAVE_MAJOR: u32 = 136;
/// /proc/sys/kernel/pty/max.
pub const MAX_PTYS: u32 = 4096;
/// devpts's magic number for statfs.
const DEVPTS_MAGIC: i64 = 0x1cd1;
/// Bytes a line may hold (N_TTY_BUF_SIZE - 1), and the input queue's size.
const INPUT_MAX: usize = 4095;
/// Bytes the slave may write before the master reads (the pty's buffer limit).
const OUTPUT_MAX: usize = 8192;

/// Gives terminal ids no host terminal has (a host terminal's id is its device number).
static NEXT_TTY_ID: AtomicU64 = AtomicU64::new(1 << 62);

// Kernel termios bits (asm-generic/termbits.h).
const ISTRIP: u32 = 0o40;
const INLCR: u32 = 0o100;
const IGNCR: u32 = 0o200;
const ICRNL: u32 = 0o400;
const IUCLC: u32 = 0o1000;
const IXON: u32 = 0o2000;
const IXANY: u32 = 0o4000;
const IUTF8: u32 = 0o40000;
const OPOST: u32 = 0o1;
const OLCUC: u32 = 0o2;
const ONLCR: u32 = 0o4;
const OCRNL: u32 = 0o10;
const ONOCR: u32 = 0o20;
const ISIG: u32 = 0o1;
const ICANON: u32 = 0o2;
const ECHO: u32 = 0o10;
const ECHOE: u32 = 0o20;
const ECHOK: u32 = 0o40;
const ECHONL: u32 = 0o100;
const NOFLSH: u32 = 0o200;
const ECHOCTL: u32 = 0o1000;
const ECHOKE: u32 = 0o4000;
const IEXTEN: u32 = 0o100000;
const CBAUD: u32 = 0o10017;
const CBAUDEX: u32 = 0o10000;
const BOTHER: u32 = 0o10000;

const VINTR: usize = 0;
const VQUIT: usize = 1;
const VERASE: usize = 2;
const VKILL: usize = 3;
const VEOF: usize = 4;
const VTIME: usize = 5;
const VMIN: usize = 6;
const VSTART: usize = 8;
const VSTOP: usize = 9;
const VSUSP: usize = 10;
const VEOL: usize = 11;
const VREPRINT: usize = 12;
const VWERASE: usize = 14;
const VLNEXT: usize = 15;
const VEOL2: usize = 16;
const NCCS: usize = 19;

/// The speeds of the Bnnn codes, by code (B0..B38400, then BOTHER's extended B57600..).
const BAUDS: [u32; 31] = [
    0, 50, 75, 110, 134, 150, 200, 300, 600, 1200, 1800, 2400, 4800, 9600, 19200, 38400, 57600,
    115200, 230400, 460800, 500000, 576000, 921600, 1000000, 1152000, 1500000, 2000000, 2500000,
    3000000, 3500000, 4000000,
];

fn baud_of(cflag: u32) -> u32 {
    let code = cflag & CBAUD;
    let i = if code & CBAUDEX != 0 {
        15 + (code & !CBAUDEX) as usize
    } else {
        code as usize
    };
    BAUDS.get(i).copied().unwrap_or(0)
}

/// The kernel's terminal attributes, with the speeds of `struct termios2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Termios {
    pub iflag: u32,
    pub oflag: u32,
    pub cflag: u32,
    pub lflag: u32,
    pub line: u8,
    pub cc: [u8; NCCS],
    pub ispeed: u32,
    pub ospeed: u32,
}

impl Termios {
    /// A pty slave's attributes when it is made (Linux's tty_std_termios with the devpts
    /// slave's c_cflag, B38400 | CS8 | CREAD).
    pub fn slave_default() -> Termios {
        let mut cc = [0u8; NCCS];
        cc[..17].copy_from_slice(
            b"\x03\x1c\x7f\x15\x04\x00\x01\x00\x11\x13\x1a\x00\x12\x0f\x17\x16\x00",
        );
        Termios {
            iflag: ICRNL | IXON,
            oflag: OPOST | ONLCR,
            cflag: 0o17 | 0o60 | 0o200,
            lflag: ISIG | ICANON | ECHO | ECHOE | ECHOK | ECHOCTL | ECHOKE | IEXTEN,
            line: 0,
            cc,
            ispeed: 38400,
            ospeed: 38400,
        }
    }

    /// The structure `layout` holds, in the kernel's byte layout.
    pub fn encode(&self, layout: Layout) -> Vec<u8> {
        let mut b = Vec::with_capacity(layout.size());
        if layout == Layout::Termio {
            for f in [self.iflag, self.oflag, self.cflag, self.lflag] {
                b.extend_from_slice(&(f as u16).to_le_bytes());
            }
            b.push(self.line);
            b.extend_from_slice(&self.cc[..8]);
            b.push(0);
            return b;
        }
        for f in [self.iflag, self.oflag, self.cflag, self.lflag] {
            b.extend_from_slice(&f.to_le_bytes());
        }
        b.push(self.line);
        b.extend_from_slice(&self.cc);
        if layout == Layout::Termios2 {
            b.extend_from_slice(&self.ispeed.to_le_bytes());
            b.extend_from_slice(&self.ospeed.to_le_bytes());
        }
        b
    }

    /// Applies a structure of `layout` (exactly its size), as Linux's set_termios does:
    /// termio changes only the low 16 bits of each flag and the first 8 characters; the
    /// speeds follow the baud code unless termios2 gives them with BOTHER.
    pub fn decode(&mut self, layout: Layout, b: &[u8]) -> Result<(), Errno> {
        if b.len() != layout.size() {
            return Err(libc::EINVAL);
        }
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        if layout == Layout::Termio {
            let u16_at = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]) as u32;
            self.iflag = (self.iflag & 0xffff_0000) | u16_at(0);
            self.oflag = (self.oflag & 0xffff_0000) | u16_at(2);
            self.cflag = (self.cflag & 0xffff_0000) | u16_at(4);
            self.lflag = (self.lflag & 0xffff_0000) | u16_at(6);
            self.line = b[8];
            self.cc[..8].copy_from_slice(&b[9..17]);
        } else {
            self.iflag = u32_at(0);
            self.oflag = u32_at(4);
            self.cflag = u32_at(8);
            self.lflag = u32_at(12);
            self.line = b[16];
            self.cc.copy_from_slice(&b[17..36]);
        }
        if layout == Layout::Termios2 && self.cflag & CBAUD == BOTHER {
            self.ospeed = u32_at(40);
            self.ispeed = u32_at(36);
        } else {
            self.ospeed = baud_of(self.cflag);
            self.ispeed = self.ospeed;
        }
        Ok(())
    }

    fn canonical(&self) -> bool {
        self.lflag & ICANON != 0
    }
}

/// The sentry's side of terminals: sessions and process groups.
pub trait JobControl: Send + Sync {
    /// Sends `sig` to the foreground process group of terminal `tty`, if it controls a
    /// session.
    fn signal_foreground(&self, tty: u64, sig: i32);
    /// The master of `tty` closed: the terminal hangs up (SIGHUP and SIGCONT to the
    /// session's leader, and the session loses its controlling terminal).
    fn hangup(&self, tty: u64);
}

/// One devpts instance (each mount is a new instance, as with `newinstance`).
pub struct Devpts {
    dev: u64,
    /// Mode and group of new slaves (mount options mode= and gid=).
    slave_mode: u32,
    slave_gid: u32,
    ptys: Mutex<BTreeMap<u32, Weak<Pty>>>,
    /// Host terminals shown here (lock after `ptys`).
    consoles: Mutex<BTreeMap<u32, Weak<HostConsole>>>,
    jobs: Mutex<Option<Weak<dyn JobControl>>>,
    me: Weak<Devpts>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Devpts {
    /// A new instance with device number `dev`; slaves get `mode` and group `gid` (Docker
    /// and systemd mount devpts with mode=620,gid=5).
    pub fn new(dev: u64, mode: u32, gid: u32) -> Arc<Devpts> {
        Arc::new_cyclic(|me| Devpts {
            dev,
            slave_mode: mode & 0o7777,
            slave_gid: gid,
            ptys: Mutex::new(BTreeMap::new()),
            consoles: Mutex::new(BTreeMap::new()),
            jobs: Mutex::new(None),
            me: me.clone(),
        })
    }

    /// The root directory.
    pub fn root(&self) -> Arc<dyn Inode> {
        Arc::new(Dir {
            fs: self.me.upgrade().expect("alive while borrowed"),
        })
    }

    /// The instance whose root directory `root` is.
    pub fn of_root(root: &Arc<dyn Inode>) -> Option<Arc<Devpts>> {
        root.as_any().downcast_ref::<Dir>().map(|d| d.fs.clone())
    }

    /// Who sends the signals this instance's terminals raise.
    pub fn set_job_control(&self, jobs: Weak<dyn JobControl>) {
        *lock(&self.jobs) = Some(jobs);
    }

    fn jobs(&self) -> Option<Arc<dyn JobControl>> {
        lock(&self.jobs).as_ref().and_then(|w| w.upgrade())
    }

    /// The live pair numbered `index` (its master open).
    fn get(&self, index: u32) -> Option<Arc<Pty>> {
        lock(&self.ptys)
            .get(&index)
            .and_then(|w| w.upgrade())
            .filter(|p| p.lock().master_open)
    }

    /// The lowest number neither a pair nor a host terminal holds.
    fn free_index(
        ptys: &BTreeMap<u32, Weak<Pty>>,
        consoles: &BTreeMap<u32, Weak<HostConsole>>,
    ) -> Result<u32, Errno> {
        (0..MAX_PTYS)
            .find(|i| !ptys.contains_key(i) && !consoles.contains_key(i))
            .ok_or(libc::ENOSPC)
    }

    /// A new pair at the lowest free index (Linux's devpts_new_index), its slave locked.
    fn allocate(&self) -> Result<Arc<Pty>, Errno> {
        let mut ptys = lock(&self.ptys);
        // A number is free again once both ends are closed (a node still cached somewhere
        // keeps the pair's memory, not its number).
        ptys.retain(|_, w| {
            w.upgrade().is_some_and(|p| {
                let st = p.lock();
                st.master_open || st.slave_opens > 0
            })
        });
        let index = {
            let mut consoles = lock(&self.consoles);
            consoles.retain(|_, w| w.strong_count() > 0);
            Devpts::free_index(&ptys, &consoles)?
        };
        let pty = Arc::new(Pty {
            index,
            id: NEXT_TTY_ID.fetch_add(1, Ordering::Relaxed),
            fs: self.me.clone(),
            state: Mutex::new(State::new(self.slave_mode, self.slave_gid)),
            changed: Condvar::new(),
            queue: WaitQueue::new(),
            ino: index as u64 + 3,
        });
        ptys.insert(index, Arc::downgrade(&pty));
        Ok(pty)
    }
}

/// The state both ends share.
struct State {
    termios: Termios,
    winsize: WinSize,
    /// TIOCSPTLCK: the slave can't be opened while locked (new pairs start locked).
    locked: bool,
    /// Complete input the slave may read: lines in canonical mode.
    input: VecDeque<u8>,
    /// Lengths of the complete lines at the front of `input` (canonical mode); a line
    /// ended by VEOF has no terminator and may be empty (a read of it gives 0).
    lines: VecDeque<usize>,
    /// The line being edited (canonical mode).
    line: Vec<u8>,
    /// VLNEXT seen: the next character is taken literally.
    literal_next: bool,
    /// Output for the master to read (slave writes and echoes).
    output: VecDeque<u8>,
    /// Output stopped by VSTOP (IXON) or TCOOFF.
    stopped: bool,
    master_open: bool,
    slave_opens: usize,
    /// The slave was opened and every slave file has been closed since (TTY_OTHER_CLOSED):
    /// the master reads EIO.
    slave_closed: bool,
    /// Owner and mode of the slave node.
    uid: u32,
    gid: u32,
    mode: u32,
    times: (i64, i64),
}

fn now() -> (i64, i64) {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (d.as_secs() as i64, d.subsec_nanos() as i64)
}

impl State {
    fn new(mode: u32, gid: u32) -> State {
        State {
            termios: Termios::slave_default(),
            winsize: [0; 8],
            locked: true,
            input: VecDeque::new(),
            lines: VecDeque::new(),
            line: Vec::new(),
            literal_next: false,
            output: VecDeque::new(),
            stopped: false,
            master_open: true,
            slave_opens: 0,
            slave_closed: false,
            uid: 0,
            gid,
            mode,
            times: now(),
        }
    }

    fn lflag(&self, f: u32) -> bool {
        self.termios.lflag & f != 0
    }

    fn iflag(&self, f: u32) -> bool {
        self.termios.iflag & f != 0
    }

    /// One byte of output through OPOST (Linux's do_output_char), to the master.
    fn put_out(&mut self, c: u8) {
        let t = &self.termios;
        if t.oflag & OPOST == 0 {
            self.output.push_back(c);
            return;
        }
        match c {
            b'\n' if t.oflag & ONLCR != 0 => self.output.extend(b"\r\n"),
            b'\r' if t.oflag & OCRNL != 0 => self.output.push_back(b'\n'),
            // ONOCR drops a carriage return at column 0: without column tracking, only
            // right after a newline (or at the very start).
            b'\r' if t.oflag & ONOCR != 0 && matches!(self.output.back(), None | Some(b'\n')) => {}
            c if t.oflag & OLCUC != 0 => self.output.push_back(c.to_ascii_uppercase()),
            c => self.output.push_back(c),
        }
    }

    /// Echoes `c` as Linux's echo_char: control characters as ^X under ECHOCTL.
    fn echo_char(&mut self, c: u8) {
        if self.lflag(ECHOCTL) && (c < 0x20 || c == 0x7f) && c != b'\t' && c != b'\n' {
            self.put_out(b'^');
            self.put_out(c ^ 0o100);
        } else {
            self.put_out(c);
        }
    }

    /// How many columns the echo of `c` took (for erasing it).
    fn echo_width(&self, c: u8) -> usize {
        if self.lflag(ECHOCTL) && (c < 0x20 || c == 0x7f) && c != b'\t' {
            2
        } else {
            1
        }
    }

    /// Removes the last character of the line (a whole UTF-8 sequence under IUTF8),
    /// echoing its erasure; false when the line is empty.
    fn erase_one(&mut self) -> bool {
        let Some(mut c) = self.line.pop() else {
            return false;
        };
        if self.iflag(IUTF8) {
            while c & 0xc0 == 0x80 {
                match self.line.pop() {
                    Some(p) => c = p,
                    None => break,
                }
            }
        }
        if self.lflag(ECHO) && self.lflag(ECHOE) {
            for _ in 0..self.echo_width(c) {
                self.output.extend(b"\x08 \x08");
            }
        }
        true
    }

    fn finish_line(&mut self) {
        let len = self.line.len();
        self.input.extend(self.line.drain(..));
        self.lines.push_back(len);
    }

    fn flush_input(&mut self) {
        self.input.clear();
        self.lines.clear();
        self.line.clear();
    }

    /// Bytes a canonical or raw read can take now.
    fn readable(&self) -> bool {
        if self.termios.canonical() {
            !self.lines.is_empty()
        } else {
            !self.input.is_empty()
        }
    }

    /// Whether the master can write more input now.
    fn input_room(&self) -> bool {
        self.termios.canonical() || self.input.len() < INPUT_MAX
    }

    /// One byte from the master through the line discipline (n_tty_receive_char); returns
    /// a signal to raise.
    fn receive(&mut self, mut c: u8) -> Option<i32> {
        let cc = self.termios.cc;
        let special = |i: usize, c: u8| cc[i] != 0 && cc[i] == c;
        if self.iflag(ISTRIP) {
            c &= 0x7f;
        }
        if self.literal_next {
            self.literal_next = false;
            self.store(c, true);
            return None;
        }
        if self.iflag(IXON) {
            if special(VSTOP, c) {
                self.stopped = true;
                return None;
            }
            if special(VSTART, c) {
                self.stopped = false;
                return None;
            }
            if self.stopped && self.iflag(IXANY) {
                self.stopped = false;
            }
        }
        if c == b'\r' {
            if self.iflag(IGNCR) {
                return None;
            }
            if self.iflag(ICRNL) {
                c = b'\n';
            }
        } else if c == b'\n' && self.iflag(INLCR) {
            c = b'\r';
        }
        if self.iflag(IUCLC) && self.lflag(IEXTEN) {
            c = c.to_ascii_lowercase();
        }
        if self.lflag(ISIG) {
            let sig = if special(VINTR, c) {
                Some(libc::SIGINT)
            } else if special(VQUIT, c) {
                Some(libc::SIGQUIT)
            } else if special(VSUSP, c) {
                Some(libc::SIGTSTP)
            } else {
                None
            };
            if let Some(sig) = sig {
                if !self.lflag(NOFLSH) {
                    self.flush_input();
                    self.output.clear();
                }
                self.stopped = false;
                if self.lflag(ECHO) {
                    self.echo_char(c);
                }
                return Some(sig);
            }
        }
        if self.termios.canonical() {
            if special(VERASE, c) || (special(VWERASE, c) && self.lflag(IEXTEN)) {
                if special(VWERASE, c) {
                    while self.line.last().is_some_and(|b| b.is_ascii_whitespace()) {
                        self.erase_one();
                    }
                    while self.line.last().is_some_and(|b| !b.is_ascii_whitespace()) {
                        self.erase_one();
                    }
                } else if !self.lflag(ECHOE) && self.lflag(ECHO) {
                    if self.line.pop().is_some() {
                        self.echo_char(c);
                    }
                } else {
                    self.erase_one();
                }
                return None;
            }
            if special(VKILL, c) {
                if self.lflag(ECHO) && self.lflag(ECHOK) && self.lflag(ECHOKE) && self.lflag(ECHOE)
                {
                    while self.erase_one() {}
                } else {
                    self.line.clear();
                    if self.lflag(ECHO) {
                        self.echo_char(c);
                        if self.lflag(ECHOK) {
                            self.put_out(b'\n');
                        }
                    }
                }
                return None;
            }
            if special(VLNEXT, c) && self.lflag(IEXTEN) {
                self.literal_next = true;
                return None;
            }
            if special(VREPRINT, c) && self.lflag(IEXTEN) {
                if self.lflag(ECHO) {
                    self.echo_char(c);
                    self.put_out(b'\n');
                    let line = self.line.clone();
                    for b in line {
                        self.echo_char(b);
                    }
                }
                return None;
            }
            if special(VEOF, c) {
                self.finish_line();
                return None;
            }
            if c == b'\n' || special(VEOL, c) || (special(VEOL2, c) && self.lflag(IEXTEN)) {
                if self.lflag(ECHO) || (c == b'\n' && self.lflag(ECHONL)) {
                    if c == b'\n' {
                        self.put_out(b'\n');
                    } else {
                        self.echo_char(c);
                    }
                }
                self.line.push(c);
                self.finish_line();
                return None;
            }
        }
        self.store(c, false);
        None
    }

    /// A plain character: into the line (canonical) or the input, echoed.
    fn store(&mut self, c: u8, literal: bool) {
        if self.lflag(ECHO) {
            if c == b'\n' && !literal {
                self.put_out(b'\n');
            } else {
                self.echo_char(c);
            }
        } else if c == b'\n' && self.lflag(ECHONL) {
            self.put_out(b'\n');
        }
        if self.termios.canonical() {
            // A full line takes nothing more but its end (the kernel's 4095 limit).
            if self.input.len() + self.line.len() < INPUT_MAX {
                self.line.push(c);
            }
        } else {
            self.input.push_back(c);
        }
    }

    /// New attributes: leaving canonical mode hands the line being edited to raw reads.
    fn set_termios(&mut self, t: Termios) {
        let was_canonical = self.termios.canonical();
        self.termios = t;
        if was_canonical && !t.canonical() {
            let line = std::mem::take(&mut self.line);
            self.input.extend(line);
            self.lines.clear();
        } else if !was_canonical && t.canonical() && !self.input.is_empty() {
            // What raw mode left unread reads as one line.
            self.lines.push_back(self.input.len());
        }
        if t.iflag & IXON == 0 {
            self.stopped = false;
        }
    }
}

/// A pseudo-terminal pair.
pub struct Pty {
    index: u32,
    id: u64,
    fs: Weak<Devpts>,
    state: Mutex<State>,
    /// Signalled whenever a queue or an end changes.
    changed: Condvar,
    /// Readiness listeners of both ends.
    queue: WaitQueue,
    ino: u64,
}

impl Pty {
    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn wait<'a>(&self, g: MutexGuard<'a, State>) -> Result<MutexGuard<'a, State>, Errno> {
        crate::waiter::wait_on(&self.changed, g)
    }

    fn changed(&self) {
        self.changed.notify_all();
        self.queue.notify(0);
    }

    fn raise(&self, signals: Vec<i32>) {
        if signals.is_empty() {
            return;
        }
        if let Some(jobs) = self.fs.upgrade().and_then(|fs| fs.jobs()) {
            for sig in signals {
                jobs.signal_foreground(self.id, sig);
            }
        }
    }

    fn dev(&self) -> u64 {
        self.fs.upgrade().map(|f| f.dev).unwrap_or(0)
    }

    fn slave_stat(&self) -> Stat {
        let st = self.lock();
        Stat {
            dev: self.dev(),
            ino: self.ino,
            nlink: 1,
            mode: libc::S_IFCHR | st.mode,
            uid: st.uid,
            gid: st.gid,
            rdev: makedev(SLAVE_MAJOR, self.index),
            blksize: 1024,
            atime: st.times,
            mtime: st.times,
            ctime: st.times,
            ..Default::default()
        }
    }

    // --- the slave ---

    fn slave_read(&self, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        let mut st = self.lock();
        let mut deadline: Option<Instant> = None;
        loop {
            if !st.master_open {
                return Ok(0);
            }
            if buf.is_empty() {
                return Ok(0);
            }
            if st.termios.canonical() {
                if let Some(&len) = st.lines.front() {
                    let upto = len.min(buf.len());
                    let n = take_front(&mut st.input, &mut buf[..upto]);
                    if n == len {
                        st.lines.pop_front();
                    } else if let Some(l) = st.lines.front_mut() {
                        *l -= n;
                    }
                    drop(st);
                    self.changed();
                    return Ok(n);
                }
            } else {
                let vmin = st.termios.cc[VMIN] as usize;
                let vtime = st.termios.cc[VTIME] as u64;
                let avail = st.input.len();
                let want = vmin.max(1).min(buf.len());
                let timed_out = deadline.is_some_and(|d| Instant::now() >= d);
                if avail >= want
                    || (vmin == 0 && vtime == 0)
                    || (timed_out && (vmin == 0 || avail > 0))
                {
                    let n = take_front(&mut st.input, buf);
                    drop(st);
                    self.changed();
                    return Ok(n);
                }
                if vtime > 0 && (vmin == 0 || avail > 0) && deadline.is_none() {
                    deadline = Some(Instant::now() + Duration::from_millis(vtime * 100));
                }
            }
            if nonblock {
                return Err(libc::EAGAIN);
            }
            let before = st.input.len();
            st = match deadline {
                Some(d) => {
                    let (g, _) = crate::waiter::wait_on_until(&self.changed, st, d)?;
                    g
                }
                None => self.wait(st)?,
            };
            // VMIN > 0 with VTIME: the timer restarts with every byte that arrives.
            if st.termios.cc[VMIN] > 0 && st.input.len() > before {
                let vtime = st.termios.cc[VTIME] as u64;
                deadline = (vtime > 0).then(|| Instant::now() + Duration::from_millis(vtime * 100));
            }
        }
    }

    fn slave_write(&self, buf: &[u8], nonblock: bool) -> Result<usize, Errno> {
        let mut st = self.lock();
        let mut done = 0;
        loop {
            if !st.master_open {
                return if done > 0 { Ok(done) } else { Err(libc::EIO) };
            }
            if done == buf.len() {
                return Ok(done);
            }
            if !st.stopped && st.output.len() < OUTPUT_MAX {
                while done < buf.len() && st.output.len() < OUTPUT_MAX {
                    st.put_out(buf[done]);
                    done += 1;
                }
                self.changed();
                continue;
            }
            if nonblock {
                return if done > 0 {
                    Ok(done)
                } else {
                    Err(libc::EAGAIN)
                };
            }
            st = match self.wait(st) {
                Ok(g) => g,
                Err(e) => return if done > 0 { Ok(done) } else { Err(e) },
            };
        }
    }

    fn slave_readiness(&self, mask: u32) -> u32 {
        let st = self.lock();
        if !st.master_open {
            return mask & (POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM | POLLERR | POLLHUP);
        }
        let mut r = 0;
        if st.readable() {
            r |= POLLIN | POLLRDNORM;
        }
        if !st.stopped && st.output.len() < OUTPUT_MAX {
            r |= POLLOUT | POLLWRNORM;
        }
        r & mask
    }

    // --- the master ---

    fn master_read(&self, buf: &mut [u8], nonblock: bool) -> Result<usize, Errno> {
        let mut st = self.lock();
        loop {
            if buf.is_empty() {
                return Ok(0);
            }
            if !st.output.is_empty() {
                let n = take_front(&mut st.output, buf);
                drop(st);
                self.changed();
                return Ok(n);
            }
            if st.slave_closed {
                return Err(libc::EIO);
            }
            if nonblock {
                return Err(libc::EAGAIN);
            }
            st = self.wait(st)?;
        }
    }

    fn master_write(&self, buf: &[u8], nonblock: bool) -> Result<usize, Errno> {
        let mut st = self.lock();
        let mut done = 0;
        let mut signals = Vec::new();
        let r = loop {
            if done == buf.len() {
                break Ok(done);
            }
            if st.input_room() {
                while done < buf.len() && st.input_room() {
                    if let Some(sig) = st.receive(buf[done]) {
                        signals.push(sig);
                    }
                    done += 1;
                }
                self.changed();
                continue;
            }
            if nonblock {
                break if done > 0 {
                    Ok(done)
                } else {
                    Err(libc::EAGAIN)
                };
            }
            if !signals.is_empty() {
                // Deliver what was raised before sleeping.
                drop(st);
                self.raise(std::mem::take(&mut signals));
                st = self.lock();
                continue;
            }
            st = match self.wait(st) {
                Ok(g) => g,
                Err(e) => {
                    self.raise(signals);
                    return if done > 0 { Ok(done) } else { Err(e) };
                }
            };
        };
        drop(st);
        self.raise(signals);
        r
    }

    fn master_readiness(&self, mask: u32) -> u32 {
        let st = self.lock();
        let mut r = 0;
        if !st.output.is_empty() {
            r |= POLLIN | POLLRDNORM;
        }
        if st.input_room() {
            r |= POLLOUT | POLLWRNORM;
        }
        if st.slave_closed {
            r |= POLLHUP;
        }
        r & mask
    }
}

/// The slave's node and a new file on it (TIOCGPTPEER).
pub type Peer = (Arc<dyn Inode>, Arc<dyn FileDescription>);

/// The master end (what opening ptmx gives).
pub struct Master {
    pty: Arc<Pty>,
}

/// The slave end (/dev/pts/N).
pub struct Slave {
    pty: Arc<Pty>,
}

impl Drop for Master {
    fn drop(&mut self) {
        let mut st = self.pty.lock();
        st.master_open = false;
        st.flush_input();
        st.output.clear();
        drop(st);
        self.pty.changed();
        if let Some(jobs) = self.pty.fs.upgrade().and_then(|fs| fs.jobs()) {
            jobs.hangup(self.pty.id);
        }
    }
}

impl Drop for Slave {
    fn drop(&mut self) {
        let mut st = self.pty.lock();
        st.slave_opens -= 1;
        if st.slave_opens == 0 {
            st.slave_closed = true;
        }
        drop(st);
        self.pty.changed();
    }
}

impl Master {
    /// TIOCGPTN: the pair's number.
    pub fn index(&self) -> u32 {
        self.pty.index
    }

    /// TIOCSPTLCK.
    pub fn set_locked(&self, locked: bool) {
        self.pty.lock().locked = locked;
    }

    /// TIOCGPTLCK.
    pub fn locked(&self) -> bool {
        self.pty.lock().locked
    }

    /// The slave node belongs to whoever opened the master (devpts_pty_new gives it the
    /// opener's fsuid).
    pub fn set_owner(&self, uid: u32) {
        self.pty.lock().uid = uid;
    }

    /// TIOCGPTPEER: opens the slave (even while locked, as Linux does) with its inode.
    pub fn open_peer(&self) -> Result<Peer, Errno> {
        let node: Arc<dyn Inode> = Arc::new(SlaveNode {
            pty: self.pty.clone(),
        });
        Ok((node, open_slave(&self.pty)))
    }

    /// The name of the slave in its devpts directory.
    pub fn slave_name(&self) -> Vec<u8> {
        self.pty.index.to_string().into_bytes()
    }
}

fn open_slave(pty: &Arc<Pty>) -> Arc<dyn FileDescription> {
    let mut st = pty.lock();
    st.slave_opens += 1;
    st.slave_closed = false;
    drop(st);
    pty.changed();
    Arc::new(Slave { pty: pty.clone() })
}

/// Which end a terminal file is.
fn terminal_impl(pty: &Pty, master: bool) -> PtyTerminal<'_> {
    PtyTerminal { pty, master }
}

/// The [`Terminal`] of either end: the attributes are the pair's (Linux's ioctls on the
/// master act on the slave's tty).
pub struct PtyTerminal<'a> {
    pty: &'a Pty,
    master: bool,
}

macro_rules! delegate_terminal {
    ($t:ty, $master:expr) => {
        impl Terminal for $t {
            fn tty_id(&self) -> u64 {
                self.pty.id
            }
            fn is_pty_master(&self) -> bool {
                $master
            }
            fn attrs(&self, layout: Layout) -> Result<Vec<u8>, Errno> {
                terminal_impl(&self.pty, $master).attrs(layout)
            }
            fn set_attrs(&self, layout: Layout, when: When, attrs: &[u8]) -> Result<(), Errno> {
                terminal_impl(&self.pty, $master).set_attrs(layout, when, attrs)
            }
            fn window_size(&self) -> Result<WinSize, Errno> {
                Ok(self.pty.lock().winsize)
            }
            fn set_window_size(&self, ws: &WinSize) -> Result<(), Errno> {
                self.pty.lock().winsize = *ws;
                Ok(())
            }
            fn flush(&self, queue: i32) -> Result<(), Errno> {
                terminal_impl(&self.pty, $master).flush(queue)
            }
            fn flow(&self, action: i32) -> Result<(), Errno> {
                terminal_impl(&self.pty, $master).flow(action)
            }
            fn send_break(&self, _arg: i32, _posix: bool) -> Result<(), Errno> {
                // A pty has no line to break: Linux drains and returns.
                Ok(())
            }
            fn output_queued(&self) -> Result<u32, Errno> {
                // Linux's pty_chars_in_buffer says 0 since 4.x.
                Ok(0)
            }
            fn line_discipline(&self) -> Result<u32, Errno> {
                Ok(0)
            }
        }
    };
}

delegate_terminal!(Master, true);
delegate_terminal!(Slave, false);

impl PtyTerminal<'_> {
    fn attrs(&self, layout: Layout) -> Result<Vec<u8>, Errno> {
        Ok(self.pty.lock().termios.encode(layout))
    }

    fn set_attrs(&self, layout: Layout, when: When, attrs: &[u8]) -> Result<(), Errno> {
        let mut st = self.pty.lock();
        let mut t = st.termios;
        t.decode(layout, attrs)?;
        if when == When::Flush {
            st.flush_input();
        }
        st.set_termios(t);
        drop(st);
        self.pty.changed();
        Ok(())
    }

    /// TCFLSH: TCIFLUSH is what this end reads, TCOFLUSH what it wrote.
    fn flush(&self, queue: i32) -> Result<(), Errno> {
        let (input, output) = match queue {
            libc::TCIFLUSH => (true, false),
            libc::TCOFLUSH => (false, true),
            libc::TCIOFLUSH => (true, true),
            _ => return Err(libc::EINVAL),
        };
        let mut st = self.pty.lock();
        // The slave reads `input` and writes `output`; the master the other way round.
        let (slave_in, slave_out) = if self.master {
            (output, input)
        } else {
            (input, output)
        };
        if slave_in {
            st.flush_input();
        }
        if slave_out {
            st.output.clear();
        }
        drop(st);
        self.pty.changed();
        Ok(())
    }

    /// TCXONC: TCOOFF and TCOON stop and restart output; TCIOFF and TCION (sending STOP
    /// and START characters) have nobody to send to.
    fn flow(&self, action: i32) -> Result<(), Errno> {
        match action {
            libc::TCOOFF => self.pty.lock().stopped = true,
            libc::TCOON => self.pty.lock().stopped = false,
            libc::TCIOFF | libc::TCION => {}
            _ => return Err(libc::EINVAL),
        }
        self.pty.changed();
        Ok(())
    }
}

impl FileDescription for Master {
    fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        self.pty.master_read(buf, false)
    }
    fn write(&self, buf: &[u8]) -> Result<usize, Errno> {
        self.pty.master_write(buf, false)
    }
    fn read_with_flags(&self, buf: &mut [u8], flags: u32) -> Result<usize, Errno> {
        self.pty
            .master_read(buf, flags & libc::O_NONBLOCK as u32 != 0)
    }
    fn write_with_flags(&self, buf: &[u8], flags: u32) -> Result<usize, Errno> {
        self.pty
            .master_write(buf, flags & libc::O_NONBLOCK as u32 != 0)
    }
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(ptmx_stat(self.pty.dev()))
    }
    fn terminal(&self) -> Option<&dyn Terminal> {
        Some(self)
    }
    fn may_block(&self) -> bool {
        true
    }
    fn bytes_available(&self) -> Result<u32, Errno> {
        Ok(self.pty.lock().output.len() as u32)
    }
    fn readiness(&self, mask: u32) -> u32 {
        self.pty.master_readiness(mask)
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.pty.queue)
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

impl FileDescription for Slave {
    fn read(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        self.pty.slave_read(buf, false)
    }
    fn write(&self, buf: &[u8]) -> Result<usize, Errno> {
        self.pty.slave_write(buf, false)
    }
    fn read_with_flags(&self, buf: &mut [u8], flags: u32) -> Result<usize, Errno> {
        self.pty
            .slave_read(buf, flags & libc::O_NONBLOCK as u32 != 0)
    }
    fn write_with_flags(&self, buf: &[u8], flags: u32) -> Result<usize, Errno> {
        self.pty
            .slave_write(buf, flags & libc::O_NONBLOCK as u32 != 0)
    }
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.pty.slave_stat())
    }
    fn terminal(&self) -> Option<&dyn Terminal> {
        Some(self)
    }
    fn may_block(&self) -> bool {
        true
    }
    fn bytes_available(&self) -> Result<u32, Errno> {
        let st = self.pty.lock();
        let n = if st.termios.canonical() {
            st.lines.iter().sum::<usize>()
        } else {
            st.input.len()
        };
        Ok(n as u32)
    }
    fn readiness(&self, mask: u32) -> u32 {
        self.pty.slave_readiness(mask)
    }
    fn wait_queue(&self) -> Option<&WaitQueue> {
        Some(&self.pty.queue)
    }
}

fn ptmx_stat(dev: u64) -> Stat {
    Stat {
        dev,
        ino: 2,
        nlink: 1,
        mode: libc::S_IFCHR | 0o666,
        rdev: PTMX,
        blksize: 1024,
        ..Default::default()
    }
}

/// The root directory: `ptmx` and a node per live pair.
struct Dir {
    fs: Arc<Devpts>,
}

/// /dev/pts/ptmx.
struct PtmxNode {
    fs: Arc<Devpts>,
}

/// /dev/pts/N.
struct SlaveNode {
    pty: Arc<Pty>,
}

impl Inode for Dir {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(Stat {
            dev: self.fs.dev,
            ino: 1,
            nlink: 2,
            mode: libc::S_IFDIR | 0o755,
            blksize: 1024,
            ..Default::default()
        })
    }
    fn file_type(&self) -> FileType {
        FileType::Directory
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn lookup(&self, name: &[u8]) -> Result<Arc<dyn Inode>, Errno> {
        if name == b"ptmx" {
            return Ok(Arc::new(PtmxNode {
                fs: self.fs.clone(),
            }));
        }
        let index = std::str::from_utf8(name)
            .ok()
            .filter(|s| !s.starts_with('0') || s.len() == 1)
            .and_then(|s| s.parse::<u32>().ok())
            .ok_or(libc::ENOENT)?;
        if let Some(console) = self.fs.console(index) {
            return Ok(console.node());
        }
        let pty = self.fs.get(index).ok_or(libc::ENOENT)?;
        Ok(Arc::new(SlaveNode { pty }))
    }
    fn readdir(&self) -> Result<Vec<DirEntry>, Errno> {
        let mut v = vec![DirEntry {
            name: b"ptmx".to_vec(),
            ino: 2,
            file_type: FileType::CharDevice,
        }];
        let mut live: Vec<u32> = lock(&self.fs.ptys).keys().copied().collect();
        live.extend(lock(&self.fs.consoles).keys().copied());
        live.sort_unstable();
        for i in live {
            if self.fs.get(i).is_some() || self.fs.console(i).is_some() {
                v.push(DirEntry {
                    name: i.to_string().into_bytes(),
                    ino: i as u64 + 3,
                    file_type: FileType::CharDevice,
                });
            }
        }
        Ok(v)
    }
    fn create(
        &self,
        _: &[u8],
        _: crate::vfs::NewNode,
        _: u32,
        _: crate::vfs::Owner,
    ) -> Result<Arc<dyn Inode>, Errno> {
        Err(libc::EACCES)
    }
    fn unlink(&self, _: &[u8], _: bool) -> Result<(), Errno> {
        Err(libc::EACCES)
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        Ok(StatFs {
            fs_type: DEVPTS_MAGIC,
            block_size: 4096,
            name_max: 255,
            ..Default::default()
        })
    }
    fn cache_children(&self) -> bool {
        false
    }
}

impl Inode for PtmxNode {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(ptmx_stat(self.fs.dev))
    }
    fn file_type(&self) -> FileType {
        FileType::CharDevice
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn open(&self, _flags: i32) -> Result<Option<Arc<dyn FileDescription>>, Errno> {
        let pty = self.fs.allocate()?;
        Ok(Some(Arc::new(Master { pty })))
    }
    fn statfs(&self) -> Result<StatFs, Errno> {
        Dir {
            fs: self.fs.clone(),
        }
        .statfs()
    }
}

impl Inode for SlaveNode {
    fn stat(&self) -> Result<Stat, Errno> {
        Ok(self.pty.slave_stat())
    }
    fn file_type(&self) -> FileType {
        FileType::CharDevice
    }
    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
    fn open(&self, _flags: i32) -> Result<Option<Arc<dyn FileDescription>>, Errno> {
        let st = self.pty.lock();
        // A locked or hung-up pair can't be opened (pty_unix98_install / tty_open: EIO).
        if st.locked || !st.master_open {
            return Err(libc::EIO);
        }
        drop(st);
        Ok(Some(open_slave(&self.pty)))
    }
    fn setattr(&self, attr: &SetAttr) -> Result<(), Errno> {
        if attr.size.is_some() {
            return Err(libc::EINVAL);
        }
        let mut st = self.pty.lock();
        if let Some(m) = attr.mode {
            st.mode = m & 0o7777;
        }
        if let Some(u) = attr.uid {
            st.uid = u;
        }
        if let Some(g) = attr.gid {
            st.gid = g;
        }
        st.times = now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (
        Arc<Devpts>,
        Arc<dyn FileDescription>,
        Arc<dyn FileDescription>,
    ) {
        let fs = Devpts::new(makedev(0, 99), 0o620, 5);
        let root = fs.root();
        let m = root.lookup(b"ptmx").unwrap().open(0).unwrap().unwrap();
        assert_eq!(
            root.lookup(b"0").unwrap().open(0).err(),
            Some(libc::EIO),
            "a new pair is locked"
        );
        m.as_any()
            .unwrap()
            .downcast_ref::<Master>()
            .unwrap()
            .set_locked(false);
        let s = root.lookup(b"0").unwrap().open(0).unwrap().unwrap();
        (fs, m, s)
    }

    fn read_all(f: &Arc<dyn FileDescription>) -> Vec<u8> {
        let mut buf = [0u8; 256];
        match f.read_with_flags(&mut buf, libc::O_NONBLOCK as u32) {
            Ok(n) => buf[..n].to_vec(),
            Err(_) => Vec::new(),
        }
    }

    #[test]
    fn canonical_echo_and_erase() {
        let (_fs, m, s) = pair();
        m.write(b"abd\x7fc\r").unwrap();
        assert_eq!(read_all(&m), b"abd\x08 \x08c\r\n");
        assert_eq!(read_all(&s), b"abc\n");
        s.write(b"x\ny").unwrap();
        assert_eq!(read_all(&m), b"x\r\ny");
        // VEOF: a partial line, then an empty one reads as end of file.
        m.write(b"ab\x04\x04").unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(s.read(&mut buf), Ok(2));
        assert_eq!(s.read(&mut buf), Ok(0));
    }

    #[test]
    fn raw_mode_and_hangup() {
        let (fs, m, s) = pair();
        let t = s.terminal().unwrap();
        let mut attrs = Termios::slave_default();
        attrs.lflag = 0;
        attrs.iflag = 0;
        attrs.oflag = 0;
        attrs.cc[VMIN] = 1;
        t.set_attrs(Layout::Termios, When::Now, &attrs.encode(Layout::Termios))
            .unwrap();
        m.write(b"a\r\x03").unwrap();
        assert_eq!(read_all(&s), b"a\r\x03");
        assert!(read_all(&m).is_empty());
        drop(s);
        let mut buf = [0u8; 4];
        assert_eq!(m.read(&mut buf), Err(libc::EIO));
        assert_eq!(fs.root().readdir().unwrap().len(), 2);
        drop(m);
        assert_eq!(fs.root().readdir().unwrap().len(), 1);
        assert_eq!(fs.root().lookup(b"0").err(), Some(libc::ENOENT));
    }

    #[test]
    fn termios_round_trip() {
        let t = Termios::slave_default();
        for l in [Layout::Termio, Layout::Termios, Layout::Termios2] {
            let b = t.encode(l);
            assert_eq!(b.len(), l.size());
            let mut u = t;
            u.decode(l, &b).unwrap();
            assert_eq!(u, t);
        }
    }
}
