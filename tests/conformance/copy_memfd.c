/* memfd_create(2): flags and name rules, what the file looks like (fstat,
 * F_GETFL, /proc/self/fd), reading and writing, seals (F_GET_SEALS and
 * F_ADD_SEALS bookkeeping), locks on a memfd, and copies between memfds with
 * sendfile and copy_file_range. */
#define CONF_FS
#include "conf.h"
#include <sys/file.h>
#include <sys/sendfile.h>

#define C_MFD_CLOEXEC 0x1U
#define C_MFD_ALLOW_SEALING 0x2U
#define C_MFD_HUGETLB 0x4U
#define C_MFD_NOEXEC_SEAL 0x8U
#define C_MFD_EXEC 0x10U

#define C_F_ADD_SEALS 1033
#define C_F_GET_SEALS 1034
#define C_F_SEAL_SEAL 0x1
#define C_F_SEAL_SHRINK 0x2
#define C_F_SEAL_GROW 0x4
#define C_F_SEAL_WRITE 0x8
#define C_F_SEAL_FUTURE_WRITE 0x10
#define C_F_SEAL_EXEC 0x20

static long mfd(const char *name, unsigned flags)
{
	return syscall(SYS_memfd_create, name, flags);
}

static void show_link(const char *label, int fd)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	long n = readlink(path, buf, sizeof buf - 1);
	if (n < 0) {
		printf("%s: -1 errno=%s\n", label, errname(errno));
		return;
	}
	buf[n] = 0;
	if (n > 60)
		printf("%s: %ld bytes, ends \"%s\"\n", label, n, buf + n - 20);
	else
		printf("%s: \"%s\"\n", label, buf);
}

static void show(const char *label, int fd)
{
	struct stat st;
	if (fstat(fd, &st) != 0) {
		printf("%s: fstat -1 errno=%s\n", label, errname(errno));
		return;
	}
	printf("%s: type=%s mode=%04o nlink=%lu size=%lld owner=%s fl=%#x fd=%s\n", label,
	       fs_type(st.st_mode), (unsigned)(st.st_mode & 07777), (unsigned long)st.st_nlink,
	       (long long)st.st_size, st.st_uid == geteuid() && st.st_gid == getegid() ? "me" : "other",
	       fcntl(fd, F_GETFL), (fcntl(fd, F_GETFD) & FD_CLOEXEC) ? "cloexec" : "plain");
}

static void seals(const char *label, int fd)
{
	NUMCALL(label, fcntl(fd, C_F_GET_SEALS));
}

static void names_and_flags(void)
{
	printf("-- names and flags\n");
	int fd = mfd("test", C_MFD_CLOEXEC);
	show("memfd", fd);
	show_link("link", fd);
	close(fd);
	fd = mfd("", 0);
	show("empty name", fd);
	show_link("link", fd);
	close(fd);
	fd = mfd("a/b c", 0);
	show_link("odd name", fd);
	close(fd);
	char name[300];
	memset(name, 'n', sizeof name);
	name[249] = 0;
	fd = mfd(name, 0);
	CHECK("249-byte name", fd >= 0);
	show_link("link", fd);
	close(fd);
	name[249] = 'n';
	name[250] = 0;
	NUMCALL("250-byte name", mfd(name, 0));
	name[299] = 0;
	NUMCALL("299-byte name", mfd(name, 0));
	NUMCALL("NULL name", mfd(NULL, 0));
	NUMCALL("unknown flag", mfd("x", 0x100));
	NUMCALL("huge page bits without MFD_HUGETLB", mfd("x", 21U << 26));
	NUMCALL("MFD_EXEC|MFD_NOEXEC_SEAL", mfd("x", C_MFD_EXEC | C_MFD_NOEXEC_SEAL));
	NUMCALL("unknown flag and a bad name", mfd(NULL, 0x100));
	fd = mfd("exec", C_MFD_EXEC);
	show("MFD_EXEC", fd);
	seals("  seals", fd);
	close(fd);
	fd = mfd("noexec", C_MFD_NOEXEC_SEAL);
	show("MFD_NOEXEC_SEAL", fd);
	seals("  seals", fd);
	close(fd);
}

static void io(void)
{
	printf("-- reading and writing\n");
	char buf[64];
	int fd = mfd("io", 0);
	NUMCALL("write", write(fd, "hello memfd", 11));
	NUMCALL("pread", pread(fd, buf, sizeof buf, 0));
	fs_print_bytes("  got", buf, 11);
	NUMCALL("ftruncate 8192", ftruncate(fd, 8192));
	NUMCALL("lseek SEEK_END", lseek(fd, 0, SEEK_END));
	NUMCALL("pread in the zeroes", pread(fd, buf, 4, 5000));
	CHECK("  zeroes", buf[0] == 0 && buf[3] == 0);
	NUMCALL("ftruncate 5", ftruncate(fd, 5));
	NUMCALL("read at 0", pread(fd, buf, sizeof buf, 0));
	fs_print_bytes("  got", buf, 5);
	NUMCALL("fchmod 0600", fchmod(fd, 0600));
	show("after", fd);
	NUMCALL("fallocate 100", fallocate(fd, 0, 0, 100));
	show("fallocated", fd);
	close(fd);
}

