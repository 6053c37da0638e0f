/* The network namespace's interfaces as programs see them: getifaddrs(3) and
 * if_nameindex(3) (both NETLINK_ROUTE dumps), a raw RTM_GETLINK/RTM_GETROUTE dump, the
 * SIOCGIF* ioctls (SIOCGIFCONF, FLAGS, ADDR, INDEX, HWADDR, MTU, NETMASK, NAME), and the
 * errors of refused or unknown kinds of socket. Read-only: nothing here changes the host.
 * Runs natively and in the sandbox in the same namespace, so the answers must agree. */
#define CONF_FS
#include "conf.h"
#include "net.h"
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

/* The netlink definitions used here (musl has no linux headers). */
struct nl_hdr {
	uint32_t len;
	uint16_t type, flags;
	uint32_t seq, pid;
};
struct nl_addr {
	unsigned short family, pad;
	uint32_t pid, groups;
};
#define NETLINK_ROUTE 0
#define NL_REQUEST 1
#define NL_DUMP 0x300
#define NL_DONE 3
#define NL_ERROR 2
#define RTM_GETLINK 18
#define RTM_GETADDR 22
#define RTM_GETROUTE 26


static void addr_str(struct sockaddr *sa, char *out, size_t n)
{
	if (!sa) {
		snprintf(out, n, "-");
		return;
	}
	if (sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *)sa)->sin_addr, out, n);
	else if (sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *)sa)->sin6_addr, out, n);
	else
		snprintf(out, n, "family %d", sa->sa_family);
}

static void ifaddrs(void)
{
	struct ifaddrs *list;
	NCALL("getifaddrs", getifaddrs(&list));
	int n = 0;
	for (struct ifaddrs *i = list; i; i = i->ifa_next, n++) {
		char a[64], m[64];
		addr_str(i->ifa_addr, a, sizeof a);
		addr_str(i->ifa_netmask, m, sizeof m);
		printf("ifaddr %s flags %#x addr %s mask %s\n", i->ifa_name, i->ifa_flags, a, m);
	}
	printf("ifaddrs: %d\n", n);
	freeifaddrs(list);
	struct if_nameindex *ni = if_nameindex();
	for (struct if_nameindex *p = ni; p && p->if_index; p++)
		printf("if_nameindex %u %s\n", p->if_index, p->if_name);
	if (ni)
		if_freenameindex(ni);
	printf("if_nametoindex lo: %u\n", if_nametoindex("lo"));
}

/* A raw dump: count the messages of each type until NLMSG_DONE. */
static void dump(int type, int family, const char *label)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	struct {
		struct nl_hdr h;
		unsigned char family;
		unsigned char pad[3];
	} req = { { sizeof req, type, NL_REQUEST | NL_DUMP, 1, 0 }, family, { 0 } };
	struct nl_addr k = { .family = AF_NETLINK };
	NCALL(label, sendto(fd, &req, sizeof req, 0, (struct sockaddr *)&k, sizeof k));
	char buf[32768];
	int msgs = 0, done = 0, seq_ok = 1;
	while (!done) {
		ssize_t n = recv(fd, buf, sizeof buf, 0);
		if (n <= 0)
			break;
		for (ssize_t off = 0; off + (ssize_t)sizeof(struct nl_hdr) <= n;) {
			struct nl_hdr h;
			memcpy(&h, buf + off, sizeof h);
			if (h.len < sizeof h || off + (ssize_t)h.len > n)
				break;
			if (h.seq != 1)
				seq_ok = 0;
			if (h.type == NL_DONE || h.type == NL_ERROR) {
				done = 1;
				break;
			}
			msgs++;
			off += (h.len + 3) & ~3u;
		}
	}
	printf("%s: %d messages, done %d, seq ok %d\n", label, msgs, done, seq_ok);
	struct nl_addr me;
	socklen_t ml = sizeof me;
	CHECK("netlink getsockname", getsockname(fd, (struct sockaddr *)&me, &ml) == 0 &&
					     me.family == AF_NETLINK && ml == sizeof me);
	close(fd);
}

