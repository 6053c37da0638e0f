/* /proc/self/exe after execve names the program by its absolute path, however execve was
 * given it: relative to the working directory, with "..", through a symlink. (A static
 * glibc program aborts at start when it is not absolute.) */
#include "conf.h"
#include <limits.h>
#include <sys/wait.h>
#include <unistd.h>

static void exe_path(char *buf)
{
	ssize_t n = readlink("/proc/self/exe", buf, PATH_MAX - 1);
	buf[n > 0 ? n : 0] = 0;
}

int main(int argc, char **argv)
{
	char exe[PATH_MAX];
	exe_path(exe);
	if (argc == 3 && !strcmp(argv[1], "child")) {
		/* argv[2]: the parent's /proc/self/exe. */
		printf("  absolute: %d, the same file as the parent's: %d\n", exe[0] == '/',
		       !strcmp(exe, argv[2]));
		return 0;
	}
	char dir[PATH_MAX], base[PATH_MAX], link[PATH_MAX + 32];
	strcpy(dir, exe);
	char *slash = strrchr(dir, '/');
	strcpy(base, slash + 1);
	*slash = 0;
	snprintf(link, sizeof link, "/tmp/conf-exec-exe-%d", (int)getpid());
	CHECK("symlink", symlink(exe, link) == 0);
	char dotdot[PATH_MAX * 2];
	const char *last_dir = strrchr(dir, '/') + 1;
	snprintf(dotdot, sizeof dotdot, "../%s/%s", last_dir, base);
	char dot[PATH_MAX + 2];
	snprintf(dot, sizeof dot, "./%s", base);
	const char *paths[][2] = {
		{"absolute", exe}, {"./name", dot}, {"../dir/name", dotdot}, {"symlink", link}};
	if (chdir(dir) != 0)
		return 1;
	for (int i = 0; i < 4; i++) {
		printf("exec by %s path:\n", paths[i][0]);
		pid_t pid = fork();
		if (pid == 0) {
			execl(paths[i][1], paths[i][1], "child", exe, (char *)NULL);
			printf("  execl: FAIL errno=%s\n", errname(errno));
			_exit(1);
		}
		int st;
		waitpid(pid, &st, 0);
		printf("  status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	}
	unlink(link);
	return 0;
}
