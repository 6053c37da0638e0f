/* What the ptrace conformance programs share: printing a wait status, waiting for a stop
 * (any child, threads included: __WALL), and printing a call's result. */
#ifndef PTRACE_H
#define PTRACE_H
#include "conf.h"
#include <sys/wait.h>

static inline void show_status(const char *what, int st)
{
	if (WIFEXITED(st))
		printf("%s: exited %d\n", what, WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		printf("%s: killed by %d\n", what, WTERMSIG(st));
	else if (WIFSTOPPED(st))
		printf("%s: stopped by %d (event %d)\n", what, WSTOPSIG(st), st >> 16);
	else if (WIFCONTINUED(st))
		printf("%s: continued\n", what);
	else
		printf("%s: status %#x\n", what, st);
}

static inline int wait_show(const char *what, pid_t pid)
{
	int st = 0;
	if (waitpid(pid, &st, __WALL) != pid) {
		printf("%s: waitpid: %s\n", what, errname(errno));
		return -1;
	}
	show_status(what, st);
	return st;
}

static inline void err(const char *what, long r)
{
	printf("%s: %ld %s\n", what, r, r == -1 ? errname(errno) : "");
}
#endif
