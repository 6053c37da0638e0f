/* AF_UNIX control messages in one process: SCM_RIGHTS (a pipe end passed through a
 * socketpair and used; shared offsets; several files; MSG_CTRUNC and what happens to the
 * files that didn't fit; MSG_CMSG_CLOEXEC; MSG_PEEK; stream boundaries; errors), and
 * SCM_CREDENTIALS / SO_PASSCRED / SO_PEERCRED (pids differ between native and sandboxed
 * runs, so they are compared with getpid() rather than printed). */
#define CONF_FS
#include "conf.h"
#include <signal.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>

/* The system call itself: musl's wrapper copies control data into a buffer of its own,
 * refusing large ones with ENOMEM before the kernel sees them. */
static long raw_sendmsg(int fd, const struct msghdr *m, int flags)
{
	return syscall(SYS_sendmsg, fd, m, flags);
}

/* Sends DATA with the descriptors FDS (n of them) in one SCM_RIGHTS message. */
static long send_fds(int sock, const char *data, const int *fds, int n)
{
	char cbuf[CMSG_SPACE(sizeof(int) * 300)];
	struct iovec iov = { (void *)data, strlen(data) };
	struct msghdr m = { 0 };
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	if (n > 0) {
		memset(cbuf, 0, sizeof cbuf);
		m.msg_control = cbuf;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * n);
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * n);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * n);
	}
	return raw_sendmsg(sock, &m, 0);
}

struct got {
	long n;
	char data[64];
	int fds[300];
	int nfds;
	int flags;
	size_t controllen;
	int has_creds;
	struct ucred creds;
};

/* recvmsg with a control buffer of CLEN bytes (-1: none). */
static struct got recv_msg(int sock, long clen, int flags)
{
	struct got g;
	memset(&g, 0, sizeof g);
	char cbuf[4096];
	struct iovec iov = { g.data, sizeof g.data - 1 };
	struct msghdr m = { 0 };
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	if (clen >= 0) {
		m.msg_control = cbuf;
		m.msg_controllen = clen;
	}
	errno = 0;
	g.n = recvmsg(sock, &m, flags);
	if (g.n < 0)
		return g;
	g.flags = m.msg_flags;
	g.controllen = m.msg_controllen;
	if (clen < 0)
		return g;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c)) {
		if (c->cmsg_level != SOL_SOCKET)
			continue;
		if (c->cmsg_type == SCM_RIGHTS) {
			int k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			memcpy(g.fds + g.nfds, CMSG_DATA(c), k * sizeof(int));
			g.nfds += k;
		} else if (c->cmsg_type == SCM_CREDENTIALS && c->cmsg_len >= CMSG_LEN(sizeof g.creds)) {
			memcpy(&g.creds, CMSG_DATA(c), sizeof g.creds);
			g.has_creds = 1;
		}
	}
	return g;
}

static void show_got(const char *label, const struct got *g)
{
	if (g->n < 0) {
		printf("%s: -1 errno=%s\n", label, errname(errno));
		return;
	}
	printf("%s: %ld \"%s\" fds=%d flags=%s%s%s%s controllen=%zu\n", label, g->n, g->data,
	       g->nfds, (g->flags & MSG_TRUNC) ? "TRUNC " : "",
	       (g->flags & MSG_CTRUNC) ? "CTRUNC " : "",
	       (g->flags & MSG_CMSG_CLOEXEC) ? "CMSG_CLOEXEC " : "",
	       (g->flags & ~(MSG_TRUNC | MSG_CTRUNC | MSG_CMSG_CLOEXEC)) ? "other" : "-",
	       g->controllen);
}

static void close_fds(struct got *g)
{
	for (int i = 0; i < g->nfds; i++)
		close(g->fds[i]);
}

