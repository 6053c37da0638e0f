/* Not a differential program: tests/tests/leaks.rs drives it in the sandbox and watches
 * the runsc process from the host. It prints "ready", then for each line on stdin runs one
 * round of work and prints "done"; it exits at end of input. A round ("seq"): 200
 * children, each forked, exec'd (this program, mode "child") and waited for, one at a
 * time, 200 threads created and joined one at a time, pipes, socketpairs and files opened
 * and closed; "go" adds 200 more threads, 20 alive at once. */
#include "conf.h"
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

enum { CHILDREN = 200, THREADS = 200, AT_ONCE = 20 };

/* All AT_ONCE threads of a batch (and main) meet here, so that every round reaches the
 * same peak of live threads: the sentry's vCPU pool grows to that peak in the first round
 * and must not grow after. */
static pthread_barrier_t all_alive;

/* A thread, alone or (arg: a barrier) with the others of its batch. Returns its tid. */
static void *thread_body(void *arg)
{
	if (arg)
		pthread_barrier_wait(arg);
	int fds[2];
	if (pipe(fds) == 0) {
		close(fds[0]);
		close(fds[1]);
	}
	return (void *)(long)syscall(SYS_gettid);
}

/* Joins a thread and waits until it is gone from the process, not just done: musl's
 * pthread_join returns before the thread's exit system call, so the next thread would
 * race with the end of this one (and need a vCPU of its own) a varying number of times. */
static void join_and_reap(pthread_t t)
{
	void *tid;
	pthread_join(t, &tid);
	while (syscall(SYS_tgkill, getpid(), (pid_t)(long)tid, 0) == 0)
		sched_yield();
}

static int round_of_work(const char *self, int batches)
{
	for (int i = 0; i < CHILDREN; i++) {
		int fds[2];
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
			return -1;
		pid_t pid = fork();
		if (pid == 0) {
			execl(self, self, "child", (char *)NULL);
			_exit(127);
		}
		close(fds[0]);
		close(fds[1]);
		int st;
		if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
			return -1;
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_t t;
		pthread_barrier_t *none = NULL;
		if (pthread_create(&t, NULL, thread_body, none) != 0)
			return -1;
		join_and_reap(t);
	}
	for (int i = 0; batches && i < THREADS; i += AT_ONCE) {
		pthread_t t[AT_ONCE];
		for (int j = 0; j < AT_ONCE; j++)
			if (pthread_create(&t[j], NULL, thread_body, &all_alive) != 0)
				return -1;
		pthread_barrier_wait(&all_alive);
		for (int j = 0; j < AT_ONCE; j++)
			join_and_reap(t[j]);
	}
	for (int i = 0; i < 50; i++) {
		int fd = open(self, O_RDONLY);
		if (fd < 0)
			return -1;
		close(fd);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "child"))
		return 0;
	setvbuf(stdout, NULL, _IONBF, 0);
	pthread_barrier_init(&all_alive, NULL, AT_ONCE + 1);
	printf("ready\n");
	char line[64];
	while (fgets(line, sizeof line, stdin)) {
		if (round_of_work(argv[0], !strcmp(line, "go\n")) != 0) {
			printf("round failed: errno=%s\n", errname(errno));
			return 1;
		}
		printf("done\n");
	}
	return 0;
}
