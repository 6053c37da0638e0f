/* Loopback TCP benchmarks for bench/src/net.rs; each prints one number.
 *   netbench tput MIB   - a server thread reads, the client writes MIB writes of 1 MiB:
 *                         prints ns per MiB
 *   netbench rr N       - N 64-byte request/response round trips (TCP_NODELAY): ns each
 *   netbench conn N     - N connect + accept + close: ns each */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in addr;
static socklen_t alen = sizeof addr;
static int lfd;
static long count;

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

static int dial(void)
{
	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&addr, alen) < 0) {
		perror("connect");
		exit(1);
	}
	int one = 1;
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return c;
}

static int take(void)
{
	int s = accept(lfd, NULL, NULL);
	if (s < 0) {
		perror("accept");
		exit(1);
	}
	int one = 1;
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return s;
}

static void *sink(void *arg)
{
	(void)arg;
	int s = take();
	static char buf[1 << 20];
	while (read(s, buf, sizeof buf) > 0)
		;
	close(s);
	return NULL;
}

static void *echo(void *arg)
{
	(void)arg;
	int s = take();
	char buf[64];
	for (;;) {
		ssize_t n = recv(s, buf, sizeof buf, MSG_WAITALL);
		if (n <= 0)
			break;
		send(s, buf, n, 0);
	}
	close(s);
	return NULL;
}

static void *acceptor(void *arg)
{
	(void)arg;
	for (long i = 0; i < count; i++)
		close(take());
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: netbench tput|rr|conn N\n");
		return 2;
	}
	count = atol(argv[2]);
	addr.sin_family = AF_INET;
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	/* A backlog that holds every connection of `conn`: the client doesn't wait for the
	 * acceptor, and with 128 a busy machine let the acceptor fall that far behind, the host
	 * dropped a SYN and the client's 1 s retransmit (5 ms per connection over 200) was what
	 * the row measured, natively too. somaxconn caps it (4096 by default). */
	if (bind(lfd, (struct sockaddr *)&addr, alen) < 0 || listen(lfd, 4096) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&addr, &alen) < 0) {
		perror("listen");
		return 1;
	}
	pthread_t th;
	double t0, t1;
	if (!strcmp(argv[1], "tput")) {
		pthread_create(&th, NULL, sink, NULL);
		int c = dial();
		static char buf[1 << 20];
		memset(buf, 'x', sizeof buf);
		t0 = now_ns();
		for (long i = 0; i < count; i++) {
			size_t off = 0;
			while (off < sizeof buf) {
				ssize_t w = write(c, buf + off, sizeof buf - off);
				if (w <= 0) {
					perror("write");
					return 1;
				}
				off += w;
			}
		}
		shutdown(c, SHUT_WR);
		pthread_join(th, NULL);
		t1 = now_ns();
		close(c);
	} else if (!strcmp(argv[1], "rr")) {
		pthread_create(&th, NULL, echo, NULL);
		int c = dial();
		char buf[64];
		memset(buf, 'r', sizeof buf);
		for (int i = 0; i < 100; i++) { /* warm up */
			send(c, buf, sizeof buf, 0);
			recv(c, buf, sizeof buf, MSG_WAITALL);
		}
		t0 = now_ns();
		for (long i = 0; i < count; i++) {
			send(c, buf, sizeof buf, 0);
			if (recv(c, buf, sizeof buf, MSG_WAITALL) != sizeof buf) {
				perror("recv");
				return 1;
			}
		}
		t1 = now_ns();
		close(c);
		pthread_join(th, NULL);
	} else if (!strcmp(argv[1], "conn")) {
		pthread_create(&th, NULL, acceptor, NULL);
		t0 = now_ns();
		for (long i = 0; i < count; i++)
			close(dial());
		pthread_join(th, NULL);
		t1 = now_ns();
	} else {
		fprintf(stderr, "unknown benchmark %s\n", argv[1]);
		return 2;
	}
	printf("%.1f\n", (t1 - t0) / count);
	return 0;
}
