/* inotify(7): inotify_init/inotify_init1 flags, inotify_add_watch masks and
 * flags (IN_ONLYDIR, IN_DONT_FOLLOW, IN_MASK_ADD, IN_MASK_CREATE, IN_ONESHOT,
 * IN_EXCL_UNLINK), inotify_rm_watch and IN_IGNORED, the events of changes
 * made by this process (open, read, write, close, attributes, create, delete,
 * rename with cookies, self events, IN_ISDIR), the read format (name padding,
 * EINVAL for a short buffer, coalescing), FIONREAD, poll and epoll readiness,
 * a blocked reader woken by an event, IN_Q_OVERFLOW at
 * /proc/sys/fs/inotify/max_queued_events, and IN_DELETE_SELF held back while the removed
 * file is still open, mapped or a working directory. Works in a fresh temp dir. */
#define CONF_FS
#include "conf.h"
#include <poll.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <sys/xattr.h>

/* Watch descriptors by label, so that output never shows their numbers. */
static int wds[64];
static const char *wd_names[64];
static int nwds;

static void name_wd(int wd, const char *name)
{
	if (nwds < 64) {
		wds[nwds] = wd;
		wd_names[nwds++] = name;
	}
}

static const char *wd_name(int wd)
{
	static char buf[32];
	for (int i = nwds - 1; i >= 0; i--)
		if (wds[i] == wd)
			return wd_names[i];
	snprintf(buf, sizeof buf, wd == -1 ? "-1" : "?");
	return buf;
}

/* Cookies by order of first appearance: c1, c2, ... (0 stays 0). */
static uint32_t cookies[64];
static int ncookies;

static int cookie_index(uint32_t c)
{
	if (c == 0)
		return 0;
	for (int i = 0; i < ncookies; i++)
		if (cookies[i] == c)
			return i + 1;
	if (ncookies < 64)
		cookies[ncookies++] = c;
	return ncookies;
}

static void mask_names(uint32_t m, char *out, size_t n)
{
	static const struct {
		uint32_t bit;
		const char *name;
	} bits[] = {
		{IN_ACCESS, "ACCESS"},     {IN_MODIFY, "MODIFY"},
		{IN_ATTRIB, "ATTRIB"},     {IN_CLOSE_WRITE, "CLOSE_WRITE"},
		{IN_CLOSE_NOWRITE, "CLOSE_NOWRITE"},
		{IN_OPEN, "OPEN"},         {IN_MOVED_FROM, "MOVED_FROM"},
		{IN_MOVED_TO, "MOVED_TO"}, {IN_CREATE, "CREATE"},
		{IN_DELETE, "DELETE"},     {IN_DELETE_SELF, "DELETE_SELF"},
		{IN_MOVE_SELF, "MOVE_SELF"}, {IN_UNMOUNT, "UNMOUNT"},
		{IN_Q_OVERFLOW, "Q_OVERFLOW"}, {IN_IGNORED, "IGNORED"},
		{IN_ISDIR, "ISDIR"},
	};
	out[0] = 0;
	for (size_t i = 0; i < sizeof bits / sizeof bits[0]; i++) {
		if (m & bits[i].bit) {
			if (out[0])
				strncat(out, "|", n - strlen(out) - 1);
			strncat(out, bits[i].name, n - strlen(out) - 1);
			m &= ~bits[i].bit;
		}
	}
	if (m) {
		char extra[24];
		snprintf(extra, sizeof extra, "%s%#x", out[0] ? "|" : "", m);
		strncat(out, extra, n - strlen(out) - 1);
	}
}

/* Reads and prints every queued event (the fd must be non-blocking). */
static void drain(int fd, const char *label)
{
	char buf[65536] __attribute__((aligned(8)));
	int total = 0;
	printf("%s:\n", label);
	for (;;) {
		long n = read(fd, buf, sizeof buf);
		if (n < 0) {
			if (errno != EAGAIN)
				printf("  read: -1 errno=%s\n", errname(errno));
			break;
		}
		for (long off = 0; off < n;) {
			struct inotify_event *e = (struct inotify_event *)(buf + off);
			char m[256];
			mask_names(e->mask, m, sizeof m);
			printf("  wd=%s mask=%s cookie=c%d len=%u name=\"%s\"\n", wd_name(e->wd), m,
			       cookie_index(e->cookie), e->len, e->len ? e->name : "");
			off += sizeof *e + e->len;
			total++;
		}
	}
	if (total == 0)
		printf("  (none)\n");
}

