/* memfd seals enforced: F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_WRITE,
 * F_SEAL_FUTURE_WRITE, F_SEAL_SEAL and F_SEAL_EXEC against write, pwrite,
 * writev, ftruncate, O_TRUNC, fallocate, shared mappings (mmap, mprotect) and
 * chmod; EBUSY when F_SEAL_WRITE meets a writable shared mapping; a memfd
 * without MFD_ALLOW_SEALING is sealed with F_SEAL_SEAL. */
#define CONF_FS
#include "conf.h"
#include <sys/mman.h>
#include <sys/uio.h>

#define C_MFD_ALLOW_SEALING 0x2U
#define C_MFD_NOEXEC_SEAL 0x8U
#define C_F_ADD_SEALS 1033
#define C_F_GET_SEALS 1034
#define C_F_SEAL_SEAL 0x1
#define C_F_SEAL_SHRINK 0x2
#define C_F_SEAL_GROW 0x4
#define C_F_SEAL_WRITE 0x8
#define C_F_SEAL_FUTURE_WRITE 0x10
#define C_F_SEAL_EXEC 0x20

#define RES(label, expr)                                                      \
	do {                                                                  \
		errno = 0;                                                    \
		long _r = (long)(expr);                                       \
		int _e = errno;                                               \
		printf("%s: %ld %s\n", label, _r, _r < 0 ? errname(_e) : "0"); \
	} while (0)

static char page[8192];

static int sealable(const char *name)
{
	int fd = syscall(SYS_memfd_create, name, C_MFD_ALLOW_SEALING);
	if (fd < 0) {
		printf("memfd_create: %s\n", errname(errno));
		exit(1);
	}
	return fd;
}

static long size_of(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 ? (long)st.st_size : -1;
}

static void no_sealing(void)
{
	int fd = syscall(SYS_memfd_create, "plain", 0);
	RES("plain get", fcntl(fd, C_F_GET_SEALS));
	RES("plain add WRITE", fcntl(fd, C_F_ADD_SEALS, C_F_SEAL_WRITE));
	RES("plain write", write(fd, "x", 1));
	close(fd);
	fd = sealable("s");
	RES("sealable get", fcntl(fd, C_F_GET_SEALS));
	RES("add bad bit", fcntl(fd, C_F_ADD_SEALS, 0x100));
	RES("add SEAL", fcntl(fd, C_F_ADD_SEALS, C_F_SEAL_SEAL));
	RES("add after SEAL", fcntl(fd, C_F_ADD_SEALS, C_F_SEAL_GROW));
	RES("add nothing after SEAL", fcntl(fd, C_F_ADD_SEALS, 0));
	RES("get", fcntl(fd, C_F_GET_SEALS));
	close(fd);
}

static void shrink(void)
{
	int fd = sealable("shrink");
	RES("write", write(fd, page, 8192));
	RES("add SHRINK", fcntl(fd, C_F_ADD_SEALS, C_F_SEAL_SHRINK));
	RES("ftruncate smaller", ftruncate(fd, 100));
	RES("ftruncate same", ftruncate(fd, 8192));
	RES("ftruncate larger", ftruncate(fd, 10000));
	RES("punch hole", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096));
	RES("write", pwrite(fd, "abc", 3, 0));
	printf("size=%ld\n", size_of(fd));
	close(fd);
}

static void grow(void)
{
	int fd = sealable("grow");
	RES("ftruncate 5000", ftruncate(fd, 5000));
	RES("add GROW", fcntl(fd, C_F_ADD_SEALS, C_F_SEAL_GROW));
	RES("ftruncate larger", ftruncate(fd, 6000));
	RES("ftruncate smaller", ftruncate(fd, 4900));
	RES("ftruncate back up", ftruncate(fd, 5000));
	RES("pwrite inside", pwrite(fd, "abc", 3, 10));
	RES("pwrite up to end", pwrite(fd, page, 100, 4900));
	RES("pwrite crossing end, same page", pwrite(fd, page, 100, 4950));
	RES("pwrite 8192 at 0 (crosses end)", pwrite(fd, page, 8192, 0));
	RES("pwrite at end", pwrite(fd, "x", 1, 5000));
	lseek(fd, 0, SEEK_END);
	RES("write at end", write(fd, "x", 1));
	RES("write 0 bytes at end", write(fd, "x", 0));
	RES("fallocate past end", fallocate(fd, 0, 4096, 4096));
	RES("fallocate KEEP_SIZE past end", fallocate(fd, FALLOC_FL_KEEP_SIZE, 4096, 4096));
	RES("fallocate inside", fallocate(fd, 0, 0, 4096));
	printf("size=%ld\n", size_of(fd));
	close(fd);
}

