/* System V semaphores: semget, semop and semtimedop (atomic multi-operation sets,
 * IPC_NOWAIT, wait-for-zero, timeouts, SEM_UNDO applied at exit and clamped, EINTR, EIDRM),
 * semctl (GETVAL/SETVAL/GETALL/SETALL/GETPID/GETNCNT/GETZCNT/IPC_STAT/IPC_SET/IPC_RMID/
 * IPC_INFO/SEM_INFO/SEM_STAT/SEM_STAT_ANY), permissions and bad arguments. Identifiers,
 * pids and times are only compared. Every set is removed. */
#include "conf.h"
#include <signal.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <time.h>

#ifndef SEM_STAT_ANY
#define SEM_STAT_ANY 20
#endif

union semun {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
	struct seminfo *__buf;
};

static int op1(int id, unsigned short num, short op, short flg)
{
	struct sembuf b = {num, op, flg};
	return semop(id, &b, 1);
}

static void vals(const char *label, int id)
{
	unsigned short v[8] = {0};
	union semun u;
	u.array = v;
	if (semctl(id, 0, GETALL, u) < 0) {
		printf("%s: GETALL %s\n", label, errname(errno));
		return;
	}
	struct semid_ds ds;
	u.buf = &ds;
	semctl(id, 0, IPC_STAT, u);
	printf("%s:", label);
	for (unsigned long i = 0; i < ds.sem_nsems && i < 8; i++)
		printf(" %u", v[i]);
	printf("\n");
}

static void wait_count(int id, int num, int cmd, int want)
{
	for (int i = 0; i < 2000; i++) {
		if (semctl(id, num, cmd) == want)
			return;
		usleep(5000);
	}
}

static volatile int got;
static void on_alarm(int s)
{
	(void)s;
	got = 1;
}

