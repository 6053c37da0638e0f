/* Who may signal whom: kill, tkill, tgkill and rt_sigqueueinfo need the sender's real or
 * effective uid to be the target's real or saved uid (or CAP_KILL, i.e. root); SIGCONT
 * may go to any process of the sender's session; kill(-1) signals only the processes
 * the sender may signal, except itself. Runs as root; the unprivileged processes use uids
 * no host process has, since natively kill(-1) reaches every process of the uid. */
#include "conf.h"
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define SENDER 54330
#define OTHER 54331
#define OTHER2 54332

#define SI_QUEUE_CODE (-1)
#define SI_TKILL_CODE (-6)

static int ready[2];

/* A child that takes the given uids, says so on `ready`, and sleeps (default signal
 * actions) until a signal ends it. */
static pid_t sleeper(uid_t r, uid_t e, uid_t s)
{
	pid_t p = fork();
	if (p == 0) {
		if (setresuid(r, e, s) != 0)
			_exit(99);
		if (write(ready[1], "x", 1) != 1)
			_exit(98);
		for (;;)
			pause();
	}
	return p;
}

static void await_ready(int n)
{
	char c;
	for (int i = 0; i < n; i++)
		if (read(ready[0], &c, 1) != 1)
			printf("ready: FAIL\n");
}

static void show(const char *label, long r)
{
	printf("%s: %s\n", label, r == 0 ? "0" : errname(errno));
}

static long queue(pid_t pid, int sig, int code)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	si.si_signo = sig;
	si.si_code = code;
	si.si_pid = getpid();
	si.si_uid = getuid();
	return syscall(SYS_rt_sigqueueinfo, pid, sig, &si);
}

static long tgqueue(pid_t tgid, pid_t tid, int sig, int code)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	si.si_signo = sig;
	si.si_code = code;
	return syscall(SYS_rt_tgsigqueueinfo, tgid, tid, sig, &si);
}

/* How a child ended, waiting at most about two seconds. */
static const char *ending(pid_t p)
{
	static char buf[64];
	for (int i = 0; i < 200; i++) {
		int st;
		pid_t r = waitpid(p, &st, WNOHANG);
		if (r == p) {
			if (WIFSIGNALED(st))
				snprintf(buf, sizeof buf, "signal %d", WTERMSIG(st));
			else
				snprintf(buf, sizeof buf, "exit %d", WEXITSTATUS(st));
			return buf;
		}
		usleep(10000);
	}
	return "still running";
}

/* Sender: uid SENDER; `same` runs as SENDER, `saved` has SENDER as its saved uid, and
 * `effective` only as its effective uid. */
static void sender(pid_t root, pid_t saved, pid_t effective)
{
	if (setresuid(SENDER, SENDER, SENDER) != 0)
		exit(98);
	pid_t same = sleeper(SENDER, SENDER, SENDER);
	await_ready(1);

	show("kill(root, 0)", kill(root, 0));
	show("kill(root, SIGUSR1)", kill(root, SIGUSR1));
	show("kill(same uid, 0)", kill(same, 0));
	show("kill(saved uid matches, 0)", kill(saved, 0));
	show("kill(effective uid only, 0)", kill(effective, 0));
	show("kill(effective uid only, SIGTERM)", kill(effective, SIGTERM));
	show("kill(effective uid only, SIGCONT) same session", kill(effective, SIGCONT));
	show("kill(effective uid only, 99)", kill(effective, 99));
	show("tkill(effective uid only, 0)", syscall(SYS_tkill, effective, 0));
	show("tgkill(effective uid only, 0)", syscall(SYS_tgkill, effective, effective, 0));
	show("tgkill(same uid, 0)", syscall(SYS_tgkill, same, same, 0));
	show("tgkill(wrong tgid, 0)", syscall(SYS_tgkill, effective, same, 0));
	show("sigqueueinfo(same uid, SI_QUEUE)", queue(same, 0, SI_QUEUE_CODE));
	show("sigqueueinfo(same uid, SI_USER)", queue(same, 0, 0));
	show("sigqueueinfo(same uid, SI_TKILL)", queue(same, 0, SI_TKILL_CODE));
	show("sigqueueinfo(self, SI_USER)", queue(getpid(), 0, 0));
	show("sigqueueinfo(effective uid only, SI_QUEUE)", queue(effective, 0, SI_QUEUE_CODE));
	show("tgsigqueueinfo(same uid, SI_QUEUE)", tgqueue(same, same, 0, SI_QUEUE_CODE));
	show("tgsigqueueinfo(same uid, SI_USER)", tgqueue(same, same, 0, 0));
	show("tgsigqueueinfo(effective uid only, SI_QUEUE)",
	     tgqueue(effective, effective, 0, SI_QUEUE_CODE));

	/* kill(-1): reaches `same` and `saved`, not root or `effective`, and not the sender. */
	signal(SIGUSR2, SIG_IGN);
	show("kill(-1, SIGUSR2)", kill(-1, SIGUSR2));
	printf("same uid: %s\n", ending(same));

	/* Another session: SIGCONT needs permission too. */
	pid_t p = fork();
	if (p == 0) {
		if (setsid() < 0)
			_exit(97);
		show("kill(effective uid only, SIGCONT) other session", kill(effective, SIGCONT));
		_exit(0);
	}
	printf("new session child: %s\n", ending(p));
	exit(0);
}

static volatile sig_atomic_t got_code, got_value, got_pid;

static void on_usr1(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)ctx;
	got_code = si->si_code;
	got_value = si->si_value.sival_int;
	got_pid = si->si_pid == getpid();
}

int main(void)
{
	/* sigqueue carries its value and the sender to the handler. */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_usr1;
	sa.sa_flags = SA_SIGINFO;
	CHECK("sigaction", sigaction(SIGUSR1, &sa, NULL) == 0);
	CHECK("sigqueue(self)", sigqueue(getpid(), SIGUSR1, (union sigval){ .sival_int = 1234 }) == 0);
	printf("handler: SI_QUEUE %d value %d own pid %d\n", got_code == SI_QUEUE, (int)got_value,
	       (int)got_pid);
	signal(SIGUSR1, SIG_DFL);

	CHECK("pipe", pipe(ready) == 0);
	pid_t root = sleeper(0, 0, 0);
	pid_t saved = sleeper(OTHER, OTHER, SENDER);
	pid_t effective = sleeper(OTHER2, SENDER, OTHER2);
	await_ready(3);

	pid_t s = fork();
	if (s == 0)
		sender(root, saved, effective);
	printf("sender: %s\n", ending(s));
	printf("saved uid matches: %s\n", ending(saved));

	/* Root may signal anyone. */
	show("root kill(effective uid only, SIGKILL)", kill(effective, SIGKILL));
	printf("effective uid only: %s\n", ending(effective));
	show("root kill(root child, SIGKILL)", kill(root, SIGKILL));
	printf("root child: %s\n", ending(root));
	return 0;
}
