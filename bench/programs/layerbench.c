/* The original Container FS's three file benchmarks, written anew: a tree of LAYERS x FILES
 * files in one directory, ROOT/data/f<layer>_<i>, where the files of layer K come from the
 * K-th layer of a layer stack (0 the deepest), so a lookup of a deep layer's file misses in
 * every layer above it on a stack that probes layer by layer (overlayfs).
 *
 * usage: layerbench open|read|stat ROOT LAYERS FILES [ONLY]
 *   open: open(O_RDONLY) + close of every file, layer by layer, once (a cold run: the
 *         process and, natively, the mount are new);
 *   read: per layer, the first 1000 files opened first, then one read(4000) of each
 *         (the files are ~1.5 KB, so each read returns the whole file), times the reads;
 *   stat: stat of every file, layer by layer, once.
 * prints one line per layer, deepest first: "layer K US BYTES", US the microseconds the
 * layer's operations took, BYTES the bytes read (read) or the sum of st_size (stat), 0 for
 * open; a failure prints "FAIL ..." and exits 1. With ONLY, only layer ONLY runs. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

int main(int argc, char **argv) {
    if (argc != 5 && argc != 6) {
        fprintf(stderr, "usage: layerbench open|read|stat ROOT LAYERS FILES [ONLY]\n");
        return 2;
    }
    const char *mode = argv[1], *root = argv[2];
    int layers = atoi(argv[3]), files = atoi(argv[4]);
    int reads = files < 1000 ? files : 1000;
    char path[4096];
    static char buf[4000];
    static int fds[1000];
    int only = argc == 6 ? atoi(argv[5]) : -1;
    for (int k = 0; k < layers; k++) {
        if (only >= 0 && k != only)
            continue;
        double us = 0;
        long long bytes = 0;
        if (!strcmp(mode, "open")) {
            double t = now_us();
            for (int i = 0; i < files; i++) {
                snprintf(path, sizeof path, "%s/data/f%d_%d", root, k, i);
                int fd = open(path, O_RDONLY);
                if (fd < 0) {
                    printf("FAIL open %s: %m\n", path);
                    return 1;
                }
                close(fd);
            }
            us = now_us() - t;
        } else if (!strcmp(mode, "read")) {
            for (int i = 0; i < reads; i++) {
                snprintf(path, sizeof path, "%s/data/f%d_%d", root, k, i);
                fds[i] = open(path, O_RDONLY);
                if (fds[i] < 0) {
                    printf("FAIL open %s: %m\n", path);
                    return 1;
                }
            }
            double t = now_us();
            for (int i = 0; i < reads; i++) {
                ssize_t n = read(fds[i], buf, sizeof buf);
                if (n <= 0) {
                    printf("FAIL read f%d_%d: %zd %m\n", k, i, n);
                    return 1;
                }
                bytes += n;
            }
            us = now_us() - t;
            for (int i = 0; i < reads; i++)
                close(fds[i]);
        } else if (!strcmp(mode, "stat")) {
            struct stat st;
            double t = now_us();
            for (int i = 0; i < files; i++) {
                snprintf(path, sizeof path, "%s/data/f%d_%d", root, k, i);
                if (stat(path, &st) != 0) {
                    printf("FAIL stat %s: %m\n", path);
                    return 1;
                }
                bytes += st.st_size;
            }
            us = now_us() - t;
        } else {
            fprintf(stderr, "layerbench: unknown mode %s\n", mode);
            return 2;
        }
        printf("layer %d %.1f %lld\n", k, us, bytes);
    }
    return 0;
}
