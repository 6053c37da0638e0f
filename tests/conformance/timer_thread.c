/* A POSIX timer with SIGEV_THREAD: the C library runs the notify function on
 * a thread of its own (glibc and musl build this on SIGEV_THREAD_ID and a
 * helper thread waiting in sigwaitinfo). */
#include "conf.h"
#include <pthread.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static int calls, value_ok, other_thread;
static pthread_t main_thread;

static void notify(union sigval v)
{
	pthread_mutex_lock(&lock);
	calls++;
	value_ok = v.sival_int == 77;
	other_thread = !pthread_equal(pthread_self(), main_thread);
	pthread_cond_signal(&cond);
	pthread_mutex_unlock(&lock);
}

int main(void)
{
	main_thread = pthread_self();
	struct sigevent ev = {0};
	ev.sigev_notify = SIGEV_THREAD;
	ev.sigev_notify_function = notify;
	ev.sigev_value.sival_int = 77;
	timer_t id;
	CHECK("timer_create SIGEV_THREAD", timer_create(CLOCK_MONOTONIC, &ev, &id) == 0);
	struct itimerspec its = {{0, 0}, {0, 20000000}};
	CHECK("timer_settime", timer_settime(id, 0, &its, NULL) == 0);
	struct timespec limit;
	clock_gettime(CLOCK_REALTIME, &limit);
	limit.tv_sec += 10;
	pthread_mutex_lock(&lock);
	while (calls == 0 && pthread_cond_timedwait(&cond, &lock, &limit) == 0)
		;
	printf("notify ran: %d, value 77: %d, on another thread: %d\n", calls > 0, value_ok,
	       other_thread);
	pthread_mutex_unlock(&lock);
	CHECK("timer_delete", timer_delete(id) == 0);
	return 0;
}
