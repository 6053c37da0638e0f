/* Memory well past the first 64 MiB of the sandbox's memory file, which the KVM platform
 * makes visible to the hardware a slot at a time as its allocator gets there: 200 MiB
 * written page by page (each page's first and last words name it), read back, then
 * half of it freed and mapped again (fresh pages must be zeros), in a child too. */
#include "conf.h"
#include <sys/mman.h>

enum { MIB = 1 << 20, PAGE = 4096 };
static const size_t LEN = 200 * (size_t)MIB;

static void fill(uint64_t *p, size_t len, uint64_t salt)
{
	for (size_t off = 0; off < len; off += PAGE) {
		p[off / 8] = off ^ salt;
		p[(off + PAGE) / 8 - 1] = ~off ^ salt;
	}
}

static int check(const uint64_t *p, size_t len, uint64_t salt)
{
	for (size_t off = 0; off < len; off += PAGE)
		if (p[off / 8] != (off ^ salt) || p[(off + PAGE) / 8 - 1] != (~off ^ salt))
			return 0;
	return 1;
}

static int zeros(const uint64_t *p, size_t len)
{
	for (size_t off = 0; off < len; off += PAGE)
		if (p[off / 8] || p[(off + PAGE) / 8 - 1])
			return 0;
	return 1;
}

int main(void)
{
	uint64_t *p = mmap(NULL, LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		printf("mmap 200 MiB: %s\n", errname(errno));
		return 1;
	}
	fill(p, LEN, 0x5a5a);
	CHECK("200 MiB written and read back", check(p, LEN, 0x5a5a));
	size_t half = LEN / 2;
	CHECK("munmap the second half", munmap((char *)p + half, half) == 0);
	uint64_t *q = mmap((char *)p + half, half, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
	CHECK("mapped again", q == (uint64_t *)((char *)p + half));
	CHECK("fresh pages are zeros", zeros(q, half));
	fill(q, half, 0x1234);
	pid_t pid = fork();
	if (pid == 0) {
		/* The child writes its copies: copy-on-write pages come from the allocator too. */
		fill(p, half, 0x7777);
		_exit(check(p, half, 0x7777) && check(q, half, 0x1234) ? 0 : 1);
	}
	int status = 0;
	CHECK("fork", pid > 0 && waitpid(pid, &status, 0) == pid);
	CHECK("the child saw its writes", WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK("the parent's pages are its own", check(p, half, 0x5a5a) && check(q, half, 0x1234));
	return 0;
}
