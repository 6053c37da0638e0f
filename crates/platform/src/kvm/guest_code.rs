//! Code that runs inside the guest, assembled into the sentry binary as data and copied into
//! guest pages at start-up.
//!
//! Two pages of guest code exist:
//!
//! * the **trampoline page** (user-accessible, read-only, executable, at
//!   [`TRAMPOLINE_VA`](super::layout::TRAMPOLINE_VA)): on this PVM host a `syscall` executed in
//!   guest user mode jumps to LSTAR *without* changing privilege, so LSTAR points here and the
//!   whole syscall path runs at native speed in ring 3. It saves every register to the vCPU's
//!   shared page (found at a fixed address one page below, see `layout.rs`), publishes a
//!   request, spins until a sentry thread answers, then reloads every register from the page.
//!   If no sentry thread is polling, it claims the request for itself and writes the doorbell
//!   page, an MMIO exit that the vCPU's own host thread serves.
//! * the **kernel code page** (supervisor-only): exception stubs that report the vector with an
//!   `out` and `iretq` back, the self-test's ring-0 LSTAR target, and the ring-0 trampoline used
//!   where `syscall` really enters ring 0 (hardware VMX/SVM).
//!
//! All references from the trampoline to its data are RIP-relative, so the bytes work at any
//! address as long as the shared page sits exactly one page below the trampoline page.
//!
//! Shared page layout (all little-endian, offsets in bytes); keep in sync with `ring.rs`:
//!
//! | offset | field                                   |
//! |--------|-----------------------------------------|
//! | 0x00   | state (u32): IDLE 0, REQUEST 1, SERVING 2, DONE 3, EXIT 4, DEFER 5 |
//! | 0x04   | poller_active (u32): nonzero while a sentry thread polls   |
//! | 0x08   | kind (u32): 0 system call, 1 exception (direct switch), 2 FPU saved for a signal |
//! | 0x10   | poller heartbeat (u64): guest TSC when the poller last ran     |
//! | 0x18   | heartbeat limit (u64): TSC ticks after which the poller counts as off its core |
//! | 0x20   | FPU operations of an answer (u32 bits): 2 XRSTOR first, 1 then XSAVE and ask again (kind 2) |
//! | 0x40   | rax rbx rcx rdx rsi rdi rbp rsp r8..r15 rip rflags (u64 each) |
//! | 0xd0   | exception: vector, error code, CR2 (u64 each)                |
//! | 0x100  | XSAVE image (standard form, up to 0xe00 bytes) of an FPU operation |
//! | 0xf00  | direct switch: the `int $0x17` frame of the trampoline       |
//! | 0xff0  | top of the trampoline's private stack (used for `popfq`)    |

use std::arch::global_asm;

