//! Terminals: the line-discipline operations a terminal file offers, in the kernel's own
//! structures (not libc's). The sentry owns what belongs to processes (controlling terminal,
//! foreground process group, session); a [`Terminal`] only reads and changes the device.
//!
//! The kernel's `struct termios` is 36 bytes (four flag words, `c_line`, 19 control
//! characters), `struct termios2` adds the two speeds (44), and the old `struct termio` is
//! 18. glibc's `struct termios` (60 bytes, 32 control characters and the speeds) is a
//! user-space type that glibc converts to and from the kernel's: never copy that size.

use crate::Errno;

/// One of the kernel's terminal attribute structures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `struct termio` (TCGETA, TCSETA*).
    Termio,
    /// `struct termios` (TCGETS, TCSETS*).
    Termios,
    /// `struct termios2` (TCGETS2, TCSETS2*).
    Termios2,
}

impl Layout {
    /// The structure's size in bytes.
    pub const fn size(self) -> usize {
        match self {
            Layout::Termio => 18,
            Layout::Termios => 36,
            Layout::Termios2 => 44,
        }
    }
}

/// When new attributes take effect (the TCSETS, TCSETSW and TCSETSF forms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Now,
    /// After the output queued so far is written.
    Drain,
    /// After draining, discarding unread input.
    Flush,
}

/// `struct winsize`: rows, columns, and the two pixel sizes, each a u16.
pub type WinSize = [u8; 8];

/// The device side of a terminal.
pub trait Terminal: Send + Sync {
    /// Identifies the device (the same terminal through several files gives the same id).
    fn tty_id(&self) -> u64;
    /// Whether this is the master end of a pseudo-terminal: never a controlling terminal
    /// for job control's purposes (reading it raises no SIGTTIN).
    fn is_pty_master(&self) -> bool {
        false
    }
    /// TCGETS, TCGETS2, TCGETA: the attributes in `layout` (exactly `layout.size()` bytes).
    fn attrs(&self, layout: Layout) -> Result<Vec<u8>, Errno>;
    /// TCSETS*, TCSETS2*, TCSETA*: `attrs` holds exactly `layout.size()` bytes.
    fn set_attrs(&self, layout: Layout, when: When, attrs: &[u8]) -> Result<(), Errno>;
    /// TIOCGWINSZ.
    fn window_size(&self) -> Result<WinSize, Errno>;
    /// TIOCSWINSZ.
    fn set_window_size(&self, ws: &WinSize) -> Result<(), Errno>;
    /// TCFLSH: TCIFLUSH, TCOFLUSH or TCIOFLUSH.
    fn flush(&self, queue: i32) -> Result<(), Errno>;
    /// TCXONC: TCOOFF, TCOON, TCIOFF or TCION.
    fn flow(&self, action: i32) -> Result<(), Errno>;
    /// TCSBRK (`posix` false: 0 sends a break, anything else drains the output) and TCSBRKP
    /// (a break of `arg` tenths of a second, 0 meaning a quarter second).
    fn send_break(&self, arg: i32, posix: bool) -> Result<(), Errno>;
    /// TIOCOUTQ: bytes written and not yet sent.
    fn output_queued(&self) -> Result<u32, Errno>;
    /// TIOCGETD: the line discipline number.
    fn line_discipline(&self) -> Result<u32, Errno>;
}
