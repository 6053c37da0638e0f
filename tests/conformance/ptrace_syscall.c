/* ptrace, system calls and events: PTRACE_SYSCALL's entry and exit stops (orig_rax, RAX
 * -ENOSYS at entry, the number changed or skipped with -1, the result changed),
 * PTRACE_GET_SYSCALL_INFO, SETOPTIONS with TRACESYSGOOD, TRACEEXEC, TRACEEXIT,
 * TRACEFORK, TRACECLONE (auto-attached children), EXITKILL, and GETEVENTMSG; signals sent
 * from a syscall-stop. Prints properties only. */
#include "ptrace.h"
#include <sys/ptrace.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/user.h>

#ifndef PTRACE_GET_SYSCALL_INFO
#define PTRACE_GET_SYSCALL_INFO 0x420e
#endif
#ifndef PTRACE_O_EXITKILL
#define PTRACE_O_EXITKILL (1 << 20)
#endif

/* struct ptrace_syscall_info (not in every libc's headers). */
struct syscall_info {
	uint8_t op;
	uint8_t pad[3];
	uint32_t arch;
	uint64_t instruction_pointer;
	uint64_t stack_pointer;
	union {
		struct {
			uint64_t nr;
			uint64_t args[6];
		} entry;
		struct {
			int64_t rval;
			uint8_t is_error;
		} exit;
	};
};

/* The raw system call: the same on every libc (glibc's wrapper treats PEEK* apart). */
static long pt(long req, pid_t pid, unsigned long addr, unsigned long data)
{
	return syscall(SYS_ptrace, req, pid, addr, data);
}

static long peek_user(pid_t pid, size_t off)
{
	long v = 0;
	if (pt(PTRACE_PEEKUSER, pid, off, (unsigned long)&v) != 0)
		return -12345;
	return v;
}



