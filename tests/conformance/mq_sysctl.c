/* The POSIX message queue limits of /proc/sys/fs/mqueue (queues_max, msg_max, msgsize_max,
 * msg_default, msgsize_default): per IPC namespace, written by root, applied by mq_open
 * (ipc/mq_sysctl.c, ipc/mqueue.c). A queue made without attributes takes the defaults,
 * capped by the maxima; one with attributes past the maxima is EINVAL, unless the caller
 * has CAP_SYS_RESOURCE, which may go up to the hard limits (65536 messages, 16 MiB) and
 * past queues_max; RLIMIT_MSGQUEUE counts each queue's bytes with Linux's overhead (48
 * bytes per message and per priority node). The program first makes an IPC namespace of
 * its own (unshare(CLONE_NEWIPC), as root), so that natively it changes only that
 * namespace's limits, never the host's. Only root (euid 0) writes the files (no capability
 * overrides their mode); the queues are made by children with uids of their own (54321
 * without capabilities, 54322 keeping root's), whose queue bytes nothing else on the
 * machine counts. Whether the privileged
 * child may pass the maxima depends on CAP_SYS_RESOURCE being in the runner's
 * capabilities (the sandbox starts the program with the caller's), so it says which. The
 * queues_max file is an int but compared unsigned: -1 means no limit. An mqueue file
 * system mounted in the namespace lists its queues. Every queue is removed. */
#include "conf.h"
#include <fcntl.h>
#include <mqueue.h>
#include <sched.h>
#include <dirent.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/* musl ships no kernel headers: the capability ABI, from linux/capability.h. */
#define CAP_V3 0x20080522
#define CAP_SYS_RESOURCE 24
struct cap_hdr { uint32_t version; int pid; };
struct cap_data { uint32_t effective, permitted, inheritable; };

static const char *files[] = {"queues_max", "msg_max", "msgsize_max", "msg_default",
			      "msgsize_default"};

#define SYSCTL_DIR "/proc/sys/fs/mqueue"
#include "sysctl.h"

/* Makes queue `name` (maxmsg < 0: no attributes), prints what it got, and keeps it open
 * when `keep` (returning the descriptor), else removes it. */
static mqd_t make(const char *what, const char *name, long maxmsg, long msgsize, int keep)
{
	struct mq_attr a = {.mq_maxmsg = maxmsg, .mq_msgsize = msgsize};
	errno = 0;
	mqd_t q = mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0600, maxmsg < 0 ? NULL : &a);
	if (q == (mqd_t)-1) {
		printf("%s: %s\n", what, errname(errno));
		return q;
	}
	struct mq_attr got;
	if (mq_getattr(q, &got) == 0)
		printf("%s: maxmsg=%ld msgsize=%ld\n", what, got.mq_maxmsg, got.mq_msgsize);
	if (keep)
		return q;
	mq_close(q);
	mq_unlink(name);
	return (mqd_t)-1;
}

/* Runs `body` in a child with uid and gid `id`, with root's capabilities when `caps`
 * (PR_SET_KEEPCAPS, then the permitted set made effective again), none otherwise; waits. */
static void as_user(unsigned id, int caps, void (*body)(void))
{
	fflush(stdout);
	pid_t child = fork();
	if (child == 0) {
		if (caps && prctl(PR_SET_KEEPCAPS, 1) < 0)
			printf("PR_SET_KEEPCAPS: %s\n", errname(errno));
		if (setresgid(id, id, id) < 0 || setresuid(id, id, id) < 0) {
			printf("setresuid: %s\n", errname(errno));
			_exit(1);
		}
		if (caps) {
			struct cap_hdr h = {CAP_V3, 0};
			struct cap_data d[2];
			if (syscall(SYS_capget, &h, d) < 0)
				printf("capget: %s\n", errname(errno));
			d[0].effective = d[0].permitted;
			d[1].effective = d[1].permitted;
			if (syscall(SYS_capset, &h, d) < 0)
				printf("capset: %s\n", errname(errno));
		}
		body();
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(child, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		printf("child ended badly\n");
}

static void start(void)
{
	make("defaults", "/q", -1, 0, 0);
}

static void new_defaults(void)
{
	make("new defaults", "/q", -1, 0, 0);
}

static void limits_hold(void)
{
	make("user, defaults above the maxima", "/u", -1, 0, 0);
	make("user, maxmsg 6", "/u", 6, 128, 0);
	make("user, maxmsg 5", "/u", 5, 128, 0);
	make("user, msgsize 201", "/u", 1, 201, 0);
	make("user, msgsize 200", "/u", 1, 200, 0);
	/* RLIMIT_MSGQUEUE: a queue of one 128-byte message counts 128 + 48 + 48 bytes. */
	struct rlimit rl = {3 * 224, 3 * 224};
	if (setrlimit(RLIMIT_MSGQUEUE, &rl) < 0)
		printf("setrlimit: %s\n", errname(errno));
	mqd_t qs[4];
	char name[16];
	int made = 0;
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof name, "/r%d", i);
		struct mq_attr a = {.mq_maxmsg = 1, .mq_msgsize = 128};
		errno = 0;
		qs[i] = mq_open(name, O_CREAT | O_EXCL | O_RDWR, 0600, &a);
		if (qs[i] == (mqd_t)-1) {
			printf("RLIMIT_MSGQUEUE 672: %d queues, then %s\n", made, errname(errno));
			break;
		}
		made++;
	}
	/* Closed and unlinked, a queue's bytes come back. */
	mq_close(qs[0]);
	mq_unlink("/r0");
	struct mq_attr a = {.mq_maxmsg = 1, .mq_msgsize = 128};
	errno = 0;
	mqd_t again = mq_open("/r3", O_CREAT | O_EXCL | O_RDWR, 0600, &a);
	printf("after one went: %s\n", again == (mqd_t)-1 ? errname(errno) : "made");
	for (int i = 1; i < made; i++) {
		snprintf(name, sizeof name, "/r%d", i);
		mq_close(qs[i]);
		mq_unlink(name);
	}
	if (again != (mqd_t)-1) {
		mq_close(again);
		mq_unlink("/r3");
	}
}

