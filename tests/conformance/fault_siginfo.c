/* Faults caught by an SA_SIGINFO handler: the signal, si_code and si_addr Linux
 * gives for each (the instruction for SIGILL and SIGFPE, the data address for
 * page faults, none for general protection and int3). */
#include "conf.h"
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

static sigjmp_buf env;
static volatile int got_sig, got_code;
static void *volatile got_addr;
static volatile unsigned long got_rip;
static volatile int zero = 0;

static void on_fault(int sig, siginfo_t *si, void *ctx)
{
	got_sig = sig;
	got_code = si->si_code;
	got_addr = si->si_addr;
	got_rip = ((ucontext_t *)ctx)->uc_mcontext.gregs[REG_RIP];
	siglongjmp(env, 1);
}

static const char *signame(int s)
{
	switch (s) {
	case SIGSEGV: return "SIGSEGV";
	case SIGBUS: return "SIGBUS";
	case SIGILL: return "SIGILL";
	case SIGFPE: return "SIGFPE";
	case SIGTRAP: return "SIGTRAP";
	default: return "other";
	}
}

static void report(const char *what, void *data_addr)
{
	const char *where;
	if (got_addr == NULL)
		where = "null";
	else if ((unsigned long)got_addr == got_rip)
		where = "the instruction";
	else if (got_addr == data_addr)
		where = "the data";
	else
		where = "elsewhere";
	printf("%s: %s code %d, si_addr %s\n", what, signame(got_sig), got_code, where);
}

int main(void)
{
	struct sigaction sa = {0};
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO | SA_NODEFER;
	int sigs[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP};
	for (unsigned i = 0; i < sizeof sigs / sizeof *sigs; i++)
		sigaction(sigs[i], &sa, NULL);
	long pg = sysconf(_SC_PAGESIZE);
	volatile char *none = mmap(NULL, pg, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	volatile char *ro = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (sigsetjmp(env, 1) == 0)
		__asm__ volatile("ud2");
	report("ud2", NULL);
	if (sigsetjmp(env, 1) == 0) {
		unsigned eax = 1, edx = 0, ecx = zero;
		__asm__ volatile("divl %2" : "+a"(eax), "+d"(edx) : "r"(ecx));
	}
	report("divide by zero", NULL);
	if (sigsetjmp(env, 1) == 0)
		(void)*(volatile int *volatile)NULL;
	report("read of NULL", NULL);
	if (sigsetjmp(env, 1) == 0)
		(void)none[8];
	report("read of PROT_NONE", (void *)(none + 8));
	if (sigsetjmp(env, 1) == 0)
		ro[16] = 1;
	report("write to PROT_READ", (void *)(ro + 16));
	if (sigsetjmp(env, 1) == 0)
		(void)*(volatile int *volatile)0x8000000000000000UL;
	report("non-canonical address", NULL);
	if (sigsetjmp(env, 1) == 0)
		__asm__ volatile("hlt");
	report("hlt", NULL);
	return 0;
}
