/* File system costs over a tree: stat of every file, and whole reads of 500 files picked at
 * random among its regular files (a fixed seed over the sorted relative paths, so every run
 * on the same tree picks the same files wherever the tree is mounted).
 * usage: fsbench DIR
 * prints: "files N", "regular R", "stat_total_us T", "read_total_us T", "read_bytes B",
 * "map_total_us T" (the same 500 files mapped MAP_PRIVATE and every page touched).
 * Each measurement is the second of two passes (the first warms the caches). */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char **paths;  /* absolute, for stat */
static char **rels;   /* relative, for sorting */
static int *is_reg;
static size_t n, cap;

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void add(const char *path, const char *rel) {
    struct stat st;
    if (lstat(path, &st) != 0) {
        perror(path);
        exit(1);
    }
    if (n == cap) {
        cap = cap * 2 + 1024;
        paths = realloc(paths, cap * sizeof *paths);
        rels = realloc(rels, cap * sizeof *rels);
        is_reg = realloc(is_reg, cap * sizeof *is_reg);
    }
    paths[n] = strdup(path);
    rels[n] = strdup(rel);
    is_reg[n] = S_ISREG(st.st_mode);
    n++;
    if (!S_ISDIR(st.st_mode))
        return;
    DIR *d = opendir(path);
    if (!d) {
        perror(path);
        exit(1);
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char *cp, *cr;
        if (asprintf(&cp, "%s/%s", path, e->d_name) < 0 ||
            asprintf(&cr, "%s/%s", rel, e->d_name) < 0)
            exit(1);
        add(cp, cr);
        free(cp);
        free(cr);
    }
    closedir(d);
}

static int cmp(const void *a, const void *b) {
    return strcmp(rels[*(const size_t *)a], rels[*(const size_t *)b]);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: fsbench DIR\n");
        return 2;
    }
    add(argv[1], ".");

    double stat_us = 0;
    for (int pass = 0; pass < 2; pass++) {
        double t = now_us();
        struct stat st;
        for (size_t i = 0; i < n; i++)
            if (lstat(paths[i], &st) != 0) {
                perror(paths[i]);
                return 1;
            }
        stat_us = now_us() - t;
    }

    size_t *reg = malloc(n * sizeof *reg), nreg = 0;
    for (size_t i = 0; i < n; i++)
        if (is_reg[i])
            reg[nreg++] = i;
    qsort(reg, nreg, sizeof *reg, cmp);
    if (nreg == 0) {
        fprintf(stderr, "fsbench: no regular files\n");
        return 1;
    }
    size_t picks[500];
    uint64_t seed = 0x2545f4914f6cdd1dULL;
    for (int i = 0; i < 500; i++) {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        picks[i] = reg[seed % nreg];
    }
    static char buf[1 << 16];
    double read_us = 0;
    long long bytes = 0;
    for (int pass = 0; pass < 2; pass++) {
        bytes = 0;
        double t = now_us();
        for (int i = 0; i < 500; i++) {
            int fd = open(paths[picks[i]], O_RDONLY);
            if (fd < 0) {
                perror(paths[picks[i]]);
                return 1;
            }
            ssize_t r;
            while ((r = read(fd, buf, sizeof buf)) > 0)
                bytes += r;
            close(fd);
        }
        read_us = now_us() - t;
    }
    double map_us = 0;
    unsigned long touched = 0;
    for (int pass = 0; pass < 2; pass++) {
        double t = now_us();
        for (int i = 0; i < 500; i++) {
            int fd = open(paths[picks[i]], O_RDONLY);
            struct stat st;
            if (fd < 0 || fstat(fd, &st) != 0) {
                perror(paths[picks[i]]);
                return 1;
            }
            if (st.st_size > 0) {
                volatile unsigned char *m =
                    mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
                if (m == MAP_FAILED) {
                    perror(paths[picks[i]]);
                    return 1;
                }
                for (off_t o = 0; o < st.st_size; o += 4096)
                    touched += m[o];
                munmap((void *)m, st.st_size);
            }
            close(fd);
        }
        map_us = now_us() - t;
    }
    printf("files %zu\nregular %zu\nstat_total_us %.0f\nread_total_us %.0f\nread_bytes %lld\n"
           "map_total_us %.0f\ntouched %lu\n",
           n, nreg, stat_us, read_us, bytes, map_us, touched);
    return 0;
}
