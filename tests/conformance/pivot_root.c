/* pivot_root inside a mount namespace of the program's own (issue 15 item 5): Linux's
 * errors, the swap itself (the old root under put_old, the caller moved to the new root),
 * then the old root detached, leaving a tree of two mounts. It runs only in the sandbox
 * (tests/tests/conformance.rs compares it with pivot_root.expected, recorded from a native
 * run in a private namespace made by the program itself, like `unshare -m`). */
#include "conf.h"
#include <dirent.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>

struct cap_header {
	uint32_t version;
	int pid;
};
struct cap_data {
	uint32_t effective, permitted, inheritable;
};

static long pivot(const char *new_root, const char *put_old)
{
	return syscall(SYS_pivot_root, new_root, put_old);
}

#define P(what, expr)                                                                       \
	do {                                                                                \
		errno = 0;                                                                  \
		long r_ = (long)(expr);                                                     \
		printf("%s: %s\n", what, r_ < 0 ? errname(errno) : "0");                   \
	} while (0)

static char base[64], other[64];

static void mounts(void)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[1024];
	while (f && fgets(line, sizeof line, f)) {
		char point[256], type[64];
		char *dash = strstr(line, " - ");
		if (!dash || sscanf(line, "%*d %*d %*s %*s %255s", point) != 1 || sscanf(dash + 3, "%63s", type) != 1)
			continue;
		printf("  mount %s %s\n", point, type);
	}
	if (f)
		fclose(f);
}

static int entries(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 2;
}

static int child(void)
{
	if (unshare(CLONE_NEWNS) || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
		printf("no private namespace: %s\n", errname(errno));
		return 2;
	}
	char path[128];
	P("mount the new root", mount("tmpfs", base, "tmpfs", 0, "mode=755"));
	P("mount another", mount("tmpfs", other, "tmpfs", 0, NULL));
	snprintf(path, sizeof path, "%s/old", base);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/proc", base);
	mkdir(path, 0755);
	snprintf(path, sizeof path, "%s/marker", base);
	close(open(path, O_CREAT | O_WRONLY, 0644));

	P("pivot_root / /", pivot("/", "/"));
	snprintf(path, sizeof path, "%s/old", base);
	P("pivot_root onto a non-mount", pivot(path, base));
	P("pivot_root put_old outside new_root", pivot(base, other));
	P("pivot_root missing", pivot("/no/such/dir", base));
	snprintf(path, sizeof path, "%s/marker", base);
	P("pivot_root a file", pivot(path, base));

	fflush(stdout);
	pid_t p = fork();
	if (p == 0) {
		struct cap_header h = {0x20080522, 0};
		struct cap_data d[2] = {{0}};
		syscall(SYS_capget, &h, d);
		d[0].effective &= ~(1u << 21);
		syscall(SYS_capset, &h, d);
		chdir(base);
		P("pivot_root without CAP_SYS_ADMIN", pivot(".", "old"));
		_exit(0);
	}
	waitpid(p, NULL, 0);

	if (chdir(base))
		return 3;
	P("pivot_root . old", pivot(".", "old"));
	char cwd[256];
	printf("cwd after: %s\n", getcwd(cwd, sizeof cwd) ? cwd : errname(errno));
	P("chdir /", chdir("/"));
	printf("/marker %d, /old/tmp %d\n", access("/marker", F_OK) == 0, access("/old/tmp", F_OK) == 0);
	P("mount proc", mount("proc", "/proc", "proc", 0, NULL));
	P("umount the old root (it has mounts)", umount2("/old", 0));
	P("detach the old root", umount2("/old", MNT_DETACH));
	printf("/old entries %d\n", entries("/old"));
	mounts();
	P("pivot_root back onto itself", pivot(".", "."));
	mounts();
	return 0;
}

int main(void)
{
	strcpy(base, "/tmp/pivconf-XXXXXX");
	strcpy(other, "/tmp/pivconf-XXXXXX");
	if (!mkdtemp(base) || !mkdtemp(other))
		return 1;
	fflush(stdout);
	pid_t p = fork();
	if (p == 0)
		_exit(child());
	int st = 0;
	waitpid(p, &st, 0);
	printf("child: %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	printf("cleaned %d\n", rmdir(base) == 0 && rmdir(other) == 0);
	return 0;
}
