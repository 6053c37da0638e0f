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
/// How far the slope may be steered from the counter's nominal frequency (parts per
/// million); more than any real oscillator is off, little enough to be invisible.
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

/// The parameters in force and the page's sequence count.
#[derive(Default)]
struct Timekeeping {
    seq: u32,
    params: Option<Params>,
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
        let p = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .params?;
        let mono = p.monotonic_at(host_tsc().wrapping_add(tsc.offset as u64));
        let ns = match clock {
            Clock::Monotonic => mono,
            Clock::Realtime => mono.wrapping_add(p.real_off as u64),
            Clock::Boottime => mono.wrapping_add(p.boot_off as u64),
        };
        Some(Duration::from_nanos(ns))
    }

    /// Takes a fresh reading of the host's clocks and rewrites the parameters.
    fn update(&self) {
        let Some(tsc) = self.tsc else { return };
        let sample = Sample::take();
        let now = sample.tsc.wrapping_add(tsc.offset as u64);
        let nominal = (1_000_000u64 << 32) / u64::from(tsc.khz);
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mono_ns = match state.params {
            // Continuous with the curve so far, unless it fell far behind.
            Some(old) => old
                .monotonic_at(now)
                .max(sample.mono.saturating_sub(MAX_LAG_NS)),
            None => sample.mono,
        };
        tracing::trace!(
            "timekeeper: sandbox clock {} ns ahead of the host's",
            mono_ns as i64 - sample.mono as i64
        );
        // The slope that meets the host's clock one interval from now.
        let interval_ns = INTERVAL.as_nanos() as u64;
        let cycles = u128::from(tsc.khz) * u128::from(interval_ns) / 1_000_000;
        let want = (sample.mono + interval_ns).saturating_sub(mono_ns);
        let mult = ((u128::from(want) << 32) / cycles.max(1)) as u64;
        let slack = nominal * MAX_SLEW_PPM / 1_000_000;
        let new = Params {
            tsc_base: now,
            mono_ns,
            real_off: sample.real as i64 - sample.mono as i64,
            boot_off: sample.boot as i64 - sample.mono as i64,
            mult: mult.clamp(nominal - slack, nominal + slack),
        };
        self.publish(&mut state, &new);
    }

    /// Writes parameters to the page the vDSO reads, under its sequence count (odd while
    /// the writes are in progress: a reader that saw it odd, or saw it change, retries).
    fn publish(&self, state: &mut Timekeeping, p: &Params) {
        use std::sync::atomic::{fence, Ordering};
        let mem = &self.mem;
        state.seq = state.seq.wrapping_add(1);
        mem.write_u32(self.vvar + vvar::SEQ, state.seq);
        fence(Ordering::SeqCst);
        mem.write_u64(self.vvar + vvar::TSC_BASE, p.tsc_base);
        mem.write_u64(self.vvar + vvar::MONO_NS, p.mono_ns);
        mem.write_u64(self.vvar + vvar::REAL_OFF, p.real_off as u64);
        mem.write_u64(self.vvar + vvar::BOOT_OFF, p.boot_off as u64);
        mem.write_u64(self.vvar + vvar::MULT, p.mult);
        mem.write_u32(self.vvar + vvar::ENABLED, 1);
        fence(Ordering::SeqCst);
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
    real: u64,
    boot: u64,
}

impl Sample {
    /// The tightest of a few (monotonic, counter, monotonic) readings, so that the counter
    /// value and the clock belong together to within a few hundred nanoseconds.
    fn take() -> Sample {
        let ns = |clock| {
            nix::time::clock_gettime(clock)
                .map(|t| t.tv_sec() as u64 * NS_PER_SEC + t.tv_nsec() as u64)
                .unwrap_or(0)
        };
        use nix::time::ClockId;
        let mut best: Option<(u64, Sample)> = None;
        for _ in 0..5 {
            let before = ns(ClockId::CLOCK_MONOTONIC);
            let tsc = host_tsc();
            let after = ns(ClockId::CLOCK_MONOTONIC);
            let width = after.saturating_sub(before);
            if best.as_ref().is_none_or(|(w, _)| width < *w) {
                best = Some((
                    width,
                    Sample {
                        tsc,
                        mono: before + width / 2,
                        real: 0,
                        boot: 0,
                    },
                ));
            }
        }
        let (_, mut s) = best.expect("five samples");
        let mono_now = ns(ClockId::CLOCK_MONOTONIC);
        s.real = ns(ClockId::CLOCK_REALTIME) - (mono_now - s.mono);
        s.boot = ns(ClockId::CLOCK_BOOTTIME) - (mono_now - s.mono);
        s
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
