/* unshare, clone and setns with UTS, IPC, mount and cgroup namespaces (issue 15 item 5):
 * the /proc/PID/ns links and files, what a new namespace changes and what it leaves, and
 * the errors. Natively this needs root; it makes namespaces for itself and its children
 * only (nothing is mounted), so it changes nothing of the host. */
#include "conf.h"
#include <sched.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/ipc.h>
#include <sys/prctl.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* linux/capability.h, which musl's headers don't have. */
struct cap_header {
	uint32_t version;
	int pid;
};
struct cap_data {
	uint32_t effective, permitted, inheritable;
};
#define CAP_V3 0x20080522
#define CAP_SYS_CHROOT 18
#define CAP_SYS_ADMIN 21

static char *link_of(const char *kind, pid_t pid)
{
	static char buf[4][80];
	static int i;
	char path[64];
	char *out = buf[i++ % 4];
	if (pid)
		snprintf(path, sizeof path, "/proc/%d/ns/%s", pid, kind);
	else
		snprintf(path, sizeof path, "/proc/self/ns/%s", kind);
	ssize_t n = readlink(path, out, 79);
	out[n > 0 ? n : 0] = 0;
	return out;
}

/* "uts:[N]" with N the file's inode number. */
static void check_format(const char *kind)
{
	char *l = link_of(kind, 0);
	char want[32];
	unsigned long long ino = 0;
	snprintf(want, sizeof want, "%s:[", kind);
	int shape = strncmp(l, want, strlen(want)) == 0 && l[strlen(l) - 1] == ']';
	if (shape)
		ino = strtoull(l + strlen(want), NULL, 10);
	char path[64];
	snprintf(path, sizeof path, "/proc/self/ns/%s", kind);
	struct stat lst, st;
	int lr = lstat(path, &lst), sr = stat(path, &st);
	printf("%s: shape %d symlink %d stat %d ino-matches %d regular %d\n", kind, shape,
	       lr == 0 && S_ISLNK(lst.st_mode), sr == 0, sr == 0 && st.st_ino == ino,
	       sr == 0 && S_ISREG(st.st_mode));
}

