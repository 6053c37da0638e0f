/* Files and descriptors as Linux has them (issue 14 item 7): opening FIFOs (O_RDWR at once,
 * O_RDONLY|O_NONBLOCK, O_WRONLY|O_NONBLOCK's ENXIO without a reader, blocking opens that meet),
 * fstatfs on pipes, sockets and anonymous files, F_GETFL of an O_PATH descriptor, file owners
 * (F_SETOWN, F_GETOWN, F_SETOWN_EX, F_GETOWN_EX) with SIGIO and F_SETSIG delivery on pipes and
 * sockets, O_NOATIME's ownership rule, ETXTBSY both ways, and /proc/sys/fs/pipe-*.
 *
 * Works in a fresh /tmp/fsconf-XXXXXX. */
#define CONF_FS
#include "conf.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <poll.h>

static void fifos(void)
{
	CHECK("mkfifo", mkfifo("f", 0600) == 0);
	ERRCALL("open O_WRONLY|O_NONBLOCK, no reader", open("f", O_WRONLY | O_NONBLOCK));
	int rw = open("f", O_RDWR);
	CHECK("open O_RDWR", rw >= 0);
	CHECK("write through O_RDWR", write(rw, "abc", 3) == 3);
	char buf[16] = {0};
	CHECK("read back through O_RDWR", read(rw, buf, sizeof buf) == 3 && !memcmp(buf, "abc", 3));
	int r = open("f", O_RDONLY | O_NONBLOCK);
	CHECK("open O_RDONLY|O_NONBLOCK", r >= 0);
	int w = open("f", O_WRONLY | O_NONBLOCK);
	CHECK("open O_WRONLY|O_NONBLOCK with a reader", w >= 0);
	CHECK("write", write(w, "xyz", 3) == 3);
	CHECK("read by the other opener", read(r, buf, sizeof buf) == 3 && !memcmp(buf, "xyz", 3));
	ERRCALL("empty nonblocking read", read(r, buf, 1));
	struct stat st;
	CHECK("fstat is a fifo", fstat(r, &st) == 0 && S_ISFIFO(st.st_mode));
	int fl = fcntl(r, F_GETFL);
	printf("F_GETFL of O_RDONLY|O_NONBLOCK fifo: acc %d nonblock %d\n", fl & O_ACCMODE,
	       !!(fl & O_NONBLOCK));
	close(w);
	close(rw);
	CHECK("EOF once the writers are gone", read(r, buf, 1) == 0);
	close(r);

	/* Blocking opens meet: the reader waits for a writer. */
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		int fd = open("f", O_RDONLY);
		char b[8] = {0};
		int n = fd >= 0 ? (int)read(fd, b, sizeof b) : -1;
		_exit(n == 5 && !memcmp(b, "hello", 5) ? 0 : 1);
	}
	usleep(50000);
	int wf = open("f", O_WRONLY);
	CHECK("blocking O_WRONLY open meets the reader", wf >= 0);
	CHECK("write hello", write(wf, "hello", 5) == 5);
	close(wf);
	int s;
	waitpid(c, &s, 0);
	printf("blocking reader: %s\n", wait_status(s));

	/* And the writer waits for a reader. */
	fflush(stdout);
	c = fork();
	if (c == 0) {
		int fd = open("f", O_WRONLY);
		_exit(fd >= 0 && write(fd, "bye", 3) == 3 ? 0 : 1);
	}
	usleep(50000);
	int rf = open("f", O_RDONLY);
	CHECK("blocking O_RDONLY open meets the writer", rf >= 0);
	waitpid(c, &s, 0);
	printf("blocking writer: %s\n", wait_status(s));
	CHECK("read bye", read(rf, buf, sizeof buf) == 3 && !memcmp(buf, "bye", 3));
	close(rf);
	unlink("f");
}

static void statfs_kinds(void)
{
	struct statfs sf;
	int p[2];
	pipe(p);
	CHECK("fstatfs pipe", fstatfs(p[0], &sf) == 0);
	printf("pipe f_type %#lx\n", (unsigned long)sf.f_type);
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	CHECK("fstatfs socket", fstatfs(sv[0], &sf) == 0);
	printf("socket f_type %#lx\n", (unsigned long)sf.f_type);
	int e = eventfd(0, 0);
	CHECK("fstatfs eventfd", fstatfs(e, &sf) == 0);
	printf("eventfd f_type %#lx\n", (unsigned long)sf.f_type);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
	close(e);
}

