/* Futexes in memory shared between processes. A futex without FUTEX_PRIVATE_FLAG on a
 * MAP_SHARED mapping is keyed by the shared object and offset, not by the address, so a
 * waker in another process (another address space, maybe another address) meets the
 * waiter. With FUTEX_PRIVATE_FLAG the key is the address space: other processes don't meet.
 * POSIX named semaphores (sem_open: a /dev/shm file mapped MAP_SHARED) rely on this, and
 * so does Python's multiprocessing. */
#include "conf.h"
#include <fcntl.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096
/* musl has no kernel headers. */
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_PRIVATE_FLAG 128

static long futex(volatile unsigned *w, int op, unsigned val, const struct timespec *ts)
{
	return syscall(SYS_futex, w, op, val, ts, NULL, 0);
}

/* A child waits on `wait_at` (word 0 -> asleep), the parent wakes through `wake_at` (the
 * same shared word, maybe at another address) once the child is asleep. The child reports
 * how its wait ended through its exit status; the parent prints how many the wake woke.
 * `ready` is a shared flag the child sets just before sleeping. `remap` (if not NULL) maps
 * the word in the child after fork, to give the child another address. */
static void wait_then_wake(const char *label, volatile unsigned *wait_at,
                           volatile unsigned *wake_at, volatile unsigned *ready, int private,
                           volatile unsigned *(*remap)(void))
{
	int flag = private ? FUTEX_PRIVATE_FLAG : 0;
	*wait_at = 0;
	*ready = 0;
	pid_t pid = fork();
	if (pid == 0) {
		if (remap)
			wait_at = remap();
		struct timespec ts = {private ? 0 : 3, private ? 300000000 : 0};
		*ready = 1;
		long r = futex(wait_at, FUTEX_WAIT | flag, 0, &ts);
		_exit(r == 0 ? 0 : errno == ETIMEDOUT ? 1 : 2);
	}
	while (!*ready)
		usleep(1000);
	long woken = 0;
	if (private) {
		usleep(50000);
		woken = futex(wake_at, FUTEX_WAKE | flag, 1, NULL);
	} else {
		/* Retry until the child is asleep (a wake before it sleeps finds nobody). */
		for (int i = 0; i < 2000 && woken == 0; i++) {
			woken = futex(wake_at, FUTEX_WAKE | flag, 1, NULL);
			if (woken == 0)
				usleep(1000);
		}
	}
	int st;
	waitpid(pid, &st, 0);
	int code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	printf("%s: wake woke %ld, child's wait %s\n", label, woken,
	       code == 0 ? "woken" : code == 1 ? "timed out" : "failed");
}

static char shm_path[64];

/* The /dev/shm file mapped again in the child, one page further into a two-page mapping,
 * so the word has another address than the parent's. */
static volatile unsigned *remap_shm(void)
{
	int fd = open(shm_path, O_RDWR);
	char *m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		_exit(3);
	return (volatile unsigned *)(m + PAGE);
}

/* Counter protected by a named semaphore, incremented by several processes. */
static void semaphore_counter(void)
{
	char name[64];
	snprintf(name, sizeof name, "/conf-futex-sem-%d", (int)getpid());
	sem_t *sem = sem_open(name, O_CREAT | O_EXCL, 0600, 1);
	CHECK("sem_open", sem != SEM_FAILED);
	sem_unlink(name);
	volatile unsigned *counter = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
	                                  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	enum { PROCS = 4, ROUNDS = 2000 };
	pid_t pids[PROCS];
	for (int p = 0; p < PROCS; p++) {
		pids[p] = fork();
		if (pids[p] == 0) {
			for (int i = 0; i < ROUNDS; i++) {
				while (sem_wait(sem) != 0) {}
				unsigned v = *counter;
				if (i % 64 == 0)
					sched_yield(); /* hold it a while: others block in sem_wait */
				*counter = v + 1;
				sem_post(sem);
			}
			_exit(0);
		}
	}
	int ok = 1;
	for (int p = 0; p < PROCS; p++) {
		int st;
		waitpid(pids[p], &st, 0);
		ok &= WIFEXITED(st) && WEXITSTATUS(st) == 0;
	}
	printf("semaphore counter: %u (children ok: %d)\n", *counter, ok);
	sem_close(sem);
}

int main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	/* A stuck wait must fail the test, not hang it. */
	alarm(40);

	volatile unsigned *anon = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
	                               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK("mmap shared anonymous", anon != MAP_FAILED);
	wait_then_wake("shared anonymous", &anon[0], &anon[0], &anon[1], 0, NULL);
	wait_then_wake("shared anonymous, private flag", &anon[0], &anon[0], &anon[1], 1, NULL);

	snprintf(shm_path, sizeof shm_path, "/dev/shm/conf-futex-%d", (int)getpid());
	int fd = open(shm_path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	CHECK("ftruncate", fd >= 0 && ftruncate(fd, 2 * PAGE) == 0);
	char *file = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK("mmap /dev/shm file", file != MAP_FAILED);
	volatile unsigned *word = (volatile unsigned *)(file + PAGE);
	wait_then_wake("/dev/shm file, same address", word, word, &anon[1], 0, NULL);
	wait_then_wake("/dev/shm file, other address", word, word, &anon[1], 0, remap_shm);

	/* The same file page mapped twice in one process: a wake through one address
	 * reaches a waiter on the other. */
	char *again = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, PAGE);
	CHECK("mmap the page again", again != MAP_FAILED);
	wait_then_wake("/dev/shm file, two mappings", word, (volatile unsigned *)again,
	               &anon[1], 0, NULL);
	unlink(shm_path);

	semaphore_counter();
	return 0;
}
