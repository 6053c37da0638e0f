/* splice, tee and vmsplice: pipe to pipe, pipe to file and file to pipe
 * (at the file offset and at an explicit offset, which moves instead of the
 * file offset), devices, EOF, SPLICE_F_NONBLOCK and O_NONBLOCK, and the
 * error cases. Files live in a fresh /tmp/fsconf-XXXXXX. SIGPIPE is ignored
 * so that EPIPE shows. */
#define CONF_FS
#include "conf.h"
#include <signal.h>
#include <sys/uio.h>

static void show_pipe(const char *label, int fd)
{
	char buf[256];
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	ssize_t n = read(fd, buf, sizeof buf);
	fcntl(fd, F_SETFL, fl);
	if (n < 0)
		printf("%s: -1 errno=%s\n", label, errname(errno));
	else
		fs_print_bytes(label, buf, n);
}

static void show_file(const char *label, const char *path)
{
	fs_cat(label, path);
}

static void pipe_to_pipe(void)
{
	int a[2], b[2];
	CHECK("pipes", pipe(a) == 0 && pipe(b) == 0);
	write(a[1], "hello world", 11);
	NUMCALL("splice 5 a->b", splice(a[0], NULL, b[1], NULL, 5, 0));
	show_pipe("  b", b[0]);
	NUMCALL("tee 100 a->b", tee(a[0], b[1], 100, 0));
	show_pipe("  b", b[0]);
	NUMCALL("tee 3 a->b", tee(a[0], b[1], 3, 0));
	NUMCALL("splice 100 a->b", splice(a[0], NULL, b[1], NULL, 100, SPLICE_F_MOVE | SPLICE_F_MORE));
	show_pipe("  b", b[0]);
	show_pipe("  a", a[0]);
	NUMCALL("splice from empty, NONBLOCK", splice(a[0], NULL, b[1], NULL, 10, SPLICE_F_NONBLOCK));
	NUMCALL("tee from empty, NONBLOCK", tee(a[0], b[1], 10, SPLICE_F_NONBLOCK));
	fcntl(a[0], F_SETFL, O_NONBLOCK);
	NUMCALL("splice from empty O_NONBLOCK pipe", splice(a[0], NULL, b[1], NULL, 10, 0));
	NUMCALL("tee from empty O_NONBLOCK pipe", tee(a[0], b[1], 10, 0));
	fcntl(a[0], F_SETFL, 0);
	/* A full output pipe. */
	fcntl(b[1], F_SETFL, O_NONBLOCK);
	static char big[4096];
	while (write(b[1], big, sizeof big) > 0)
		;
	write(a[1], "z", 1);
	NUMCALL("splice into a full O_NONBLOCK pipe", splice(a[0], NULL, b[1], NULL, 1, 0));
	NUMCALL("tee into a full O_NONBLOCK pipe", tee(a[0], b[1], 1, 0));
	fcntl(b[1], F_SETFL, 0);
	fcntl(b[0], F_SETFL, O_NONBLOCK);
	while (read(b[0], big, sizeof big) > 0)
		;
	fcntl(b[0], F_SETFL, 0);
	NUMCALL("splice z", splice(a[0], NULL, b[1], NULL, 1, 0));
	show_pipe("  b", b[0]);
	close(a[1]);
	NUMCALL("splice at EOF", splice(a[0], NULL, b[1], NULL, 10, 0));
	NUMCALL("tee at EOF", tee(a[0], b[1], 10, 0));
	close(a[0]);
	CHECK("pipe", pipe(a) == 0);
	write(a[1], "q", 1);
	close(b[0]);
	NUMCALL("splice to a pipe without reader", splice(a[0], NULL, b[1], NULL, 1, 0));
	NUMCALL("tee to a pipe without reader", tee(a[0], b[1], 1, 0));
	close(b[1]);
	close(a[0]);
	close(a[1]);
}

