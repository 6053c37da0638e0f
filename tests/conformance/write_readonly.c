/* Writing to a read-only page kills the process with SIGSEGV (status 139).
 * No handler is installed: the default action must happen. */
#include "conf.h"
#include <sys/mman.h>
#include <unistd.h>

int main(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	volatile char *p = mmap(NULL, pg, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		printf("mmap failed: %s\n", errname(errno));
		return 1;
	}
	p[0] = 42;
	CHECK("mprotect PROT_READ", mprotect((void *)p, pg, PROT_READ) == 0);
	printf("read back: %d\n", p[0]);
	printf("writing to a read-only page\n");
	fflush(stdout);
	p[0] = 43;
	printf("survived the write (wrong)\n");
	return 0;
}
