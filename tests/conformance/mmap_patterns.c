/* Anonymous memory mappings: mmap, munmap, mprotect, mremap, madvise, and
 * their error cases. Error cases use raw syscalls so libc checks don't hide
 * the kernel's answer. */
#include "conf.h"
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef MAP_FIXED_NOREPLACE
#define MAP_FIXED_NOREPLACE 0x100000
#endif

static size_t PG;

static void fill(unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed + i * 13 + (i >> 12) * 7);
}

static int verify(const unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (unsigned char)(seed + i * 13 + (i >> 12) * 7))
			return 0;
	return 1;
}

/* Like verify, but for a window [off, off+n) of a buffer filled from 0. */
static int verify_at(const unsigned char *base, size_t off, size_t n, unsigned seed)
{
	for (size_t i = off; i < off + n; i++)
		if (base[i - off] != (unsigned char)(seed + i * 13 + (i >> 12) * 7))
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

/* 1 when [p, p+n) is entirely mapped (RW mappings only: it sets RW). */
static int mapped(void *p, size_t n)
{
	return mprotect(p, n, PROT_READ | PROT_WRITE) == 0;
}

/* errno name of a failed probe, "0" on success */
static const char *unmapped_err(void *p, size_t n)
{
	errno = 0;
	return mprotect(p, n, PROT_READ | PROT_WRITE) == 0 ? "0" : errname(errno);
}

/* mmap that must succeed: on failure, say so and exit (don't crash). */
static void *must_mmap(void *hint, size_t len, int prot, int flags, const char *what)
{
	void *p = mmap(hint, len, prot, flags, -1, 0);
	if (p == MAP_FAILED) {
		printf("%s: mmap FAILED errno=%s; stopping\n", what, errname(errno));
		exit(1);
	}
	return p;
}

static long raw_mmap(void *addr, size_t len, int prot, int flags, int fd, long off)
{
	return syscall(SYS_mmap, addr, len, prot, flags, fd, off);
}

int main(void)
{
	PG = sysconf(_SC_PAGESIZE);
	printf("page size: %zu\n", PG);

	/* 1. Plain anonymous private RW mapping: zero-filled, writable. */
	unsigned char *a = must_mmap(NULL, 16 * PG, PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS, "16 pages");
	CHECK("mmap page aligned", ((uintptr_t)a & (PG - 1)) == 0);
	CHECK("fresh mapping zeroed", all_zero(a, 16 * PG));
	fill(a, 16 * PG, 1);
	CHECK("write/verify 16 pages", verify(a, 16 * PG, 1));

	/* 2. Punch a hole in the middle, then map into it with a hint. */
	CHECK("munmap pages 4..8", munmap(a + 4 * PG, 4 * PG) == 0);
	printf("hole probe: %s\n", unmapped_err(a + 4 * PG, 4 * PG));
	printf("partial hole probe: %s\n", unmapped_err(a + 3 * PG, 2 * PG));
	CHECK("pages before hole intact", verify(a, 4 * PG, 1));
	CHECK("pages after hole intact", verify_at(a + 8 * PG, 8 * PG, 8 * PG, 1));
	unsigned char *h = mmap(a + 4 * PG, 4 * PG, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK("mmap hint into hole honored", h == a + 4 * PG);
	CHECK("hole mapping zeroed", h != MAP_FAILED && all_zero(h, 4 * PG));
	CHECK("whole range mapped again", mapped(a, 16 * PG));

	/* 3. mprotect RW -> R keeps contents; back to RW is writable. */
	fill(a, 16 * PG, 2);
	CHECK("mprotect R", mprotect(a, 16 * PG, PROT_READ) == 0);
	CHECK("content after mprotect R", verify(a, 16 * PG, 2));
	CHECK("mprotect RW", mprotect(a, 16 * PG, PROT_READ | PROT_WRITE) == 0);
	fill(a, 16 * PG, 3);
	CHECK("write after mprotect RW", verify(a, 16 * PG, 3));
	/* mprotect of a sub-range splits the mapping and keeps the rest. */
	CHECK("mprotect middle R", mprotect(a + 5 * PG, 2 * PG, PROT_READ) == 0);
	CHECK("split mapping content", verify(a, 16 * PG, 3));
	CHECK("mprotect middle RW", mprotect(a + 5 * PG, 2 * PG, PROT_READ | PROT_WRITE) == 0);
	CHECK("munmap 16 pages", munmap(a, 16 * PG) == 0);
	printf("probe after munmap: %s\n", unmapped_err(a, 16 * PG));
	ERRCALL("munmap of unmapped range", munmap(a, 16 * PG));

	/* 4. PROT_NONE then enable. */
	unsigned char *n = must_mmap(NULL, 4 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, "PROT_NONE");
	CHECK("mprotect NONE->RW", mprotect(n, 4 * PG, PROT_READ | PROT_WRITE) == 0);
	fill(n, 4 * PG, 4);
	CHECK("PROT_NONE then RW usable", verify(n, 4 * PG, 4));
	munmap(n, 4 * PG);

	/* 5. mremap grow with MREMAP_MAYMOVE keeps content; shrink in place. */
	unsigned char *r = must_mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS, "mremap source");
	fill(r, 4 * PG, 5);
	unsigned char *r2 = mremap(r, 4 * PG, 256 * PG, MREMAP_MAYMOVE);
	CHECK("mremap grow", r2 != MAP_FAILED);
	if (r2 == MAP_FAILED) {
		printf("mremap grow failed: errno=%s; stopping\n", errname(errno));
		return 1;
	}
	CHECK("mremap grow keeps content", r2 != MAP_FAILED && verify(r2, 4 * PG, 5));
	CHECK("mremap grown tail zeroed", r2 != MAP_FAILED && all_zero(r2 + 4 * PG, 252 * PG));
	fill(r2, 256 * PG, 6);
	unsigned char *r3 = mremap(r2, 256 * PG, 2 * PG, 0);
	CHECK("mremap shrink stays in place", r3 == r2);
	if (r3 == MAP_FAILED)
		printf("mremap shrink failed: errno=%s\n", errname(errno));
	else
		CHECK("mremap shrink keeps content", verify(r3, 2 * PG, 6));
	printf("shrunk tail probe: %s\n", unmapped_err(r2 + 2 * PG, PG));
	/* Growing in place when the next page is the same mapping: ENOMEM. */
	unsigned char *g = must_mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS, "mremap in place");
	errno = 0;
	void *gr = mremap(g, 2 * PG, 4 * PG, 0);
	printf("mremap grow in place blocked: %s errno=%s\n",
	       gr == MAP_FAILED ? "MAP_FAILED" : "moved?", errname(errno));
	/* MREMAP_FIXED moves to the given address, replacing what was there. */
	fill(g, 4 * PG, 7);
	unsigned char *t = must_mmap(NULL, 8 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, "mremap target");
	unsigned char *m = mremap(g, 4 * PG, 4 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, t + 2 * PG);
	CHECK("mremap fixed lands at target", m == t + 2 * PG);
	CHECK("mremap fixed keeps content", m == t + 2 * PG && verify(m, 4 * PG, 7));
	printf("mremap fixed old range probe: %s\n", unmapped_err(g, 4 * PG));
	CHECK("mremap fixed leaves neighbours", mprotect(t, 2 * PG, PROT_READ) == 0 &&
	      mprotect(t + 6 * PG, 2 * PG, PROT_READ) == 0);
	munmap(t, 8 * PG);
	munmap(r2, 2 * PG);

	/* 6. MAP_FIXED over an existing mapping replaces it with zeros. */
	unsigned char *f = must_mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS, "MAP_FIXED base");
	fill(f, 8 * PG, 8);
	unsigned char *f2 = mmap(f + 2 * PG, 3 * PG, PROT_READ | PROT_WRITE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	CHECK("MAP_FIXED at address", f2 == f + 2 * PG);
	CHECK("MAP_FIXED zeroes", all_zero(f + 2 * PG, 3 * PG));
	CHECK("MAP_FIXED leaves neighbours", verify(f, 2 * PG, 8) &&
	      verify_at(f + 5 * PG, 5 * PG, 3 * PG, 8));
	errno = 0;
	void *nr = mmap(f + PG, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	printf("MAP_FIXED_NOREPLACE over mapping: %s errno=%s\n",
	       nr == MAP_FAILED ? "MAP_FAILED" : "mapped", errname(errno));

	/* 7. madvise(MADV_DONTNEED) zeroes anonymous private memory. */
	fill(f, 8 * PG, 9);
	CHECK("madvise DONTNEED", madvise(f + PG, 2 * PG, MADV_DONTNEED) == 0);
	CHECK("DONTNEED range zeroed", all_zero(f + PG, 2 * PG));
	CHECK("DONTNEED neighbours kept", verify(f, PG, 9) &&
	      verify_at(f + 3 * PG, 3 * PG, 5 * PG, 9));
	fill(f, 8 * PG, 10);
	CHECK("writable after DONTNEED", verify(f, 8 * PG, 10));
	ERRCALL("madvise WILLNEED", madvise(f, 8 * PG, MADV_WILLNEED));
	ERRCALL("madvise NORMAL", madvise(f, 8 * PG, MADV_NORMAL));
	munmap(f, 8 * PG);
	ERRCALL("madvise unmapped", madvise(f, 8 * PG, MADV_NORMAL));
	ERRCALL("mprotect unmapped", mprotect(f, 8 * PG, PROT_READ));

	/* 8. A large sparse mapping: touch a few pages only. */
	unsigned char *big = mmap(NULL, 1UL << 30, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	CHECK("mmap 1 GiB", big != MAP_FAILED);
	if (big != MAP_FAILED) {
		big[0] = 1;
		big[(1UL << 29) + 123] = 2;
		big[(1UL << 30) - 1] = 3;
		CHECK("sparse 1 GiB touch", big[0] == 1 && big[(1UL << 29) + 123] == 2 &&
		      big[(1UL << 30) - 1] == 3 && big[PG] == 0);
		CHECK("munmap 1 GiB", munmap(big, 1UL << 30) == 0);
	}
	unsigned char *pop = mmap(NULL, 64 * PG, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	CHECK("MAP_POPULATE zeroed", pop != MAP_FAILED && all_zero(pop, 64 * PG));
	munmap(pop, 64 * PG);

	/* 9. Bad arguments. */
	unsigned char *v = must_mmap(NULL, 4 * PG, PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS, "bad-argument target");
	ERRCALL("mmap len 0", raw_mmap(NULL, 0, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
	ERRCALL("mmap MAP_FIXED unaligned addr",
		raw_mmap(v + 1, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0));
	ERRCALL("mmap neither private nor shared",
		raw_mmap(NULL, PG, PROT_READ, MAP_ANONYMOUS, -1, 0));
	ERRCALL("mmap unaligned offset",
		raw_mmap(NULL, PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 1));
	ERRCALL("mmap huge length",
		raw_mmap(NULL, 1UL << 62, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
	ERRCALL("mmap file-backed bad fd",
		raw_mmap(NULL, PG, PROT_READ, MAP_PRIVATE, 99, 0));
	ERRCALL("munmap unaligned", syscall(SYS_munmap, v + 1, PG));
	ERRCALL("munmap len 0", syscall(SYS_munmap, v, 0));
	ERRCALL("mprotect unaligned", syscall(SYS_mprotect, v + 1, PG, PROT_READ));
	ERRCALL("mprotect bad prot", syscall(SYS_mprotect, v, PG, 0x1000));
	ERRCALL("mremap new_len 0", syscall(SYS_mremap, v, PG, 0, MREMAP_MAYMOVE));
	ERRCALL("mremap unaligned", syscall(SYS_mremap, v + 1, PG, 2 * PG, MREMAP_MAYMOVE));
	ERRCALL("mremap FIXED without MAYMOVE",
		syscall(SYS_mremap, v, PG, PG, MREMAP_FIXED, v + 2 * PG));
	ERRCALL("mremap bad flags", syscall(SYS_mremap, v, PG, PG, 0x100));
	ERRCALL("madvise unaligned", syscall(SYS_madvise, v + 1, PG, MADV_NORMAL));
	ERRCALL("madvise bad advice", syscall(SYS_madvise, v, PG, 12345));
	CHECK("mapping survives bad calls", mapped(v, 4 * PG));
	munmap(v, 4 * PG);
	return 0;
}
