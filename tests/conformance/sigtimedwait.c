/* sigwaitinfo and sigtimedwait (rt_sigtimedwait): a blocked pending signal of
 * the set is taken with its siginfo, from the thread's or the process's queue;
 * the timeout gives EAGAIN; a signal sent while waiting wakes the waiter; a
 * handled signal outside the set interrupts with EINTR; bad arguments are
 * EINVAL. */
#include "conf.h"
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile int handled;
static void on_usr1(int sig) { handled = sig; }

static const char *code_name(int code)
{
	switch (code) {
	case SI_USER: return "SI_USER";
	case SI_QUEUE: return "SI_QUEUE";
	case SI_TKILL: return "SI_TKILL";
	default: return "other";
	}
}

/* A child that sends `sig` to the parent after a short sleep. */
static pid_t send_later(int sig)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		struct timespec nap = {0, 30000000};
		nanosleep(&nap, NULL);
		kill(parent, sig);
		_exit(0);
	}
	return pid;
}

int main(void)
{
	sigset_t set, usr2;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);

	siginfo_t si;
	raise(SIGUSR1);
	int r = sigwaitinfo(&set, &si);
	printf("raise then sigwaitinfo: %d, code %s, pid ours %d\n", r, code_name(si.si_code),
	       si.si_pid == getpid());
	sigset_t pending;
	sigpending(&pending);
	printf("still pending: %d\n", sigismember(&pending, SIGUSR1));

	kill(getpid(), SIGUSR2);
	r = sigwaitinfo(&set, &si);
	printf("kill(self) then sigwaitinfo: %d, code %s\n", r, code_name(si.si_code));

	union sigval v = {.sival_int = 4242};
	sigqueue(getpid(), SIGUSR2, v);
	r = sigwaitinfo(&set, &si);
	printf("sigqueue: %d, code %s, value %d\n", r, code_name(si.si_code), si.si_value.sival_int);

	struct timespec zero = {0, 0}, short_wait = {0, 50000000};
	errno = 0;
	r = sigtimedwait(&set, &si, &zero);
	printf("nothing pending, zero timeout: %d %s\n", r, errname(errno));
	errno = 0;
	r = sigtimedwait(&set, &si, &short_wait);
	printf("nothing pending, 50 ms timeout: %d %s\n", r, errname(errno));

	pid_t child = send_later(SIGUSR2);
	r = sigwaitinfo(&usr2, &si);
	printf("sent while waiting: %d, code %s, from the child %d\n", r, code_name(si.si_code),
	       si.si_pid == child);
	waitpid(child, NULL, 0);

	/* A handled signal outside the set ends the wait with EINTR. */
	signal(SIGUSR1, on_usr1);
	sigset_t only_usr1;
	sigemptyset(&only_usr1);
	sigaddset(&only_usr1, SIGUSR1);
	sigprocmask(SIG_UNBLOCK, &only_usr1, NULL);
	child = send_later(SIGUSR1);
	/* musl retries on EINTR, so there it ends with EAGAIN when the time is up. The wait is
	 * long so that the child's signal comes within it however busy the machine is (CI saw
	 * it come after 300 ms): glibc returns at once with EINTR. */
	struct timespec long_wait = {3, 0};
	errno = 0;
	r = sigtimedwait(&usr2, &si, &long_wait);
	printf("interrupted by a handled signal: %d %s, handler ran %d\n", r, errname(errno),
	       handled == SIGUSR1);
	waitpid(child, NULL, 0);

	/* NULL info is allowed. */
	raise(SIGUSR2);
	printf("NULL info: %d\n", sigwaitinfo(&usr2, NULL));

	errno = 0;
	r = syscall(SYS_rt_sigtimedwait, &usr2, &si, NULL, 4);
	printf("bad sigsetsize: %d %s\n", r, errname(errno));
	struct timespec bad = {0, 1000000000};
	errno = 0;
	r = sigtimedwait(&usr2, &si, &bad);
	printf("bad timeout: %d %s\n", r, errname(errno));
	return 0;
}
