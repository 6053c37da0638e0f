/* First touches of fresh memory in the patterns the sandbox's fault windows are tuned for:
 * streaming forward and backward through anonymous memory (larger windows, pages backed by
 * the host ahead of the touch), sparse touches, windows cut by VMA edges that are not
 * aligned to the window (an mprotect'ed guard, the end of a mapping), a file mapping
 * streamed past its end, and fork after streaming. Every page must read as zeros before its
 * first write and keep what was written; nothing beyond a mapping may become accessible. */
#include "conf.h"
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

static long PG;
static sigjmp_buf jb;

static void on_segv(int sig)
{
	siglongjmp(jb, sig);
}

/* The signal a one-byte write at p raises (0 if none). */
static int write_signal(volatile char *p)
{
	int sig = sigsetjmp(jb, 1);
	if (sig == 0) {
		*p = 1;
		return 0;
	}
	return sig;
}

static unsigned char mark(long page)
{
	return (unsigned char)(page * 7 + 3);
}

/* Touches pages [0, n) of p in order (step 1) or backwards (step -1): each page's first and
 * last byte must be zero before it is written. Returns the number of pages that were not. */
static long stream(unsigned char *p, long n, int step)
{
	long bad = 0;
	for (long k = 0; k < n; k++) {
		long i = step > 0 ? k : n - 1 - k;
		unsigned char *q = p + i * PG;
		if (q[0] != 0 || q[PG - 1] != 0)
			bad++;
		q[0] = mark(i);
		q[PG - 1] = mark(i) ^ 0xff;
	}
	return bad;
}

static long check(const unsigned char *p, long n)
{
	long bad = 0;
	for (long i = 0; i < n; i++)
		if (p[i * PG] != mark(i) || p[i * PG + PG - 1] != (unsigned char)(mark(i) ^ 0xff))
			bad++;
	return bad;
}

int main(void)
{
	PG = sysconf(_SC_PAGESIZE);
	struct sigaction sa = {0};
	sa.sa_handler = on_segv;
	sigaction(SIGSEGV, &sa, NULL);

	/* Forward and backward through 1000 pages, starting 3 pages past a 64-page boundary so
	 * that no window lines up with the mapping. */
	long n = 1000;
	unsigned char *res = mmap(NULL, (n + 200) * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK("reserve", res != MAP_FAILED);
	unsigned char *fw = (unsigned char *)(((unsigned long)res + 64 * PG - 1) & ~(64 * PG - 1)) + 3 * PG;
	CHECK("forward map", mmap(fw, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
				  -1, 0) == fw);
	printf("forward: %ld pages not zero before the first write\n", stream(fw, n, 1));
	printf("forward: %ld pages lost their content\n", check(fw, n));
	/* The page before and after the mapping are still the reservation's PROT_NONE. */
	printf("below forward: signal %d\n", write_signal((char *)fw - 1));
	printf("above forward: signal %d\n", write_signal((char *)fw + n * PG));
	munmap(res, (n + 200) * PG);

	unsigned char *bw = mmap(NULL, n * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK("backward map", bw != MAP_FAILED);
	printf("backward: %ld pages not zero before the first write\n", stream(bw, n, -1));
	printf("backward: %ld pages lost their content\n", check(bw, n));

	/* A guard in the middle of a streamed region, 5 pages wide at an odd offset: streaming
	 * up to it must not make it accessible, and the pages past it still start at zero. */
	unsigned char *g = mmap(NULL, 300 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK("guarded map", g != MAP_FAILED);
	CHECK("guard", mprotect(g + 133 * PG, 5 * PG, PROT_NONE) == 0);
	printf("before guard: %ld pages not zero\n", stream(g, 133, 1));
	printf("guard first page: signal %d\n", write_signal((char *)g + 133 * PG));
	printf("guard last page: signal %d\n", write_signal((char *)g + 137 * PG + PG - 1));
	printf("after guard: %ld pages not zero\n", stream(g + 138 * PG, 162, 1));
	CHECK("reopen guard", mprotect(g + 133 * PG, 5 * PG, PROT_READ | PROT_WRITE) == 0);
	long z = 0;
	for (long i = 133; i < 138; i++)
		z += g[i * PG] != 0;
	printf("guard pages not zero after reopening: %ld\n", z);

	/* Sparse touches, 37 pages apart, then their neighbours: all zero, all kept. */
	unsigned char *s = mmap(NULL, 40 * 37 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK("sparse map", s != MAP_FAILED);
	long sb = 0;
	for (long i = 0; i < 40; i++) {
		sb += s[i * 37 * PG] != 0;
		s[i * 37 * PG] = mark(i);
	}
	for (long i = 0; i < 40; i++)
		sb += s[i * 37 * PG] != mark(i) || s[i * 37 * PG + PG] != 0;
	printf("sparse: %ld bad pages\n", sb);

	/* Fork after streaming: the child sees the data and its writes stay its own. */
	pid_t pid = fork();
	if (pid == 0) {
		long bad = check(bw, n);
		for (long i = 0; i < n; i++)
			bw[i * PG] = 0x5a;
		_exit(bad == 0 ? 0 : 1);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("child: %s\n", wait_status(st));
	printf("parent after child: %ld pages changed\n", check(bw, n));

	/* A private file mapping of 10.5 pages streamed: the file's bytes, zeros after its end
	 * in the last page, SIGBUS past it. */
	char path[] = "/tmp/fault_stream.XXXXXX";
	int fd = mkstemp(path);
	CHECK("file", fd >= 0);
	unlink(path);
	long fsize = 10 * PG + PG / 2;
	unsigned char *buf = malloc(fsize);
	for (long i = 0; i < fsize; i++)
		buf[i] = (unsigned char)(i * 31 + (i >> 12));
	CHECK("file write", write(fd, buf, fsize) == fsize);
	unsigned char *f = mmap(NULL, 20 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CHECK("file map", f != MAP_FAILED);
	long fb = 0;
	for (long i = 0; i < fsize; i += 512)
		fb += f[i] != buf[i];
	for (long i = fsize; i < 11 * PG; i++)
		fb += f[i] != 0;
	printf("file: %ld bad bytes\n", fb);
	sigaction(SIGBUS, &sa, NULL);
	printf("past the file's end: signal %d\n", write_signal((char *)f + 11 * PG));
	return 0;
}
