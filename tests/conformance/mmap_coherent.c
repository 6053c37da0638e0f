/* A MAP_SHARED mapping of a file and read/write of that file see the same
 * bytes at once, without msync or munmap, in one process and across fork,
 * on /tmp and /dev/shm. */
#include "conf.h"
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096

static void run(const char *dir)
{
	char path[256];
	snprintf(path, sizeof path, "%s/conf-coherent-%d", dir, (int)getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK("open", fd >= 0);
	char page[PAGE];
	for (int i = 0; i < 3; i++) {
		memset(page, 'a' + i, PAGE);
		CHECK("write page", write(fd, page, PAGE) == PAGE);
	}
	char *m = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	CHECK("mmap shared", m != MAP_FAILED);
	char got[64] = { 0 };

	/* Store through the mapping, read with pread. */
	memcpy(m + 100, "through-the-map", 15);
	CHECK("pread", pread(fd, got, 15, 100) == 15);
	printf("%s pread after store: %.15s\n", dir, got);

	/* pwrite, then load through the mapping; the write spans two pages. */
	CHECK("pwrite", pwrite(fd, "across-a-page-edge", 18, PAGE - 9) == 18);
	printf("%s map after pwrite: %.18s\n", dir, m + PAGE - 9);

	/* A read that covers mapped and not-yet-touched pages. */
	CHECK("read all", pread(fd, page, 20, 2 * PAGE - 10) == 20);
	printf("%s mixed read: %.20s\n", dir, page);

	/* write() through the offset, seen by the mapping. */
	CHECK("lseek", lseek(fd, 2 * PAGE + 7, SEEK_SET) == 2 * PAGE + 7);
	CHECK("write", write(fd, "seq", 3) == 3);
	printf("%s map after write: %.3s\n", dir, m + 2 * PAGE + 7);

	/* A child stores through its copy of the shared mapping and writes with
	 * write(); the parent sees both while both are still mapped. */
	int go[2], done[2];
	CHECK("pipes", pipe(go) == 0 && pipe(done) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		read(go[0], &c, 1);
		memcpy(m + 300, "child-store", 11);
		pwrite(fd, "child-write", 11, PAGE + 300);
		write(done[1], "x", 1);
		read(go[0], &c, 1);
		_exit(0);
	}
	write(go[1], "x", 1);
	char c;
	read(done[0], &c, 1);
	memset(got, 0, sizeof got);
	CHECK("pread child store", pread(fd, got, 11, 300) == 11);
	printf("%s parent pread of child store: %.11s\n", dir, got);
	printf("%s parent map of child write: %.11s\n", dir, m + PAGE + 300);
	write(go[1], "x", 1);
	int st;
	waitpid(pid, &st, 0);

	/* A second, separate mapping of the same file sees the same bytes. */
	char *m2 = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0);
	CHECK("second mmap", m2 != MAP_FAILED);
	printf("%s second mapping: %.15s\n", dir, m2 + 100);
	munmap(m2, PAGE);

	/* After munmap the file keeps everything. */
	CHECK("munmap", munmap(m, 3 * PAGE) == 0);
	memset(got, 0, sizeof got);
	pread(fd, got, 15, 100);
	printf("%s after munmap: %.15s\n", dir, got);
	struct stat s;
	fstat(fd, &s);
	printf("%s size: %lld\n", dir, (long long)s.st_size);
	close(fd);
	unlink(path);
}

int main(void)
{
	run("/tmp");
	run("/dev/shm");
	return 0;
}
