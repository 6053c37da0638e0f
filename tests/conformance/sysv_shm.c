/* System V shared memory: shmget, shmat (kernel-chosen and chosen addresses, SHM_RND,
 * SHM_RDONLY, SHM_REMAP), shmdt, shmctl (IPC_STAT/SET/RMID/INFO, SHM_INFO, SHM_STAT(_ANY),
 * SHM_LOCK/UNLOCK), attachment counts across fork, execve and exit, segments outliving
 * their creator, IPC_RMID with attachments left, permissions and bad arguments.
 * Identifiers, keys, pids and times are never printed, only compared.
 * Every segment made is removed (natively they live in the host's IPC namespace). */
#include "conf.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>

#ifndef SHM_STAT_ANY
#define SHM_STAT_ANY 15
#endif
#ifndef SHM_REMAP
#define SHM_REMAP 040000
#endif
#define SHM_DEST_BIT 01000
#define SHM_LOCKED_BIT 02000

static const long PG = 4096;

static void stat_line(const char *label, int id)
{
	struct shmid_ds ds;
	memset(&ds, 0, sizeof ds);
	if (shmctl(id, IPC_STAT, &ds) < 0) {
		printf("%s: IPC_STAT %s\n", label, errname(errno));
		return;
	}
	printf("%s: segsz=%lu nattch=%lu mode=%o key0=%d cpid_me=%d lpid_me=%d uid_me=%d atime=%d dtime=%d ctime=%d\n",
	       label, (unsigned long)ds.shm_segsz, (unsigned long)ds.shm_nattch,
	       (unsigned)ds.shm_perm.mode, ds.shm_perm.__key == 0, ds.shm_cpid == getpid(),
	       ds.shm_lpid == getpid(), ds.shm_perm.uid == geteuid(), ds.shm_atime != 0,
	       ds.shm_dtime != 0, ds.shm_ctime != 0);
}

static unsigned long nattch(int id)
{
	struct shmid_ds ds;
	if (shmctl(id, IPC_STAT, &ds) < 0)
		return 9999;
	return ds.shm_nattch;
}

