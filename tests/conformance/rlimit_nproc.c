/* RLIMIT_NPROC: fork, clone and pthread_create fail with EAGAIN once the caller's real
 * uid has as many tasks (processes and threads, zombies included) as the soft limit;
 * root and callers with an effective uid of 0 (CAP_SYS_ADMIN) are exempt. Runs as root
 * and drops to uids no host process uses: natively every task of the uid counts. */
#include "conf.h"
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define USER 54321
#define OTHER 54322
#define LIMIT 4
#define MAX_KIDS 16

static pid_t kids[MAX_KIDS];
static int nkids;

/* A child that sleeps until killed. -1 (errno set) when fork fails. */
static pid_t sleeper(void)
{
	pid_t p = fork();
	if (p == 0) {
		for (;;)
			pause();
	}
	if (p > 0)
		kids[nkids++] = p;
	return p;
}

static void fork_once(const char *label)
{
	errno = 0;
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	if (p > 0)
		waitpid(p, NULL, 0);
	printf("%s: %s\n", label, p > 0 ? "ok" : errname(errno));
}

static int thread_gate[2];

static void *blocked_thread(void *arg)
{
	char c;
	(void)arg;
	if (read(thread_gate[0], &c, 1) != 1)
		return NULL;
	return NULL;
}

static void limited_user(void)
{
	struct rlimit r = { LIMIT, LIMIT };
	CHECK("setrlimit(RLIMIT_NPROC, 4)", setrlimit(RLIMIT_NPROC, &r) == 0);
	CHECK("setresgid", setresgid(USER, USER, USER) == 0);
	CHECK("setresuid", setresuid(USER, USER, USER) == 0);

	int n = 0;
	errno = 0;
	while (n < MAX_KIDS && sleeper() > 0)
		n++;
	printf("forks before failing: %d (%s)\n", n, errname(errno));

	errno = 0;
	long r2 = syscall(SYS_fork);
	if (r2 == 0)
		_exit(0);
	printf("raw fork at the limit: %s\n", r2 > 0 ? "ok" : errname(errno));
	pthread_t th;
	int rc = pthread_create(&th, NULL, blocked_thread, NULL);
	printf("pthread_create at the limit: %s\n", errname(rc));

	/* A killed child counts until it is reaped. */
	kill(kids[--nkids], SIGKILL);
	siginfo_t si;
	memset(&si, 0, sizeof si);
	CHECK("child is a zombie",
	      waitid(P_PID, kids[nkids], &si, WEXITED | WNOWAIT) == 0 && si.si_pid == kids[nkids]);
	fork_once("fork with a zombie");
	CHECK("reap", waitpid(kids[nkids], NULL, 0) == kids[nkids]);
	fork_once("fork after reaping");

	/* Threads count too. */
	CHECK("pipe", pipe(thread_gate) == 0);
	rc = pthread_create(&th, NULL, blocked_thread, NULL);
	printf("pthread_create below the limit: %s\n", errname(rc));
	pthread_t th2;
	int rc2 = pthread_create(&th2, NULL, blocked_thread, NULL);
	printf("second pthread_create: %s\n", errname(rc2));
	fork_once("fork with the thread");
	if (rc == 0) {
		CHECK("release thread", write(thread_gate[1], "x", 1) == 1);
		pthread_join(th, NULL);
	}
	if (rc2 == 0) {
		CHECK("release thread", write(thread_gate[1], "x", 1) == 1);
		pthread_join(th2, NULL);
	}

	while (nkids > 0) {
		pid_t p = kids[--nkids];
		kill(p, SIGKILL);
		waitpid(p, NULL, 0);
	}
	exit(0);
}

static void privileged_users(void)
{
	struct rlimit r = { 1, 1 };
	CHECK("setrlimit(RLIMIT_NPROC, 1)", setrlimit(RLIMIT_NPROC, &r) == 0);
	fork_once("root fork over the limit");
	CHECK("setresuid(OTHER, 0, 0)", setresuid(OTHER, 0, 0) == 0);
	fork_once("effective root fork over the limit");
	CHECK("setresuid(OTHER, OTHER, OTHER)", setresuid(OTHER, OTHER, OTHER) == 0);
	fork_once("unprivileged fork over the limit");
	exit(0);
}

static void run(const char *label, void (*fn)(void))
{
	pid_t p = fork();
	if (p == 0)
		fn();
	int st = 0;
	waitpid(p, &st, 0);
	printf("%s: exit %d\n", label, WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

int main(void)
{
	run("limited user", limited_user);
	run("privileged users", privileged_users);
	return 0;
}
