/* Per-operation costs of file, process and thread operations, in nanoseconds.
 * usage: ops KIND ITERATIONS [DONOTHING]   (prints one number) */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <mqueue.h>
#include <sys/inotify.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/mount.h>
#include <sched.h>
#include <sys/resource.h>
#include <termios.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static char dir[64];
static char buf[1 << 20];

static void setup_files(void) {
	strcpy(dir, "/tmp/runsc-bench-XXXXXX");
	if (!mkdtemp(dir)) exit(3);
	if (chdir(dir)) exit(3);
	int fd = open("small", O_CREAT | O_WRONLY, 0644);
	memset(buf, 'x', sizeof buf);
	if (write(fd, buf, 4096) != 4096) exit(3);
	close(fd);
	fd = open("big", O_CREAT | O_WRONLY, 0644);
	if (write(fd, buf, sizeof buf) != sizeof buf) exit(3);
	close(fd);
	mkdir("many", 0755);
	for (int i = 0; i < 1000; i++) {
		char name[64];
		snprintf(name, sizeof name, "many/f%04d", i);
		close(open(name, O_CREAT | O_WRONLY, 0644));
	}
}

static void cleanup_files(void) {
	for (int i = 0; i < 1000; i++) {
		char name[64];
		snprintf(name, sizeof name, "many/f%04d", i);
		unlink(name);
	}
	rmdir("many");
	unlink("small");
	unlink("big");
	if (chdir("/")) exit(3);
	rmdir(dir);
}

static atomic_int word;

static void *ponger(void *arg) {
	long n = (long)arg;
	for (long i = 0; i < n; i++) {
		while (atomic_load(&word) != 1) syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
		atomic_store(&word, 0);
		syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	}
	return NULL;
}

static void *nothing(void *arg) { return arg; }

static volatile long handled;

static void count_signal(int sig) { (void)sig; handled++; }
static atomic_int asleep, interrupted;

/* signal_futex: a thread asleep in a futex wait (pthread_cond_wait), reached by a signal;
 * the wait restarts after the handler, as glibc's and musl's do. */
static pthread_mutex_t cond_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond_never = PTHREAD_COND_INITIALIZER;
static void *wait_forever(void *arg) {
	(void)arg;
	pthread_mutex_lock(&cond_mu);
	atomic_store(&asleep, 1);
	for (;;)
		pthread_cond_wait(&cond_never, &cond_mu);
	return NULL;
}

/* signal_read: a thread asleep in read() on an empty pipe, interrupted by a signal. */
static int sleep_pipe[2];
static void *read_until_interrupted(void *arg) {
	long n = (long)arg;
	char c;
	for (long i = 0; i < n; i++) {
		atomic_store(&asleep, 1);
		if (read(sleep_pipe[0], &c, 1) < 0 && errno == EINTR) atomic_fetch_add(&interrupted, 1);
	}
	return NULL;
}

