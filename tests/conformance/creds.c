/* Credentials and prctl: set*id rules for root and for an unprivileged user,
 * capget/capset, and the prctl options programs commonly use. The harness
 * runs this as root (natively and in the sandbox); the unprivileged part
 * runs in a forked child so the parent keeps its ids. */
#include "conf.h"
#include <grp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* musl ships no kernel headers: the capability ABI, from linux/capability.h. */
#define CAP_VERSION_3 0x20080522
#define CAP_DAC_OVERRIDE 1
#define CAP_SETUID 7
struct cap_header { uint32_t version; int pid; };
struct cap_data { uint32_t effective, permitted, inheritable; };

static void show_ids(const char *when)
{
	uid_t r, e, s;
	gid_t rg, eg, sg;
	getresuid(&r, &e, &s);
	getresgid(&rg, &eg, &sg);
	printf("%s: uid %d %d %d gid %d %d %d\n", when, (int)r, (int)e, (int)s,
	       (int)rg, (int)eg, (int)sg);
}

static void show_caps(const char *when)
{
	struct cap_header h = { CAP_VERSION_3, 0 };
	struct cap_data d[2];
	memset(d, 0xff, sizeof d);
	if (syscall(SYS_capget, &h, d) != 0) {
		printf("%s: capget %s\n", when, errname(errno));
		return;
	}
	/* Print only whether CAP_SETUID and CAP_DAC_OVERRIDE are effective:
	 * the full set depends on the host kernel's CAP_LAST_CAP. */
	printf("%s: setuid cap %d dac cap %d\n", when,
	       !!(d[0].effective & (1u << CAP_SETUID)),
	       !!(d[0].effective & (1u << CAP_DAC_OVERRIDE)));
}

/* Raw syscalls: glibc's setuid family broadcasts to all threads and would
 * hide what the kernel does. */
static long sys3(long nr, long a, long b, long c)
{
	long r = syscall(nr, a, b, c);
	return r < 0 ? -errno : r;
}

static void unprivileged_child(void)
{
	CHECK("setgroups as root", syscall(SYS_setgroups, 1, (gid_t[]){ 1000 }) == 0);
	printf("getgroups after setgroups: %d\n", getgroups(0, NULL));
	CHECK("setresgid(1000,1001,1002)", sys3(SYS_setresgid, 1000, 1001, 1002) == 0);
	CHECK("setresuid(1000,1001,1002)", sys3(SYS_setresuid, 1000, 1001, 1002) == 0);
	show_ids("after setres");
	show_caps("after drop");
	printf("setuid(0): %s\n", errname(-sys3(SYS_setuid, 0, 0, 0)));
	printf("setresuid(0,-1,-1): %s\n", errname(-sys3(SYS_setresuid, 0, -1, -1)));
	printf("setresuid(-1,1002,-1): %s\n", errname(-sys3(SYS_setresuid, -1, 1002, -1)));
	show_ids("after swap to saved");
	printf("setuid(1000): %s\n", errname(-sys3(SYS_setuid, 1000, 0, 0)));
	show_ids("after setuid(1000)");
	printf("setreuid(1001,-1): %s\n", errname(-sys3(SYS_setreuid, 1001, -1, 0)));
	printf("setreuid(-1,1002): %s\n", errname(-sys3(SYS_setreuid, -1, 1002, 0)));
	show_ids("after setreuid");
	printf("setgid(5): %s\n", errname(-sys3(SYS_setgid, 5, 0, 0)));
	printf("setgroups: %s\n", errname(-sys3(SYS_setgroups, 0, 0, 0)));
	printf("setuid(-1): %s\n", errname(-sys3(SYS_setuid, -1, 0, 0)));
	/* Giving up the last privilege: the sandbox must enforce it on files too. */
	printf("open /proc/self/status: %s\n",
	       access("/proc/self/status", R_OK) == 0 ? "ok" : errname(errno));
	exit(0);
}