static void pipe_to_file(void)
{
	int p[2];
	CHECK("pipe", pipe(p) == 0);
	int fd = open("out", O_RDWR | O_CREAT | O_TRUNC, 0644);
	write(p[1], "abcdef", 6);
	NUMCALL("splice 3 to the file offset", splice(p[0], NULL, fd, NULL, 3, 0));
	NUMCALL("  file offset", lseek(fd, 0, SEEK_CUR));
	loff_t off = 10;
	NUMCALL("splice 100 at offset 10", splice(p[0], NULL, fd, &off, 100, 0));
	printf("  off: %lld\n", (long long)off);
	NUMCALL("  file offset", lseek(fd, 0, SEEK_CUR));
	struct stat st;
	fstat(fd, &st);
	printf("  size: %lld\n", (long long)st.st_size);
	char buf[32];
	ssize_t n = pread(fd, buf, sizeof buf, 0);
	fs_print_bytes("  content", buf, n);
	NUMCALL("splice empty pipe, NONBLOCK", splice(p[0], NULL, fd, NULL, 3, SPLICE_F_NONBLOCK));
	int nul = open("/dev/null", O_WRONLY);
	write(p[1], "gone", 4);
	NUMCALL("splice to /dev/null", splice(p[0], NULL, nul, NULL, 100, 0));
	show_pipe("  pipe after", p[0]);
	close(nul);
	int app = open("app", O_WRONLY | O_CREAT | O_APPEND, 0644);
	write(p[1], "x", 1);
	NUMCALL("splice to O_APPEND file", splice(p[0], NULL, app, NULL, 1, 0));
	close(app);
	int ro = open("out", O_RDONLY);
	NUMCALL("splice to read-only fd", splice(p[0], NULL, ro, NULL, 1, 0));
	close(ro);
	off = -1;
	NUMCALL("splice at offset -1", splice(p[0], NULL, fd, &off, 1, 0));
	NUMCALL("splice with unmapped off_out", splice(p[0], NULL, fd, (loff_t *)16, 1, 0));
	NUMCALL("splice with off_in on a pipe", splice(p[0], &off, fd, NULL, 1, 0));
	close(p[1]);
	NUMCALL("splice drains", splice(p[0], NULL, fd, NULL, 100, 0));
	NUMCALL("splice at EOF", splice(p[0], NULL, fd, NULL, 100, 0));
	close(p[0]);
	close(fd);
	show_file("out", "out");
}

static void file_to_pipe(void)
{
	int p[2];
	CHECK("pipe", pipe(p) == 0);
	fs_put("in", "0123456789");
	int fd = open("in", O_RDONLY);
	NUMCALL("splice 4 from the file offset", splice(fd, NULL, p[1], NULL, 4, 0));
	NUMCALL("  file offset", lseek(fd, 0, SEEK_CUR));
	loff_t off = 6;
	NUMCALL("splice 100 from offset 6", splice(fd, &off, p[1], NULL, 100, 0));
	printf("  off: %lld\n", (long long)off);
	NUMCALL("  file offset", lseek(fd, 0, SEEK_CUR));
	show_pipe("  pipe", p[0]);
	NUMCALL("splice at EOF (offset 10)", splice(fd, &off, p[1], NULL, 100, 0));
	off = -5;
	NUMCALL("splice from offset -5", splice(fd, &off, p[1], NULL, 1, 0));
	NUMCALL("splice with off_out on a pipe", splice(fd, NULL, p[1], &off, 1, 0));
	NUMCALL("splice with unmapped off_in", splice(fd, (loff_t *)16, p[1], NULL, 1, 0));
	int zero = open("/dev/zero", O_RDONLY);
	NUMCALL("splice 100 from /dev/zero", splice(zero, NULL, p[1], NULL, 100, 0));
	char buf[128];
	NUMCALL("  read", read(p[0], buf, sizeof buf));
	close(zero);
	int dir = open(".", O_RDONLY | O_DIRECTORY);
	NUMCALL("splice from a directory", splice(dir, NULL, p[1], NULL, 1, 0));
	close(dir);
	int wo = open("in", O_WRONLY);
	NUMCALL("splice from a write-only fd", splice(wo, NULL, p[1], NULL, 1, 0));
	close(wo);
	int other = open("out2", O_RDWR | O_CREAT, 0644);
	NUMCALL("splice file to file", splice(fd, NULL, other, NULL, 1, 0));
	close(other);
	close(p[0]);
	NUMCALL("splice to a pipe without reader", splice(fd, NULL, p[1], NULL, 1, 0));
	close(p[1]);
	close(fd);
}