global_asm!(
    r#"
    .pushsection .rodata.runsc_guest_code, "a"
    .balign 4096

    .set SP_STATE,  -0x1000 + 0x00
    .set SP_ACTIVE, -0x1000 + 0x04
    .set SP_KIND,   -0x1000 + 0x08
    .set SP_BEAT,   -0x1000 + 0x10
    .set SP_BEAT_LIMIT, -0x1000 + 0x18
    .set SP_FPOP,   -0x1000 + 0x20
    .set SP_XSAVE,  -0x1000 + 0x100
    .set SP_RAX,    -0x1000 + 0x40
    .set SP_RBX,    -0x1000 + 0x48
    .set SP_RCX,    -0x1000 + 0x50
    .set SP_RDX,    -0x1000 + 0x58
    .set SP_RSI,    -0x1000 + 0x60
    .set SP_RDI,    -0x1000 + 0x68
    .set SP_RBP,    -0x1000 + 0x70
    .set SP_RSP,    -0x1000 + 0x78
    .set SP_R8,     -0x1000 + 0x80
    .set SP_R9,     -0x1000 + 0x88
    .set SP_R10,    -0x1000 + 0x90
    .set SP_R11,    -0x1000 + 0x98
    .set SP_R12,    -0x1000 + 0xa0
    .set SP_R13,    -0x1000 + 0xa8
    .set SP_R14,    -0x1000 + 0xb0
    .set SP_R15,    -0x1000 + 0xb8
    .set SP_RIP,    -0x1000 + 0xc0
    .set SP_RFLAGS, -0x1000 + 0xc8
    .set SP_STACK,  -0x1000 + 0xff0
    .set SP_FRAME,  -0x1000 + 0xf00
    .set DOORBELL,  -0x2000

    .macro TRAMPOLINE ds
1:
    // Entered from `syscall` in user mode: RCX = return address, R11 = RFLAGS.
    mov %rax, SP_RAX + 1b(%rip)
    mov %rbx, SP_RBX + 1b(%rip)
    mov %rcx, SP_RCX + 1b(%rip)
    mov %rdx, SP_RDX + 1b(%rip)
    mov %rsi, SP_RSI + 1b(%rip)
    mov %rdi, SP_RDI + 1b(%rip)
    mov %rbp, SP_RBP + 1b(%rip)
    mov %rsp, SP_RSP + 1b(%rip)
    mov %r8,  SP_R8  + 1b(%rip)
    mov %r9,  SP_R9  + 1b(%rip)
    mov %r10, SP_R10 + 1b(%rip)
    mov %r11, SP_R11 + 1b(%rip)
    mov %r12, SP_R12 + 1b(%rip)
    mov %r13, SP_R13 + 1b(%rip)
    mov %r14, SP_R14 + 1b(%rip)
    mov %r15, SP_R15 + 1b(%rip)
    mov %rcx, SP_RIP + 1b(%rip)
    mov %r11, SP_RFLAGS + 1b(%rip)
    // Publish the request. x86 keeps stores in order, so the registers are visible first.
    movl $0, SP_KIND + 1b(%rip)
    movl $1, SP_STATE + 1b(%rip)
7:
    cmpl $0, SP_ACTIVE + 1b(%rip)
    je 3f
    mov ${spin_limit}, %ecx
2:
    pause
    mov SP_STATE + 1b(%rip), %eax
    cmp $3, %eax
    je 4f
    cmp $5, %eax
    je 6f
    cmp $1, %eax
    jne 2b
    // Still unclaimed: if the poller went to sleep, or hasn't come for a long while (it
    // shares two cores with everything else), serve it through an exit.
    cmpl $0, SP_ACTIVE + 1b(%rip)
    je 3f
    dec %ecx
    jz 3f
    // A poller that lost its core stops beating: don't wait for it (it may be gone for a
    // scheduler slice, milliseconds), take the exit now. Every register is in the page.
    rdtsc
    shl $32, %rdx
    or %rax, %rdx
    sub SP_BEAT + 1b(%rip), %rdx
    cmp SP_BEAT_LIMIT + 1b(%rip), %rdx
    jl 2b
3:
    mov $1, %eax
    mov $4, %ecx
    lock cmpxchg %ecx, SP_STATE + 1b(%rip)
    jne 2b
    movb $0, DOORBELL + 1b(%rip)
    jmp 2b
6:
    // The poller handed the request to the vCPU's own thread (DEFER): an exit reaches it
    // faster than a signal would.
    movb $0, DOORBELL + 1b(%rip)
    jmp 2b
4:
    // The answer may ask for the FPU state (see `FpuOp`): saved to the page and sent back as
    // a request of kind 2, or loaded from the page. XSAVE and XRSTOR take the component
    // mask in EDX:EAX (all of them); every general register is reloaded below anyway.
    mov SP_FPOP + 1b(%rip), %eax
    test %eax, %eax
    jnz 8f
9:
    movl $0, SP_STATE + 1b(%rip)
    .if \ds
    // Direct switch: return with PVM's `int $0x17` (eretu), which takes RIP, CS, RFLAGS, RSP
    // and SS from the frame at RSP like `iretq` and leaves every general register as it is,
    // so RCX and R11 come back as the sentry left them (rt_sigreturn needs that). The frame
    // sits in the trampoline's private stack inside the shared page.
    mov SP_RIP + 1b(%rip), %rax
    mov %rax, SP_FRAME + 1b(%rip)
    movq ${user_cs}, SP_FRAME + 8 + 1b(%rip)
    mov SP_RFLAGS + 1b(%rip), %rax
    mov %rax, SP_FRAME + 16 + 1b(%rip)
    mov SP_RSP + 1b(%rip), %rax
    mov %rax, SP_FRAME + 24 + 1b(%rip)
    movq ${user_ds}, SP_FRAME + 32 + 1b(%rip)
    .endif
    // Answered. Reload everything the sentry left in the page; RFLAGS goes through a private
    // stack inside the page so the application's red zone is never touched.
    .if \ds == 0
    lea SP_STACK + 1b(%rip), %rsp
    pushq SP_RFLAGS + 1b(%rip)
    popfq
    .endif
    mov SP_RAX + 1b(%rip), %rax
    mov SP_RBX + 1b(%rip), %rbx
    mov SP_RCX + 1b(%rip), %rcx
    mov SP_RDX + 1b(%rip), %rdx
    mov SP_RSI + 1b(%rip), %rsi
    mov SP_RDI + 1b(%rip), %rdi
    mov SP_RBP + 1b(%rip), %rbp
    mov SP_R8  + 1b(%rip), %r8
    mov SP_R9  + 1b(%rip), %r9
    mov SP_R10 + 1b(%rip), %r10
    mov SP_R11 + 1b(%rip), %r11
    mov SP_R12 + 1b(%rip), %r12
    mov SP_R13 + 1b(%rip), %r13
    mov SP_R14 + 1b(%rip), %r14
    mov SP_R15 + 1b(%rip), %r15

    .if \ds
    lea SP_FRAME + 1b(%rip), %rsp
    int $0x17
    ud2
    .else
    mov SP_RSP + 1b(%rip), %rsp
    jmp *SP_RIP + 1b(%rip)
    .endif
8:
    movl $0, SP_FPOP + 1b(%rip)
    mov %eax, %ecx
    mov $-1, %edx
    mov $-1, %eax
    test $2, %ecx
    jz 5f
    xrstor64 SP_XSAVE + 1b(%rip)
5:
    test $1, %ecx
    jz 9b
    // Save: the registers in the page are the thread's (the call's result); ask again.
    xsave64 SP_XSAVE + 1b(%rip)
    movl $2, SP_KIND + 1b(%rip)
    movl $1, SP_STATE + 1b(%rip)
    jmp 7b
    .endm

    .globl runsc_trampoline_start
runsc_trampoline_start:
    TRAMPOLINE 0
    .globl runsc_trampoline_end
runsc_trampoline_end:

    .balign 4096
    .globl runsc_trampoline_ds_start
runsc_trampoline_ds_start:
    TRAMPOLINE 1
    .globl runsc_trampoline_ds_end
runsc_trampoline_ds_end:

    .balign 4096
    .globl runsc_kernel_code_start
runsc_kernel_code_start:
    // Exception stubs: one per vector, 16 bytes apart. The CPU pushed SS, RSP, RFLAGS, CS,
    // RIP (and an error code for some vectors); the stub pushes a zero error code where the
    // CPU did not, then the vector, and exits through an `out`. The vCPU thread reads the frame
    // from the ring-0 stack and may rewrite it before resuming at `resume`.
    .irp vec, 0,1,2,3,4,5,6,7,9,15,16,18,19,20,22,23,24,25,26,27,28,31
    .balign 16
    .set stub_\vec, .
    pushq $0
    pushq $\vec
    jmp 5f
    .endr
    .irp vec, 8,10,11,12,13,14,17,21,29,30
    .balign 16
    .set stub_\vec, .
    pushq $\vec
    jmp 5f
    .endr
    .balign 16
5:
    outb %al, ${exception_port}
    .globl runsc_kernel_resume
runsc_kernel_resume:
    add $16, %rsp
    iretq

    // Direct switch: exceptions are served through the ring. The direct-switch kernel code
    // page replaces the `outb` above by a jump here. Every register goes to the shared page
    // (reached through RDI; the page's address is fixed), with RIP, RFLAGS and RSP from the
    // CPU's frame, the vector, the error code and CR2 (from PVM's CR2 cell), as a request of
    // kind 1; the protocol is the trampoline's (poller, or the doorbell when it sleeps). When
    // answered, the frame is rewritten from the page and `int $0x17` returns to user mode.
    .globl runsc_ds_fault
runsc_ds_fault:
    push %rdi
    movabs ${shared_va}, %rdi
    mov %rax, 0x40(%rdi)
    mov %rbx, 0x48(%rdi)
    mov %rcx, 0x50(%rdi)
    mov %rdx, 0x58(%rdi)
    mov %rsi, 0x60(%rdi)
    pop %rax
    mov %rax, 0x68(%rdi)
    mov %rbp, 0x70(%rdi)
    mov %r8,  0x80(%rdi)
    mov %r9,  0x88(%rdi)
    mov %r10, 0x90(%rdi)
    mov %r11, 0x98(%rdi)
    mov %r12, 0xa0(%rdi)
    mov %r13, 0xa8(%rdi)
    mov %r14, 0xb0(%rdi)
    mov %r15, 0xb8(%rdi)
    mov 16(%rsp), %rax
    mov %rax, 0xc0(%rdi)
    mov 32(%rsp), %rax
    mov %rax, 0xc8(%rdi)
    mov 40(%rsp), %rax
    mov %rax, 0x78(%rdi)
    mov (%rsp), %rax
    mov %rax, 0xd0(%rdi)
    mov 8(%rsp), %rax
    mov %rax, 0xd8(%rdi)
    movabs ${pv_cr2}, %rax
    mov (%rax), %rax
    mov %rax, 0xe0(%rdi)
    movl $1, 8(%rdi)
    movl $1, (%rdi)
    cmpl $0, 4(%rdi)
    je 13f
    mov ${spin_limit}, %ecx
12:
    pause
    mov (%rdi), %eax
    cmp $3, %eax
    je 14f
    cmp $5, %eax
    je 13f
    cmp $1, %eax
    jne 12b
    cmpl $0, 4(%rdi)
    je 13f
    dec %ecx
    jz 13f
    // The poller's heartbeat, as in the trampoline.
    rdtsc
    shl $32, %rdx
    or %rax, %rdx
    sub 0x10(%rdi), %rdx
    cmp 0x18(%rdi), %rdx
    jl 12b
13:
    // Unclaimed (or, DEFER, handed to the vCPU's thread): ring the doorbell.
    cmpl $5, (%rdi)
    je 15f
    mov $1, %eax
    mov $4, %ecx
    lock cmpxchg %ecx, (%rdi)
    jne 12b
15:
    movabs ${doorbell_va}, %rax
    movb $0, (%rax)
    jmp 12b
14:
    movl $0, (%rdi)
    mov 0xc0(%rdi), %rax
    mov %rax, 16(%rsp)
    movq ${user_cs}, 24(%rsp)
    mov 0xc8(%rdi), %rax
    mov %rax, 32(%rsp)
    mov 0x78(%rdi), %rax
    mov %rax, 40(%rsp)
    movq ${user_ds}, 48(%rsp)
    mov 0x40(%rdi), %rax
    mov 0x48(%rdi), %rbx
    mov 0x50(%rdi), %rcx
    mov 0x58(%rdi), %rdx
    mov 0x60(%rdi), %rsi
    mov 0x70(%rdi), %rbp
    mov 0x80(%rdi), %r8
    mov 0x88(%rdi), %r9
    mov 0x90(%rdi), %r10
    mov 0x98(%rdi), %r11
    mov 0xa0(%rdi), %r12
    mov 0xa8(%rdi), %r13
    mov 0xb0(%rdi), %r14
    mov 0xb8(%rdi), %r15
    mov 0x68(%rdi), %rdi
    add $16, %rsp
    int $0x17
    ud2

    // Self-test target: where LSTAR points during the start-up probe. Reached in ring 0 only
    // where `syscall` really changes privilege; on PVM the user-mode jump faults instead.
    .balign 16
    .globl runsc_selftest_ring0
runsc_selftest_ring0:
    outb %al, ${selftest_port}
    hlt
    jmp runsc_selftest_ring0

    // Ring-0 syscall entry for hardware VMX/SVM, where `syscall` from ring 3 lands at LSTAR in
    // ring 0 with RCX = return address, R11 = RFLAGS, RSP still the user's and SFMASK having
    // cleared IF/TF/DF/AC. KERNEL_GS_BASE holds this vCPU's shared-page address; `stac` lets
    // ring 0 touch that user page under SMAP. The protocol is the trampoline's; the fallback
    // exit is a port write, cheap from ring 0. The sentry validates the return RIP (canonical,
    // user) before answering, which `sysretq` needs to be safe.
    .balign 16
    .globl runsc_ring0_syscall
runsc_ring0_syscall:
    swapgs
    stac
    mov %rax, %gs:0x40
    mov %rbx, %gs:0x48
    mov %rcx, %gs:0x50
    mov %rdx, %gs:0x58
    mov %rsi, %gs:0x60
    mov %rdi, %gs:0x68
    mov %rbp, %gs:0x70
    mov %rsp, %gs:0x78
    mov %r8,  %gs:0x80
    mov %r9,  %gs:0x88
    mov %r10, %gs:0x90
    mov %r11, %gs:0x98
    mov %r12, %gs:0xa0
    mov %r13, %gs:0xa8
    mov %r14, %gs:0xb0
    mov %r15, %gs:0xb8
    mov %rcx, %gs:0xc0
    mov %r11, %gs:0xc8
    movl $1, %gs:0
    cmpl $0, %gs:4
    je 8f
7:
    pause
    mov %gs:0, %eax
    cmp $3, %eax
    je 9f
    cmp $1, %eax
    jne 7b
    cmpl $0, %gs:4
    jne 7b
8:
    mov $1, %eax
    mov $4, %ecx
    lock cmpxchg %ecx, %gs:0
    jne 7b
    outb %al, ${ring0_doorbell_port}
    jmp 7b
9:
    movl $0, %gs:0
    mov %gs:0x40, %rax
    mov %gs:0x48, %rbx
    mov %gs:0x58, %rdx
    mov %gs:0x60, %rsi
    mov %gs:0x68, %rdi
    mov %gs:0x70, %rbp
    mov %gs:0x80, %r8
    mov %gs:0x88, %r9
    mov %gs:0x90, %r10
    mov %gs:0xa0, %r12
    mov %gs:0xa8, %r13
    mov %gs:0xb0, %r14
    mov %gs:0xb8, %r15
    mov %gs:0xc0, %rcx
    mov %gs:0xc8, %r11
    mov %gs:0x78, %rsp
    clac
    swapgs
    sysretq
    .globl runsc_kernel_code_end
runsc_kernel_code_end:

    // The self-test's user code: one `syscall`, then a trap if it ever returns.
    .balign 16
    .globl runsc_selftest_user
runsc_selftest_user:
    syscall
    ud2
    .globl runsc_selftest_user_end
runsc_selftest_user_end:

    // The direct-switch self-test's user code: R12 `syscall`s into `runsc_dstest_lstar`
    // (which returns with PVM's `int $0x19`), then a #UD the stub reports and the test resumes
    // past, then R13 more calls (counted: the first batch warms KVM's shadow page tables) and a
    // doorbell write that ends the run.
    .balign 16
    .globl runsc_dstest_user
runsc_dstest_user:
1:
    syscall
    dec %r12
    jnz 1b
    ud2
    mov %r13, %r12
3:
    syscall
    dec %r12
    jnz 3b
    movabs ${doorbell_va}, %rax
    movb $0, (%rax)
2:
    jmp 2b
    .balign 16
    .globl runsc_dstest_lstar
runsc_dstest_lstar:
    int $0x19
    ud2
    .globl runsc_dstest_user_end
runsc_dstest_user_end:
    .popsection
    "#,
    exception_port = const super::layout::EXCEPTION_PORT,
    spin_limit = const TRAMPOLINE_SPIN_LIMIT,
    selftest_port = const super::layout::SELFTEST_PORT,
    ring0_doorbell_port = const super::layout::RING0_DOORBELL_PORT,
    doorbell_va = const super::layout::DOORBELL_VA,
    shared_va = const super::layout::SHARED_VA,
    pv_cr2 = const super::layout::PV_PAGE_VA + super::layout::PV_CR2_OFFSET,
    user_cs = const super::layout::USER_CS as u32,
    user_ds = const super::layout::USER_DS as u32,
    options(att_syntax)
);

