//! System administration calls the sandbox answers itself: sethostname and setdomainname
//! change the sandbox's own UTS names (never the host's); settimeofday, clock_settime,
//! adjtimex and clock_adjtime may read but never set the clock, which is the host's.
//! Also the advice calls about file access (posix_fadvise, readahead), which have nothing
//! to change in the sandbox's file systems and only check their arguments as Linux.

use platform::UserRegs;

use crate::caps::Cap;
use crate::errno::{Errno, SysResult};
use crate::task::TaskState;

/// Linux's __NEW_UTS_LEN.
const UTS_LEN: u64 = 64;

/// Reads the name argument of sethostname and setdomainname with Linux's checks, in its
/// order: CAP_SYS_ADMIN in the user namespace that owns the caller's UTS namespace
/// (EPERM), the length (EINVAL), the memory (EFAULT).
fn uts_name(t: &TaskState, addr: u64, len: u64) -> Result<Vec<u8>, Errno> {
    let owner = t.process.namespaces().uts.owner.clone();
    if !crate::caps::ns_capable(&t.creds, &owner, Cap::SysAdmin) {
        return Err(Errno::EPERM);
    }
    let len = len as i32;
    if len < 0 || len as u64 > UTS_LEN {
        return Err(Errno::EINVAL);
    }
    let mut name = vec![0u8; len as usize];
    t.mm.copy_in(addr, &mut name)?;
    Ok(name)
}

pub fn sethostname(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let name = uts_name(t, a[0], a[1])?;
    let uts = t.process.namespaces().uts;
    if !uts.set(true, &name) {
        t.kernel.procfs.set_hostname(&name);
    }
    Ok(0)
}

pub fn setdomainname(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let name = uts_name(t, a[0], a[1])?;
    let uts = t.process.namespaces().uts;
    if !uts.set(false, &name) {
        t.kernel.procfs.set_domainname(&name);
    }
    Ok(0)
}

/// The clock is the host's: setting it is refused, to every caller, with what an
/// unprivileged caller gets (EPERM), after Linux's argument checks.
pub fn settimeofday(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let (tv, tz) = (a[0], a[1]);
    if tv != 0 {
        let mut b = [0u8; 16];
        t.mm.copy_in(tv, &mut b)?;
        let sec = i64::from_le_bytes(b[..8].try_into().expect("8 bytes"));
        let usec = i64::from_le_bytes(b[8..].try_into().expect("8 bytes"));
        if !(0..1_000_000).contains(&usec) || sec < 0 {
            return Err(Errno::EINVAL);
        }
    }
    if tz != 0 {
        // Its range is checked after the permission, which is never there.
        let mut b = [0u8; 8];
        t.mm.copy_in(tz, &mut b)?;
    }
    Err(Errno::EPERM)
}

pub fn clock_settime(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let id = a[0] as i32;
    // Only CLOCK_REALTIME can be set on Linux; the others are EINVAL, as unknown ids.
    if id != libc::CLOCK_REALTIME {
        return Err(Errno::EINVAL);
    }
    super::time::read_timespec(t, a[1])?;
    Err(Errno::EPERM)
}

/// sizeof(struct timex).
const TIMEX_SIZE: usize = 208;
/// adjtimex modes that only read (Linux's ADJ_OFFSET_SS_READ).
const ADJ_OFFSET_SS_READ: u32 = 0xa001;

/// The host clock's state (adjtimex with modes 0) and adjtimex's answer, read once before
/// the sentry's seccomp filter: the filter forbids adjtimex, whose modes are in memory
/// where a filter can't look (a compromised sentry run as root could otherwise set the
/// host's clock).
struct HostClock {
    timex: libc::timex,
    state: i32,
}

// SAFETY: timex is plain data (integers); the pointer-free struct is shared read-only.
unsafe impl Send for HostClock {}
// SAFETY: as above.
unsafe impl Sync for HostClock {}

static HOST_CLOCK: std::sync::OnceLock<Result<HostClock, i32>> = std::sync::OnceLock::new();

