/* NUMA memory policy (issue 14 item 9): set_mempolicy, get_mempolicy and mbind as a
 * one-node machine answers them (node 0 only, as this host and the sandbox are): every
 * mode and mode flag, the nodemask rules (empty, offline nodes, bits past the kernel's
 * node count, maxnode edge cases), per-thread policy inherited by fork and threads, per-VMA
 * policy split and merged by mbind and read back with MPOL_F_ADDR, MPOL_F_NODE,
 * MPOL_F_MEMS_ALLOWED, and bad pointers. Raw system calls: libnuma is not in a static
 * build. */
#include "conf.h"
#include <pthread.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#define MPOL_DEFAULT 0
#define MPOL_PREFERRED 1
#define MPOL_BIND 2
#define MPOL_INTERLEAVE 3
#define MPOL_LOCAL 4
#define MPOL_PREFERRED_MANY 5
#define MPOL_WEIGHTED_INTERLEAVE 6
#define MPOL_F_STATIC_NODES (1 << 15)
#define MPOL_F_RELATIVE_NODES (1 << 14)
#define MPOL_F_NUMA_BALANCING (1 << 13)
#define MPOL_F_NODE (1 << 0)
#define MPOL_F_ADDR (1 << 1)
#define MPOL_F_MEMS_ALLOWED (1 << 2)
#define MPOL_MF_STRICT (1 << 0)
#define MPOL_MF_MOVE (1 << 1)
#define MPOL_MF_MOVE_ALL (1 << 2)

static long set_pol(int mode, const unsigned long *mask, unsigned long maxnode)
{
	return syscall(SYS_set_mempolicy, mode, mask, maxnode);
}

static long get_pol(int *mode, unsigned long *mask, unsigned long maxnode, void *addr,
		    unsigned long flags)
{
	return syscall(SYS_get_mempolicy, mode, mask, maxnode, addr, flags);
}

static long mbind_(void *start, unsigned long len, int mode, const unsigned long *mask,
		   unsigned long maxnode, unsigned flags)
{
	return syscall(SYS_mbind, start, len, mode, mask, maxnode, flags);
}

static const char *res(long r)
{
	return r == 0 ? "0" : r < 0 ? errname(errno) : "positive";
}

/* The calling thread's policy and nodemask (first word), or the call's error. */
static void show(const char *what)
{
	int mode = -1;
	unsigned long mask[16];
	memset(mask, 0xa5, sizeof mask);
	long r = get_pol(&mode, mask, 1024, NULL, 0);
	if (r)
		printf("%s: get_mempolicy %s\n", what, errname(errno));
	else
		printf("%s: mode %#x nodes %#lx %#lx\n", what, mode, mask[0], mask[15]);
}

static void *thread_show(void *arg)
{
	show(arg);
	set_pol(MPOL_DEFAULT, NULL, 0);
	show("thread after its own reset");
	return NULL;
}

