/* fcntl record locks: F_GETLK/F_SETLK/F_SETLKW and the OFD variants. One
 * process, so conflicts are seen between open file descriptions: OFD locks of
 * different descriptions conflict, and OFD locks conflict with the process's
 * POSIX locks; POSIX locks of one process never conflict with each other and
 * all go when the process closes any descriptor of the file. Ranges (whence,
 * negative lengths, to-EOF), splitting and merging as F_GETLK reports them,
 * and the errors. Works in a fresh /tmp/fsconf-XXXXXX. */
#define CONF_FS
#include "conf.h"
#include <limits.h>

#ifndef F_OFD_GETLK
#define F_OFD_GETLK 36
#define F_OFD_SETLK 37
#define F_OFD_SETLKW 38
#endif

static const char *tname(int t)
{
	switch (t) {
	case F_RDLCK: return "RD";
	case F_WRLCK: return "WR";
	case F_UNLCK: return "UN";
	default: return "?";
	}
}

static const char *cname(int cmd)
{
	switch (cmd) {
	case F_GETLK: return "GETLK";
	case F_SETLK: return "SETLK";
	case F_SETLKW: return "SETLKW";
	case F_OFD_GETLK: return "OFD_GETLK";
	case F_OFD_SETLK: return "OFD_SETLK";
	case F_OFD_SETLKW: return "OFD_SETLKW";
	default: return "?";
	}
}

/* The raw system call: both libcs pass struct flock through unchanged on
 * x86-64, but this keeps any wrapper logic out of the picture. */
static long lk(int fd, int cmd, struct flock *fl)
{
	return syscall(SYS_fcntl, fd, cmd, fl);
}

/* Prints what a lock command did; for the GETLK forms, the struct after. */
static void run(const char *label, int fd, int cmd, int type, int whence, long long start,
		long long len, int pid)
{
	struct flock fl;
	memset(&fl, 0, sizeof fl);
	fl.l_type = type;
	fl.l_whence = whence;
	fl.l_start = start;
	fl.l_len = len;
	fl.l_pid = pid;
	errno = 0;
	long r = lk(fd, cmd, &fl);
	int e = errno;
	printf("%s: %s %s", label, cname(cmd), tname(type));
	if (r != 0) {
		printf(" -> -1 errno=%s\n", errname(e));
		return;
	}
	if (cmd != F_GETLK && cmd != F_OFD_GETLK) {
		printf(" -> 0\n");
		return;
	}
	const char *who = fl.l_pid == getpid() ? "self" : fl.l_pid == -1 ? "-1" : fl.l_pid == pid ? "unchanged" : "other";
	printf(" -> type=%s whence=%d start=%lld len=%lld pid=%s\n", tname(fl.l_type), fl.l_whence,
	       (long long)fl.l_start, (long long)fl.l_len, who);
}

#define GET(label, fd, type, start, len) run(label, fd, F_GETLK, type, SEEK_SET, start, len, 0)
#define OGET(label, fd, type, start, len) run(label, fd, F_OFD_GETLK, type, SEEK_SET, start, len, 0)
#define SET(label, fd, type, start, len) run(label, fd, F_SETLK, type, SEEK_SET, start, len, 0)
#define OSET(label, fd, type, start, len) run(label, fd, F_OFD_SETLK, type, SEEK_SET, start, len, 0)

static int open_f(int flags)
{
	int fd = open("f", flags | O_CLOEXEC);
	if (fd < 0)
		printf("open f: FAIL errno=%s\n", errname(errno));
	return fd;
}

