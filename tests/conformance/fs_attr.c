/* Metadata: stat family and statx, access family, chmod and chown families,
 * truncate, fallocate, utimensat and timestamps, umask, statfs, xattrs.
 * Everything is written inside a fresh /tmp/fsconf-XXXXXX. Times are printed
 * only when set explicitly; otherwise as "recent: yes". */
#define CONF_FS
#include "conf.h"
#include <sys/statfs.h>
#include <sys/xattr.h>
#include <time.h>

#define SYS_STATX 332
#define SYS_FACCESSAT2 439
#define C_STATX_BASIC_STATS 0x7ffU
#define C_STATX__RESERVED 0x80000000U
#define C_AT_STATX_FORCE_SYNC 0x2000
#define C_AT_STATX_DONT_SYNC 0x4000

struct c_statx_ts {
	int64_t tv_sec;
	uint32_t tv_nsec;
	int32_t pad;
};

struct c_statx {
	uint32_t mask, blksize;
	uint64_t attributes;
	uint32_t nlink, uid, gid;
	uint16_t mode, pad1;
	uint64_t ino, size, blocks, attributes_mask;
	struct c_statx_ts atime, btime, ctime, mtime;
	uint32_t rdev_major, rdev_minor, dev_major, dev_minor;
	uint64_t spare[14];
};

static long statx_(int dfd, const char *path, int flags, unsigned mask, struct c_statx *b)
{
	return syscall(SYS_STATX, dfd, path, flags, mask, b);
}

static void show_statx(const char *label, int dfd, const char *path, int flags)
{
	struct c_statx b;
	memset(&b, 0, sizeof b);
	if (statx_(dfd, path, flags, C_STATX_BASIC_STATS, &b) != 0) {
		printf("%s: -1 errno=%s\n", label, errname(errno));
		return;
	}
	printf("%s: type=%s mode=%04o nlink=%u", label, fs_type(b.mode), b.mode & 07777, b.nlink);
	if (S_ISREG(b.mode) || S_ISLNK(b.mode))
		printf(" size=%llu", (unsigned long long)b.size);
	printf(" basic=%s\n", (b.mask & C_STATX_BASIC_STATS) == C_STATX_BASIC_STATS ? "yes" : "no");
}

static time_t now_sec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec;
}

static int recent(time_t t)
{
	time_t n = now_sec();
	return t >= n - 60 && t <= n + 60;
}

static void owner(const char *label, const char *path, int follow)
{
	struct stat st;
	int r = follow ? stat(path, &st) : lstat(path, &st);
	if (r != 0)
		printf("%s: -1 errno=%s\n", label, errname(errno));
	else
		printf("%s: uid=%u gid=%u mode=%04o\n", label, (unsigned)st.st_uid, (unsigned)st.st_gid,
		       (unsigned)(st.st_mode & 07777));
}

