/* Signal handler tables: shared by the threads of a process and by processes
 * cloned with CLONE_SIGHAND, copied by fork, reset (handled signals only) by
 * execve, which unshares a shared table first. Also: a fork child starts with
 * no pending signals but the parent's mask, and tgkill reaches the named
 * thread, asleep in pause. */
#include "conf.h"
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t hits1, hits2;
static volatile pid_t handler_tid;

static void h1(int sig) { (void)sig; hits1++; }
static void h2(int sig) { (void)sig; hits2++; handler_tid = (pid_t)syscall(SYS_gettid); }

static void set(int sig, void (*h)(int))
{
	struct sigaction sa = { 0 };
	sa.sa_handler = h;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

static void (*get(int sig))(int)
{
	struct sigaction sa;
	sigaction(sig, NULL, &sa);
	return sa.sa_handler;
}

static const char *name(void (*h)(int))
{
	if (h == SIG_DFL) return "SIG_DFL";
	if (h == SIG_IGN) return "SIG_IGN";
	if (h == h1) return "h1";
	if (h == h2) return "h2";
	return "other";
}

static void *installer(void *arg)
{
	(void)arg;
	set(SIGUSR1, h1);
	return NULL;
}

static volatile pid_t sleeper_tid;
static volatile int sleeper_woke;

static void *sleeper(void *arg)
{
	(void)arg;
	sleeper_tid = (pid_t)syscall(SYS_gettid);
	pause();
	sleeper_woke = 1;
	return NULL;
}

static int clone_child(void *arg)
{
	(void)arg;
	set(SIGUSR2, SIG_IGN);
	return 0;
}

static char *self_path;

static int clone_exec_child(void *arg)
{
	(void)arg;
	char *argv[] = { self_path, "exec-check", NULL };
	execv(self_path, argv);
	_exit(99);
}

static void reap(pid_t c, const char *label)
{
	int st;
	if (waitpid(c, &st, __WALL) != c)
		printf("%s: waitpid FAIL %s\n", label, errname(errno));
	else
		printf("%s: exit %d\n", label, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "exec-check")) {
		printf("after exec: SIGUSR1 %s SIGUSR2 %s SIGINT %s\n", name(get(SIGUSR1)),
		       name(get(SIGUSR2)), get(SIGINT) == SIG_IGN ? "SIG_IGN" : "not SIG_IGN");
		return 0;
	}
	self_path = argv[0];

	/* A handler installed by one thread is every thread's. */
	pthread_t th;
	pthread_create(&th, NULL, installer, NULL);
	pthread_join(th, NULL);
	printf("main sees the thread's handler: %s\n", name(get(SIGUSR1)));
	raise(SIGUSR1);
	printf("it runs in main: %d\n", hits1);

	/* tgkill reaches the named thread, which sleeps in pause. */
	set(SIGUSR2, h2);
	pthread_create(&th, NULL, sleeper, NULL);
	while (!sleeper_tid)
		usleep(1000);
	usleep(50000);
	syscall(SYS_tgkill, getpid(), sleeper_tid, SIGUSR2);
	pthread_join(th, NULL);
	printf("tgkill woke the sleeper: %d, handler ran on it: %d\n", sleeper_woke,
	       handler_tid == sleeper_tid);

	/* fork copies: the child's change stays its own. */
	pid_t c = fork();
	if (c == 0) {
		printf("child inherits: %s\n", name(get(SIGUSR2)));
		set(SIGUSR2, SIG_IGN);
		_exit(0);
	}
	reap(c, "fork child");
	printf("parent keeps after fork child's change: %s\n", name(get(SIGUSR2)));

	/* CLONE_SIGHAND (with CLONE_VM, as required) shares the table. */
	static char stack[65536] __attribute__((aligned(16)));
	c = clone(clone_child, stack + sizeof stack, CLONE_VM | CLONE_SIGHAND | SIGCHLD, NULL);
	reap(c, "CLONE_SIGHAND child");
	printf("parent sees the CLONE_SIGHAND child's change: %s\n", name(get(SIGUSR2)));
	set(SIGUSR2, h2);

	/* execve resets handled signals, keeps ignored ones, and doesn't touch the table
	 * it shared with its parent. */
	signal(SIGINT, SIG_IGN);
	c = clone(clone_exec_child, stack + sizeof stack, CLONE_VM | CLONE_SIGHAND | SIGCHLD, NULL);
	reap(c, "exec child");
	printf("parent keeps after the child's exec: SIGUSR1 %s SIGUSR2 %s\n", name(get(SIGUSR1)),
	       name(get(SIGUSR2)));

	/* A fork child has the parent's mask but none of its pending signals. */
	sigset_t block, pend;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, NULL);
	raise(SIGUSR1);
	sigpending(&pend);
	printf("parent pending: %d\n", sigismember(&pend, SIGUSR1));
	c = fork();
	if (c == 0) {
		sigset_t m;
		sigpending(&pend);
		sigprocmask(SIG_BLOCK, NULL, &m);
		printf("child pending: %d blocked: %d\n", sigismember(&pend, SIGUSR1),
		       sigismember(&m, SIGUSR1));
		_exit(0);
	}
	reap(c, "mask child");
	hits1 = 0;
	sigprocmask(SIG_UNBLOCK, &block, NULL);
	printf("parent's delivered on unblock: %d\n", hits1);

	/* Setting SIG_IGN discards a pending blocked signal; a later handler never sees it. */
	sigprocmask(SIG_BLOCK, &block, NULL);
	raise(SIGUSR1);
	set(SIGUSR1, SIG_IGN);
	sigpending(&pend);
	printf("pending after SIG_IGN: %d\n", sigismember(&pend, SIGUSR1));
	set(SIGUSR1, h1);
	hits1 = 0;
	sigprocmask(SIG_UNBLOCK, &block, NULL);
	printf("delivered after SIG_IGN and a new handler: %d\n", hits1);
	return 0;
}
