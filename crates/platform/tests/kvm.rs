//! End-to-end tests of the KVM platform with hand-written guest code.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use platform::kvm::{KvmConfig, KvmPlatform};
use platform::{Event, FastSyscalls, Fault, Platform, Prot, SyscallPath, UserRegs, PAGE_SIZE};

const CODE: u64 = 0x40_0000;
const DATA: u64 = 0x50_0000;

fn platform(path: SyscallPath) -> Option<KvmPlatform> {
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        eprintln!("SKIPPED: no usable /dev/kvm");
        return None;
    }
    Some(
        KvmPlatform::new(KvmConfig {
            memory_size: 64 << 20,
            syscall_path: path,
            ..Default::default()
        })
        .expect("KVM platform"),
    )
}

/// Serves syscall 39 (getpid) with 1234 and counts; declines everything else.
struct Fast(AtomicU64);
impl FastSyscalls for Fast {
    fn serve(&self, regs: &mut UserRegs) -> bool {
        if regs.rax == 39 {
            self.0.fetch_add(1, Ordering::Relaxed);
            regs.rax = 1234;
            true
        } else {
            false
        }
    }
}

/// Maps `code` at CODE and a data page at DATA; returns the address space.
fn setup(p: &KvmPlatform, code: &[u8]) -> Arc<dyn platform::AddressSpace> {
    let space = p.new_address_space().unwrap();
    let mem = p.memory();
    let page = mem.alloc_page().unwrap();
    mem.write(page, code);
    space
        .map(
            CODE,
            page,
            PAGE_SIZE,
            Prot {
                read: true,
                write: false,
                exec: true,
            },
        )
        .unwrap();
    let data = mem.alloc_page().unwrap();
    space
        .map(
            DATA,
            data,
            PAGE_SIZE,
            Prot {
                read: true,
                write: true,
                exec: false,
            },
        )
        .unwrap();
    space
}

// mov $39,%eax; syscall; mov %rax,%rbx; mov $60,%eax; syscall; ud2
const GETPID_THEN_EXIT: &[u8] = &[
    0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0x48, 0x89, 0xc3, 0xb8, 60, 0, 0, 0, 0x0f, 0x05, 0x0f, 0x0b,
];

fn run_getpid(path: SyscallPath) {
    let Some(p) = platform(path) else { return };
    let space = setup(&p, GETPID_THEN_EXIT);
    let fast = Arc::new(Fast(AtomicU64::new(0)));
    let mut ctx = p.new_context(fast.clone()).unwrap();
    let mut regs = UserRegs {
        rip: CODE,
        rsp: DATA + PAGE_SIZE,
        r12: 0xdead_beef,
        ..Default::default()
    };
    let mut served_by_thread = 0;
    loop {
        let ev = ctx.switch(&space, &mut regs).unwrap();
        assert_eq!(ev, Event::Syscall);
        match regs.rax {
            39 => {
                served_by_thread += 1;
                regs.rax = 1234;
            }
            60 => break,
            other => panic!("unexpected syscall {other}"),
        }
    }
    assert_eq!(regs.rbx, 1234, "getpid result reached the program");
    assert_eq!(regs.r12, 0xdead_beef, "callee registers preserved");
    assert_eq!(regs.rip, CODE + 17, "rip after the exit syscall");
    assert_eq!(regs.rcx, regs.rip, "rcx holds the return address");
    let fast_count = fast.0.load(Ordering::Relaxed);
    eprintln!(
        "{}: fast {fast_count}, thread {served_by_thread}",
        p.describe()
    );
    assert_eq!(fast_count + served_by_thread, 1);
    if path == SyscallPath::ExitOnly {
        assert_eq!(fast_count, 0);
    }
}

#[test]
fn syscalls_through_the_ring() {
    run_getpid(SyscallPath::Ring);
}

#[test]
fn syscalls_through_exits_only() {
    run_getpid(SyscallPath::ExitOnly);
}

