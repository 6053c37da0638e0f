/* read, write, pread/pwrite, readv/writev, preadv/pwritev(2), lseek, holes,
 * dup/dup2/dup3, fcntl fd and status flags, close, close_range, RLIMIT_NOFILE.
 * Everything is written inside a fresh /tmp/fsconf-XXXXXX. fd numbers are
 * printed only when chosen by the program (dup2 targets, F_DUPFD minimums
 * above anything inherited). */
#define CONF_FS
#include "conf.h"
#include <sys/resource.h>
#include <sys/uio.h>

#define SYS_PREADV2 327
#define SYS_PWRITEV2 328
#define SYS_CLOSE_RANGE 436
#define C_CLOSE_RANGE_CLOEXEC 4
#define C_RWF_APPEND 0x10

static long preadv2_(int fd, const struct iovec *iov, int cnt, long off, int flags)
{
	return syscall(SYS_PREADV2, fd, iov, cnt, off, 0L, flags);
}

static long pwritev2_(int fd, const struct iovec *iov, int cnt, long off, int flags)
{
	return syscall(SYS_PWRITEV2, fd, iov, cnt, off, 0L, flags);
}

static void show_content(const char *label, int fd)
{
	char buf[256];
	ssize_t n = pread(fd, buf, sizeof buf, 0);
	if (n < 0)
		printf("%s: -1 errno=%s\n", label, errname(errno));
	else
		fs_print_bytes(label, buf, n);
}

static const char *fdstate(int fd)
{
	int r = fcntl(fd, F_GETFD);
	if (r < 0)
		return errno == EBADF ? "closed" : "error";
	return (r & FD_CLOEXEC) ? "open+cloexec" : "open";
}

