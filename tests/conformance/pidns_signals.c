/* Signals and process lifetimes in a pid namespace (Linux's kernel/pid_namespace.c and
 * kernel/signal.c): si_pid as the receiver's namespace sees the sender, SIGCHLD's si_pid,
 * the namespace's init ignoring default-action signals sent from inside it, kill(-1)
 * limited to the namespace, orphans going to the namespace's init, and the end of the
 * init killing every other process in the namespace.
 *
 * Needs CAP_SYS_ADMIN for unshare(CLONE_NEWPID): run natively as root (which changes
 * nothing outside the new namespace) and in the sandbox. */
#include "conf.h"
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>

static volatile sig_atomic_t got_sig, got_pid, got_code, got_chld_pid;

static void on_usr1(int sig, siginfo_t *si, void *ctx)
{
	(void)ctx;
	got_sig = sig;
	got_pid = si->si_pid;
	got_code = si->si_code;
}

static void on_chld(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)ctx;
	got_chld_pid = si->si_pid;
}

static void handle(int sig, void (*fn)(int, siginfo_t *, void *))
{
	struct sigaction sa = {0};
	sa.sa_sigaction = fn;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigaction(sig, &sa, NULL);
}

/* Waits up to two seconds for a handler to set `flag`. */
static int wait_for(volatile sig_atomic_t *flag)
{
	for (int i = 0; i < 2000 && !*flag; i++)
		usleep(1000);
	return *flag != 0;
}

/* Blocks until the pipe's write ends are all closed (EOF) or 5 s pass: 1 on EOF. */
static int eof_within(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	if (poll(&p, 1, 5000) != 1)
		return 0;
	char c;
	return read(fd, &c, 1) == 0;
}

/* musl ships no kernel headers: the capability ABI, from linux/capability.h. */
struct cap_header {
	uint32_t version;
	int pid;
};
struct cap_data {
	uint32_t effective, permitted, inheritable;
};

