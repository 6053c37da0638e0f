/* POSIX message queues: mq_open (create, exclusive, attributes, permissions, names),
 * mq_unlink, mq_timedsend/mq_timedreceive (priorities, O_NONBLOCK, timeouts, EMSGSIZE,
 * blocking between processes, signals with and without SA_RESTART), mq_notify
 * (SIGEV_SIGNAL with SI_MESGQ and sigev_value, SIGEV_NONE, EBUSY, one-shot), mq_getsetattr,
 * descriptors (poll, epoll, fstat, close-on-exec, read gives the status line), O_ACCMODE,
 * and a full descriptor table (EMFILE first).
 * pids are only compared. Every queue is unlinked. */
#include "conf.h"
#include <fcntl.h>
#include <mqueue.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

static char name[64];

static void attr_line(const char *label, mqd_t q)
{
	struct mq_attr a;
	if (mq_getattr(q, &a) < 0) {
		printf("%s: %s\n", label, errname(errno));
		return;
	}
	printf("%s: flags=%s maxmsg=%ld msgsize=%ld curmsgs=%ld\n", label,
	       (a.mq_flags & O_NONBLOCK) ? "O_NONBLOCK" : "0", a.mq_maxmsg, a.mq_msgsize, a.mq_curmsgs);
}

static void recv_line(const char *label, mqd_t q, size_t len)
{
	char buf[256];
	unsigned prio = 99;
	errno = 0;
	ssize_t n = mq_receive(q, buf, len, &prio);
	if (n < 0)
		printf("%s: %s\n", label, errname(errno));
	else
		printf("%s: '%.*s' prio=%u\n", label, (int)n, buf, prio);
}

static void status_line(const char *label, mqd_t q)
{
	char buf[128] = {0};
	(void)q;
	/* A fresh descriptor reads the line from its start. */
	mqd_t q2 = mq_open(name, O_RDONLY);
	ssize_t n = read(q2, buf, sizeof buf - 1);
	char more[8];
	ssize_t n2 = read(q2, more, sizeof more);
	mq_close(q2);
	unsigned long qsize;
	int notify, signo, npid;
	if (n <= 0 || sscanf(buf, "QSIZE:%lu NOTIFY:%d SIGNO:%d NOTIFY_PID:%d", &qsize, &notify, &signo, &npid) != 4) {
		printf("%s: unreadable (%zd)\n", label, n);
		return;
	}
	printf("%s: len=%zd QSIZE=%lu NOTIFY=%d SIGNO=%d pid_me=%d then %zd\n", label, n, qsize, notify,
	       signo, npid == getpid(), n2);
}

static volatile int got_sig, got_code, got_value, got_pid_me;
static void on_sig(int s, siginfo_t *si, void *ctx)
{
	(void)ctx;
	got_sig = s;
	got_code = si->si_code;
	got_value = si->si_value.sival_int;
	got_pid_me = si->si_pid == getpid();
}

static int handler_pipe[2];
static volatile int alarmed;
static void on_alarm(int s)
{
	(void)s;
	alarmed = 1;
	if (write(handler_pipe[1], "a", 1) != 1)
		_exit(3);
}

static struct timespec in_ms(long ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_nsec += (ms % 1000) * 1000000;
	ts.tv_sec += ms / 1000 + ts.tv_nsec / 1000000000;
	ts.tv_nsec %= 1000000000;
	return ts;
}

