/* Touching a page of a file mapping wholly past the end of the file raises
 * SIGBUS with BUS_ADRERR and the address; the rest of the file's last page
 * reads as zeros; growing the file makes the page readable. Private and
 * shared mappings, reads and writes. */
#include "conf.h"
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <sys/mman.h>
#include <unistd.h>

#define PAGE 4096

static sigjmp_buf env;
static volatile int got_sig, got_code;
static void *volatile got_addr;

static void on_fault(int sig, siginfo_t *si, void *ctx)
{
	(void)ctx;
	got_sig = sig;
	got_code = si->si_code;
	got_addr = si->si_addr;
	siglongjmp(env, 1);
}

/* Reads (or writes) one byte at p; reports the signal it raised, if any. */
static void touch(const char *what, volatile char *p, int write)
{
	got_sig = 0;
	if (sigsetjmp(env, 1) == 0) {
		if (write)
			*p = 1;
		else
			(void)*p;
		printf("%s: no signal\n", what);
	} else {
		printf("%s: %s, code %s, address %s\n", what,
		       got_sig == SIGBUS ? "SIGBUS" : got_sig == SIGSEGV ? "SIGSEGV" : "other",
		       got_code == BUS_ADRERR ? "BUS_ADRERR" : "other",
		       got_addr == (void *)p ? "right" : "wrong");
	}
}

int main(void)
{
	struct sigaction sa = {0};
	sa.sa_sigaction = on_fault;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGBUS, &sa, NULL);
	sigaction(SIGSEGV, &sa, NULL);

	char path[] = "/tmp/sigbusXXXXXX";
	int fd = mkstemp(path);
	CHECK("mkstemp", fd >= 0);
	unlink(path);
	CHECK("write 100 bytes", write(fd, "0123456789", 10) == 10 && ftruncate(fd, 100) == 0);
	for (int shared = 0; shared < 2; shared++) {
		const char *kind = shared ? "shared" : "private";
		volatile char *m = mmap(NULL, 3 * PAGE, PROT_READ | PROT_WRITE,
		                        shared ? MAP_SHARED : MAP_PRIVATE, fd, 0);
		CHECK("mmap 3 pages of a 100-byte file", m != MAP_FAILED);
		printf("%s: byte 0 '%c', byte 100 %d, byte 4095 %d\n", kind, m[0], m[100], m[PAGE - 1]);
		char what[64];
		snprintf(what, sizeof what, "%s read of page 1", kind);
		touch(what, m + PAGE + 7, 0);
		snprintf(what, sizeof what, "%s write of page 2", kind);
		touch(what, m + 2 * PAGE, 1);
		CHECK("grow the file to 2 pages", ftruncate(fd, 2 * PAGE) == 0);
		snprintf(what, sizeof what, "%s read of page 1 after growing", kind);
		touch(what, m + PAGE + 7, 0);
		snprintf(what, sizeof what, "%s read of page 2 after growing", kind);
		touch(what, m + 2 * PAGE, 0);
		CHECK("shrink back", ftruncate(fd, 100) == 0);
		munmap((void *)m, 3 * PAGE);
	}
	/* A mapping that starts past the end of the file. */
	volatile char *far = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, 4 * PAGE);
	CHECK("mmap at offset 4 pages", far != MAP_FAILED);
	touch("read of a mapping past the end", far, 0);
	return 0;
}
