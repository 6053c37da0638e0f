/* Capabilities: capget/capset (header versions and Linux's rules), the bounding
 * and ambient sets and securebits through prctl, what set*id calls and execve do to
 * the sets, /proc/self/status, and permission checks that follow capabilities
 * (chown without CAP_CHOWN, reading a mode-000 file without CAP_DAC_OVERRIDE).
 *
 * Runs as root natively and in the sandbox; every experiment runs in a forked child
 * so that each starts from the same sets. Sets are printed relative to the starting
 * permitted set ("full") or as masks of low capabilities only, because the host's
 * CAP_LAST_CAP and bounding set vary. Changes only the calling process's
 * credentials (and a scratch file in /tmp). */
#include "conf.h"
#include <fcntl.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* musl ships no kernel headers: the capability ABI, from linux/capability.h. */
#define V1 0x19980330
#define V2 0x20071026
#define V3 0x20080522
#define CAP_CHOWN 0
#define CAP_DAC_OVERRIDE 1
#define CAP_DAC_READ_SEARCH 2
#define CAP_KILL 5
#define CAP_SETPCAP 8
#define CAP_NET_RAW 13
#define SECBIT_NOROOT (1 << 0)
#define SECBIT_NO_SETUID_FIXUP (1 << 2)
#define SECBIT_KEEP_CAPS (1 << 4)
#define SECBIT_KEEP_CAPS_LOCKED (1 << 5)
#define SECBIT_NO_CAP_AMBIENT_RAISE (1 << 6)
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_IS_SET 1
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_LOWER 3
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif

struct hdr { uint32_t version; int pid; };
struct data { uint32_t effective, permitted, inheritable; };
struct sets { uint64_t e, p, i; };

static uint64_t full; /* the permitted set at the start */
static const char *self_exe;
static char full_arg[32];

static int get(int pid, struct sets *s)
{
	struct hdr h = { V3, pid };
	struct data d[2];
	if (syscall(SYS_capget, &h, d) != 0)
		return -errno;
	s->e = d[0].effective | (uint64_t)d[1].effective << 32;
	s->p = d[0].permitted | (uint64_t)d[1].permitted << 32;
	s->i = d[0].inheritable | (uint64_t)d[1].inheritable << 32;
	return 0;
}

static int set(uint64_t e, uint64_t p, uint64_t i)
{
	struct hdr h = { V3, 0 };
	struct data d[2] = {
		{ (uint32_t)e, (uint32_t)p, (uint32_t)i },
		{ (uint32_t)(e >> 32), (uint32_t)(p >> 32), (uint32_t)(i >> 32) },
	};
	return syscall(SYS_capset, &h, d) == 0 ? 0 : -errno;
}

static const char *desc(uint64_t v)
{
	static char buf[4][40];
	static int n;
	char *b = buf[n++ % 4];
	if (v == full)
		return "full";
	if (v == 0)
		return "0";
	if ((v & full) == v && (full & ~v) < (1u << 16))
		snprintf(b, 40, "full-%#llx", (unsigned long long)(full & ~v));
	else if (v < (1u << 16))
		snprintf(b, 40, "%#llx", (unsigned long long)v);
	else
		snprintf(b, 40, "other");
	return b;
}

static void show(const char *when)
{
	struct sets s;
	int r = get(0, &s);
	if (r) {
		printf("%s: capget %s\n", when, errname(-r));
		return;
	}
	printf("%s: e=%s p=%s i=%s amb_chown=%d\n", when, desc(s.e), desc(s.p), desc(s.i),
	       prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_CHOWN, 0, 0));
}

static uint64_t bit(int cap) { return 1ull << cap; }

/* One call, then its result and errno (in that order: printf's arguments are not). */
#define P(label, expr)                                                       \
	do {                                                                 \
		errno = 0;                                                   \
		long _r = (long)(expr);                                      \
		int _e = errno;                                              \
		printf("%s: %ld %s\n", label, _r, _r == -1 ? errname(_e) : "");  \
	} while (0)

static void run(const char *name, void (*fn)(void))
{
	printf("== %s\n", name);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		fn();
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("-- %s: %s\n", name, wait_status(st));
}

