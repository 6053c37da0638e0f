/* The workload of the leak test for mounts (tests/tests/leaks.rs): in rounds asked for on
 * stdin, tmpfs file systems are mounted, filled (directories, files, 128 KiB of data) and
 * unmounted, half of them lazily while a file in them is open. A file system that stayed
 * after its unmount (the dentries' parent/child cycle) would keep its pages. Run only in
 * the sandbox (it mounts). */
#include "conf.h"
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>

static char buf[128 * 1024];

static int fill(const char *dir)
{
	char path[256];
	for (int d = 0; d < 8; d++) {
		snprintf(path, sizeof path, "%s/d%d", dir, d);
		if (mkdir(path, 0755))
			return -1;
		snprintf(path, sizeof path, "%s/d%d/f", dir, d);
		int fd = open(path, O_CREAT | O_WRONLY, 0644);
		if (fd < 0 || write(fd, buf, d == 0 ? sizeof buf : 64) < 0)
			return -1;
		close(fd);
	}
	return 0;
}

static int round_of_work(const char *dir)
{
	for (int i = 0; i < 40; i++) {
		if (mount("tmpfs", dir, "tmpfs", 0, "size=4m") || fill(dir))
			return -1;
		int fd = -1;
		if (i % 2) {
			char path[256];
			snprintf(path, sizeof path, "%s/d0/f", dir);
			fd = open(path, O_RDONLY);
		}
		if (umount2(dir, i % 2 ? MNT_DETACH : 0))
			return -1;
		if (fd >= 0 && (read(fd, buf, 16) != 16 || close(fd)))
			return -1;
	}
	return 0;
}

int main(void)
{
	memset(buf, 0x5a, sizeof buf);
	setvbuf(stdout, NULL, _IONBF, 0);
	char dir[] = "/tmp/mount-leak-XXXXXX";
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) || !mkdtemp(dir))
		return 2;
	printf("ready\n");
	char line[64];
	while (fgets(line, sizeof line, stdin)) {
		if (round_of_work(dir)) {
			printf("round failed: errno=%s\n", errname(errno));
			return 1;
		}
		printf("done\n");
	}
	rmdir(dir);
	return 0;
}
