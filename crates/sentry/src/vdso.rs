//! The vDSO: a small shared object (`vdso/vdso.c`, built by `build.rs`) mapped into every
//! process, with a parameter page (vvar) right below it, so that programs read the time
//! without a system call, as on Linux. A system call costs tens of microseconds on this
//! platform; `rdtsc` and a multiply cost nanoseconds.
//!
//! The time is a function of the time-stamp counter: `CLOCK_MONOTONIC = mono_ns +
//! (tsc - tsc_base) * mult >> 32`, with REALTIME and BOOTTIME at fixed offsets from it. A
//! timekeeper thread rewrites the parameters every second (under a sequence count the vDSO
//! checks), keeping the curve continuous and steering its slope so that it meets the host's
//! clock one interval later: the time never goes backwards and stays within microseconds of
//! the host's. The sentry's own clock system calls use the same parameters (`Vdso::now`), so
//! a program mixing both never sees them disagree.
//!
//! Without a usable counter ([`platform::Platform::guest_tsc`] is None) the parameter page
//! says so and the vDSO makes the system calls.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use platform::{Gpa, GuestTsc, MemoryFile, PlatformError, Prot, PAGE_SIZE};

use crate::mm::{FaultError, MemoryManager, VmaKind};

/// The vDSO image.
static IMAGE: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vdso.so"));

/// Offsets of `struct vvar` in `vdso/vdso.c`.
mod vvar {
    pub const SEQ: u64 = 0;
    pub const ENABLED: u64 = 4;
    pub const TSC_BASE: u64 = 8;
    pub const MONO_NS: u64 = 16;
    pub const REAL_OFF: u64 = 24;
    pub const BOOT_OFF: u64 = 32;
    pub const MULT: u64 = 40;
}

/// How often the timekeeper rewrites the parameters.
const INTERVAL: Duration = Duration::from_secs(1);
/// How far the slope may be steered from the host clock's measured rate (parts per
/// million): enough to absorb measurement noise quickly, little enough to be invisible.
const MAX_SLEW_PPM: u64 = 500;
/// Further behind the host than this, the clock steps forward instead of catching up.
const MAX_LAG_NS: u64 = 1_000_000;

const NS_PER_SEC: u64 = 1_000_000_000;

/// One set of clock parameters (see the module docs).
#[derive(Debug, Clone, Copy)]
struct Params {
    tsc_base: u64,
    mono_ns: u64,
    real_off: i64,
    boot_off: i64,
    mult: u64,
}

impl Params {
    fn monotonic_at(&self, tsc: u64) -> u64 {
        let delta = tsc.saturating_sub(self.tsc_base);
        self.mono_ns + ((u128::from(delta) * u128::from(self.mult)) >> 32) as u64
    }
}

/// Which clock [`Vdso::now`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Clock {
    Realtime,
    Monotonic,
    Boottime,
}

/// The sandbox's vDSO pages and its timekeeper.
pub struct Vdso {
    mem: Arc<MemoryFile>,
    vvar: Gpa,
    text: Vec<Gpa>,
    tsc: Option<GuestTsc>,
    state: Mutex<Timekeeping>,
}

/// The parameters in force, the page's sequence count, and the first (counter, host
/// monotonic) sample, from which the host clock's rate is measured.
#[derive(Default)]
struct Timekeeping {
    seq: u32,
    params: Option<Params>,
    first: Option<(u64, u64)>,
}

impl Vdso {
    /// Puts the vDSO and its parameter page in the memory file and, if the application can
    /// read a time-stamp counter, starts the timekeeper.
    pub fn new(mem: Arc<MemoryFile>, tsc: Option<GuestTsc>) -> Result<Arc<Vdso>, PlatformError> {
        let vvar = mem.alloc_page()?;
        let mut text = Vec::new();
        for chunk in IMAGE.chunks(PAGE_SIZE as usize) {
            let page = mem.alloc_page()?;
            mem.write(page, chunk);
            text.push(page);
        }
        let vdso = Arc::new(Vdso {
            mem,
            vvar,
            text,
            tsc,
            state: Mutex::new(Timekeeping::default()),
        });
        if tsc.is_some() {
            vdso.update();
            let weak = Arc::downgrade(&vdso);
            std::thread::Builder::new()
                .name("timekeeper".into())
                .spawn(move || timekeeper(weak))
                .map_err(|e| PlatformError::Memory(format!("timekeeper thread: {e}")))?;
        }
        Ok(vdso)
    }