static void attr_stat(void)
{
	fs_put("f", "hello");
	symlink("f", "l");
	mkdir("d", 0755);
	fs_show("stat f", "f", 1);
	fs_show("stat l", "l", 1);
	fs_show("lstat l", "l", 0);
	fs_show("lstat f", "f", 0);
	int fd = open("f", O_RDONLY | O_CLOEXEC);
	fs_showfd("fstat f", fd);
	struct stat st;
	ERRCALL("fstat bad fd", fstat(9999, &st));
	ERRCALL("fstatat AT_SYMLINK_NOFOLLOW l", fstatat(AT_FDCWD, "l", &st, AT_SYMLINK_NOFOLLOW));
	fs_print_stat("  ->", &st);
	ERRCALL("fstatat l", fstatat(AT_FDCWD, "l", &st, 0));
	fs_print_stat("  ->", &st);
	ERRCALL("fstatat fd \"\" AT_EMPTY_PATH", fstatat(fd, "", &st, AT_EMPTY_PATH));
	fs_print_stat("  ->", &st);
	ERRCALL("fstatat fd \"\" without AT_EMPTY_PATH", fstatat(fd, "", &st, 0));
	ERRCALL("fstatat AT_FDCWD \"\" AT_EMPTY_PATH", fstatat(AT_FDCWD, "", &st, AT_EMPTY_PATH));
	fs_print_stat("  ->", &st);
	ERRCALL("fstatat bad flag", fstatat(AT_FDCWD, "f", &st, 0x1));
	ERRCALL("fstatat file fd as dirfd", fstatat(fd, "x", &st, 0));
	int dfd = open("d", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ERRCALL("fstatat dirfd ../f", fstatat(dfd, "../f", &st, 0));
	fs_print_stat("  ->", &st);
	ERRCALL("newfstatat bad dirfd", syscall(SYS_newfstatat, 9999, "f", &st, 0));
	ERRCALL("fstat NULL buf (raw)", syscall(SYS_fstat, fd, NULL));
	struct stat a, b;
	stat("f", &a);
	fstat(fd, &b);
	printf("stat and fstat agree on ino/dev: %s\n",
	       a.st_ino == b.st_ino && a.st_dev == b.st_dev ? "yes" : "no");
	printf("owner is me: %s\n", a.st_uid == geteuid() && a.st_gid == getegid() ? "yes" : "no");
	printf("blksize > 0: %s\n", a.st_blksize > 0 ? "yes" : "no");
	printf("blocks>0 for written file: %s\n", a.st_blocks > 0 ? "yes" : "no");
	printf("times recent: %s\n",
	       recent(a.st_mtime) && recent(a.st_ctime) && recent(a.st_atime) ? "yes" : "no");

	show_statx("statx f", AT_FDCWD, "f", 0);
	show_statx("statx l", AT_FDCWD, "l", 0);
	show_statx("statx l AT_SYMLINK_NOFOLLOW", AT_FDCWD, "l", AT_SYMLINK_NOFOLLOW);
	show_statx("statx d", AT_FDCWD, "d", 0);
	show_statx("statx fd AT_EMPTY_PATH", fd, "", AT_EMPTY_PATH);
	show_statx("statx dirfd ../f", dfd, "../f", 0);
	show_statx("statx missing", AT_FDCWD, "missing", 0);
	show_statx("statx fd \"\" without AT_EMPTY_PATH", fd, "", 0);
	show_statx("statx AT_STATX_DONT_SYNC", AT_FDCWD, "f", C_AT_STATX_DONT_SYNC);
	struct c_statx sx;
	ERRCALL("statx bad flag", statx_(AT_FDCWD, "f", 0x1, C_STATX_BASIC_STATS, &sx));
	ERRCALL("statx FORCE_SYNC|DONT_SYNC",
		statx_(AT_FDCWD, "f", C_AT_STATX_FORCE_SYNC | C_AT_STATX_DONT_SYNC, C_STATX_BASIC_STATS, &sx));
	ERRCALL("statx reserved mask bit", statx_(AT_FDCWD, "f", 0, C_STATX__RESERVED, &sx));
	ERRCALL("statx NULL buf", statx_(AT_FDCWD, "f", 0, C_STATX_BASIC_STATS, NULL));
	ERRCALL("statx bad dirfd", statx_(9999, "f", 0, C_STATX_BASIC_STATS, &sx));
	memset(&sx, 0, sizeof sx);
	statx_(AT_FDCWD, "f", 0, C_STATX_BASIC_STATS, &sx);
	printf("statx agrees with stat (ino, mtime, uid): %s\n",
	       sx.ino == a.st_ino && (time_t)sx.mtime.tv_sec == a.st_mtim.tv_sec &&
			       sx.mtime.tv_nsec == (uint32_t)a.st_mtim.tv_nsec && sx.uid == a.st_uid
		       ? "yes"
		       : "no");
	close(dfd);
	close(fd);
}

static void attr_access(void)
{
	fs_put("a644", "x");
	chmod("a644", 0644);
	fs_put("a744", "x");
	chmod("a744", 0744);
	fs_put("a001", "x");
	chmod("a001", 0001);
	fs_put("a000", "x");
	chmod("a000", 0000);
	mkdir("d000", 0000);
	symlink("nowhere", "dangling");
	int root = geteuid() == 0;
	printf("running as root: %s\n", root ? "yes" : "no");
	ERRCALL("access F_OK missing", access("missing", F_OK));
	ERRCALL("access F_OK a644", access("a644", F_OK));
	ERRCALL("access R_OK|W_OK a644", access("a644", R_OK | W_OK));
	ERRCALL("access X_OK a644", access("a644", X_OK));
	ERRCALL("access X_OK a744", access("a744", X_OK));
	ERRCALL("access X_OK a001", access("a001", X_OK));
	if (root) {
		ERRCALL("access R_OK|W_OK a000 (root)", access("a000", R_OK | W_OK));
		ERRCALL("access X_OK a000 (root)", access("a000", X_OK));
		ERRCALL("access R_OK|W_OK|X_OK d000 (root)", access("d000", R_OK | W_OK | X_OK));
	}
	ERRCALL("access bad mode", access("a644", 8));
	ERRCALL("access F_OK dangling", access("dangling", F_OK));
	ERRCALL("access under a file", access("a644/x", F_OK));
	ERRCALL("access empty path", access("", F_OK));
	int dfd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ERRCALL("faccessat dirfd", syscall(SYS_faccessat, dfd, "a644", R_OK));
	ERRCALL("faccessat dirfd X_OK", syscall(SYS_faccessat, dfd, "a644", X_OK));
	ERRCALL("faccessat2 AT_SYMLINK_NOFOLLOW dangling",
		syscall(SYS_FACCESSAT2, dfd, "dangling", F_OK, AT_SYMLINK_NOFOLLOW));
	ERRCALL("faccessat2 dangling (follows)", syscall(SYS_FACCESSAT2, dfd, "dangling", F_OK, 0));
	ERRCALL("faccessat2 AT_EACCESS", syscall(SYS_FACCESSAT2, dfd, "a644", R_OK, AT_EACCESS));
	ERRCALL("faccessat2 AT_EACCESS X_OK", syscall(SYS_FACCESSAT2, dfd, "a644", X_OK, AT_EACCESS));
	ERRCALL("faccessat2 AT_EMPTY_PATH", syscall(SYS_FACCESSAT2, dfd, "", R_OK, AT_EMPTY_PATH));
	ERRCALL("faccessat2 bad flag", syscall(SYS_FACCESSAT2, dfd, "a644", R_OK, 0x1));
	ERRCALL("faccessat2 bad mode", syscall(SYS_FACCESSAT2, dfd, "a644", 0x10, 0));
	ERRCALL("faccessat bad dirfd", syscall(SYS_faccessat, 9999, "a644", R_OK));
	close(dfd);
	chmod("d000", 0755);
}

static void attr_chmod_chown(void)
{
	fs_put("m", "m");
	ERRCALL("chmod 0600", chmod("m", 0600));
	fs_show("m", "m", 0);
	ERRCALL("chmod 07777", chmod("m", 07777));
	fs_show("m", "m", 0);
	ERRCALL("chmod 0170644 (type bits ignored)", chmod("m", 0170644));
	fs_show("m", "m", 0);
	int fd = open("m", O_RDONLY | O_CLOEXEC);
	ERRCALL("fchmod 0640 on O_RDONLY fd", fchmod(fd, 0640));
	fs_show("m", "m", 0);
	ERRCALL("fchmod bad fd", fchmod(9999, 0640));
	close(fd);
	ERRCALL("fchmodat 0444", fchmodat(AT_FDCWD, "m", 0444, 0));
	fs_show("m", "m", 0);
	symlink("m", "ml");
	ERRCALL("chmod through symlink 0604", chmod("ml", 0604));
	fs_show("m", "m", 0);
	fs_show("ml", "ml", 0);
	ERRCALL("chmod missing", chmod("missing", 0644));
	mkdir("md", 0755);
	ERRCALL("chmod dir 01777", chmod("md", 01777));
	fs_show("md", "md", 0);

	fs_put("o", "o");
	owner("o initially (owner is me)", "o", 0);
	struct stat st;
	stat("o", &st);
	printf("owner is me: %s\n", st.st_uid == geteuid() ? "yes" : "no");
	if (geteuid() != 0) {
		printf("not root: skipping chown checks\n");
		return;
	}
	ERRCALL("chown 1234:5678", chown("o", 1234, 5678));
	owner("o", "o", 0);
	ERRCALL("chown -1:42", chown("o", -1, 42));
	owner("o", "o", 0);
	ERRCALL("chown 77:-1", chown("o", 77, -1));
	owner("o", "o", 0);
	fd = open("o", O_RDONLY | O_CLOEXEC);
	ERRCALL("fchown 1:2", fchown(fd, 1, 2));
	owner("o", "o", 0);
	ERRCALL("fchown bad fd", fchown(9999, 1, 2));
	close(fd);
	symlink("o", "ol");
	ERRCALL("lchown ol 3:4", lchown("ol", 3, 4));
	owner("ol (link)", "ol", 0);
	owner("o (target unchanged)", "o", 0);
	ERRCALL("chown through symlink 5:6", chown("ol", 5, 6));
	owner("ol (link unchanged)", "ol", 0);
	owner("o (target)", "o", 0);
	ERRCALL("fchownat AT_SYMLINK_NOFOLLOW 7:8", fchownat(AT_FDCWD, "ol", 7, 8, AT_SYMLINK_NOFOLLOW));
	owner("ol (link)", "ol", 0);
	ERRCALL("fchownat bad flag", fchownat(AT_FDCWD, "ol", 7, 8, 0x1));
	fd = open("o", O_PATH | O_CLOEXEC);
	ERRCALL("fchownat AT_EMPTY_PATH on O_PATH fd", fchownat(fd, "", 9, 10, AT_EMPTY_PATH));
	close(fd);
	owner("o", "o", 0);
	ERRCALL("chown missing", chown("missing", 1, 1));

	/* chown clears setuid, and setgid when group-executable. */
	chmod("o", 04755);
	ERRCALL("chown 04755 file", chown("o", 1234, 5678));
	owner("o after chown (setuid cleared)", "o", 0);
	chmod("o", 06755);
	ERRCALL("chown 06755 file", chown("o", 1234, 5678));
	owner("o after chown (setuid+setgid cleared)", "o", 0);
	chmod("o", 02745);
	ERRCALL("chown 02745 file (no group exec)", chown("o", 1234, 5678));
	owner("o after chown (setgid kept)", "o", 0);
	chmod("o", 04755);
	ERRCALL("chown -1:-1 04755 file", chown("o", -1, -1));
	owner("o after chown -1:-1", "o", 0);
	chmod("md", 06755);
	ERRCALL("chown 06755 dir", chown("md", 1234, 5678));
	owner("md after chown (dir keeps bits)", "md", 0);
	chmod("o", 04755);
	fd = open("o", O_WRONLY | O_CLOEXEC);
	ERRCALL("write to 04755 file as root", write(fd, "w", 1) == 1 ? 0 : -1);
	close(fd);
	owner("o after write (root: setuid kept)", "o", 0);
	chown("o", 0, 0);
	chown("md", 0, 0);
}

static void attr_truncate_fallocate(void)
{
	fs_put("t", "0123456789");
	ERRCALL("truncate 5", truncate("t", 5));
	fs_cat("t", "t");
	ERRCALL("truncate 8 (grow)", truncate("t", 8));
	fs_cat("t", "t");
	int fd = open("t", O_RDWR | O_CLOEXEC);
	ERRCALL("ftruncate 2", ftruncate(fd, 2));
	fs_cat("t", "t");
	ERRCALL("ftruncate 1 GiB", ftruncate(fd, 1L << 30));
	fs_show("t", "t", 0);
	struct stat st;
	fstat(fd, &st);
	printf("1 GiB sparse: blocks < size/512: %s\n", st.st_blocks < st.st_size / 512 ? "yes" : "no");
	ERRCALL("ftruncate 3", ftruncate(fd, 3));
	fs_cat("t", "t");
	NUMCALL("offset unchanged by ftruncate", lseek(fd, 0, SEEK_CUR));
	ERRCALL("ftruncate -1", ftruncate(fd, -1));
	close(fd);
	fd = open("t", O_RDONLY | O_CLOEXEC);
	ERRCALL("ftruncate on O_RDONLY fd", ftruncate(fd, 0));
	close(fd);
	fd = open("t", O_WRONLY | O_APPEND | O_CLOEXEC);
	ERRCALL("ftruncate on O_APPEND fd", ftruncate(fd, 1));
	close(fd);
	fs_cat("t", "t");
	mkdir("td", 0755);
	ERRCALL("truncate dir", truncate("td", 0));
	fd = open("td", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ERRCALL("ftruncate dir fd", ftruncate(fd, 0));
	close(fd);
	ERRCALL("truncate missing", truncate("missing", 0));
	ERRCALL("truncate -1", truncate("t", -1));
	ERRCALL("ftruncate bad fd", ftruncate(9999, 0));
	symlink("t", "tl");
	ERRCALL("truncate through symlink", truncate("tl", 0));
	fs_show("t", "t", 0);
	fs_show("tl", "tl", 0);
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	ERRCALL("ftruncate /dev/null", ftruncate(fd, 0));
	close(fd);

	fd = open("fa", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	ERRCALL("fallocate 0..8192", fallocate(fd, 0, 0, 8192));
	fstat(fd, &st);
	printf("size: %lld blocks>0: %s\n", (long long)st.st_size, st.st_blocks > 0 ? "yes" : "no");
	char buf[8192];
	memset(buf, 0x55, sizeof buf);
	NUMCALL("pread allocated range", pread(fd, buf, sizeof buf, 0));
	printf("allocated range reads zeros: %s\n", buf[0] == 0 && buf[8191] == 0 ? "yes" : "no");
	ERRCALL("fallocate KEEP_SIZE to 16384", fallocate(fd, FALLOC_FL_KEEP_SIZE, 8192, 8192));
	fs_show("fa after KEEP_SIZE", "fa", 0);
	ERRCALL("fallocate 10000..10100 (grows)", fallocate(fd, 0, 10000, 100));
	fs_show("fa", "fa", 0);
	memset(buf, 'x', 1000);
	pwrite(fd, buf, 1000, 0);
	ERRCALL("fallocate PUNCH_HOLE|KEEP_SIZE 100..300",
		fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100, 200));
	pread(fd, buf, 1000, 0);
	int ok = 1;
	for (int i = 0; i < 1000; i++)
		ok &= buf[i] == ((i >= 100 && i < 300) ? 0 : 'x');
	printf("punched range zero, rest intact: %s\n", ok ? "yes" : "no");
	fs_show("fa after punch", "fa", 0);
	ERRCALL("fallocate PUNCH_HOLE without KEEP_SIZE", fallocate(fd, FALLOC_FL_PUNCH_HOLE, 0, 10));
	ERRCALL("fallocate PUNCH_HOLE past EOF", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 20000, 100));
	fs_show("fa", "fa", 0);
	ERRCALL("fallocate len 0", fallocate(fd, 0, 0, 0));
	ERRCALL("fallocate offset -1", fallocate(fd, 0, -1, 10));
	ERRCALL("fallocate unknown mode", fallocate(fd, 0x100, 0, 10));
	ERRCALL("fallocate bad fd", fallocate(9999, 0, 0, 10));
	close(fd);
	fd = open("fa", O_RDONLY | O_CLOEXEC);
	ERRCALL("fallocate O_RDONLY fd", fallocate(fd, 0, 0, 10));
	close(fd);
	fd = open("fa", O_WRONLY | O_APPEND | O_CLOEXEC);
	ERRCALL("fallocate O_APPEND fd mode 0", fallocate(fd, 0, 0, 10));
	close(fd);
	fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	ERRCALL("fallocate /dev/null", fallocate(fd, 0, 0, 10));
	close(fd);
}

static void print_times(const char *label, const char *path, int follow)
{
	struct stat st;
	int r = follow ? stat(path, &st) : lstat(path, &st);
	if (r != 0) {
		printf("%s: -1 errno=%s\n", label, errname(errno));
		return;
	}
	printf("%s: atime=%lld.%09ld mtime=%lld.%09ld\n", label, (long long)st.st_atim.tv_sec,
	       st.st_atim.tv_nsec, (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
}

static void attr_times(void)
{
	fs_put("u", "u");
	struct timespec ts[2] = { { 1234567890, 123456789 }, { 1500000000, 987654321 } };
	ERRCALL("utimensat explicit", utimensat(AT_FDCWD, "u", ts, 0));
	print_times("u", "u", 1);
	struct stat st;
	stat("u", &st);
	printf("ctime recent after utimensat: %s\n", recent(st.st_ctime) ? "yes" : "no");
	struct timespec om[2] = { { 0, UTIME_OMIT }, { 1600000000, 5 } };
	ERRCALL("utimensat atime OMIT", utimensat(AT_FDCWD, "u", om, 0));
	print_times("u", "u", 1);
	struct timespec om2[2] = { { 1000000000, 1 }, { 0, UTIME_OMIT } };
	ERRCALL("utimensat mtime OMIT", utimensat(AT_FDCWD, "u", om2, 0));
	print_times("u", "u", 1);
	struct timespec both[2] = { { 0, UTIME_OMIT }, { 0, UTIME_OMIT } };
	ERRCALL("utimensat both OMIT", utimensat(AT_FDCWD, "u", both, 0));
	print_times("u", "u", 1);
	struct timespec nw[2] = { { 0, UTIME_OMIT }, { 0, UTIME_NOW } };
	ERRCALL("utimensat mtime NOW", utimensat(AT_FDCWD, "u", nw, 0));
	stat("u", &st);
	printf("atime kept: %s, mtime recent: %s\n",
	       st.st_atim.tv_sec == 1000000000 && st.st_atim.tv_nsec == 1 ? "yes" : "no",
	       recent(st.st_mtime) ? "yes" : "no");
	utimensat(AT_FDCWD, "u", ts, 0);
	ERRCALL("utimensat NULL times", utimensat(AT_FDCWD, "u", NULL, 0));
	stat("u", &st);
	printf("recent: %s\n", recent(st.st_atime) && recent(st.st_mtime) ? "yes" : "no");
	struct timespec bad[2] = { { 0, 1000000000 }, { 0, 0 } };
	ERRCALL("utimensat nsec 1e9", utimensat(AT_FDCWD, "u", bad, 0));
	bad[0].tv_nsec = -1;
	ERRCALL("utimensat nsec -1", utimensat(AT_FDCWD, "u", bad, 0));
	ERRCALL("utimensat bad flag", utimensat(AT_FDCWD, "u", ts, 0x1));
	ERRCALL("utimensat missing", utimensat(AT_FDCWD, "missing", ts, 0));
	struct timespec neg[2] = { { -1, 0 }, { 0, 0 } };
	ERRCALL("utimensat negative seconds", utimensat(AT_FDCWD, "u", neg, 0));
	print_times("u", "u", 1);

	symlink("u", "ul");
	utimensat(AT_FDCWD, "u", ts, 0);
	struct timespec lt[2] = { { 1111111111, 0 }, { 1222222222, 0 } };
	ERRCALL("utimensat AT_SYMLINK_NOFOLLOW", utimensat(AT_FDCWD, "ul", lt, AT_SYMLINK_NOFOLLOW));
	print_times("ul (link)", "ul", 0);
	print_times("u (target unchanged)", "u", 1);
	ERRCALL("utimensat through symlink", utimensat(AT_FDCWD, "ul", lt, 0));
	print_times("u (target)", "u", 1);

	int fd = open("u", O_RDWR | O_CLOEXEC);
	ERRCALL("futimens", futimens(fd, ts));
	print_times("u", "u", 1);
	ERRCALL("utimensat(fd, NULL) (raw)", syscall(SYS_utimensat, fd, NULL, lt, 0));
	print_times("u", "u", 1);
	ERRCALL("futimens bad fd", futimens(9999, ts));

	/* Writes and truncation update mtime and ctime, not atime. */
	utimensat(AT_FDCWD, "u", ts, 0);
	write(fd, "more", 4);
	stat("u", &st);
	printf("after write: mtime recent: %s, ctime recent: %s, atime kept: %s\n",
	       recent(st.st_mtime) ? "yes" : "no", recent(st.st_ctime) ? "yes" : "no",
	       st.st_atim.tv_sec == 1234567890 ? "yes" : "no");
	utimensat(AT_FDCWD, "u", ts, 0);
	ftruncate(fd, 1);
	stat("u", &st);
	printf("after ftruncate: mtime recent: %s\n", recent(st.st_mtime) ? "yes" : "no");
	utimensat(AT_FDCWD, "u", ts, 0);
	ftruncate(fd, 1);
	stat("u", &st);
	printf("after ftruncate to the same size: mtime recent: %s\n", recent(st.st_mtime) ? "yes" : "no");
	close(fd);

	/* Directory times change when entries are added or removed. */
	mkdir("td2", 0755);
	utimensat(AT_FDCWD, "td2", ts, 0);
	fs_put("td2/new", "n");
	stat("td2", &st);
	printf("dir mtime recent after create: %s\n", recent(st.st_mtime) ? "yes" : "no");
	utimensat(AT_FDCWD, "td2", ts, 0);
	unlink("td2/new");
	stat("td2", &st);
	printf("dir mtime recent after unlink: %s\n", recent(st.st_mtime) ? "yes" : "no");
	utimensat(AT_FDCWD, "td2", ts, 0);
	DIR *d = opendir("td2");
	while (readdir(d))
		;
	closedir(d);
	stat("td2", &st);
	printf("dir mtime kept after readdir: %s\n", st.st_mtim.tv_sec == 1500000000 ? "yes" : "no");
}

static void attr_umask(void)
{
	mode_t initial = umask(022);
	printf("umask we set at start: %03o\n", (unsigned)initial);
	printf("umask(027) returns: %03o\n", (unsigned)umask(027));
	close(creat("um1", 0666));
	fs_show("creat 0666 under 027", "um1", 0);
	mkdir("um2", 0777);
	fs_show("mkdir 0777 under 027", "um2", 0);
	mkfifo("um3", 0666);
	fs_show("mkfifo 0666 under 027", "um3", 0);
	symlink("um1", "um4");
	fs_show("symlink under 027", "um4", 0);
	printf("umask(0) returns: %03o\n", (unsigned)umask(0));
	close(creat("um5", 0666));
	fs_show("creat 0666 under 0", "um5", 0);
	printf("umask(01777) returns: %03o\n", (unsigned)umask(01777));
	printf("umask(022) returns: %03o\n", (unsigned)umask(022));
	int fd = open(".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0666);
	if (fd >= 0) {
		fs_showfd("O_TMPFILE 0666 under 022", fd);
		close(fd);
	}
}

static void attr_statfs(void)
{
	struct statfs sf;
	ERRCALL("statfs .", statfs(".", &sf));
	printf("statfs: namelen=%ld bsize>0: %s\n", (long)sf.f_namelen, sf.f_bsize > 0 ? "yes" : "no");
	int fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct statfs sf2;
	ERRCALL("fstatfs", fstatfs(fd, &sf2));
	printf("statfs and fstatfs agree on type: %s\n", sf.f_type == sf2.f_type ? "yes" : "no");
	close(fd);
	ERRCALL("statfs missing", statfs("missing", &sf));
	ERRCALL("fstatfs bad fd", fstatfs(9999, &sf));
	ERRCALL("statfs /dev/null", statfs("/dev/null", &sf));
	ERRCALL("statfs /", statfs("/", &sf));
	ERRCALL("sync", (sync(), 0));
	fd = open("um1", O_RDONLY | O_CLOEXEC);
	ERRCALL("syncfs", syncfs(fd));
	close(fd);
}

static void print_user_list(const char *label, const char *buf, long n)
{
	/* Only user.* names, sorted: other namespaces depend on the host. */
	char names[32][64];
	int k = 0;
	for (long off = 0; off < n && k < 32;) {
		const char *nm = buf + off;
		if (!strncmp(nm, "user.", 5))
			snprintf(names[k++], 64, "%s", nm);
		off += strlen(nm) + 1;
	}
	qsort(names, k, sizeof names[0], (int (*)(const void *, const void *))strcmp);
	printf("%s:", label);
	for (int i = 0; i < k; i++)
		printf(" %s", names[i]);
	printf("\n");
}

static void attr_xattr(void)
{
	fs_put("x", "x");
	char buf[2048];
	ERRCALL("setxattr user.a", setxattr("x", "user.a", "value1", 6, 0));
	NUMCALL("getxattr user.a size 0", getxattr("x", "user.a", NULL, 0));
	NUMCALL("getxattr user.a", getxattr("x", "user.a", buf, sizeof buf));
	fs_print_bytes("  value", buf, 6);
	NUMCALL("getxattr small buffer", getxattr("x", "user.a", buf, 3));
	NUMCALL("getxattr missing", getxattr("x", "user.missing", buf, sizeof buf));
	ERRCALL("setxattr XATTR_CREATE existing", setxattr("x", "user.a", "v", 1, XATTR_CREATE));
	ERRCALL("setxattr XATTR_REPLACE missing", setxattr("x", "user.b", "v", 1, XATTR_REPLACE));
	ERRCALL("setxattr XATTR_REPLACE existing", setxattr("x", "user.a", "value2!", 7, XATTR_REPLACE));
	NUMCALL("getxattr user.a", getxattr("x", "user.a", buf, sizeof buf));
	fs_print_bytes("  value", buf, 7);
	ERRCALL("setxattr XATTR_CREATE new", setxattr("x", "user.b", "", 0, XATTR_CREATE));
	NUMCALL("getxattr empty value", getxattr("x", "user.b", buf, sizeof buf));
	ERRCALL("setxattr bad flags", setxattr("x", "user.c", "v", 1, 4));
	ERRCALL("setxattr CREATE|REPLACE", setxattr("x", "user.c", "v", 1, XATTR_CREATE | XATTR_REPLACE));
	char bigv[1000];
	memset(bigv, 'v', sizeof bigv);
	ERRCALL("setxattr 1000-byte value", setxattr("x", "user.big", bigv, sizeof bigv, 0));
	NUMCALL("getxattr 1000-byte value", getxattr("x", "user.big", buf, sizeof buf));
	printf("  matches: %s\n", memcmp(buf, bigv, sizeof bigv) ? "no" : "yes");
	static char huge[70000];
	ERRCALL("setxattr 65537-byte value", setxattr("x", "user.huge", huge, 65537, 0));
	char longname[300] = "user.";
	memset(longname + 5, 'n', 251);
	longname[256] = 0;
	ERRCALL("setxattr 256-byte name", setxattr("x", longname, "v", 1, 0));
	ERRCALL("setxattr name \"user.\"", setxattr("x", "user.", "v", 1, 0));
	ERRCALL("setxattr unknown namespace", setxattr("x", "foo.bar", "v", 1, 0));
	ERRCALL("setxattr no namespace", setxattr("x", "plain", "v", 1, 0));
	ERRCALL("setxattr missing file", setxattr("missing", "user.a", "v", 1, 0));
	ERRCALL("getxattr unknown namespace", getxattr("x", "foo.bar", buf, sizeof buf));

	long n = listxattr("x", buf, sizeof buf);
	long n0 = listxattr("x", NULL, 0);
	printf("listxattr size 0 == listxattr length: %s\n", n >= 0 && n0 == n ? "yes" : "no");
	print_user_list("listxattr", buf, n);
	NUMCALL("listxattr buffer 1", listxattr("x", buf, 1));
	ERRCALL("removexattr user.a", removexattr("x", "user.a"));
	ERRCALL("removexattr user.a again", removexattr("x", "user.a"));
	n = listxattr("x", buf, sizeof buf);
	print_user_list("listxattr after remove", buf, n);

	int fd = open("x", O_RDONLY | O_CLOEXEC);
	ERRCALL("fsetxattr on O_RDONLY fd", fsetxattr(fd, "user.f", "fv", 2, 0));
	NUMCALL("fgetxattr", fgetxattr(fd, "user.f", buf, sizeof buf));
	n = flistxattr(fd, buf, sizeof buf);
	print_user_list("flistxattr", buf, n);
	ERRCALL("fremovexattr", fremovexattr(fd, "user.f"));
	ERRCALL("fgetxattr bad fd", fgetxattr(9999, "user.f", buf, sizeof buf));
	close(fd);
	fd = open("x", O_PATH | O_CLOEXEC);
	ERRCALL("fgetxattr O_PATH fd", fgetxattr(fd, "user.b", buf, sizeof buf));
	close(fd);

	symlink("x", "xl");
	NUMCALL("getxattr through symlink", getxattr("xl", "user.big", buf, sizeof buf));
	NUMCALL("lgetxattr on symlink", lgetxattr("xl", "user.big", buf, sizeof buf));
	ERRCALL("lsetxattr user.* on symlink", lsetxattr("xl", "user.s", "v", 1, 0));
	n = llistxattr("xl", buf, sizeof buf);
	print_user_list("llistxattr symlink", buf, n);

	mkdir("xd", 0755);
	ERRCALL("setxattr on dir", setxattr("xd", "user.d", "dv", 2, 0));
	NUMCALL("getxattr on dir", getxattr("xd", "user.d", buf, sizeof buf));
	mkfifo("xf", 0644);
	ERRCALL("setxattr user.* on fifo", setxattr("xf", "user.f", "v", 1, 0));
	ERRCALL("setxattr user.* on /dev/null", setxattr("/dev/null", "user.n", "v", 1, 0));

	/* xattrs follow the inode through hard links and renames. */
	link("x", "xh");
	NUMCALL("getxattr via hard link", getxattr("xh", "user.big", buf, sizeof buf));
	rename("x", "xr");
	NUMCALL("getxattr after rename", getxattr("xr", "user.big", buf, sizeof buf));
}

int main(void)
{
	mode_t inherited = umask(022);
	printf("inherited umask: %03o\n", (unsigned)inherited);
	fs_enter();
	attr_stat();
	attr_access();
	attr_chmod_chown();
	attr_truncate_fallocate();
	attr_times();
	attr_umask();
	attr_statfs();
	attr_xattr();
	fs_ls("listing", ".");
	fs_leave();
	return 0;
}