int main(int argc, char **argv) {
	if (argc < 3) return 2;
	const char *kind = argv[1];
	long n = atol(argv[2]);
	int files = strcmp(kind, "fork_exec") && strcmp(kind, "thread") && strcmp(kind, "futex") &&
		    strcmp(kind, "signal") && strcmp(kind, "signal_read") && strcmp(kind, "fault") &&
		    strcmp(kind, "signal_futex") &&
		    strcmp(kind, "fault_seq") &&
		    strcmp(kind, "getrusage") && strcmp(kind, "getpriority") &&
		    strcmp(kind, "pipe_storm") && strcmp(kind, "pty") && strcmp(kind, "semop") &&
		    strcmp(kind, "msg") && strcmp(kind, "mq") && strcmp(kind, "shm") &&
		    strcmp(kind, "sleep20") && strcmp(kind, "ptrace_syscall") &&
		    strcmp(kind, "ptrace_peek") && strcmp(kind, "mount");
	if (files) setup_files();
	double start = now_ns();
	if (!strcmp(kind, "clock_gettime")) {
		struct timespec ts;
		for (long i = 0; i < n; i++) clock_gettime(CLOCK_MONOTONIC, &ts);
	} else if (!strcmp(kind, "open_close")) {
		for (long i = 0; i < n; i++) close(open("small", O_RDONLY));
	} else if (!strcmp(kind, "stat")) {
		struct stat st;
		for (long i = 0; i < n; i++) stat("small", &st);
	} else if (!strcmp(kind, "read4k")) {
		int fd = open("small", O_RDONLY);
		for (long i = 0; i < n; i++) pread(fd, buf, 4096, 0);
		close(fd);
	} else if (!strcmp(kind, "read1m")) {
		int fd = open("big", O_RDONLY);
		for (long i = 0; i < n; i++) pread(fd, buf, sizeof buf, 0);
		close(fd);
	} else if (!strcmp(kind, "getdents")) {
		for (long i = 0; i < n; i++) {
			DIR *d = opendir("many");
			while (readdir(d)) {}
			closedir(d);
		}
	} else if (!strcmp(kind, "pipe_storm")) {
		/* n pipes kept open (2n descriptors): each pipe() finds the lowest free pair.
		 * Without CAP_SYS_RESOURCE the hard RLIMIT_NOFILE may allow fewer: then as many
		 * as fit (the figure is per pipe either way). */
		struct rlimit rl = {2 * n + 64, 2 * n + 64};
		if (setrlimit(RLIMIT_NOFILE, &rl)) {
			getrlimit(RLIMIT_NOFILE, &rl);
			rl.rlim_cur = rl.rlim_max;
			if (setrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur < 128) return 3;
			n = ((long)rl.rlim_cur - 64) / 2;
		}
		for (long i = 0; i < n; i++) {
			int p[2];
			if (pipe(p)) return 3;
		}
	} else if (!strcmp(kind, "pipe4k")) {
		int p[2];
		if (pipe(p)) return 3;
		for (long i = 0; i < n; i++) {
			if (write(p[1], buf, 4096) != 4096 || read(p[0], buf, 4096) != 4096) return 3;
		}
	} else if (!strcmp(kind, "fork_exec")) {
		for (long i = 0; i < n; i++) {
			pid_t c = fork();
			if (c == 0) {
				execl(argv[3], argv[3], (char *)NULL);
				_exit(127);
			}
			waitpid(c, NULL, 0);
		}
	} else if (!strcmp(kind, "thread")) {
		for (long i = 0; i < n; i++) {
			pthread_t t;
			pthread_create(&t, NULL, nothing, NULL);
			pthread_join(t, NULL);
		}
	} else if (!strcmp(kind, "futex")) {
		pthread_t t;
		pthread_create(&t, NULL, ponger, (void *)n);
		start = now_ns();
		for (long i = 0; i < n; i++) {
			atomic_store(&word, 1);
			syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
			while (atomic_load(&word) != 0) syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 1, NULL, NULL, 0);
		}
		pthread_join(t, NULL);
	} else if (!strcmp(kind, "sleep20")) {
		/* A 20 us nanosleep: natively about 20 us plus the timer slack (50 us). */
		struct timespec ts = {0, 20000};
		for (long i = 0; i < n; i++) nanosleep(&ts, NULL);
	} else if (!strcmp(kind, "signal_read")) {
		/* Latency of a signal to a thread asleep in read(): send, and wait until the read
		 * has ended with EINTR (the handler ran). */
		struct sigaction sa = {0};
		sa.sa_handler = count_signal; /* no SA_RESTART: the read ends with EINTR */
		sigaction(SIGUSR1, &sa, NULL);
		if (pipe(sleep_pipe)) return 3;
		pthread_t t;
		pthread_create(&t, NULL, read_until_interrupted, (void *)n);
		for (long i = 0; i < n; i++) {
			while (!atomic_load(&asleep)) {}
			/* Let it reach the sleep. */
			struct timespec nap = {0, 200000};
			nanosleep(&nap, NULL);
			atomic_store(&asleep, 0);
			long before = atomic_load(&interrupted);
			pthread_kill(t, SIGUSR1);
			while (atomic_load(&interrupted) == before) {}
		}
		pthread_join(t, NULL);
	} else if (!strcmp(kind, "signal_futex")) {
		/* Latency of a signal to a thread asleep in a futex wait: send, and wait until the
		 * handler has run there. */
		struct sigaction sa = {0};
		sa.sa_handler = count_signal;
		sigaction(SIGUSR1, &sa, NULL);
		pthread_t t;
		pthread_create(&t, NULL, wait_forever, NULL);
		while (!atomic_load(&asleep)) {}
		for (long i = 0; i < n; i++) {
			/* Let it reach the sleep (again: the wait restarts inside the library after
			 * each handler, so nothing in the program can say when). */
			struct timespec nap = {0, 200000};
			nanosleep(&nap, NULL);
			long before = handled;
			pthread_kill(t, SIGUSR1);
			while (handled == before) {}
		}
	} else if (!strcmp(kind, "fault")) {
		/* First write to fresh anonymous pages, 32 pages apart so that each one faults
		 * (the sandbox maps up to 16 pages around a fault). */
		long stride = 32 * 4096;
		char *p = mmap(NULL, n * stride, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) return 3;
		start = now_ns();
		for (long i = 0; i < n; i++) p[i * stride] = 1;
	} else if (!strcmp(kind, "fault_seq")) {
		/* First write to every page of a fresh anonymous region, in order (a memset of a
		 * new buffer, a growing heap): what fault windows and KVM's shadow prefetch serve. */
		char *p = mmap(NULL, n * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) return 3;
		start = now_ns();
		for (long i = 0; i < n; i++) p[i * 4096] = 1;
	} else if (!strcmp(kind, "signal")) {
		/* Round trip: send to self, deliver to a handler (a signal frame), sigreturn. */
		signal(SIGUSR1, count_signal);
		for (long i = 0; i < n; i++) raise(SIGUSR1);
		if (handled != n) return 3;
	} else if (!strcmp(kind, "create_write")) {
		/* A new file: create, write 4 KiB, close, unlink (on a bind mount, the host's). */
		for (long i = 0; i < n; i++) {
			int fd = open("new", O_CREAT | O_EXCL | O_WRONLY, 0644);
			if (fd < 0 || write(fd, buf, 4096) != 4096) return 3;
			close(fd);
			unlink("new");
		}
	} else if (!strcmp(kind, "create_write_watched")) {
		/* create_write with an inotify watch on the directory (every event), draining
		 * the queue each round: create, open, modify, close_write, delete. */
		int in = inotify_init1(IN_NONBLOCK);
		if (in < 0 || inotify_add_watch(in, ".", IN_ALL_EVENTS) < 0) return 3;
		char ev[4096];
		for (long i = 0; i < n; i++) {
			int fd = open("new", O_CREAT | O_EXCL | O_WRONLY, 0644);
			if (fd < 0 || write(fd, buf, 4096) != 4096) return 3;
			close(fd);
			unlink("new");
			if (read(in, ev, sizeof ev) <= 0) return 3;
		}
		close(in);
	} else if (!strcmp(kind, "aio_pread4k") || !strcmp(kind, "aio_batch16")) {
		/* Linux AIO through raw calls (no libaio): a round is io_submit of 1 (or 16)
		 * 4 KiB preads and io_getevents of their events. */
		int batch = strcmp(kind, "aio_batch16") ? 1 : 16;
		unsigned long ctx = 0;
		if (syscall(SYS_io_setup, 64, &ctx)) return 3;
		int fd = open("small", O_RDONLY);
		struct { unsigned long long data; unsigned key, rw_flags; unsigned short op; short prio;
			 unsigned fd; unsigned long long buf, nbytes; long long off;
			 unsigned long long res2; unsigned flags, resfd; } cb[16];
		void *list[16];
		unsigned long long ev[16 * 4];
		memset(cb, 0, sizeof cb);
		for (int j = 0; j < batch; j++) {
			cb[j].op = 0; /* IOCB_CMD_PREAD */
			cb[j].fd = fd;
			cb[j].buf = (unsigned long long)(buf + j * 4096);
			cb[j].nbytes = 4096;
			list[j] = &cb[j];
		}
		for (long i = 0; i < n; i++) {
			if (syscall(SYS_io_submit, ctx, batch, list) != batch) return 4;
			if (syscall(SYS_io_getevents, ctx, batch, batch, ev, NULL) != batch) return 5;
		}
		syscall(SYS_io_destroy, ctx);
		close(fd);
	} else if (!strcmp(kind, "write4k")) {
		int fd = open("small", O_WRONLY);
		for (long i = 0; i < n; i++) pwrite(fd, buf, 4096, 0);
		close(fd);
	} else if (!strcmp(kind, "pty")) {
		/* A byte through a pseudo-terminal and back: master -> slave (raw) -> master. */
		int m = posix_openpt(O_RDWR | O_NOCTTY);
		if (m < 0 || grantpt(m) || unlockpt(m)) return 3;
		int s = open(ptsname(m), O_RDWR | O_NOCTTY);
		struct termios t;
		if (s < 0 || tcgetattr(s, &t)) return 3;
		cfmakeraw(&t);
		tcsetattr(s, TCSANOW, &t);
		char c = 'x';
		start = now_ns();
		for (long i = 0; i < n; i++) {
			if (write(m, &c, 1) != 1 || read(s, &c, 1) != 1) return 3;
			if (write(s, &c, 1) != 1 || read(m, &c, 1) != 1) return 3;
		}
	} else if (!strcmp(kind, "getrusage")) {
		struct rusage ru;
		for (long i = 0; i < n; i++) getrusage(RUSAGE_SELF, &ru);
	} else if (!strcmp(kind, "semop")) {
		/* System V semaphores: a ping-pong between two processes (one round trip each). */
		int id = semget(IPC_PRIVATE, 2, IPC_CREAT | 0600);
		if (id < 0) return 4;
		pid_t c = fork();
		if (c == 0) {
			struct sembuf take = {0, -1, 0}, give = {1, 1, 0};
			for (long i = 0; i < n; i++)
				if (semop(id, &take, 1) || semop(id, &give, 1)) _exit(1);
			_exit(0);
		}
		struct sembuf give = {0, 1, 0}, take = {1, -1, 0};
		start = now_ns();
		for (long i = 0; i < n; i++)
			if (semop(id, &give, 1) || semop(id, &take, 1)) return 4;
		double end = now_ns();
		waitpid(c, NULL, 0);
		semctl(id, 0, IPC_RMID);
		printf("%.1f\n", (end - start) / n);
		return 0;
	} else if (!strcmp(kind, "msg")) {
		/* System V message queue: a 64-byte message there and an answer back. */
		int id = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
		if (id < 0) return 4;
		struct { long type; char text[64]; } m = {1, {0}};
		pid_t c = fork();
		if (c == 0) {
			for (long i = 0; i < n; i++) {
				if (msgrcv(id, &m, 64, 1, 0) != 64) _exit(1);
				m.type = 2;
				if (msgsnd(id, &m, 64, 0)) _exit(1);
			}
			_exit(0);
		}
		start = now_ns();
		for (long i = 0; i < n; i++) {
			m.type = 1;
			if (msgsnd(id, &m, 64, 0) || msgrcv(id, &m, 64, 2, 0) != 64) return 4;
		}
		double end = now_ns();
		waitpid(c, NULL, 0);
		msgctl(id, IPC_RMID, NULL);
		printf("%.1f\n", (end - start) / n);
		return 0;
	} else if (!strcmp(kind, "mq")) {
		/* POSIX message queues: a 64-byte message there and back through two queues. */
		char a[64], b[64];
		snprintf(a, sizeof a, "/bench-mq-a-%d", (int)getpid());
		snprintf(b, sizeof b, "/bench-mq-b-%d", (int)getpid());
		struct mq_attr attr = {0, 4, 64, 0};
		mqd_t qa = mq_open(a, O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
		mqd_t qb = mq_open(b, O_RDWR | O_CREAT | O_EXCL, 0600, &attr);
		mq_unlink(a);
		mq_unlink(b);
		if (qa == (mqd_t)-1 || qb == (mqd_t)-1) return 4;
		char buf[64] = {0};
		pid_t c = fork();
		if (c == 0) {
			for (long i = 0; i < n; i++)
				if (mq_receive(qa, buf, 64, NULL) != 64 || mq_send(qb, buf, 64, 0)) _exit(1);
			_exit(0);
		}
		start = now_ns();
		for (long i = 0; i < n; i++)
			if (mq_send(qa, buf, 64, 0) || mq_receive(qb, buf, 64, NULL) != 64) return 4;
		double end = now_ns();
		waitpid(c, NULL, 0);
		printf("%.1f\n", (end - start) / n);
		return 0;
	} else if (!strcmp(kind, "shm")) {
		/* A 64 KiB segment made, attached, touched, detached and removed. */
		for (long i = 0; i < n; i++) {
			int id = shmget(IPC_PRIVATE, 65536, IPC_CREAT | 0600);
			char *p = shmat(id, NULL, 0);
			if (id < 0 || p == (char *)-1) return 4;
			p[0] = 1;
			shmctl(id, IPC_RMID, NULL);
			shmdt(p);
		}
	} else if (!strcmp(kind, "mount")) {
		/* mount and umount of a tmpfs, in a mount namespace of the program's own made
		 * private first (as `unshare -m`), so that natively nothing is seen outside. */
		if (unshare(CLONE_NEWNS) || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL)) return 5;
		char dir[] = "/tmp/bench-mount-XXXXXX";
		if (!mkdtemp(dir)) return 5;
		start = now_ns();
		for (long i = 0; i < n; i++)
			if (mount("tmpfs", dir, "tmpfs", 0, "size=1m") || umount2(dir, 0)) return 4;
		double end = now_ns();
		rmdir(dir);
		printf("%.1f\n", (end - start) / n);
		return 0;
	} else if (!strcmp(kind, "getpriority")) {
		for (long i = 0; i < n; i++) syscall(SYS_getpriority, PRIO_PROCESS, 0);
	} else if (!strcmp(kind, "ptrace_syscall") || !strcmp(kind, "ptrace_peek")) {
		/* A traced child calling getppid forever: per op, one call with its entry and
		 * exit stops (PTRACE_SYSCALL and a wait each), or one PTRACE_PEEKDATA. */
		static volatile long word = 42;
		pid_t c = fork();
		if (c == 0) {
			ptrace(PTRACE_TRACEME, 0, 0, 0);
			raise(SIGSTOP);
			for (;;) syscall(SYS_getppid);
		}
		int st;
		waitpid(c, &st, 0);
		start = now_ns();
		if (!strcmp(kind, "ptrace_peek")) {
			for (long i = 0; i < n; i++)
				if (ptrace(PTRACE_PEEKDATA, c, &word, 0) != 42) return 4;
		} else {
			for (long i = 0; i < 2 * n; i++) {
				ptrace(PTRACE_SYSCALL, c, 0, 0);
				waitpid(c, &st, 0);
			}
		}
		kill(c, SIGKILL);
		waitpid(c, &st, 0);
	} else {
		return 2;
	}
	double end = now_ns();
	if (files) cleanup_files();
	printf("%.1f\n", (end - start) / n);
	return 0;
}
