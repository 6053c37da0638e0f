/* Signal handlers: raise, SA_SIGINFO, masks during handlers, SA_RESETHAND, SA_NODEFER,
 * sigaltstack, a SIGSEGV handler that longjmps out, signals between processes, and the
 * FPU state surviving a handler. */
#include "conf.h"
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t hits;
static volatile int seen_code, seen_pid_ok, seen_blocked_inside;
static sigjmp_buf jump;
static char altstack[65536];
static volatile int on_alt;

static void count(int sig) { (void)sig; hits++; }

static void info_handler(int sig, siginfo_t *si, void *uc) {
	(void)uc;
	seen_code = si->si_code;
	seen_pid_ok = si->si_pid == getpid() && si->si_signo == sig;
	sigset_t cur;
	sigprocmask(SIG_BLOCK, NULL, &cur);
	seen_blocked_inside = sigismember(&cur, sig);
}

static void segv(int sig, siginfo_t *si, void *uc) {
	(void)uc;
	printf("SIGSEGV handler: sig %d code %d addr ok %d\n", sig, si->si_code, si->si_addr == (void *)16);
	siglongjmp(jump, 1);
}

static void alt_handler(int sig) {
	(void)sig;
	char here;
	on_alt = &here >= altstack && &here < altstack + sizeof altstack;
}

static void fpu_clobber(int sig) {
	(void)sig;
	volatile double x = 12345.678;
	for (int i = 0; i < 100; i++) x = x * 1.0001 + 3.0;
	hits += x > 0;
}

static void term_handler(int sig) {
	printf("child got %d\n", sig);
	_exit(42);
}

int main(void) {
	setvbuf(stdout, NULL, _IONBF, 0);
	signal(SIGUSR1, count);
	raise(SIGUSR1);
	raise(SIGUSR1);
	printf("handler ran: %d\n", hits);

	struct sigaction sa = {0};
	sa.sa_sigaction = info_handler;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGUSR2, &sa, NULL);
	kill(getpid(), SIGUSR2);
	printf("siginfo: code %d pid ok %d blocked inside %d\n", seen_code, seen_pid_ok, seen_blocked_inside);
	raise(SIGUSR2);
	printf("raise code is SI_TKILL: %d\n", seen_code == SI_TKILL);

	sigset_t block, old;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &old);
	hits = 0;
	raise(SIGUSR1);
	printf("blocked: %d\n", hits);
	sigset_t pend;
	sigpending(&pend);
	printf("pending: %d\n", sigismember(&pend, SIGUSR1));
	sigprocmask(SIG_SETMASK, &old, NULL);
	printf("after unblock: %d\n", hits);

	sa = (struct sigaction){0};
	sa.sa_handler = count;
	sa.sa_flags = SA_RESETHAND;
	sigaction(SIGUSR1, &sa, NULL);
	raise(SIGUSR1);
	struct sigaction now;
	sigaction(SIGUSR1, NULL, &now);
	printf("SA_RESETHAND: default again %d\n", now.sa_handler == SIG_DFL);

	stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0 };
	printf("sigaltstack: %d\n", sigaltstack(&ss, NULL));
	sa = (struct sigaction){0};
	sa.sa_handler = alt_handler;
	sa.sa_flags = SA_ONSTACK;
	sigaction(SIGWINCH, &sa, NULL);
	raise(SIGWINCH);
	printf("ran on the alternate stack: %d\n", on_alt);
	ss.ss_size = 100;
	printf("too small: %s\n", sigaltstack(&ss, NULL) ? errname(errno) : "ok");

	sa = (struct sigaction){0};
	sa.sa_sigaction = segv;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSEGV, &sa, NULL);
	if (sigsetjmp(jump, 1) == 0) {
		*(volatile int *)16 = 1;
		printf("not reached\n");
	}
	printf("back from SIGSEGV\n");

	signal(SIGUSR1, fpu_clobber);
	volatile double a = 1.5, b = 2.25;
	raise(SIGUSR1);
	printf("fpu survives: %.4f\n", a * b);

	signal(SIGINT, SIG_IGN);
	raise(SIGINT);
	printf("ignored SIGINT\n");

	pid_t c = fork();
	if (c == 0) {
		signal(SIGTERM, term_handler);
		for (;;) pause();
	}
	usleep(100000);
	kill(c, SIGTERM);
	int st;
	waitpid(c, &st, 0);
	printf("child exit %d\n", WEXITSTATUS(st));
	c = fork();
	if (c == 0) {
		for (;;) pause();
	}
	kill(c, SIGKILL);
	waitpid(c, &st, 0);
	printf("child killed: %d sig %d\n", WIFSIGNALED(st), WTERMSIG(st));
	return 0;
}
