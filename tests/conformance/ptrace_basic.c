/* ptrace, the basics: PTRACE_TRACEME and the SIGTRAP after execve, waitpid's view of a
 * ptrace-stop, CONT, KILL, DETACH; PEEK/POKE of memory and of struct user; GETREGS,
 * SETREGS, GETFPREGS, SETFPREGS, GETREGSET/SETREGSET (NT_PRSTATUS, NT_PRFPREG,
 * NT_X86_XSTATE); GETSIGINFO/SETSIGINFO and signal injection or suppression at a
 * signal-delivery-stop. Prints properties only (no addresses or pids). */
#include "ptrace.h"
#include <elf.h>
#include <signal.h>
#include <stddef.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/user.h>

static volatile long global_word = 0x1122334455667788L;

static void stop_self(void)
{
	syscall(SYS_kill, getpid(), SIGSTOP);
}

static pid_t traced_child(void (*body)(void))
{
	pid_t pid = fork();
	if (pid == 0) {
		if (ptrace(PTRACE_TRACEME, 0, 0, 0) != 0)
			_exit(100);
		body();
		_exit(0);
	}
	return pid;
}




static char *self_path;

/* 1. TRACEME then execve: a SIGTRAP stop after the new program is in place. */
static void exec_body(void)
{
	char *argv[] = {self_path, "exit7", NULL};
	execv(self_path, argv);
	_exit(101);
}

static void test_traceme_exec(void)
{
	pid_t pid = traced_child(exec_body);
	wait_show("exec", pid);
	siginfo_t si;
	memset(&si, 0, sizeof si);
	err("getsiginfo", ptrace(PTRACE_GETSIGINFO, pid, 0, &si));
	printf("siginfo: signo %d code %d pid_is_child %d\n", si.si_signo, si.si_code,
	       si.si_pid == pid);
	struct user_regs_struct r;
	err("getregs", ptrace(PTRACE_GETREGS, pid, 0, &r));
	printf("after exec: orig_rax %lld rax %lld cs %#llx ss %#llx\n", (long long)r.orig_rax,
	       (long long)r.rax, (unsigned long long)r.cs, (unsigned long long)r.ss);
	errno = 0;
	long orig = ptrace(PTRACE_PEEKUSER, pid, offsetof(struct user, regs.orig_rax), 0);
	long rip = ptrace(PTRACE_PEEKUSER, pid, offsetof(struct user, regs.rip), 0);
	printf("peekuser: orig_rax %ld rip_matches %d errno %s\n", orig, rip == (long)r.rip,
	       errname(errno));
	errno = 0;
	long dr7 = ptrace(PTRACE_PEEKUSER, pid, offsetof(struct user, u_debugreg[7]), 0);
	printf("peekuser dr7: %ld %s\n", dr7, errname(errno));
	err("peekuser odd offset", ptrace(PTRACE_PEEKUSER, pid, 3, 0));
	err("peekuser past struct user", ptrace(PTRACE_PEEKUSER, pid, 4096, 0));
	err("cont bad signal", ptrace(PTRACE_CONT, pid, 0, 100));
	err("cont", ptrace(PTRACE_CONT, pid, 0, 0));
	wait_show("exec end", pid);
}

/* 2. Memory: PEEKDATA/POKEDATA of a global, POKETEXT of code, faults as EIO. */
static int patched(void) __attribute__((noinline));
static int patched(void)
{
	return 1;
}

static void mem_body(void)
{
	stop_self();
	/* The tracer wrote the word and patched patched() to return 42. */
	int ok = global_word == 0x0102030405060708L;
	_exit((ok ? 10 : 20) + (patched() == 42));
}

static void test_memory(void)
{
	pid_t pid = traced_child(mem_body);
	wait_show("mem", pid);
	errno = 0;
	long w = ptrace(PTRACE_PEEKDATA, pid, &global_word, 0);
	printf("peekdata: %#lx %s\n", w, errname(errno));
	err("pokedata", ptrace(PTRACE_POKEDATA, pid, &global_word, 0x0102030405060708L));
	errno = 0;
	w = ptrace(PTRACE_PEEKDATA, pid, &global_word, 0);
	printf("peekdata again: %#lx %s\n", w, errname(errno));
	/* mov $42, %eax; ret */
	unsigned char code[8];
	long text = ptrace(PTRACE_PEEKTEXT, pid, (void *)patched, 0);
	memcpy(code, &text, 8);
	code[0] = 0xb8;
	code[1] = 42;
	code[2] = code[3] = code[4] = 0;
	code[5] = 0xc3;
	memcpy(&text, code, 8);
	err("poketext", ptrace(PTRACE_POKETEXT, pid, (void *)patched, text));
	printf("own text unchanged: %d\n", patched());
	err("peekdata null", ptrace(PTRACE_PEEKDATA, pid, 0, 0));
	err("pokedata null", ptrace(PTRACE_POKEDATA, pid, 0, 0));
	err("cont", ptrace(PTRACE_CONT, pid, 0, 0));
	wait_show("mem end", pid);
}