static void errors(void)
{
	int p[2];
	CHECK("pipe", pipe(p) == 0);
	write(p[1], "x", 1);
	NUMCALL("splice len 0, bad fds", splice(999, NULL, 998, NULL, 0, 0));
	NUMCALL("splice len 0, bad flags", splice(999, NULL, 998, NULL, 0, 0x10));
	NUMCALL("splice bad flags", splice(p[0], NULL, p[1], NULL, 1, 0x10));
	NUMCALL("splice bad fd_in", splice(999, NULL, p[1], NULL, 1, 0));
	NUMCALL("splice bad fd_out", splice(p[0], NULL, 999, NULL, 1, 0));
	NUMCALL("splice within one pipe", splice(p[0], NULL, p[1], NULL, 1, 0));
	NUMCALL("splice write end to read end", splice(p[1], NULL, p[0], NULL, 1, 0));
	NUMCALL("tee len 0, bad fds", tee(999, 998, 0, 0));
	NUMCALL("tee len 0, bad flags", tee(999, 998, 0, 0x10));
	NUMCALL("tee bad fd", tee(999, p[1], 1, 0));
	NUMCALL("tee within one pipe", tee(p[0], p[1], 1, 0));
	int fd = open("t", O_RDWR | O_CREAT, 0644);
	NUMCALL("tee to a file", tee(p[0], fd, 1, 0));
	NUMCALL("tee from a file", tee(fd, p[1], 1, 0));
	int path = open(".", O_PATH);
	NUMCALL("splice from O_PATH", splice(path, NULL, p[1], NULL, 1, 0));
	close(path);
	close(fd);
	close(p[0]);
	close(p[1]);
}

static void vm(void)
{
	int p[2];
	CHECK("pipe", pipe(p) == 0);
	char a[] = "vm", b[] = "splice";
	struct iovec in[2] = { { a, 2 }, { b, 6 } };
	NUMCALL("vmsplice to pipe", vmsplice(p[1], in, 2, 0));
	char x[3], y[16];
	struct iovec out[2] = { { x, 3 }, { y, sizeof y } };
	NUMCALL("vmsplice from pipe", vmsplice(p[0], out, 2, 0));
	fs_print_bytes("  x", x, 3);
	fs_print_bytes("  y", y, 5);
	NUMCALL("vmsplice from empty, NONBLOCK", vmsplice(p[0], out, 2, SPLICE_F_NONBLOCK));
	NUMCALL("vmsplice nothing", vmsplice(p[0], out, 0, 0));
	NUMCALL("vmsplice bad flags", vmsplice(p[1], in, 2, 0x10));
	NUMCALL("vmsplice bad fd", vmsplice(999, in, 2, 0));
	NUMCALL("vmsplice unmapped iovec", vmsplice(p[1], (struct iovec *)16, 2, 0));
	NUMCALL("vmsplice 1025 segments", vmsplice(p[1], in, 1025, 0));
	int fd = open("v", O_RDWR | O_CREAT, 0644);
	NUMCALL("vmsplice to a file", vmsplice(fd, in, 2, 0));
	close(fd);
	fcntl(p[1], F_SETFL, O_NONBLOCK);
	static char big[4096];
	while (write(p[1], big, sizeof big) > 0)
		;
	/* vmsplice heeds SPLICE_F_NONBLOCK only, not O_NONBLOCK. */
	NUMCALL("vmsplice to a full pipe, NONBLOCK", vmsplice(p[1], in, 2, SPLICE_F_NONBLOCK));
	close(p[0]);
	NUMCALL("vmsplice to a pipe without reader", vmsplice(p[1], in, 2, 0));
	close(p[1]);
}

/* With SIGPIPE at its default action, EPIPE from the splice family kills. */
static int die_of_sigpipe(const char *how)
{
	int p[2], q[2];
	pipe(p);
	pipe(q);
	write(p[1], "x", 1);
	close(q[0]);
	printf("%s to a pipe without reader\n", how);
	if (!strcmp(how, "splice"))
		splice(p[0], NULL, q[1], NULL, 1, 0);
	else if (!strcmp(how, "tee"))
		tee(p[0], q[1], 1, 0);
	else {
		struct iovec iov = { "x", 1 };
		vmsplice(q[1], &iov, 1, 0);
	}
	printf("still alive\n");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1)
		return die_of_sigpipe(argv[1]);
	signal(SIGPIPE, SIG_IGN);
	fs_enter();
	pipe_to_pipe();
	pipe_to_file();
	file_to_pipe();
	errors();
	vm();
	fs_leave();
	return 0;
}
