/* Hardware faults with no handler installed: the default action kills the
 * process, and the status is 128 + the signal. argv[1] picks the fault. */
#include "conf.h"
#include <sys/mman.h>
#include <unistd.h>

static volatile int zero = 0;

/* Recurses until the stack limit (the depth bound is never reached). */
static int recurse(volatile char *prev, long depth)
{
	volatile char buf[4096];
	buf[0] = prev ? prev[0] + 1 : 0;
	if (depth > (1L << 40))
		return buf[0];
	return recurse(buf, depth + 1) + buf[1];
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		printf("usage: faults KIND\n");
		return 2;
	}
	const char *k = argv[1];
	printf("fault: %s\n", k);
	fflush(stdout);
	if (!strcmp(k, "ud2")) {
		__asm__ volatile("ud2");	/* SIGILL */
	} else if (!strcmp(k, "int3")) {
		__asm__ volatile("int3");	/* SIGTRAP */
	} else if (!strcmp(k, "div0")) {
		unsigned eax = 1, edx = 0, ecx = zero;
		__asm__ volatile("divl %2" : "+a"(eax), "+d"(edx) : "r"(ecx));
		printf("%u\n", eax);		/* not reached: SIGFPE */
	} else if (!strcmp(k, "hlt")) {
		__asm__ volatile("hlt");	/* privileged: SIGSEGV */
	} else if (!strcmp(k, "cli")) {
		__asm__ volatile("cli");	/* privileged: SIGSEGV */
	} else if (!strcmp(k, "read_null")) {
		printf("%d\n", *(volatile int *volatile)NULL);	/* SIGSEGV */
	} else if (!strcmp(k, "jump_null")) {
		void (*volatile f)(void) = NULL;
		f();				/* SIGSEGV on instruction fetch */
	} else if (!strcmp(k, "exec_nx")) {
		/* Executing a non-executable page: SIGSEGV. */
		long pg = sysconf(_SC_PAGESIZE);
		unsigned char *p = mmap(NULL, pg, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		p[0] = 0xc3;			/* ret */
		void (*volatile f)(void) = (void (*)(void))p;
		f();
	} else if (!strcmp(k, "prot_none")) {
		long pg = sysconf(_SC_PAGESIZE);
		volatile char *p = mmap(NULL, pg, PROT_NONE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		printf("%d\n", p[0]);		/* SIGSEGV */
	} else if (!strcmp(k, "unmapped")) {
		long pg = sysconf(_SC_PAGESIZE);
		volatile char *p = mmap(NULL, pg, PROT_READ | PROT_WRITE,
					MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		munmap((void *)p, pg);
		p[0] = 1;			/* SIGSEGV */
	} else if (!strcmp(k, "noncanonical")) {
		/* A non-canonical address raises #GP, not #PF: still SIGSEGV. */
		printf("%d\n", *(volatile int *volatile)0x8000000000000000UL);
	} else if (!strcmp(k, "align")) {
		/* RFLAGS.AC with CR0.AM: a misaligned load raises #AC, SIGBUS. */
		static char buf[16];
		__asm__ volatile("pushf; orl $0x40000, (%%rsp); popf" ::: "memory", "cc");
		printf("%d\n", *(volatile int *)(buf + 1));
	} else if (!strcmp(k, "stack_overflow")) {
		return recurse(NULL, 0);		/* runs into the stack limit: SIGSEGV */
	} else {
		printf("unknown fault kind\n");
		return 2;
	}
	printf("survived (wrong)\n");
	return 0;
}