static void versions(void)
{
	struct hdr h = { V1, 0 };
	struct data d[2];
	memset(d, 0xee, sizeof d);
	printf("capget v1: %ld\n", syscall(SYS_capget, &h, d));
	printf("v1 e=%s second word untouched=%d\n", desc(d[0].effective), d[1].effective == 0xeeeeeeee);
	h.version = V2;
	printf("capget v2: %ld\n", syscall(SYS_capget, &h, d));
	h.version = 0x12345;
	P("capget bad version", syscall(SYS_capget, &h, d));
	printf("version written back: %#x\n", h.version);
	h.version = 0x12345;
	P("capget bad version, NULL data", syscall(SYS_capget, &h, NULL));
	printf("version written back: %#x\n", h.version);
	h.version = 0x12345;
	P("capset bad version", syscall(SYS_capset, &h, d));
	printf("version written back: %#x\n", h.version);
	long r;
	struct hdr neg = { V3, -1 };
	errno = 0;
	r = syscall(SYS_capget, &neg, d);
	printf("capget pid -1: %ld %s\n", r, errname(errno));
	struct hdr none = { V3, 0x3ffffff0 };
	errno = 0;
	r = syscall(SYS_capget, &none, d);
	printf("capget no such pid: %ld %s\n", r, errname(errno));
	struct sets s;
	printf("capget of parent: %s\n", get(getppid(), &s) == 0 ? desc(s.p) : "error");
	struct hdr other = { V3, getppid() };
	errno = 0;
	r = syscall(SYS_capset, &other, d);
	printf("capset of parent: %ld %s\n", r, errname(errno));
	/* capset v1: the upper words count as 0, so capabilities 32 and up go. */
	struct hdr h1 = { V1, 0 };
	struct data d1 = { 0xffffffff, 0xffffffff, 0 };
	d1.effective = d1.permitted = (uint32_t)full;
	printf("capset v1: %ld\n", syscall(SYS_capset, &h1, &d1));
	get(0, &s);
	printf("after v1: p has high caps=%d low intact=%d\n", (s.p >> 32) != 0,
	       (uint32_t)s.p == (uint32_t)full);
}

static void capset_rules(void)
{
	show("start");
	printf("drop chown from e: %s\n", errname(-set(full & ~bit(CAP_CHOWN), full, 0)));
	show("now");
	printf("e back: %s\n", errname(-set(full, full, 0)));
	printf("drop chown from p: %s\n", errname(-set(full & ~bit(CAP_CHOWN), full & ~bit(CAP_CHOWN), 0)));
	printf("p back: %s\n", errname(-set(full, full, 0)));
	printf("e outside p: %s\n", errname(-set(bit(CAP_KILL), bit(CAP_CHOWN), 0)));
	printf("keep only kill+setpcap: %s\n",
	       errname(-set(bit(CAP_KILL) | bit(CAP_SETPCAP), bit(CAP_KILL) | bit(CAP_SETPCAP), 0)));
	/* With CAP_SETPCAP, inheritable may hold what isn't permitted (within bounding). */
	printf("i outside p with setpcap: %s\n",
	       errname(-set(bit(CAP_KILL) | bit(CAP_SETPCAP), bit(CAP_KILL) | bit(CAP_SETPCAP),
			    bit(CAP_CHOWN))));
	show("now");
	printf("drop setpcap: %s\n", errname(-set(bit(CAP_KILL), bit(CAP_KILL), bit(CAP_CHOWN))));
	printf("i grows without setpcap: %s\n",
	       errname(-set(bit(CAP_KILL), bit(CAP_KILL), bit(CAP_CHOWN) | bit(CAP_NET_RAW))));
	printf("i may take from p: %s\n",
	       errname(-set(bit(CAP_KILL), bit(CAP_KILL), bit(CAP_CHOWN) | bit(CAP_KILL))));
	show("end");
}

