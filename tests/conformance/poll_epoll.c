/* epoll on pipes and eventfds: level-triggered, EPOLLET and EPOLLONESHOT
 * behaviour, MOD and DEL, the ready-list order with a small maxevents, one
 * file under two descriptors, items leaving with their file, hang-ups,
 * nesting and loops, polling an epoll fd, timeouts, epoll_pwait and
 * epoll_pwait2, and the error cases. Descriptor numbers are never printed:
 * each item's data names it. */
#define CONF_FS
#include "conf.h"
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static const char *evname(uint32_t e)
{
	static char buf[128];
	buf[0] = 0;
	if (e & EPOLLIN) strcat(buf, "IN ");
	if (e & EPOLLPRI) strcat(buf, "PRI ");
	if (e & EPOLLOUT) strcat(buf, "OUT ");
	if (e & EPOLLERR) strcat(buf, "ERR ");
	if (e & EPOLLHUP) strcat(buf, "HUP ");
	if (e & EPOLLRDNORM) strcat(buf, "RDNORM ");
	if (e & EPOLLWRNORM) strcat(buf, "WRNORM ");
	if (e & EPOLLRDHUP) strcat(buf, "RDHUP ");
	if (e & ~(uint32_t)(EPOLLIN | EPOLLPRI | EPOLLOUT | EPOLLERR | EPOLLHUP | EPOLLRDNORM | EPOLLWRNORM | EPOLLRDHUP))
		strcat(buf, "OTHER ");
	size_t n = strlen(buf);
	if (n)
		buf[n - 1] = 0;
	else
		strcpy(buf, "0");
	return buf;
}

/* epoll_wait with timeout 0 (or `ms`), printing "label: n [data:events ...]". */
static void waitp(const char *label, int ep, int max, int ms)
{
	struct epoll_event evs[16];
	int n = epoll_wait(ep, evs, max, ms);
	if (n < 0) {
		printf("%s: -1 errno=%s\n", label, errname(errno));
		return;
	}
	printf("%s: %d", label, n);
	for (int i = 0; i < n; i++)
		printf(" [%llu:%s]", (unsigned long long)evs[i].data.u64, evname(evs[i].events));
	printf("\n");
}

static int add(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };
	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static int mod(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };
	return epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
}

static void level_and_edge(void)
{
	int p[2];
	CHECK("pipe", pipe2(p, O_NONBLOCK) == 0);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	CHECK("epoll_create1", ep >= 0);
	ERRCALL("add read end, IN", add(ep, p[0], EPOLLIN, 1));
	ERRCALL("add write end, OUT", add(ep, p[1], EPOLLOUT, 2));
	waitp("wait: write end ready", ep, 8, 0);
	waitp("wait again: still", ep, 8, 0);
	write(p[1], "abc", 3);
	waitp("wait after write", ep, 8, 0);
	ERRCALL("del write end", epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL));
	waitp("level-triggered: reported until read", ep, 8, 0);
	char buf[16];
	read(p[0], buf, sizeof buf);
	waitp("after read", ep, 8, 0);

	/* Edge-triggered: once per change; every write is a change. */
	ERRCALL("mod read end, IN|ET", mod(ep, p[0], EPOLLIN | EPOLLET, 3));
	waitp("ET, empty", ep, 8, 0);
	write(p[1], "a", 1);
	waitp("ET, after a write", ep, 8, 0);
	waitp("ET, again without a change", ep, 8, 0);
	write(p[1], "b", 1);
	waitp("ET, after a second write (unread data)", ep, 8, 0);
	read(p[0], buf, 1);
	waitp("ET, after a partial read", ep, 8, 0);
	ERRCALL("mod ET again (rearms)", mod(ep, p[0], EPOLLIN | EPOLLET, 4));
	waitp("ET, after MOD with data left", ep, 8, 0);
	read(p[0], buf, sizeof buf);

	/* ET on the write end: told again only when a full pipe gets room. */
	ERRCALL("add write end, OUT|ET", add(ep, p[1], EPOLLOUT | EPOLLET, 5));
	waitp("ET write end: ready at add", ep, 8, 0);
	waitp("ET write end: once", ep, 8, 0);
	static char big[65536];
	long total = 0, w;
	while ((w = write(p[1], big, 4096)) > 0)
		total += w;
	printf("filled: %ld\n", total);
	waitp("full", ep, 8, 0);
	read(p[0], big, 100);
	waitp("after a small read (still full)", ep, 8, 0);
	read(p[0], big, 8192);
	waitp("after reading two pages", ep, 8, 0);
	while (read(p[0], big, sizeof big) > 0)
		;
	waitp("drained: no new edge for the writer", ep, 8, 0);

	/* Oneshot: reported once, then silent until MOD. */
	ERRCALL("del write end", epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL));
	ERRCALL("mod read end, IN|ONESHOT", mod(ep, p[0], EPOLLIN | EPOLLONESHOT, 6));
	write(p[1], "x", 1);
	waitp("oneshot", ep, 8, 0);
	waitp("oneshot, disabled", ep, 8, 0);
	write(p[1], "y", 1);
	waitp("oneshot, disabled after a write", ep, 8, 0);
	ERRCALL("add again: still there", add(ep, p[0], EPOLLIN, 7));
	ERRCALL("mod rearms", mod(ep, p[0], EPOLLIN | EPOLLONESHOT, 8));
	waitp("oneshot, rearmed", ep, 8, 0);
	waitp("oneshot, disabled again", ep, 8, 0);

	/* Hang-ups: always reported, even when not asked for. */
	ERRCALL("mod read end, events 0", mod(ep, p[0], 0, 9));
	waitp("events 0 with data", ep, 8, 0);
	close(p[1]);
	waitp("events 0, writer closed", ep, 8, 0);
	ERRCALL("mod read end, IN", mod(ep, p[0], EPOLLIN, 10));
	waitp("IN, writer closed, data left", ep, 8, 0);
	close(p[0]);
	waitp("read end closed: item gone", ep, 8, 0);

	CHECK("pipe", pipe(p) == 0);
	ERRCALL("add write end", add(ep, p[1], EPOLLOUT, 11));
	close(p[0]);
	waitp("reader closed", ep, 8, 0);
	close(p[1]);
	close(ep);
}

