/* Shared by the network conformance programs: errno names of the socket calls (beyond
 * conf.h's), and NCALL, which prints a call's result or its errno by name. */
#ifndef NET_H
#define NET_H

#include "conf.h"

__attribute__((unused)) static const char *nerr(int e)
{
	switch (e) {
	case ECONNREFUSED: return "ECONNREFUSED";
	case EADDRINUSE: return "EADDRINUSE";
	case EINPROGRESS: return "EINPROGRESS";
	case EALREADY: return "EALREADY";
	case EISCONN: return "EISCONN";
	case ENOTCONN: return "ENOTCONN";
	case ENOPROTOOPT: return "ENOPROTOOPT";
	case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
	case ESOCKTNOSUPPORT: return "ESOCKTNOSUPPORT";
	case EAFNOSUPPORT: return "EAFNOSUPPORT";
	case ENOTSOCK: return "ENOTSOCK";
	case EMSGSIZE: return "EMSGSIZE";
	case EDESTADDRREQ: return "EDESTADDRREQ";
	case ECONNRESET: return "ECONNRESET";
	case ENODEV: return "ENODEV";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	}
	return errname(e);
}

#define NCALL(label, expr)                                                   \
	do {                                                                 \
		errno = 0;                                                   \
		long _r = (long)(expr);                                      \
		int _e = errno;                                              \
		if (_r == -1)                                                \
			printf("%s: -1 errno=%s\n", label, nerr(_e));      \
		else                                                         \
			printf("%s: %ld\n", label, _r);                     \
	} while (0)

#endif
