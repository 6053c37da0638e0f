/* Pseudo-terminals: posix_openpt/grantpt/unlockpt/ptsname, TIOCGPTN, TIOCSPTLCK,
 * TIOCGPTPEER, the slave node, and the line discipline between master and slave:
 * canonical mode (echo, erase, kill, VEOF, ICRNL, ONLCR), raw mode (VMIN/VTIME), window
 * size, ISIG (SIGINT, SIGQUIT, SIGTSTP to the slave's foreground group) and hangup
 * (SIGHUP to the session leader when the master closes; EIO on the master once the slave
 * is closed). */
#include "conf.h"
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>

#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif

static void show(const char *label, const char *buf, int n)
{
	printf("%s: %d \"", label, n);
	for (int i = 0; i < n; i++) {
		unsigned char c = buf[i];
		if (c >= 0x20 && c < 0x7f && c != '\\')
			putchar(c);
		else
			printf("\\x%02x", c);
	}
	printf("\"\n");
}

/* Reads until `want` bytes came or nothing more comes for `quiet_ms`. */
static int gather(int fd, char *buf, int want, int quiet_ms)
{
	int got = 0;
	while (got < want) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, got ? quiet_ms : 2000);
		if (r <= 0 || !(p.revents & POLLIN))
			break;
		int n = read(fd, buf + got, want - got);
		if (n <= 0)
			break;
		got += n;
	}
	return got;
}

static void expect(int fd, const char *label, int want)
{
	char buf[512];
	int n = gather(fd, buf, want, 300);
	show(label, buf, n);
}

static int new_master(void)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0) {
		printf("posix_openpt: %s\n", errname(errno));
		exit(1);
	}
	return m;
}

static int open_slave(int m, int flags)
{
	if (grantpt(m) || unlockpt(m)) {
		printf("grantpt/unlockpt: %s\n", errname(errno));
		exit(1);
	}
	int s = open(ptsname(m), O_RDWR | flags);
	if (s < 0) {
		printf("open slave: %s\n", errname(errno));
		exit(1);
	}
	return s;
}

static void names_and_locks(void)
{
	int m = new_master();
	unsigned n = 99, lock = 9;
	printf("TIOCGPTN: %d\n", ioctl(m, TIOCGPTN, &n));
	printf("TIOCGPTLCK: %d locked %u\n", ioctl(m, TIOCGPTLCK, &lock), lock);
	char name[64];
	snprintf(name, sizeof name, "/dev/pts/%u", n);
	int s = open(name, O_RDWR | O_NOCTTY);
	printf("open locked slave: %s\n", s < 0 ? errname(errno) : "opened");
	const char *pn = ptsname(m);
	printf("ptsname matches TIOCGPTN: %d\n", pn && strcmp(pn, name) == 0);
	s = open_slave(m, O_NOCTTY);
	ioctl(m, TIOCGPTLCK, &lock);
	printf("after unlockpt: locked %u\n", lock);
	struct stat st, fst;
	stat(name, &st);
	fstat(s, &fst);
	printf("slave: chr %d major %u minor==ptn %d same %d\n", S_ISCHR(st.st_mode),
	       major(st.st_rdev), minor(st.st_rdev) == n,
	       st.st_rdev == fst.st_rdev && st.st_ino == fst.st_ino && st.st_dev == fst.st_dev);
	fstat(m, &st);
	printf("master: chr %d rdev %u:%u\n", S_ISCHR(st.st_mode), major(st.st_rdev),
	       minor(st.st_rdev));
	printf("isatty master %d slave %d\n", isatty(m), isatty(s));
	const char *tn = ttyname(s);
	printf("ttyname(slave) matches: %d\n", tn && strcmp(tn, name) == 0);
	unsigned n2;
	printf("TIOCGPTN on slave: %s\n", ioctl(s, TIOCGPTN, &n2) < 0 ? errname(errno) : "ok");
	int peer = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY);
	printf("TIOCGPTPEER: %s\n", peer < 0 ? errname(errno) : "ok");
	if (peer >= 0) {
		fstat(peer, &fst);
		stat(name, &st);
		printf("peer is the slave: %d\n", st.st_rdev == fst.st_rdev);
		write(peer, "p\n", 2);
		expect(m, "via peer", 3);
		close(peer);
	}
	close(s);
	close(m);
}