static int in_proc(int id)
{
	FILE *f = fopen("/proc/sysvipc/shm", "r");
	if (!f)
		return -1;
	char line[512];
	int found = 0, first = 1;
	while (fgets(line, sizeof line, f)) {
		if (first) {
			first = 0;
			continue;
		}
		int key, shmid;
		if (sscanf(line, "%d %d", &key, &shmid) == 2 && shmid == id)
			found = 1;
	}
	fclose(f);
	return found;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "exec-child") == 0) {
		/* After execve: this process has nothing attached any more. */
		printf("after execve: nattch=%lu\n", nattch(atoi(argv[2])));
		return 0;
	}

	/* A fresh private segment. */
	int id = shmget(IPC_PRIVATE, 3 * PG - 100, IPC_CREAT | 0600);
	CHECK("shmget private", id >= 0);
	stat_line("fresh", id);
	CHECK("in /proc/sysvipc/shm", in_proc(id) == 1);

	/* Attach at a kernel-chosen address, twice: the same pages. */
	char *a = shmat(id, NULL, 0);
	CHECK("shmat NULL", a != (char *)-1);
	CHECK("page aligned", ((unsigned long)a & (PG - 1)) == 0);
	for (long i = 0; i < 3 * PG - 100; i++)
		a[i] = (char)(i * 7);
	stat_line("attached once", id);
	char *b = shmat(id, NULL, 0);
	CHECK("second shmat elsewhere", b != (char *)-1 && b != a);
	CHECK("same bytes", memcmp(a, b, 3 * PG - 100) == 0);
	b[5] = 42;
	CHECK("write seen through the other", a[5] == 42);
	printf("nattch with two: %lu\n", nattch(id));
	/* The tail of the last page is there (zeros). */
	CHECK("tail of the last page zero", a[3 * PG - 1] == 0);

	/* Read-only attachment. */
	char *r = shmat(id, NULL, SHM_RDONLY);
	CHECK("SHM_RDONLY attach", r != (char *)-1);
	CHECK("reads", r[5] == 42);
	ERRCALL("mprotect write of a read-only attach", mprotect(r, PG, PROT_READ | PROT_WRITE));
	pid_t c = fork();
	if (c == 0) {
		signal(SIGSEGV, SIG_DFL);
		r[0] = 1;
		_exit(0);
	}
	int st;
	waitpid(c, &st, 0);
	printf("write to SHM_RDONLY: %s\n", wait_status(st));
	ERRCALL("shmdt read-only", shmdt(r));

	/* Chosen addresses. */
	char *hole = mmap(NULL, 16 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(hole, 16 * PG);
	char *f = shmat(id, hole + 4 * PG, 0);
	CHECK("shmat at a chosen address", f == hole + 4 * PG);
	CHECK("chosen sees data", f[5] == 42);
	errno = 0;
	void *m = shmat(id, hole + 8 * PG + 12, 0);
	printf("misaligned without SHM_RND: %s\n", m == (void *)-1 ? errname(errno) : "attached");
	m = shmat(id, hole + 8 * PG + 12, SHM_RND);
	CHECK("SHM_RND rounds down", m == hole + 8 * PG);
	errno = 0;
	m = shmat(id, hole + 4 * PG, 0);
	printf("over an attachment without SHM_REMAP: %s\n", m == (void *)-1 ? errname(errno) : "attached");
	m = shmat(id, hole + 4 * PG, SHM_REMAP);
	CHECK("SHM_REMAP replaces", m == hole + 4 * PG);
	errno = 0;
	m = shmat(id, NULL, SHM_REMAP);
	printf("SHM_REMAP without address: %s\n", m == (void *)-1 ? errname(errno) : "attached");
	printf("nattch with four: %lu\n", nattch(id));
	ERRCALL("shmdt rounded", shmdt(hole + 8 * PG));
	ERRCALL("shmdt chosen", shmdt(hole + 4 * PG));
	ERRCALL("shmdt again", shmdt(hole + 4 * PG));
	ERRCALL("shmdt misaligned", shmdt(a + 1));
	ERRCALL("shmdt of no attachment", shmdt(hole));
	printf("nattch back to two: %lu\n", nattch(id));

	/* munmap of a whole attachment detaches it too; a partial one splits it (Linux counts
	 * each VMA). */
	char *u = shmat(id, NULL, 0);
	printf("nattch three: %lu\n", nattch(id));
	munmap(u + PG, PG);
	printf("after punching a hole: %lu\n", nattch(id));
	munmap(u, 3 * PG);
	printf("after munmap of the rest: %lu\n", nattch(id));

	/* fork inherits attachments; the child's exit detaches them. */
	fflush(stdout);
	int pfd[2];
	if (pipe(pfd))
		return 1;
	c = fork();
	if (c == 0) {
		close(pfd[0]);
		char n = (char)nattch(id);
		a[100] = 99;
		if (write(pfd[1], &n, 1) != 1)
			_exit(1);
		pause();
		_exit(0);
	}
	close(pfd[1]);
	char n = 0;
	if (read(pfd[0], &n, 1) != 1)
		return 1;
	printf("nattch seen by the child: %d\n", n);
	printf("nattch while the child lives: %lu\n", nattch(id));
	CHECK("child's write seen", a[100] == 99);
	kill(c, SIGKILL);
	waitpid(c, &st, 0);
	printf("nattch after the child died: %lu\n", nattch(id));

	/* execve detaches. */
	fflush(stdout);
	c = fork();
	if (c == 0) {
		char ids[32];
		snprintf(ids, sizeof ids, "%d", id);
		execl("/proc/self/exe", argv[0], "exec-child", ids, (char *)NULL);
		_exit(127);
	}
	waitpid(c, &st, 0);
	printf("exec child: %s\n", wait_status(st));

	/* shmdt records the detach. */
	ERRCALL("shmdt b", shmdt(b));
	stat_line("after shmdt", id);

	/* IPC_SET, SHM_LOCK. */
	struct shmid_ds ds;
	shmctl(id, IPC_STAT, &ds);
	ds.shm_perm.mode = 0640 | 0100000;
	ERRCALL("IPC_SET", shmctl(id, IPC_SET, &ds));
	shmctl(id, IPC_STAT, &ds);
	printf("mode after IPC_SET: %o\n", (unsigned)ds.shm_perm.mode);
	ERRCALL("SHM_LOCK", shmctl(id, SHM_LOCK, NULL));
	shmctl(id, IPC_STAT, &ds);
	printf("locked flag: %d\n", (ds.shm_perm.mode & SHM_LOCKED_BIT) != 0);
	ERRCALL("SHM_UNLOCK", shmctl(id, SHM_UNLOCK, NULL));
	shmctl(id, IPC_STAT, &ds);
	printf("locked flag: %d\n", (ds.shm_perm.mode & SHM_LOCKED_BIT) != 0);

	/* IPC_INFO, SHM_INFO, SHM_STAT. */
	struct shminfo info;
	int maxidx = shmctl(0, IPC_INFO, (struct shmid_ds *)&info);
	CHECK("IPC_INFO", maxidx >= 0);
	printf("shmmni=%lu shmmin=%lu shmseg=%lu\n", info.shmmni, info.shmmin, info.shmseg);
	struct shm_info sinfo;
	int maxidx2 = shmctl(0, SHM_INFO, (struct shmid_ds *)&sinfo);
	CHECK("SHM_INFO", maxidx2 == maxidx && sinfo.used_ids >= 1 && sinfo.shm_tot >= 3);
	int found = 0;
	for (int i = 0; i <= maxidx; i++) {
		struct shmid_ds s2;
		int got = shmctl(i, SHM_STAT, &s2);
		if (got == id)
			found = 1;
		int got2 = shmctl(i, SHM_STAT_ANY, &s2);
		if (got2 != got)
			found = -1;
	}
	printf("SHM_STAT finds it: %d\n", found);

	/* IPC_RMID with attachments left: still usable until the last detach. */
	ERRCALL("IPC_RMID attached", shmctl(id, IPC_RMID, NULL));
	shmctl(id, IPC_STAT, &ds);
	printf("dest flag: %d key now private: %d nattch=%lu\n", (ds.shm_perm.mode & SHM_DEST_BIT) != 0,
	       ds.shm_perm.__key == 0, (unsigned long)ds.shm_nattch);
	a[0] = 5;
	CHECK("memory still usable", a[0] == 5 && a[100] == 99);
	CHECK("still in /proc/sysvipc/shm", in_proc(id) == 1);
	ERRCALL("shmdt last", shmdt(a));
	ERRCALL("IPC_STAT after last detach", shmctl(id, IPC_STAT, &ds));
	CHECK("gone from /proc/sysvipc/shm", in_proc(id) == 0);

	/* A keyed segment outlives its creator. */
	key_t key = (key_t)(0x5a000000 | (getpid() & 0xffffff));
	fflush(stdout);
	c = fork();
	if (c == 0) {
		int cid = shmget(key, 8192, IPC_CREAT | IPC_EXCL | 0600);
		char *p = shmat(cid, NULL, 0);
		strcpy(p, "left by the child");
		_exit(0);
	}
	waitpid(c, &st, 0);
	int kid = shmget(key, 0, 0);
	CHECK("found by key", kid >= 0);
	char *kp = shmat(kid, NULL, SHM_RDONLY);
	printf("child's segment says: %s\n", kp == (char *)-1 ? "?" : kp);
	shmctl(kid, IPC_STAT, &ds);
	printf("keyed: nattch=%lu segsz=%lu cpid_child=%d\n", (unsigned long)ds.shm_nattch,
	       (unsigned long)ds.shm_segsz, ds.shm_cpid == c);
	ERRCALL("IPC_CREAT|IPC_EXCL existing", shmget(key, 8192, IPC_CREAT | IPC_EXCL | 0600));
	ERRCALL("existing, larger size", shmget(key, 3 * PG, 0600));
	CHECK("existing, smaller size", shmget(key, 100, 0600) == kid);
	CHECK("existing with IPC_CREAT", shmget(key, 100, IPC_CREAT | 0600) == kid);
	ERRCALL("IPC_RMID keyed", shmctl(kid, IPC_RMID, NULL));
	ERRCALL("key gone once removed", shmget(key, 100, 0600));
	shmdt(kp);

	/* Permissions: another user. */
	int pid_ = shmget(IPC_PRIVATE, PG, IPC_CREAT | 0600);
	int pub = shmget(IPC_PRIVATE, PG, IPC_CREAT | 0604);
	fflush(stdout);
	c = fork();
	if (c == 0) {
		if (setgid(65534) || setuid(65534)) {
			printf("cannot drop privileges\n");
			_exit(0);
		}
		errno = 0;
		void *p = shmat(pid_, NULL, 0);
		printf("other user, mode 600: %s\n", p == (void *)-1 ? errname(errno) : "attached");
		p = shmat(pub, NULL, 0);
		printf("other user, mode 604 rw: %s\n", p == (void *)-1 ? errname(errno) : "attached");
		p = shmat(pub, NULL, SHM_RDONLY);
		printf("other user, mode 604 ro: %s\n", p == (void *)-1 ? errname(errno) : "attached");
		ERRCALL("other user IPC_STAT 600", shmctl(pid_, IPC_STAT, &ds));
		ERRCALL("other user IPC_RMID", shmctl(pid_, IPC_RMID, NULL));
		ERRCALL("other user SHM_LOCK", shmctl(pub, SHM_LOCK, NULL));
		_exit(0);
	}
	waitpid(c, &st, 0);
	shmctl(pid_, IPC_RMID, NULL);
	shmctl(pub, IPC_RMID, NULL);

	/* Bad arguments. */
	ERRCALL("size 0", shmget(IPC_PRIVATE, 0, 0600));
	ERRCALL("absent key", shmget(key, 100, 0600));
	ERRCALL("shmat bad id", (long)shmat(0x7ffffff0, NULL, 0));
	ERRCALL("shmat negative id", (long)shmat(-1, NULL, 0));
	ERRCALL("shmctl bad cmd", shmctl(0, 99, &ds));
	ERRCALL("shmctl negative id", shmctl(-5, IPC_STAT, &ds));
	ERRCALL("shmctl removed id", shmctl(id, IPC_STAT, &ds));
	int e = shmget(IPC_PRIVATE, PG, IPC_CREAT | 0600);
	ERRCALL("IPC_STAT to a bad pointer", shmctl(e, IPC_STAT, (struct shmid_ds *)8));
	ERRCALL("IPC_SET from a bad pointer", shmctl(e, IPC_SET, (struct shmid_ds *)8));
	ERRCALL("IPC_INFO to a bad pointer", shmctl(0, IPC_INFO, (struct shmid_ds *)8));
	ERRCALL("huge size", shmget(IPC_PRIVATE, (size_t)-1, 0600));
	shmctl(e, IPC_RMID, NULL);

	/* Many segments made and removed: nothing leaks. */
	int okall = 1;
	for (int i = 0; i < 200; i++) {
		int s = shmget(IPC_PRIVATE, 65536, IPC_CREAT | 0600);
		char *p = shmat(s, NULL, 0);
		if (s < 0 || p == (char *)-1) {
			okall = 0;
			break;
		}
		memset(p, i, 65536);
		shmctl(s, IPC_RMID, NULL);
		shmdt(p);
		if (shmctl(s, IPC_STAT, &ds) == 0)
			okall = 0;
	}
	CHECK("200 segments made and destroyed", okall);
	return 0;
}
