/* POSIX timers through the raw system calls: SIGEV_SIGNAL with siginfo (SI_TIMER,
 * si_timerid, si_value, si_overrun), the NULL sigevent default, SIGEV_THREAD_ID to one
 * thread, SIGEV_NONE, TIMER_ABSTIME, intervals and overruns while the signal is blocked,
 * CPU-time clocks, timer_gettime/getoverrun/delete, argument checks, and timers across
 * fork and exec. Only facts that hold whatever the timing print. */
#include "conf.h"
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define OK(c) do { if (!(c)) printf("FAIL line %d: %s (%s)\n", __LINE__, #c, errname(errno)); } while (0)
#define SHOW(label, call) do { errno = 0; long _r = (long)(call); printf("%s: %ld %s\n", label, _r, errname(errno)); } while (0)

static long k_create(clockid_t clock, struct ksigevent *ev, int *id)
{
	return syscall(SYS_timer_create, clock, ev, id);
}

static long k_settime(int id, int flags, long value_ns, long interval_ns, struct itimerspec *old)
{
	struct itimerspec it = {
		.it_value = {value_ns / 1000000000, value_ns % 1000000000},
		.it_interval = {interval_ns / 1000000000, interval_ns % 1000000000},
	};
	return syscall(SYS_timer_settime, id, flags, &it, old);
}

static long k_gettime(int id, struct itimerspec *cur) { return syscall(SYS_timer_gettime, id, cur); }
static long k_delete(int id) { return syscall(SYS_timer_delete, id); }
static long k_overrun(int id) { return syscall(SYS_timer_getoverrun, id); }

static long ns(const struct timespec *t) { return t->tv_sec * 1000000000L + t->tv_nsec; }

static volatile sig_atomic_t hits, code, timerid, overrun, tid_ok;
/* The overrun section: the first delivery's si_overrun and timer_getoverrun as the handler
 * saw them. The 1 ms timer keeps running once unblocked, and a later expiry (as soon as
 * the next period starts) may be delivered before the main flow looks. */
static volatile int first_overrun_id = -1;
static volatile long first_overrun, first_getoverrun;
static volatile long value;
static volatile pid_t want_tid;

static void on_signal(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	code = si->si_code;
	timerid = si->si_timerid;
	overrun = si->si_overrun;
	if (first_overrun_id >= 0 && hits == 0) {
		first_overrun = si->si_overrun;
		first_getoverrun = k_overrun(first_overrun_id);
	}
	value = (long)si->si_value.sival_ptr;
	tid_ok = want_tid == 0 || syscall(SYS_gettid) == want_tid;
	hits++;
}

static void handle(int sig)
{
	struct sigaction sa = {0};
	sa.sa_sigaction = on_signal;
	sa.sa_flags = SA_SIGINFO;
	sigaction(sig, &sa, NULL);
}

/* Waits (in sigsuspend) for the handler to have run `n` times. */
static void wait_hits(int n)
{
	sigset_t none;
	sigemptyset(&none);
	while (hits < n)
		sigsuspend(&none);
}

static void block(int sig, int how)
{
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, sig);
	sigprocmask(how, &s, NULL);
}

static volatile int thread_ready;
static volatile pid_t thread_tid;

static void *target_thread(void *arg)
{
	(void)arg;
	thread_tid = syscall(SYS_gettid);
	__atomic_store_n(&thread_ready, 1, __ATOMIC_SEQ_CST);
	wait_hits(1);
	return NULL;
}

static double cpu_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int spin_for_hit(void)
{
	double start = cpu_seconds();
	volatile unsigned long x = 0;
	while (!hits && cpu_seconds() - start < 2.0)
		for (int i = 0; i < 10000; i++)
			x += i;
	return hits != 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "exec-child") == 0) {
		struct itimerspec cur;
		SHOW("exec: timer_gettime of the parent's timer", k_gettime(atoi(argv[2]), &cur));
		return 0;
	}
	handle(SIGUSR1);
	handle(SIGUSR2);
	handle(SIGALRM);

	/* SIGEV_SIGNAL: the siginfo. */
	struct ksigevent ev = {.signo = SIGUSR1, .notify = K_SIGEV_SIGNAL};
	ev.value.sival_ptr = (void *)0x1234;
	int id = -1;
	OK(k_create(CLOCK_MONOTONIC, &ev, &id) == 0);
	printf("first timer id: %d\n", id);
	OK(k_settime(id, 0, 10000000, 0, NULL) == 0);
	wait_hits(1);
	printf("SIGEV_SIGNAL: code SI_TIMER %d, timerid ok %d, value %#lx, overrun %d\n", code == SI_TIMER,
	       timerid == id, value, overrun);
	struct itimerspec cur;
	OK(k_gettime(id, &cur) == 0);
	printf("one-shot disarmed: %ld %ld\n", ns(&cur.it_value), ns(&cur.it_interval));
	SHOW("getoverrun", k_overrun(id));

	/* Interval reload, the old setting, gettime. */
	hits = 0;
	OK(k_settime(id, 0, 5000000, 5000000, NULL) == 0);
	OK(k_gettime(id, &cur) == 0);
	printf("armed: value in (0, 5ms] %d, interval %ld\n", ns(&cur.it_value) > 0 && ns(&cur.it_value) <= 5000000,
	       ns(&cur.it_interval));
	wait_hits(3);
	printf("interval: got >= 3: %d\n", hits >= 3);
	struct itimerspec old;
	OK(k_settime(id, 0, 0, 0, &old) == 0);
	printf("old interval %ld, old value <= 5ms %d\n", ns(&old.it_interval), ns(&old.it_value) <= 5000000);
	SHOW("delete", k_delete(id));
	SHOW("delete again", k_delete(id));
	SHOW("gettime after delete", k_gettime(id, &cur));
	SHOW("settime after delete", k_settime(id, 0, 1000000, 0, NULL));
	SHOW("getoverrun after delete", k_overrun(id));

	/* A NULL sigevent: SIGALRM carrying the timer id. */
	hits = 0;
	OK(k_create(CLOCK_REALTIME, NULL, &id) == 0);
	OK(k_settime(id, 0, 1000000, 0, NULL) == 0);
	wait_hits(1);
	printf("NULL sigevent: SIGALRM value is id %d, code SI_TIMER %d\n", value == id, code == SI_TIMER);
	OK(k_delete(id) == 0);

	/* Overruns while the signal is blocked. */
	block(SIGUSR2, SIG_BLOCK);
	ev.signo = SIGUSR2;
	OK(k_create(CLOCK_MONOTONIC, &ev, &id) == 0);
	OK(k_settime(id, 0, 1000000, 1000000, NULL) == 0);
	struct timespec nap = {0, 40000000};
	nanosleep(&nap, NULL);
	sigset_t pend;
	sigpending(&pend);
	printf("pending while blocked: %d\n", sigismember(&pend, SIGUSR2));
	hits = 0;
	first_overrun_id = id;
	block(SIGUSR2, SIG_UNBLOCK);
	wait_hits(1);
	first_overrun_id = -1;
	printf("overrun >= 10: %d, getoverrun matches: %d\n", first_overrun >= 10, first_getoverrun == first_overrun);
	OK(k_delete(id) == 0);

	/* A deleted timer's pending signal is dropped. */
	block(SIGUSR2, SIG_BLOCK);
	OK(k_create(CLOCK_MONOTONIC, &ev, &id) == 0);
	OK(k_settime(id, 0, 1000000, 0, NULL) == 0);
	nanosleep(&nap, NULL);
	sigpending(&pend);
	int was_pending = sigismember(&pend, SIGUSR2);
	OK(k_delete(id) == 0);
	hits = 0;
	block(SIGUSR2, SIG_UNBLOCK);
	printf("deleted while pending: was pending %d, delivered %d\n", was_pending, hits);

	/* TIMER_ABSTIME: a deadline on the clock, and one already past. */
	ev.signo = SIGUSR1;
	OK(k_create(CLOCK_MONOTONIC, &ev, &id) == 0);
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long deadline = ns(&now) + 20000000;
	hits = 0;
	OK(k_settime(id, TIMER_ABSTIME, deadline, 0, NULL) == 0);
	OK(k_gettime(id, &cur) == 0);
	printf("absolute: gettime is relative %d\n", ns(&cur.it_value) > 0 && ns(&cur.it_value) <= 20000000);
	wait_hits(1);
	clock_gettime(CLOCK_MONOTONIC, &now);
	printf("absolute: fired at or after the deadline %d\n", ns(&now) >= deadline);
	hits = 0;
	OK(k_settime(id, TIMER_ABSTIME, 1, 0, NULL) == 0);
	wait_hits(1);
	printf("absolute in the past fires: %d\n", hits);
	OK(k_delete(id) == 0);

	/* SIGEV_THREAD_ID: the signal goes to that thread. */
	pthread_t th;
	hits = 0;
	OK(pthread_create(&th, NULL, target_thread, NULL) == 0);
	while (!__atomic_load_n(&thread_ready, __ATOMIC_SEQ_CST))
		sched_yield();
	want_tid = thread_tid;
	ev.notify = K_SIGEV_THREAD_ID;
	ev.tid = thread_tid;
	OK(k_create(CLOCK_MONOTONIC, &ev, &id) == 0);
	OK(k_settime(id, 0, 10000000, 0, NULL) == 0);
	pthread_join(th, NULL);
	printf("SIGEV_THREAD_ID: delivered to the thread %d, code SI_TIMER %d\n", tid_ok, code == SI_TIMER);
	want_tid = 0;
	OK(k_delete(id) == 0);
	ev.tid = getppid();
	SHOW("SIGEV_THREAD_ID to another process", k_create(CLOCK_MONOTONIC, &ev, &id));
	/* The thread has been joined; give it time to be gone everywhere. */
	struct timespec settle = {0, 10000000};
	nanosleep(&settle, NULL);
	ev.tid = thread_tid;
	SHOW("SIGEV_THREAD_ID to an ended thread", k_create(CLOCK_MONOTONIC, &ev, &id));

	/* SIGEV_NONE: counts, never signals. */
	struct ksigevent none = {.notify = K_SIGEV_NONE, .signo = 0};
	OK(k_create(CLOCK_MONOTONIC, &none, &id) == 0);
	hits = 0;
	OK(k_settime(id, 0, 1000000, 1000000, NULL) == 0);
	nanosleep(&nap, NULL);
	OK(k_gettime(id, &cur) == 0);
	printf("SIGEV_NONE: no signal %d, still armed %d, interval %ld\n", hits == 0,
	       ns(&cur.it_value) > 0, ns(&cur.it_interval));
	OK(k_delete(id) == 0);

	/* CPU-time clocks fire while spinning. */
	ev.notify = K_SIGEV_SIGNAL;
	ev.signo = SIGUSR1;
	OK(k_create(CLOCK_PROCESS_CPUTIME_ID, &ev, &id) == 0);
	hits = 0;
	OK(k_settime(id, 0, 20000000, 0, NULL) == 0);
	OK(k_gettime(id, &cur) == 0);
	printf("process CPU timer: armed %d\n", ns(&cur.it_value) > 0 && ns(&cur.it_value) <= 20000000);
	printf("process CPU timer fires while spinning: %d\n", spin_for_hit());
	OK(k_delete(id) == 0);
	OK(k_create(CLOCK_THREAD_CPUTIME_ID, &ev, &id) == 0);
	hits = 0;
	OK(k_settime(id, 0, 20000000, 0, NULL) == 0);
	printf("thread CPU timer fires while spinning: %d\n", spin_for_hit());
	OK(k_delete(id) == 0);

	/* Argument checks. */
	SHOW("clock 99", k_create(99, &ev, &id));
	SHOW("CLOCK_MONOTONIC_RAW", k_create(CLOCK_MONOTONIC_RAW, &ev, &id));
	SHOW("CLOCK_MONOTONIC_COARSE", k_create(CLOCK_MONOTONIC_COARSE, &ev, &id));
	ev.signo = 0;
	SHOW("signo 0", k_create(CLOCK_MONOTONIC, &ev, &id));
	ev.signo = 65;
	SHOW("signo 65", k_create(CLOCK_MONOTONIC, &ev, &id));
	ev.signo = SIGUSR1;
	ev.notify = 99;
	SHOW("notify 99", k_create(CLOCK_MONOTONIC, &ev, &id));
	ev.notify = K_SIGEV_SIGNAL;
	SHOW("bad sigevent pointer", k_create(CLOCK_MONOTONIC, (void *)8, &id));
	SHOW("bad id pointer", k_create(CLOCK_MONOTONIC, &ev, (void *)8));
	OK(k_create(CLOCK_MONOTONIC, &ev, &id) == 0);
	struct itimerspec bad = {.it_value = {0, 1000000000}};
	SHOW("nsec 1e9", syscall(SYS_timer_settime, id, 0, &bad, NULL));
	bad = (struct itimerspec){.it_interval = {-1, 0}};
	SHOW("interval sec -1", syscall(SYS_timer_settime, id, 0, &bad, NULL));
	SHOW("settime bad pointer", syscall(SYS_timer_settime, id, 0, (void *)8, NULL));
	SHOW("gettime bad pointer", k_gettime(id, (void *)8));
	SHOW("gettime id 12345", k_gettime(12345, &cur));
	SHOW("gettime id -1", k_gettime(-1, &cur));

	/* Timers aren't inherited by a fork child and go at exec. */
	OK(k_settime(id, 0, 5000000000L, 0, NULL) == 0);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		SHOW("fork child: timer_gettime", k_gettime(id, &cur));
		fflush(stdout);
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	pid = fork();
	if (pid == 0) {
		int cid;
		OK(k_create(CLOCK_MONOTONIC, &ev, &cid) == 0);
		OK(k_settime(cid, 0, 5000000000L, 0, NULL) == 0);
		char idbuf[16];
		snprintf(idbuf, sizeof idbuf, "%d", cid);
		char *args[] = {argv[0], "exec-child", idbuf, NULL};
		execv(argv[0], args);
		_exit(127);
	}
	waitpid(pid, &status, 0);
	printf("exec child exit: %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	OK(k_delete(id) == 0);
	return 0;
}
