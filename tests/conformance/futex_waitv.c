/* futex_waitv(2): one wait on several futexes, woken by a plain FUTEX_WAKE on any of them
 * (the call returns that futex's index), in private memory and in memory shared with
 * another process; EAGAIN when a word differs; absolute timeouts on CLOCK_MONOTONIC and
 * CLOCK_REALTIME; signals (EINTR without SA_RESTART, a restart with it); and the argument
 * checks, in Linux's order. */
#include "conf.h"
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#ifndef SYS_futex_waitv
#define SYS_futex_waitv 449
#endif
#define FUTEX_WAKE 1
#define FUTEX_PRIVATE_FLAG 128
#define FUTEX2_SIZE_U8 0x00
#define FUTEX2_SIZE_U32 0x02
#define FUTEX2_SIZE_U64 0x03
#define FUTEX2_PRIVATE 128

struct waitv {
	uint64_t val;
	uint64_t uaddr;
	uint32_t flags;
	uint32_t reserved;
};

static long waitv(struct waitv *w, unsigned n, unsigned flags, struct timespec *ts, int clock)
{
	return syscall(SYS_futex_waitv, w, n, flags, ts, clock);
}

static long wake(volatile uint32_t *addr, int private)
{
	return syscall(SYS_futex, addr, FUTEX_WAKE | (private ? FUTEX_PRIVATE_FLAG : 0), 1, NULL,
	               NULL, 0);
}

static void show(const char *what, long r)
{
	if (r < 0)
		printf("%s: %s\n", what, errname(errno));
	else
		printf("%s: %ld\n", what, r);
}

static void fill(struct waitv *w, volatile uint32_t *words, unsigned n, uint32_t flags)
{
	for (unsigned i = 0; i < n; i++) {
		w[i].val = words[i];
		w[i].uaddr = (uintptr_t)&words[i];
		w[i].flags = flags;
		w[i].reserved = 0;
	}
}

/* Wakes `word` until a waiter is taken (a wake before the waiter sleeps finds nobody). */
static long wake_until_taken(volatile uint32_t *word, int private)
{
	long woken = 0;
	for (int i = 0; i < 5000 && woken == 0; i++) {
		woken = wake(word, private);
		if (woken == 0)
			usleep(1000);
	}
	return woken;
}

static volatile uint32_t words[3];
static volatile long result;
static volatile int result_errno;

static void *waiter(void *arg)
{
	uint32_t flags = *(uint32_t *)arg;
	struct waitv w[3];
	fill(w, words, 3, flags);
	errno = 0;
	result = waitv(w, 3, 0, NULL, 0);
	result_errno = errno;
	return NULL;
}

static void woken_by_one(const char *label, uint32_t flags, int private)
{
	pthread_t th;
	pthread_create(&th, NULL, waiter, &flags);
	printf("%s: wake of the second took %ld\n", label, wake_until_taken(&words[1], private));
	pthread_join(th, NULL);
	printf("%s: waitv returned %ld (%s)\n", label, result, errname(result < 0 ? result_errno : 0));
	printf("%s: later wakes of the others took %ld %ld\n", label, wake(&words[0], private),
	       wake(&words[2], private));
}

/* A child process waits on three words of a MAP_SHARED page (no FUTEX2_PRIVATE); the
 * parent wakes the third. */
