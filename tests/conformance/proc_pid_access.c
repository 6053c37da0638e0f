/* Another process's /proc/PID/fd/N, exe, cwd and root are read and followed only after
 * Linux's ptrace access check (PTRACE_MODE_READ_FSCREDS, fs/proc/base.c
 * proc_fd_access_allowed): the caller's ids must be all the target's, or the caller must
 * hold CAP_SYS_PTRACE, and a target that is not dumpable needs CAP_SYS_PTRACE anyway.
 * The same holds for /proc/PID/ns/KIND, and for reading environ, auxv, maps, smaps,
 * smaps_rollup (which CAP_SYS_ADMIN or CAP_PERFMON may read too) and io.
 * Failing it is EACCES for readlink and for a walk through the link; lstat of the link
 * stays allowed. The harness runs this as root; every id and capability change is a
 * forked child's own. */
#include "conf.h"
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>

/* musl ships no kernel headers: the capability ABI, from linux/capability.h. */
#define CAP_VERSION_3 0x20080522
#define CAP_SYS_PTRACE 19
#define CAP_SYS_ADMIN 21
#define CAP_PERFMON 38
struct cap_header { uint32_t version; int pid; };
struct cap_data { uint32_t effective, permitted, inheritable; };

struct target {
	pid_t pid;
	int fd;     /* its pipe's read end */
	int go;     /* write a byte to let it end */
};

/* A process of uid and gid 1000 holding a pipe; dumpable again if `dumpable`. */
static struct target start_target(int dumpable)
{
	int ready[2], go[2];
	pipe(ready);
	pipe(go);
	struct target t = { 0, -1, -1 };
	t.pid = fork();
	if (t.pid == 0) {
		close(ready[0]);
		close(go[1]);
		int p[2];
		int ok = setresgid(1000, 1000, 1000) == 0 && setresuid(1000, 1000, 1000) == 0 &&
			 pipe(p) == 0;
		if (ok && dumpable)
			prctl(PR_SET_DUMPABLE, 1);
		int fd = ok ? p[0] : -1;
		write(ready[1], &fd, sizeof fd);
		char c;
		read(go[0], &c, 1);
		_exit(0);
	}
	close(ready[1]);
	close(go[0]);
	read(ready[0], &t.fd, sizeof t.fd);
	close(ready[0]);
	t.go = go[1];
	return t;
}

static void stop_target(struct target *t)
{
	write(t->go, "x", 1);
	close(t->go);
	waitpid(t->pid, NULL, 0);
}

static void probe(const char *who, const char *what, const struct target *t)
{
	char link[64], buf[256];
	const char *names[] = { "exe", "cwd", "root" };
	snprintf(link, sizeof link, "/proc/%d/fd/%d", (int)t->pid, t->fd);
	ssize_t n = readlink(link, buf, sizeof buf - 1);
	if (n >= 0)
		buf[n] = 0;
	printf("%s, %s: readlink fd: %s\n", who, what,
	       n < 0 ? errname(errno) : strncmp(buf, "pipe:[", 6) == 0 ? "pipe:[INO]" : buf);
	int fd = open(link, O_WRONLY | O_NONBLOCK);
	printf("%s, %s: open fd: %s\n", who, what, fd >= 0 ? "opened" : errname(errno));
	if (fd >= 0)
		close(fd);
	struct stat st;
	printf("%s, %s: lstat fd: %s\n", who, what, lstat(link, &st) == 0 ? "ok" : errname(errno));
	for (int i = 0; i < 3; i++) {
		snprintf(link, sizeof link, "/proc/%d/%s", (int)t->pid, names[i]);
		n = readlink(link, buf, sizeof buf);
		printf("%s, %s: readlink %s: %s\n", who, what, names[i], n >= 0 ? "ok" : errname(errno));
		fd = open(link, O_RDONLY);
		printf("%s, %s: open %s: %s\n", who, what, names[i], fd >= 0 ? "opened" : errname(errno));
		if (fd >= 0)
			close(fd);
	}
	/* Its namespaces' links: the same check (proc_ns_get_link). */
	snprintf(link, sizeof link, "/proc/%d/ns/uts", (int)t->pid);
	n = readlink(link, buf, sizeof buf);
	printf("%s, %s: readlink ns/uts: %s\n", who, what, n >= 0 ? "ok" : errname(errno));
	fd = open(link, O_RDONLY);
	printf("%s, %s: open ns/uts: %s\n", who, what, fd >= 0 ? "opened" : errname(errno));
	if (fd >= 0)
		close(fd);
	/* What tells about its memory, environment and I/O: the same check (proc_mem_open,
	 * do_io_accounting), at the open or at the read. */
	const char *files[] = { "environ", "auxv", "maps", "smaps", "smaps_rollup", "io" };
	for (int i = 0; i < 6; i++) {
		snprintf(link, sizeof link, "/proc/%d/%s", (int)t->pid, files[i]);
		fd = open(link, O_RDONLY);
		const char *r = "read";
		if (fd < 0)
			r = errname(errno);
		else if (read(fd, buf, sizeof buf) < 0)
			r = errname(errno);
		printf("%s, %s: %s: %s\n", who, what, files[i], r);
		if (fd >= 0)
			close(fd);
	}
	/* The walk goes through the link: cwd/. and root/. */
	snprintf(link, sizeof link, "/proc/%d/cwd/.", (int)t->pid);
	printf("%s, %s: stat cwd/.: %s\n", who, what, stat(link, &st) == 0 ? "ok" : errname(errno));
}

