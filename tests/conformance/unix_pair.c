/* AF_UNIX socketpair: stream, datagram and seqpacket data paths, message boundaries and
 * truncation, MSG_PEEK/MSG_DONTWAIT/MSG_WAITALL/MSG_TRUNC, read/write/readv/writev on
 * sockets, shutdown (EOF and EPIPE), a closed peer, full buffers, poll readiness, fstat,
 * fcntl, FIONREAD,
 * socket(2)'s errors and the SOL_SOCKET options. Single process: nothing here waits for a
 * peer that would have to run concurrently. */
#define CONF_FS
#include "conf.h"
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <stddef.h>

#define SOCKCALL(label, expr) NUMCALL(label, expr)

static const char *tname(int type)
{
	switch (type) {
	case SOCK_STREAM: return "stream";
	case SOCK_DGRAM: return "dgram";
	case SOCK_SEQPACKET: return "seqpacket";
	}
	return "?";
}

static void show_recv(const char *label, int fd, size_t len, int flags)
{
	char buf[256];
	memset(buf, 0, sizeof buf);
	errno = 0;
	ssize_t n = recv(fd, buf, len, flags);
	if (n < 0) {
		printf("%s: -1 errno=%s\n", label, errname(errno));
		return;
	}
	fs_print_bytes(label, buf, n < (ssize_t)len ? n : (ssize_t)len);
	if (n > (ssize_t)len)
		printf("  (returned %zd)\n", n);
}

static void show_recvmsg_flags(const char *label, int fd, size_t len, int flags)
{
	char buf[256];
	struct iovec iov = { buf, len };
	struct msghdr m = { 0 };
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	errno = 0;
	ssize_t n = recvmsg(fd, &m, flags);
	if (n < 0) {
		printf("%s: -1 errno=%s\n", label, errname(errno));
		return;
	}
	printf("%s: %zd msg_flags=%s%s\n", label, n,
	       (m.msg_flags & MSG_TRUNC) ? "TRUNC" : "-",
	       (m.msg_flags & MSG_CTRUNC) ? "+CTRUNC" : "");
}

static void basic(int type)
{
	int sv[2];
	char label[64];
	printf("--- %s pair\n", tname(type));
	if (socketpair(AF_UNIX, type, 0, sv) != 0) {
		printf("socketpair: FAIL errno=%s\n", errname(errno));
		return;
	}
	SOCKCALL("send hello", send(sv[0], "hello", 5, 0));
	SOCKCALL("send world", send(sv[0], "world!", 6, 0));
	SOCKCALL("FIONREAD", ({ int q = -1; ioctl(sv[1], FIONREAD, &q) == 0 ? q : -1; }));
	show_recv("peek 3", sv[1], 3, MSG_PEEK);
	show_recvmsg_flags("recvmsg 3", sv[1], 3, 0);
	show_recv("recv 64", sv[1], 64, 0);
	show_recv("recv empty nonblocking", sv[1], 64, MSG_DONTWAIT);
	/* The other direction, through write/read. */
	SOCKCALL("write", write(sv[1], "back", 4));
	{
		char buf[16] = { 0 };
		SOCKCALL("read", read(sv[0], buf, sizeof buf));
		fs_print_bytes("  got", buf, strlen(buf));
		SOCKCALL("read 0 bytes", read(sv[0], buf, 0));
	}
	/* Vectors: a datagram is one message, however many iovecs. */
	{
		struct iovec out[3] = { { "ab", 2 }, { "", 0 }, { "cdef", 4 } };
		SOCKCALL("writev 3 iovecs", writev(sv[0], out, 3));
		char x[3] = { 0 }, y[8] = { 0 };
		struct iovec in[2] = { { x, 2 }, { y, sizeof y } };
		SOCKCALL("readv", readv(sv[1], in, 2));
		printf("  x=%.2s y=%s\n", x, y);
	}
	/* MSG_TRUNC: the real length of a datagram. */
	SOCKCALL("send 10", send(sv[0], "0123456789", 10, 0));
	snprintf(label, sizeof label, "recv 4 MSG_TRUNC");
	show_recv(label, sv[1], 4, MSG_TRUNC);
	show_recv("recv after truncation", sv[1], 64, MSG_DONTWAIT);
	/* Empty messages. */
	SOCKCALL("send 0 bytes", send(sv[0], "", 0, 0));
	show_recv("recv after empty send", sv[1], 64, MSG_DONTWAIT);
	SOCKCALL("close one end", close(sv[0]));
	show_recv("recv after peer close", sv[1], 64, MSG_DONTWAIT);
	SOCKCALL("send to closed peer", send(sv[1], "x", 1, MSG_NOSIGNAL));
	SOCKCALL("send again", send(sv[1], "x", 1, MSG_NOSIGNAL));
	close(sv[1]);
}

