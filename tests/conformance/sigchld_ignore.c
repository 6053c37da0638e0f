/* A parent whose SIGCHLD is SIG_IGN, or has SA_NOCLDWAIT, leaves no zombies:
 * its children are reaped as they end, wait blocks until none is left and
 * then fails with ECHILD, and the pids are gone. With SA_NOCLDWAIT a handler
 * still gets SIGCHLD. With the default action, zombies are kept for wait. */
#include "conf.h"
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile int handled;
static void on_chld(int sig) { handled = sig; }

static void children_then_wait(const char *how)
{
	pid_t pids[3];
	for (int i = 0; i < 3; i++) {
		pids[i] = fork();
		if (pids[i] == 0)
			_exit(i);
	}
	errno = 0;
	int r;
	do
		r = wait(NULL);
	while (r == -1 && errno == EINTR);
	printf("%s: wait %d %s\n", how, r, errname(errno));
	int gone = 1;
	for (int i = 0; i < 3; i++)
		gone &= kill(pids[i], 0) == -1 && errno == ESRCH;
	printf("%s: children gone: %d\n", how, gone);
}

int main(void)
{
	signal(SIGCHLD, SIG_IGN);
	children_then_wait("SIG_IGN");

	struct sigaction sa = {0};
	sa.sa_handler = on_chld;
	sa.sa_flags = SA_NOCLDWAIT;
	sigaction(SIGCHLD, &sa, NULL);
	children_then_wait("SA_NOCLDWAIT with a handler");
	printf("handler ran: %d\n", handled == SIGCHLD);

	signal(SIGCHLD, SIG_DFL);
	pid_t pid = fork();
	if (pid == 0)
		_exit(5);
	int st;
	printf("default: waitpid finds the zombie %d, status %d\n", waitpid(pid, &st, 0) == pid,
	       WEXITSTATUS(st));
	return 0;
}
