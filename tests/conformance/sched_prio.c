/* getpriority/setpriority and the sched_* calls. Nothing here changes the host
 * beyond raising the nice value of this test's own processes: the privileged
 * refusals are checked in a child that gave up root (when run as root), and no
 * real-time policy is ever set natively. */
#include "conf.h"
#include <sched.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/syscall.h>

struct attr {
	uint32_t size, policy;
	uint64_t flags;
	int32_t nice;
	uint32_t priority;
	uint64_t runtime, deadline, period;
	uint32_t util_min, util_max;
};

/* musl's sched_{get,set}{scheduler,param} are ENOSYS by design: the raw calls. */
#define sched_getscheduler(p) syscall(SYS_sched_getscheduler, p)
#define sched_setscheduler(p, pol, sp) syscall(SYS_sched_setscheduler, p, pol, sp)
#define sched_getparam(p, sp) syscall(SYS_sched_getparam, p, sp)
#define sched_setparam(p, sp) syscall(SYS_sched_setparam, p, sp)

static long raw_getprio(int which, int who)
{
	return syscall(SYS_getpriority, which, who);
}

static void show_attr(const char *label, pid_t pid, unsigned size)
{
	unsigned char buf[128];
	memset(buf, 0xaa, sizeof buf);
	errno = 0;
	long r = syscall(SYS_sched_getattr, pid, buf, size, 0);
	struct attr a;
	memcpy(&a, buf, sizeof a);
	if (r != 0) {
		printf("%s: -1 errno=%s\n", label, errname(errno));
		return;
	}
	printf("%s: size=%u policy=%u flags=%llu nice=%d prio=%u byte56=%#x\n", label,
	       a.size, a.policy, (unsigned long long)a.flags, a.nice, a.priority,
	       buf[56]);
}

