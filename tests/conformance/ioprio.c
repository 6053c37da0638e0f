/* ioprio_set and ioprio_get: the value checks, what a thread never set reports (0) and what a
 * process group's answer is made of (the best effective priority of its threads, made from
 * nice and the policy where no class was set), per-thread priorities, inheritance by
 * threads and fork (only of a valid class), CLONE_IO's shared context (seen with kcmp's
 * KCMP_IO once both sides have one), the permission checks and ESRCH. The program makes its
 * own process group, and looks at users only from a uid no other process has. */
#include "conf.h"
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#define WHO_PROCESS 1
#define WHO_PGRP 2
#define WHO_USER 3
#define P(class, level) (((class) << 13) | (level))
#define NONE 0
#define RT 1
#define BE 2
#define IDLE 3
#define KCMP_IO 5

static long get(int which, int who)
{
	return syscall(SYS_ioprio_get, which, who);
}

static long set(int which, int who, int v)
{
	return syscall(SYS_ioprio_set, which, who, v);
}

static void show(const char *what, long r)
{
	if (r < 0)
		printf("%s: %s\n", what, errname(errno));
	else
		printf("%s: %#lx\n", what, r);
}

/* Sets the caller's priority to `v`, then shows what ioprio_get reports. */
static void set_get(const char *what, int v)
{
	long r = set(WHO_PROCESS, 0, v);
	int e = errno;
	long g = get(WHO_PROCESS, 0);
	if (r < 0)
		printf("%s: %s, still %#lx\n", what, errname(e), g);
	else
		printf("%s: now %#lx\n", what, g);
}

static const char *same(long r)
{
	return r == 0 ? "same" : r > 0 ? "different" : errname(errno);
}

static volatile pid_t thread_tid;
static int go[2];

static void *thread_main(void *arg)
{
	(void)arg;
	printf("thread: inherited %#lx\n", get(WHO_PROCESS, 0));
	long r = set(WHO_PROCESS, 0, P(BE, 5));
	printf("thread: set its own: %ld, now %#lx\n", r, get(WHO_PROCESS, 0));
	thread_tid = syscall(SYS_gettid);
	char c;
	read(go[0], &c, 1);
	return NULL;
}

static int clone_child(void *arg)
{
	(void)arg;
	char c;
	read(go[0], &c, 1);
	return 0;
}

/* A child made by clone(flags) after the parent set a priority: its priority and whether it
 * shares the parent's I/O context. */
static void cloned(const char *label, int flags)
{
	static char stack[64 * 1024] __attribute__((aligned(16)));
	pipe(go);
	pid_t pid = clone(clone_child, stack + sizeof stack, flags | SIGCHLD, NULL);
	long prio = get(WHO_PROCESS, pid);
	long io = syscall(SYS_kcmp, getpid(), pid, KCMP_IO, 0, 0);
	printf("%s: child's %#lx, io context %s\n", label, prio, same(io));
	/* A change through a shared context shows on both sides. */
	set(WHO_PROCESS, pid, P(BE, 6));
	printf("%s: after setting the child's, ours is %#lx\n", label, get(WHO_PROCESS, 0));
	set(WHO_PROCESS, 0, P(BE, 3));
	write(go[1], "x", 1);
	waitpid(pid, NULL, 0);
	close(go[0]);
	close(go[1]);
}

