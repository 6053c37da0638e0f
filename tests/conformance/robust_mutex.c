/* Robust mutexes: when the owner of a robust mutex ends (a thread that returns,
 * a process that exits, with or without a waiter blocked on the lock), the next
 * locker gets EOWNERDEAD, can make the mutex consistent, and it works again.
 * The kernel does this from the list set_robust_list registered. */
#include "conf.h"
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t *make_mutex(int shared)
{
	pthread_mutex_t *m = mmap(NULL, sizeof *m, PROT_READ | PROT_WRITE,
	                          MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	pthread_mutexattr_t a;
	pthread_mutexattr_init(&a);
	pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	if (shared)
		pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	pthread_mutex_init(m, &a);
	return m;
}

static void after_owner_died(const char *what, pthread_mutex_t *m, int r)
{
	printf("%s: lock gives %s\n", what, r == EOWNERDEAD ? "EOWNERDEAD" : errname(r));
	if (r == EOWNERDEAD) {
		printf("  consistent: %d\n", pthread_mutex_consistent(m));
		printf("  unlock: %d\n", pthread_mutex_unlock(m));
		r = pthread_mutex_lock(m);
		printf("  lock again: %d\n", r);
		pthread_mutex_unlock(m);
	}
}

static void *lock_and_leave(void *arg)
{
	pthread_mutex_lock(arg);
	return NULL;
}

int main(void)
{
	/* A thread takes the lock and ends. */
	pthread_mutex_t *m = make_mutex(0);
	pthread_t t;
	pthread_create(&t, NULL, lock_and_leave, m);
	pthread_join(t, NULL);
	after_owner_died("thread ended holding it", m, pthread_mutex_lock(m));

	/* A child process takes a process-shared lock and exits. */
	pthread_mutex_t *s = make_mutex(1);
	pid_t pid = fork();
	if (pid == 0) {
		pthread_mutex_lock(s);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	after_owner_died("process exited holding it", s, pthread_mutex_lock(s));

	/* The parent is already waiting for the lock when the child dies. */
	int p[2];
	CHECK("pipe", pipe(p) == 0);
	pid = fork();
	if (pid == 0) {
		pthread_mutex_lock(s);
		write(p[1], "x", 1);
		struct timespec nap = {0, 100000000};
		nanosleep(&nap, NULL);
		_exit(0);
	}
	char c;
	CHECK("child holds it", read(p[0], &c, 1) == 1);
	int r = pthread_mutex_lock(s);
	after_owner_died("waiting when the owner died", s, r);
	waitpid(pid, NULL, 0);
	return 0;
}