static void modes(void)
{
	unsigned long n0 = 1, n01 = 3, n1 = 2, none = 0;
	show("initial");
	struct {
		const char *name;
		int mode;
		const unsigned long *mask;
		unsigned long maxnode;
	} cases[] = {
		{"default, no mask", MPOL_DEFAULT, NULL, 0},
		{"default, empty mask", MPOL_DEFAULT, &none, 64},
		{"default, node 0", MPOL_DEFAULT, &n0, 64},
		{"bind 0", MPOL_BIND, &n0, 64},
		{"bind 0,1", MPOL_BIND, &n01, 64},
		{"bind 1 (offline)", MPOL_BIND, &n1, 64},
		{"bind empty", MPOL_BIND, &none, 64},
		{"bind, no mask", MPOL_BIND, NULL, 64},
		{"bind 0, maxnode 1 (no bits)", MPOL_BIND, &n0, 1},
		{"bind 0, maxnode 2", MPOL_BIND, &n0, 2},
		{"bind 0, maxnode 0", MPOL_BIND, &n0, 0},
		{"preferred 0", MPOL_PREFERRED, &n0, 64},
		{"preferred 0,1", MPOL_PREFERRED, &n01, 64},
		{"preferred empty (local)", MPOL_PREFERRED, &none, 64},
		{"preferred, no mask", MPOL_PREFERRED, NULL, 0},
		{"interleave 0,1", MPOL_INTERLEAVE, &n01, 64},
		{"interleave empty", MPOL_INTERLEAVE, &none, 64},
		{"local", MPOL_LOCAL, NULL, 0},
		{"local, node 0", MPOL_LOCAL, &n0, 64},
		{"preferred many 0", MPOL_PREFERRED_MANY, &n0, 64},
		{"weighted interleave 0", MPOL_WEIGHTED_INTERLEAVE, &n0, 64},
		{"mode 7", 7, &n0, 64},
		{"mode 99", 99, &n0, 64},
		{"bind|static 0,1", MPOL_BIND | MPOL_F_STATIC_NODES, &n01, 64},
		{"bind|relative 0,1", MPOL_BIND | MPOL_F_RELATIVE_NODES, &n01, 64},
		{"bind|relative 1", MPOL_BIND | MPOL_F_RELATIVE_NODES, &n1, 64},
		{"bind|static 1", MPOL_BIND | MPOL_F_STATIC_NODES, &n1, 64},
		{"bind|static|relative", MPOL_BIND | MPOL_F_STATIC_NODES | MPOL_F_RELATIVE_NODES,
		 &n0, 64},
		{"preferred|static empty", MPOL_PREFERRED | MPOL_F_STATIC_NODES, &none, 64},
		{"local|static", MPOL_LOCAL | MPOL_F_STATIC_NODES, NULL, 0},
		{"interleave|static 0", MPOL_INTERLEAVE | MPOL_F_STATIC_NODES, &n0, 64},
		{"bind|numa balancing", MPOL_BIND | MPOL_F_NUMA_BALANCING, &n0, 64},
		{"preferred many|numa balancing", MPOL_PREFERRED_MANY | MPOL_F_NUMA_BALANCING, &n0, 64},
		{"interleave|numa balancing", MPOL_INTERLEAVE | MPOL_F_NUMA_BALANCING, &n0, 64},
		{"default|static", MPOL_DEFAULT | MPOL_F_STATIC_NODES, NULL, 0},
		{"flag 1<<12", MPOL_BIND | (1 << 12), &n0, 64},
	};
	for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		long r = set_pol(cases[i].mode, cases[i].mask, cases[i].maxnode);
		printf("set %s: %s\n", cases[i].name, res(r));
		if (!r)
			show(cases[i].name);
	}
	set_pol(MPOL_DEFAULT, NULL, 0);
}

/* Nodemasks longer than one word: bits past the kernel's node count must be zero; the whole
 * mask must fit in a page of bits. */
static void long_masks(void)
{
	static unsigned long big[4096 / 8 + 2];
	memset(big, 0, sizeof big);
	big[0] = 1;
	printf("maxnode 4096: %s\n", res(set_pol(MPOL_BIND, big, 4096)));
	printf("maxnode 32769: %s\n", res(set_pol(MPOL_BIND, big, 32769)));
	printf("maxnode 32770: %s\n", res(set_pol(MPOL_BIND, big, 32770)));
	for (unsigned long b = 1; b < 4096; b *= 2) {
		big[b / 64] |= 1UL << (b % 64);
		long r = set_pol(MPOL_BIND, big, 4097);
		printf("node %lu set too: %s\n", b, res(r));
		big[b / 64] &= ~(1UL << (b % 64));
	}
	set_pol(MPOL_DEFAULT, NULL, 0);
	printf("set, mask unmapped: %s\n", res(set_pol(MPOL_BIND, (void *)8, 64)));
	printf("set, mask unmapped, maxnode 1: %s\n", res(set_pol(MPOL_BIND, (void *)8, 1)));
}