static void basics(void)
{
	char data[100];
	memset(data, 'x', sizeof data);
	int fd1 = open("f", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	write(fd1, data, sizeof data);
	int fd2 = open_f(O_RDWR);

	printf("-- unlocked file\n");
	run("getlk keeps the fields", fd1, F_GETLK, F_WRLCK, SEEK_CUR, 7, 3, 1234);
	OGET("ofd getlk", fd2, F_WRLCK, 0, 0);

	printf("-- a POSIX lock seen from another description\n");
	SET("posix lock [0,10)", fd1, F_WRLCK, 0, 10);
	GET("own process: no conflict", fd2, F_WRLCK, 0, 0);
	OGET("ofd sees the posix lock", fd2, F_RDLCK, 5, 1);
	OSET("ofd read lock over it", fd2, F_RDLCK, 5, 0);
	OSET("ofd lock [10,20) next to it", fd2, F_WRLCK, 10, 10);
	GET("posix sees the ofd lock", fd1, F_RDLCK, 0, 0);
	SET("posix lock over the ofd lock", fd1, F_WRLCK, 15, 1);
	SET("posix lock again via fd2", fd2, F_WRLCK, 0, 10);

	printf("-- splitting and merging\n");
	SET("unlock [3,5)", fd1, F_UNLCK, 3, 2);
	OGET("first piece", fd2, F_WRLCK, 0, 0);
	OGET("the hole", fd2, F_WRLCK, 3, 2);
	OGET("second piece", fd2, F_WRLCK, 4, 0);
	SET("relock [3,5)", fd1, F_WRLCK, 3, 2);
	OGET("merged again", fd2, F_WRLCK, 0, 1);
	SET("read lock [2,4) inside", fd1, F_RDLCK, 2, 2);
	OGET("write piece before", fd2, F_RDLCK, 0, 0);
	OGET("reader vs read piece", fd2, F_RDLCK, 2, 2);
	OGET("writer vs read piece", fd2, F_WRLCK, 2, 1);
	OGET("write piece after", fd2, F_RDLCK, 4, 0);
	SET("write lock over all", fd1, F_WRLCK, 0, 10);
	OGET("one lock again", fd2, F_RDLCK, 0, 0);
	SET("adjacent read lock [10,12)", fd1, F_RDLCK, 200, 2);
	SET("adjacent read lock [12,14)", fd1, F_RDLCK, 202, 2);
	OGET("merged read locks", fd2, F_WRLCK, 201, 1);
	SET("unlock everything", fd1, F_UNLCK, 0, 0);
	OGET("nothing left", fd2, F_WRLCK, 0, 0);

	printf("-- ranges\n");
	OSET("to EOF from 50", fd2, F_WRLCK, 50, 0);
	GET("far past EOF", fd1, F_WRLCK, 1000000, 1);
	OSET("unlock all", fd2, F_UNLCK, 0, 0);
	OSET("negative length: [20,30)", fd2, F_WRLCK, 30, -10);
	GET("reported forwards", fd1, F_WRLCK, 0, 0);
	lseek(fd2, 40, SEEK_SET);
	run("SEEK_CUR 40+5 len 5", fd2, F_OFD_SETLK, F_RDLCK, SEEK_CUR, 5, 5, 0);
	lseek(fd1, 45, SEEK_SET);
	run("probe SEEK_CUR 45", fd1, F_GETLK, F_WRLCK, SEEK_CUR, 0, 1, 0);
	run("SEEK_END -10 len 5", fd2, F_OFD_SETLK, F_WRLCK, SEEK_END, -10, 5, 0);
	run("probe SEEK_END -20 to EOF", fd1, F_GETLK, F_WRLCK, SEEK_END, -20, 0, 0);
	run("probe SEEK_END -1 len -5", fd1, F_GETLK, F_RDLCK, SEEK_END, -1, -5, 0);
	OGET("ofd F_UNLCK probe: own locks", fd2, F_UNLCK, 0, 0);
	OGET("ofd F_UNLCK probe: none here", fd2, F_UNLCK, 60, 10);
	OGET("ofd F_UNLCK probe from fd1", fd1, F_UNLCK, 0, 0);
	OSET("last byte", fd2, F_WRLCK, LLONG_MAX, 1);
	GET("probe the last byte", fd1, F_RDLCK, LLONG_MAX - 1, 2);
	OSET("unlock all", fd2, F_UNLCK, 0, 0);

	printf("-- errors\n");
	SET("bad type", fd1, 7, 0, 0);
	GET("getlk with F_UNLCK", fd1, F_UNLCK, 0, 0);
	OGET("ofd getlk bad type", fd1, 7, 0, 0);
	run("bad whence", fd1, F_SETLK, F_WRLCK, 7, 0, 0, 0);
	run("bad whence getlk", fd1, F_GETLK, F_WRLCK, 3, 0, 0, 0);
	SET("negative start", fd1, F_WRLCK, -1, 1);
	SET("negative length below 0", fd1, F_WRLCK, 5, -6);
	SET("start at 0 with negative length", fd1, F_WRLCK, 0, -1);
	SET("length past the end", fd1, F_WRLCK, LLONG_MAX, 2);
	SET("start + length just fits", fd1, F_WRLCK, 1, LLONG_MAX);
	SET("start + length overflows", fd1, F_WRLCK, 2, LLONG_MAX);
	SET("unlock", fd1, F_UNLCK, 0, 0);
	run("SEEK_END + LLONG_MAX", fd1, F_SETLK, F_WRLCK, SEEK_END, LLONG_MAX, 1, 0);
	run("SEEK_CUR + LLONG_MAX", fd1, F_SETLK, F_WRLCK, SEEK_CUR, LLONG_MAX, 1, 0);
	run("SEEK_CUR - 46", fd1, F_SETLK, F_WRLCK, SEEK_CUR, -46, 1, 0);
	run("bad type and overflow", fd1, F_SETLK, 9, SEEK_CUR, LLONG_MAX, 1, 0);
	run("ofd setlk with l_pid", fd1, F_OFD_SETLK, F_WRLCK, SEEK_SET, 0, 1, 42);
	run("ofd getlk with l_pid", fd1, F_OFD_GETLK, F_WRLCK, SEEK_SET, 0, 1, 42);
	run("posix setlk ignores l_pid", fd1, F_SETLK, F_UNLCK, SEEK_SET, 0, 1, 42);
	GET("bad fd", 9999, F_WRLCK, 0, 0);
	SET("negative fd", -1, F_WRLCK, 0, 0);
	ERRCALL("NULL struct", lk(fd1, F_SETLK, NULL));
	ERRCALL("NULL struct getlk", lk(fd1, F_GETLK, NULL));
	ERRCALL("NULL struct ofd", lk(fd1, F_OFD_SETLK, NULL));

	int rd = open_f(O_RDONLY), wr = open_f(O_WRONLY), path = open_f(O_PATH);
	SET("write lock on O_RDONLY", rd, F_WRLCK, 0, 0);
	SET("read lock on O_RDONLY", rd, F_RDLCK, 0, 0);
	SET("read lock on O_WRONLY", wr, F_RDLCK, 0, 0);
	SET("write lock on O_WRONLY", wr, F_WRLCK, 0, 0);
	SET("unlock on O_RDONLY", rd, F_UNLCK, 0, 0);
	OSET("ofd write lock on O_RDONLY", rd, F_WRLCK, 0, 0);
	GET("getlk write on O_RDONLY", rd, F_WRLCK, 0, 0);
	SET("lock on O_PATH", path, F_RDLCK, 0, 0);
	GET("getlk on O_PATH", path, F_RDLCK, 0, 0);
	ERRCALL("NULL struct on O_PATH", lk(path, F_GETLK, NULL));
	SET("unlock on O_WRONLY", wr, F_UNLCK, 0, 0);
	close(rd);
	close(wr);
	close(path);

	printf("-- blocking forms without a conflict\n");
	run("setlkw", fd1, F_SETLKW, F_WRLCK, SEEK_SET, 0, 10, 0);
	run("ofd setlkw elsewhere", fd2, F_OFD_SETLKW, F_WRLCK, SEEK_SET, 10, 10, 0);
	run("ofd setlkw unlock", fd2, F_OFD_SETLKW, F_UNLCK, SEEK_SET, 0, 0, 0);
	run("setlkw unlock", fd1, F_SETLKW, F_UNLCK, SEEK_SET, 0, 0, 0);
	close(fd1);
	close(fd2);
}

/* POSIX locks go when the process closes any descriptor of the file; OFD
 * locks when their description's last descriptor goes. */
static void release_rules(void)
{
	int fd1 = open_f(O_RDWR), probe = open_f(O_RDWR);

	printf("-- close of another descriptor\n");
	SET("posix lock", fd1, F_WRLCK, 0, 10);
	OGET("held", probe, F_WRLCK, 0, 0);
	int other = open_f(O_RDONLY);
	close(other);
	OGET("gone after closing another fd", probe, F_WRLCK, 0, 0);

	SET("posix lock", fd1, F_WRLCK, 0, 10);
	int g = open("g", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	close(g);
	OGET("closing another file keeps it", probe, F_WRLCK, 0, 0);

	printf("-- dup2 over a descriptor of the file\n");
	int victim = open_f(O_RDONLY);
	int h = open("g", O_RDONLY | O_CLOEXEC);
	dup2(h, victim);
	OGET("gone after dup2 replaced an fd", probe, F_WRLCK, 0, 0);
	close(victim);
	close(h);

	printf("-- close_range\n");
	int r = open_f(O_RDONLY);
	dup2(r, 900);
	close(r);
	SET("posix lock", fd1, F_WRLCK, 0, 10);
	OGET("held", probe, F_WRLCK, 0, 0);
	ERRCALL("close_range 900..900", syscall(436, 900, 900, 0));
	OGET("gone after close_range", probe, F_WRLCK, 0, 0);

	printf("-- OFD locks and descriptors\n");
	int o = open_f(O_RDWR);
	OSET("ofd lock", o, F_WRLCK, 0, 10);
	int d = dup(o);
	close(o);
	GET("kept while a dup is open", fd1, F_WRLCK, 0, 0);
	int other2 = open_f(O_RDONLY);
	close(other2);
	GET("closing another description keeps it", fd1, F_WRLCK, 0, 0);
	SET("posix lock over it", fd1, F_WRLCK, 5, 1);
	close(d);
	GET("gone with the last descriptor", fd1, F_WRLCK, 0, 0);
	SET("posix lock now", fd1, F_WRLCK, 5, 1);
	OSET("ofd lock via probe blocked", probe, F_WRLCK, 0, 0);
	close(fd1);
	OSET("free after close", probe, F_WRLCK, 0, 0);

	printf("-- separate files\n");
	OSET("probe unlocks", probe, F_UNLCK, 0, 0);
	int gf = open("g", O_RDWR | O_CLOEXEC);
	OSET("lock all of g", gf, F_WRLCK, 0, 0);
	int f3 = open_f(O_RDWR);
	OSET("f is another file", f3, F_WRLCK, 0, 0);
	int g2 = open("g", O_RDONLY | O_CLOEXEC);
	GET("g's lock seen from g", g2, F_RDLCK, 0, 0);
	close(g2);
	close(f3);
	close(gf);
	close(probe);
}

static void other_files(void)
{
	printf("-- directories and pipes\n");
	int dir = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	SET("read lock on a directory", dir, F_RDLCK, 0, 0);
	SET("write lock on a directory", dir, F_WRLCK, 0, 0);
	int dir2 = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	OSET("ofd read lock, other description", dir2, F_RDLCK, 0, 0);
	close(dir2);
	close(dir);
	printf("-- a file of the host root, opened twice\n");
	int h1 = open("/etc/passwd", O_RDONLY | O_CLOEXEC), h2 = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
	OSET("ofd read lock", h1, F_RDLCK, 0, 0);
	OGET("seen from the other description", h2, F_WRLCK, 0, 0);
	OSET("second read lock shares", h2, F_RDLCK, 0, 0);
	close(h1);
	close(h2);
	int p[2];
	if (pipe(p) == 0) {
		SET("read lock on a pipe's read end", p[0], F_RDLCK, 0, 0);
		SET("write lock on a pipe's write end", p[1], F_WRLCK, 0, 0);
		GET("getlk on the write end", p[1], F_WRLCK, 0, 0);
		close(p[0]);
		close(p[1]);
	}
}

int main(void)
{
	fs_enter();
	basics();
	release_rules();
	other_files();
	fs_leave();
	return 0;
}
