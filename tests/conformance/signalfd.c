/* signalfd: reading blocked signals as records instead of running handlers;
 * EAGAIN when nonblocking and empty; several records in one read; a read that
 * blocks until another thread or a child sends the signal; poll and epoll
 * readiness; changing the mask of an existing signalfd; flags and errors; and
 * SIGPIPE from a plain pipe write (handled, then ignored). */
#include "conf.h"
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t handled;
static void on_signal(int sig) { (void)sig; handled++; }

static pid_t main_tid;

static void *sender(void *arg)
{
	(void)arg;
	usleep(100000);
	syscall(SYS_tgkill, getpid(), main_tid, SIGUSR2);
	return NULL;
}

static void show_record(const char *label, const struct signalfd_siginfo *si)
{
	printf("%s: signo %u code %d pid ok %d\n", label, si->ssi_signo, si->ssi_code,
	       si->ssi_pid == (uint32_t)getpid());
}

int main(void)
{
	main_tid = (pid_t)syscall(SYS_gettid);
	struct sigaction sa = { 0 };
	sa.sa_handler = on_signal;
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGUSR2);
	sigprocmask(SIG_BLOCK, &mask, NULL);

	int fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	CHECK("signalfd", fd >= 0);
	CHECK("cloexec", (fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
	CHECK("nonblock", (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
	struct signalfd_siginfo si[4];
	ERRCALL("empty read", read(fd, si, sizeof si));
	ERRCALL("short buffer", read(fd, si, sizeof si[0] - 1));

	struct pollfd pf = { .fd = fd, .events = POLLIN };
	printf("poll empty: %d\n", poll(&pf, 1, 0));
	kill(getpid(), SIGUSR1);
	raise(SIGUSR2);
	int r = poll(&pf, 1, 0);
	printf("poll pending: %d revents IN %d\n", r, !!(pf.revents & POLLIN));
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 7 };
	epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
	r = epoll_wait(ep, &ev, 1, 0);
	printf("epoll pending: %d data %llu\n", r, (unsigned long long)ev.data.u64);
	long n = read(fd, si, sizeof si);
	printf("read both: %ld records\n", n / (long)sizeof si[0]);
	show_record("first", &si[0]);
	show_record("second", &si[1]);
	printf("handlers ran: %d\n", handled);
	ERRCALL("empty again", read(fd, si, sizeof si));

	/* A blocking signalfd: the read waits for the signal from another thread. */
	int bfd = signalfd(-1, &mask, 0);
	pthread_t th;
	pthread_create(&th, NULL, sender, NULL);
	n = read(bfd, si, sizeof si);
	printf("blocking read: %ld records\n", n / (long)sizeof si[0]);
	show_record("from thread", &si[0]);
	pthread_join(th, NULL);

	/* ... and from a child, waking an epoll_wait on it. */
	pid_t parent = getpid(), c = fork();
	if (c == 0) {
		usleep(100000);
		kill(parent, SIGUSR1);
		_exit(0);
	}
	ev.data.u64 = 0;
	r = epoll_wait(ep, &ev, 1, 5000);
	printf("epoll_wait blocking: %d data %llu\n", r, (unsigned long long)ev.data.u64);
	n = read(fd, si, sizeof si);
	printf("from child: %u code %d\n", si[0].ssi_signo, si[0].ssi_code);
	waitpid(c, NULL, 0);

	/* A new mask for the existing descriptor: SIGUSR2 only. */
	sigset_t only2;
	sigemptyset(&only2);
	sigaddset(&only2, SIGUSR2);
	printf("update returns the fd: %d\n", signalfd(fd, &only2, 0) == fd);
	raise(SIGUSR1);
	ERRCALL("SIGUSR1 no longer read", read(fd, si, sizeof si));
	raise(SIGUSR2);
	n = read(fd, si, sizeof si);
	printf("SIGUSR2 read: %ld signo %u\n", n / (long)sizeof si[0], si[0].ssi_signo);
	sigset_t pend;
	sigpending(&pend);
	printf("SIGUSR1 still pending: %d\n", sigismember(&pend, SIGUSR1));
	sigprocmask(SIG_UNBLOCK, &mask, NULL);
	printf("delivered on unblock: %d\n", handled);
	ERRCALL("not a signalfd", signalfd(ep, &only2, 0));
	ERRCALL("bad fd", signalfd(1000, &only2, 0));
	ERRCALL("bad flags", signalfd(-1, &only2, 0x1));
	ERRCALL("bad size", syscall(SYS_signalfd4, -1, &only2, 4, 0));
	ERRCALL("write", write(fd, si, sizeof si[0]));

	/* SIGPIPE from a plain pipe write: the handler runs, then EPIPE. */
	int p[2];
	pipe(p);
	close(p[0]);
	sigaction(SIGPIPE, &sa, NULL);
	handled = 0;
	ERRCALL("write to a pipe without readers", write(p[1], "x", 1));
	printf("SIGPIPE handled: %d\n", handled);
	signal(SIGPIPE, SIG_IGN);
	ERRCALL("ignored SIGPIPE", write(p[1], "x", 1));
	/* Blocked, it stays pending: a signalfd can read it. */
	signal(SIGPIPE, SIG_DFL);
	sigset_t pm;
	sigemptyset(&pm);
	sigaddset(&pm, SIGPIPE);
	sigprocmask(SIG_BLOCK, &pm, NULL);
	ERRCALL("blocked SIGPIPE", write(p[1], "x", 1));
	int pfd = signalfd(-1, &pm, SFD_NONBLOCK);
	n = read(pfd, si, sizeof si);
	printf("SIGPIPE via signalfd: %ld signo %u code %d\n", n / (long)sizeof si[0],
	       si[0].ssi_signo, si[0].ssi_code);
	return 0;
}
