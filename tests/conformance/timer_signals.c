/* Timer signals meet the signal machinery: an interval timer's SIGALRM interrupts
 * nanosleep (EINTR, time left) and a pipe read (EINTR without SA_RESTART, restarted
 * with it); it interrupts a timerfd read (restarted under SA_RESTART); a SIGEV_THREAD_ID
 * timer interrupts a read blocked in that very thread; and a POSIX timer's signal read
 * through a signalfd carries the timer's fields and re-arms the timer like a delivery.
 * Only facts that hold whatever the timing print. */
#include "conf.h"
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t hits, on_tid_ok;
static volatile pid_t want_tid;
static int feed_fd = -1;

/* Counts, notes the thread, and (when asked) feeds the pipe a restarted read waits on. */
static void on_signal(int sig)
{
	(void)sig;
	hits++;
	on_tid_ok = want_tid == 0 || syscall(SYS_gettid) == want_tid;
	if (feed_fd >= 0) {
		char c = 'x';
		if (write(feed_fd, &c, 1) != 1)
			hits += 100;
	}
}

static void handle(int sig, int flags)
{
	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sa.sa_flags = flags;
	sigaction(sig, &sa, NULL);
}

static void alarm_in(long us)
{
	struct itimerval it = {.it_value = {us / 1000000, us % 1000000}};
	setitimer(ITIMER_REAL, &it, NULL);
}

static void nanosleep_interrupted(void)
{
	handle(SIGALRM, 0);
	hits = 0;
	alarm_in(50000);
	struct timespec req = {5, 0}, rem = {0, 0};
	errno = 0;
	int r = nanosleep(&req, &rem);
	printf("nanosleep: %d %s, handler ran %d, time left in (0, 5s) %d\n", r, errname(errno), hits,
	       (rem.tv_sec > 0 || rem.tv_nsec > 0) && rem.tv_sec < 5);
}

static void pipe_read(int flags, const char *label)
{
	int p[2];
	CHECK("pipe", pipe(p) == 0);
	handle(SIGALRM, flags);
	hits = 0;
	feed_fd = p[1];
	alarm_in(50000);
	char c = 0;
	errno = 0;
	long r = read(p[0], &c, 1);
	feed_fd = -1;
	printf("%s: read %ld %s, byte %c, handler ran %d\n", label, r, errname(errno), r == 1 ? c : '-', hits);
	close(p[0]);
	close(p[1]);
}

static void timerfd_read(int flags, const char *label)
{
	int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
	CHECK("timerfd_create", tfd >= 0);
	struct itimerspec its = {.it_value = {0, 300000000}};
	CHECK("timerfd_settime", timerfd_settime(tfd, 0, &its, NULL) == 0);
	handle(SIGALRM, flags);
	hits = 0;
	alarm_in(50000);
	uint64_t count = 0;
	errno = 0;
	long r = read(tfd, &count, sizeof count);
	printf("%s: read %ld %s, expirations %d, handler ran %d\n", label, r, errname(errno),
	       r == 8 ? (int)count : -1, hits);
	close(tfd);
}

static int thread_pipe[2];
static volatile int thread_ready;
static volatile pid_t thread_tid;
static volatile long thread_r;
static volatile int thread_errno;

static void *blocked_reader(void *arg)
{
	(void)arg;
	thread_tid = syscall(SYS_gettid);
	__atomic_store_n(&thread_ready, 1, __ATOMIC_SEQ_CST);
	char c;
	errno = 0;
	thread_r = read(thread_pipe[0], &c, 1);
	thread_errno = errno;
	return NULL;
}

static void thread_id_timer(void)
{
	CHECK("pipe", pipe(thread_pipe) == 0);
	handle(SIGUSR1, 0);
	hits = 0;
	pthread_t th;
	CHECK("pthread_create", pthread_create(&th, NULL, blocked_reader, NULL) == 0);
	while (!__atomic_load_n(&thread_ready, __ATOMIC_SEQ_CST))
		sched_yield();
	want_tid = thread_tid;
	struct ksigevent ev = {.signo = SIGUSR1, .notify = K_SIGEV_THREAD_ID, .tid = thread_tid};
	int id = -1;
	CHECK("timer_create", syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &id) == 0);
	struct itimerspec it = {.it_value = {0, 50000000}};
	CHECK("timer_settime", syscall(SYS_timer_settime, id, 0, &it, NULL) == 0);
	pthread_join(th, NULL);
	printf("SIGEV_THREAD_ID: the thread's read %ld %s, handler ran %d on that thread %d\n", thread_r,
	       errname(thread_errno), hits, on_tid_ok);
	want_tid = 0;
	syscall(SYS_timer_delete, id);
	close(thread_pipe[0]);
	close(thread_pipe[1]);
}

static void signalfd_timer(void)
{
	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR2);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, 0);
	CHECK("signalfd", sfd >= 0);
	struct ksigevent ev = {.signo = SIGUSR2, .notify = K_SIGEV_SIGNAL};
	ev.value.sival_int = 42;
	int id = -1;
	CHECK("timer_create", syscall(SYS_timer_create, CLOCK_MONOTONIC, &ev, &id) == 0);
	struct itimerspec it = {.it_value = {0, 10000000}, .it_interval = {0, 10000000}};
	CHECK("timer_settime", syscall(SYS_timer_settime, id, 0, &it, NULL) == 0);
	for (int i = 0; i < 2; i++) {
		/* The second record comes only if reading the first re-armed the timer. */
		struct pollfd pf = {.fd = sfd, .events = POLLIN};
		int ready = poll(&pf, 1, 3000);
		struct signalfd_siginfo si = {0};
		long r = ready == 1 ? read(sfd, &si, sizeof si) : -1;
		printf("signalfd record %d: ready %d, size %ld, signo %u, SI_TIMER %d, tid is the timer %d, int %d, "
		       "overrun >= 0 %d\n",
		       i, ready, r, si.ssi_signo, si.ssi_code == SI_TIMER, (int)si.ssi_tid == id, si.ssi_int,
		       (int)si.ssi_overrun >= 0);
	}
	syscall(SYS_timer_delete, id);
	close(sfd);
	sigprocmask(SIG_UNBLOCK, &mask, NULL);
}

int main(void)
{
	nanosleep_interrupted();
	pipe_read(0, "pipe read, no SA_RESTART");
	pipe_read(SA_RESTART, "pipe read, SA_RESTART");
	timerfd_read(0, "timerfd read, no SA_RESTART");
	timerfd_read(SA_RESTART, "timerfd read, SA_RESTART");
	thread_id_timer();
	signalfd_timer();
	return 0;
}