#[test]
fn faults_come_back_as_events() {
    let Some(p) = platform(SyscallPath::Ring) else {
        return;
    };
    // movq $1, (0x600000); ud2   -> #PF write at 0x600000, then after mapping it, #UD
    let code = [
        0x48, 0xc7, 0x04, 0x25, 0x00, 0x00, 0x60, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0f, 0x0b,
    ];
    let space = setup(&p, &code);
    let mut ctx = p.new_context(Arc::new(Fast(AtomicU64::new(0)))).unwrap();
    let mut regs = UserRegs {
        rip: CODE,
        rsp: DATA + PAGE_SIZE,
        ..Default::default()
    };
    let ev = ctx.switch(&space, &mut regs).unwrap();
    match ev {
        Event::Fault(Fault::Page { addr, access }) => {
            assert_eq!(addr, 0x60_0000);
            assert!(access.write && !access.present);
        }
        other => panic!("expected a page fault, got {other:?}"),
    }
    assert_eq!(regs.rip, CODE);
    let page = p.memory().alloc_page().unwrap();
    space
        .map(
            0x60_0000,
            page,
            PAGE_SIZE,
            Prot {
                read: true,
                write: true,
                exec: false,
            },
        )
        .unwrap();
    let ev = ctx.switch(&space, &mut regs).unwrap();
    assert_eq!(ev, Event::Fault(Fault::InvalidOpcode));
    assert_eq!(regs.rip, CODE + 12);
    let mut word = [0u8; 8];
    p.memory().read(page, &mut word);
    assert_eq!(u64::from_le_bytes(word), 1);

    // Narrowing a mapping takes effect: make the page read-only and write again.
    space
        .map(
            0x60_0000,
            page,
            PAGE_SIZE,
            Prot {
                read: true,
                write: false,
                exec: false,
            },
        )
        .unwrap();
    regs.rip = CODE;
    let ev = ctx.switch(&space, &mut regs).unwrap();
    match ev {
        Event::Fault(Fault::Page { addr, access }) => {
            assert_eq!(addr, 0x60_0000);
            assert!(access.write && access.present, "{access:?}");
        }
        other => panic!("expected a protection fault, got {other:?}"),
    }
    // And unmapping takes effect too.
    space.unmap(0x60_0000, PAGE_SIZE);
    let ev = ctx.switch(&space, &mut regs).unwrap();
    match ev {
        Event::Fault(Fault::Page { access, .. }) => assert!(!access.present),
        other => panic!("expected a not-present fault, got {other:?}"),
    }
}

