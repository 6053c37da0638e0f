/* syscall_fuzz: hostile-input robustness test of a system call layer.
 *
 *   syscall_fuzz SEED ITERATIONS [v]
 *
 * Makes ITERATIONS raw system calls chosen by a deterministic PRNG seeded
 * with SEED: numbers 0..460 (a few out of range or with garbage in the upper
 * 32 bits of rax), each argument drawn from a mix of 0, 1, -1, small ints,
 * random 32/64-bit values, edge values, pointers into a private 64 KiB
 * scratch region (including pointers near its end, so ranges cross into the
 * unmapped guard page after it), a read-only page, kernel addresses,
 * non-canonical addresses and NULL. Pointer-carrying structures (iovecs,
 * timespecs, sigactions, msghdrs, strings, "pointer soup") live at the start
 * of the scratch region and are refreshed before every call. Pointers also
 * aim at the pages the sandbox's KVM platform keeps in every address space
 * (the syscall trampoline, the vCPU's shared page, doorbell and PVM page in
 * the reserved top slot of user space, 0x7f80_0000_0000 and up; the
 * supervisor-only stubs, IDT, GDTs and ring-0 stacks at 0xffff_ff80_0000_0000),
 * at ranges straddling the end of user space into that slot, and, for
 * memory-management calls, at those pages themselves: the sentry must treat
 * them as unmapped (EFAULT, ENOMEM), never read, write, map or unmap them.
 * Under SYSCALL_FUZZ_SANDBOXED=1 an mmap or mremap that returns an address in
 * the reserved slot ends the run with exit code 5.
 *
 * The sequence of calls and arguments depends only on SEED (never on what a
 * call returned), so a run can be repeated exactly; with the third argument
 * "v" every call is logged on stdout before it is made ("@call I rax a0..a5")
 * and its result after ("@ret I value"), which names the call that killed or
 * hung the process under test.
 *
 * Path arguments only ever point at a few fixed relative names ("",
 * ".", "fuzz-a", "d/f", ...; never "..") or at unreadable memory, plus
 * "/proc/self/exe" for calls that only look (stat, access, readlink):
 * nothing outside the working directory ($SYSCALL_FUZZ_CHDIR when set) is
 * ever named. Random bytes in the scratch region contain no '.' or '/'.
 *
 * At the end it prints "survived N calls" on its own line and exits 0.
 * Other exit codes: 2 usage or refusal, 3 the scratch region could not be
 * restored with mmap(MAP_FIXED), 4 a system call changed an argument
 * register (Linux preserves everything but rax, rcx and r11), 5 (sandboxed)
 * an mmap or mremap returned an address in the platform's reserved slot.
 *
 * Exclusions keep the program from killing itself or blocking by design:
 * no exit/exit_group/rt_sigreturn/execve/fork/clone, no signal sending, no
 * sleeping or waiting calls, no calls that create descriptors whose reads
 * block (pipes, sockets, eventfd, timerfd, signalfd, inotify, userfaultfd,
 * fanotify), no timers or rlimits that would raise a signal later, no
 * seccomp / syscall user dispatch. Memory-management calls get only
 * addresses inside the scratch region or a 256 KiB "playground" (with
 * lengths that stay inside them) or garbage (unaligned, below 64 KiB,
 * kernel, non-canonical). The scratch region is rebuilt after each of them;
 * the playground never is, so its mappings get ever more fragmented (it is
 * also a pointer target, so copies cross those fragments). Descriptor 1 is
 * never closed or replaced, and nothing is written to descriptor 2 (stderr
 * belongs to the runtime).
 * All pointers that could land in the program's own image, heap or stack
 * are replaced with kernel addresses, so any write lands in the scratch
 * region or fails with EFAULT.
 *
 * NEVER RUN THIS NATIVELY AS ROOT: it makes random privileged calls
 * (settimeofday, mount, syslog, process_vm_writev on random pids...). It
 * refuses to run with euid 0 unless SYSCALL_FUZZ_SANDBOXED=1 is set, which
 * the robustness test sets for runs inside the sandbox. Natively, run it as
 * an unprivileged user with stdin </dev/null and stdout/stderr not a tty.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/auxv.h>

typedef uint64_t u64;

#define PAGE 4096UL
#define SCRATCH_PAGES 16
#define SCRATCH_SIZE (SCRATCH_PAGES * PAGE)
/* Arena: [scratch: 16 pages RW][guard1: unmapped][ro: PROT_READ][guard2: unmapped] */
#define ARENA_PAGES (SCRATCH_PAGES + 3)
/* Playground: 64 pages that memory-management calls may carve up at will (never
 * rebuilt, so its layout of mappings and protections gets ever more fragmented). */
#define PG_PAGES 64
#define NR_MAX 460

/* Linux constants, spelled out so both libcs agree. */
#define PROT_R 1
#define PROT_RW 3
#define M_PRIVATE 0x02
#define M_FIXED 0x10
#define M_ANON 0x20
#define M_FIXED_NOREPLACE 0x100000
#define M_POPULATE 0x8000
#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
#define ARCH_GET_GS 0x1004
#define KERNEL_BASE 0xffff800000000000ULL
/* The sandbox's KVM platform (crates/platform/src/kvm/layout.rs): user space ends at
 * USER_LIMIT; the slot above holds per-vCPU pages; supervisor pages at KVM_KERNEL. */
#define USER_LIMIT 0x7f8000000000ULL
#define PV_PAGE_VA 0x7fffffffc000ULL /* PVM control page (read-only) */
#define DOORBELL_VA 0x7fffffffd000ULL /* MMIO doorbell */
#define SHARED_VA 0x7fffffffe000ULL /* the vCPU's shared page (read-write) */
#define TRAMPOLINE_VA 0x7ffffffff000ULL /* the syscall trampoline (read-only, exec) */
#define KVM_KERNEL 0xffffff8000000000ULL /* stubs, IDT, per-vCPU GDT/TSS and stacks */

/* ------------------------------------------------------------------ */
/* Raw system calls: no libc, no errno, no TLS. */

static int clobbered; /* set when a call changed an argument register */

