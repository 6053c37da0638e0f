/* Linux AIO through raw system calls (musl has no libaio): io_setup's checks and its ring
 * (a real shared mapping libaio reads completions from), io_submit of every command and
 * its errors in Linux's order, completion events (data, obj, res), eventfd notification,
 * poll requests and io_cancel, io_getevents' counts, timeouts and signals (never restarted;
 * io_pgetevents restarts when no handler runs, and takes a signal mask), reaping from the
 * ring in user space, the ring filling up (EAGAIN), io_destroy with a waiter and a pending
 * poll, munmap, mremap and fork of the ring. Only facts that hold whatever the timing and
 * the CPU count print. */
#include "conf.h"
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <time.h>

#ifndef SYS_io_pgetevents
#define SYS_io_pgetevents 333
#endif

typedef unsigned long aio_context_t;

struct iocb {
	uint64_t aio_data;
	uint32_t aio_key;
	int32_t aio_rw_flags;
	uint16_t aio_lio_opcode;
	int16_t aio_reqprio;
	uint32_t aio_fildes;
	uint64_t aio_buf;
	uint64_t aio_nbytes;
	int64_t aio_offset;
	uint64_t aio_reserved2;
	uint32_t aio_flags;
	uint32_t aio_resfd;
};

struct io_event {
	uint64_t data;
	uint64_t obj;
	int64_t res;
	int64_t res2;
};

struct aio_ring {
	unsigned id, nr, head, tail, magic, compat_features, incompat_features, header_length;
	struct io_event events[];
};

struct aio_sigset {
	const sigset_t *sigmask;
	size_t sigsetsize;
};

enum { CMD_PREAD = 0, CMD_PWRITE = 1, CMD_FSYNC = 2, CMD_FDSYNC = 3, CMD_POLL = 5,
       CMD_NOOP = 6, CMD_PREADV = 7, CMD_PWRITEV = 8 };
#define FLAG_RESFD 1u

static long io_setup(unsigned nr, aio_context_t *ctx) { return syscall(SYS_io_setup, nr, ctx); }
static long io_destroy(aio_context_t ctx) { return syscall(SYS_io_destroy, ctx); }
static long io_submit(aio_context_t ctx, long nr, struct iocb **list)
{
	return syscall(SYS_io_submit, ctx, nr, list);
}
static long io_cancel(aio_context_t ctx, struct iocb *cb, struct io_event *ev)
{
	return syscall(SYS_io_cancel, ctx, cb, ev);
}
static long io_getevents(aio_context_t ctx, long min, long nr, struct io_event *ev, struct timespec *ts)
{
	return syscall(SYS_io_getevents, ctx, min, nr, ev, ts);
}
static long io_pgetevents(aio_context_t ctx, long min, long nr, struct io_event *ev, struct timespec *ts,
			  struct aio_sigset *ss)
{
	return syscall(SYS_io_pgetevents, ctx, min, nr, ev, ts, ss);
}

#define SHOW(label, call) do { errno = 0; long _r = (long)(call); printf("%s: %ld %s\n", label, _r, _r < 0 ? errname(errno) : "ok"); } while (0)

static struct iocb cb_rw(int op, int fd, void *buf, size_t n, long off)
{
	struct iocb cb = {0};
	cb.aio_lio_opcode = op;
	cb.aio_fildes = fd;
	cb.aio_buf = (uint64_t)(uintptr_t)buf;
	cb.aio_nbytes = n;
	cb.aio_offset = off;
	return cb;
}

static long submit1(aio_context_t ctx, struct iocb *cb)
{
	struct iocb *l[1] = {cb};
	return io_submit(ctx, 1, l);
}

/* Submits one request and waits (up to 5 s) for its event; prints the result. */
static long one(aio_context_t ctx, const char *label, struct iocb *cb)
{
	cb->aio_data = 0x1234;
	errno = 0;
	long r = submit1(ctx, cb);
	if (r != 1) {
		printf("%s: submit %ld %s\n", label, r, errname(errno));
		return -999;
	}
	struct io_event ev;
	struct timespec ts = {5, 0};
	long n = io_getevents(ctx, 1, 1, &ev, &ts);
	if (n != 1) {
		printf("%s: getevents %ld %s\n", label, n, errname(errno));
		return -999;
	}
	printf("%s: res %s%s, data ok %d, obj ok %d, res2 %lld\n", label,
	       ev.res < 0 ? "-" : "", ev.res < 0 ? errname((int)-ev.res) : "",
	       ev.data == 0x1234, ev.obj == (uint64_t)(uintptr_t)cb, (long long)ev.res2);
	if (ev.res >= 0)
		printf("%s: bytes %lld\n", label, (long long)ev.res);
	return ev.res;
}