static int ifd;

/* "label: R errno" with errno read after the call. */
#define RES(label, expr)                                                  \
	do {                                                              \
		errno = 0;                                                \
		long _r = (long)(expr);                                   \
		int _e = errno;                                           \
		printf("%s: %ld %s\n", label, _r, _r < 0 ? errname(_e) : "0"); \
	} while (0)


static int add(const char *path, uint32_t mask, const char *name)
{
	errno = 0;
	int wd = inotify_add_watch(ifd, path, mask);
	if (wd < 0)
		printf("add %s %#x: -1 errno=%s\n", path, mask, errname(errno));
	else
		name_wd(wd, name);
	return wd;
}

static void write_file(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		if (write(fd, data, strlen(data)) < 0)
			printf("write %s failed\n", path);
		close(fd);
	}
}

static void init_flags(void)
{
	int fd = inotify_init();
	printf("init: %s fl=%#x cloexec=%d\n", fd >= 0 ? "ok" : errname(errno),
	       fcntl(fd, F_GETFL) & ~0100000, fcntl(fd, F_GETFD));
	close(fd);
	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	printf("init1 NONBLOCK|CLOEXEC: %s fl=%#x cloexec=%d\n", fd >= 0 ? "ok" : errname(errno),
	       fcntl(fd, F_GETFL) & ~0100000, fcntl(fd, F_GETFD));
	char b[64];
	RES("read empty nonblock", (long)read(fd, b, sizeof b));
	RES("write", (long)write(fd, b, 1));
	int avail = -1;
	int ir = ioctl(fd, FIONREAD, &avail);
	printf("FIONREAD empty: %d avail=%d\n", ir, avail);
	struct stat st;
	fstat(fd, &st);
	printf("fstat type=%s\n", fs_type(st.st_mode));
	char link[64], target[128] = "";
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	long n = readlink(link, target, sizeof target - 1);
	if (n > 0)
		target[n] = 0;
	printf("fd link: %s\n", target);
	close(fd);
	RES("init1 bad flag", inotify_init1(1));
	RES("init1 O_RDWR", inotify_init1(O_RDWR));
}

static void add_errors(void)
{
	int one = 0;
	mkdir("d", 0755);
	write_file("f", "x");
	symlink("f", "lnk");
	symlink("missing", "dangling");
	RES("add mask 0", inotify_add_watch(ifd, "f", 0));
	RES("add MASK_ADD|MASK_CREATE", inotify_add_watch(ifd, "f", IN_MODIFY | IN_MASK_ADD | IN_MASK_CREATE));
	RES("add bad fd", inotify_add_watch(99, "f", IN_MODIFY));
	RES("add non-inotify fd", inotify_add_watch(1, "f", IN_MODIFY));
	RES("add missing", inotify_add_watch(ifd, "nope", IN_MODIFY));
	RES("add ONLYDIR on file", inotify_add_watch(ifd, "f", IN_MODIFY | IN_ONLYDIR));
	RES("add dangling", inotify_add_watch(ifd, "dangling", IN_MODIFY));
	int w1 = inotify_add_watch(ifd, "dangling", IN_ATTRIB | IN_DONT_FOLLOW);
	printf("add dangling DONT_FOLLOW: %s\n", w1 > 0 ? "ok" : errname(errno));
	int w2 = inotify_add_watch(ifd, "f", IN_MODIFY);
	int w3 = inotify_add_watch(ifd, "lnk", IN_ATTRIB);
	printf("same inode via symlink same wd: %d\n", w2 == w3);
	int w4 = inotify_add_watch(ifd, "lnk", IN_ATTRIB | IN_DONT_FOLLOW);
	printf("symlink itself other wd: %d\n", w4 != w2 && w4 > 0);
	RES("add MASK_CREATE existing", inotify_add_watch(ifd, "f", IN_MODIFY | IN_MASK_CREATE));
	int w5 = inotify_add_watch(ifd, "d", IN_CREATE | IN_ONLYDIR);
	printf("add ONLYDIR on dir: %s, wds increase: %d\n", w5 > 0 ? "ok" : errname(errno),
	       w1 < w2 && w2 < w4 && w4 < w5);
	int w6 = inotify_add_watch(ifd, "d", IN_ONESHOT);
	printf("flags-only mask: %s same=%d\n", w6 > 0 ? "ok" : errname(errno), w6 == w5);
	name_wd(w1, "dangling");
	name_wd(w2, "f");
	name_wd(w4, "lnk");
	name_wd(w5, "d");
	printf("rm w1: %d\n", inotify_rm_watch(ifd, w1));
	RES("rm w1 again", inotify_rm_watch(ifd, w1));
	RES("rm bogus", inotify_rm_watch(ifd, 12345));
	RES("rm bad fd", inotify_rm_watch(99, w2));
	RES("rm non-inotify fd", inotify_rm_watch(1, w2));
	inotify_rm_watch(ifd, w2);
	inotify_rm_watch(ifd, w4);
	inotify_rm_watch(ifd, w5);
	(void)one;
	drain(ifd, "after add/rm");
	unlink("lnk");
	unlink("dangling");
	unlink("f");
	rmdir("d");
	drain(ifd, "after cleanup (no watches)");
}

