/* open, openat, openat2, creat: flags, path resolution rules and errors.
 * Everything is written inside a fresh /tmp/fsconf-XXXXXX. */
#define CONF_FS
#include "conf.h"

#define SYS_OPENAT2 437
#define C_RESOLVE_NO_XDEV 0x01
#define C_RESOLVE_NO_MAGICLINKS 0x02
#define C_RESOLVE_NO_SYMLINKS 0x04
#define C_RESOLVE_BENEATH 0x08
#define C_RESOLVE_IN_ROOT 0x10
#define C_RESOLVE_CACHED 0x20

struct c_open_how {
	uint64_t flags;
	uint64_t mode;
	uint64_t resolve;
};

/* Prints "label: ok" for an fd, "label: -1 errno=X" otherwise; returns it. */
static int fdres(const char *label, int fd)
{
	int e = errno;
	if (fd >= 0)
		printf("%s: ok\n", label);
	else
		printf("%s: -1 errno=%s\n", label, errname(e));
	return fd;
}

static void closeq(int fd)
{
	if (fd >= 0)
		close(fd);
}

/* open, print, close. */
static void try_open(const char *label, const char *path, int flags)
{
	errno = 0;
	closeq(fdres(label, open(path, flags | O_CLOEXEC, 0644)));
}

static long openat2_(int dfd, const char *path, void *how, size_t size)
{
	return syscall(SYS_OPENAT2, dfd, path, how, size);
}

static void try_openat2(const char *label, int dfd, const char *path, uint64_t flags,
			uint64_t resolve)
{
	struct c_open_how how = { flags | O_CLOEXEC, 0, resolve };
	errno = 0;
	int fd = (int)openat2_(dfd, path, &how, sizeof how);
	fdres(label, fd);
	if (fd >= 0) {
		char buf[64];
		ssize_t n = read(fd, buf, sizeof buf);
		if (n >= 0)
			fs_print_bytes("  content", buf, n);
		close(fd);
	}
}

static void open_basics(void)
{
	int fd = fdres("creat new", creat("c1", 0644));
	ERRCALL("write to creat fd", write(fd, "hello", 5) == 5 ? 0 : -1);
	ERRCALL("read from creat fd (write-only)", read(fd, (char[4]){0}, 4));
	closeq(fd);
	fs_show("c1", "c1", 0);
	fs_cat("c1 content", "c1");

	fd = fdres("open O_CREAT new 0600", open("o1", O_CREAT | O_RDWR | O_CLOEXEC, 0600));
	fs_showfd("o1 fstat", fd);
	closeq(fd);
	fd = fdres("open O_CREAT existing", open("c1", O_CREAT | O_RDWR | O_CLOEXEC, 0600));
	closeq(fd);
	fs_show("c1 after O_CREAT (mode, size kept)", "c1", 0);
	try_open("open O_CREAT|O_EXCL existing", "c1", O_CREAT | O_EXCL | O_WRONLY);
	try_open("open O_CREAT|O_EXCL new", "x1", O_CREAT | O_EXCL | O_WRONLY);
	fs_show("x1", "x1", 0);
	try_open("open missing", "missing", O_RDONLY);
	try_open("open missing O_EXCL without O_CREAT", "missing", O_RDONLY | O_EXCL);
	try_open("open empty path", "", O_RDONLY);
	ERRCALL("openat NULL path", syscall(SYS_openat, AT_FDCWD, NULL, O_RDONLY));

	/* creat truncates an existing file. */
	fs_put("t1", "0123456789");
	fd = fdres("creat existing", creat("t1", 0600));
	closeq(fd);
	fs_show("t1 after creat", "t1", 0);

	/* O_TRUNC */
	fs_put("t2", "0123456789");
	try_open("open O_TRUNC|O_WRONLY", "t2", O_TRUNC | O_WRONLY);
	fs_show("t2 after O_TRUNC", "t2", 0);
	fs_put("t3", "0123456789");
	try_open("open O_TRUNC|O_RDONLY", "t3", O_TRUNC | O_RDONLY);
	fs_show("t3 after O_TRUNC|O_RDONLY", "t3", 0);

	/* close-on-exec */
	fd = open("c1", O_RDONLY | O_CLOEXEC);
	printf("O_CLOEXEC -> FD_CLOEXEC: %d\n", fcntl(fd, F_GETFD) & FD_CLOEXEC);
	closeq(fd);
	fd = open("c1", O_RDONLY);
	printf("no O_CLOEXEC -> FD_CLOEXEC: %d\n", fcntl(fd, F_GETFD) & FD_CLOEXEC);
	closeq(fd);

	/* access mode errors */
	fd = open("c1", O_RDONLY | O_CLOEXEC);
	ERRCALL("write to O_RDONLY fd", write(fd, "x", 1));
	closeq(fd);
	fd = open("c1", O_WRONLY | O_CLOEXEC);
	ERRCALL("read from O_WRONLY fd", read(fd, (char[4]){0}, 4));
	closeq(fd);
}

