/* /proc/PID/exe, cwd and root are magic links, as /proc/PID/fd/N: following one lands on
 * the program file, the working directory or the root directory itself, even once it
 * was renamed or deleted (their text then ends with " (deleted)" and names nothing).
 * RESOLVE_NO_MAGICLINKS refuses them (ELOOP), RESOLVE_NO_XDEV too (EXDEV: the file is on
 * another mount than /proc). A pipe opened with O_PATH through its fd link shows as the
 * pipe (`pipe:[INO]`), and /proc/self/fd/N and /proc/self/exe are owned by the process's
 * effective ids. Everything happens in a fresh /tmp/fsconf-XXXXXX; the chroot and the id
 * change are a forked child's own. */
#define CONF_FS
#include "conf.h"
#include <sys/prctl.h>

#define SYS_OPENAT2 437
#define C_RESOLVE_NO_XDEV 0x01
#define C_RESOLVE_NO_MAGICLINKS 0x02

struct c_open_how {
	uint64_t flags, mode, resolve;
};

/* Whether `path` (followed) is the file `want` is. */
static const char *same_as(const char *path, const struct stat *want)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return errname(errno);
	return st.st_ino == want->st_ino && st.st_dev == want->st_dev ? "itself" : "another file";
}

/* Opens `path` and says whether the descriptor is the file `want` is. */
static void open_same(const char *label, const char *path, int flags, const struct stat *want)
{
	int fd = open(path, flags);
	if (fd < 0) {
		printf("%s: %s\n", label, errname(errno));
		return;
	}
	struct stat st;
	fstat(fd, &st);
	printf("%s: %s\n", label,
	       st.st_ino == want->st_ino && st.st_dev == want->st_dev ? "itself" : "another file");
	close(fd);
}

/* The link's text, with `dir` (the random temp dir) shown as TMP. */
static void show_link(const char *label, const char *path, const char *dir)
{
	char buf[512];
	ssize_t n = readlink(path, buf, sizeof buf - 1);
	if (n < 0) {
		printf("%s: %s\n", label, errname(errno));
		return;
	}
	buf[n] = 0;
	size_t l = strlen(dir);
	if (strncmp(buf, dir, l) == 0)
		printf("%s: TMP%s\n", label, buf + l);
	else
		printf("%s: %s\n", label, buf);
}

static void try_openat2(const char *label, const char *path, uint64_t resolve)
{
	struct c_open_how how = { O_RDONLY | O_CLOEXEC, 0, resolve };
	long fd = syscall(SYS_OPENAT2, AT_FDCWD, path, &how, sizeof how);
	printf("%s: %s\n", label, fd >= 0 ? "opened" : errname(errno));
	if (fd >= 0)
		close(fd);
}

/* Run as the copied program: renames and deletes itself, and opens /proc/self/exe. */
static int exe_child(const char *dir)
{
	char prog[128], moved[128];
	snprintf(prog, sizeof prog, "%s/prog", dir);
	snprintf(moved, sizeof moved, "%s/moved", dir);
	struct stat me;
	if (stat(prog, &me) != 0) {
		printf("stat prog: %s\n", errname(errno));
		return 1;
	}
	printf("exe: %s\n", same_as("/proc/self/exe", &me));
	show_link("exe text", "/proc/self/exe", dir);
	rename(prog, moved);
	show_link("exe text after rename", "/proc/self/exe", dir);
	open_same("open exe after rename", "/proc/self/exe", O_RDONLY, &me);
	unlink(moved);
	show_link("exe text after unlink", "/proc/self/exe", dir);
	open_same("open exe after unlink", "/proc/self/exe", O_RDONLY, &me);
	try_openat2("openat2 exe RESOLVE_NO_MAGICLINKS", "/proc/self/exe", C_RESOLVE_NO_MAGICLINKS);
	try_openat2("openat2 exe RESOLVE_NO_XDEV", "/proc/self/exe", C_RESOLVE_NO_XDEV);
	try_openat2("openat2 exe", "/proc/self/exe", 0);
	/* The deleted program runs again through its link (a program re-executing itself). */
	fflush(stdout);
	execl("/proc/self/exe", "prog", "exe-again", dir, (char *)NULL);
	printf("execl /proc/self/exe: %s\n", errname(errno));
	return 1;
}

