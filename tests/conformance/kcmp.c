/* kcmp(2): which kernel objects tasks share, after dup, fork, vfork, clone with CLONE_FILES
 * and friends, and between threads; KCMP_EPOLL_TFD; ESRCH, EBADF, EINVAL, EFAULT, ENOENT and
 * the ptrace access check's EPERM. Only "same" (0) or "different" (1 or 2) is printed: the
 * order of different objects is meaningless (obfuscated) by design. KCMP_SYSVSEM compares
 * SEM_UNDO lists, which a process has from its first semop with SEM_UNDO (none before: two
 * tasks without one compare equal). KCMP_IO is in ioprio.c, where ioprio_set gives both
 * sides an I/O context first (Linux makes them lazily, also from block I/O). */
#include "conf.h"
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/ipc.h>
#include <sys/sem.h>
#include <sys/syscall.h>

#define KCMP_FILE 0
#define KCMP_VM 1
#define KCMP_FILES 2
#define KCMP_FS 3
#define KCMP_SIGHAND 4
#define KCMP_SYSVSEM 6
#define KCMP_EPOLL_TFD 7

struct kcmp_epoll_slot {
	uint32_t efd, tfd, toff;
};

static long kcmp(pid_t a, pid_t b, int type, unsigned long i1, unsigned long i2)
{
	return syscall(SYS_kcmp, a, b, type, i1, i2);
}

static const char *verdict(long r)
{
	if (r == 0)
		return "same";
	if (r == 1 || r == 2)
		return "different";
	if (r < 0)
		return errname(errno);
	return "bad result";
}

static void show(const char *what, long r)
{
	printf("%s: %s\n", what, verdict(r));
}

/* The four objects that need no index, between `a` and `b`. */
static void objects(const char *label, pid_t a, pid_t b)
{
	printf("%s: vm %s, files %s, fs %s, sighand %s\n", label, verdict(kcmp(a, b, KCMP_VM, 0, 0)),
	       verdict(kcmp(a, b, KCMP_FILES, 0, 0)), verdict(kcmp(a, b, KCMP_FS, 0, 0)),
	       verdict(kcmp(a, b, KCMP_SIGHAND, 0, 0)));
}

static volatile pid_t thread_tid;
static int thread_go[2];

static void *thread_main(void *arg)
{
	(void)arg;
	thread_tid = syscall(SYS_gettid);
	char c;
	read(thread_go[0], &c, 1);
	return NULL;
}

static int clone_go[2];

static int clone_child(void *arg)
{
	(void)arg;
	char c;
	read(clone_go[0], &c, 1);
	return 0;
}

/* A child made by clone(flags) waits until the parent has compared. */
static void cloned(const char *label, int flags)
{
	static char stack[64 * 1024] __attribute__((aligned(16)));
	pipe(clone_go);
	pid_t pid = clone(clone_child, stack + sizeof stack, flags | SIGCHLD, NULL);
	if (pid < 0) {
		printf("%s: clone: %s\n", label, errname(errno));
		return;
	}
	objects(label, getpid(), pid);
	show("  its pipe's read end against ours", kcmp(getpid(), pid, KCMP_FILE, clone_go[0],
	                                                clone_go[0]));
	write(clone_go[1], "x", 1);
	waitpid(pid, NULL, 0);
	close(clone_go[0]);
	close(clone_go[1]);
}