int main(void)
{
	setpgid(0, 0);
	show("never set", get(WHO_PROCESS, 0));
	show("never set, by pid", get(WHO_PROCESS, getpid()));
	/* The nice value the program starts with is the caller's: set it (19 is always
	 * allowed; going back down to 10 needs root, and fails the same way in both runs). */
	setpriority(PRIO_PROCESS, 0, 19);
	show("process group, never set, at nice 19", get(WHO_PGRP, 0));
	if (setpriority(PRIO_PROCESS, 0, 10) != 0)
		printf("nice 10: %s\n", errname(errno));
	show("process group, never set, at nice 10 (if root)", get(WHO_PGRP, 0));
	show("own at that nice", get(WHO_PROCESS, 0));

	set_get("NONE 0", P(NONE, 0));
	show("process group with class NONE at nice 10", get(WHO_PGRP, 0));
	set_get("NONE 1", P(NONE, 1));
	set_get("NONE with a hint bit", P(NONE, 0) | (1 << 3));
	set_get("BE 7", P(BE, 7));
	show("process group", get(WHO_PGRP, 0));
	set_get("BE 3 with hints", P(BE, 3) | (5 << 3));
	set_get("IDLE 5", P(IDLE, 5));
	show("process group", get(WHO_PGRP, 0));
	set_get("class 4", P(4, 0));
	set_get("class 7", P(7, 0));
	set_get("-1", -1);
	set_get("BE 1 with bit 16", P(BE, 1) | (1 << 16));
	set_get("RT 1 (root)", P(RT, 1));
	show("process group", get(WHO_PGRP, 0));

	show("get which 0", get(0, 0));
	show("get which 4", get(4, 0));
	show("set which 0", set(0, 0, P(BE, 1)));
	show("set which 4, bad class", set(4, 0, P(5, 0)));
	show("get pid 999999", get(WHO_PROCESS, 999999));
	show("set pid 999999", set(WHO_PROCESS, 999999, P(BE, 1)));
	show("get pid -1", get(WHO_PROCESS, -1));
	show("get pgrp 999999", get(WHO_PGRP, 999999));
	show("set pgrp 999999", set(WHO_PGRP, 999999, P(BE, 1)));
	show("set pgrp 0", set(WHO_PGRP, 0, P(BE, 2)));
	show("own after the group's", get(WHO_PROCESS, 0));

	/* Threads inherit a valid class and then have their own. */
	set(WHO_PROCESS, 0, P(BE, 3));
	pipe(go);
	pthread_t th;
	pthread_create(&th, NULL, thread_main, NULL);
	while (!thread_tid)
		usleep(1000);
	show("main thread after the thread set its own", get(WHO_PROCESS, 0));
	show("the thread's, by its id", get(WHO_PROCESS, thread_tid));
	show("process group: the best of both", get(WHO_PGRP, 0));
	printf("thread's io context: %s\n",
	       same(syscall(SYS_kcmp, getpid(), thread_tid, KCMP_IO, 0, 0)));
	write(go[1], "x", 1);
	pthread_join(th, NULL);
	close(go[0]);
	close(go[1]);

	cloned("fork", 0);
	cloned("CLONE_IO", CLONE_IO);
	/* A class of NONE isn't passed on. */
	set(WHO_PROCESS, 0, P(NONE, 0));
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		printf("child after NONE: %#lx\n", get(WHO_PROCESS, 0));
		_exit(0);
	}
	waitpid(pid, NULL, 0);

	/* Without privileges: no RT, and only one's own user's threads. */
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		if (getuid() != 0 || setresuid(4321, 4321, 4321) != 0) {
			printf("not root: the unprivileged cases are skipped\n");
			_exit(0);
		}
		set_get("as 4321: RT 1", P(RT, 1));
		show("as 4321: RT 1 with which 4", set(4, 0, P(RT, 1)));
		set_get("as 4321: BE 2", P(BE, 2));
		show("as 4321: the root parent's", set(WHO_PROCESS, getppid(), P(BE, 2)));
		show("as 4321: user 0 (uid 0's threads)", set(WHO_USER, 0, P(BE, 2)));
		show("as 4321: its user's, by 0", get(WHO_USER, 0));
		show("as 4321: set its user's", set(WHO_USER, 4321, P(IDLE, 2)));
		show("as 4321: now", get(WHO_PROCESS, 0));
		show("as 4321: user 4322", get(WHO_USER, 4322));
		show("as 4321: set user 4322", set(WHO_USER, 4322, P(IDLE, 2)));
		show("as 4321: read the root parent's", get(WHO_PROCESS, getppid()));
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	return 0;
}
