//! An IPC namespace's System V limits that root may change: /proc/sys/kernel/{shmmax,
//! shmall, shmmni, msgmax, msgmnb, msgmni, sem}, as Linux keeps them per namespace
//! (`struct ipc_namespace`'s shm_ctl*, msg_ctl* and sem_ctls). They start at Linux's
//! defaults (`super::limits`) and change by a write of the file (the guest's root), or by
//! the OCI bundle's `linux.sysctl` before the container starts. The fixed limits (SHMMIN,
//! SEMVMX, SEMAEM) stay in `super::limits`.

use std::sync::atomic::{AtomicU64, Ordering};

use super::{limits, IPCMNI};
use crate::errno::Errno;

/// The files, in /proc/sys/kernel.
pub const NAMES: &[&str] = &[
    "shmmax", "shmall", "shmmni", "msgmax", "msgmnb", "msgmni", "sem",
];

/// The limits of one IPC namespace.
pub struct Tunables {
    shmmax: AtomicU64,
    shmall: AtomicU64,
    shmmni: AtomicU64,
    msgmax: AtomicU64,
    msgmnb: AtomicU64,
    msgmni: AtomicU64,
    /// SEMMSL, SEMMNS, SEMOPM, SEMMNI: the order of /proc/sys/kernel/sem.
    sem: [AtomicU64; 4],
}

impl Default for Tunables {
    fn default() -> Self {
        let v = |x: u64| AtomicU64::new(x);
        Tunables {
            shmmax: v(limits::SHMMAX),
            shmall: v(limits::SHMALL),
            shmmni: v(limits::SHMMNI as u64),
            msgmax: v(limits::MSGMAX as u64),
            msgmnb: v(limits::MSGMNB as u64),
            msgmni: v(limits::MSGMNI as u64),
            sem: [
                v(limits::SEMMSL as u64),
                v(limits::SEMMNS as u64),
                v(limits::SEMOPM as u64),
                v(limits::SEMMNI as u64),
            ],
        }
    }
}

/// The largest value an `int` sysctl takes.
const INT_MAX: u64 = i32::MAX as u64;

impl Tunables {
    pub fn shmmax(&self) -> u64 {
        self.shmmax.load(Ordering::Relaxed)
    }
    pub fn shmall(&self) -> u64 {
        self.shmall.load(Ordering::Relaxed)
    }
    pub fn shmmni(&self) -> usize {
        self.shmmni.load(Ordering::Relaxed) as usize
    }
    pub fn msgmax(&self) -> usize {
        self.msgmax.load(Ordering::Relaxed) as usize
    }
    pub fn msgmnb(&self) -> usize {
        self.msgmnb.load(Ordering::Relaxed) as usize
    }
    pub fn msgmni(&self) -> usize {
        self.msgmni.load(Ordering::Relaxed) as usize
    }
    pub fn semmsl(&self) -> usize {
        self.sem[0].load(Ordering::Relaxed) as usize
    }
    pub fn semmns(&self) -> usize {
        self.sem[1].load(Ordering::Relaxed) as usize
    }
    pub fn semopm(&self) -> usize {
        self.sem[2].load(Ordering::Relaxed) as usize
    }
    pub fn semmni(&self) -> usize {
        self.sem[3].load(Ordering::Relaxed) as usize
    }

    /// The text of file `name` (one of [`NAMES`]), as Linux prints it.
    pub fn text(&self, name: &str) -> Option<String> {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Some(match name {
            "sem" => {
                let [a, b, c, d] = self.sem.each_ref().map(get);
                format!("{a}\t{b}\t{c}\t{d}\n")
            }
            _ => format!("{}\n", get(self.field(name)?.0)),
        })
    }

    /// A write of `text` to file `name`, parsed as Linux's proc_dointvec parses it: the
    /// file's numbers (four for `sem`, one otherwise), decimal, separated by white space,
    /// anything after them ignored; at least one. Ranges: an `int` field 0..=INT_MAX, the
    /// number of objects at most IPCMNI, the `unsigned long` ones any value; EINVAL
    /// otherwise, changing nothing, but for `sem`, where as in Linux's
    /// proc_ipc_sem_dointvec a semmni past IPCMNI is ERANGE and leaves the other three set. (Linux takes
    /// a negative `int` in `sem`; here it is EINVAL.)
    pub fn set(&self, name: &str, text: &[u8]) -> Result<(), Errno> {
        let count = if name == "sem" { 4 } else { 1 };
        let numbers = parse_numbers(text, count)?;
        if name == "sem" {
            // Fewer than four leave the rest as they were, as Linux's proc_dointvec does.
            if numbers.iter().any(|&n| n > INT_MAX) {
                return Err(Errno::EINVAL);
            }
            for (slot, &n) in self.sem.iter().zip(&numbers).take(3) {
                slot.store(n, Ordering::Relaxed);
            }
            return match numbers.get(3) {
                Some(&n) if n > IPCMNI as u64 => Err(Errno(libc::ERANGE)),
                Some(&n) => {
                    self.sem[3].store(n, Ordering::Relaxed);
                    Ok(())
                }
                None => Ok(()),
            };
        }
        let (slot, max) = self.field(name).ok_or(Errno::ENOENT)?;
        match numbers[..] {
            [n] if n <= max => {
                slot.store(n, Ordering::Relaxed);
                Ok(())
            }
            _ => Err(Errno::EINVAL),
        }
    }

