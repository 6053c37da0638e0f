/* Thread-local storage through the FS base (arch_prctl). */
#include "conf.h"
#include <sys/syscall.h>
#include <unistd.h>

/* from <asm/prctl.h>, which musl's headers don't have */
#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
#define ARCH_GET_GS 0x1004

__thread int tdata = 42;
__thread char tdata_str[16] = "tls-initial";
__thread long tbss[64];

static long raw_arch_prctl(long code, unsigned long addr)
{
	long ret;
	__asm__ volatile("syscall"
			 : "=a"(ret)
			 : "0"((long)SYS_arch_prctl), "D"(code), "S"(addr)
			 : "rcx", "r11", "memory");
	return ret;
}

static unsigned long fs0(void)
{
	unsigned long v;
	__asm__ volatile("mov %%fs:0, %0" : "=r"(v));
	return v;
}

static unsigned long fs8(void)
{
	unsigned long v;
	__asm__ volatile("mov %%fs:8, %0" : "=r"(v));
	return v;
}

int main(void)
{
	printf("tdata: %d\n", tdata);
	printf("tdata_str: %s\n", tdata_str);
	int zero = 1;
	for (int i = 0; i < 64; i++)
		zero &= tbss[i] == 0;
	CHECK("tbss zeroed", zero);
	tdata++;
	tbss[63] = 7;
	printf("tdata after increment: %d, tbss[63]: %ld\n", tdata, tbss[63]);

	unsigned long fs = 0;
	CHECK("ARCH_GET_FS", raw_arch_prctl(ARCH_GET_FS, (unsigned long)&fs) == 0);
	CHECK("FS base nonzero", fs != 0);
	CHECK("fs:0 is the thread pointer (== FS base)", fs0() == fs);
	CHECK("&tdata inside the TLS block below FS base",
	      (unsigned long)&tdata < fs && fs - (unsigned long)&tdata < (1 << 20));

	/* Point FS at our own block, read through it, and switch back.
	 * No libc calls while FS is foreign. */
	static unsigned long block[4];
	block[0] = (unsigned long)block;
	block[1] = 0x1122334455667788UL;
	long set = raw_arch_prctl(ARCH_SET_FS, (unsigned long)block);
	unsigned long got0 = fs0(), got8 = fs8(), now = 0;
	long get = raw_arch_prctl(ARCH_GET_FS, (unsigned long)&now);
	long back = raw_arch_prctl(ARCH_SET_FS, fs);
	CHECK("ARCH_SET_FS", set == 0);
	CHECK("reads through new FS base", got0 == (unsigned long)block && got8 == 0x1122334455667788UL);
	CHECK("ARCH_GET_FS after set", get == 0 && now == (unsigned long)block);
	CHECK("ARCH_SET_FS back", back == 0);
	printf("tdata after restore: %d\n", tdata);

	unsigned long gs = 1;
	CHECK("ARCH_GET_GS", raw_arch_prctl(ARCH_GET_GS, (unsigned long)&gs) == 0);
	printf("GS base: %lu\n", gs);
	printf("ARCH_SET_FS non-canonical: %s\n",
	       errname(-raw_arch_prctl(ARCH_SET_FS, 0x8000000000000000UL)));
	printf("arch_prctl bad code: %s\n", errname(-raw_arch_prctl(0x9999, 0)));
	printf("ARCH_GET_FS bad pointer: %s\n", errname(-raw_arch_prctl(ARCH_GET_FS, 8)));
	return 0;
}
