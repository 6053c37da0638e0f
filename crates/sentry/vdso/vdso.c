/* The sandbox's vDSO: clock_gettime, gettimeofday and time computed in the
 * application from the time-stamp counter and a parameter page (vvar) that
 * the sentry keeps up to date, so reading the clock doesn't trap.
 *
 * Built by crates/sentry/build.rs with vdso.lds; loaded into every process
 * by crates/sentry/src/vdso.rs, which also owns the parameter page and the
 * layout below (keep them in step). No libc: this code runs inside any
 * program, with only what it is given. Anything it can't answer goes to the
 * real system call. */

typedef unsigned int u32;
typedef unsigned long u64;
typedef long s64;

/* The parameter page, one page before the vDSO's first page. */
struct vvar {
	u32 seq;      /* odd while the sentry rewrites the rest */
	u32 enabled;  /* 0: use the system calls */
	u64 tsc_base; /* counter value the other fields are taken at */
	u64 mono_ns;  /* CLOCK_MONOTONIC at tsc_base */
	s64 real_off; /* CLOCK_REALTIME - CLOCK_MONOTONIC, in ns */
	s64 boot_off; /* CLOCK_BOOTTIME - CLOCK_MONOTONIC, in ns */
	u64 mult;     /* ns since tsc_base = (tsc - tsc_base) * mult >> 32 */
};

extern const volatile struct vvar vvar_page __attribute__((visibility("hidden")));

struct k_timespec { s64 tv_sec; s64 tv_nsec; };
struct k_timeval { s64 tv_sec; s64 tv_usec; };

#define CLOCK_REALTIME 0
#define CLOCK_MONOTONIC 1
#define CLOCK_MONOTONIC_RAW 4
#define CLOCK_REALTIME_COARSE 5
#define CLOCK_MONOTONIC_COARSE 6
#define CLOCK_BOOTTIME 7

#define NR_gettimeofday 96
#define NR_time 201
#define NR_clock_gettime 228
#define NR_clock_getres 229
#define NR_getcpu 309

static inline long syscall3(long nr, long a, long b, long c)
{
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "a"(nr), "D"(a), "S"(b), "d"(c)
			 : "rcx", "r11", "memory");
	return ret;
}

static inline u64 rdtsc_ordered(void)
{
	u32 lo, hi;
	/* lfence keeps the counter read after the sequence number read. */
	__asm__ volatile("lfence; rdtsc" : "=a"(lo), "=d"(hi) : : "memory");
	return ((u64)hi << 32) | lo;
}

/* CLOCK_MONOTONIC in ns and the offsets of the other clocks; 0 if disabled. */
static int read_clock(u64 *mono, s64 *real_off, s64 *boot_off)
{
	u32 seq;
	do {
		seq = __atomic_load_n(&vvar_page.seq, __ATOMIC_ACQUIRE);
		if (seq & 1)
			continue;
		if (!vvar_page.enabled)
			return 0;
		u64 base = vvar_page.tsc_base;
		u64 ns = vvar_page.mono_ns;
		u64 mult = vvar_page.mult;
		*real_off = vvar_page.real_off;
		*boot_off = vvar_page.boot_off;
		u64 tsc = rdtsc_ordered();
		u64 delta = tsc > base ? tsc - base : 0;
		*mono = ns + (u64)(((unsigned __int128)delta * mult) >> 32);
		__atomic_thread_fence(__ATOMIC_ACQUIRE);
	} while ((seq & 1) || seq != __atomic_load_n(&vvar_page.seq, __ATOMIC_RELAXED));
	return 1;
}

static void to_timespec(u64 ns, struct k_timespec *ts)
{
	ts->tv_sec = ns / 1000000000UL;
	ts->tv_nsec = ns % 1000000000UL;
}

int __vdso_clock_gettime(int clock, struct k_timespec *ts)
{
	u64 mono;
	s64 real_off, boot_off;
	switch (clock) {
	case CLOCK_REALTIME:
	case CLOCK_REALTIME_COARSE:
		if (!read_clock(&mono, &real_off, &boot_off))
			break;
		to_timespec(mono + real_off, ts);
		return 0;
	case CLOCK_MONOTONIC:
	case CLOCK_MONOTONIC_COARSE:
	case CLOCK_MONOTONIC_RAW:
		if (!read_clock(&mono, &real_off, &boot_off))
			break;
		to_timespec(mono, ts);
		return 0;
	case CLOCK_BOOTTIME:
		if (!read_clock(&mono, &real_off, &boot_off))
			break;
		to_timespec(mono + boot_off, ts);
		return 0;
	}
	return syscall3(NR_clock_gettime, clock, (long)ts, 0);
}

int __vdso_gettimeofday(struct k_timeval *tv, void *tz)
{
	u64 mono;
	s64 real_off, boot_off;
	if (tz || !tv || !read_clock(&mono, &real_off, &boot_off))
		return syscall3(NR_gettimeofday, (long)tv, (long)tz, 0);
	u64 real = mono + real_off;
	tv->tv_sec = real / 1000000000UL;
	tv->tv_usec = real % 1000000000UL / 1000;
	return 0;
}

s64 __vdso_time(s64 *t)
{
	u64 mono;
	s64 real_off, boot_off;
	if (!read_clock(&mono, &real_off, &boot_off))
		return syscall3(NR_time, (long)t, 0, 0);
	s64 secs = (mono + real_off) / 1000000000UL;
	if (t)
		*t = secs;
	return secs;
}

int __vdso_clock_getres(int clock, struct k_timespec *res)
{
	return syscall3(NR_clock_getres, clock, (long)res, 0);
}

long __vdso_getcpu(unsigned *cpu, unsigned *node, void *cache)
{
	return syscall3(NR_getcpu, (long)cpu, (long)node, (long)cache);
}

int clock_gettime(int, struct k_timespec *) __attribute__((weak, alias("__vdso_clock_gettime")));
int gettimeofday(struct k_timeval *, void *) __attribute__((weak, alias("__vdso_gettimeofday")));
s64 time(s64 *) __attribute__((weak, alias("__vdso_time")));
int clock_getres(int, struct k_timespec *) __attribute__((weak, alias("__vdso_clock_getres")));
long getcpu(unsigned *, unsigned *, void *) __attribute__((weak, alias("__vdso_getcpu")));
