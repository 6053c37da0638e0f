/* System V message queues: msgget, msgsnd, msgrcv (types 0, >0, <0, MSG_EXCEPT,
 * MSG_NOERROR, IPC_NOWAIT, MSG_COPY), msgctl (IPC_STAT/SET/RMID/INFO, MSG_INFO, MSG_STAT),
 * blocking senders and receivers between processes, a signal interrupting a wait (EINTR,
 * also under SA_RESTART), EIDRM for a waiter whose queue is removed, permissions and bad
 * arguments. Identifiers, pids and times are only compared. Every queue is removed. */
#include "conf.h"
#include <signal.h>
#include <sys/ipc.h>
#include <sys/msg.h>

#ifndef MSG_COPY
#define MSG_COPY 040000
#endif
#ifndef MSG_EXCEPT
#define MSG_EXCEPT 020000
#endif
#ifndef MSG_STAT_ANY
#define MSG_STAT_ANY 13
#endif

struct m {
	long mtype;
	char text[8200];
};

static int snd(int q, long type, const char *s, int flags)
{
	struct m msg;
	msg.mtype = type;
	size_t n = strlen(s);
	memcpy(msg.text, s, n);
	return msgsnd(q, &msg, n, flags);
}

static void rcv(const char *label, int q, size_t size, long type, int flags)
{
	struct m msg;
	memset(&msg, 0, sizeof msg);
	errno = 0;
	ssize_t n = msgrcv(q, &msg, size, type, flags);
	if (n < 0)
		printf("%s: %s\n", label, errname(errno));
	else
		printf("%s: type=%ld len=%zd '%.*s'\n", label, msg.mtype, n, (int)n, msg.text);
}

static void stat_line(const char *label, int q)
{
	struct msqid_ds ds;
	if (msgctl(q, IPC_STAT, &ds) < 0) {
		printf("%s: %s\n", label, errname(errno));
		return;
	}
	printf("%s: qnum=%lu cbytes=%lu qbytes=%lu mode=%o lspid_me=%d lrpid_me=%d stime=%d rtime=%d ctime=%d\n",
	       label, (unsigned long)ds.msg_qnum, (unsigned long)ds.__msg_cbytes,
	       (unsigned long)ds.msg_qbytes, (unsigned)ds.msg_perm.mode, ds.msg_lspid == getpid(),
	       ds.msg_lrpid == getpid(), ds.msg_stime != 0, ds.msg_rtime != 0, ds.msg_ctime != 0);
}

static volatile int got_signal;
static void on_alarm(int sig)
{
	(void)sig;
	got_signal = 1;
}

