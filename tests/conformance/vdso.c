/* The vDSO: present (AT_SYSINFO_EHDR, [vdso] and [vvar] in /proc/self/maps),
 * exporting Linux's symbols with version LINUX_2.6, and giving times that
 * agree with the system calls: interleaved vDSO and syscall readings never
 * go backwards, on every clock the vDSO serves. */
#include "conf.h"
#include <sched.h>
#include <elf.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static long ns(const struct timespec *t)
{
	return t->tv_sec * 1000000000L + t->tv_nsec;
}

/* Looks `name` up in the vDSO's dynamic symbol table, with version LINUX_2.6. */
static void *vdso_sym(const char *name)
{
	const unsigned char *base = (const void *)getauxval(AT_SYSINFO_EHDR);
	if (!base)
		return NULL;
	const Elf64_Ehdr *eh = (const void *)base;
	const Elf64_Phdr *ph = (const void *)(base + eh->e_phoff);
	const Elf64_Dyn *dyn = NULL;
	for (int i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_DYNAMIC)
			dyn = (const void *)(base + ph[i].p_offset);
	if (!dyn)
		return NULL;
	const Elf64_Sym *syms = NULL;
	const char *strs = NULL;
	const Elf64_Word *hash = NULL;
	const Elf64_Versym *versym = NULL;
	const Elf64_Verdef *verdef = NULL;
	for (; dyn->d_tag != DT_NULL; dyn++) {
		const void *p = base + dyn->d_un.d_ptr;
		switch (dyn->d_tag) {
		case DT_SYMTAB: syms = p; break;
		case DT_STRTAB: strs = p; break;
		case DT_HASH: hash = p; break;
		case DT_VERSYM: versym = p; break;
		case DT_VERDEF: verdef = p; break;
		}
	}
	if (!syms || !strs || !hash || !versym || !verdef)
		return NULL;
	for (Elf64_Word i = 0; i < hash[1]; i++) {
		if (strcmp(strs + syms[i].st_name, name) != 0 || syms[i].st_shndx == SHN_UNDEF)
			continue;
		/* The symbol's version must be LINUX_2.6. */
		const Elf64_Verdef *d = verdef;
		for (;;) {
			if (d->vd_ndx == (versym[i] & 0x7fff)) {
				const Elf64_Verdaux *aux = (const void *)((const char *)d + d->vd_aux);
				if (strcmp(strs + aux->vda_name, "LINUX_2.6") == 0)
					return (void *)(base + syms[i].st_value);
				break;
			}
			if (!d->vd_next)
				break;
			d = (const void *)((const char *)d + d->vd_next);
		}
	}
	return NULL;
}

/* Start and end of the first /proc/self/maps line naming `what`, or 0. */
static unsigned long maps_range(const char *what, unsigned long *end)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return 0;
	char line[512];
	unsigned long start = 0;
	while (fgets(line, sizeof line, f))
		if (strstr(line, what) && sscanf(line, "%lx-%lx", &start, end) == 2)
			break;
		else
			start = 0;
	fclose(f);
	return start;
}

static int maps_has(const char *what)
{
	FILE *f = fopen("/proc/self/maps", "r");
	if (!f)
		return 0;
	char line[512];
	int found = 0;
	while (fgets(line, sizeof line, f))
		if (strstr(line, what))
			found = 1;
	fclose(f);
	return found;
}