static void get_forms(void)
{
	int mode = -1;
	unsigned long mask[4] = {~0UL, ~0UL, ~0UL, ~0UL};
	unsigned long n0 = 1;
	printf("get, no args: %s\n", res(get_pol(NULL, NULL, 0, NULL, 0)));
	printf("get, mask maxnode 0: %s\n", res(get_pol(&mode, mask, 0, NULL, 0)));
	long r = get_pol(&mode, mask, 1, NULL, 0);
	printf("get, mask maxnode 1: %s %#lx\n", res(r), mask[0]);
	mask[0] = mask[1] = ~0UL;
	r = get_pol(&mode, mask, 65, NULL, 0);
	printf("get, mask maxnode 65: %s %#lx %#lx\n", res(r), mask[0], mask[1]);
	mask[0] = mask[1] = mask[2] = ~0UL;
	r = get_pol(&mode, mask, 130, NULL, 0);
	printf("get, mask maxnode 130: %s %#lx %#lx %#lx\n", res(r), mask[0], mask[1], mask[2]);
	printf("get, bad flags: %s\n", res(get_pol(&mode, NULL, 0, NULL, 8)));
	printf("get, addr without F_ADDR: %s\n", res(get_pol(&mode, NULL, 0, &mode, 0)));
	printf("get, mode unmapped: %s\n", res(get_pol((void *)8, NULL, 0, NULL, 0)));
	printf("get, mask unmapped: %s\n", res(get_pol(&mode, (void *)8, 64, NULL, 0)));
	printf("get, huge maxnode: %s\n", res(get_pol(&mode, mask, 1UL << 40, NULL, 0)));
	mode = -1;
	mask[0] = ~0UL;
	r = get_pol(&mode, mask, 64, NULL, MPOL_F_MEMS_ALLOWED);
	printf("mems allowed: %s mode %d mask %#lx\n", res(r), mode, mask[0]);
	printf("mems allowed|node: %s\n",
	       res(get_pol(&mode, mask, 64, NULL, MPOL_F_MEMS_ALLOWED | MPOL_F_NODE)));
	printf("node, default policy: %s\n", res(get_pol(&mode, NULL, 0, NULL, MPOL_F_NODE)));
	set_pol(MPOL_INTERLEAVE, &n0, 64);
	mode = -1;
	r = get_pol(&mode, NULL, 0, NULL, MPOL_F_NODE);
	printf("node, interleave: %s %d\n", res(r), mode);
	set_pol(MPOL_DEFAULT, NULL, 0);
}

