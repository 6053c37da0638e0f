/* Stress: many processes and threads at once. Modes (argv[1]):
 *   forkexec  1000 rounds of fork, exec of a tiny program (written here), wait
 *   futex     64 threads take a futex-based mutex to increment one counter
 *   signals sigsuspend|read
 *             tgkill to threads that spin in user mode and to threads asleep in
 *             sigsuspend or read(); every thread's handler runs once per signal
 * Each mode prints totals that are the same on every run. */
#include "conf.h"
#include <elf.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* musl has no kernel headers. */
#define FUTEX_WAIT_PRIVATE 128
#define FUTEX_WAKE_PRIVATE 129

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ---- forkexec ---- */

/* Writes a tiny static executable that exits with its argc: an ELF header, one PT_LOAD
 * and three instructions. Returns 0 when written. */
static int write_tiny_program(const char *path)
{
	static const unsigned char code[] = {
		0x48, 0x8b, 0x3c, 0x24,       /* mov rdi, [rsp]   (argc) */
		0xb8, 0x3c, 0x00, 0x00, 0x00, /* mov eax, 60      (exit) */
		0x0f, 0x05,                   /* syscall */
	};
	const unsigned long base = 0x400000, at = sizeof(Elf64_Ehdr) + sizeof(Elf64_Phdr);
	Elf64_Ehdr eh = {0};
	memcpy(eh.e_ident, ELFMAG, SELFMAG);
	eh.e_ident[EI_CLASS] = ELFCLASS64;
	eh.e_ident[EI_DATA] = ELFDATA2LSB;
	eh.e_ident[EI_VERSION] = EV_CURRENT;
	eh.e_type = ET_EXEC;
	eh.e_machine = EM_X86_64;
	eh.e_version = EV_CURRENT;
	eh.e_entry = base + at;
	eh.e_phoff = sizeof eh;
	eh.e_ehsize = sizeof eh;
	eh.e_phentsize = sizeof(Elf64_Phdr);
	eh.e_phnum = 1;
	Elf64_Phdr ph = {0};
	ph.p_type = PT_LOAD;
	ph.p_flags = PF_R | PF_X;
	ph.p_vaddr = ph.p_paddr = base;
	ph.p_filesz = ph.p_memsz = at + sizeof code;
	ph.p_align = 0x1000;
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0755);
	if (fd < 0)
		return -1;
	int ok = write(fd, &eh, sizeof eh) == sizeof eh && write(fd, &ph, sizeof ph) == sizeof ph &&
		 write(fd, code, sizeof code) == sizeof code;
	return close(fd) == 0 && ok ? 0 : -1;
}

static int fork_exec(void)
{
	enum { ROUNDS = 1000 };
	char tiny[64];
	snprintf(tiny, sizeof tiny, "/tmp/conf-stress-tiny-%d", (int)getpid());
	if (write_tiny_program(tiny) != 0) {
		printf("write the tiny program: FAIL errno=%s\n", errname(errno));
		return 1;
	}
	char *args[] = {tiny, "a", "b", "c", "d", NULL};
	int exited_right = 0;
	for (int i = 0; i < ROUNDS; i++) {
		int argc = 1 + i % 5;
		pid_t pid = fork();
		if (pid == 0) {
			args[argc] = NULL;
			execv(tiny, args);
			_exit(255);
		}
		if (pid < 0) {
			printf("fork %d: FAIL errno=%s\n", i, errname(errno));
			break;
		}
		int st;
		if (waitpid(pid, &st, 0) != pid) {
			printf("waitpid %d: FAIL errno=%s\n", i, errname(errno));
			break;
		}
		exited_right += WIFEXITED(st) && WEXITSTATUS(st) == argc;
	}
	unlink(tiny);
	printf("fork/exec/wait: %d of %d children exited with their code\n", exited_right,
	       ROUNDS);
	return exited_right != ROUNDS;
}

/* ---- futex ---- */

/* Drepper's mutex ("Futexes are tricky", mutex 3): 0 free, 1 locked, 2 locked with
 * waiters. */
static unsigned lock_word;

