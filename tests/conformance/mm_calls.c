/* Memory calls (issue 14 item 9): mincore, mlock/mlock2/munlock/mlockall/munlockall with
 * RLIMIT_MEMLOCK accounting (VmLck, smaps' Locked), and madvise advice programs use
 * (DONTFORK, WIPEONFORK, POPULATE_*, Linux's refusals).
 *
 * Whether root has CAP_IPC_LOCK depends on where the test runs, so the limit checks run in
 * a child that gave up root. The sandbox may populate pages around a fault, so mincore is
 * asked only about pages touched and pages far from any touch. */
#include "conf.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#ifndef MADV_WIPEONFORK
#define MADV_WIPEONFORK 18
#define MADV_KEEPONFORK 19
#endif
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MLOCK_ONFAULT
#define MLOCK_ONFAULT 1
#endif
#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif

static long pg;

/* VmLck of /proc/self/status, in kB. */
static long vmlck(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "VmLck:", 6))
			v = atol(line + 6);
	if (f)
		fclose(f);
	return v;
}

static char *map(long pages)
{
	return mmap(NULL, pages * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static void mincore_calls(void)
{
	char *m = map(128);
	unsigned char vec[128];
	m[0] = 1;
	m[64 * pg] = 1;
	CHECK("mincore", mincore(m, 128 * pg, vec) == 0);
	printf("touched resident: %d %d, far page: %d\n", vec[0], vec[64], vec[32]);
	madvise(m, 128 * pg, MADV_DONTNEED);
	mincore(m, 128 * pg, vec);
	int any = 0;
	for (int i = 0; i < 128; i++)
		any |= vec[i];
	printf("after DONTNEED any resident: %d\n", any);
	ERRCALL("mincore unaligned", mincore(m + 1, pg, vec));
	ERRCALL("mincore len 0", mincore(m, 0, vec));
	ERRCALL("mincore bad vec", mincore(m, pg, (unsigned char *)8));
	munmap(m + 64 * pg, pg);
	ERRCALL("mincore over a hole", mincore(m, 128 * pg, vec));
	ERRCALL("mincore partial page len", mincore(m, pg + 1, vec));
	munmap(m, 128 * pg);
}

static void lock_calls(void)
{
	char *m = map(16);
	long base = vmlck();
	printf("VmLck at start: %ld\n", base);
	ERRCALL("mlock 3 pages", mlock(m, 3 * pg));
	printf("VmLck after mlock: +%ld kB\n", vmlck() - base);
	printf("locked pages resident: %d\n", ({
		       unsigned char v[3];
		       mincore(m, 3 * pg, v);
		       v[0] && v[1] && v[2];
	       }));
	ERRCALL("mlock them again", mlock(m, 3 * pg));
	printf("VmLck no double count: +%ld kB\n", vmlck() - base);
	ERRCALL("mlock unaligned start", mlock(m + 10, pg));
	printf("VmLck unaligned rounds: +%ld kB\n", vmlck() - base);
	ERRCALL("munlock the middle page", munlock(m + pg, pg));
	printf("VmLck after munlock: +%ld kB\n", vmlck() - base);
	ERRCALL("mlock2 ONFAULT", syscall(SYS_mlock2, m + 8 * pg, 4 * pg, MLOCK_ONFAULT));
	printf("VmLck after mlock2: +%ld kB\n", vmlck() - base);
	ERRCALL("mlock2 bad flags", syscall(SYS_mlock2, m, pg, 2));
	ERRCALL("madvise DONTNEED on locked", madvise(m, pg, MADV_DONTNEED));
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		printf("child VmLck: +%ld kB\n", vmlck() - base);
		fflush(stdout);
		_exit(0);
	}
	int s;
	waitpid(c, &s, 0);
	ERRCALL("munlockall", munlockall());
	printf("VmLck after munlockall: +%ld kB\n", vmlck() - base);
	ERRCALL("mlockall 0", mlockall(0));
	ERRCALL("mlockall ONFAULT alone", mlockall(MCL_ONFAULT));
	ERRCALL("mlockall bad", mlockall(8));
	ERRCALL("mlockall FUTURE", mlockall(MCL_FUTURE));
	/* Reading the status may allocate (and lock) memory for stdio once: count from here. */
	long fut = vmlck();
	fut = vmlck();
	char *n = map(5);
	printf("VmLck after a future map: +%ld kB\n", vmlck() - fut);
	munmap(n, 5 * pg);
	printf("VmLck after its munmap: +%ld kB\n", vmlck() - fut);
	munlockall();
	n = map(5);
	printf("VmLck after munlockall and a map: +%ld kB\n", vmlck() - base);
	munmap(n, 5 * pg);
	n = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
	printf("VmLck after MAP_LOCKED: +%ld kB\n", vmlck() - base);
	munmap(n, 2 * pg);
	munmap(m + 4 * pg, 2 * pg);
	ERRCALL("mlock over a hole", mlock(m, 8 * pg));
	ERRCALL("munlock over a hole", munlock(m, 8 * pg));
	munmap(m, 16 * pg);
}

static void unprivileged_limits(void)
{
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(9);
		struct rlimit rl = {4 * pg, 4 * pg};
		setrlimit(RLIMIT_MEMLOCK, &rl);
		char *m = map(16);
		ERRCALL("unprivileged mlock 4 pages at a 4-page limit", mlock(m, 4 * pg));
		ERRCALL("unprivileged mlock one more", mlock(m + 4 * pg, pg));
		ERRCALL("unprivileged mlock overlapping", mlock(m + 2 * pg, 2 * pg));
		munlockall();
		ERRCALL("unprivileged mlockall CURRENT over the limit", mlockall(MCL_CURRENT));
		ERRCALL("unprivileged mlockall FUTURE", mlockall(MCL_FUTURE));
		char *n = map(8);
		printf("unprivileged map past the limit with FUTURE: %s\n",
		       n == MAP_FAILED ? errname(errno) : "mapped");
		n = map(2);
		printf("unprivileged small map with FUTURE: %s\n",
		       n == MAP_FAILED ? errname(errno) : "mapped");
		munlockall();
		n = mmap(NULL, 8 * pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_LOCKED, -1, 0);
		printf("unprivileged MAP_LOCKED past the limit: %s\n",
		       n == MAP_FAILED ? errname(errno) : "mapped");
		rl.rlim_cur = rl.rlim_max = 0;
		setrlimit(RLIMIT_MEMLOCK, &rl);
		ERRCALL("unprivileged mlock with limit 0", mlock(m, pg));
		ERRCALL("unprivileged mlockall with limit 0", mlockall(MCL_CURRENT));
		ERRCALL("unprivileged munlock with limit 0", munlock(m, pg));
		fflush(stdout);
		_exit(0);
	}
	int s;
	waitpid(c, &s, 0);
	printf("unprivileged child: %s\n", wait_status(s));
}

