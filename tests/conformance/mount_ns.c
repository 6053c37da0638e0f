/* mount and umount2 inside a mount namespace of the program's own (issue 15 item 5): the
 * program first does what `unshare -m` does (unshare(CLONE_NEWNS), then / made private
 * recursively) and stops before any mount if either fails, so natively nothing it mounts
 * is ever seen outside it. tmpfs with options and flags (ro, nosuid, nodev, noexec,
 * remount), bind and recursive bind, MS_MOVE, proc, propagation states, mountinfo and
 * mounts, umount2's rules (busy, MNT_DETACH, MNT_EXPIRE), chroot, and the errors. */
#include "conf.h"
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>

static char base[64];

#define P(what, expr)                                                                       \
	do {                                                                                \
		errno = 0;                                                                  \
		long r_ = (long)(expr);                                                     \
		printf("%s: %s\n", what, r_ < 0 ? errname(errno) : "0");                   \
	} while (0)

static char *at(const char *rel)
{
	static char buf[8][256];
	static int i;
	char *b = buf[i++ % 8];
	snprintf(b, 256, "%s/%s", base, rel);
	return b;
}

/* The mountinfo line of the mount at `rel`, without ids and devices: root, mount point
 * (relative), per-mount options, propagation tag, type. */
static void show(const char *rel)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[1024], want[256];
	int found = 0;
	snprintf(want, sizeof want, " %s ", at(rel));
	while (f && fgets(line, sizeof line, f)) {
		char *mp = strstr(line, want);
		if (!mp)
			continue;
		found++;
		char root[256], point[256], opts[256], rest[512];
		if (sscanf(line, "%*d %*d %*s %255s %255s %255s %511[^\n]", root, point, opts, rest) != 4)
			continue;
		char *dash = strstr(line, " - ");
		const char *tag = strstr(line, "shared:") && strstr(line, "shared:") < dash ? "shared"
				  : strstr(line, "master:") && strstr(line, "master:") < dash ? "slave"
				  : strstr(line, "unbindable") && strstr(line, "unbindable") < dash ? "unbindable"
											 : "private";
		char type[64] = "";
		if (dash)
			sscanf(dash + 3, "%63s", type);
		printf("  mountinfo %s: root %s opts %s %s type %s\n", rel, root, opts, tag, type);
	}
	if (!found)
		printf("  mountinfo %s: not mounted\n", rel);
	fclose(f);
	f = fopen("/proc/self/mounts", "r");
	while (f && fgets(line, sizeof line, f)) {
		char src[256], point[256], type[64], opts[256];
		if (sscanf(line, "%255s %255s %63s %255s", src, point, type, opts) == 4 &&
		    strcmp(point, at(rel)) == 0)
			printf("  mounts %s: %s %s %s\n", rel, src, type, opts);
	}
	fclose(f);
}

static int exists(const char *rel)
{
	return access(at(rel), F_OK) == 0;
}

static void vfs_flags(const char *rel)
{
	struct statvfs s;
	if (statvfs(at(rel), &s)) {
		printf("  statvfs %s: %s\n", rel, errname(errno));
		return;
	}
	printf("  statvfs %s: rdonly %d nosuid %d nodev %d noexec %d\n", rel, !!(s.f_flag & ST_RDONLY),
	       !!(s.f_flag & ST_NOSUID), !!(s.f_flag & ST_NODEV), !!(s.f_flag & ST_NOEXEC));
}

static void write_file(const char *rel, const char *text)
{
	int fd = open(at(rel), O_CREAT | O_WRONLY | O_TRUNC, 0755);
	if (fd < 0) {
		printf("  create %s: %s\n", rel, errname(errno));
		return;
	}
	write(fd, text, strlen(text));
	close(fd);
}