static inline long raw(u64 nr, u64 a0, u64 a1, u64 a2, u64 a3, u64 a4, u64 a5)
{
	register u64 r10 __asm__("r10") = a3;
	register u64 r8 __asm__("r8") = a4;
	register u64 r9 __asm__("r9") = a5;
	u64 rdi = a0, rsi = a1, rdx = a2;
	u64 rax = nr;
	__asm__ volatile("syscall"
			 : "+a"(rax), "+D"(rdi), "+S"(rsi), "+d"(rdx), "+r"(r10), "+r"(r8), "+r"(r9)
			 :
			 : "rcx", "r11", "memory", "cc");
	if (rdi != a0 || rsi != a1 || rdx != a2 || r10 != a3 || r8 != a4 || r9 != a5)
		clobbered = 1;
	return (long)rax;
}

static void out(int fd, const char *s, size_t n)
{
	while (n > 0) {
		long r = raw(1, fd, (u64)s, n, 0, 0, 0);
		if (r == -11 /* EAGAIN: someone made the pipe non-blocking */ || r == -4) {
			raw(24, 0, 0, 0, 0, 0, 0);
			continue;
		}
		if (r <= 0)
			return;
		s += r;
		n -= r;
	}
}

static void outs(int fd, const char *s) { out(fd, s, strlen(s)); }