static void rw_basic(void)
{
	char buf[64];
	int fd = open("rw", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CHECK("open rw", fd >= 0);
	NUMCALL("write hello world", write(fd, "hello world", 11));
	NUMCALL("offset", lseek(fd, 0, SEEK_CUR));
	NUMCALL("read at EOF", read(fd, buf, sizeof buf));
	NUMCALL("read at EOF again", read(fd, buf, sizeof buf));
	NUMCALL("lseek SET 0", lseek(fd, 0, SEEK_SET));
	NUMCALL("read 5", read(fd, buf, 5));
	fs_print_bytes("  got", buf, 5);
	NUMCALL("read rest", read(fd, buf, sizeof buf));
	NUMCALL("read 0 bytes", read(fd, buf, 0));
	NUMCALL("write 0 bytes", write(fd, buf, 0));
	NUMCALL("read into NULL", syscall(SYS_read, fd, NULL, 10));
	NUMCALL("lseek SET 0", lseek(fd, 0, SEEK_SET));
	NUMCALL("read into NULL at offset 0", syscall(SYS_read, fd, NULL, 10));
	NUMCALL("write from NULL", syscall(SYS_write, fd, NULL, 10));
	NUMCALL("read bad fd", read(9999, buf, 1));
	NUMCALL("write bad fd", write(-1, buf, 1));

	NUMCALL("pwrite WORLD at 6", pwrite(fd, "WORLD", 5, 6));
	NUMCALL("offset unchanged by pwrite", lseek(fd, 0, SEEK_CUR));
	NUMCALL("pread 5 at 6", pread(fd, buf, 5, 6));
	fs_print_bytes("  got", buf, 5);
	NUMCALL("pread at 11 (EOF)", pread(fd, buf, 5, 11));
	NUMCALL("pread at 1000 (past EOF)", pread(fd, buf, 5, 1000));
	NUMCALL("pread at -1", pread(fd, buf, 5, -1));
	NUMCALL("pwrite at -1", pwrite(fd, buf, 5, -1));
	NUMCALL("offset unchanged by pread", lseek(fd, 0, SEEK_CUR));
	show_content("rw content", fd);
	close(fd);
}

static void rw_vectors(void)
{
	int fd = open("vec", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	struct iovec w[3] = { { "abc", 3 }, { "", 0 }, { "defgh", 5 } };
	NUMCALL("writev 3 iovecs", writev(fd, w, 3));
	NUMCALL("offset after writev", lseek(fd, 0, SEEK_CUR));
	NUMCALL("writev 0 iovecs", writev(fd, w, 0));
	NUMCALL("writev -1 iovecs", syscall(SYS_writev, fd, w, -1));
	static struct iovec many[1100];
	for (int i = 0; i < 1100; i++)
		many[i] = (struct iovec){ "x", 1 };
	NUMCALL("writev 1024 iovecs", writev(fd, many, 1024));
	NUMCALL("writev 1025 iovecs", writev(fd, many, 1025));
	NUMCALL("ftruncate 8", ftruncate(fd, 8));
	char a[2], b[4], c[10];
	struct iovec r[3] = { { a, 2 }, { b, 4 }, { c, 10 } };
	lseek(fd, 0, SEEK_SET);
	NUMCALL("readv 3 iovecs", readv(fd, r, 3));
	fs_print_bytes("  iov0", a, 2);
	fs_print_bytes("  iov1", b, 4);
	fs_print_bytes("  iov2", c, 2);
	NUMCALL("readv at EOF", readv(fd, r, 3));

	struct iovec pw[2] = { { "12", 2 }, { "34", 2 } };
	NUMCALL("pwritev at 2", pwritev(fd, pw, 2, 2));
	NUMCALL("offset unchanged by pwritev", lseek(fd, 0, SEEK_CUR));
	NUMCALL("preadv at 1", preadv(fd, r, 2, 1));
	fs_print_bytes("  iov0", a, 2);
	fs_print_bytes("  iov1", b, 4);
	NUMCALL("preadv at -1", preadv(fd, r, 2, -1));

	lseek(fd, 4, SEEK_SET);
	NUMCALL("preadv2 offset -1 (file offset 4)", preadv2_(fd, r, 2, -1, 0));
	fs_print_bytes("  iov0", a, 2);
	fs_print_bytes("  iov1", b, 2);
	NUMCALL("offset advanced by preadv2 -1", lseek(fd, 0, SEEK_CUR));
	NUMCALL("preadv2 offset 0", preadv2_(fd, r, 1, 0, 0));
	NUMCALL("offset unchanged by preadv2 0", lseek(fd, 0, SEEK_CUR));
	NUMCALL("preadv2 offset -2", preadv2_(fd, r, 1, -2, 0));
	NUMCALL("preadv2 unknown flag", preadv2_(fd, r, 1, 0, 0x1000));
	lseek(fd, 1, SEEK_SET);
	struct iovec one = { "Q", 1 };
	NUMCALL("pwritev2 offset -1 (file offset 1)", pwritev2_(fd, &one, 1, -1, 0));
	NUMCALL("offset advanced by pwritev2 -1", lseek(fd, 0, SEEK_CUR));
	NUMCALL("pwritev2 offset 0", pwritev2_(fd, &one, 1, 0, 0));
	NUMCALL("offset unchanged by pwritev2 0", lseek(fd, 0, SEEK_CUR));
	struct iovec tail = { "TAIL", 4 };
	NUMCALL("pwritev2 RWF_APPEND at 0", pwritev2_(fd, &tail, 1, 0, C_RWF_APPEND));
	NUMCALL("offset after RWF_APPEND", lseek(fd, 0, SEEK_CUR));
	NUMCALL("pwritev2 unknown flag", pwritev2_(fd, &one, 1, 0, 0x1000));
	show_content("vec content", fd);
	close(fd);
}

static void rw_seek(void)
{
	char buf[256];
	int fd = open("seek", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	write(fd, "0123456789", 10);
	NUMCALL("lseek SET 3", lseek(fd, 3, SEEK_SET));
	NUMCALL("lseek CUR +2", lseek(fd, 2, SEEK_CUR));
	NUMCALL("lseek CUR -4", lseek(fd, -4, SEEK_CUR));
	NUMCALL("lseek END 0", lseek(fd, 0, SEEK_END));
	NUMCALL("lseek END -3", lseek(fd, -3, SEEK_END));
	NUMCALL("lseek SET -1", lseek(fd, -1, SEEK_SET));
	NUMCALL("lseek CUR -100", lseek(fd, -100, SEEK_CUR));
	NUMCALL("lseek END -11", lseek(fd, -11, SEEK_END));
	NUMCALL("offset after failed lseeks", lseek(fd, 0, SEEK_CUR));
	NUMCALL("lseek whence 17", lseek(fd, 0, 17));
	NUMCALL("lseek bad fd", lseek(9999, 0, SEEK_SET));
	NUMCALL("lseek END +90 (past end)", lseek(fd, 90, SEEK_END));
	NUMCALL("size before write past end", lseek(fd, 0, SEEK_END));
	lseek(fd, 100, SEEK_SET);
	NUMCALL("write Z at 100", write(fd, "Z", 1));
	struct stat st;
	fstat(fd, &st);
	printf("size after: %lld\n", (long long)st.st_size);
	NUMCALL("pread whole", pread(fd, buf, sizeof buf, 0));
	int zeros = 1;
	for (int i = 10; i < 100; i++)
		zeros &= buf[i] == 0;
	printf("gap reads as zeros: %s\n", zeros ? "yes" : "no");
	fs_print_bytes("  head", buf, 10);
	fs_print_bytes("  tail", buf + 100, 1);

	/* SEEK_DATA / SEEK_HOLE on a file without holes. */
	int nf = open("dense", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	static char big[10000];
	memset(big, 'd', sizeof big);
	write(nf, big, sizeof big);
	NUMCALL("dense SEEK_DATA 0", lseek(nf, 0, SEEK_DATA));
	NUMCALL("dense SEEK_HOLE 0", lseek(nf, 0, SEEK_HOLE));
	NUMCALL("dense SEEK_DATA 5000", lseek(nf, 5000, SEEK_DATA));
	NUMCALL("dense SEEK_HOLE 5000", lseek(nf, 5000, SEEK_HOLE));
	NUMCALL("dense SEEK_DATA 10000 (EOF)", lseek(nf, 10000, SEEK_DATA));
	NUMCALL("dense SEEK_HOLE 10000 (EOF)", lseek(nf, 10000, SEEK_HOLE));
	NUMCALL("dense SEEK_HOLE 20000", lseek(nf, 20000, SEEK_HOLE));
	NUMCALL("dense SEEK_DATA -1", lseek(nf, -1, SEEK_DATA));
	close(nf);

	/* A sparse file: 1 MiB hole then one byte. */
	int sf = open("sparse", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	NUMCALL("sparse lseek 1 MiB", lseek(sf, 1 << 20, SEEK_SET));
	NUMCALL("sparse write 1", write(sf, "s", 1));
	fstat(sf, &st);
	printf("sparse size: %lld\n", (long long)st.st_size);
	printf("sparse blocks < size/512: %s\n",
	       (long long)st.st_blocks < (long long)st.st_size / 512 ? "yes" : "no");
	NUMCALL("sparse pread 4096 at 4096", pread(sf, buf, 256, 4096));
	printf("sparse hole reads zeros: %s\n", buf[0] == 0 && buf[255] == 0 ? "yes" : "no");
	NUMCALL("sparse SEEK_DATA 0", lseek(sf, 0, SEEK_DATA));
	NUMCALL("sparse SEEK_HOLE 0", lseek(sf, 0, SEEK_HOLE));
	close(sf);

	int dfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	NUMCALL("read on dir fd", read(dfd, buf, sizeof buf));
	NUMCALL("pread on dir fd", pread(dfd, buf, sizeof buf, 0));
	NUMCALL("write on dir fd", write(dfd, "x", 1));
	NUMCALL("lseek SET 0 on dir fd", lseek(dfd, 0, SEEK_SET));
	close(dfd);

	int p[2];
	if (pipe2(p, O_CLOEXEC) == 0) {
		NUMCALL("lseek on pipe", lseek(p[0], 0, SEEK_SET));
		NUMCALL("pread on pipe", pread(p[0], buf, 1, 0));
		NUMCALL("pwrite on pipe", pwrite(p[1], "x", 1, 0));
		close(p[0]);
		close(p[1]);
	} else {
		printf("pipe2: -1 errno=%s\n", errname(errno));
	}
	int z = open("/dev/zero", O_RDONLY | O_CLOEXEC);
	NUMCALL("pread /dev/zero at 12345", pread(z, buf, 16, 12345));
	NUMCALL("lseek /dev/zero", lseek(z, 12345, SEEK_SET));
	close(z);
	close(fd);

	ERRCALL("fsync", fsync(nf = open("dense", O_RDONLY | O_CLOEXEC)));
	ERRCALL("fdatasync", fdatasync(nf));
	close(nf);
	ERRCALL("fsync bad fd", fsync(9999));
}

static void rw_large(void)
{
	size_t n = 4u << 20;
	unsigned char *w = malloc(n), *r = malloc(n);
	for (size_t i = 0; i < n; i += 8) {
		uint64_t x = rng();
		memcpy(w + i, &x, 8);
	}
	int fd = open("large", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	size_t done = 0;
	while (done < n) {
		ssize_t k = write(fd, w + done, n - done);
		if (k <= 0)
			break;
		done += k;
	}
	printf("large written: %zu\n", done);
	lseek(fd, 0, SEEK_SET);
	done = 0;
	while (done < n) {
		ssize_t k = read(fd, r + done, 65536 + 17);
		if (k <= 0)
			break;
		done += k;
	}
	printf("large read back: %zu\n", done);
	printf("large checksum: %016llx (match: %s)\n", (unsigned long long)fnv1a(r, n, 0),
	       memcmp(w, r, n) ? "no" : "yes");
	struct stat st;
	fstat(fd, &st);
	printf("large size: %lld blocks>0: %s\n", (long long)st.st_size, st.st_blocks > 0 ? "yes" : "no");
	memset(r, 0, n);
	NUMCALL("large single read", pread(fd, r, n, 0));
	printf("large single read match: %s\n", memcmp(w, r, n) ? "no" : "yes");
	NUMCALL("large pread straddling EOF", pread(fd, r, 4096, n - 100));
	close(fd);
	free(w);
	free(r);
}

static void rw_dup(void)
{
	char buf[16];
	int fd = open("dup", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	write(fd, "abcdefghij", 10);
	int fd2 = dup(fd);
	CHECK("dup", fd2 >= 0 && fd2 != fd);
	printf("dup cloexec: %s\n", fdstate(fd2));
	lseek(fd, 3, SEEK_SET);
	NUMCALL("offset via dup after lseek on original", lseek(fd2, 0, SEEK_CUR));
	NUMCALL("read 2 via dup", read(fd2, buf, 2));
	NUMCALL("offset via original after read on dup", lseek(fd, 0, SEEK_CUR));
	fcntl(fd, F_SETFL, O_APPEND);
	printf("O_APPEND set on original visible on dup: %s\n",
	       (fcntl(fd2, F_GETFL) & O_APPEND) ? "yes" : "no");
	fcntl(fd, F_SETFL, 0);
	int other = open("dup", O_RDONLY | O_CLOEXEC);
	NUMCALL("separate open has its own offset", lseek(other, 0, SEEK_CUR));

	NUMCALL("dup2 fd -> 100", dup2(fd, 100));
	printf("dup2 result cloexec: %s\n", fdstate(100));
	NUMCALL("offset via 100", lseek(100, 0, SEEK_CUR));
	printf("dup2(fd, fd) returns fd: %s\n", dup2(fd, fd) == fd ? "yes" : "no");
	NUMCALL("dup2 other -> 100 (replaces)", dup2(other, 100));
	NUMCALL("offset via replaced 100", lseek(100, 0, SEEK_CUR));
	NUMCALL("dup2 bad oldfd", dup2(9999, 101));
	NUMCALL("dup2 bad oldfd onto itself", dup2(9999, 9999));
	NUMCALL("dup2 newfd -1", dup2(fd, -1));
	NUMCALL("dup3 same fd (raw)", syscall(SYS_dup3, fd, fd, 0));
	NUMCALL("dup3 fd -> 101 O_CLOEXEC", syscall(SYS_dup3, fd, 101, O_CLOEXEC));
	printf("dup3 result: %s\n", fdstate(101));
	NUMCALL("dup3 bad flags (raw)", syscall(SYS_dup3, fd, 102, O_NONBLOCK));
	printf("102 after failed dup3: %s\n", fdstate(102));
	NUMCALL("dup bad fd", dup(9999));

	/* fcntl fd flags */
	NUMCALL("F_GETFD (O_CLOEXEC open)", fcntl(fd, F_GETFD));
	NUMCALL("F_SETFD 0", fcntl(fd, F_SETFD, 0));
	NUMCALL("F_GETFD", fcntl(fd, F_GETFD));
	NUMCALL("F_SETFD 0xff", fcntl(fd, F_SETFD, 0xff));
	NUMCALL("F_GETFD after 0xff", fcntl(fd, F_GETFD));
	printf("FD_CLOEXEC not shared with dup: %s\n", fdstate(fd2));

	/* fcntl status flags */
	int fl = fcntl(fd, F_GETFL);
	printf("F_GETFL accmode O_RDWR: %s raw: %o\n", (fl & O_ACCMODE) == O_RDWR ? "yes" : "no", fl);
	NUMCALL("F_SETFL O_APPEND|O_NONBLOCK", fcntl(fd, F_SETFL, O_APPEND | O_NONBLOCK));
	fl = fcntl(fd, F_GETFL);
	printf("F_GETFL: append=%d nonblock=%d accmode_rdwr=%d raw: %o\n", !!(fl & O_APPEND),
	       !!(fl & O_NONBLOCK), (fl & O_ACCMODE) == O_RDWR, fl);
	NUMCALL("F_SETFL O_RDONLY (access mode ignored)", fcntl(fd, F_SETFL, O_RDONLY));
	fl = fcntl(fd, F_GETFL);
	printf("F_GETFL: append=%d nonblock=%d accmode_rdwr=%d raw: %o\n", !!(fl & O_APPEND),
	       !!(fl & O_NONBLOCK), (fl & O_ACCMODE) == O_RDWR, fl);
	int ro = open("dup", O_RDONLY | O_CLOEXEC);
	int wo = open("dup", O_WRONLY | O_CLOEXEC);
	printf("F_GETFL O_RDONLY raw: %o\n", fcntl(ro, F_GETFL));
	printf("F_GETFL O_WRONLY raw: %o\n", fcntl(wo, F_GETFL));
	close(ro);
	close(wo);
	int ap = open("dup", O_WRONLY | O_APPEND | O_CLOEXEC);
	printf("F_GETFL O_WRONLY|O_APPEND raw: %o\n", fcntl(ap, F_GETFL));
	close(ap);

	NUMCALL("F_DUPFD min 200", fcntl(fd, F_DUPFD, 200));
	printf("200: %s\n", fdstate(200));
	NUMCALL("F_DUPFD min 200 again", fcntl(fd, F_DUPFD, 200));
	NUMCALL("F_DUPFD_CLOEXEC min 210", fcntl(fd, F_DUPFD_CLOEXEC, 210));
	printf("210: %s\n", fdstate(210));
	NUMCALL("F_DUPFD min -1", fcntl(fd, F_DUPFD, -1));
	NUMCALL("F_DUPFD min 1<<30", fcntl(fd, F_DUPFD, 1 << 30));
	NUMCALL("fcntl unknown cmd", fcntl(fd, 9999));
	NUMCALL("fcntl F_GETFD bad fd", fcntl(9999, F_GETFD));
	NUMCALL("fcntl F_GETFL bad fd", fcntl(-1, F_GETFL));

	/* close */
	NUMCALL("close 200", close(200));
	NUMCALL("close 200 again", close(200));
	NUMCALL("close -1", close(-1));
	NUMCALL("close 9999", close(9999));
	printf("201: %s\n", fdstate(201));

	/* close_range */
	for (int i = 300; i <= 305; i++)
		dup2(fd, i);
	NUMCALL("close_range 301..303", syscall(SYS_CLOSE_RANGE, 301, 303, 0));
	for (int i = 300; i <= 305; i++)
		printf("  %d: %s\n", i, fdstate(i));
	NUMCALL("close_range 300..305 CLOEXEC", syscall(SYS_CLOSE_RANGE, 300, 305, C_CLOSE_RANGE_CLOEXEC));
	for (int i = 300; i <= 305; i++)
		printf("  %d: %s\n", i, fdstate(i));
	NUMCALL("close_range first > last", syscall(SYS_CLOSE_RANGE, 305, 300, 0));
	NUMCALL("close_range unknown flag", syscall(SYS_CLOSE_RANGE, 300, 305, 0x80));
	dup2(fd, 400);
	dup2(fd, 450);
	NUMCALL("close_range 300..~0", syscall(SYS_CLOSE_RANGE, 300, ~0U, 0));
	printf("  300: %s 304: %s 400: %s 450: %s 210: %s\n", fdstate(300), fdstate(304),
	       fdstate(400), fdstate(450), fdstate(210));
	NUMCALL("close_range on nothing open", syscall(SYS_CLOSE_RANGE, 500, 600, 0));

	close(100);
	close(101);
	close(210);
	close(other);
	close(fd2);
	close(fd);
}

static void rw_limits(void)
{
	struct rlimit old, rl;
	CHECK("getrlimit NOFILE", getrlimit(RLIMIT_NOFILE, &old) == 0);
	CHECK("NOFILE cur <= max", old.rlim_cur <= old.rlim_max);
	rl = old;
	rl.rlim_cur = 32;
	ERRCALL("setrlimit NOFILE soft 32", setrlimit(RLIMIT_NOFILE, &rl));
	struct rlimit now;
	getrlimit(RLIMIT_NOFILE, &now);
	printf("NOFILE soft now: %llu\n", (unsigned long long)now.rlim_cur);
	int fds[64], n = 0, err = 0;
	while (n < 64) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			err = errno;
			break;
		}
		fds[n++] = fd;
	}
	printf("opening until failure: %s\n", errname(err));
	int all = 1;
	for (int i = 0; i < 32; i++)
		all &= fcntl(i, F_GETFD) >= 0;
	printf("fds 0..31 all open: %s\n", all ? "yes" : "no");
	NUMCALL("dup at limit", dup(0));
	NUMCALL("F_DUPFD 0 at limit", fcntl(0, F_DUPFD, 0));
	NUMCALL("dup2 to 32 (>= limit)", dup2(0, 32));
	NUMCALL("dup2 to 31 (replace, < limit)", dup2(fds[n - 1], 31));
	NUMCALL("F_DUPFD min 32 (>= limit)", fcntl(0, F_DUPFD, 32));
	ERRCALL("O_CREAT at limit", open("newfile-at-limit", O_CREAT | O_RDONLY, 0644));
	fs_show("newfile-at-limit not created", "newfile-at-limit", 0);
	for (int i = 0; i < n; i++)
		close(fds[i]);
	rl = old;
	rl.rlim_cur = old.rlim_max + 1;
	if (old.rlim_max != RLIM_INFINITY)
		ERRCALL("setrlimit soft > hard", setrlimit(RLIMIT_NOFILE, &rl));
	else
		printf("setrlimit soft > hard: -1 errno=EINVAL\n");
	ERRCALL("setrlimit restore", setrlimit(RLIMIT_NOFILE, &old));
	int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	CHECK("open after restore", fd >= 0);
	close(fd);
}

int main(void)
{
	umask(022);
	fs_enter();
	rw_basic();
	rw_vectors();
	rw_seek();
	rw_large();
	rw_dup();
	rw_limits();
	fs_ls("listing", ".");
	fs_leave();
	return 0;
}
