/* Runs as the first program of a sandbox whose root is a ContainerFS layer stack built by
 * containerfs_root.rs, and prints what it sees; the test compares with what the layers
 * say. Layer 0: /etc/msg "base", /etc/gone, /opt/old, /bin/probe (this program).
 * Layer 1: /etc/msg "upper", .wh.gone, opaque /opt with /opt/new, /lib -> usr/lib. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void show(const char *path)
{
	char buf[64] = {0};
	int fd = open(path, O_RDONLY);
	if (fd < 0) {
		printf("%s: absent\n", path);
		return;
	}
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	printf("%s: %zd \"%s\"\n", path, n, buf);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc > 1 && strcmp(argv[1], "child") == 0) {
		printf("child ran from the layer\n");
		return 7;
	}
	show("/etc/msg");
	show("/etc/gone");
	show("/opt/old");
	show("/opt/new");
	char link[64] = {0};
	printf("readlink /lib: %zd %s\n", readlink("/lib", link, sizeof link - 1), link);

	/* The program maps its own file from the layer. */
	int self = open("/bin/probe", O_RDONLY);
	unsigned char *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, self, 0);
	printf("mmap self: %s\n", p != MAP_FAILED && memcmp(p, "\177ELF", 4) == 0 ? "ELF" : "bad");

	/* A write copies /etc/msg up and keeps its identity. */
	struct stat a, b, da, db;
	stat("/etc/msg", &a);
	stat("/etc", &da);
	int fd = open("/etc/msg", O_WRONLY | O_APPEND);
	printf("append: %zd\n", write(fd, "+w", 2));
	close(fd);
	stat("/etc/msg", &b);
	stat("/etc", &db);
	printf("identity kept: file %d dir %d\n", a.st_dev == b.st_dev && a.st_ino == b.st_ino,
	       da.st_dev == db.st_dev && da.st_ino == db.st_ino);
	show("/etc/msg");
	printf("unlink /opt/new: %d\n", unlink("/opt/new"));
	show("/opt/new");
	printf("mkdir /proc exists: %d\n", access("/proc/self", F_OK) == 0);

	pid_t pid = fork();
	if (pid == 0) {
		execl("/bin/probe", "probe", "child", (char *)NULL);
		_exit(127);
	}
	int status;
	waitpid(pid, &status, 0);
	printf("child exit: %d\n", WEXITSTATUS(status));
	return 0;
}
