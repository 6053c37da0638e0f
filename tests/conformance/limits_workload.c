/* Not a differential program: tests/tests/limits.rs runs it in the sandbox only, under
 * limits, and watches the host. Never run it natively: it is a fork bomb and a memory hog.
 *
 *   fork      forks children that wait, until fork fails; prints "forked N: ERRNO-NAME",
 *             then kills its children and exits 0.
 *   bomb SEC  a fork bomb: every process forks in a loop for SEC seconds, counting
 *             failures; the first process prints "bomb: EAGAIN seen" if a fork failed with
 *             EAGAIN (and never another errno), then its whole process group is killed.
 *   mem       maps and touches 1 MiB at a time; prints "mapped N MiB: ERRNO-NAME" when a
 *             mapping fails (or dies of a signal while touching).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *errname(int e)
{
	switch (e) {
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	default: return strerror(e);
	}
}

static int do_fork(void)
{
	int n = 0;
	for (;;) {
		pid_t p = fork();
		if (p == 0) {
			pause();
			_exit(0);
		}
		if (p < 0) {
			printf("forked %d: %s\n", n, errname(errno));
			fflush(stdout);
			break;
		}
		n++;
		if (n > 100000) {
			printf("forked %d: no limit\n", n);
			break;
		}
	}
	signal(SIGTERM, SIG_IGN);
	kill(0, SIGTERM);
	while (wait(NULL) > 0)
		;
	return 0;
}

static int do_bomb(int secs)
{
	int pipefd[2];
	if (pipe(pipefd) < 0)
		return 1;
	setpgid(0, 0);
	time_t end = time(NULL) + secs;
	pid_t top = getpid();
	while (time(NULL) < end) {
		pid_t p = fork();
		if (p < 0) {
			char c = errno == EAGAIN ? 'A' : 'X';
			(void)!write(pipefd[1], &c, 1);
			usleep(1000);
		} else if (p > 0 && getpid() == top) {
			/* Reap what ended, so the top keeps a view of the count. */
			while (waitpid(-1, NULL, WNOHANG) > 0)
				;
		}
	}
	if (getpid() != top)
		_exit(0);
	signal(SIGTERM, SIG_IGN);
	kill(0, SIGTERM);
	close(pipefd[1]);
	int again = 0, other = 0;
	char c;
	/* Children may still hold the write end until they see SIGTERM. */
	while (read(pipefd[0], &c, 1) == 1) {
		if (c == 'A')
			again++;
		else
			other++;
		if (again + other > 1000)
			break;
	}
	while (wait(NULL) > 0)
		;
	if (again && !other)
		printf("bomb: EAGAIN seen\n");
	else
		printf("bomb: %d EAGAIN, %d other failures\n", again, other);
	return 0;
}

static int do_mem(void)
{
	size_t mib = 0;
	for (;;) {
		char *p = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			printf("mapped %zu MiB: %s\n", mib, errname(errno));
			return 0;
		}
		for (size_t i = 0; i < (1 << 20); i += 4096)
			p[i] = 1;
		mib++;
		if (mib % 16 == 0) {
			printf("touched %zu MiB\n", mib);
			fflush(stdout);
		}
		if (mib > (64 << 10)) {
			printf("mapped %zu MiB: no limit\n", mib);
			return 0;
		}
	}
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 2 && !strcmp(argv[1], "fork"))
		return do_fork();
	if (argc >= 3 && !strcmp(argv[1], "bomb"))
		return do_bomb(atoi(argv[2]));
	if (argc >= 2 && !strcmp(argv[1], "mem"))
		return do_mem();
	fprintf(stderr, "usage: limits_workload fork | bomb SEC | mem\n");
	return 2;
}