static void sealing(void)
{
	printf("-- seals\n");
	int fd = mfd("s", 0);
	seals("without MFD_ALLOW_SEALING", fd);
	NUMCALL("add F_SEAL_WRITE", fcntl(fd, C_F_ADD_SEALS, C_F_SEAL_WRITE));
	NUMCALL("add nothing", fcntl(fd, C_F_ADD_SEALS, 0));
	NUMCALL("add a bad seal", fcntl(fd, C_F_ADD_SEALS, 0x40));
	close(fd);
	fd = mfd("s", C_MFD_ALLOW_SEALING);
	seals("with MFD_ALLOW_SEALING", fd);
	NUMCALL("add a bad seal", fcntl(fd, C_F_ADD_SEALS, 0x40));
	NUMCALL("add SHRINK|GROW", fcntl(fd, C_F_ADD_SEALS, C_F_SEAL_SHRINK | C_F_SEAL_GROW));
	seals("  seals", fd);
	NUMCALL("add SHRINK again", fcntl(fd, C_F_ADD_SEALS, C_F_SEAL_SHRINK));
	NUMCALL("add SEAL", fcntl(fd, C_F_ADD_SEALS, C_F_SEAL_SEAL));
	seals("  seals", fd);
	NUMCALL("add WRITE after SEAL", fcntl(fd, C_F_ADD_SEALS, C_F_SEAL_WRITE));
	seals("  seals", fd);
	close(fd);
	fd = mfd("x", C_MFD_ALLOW_SEALING | C_MFD_EXEC);
	NUMCALL("add EXEC to an executable memfd", fcntl(fd, C_F_ADD_SEALS, C_F_SEAL_EXEC));
	seals("  seals", fd);
	close(fd);
	fd = mfd("nx", C_MFD_NOEXEC_SEAL);
	NUMCALL("add FUTURE_WRITE to a NOEXEC_SEAL memfd", fcntl(fd, C_F_ADD_SEALS, C_F_SEAL_FUTURE_WRITE));
	seals("  seals", fd);
	close(fd);

	int reg = open("reg", O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	seals("get on a file in /tmp", reg);
	NUMCALL("add on a file in /tmp", fcntl(reg, C_F_ADD_SEALS, C_F_SEAL_WRITE));
	int rd = open("reg", O_RDONLY | O_CLOEXEC);
	NUMCALL("add on a read-only file", fcntl(rd, C_F_ADD_SEALS, C_F_SEAL_WRITE));
	close(rd);
	int path = open("reg", O_PATH | O_CLOEXEC);
	seals("get on O_PATH", path);
	close(path);
	int p[2];
	pipe(p);
	seals("get on a pipe", p[0]);
	NUMCALL("add on a pipe", fcntl(p[1], C_F_ADD_SEALS, C_F_SEAL_WRITE));
	close(p[0]);
	close(p[1]);
	close(reg);
}

static void locks_and_copies(void)
{
	printf("-- locks and copies\n");
	int a = mfd("a", 0), b = mfd("b", 0);
	static char data[20000];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (char)rng();
	write(a, data, sizeof data);
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	ERRCALL("ofd lock on a memfd", fcntl(a, 37 /* F_OFD_SETLK */, &fl));
	ERRCALL("flock on a memfd", flock(a, LOCK_EX | LOCK_NB));
	ERRCALL("flock on another memfd", flock(b, LOCK_EX | LOCK_NB));
	off_t off = 1000;
	NUMCALL("sendfile memfd to memfd", sendfile(b, a, &off, 5000));
	loff_t oi = 0, oo = 5000;
	NUMCALL("copy_file_range memfd to memfd",
		syscall(SYS_copy_file_range, a, &oi, b, &oo, 100000, 0));
	static char back[30000];
	NUMCALL("read b", pread(b, back, sizeof back, 0));
	CHECK("sendfile part", memcmp(back, data + 1000, 5000) == 0);
	CHECK("copy_file_range part", memcmp(back + 5000, data, sizeof data) == 0);
	close(a);
	close(b);
}

int main(void)
{
	fs_enter();
	names_and_flags();
	io();
	sealing();
	locks_and_copies();
	fs_leave();
	return 0;
}