static void copy_self(const char *rel)
{
	int in = open("/proc/self/exe", O_RDONLY), out = open(at(rel), O_CREAT | O_WRONLY | O_TRUNC, 0755);
	char buf[65536];
	ssize_t n;
	while ((n = read(in, buf, sizeof buf)) > 0)
		write(out, buf, n);
	close(in);
	close(out);
}

/* Runs the copy of this program at `rel` (it prints nothing with argument "hello"). */
static void try_exec(const char *rel)
{
	fflush(stdout);
	pid_t p = fork();
	if (p == 0) {
		execl(at(rel), rel, "hello", (char *)NULL);
		_exit(errno == EACCES ? 13 : 1);
	}
	int st;
	waitpid(p, &st, 0);
	printf("  exec %s: %s\n", rel, WEXITSTATUS(st) == 13 ? "EACCES" : WEXITSTATUS(st) == 0 ? "ran" : "other");
}

static int outside[2], answer[2];

/* A process that stays in the first namespace, to look from outside. */
static void looker(void)
{
	char rel[256];
	ssize_t n;
	close(outside[1]);
	close(answer[0]);
	while ((n = read(outside[0], rel, sizeof rel - 1)) > 0) {
		rel[n] = 0;
		char r = exists(rel) ? 'y' : 'n';
		write(answer[1], &r, 1);
	}
	_exit(0);
}

