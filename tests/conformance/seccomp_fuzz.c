/* Random seccomp filters, native against sandbox: the host kernel's checker and
 * interpreter are the reference for the sentry's. A fixed-seed generator makes 400
 * classic BPF programs (mostly from the opcodes seccomp allows, with small jumps,
 * loads of seccomp_data at random offsets and memory cells, so that a good share
 * pass the checker); each is installed in a fresh child with no_new_privs, and the
 * child then makes one getppid with fixed arguments. Printed per program: the
 * install's result and, if it went in, what the call did (returned, which errno, or
 * how the child died). Hostile programs must never hurt the sandbox itself.
 *
 * The child reports through shared memory before it tries to exit, because the
 * filter may refuse exit_group and exit too (musl's _exit then spins): the parent
 * kills it once it has reported. Core dumps are off. */
#include "conf.h"
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>

struct sock_filter { uint16_t code; uint8_t jt, jf; uint32_t k; };
struct sock_fprog { unsigned short len; struct sock_filter *filter; };

static uint64_t state = 0x243f6a8885a308d3ull;
static uint64_t next(void)
{
	state ^= state << 13;
	state ^= state >> 7;
	state ^= state << 17;
	return state;
}

/* What seccomp accepts, and a few classic opcodes it refuses. */
static const uint16_t codes[] = {
	0x20, 0x20, 0x20, 0x80, 0x81, 0x00, 0x01, 0x60, 0x61, 0x02, 0x03, 0x07, 0x87,
	0x04, 0x0c, 0x14, 0x1c, 0x24, 0x2c, 0x34, 0x3c, 0x44, 0x4c, 0x54, 0x5c, 0x64,
	0x6c, 0x74, 0x7c, 0x84, 0xa4, 0xac, 0x05, 0x15, 0x15, 0x1d, 0x25, 0x2d, 0x35,
	0x3d, 0x45, 0x4d, 0x06, 0x06, 0x16,
	0x28, 0x30, 0x40, 0x94, 0xb1, 0xc4, 0xff,
};

static const uint32_t rets[] = {
	0x7fff0000, 0x7ffc0000, 0x00050000, 0x00050001, 0x00050fff, 0x0005ffff, 0x7ff00000,
	0x7fc00000, 0x00030005, 0x00000000, 0x80000000, 0x12340000, 0x7fff1234,
};

static uint32_t gen_k(uint16_t code)
{
	uint64_t r = next();
	switch (code) {
	case 0x20: /* loads: mostly the fields a filter reads */
		return r % 4 ? (uint32_t)(r >> 8) % 17 * 4 : (uint32_t)(r >> 8) % 80;
	case 0x06:
		return rets[(r >> 8) % (sizeof rets / sizeof *rets)];
	case 0x60: case 0x61: case 0x02: case 0x03:
		return (uint32_t)(r >> 8) % 18;
	case 0x15: case 0x25: case 0x35: case 0x45:
		return r % 3 ? (uint32_t)(r >> 8) % 130 : (uint32_t)(r >> 8);
	default:
		return r % 2 ? (uint32_t)(r >> 8) % 40 : (uint32_t)(r >> 8);
	}
}

struct report { volatile int done; long ret; int err; };

int main(void)
{
	struct report *rep = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (rep == MAP_FAILED)
		return 1;
	int accepted = 0;
	for (int prog = 0; prog < 400; prog++) {
		struct sock_filter f[24];
		int len = 1 + next() % 20;
		for (int i = 0; i < len; i++) {
			uint16_t code = codes[next() % (sizeof codes / sizeof *codes)];
			uint64_t r = next();
			f[i] = (struct sock_filter){ code, (uint8_t)(r % 3), (uint8_t)((r >> 8) % 3), gen_k(code) };
		}
		if (next() % 8)
			f[len - 1] = (struct sock_filter){ 0x06, 0, 0, gen_k(0x06) };
		memset(rep, 0, sizeof *rep);
		fflush(stdout);
		pid_t pid = fork();
		if (pid == 0) {
			struct rlimit no_core = { 0, 0 };
			setrlimit(RLIMIT_CORE, &no_core);
			prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
			struct sock_fprog p = { (unsigned short)len, f };
			errno = 0;
			long r = syscall(SYS_seccomp, 1, 0, &p);
			if (r != 0) {
				rep->ret = r;
				rep->err = errno;
				rep->done = 2;
				syscall(SYS_exit_group, 0);
			}
			errno = 0;
			r = syscall(SYS_getppid, 1, 2, 3, 4, 5, 6);
			rep->ret = r;
			rep->err = errno;
			rep->done = 1;
			for (;;)
				syscall(SYS_exit_group, 0);
		}
		int st = 0, exited = 0;
		for (int i = 0; i < 20000 && !rep->done; i++) {
			if (waitpid(pid, &st, WNOHANG) == pid) {
				exited = 1;
				break;
			}
			nanosleep(&(struct timespec){ 0, 500000 }, NULL);
		}
		if (!exited) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
		}
		if (rep->done == 2) {
			printf("%3d: install %s\n", prog, errname(rep->err));
			continue;
		}
		accepted++;
		if (rep->done == 1)
			printf("%3d: installed; getppid %s\n", prog,
			       rep->ret == -1 ? errname(rep->err) : rep->ret > 0 ? "allowed" : "returned 0");
		else
			printf("%3d: installed; %s\n", prog, wait_status(st));
	}
	printf("accepted %d of 400\n", accepted);
	return 0;
}