#[test]
fn missing_device_is_named_in_the_error() {
    let err = match KvmPlatform::new(KvmConfig {
        device: "/nonexistent/kvm".into(),
        ..Default::default()
    }) {
        Ok(_) => panic!("a platform without a device"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("/nonexistent/kvm"), "{err}");
    assert!(err.contains("No such file"), "{err}");
}

/// Regression: a context registered while the poller was going to sleep could see the
/// poller as active forever and spin on its first system call. Create contexts at delays
/// around the poller's spin limit so registrations race with its sleep transitions.
#[test]
fn contexts_registered_while_the_poller_falls_asleep() {
    let Some(p) = platform(SyscallPath::Ring) else {
        return;
    };
    for i in 0..150u64 {
        std::thread::sleep(std::time::Duration::from_micros(120 + (i * 37) % 200));
        let space = setup(&p, GETPID_THEN_EXIT);
        let mut ctx = p.new_context(Arc::new(Fast(AtomicU64::new(0)))).unwrap();
        let mut regs = UserRegs {
            rip: CODE,
            rsp: DATA + PAGE_SIZE,
            ..Default::default()
        };
        loop {
            assert_eq!(ctx.switch(&space, &mut regs).unwrap(), Event::Syscall);
            match regs.rax {
                39 => regs.rax = 1234,
                60 => break,
                other => panic!("unexpected syscall {other}"),
            }
        }
        assert_eq!(regs.rbx, 1234);
    }
}

/// Runs `code` in a fresh context until its exit system call; returns the registers.
fn run_to_exit(p: &KvmPlatform, code: &[u8]) -> UserRegs {
    let space = setup(p, code);
    let mut ctx = p.new_context(Arc::new(Fast(AtomicU64::new(0)))).unwrap();
    let mut regs = UserRegs {
        rip: CODE,
        rsp: DATA + PAGE_SIZE,
        ..Default::default()
    };
    loop {
        assert_eq!(ctx.switch(&space, &mut regs).unwrap(), Event::Syscall);
        if regs.rax == 60 {
            return regs;
        }
        regs.rax = 0;
    }
}

/// vCPUs are pooled and reused: a thread must not see the vector registers of the thread
/// that used the vCPU before it.
#[test]
fn reused_vcpus_do_not_leak_registers() {
    let Some(p) = platform(SyscallPath::Ring) else {
        return;
    };
    // movabs $0x1122334455667788,%rax; movq %rax,%xmm0; mov $60,%eax; syscall; ud2
    let mut writer = vec![0x48, 0xb8];
    writer.extend_from_slice(&0x1122_3344_5566_7788u64.to_le_bytes());
    writer.extend_from_slice(&[
        0x66, 0x48, 0x0f, 0x6e, 0xc0, 0xb8, 60, 0, 0, 0, 0x0f, 0x05, 0x0f, 0x0b,
    ]);
    // movq %xmm0,%rax; mov %rax,%rbx; mov $60,%eax; syscall; ud2
    let reader = [
        0x66, 0x48, 0x0f, 0x7e, 0xc0, 0x48, 0x89, 0xc3, 0xb8, 60, 0, 0, 0, 0x0f, 0x05, 0x0f, 0x0b,
    ];
    for _ in 0..3 {
        run_to_exit(&p, &writer);
        let regs = run_to_exit(&p, &reader);
        assert_eq!(regs.rbx, 0, "xmm0 of the previous thread leaked");
    }
}

/// Serves getpid with `answer`; the first call it sees sleeps first, long enough for its
/// context to end and the vCPU to go to the next context meanwhile.
struct SlowFirst {
    answer: u64,
    entered: std::sync::atomic::AtomicBool,
}
impl FastSyscalls for SlowFirst {
    fn serve(&self, regs: &mut UserRegs) -> bool {
        if regs.rax != 39 {
            return false;
        }
        if !self.entered.swap(true, Ordering::SeqCst) {
            std::thread::sleep(std::time::Duration::from_millis(300));
        }
        regs.rax = self.answer;
        true
    }
}

/// The poller may be serving a context's call when the context ends (its thread killed) and
/// its vCPU, shared page and all, goes to the next thread. Once the first context is gone the
/// poller must not answer into the page: the next thread would return from its own call with
/// the old thread's registers. (It also parked calls in the dead slot, where the next
/// thread's doorbell found nothing and the guest hung: the thread-storm hang.)
#[test]
fn a_reused_vcpu_gets_no_answer_meant_for_its_previous_context() {
    let Some(p) = platform(SyscallPath::Ring) else {
        return;
    };
    // 1: mov $39,%eax; syscall; cmp $2222,%rax; je 1b; mov %rax,%rbx; mov $60,%eax; syscall
    let code = [
        0xb8, 39, 0, 0, 0, 0x0f, 0x05, 0x48, 0x3d, 0xae, 0x08, 0, 0, 0x74, 0xf1, 0x48, 0x89, 0xc3,
        0xb8, 60, 0, 0, 0, 0x0f, 0x05, 0x0f, 0x0b,
    ];
    let space = setup(&p, &code);
    let regs0 = UserRegs {
        rip: CODE,
        rsp: DATA + PAGE_SIZE,
        ..Default::default()
    };

    // The first context: its first getpid reaches the slow server; kill it meanwhile.
    let slow = Arc::new(SlowFirst {
        answer: 1111,
        entered: false.into(),
    });
    let mut first = p.new_context(slow.clone()).unwrap();
    let kicker = first.interrupter();
    let watcher = {
        let slow = slow.clone();
        std::thread::spawn(move || {
            while !slow.entered.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            kicker.interrupt();
        })
    };
    let mut regs = regs0;
    loop {
        // Calls the poller did not take come here: answer them so the program goes on
        // calling until the poller takes one.
        match first.switch(&space, &mut regs).unwrap() {
            Event::Syscall if regs.rax == 39 => regs.rax = 2222,
            Event::Interrupted { .. } => break,
            ev => panic!("unexpected {ev:?} (rax {:#x})", regs.rax),
        }
    }
    watcher.join().unwrap();
    drop(first);

    // The next context on the same (pooled) vCPU: every getpid must answer 2222 until well
    // after the slow server returned.
    let fast = Arc::new(SlowFirst {
        answer: 2222,
        entered: true.into(),
    });
    let mut next = p.new_context(fast).unwrap();
    let mut regs = regs0;
    let until = std::time::Instant::now() + std::time::Duration::from_millis(600);
    while std::time::Instant::now() < until {
        let ev = next.switch(&space, &mut regs).unwrap();
        assert_eq!(ev, Event::Syscall);
        match regs.rax {
            39 => regs.rax = 2222,
            60 => panic!(
                "the next context's getpid returned {:#x} (1111 is the old context's answer)",
                regs.rbx
            ),
            other => panic!("unexpected syscall {other}"),
        }
    }
}
