/* What a container's process sees: run by `runsc do --image` (tests/tests/image_run.rs).
 * Prints its arguments, some environment, directory, credentials and the files and mounts
 * a container gets. Deterministic: no addresses, pids or times. */
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

static void first_line(const char *path) {
    char buf[256] = {0};
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("%s: missing\n", path);
        return;
    }
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n < 0) n = 0;
    buf[n] = 0;
    char *nl = strchr(buf, '\n');
    if (nl) *nl = 0;
    printf("%s: %s\n", path, buf);
}

static void kind(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) {
        printf("%s: absent\n", path);
        return;
    }
    printf("%s: %s %o\n", path,
           S_ISDIR(st.st_mode) ? "dir" : S_ISCHR(st.st_mode) ? "chr" : S_ISREG(st.st_mode) ? "file" : "other",
           (unsigned)(st.st_mode & 07777));
}

int main(int argc, char **argv) {
    for (int i = 0; i < argc; i++) printf("argv[%d]=%s\n", i, argv[i]);
    const char *vars[] = {"PATH", "HOME", "A", "B"};
    for (unsigned i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *v = getenv(vars[i]);
        printf("%s=%s\n", vars[i], v ? v : "(unset)");
    }
    struct utsname u;
    uname(&u);
    const char *h = getenv("HOSTNAME");
    printf("HOSTNAME is the node name: %s\n", h && strcmp(h, u.nodename) == 0 ? "yes" : "no");
    /* Docker's host name: the container ID's first 12 hex digits, not the host's name. */
    int hex = strlen(u.nodename) == 12;
    for (int i = 0; u.nodename[i]; i++)
        hex = hex && strchr("0123456789abcdef", u.nodename[i]) != NULL;
    printf("node name is 12 hex digits: %s\n", hex ? "yes" : "no");
    {
        char k[256] = {0};
        int kfd = open("/proc/sys/kernel/hostname", O_RDONLY);
        ssize_t kr = kfd >= 0 ? read(kfd, k, sizeof k - 1) : -1;
        if (kr > 0 && k[kr - 1] == '\n') k[kr - 1] = 0;
        printf("/proc/sys/kernel/hostname is the node name: %s\n", strcmp(k, u.nodename) == 0 ? "yes" : "no");
        if (kfd >= 0) close(kfd);
    }
    char cwd[4096];
    printf("cwd=%s\n", getcwd(cwd, sizeof cwd) ? cwd : "(error)");
    printf("uid=%u euid=%u gid=%u egid=%u\n", getuid(), geteuid(), getgid(), getegid());
    gid_t groups[32];
    int n = getgroups(32, groups);
    printf("groups:");
    for (int i = 0; i < n; i++) printf(" %u", groups[i]);
    printf("\n");

    char host[256] = {0};
    int fd = open("/etc/hostname", O_RDONLY);
    ssize_t r = fd >= 0 ? read(fd, host, sizeof host - 1) : -1;
    if (r > 0 && host[r - 1] == '\n') host[r - 1] = 0;
    printf("/etc/hostname is the node name: %s\n", strcmp(host, u.nodename) == 0 ? "yes" : "no");
    first_line("/etc/hosts");
    fd = open("/etc/resolv.conf", O_RDONLY);
    char rc[4096] = {0};
    r = fd >= 0 ? read(fd, rc, sizeof rc - 1) : -1;
    printf("/etc/resolv.conf has a nameserver: %s\n", r > 0 && strstr(rc, "nameserver ") ? "yes" : "no");
    first_line("/etc/os-release");
    kind("/proc/self");
    kind("/dev/null");
    kind("/dev/shm");
    kind("/dev/pts");
    kind("/tmp");
    kind("/sys/fs/cgroup");
    printf("/sys is read-only: %s\n", mkdir("/sys/x", 0755) != 0 ? "yes" : "no");
    fd = open("/tmp/probe.out", O_CREAT | O_WRONLY, 0644);
    printf("/tmp is writable: %s\n", fd >= 0 && write(fd, "x", 1) == 1 ? "yes" : "no");
    fd = open("/etc/os-release", O_WRONLY | O_APPEND);
    printf("/etc/os-release opens for writing: %s\n", fd >= 0 ? "yes" : "no");
    return 3;
}
