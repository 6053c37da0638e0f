/* flock(2): whole-file locks owned by the open file description. One
 * process: two open()s of a file are two descriptions and conflict; dup()s
 * share one. Conversion between shared and exclusive (a failed LOCK_NB
 * upgrade drops the lock held before, as on Linux), release with the last
 * descriptor, independence from fcntl record locks, and the errors. Works in
 * a fresh /tmp/fsconf-XXXXXX. */
#define CONF_FS
#include "conf.h"
#include <sys/file.h>

#ifndef LOCK_MAND
#define LOCK_MAND 32
#define LOCK_READ 64
#endif

static void fl(const char *label, int fd, int op)
{
	ERRCALL(label, flock(fd, op));
}

int main(void)
{
	fs_enter();
	int a = open("f", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int b = open("f", O_RDWR | O_CLOEXEC);
	int a2 = dup(a);

	printf("-- exclusive and shared\n");
	fl("a LOCK_EX", a, LOCK_EX | LOCK_NB);
	fl("a again through a dup", a2, LOCK_EX | LOCK_NB);
	fl("b LOCK_SH blocked", b, LOCK_SH | LOCK_NB);
	fl("b LOCK_EX blocked", b, LOCK_EX | LOCK_NB);
	fl("a down to LOCK_SH", a, LOCK_SH);
	fl("b LOCK_SH shares", b, LOCK_SH | LOCK_NB);
	fl("b LOCK_SH again", b, LOCK_SH | LOCK_NB);

	printf("-- a failed upgrade drops the shared lock\n");
	fl("a upgrade blocked", a, LOCK_EX | LOCK_NB);
	fl("b upgrade now succeeds", b, LOCK_EX | LOCK_NB);
	fl("a LOCK_SH blocked", a, LOCK_SH | LOCK_NB);
	fl("b LOCK_UN", b, LOCK_UN);
	fl("b LOCK_UN again", b, LOCK_UN);
	fl("a LOCK_EX", a, LOCK_EX | LOCK_NB);

	printf("-- release with the last descriptor\n");
	close(a);
	fl("kept while the dup is open", b, LOCK_SH | LOCK_NB);
	int c = open("f", O_RDONLY | O_CLOEXEC);
	close(c);
	fl("closing another description keeps it", b, LOCK_SH | LOCK_NB);
	close(a2);
	fl("gone with the last descriptor", b, LOCK_EX | LOCK_NB);

	printf("-- independent of record locks\n");
	int d = open("f", O_RDWR | O_CLOEXEC);
	struct flock rl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
	ERRCALL("ofd write lock beside flock", fcntl(d, 37 /* F_OFD_SETLK */, &rl));
	ERRCALL("posix write lock beside flock", fcntl(d, F_SETLK, &rl));
	fl("d flock still blocked", d, LOCK_SH | LOCK_NB);
	fl("b flock unlock", b, LOCK_UN);
	fl("d flock now", d, LOCK_SH | LOCK_NB);
	close(d);
	fl("b LOCK_EX after d closed", b, LOCK_EX | LOCK_NB);
	fl("b LOCK_UN", b, LOCK_UN);

	printf("-- access modes and file types\n");
	int r = open("f", O_RDONLY | O_CLOEXEC), w = open("f", O_WRONLY | O_CLOEXEC);
	fl("LOCK_EX on O_RDONLY", r, LOCK_EX | LOCK_NB);
	fl("LOCK_UN on O_RDONLY", r, LOCK_UN);
	fl("LOCK_SH on O_WRONLY", w, LOCK_SH | LOCK_NB);
	fl("LOCK_UN on O_WRONLY", w, LOCK_UN);
	close(r);
	close(w);
	int p = open("f", O_PATH | O_CLOEXEC);
	fl("LOCK_SH on O_PATH", p, LOCK_SH | LOCK_NB);
	fl("LOCK_UN on O_PATH", p, LOCK_UN);
	close(p);
	int dir = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int dir2 = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	fl("LOCK_EX on a directory", dir, LOCK_EX | LOCK_NB);
	fl("second description of the directory", dir2, LOCK_SH | LOCK_NB);
	close(dir);
	close(dir2);
	int pp[2];
	if (pipe(pp) == 0) {
		fl("LOCK_EX on a pipe", pp[1], LOCK_EX | LOCK_NB);
		fl("LOCK_SH on the other end", pp[0], LOCK_SH | LOCK_NB);
		close(pp[0]);
		close(pp[1]);
	}

	printf("-- errors\n");
	fl("op 0", b, 0);
	fl("LOCK_NB alone", b, LOCK_NB);
	fl("LOCK_SH|LOCK_EX", b, LOCK_SH | LOCK_EX);
	fl("LOCK_SH|LOCK_UN", b, LOCK_SH | LOCK_UN);
	fl("op 16", b, 16);
	fl("LOCK_UN|LOCK_NB", b, LOCK_UN | LOCK_NB);
	fl("LOCK_MAND is ignored", b, LOCK_MAND | LOCK_READ);
	fl("LOCK_MAND on a bad fd", -1, LOCK_MAND);
	fl("bad fd", 9999, LOCK_SH);
	fl("bad fd, bad op", 9999, 0);
	fl("negative fd", -1, LOCK_EX | LOCK_NB);
	fl("blocking LOCK_EX without a conflict", b, LOCK_EX);
	fl("blocking LOCK_SH (downgrade)", b, LOCK_SH);
	fl("blocking LOCK_UN", b, LOCK_UN);
	close(b);
	fs_leave();
	return 0;
}
