/* The old getdents (struct linux_dirent: d_type in each record's last byte) against
 * getdents64 on a directory the program makes in a fresh /tmp/getdents-XXXXXX: the same
 * names, inode numbers and types, printed sorted (listing order is the file system's);
 * the record layout (reclen a multiple of 8, the name's NUL, d_off of the last record
 * continuing the listing); small buffers (EINVAL when not even one record fits, one record
 * at a time when one does); and EBADF, ENOTDIR, EFAULT. */
#include "conf.h"
#include <dirent.h>
#include <fcntl.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/syscall.h>

struct linux_dirent {
	unsigned long d_ino;
	unsigned long d_off;
	unsigned short d_reclen;
	char d_name[];
};

struct linux_dirent64_ {
	uint64_t d_ino;
	int64_t d_off;
	unsigned short d_reclen;
	unsigned char d_type;
	char d_name[];
};

struct entry {
	char name[64];
	uint64_t ino;
	int type;
};

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

static const char *type_name(int t)
{
	switch (t) {
	case DT_REG: return "reg";
	case DT_DIR: return "dir";
	case DT_LNK: return "lnk";
	case DT_FIFO: return "fifo";
	case DT_SOCK: return "sock";
	case DT_UNKNOWN: return "unknown";
	default: return "other";
	}
}

static int bad_records;

/* Lists `path` with getdents (old = 1) or getdents64 in reads of `bufsize` bytes; returns
 * the number of entries and the number of reads. */
static int list(const char *path, int old, size_t bufsize, struct entry *out, int *reads)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY);
	char buf[4096] __attribute__((aligned(8)));
	int n = 0;
	*reads = 0;
	for (;;) {
		long got = syscall(old ? SYS_getdents : SYS_getdents64, fd, buf, bufsize);
		if (got < 0) {
			printf("%s: %s\n", old ? "getdents" : "getdents64", errname(errno));
			break;
		}
		if (got == 0)
			break;
		(*reads)++;
		for (long off = 0; off < got;) {
			struct entry *e = &out[n++];
			unsigned short reclen;
			if (old) {
				struct linux_dirent *d = (void *)(buf + off);
				reclen = d->d_reclen;
				snprintf(e->name, sizeof e->name, "%s", d->d_name);
				e->ino = d->d_ino;
				e->type = buf[off + reclen - 1];
				size_t used = offsetof(struct linux_dirent, d_name) + strlen(d->d_name) + 2;
				if (used > reclen)
					bad_records++;
			} else {
				struct linux_dirent64_ *d = (void *)(buf + off);
				reclen = d->d_reclen;
				snprintf(e->name, sizeof e->name, "%s", d->d_name);
				e->ino = d->d_ino;
				e->type = d->d_type;
			}
			if (reclen % 8 != 0 || reclen == 0)
				bad_records++;
			off += reclen;
		}
	}
	close(fd);
	qsort(out, n, sizeof out[0], by_name);
	return n;
}

int main(void)
{
	char dir[] = "/tmp/getdents-XXXXXX";
	if (!mkdtemp(dir)) {
		printf("mkdtemp: %s\n", errname(errno));
		return 1;
	}
	if (chdir(dir) != 0)
		return 1;
	close(open("file", O_CREAT | O_WRONLY, 0644));
	mkdir("subdir", 0755);
	symlink("file", "link");
	mkfifo("fifo", 0644);
	/* Names of every length around the 8-byte rounding of both layouts. */
	char name[40];
	for (int len = 1; len <= 20; len++) {
		memset(name, 'a' + len % 26, len);
		name[len] = 0;
		if (len > 2 || name[0] != '.')
			close(open(name, O_CREAT | O_WRONLY, 0644));
	}

	static struct entry old[64], new[64], small[64];
	int reads_old, reads_new, reads_small;
	int n_old = list(".", 1, 4096, old, &reads_old);
	int n_new = list(".", 0, 4096, new, &reads_new);
	printf("entries: getdents %d, getdents64 %d\n", n_old, n_new);
	int same = n_old == n_new;
	for (int i = 0; same && i < n_old; i++)
		same = strcmp(old[i].name, new[i].name) == 0 && old[i].ino == new[i].ino &&
		       old[i].type == new[i].type;
	printf("same names, inodes and types: %d\n", same);
	for (int i = 0; i < n_old; i++)
		printf("  %s %s\n", old[i].name, type_name(old[i].type));
	printf("records well formed: %d\n", bad_records == 0);

	/* One record at a time: "." and ".." are 24 bytes each in both layouts... */
	int n_small = list("subdir", 1, 24, small, &reads_small);
	printf("empty subdir, 24-byte reads: %d entries in %d reads\n", n_small, reads_small);
	/* ...and a buffer smaller than the first record is EINVAL. */
	int fd = open(".", O_RDONLY | O_DIRECTORY);
	char buf[64] __attribute__((aligned(8)));
	long r = syscall(SYS_getdents, fd, buf, 10);
	printf("getdents into 10 bytes: %s\n", r < 0 ? errname(errno) : "ok");
	r = syscall(SYS_getdents64, fd, buf, 10);
	printf("getdents64 into 10 bytes: %s\n", r < 0 ? errname(errno) : "ok");
	/* d_off continues the listing: a seek to the first record's d_off lists from the
	 * second, a seek to 0 from the first again. (Every record here fits in 64 bytes.) */
	lseek(fd, 0, SEEK_SET);
	r = syscall(SYS_getdents, fd, buf, sizeof buf);
	if (r > 0) {
		struct linux_dirent *d = (void *)buf;
		char first[64], second[64] = "";
		snprintf(first, sizeof first, "%s", d->d_name);
		long d_off = d->d_off;
		if (d->d_reclen < r)
			snprintf(second, sizeof second, "%s",
			         ((struct linux_dirent *)(buf + d->d_reclen))->d_name);
		else if (syscall(SYS_getdents, fd, buf, sizeof buf) > 0)
			snprintf(second, sizeof second, "%s", d->d_name);
		lseek(fd, d_off, SEEK_SET);
		long again = syscall(SYS_getdents, fd, buf, sizeof buf);
		printf("from the first record's d_off: the second record: %d\n",
		       again > 0 && strcmp(d->d_name, second) == 0);
		lseek(fd, 0, SEEK_SET);
		again = syscall(SYS_getdents, fd, buf, sizeof buf);
		printf("from 0: the first record: %d\n", again > 0 && strcmp(d->d_name, first) == 0);
	}
	r = syscall(SYS_getdents, fd, (void *)8, sizeof buf);
	printf("getdents to a bad address: %s\n", r < 0 ? errname(errno) : "ok");
	close(fd);

	r = syscall(SYS_getdents, 999, buf, sizeof buf);
	printf("getdents on a closed descriptor: %s\n", r < 0 ? errname(errno) : "ok");
	fd = open("file", O_RDONLY);
	r = syscall(SYS_getdents, fd, buf, sizeof buf);
	printf("getdents on a file: %s\n", r < 0 ? errname(errno) : "ok");
	close(fd);

	/* Clean up. */
	for (int i = 0; i < n_new; i++) {
		if (strcmp(new[i].name, ".") == 0 || strcmp(new[i].name, "..") == 0)
			continue;
		if (new[i].type == DT_DIR)
			rmdir(new[i].name);
		else
			unlink(new[i].name);
	}
	chdir("/");
	printf("rmdir: %d\n", rmdir(dir));
	return 0;
}
