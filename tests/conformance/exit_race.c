/* A process whose main thread calls _exit(3) just as another thread ends by
 * returning (exit(0) of that thread) exits with 3: the last thread out must
 * report exit_group's status, even if it looked before exit_group was called.
 * Thirty rounds, each child stopped and continued once (job control makes the
 * two exits land close together). */
#include "conf.h"
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int p[2];
static volatile int spins;

static void *reader(void *a)
{
	(void)a;
	char c;
	read(p[0], &c, 1);
	return NULL;
}

static void *spinner(void *a)
{
	(void)a;
	for (;;)
		spins++;
	return NULL;
}

int main(void)
{
	int bad = 0;
	for (int i = 0; i < 30; i++) {
		if (pipe(p) != 0)
			return 1;
		pid_t pid = fork();
		if (pid == 0) {
			pthread_t a, b;
			pthread_create(&a, NULL, reader, NULL);
			pthread_create(&b, NULL, spinner, NULL);
			pthread_join(a, NULL);
			_exit(3);
		}
		struct timespec nap = {0, 10000000};
		nanosleep(&nap, NULL);
		int st;
		kill(pid, SIGSTOP);
		waitpid(pid, &st, WUNTRACED);
		write(p[1], "x", 1);
		kill(pid, SIGCONT);
		waitpid(pid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 3)
			bad++;
		close(p[0]);
		close(p[1]);
	}
	printf("rounds with a wrong exit status: %d\n", bad);
	return 0;
}
