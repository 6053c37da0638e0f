/* Calls a system call in a loop and prints the mean cost per call in nanoseconds.
 * usage: syscall_loop getpid|nosys ITERATIONS
 * "nosys" uses a number no kernel implements, so it measures the bare round trip. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s getpid|nosys ITERATIONS\n", argv[0]);
        return 2;
    }
    long nr = strcmp(argv[1], "nosys") == 0 ? 1000 : SYS_getpid;
    long n = atol(argv[2]);
    /* Warm up: the first calls wake the sentry's poller. */
    for (int i = 0; i < 100; i++) syscall(nr);
    double start = now_ns();
    for (long i = 0; i < n; i++) syscall(nr);
    double end = now_ns();
    printf("%.1f\n", (end - start) / n);
    return 0;
}