static void ioctls(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct ifconf ifc = { 0 };
	NCALL("SIOCGIFCONF length", ioctl(fd, SIOCGIFCONF, &ifc));
	printf("length is whole ifreqs: %d\n", ifc.ifc_len % (int)sizeof(struct ifreq) == 0);
	char buf[8192];
	ifc.ifc_len = sizeof buf;
	ifc.ifc_buf = buf;
	NCALL("SIOCGIFCONF", ioctl(fd, SIOCGIFCONF, &ifc));
	for (int off = 0; off < ifc.ifc_len; off += sizeof(struct ifreq)) {
		struct ifreq *r = (struct ifreq *)(buf + off);
		char a[64];
		addr_str(&r->ifr_addr, a, sizeof a);
		printf("ifconf %s %s\n", r->ifr_name, a);
	}
	struct ifreq r;
	memset(&r, 0, sizeof r);
	strcpy(r.ifr_name, "lo");
	NCALL("SIOCGIFFLAGS", ioctl(fd, SIOCGIFFLAGS, &r));
	printf("lo flags: %#x\n", (unsigned short)r.ifr_flags);
	NCALL("SIOCGIFMTU", ioctl(fd, SIOCGIFMTU, &r));
	printf("lo mtu: %d\n", r.ifr_mtu);
	NCALL("SIOCGIFINDEX", ioctl(fd, SIOCGIFINDEX, &r));
	int idx = r.ifr_ifindex;
	printf("lo index: %d\n", idx);
	NCALL("SIOCGIFADDR", ioctl(fd, SIOCGIFADDR, &r));
	char a[64];
	addr_str(&r.ifr_addr, a, sizeof a);
	printf("lo addr: %s\n", a);
	NCALL("SIOCGIFNETMASK", ioctl(fd, SIOCGIFNETMASK, &r));
	addr_str(&r.ifr_netmask, a, sizeof a);
	printf("lo mask: %s\n", a);
	NCALL("SIOCGIFHWADDR", ioctl(fd, SIOCGIFHWADDR, &r));
	printf("lo hw family: %d\n", r.ifr_hwaddr.sa_family);
	memset(&r, 0, sizeof r);
	r.ifr_ifindex = idx;
	NCALL("SIOCGIFNAME", ioctl(fd, SIOCGIFNAME, &r));
	printf("name of index: %s\n", r.ifr_name);
	memset(&r, 'x', sizeof r); /* no NUL in the name: the kernel terminates it */
	NCALL("SIOCGIFFLAGS unterminated", ioctl(fd, SIOCGIFFLAGS, &r));
	memset(&r, 0, sizeof r);
	strcpy(r.ifr_name, "nosuchif0");
	NCALL("SIOCGIFFLAGS missing", ioctl(fd, SIOCGIFFLAGS, &r));
	NCALL("SIOCGIFFLAGS wild", ioctl(fd, SIOCGIFFLAGS, (void *)16));
	NCALL("unknown ioctl", ioctl(fd, 0x5499, &r));
	close(fd);
}

int main(void)
{
	ifaddrs();
	dump(RTM_GETLINK, AF_UNSPEC, "RTM_GETLINK");
	dump(RTM_GETADDR, AF_UNSPEC, "RTM_GETADDR");
	dump(RTM_GETROUTE, AF_INET, "RTM_GETROUTE");
	ioctls();
	NCALL("netlink other protocol", socket(AF_NETLINK, SOCK_RAW, 31));
	NCALL("netlink stream", socket(AF_NETLINK, SOCK_STREAM, NETLINK_ROUTE));
	NCALL("inet seqpacket udp", socket(AF_INET, SOCK_SEQPACKET, IPPROTO_UDP));
	return 0;
}
