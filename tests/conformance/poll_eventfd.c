/* eventfd and eventfd2: the counter, 8-byte reads and writes, EINVAL for
 * short buffers and for 2^64-1, EAGAIN at 0 and at the top, semaphore mode,
 * flags (EFD_NONBLOCK, EFD_CLOEXEC, bad flags), readiness through poll and
 * select, FIONBIO, and what else a descriptor answers. */
#define CONF_FS /* for NUMCALL; no temporary directory is used */
#include "conf.h"
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static void show_read(const char *label, int fd)
{
	uint64_t v = 0;
	errno = 0;
	long n = read(fd, &v, sizeof v);
	if (n < 0)
		printf("%s: -1 errno=%s\n", label, errname(errno));
	else
		printf("%s: %ld value=%llu\n", label, n, (unsigned long long)v);
}

static long put(int fd, uint64_t v)
{
	return write(fd, &v, sizeof v);
}

static void show_poll(const char *label, int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT | POLLERR };
	int n = poll(&p, 1, 0);
	printf("%s: %d%s%s%s\n", label, n, p.revents & POLLIN ? " IN" : "",
	       p.revents & POLLOUT ? " OUT" : "", p.revents & POLLERR ? " ERR" : "");
}

int main(void)
{
	int e = eventfd(3, EFD_NONBLOCK);
	CHECK("eventfd(3, NONBLOCK)", e >= 0);
	show_poll("poll at 3", e);
	show_read("read", e);
	show_read("read at 0", e);
	show_poll("poll at 0", e);
	NUMCALL("write 7", put(e, 7));
	NUMCALL("write 0", put(e, 0));
	NUMCALL("write 2^64-1", put(e, UINT64_MAX));
	show_read("read", e);
	/* Short and long buffers. */
	uint64_t big[2] = { 1, 1 };
	char small[7] = { 0 };
	NUMCALL("read 7 bytes", read(e, small, 7));
	NUMCALL("write 7 bytes", write(e, small, 7));
	NUMCALL("write 16 bytes (takes the first 8)", write(e, big, 16));
	NUMCALL("read 16 bytes", read(e, big, 16));
	printf("  value=%llu\n", (unsigned long long)big[0]);
	NUMCALL("read 0 bytes", read(e, small, 0));
	NUMCALL("write 0 bytes", write(e, small, 0));
	/* The top: the count never reaches 2^64-1. */
	NUMCALL("write 2^64-2", put(e, UINT64_MAX - 1));
	show_poll("poll at 2^64-2", e);
	NUMCALL("write 1 at the top", put(e, 1));
	NUMCALL("write 0 at the top", put(e, 0));
	show_read("read", e);
	NUMCALL("write 2^64-3", put(e, UINT64_MAX - 2));
	NUMCALL("write 1 (reaches 2^64-2)", put(e, 1));
	NUMCALL("write 1 again", put(e, 1));
	show_read("read", e);
	/* Blocking mode: reads with a count don't block. */
	int fl = fcntl(e, F_GETFL);
	printf("F_GETFL: %s%s\n", (fl & O_ACCMODE) == O_RDWR ? "O_RDWR" : "other",
	       fl & O_NONBLOCK ? "|O_NONBLOCK" : "");
	CHECK("clear O_NONBLOCK", fcntl(e, F_SETFL, 0) == 0);
	NUMCALL("write 4", put(e, 4));
	show_read("blocking read with a count", e);
	int on = 1;
	CHECK("FIONBIO on", ioctl(e, FIONBIO, &on) == 0);
	show_read("read at 0 after FIONBIO", e);
	printf("FD_CLOEXEC: %d\n", fcntl(e, F_GETFD) & FD_CLOEXEC);
	int avail = -1;
	ERRCALL("FIONREAD", ioctl(e, FIONREAD, &avail));
	ERRCALL("pread", pread(e, big, 8, 0));
	close(e);

	/* Semaphore mode. */
	e = eventfd(2, EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC);
	CHECK("eventfd(2, SEMAPHORE|NONBLOCK|CLOEXEC)", e >= 0);
	printf("FD_CLOEXEC: %d\n", fcntl(e, F_GETFD) & FD_CLOEXEC);
	show_read("sem read", e);
	show_read("sem read", e);
	show_read("sem read at 0", e);
	NUMCALL("write 5", put(e, 5));
	show_read("sem read", e);
	show_poll("poll at 4", e);
	close(e);

	/* Flags and the old call. */
	ERRCALL("eventfd2 bad flag", syscall(SYS_eventfd2, 0, 2));
	ERRCALL("eventfd2 O_RDWR flag", syscall(SYS_eventfd2, 0, O_RDWR));
	long old = syscall(SYS_eventfd, 9);
	CHECK("eventfd (old)", old >= 0);
	fl = fcntl(old, F_GETFL);
	printf("old F_GETFL nonblock: %d\n", !!(fl & O_NONBLOCK));
	show_read("old read", old);
	close(old);
	/* An initial value is 32 bits: the high half of the register is dropped. */
	long hi = syscall(SYS_eventfd2, 0x100000005UL, EFD_NONBLOCK);
	show_read("initval 2^32+5", hi);
	close(hi);
	return 0;
}