static void file_events(void)
{
	mkdir("w", 0755);
	add("w", IN_ALL_EVENTS, "w");
	int fd = open("w/a", O_RDWR | O_CREAT, 0644);
	drain(ifd, "create+open");
	int wa = add("w/a", IN_ALL_EVENTS, "a");
	(void)wa;
	if (write(fd, "hello", 5) != 5)
		printf("write failed\n");
	if (write(fd, "world", 5) != 5)
		printf("write failed\n");
	drain(ifd, "two writes (coalesced)");
	char b[16];
	lseek(fd, 0, SEEK_SET);
	if (read(fd, b, sizeof b) < 0)
		printf("read failed\n");
	if (read(fd, b, sizeof b) != 0)
		printf("read at eof not 0\n");
	drain(ifd, "read, then read at EOF");
	if (pwrite(fd, "x", 1, 2) != 1 || pread(fd, b, 1, 0) != 1)
		printf("pwrite/pread failed\n");
	drain(ifd, "pwrite, pread");
	if (ftruncate(fd, 3) != 0)
		printf("ftruncate failed\n");
	drain(ifd, "ftruncate");
	fchmod(fd, 0600);
	drain(ifd, "fchmod");
	struct timespec ts[2] = {{1, 0}, {2, 0}};
	futimens(fd, ts);
	drain(ifd, "futimens both");
	struct timespec ts2[2] = {{1, 0}, {0, UTIME_OMIT}};
	futimens(fd, ts2);
	drain(ifd, "futimens atime only");
	struct timespec ts3[2] = {{0, UTIME_OMIT}, {3, 0}};
	futimens(fd, ts3);
	drain(ifd, "futimens mtime only");
	fchown(fd, -1, -1);
	drain(ifd, "fchown -1 -1");
	fchown(fd, geteuid(), -1);
	drain(ifd, "fchown self");
	if (fsetxattr(fd, "user.k", "v", 1, 0) == 0)
		drain(ifd, "setxattr");
	else
		printf("setxattr: %s\n", errname(errno));
	close(fd);
	drain(ifd, "close rw");
	fd = open("w/a", O_RDONLY);
	close(fd);
	drain(ifd, "open+close ro");
	fd = open("w/a", O_WRONLY | O_TRUNC);
	close(fd);
	drain(ifd, "open O_TRUNC");
	truncate("w/a", 10);
	drain(ifd, "truncate by path");
	chmod("w/a", 0644);
	drain(ifd, "chmod by path");
	int d = open("w", O_RDONLY | O_DIRECTORY);
	char db[4096];
	syscall(SYS_getdents64, d, db, sizeof db);
	close(d);
	drain(ifd, "open, getdents, close of the dir");
	chmod("w", 0755);
	drain(ifd, "chmod dir");
}