int main(void)
{
	int q = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	CHECK("msgget", q >= 0);
	stat_line("fresh", q);

	/* Types: FIFO within a type, selection by type. */
	snd(q, 3, "three-a", 0);
	snd(q, 1, "one", 0);
	snd(q, 3, "three-b", 0);
	snd(q, 2, "two", 0);
	snd(q, 5, "five", 0);
	stat_line("five sent", q);
	rcv("MSG_COPY 0", q, 100, 0, MSG_COPY | IPC_NOWAIT);
	rcv("MSG_COPY 2", q, 100, 2, MSG_COPY | IPC_NOWAIT);
	rcv("MSG_COPY 9", q, 100, 9, MSG_COPY | IPC_NOWAIT);
	rcv("MSG_COPY without IPC_NOWAIT", q, 100, 0, MSG_COPY);
	rcv("MSG_COPY with MSG_EXCEPT", q, 100, 0, MSG_COPY | IPC_NOWAIT | MSG_EXCEPT);
	rcv("MSG_COPY too small", q, 2, 0, MSG_COPY | IPC_NOWAIT);
	stat_line("after copies", q);
	rcv("type 3", q, 100, 3, 0);
	rcv("type <= 4 (lowest first)", q, 100, -4, 0);
	rcv("except 3", q, 100, 3, MSG_EXCEPT);
	rcv("type 0 (first)", q, 100, 0, 0);
	rcv("too small", q, 3, 0, IPC_NOWAIT);
	rcv("MSG_NOERROR truncates", q, 3, 0, MSG_NOERROR);
	rcv("empty, IPC_NOWAIT", q, 100, 0, IPC_NOWAIT);
	rcv("type 7 absent", q, 100, 7, IPC_NOWAIT);
	stat_line("drained", q);

	/* Zero-length and maximum-size messages. */
	CHECK("zero-length send", snd(q, 4, "", 0) == 0);
	rcv("zero-length", q, 100, 0, 0);
	struct m big;
	big.mtype = 1;
	memset(big.text, 'x', 8192);
	ERRCALL("msgmax bytes", msgsnd(q, &big, 8192, 0));
	ERRCALL("msgmax+1 bytes", msgsnd(q, &big, 8193, 0));
	ssize_t bn = msgrcv(q, &big, 8192, 0, 0);
	printf("big received: %zd\n", bn);

	/* A full queue: IPC_NOWAIT, then a blocked sender released by a receiver. */
	int sent = 0;
	while (msgsnd(q, &big, 4096, IPC_NOWAIT) == 0)
		sent++;
	printf("4096-byte messages until full: %d (%s)\n", sent, errname(errno));
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		/* Blocks until the parent takes one. */
		int r = msgsnd(q, &big, 4096, 0);
		_exit(r == 0 ? 0 : 1);
	}
	usleep(100000);
	stat_line("sender blocked", q);
	ssize_t n1 = msgrcv(q, &big, 8192, 0, 0);
	int st;
	waitpid(c, &st, 0);
	printf("blocked sender: %s after a receive of %zd\n", wait_status(st), n1);
	struct msqid_ds ds;
	msgctl(q, IPC_STAT, &ds);
	printf("qnum=%lu\n", (unsigned long)ds.msg_qnum);
	while (msgrcv(q, &big, 8192, 0, IPC_NOWAIT) >= 0)
		;

	/* A blocked receiver woken by a sender in another process, by type. */
	fflush(stdout);
	c = fork();
	if (c == 0) {
		struct m msg;
		ssize_t n = msgrcv(q, &msg, 100, 42, 0);
		printf("child received type %ld len %zd\n", msg.mtype, n);
		fflush(stdout);
		_exit(n == 5 ? 0 : 1);
	}
	usleep(100000);
	snd(q, 41, "other", 0);
	snd(q, 42, "hello", 0);
	waitpid(c, &st, 0);
	printf("receiver: %s\n", wait_status(st));
	rcv("left behind", q, 100, 0, IPC_NOWAIT);

	/* A signal interrupts a wait, with and without SA_RESTART: EINTR both times. */
	for (int restart = 0; restart < 2; restart++) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_alarm;
		sa.sa_flags = restart ? SA_RESTART : 0;
		sigaction(SIGALRM, &sa, NULL);
		got_signal = 0;
		alarm(1);
		struct m msg;
		errno = 0;
		ssize_t r = msgrcv(q, &msg, 100, 0, 0);
		printf("msgrcv interrupted (SA_RESTART=%d): %zd %s handler=%d\n", restart, r,
		       errname(errno), got_signal);
	}

	/* EIDRM: the queue removed under a waiting receiver. */
	int q2 = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	int ready[2];
	if (pipe(ready))
		return 1;
	fflush(stdout);
	c = fork();
	if (c == 0) {
		struct m msg;
		close(ready[0]);
		if (write(ready[1], "r", 1) != 1)
			_exit(1);
		errno = 0;
		ssize_t r = msgrcv(q2, &msg, 100, 0, 0);
		printf("waiter after IPC_RMID: %zd %s\n", r, errname(errno));
		fflush(stdout);
		_exit(0);
	}
	close(ready[1]);
	char rb;
	if (read(ready[0], &rb, 1) != 1)
		return 1;
	usleep(300000);
	int rm = msgctl(q2, IPC_RMID, NULL);
	waitpid(c, &st, 0);
	printf("IPC_RMID with a waiter: %d\n", rm);

	/* IPC_SET: qbytes and mode. */
	msgctl(q, IPC_STAT, &ds);
	ds.msg_qbytes = 100;
	ds.msg_perm.mode = 0640;
	ERRCALL("IPC_SET qbytes 100", msgctl(q, IPC_SET, &ds));
	stat_line("after IPC_SET", q);
	ERRCALL("101 bytes into 100", msgsnd(q, &big, 101, IPC_NOWAIT));
	ERRCALL("100 bytes into 100", msgsnd(q, &big, 100, IPC_NOWAIT));
	ERRCALL("one more", msgsnd(q, &big, 0, IPC_NOWAIT));

	/* Keys. */
	key_t key = (key_t)(0x4d000000 | (getpid() & 0xffffff));
	int kq = msgget(key, IPC_CREAT | IPC_EXCL | 0600);
	CHECK("keyed create", kq >= 0);
	CHECK("same key", msgget(key, 0) == kq);
	ERRCALL("IPC_EXCL again", msgget(key, IPC_CREAT | IPC_EXCL | 0600));
	ERRCALL("absent key", msgget(key + 1, 0600));

	/* Permissions. */
	fflush(stdout);
	c = fork();
	if (c == 0) {
		if (setgid(65534) || setuid(65534)) {
			printf("cannot drop privileges\n");
			_exit(0);
		}
		ERRCALL("other user msgget", msgget(key, 0600));
		ERRCALL("other user msgget, no access asked", msgget(key, 0) < 0 ? -1 : 0);
		ERRCALL("other user send", snd(kq, 1, "x", IPC_NOWAIT));
		rcv("other user receive", kq, 10, 0, IPC_NOWAIT);
		ERRCALL("other user IPC_STAT", msgctl(kq, IPC_STAT, &ds));
		ERRCALL("other user IPC_RMID", msgctl(kq, IPC_RMID, NULL));
		ds.msg_qbytes = 1 << 20;
		ERRCALL("other user IPC_SET", msgctl(kq, IPC_SET, &ds));
		_exit(0);
	}
	waitpid(c, &st, 0);

	/* Info. */
	struct msginfo info;
	int maxidx = msgctl(0, IPC_INFO, (struct msqid_ds *)&info);
	CHECK("IPC_INFO", maxidx >= 0);
	printf("msgmax=%d msgmnb=%d msgmni=%d msgssz=%d msgseg=%d msgpool=%d msgmap=%d msgtql=%d\n",
	       info.msgmax, info.msgmnb, info.msgmni, info.msgssz, info.msgseg, info.msgpool,
	       info.msgmap, info.msgtql);
	CHECK("MSG_INFO", msgctl(0, MSG_INFO, (struct msqid_ds *)&info) == maxidx && info.msgpool >= 2);
	int found = 0;
	for (int i = 0; i <= maxidx; i++) {
		struct msqid_ds s2;
		if (msgctl(i, MSG_STAT, &s2) == kq)
			found = 1;
		if (msgctl(i, MSG_STAT_ANY, &s2) == kq)
			found++;
	}
	printf("MSG_STAT and MSG_STAT_ANY find it: %d\n", found);

	/* Bad arguments. */
	ERRCALL("mtype 0", snd(q, 0, "x", IPC_NOWAIT));
	ERRCALL("mtype -1", snd(q, -1, "x", IPC_NOWAIT));
	ERRCALL("bad message pointer", msgsnd(q, (void *)8, 4, IPC_NOWAIT));
	ERRCALL("negative size", msgrcv(q, &big, (size_t)-1, 0, IPC_NOWAIT));
	ERRCALL("negative id", msgsnd(-1, &big, 1, IPC_NOWAIT));
	ERRCALL("removed id", msgsnd(q2, &big, 1, IPC_NOWAIT));
	ERRCALL("msgctl bad cmd", msgctl(q, 77, &ds));
	ERRCALL("IPC_STAT to a bad pointer", msgctl(q, IPC_STAT, (struct msqid_ds *)8));
	ERRCALL("IPC_SET from a bad pointer", msgctl(q, IPC_SET, (struct msqid_ds *)8));
	while (msgrcv(q, &big, 8192, 0, IPC_NOWAIT) >= 0)
		;
	snd(q, 9, "lost", IPC_NOWAIT);
	ERRCALL("receive into a bad pointer", msgrcv(q, (void *)8, 100, 0, IPC_NOWAIT));
	stat_line("after the lost message", q);

	ERRCALL("IPC_RMID", msgctl(q, IPC_RMID, NULL));
	ERRCALL("IPC_RMID keyed", msgctl(kq, IPC_RMID, NULL));
	ERRCALL("IPC_STAT removed", msgctl(q, IPC_STAT, &ds));
	return 0;
}
