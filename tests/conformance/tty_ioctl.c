/* Terminal ioctls on whatever stdin is, through raw system calls in the kernel's own
 * structures (struct termios is 36 bytes, termios2 44, termio 18, winsize 8: glibc's
 * 60-byte struct termios is no kernel type). Nothing is written past a structure.
 *
 * stdin not a terminal (the conformance suite's runs): every request gives ENOTTY, on
 * stdin and on a pipe, a regular file, a socket and an eventfd.
 *
 * stdin a terminal (tests/tests/terminal.rs runs this on a fresh pty, natively as a
 * session leader with the pty as its controlling terminal, and in the sandbox): the
 * attributes and window size, setting them, SIGWINCH, the foreground group and session,
 * a background group stopped by SIGTTOU, an orphaned group's EIO, TIOCNOTTY, TIOCSCTTY,
 * flushing, flow control, draining, and bad pointers. */
#include "conf.h"
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define R_TCGETS 0x5401
#define R_TCSETS 0x5402
#define R_TCSETSW 0x5403
#define R_TCSETSF 0x5404
#define R_TCGETA 0x5405
#define R_TCSETA 0x5406
#define R_TCSBRK 0x5409
#define R_TCXONC 0x540a
#define R_TCFLSH 0x540b
#define R_TIOCSCTTY 0x540e
#define R_TIOCGPGRP 0x540f
#define R_TIOCSPGRP 0x5410
#define R_TIOCOUTQ 0x5411
#define R_TIOCGWINSZ 0x5413
#define R_TIOCSWINSZ 0x5414
#define R_FIONREAD 0x541b
#define R_TIOCNOTTY 0x5422
#define R_TIOCGETD 0x5424
#define R_TCSBRKP 0x5425
#define R_TIOCGSID 0x5429
#define R_TCGETS2 0x802c542aUL
#define R_TCSETS2 0x402c542bUL

struct k_termios {
	unsigned int iflag, oflag, cflag, lflag;
	unsigned char line, cc[19];
};
struct k_termios2 {
	struct k_termios t;
	unsigned int ispeed, ospeed;
};
struct k_termio {
	unsigned short iflag, oflag, cflag, lflag;
	unsigned char line, cc[8];
};
struct k_winsize {
	unsigned short row, col, xpixel, ypixel;
};

_Static_assert(sizeof(struct k_termios) == 36, "kernel termios");
_Static_assert(sizeof(struct k_termios2) == 44, "kernel termios2");
_Static_assert(sizeof(struct k_termio) == 18, "kernel termio");

static long kioctl(int fd, unsigned long req, void *arg)
{
	return syscall(SYS_ioctl, fd, req, arg);
}

/* "ret errno" of one call, without the return value's digits. */
static void show(const char *label, long r)
{
	int e = errno;
	printf("%s: %s\n", label, r == 0 ? "0" : r < 0 ? errname(e) : "positive");
}

/* A get request into a guarded buffer: how many bytes it wrote, and that nothing past
 * `size` changed. */
static void get_guarded(const char *label, unsigned long req, size_t size, void *out)
{
	unsigned char buf[128];
	memset(buf, 0xa5, sizeof buf);
	errno = 0;
	long r = kioctl(0, req, buf);
	size_t beyond = 0;
	for (size_t i = size; i < sizeof buf; i++)
		beyond += buf[i] != 0xa5;
	printf("%s: %s, %zu bytes changed past %zu\n", label,
	       r == 0 ? "0" : errname(errno), beyond, size);
	if (out)
		memcpy(out, buf, size);
}

