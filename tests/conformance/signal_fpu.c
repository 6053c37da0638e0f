/* The FPU and vector state across signal delivery, many times over (under the
 * sandbox a delivery may be made by the ring poller, with the trampoline saving
 * and loading the state itself, or by the thread's exit path: both must agree
 * with Linux):
 *  - the registers a thread holds when a signal arrives are in the frame
 *    (uc_mcontext.fpregs), and come back after the handler, whatever the handler
 *    did to its own registers and MXCSR;
 *  - a change the handler makes to the frame's state is what rt_sigreturn loads;
 *  - ymm upper halves survive the handler (AVX only);
 *  - signals sent while the thread creates and joins threads all arrive, and the
 *    threads' results are right.
 * usage: signal_fpu [xmm|ymm|threads] (no argument: xmm and ymm) */
#include "conf.h"
#include <cpuid.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define ROUNDS 3000

static unsigned char in[16 * 32] __attribute__((aligned(32)));
static unsigned char out[16 * 32] __attribute__((aligned(32)));
static unsigned char junk[16 * 32] __attribute__((aligned(32)));

#define LOADX(n) "movdqu " #n "*16(%[i]), %%xmm" #n "\n"
#define STOREX(n) "movdqu %%xmm" #n ", " #n "*16(%[o])\n"
#define LOADY(n) "vmovdqu " #n "*32(%[i]), %%ymm" #n "\n"
#define STOREY(n) "vmovdqu %%ymm" #n ", " #n "*32(%[o])\n"
#define ALL(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15)
#define XCLOBBER "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", \
	"xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

static long pid, tid;
static volatile int frame_ok, frame_bad, handled;
static int avx;

/* The handler: checks the frame against `in`, changes the frame's xmm5 (which
 * rt_sigreturn must load), then clobbers its own vector registers and MXCSR. */
static void handler(int sig, siginfo_t *si, void *ucv)
{
	(void)sig;
	(void)si;
	ucontext_t *uc = ucv;
	/* The FXSAVE layout (glibc and musl name its struct differently): xmm0 at 160. */
	unsigned char *fp = (unsigned char *)uc->uc_mcontext.fpregs;
	int ok = fp != NULL;
	for (int r = 0; ok && r < 16; r++)
		ok = !memcmp(fp + 160 + 16 * r, in + r * (avx ? 32 : 16), 16);
	if (ok)
		frame_ok++;
	else
		frame_bad++;
	if (fp) {
		unsigned x5;
		memcpy(&x5, fp + 160 + 16 * 5, 4);
		x5 ^= 0x5a5a5a5au;
		memcpy(fp + 160 + 16 * 5, &x5, 4);
	}
	unsigned mx = 0x7f80; /* all masked, round toward zero */
	__asm__ volatile("ldmxcsr %0" : : "m"(mx));
	if (avx)
		__asm__ volatile(ALL(LOADY) : : [i] "r"(junk) : "memory", XCLOBBER);
	else
		__asm__ volatile(ALL(LOADX) : : [i] "r"(junk) : "memory", XCLOBBER);
	handled++;
}

/* Loads the registers, makes SIGUSR1 pending and unblocks it with raw system
 * calls (the handler runs after the last one), then stores the registers. */
static void round_trip(void)
{
	static const unsigned long usr1 = 1ul << (SIGUSR1 - 1);
	long r1 = SYS_tgkill, r2 = SYS_rt_sigprocmask;
	if (avx)
		__asm__ volatile(ALL(LOADY)
				 "mov %[r1], %%rax\n mov %[pid], %%rdi\n mov %[tid], %%rsi\n mov %[sig], %%rdx\n syscall\n"
				 "mov %[r2], %%rax\n mov %[how], %%rdi\n mov %[set], %%rsi\n xor %%edx, %%edx\n mov $8, %%r10d\n syscall\n"
				 ALL(STOREY)
				 : : [i] "r"(in), [o] "r"(out), [r1] "m"(r1), [r2] "m"(r2), [pid] "m"(pid),
				   [tid] "m"(tid), [sig] "i"(SIGUSR1), [how] "i"(SIG_UNBLOCK), [set] "r"(&usr1)
				 : "memory", "rax", "rcx", "rdx", "rsi", "rdi", "r10", "r11", XCLOBBER);
	else
		__asm__ volatile(ALL(LOADX)
				 "mov %[r1], %%rax\n mov %[pid], %%rdi\n mov %[tid], %%rsi\n mov %[sig], %%rdx\n syscall\n"
				 "mov %[r2], %%rax\n mov %[how], %%rdi\n mov %[set], %%rsi\n xor %%edx, %%edx\n mov $8, %%r10d\n syscall\n"
				 ALL(STOREX)
				 : : [i] "r"(in), [o] "r"(out), [r1] "m"(r1), [r2] "m"(r2), [pid] "m"(pid),
				   [tid] "m"(tid), [sig] "i"(SIGUSR1), [how] "i"(SIG_UNBLOCK), [set] "r"(&usr1)
				 : "memory", "rax", "rcx", "rdx", "rsi", "rdi", "r10", "r11", XCLOBBER);
}

