/* Page faults and signals in every context the platform serves them from (under PVM's direct
 * switch they go through the ring from the exception stub): registers across a fault, stack
 * growth, copy-on-write after fork, a fault inside a signal handler, a SIGSEGV handler that
 * fixes the page and returns, a fault while another thread unmaps, signals landing while a
 * thread is in the middle of system calls, and a storm of short-lived threads.
 * Usage: fault_contexts CASE (see main). */
#include "conf.h"
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/mman.h>
#include <sys/syscall.h>

static long page_size;

static char *fresh(size_t pages, int prot)
{
	char *p = mmap(NULL, pages * page_size, prot, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		printf("mmap: %s\n", errname(errno));
		exit(1);
	}
	return p;
}

/* Every general register (but RSP) and the carry flag survive a write fault on a new page. */
static int regs_across_fault(void)
{
	int bad = 0;
	for (int round = 0; round < 64; round++) {
		char *page = fresh(1, PROT_READ | PROT_WRITE);
		uint64_t out[14];
		char *pg = page;
		__asm__ volatile(
			"push %%rbp\n"
			"push %%rax\n" /* out */
			"mov $0x1111111111111111, %%rbx\n"
			"mov $0x2222222222222222, %%rcx\n"
			"mov $0x3333333333333333, %%rdx\n"
			"mov $0x4444444444444444, %%rsi\n"
			"mov $0x6666666666666666, %%rbp\n"
			"mov $0x8888888888888888, %%r8\n"
			"mov $0x9999999999999999, %%r9\n"
			"mov $0xaaaaaaaaaaaaaaaa, %%r10\n"
			"mov $0xbbbbbbbbbbbbbbbb, %%r11\n"
			"mov $0xcccccccccccccccc, %%r12\n"
			"mov $0xdddddddddddddddd, %%r13\n"
			"mov $0xeeeeeeeeeeeeeeee, %%r14\n"
			"mov $0xffffffffffffffff, %%r15\n"
			"stc\n"
			"movb $1, (%%rdi)\n" /* the fault */
			"setc %%al\n"
			"movzbq %%al, %%rax\n"
			"mov %%rax, %%rdi\n" /* carry */
			"pop %%rax\n"
			"mov %%rbx, 0(%%rax)\n"
			"mov %%rcx, 8(%%rax)\n"
			"mov %%rdx, 16(%%rax)\n"
			"mov %%rsi, 24(%%rax)\n"
			"mov %%rbp, 32(%%rax)\n"
			"mov %%r8, 40(%%rax)\n"
			"mov %%r9, 48(%%rax)\n"
			"mov %%r10, 56(%%rax)\n"
			"mov %%r11, 64(%%rax)\n"
			"mov %%r12, 72(%%rax)\n"
			"mov %%r13, 80(%%rax)\n"
			"mov %%r14, 88(%%rax)\n"
			"mov %%r15, 96(%%rax)\n"
			"mov %%rdi, 104(%%rax)\n"
			"pop %%rbp\n"
			: "+D"(pg)
			: "a"(out)
			: "rbx", "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
			  "r15", "memory", "cc");
		static const uint64_t want[13] = {
			0x1111111111111111, 0x2222222222222222, 0x3333333333333333,
			0x4444444444444444, 0x6666666666666666, 0x8888888888888888,
			0x9999999999999999, 0xaaaaaaaaaaaaaaaa, 0xbbbbbbbbbbbbbbbb,
			0xcccccccccccccccc, 0xdddddddddddddddd, 0xeeeeeeeeeeeeeeee,
			0xffffffffffffffff};
		for (int i = 0; i < 13; i++)
			bad += out[i] != want[i];
		bad += out[13] != 1;
		bad += page[0] != 1;
		munmap(page, page_size);
	}
	printf("registers across faults: %s\n", bad ? "CHANGED" : "ok");
	return bad != 0;
}

static long deep(int depth)
{
	volatile char frame[1024];
	for (int i = 0; i < (int)sizeof frame; i += 64)
		frame[i] = (char)(depth + i);
	if (depth == 0)
		return frame[0];
	return deep(depth - 1) + frame[64];
}

static int stack_growth(void)
{
	/* About 2 MiB of new stack, touched a frame at a time. */
	printf("stack growth: %ld\n", deep(2000));
	return 0;
}

static int cow_after_fork(void)
{
	size_t pages = 64;
	char *p = fresh(pages, PROT_READ | PROT_WRITE);
	for (size_t i = 0; i < pages; i++)
		p[i * page_size] = 'p';
	pid_t child = fork();
	if (child == 0) {
		int bad = 0;
		for (size_t i = 0; i < pages; i++) {
			bad += p[i * page_size] != 'p';
			p[i * page_size] = 'c';
		}
		for (size_t i = 0; i < pages; i++)
			bad += p[i * page_size] != 'c';
		_exit(bad ? 1 : 0);
	}
	for (size_t i = 0; i < pages; i += 2)
		p[i * page_size] = 'P';
	int status;
	waitpid(child, &status, 0);
	int bad = 0;
	for (size_t i = 0; i < pages; i++)
		bad += p[i * page_size] != (i % 2 ? 'p' : 'P');
	printf("copy-on-write: child %d, parent %s\n", WEXITSTATUS(status), bad ? "CHANGED" : "ok");
	return 0;
}

static char *handler_pages;
static volatile long handler_sum;

static void touch_in_handler(int sig)
{
	(void)sig;
	long sum = 0;
	for (int i = 0; i < 64; i++) {
		handler_pages[i * page_size] = (char)i;
		sum += handler_pages[i * page_size];
	}
	handler_sum = sum;
}