static void opath(void)
{
	int fd = open(".", O_PATH);
	int fl = fcntl(fd, F_GETFL);
	printf("O_PATH F_GETFL: path %d acc %d\n", !!(fl & O_PATH), fl & 3);
	ERRCALL("read on O_PATH", read(fd, &fl, 1));
	close(fd);
}

static volatile sig_atomic_t got_sig, got_code, got_fd_ok, got_band_in;
static int want_fd;

static void on_sig(int sig, siginfo_t *si, void *ctx)
{
	(void)ctx;
	got_sig = sig;
	got_code = si->si_code;
	got_fd_ok = si->si_fd == want_fd;
	got_band_in = !!(si->si_band & POLLIN);
}

/* Sets up async I/O on rd (fd to watch) and writes to wr; prints what arrived. */
static void async_case(const char *what, int rd, int wr, int setsig)
{
	got_sig = got_code = got_fd_ok = got_band_in = 0;
	want_fd = rd;
	CHECK("F_SETOWN", fcntl(rd, F_SETOWN, getpid()) == 0);
	if (setsig)
		CHECK("F_SETSIG", fcntl(rd, F_SETSIG, SIGRTMIN + 1) == 0);
	printf("%s F_GETSIG: %s\n", what,
	       fcntl(rd, F_GETSIG) == (setsig ? SIGRTMIN + 1 : 0) ? "as set" : "wrong");
	CHECK("O_ASYNC", fcntl(rd, F_SETFL, fcntl(rd, F_GETFL) | O_ASYNC) == 0);
	printf("%s F_GETFL has O_ASYNC: %d\n", what, !!(fcntl(rd, F_GETFL) & O_ASYNC));
	CHECK("write", write(wr, "x", 1) == 1);
	for (int i = 0; i < 200 && !got_sig; i++)
		usleep(1000);
	if (setsig)
		printf("%s: sig %s code %d fd %s band-in %d\n", what,
		       got_sig == SIGRTMIN + 1 ? "SIGRTMIN+1" : "other", got_code,
		       got_fd_ok ? "right" : "wrong", got_band_in);
	else
		printf("%s: sig %s\n", what, got_sig == SIGIO ? "SIGIO" : got_sig ? "other" : "none");
}

static void owners(void)
{
	struct sigaction sa = {0};
	sa.sa_sigaction = on_sig;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(SIGIO, &sa, NULL);
	sigaction(SIGRTMIN + 1, &sa, NULL);

	int p[2];
	pipe(p);
	printf("F_GETOWN fresh: %d\n", fcntl(p[0], F_GETOWN));
	CHECK("F_SETOWN pid", fcntl(p[0], F_SETOWN, getpid()) == 0);
	CHECK("F_GETOWN pid", fcntl(p[0], F_GETOWN) == getpid());
	CHECK("F_SETOWN -pgrp", fcntl(p[0], F_SETOWN, -getpgrp()) == 0);
	CHECK("F_GETOWN -pgrp", fcntl(p[0], F_GETOWN) == -getpgrp());
	struct f_owner_ex ex;
	CHECK("F_GETOWN_EX", fcntl(p[0], F_GETOWN_EX, &ex) == 0);
	printf("F_GETOWN_EX type %d pid-is-pgrp %d\n", ex.type, ex.pid == getpgrp());
	ex.type = F_OWNER_TID;
	ex.pid = (pid_t)syscall(SYS_gettid);
	CHECK("F_SETOWN_EX tid", fcntl(p[0], F_SETOWN_EX, &ex) == 0);
	struct f_owner_ex ex2 = {0};
	fcntl(p[0], F_GETOWN_EX, &ex2);
	printf("F_GETOWN_EX after tid: type %d same %d\n", ex2.type, ex2.pid == ex.pid);
	ex.type = 99;
	ERRCALL("F_SETOWN_EX bad type", fcntl(p[0], F_SETOWN_EX, &ex));
	ex.type = F_OWNER_PID;
	ex.pid = 999999;
	ERRCALL("F_SETOWN_EX missing pid", fcntl(p[0], F_SETOWN_EX, &ex));
	ERRCALL("F_SETSIG bad", fcntl(p[0], F_SETSIG, 65));
	CHECK("F_SETOWN 0", fcntl(p[0], F_SETOWN, 0) == 0);
	close(p[0]);
	close(p[1]);

	pipe(p);
	async_case("pipe SIGIO", p[0], p[1], 0);
	close(p[0]);
	close(p[1]);
	pipe(p);
	async_case("pipe F_SETSIG", p[0], p[1], 1);
	close(p[0]);
	close(p[1]);
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	async_case("socket SIGIO", sv[0], sv[1], 0);
	close(sv[0]);
	close(sv[1]);
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	async_case("socket F_SETSIG", sv[0], sv[1], 1);
	close(sv[0]);
	close(sv[1]);
	signal(SIGIO, SIG_DFL);
}

