/* imgfs_erofs DIR OUTSIDE: every kind of change attempted on a read-only image mounted at DIR
 * (holding a regular file "file.txt" with the xattr user.comment, a directory "dir", a
 * symlink "link" and a character device "null" 1:3), printing the errno of each; OUTSIDE is
 * a writable directory on another mount (for the cross-mount cases). Natively on a tree
 * these would succeed; on Linux's erofs, and on ImgFS in the sandbox, they fail as listed
 * in tests/tests/imgfs_mount.rs. Reads still work. */
#include "conf.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

static char path_buf[8][4096];
static int path_next;

/* DIR/name, in one of a few rotating buffers. */
static const char *at(const char *dir, const char *name)
{
	char *p = path_buf[path_next++ % 8];
	snprintf(p, 4096, "%s/%s", dir, name);
	return p;
}

static void report(const char *label, int r)
{
	printf("%s: %s\n", label, r < 0 ? errname(errno) : "0");
}

/* open(): reports and closes. */
static void try_open(const char *label, const char *path, int flags)
{
	int fd = open(path, flags, 0644);
	report(label, fd);
	if (fd >= 0)
		close(fd);
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: imgfs_erofs DIR OUTSIDE\n");
		return 2;
	}
	const char *d = argv[1], *out = argv[2];
	char *file = strdup(at(d, "file.txt")), *dir = strdup(at(d, "dir"));
	char *link_ = strdup(at(d, "link"));

	try_open("open O_WRONLY", file, O_WRONLY);
	try_open("open O_RDWR", file, O_RDWR);
	try_open("open O_RDONLY|O_TRUNC", file, O_RDONLY | O_TRUNC);
	try_open("open O_WRONLY|O_APPEND", file, O_WRONLY | O_APPEND);
	try_open("open O_CREAT new", at(d, "new"), O_CREAT | O_WRONLY);
	try_open("open O_CREAT existing", file, O_CREAT | O_RDONLY);
	try_open("open O_CREAT|O_EXCL existing", file, O_CREAT | O_EXCL | O_WRONLY);
	try_open("open dir O_WRONLY", dir, O_WRONLY);
	try_open("open dir O_RDONLY", dir, O_RDONLY | O_DIRECTORY);
	try_open("open O_TMPFILE", dir, O_TMPFILE | O_RDWR);
	report("creat", creat(at(d, "created"), 0644));

	int fd = open(file, O_RDONLY);
	report("open O_RDONLY", fd);
	char buf[16];
	ssize_t n = read(fd, buf, sizeof buf);
	printf("read: %zd\n", n);
	report("write on a read-only fd", (int)write(fd, "x", 1));
	report("ftruncate on a read-only fd", ftruncate(fd, 0));
	report("fchmod", fchmod(fd, 0600));
	report("fchown", fchown(fd, 1, 1));
	report("fsetxattr", fsetxattr(fd, "user.x", "1", 1, 0));
	report("fremovexattr", fremovexattr(fd, "user.comment"));
	report("futimens", futimens(fd, NULL));
	close(fd);

	report("truncate", truncate(file, 0));
	report("unlink", unlink(file));
	report("unlink missing", unlink(at(d, "missing")));
	report("rmdir", rmdir(dir));
	report("mkdir new", mkdir(at(d, "newdir"), 0755));
	report("mkdir existing", mkdir(dir, 0755));
	report("symlink", symlink("target", at(d, "newlink")));
	report("link", link(file, at(d, "newhard")));
	report("rename", rename(file, at(d, "renamed")));
	report("rename onto itself", rename(file, file));
	report("mknod fifo", mknod(at(d, "fifo2"), S_IFIFO | 0644, 0));
	report("chmod", chmod(file, 0600));
	report("chmod dir", chmod(dir, 0700));
	report("chown", chown(file, 1, 1));
	report("lchown symlink", lchown(link_, 1, 1));
	report("utimensat", utimensat(AT_FDCWD, file, NULL, 0));
	report("setxattr", setxattr(file, "user.x", "1", 1, 0));
	report("setxattr replace", setxattr(file, "user.comment", "z", 1, XATTR_REPLACE));
	report("lsetxattr symlink", lsetxattr(link_, "trusted.x", "1", 1, 0));
	report("removexattr", removexattr(file, "user.comment"));
	report("access W_OK", access(file, W_OK));
	report("access R_OK", access(file, R_OK));

	/* Across mounts: EXDEV comes before EROFS. */
	report("rename to another mount", rename(file, at(out, "moved")));
	report("link to another mount", link(file, at(out, "linked")));

	/* Devices in an image are served by number. */
	fd = open(at(d, "null"), O_RDWR);
	report("open char device 1:3", fd);
	if (fd >= 0) {
		printf("write to it: %zd\n", write(fd, "abc", 3));
		printf("read from it: %zd\n", read(fd, buf, sizeof buf));
		close(fd);
	}

	struct statfs sfs;
	report("statfs", statfs(d, &sfs));
	printf("statfs read-only: %d\n", (sfs.f_flags & ST_RDONLY) != 0);
	printf("statfs namelen: %ld\n", (long)sfs.f_namelen);
	printf("statfs free blocks: %lld\n", (long long)sfs.f_bfree);

	/* Nothing changed. */
	struct stat st;
	int r = stat(file, &st);
	report("stat file", r);
	if (r == 0)
		printf("mode after: %04o size after: %lld\n", (unsigned)(st.st_mode & 07777),
		       (long long)st.st_size);
	report("stat new", stat(at(d, "new"), &st));
	return 0;
}