static void dir_events(void)
{
	mkdir("w/sub", 0755);
	drain(ifd, "mkdir");
	int ws = add("w/sub", IN_ALL_EVENTS, "sub");
	(void)ws;
	mknod("w/fifo", S_IFIFO | 0644, 0);
	symlink("a", "w/sl");
	drain(ifd, "mknod fifo, symlink");
	link("w/a", "w/hard");
	drain(ifd, "link");
	unlink("w/hard");
	drain(ifd, "unlink (file keeps a link)");
	rename("w/a", "w/b");
	drain(ifd, "rename in dir");
	rename("w/b", "w/sub/b");
	drain(ifd, "rename to subdir");
	write_file("w/c", "c");
	add("w/c", IN_ALL_EVENTS, "c");
	drain(ifd, "create c");
	rename("w/sub/b", "w/c");
	drain(ifd, "rename over watched c");
	rename("w/sub", "w/sub2");
	drain(ifd, "rename dir");
	syscall(SYS_renameat2, AT_FDCWD, "w/c", AT_FDCWD, "w/sub2", 2 /* RENAME_EXCHANGE */);
	drain(ifd, "exchange");
	unlink("w/fifo");
	unlink("w/sl");
	drain(ifd, "unlink fifo, symlink");
	/* w/c is now the dir (sub2 content), w/sub2 is the file */
	unlink("w/sub2");
	drain(ifd, "unlink watched file (last link)");
	rmdir("w/c");
	drain(ifd, "rmdir watched dir");
}

static void flag_events(void)
{
	mkdir("x", 0755);
	write_file("x/f", "1");
	int wx = add("x", IN_MODIFY | IN_ONESHOT, "x-oneshot");
	write_file("x/f", "2");
	write_file("x/f", "3");
	drain(ifd, "oneshot dir watch, two writes of a child");
	RES("rm oneshot wd after fire", inotify_rm_watch(ifd, wx));
	int w1 = add("x/f", IN_MODIFY, "f");
	int w2 = add("x/f", IN_ATTRIB | IN_MASK_ADD, "f");
	printf("MASK_ADD same wd: %d\n", w1 == w2);
	write_file("x/f", "4");
	chmod("x/f", 0600);
	drain(ifd, "after MASK_ADD (modify and attrib)");
	add("x/f", IN_ATTRIB, "f");
	write_file("x/f", "5");
	chmod("x/f", 0644);
	drain(ifd, "after replacing mask (attrib only)");
	inotify_rm_watch(ifd, w1);
	drain(ifd, "rm_watch");
	/* IN_EXCL_UNLINK: events on an unlinked child no longer reach the dir. */
	int fd = open("x/f", O_RDWR);
	int wd1 = add("x", IN_MODIFY | IN_EXCL_UNLINK, "x-excl");
	if (write(fd, "a", 1) != 1)
		printf("write failed\n");
	drain(ifd, "excl_unlink, linked child");
	unlink("x/f");
	if (write(fd, "b", 1) != 1)
		printf("write failed\n");
	drain(ifd, "excl_unlink, unlinked child");
	inotify_rm_watch(ifd, wd1);
	add("x", IN_MODIFY, "x-plain");
	if (write(fd, "c", 1) != 1)
		printf("write failed\n");
	drain(ifd, "no excl_unlink, unlinked child");
	close(fd);
	drain(ifd, "after close");
	rmdir("x");
	drain(ifd, "rmdir x");
}

static void read_format(void)
{
	mkdir("r", 0755);
	int wd = add("r", IN_CREATE, "r");
	(void)wd;
	const char *names[] = {"a", "fifteen_chars_x", "sixteen_chars_xy", "seventeen_chars_x"};
	for (int i = 0; i < 4; i++)
		write_file(names[i], "");
	for (int i = 0; i < 4; i++) {
		char p[64];
		snprintf(p, sizeof p, "r/%s", names[i]);
		write_file(p, "");
	}
	int avail = -1;
	ioctl(ifd, FIONREAD, &avail);
	printf("FIONREAD: %d\n", avail);
	char buf[256] __attribute__((aligned(8)));
	RES("read 0 bytes", (long)read(ifd, buf, 0));
	RES("read 16 bytes", (long)read(ifd, buf, 16));
	RES("read 31 bytes", (long)read(ifd, buf, 31));
	RES("read 32 bytes", (long)read(ifd, buf, 32));
	RES("read 40 bytes", (long)read(ifd, buf, 40));
	struct inotify_event *e = (struct inotify_event *)buf;
	printf("  name=%s len=%u\n", e->name, e->len);
	errno = 0;
	long n = read(ifd, buf, 100);
	printf("read 100 bytes: %ld %s\n", n, errname(errno));
	ioctl(ifd, FIONREAD, &avail);
	printf("FIONREAD: %d\n", avail);
	drain(ifd, "rest");
	for (int i = 0; i < 4; i++) {
		char p[64];
		unlink(names[i]);
		snprintf(p, sizeof p, "r/%s", names[i]);
		unlink(p);
	}
	rmdir("r");
	drain(ifd, "rmdir r");
}

