/* membarrier(2): QUERY, the registrations (kept by fork, dropped by execve), the EPERM of an
 * unregistered private command, the EINVAL of flags and unknown commands, and the barrier
 * itself: the asymmetric-fence (store-buffering) pattern, where one thread stores and loads
 * with only a compiler barrier and the other stores, calls membarrier, then loads. Without a
 * real barrier on the first thread's CPU, x86's store buffer lets both loads see 0. (A
 * system call is long enough for a store buffer to drain on its own, so in practice this
 * pattern passes even with a no-op in membarrier's place; it is here as the use the call
 * exists for, and would show a barrier that reorders or fails.)
 *
 * QUERY is printed without the RSEQ bits: the sandbox has no rseq (as a kernel built
 * without CONFIG_RSEQ, which leaves them out of QUERY and answers the RSEQ commands with
 * EINVAL), while the host offers them (and answers EPERM, unregistered). Only "refused" is
 * printed for those commands. Every other bit is one a program relies on, and must match. */
#include "conf.h"
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>

#define CMD_QUERY 0
#define CMD_GLOBAL 1
#define CMD_GLOBAL_EXPEDITED 2
#define CMD_REGISTER_GLOBAL_EXPEDITED 4
#define CMD_PRIVATE_EXPEDITED 8
#define CMD_REGISTER_PRIVATE_EXPEDITED 16
#define CMD_PRIVATE_EXPEDITED_SYNC_CORE 32
#define CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE 64
#define CMD_PRIVATE_EXPEDITED_RSEQ 128
#define CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ 256
#define CMD_GET_REGISTRATIONS 512
#define RSEQ_BITS (CMD_PRIVATE_EXPEDITED_RSEQ | CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ)

static long mb(int cmd, unsigned flags)
{
	return syscall(SYS_membarrier, cmd, flags, 0);
}

static void show(const char *what, long r)
{
	if (r < 0)
		printf("%s: %s\n", what, errname(errno));
	else
		printf("%s: %#lx\n", what, r);
}

/* The store-buffering test. */
#define ROUNDS 10000
static volatile int x, y, go, done_a;
static volatile int r1;

static void spin_until(volatile int *v, int want)
{
	for (unsigned n = 0; *v != want; n++)
		if (n % 256 == 255)
			sched_yield();
}

static void *thread_a(void *arg)
{
	(void)arg;
	for (int i = 1; i <= ROUNDS; i++) {
		spin_until(&go, i);
		x = 1;
		__asm__ volatile("" ::: "memory");
		r1 = y;
		done_a = i;
	}
	return NULL;
}

static void store_buffering(void)
{
	pthread_t a;
	pthread_create(&a, NULL, thread_a, NULL);
	int violations = 0, failures = 0;
	for (int i = 1; i <= ROUNDS; i++) {
		x = 0;
		y = 0;
		go = i;
		y = 1;
		if (mb(CMD_PRIVATE_EXPEDITED, 0) != 0)
			failures++;
		int r2 = x;
		spin_until(&done_a, i);
		if (r1 == 0 && r2 == 0)
			violations++;
	}
	pthread_join(a, NULL);
	printf("store buffering: %d rounds, %d failed calls, %d both-zero\n", ROUNDS, failures,
	       violations);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "exec") == 0) {
		show("after execve: registrations", mb(CMD_GET_REGISTRATIONS, 0));
		show("after execve: private expedited", mb(CMD_PRIVATE_EXPEDITED, 0));
		return 0;
	}
	long q = mb(CMD_QUERY, 0);
	show("query without rseq bits", q < 0 ? q : q & ~RSEQ_BITS);
	show("registrations", mb(CMD_GET_REGISTRATIONS, 0));
	show("private expedited unregistered", mb(CMD_PRIVATE_EXPEDITED, 0));
	show("sync core unregistered", mb(CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0));
	show("global", mb(CMD_GLOBAL, 0));
	show("global expedited", mb(CMD_GLOBAL_EXPEDITED, 0));

	/* flags must be 0 for every command; unknown commands and combinations are EINVAL. */
	static const int cmds[] = {CMD_QUERY, CMD_GLOBAL, CMD_PRIVATE_EXPEDITED,
	                           CMD_REGISTER_PRIVATE_EXPEDITED, CMD_GET_REGISTRATIONS};
	for (unsigned i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
		char what[64];
		snprintf(what, sizeof what, "cmd %d flags 1", cmds[i]);
		show(what, mb(cmds[i], 1));
	}
	static const int bad[] = {3, 1024, -1, CMD_GLOBAL | CMD_PRIVATE_EXPEDITED, 1 << 30};
	for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		char what[64];
		snprintf(what, sizeof what, "cmd %#x", bad[i]);
		show(what, mb(bad[i], 0));
	}
	printf("rseq commands: %s %s %s\n",
	       mb(CMD_PRIVATE_EXPEDITED_RSEQ, 0) < 0 ? "refused" : "accepted",
	       mb(CMD_PRIVATE_EXPEDITED_RSEQ, 1) < 0 ? "refused" : "accepted",
	       mb(CMD_PRIVATE_EXPEDITED_RSEQ, 2) < 0 && errno == EINVAL ? "EINVAL" : "other");

	/* Registering: sync-core shows the private registration too but doesn't make the plain
	 * private command usable. */
	show("register sync core", mb(CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE, 0));
	show("registrations", mb(CMD_GET_REGISTRATIONS, 0));
	show("sync core", mb(CMD_PRIVATE_EXPEDITED_SYNC_CORE, 0));
	show("private expedited", mb(CMD_PRIVATE_EXPEDITED, 0));
	show("register global expedited", mb(CMD_REGISTER_GLOBAL_EXPEDITED, 0));
	show("register private expedited", mb(CMD_REGISTER_PRIVATE_EXPEDITED, 0));
	show("register private expedited again", mb(CMD_REGISTER_PRIVATE_EXPEDITED, 0));
	show("registrations", mb(CMD_GET_REGISTRATIONS, 0));
	show("private expedited", mb(CMD_PRIVATE_EXPEDITED, 0));

	/* fork copies the registrations; execve starts a new address space without them. */
	pid_t pid = fork();
	if (pid == 0) {
		show("child: registrations", mb(CMD_GET_REGISTRATIONS, 0));
		show("child: private expedited", mb(CMD_PRIVATE_EXPEDITED, 0));
		fflush(stdout);
		execl("/proc/self/exe", argv[0], "exec", (char *)NULL);
		printf("execl: %s\n", errname(errno));
		_exit(1);
	}
	int status;
	waitpid(pid, &status, 0);
	printf("child status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);

	store_buffering();
	return 0;
}