static void inheritance(void)
{
	unsigned long n0 = 1;
	set_pol(MPOL_INTERLEAVE, &n0, 64);
	pthread_t th;
	pthread_create(&th, NULL, thread_show, "new thread");
	pthread_join(th, NULL);
	show("creator after the thread's reset");
	pid_t pid = fork();
	if (pid == 0) {
		show("fork child");
		fflush(stdout);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	set_pol(MPOL_DEFAULT, NULL, 0);
}

static void vma_pol(char *at, const char *what)
{
	int mode = -1;
	unsigned long mask = ~0UL;
	long r = get_pol(&mode, &mask, 64, at, MPOL_F_ADDR);
	if (r)
		printf("  %s: %s\n", what, errname(errno));
	else
		printf("  %s: mode %#x nodes %#lx\n", what, mode, mask);
}

static void vmas(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	unsigned long n0 = 1, n1 = 2;
	char *m = mmap(NULL, 8 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	printf("mbind middle: %s\n", res(mbind_(m + 2 * pg, 2 * pg, MPOL_BIND, &n0, 64, 0)));
	vma_pol(m, "page 0");
	vma_pol(m + 2 * pg, "page 2");
	vma_pol(m + 3 * pg + 5, "page 3 (inside)");
	vma_pol(m + 4 * pg, "page 4");
	printf("mbind strict|move: %s\n",
	       res(mbind_(m + 4 * pg, pg, MPOL_INTERLEAVE | MPOL_F_STATIC_NODES, &n0, 64,
			  MPOL_MF_STRICT | MPOL_MF_MOVE)));
	vma_pol(m + 4 * pg, "page 4 after");
	printf("mbind default over all: %s\n",
	       res(mbind_(m, 8 * pg, MPOL_DEFAULT, NULL, 0, MPOL_MF_STRICT)));
	vma_pol(m + 2 * pg, "page 2 after default");
	/* Node of a page: faulted in by the query. */
	int node = -1;
	long r = get_pol(&node, NULL, 0, m + 6 * pg, MPOL_F_ADDR | MPOL_F_NODE);
	printf("node of page 6: %s %d\n", res(r), node);
	printf("mbind unaligned: %s\n", res(mbind_(m + 1, pg, MPOL_BIND, &n0, 64, 0)));
	printf("mbind len 0: %s\n", res(mbind_(m, 0, MPOL_BIND, &n0, 64, 0)));
	printf("mbind len 1: %s\n", res(mbind_(m, 1, MPOL_BIND, &n0, 64, 0)));
	vma_pol(m, "page 0 after len 1");
	printf("mbind wraps: %s\n", res(mbind_(m, -2 * pg, MPOL_BIND, &n0, 64, 0)));
	printf("mbind offline node: %s\n", res(mbind_(m, pg, MPOL_BIND, &n1, 64, 0)));
	printf("mbind bad flags: %s\n", res(mbind_(m, pg, MPOL_BIND, &n0, 64, 8)));
	printf("mbind bad mode: %s\n", res(mbind_(m, pg, 9, &n0, 64, 0)));
	printf("mbind mask unmapped: %s\n", res(mbind_(m, pg, MPOL_BIND, (void *)8, 64, 0)));
	munmap(m + 5 * pg, pg);
	printf("mbind over a hole: %s\n", res(mbind_(m, 8 * pg, MPOL_BIND, &n0, 64, 0)));
	vma_pol(m + 2 * pg, "page 2 after the hole (unchanged)");
	vma_pol(m + 5 * pg, "the hole");
	printf("mbind unmapped: %s\n", res(mbind_(m + 5 * pg, pg, MPOL_BIND, &n0, 64, 0)));
	/* A VMA policy survives fork; a new mapping has none. */
	mbind_(m + 6 * pg, 2 * pg, MPOL_PREFERRED, &n0, 64, 0);
	pid_t pid = fork();
	if (pid == 0) {
		vma_pol(m + 7 * pg, "fork child page 7");
		fflush(stdout);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	/* mprotect splits the range; both halves keep the policy. */
	mprotect(m + 7 * pg, pg, PROT_READ);
	vma_pol(m + 6 * pg, "page 6 after mprotect of 7");
	vma_pol(m + 7 * pg, "page 7 after mprotect");
	munmap(m, 8 * pg);
	char *again = mmap(m, 8 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
			   -1, 0);
	vma_pol(again + 6 * pg, "a new mapping");
	munmap(again, 8 * pg);
	/* The thread policy is what F_ADDR shows for a VMA without its own. */
	set_pol(MPOL_PREFERRED, &n0, 64);
	char *p = mmap(NULL, pg, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	vma_pol(p, "no VMA policy, thread preferred");
	set_pol(MPOL_DEFAULT, NULL, 0);
	munmap(p, pg);
}

int main(void)
{
	/* The sandbox is a one-node machine; natively the comparison holds only on one too. */
	FILE *f = fopen("/sys/devices/system/node/online", "r");
	char online[64] = "0\n";
	if (f) {
		if (!fgets(online, sizeof online, f))
			strcpy(online, "?");
		fclose(f);
	}
	if (strcmp(online, "0\n")) {
		printf("this host has NUMA nodes %s: the comparison needs a one-node host\n", online);
		return 0;
	}
	modes();
	long_masks();
	get_forms();
	inheritance();
	vmas();
	return 0;
}