static long read_proc_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static int ring_in_maps(void *ring)
{
	FILE *f = fopen("/proc/self/maps", "r");
	char line[512];
	int found = 0;
	while (f && fgets(line, sizeof line, f)) {
		unsigned long lo, hi;
		if (sscanf(line, "%lx-%lx", &lo, &hi) == 2 && lo == (unsigned long)ring)
			found = strstr(line, "rw-s") && strstr(line, "/[aio] (deleted)");
	}
	if (f)
		fclose(f);
	return found;
}

static int mapped(void *p)
{
	return msync(p, 4096, MS_ASYNC) == 0;
}

static void on_signal(int sig) { (void)sig; }

static void arm_alarm(long ms)
{
	struct itimerval it = {{0, 0}, {ms / 1000, (ms % 1000) * 1000}};
	setitimer(ITIMER_REAL, &it, NULL);
}

/* SIGALRM every `ms` until disarmed: a call expected to be interrupted is, even if the
 * first tick comes before the call starts (a loaded machine). */
static void arm_ticks(long ms)
{
	struct itimerval it = {{ms / 1000, (ms % 1000) * 1000}, {ms / 1000, (ms % 1000) * 1000}};
	setitimer(ITIMER_REAL, &it, NULL);
}

static void disarm(void)
{
	struct itimerval it = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &it, NULL);
}

static long ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void setup_checks(void)
{
	aio_context_t ctx = 0;
	long max = read_proc_long("/proc/sys/fs/aio-max-nr");
	printf("aio-max-nr readable: %d\n", max > 0);
	SHOW("setup nr 0", io_setup(0, &ctx));
	ctx = 1;
	SHOW("setup ctx not 0", io_setup(1, &ctx));
	SHOW("setup ctxp NULL", io_setup(1, NULL));
	SHOW("setup ctxp bad", io_setup(1, (aio_context_t *)8));
	ctx = 0;
	SHOW("setup past aio-max-nr", io_setup((unsigned)max + 1, &ctx));
	SHOW("setup doubling overflows the ring", io_setup(4194305, &ctx));
	SHOW("setup doubling wraps to 0", io_setup(0x80000000u, &ctx));
	SHOW("setup 0xffffffff", io_setup(0xffffffffu, &ctx));
	/* A read-only ctxp: read, the context made, the store fails, the context goes. */
	aio_context_t *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	SHOW("setup ctxp read-only", io_setup(1, ro));
	munmap(ro, 4096);
	printf("ctx still 0: %d\n", ctx == 0);
}

static void ring_checks(void)
{
	aio_context_t ctx = 0;
	long before = read_proc_long("/proc/sys/fs/aio-nr");
	SHOW("setup 64", io_setup(64, &ctx));
	long after = read_proc_long("/proc/sys/fs/aio-nr");
	printf("aio-nr grew by at least 64: %d\n", after >= before + 64 || after >= 64);
	struct aio_ring *ring = (struct aio_ring *)ctx;
	printf("ring: page aligned %d, magic %#x, compat %u, incompat %u, header %u\n",
	       ctx % 4096 == 0, ring->magic, ring->compat_features, ring->incompat_features,
	       ring->header_length);
	printf("ring: nr >= 2*64 %d, fills its pages %d, head %u tail %u, id small %d\n",
	       ring->nr >= 128, (32 + 32 * (unsigned long)ring->nr) % 4096 == 0, ring->head,
	       ring->tail, ring->id < 64);
	printf("ring in maps as a shared /[aio] mapping: %d\n", ring_in_maps(ring));
	SHOW("destroy", io_destroy(ctx));
	printf("ring unmapped by destroy: %d\n", !mapped(ring));
	SHOW("destroy again", io_destroy(ctx));
	SHOW("destroy 0", io_destroy(0));
	SHOW("destroy unmapped address", io_destroy(4096));
}

