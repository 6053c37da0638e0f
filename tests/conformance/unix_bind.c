/* AF_UNIX names and connections in one process: bind to paths (the node, EADDRINUSE,
 * errors of the path) and to abstract names (duplicates, autobind), the exact lengths
 * getsockname/getpeername/accept/recvfrom return, listen/connect/accept/accept4 (a
 * connection waits in the backlog until accepted; a full backlog), ECONNREFUSED, ENOENT,
 * EPROTOTYPE, EISCONN, datagram destinations, and what closing a listener does. Paths are
 * bound inside a fresh /tmp/fsconf-XXXXXX. */
#define CONF_FS
#include "conf.h"
#include <signal.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

static socklen_t mkaddr(struct sockaddr_un *a, const char *path)
{
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	memcpy(a->sun_path, path, strlen(path) < sizeof a->sun_path ? strlen(path) : sizeof a->sun_path);
	return offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
}

/* An abstract name: "\0" + name, with the length covering exactly that. */
static socklen_t mkabs(struct sockaddr_un *a, const char *name)
{
	memset(a, 0, sizeof *a);
	a->sun_family = AF_UNIX;
	memcpy(a->sun_path + 1, name, strlen(name));
	return offsetof(struct sockaddr_un, sun_path) + 1 + strlen(name);
}

/* Prints an address the way getsockname & co return it: length, then the name. */
static void print_addr(const char *label, const struct sockaddr_un *a, socklen_t len)
{
	printf("%s: len=%u", label, (unsigned)len);
	if (len > offsetof(struct sockaddr_un, sun_path)) {
		size_t n = len - offsetof(struct sockaddr_un, sun_path);
		if (n > sizeof a->sun_path)
			n = sizeof a->sun_path;
		if (a->sun_path[0] == 0) {
			printf(" abstract \"");
			for (size_t i = 1; i < n; i++)
				putchar(a->sun_path[i] ? a->sun_path[i] : '@');
			printf("\"");
		} else {
			printf(" path \"%.*s\"", (int)strnlen(a->sun_path, n), a->sun_path);
		}
	}
	printf(" family=%d\n", a->sun_family);
}

static void show_name(const char *label, int fd, int peer)
{
	struct sockaddr_un a;
	memset(&a, 0x55, sizeof a);
	socklen_t len = sizeof a;
	int r = peer ? getpeername(fd, (struct sockaddr *)&a, &len)
		     : getsockname(fd, (struct sockaddr *)&a, &len);
	if (r != 0) {
		printf("%s: -1 errno=%s\n", label, errname(errno));
		return;
	}
	print_addr(label, &a, len);
}

static int sock(int type)
{
	int fd = socket(AF_UNIX, type, 0);
	if (fd < 0) {
		printf("socket: FAIL errno=%s\n", errname(errno));
		exit(2);
	}
	return fd;
}

