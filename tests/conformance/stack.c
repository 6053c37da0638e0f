/* The main thread's stack grows on demand up to several MiB. */
#include "conf.h"
#include <alloca.h>
#include <sys/resource.h>

int main(void)
{
	struct rlimit rl;
	getrlimit(RLIMIT_STACK, &rl);
	int room = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= (6UL << 20);
	printf("stack limit >= 6 MiB: %s\n", room ? "yes" : "no");
	/* ~4 MiB of frames, touched one page at a time */
	printf("deep recursion (1000 x 4 KiB): %016llx\n",
	       (unsigned long long)conf_deep_stack(1000, 1));
	/* one 1 MiB alloca touched from the far end */
	volatile unsigned char *a = alloca(1 << 20);
	for (long i = (1 << 20) - 1; i >= 0; i -= 4096)
		a[i] = (unsigned char)i;
	uint64_t h = 0;
	for (long i = (1 << 20) - 1; i >= 0; i -= 4096)
		h = fnv1a((const void *)&a[i], 1, h);
	printf("alloca 1 MiB: %016llx\n", (unsigned long long)h);
	return 0;
}
