/* poll and ppoll: pipes written then polled, hang-ups, full pipes, regular
 * files and devices (always ready), POLLNVAL, ignored entries, timeouts (a
 * 10 ms timeout returns 0 after at least 10 ms), ppoll's timespec checks and
 * remaining-time write-back, and the error cases. Times are never printed,
 * only whether they are in range. */
#define CONF_FS
#include "conf.h"
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Prints revents symbolically, so the output says what is set. */
static void show_revents(const char *label, short r)
{
	printf("%s:", label);
	if (!r)
		printf(" 0");
	if (r & POLLIN) printf(" IN");
	if (r & POLLPRI) printf(" PRI");
	if (r & POLLOUT) printf(" OUT");
	if (r & POLLERR) printf(" ERR");
	if (r & POLLHUP) printf(" HUP");
	if (r & POLLNVAL) printf(" NVAL");
	if (r & POLLRDNORM) printf(" RDNORM");
	if (r & POLLWRNORM) printf(" WRNORM");
	if (r & POLLRDHUP) printf(" RDHUP");
	printf("\n");
}

static long raw_ppoll(struct pollfd *fds, unsigned long n, struct timespec *ts,
		      void *mask, unsigned long masksize)
{
	return syscall(SYS_ppoll, fds, n, ts, mask, masksize);
}

static void pipes(void)
{
	int p[2];
	CHECK("pipe", pipe(p) == 0);
	struct pollfd fds[2] = {
		{ .fd = p[0], .events = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM },
		{ .fd = p[1], .events = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM },
	};
	NUMCALL("poll empty pipe", poll(fds, 2, 0));
	show_revents("  read end", fds[0].revents);
	show_revents("  write end", fds[1].revents);
	NUMCALL("write 5", write(p[1], "hello", 5));
	NUMCALL("poll after write", poll(fds, 2, 0));
	show_revents("  read end", fds[0].revents);
	show_revents("  write end", fds[1].revents);
	/* Only what was asked for, plus ERR and HUP. */
	fds[0].events = POLLOUT;
	fds[1].events = POLLIN;
	NUMCALL("poll asking the wrong way", poll(fds, 2, 0));
	show_revents("  read end", fds[0].revents);
	show_revents("  write end", fds[1].revents);
	fds[0].events = POLLIN;
	fds[1].events = POLLOUT;
	/* A blocking-style wait returns at once when ready. */
	double t0 = now_ms();
	NUMCALL("poll -1 with data", poll(fds, 1, -1));
	CHECK("  returned at once", now_ms() - t0 < 1000);
	char buf[16];
	NUMCALL("read 5", read(p[0], buf, sizeof buf));
	NUMCALL("poll drained", poll(fds, 1, 0));
	show_revents("  read end", fds[0].revents);

	/* Fill the pipe: the write end stops being writable. */
	CHECK("nonblocking", fcntl(p[1], F_SETFL, O_NONBLOCK) == 0);
	static char big[4096];
	long total = 0, w;
	while ((w = write(p[1], big, sizeof big)) > 0)
		total += w;
	printf("filled: %ld errno=%s\n", total, errname(errno));
	NUMCALL("poll full", poll(fds, 2, 0));
	show_revents("  read end", fds[0].revents);
	show_revents("  write end", fds[1].revents);
	NUMCALL("read 100", read(p[0], buf, 16) + read(p[0], big, 84));
	NUMCALL("poll after a small read", poll(&fds[1], 1, 0));
	show_revents("  write end", fds[1].revents);
	static char page[4096];
	NUMCALL("read a page", read(p[0], page, sizeof page));
	NUMCALL("poll after a page", poll(&fds[1], 1, 0));
	show_revents("  write end", fds[1].revents);

	/* Hang-ups. */
	close(p[1]);
	fds[0].events = POLLIN;
	NUMCALL("poll writer closed, data left", poll(fds, 1, 0));
	show_revents("  read end", fds[0].revents);
	while (read(p[0], big, sizeof big) > 0)
		;
	fds[0].events = 0;
	NUMCALL("poll writer closed, drained, events 0", poll(fds, 1, 0));
	show_revents("  read end", fds[0].revents);
	close(p[0]);

	CHECK("pipe", pipe(p) == 0);
	close(p[0]);
	fds[1].fd = p[1];
	fds[1].events = POLLOUT;
	NUMCALL("poll reader closed", poll(&fds[1], 1, 0));
	show_revents("  write end", fds[1].revents);
	fds[1].events = 0;
	NUMCALL("poll reader closed, events 0", poll(&fds[1], 1, 0));
	show_revents("  write end", fds[1].revents);
	close(p[1]);
}

