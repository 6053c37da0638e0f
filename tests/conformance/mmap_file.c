/* File mappings: private copies, shared write-back, protections, /dev/zero, mremap. */
#define CONF_FS
#include "conf.h"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static void put_file(const char *name, const char *data, size_t len) {
	int fd = open(name, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	if (write(fd, data, len) != (ssize_t)len) printf("short write\n");
	close(fd);
}

static void show_file(const char *name) {
	char buf[64] = {0};
	int fd = open(name, O_RDONLY);
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	printf("  %s holds %zd: \"%s\"\n", name, n, buf);
}

int main(void) {
	fs_enter();
	char page[8192];
	for (int i = 0; i < (int)sizeof page; i++) page[i] = 'a' + i % 26;
	put_file("data", page, sizeof page);

	int fd = open("data", O_RDONLY);
	char *p = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, fd, 0);
	printf("private read map: %s\n", p == MAP_FAILED ? errname(errno) : "ok");
	printf("  content matches: %d\n", memcmp(p, page, 8192) == 0);
	munmap(p, 8192);
	p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 4096);
	printf("offset map second page: %d\n", p != MAP_FAILED && memcmp(p, page + 4096, 4096) == 0);
	munmap(p, 4096);
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	printf("shared writable map of O_RDONLY fd: %s\n", p == MAP_FAILED ? errname(errno) : "mapped");
	p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 100);
	printf("unaligned offset: %s\n", p == MAP_FAILED ? errname(errno) : "mapped");
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	printf("private writable map of O_RDONLY fd: %s\n", p == MAP_FAILED ? errname(errno) : "mapped");
	memcpy(p, "PRIVATE", 7);
	printf("  private write visible: %.7s\n", p);
	munmap(p, 4096);
	close(fd);
	show_file("data");

	fd = open("data", O_RDWR);
	p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	printf("shared map: %s\n", p == MAP_FAILED ? errname(errno) : "ok");
	memcpy(p, "SHARED", 6);
	memcpy(p + 4096, "SECOND", 6);
	printf("msync: %d\n", msync(p, 8192, MS_SYNC));
	show_file("data");
	char buf[8] = {0};
	pread(fd, buf, 6, 4096);
	printf("  second page in file: %s\n", buf);
	printf("munmap: %d\n", munmap(p, 8192));
	printf("msync bad flags: %s\n", msync(page, 4096, MS_SYNC | MS_ASYNC) ? errname(errno) : "ok");
	close(fd);

	fd = open("data", O_WRONLY);
	p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	printf("map of O_WRONLY fd: %s\n", p == MAP_FAILED ? errname(errno) : "mapped");
	close(fd);
	p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, 12345, 0);
	printf("map of bad fd: %s\n", p == MAP_FAILED ? errname(errno) : "mapped");
	fd = open(".", O_RDONLY);
	p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	printf("map of a directory: %s\n", p == MAP_FAILED ? errname(errno) : "mapped");
	close(fd);

	fd = open("/dev/zero", O_RDWR);
	p = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	printf("/dev/zero map: %s, zero: %d\n", p == MAP_FAILED ? errname(errno) : "ok", p != MAP_FAILED && p[100] == 0 && p[8191] == 0);
	munmap(p, 8192);
	close(fd);

	/* A file that ends mid-page: the rest of the page reads as zeros. */
	put_file("short", "xyz", 3);
	fd = open("short", O_RDONLY);
	p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, fd, 0);
	printf("short file: %c%c%c then %d %d\n", p[0], p[1], p[2], p[3], p[4095]);
	char *q = mremap(p, 4096, 8192, MREMAP_MAYMOVE);
	printf("mremap of a file map: %s, still %c\n", q == MAP_FAILED ? errname(errno) : "ok", q == MAP_FAILED ? '?' : q[1]);
	munmap(q, 8192);
	close(fd);

	fd = open("data", O_RDONLY);
	p = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	printf("mprotect shared RO map to RW: %s\n", mprotect(p, 4096, PROT_READ | PROT_WRITE) ? errname(errno) : "ok");
	munmap(p, 4096);
	close(fd);
	fs_leave();
	return 0;
}