static int fault_in_handler(void)
{
	handler_pages = fresh(64, PROT_READ | PROT_WRITE);
	signal(SIGUSR1, touch_in_handler);
	raise(SIGUSR1);
	printf("faults in a handler: sum %ld\n", handler_sum);
	return 0;
}

static char *guarded;
static volatile int fixes;

static void fix_page(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if ((char *)si->si_addr != guarded + fixes * page_size) {
		printf("SIGSEGV at an unexpected address\n");
		_exit(2);
	}
	mprotect(guarded + fixes * page_size, page_size, PROT_READ | PROT_WRITE);
	fixes++;
}

static int segv_fixes_page(void)
{
	guarded = fresh(16, PROT_NONE);
	struct sigaction sa = {0};
	sa.sa_sigaction = fix_page;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSEGV, &sa, NULL);
	long sum = 0;
	for (int i = 0; i < 16; i++) {
		guarded[i * page_size] = (char)(i + 1); /* faults, the handler fixes, it runs again */
		sum += guarded[i * page_size];
	}
	printf("handler fixed %d pages, sum %ld\n", fixes, sum);
	return 0;
}

/* One thread touches a region while another unmaps and maps it again: each access either
 * succeeds or raises SIGSEGV at an address inside the region; nothing else happens. */
#define RACE_PAGES 8
static char *race_region;
static atomic_int race_stop;
static sigjmp_buf race_jmp;
static volatile int race_outside;

static void race_segv(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	char *a = si->si_addr;
	if (a < race_region || a >= race_region + RACE_PAGES * page_size)
		race_outside++;
	siglongjmp(race_jmp, 1);
}

static void *race_unmapper(void *arg)
{
	(void)arg;
	for (int i = 0; i < 2000 && !atomic_load(&race_stop); i++) {
		munmap(race_region, RACE_PAGES * page_size);
		sched_yield();
		mmap(race_region, RACE_PAGES * page_size, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	}
	atomic_store(&race_stop, 1);
	return NULL;
}

static int fault_while_unmapped(void)
{
	race_region = fresh(RACE_PAGES, PROT_READ | PROT_WRITE);
	struct sigaction sa = {0};
	sa.sa_sigaction = race_segv;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	pthread_t t;
	pthread_create(&t, NULL, race_unmapper, NULL);
	volatile long accesses = 0;
	sigsetjmp(race_jmp, 1);
	while (!atomic_load(&race_stop)) {
		race_region[(accesses % RACE_PAGES) * page_size] = 1;
		accesses++;
	}
	pthread_join(t, NULL);
	printf("fault while unmapping: %s\n", race_outside ? "SIGSEGV outside the region" : "ok");
	return 0;
}

/* Signals sent to a thread that spends its time in system calls. */
static atomic_int handled;
static atomic_int caller_done;
static volatile int caller_bad;

static void count_signal(int sig)
{
	(void)sig;
	atomic_fetch_add(&handled, 1);
}

static void *caller(void *arg)
{
	(void)arg;
	pid_t pid = getpid();
	long sum = 0;
	for (long i = 0; !atomic_load(&caller_done); i++) {
		if (syscall(SYS_getpid) != pid)
			caller_bad = 1;
		sum += i;
	}
	return (void *)sum;
}

static int signals_mid_call(void)
{
	struct sigaction sa = {0};
	sa.sa_handler = count_signal;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	pthread_t t;
	pthread_create(&t, NULL, caller, NULL);
	int sent = 0;
	for (int i = 0; i < 300; i++) {
		pthread_kill(t, SIGUSR1);
		sent++;
		while (atomic_load(&handled) < sent)
			sched_yield();
	}
	atomic_store(&caller_done, 1);
	pthread_join(t, NULL);
	printf("signals mid-call: sent %d, handled %d, getpid %s\n", sent, atomic_load(&handled),
	       caller_bad ? "WRONG" : "ok");
	return 0;
}

static void *storm_thread(void *arg)
{
	long n = (long)arg;
	char *buf = malloc(16 * page_size);
	long sum = 0;
	for (int i = 0; i < 16; i++) {
		buf[i * page_size] = (char)(n + i);
		sum += buf[i * page_size];
	}
	free(buf);
	volatile char stack[8192];
	for (int i = 0; i < (int)sizeof stack; i += 512)
		stack[i] = 1;
	return (void *)sum;
}

static int thread_storm(void)
{
	long total = 0;
	for (int round = 0; round < 10; round++) {
		pthread_t t[48];
		for (long i = 0; i < 48; i++)
			if (pthread_create(&t[i], NULL, storm_thread, (void *)i) != 0) {
				printf("pthread_create failed\n");
				return 1;
			}
		for (int i = 0; i < 48; i++) {
			void *r;
			pthread_join(t[i], &r);
			total += (long)r;
		}
	}
	printf("thread storm: 480 threads, sum %ld\n", total);
	return 0;
}

int main(int argc, char **argv)
{
	page_size = sysconf(_SC_PAGESIZE);
	const char *c = argc > 1 ? argv[1] : "";
	if (!strcmp(c, "regs"))
		return regs_across_fault();
	if (!strcmp(c, "stack"))
		return stack_growth();
	if (!strcmp(c, "cow"))
		return cow_after_fork();
	if (!strcmp(c, "handler"))
		return fault_in_handler();
	if (!strcmp(c, "segv_fix"))
		return segv_fixes_page();
	if (!strcmp(c, "unmap_race"))
		return fault_while_unmapped();
	if (!strcmp(c, "signals_mid_call"))
		return signals_mid_call();
	if (!strcmp(c, "storm"))
		return thread_storm();
	printf("usage: fault_contexts regs|stack|cow|handler|segv_fix|unmap_race|signals_mid_call|storm\n");
	return 2;
}