static void entries(void)
{
	int p[2];
	CHECK("pipe", pipe(p) == 0);
	write(p[1], "x", 1);
	int fd = open("file", O_RDWR | O_CREAT | O_TRUNC, 0644);
	int nul = open("/dev/null", O_RDWR);
	int path = open(".", O_PATH);
	struct pollfd fds[6] = {
		{ .fd = -1, .events = POLLIN },
		{ .fd = p[0], .events = POLLIN },
		{ .fd = 999, .events = POLLIN },
		{ .fd = fd, .events = POLLIN | POLLOUT | POLLPRI },
		{ .fd = nul, .events = POLLIN | POLLOUT },
		{ .fd = path, .events = POLLIN },
	};
	fds[0].revents = 0x7ff;
	NUMCALL("poll mixed", poll(fds, 6, 0));
	show_revents("  fd -1 (ignored, revents cleared)", fds[0].revents);
	show_revents("  pipe", fds[1].revents);
	show_revents("  closed fd", fds[2].revents);
	show_revents("  regular file", fds[3].revents);
	show_revents("  /dev/null", fds[4].revents);
	show_revents("  O_PATH", fds[5].revents);
	int e = eventfd(0, 0);
	struct pollfd ef = { .fd = e, .events = POLLIN | POLLOUT | POLLRDNORM | POLLWRNORM };
	NUMCALL("poll eventfd 0", poll(&ef, 1, 0));
	show_revents("  eventfd", ef.revents);
	uint64_t one = 1;
	write(e, &one, 8);
	NUMCALL("poll eventfd 1", poll(&ef, 1, 0));
	show_revents("  eventfd", ef.revents);
	close(e);
	close(fd);
	close(nul);
	close(path);
	close(p[0]);
	close(p[1]);
}

static void timeouts(void)
{
	int p[2];
	CHECK("pipe", pipe(p) == 0);
	struct pollfd fd = { .fd = p[0], .events = POLLIN };
	double t0 = now_ms();
	NUMCALL("poll 10 ms on an empty pipe", poll(&fd, 1, 10));
	double dt = now_ms() - t0;
	CHECK("  took at least 10 ms", dt >= 10);
	CHECK("  took less than 5 s", dt < 5000);
	show_revents("  revents", fd.revents);
	t0 = now_ms();
	NUMCALL("poll nfds 0, 20 ms", poll(NULL, 0, 20));
	CHECK("  took at least 20 ms", now_ms() - t0 >= 20);

	struct timespec ts = { 0, 15 * 1000 * 1000 };
	t0 = now_ms();
	NUMCALL("ppoll 15 ms", ppoll(&fd, 1, &ts, NULL));
	CHECK("  took at least 15 ms", now_ms() - t0 >= 15);
	/* The raw call writes the time left back. */
	ts.tv_sec = 0;
	ts.tv_nsec = 12 * 1000 * 1000;
	NUMCALL("raw ppoll 12 ms", raw_ppoll(&fd, 1, &ts, NULL, 8));
	CHECK("  nothing left", ts.tv_sec == 0 && ts.tv_nsec == 0);
	write(p[1], "x", 1);
	ts.tv_sec = 100;
	ts.tv_nsec = 0;
	NUMCALL("raw ppoll 100 s, ready", raw_ppoll(&fd, 1, &ts, NULL, 8));
	CHECK("  most of it left", ts.tv_sec >= 90 && ts.tv_sec <= 100 &&
				     ts.tv_nsec >= 0 && ts.tv_nsec < 1000000000);
	ts.tv_sec = 0;
	ts.tv_nsec = 0;
	NUMCALL("raw ppoll zero timeout", raw_ppoll(&fd, 1, &ts, NULL, 8));
	CHECK("  zero stays zero", ts.tv_sec == 0 && ts.tv_nsec == 0);
	sigset_t set;
	sigemptyset(&set);
	NUMCALL("ppoll with a mask", raw_ppoll(&fd, 1, NULL, &set, 8));
	close(p[0]);
	close(p[1]);
}

static void errors(void)
{
	int p[2];
	CHECK("pipe", pipe(p) == 0);
	struct pollfd fd = { .fd = p[0], .events = POLLIN };
	/* Ready, so that a call that wrongly succeeds returns at once. */
	write(p[1], "x", 1);
	NUMCALL("poll NULL fds", syscall(SYS_poll, NULL, 1, 0));
	NUMCALL("poll unmapped fds", syscall(SYS_poll, 16, 1, 0));
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	NUMCALL("poll nfds above RLIMIT_NOFILE", syscall(SYS_poll, &fd, (unsigned long)rl.rlim_cur + 1, 0));
	struct timespec bad = { 0, 1000000000 };
	NUMCALL("ppoll nsec 1e9", raw_ppoll(&fd, 1, &bad, NULL, 8));
	bad.tv_sec = -1;
	bad.tv_nsec = 0;
	NUMCALL("ppoll sec -1", raw_ppoll(&fd, 1, &bad, NULL, 8));
	bad.tv_sec = 0;
	bad.tv_nsec = -1;
	NUMCALL("ppoll nsec -1", raw_ppoll(&fd, 1, &bad, NULL, 8));
	NUMCALL("ppoll unmapped timespec", raw_ppoll(&fd, 1, (struct timespec *)16, NULL, 8));
	sigset_t set;
	sigemptyset(&set);
	NUMCALL("ppoll sigsetsize 4", raw_ppoll(&fd, 1, NULL, &set, 4));
	NUMCALL("ppoll unmapped sigset", raw_ppoll(&fd, 1, NULL, (void *)16, 8));
	NUMCALL("ppoll NULL sigset, size 4", raw_ppoll(&fd, 1, NULL, NULL, 4) >= 0 ? 0 : -1);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	fs_enter();
	pipes();
	entries();
	timeouts();
	errors();
	fs_leave();
	return 0;
}
