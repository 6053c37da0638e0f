/* One ICMP echo over an ICMP datagram socket (no raw socket, no capability): what ping
 * does where the network namespace's ping_group_range admits the caller's group. Prints
 * "reply from ADDR" or the failing call and its errno. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: dgram_ping IPV4\n");
		return 2;
	}
	struct sockaddr_in to = { .sin_family = AF_INET };
	if (inet_pton(AF_INET, argv[1], &to.sin_addr) != 1) {
		fprintf(stderr, "not an address: %s\n", argv[1]);
		return 2;
	}
	int s = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
	if (s < 0) {
		printf("socket: %s\n", strerror(errno));
		return 1;
	}
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	struct icmphdr echo = { .type = ICMP_ECHO, .un.echo.sequence = htons(1) };
	if (sendto(s, &echo, sizeof echo, 0, (struct sockaddr *)&to, sizeof to) < 0) {
		printf("sendto: %s\n", strerror(errno));
		return 1;
	}
	char buf[256];
	struct sockaddr_in from;
	socklen_t len = sizeof from;
	ssize_t n = recvfrom(s, buf, sizeof buf, 0, (struct sockaddr *)&from, &len);
	if (n < (ssize_t)sizeof(struct icmphdr)) {
		printf("recvfrom: %s\n", n < 0 ? strerror(errno) : "short reply");
		return 1;
	}
	struct icmphdr *reply = (struct icmphdr *)buf;
	if (reply->type != ICMP_ECHOREPLY) {
		printf("not an echo reply: type %d\n", reply->type);
		return 1;
	}
	printf("reply from %s\n", inet_ntoa(from.sin_addr));
	return 0;
}
