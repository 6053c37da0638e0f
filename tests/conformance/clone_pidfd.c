/* clone3 and clone with CLONE_PIDFD, and waitid(P_PIDFD) (issue 14 item 9): the parent
 * gets a close-on-exec pidfd for the child, which polls readable when the child ends and
 * names it to waitid; the flag combinations Linux refuses. */
#include "conf.h"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sched.h>
#include <stdint.h>
#include <sys/syscall.h>

#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x1000
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif

struct clone_args_v0 {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls;
};

static int readable(int fd, int ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

int main(void)
{
	int pidfd = -1;
	struct clone_args_v0 args = {0};
	args.flags = CLONE_PIDFD;
	args.pidfd = (uintptr_t)&pidfd;
	args.exit_signal = SIGCHLD;
	int p[2];
	pipe(p);
	fflush(stdout);
	long c = syscall(SYS_clone3, &args, sizeof args);
	if (c == 0) {
		char b;
		read(p[0], &b, 1);
		syscall(SYS_exit_group, 7);
	}
	printf("clone3 CLONE_PIDFD: %s\n", c > 0 && pidfd >= 0 ? "ok" : errname(errno));
	printf("pidfd close-on-exec: %d\n", fcntl(pidfd, F_GETFD) & FD_CLOEXEC);
	printf("readable while the child runs: %d\n", readable(pidfd, 0));
	siginfo_t si = {0};
	ERRCALL("waitid P_PIDFD WNOHANG while running", waitid(P_PIDFD, pidfd, &si, WEXITED | WNOHANG));
	write(p[1], "x", 1);
	printf("readable once it ended: %d\n", readable(pidfd, 5000));
	memset(&si, 0, sizeof si);
	ERRCALL("waitid P_PIDFD", waitid(P_PIDFD, pidfd, &si, WEXITED));
	printf("waitid: pid matches %d, code %d, status %d\n", si.si_pid == c, si.si_code, si.si_status);
	ERRCALL("waitid P_PIDFD again", waitid(P_PIDFD, pidfd, &si, WEXITED));
	ERRCALL("waitid P_PIDFD bad fd", waitid(P_PIDFD, 999, &si, WEXITED));
	ERRCALL("waitid P_PIDFD not a pidfd", waitid(P_PIDFD, p[0], &si, WEXITED));
	close(pidfd);

	/* Legacy clone: the pidfd goes where CLONE_PARENT_SETTID's tid would. */
	int fd2 = -1;
	fflush(stdout);
	c = syscall(SYS_clone, CLONE_PIDFD | SIGCHLD, 0, &fd2, 0, 0);
	if (c == 0)
		syscall(SYS_exit_group, 3);
	printf("clone CLONE_PIDFD: %s\n", c > 0 && fd2 >= 0 ? "ok" : errname(errno));
	memset(&si, 0, sizeof si);
	waitid(P_PIDFD, fd2, &si, WEXITED);
	printf("legacy child status %d\n", si.si_status);
	close(fd2);
	ERRCALL("clone CLONE_PIDFD|CLONE_PARENT_SETTID",
		syscall(SYS_clone, CLONE_PIDFD | CLONE_PARENT_SETTID | SIGCHLD, 0, &fd2, 0, 0));
	args.flags = CLONE_PIDFD | CLONE_DETACHED;
	ERRCALL("clone3 CLONE_PIDFD|CLONE_DETACHED", syscall(SYS_clone3, &args, sizeof args));
	args.flags = CLONE_PIDFD;
	args.pidfd = 8;
	fflush(stdout);
	c = syscall(SYS_clone3, &args, sizeof args);
	if (c == 0)
		syscall(SYS_exit_group, 0);
	printf("clone3 with a bad pidfd address: %s\n", c < 0 ? errname(errno) : "created");
	while (wait(NULL) > 0)
		;
	return 0;
}