static int has_avx(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return 0;
	if (!(c & (1u << 27)) || !(c & (1u << 28)))
		return 0;
	unsigned lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (lo & 6) == 6;
}

static void vectors(int use_avx)
{
	avx = use_avx;
	pid = getpid();
	tid = syscall(SYS_gettid);
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = handler;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGUSR1, &sa, NULL);
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	int regs_ok = 0, mxcsr_ok = 0, changed_ok = 0;
	unsigned mx_before;
	__asm__ volatile("stmxcsr %0" : "=m"(mx_before));
	for (int round = 0; round < ROUNDS; round++) {
		sigprocmask(SIG_BLOCK, &usr1, NULL);
		for (unsigned i = 0; i < sizeof in; i++) {
			in[i] = (unsigned char)(i * 7 + round * 13 + 1);
			junk[i] = (unsigned char)~in[i];
		}
		round_trip();
		unsigned mx;
		__asm__ volatile("stmxcsr %0" : "=m"(mx));
		mxcsr_ok += mx == mx_before;
		/* xmm5's low dword changed by the handler through the frame; all else as loaded. */
		unsigned expect5;
		memcpy(&expect5, in + 5 * (avx ? 32 : 16), 4);
		expect5 ^= 0x5a5a5a5au;
		unsigned got5;
		memcpy(&got5, out + 5 * (avx ? 32 : 16), 4);
		changed_ok += got5 == expect5;
		memcpy(out + 5 * (avx ? 32 : 16), in + 5 * (avx ? 32 : 16), 4);
		regs_ok += !memcmp(in, out, avx ? 16 * 32 : 16 * 16);
	}
	printf("%s: handled %d of %d, frame right %d (wrong %d), registers back %d, "
	       "frame change loaded %d, MXCSR back %d\n",
	       avx ? "ymm" : "xmm", handled, ROUNDS, frame_ok, frame_bad, regs_ok, changed_ok,
	       mxcsr_ok);
	handled = frame_ok = frame_bad = 0;
	sigprocmask(SIG_UNBLOCK, &usr1, NULL);
}

/* Signals landing while the main thread creates and joins threads. */
static atomic_int rt_handled, rt_sent, sender_done;
static long main_tid;

static void rt_handler(int sig) { (void)sig; atomic_fetch_add(&rt_handled, 1); }

static void *sender(void *arg)
{
	(void)arg;
	for (int i = 0; i < 300; i++) {
		/* pthread_sigqueue, which musl lacks. */
		siginfo_t si;
		memset(&si, 0, sizeof si);
		si.si_signo = SIGRTMIN;
		si.si_code = SI_QUEUE;
		si.si_pid = getpid();
		si.si_uid = getuid();
		si.si_value.sival_int = i;
		if (syscall(SYS_rt_tgsigqueueinfo, getpid(), main_tid, SIGRTMIN, &si) == 0)
			atomic_fetch_add(&rt_sent, 1);
		/* At most a few queued at once (RLIMIT_SIGPENDING), each landing somewhere
		 * in the other thread's create and join. */
		while (atomic_load(&rt_sent) - atomic_load(&rt_handled) > 4)
			sched_yield();
	}
	atomic_store(&sender_done, 1);
	return NULL;
}

static void *child(void *arg) { return (void *)((long)arg * 3 + 1); }

static void threads(void)
{
	main_tid = syscall(SYS_gettid);
	signal(SIGRTMIN, rt_handler);
	pthread_t s;
	pthread_create(&s, NULL, sender, NULL);
	long created = 0, right = 0;
	while (!atomic_load(&sender_done) || created < 100) {
		pthread_t t;
		if (pthread_create(&t, NULL, child, (void *)created) != 0)
			break;
		void *res;
		pthread_join(t, &res);
		right += (long)res == created * 3 + 1;
		created++;
	}
	pthread_join(s, NULL);
	while (atomic_load(&rt_handled) < atomic_load(&rt_sent))
		sched_yield();
	printf("threads: results right %s, signals handled %s\n", right == created ? "all" : "NOT all",
	       atomic_load(&rt_handled) == atomic_load(&rt_sent) && atomic_load(&rt_sent) == 300 ? "300 of 300" : "WRONG");
}

int main(int argc, char **argv)
{
	const char *what = argc > 1 ? argv[1] : "";
	if (!*what || !strcmp(what, "xmm"))
		vectors(0);
	if ((!*what || !strcmp(what, "ymm")) && has_avx())
		vectors(1);
	if (!strcmp(what, "threads"))
		threads();
	return 0;
}
