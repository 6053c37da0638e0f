/* execve in a multi-threaded process: the other threads (spinning, asleep in
 * read, asleep in nanosleep) end, and the new program runs alone with the same
 * pid, whether the main thread or another one called execve. */
#include "conf.h"
#include <pthread.h>
#include <time.h>
#include <unistd.h>

static int p[2];
static volatile int spins;
static char self[4096];
static char pid_arg[32];

static void *spinner(void *a) { (void)a; for (;;) spins++; return NULL; }
static void *reader(void *a) { (void)a; char c; read(p[0], &c, 1); return NULL; }
static void *sleeper(void *a)
{
	(void)a;
	struct timespec t = {100, 0};
	nanosleep(&t, NULL);
	return NULL;
}

static void start_threads(void)
{
	pthread_t t;
	pthread_create(&t, NULL, spinner, NULL);
	pthread_create(&t, NULL, reader, NULL);
	pthread_create(&t, NULL, sleeper, NULL);
	struct timespec nap = {0, 20000000};
	nanosleep(&nap, NULL);
}

static void *exec_from_thread(void *a)
{
	(void)a;
	execl(self, self, "after", "from a thread", pid_arg, (char *)NULL);
	printf("execl: %s\n", errname(errno));
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc == 4) {
		printf("%s: threads %d, same pid %d\n", argv[2], conf_threads_now(),
		       atoi(argv[3]) == getpid());
		if (strcmp(argv[2], "from the main thread") == 0) {
			/* Now exec again from a second thread. */
			ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
			self[n > 0 ? n : 0] = 0;
			snprintf(pid_arg, sizeof pid_arg, "%d", getpid());
			CHECK("pipe", pipe(p) == 0);
			start_threads();
			pthread_t t;
			pthread_create(&t, NULL, exec_from_thread, NULL);
			pthread_join(t, NULL);
			printf("not reached\n");
		}
		return 0;
	}
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	self[n > 0 ? n : 0] = 0;
	snprintf(pid_arg, sizeof pid_arg, "%d", getpid());
	CHECK("pipe", pipe(p) == 0);
	start_threads();
	printf("before: threads %d\n", conf_threads_now());
	fflush(stdout);
	execl(self, self, "after", "from the main thread", pid_arg, (char *)NULL);
	printf("execl: %s\n", errname(errno));
	return 1;
}