static void *delayed_touch(void *arg)
{
	(void)arg;
	usleep(100000);
	write_file("p/t", "t");
	return NULL;
}

static void readiness(void)
{
	mkdir("p", 0755);
	int fd = inotify_init1(IN_NONBLOCK);
	inotify_add_watch(fd, "p", IN_CREATE);
	struct pollfd pfd = {fd, POLLIN | POLLOUT, 0};
	int pr = poll(&pfd, 1, 0);
	printf("poll empty: %d revents=%#x\n", pr, pfd.revents);
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.u32 = 7};
	printf("epoll_ctl: %d\n", epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev));
	struct epoll_event out;
	printf("epoll_wait empty: %d\n", epoll_wait(ep, &out, 1, 0));
	write_file("p/a", "");
	pr = poll(&pfd, 1, 0);
	printf("poll: %d revents=%#x\n", pr, pfd.revents);
	int n = epoll_wait(ep, &out, 1, 1000);
	printf("epoll_wait: %d events=%#x data=%u\n", n, n > 0 ? out.events : 0, out.data.u32);
	printf("epoll_wait again (edge): %d\n", epoll_wait(ep, &out, 1, 0));
	write_file("p/b", "");
	n = epoll_wait(ep, &out, 1, 1000);
	printf("epoll_wait after new event: %d events=%#x\n", n, n > 0 ? out.events : 0);
	drain(fd, "readiness events");
	pr = poll(&pfd, 1, 0);
	printf("poll drained: %d revents=%#x\n", pr, pfd.revents);
	close(ep);
	close(fd);
	/* A blocking read waits for the next event. */
	fd = inotify_init();
	inotify_add_watch(fd, "p", IN_CREATE);
	pthread_t th;
	pthread_create(&th, NULL, delayed_touch, NULL);
	char buf[256] __attribute__((aligned(8)));
	long r = read(fd, buf, sizeof buf);
	struct inotify_event *e = (struct inotify_event *)buf;
	printf("blocking read: %ld mask=%#x name=%s\n", r, r > 0 ? e->mask : 0, r > 0 ? e->name : "");
	pthread_join(th, NULL);
	close(fd);
	unlink("p/a");
	unlink("p/b");
	unlink("p/t");
	rmdir("p");
}

static void overflow(void)
{
	long max = -1;
	FILE *f = fopen("/proc/sys/fs/inotify/max_queued_events", "r");
	if (f) {
		if (fscanf(f, "%ld", &max) != 1)
			max = -1;
		fclose(f);
	}
	printf("max_queued_events readable: %d\n", max > 0);
	if (max <= 0 || max > 100000)
		return;
	int fd = inotify_init1(IN_NONBLOCK);
	mkdir("o", 0755);
	write_file("o/f", "");
	inotify_add_watch(fd, "o/f", IN_OPEN | IN_CLOSE_NOWRITE);
	/* Alternate events so that none coalesce: 2 per round. */
	for (long i = 0; i < max / 2 + 10; i++) {
		int g = open("o/f", O_RDONLY);
		close(g);
	}
	int avail = 0;
	ioctl(fd, FIONREAD, &avail);
	printf("FIONREAD = (max+1)*16: %d\n", (long)avail == (max + 1) * 16);
	static char buf[1 << 20] __attribute__((aligned(8)));
	long total = 0, events = 0, overflows = 0, last_mask = 0, last_wd = 0;
	for (;;) {
		long n = read(fd, buf, sizeof buf);
		if (n <= 0)
			break;
		for (long off = 0; off < n;) {
			struct inotify_event *e = (struct inotify_event *)(buf + off);
			events++;
			if (e->mask & IN_Q_OVERFLOW)
				overflows++;
			last_mask = e->mask;
			last_wd = e->wd;
			off += sizeof *e + e->len;
		}
		total += n;
	}
	printf("events = max+1: %d, overflows: %ld, last mask=%#lx wd=%ld\n", events == max + 1,
	       overflows, last_mask, last_wd);
	/* The queue works again once read. */
	int g = open("o/f", O_RDONLY);
	close(g);
	char b[64];
	long n = read(fd, b, sizeof b);
	printf("after overflow: %ld bytes\n", n);
	close(fd);
	unlink("o/f");
	rmdir("o");
	(void)total;
}

