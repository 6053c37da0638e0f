/* sendfile(2): from a regular file to a file, a pipe and /dev/null; the
 * offset pointer (used and updated, the input's file offset left alone) and
 * the file offsets otherwise; EOF, clamping, and the errors. Works in a fresh
 * /tmp/fsconf-XXXXXX. */
#define CONF_FS
#include "conf.h"
#include <sys/sendfile.h>

#define SIZE 10000

static char src_data[SIZE];

static void show_file(const char *label, const char *path)
{
	static char buf[4 * SIZE];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	long n = read(fd, buf, sizeof buf);
	close(fd);
	printf("%s: size=%ld fnv=%016llx\n", label, n, (unsigned long long)fnv1a(buf, n > 0 ? n : 0, 0));
}

static long off_of(int fd)
{
	return lseek(fd, 0, SEEK_CUR);
}

int main(void)
{
	fs_enter();
	for (int i = 0; i < SIZE; i++)
		src_data[i] = (char)rng();
	int src = open("src", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	write(src, src_data, SIZE);
	lseek(src, 0, SEEK_SET);
	int dst = open("dst", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	printf("-- file offsets\n");
	NUMCALL("sendfile 4096", sendfile(dst, src, NULL, 4096));
	NUMCALL("  src offset", off_of(src));
	NUMCALL("  dst offset", off_of(dst));
	NUMCALL("sendfile 0 bytes", sendfile(dst, src, NULL, 0));
	NUMCALL("sendfile the rest and more", sendfile(dst, src, NULL, 1 << 20));
	NUMCALL("  src offset", off_of(src));
	NUMCALL("sendfile at EOF", sendfile(dst, src, NULL, 100));
	show_file("dst is a copy", "dst");
	printf("src fnv=%016llx\n", (unsigned long long)fnv1a(src_data, SIZE, 0));

	printf("-- offset pointer\n");
	lseek(src, 123, SEEK_SET);
	off_t off = 100;
	NUMCALL("sendfile 50 at 100", sendfile(dst, src, &off, 50));
	printf("  off=%lld\n", (long long)off);
	NUMCALL("  src offset unchanged", off_of(src));
	off = 9990;
	NUMCALL("sendfile 100 at 9990", sendfile(dst, src, &off, 100));
	printf("  off=%lld\n", (long long)off);
	off = 20000;
	NUMCALL("sendfile past EOF", sendfile(dst, src, &off, 100));
	printf("  off=%lld\n", (long long)off);
	off = -1;
	NUMCALL("sendfile at -1", sendfile(dst, src, &off, 10));
	printf("  off=%lld\n", (long long)off);
	NUMCALL("sendfile bad offset pointer", syscall(SYS_sendfile, dst, src, (void *)8, 10));
	NUMCALL("  src offset unchanged", off_of(src));
	show_file("dst after", "dst");

	printf("-- into a pipe and /dev/null\n");
	int p[2];
	pipe(p);
	off = 5000;
	NUMCALL("sendfile 1000 into a pipe", sendfile(p[1], src, &off, 1000));
	static char buf[2000];
	NUMCALL("read it back", read(p[0], buf, sizeof buf));
	CHECK("pipe bytes match", memcmp(buf, src_data + 5000, 1000) == 0);
	int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	off = 0;
	NUMCALL("sendfile to /dev/null", sendfile(null, src, &off, SIZE));
	printf("  off=%lld\n", (long long)off);

	printf("-- errors\n");
	int wronly = open("src", O_WRONLY | O_CLOEXEC), rdonly = open("dst", O_RDONLY | O_CLOEXEC);
	int app = open("app", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	int path = open("src", O_PATH | O_CLOEXEC);
	int dir = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	off = 0;
	NUMCALL("in_fd write-only", sendfile(dst, wronly, &off, 10));
	NUMCALL("out_fd read-only", sendfile(rdonly, src, &off, 10));
	NUMCALL("in_fd bad", sendfile(dst, 9999, &off, 10));
	NUMCALL("out_fd bad", sendfile(9999, src, &off, 10));
	NUMCALL("in_fd O_PATH", sendfile(dst, path, &off, 10));
	NUMCALL("out_fd O_PATH", sendfile(path, src, &off, 10));
	NUMCALL("out_fd O_APPEND", sendfile(app, src, &off, 10));
	NUMCALL("O_APPEND pipe end is fine", (fcntl(p[1], F_SETFL, O_APPEND), sendfile(p[1], src, &off, 10)));
	NUMCALL("in_fd a pipe with an offset", sendfile(dst, p[0], &off, 10));
	NUMCALL("in_fd a pipe", sendfile(dst, p[0], NULL, 10));
	NUMCALL("in_fd a directory", sendfile(dst, dir, NULL, 10));
	NUMCALL("count too big for an offset", sendfile(dst, src, &off, (size_t)-1));
	printf("  off=%lld\n", (long long)off);
	NUMCALL("out_fd bad, in_fd write-only", sendfile(9999, wronly, NULL, 10));
	close(wronly);
	close(rdonly);
	close(app);
	close(path);
	close(dir);
	close(p[0]);
	close(p[1]);
	close(null);

	printf("-- same file\n");
	off = 0;
	lseek(dst, 0, SEEK_END);
	NUMCALL("append dst to itself", sendfile(dst, dst, &off, 1000));
	show_file("dst grew", "dst");
	close(src);
	close(dst);
	fs_leave();
	return 0;
}
