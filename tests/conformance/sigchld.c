/* A process's end signals its parent: SIGCHLD for fork (or the signal clone named), with
 * si_code/si_pid/si_status saying how it ended. Shells wait for background jobs by
 * sleeping in sigsuspend until SIGCHLD arrives (dash, busybox ash). A SIGCHLD left at its
 * default action is discarded and ends no sleep. */
#include "conf.h"
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef __WALL
#define __WALL 0x40000000
#endif

static volatile sig_atomic_t chld_count, chld_code, chld_status, chld_pid, usr1_count,
	usr2_count;

static void on_chld(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	if (sig != SIGCHLD || si->si_signo != SIGCHLD)
		return;
	chld_count++;
	chld_code = si->si_code;
	chld_status = si->si_status;
	chld_pid = si->si_pid;
}

static void on_usr1(int sig) { (void)sig; usr1_count++; }
static void on_usr2(int sig) { (void)sig; usr2_count++; }

static const char *code_name(int c)
{
	switch (c) {
	case CLD_EXITED: return "CLD_EXITED";
	case CLD_KILLED: return "CLD_KILLED";
	case CLD_DUMPED: return "CLD_DUMPED";
	default: return "other";
	}
}

/* The dash way: block everything, WNOHANG-poll, sigsuspend until the handler ran. */
static void wait_like_a_shell(const char *label, pid_t child)
{
	sigset_t all, old;
	sigfillset(&all);
	int st, rounds = 0;
	for (;;) {
		pid_t r = waitpid(child, &st, WNOHANG);
		if (r == child)
			break;
		sigprocmask(SIG_SETMASK, &all, &old);
		while (!chld_count)
			sigsuspend(&old);
		sigprocmask(SIG_SETMASK, &old, NULL);
		rounds++;
	}
	printf("%s: %d SIGCHLD, %s, status %d, pid matches %d, slept %s\n", label,
	       (int)chld_count, code_name(chld_code), (int)chld_status, chld_pid == child,
	       rounds ? "until SIGCHLD" : "not at all");
}

/* A zombie whose parent ends goes to the subreaper, which is told of it then (SIGCHLD with
 * the zombie's pid and status), as a child of its own that just ended. The middle process
 * ends with exit signal SIGUSR1, so the two notices can't merge into one SIGCHLD. */
