/* RLIMIT_STACK sizes the main thread's stack of the next program: a child sets a limit,
 * execs this program again, and recurses through a given depth of stack. Past the
 * limit it dies of SIGSEGV; the core-dump flag stays clear with RLIMIT_CORE at 0. */
#include "conf.h"
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define MiB (1024UL * 1024)

/* Child mode: `rlimit_stack recurse MIB` touches about MIB MiB of stack. */
static int recurse(const char *mib)
{
	long frames = atol(mib) * (long)(MiB / 4096);
	uint64_t h = conf_deep_stack(frames, 1);
	printf("  survived%s\n", h == 42 ? " (42)" : "");
	return 0;
}

static void run(const char *label, rlim_t limit, const char *mib)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0) {
		printf("readlink: FAIL %s\n", errname(errno));
		return;
	}
	self[n] = 0;
	printf("%s:\n", label);
	pid_t p = fork();
	if (p == 0) {
		struct rlimit r;
		getrlimit(RLIMIT_STACK, &r);
		r.rlim_cur = limit;
		if (r.rlim_max != RLIM_INFINITY && r.rlim_max < limit)
			r.rlim_max = limit;
		if (setrlimit(RLIMIT_STACK, &r) != 0)
			_exit(97);
		char *argv[] = { "rlimit_stack", "recurse", (char *)mib, NULL };
		execv(self, argv);
		_exit(96);
	}
	int st = 0;
	waitpid(p, &st, 0);
	if (WIFSIGNALED(st))
		printf("  killed by %s, core dumped %d\n",
		       WTERMSIG(st) == SIGSEGV ? "SIGSEGV" : "another signal", !!WCOREDUMP(st));
	else
		printf("  exit %d\n", WEXITSTATUS(st));
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "recurse"))
		return recurse(argv[2]);
	struct rlimit core = { 0, 0 };
	CHECK("setrlimit(RLIMIT_CORE, 0)", setrlimit(RLIMIT_CORE, &core) == 0);
	run("1 MiB limit, 2 MiB deep", 1 * MiB, "2");
	run("32 MiB limit, 24 MiB deep", 32 * MiB, "24");
	run("unlimited, 24 MiB deep", RLIM_INFINITY, "24");
	run("16 MiB limit, 40 MiB deep", 16 * MiB, "40");
	return 0;
}
