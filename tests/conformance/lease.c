/* File leases (issue 14 item 9): fcntl F_SETLEASE / F_GETLEASE with Linux's rules (regular
 * files only, the owner or CAP_LEASE, read leases only without writers, write leases only
 * for the sole opener), and lease breaks: a conflicting open (or truncate) by another
 * process signals the holder (SIGIO, or F_SETSIG's signal with si_code POLL_MSG and si_fd),
 * F_GETLEASE shows the pending downgrade or unlock, O_NONBLOCK opens fail with EWOULDBLOCK,
 * blocking ones wait until the holder gives way and are interrupted by signals. The 45 s
 * break timeout is left to the sentry's unit tests. */
#include "conf.h"
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

static const char *FILE_NAME = "lease-test-file";

static const char *lease_name(int l)
{
	return l == F_RDLCK ? "F_RDLCK" : l == F_WRLCK ? "F_WRLCK" : l == F_UNLCK ? "F_UNLCK" : "?";
}

static void get(int fd, const char *what)
{
	int r = fcntl(fd, F_GETLEASE);
	printf("%s: %s\n", what, r < 0 ? errname(errno) : lease_name(r));
}

static void set(int fd, int type, const char *what)
{
	int r = fcntl(fd, F_SETLEASE, type);
	printf("%s: %s\n", what, r ? errname(errno) : "0");
}

static volatile sig_atomic_t sigio_count;
static void on_sigio(int sig)
{
	(void)sig;
	sigio_count++;
}
static void on_usr1(int sig)
{
	(void)sig;
}

/* A child that opens the file with `flags`; its result is its exit status, printed by the
 * parent once it ends (the parent and the child run at once after a lease is given up). */
static pid_t opener(int flags)
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0)
		_exit(open(FILE_NAME, flags) < 0 ? errno : 0);
	return pid;
}

static void reap(pid_t pid, const char *what)
{
	int st = -1;
	waitpid(pid, &st, 0);
	if (!what)
		return;
	if (!WIFEXITED(st))
		printf("child %s: status %#x\n", what, st);
	else
		printf("child %s: %s\n", what, WEXITSTATUS(st) ? errname(WEXITSTATUS(st)) : "0");
}

/* Waits for the break signal `sig` and prints what it says. */
static void await_break(int sig, int fd)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	siginfo_t info;
	struct timespec limit = {10, 0};
	int got = sigtimedwait(&set, &info, &limit);
	if (got != sig) {
		printf("no break signal: %s (SIGIO %d)\n", errname(errno), sigio_count > 0);
		return;
	}
	printf("break signal: code %d fd ok %d band %#lx\n", info.si_code, info.si_fd == fd,
	       (long)info.si_band);
}

static void rules(void)
{
	int ro = open(FILE_NAME, O_RDONLY);
	get(ro, "fresh fd");
	set(ro, F_UNLCK, "unlock without a lease");
	set(ro, 7, "type 7");
	set(ro, F_RDLCK, "read lease, read-only fd");
	get(ro, "after read lease");
	set(ro, F_RDLCK, "read lease again");
	set(ro, F_WRLCK, "upgrade to write lease, sole opener");
	get(ro, "after upgrade");
	set(ro, F_UNLCK, "unlock");
	get(ro, "after unlock");
	int rw = open(FILE_NAME, O_RDWR);
	set(rw, F_RDLCK, "read lease, read-write fd");
	set(rw, F_WRLCK, "write lease, read-write fd, another fd open");
	set(ro, F_RDLCK, "read lease while a writer is open");
	close(ro);
	set(rw, F_WRLCK, "write lease, read-write fd, sole opener");
	get(rw, "after write lease");
	set(rw, F_UNLCK, "unlock");
	close(rw);

	int dir = open(".", O_RDONLY | O_DIRECTORY);
	set(dir, F_RDLCK, "read lease on a directory");
	close(dir);
	int p[2];
	pipe(p);
	set(p[0], F_RDLCK, "read lease on a pipe");
	close(p[0]);
	close(p[1]);
	printf("bad fd: %s\n", fcntl(999, F_SETLEASE, F_RDLCK) ? errname(errno) : "0");
	/* An O_PATH descriptor answers only F_DUPFD*, F_GETFD, F_SETFD and F_GETFL. */
	int path = open(FILE_NAME, O_PATH);
	printf("O_PATH: setlease %s", fcntl(path, F_SETLEASE, F_RDLCK) ? errname(errno) : "0");
	printf(" getlease %s", fcntl(path, F_GETLEASE) < 0 ? errname(errno) : "ok");
	printf(" setown %s", fcntl(path, F_SETOWN, getpid()) ? errname(errno) : "0");
	printf(" getfl %s\n", fcntl(path, F_GETFL) < 0 ? errname(errno) : "ok");
	close(path);

	/* Two read leases on one file, from two descriptions. */
	int a = open(FILE_NAME, O_RDONLY), b = open(FILE_NAME, O_RDONLY);
	set(a, F_RDLCK, "first read lease");
	set(b, F_RDLCK, "second read lease");
	set(b, F_WRLCK, "upgrade with another lease held");
	/* A dup shares the description, and so the lease. */
	int a2 = dup(a);
	get(a2, "dup of a leased fd");
	close(a);
	get(a2, "dup after the original closed");
	close(a2);
	close(b);
	/* The last close drops the lease: a write opener doesn't wait. */
	int w = open(FILE_NAME, O_WRONLY | O_NONBLOCK);
	printf("open for writing after the leases went: %s\n", w < 0 ? errname(errno) : "opened");
	close(w);

	/* Not the owner, without CAP_LEASE. */
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(FILE_NAME, O_RDONLY);
		if (setgid(65534) || setuid(65534))
			printf("could not drop root\n");
		set(fd, F_RDLCK, "read lease as another user");
		set(fd, F_UNLCK, "unlock as another user");
		get(fd, "get as another user");
		fflush(stdout);
		_exit(0);
	}
	reap(pid, NULL);
}

