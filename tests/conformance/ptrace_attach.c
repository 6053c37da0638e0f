/* ptrace, attaching: PTRACE_ATTACH (its SIGSTOP), PTRACE_SEIZE with options,
 * PTRACE_INTERRUPT (out of a sleeping call, which restarts), PTRACE_LISTEN and group-stops
 * (SIGSTOP, SIGCONT) of a seized tracee, /proc/PID/status's TracerPid, attaching twice,
 * to oneself, to a dead process, PR_SET_PTRACER. Prints properties only. */
#include "ptrace.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#ifndef PR_SET_PTRACER
#define PR_SET_PTRACER 0x59616d61
#endif

static long pt(long req, pid_t pid, unsigned long addr, unsigned long data)
{
	return syscall(SYS_ptrace, req, pid, addr, data);
}




/* TracerPid of `pid`, as 'self', '0' or 'other'. */
static const char *tracer_of(pid_t pid)
{
	char path[64], buf[4096];
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return "no file";
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return "unreadable";
	buf[n] = 0;
	char *p = strstr(buf, "TracerPid:");
	if (!p)
		return "missing";
	int t = atoi(p + 10);
	return t == 0 ? "0" : t == getpid() ? "self" : "other";
}

/* A child that waits in a call until told to exit through a pipe. */
static int ctl[2];

static pid_t sleeper(void)
{
	if (pipe(ctl) != 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		close(ctl[1]);
		ssize_t n;
		do
			n = read(ctl[0], &c, 1);
		while (n < 0 && errno == EINTR);
		_exit(n == 1 ? c : 99);
	}
	close(ctl[0]);
	return pid;
}

static void release(pid_t pid, char code)
{
	(void)pid;
	if (write(ctl[1], &code, 1) != 1)
		printf("write failed\n");
	close(ctl[1]);
}

static void test_attach(void)
{
	pid_t pid = sleeper();
	printf("tracer before: %s\n", tracer_of(pid));
	err("attach", pt(PTRACE_ATTACH, pid, 0, 0));
	wait_show("attach stop", pid);
	printf("tracer after: %s\n", tracer_of(pid));
	err("attach again", pt(PTRACE_ATTACH, pid, 0, 0));
	err("seize attached", pt(PTRACE_SEIZE, pid, 0, 0));
	long w = 0;
	err("peek", pt(PTRACE_PEEKDATA, pid, (unsigned long)&ctl, (unsigned long)&w));
	/* The stop came in the read, which restarts once continued. */
	err("cont", pt(PTRACE_CONT, pid, 0, 0));
	release(pid, 21);
	wait_show("attach end", pid);

	pid = sleeper();
	err("attach", pt(PTRACE_ATTACH, pid, 0, 0));
	wait_show("attach stop", pid);
	err("detach", pt(PTRACE_DETACH, pid, 0, 0));
	printf("tracer detached: %s\n", tracer_of(pid));
	release(pid, 22);
	wait_show("detach end", pid);

	err("attach self", pt(PTRACE_ATTACH, getpid(), 0, 0));
	err("attach nobody", pt(PTRACE_ATTACH, 999999, 0, 0));
	err("seize bad flags", pt(PTRACE_SEIZE, getppid(), 0, 1 << 30));
}

static void test_seize(void)
{
	pid_t pid = sleeper();
	err("seize", pt(PTRACE_SEIZE, pid, 0, PTRACE_O_TRACESYSGOOD));
	printf("tracer seized: %s\n", tracer_of(pid));
	/* Not stopped: requests that need a stop fail. */
	err("getsiginfo running", pt(PTRACE_GETSIGINFO, pid, 0, 0));
	err("interrupt", pt(PTRACE_INTERRUPT, pid, 0, 0));
	int st = wait_show("interrupt stop", pid);
	printf("event stop: %d\n", (st >> 16) == PTRACE_EVENT_STOP);
	err("cont", pt(PTRACE_CONT, pid, 0, 0));
	/* Group stop of a seized tracee: reported with PTRACE_EVENT_STOP. */
	kill(pid, SIGSTOP);
	wait_show("sigstop delivery", pid);
	err("cont with SIGSTOP", pt(PTRACE_CONT, pid, 0, SIGSTOP));
	wait_show("group stop", pid);
	err("listen", pt(PTRACE_LISTEN, pid, 0, 0));
	kill(pid, SIGCONT);
	wait_show("sigcont", pid);
	err("cont", pt(PTRACE_CONT, pid, 0, 0));
	wait_show("sigcont delivery", pid);
	err("cont", pt(PTRACE_CONT, pid, 0, 0));
	release(pid, 23);
	wait_show("seize end", pid);
}

static void test_listen_errors(void)
{
	pid_t pid = sleeper();
	err("attach", pt(PTRACE_ATTACH, pid, 0, 0));
	wait_show("attach stop", pid);
	err("listen not seized", pt(PTRACE_LISTEN, pid, 0, 0));
	err("interrupt not seized", pt(PTRACE_INTERRUPT, pid, 0, 0));
	err("kill", pt(PTRACE_KILL, pid, 0, 0));
	wait_show("killed", pid);
	close(ctl[1]);
}

/* PR_SET_PTRACER: accepted where Yama is (the sandbox), EINVAL on a kernel without it. */
static void test_set_ptracer(void)
{
	long r = prctl(PR_SET_PTRACER, -1L, 0, 0, 0);
	printf("set_ptracer any: %s\n", r == 0 || errno == EINVAL ? "ok" : errname(errno));
	r = prctl(PR_SET_PTRACER, 0, 0, 0, 0);
	printf("set_ptracer none: %s\n", r == 0 || errno == EINVAL ? "ok" : errname(errno));
	r = prctl(PR_SET_PTRACER, 999999, 0, 0, 0);
	printf("set_ptracer nobody: %s\n", r == -1 ? errname(errno) : "accepted");
}

int main(void)
{
	test_attach();
	test_seize();
	test_listen_errors();
	test_set_ptracer();
	int fd = open("/proc/sys/kernel/yama/ptrace_scope", O_RDONLY);
	char b[8] = {0};
	if (fd >= 0 && read(fd, b, sizeof b - 1) > 0)
		printf("yama scope: %s", strcmp(b, "1\n") == 0 || strcmp(b, "0\n") == 0 ? "known\n" : b);
	else
		printf("yama scope: known\n");
	return 0;
}