static void from_outside(const char *rel)
{
	char r = '?';
	write(outside[1], rel, strlen(rel));
	read(answer[0], &r, 1);
	printf("  outside sees %s: %c\n", rel, r);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "hello") == 0)
		return 0;
	strcpy(base, "/tmp/mntconf-XXXXXX");
	if (!mkdtemp(base))
		return 1;
	mkdir(at("a"), 0755);
	if (pipe(outside) || pipe(answer))
		return 1;
	fflush(stdout);
	pid_t look = fork();
	if (look == 0)
		looker();

	/* Errors that come before any namespace matters. */
	P("mount target NULL", mount("none", NULL, "tmpfs", 0, NULL));
	P("mount missing target", mount("none", at("missing"), "tmpfs", 0, NULL));
	P("umount2 bad flags", umount2(at("a"), 0x10));
	P("umount2 missing", umount2(at("missing"), 0));
	P("umount2 not a mount", umount2(at("a"), 0));
	P("umount2 EXPIRE|DETACH not a mount", umount2(at("a"), MNT_EXPIRE | MNT_DETACH));

	if (unshare(CLONE_NEWNS)) {
		printf("unshare: %s\n", errname(errno));
		return 2;
	}
	if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL)) {
		printf("make-rprivate: %s\n", errname(errno));
		return 2;
	}
	printf("in a private mount namespace\n");

	P("mount unknown type", mount("none", at("a"), "nosuchfs", 0, NULL));
	P("mount no type", mount("none", at("a"), NULL, 0, NULL));
	P("mount bad tmpfs option", mount("none", at("a"), "tmpfs", 0, "bogus=1"));
	P("mount bad size", mount("none", at("a"), "tmpfs", 0, "size=lots"));
	P("mount MS_NOUSER", mount("none", at("a"), "tmpfs", MS_NOUSER, NULL));
	P("two propagation types", mount(NULL, "/", NULL, MS_PRIVATE | MS_SHARED, NULL));
	P("propagation with other flags", mount(NULL, "/", NULL, MS_PRIVATE | MS_NOSUID, NULL));
	P("propagation of a non-mount", mount(NULL, at("a"), NULL, MS_PRIVATE, NULL));
	P("bind without source", mount(NULL, at("a"), NULL, MS_BIND, NULL));
	P("bind missing source", mount(at("missing"), at("a"), NULL, MS_BIND, NULL));
	P("remount of a non-mount", mount(NULL, at("a"), NULL, MS_REMOUNT, NULL));
	P("move of a non-mount", mount(at("a"), "/", NULL, MS_MOVE, NULL));

	printf("tmpfs with options and nosuid:\n");
	P("  mount", mount("tmpfs", at("a"), "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=750"));
	show("a");
	vfs_flags("a");
	struct stat st;
	stat(at("a"), &st);
	printf("  root mode %o\n", st.st_mode & 07777);
	write_file("a/file", "in the tmpfs\n");
	from_outside("a/file");
	P("  mknod", mknod(at("a/null"), S_IFCHR | 0666, makedev(1, 3)));
	P("  open a device on nodev", open(at("a/null"), O_RDONLY));
	P("  same type on the mount root again (tmpfs stacks)", mount("tmpfs", at("a"), "tmpfs", 0, NULL));
	printf("  stacked hides the file %d\n", !exists("a/file"));
	P("  umount the top", umount2(at("a"), 0));
	printf("  file back %d\n", exists("a/file"));

	printf("busy and lazy unmount:\n");
	int fd = open(at("a/file"), O_RDONLY);
	P("  umount with a file open", umount2(at("a"), 0));
	P("  MNT_EXPIRE busy", umount2(at("a"), MNT_EXPIRE));
	P("  MNT_DETACH", umount2(at("a"), MNT_DETACH));
	char buf[64] = {0};
	printf("  open file still reads: %d\n", read(fd, buf, sizeof buf - 1) > 0 && strcmp(buf, "in the tmpfs\n") == 0);
	close(fd);
	printf("  gone from the path %d\n", !exists("a/file"));
	show("a");
	P("  umount again", umount2(at("a"), 0));

	printf("MNT_EXPIRE:\n");
	P("  mount", mount("tmpfs", at("a"), "tmpfs", 0, NULL));
	P("  first MNT_EXPIRE", umount2(at("a"), MNT_EXPIRE));
	P("  second MNT_EXPIRE", umount2(at("a"), MNT_EXPIRE));
	show("a");

	printf("read-only and remount:\n");
	P("  mount ro", mount("tmpfs", at("a"), "tmpfs", MS_RDONLY, NULL));
	show("a");
	vfs_flags("a");
	P("  create on ro", open(at("a/x"), O_CREAT | O_WRONLY, 0644));
	P("  remount rw", mount(NULL, at("a"), NULL, MS_REMOUNT, NULL));
	write_file("a/x", "x\n");
	printf("  created %d\n", exists("a/x"));
	P("  remount bind ro,noexec", mount(NULL, at("a"), NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOEXEC, NULL));
	show("a");
	vfs_flags("a");
	P("  unlink on ro", unlink(at("a/x")));
	P("  remount bind rw,noexec", mount(NULL, at("a"), NULL, MS_REMOUNT | MS_BIND | MS_NOEXEC, NULL));
	copy_self("a/prog");
	try_exec("a/prog");
	P("  remount bind rw", mount(NULL, at("a"), NULL, MS_REMOUNT | MS_BIND, NULL));
	try_exec("a/prog");
	P("  umount", umount2(at("a"), 0));

	printf("bind mounts:\n");
	mkdir(at("src"), 0755);
	P("  mount src", mount("tmpfs", at("src"), "tmpfs", 0, NULL));
	mkdir(at("src/sub"), 0755);
	write_file("src/top", "top\n");
	P("  mount src/sub", mount("tmpfs", at("src/sub"), "tmpfs", 0, NULL));
	write_file("src/sub/deep", "deep\n");
	mkdir(at("plain"), 0755);
	mkdir(at("rec"), 0755);
	P("  bind", mount(at("src"), at("plain"), NULL, MS_BIND, NULL));
	P("  rbind", mount(at("src"), at("rec"), NULL, MS_BIND | MS_REC, NULL));
	printf("  plain: top %d deep %d; rec: top %d deep %d\n", exists("plain/top"), exists("plain/sub/deep"),
	       exists("rec/top"), exists("rec/sub/deep"));
	write_file("plain/written", "through the bind\n");
	printf("  same files %d\n", exists("src/written"));
	show("plain");
	show("rec/sub");
	P("  umount src with a submount", umount2(at("src"), 0));
	mkdir(at("src/dir"), 0755);
	mkdir(at("one"), 0755);
	P("  bind a subdirectory", mount(at("src/dir"), at("one"), NULL, MS_BIND, NULL));
	show("one");
	P("  bind a file over a directory", mount(at("src/top"), at("one"), NULL, MS_BIND, NULL));

	printf("propagation:\n");
	P("  make-shared", mount(NULL, at("plain"), NULL, MS_SHARED, NULL));
	show("plain");
	P("  make-slave", mount(NULL, at("plain"), NULL, MS_SLAVE, NULL));
	show("plain");
	P("  make-private", mount(NULL, at("plain"), NULL, MS_PRIVATE, NULL));
	show("plain");
	P("  make-unbindable", mount(NULL, at("plain"), NULL, MS_UNBINDABLE, NULL));
	show("plain");
	mkdir(at("again"), 0755);
	P("  bind an unbindable", mount(at("plain"), at("again"), NULL, MS_BIND, NULL));
	P("  make-rprivate", mount(NULL, at("rec"), NULL, MS_PRIVATE | MS_REC, NULL));

	printf("move:\n");
	mkdir(at("moved"), 0755);
	P("  move", mount(at("rec"), at("moved"), NULL, MS_MOVE, NULL));
	printf("  moved: top %d deep %d; old place top %d\n", exists("moved/top"), exists("moved/sub/deep"),
	       exists("rec/top"));
	P("  move into itself", mount(at("moved"), at("moved/sub"), NULL, MS_MOVE, NULL));

	printf("proc:\n");
	mkdir(at("proc"), 0755);
	P("  mount proc", mount("proc", at("proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL));
	printf("  has self/status %d\n", exists("proc/self/status"));
	show("proc");
	P("  proc again on /proc", mount("proc", "/proc", "proc", 0, NULL));
	P("  bad proc option", mount("proc", at("a"), "proc", 0, "bogus"));

	printf("chroot:\n");
	mkdir(at("jail"), 0755);
	write_file("jail/inside", "x\n");
	fflush(stdout);
	pid_t p = fork();
	if (p == 0) {
		char cwd[512];
		P("  chroot file", chroot(at("jail/inside")));
		P("  chroot missing", chroot(at("nowhere")));
		P("  chroot", chroot(at("jail")));
		printf("  /inside %d\n", access("/inside", F_OK) == 0);
		printf("  /../inside %d\n", access("/../inside", F_OK) == 0);
		char *c = getcwd(cwd, sizeof cwd);
		printf("  getcwd outside the root: %s\n", !c ? errname(errno) : strncmp(cwd, "(unreachable)", 13) == 0 ? "(unreachable)..." : "a path");
		chdir("/");
		c = getcwd(cwd, sizeof cwd);
		printf("  getcwd %s\n", c ? cwd : errname(errno));
		_exit(0);
	}
	waitpid(p, NULL, 0);

	/* Nothing of it outside. */
	from_outside("plain/top");
	from_outside("moved/top");
	close(outside[1]);
	waitpid(look, NULL, 0);

	/* Clean up (the namespace goes with the process; the directories are the host's). */
	umount2(at("proc"), MNT_DETACH);
	umount2(at("one"), MNT_DETACH);
	umount2(at("moved"), MNT_DETACH);
	umount2(at("plain"), MNT_DETACH);
	umount2(at("src"), MNT_DETACH);
	umount2(at("a"), MNT_DETACH);
	unlink(at("jail/inside"));
	const char *dirs[] = {"jail", "proc", "moved", "again", "one", "rec", "plain", "src", "a"};
	for (unsigned i = 0; i < sizeof dirs / sizeof *dirs; i++)
		rmdir(at(dirs[i]));
	printf("cleaned %d\n", rmdir(base) == 0);
	return 0;
}