static void submit_checks(aio_context_t ctx, int fd, int rofd, int pipefd, int dirfd)
{
	static char buf[4096];
	struct iocb cb, *list[3];
	SHOW("submit bad ctx", io_submit(12345, 0, NULL));
	SHOW("submit ctx 0", io_submit(0, 1, NULL));
	SHOW("submit nr -1", io_submit(ctx, -1, NULL));
	SHOW("submit nr 0", io_submit(ctx, 0, NULL));
	SHOW("submit list NULL", io_submit(ctx, 1, NULL));
	list[0] = (struct iocb *)16;
	SHOW("submit iocb bad", io_submit(ctx, 1, list));
	cb = cb_rw(CMD_PREAD, fd, buf, 16, 0);
	cb.aio_reserved2 = 1;
	SHOW("submit reserved2", submit1(ctx, &cb));
	cb = cb_rw(CMD_PREAD, fd, buf, (size_t)-1, 0);
	SHOW("submit nbytes negative", submit1(ctx, &cb));
	cb = cb_rw(CMD_PREAD, 999, buf, 16, 0);
	SHOW("submit bad fd", submit1(ctx, &cb));
	cb = cb_rw(CMD_NOOP, fd, buf, 16, 0);
	SHOW("submit NOOP", submit1(ctx, &cb));
	cb = cb_rw(42, fd, buf, 16, 0);
	cb.aio_key = 0xdead;
	SHOW("submit unknown opcode", submit1(ctx, &cb));
	printf("key written before the opcode check: %d\n", cb.aio_key == 0);
	cb = cb_rw(CMD_PWRITE, rofd, buf, 16, 0);
	SHOW("submit write to read-only", submit1(ctx, &cb));
	cb = cb_rw(CMD_PREAD, fd, buf, 16, -1);
	SHOW("submit negative offset", submit1(ctx, &cb));
	cb = cb_rw(CMD_PREAD, fd, buf, 16, INT64_MAX);
	SHOW("submit offset+count overflows", submit1(ctx, &cb));
	cb = cb_rw(CMD_PREAD, fd, (void *)0x7ffffffff000ul, 16, 0);
	SHOW("submit buffer past user space", submit1(ctx, &cb));
	cb = cb_rw(CMD_PREADV, fd, buf, 1025, 0);
	SHOW("submit preadv 1025 segments", submit1(ctx, &cb));
	cb = cb_rw(CMD_PREADV, fd, (void *)16, 1, 0);
	SHOW("submit preadv iovecs unreadable", submit1(ctx, &cb));
	struct iovec neg = {buf, (size_t)-1};
	cb = cb_rw(CMD_PREADV, fd, &neg, 1, 0);
	SHOW("submit preadv negative length", submit1(ctx, &cb));
	cb = cb_rw(CMD_PREAD, fd, buf, 16, 0);
	cb.aio_rw_flags = 0x10000;
	SHOW("submit unknown RWF flag", submit1(ctx, &cb));
	cb = cb_rw(CMD_PREAD, dirfd, buf, 16, 0);
	SHOW("submit read of a directory", submit1(ctx, &cb));
	cb = cb_rw(CMD_PREAD, fd, buf, 16, 0);
	cb.aio_flags = FLAG_RESFD;
	cb.aio_resfd = fd;
	SHOW("submit resfd not an eventfd", submit1(ctx, &cb));
	cb.aio_resfd = 999;
	SHOW("submit resfd bad", submit1(ctx, &cb));
	cb = cb_rw(CMD_FSYNC, fd, buf, 0, 0);
	SHOW("submit fsync with a buffer", submit1(ctx, &cb));
	cb = cb_rw(CMD_FDSYNC, pipefd, NULL, 0, 0);
	SHOW("submit fdsync of a pipe", submit1(ctx, &cb));
	cb = cb_rw(CMD_POLL, pipefd, (void *)0x10000, 0, 0);
	SHOW("submit poll mask past 16 bits", submit1(ctx, &cb));
	cb = cb_rw(CMD_POLL, pipefd, (void *)POLLIN, 1, 0);
	SHOW("submit poll with nbytes", submit1(ctx, &cb));
	cb = cb_rw(CMD_POLL, fd, (void *)POLLPRI, 0, 0);
	SHOW("submit poll of a regular file for POLLPRI", submit1(ctx, &cb));
	/* A list stops at the first bad iocb: the count of those submitted. */
	struct iocb good = cb_rw(CMD_PREAD, fd, buf, 16, 0), bad = cb_rw(CMD_PREAD, 999, buf, 16, 0);
	list[0] = &good;
	list[1] = &bad;
	list[2] = &good;
	SHOW("submit good, bad, good", io_submit(ctx, 3, list));
	struct io_event ev[4];
	struct timespec zero = {0, 0};
	SHOW("the good one's event", io_getevents(ctx, 1, 4, ev, &zero));
}

