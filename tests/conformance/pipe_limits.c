/* Limits as Linux applies them (issue 14 item 5): F_SETPIPE_SZ's rounding, pipe-max-size for
 * callers without CAP_SYS_RESOURCE, EINVAL/EBUSY/EBADF; RLIMIT_NOFILE against fs.nr_open;
 * the lowest free descriptor with thousands open, and EMFILE at the limit.
 *
 * Whether root has CAP_SYS_RESOURCE depends on where the test runs (a container may drop it),
 * so the answers that depend on it are checked in a child that gave up root. */
#include "conf.h"
#include <fcntl.h>
#include <sys/resource.h>

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;
	if (!f || fscanf(f, "%ld", &v) != 1)
		v = -1;
	if (f)
		fclose(f);
	return v;
}

static void setsz(const char *label, int fd, long size)
{
	errno = 0;
	int r = fcntl(fd, F_SETPIPE_SZ, size);
	if (r < 0)
		printf("%s: -1 errno=%s\n", label, errname(errno));
	else
		printf("%s: %d (get %d)\n", label, r, fcntl(fd, F_GETPIPE_SZ));
}

static void pipe_sizes(int privileged)
{
	int p[2];
	pipe(p);
	printf("default: %d\n", fcntl(p[0], F_GETPIPE_SZ));
	setsz("0", p[1], 0);
	setsz("1", p[1], 1);
	setsz("4097", p[0], 4097);
	setsz("100000", p[1], 100000);
	setsz("1 MiB", p[1], 1 << 20);
	setsz("-1", p[1], -1);
	setsz("2 GiB + 1", p[1], (1L << 31) + 1);
	setsz("4 GiB + 8192 (an unsigned int: 8192)", p[1], (1L << 32) + 8192);
	if (!privileged) {
		setsz("1 MiB + 1 unprivileged", p[1], (1 << 20) + 1);
		setsz("1 GiB unprivileged", p[1], 1L << 30);
		setsz("2 GiB unprivileged", p[1], 1L << 31);
	}
	static char buf[70000];
	setsz("128 KiB", p[1], 128 << 10);
	CHECK("fill 70000", write(p[1], buf, sizeof buf) == sizeof buf);
	setsz("shrink below the contents", p[1], 4096);
	setsz("shrink to 96 KiB (rounds to 128)", p[1], 96 << 10);
	close(p[0]);
	close(p[1]);
	int fd = open("/proc/self/exe", O_RDONLY);
	setsz("on a regular file", fd, 4096);
	ERRCALL("F_GETPIPE_SZ on a regular file", fcntl(fd, F_GETPIPE_SZ));
	close(fd);
}

static void nofile(void)
{
	long nr_open = read_long("/proc/sys/fs/nr_open");
	printf("nr_open: %ld\n", nr_open);
	struct rlimit old, rl;
	getrlimit(RLIMIT_NOFILE, &old);
	rl.rlim_cur = rl.rlim_max = nr_open + 1;
	ERRCALL("RLIMIT_NOFILE past nr_open", setrlimit(RLIMIT_NOFILE, &rl));
	rl.rlim_cur = old.rlim_max;
	rl.rlim_max = nr_open + 1;
	ERRCALL("RLIMIT_NOFILE hard past nr_open", setrlimit(RLIMIT_NOFILE, &rl));
	rl.rlim_cur = old.rlim_max + 1;
	rl.rlim_max = old.rlim_max;
	ERRCALL("soft above hard", setrlimit(RLIMIT_NOFILE, &rl));

	/* Thousands of descriptors: the lowest free one is found, also above a minimum. */
	rl.rlim_cur = rl.rlim_max = old.rlim_max < 20000 ? old.rlim_max : 20000;
	setrlimit(RLIMIT_NOFILE, &rl);
	int first = -1, last = -1, n = 0;
	for (int i = 0; i < 4000; i++) {
		int p[2];
		if (pipe(p) != 0)
			break;
		if (first < 0)
			first = p[0];
		last = p[1];
		n++;
	}
	printf("pipes: %d, descriptors in order: %d\n", n, last - first + 1 == 2 * n);
	close(first + 1000);
	close(first + 3000);
	int d = dup(0);
	printf("dup takes the lowest hole: %d\n", d == first + 1000);
	d = fcntl(0, F_DUPFD, first + 2000);
	printf("F_DUPFD above 2000 takes the next hole: %d\n", d == first + 3000);
	d = fcntl(0, F_DUPFD, last + 10);
	printf("F_DUPFD past the end: %d\n", d == last + 10);
	d = dup(0);
	printf("then dup: %d\n", d == last + 1);
	rl.rlim_cur = last + 2;
	setrlimit(RLIMIT_NOFILE, &rl);
	ERRCALL("dup at the soft limit", dup(0));
	ERRCALL("pipe at the soft limit", pipe((int[2]){0, 0}));
	ERRCALL("F_DUPFD at the limit", fcntl(0, F_DUPFD, last + 2));
	for (int fd = first; fd <= last + 10; fd++)
		close(fd);
	setrlimit(RLIMIT_NOFILE, &old);
}

int main(void)
{
	/* A known table: 0, 1 and 2 only, whatever the runner left open. */
	for (int fd = 3; fd < 1024; fd++)
		close(fd);
	printf("pipe-max-size: %ld\n", read_long("/proc/sys/fs/pipe-max-size"));
	pipe_sizes(1);
	nofile();
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(9);
		printf("-- unprivileged\n");
		pipe_sizes(0);
		struct rlimit old, rl;
		getrlimit(RLIMIT_NOFILE, &old);
		rl.rlim_cur = old.rlim_cur;
		rl.rlim_max = old.rlim_max + 1;
		ERRCALL("raise hard RLIMIT_NOFILE unprivileged", setrlimit(RLIMIT_NOFILE, &rl));
		fflush(stdout);
		_exit(0);
	}
	int s;
	waitpid(c, &s, 0);
	printf("child: %s\n", wait_status(s));
	return 0;
}
