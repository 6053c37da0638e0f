/* Job control: stop signals stop a whole process (every thread, including one
 * blocked in read()), SIGCONT continues it; the parent sees both with
 * waitpid(WUNTRACED / WCONTINUED) and waitid, and gets SIGCHLD with
 * CLD_STOPPED / CLD_CONTINUED (none with SA_NOCLDSTOP); a handled SIGTSTP
 * doesn't stop; SIGKILL ends a stopped process; in an orphaned process group
 * SIGTSTP, SIGTTIN and SIGTTOU are discarded while SIGSTOP still stops.
 *
 * It runs in a session and process group of its own (conf_own_session), so the
 * result doesn't depend on how it was started (`setsid -w` included). */
#include "conf.h"
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *chld_code(int code)
{
	switch (code) {
	case CLD_EXITED: return "CLD_EXITED";
	case CLD_KILLED: return "CLD_KILLED";
	case CLD_STOPPED: return "CLD_STOPPED";
	case CLD_CONTINUED: return "CLD_CONTINUED";
	default: return "other";
	}
}

/* Takes the pending SIGCHLD (blocked in the parent), or says there is none. */
static void show_sigchld(const char *when)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	struct timespec wait = {0, 200000000};
	siginfo_t si;
	int r = sigtimedwait(&set, &si, &wait);
	if (r == SIGCHLD)
		printf("%s: SIGCHLD %s status %d\n", when, chld_code(si.si_code), si.si_status);
	else
		printf("%s: no SIGCHLD\n", when);
}

static int pipefd[2];
static volatile int spins;

static volatile int reader_got;

static void *reader(void *arg)
{
	(void)arg;
	char c = 0;
	reader_got = read(pipefd[0], &c, 1) == 1 && c == 'x';
	return NULL;
}

static void *spinner(void *arg)
{
	(void)arg;
	for (;;)
		spins++;
	return NULL;
}

static volatile int tstp_handled;
static void on_tstp(int sig) { tstp_handled = sig; }

int main(void)
{
	conf_own_session();
	sigset_t chld;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, NULL);
	int st;

	/* 1. A child stops itself; the parent continues it; it exits when told. */
	int go[2];
	CHECK("pipe go", pipe(go) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		char c;
		raise(SIGSTOP);
		read(go[0], &c, 1);
		_exit(7);
	}
	CHECK("waitpid WUNTRACED", waitpid(pid, &st, WUNTRACED) == pid);
	printf("self-stopped child: %s\n", wait_status(st));
	show_sigchld("after the stop");
	siginfo_t si = {0};
	CHECK("waitid WSTOPPED|WNOWAIT on a reported stop",
	      waitid(P_PID, pid, &si, WSTOPPED | WNOHANG | WNOWAIT) == 0);
	printf("  waitid sees: pid ours %d (already collected)\n", si.si_pid == pid);
	kill(pid, SIGCONT);
	CHECK("waitpid WCONTINUED", waitpid(pid, &st, WCONTINUED) == pid);
	printf("after SIGCONT: %s\n", wait_status(st));
	show_sigchld("after the continue");
	CHECK("tell it to exit", write(go[1], "x", 1) == 1);
	CHECK("waitpid exit", waitpid(pid, &st, 0) == pid);
	printf("then: %s\n", wait_status(st));
	show_sigchld("after the exit");

	/* 2. A multi-threaded child stopped from outside, with a thread blocked in read and
	 * one spinning; continued, its reader gets the byte written while it was stopped. */
	CHECK("pipe", pipe(pipefd) == 0);
	pid = fork();
	if (pid == 0) {
		pthread_t a, b;
		pthread_create(&a, NULL, reader, NULL);
		pthread_create(&b, NULL, spinner, NULL);
		pthread_join(a, NULL);
		/* Exit only when told, so that the parent sees the continue first. */
		char c;
		read(go[0], &c, 1);
		/* 3: the reader got the byte written while the process was stopped. */
		_exit(reader_got ? 3 : 4);
	}
	struct timespec nap = {0, 50000000};
	nanosleep(&nap, NULL);
	kill(pid, SIGSTOP);
	CHECK("waitpid WUNTRACED (threads)", waitpid(pid, &st, WUNTRACED) == pid);
	printf("threaded child: %s\n", wait_status(st));
	show_sigchld("threaded stop");
	CHECK("write while stopped", write(pipefd[1], "x", 1) == 1);
	si.si_pid = 0;
	CHECK("waitid WEXITED|WNOHANG while stopped", waitid(P_PID, pid, &si, WEXITED | WNOHANG) == 0);
	printf("  still there while stopped: %d\n", si.si_pid == 0);
	kill(pid, SIGCONT);
	show_sigchld("threaded continue");
	CHECK("tell it to exit", write(go[1], "x", 1) == 1);
	CHECK("waitpid threaded exit", waitpid(pid, &st, 0) == pid);
	printf("threaded child then: %s\n", wait_status(st));
	show_sigchld("threaded exit");

	/* 3. SIGTSTP with a handler runs it; the default stops; SIGKILL ends a stopped child. */
	pid = fork();
	if (pid == 0) {
		signal(SIGTSTP, on_tstp);
		raise(SIGTSTP);
		printf("child: SIGTSTP handled %d, still running\n", tstp_handled == SIGTSTP);
		fflush(stdout);
		signal(SIGTSTP, SIG_DFL);
		raise(SIGTSTP);
		_exit(1);
	}
	CHECK("waitpid WUNTRACED (TSTP)", waitpid(pid, &st, WUNTRACED) == pid);
	printf("TSTP child: %s\n", wait_status(st));
	show_sigchld("TSTP stop");
	kill(pid, SIGKILL);
	CHECK("waitpid killed", waitpid(pid, &st, 0) == pid);
	printf("killed while stopped: %s\n", wait_status(st));
	show_sigchld("kill");

	/* 4. With SA_NOCLDSTOP, stops and continues send no SIGCHLD. */
	struct sigaction sa = {0};
	sa.sa_handler = SIG_DFL;
	sa.sa_flags = SA_NOCLDSTOP;
	sigaction(SIGCHLD, &sa, NULL);
	pid = fork();
	if (pid == 0) {
		raise(SIGSTOP);
		_exit(0);
	}
	CHECK("waitpid WUNTRACED (NOCLDSTOP)", waitpid(pid, &st, WUNTRACED) == pid);
	show_sigchld("SA_NOCLDSTOP stop");
	kill(pid, SIGCONT);
	CHECK("waitpid NOCLDSTOP exit", waitpid(pid, &st, 0) == pid);
	printf("NOCLDSTOP child: %s\n", wait_status(st));
	show_sigchld("SA_NOCLDSTOP exit");

	/* 5. A child that leads a new session is an orphaned group (its parent is outside
	 * the session): the terminal's stop signals are discarded, SIGSTOP still stops. */
	pid = fork();
	if (pid == 0) {
		setsid();
		raise(SIGTSTP);
		raise(SIGTTIN);
		raise(SIGTTOU);
		printf("orphaned child: still running after SIGTSTP, SIGTTIN, SIGTTOU\n");
		fflush(stdout);
		raise(SIGSTOP);
		_exit(5);
	}
	CHECK("waitpid WUNTRACED (orphaned)", waitpid(pid, &st, WUNTRACED) == pid);
	printf("orphaned child: %s\n", wait_status(st));
	kill(pid, SIGCONT);
	CHECK("waitpid orphaned exit", waitpid(pid, &st, 0) == pid);
	printf("orphaned child then: %s\n", wait_status(st));
	return 0;
}
