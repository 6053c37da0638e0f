/* What execve resets and what it keeps (Linux's begin_new_exec, flush_signal_handlers,
 * setup_new_exec, flush_thread): the program sets up state, execs itself with "after",
 * and the new image prints what it finds.
 *
 * Reset: handled signals to SIG_DFL, ignored ones stay ignored with flags and mask
 * cleared; the alternate signal stack (a handler with SA_ONSTACK then runs on the normal
 * stack); the name (comm) becomes the new program's; dumpable back to 1; keep-caps off;
 * the FPU state (rounding mode, MXCSR); the GS base; the robust list.
 * Kept: the signal mask, pending signals, the parent-death signal (no set-id exec),
 * interval timers, descriptors without FD_CLOEXEC. And a child sharing the descriptor
 * table (CLONE_FILES) gets its own at execve, so close-on-exec leaves ours alone. */
#include "conf.h"
#define ARCH_SET_GS 0x1001
#define ARCH_GET_GS 0x1004
#include <fenv.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <fcntl.h>
#include <unistd.h>

static volatile int handled;
static volatile int on_alt;
static stack_t seen;

static void on_usr1(int sig)
{
	(void)sig;
	handled++;
	sigaltstack(NULL, &seen);
	on_alt = (seen.ss_flags & SS_ONSTACK) != 0;
}

static void show_action(const char *name, int sig)
{
	struct sigaction sa;
	sigaction(sig, NULL, &sa);
	int empty = 1;
	for (int s = 1; s < 32; s++)
		if (sigismember(&sa.sa_mask, s))
			empty = 0;
	const char *h = sa.sa_handler == SIG_DFL ? "SIG_DFL"
			: sa.sa_handler == SIG_IGN ? "SIG_IGN"
						   : "a handler";
	/* SA_RESTORER is the libc's own business. */
	printf("%s: %s, flags %#x, mask empty %d\n", name, h,
	       (unsigned)(sa.sa_flags & ~0x04000000), empty);
}

static unsigned mxcsr(void)
{
	unsigned v;
	__asm__ volatile("stmxcsr %0" : "=m"(v));
	return v;
}

static unsigned short fpu_cw(void)
{
	unsigned short v;
	__asm__ volatile("fnstcw %0" : "=m"(v));
	return v;
}

static void show_comm(const char *when)
{
	char comm[32] = {0};
	int f = open("/proc/self/comm", O_RDONLY);
	if (f >= 0) {
		ssize_t n = read(f, comm, sizeof comm - 1);
		if (n > 0 && comm[n - 1] == '\n')
			comm[n - 1] = 0;
		close(f);
	}
	printf("/proc/self/comm %s: %s\n", when, comm);
}

static int after(void)
{
	show_action("SIGUSR1 (was handled)", SIGUSR1);
	show_action("SIGUSR2 (was ignored with flags)", SIGUSR2);
	show_action("SIGCHLD (was ignored, SA_NOCLDWAIT)", SIGCHLD);
	show_action("SIGPIPE (was ignored)", SIGPIPE);

	stack_t ss;
	sigaltstack(NULL, &ss);
	printf("altstack: disabled %d, size %zu\n", (ss.ss_flags & SS_DISABLE) != 0, ss.ss_size);

	sigset_t mask, pend;
	sigprocmask(SIG_BLOCK, NULL, &mask);
	sigpending(&pend);
	printf("mask: SIGTERM %d SIGHUP %d; pending: SIGTERM %d\n", sigismember(&mask, SIGTERM),
	       sigismember(&mask, SIGHUP), sigismember(&pend, SIGTERM));

	/* A handler that asks for the alternate stack runs on the normal one: none is set. */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_ONSTACK;
	sigaction(SIGUSR1, &sa, NULL);
	raise(SIGUSR1);
	printf("SA_ONSTACK handler ran: %d, on an alternate stack: %d\n", handled, on_alt);

	char name[17] = {0};
	prctl(PR_GET_NAME, name);
	printf("name: %s\n", name);
	show_comm("after execve");
	printf("dumpable: %d, keepcaps: %d\n", prctl(PR_GET_DUMPABLE), prctl(PR_GET_KEEPCAPS));
	int pdeath = -1;
	prctl(PR_GET_PDEATHSIG, &pdeath);
	printf("pdeathsig: %d\n", pdeath);

	printf("rounding to nearest: %d, mxcsr %#x, x87 control %#x\n", fegetround() == FE_TONEAREST,
	       mxcsr(), fpu_cw());
	unsigned long gs = 1;
	syscall(SYS_arch_prctl, ARCH_GET_GS, &gs);
	printf("gs base: %#lx\n", gs);

	void *head = (void *)1;
	size_t len = 1;
	syscall(SYS_get_robust_list, 0, &head, &len);
	printf("robust list head: %s\n", head ? "set" : "NULL");

	struct itimerval it;
	getitimer(ITIMER_REAL, &it);
	printf("ITIMER_REAL running: %d, interval %ld s\n",
	       it.it_value.tv_sec > 0 || it.it_value.tv_usec > 0, (long)it.it_interval.tv_sec);

	printf("fd 5 (no FD_CLOEXEC) open: %d, fd 6 (FD_CLOEXEC) open: %d\n",
	       fcntl(5, F_GETFD) >= 0, fcntl(6, F_GETFD) >= 0);
	return 0;
}

