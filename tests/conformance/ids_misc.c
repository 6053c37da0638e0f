/* Identity and process-level odds and ends. The harness runs this with
 * stdin = /dev/null, stdout and stderr = pipes, cwd = $PWD. */
#include "conf.h"
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

static void tty_probe(int fd)
{
	struct termios t;
	struct winsize w;
	char label[64];
	snprintf(label, sizeof label, "ioctl(%d, TCGETS)", fd);
	ERRCALL(label, ioctl(fd, TCGETS, &t));
	snprintf(label, sizeof label, "ioctl(%d, TIOCGWINSZ)", fd);
	ERRCALL(label, ioctl(fd, TIOCGWINSZ, &w));
	printf("isatty(%d): %d\n", fd, isatty(fd));
}

static const char *ftype(mode_t m)
{
	if (S_ISFIFO(m)) return "fifo";
	if (S_ISCHR(m)) return "chr";
	if (S_ISREG(m)) return "reg";
	if (S_ISDIR(m)) return "dir";
	if (S_ISSOCK(m)) return "sock";
	if (S_ISBLK(m)) return "blk";
	if (S_ISLNK(m)) return "lnk";
	return "?";
}

int main(void)
{
	pid_t pid = getpid(), tid = syscall(SYS_gettid);
	CHECK("getpid > 0", pid > 0);
	CHECK("getppid >= 0", getppid() >= 0);
	CHECK("gettid == getpid", tid == pid);
	CHECK("raw getpid == getpid", syscall(SYS_getpid) == pid);

	printf("uid: %d euid: %d gid: %d egid: %d\n", (int)getuid(), (int)geteuid(),
	       (int)getgid(), (int)getegid());
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	CHECK("getresuid", getresuid(&ru, &eu, &su) == 0);
	CHECK("getresgid", getresgid(&rg, &eg, &sg) == 0);
	printf("resuid: %d %d %d resgid: %d %d %d\n", (int)ru, (int)eu, (int)su,
	       (int)rg, (int)eg, (int)sg);
	int ng = getgroups(0, NULL);
	printf("getgroups count: %d\n", ng);
	gid_t groups[1024];
	if (ng >= 0 && ng <= 1024) {
		int ng2 = getgroups(ng, groups);
		CHECK("getgroups list", ng2 == ng);
	}
	if (ng >= 2)
		ERRCALL("getgroups buffer too small", getgroups(1, groups));
	else
		printf("getgroups buffer too small: n/a\n");

	struct rlimit rl;
	CHECK("getrlimit RLIMIT_STACK", getrlimit(RLIMIT_STACK, &rl) == 0);
	CHECK("RLIMIT_STACK cur <= max", rl.rlim_cur <= rl.rlim_max);
	CHECK("getrlimit RLIMIT_NOFILE", getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur >= 3);
	struct rlimit old;
	CHECK("prlimit64 read RLIMIT_AS",
	      syscall(SYS_prlimit64, 0, RLIMIT_AS, NULL, &old) == 0 && old.rlim_cur <= old.rlim_max);
	ERRCALL("getrlimit bad resource", syscall(SYS_getrlimit, 1000, &rl));

	cpu_set_t set;
	CPU_ZERO(&set);
	CHECK("sched_getaffinity", sched_getaffinity(0, sizeof set, &set) == 0);
	CHECK("affinity set nonempty", CPU_COUNT(&set) > 0);
	ERRCALL("sched_yield", sched_yield());

	char cwd[4096];
	const char *pwd = getenv("PWD");
	CHECK("getcwd", getcwd(cwd, sizeof cwd) != NULL);
	CHECK("getcwd == $PWD", pwd && strcmp(cwd, pwd) == 0);
	errno = 0;
	char tiny[2];
	char *gr = getcwd(tiny, sizeof tiny);
	printf("getcwd tiny buffer: %s errno=%s\n", gr ? "ok" : "NULL", errname(errno));

	tty_probe(0);
	tty_probe(1);

	struct stat st;
	CHECK("fstat(0)", fstat(0, &st) == 0);
	printf("fstat(0) type: %s\n", ftype(st.st_mode));
	CHECK("fstat(1)", fstat(1, &st) == 0);
	printf("fstat(1) type: %s\n", ftype(st.st_mode));
	CHECK("fstat(2)", fstat(2, &st) == 0);
	printf("fstat(2) type: %s\n", ftype(st.st_mode));
	ERRCALL("fstat(99)", fstat(99, &st));

	ERRCALL("write(99)", write(99, "x", 1));
	ERRCALL("read(99)", read(99, tiny, 1));
	ERRCALL("write(-1)", write(-1, "x", 1));
	ERRCALL("syscall(1000)", syscall(1000));
	ERRCALL("syscall(-1)", syscall(-1L));
	return 0;
}