extern "C" {
    static runsc_trampoline_start: u8;
    static runsc_trampoline_end: u8;
    static runsc_kernel_code_start: u8;
    static runsc_kernel_code_end: u8;
    static runsc_kernel_resume: u8;
    static runsc_ds_fault: u8;
    static runsc_selftest_ring0: u8;
    static runsc_ring0_syscall: u8;
    static runsc_selftest_user: u8;
    static runsc_selftest_user_end: u8;
    static runsc_trampoline_ds_start: u8;
    static runsc_trampoline_ds_end: u8;
    static runsc_dstest_user: u8;
    static runsc_dstest_lstar: u8;
    static runsc_dstest_user_end: u8;
}

/// Polls of an unclaimed request before the trampoline stops waiting for the poller and exits
/// (each `pause` is tens of nanoseconds: this is on the order of 100 us).
pub const TRAMPOLINE_SPIN_LIMIT: u32 = 4000;

/// Vectors whose stubs exist (all architectural exceptions, 0-31).
pub const STUB_COUNT: usize = 32;
/// Distance between two stubs in the kernel code page.
const STUB_STRIDE: u64 = 16;

fn span(start: &u8, end: &u8) -> &'static [u8] {
    let start = start as *const u8;
    let len = end as *const u8 as usize - start as usize;
    // SAFETY: both symbols delimit one contiguous block of the read-only section emitted by the
    // `global_asm!` above, which lives for the whole program.
    unsafe { std::slice::from_raw_parts(start, len) }
}

