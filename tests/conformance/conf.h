/* Shared helpers for the differential conformance programs.
 *
 * Every program's stdout must be identical natively and in the sandbox:
 * print properties ("ok", errno names, checksums of deterministic data),
 * never addresses, pids, times or random bytes. */
#ifndef CONF_H
#define CONF_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Line-buffered stdout, so a run that crashes still shows how far it got. */
__attribute__((constructor)) static void conf_line_buffered_stdout(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
}

__attribute__((unused)) static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case ESRCH: return "ESRCH";
	case EINTR: return "EINTR";
	case EIO: return "EIO";
	case E2BIG: return "E2BIG";
	case ENOEXEC: return "ENOEXEC";
	case EBADF: return "EBADF";
	case ECHILD: return "ECHILD";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case ENODEV: return "ENODEV";
	case ENOTDIR: return "ENOTDIR";
	case EISDIR: return "EISDIR";
	case EINVAL: return "EINVAL";
	case EMFILE: return "EMFILE";
	case ENOTTY: return "ENOTTY";
	case EFBIG: return "EFBIG";
	case ENOSPC: return "ENOSPC";
	case ESPIPE: return "ESPIPE";
	case EROFS: return "EROFS";
	case EPIPE: return "EPIPE";
	case ERANGE: return "ERANGE";
	case ENAMETOOLONG: return "ENAMETOOLONG";
	case ENOSYS: return "ENOSYS";
	case EOVERFLOW: return "EOVERFLOW";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case ELOOP: return "ELOOP";
	case EXDEV: return "EXDEV";
	case ENOTEMPTY: return "ENOTEMPTY";
	case ENODATA: return "ENODATA";
	case ENXIO: return "ENXIO";
	case EMLINK: return "EMLINK";
	case ETXTBSY: return "ETXTBSY";
	case ENFILE: return "ENFILE";
	case EDQUOT: return "EDQUOT";
	case EBADFD: return "EBADFD";
	case ESTALE: return "ESTALE";
	case ENOMSG: return "ENOMSG";
	case EIDRM: return "EIDRM";
	case ETIMEDOUT: return "ETIMEDOUT";
	default: {
		static char buf[32];
		snprintf(buf, sizeof buf, "errno%d", e);
		return buf;
	}
	}
}

/* Print "label: ok" when cond holds, otherwise "label: FAIL (detail)". */
#define CHECK(label, cond)                                                   \
	do {                                                                 \
		if (cond)                                                    \
			printf("%s: ok\n", label);                           \
		else                                                         \
			printf("%s: FAIL (%s, line %d)\n", label, #cond,     \
			       __LINE__);                                    \
	} while (0)

/* Run a call returning -1/errno and print "label: ret=R errno=NAME". The
 * return value is printed only when it is 0 or -1 so no addresses leak. */
#define ERRCALL(label, expr)                                                 \
	do {                                                                 \
		errno = 0;                                                   \
		long _r = (long)(expr);                                      \
		int _e = errno;                                              \
		printf("%s: %s errno=%s\n", label,                           \
		       _r == -1 ? "-1" : (_r == 0 ? "0" : "other"),          \
		       _r == -1 ? errname(_e) : "0");                        \
	} while (0)

/* A wait status in words ("exited 3", "killed by 9", "stopped by 19", "continued"). */
__attribute__((unused)) static const char *wait_status(int st)
{
	static char buf[64];
	if (WIFEXITED(st))
		snprintf(buf, sizeof buf, "exited %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, sizeof buf, "killed by %d", WTERMSIG(st));
	else if (WIFSTOPPED(st))
		snprintf(buf, sizeof buf, "stopped by %d", WSTOPSIG(st));
	else if (WIFCONTINUED(st))
		snprintf(buf, sizeof buf, "continued");
	else
		snprintf(buf, sizeof buf, "status %#x", st);
	return buf;
}

/* Job control depends on how a program was started: stop signals from a terminal
 * (SIGTSTP, SIGTTIN, SIGTTOU) are discarded in an orphaned process group, one with no
 * member whose parent is in another group of the same session (a program started by
 * `setsid`, by a CI runner without a terminal, or as the sandbox's first process). This
 * gives the caller a known place whatever started it: a new session whose leader waits
 * while the caller, its child, runs in a group of its own, not orphaned. The leader and
 * the original process exit with the caller's status (128+N if killed by signal N). */
__attribute__((unused)) static void conf_own_session(void)
{
	fflush(stdout);
	pid_t leader = fork();
	if (leader != 0) {
		int st = 0;
		while (leader > 0 && waitpid(leader, &st, 0) < 0 && errno == EINTR)
			;
		exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	}
	setsid();
	pid_t caller = fork();
	if (caller != 0) {
		int st = 0;
		while (caller > 0 && waitpid(caller, &st, 0) < 0 && errno == EINTR)
			;
		_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	}
	setpgid(0, 0);
}

/* The Threads: line of /proc/self/status (-1 if it can't be read). */
__attribute__((unused)) static int conf_threads_now(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	if (!f)
		return -1;
	char line[256];
	int n = -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "Threads: %d", &n) == 1)
			break;
	fclose(f);
	return n;
}

