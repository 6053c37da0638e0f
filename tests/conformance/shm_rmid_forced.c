/* kernel.shm_rmid_forced, per IPC namespace (ipc/shm.c, ipc/ipc_sysctl.c). While it is 0 a
 * segment outlives its attachments and its maker; while it is 1 a segment goes at its last
 * detach (shmdt, exit, a child's exit), IPC_RMID or not, and at its maker's exit (the
 * thread's, not only the process's) if nothing has it attached; setting it to 1 destroys
 * the segments whose maker is gone and which nothing has attached, and leaves those whose
 * maker still runs. Only 0 and 1 may be written. /proc/sysvipc/shm lists the reader's
 * namespace's segments. The program first makes an IPC namespace
 * of its own (unshare(CLONE_NEWIPC), as root), so that natively the host's setting never
 * changes; every segment left is removed. */
#include "conf.h"
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static void show(void)
{
	char buf[32] = {0};
	int fd = open("/proc/sys/kernel/shm_rmid_forced", O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
	if (n < 0)
		printf("shm_rmid_forced: read %s\n", errname(errno));
	else
		printf("shm_rmid_forced: %s", buf);
	if (fd >= 0)
		close(fd);
}

static void put(const char *text)
{
	int fd = open("/proc/sys/kernel/shm_rmid_forced", O_WRONLY | O_TRUNC);
	if (fd < 0) {
		printf("write '%s': open %s\n", text, errname(errno));
		return;
	}
	ssize_t n = write(fd, text, strlen(text));
	printf("write '%s': %s\n", text, n < 0 ? errname(errno) : "ok");
	close(fd);
}

/* Whether segment `id` is still there, and its attachments. */
static void stat_seg(const char *what, int id)
{
	struct shmid_ds ds;
	if (shmctl(id, IPC_STAT, &ds) < 0)
		printf("%s: %s\n", what, errname(errno));
	else
		printf("%s: there, nattch=%lu\n", what, (unsigned long)ds.shm_nattch);
}

static int make(void)
{
	int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	if (id < 0)
		printf("shmget: %s\n", errname(errno));
	return id;
}

enum how { UNATTACHED, DETACHED, STILL_ATTACHED };

/* A child makes a segment, uses it as `how` says, and exits; its id. */
static int child_makes(enum how how)
{
	int p[2];
	if (pipe(p) < 0)
		return -1;
	fflush(stdout);
	pid_t child = fork();
	if (child == 0) {
		int id = make();
		if (how != UNATTACHED) {
			void *a = shmat(id, NULL, 0);
			if (a == (void *)-1)
				printf("shmat: %s\n", errname(errno));
			else if (how == DETACHED)
				shmdt(a);
		}
		if (write(p[1], &id, sizeof id) != sizeof id)
			_exit(1);
		fflush(stdout);
		_exit(0);
	}
	close(p[1]);
	int id = -1;
	if (read(p[0], &id, sizeof id) != sizeof id)
		printf("no id from the child\n");
	close(p[0]);
	int st;
	waitpid(child, &st, 0);
	return id;
}

/* A child attaches `id` and exits, so the attachment goes with it. */
static void child_attaches(int id)
{
	fflush(stdout);
	pid_t child = fork();
	if (child == 0) {
		if (shmat(id, NULL, 0) == (void *)-1)
			printf("child shmat: %s\n", errname(errno));
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(child, &st, 0);
}

/* A thread makes a segment and ends while the process goes on. */
struct made {
	int id;
	pid_t tid;
};

static void *thread_makes(void *out)
{
	struct made *m = out;
	m->id = make();
	m->tid = (pid_t)syscall(SYS_gettid);
	return NULL;
}

static int thread_made(void)
{
	struct made m = {-1, 0};
	pthread_t t;
	if (pthread_create(&t, NULL, thread_makes, &m) != 0)
		return -1;
	pthread_join(t, NULL);
	/* pthread_join returns at the child-tid wake, which Linux does just before exit_shm:
	 * wait until the thread is gone from /proc (after exit_shm) to see its effect. */
	char path[64];
	snprintf(path, sizeof path, "/proc/self/task/%d", (int)m.tid);
	for (int i = 0; i < 1000 && access(path, F_OK) == 0; i++)
		usleep(1000);
	return m.id;
}

/* The segments /proc/sysvipc/shm lists: the reader's namespace's. */
static void count_sysvipc(const char *when)
{
	FILE *f = fopen("/proc/sysvipc/shm", "r");
	if (!f) {
		printf("%s: /proc/sysvipc/shm: %s\n", when, errname(errno));
		return;
	}
	char line[512];
	int n = -1; /* the header */
	while (fgets(line, sizeof line, f))
		n++;
	fclose(f);
	printf("%s: /proc/sysvipc/shm lists %d\n", when, n);
}

int main(void)
{
	if (unshare(CLONE_NEWIPC) < 0) {
		printf("unshare(CLONE_NEWIPC): %s (needs root)\n", errname(errno));
		return 1;
	}
	show();

	/* 0: segments stay without IPC_RMID. */
	int a = child_makes(DETACHED);
	int b = child_makes(UNATTACHED);
	int h = child_makes(STILL_ATTACHED);
	int m = thread_made();
	int c = make();
	int d = make();
	void *pd = shmat(d, NULL, 0);
	int e = make();
	shmdt(shmat(e, NULL, 0));
	stat_seg("0: child's, attached and detached, child gone", a);
	stat_seg("0: child's, never attached, child gone", b);
	stat_seg("0: child's, attached at its exit", h);
	stat_seg("0: a thread's, thread gone", m);
	stat_seg("0: mine, never attached", c);
	stat_seg("0: mine, attached", d);
	stat_seg("0: mine, attached and detached", e);
	count_sysvipc("0");

	/* Setting 1 destroys the orphans nothing has attached. */
	put("1\n");
	show();
	stat_seg("1: child's, attached and detached, child gone", a);
	stat_seg("1: child's, never attached, child gone", b);
	stat_seg("1: child's, attached at its exit", h);
	stat_seg("1: a thread's, thread gone", m);
	stat_seg("1: mine, never attached", c);
	stat_seg("1: mine, attached", d);
	stat_seg("1: mine, attached and detached while 0", e);
	count_sysvipc("1");

	/* 1: the last detach destroys, whoever made it. */
	shmdt(pd);
	stat_seg("1: mine, detached now", d);
	int f = make();
	shmdt(shmat(f, NULL, 0));
	stat_seg("1: mine, attached and detached", f);
	int g = child_makes(UNATTACHED);
	stat_seg("1: child's, never attached, child gone", g);
	int i = child_makes(STILL_ATTACHED);
	stat_seg("1: child's, attached at its exit", i);
	int j = make();
	child_attaches(j);
	stat_seg("1: mine, a child attached it and exited", j);
	int k = make();
	void *pk = shmat(k, NULL, 0);
	child_attaches(k);
	stat_seg("1: mine, attached, a child attached it and exited", k);
	fflush(stdout);
	pid_t child = fork();
	if (child == 0)
		_exit(0); /* a forked copy of the attachment, gone with the child */
	waitpid(child, NULL, 0);
	stat_seg("1: mine, attached, a child forked with it and exited", k);
	shmdt(pk);
	stat_seg("1: mine, detached now", k);
	int n = thread_made();
	stat_seg("1: a thread's, thread gone", n);
	stat_seg("1: mine, never attached", c);

	/* Back to 0: nothing goes by itself again. */
	put("0");
	int o = child_makes(DETACHED);
	stat_seg("0 again: child's, attached and detached, child gone", o);
	shmdt(shmat(c, NULL, 0));
	stat_seg("0 again: mine, attached and detached", c);

	/* Only 0 and 1; a bad write changes nothing. */
	put("2");
	put("-1");
	put("x");
	show();
	put("1 5");
	show();
	stat_seg("1 again: child's orphan", o);
	stat_seg("1 again: mine", c);
	put("0");

	/* IPC_RMID still works as always. */
	shmctl(c, IPC_RMID, NULL);
	stat_seg("removed", c);
	shmctl(e, IPC_RMID, NULL);
	return 0;
}
