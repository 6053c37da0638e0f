/* PR_SET_PDEATHSIG and PR_SET_CHILD_SUBREAPER: when a process's parent dies,
 * it gets its parent-death signal and is reparented to the nearest subreaper,
 * which can then wait for it. */
#include "conf.h"
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static int report_fd;

static void on_death(int sig, siginfo_t *si, void *ctx)
{
	(void)ctx;
	char msg[128];
	int n = snprintf(msg, sizeof msg, "grandchild got signal %d (SI_USER %d), new parent is the subreaper: %d\n",
	                 sig, si->si_code == SI_USER, getppid() == atoi(getenv("SUBREAPER")));
	write(report_fd, msg, n);
	_exit(7);
}

int main(void)
{
	int rep[2], ready[2];
	CHECK("pipes", pipe(rep) == 0 && pipe(ready) == 0);
	pid_t sub = fork();
	if (sub == 0) {
		/* The subreaper. */
		CHECK("PR_SET_CHILD_SUBREAPER", prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0);
		char me[16];
		snprintf(me, sizeof me, "%d", (int)getpid());
		setenv("SUBREAPER", me, 1);
		pid_t mid = fork();
		if (mid == 0) {
			pid_t leaf = fork();
			if (leaf == 0) {
				report_fd = rep[1];
				struct sigaction sa = { 0 };
				sa.sa_sigaction = on_death;
				sa.sa_flags = SA_SIGINFO;
				sigaction(SIGUSR1, &sa, NULL);
				prctl(PR_SET_PDEATHSIG, SIGUSR1, 0, 0, 0);
				write(ready[1], "r", 1);
				for (;;)
					pause();
			}
			char c;
			read(ready[0], &c, 1);
			_exit(3); /* the middle process dies: the leaf is orphaned */
		}
		int st;
		pid_t got = waitpid(mid, &st, 0);
		printf("middle exited %d: %d\n", got == mid, WEXITSTATUS(st));
		/* The leaf is now ours to reap. */
		got = waitpid(-1, &st, 0);
		printf("subreaper reaped the leaf: %d, exit %d\n", got > 0 && got != mid, WEXITSTATUS(st));
		errno = 0;
		printf("no more children: %s\n", waitpid(-1, &st, WNOHANG) < 0 ? errname(errno) : "some");
		fflush(stdout);
		_exit(0);
	}
	close(rep[1]);
	char buf[256] = { 0 };
	int n = 0, r;
	while ((r = read(rep[0], buf + n, sizeof buf - 1 - n)) > 0)
		n += r;
	int st;
	waitpid(sub, &st, 0);
	printf("%s", buf);
	printf("subreaper exit %d\n", WEXITSTATUS(st));
	return 0;
}