int main(void)
{
	snprintf(name, sizeof name, "/conf-mq-%d", (int)getpid());
	mq_unlink(name);
	struct mq_attr attr = {0, 4, 64, 0};
	mqd_t q = mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0640, &attr);
	CHECK("mq_open create", q != (mqd_t)-1);
	attr_line("fresh", q);
	int fdflags = fcntl(q, F_GETFD);
	printf("close-on-exec: %d\n", (fdflags & FD_CLOEXEC) != 0);
	struct stat st;
	fstat(q, &st);
	printf("fstat: regular=%d mode=%o uid_me=%d\n", S_ISREG(st.st_mode), (unsigned)(st.st_mode & 07777),
	       st.st_uid == geteuid());
	status_line("empty", q);

	/* Priorities: highest first, FIFO within one. */
	mq_send(q, "a", 1, 1);
	mq_send(q, "bb", 2, 5);
	mq_send(q, "ccc", 3, 1);
	mq_send(q, "d", 1, 3);
	attr_line("four sent", q);
	status_line("four sent", q);
	errno = 0;
	struct mq_attr na = {O_NONBLOCK, 0, 0, 0}, old;
	ERRCALL("mq_setattr O_NONBLOCK", mq_setattr(q, &na, &old));
	printf("old flags: %ld\n", old.mq_flags);
	ERRCALL("send to a full queue, O_NONBLOCK", mq_send(q, "e", 1, 0));
	struct pollfd pfd = {q, POLLIN | POLLOUT, 0};
	poll(&pfd, 1, 0);
	printf("full: POLLIN=%d POLLOUT=%d\n", !!(pfd.revents & POLLIN), !!(pfd.revents & POLLOUT));
	recv_line("small buffer", q, 63);
	recv_line("1st", q, 64);
	recv_line("2nd", q, 64);
	recv_line("3rd", q, 64);
	recv_line("4th", q, 64);
	recv_line("empty, O_NONBLOCK", q, 64);
	poll(&pfd, 1, 0);
	printf("empty: POLLIN=%d POLLOUT=%d\n", !!(pfd.revents & POLLIN), !!(pfd.revents & POLLOUT));
	na.mq_flags = 0;
	mq_setattr(q, &na, NULL);
	attr_line("blocking again", q);

	/* Sizes and bad arguments. */
	char big[100];
	memset(big, 'x', sizeof big);
	ERRCALL("65 bytes into 64", mq_send(q, big, 65, 0));
	ERRCALL("64 bytes", mq_send(q, big, 64, 0));
	ERRCALL("zero bytes", mq_send(q, big, 0, 0));
	ERRCALL("priority 32768", mq_send(q, big, 1, 32768));
	ERRCALL("bad buffer", mq_send(q, (char *)8, 4, 0));
	struct timespec bad = {0, 1000000000};
	ERRCALL("bad timeout nsec", mq_timedsend(q, big, 1, 0, &bad));
	ERRCALL("bad timeout pointer", mq_timedsend(q, big, 1, 0, (struct timespec *)8));
	ERRCALL("bad descriptor", mq_send(999, big, 1, 0));
	int pp[2];
	if (pipe(pp))
		return 1;
	ERRCALL("a pipe", mq_send(pp[0], big, 1, 0));
	ERRCALL("mq_getattr of a pipe", mq_getattr(pp[0], &attr));
	recv_line("64 back", q, 64);
	ERRCALL("receive into a bad buffer", mq_receive(q, (char *)8, 64, NULL));
	attr_line("after the lost message", q);
	na.mq_flags = 0x1;
	ERRCALL("mq_setattr unknown flag", mq_setattr(q, &na, NULL));

	/* Timeouts. */
	struct timespec past = {1, 0};
	ERRCALL("receive, timeout in the past", mq_timedreceive(q, big, 64, NULL, &past));
	struct timespec soon = in_ms(100);
	ERRCALL("receive, 100 ms", mq_timedreceive(q, big, 64, NULL, &soon));
	for (int i = 0; i < 4; i++)
		mq_send(q, "f", 1, 0);
	soon = in_ms(100);
	ERRCALL("send to full, 100 ms", mq_timedsend(q, "g", 1, 0, &soon));
	ERRCALL("send to full, timeout in the past", mq_timedsend(q, "g", 1, 0, &past));
	for (int i = 0; i < 4; i++)
		mq_receive(q, big, 64, NULL);

	/* Blocking between processes. */
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		char b[64];
		unsigned p;
		ssize_t n = mq_receive(q, b, 64, &p);
		printf("child received '%.*s' prio %u\n", (int)n, b, p);
		fflush(stdout);
		_exit(0);
	}
	usleep(100000);
	mq_send(q, "wake", 4, 7);
	int ws;
	waitpid(c, &ws, 0);
	printf("receiver: %s\n", wait_status(ws));
	for (int i = 0; i < 4; i++)
		mq_send(q, "h", 1, 0);
	fflush(stdout);
	c = fork();
	if (c == 0)
		_exit(mq_send(q, "late", 4, 9) == 0 ? 0 : 1);
	usleep(100000);
	recv_line("take one", q, 64);
	waitpid(c, &ws, 0);
	printf("sender: %s\n", wait_status(ws));
	recv_line("the late one first", q, 64);
	for (int i = 0; i < 3; i++)
		mq_receive(q, big, 64, NULL);

	/* epoll. */
	int ep = epoll_create1(0);
	struct epoll_event ev = {EPOLLIN, {.u32 = 7}};
	ERRCALL("epoll_ctl add", epoll_ctl(ep, EPOLL_CTL_ADD, q, &ev));
	struct epoll_event out;
	printf("epoll empty: %d\n", epoll_wait(ep, &out, 1, 0));
	mq_send(q, "e", 1, 0);
	int ne = epoll_wait(ep, &out, 1, 1000);
	printf("epoll after a send: %d data=%u in=%d\n", ne, out.data.u32, !!(out.events & EPOLLIN));
	mq_receive(q, big, 64, NULL);
	close(ep);

	/* mq_notify. */
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sig;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGUSR1, &sa, NULL);
	struct sigevent sev;
	memset(&sev, 0, sizeof sev);
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = SIGUSR1;
	sev.sigev_value.sival_int = 1234;
	ERRCALL("mq_notify SIGEV_SIGNAL", mq_notify(q, &sev));
	status_line("closing any descriptor of the queue unregisters", q);
	ERRCALL("mq_notify SIGEV_SIGNAL again", mq_notify(q, &sev));
	fflush(stdout);
	c = fork();
	if (c == 0) {
		struct sigevent s2;
		memset(&s2, 0, sizeof s2);
		s2.sigev_notify = SIGEV_NONE;
		ERRCALL("another process registers", mq_notify(q, &s2));
		fflush(stdout);
		_exit(0);
	}
	waitpid(c, &ws, 0);
	mq_send(q, "n", 1, 0);
	for (int i = 0; i < 100 && !got_sig; i++)
		usleep(10000);
	printf("notified: sig=%d SI_MESGQ=%d value=%d pid_me=%d\n", got_sig, got_code == SI_MESGQ, got_value,
	       got_pid_me);
	status_line("one-shot: unregistered", q);
	got_sig = 0;
	mq_send(q, "n", 1, 0);
	usleep(50000);
	printf("no second signal: %d\n", got_sig);
	mq_receive(q, big, 64, NULL);
	mq_receive(q, big, 64, NULL);
	sev.sigev_notify = SIGEV_NONE;
	ERRCALL("mq_notify SIGEV_NONE", mq_notify(q, &sev));
	ERRCALL("again: EBUSY", mq_notify(q, &sev));
	status_line("SIGEV_NONE", q);
	ERRCALL("unregister", mq_notify(q, NULL));
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = 0;
	ERRCALL("signal 0", mq_notify(q, &sev));
	sev.sigev_signo = 65;
	ERRCALL("signal 65", mq_notify(q, &sev));
	sev.sigev_notify = 99;
	ERRCALL("bad sigev_notify", mq_notify(q, &sev));
	ERRCALL("bad sigevent pointer", syscall(SYS_mq_notify, q, (void *)8));

	/* Signals interrupt waits: EINTR without SA_RESTART, restarted with it. */
	if (pipe(handler_pipe))
		return 1;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_alarm;
	sigaction(SIGALRM, &sa, NULL);
	alarm(1);
	errno = 0;
	ssize_t r = mq_receive(q, big, 64, NULL);
	printf("interrupted receive: %zd %s handler=%d\n", r, errname(errno), alarmed);
	char hb;
	if (read(handler_pipe[0], &hb, 1) != 1)
		return 1;
	alarmed = 0;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	fflush(stdout);
	c = fork();
	if (c == 0) {
		/* Sends once the parent's handler has run. */
		if (read(handler_pipe[0], &hb, 1) != 1)
			_exit(1);
		mqd_t q3 = mq_open(name, O_WRONLY);
		_exit(mq_send(q3, "restarted", 9, 0) == 0 ? 0 : 1);
	}
	alarm(1);
	errno = 0;
	r = mq_receive(q, big, 64, NULL);
	printf("SA_RESTART receive: %zd '%.*s' handler=%d\n", r, (int)(r > 0 ? r : 0), big, alarmed);
	waitpid(c, &ws, 0);

	/* Opening again: flags, permissions, limits. */
	ERRCALL("O_CREAT|O_EXCL existing", mq_open(name, O_RDWR | O_CREAT | O_EXCL, 0600, NULL));
	mqd_t w = mq_open(name, O_WRONLY);
	CHECK("open existing write-only", w != (mqd_t)-1);
	ERRCALL("receive on a write-only descriptor", mq_receive(w, big, 64, NULL));
	ERRCALL("O_RDWR|O_WRONLY", syscall(SYS_mq_open, name + 1, O_RDWR | O_WRONLY, 0600, NULL));
	ERRCALL("name with a slash", syscall(SYS_mq_open, "a/b", O_RDWR | O_CREAT, 0600, NULL));
	ERRCALL("name ..", syscall(SYS_mq_open, "..", O_RDWR | O_CREAT, 0600, NULL));
	ERRCALL("bad name pointer", syscall(SYS_mq_open, (char *)8, O_RDWR, 0600, NULL));
	char longname[300];
	memset(longname, 'n', sizeof longname);
	longname[299] = 0;
	ERRCALL("name of 299 bytes", syscall(SYS_mq_open, longname, O_RDWR | O_CREAT, 0600, NULL));
	char other[80];
	snprintf(other, sizeof other, "/conf-mq-%d-b", (int)getpid());
	struct mq_attr bada = {0, 0, 64, 0};
	ERRCALL("maxmsg 0", mq_open(other, O_RDWR | O_CREAT, 0600, &bada));
	bada.mq_maxmsg = 4;
	bada.mq_msgsize = -1;
	ERRCALL("msgsize -1", mq_open(other, O_RDWR | O_CREAT, 0600, &bada));
	ERRCALL("bad attr pointer", mq_open(other, O_RDWR | O_CREAT, 0600, (struct mq_attr *)8));
	ERRCALL("absent", mq_open(other, O_RDWR));
	mqd_t d = mq_open(other, O_RDWR | O_CREAT, 0600, NULL);
	attr_line("default attributes", d);
	mq_close(d);
	fflush(stdout);
	c = fork();
	if (c == 0) {
		if (setgid(65534) || setuid(65534)) {
			printf("cannot drop privileges\n");
			_exit(0);
		}
		ERRCALL("other user, mode 640, read", mq_open(name, O_RDONLY) == (mqd_t)-1 ? -1 : 0);
		ERRCALL("other user, mode 600", mq_open(other, O_RDONLY));
		ERRCALL("other user unlink", mq_unlink(other));
		char mine[80];
		snprintf(mine, sizeof mine, "/conf-mq-%d-c", (int)getpid());
		struct mq_attr big_attr = {0, 11, 64, 0};
		ERRCALL("other user, maxmsg 11", mq_open(mine, O_RDWR | O_CREAT, 0600, &big_attr));
		big_attr.mq_maxmsg = 10;
		big_attr.mq_msgsize = 8193;
		ERRCALL("other user, msgsize 8193", mq_open(mine, O_RDWR | O_CREAT, 0600, &big_attr));
		_exit(0);
	}
	waitpid(c, &ws, 0);

	/* O_ACCMODE (3): a new queue is made, opened for neither reading nor writing; an
	 * existing one refuses it. */
	char acc[80];
	snprintf(acc, sizeof acc, "/conf-mq-%d-acc", (int)getpid());
	errno = 0;
	mqd_t qa = mq_open(acc, O_CREAT | O_EXCL | 3, 0600, &attr);
	printf("create with O_ACCMODE: %s\n", qa == (mqd_t)-1 ? errname(errno) : "made");
	ERRCALL("send on it", mq_send(qa, "x", 1, 0));
	char abuf[64];
	ERRCALL("receive on it", mq_receive(qa, abuf, sizeof abuf, NULL));
	ERRCALL("open existing with O_ACCMODE", mq_open(acc, 3));
	mq_close(qa);
	mq_unlink(acc);

	/* A full descriptor table: EMFILE before the name is looked at, and nothing made. */
	fflush(stdout);
	c = fork();
	if (c == 0) {
		struct rlimit rl = {8, 8};
		setrlimit(RLIMIT_NOFILE, &rl);
		while (dup(0) >= 0)
			;
		ERRCALL("full table, no such queue", mq_open(acc, O_RDWR));
		ERRCALL("full table, create", mq_open(acc, O_RDWR | O_CREAT, 0600, NULL));
		close(7);
		ERRCALL("then open it", mq_open(acc, O_RDWR));
		mq_unlink(acc);
		fflush(stdout);
		_exit(0);
	}
	waitpid(c, &ws, 0);

	/* Unlinking: the name goes, open descriptors go on. */
	ERRCALL("mq_unlink", mq_unlink(name));
	ERRCALL("mq_unlink again", mq_unlink(name));
	ERRCALL("open after unlink", mq_open(name, O_RDWR));
	ERRCALL("send after unlink", mq_send(q, "z", 1, 0));
	recv_line("receive after unlink", q, 64);
	ERRCALL("mq_unlink other", mq_unlink(other));
	mq_close(w);
	mq_close(q);
	return 0;
}
