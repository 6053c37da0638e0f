/* Waking a thread that sleeps in poll, select, epoll_wait, or a read of a
 * pipe or an eventfd, from another thread (data, a hang-up); and ending the
 * process while threads still sleep in each of them, which must not hang.
 * The sleeper prints what it saw after the main thread joined it, so the
 * output order is fixed. */
#include "conf.h"
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/select.h>
#include <time.h>
#include <unistd.h>

static int p[2], efd, ep;
static char result[128];

static void *sleeper(void *arg)
{
	const char *how = arg;
	if (!strcmp(how, "poll")) {
		struct pollfd f = { .fd = p[0], .events = POLLIN };
		int n = poll(&f, 1, -1);
		snprintf(result, sizeof result, "poll: %d revents IN=%d HUP=%d", n,
			 !!(f.revents & POLLIN), !!(f.revents & POLLHUP));
	} else if (!strcmp(how, "select")) {
		fd_set r;
		FD_ZERO(&r);
		FD_SET(p[0], &r);
		int n = select(p[0] + 1, &r, NULL, NULL, NULL);
		snprintf(result, sizeof result, "select: %d readable=%d", n, FD_ISSET(p[0], &r) != 0);
	} else if (!strcmp(how, "epoll")) {
		struct epoll_event ev;
		int n = epoll_wait(ep, &ev, 1, -1);
		snprintf(result, sizeof result, "epoll_wait: %d data=%llu", n, (unsigned long long)ev.data.u64);
	} else if (!strcmp(how, "read")) {
		char buf[16] = { 0 };
		long n = read(p[0], buf, sizeof buf - 1);
		snprintf(result, sizeof result, "read: %ld \"%s\"", n, buf);
	} else if (!strcmp(how, "eventfd")) {
		uint64_t v = 0;
		long n = read(efd, &v, 8);
		snprintf(result, sizeof result, "eventfd read: %ld value=%llu", n, (unsigned long long)v);
	}
	return NULL;
}

static void pause_ms(int ms)
{
	struct timespec ts = { 0, ms * 1000000L };
	nanosleep(&ts, NULL);
}

static void wake(const char *how, int hangup)
{
	pipe(p);
	efd = eventfd(0, 0);
	ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 42 };
	epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
	result[0] = 0;
	pthread_t t;
	pthread_create(&t, NULL, sleeper, (void *)how);
	pause_ms(30); /* most likely asleep by now; correct either way */
	if (hangup) {
		close(p[1]);
	} else if (!strcmp(how, "epoll") || !strcmp(how, "eventfd")) {
		uint64_t v = 3;
		write(efd, &v, 8);
	} else {
		write(p[1], "wake", 4);
	}
	pthread_join(t, NULL);
	printf("%s%s\n", result, hangup ? " (after hang-up)" : "");
	close(p[0]);
	if (!hangup)
		close(p[1]);
	close(efd);
	close(ep);
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		/* Leave with threads asleep in every kind of wait. */
		pipe(p);
		efd = eventfd(0, 0);
		ep = epoll_create1(0);
		struct epoll_event ev = { .events = EPOLLIN };
		epoll_ctl(ep, EPOLL_CTL_ADD, efd, &ev);
		const char *kinds[] = { "poll", "select", "epoll", "read", "eventfd" };
		for (int i = 0; i < 5; i++) {
			pthread_t t;
			pthread_create(&t, NULL, sleeper, (void *)kinds[i]);
		}
		pause_ms(30);
		printf("leaving with %s\n", argv[1]);
		if (!strcmp(argv[1], "exit"))
			exit(3);
		return 4;
	}
	wake("poll", 0);
	wake("poll", 1);
	wake("select", 0);
	wake("select", 1);
	wake("epoll", 0);
	wake("read", 0);
	wake("read", 1);
	wake("eventfd", 0);
	return 0;
}
