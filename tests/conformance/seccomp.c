/* seccomp: strict mode, classic BPF filters and their actions (ERRNO, TRAP with its
 * siginfo, KILL_PROCESS, KILL_THREAD, TRACE and USER_NOTIF without a tracer or
 * listener, LOG, ALLOW), stacking and precedence, inheritance by fork and threads,
 * TSYNC, execve keeping filters, the no_new_privs / CAP_SYS_ADMIN rule, and the
 * filters Linux's checker refuses.
 *
 * Every experiment runs in a forked child (a filter can't be removed); filters only
 * act on the calling process, so nothing changes on the host. Core dumps are off
 * (RLIMIT_CORE 0) for the children that die of SIGSYS. */
#include "conf.h"
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <stddef.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <ucontext.h>

/* musl ships no kernel headers: the seccomp and BPF ABI (linux/seccomp.h, filter.h). */
struct sock_filter { uint16_t code; uint8_t jt, jf; uint32_t k; };
struct sock_fprog { unsigned short len; struct sock_filter *filter; };
struct seccomp_data { int nr; uint32_t arch; uint64_t instruction_pointer; uint64_t args[6]; };
#define BPF_LD 0x00
#define BPF_LDX 0x01
#define BPF_ST 0x02
#define BPF_ALU 0x04
#define BPF_JMP 0x05
#define BPF_RET 0x06
#define BPF_W 0x00
#define BPF_H 0x08
#define BPF_ABS 0x20
#define BPF_MEM 0x60
#define BPF_LEN 0x80
#define BPF_DIV 0x30
#define BPF_MOD 0x90
#define BPF_JA 0x00
#define BPF_JEQ 0x10
#define BPF_K 0x00
#define BPF_A 0x10
#define STMT(c, k) { (uint16_t)(c), 0, 0, (uint32_t)(k) }
#define JUMP(c, k, t, f) { (uint16_t)(c), (uint8_t)(t), (uint8_t)(f), (uint32_t)(k) }

#define SECCOMP_MODE_STRICT 1
#define SECCOMP_MODE_FILTER 2
#define SECCOMP_SET_MODE_STRICT 0
#define SECCOMP_SET_MODE_FILTER 1
#define SECCOMP_GET_ACTION_AVAIL 2
#define SECCOMP_GET_NOTIF_SIZES 3
#define SECCOMP_FILTER_FLAG_TSYNC 1
#define SECCOMP_FILTER_FLAG_LOG 2
#define SECCOMP_FILTER_FLAG_TSYNC_ESRCH 16
#define SECCOMP_FILTER_FLAG_NEW_LISTENER 8
struct seccomp_notif { uint64_t id; uint32_t pid; uint32_t flags; struct seccomp_data data; };
struct seccomp_notif_resp { uint64_t id; int64_t val; int32_t error; uint32_t flags; };
#define NOTIF_RECV 0xc0502100UL
#define NOTIF_SEND 0xc0182101UL
#define NOTIF_ID_VALID 0x40082102UL
#define USER_NOTIF_FLAG_CONTINUE 1
#define RET_KILL_PROCESS 0x80000000U
#define RET_KILL_THREAD 0x00000000U
#define RET_TRAP 0x00030000U
#define RET_ERRNO 0x00050000U
#define RET_USER_NOTIF 0x7fc00000U
#define RET_TRACE 0x7ff00000U
#define RET_LOG 0x7ffc0000U
#define RET_ALLOW 0x7fff0000U
#define AUDIT_ARCH_X86_64 0xc000003eU
#define CAP_SYS_ADMIN 21

#define NR_OFF offsetof(struct seccomp_data, nr)
#define ARCH_OFF offsetof(struct seccomp_data, arch)
#define ARG0_OFF offsetof(struct seccomp_data, args[0])
#define ARG0_HI_OFF (offsetof(struct seccomp_data, args[0]) + 4)

static const char *self_exe = "/proc/self/exe";

static long sc(unsigned op, unsigned flags, void *args)
{
	return syscall(SYS_seccomp, op, flags, args);
}

static long install_flags(struct sock_filter *f, unsigned short n, unsigned flags)
{
	struct sock_fprog p = { n, f };
	return sc(SECCOMP_SET_MODE_FILTER, flags, &p);
}

static long install(struct sock_filter *f, unsigned short n)
{
	return install_flags(f, n, 0);
}