/* FNV-1a, for printing checksums of deterministic data. */
__attribute__((unused)) static uint64_t fnv1a(const void *p, size_t n, uint64_t h)
{
	const unsigned char *c = p;
	if (h == 0)
		h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= c[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* Deterministic PRNG (xorshift64*). */
__attribute__((unused)) static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
__attribute__((unused)) static uint64_t rng(void)
{
	uint64_t x = rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 2685821657736338717ULL;
}

/* Recursion through `depth` frames of 4 KiB of stack, each touched, returning a checksum
 * (for the stack programs: how deep the main thread's stack goes). */
__attribute__((unused, noinline)) static uint64_t conf_deep_stack(long depth, uint64_t acc)
{
	volatile unsigned char frame[4096];
	for (size_t i = 0; i < sizeof frame; i += 512)
		frame[i] = (unsigned char)(depth + i);
	if (depth == 0)
		return acc;
	uint64_t r = conf_deep_stack(depth - 1, acc * 31 + frame[512]);
	return r ^ frame[depth % 8 * 512];
}

/* ---------------------------------------------------------------------------
 * File-system helpers, for the fs_*.c programs: #define CONF_FS before
 * including conf.h. Each program works in a fresh /tmp/fsconf-XXXXXX (its
 * name is never printed), uses relative paths, and removes it at the end. */
#ifdef CONF_FS
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

static char conf_tmpdir[64];

/* Print "label: N" for N >= 0, "label: -1 errno=NAME" for -1. For sizes and
 * counts (never for fds, addresses or times). */
#define NUMCALL(label, expr)                                                 \
	do {                                                                 \
		errno = 0;                                                   \
		long _r = (long)(expr);                                      \
		int _e = errno;                                              \
		if (_r == -1)                                                \
			printf("%s: -1 errno=%s\n", label, errname(_e));    \
		else                                                         \
			printf("%s: %ld\n", label, _r);                      \
	} while (0)

/* Creates /tmp/fsconf-XXXXXX and makes it the working directory. */
__attribute__((unused)) static void fs_enter(void)
{
	strcpy(conf_tmpdir, "/tmp/fsconf-XXXXXX");
	if (!mkdtemp(conf_tmpdir)) {
		printf("mkdtemp: FAIL errno=%s\n", errname(errno));
		exit(2);
	}
	if (chdir(conf_tmpdir) != 0) {
		printf("chdir tmpdir: FAIL errno=%s\n", errname(errno));
		exit(2);
	}
}

/* rm -rf NAME relative to dfd. Returns 0 when everything went. */
__attribute__((unused)) static int fs_rm_rf_at(int dfd, const char *name)
{
	struct stat st;
	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : -1;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dfd, name, 0);
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	DIR *d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -1;
	}
	int rc = 0;
	struct dirent *e;
	/* Collect names first: removing while reading is allowed but keep it
	 * simple and filesystem-independent. */
	char **names = NULL;
	size_t n = 0, cap = 0;
	while ((e = readdir(d)) != NULL) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			names = realloc(names, cap * sizeof *names);
		}
		names[n++] = strdup(e->d_name);
	}
	for (size_t i = 0; i < n; i++) {
		if (fs_rm_rf_at(dirfd(d), names[i]) != 0)
			rc = -1;
		free(names[i]);
	}
	free(names);
	closedir(d);
	if (unlinkat(dfd, name, AT_REMOVEDIR) != 0)
		rc = -1;
	return rc;
}

/* Leaves the tmp dir and removes it; prints "cleanup: ok". */
__attribute__((unused)) static void fs_leave(void)
{
	if (chdir("/") != 0)
		printf("chdir /: FAIL errno=%s\n", errname(errno));
	int rc = fs_rm_rf_at(AT_FDCWD, conf_tmpdir);
	struct stat st;
	int gone = lstat(conf_tmpdir, &st) != 0 && errno == ENOENT;
	printf("cleanup: %s\n", rc == 0 && gone ? "ok" : "FAIL");
}

