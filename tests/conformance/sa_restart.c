/* Blocking calls interrupted by a signal, by the rules of signal(7): with a
 * handler that has SA_RESTART, reads and writes of pipes and sockets, waits for
 * children, futex waits, accept and flock restart; without SA_RESTART they fail
 * with EINTR; poll, select, epoll_wait, nanosleep and pause fail with EINTR
 * either way; a socket with a receive timeout fails with EINTR either way; a
 * signal without a handler (ignored by default) never interrupts anything.
 *
 * The signal comes from a child (kill) or from another thread (tgkill) 100 ms
 * after the call started and once its task sleeps (state S in /proc, natively: a
 * task the machine had not yet run that far is waited for); what unblocks the call comes
 * once the handler has run (it writes a byte to a pipe the helper waits on) and,
 * 100 ms later, the task sleeps again (in the restarted call, or waiting for the
 * helper after an interrupted one). With
 * fixed delays alone a busy machine reordered them, natively too: a parent that
 * had not reached its read took the signal before it and then read the data. */
#include "conf.h"
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GAP_US 100000
/* musl has no kernel headers. */
#define FUTEX_WAIT 0
#define FUTEX_WAKE 1

static volatile sig_atomic_t handled;
static int p[2];	/* the pipe the blocked call reads */
static int sv[2];	/* a socket pair for recv */
static pid_t main_tid;
static volatile uint32_t futex_word;

/* The handler writes a byte here; a helper waits for it before ending the call. */
static int handler_ran[2];

static void on_signal(int sig)
{
	(void)sig;
	handled++;
	if (write(handler_ran[1], "h", 1) != 1)
		_exit(4);
}

/* Waits (10 s at most) until thread `tid` of process `pid` sleeps, in the call under test.
 * A thread of this process is watched from a child: the sandbox's /proc shows every thread
 * of the reader's own process as running (and those of others as sleeping). */
static void wait_asleep_here(pid_t pid, pid_t tid);

static void wait_asleep(pid_t pid, pid_t tid)
{
	if (pid != getpid()) {
		wait_asleep_here(pid, tid);
		return;
	}
	pid_t c = fork();
	if (c == 0) {
		wait_asleep_here(pid, tid);
		_exit(0);
	}
	int st;
	while (waitpid(c, &st, 0) < 0 && errno == EINTR)
		;
}

static void wait_asleep_here(pid_t pid, pid_t tid)
{
	char path[64], buf[512];
	snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	for (int i = 0; i < 10000; i++) {
		int fd = open(path, O_RDONLY);
		ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
		if (fd >= 0)
			close(fd);
		if (n > 0) {
			buf[n] = 0;
			char *end = strrchr(buf, ')');
			if (end && end[1] == ' ' && end[2] == 'S')
				return;
		}
		usleep(1000);
	}
}

/* After the signal: waits (10 s at most) until its handler has run, when it has one. */
static void wait_handled(int sig)
{
	if (sig != SIGUSR1)
		return;
	struct pollfd pfd = { .fd = handler_ran[0], .events = POLLIN };
	char b;
	if (poll(&pfd, 1, 10000) == 1 && read(handler_ran[0], &b, 1) == 1)
		return;
}

/* Forgets bytes of handlers that no helper waited for. */
static void drain_handler_ran(void)
{
	char buf[16];
	while (read(handler_ran[0], buf, sizeof buf) > 0)
		;
}