static void show_poll(const char *label, int fd)
{
	struct pollfd p = { fd, POLLIN | POLLOUT | POLLRDHUP | POLLPRI, 0 };
	int r = poll(&p, 1, 0);
	printf("%s: poll=%d revents=%s%s%s%s%s%s\n", label, r, (p.revents & POLLIN) ? "IN " : "",
	       (p.revents & POLLOUT) ? "OUT " : "", (p.revents & POLLRDHUP) ? "RDHUP " : "",
	       (p.revents & POLLHUP) ? "HUP " : "", (p.revents & POLLERR) ? "ERR " : "",
	       p.revents ? "" : "-");
}

static void readiness(int type)
{
	int sv[2];
	printf("--- %s readiness\n", tname(type));
	socketpair(AF_UNIX, type, 0, sv);
	show_poll("fresh", sv[0]);
	send(sv[1], "x", 1, 0);
	show_poll("data queued", sv[0]);
	shutdown(sv[1], SHUT_WR);
	show_poll("peer did SHUT_WR", sv[0]);
	show_poll("the peer itself", sv[1]);
	close(sv[1]);
	show_poll("peer closed", sv[0]);
	close(sv[0]);
	int s = socket(AF_UNIX, type, 0);
	show_poll("unconnected", s);
	shutdown(s, SHUT_RD);
	show_poll("unconnected after SHUT_RD", s);
	close(s);
	if (type == SOCK_DGRAM) {
		/* A sender can't write while its peer's queue is full of strangers' messages. */
		int d1 = socket(AF_UNIX, SOCK_DGRAM, 0), d2 = socket(AF_UNIX, SOCK_DGRAM, 0);
		struct sockaddr_un b = { .sun_family = AF_UNIX, .sun_path = "\0conf-poll-dgram" };
		socklen_t bl = offsetof(struct sockaddr_un, sun_path) + 16;
		bind(d2, (struct sockaddr *)&b, bl);
		connect(d1, (struct sockaddr *)&b, bl);
		for (int i = 0; i < 11; i++)
			send(d1, "q", 1, 0);
		show_poll("sender, receiver's queue full", d1);
		show_poll("receiver", d2);
		char c;
		recv(d2, &c, 1, 0);
		show_poll("sender after one was read", d1);
		close(d1);
		close(d2);
	}
	if (type != SOCK_DGRAM) {
		int l = socket(AF_UNIX, type, 0);
		struct sockaddr_un a = { .sun_family = AF_UNIX, .sun_path = "\0conf-poll-listen" };
		socklen_t al = offsetof(struct sockaddr_un, sun_path) + 17;
		bind(l, (struct sockaddr *)&a, al);
		listen(l, 3);
		show_poll("listening", l);
		int c = socket(AF_UNIX, type, 0);
		connect(c, (struct sockaddr *)&a, al);
		show_poll("listening, one pending", l);
		show_poll("client", c);
		close(c);
		close(l);
	}
}

static void waitall(void)
{
	int sv[2];
	printf("--- MSG_WAITALL and stream gathering\n");
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	send(sv[0], "abc", 3, 0);
	send(sv[0], "defgh", 5, 0);
	show_recv("recv 6 WAITALL (8 queued)", sv[1], 6, MSG_WAITALL);
	show_recv("recv 10 DONTWAIT", sv[1], 10, MSG_DONTWAIT);
	send(sv[0], "xy", 2, 0);
	shutdown(sv[0], SHUT_WR);
	show_recv("recv 10 WAITALL then EOF", sv[1], 10, MSG_WAITALL);
	show_recv("recv at EOF", sv[1], 10, 0);
	close(sv[0]);
	close(sv[1]);
}