static void shared_between_processes(void)
{
	volatile uint32_t *page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	                               -1, 0);
	pid_t pid = fork();
	if (pid == 0) {
		struct waitv w[3];
		fill(w, page, 3, FUTEX2_SIZE_U32);
		long r = waitv(w, 3, 0, NULL, 0);
		_exit(r < 0 ? 100 : (int)r);
	}
	printf("shared: wake of the third took %ld\n", wake_until_taken(&page[2], 0));
	int status;
	waitpid(pid, &status, 0);
	printf("shared: child's waitv returned %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static void timeouts(void)
{
	static volatile uint32_t w2[2];
	struct waitv w[2];
	fill(w, w2, 2, FUTEX2_SIZE_U32 | FUTEX2_PRIVATE);
	int clocks[] = {CLOCK_MONOTONIC, CLOCK_REALTIME};
	for (int i = 0; i < 2; i++) {
		struct timespec start, end, dl;
		clock_gettime(clocks[i], &start);
		dl = start;
		dl.tv_nsec += 50 * 1000 * 1000;
		if (dl.tv_nsec >= 1000000000) {
			dl.tv_sec++;
			dl.tv_nsec -= 1000000000;
		}
		long r = waitv(w, 2, 0, &dl, clocks[i]);
		int e = errno;
		clock_gettime(clocks[i], &end);
		int reached = end.tv_sec > dl.tv_sec ||
		              (end.tv_sec == dl.tv_sec && end.tv_nsec >= dl.tv_nsec);
		printf("timeout on %s: %s, deadline reached %d\n",
		       i ? "CLOCK_REALTIME" : "CLOCK_MONOTONIC", r < 0 ? errname(e) : "woken", reached);
	}
	struct timespec past = {1, 0};
	show("deadline in the past", waitv(w, 2, 0, &past, CLOCK_MONOTONIC));
	show("timeout on CLOCK_BOOTTIME", waitv(w, 2, 0, &past, CLOCK_BOOTTIME));
	struct timespec bad = {0, 1000000000};
	show("timeout with tv_nsec 1e9", waitv(w, 2, 0, &bad, CLOCK_MONOTONIC));
	show("timeout at a bad address", waitv(w, 2, 0, (struct timespec *)8, CLOCK_MONOTONIC));
	/* A word that differs comes before a bad clock only when there is no timeout. */
	w[1].val = 7;
	show("EAGAIN with clock 99 and no timeout", waitv(w, 2, 0, NULL, 99));
}

static void on_signal(int sig)
{
	(void)sig;
}

static void signals(void)
{
	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	for (int restart = 0; restart < 2; restart++) {
		sa.sa_flags = restart ? SA_RESTART : 0;
		sigaction(SIGUSR1, &sa, NULL);
		uint32_t flags = FUTEX2_SIZE_U32 | FUTEX2_PRIVATE;
		result = -2;
		pthread_t th;
		pthread_create(&th, NULL, waiter, &flags);
		usleep(100000);
		pthread_kill(th, SIGUSR1);
		if (restart) {
			usleep(100000);
			printf("SA_RESTART: still waiting after the signal: %d\n", result == -2);
			printf("SA_RESTART: wake of the first took %ld\n", wake_until_taken(&words[0], 1));
		}
		pthread_join(th, NULL);
		printf("%s: waitv returned %ld (%s)\n", restart ? "SA_RESTART" : "no SA_RESTART",
		       result, errname(result < 0 ? result_errno : 0));
	}
}

static void errors(void)
{
	static volatile uint32_t v[130];
	static struct waitv w[130];
	fill(w, v, 130, FUTEX2_SIZE_U32 | FUTEX2_PRIVATE);
	w[127].val = 1;
	show("128 futexes, the last differs", waitv(w, 128, 0, NULL, 0));
	show("129 futexes", waitv(w, 129, 0, NULL, 0));
	show("0 futexes", waitv(w, 0, 0, NULL, 0));
	show("flags 1", waitv(w, 1, 1, NULL, 0));
	show("NULL vector", waitv(NULL, 1, 0, NULL, 0));
	show("vector at a bad address", waitv((struct waitv *)8, 1, 0, NULL, 0));
	w[0].val = 1;
	show("first differs", waitv(w, 2, 0, NULL, 0));
	w[0].val = 0;
	w[1].val = 1;
	show("second differs", waitv(w, 2, 0, NULL, 0));
	w[1].val = 0;

	struct waitv bad[2];
	fill(bad, v, 2, FUTEX2_SIZE_U32 | FUTEX2_PRIVATE);
	bad[1].val = 1;
	bad[0].flags = FUTEX2_SIZE_U8;
	show("FUTEX2_SIZE_U8", waitv(bad, 2, 0, NULL, 0));
	bad[0].flags = FUTEX2_SIZE_U64 | FUTEX2_PRIVATE;
	show("FUTEX2_SIZE_U64", waitv(bad, 2, 0, NULL, 0));
	bad[0].flags = FUTEX2_SIZE_U32 | 0x40;
	show("unknown flag", waitv(bad, 2, 0, NULL, 0));
	bad[0].flags = FUTEX2_SIZE_U32 | FUTEX2_PRIVATE;
	bad[0].reserved = 1;
	show("reserved 1", waitv(bad, 2, 0, NULL, 0));
	bad[0].reserved = 0;
	bad[0].val = 1ull << 32;
	show("value above 32 bits", waitv(bad, 2, 0, NULL, 0));
	bad[0].val = 0;
	/* Every key is made before any word is read: a misaligned second word is EINVAL even
	 * though the first differs... */
	bad[0].val = 5;
	bad[1].uaddr = (uintptr_t)v + 2;
	show("first differs, second misaligned", waitv(bad, 2, 0, NULL, 0));
	/* ...while words are read in order: the first differing ends it before a bad second. */
	bad[1].uaddr = 4096;
	show("first differs, second unmapped", waitv(bad, 2, 0, NULL, 0));
	bad[0].val = 0;
	show("second unmapped", waitv(bad, 2, 0, NULL, 0));
	bad[1].uaddr = (uintptr_t)v + 1;
	show("second misaligned", waitv(bad, 2, 0, NULL, 0));
}

int main(void)
{
	woken_by_one("private", FUTEX2_SIZE_U32 | FUTEX2_PRIVATE, 1);
	woken_by_one("not private", FUTEX2_SIZE_U32, 0);
	shared_between_processes();
	timeouts();
	signals();
	errors();
	return 0;
}