static void rw_checks(aio_context_t ctx, int fd)
{
	static char data[8192], back[8192];
	for (int i = 0; i < (int)sizeof data; i++)
		data[i] = (char)rng();
	struct iocb cb = cb_rw(CMD_PWRITE, fd, data, 5000, 100);
	one(ctx, "pwrite 5000 at 100", &cb);
	cb = cb_rw(CMD_PREAD, fd, back, 8192, 0);
	one(ctx, "pread 8192 at 0", &cb);
	printf("read back matches: %d\n", memcmp(back + 100, data, 5000) == 0);
	cb = cb_rw(CMD_PREAD, fd, back, 100, 1 << 20);
	one(ctx, "pread past the end", &cb);
	cb = cb_rw(CMD_PREAD, fd, back, 0, 0);
	one(ctx, "pread 0 bytes", &cb);
	struct iovec w[3] = {{data, 10}, {data + 10, 0}, {data + 10, 4000}};
	cb = cb_rw(CMD_PWRITEV, fd, w, 3, 20000);
	one(ctx, "pwritev 3 segments at 20000", &cb);
	memset(back, 0, sizeof back);
	struct iovec r[2] = {{back, 7}, {back + 7, 5000}};
	cb = cb_rw(CMD_PREADV, fd, r, 2, 20000);
	one(ctx, "preadv 2 segments at 20000", &cb);
	printf("vectored read back matches: %d\n", memcmp(back, data, 4010) == 0);
	cb = cb_rw(CMD_PREADV, fd, r, 0, 0);
	one(ctx, "preadv no segments", &cb);
	/* A buffer in user space that isn't mapped: the transfer faults, in the event. */
	char *hole = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(hole, 8192);
	cb = cb_rw(CMD_PREAD, fd, hole, 100, 0);
	one(ctx, "pread into unmapped memory", &cb);
	cb = cb_rw(CMD_PWRITE, fd, hole, 100, 0);
	one(ctx, "pwrite from unmapped memory", &cb);
	/* A read-only page as the destination of a read. */
	char *ro = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cb = cb_rw(CMD_PREAD, fd, ro, 100, 0);
	one(ctx, "pread into a read-only page", &cb);
	munmap(ro, 4096);
	cb = cb_rw(CMD_FSYNC, fd, NULL, 0, 0);
	one(ctx, "fsync", &cb);
	cb = cb_rw(CMD_FDSYNC, fd, NULL, 0, 0);
	one(ctx, "fdsync", &cb);
	/* O_APPEND: the offset is ignored, as pwrite's. */
	int afd = dup(fd);
	int flags = fcntl(fd, F_GETFL);
	fcntl(afd, F_SETFL, flags | O_APPEND);
	off_t size = lseek(fd, 0, SEEK_END);
	cb = cb_rw(CMD_PWRITE, afd, data, 10, 0);
	one(ctx, "pwrite with O_APPEND", &cb);
	printf("appended: %d\n", lseek(fd, 0, SEEK_END) == size + 10);
	fcntl(afd, F_SETFL, flags);
	close(afd);
	/* The file offset never moves. */
	lseek(fd, 3, SEEK_SET);
	cb = cb_rw(CMD_PREAD, fd, back, 10, 0);
	one(ctx, "pread leaves the offset", &cb);
	printf("offset still 3: %d\n", lseek(fd, 0, SEEK_CUR) == 3);
}

static void stream_checks(aio_context_t ctx)
{
	int p[2];
	char buf[64];
	if (pipe(p))
		return;
	write(p[1], "hello", 5);
	struct iocb cb = cb_rw(CMD_PREAD, p[0], buf, sizeof buf, 12345);
	one(ctx, "pread of a pipe (offset ignored)", &cb);
	cb = cb_rw(CMD_PWRITE, p[1], "abc", 3, 777);
	one(ctx, "pwrite to a pipe", &cb);
	printf("pipe got it: %d\n", read(p[0], buf, sizeof buf) == 3);
	/* A read of an empty pipe blocks io_submit; a signal ends it with EINTR in the event,
	 * handler with SA_RESTART or not (no restart: other requests may be running). */
	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	/* RWF_NOWAIT: EAGAIN in the event instead of waiting. */
	cb = cb_rw(CMD_PREAD, p[0], buf, sizeof buf, 0);
	cb.aio_rw_flags = 8;
	one(ctx, "RWF_NOWAIT read of an empty pipe", &cb);
	arm_ticks(100);
	cb = cb_rw(CMD_PREAD, p[0], buf, sizeof buf, 0);
	one(ctx, "blocking pipe read interrupted", &cb);
	disarm();
	/* O_NONBLOCK: EAGAIN in the event. */
	fcntl(p[0], F_SETFL, O_NONBLOCK);
	cb = cb_rw(CMD_PREAD, p[0], buf, sizeof buf, 0);
	one(ctx, "nonblocking pipe read", &cb);
	close(p[0]);
	signal(SIGPIPE, SIG_IGN);
	cb = cb_rw(CMD_PWRITE, p[1], "abc", 3, 0);
	one(ctx, "pwrite to a pipe without readers", &cb);
	close(p[1]);
}