int main(void)
{
	union semun u;
	struct semid_ds ds;
	int id = semget(IPC_PRIVATE, 3, IPC_CREAT | 0600);
	CHECK("semget", id >= 0);
	u.buf = &ds;
	semctl(id, 0, IPC_STAT, u);
	printf("nsems=%lu mode=%o otime=%d ctime=%d uid_me=%d\n", (unsigned long)ds.sem_nsems,
	       (unsigned)ds.sem_perm.mode, ds.sem_otime != 0, ds.sem_ctime != 0,
	       ds.sem_perm.uid == geteuid());
	vals("fresh", id);

	/* SETVAL, SETALL, GETVAL, GETPID. */
	u.val = 5;
	ERRCALL("SETVAL 5", semctl(id, 1, SETVAL, u));
	printf("GETVAL=%d GETPID_me=%d GETPID_unset=%d\n", semctl(id, 1, GETVAL),
	       semctl(id, 1, GETPID) == getpid(), semctl(id, 0, GETPID));
	u.val = -1;
	ERRCALL("SETVAL -1", semctl(id, 1, SETVAL, u));
	u.val = 32768;
	ERRCALL("SETVAL 32768", semctl(id, 1, SETVAL, u));
	u.val = 32767;
	ERRCALL("SETVAL 32767", semctl(id, 1, SETVAL, u));
	unsigned short set[3] = {1, 2, 3};
	u.array = set;
	ERRCALL("SETALL", semctl(id, 0, SETALL, u));
	vals("after SETALL", id);
	unsigned short bad[3] = {1, 40000, 3};
	u.array = bad;
	ERRCALL("SETALL out of range", semctl(id, 0, SETALL, u));
	vals("unchanged", id);

	/* semop: all or nothing. */
	ERRCALL("dec 0 by 1", op1(id, 0, -1, 0));
	ERRCALL("dec 0 again, IPC_NOWAIT", op1(id, 0, -1, IPC_NOWAIT));
	ERRCALL("wait for zero on 0", op1(id, 0, 0, 0));
	ERRCALL("wait for zero on 1, IPC_NOWAIT", op1(id, 1, 0, IPC_NOWAIT));
	struct sembuf multi[3] = {{1, -1, 0}, {2, +4, 0}, {0, -1, IPC_NOWAIT}};
	ERRCALL("three ops, the last would block", semop(id, multi, 3));
	vals("nothing applied", id);
	multi[2].sem_op = +1;
	ERRCALL("three ops", semop(id, multi, 3));
	vals("all applied", id);
	struct sembuf same[2] = {{2, -7, 0}, {2, +1, 0}};
	ERRCALL("the same semaphore twice, in order", semop(id, same, 2));
	vals("after", id);
	u.val = 32767;
	semctl(id, 0, SETVAL, u);
	ERRCALL("past SEMVMX", op1(id, 0, 1, 0));
	u.val = 0;
	semctl(id, 0, SETVAL, u);
	u.buf = &ds;
	semctl(id, 0, IPC_STAT, u);
	printf("otime set: %d\n", ds.sem_otime != 0);

	/* Timeouts. */
	struct sembuf dec = {0, -1, 0};
	struct timespec ts = {0, 50000000};
	ERRCALL("semtimedop times out", semtimedop(id, &dec, 1, &ts));
	ts.tv_nsec = 1000000000;
	ERRCALL("semtimedop bad nsec", semtimedop(id, &dec, 1, &ts));
	ts.tv_sec = -1;
	ts.tv_nsec = 0;
	ERRCALL("semtimedop negative", semtimedop(id, &dec, 1, &ts));
	ERRCALL("semtimedop bad pointer", semtimedop(id, &dec, 1, (struct timespec *)8));
	ts.tv_sec = 0;
	struct sembuf inc = {0, 1, 0};
	ERRCALL("semtimedop zero timeout, no wait", semtimedop(id, &inc, 1, &ts));
	u.val = 0;
	semctl(id, 0, SETVAL, u);

	/* A waiter in another process: GETNCNT, then woken. */
	fflush(stdout);
	pid_t c = fork();
	if (c == 0)
		_exit(op1(id, 0, -2, 0) == 0 ? 0 : 1);
	wait_count(id, 0, GETNCNT, 1);
	printf("GETNCNT with a waiter: %d GETZCNT: %d\n", semctl(id, 0, GETNCNT), semctl(id, 0, GETZCNT));
	op1(id, 0, 1, 0);
	usleep(50000);
	printf("one is not enough: ncnt=%d val=%d\n", semctl(id, 0, GETNCNT), semctl(id, 0, GETVAL));
	op1(id, 0, 1, 0);
	int st;
	waitpid(c, &st, 0);
	printf("waiter: %s val=%d ncnt=%d pid_child=%d\n", wait_status(st), semctl(id, 0, GETVAL),
	       semctl(id, 0, GETNCNT), semctl(id, 0, GETPID) == c);

	/* Wait for zero. */
	u.val = 1;
	semctl(id, 1, SETVAL, u);
	fflush(stdout);
	c = fork();
	if (c == 0)
		_exit(op1(id, 1, 0, 0) == 0 ? 0 : 1);
	wait_count(id, 1, GETZCNT, 1);
	printf("GETZCNT with a waiter: %d\n", semctl(id, 1, GETZCNT));
	op1(id, 1, -1, 0);
	waitpid(c, &st, 0);
	printf("zero waiter: %s\n", wait_status(st));

	/* SEM_UNDO: undone at exit. */
	u.val = 10;
	semctl(id, 2, SETVAL, u);
	fflush(stdout);
	c = fork();
	if (c == 0) {
		op1(id, 2, 5, SEM_UNDO);
		op1(id, 2, -2, SEM_UNDO);
		printf("child sees %d\n", semctl(id, 2, GETVAL));
		fflush(stdout);
		_exit(0);
	}
	waitpid(c, &st, 0);
	printf("after the child's exit: %d pid_child=%d\n", semctl(id, 2, GETVAL), semctl(id, 2, GETPID) == c);

	/* SEM_UNDO clamped at 0; SETVAL drops adjustments. */
	int p1[2], p2[2];
	if (pipe(p1) || pipe(p2))
		return 1;
	fflush(stdout);
	c = fork();
	if (c == 0) {
		char x;
		op1(id, 2, 3, SEM_UNDO);
		op1(id, 0, 4, SEM_UNDO);
		if (write(p1[1], "a", 1) != 1 || read(p2[0], &x, 1) != 1)
			_exit(1);
		_exit(0);
	}
	char x;
	if (read(p1[0], &x, 1) != 1)
		return 1;
	op1(id, 2, -13, 0);
	u.val = 1;
	semctl(id, 0, SETVAL, u);
	if (write(p2[1], "b", 1) != 1)
		return 1;
	waitpid(c, &st, 0);
	printf("clamped: %d, after SETVAL: %d\n", semctl(id, 2, GETVAL), semctl(id, 0, GETVAL));

	/* Threads of one process share the adjustments; fork doesn't inherit them. */
	op1(id, 2, 2, SEM_UNDO);
	fflush(stdout);
	c = fork();
	if (c == 0)
		_exit(0);
	waitpid(c, &st, 0);
	printf("a child doesn't inherit adjustments: %d\n", semctl(id, 2, GETVAL));
	op1(id, 2, -2, SEM_UNDO);

	/* Signals: EINTR, SA_RESTART or not. */
	for (int restart = 0; restart < 2; restart++) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_alarm;
		sa.sa_flags = restart ? SA_RESTART : 0;
		sigaction(SIGALRM, &sa, NULL);
		got = 0;
		alarm(1);
		errno = 0;
		int r = op1(id, 0, -5, 0);
		printf("semop interrupted (SA_RESTART=%d): %d %s handler=%d\n", restart, r, errname(errno), got);
	}
	printf("no waiter left: %d\n", semctl(id, 0, GETNCNT));

	/* IPC_SET. */
	u.buf = &ds;
	semctl(id, 0, IPC_STAT, u);
	ds.sem_perm.mode = 0644;
	ERRCALL("IPC_SET", semctl(id, 0, IPC_SET, u));
	semctl(id, 0, IPC_STAT, u);
	printf("mode after IPC_SET: %o\n", (unsigned)ds.sem_perm.mode);

	/* Keys and limits. */
	key_t key = (key_t)(0x53000000 | (getpid() & 0xffffff));
	int k = semget(key, 2, IPC_CREAT | IPC_EXCL | 0600);
	CHECK("keyed", k >= 0);
	CHECK("fewer semaphores", semget(key, 1, 0) == k);
	CHECK("nsems 0 for an existing set", semget(key, 0, 0) == k);
	ERRCALL("more semaphores", semget(key, 3, 0));
	ERRCALL("IPC_EXCL", semget(key, 2, IPC_CREAT | IPC_EXCL | 0600));
	ERRCALL("create with 0", semget(IPC_PRIVATE, 0, IPC_CREAT | 0600));
	ERRCALL("create with 32001", semget(IPC_PRIVATE, 32001, IPC_CREAT | 0600));
	ERRCALL("negative nsems", semget(IPC_PRIVATE, -1, IPC_CREAT | 0600));

	/* Permissions. */
	fflush(stdout);
	c = fork();
	if (c == 0) {
		if (setgid(65534) || setuid(65534)) {
			printf("cannot drop privileges\n");
			_exit(0);
		}
		ERRCALL("other user GETVAL of 600", semctl(k, 0, GETVAL));
		ERRCALL("other user GETVAL of 644", semctl(id, 0, GETVAL) < 0 ? -1 : 0);
		ERRCALL("other user semop of 644", op1(id, 0, 1, IPC_NOWAIT));
		ERRCALL("other user wait-for-zero of 644", op1(id, 1, 0, IPC_NOWAIT));
		u.val = 3;
		ERRCALL("other user SETVAL", semctl(id, 0, SETVAL, u));
		ERRCALL("other user IPC_RMID", semctl(id, 0, IPC_RMID));
		_exit(0);
	}
	waitpid(c, &st, 0);

	/* Info. */
	struct seminfo si;
	u.__buf = &si;
	int maxidx = semctl(0, 0, IPC_INFO, u);
	CHECK("IPC_INFO", maxidx >= 0);
	printf("semmap=%d semmni=%d semmns=%d semmnu=%d semmsl=%d semopm=%d semume=%d semusz=%d semvmx=%d semaem=%d\n",
	       si.semmap, si.semmni, si.semmns, si.semmnu, si.semmsl, si.semopm, si.semume, si.semusz,
	       si.semvmx, si.semaem);
	CHECK("SEM_INFO", semctl(0, 0, SEM_INFO, u) == maxidx && si.semusz >= 2 && si.semaem >= 5);
	int found = 0;
	for (int i = 0; i <= maxidx; i++) {
		u.buf = &ds;
		if (semctl(i, 0, SEM_STAT, u) == k)
			found++;
		if (semctl(i, 0, SEM_STAT_ANY, u) == k)
			found++;
	}
	printf("SEM_STAT and SEM_STAT_ANY find it: %d\n", found);

	/* EIDRM for a waiter. */
	int ready[2];
	if (pipe(ready))
		return 1;
	fflush(stdout);
	c = fork();
	if (c == 0) {
		close(ready[0]);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		errno = 0;
		int r = op1(k, 0, -1, 0);
		printf("waiter after IPC_RMID: %d %s\n", r, errname(errno));
		fflush(stdout);
		_exit(0);
	}
	close(ready[1]);
	if (read(ready[0], &x, 1) != 1)
		return 1;
	wait_count(k, 0, GETNCNT, 1);
	int rm = semctl(k, 0, IPC_RMID);
	waitpid(c, &st, 0);
	printf("IPC_RMID with a waiter: %d\n", rm);

	/* Bad arguments. */
	struct sembuf b0 = {0, 1, 0};
	ERRCALL("semop nsops 0", semop(id, &b0, 0));
	static struct sembuf many[501];
	ERRCALL("semop 501 ops", semop(id, many, 501));
	struct sembuf far = {3, 1, 0};
	ERRCALL("semop sem_num past the end", semop(id, &far, 1));
	ERRCALL("semop bad pointer", semop(id, (struct sembuf *)8, 1));
	ERRCALL("semop negative id", semop(-1, &b0, 1));
	ERRCALL("semop removed id", semop(k, &b0, 1));
	ERRCALL("GETVAL semnum 3", semctl(id, 3, GETVAL));
	ERRCALL("GETVAL semnum -1", semctl(id, -1, GETVAL));
	ERRCALL("bad cmd", semctl(id, 0, 99));
	u.array = (unsigned short *)8;
	ERRCALL("GETALL to a bad pointer", semctl(id, 0, GETALL, u));
	ERRCALL("SETALL from a bad pointer", semctl(id, 0, SETALL, u));
	u.buf = (struct semid_ds *)8;
	ERRCALL("IPC_STAT to a bad pointer", semctl(id, 0, IPC_STAT, u));

	ERRCALL("IPC_RMID", semctl(id, 0, IPC_RMID));
	ERRCALL("GETVAL removed", semctl(id, 0, GETVAL));
	return 0;
}