static void order_and_keys(void)
{
	int ep = epoll_create(1);
	int p[3][2];
	for (int i = 0; i < 3; i++) {
		pipe(p[i]);
		write(p[i][1], "x", 1);
		add(ep, p[i][0], EPOLLIN, 100 + i);
	}
	waitp("three ready, max 2", ep, 2, 0);
	waitp("next 2 (round robin)", ep, 2, 0);
	waitp("next 2", ep, 2, 0);
	waitp("max 8", ep, 8, 0);

	/* One file under two descriptors: two items. */
	int d = dup(p[0][0]);
	ERRCALL("add dup of a watched file", add(ep, d, EPOLLIN, 200));
	ERRCALL("add same fd again", add(ep, d, EPOLLIN, 201));
	ERRCALL("del other pipes", epoll_ctl(ep, EPOLL_CTL_DEL, p[1][0], NULL) |
					   epoll_ctl(ep, EPOLL_CTL_DEL, p[2][0], NULL));
	waitp("both keys report", ep, 8, 0);
	/* Closing one descriptor keeps the items: the file is still open. */
	close(p[0][0]);
	waitp("after closing the original fd", ep, 8, 0);
	ERRCALL("del by the closed number", epoll_ctl(ep, EPOLL_CTL_DEL, p[0][0], NULL));
	close(d);
	waitp("after closing the dup: file gone", ep, 8, 0);
	for (int i = 0; i < 3; i++) {
		close(p[i][1]);
		if (i)
			close(p[i][0]);
	}
	close(ep);
}

static void eventfds(void)
{
	int ep = epoll_create1(0);
	int e = eventfd(0, EFD_NONBLOCK);
	ERRCALL("add eventfd IN|OUT", add(ep, e, EPOLLIN | EPOLLOUT, 1));
	waitp("eventfd 0", ep, 8, 0);
	uint64_t v = 5;
	write(e, &v, 8);
	waitp("eventfd 5", ep, 8, 0);
	ERRCALL("mod IN|ET", mod(ep, e, EPOLLIN | EPOLLET, 2));
	waitp("ET: ready at mod", ep, 8, 0);
	waitp("ET: once", ep, 8, 0);
	v = 0;
	write(e, &v, 8);
	waitp("ET: a write of 0 is an edge", ep, 8, 0);
	read(e, &v, 8);
	printf("read: %llu\n", (unsigned long long)v);
	waitp("ET: after read", ep, 8, 0);
	close(e);
	close(ep);
}

