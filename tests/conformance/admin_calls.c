/* System administration calls (issue 14 item 9): sethostname and setdomainname in a UTS
 * namespace of the test's own (natively a new one from unshare; the sandbox's is its own
 * already, and unshare is ENOSYS there), shown by uname and /proc/sys/kernel; refused to
 * an unprivileged caller. The clock is never set: only argument errors, reads, and the
 * refusals an unprivileged caller gets are checked (a root caller would set the host's
 * clock natively). posix_fadvise and readahead argument checks.
 *
 * Works in a fresh /tmp/fsconf-XXXXXX. */
#define CONF_FS
#include "conf.h"
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <sys/utsname.h>
#include <time.h>

static void read_line(const char *path, char *out, size_t n)
{
	out[0] = 0;
	FILE *f = fopen(path, "r");
	if (f) {
		if (!fgets(out, (int)n, f))
			out[0] = 0;
		fclose(f);
	}
	out[strcspn(out, "\n")] = 0;
}

static void uts(void)
{
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		if (unshare(CLONE_NEWUTS) != 0 && errno != ENOSYS) {
			printf("uts: no namespace of our own (%s)\n", errname(errno));
			_exit(0);
		}
		struct utsname u;
		char buf[128];
		CHECK("sethostname", sethostname("conf-host", 9) == 0);
		uname(&u);
		printf("uname nodename: %s\n", u.nodename);
		read_line("/proc/sys/kernel/hostname", buf, sizeof buf);
		printf("/proc/sys/kernel/hostname: %s\n", buf);
		gethostname(buf, sizeof buf);
		printf("gethostname: %s\n", buf);
		char big[80];
		memset(big, 'x', sizeof big);
		ERRCALL("sethostname 65 bytes", sethostname(big, 65));
		ERRCALL("sethostname 64 bytes", sethostname(big, 64));
		ERRCALL("sethostname -1", syscall(SYS_sethostname, big, -1L));
		ERRCALL("sethostname NULL", syscall(SYS_sethostname, 0L, 5L));
		uname(&u);
		printf("nodename length after 64: %zu\n", strlen(u.nodename));
		CHECK("setdomainname", setdomainname("conf.example", 12) == 0);
		uname(&u);
		printf("uname domainname: %s\n", u.domainname);
		read_line("/proc/sys/kernel/domainname", buf, sizeof buf);
		printf("/proc/sys/kernel/domainname: %s\n", buf);
		ERRCALL("setdomainname 65 bytes", setdomainname(big, 65));
		fflush(stdout);
		pid_t g = fork();
		if (g == 0) {
			if (setgid(65534) || setuid(65534))
				_exit(9);
			ERRCALL("unprivileged sethostname", sethostname("x", 1));
			ERRCALL("unprivileged setdomainname", setdomainname("x", 1));
			uname(&u);
			printf("child sees nodename: %s\n", u.nodename);
			fflush(stdout);
			_exit(0);
		}
		int s;
		waitpid(g, &s, 0);
		_exit(0);
	}
	int s;
	waitpid(c, &s, 0);
	printf("uts child: %s\n", wait_status(s));
}

static void clocks(void)
{
	struct timeval bad = {1, 2000000};
	ERRCALL("settimeofday bad usec", settimeofday(&bad, NULL));
	struct timeval neg = {-1, 0};
	ERRCALL("settimeofday negative", settimeofday(&neg, NULL));
	struct timespec ts = {1, 0};
	ERRCALL("clock_settime MONOTONIC", clock_settime(CLOCK_MONOTONIC, &ts));
	ERRCALL("clock_settime BOOTTIME", clock_settime(CLOCK_BOOTTIME, &ts));
	ERRCALL("clock_settime bad clock", clock_settime(12345, &ts));
	struct timespec badts = {1, 2000000000};
	ERRCALL("clock_settime bad nsec", clock_settime(CLOCK_REALTIME, &badts));
	struct timex tx = {0};
	int st = adjtimex(&tx);
	printf("adjtimex read: %s\n", st >= 0 && st <= 5 ? "a clock state" : errname(errno));
	memset(&tx, 0, sizeof tx);
	st = clock_adjtime(CLOCK_REALTIME, &tx);
	printf("clock_adjtime REALTIME read: %s\n", st >= 0 && st <= 5 ? "a clock state" : errname(errno));
	ERRCALL("clock_adjtime MONOTONIC", clock_adjtime(CLOCK_MONOTONIC, &tx));
	ERRCALL("adjtimex NULL", syscall(SYS_adjtimex, 0L));
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(9);
		struct timeval now;
		gettimeofday(&now, NULL);
		ERRCALL("unprivileged settimeofday", settimeofday(&now, NULL));
		struct timespec t2;
		clock_gettime(CLOCK_REALTIME, &t2);
		ERRCALL("unprivileged clock_settime", clock_settime(CLOCK_REALTIME, &t2));
		struct timex t3 = {0};
		t3.modes = ADJ_FREQUENCY;
		ERRCALL("unprivileged adjtimex set", adjtimex(&t3));
		ERRCALL("unprivileged settimeofday NULL NULL", syscall(SYS_settimeofday, 0L, 0L));
		fflush(stdout);
		_exit(0);
	}
	int s;
	waitpid(c, &s, 0);
	printf("clock child: %s\n", wait_status(s));
}

static void advice(void)
{
	int fd = open("f", O_CREAT | O_RDWR, 0644);
	write(fd, "data", 4);
	printf("fadvise NORMAL: %s\n", errname(posix_fadvise(fd, 0, 0, POSIX_FADV_NORMAL)));
	printf("fadvise SEQUENTIAL: %s\n", errname(posix_fadvise(fd, 0, 100, POSIX_FADV_SEQUENTIAL)));
	printf("fadvise WILLNEED: %s\n", errname(posix_fadvise(fd, 0, 4, POSIX_FADV_WILLNEED)));
	printf("fadvise DONTNEED: %s\n", errname(posix_fadvise(fd, 0, 4, POSIX_FADV_DONTNEED)));
	printf("fadvise bad advice: %s\n", errname(posix_fadvise(fd, 0, 4, 77)));
	printf("fadvise negative len: %s\n", errname(posix_fadvise(fd, 0, -1, POSIX_FADV_NORMAL)));
	printf("fadvise bad fd: %s\n", errname(posix_fadvise(999, 0, 4, POSIX_FADV_NORMAL)));
	int p[2];
	pipe(p);
	printf("fadvise pipe: %s\n", errname(posix_fadvise(p[0], 0, 4, POSIX_FADV_NORMAL)));
	ERRCALL("readahead file", readahead(fd, 0, 4096));
	ERRCALL("readahead pipe", readahead(p[0], 0, 4096));
	ERRCALL("readahead bad fd", readahead(999, 0, 4096));
	int w = open("f", O_WRONLY);
	ERRCALL("readahead write-only", readahead(w, 0, 4096));
	int d = open(".", O_RDONLY | O_DIRECTORY);
	ERRCALL("readahead directory", readahead(d, 0, 4096));
	close(d);
	close(w);
	close(p[0]);
	close(p[1]);
	close(fd);
	unlink("f");
}

int main(void)
{
	fs_enter();
	uts();
	clocks();
	advice();
	fs_leave();
	return 0;
}
