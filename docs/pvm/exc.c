/* Standalone experiment behind docs/architecture.md "PVM's direct switch": exception delivery
 * and return under the direct switch (raw KVM, no project code).
 * Build: gcc -O2 -Wall -Wno-unused-variable -Wno-unused-result -o exc exc.c
 * Run:   SOME=gisS ./exc VARIANT [PVFLAGS [N]]   VARIANT 0 iretq, 1 int $0x17 (rsi=rsp), 6 int $0x17,
 *        7 #UD handled in the guest stub (no host work; counts exits), 9 the same returning with
 *        int $0x19 (RCX = RIP, R11 = RFLAGS, RSP from the frame), 8 syscall loop (T17=1: the
 *        trampoline returns with int $0x17). SOME= which kernel pages the user root maps too
 *        (g GDT, i IDT, c code, s stack; S supervisor, R read-only); BOTH=1 maps them all.
 *        TX=2|3|4 with variant 8: the trampoline leaves KVM_RUN on every call (MMIO write,
 *        `out`, `hlt`), to time a round trip through user space. */
// Exception delivery in PVM direct-switch mode: where does the stub land, what frame, how to return.
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define P 1ull
#define W 2ull
#define U 4ull
#define A 0x20ull
#define D 0x40ull
#define NX (1ull << 63)
#define KBASE 0xffffff8000000000ull
#define MEM (4 << 20)
static uint8_t *mem;
static uint64_t nextp = 0x100000;
static void w64(uint64_t g, uint64_t v) { memcpy(mem + g, &v, 8); }
static uint64_t r64(uint64_t g) { uint64_t v; memcpy(&v, mem + g, 8); return v; }
static uint64_t alloc(void) { uint64_t p = nextp; nextp += 0x1000; memset(mem + p, 0, 4096); return p; }
static uint64_t leafaddr(uint64_t root, uint64_t va, uint64_t tf) {
  uint64_t t = root;
  for (int l = 3; l >= 1; l--) {
    uint64_t i = (va >> (12 + 9 * l)) & 0x1ff, e = r64(t + i * 8);
    if (!(e & P)) { uint64_t n = alloc(); w64(t + i * 8, n | tf); e = n | tf; }
    t = e & 0xffffffffff000ull;
  }
  return t + ((va >> 12) & 0x1ff) * 8;
}
static void map(uint64_t root, uint64_t va, uint64_t gpa, uint64_t f) { w64(leafaddr(root, va, P | W | U | A), gpa | f); }
static uint64_t now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1000000000ull + t.tv_nsec; }

static int exits(int fd) {
  int sfd = ioctl(fd, KVM_GET_STATS_FD, 0);
  struct kvm_stats_header h; pread(sfd, &h, sizeof h, 0);
  size_t dsz = sizeof(struct kvm_stats_desc) + h.name_size;
  char *d = malloc(dsz * h.num_desc); pread(sfd, d, dsz * h.num_desc, h.desc_offset);
  uint64_t v = 0;
  for (unsigned i = 0; i < h.num_desc; i++) {
    struct kvm_stats_desc *s = (void *)(d + i * dsz);
    if (!strcmp(s->name, "exits")) pread(sfd, &v, 8, h.data_offset + s->offset);
  }
  free(d); close(sfd); return (int)v;
}