/// Reads the host clock's state for later adjtimex reads. Called while building the
/// sandbox, before the seccomp filter; a sentry without a filter (tests) reads it on first
/// use.
pub fn snapshot_host_clock() {
    HOST_CLOCK.get_or_init(|| {
        // SAFETY: an all-zero timex is valid; modes 0 only reads.
        let mut timex: libc::timex = unsafe { std::mem::zeroed() };
        // SAFETY: timex is a valid, writable timex; with modes 0 the host only reads.
        let state = unsafe { libc::adjtimex(&mut timex) };
        if state < 0 {
            Err(std::io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EIO))
        } else {
            Ok(HostClock { timex, state })
        }
    });
}

/// adjtimex on the realtime clock: a read (modes 0) gives the host clock's state as it was
/// when the sandbox started, with the time of now; any change is EPERM.
fn adjtime(t: &mut TaskState, addr: u64) -> SysResult {
    let mut b = [0u8; TIMEX_SIZE];
    t.mm.copy_in(addr, &mut b)?;
    let modes = u32::from_le_bytes(b[..4].try_into().expect("4 bytes"));
    if modes != 0 && modes != ADJ_OFFSET_SS_READ {
        return Err(Errno::EPERM);
    }
    snapshot_host_clock();
    let host = match HOST_CLOCK.get() {
        Some(Ok(h)) => h,
        Some(Err(e)) => return Err(Errno(*e)),
        None => return Err(Errno(libc::EIO)),
    };
    let mut tx = host.timex;
    let state = host.state;
    let now = super::time::sandbox_clock(t, libc::CLOCK_REALTIME)?;
    tx.time.tv_sec = now.tv_sec;
    // STA_NANO: the kernel gives nanoseconds in the microseconds field.
    tx.time.tv_usec = if tx.status & libc::STA_NANO != 0 {
        now.tv_nsec
    } else {
        now.tv_nsec / 1000
    };
    tx.modes = modes;
    // SAFETY: timex is plain data of TIMEX_SIZE bytes.
    let bytes =
        unsafe { std::slice::from_raw_parts(&tx as *const libc::timex as *const u8, TIMEX_SIZE) };
    t.mm.copy_out(addr, bytes)?;
    Ok(state as u64)
}

pub fn adjtimex(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    adjtime(t, a[0])
}

pub fn clock_adjtime(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    match a[0] as i32 {
        libc::CLOCK_REALTIME => adjtime(t, a[1]),
        // Clocks Linux knows but can't adjust.
        libc::CLOCK_MONOTONIC
        | libc::CLOCK_PROCESS_CPUTIME_ID
        | libc::CLOCK_THREAD_CPUTIME_ID
        | libc::CLOCK_MONOTONIC_RAW
        | libc::CLOCK_REALTIME_COARSE
        | libc::CLOCK_MONOTONIC_COARSE
        | libc::CLOCK_BOOTTIME
        | libc::CLOCK_TAI => Err(Errno(libc::EOPNOTSUPP)),
        _ => Err(Errno::EINVAL),
    }
}

/// posix_fadvise (fadvise64): the advice has no effect on the sandbox's file systems;
/// Linux's errors are given (EBADF, ESPIPE for pipes and FIFOs, EINVAL for bad advice or
/// a negative length).
pub fn fadvise64(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    let (len, advice) = (a[2] as i64, a[3] as i32);
    let st = file.stat().map_err(Errno)?;
    if st.mode & libc::S_IFMT == libc::S_IFIFO {
        return Err(Errno::ESPIPE);
    }
    if len < 0 || !(0..=5).contains(&advice) {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}

/// readahead: nothing to read ahead of (files are in memory or read through the host's
/// cache); EBADF for a descriptor not open for reading, EINVAL for what isn't a regular
/// file.
pub fn readahead(t: &mut TaskState, _: &mut UserRegs, a: [u64; 6]) -> SysResult {
    let file = t.fds.get(a[0])?;
    if !file.readable() {
        return Err(Errno::EBADF);
    }
    let st = file.stat().map_err(Errno)?;
    if st.mode & libc::S_IFMT != libc::S_IFREG {
        return Err(Errno::EINVAL);
    }
    Ok(0)
}
