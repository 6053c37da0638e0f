//! An IPC namespace's limits that root may change, as Linux keeps them per namespace
//! (`struct ipc_namespace`): the System V ones of /proc/sys/kernel/{shmmax, shmall, shmmni,
//! msgmax, msgmnb, msgmni, sem}, kernel.shm_rmid_forced (ipc/ipc_sysctl.c), and the POSIX
//! message queue ones of /proc/sys/fs/mqueue/{queues_max, msg_max, msgsize_max,
//! msg_default, msgsize_default} (ipc/mq_sysctl.c). They start at Linux's defaults
//! (`super::limits`) and change by a write of the file (the guest's root), or by the OCI
//! bundle's `linux.sysctl` before the container starts; a write goes through
//! [`super::IpcNs::set_sysctl`], which also does what shm_rmid_forced's write does. The
//! fixed limits (SHMMIN, SEMVMX, SEMAEM, HARD_MSGMAX, ...) stay in `super::limits`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use super::{limits, IPCMNI};
use crate::errno::Errno;

/// The files in /proc/sys/kernel.
pub const NAMES: &[&str] = &[
    "shmmax",
    "shmall",
    "shmmni",
    "msgmax",
    "msgmnb",
    "msgmni",
    "sem",
    "shm_rmid_forced",
];

/// The files in /proc/sys/fs/mqueue.
pub const MQUEUE_NAMES: &[&str] = &[
    "queues_max",
    "msg_max",
    "msgsize_max",
    "msg_default",
    "msgsize_default",
];

/// The limits of one IPC namespace.
pub struct Tunables {
    shmmax: AtomicU64,
    shmall: AtomicU64,
    shmmni: AtomicI64,
    msgmax: AtomicI64,
    msgmnb: AtomicI64,
    msgmni: AtomicI64,
    /// SEMMSL, SEMMNS, SEMOPM, SEMMNI: the order of /proc/sys/kernel/sem.
    sem: [AtomicU64; 4],
    shm_rmid_forced: AtomicI64,
    /// An `int` Linux lets take any value, negative ones too (proc_dointvec), shown as
    /// written, but compared as the unsigned int it is kept in (-1: no limit).
    mq_queues_max: AtomicI64,
    mq_msg_max: AtomicI64,
    mq_msgsize_max: AtomicI64,
    mq_msg_default: AtomicI64,
    mq_msgsize_default: AtomicI64,
}

impl Default for Tunables {
    fn default() -> Self {
        let v = |x: u64| AtomicU64::new(x);
        let i = |x: i64| AtomicI64::new(x);
        Tunables {
            shmmax: v(limits::SHMMAX),
            shmall: v(limits::SHMALL),
            shmmni: i(limits::SHMMNI as i64),
            msgmax: i(limits::MSGMAX as i64),
            msgmnb: i(limits::MSGMNB as i64),
            msgmni: i(limits::MSGMNI as i64),
            sem: [
                v(limits::SEMMSL as u64),
                v(limits::SEMMNS as u64),
                v(limits::SEMOPM as u64),
                v(limits::SEMMNI as u64),
            ],
            shm_rmid_forced: i(0),
            mq_queues_max: i(limits::MQ_QUEUES_MAX),
            mq_msg_max: i(limits::MQ_MSG_MAX),
            mq_msgsize_max: i(limits::MQ_MSGSIZE_MAX),
            mq_msg_default: i(limits::MQ_MSG_DEFAULT),
            mq_msgsize_default: i(limits::MQ_MSGSIZE_DEFAULT),
        }
    }
}