static void path_binds(void)
{
	struct sockaddr_un a;
	printf("--- binding to paths\n");
	int s = sock(SOCK_STREAM);
	show_name("unbound getsockname", s, 0);
	show_name("unbound getpeername", s, 1);
	socklen_t len = mkaddr(&a, "srv.sock");
	NUMCALL("bind srv.sock", bind(s, (struct sockaddr *)&a, len));
	fs_show("stat srv.sock", "srv.sock", 0);
	show_name("getsockname", s, 0);
	NUMCALL("bind again (new path)", bind(s, (struct sockaddr *)&a, mkaddr(&a, "other.sock")));
	fs_show("other.sock left behind", "other.sock", 0);
	NUMCALL("bind again (same path)", bind(s, (struct sockaddr *)&a, mkaddr(&a, "srv.sock")));
	int t = sock(SOCK_DGRAM);
	NUMCALL("bind taken path", bind(t, (struct sockaddr *)&a, mkaddr(&a, "srv.sock")));
	fs_put("file", "x");
	NUMCALL("bind over a file", bind(t, (struct sockaddr *)&a, mkaddr(&a, "file")));
	NUMCALL("bind in missing dir", bind(t, (struct sockaddr *)&a, mkaddr(&a, "nodir/s")));
	NUMCALL("bind under a file", bind(t, (struct sockaddr *)&a, mkaddr(&a, "file/s")));
	NUMCALL("bind trailing slash", bind(t, (struct sockaddr *)&a, mkaddr(&a, "new/")));
	mkdir("ro", 0555);
	if (geteuid() != 0)
		NUMCALL("bind in read-only dir", bind(t, (struct sockaddr *)&a, mkaddr(&a, "ro/s")));
	NUMCALL("bind .", bind(t, (struct sockaddr *)&a, mkaddr(&a, ".")));
	/* Length handling: sun_path need not be terminated within the length; bytes after
	 * the NUL are ignored. */
	len = mkaddr(&a, "long.sock");
	NUMCALL("bind without the NUL", bind(t, (struct sockaddr *)&a, len - 1));
	show_name("  getsockname", t, 0);
	int u = sock(SOCK_DGRAM);
	mkaddr(&a, "junk.sock");
	memcpy(a.sun_path + 10, "garbage", 7);
	NUMCALL("bind with bytes after the NUL", bind(u, (struct sockaddr *)&a, sizeof a));
	show_name("  getsockname", u, 0);
	NUMCALL("bind len 1", bind(sock(SOCK_STREAM), (struct sockaddr *)&a, 1));
	NUMCALL("bind len > sizeof", bind(sock(SOCK_STREAM), (struct sockaddr *)&a, sizeof a + 1));
	a.sun_family = AF_INET;
	NUMCALL("bind wrong family", bind(sock(SOCK_STREAM), (struct sockaddr *)&a, 12));
	NUMCALL("bind NULL", bind(sock(SOCK_STREAM), NULL, 12));
	/* A 108-byte path: 2 + 108 + 1 = 111, more than sizeof(struct sockaddr_un). */
	{
		char name[109];
		memset(name, 'p', 108);
		name[108] = 0;
		int v = sock(SOCK_DGRAM);
		memset(&a, 0, sizeof a);
		a.sun_family = AF_UNIX;
		memcpy(a.sun_path, name, 108);
		NUMCALL("bind 108-byte name", bind(v, (struct sockaddr *)&a, sizeof a));
		struct sockaddr_storage ss;
		socklen_t l = sizeof ss;
		getsockname(v, (struct sockaddr *)&ss, &l);
		printf("  getsockname len=%u\n", (unsigned)l);
		close(v);
		unlink(name);
	}
	/* Closing a bound socket leaves the node; connecting to it is refused. */
	close(s);
	fs_show("node after close", "srv.sock", 0);
	int c = sock(SOCK_STREAM);
	NUMCALL("connect to closed socket's node", connect(c, (struct sockaddr *)&a, mkaddr(&a, "srv.sock")));
	NUMCALL("connect to a file", connect(c, (struct sockaddr *)&a, mkaddr(&a, "file")));
	NUMCALL("connect to missing", connect(c, (struct sockaddr *)&a, mkaddr(&a, "missing")));
	NUMCALL("connect under a file", connect(c, (struct sockaddr *)&a, mkaddr(&a, "file/x")));
	NUMCALL("open() a socket node", open("long.sock", O_RDONLY));
	NUMCALL("unlink node", unlink("srv.sock"));
	/* A new socket may bind to the path again once the node is gone. */
	s = sock(SOCK_STREAM);
	NUMCALL("rebind srv.sock", bind(s, (struct sockaddr *)&a, mkaddr(&a, "srv.sock")));
	close(s);
	close(t);
	close(u);
	close(c);
}

