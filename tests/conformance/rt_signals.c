/* Real-time signals queue: every instance sent while one is pending is
 * delivered, lowest signal number first and, within a number, in the order
 * sent with its own value; a standard signal sent twice while blocked is
 * delivered once. To the process (sigqueue) and to a thread (handler runs). */
#include "conf.h"
#include <signal.h>
#include <unistd.h>

static volatile int seen[16], nseen;
static void on_rt(int sig, siginfo_t *si, void *ctx)
{
	(void)ctx;
	if (nseen < 16)
		seen[nseen++] = (sig - SIGRTMIN) * 100 + si->si_value.sival_int;
}

int main(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN);
	sigaddset(&set, SIGRTMIN + 1);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	for (int v = 1; v <= 3; v++)
		sigqueue(getpid(), SIGRTMIN + 1, (union sigval){.sival_int = v});
	for (int v = 1; v <= 2; v++)
		sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = v});
	kill(getpid(), SIGUSR1);
	kill(getpid(), SIGUSR1);
	siginfo_t si;
	struct timespec zero = {0, 0};
	int r;
	printf("taken with sigtimedwait:");
	while ((r = sigtimedwait(&set, &si, &zero)) > 0) {
		if (r == SIGUSR1)
			printf(" USR1");
		else
			printf(" RTMIN+%d:%d", r - SIGRTMIN, si.si_value.sival_int);
	}
	printf(" (then %s)\n", errname(errno));

	/* The same through a handler, when unblocked. */
	struct sigaction sa = {0};
	sa.sa_sigaction = on_rt;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGRTMIN, &sa, NULL);
	sigaction(SIGRTMIN + 1, &sa, NULL);
	for (int v = 1; v <= 3; v++)
		sigqueue(getpid(), SIGRTMIN + 1, (union sigval){.sival_int = v});
	sigqueue(getpid(), SIGRTMIN, (union sigval){.sival_int = 9});
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	printf("handled:");
	for (int i = 0; i < nseen; i++)
		printf(" %d", seen[i]);
	printf("\n");
	return 0;
}