fn offset_in_kernel_page(sym: &u8) -> u64 {
    // SAFETY: taking the address of an extern static emitted above; nothing is read.
    let base = unsafe { &runsc_kernel_code_start } as *const u8 as u64;
    sym as *const u8 as u64 - base
}

/// Bytes of the user-mode trampoline page.
pub fn trampoline() -> &'static [u8] {
    // SAFETY: addresses of statics defined by the assembly above.
    unsafe { span(&runsc_trampoline_start, &runsc_trampoline_end) }
}

/// Bytes of the trampoline page for PVM's direct switch (returns with `int $0x17`).
pub fn trampoline_ds() -> &'static [u8] {
    // SAFETY: addresses of statics defined by the assembly above.
    unsafe { span(&runsc_trampoline_ds_start, &runsc_trampoline_ds_end) }
}

/// Bytes of the supervisor code page.
pub fn kernel_code() -> &'static [u8] {
    // SAFETY: addresses of statics defined by the assembly above.
    unsafe { span(&runsc_kernel_code_start, &runsc_kernel_code_end) }
}

/// Bytes of the kernel code page for PVM's direct switch: the same, except that the exception
/// tail returns with `int $0x17` (eretu, same frame as `iretq`, same length): under the
/// direct switch an `iretq` of the guest kernel returns to user code still marked as kernel.
pub fn kernel_code_ds() -> Vec<u8> {
    let mut code = kernel_code().to_vec();
    let at = resume_offset() as usize + 4;
    debug_assert_eq!(&code[at - 4..at + 2], &[0x48, 0x83, 0xc4, 0x10, 0x48, 0xcf]);
    code[at..at + 2].copy_from_slice(&[0xcd, 0x17]);
    // The stubs' common `outb` (2 bytes, just before `resume`) becomes `jmp runsc_ds_fault`.
    let out = resume_offset() as usize - 2;
    // SAFETY: address of a static defined above.
    let target = offset_in_kernel_page(unsafe { &runsc_ds_fault }) as usize;
    let rel = target - (out + 2);
    assert!(rel < 128, "runsc_ds_fault within a short jump");
    code[out..out + 2].copy_from_slice(&[0xeb, rel as u8]);
    code
}