static void shutdowns(int type)
{
	int sv[2];
	printf("--- %s shutdown\n", tname(type));
	socketpair(AF_UNIX, type, 0, sv);
	SOCKCALL("send before", send(sv[0], "data", 4, 0));
	SOCKCALL("shutdown SHUT_WR", shutdown(sv[0], SHUT_WR));
	SOCKCALL("send after SHUT_WR", send(sv[0], "x", 1, MSG_NOSIGNAL));
	show_recv("peer reads queued data", sv[1], 64, MSG_DONTWAIT);
	show_recv("peer reads again", sv[1], 64, MSG_DONTWAIT);
	SOCKCALL("peer can still send", send(sv[1], "rev", 3, MSG_NOSIGNAL));
	show_recv("we read it", sv[0], 64, MSG_DONTWAIT);
	SOCKCALL("peer SHUT_RD", shutdown(sv[1], SHUT_RD));
	SOCKCALL("send to SHUT_RD peer", send(sv[0], "y", 1, MSG_NOSIGNAL));
	SOCKCALL("shutdown 3", shutdown(sv[0], 3));
	SOCKCALL("shutdown -1", shutdown(sv[0], -1));
	SOCKCALL("shutdown RDWR twice", shutdown(sv[0], SHUT_RDWR) + shutdown(sv[0], SHUT_RDWR));
	close(sv[0]);
	close(sv[1]);
}

static void full_buffers(int type)
{
	int sv[2];
	printf("--- %s full buffer\n", tname(type));
	socketpair(AF_UNIX, type | SOCK_NONBLOCK, 0, sv);
	int sz = 8192;
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
	static char chunk[1024];
	long total = 0;
	ssize_t n;
	int msgs = 0;
	while ((n = send(sv[0], chunk, sizeof chunk, 0)) > 0 && msgs < 100000) {
		total += n;
		msgs++;
	}
	printf("filled: %s errno=%s\n", total > 0 && total < 1000000 ? "yes" : "NO",
	       errname(errno));
	long got = 0;
	char buf[4096];
	while ((n = recv(sv[1], buf, sizeof buf, 0)) > 0)
		got += n;
	printf("drained all: %s (then errno=%s)\n", got == total ? "yes" : "NO", errname(errno));
	SOCKCALL("send after draining", send(sv[0], chunk, 100, 0));
	if (type != SOCK_STREAM) {
		static char big[300000];
		SOCKCALL("datagram over SO_SNDBUF", send(sv[0], big, 20000, 0));
		SOCKCALL("datagram far over", send(sv[0], big, sizeof big, 0));
	}
	close(sv[0]);
	close(sv[1]);
}

static void file_view(void)
{
	int sv[2];
	printf("--- the file view\n");
	SOCKCALL("socketpair NONBLOCK|CLOEXEC",
		 socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv));
	fs_showfd("fstat", sv[0]);
	printf("F_GETFL: %#x\n", fcntl(sv[0], F_GETFL));
	printf("F_GETFD: %d\n", fcntl(sv[0], F_GETFD));
	{
		char c;
		SOCKCALL("read nonblocking", read(sv[0], &c, 1));
	}
	SOCKCALL("lseek", lseek(sv[0], 0, SEEK_SET));
	SOCKCALL("pread", pread(sv[0], sv, 1, 0));
	SOCKCALL("pwrite", pwrite(sv[0], "x", 1, 0));
	int plain[2];
	socketpair(AF_UNIX, SOCK_DGRAM, 0, plain);
	printf("plain F_GETFL: %#x F_GETFD: %d\n", fcntl(plain[0], F_GETFL), fcntl(plain[0], F_GETFD));
	SOCKCALL("FIONBIO", ({ int on = 1; ioctl(plain[0], FIONBIO, &on); }));
	{
		char c;
		SOCKCALL("read after FIONBIO", read(plain[0], &c, 1));
	}
	/* Socket calls on other files. */
	int p[2];
	if (pipe(p) == 0) {
		char c;
		SOCKCALL("send on a pipe", send(p[1], "x", 1, 0));
		SOCKCALL("recv on a pipe", recv(p[0], &c, 1, 0));
		SOCKCALL("shutdown on a pipe", shutdown(p[0], SHUT_RD));
		int v;
		socklen_t l = sizeof v;
		SOCKCALL("getsockopt on a pipe", getsockopt(p[0], SOL_SOCKET, SO_TYPE, &v, &l));
		close(p[0]);
		close(p[1]);
	}
	SOCKCALL("send on bad fd", send(999, "x", 1, 0));
	close(sv[0]);
	close(sv[1]);
	close(plain[0]);
	close(plain[1]);
}

