/* UDP over 127.0.0.1 and ::1: sendto/recvfrom with addresses, datagram boundaries,
 * MSG_PEEK, MSG_TRUNC (flag and msg_flags), connected sockets and AF_UNSPEC disconnect,
 * sendmmsg/recvmmsg, IP_PKTINFO/IPV6_RECVPKTINFO control messages, FIONREAD (the next
 * datagram's size), EMSGSIZE, SO_RCVTIMEO, poll readiness, a reader thread blocked in
 * recvfrom woken by a datagram, and EFAULT. Ports are never printed. */
#define CONF_FS
#include "conf.h"
#include "net.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <sys/time.h>


static int family;

static socklen_t loopback(struct sockaddr_storage *ss, int port)
{
	memset(ss, 0, sizeof *ss);
	if (family == AF_INET) {
		struct sockaddr_in *s = (struct sockaddr_in *)ss;
		s->sin_family = AF_INET;
		s->sin_port = htons(port);
		s->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof *s;
	}
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
	s->sin6_family = AF_INET6;
	s->sin6_port = htons(port);
	s->sin6_addr = in6addr_loopback;
	return sizeof *s;
}

static int bound(struct sockaddr_storage *ss, socklen_t *len)
{
	int fd = socket(family, SOCK_DGRAM, 0);
	*len = loopback(ss, 0);
	bind(fd, (struct sockaddr *)ss, *len);
	getsockname(fd, (struct sockaddr *)ss, len);
	return fd;
}

static int same_addr(struct sockaddr_storage *a, struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return 0;
	if (a->ss_family == AF_INET)
		return memcmp(a, b, sizeof(struct sockaddr_in)) == 0;
	struct sockaddr_in6 *x = (void *)a, *y = (void *)b;
	return x->sin6_port == y->sin6_port && memcmp(&x->sin6_addr, &y->sin6_addr, 16) == 0;
}

struct reader {
	int fd;
	char buf[32];
	ssize_t n;
};

static void *blocked_reader(void *arg)
{
	struct reader *r = arg;
	r->n = recvfrom(r->fd, r->buf, sizeof r->buf, 0, NULL, NULL);
	return NULL;
}

