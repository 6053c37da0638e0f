/* select and pselect6 through raw system calls (libc wrappers differ in how
 * they treat timeouts): readiness of pipes in the three sets, counts, nfds
 * edge cases (0, negative, bits at or above nfds), EBADF, O_PATH, timeouts
 * and the remaining time written back, timeval normalisation, EINVAL and
 * EFAULT. Times are never printed, only whether they are in range. */
#define CONF_FS
#include "conf.h"
#include <signal.h>
#include <sys/select.h>
#include <time.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static long sel(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv)
{
	return syscall(SYS_select, n, r, w, e, tv);
}

struct sigarg {
	const sigset_t *ss;
	size_t len;
};

static long psel(int n, fd_set *r, fd_set *w, fd_set *e, struct timespec *ts, struct sigarg *sa)
{
	return syscall(SYS_pselect6, n, r, w, e, ts, sa);
}

/* Prints which of fds[] are in the set. */
static void show_set(const char *label, fd_set *s, const int *fds, const char **names, int n)
{
	printf("%s:", label);
	int any = 0;
	for (int i = 0; i < n; i++)
		if (FD_ISSET(fds[i], s)) {
			printf(" %s", names[i]);
			any = 1;
		}
	printf("%s\n", any ? "" : " -");
}

static void readiness(void)
{
	int a[2], b[2];
	CHECK("pipes", pipe(a) == 0 && pipe(b) == 0);
	int fds[4] = { a[0], a[1], b[0], b[1] };
	const char *names[4] = { "a.r", "a.w", "b.r", "b.w" };
	int nfds = 0;
	for (int i = 0; i < 4; i++)
		if (fds[i] + 1 > nfds)
			nfds = fds[i] + 1;
	fd_set r, w, e;
	struct timeval tv = { 0, 0 };
	FD_ZERO(&r); FD_ZERO(&w); FD_ZERO(&e);
	for (int i = 0; i < 4; i++) {
		FD_SET(fds[i], &r);
		FD_SET(fds[i], &w);
		FD_SET(fds[i], &e);
	}
	NUMCALL("select all, empty pipes", sel(nfds, &r, &w, &e, &tv));
	show_set("  read", &r, fds, names, 4);
	show_set("  write", &w, fds, names, 4);
	show_set("  except", &e, fds, names, 4);
	write(a[1], "x", 1);
	FD_ZERO(&r); FD_ZERO(&w); FD_ZERO(&e);
	for (int i = 0; i < 4; i++) {
		FD_SET(fds[i], &r);
		FD_SET(fds[i], &w);
	}
	NUMCALL("select after writing a", sel(nfds, &r, &w, NULL, &tv));
	show_set("  read", &r, fds, names, 4);
	show_set("  write", &w, fds, names, 4);
	/* Hang-up counts as readable, a reader-less pipe as writable. */
	close(b[1]);
	FD_ZERO(&r);
	FD_SET(b[0], &r);
	NUMCALL("select read end of widowed pipe", sel(b[0] + 1, &r, NULL, NULL, &tv));
	CHECK("  readable", FD_ISSET(b[0], &r));
	close(b[0]);
	CHECK("pipe", pipe(b) == 0);
	close(b[0]);
	FD_ZERO(&w);
	FD_SET(b[1], &w);
	FD_ZERO(&e);
	FD_SET(b[1], &e);
	NUMCALL("select write end without reader", sel(b[1] + 1, NULL, &w, &e, &tv));
	CHECK("  writable", FD_ISSET(b[1], &w));
	CHECK("  not exceptional", !FD_ISSET(b[1], &e));
	close(b[1]);

	/* A regular file is always ready. */
	int f = open("file", O_RDWR | O_CREAT | O_TRUNC, 0644);
	FD_ZERO(&r); FD_ZERO(&w);
	FD_SET(f, &r); FD_SET(f, &w);
	NUMCALL("select regular file", sel(f + 1, &r, &w, NULL, NULL));
	close(f);
	/* O_PATH descriptors are open (no EBADF); select polls them like files
	 * without a poll method (poll says POLLNVAL instead). */
	int path = open(".", O_PATH);
	FD_ZERO(&r); FD_ZERO(&w);
	FD_SET(path, &r); FD_SET(path, &w);
	NUMCALL("select O_PATH", sel(path + 1, &r, &w, NULL, &tv));
	close(path);
	close(a[0]);
	close(a[1]);
}

static void nfds_edges(void)
{
	int p[2];
	CHECK("pipe", pipe(p) == 0);
	write(p[1], "x", 1);
	fd_set r;
	struct timeval tv = { 0, 0 };
	/* Bits at or above nfds are neither checked nor kept. */
	int closed = p[1] + 3;
	close(closed);
	FD_ZERO(&r);
	FD_SET(p[0], &r);
	FD_SET(closed, &r);
	NUMCALL("select closed fd above nfds", sel(p[0] + 1, &r, NULL, NULL, &tv));
	CHECK("  pipe set", FD_ISSET(p[0], &r));
	CHECK("  closed fd bit cleared", !FD_ISSET(closed, &r));
	FD_ZERO(&r);
	FD_SET(p[0], &r);
	FD_SET(closed, &r);
	NUMCALL("select closed fd below nfds", sel(closed + 1, &r, NULL, NULL, &tv));
	CHECK("  sets untouched", FD_ISSET(p[0], &r) && FD_ISSET(closed, &r));
	FD_ZERO(&r);
	FD_SET(p[0], &r);
	NUMCALL("select nfds = fd (excludes it)", sel(p[0], &r, NULL, NULL, &tv));
	CHECK("  bit cleared", !FD_ISSET(p[0], &r));
	NUMCALL("select nfds 0, NULL sets", sel(0, NULL, NULL, NULL, &tv));
	NUMCALL("select nfds -1", sel(-1, NULL, NULL, NULL, &tv));
	FD_ZERO(&r);
	FD_SET(p[0], &r);
	NUMCALL("select nfds 64", sel(64, &r, NULL, NULL, &tv));
	NUMCALL("select bad read set", sel(p[0] + 1, (fd_set *)16, NULL, NULL, &tv));
	NUMCALL("select NULL sets, nfds 10", sel(10, NULL, NULL, NULL, &tv));
	close(p[0]);
	close(p[1]);
}

