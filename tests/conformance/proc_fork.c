/* Processes and threads: fork, vfork, exec, wait, pipes between processes, process groups,
 * pthreads with a contended mutex. */
#include "conf.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static long counter;

static void *worker(void *arg) {
	for (int i = 0; i < 10000; i++) {
		pthread_mutex_lock(&lock);
		counter++;
		pthread_mutex_unlock(&lock);
	}
	return arg;
}

int main(void) {
	setvbuf(stdout, NULL, _IONBF, 0);
	pid_t me = getpid();
	pid_t c = fork();
	if (c == 0) {
		printf("child: parent is me: %d\n", getppid() == me);
		_exit(7);
	}
	int st = 0;
	printf("waitpid: %d\n", waitpid(c, &st, 0) == c);
	printf("exited 7: %d %d\n", WIFEXITED(st), WEXITSTATUS(st));
	printf("wait again: %s\n", waitpid(c, &st, 0) < 0 ? errname(errno) : "ok");

	int p[2];
	pipe(p);
	c = fork();
	if (c == 0) {
		close(p[0]);
		const char *msg = "through a pipe";
		write(p[1], msg, strlen(msg));
		_exit(0);
	}
	close(p[1]);
	char buf[64] = {0};
	int n = 0, r;
	while ((r = read(p[0], buf + n, sizeof buf - 1 - n)) > 0) n += r;
	printf("read %d: %s (EOF after the child)\n", n, buf);
	waitpid(c, NULL, 0);

	c = fork();
	if (c == 0) {
		char *argv[] = { "/bin/echo", "exec'd", "echo", NULL };
		execv(argv[0], argv);
		_exit(99);
	}
	waitpid(c, &st, 0);
	printf("exec child status: %d\n", WEXITSTATUS(st));

	c = fork();
	if (c == 0) {
		usleep(100000);
		_exit(3);
	}
	printf("WNOHANG while running: %d\n", waitpid(c, &st, WNOHANG));
	waitpid(c, &st, 0);
	printf("then: %d\n", WEXITSTATUS(st));

	c = vfork();
	if (c == 0) _exit(5);
	waitpid(c, &st, 0);
	printf("vfork child: %d\n", WEXITSTATUS(st));

	c = fork();
	if (c == 0) {
		raise(SIGTERM);
		_exit(0);
	}
	waitpid(c, &st, 0);
	printf("killed by signal: %d sig %d\n", WIFSIGNALED(st), WTERMSIG(st));

	c = fork();
	if (c == 0) {
		printf("setpgid in child: %d, own group: %d\n", setpgid(0, 0), getpgid(0) == getpid());
		_exit(0);
	}
	waitpid(c, NULL, 0);

	int ok = 0;
	for (int i = 0; i < 100; i++) {
		c = fork();
		if (c == 0) _exit(i & 0xff);
		if (waitpid(c, &st, 0) == c && WEXITSTATUS(st) == (i & 0xff)) ok++;
	}
	printf("100 forks: %d ok\n", ok);
	printf("no children left: %s\n", wait(NULL) < 0 ? errname(errno) : "some");

	pthread_t t[8];
	for (int i = 0; i < 8; i++) pthread_create(&t[i], NULL, worker, (void *)(long)i);
	long sum = 0;
	for (int i = 0; i < 8; i++) {
		void *ret;
		pthread_join(t[i], &ret);
		sum += (long)ret;
	}
	printf("threads: counter %ld, ids %ld\n", counter, sum);
	return 0;
}