/* 3. Registers: SETREGS changes the stopped call's result; POKEUSER too. */
static void regs_body(void)
{
	long r = syscall(SYS_kill, getpid(), SIGSTOP);
	long r2 = syscall(SYS_kill, getpid(), SIGSTOP);
	_exit((r == 42 ? 1 : 0) + (r2 == 43 ? 2 : 0));
}

static void test_regs(void)
{
	pid_t pid = traced_child(regs_body);
	wait_show("regs", pid);
	struct user_regs_struct r;
	err("getregs", ptrace(PTRACE_GETREGS, pid, 0, &r));
	printf("at stop: orig_rax %lld rax %lld\n", (long long)r.orig_rax, (long long)r.rax);
	r.rax = 42;
	err("setregs", ptrace(PTRACE_SETREGS, pid, 0, &r));
	struct user_regs_struct bad = r;
	bad.fs_base = 0xffff800000000000ULL;
	err("setregs bad fs_base", ptrace(PTRACE_SETREGS, pid, 0, &bad));
	struct iovec iov = {&r, sizeof r};
	memset(&r, 0, sizeof r);
	err("getregset prstatus", ptrace(PTRACE_GETREGSET, pid, NT_PRSTATUS, &iov));
	printf("regset: len %zu rax %lld\n", iov.iov_len, (long long)r.rax);
	err("cont", ptrace(PTRACE_CONT, pid, 0, 0));
	wait_show("regs 2", pid);
	err("pokeuser rax",
	    ptrace(PTRACE_POKEUSER, pid, offsetof(struct user, regs.rax), 43));
	err("pokeuser dr7", ptrace(PTRACE_POKEUSER, pid, offsetof(struct user, u_debugreg[7]), 0));
	err("pokeuser u_tsize", ptrace(PTRACE_POKEUSER, pid, offsetof(struct user, u_tsize), 1));
	err("cont", ptrace(PTRACE_CONT, pid, 0, 0));
	wait_show("regs end", pid);
}

/* 4. FPU: xmm0 read and written through GETFPREGS/SETFPREGS and the regsets. */
static void fpu_body(void)
{
	static const uint32_t pattern[4] = {0x11111111, 0x22222222, 0x33333333, 0x44444444};
	uint32_t after[4], after2[4];
	long nr = SYS_kill, pid = getpid(), sig = SIGSTOP, ret;
	__asm__ volatile("movdqu (%[p]), %%xmm0\n\t"
			 "syscall\n\t"
			 "movdqu %%xmm0, (%[a])\n\t"
			 : "=a"(ret)
			 : "a"(nr), "D"(pid), "S"(sig), [p] "r"(pattern), [a] "r"(after)
			 : "rcx", "r11", "memory", "xmm0");
	nr = SYS_kill;
	__asm__ volatile("syscall\n\t"
			 "movdqu %%xmm0, (%[a])\n\t"
			 : "=a"(ret)
			 : "a"(nr), "D"(pid), "S"(sig), [a] "r"(after2)
			 : "rcx", "r11", "memory", "xmm0");
	int code = 0;
	if (after[0] == 0xaaaaaaaa && after[3] == 0x44444444)
		code |= 1;
	if (after2[1] == 0xbbbbbbbb && after2[0] == 0xaaaaaaaa)
		code |= 2;
	_exit(code);
}

static void test_fpu(void)
{
	pid_t pid = traced_child(fpu_body);
	wait_show("fpu", pid);
	struct user_fpregs_struct f;
	err("getfpregs", ptrace(PTRACE_GETFPREGS, pid, 0, &f));
	printf("xmm0: %08x %08x %08x %08x mxcsr %#x cwd %#x\n", f.xmm_space[0], f.xmm_space[1],
	       f.xmm_space[2], f.xmm_space[3], f.mxcsr, f.cwd);
	struct user_fpregs_struct g;
	struct iovec iov = {&g, sizeof g};
	err("getregset prfpreg", ptrace(PTRACE_GETREGSET, pid, NT_PRFPREG, &iov));
	printf("prfpreg: len %zu same %d\n", iov.iov_len, memcmp(&f, &g, sizeof f) == 0);
	f.xmm_space[0] = 0xaaaaaaaa;
	err("setfpregs", ptrace(PTRACE_SETFPREGS, pid, 0, &f));
	struct user_fpregs_struct bad = f;
	bad.mxcsr = 0xffffffff;
	err("setfpregs bad mxcsr", ptrace(PTRACE_SETFPREGS, pid, 0, &bad));
	err("cont", ptrace(PTRACE_CONT, pid, 0, 0));
	wait_show("fpu 2", pid);
	static unsigned char xs[8192] __attribute__((aligned(64)));
	iov.iov_base = xs;
	iov.iov_len = sizeof xs;
	err("getregset xstate", ptrace(PTRACE_GETREGSET, pid, NT_X86_XSTATE, &iov));
	uint32_t x0[4];
	memcpy(x0, xs + 160, 16);
	uint64_t xsave_bv;
	memcpy(&xsave_bv, xs + 512, 8);
	printf("xstate: len_ok %d xmm0 %08x %08x sse_bv %d\n",
	       iov.iov_len >= 576 && iov.iov_len <= sizeof xs, x0[0], x0[1],
	       (int)(xsave_bv & 2) >> 1);
	uint64_t sw_xcr0;
	memcpy(&sw_xcr0, xs + 464, 8);
	int sw_rest_zero = 1;
	for (int k = 472; k < 512; k++)
		sw_rest_zero &= xs[k] == 0;
	printf("xstate sw bytes: xcr0 has x87+sse %d, rest zero %d\n", (int)((sw_xcr0 & 3) == 3),
	       sw_rest_zero);
	x0[1] = 0xbbbbbbbb;
	memcpy(xs + 160, x0, 16);
	xsave_bv |= 2;
	memcpy(xs + 512, &xsave_bv, 8);
	err("setregset xstate", ptrace(PTRACE_SETREGSET, pid, NT_X86_XSTATE, &iov));
	struct iovec bogus = {xs, sizeof xs};
	err("getregset bad note", ptrace(PTRACE_GETREGSET, pid, 0x999, &bogus));
	err("cont", ptrace(PTRACE_CONT, pid, 0, 0));
	wait_show("fpu end", pid);
}