static const struct {
	const char *name;
	unsigned long req;
} all_requests[] = {
	{"TCGETS", R_TCGETS},     {"TCSETS", R_TCSETS},       {"TCSETSW", R_TCSETSW},
	{"TCSETSF", R_TCSETSF},   {"TCGETA", R_TCGETA},       {"TCSETA", R_TCSETA},
	{"TCGETS2", R_TCGETS2},   {"TCSETS2", R_TCSETS2},     {"TCSBRK", R_TCSBRK},
	{"TCSBRKP", R_TCSBRKP},   {"TCXONC", R_TCXONC},       {"TCFLSH", R_TCFLSH},
	{"TIOCGPGRP", R_TIOCGPGRP}, {"TIOCSPGRP", R_TIOCSPGRP}, {"TIOCOUTQ", R_TIOCOUTQ},
	{"TIOCGWINSZ", R_TIOCGWINSZ}, {"TIOCSWINSZ", R_TIOCSWINSZ}, {"TIOCGSID", R_TIOCGSID},
	{"TIOCSCTTY", R_TIOCSCTTY}, {"TIOCNOTTY", R_TIOCNOTTY}, {"TIOCGETD", R_TIOCGETD},
};

/* Every request on a file that is no terminal: ENOTTY, nothing written. */
static void not_a_terminal(const char *what, int fd)
{
	for (size_t i = 0; i < sizeof all_requests / sizeof all_requests[0]; i++) {
		unsigned char buf[64] = {0};
		errno = 0;
		long r = syscall(SYS_ioctl, fd, all_requests[i].req, buf);
		int touched = 0;
		for (size_t j = 0; j < sizeof buf; j++)
			touched |= buf[j];
		printf("%s %s: %s%s\n", what, all_requests[i].name,
		       r == 0 ? "0" : errname(errno), touched ? " (buffer written)" : "");
	}
}

static void no_terminal(void)
{
	printf("isatty(0): %d\n", isatty(0));
	not_a_terminal("stdin", 0);
	int p[2];
	if (pipe(p) == 0) {
		not_a_terminal("pipe", p[0]);
		close(p[0]);
		close(p[1]);
	}
	char path[] = "/tmp/tty_ioctl_XXXXXX";
	int f = mkstemp(path);
	if (f >= 0) {
		unlink(path);
		not_a_terminal("file", f);
		close(f);
	}
	int s[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, s) == 0) {
		not_a_terminal("socket", s[0]);
		close(s[0]);
		close(s[1]);
	}
	int e = eventfd(0, 0);
	if (e >= 0) {
		not_a_terminal("eventfd", e);
		close(e);
	}
	struct termios t;
	ERRCALL("tcgetattr(stdin)", tcgetattr(0, &t));
	ERRCALL("tcgetpgrp(stdin)", tcgetpgrp(0));
}

static volatile int winches;
static void on_winch(int sig) { (void)sig; winches++; }

