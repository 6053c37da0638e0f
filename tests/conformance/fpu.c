/* Initial FPU/SSE state, deterministic floating point, and vector registers
 * surviving system calls and page faults (the sentry must save and restore
 * them). */
#include "conf.h"
#include <cpuid.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static unsigned char in[16 * 32] __attribute__((aligned(32)));
static unsigned char out[16 * 32] __attribute__((aligned(32)));

#define LOADX(n) "movdqu " #n "*16(%[i]), %%xmm" #n "\n"
#define STOREX(n) "movdqu %%xmm" #n ", " #n "*16(%[o])\n"
#define LOADY(n) "vmovdqu " #n "*32(%[i]), %%ymm" #n "\n"
#define STOREY(n) "vmovdqu %%ymm" #n ", " #n "*32(%[o])\n"
#define ALL16(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)
#define XCLOBBER "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", \
	"xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

static void fill_in(unsigned seed)
{
	for (size_t i = 0; i < sizeof in; i++)
		in[i] = (unsigned char)(seed * 37 + i * 11 + 1);
	memset(out, 0, sizeof out);
}

/* xmm0-15 across a getpid syscall */
static int xmm_syscall(void)
{
	long nr = SYS_getpid;
	fill_in(1);
	__asm__ volatile(ALL16(LOADX) "syscall\n" ALL16(STOREX)
			 : "+a"(nr) : [i] "r"(in), [o] "r"(out)
			 : "rcx", "r11", "memory", XCLOBBER);
	return memcmp(in, out, 16 * 16) == 0;
}

/* xmm0-15 across a page fault on a fresh anonymous page */
static int xmm_fault(volatile char *page)
{
	fill_in(2);
	__asm__ volatile(ALL16(LOADX) "movb $1, (%[p])\n" ALL16(STOREX)
			 : : [i] "r"(in), [o] "r"(out), [p] "r"(page)
			 : "memory", XCLOBBER);
	return memcmp(in, out, 16 * 16) == 0 && page[0] == 1;
}

/* ymm0-15 across a syscall (only when AVX is usable) */
static int ymm_syscall(void)
{
	long nr = SYS_sched_yield;
	fill_in(3);
	__asm__ volatile(ALL16(LOADY) "syscall\n" ALL16(STOREY) "vzeroupper\n"
			 : "+a"(nr) : [i] "r"(in), [o] "r"(out)
			 : "rcx", "r11", "memory", XCLOBBER);
	return memcmp(in, out, 16 * 32) == 0;
}

/* general-purpose registers other than rax, rcx, r11 across a syscall.
 * Globals are addressed RIP-relative so no register holds a pointer. */
unsigned long conf_gv[12], conf_gw[12], conf_saved_rbp;

static int gpr_syscall(void)
{
	for (int i = 0; i < 12; i++) {
		conf_gv[i] = 0x0101010101010101UL * (i + 3);
		conf_gw[i] = 0;
	}
	__asm__ volatile(
		"mov %%rbp, conf_saved_rbp(%%rip)\n"
		"mov conf_gv+0(%%rip), %%rbx\n mov conf_gv+8(%%rip), %%rdx\n"
		"mov conf_gv+16(%%rip), %%rsi\n mov conf_gv+24(%%rip), %%rbp\n"
		"mov conf_gv+32(%%rip), %%r8\n mov conf_gv+40(%%rip), %%r9\n"
		"mov conf_gv+48(%%rip), %%r10\n mov conf_gv+56(%%rip), %%r12\n"
		"mov conf_gv+64(%%rip), %%r13\n mov conf_gv+72(%%rip), %%r14\n"
		"mov conf_gv+80(%%rip), %%r15\n mov conf_gv+88(%%rip), %%rdi\n"
		"mov $39, %%eax\n syscall\n"	/* getpid */
		"mov %%rbx, conf_gw+0(%%rip)\n mov %%rdx, conf_gw+8(%%rip)\n"
		"mov %%rsi, conf_gw+16(%%rip)\n mov %%rbp, conf_gw+24(%%rip)\n"
		"mov %%r8, conf_gw+32(%%rip)\n mov %%r9, conf_gw+40(%%rip)\n"
		"mov %%r10, conf_gw+48(%%rip)\n mov %%r12, conf_gw+56(%%rip)\n"
		"mov %%r13, conf_gw+64(%%rip)\n mov %%r14, conf_gw+72(%%rip)\n"
		"mov %%r15, conf_gw+80(%%rip)\n mov %%rdi, conf_gw+88(%%rip)\n"
		"mov conf_saved_rbp(%%rip), %%rbp\n"
		:
		:
		: "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11",
		  "r12", "r13", "r14", "r15", "memory");
	return memcmp(conf_gv, conf_gw, sizeof conf_gv) == 0;
}

static int avx_usable(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return 0;
	if (!(c & (1u << 27)) || !(c & (1u << 28)))	/* OSXSAVE, AVX */
		return 0;
	unsigned lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (lo & 6) == 6;
}

int main(void)
{
	unsigned mxcsr;
	unsigned short cw;
	__asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
	__asm__ volatile("fnstcw %0" : "=m"(cw));
	printf("initial MXCSR: %#x\n", mxcsr);
	printf("initial x87 control word: %#x\n", cw);

	/* deterministic floating point */
	volatile double s = 0, x = 1.0;
	for (int i = 1; i <= 100000; i++)
		s += x / ((double)i * i);
	printf("sum 1/n^2: %.17g\n", s);
	volatile long double ld = 1.0L;
	for (int i = 0; i < 50; i++)
		ld = ld * 1.1L + 0.5L / (i + 1);
	printf("x87 long double: %.21Lg\n", ld);
	volatile float f = 16777216.0f;
	printf("float rounding: %.1f\n", (double)(f + 1.0f));
	printf("sqrt(2): %.17g\n", __builtin_sqrt(2.0));

	/* MXCSR rounding mode survives a syscall */
	unsigned up = (mxcsr & ~0x6000u) | 0x4000u, after;
	__asm__ volatile("ldmxcsr %0" : : "m"(up) : "memory");
	syscall(SYS_getpid);
	__asm__ volatile("stmxcsr %0" : "=m"(after) : : "memory");
	volatile double one = 1.0, three = 3.0;
	volatile double third_up = one / three;
	__asm__ volatile("ldmxcsr %0" : : "m"(mxcsr) : "memory");
	CHECK("MXCSR survives syscall", after == up);
	printf("1/3 rounded up: %.17g\n", third_up);
	printf("1/3 rounded to nearest: %.17g\n", one / three);

	CHECK("xmm0-15 survive syscall", xmm_syscall());
	long pg = sysconf(_SC_PAGESIZE);
	char *page = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK("xmm0-15 survive page fault", page != MAP_FAILED && xmm_fault(page));
	CHECK("general registers survive syscall", gpr_syscall());
	int avx = avx_usable();
	printf("avx usable: %s\n", avx ? "yes" : "no");
	if (avx)
		CHECK("ymm0-15 survive syscall", ymm_syscall());
	return 0;
}
