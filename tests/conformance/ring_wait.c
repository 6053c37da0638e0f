/* Calls that wait briefly (issue 12 item 3): short sleeps, futex and pipe ping-pong between
 * two threads, and signals landing while a thread waits in futex or pipe read. In the
 * sandbox these may be answered through the ring while the caller spins, or by its own
 * thread: either way the results must be Linux's.
 * usage: ring_wait sleep|futex|pipe|signal */
#include "conf.h"
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>

/* musl has no <linux/futex.h> here. */
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129
#define FUTEX_WAIT_BITSET_PRIVATE (9 | 128)

static long fx(atomic_int *w, int op, int val)
{
	return syscall(SYS_futex, w, op, val, NULL, NULL, 0);
}

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

#define ROUNDS 2000

static int sleeps(void)
{
	double asked = 0, start = now_ns();
	for (int i = 0; i < 500; i++) {
		struct timespec ts = {0, 1000 * (i % 60)};
		if (nanosleep(&ts, NULL) != 0) return printf("nanosleep: %s\n", errname(errno)), 1;
		asked += ts.tv_nsec;
		ts.tv_nsec = 7000;
		int rc = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
		if (rc) return printf("clock_nanosleep: %s\n", errname(rc)), 1;
		asked += ts.tv_nsec;
	}
	double took = now_ns() - start;
	printf("sleeps: %s\n", took >= asked ? "no shorter than asked" : "TOO SHORT");
	struct timespec bad = {0, 1000000000};
	printf("bad timespec: %s\n", nanosleep(&bad, NULL) ? errname(errno) : "0");
	return 0;
}

static atomic_int turn;

static void *futex_peer(void *arg)
{
	(void)arg;
	for (int i = 0; i < ROUNDS; i++) {
		while (atomic_load(&turn) != 1) fx(&turn, FUTEX_WAIT_PRIVATE, 0);
		atomic_store(&turn, 0);
		fx(&turn, FUTEX_WAKE_PRIVATE, 1);
	}
	return NULL;
}

static int futex_pingpong(void)
{
	pthread_t t;
	pthread_create(&t, NULL, futex_peer, NULL);
	for (int i = 0; i < ROUNDS; i++) {
		atomic_store(&turn, 1);
		fx(&turn, FUTEX_WAKE_PRIVATE, 1);
		while (atomic_load(&turn) != 0) fx(&turn, FUTEX_WAIT_PRIVATE, 1);
	}
	pthread_join(t, NULL);
	atomic_int w = 5;
	long rc = fx(&w, FUTEX_WAIT_PRIVATE, 4);
	printf("futex: %d rounds, wait on a changed word: %s\n", ROUNDS, rc ? errname(errno) : "0");
	rc = syscall(SYS_futex, &w, FUTEX_WAIT_BITSET_PRIVATE, 5, NULL, NULL, 0);
	printf("wait_bitset 0: %s\n", rc ? errname(errno) : "0");
	return 0;
}

static int ab[2], ba[2];

static void *pipe_peer(void *arg)
{
	(void)arg;
	char c;
	for (int i = 0; i < ROUNDS; i++) {
		if (read(ab[0], &c, 1) != 1) return (void *)1;
		c++;
		if (write(ba[1], &c, 1) != 1) return (void *)1;
	}
	return NULL;
}

static int pipe_pingpong(void)
{
	if (pipe(ab) || pipe(ba)) return 1;
	pthread_t t;
	pthread_create(&t, NULL, pipe_peer, NULL);
	unsigned sum = 0;
	for (int i = 0; i < ROUNDS; i++) {
		char c = (char)i;
		if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1) return printf("io failed\n"), 1;
		sum = sum * 31 + (unsigned char)c;
	}
	void *r;
	pthread_join(t, &r);
	printf("pipe: %d rounds, checksum %u, peer %s\n", ROUNDS, sum, r ? "failed" : "ok");
	return 0;
}

static atomic_int waiting, done, handled, never;
static int sigpipe[2];

static void on_usr1(int s)
{
	(void)s;
	atomic_fetch_add(&handled, 1);
}

static void *signal_target(void *arg)
{
	int use_pipe = *(int *)arg;
	atomic_store(&waiting, 1);
	long rc;
	int e;
	if (use_pipe) {
		char c;
		rc = read(sigpipe[0], &c, 1);
	} else {
		rc = fx(&never, FUTEX_WAIT_PRIVATE, 0);
	}
	e = errno;
	atomic_store(&done, rc < 0 ? e : 1000);
	return NULL;
}

static int signals(void)
{
	struct sigaction sa = {0};
	sa.sa_handler = on_usr1; /* no SA_RESTART: the wait fails with EINTR */
	sigaction(SIGUSR1, &sa, NULL);
	if (pipe(sigpipe)) return 1;
	for (int use_pipe = 0; use_pipe < 2; use_pipe++) {
		int eintr = 0, other = 0;
		for (int i = 0; i < 100; i++) {
			atomic_store(&waiting, 0);
			atomic_store(&done, 0);
			pthread_t t;
			pthread_create(&t, NULL, signal_target, &use_pipe);
			while (!atomic_load(&waiting)) {}
			/* Keep signalling until the wait ends: a signal that lands before the call
			 * only runs the handler; a later one interrupts the wait, early or late. */
			for (int k = 0; !atomic_load(&done); k++) {
				struct timespec ts = {0, 1000 * (k % 40)};
				nanosleep(&ts, NULL);
				pthread_kill(t, SIGUSR1);
			}
			pthread_join(t, NULL);
			if (atomic_load(&done) == EINTR) eintr++;
			else other++;
		}
		printf("%s: %d EINTR, %d other\n", use_pipe ? "pipe read" : "futex wait", eintr, other);
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *k = argc > 1 ? argv[1] : "";
	if (!strcmp(k, "sleep")) return sleeps();
	if (!strcmp(k, "futex")) return futex_pingpong();
	if (!strcmp(k, "pipe")) return pipe_pingpong();
	if (!strcmp(k, "signal")) return signals();
	fprintf(stderr, "usage: ring_wait sleep|futex|pipe|signal\n");
	return 2;
}