static void abstract_binds(void)
{
	struct sockaddr_un a, b;
	printf("--- abstract names\n");
	int s = sock(SOCK_DGRAM);
	socklen_t len = mkabs(&a, "conf-abstract");
	NUMCALL("bind abstract", bind(s, (struct sockaddr *)&a, len));
	show_name("getsockname", s, 0);
	int t = sock(SOCK_DGRAM);
	NUMCALL("bind same name", bind(t, (struct sockaddr *)&a, len));
	NUMCALL("bind same name + NUL", bind(t, (struct sockaddr *)&a, len + 1));
	show_name("  getsockname", t, 0);
	int u = sock(SOCK_DGRAM);
	NUMCALL("bind longer name", bind(u, (struct sockaddr *)&b, mkabs(&b, "conf-abstract-2")));
	/* Datagrams between named sockets carry the sender's name. */
	NUMCALL("sendto", sendto(u, "hi", 2, 0, (struct sockaddr *)&a, len));
	{
		char buf[8];
		struct sockaddr_un from;
		socklen_t fl = sizeof from;
		NUMCALL("recvfrom", recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl));
		print_addr("  from", &from, fl);
		fl = 4;
		memset(&from, 0, sizeof from);
		NUMCALL("sendto again", sendto(u, "hi", 2, 0, (struct sockaddr *)&a, len));
		NUMCALL("recvfrom into 4 bytes", recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl));
		printf("  addrlen %u family %d\n", (unsigned)fl, from.sun_family);
	}
	close(s);
	s = sock(SOCK_DGRAM);
	NUMCALL("name free after close", bind(s, (struct sockaddr *)&a, len));
	NUMCALL("sendto unbound name", sendto(u, "x", 1, 0, (struct sockaddr *)&b, mkabs(&b, "nobody-here")));
	/* Autobind: five hex digits after the NUL. */
	int v = sock(SOCK_STREAM);
	NUMCALL("autobind (len 2)", bind(v, (struct sockaddr *)&a, offsetof(struct sockaddr_un, sun_path)));
	{
		struct sockaddr_un got;
		socklen_t gl = sizeof got;
		getsockname(v, (struct sockaddr *)&got, &gl);
		int hex = 1;
		for (int i = 1; i < 6; i++)
			hex &= strchr("0123456789abcdef", got.sun_path[i]) != NULL && got.sun_path[i];
		printf("  autobound: len=%u leading NUL=%s hex=%s\n", (unsigned)gl,
		       got.sun_path[0] == 0 ? "yes" : "no", hex ? "yes" : "no");
		NUMCALL("autobind again keeps the name", bind(v, (struct sockaddr *)&a, 2));
		struct sockaddr_un again;
		socklen_t al = sizeof again;
		getsockname(v, (struct sockaddr *)&again, &al);
		printf("  same name: %s\n", al == gl && !memcmp(&again, &got, gl) ? "yes" : "no");
	}
	close(s);
	close(t);
	close(u);
	close(v);
}