static void canonical(void)
{
	int m = new_master();
	int s = open_slave(m, O_NOCTTY);
	struct termios t;
	tcgetattr(s, &t);
	printf("defaults: icanon %d echo %d icrnl %d onlcr %d isig %d veof %d vmin %d\n",
	       !!(t.c_lflag & ICANON), !!(t.c_lflag & ECHO), !!(t.c_iflag & ICRNL),
	       !!(t.c_oflag & ONLCR), !!(t.c_lflag & ISIG), t.c_cc[VEOF], t.c_cc[VMIN]);
	struct termios tm;
	tcgetattr(m, &tm);
	printf("master sees the same termios: %d\n",
	       tm.c_lflag == t.c_lflag && tm.c_iflag == t.c_iflag);

	write(m, "hello\r", 6);
	expect(s, "slave read", 6);
	expect(m, "echo", 7);

	write(m, "abd\x7f" "c\n", 6);
	expect(s, "after erase", 4);
	expect(m, "erase echo", 11);

	write(m, "xyz\x15q\n", 6);
	expect(s, "after kill", 2);
	expect(m, "kill echo", 30);

	write(m, "one\ntwo\n", 8);
	char buf[64];
	struct pollfd p = { .fd = s, .events = POLLIN };
	poll(&p, 1, 2000);
	usleep(100000);
	int n = read(s, buf, sizeof buf);
	show("one line per read", buf, n);
	expect(s, "next line", 4);
	expect(m, "two lines echo", 10);

	write(s, "a\nb", 3);
	expect(m, "slave output", 4);

	write(m, "ab\x04", 3);
	expect(s, "veof partial", 2);
	write(m, "\x04", 1);
	poll(&p, 1, 2000);
	n = read(s, buf, sizeof buf);
	printf("veof on empty line: read %d\n", n);
	expect(m, "veof echo", 2);

	/* echo off */
	t.c_lflag &= ~ECHO;
	tcsetattr(s, TCSANOW, &t);
	write(m, "secret\n", 7);
	expect(s, "no echo read", 7);
	expect(m, "no echo", 8);

	/* window size */
	struct winsize ws = { .ws_row = 24, .ws_col = 80 }, got = { 0 };
	printf("TIOCSWINSZ master: %d\n", ioctl(m, TIOCSWINSZ, &ws));
	ioctl(s, TIOCGWINSZ, &got);
	printf("slave winsize %ux%u\n", got.ws_row, got.ws_col);

	/* the master reads EIO once the slave is closed */
	close(s);
	p.fd = m;
	p.events = POLLIN;
	poll(&p, 1, 2000);
	printf("master after slave close: pollhup %d", !!(p.revents & POLLHUP));
	n = read(m, buf, sizeof buf);
	printf(" read %d %s\n", n, n < 0 ? errname(errno) : "");
	close(m);
}

static void raw(void)
{
	int m = new_master();
	int s = open_slave(m, O_NOCTTY);
	struct termios t;
	tcgetattr(s, &t);
	cfmakeraw(&t);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	tcsetattr(s, TCSANOW, &t);
	write(m, "x\r\x03\n\x7f", 5);
	expect(s, "raw read", 5);
	expect(m, "raw echo", 5);
	write(s, "1\n", 2);
	expect(m, "raw output", 3);

	t.c_cc[VMIN] = 0;
	tcsetattr(s, TCSANOW, &t);
	char buf[8];
	printf("vmin 0 vtime 0, empty: %zd\n", read(s, buf, sizeof buf));
	t.c_cc[VTIME] = 1;
	tcsetattr(s, TCSANOW, &t);
	printf("vmin 0 vtime 1, empty: %zd\n", read(s, buf, sizeof buf));
	int fl = fcntl(s, F_GETFL);
	fcntl(s, F_SETFL, fl | O_NONBLOCK);
	t.c_cc[VMIN] = 1;
	t.c_cc[VTIME] = 0;
	tcsetattr(s, TCSANOW, &t);
	ssize_t r = read(s, buf, sizeof buf);
	printf("nonblocking empty: %zd %s\n", r, r < 0 ? errname(errno) : "");
	close(s);
	close(m);
}

static int report = -1;

static void on_signal(int sig)
{
	char c = sig == SIGINT ? 'I' : sig == SIGQUIT ? 'Q' : sig == SIGTSTP ? 'T' : sig == SIGHUP ? 'H' : '?';
	write(report, &c, 1);
	if (sig == SIGHUP)
		_exit(7);
}

static void job_signals(void)
{
	int m = new_master();
	if (grantpt(m) || unlockpt(m))
		exit(1);
	char name[64];
	snprintf(name, sizeof name, "%s", ptsname(m));
	printf("master: foreground before any session: %d\n", tcgetpgrp(m));
	int pfd[2];
	pipe(pfd);
	pid_t pid = fork();
	if (pid == 0) {
		close(m);
		close(pfd[0]);
		report = pfd[1];
		setsid();
		int s = open(name, O_RDWR); /* becomes the controlling terminal */
		struct sigaction sa = { .sa_handler = on_signal };
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGQUIT, &sa, NULL);
		sigaction(SIGTSTP, &sa, NULL);
		sigaction(SIGHUP, &sa, NULL);
		char ok = tcgetpgrp(s) == getpid() ? 'F' : 'f';
		write(report, &ok, 1);
		for (;;)
			pause();
	}
	close(pfd[1]);
	char c = 0;
	read(pfd[0], &c, 1);
	printf("child's terminal, its group in front: %c\n", c);
	pid_t sid = -1;
	ioctl(m, TIOCGSID, &sid);
	printf("through the master: foreground is the child %d, session is the child's %d\n",
	       tcgetpgrp(m) == pid, sid == pid);
	const char keys[] = { 3, 0x1c, 0x1a };
	for (int i = 0; i < 3; i++) {
		write(m, &keys[i], 1);
		c = 0;
		read(pfd[0], &c, 1);
		printf("key 0x%02x -> %c", keys[i], c);
		expect(m, " echo", 2);
	}
	close(m);
	c = 0;
	read(pfd[0], &c, 1);
	int status = 0;
	waitpid(pid, &status, 0);
	printf("hangup -> %c, child exit %d\n", c, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

int main(void)
{
	names_and_locks();
	canonical();
	raw();
	job_signals();
	return 0;
}
