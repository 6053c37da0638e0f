/* A file keeps its st_dev and st_ino when it is changed: on the sandbox's overlay the
 * first change copies a host file (and its directories) up into the memory layer, and the
 * numbers must not move, for directories, files and hard links alike.
 *
 * Usage: copyup_ino DIR, where DIR holds (made by the test before the run, so that in the
 * sandbox it exists only in the lower layer): d/, d/sub/, d/sub/deep/, d/f ("file"),
 * d/h1 and d/h2 (one file, "link"). Works natively on any file system. */
#include "conf.h"
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[4096];

static const char *at(const char *rel)
{
	static char buf[2][8192];
	static int n;
	char *b = buf[n++ & 1];
	snprintf(b, sizeof buf[0], "%s/%s", base, rel);
	return b;
}

static struct stat st(const char *rel)
{
	struct stat s;
	if (lstat(at(rel), &s) != 0) {
		printf("lstat %s: %s\n", rel, errname(errno));
		exit(1);
	}
	return s;
}

static void same(const char *what, struct stat a, struct stat b)
{
	printf("%s: dev %s, ino %s\n", what, a.st_dev == b.st_dev ? "same" : "CHANGED",
	       a.st_ino == b.st_ino ? "same" : "CHANGED");
}

/* The d_ino readdir shows for NAME in REL. */
static ino_t listed_ino(const char *rel, const char *name)
{
	DIR *d = opendir(at(rel));
	struct dirent *e;
	ino_t ino = 0;
	while (d && (e = readdir(d)))
		if (strcmp(e->d_name, name) == 0)
			ino = e->d_ino;
	if (d)
		closedir(d);
	return ino;
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: copyup_ino DIR\n");
		return 2;
	}
	snprintf(base, sizeof base, "%s", argv[1]);
	struct stat d0 = st("d"), sub0 = st("d/sub"), deep0 = st("d/sub/deep");
	struct stat f0 = st("d/f"), h10 = st("d/h1"), h20 = st("d/h2");
	int dirfd = open(at("d"), O_RDONLY | O_DIRECTORY);
	printf("hard links share an inode: %d, nlink %d %d\n", h10.st_ino == h20.st_ino,
	       (int)h10.st_nlink, (int)h20.st_nlink);
	printf("d_ino of f is st_ino: %d\n", listed_ino("d", "f") == f0.st_ino);

	/* A write copies up f and its directory. */
	int fd = open(at("d/f"), O_WRONLY | O_APPEND);
	printf("append: %zd\n", write(fd, "more", 4));
	close(fd);
	same("f after write", f0, st("d/f"));
	same("d after a child's copy-up", d0, st("d"));
	struct stat fds;
	fstat(dirfd, &fds);
	same("d through an fd opened before", d0, fds);
	printf("d_ino of f after copy-up is st_ino: %d\n", listed_ino("d", "f") == f0.st_ino);

	/* chmod copies up a directory itself, and a deeper one with it. */
	printf("chmod deep: %d\n", chmod(at("d/sub/deep"), 0700));
	same("deep after chmod", deep0, st("d/sub/deep"));
	same("sub above it", sub0, st("d/sub"));
	printf("d_ino of sub is st_ino: %d\n", listed_ino("d", "sub") == sub0.st_ino);

	/* A new file in a copied-up directory leaves the directory alone. */
	int n = open(at("d/sub/new"), O_CREAT | O_WRONLY, 0644);
	close(n);
	same("sub after a create", sub0, st("d/sub"));

	/* Hard links: writing one name changes the file both names show. */
	fd = open(at("d/h1"), O_WRONLY | O_TRUNC);
	printf("write h1: %zd\n", write(fd, "LINK", 4));
	close(fd);
	char buf[16] = {0};
	fd = open(at("d/h2"), O_RDONLY);
	printf("read h2: %zd %s\n", read(fd, buf, sizeof buf - 1), buf);
	close(fd);
	struct stat h11 = st("d/h1"), h21 = st("d/h2");
	same("h1 after write", h10, h11);
	same("h2 after h1's write", h20, h21);
	printf("nlink %d %d\n", (int)h11.st_nlink, (int)h21.st_nlink);
	printf("chmod h2: %d\n", chmod(at("d/h2"), 0600));
	h11 = st("d/h1");
	printf("h1 mode after chmod of h2: %o\n", h11.st_mode & 07777);
	same("h2 after chmod", h20, st("d/h2"));
	printf("unlink h1: %d\n", unlink(at("d/h1")));
	printf("h2 nlink: %d\n", (int)st("d/h2").st_nlink);

	/* rename keeps the inode. */
	printf("rename: %d\n", rename(at("d/f"), at("d/g")));
	same("g (was f)", f0, st("d/g"));
	close(dirfd);
	return 0;
}