static void streams(int type)
{
	struct sockaddr_un a;
	const char *t = type == SOCK_STREAM ? "stream" : "seqpacket";
	printf("--- %s connections\n", t);
	int l = sock(type);
	socklen_t len = mkaddr(&a, type == SOCK_STREAM ? "listen.sock" : "seq.sock");
	NUMCALL("listen unbound", listen(l, 5));
	NUMCALL("bind", bind(l, (struct sockaddr *)&a, len));
	int c0 = sock(type);
	NUMCALL("connect before listen", connect(c0, (struct sockaddr *)&a, len));
	NUMCALL("listen backlog 1", listen(l, 1));
	int on = -1;
	socklen_t ol = sizeof on;
	getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &on, &ol);
	printf("  SO_ACCEPTCONN: %d\n", on);
	{
		int fl = fcntl(l, F_GETFL);
		fcntl(l, F_SETFL, fl | O_NONBLOCK);
		NUMCALL("accept on O_NONBLOCK listener", accept(l, NULL, NULL));
		fcntl(l, F_SETFL, fl);
	}
	/* Connections complete without accept: they wait in the backlog (which holds
	 * backlog + 1). */
	int c1 = sock(type), c2 = sock(type), c3 = sock(type | SOCK_NONBLOCK);
	NUMCALL("connect 1", connect(c1, (struct sockaddr *)&a, len));
	NUMCALL("connect 2", connect(c2, (struct sockaddr *)&a, len));
	NUMCALL("connect 3 (backlog full, nonblocking)", connect(c3, (struct sockaddr *)&a, len));
	show_name("client getsockname", c1, 0);
	show_name("client getpeername", c1, 1);
	NUMCALL("send before accept", send(c1, "early", 5, 0));
	int dg = sock(SOCK_DGRAM);
	NUMCALL("dgram connect to it", connect(dg, (struct sockaddr *)&a, len));
	{
		struct sockaddr_un peer;
		memset(&peer, 0x55, sizeof peer);
		socklen_t pl = sizeof peer;
		int s1 = accept(l, (struct sockaddr *)&peer, &pl);
		printf("accept: %s\n", s1 >= 0 ? "ok" : errname(errno));
		/* The backlog has room again: the caller's own state is what fails now. */
		NUMCALL("  connect 1 again", connect(c1, (struct sockaddr *)&a, len));
		print_addr("  peer address", &peer, pl);
		show_name("  accepted getsockname", s1, 0);
		show_name("  accepted getpeername", s1, 1);
		char buf[16] = { 0 };
		NUMCALL("  recv early data", recv(s1, buf, sizeof buf, 0));
		printf("  got \"%s\"\n", buf);
		NUMCALL("  reply", send(s1, "reply", 5, 0));
		memset(buf, 0, sizeof buf);
		NUMCALL("  client recv", recv(c1, buf, sizeof buf, 0));
		printf("  got \"%s\"\n", buf);
		fs_showfd("  fstat accepted", s1);
		printf("  accepted F_GETFL: %#x F_GETFD: %d\n", fcntl(s1, F_GETFL), fcntl(s1, F_GETFD));
		/* The accepted socket's peer closes: EOF, then EPIPE. */
		close(c1);
		NUMCALL("  recv after client close", recv(s1, buf, sizeof buf, 0));
		NUMCALL("  send after client close", send(s1, "x", 1, MSG_NOSIGNAL));
		show_name("  getpeername after client close", s1, 1);
		close(s1);
	}
	/* c2's connection is next in line. */
	int s_c2 = accept(l, NULL, NULL);
	printf("accept c2: %s\n", s_c2 >= 0 ? "ok" : errname(errno));
	/* A named client: the server sees its name. */
	{
		int c4 = sock(type);
		struct sockaddr_un ca;
		NUMCALL("bind client", bind(c4, (struct sockaddr *)&ca, mkabs(&ca, "conf-client")));
		NUMCALL("connect named client", connect(c4, (struct sockaddr *)&a, len));
		struct sockaddr_un peer;
		socklen_t pl = sizeof peer;
		int s2 = accept4(l, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC | SOCK_NONBLOCK);
		printf("accept4 CLOEXEC|NONBLOCK: %s\n", s2 >= 0 ? "ok" : errname(errno));
		print_addr("  peer address", &peer, pl);
		show_name("  server getpeername", s2, 1);
		printf("  F_GETFL: %#x F_GETFD: %d\n", fcntl(s2, F_GETFL), fcntl(s2, F_GETFD));
		pl = 3;
		NUMCALL("  connect again, accept into 3 bytes", connect(sock(type), (struct sockaddr *)&a, len));
		int s3 = accept(l, (struct sockaddr *)&peer, &pl);
		printf("  accept: %s addrlen=%u\n", s3 >= 0 ? "ok" : errname(errno), (unsigned)pl);
		close(s3);
		close(s2);
		close(c4);
	}
	/* The system call: some musl versions retry a refused accept4 as accept. */
	NUMCALL("accept4 bad flags", syscall(SYS_accept4, l, NULL, NULL, 0x1234));
	NUMCALL("accept on connected socket", accept(c2, NULL, NULL));
	NUMCALL("listen on connected socket", listen(c2, 1));
	NUMCALL("connect listener", connect(l, (struct sockaddr *)&a, len));
	{
		struct sockaddr_un bad;
		NUMCALL("connect EPROTOTYPE", connect(sock(type == SOCK_STREAM ? SOCK_SEQPACKET : SOCK_STREAM),
						      (struct sockaddr *)&a, len));
		NUMCALL("connect to missing abstract", connect(sock(type), (struct sockaddr *)&bad, mkabs(&bad, "nope")));
		NUMCALL("connect len 2", connect(sock(type), (struct sockaddr *)&bad, 2));
		bad.sun_family = AF_UNSPEC;
		NUMCALL("connect AF_UNSPEC", connect(sock(type), (struct sockaddr *)&bad, sizeof bad));
		NUMCALL("sendto on stream-like, unconnected", sendto(sock(type), "x", 1, MSG_NOSIGNAL, (struct sockaddr *)&a, len));
		NUMCALL("sendto on connected", sendto(c2, "x", 1, MSG_NOSIGNAL, (struct sockaddr *)&a, len));
	}
	/* Closing the listener resets the connections it never accepted. */
	int c5 = sock(type);
	NUMCALL("connect, never accepted", connect(c5, (struct sockaddr *)&a, len));
	NUMCALL("send to it", send(c5, "lost", 4, 0));
	close(l);
	{
		char buf[8];
		NUMCALL("pending client recv after listener close", recv(c5, buf, sizeof buf, 0));
		NUMCALL("  and again", recv(c5, buf, sizeof buf, 0));
		NUMCALL("  send", send(c5, "x", 1, MSG_NOSIGNAL));
		int err = -1;
		socklen_t el = sizeof err;
		getsockopt(c5, SOL_SOCKET, SO_ERROR, &err, &el);
		printf("  SO_ERROR: %s\n", errname(err));
		show_name("  getpeername", c5, 1);
	}
	{
		/* An accepted connection outlives its listener. */
		char buf[8] = { 0 };
		NUMCALL("accepted connection still works", send(c2, "hey", 3, MSG_NOSIGNAL));
		NUMCALL("  recv", recv(s_c2, buf, sizeof buf, MSG_DONTWAIT));
	}
	close(c5);
	close(s_c2);
	NUMCALL("connect after listener close", connect(c3, (struct sockaddr *)&a, len));
	close(c0);
	close(c2);
	close(c3);
	close(dg);
}

