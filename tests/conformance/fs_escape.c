/* Escapes: symlinks and ".." from inside /tmp/fsconf-XXXXXX that point at
 * the host root must resolve exactly as natively (in the sandbox the host
 * root is "/", read-only) and never beyond "/". Host files are only read,
 * and only checksums and sizes are printed. Nothing is written outside the
 * tmp dir. */
#define CONF_FS
#include "conf.h"

#define SYS_OPENAT2 437
#define C_RESOLVE_BENEATH 0x08
#define C_RESOLVE_IN_ROOT 0x10

struct c_open_how {
	uint64_t flags, mode, resolve;
};

static void sum_fd(const char *label, int fd)
{
	static char buf[1 << 16];
	uint64_t h = 0;
	long total = 0;
	ssize_t n;
	while ((n = read(fd, buf, sizeof buf)) > 0) {
		h = fnv1a(buf, n, h);
		total += n;
	}
	if (n < 0)
		printf("%s: read -1 errno=%s\n", label, errname(errno));
	else
		printf("%s: %ld bytes fnv=%016llx\n", label, total, (unsigned long long)h);
}

static void sum_path(const char *label, int dfd, const char *path)
{
	int fd = openat(dfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		printf("%s: -1 errno=%s\n", label, errname(errno));
		return;
	}
	sum_fd(label, fd);
	close(fd);
}

static void same_file(const char *label, const char *a, const char *b)
{
	struct stat sa, sb;
	if (stat(a, &sa) != 0 || stat(b, &sb) != 0) {
		printf("%s: -1 errno=%s\n", label, errname(errno));
		return;
	}
	printf("%s: %s\n", label, sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev ? "yes" : "no");
}

/* Sorted listing of a (host) directory, as a count and a checksum. */
static void list_sum(const char *label, const char *path)
{
	DIR *d = opendir(path);
	if (!d) {
		printf("%s: -1 errno=%s\n", label, errname(errno));
		return;
	}
	static char names[4096][256];
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL && n < 4096)
		snprintf(names[n++], 256, "%s", e->d_name);
	closedir(d);
	qsort(names, n, sizeof names[0], (int (*)(const void *, const void *))strcmp);
	uint64_t h = 0;
	for (int i = 0; i < n; i++)
		h = fnv1a(names[i], strlen(names[i]) + 1, h);
	printf("%s: %d entries fnv=%016llx\n", label, n, (unsigned long long)h);
}

static void try_openat2(const char *label, int dfd, const char *path, uint64_t resolve)
{
	struct c_open_how how = { O_RDONLY | O_CLOEXEC, 0, resolve };
	/* Linux fails a RESOLVE_IN_ROOT/BENEATH walk through ".." with EAGAIN when any rename
	 * or mount happened meanwhile anywhere on the host (other tests running), and asks the
	 * caller to retry: the answer is what comes after. */
	int fd, tries = 0;
	do
		fd = (int)syscall(SYS_OPENAT2, dfd, path, &how, sizeof how);
	while (fd < 0 && errno == EAGAIN && ++tries < 1000);
	if (fd < 0) {
		printf("%s: -1 errno=%s\n", label, errname(errno));
		return;
	}
	sum_fd(label, fd);
	close(fd);
}

