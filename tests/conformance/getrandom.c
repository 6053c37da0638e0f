/* getrandom: counts, freshness, flags. Never prints the bytes. */
#include "conf.h"
#include <sys/random.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef GRND_INSECURE
#define GRND_INSECURE 0x0004
#endif

int main(void)
{
	unsigned char buf[512];
	int bad = 0;
	for (size_t n = 1; n <= 256; n++) {
		memset(buf, 0, sizeof buf);
		long r = syscall(SYS_getrandom, buf, n, 0);
		if (r != (long)n)
			bad++;
		/* nothing written past n */
		for (size_t i = n; i < sizeof buf; i++)
			if (buf[i])
				bad++;
	}
	CHECK("getrandom 1..256 bytes returns the count", !bad);

	unsigned char x[32], y[32];
	CHECK("draw 1", getrandom(x, sizeof x, 0) == 32);
	CHECK("draw 2", getrandom(y, sizeof y, 0) == 32);
	CHECK("two 32-byte draws differ", memcmp(x, y, 32) != 0);
	int zeros = 0;
	for (int i = 0; i < 32; i++)
		zeros += x[i] == 0;
	CHECK("32-byte draw not mostly zero", zeros < 16);

	/* A big draw: all byte values show up. */
	static unsigned char big[1 << 16];
	long got = 0;
	while (got < (long)sizeof big) {
		long r = getrandom(big + got, sizeof big - got, 0);
		if (r <= 0)
			break;
		got += r;
	}
	CHECK("64 KiB drawn", got == (long)sizeof big);
	int seen[256] = { 0 }, distinct = 0;
	for (size_t i = 0; i < sizeof big; i++)
		if (!seen[big[i]]++)
			distinct++;
	CHECK("all 256 byte values in 64 KiB", distinct == 256);

	ERRCALL("zero-length getrandom", syscall(SYS_getrandom, buf, 0, 0));
	CHECK("GRND_NONBLOCK", getrandom(buf, 16, GRND_NONBLOCK) == 16);
	CHECK("GRND_RANDOM", getrandom(buf, 16, GRND_RANDOM) == 16);
	CHECK("GRND_RANDOM|GRND_NONBLOCK", getrandom(buf, 16, GRND_RANDOM | GRND_NONBLOCK) == 16);
	ERRCALL("bad flags 0x100", syscall(SYS_getrandom, buf, 16, 0x100));
	ERRCALL("GRND_INSECURE|GRND_RANDOM", syscall(SYS_getrandom, buf, 16, GRND_INSECURE | GRND_RANDOM));
	ERRCALL("bad buffer", syscall(SYS_getrandom, (void *)8, 16, 0));
	return 0;
}