// Assembled code blobs, built with gcc at run time? No: hand-written bytes from an .S file.
extern char kstub_ud[], kstub_pf[];
extern char ucode[], ucode_end[], kcode[], kcode_end[], tramp[], tramp_end[];
__asm__(".pushsection .rodata\n"
        ".globl kstub_ud, kstub_pf, ucode, ucode_end, kcode, kcode_end, tramp, tramp_end\n"
        "ucode:\n"
        // markers
        " mov $0x1111, %rbx\n mov $0x2222, %rcx\n mov $0x3333, %r11\n mov $0x4444, %rsi\n mov $0x5555, %rdi\n"
        " mov %r12, %r13\n"
        " cmp $8, %r15\n jne 1f\n"
        "13: syscall\n dec %r13\n jnz 13b\n movb $0, 0x3ff000\n"                      // r12 = loop count
        "1: movq $0x77, 0x50000\n"               // fault (page absent first time)
        " ud2\n"                                 // #UD: stub skips 2 bytes
        " mov %rcx, 0x50100\n mov %r11, 0x50108\n mov %rsi, 0x50110\n mov %rax, 0x50118\n mov %rdx, 0x50120\n mov %rsp, 0x50128\n"
        " dec %r13\n jnz 1b\n"
        " syscall\n"                             // one syscall via ds
        " movb $0, 0x3ff000\n"                   // done: MMIO exit
        "2: jmp 2b\n"
        "ucode_end:\n"
        "kcode:\n"
        "kstub_ud: pushq $0\n pushq $6\n jmp 3f\n"
        "kstub_pf: pushq $14\n jmp 3f\n"
        "3: cmp $9, %r15\n jne 31f\n cmpq $6, (%rsp)\n jne 12f\n addq $2, 16(%rsp)\n mov 16(%rsp), %rcx\n mov 32(%rsp), %r11\n mov 40(%rsp), %rsp\n int $0x19\n ud2\n"
        "31: cmp $7, %r15\n jne 12f\n cmpq $6, (%rsp)\n jne 12f\n addq $2, 16(%rsp)\n add $16, %rsp\n int $0x17\n"
        "12: outb %al, $0x10\n"
        " add $16, %rsp\n"
        " cmp $1, %r15\n je 6f\n"
        " cmp $2, %r15\n je 7f\n"
        " cmp $3, %r15\n je 8f\n"
        " cmp $4, %r15\n je 9f\n"
        " cmp $6, %r15\n je 10f\n cmp $7, %r15\n je 10f\n"
        " iretq\n"
        "6: mov %rsp, %rsi\n int $0x17\n ud2\n"
        "7: lea -64(%rsp), %rsi\n int $0x17\n ud2\n"
        "10: int $0x17\n ud2\n"
        "9: lea -128(%rsp), %rsi\n int $0x17\n ud2\n"
        "8: mov (%rsp), %rcx\n mov 16(%rsp), %r11\n mov 24(%rsp), %rsp\n int $0x19\n ud2\n"
        "kcode_end:\n"
        "tramp:\n cmp $2, %r14\n je 20f\n cmp $3, %r14\n je 21f\n cmp $4, %r14\n je 22f\n cmp $0, %r14\n je 14f\n movabs $0x12f00, %rax\n mov %rcx, (%rax)\n movq $0x33, 8(%rax)\n mov %r11, 16(%rax)\n mov %rsp, 24(%rax)\n movq $0x2b, 32(%rax)\n mov %rax, %rsp\n mov $0x9999, %ecx\n mov $0x8888, %r11d\n int $0x17\n ud2\n"
        "14: int $0x19\n ud2\n"
        "20: movb $0, 0x3fe000\n int $0x19\n"
        "21: outb %al, $0x20\n int $0x19\n"
        "22: hlt\n int $0x19\n"
        "tramp_end:\n"
        ".popsection\n");