static void breaks(void)
{
	signal(SIGIO, on_sigio);
	/* A write lease broken by a reader: SIGIO to the holder, O_NONBLOCK is EWOULDBLOCK,
	 * F_GETLEASE shows the downgrade, a downgrade lets readers in. */
	int fd = open(FILE_NAME, O_RDONLY);
	set(fd, F_WRLCK, "write lease");
	reap(opener(O_RDONLY | O_NONBLOCK), "nonblocking read open");
	for (int i = 0; i < 1000 && !sigio_count; i++)
		usleep(1000);
	printf("SIGIO: %d\n", sigio_count > 0);
	get(fd, "after the break");
	set(fd, F_RDLCK, "downgrade");
	get(fd, "after the downgrade");
	reap(opener(O_RDONLY | O_NONBLOCK), "read open after the downgrade");
	reap(opener(O_WRONLY | O_NONBLOCK), "nonblocking write open");
	get(fd, "after the write open's break");
	set(fd, F_UNLCK, "unlock");
	close(fd);

	/* F_SETSIG: the break signal carries POLL_MSG and the descriptor. A blocking writer
	 * waits until the holder unlocks. */
	int sig = SIGRTMIN + 1;
	sigset_t block;
	sigemptyset(&block);
	sigaddset(&block, sig);
	sigprocmask(SIG_BLOCK, &block, NULL);
	fd = open(FILE_NAME, O_RDONLY);
	fcntl(fd, F_SETSIG, sig);
	set(fd, F_RDLCK, "read lease with F_SETSIG");
	printf("owner is the caller: %d\n", fcntl(fd, F_GETOWN) == getpid());
	pid_t w = opener(O_WRONLY);
	await_break(sig, fd);
	get(fd, "while the writer waits");
	set(fd, F_UNLCK, "unlock for the writer");
	reap(w, "blocking write open");
	/* Unlocking a lease also clears the description's owner and F_SETSIG's signal. */
	printf("after unlock: owner %d signal %d\n", fcntl(fd, F_GETOWN), fcntl(fd, F_GETSIG));
	fcntl(fd, F_SETSIG, sig);

	/* truncate(2) by another process breaks a read lease too. */
	set(fd, F_RDLCK, "read lease again");
	fflush(stdout);
	pid_t t = fork();
	if (t == 0)
		_exit(truncate(FILE_NAME, 3) ? errno : 0);
	await_break(sig, fd);
	/* The truncate waits for the lease to go. */
	usleep(100000);
	struct stat st;
	stat(FILE_NAME, &st);
	printf("size while truncate waits: %ld\n", (long)st.st_size);
	set(fd, F_UNLCK, "unlock for truncate");
	reap(t, "truncate");
	stat(FILE_NAME, &st);
	printf("size after: %ld\n", (long)st.st_size);
	fcntl(fd, F_SETSIG, sig);

	/* A signal interrupts a waiting opener (no SA_RESTART: EINTR). */
	set(fd, F_RDLCK, "read lease for the interrupted opener");
	fflush(stdout);
	pid_t i = fork();
	if (i == 0) {
		struct sigaction sa = {0};
		sa.sa_handler = on_usr1;
		sigaction(SIGUSR1, &sa, NULL);
		_exit(open(FILE_NAME, O_RDWR) < 0 ? errno : 0);
	}
	await_break(sig, fd);
	kill(i, SIGUSR1);
	reap(i, "interrupted open");
	get(fd, "after the interrupted opener");
	set(fd, F_UNLCK, "unlock");
	close(fd);
	sigprocmask(SIG_UNBLOCK, &block, NULL);
}

int main(void)
{
	unlink(FILE_NAME);
	int fd = open(FILE_NAME, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	write(fd, "leased", 6);
	close(fd);
	rules();
	breaks();
	unlink(FILE_NAME);
	return 0;
}