static void bounding(void)
{
	printf("bset read chown: %d\n", prctl(PR_CAPBSET_READ, CAP_CHOWN, 0, 0, 0));
	P("bset read 64", prctl(PR_CAPBSET_READ, 64, 0, 0, 0));
	printf("bset drop net_raw: %d\n", prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0));
	printf("bset read net_raw: %d\n", prctl(PR_CAPBSET_READ, CAP_NET_RAW, 0, 0, 0));
	show("after bset drop");
	/* Inheritable can't gain what the bounding set lacks, even with CAP_SETPCAP. */
	printf("i outside bounding: %s\n", errname(-set(full, full, bit(CAP_NET_RAW))));
	P("bset drop 99", prctl(PR_CAPBSET_DROP, 99, 0, 0, 0));
	set(full & ~bit(CAP_SETPCAP), full, 0);
	P("bset drop without setpcap", prctl(PR_CAPBSET_DROP, CAP_KILL, 0, 0, 0));
}

static void ambient(void)
{
	P("raise without i", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_CHOWN, 0, 0));
	set(full, full, bit(CAP_CHOWN) | bit(CAP_KILL));
	printf("raise chown: %d\n", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_CHOWN, 0, 0));
	printf("raise kill: %d\n", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_KILL, 0, 0));
	printf("is_set chown: %d\n", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_CHOWN, 0, 0));
	P("lower kill", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_LOWER, CAP_KILL, 0, 0));
	P("is_set kill", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_KILL, 0, 0));
	P("clear_all with an argument", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 1, 0, 0));
	P("bad op", prctl(PR_CAP_AMBIENT, 9, CAP_CHOWN, 0, 0));
	P("bad cap", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, 99, 0, 0));
	/* Taking chown out of inheritable drops it from ambient. */
	set(full, full, bit(CAP_KILL));
	printf("after i loses chown: is_set %d\n",
	       prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_CHOWN, 0, 0));
	set(full, full, bit(CAP_CHOWN));
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_CHOWN, 0, 0);
	P("clear_all", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0));
	P("is_set chown", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_CHOWN, 0, 0));
	printf("set NO_CAP_AMBIENT_RAISE: %d\n",
	       prctl(PR_SET_SECUREBITS, SECBIT_NO_CAP_AMBIENT_RAISE, 0, 0, 0));
	P("raise under the securebit", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_CHOWN, 0, 0));
}

static void securebits(void)
{
	printf("securebits: %#x keepcaps %d\n", prctl(PR_GET_SECUREBITS, 0, 0, 0, 0),
	       prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0));
	P("set keepcaps", prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
	P("securebits", prctl(PR_GET_SECUREBITS, 0, 0, 0, 0));
	P("keepcaps 2", prctl(PR_SET_KEEPCAPS, 2, 0, 0, 0));
	P("unknown bit", prctl(PR_SET_SECUREBITS, 1 << 20, 0, 0, 0));
	printf("lock keepcaps: %d\n",
	       prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS | SECBIT_KEEP_CAPS_LOCKED, 0, 0, 0));
	P("clear locked keepcaps", prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0));
	P("unlock", prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS, 0, 0, 0));
	P("add noroot", prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS | SECBIT_KEEP_CAPS_LOCKED | SECBIT_NOROOT, 0, 0, 0));
	P("securebits", prctl(PR_GET_SECUREBITS, 0, 0, 0, 0));
	set(full & ~bit(CAP_SETPCAP), full, 0);
	P("without setpcap", prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS | SECBIT_KEEP_CAPS_LOCKED, 0, 0, 0));
}

static void setuid_drops(void)
{
	printf("setresuid 1000: %ld\n", syscall(SYS_setresuid, 1000, 1000, 1000));
	show("as 1000");
	P("setuid 0 back", syscall(SYS_setuid, 0));
	errno = 0;
	printf("capset regain: %s\n", errname(-set(bit(CAP_CHOWN), bit(CAP_CHOWN), 0)));
}