static pid_t traced_child(void (*body)(void))
{
	pid_t pid = fork();
	if (pid == 0) {
		if (pt(PTRACE_TRACEME, 0, 0, 0) != 0)
			_exit(100);
		syscall(SYS_kill, getpid(), SIGSTOP);
		body();
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	return pid;
}

/* 1. Entry and exit stops, changed and skipped calls. */
static void sys_body(void)
{
	long a = syscall(SYS_getppid);	/* turned into getpid */
	long b = syscall(SYS_getuid);	/* skipped: the tracer's RAX */
	long c = syscall(SYS_getgid);	/* result changed at exit */
	long d = syscall(SYS_close, 12345); /* EBADF, seen at exit */
	_exit((a == getpid()) + 2 * (b == 777) + 4 * (c == 555) + 8 * (d == -1 && errno == EBADF));
}

static void test_syscalls(void)
{
	pid_t pid = traced_child(sys_body);
	printf("setoptions: %ld\n", pt(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACESYSGOOD));
	int entering = 1;
	for (int n = 0; n < 40; n++) {
		pt(PTRACE_SYSCALL, pid, 0, 0);
		int st;
		if (waitpid(pid, &st, 0) != pid || !WIFSTOPPED(st)) {
			show_status("syscalls end", st);
			break;
		}
		if (WSTOPSIG(st) != (SIGTRAP | 0x80)) {
			show_status("unexpected", st);
			continue;
		}
		long nr = peek_user(pid, offsetof(struct user, regs.orig_rax));
		long rax = peek_user(pid, offsetof(struct user, regs.rax));
		unsigned long msg = 0;
		pt(PTRACE_GETEVENTMSG, pid, 0, (unsigned long)&msg);
		struct syscall_info info;
		memset(&info, 0, sizeof info);
		long len = pt(PTRACE_GET_SYSCALL_INFO, pid, sizeof info, (unsigned long)&info);
		if (entering) {
			printf("entry nr %ld rax %ld msg %lu info op %d len %ld nr %lld arch %#x\n", nr,
			       rax, msg, info.op, len, (long long)info.entry.nr, info.arch);
			if (nr == SYS_getppid)
				pt(PTRACE_POKEUSER, pid, offsetof(struct user, regs.orig_rax), SYS_getpid);
			if (nr == SYS_getuid) {
				pt(PTRACE_POKEUSER, pid, offsetof(struct user, regs.orig_rax), -1);
				pt(PTRACE_POKEUSER, pid, offsetof(struct user, regs.rax), 777);
			}
			if (nr == SYS_close)
				printf("close arg0 %lld\n", (long long)info.entry.args[0]);
		} else {
			printf("exit  nr %ld rax %s msg %lu info op %d len %ld err %d\n", nr,
			       nr == SYS_getpid ? (rax == pid ? "pid" : "?") : rax == -EBADF ? "-EBADF" : rax == 777 ? "777" : "other",
			       msg, info.op, len, info.exit.is_error);
			if (nr == SYS_getgid)
				pt(PTRACE_POKEUSER, pid, offsetof(struct user, regs.rax), 555);
		}
		entering = !entering;
	}
}

/* 2. TRACEEXEC and TRACEEXIT. */
static char *self_path;

static void exec_body(void)
{
	char *argv[] = {self_path, "exit9", NULL};
	execv(self_path, argv);
	_exit(101);
}

static void test_exec_exit(void)
{
	pid_t pid = traced_child(exec_body);
	pt(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACEEXEC | PTRACE_O_TRACEEXIT);
	pt(PTRACE_CONT, pid, 0, 0);
	int st = wait_show("exec event", pid);
	unsigned long msg = 0;
	pt(PTRACE_GETEVENTMSG, pid, 0, (unsigned long)&msg);
	printf("exec msg is pid: %d, event %d\n", msg == (unsigned long)pid,
	       (st >> 16) == PTRACE_EVENT_EXEC);
	pt(PTRACE_CONT, pid, 0, 0);
	st = wait_show("exit event", pid);
	pt(PTRACE_GETEVENTMSG, pid, 0, (unsigned long)&msg);
	printf("exit msg %#lx, event %d\n", msg, (st >> 16) == PTRACE_EVENT_EXIT);
	pt(PTRACE_CONT, pid, 0, 0);
	wait_show("exec end", pid);
}

/* 3. TRACEFORK: the grandchild is traced from its first instruction. */
static void fork_body(void)
{
	pid_t g = fork();
	if (g == 0)
		_exit(5);
	int st;
	waitpid(g, &st, 0);
	_exit(WIFEXITED(st) ? 10 + WEXITSTATUS(st) : 99);
}

static void test_fork(void)
{
	pid_t pid = traced_child(fork_body);
	pt(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACEFORK);
	pt(PTRACE_CONT, pid, 0, 0);
	int st = wait_show("fork event", pid);
	unsigned long g = 0;
	pt(PTRACE_GETEVENTMSG, pid, 0, (unsigned long)&g);
	printf("fork event %d\n", (st >> 16) == PTRACE_EVENT_FORK);
	wait_show("grandchild start", (pid_t)g);
	long opts = -1;
	printf("grandchild traced: %ld\n", pt(PTRACE_PEEKUSER, (pid_t)g, 0, (unsigned long)&opts));
	pt(PTRACE_CONT, (pid_t)g, 0, 0);
	wait_show("grandchild end", (pid_t)g);
	pt(PTRACE_CONT, pid, 0, 0);
	wait_show("fork end", pid);
}

/* 4. TRACECLONE: a new thread is traced, and its end is reported. */
static void *thread_fn(void *arg)
{
	(void)arg;
	return NULL;
}

static void clone_body(void)
{
	pthread_t t;
	pthread_create(&t, NULL, thread_fn, NULL);
	pthread_join(t, NULL);
	_exit(6);
}

static void test_clone(void)
{
	pid_t pid = traced_child(clone_body);
	pt(PTRACE_SETOPTIONS, pid, 0, PTRACE_O_TRACECLONE);
	pt(PTRACE_CONT, pid, 0, 0);
	int st = wait_show("clone event", pid);
	unsigned long t = 0;
	pt(PTRACE_GETEVENTMSG, pid, 0, (unsigned long)&t);
	printf("clone event %d\n", (st >> 16) == PTRACE_EVENT_CLONE);
	wait_show("thread start", (pid_t)t);
	pt(PTRACE_CONT, (pid_t)t, 0, 0);
	pt(PTRACE_CONT, pid, 0, 0);
	/* The thread's own exit(0), or the group's 6 when exit_group overtook it (racy on
	 * Linux too: the join returns once the thread clears its tid, before it is gone). */
	int ts = 0;
	waitpid((pid_t)t, &ts, __WALL);
	printf("thread end: exited %d\n",
	       WIFEXITED(ts) && (WEXITSTATUS(ts) == 0 || WEXITSTATUS(ts) == 6));
	wait_show("clone end", pid);
}

/* 5. A signal given at a syscall-stop is sent. */
static void sigsys_body(void)
{
	syscall(SYS_getpid);
	pause();
	_exit(0);
}

static void test_syscall_signal(void)
{
	pid_t pid = traced_child(sigsys_body);
	pt(PTRACE_SYSCALL, pid, 0, 0);
	wait_show("getpid entry", pid);
	pt(PTRACE_CONT, pid, 0, SIGUSR1);
	wait_show("signal stop", pid);
	pt(PTRACE_CONT, pid, 0, SIGUSR1);
	wait_show("signal end", pid);
}

/* 6. EXITKILL: the tracer's end kills the tracee. */
static void test_exitkill(void)
{
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	int p[2];
	if (pipe(p) != 0)
		return;
	pid_t tracer = fork();
	if (tracer == 0) {
		pid_t c = fork();
		if (c == 0) {
			pt(PTRACE_TRACEME, 0, 0, 0);
			syscall(SYS_kill, getpid(), SIGSTOP);
			for (;;)
				pause();
		}
		int st;
		waitpid(c, &st, 0);
		pt(PTRACE_SETOPTIONS, c, 0, PTRACE_O_EXITKILL);
		pt(PTRACE_CONT, c, 0, 0);
		if (write(p[1], &c, sizeof c) != sizeof c)
			_exit(2);
		_exit(0);
	}
	pid_t c = 0;
	if (read(p[0], &c, sizeof c) != sizeof c)
		return;
	wait_show("tracer", tracer);
	wait_show("exitkill tracee", c);
	prctl(PR_SET_CHILD_SUBREAPER, 0);
}

int main(int argc, char **argv)
{
	self_path = argv[0];
	if (argc > 1 && strcmp(argv[1], "exit9") == 0)
		return 9;
	test_syscalls();
	test_exec_exit();
	test_fork();
	test_clone();
	test_syscall_signal();
	test_exitkill();
	return 0;
}