static void mutex_lock(unsigned *m)
{
	unsigned c = 0;
	if (__atomic_compare_exchange_n(m, &c, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return;
	if (c != 2)
		c = __atomic_exchange_n(m, 2, __ATOMIC_ACQUIRE);
	while (c != 0) {
		syscall(SYS_futex, m, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
		c = __atomic_exchange_n(m, 2, __ATOMIC_ACQUIRE);
	}
}

static void mutex_unlock(unsigned *m)
{
	if (__atomic_fetch_sub(m, 1, __ATOMIC_RELEASE) != 1) {
		__atomic_store_n(m, 0, __ATOMIC_RELEASE);
		syscall(SYS_futex, m, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
	}
}

enum { FUTEX_THREADS = 64, INCREMENTS = 2000 };
static volatile unsigned long counter;

static void *incrementer(void *arg)
{
	(void)arg;
	for (int i = 0; i < INCREMENTS; i++) {
		mutex_lock(&lock_word);
		unsigned long v = counter;
		if (i % 100 == 0)
			sched_yield(); /* hold the lock a while, so others sleep on it */
		counter = v + 1;
		mutex_unlock(&lock_word);
	}
	return NULL;
}

static int futex_counter(void)
{
	pthread_t t[FUTEX_THREADS];
	for (int i = 0; i < FUTEX_THREADS; i++)
		if (pthread_create(&t[i], NULL, incrementer, NULL) != 0) {
			printf("pthread_create %d: FAIL\n", i);
			return 1;
		}
	for (int i = 0; i < FUTEX_THREADS; i++)
		pthread_join(t[i], NULL);
	printf("futex mutex: %d threads x %d increments = %lu\n", FUTEX_THREADS, INCREMENTS,
	       counter);
	return 0;
}

/* ---- signals ---- */

enum { SPINNERS = 4, SLEEPERS = 4, THREADS = SPINNERS + SLEEPERS, SIGNALS = 20 };
static volatile int handled[THREADS];
static volatile pid_t tids[THREADS];
static volatile int stop;
static int pipes[THREADS][2];
static __thread int my_index = -1;

static void on_usr1(int sig)
{
	(void)sig;
	if (my_index >= 0)
		handled[my_index]++;
}

static void on_usr2(int sig) { (void)sig; }

static void *spinner(void *arg)
{
	my_index = (int)(long)arg;
	tids[my_index] = (pid_t)syscall(SYS_gettid);
	while (!stop) {
	}
	return (void *)1L;
}

/* Asleep in sigsuspend, SIGUSR1 blocked in between (it waits for the next sigsuspend). */
static void *suspender(void *arg)
{
	sigset_t usr, none;
	sigemptyset(&usr);
	sigaddset(&usr, SIGUSR1);
	sigaddset(&usr, SIGUSR2);
	sigemptyset(&none);
	pthread_sigmask(SIG_BLOCK, &usr, NULL);
	my_index = (int)(long)arg;
	tids[my_index] = (pid_t)syscall(SYS_gettid);
	while (!stop)
		sigsuspend(&none);
	return (void *)1L;
}

/* Asleep in read() on its own pipe; with SA_RESTART the read goes on after each handler. */
static void *reader(void *arg)
{
	my_index = (int)(long)arg;
	tids[my_index] = (pid_t)syscall(SYS_gettid);
	char c;
	ssize_t n = read(pipes[my_index][0], &c, 1);
	return (void *)(long)(n == 1);
}

/* SPINNERS threads spin in user mode, SLEEPERS sleep in `sleeper_kind` ("sigsuspend" or
 * "read"); each gets SIGNALS SIGUSR1s by tgkill, one at a time. */
static int signal_threads(const char *sleeper_kind)
{
	int reading = !strcmp(sleeper_kind, "read");
	if (!reading && strcmp(sleeper_kind, "sigsuspend")) {
		printf("unknown sleeper kind\n");
		return 2;
	}
	struct sigaction sa = {0};
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_handler = on_usr2;
	sigaction(SIGUSR2, &sa, NULL);
	pthread_t t[THREADS];
	for (long i = 0; i < THREADS; i++) {
		if (reading && i >= SPINNERS && pipe(pipes[i]) != 0)
			return 1;
		void *(*body)(void *) = i < SPINNERS ? spinner : reading ? reader : suspender;
		pthread_create(&t[i], NULL, body, (void *)i);
	}
	for (int i = 0; i < THREADS; i++)
		while (!tids[i])
			sched_yield();
	usleep(100000); /* let the sleepers fall asleep */
	pid_t pid = getpid();
	double deadline = now() + 30;
	for (int round = 1; round <= SIGNALS; round++) {
		for (int i = 0; i < THREADS; i++)
			syscall(SYS_tgkill, pid, tids[i], SIGUSR1);
		/* Each signal is handled before the next is sent: none merges with another. */
		for (int i = 0; i < THREADS; i++)
			while (handled[i] < round && now() < deadline)
				sched_yield();
	}
	int spinners_ok = 0, sleepers_ok = 0;
	for (int i = 0; i < THREADS; i++)
		if (handled[i] == SIGNALS)
			*(i < SPINNERS ? &spinners_ok : &sleepers_ok) += 1;
	stop = 1;
	int ended_ok = 0;
	for (int i = 0; i < THREADS; i++) {
		void *r;
		if (i >= SPINNERS) {
			if (reading)
				write(pipes[i][1], "x", 1);
			else
				syscall(SYS_tgkill, pid, tids[i], SIGUSR2);
		}
		pthread_join(t[i], &r);
		ended_ok += r == (void *)1L;
	}
	printf("spinning threads that handled all %d signals: %d of %d\n", SIGNALS, spinners_ok,
	       SPINNERS);
	printf("threads asleep in %s that handled all %d signals: %d of %d\n", sleeper_kind,
	       SIGNALS, sleepers_ok, SLEEPERS);
	printf("threads that ended well: %d of %d\n", ended_ok, THREADS);
	return spinners_ok + sleepers_ok != THREADS;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	const char *mode = argc > 1 ? argv[1] : "";
	double start = now();
	int rc;
	if (!strcmp(mode, "forkexec"))
		rc = fork_exec();
	else if (!strcmp(mode, "futex"))
		rc = futex_counter();
	else if (!strcmp(mode, "signals") && argc == 3)
		rc = signal_threads(argv[2]);
	else {
		printf("usage: stress forkexec|futex|signals sigsuspend|read\n");
		return 2;
	}
	/* On stderr (not compared): how long the mode took. */
	fprintf(stderr, "stress %s: %.2f s\n", mode, now() - start);
	return rc;
}
