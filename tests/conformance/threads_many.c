/* More threads than the platform has vCPUs: 2,000 alive at once (waiting at a barrier, each
 * with work of its own before and after), then 10,000 created and joined in batches.
 * The KVM platform has at most 124 vCPUs; a thread that waits gives its vCPU up when they
 * run short. Usage: threads_many */
#include "conf.h"
#include <pthread.h>

#define ALIVE 2000
#define TOTAL 10000
#define BATCH 200

static pthread_barrier_t barrier;
static double value[ALIVE];

static void *waiter(void *arg)
{
	long n = (long)arg;
	/* Floating-point state must survive the wait, whatever vCPU the thread ends on. */
	double x = (double)n * 1.5;
	value[n] = x;
	pthread_barrier_wait(&barrier);
	x += 0.25;
	return (void *)(long)(x * 4 == (double)n * 6 + 1);
}

static void *short_lived(void *arg)
{
	return (void *)((long)arg * 3);
}

static pthread_attr_t small_stack(void)
{
	pthread_attr_t a;
	pthread_attr_init(&a);
	pthread_attr_setstacksize(&a, 64 * 1024);
	return a;
}

int main(void)
{
	pthread_attr_t attr = small_stack();
	static pthread_t t[ALIVE];
	pthread_barrier_init(&barrier, NULL, ALIVE + 1);
	int created = 0;
	for (long i = 0; i < ALIVE; i++) {
		int e = pthread_create(&t[i], &attr, waiter, (void *)i);
		if (e) {
			printf("create %ld: %s\n", i, errname(e));
			return 1;
		}
		created++;
	}
	printf("alive at once: %d\n", created);
	pthread_barrier_wait(&barrier);
	long good = 0;
	for (int i = 0; i < ALIVE; i++) {
		void *r;
		pthread_join(t[i], &r);
		good += (long)r;
	}
	printf("joined %d, fpu state kept in %ld\n", ALIVE, good);

	long sum = 0, n = 0;
	for (long base = 0; base < TOTAL; base += BATCH) {
		for (long i = 0; i < BATCH; i++)
			if (pthread_create(&t[i], &attr, short_lived, (void *)(base + i))) {
				printf("create %ld failed\n", base + i);
				return 1;
			}
		for (long i = 0; i < BATCH; i++) {
			void *r;
			pthread_join(t[i], &r);
			sum += (long)r;
			n++;
		}
	}
	printf("created and joined %ld, sum %ld\n", n, sum);
	return 0;
}