static void before(const char *self)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_ONSTACK | SA_RESTART;
	sigaddset(&sa.sa_mask, SIGINT);
	sigaction(SIGUSR1, &sa, NULL);

	sa.sa_handler = SIG_IGN;
	sa.sa_flags = SA_RESTART | SA_NODEFER;
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_flags = SA_NOCLDWAIT | SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	static char stack[1 << 16];
	stack_t ss = {.ss_sp = stack, .ss_size = sizeof stack, .ss_flags = 0};
	sigaltstack(&ss, NULL);

	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, NULL);
	raise(SIGTERM);

	prctl(PR_SET_NAME, "before-exec");
	show_comm("before execve");
	prctl(PR_SET_DUMPABLE, 0);
	prctl(PR_SET_KEEPCAPS, 1);
	prctl(PR_SET_PDEATHSIG, SIGUSR2);

	fesetround(FE_UPWARD);
	unsigned short cw = 0x27f;
	__asm__ volatile("fldcw %0" : : "m"(cw));
	syscall(SYS_arch_prctl, ARCH_SET_GS, 0x12345000UL);

	static long robust[3] = {0, 0, 0};
	robust[0] = (long)robust;
	syscall(SYS_set_robust_list, robust, sizeof robust);

	struct itimerval it = {{100, 0}, {1000, 0}};
	setitimer(ITIMER_REAL, &it, NULL);

	int p[2];
	if (pipe(p) == 0) {
		dup2(p[0], 5);
		dup2(p[1], 6);
		fcntl(6, F_SETFD, FD_CLOEXEC);
	}

	char *argv[] = {"exec_reset", "after", NULL};
	char *envp[] = {NULL};
	execve(self, argv, envp);
	printf("execve: %s\n", errname(errno));
}

/* A child that shares our descriptor table (CLONE_FILES) execs: it gets a table of its
 * own first (Linux's unshare_files), so our FD_CLOEXEC descriptors stay open. */
static void shared_table(const char *self)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) != 0)
		return;
	long pid = syscall(SYS_clone, CLONE_FILES | SIGCHLD, 0, 0, 0, 0);
	if (pid == 0) {
		char *argv[] = {"exec_reset", "exit", NULL};
		char *envp[] = {NULL};
		syscall(SYS_execve, self, argv, envp);
		syscall(SYS_exit, 99);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	printf("CLONE_FILES child: %s; our FD_CLOEXEC descriptors still open: %d %d\n",
	       wait_status(st), fcntl(p[0], F_GETFD) >= 0, fcntl(p[1], F_GETFD) >= 0);
	close(p[0]);
	close(p[1]);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "after") == 0)
		return after();
	if (argc > 1 && strcmp(argv[1], "exit") == 0)
		return 0;
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return 1;
	self[n] = 0;
	shared_table(self);
	before(self);
	return 1;
}