static void seteuid_toggles(void)
{
	printf("seteuid 1000: %ld\n", syscall(SYS_setresuid, -1, 1000, -1));
	show("euid 1000");
	printf("seteuid 0: %ld\n", syscall(SYS_setresuid, -1, 0, -1));
	show("euid 0");
	set(bit(CAP_CHOWN) | bit(7), full, 0);
	printf("seteuid 1000 again: %ld\n", syscall(SYS_setresuid, -1, 1000, -1));
	printf("seteuid 0 again: %ld\n", syscall(SYS_setresuid, -1, 0, -1));
	show("e refilled from p");
}

static void keepcaps(void)
{
	set(full, full, bit(CAP_CHOWN));
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_CHOWN, 0, 0);
	printf("keepcaps: %d\n", prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0));
	printf("setresuid 1000: %ld\n", syscall(SYS_setresuid, 1000, 1000, 1000));
	show("kept");
	printf("e from p: %s\n", errname(-set(bit(CAP_CHOWN), full, bit(CAP_CHOWN))));
	printf("raise ambient chown: %d\n", prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_CHOWN, 0, 0));
	show("before exec");
	fflush(stdout);
	execl(self_exe, self_exe, "report", "ambient carried to uid 1000", full_arg, (char *)NULL);
	printf("exec: %s\n", errname(errno));
}

static void no_fixup(void)
{
	printf("NO_SETUID_FIXUP: %d\n", prctl(PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP, 0, 0, 0));
	printf("setresuid 1000: %ld\n", syscall(SYS_setresuid, 1000, 1000, 1000));
	show("unchanged");
}

static void exec_root(void)
{
	set(full & ~bit(CAP_CHOWN), full & ~bit(CAP_CHOWN), bit(CAP_KILL));
	show("before exec");
	fflush(stdout);
	execl(self_exe, self_exe, "report", "root exec refills", full_arg, (char *)NULL);
}

static void exec_noroot(void)
{
	set(full, full, bit(CAP_KILL));
	printf("noroot: %d\n", prctl(PR_SET_SECUREBITS, SECBIT_NOROOT, 0, 0, 0));
	fflush(stdout);
	execl(self_exe, self_exe, "report", "root exec under NOROOT", full_arg, (char *)NULL);
}

static void exec_nnp(void)
{
	set(bit(CAP_KILL), bit(CAP_KILL), 0);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	fflush(stdout);
	execl(self_exe, self_exe, "report", "root exec with no_new_privs", full_arg, (char *)NULL);
}

static void status_lines(void)
{
	set(full & ~bit(CAP_KILL), full, bit(CAP_CHOWN));
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_CHOWN, 0, 0);
	prctl(PR_CAPBSET_DROP, CAP_NET_RAW, 0, 0, 0);
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	struct sets s;
	get(0, &s);
	while (f && fgets(line, sizeof line, f)) {
		unsigned long long v;
		if (sscanf(line, "CapInh: %llx", &v) == 1)
			printf("CapInh %s matches %d\n", desc(v), v == s.i);
		else if (sscanf(line, "CapPrm: %llx", &v) == 1)
			printf("CapPrm %s matches %d\n", desc(v), v == s.p);
		else if (sscanf(line, "CapEff: %llx", &v) == 1)
			printf("CapEff %s matches %d\n", desc(v), v == s.e);
		else if (sscanf(line, "CapBnd: %llx", &v) == 1)
			printf("CapBnd %s\n", desc(v));
		else if (sscanf(line, "CapAmb: %llx", &v) == 1)
			printf("CapAmb %s\n", desc(v));
	}
	if (f)
		fclose(f);
}

static pthread_barrier_t barrier;
static volatile int thread_tid;

static void *dropper(void *arg)
{
	(void)arg;
	thread_tid = syscall(SYS_gettid);
	set(full & ~bit(CAP_KILL), full & ~bit(CAP_KILL), 0);
	pthread_barrier_wait(&barrier); /* dropped */
	pthread_barrier_wait(&barrier); /* looked at */
	return NULL;
}

