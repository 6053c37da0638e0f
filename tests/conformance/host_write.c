/* Tries every way of changing the host file system on the paths it is given:
 *   host_write DIR
 * DIR holds "keep" (content "host"), "victim", and "subdir/". The sandbox sees them
 * through its overlay; everything here must stay in the sandbox's memory. Prints what the
 * sandbox sees so the harness can check the writes worked inside. Not a differential test:
 * tests/tests/escape.rs checks the host afterwards. */
#include "conf.h"
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
	if (argc != 2) return 2;
	if (chdir(argv[1])) { perror("chdir"); return 3; }
	int fd = open("keep", O_WRONLY | O_TRUNC);
	printf("truncate+write keep: %ld\n", fd < 0 ? -1L : (long)write(fd, "sandbox", 7));
	close(fd);
	fd = open("new", O_CREAT | O_WRONLY, 0644);
	printf("create new: %d\n", fd >= 0);
	close(fd);
	printf("unlink victim: %d\n", unlink("victim"));
	printf("rename subdir/inner: %d\n", rename("subdir/inner", "moved"));
	printf("mkdir made: %d\n", mkdir("made", 0755));
	printf("chmod keep: %d\n", chmod("keep", 0600));
	printf("symlink: %d\n", symlink("/etc/passwd", "link"));
	printf("truncate subdir/big: %d\n", truncate("subdir/big", 1));
	char buf[16] = {0};
	fd = open("keep", O_RDONLY);
	read(fd, buf, sizeof buf - 1);
	printf("keep reads: %s\n", buf);
	printf("victim gone: %d\n", access("victim", F_OK) != 0);
	return 0;
}