/* Drops CAP_SYS_PTRACE, and with `more` also CAP_SYS_ADMIN and CAP_PERFMON (either of
 * which reads another process's maps and environ: Linux's perfmon_capable in mm_access). */
static void drop_ptrace_cap(int more)
{
	struct cap_header h = { CAP_VERSION_3, 0 };
	struct cap_data d[2];
	syscall(SYS_capget, &h, d);
	uint32_t lo = 1u << CAP_SYS_PTRACE, hi = 0;
	if (more) {
		lo |= 1u << CAP_SYS_ADMIN;
		hi |= 1u << (CAP_PERFMON - 32);
	}
	d[0].effective &= ~lo;
	d[0].permitted &= ~lo;
	d[1].effective &= ~hi;
	d[1].permitted &= ~hi;
	if (syscall(SYS_capset, &h, d) != 0)
		printf("capset: %s\n", errname(errno));
}

/* Runs `probe` in a forked child that first becomes `who`. */
/* keep: 1 every capability, 0 all but CAP_SYS_PTRACE, -1 also without CAP_SYS_ADMIN and
 * CAP_PERFMON. */
static void probe_as(const char *who, int uid, int keep, const char *what,
		     const struct target *t)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (keep < 1)
			drop_ptrace_cap(keep < 0);
		if (uid != 0 && (setresgid(uid, uid, uid) != 0 || setresuid(uid, uid, uid) != 0)) {
			printf("setresuid: %s\n", errname(errno));
			_exit(1);
		}
		probe(who, what, t);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
}

int main(void)
{
	chdir("/");
	struct target shy = start_target(0);
	struct target open_ = start_target(1);
	if (shy.fd < 0 || open_.fd < 0) {
		printf("targets: failed\n");
		return 1;
	}
	probe_as("root", 0, 1, "uid 1000 not dumpable", &shy);
	probe_as("root without CAP_SYS_PTRACE", 0, 0, "uid 1000 not dumpable", &shy);
	probe_as("root without CAP_SYS_PTRACE", 0, 0, "uid 1000 dumpable", &open_);
	probe_as("root without CAP_SYS_PTRACE, CAP_SYS_ADMIN, CAP_PERFMON", 0, -1,
		 "uid 1000 dumpable", &open_);
	probe_as("uid 1000", 1000, 1, "uid 1000 not dumpable", &shy);
	probe_as("uid 1000", 1000, 1, "uid 1000 dumpable", &open_);
	probe_as("uid 1001", 1001, 1, "uid 1000 dumpable", &open_);
	stop_target(&shy);
	stop_target(&open_);
	return 0;
}
