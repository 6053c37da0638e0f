/* recvmmsg's timeout as Linux has it: checked after each datagram received (a zero timeout
 * takes one datagram and stops), the time left written back when datagrams came, EINVAL
 * for a bad timespec, EFAULT for an unreadable one. */
#define _GNU_SOURCE
#include "conf.h"
#include <sys/socket.h>
#include <time.h>

static int sv[2];

static void send3(void)
{
	for (int i = 0; i < 3; i++)
		send(sv[0], "abc", 3, 0);
}

static int take(struct timespec *ts, int flags)
{
	char bufs[4][8];
	struct iovec iov[4];
	struct mmsghdr m[4];
	memset(m, 0, sizeof m);
	for (int i = 0; i < 4; i++) {
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = sizeof bufs[i];
		m[i].msg_hdr.msg_iov = &iov[i];
		m[i].msg_hdr.msg_iovlen = 1;
	}
	errno = 0;
	return recvmmsg(sv[1], m, 4, flags, ts);
}

/* The call's result and errno, printed once both are known. */
static void show(const char *what, struct timespec *ts, int flags)
{
	int r = take(ts, flags);
	int e = errno;
	printf("%s: %d %s\n", what, r, r < 0 ? errname(e) : "");
}

static void drain(void)
{
	while (take(NULL, MSG_DONTWAIT) > 0) {
	}
}

int main(void)
{
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) != 0)
		return 1;
	send3();
	struct timespec zero = { 0, 0 };
	printf("zero timeout: %d\n", take(&zero, 0));
	printf("left: %ld.%09ld\n", (long)zero.tv_sec, zero.tv_nsec);
	drain();

	send3();
	struct timespec five = { 5, 0 };
	int n = take(&five, MSG_DONTWAIT);
	printf("5 s, nonblocking: %d\n", n);
	printf("left within 5 s: %d\n",
	       five.tv_sec >= 0 && (five.tv_sec < 5 || (five.tv_sec == 5 && five.tv_nsec == 0)));

	struct timespec untouched = { 7, 7 };
	show("nothing queued", &untouched, MSG_DONTWAIT);
	printf("untouched: %ld.%09ld\n", (long)untouched.tv_sec, untouched.tv_nsec);

	send3();
	struct timespec bad = { 0, 1000000000 };
	show("nsec 1e9", &bad, MSG_DONTWAIT);
	struct timespec neg = { -1, 0 };
	show("negative", &neg, MSG_DONTWAIT);
	show("unreadable", (struct timespec *)8, MSG_DONTWAIT);
	printf("all still queued: %d\n", take(NULL, MSG_DONTWAIT));
	return 0;
}