static void eventfd_checks(aio_context_t ctx, int fd)
{
	char buf[16];
	int efd = eventfd(0, EFD_NONBLOCK);
	struct iocb a = cb_rw(CMD_PREAD, fd, buf, 16, 0), b = cb_rw(CMD_PWRITE, fd, "x", 1, 0);
	a.aio_flags = b.aio_flags = FLAG_RESFD;
	a.aio_resfd = b.aio_resfd = efd;
	struct iocb *list[2] = {&a, &b};
	SHOW("submit 2 with an eventfd", io_submit(ctx, 2, list));
	struct pollfd pf = {efd, POLLIN, 0};
	printf("eventfd readable: %d\n", poll(&pf, 1, 5000) == 1);
	struct io_event ev[2];
	struct timespec ts = {5, 0};
	SHOW("their events", io_getevents(ctx, 2, 2, ev, &ts));
	uint64_t n = 0;
	printf("eventfd count: %ld\n", read(efd, &n, 8) == 8 ? (long)n : -1);
	close(efd);
}

static void poll_checks(aio_context_t ctx, int fd)
{
	int p[2];
	if (pipe(p))
		return;
	struct io_event ev[2];
	struct timespec zero = {0, 0}, ts = {5, 0};
	struct iocb cb = cb_rw(CMD_POLL, fd, (void *)(POLLIN | POLLOUT), 0, 0);
	one(ctx, "poll a regular file", &cb);
	cb = cb_rw(CMD_POLL, p[1], (void *)POLLOUT, 0, 0);
	one(ctx, "poll a pipe's writable end", &cb);
	struct iocb rd = cb_rw(CMD_POLL, p[0], (void *)POLLIN, 0, 0);
	rd.aio_data = 77;
	SHOW("poll an empty pipe", submit1(ctx, &rd));
	SHOW("nothing yet", io_getevents(ctx, 0, 2, ev, &zero));
	write(p[1], "x", 1);
	SHOW("after a write", io_getevents(ctx, 1, 2, ev, &ts));
	printf("poll event: data %llu res %#llx\n", (unsigned long long)ev[0].data, (long long)ev[0].res);
	char c;
	read(p[0], &c, 1);
	/* Cancelling: EINPROGRESS, then the event with res 0. */
	SHOW("poll again", submit1(ctx, &rd));
	struct iocb keyed = rd;
	keyed.aio_key = 1;
	SHOW("cancel with a key", io_cancel(ctx, &keyed, ev));
	SHOW("cancel bad iocb pointer", io_cancel(ctx, (struct iocb *)8, ev));
	SHOW("cancel bad ctx", io_cancel(4096, &rd, ev));
	SHOW("cancel", io_cancel(ctx, &rd, ev));
	SHOW("cancelled event", io_getevents(ctx, 1, 2, ev, &ts));
	printf("cancelled: data %llu res %lld\n", (unsigned long long)ev[0].data, (long long)ev[0].res);
	SHOW("cancel again", io_cancel(ctx, &rd, ev));
	struct iocb done = cb_rw(CMD_PREAD, fd, &c, 1, 0);
	one(ctx, "a read", &done);
	SHOW("cancel a completed read", io_cancel(ctx, &done, ev));
	/* Hang-up counts even when not asked for. */
	SHOW("poll for POLLIN", submit1(ctx, &rd));
	close(p[1]);
	SHOW("after the writer closes", io_getevents(ctx, 1, 2, ev, &ts));
	printf("hang-up: res %#llx\n", (long long)ev[0].res);
	close(p[0]);
}