    /// Maps the parameter page and the vDSO below the mmap base of `mm`; returns the vDSO's
    /// address (AT_SYSINFO_EHDR).
    pub fn map_into(&self, mm: &mut MemoryManager) -> Result<u64, FaultError> {
        let len = (1 + self.text.len() as u64) * PAGE_SIZE;
        let start = mm
            .find_free(len, mm.mmap_base)
            .ok_or(FaultError::OutOfMemory)?;
        let read = Prot {
            read: true,
            ..Prot::NONE
        };
        mm.map_shared_pages(start, &[self.vvar], read, VmaKind::Vvar)?;
        let text = start + PAGE_SIZE;
        let exec = Prot { exec: true, ..read };
        mm.map_shared_pages(text, &self.text, exec, VmaKind::Vdso)?;
        Ok(text)
    }

    /// The time on `clock`, as the vDSO computes it; None without a usable counter.
    pub fn now(&self, clock: Clock) -> Option<Duration> {
        let tsc = self.tsc?;
        // The counter is read under the lock, so that no update falls between it and the
        // parameters it is used with (see `update`).
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let p = state.params?;
        let mono = p.monotonic_at(host_tsc().wrapping_add(tsc.offset as u64));
        drop(state);
        let ns = match clock {
            Clock::Monotonic => mono,
            Clock::Realtime => mono.wrapping_add(p.real_off as u64),
            Clock::Boottime => mono.wrapping_add(p.boot_off as u64),
        };
        Some(Duration::from_nanos(ns))
    }

    /// Takes a fresh reading of the host's clocks and rewrites the parameters.
    ///
    /// The new curve starts where the old one is at a counter value read after readers are
    /// held off (the sequence count is odd), so no reading, in the vDSO or the sentry, can
    /// come after a larger one taken with the old parameters: the clock never goes back.
    /// Its slope is steered (within [`MAX_SLEW_PPM`] of the host clock's measured rate) to
    /// meet the host's clock one interval later.
    fn update(&self) {
        let Some(tsc) = self.tsc else { return };
        let sample = Sample::take();
        let sample_tsc = sample.tsc.wrapping_add(tsc.offset as u64);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let first = *state.first.get_or_insert((sample_tsc, sample.mono));
        // The host clock's rate in ns per tick (<< 32): measured once a second has passed,
        // the counter's nominal frequency before.
        let elapsed_ns = sample.mono.saturating_sub(first.1);
        let rate = if elapsed_ns >= NS_PER_SEC {
            let ticks = u128::from(sample_tsc.wrapping_sub(first.0)).max(1);
            ((u128::from(elapsed_ns) << 32) / ticks) as u64
        } else {
            (1_000_000u64 << 32) / u64::from(tsc.khz)
        };
        let old = state.params;
        let (real_off, boot_off) = match old {
            // BOOTTIME - MONOTONIC only grows (suspend); a REALTIME offset a little below the
            // last is measurement noise, not the host stepping its clock back.
            Some(o)
                if sample.real_off < o.real_off
                    && o.real_off - sample.real_off < MAX_LAG_NS as i64 =>
            {
                (o.real_off, sample.boot_off.max(o.boot_off))
            }
            Some(o) => (sample.real_off, sample.boot_off.max(o.boot_off)),
            None => (sample.real_off, sample.boot_off),
        };
        self.begin_write(&mut state);
        let now = host_tsc().wrapping_add(tsc.offset as u64);
        // Where the host's clock is now, from the sample and its rate.
        let host_now = sample.mono
            + ((u128::from(now.saturating_sub(sample_tsc)) * u128::from(rate)) >> 32) as u64;
        let mono_ns = match old {
            // Continuous with the curve so far, unless it fell far behind.
            Some(o) => o.monotonic_at(now).max(host_now.saturating_sub(MAX_LAG_NS)),
            None => host_now,
        };
        tracing::trace!(
            "timekeeper: sandbox clock {} ns ahead of the host's",
            mono_ns as i64 - host_now as i64
        );
        // The slope that meets the host's clock one interval from now.
        let interval_ns = INTERVAL.as_nanos() as u64;
        let cycles = (u128::from(interval_ns) << 32) / u128::from(rate.max(1));
        let want = (host_now + interval_ns).saturating_sub(mono_ns);
        let mult = ((u128::from(want) << 32) / cycles.max(1)) as u64;
        let slack = rate * MAX_SLEW_PPM / 1_000_000;
        let new = Params {
            tsc_base: now,
            mono_ns,
            real_off,
            boot_off,
            mult: mult.clamp(rate - slack, rate + slack),
        };
        self.end_write(&mut state, &new);
    }

