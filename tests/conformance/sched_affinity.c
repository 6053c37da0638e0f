/* sched_setaffinity and sched_getaffinity (issue 14 item 9): a thread's CPU mask as Linux
 * keeps it: set and read back, per thread (another thread's by tid), inherited by new
 * threads and forked children and kept across execve, sysconf's and nproc's view of it,
 * and the errors: an empty or impossible mask (EINVAL), a short or odd buffer for get
 * (EINVAL), a missing thread (ESRCH), another user's process (EPERM), bad pointers
 * (EFAULT). Prints counts, never CPU numbers. Usage: sched_affinity [exec-child] */
#include "conf.h"
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static int first_cpu(void)
{
	cpu_set_t s;
	if (sched_getaffinity(0, sizeof s, &s) != 0)
		return -1;
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &s))
			return i;
	return -1;
}

static int count(pid_t pid)
{
	cpu_set_t s;
	if (sched_getaffinity(pid, sizeof s, &s) != 0)
		return -errno;
	return CPU_COUNT(&s);
}

static void *thread_count(void *arg)
{
	(void)arg;
	return (void *)(long)count(0);
}

static volatile pid_t worker_tid;
static volatile int worker_done;

static void *worker(void *arg)
{
	(void)arg;
	worker_tid = (pid_t)syscall(SYS_gettid);
	while (!worker_done)
		usleep(1000);
	return (void *)(long)count(0);
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "exec-child")) {
		printf("after execve: %d\n", count(0));
		return 0;
	}
	int all = count(0);
	printf("starts with a CPU or more: %s\n", all > 0 ? "yes" : "no");
	int cpu = first_cpu();
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);

	/* Another thread's mask, by tid: it changes that thread only. */
	pthread_t w;
	pthread_create(&w, NULL, worker, NULL);
	while (!worker_tid)
		usleep(1000);
	ERRCALL("set another thread's", sched_setaffinity(worker_tid, sizeof one, &one));
	printf("that thread reads by tid: %d\n", count(worker_tid));
	printf("this thread still: %s\n", count(0) == all ? "all" : "changed");
	worker_done = 1;
	void *r;
	pthread_join(w, &r);
	printf("that thread read itself: %ld\n", (long)r);

	/* Our own. */
	ERRCALL("set one CPU", sched_setaffinity(0, sizeof one, &one));
	printf("count: %d\n", count(0));
	printf("by pid: %d\n", count(getpid()));
	printf("sysconf online (not affected): %s\n",
	       sysconf(_SC_NPROCESSORS_ONLN) >= 1 ? "ok" : "bad");
	pthread_t th;
	pthread_create(&th, NULL, thread_count, NULL);
	pthread_join(th, &r);
	printf("new thread inherits: %ld\n", (long)r);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		printf("forked child inherits: %d\n", count(0));
		fflush(stdout);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	pid = fork();
	if (pid == 0) {
		execl("/proc/self/exe", argv[0], "exec-child", (char *)NULL);
		_exit(127);
	}
	waitpid(pid, NULL, 0);

	/* A short buffer for set: the rest of the mask is clear. */
	unsigned long word = 1UL << (cpu % 64);
	if (cpu < 64) {
		ERRCALL("set from 8 bytes", sched_setaffinity(0, 8, (cpu_set_t *)&word));
		printf("count: %d\n", count(0));
	}

	/* Errors. */
	cpu_set_t none;
	CPU_ZERO(&none);
	ERRCALL("empty mask", sched_setaffinity(0, sizeof none, &none));
	{
		/* A CPU no machine here has. */
		static unsigned long big[1024 / 64];
		memset(big, 0, sizeof big);
		big[1000 / 64] = 1UL << (1000 % 64);
		ERRCALL("only CPU 1000", sched_setaffinity(0, sizeof big, (cpu_set_t *)big));
	}
	ERRCALL("set bad pointer", sched_setaffinity(0, sizeof one, (cpu_set_t *)8));
	ERRCALL("set missing thread", sched_setaffinity(999999, sizeof one, &one));
	ERRCALL("set negative pid", sched_setaffinity(-5, sizeof one, &one));
	long n = syscall(SYS_sched_getaffinity, 0, 4, &one);
	printf("get 4 bytes: %ld %s\n", n, n < 0 ? errname(errno) : "");
	n = syscall(SYS_sched_getaffinity, 0, 12, &one);
	printf("get 12 bytes: %ld %s\n", n, n < 0 ? errname(errno) : "");
	n = syscall(SYS_sched_getaffinity, 0, sizeof one, (void *)8);
	printf("get bad pointer: %ld %s\n", n, n < 0 ? errname(errno) : "");
	n = syscall(SYS_sched_getaffinity, 999999, sizeof one, &one);
	printf("get missing thread: %ld %s\n", n, n < 0 ? errname(errno) : "");
	n = syscall(SYS_sched_getaffinity, 0, sizeof one, &one);
	printf("get returns the mask size: %s\n", n > 0 && n % 8 == 0 && n <= (long)sizeof one ? "yes" : "no");

	/* Another user may not change ours. */
	fflush(stdout);
	pid_t parent = getpid();
	pid = fork();
	if (pid == 0) {
		if (setresgid(1000, 1000, 1000) != 0 || setresuid(1000, 1000, 1000) != 0) {
			printf("setresuid: %s\n", errname(errno));
			_exit(1);
		}
		ERRCALL("uid 1000 sets root's", sched_setaffinity(parent, sizeof one, &one));
		printf("uid 1000 reads root's: %d\n", count(parent));
		ERRCALL("uid 1000 sets its own", sched_setaffinity(0, sizeof one, &one));
		fflush(stdout);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	return 0;
}