static void run(void)
{
	struct sockaddr_storage a_addr, b_addr, from;
	socklen_t alen, blen, flen;
	int a = bound(&a_addr, &alen);
	int b = bound(&b_addr, &blen);
	char buf[256];

	NCALL("sendto", sendto(a, "first", 5, 0, (struct sockaddr *)&b_addr, blen));
	NCALL("sendto 2", sendto(a, "second!", 7, 0, (struct sockaddr *)&b_addr, blen));
	struct pollfd p = { b, POLLIN, 0 };
	NCALL("poll", poll(&p, 1, 5000));
	int avail = -1;
	ioctl(b, FIONREAD, &avail);
	printf("FIONREAD: %d\n", avail);
	NCALL("recv peek", recv(b, buf, sizeof buf, MSG_PEEK));
	flen = sizeof from;
	memset(buf, 0, sizeof buf);
	NCALL("recvfrom", recvfrom(b, buf, sizeof buf, 0, (struct sockaddr *)&from, &flen));
	printf("data: %s, from a: %d, len ok: %d\n", buf, same_addr(&from, &a_addr), flen == alen);
	NCALL("recv truncated", recv(b, buf, 3, MSG_TRUNC));
	NCALL("recv empty", recv(b, buf, 3, MSG_DONTWAIT));

	/* msg_flags MSG_TRUNC and control messages (packet info). */
	int one = 1;
	if (family == AF_INET)
		NCALL("IP_PKTINFO", setsockopt(b, IPPROTO_IP, IP_PKTINFO, &one, sizeof one));
	else
		NCALL("IPV6_RECVPKTINFO", setsockopt(b, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof one));
	sendto(a, "0123456789", 10, 0, (struct sockaddr *)&b_addr, blen);
	char cbuf[256];
	struct iovec iov = { buf, 4 };
	struct msghdr m = { 0 };
	m.msg_name = &from;
	m.msg_namelen = sizeof from;
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = cbuf;
	m.msg_controllen = sizeof cbuf;
	NCALL("recvmsg", recvmsg(b, &m, 0));
	printf("msg_flags TRUNC: %d, from a: %d\n", !!(m.msg_flags & MSG_TRUNC), same_addr(&from, &a_addr));
	int saw = 0;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (family == AF_INET && c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof pi);
			saw = pi.ipi_addr.s_addr == htonl(INADDR_LOOPBACK);
		}
		if (family == AF_INET6 && c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof pi);
			saw = memcmp(&pi.ipi6_addr, &in6addr_loopback, 16) == 0;
		}
	}
	printf("pktinfo names loopback: %d\n", saw);
	/* Too little control room: MSG_CTRUNC. */
	sendto(a, "x", 1, 0, (struct sockaddr *)&b_addr, blen);
	m.msg_controllen = 4;
	m.msg_flags = 0;
	iov.iov_len = sizeof buf;
	NCALL("recvmsg small control", recvmsg(b, &m, 0));
	printf("CTRUNC: %d controllen: %zu\n", !!(m.msg_flags & MSG_CTRUNC), (size_t)m.msg_controllen);

	/* sendmmsg / recvmmsg. */
	struct mmsghdr mm[3];
	struct iovec iv[3];
	const char *words[3] = { "one", "three", "seven!!" };
	memset(mm, 0, sizeof mm);
	for (int i = 0; i < 3; i++) {
		iv[i].iov_base = (void *)words[i];
		iv[i].iov_len = strlen(words[i]);
		mm[i].msg_hdr.msg_iov = &iv[i];
		mm[i].msg_hdr.msg_iovlen = 1;
		mm[i].msg_hdr.msg_name = &b_addr;
		mm[i].msg_hdr.msg_namelen = blen;
	}
	NCALL("sendmmsg", sendmmsg(a, mm, 3, 0));
	printf("msg_len: %u %u %u\n", mm[0].msg_len, mm[1].msg_len, mm[2].msg_len);
	char rb[3][16];
	memset(mm, 0, sizeof mm);
	memset(rb, 0, sizeof rb);
	for (int i = 0; i < 3; i++) {
		iv[i].iov_base = rb[i];
		iv[i].iov_len = sizeof rb[i];
		mm[i].msg_hdr.msg_iov = &iv[i];
		mm[i].msg_hdr.msg_iovlen = 1;
	}
	poll(&p, 1, 5000);
	usleep(20000);
	NCALL("recvmmsg", recvmmsg(b, mm, 3, MSG_WAITFORONE, NULL));
	printf("got: %s %s %s\n", rb[0], rb[1], rb[2]);

	/* Connected datagram sockets. */
	NCALL("connect", connect(a, (struct sockaddr *)&b_addr, blen));
	NCALL("send connected", send(a, "conn", 4, 0));
	memset(buf, 0, sizeof buf);
	NCALL("read", read(b, buf, sizeof buf));
	printf("read: %s\n", buf);
	struct sockaddr_storage peer;
	socklen_t plen = sizeof peer;
	CHECK("getpeername", getpeername(a, (struct sockaddr *)&peer, &plen) == 0 && same_addr(&peer, &b_addr));
	struct sockaddr unspec = { .sa_family = AF_UNSPEC };
	NCALL("disconnect", connect(a, &unspec, sizeof unspec));
	NCALL("send disconnected", send(a, "x", 1, 0));
	/* A closed port: ECONNREFUSED on a connected socket's next call. */
	struct sockaddr_storage dead;
	socklen_t dlen;
	int d = bound(&dead, &dlen);
	close(d);
	connect(a, (struct sockaddr *)&dead, dlen);
	send(a, "x", 1, 0);
	usleep(50000);
	NCALL("recv after refused", recv(a, buf, 1, MSG_DONTWAIT));

	/* EMSGSIZE. */
	static char huge[70000];
	NCALL("sendto 70000", sendto(b, huge, sizeof huge, 0, (struct sockaddr *)&a_addr, alen));
	/* SO_RCVTIMEO. */
	struct timeval tv = { 0, 50000 };
	setsockopt(b, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	NCALL("recv timeout", recv(b, buf, 1, 0));
	tv.tv_usec = 0;
	setsockopt(b, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	/* A reader blocked in recvfrom, woken by a datagram. */
	struct reader r = { .fd = b };
	pthread_t th;
	pthread_create(&th, NULL, blocked_reader, &r);
	usleep(50000);
	int c = socket(family, SOCK_DGRAM, 0);
	sendto(c, "wake", 4, 0, (struct sockaddr *)&b_addr, blen);
	pthread_join(th, NULL);
	printf("blocked reader: %zd %.4s\n", r.n, r.buf);
	/* EFAULT. */
	NCALL("sendto wild", sendto(c, (void *)16, 4, 0, (struct sockaddr *)&b_addr, blen));
	NCALL("sendto wild addr", sendto(c, "x", 1, 0, (void *)16, blen));
	sendto(c, "kept", 4, 0, (struct sockaddr *)&b_addr, blen);
	poll(&p, 1, 5000);
	/* Linux drops a datagram it could not copy out, data or address. */
	NCALL("recvfrom wild", recvfrom(b, (void *)16, 4, 0, NULL, NULL));
	NCALL("recv after wild (dropped)", recv(b, buf, 4, MSG_DONTWAIT));
	sendto(c, "kept", 4, 0, (struct sockaddr *)&b_addr, blen);
	poll(&p, 1, 5000);
	NCALL("recvfrom wild addr", recvfrom(b, buf, 4, 0, (void *)16, &flen));
	NCALL("recv after wild addr (dropped)", recv(b, buf, 4, MSG_DONTWAIT));
	NCALL("send unconnected", send(c, "x", 1, 0));
	int t = 0;
	socklen_t tl = sizeof t;
	getsockopt(c, SOL_SOCKET, SO_TYPE, &t, &tl);
	printf("SO_TYPE: %d\n", t);
	close(c);
	close(a);
	close(b);
}

/* Sockets count against RLIMIT_NOFILE: EMFILE at the limit, and a socket can be made
 * again once one is closed; 5,000 more made and closed one at a time. */
static void fd_limit(void)
{
	struct rlimit old, lim;
	getrlimit(RLIMIT_NOFILE, &old);
	lim = old;
	lim.rlim_cur = 40;
	setrlimit(RLIMIT_NOFILE, &lim);
	int fds[64], n = 0, e = 0;
	while (n < 64) {
		int fd = socket(n % 2 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
		if (fd < 0) {
			e = errno;
			break;
		}
		fds[n++] = fd;
	}
	printf("sockets up to the limit: highest fd %d, then %s\n", n ? fds[n - 1] : -1, nerr(e));
	close(fds[--n]);
	int again = socket(AF_INET, SOCK_STREAM, 0);
	CHECK("one more after a close", again >= 0);
	close(again);
	while (n > 0)
		close(fds[--n]);
	setrlimit(RLIMIT_NOFILE, &old);
	int bad = 0;
	for (int i = 0; i < 5000; i++) {
		int fd = socket(i % 2 ? AF_INET6 : AF_INET, i % 3 ? SOCK_DGRAM : SOCK_STREAM, 0);
		if (fd < 0)
			bad++;
		close(fd);
	}
	printf("5000 sockets made and closed, failures: %d\n", bad);
}

int main(void)
{
	/* ICMP datagram sockets: as the namespace's ping_group_range says. */
	int ping = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
	printf("ping socket: %s\n", ping >= 0 ? "ok" : nerr(errno));
	if (ping >= 0)
		close(ping);
	fd_limit();
	family = AF_INET;
	printf("=== inet\n");
	run();
	family = AF_INET6;
	printf("=== inet6\n");
	run();
	return 0;
}