    /// Makes the sequence count odd: readers wait (retry) until `end_write`.
    fn begin_write(&self, state: &mut Timekeeping) {
        state.seq = state.seq.wrapping_add(1);
        self.mem.write_u32(self.vvar + vvar::SEQ, state.seq);
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    }

    /// Writes parameters to the page the vDSO reads and makes the sequence count even again
    /// (a reader that saw it odd, or saw it change, retries).
    fn end_write(&self, state: &mut Timekeeping, p: &Params) {
        let mem = &self.mem;
        mem.write_u64(self.vvar + vvar::TSC_BASE, p.tsc_base);
        mem.write_u64(self.vvar + vvar::MONO_NS, p.mono_ns);
        mem.write_u64(self.vvar + vvar::REAL_OFF, p.real_off as u64);
        mem.write_u64(self.vvar + vvar::BOOT_OFF, p.boot_off as u64);
        mem.write_u64(self.vvar + vvar::MULT, p.mult);
        mem.write_u32(self.vvar + vvar::ENABLED, 1);
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        state.seq = state.seq.wrapping_add(1);
        mem.write_u32(self.vvar + vvar::SEQ, state.seq);
        state.params = Some(*p);
    }
}

impl Drop for Vdso {
    fn drop(&mut self) {
        let mut pages = self.text.clone();
        pages.push(self.vvar);
        self.mem.free_pages(&pages);
    }
}

fn host_tsc() -> u64 {
    // SAFETY: rdtsc has no side effects; every x86-64 CPU has it.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// The host's clocks at one counter value.
struct Sample {
    tsc: u64,
    mono: u64,
    /// REALTIME - MONOTONIC.
    real_off: i64,
    /// BOOTTIME - MONOTONIC.
    boot_off: i64,
}

fn clock_ns(clock: nix::time::ClockId) -> u64 {
    nix::time::clock_gettime(clock)
        .map(|t| t.tv_sec() as u64 * NS_PER_SEC + t.tv_nsec() as u64)
        .unwrap_or(0)
}

/// Reads `read` between two readings of the host's MONOTONIC clock, five times, and keeps
/// the tightest: (the value, MONOTONIC at the middle). A preemption between the readings
/// then can't slip into the result.
fn bracketed(mut read: impl FnMut() -> u64) -> (u64, u64) {
    use nix::time::ClockId;
    let mut best = (u64::MAX, 0, 0);
    for _ in 0..5 {
        let before = clock_ns(ClockId::CLOCK_MONOTONIC);
        let value = read();
        let after = clock_ns(ClockId::CLOCK_MONOTONIC);
        let width = after.saturating_sub(before);
        if width < best.0 {
            best = (width, value, before + width / 2);
        }
    }
    (best.1, best.2)
}

impl Sample {
    fn take() -> Sample {
        use nix::time::ClockId;
        let (tsc, mono) = bracketed(host_tsc);
        let (real, real_mono) = bracketed(|| clock_ns(ClockId::CLOCK_REALTIME));
        let (boot, boot_mono) = bracketed(|| clock_ns(ClockId::CLOCK_BOOTTIME));
        Sample {
            tsc,
            mono,
            real_off: real as i64 - real_mono as i64,
            boot_off: boot as i64 - boot_mono as i64,
        }
    }
}

/// Rewrites the parameters every [`INTERVAL`] while the vDSO lives.
fn timekeeper(vdso: Weak<Vdso>) {
    loop {
        std::thread::sleep(INTERVAL);
        match vdso.upgrade() {
            Some(v) => v.update(),
            None => return,
        }
    }
}