/* Whether the pipe read end P sees EOF now (all write ends closed). */
static const char *pipe_state(int p)
{
	char c;
	int fl = fcntl(p, F_GETFL);
	fcntl(p, F_SETFL, fl | O_NONBLOCK);
	ssize_t n = read(p, &c, 1);
	int e = errno;
	fcntl(p, F_SETFL, fl);
	if (n == 0)
		return "EOF";
	if (n < 0 && e == EAGAIN)
		return "open";
	return "data";
}

static void pass_pipe(int type)
{
	int sv[2], p[2];
	printf("--- passing a pipe (%s)\n", type == SOCK_STREAM ? "stream" : type == SOCK_DGRAM ? "dgram" : "seqpacket");
	socketpair(AF_UNIX, type, 0, sv);
	pipe(p);
	NUMCALL("send write end", send_fds(sv[0], "pipe", &p[1], 1));
	/* The message holds the file: closing our descriptor doesn't close the pipe. */
	close(p[1]);
	printf("pipe after closing our write end: %s\n", pipe_state(p[0]));
	struct got g = recv_msg(sv[1], 256, 0);
	show_got("recvmsg", &g);
	if (g.nfds == 1) {
		int w = g.fds[0];
		printf("  received a descriptor: %s\n", w >= 0 ? "yes" : "no");
		printf("  F_GETFL & O_ACCMODE: %d F_GETFD: %d\n", fcntl(w, F_GETFL) & O_ACCMODE, fcntl(w, F_GETFD));
		fs_showfd("  fstat", w);
		NUMCALL("  write through it", write(w, "through", 7));
		char buf[16] = { 0 };
		NUMCALL("  read from the pipe", read(p[0], buf, sizeof buf));
		printf("  got \"%s\"\n", buf);
		close(w);
		printf("  pipe after closing the received end: %s\n", pipe_state(p[0]));
	}
	close(p[0]);
	close(sv[0]);
	close(sv[1]);
}

static void shared_offset(void)
{
	int sv[2];
	printf("--- a passed file shares its offset\n");
	socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
	fs_put("f", "0123456789");
	int fd = open("f", O_RDONLY);
	NUMCALL("send", send_fds(sv[0], "f", &fd, 1));
	struct got g = recv_msg(sv[1], 64, MSG_CMSG_CLOEXEC);
	show_got("recvmsg CMSG_CLOEXEC", &g);
	if (g.nfds == 1) {
		printf("  F_GETFD: %d\n", fcntl(g.fds[0], F_GETFD));
		char c;
		read(g.fds[0], &c, 1);
		read(g.fds[0], &c, 1);
		NUMCALL("  offset seen through the original", lseek(fd, 0, SEEK_CUR));
	}
	close_fds(&g);
	close(fd);
	close(sv[0]);
	close(sv[1]);
}