int main(void)
{
	umask(022);
	fs_enter();
	int top = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	symlink("/etc/hostname", "hn");
	symlink("../../../../../../etc", "etc");
	symlink("/", "root");
	symlink("../../../../../../../../../../../../..", "up");
	symlink("/../../../..", "absup");
	symlink(conf_tmpdir, "self");
	symlink("root/etc/hostname", "chain");

	sum_path("/etc/hostname", AT_FDCWD, "/etc/hostname");
	sum_path("hn -> /etc/hostname", AT_FDCWD, "hn");
	sum_path("etc/hostname (etc -> ../../../../../../etc)", AT_FDCWD, "etc/hostname");
	sum_path("root/etc/hostname (root -> /)", AT_FDCWD, "root/etc/hostname");
	sum_path("up/etc/hostname (up -> ../ x13)", AT_FDCWD, "up/etc/hostname");
	sum_path("absup/etc/hostname (absup -> /../../../..)", AT_FDCWD, "absup/etc/hostname");
	sum_path("chain (-> root/etc/hostname)", AT_FDCWD, "chain");
	sum_path("root/../../../etc/hostname", AT_FDCWD, "root/../../../etc/hostname");
	sum_path("/../../../etc/hostname", AT_FDCWD, "/../../../etc/hostname");
	sum_path("../../../../../../../etc/hostname", AT_FDCWD, "../../../../../../../etc/hostname");
	sum_path("etc/../etc/./hostname", AT_FDCWD, "etc/../etc/./hostname");
	sum_path("openat(top, ../../../../etc/hostname)", top, "../../../../etc/hostname");
	sum_path("/etc/passwd", AT_FDCWD, "/etc/passwd");
	sum_path("root/etc/passwd", AT_FDCWD, "root/etc/passwd");
	sum_path("root/bin/sh (host symlinks inside)", AT_FDCWD, "root/bin/sh");
	sum_path("/bin/sh", AT_FDCWD, "/bin/sh");
	same_file("hn is /etc/hostname", "hn", "/etc/hostname");
	same_file("up/etc/hostname is /etc/hostname", "up/etc/hostname", "/etc/hostname");
	same_file("root is /", "root", "/");
	same_file("up is /", "up", "/");
	same_file("/.. is /", "/..", "/");
	same_file("/tmp/.. is /", "/tmp/..", "/");
	same_file("self is .", "self", ".");
	fs_show("lstat hn", "hn", 0);
	fs_show("stat hn", "hn", 1);
	fs_show("stat etc/", "etc/", 1);
	list_sum("listing of root/ (the host root)", "root/");
	list_sum("listing of up/", "up/");
	list_sum("listing of /", "/");
	list_sum("listing of etc/", "etc/");
	list_sum("listing of /etc", "/etc");
	list_sum("listing of root/..", "root/..");

	/* The working directory cannot climb above "/". */
	for (int i = 0; i < 50; i++)
		if (chdir("..") != 0) {
			printf("chdir .. #%d: -1 errno=%s\n", i, errname(errno));
			break;
		}
	fs_cwd("getcwd after 50 x chdir ..");
	same_file(". is / after climbing", ".", "/");
	ERRCALL("fchdir back", fchdir(top));
	ERRCALL("chdir up", chdir("up"));
	fs_cwd("getcwd after chdir up");
	ERRCALL("fchdir back", fchdir(top));
	ERRCALL("chdir etc", chdir("etc"));
	fs_cwd("getcwd after chdir etc");
	ERRCALL("chdir ../../../../..", chdir("../../../../.."));
	fs_cwd("getcwd");
	ERRCALL("fchdir back", fchdir(top));
	fs_cwd("getcwd");

	/* Confined resolution: never reaches the host. In the tmp dir itself,
	 * "etc" (-> ../../../../../../etc) points back at the root: a loop. */
	try_openat2("IN_ROOT /etc/hostname from tmp (etc loops)", top, "/etc/hostname",
		    C_RESOLVE_IN_ROOT);
	mkdir("jail", 0755);
	fs_put("jail/inside", "jail-file");
	symlink("/etc/hostname", "jail/hn");
	symlink("../../../../../../etc", "jail/hostetc");
	symlink("/", "jail/root");
	symlink("../../../../../../../../inside", "jail/upinside");
	int jail = open("jail", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	try_openat2("IN_ROOT ../../etc/hostname", jail, "../../etc/hostname", C_RESOLVE_IN_ROOT);
	try_openat2("IN_ROOT /etc/hostname", jail, "/etc/hostname", C_RESOLVE_IN_ROOT);
	try_openat2("IN_ROOT hn (-> /etc/hostname)", jail, "hn", C_RESOLVE_IN_ROOT);
	try_openat2("IN_ROOT hostetc/hostname (-> ../../etc)", jail, "hostetc/hostname", C_RESOLVE_IN_ROOT);
	try_openat2("IN_ROOT root/etc/hostname (-> /)", jail, "root/etc/hostname", C_RESOLVE_IN_ROOT);
	try_openat2("IN_ROOT root/inside", jail, "root/inside", C_RESOLVE_IN_ROOT);
	try_openat2("IN_ROOT upinside (-> ../ x8 inside)", jail, "upinside", C_RESOLVE_IN_ROOT);
	try_openat2("IN_ROOT /../inside", jail, "/../inside", C_RESOLVE_IN_ROOT);
	try_openat2("BENEATH hn", jail, "hn", C_RESOLVE_BENEATH);
	try_openat2("BENEATH hostetc/hostname", jail, "hostetc/hostname", C_RESOLVE_BENEATH);
	try_openat2("BENEATH ../../etc/hostname", jail, "../../etc/hostname", C_RESOLVE_BENEATH);
	try_openat2("BENEATH root/inside", jail, "root/inside", C_RESOLVE_BENEATH);
	try_openat2("BENEATH inside", jail, "inside", C_RESOLVE_BENEATH);
	try_openat2("no resolve flags hostetc/hostname", jail, "hostetc/hostname", 0);
	try_openat2("no resolve flags hn", jail, "hn", 0);
	close(jail);

	/* Writing through symlinks that go up and come back stays inside. */
	fs_put("self/w1", "through-self");
	fs_cat("w1", "w1");
	char p[128];
	snprintf(p, sizeof p, "root%s/w2", conf_tmpdir);
	fs_put(p, "through-root");
	fs_cat("w2", "w2");
	snprintf(p, sizeof p, "up%s/w3", conf_tmpdir);
	fs_put(p, "through-up");
	fs_cat("w3", "w3");
	fs_ls("tmp dir listing", ".");

	close(top);
	fs_leave();
	return 0;
}
