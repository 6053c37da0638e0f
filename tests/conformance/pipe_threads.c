/* Threads racing on one pipe: two readers take single bytes as a writer sends
 * them, and two writers fill the pipe with PIPE_BUF-sized writes faster than it
 * is read. Every byte arrives exactly once, writes stay whole, nobody hangs
 * (a read or write found ready and then beaten by another thread must wait). */
#include "conf.h"
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

enum { BYTES = 3000, BLOCKS = 200 };
static int p[2];
static atomic_int got;
static atomic_long sum;

static void *reader(void *a)
{
	(void)a;
	unsigned char c;
	while (atomic_load(&got) < BYTES) {
		if (read(p[0], &c, 1) == 1) {
			atomic_fetch_add(&sum, c);
			if (atomic_fetch_add(&got, 1) + 1 >= BYTES)
				break;
		}
	}
	return NULL;
}

static void *writer(void *a)
{
	unsigned char block[PIPE_BUF];
	memset(block, (int)(long)a, sizeof block);
	for (int i = 0; i < BLOCKS / 2; i++)
		if (write(p[1], block, sizeof block) != sizeof block)
			printf("short write\n");
	return NULL;
}

int main(void)
{
	CHECK("pipe", pipe(p) == 0);
	pthread_t r1, r2;
	pthread_create(&r1, NULL, reader, NULL);
	pthread_create(&r2, NULL, reader, NULL);
	long expected = 0;
	for (int i = 0; i < BYTES; i++) {
		unsigned char c = (unsigned char)(i * 7);
		expected += c;
		write(p[1], &c, 1);
	}
	/* The reader that didn't take the last byte may be asleep in a read: two zero bytes
	 * (which add nothing to the sum) wake whichever is. */
	write(p[1], "\0", 2);
	pthread_join(r1, NULL);
	pthread_join(r2, NULL);
	printf("bytes read once each: %d (sum %s)\n", atomic_load(&got) >= BYTES,
	       atomic_load(&sum) == expected ? "right" : "wrong");
	close(p[0]);
	close(p[1]);

	CHECK("pipe", pipe(p) == 0);
	pthread_t w1, w2;
	pthread_create(&w1, NULL, writer, (void *)1L);
	pthread_create(&w2, NULL, writer, (void *)2L);
	unsigned char block[PIPE_BUF];
	int whole = 1;
	for (int i = 0; i < BLOCKS; i++) {
		size_t n = 0;
		while (n < sizeof block) {
			ssize_t r = read(p[0], block + n, sizeof block - n);
			if (r <= 0)
				break;
			n += r;
		}
		for (size_t j = 1; j < n; j++)
			whole &= block[j] == block[0];
	}
	pthread_join(w1, NULL);
	pthread_join(w2, NULL);
	printf("writes of PIPE_BUF stayed whole: %d\n", whole);
	return 0;
}
