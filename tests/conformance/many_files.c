/* many_files DIR COUNT: stats (lstat and stat), opens, reads one byte of and closes each of
 * DIR/f00000 .. DIR/f<COUNT-1>, then stats the first one again and checks its st_dev and
 * st_ino did not change. Prints a summary line (counts, first failure), then "waiting", and
 * reads its stdin to the end before saying "bye": a test can look at the sandbox's host
 * descriptors meanwhile. Used by tests/tests/hostfs_fds.rs: each file looked up must not
 * cost the sandbox a host descriptor kept forever. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: many_files DIR COUNT\n");
        return 2;
    }
    const char *dir = argv[1];
    long count = strtol(argv[2], NULL, 10);
    char path[4096];
    long ok = 0, failed = 0;
    int first_errno = 0;
    long first_index = -1;
    const char *first_op = "";
    struct stat first;
    memset(&first, 0, sizeof first);
    for (long i = 0; i < count; i++) {
        snprintf(path, sizeof path, "%s/f%05ld", dir, i);
        struct stat st, st2;
        const char *op = "lstat";
        if (lstat(path, &st) != 0)
            goto fail;
        op = "stat";
        if (stat(path, &st2) != 0)
            goto fail;
        op = "open";
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            goto fail;
        char c;
        op = "read";
        ssize_t n = read(fd, &c, 1);
        close(fd);
        if (n != 1)
            goto fail;
        if (i == 0)
            first = st;
        if (st.st_ino != st2.st_ino || c != 'x')
            goto mismatch;
        ok++;
        continue;
    mismatch:
        errno = 0;
    fail:
        if (failed++ == 0) {
            first_errno = errno;
            first_index = i;
            first_op = op;
        }
    }
    printf("%ld ok, %ld failed", ok, failed);
    if (failed)
        printf(" (first: %s f%05ld: %s)", first_op, first_index, strerror(first_errno));
    printf("\n");
    struct stat again;
    snprintf(path, sizeof path, "%s/f%05d", dir, 0);
    if (lstat(path, &again) != 0)
        printf("f00000 again: %s\n", strerror(errno));
    else
        printf("f00000 identity %s\n",
               again.st_dev == first.st_dev && again.st_ino == first.st_ino ? "stable"
                                                                              : "changed");
    printf("waiting\n");
    fflush(stdout);
    char buf[256];
    while (read(0, buf, sizeof buf) > 0) {
    }
    printf("bye\n");
    return 0;
}
