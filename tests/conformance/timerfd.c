/* timerfd: expiration counts from read (blocking, and EAGAIN without waiting), intervals,
 * TFD_TIMER_ABSTIME, gettime and the old setting, readiness in poll and epoll, the flags,
 * and argument checks. Only facts that hold whatever the timing print. */
#include "conf.h"
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define OK(c) do { if (!(c)) printf("FAIL line %d: %s (%s)\n", __LINE__, #c, errname(errno)); } while (0)
#define SHOW(label, call) do { errno = 0; long _r = (long)(call); printf("%s: %ld %s\n", label, _r, errname(errno)); } while (0)

static long ns(const struct timespec *t) { return t->tv_sec * 1000000000L + t->tv_nsec; }

static int arm(int fd, int flags, long value_ns, long interval_ns, struct itimerspec *old)
{
	struct itimerspec it = {
		.it_value = {value_ns / 1000000000, value_ns % 1000000000},
		.it_interval = {interval_ns / 1000000000, interval_ns % 1000000000},
	};
	return timerfd_settime(fd, flags, &it, old);
}

static long count(int fd)
{
	uint64_t n;
	ssize_t r = read(fd, &n, sizeof n);
	return r == 8 ? (long)n : -1;
}

static void nap(long ms)
{
	struct timespec t = {0, ms * 1000000};
	nanosleep(&t, NULL);
}

int main(void)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	OK(fd >= 0);
	printf("cloexec %d, nonblock %d\n", (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0,
	       (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
	SHOW("read disarmed", count(fd));
	struct itimerspec cur;
	OK(timerfd_gettime(fd, &cur) == 0);
	printf("disarmed: %ld %ld\n", ns(&cur.it_value), ns(&cur.it_interval));
	struct pollfd p = {.fd = fd, .events = POLLIN};
	printf("poll disarmed: %d\n", poll(&p, 1, 0));

	/* Interval: several expirations in one read. */
	OK(arm(fd, 0, 2000000, 2000000, NULL) == 0);
	OK(timerfd_gettime(fd, &cur) == 0);
	printf("armed: value in (0, 2ms] %d, interval %ld\n", ns(&cur.it_value) > 0 && ns(&cur.it_value) <= 2000000,
	       ns(&cur.it_interval));
	nap(30);
	p.revents = 0;
	int polled = poll(&p, 1, 0);
	printf("poll expired: %d revents %#x\n", polled, p.revents);
	printf("count >= 5: %d\n", count(fd) >= 5);
	/* Setting again forgets unread expirations. */
	nap(10);
	struct itimerspec old;
	OK(arm(fd, 0, 1000000000, 0, &old) == 0);
	printf("old interval %ld, old value <= 2ms %d\n", ns(&old.it_interval), ns(&old.it_value) <= 2000000);
	SHOW("read after set", count(fd));
	OK(arm(fd, 0, 0, 0, &old) == 0);
	printf("disarm: old value in (0, 1s] %d\n", ns(&old.it_value) > 0 && ns(&old.it_value) <= 1000000000);
	OK(timerfd_gettime(fd, &cur) == 0);
	printf("disarmed again: %ld %ld\n", ns(&cur.it_value), ns(&cur.it_interval));
	close(fd);

	/* A blocking read waits for a one-shot timer. */
	fd = timerfd_create(CLOCK_MONOTONIC, 0);
	OK(fd >= 0);
	printf("plain: cloexec %d, nonblock %d\n", (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0,
	       (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
	OK(arm(fd, 0, 10000000, 0, NULL) == 0);
	printf("blocking read: %ld\n", count(fd));
	OK(timerfd_gettime(fd, &cur) == 0);
	printf("one-shot done: %ld %ld\n", ns(&cur.it_value), ns(&cur.it_interval));

	/* TFD_TIMER_ABSTIME: a deadline, and one already past. */
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long deadline = ns(&now) + 20000000;
	OK(arm(fd, TFD_TIMER_ABSTIME, deadline, 0, NULL) == 0);
	OK(timerfd_gettime(fd, &cur) == 0);
	printf("absolute: gettime is relative %d\n", ns(&cur.it_value) > 0 && ns(&cur.it_value) <= 20000000);
	printf("absolute: read %ld\n", count(fd));
	clock_gettime(CLOCK_MONOTONIC, &now);
	printf("absolute: at or after the deadline %d\n", ns(&now) >= deadline);
	OK(arm(fd, TFD_TIMER_ABSTIME, 1, 0, NULL) == 0);
	printf("absolute in the past: %ld\n", count(fd));

	/* epoll sees an expiry. */
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 7};
	OK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
	struct epoll_event out[2];
	printf("epoll disarmed: %d\n", epoll_wait(ep, out, 2, 0));
	OK(arm(fd, 0, 10000000, 0, NULL) == 0);
	int n = epoll_wait(ep, out, 2, 5000);
	printf("epoll: %d events %#x data %u\n", n, n > 0 ? out[0].events : 0, n > 0 ? out[0].data.u32 : 0);
	printf("read: %ld\n", count(fd));
	printf("epoll after read: %d\n", epoll_wait(ep, out, 2, 0));
	/* poll waits for an expiry too. */
	OK(arm(fd, 0, 10000000, 0, NULL) == 0);
	p.fd = fd;
	p.revents = 0;
	polled = poll(&p, 1, 5000);
	printf("poll waits: %d revents %#x\n", polled, p.revents);
	printf("read: %ld\n", count(fd));
	close(ep);

	/* Argument checks. */
	char small[4];
	OK(arm(fd, 0, 1000000, 0, NULL) == 0);
	nap(5);
	SHOW("read 4 bytes", read(fd, small, sizeof small));
	uint64_t one = 1;
	SHOW("write", write(fd, &one, sizeof one));
	SHOW("create flags 1", timerfd_create(CLOCK_MONOTONIC, 1));
	SHOW("create clock 99", timerfd_create(99, 0));
	SHOW("create CLOCK_PROCESS_CPUTIME_ID", timerfd_create(CLOCK_PROCESS_CPUTIME_ID, 0));
	struct itimerspec it = {.it_value = {0, 1000000000}};
	SHOW("settime nsec 1e9", timerfd_settime(fd, 0, &it, NULL));
	it = (struct itimerspec){.it_value = {-1, 0}};
	SHOW("settime sec -1", timerfd_settime(fd, 0, &it, NULL));
	it = (struct itimerspec){.it_value = {1, 0}};
	SHOW("settime flags 4", timerfd_settime(fd, 4, &it, NULL));
	SHOW("settime bad pointer", syscall(SYS_timerfd_settime, fd, 0, (void *)8, NULL));
	SHOW("gettime bad pointer", syscall(SYS_timerfd_gettime, fd, (void *)8));
	int pipefd[2];
	OK(pipe(pipefd) == 0);
	SHOW("settime on a pipe", timerfd_settime(pipefd[0], 0, &it, NULL));
	SHOW("gettime on a pipe", timerfd_gettime(pipefd[0], &cur));
	SHOW("settime bad fd", timerfd_settime(999, 0, &it, NULL));
	SHOW("gettime bad fd", timerfd_gettime(999, &cur));
	close(fd);

	fd = timerfd_create(CLOCK_REALTIME, TFD_NONBLOCK);
	OK(fd >= 0);
	clock_gettime(CLOCK_REALTIME, &now);
	OK(arm(fd, TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET, ns(&now) + 5000000, 0, NULL) == 0);
	nap(20);
	printf("realtime absolute: %ld\n", count(fd));
	close(fd);
	fd = timerfd_create(CLOCK_BOOTTIME, TFD_NONBLOCK);
	OK(fd >= 0);
	OK(arm(fd, 0, 1000000, 0, NULL) == 0);
	nap(10);
	printf("boottime: %ld\n", count(fd));
	close(fd);
	return 0;
}
