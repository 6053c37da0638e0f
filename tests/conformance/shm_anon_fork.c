/* MAP_SHARED|MAP_ANONYMOUS memory is shared with children for every page,
 * including pages nobody touched before fork, and MADV_DONTNEED keeps its
 * contents (it is shmem, not private memory). */
#include "conf.h"
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096
#define PAGES 4

int main(void)
{
	volatile unsigned *m = mmap(NULL, PAGES * PAGE, PROT_READ | PROT_WRITE,
	                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK("mmap", m != MAP_FAILED);
	m[0] = 1; /* page 0 touched before fork; pages 1..3 not */
	int go[2], done[2];
	CHECK("pipes", pipe(go) == 0 && pipe(done) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		m[PAGE / 4] = 11;     /* first touch, in the child */
		m[0] += 100;
		write(done[1], "x", 1);
		read(go[0], &c, 1);
		/* The parent's first touch of page 2 after fork. */
		printf("child sees parent's page 2: %u\n", m[2 * PAGE / 4]);
		fflush(stdout);
		for (int i = 0; i < 1000; i++)
			__atomic_fetch_add(&m[3 * PAGE / 4], 1, __ATOMIC_SEQ_CST);
		_exit(0);
	}
	char c;
	read(done[0], &c, 1);
	printf("parent sees child's page 1: %u, page 0: %u\n", m[PAGE / 4], m[0]);
	m[2 * PAGE / 4] = 22;
	write(go[1], "x", 1);
	for (int i = 0; i < 1000; i++)
		__atomic_fetch_add(&m[3 * PAGE / 4], 1, __ATOMIC_SEQ_CST);
	int st;
	waitpid(pid, &st, 0);
	printf("shared counter: %u\n", m[3 * PAGE / 4]);

	/* A mapping no process touches before fork: the children's first
	 * touches must still meet in one page. */
	volatile unsigned *fresh = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
	                                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	CHECK("mmap fresh", fresh != MAP_FAILED);
	for (int c = 0; c < 2; c++) {
		if (fork() == 0) {
			for (int i = 0; i < 500; i++)
				__atomic_fetch_add(&fresh[0], 1, __ATOMIC_SEQ_CST);
			_exit(0);
		}
	}
	wait(NULL);
	wait(NULL);
	printf("children's first-touch counter: %u\n", fresh[0]);

	CHECK("madvise DONTNEED", madvise((void *)m, PAGES * PAGE, MADV_DONTNEED) == 0);
	printf("after DONTNEED: %u %u %u %u\n", m[0], m[PAGE / 4], m[2 * PAGE / 4], m[3 * PAGE / 4]);
	return 0;
}