static void orphaned_zombie(void)
{
	CHECK("PR_SET_CHILD_SUBREAPER", prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
	sigset_t chld, old;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old);
	int pipefd[2];
	CHECK("pipe", pipe(pipefd) == 0);
	long middle = syscall(SYS_clone, SIGUSR1, 0, 0, 0, 0);
	if (middle == 0) {
		pid_t g = fork();
		if (g == 0)
			_exit(7);
		/* Wait until it is a zombie (the wait leaves it one), then tell its pid. */
		siginfo_t si;
		waitid(P_PID, g, &si, WEXITED | WNOWAIT);
		write(pipefd[1], &g, sizeof g);
		syscall(SYS_exit, 0);
	}
	CHECK("clone", middle > 0);
	pid_t grandchild = 0;
	CHECK("read", read(pipefd[0], &grandchild, sizeof grandchild) == sizeof grandchild);
	int st;
	waitpid((pid_t)middle, &st, __WALL);
	struct timespec ts = {5, 0};
	siginfo_t si;
	memset(&si, 0, sizeof si);
	int sig = sigtimedwait(&chld, &si, &ts);
	printf("orphaned zombie: SIGCHLD %d, %s, status %d, its pid %d\n", sig == SIGCHLD,
	       code_name(si.si_code), si.si_status, si.si_pid == grandchild);
	printf("subreaper reaps it: %d\n", waitpid(grandchild, &st, 0) == grandchild &&
	       WIFEXITED(st) && WEXITSTATUS(st) == 7);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

/* Read through a signalfd, SIGCHLD carries the same: ssi_code, ssi_pid, ssi_status. */
static void through_signalfd(void)
{
	sigset_t chld, old;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old);
	int fd = signalfd(-1, &chld, 0);
	CHECK("signalfd", fd >= 0);
	pid_t c = fork();
	if (c == 0)
		_exit(9);
	struct signalfd_siginfo ssi;
	memset(&ssi, 0, sizeof ssi);
	CHECK("read signalfd", read(fd, &ssi, sizeof ssi) == sizeof ssi);
	printf("signalfd: SIGCHLD %d, %s, status %d, its pid %d\n", ssi.ssi_signo == SIGCHLD,
	       code_name(ssi.ssi_code), (int)ssi.ssi_status, ssi.ssi_pid == (unsigned)c);
	waitpid(c, NULL, 0);
	close(fd);
	sigprocmask(SIG_SETMASK, &old, NULL);
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	alarm(30);
	struct sigaction sa = {0};
	sa.sa_sigaction = on_chld;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGCHLD, &sa, NULL);
	signal(SIGUSR1, on_usr1);
	signal(SIGUSR2, on_usr2);

	chld_count = 0;
	pid_t c = fork();
	if (c == 0) {
		usleep(50000);
		_exit(3);
	}
	wait_like_a_shell("exit 3", c);

	chld_count = 0;
	c = fork();
	if (c == 0) {
		signal(SIGTERM, SIG_DFL);
		usleep(50000);
		kill(getpid(), SIGTERM);
		pause();
		_exit(0);
	}
	wait_like_a_shell("killed by SIGTERM", c);

	/* Blocked: it stays pending until unblocked, then the handler runs once. */
	sigset_t chld, old;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old);
	chld_count = 0;
	c = fork();
	if (c == 0)
		_exit(0);
	int st;
	waitpid(c, &st, 0);
	sigset_t pending;
	sigpending(&pending);
	printf("blocked SIGCHLD pending: %d, handled meanwhile: %d\n",
	       sigismember(&pending, SIGCHLD), (int)chld_count);
	sigprocmask(SIG_SETMASK, &old, NULL);
	printf("after unblocking: %d SIGCHLD\n", (int)chld_count);

	/* clone's exit signal: SIGUSR1 instead of SIGCHLD. */
	chld_count = 0;
	long r = syscall(SYS_clone, SIGUSR1, 0, 0, 0, 0);
	if (r == 0)
		syscall(SYS_exit, 5);
	CHECK("clone", r > 0);
	sigset_t usr1, none;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigemptyset(&none);
	sigprocmask(SIG_BLOCK, &usr1, &old);
	while (!usr1_count)
		sigsuspend(&none);
	sigprocmask(SIG_SETMASK, &old, NULL);
	waitpid((pid_t)r, &st, __WALL);
	printf("clone exit signal SIGUSR1: %d, SIGCHLD: %d, exit code %d\n", (int)usr1_count,
	       (int)chld_count, WEXITSTATUS(st));

	/* At its default action SIGCHLD is discarded: it doesn't end sigsuspend, the next
	 * handled signal does. */
	signal(SIGCHLD, SIG_DFL);
	sigset_t both;
	sigemptyset(&both);
	sigaddset(&both, SIGUSR2);
	sigprocmask(SIG_BLOCK, &both, &old);
	pid_t parent = getpid();
	c = fork();
	if (c == 0) {
		pid_t grandchild = fork();
		if (grandchild == 0)
			_exit(0);
		waitpid(grandchild, NULL, 0);
		usleep(100000);
		kill(parent, SIGUSR2);
		_exit(0);
	}
	pid_t quick = fork();
	if (quick == 0)
		_exit(0);
	sigsuspend(&none);
	printf("sigsuspend with default SIGCHLD ended by SIGUSR2: %d\n", (int)usr2_count);
	sigprocmask(SIG_SETMASK, &old, NULL);
	waitpid(c, NULL, 0);
	waitpid(quick, NULL, 0);

	through_signalfd();
	orphaned_zombie();
	return 0;
}
