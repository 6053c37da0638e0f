/* personality (query, set, inherited by fork, kept across execve but for
 * READ_IMPLIES_EXEC) and syslog's refusals to an unprivileged caller. */
#include "conf.h"
#include <sys/personality.h>
#include <sys/syscall.h>

#define SYSLOG_ACTION_READ 2
#define SYSLOG_ACTION_READ_CLEAR 4
#define SYSLOG_ACTION_CLEAR 5
#define SYSLOG_ACTION_CONSOLE_OFF 6
#define SYSLOG_ACTION_CONSOLE_LEVEL 8

static long query(void)
{
	return syscall(SYS_personality, 0xffffffffUL);
}

int main(int argc, char **argv)
{
	if (argc > 1) {
		/* After execve. */
		printf("after exec: %#lx\n", query());
		return 0;
	}
	printf("initial: %#lx\n", query());
	printf("set ADDR_NO_RANDOMIZE returns old: %#lx\n",
	       syscall(SYS_personality, PER_LINUX | ADDR_NO_RANDOMIZE));
	printf("now: %#lx\n", query());
	printf("query again: %#lx\n", query());

	fflush(stdout);
	pid_t p = fork();
	if (p == 0) {
		printf("child: %#lx\n", query());
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(p, &st, 0);

	printf("set READ_IMPLIES_EXEC returns: %#lx\n",
	       syscall(SYS_personality, PER_LINUX | ADDR_NO_RANDOMIZE | READ_IMPLIES_EXEC));
	printf("now: %#lx\n", query());
	fflush(stdout);
	p = fork();
	if (p == 0) {
		execl("/proc/self/exe", argv[0], "exec", (char *)NULL);
		printf("exec failed: %s\n", errname(errno));
		_exit(1);
	}
	waitpid(p, &st, 0);
	printf("exec child: %s\n", wait_status(st));
	printf("back to PER_LINUX returns: %#lx\n", syscall(SYS_personality, PER_LINUX));
	printf("now: %#lx\n", query());

	/* syslog: the actions that need CAP_SYSLOG whatever kernel.dmesg_restrict says, from a
	 * process without privileges. */
	fflush(stdout);
	p = fork();
	if (p == 0) {
		if (geteuid() == 0 && (setgid(65534) || setuid(65534)))
			_exit(3);
		char buf[64];
		ERRCALL("syslog READ", syscall(SYS_syslog, SYSLOG_ACTION_READ, buf, sizeof buf));
		ERRCALL("syslog READ_CLEAR",
			syscall(SYS_syslog, SYSLOG_ACTION_READ_CLEAR, buf, sizeof buf));
		ERRCALL("syslog CLEAR", syscall(SYS_syslog, SYSLOG_ACTION_CLEAR, NULL, 0));
		ERRCALL("syslog CONSOLE_OFF", syscall(SYS_syslog, SYSLOG_ACTION_CONSOLE_OFF, NULL, 0));
		ERRCALL("syslog CONSOLE_LEVEL",
			syscall(SYS_syslog, SYSLOG_ACTION_CONSOLE_LEVEL, NULL, 3));
		ERRCALL("syslog 99", syscall(SYS_syslog, 99, NULL, 0));
		fflush(stdout);
		_exit(0);
	}
	waitpid(p, &st, 0);
	printf("syslog child: %s\n", wait_status(st));
	return 0;
}