static void install(int sig, int flags)
{
	struct sigaction sa = { 0 };
	sa.sa_handler = on_signal;
	sa.sa_flags = flags;
	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

/* What the helper does after the signal, to end the blocked call. */
enum finish { NOTHING, WRITE_PIPE, SEND_SOCKET, EXIT_7, WAKE_FUTEX, CONNECT, UNLOCK };

static const char *sock_path = "/tmp/sa_restart.sock";
static int lock_fd;
/* The UNLOCK child writes a byte here once it holds the lock. */
static int lock_held[2];

static void do_finish(enum finish f)
{
	switch (f) {
	case NOTHING:
		break;
	case WRITE_PIPE:
		if (write(p[1], "hello", 5) != 5)
			_exit(3);
		break;
	case SEND_SOCKET:
		if (send(sv[1], "sock!", 5, 0) != 5)
			_exit(3);
		break;
	case EXIT_7:
		_exit(7);
	case WAKE_FUTEX:
		futex_word = 1;
		syscall(SYS_futex, &futex_word, FUTEX_WAKE, 1, NULL, NULL, 0);
		break;
	case CONNECT: {
		int c = socket(AF_UNIX, SOCK_STREAM, 0);
		struct sockaddr_un a = { .sun_family = AF_UNIX };
		strcpy(a.sun_path, sock_path);
		if (connect(c, (struct sockaddr *)&a, sizeof a) != 0)
			_exit(3);
		break;
	}
	case UNLOCK:
		flock(lock_fd, LOCK_UN);
		break;
	}
}

/* A child that signals its parent, then finishes the call. */
static pid_t helper_child(int sig, enum finish f)
{
	pid_t parent = getpid();
	drain_handler_ran();
	pid_t c = fork();
	if (c == 0) {
		if (f == UNLOCK) {
			/* A lock of its own description, which the parent waits for. */
			lock_fd = open("/tmp/sa_restart.lock", O_RDWR);
			flock(lock_fd, LOCK_EX);
			if (write(lock_held[1], "", 1) != 1)
				_exit(3);
		}
		usleep(GAP_US);
		wait_asleep(parent, parent);
		kill(parent, sig);
		wait_handled(sig);
		usleep(GAP_US);
		wait_asleep(parent, parent);
		do_finish(f);
		usleep(GAP_US);
		_exit(0);
	}
	return c;
}

static void reap(pid_t c)
{
	int st;
	while (waitpid(c, &st, 0) < 0 && errno == EINTR)
		;
}

struct thread_job {
	int sig;
	enum finish f;
};

static void *helper_thread(void *arg)
{
	struct thread_job *j = arg;
	drain_handler_ran();
	usleep(GAP_US);
	wait_asleep(getpid(), main_tid);
	syscall(SYS_tgkill, getpid(), main_tid, j->sig);
	wait_handled(j->sig);
	usleep(GAP_US);
	wait_asleep(getpid(), main_tid);
	do_finish(j->f);
	return NULL;
}

static void show(const char *label, long r, int e, const char *data)
{
	if (r < 0)
		printf("%s: -1 %s handled=%d\n", label, errname(e), handled);
	else
		printf("%s: %ld \"%s\" handled=%d\n", label, r, data, handled);
	handled = 0;
}

static void drain_pipe(void)
{
	char buf[16];
	int fl = fcntl(p[0], F_GETFL);
	fcntl(p[0], F_SETFL, fl | O_NONBLOCK);
	while (read(p[0], buf, sizeof buf) > 0)
		;
	fcntl(p[0], F_SETFL, fl);
}

static void read_pipe(const char *label, int flags, int by_thread, int sig)
{
	install(SIGUSR1, flags);
	char buf[16] = { 0 };
	pthread_t th;
	struct thread_job job = { sig, WRITE_PIPE };
	pid_t c = 0;
	if (by_thread)
		pthread_create(&th, NULL, helper_thread, &job);
	else
		c = helper_child(sig, WRITE_PIPE);
	errno = 0;
	long n = read(p[0], buf, sizeof buf - 1);
	show(label, n, errno, buf);
	if (by_thread)
		pthread_join(th, NULL);
	else
		reap(c);
	drain_pipe();
}

static void recv_socket(const char *label, int flags, int timeout)
{
	install(SIGUSR1, flags);
	struct timeval tv = { .tv_sec = timeout ? 5 : 0 };
	setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	char buf[16] = { 0 };
	pid_t c = helper_child(SIGUSR1, SEND_SOCKET);
	errno = 0;
	long n = recv(sv[0], buf, sizeof buf - 1, 0);
	show(label, n, errno, buf);
	reap(c);
	if (n < 0) {
		n = recv(sv[0], buf, sizeof buf - 1, 0);
		printf("%s: then %ld\n", label, n);
	}
}

static void never_restarted(const char *what)
{
	install(SIGUSR1, SA_RESTART);
	pid_t c = helper_child(SIGUSR1, NOTHING);
	long r;
	errno = 0;
	if (!strcmp(what, "poll")) {
		struct pollfd f = { .fd = p[0], .events = POLLIN };
		r = poll(&f, 1, -1);
	} else if (!strcmp(what, "select")) {
		fd_set rd;
		FD_ZERO(&rd);
		FD_SET(p[0], &rd);
		r = select(p[0] + 1, &rd, NULL, NULL, NULL);
	} else if (!strcmp(what, "epoll_wait")) {
		int ep = epoll_create1(0);
		struct epoll_event ev = { .events = EPOLLIN };
		epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
		r = epoll_wait(ep, &ev, 1, -1);
		int e = errno;
		close(ep);
		errno = e;
	} else if (!strcmp(what, "nanosleep")) {
		struct timespec ts = { .tv_sec = 5 }, rem = { 0 };
		r = nanosleep(&ts, &rem);
		int e = errno;
		printf("nanosleep remaining: %s\n",
		       rem.tv_sec < 5 && (rem.tv_sec > 0 || rem.tv_nsec > 0) ? "ok" : "FAIL");
		errno = e;
	} else if (!strcmp(what, "clock_nanosleep")) {
		struct timespec ts = { .tv_sec = 5 };
		r = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
		if (r > 0) {
			errno = r;
			r = -1;
		}
	} else {
		r = pause();
	}
	show(what, r, errno, "");
	reap(c);
}

static void wait_child(const char *label, int flags)
{
	install(SIGUSR1, flags);
	pid_t c = helper_child(SIGUSR1, EXIT_7);
	int st = 0;
	errno = 0;
	pid_t r = waitpid(c, &st, 0);
	if (r == c)
		printf("%s: child exit %d handled=%d\n", label, WEXITSTATUS(st), handled);
	else
		show(label, r, errno, "");
	handled = 0;
	if (r != c)
		reap(c);
}

static void futex_wait(const char *label, int flags)
{
	install(SIGUSR1, flags);
	futex_word = 0;
	pthread_t th;
	struct thread_job job = { SIGUSR1, WAKE_FUTEX };
	pthread_create(&th, NULL, helper_thread, &job);
	errno = 0;
	long r = syscall(SYS_futex, &futex_word, FUTEX_WAIT, 0, NULL, NULL, 0);
	show(label, r, errno, "");
	pthread_join(th, NULL);
}

static void accept_conn(const char *label, int flags)
{
	install(SIGUSR1, flags);
	unlink(sock_path);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	strcpy(a.sun_path, sock_path);
	bind(l, (struct sockaddr *)&a, sizeof a);
	listen(l, 4);
	pid_t c = helper_child(SIGUSR1, CONNECT);
	errno = 0;
	long r = accept(l, NULL, NULL);
	int e = errno;
	if (r >= 0) {
		close(r);
		r = 0;
	}
	show(label, r, e, "");
	reap(c);
	close(l);
	unlink(sock_path);
}

static void flock_wait(const char *label, int flags)
{
	install(SIGUSR1, flags);
	int fd = open("/tmp/sa_restart.lock", O_RDWR | O_CREAT, 0600);
	if (pipe(lock_held) != 0)
		exit(1);
	pid_t c = helper_child(SIGUSR1, UNLOCK);
	/* The child holds the lock before the parent asks. (A sleep here was not enough on a
	 * busy machine: the parent took the lock first, and waited for the child, which waited
	 * for the lock.) */
	char b;
	while (read(lock_held[0], &b, 1) < 0 && errno == EINTR)
		;
	close(lock_held[0]);
	close(lock_held[1]);
	errno = 0;
	long r = flock(fd, LOCK_EX);
	show(label, r, errno, "");
	reap(c);
	close(fd);
}

/* A pending blocked signal, unblocked by the call's own mask: the handler runs
 * during the call, which fails with EINTR; the caller's mask is back after. */
static void sigmask_wait(const char *what)
{
	install(SIGUSR1, SA_RESTART);
	sigset_t block, none, now;
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigemptyset(&none);
	sigprocmask(SIG_BLOCK, &block, NULL);
	raise(SIGUSR1);
	long r;
	errno = 0;
	if (!strcmp(what, "ppoll")) {
		struct pollfd f = { .fd = p[0], .events = POLLIN };
		struct timespec ts = { .tv_sec = 5 };
		r = ppoll(&f, 1, &ts, &none);
	} else if (!strcmp(what, "pselect")) {
		fd_set rd;
		FD_ZERO(&rd);
		FD_SET(p[0], &rd);
		struct timespec ts = { .tv_sec = 5 };
		r = pselect(p[0] + 1, &rd, NULL, NULL, &ts, &none);
	} else {
		int ep = epoll_create1(0);
		struct epoll_event ev = { .events = EPOLLIN };
		epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev);
		r = epoll_pwait(ep, &ev, 1, 5000, &none);
		int e = errno;
		close(ep);
		errno = e;
	}
	int e = errno;
	sigprocmask(SIG_BLOCK, NULL, &now);
	printf("%s with a mask: blocked again after: %d\n", what, sigismember(&now, SIGUSR1));
	show(what, r, e, "");
	sigprocmask(SIG_UNBLOCK, &block, NULL);
}