/* A filter giving `action` for system call `nr` and allowing the rest. */
static long on_nr(int nr, uint32_t action)
{
	struct sock_filter f[] = {
		STMT(BPF_LD | BPF_W | BPF_ABS, NR_OFF),
		JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 1),
		STMT(BPF_RET | BPF_K, action),
		STMT(BPF_RET | BPF_K, RET_ALLOW),
	};
	return install(f, 4);
}

#define P(label, expr)                                                       \
	do {                                                                 \
		errno = 0;                                                   \
		long _r = (long)(expr);                                      \
		int _e = errno;                                              \
		printf("%s: %s%s\n", label, _r == -1 ? "-1 " : (_r == 0 ? "0" : "positive"), \
		       _r == -1 ? errname(_e) : "");                         \
	} while (0)

static void run(const char *name, void (*fn)(void))
{
	printf("== %s\n", name);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		struct rlimit no_core = { 0, 0 };
		setrlimit(RLIMIT_CORE, &no_core);
		fn();
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("-- %s: %s\n", name, wait_status(st));
}

static void nnp(void)
{
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

static void show_status(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "Seccomp", 7) || !strncmp(line, "NoNewPrivs", 10))
			fputs(line, stdout);
	if (f)
		fclose(f);
}

static void queries(void)
{
	uint32_t actions[] = { RET_KILL_PROCESS, RET_KILL_THREAD, RET_TRAP, RET_ERRNO,
			       RET_USER_NOTIF, RET_TRACE, RET_LOG, RET_ALLOW, 0x12340000, RET_ERRNO | 5 };
	for (unsigned i = 0; i < sizeof actions / sizeof *actions; i++) {
		char label[64];
		snprintf(label, sizeof label, "action %#x available", actions[i]);
		P(label, sc(SECCOMP_GET_ACTION_AVAIL, 0, &actions[i]));
	}
	P("action avail with flags", sc(SECCOMP_GET_ACTION_AVAIL, 1, &actions[0]));
	P("action avail bad pointer", sc(SECCOMP_GET_ACTION_AVAIL, 0, (void *)8));
	uint16_t sizes[3] = { 0 };
	P("notif sizes", sc(SECCOMP_GET_NOTIF_SIZES, 0, sizes));
	printf("sizes: %u %u %u\n", sizes[0], sizes[1], sizes[2]);
	P("bad op", sc(99, 0, NULL));
	P("strict with flags", sc(SECCOMP_SET_MODE_STRICT, 1, NULL));
	P("PR_GET_SECCOMP", prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
	P("PR_SET_SECCOMP mode 7", prctl(PR_SET_SECCOMP, 7, 0, 0, 0));
	show_status();
}

static void refusals(void)
{
	struct sock_filter ret_allow = STMT(BPF_RET | BPF_K, RET_ALLOW);
	P("no_new_privs off, CAP_SYS_ADMIN on", install(&ret_allow, 1));
	/* Drop CAP_SYS_ADMIN: now no_new_privs is required. */
	struct { uint32_t v; int pid; } h = { 0x20080522, 0 };
	struct { uint32_t e, p, i; } d[2];
	syscall(SYS_capget, &h, d);
	d[0].e &= ~(1u << CAP_SYS_ADMIN);
	syscall(SYS_capset, &h, d);
	P("without either", install(&ret_allow, 1));
	P("PR_SET_SECCOMP without either", ({ struct sock_fprog p = { 1, &ret_allow };
					     prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &p, 0, 0); }));
	nnp();
	P("bad flags", install_flags(&ret_allow, 1, 1u << 10));
	P("length 0", install(&ret_allow, 0));
	static struct sock_filter big[4097];
	for (int i = 0; i < 4097; i++)
		big[i] = (struct sock_filter)STMT(BPF_RET | BPF_K, RET_ALLOW);
	P("length 4097", install(big, 4097));
	P("bad program pointer", install((struct sock_filter *)8, 1));
	P("bad fprog pointer", sc(SECCOMP_SET_MODE_FILTER, 0, (void *)8));
	struct sock_filter half[] = { STMT(BPF_LD | BPF_H | BPF_ABS, 0), ret_allow };
	P("half-word load", install(half, 2));
	struct sock_filter mod[] = { STMT(BPF_ALU | BPF_MOD | BPF_K, 3), ret_allow };
	P("modulo", install(mod, 2));
	struct sock_filter mis[] = { STMT(BPF_LD | BPF_W | BPF_ABS, 2), ret_allow };
	P("misaligned load", install(mis, 2));
	struct sock_filter past[] = { STMT(BPF_LD | BPF_W | BPF_ABS, 64), ret_allow };
	P("load past seccomp_data", install(past, 2));
	struct sock_filter last[] = { STMT(BPF_LD | BPF_W | BPF_ABS, 60), ret_allow };
	P("load of the last word", install(last, 2));
	struct sock_filter ja[] = { STMT(BPF_JMP | BPF_JA, 1), ret_allow };
	P("jump past the end", install(ja, 2));
	struct sock_filter jeq[] = { JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 1), ret_allow };
	P("conditional past the end", install(jeq, 2));
	struct sock_filter noret[] = { STMT(BPF_LD | BPF_W | BPF_ABS, 0) };
	P("no return", install(noret, 1));
	struct sock_filter div0[] = { STMT(BPF_ALU | BPF_DIV | BPF_K, 0), ret_allow };
	P("division by constant 0", install(div0, 2));
	struct sock_filter uninit[] = { STMT(BPF_LD | BPF_MEM, 3), ret_allow };
	P("memory read before write", install(uninit, 2));
	struct sock_filter cell[] = { STMT(BPF_ST, 16), ret_allow };
	P("memory cell 16", install(cell, 2));
	struct sock_filter ok[] = { STMT(BPF_ST, 3), STMT(BPF_LD | BPF_MEM, 3),
				    STMT(BPF_LD | BPF_W | BPF_LEN, 0), STMT(BPF_RET | BPF_A, 0) };
	/* Returns sizeof(struct seccomp_data) = 64: that's KILL_THREAD (action 0) with data
	 * 64 — so don't install it for real; check it in a child. */
	pid_t pid = fork();
	if (pid == 0) {
		install(ok, 4);
		syscall(SYS_getppid);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("length load returns 64 (KILL_THREAD): %s\n", wait_status(st));
	P("strict after a filter", ({ install(&ret_allow, 1); sc(SECCOMP_SET_MODE_STRICT, 0, NULL); }));
}