/// The largest value an `int` sysctl takes.
const INT_MAX: u64 = i32::MAX as u64;
const INT_MIN: i64 = i32::MIN as i64;

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
    /// kernel.shm_rmid_forced: segments go at their last detach, IPC_RMID or not.
    pub fn shm_rmid_forced(&self) -> bool {
        self.shm_rmid_forced.load(Ordering::Relaxed) != 0
    }
    pub fn mq_queues_max(&self) -> i64 {
        self.mq_queues_max.load(Ordering::Relaxed)
    }
    pub fn mq_msg_max(&self) -> i64 {
        self.mq_msg_max.load(Ordering::Relaxed)
    }
    pub fn mq_msgsize_max(&self) -> i64 {
        self.mq_msgsize_max.load(Ordering::Relaxed)
    }
    pub fn mq_msg_default(&self) -> i64 {
        self.mq_msg_default.load(Ordering::Relaxed)
    }
    pub fn mq_msgsize_default(&self) -> i64 {
        self.mq_msgsize_default.load(Ordering::Relaxed)
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
            "shmmax" => format!("{}\n", get(&self.shmmax)),
            "shmall" => format!("{}\n", get(&self.shmall)),
            _ => format!("{}\n", self.int_field(name)?.0.load(Ordering::Relaxed)),
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
        let signed = parse_numbers(text, count)?;
        // Only an `int` file other than sem takes a sign (see `int_field`).
        let unsigned = || -> Result<Vec<u64>, Errno> {
            signed
                .iter()
                .map(|&(neg, n)| if neg { Err(Errno::EINVAL) } else { Ok(n) })
                .collect()
        };
        if name == "sem" {
            let numbers = unsigned()?;
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
        let ulong = match name {
            "shmmax" => Some(&self.shmmax),
            "shmall" => Some(&self.shmall),
            _ => None,
        };
        if let Some(slot) = ulong {
            slot.store(unsigned()?[0], Ordering::Relaxed);
            return Ok(());
        }
        let (slot, min, max) = self.int_field(name).ok_or(Errno::ENOENT)?;
        // Linux's do_proc_dointvec_conv: an `int` first (INT_MIN..=INT_MAX), then the
        // file's range (proc_dointvec_minmax).
        let value = match signed[0] {
            (false, n) if n <= INT_MAX => n as i64,
            (true, n) if n <= INT_MAX + 1 => -(n as i64),
            _ => return Err(Errno::EINVAL),
        };
        if !(min..=max).contains(&value) {
            return Err(Errno::EINVAL);
        }
        slot.store(value, Ordering::Relaxed);
        Ok(())
    }

    /// The `int` file `name` and its range, as Linux's table gives them: the System V
    /// ones 0 up to INT_MAX or IPCMNI (proc_ipc_dointvec_minmax), shm_rmid_forced 0 or 1,
    /// the mqueue ones mq_sysctl.c's (queues_max any `int`; msg_max and msg_default
    /// 1..=HARD_MSGMAX; msgsize_max and msgsize_default 128..=HARD_MSGSIZEMAX).
    fn int_field(&self, name: &str) -> Option<(&AtomicI64, i64, i64)> {
        let int_max = INT_MAX as i64;
        let mni = IPCMNI as i64;
        let (msgs, sizes) = (
            (limits::MIN_MSGMAX, limits::HARD_MSGMAX),
            (limits::MIN_MSGSIZEMAX, limits::HARD_MSGSIZEMAX),
        );
        let (slot, (min, max)) = match name {
            "shmmni" => (&self.shmmni, (0, mni)),
            "msgmax" => (&self.msgmax, (0, int_max)),
            "msgmnb" => (&self.msgmnb, (0, int_max)),
            "msgmni" => (&self.msgmni, (0, mni)),
            "shm_rmid_forced" => (&self.shm_rmid_forced, (0, 1)),
            "queues_max" => (&self.mq_queues_max, (INT_MIN, int_max)),
            "msg_max" => (&self.mq_msg_max, msgs),
            "msg_default" => (&self.mq_msg_default, msgs),
            "msgsize_max" => (&self.mq_msgsize_max, sizes),
            "msgsize_default" => (&self.mq_msgsize_default, sizes),
            _ => return None,
        };
        Some((slot, min, max))
    }
}

/// Up to `count` numbers of a sysctl write, as Linux's proc_get_long reads them: white
/// space first, then a `-` (when something follows it) and digits in base 0 (`0x`
/// hexadecimal, a leading `0` octal, decimal otherwise), each followed by a space, a tab, a
/// newline or the end; at least one. What follows the last one taken is not looked at.
/// Each is (negative, magnitude).
fn parse_numbers(text: &[u8], count: usize) -> Result<Vec<(bool, u64)>, Errno> {
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
        let neg = matches!(rest, [b'-', _, ..]);
        if neg {
            rest = &rest[1..];
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
        let magnitude = u64::from_str_radix(number, radix).map_err(|_| Errno::EINVAL)?;
        numbers.push((neg, magnitude));
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

    #[test]
    fn mqueue_files_and_shm_rmid_forced_take_linux_ranges() {
        let t = Tunables::default();
        for (name, text) in [
            ("queues_max", "256\n"),
            ("msg_max", "10\n"),
            ("msgsize_max", "8192\n"),
            ("msg_default", "10\n"),
            ("msgsize_default", "8192\n"),
            ("shm_rmid_forced", "0\n"),
        ] {
            assert_eq!(t.text(name).as_deref(), Some(text), "{name}");
        }
        // queues_max is a plain int (proc_dointvec): negative ones too.
        assert_eq!(t.set("queues_max", b"-1\n"), Ok(()));
        assert_eq!(t.text("queues_max").as_deref(), Some("-1\n"));
        assert_eq!(t.set("queues_max", b"-2147483648"), Ok(()));
        assert_eq!(t.mq_queues_max(), i32::MIN as i64);
        assert_eq!(t.set("msg_max", b"65536"), Ok(()));
        assert_eq!(t.set("msgsize_max", b"128"), Ok(()));
        assert_eq!(t.set("msg_default", b"1"), Ok(()));
        assert_eq!(t.set("msgsize_default", b"16777216"), Ok(()));
        assert_eq!(t.set("shm_rmid_forced", b"1"), Ok(()));
        assert!(t.shm_rmid_forced());
        for (name, bad) in [
            ("queues_max", &b"2147483648"[..]),
            ("queues_max", b"-2147483649"),
            ("queues_max", b"-"),
            ("queues_max", b"--1"),
            ("msg_max", b"0"),
            ("msg_max", b"65537"),
            ("msg_max", b"-1"),
            ("msg_default", b"0"),
            ("msgsize_max", b"127"),
            ("msgsize_max", b"16777217"),
            ("msgsize_default", b"127"),
            ("shm_rmid_forced", b"2"),
            ("shm_rmid_forced", b"-1"),
            ("shmmax", b"-1"),
        ] {
            assert_eq!(t.set(name, bad), Err(Errno::EINVAL), "{name} {bad:?}");
        }
        assert_eq!(
            (
                t.mq_msg_max(),
                t.mq_msgsize_max(),
                t.mq_msg_default(),
                t.mq_msgsize_default()
            ),
            (65536, 128, 1, 16 << 20)
        );
    }
}