int main(void)
{
	main_tid = (pid_t)syscall(SYS_gettid);
	if (pipe(p) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 ||
	    pipe2(handler_ran, O_NONBLOCK) != 0) {
		printf("setup: FAIL\n");
		return 1;
	}

	read_pipe("read SA_RESTART, kill from a child", SA_RESTART, 0, SIGUSR1);
	read_pipe("read no SA_RESTART, kill from a child", 0, 0, SIGUSR1);
	read_pipe("read SA_RESTART, tgkill from a thread", SA_RESTART, 1, SIGUSR1);
	read_pipe("read no SA_RESTART, tgkill from a thread", 0, 1, SIGUSR1);
	/* SIGURG's default action is to ignore it: nothing is interrupted. */
	read_pipe("read, SIGURG without a handler", 0, 0, SIGURG);
	read_pipe("read, SIGURG without a handler from a thread", 0, 1, SIGURG);

	recv_socket("recv SA_RESTART", SA_RESTART, 0);
	recv_socket("recv no SA_RESTART", 0, 0);
	recv_socket("recv SA_RESTART with SO_RCVTIMEO", SA_RESTART, 1);

	never_restarted("poll");
	never_restarted("select");
	never_restarted("epoll_wait");
	never_restarted("nanosleep");
	never_restarted("clock_nanosleep");
	never_restarted("pause");
	sigmask_wait("ppoll");
	sigmask_wait("pselect");
	sigmask_wait("epoll_pwait");

	wait_child("waitpid SA_RESTART", SA_RESTART);
	wait_child("waitpid no SA_RESTART", 0);

	futex_wait("futex SA_RESTART", SA_RESTART);
	futex_wait("futex no SA_RESTART", 0);

	accept_conn("accept SA_RESTART", SA_RESTART);
	accept_conn("accept no SA_RESTART", 0);

	flock_wait("flock SA_RESTART", SA_RESTART);
	flock_wait("flock no SA_RESTART", 0);
	unlink("/tmp/sa_restart.lock");
	return 0;
}
