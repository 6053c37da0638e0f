/* /proc/PID/stat and the State/PPid lines of /proc/PID/status follow the process: its
 * state (running when it reads itself, sleeping, stopped, zombie), its parent after
 * reparenting, its process group and session after setpgid and setsid, its thread count,
 * its nice value and priority, and a start time that doesn't go backwards. */
#include "conf.h"

#define OK(c) do { if (!(c)) printf("FAIL line %d: %s (%s)\n", __LINE__, #c, errname(errno)); } while (0)
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

struct st {
	char state;
	int ppid, pgrp, session;
	long prio, nice, threads;
	unsigned long long start;
};

static int read_stat(pid_t pid, struct st *s)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	/* The name may hold spaces and parentheses: fields start after the last ')'. */
	char *p = strrchr(buf, ')');
	if (!p)
		return -1;
	int tty, tpgid;
	unsigned flags;
	unsigned long minflt, cminflt, majflt, cmajflt, utime, stime;
	long cutime, cstime, itreal;
	int k = sscanf(p + 2, "%c %d %d %d %d %d %u %lu %lu %lu %lu %lu %lu %ld %ld %ld %ld %ld %ld %llu",
		       &s->state, &s->ppid, &s->pgrp, &s->session, &tty, &tpgid, &flags, &minflt,
		       &cminflt, &majflt, &cmajflt, &utime, &stime, &cutime, &cstime, &s->prio,
		       &s->nice, &s->threads, &itreal, &s->start);
	return k == 20 ? 0 : -1;
}

static char status_state(pid_t pid, int *ppid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	char state = '?';
	if (!f)
		return state;
	while (fgets(line, sizeof line, f)) {
		if (!strncmp(line, "State:", 6))
			sscanf(line + 6, " %c", &state);
		if (!strncmp(line, "PPid:", 5))
			sscanf(line + 5, "%d", ppid);
	}
	fclose(f);
	return state;
}

/* Waits up to 5 s for `pid` to show `want` in its stat. */
static int wait_state(pid_t pid, char want)
{
	struct st s;
	for (int i = 0; i < 500; i++) {
		if (read_stat(pid, &s) == 0 && s.state == want)
			return 1;
		usleep(10000);
	}
	return 0;
}

static void *idle_thread(void *arg)
{
	pause();
	return arg;
}

int main(void)
{
	struct st me, child;
	OK(read_stat(getpid(), &me) == 0);
	printf("self: state %c, ppid matches %d, threads %ld\n", me.state, me.ppid == getppid(),
	       me.threads);
	int ppid = -1;
	char st = status_state(getpid(), &ppid);
	printf("self status: state %c, ppid matches %d\n", st, ppid == getppid());

	/* Threads are counted. */
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, idle_thread, NULL);
	OK(read_stat(getpid(), &me) == 0);
	printf("with 2 threads: %ld\n", me.threads);

	/* nice and priority. */
	OK(setpriority(PRIO_PROCESS, 0, 5) == 0);
	OK(read_stat(getpid(), &me) == 0);
	printf("nice %ld, priority %ld\n", me.nice, me.prio);

	/* A child: sleeping, then stopped, then its own group and session. */
	int ready[2];
	OK(pipe(ready) == 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(ready[0]);
		if (write(ready[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	char c;
	OK(read(ready[0], &c, 1) == 1);
	printf("child sleeping: %d\n", wait_state(pid, 'S'));
	OK(read_stat(pid, &child) == 0);
	printf("child: ppid is me %d, pgrp mine %d, session mine %d, start not before mine %d\n",
	       child.ppid == getpid(), child.pgrp == getpgrp(), child.session == getsid(0),
	       child.start >= me.start);
	kill(pid, SIGSTOP);
	printf("child stopped: %d\n", wait_state(pid, 'T'));
	printf("child status state: %c\n", status_state(pid, &ppid));
	kill(pid, SIGCONT);
	printf("child continued: %d\n", wait_state(pid, 'S'));
	OK(setpgid(pid, pid) == 0);
	OK(read_stat(pid, &child) == 0);
	printf("child in its own group: %d\n", child.pgrp == pid);
	kill(pid, SIGKILL);
	printf("child zombie: %d\n", wait_state(pid, 'Z'));
	OK(waitpid(pid, NULL, 0) == pid);

	/* A grandchild whose parent exits is reparented (to init: pid 1 here or natively,
	 * or the nearest subreaper; the test only asks that it is no longer the old one). */
	int gp[2];
	OK(pipe(gp) == 0);
	pid_t mid = fork();
	if (mid == 0) {
		pid_t g = fork();
		if (g == 0) {
			setsid();
			close(gp[0]);
			pid_t me2 = getpid();
			if (write(gp[1], &me2, sizeof me2) != sizeof me2)
				_exit(1);
			close(gp[1]);
			sleep(5);
			_exit(0);
		}
		_exit(0);
	}
	pid_t grandchild;
	close(gp[1]);
	OK(read(gp[0], &grandchild, sizeof grandchild) == sizeof grandchild);
	OK(waitpid(mid, NULL, 0) == mid);
	struct st g;
	int reparented = 0;
	for (int i = 0; i < 500 && !reparented; i++) {
		if (read_stat(grandchild, &g) == 0 && g.ppid != mid)
			reparented = 1;
		else
			usleep(10000);
	}
	printf("grandchild reparented: %d, own session %d\n", reparented,
	       g.session == grandchild && g.pgrp == grandchild);
	kill(grandchild, SIGKILL);
	return 0;
}
