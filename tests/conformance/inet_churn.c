/* Connection churn for tests/tests/network.rs: a loopback listener, then for each line N
 * read from stdin, N rounds of socket + connect + accept + close (the accepted end first,
 * so TIME_WAIT stays on the listening port), and "done". Exits at the end of its input. */
#include "conf.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

int main(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, len) < 0 || listen(l, 64) < 0 ||
	    getsockname(l, (struct sockaddr *)&a, &len) < 0) {
		printf("listener: errno=%s\n", errname(errno));
		return 1;
	}
	char line[64];
	while (fgets(line, sizeof line, stdin)) {
		long n = atol(line);
		for (long i = 0; i < n; i++) {
			int c = socket(AF_INET, SOCK_STREAM, 0);
			if (c < 0 || connect(c, (struct sockaddr *)&a, len) < 0) {
				printf("connect %ld: errno=%s\n", i, errname(errno));
				return 1;
			}
			int s = accept(l, NULL, NULL);
			if (s < 0) {
				printf("accept %ld: errno=%s\n", i, errname(errno));
				return 1;
			}
			close(s);
			close(c);
		}
		printf("done\n");
	}
	return 0;
}