static void noatime(void)
{
	int fd = open("mine", O_CREAT | O_WRONLY, 0644);
	close(fd);
	chown("mine", 0, 0);
	fd = open("theirs", O_CREAT | O_WRONLY, 0644);
	close(fd);
	chown("theirs", 0, 0);
	chown(".", 65534, 65534);
	fd = open("mine", O_RDONLY | O_NOATIME);
	CHECK("O_NOATIME as root", fd >= 0);
	close(fd);
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(9);
		int a = open("theirs", O_RDONLY | O_NOATIME);
		int ea = errno;
		int b = open("own", O_CREAT | O_RDONLY | O_NOATIME, 0644);
		int x = open("theirs", O_RDONLY);
		int y = fcntl(x, F_SETFL, O_NOATIME);
		int ey = errno;
		printf("unprivileged O_NOATIME on another's: %s\n", a < 0 ? errname(ea) : "opened");
		printf("unprivileged O_NOATIME on own: %s\n", b >= 0 ? "ok" : errname(errno));
		printf("unprivileged F_SETFL O_NOATIME on another's: %s\n", y < 0 ? errname(ey) : "ok");
		fflush(stdout);
		_exit(0);
	}
	int s;
	waitpid(c, &s, 0);
	printf("noatime child: %s\n", wait_status(s));
	chown(".", 0, 0);
}

/* Copies this program to NAME, executable. */
static int copy_self(const char *name)
{
	int in = open("/proc/self/exe", O_RDONLY);
	int out = open(name, O_CREAT | O_WRONLY | O_TRUNC, 0755);
	char b[65536];
	ssize_t n;
	while ((n = read(in, b, sizeof b)) > 0)
		if (write(out, b, n) != n)
			return -1;
	close(in);
	return out;
}

static void txtbsy(void)
{
	int out = copy_self("prog");
	/* Executing a file open for writing. */
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		char *argv[] = {"prog", "sleep", NULL};
		execv("./prog", argv);
		_exit(errno == ETXTBSY ? 42 : 43);
	}
	int s;
	waitpid(c, &s, 0);
	printf("exec while open for writing: %s\n", wait_status(s));
	close(out);
	/* Opening a running program for writing. */
	int p[2];
	pipe(p);
	fflush(stdout);
	c = fork();
	if (c == 0) {
		dup2(p[0], 0);
		close(p[1]);
		char *argv[] = {"prog", "sleep", NULL};
		execv("./prog", argv);
		_exit(44);
	}
	close(p[0]);
	usleep(100000);
	int fd = -1;
	for (int i = 0; i < 50; i++) {
		fd = open("prog", O_WRONLY);
		if (fd < 0 && errno == ETXTBSY)
			break;
		if (fd >= 0)
			close(fd);
		usleep(20000);
	}
	printf("open running program O_WRONLY: %s\n", fd < 0 ? errname(errno) : "opened");
	ERRCALL("truncate running program", truncate("prog", 0));
	fd = open("prog", O_RDONLY);
	CHECK("open running program O_RDONLY", fd >= 0);
	close(fd);
	close(p[1]);
	waitpid(c, &s, 0);
	printf("program: %s\n", wait_status(s));
	fd = open("prog", O_WRONLY);
	CHECK("open O_WRONLY after it ended", fd >= 0);
	close(fd);
	unlink("prog");
}

static void proc_sys(void)
{
	const char *names[] = {"pipe-max-size", "pipe-user-pages-hard", "pipe-user-pages-soft"};
	for (int i = 0; i < 3; i++) {
		char path[128], b[64] = {0};
		snprintf(path, sizeof path, "/proc/sys/fs/%s", names[i]);
		int fd = open(path, O_RDONLY);
		int n = fd >= 0 ? (int)read(fd, b, sizeof b - 1) : -1;
		printf("%s: %s", names[i], n > 0 ? b : "missing\n");
		close(fd);
	}
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "sleep")) {
		char c;
		read(0, &c, 1);
		return 0;
	}
	fs_enter();
	fifos();
	statfs_kinds();
	opath();
	owners();
	noatime();
	txtbsy();
	proc_sys();
	fs_leave();
	return 0;
}
