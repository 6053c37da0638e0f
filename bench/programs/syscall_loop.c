/* Calls a system call in a loop and prints the mean cost per call in nanoseconds.
 * usage: syscall_loop getpid|nosys|getpid-seccomp ITERATIONS
 * "nosys" uses a number no kernel implements, so it measures the bare round trip;
 * "getpid-seccomp" installs a small seccomp filter first (an arch check and an
 * allowlist of 8 calls, as a sandboxing program's would be), so every getpid runs it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <stddef.h>
#include <stdint.h>

/* The seccomp ABI (musl has no kernel headers). */
struct sock_filter { uint16_t code; uint8_t jt, jf; uint32_t k; };
struct sock_fprog { unsigned short len; struct sock_filter *filter; };
#define LD_ABS 0x20
#define JEQ_K 0x15
#define RET_K 0x06
#define ALLOW 0x7fff0000U
#define ERRNO_EPERM 0x00050001U

static int install_filter(void) {
    static const long allowed[] = { SYS_read, SYS_write, SYS_exit, SYS_exit_group,
                                    SYS_clock_gettime, SYS_brk, SYS_mmap, SYS_getpid };
    struct sock_filter f[4 + 8 + 2];
    int n = 0;
    f[n++] = (struct sock_filter){ LD_ABS, 0, 0, 4 };             /* arch */
    f[n++] = (struct sock_filter){ JEQ_K, 1, 0, 0xc000003eU };
    f[n++] = (struct sock_filter){ RET_K, 0, 0, 0x80000000U };     /* KILL_PROCESS */
    f[n++] = (struct sock_filter){ LD_ABS, 0, 0, 0 };             /* nr */
    for (int i = 0; i < 8; i++)
        f[n++] = (struct sock_filter){ JEQ_K, (uint8_t)(8 - i), 0, (uint32_t)allowed[i] };
    f[n++] = (struct sock_filter){ RET_K, 0, 0, ERRNO_EPERM };
    f[n++] = (struct sock_filter){ RET_K, 0, 0, ALLOW };
    struct sock_fprog prog = { (unsigned short)n, f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
    return (int)syscall(SYS_seccomp, 1, 0, &prog);
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s getpid|nosys|getpid-seccomp ITERATIONS\n", argv[0]);
        return 2;
    }
    if (strcmp(argv[1], "getpid-seccomp") == 0 && install_filter() != 0) {
        perror("seccomp");
        return 1;
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