static void strict_mode(void)
{
	static const char msg[] = "in strict mode\n";
	fflush(stdout);
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_STRICT, 0, 0, 0) != 0)
		_exit(99);
	write(1, msg, sizeof msg - 1);
	syscall(SYS_exit, 3);
}

static void strict_getpid(void)
{
	fflush(stdout);
	sc(SECCOMP_SET_MODE_STRICT, 0, NULL);
	syscall(SYS_getpid);
	write(1, "survived\n", 9);
	syscall(SYS_exit, 0);
}

static void strict_exit_group(void)
{
	fflush(stdout);
	sc(SECCOMP_SET_MODE_STRICT, 0, NULL);
	syscall(SYS_exit_group, 0);
}

static void errno_action(void)
{
	nnp();
	P("install ERRNO(EPERM) for getppid", on_nr(SYS_getppid, RET_ERRNO | EPERM));
	P("getppid", syscall(SYS_getppid));
	P("install ERRNO(0) for getuid", on_nr(SYS_getuid, RET_ERRNO | 0));
	P("getuid", syscall(SYS_getuid));
	P("install ERRNO(5000) for getgid", on_nr(SYS_getgid, RET_ERRNO | 5000));
	errno = 0;
	long r = syscall(SYS_getgid);
	printf("getgid: %ld errno %d (capped at MAX_ERRNO)\n", r, errno);
	/* Arguments: dup(100) refused, any other dup allowed; a high argument word too. */
	struct sock_filter args[] = {
		STMT(BPF_LD | BPF_W | BPF_ABS, ARCH_OFF),
		JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
		STMT(BPF_RET | BPF_K, RET_KILL_PROCESS),
		STMT(BPF_LD | BPF_W | BPF_ABS, NR_OFF),
		JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_dup, 0, 5),
		STMT(BPF_LD | BPF_W | BPF_ABS, ARG0_HI_OFF),
		JUMP(BPF_JMP | BPF_JEQ | BPF_K, 1, 2, 0),
		STMT(BPF_LD | BPF_W | BPF_ABS, ARG0_OFF),
		JUMP(BPF_JMP | BPF_JEQ | BPF_K, 100, 0, 1),
		STMT(BPF_RET | BPF_K, RET_ERRNO | EXDEV),
		STMT(BPF_RET | BPF_K, RET_ALLOW),
	};
	P("install argument filter", install(args, sizeof args / sizeof *args));
	P("dup(100)", syscall(SYS_dup, 100));
	P("dup(101)", syscall(SYS_dup, 101));
	P("dup(1<<32 | 100)", syscall(SYS_dup, (1L << 32) | 100));
	P("TRACE without a tracer", ({ on_nr(SYS_getpgrp, RET_TRACE | 7); syscall(SYS_getpgrp); }));
	P("USER_NOTIF without a listener", ({ on_nr(SYS_getsid, RET_USER_NOTIF); syscall(SYS_getsid, 0); }));
	P("LOG allows", ({ on_nr(SYS_getegid, RET_LOG); syscall(SYS_getegid) >= 0 ? 0 : -1; }));
	P("flag LOG", ({ struct sock_filter a = STMT(BPF_RET | BPF_K, RET_ALLOW);
			 install_flags(&a, 1, SECCOMP_FILTER_FLAG_LOG); }));
	P("PR_GET_SECCOMP", prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
	show_status();
	/* An unrelated call still works. */
	printf("getpid positive: %d\n", syscall(SYS_getpid) > 0);
}