/// Bytes of the direct-switch self-test's user code, and the offset of its LSTAR target.
pub fn dstest_user() -> (&'static [u8], u64) {
    // SAFETY: addresses of statics defined by the assembly above.
    unsafe {
        let code = span(&runsc_dstest_user, &runsc_dstest_user_end);
        let lstar = &runsc_dstest_lstar as *const u8 as u64 - code.as_ptr() as u64;
        (code, lstar)
    }
}

/// Bytes of the self-test's user code.
pub fn selftest_user() -> &'static [u8] {
    // SAFETY: addresses of statics defined by the assembly above.
    unsafe { span(&runsc_selftest_user, &runsc_selftest_user_end) }
}

/// Offset of the stub for `vector` in the kernel code page. Stubs are emitted in two groups
/// (without, then with, a CPU error code), so the order is looked up rather than computed.
pub fn stub_offset(vector: usize) -> u64 {
    const WITHOUT_ERROR: [usize; 22] = [
        0, 1, 2, 3, 4, 5, 6, 7, 9, 15, 16, 18, 19, 20, 22, 23, 24, 25, 26, 27, 28, 31,
    ];
    const WITH_ERROR: [usize; 10] = [8, 10, 11, 12, 13, 14, 17, 21, 29, 30];
    let slot = match WITHOUT_ERROR.iter().position(|&v| v == vector) {
        Some(i) => i,
        None => {
            WITHOUT_ERROR.len()
                + WITH_ERROR
                    .iter()
                    .position(|&v| v == vector)
                    .expect("every vector below 32 has a stub")
        }
    };
    slot as u64 * STUB_STRIDE
}