static void datagrams(void)
{
	struct sockaddr_un a, b;
	printf("--- datagram destinations\n");
	int s = sock(SOCK_DGRAM), c = sock(SOCK_DGRAM), o = sock(SOCK_DGRAM);
	socklen_t len = mkaddr(&a, "dgram.sock");
	NUMCALL("bind", bind(s, (struct sockaddr *)&a, len));
	NUMCALL("send unconnected", send(c, "x", 1, 0));
	NUMCALL("sendto path", sendto(c, "one", 3, 0, (struct sockaddr *)&a, len));
	NUMCALL("connect", connect(c, (struct sockaddr *)&a, len));
	show_name("getpeername", c, 1);
	NUMCALL("send connected", send(c, "two", 3, 0));
	{
		char buf[8];
		struct sockaddr_un from;
		socklen_t fl = sizeof from;
		NUMCALL("recvfrom (unbound sender)", recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl));
		printf("  addrlen %u\n", (unsigned)fl);
		NUMCALL("recv", recv(s, buf, sizeof buf, 0));
	}
	/* A receiver connected elsewhere refuses strangers. */
	NUMCALL("bind other", bind(o, (struct sockaddr *)&b, mkabs(&b, "conf-dgram-other")));
	NUMCALL("receiver connects elsewhere", connect(s, (struct sockaddr *)&b, mkabs(&b, "conf-dgram-other")));
	NUMCALL("stranger sends", send(c, "three", 5, 0));
	NUMCALL("other sends", sendto(o, "ok", 2, 0, (struct sockaddr *)&a, len));
	struct sockaddr unspec = { .sa_family = AF_UNSPEC };
	NUMCALL("receiver disconnects", connect(s, &unspec, sizeof unspec));
	NUMCALL("stranger sends again", send(c, "four", 4, 0));
	NUMCALL("disconnect sender", connect(c, &unspec, sizeof unspec));
	show_name("getpeername after disconnect", c, 1);
	NUMCALL("send after disconnect", send(c, "x", 1, 0));
	{
		int st = sock(SOCK_STREAM);
		NUMCALL("bind a stream socket", bind(st, (struct sockaddr *)&b, mkaddr(&b, "strm.sock")));
		NUMCALL("sendto stream socket", sendto(c, "x", 1, 0, (struct sockaddr *)&b, mkaddr(&b, "strm.sock")));
		NUMCALL("sendto closed stream node", sendto(c, "x", 1, 0, (struct sockaddr *)&b, mkaddr(&b, "listen.sock")));
		NUMCALL("sendto a file", sendto(c, "x", 1, 0, (struct sockaddr *)&b, mkaddr(&b, "file")));
		NUMCALL("sendto missing path", sendto(c, "x", 1, 0, (struct sockaddr *)&b, mkaddr(&b, "missing")));
		NUMCALL("sendto bad family", sendto(c, "x", 1, 0, (struct sockaddr *)&unspec, sizeof unspec));
		close(st);
	}
	/* An unconnected receiver queues a bounded number of datagrams from strangers. */
	{
		int n = 0;
		while (n < 10000 && sendto(c, "q", 1, MSG_DONTWAIT, (struct sockaddr *)&a, len) == 1)
			n++;
		printf("queued from a stranger: %d then errno=%s\n", n, errname(errno));
	}
	/* The receiver closes: a connected sender is refused once, then unconnected. */
	NUMCALL("connect sender", connect(c, (struct sockaddr *)&a, len));
	close(s);
	NUMCALL("send to closed receiver", send(c, "x", 1, 0));
	NUMCALL("send again", send(c, "x", 1, 0));
	close(c);
	close(o);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	fs_enter();
	path_binds();
	abstract_binds();
	streams(SOCK_STREAM);
	streams(SOCK_SEQPACKET);
	datagrams();
	fs_leave();
	return 0;
}