static volatile siginfo_t seen;
static volatile long seen_rax;
static volatile int seen_addr_is_rip;

static void on_sigsys(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;
	(void)sig;
	memcpy((void *)&seen, si, sizeof *si);
	seen_rax = uc->uc_mcontext.gregs[REG_RAX];
	seen_addr_is_rip = (uintptr_t)si->si_call_addr == (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
	/* The call's result, as the handler decides. */
	uc->uc_mcontext.gregs[REG_RAX] = 4242;
}

static void trap(void)
{
	struct sigaction sa = { 0 };
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSYS, &sa, NULL);
	nnp();
	P("install TRAP(0x42) for getppid", on_nr(SYS_getppid, RET_TRAP | 0x42));
	long r = syscall(SYS_getppid, 1, 2, 3);
	printf("getppid returned %ld\n", r);
	printf("signo %d code %d errno %#x syscall %d (getppid %d) arch %#x\n", seen.si_signo,
	       seen.si_code, seen.si_errno, seen.si_syscall, SYS_getppid, seen.si_arch);
	printf("rax in the handler is the call number: %d\n", seen_rax == SYS_getppid);
	printf("si_call_addr is the return address: %d\n", seen_addr_is_rip);
	/* TRAP with SIGSYS blocked: the process dies of SIGSYS. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGSYS);
	sigprocmask(SIG_BLOCK, &set, NULL);
	fflush(stdout);
	syscall(SYS_getppid);
	printf("survived a blocked SIGSYS\n");
}

static void trap_default(void)
{
	nnp();
	on_nr(SYS_getppid, RET_TRAP);
	syscall(SYS_getppid);
	printf("survived\n");
}

static void kill_process(void)
{
	nnp();
	P("install KILL_PROCESS for getppid", on_nr(SYS_getppid, RET_KILL_PROCESS));
	fflush(stdout);
	syscall(SYS_getppid);
	printf("survived\n");
}

static void kill_thread_single(void)
{
	nnp();
	on_nr(SYS_getppid, RET_KILL_THREAD);
	fflush(stdout);
	syscall(SYS_getppid);
	printf("survived\n");
}

static volatile int victim_tid;

static void *victim(void *arg)
{
	(void)arg;
	victim_tid = syscall(SYS_gettid);
	syscall(SYS_getppid);
	printf("thread survived\n");
	return NULL;
}

static void kill_thread_multi(void)
{
	nnp();
	on_nr(SYS_getppid, RET_KILL_THREAD);
	pthread_t th;
	pthread_create(&th, NULL, victim, NULL);
	/* Not pthread_join: a C library's thread bookkeeping doesn't expect a thread to
	 * vanish (musl's join waits forever, natively too). Wait for the tid to go. */
	for (int i = 0; i < 20000 && (!victim_tid || syscall(SYS_tgkill, getpid(), victim_tid, 0) == 0); i++)
		usleep(1000);
	printf("thread gone: %d\n", victim_tid && syscall(SYS_tgkill, getpid(), victim_tid, 0) == -1);
	printf("main thread goes on after its thread was killed\n");
	fflush(stdout);
	_exit(0);
}