static void nesting(void)
{
	int a = epoll_create1(0), b = epoll_create1(0), c = epoll_create1(0);
	int p[2];
	pipe(p);
	ERRCALL("add pipe to a", add(a, p[0], EPOLLIN, 1));
	ERRCALL("add a to b", add(b, a, EPOLLIN, 2));
	ERRCALL("add b to c", add(c, b, EPOLLIN, 3));
	ERRCALL("add a to itself", add(a, a, EPOLLIN, 4));
	ERRCALL("add b to a (loop)", add(a, b, EPOLLIN, 5));
	ERRCALL("add c to a (longer loop)", add(a, c, EPOLLIN, 6));
	ERRCALL("add a to b again", add(b, a, EPOLLIN, 7));
	ERRCALL("add a to c with EXCLUSIVE", add(c, a, EPOLLIN | EPOLLEXCLUSIVE, 8));
	waitp("c, nothing ready", c, 8, 0);
	struct pollfd pf = { .fd = c, .events = POLLIN | POLLOUT };
	NUMCALL("poll c", poll(&pf, 1, 0));
	write(p[1], "x", 1);
	NUMCALL("poll c after a write", poll(&pf, 1, 0));
	printf("  revents IN: %s\n", pf.revents == POLLIN ? "only" : "no");
	waitp("c", c, 8, 0);
	waitp("b", b, 8, 0);
	waitp("a", a, 8, 0);
	char x;
	read(p[0], &x, 1);
	waitp("c after the read", c, 8, 0);
	NUMCALL("poll c after the read", poll(&pf, 1, 0));
	close(p[0]);
	close(p[1]);
	close(a);
	waitp("b after closing a", b, 8, 0);
	close(b);
	close(c);
}

static void timeouts(void)
{
	int ep = epoll_create1(0);
	int p[2];
	pipe(p);
	add(ep, p[0], EPOLLIN, 1);
	double t0 = now_ms();
	waitp("epoll_wait 10 ms", ep, 8, 10);
	double dt = now_ms() - t0;
	CHECK("  took at least 10 ms", dt >= 10);
	CHECK("  took less than 5 s", dt < 5000);
	struct epoll_event ev;
	t0 = now_ms();
	NUMCALL("epoll_pwait 10 ms, NULL mask", epoll_pwait(ep, &ev, 1, 10, NULL));
	CHECK("  took at least 10 ms", now_ms() - t0 >= 10);
	sigset_t set;
	sigemptyset(&set);
	struct timespec ts = { 0, 12 * 1000 * 1000 };
	t0 = now_ms();
	NUMCALL("epoll_pwait2 12 ms with a mask", syscall(SYS_epoll_pwait2, ep, &ev, 1, &ts, &set, 8));
	CHECK("  took at least 12 ms", now_ms() - t0 >= 12);
	write(p[1], "x", 1);
	NUMCALL("epoll_pwait2 NULL timeout, ready", syscall(SYS_epoll_pwait2, ep, &ev, 1, NULL, NULL, 8));
	ts.tv_sec = 0;
	ts.tv_nsec = 0;
	NUMCALL("epoll_pwait2 zero timeout", syscall(SYS_epoll_pwait2, ep, &ev, 1, &ts, NULL, 8));
	NUMCALL("epoll_wait -1, ready", epoll_wait(ep, &ev, 1, -1));
	ts.tv_nsec = 1000000000;
	NUMCALL("epoll_pwait2 nsec 1e9", syscall(SYS_epoll_pwait2, ep, &ev, 1, &ts, NULL, 8));
	ts.tv_sec = -1;
	ts.tv_nsec = 0;
	NUMCALL("epoll_pwait2 sec -1", syscall(SYS_epoll_pwait2, ep, &ev, 1, &ts, NULL, 8));
	NUMCALL("epoll_pwait2 unmapped timespec", syscall(SYS_epoll_pwait2, ep, &ev, 1, 16, NULL, 8));
	NUMCALL("epoll_pwait sigsetsize 4", syscall(SYS_epoll_pwait, ep, &ev, 1, 0, &set, 4));
	NUMCALL("epoll_pwait unmapped mask", syscall(SYS_epoll_pwait, ep, &ev, 1, 0, 16, 8));
	NUMCALL("epoll_pwait bad mask and maxevents 0", syscall(SYS_epoll_pwait, ep, &ev, 0, 0, &set, 4));
	close(p[0]);
	close(p[1]);
	close(ep);
}

