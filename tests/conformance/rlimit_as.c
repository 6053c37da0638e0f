/* RLIMIT_AS bounds the address space: mmap, brk, mremap and malloc fail
 * with ENOMEM past the soft limit, and what is unmapped can be mapped again. */
#include "conf.h"
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#define MiB (1024UL * 1024)

static void *map(size_t len)
{
	return mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

int main(void)
{
	struct rlimit r = { 256 * MiB, RLIM_INFINITY };
	CHECK("setrlimit(RLIMIT_AS, 256 MiB)", setrlimit(RLIMIT_AS, &r) == 0);
	struct rlimit got;
	CHECK("getrlimit", getrlimit(RLIMIT_AS, &got) == 0 && got.rlim_cur == 256 * MiB);

	errno = 0;
	void *big = map(512 * MiB);
	printf("mmap 512 MiB: %s %s\n", big == MAP_FAILED ? "failed" : "mapped", errname(errno));

	void *a = map(64 * MiB);
	CHECK("mmap 64 MiB", a != MAP_FAILED);
	memset(a, 1, 4096);

	/* Growing it past the limit fails; growing a little works. */
	errno = 0;
	void *g = mremap(a, 64 * MiB, 400 * MiB, MREMAP_MAYMOVE);
	printf("mremap to 400 MiB: %s %s\n", g == MAP_FAILED ? "failed" : "moved", errname(errno));
	g = mremap(a, 64 * MiB, 80 * MiB, MREMAP_MAYMOVE);
	CHECK("mremap to 80 MiB", g != MAP_FAILED);
	a = g;

	/* A fixed mapping over existing memory only counts what it adds. */
	void *f = mmap(a, 80 * MiB, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	CHECK("MAP_FIXED over the same range", f == a);

	errno = 0;
	void *c = map(200 * MiB);
	printf("mmap 200 MiB more: %s %s\n", c == MAP_FAILED ? "failed" : "mapped", errname(errno));

	errno = 0;
	void *m = malloc(300 * MiB);
	printf("malloc 300 MiB: %s\n", m ? "got memory" : "NULL");
	free(m);

	void *top = sbrk(0);
	errno = 0;
	void *b = sbrk(300 * MiB);
	printf("sbrk 300 MiB: %s %s\n", b == (void *)-1 ? "failed" : "grew", errname(errno));
	CHECK("brk unchanged", sbrk(0) == top);

	CHECK("munmap", munmap(a, 80 * MiB) == 0);
	c = map(200 * MiB);
	CHECK("mmap 200 MiB after munmap", c != MAP_FAILED);

	/* Raising the soft limit up to the hard one needs no privilege. */
	r.rlim_cur = RLIM_INFINITY;
	CHECK("setrlimit back to infinity", setrlimit(RLIMIT_AS, &r) == 0);
	big = map(512 * MiB);
	CHECK("mmap 512 MiB without a limit", big != MAP_FAILED);
	return 0;
}