static void stacked(void)
{
	nnp();
	/* Newest first; the lowest action wins, the newest among equals. */
	on_nr(SYS_getppid, RET_ERRNO | 1);
	on_nr(SYS_getppid, RET_ERRNO | 2);
	on_nr(SYS_getppid, RET_LOG);
	on_nr(SYS_getppid, RET_ALLOW);
	errno = 0;
	syscall(SYS_getppid);
	printf("ERRNO(1) then ERRNO(2), LOG, ALLOW: errno %s\n", errname(errno));
	on_nr(SYS_getuid, RET_TRACE);
	on_nr(SYS_getuid, RET_ERRNO | EXDEV);
	P("TRACE then ERRNO(EXDEV)", syscall(SYS_getuid));
	on_nr(SYS_getgid, RET_ERRNO | EXDEV);
	on_nr(SYS_getgid, RET_TRACE);
	P("ERRNO(EXDEV) then TRACE", syscall(SYS_getgid));
	show_status();
	on_nr(SYS_getegid, RET_KILL_PROCESS);
	on_nr(SYS_getegid, RET_ERRNO | 1);
	on_nr(SYS_getegid, RET_ALLOW);
	fflush(stdout);
	syscall(SYS_getegid);
	printf("survived KILL_PROCESS under ERRNO and ALLOW\n");
}

static void limits(void)
{
	nnp();
	static struct sock_filter big[4096];
	for (int i = 0; i < 4096; i++)
		big[i] = (struct sock_filter)STMT(BPF_RET | BPF_K, RET_ALLOW);
	int n = 0;
	long r;
	while ((r = install(big, 4096)) == 0 && n < 20)
		n++;
	printf("4096-instruction filters installed: %d, then %s\n", n, errname(errno));
	struct sock_filter small = STMT(BPF_RET | BPF_K, RET_ALLOW);
	r = install(&small, 1);
	printf("and a 1-instruction one: %ld %s\n", r, r ? errname(errno) : "");
}

static void inherit(void)
{
	nnp();
	on_nr(SYS_getppid, RET_ERRNO | EXDEV);
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		P("getppid in the child", syscall(SYS_getppid));
		show_status();
		fflush(stdout);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	/* execve keeps filters and no_new_privs. */
	fflush(stdout);
	execl(self_exe, self_exe, "after-exec", (char *)NULL);
	printf("exec: %s\n", errname(errno));
}

static void after_exec(void)
{
	P("getppid after execve", syscall(SYS_getppid));
	P("PR_GET_SECCOMP after execve", prctl(PR_GET_SECCOMP, 0, 0, 0, 0));
	P("PR_GET_NO_NEW_PRIVS after execve", prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
}

static pthread_barrier_t barrier;
static long thread_result;
static long thread_errno;
static volatile int thread_tid;
static int thread_installs;

static void *waiter(void *arg)
{
	(void)arg;
	thread_tid = syscall(SYS_gettid);
	if (thread_installs)
		on_nr(SYS_getgid, RET_ERRNO | 1);
	pthread_barrier_wait(&barrier); /* the main thread installs */
	pthread_barrier_wait(&barrier);
	errno = 0;
	thread_result = syscall(SYS_getppid);
	thread_errno = errno;
	return NULL;
}

static void one_thread(unsigned flags, const char *what)
{
	pthread_t th;
	pthread_barrier_init(&barrier, NULL, 2);
	pthread_create(&th, NULL, waiter, NULL);
	pthread_barrier_wait(&barrier);
	long r = install_flags((struct sock_filter[]){
		STMT(BPF_LD | BPF_W | BPF_ABS, NR_OFF),
		JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 0, 1),
		STMT(BPF_RET | BPF_K, RET_ERRNO | EXDEV),
		STMT(BPF_RET | BPF_K, RET_ALLOW) }, 4, flags);
	int e = errno;
	printf("%s: install %s\n", what,
	       r == 0 ? "0" : r == thread_tid ? "returned the thread's id" : errname(e));
	pthread_barrier_wait(&barrier);
	pthread_join(th, NULL);
	printf("%s: the other thread's getppid: %s\n", what,
	       thread_result == -1 ? errname(thread_errno) : "allowed");
	pthread_barrier_destroy(&barrier);
}