/* Calls that take or give a pid other than through kill and wait. */
static void other_pid_calls(void)
{
	int fds[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, fds);
	printf("init: F_SETOWN(getpid()) %s, ", fcntl(fds[0], F_SETOWN, getpid()) ? errname(errno) : "0");
	printf("F_GETOWN %d\n", fcntl(fds[0], F_GETOWN));
	struct ucred peer;
	socklen_t len = sizeof peer;
	getsockopt(fds[0], SOL_SOCKET, SO_PEERCRED, &peer, &len);
	printf("init: SO_PEERCRED pid %d\n", peer.pid);

	int on = 1;
	setsockopt(fds[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
	struct ucred mine = {.pid = getpid(), .uid = getuid(), .gid = getgid()};
	char cbuf[CMSG_SPACE(sizeof mine)] = {0};
	char byte = 'x';
	struct iovec iov = {.iov_base = &byte, .iov_len = 1};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf};
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_CREDENTIALS;
	c->cmsg_len = CMSG_LEN(sizeof mine);
	memcpy(CMSG_DATA(c), &mine, sizeof mine);
	printf("init: sendmsg with SCM_CREDENTIALS pid %d: %s\n", mine.pid,
	       sendmsg(fds[0], &m, 0) < 0 ? errname(errno) : "0");
	memset(cbuf, 0, sizeof cbuf);
	m.msg_controllen = sizeof cbuf;
	recvmsg(fds[1], &m, 0);
	struct ucred got = {0};
	c = CMSG_FIRSTHDR(&m);
	if (c && c->cmsg_type == SCM_CREDENTIALS)
		memcpy(&got, CMSG_DATA(c), sizeof got);
	printf("init: received SCM_CREDENTIALS pid %d\n", got.pid);
	close(fds[0]);
	close(fds[1]);

	struct cap_header h = {.version = 0x20080522, .pid = 1};
	struct cap_data d[2];
	printf("init: capget(1) %s\n", syscall(SYS_capget, &h, d) ? errname(errno) : "0");
	void *head;
	size_t hlen;
	printf("init: get_robust_list(1) %s\n",
	       syscall(SYS_get_robust_list, 1, &head, &hlen) ? errname(errno) : "0");
}

/* Runs inside the new namespace, as its pid 1. */
static int init_main(int ready_w)
{
	printf("init: pid %d\n", getpid());
	other_pid_calls();
	handle(SIGUSR1, on_usr1);
	handle(SIGCHLD, on_chld);

	/* A signal to itself names itself as the namespace sees it. */
	got_sig = 0;
	kill(getpid(), SIGUSR1);
	printf("init: self kill si_pid %d si_code %d\n", got_pid, got_code);

	/* A child's signal to init: si_pid is the child's id here. */
	got_sig = 0;
	got_chld_pid = 0;
	pid_t c = fork();
	if (c == 0) {
		kill(1, SIGUSR1);
		_exit(3);
	}
	int ok = wait_for(&got_sig);
	printf("init: child %d signalled: got %d si_pid %d\n", c, ok, got_pid);
	wait_for(&got_chld_pid);
	int st;
	siginfo_t wi = {0};
	waitid(P_PID, c, &wi, WEXITED);
	printf("init: SIGCHLD si_pid %d, waitid si_pid %d status %d\n", got_chld_pid, wi.si_pid,
	       wi.si_status);

	/* Default-action signals from inside the namespace don't reach its init; a handled one
	 * does (above). SIGKILL included. */
	signal(SIGTERM, SIG_DFL);
	signal(SIGUSR2, SIG_DFL);
	c = fork();
	if (c == 0) {
		int r1 = kill(1, SIGTERM), r2 = kill(1, SIGUSR2), r3 = kill(1, SIGKILL);
		printf("child: kill(1, TERM/USR2/KILL) %d %d %d\n", r1, r2, r3);
		fflush(stdout);
		_exit(0);
	}
	waitpid(c, &st, 0);
	printf("init: survived default-action signals from inside\n");
	/* Even from itself. */
	kill(1, SIGUSR2);
	raise(SIGTERM);
	printf("init: survived its own SIGUSR2 and SIGTERM\n");

	/* Orphans go to the namespace's init. */
	int orphan_pipe[2];
	pipe(orphan_pipe);
	c = fork();
	if (c == 0) {
		pid_t g = fork();
		if (g == 0) {
			close(orphan_pipe[0]);
			/* Wait until the middle process is gone. */
			while (getppid() != 1 && getppid() != 0)
				usleep(1000);
			int ppid = getppid();
			write(orphan_pipe[1], &ppid, sizeof ppid);
			_exit(0);
		}
		_exit(0);
	}
	close(orphan_pipe[1]);
	waitpid(c, &st, 0);
	int orphan_ppid = -1;
	read(orphan_pipe[0], &orphan_ppid, sizeof orphan_ppid);
	close(orphan_pipe[0]);
	printf("init: an orphan's new parent is %d\n", orphan_ppid);
	/* init reaps it. */
	pid_t reaped = wait(&st);
	printf("init: reaped the orphan %d\n", reaped > 1);

	/* kill(-1) from inside reaches every process of the namespace but init and the caller,
	 * and nothing outside. */
	int k_pipe[2];
	pipe(k_pipe);
	pid_t victim = fork();
	if (victim == 0) {
		close(k_pipe[0]);
		for (;;)
			pause();
	}
	c = fork();
	if (c == 0) {
		signal(SIGUSR2, SIG_IGN);
		int r = kill(-1, SIGUSR2);
		printf("child: kill(-1, USR2) %s\n", r ? errname(errno) : "0");
		fflush(stdout);
		_exit(0);
	}
	waitpid(c, &st, 0);
	waitpid(victim, &st, 0);
	printf("init: victim %s by %d\n", WIFSIGNALED(st) ? "killed" : "not killed",
	       WIFSIGNALED(st) ? WTERMSIG(st) : 0);
	close(k_pipe[1]);
	close(k_pipe[0]);

	/* A long-lived child holds the write end of the parent's pipe: the init's end must kill
	 * it. Tell the parent we're ready, then exit. */
	pid_t sleeper = fork();
	if (sleeper == 0) {
		for (;;)
			pause();
	}
	printf("init: leaving a child behind, then exiting\n");
	fflush(stdout);
	write(ready_w, "r", 1);
	close(ready_w);
	_exit(5);
}

int main(void)
{
	handle(SIGUSR1, on_usr1);
	if (unshare(CLONE_NEWPID)) {
		printf("unshare: %s\n", errname(errno));
		return 1;
	}
	int hold[2], ready[2];
	pipe(hold);
	pipe(ready);
	pid_t init = fork();
	if (init == 0) {
		close(hold[0]);
		close(ready[0]);
		/* hold[1] stays open in init and everything it forks. */
		_exit(init_main(ready[1]));
	}
	close(hold[1]);
	close(ready[1]);
	char c;
	int r = read(ready[0], &c, 1);
	printf("parent: init ready %d\n", r == 1);

	int st;
	waitpid(init, &st, 0);
	printf("parent: init exited %d status %d\n", WIFEXITED(st), WEXITSTATUS(st));
	printf("parent: every process of the namespace is gone %d\n", eof_within(hold[0]));

	/* The namespace is dead: forking into it fails. */
	pid_t late = fork();
	if (late == 0)
		_exit(0);
	printf("parent: fork into a dead namespace %s\n", late < 0 ? errname(errno) : "ok");
	if (late > 0)
		waitpid(late, &st, 0);

	/* A second namespace: the parent (outside) signals its init; the handler sees si_pid 0,
	 * because the sender isn't in the namespace. SIGKILL from outside does kill init. */
	pipe(ready);
	int fd = open("/proc/self/ns/pid", 0);
	if (setns(fd, CLONE_NEWPID)) /* pid_for_children back to our own namespace */
		printf("setns: %s\n", errname(errno));
	close(fd);
	if (unshare(CLONE_NEWPID)) {
		printf("unshare 2: %s\n", errname(errno));
		return 1;
	}
	init = fork();
	if (init == 0) {
		close(ready[0]);
		got_sig = 0;
		write(ready[1], "r", 1);
		wait_for(&got_sig);
		printf("init 2: outside signal si_pid %d si_code %d\n", got_pid, got_code);
		fflush(stdout);
		write(ready[1], "s", 1);
		signal(SIGTERM, SIG_DFL);
		for (;;)
			pause();
	}
	close(ready[1]);
	read(ready[0], &c, 1);
	kill(init, SIGUSR1);
	read(ready[0], &c, 1);
	kill(init, SIGKILL);
	waitpid(init, &st, 0);
	printf("parent: SIGKILL from outside killed init 2: %d\n", WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	return 0;
}