static void open_append(void)
{
	fs_put("ap", "start:");
	int fd = fdres("open O_APPEND|O_RDWR", open("ap", O_APPEND | O_RDWR | O_CLOEXEC));
	NUMCALL("write abc", write(fd, "abc", 3));
	NUMCALL("offset after append write", lseek(fd, 0, SEEK_CUR));
	NUMCALL("lseek 0", lseek(fd, 0, SEEK_SET));
	NUMCALL("write def after lseek 0", write(fd, "def", 3));
	NUMCALL("offset after second write", lseek(fd, 0, SEEK_CUR));
	NUMCALL("pwrite X at 0 (appends on Linux)", pwrite(fd, "X", 1, 0));
	NUMCALL("offset after pwrite", lseek(fd, 0, SEEK_CUR));
	closeq(fd);
	fs_cat("ap content", "ap");
}

static void open_dirs_and_slashes(void)
{
	mkdir("d", 0755);
	fs_put("d/inner", "inner");
	symlink("d", "ld");
	symlink("c1", "lf");
	symlink("nowhere", "dangling");

	try_open("O_DIRECTORY on file", "c1", O_DIRECTORY | O_RDONLY);
	try_open("O_DIRECTORY on dir", "d", O_DIRECTORY | O_RDONLY);
	try_open("O_DIRECTORY on symlink to dir", "ld", O_DIRECTORY | O_RDONLY);
	try_open("O_DIRECTORY on symlink to file", "lf", O_DIRECTORY | O_RDONLY);
	try_open("O_DIRECTORY|O_NOFOLLOW on symlink to dir", "ld", O_DIRECTORY | O_NOFOLLOW | O_RDONLY);
	try_open("O_DIRECTORY|O_CREAT new", "dcreat", O_DIRECTORY | O_CREAT | O_RDONLY);
	fs_show("dcreat after O_DIRECTORY|O_CREAT", "dcreat", 0);
	try_open("O_NOFOLLOW on symlink to file", "lf", O_NOFOLLOW | O_RDONLY);
	try_open("O_NOFOLLOW on dangling symlink", "dangling", O_NOFOLLOW | O_RDONLY);
	try_open("O_NOFOLLOW on regular file", "c1", O_NOFOLLOW | O_RDONLY);
	try_open("O_NOFOLLOW with symlink in the middle", "ld/inner", O_NOFOLLOW | O_RDONLY);
	try_open("open dir O_RDONLY", "d", O_RDONLY);
	try_open("open dir O_WRONLY", "d", O_WRONLY);
	try_open("open dir O_RDWR", "d", O_RDWR);
	try_open("open dir O_CREAT", "d", O_CREAT | O_RDONLY);
	try_open("open dir O_CREAT|O_EXCL", "d", O_CREAT | O_EXCL | O_RDONLY);
	try_open("open dir O_TRUNC|O_RDONLY", "d", O_TRUNC | O_RDONLY);
	try_open("open dir/ O_RDONLY", "d/", O_RDONLY);
	try_open("open dir/. O_RDONLY", "d/.", O_RDONLY);
	try_open("open file/ O_RDONLY", "c1/", O_RDONLY);
	try_open("open file/. O_RDONLY", "c1/.", O_RDONLY);
	try_open("open symlink-to-dir/ O_RDONLY", "ld/", O_RDONLY);
	try_open("open symlink-to-file/ O_RDONLY", "lf/", O_RDONLY);
	try_open("open new/ O_CREAT", "newf/", O_CREAT | O_WRONLY);
	fs_show("newf after", "newf", 0);
	try_open("open file/ O_CREAT", "c1/", O_CREAT | O_WRONLY);
	try_open("O_CREAT under missing dir", "nodir/x", O_CREAT | O_WRONLY);
	try_open("O_CREAT under a file", "c1/x", O_CREAT | O_WRONLY);
	try_open("open under a file", "c1/x", O_RDONLY);
	try_open("open .. under a file", "c1/..", O_RDONLY);
	try_open("O_CREAT through dangling symlink", "dangling", O_CREAT | O_WRONLY);
	fs_show("dangling target created", "nowhere", 0);
	unlink("nowhere");
	try_open("O_CREAT|O_EXCL on dangling symlink", "dangling", O_CREAT | O_EXCL | O_WRONLY);
	fs_show("dangling target not created", "nowhere", 0);
	try_open("O_CREAT|O_EXCL on symlink to file", "lf", O_CREAT | O_EXCL | O_WRONLY);
	try_open("open . O_RDONLY", ".", O_RDONLY);
	try_open("open .. O_RDONLY", "..", O_RDONLY);
	try_open("open . O_CREAT", ".", O_CREAT | O_RDONLY);
}