static void seal_write(void)
{
	int fd = sealable("write");
	RES("write", write(fd, page, 8192));
	char *m = mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	printf("shared rw map: %s\n", m == MAP_FAILED ? errname(errno) : "ok");
	RES("add WRITE with rw shared map", fcntl(fd, C_F_ADD_SEALS, C_F_SEAL_WRITE));
	munmap(m, 8192);
	m = mmap(NULL, 8192, PROT_READ, MAP_PRIVATE, fd, 0);
	RES("add WRITE with private map", fcntl(fd, C_F_ADD_SEALS, C_F_SEAL_WRITE));
	RES("get", fcntl(fd, C_F_GET_SEALS));
	munmap(m, 8192);
	RES("write", write(fd, "x", 1));
	RES("pwrite", pwrite(fd, "x", 1, 0));
	RES("write 0 bytes", write(fd, "x", 0));
	struct iovec iov = {(void *)"xy", 2};
	RES("writev", writev(fd, &iov, 1));
	int other = dup(fd);
	RES("write via a dup", write(other, "x", 1));
	close(other);
	RES("ftruncate smaller", ftruncate(fd, 4096));
	RES("ftruncate larger", ftruncate(fd, 8192));
	RES("punch hole", fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096));
	RES("fallocate", fallocate(fd, 0, 0, 12288));
	void *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	printf("mmap shared rw: %s\n", w == MAP_FAILED ? errname(errno) : "ok");
	void *wo = mmap(NULL, 4096, PROT_WRITE, MAP_SHARED, fd, 0);
	printf("mmap shared wo: %s\n", wo == MAP_FAILED ? errname(errno) : "ok");
	char *r = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	printf("mmap shared ro: %s\n", r == MAP_FAILED ? errname(errno) : "ok");
	if (r != MAP_FAILED) {
		RES("mprotect shared ro to rw", mprotect(r, 4096, PROT_READ | PROT_WRITE));
		munmap(r, 4096);
	}
	char *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	printf("mmap private rw: %s\n", p == MAP_FAILED ? errname(errno) : "ok");
	if (p != MAP_FAILED) {
		p[0] = 'P';
		char c = 0;
		RES("pread", pread(fd, &c, 1, 0));
		printf("private write stays private: %d\n", c != 'P');
		munmap(p, 4096);
	}
	close(fd);
}

static void future_write(void)
{
	int fd = sealable("future");
	RES("ftruncate", ftruncate(fd, 4096));
	char *m = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	printf("shared rw map: %s\n", m == MAP_FAILED ? errname(errno) : "ok");
	RES("add FUTURE_WRITE with rw shared map", fcntl(fd, C_F_ADD_SEALS, C_F_SEAL_FUTURE_WRITE));
	RES("write", write(fd, "x", 1));
	RES("pwrite", pwrite(fd, "x", 1, 0));
	if (m != MAP_FAILED) {
		memcpy(m, "mapped", 6);
		char b[8] = {0};
		RES("pread", pread(fd, b, 6, 0));
		printf("old mapping still writes: %s\n", b);
		munmap(m, 4096);
	}
	void *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	printf("new mmap shared rw: %s\n", w == MAP_FAILED ? errname(errno) : "ok");
	char *r = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	printf("new mmap shared ro: %s\n", r == MAP_FAILED ? errname(errno) : "ok");
	if (r != MAP_FAILED) {
		RES("mprotect to rw", mprotect(r, 4096, PROT_READ | PROT_WRITE));
		munmap(r, 4096);
	}
	RES("ftruncate larger", ftruncate(fd, 8192));
	RES("add WRITE too", fcntl(fd, C_F_ADD_SEALS, C_F_SEAL_WRITE));
	RES("get", fcntl(fd, C_F_GET_SEALS));
	close(fd);
}

static void exec_seal(void)
{
	int fd = sealable("exec");
	struct stat st;
	fstat(fd, &st);
	printf("mode=%04o\n", (unsigned)(st.st_mode & 07777));
	RES("add EXEC", fcntl(fd, C_F_ADD_SEALS, C_F_SEAL_EXEC));
	RES("get", fcntl(fd, C_F_GET_SEALS));
	RES("fchmod drop x", fchmod(fd, 0666));
	RES("fchmod same x bits", fchmod(fd, 0775));
	RES("write", write(fd, "x", 1));
	close(fd);
	fd = syscall(SYS_memfd_create, "noexec", C_MFD_NOEXEC_SEAL);
	if (fd >= 0) {
		RES("noexec get", fcntl(fd, C_F_GET_SEALS));
		RES("noexec fchmod +x", fchmod(fd, 0777));
		RES("noexec write", write(fd, "x", 1));
		RES("noexec add WRITE", fcntl(fd, C_F_ADD_SEALS, C_F_SEAL_WRITE));
		RES("noexec write after", write(fd, "x", 1));
		close(fd);
	}
}

int main(void)
{
	memset(page, 'a', sizeof page);
	no_sealing();
	shrink();
	grow();
	seal_write();
	future_write();
	exec_seal();
	return 0;
}
