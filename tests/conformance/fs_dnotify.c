/* dnotify (fcntl F_NOTIFY): a directory descriptor's owner gets F_SETSIG's
 * signal (si_code POLL_MSG, si_fd) for the events it asked for; without
 * DN_MULTISHOT the registration goes after one signal; arg 0 removes it;
 * F_NOTIFY on a non-directory is ENOTDIR. The signal is blocked and taken
 * with sigtimedwait, so that nothing depends on timing when one is expected. */
#define CONF_FS
#include "conf.h"
#include <signal.h>
#include <time.h>

#define SIG (SIGRTMIN + 1)

/* Waits for the dnotify signal: "signal fd=D code=C" or "no signal". */
static void expect(const char *label, int fd, long ms)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIG);
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	siginfo_t si;
	int r = sigtimedwait(&set, &si, &ts);
	if (r < 0)
		printf("%s: no signal (%s)\n", label, errname(errno));
	else
		printf("%s: signal same=%d fd_ok=%d code=%d band=%#lx\n", label, r == SIG,
		       si.si_fd == fd, si.si_code, (long)si.si_band);
}

static void touch(const char *p)
{
	int fd = open(p, O_CREAT | O_WRONLY, 0644);
	if (fd >= 0)
		close(fd);
}

int main(void)
{
	fs_enter();
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIG);
	sigprocmask(SIG_BLOCK, &set, NULL);
	mkdir("d", 0755);
	touch("f");
	int f = open("f", O_RDONLY);
	errno = 0;
	int r = fcntl(f, F_NOTIFY, DN_CREATE);
	printf("F_NOTIFY on a file: %d %s\n", r, r < 0 ? errname(errno) : "0");
	errno = 0;
	r = fcntl(f, F_NOTIFY, 0);
	printf("remove on a file: %d %s\n", r, r < 0 ? errname(errno) : "0");
	close(f);

	int d = open("d", O_RDONLY | O_DIRECTORY);
	printf("F_SETSIG: %d\n", fcntl(d, F_SETSIG, SIG));
	printf("F_NOTIFY DN_CREATE: %d\n", fcntl(d, F_NOTIFY, DN_CREATE));
	printf("owner is me: %d\n", fcntl(d, F_GETOWN) == getpid());
	touch("d/a");
	expect("create (one shot)", d, 10000);
	touch("d/b");
	expect("create again (registration gone)", d, 300);

	printf("multishot create|delete: %d\n",
	       fcntl(d, F_NOTIFY, DN_CREATE | DN_DELETE | DN_MULTISHOT));
	unlink("d/a");
	expect("delete", d, 10000);
	touch("d/c");
	expect("create", d, 10000);
	int g = open("d/c", O_WRONLY);
	if (write(g, "x", 1) != 1)
		printf("write failed\n");
	close(g);
	expect("modify (not asked)", d, 300);
	printf("add DN_MODIFY|DN_ATTRIB: %d\n", fcntl(d, F_NOTIFY, DN_MODIFY | DN_ATTRIB | DN_MULTISHOT));
	g = open("d/c", O_WRONLY);
	if (write(g, "x", 1) != 1)
		printf("write failed\n");
	close(g);
	expect("modify of a child", d, 10000);
	chmod("d/c", 0600);
	expect("attrib of a child", d, 10000);
	rename("d/c", "d/e");
	expect("rename in dir (moved_from and moved_to)", d, 10000);
	expect("rename second", d, 10000);
	printf("remove: %d\n", fcntl(d, F_NOTIFY, 0));
	touch("d/z");
	expect("after removal", d, 300);

	printf("DN_RENAME only: %d\n", fcntl(d, F_NOTIFY, DN_RENAME | DN_MULTISHOT));
	rename("d/e", "e");
	expect("rename out of the dir", d, 300);
	rename("e", "d/e");
	expect("rename into the dir", d, 300);
	rename("d/e", "d/e2");
	expect("rename within the dir", d, 10000);
	close(d);

	unlink("d/b");
	unlink("d/e2");
	unlink("d/z");
	rmdir("d");
	unlink("f");
	fs_leave();
	return 0;
}
