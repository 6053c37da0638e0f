//! The bare round trip of each system call transport: hand-written guest code makes N
//! system calls that the platform answers without any sentry work.

use std::sync::Arc;
use std::time::Instant;

use platform::kvm::{KvmConfig, KvmPlatform};
use platform::{Event, FastSyscalls, Platform, Prot, SyscallPath, UserRegs, PAGE_SIZE};

const CODE: u64 = 0x40_0000;
const STACK: u64 = 0x50_0000;

/// Answers every call with 0 at once.
struct Nothing;
impl FastSyscalls for Nothing {
    fn serve(&self, regs: &mut UserRegs) -> bool {
        if regs.rax == 60 {
            return false;
        }
        regs.rax = 0;
        true
    }
}

// loop: mov $39,%eax; syscall; dec %rbx; jnz loop; mov $60,%eax; syscall; ud2
const LOOP: &[u8] = &[
    0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0x48, 0xff, 0xcb, 0x75, 0xf4, 0xb8, 60, 0, 0, 0, 0x0f, 0x05,
    0x0f, 0x0b,
];

/// Nanoseconds per bare system call through `path`.
pub fn bare_round_trip(path: SyscallPath, iterations: u64) -> anyhow::Result<f64> {
    let p = KvmPlatform::new(KvmConfig {
        memory_size: 64 << 20,
        syscall_path: path,
        ..Default::default()
    })?;
    let space = p.new_address_space()?;
    let code = p.memory().alloc_page()?;
    p.memory().write(code, LOOP);
    space.map(
        CODE,
        code,
        PAGE_SIZE,
        Prot {
            read: true,
            write: false,
            exec: true,
        },
    )?;
    let stack = p.memory().alloc_page()?;
    space.map(
        STACK,
        stack,
        PAGE_SIZE,
        Prot {
            read: true,
            write: true,
            exec: false,
        },
    )?;
    let mut ctx = p.new_context(Arc::new(Nothing))?;
    let mut regs = UserRegs {
        rip: CODE,
        rsp: STACK + PAGE_SIZE,
        rbx: iterations,
        ..Default::default()
    };
    let before = ctx.debug_stats();
    let start = Instant::now();
    loop {
        match ctx.switch(&space, &mut regs)? {
            Event::Syscall if regs.rax == 60 => break,
            Event::Syscall => regs.rax = 0,
            other => anyhow::bail!("unexpected event {other:?}"),
        }
    }
    let el = start.elapsed().as_nanos() as f64 / iterations as f64;
    if std::env::var_os("BENCH_KVM_STATS").is_some() {
        for ((name, a), (_, b)) in before.iter().zip(ctx.debug_stats().iter()) {
            if b != a {
                eprintln!("  {name}: {}", b - a);
            }
        }
    }
    Ok(el)
}