static void per_thread(void)
{
	pthread_t th;
	pthread_barrier_init(&barrier, NULL, 2);
	pthread_create(&th, NULL, dropper, NULL);
	pthread_barrier_wait(&barrier);
	struct sets s;
	int r = get(thread_tid, &s);
	printf("the other thread's sets: %s e=%s p=%s\n", errname(-r), desc(s.e), desc(s.p));
	get(0, &s);
	printf("this thread's: e=%s p=%s\n", desc(s.e), desc(s.p));
	struct hdr h = { V3, thread_tid };
	struct data d[2] = { { 0 } };
	errno = 0;
	long rr = syscall(SYS_capset, &h, d);
	printf("capset of the other thread: %ld %s\n", rr, errname(errno));
	pthread_barrier_wait(&barrier);
	pthread_join(th, NULL);
}

static char scratch[64];

static void permissions(void)
{
	printf("chown with CAP_CHOWN: %d\n", chown(scratch, 1234, 1234) == 0 ? 0 : errno);
	chown(scratch, 0, 0);
	set(full & ~bit(CAP_CHOWN), full, 0);
	P("chown without", chown(scratch, 1234, -1));
	printf("chown to own uid without: %d\n", chown(scratch, 0, -1));
	int fd = open(scratch, O_RDONLY);
	printf("open 000 file: %s\n", fd >= 0 ? "ok" : errname(errno));
	if (fd >= 0)
		close(fd);
	set(full & ~(bit(CAP_CHOWN) | bit(CAP_DAC_OVERRIDE)), full, 0);
	fd = open(scratch, O_RDONLY);
	printf("open for reading without dac_override: %s\n", fd >= 0 ? "ok" : errname(errno));
	if (fd >= 0)
		close(fd);
	fd = open(scratch, O_WRONLY);
	printf("open for writing without dac_override: %s\n", fd >= 0 ? "ok" : errname(errno));
	if (fd >= 0)
		close(fd);
	set(full & ~(bit(CAP_CHOWN) | bit(CAP_DAC_OVERRIDE) | bit(CAP_DAC_READ_SEARCH)), full, 0);
	fd = open(scratch, O_RDONLY);
	printf("open for reading without either: %s\n", fd >= 0 ? "ok" : errname(errno));
	if (fd >= 0)
		close(fd);
	/* Back with only the effective set changed: chown works again. */
	set(full, full, 0);
	printf("chown after raising e: %d\n", chown(scratch, 1234, -1));
}

static void report(const char *what)
{
	printf("exec'd (%s)\n", what);
	show("after exec");
	printf("securebits after exec: %#x\n", prctl(PR_GET_SECUREBITS, 0, 0, 0, 0));
}

int main(int argc, char **argv)
{
	self_exe = "/proc/self/exe";
	struct sets s;
	if (get(0, &s) != 0) {
		printf("capget failed\n");
		return 1;
	}
	full = s.p;
	if (argc > 3 && strcmp(argv[1], "report") == 0) {
		full = strtoull(argv[3], NULL, 16);
		report(argv[2]);
		return 0;
	}
	snprintf(full_arg, sizeof full_arg, "%llx", (unsigned long long)full);
	printf("uid %d, e==p %d, i %s\n", (int)getuid(), s.e == s.p, desc(s.i));
	if (getuid() != 0 || !(s.p & bit(CAP_SETPCAP))) {
		printf("not root with CAP_SETPCAP: nothing more to test\n");
		return 0;
	}
	snprintf(scratch, sizeof scratch, "/tmp/caps-test-%d", (int)getpid());
	int fd = open(scratch, O_CREAT | O_WRONLY | O_TRUNC, 0);
	if (fd < 0) {
		printf("scratch file: %s\n", errname(errno));
		return 1;
	}
	close(fd);
	run("versions", versions);
	run("capset rules", capset_rules);
	run("bounding", bounding);
	run("ambient", ambient);
	run("securebits", securebits);
	run("setuid drops", setuid_drops);
	run("seteuid toggles", seteuid_toggles);
	run("keepcaps and ambient across exec", keepcaps);
	run("no setuid fixup", no_fixup);
	run("exec as root", exec_root);
	run("exec under noroot", exec_noroot);
	run("exec with no_new_privs", exec_nnp);
	run("status lines", status_lines);
	run("permissions", permissions);
	run("per thread", per_thread);
	unlink(scratch);
	return 0;
}