static void several(void)
{
	int sv[2], p[3][2], w[3];
	printf("--- several files, truncation\n");
	socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv);
	for (int i = 0; i < 3; i++) {
		pipe(p[i]);
		w[i] = p[i][1];
	}
	NUMCALL("send 3", send_fds(sv[0], "three", w, 3));
	for (int i = 0; i < 3; i++)
		close(w[i]);
	struct got g = recv_msg(sv[1], CMSG_SPACE(sizeof(int) * 3), 0);
	show_got("recvmsg, room for 3", &g);
	close_fds(&g);
	for (int i = 0; i < 3; i++)
		printf("  pipe %d: %s\n", i, pipe_state(p[i][0]));
	for (int i = 0; i < 3; i++) {
		close(p[i][0]);
		pipe(p[i]);
		w[i] = p[i][1];
	}
	NUMCALL("send 3 again", send_fds(sv[0], "three", w, 3));
	for (int i = 0; i < 3; i++)
		close(w[i]);
	g = recv_msg(sv[1], CMSG_LEN(sizeof(int)), 0);
	show_got("recvmsg, room for 1", &g);
	/* The files that didn't fit are closed. */
	for (int i = 0; i < 3; i++)
		printf("  pipe %d: %s\n", i, pipe_state(p[i][0]));
	close_fds(&g);
	for (int i = 0; i < 3; i++) {
		close(p[i][0]);
		pipe(p[i]);
		w[i] = p[i][1];
	}
	NUMCALL("send 2", send_fds(sv[0], "two", w, 2));
	close(w[0]);
	close(w[1]);
	g = recv_msg(sv[1], CMSG_LEN(0), 0);
	show_got("recvmsg, room for none", &g);
	printf("  pipes: %s %s\n", pipe_state(p[0][0]), pipe_state(p[1][0]));
	NUMCALL("send 2 again", send_fds(sv[0], "two", w + 2, 1));
	close(w[2]);
	g = recv_msg(sv[1], -1, 0);
	show_got("recvmsg without a control buffer", &g);
	printf("  pipe: %s\n", pipe_state(p[2][0]));
	{
		int pp[2];
		pipe(pp);
		NUMCALL("send to be read with read()", send_fds(sv[0], "rd", &pp[1], 1));
		close(pp[1]);
		char buf[8];
		NUMCALL("read()", read(sv[1], buf, sizeof buf));
		printf("  pipe: %s\n", pipe_state(pp[0]));
		close(pp[0]);
	}
	/* MSG_PEEK installs descriptors too; the real receive installs new ones. */
	{
		int pp[2];
		pipe(pp);
		send_fds(sv[0], "peek", &pp[1], 1);
		close(pp[1]);
		struct got a = recv_msg(sv[1], 64, MSG_PEEK);
		show_got("peek", &a);
		struct got b = recv_msg(sv[1], 64, 0);
		show_got("recv", &b);
		printf("  distinct descriptors: %s\n", a.nfds == 1 && b.nfds == 1 && a.fds[0] != b.fds[0] ? "yes" : "no");
		close_fds(&a);
		printf("  pipe after closing the peeked one: %s\n", pipe_state(pp[0]));
		close_fds(&b);
		printf("  pipe after closing both: %s\n", pipe_state(pp[0]));
		close(pp[0]);
	}
	for (int i = 0; i < 3; i++)
		close(p[i][0]);
	close(sv[0]);
	close(sv[1]);
}

static void stream_boundaries(void)
{
	int sv[2], p[2];
	printf("--- stream: files end a read\n");
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	pipe(p);
	send(sv[0], "ab", 2, 0);
	send_fds(sv[0], "cd", &p[1], 1);
	send(sv[0], "ef", 2, 0);
	struct got g = recv_msg(sv[1], 64, 0);
	show_got("first read", &g);
	close_fds(&g);
	g = recv_msg(sv[1], 64, 0);
	show_got("second read", &g);
	NUMCALL("send no bytes with a file", send_fds(sv[0], "", &p[1], 1));
	g = recv_msg(sv[1], 64, MSG_DONTWAIT);
	show_got("nothing to read", &g);
	close(p[0]);
	close(p[1]);
	close(sv[0]);
	close(sv[1]);
}