int main(int argc, char **argv) {
  setvbuf(stdout, 0, _IONBF, 0);
  int variant = argc > 1 ? atoi(argv[1]) : 0;
  long pv = argc > 2 ? strtol(argv[2], 0, 16) : 0x5f;
  int n = argc > 3 ? atoi(argv[3]) : 1;
  int kvm = open("/dev/kvm", O_RDWR), vm = ioctl(kvm, KVM_CREATE_VM, 0);
  mem = mmap(0, MEM, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  struct kvm_userspace_memory_region reg = {.slot = 0, .memory_size = MEM, .userspace_addr = (uint64_t)mem};
  ioctl(vm, KVM_SET_USER_MEMORY_REGION, &reg);
  struct kvm_cpuid2 *cpuid = calloc(1, sizeof(*cpuid) + 256 * sizeof(struct kvm_cpuid_entry2));
  cpuid->nent = 256; ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid);
  // roots: kernel at 0x2000 (8K aligned), user at 0x3000
  uint64_t kroot = 0x2000, uroot = 0x3000;
  memset(mem + kroot, 0, 8192);
  uint64_t code = 0x10000, trampg = 0x11000, shared = 0x12000, gdt = 0x13000, idt = 0x15000, kc = 0x16000,
           kst = 0x17000, pvpage = 0x19000, stack = 0x30000, data = 0x50000;
  memcpy(mem + code, ucode, ucode_end - ucode);
  memcpy(mem + kc, kcode, kcode_end - kcode);
  memcpy(mem + trampg, tramp, tramp_end - tramp);
  uint64_t ux = P | U | A, urw = P | U | W | A | D | NX;
  // user part: build in uroot, then copy slot 0 to kroot
  map(uroot, code, code, ux);
  map(uroot, trampg, trampg, ux);
  map(uroot, shared, shared, urw);
  map(uroot, stack, stack, urw);
  map(uroot, 0x3ff000, MEM, urw);  // doorbell
  map(uroot, 0x3fe000, MEM + 0x1000, urw);  // per-call doorbell
  map(uroot, data, 0x60000, 0);     // not present
  w64(kroot, r64(uroot));
  // kernel part only in kroot, U=1
  map(kroot, KBASE + 0x3000, gdt, urw);
  map(kroot, KBASE + 0x5000, idt, P | U | A | NX);
  map(kroot, KBASE + 0x6000, kc, ux);
  map(kroot, KBASE + 0x7000, kst, urw);
  if (getenv("BOTH")) for (int k = 0; k < 512; k++) w64(uroot + k * 8, r64(kroot + k * 8));
  if (getenv("SOME")) { const char *w = getenv("SOME");
    uint64_t um = strchr(w, 'S') ? 0 : U; uint64_t wm = strchr(w, 'R') ? 0 : W;
    if (strchr(w, 'g')) map(uroot, KBASE + 0x3000, gdt, (urw & ~U & ~W) | um | wm);
    if (strchr(w, 'i')) map(uroot, KBASE + 0x5000, idt, P | um | A | NX);
    if (strchr(w, 'c')) map(uroot, KBASE + 0x6000, kc, ux);
    if (strchr(w, 's')) map(uroot, KBASE + 0x7000, kst, (urw & ~U) | um); }
  uint64_t tss = gdt + 0x100, tss_va = KBASE + 0x3100;
  uint64_t g[9] = {0, 0, 0x00af9b000000ffffull, 0x00cf93000000ffffull, 0x00cffb000000ffffull, 0x00cff3000000ffffull,
                   0x00affb000000ffffull, 0, 0};
  uint64_t lim = 103;
  g[7] = (lim & 0xffff) | ((tss_va & 0xffffff) << 16) | (0x89ull << 40) | (((tss_va >> 24) & 0xff) << 56);
  g[8] = tss_va >> 32;
  memcpy(mem + gdt, g, sizeof g);
  uint64_t rsp0 = KBASE + 0x8000;
  memcpy(mem + tss + 4, &rsp0, 8);
  uint16_t io = 104; memcpy(mem + tss + 102, &io, 2);
  for (int v = 0; v < 32; v++) {
    uint64_t h = KBASE + 0x6000 + (v == 6 ? kstub_ud - kcode : kstub_pf - kcode);
    uint8_t e[16] = {0};
    e[0] = h; e[1] = h >> 8; e[2] = 0x10; e[5] = 0x8e; e[6] = h >> 16; e[7] = h >> 24;
    uint32_t hi = h >> 32; memcpy(e + 8, &hi, 4);
    memcpy(mem + idt + v * 16, e, 16);
  }
  int fd = ioctl(vm, KVM_CREATE_VCPU, 0);
  ioctl(fd, KVM_SET_CPUID2, cpuid);
  struct kvm_run *run = mmap(0, ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  struct kvm_sregs sr; ioctl(fd, KVM_GET_SREGS, &sr);
  struct kvm_segment cs = {.limit = 0xffffffff, .selector = 0x33, .type = 11, .present = 1, .dpl = 3, .s = 1, .l = 1, .g = 1};
  struct kvm_segment ds = {.limit = 0xffffffff, .selector = 0x2b, .type = 3, .present = 1, .dpl = 3, .db = 1, .s = 1, .g = 1};
  sr.cs = cs; sr.ds = sr.es = sr.fs = sr.gs = sr.ss = ds;
  sr.gdt.base = KBASE + 0x3000; sr.gdt.limit = 71; sr.idt.base = KBASE + 0x5000; sr.idt.limit = 4095;
  sr.tr = (struct kvm_segment){.base = tss_va, .limit = 103, .selector = 0x38, .type = 11, .present = 1};
  sr.ldt = (struct kvm_segment){.unusable = 1};
  sr.cr0 = 0x80050033; sr.cr3 = uroot; sr.cr4 = 0x6a0; sr.efer = 0xd01;
  if (ioctl(fd, KVM_SET_SREGS, &sr)) { perror("sregs"); return 1; }
  struct { struct kvm_msrs h; struct kvm_msr_entry e[4]; } m = {0};
  m.e[0].index = 0xc0000082; m.e[0].data = trampg;
  m.e[1].index = 0x4b564d10; m.e[1].data = pvpage | pv;
  m.e[2].index = 0xc0000102; m.e[2].data = 0xabc000;
  m.h.nmsrs = pv ? 3 : 1;
  printf("set msrs: %d\n", ioctl(fd, KVM_SET_MSRS, &m));
  struct kvm_regs r = {0};
  r.rip = code; r.rsp = stack + 0x800; r.rflags = 0x202; r.r12 = n; r.r15 = variant; r.r14 = getenv("T17") ? 1 : getenv("TX") ? atoi(getenv("TX")) : 0;
  ioctl(fd, KVM_SET_REGS, &r);
  int e0 = exits(fd);
  uint64_t t0 = now();
  int nexc = 0;
  for (int it = 0; it < 100000; it++) {
    int rc = ioctl(fd, KVM_RUN, 0);
    struct kvm_regs q; ioctl(fd, KVM_GET_REGS, &q);
    struct kvm_sregs s; ioctl(fd, KVM_GET_SREGS, &s);
    if (rc < 0) { perror("run"); return 1; }
    if (run->exit_reason == KVM_EXIT_IO && run->io.port == 0x10) {
      uint64_t f = kst + 0x1000 - (q.rsp > KBASE ? (KBASE + 0x8000 - q.rsp) : 0);
      if (nexc < 3 || getenv("V")) {
        printf("EXC: rip=%llx rsp=%llx cr3=%llx cs=%x dpl=%d cr2=%llx rax=%llx rcx=%llx r11=%llx rsi=%llx\n", q.rip, q.rsp, s.cr3,
               s.cs.selector, s.cs.dpl, s.cr2, q.rax, q.rcx, q.r11, q.rsi);
        printf("  frame:");
        for (int k = 0; k < 8; k++) printf(" %lx", r64(f + k * 8));
        printf("\n  pv:");
        for (int k = 0; k < 16; k++) printf(" %lx", r64(pvpage + k * 8));
        printf("\n");
      }
      nexc++;
      uint64_t vec = r64(f);
      uint64_t ripw = f + 16;
      if (vec == 6) w64(ripw, r64(ripw) + 2);
      else map(uroot, data, 0x60000, urw);
      if (variant == 4) {
        uint64_t base = f + 16 - 128;
        for (int k = -4; k < 12; k++) w64(base + k * 8, 0xdead0000 + k + 4);
        if (getenv("L3")) { w64(base, r64(ripw)); w64(base + 8, r64(ripw + 16)); w64(base + 16, r64(ripw + 24)); }
        else for (int k = 0; k < 5; k++) w64(base + k * 8, r64(ripw + k * 8));
        for (int k = 0; k < 5; k++) w64(ripw + k * 8, 0);
      }
      if (variant == 2) {
        uint64_t base = f + 16 - 64;
        w64(base, r64(ripw)); w64(base + 8, r64(ripw + 16)); w64(base + 16, r64(ripw + 24));
      }
      continue;
    }
    if (run->exit_reason == KVM_EXIT_MMIO && run->mmio.phys_addr == MEM + 0x1000) { nexc++; continue; }
    if (run->exit_reason == KVM_EXIT_IO && run->io.port == 0x20) { nexc++; continue; }
    if (run->exit_reason == KVM_EXIT_HLT) { nexc++; continue; }
    if (run->exit_reason == KVM_EXIT_MMIO) {
      uint64_t t1 = now();
      for (int k = 0; k < 6; k++) printf("saved[%d]=%lx\n", k, r64(0x60100 + k * 8));
  printf("DONE rip=%llx rbx=%llx rcx=%llx r11=%llx rsi=%llx rdi=%llx cr3=%llx mem=%lx exc=%d exits=%d  %.2f us/iter\n", q.rip,
             q.rbx, q.rcx, q.r11, q.rsi, q.rdi, s.cr3, r64(0x60000), nexc, exits(fd) - e0, (t1 - t0) / 1000.0 / n);
      return 0;
    }
    printf("exit %d rip=%llx cs=%x cr3=%llx cr2=%llx\n", run->exit_reason, q.rip, s.cs.selector, s.cr3, s.cr2);
    return 1;
  }
}