static int run_child(int (*fn)(void))
{
	fflush(stdout);
	pid_t p = fork();
	if (p == 0)
		_exit(fn());
	int st;
	waitpid(p, &st, 0);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char host0[65];

static int new_uts(void)
{
	char before[80], h[65];
	strcpy(before, link_of("uts", 0));
	if (unshare(CLONE_NEWUTS))
		return 1;
	printf("child: uts changed %d, ipc same %d\n", strcmp(before, link_of("uts", 0)) != 0,
	       strcmp(link_of("ipc", 0), link_of("ipc", getppid())) == 0);
	gethostname(h, sizeof h);
	printf("child: inherits the name %d\n", strcmp(h, host0) == 0);
	if (sethostname("ns-inner", 8) || setdomainname("dom-inner", 9))
		return 2;
	gethostname(h, sizeof h);
	printf("child: host %s\n", h);
	char buf[80] = {0};
	int fd = open("/proc/sys/kernel/hostname", O_RDONLY);
	if (fd >= 0) {
		read(fd, buf, sizeof buf - 1);
		close(fd);
	}
	printf("child: /proc/sys/kernel/hostname %s", buf);
	/* Back to the parent's namespace through its file. */
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/ns/uts", getppid());
	fd = open(path, O_RDONLY);
	printf("child: setns wrong type %s\n", setns(fd, CLONE_NEWIPC) ? errname(errno) : "0");
	printf("child: setns %s\n", setns(fd, CLONE_NEWUTS) ? errname(errno) : "0");
	gethostname(h, sizeof h);
	printf("child: back %d, link back %d\n", strcmp(h, host0) == 0,
	       strcmp(link_of("uts", 0), link_of("uts", getppid())) == 0);
	close(fd);
	return 0;
}

static int new_ipc(void)
{
	int key = 0x6e5f7563;
	if (unshare(CLONE_NEWIPC))
		return 1;
	errno = 0;
	int id = shmget(key, 4096, 0600);
	printf("child: parent's segment in a new ipc namespace: %s\n", id < 0 ? errname(errno) : "found");
	id = shmget(key, 4096, IPC_CREAT | 0600);
	printf("child: own segment %d\n", id >= 0);
	shmctl(id, IPC_RMID, NULL);
	return 0;
}

static int no_admin(void)
{
	/* Without CAP_SYS_ADMIN (and CAP_SYS_CHROOT): EPERM for every kind. */
	struct cap_header hdr = {CAP_V3, 0};
	struct cap_data data[2] = {{0}};
	if (syscall(SYS_capget, &hdr, data))
		return 1;
	data[0].effective &= ~((1u << CAP_SYS_ADMIN) | (1u << CAP_SYS_CHROOT));
	if (syscall(SYS_capset, &hdr, data))
		return 2;
	int flags[] = {CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWPID};
	for (unsigned i = 0; i < sizeof flags / sizeof *flags; i++)
		printf("no CAP_SYS_ADMIN: unshare(%#x) %s\n", flags[i],
		       unshare(flags[i]) ? errname(errno) : "0");
	int fd = open("/proc/self/ns/uts", O_RDONLY);
	printf("no CAP_SYS_ADMIN: setns uts %s\n", setns(fd, 0) ? errname(errno) : "0");
	fd = open("/proc/self/ns/mnt", O_RDONLY);
	printf("no CAP_SYS_ADMIN: setns mnt %s\n", setns(fd, 0) ? errname(errno) : "0");
	printf("no CAP_SYS_CHROOT: chroot %s\n", chroot("/") ? errname(errno) : "0");
	return 0;
}

/* In a new pid namespace: pid 1, a parent outside (0), children numbered from 2. */
static int pid_init(void)
{
	char pid0[80], kids0[80];
	strcpy(pid0, link_of("pid", 0));
	strcpy(kids0, link_of("pid_for_children", 0));
	if (unshare(CLONE_NEWPID))
		return 1;
	printf("pidns: pid kept %d, pid_for_children changed %d\n", strcmp(pid0, link_of("pid", 0)) == 0,
	       strcmp(kids0, link_of("pid_for_children", 0)) != 0);
	fflush(stdout);
	pid_t p = fork();
	if (p == 0) {
		printf("pidns init: pid %d ppid %d tid %ld\n", getpid(), getppid(), syscall(SYS_gettid));
		printf("pidns init: in the new one %d\n", strcmp(link_of("pid", 0), kids0) != 0);
		fflush(stdout);
		pid_t c = fork();
		if (c == 0) {
			printf("pidns child: pid %d ppid %d, kill(1, 0) %d\n", getpid(), getppid(), kill(1, 0));
			_exit(7);
		}
		int st;
		pid_t w = waitpid(c, &st, 0);
		printf("pidns init: fork gave %d, waitpid %d status %d\n", c, w, WEXITSTATUS(st));
		printf("pidns init: kill(99, 0) %s\n", kill(99, 0) ? errname(errno) : "0");
		/* Calls that name a process take the namespace's ids too. */
		errno = 0;
		int prio = getpriority(PRIO_PROCESS, 1);
		printf("pidns init: getpriority(1) %s\n", prio == -1 && errno ? errname(errno) : "ok");
		printf("pidns init: setpriority(1, 5) %s\n",
		       setpriority(PRIO_PROCESS, 1, 5) ? errname(errno) : "ok");
		printf("pidns init: own nice now %d\n", getpriority(PRIO_PROCESS, 0));
		struct sched_param sp;
		printf("pidns init: sched_getparam(1) %s\n", sched_getparam(1, &sp) ? errname(errno) : "ok");
		printf("pidns init: sched_getscheduler(1) %s\n",
		       sched_getscheduler(1) < 0 ? errname(errno) : "ok");
		cpu_set_t cpus;
		printf("pidns init: sched_getaffinity(1) %s\n",
		       sched_getaffinity(1, sizeof cpus, &cpus) ? errname(errno) : "ok");
		cpu_set_t one;
		CPU_ZERO(&one);
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &cpus)) {
				CPU_SET(i, &one);
				break;
			}
		printf("pidns init: sched_setaffinity(1) %s\n",
		       sched_setaffinity(1, sizeof one, &one) ? errname(errno) : "ok");
		sched_getaffinity(0, sizeof cpus, &cpus);
		printf("pidns init: own CPU count now %d\n", CPU_COUNT(&cpus));
		struct rlimit rl;
		printf("pidns init: prlimit(1) %s\n", prlimit(1, RLIMIT_NOFILE, NULL, &rl) ? errname(errno) : "ok");
		long pfd = syscall(SYS_pidfd_open, 1, 0);
		printf("pidns init: pidfd_open(1) %s\n", pfd < 0 ? errname(errno) : "ok");
		printf("pidns init: sched_getparam(99) %s\n", sched_getparam(99, &sp) ? errname(errno) : "ok");
		printf("pidns init: prlimit(99) %s\n", prlimit(99, RLIMIT_NOFILE, NULL, &rl) ? errname(errno) : "ok");
		pid_t tracee = fork();
		if (tracee == 0) {
			for (;;)
				pause();
		}
		printf("pidns init: ptrace(ATTACH, %d) %s\n", tracee,
		       ptrace(PTRACE_ATTACH, tracee, 0, 0) ? errname(errno) : "ok");
		int tst;
		pid_t tw = waitpid(tracee, &tst, 0);
		printf("pidns init: tracee %s, %s\n", tw == tracee ? "waited" : "not waited",
		       WIFSTOPPED(tst) ? "stopped" : "not stopped");
		printf("pidns init: ptrace(DETACH) %s\n", ptrace(PTRACE_DETACH, tracee, 0, 0) ? errname(errno) : "ok");
		kill(tracee, SIGKILL);
		waitpid(tracee, &tst, 0);
		_exit(0);
	}
	int st;
	printf("pidns: the parent sees a positive pid %d, waitpid %d\n", p > 1, waitpid(p, &st, 0) == p);
	return 0;
}

