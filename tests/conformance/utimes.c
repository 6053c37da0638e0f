/* utime, utimes and futimesat (the older interfaces to utimensat), as raw calls so
 * that glibc and musl take the same path. In a fresh /tmp/utimes-XXXXXX. */
#include "conf.h"
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <utime.h>

static int recent(time_t t)
{
	time_t now = time(NULL);
	return t >= now - 60 && t <= now + 5;
}

static void show(const char *label, const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		printf("%s: stat failed %s\n", label, errname(errno));
		return;
	}
	printf("%s: atime=%lld.%09ld mtime=%lld.%09ld\n", label, (long long)st.st_atime,
	       st.st_atim.tv_nsec, (long long)st.st_mtime, st.st_mtim.tv_nsec);
}

static void show_recent(const char *label, const char *path)
{
	struct stat st;
	stat(path, &st);
	printf("%s: atime recent %s, mtime recent %s\n", label, recent(st.st_atime) ? "yes" : "no",
	       recent(st.st_mtime) ? "yes" : "no");
}

int main(void)
{
	char dir[] = "/tmp/utimes-XXXXXX";
	if (!mkdtemp(dir) || chdir(dir) != 0) {
		printf("no temp dir\n");
		return 1;
	}
	close(open("f", O_CREAT | O_WRONLY, 0644));

	/* utime: whole seconds. */
	struct utimbuf ub = {.actime = 1000000000, .modtime = 1200000000};
	ERRCALL("utime", syscall(SYS_utime, "f", &ub));
	show("after utime", "f");
	ERRCALL("utime NULL", syscall(SYS_utime, "f", NULL));
	show_recent("after utime NULL", "f");
	ERRCALL("utime missing", syscall(SYS_utime, "nope", &ub));
	ERRCALL("utime bad buf", syscall(SYS_utime, "f", (void *)8));
	ERRCALL("utime bad path", syscall(SYS_utime, (void *)8, &ub));
	ERRCALL("utime NULL path", syscall(SYS_utime, NULL, &ub));

	/* utimes: microseconds. */
	struct timeval tv[2] = {{1100000000, 123456}, {1300000000, 999999}};
	ERRCALL("utimes", syscall(SYS_utimes, "f", tv));
	show("after utimes", "f");
	struct timeval badv[2] = {{1, 1000000}, {1, 0}};
	ERRCALL("utimes usec 1e6", syscall(SYS_utimes, "f", badv));
	badv[0].tv_usec = -1;
	ERRCALL("utimes usec -1", syscall(SYS_utimes, "f", badv));
	show("unchanged", "f");
	ERRCALL("utimes NULL", syscall(SYS_utimes, "f", NULL));
	show_recent("after utimes NULL", "f");
	ERRCALL("utimes bad tv", syscall(SYS_utimes, "f", (void *)8));
	ERRCALL("utimes NULL path", syscall(SYS_utimes, NULL, tv));
	/* Through a symlink: the target changes. */
	symlink("f", "l");
	tv[1].tv_sec = 1400000000;
	ERRCALL("utimes via symlink", syscall(SYS_utimes, "l", tv));
	show("target after symlink", "f");

	/* futimesat: relative to a directory descriptor, or the descriptor itself. */
	mkdir("d", 0755);
	close(open("d/g", O_CREAT | O_WRONLY, 0644));
	int dfd = open("d", O_RDONLY | O_DIRECTORY);
	tv[0] = (struct timeval){1500000000, 5};
	tv[1] = (struct timeval){1600000000, 6};
	ERRCALL("futimesat dirfd", syscall(SYS_futimesat, dfd, "g", tv));
	show("d/g", "d/g");
	ERRCALL("futimesat AT_FDCWD", syscall(SYS_futimesat, AT_FDCWD, "f", tv));
	show("f", "f");
	int gfd = open("d/g", O_RDONLY);
	tv[1].tv_sec = 1650000000;
	ERRCALL("futimesat fd, NULL path", syscall(SYS_futimesat, gfd, NULL, tv));
	show("d/g by fd", "d/g");
	ERRCALL("futimesat AT_FDCWD, NULL path", syscall(SYS_futimesat, AT_FDCWD, NULL, tv));
	ERRCALL("futimesat bad fd", syscall(SYS_futimesat, 999, "g", tv));
	ERRCALL("futimesat file as dir", syscall(SYS_futimesat, gfd, "x", tv));
	ERRCALL("futimesat absolute", syscall(SYS_futimesat, 999, "/nonexistent-utimes", tv));

	/* Permissions: another user may set "now" only with write access, explicit times
	 * never. */
	chmod(".", 0755);
	chmod("f", 0666);
	close(open("ro", O_CREAT | O_WRONLY, 0644));
	fflush(stdout);
	pid_t p = fork();
	if (p == 0) {
		if (geteuid() == 0 && (setgid(65534) || setuid(65534)))
			_exit(3);
		if (geteuid() == 0)
			_exit(0);
		ERRCALL("other: utimes NULL, writable", syscall(SYS_utimes, "f", NULL));
		ERRCALL("other: utimes explicit", syscall(SYS_utimes, "f", tv));
		ERRCALL("other: utime NULL, read-only", syscall(SYS_utime, "ro", NULL));
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(p, &st, 0);
	printf("child: %s\n", wait_status(st));

	unlink("d/g");
	rmdir("d");
	unlink("l");
	unlink("f");
	unlink("ro");
	close(dfd);
	close(gfd);
	chdir("/");
	ERRCALL("rmdir", rmdir(dir));
	return 0;
}
