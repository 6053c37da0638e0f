/* /proc/self/task lists the process's threads, and /proc/self/status counts
 * them, while threads come and go. */
#include "conf.h"
#include <dirent.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#define N 3

static pthread_barrier_t started, finish;
static pid_t tids[N];

static void *worker(void *arg)
{
	tids[(long)arg] = syscall(SYS_gettid);
	pthread_barrier_wait(&started);
	pthread_barrier_wait(&finish);
	return NULL;
}

/* Number of numeric entries in /proc/self/task; sets *mine when each of
 * `want` (and the main thread) is among them. */
static int count_tasks(const pid_t *want, int nwant, int *all_found)
{
	DIR *d = opendir("/proc/self/task");
	if (!d) {
		printf("opendir: %s\n", errname(errno));
		return -1;
	}
	int n = 0, found = 0, main_found = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		pid_t t = atoi(e->d_name);
		n++;
		if (t == getpid())
			main_found = 1;
		for (int i = 0; i < nwant; i++)
			if (want[i] == t)
				found++;
	}
	closedir(d);
	*all_found = main_found && found == nwant;
	return n;
}

int main(void)
{
	int ok;
	printf("alone: %d tasks\n", count_tasks(NULL, 0, &ok));
	printf("alone: main listed %d, status Threads %d\n", ok, conf_threads_now());

	pthread_barrier_init(&started, NULL, N + 1);
	pthread_barrier_init(&finish, NULL, N + 1);
	pthread_t th[N];
	for (long i = 0; i < N; i++)
		CHECK("pthread_create", pthread_create(&th[i], NULL, worker, (void *)i) == 0);
	pthread_barrier_wait(&started);
	printf("with %d threads: %d tasks\n", N, count_tasks(tids, N, &ok));
	printf("every tid listed: %d, status Threads %d\n", ok, conf_threads_now());

	char path[64], comm[64] = { 0 };
	snprintf(path, sizeof path, "/proc/self/task/%d/comm", (int)tids[0]);
	FILE *f = fopen(path, "r");
	CHECK("open task comm", f != NULL);
	if (f) {
		CHECK("read task comm", fgets(comm, sizeof comm, f) != NULL);
		fclose(f);
	}
	printf("task comm: %s", comm);

	pthread_barrier_wait(&finish);
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	/* Linux wakes pthread_join (CLONE_CHILD_CLEARTID) a little before it
	 * drops the thread from the list: wait up to a second for that. */
	int n = 0;
	for (int i = 0; i < 1000 && (n = count_tasks(NULL, 0, &ok)) != 1; i++)
		usleep(1000);
	printf("after join: %d tasks, status Threads %d\n", n, conf_threads_now());
	return 0;
}