static void creation_errors(void)
{
	int sv[2];
	printf("--- socket(2) errors\n");
	ERRCALL("family 1000", socket(1000, SOCK_STREAM, 0));
	ERRCALL("family -1", socket(-1, SOCK_STREAM, 0));
	ERRCALL("family 45", socket(45, SOCK_STREAM, 0));
	ERRCALL("type 0", socket(AF_UNIX, 0, 0));
	ERRCALL("type 4 (RDM)", socket(AF_UNIX, 4, 0));
	ERRCALL("type 11", socket(AF_UNIX, 11, 0));
	ERRCALL("unknown flag", socket(AF_UNIX, SOCK_STREAM | 0x100, 0));
	ERRCALL("protocol 2", socket(AF_UNIX, SOCK_STREAM, 2));
	int r = socket(AF_UNIX, SOCK_STREAM, PF_UNIX);
	printf("protocol PF_UNIX: %s\n", r >= 0 ? "ok" : errname(errno));
	close(r);
	r = socket(AF_UNIX, SOCK_RAW, 0);
	int ty = -1;
	socklen_t l = sizeof ty;
	getsockopt(r, SOL_SOCKET, SO_TYPE, &ty, &l);
	printf("SOCK_RAW becomes: %s\n", tname(ty));
	close(r);
	ERRCALL("socketpair family 1000", socketpair(1000, SOCK_STREAM, 0, sv));
	ERRCALL("socketpair bad flag", socketpair(AF_UNIX, SOCK_STREAM | 0x100, 0, sv));
	ERRCALL("socketpair NULL", socketpair(AF_UNIX, SOCK_STREAM, 0, NULL));
}

static void getint(const char *label, int fd, int name)
{
	int v = -12345;
	socklen_t l = sizeof v;
	if (getsockopt(fd, SOL_SOCKET, name, &v, &l) != 0)
		printf("%s: -1 errno=%s\n", label, errname(errno));
	else
		printf("%s: %d (len %u)\n", label, v, (unsigned)l);
}

