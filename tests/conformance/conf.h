/* Shared helpers for the differential conformance programs.
 *
 * Every program's stdout must be identical natively and in the sandbox:
 * print properties ("ok", errno names, checksums of deterministic data),
 * never addresses, pids, times or random bytes. */
#ifndef CONF_H
#define CONF_H

#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Line-buffered stdout, so a run that crashes still shows how far it got. */
__attribute__((constructor)) static void conf_line_buffered_stdout(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
}

__attribute__((unused)) static const char *errname(int e)
{
	switch (e) {
	case 0: return "0";
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case ESRCH: return "ESRCH";
	case EINTR: return "EINTR";
	case EIO: return "EIO";
	case E2BIG: return "E2BIG";
	case ENOEXEC: return "ENOEXEC";
	case EBADF: return "EBADF";
	case ECHILD: return "ECHILD";
	case EAGAIN: return "EAGAIN";
	case ENOMEM: return "ENOMEM";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EBUSY: return "EBUSY";
	case EEXIST: return "EEXIST";
	case ENODEV: return "ENODEV";
	case ENOTDIR: return "ENOTDIR";
	case EISDIR: return "EISDIR";
	case EINVAL: return "EINVAL";
	case EMFILE: return "EMFILE";
	case ENOTTY: return "ENOTTY";
	case EFBIG: return "EFBIG";
	case ENOSPC: return "ENOSPC";
	case ESPIPE: return "ESPIPE";
	case EROFS: return "EROFS";
	case EPIPE: return "EPIPE";
	case ERANGE: return "ERANGE";
	case ENAMETOOLONG: return "ENAMETOOLONG";
	case ENOSYS: return "ENOSYS";
	case EOVERFLOW: return "EOVERFLOW";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	default: {
		static char buf[32];
		snprintf(buf, sizeof buf, "errno%d", e);
		return buf;
	}
	}
}

/* Print "label: ok" when cond holds, otherwise "label: FAIL (detail)". */
#define CHECK(label, cond)                                                   \
	do {                                                                 \
		if (cond)                                                    \
			printf("%s: ok\n", label);                           \
		else                                                         \
			printf("%s: FAIL (%s, line %d)\n", label, #cond,     \
			       __LINE__);                                    \
	} while (0)

/* Run a call returning -1/errno and print "label: ret=R errno=NAME". The
 * return value is printed only when it is 0 or -1 so no addresses leak. */
#define ERRCALL(label, expr)                                                 \
	do {                                                                 \
		errno = 0;                                                   \
		long _r = (long)(expr);                                      \
		int _e = errno;                                              \
		printf("%s: %s errno=%s\n", label,                           \
		       _r == -1 ? "-1" : (_r == 0 ? "0" : "other"),          \
		       _r == -1 ? errname(_e) : "0");                        \
	} while (0)

/* FNV-1a, for printing checksums of deterministic data. */
__attribute__((unused)) static uint64_t fnv1a(const void *p, size_t n, uint64_t h)
{
	const unsigned char *c = p;
	if (h == 0)
		h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= c[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* Deterministic PRNG (xorshift64*). */
__attribute__((unused)) static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
__attribute__((unused)) static uint64_t rng(void)
{
	uint64_t x = rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 2685821657736338717ULL;
}

#endif