static void attributes(void)
{
	struct k_termios t;
	struct k_termios2 t2;
	struct k_termio to;
	get_guarded("TCGETS", R_TCGETS, sizeof t, &t);
	printf("termios: iflag %#x oflag %#x cflag %#x lflag %#x line %d\n", t.iflag, t.oflag,
	       t.cflag, t.lflag, t.line);
	printf("cc:");
	for (int i = 0; i < 19; i++)
		printf(" %d", t.cc[i]);
	printf("\n");
	get_guarded("TCGETS2", R_TCGETS2, sizeof t2, &t2);
	printf("termios2 speeds: %u %u, same flags: %d\n", t2.ispeed, t2.ospeed,
	       memcmp(&t2.t, &t, sizeof t) == 0);
	get_guarded("TCGETA", R_TCGETA, sizeof to, &to);
	printf("termio: lflag %#x same as termios: %d\n", to.lflag, to.lflag == (t.lflag & 0xffff));

	/* libc's own view (glibc converts from the kernel's structure). */
	struct termios lt;
	ERRCALL("tcgetattr", tcgetattr(0, &lt));
	printf("tcgetattr lflag matches: %d, ospeed %d\n", lt.c_lflag == t.lflag,
	       (int)cfgetospeed(&lt));

	/* Set and read back, in each form. */
	struct k_termios changed = t, back;
	changed.lflag &= ~(unsigned)ECHO;
	changed.cc[VMIN] = 3;
	show("TCSETS", kioctl(0, R_TCSETS, &changed));
	kioctl(0, R_TCGETS, &back);
	printf("TCSETS took: %d\n", !(back.lflag & ECHO) && back.cc[VMIN] == 3);
	show("TCSETSW", kioctl(0, R_TCSETSW, &t));
	kioctl(0, R_TCGETS, &back);
	printf("TCSETSW restored: %d\n", memcmp(&back, &t, sizeof t) == 0);
	show("TCSETSF", kioctl(0, R_TCSETSF, &changed));
	struct k_termios2 c2 = t2;
	c2.t.lflag &= ~(unsigned)ICANON;
	show("TCSETS2", kioctl(0, R_TCSETS2, &c2));
	kioctl(0, R_TCGETS, &back);
	printf("TCSETS2 took: %d\n", !(back.lflag & ICANON));
	struct k_termio co = to;
	co.lflag &= ~(unsigned short)ISIG;
	show("TCSETA", kioctl(0, R_TCSETA, &co));
	kioctl(0, R_TCGETS, &back);
	printf("TCSETA took: %d\n", !(back.lflag & ISIG));
	lt.c_lflag &= ~(tcflag_t)IEXTEN;
	ERRCALL("tcsetattr", tcsetattr(0, TCSANOW, &lt));
	kioctl(0, R_TCGETS, &back);
	printf("tcsetattr took: %d\n", !(back.lflag & IEXTEN));
	show("TCSETS restore", kioctl(0, R_TCSETS, &t));
	kioctl(0, R_TCGETS, &back);
	printf("restored: %d\n", memcmp(&back, &t, sizeof t) == 0);
}

static void window(void)
{
	struct k_winsize w, w2;
	get_guarded("TIOCGWINSZ", R_TIOCGWINSZ, sizeof w, &w);
	printf("winsize: %u rows %u cols\n", w.row, w.col);
	signal(SIGWINCH, on_winch);
	struct k_winsize big = {w.row + 6, w.col + 20, 0, 0};
	show("TIOCSWINSZ", kioctl(0, R_TIOCSWINSZ, &big));
	kioctl(0, R_TIOCGWINSZ, &w2);
	printf("new winsize: %u rows %u cols, SIGWINCH %d\n", w2.row, w2.col, winches);
	show("TIOCSWINSZ same", kioctl(0, R_TIOCSWINSZ, &big));
	printf("SIGWINCH after the same size: %d\n", winches);
	show("TIOCSWINSZ restore", kioctl(0, R_TIOCSWINSZ, &w));
	printf("SIGWINCH after restoring: %d\n", winches);
	signal(SIGWINCH, SIG_DFL);
}

static void queues(void)
{
	int n = -1;
	show("TCFLSH TCIFLUSH", kioctl(0, R_TCFLSH, (void *)(long)TCIFLUSH));
	/* Not TCOFLUSH or TCIOFLUSH: they would discard this program's own output that the
	 * other side of the terminal hasn't read yet. */
	show("TCFLSH 7", kioctl(0, R_TCFLSH, (void *)7L));
	show("TCXONC TCOON", kioctl(0, R_TCXONC, (void *)(long)TCOON));
	show("TCXONC 9", kioctl(0, R_TCXONC, (void *)9L));
	show("TCSBRK 1 (drain)", kioctl(0, R_TCSBRK, (void *)1L));
	ERRCALL("tcdrain", tcdrain(0));
	show("TIOCOUTQ", kioctl(0, R_TIOCOUTQ, &n));
	n = -1;
	show("FIONREAD", kioctl(0, R_FIONREAD, &n));
	printf("FIONREAD: %d bytes\n", n);
	n = -1;
	show("TIOCGETD", kioctl(0, R_TIOCGETD, &n));
	printf("line discipline: %d\n", n);
}