static void rights_errors(void)
{
	int sv[2];
	printf("--- SCM_RIGHTS errors\n");
	socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
	int bad = 9999;
	NUMCALL("bad descriptor", send_fds(sv[0], "x", &bad, 1));
	bad = -1;
	NUMCALL("negative descriptor", send_fds(sv[0], "x", &bad, 1));
	int many[254];
	for (int i = 0; i < 254; i++)
		many[i] = sv[0];
	NUMCALL("253 descriptors", send_fds(sv[0], "x", many, 253));
	struct got g = recv_msg(sv[1], 4096, 0);
	printf("  received %d\n", g.nfds);
	close_fds(&g);
	NUMCALL("254 descriptors", send_fds(sv[0], "x", many, 254));
	/* Malformed control buffers. */
	char cbuf[64];
	struct iovec iov = { "x", 1 };
	struct msghdr m = { 0 };
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = cbuf;
	struct cmsghdr *c = (struct cmsghdr *)cbuf;
	memset(cbuf, 0, sizeof cbuf);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = 64;
	m.msg_controllen = 32;
	NUMCALL("cmsg_len past the buffer", raw_sendmsg(sv[0], &m, 0));
	c->cmsg_len = 8;
	NUMCALL("cmsg_len too short", raw_sendmsg(sv[0], &m, 0));
	c->cmsg_len = CMSG_LEN(0);
	m.msg_controllen = CMSG_SPACE(0);
	NUMCALL("no descriptors", raw_sendmsg(sv[0], &m, 0));
	c->cmsg_type = 99;
	NUMCALL("unknown SOL_SOCKET type", raw_sendmsg(sv[0], &m, 0));
	c->cmsg_level = 0; /* IPPROTO_IP: not ours, skipped */
	NUMCALL("other level", raw_sendmsg(sv[0], &m, 0));
	m.msg_controllen = 8;
	NUMCALL("buffer shorter than a header", raw_sendmsg(sv[0], &m, 0));
	m.msg_controllen = 0x80000000UL;
	NUMCALL("controllen > INT_MAX", raw_sendmsg(sv[0], &m, 0));
	while (recv(sv[1], cbuf, sizeof cbuf, MSG_DONTWAIT) >= 0)
		;
	/* A socket sent over itself, then closed: nothing to observe but a clean run. */
	NUMCALL("send a socket over itself", send_fds(sv[0], "self", &sv[1], 1));
	NUMCALL("and the other end", send_fds(sv[1], "self", &sv[0], 1));
	close(sv[0]);
	close(sv[1]);
	int again[2];
	NUMCALL("new pair afterwards", socketpair(AF_UNIX, SOCK_STREAM, 0, again));
	close(again[0]);
	close(again[1]);
}

static int same_ids(const struct ucred *c)
{
	return c->pid == getpid() && c->uid == getuid() && c->gid == getgid();
}

