/* ptrace's capability rules beyond the uid check (Linux's cap_ptrace_access_check): a
 * tracer in another user namespace than its target needs CAP_SYS_PTRACE in the target's,
 * and one in the same namespace needs the target's permitted capabilities to be a subset of
 * its own (or CAP_SYS_PTRACE). Yama's relational rule is satisfied with PR_SET_PTRACER_ANY.
 *
 * Run as root natively (unshare(CLONE_NEWUSER) and capset change only the child). */
#include "conf.h"
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

struct cap_header {
	uint32_t version;
	int pid;
};
struct cap_data {
	uint32_t effective, permitted, inheritable;
};

static int drop_caps(void)
{
	struct cap_header h = {.version = 0x20080522, .pid = 0};
	struct cap_data d[2] = {{0}};
	return syscall(SYS_capset, &h, d);
}

/* Forks a child that runs `how` and then tries to attach to us; prints its result. */
static void try_attach(const char *what, int how)
{
	pid_t me = getpid();
	pid_t c = fork();
	if (c == 0) {
		int prep = 0;
		if (how == 1)
			prep = unshare(CLONE_NEWUSER);
		else if (how == 2)
			prep = drop_caps();
		long r = ptrace(PTRACE_ATTACH, me, 0, 0);
		int e = errno;
		if (r == 0) {
			int ts;
			waitpid(me, &ts, 0);
			ptrace(PTRACE_DETACH, me, 0, 0);
		}
		printf("%s: prep %d, attach to the parent %s\n", what, prep, r ? errname(e) : "ok");
		fflush(stdout);
		_exit(0);
	}
	int st;
	/* The attach stops us with SIGSTOP when it works; the detach continues us. */
	waitpid(c, &st, 0);
}

int main(void)
{
	prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
	try_attach("same namespace, same capabilities", 0);
	try_attach("child user namespace", 1);
	try_attach("same namespace, no capabilities", 2);
	return 0;
}