/* 5. Signal-delivery-stops: suppress, replace, and SETSIGINFO. */
static volatile int got_usr2, usr2_code, usr1_code, usr1_errno;

static void on_usr2(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	got_usr2++;
	usr2_code = si->si_code;
}

static void on_usr1(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	usr1_code = si->si_code;
	usr1_errno = si->si_errno;
}

static void sig_body(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_usr2;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGUSR2, &sa, NULL);
	sa.sa_sigaction = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	kill(getpid(), SIGTERM); /* suppressed by the tracer */
	kill(getpid(), SIGUSR1); /* replaced with SIGUSR2 */
	kill(getpid(), SIGUSR1); /* siginfo rewritten */
	_exit((got_usr2 == 1) + 2 * (usr2_code == SI_USER) + 4 * (usr1_code == -60) +
	      8 * (usr1_errno == 7));
}

static void test_signals(void)
{
	pid_t pid = traced_child(sig_body);
	wait_show("sig term", pid);
	siginfo_t si;
	memset(&si, 0, sizeof si);
	err("getsiginfo", ptrace(PTRACE_GETSIGINFO, pid, 0, &si));
	printf("siginfo: signo %d code %d from_child %d\n", si.si_signo, si.si_code,
	       si.si_pid == pid);
	err("cont (suppress)", ptrace(PTRACE_CONT, pid, 0, 0));
	wait_show("sig usr1", pid);
	err("cont (replace)", ptrace(PTRACE_CONT, pid, 0, SIGUSR2));
	wait_show("sig usr1 again", pid);
	memset(&si, 0, sizeof si);
	ptrace(PTRACE_GETSIGINFO, pid, 0, &si);
	si.si_code = -60;
	si.si_errno = 7;
	err("setsiginfo", ptrace(PTRACE_SETSIGINFO, pid, 0, &si));
	memset(&si, 0, sizeof si);
	ptrace(PTRACE_GETSIGINFO, pid, 0, &si);
	printf("siginfo now: code %d errno %d\n", si.si_code, si.si_errno);
	err("cont (deliver)", ptrace(PTRACE_CONT, pid, 0, SIGUSR1));
	wait_show("sig end", pid);
}

/* 6. KILL and DETACH; requests on a process not traced by the caller. */
static void sleeper_body(void)
{
	stop_self();
	_exit(3);
}

static void test_kill_detach(void)
{
	pid_t pid = traced_child(sleeper_body);
	wait_show("kill", pid);
	err("kill", ptrace(PTRACE_KILL, pid, 0, 0));
	wait_show("kill end", pid);

	pid = traced_child(sleeper_body);
	wait_show("detach", pid);
	err("detach", ptrace(PTRACE_DETACH, pid, 0, 0));
	err("peek after detach", ptrace(PTRACE_PEEKDATA, pid, &global_word, 0));
	wait_show("detach end", pid);

	err("peek self", ptrace(PTRACE_PEEKDATA, getpid(), &global_word, 0));
	err("cont nobody", ptrace(PTRACE_CONT, 999999, 0, 0));
	pid = traced_child(sleeper_body);
	wait_show("traceme twice", pid);
	ptrace(PTRACE_CONT, pid, 0, 0);
	wait_show("traceme twice end", pid);
}

static void twice_body(void)
{
	long r = ptrace(PTRACE_TRACEME, 0, 0, 0);
	_exit(r == -1 && errno == EPERM ? 4 : 5);
}

int main(int argc, char **argv)
{
	self_path = argv[0];
	if (argc > 1 && strcmp(argv[1], "exit7") == 0)
		return 7;
	test_traceme_exec();
	test_memory();
	test_regs();
	test_fpu();
	test_signals();
	test_kill_detach();
	pid_t pid = traced_child(twice_body);
	wait_show("traceme again", pid);
	return 0;
}