static void errors(void)
{
	int ep = epoll_create1(0);
	int p[2];
	pipe(p);
	write(p[1], "x", 1);
	struct epoll_event ev = { .events = EPOLLIN };
	ERRCALL("epoll_create 0", syscall(SYS_epoll_create, 0));
	ERRCALL("epoll_create -1", syscall(SYS_epoll_create, -1));
	ERRCALL("epoll_create1 bad flag", epoll_create1(1));
	ERRCALL("ctl bad epfd", epoll_ctl(999, EPOLL_CTL_ADD, p[0], &ev));
	ERRCALL("ctl bad fd", epoll_ctl(ep, EPOLL_CTL_ADD, 999, &ev));
	ERRCALL("ctl epfd not an epoll", epoll_ctl(p[1], EPOLL_CTL_ADD, p[0], &ev));
	ERRCALL("ctl bad op", epoll_ctl(ep, 99, p[0], &ev));
	ERRCALL("ctl ADD NULL event", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], NULL));
	ERRCALL("ctl NULL event and bad epfd", epoll_ctl(999, EPOLL_CTL_ADD, p[0], NULL));
	ERRCALL("ctl DEL NULL event, not watched", epoll_ctl(ep, EPOLL_CTL_DEL, p[0], NULL));
	ERRCALL("ctl MOD not watched", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
	int f = open("file", O_RDWR | O_CREAT | O_TRUNC, 0644);
	ERRCALL("ctl ADD regular file", epoll_ctl(ep, EPOLL_CTL_ADD, f, &ev));
	ERRCALL("ctl DEL regular file", epoll_ctl(ep, EPOLL_CTL_DEL, f, NULL));
	int dir = open(".", O_RDONLY | O_DIRECTORY);
	ERRCALL("ctl ADD directory", epoll_ctl(ep, EPOLL_CTL_ADD, dir, &ev));
	int path = open(".", O_PATH);
	ERRCALL("ctl ADD O_PATH", epoll_ctl(ep, EPOLL_CTL_ADD, path, &ev));
	int nul = open("/dev/null", O_RDWR);
	ERRCALL("ctl ADD /dev/null", epoll_ctl(ep, EPOLL_CTL_ADD, nul, &ev));
	ERRCALL("ctl ADD", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
	ERRCALL("ctl ADD twice", epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
	ev.events = EPOLLIN | EPOLLEXCLUSIVE;
	ERRCALL("ctl MOD with EXCLUSIVE", epoll_ctl(ep, EPOLL_CTL_MOD, p[0], &ev));
	ERRCALL("ctl ADD EXCLUSIVE (write end)", epoll_ctl(ep, EPOLL_CTL_ADD, p[1], &ev));
	ev.events = EPOLLIN;
	ERRCALL("ctl MOD an EXCLUSIVE item", epoll_ctl(ep, EPOLL_CTL_MOD, p[1], &ev));
	ERRCALL("ctl DEL an EXCLUSIVE item", epoll_ctl(ep, EPOLL_CTL_DEL, p[1], NULL));
	ev.events = EPOLLIN | EPOLLEXCLUSIVE | EPOLLONESHOT;
	ERRCALL("ctl ADD EXCLUSIVE|ONESHOT", epoll_ctl(ep, EPOLL_CTL_ADD, p[1], &ev));
	ev.events = EPOLLIN | EPOLLEXCLUSIVE | EPOLLRDHUP;
	ERRCALL("ctl ADD EXCLUSIVE|RDHUP", epoll_ctl(ep, EPOLL_CTL_ADD, p[1], &ev));
	struct epoll_event out[4];
	ERRCALL("wait maxevents 0", epoll_wait(ep, out, 0, 0));
	ERRCALL("wait maxevents -1", syscall(SYS_epoll_wait, ep, out, -1, 0));
	ERRCALL("wait bad epfd", epoll_wait(999, out, 4, 0));
	ERRCALL("wait epfd not an epoll", epoll_wait(p[0], out, 4, 0));
	ERRCALL("wait NULL events, ready", syscall(SYS_epoll_wait, ep, NULL, 4, 0));
	ERRCALL("wait kernel-half events", syscall(SYS_epoll_wait, ep, 0xffff800000000000UL, 4, 0));
	waitp("the event survived the fault", ep, 4, 0);
	ERRCALL("wait maxevents huge", syscall(SYS_epoll_wait, ep, out, 0x7fffffff, 0));
	/* Reading and writing an epoll fd. */
	char b[8];
	ERRCALL("read epoll fd", read(ep, b, 8));
	ERRCALL("write epoll fd", write(ep, b, 8));
	int flags = fcntl(ep, F_GETFL);
	printf("F_GETFL: %s\n", (flags & O_ACCMODE) == O_RDWR ? "O_RDWR" : "other");
	printf("FD_CLOEXEC: %d\n", fcntl(ep, F_GETFD) & FD_CLOEXEC);
	close(f);
	close(dir);
	close(path);
	close(nul);
	close(p[0]);
	close(p[1]);
	close(ep);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	fs_enter();
	level_and_edge();
	order_and_keys();
	eventfds();
	nesting();
	timeouts();
	errors();
	fs_leave();
	return 0;
}
