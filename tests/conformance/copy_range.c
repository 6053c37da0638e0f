/* copy_file_range(2) between regular files: file offsets and offset
 * pointers, EOF and clamping, copies within one file (overlap refused),
 * holes past the end, and the errors in Linux's order. Works in a fresh
 * /tmp/fsconf-XXXXXX. */
#define CONF_FS
#include "conf.h"

#define SIZE 10000

static char src_data[SIZE];

static long cfr(int in, loff_t *off_in, int out, loff_t *off_out, size_t len, unsigned flags)
{
	return syscall(SYS_copy_file_range, in, off_in, out, off_out, len, flags);
}

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
	NUMCALL("copy 4096", cfr(src, NULL, dst, NULL, 4096, 0));
	NUMCALL("  src offset", off_of(src));
	NUMCALL("  dst offset", off_of(dst));
	NUMCALL("copy 0 bytes", cfr(src, NULL, dst, NULL, 0, 0));
	NUMCALL("copy the rest and more", cfr(src, NULL, dst, NULL, 1 << 20, 0));
	NUMCALL("copy at EOF", cfr(src, NULL, dst, NULL, 100, 0));
	NUMCALL("  src offset", off_of(src));
	NUMCALL("  dst offset", off_of(dst));
	show_file("dst is a copy", "dst");
	printf("src fnv=%016llx\n", (unsigned long long)fnv1a(src_data, SIZE, 0));

	printf("-- offset pointers\n");
	lseek(src, 11, SEEK_SET);
	lseek(dst, 22, SEEK_SET);
	loff_t oi = 5000, oo = 0;
	NUMCALL("copy 100 at 5000 to 0", cfr(src, &oi, dst, &oo, 100, 0));
	printf("  oi=%lld oo=%lld\n", (long long)oi, (long long)oo);
	NUMCALL("  src offset unchanged", off_of(src));
	NUMCALL("  dst offset unchanged", off_of(dst));
	oi = 9900;
	NUMCALL("copy SSIZE_MAX at 9900, dst offset", cfr(src, &oi, dst, NULL, 0x7fffffffffffffffULL, 0));
	printf("  oi=%lld\n", (long long)oi);
	NUMCALL("  dst offset moved", off_of(dst));
	oi = 0;
	oo = 20000;
	NUMCALL("copy past the end of dst", cfr(src, &oi, dst, &oo, 10, 0));
	show_file("dst with a hole", "dst");
	oi = 20000;
	NUMCALL("copy from past EOF", cfr(src, &oi, dst, NULL, 10, 0));
	printf("  oi=%lld\n", (long long)oi);

	printf("-- within one file\n");
	oi = 0;
	oo = 200;
	NUMCALL("copy [0,100) to 200", cfr(src, &oi, src, &oo, 100, 0));
	oi = 0;
	oo = 50;
	NUMCALL("overlapping", cfr(src, &oi, src, &oo, 100, 0));
	oi = 50;
	oo = 0;
	NUMCALL("overlapping backwards", cfr(src, &oi, src, &oo, 100, 0));
	oi = 0;
	oo = 100;
	NUMCALL("touching", cfr(src, &oi, src, &oo, 100, 0));
	oi = SIZE - 10;
	oo = SIZE - 15;
	NUMCALL("overlap shortened by EOF", cfr(src, &oi, src, &oo, 100, 0));
	oi = SIZE;
	oo = 0;
	NUMCALL("overlap of nothing at EOF", cfr(src, &oi, src, &oo, 100, 0));
	int src2 = open("src", O_RDWR | O_CLOEXEC);
	oi = 0;
	oo = 50;
	NUMCALL("overlap through another description", cfr(src, &oi, src2, &oo, 100, 0));
	close(src2);
	show_file("src after", "src");

	printf("-- errors\n");
	int wronly = open("src", O_WRONLY | O_CLOEXEC), rdonly = open("dst", O_RDONLY | O_CLOEXEC);
	int app = open("app", O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	int path = open("src", O_PATH | O_CLOEXEC);
	int dir = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	int p[2];
	pipe(p);
	oi = 0;
	oo = 0;
	NUMCALL("flags 1", cfr(src, &oi, dst, &oo, 10, 1));
	NUMCALL("flags 1 and a bad fd", cfr(9999, &oi, dst, &oo, 10, 1));
	NUMCALL("in bad", cfr(9999, &oi, dst, &oo, 10, 0));
	NUMCALL("out bad", cfr(src, &oi, 9999, &oo, 10, 0));
	NUMCALL("in O_PATH", cfr(path, &oi, dst, &oo, 10, 0));
	NUMCALL("in write-only", cfr(wronly, &oi, dst, &oo, 10, 0));
	NUMCALL("out read-only", cfr(src, &oi, rdonly, &oo, 10, 0));
	NUMCALL("out O_APPEND", cfr(src, &oi, app, &oo, 10, 0));
	NUMCALL("in a directory", cfr(dir, &oi, dst, &oo, 10, 0));
	NUMCALL("out a directory", cfr(src, &oi, dir, &oo, 10, 0));
	NUMCALL("in a directory, out write-only pipe", cfr(dir, &oi, p[1], &oo, 10, 0));
	NUMCALL("in a pipe", cfr(p[0], NULL, dst, &oo, 10, 0));
	NUMCALL("out a pipe", cfr(src, &oi, p[1], NULL, 10, 0));
	NUMCALL("out /dev/null", cfr(src, &oi, null, NULL, 10, 0));
	NUMCALL("bad off_in pointer", cfr(src, (loff_t *)8, dst, &oo, 10, 0));
	NUMCALL("bad off_out pointer", cfr(src, &oi, dst, (loff_t *)8, 10, 0));
	NUMCALL("bad pointer and flags", cfr(src, (loff_t *)8, dst, &oo, 10, 1));
	oi = -1;
	NUMCALL("off_in -1", cfr(src, &oi, dst, &oo, 10, 0));
	NUMCALL("off_in -1, len 1", cfr(src, &oi, dst, &oo, 1, 0));
	oi = 0;
	oo = -5;
	NUMCALL("off_out -5", cfr(src, &oi, dst, &oo, 10, 0));
	oo = 0;
	oi = 1;
	NUMCALL("len wraps off_in", cfr(src, &oi, dst, &oo, (size_t)-1, 0));
	oi = 0;
	oo = 1;
	NUMCALL("len wraps off_out", cfr(src, &oi, dst, &oo, (size_t)-1, 0));
	printf("  oi=%lld oo=%lld\n", (long long)oi, (long long)oo);
	close(wronly);
	close(rdonly);
	close(app);
	close(path);
	close(dir);
	close(null);
	close(p[0]);
	close(p[1]);
	close(src);
	close(dst);
	fs_leave();
	return 0;
}
