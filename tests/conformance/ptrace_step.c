/* ptrace, PTRACE_SINGLESTEP: instruction by instruction through a known sequence (the
 * trap's siginfo, RIP after each step), over a `syscall` instruction, and a breakpoint
 * (int3 written with POKETEXT) then stepping past it as debuggers do. */
#include "conf.h"
#include <signal.h>
#include <stddef.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/user.h>

static long pt(long req, pid_t pid, unsigned long addr, unsigned long data)
{
	return syscall(SYS_ptrace, req, pid, addr, data);
}

extern char seq_start[], seq_end[], sys_insn[], bp_here[];

/* Eight plain instructions, a getpid system call, then a spot for a breakpoint. */
__asm__(".text\n"
	".globl seq_start, seq_end, sys_insn, bp_here\n"
	"seq_fn:\n"
	"seq_start:\n"
	"  mov $1, %rbx\n"
	"  add $2, %rbx\n"
	"  imul $3, %rbx\n"
	"  nop\n"
	"  xor %rcx, %rcx\n"
	"  inc %rcx\n"
	"  lea 5(%rbx,%rcx), %rdx\n"
	"  nop\n"
	"seq_end:\n"
	"  mov $39, %eax\n"
	"sys_insn:\n"
	"  syscall\n"
	"  nop\n"
	"bp_here:\n"
	"  mov $7, %rbx\n"
	"  nop\n"
	"  ret\n");

void seq_fn(void);

static void show(const char *what, int st)
{
	if (WIFSTOPPED(st))
		printf("%s: stopped by %d\n", what, WSTOPSIG(st));
	else if (WIFEXITED(st))
		printf("%s: exited %d\n", what, WEXITSTATUS(st));
	else
		printf("%s: status %#x\n", what, st);
}

static long reg(pid_t pid, size_t off)
{
	long v = 0;
	pt(PTRACE_PEEKUSER, pid, off, (unsigned long)&v);
	return v;
}

int main(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		pt(PTRACE_TRACEME, 0, 0, 0);
		syscall(SYS_kill, getpid(), SIGSTOP);
		seq_fn();
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	show("start", st);
	/* Run to seq_start with a breakpoint there. */
	long orig = 0;
	pt(PTRACE_PEEKTEXT, pid, (unsigned long)seq_start, (unsigned long)&orig);
	long patched = (orig & ~0xffL) | 0xcc;
	pt(PTRACE_POKETEXT, pid, (unsigned long)seq_start, patched);
	pt(PTRACE_CONT, pid, 0, 0);
	waitpid(pid, &st, 0);
	show("breakpoint", st);
	long rip = reg(pid, offsetof(struct user, regs.rip));
	printf("rip after int3 - seq_start: %ld\n", rip - (long)seq_start);
	siginfo_t si;
	pt(PTRACE_GETSIGINFO, pid, 0, (unsigned long)&si);
	printf("int3 siginfo: signo %d code %#x\n", si.si_signo, si.si_code);
	/* Put the byte back and back up over it, as a debugger does. */
	pt(PTRACE_POKETEXT, pid, (unsigned long)seq_start, orig);
	pt(PTRACE_POKEUSER, pid, offsetof(struct user, regs.rip), (unsigned long)seq_start);
	long r = pt(PTRACE_SINGLESTEP, pid, 0, 0);
	printf("singlestep: %ld\n", r);
	if (r != 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
		return 0;
	}
	int steps = 0;
	for (;;) {
		waitpid(pid, &st, 0);
		if (!WIFSTOPPED(st) || WSTOPSIG(st) != SIGTRAP) {
			show("unexpected", st);
			break;
		}
		rip = reg(pid, offsetof(struct user, regs.rip));
		steps++;
		if (steps == 1) {
			pt(PTRACE_GETSIGINFO, pid, 0, (unsigned long)&si);
			printf("step siginfo: signo %d code %d addr_is_rip %d\n", si.si_signo,
			       si.si_code, (long)si.si_addr == rip);
		}
		printf("step %d: +%ld rbx %ld\n", steps, rip - (long)seq_start,
		       reg(pid, offsetof(struct user, regs.rbx)));
		if (rip == (long)sys_insn)
			break;
		pt(PTRACE_SINGLESTEP, pid, 0, 0);
	}
	/* Over the system call. */
	pt(PTRACE_SINGLESTEP, pid, 0, 0);
	waitpid(pid, &st, 0);
	show("over syscall", st);
	rip = reg(pid, offsetof(struct user, regs.rip));
	printf("after syscall: +%ld rax_is_pid %d\n", rip - (long)sys_insn,
	       reg(pid, offsetof(struct user, regs.rax)) == pid);
	pt(PTRACE_GETSIGINFO, pid, 0, (unsigned long)&si);
	printf("syscall step siginfo: signo %d code %d\n", si.si_signo, si.si_code);
	pt(PTRACE_SINGLESTEP, pid, 0, 0);
	waitpid(pid, &st, 0);
	rip = reg(pid, offsetof(struct user, regs.rip));
	printf("next: at bp_here %d\n", rip == (long)bp_here);
	pt(PTRACE_CONT, pid, 0, 0);
	waitpid(pid, &st, 0);
	show("end", st);
	return 0;
}