static int cloned(void *arg)
{
	(void)arg;
	char h[65];
	gethostname(h, sizeof h);
	printf("clone child: uts differs %d ipc differs %d mnt differs %d cgroup differs %d name inherited %d\n",
	       strcmp(link_of("uts", 0), link_of("uts", getppid())) != 0,
	       strcmp(link_of("ipc", 0), link_of("ipc", getppid())) != 0,
	       strcmp(link_of("mnt", 0), link_of("mnt", getppid())) != 0,
	       strcmp(link_of("cgroup", 0), link_of("cgroup", getppid())) != 0,
	       strcmp(h, host0) == 0);
	fflush(stdout);
	return 0;
}

int main(void)
{
	const char *kinds[] = {"cgroup", "ipc", "mnt", "net", "pid", "uts", "user"};
	for (unsigned i = 0; i < sizeof kinds / sizeof *kinds; i++)
		check_format(kinds[i]);
	printf("pid_for_children: same as pid %d\n",
	       strcmp(link_of("pid_for_children", 0), link_of("pid", 0)) == 0);
	gethostname(host0, sizeof host0);

	/* Errors before anything changes. */
	printf("unshare(CLONE_NEWNS|bogus) %s\n", unshare(CLONE_NEWNS | 0x1) ? errname(errno) : "0");
	int fd = open("/proc/self/ns/uts", O_RDONLY);
	int plain = open("/proc/self/status", O_RDONLY);
	printf("setns(not a namespace) %s\n", setns(plain, 0) ? errname(errno) : "0");
	printf("setns(bad fd) %s\n", setns(-1, 0) ? errname(errno) : "0");
	printf("setns(own uts) %s\n", setns(fd, 0) ? errname(errno) : "0");
	int user = open("/proc/self/ns/user", O_RDONLY);
	printf("setns(own user) %s\n", setns(user, CLONE_NEWUSER) ? errname(errno) : "0");
	close(plain);
	close(user);
	close(fd);

	/* A System V segment the IPC child must not see. */
	int id = shmget(0x6e5f7563, 4096, IPC_CREAT | IPC_EXCL | 0600);
	printf("new_uts: %d\n", run_child(new_uts));
	char h[65];
	gethostname(h, sizeof h);
	printf("parent: name unchanged %d\n", strcmp(h, host0) == 0);
	printf("new_ipc: %d\n", run_child(new_ipc));
	shmctl(id, IPC_RMID, NULL);
	printf("no_admin: %d\n", run_child(no_admin));
	printf("pid_init: %d\n", run_child(pid_init));

	static char stack[64 * 1024];
	fflush(stdout);
	pid_t p = clone(cloned, stack + sizeof stack,
			CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWNS | CLONE_NEWCGROUP | SIGCHLD, NULL);
	int st = 0;
	if (p > 0)
		waitpid(p, &st, 0);
	printf("clone: %s status %d\n", p > 0 ? "ok" : errname(errno), WEXITSTATUS(st));
	errno = 0;
	p = clone(cloned, stack + sizeof stack, CLONE_NEWNS | CLONE_FS | SIGCHLD, NULL);
	printf("clone(CLONE_NEWNS|CLONE_FS) %s\n", p > 0 ? "ok" : errname(errno));

	/* The process's own: a new mount namespace for itself. */
	char mnt0[80];
	strcpy(mnt0, link_of("mnt", 0));
	printf("unshare(CLONE_NEWNS) %s\n", unshare(CLONE_NEWNS) ? errname(errno) : "0");
	printf("mnt changed %d\n", strcmp(mnt0, link_of("mnt", 0)) != 0);
	char cwd[256];
	printf("cwd kept %d\n", getcwd(cwd, sizeof cwd) != NULL);
	return 0;
}