static void bad_pointers(void)
{
	show("TCGETS NULL", kioctl(0, R_TCGETS, NULL));
	show("TCGETS unmapped", kioctl(0, R_TCGETS, (void *)8));
	show("TCGETS2 kernel address", kioctl(0, R_TCGETS2, (void *)0xffffffff81000000UL));
	show("TCSETS NULL", kioctl(0, R_TCSETS, NULL));
	show("TCSETS2 unmapped", kioctl(0, R_TCSETS2, (void *)8));
	show("TIOCGWINSZ NULL", kioctl(0, R_TIOCGWINSZ, NULL));
	show("TIOCSWINSZ NULL", kioctl(0, R_TIOCSWINSZ, NULL));
	show("TIOCGPGRP NULL", kioctl(0, R_TIOCGPGRP, NULL));
	show("TIOCSPGRP NULL", kioctl(0, R_TIOCSPGRP, NULL));
	show("TIOCGSID NULL", kioctl(0, R_TIOCGSID, NULL));
	show("TIOCOUTQ NULL", kioctl(0, R_TIOCOUTQ, NULL));
}

/* Runs `job` in a child leading a new background group of the session, and describes
 * how it ended: exited, or stopped (then it is killed). */
static const char *in_background(void (*job)(void))
{
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		setpgid(0, 0);
		job();
		fflush(stdout);
		_exit(0);
	}
	setpgid(c, c);
	int st, end;
	waitpid(c, &st, WUNTRACED);
	if (WIFSTOPPED(st)) {
		kill(c, SIGKILL);
		waitpid(c, &end, 0);
	}
	return wait_status(st);
}

static void bg_tcsets(void)
{
	struct k_termios t;
	kioctl(0, R_TCGETS, &t);
	kioctl(0, R_TCSETS, &t);
}

static void bg_read(void)
{
	char ch;
	read(0, &ch, 1);
}

static void bg_read_ignoring(void)
{
	signal(SIGTTIN, SIG_IGN);
	char ch;
	errno = 0;
	long r = read(0, &ch, 1);
	printf("read: %s\n", r < 0 ? errname(errno) : "data");
}

static void bg_write(void)
{
	static const char msg[] = "a background write\n";
	write(1, msg, sizeof msg - 1);
}