static void getevents_checks(aio_context_t ctx, int fd)
{
	struct io_event ev[4];
	struct timespec zero = {0, 0}, ts;
	char c;
	SHOW("getevents bad ctx", io_getevents(4096, 0, 1, ev, &zero));
	SHOW("getevents min > nr", io_getevents(ctx, 2, 1, ev, &zero));
	SHOW("getevents min < 0", io_getevents(ctx, -1, 1, ev, &zero));
	SHOW("getevents nr < 0", io_getevents(ctx, 0, -1, ev, &zero));
	SHOW("getevents timeout unreadable", io_getevents(ctx, 0, 1, ev, (struct timespec *)8));
	SHOW("getevents nothing, zero timeout", io_getevents(ctx, 0, 1, ev, &zero));
	SHOW("getevents min 0, no timeout", io_getevents(ctx, 0, 1, ev, NULL));
	SHOW("getevents nothing, events NULL", io_getevents(ctx, 0, 1, NULL, &zero));
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ts.tv_sec = 0;
	ts.tv_nsec = 100000000;
	SHOW("getevents waits 100 ms", io_getevents(ctx, 1, 1, ev, &ts));
	printf("waited >= 90 ms: %d\n", ms_since(&t0) >= 90);
	/* A negative timeout never expires (hrtimer's ktime_add_safe makes it KTIME_MAX). */
	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sigaction(SIGALRM, &sa, NULL);
	ts.tv_sec = -1;
	ts.tv_nsec = 0;
	arm_ticks(200);
	SHOW("getevents negative timeout waits", io_getevents(ctx, 1, 1, ev, &ts));
	disarm();
	signal(SIGALRM, SIG_DFL);
	/* tv_nsec isn't checked: 0.3 s as 300000000 ns past 0 s... or past a second. */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	ts.tv_sec = 0;
	ts.tv_nsec = 1100000000;
	SHOW("getevents tv_nsec past a second", io_getevents(ctx, 1, 1, ev, &ts));
	printf("waited >= 1 s: %d\n", ms_since(&t0) >= 1000);
	/* An event pending and a bad array: EFAULT, and the event stays. */
	struct iocb cb = cb_rw(CMD_PREAD, fd, &c, 1, 0);
	SHOW("one read", submit1(ctx, &cb));
	SHOW("getevents into NULL", io_getevents(ctx, 1, 1, NULL, &zero));
	SHOW("getevents into a read-only page", io_getevents(ctx, 1, 1, (struct io_event *)"constant", &zero));
	SHOW("the event is still there", io_getevents(ctx, 1, 1, ev, &zero));
	/* min_nr: waits for that many (the rest come with them, up to nr). */
	struct iocb c3[3];
	struct iocb *l3[3];
	for (int i = 0; i < 3; i++) {
		c3[i] = cb_rw(CMD_PREAD, fd, &c, 1, 0);
		l3[i] = &c3[i];
	}
	SHOW("submit 3", io_submit(ctx, 3, l3));
	ts.tv_sec = 5;
	ts.tv_nsec = 0;
	SHOW("getevents min 2 nr 2", io_getevents(ctx, 2, 2, ev, &ts));
	SHOW("getevents the last", io_getevents(ctx, 1, 4, ev, &ts));
}

static void signal_checks(aio_context_t ctx)
{
	struct io_event ev[2];
	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	/* io_getevents is never restarted, even with SA_RESTART. */
	arm_ticks(100);
	SHOW("getevents interrupted (SA_RESTART)", io_getevents(ctx, 1, 1, ev, NULL));
	disarm();
	/* io_pgetevents: EINTR when the handler runs. */
	struct timespec ts = {30, 0};
	arm_ticks(100);
	SHOW("pgetevents interrupted", io_pgetevents(ctx, 1, 1, ev, &ts, NULL));
	disarm();
	/* Its mask blocks the signal for the wait: the timeout ends it, and the handler runs
	 * after (the caller's mask is back). */
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, SIGALRM);
	struct aio_sigset ss = {&block, 8};
	ts.tv_sec = 0;
	ts.tv_nsec = 400000000;
	arm_alarm(100);
	SHOW("pgetevents with SIGALRM blocked", io_pgetevents(ctx, 1, 1, ev, &ts, &ss));
	sigset_t pending;
	sigpending(&pending);
	printf("SIGALRM delivered after: %d\n", !sigismember(&pending, SIGALRM));
	ss.sigsetsize = 4;
	SHOW("pgetevents sigsetsize 4", io_pgetevents(ctx, 1, 1, ev, &ts, &ss));
	SHOW("pgetevents sigset unreadable", io_pgetevents(ctx, 1, 1, ev, &ts, (struct aio_sigset *)8));
	ss.sigmask = (sigset_t *)8;
	ss.sigsetsize = 8;
	SHOW("pgetevents mask unreadable", io_pgetevents(ctx, 1, 1, ev, &ts, &ss));
	ss.sigmask = NULL;
	ts.tv_nsec = 10000000;
	SHOW("pgetevents NULL mask", io_pgetevents(ctx, 1, 1, ev, &ts, &ss));
	signal(SIGALRM, SIG_DFL);
}

/* A stop and a continue: io_getevents fails with EINTR (signal(7)), io_pgetevents
 * restarts and sees the poll event that comes later. */
static void stop_checks(aio_context_t ctx, const char *which)
{
	int p[2];
	if (pipe(p))
		return;
	struct iocb cb = cb_rw(CMD_POLL, p[0], (void *)POLLIN, 0, 0);
	submit1(ctx, &cb);
	pid_t parent = getpid();
	fflush(stdout);
	pid_t child = fork();
	if (child == 0) {
		/* Generous gaps: the parent must be waiting when it is stopped, and running
		 * again well before the write (a loaded machine delays both). */
		struct timespec t = {1, 0}, stopped = {0, 200000000};
		nanosleep(&t, NULL);
		kill(parent, SIGSTOP);
		nanosleep(&stopped, NULL);
		kill(parent, SIGCONT);
		nanosleep(&t, NULL);
		write(p[1], "x", 1);
		_exit(0);
	}
	struct io_event ev[1];
	long r;
	errno = 0;
	if (strcmp(which, "getevents") == 0)
		r = io_getevents(ctx, 1, 1, ev, NULL);
	else
		r = io_pgetevents(ctx, 1, 1, ev, NULL, NULL);
	printf("%s across a stop: %ld %s\n", which, r, r < 0 ? errname(errno) : "ok");
	int st;
	waitpid(child, &st, 0);
	if (r < 0) {
		struct timespec ts = {5, 0};
		SHOW("  the event after", io_getevents(ctx, 1, 1, ev, &ts));
	}
	close(p[0]);
	close(p[1]);
}

