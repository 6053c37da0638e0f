/* brk directly, then malloc/calloc/realloc/free from 1 byte to 64 MiB
 * (small blocks come from brk, big ones from mmap), with patterns verified
 * and checksums printed. */
#include "conf.h"
#include <sys/syscall.h>
#include <unistd.h>

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed * 131 + i * 7 + (i >> 12));
}

static int verify(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(seed * 131 + i * 7 + (i >> 12)))
			return 0;
	return 1;
}

static int all_zero(const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

int main(void)
{
	/* Raw brk, before stdio allocates anything. Results printed later. */
	const unsigned long MB = 1 << 20;
	unsigned long cur = syscall(SYS_brk, 0);
	unsigned long grown = syscall(SYS_brk, cur + MB);
	int grow_ok = grown == cur + MB;
	int zero1 = grow_ok && all_zero((unsigned char *)cur, MB);
	if (grow_ok)
		memset((void *)cur, 0xa5, MB);
	unsigned long shrunk = syscall(SYS_brk, cur);
	unsigned long regrown = syscall(SYS_brk, cur + MB);
	int zero2 = regrown == cur + MB && all_zero((unsigned char *)cur, MB);
	unsigned long back = syscall(SYS_brk, cur);
	unsigned long low = syscall(SYS_brk, 4096);	/* below the heap start: refused */
	unsigned long huge = syscall(SYS_brk, cur + (1UL << 47));	/* past the user address space: refused */

	printf("brk(0) nonzero: %s\n", cur ? "ok" : "FAIL");
	CHECK("brk grow 1 MiB", grow_ok);
	CHECK("brk new memory zeroed", zero1);
	CHECK("brk shrink", shrunk == cur);
	CHECK("brk regrow zeroed again", zero2);
	CHECK("brk back to start", back == cur);
	CHECK("brk below start returns current break", low == cur);
	CHECK("brk huge returns current break", huge == cur);

	/* Many small blocks, random sizes, partial frees and reallocs. */
	enum { N = 20000 };
	static unsigned char *blk[N];
	static size_t sz[N];
	uint64_t h = 0;
	int bad = 0;
	for (int i = 0; i < N; i++) {
		sz[i] = 1 + rng() % 2048;
		blk[i] = malloc(sz[i]);
		if (!blk[i]) {
			bad++;
			continue;
		}
		fill(blk[i], sz[i], i);
	}
	for (int i = 0; i < N; i += 2) {
		if (!verify(blk[i], sz[i], i))
			bad++;
		free(blk[i]);
		blk[i] = NULL;
	}
	for (int i = 1; i < N; i += 2) {
		size_t nsz = 1 + rng() % 8192;
		unsigned char *p = realloc(blk[i], nsz);
		if (!p) {
			bad++;
			continue;
		}
		size_t keep = nsz < sz[i] ? nsz : sz[i];
		if (!verify(p, keep, i))
			bad++;
		blk[i] = p;
		sz[i] = nsz;
		fill(p, nsz, i + 1);
	}
	for (int i = 1; i < N; i += 2) {
		if (!verify(blk[i], sz[i], i + 1))
			bad++;
		h = fnv1a(blk[i], sz[i], h);
		free(blk[i]);
	}
	printf("small blocks: %s checksum %016llx\n", bad ? "FAIL" : "ok",
	       (unsigned long long)h);

	/* Powers of two from 1 byte to 64 MiB, and their neighbours. */
	h = 0;
	bad = 0;
	for (size_t s = 1; s <= 64 * MB; s <<= 1) {
		size_t sizes[3] = { s - 1, s, s + 1 };
		for (int k = 0; k < 3; k++) {
			if (sizes[k] == 0)
				continue;
			unsigned char *p = malloc(sizes[k]);
			if (!p) {
				bad++;
				continue;
			}
			fill(p, sizes[k], (unsigned)sizes[k]);
			if (!verify(p, sizes[k], (unsigned)sizes[k]))
				bad++;
			h = fnv1a(p, sizes[k] < 4096 ? sizes[k] : 4096, h);
			h = fnv1a(p + sizes[k] - 1, 1, h);
			free(p);
		}
	}
	printf("power-of-two sizes: %s checksum %016llx\n", bad ? "FAIL" : "ok",
	       (unsigned long long)h);

	/* realloc growth from 1 byte to 64 MiB keeps the prefix. */
	bad = 0;
	unsigned char *p = malloc(1);
	size_t cursz = 1;
	p[0] = 0x5a;
	fill(p, 1, 77);
	for (size_t s = 2; s <= 64 * MB; s <<= 1) {
		unsigned char *q = realloc(p, s);
		if (!q) {
			bad++;
			break;
		}
		if (!verify(q, cursz, 77))
			bad++;
		fill(q, s, 77);
		p = q;
		cursz = s;
	}
	/* and shrinking back down */
	for (size_t s = cursz / 3; s >= 1; s /= 3) {
		unsigned char *q = realloc(p, s);
		if (!q) {
			bad++;
			break;
		}
		if (!verify(q, s, 77))
			bad++;
		p = q;
		cursz = s;
	}
	h = fnv1a(p, cursz, 0);
	free(p);
	printf("realloc grow/shrink: %s checksum %016llx\n", bad ? "FAIL" : "ok",
	       (unsigned long long)h);

	/* calloc returns zeroed memory, also when reusing freed blocks. */
	bad = 0;
	for (size_t s = 16; s <= 32 * MB; s *= 4) {
		unsigned char *a = malloc(s);
		if (!a) {
			bad++;
			continue;
		}
		memset(a, 0xff, s);
		free(a);
		unsigned char *c = calloc(1, s);
		if (!c || !all_zero(c, s))
			bad++;
		free(c);
	}
	CHECK("calloc zeroed", !bad);

	/* Many blocks around the mmap threshold live at once. */
	enum { M = 96 };
	static unsigned char *mid[M];
	static size_t msz[M];
	bad = 0;
	h = 0;
	for (int i = 0; i < M; i++) {
		msz[i] = 64 * 1024 + (rng() % (2 * MB));
		mid[i] = malloc(msz[i]);
		if (!mid[i]) {
			bad++;
			continue;
		}
		fill(mid[i], msz[i], 1000 + i);
	}
	for (int i = 0; i < M; i++) {
		if (mid[i] && !verify(mid[i], msz[i], 1000 + i))
			bad++;
		if (mid[i])
			h = fnv1a(mid[i], 4096, h);
		free(mid[i]);
	}
	printf("medium blocks: %s checksum %016llx\n", bad ? "FAIL" : "ok",
	       (unsigned long long)h);

	/* A request no machine can satisfy fails cleanly with ENOMEM. */
	errno = 0;
	void *big = malloc((size_t)1 << 60);
	printf("malloc(2^60): %s errno=%s\n", big ? "non-NULL" : "NULL", errname(errno));
	free(big);
	return 0;
}