static int child(void (*fn)(void))
{
	fflush(stdout);
	pid_t p = fork();
	if (p == 0) {
		fn();
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(p, &st, 0);
	return st;
}

static void unprivileged(void)
{
	if (geteuid() == 0) {
		/* Back down to 10 (still above where the test started) while privileged. */
		setpriority(PRIO_PROCESS, 0, 10);
		if (setgid(65534) || setuid(65534)) {
			printf("setuid failed\n");
			return;
		}
	}
	/* Limits are only lowered: the sandbox starts with the host's. */
	struct rlimit rl;
	getrlimit(RLIMIT_NICE, &rl);
	rl.rlim_cur = 0;
	setrlimit(RLIMIT_NICE, &rl);
	printf("nice now %ld\n", 20 - raw_getprio(PRIO_PROCESS, 0));
	ERRCALL("unpriv setpriority(12), raise", setpriority(PRIO_PROCESS, 0, 12));
	ERRCALL("unpriv setpriority(11), lower", setpriority(PRIO_PROCESS, 0, 11));
	if (rl.rlim_max >= 15 && rl.rlim_max != RLIM_INFINITY) {
		rl.rlim_cur = 15;
		setrlimit(RLIMIT_NICE, &rl);
		ERRCALL("unpriv setpriority(5) within RLIMIT_NICE", setpriority(PRIO_PROCESS, 0, 5));
		ERRCALL("unpriv setpriority(4) past RLIMIT_NICE", setpriority(PRIO_PROCESS, 0, 4));
		rl.rlim_cur = 0;
		setrlimit(RLIMIT_NICE, &rl);
	} else {
		printf("RLIMIT_NICE hard limit below 15: not tried\n");
	}
	printf("nice now %ld\n", 20 - raw_getprio(PRIO_PROCESS, 0));
	struct rlimit rt = {0, 0};
	setrlimit(RLIMIT_RTPRIO, &rt);
	ERRCALL("unpriv setpriority(init)", setpriority(PRIO_PROCESS, 1, 19));
	struct sched_param sp = {.sched_priority = 10};
	ERRCALL("unpriv setscheduler(FIFO)", sched_setscheduler(0, SCHED_FIFO, &sp));
	ERRCALL("unpriv setscheduler(RR)", sched_setscheduler(0, SCHED_RR, &sp));
	sp.sched_priority = 0;
	ERRCALL("unpriv setscheduler(BATCH)", sched_setscheduler(0, SCHED_BATCH, &sp));
	ERRCALL("unpriv setscheduler(init, BATCH)", sched_setscheduler(1, SCHED_BATCH, &sp));
	struct attr a = {.size = sizeof a, .policy = SCHED_OTHER, .nice = 0};
	ERRCALL("unpriv setattr(nice 0)", syscall(SYS_sched_setattr, 0, &a, 0));
	a.nice = 10;
	ERRCALL("unpriv setattr(nice 10)", syscall(SYS_sched_setattr, 0, &a, 0));
	a.policy = 6; /* SCHED_DEADLINE */
	a.nice = 0;
	a.runtime = 10000000;
	a.deadline = a.period = 30000000;
	ERRCALL("unpriv setattr(DEADLINE)", syscall(SYS_sched_setattr, 0, &a, 0));
	show_attr("unpriv getattr", 0, sizeof a);
	/* SCHED_IDLE can be entered; leaving it needs the right to the nice value. */
	ERRCALL("unpriv setscheduler(IDLE)", sched_setscheduler(0, SCHED_IDLE, &sp));
	printf("policy %ld\n", sched_getscheduler(0));
	ERRCALL("unpriv leave IDLE", sched_setscheduler(0, SCHED_OTHER, &sp));
	printf("policy %ld\n", sched_getscheduler(0));
}

static void reset_on_fork(void)
{
	struct sched_param sp = {0};
	ERRCALL("setscheduler(BATCH|RESET_ON_FORK)",
		sched_setscheduler(0, SCHED_BATCH | SCHED_RESET_ON_FORK, &sp));
	printf("policy %#lx\n", sched_getscheduler(0));
	show_attr("reset getattr", 0, 56);
	setpriority(PRIO_PROCESS, 0, 7);
	fflush(stdout);
	pid_t p = fork();
	if (p == 0) {
		/* BATCH isn't reset (only RT, DEADLINE and IDLE are); the flag is gone. */
		printf("forked policy %#lx nice %ld\n", sched_getscheduler(0),
		       20 - raw_getprio(PRIO_PROCESS, 0));
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(p, &st, 0);
}

int main(void)
{
	/* Priorities: the raw call gives 20 - nice. */
	long base = raw_getprio(PRIO_PROCESS, 0);
	CHECK("raw getpriority in 1..40", base >= 1 && base <= 40);
	errno = 0;
	int libc_nice = getpriority(PRIO_PROCESS, 0);
	CHECK("libc getpriority is nice", errno == 0 && libc_nice == 20 - base);
	CHECK("pgrp and user agree", raw_getprio(PRIO_PGRP, 0) >= base &&
					     raw_getprio(PRIO_USER, 0) >= base);
	ERRCALL("getpriority(which 3)", raw_getprio(3, 0));
	ERRCALL("getpriority(no such pid)", raw_getprio(PRIO_PROCESS, 0x3ffffff0));
	ERRCALL("setpriority(which 7)", setpriority(7, 0, 1));
	ERRCALL("setpriority(no such pid)", setpriority(PRIO_PROCESS, 0x3ffffff0, 1));
	ERRCALL("setpriority(no such pgrp)", setpriority(PRIO_PGRP, 0x3ffffff0, 1));

	/* Raise our own nice (never lowered natively below where it started). */
	int start = 20 - base;
	int target = start < 3 ? 3 : start > 17 ? 17 : start;
	ERRCALL("setpriority(self, raise)", setpriority(PRIO_PROCESS, 0, target));
	CHECK("nice raised", raw_getprio(PRIO_PROCESS, 0) == 20 - target);
	ERRCALL("setpriority(self by pid)", setpriority(PRIO_PROCESS, getpid(), target + 1));
	CHECK("nice by pid", raw_getprio(PRIO_PROCESS, getpid()) == 19 - target);
	ERRCALL("setpriority(100) clamps", setpriority(PRIO_PROCESS, 0, 100));
	printf("nice after 100: %ld\n", 20 - raw_getprio(PRIO_PROCESS, 0));
	/* A forked child inherits it. */
	fflush(stdout);
	pid_t p = fork();
	if (p == 0) {
		printf("child nice %ld\n", 20 - raw_getprio(PRIO_PROCESS, 0));
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(p, &st, 0);
	/* The process group: the whole group moves. */
	ERRCALL("setpriority(PGRP 0)", setpriority(PRIO_PGRP, 0, 19));
	printf("nice after pgrp: %ld\n", 20 - raw_getprio(PRIO_PROCESS, 0));

	/* Policies. */
	printf("getscheduler: %ld\n", sched_getscheduler(0));
	ERRCALL("getscheduler(-1)", sched_getscheduler(-1));
	ERRCALL("getscheduler(no such)", sched_getscheduler(0x3ffffff0));
	struct sched_param sp = {.sched_priority = 5};
	ERRCALL("getparam", sched_getparam(0, &sp));
	printf("param %d\n", sp.sched_priority);
	ERRCALL("getparam(NULL)", syscall(SYS_sched_getparam, 0, NULL));
	ERRCALL("getparam(bad)", syscall(SYS_sched_getparam, 0, (void *)8));
	ERRCALL("getparam(-1)", sched_getparam(-1, &sp));
	sp.sched_priority = 1;
	ERRCALL("setscheduler(OTHER, prio 1)", sched_setscheduler(0, SCHED_OTHER, &sp));
	ERRCALL("setscheduler(policy 4)", sched_setscheduler(0, 4, &sp));
	ERRCALL("setscheduler(policy -1)", syscall(SYS_sched_setscheduler, 0, -1, &sp));
	ERRCALL("setscheduler(FIFO, prio 0)", syscall(SYS_sched_setscheduler, 0, SCHED_FIFO,
						       &(struct sched_param){0}));
	ERRCALL("setscheduler(FIFO, prio 100)", syscall(SYS_sched_setscheduler, 0, SCHED_FIFO,
							 &(struct sched_param){100}));
	ERRCALL("setscheduler(NULL)", syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, NULL));
	ERRCALL("setscheduler(bad)", syscall(SYS_sched_setscheduler, 0, SCHED_OTHER, (void *)8));
	sp.sched_priority = 0;
	ERRCALL("setscheduler(BATCH)", sched_setscheduler(0, SCHED_BATCH, &sp));
	printf("getscheduler: %ld\n", sched_getscheduler(0));
	printf("nice kept: %ld\n", 20 - raw_getprio(PRIO_PROCESS, 0));
	ERRCALL("setparam(0)", sched_setparam(0, &sp));
	sp.sched_priority = 3;
	ERRCALL("setparam(3) under BATCH", sched_setparam(0, &sp));
	sp.sched_priority = 0;
	ERRCALL("setscheduler(OTHER)", sched_setscheduler(0, SCHED_OTHER, &sp));

	int pols[] = {SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_IDLE, 6, 4, 42};
	for (unsigned i = 0; i < sizeof pols / sizeof *pols; i++) {
		errno = 0;
		int mx = sched_get_priority_max(pols[i]);
		int ex = errno;
		errno = 0;
		int mn = sched_get_priority_min(pols[i]);
		printf("priority range %d: %d..%d (%s, %s)\n", pols[i], mn, mx, errname(ex),
		       errname(errno));
	}
	struct timespec ts = {-1, -1};
	ERRCALL("rr_get_interval", sched_rr_get_interval(0, &ts));
	CHECK("rr interval sane", ts.tv_sec >= 0 && ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000);
	ERRCALL("rr_get_interval(-1)", sched_rr_get_interval(-1, &ts));
	ERRCALL("rr_get_interval(no such)", sched_rr_get_interval(0x3ffffff0, &ts));
	ERRCALL("rr_get_interval(bad)", syscall(SYS_sched_rr_get_interval, 0, (void *)8));

	/* sched_getattr: sizes as Linux. */
	show_attr("getattr(56)", 0, 56);
	show_attr("getattr(48)", 0, 48);
	show_attr("getattr(64)", 0, 64);
	show_attr("getattr(47)", 0, 47);
	show_attr("getattr(4097)", 0, 4097);
	show_attr("getattr(-1)", -1, 56);
	ERRCALL("getattr(flags)", syscall(SYS_sched_getattr, 0, &(struct attr){0}, 56, 1));
	ERRCALL("getattr(NULL)", syscall(SYS_sched_getattr, 0, NULL, 56, 0));

	/* sched_setattr: size 0 is version 0; too small or too big with nonzero tail is
	 * E2BIG and the kernel's size is written back. */
	struct attr a = {.size = 0, .policy = SCHED_OTHER, .nice = 12};
	ERRCALL("setattr(size 0)", syscall(SYS_sched_setattr, 0, &a, 0));
	printf("nice after setattr: %ld\n", 20 - raw_getprio(PRIO_PROCESS, 0));
	a.size = 40;
	ERRCALL("setattr(size 40)", syscall(SYS_sched_setattr, 0, &a, 0));
	printf("size written back: %u\n", a.size);
	unsigned char big[80];
	memset(big, 0, sizeof big);
	a.size = sizeof big;
	a.nice = 13;
	memcpy(big, &a, sizeof a);
	ERRCALL("setattr(size 80, zero tail)", syscall(SYS_sched_setattr, 0, big, 0));
	big[70] = 1;
	ERRCALL("setattr(size 80, nonzero tail)", syscall(SYS_sched_setattr, 0, big, 0));
	memcpy(&a, big, sizeof a);
	printf("size written back: %u\n", a.size);
	a = (struct attr){.size = 56, .policy = SCHED_OTHER, .flags = 0x100};
	ERRCALL("setattr(bad flag)", syscall(SYS_sched_setattr, 0, &a, 0));
	a = (struct attr){.size = 56, .policy = SCHED_OTHER, .nice = 19, .flags = 0x08};
	ERRCALL("setattr(KEEP_POLICY)", syscall(SYS_sched_setattr, 0, &a, 0));
	a = (struct attr){.size = 56, .policy = 0x80000000u};
	ERRCALL("setattr(negative policy)", syscall(SYS_sched_setattr, 0, &a, 0));
	ERRCALL("setattr(flags arg)", syscall(SYS_sched_setattr, 0, &a, 1));
	ERRCALL("setattr(NULL)", syscall(SYS_sched_setattr, 0, NULL, 0));
	ERRCALL("setattr(bad)", syscall(SYS_sched_setattr, 0, (void *)8, 0));
	show_attr("getattr after", 0, 56);

	child(reset_on_fork);
	int s = child(unprivileged);
	printf("unprivileged child: %s\n", wait_status(s));
	return 0;
}