static void user_reap_checks(int fd)
{
	aio_context_t ctx = 0;
	if (io_setup(8, &ctx))
		return;
	struct aio_ring *ring = (struct aio_ring *)ctx;
	char c[3];
	struct iocb cbs[3], *l[3];
	for (int i = 0; i < 3; i++) {
		cbs[i] = cb_rw(CMD_PREAD, fd, &c[i], 1, i);
		cbs[i].aio_data = 100 + i;
		l[i] = &cbs[i];
	}
	SHOW("user reap: submit 3", io_submit(ctx, 3, l));
	/* Reads complete inside io_submit; an fsync would need a wait. */
	unsigned head = ring->head, tail = ring->tail;
	printf("user reap: %u events in the ring\n", (tail - head + ring->nr) % ring->nr);
	int ok = 1;
	for (unsigned i = 0; i < 3; i++) {
		struct io_event *e = &ring->events[(head + i) % ring->nr];
		ok &= e->data == 100 + i && e->obj == (uint64_t)(uintptr_t)&cbs[i] && e->res == 1;
	}
	printf("user reap: events as submitted: %d\n", ok);
	__atomic_store_n(&ring->head, (head + 3) % ring->nr, __ATOMIC_RELEASE);
	struct io_event ev[3];
	struct timespec zero = {0, 0};
	SHOW("user reap: nothing left for the kernel", io_getevents(ctx, 0, 3, ev, &zero));
	/* A head the caller set past the ring is taken modulo its size. */
	SHOW("user reap: one more", submit1(ctx, &cbs[0]));
	ring->head = ring->head + ring->nr;
	SHOW("user reap: head + nr still finds it", io_getevents(ctx, 1, 3, ev, &zero));

	/* Filling the ring: EAGAIN before every slot is used, and never below half of them
	 * (Linux keeps some in per-CPU caches), and room again once reaped. */
	long n = 0;
	unsigned nr = ring->nr;
	for (;;) {
		errno = 0;
		long r = submit1(ctx, &cbs[0]);
		if (r != 1)
			break;
		n++;
		if (n > 100000)
			break;
	}
	printf("ring full: %s after more than half %d, at most nr-1 %d\n", errname(errno),
	       n >= nr / 2, n <= nr - 1);
	struct io_event *all = calloc(nr, sizeof *all);
	printf("reaped all: %d\n", io_getevents(ctx, n, n, all, &zero) == n);
	SHOW("room again", submit1(ctx, &cbs[0]));
	free(all);
	io_destroy(ctx);
}

static void *waiter_thread(void *arg)
{
	aio_context_t ctx = *(aio_context_t *)arg;
	struct io_event ev;
	errno = 0;
	long r = io_getevents(ctx, 1, 1, &ev, NULL);
	return (void *)(r < 0 ? (long)-errno : r);
}

