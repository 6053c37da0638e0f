/* Waiting on standard input, which the sandbox passes through from the host:
 * with /dev/null (always ready, and not something epoll accepts), and with a
 * pipe the harness feeds (poll, select or epoll until EOF, blocking or with
 * O_NONBLOCK and EAGAIN). Prints sizes and checksums, never how the data
 * happened to be split into reads.
 * usage: poll_stdin null | poll | select | epoll | epoll_et */
#define CONF_FS /* for NUMCALL; no temporary directory is used */
#include "conf.h"
#include <poll.h>
#include <sys/epoll.h>
#include <sys/select.h>

static char buf[65536];

/* One read after the wait said "ready": returns bytes, 0 at EOF, -2 for EAGAIN. */
static long take(uint64_t *sum, long *total)
{
	long n = read(0, buf, sizeof buf);
	if (n < 0)
		return errno == EAGAIN ? -2 : -1;
	*sum = fnv1a(buf, n, *sum);
	*total += n;
	return n;
}

static void report(long total, uint64_t sum, long spurious)
{
	printf("total: %ld checksum: %016llx\n", total, (unsigned long long)sum);
	printf("waits that found nothing to read: %s\n", spurious ? "some" : "none");
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "null";
	uint64_t sum = 0;
	long total = 0, spurious = 0, n;
	if (!strcmp(mode, "null")) {
		struct pollfd p = { .fd = 0, .events = POLLIN | POLLOUT };
		NUMCALL("poll /dev/null", poll(&p, 1, 0));
		printf("  revents: %s%s\n", p.revents & POLLIN ? "IN " : "", p.revents & POLLOUT ? "OUT" : "");
		fd_set r;
		FD_ZERO(&r);
		FD_SET(0, &r);
		NUMCALL("select /dev/null", select(1, &r, NULL, NULL, NULL));
		int ep = epoll_create1(0);
		struct epoll_event ev = { .events = EPOLLIN };
		NUMCALL("epoll_ctl ADD /dev/null", epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev));
		NUMCALL("read /dev/null", read(0, buf, 10));
		return 0;
	}
	if (!strcmp(mode, "poll")) {
		/* Nothing is printed per wait: how many there are depends on timing. */
		struct pollfd p = { .fd = 0, .events = POLLIN };
		for (;;) {
			if (poll(&p, 1, -1) != 1 || !(p.revents & (POLLIN | POLLHUP))) {
				printf("poll: unexpected\n");
				return 1;
			}
			if ((n = take(&sum, &total)) <= 0)
				break;
		}
	} else if (!strcmp(mode, "select")) {
		for (;;) {
			fd_set r;
			FD_ZERO(&r);
			FD_SET(0, &r);
			if (select(1, &r, NULL, NULL, NULL) != 1 || !FD_ISSET(0, &r)) {
				printf("select: unexpected\n");
				return 1;
			}
			if ((n = take(&sum, &total)) <= 0)
				break;
		}
	} else if (!strcmp(mode, "epoll") || !strcmp(mode, "epoll_et")) {
		int et = !strcmp(mode, "epoll_et");
		if (et && fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK) != 0)
			printf("F_SETFL: FAIL\n");
		int ep = epoll_create1(0);
		struct epoll_event ev = { .events = EPOLLIN | (et ? EPOLLET : 0), .data.u64 = 7 };
		NUMCALL("epoll_ctl ADD stdin", epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev));
		int eof = 0;
		while (!eof) {
			struct epoll_event out;
			if (epoll_wait(ep, &out, 1, -1) != 1 || out.data.u64 != 7) {
				printf("epoll_wait: unexpected\n");
				return 1;
			}
			/* Edge-triggered: read until EAGAIN (or EOF) before waiting again. */
			int first = 1;
			do {
				n = take(&sum, &total);
				if (n == 0)
					eof = 1;
				else if (n == -2 && first)
					spurious++;
				else if (n == -1)
					printf("read: %s\n", errname(errno));
				first = 0;
			} while (et && n > 0);
		}
		struct pollfd p = { .fd = 0, .events = POLLIN };
		NUMCALL("poll after EOF", poll(&p, 1, 0));
		printf("  revents: %s%s\n", p.revents & POLLIN ? "IN " : "", p.revents & POLLHUP ? "HUP" : "");
		if (et)
			NUMCALL("read after EOF, O_NONBLOCK", read(0, buf, 10));
		report(total, sum, spurious);
		return 0;
	} else {
		return 2;
	}
	if (n < 0)
		printf("read failed: %s\n", errname(errno));
	struct pollfd p = { .fd = 0, .events = POLLIN };
	NUMCALL("poll after EOF", poll(&p, 1, 0));
	printf("  revents: %s%s\n", p.revents & POLLIN ? "IN " : "", p.revents & POLLHUP ? "HUP" : "");
	report(total, sum, spurious);
	return 0;
}