int main(void)
{
	pid_t me = getpid();
	/* Before any thread (pthread_create's CLONE_SYSVSEM makes the list too) or SEM_UNDO:
	 * neither parent nor child has a SEM_UNDO list. */
	pid_t early = fork();
	if (early == 0) {
		long r = kcmp(getppid(), getpid(), KCMP_SYSVSEM, 0, 0);
		_exit(r == 0 ? 0 : r > 0 ? 1 : 2);
	}
	int status;
	waitpid(early, &status, 0);
	printf("sysvsem before any thread or SEM_UNDO, parent and child: %s\n",
	       WEXITSTATUS(status) == 0 ? "same" : WEXITSTATUS(status) == 1 ? "different" : "error");
	int fd = open("/proc/self/exe", O_RDONLY);
	int same = dup(fd);
	int other = open("/proc/self/exe", O_RDONLY);
	show("fd against itself", kcmp(me, me, KCMP_FILE, fd, fd));
	show("fd against its dup", kcmp(me, me, KCMP_FILE, fd, same));
	show("fd against another open of the file", kcmp(me, me, KCMP_FILE, fd, other));
	long a = kcmp(me, me, KCMP_FILE, fd, other), b = kcmp(me, me, KCMP_FILE, other, fd);
	printf("order reverses with the arguments: %d\n", (a == 1 && b == 2) || (a == 2 && b == 1));
	show("closed fd", kcmp(me, me, KCMP_FILE, fd, 999));
	objects("self", me, me);

	/* Threads share everything. */
	pipe(thread_go);
	pthread_t th;
	pthread_create(&th, NULL, thread_main, NULL);
	while (!thread_tid)
		usleep(1000);
	objects("thread", me, thread_tid);
	show("  fd through the thread's id", kcmp(me, thread_tid, KCMP_FILE, fd, same));
	write(thread_go[1], "x", 1);
	pthread_join(th, NULL);

	/* fork copies: the descriptions are shared, the tables and the rest are not. */
	cloned("fork", 0);
	cloned("CLONE_FILES", CLONE_FILES);
	cloned("CLONE_FS", CLONE_FS);
	cloned("CLONE_VM|CLONE_SIGHAND", CLONE_VM | CLONE_SIGHAND);
	cloned("CLONE_VM|CLONE_SIGHAND|CLONE_FILES|CLONE_FS",
	       CLONE_VM | CLONE_SIGHAND | CLONE_FILES | CLONE_FS);

	/* vfork: the child runs in its parent's memory until it exits. */
	static volatile long vfork_vm, vfork_files;
	pid_t pid = vfork();
	if (pid == 0) {
		vfork_vm = kcmp(getppid(), getpid(), KCMP_VM, 0, 0);
		vfork_files = kcmp(getppid(), getpid(), KCMP_FILES, 0, 0);
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	printf("vfork child: vm %s, files %s\n", verdict(vfork_vm), verdict(vfork_files));

	/* KCMP_EPOLL_TFD: a descriptor against the file an epoll instance holds (a pipe's:
	 * regular files can't be added). */
	int p[2];
	pipe(p);
	int p_dup = dup(p[0]);
	int ep = epoll_create1(0);
	struct epoll_event ev = {.events = EPOLLIN};
	printf("epoll_ctl: %ld\n", (long)epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev));
	struct kcmp_epoll_slot slot = {ep, p[0], 0};
	show("epoll: fd against the fd it holds", kcmp(me, me, KCMP_EPOLL_TFD, p[0], (uintptr_t)&slot));
	show("epoll: the dup against it", kcmp(me, me, KCMP_EPOLL_TFD, p_dup, (uintptr_t)&slot));
	show("epoll: another file against it", kcmp(me, me, KCMP_EPOLL_TFD, p[1], (uintptr_t)&slot));
	slot.toff = 1;
	show("epoll: toff 1", kcmp(me, me, KCMP_EPOLL_TFD, p[0], (uintptr_t)&slot));
	slot.toff = 0;
	slot.tfd = p[1];
	show("epoll: a descriptor not added", kcmp(me, me, KCMP_EPOLL_TFD, p[0], (uintptr_t)&slot));
	slot.tfd = p[0];
	slot.efd = fd;
	show("epoll: efd not an epoll", kcmp(me, me, KCMP_EPOLL_TFD, p[0], (uintptr_t)&slot));
	slot.efd = 999;
	show("epoll: efd closed", kcmp(me, me, KCMP_EPOLL_TFD, p[0], (uintptr_t)&slot));
	slot.efd = ep;
	show("epoll: idx1 closed", kcmp(me, me, KCMP_EPOLL_TFD, 999, (uintptr_t)&slot));
	show("epoll: slot at a bad address", kcmp(me, me, KCMP_EPOLL_TFD, p[0], 8));
	/* The same descriptor number added again for another file, after the first file's
	 * number was closed (its dup keeps it, and its item, alive): two items under one
	 * number, told apart by toff. */
	close(p[0]);
	int again = dup2(p[1], p[0]);
	printf("epoll_ctl again: %ld\n", (long)(again < 0 ? -1 : epoll_ctl(ep, EPOLL_CTL_ADD, p[0], &ev)));
	slot.toff = 0;
	long t0 = kcmp(me, me, KCMP_EPOLL_TFD, p_dup, (uintptr_t)&slot);
	slot.toff = 1;
	long t1 = kcmp(me, me, KCMP_EPOLL_TFD, p_dup, (uintptr_t)&slot);
	printf("epoll: the old file is one of toff 0 and 1: %d\n", (t0 == 0) != (t1 == 0));
	slot.toff = 2;
	show("epoll: toff 2", kcmp(me, me, KCMP_EPOLL_TFD, p_dup, (uintptr_t)&slot));

	/* KCMP_SYSVSEM: the process has a list now (it made threads), which its threads share
	 * and a forked child doesn't have until its own SEM_UNDO semop. */
	static volatile long sem_thread, sem_child, sem_child_own;
	int sem = semget(IPC_PRIVATE, 1, 0600);
	struct sembuf up = {0, 1, SEM_UNDO};
	printf("semop with SEM_UNDO: %d\n", semop(sem, &up, 1));
	thread_tid = 0;
	pipe(thread_go);
	pthread_create(&th, NULL, thread_main, NULL);
	while (!thread_tid)
		usleep(1000);
	sem_thread = kcmp(me, thread_tid, KCMP_SYSVSEM, 0, 0);
	write(thread_go[1], "x", 1);
	pthread_join(th, NULL);
	printf("sysvsem, a thread: %s\n", verdict(sem_thread));
	int sem_go[2];
	pipe(sem_go);
	pid = fork();
	if (pid == 0) {
		char c;
		read(sem_go[0], &c, 1);
		struct sembuf own = {0, 1, SEM_UNDO};
		semop(sem, &own, 1);
		read(sem_go[0], &c, 1);
		_exit(0);
	}
	sem_child = kcmp(me, pid, KCMP_SYSVSEM, 0, 0);
	write(sem_go[1], "x", 1);
	/* Until the child has made its own list, it has none. */
	for (int i = 0; i < 5000 && semctl(sem, 0, GETVAL) != 2; i++)
		usleep(1000);
	sem_child_own = kcmp(me, pid, KCMP_SYSVSEM, 0, 0);
	write(sem_go[1], "x", 1);
	waitpid(pid, NULL, 0);
	printf("sysvsem, a forked child: %s; after its own SEM_UNDO: %s\n", verdict(sem_child),
	       verdict(sem_child_own));
	semctl(sem, 0, IPC_RMID);

	/* Errors: the tasks first, then the access check, then the type. */
	show("pid 0", kcmp(0, me, KCMP_VM, 0, 0));
	show("pid -1", kcmp(me, -1, KCMP_VM, 0, 0));
	show("no such pid", kcmp(me, 999999, KCMP_VM, 0, 0));
	show("no such pid, bad type", kcmp(999999, me, 99, 0, 0));
	show("type 8", kcmp(me, me, 8, 0, 0));
	show("type -1", kcmp(me, me, -1, 0, 0));

	/* A child that gives up root may not inspect its root parent. */
	pid = fork();
	if (pid == 0) {
		if (getuid() != 0 || setresuid(65534, 65534, 65534) != 0) {
			printf("not root: EPERM case skipped\n");
			_exit(0);
		}
		show("as nobody, the root parent", kcmp(getppid(), getpid(), KCMP_VM, 0, 0));
		show("as nobody, itself", kcmp(getpid(), getpid(), KCMP_VM, 0, 0));
		_exit(0);
	}
	waitpid(pid, NULL, 0);
	return 0;
}
