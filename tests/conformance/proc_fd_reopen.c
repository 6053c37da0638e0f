/* Opening /proc/self/fd/N again (Linux's fd magic links): a pipe gives a new end of the
 * same pipe with the access mode asked for, without waiting for a partner; a deleted file
 * (a memfd among them) opens as itself with an offset of its own; sockets, eventfd and
 * epoll instances are ENXIO. A link left in a cache must not keep a pipe's end open: a
 * reader sees EOF once every writer has closed. What bash's <(...) and /dev/stdin use. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *link_of(int fd)
{
	static char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	return path;
}

static int reopen(const char *what, int fd, int flags)
{
	int n = open(link_of(fd), flags);
	printf("%s: %s\n", what, n >= 0 ? "opened" : strerror(errno));
	return n;
}

static void close_if(int fd)
{
	if (fd >= 0)
		close(fd);
}

int main(void)
{
	close_if(reopen("eventfd", eventfd(0, 0), O_RDONLY));
	close_if(reopen("epoll", epoll_create1(0), O_RDONLY));
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	close_if(reopen("unix socket", sv[0], O_RDWR));

	/* A pipe: its write end opened for reading reads the pipe. */
	int p[2];
	pipe(p);
	int r = reopen("pipe write end, O_RDONLY", p[1], O_RDONLY);
	write(p[1], "xy", 2);
	char c[3] = { 0 };
	printf("read through the new end: %zd %s\n", read(r, c, 1), c);
	struct stat a, b;
	fstat(r, &a);
	fstat(p[0], &b);
	printf("same pipe: %d, fifo: %d, access mode %d\n", a.st_ino == b.st_ino,
	       S_ISFIFO(a.st_mode), fcntl(r, F_GETFL) & O_ACCMODE);
	/* A new writer through the read end. */
	int w = reopen("pipe read end, O_WRONLY|O_NONBLOCK", p[0], O_WRONLY | O_NONBLOCK);
	write(w, "z", 1);
	printf("read: %zd %.2s\n", read(p[0], c, 2), c);
	/* Every writer closed (the link's too): EOF, not a wait. */
	close(w);
	close(p[1]);
	printf("after the writers closed: %zd\n", read(r, c, 1));
	close(r);
	close(p[0]);

	/* A reader opened through the link while no writer is left: no wait (a pipe is not a
	 * FIFO), and EOF at once. */
	pipe(p);
	close(p[1]);
	r = reopen("pipe without writers, O_RDONLY", p[0], O_RDONLY);
	printf("read: %zd\n", read(r, c, 1));
	close_if(r);
	close(p[0]);

	/* A deleted file opens as itself, with an offset of its own. */
	int f = open("/tmp", O_TMPFILE | O_RDWR, 0600);
	if (f < 0) {
		char name[] = "/tmp/reopenXXXXXX";
		f = mkstemp(name);
		unlink(name);
	}
	write(f, "deleted file", 12);
	int g = reopen("deleted file, O_RDONLY", f, O_RDONLY);
	char buf[16] = { 0 };
	printf("read from 0: %zd %s\n", read(g, buf, sizeof buf - 1), buf);
	fstat(f, &a);
	fstat(g, &b);
	printf("same file: %d, nlink %ld\n", a.st_ino == b.st_ino, (long)b.st_nlink);
	close(g);
	close(f);

	int m = memfd_create("m", 0);
	write(m, "memfd", 5);
	g = reopen("memfd, O_RDWR", m, O_RDWR);
	memset(buf, 0, sizeof buf);
	printf("read: %zd %s\n", read(g, buf, sizeof buf - 1), buf);
	close_if(g);
	close(m);

	/* A process that is not root lists and follows its own descriptors (its /proc/PID/fd
	 * is its own, mode 0500), and a write through /dev/stderr-like links opens the file
	 * rather than creating one named by the link's text. */
	pid_t child = fork();
	if (child == 0) {
		if (setgid(1000) != 0 || setuid(1000) != 0) {
			printf("as uid 1000: not root here\n");
			_exit(0);
		}
		int q[2];
		pipe(q);
		int x = open(link_of(q[1]), O_WRONLY | O_CREAT | O_TRUNC, 0600);
		printf("as uid 1000, O_CREAT through the link: %s\n", x >= 0 ? "opened" : strerror(errno));
		write(x >= 0 ? x : q[1], "u", 1);
		int y = open(link_of(q[0]), O_RDONLY);
		const char *reopened = y >= 0 ? "yes" : strerror(errno);
		char u = 0;
		ssize_t got = read(y >= 0 ? y : q[0], &u, 1);
		printf("as uid 1000, reopened: %s, read %zd %c\n", reopened, got, u);
		fflush(stdout);
		_exit(0);
	}
	waitpid(child, NULL, 0);

	/* A renamed file: the link lands on the file, not on what its old name holds now. */
	char from[] = "/tmp/reopen-from-XXXXXX";
	int h = mkstemp(from);
	write(h, "renamed", 7);
	char to[sizeof from + 8];
	snprintf(to, sizeof to, "%s-moved", from);
	rename(from, to);
	int decoy = open(from, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	write(decoy, "decoy", 5);
	close(decoy);
	g = reopen("renamed file", h, O_RDONLY);
	memset(buf, 0, sizeof buf);
	printf("read: %zd %s\n", read(g, buf, sizeof buf - 1), buf);
	close_if(g);
	unlink(from);
	unlink(to);
	close(h);

	/* Every fd link is a magic link: RESOLVE_NO_MAGICLINKS refuses it (ELOOP), a file
	 * with a path included. */
	struct {
		unsigned long long flags, mode, resolve;
	} how = { O_RDONLY, 0, 0x02 /* RESOLVE_NO_MAGICLINKS */ };
	int plain = open("/etc/hostname", O_RDONLY);
	long o2 = syscall(SYS_openat2, AT_FDCWD, link_of(plain), &how, sizeof how);
	printf("openat2 RESOLVE_NO_MAGICLINKS of a file's link: %s\n", o2 >= 0 ? "opened" : strerror(errno));
	if (o2 >= 0)
		close(o2);
	close(plain);

	/* A directory's link: `..` below it is the directory's real parent. */
	mkdir("/tmp/reopen-dir", 0700);
	int d = open("/tmp/reopen-dir", O_RDONLY | O_DIRECTORY);
	char up[80];
	snprintf(up, sizeof up, "%s/..", link_of(d));
	struct stat via, tmp;
	int parent_ok = stat(up, &via) == 0 && stat("/tmp", &tmp) == 0 && via.st_ino == tmp.st_ino &&
			via.st_dev == tmp.st_dev;
	printf("directory link's ..: %s\n", parent_ok ? "its parent" : "elsewhere");
	close(d);
	rmdir("/tmp/reopen-dir");

	/* A descriptor closed since: the link is gone. */
	pipe(p);
	close(p[0]);
	close(p[1]);
	close_if(reopen("closed descriptor", p[0], O_RDONLY));
	return 0;
}
