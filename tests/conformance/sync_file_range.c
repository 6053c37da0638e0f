/* sync_file_range (PostgreSQL flushes with it): Linux's checks of flags, offsets and
 * lengths, ESPIPE for pipes and sockets, EBADF, and success on regular files (a range, to
 * EOF with nbytes 0, every flag) and directories. */
#define CONF_FS
#include "conf.h"
#include <sys/socket.h>

#define F_ALL (SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE | SYNC_FILE_RANGE_WAIT_AFTER)

int main(void)
{
	fs_enter();
	int fd = open("f", O_CREAT | O_RDWR, 0644);
	if (write(fd, "some data", 9) != 9)
		printf("write failed\n");
	ERRCALL("a range, write", sync_file_range(fd, 0, 9, SYNC_FILE_RANGE_WRITE));
	ERRCALL("to EOF, every flag", sync_file_range(fd, 4, 0, F_ALL));
	ERRCALL("no flags", sync_file_range(fd, 0, 0, 0));
	ERRCALL("past EOF", sync_file_range(fd, 1 << 20, 4096, SYNC_FILE_RANGE_WRITE));
	ERRCALL("unknown flag", sync_file_range(fd, 0, 0, 8));
	ERRCALL("negative offset", sync_file_range(fd, -1, 0, SYNC_FILE_RANGE_WRITE));
	ERRCALL("negative length", sync_file_range(fd, 0, -1, SYNC_FILE_RANGE_WRITE));
	ERRCALL("overflowing range",
		sync_file_range(fd, 0x7fffffffffffff00LL, 0x1000, SYNC_FILE_RANGE_WRITE));
	int ro = open("f", O_RDONLY);
	ERRCALL("read-only descriptor", sync_file_range(ro, 0, 0, SYNC_FILE_RANGE_WRITE));
	close(ro);
	int dir = open(".", O_RDONLY | O_DIRECTORY);
	ERRCALL("directory", sync_file_range(dir, 0, 0, SYNC_FILE_RANGE_WRITE));
	close(dir);
	int p[2];
	if (pipe(p) != 0)
		printf("pipe failed\n");
	ERRCALL("pipe", sync_file_range(p[0], 0, 0, SYNC_FILE_RANGE_WRITE));
	int sv[2];
	socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	ERRCALL("socket", sync_file_range(sv[0], 0, 0, SYNC_FILE_RANGE_WRITE));
	ERRCALL("bad descriptor", sync_file_range(999, 0, 0, SYNC_FILE_RANGE_WRITE));
	ERRCALL("bad flag on a pipe", sync_file_range(p[0], 0, 0, 8));
	ERRCALL("bad descriptor and flag", sync_file_range(999, 0, 0, 8));
	close(fd);
	unlink("f");
	fs_leave();
	return 0;
}