static void credentials(void)
{
	int sv[2];
	printf("--- SCM_CREDENTIALS\n");
	socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
	send(sv[0], "before", 6, 0);
	int on = 1;
	NUMCALL("SO_PASSCRED on receiver", setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on));
	send(sv[0], "after", 5, 0);
	struct got g = recv_msg(sv[1], 256, 0);
	show_got("message sent before SO_PASSCRED", &g);
	if (g.has_creds)
		printf("  creds: pid=%d uid=%u gid=%u\n", g.creds.pid, g.creds.uid, g.creds.gid);
	g = recv_msg(sv[1], 256, 0);
	show_got("message sent after", &g);
	printf("  creds present: %s\n", g.has_creds ? "yes" : "no");
	printf("  pid matches getpid: %s\n", g.creds.pid == getpid() ? "yes" : "no");
	printf("  uid matches getuid: %s\n", g.creds.uid == getuid() ? "yes" : "no");
	printf("  gid matches getgid: %s\n", g.creds.gid == getgid() ? "yes" : "no");
	send(sv[0], "small", 5, 0);
	g = recv_msg(sv[1], CMSG_LEN(4), 0);
	show_got("control buffer too small", &g);
	send(sv[0], "none", 4, 0);
	g = recv_msg(sv[1], -1, 0);
	show_got("no control buffer", &g);
	/* Explicit credentials: one's own are accepted. */
	{
		char cbuf[CMSG_SPACE(sizeof(struct ucred))];
		memset(cbuf, 0, sizeof cbuf);
		struct iovec iov = { "own", 3 };
		struct msghdr m = { 0 };
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		m.msg_control = cbuf;
		m.msg_controllen = sizeof cbuf;
		struct cmsghdr *c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_CREDENTIALS;
		c->cmsg_len = CMSG_LEN(sizeof(struct ucred));
		struct ucred uc = { getpid(), getuid(), getgid() };
		memcpy(CMSG_DATA(c), &uc, sizeof uc);
		NUMCALL("sendmsg own credentials", raw_sendmsg(sv[0], &m, 0));
		g = recv_msg(sv[1], 256, 0);
		printf("  received them: %s\n", g.has_creds && same_ids(&g.creds) ? "yes" : "no");
		uc.uid = (uid_t)-1;
		memcpy(CMSG_DATA(c), &uc, sizeof uc);
		NUMCALL("uid -1", raw_sendmsg(sv[0], &m, 0));
		c->cmsg_len = CMSG_LEN(sizeof(struct ucred)) - 1;
		NUMCALL("wrong cmsg_len", raw_sendmsg(sv[0], &m, 0));
	}
	/* Streams: with SO_PASSCRED the reader gets the writer's credentials. */
	int st[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, st);
	setsockopt(st[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
	send(st[0], "ab", 2, 0);
	send(st[0], "cd", 2, 0);
	g = recv_msg(st[1], 256, 0);
	show_got("stream with SO_PASSCRED", &g);
	printf("  from us: %s\n", g.has_creds && same_ids(&g.creds) ? "yes" : "no");
	close(st[0]);
	close(st[1]);
	close(sv[0]);
	close(sv[1]);
}

static void show_peercred(const char *label, int fd)
{
	struct ucred c;
	memset(&c, 0x55, sizeof c);
	socklen_t l = sizeof c;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &l) != 0) {
		printf("%s: -1 errno=%s\n", label, errname(errno));
		return;
	}
	if (c.pid == 0)
		printf("%s: none: pid=0 uid=%d gid=%d len=%u\n", label, (int)c.uid, (int)c.gid, (unsigned)l);
	else
		printf("%s: pid matches getpid: %s, uid matches geteuid: %s, gid matches getegid: %s, len=%u\n",
		       label, c.pid == getpid() ? "yes" : "no", c.uid == geteuid() ? "yes" : "no",
		       c.gid == getegid() ? "yes" : "no", (unsigned)l);
}

static void peercred(void)
{
	int sv[2];
	struct sockaddr_un a;
	printf("--- SO_PEERCRED\n");
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	show_peercred("socketpair", sv[0]);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	show_peercred("unconnected", l);
	memset(&a, 0, sizeof a);
	a.sun_family = AF_UNIX;
	strcpy(a.sun_path, "pc.sock");
	bind(l, (struct sockaddr *)&a, sizeof a);
	listen(l, 4);
	show_peercred("listener", l);
	int c = socket(AF_UNIX, SOCK_STREAM, 0);
	connect(c, (struct sockaddr *)&a, sizeof a);
	show_peercred("client", c);
	int s = accept(l, NULL, NULL);
	show_peercred("accepted", s);
	int d = socket(AF_UNIX, SOCK_DGRAM, 0), e = socket(AF_UNIX, SOCK_DGRAM, 0);
	struct sockaddr_un b;
	memset(&b, 0, sizeof b);
	b.sun_family = AF_UNIX;
	strcpy(b.sun_path, "pcd.sock");
	bind(e, (struct sockaddr *)&b, sizeof b);
	connect(d, (struct sockaddr *)&b, sizeof b);
	show_peercred("connected datagram socket", d);
	{
		struct ucred uc;
		socklen_t len = 4;
		NUMCALL("SO_PEERCRED into 4 bytes", getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &uc, &len));
		printf("  len=%u\n", (unsigned)len);
	}
	close(sv[0]);
	close(sv[1]);
	close(l);
	close(c);
	close(s);
	close(d);
	close(e);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	fs_enter();
	pass_pipe(SOCK_STREAM);
	pass_pipe(SOCK_DGRAM);
	pass_pipe(SOCK_SEQPACKET);
	shared_offset();
	several();
	stream_boundaries();
	rights_errors();
	credentials();
	peercred();
	fs_leave();
	return 0;
}