__attribute__((unused)) static const char *fs_type(mode_t m)
{
	if (S_ISREG(m)) return "reg";
	if (S_ISDIR(m)) return "dir";
	if (S_ISLNK(m)) return "lnk";
	if (S_ISFIFO(m)) return "fifo";
	if (S_ISCHR(m)) return "chr";
	if (S_ISBLK(m)) return "blk";
	if (S_ISSOCK(m)) return "sock";
	return "?";
}

/* "type=reg mode=0644 nlink=1 size=5": sizes only for files and symlinks
 * (directory sizes differ between filesystems). */
__attribute__((unused)) static void fs_print_stat(const char *label, const struct stat *st)
{
	printf("%s: type=%s mode=%04o nlink=%lu", label, fs_type(st->st_mode),
	       (unsigned)(st->st_mode & 07777), (unsigned long)st->st_nlink);
	if (S_ISREG(st->st_mode) || S_ISLNK(st->st_mode))
		printf(" size=%lld", (long long)st->st_size);
	printf("\n");
}

/* lstat (follow = 0) or stat (follow = 1) PATH and print it or the errno. */
__attribute__((unused)) static void fs_show(const char *label, const char *path, int follow)
{
	struct stat st;
	int r = follow ? stat(path, &st) : lstat(path, &st);
	if (r != 0)
		printf("%s: -1 errno=%s\n", label, errname(errno));
	else
		fs_print_stat(label, &st);
}

__attribute__((unused)) static void fs_showfd(const char *label, int fd)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		printf("%s: -1 errno=%s\n", label, errname(errno));
	else
		fs_print_stat(label, &st);
}

__attribute__((unused)) static int fs_cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Prints the sorted names in directory PATH (including . and ..). */
__attribute__((unused)) static void fs_ls(const char *label, const char *path)
{
	DIR *d = opendir(path);
	if (!d) {
		printf("%s: -1 errno=%s\n", label, errname(errno));
		return;
	}
	char *names[512];
	size_t n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < 512)
		names[n++] = strdup(e->d_name);
	closedir(d);
	qsort(names, n, sizeof *names, fs_cmpstr);
	printf("%s:", label);
	for (size_t i = 0; i < n; i++) {
		printf(" %s", names[i]);
		free(names[i]);
	}
	printf("\n");
}

/* Prints getcwd() with the tmp dir replaced by "<tmp>". */
__attribute__((unused)) static void fs_cwd(const char *label)
{
	char buf[PATH_MAX];
	if (!getcwd(buf, sizeof buf)) {
		printf("%s: -1 errno=%s\n", label, errname(errno));
		return;
	}
	size_t n = strlen(conf_tmpdir);
	if (n && !strncmp(buf, conf_tmpdir, n) && (buf[n] == 0 || buf[n] == '/'))
		printf("%s: <tmp>%s\n", label, buf + n);
	else
		printf("%s: %s\n", label, buf);
}

/* Creates (or truncates) PATH with DATA and mode 0644 (before umask). */
__attribute__((unused)) static int fs_put(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	size_t n = strlen(data);
	ssize_t w = write(fd, data, n);
	close(fd);
	return w == (ssize_t)n ? 0 : -1;
}

/* Prints BUF[0..n) escaped: "label: "text\n"". */
__attribute__((unused)) static void fs_print_bytes(const char *label, const char *buf, long n)
{
	printf("%s: %ld \"", label, n);
	for (long i = 0; i < n && i < 128; i++) {
		unsigned char c = (unsigned char)buf[i];
		if (c == '\n')
			printf("\\n");
		else if (c == '\\' || c == '"')
			printf("\\%c", c);
		else if (c < 32 || c > 126)
			printf("\\x%02x", c);
		else
			putchar(c);
	}
	printf("%s\"\n", n > 128 ? "..." : "");
}

/* Prints the contents of PATH (up to 128 bytes shown) or the errno. */
__attribute__((unused)) static void fs_cat(const char *label, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		printf("%s: -1 errno=%s\n", label, errname(errno));
		return;
	}
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof buf);
	int e = errno;
	close(fd);
	if (n < 0)
		printf("%s: read -1 errno=%s\n", label, errname(e));
	else
		fs_print_bytes(label, buf, n);
}
#endif /* CONF_FS */

/* The kernel's struct sigevent (64 bytes), for timer_create through syscall(2): musl and
 * glibc differ in theirs, and SIGEV_THREAD_ID needs the kernel's tid field. */
struct ksigevent {
	union {
		int sival_int;
		void *sival_ptr;
	} value;
	int signo;
	int notify;
	int tid;
	int pad[11];
};
#define K_SIGEV_SIGNAL 0
#define K_SIGEV_NONE 1
#define K_SIGEV_THREAD_ID 4

#endif
