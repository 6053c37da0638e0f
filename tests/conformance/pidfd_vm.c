/* Process descriptors and cross-process memory (issue 14 item 9): pidfd_open (errors,
 * close-on-exec, poll readiness when the process ends), pidfd_send_signal (signal, siginfo
 * rules, a reaped process), pidfd_getfd (a child's descriptor, EBADF, EPERM), and
 * process_vm_readv/writev between a parent and its child (scatter/gather, partial copies
 * at a fault, errors). */
#include "conf.h"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>

static int pidfd_open(pid_t pid, unsigned flags)
{
	return (int)syscall(SYS_pidfd_open, pid, flags);
}

static int pidfd_send_signal(int fd, int sig, siginfo_t *info, unsigned flags)
{
	return (int)syscall(SYS_pidfd_send_signal, fd, sig, info, flags);
}

static int pidfd_getfd(int fd, int target, unsigned flags)
{
	return (int)syscall(SYS_pidfd_getfd, fd, target, flags);
}

static int readable(int fd, int ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	return poll(&p, 1, ms) == 1 && (p.revents & POLLIN);
}

/* Shared with the child: its buffer's address and the parent's go-ahead. */
static char *shared;

static void pidfds(void)
{
	ERRCALL("pidfd_open 0", pidfd_open(0, 0));
	ERRCALL("pidfd_open -1", pidfd_open(-1, 0));
	ERRCALL("pidfd_open bad flags", pidfd_open(getpid(), 1));
	ERRCALL("pidfd_open missing", pidfd_open(999999, 0));
	int self = pidfd_open(getpid(), 0);
	CHECK("pidfd_open self", self >= 0);
	printf("close-on-exec: %d\n", fcntl(self, F_GETFD) & FD_CLOEXEC);
	printf("F_GETFL access: %d\n", fcntl(self, F_GETFL) & O_ACCMODE);
	int nb = pidfd_open(getpid(), O_NONBLOCK);
	printf("PIDFD_NONBLOCK shows: %d\n", !!(fcntl(nb, F_GETFL) & O_NONBLOCK));
	close(nb);
	printf("self readable: %d\n", readable(self, 0));
	ERRCALL("pidfd_send_signal 0 to self", pidfd_send_signal(self, 0, NULL, 0));
	ERRCALL("pidfd_send_signal bad flags", pidfd_send_signal(self, 0, NULL, 8));
	ERRCALL("pidfd_send_signal bad signal", pidfd_send_signal(self, 99, NULL, 0));
	ERRCALL("pidfd_send_signal on a non-pidfd", pidfd_send_signal(1, 0, NULL, 0));
	ERRCALL("pidfd_send_signal bad fd", pidfd_send_signal(999, 0, NULL, 0));
	ERRCALL("pidfd_getfd bad flags", pidfd_getfd(self, 0, 1));
	int mine = pidfd_getfd(self, 1, 0);
	printf("pidfd_getfd own stdout: %s, cloexec %d\n", mine >= 0 ? "ok" : errname(errno),
	       mine >= 0 ? fcntl(mine, F_GETFD) & FD_CLOEXEC : -1);
	close(mine);
	ERRCALL("pidfd_getfd closed fd", pidfd_getfd(self, 500, 0));

	/* A child that waits, then is signalled through its pidfd. */
	int p[2];
	pipe(p);
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		close(p[0]);
		int fd = open("/proc/self/exe", O_RDONLY);
		dup2(fd, 42);
		write(p[1], "r", 1);
		pause();
		_exit(0);
	}
	close(p[1]);
	char b;
	read(p[0], &b, 1);
	int pfd = pidfd_open(c, 0);
	CHECK("pidfd_open child", pfd >= 0);
	printf("child readable while alive: %d\n", readable(pfd, 0));
	int got = pidfd_getfd(pfd, 42, 0);
	struct stat a, e;
	fstat(got, &a);
	stat("/proc/self/exe", &e);
	printf("pidfd_getfd child's fd 42: %s\n", got >= 0 && a.st_ino == e.st_ino ? "same file" : errname(errno));
	close(got);
	ERRCALL("pidfd_getfd child's closed fd", pidfd_getfd(pfd, 77, 0));
	siginfo_t si = {0};
	si.si_signo = SIGTERM;
	si.si_code = SI_USER;
	ERRCALL("pidfd_send_signal forged SI_USER to another", pidfd_send_signal(pfd, SIGTERM, &si, 0));
	si.si_code = SI_QUEUE;
	si.si_signo = SIGINT;
	ERRCALL("pidfd_send_signal signo mismatch", pidfd_send_signal(pfd, SIGTERM, &si, 0));
	ERRCALL("pidfd_send_signal SIGTERM", pidfd_send_signal(pfd, SIGTERM, NULL, 0));
	printf("child readable after its end: %d\n", readable(pfd, 5000));
	ERRCALL("pidfd_send_signal to a zombie", pidfd_send_signal(pfd, 0, NULL, 0));
	ERRCALL("pidfd_getfd of a zombie", pidfd_getfd(pfd, 42, 0));
	int s;
	waitpid(c, &s, 0);
	printf("child: %s\n", wait_status(s));
	ERRCALL("pidfd_send_signal after reaping", pidfd_send_signal(pfd, 0, NULL, 0));
	printf("still readable: %d\n", readable(pfd, 0));
	close(pfd);
	close(p[0]);

	/* Another user's process: no pidfd_getfd. */
	fflush(stdout);
	c = fork();
	if (c == 0) {
		pause();
		_exit(0);
	}
	pfd = pidfd_open(c, 0);
	fflush(stdout);
	pid_t u = fork();
	if (u == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(9);
		ERRCALL("unprivileged pidfd_getfd of root's", pidfd_getfd(pfd, 0, 0));
		ERRCALL("unprivileged pidfd_send_signal to root's", pidfd_send_signal(pfd, SIGTERM, NULL, 0));
		char x[4];
		struct iovec l = {x, 4}, r = {shared, 4};
		ERRCALL("unprivileged process_vm_readv of root's", process_vm_readv(c, &l, 1, &r, 1, 0));
		fflush(stdout);
		_exit(0);
	}
	waitpid(u, &s, 0);
	kill(c, SIGKILL);
	waitpid(c, &s, 0);
	close(pfd);
	close(self);
}

