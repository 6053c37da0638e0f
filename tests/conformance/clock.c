/* Clocks and sleeps: properties only, never the times themselves. */
#include "conf.h"
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long long ns(struct timespec t)
{
	return t.tv_sec * 1000000000LL + t.tv_nsec;
}

static long long mono(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return ns(t);
}

int main(void)
{
	struct timespec a, b;

	/* MONOTONIC never goes back. */
	int back = 0, fail = 0;
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int i = 0; i < 10000; i++) {
		if (clock_gettime(CLOCK_MONOTONIC, &b) != 0)
			fail++;
		if (ns(b) < ns(a) || b.tv_nsec < 0 || b.tv_nsec >= 1000000000L)
			back++;
		a = b;
	}
	CHECK("monotonic non-decreasing over 10000 reads", !back && !fail);
	/* and it advances */
	long long m0 = mono();
	long long m1 = m0;
	for (int i = 0; i < 100000000 && m1 == m0; i++)
		m1 = mono();
	CHECK("monotonic advances", m1 > m0);

	/* REALTIME agrees with time() and gettimeofday() within 2 s. */
	struct timespec rt;
	struct timeval tv;
	CHECK("clock_gettime REALTIME", clock_gettime(CLOCK_REALTIME, &rt) == 0);
	time_t t = time(NULL);
	CHECK("gettimeofday", gettimeofday(&tv, NULL) == 0);
	CHECK("realtime ~ time()", llabs((long long)rt.tv_sec - (long long)t) <= 2);
	CHECK("realtime ~ gettimeofday", llabs((long long)rt.tv_sec - (long long)tv.tv_sec) <= 2);
	CHECK("gettimeofday usec in range", tv.tv_usec >= 0 && tv.tv_usec < 1000000);
	CHECK("realtime after 2020", rt.tv_sec > 1577836800LL);
	time_t t2;
	CHECK("time(&t) stores", time(&t2) == t2 && llabs((long long)t2 - (long long)t) <= 2);
	/* raw syscalls, not the vDSO */
	struct timespec rrt;
	CHECK("raw clock_gettime REALTIME", syscall(SYS_clock_gettime, CLOCK_REALTIME, &rrt) == 0 &&
	      llabs((long long)rrt.tv_sec - (long long)rt.tv_sec) <= 2);
	struct timespec rm1, rm2;
	clock_gettime(CLOCK_MONOTONIC, &rm1);
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &rm2);
	CHECK("raw MONOTONIC agrees with libc", ns(rm2) >= ns(rm1) && ns(rm2) - ns(rm1) < 2000000000LL);
	CHECK("raw time()", llabs((long long)syscall(SYS_time, NULL) - (long long)t) <= 2);

	/* Every standard clock id can be read and has a resolution <= 1 ms. */
	static const struct { clockid_t id; const char *name; } clocks[] = {
		{ CLOCK_REALTIME, "REALTIME" },
		{ CLOCK_MONOTONIC, "MONOTONIC" },
		{ CLOCK_PROCESS_CPUTIME_ID, "PROCESS_CPUTIME_ID" },
		{ CLOCK_THREAD_CPUTIME_ID, "THREAD_CPUTIME_ID" },
		{ CLOCK_MONOTONIC_RAW, "MONOTONIC_RAW" },
		{ CLOCK_BOOTTIME, "BOOTTIME" },
	};
	for (size_t i = 0; i < sizeof clocks / sizeof clocks[0]; i++) {
		struct timespec v, r;
		int g = clock_gettime(clocks[i].id, &v);
		int e = clock_getres(clocks[i].id, &r);
		printf("clock %s: gettime %s, res %s\n", clocks[i].name,
		       g == 0 ? "ok" : errname(errno),
		       e != 0 ? errname(errno) :
		       (r.tv_sec == 0 && r.tv_nsec > 0 && r.tv_nsec <= 1000000) ? "<= 1ms" : "bad");
	}
	/* COARSE clocks: resolution is a tick, at most 10 ms at HZ=100. */
	static const struct { clockid_t id; const char *name; } coarse[] = {
		{ CLOCK_REALTIME_COARSE, "REALTIME_COARSE" },
		{ CLOCK_MONOTONIC_COARSE, "MONOTONIC_COARSE" },
	};
	for (size_t i = 0; i < 2; i++) {
		struct timespec v, r;
		int g = clock_gettime(coarse[i].id, &v);
		int e = clock_getres(coarse[i].id, &r);
		printf("clock %s: gettime %s, res %s\n", coarse[i].name,
		       g == 0 ? "ok" : errname(errno),
		       e != 0 ? errname(errno) :
		       (r.tv_sec == 0 && r.tv_nsec > 0 && r.tv_nsec <= 10000000) ? "<= 10ms" : "bad");
	}
	struct timespec c1, c2;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	volatile unsigned long spin = 0;
	for (unsigned long i = 0; i < 20000000UL; i++)
		spin += i;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c2);
	CHECK("process cputime advances while spinning", ns(c2) > ns(c1));
	struct timespec b1, m2;
	clock_gettime(CLOCK_MONOTONIC, &m2);
	clock_gettime(CLOCK_BOOTTIME, &b1);
	CHECK("BOOTTIME >= MONOTONIC", ns(b1) >= ns(m2));

	/* Sleeps last at least what was asked, measured by MONOTONIC. */
	long long s0 = mono();
	struct timespec req = { 0, 10000000 }, rem = { 7, 7 };
	CHECK("nanosleep 10ms returns 0", nanosleep(&req, &rem) == 0);
	long long s1 = mono();
	CHECK("nanosleep 10ms took >= 10ms", s1 - s0 >= 10000000LL);
	CHECK("nanosleep 10ms took < 2s", s1 - s0 < 2000000000LL);
	struct timespec req2 = { 0, 5000000 };
	s0 = mono();
	int r = clock_nanosleep(CLOCK_MONOTONIC, 0, &req2, NULL);
	s1 = mono();
	printf("clock_nanosleep relative 5ms: %s\n", errname(r));
	CHECK("clock_nanosleep relative took >= 5ms", s1 - s0 >= 5000000LL);
	struct timespec abs_t;
	clock_gettime(CLOCK_MONOTONIC, &abs_t);
	abs_t.tv_nsec += 5000000;
	if (abs_t.tv_nsec >= 1000000000L) {
		abs_t.tv_sec++;
		abs_t.tv_nsec -= 1000000000L;
	}
	r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &abs_t, NULL);
	s1 = mono();
	printf("clock_nanosleep absolute: %s\n", errname(r));
	CHECK("clock_nanosleep absolute reached deadline", s1 >= ns(abs_t));
	struct timespec past = { 1, 0 };
	s0 = mono();
	r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &past, NULL);
	s1 = mono();
	printf("clock_nanosleep absolute in the past: %s\n", errname(r));
	CHECK("past deadline returns quickly", s1 - s0 < 1000000000LL);
	struct timespec zero = { 0, 0 };
	ERRCALL("nanosleep 0", nanosleep(&zero, NULL));

	/* Errors. */
	struct timespec x;
	ERRCALL("clock_gettime invalid clock 100", syscall(SYS_clock_gettime, 100, &x));
	ERRCALL("clock_getres invalid clock 100", syscall(SYS_clock_getres, 100, &x));
	ERRCALL("clock_getres NULL res", syscall(SYS_clock_getres, CLOCK_MONOTONIC, NULL));
	ERRCALL("clock_gettime bad pointer", syscall(SYS_clock_gettime, CLOCK_MONOTONIC, (void *)8));
	struct timespec badns = { 0, 1000000000L };
	ERRCALL("nanosleep tv_nsec = 1e9", syscall(SYS_nanosleep, &badns, NULL));
	struct timespec negs = { -1, 0 };
	ERRCALL("nanosleep tv_sec = -1", syscall(SYS_nanosleep, &negs, NULL));
	ERRCALL("clock_nanosleep invalid clock 100", syscall(SYS_clock_nanosleep, 100, 0, &req2, NULL));
	ERRCALL("clock_nanosleep bad flags", syscall(SYS_clock_nanosleep, CLOCK_MONOTONIC, 2, &zero, NULL));
	return 0;
}