/* Run again through /proc/self/exe, from a deleted file. */
static int exe_again(const char *dir)
{
	show_link("re-executed: exe text", "/proc/self/exe", dir);
	char comm[32] = { 0 };
	prctl(PR_GET_NAME, comm);
	printf("re-executed: comm %s\n", comm);
	return 0;
}

static void exe_links(void)
{
	char dir[PATH_MAX], prog[PATH_MAX + 8];
	if (!getcwd(dir, sizeof dir))
		return;
	snprintf(prog, sizeof prog, "%s/prog", dir);
	int in = open("/proc/self/exe", O_RDONLY);
	int out = open(prog, O_WRONLY | O_CREAT | O_EXCL, 0755);
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof buf)) > 0)
		write(out, buf, n);
	close(in);
	close(out);
	pid_t pid = fork();
	if (pid == 0) {
		execl(prog, "prog", "exe-child", dir, (char *)NULL);
		printf("execl: %s\n", errname(errno));
		_exit(1);
	}
	int status;
	waitpid(pid, &status, 0);
	printf("exe child: %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static void cwd_links(void)
{
	char dir[PATH_MAX];
	if (!getcwd(dir, sizeof dir))
		return;
	mkdir("a", 0755);
	struct stat a;
	stat("a", &a);
	pid_t pid = fork();
	if (pid == 0) {
		chdir("a");
		printf("cwd: %s\n", same_as("/proc/self/cwd", &a));
		show_link("cwd text", "/proc/self/cwd", dir);
		char from[PATH_MAX + 4], to[PATH_MAX + 4];
		snprintf(from, sizeof from, "%s/a", dir);
		snprintf(to, sizeof to, "%s/b", dir);
		rename(from, to);
		show_link("cwd text after rename", "/proc/self/cwd", dir);
		open_same("open cwd after rename", "/proc/self/cwd", O_RDONLY | O_DIRECTORY, &a);
		rmdir(to);
		show_link("cwd text after rmdir", "/proc/self/cwd", dir);
		open_same("open cwd after rmdir", "/proc/self/cwd", O_RDONLY | O_DIRECTORY, &a);
		open_same("O_PATH cwd after rmdir", "/proc/self/cwd", O_PATH, &a);
		printf("chdir to the deleted cwd: %s\n",
		       chdir("/proc/self/cwd") == 0 ? "ok" : errname(errno));
		struct stat now;
		fstatat(AT_FDCWD, ".", &now, 0);
		printf("cwd after chdir: %s\n", now.st_ino == a.st_ino ? "itself" : "another");
		try_openat2("openat2 cwd RESOLVE_NO_MAGICLINKS", "/proc/self/cwd",
			    C_RESOLVE_NO_MAGICLINKS);
		try_openat2("openat2 cwd RESOLVE_NO_XDEV", "/proc/self/cwd", C_RESOLVE_NO_XDEV);
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
	printf("cwd child: %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

/* A child chroots into r and waits; the parent follows /proc/CHILD/root, before and after
 * r is deleted. */
static void root_links(void)
{
	char dir[PATH_MAX];
	if (!getcwd(dir, sizeof dir))
		return;
	mkdir("r", 0755);
	struct stat r;
	stat("r", &r);
	int ready[2], go[2];
	pipe(ready);
	pipe(go);
	pid_t pid = fork();
	if (pid == 0) {
		close(ready[0]);
		close(go[1]);
		int ok = chroot("r") == 0 && chdir("/") == 0;
		/* Seen from inside: its root is "/". */
		show_link("chrooted: own cwd text", "/proc/self/cwd", dir);
		show_link("chrooted: own root text", "/proc/self/root", dir);
		/* A descriptor of its root, for the parent to read (fd 100). */
		dup2(open("/", O_RDONLY | O_DIRECTORY), 100);
		write(ready[1], ok ? "y" : "n", 1);
		char c;
		read(go[0], &c, 1);
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	char c = 0;
	read(ready[0], &c, 1);
	printf("chroot: %s\n", c == 'y' ? "ok" : "failed");
	char link[64];
	snprintf(link, sizeof link, "/proc/%d/root", (int)pid);
	printf("root: %s\n", same_as(link, &r));
	show_link("root text", link, dir);
	/* Its cwd and descriptors are named from the reader's root, not from its own. */
	snprintf(link, sizeof link, "/proc/%d/cwd", (int)pid);
	show_link("chrooted child's cwd text", link, dir);
	snprintf(link, sizeof link, "/proc/%d/fd/100", (int)pid);
	show_link("chrooted child's fd text", link, dir);
	snprintf(link, sizeof link, "/proc/%d/root", (int)pid);
	rmdir("r");
	show_link("root text after rmdir", link, dir);
	open_same("open root after rmdir", link, O_RDONLY | O_DIRECTORY, &r);
	try_openat2("openat2 root RESOLVE_NO_MAGICLINKS", link, C_RESOLVE_NO_MAGICLINKS);
	write(go[1], "x", 1);
	int status;
	waitpid(pid, &status, 0);
	close(ready[0]);
	close(go[1]);
	/* Our own root: the sandbox's (or the host's) /. */
	struct stat slash;
	stat("/", &slash);
	printf("own root: %s\n", same_as("/proc/self/root", &slash));
	show_link("own root text", "/proc/self/root", dir);
}

/* A pipe opened with O_PATH through its fd link is still the pipe. */
static void o_path_pipe(void)
{
	int p[2];
	pipe(p);
	char link[64], a[64] = { 0 }, b[64] = { 0 };
	snprintf(link, sizeof link, "/proc/self/fd/%d", p[0]);
	int o = open(link, O_PATH);
	if (o < 0) {
		printf("O_PATH open of a pipe's link: %s\n", errname(errno));
		return;
	}
	readlink(link, a, sizeof a - 1);
	snprintf(link, sizeof link, "/proc/self/fd/%d", o);
	readlink(link, b, sizeof b - 1);
	printf("O_PATH pipe's link: %s, same as the pipe's: %d\n",
	       strncmp(b, "pipe:[", 6) == 0 ? "pipe:[INO]" : b, strcmp(a, b) == 0);
	/* And through the O_PATH descriptor's own link: the pipe again. */
	int r = open(link, O_RDONLY | O_NONBLOCK);
	printf("reopen through the O_PATH link: %s\n", r >= 0 ? "opened" : errname(errno));
	if (r >= 0) {
		write(p[1], "q", 1);
		char ch = 0;
		ssize_t got = read(r, &ch, 1);
		printf("read: %zd %c\n", got, ch);
		close(r);
	}
	close(o);
	close(p[0]);
	close(p[1]);
}

/* The links' owner: the process's effective ids (a dumpable process's). */
static void owners(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (setresgid(1000, 1000, 1000) != 0 || setresuid(1000, 1000, 1000) != 0) {
			printf("setresuid: %s\n", errname(errno));
			_exit(1);
		}
		/* Not dumpable after the change of ids: root shows as the owner, and the process
		 * still lists and follows its own descriptors. */
		struct stat st;
		lstat("/proc/self/fd/0", &st);
		printf("not dumpable: fd link owner: %d %d\n", (int)st.st_uid, (int)st.st_gid);
		lstat("/proc/self/exe", &st);
		printf("not dumpable: exe link owner: %d %d\n", (int)st.st_uid, (int)st.st_gid);
		stat("/proc/self/fd", &st);
		printf("not dumpable: fd dir owner: %d %d\n", (int)st.st_uid, (int)st.st_gid);
		int pp[2];
		pipe(pp);
		char own[64];
		snprintf(own, sizeof own, "/proc/self/fd/%d", pp[1]);
		int w = open(own, O_WRONLY);
		printf("not dumpable: own fd link: %s\n", w >= 0 ? "opened" : errname(errno));
		DIR *d = opendir("/proc/self/fd");
		printf("not dumpable: own fd dir: %s\n", d ? "listed" : errname(errno));
		if (d)
			closedir(d);
		prctl(PR_SET_DUMPABLE, 1);
		lstat("/proc/self/fd/0", &st);
		printf("fd link owner: %d %d\n", (int)st.st_uid, (int)st.st_gid);
		lstat("/proc/self/exe", &st);
		printf("exe link owner: %d %d\n", (int)st.st_uid, (int)st.st_gid);
		_exit(0);
	}
	int status;
	waitpid(pid, &status, 0);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "exe-child") == 0)
		return exe_child(argv[2]);
	if (argc == 3 && strcmp(argv[1], "exe-again") == 0)
		return exe_again(argv[2]);
	fs_enter();
	exe_links();
	cwd_links();
	root_links();
	o_path_pipe();
	owners();
	fs_leave();
	return 0;
}