static void destroy_checks(int fd)
{
	aio_context_t ctx = 0;
	if (io_setup(4, &ctx))
		return;
	int p[2];
	if (pipe(p))
		return;
	/* A pending poll, and a thread waiting: destroy cancels the one and ends the other
	 * with EINVAL. */
	struct iocb cb = cb_rw(CMD_POLL, p[0], (void *)POLLIN, 0, 0);
	SHOW("destroy: poll pending", submit1(ctx, &cb));
	pthread_t th;
	pthread_create(&th, NULL, waiter_thread, &ctx);
	struct timespec t = {0, 200000000};
	nanosleep(&t, NULL);
	/* The waiter ends with the context's death (EINVAL) or, if it reads the ring first,
	 * with the cancelled poll's event: Linux cancels after an RCU grace period, so which
	 * comes first is timing (EINVAL, nearly always). */
	SHOW("destroy", io_destroy(ctx));
	void *ret;
	pthread_join(th, &ret);
	long r = (long)ret;
	printf("destroy: waiter ended with %s\n", r == 1 || r == -EINVAL ? "EINVAL or the cancelled poll" : "something else");
	SHOW("destroy: submit after", submit1(ctx, &cb));
	close(p[0]);
	close(p[1]);

	/* munmap of the ring: the context can't be named any more. */
	ctx = 0;
	io_setup(4, &ctx);
	struct aio_ring *ring = (struct aio_ring *)ctx;
	unsigned long len = (32 + 32 * (unsigned long)ring->nr + 4095) / 4096 * 4096;
	munmap(ring, len);
	char c;
	cb = cb_rw(CMD_PREAD, fd, &c, 1, 0);
	SHOW("unmapped ring: submit", submit1(ctx, &cb));
	SHOW("unmapped ring: getevents", io_getevents(ctx, 0, 1, NULL, NULL));
	SHOW("unmapped ring: destroy", io_destroy(ctx));

	/* mremap moves the context with its ring; growing it is refused. */
	ctx = 0;
	io_setup(4, &ctx);
	ring = (struct aio_ring *)ctx;
	len = (32 + 32 * (unsigned long)ring->nr + 4095) / 4096 * 4096;
	errno = 0;
	void *grown = mremap(ring, len, len + 4096, 0);
	printf("mremap grow: %s\n", grown == MAP_FAILED ? errname(errno) : "grew");
	void *moved = mremap(ring, len, len, MREMAP_MAYMOVE | MREMAP_FIXED,
			     mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
	printf("mremap move: %d\n", moved != MAP_FAILED);
	SHOW("moved ring: submit with the old id", submit1(ctx, &cb));
	aio_context_t nctx = (aio_context_t)moved;
	SHOW("moved ring: submit with the new id", submit1(nctx, &cb));
	struct io_event ev;
	struct timespec zero = {0, 0};
	SHOW("moved ring: getevents", io_getevents(nctx, 1, 1, &ev, &zero));
	printf("moved ring: tail %u\n", ((struct aio_ring *)moved)->tail);

	/* A forked child has the ring mapped but no contexts. */
	fflush(stdout);
	pid_t child = fork();
	if (child == 0) {
		printf("child: ring magic %#x\n", ((struct aio_ring *)moved)->magic);
		SHOW("child: submit", submit1(nctx, &cb));
		SHOW("child: destroy", io_destroy(nctx));
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(child, &st, 0);
	SHOW("parent: destroy moved", io_destroy(nctx));
}

/* A process that exits (or execs) with contexts, a poll pending and an fsync in flight
 * loses them, and gives their events back to aio-nr: a hundred such children of 1000
 * events each fit under aio-max-nr (65536) only if they do. */
static void exit_checks(int fd)
{
	int p[2];
	if (pipe(p))
		return;
	int ok = 1;
	for (int i = 0; i < 100 && ok; i++) {
		fflush(stdout);
		pid_t c = fork();
		if (c == 0) {
			aio_context_t ctx = 0;
			if (io_setup(1000, &ctx))
				_exit(1);
			struct iocb poll_cb = cb_rw(CMD_POLL, p[0], (void *)POLLIN, 0, 0);
			struct iocb sync_cb = cb_rw(CMD_FSYNC, fd, NULL, 0, 0);
			struct iocb *l[2] = {&poll_cb, &sync_cb};
			_exit(io_submit(ctx, 2, l) == 2 ? 0 : 2);
		}
		int st;
		waitpid(c, &st, 0);
		ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
		if (!ok)
			printf("exit: child %d: %s\n", i, wait_status(st));
	}
	printf("exit: 100 children leaving contexts behind: %d\n", ok);
	close(p[0]);
	close(p[1]);
}

int main(void)
{
	char dir[] = "/tmp/aioconf-XXXXXX";
	if (!mkdtemp(dir))
		return 1;
	char path[64], ropath[64];
	snprintf(path, sizeof path, "%s/f", dir);
	snprintf(ropath, sizeof ropath, "%s/r", dir);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	int rofd = open(ropath, O_RDONLY | O_CREAT, 0600);
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY);
	int p[2];
	if (fd < 0 || rofd < 0 || dirfd < 0 || pipe(p))
		return 1;
	write(fd, "0123456789", 10);

	setup_checks();
	ring_checks();
	aio_context_t ctx = 0;
	SHOW("setup 32", io_setup(32, &ctx));
	submit_checks(ctx, fd, rofd, p[0], dirfd);
	rw_checks(ctx, fd);
	stream_checks(ctx);
	eventfd_checks(ctx, fd);
	poll_checks(ctx, fd);
	getevents_checks(ctx, fd);
	signal_checks(ctx);
	stop_checks(ctx, "getevents");
	stop_checks(ctx, "pgetevents");
	user_reap_checks(fd);
	destroy_checks(fd);
	exit_checks(fd);
	SHOW("destroy the main context", io_destroy(ctx));

	unlink(path);
	unlink(ropath);
	rmdir(dir);
	return 0;
}
