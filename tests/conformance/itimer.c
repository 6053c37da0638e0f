/* Interval timers: alarm (remaining seconds, cancel), setitimer/getitimer for ITIMER_REAL
 * (SIGALRM with si_code SI_KERNEL, intervals counted with sigsuspend, pause), the CPU-time
 * timers ITIMER_VIRTUAL and ITIMER_PROF while spinning, argument checks, and which timers a
 * fork child and an exec'd program see. Only facts that hold whatever the timing print. */
#include "conf.h"
#include <signal.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* A step that must succeed: silent unless it fails. */
#define OK(c) do { if (!(c)) printf("FAIL line %d: %s (%s)\n", __LINE__, #c, errname(errno)); } while (0)

static volatile sig_atomic_t alrm, vtalrm, prof, last_code;

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	(void)uc;
	last_code = si->si_code;
	if (sig == SIGALRM)
		alrm++;
	else if (sig == SIGVTALRM)
		vtalrm++;
	else if (sig == SIGPROF)
		prof++;
}

static void handle(int sig)
{
	struct sigaction sa = {0};
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO;
	sigaction(sig, &sa, NULL);
}

/* Prints a call's result and errno (set to 0 first, read after the call). */
#define SHOW(label, call) do { errno = 0; long _r = (long)(call); printf("%s: %ld %s\n", label, _r, errname(errno)); } while (0)

static long usec(const struct timeval *tv) { return tv->tv_sec * 1000000L + tv->tv_usec; }

static int set(int which, long value_us, long interval_us, struct itimerval *old)
{
	struct itimerval it = {
		.it_value = {value_us / 1000000, value_us % 1000000},
		.it_interval = {interval_us / 1000000, interval_us % 1000000},
	};
	return setitimer(which, &it, old);
}

static double cpu_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Spins until `*flag` is set or 2 s of CPU time went by. */
static int spin_until(volatile sig_atomic_t *flag)
{
	double start = cpu_seconds();
	volatile unsigned long x = 0;
	while (!*flag && cpu_seconds() - start < 2.0)
		for (int i = 0; i < 10000; i++)
			x += i;
	return *flag != 0;
}

