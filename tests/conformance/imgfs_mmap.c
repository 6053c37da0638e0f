/* Mapping the files of a directory (natively) or of the same tree mounted as
 * an ImgFS image (in the sandbox, where pages are lent without a copy): every
 * page reads as the file, bytes past the end of the file read as zeros, a
 * private write copies one page and never reaches the file, a shared
 * writable mapping of a read-only descriptor is refused, and a forked child
 * sees the same bytes.
 *
 * Usage: imgfs_mmap DIR [hold]. With "hold", it waits for a byte on stdin
 * before and after touching every page of DIR/big, printing "mapped" and
 * "touched", so that a harness can measure the sandbox's memory meanwhile. */
#include "conf.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096

static unsigned long checksum(const volatile unsigned char *p, size_t n)
{
	unsigned long s = 0;
	for (size_t i = 0; i < n; i += 64)
		s = s * 131 + p[i] + (p[i + 63] << 8);
	return s;
}

static void wait_for_harness(const char *what)
{
	char c;
	printf("%s\n", what);
	fflush(stdout);
	if (read(0, &c, 1) != 1)
		printf("stdin closed at %s\n", what);
}

static int open_in(const char *dir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	return open(path, O_RDONLY);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		printf("usage: imgfs_mmap DIR [hold]\n");
		return 2;
	}
	int hold = argc > 2 && strcmp(argv[2], "hold") == 0;
	int fd = open_in(argv[1], "big");
	CHECK("open big", fd >= 0);
	struct stat st;
	CHECK("fstat big", fstat(fd, &st) == 0);
	size_t size = st.st_size;
	volatile unsigned char *big = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	CHECK("mmap big private", big != MAP_FAILED);
	if (hold)
		wait_for_harness("mapped");
	unsigned long sum = checksum(big, size);
	if (hold)
		wait_for_harness("touched");
	printf("big checksum %lx\n", sum);

	unsigned char *copy = malloc(size);
	CHECK("pread big", pread(fd, copy, size, 0) == (ssize_t)size);
	printf("mapping equals read(): %s\n", memcmp((void *)big, copy, size) == 0 ? "yes" : "no");

	/* A private write copies that page only. */
	unsigned char old = big[3 * PAGE + 5];
	big[3 * PAGE + 5] = old ^ 0xff;
	printf("private write visible: %s, next page untouched: %s\n",
	       big[3 * PAGE + 5] == (unsigned char)(old ^ 0xff) ? "yes" : "no",
	       memcmp((void *)(big + 4 * PAGE), copy + 4 * PAGE, PAGE) == 0 ? "yes" : "no");
	unsigned char back;
	CHECK("pread after private write", pread(fd, &back, 1, 3 * PAGE + 5) == 1);
	printf("file unchanged: %s\n", back == old ? "yes" : "no");

	/* Shared read-only mappings see the file; a shared writable one is refused. */
	volatile unsigned char *shared = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
	CHECK("mmap big shared read-only", shared != MAP_FAILED);
	printf("shared mapping equals read(): %s\n",
	       memcmp((void *)shared, copy, size) == 0 ? "yes" : "no");
	errno = 0;
	void *w = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	printf("shared writable mapping: %s\n", w == MAP_FAILED ? errname(errno) : "mapped");
	errno = 0;
	printf("mprotect shared to writable: %s\n",
	       mprotect((void *)shared, PAGE, PROT_READ | PROT_WRITE) == 0 ? "ok" : errname(errno));

	/* A forked child reads the same pages, and its writes stay its own. */
	pid_t pid = fork();
	if (pid == 0) {
		big[5 * PAGE] ^= 1;
		int same = checksum(shared, size) == sum;
		_exit(same ? 0 : 1);
	}
	int status;
	CHECK("waitpid", waitpid(pid, &status, 0) == pid);
	printf("child saw the same file: %s\n",
	       WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "yes" : "no");
	printf("child's write stayed in the child: %s\n", big[5 * PAGE] == copy[5 * PAGE] ? "yes" : "no");

	/* The rest of a file's last page reads as zeros, in both kinds of mapping. */
	int tfd = open_in(argv[1], "tail");
	CHECK("open tail", tfd >= 0);
	CHECK("fstat tail", fstat(tfd, &st) == 0);
	size_t tsize = st.st_size;
	for (int kind = 0; kind < 2; kind++) {
		volatile unsigned char *t = mmap(NULL, 2 * PAGE, PROT_READ,
		                                 kind ? MAP_SHARED : MAP_PRIVATE, tfd, 0);
		CHECK("mmap tail", t != MAP_FAILED);
		int zeros = 1;
		for (size_t i = tsize; i < 2 * PAGE; i++)
			zeros &= t[i] == 0;
		printf("%s tail: %lx, zeros past the end: %s\n", kind ? "shared" : "private",
		       checksum(t, PAGE), zeros ? "yes" : "no");
		munmap((void *)t, 2 * PAGE);
	}

	/* A file that ends exactly on a page boundary doesn't show the next file. */
	int efd = open_in(argv[1], "exact");
	CHECK("open exact", efd >= 0);
	volatile unsigned char *e = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, efd, 0);
	CHECK("mmap exact", e != MAP_FAILED);
	printf("exact: first %u last %u\n", e[0], e[PAGE - 1]);
	return 0;
}