static char *fmt_hex(char *p, u64 v)
{
	static const char digits[] = "0123456789abcdef";
	char tmp[16];
	int n = 0;
	*p++ = '0';
	*p++ = 'x';
	do {
		tmp[n++] = digits[v & 15];
		v >>= 4;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

static char *fmt_dec(char *p, u64 v)
{
	char tmp[20];
	int n = 0;
	do {
		tmp[n++] = '0' + v % 10;
		v /= 10;
	} while (v);
	while (n)
		*p++ = tmp[--n];
	return p;
}

static __attribute__((noreturn)) void die(int code, const char *msg, u64 v)
{
	char buf[128], *p = buf;
	outs(1, "\nsyscall_fuzz: ");
	outs(1, msg);
	*p++ = ' ';
	p = fmt_hex(p, v);
	*p++ = '\n';
	out(1, buf, p - buf);
	for (;;)
		raw(231, code, 0, 0, 0, 0, 0);
}

/* ------------------------------------------------------------------ */
/* PRNG: splitmix64. */

static u64 rng_state;

static u64 rnd(void)
{
	u64 z = (rng_state += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static u64 below(u64 n) { return n ? rnd() % n : 0; }
static int chance(u64 n) { return below(n) == 0; } /* 1 in n */

#define PICK(arr) ((arr)[below(sizeof(arr) / sizeof((arr)[0]))])

/* ------------------------------------------------------------------ */
/* Memory layout. */

static u64 arena, scratch, scratch_end, guard1, ro_page, guard2, arena_end;
static u64 pg, pg_end;

/* The program's own memory: pointers into it are never passed. */
struct range { u64 lo, hi; };
static struct range own[5];
static int n_own;
static u64 saved_fs, saved_gs;

extern char __executable_start[], _end[];
static const char proc_self_exe[] = "/proc/self/exe";

static void add_own(u64 lo, u64 hi) { own[n_own].lo = lo; own[n_own].hi = hi; n_own++; }

static u64 sanitize(u64 v)
{
	for (int i = 0; i < n_own; i++)
		if (v >= own[i].lo && v < own[i].hi)
			return KERNEL_BASE | (v & 0xffff);
	return v;
}

/* Structured area at the start of the scratch region. */
#define S_STRINGS 0x000
#define S_TIMESPEC 0x080
#define S_IOVEC 0x100
#define S_SIGACTION 0x200
#define S_SIGSET 0x220
#define S_RLIMIT 0x228
#define S_MSGHDR 0x240
#define S_FDS 0x280
#define S_LENS 0x2c0
#define S_SOUP 0x300
#define S_END 0x1000
#define LONG_AREA 600
/* Offsets of the strings in the structured area. */
static const u64 string_offs[] = {0, 8, 16, 32, 48, 0x78, 17, 20};

static u64 gen_arg(void);

static u64 edge_value(void)
{
	static const u64 edges[] = {
		0x7fffffff, 0x80000000, 0xffffffff, 0x100000000ULL, 0x7fffffffffffffffULL,
		0x8000000000000000ULL, 0xffffffff80000000ULL, 0xfffffffffffff000ULL,
		0xffffffffffffff9cULL /* AT_FDCWD */, 4095, 4096, 4097, 65535, 65536,
		0x7ffff000 /* MAX_RW_COUNT */, 0x7ffff001, 0x8000000000000001ULL,
		0x00007fffffffffffULL, 0x0000800000000000ULL, 0x00007ffffffff000ULL,
		0xffff800000000000ULL, 0x7fffffffffffffffULL / 2, 0xfffffffffffffffeULL,
		255, 256, 1024, 1025, 0xffff, 0x10000, 0xfffffffffffffff0ULL,
	};
	return PICK(edges);
}

static u64 kernel_addr(void)
{
	static const u64 ks[] = {
		0xffffffff81000000ULL, 0xfffffffffffff000ULL, 0xffff888000000000ULL,
		0xffffffffff600000ULL /* vsyscall */, 0xffff800000000000ULL, 0xffffffffffffffffULL,
	};
	if (chance(2))
		return PICK(ks);
	return KERNEL_BASE + (rnd() & 0x7fffffffffffULL);
}

static u64 noncanonical(void)
{
	if (chance(4))
		return 0x0000800000000000ULL + (rnd() & 0xfff);
	u64 top = 1 + below(0xfffe); /* neither 0x0000 nor 0xffff */
	return (top << 48) | (rnd() & 0xffffffffffffULL);
}

/* A page of the platform's reserved slot or kernel region (page aligned). */
static u64 platform_page(void)
{
	static const u64 pages[] = { PV_PAGE_VA, DOORBELL_VA, SHARED_VA, TRAMPOLINE_VA,
				     USER_LIMIT, KVM_KERNEL, KVM_KERNEL + 0x1000 /* IDT */,
				     KVM_KERNEL + 0x10000 /* vCPU 0 GDT/TSS */,
				     KVM_KERNEL + 0x11000 /* vCPU 0 ring-0 stack */ };
	return PICK(pages);
}

/* Into a platform page, or straddling into one: from the last bytes of user
 * space, or from one platform page into the next. */
static u64 platform_ptr(void)
{
	switch (below(4)) {
	case 0: return sanitize(USER_LIMIT - 1 - below(64)); /* never the own stack */
	case 1: return platform_page() + PAGE - 1 - below(64);
	default: return platform_page() + below(PAGE);
	}
}

static u64 scratch_ptr(void) { return scratch + below(SCRATCH_SIZE); }
static u64 struct_ptr(void) { return scratch + (below(S_END / 8) * 8); }
static u64 near_end_ptr(void)
{
	switch (below(3)) {
	case 0: return scratch_end - below(65);
	case 1: return scratch_end - PAGE + below(PAGE);
	default: return scratch_end - 8 * (1 + below(32));
	}
}
static u64 ro_ptr(void) { return chance(3) ? ro_page + PAGE - below(65) : ro_page + below(PAGE); }
static u64 pg_ptr(void) { return chance(3) ? pg_end - below(65) : pg + below(PG_PAGES * PAGE); }

/* Any pointer-ish value, for pointer arguments. */
static u64 gen_ptr(void)
{
	switch (below(18)) {
	case 17: return platform_ptr();
	case 16: return pg_ptr();
	case 0: return 0;
	case 1: case 2: case 3: return scratch_ptr();
	case 4: case 5: case 6: return struct_ptr();
	case 7: case 8: return near_end_ptr();
	case 9: return guard1 + below(PAGE);
	case 10: case 11: return ro_ptr();
	case 12: return kernel_addr();
	case 13: return noncanonical();
	case 14: return below(0x10000);
	default: return sanitize(rnd());
	}
}

/* A path argument. Paths only ever point at the fixed strings ("", ".", "fuzz-a",
 * "d/f", "fuzz-b/", "xxxxxxxx", their tails), the over-long name at the end of the
 * scratch region, or nowhere readable: never at random or kernel-written bytes,
 * which could spell "/" or "..". The sandbox's view of the host is read-only, but a
 * fuzzer that can name the host root would be one bug away from chmod("/"). */
static u64 gen_path(void)
{
	switch (below(16)) {
	case 8: return ro_page + PICK(string_offs);
	case 9: return scratch_end - LONG_AREA + below(LONG_AREA);
	case 10: return guard1 + below(PAGE);
	case 11: return kernel_addr();
	case 12: return noncanonical();
	case 13: return 0;
	case 14: return below(0x10000);
	case 15: return kernel_addr() | 1;
	default: return scratch + PICK(string_offs);
	}
}

/* Which arguments (bit i: argument i) of a call are path names. */
static unsigned path_args(u64 nr)
{
	switch (nr) {
	case 2: case 4: case 6: case 21: case 76: case 80: case 83: case 84: case 85: case 87:
	case 89: case 90: case 92: case 94: case 132: case 133: case 134: case 137: case 161:
	case 163: case 166: case 167: case 168: case 188: case 189: case 191: case 192:
	case 194: case 195: case 197: case 198: case 235: case 240: case 241: case 430:
		return 1 << 0;
	case 82: case 86: case 88: case 155: /* rename, link, symlink, pivot_root */
		return 1 << 0 | 1 << 1;
	case 165: /* mount(source, target, fstype, flags, data) */
		return 1 << 0 | 1 << 1 | 1 << 2 | 1 << 4;
	case 179: case 254: case 257: case 258: case 259: case 260: case 261: case 262:
	case 263: case 267: case 268: case 269: case 280: case 303: case 304: case 332:
	case 428: case 433: case 437: case 439: case 442: case 452:
		return 1 << 1;
	case 264: case 265: case 316: case 429: /* renameat, linkat, renameat2, move_mount */
		return 1 << 1 | 1 << 3;
	case 266: /* symlinkat(target, dirfd, linkpath) */
		return 1 << 0 | 1 << 2;
	case 301: /* fanotify_mark */
		return 1 << 4;
	case 431: /* fsconfig(fd, cmd, key, value, aux) */
		return 1 << 2 | 1 << 3;
	}
	return 0;
}

/* Any value at all. */
static u64 gen_arg(void)
{
	u64 v;
	switch (below(33)) {
	case 0: case 1: case 2: v = 0; break;
	case 3: v = 1; break;
	case 4: v = (u64)-1; break;
	case 5: case 6: case 7: v = below(64); break;
	case 8: v = below(4097); break;
	case 9: v = (uint32_t)rnd(); break;
	case 10: case 11: v = rnd(); break;
	case 12: case 13: v = edge_value(); break;
	case 14: case 15: case 16: case 31: v = scratch_ptr(); break;
	case 17: case 18: v = struct_ptr(); break;
	case 19: case 20: v = near_end_ptr(); break;
	case 21: v = guard1 + below(PAGE); break;
	case 22: v = ro_ptr(); break;
	case 23: v = kernel_addr(); break;
	case 24: v = noncanonical(); break;
	case 25: v = pg_ptr(); break;
	case 26: v = PAGE * (1 + below(32)); break;
	case 27: v = (u64) - (long)(1 + below(4096)); break;
	case 28: v = (u64)-100; break; /* AT_FDCWD */
	case 29: v = 1ULL << below(64); break;
	case 32: v = platform_ptr(); break;
	default: v = (u64)(int)rnd(); break; /* sign-extended 32-bit */
	}
	return sanitize(v);
}

static u64 gen_len(void)
{
	static const u64 lens[] = {0, 1, 2, 7, 8, 16, 24, 64, 100, 128, 144, 4095, 4096, 4097,
				   65536, 65537, 0x7ffff000, 0x7fffffff, 0x80000000, 0xffffffff,
				   (u64)-1, 0x7fffffffffffffffULL, 1 << 20, (1 << 20) + 1};
	switch (below(4)) {
	case 0: return PICK(lens);
	case 1: return below(SCRATCH_SIZE + PAGE + 2);
	case 2: return below(300);
	default: return gen_arg();
	}
}

static u64 gen_fd(void)
{
	static const u64 fds[] = {0, 1, 2, 3, 4, 5, 63, 64, 1023, 1024, 1 << 20, 0x7fffffff,
				  0xffffffff, (u64)-1, (u64)-100, 0x100000001ULL, 0x100000000ULL};
	switch (below(4)) {
	case 0: case 1: return below(3);
	case 2: return PICK(fds);
	default: return gen_arg();
	}
}

/* ------------------------------------------------------------------ */
/* The arena. */

/* Random bytes, but never '.' or '/': no string found in them can name anything
 * outside the working directory. */
static void fill_random(u64 addr, u64 len)
{
	for (u64 off = 0; off + 8 <= len; off += 8) {
		u64 v = rnd();
		for (int b = 0; b < 64; b += 8) {
			u64 c = (v >> b) & 0xff;
			if (c == '.' || c == '/')
				v ^= 0x40ULL << b;
		}
		*(volatile u64 *)(addr + off) = v;
	}
}

static void refresh_structs(u64 base, int full)
{
	volatile u64 *q;
	char *s = (char *)(base + S_STRINGS);
	/* Strings: "", ".", relative names; never "..", which would let later calls
	 * reach outside the working directory. */
	memset(s, 0, 0x80);
	strcpy(s + 8, ".");
	strcpy(s + 16, "fuzz-a");
	strcpy(s + 32, "d/f");
	strcpy(s + 48, "fuzz-b/");
	memset(s + 0x78, 'x', 8); /* unterminated: runs on into the timespecs */

	static const long ns[] = {0, 1, 999999999, 1000000000, -1, 500000000};
	static const long secs[] = {0, 1, -1, 0x7fffffffffffffffL, (long)0x8000000000000000UL};
	q = (volatile u64 *)(base + S_TIMESPEC);
	for (int i = 0; i < 8; i++) {
		q[2 * i] = i == 0 ? 0 : (u64)PICK(secs);
		q[2 * i + 1] = i == 0 ? 0 : (u64)PICK(ns);
	}

	q = (volatile u64 *)(base + S_IOVEC);
	for (int i = 0; i < 16; i++) {
		q[2 * i] = chance(4) ? gen_arg() : gen_ptr();
		q[2 * i + 1] = gen_len();
	}

	q = (volatile u64 *)(base + S_SIGACTION);
	static const u64 handlers[] = {0, 1, 2, 0x1000};
	q[0] = chance(2) ? PICK(handlers) : gen_arg();
	q[1] = chance(2) ? 0x04000000 /* SA_RESTORER */ : gen_arg();
	q[2] = gen_arg();
	q[3] = rnd();
	q = (volatile u64 *)(base + S_SIGSET);
	q[0] = rnd();
	q = (volatile u64 *)(base + S_RLIMIT);
	q[0] = gen_arg();
	q[1] = gen_arg();

	q = (volatile u64 *)(base + S_MSGHDR);
	q[0] = gen_ptr();		  /* msg_name */
	q[1] = gen_len();		  /* msg_namelen (u32 + pad) */
	q[2] = chance(2) ? base + S_IOVEC : gen_ptr(); /* msg_iov */
	q[3] = chance(2) ? below(17) : gen_len();      /* msg_iovlen */
	q[4] = gen_ptr();		  /* msg_control */
	q[5] = gen_len();		  /* msg_controllen */
	q[6] = gen_arg();		  /* msg_flags */

	volatile int32_t *fds = (volatile int32_t *)(base + S_FDS);
	for (int i = 0; i < 16; i++)
		fds[i] = (int32_t)(i < 3 ? i : gen_fd());
	volatile uint32_t *lens = (volatile uint32_t *)(base + S_LENS);
	for (int i = 0; i < 16; i++)
		lens[i] = (uint32_t)gen_len();

	/* The end of the scratch region: a 300-byte name (too long), then 'n's up to the
	 * guard page with no terminator. */
	if (base == scratch) {
		memset((void *)(scratch_end - LONG_AREA), 'n', LONG_AREA);
		*(volatile char *)(scratch_end - LONG_AREA + 300) = 0;
	}

	q = (volatile u64 *)(base + S_SOUP);
	if (full) {
		for (u64 i = 0; i < (S_END - S_SOUP) / 8; i++)
			q[i] = gen_arg();
	} else {
		for (int i = 0; i < 16; i++)
			q[below((S_END - S_SOUP) / 8)] = gen_arg();
	}
}

static void arena_setup(int first)
{
	u64 fixed = first ? 0 : M_FIXED;
	u64 len = first ? ARENA_PAGES * PAGE : SCRATCH_SIZE;
	long r = raw(9, first ? 0 : scratch, len, PROT_RW, M_PRIVATE | M_ANON | fixed, (u64)-1, 0);
	if (r < 0 || (!first && (u64)r != scratch))
		die(3, "cannot (re)map the scratch region: mmap returned", (u64)r);
	if (first) {
		arena = (u64)r;
		scratch = arena;
		scratch_end = scratch + SCRATCH_SIZE;
		guard1 = scratch_end;
		ro_page = guard1 + PAGE;
		guard2 = ro_page + PAGE;
		arena_end = guard2 + PAGE;
	}
	/* Guards unmapped (something may have been mapped there), ro page rebuilt. */
	r = raw(11, guard1, PAGE, 0, 0, 0, 0);
	if (r < 0)
		die(3, "munmap(guard1) failed:", (u64)r);
	r = raw(11, guard2, PAGE, 0, 0, 0, 0);
	if (r < 0)
		die(3, "munmap(guard2) failed:", (u64)r);
	r = raw(9, ro_page, PAGE, PROT_RW, M_PRIVATE | M_ANON | M_FIXED, (u64)-1, 0);
	if ((u64)r != ro_page)
		die(3, "cannot remap the read-only page: mmap returned", (u64)r);
	fill_random(scratch, SCRATCH_SIZE);
	refresh_structs(scratch, 1);
	/* The read-only page: a copy of the structures, pointing where they point. */
	memcpy((void *)ro_page, (void *)scratch, PAGE);
	r = raw(10, ro_page, PAGE, PROT_R, 0, 0, 0);
	if (r < 0)
		die(3, "mprotect(ro page) failed:", (u64)r);
}

/* ------------------------------------------------------------------ */
/* Choosing calls. */

/* Calls that are never made. */
static int excluded(u64 nr)
{
	switch (nr) {
	case 7: case 23: case 34: case 35: case 15: case 22: case 37: case 38:
	case 41: case 43: case 45: case 47: case 53: case 56: case 57: case 58:
	case 59: case 60: case 61: case 62: case 65: case 69: case 70: case 73:
	case 101: case 128: case 129: case 130: case 160: case 169: case 200:
	case 203: case 208: case 215: case 220: case 223: case 230: case 231:
	case 232: case 234: case 242: case 243: case 246: case 247: case 253:
	case 270: case 271: case 281: case 282: case 283: case 284: case 288:
	case 289: case 290: case 293: case 294: case 297: case 299: case 300:
	case 317: case 320: case 322: case 323: case 333: case 335: case 336:
	case 424: case 426: case 435: case 441: case 449: case 455:
		return 1;
	}
	return 0;
}

/* Implemented by the sentry today, or likely next: chosen half the time. */
static const uint16_t hot[] = {
	0, 1, 5, 8, 9, 10, 11, 12, 13, 14, 16, 17, 18, 19, 20, 24, 25, 28, 39, 63, 79,
	89, 95, 96, 97, 102, 104, 107, 108, 110, 115, 118, 120, 158, 186, 201, 204, 218,
	228, 229, 262, 267, 273, 302, 318,
	2, 3, 4, 6, 21, 32, 33, 72, 78, 217, 257, 292, 332, 439, 269, 202, 334, 131, 99,
	98, 100, 137, 138, 157, 76, 77, 80, 81, 83, 87, 82, 84, 263, 258, 295, 296,
	327, 328, 40, 26, 27, 149, 150, 436, 127, 309, 135, 112, 121, 124,
};

static int is_mm_call(u64 nr)
{
	switch (nr) {
	case 9: case 10: case 11: case 25: case 28: case 30: case 216: case 329: case 453:
		return 1;
	}
	return 0;
}

/* An address for a memory-management call and the largest length that keeps the
 * range harmless (inside the arena, or below 64 KiB, or garbage anyway). */
static u64 mm_addr(u64 *max_len)
{
	switch (below(13)) {
	case 8: case 9: case 10: /* playground, page aligned */
	{
		u64 a = pg + PAGE * below(PG_PAGES);
		*max_len = pg_end - a;
		return a;
	}
	case 11: /* playground, unaligned */
	{
		u64 a = pg + 1 + below(PG_PAGES * PAGE - 1);
		*max_len = pg_end - a;
		return a;
	}
	case 0: case 1: case 2: /* arena, page aligned */
	{
		u64 a = arena + PAGE * below(ARENA_PAGES);
		*max_len = arena_end - a;
		return a;
	}
	case 3: /* arena, unaligned */
	{
		u64 a = arena + 1 + below(ARENA_PAGES * PAGE - 1);
		*max_len = arena_end - a;
		return a;
	}
	case 4: /* below mmap_min_addr */
	{
		u64 a = PAGE * below(16);
		*max_len = 0x10000 - a;
		return a;
	}
	case 12: /* the platform's pages: never the application's to map or unmap */
		*max_len = (u64)-1;
		return platform_page();
	case 5: *max_len = (u64)-1; return rnd() | 1; /* unaligned garbage */
	case 6: *max_len = (u64)-1; return kernel_addr() & ~(PAGE - 1);
	default: *max_len = (u64)-1; return noncanonical() & ~(PAGE - 1);
	}
}

static u64 mm_len(u64 max_len)
{
	u64 l;
	switch (below(4)) {
	case 0: l = PAGE * below(PG_PAGES + 1); break;
	case 1: l = below(PG_PAGES * PAGE + 1); break;
	case 2: l = max_len; break;
	default: l = gen_len(); break;
	}
	if (max_len != (u64)-1 && l > max_len)
		l = max_len ? below(max_len + 1) : 0;
	return l;
}

/* Gives call `nr` (low 32 bits of rax) arguments; returns 0 to skip it. */
static int make_args(u64 nr, u64 a[6])
{
	unsigned paths = path_args(nr);
	for (int i = 0; i < 6; i++)
		a[i] = (paths >> i) & 1 ? gen_path() : gen_arg();
	if (paths && chance(2) && (paths & 1) == 0)
		a[0] = chance(2) ? (u64)-100 /* AT_FDCWD */ : gen_fd();
	int smart = !chance(3); /* argument roles two times in three */
	int mm_smart = !chance(6); /* five times in six for memory calls */
	u64 max;

	switch (nr) {
	case 0: case 17: /* read, pread64 */
		if (smart) { a[0] = gen_fd(); a[1] = gen_ptr(); a[2] = gen_len(); }
		break;
	case 1: case 18: /* write, pwrite64 */
		if (smart) { a[0] = gen_fd(); a[1] = gen_ptr(); a[2] = gen_len(); }
		if ((uint32_t)a[0] == 2)
			a[0] = 1;
		break;
	case 19: case 20: case 295: case 296: case 327: case 328: /* readv/writev family */
		if (smart) {
			a[0] = gen_fd();
			a[1] = chance(2) ? scratch + S_IOVEC + 16 * below(16) : gen_ptr();
			static const u64 cnt[] = {0, 1, 2, 3, 16, 1024, 1025, (u64)-1, 0x100000001ULL};
			a[2] = chance(2) ? below(17) : PICK(cnt);
		}
		if ((uint32_t)a[0] == 2)
			a[0] = 1;
		break;
	case 438: /* pidfd_getfd: no copies of stderr */
		if ((uint32_t)a[1] == 2)
			a[1] = 0;
		break;
	case 5: /* fstat */
		if (smart) { a[0] = gen_fd(); a[1] = gen_ptr(); }
		break;
	case 8: /* lseek */
		if (smart) { a[0] = gen_fd(); a[2] = chance(2) ? below(6) : gen_arg(); }
		break;
	case 16: /* ioctl */
		if (smart) {
			static const u64 cmds[] = {0x5401 /* TCGETS */, 0x5413 /* TIOCGWINSZ */,
						   0x541b /* FIONREAD */, 0x540f, 0x80045430};
			a[0] = gen_fd();
			a[1] = chance(2) ? PICK(cmds) : gen_arg();
			a[2] = gen_ptr();
		}
		/* Nothing that changes a terminal (fds 0-2 may be one when run by hand). */
		if (((uint32_t)a[1] & 0xff00) == 0x5400 && (uint32_t)a[1] != 0x5401 &&
		    (uint32_t)a[1] != 0x5413 && (uint32_t)a[1] != 0x541b && (uint32_t)a[1] != 0x540f)
			a[1] = 0x5401;
		break;
	case 9: /* mmap */
	{
		static const u64 fl[] = {M_FIXED, M_FIXED_NOREPLACE, M_POPULATE, 0x4000 /* NORESERVE */,
					 0x100 /* GROWSDOWN */, 0x40 /* 32BIT */, 0x20000 /* STACK */,
					 0x40000 /* HUGETLB */, 0x10000 /* NONBLOCK */, 0x80000 /* SYNC */};
		a[0] = mm_addr(&max);
		a[1] = mm_len(max);
		if (mm_smart) {
			a[2] = chance(4) ? gen_arg() : below(8);
			u64 f = (chance(4) ? below(4) : M_PRIVATE) | (chance(8) ? 0 : M_ANON);
			for (int i = below(3); i > 0; i--)
				f |= PICK(fl);
			a[3] = chance(8) ? gen_arg() : f;
			a[4] = chance(2) ? (u64)-1 : gen_fd();
			a[5] = chance(2) ? 0 : gen_arg();
		}
		/* MAP_FIXED clobbers whatever is there: only the arena or garbage. */
		if ((a[3] & M_FIXED) && max != (u64)-1 && a[1] > max)
			a[1] = max;
		/* Populating gigabytes is slow, and the sandbox's memory is finite (running out
		 * ends in an OOM kill, as on Linux): keep populated mappings small. */
		if ((a[3] & M_POPULATE) && a[1] > (16UL << 20))
			a[3] &= ~(u64)M_POPULATE;
		break;
	}
	case 10: case 329: /* mprotect, pkey_mprotect */
		a[0] = mm_addr(&max);
		a[1] = mm_len(max);
		if (mm_smart)
			a[2] = chance(2) ? below(8) : (chance(2) ? (below(8) | (0x1000000UL << below(2))) : gen_arg());
		break;
	case 11: /* munmap */
		a[0] = mm_addr(&max);
		a[1] = mm_len(max);
		break;
	case 28: /* madvise */
		a[0] = mm_addr(&max);
		a[1] = mm_len(max);
		if (mm_smart)
			a[2] = chance(4) ? gen_arg() : below(27);
		if ((int)a[2] == 100 || (int)a[2] == 101) /* MADV_HWPOISON, MADV_SOFT_OFFLINE */
			a[2] = 4;
		break;
	case 25: /* mremap(old, old_len, new_len, flags, new_addr) */
	{
		u64 max2;
		a[0] = mm_addr(&max);
		a[1] = mm_len(max);
		static const u64 fl[] = {0, 0, 1, 1, 1, 3, 3, 3, 5, 7, 2, 4, 6};
		a[3] = mm_smart ? (chance(8) ? gen_arg() : PICK(fl)) : a[3];
		a[4] = mm_addr(&max2);
		/* New length: growing in place or moving is harmless; with MREMAP_FIXED the
		 * target range is clobbered, and must be the arena or garbage. */
		a[2] = (a[3] & 2) ? mm_len(max2) : mm_len(chance(2) ? max : (u64)-1);
		if ((a[3] & 2) && max2 != (u64)-1 && a[2] > max2)
			a[2] = max2;
		break;
	}
	case 12: /* brk: never anywhere between the heap start and the end of user space */
	{
		static const u64 b[] = {0, 1, 0x1000, (u64)-1, 0xffff800000000000ULL,
					0x0000800000000000ULL, 0x8000000000000000ULL};
		a[0] = chance(2) ? PICK(b) : (chance(2) ? kernel_addr() : noncanonical());
		break;
	}
	case 30: /* shmat(id, addr, flags): SHM_REMAP (the segment may be any size) only
		  * over kernel or non-canonical addresses */
		a[1] = chance(2) ? mm_addr(&max) : gen_ptr();
		if (a[1] < 0x800000000000ULL)
			a[2] &= ~(u64)040000;
		break;
	case 216: /* remap_file_pages(start, size, prot, pgoff, flags) */
		a[0] = mm_addr(&max);
		a[1] = mm_len(max);
		break;
	case 67: /* shmdt */
		a[0] = chance(2) ? mm_addr(&max) : gen_ptr();
		break;

	case 3: /* close: never stdout */
		if (smart)
			a[0] = gen_fd();
		if ((uint32_t)a[0] == 1)
			a[0] = 2;
		break;
	case 436: /* close_range(first, last, flags) */
		if (smart) { a[0] = below(8); a[1] = chance(2) ? (u64)-1 : below(16); a[2] = chance(2) ? 0 : gen_arg(); }
		if ((uint32_t)a[0] <= 1 && (uint32_t)a[1] >= 1 && !(a[2] & 4 /* CLOEXEC */))
			a[0] = 3;
		break;
	case 32: /* dup */
		if (smart) a[0] = gen_fd();
		if ((uint32_t)a[0] == 2) a[0] = 0;
		break;
	case 33: case 292: /* dup2, dup3: never onto stdout, never a copy of stderr */
		if (smart) { a[0] = gen_fd(); a[1] = gen_fd(); a[2] = chance(2) ? 0 : 0x80000; }
		if ((uint32_t)a[1] == 1) a[1] = 5;
		if ((uint32_t)a[0] == 2) a[0] = 0;
		break;
	case 72: /* fcntl: no blocking locks, no SIGIO owners, no copies of stderr */
		if (smart) {
			a[0] = gen_fd();
			a[1] = chance(2) ? below(48) : (chance(2) ? 1024 + below(20) : gen_arg());
		}
		switch ((uint32_t)a[1]) {
		case 7: case 38: /* F_SETLKW, F_OFD_SETLKW */
		case 8: case 15: case 10: /* F_SETOWN, F_SETOWN_EX, F_SETSIG */
		case 1024: case 1026: /* F_SETLEASE, F_NOTIFY: both send SIGIO */
			a[1] = 3; /* F_GETFL */
		}
		if ((uint32_t)a[0] == 2)
			a[0] = 0;
		break;
	case 40: /* sendfile(out, in, off, count) */
	case 275: /* splice(in, off_in, out, off_out, len, flags) */
	case 326: /* copy_file_range(in, off_in, out, off_out, len, flags) */
	case 276: /* tee(in, out, len, flags) */
	{
		int o = nr == 40 ? 0 : nr == 276 ? 1 : 2;
		if (smart) {
			a[o] = gen_fd();
			a[nr == 40 ? 1 : 0] = gen_fd();
		}
		if ((uint32_t)a[o] == 2)
			a[o] = 1;
		break;
	}
	case 278: /* vmsplice */
	case 44: case 46: case 307: /* sendto, sendmsg, sendmmsg */
		if ((uint32_t)a[0] == 2)
			a[0] = 1;
		if (nr == 46 && smart)
			a[1] = scratch + S_MSGHDR;
		break;

	case 158: /* arch_prctl */
		if (smart) {
			static const u64 codes[] = {ARCH_SET_GS, ARCH_SET_FS, ARCH_GET_FS, ARCH_GET_GS,
						    0x1011, 0x1012, 0x1021, 0x1022, 0x1023, 0x1024, 0x1025,
						    0x2001, 0x2002, 0x2003, 0x3001, 0x4001, 0x4002, 0x4003,
						    0x4004, 0, 0x1000, 0x1005};
			static const u64 fsgs[] = {ARCH_SET_GS, ARCH_SET_FS, ARCH_GET_FS, ARCH_GET_GS};
			a[0] = chance(5) ? gen_arg() : chance(2) ? PICK(fsgs) : PICK(codes);
			a[1] = chance(2) ? gen_ptr() : gen_arg();
		}
		if (a[0] >= 0x5001 && a[0] <= 0x5005) /* shadow stack: would kill natively */
			a[0] = ARCH_GET_FS;
		if (a[0] >= 0x2001 && a[0] <= 0x2003) /* map the vdso: arena or garbage */
			a[1] = mm_addr(&max);
		if (a[0] == 0x1012) /* ARCH_SET_CPUID: leave cpuid working */
			a[1] = 1;
		break;
	case 157: /* prctl */
		if (smart)
			a[0] = chance(2) ? below(80) : gen_arg();
		switch ((uint32_t)a[0]) {
		case 22: /* PR_SET_SECCOMP */
		case 26: /* PR_SET_TSC */
		case 35: /* PR_SET_MM */
		case 59: /* PR_SET_SYSCALL_USER_DISPATCH */
		case 75: /* PR_SET_SHADOW_STACK_STATUS */
			a[0] = 3; /* PR_GET_DUMPABLE */
		}
		break;
	case 13: /* rt_sigaction */
		if (smart) {
			a[0] = chance(4) ? gen_arg() : below(66);
			a[1] = chance(2) ? scratch + S_SIGACTION : gen_ptr();
			a[2] = gen_ptr();
			a[3] = chance(2) ? 8 : gen_arg();
		}
		break;
	case 14: /* rt_sigprocmask */
		if (smart) {
			a[0] = chance(4) ? gen_arg() : below(4);
			a[1] = chance(2) ? scratch + S_SIGSET : gen_ptr();
			a[2] = gen_ptr();
			a[3] = chance(2) ? 8 : gen_arg();
		}
		break;
	case 302: /* prlimit64: never a new limit */
		if (smart) {
			a[0] = chance(2) ? 0 : gen_arg();
			a[1] = chance(2) ? below(17) : gen_arg();
			a[3] = gen_ptr();
		}
		a[2] = 0;
		break;
	case 97: /* getrlimit */
		if (smart) { a[0] = chance(2) ? below(17) : gen_arg(); a[1] = gen_ptr(); }
		break;
	case 228: case 229: /* clock_gettime, clock_getres */
		if (smart) {
			a[0] = chance(2) ? below(16) : (chance(2) ? (u64)(long)-(long)below(64) : gen_arg());
			a[1] = gen_ptr();
		}
		break;
	case 262: /* newfstatat */
	case 4: case 6: case 21: case 89: case 267: case 269: case 439: case 332:
	{
		/* Read-only path calls: the path may be /proc/self/exe (read-only use only). */
		int p = (nr == 262 || nr == 267 || nr == 269 || nr == 439 || nr == 332) ? 1 : 0;
		if (smart) {
			if (p)
				a[0] = chance(2) ? (u64)-100 : gen_fd();
			a[p] = chance(4) ? (u64)proc_self_exe : gen_path();
			a[p + 1] = gen_ptr();
			if (nr == 262)
				a[3] = chance(2) ? (PICK(((u64[]){0, 0x1000, 0x100, 0x800, 0x1100}))) : gen_arg();
			if (nr == 89 || nr == 267)
				a[p + 2] = gen_len();
		}
		break;
	}
	case 79: /* getcwd */
		if (smart) { a[0] = gen_ptr(); a[1] = gen_len(); }
		break;
	case 318: /* getrandom */
		if (smart) { a[0] = gen_ptr(); a[1] = gen_len(); a[2] = chance(2) ? below(8) : gen_arg(); }
		break;
	case 204: /* sched_getaffinity */
		if (smart) { a[0] = chance(2) ? 0 : gen_arg(); a[1] = gen_len(); a[2] = gen_ptr(); }
		break;
	case 115: /* getgroups */
		if (smart) { a[0] = gen_len(); a[1] = gen_ptr(); }
		break;
	case 273: /* set_robust_list */
		if (smart) { a[0] = gen_ptr(); a[1] = chance(2) ? 24 : gen_len(); }
		break;
	case 202: /* futex: nothing that waits */
		if (smart) {
			a[0] = gen_ptr();
			a[1] = below(14) | (chance(2) ? 128 : 0) | (chance(4) ? 256 : 0);
			a[3] = chance(2) ? scratch + S_TIMESPEC + 16 * below(8) : gen_ptr();
			a[4] = gen_ptr();
		}
		switch ((uint32_t)a[1] & 0x7f) {
		case 0: case 6: case 9: case 11: case 13: a[1] = 1; /* FUTEX_WAKE */
		}
		break;
	case 334: /* rseq: registering a real area would have it written on every preemption */
		a[0] = chance(3) ? 0 : chance(2) ? kernel_addr() : (chance(2) ? noncanonical() : (rnd() | 1));
		break;
	case 103: /* syslog: SYSLOG_ACTION_READ blocks */
		if ((int)a[0] == 2)
			a[0] = 10;
		break;
	case 133: /* mknod: no FIFOs (opening one blocks) */
		if ((a[1] & 0170000) == 0010000)
			a[1] &= ~(u64)0170000;
		break;
	case 259: /* mknodat */
		if ((a[2] & 0170000) == 0010000)
			a[2] &= ~(u64)0170000;
		break;
	case 310: case 311: /* process_vm_readv/writev: local and remote iovecs */
		if (smart) {
			a[1] = scratch + S_IOVEC + 16 * below(16);
			a[3] = scratch + S_IOVEC + 16 * below(16);
			a[2] = below(17);
			a[4] = below(17);
		}
		break;
	}
	return 1;
}

static u64 pick_nr(u64 *rax)
{
	for (;;) {
		u64 nr;
		u64 r = below(100);
		if (r < 50)
			nr = PICK(hot);
		else
			nr = below(NR_MAX + 1);
		if (excluded(nr))
			continue;
		*rax = nr;
		if (r >= 97)
			*rax = ((u64)(uint32_t)(1 + below(0xffffffff)) << 32) | nr; /* garbage upper half */
		return nr;
	}
}

/* A number no kernel has: 461..1023 (without the x32 bit), or huge. Linux looks at
 * the low 32 bits only, so those are never a valid number either. */
static u64 pick_invalid_nr(void)
{
	static const u64 bad[] = {0xffffffff, 0x7fffffff, 0x80000000, 0xffffffffffffffffULL,
				  0x80000000000001ffULL, 0xfffffffffffffffeULL, 1024, 4096};
	u64 v = chance(2) ? 461 + below(1024 - 461) : PICK(bad);
	return v;
}

/* ------------------------------------------------------------------ */

static void log_call(u64 i, u64 rax, const u64 a[6])
{
	char buf[256], *p = buf;
	memcpy(p, "\n@call ", 7);
	p += 7;
	p = fmt_dec(p, i);
	*p++ = ' ';
	p = fmt_hex(p, rax);
	for (int k = 0; k < 6; k++) {
		*p++ = ' ';
		p = fmt_hex(p, a[k]);
	}
	*p++ = '\n';
	out(1, buf, p - buf);
}

static void log_ret(u64 i, long r)
{
	char buf[64], *p = buf;
	memcpy(p, "@ret ", 5);
	p += 5;
	p = fmt_dec(p, i);
	*p++ = ' ';
	if (r < 0 && r > -4096) {
		*p++ = '-';
		p = fmt_dec(p, (u64)-r);
	} else {
		p = fmt_hex(p, (u64)r);
	}
	*p++ = '\n';
	out(1, buf, p - buf);
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		outs(2, "usage: syscall_fuzz SEED ITERATIONS [v]\n");
		return 2;
	}
	int sandboxed = getenv("SYSCALL_FUZZ_SANDBOXED") != NULL;
	if (geteuid() == 0 && !sandboxed) {
		outs(2, "syscall_fuzz: refusing to make random system calls as root outside a "
			"sandbox (set SYSCALL_FUZZ_SANDBOXED=1 inside one)\n");
		return 2;
	}
	/* Where relative paths land: the robustness test points this at the sandbox's
	 * private /tmp for some runs. Natively, leave it unset and run in an empty
	 * directory. */
	const char *cd = getenv("SYSCALL_FUZZ_CHDIR");
	if (cd && *cd && chdir(cd) != 0) {
		outs(2, "syscall_fuzz: cannot chdir to $SYSCALL_FUZZ_CHDIR\n");
		return 2;
	}
	u64 seed = strtoull(argv[1], NULL, 0);
	u64 iters = strtoull(argv[2], NULL, 0);
	int verbose = argc > 3 && argv[3][0] == 'v';
	rng_state = seed * 0x2545f4914f6cdd1dULL + 0x1234567;

	/* Remember the program's own memory, so no argument ever points into it. */
	u64 sp = (u64)&argc;
	u64 brk0 = (u64)raw(12, 0, 0, 0, 0, 0, 0);
	u64 img_lo = (u64)__executable_start & ~0xfffffUL, img_hi = (u64)_end + (64UL << 20);
	if (brk0 > img_hi - (64UL << 20) && brk0 < (1ULL << 47))
		img_hi = brk0 + (64UL << 20);
	add_own(img_lo, img_hi);
	add_own(sp - (32UL << 20), sp + (32UL << 20));
	raw(158, ARCH_GET_FS, (u64)&saved_fs, 0, 0, 0, 0);
	raw(158, ARCH_GET_GS, (u64)&saved_gs, 0, 0, 0, 0);
	if (saved_fs)
		add_own(saved_fs - (1UL << 20), saved_fs + (1UL << 20));
	u64 vdso = getauxval(AT_SYSINFO_EHDR);
	if (vdso)
		add_own(vdso - (1UL << 20), vdso + (1UL << 20));
	add_own((u64)argv & ~0xfffUL, ((u64)argv & ~0xfffUL) + (1UL << 20));

	long r = raw(9, 0, PG_PAGES * PAGE, PROT_RW, M_PRIVATE | M_ANON, (u64)-1, 0);
	if (r < 0)
		die(3, "cannot map the playground: mmap returned", (u64)r);
	pg = (u64)r;
	pg_end = pg + PG_PAGES * PAGE;
	arena_setup(1);

	u64 i;
	for (i = 0; i < iters; i++) {
		u64 a[6], rax, nr;
		refresh_structs(scratch, 0);
		if (chance(50)) {
			rax = pick_invalid_nr();
			nr = (u64)-1;
			for (int k = 0; k < 6; k++)
				a[k] = gen_arg();
		} else {
			nr = pick_nr(&rax);
			if (!make_args(nr, a))
				continue;
		}
		if (verbose)
			log_call(i, rax, a);
		long r = raw(rax, a[0], a[1], a[2], a[3], a[4], a[5]);
		if (nr == 158) {
			/* Put the thread pointer back before anything can use it. */
			raw(158, ARCH_SET_FS, saved_fs, 0, 0, 0, 0);
			raw(158, ARCH_SET_GS, saved_gs, 0, 0, 0, 0);
		}
		if (verbose)
			log_ret(i, r);
		if (clobbered)
			die(4, "a system call changed an argument register; call index", i);
		if (sandboxed && (nr == 9 || nr == 25) && (u64)r >= USER_LIMIT &&
		    (u64)r < 0x800000000000ULL)
			die(5, "mmap/mremap returned an address in the platform's slot; call index", i);
		if (is_mm_call(nr))
			arena_setup(0);
	}

	char buf[64], *p = buf;
	memcpy(p, "\nsurvived ", 10);
	p += 10;
	p = fmt_dec(p, i);
	memcpy(p, " calls\n", 7);
	p += 7;
	out(1, buf, p - buf);
	for (;;)
		raw(231, 0, 0, 0, 0, 0, 0);
}