static void exec_child(void)
{
	struct itimerval cur;
	getitimer(ITIMER_REAL, &cur);
	printf("exec: ITIMER_REAL kept %d\n", usec(&cur.it_value) > 0 && usec(&cur.it_value) <= 5000000);
	printf("exec: interval kept %d\n", usec(&cur.it_interval) == 7000000);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "exec-child") == 0) {
		exec_child();
		return 0;
	}
	struct itimerval cur, old;

	/* Nothing armed. */
	OK(getitimer(ITIMER_REAL, &cur) == 0);
	printf("unarmed: %ld %ld\n", usec(&cur.it_value), usec(&cur.it_interval));
	printf("alarm(0) with none: %u\n", alarm(0));

	/* alarm reports what was left, rounded to the nearest second; 0 cancels. */
	printf("alarm(5): %u\n", alarm(5));
	OK(getitimer(ITIMER_REAL, &cur) == 0);
	printf("alarm shows in getitimer: %d\n", usec(&cur.it_value) > 4000000 && usec(&cur.it_value) <= 5000000);
	printf("alarm(0) cancels, returns: %u\n", alarm(0));
	OK(getitimer(ITIMER_REAL, &cur) == 0);
	printf("after cancel: %ld\n", usec(&cur.it_value));
	/* Less than a second left still counts as 1. */
	OK(set(ITIMER_REAL, 300000, 0, NULL) == 0);
	printf("alarm(0) with 0.3 s left: %u\n", alarm(0));

	/* A one-shot REAL timer and pause. */
	handle(SIGALRM);
	OK(set(ITIMER_REAL, 20000, 0, NULL) == 0);
	int r = pause();
	printf("pause: %d %s, alarms %d, code SI_KERNEL %d\n", r, errname(errno), alrm, last_code == SI_KERNEL);
	OK(getitimer(ITIMER_REAL, &cur) == 0);
	printf("one-shot disarmed: %ld %ld\n", usec(&cur.it_value), usec(&cur.it_interval));

	/* An interval timer: count signals with sigsuspend. */
	sigset_t block, none;
	sigemptyset(&block);
	sigaddset(&block, SIGALRM);
	sigprocmask(SIG_BLOCK, &block, NULL);
	sigemptyset(&none);
	alrm = 0;
	OK(set(ITIMER_REAL, 10000, 10000, NULL) == 0);
	OK(getitimer(ITIMER_REAL, &cur) == 0);
	printf("interval: %ld, value in (0, 10ms]: %d\n", usec(&cur.it_interval),
	       usec(&cur.it_value) > 0 && usec(&cur.it_value) <= 10000);
	while (alrm < 5)
		sigsuspend(&none);
	printf("got >= 5 SIGALRM: %d\n", alrm >= 5);
	OK(set(ITIMER_REAL, 0, 0, &old) == 0);
	printf("old interval: %ld, old value <= 10ms: %d\n", usec(&old.it_interval), usec(&old.it_value) <= 10000);
	OK(getitimer(ITIMER_REAL, &cur) == 0);
	printf("disarmed: %ld %ld\n", usec(&cur.it_value), usec(&cur.it_interval));
	sigprocmask(SIG_UNBLOCK, &block, NULL);

	/* CPU-time timers fire while the process spins. */
	handle(SIGPROF);
	handle(SIGVTALRM);
	OK(set(ITIMER_PROF, 20000, 0, NULL) == 0);
	OK(getitimer(ITIMER_PROF, &cur) == 0);
	/* Linux adds a tick (the coarse clocks' resolution) to a CPU timer's first expiry. */
	struct timespec tick;
	clock_getres(CLOCK_REALTIME_COARSE, &tick);
	long tick_us = tick.tv_nsec / 1000;
	printf("PROF value in (20ms, 20ms + tick]: %d\n", usec(&cur.it_value) > 20000 && usec(&cur.it_value) <= 20000 + tick_us);
	printf("PROF interval: %ld\n", usec(&cur.it_interval));
	printf("SIGPROF while spinning: %d, code SI_KERNEL %d\n", spin_until(&prof), last_code == SI_KERNEL);
	OK(set(ITIMER_VIRTUAL, 20000, 20000, NULL) == 0);
	printf("SIGVTALRM while spinning: %d\n", spin_until(&vtalrm));
	OK(set(ITIMER_VIRTUAL, 0, 0, &old) == 0);
	printf("VIRTUAL old interval: %ld\n", usec(&old.it_interval));
	OK(getitimer(ITIMER_PROF, &cur) == 0);
	printf("PROF one-shot disarmed: %ld\n", usec(&cur.it_value));

	/* Argument checks. */
	struct itimerval bad = {.it_value = {0, 1000000}};
	SHOW("usec 1000000", setitimer(ITIMER_REAL, &bad, NULL));
	bad.it_value.tv_usec = -1;
	SHOW("usec -1", setitimer(ITIMER_REAL, &bad, NULL));
	bad.it_value = (struct timeval){-1, 0};
	SHOW("sec -1", setitimer(ITIMER_REAL, &bad, NULL));
	bad.it_value = (struct timeval){0, 0};
	bad.it_interval = (struct timeval){0, 1000000};
	SHOW("interval usec 1000000", setitimer(ITIMER_REAL, &bad, NULL));
	SHOW("which 3", set(3, 1000, 0, NULL));
	SHOW("getitimer which -1", getitimer(-1, &cur));
	SHOW("getitimer NULL", syscall(SYS_getitimer, ITIMER_REAL, NULL));
	SHOW("setitimer bad pointer", syscall(SYS_setitimer, ITIMER_REAL, (void *)8, NULL));
	/* A NULL new value disarms. */
	OK(set(ITIMER_REAL, 3000000, 0, NULL) == 0);
	SHOW("setitimer NULL", syscall(SYS_setitimer, ITIMER_REAL, NULL, &old));
	OK(getitimer(ITIMER_REAL, &cur) == 0);
	printf("NULL disarmed: %ld, old was set: %d\n", usec(&cur.it_value), usec(&old.it_value) > 0);

	/* A fork child starts with no timers; exec keeps them. */
	OK(set(ITIMER_REAL, 5000000, 7000000, NULL) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		getitimer(ITIMER_REAL, &cur);
		printf("fork child: %ld %ld\n", usec(&cur.it_value), usec(&cur.it_interval));
		fflush(stdout);
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		OK(set(ITIMER_REAL, 5000000, 7000000, NULL) == 0);
		char *args[] = {argv[0], "exec-child", NULL};
		execv(argv[0], args);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	printf("exec child exit: %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	OK(set(ITIMER_REAL, 0, 0, NULL) == 0);
	return 0;
}