static void close_instance(void)
{
	/* Closing the instance drops its watches; another instance sees its own. */
	mkdir("c", 0755);
	int a = inotify_init1(IN_NONBLOCK), b = inotify_init1(IN_NONBLOCK);
	int wa = inotify_add_watch(a, "c", IN_CREATE);
	int wb = inotify_add_watch(b, "c", IN_CREATE);
	printf("separate instances number alike: %d\n", wa == wb);
	close(a);
	write_file("c/x", "");
	ifd = b;
	name_wd(wb, "c");
	drain(b, "second instance");
	close(b);
	unlink("c/x");
	rmdir("c");
}

/* A removed file's deletion (IN_DELETE_SELF, IN_IGNORED) is reported when the last
 * reference to its name goes: at once when nothing holds it, else at the last close,
 * munmap, or chdir away, as Linux's d_delete and dput. */
static void deferred_deletion(void)
{
	write_file("held", "x");
	int fd = open("held", O_RDONLY);
	add("held", IN_ALL_EVENTS, "held");
	RES("unlink open file", unlink("held"));
	drain(ifd, "unlinked while open");
	close(fd);
	drain(ifd, "after the last close");

	write_file("mapped", "data");
	fd = open("mapped", O_RDONLY);
	void *p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	add("mapped", IN_ALL_EVENTS & ~IN_CLOSE_NOWRITE & ~IN_OPEN, "mapped");
	RES("unlink mapped file", unlink("mapped"));
	drain(ifd, "unlinked while mapped");
	munmap(p, 4096);
	drain(ifd, "after munmap");

	write_file("linked", "x");
	RES("second name", link("linked", "linked2"));
	fd = open("linked", O_RDONLY);
	add("linked", IN_ATTRIB | IN_DELETE_SELF, "linked");
	RES("unlink one of two names", unlink("linked"));
	close(fd);
	drain(ifd, "a name left");
	RES("unlink the other", unlink("linked2"));
	drain(ifd, "no name left, nothing open");

	write_file("target", "x");
	write_file("source", "y");
	fd = open("target", O_RDONLY);
	add("target", IN_ATTRIB | IN_DELETE_SELF | IN_CLOSE_NOWRITE, "target");
	RES("rename over an open file", rename("source", "target"));
	drain(ifd, "replaced while open");
	close(fd);
	drain(ifd, "replaced file closed");

	mkdir("cwd", 0755);
	add("cwd", IN_DELETE_SELF, "cwd");
	int here = open(".", O_RDONLY | O_DIRECTORY);
	RES("chdir cwd", chdir("cwd"));
	RES("rmdir the working directory", rmdir("../cwd"));
	drain(ifd, "removed while the working directory");
	RES("fchdir back", fchdir(here));
	close(here);
	drain(ifd, "after leaving it");
}

int main(void)
{
	fs_enter();
	init_flags();
	ifd = inotify_init1(IN_NONBLOCK);
	add_errors();
	file_events();
	dir_events();
	drain(ifd, "leftover");
	rmdir("w");
	drain(ifd, "rmdir w");
	close(ifd);
	ifd = inotify_init1(IN_NONBLOCK);
	flag_events();
	read_format();
	deferred_deletion();
	close(ifd);
	readiness();
	overflow();
	close_instance();
	fs_leave();
	return 0;
}