static void sessions(void)
{
	pid_t fg = -1, sid = -1;
	show("TIOCGPGRP", kioctl(0, R_TIOCGPGRP, &fg));
	show("TIOCGSID", kioctl(0, R_TIOCGSID, &sid));
	printf("leader: %d, foreground is mine: %d, session is mine: %d, tcgetpgrp: %d\n",
	       getsid(0) == getpid(), fg == getpgrp(), sid == getsid(0),
	       tcgetpgrp(0) == getpgrp());
	pid_t me = getpgrp(), none = 0x3ffffff0, neg = -5;
	show("TIOCSPGRP mine", kioctl(0, R_TIOCSPGRP, &me));
	show("TIOCSPGRP no such group", kioctl(0, R_TIOCSPGRP, &none));
	show("TIOCSPGRP negative", kioctl(0, R_TIOCSPGRP, &neg));
	show("TIOCSCTTY (already mine)", kioctl(0, R_TIOCSCTTY, 0));
	fflush(stdout);

	/* A child in a background group that changes the terminal is stopped by SIGTTOU. */
	printf("background TCSETS: %s\n", in_background(bg_tcsets));
	int st;
	pid_t c;

	/* Ignoring SIGTTOU, a background child may change the terminal, and take the
	 * foreground (as a shell's child does before exec); the parent's group is then in the
	 * background and orphaned (its parent is outside the session): no stop, EIO. */
	int go[2], done[2];
	if (pipe(go) || pipe(done))
		return;
	fflush(stdout);
	c = fork();
	if (c == 0) {
		setpgid(0, 0);
		signal(SIGTTOU, SIG_IGN);
		struct k_termios t;
		kioctl(0, R_TCGETS, &t);
		pid_t f = -1, mine = getpgrp();
		long r1 = kioctl(0, R_TCSETS, &t);
		kioctl(0, R_TIOCGPGRP, &f);
		long r2 = kioctl(0, R_TIOCSPGRP, &mine);
		printf("child: TCSETS %ld, foreground was the parent's: %d, TIOCSPGRP %ld\n", r1,
		       f == getppid(), r2);
		fflush(stdout);
		write(done[1], "x", 1);
		char b;
		read(go[0], &b, 1);
		_exit(0);
	}
	setpgid(c, c);
	char b;
	read(done[0], &b, 1);
	pid_t f = -1;
	kioctl(0, R_TIOCGPGRP, &f);
	printf("foreground is the child's group: %d\n", f == c);
	struct k_termios t;
	kioctl(0, R_TCGETS, &t);
	show("orphaned background TCSETS", kioctl(0, R_TCSETS, &t));
	show("orphaned background TIOCSPGRP", kioctl(0, R_TIOCSPGRP, &me));
	show("orphaned background TCGETS", kioctl(0, R_TCGETS, &t));
	signal(SIGTTOU, SIG_IGN);
	show("TIOCSPGRP back, SIGTTOU ignored", kioctl(0, R_TIOCSPGRP, &me));
	signal(SIGTTOU, SIG_DFL);
	kioctl(0, R_TIOCGPGRP, &f);
	printf("foreground is mine again: %d\n", f == getpgrp());
	write(go[1], "x", 1);
	waitpid(c, &st, 0);
	printf("child: %s\n", wait_status(st));
	fflush(stdout);

	/* Background reads and writes: SIGTTIN stops a reader (ignored: the read is EIO); a
	 * write goes out unless TOSTOP is set, and then SIGTTOU stops the writer. */
	printf("background read: %s\n", in_background(bg_read));
	printf("background read, SIGTTIN ignored: %s\n", in_background(bg_read_ignoring));
	printf("background write: %s\n", in_background(bg_write));
	struct k_termios tostop;
	kioctl(0, R_TCGETS, &t);
	tostop = t;
	tostop.lflag |= TOSTOP;
	show("TCSETS TOSTOP", kioctl(0, R_TCSETS, &tostop));
	printf("background write with TOSTOP: %s\n", in_background(bg_write));
	show("TCSETS restore", kioctl(0, R_TCSETS, &t));

	/* A child that drops its controlling terminal; one in a new session. */
	c = fork();
	if (c == 0) {
		pid_t x;
		long r1 = kioctl(0, R_TIOCNOTTY, 0);
		long r2 = kioctl(0, R_TIOCGPGRP, &x);
		int e2 = errno;
		long r3 = kioctl(0, R_TCGETS, &t);
		printf("TIOCNOTTY: %ld, then TIOCGPGRP %s, TCGETS %ld\n", r1,
		       r2 ? errname(e2) : "0", r3);
		fflush(stdout);
		_exit(0);
	}
	waitpid(c, &st, 0);
	c = fork();
	if (c == 0) {
		pid_t x;
		setsid();
		long r1 = kioctl(0, R_TIOCGPGRP, &x);
		int e1 = errno;
		long r2 = kioctl(0, R_TIOCGSID, &x);
		int e2 = errno;
		long r3 = kioctl(0, R_TIOCSCTTY, 0);
		int e3 = errno;
		long r4 = kioctl(0, R_TIOCNOTTY, 0);
		int e4 = errno;
		printf("new session: TIOCGPGRP %s, TIOCGSID %s, TIOCSCTTY %s, TIOCNOTTY %s\n",
		       r1 ? errname(e1) : "0", r2 ? errname(e2) : "0", r3 ? errname(e3) : "0",
		       r4 ? errname(e4) : "0");
		fflush(stdout);
		_exit(0);
	}
	waitpid(c, &st, 0);
	kioctl(0, R_TIOCGPGRP, &f);
	printf("still the foreground: %d\n", f == getpgrp());
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!isatty(0)) {
		no_terminal();
		return 0;
	}
	printf("isatty: %d %d %d\n", isatty(0), isatty(1), isatty(2));
	attributes();
	window();
	queues();
	bad_pointers();
	sessions();
	return 0;
}
