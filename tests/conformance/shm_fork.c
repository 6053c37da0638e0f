/* Memory shared between processes: MAP_SHARED|MAP_ANONYMOUS inherited by fork, and the same
 * file mapped MAP_SHARED by two processes (a /dev/shm file, as sem_open and multiprocessing
 * use). Each side spins on a word the other writes. */
#include "conf.h"
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int main(void) {
	setvbuf(stdout, NULL, _IONBF, 0);
	volatile int *anon = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	*anon = 1;
	pid_t c = fork();
	if (c == 0) {
		while (*anon != 2) {}
		*anon = 3;
		_exit(0);
	}
	*anon = 2;
	while (*anon != 3) {}
	waitpid(c, NULL, 0);
	printf("shared anonymous memory across fork: ok\n");

	char name[64];
	snprintf(name, sizeof name, "/dev/shm/conf-shm-%d", (int)getpid());
	int fd = open(name, O_CREAT | O_RDWR, 0600);
	if (ftruncate(fd, 4096)) return 1;
	volatile int *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	*p = 1;
	c = fork();
	if (c == 0) {
		int fd2 = open(name, O_RDWR);
		volatile int *q = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0);
		while (*q != 2) {}
		*q = 3;
		_exit(0);
	}
	*p = 2;
	while (*p != 3) {}
	waitpid(c, NULL, 0);
	printf("shared file mapping across processes: ok\n");
	munmap((void *)p, 4096);
	char buf[4] = {0};
	pread(fd, buf, 4, 0);
	printf("written back to the file: %d\n", *(int *)buf);
	close(fd);
	unlink(name);
	return 0;
}