static void threads(void)
{
	nnp();
	one_thread(0, "no TSYNC");
	/* The next thread starts with the main thread's filter; the new one descends from
	 * it, so TSYNC brings the thread along. */
	one_thread(SECCOMP_FILTER_FLAG_TSYNC, "TSYNC over a thread with an older filter");
}

static void tsync_fresh(void)
{
	nnp();
	one_thread(SECCOMP_FILTER_FLAG_TSYNC, "TSYNC, no filters before");
}

static void tsync_conflict(void)
{
	nnp();
	thread_installs = 1;
	one_thread(SECCOMP_FILTER_FLAG_TSYNC, "TSYNC with the thread's own filter");
	thread_installs = 1;
	one_thread(SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_TSYNC_ESRCH,
		   "TSYNC_ESRCH with the thread's own filter");
}

static void *after_filter(void *arg)
{
	(void)arg;
	errno = 0;
	thread_result = syscall(SYS_getppid);
	thread_errno = errno;
	return NULL;
}

static void new_thread_inherits(void)
{
	nnp();
	on_nr(SYS_getppid, RET_ERRNO | EXDEV);
	pthread_t th;
	pthread_create(&th, NULL, after_filter, NULL);
	pthread_join(th, NULL);
	printf("a thread created after the filter: %s\n",
	       thread_result == -1 ? errname(thread_errno) : "allowed");
}

static void send_fd(int sock, int fd)
{
	char byte = 'f';
	struct iovec iov = { &byte, 1 };
	union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
	struct msghdr msg = { 0 };
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof u.buf;
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof fd);
	sendmsg(sock, &msg, 0);
}

static int recv_fd(int sock)
{
	char byte;
	struct iovec iov = { &byte, 1 };
	union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } u;
	struct msghdr msg = { 0 };
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = u.buf;
	msg.msg_controllen = sizeof u.buf;
	if (recvmsg(sock, &msg, 0) != 1)
		return -1;
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
	int fd = -1;
	if (c && c->cmsg_type == SCM_RIGHTS)
		memcpy(&fd, CMSG_DATA(c), sizeof fd);
	return fd;
}

/* The target: a filter sending getppid and getuid to a listener, whose descriptor goes
 * to the parent (the supervisor). Prints its calls' results only after the last one. */
static void notif_target(int sock, int calls)
{
	nnp();
	struct sock_filter f[] = {
		STMT(BPF_LD | BPF_W | BPF_ABS, NR_OFF),
		JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 1, 0),
		JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getuid, 0, 1),
		STMT(BPF_RET | BPF_K, RET_USER_NOTIF),
		STMT(BPF_RET | BPF_K, RET_ALLOW),
	};
	int fd = install_flags(f, 5, SECCOMP_FILTER_FLAG_NEW_LISTENER);
	errno = 0;
	long busy = install_flags(f, 5, SECCOMP_FILTER_FLAG_NEW_LISTENER);
	int busy_errno = errno;
	int cloexec = fcntl(fd, F_GETFD) & FD_CLOEXEC;
	send_fd(sock, fd);
	close(fd);
	long r[3];
	int e[3];
	for (int i = 0; i < calls; i++) {
		errno = 0;
		r[i] = i == 1 ? syscall(SYS_getuid) : syscall(SYS_getppid, 7, 8);
		e[i] = errno;
	}
	printf("target: listener fd %s, close-on-exec %d; a second listener: %ld %s\n",
	       fd >= 0 ? "ok" : errname(errno), !!cloexec, busy, errname(busy_errno));
	for (int i = 0; i < calls; i++)
		printf("target: call %d returned %s%s\n", i,
		       r[i] == -1 ? "-1 " : r[i] == 4242 ? "4242" : r[i] > 0 ? "a pid" : "other",
		       r[i] == -1 ? errname(e[i]) : "");
}

static long notif_ioctl(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg);
}