int main(void)
{
	printf("AT_SYSINFO_EHDR: %s\n", getauxval(AT_SYSINFO_EHDR) ? "set" : "missing");
	printf("[vdso] mapped: %s, [vvar] mapped: %s\n", maps_has("[vdso]") ? "yes" : "no",
	       maps_has("[vvar]") ? "yes" : "no");
	const char *names[] = {"__vdso_clock_gettime", "__vdso_gettimeofday", "__vdso_time",
	                       "__vdso_getcpu", "__vdso_clock_getres"};
	for (unsigned i = 0; i < sizeof names / sizeof *names; i++)
		printf("%s@LINUX_2.6: %s\n", names[i], vdso_sym(names[i]) ? "found" : "missing");

	int (*vgettime)(clockid_t, struct timespec *) = vdso_sym("__vdso_clock_gettime");
	const clockid_t clocks[] = {CLOCK_REALTIME, CLOCK_MONOTONIC, CLOCK_BOOTTIME,
	                            CLOCK_MONOTONIC_RAW};
	const char *clock_names[] = {"REALTIME", "MONOTONIC", "BOOTTIME", "MONOTONIC_RAW"};
	for (unsigned c = 0; c < 4 && vgettime; c++) {
		int ordered = 1;
		for (int i = 0; i < 2000; i++) {
			struct timespec a, b, d;
			vgettime(clocks[c], &a);
			syscall(SYS_clock_gettime, clocks[c], &b);
			vgettime(clocks[c], &d);
			/* MONOTONIC_RAW runs at its own rate on Linux; only order within it. */
			if (clocks[c] == CLOCK_MONOTONIC_RAW)
				ordered &= ns(&a) <= ns(&d);
			else
				ordered &= ns(&a) <= ns(&b) && ns(&b) <= ns(&d);
		}
		printf("%s: vDSO and system call readings in order: %s\n", clock_names[c],
		       ordered ? "yes" : "no");
	}

	/* Two million readings never go backwards. */
	struct timespec prev, cur;
	clock_gettime(CLOCK_MONOTONIC, &prev);
	int backwards = 0;
	for (int i = 0; i < 2000000; i++) {
		clock_gettime(CLOCK_MONOTONIC, &cur);
		backwards |= ns(&cur) < ns(&prev);
		prev = cur;
	}
	printf("monotonic never went backwards: %s\n", backwards ? "no" : "yes");

	struct timespec rt;
	struct timeval tv;
	clock_gettime(CLOCK_REALTIME, &rt);
	gettimeofday(&tv, NULL);
	time_t t = time(NULL);
	printf("gettimeofday and time agree with CLOCK_REALTIME: %s\n",
	       tv.tv_sec - rt.tv_sec <= 1 && t - rt.tv_sec <= 1 && tv.tv_sec >= rt.tv_sec ? "yes" : "no");
	struct timezone tz = {1, 1};
	int r = gettimeofday(&tv, &tz);
	printf("gettimeofday with a timezone: %d, tz %d/%d\n", r, tz.tz_minuteswest, tz.tz_dsttime);
	struct timespec res = {-1, -1};
	r = clock_getres(CLOCK_MONOTONIC, &res);
	printf("clock_getres(MONOTONIC): %d, %ld.%09ld\n", r, (long)res.tv_sec, res.tv_nsec);
	errno = 0;
	r = clock_gettime(12345, &rt);
	printf("clock_gettime(bad clock): %d %s\n", r, errname(errno));
	/* getcpu, through the vDSO or the system call: a CPU this machine has. */
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	int cpu = sched_getcpu();
	printf("sched_getcpu in range: %d\n", cpu >= 0 && cpu < ncpu);
	unsigned ucpu = 999, unode = 999;
	r = syscall(SYS_getcpu, &ucpu, &unode, NULL);
	printf("getcpu: %d, cpu in range %d, node %u\n", r, ucpu < (unsigned)ncpu, unode);

	/* Discarding the vDSO's code is allowed and changes nothing (it faults back
	 * the same); its parameter page can't be discarded. */
	unsigned long end = 0, text = maps_range("[vdso]", &end);
	errno = 0;
	r = text ? madvise((void *)text, end - text, MADV_DONTNEED) : -2;
	printf("madvise(DONTNEED) of [vdso]: %d %s\n", r, errname(errno));
	struct timespec after;
	printf("clock_gettime after: %d\n", clock_gettime(CLOCK_MONOTONIC, &after));
	unsigned long vvar = maps_range("[vvar]", &end);
	errno = 0;
	r = vvar ? madvise((void *)vvar, 4096, MADV_DONTNEED) : -2;
	printf("madvise(DONTNEED) of [vvar]: %d %s\n", r, errname(errno));
	errno = 0;
	r = vvar ? mprotect((void *)vvar, 4096, PROT_READ | PROT_WRITE) : -2;
	printf("mprotect(PROT_WRITE) of [vvar]: %d %s\n", r, errname(errno));
	return 0;
}