/* queues_max is 2 and the parent holds one queue. */
static void queues_max_holds(void)
{
	mqd_t one = make("user, second queue", "/c1", 1, 128, 1);
	make("user, third queue", "/c2", 1, 128, 0);
	/* Unlinked but open, a queue still counts. */
	mq_unlink("/c1");
	make("user, third queue, one unlinked but open", "/c2", 1, 128, 0);
	mq_close(one);
	make("user, third queue, the unlinked one closed", "/c2", 1, 128, 0);
}

static void no_limit(void)
{
	make("user, queues_max -1", "/c3", 1, 128, 0);
}

/* The maxima are 5 messages of 200 bytes. */
static void privileged(void)
{
	struct cap_hdr h = {CAP_V3, 0};
	struct cap_data d[2];
	int has = syscall(SYS_capget, &h, d) == 0 && (d[0].effective >> CAP_SYS_RESOURCE) & 1;
	printf("CAP_SYS_RESOURCE: %s\n", has ? "yes" : "no");
	if (has) {
		/* Only the hard limits hold then; no limit on the queues' bytes either. */
		struct rlimit inf = {RLIM_INFINITY, RLIM_INFINITY};
		if (setrlimit(RLIMIT_MSGQUEUE, &inf) < 0)
			printf("setrlimit: %s\n", errname(errno));
	}
	/* No capability lets a uid other than 0 write a sysctl. */
	put("msg_max", "7");
	make("privileged, defaults", "/q", -1, 0, 0);
	make("privileged, maxmsg 6", "/q", 6, 128, 0);
	make("privileged, maxmsg 65536", "/q", 65536, 1, 0);
	make("privileged, maxmsg 65537", "/q", 65537, 1, 0);
	make("privileged, msgsize 16 MiB", "/q", 1, 16 << 20, 0);
	make("privileged, msgsize 16 MiB + 1", "/q", 1, (16 << 20) + 1, 0);
	make("privileged, maxmsg 0", "/q", 0, 128, 0);
	make("privileged, msgsize -1", "/q", 1, -1, 0);
}

/* queues_max is 2 and two queues exist. */
static void privileged_past_queues_max(void)
{
	make("privileged, queue past queues_max", "/p3", 1, 128, 0);
}

int main(void)
{
	enter_ipc_namespace_showing(files, sizeof files / sizeof *files);
	as_user(54321, 0, start);

	/* The defaults, then defaults above the maxima (capped by them). */
	put("msg_default", "3");
	put("msgsize_default", "256\n");
	as_user(54321, 0, new_defaults);
	put("msg_max", "5");
	put("msgsize_max", "200");
	put("msg_default", "8");
	show("msg_default");

	/* CAP_SYS_RESOURCE passes the maxima, up to the hard limits; without it, the maxima
	 * hold, and RLIMIT_MSGQUEUE. */
	as_user(54322, 1, privileged);
	as_user(54321, 0, limits_hold);

	/* queues_max: CAP_SYS_RESOURCE passes it, others don't. */
	put("queues_max", "2");
	mqd_t p = make("root, first queue", "/p", 1, 128, 1);
	as_user(54321, 0, queues_max_holds);
	mqd_t p2 = make("root, second queue", "/p2", 1, 128, 1);
	as_user(54322, 1, privileged_past_queues_max);
	as_user(54321, 0, privileged_past_queues_max);
	put("queues_max", "-1");
	show("queues_max");
	as_user(54321, 0, no_limit);
	mq_close(p);
	mq_close(p2);
	mq_unlink("/p");
	mq_unlink("/p2");

	/* What a write may not do: each file's range, and no text. */
	put("msg_max", "0");
	put("msg_max", "65537");
	put("msg_max", "-5");
	put("msgsize_max", "127");
	put("msgsize_max", "16777217");
	put("msg_default", "0");
	put("msgsize_default", "127");
	put("queues_max", "2147483648");
	put("queues_max", "abc");
	put("msg_max", "65536 7");
	put("msgsize_default", "0x80");
	put("queues_max", "-2147483648");
	for (size_t i = 0; i < sizeof files / sizeof *files; i++)
		show(files[i]);

	/* An mqueue file system mounted in a namespace lists that namespace's queues (natively
	 * in a private mount namespace, over /tmp). */
	mqd_t listed = make("a queue to list", "/listed", 1, 128, 1);
	fflush(stdout);
	pid_t lister = fork();
	if (lister == 0) {
		if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
		    mount("mqueue", "/tmp", "mqueue", 0, NULL) < 0) {
			printf("mount mqueue: %s\n", errname(errno));
			_exit(1);
		}
		DIR *d = opendir("/tmp");
		struct dirent *e;
		while (d && (e = readdir(d)))
			if (e->d_name[0] != '.')
				printf("listed: %s\n", e->d_name);
		if (d)
			closedir(d);
		fflush(stdout);
		_exit(0);
	}
	waitpid(lister, NULL, 0);
	mq_close(listed);
	mq_unlink("/listed");

	/* A child's namespace starts at Linux's defaults. */
	fflush(stdout);
	pid_t child = fork();
	if (child == 0) {
		if (unshare(CLONE_NEWIPC) < 0)
			printf("unshare again: %s\n", errname(errno));
		show("msg_max");
		show("queues_max");
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(child, &st, 0);
	show("msg_max");
	return 0;
}