    /// The single-number field `name` and its largest value.
    fn field(&self, name: &str) -> Option<(&AtomicU64, u64)> {
        Some(match name {
            "shmmax" => (&self.shmmax, u64::MAX),
            "shmall" => (&self.shmall, u64::MAX),
            "shmmni" => (&self.shmmni, IPCMNI as u64),
            "msgmax" => (&self.msgmax, INT_MAX),
            "msgmnb" => (&self.msgmnb, INT_MAX),
            "msgmni" => (&self.msgmni, IPCMNI as u64),
            _ => return None,
        })
    }
}

/// Up to `count` numbers of a sysctl write, as Linux's proc_get_long reads them: white
/// space first, then digits in base 0 (`0x` hexadecimal, a leading `0` octal, decimal
/// otherwise; no sign), each followed by a space, a tab, a newline or the end; at least
/// one. What follows the last one taken is not looked at.
fn parse_numbers(text: &[u8], count: usize) -> Result<Vec<u64>, Errno> {
    let mut numbers = Vec::new();
    let mut rest = text;
    while numbers.len() < count {
        while let [c, tail @ ..] = rest {
            if !c.is_ascii_whitespace() && *c != 0x0b {
                break;
            }
            rest = tail;
        }
        if rest.is_empty() {
            break;
        }
        let (radix, digits) = match rest {
            [b'0', b'x' | b'X', tail @ ..] => (16, tail),
            [b'0', tail @ ..] if tail.first().is_some_and(u8::is_ascii_digit) => (8, tail),
            _ => (10, rest),
        };
        let len = digits
            .iter()
            .take_while(|c| (**c as char).is_digit(radix))
            .count();
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let (number, tail) = digits.split_at(len);
        let number = std::str::from_utf8(number).map_err(|_| Errno::EINVAL)?;
        numbers.push(u64::from_str_radix(number, radix).map_err(|_| Errno::EINVAL)?);
        if !matches!(tail.first(), None | Some(b' ' | b'\t' | b'\n')) {
            return Err(Errno::EINVAL);
        }
        rest = tail;
    }
    if numbers.is_empty() {
        return Err(Errno::EINVAL);
    }
    Ok(numbers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_read_and_write_as_linux_parses_them() {
        let t = Tunables::default();
        assert_eq!(t.text("msgmax").as_deref(), Some("8192\n"));
        assert_eq!(
            t.text("sem").as_deref(),
            Some("32000\t1024000000\t500\t32000\n")
        );
        assert_eq!(t.set("shmmax", b"1048576\n"), Ok(()));
        assert_eq!(t.shmmax(), 1_048_576);
        assert_eq!(t.set("sem", b"250 32000 32 128"), Ok(()));
        assert_eq!(
            (t.semmsl(), t.semmns(), t.semopm(), t.semmni()),
            (250, 32000, 32, 128)
        );
        assert_eq!(t.set("sem", b"100"), Ok(()));
        assert_eq!((t.semmsl(), t.semopm()), (100, 32));
        // What follows the file's numbers is ignored.
        assert_eq!(t.set("sem", b"1 2 3 4 5"), Ok(()));
        assert_eq!((t.semmsl(), t.semmni()), (1, 4));
        assert_eq!(t.set("msgmax", b"7 x"), Ok(()));
        assert_eq!(t.msgmax(), 7);
        assert_eq!(t.set("msgmnb", b"0x10\n"), Ok(()));
        assert_eq!(t.msgmnb(), 16);
        assert_eq!(t.set("msgmnb", b"010"), Ok(()));
        assert_eq!(t.msgmnb(), 8);
        for (name, bad) in [
            ("msgmax", &b"+5"[..]),
            ("msgmax", b"5\r"),
            ("sem", b"1 2 3 3000000000"),
            ("msgmax", b"-1"),
            ("msgmax", b"2147483648"),
            ("msgmni", b"32769"),
            ("shmmax", b"12x"),
            ("shmmax", b""),
            ("sem", b" "),
        ] {
            assert_eq!(t.set(name, bad), Err(Errno::EINVAL), "{name} {bad:?}");
        }
        assert_eq!(t.msgmax(), 7);
        // A semmni past IPCMNI: ERANGE, the other three set all the same (as Linux).
        assert_eq!(t.set("sem", b"5 6 7 40000"), Err(Errno(libc::ERANGE)));
        assert_eq!(
            (t.semmsl(), t.semmns(), t.semopm(), t.semmni()),
            (5, 6, 7, 4)
        );
        assert_eq!(t.set("nosuch", b"1"), Err(Errno::ENOENT));
    }
}
