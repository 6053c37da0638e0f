/* execve racing the start of the threads it must end: many generations, each
 * creating threads of the kinds argv[1] names (spin: in user mode for ever;
 * read: blocked on a pipe; sleep: nanosleep; futex: pthread_cond_wait; suspend:
 * sigsuspend; sigwait: sigwait) and then at once (or after a yield, or a short
 * nap) calling execve, from the main thread or from a new thread. Linux's
 * de_thread ends them all wherever they are, started or not: the new image runs
 * alone (Threads: 1) with the same pid, every time.
 *
 * The threads are caught just starting, on their way into a call, or asleep in
 * it. In the sandbox a thread whose vCPU came after the exec's kicks spun on, a
 * kick cleared by the next call left that call's sleep going, and sigsuspend and
 * sigwait went back to sleep after the kick: execve waited for ever (exec_threads
 * timed out now and then on a loaded machine). */
#include "conf.h"
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#define GENERATIONS 40

static int p[2];
static volatile int spins;
static char self[4096];
static char *kinds;
static char gen_arg[16], pid_arg[32], bad_arg[16];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;

static void *spinner(void *a) { (void)a; for (;;) spins++; return NULL; }
static void *reader(void *a) { (void)a; char c; read(p[0], &c, 1); return NULL; }
static void *sleeper(void *a)
{
	(void)a;
	struct timespec t = {100, 0};
	nanosleep(&t, NULL);
	return NULL;
}
static void *cond_waiter(void *a)
{
	(void)a;
	pthread_mutex_lock(&mu);
	for (;;)
		pthread_cond_wait(&cv, &mu);
	return NULL;
}
static void *suspender(void *a)
{
	(void)a;
	sigset_t none;
	sigemptyset(&none);
	sigsuspend(&none);
	return NULL;
}
static void *sigwaiter(void *a)
{
	(void)a;
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	int sig;
	sigwait(&s, &sig);
	return NULL;
}

static void exec_next(void)
{
	execl(self, self, kinds, gen_arg, pid_arg, bad_arg, (char *)NULL);
	printf("execl: %s\n", errname(errno));
	exit(1);
}

static void *exec_from_thread(void *a)
{
	(void)a;
	exec_next();
	return NULL;
}

int main(int argc, char **argv)
{
	int gen = 0, bad = 0;
	if (argc != 2 && argc != 5) {
		printf("usage: exec_threads_race KIND,KIND...\n");
		return 2;
	}
	kinds = argv[1];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	self[n > 0 ? n : 0] = 0;
	if (argc == 5) {
		gen = atoi(argv[2]);
		bad = atoi(argv[4]);
		int threads = conf_threads_now();
		int same_pid = atoi(argv[3]) == getpid();
		if (threads != 1 || !same_pid) {
			/* At most a few lines, whatever goes wrong. */
			if (bad++ < 5)
				printf("generation %d: threads %d, same pid %d\n", gen, threads,
				       same_pid);
		}
	}
	if (gen == GENERATIONS) {
		printf("%s: %d generations, %d bad\n", kinds, GENERATIONS, bad);
		return 0;
	}
	/* SIGUSR2 is blocked for sigwait (inherited by the threads, kept across exec). */
	sigset_t s;
	sigemptyset(&s);
	sigaddset(&s, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &s, NULL);
	if (pipe2(p, O_CLOEXEC) != 0) {
		printf("pipe2: %s\n", errname(errno));
		return 1;
	}
	snprintf(gen_arg, sizeof gen_arg, "%d", gen + 1);
	snprintf(pid_arg, sizeof pid_arg, "%d", getpid());
	snprintf(bad_arg, sizeof bad_arg, "%d", bad);
	static const struct {
		const char *name;
		void *(*start)(void *);
	} all[] = {
		{"spin", spinner},   {"read", reader},	   {"sleep", sleeper},
		{"futex", cond_waiter}, {"suspend", suspender}, {"sigwait", sigwaiter},
	};
	pthread_t t;
	char list[256];
	snprintf(list, sizeof list, "%s", kinds);
	for (char *save, *k = strtok_r(list, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
		unsigned i = 0;
		while (i < sizeof all / sizeof *all && strcmp(all[i].name, k) != 0)
			i++;
		if (i == sizeof all / sizeof *all) {
			printf("no such kind: %s\n", k);
			return 2;
		}
		pthread_create(&t, NULL, all[i].start, NULL);
	}
	/* How long the threads get to start: none, a yield, 50 us, 2 ms. */
	switch (gen % 4) {
	case 0:
		break;
	case 1:
		sched_yield();
		break;
	case 2: {
		struct timespec nap = {0, 50000};
		nanosleep(&nap, NULL);
		break;
	}
	case 3: {
		struct timespec nap = {0, 2000000};
		nanosleep(&nap, NULL);
		break;
	}
	}
	if ((gen / 4) % 2 == 0) {
		exec_next();
	} else {
		pthread_create(&t, NULL, exec_from_thread, NULL);
		pthread_join(t, NULL);
		printf("not reached\n");
	}
	return 1;
}
