/* sysinfo, times and getrusage: relations between the values, never the values
 * (they depend on the machine and the moment). */
#include "conf.h"
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <sys/syscall.h>
#include <sys/times.h>
#include <time.h>

static volatile unsigned long sink;

/* Spend at least `ms` of CPU time in this thread. */
static void burn(long ms)
{
	struct timespec a, b;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &a);
	for (;;) {
		for (int i = 0; i < 100000; i++)
			sink += i;
		clock_gettime(CLOCK_THREAD_CPUTIME_ID, &b);
		if ((b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000 >= ms)
			return;
	}
}

static double tv(struct timeval t)
{
	return t.tv_sec + t.tv_usec / 1e6;
}

int main(void)
{
	struct sysinfo si;
	memset(&si, 0xff, sizeof si);
	ERRCALL("sysinfo", sysinfo(&si));
	CHECK("uptime > 0", si.uptime > 0);
	CHECK("totalram > 0", si.totalram > 0);
	CHECK("freeram <= totalram", si.freeram <= si.totalram);
	CHECK("procs >= 1", si.procs >= 1);
	CHECK("mem_unit 1", si.mem_unit == 1);
	CHECK("loads sane", si.loads[0] < (1UL << 30) && si.loads[1] < (1UL << 30));
	ERRCALL("sysinfo(bad)", syscall(SYS_sysinfo, (void *)8));

	/* Our own time: burn 200 ms, and all three views must see it. */
	burn(200);
	struct tms t1;
	clock_t r1 = times(&t1);
	CHECK("times returns ticks", r1 != (clock_t)-1);
	CHECK("tms_utime+stime >= 15 ticks", t1.tms_utime + t1.tms_stime >= 15);
	CHECK("no children yet", t1.tms_cutime == 0 && t1.tms_cstime == 0);
	ERRCALL("times(bad)", syscall(SYS_times, (void *)8));
	struct timespec s0, s1;
	clock_gettime(CLOCK_MONOTONIC, &s0);
	do
		clock_gettime(CLOCK_MONOTONIC, &s1);
	while ((s1.tv_sec - s0.tv_sec) * 1000 + (s1.tv_nsec - s0.tv_nsec) / 1000000 < 50);
	clock_t r2 = times(NULL);
	CHECK("times advances with real time", r2 - r1 >= 3 && r2 - r1 < 1000);

	struct rusage self, thread, kids;
	ERRCALL("getrusage(SELF)", getrusage(RUSAGE_SELF, &self));
	CHECK("self cpu >= 0.15 s", tv(self.ru_utime) + tv(self.ru_stime) >= 0.15);
	CHECK("self ru_maxrss > 0", self.ru_maxrss > 0);
	CHECK("usec < 1e6", self.ru_utime.tv_usec < 1000000 && self.ru_stime.tv_usec < 1000000);
	ERRCALL("getrusage(THREAD)", getrusage(RUSAGE_THREAD, &thread));
	CHECK("thread cpu >= 0.15 s", tv(thread.ru_utime) + tv(thread.ru_stime) >= 0.15);
	CHECK("thread cpu <= self cpu + 0.05",
	      tv(thread.ru_utime) + tv(thread.ru_stime) <=
		      tv(self.ru_utime) + tv(self.ru_stime) + 0.05);
	ERRCALL("getrusage(CHILDREN)", getrusage(RUSAGE_CHILDREN, &kids));
	CHECK("children cpu 0", tv(kids.ru_utime) + tv(kids.ru_stime) == 0);
	ERRCALL("getrusage(2)", getrusage(2, &self));
	ERRCALL("getrusage(-2)", getrusage(-2, &self));
	ERRCALL("getrusage(bad ptr)", syscall(SYS_getrusage, RUSAGE_SELF, (void *)8));

	/* A child burns 300 ms and touches 8 MiB: its usage counts once it is waited for,
	 * with wait4's rusage. */
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		burn(300);
		char *m = malloc(8 << 20);
		if (m)
			memset(m, 1, 8 << 20);
		sink += m ? m[4096] : 0;
		_exit(0);
	}
	struct rusage w;
	int st;
	CHECK("wait4", wait4(pid, &st, 0, &w) == pid);
	CHECK("wait4 rusage cpu >= 0.25 s", tv(w.ru_utime) + tv(w.ru_stime) >= 0.25);
	CHECK("wait4 ru_maxrss >= 4 MiB", w.ru_maxrss >= 4096);
	ERRCALL("getrusage(CHILDREN) after", getrusage(RUSAGE_CHILDREN, &kids));
	CHECK("children cpu >= 0.25 s", tv(kids.ru_utime) + tv(kids.ru_stime) >= 0.25);
	CHECK("children ru_maxrss >= 4 MiB", kids.ru_maxrss >= 4096);
	struct tms t2;
	times(&t2);
	CHECK("tms_cutime+cstime >= 25 ticks", t2.tms_cutime + t2.tms_cstime >= 25);

	/* A grandchild's time reaches us only through the child that waited for it. */
	pid = fork();
	if (pid == 0) {
		pid_t g = fork();
		if (g == 0) {
			burn(300);
			_exit(0);
		}
		waitpid(g, &st, 0);
		_exit(0);
	}
	waitpid(pid, &st, 0);
	struct tms t3;
	times(&t3);
	CHECK("grandchild counted", t3.tms_cutime + t3.tms_cstime >= t2.tms_cutime + t2.tms_cstime + 25);
	return 0;
}
