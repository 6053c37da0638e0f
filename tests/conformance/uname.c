/* uname: sysname and machine must match; the other fields may differ. */
#include "conf.h"
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

int main(void)
{
	struct utsname u;
	memset(&u, 0xff, sizeof u);
	CHECK("uname", uname(&u) == 0);
	printf("sysname: %s\n", u.sysname);
	printf("machine: %s\n", u.machine);
	CHECK("nodename non-empty", u.nodename[0] != 0);
	CHECK("release non-empty", u.release[0] != 0);
	CHECK("version non-empty", u.version[0] != 0);
	/* Every field is NUL-terminated within its 65 bytes. */
	CHECK("fields terminated",
	      memchr(u.sysname, 0, sizeof u.sysname) && memchr(u.nodename, 0, sizeof u.nodename) &&
	      memchr(u.release, 0, sizeof u.release) && memchr(u.version, 0, sizeof u.version) &&
	      memchr(u.machine, 0, sizeof u.machine) && memchr(u.domainname, 0, sizeof u.domainname));
	/* release looks like "MAJOR.MINOR..." with MAJOR >= 3 (glibc needs it). */
	int major = 0, minor = 0;
	CHECK("release is MAJOR.MINOR",
	      sscanf(u.release, "%d.%d", &major, &minor) == 2 && major >= 3);
	char host[256];
	CHECK("gethostname == nodename",
	      gethostname(host, sizeof host) == 0 && strcmp(host, u.nodename) == 0);
	ERRCALL("uname(NULL)", syscall(SYS_uname, NULL));
	return 0;
}