/// Offset of `add $16,%rsp; iretq`: resuming here returns to the frame on the ring-0 stack.
pub fn resume_offset() -> u64 {
    // SAFETY: address of a static defined above.
    offset_in_kernel_page(unsafe { &runsc_kernel_resume })
}

/// Offset of the self-test's ring-0 target.
pub fn selftest_ring0_offset() -> u64 {
    // SAFETY: address of a static defined above.
    offset_in_kernel_page(unsafe { &runsc_selftest_ring0 })
}

/// Offset of the ring-0 (VMX/SVM) syscall entry.
pub fn ring0_syscall_offset() -> u64 {
    // SAFETY: address of a static defined above.
    offset_in_kernel_page(unsafe { &runsc_ring0_syscall })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_fits_in_one_page() {
        assert!(!trampoline().is_empty() && trampoline().len() <= 4096);
        assert!(kernel_code().len() <= 4096);
        assert!(resume_offset() < kernel_code().len() as u64);
        assert!(stub_offset(31) < resume_offset());
    }

    #[test]
    fn direct_switch_code_differs_only_in_the_return() {
        let (plain, ds) = (kernel_code(), kernel_code_ds());
        let diff: Vec<usize> = (0..plain.len()).filter(|&i| plain[i] != ds[i]).collect();
        let at = resume_offset() as usize + 4;
        let out = resume_offset() as usize - 2;
        assert_eq!(diff, vec![out, out + 1, at, at + 1]);
        assert_eq!(ds[out], 0xeb);
        assert_eq!(&ds[at..at + 2], &[0xcd, 0x17]);
        assert!(!trampoline_ds().is_empty() && trampoline_ds().len() <= 4096);
    }

    #[test]
    fn stubs_are_sixteen_bytes_apart() {
        // `pushq $0` (6a 00) opens each no-error stub; `pushq $vec` follows.
        let code = kernel_code();
        let off = stub_offset(14) as usize;
        assert_eq!(&code[off..off + 2], &[0x6a, 14]);
        let off = stub_offset(3) as usize;
        assert_eq!(&code[off..off + 4], &[0x6a, 0, 0x6a, 3]);
    }
}
