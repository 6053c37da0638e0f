/* /proc/net/unix describes the sandbox's own AF_UNIX sockets as Linux does: for each socket
 * made here, found by its inode, the flags (listening), type, state and bound name. The
 * address column and reference counts are the kernel's business and are not compared.
 * Names carry the pid (glibc and musl runs go at once) and print it as PID. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stddef.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

static char pidtext[32];

static unsigned long ino_of(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 ? (unsigned long)st.st_ino : 0;
}

/* Prints what /proc/net/unix says of inode `ino` (or of every inode-0 line naming `path`,
 * the connections nobody accepted yet), with the pid replaced. */
static void show(const char *what, unsigned long ino, const char *path)
{
	FILE *f = fopen("/proc/net/unix", "r");
	if (!f) {
		printf("%s: no /proc/net/unix\n", what);
		return;
	}
	char line[512];
	int found = 0;
	if (!fgets(line, sizeof line, f) || strncmp(line, "Num       RefCount Protocol Flags    Type St Inode Path", 55) != 0)
		printf("header: %s", line);
	while (fgets(line, sizeof line, f)) {
		char num[40], name[256] = "";
		unsigned refs, proto, flags, type, st;
		unsigned long inode;
		int n = sscanf(line, "%39s %x %x %x %x %x %lu %255[^\n]", num, &refs, &proto, &flags, &type, &st, &inode, name);
		if (n < 7)
			continue;
		if (inode != ino || (path && !strstr(name, path)))
			continue;
		char shown[256];
		char *p = strstr(name, pidtext);
		if (p)
			snprintf(shown, sizeof shown, "%.*sPID%s", (int)(p - name), name, p + strlen(pidtext));
		else
			snprintf(shown, sizeof shown, "%s", name);
		printf("%s: proto %u flags %08X type %04X st %02X path [%s]\n", what, proto, flags, type, st, shown);
		found++;
	}
	if (!found)
		printf("%s: not listed\n", what);
	fclose(f);
}

int main(void)
{
	snprintf(pidtext, sizeof pidtext, "%d", (int)getpid());
	if (chdir("/tmp") != 0)
		return 1;
	char rel[64];
	snprintf(rel, sizeof rel, "runsc-unix-proc-%s.sock", pidtext);
	unlink(rel);

	int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	strcpy(a.sun_path, rel);
	if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 4) != 0)
		return 2;
	show("listener", ino_of(lfd), NULL);

	int c1 = socket(AF_UNIX, SOCK_STREAM, 0);
	connect(c1, (struct sockaddr *)&a, sizeof a);
	int c2 = socket(AF_UNIX, SOCK_STREAM, 0);
	connect(c2, (struct sockaddr *)&a, sizeof a);
	int acc = accept(lfd, NULL, NULL);
	show("client", ino_of(c1), NULL);
	show("accepted", ino_of(acc), NULL);
	show("not accepted yet", 0, rel);

	/* An abstract datagram name with a NUL inside. */
	int d = socket(AF_UNIX, SOCK_DGRAM, 0);
	struct sockaddr_un ab = { .sun_family = AF_UNIX };
	int len = snprintf(ab.sun_path + 1, sizeof ab.sun_path - 2, "runsc-proc-%s", pidtext) + 1;
	ab.sun_path[len] = 0;
	ab.sun_path[len + 1] = 'x';
	len += 2;
	if (bind(d, (struct sockaddr *)&ab, offsetof(struct sockaddr_un, sun_path) + len) != 0)
		return 3;
	show("abstract dgram", ino_of(d), NULL);
	int d2 = socket(AF_UNIX, SOCK_DGRAM, 0);
	connect(d2, (struct sockaddr *)&ab, offsetof(struct sockaddr_un, sun_path) + len);
	show("connected dgram", ino_of(d2), NULL);
	int sp[2];
	socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sp);
	show("seqpacket pair", ino_of(sp[0]), NULL);
	shutdown(acc, SHUT_RDWR);
	close(c1);
	show("peer closed", ino_of(acc), NULL);
	close(acc);
	close(lfd);
	unlink(rel);
	(void)c2;
	return 0;
}
