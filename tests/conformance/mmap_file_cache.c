/* Private read-only mappings of a file see what the file holds when they fault, however
 * the file changed since an earlier mapping read it (the sandbox keeps the pages such
 * mappings read, for later mappings and other processes): a write, a truncation and
 * extension, a punched hole, a change by another process, a program rewritten in place
 * and run again. Private writes never reach the file or other mappings. */
#define CONF_FS
#include "conf.h"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGE 4096
#define PAGES 3

/* The marker a copy of this program prints when run with "mark": patched in the copy. */
static const char marker[] = "CACHE-MARK-1";

static void put_pages(const char *name, char fill) {
	char buf[PAGE * PAGES];
	memset(buf, fill, sizeof buf);
	int fd = open(name, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	if (write(fd, buf, sizeof buf) != (ssize_t)sizeof buf) printf("short write\n");
	close(fd);
}

/* Maps `name` privately read-only and prints the first byte of each page ('.' for zero). */
static void show_mapped(const char *what, const char *name) {
	int fd = open(name, O_RDONLY);
	struct stat st;
	fstat(fd, &st);
	char *p = mmap(NULL, PAGE * PAGES, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		printf("%s: mmap %s\n", what, errname(errno));
		return;
	}
	printf("%s (size %lld):", what, (long long)st.st_size);
	for (int i = 0; i < PAGES && i * PAGE < st.st_size; i++) {
		char c = p[i * PAGE];
		int same = 1;
		for (int j = 0; j < PAGE && i * PAGE + j < st.st_size; j++) same &= p[i * PAGE + j] == c;
		printf(" %c%s", c ? c : '.', same ? "" : "(mixed)");
	}
	printf("\n");
	munmap(p, PAGE * PAGES);
}

static void patch_marker(const char *from, const char *to) {
	int in = open(from, O_RDONLY);
	struct stat st;
	fstat(in, &st);
	char *bytes = malloc(st.st_size);
	if (read(in, bytes, st.st_size) != st.st_size) printf("short read of the program\n");
	close(in);
	char needle[32];
	strcpy(needle, "CACHE-MARK-");
	strcat(needle, "1");
	char *at = memmem(bytes, st.st_size, needle, strlen(needle));
	if (!at) printf("marker not found\n");
	else at[strlen(needle) - 1] = '2';
	/* In place (same inode), as `cp` over an existing file does. */
	int out = open(to, O_WRONLY | O_TRUNC);
	if (write(out, bytes, st.st_size) != st.st_size) printf("short write of the program\n");
	close(out);
	free(bytes);
}

static void run(const char *prog) {
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		execl(prog, prog, "mark", (char *)NULL);
		printf("exec: %s\n", errname(errno));
		_exit(1);
	}
	int status;
	waitpid(c, &status, 0);
}

int main(int argc, char **argv) {
	if (argc > 1 && !strcmp(argv[1], "mark")) {
		printf("  runs with %s\n", *(const char *volatile *)&(const char *){marker});
		return 0;
	}
	fs_enter();

	put_pages("data", 'a');
	show_mapped("first mapping", "data");
	show_mapped("again", "data");

	int fd = open("data", O_WRONLY);
	char b[PAGE];
	memset(b, 'b', sizeof b);
	pwrite(fd, b, PAGE, PAGE);
	show_mapped("after pwrite of page 1", "data");

	ftruncate(fd, PAGE);
	ftruncate(fd, PAGE * PAGES);
	show_mapped("after truncate to 1 page and back", "data");

	memset(b, 'c', sizeof b);
	pwrite(fd, b, PAGE, 0);
	show_mapped("after pwrite of page 0", "data");
	int r = fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, PAGE);
	printf("punch hole: %s\n", r ? errname(errno) : "ok");
	show_mapped("after the punch", "data");
	close(fd);

	/* Another process changes the file between two mappings of ours. */
	put_pages("data", 'd');
	show_mapped("rewritten", "data");
	int go[2], done[2];
	pipe(go);
	pipe(done);
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		char x;
		read(go[0], &x, 1);
		int w = open("data", O_WRONLY);
		memset(b, 'e', sizeof b);
		pwrite(w, b, PAGE, PAGE * 2);
		close(w);
		write(done[1], "x", 1);
		_exit(0);
	}
	show_mapped("before the child writes", "data");
	write(go[1], "x", 1);
	char x;
	read(done[0], &x, 1);
	waitpid(c, NULL, 0);
	show_mapped("after the child wrote page 2", "data");

	/* Private writes: a writable private mapping, and a read-only one made writable. */
	fd = open("data", O_RDONLY);
	char *p = mmap(NULL, PAGE * PAGES, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	p[0] = 'P';
	char *q = mmap(NULL, PAGE * PAGES, PROT_READ, MAP_PRIVATE, fd, 0);
	printf("read-only mapping, then mprotect: %d\n", mprotect(q, PAGE * PAGES, PROT_READ | PROT_WRITE));
	q[PAGE] = 'Q';
	printf("private writes seen by their own mappings: %c %c\n", p[0], q[PAGE]);
	show_mapped("another mapping after the private writes", "data");
	munmap(p, PAGE * PAGES);
	munmap(q, PAGE * PAGES);
	char head[2] = {0};
	pread(fd, head, 1, 0);
	printf("file's first byte: %s\n", head);
	close(fd);

	/* A program rewritten in place runs as rewritten. */
	int in = open("/proc/self/exe", O_RDONLY);
	int out = open("prog", O_CREAT | O_WRONLY | O_TRUNC, 0755);
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof buf)) > 0) write(out, buf, n);
	close(in);
	close(out);
	printf("copy of this program:\n");
	run("./prog");
	patch_marker("prog", "prog");
	printf("after rewriting it in place:\n");
	run("./prog");

	unlink("prog");
	unlink("data");
	fs_leave();
	return 0;
}