static void options(void)
{
	int sv[2];
	printf("--- options\n");
	socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv);
	getint("SO_TYPE", sv[0], SO_TYPE);
	getint("SO_DOMAIN", sv[0], SO_DOMAIN);
	getint("SO_PROTOCOL", sv[0], SO_PROTOCOL);
	getint("SO_ERROR", sv[0], SO_ERROR);
	getint("SO_ACCEPTCONN", sv[0], SO_ACCEPTCONN);
	getint("SO_SNDBUF", sv[0], SO_SNDBUF);
	getint("SO_RCVBUF", sv[0], SO_RCVBUF);
	getint("SO_PASSCRED", sv[0], SO_PASSCRED);
	getint("SO_RCVLOWAT", sv[0], SO_RCVLOWAT);
	getint("SO_REUSEADDR", sv[0], SO_REUSEADDR);
	int v = 1;
	SOCKCALL("set SO_SNDBUF 1", setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v));
	getint("  SO_SNDBUF", sv[0], SO_SNDBUF);
	v = 100000;
	SOCKCALL("set SO_SNDBUF 100000", setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, sizeof v));
	getint("  SO_SNDBUF", sv[0], SO_SNDBUF);
	v = 1;
	SOCKCALL("set SO_RCVBUF 1", setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &v, sizeof v));
	getint("  SO_RCVBUF", sv[0], SO_RCVBUF);
	v = 65536;
	SOCKCALL("set SO_RCVBUF 65536", setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &v, sizeof v));
	getint("  SO_RCVBUF", sv[0], SO_RCVBUF);
	v = 7;
	SOCKCALL("set SO_PASSCRED 7", setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &v, sizeof v));
	getint("  SO_PASSCRED", sv[0], SO_PASSCRED);
	SOCKCALL("set SO_REUSEADDR 5", setsockopt(sv[0], SOL_SOCKET, SO_REUSEADDR, &v, sizeof v));
	getint("  SO_REUSEADDR", sv[0], SO_REUSEADDR);
	SOCKCALL("set SO_TYPE", setsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, sizeof v));
	SOCKCALL("set SO_PEERCRED", setsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &v, sizeof v));
	SOCKCALL("set unknown 9999", setsockopt(sv[0], SOL_SOCKET, 9999, &v, sizeof v));
	SOCKCALL("set short optlen", setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &v, 2));
	SOCKCALL("set negative optlen", setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &v, -1));
	SOCKCALL("set other level", setsockopt(sv[0], 6 /* TCP */, 1, &v, sizeof v));
	{
		socklen_t l = sizeof v;
		SOCKCALL("get unknown 9999", getsockopt(sv[0], SOL_SOCKET, 9999, &v, &l));
		SOCKCALL("get other level", getsockopt(sv[0], 6, 1, &v, &l));
		l = (socklen_t)-1;
		SOCKCALL("get negative optlen", getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, &l));
		v = 0x7f7f7f7f;
		l = 2;
		SOCKCALL("get SO_TYPE into 2 bytes", getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, &l));
		printf("  value %#x len %u\n", v, (unsigned)l);
		l = 64;
		SOCKCALL("get SO_TYPE into 64 bytes", getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &v, &l));
		printf("  len %u\n", (unsigned)l);
	}
	/* Timeouts: tick-aligned values, then a receive that times out. */
	{
		struct timeval tv = { 0, 20000 }, got;
		socklen_t l = sizeof got;
		SOCKCALL("set SO_RCVTIMEO 20ms", setsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv));
		getsockopt(sv[1], SOL_SOCKET, SO_RCVTIMEO, &got, &l);
		printf("  SO_RCVTIMEO: %ld.%06ld len %u\n", (long)got.tv_sec, (long)got.tv_usec, (unsigned)l);
		char c;
		SOCKCALL("recv with timeout", recv(sv[1], &c, 1, 0));
		tv.tv_sec = 2;
		tv.tv_usec = 500000;
		setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		l = sizeof got;
		getsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &got, &l);
		printf("  SO_SNDTIMEO: %ld.%06ld\n", (long)got.tv_sec, (long)got.tv_usec);
		tv.tv_usec = 1000000;
		SOCKCALL("SO_SNDTIMEO usec 1000000", setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv));
		SOCKCALL("SO_SNDTIMEO short", setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &tv, 8));
		tv.tv_sec = 0;
		tv.tv_usec = 0;
		setsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
		l = sizeof got;
		getsockopt(sv[1], SOL_SOCKET, SO_SNDTIMEO, &got, &l);
		printf("  SO_SNDTIMEO cleared: %ld.%06ld\n", (long)got.tv_sec, (long)got.tv_usec);
	}
	{
		struct linger lg = { 1, 5 }, got = { 9, 9 };
		socklen_t l = sizeof got;
		SOCKCALL("set SO_LINGER", setsockopt(sv[0], SOL_SOCKET, SO_LINGER, &lg, sizeof lg));
		getsockopt(sv[0], SOL_SOCKET, SO_LINGER, &got, &l);
		printf("  SO_LINGER: %d %d len %u\n", got.l_onoff, got.l_linger, (unsigned)l);
	}
	close(sv[0]);
	close(sv[1]);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	basic(SOCK_STREAM);
	basic(SOCK_DGRAM);
	basic(SOCK_SEQPACKET);
	waitall();
	shutdowns(SOCK_STREAM);
	shutdowns(SOCK_SEQPACKET);
	shutdowns(SOCK_DGRAM);
	full_buffers(SOCK_STREAM);
	full_buffers(SOCK_DGRAM);
	full_buffers(SOCK_SEQPACKET);
	readiness(SOCK_STREAM);
	readiness(SOCK_DGRAM);
	readiness(SOCK_SEQPACKET);
	file_view();
	creation_errors();
	options();
	return 0;
}
