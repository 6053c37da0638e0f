/* /proc/self/exe after execve names the file absolutely, with symlinks
 * resolved, however the caller named it: relative to the cwd, through "..", or
 * through a symlink. glibc's static startup asserts that it starts with '/'. */
#include "conf.h"
#include <limits.h>
#include <sys/wait.h>
#include <unistd.h>

static void show_exe(const char *how, const char *expected)
{
	char buf[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
	if (n < 0) {
		printf("%s: readlink: %s\n", how, errname(errno));
		return;
	}
	buf[n] = 0;
	printf("%s: absolute %s, same file %s\n", how, buf[0] == '/' ? "yes" : "no",
	       strcmp(buf, expected) == 0 ? "yes" : "no");
}

static void run(char *const argv[])
{
	pid_t pid = fork();
	if (pid == 0) {
		execv(argv[0], argv);
		printf("execv %s: %s\n", argv[0], errname(errno));
		_exit(1);
	}
	int st;
	waitpid(pid, &st, 0);
}

int main(int argc, char **argv)
{
	if (argc == 3) {
		show_exe(argv[1], argv[2]);
		return 0;
	}
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	CHECK("readlink self", n > 0);
	self[n] = 0;
	char *slash = strrchr(self, '/');
	CHECK("has a directory", slash != NULL);
	*slash = 0;
	CHECK("chdir to own directory", chdir(self) == 0);
	*slash = '/';
	char rel[PATH_MAX];
	snprintf(rel, sizeof rel, "./%s", slash + 1);
	run((char *[]){rel, "relative", self, NULL});

	/* Through "..": "../DIR/NAME" from inside DIR. */
	*slash = 0;
	const char *dir = strrchr(self, '/');
	*slash = '/';
	CHECK("has a parent directory", dir != NULL);
	char dotdot[PATH_MAX + 2];
	snprintf(dotdot, sizeof dotdot, "..%s", dir);
	run((char *[]){dotdot, "with ..", self, NULL});

	char link[] = "/tmp/exe-linkXXXXXX";
	int fd = mkstemp(link);
	CHECK("mkstemp", fd >= 0);
	close(fd);
	unlink(link);
	CHECK("symlink", symlink(self, link) == 0);
	run((char *[]){link, "symlink", self, NULL});
	unlink(link);
	return 0;
}