static void vm(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	/* The child's buffer: a page of 'c', then an unmapped page. */
	char *buf = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	memset(buf, 'c', pg);
	munmap(buf + pg, pg);
	int p[2], q[2];
	pipe(p);
	pipe(q);
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		/* The parent's writes land in this copy of buf. */
		close(p[0]);
		close(q[1]);
		write(p[1], "r", 1);
		char b;
		read(q[0], &b, 1);
		printf("child sees: %.6s\n", buf);
		fflush(stdout);
		_exit(0);
	}
	close(p[1]);
	close(q[0]);
	char b;
	read(p[0], &b, 1);
	memset(buf, 'p', pg); /* the parent's own copy differs */
	char a[3] = {0}, z[5] = {0};
	struct iovec local[2] = {{a, 3}, {z, 5}};
	struct iovec remote[1] = {{buf + 10, 8}};
	long n = process_vm_readv(c, local, 2, remote, 1, 0);
	printf("readv: %ld '%.3s' '%.5s'\n", n, a, z);
	char big[64];
	struct iovec l1 = {big, sizeof big};
	struct iovec r1 = {buf + pg - 16, 64};
	n = process_vm_readv(c, &l1, 1, &r1, 1, 0);
	printf("readv across the end of the mapping: %ld\n", n);
	struct iovec r2 = {buf + pg, 16};
	ERRCALL("readv of the unmapped page", process_vm_readv(c, &l1, 1, &r2, 1, 0));
	struct iovec l2 = {(void *)8, 16};
	struct iovec r3 = {buf, 16};
	ERRCALL("readv into a bad local buffer", process_vm_readv(c, &l2, 1, &r3, 1, 0));
	ERRCALL("readv bad flags", process_vm_readv(c, &l1, 1, &r3, 1, 1));
	ERRCALL("readv too many iovecs", process_vm_readv(c, &l1, 1025, &r3, 1, 0));
	ERRCALL("readv missing pid", process_vm_readv(999999, &l1, 1, &r3, 1, 0));
	ERRCALL("readv nothing", process_vm_readv(c, &l1, 0, &r3, 0, 0));
	struct iovec w1[2] = {{"WRI", 3}, {"TE", 2}};
	struct iovec wr[2] = {{buf, 2}, {buf + 2, 4}};
	n = process_vm_writev(c, w1, 2, wr, 2, 0);
	printf("writev: %ld\n", n);
	printf("parent's copy untouched: %c\n", buf[0]);
	/* Self: the caller's own memory. */
	char mine[4] = "abc", out[4] = {0};
	struct iovec sl = {out, 3}, sr = {mine, 3};
	n = process_vm_readv(getpid(), &sl, 1, &sr, 1, 0);
	printf("readv self: %ld '%s'\n", n, out);
	write(q[1], "g", 1);
	int s;
	waitpid(c, &s, 0);
	printf("vm child: %s\n", wait_status(s));
}

int main(void)
{
	shared = malloc(16);
	pidfds();
	vm();
	return 0;
}