static void user_notif(void)
{
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	pid_t pid = fork();
	if (pid == 0) {
		notif_target(sv[1], 3);
		fflush(stdout);
		_exit(0);
	}
	int fd = recv_fd(sv[0]);
	printf("supervisor: got the listener: %d\n", fd >= 0);
	uint64_t bogus = 12345;
	P("ID_VALID of a bogus id", notif_ioctl(fd, NOTIF_ID_VALID, &bogus));
	P("SET_FLAGS SYNC_WAKE_UP", ioctl(fd, 0x40082104UL, 1UL));
	P("SET_FLAGS 2", ioctl(fd, 0x40082104UL, 2UL));
	P("an unknown ioctl", ioctl(fd, 0x40082199UL, 0UL));
	P("read", read(fd, &bogus, 8));
	struct pollfd pfd = { fd, POLLIN | POLLOUT, 0 };
	int n = poll(&pfd, 1, 20000);
	printf("poll: %d revents %#x\n", n, pfd.revents);
	struct seccomp_notif req;
	memset(&req, 0, sizeof req);
	req.flags = 1;
	P("RECV with a dirty buffer", notif_ioctl(fd, NOTIF_RECV, &req));
	memset(&req, 0, sizeof req);
	P("RECV", notif_ioctl(fd, NOTIF_RECV, &req));
	printf("notification: nr getppid %d arch %#x args %llu %llu pid is the target %d flags %u\n",
	       req.data.nr == SYS_getppid, req.data.arch, (unsigned long long)req.data.args[0],
	       (unsigned long long)req.data.args[1], req.pid == (uint32_t)pid, req.flags);
	pfd.revents = 0;
	poll(&pfd, 1, 0);
	printf("poll after RECV: revents %#x\n", pfd.revents);
	P("ID_VALID", notif_ioctl(fd, NOTIF_ID_VALID, &req.id));
	struct seccomp_notif_resp resp = { req.id, 0, 0, 2 };
	P("SEND with an unknown flag", notif_ioctl(fd, NOTIF_SEND, &resp));
	resp = (struct seccomp_notif_resp){ req.id, 1, 0, USER_NOTIF_FLAG_CONTINUE };
	P("SEND CONTINUE with a value", notif_ioctl(fd, NOTIF_SEND, &resp));
	resp = (struct seccomp_notif_resp){ req.id + 1000, 4242, 0, 0 };
	P("SEND to a bogus id", notif_ioctl(fd, NOTIF_SEND, &resp));
	resp = (struct seccomp_notif_resp){ req.id, 4242, 0, 0 };
	P("SEND 4242", notif_ioctl(fd, NOTIF_SEND, &resp));
	memset(&req, 0, sizeof req);
	P("RECV", notif_ioctl(fd, NOTIF_RECV, &req));
	printf("notification: nr getuid %d\n", req.data.nr == SYS_getuid);
	resp = (struct seccomp_notif_resp){ req.id, 0, -EXDEV, 0 };
	P("SEND -EXDEV", notif_ioctl(fd, NOTIF_SEND, &resp));
	memset(&req, 0, sizeof req);
	P("RECV", notif_ioctl(fd, NOTIF_RECV, &req));
	fflush(stdout);
	resp = (struct seccomp_notif_resp){ req.id, 0, 0, USER_NOTIF_FLAG_CONTINUE };
	/* Nothing printed from here until the target is gone: it prints now. */
	long r = notif_ioctl(fd, NOTIF_SEND, &resp);
	int st;
	waitpid(pid, &st, 0);
	printf("SEND CONTINUE: %ld\n", r);
	printf("-- target: %s\n", wait_status(st));
	/* No task uses the filter any more: the listener hangs up. */
	pfd.revents = 0;
	n = poll(&pfd, 1, 0);
	printf("poll after the target is reaped: %d revents %#x\n", n, pfd.revents);
	close(fd);
}

#define NOTIF_ADDFD 0x40182103UL
struct seccomp_notif_addfd { uint64_t id; uint32_t flags, srcfd, newfd, newfd_flags; };
#define ADDFD_FLAG_SETFD 1
#define ADDFD_FLAG_SEND 2

static void addfd_target(int sock)
{
	nnp();
	struct sock_filter f[] = {
		STMT(BPF_LD | BPF_W | BPF_ABS, NR_OFF),
		JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getppid, 1, 0),
		JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_getuid, 0, 1),
		STMT(BPF_RET | BPF_K, RET_USER_NOTIF),
		STMT(BPF_RET | BPF_K, RET_ALLOW),
	};
	int fd = install_flags(f, 5, SECCOMP_FILTER_FLAG_NEW_LISTENER);
	send_fd(sock, fd);
	close(fd);
	long got = syscall(SYS_getppid);
	long w1 = write(got, "hello ", 6);
	long r = syscall(SYS_getuid);
	int fdflags = fcntl(50, F_GETFD);
	long w2 = write(50, "world", 5);
	printf("target: getppid gave descriptor %ld, written %ld\n", got, w1);
	printf("target: getuid gave %ld; fd 50 close-on-exec %d, written %ld\n", r,
	       fdflags >= 0 && (fdflags & FD_CLOEXEC), w2);
}

