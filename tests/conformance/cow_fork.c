/* fork gives the child a private copy of every private page, whether it
 * is copied at fork or on first write: writes by either side, by the CPU or
 * by a system call (read into a buffer), are never seen by the other, in
 * anonymous memory, the heap, the stack and MAP_PRIVATE file mappings.
 * Shared memory (MAP_SHARED anonymous and /dev/zero) stays shared. */
#include "conf.h"
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096
#define PAGES 64

/* Silent unless it fails: the child's lines would interleave with the parent's. */
#define MUST(label, cond)                                                    \
	do {                                                                 \
		if (!(cond))                                                 \
			printf("%s: FAIL (line %d)\n", label, __LINE__);     \
	} while (0)

static unsigned sum(volatile unsigned char *p, size_t n)
{
	unsigned s = 0;
	for (size_t i = 0; i < n; i++)
		s = s * 31 + p[i];
	return s;
}

static void fill(volatile unsigned char *p, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (unsigned char)(seed + i * 7);
}

static volatile int spin_stop;
static volatile unsigned char *spin_page;

/* Writes the page over and over while the main thread forks. */
static void *spinner(void *arg)
{
	(void)arg;
	unsigned v = 0;
	while (!spin_stop)
		spin_page[v++ % PAGE] = 0xAB;
	return NULL;
}

int main(void)
{
	volatile unsigned char *anon = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE,
	                                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK("mmap anon", anon != MAP_FAILED);
	fill(anon, PAGES * PAGE, 1);
	unsigned char *heap = malloc(3 * PAGE);
	CHECK("malloc", heap != NULL);
	fill(heap, 3 * PAGE, 2);
	volatile unsigned char stack[2 * PAGE];
	fill(stack, sizeof stack, 3);

	char path[] = "/tmp/cowXXXXXX";
	int fd = mkstemp(path);
	CHECK("mkstemp", fd >= 0);
	unsigned char filedata[2 * PAGE];
	fill(filedata, sizeof filedata, 4);
	CHECK("write file", write(fd, filedata, sizeof filedata) == sizeof filedata);
	volatile unsigned char *fmap = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE,
	                                    MAP_PRIVATE, fd, 0);
	CHECK("mmap file", fmap != MAP_FAILED);
	fmap[0] = 0x55; /* one page private before fork, one still the file's */

	int zfd = open("/dev/zero", O_RDWR);
	CHECK("open /dev/zero", zfd >= 0);
	/* Large enough that the fault around page 0 doesn't reach page 40. */
	volatile unsigned *zero = mmap(NULL, 64 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, zfd, 0);
	CHECK("mmap /dev/zero", zero != MAP_FAILED);
	zero[0] = 5; /* page 0 touched before fork, page 40 not */

	unsigned before[4] = {sum(anon, PAGES * PAGE), sum(heap, 3 * PAGE),
	                      sum(stack, sizeof stack), sum(fmap, 2 * PAGE)};
	int p2c[2], c2p[2];
	CHECK("pipes", pipe(p2c) == 0 && pipe(c2p) == 0);
	pid_t pid = fork();
	MUST("fork", pid >= 0);
	if (pid == 0) {
		/* The child changes everything, by CPU writes and by read(). */
		fill(anon, PAGES * PAGE / 2, 9);
		fill(heap, PAGE, 9);
		fill(stack, PAGE, 9);
		fmap[PAGE] = 0x99;
		fmap[0] = 0x98;
		char c;
		MUST("child read", read(p2c[0], (char *)anon + PAGES * PAGE - 10, 5) == 5);
		zero[0] += 1;
		zero[40 * PAGE / 4] = 77;
		printf("child: anon %s, heap %s, stack %s, file %s\n",
		       sum(anon, PAGES * PAGE) != before[0] ? "changed" : "same",
		       sum(heap, 3 * PAGE) != before[1] ? "changed" : "same",
		       sum(stack, sizeof stack) != before[2] ? "changed" : "same",
		       sum(fmap, 2 * PAGE) != before[3] ? "changed" : "same");
		fflush(stdout);
		MUST("child done", write(c2p[1], "x", 1) == 1);
		MUST("child wait", read(p2c[0], &c, 1) == 1);
		/* The parent wrote after the child's writes: the child must not see it. */
		printf("child after parent writes: anon[0] %u, heap[0] %u\n", anon[0], heap[0]);
		_exit(0);
	}
	MUST("parent send", write(p2c[1], "hello", 5) == 5);
	char c;
	CHECK("parent wait", read(c2p[0], &c, 1) == 1);
	printf("parent after child writes: anon %s, heap %s, stack %s, file %s\n",
	       sum(anon, PAGES * PAGE) == before[0] ? "same" : "CHANGED",
	       sum(heap, 3 * PAGE) == before[1] ? "same" : "CHANGED",
	       sum(stack, sizeof stack) == before[2] ? "same" : "CHANGED",
	       sum(fmap, 2 * PAGE) == before[3] ? "same" : "CHANGED");
	printf("shared /dev/zero: page 0 %u, page 40 %u\n", zero[0], zero[40 * PAGE / 4]);
	anon[0] = 200;
	heap[0] = 201;
	MUST("parent go", write(p2c[1], "x", 1) == 1);
	int st;
	CHECK("waitpid", waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0);
	printf("parent: anon[0] %u heap[0] %u\n", anon[0], heap[0]);

	/* The file itself never changed. */
	unsigned char back[2 * PAGE];
	CHECK("pread", pread(fd, back, sizeof back, 0) == sizeof back);
	printf("file unchanged: %s\n", memcmp(back, filedata, sizeof back) == 0 ? "yes" : "no");
	unlink(path);

	/* Fork while another thread keeps writing a private page: the child's copy
	 * is a snapshot, and later writes of the thread never reach the child. */
	spin_page = anon;
	fill(anon, PAGE, 0);
	pthread_t th;
	CHECK("pthread_create", pthread_create(&th, NULL, spinner, NULL) == 0);
	for (int round = 0; round < 20; round++) {
		pid_t k = fork();
		if (k == 0) {
			unsigned char snap[PAGE];
			memcpy(snap, (void *)anon, PAGE);
			for (volatile int i = 0; i < 200000; i++)
				;
			_exit(memcmp(snap, (void *)anon, PAGE) == 0 ? 0 : 1);
		}
		MUST("waitpid spin", waitpid(k, &st, 0) == k);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			printf("round %d: child saw the parent's thread write after fork\n", round);
			break;
		}
	}
	spin_stop = 1;
	pthread_join(th, NULL);
	printf("fork during writes: done\n");
	return 0;
}