static void open_path_tmpfile(void)
{
	char buf[8];
	int fd = fdres("O_PATH on file", open("c1", O_PATH | O_CLOEXEC));
	ERRCALL("read O_PATH fd", read(fd, buf, sizeof buf));
	ERRCALL("write O_PATH fd", write(fd, "x", 1));
	fs_showfd("fstat O_PATH fd", fd);
	printf("F_GETFL O_PATH: %s\n", (fcntl(fd, F_GETFL) & O_PATH) ? "yes" : "no");
	ERRCALL("fchmod O_PATH fd (raw)", syscall(SYS_fchmod, fd, 0644));
	closeq(fd);
	fd = fdres("O_PATH|O_NOFOLLOW on symlink", open("lf", O_PATH | O_NOFOLLOW | O_CLOEXEC));
	fs_showfd("fstat O_PATH symlink fd", fd);
	closeq(fd);
	fd = fdres("O_PATH on dir", open("d", O_PATH | O_CLOEXEC));
	int in = fdres("openat relative to O_PATH dir", openat(fd, "inner", O_RDONLY | O_CLOEXEC));
	if (in >= 0) {
		ssize_t n = read(in, buf, sizeof buf);
		fs_print_bytes("  content", buf, n);
	}
	closeq(in);
	closeq(fd);
	try_open("O_PATH on missing", "missing", O_PATH);

	fd = open(".", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	fdres("O_TMPFILE|O_RDWR in dir", fd);
	if (fd >= 0) {
		fs_showfd("O_TMPFILE fstat", fd);
		NUMCALL("O_TMPFILE write", write(fd, "tmpdata", 7));
		NUMCALL("O_TMPFILE pread", pread(fd, buf, sizeof buf, 0));
		ERRCALL("linkat O_TMPFILE via AT_EMPTY_PATH",
			linkat(fd, "", AT_FDCWD, "tmplinked", AT_EMPTY_PATH));
		fs_showfd("O_TMPFILE fstat after linkat", fd);
		fs_cat("tmplinked content", "tmplinked");
		close(fd);
	}
	fd = open(".", O_TMPFILE | O_RDWR | O_EXCL | O_CLOEXEC, 0600);
	fdres("O_TMPFILE|O_EXCL", fd);
	if (fd >= 0) {
		ERRCALL("linkat O_TMPFILE|O_EXCL", linkat(fd, "", AT_FDCWD, "tmplinked2", AT_EMPTY_PATH));
		close(fd);
	}
	errno = 0;
	closeq(fdres("O_TMPFILE without write access", open(".", O_TMPFILE | O_RDONLY, 0600)));
	errno = 0;
	closeq(fdres("O_TMPFILE on a file", open("c1", O_TMPFILE | O_RDWR, 0600)));
	errno = 0;
	closeq(fdres("O_TMPFILE in missing dir", open("nodir", O_TMPFILE | O_RDWR, 0600)));
	fs_ls("dir after O_TMPFILE", ".");
}

static void open_names(void)
{
	char name[300];
	memset(name, 'a', 255);
	name[255] = 0;
	try_open("O_CREAT 255-byte name", name, O_CREAT | O_WRONLY);
	ERRCALL("unlink 255-byte name", unlink(name));
	memset(name, 'a', 256);
	name[256] = 0;
	try_open("O_CREAT 256-byte name", name, O_CREAT | O_WRONLY);
	try_open("open 256-byte name", name, O_RDONLY);

	static char path[5000];
	fs_put("f01", "f01");
	/* "./" * 2046 + "f01" = 4095 bytes: fits PATH_MAX with the NUL. */
	path[0] = 0;
	for (int i = 0; i < 2046; i++)
		strcat(path, "./");
	strcat(path, "f01");
	printf("path length: %zu\n", strlen(path));
	try_open("open 4095-byte path", path, O_RDONLY);
	/* "./" * 2046 + "/f01" = 4096 bytes: one too many. */
	path[0] = 0;
	for (int i = 0; i < 2046; i++)
		strcat(path, "./");
	strcat(path, "/f01");
	printf("path length: %zu\n", strlen(path));
	try_open("open 4096-byte path", path, O_RDONLY);
	try_open("O_CREAT 4096-byte path", path, O_CREAT | O_WRONLY);

	/* Symlink loops and chains. */
	symlink("loopb", "loopa");
	symlink("loopa", "loopb");
	symlink("self", "self");
	try_open("open a->b->a loop", "loopa", O_RDONLY);
	try_open("open self loop", "self", O_RDONLY);
	try_open("O_CREAT on self loop", "self", O_CREAT | O_WRONLY);
	try_open("open loop as dir component", "loopa/x", O_RDONLY);
	/* chain: l01 -> l02 -> ... -> l40 -> f01 (40 links), l00 -> l01 (41). */
	char a[16], b[16];
	for (int i = 0; i <= 40; i++) {
		snprintf(a, sizeof a, "l%02d", i);
		if (i == 40)
			snprintf(b, sizeof b, "f01");
		else
			snprintf(b, sizeof b, "l%02d", i + 1);
		symlink(b, a);
	}
	try_open("open through 40 chained symlinks", "l01", O_RDONLY);
	try_open("open through 41 chained symlinks", "l00", O_RDONLY);
	/* The count is per whole path: 20 + 21 nested in components. */
	mkdir("cd", 0755);
	fs_put("cd/f", "f");
	for (int i = 0; i <= 25; i++) {
		snprintf(a, sizeof a, "k%02d", i);
		if (i == 25)
			snprintf(b, sizeof b, "cd");
		else
			snprintf(b, sizeof b, "k%02d", i + 1);
		symlink(b, a);
	}
	try_open("open through 26 links then f", "k00/f", O_RDONLY);
	try_open("open k00/../k00/f (52 links)", "k00/../k00/f", O_RDONLY);
	try_open("open k15/../k15/f (20 links)", "k15/../k15/f", O_RDONLY);
}

static void open_at(void)
{
	int dfd = fdres("open dir fd", open("d", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
	int fd = fdres("openat relative", openat(dfd, "inner", O_RDONLY | O_CLOEXEC));
	char buf[16];
	if (fd >= 0) {
		ssize_t n = read(fd, buf, sizeof buf);
		fs_print_bytes("  content", buf, n);
	}
	closeq(fd);
	fd = fdres("openat O_CREAT relative", openat(dfd, "made", O_CREAT | O_WRONLY | O_CLOEXEC, 0644));
	closeq(fd);
	fs_show("d/made", "d/made", 0);
	fd = fdres("openat ..", openat(dfd, "../c1", O_RDONLY | O_CLOEXEC));
	closeq(fd);
	fd = fdres("openat AT_FDCWD relative", openat(AT_FDCWD, "c1", O_RDONLY | O_CLOEXEC));
	closeq(fd);
	int ffd = open("c1", O_RDONLY | O_CLOEXEC);
	errno = 0;
	closeq(fdres("openat with file fd as dirfd", openat(ffd, "x", O_RDONLY)));
	errno = 0;
	closeq(fdres("openat with file fd, empty path", openat(ffd, "", O_RDONLY)));
	errno = 0;
	closeq(fdres("openat with bad dirfd 9999", openat(9999, "x", O_RDONLY)));
	errno = 0;
	closeq(fdres("openat with dirfd -5", openat(-5, "x", O_RDONLY)));
	errno = 0;
	closeq(fdres("openat absolute ignores bad dirfd", openat(9999, "/dev/null", O_RDONLY)));
	errno = 0;
	closeq(fdres("openat absolute ignores file dirfd", openat(ffd, "/dev/null", O_RDONLY)));
	closeq(ffd);
	/* A directory fd still works after the directory is renamed. */
	rename("d", "d-renamed");
	errno = 0;
	closeq(fdres("openat after dir rename", openat(dfd, "inner", O_RDONLY | O_CLOEXEC)));
	rename("d-renamed", "d");
	closeq(dfd);
}

static void open_openat2(void)
{
	mkdir("root", 0755);
	mkdir("root/sub", 0755);
	fs_put("root/f", "inside-f");
	fs_put("f", "outside-f");
	symlink("/f", "root/abs");
	symlink("../f", "root/up");
	symlink("sub/../f", "root/rel");
	symlink("/dev", "root/devl");
	int r = open("root", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	try_openat2("openat2 plain", r, "f", O_RDONLY, 0);
	try_openat2("openat2 BENEATH f", r, "f", O_RDONLY, C_RESOLVE_BENEATH);
	try_openat2("openat2 BENEATH sub/../f", r, "sub/../f", O_RDONLY, C_RESOLVE_BENEATH);
	try_openat2("openat2 BENEATH absolute", r, "/dev/null", O_RDONLY, C_RESOLVE_BENEATH);
	try_openat2("openat2 BENEATH ../f", r, "../f", O_RDONLY, C_RESOLVE_BENEATH);
	try_openat2("openat2 BENEATH sub/../../f", r, "sub/../../f", O_RDONLY, C_RESOLVE_BENEATH);
	try_openat2("openat2 BENEATH symlink abs", r, "abs", O_RDONLY, C_RESOLVE_BENEATH);
	try_openat2("openat2 BENEATH symlink ../f", r, "up", O_RDONLY, C_RESOLVE_BENEATH);
	try_openat2("openat2 BENEATH symlink sub/../f", r, "rel", O_RDONLY, C_RESOLVE_BENEATH);
	try_openat2("openat2 BENEATH AT_FDCWD ../x", AT_FDCWD, "../x", O_RDONLY, C_RESOLVE_BENEATH);
	try_openat2("openat2 IN_ROOT /f", r, "/f", O_RDONLY, C_RESOLVE_IN_ROOT);
	try_openat2("openat2 IN_ROOT ../../../f", r, "../../../f", O_RDONLY, C_RESOLVE_IN_ROOT);
	try_openat2("openat2 IN_ROOT symlink /f", r, "abs", O_RDONLY, C_RESOLVE_IN_ROOT);
	try_openat2("openat2 IN_ROOT symlink ../f", r, "up", O_RDONLY, C_RESOLVE_IN_ROOT);
	try_openat2("openat2 IN_ROOT /devl/null (missing inside)", r, "devl/null", O_RDONLY,
		    C_RESOLVE_IN_ROOT);
	try_openat2("openat2 NO_SYMLINKS plain", r, "f", O_RDONLY, C_RESOLVE_NO_SYMLINKS);
	try_openat2("openat2 NO_SYMLINKS final symlink", r, "rel", O_RDONLY, C_RESOLVE_NO_SYMLINKS);
	try_openat2("openat2 NO_SYMLINKS final symlink O_PATH|O_NOFOLLOW", r, "rel",
		    O_PATH | O_NOFOLLOW, C_RESOLVE_NO_SYMLINKS);
	try_openat2("openat2 NO_SYMLINKS middle symlink", AT_FDCWD, "ld/inner", O_RDONLY,
		    C_RESOLVE_NO_SYMLINKS);
	try_openat2("openat2 NO_MAGICLINKS plain symlink", r, "rel", O_RDONLY, C_RESOLVE_NO_MAGICLINKS);
	try_openat2("openat2 BENEATH|IN_ROOT", r, "f", O_RDONLY,
		    C_RESOLVE_BENEATH | C_RESOLVE_IN_ROOT);
	/* NO_XDEV: ".." may not climb out of a mount (/proc is one natively and in the
	 * sandbox), an absolute path may start at the root, a symlink may not jump there
	 * from another mount (found by the resolver fuzz target). */
	int proc = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	try_openat2("openat2 NO_XDEV .. out of /proc", proc, "..", O_RDONLY | O_DIRECTORY,
		    C_RESOLVE_NO_XDEV);
	try_openat2("openat2 NO_XDEV sys/.. in /proc", proc, "sys/..", O_RDONLY | O_DIRECTORY,
		    C_RESOLVE_NO_XDEV);
	try_openat2("openat2 NO_XDEV absolute from /proc", proc, "/", O_RDONLY | O_DIRECTORY,
		    C_RESOLVE_NO_XDEV);
	try_openat2("openat2 NO_XDEV symlink /dev", r, "devl", O_RDONLY | O_DIRECTORY,
		    C_RESOLVE_NO_XDEV);
	closeq(proc);
	/* RESOLVE_CACHED never creates, truncates or makes a temporary file: EAGAIN. */
	try_openat2("openat2 CACHED O_CREAT", r, "f", O_RDWR | O_CREAT, C_RESOLVE_CACHED);
	try_openat2("openat2 CACHED O_TRUNC", r, "f", O_RDWR | O_TRUNC, C_RESOLVE_CACHED);
	try_openat2("openat2 CACHED O_TMPFILE", r, ".", O_RDWR | O_TMPFILE, C_RESOLVE_CACHED);
	try_openat2("openat2 unknown resolve flag", r, "f", O_RDONLY, 0x1000);
	try_openat2("openat2 unknown open flag", r, "f", O_RDONLY | (1ULL << 40), 0);

	struct c_open_how how = { O_RDONLY, 0644, 0 };
	ERRCALL("openat2 mode without O_CREAT", openat2_(r, "f", &how, sizeof how));
	how.mode = 0;
	int fd;
	how.flags = O_CREAT | O_WRONLY | O_CLOEXEC;
	how.mode = 07777 + 1;
	ERRCALL("openat2 O_CREAT mode > 07777", openat2_(r, "new", &how, sizeof how));
	how.mode = 0640;
	errno = 0;
	fd = fdres("openat2 O_CREAT mode 0640", (int)openat2_(r, "new", &how, sizeof how));
	closeq(fd);
	fs_show("root/new", "root/new", 0);
	how.flags = O_RDONLY | O_CLOEXEC;
	how.mode = 0;
	ERRCALL("openat2 size 16", openat2_(r, "f", &how, 16));
	ERRCALL("openat2 size 0", openat2_(r, "f", &how, 0));
	ERRCALL("openat2 NULL how", openat2_(r, "f", NULL, 24));
	struct {
		struct c_open_how h;
		uint64_t extra;
	} big = { { O_RDONLY | O_CLOEXEC, 0, 0 }, 0 };
	errno = 0;
	closeq(fdres("openat2 size 32 zero tail", (int)openat2_(r, "f", &big, sizeof big)));
	big.extra = 1;
	ERRCALL("openat2 size 32 nonzero tail", openat2_(r, "f", &big, sizeof big));
	static char huge[8192];
	memcpy(huge, &how, sizeof how);
	ERRCALL("openat2 size 4097", openat2_(r, "f", huge, 4097));
	closeq(r);
}

static void open_dev(void)
{
	char buf[64];
	int fd = fdres("open /dev/null O_RDWR", open("/dev/null", O_RDWR | O_CLOEXEC));
	NUMCALL("/dev/null read", read(fd, buf, sizeof buf));
	NUMCALL("/dev/null write", write(fd, "12345", 5));
	NUMCALL("/dev/null lseek", lseek(fd, 100, SEEK_SET));
	fs_showfd("/dev/null fstat", fd);
	closeq(fd);
	try_open("open /dev/null O_CREAT", "/dev/null", O_CREAT | O_WRONLY);
	try_open("open /dev/null O_DIRECTORY", "/dev/null", O_DIRECTORY | O_RDONLY);

	fd = fdres("open /dev/zero", open("/dev/zero", O_RDWR | O_CLOEXEC));
	memset(buf, 0x55, sizeof buf);
	NUMCALL("/dev/zero read", read(fd, buf, sizeof buf));
	int allzero = 1;
	for (size_t i = 0; i < sizeof buf; i++)
		allzero &= buf[i] == 0;
	printf("/dev/zero all zero: %s\n", allzero ? "yes" : "no");
	NUMCALL("/dev/zero write", write(fd, "abc", 3));
	fs_showfd("/dev/zero fstat", fd);
	closeq(fd);

	fd = fdres("open /dev/full", open("/dev/full", O_RDWR | O_CLOEXEC));
	NUMCALL("/dev/full write", write(fd, "abc", 3));
	memset(buf, 0x55, sizeof buf);
	NUMCALL("/dev/full read", read(fd, buf, 8));
	printf("/dev/full reads zeros: %s\n", buf[0] == 0 && buf[7] == 0 ? "yes" : "no");
	fs_showfd("/dev/full fstat", fd);
	closeq(fd);

	const char *rnd[] = { "/dev/urandom", "/dev/random" };
	for (int i = 0; i < 2; i++) {
		char label[64];
		snprintf(label, sizeof label, "open %s", rnd[i]);
		fd = fdres(label, open(rnd[i], O_RDONLY | O_CLOEXEC));
		snprintf(label, sizeof label, "%s read 32", rnd[i]);
		NUMCALL(label, read(fd, buf, 32));
		snprintf(label, sizeof label, "%s fstat", rnd[i]);
		fs_showfd(label, fd);
		closeq(fd);
	}
	try_open("open /dev/does-not-exist", "/dev/does-not-exist", O_RDONLY);
	try_open("open /dev O_DIRECTORY", "/dev", O_RDONLY | O_DIRECTORY);
	try_open("open / O_DIRECTORY", "/", O_RDONLY | O_DIRECTORY);
}

int main(void)
{
	umask(022);
	fs_enter();
	open_basics();
	open_append();
	open_dirs_and_slashes();
	open_path_tmpfile();
	open_names();
	open_at();
	open_openat2();
	open_dev();
	fs_ls("final listing of d", "d");
	fs_leave();
	return 0;
}