static void notif_addfd(void)
{
	int sv[2], p[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	pid_t pid = fork();
	if (pid == 0) {
		addfd_target(sv[1]);
		fflush(stdout);
		_exit(0);
	}
	pipe(p);
	int fd = recv_fd(sv[0]);
	struct seccomp_notif req;
	memset(&req, 0, sizeof req);
	P("RECV", notif_ioctl(fd, NOTIF_RECV, &req));
	struct seccomp_notif_addfd add = { req.id, ADDFD_FLAG_SEND, p[1], 0, 0 };
	add.newfd_flags = 1;
	P("ADDFD with a bad newfd flag", notif_ioctl(fd, NOTIF_ADDFD, &add));
	add.newfd_flags = 0;
	add.newfd = 9;
	P("ADDFD newfd without SETFD", notif_ioctl(fd, NOTIF_ADDFD, &add));
	add.newfd = 0;
	add.srcfd = 999;
	P("ADDFD of a closed descriptor", notif_ioctl(fd, NOTIF_ADDFD, &add));
	add.srcfd = p[1];
	add.id = req.id + 77;
	P("ADDFD to a bogus id", notif_ioctl(fd, NOTIF_ADDFD, &add));
	add.id = req.id;
	long n = notif_ioctl(fd, NOTIF_ADDFD, &add);
	printf("ADDFD with SEND: %s\n", n > 2 ? "a descriptor" : errname(errno));
	memset(&req, 0, sizeof req);
	P("RECV", notif_ioctl(fd, NOTIF_RECV, &req));
	add = (struct seccomp_notif_addfd){ req.id, ADDFD_FLAG_SETFD, p[1], 50, O_CLOEXEC };
	P("ADDFD at 50", notif_ioctl(fd, NOTIF_ADDFD, &add));
	close(p[1]);
	fflush(stdout);
	struct seccomp_notif_resp resp = { req.id, 0, 0, 0 };
	long r = notif_ioctl(fd, NOTIF_SEND, &resp);
	int st;
	waitpid(pid, &st, 0);
	char buf[64] = { 0 };
	long got = read(p[0], buf, sizeof buf - 1);
	printf("SEND: %ld; the pipe carried %ld bytes: %s\n", r, got, buf);
	printf("-- target: %s\n", wait_status(st));
	close(fd);
}

static void notif_closed(void)
{
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	pid_t pid = fork();
	if (pid == 0) {
		notif_target(sv[1], 1);
		fflush(stdout);
		_exit(0);
	}
	int fd = recv_fd(sv[0]);
	struct seccomp_notif req;
	memset(&req, 0, sizeof req);
	P("RECV", notif_ioctl(fd, NOTIF_RECV, &req));
	fflush(stdout);
	/* Closing the listener answers the waiting call with ENOSYS. */
	close(fd);
	int st;
	waitpid(pid, &st, 0);
	printf("-- target: %s\n", wait_status(st));
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "after-exec") == 0) {
		after_exec();
		return 0;
	}
	run("queries", queries);
	run("refusals", refusals);
	run("strict mode", strict_mode);
	run("strict mode, getpid", strict_getpid);
	run("strict mode, exit_group", strict_exit_group);
	run("ERRNO and friends", errno_action);
	run("TRAP", trap);
	run("TRAP without a handler", trap_default);
	run("KILL_PROCESS", kill_process);
	run("KILL_THREAD, one thread", kill_thread_single);
	run("KILL_THREAD, two threads", kill_thread_multi);
	run("stacked filters", stacked);
	run("instruction limit", limits);
	run("fork and execve", inherit);
	run("threads", threads);
	run("TSYNC", tsync_fresh);
	run("TSYNC conflicts", tsync_conflict);
	run("new threads", new_thread_inherits);
	run("user notification", user_notif);
	run("user notification, listener closed", notif_closed);
	run("user notification, ADDFD", notif_addfd);
	return 0;
}
