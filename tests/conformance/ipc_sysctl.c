/* The System V IPC limits of /proc/sys/kernel (shmmax, shmall, shmmni, msgmax, msgmnb,
 * msgmni, sem): per IPC namespace, readable by all, written by root, applied by shmget,
 * msgsnd, msgget (a new queue's qbytes), semget and semop, reported by IPC_INFO. The
 * program first makes an IPC namespace of its own (unshare(CLONE_NEWIPC), as root), so that
 * natively it changes only that namespace's limits, never the host's; a new namespace
 * starts at Linux's defaults on both sides. Every object is removed. */
#include "conf.h"
#include <fcntl.h>
#include <sched.h>
#include <sys/ipc.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/wait.h>

static const char *files[] = {"shmmax", "shmall", "shmmni", "msgmax", "msgmnb", "msgmni", "sem"};

#define SYSCTL_DIR "/proc/sys/kernel"
#include "sysctl.h"

struct m {
	long mtype;
	char text[256];
};

int main(void)
{
	enter_ipc_namespace_showing(files, sizeof files / sizeof *files);

	/* Shared memory: the largest segment, and the number of segments. */
	put("shmmax", "1048576\n");
	show("shmmax");
	errno = 0;
	int big = shmget(IPC_PRIVATE, 2 << 20, 0600);
	printf("shmget 2 MiB: %s\n", big < 0 ? errname(errno) : "made");
	int seg = shmget(IPC_PRIVATE, 1 << 20, 0600);
	printf("shmget 1 MiB: %s\n", seg < 0 ? errname(errno) : "made");
	struct shminfo si;
	if (shmctl(0, IPC_INFO, (struct shmid_ds *)&si) >= 0)
		printf("IPC_INFO shmmax=%lu shmmni=%lu\n", si.shmmax, si.shmmni);
	put("shmmni", "1");
	errno = 0;
	int seg2 = shmget(IPC_PRIVATE, 4096, 0600);
	printf("shmget past shmmni: %s\n", seg2 < 0 ? errname(errno) : "made");
	if (seg >= 0)
		shmctl(seg, IPC_RMID, NULL);
	if (seg2 >= 0)
		shmctl(seg2, IPC_RMID, NULL);

	/* Messages: the largest message, and a new queue's capacity. */
	put("msgmax", "100");
	put("msgmnb", "300");
	int q = msgget(IPC_PRIVATE, 0600);
	struct msqid_ds ds;
	if (q >= 0 && msgctl(q, IPC_STAT, &ds) == 0)
		printf("new queue qbytes=%lu\n", (unsigned long)ds.msg_qbytes);
	struct m msg = {.mtype = 1};
	memset(msg.text, 'x', sizeof msg.text);
	errno = 0;
	printf("msgsnd 101 bytes: %s\n", msgsnd(q, &msg, 101, IPC_NOWAIT) < 0 ? errname(errno) : "sent");
	printf("msgsnd 100 bytes: %s\n", msgsnd(q, &msg, 100, IPC_NOWAIT) < 0 ? errname(errno) : "sent");
	struct msginfo mi;
	if (msgctl(0, IPC_INFO, (struct msqid_ds *)&mi) >= 0)
		printf("IPC_INFO msgmax=%d msgmnb=%d msgmni=%d msgpool=%d msgmap=%d msgtql=%d\n",
		       mi.msgmax, mi.msgmnb, mi.msgmni, mi.msgpool, mi.msgmap, mi.msgtql);
	if (q >= 0)
		msgctl(q, IPC_RMID, NULL);

	/* Semaphores: per set, per semop call. */
	put("sem", "10 100 5 8");
	show("sem");
	errno = 0;
	int s11 = semget(IPC_PRIVATE, 11, 0600);
	printf("semget 11: %s\n", s11 < 0 ? errname(errno) : "made");
	int s10 = semget(IPC_PRIVATE, 10, 0600);
	printf("semget 10: %s\n", s10 < 0 ? errname(errno) : "made");
	struct sembuf ops[6];
	for (int i = 0; i < 6; i++)
		ops[i] = (struct sembuf){.sem_num = (unsigned short)i, .sem_op = 1, .sem_flg = 0};
	errno = 0;
	printf("semop 6 ops: %s\n", semop(s10, ops, 6) < 0 ? errname(errno) : "done");
	printf("semop 5 ops: %s\n", semop(s10, ops, 5) < 0 ? errname(errno) : "done");
	struct seminfo sinfo;
	if (semctl(0, 0, IPC_INFO, &sinfo) >= 0)
		printf("IPC_INFO semmap=%d semmni=%d semmns=%d semmnu=%d semmsl=%d semopm=%d semume=%d\n",
		       sinfo.semmap, sinfo.semmni, sinfo.semmns, sinfo.semmnu, sinfo.semmsl,
		       sinfo.semopm, sinfo.semume);
	if (s10 >= 0)
		semctl(s10, 0, IPC_RMID);
	if (s11 >= 0)
		semctl(s11, 0, IPC_RMID);

	/* What a write may not do. */
	put("msgmax", "abc");
	put("msgmax", "-1");
	put("msgmni", "40000");
	put("sem", "1 2 3 4 5");
	show("sem");
	put("sem", "5 6 7 40000");
	show("sem");
	put("msgmax", "7 8");
	show("msgmax");
	put("msgmnb", "0x20");
	show("msgmnb");
	put("msgmnb", "010");
	show("msgmnb");
	put("msgmnb", "+5");
	put("msgmnb", "5\r");
	show("msgmnb");

	/* An open file writes the namespace it was opened in, even after the opener moves. */
	int old_ns = open("/proc/sys/kernel/msgmax", O_WRONLY);
	if (unshare(CLONE_NEWIPC) < 0)
		printf("unshare again: %s\n", errname(errno));
	ssize_t w = write(old_ns, "55", 2);
	printf("write through the old namespace's file: %s\n", w < 0 ? errname(errno) : "ok");
	close(old_ns);
	show("msgmax");
	fflush(stdout);
	pid_t child = fork();
	if (child == 0) {
		if (setuid(1000) < 0)
			_exit(2);
		put("shmmax", "4096");
		show("shmmax");
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(child, &st, 0);
	return 0;
}