static void timeouts(void)
{
	int p[2];
	CHECK("pipe", pipe(p) == 0);
	fd_set r;
	FD_ZERO(&r);
	FD_SET(p[0], &r);
	struct timeval tv = { 0, 10000 };
	double t0 = now_ms();
	NUMCALL("select 10 ms on an empty pipe", sel(p[0] + 1, &r, NULL, NULL, &tv));
	double dt = now_ms() - t0;
	CHECK("  took at least 10 ms", dt >= 10);
	CHECK("  took less than 5 s", dt < 5000);
	CHECK("  set cleared", !FD_ISSET(p[0], &r));
	CHECK("  no time left", tv.tv_sec == 0 && tv.tv_usec == 0);
	t0 = now_ms();
	tv.tv_sec = 0;
	tv.tv_usec = 20000;
	NUMCALL("select nfds 0, 20 ms", sel(0, NULL, NULL, NULL, &tv));
	CHECK("  took at least 20 ms", now_ms() - t0 >= 20);

	write(p[1], "x", 1);
	FD_ZERO(&r);
	FD_SET(p[0], &r);
	tv.tv_sec = 100;
	tv.tv_usec = 0;
	NUMCALL("select 100 s, ready", sel(p[0] + 1, &r, NULL, NULL, &tv));
	CHECK("  most of it left", tv.tv_sec >= 90 && tv.tv_sec <= 100 &&
				     tv.tv_usec >= 0 && tv.tv_usec < 1000000);
	/* tv_usec beyond a second is folded into tv_sec, not refused. */
	tv.tv_sec = 0;
	tv.tv_usec = 3000000;
	NUMCALL("select usec 3e6, ready", sel(p[0] + 1, &r, NULL, NULL, &tv));
	CHECK("  left: about 3 s", tv.tv_sec >= 2 && tv.tv_sec <= 3 && tv.tv_usec < 1000000);
	tv.tv_sec = 0;
	tv.tv_usec = -1;
	NUMCALL("select usec -1", sel(p[0] + 1, &r, NULL, NULL, &tv));
	tv.tv_sec = -1;
	tv.tv_usec = 0;
	NUMCALL("select sec -1", sel(p[0] + 1, &r, NULL, NULL, &tv));
	tv.tv_sec = 5;
	tv.tv_usec = 0;
	close(p[1] + 5);
	FD_SET(p[1] + 5, &r);
	NUMCALL("select EBADF with a timeout", sel(p[1] + 6, &r, NULL, NULL, &tv));
	CHECK("  time written back anyway", tv.tv_sec >= 4 && tv.tv_sec <= 5);
	NUMCALL("select unmapped timeval", sel(p[0] + 1, &r, NULL, NULL, (struct timeval *)16));

	/* pselect6: timespec, and the sigset argument pack. */
	FD_ZERO(&r);
	FD_SET(p[0], &r);
	struct timespec ts = { 100, 0 };
	NUMCALL("pselect6 100 s, ready", psel(p[0] + 1, &r, NULL, NULL, &ts, NULL));
	CHECK("  most of it left", ts.tv_sec >= 90 && ts.tv_sec <= 100 && ts.tv_nsec < 1000000000);
	char c;
	read(p[0], &c, 1);
	FD_ZERO(&r);
	FD_SET(p[0], &r);
	ts.tv_sec = 0;
	ts.tv_nsec = 10 * 1000 * 1000;
	t0 = now_ms();
	sigset_t set;
	sigemptyset(&set);
	struct sigarg sa = { &set, 8 };
	NUMCALL("pselect6 10 ms with a mask", psel(p[0] + 1, &r, NULL, NULL, &ts, &sa));
	CHECK("  took at least 10 ms", now_ms() - t0 >= 10);
	CHECK("  no time left", ts.tv_sec == 0 && ts.tv_nsec == 0);
	ts.tv_sec = 0;
	ts.tv_nsec = 1000000000;
	NUMCALL("pselect6 nsec 1e9", psel(p[0] + 1, &r, NULL, NULL, &ts, NULL));
	ts.tv_nsec = 0;
	sa.len = 4;
	NUMCALL("pselect6 sigset size 4", psel(p[0] + 1, &r, NULL, NULL, &ts, &sa));
	sa.ss = (sigset_t *)16;
	sa.len = 8;
	NUMCALL("pselect6 unmapped sigset", psel(p[0] + 1, &r, NULL, NULL, &ts, &sa));
	NUMCALL("pselect6 unmapped argument pack", psel(p[0] + 1, &r, NULL, NULL, &ts, (struct sigarg *)16));
	sa.ss = NULL;
	sa.len = 4;
	NUMCALL("pselect6 NULL sigset, size 4", psel(p[0] + 1, &r, NULL, NULL, &ts, &sa));
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	fs_enter();
	readiness();
	nfds_edges();
	timeouts();
	fs_leave();
	return 0;
}