static void advice(void)
{
	char *keep = map(4), *gone = map(4), *wipe = map(4);
	memset(keep, 'k', 4 * pg);
	memset(gone, 'g', 4 * pg);
	memset(wipe, 'w', 4 * pg);
	ERRCALL("MADV_DONTFORK", madvise(gone, 4 * pg, MADV_DONTFORK));
	ERRCALL("MADV_WIPEONFORK", madvise(wipe, 4 * pg, MADV_WIPEONFORK));
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		unsigned char v;
		printf("child: kept %c, dontfork %s, wiped %d\n", keep[pg],
		       mincore(gone, pg, &v) == 0 ? "mapped" : errname(errno), wipe[pg]);
		fflush(stdout);
		_exit(0);
	}
	int s;
	waitpid(c, &s, 0);
	printf("parent still has: %c %c %c\n", keep[pg], gone[pg], wipe[pg]);
	ERRCALL("MADV_DOFORK", madvise(gone, 4 * pg, MADV_DOFORK));
	ERRCALL("MADV_KEEPONFORK", madvise(wipe, 4 * pg, MADV_KEEPONFORK));
	fflush(stdout);
	c = fork();
	if (c == 0) {
		printf("child after DOFORK/KEEPONFORK: %c %c\n", gone[pg], wipe[pg]);
		fflush(stdout);
		_exit(0);
	}
	waitpid(c, &s, 0);

	char *p = map(64);
	ERRCALL("MADV_POPULATE_READ", madvise(p, 64 * pg, MADV_POPULATE_READ));
	ERRCALL("MADV_POPULATE_WRITE", madvise(p, 64 * pg, MADV_POPULATE_WRITE));
	unsigned char vec[64];
	mincore(p, 64 * pg, vec);
	int all = 1;
	for (int i = 0; i < 64; i++)
		all &= vec[i];
	printf("populated all: %d\n", all);
	mprotect(p, pg, PROT_READ);
	ERRCALL("MADV_POPULATE_WRITE read-only", madvise(p, pg, MADV_POPULATE_WRITE));
	mprotect(p, pg, PROT_NONE);
	ERRCALL("MADV_POPULATE_READ PROT_NONE", madvise(p, pg, MADV_POPULATE_READ));
	ERRCALL("MADV_REMOVE private anonymous", madvise(p + pg, pg, MADV_REMOVE));
	ERRCALL("MADV_COLD", madvise(p + pg, pg, MADV_COLD));
	ERRCALL("MADV_PAGEOUT", madvise(p + pg, pg, MADV_PAGEOUT));
	ERRCALL("MADV_WILLNEED", madvise(p + pg, pg, MADV_WILLNEED));
	ERRCALL("MADV_SEQUENTIAL", madvise(p + pg, pg, MADV_SEQUENTIAL));
	ERRCALL("MADV_DONTDUMP", madvise(p + pg, pg, MADV_DONTDUMP));
	ERRCALL("MADV_FREE", madvise(p + pg, pg, MADV_FREE));
	ERRCALL("advice 7", madvise(p + pg, pg, 7));
	ERRCALL("advice 99", madvise(p + pg, pg, 99));
	ERRCALL("madvise unaligned", madvise(p + 1, pg, MADV_NORMAL));
	munmap(p + 10 * pg, pg);
	ERRCALL("madvise over a hole", madvise(p, 20 * pg, MADV_NORMAL));

	int fd = open("/proc/self/exe", O_RDONLY);
	char *f = mmap(NULL, pg, PROT_READ, MAP_PRIVATE, fd, 0);
	ERRCALL("MADV_WIPEONFORK on a file mapping", madvise(f, pg, MADV_WIPEONFORK));
	ERRCALL("MADV_FREE on a file mapping", madvise(f, pg, MADV_FREE));
	ERRCALL("MADV_REMOVE on a private file mapping", madvise(f, pg, MADV_REMOVE));
	ERRCALL("MADV_DONTNEED on a file mapping", madvise(f, pg, MADV_DONTNEED));
	volatile char x = f[0];
	(void)x;
	unsigned char v;
	mincore(f, pg, &v);
	printf("file page resident after a read: %d\n", v);
	munmap(f, pg);
	close(fd);
}

int main(void)
{
	pg = sysconf(_SC_PAGESIZE);
	mincore_calls();
	lock_calls();
	unprivileged_limits();
	advice();
	return 0;
}