int main(void)
{
	show_ids("start");
	show_caps("start");

	/* Root: set*id changes all three ids; back to root works from saved 0. */
	pid_t pid = fork();
	if (pid == 0) {
		CHECK("setresuid(-1,5,-1)", sys3(SYS_setresuid, -1, 5, -1) == 0);
		show_ids("euid 5");
		show_caps("euid 5");
		CHECK("back to euid 0", sys3(SYS_setresuid, -1, 0, -1) == 0);
		CHECK("setreuid(7,8)", sys3(SYS_setreuid, 7, 8, 0) == 0);
		show_ids("after setreuid(7,8)");
		printf("setreuid back to 0: %s\n", errname(-sys3(SYS_setreuid, -1, 0, 0)));
		exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("root child: %d\n", WEXITSTATUS(st));

	pid = fork();
	if (pid == 0)
		unprivileged_child();
	waitpid(pid, &st, 0);
	printf("unprivileged child: %d\n", WEXITSTATUS(st));
	show_ids("parent after children");

	long r;
	/* capget with a bad version reports the preferred one. */
	struct cap_header h = { 0x1234, 0 };
	errno = 0;
	r = syscall(SYS_capget, &h, NULL);
	printf("capget bad version: %ld %s version %#x\n", r, errname(errno), h.version);
	h.version = CAP_VERSION_3;
	h.pid = 0x7ffffff0;
	errno = 0;
	r = syscall(SYS_capget, &h, NULL);
	printf("capget missing pid, no data: %ld %s\n", r, errname(errno));
	struct cap_data d[2];
	errno = 0;
	r = syscall(SYS_capget, &h, d);
	printf("capget missing pid: %ld %s\n", r, errname(errno));

	/* prctl */
	char name[32] = { 0 };
	CHECK("PR_SET_NAME", prctl(PR_SET_NAME, "a-very-long-thread-name", 0, 0, 0) == 0);
	CHECK("PR_GET_NAME", prctl(PR_GET_NAME, name, 0, 0, 0) == 0);
	printf("name: '%s'\n", name);
	int sig = -1;
	CHECK("PR_SET_PDEATHSIG", prctl(PR_SET_PDEATHSIG, SIGTERM, 0, 0, 0) == 0);
	CHECK("PR_GET_PDEATHSIG", prctl(PR_GET_PDEATHSIG, &sig, 0, 0, 0) == 0);
	printf("pdeathsig: %d\n", sig);
	errno = 0;
	r = prctl(PR_SET_PDEATHSIG, 99, 0, 0, 0);
	printf("PR_SET_PDEATHSIG 99: %ld %s\n", r, errname(errno));
	printf("dumpable: %d\n", prctl(PR_GET_DUMPABLE, 0, 0, 0, 0));
	printf("no_new_privs before: %d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
	CHECK("PR_SET_NO_NEW_PRIVS", prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0);
	printf("no_new_privs after: %d\n", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
	errno = 0;
	r = prctl(PR_SET_NO_NEW_PRIVS, 2, 0, 0, 0);
	printf("PR_SET_NO_NEW_PRIVS 2: %ld %s\n", r, errname(errno));
	printf("capbset_read setuid: %d\n", prctl(PR_CAPBSET_READ, CAP_SETUID, 0, 0, 0));
	errno = 0;
	r = prctl(PR_CAPBSET_READ, 1000, 0, 0, 0);
	printf("capbset_read 1000: %ld %s\n", r, errname(errno));
	int sub = -1;
	CHECK("PR_SET_CHILD_SUBREAPER", prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0);
	CHECK("PR_GET_CHILD_SUBREAPER", prctl(PR_GET_CHILD_SUBREAPER, &sub, 0, 0, 0) == 0);
	printf("subreaper: %d\n", sub);
	errno = 0;
	r = prctl(9999, 0, 0, 0, 0);
	printf("prctl(9999): %ld %s\n", r, errname(errno));
	return 0;
}
