/* read/write/readv/writev/pread/pwrite/lseek on stdio. The harness runs this
 * with stdin and stdout as pipes and feeds a known text on stdin. All output
 * goes through write(2)/writev(2) directly (no stdio buffering). */
#include "conf.h"
#include <stdarg.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static void out(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (write(1, buf, n) != n)
		_exit(3);
}

static const char *res(long r, int e)
{
	static char buf[64];
	if (r < 0)
		snprintf(buf, sizeof buf, "-1 errno=%s", errname(e));
	else
		snprintf(buf, sizeof buf, "%ld", r);
	return buf;
}

#define RAW(label, expr)                                   \
	do {                                               \
		errno = 0;                                 \
		long _r = (long)(expr);                    \
		out("%s: %s\n", label, res(_r, errno));    \
	} while (0)

int main(void)
{
	/* writev of several iovecs, including empty ones. */
	struct iovec iov[5] = {
		{ "writev: ", 8 },
		{ "", 0 },
		{ "one ", 4 },
		{ "two ", 4 },
		{ "three\n", 6 },
	};
	long w = writev(1, iov, 5);
	out("writev returned: %ld\n", w);
	RAW("write 0 bytes", write(1, "", 0));
	RAW("writev iovcnt 0", writev(1, iov, 0));
	RAW("writev iovcnt -1", syscall(SYS_writev, 1, iov, -1));
	RAW("writev iovcnt 1025", syscall(SYS_writev, 1, iov, 1025));
	RAW("write bad buffer", syscall(SYS_write, 1, (void *)8, 10));
	RAW("pwrite to pipe", pwrite(1, "x", 1, 0));
	RAW("lseek on pipe", lseek(1, 0, SEEK_CUR));
	RAW("pread from pipe", pread(0, iov, 1, 0));
	RAW("write to stdin (read end)", write(0, "x", 1));
	RAW("read from stdout (write end)", read(1, iov, 1));

	/* readv of the first bytes into three small buffers. */
	static char text[1 << 20];
	char a[3], b[5], c[7];
	struct iovec riov[3] = { { a, 3 }, { b, 5 }, { c, 7 } };
	long total = 0;
	long r = readv(0, riov, 3);
	out("readv returned > 0: %s\n", r > 0 ? "yes" : "no");
	/* copy out what readv filled, in order */
	for (int i = 0; i < 3 && r > 0; i++) {
		long k = r < (long)riov[i].iov_len ? r : (long)riov[i].iov_len;
		memcpy(text + total, riov[i].iov_base, k);
		total += k;
		r -= k;
	}
	/* then read(2) until EOF with odd-sized chunks */
	int reads = 0;
	for (;;) {
		long n = read(0, text + total, 1000 < sizeof text - total ? 1000 : sizeof text - total);
		if (n < 0) {
			out("read error: %s\n", errname(errno));
			return 1;
		}
		if (n == 0)
			break;
		total += n;
		reads++;
		if (total == sizeof text)
			break;
	}
	RAW("read at EOF", read(0, a, 1));
	long lines = 0;
	for (long i = 0; i < total; i++)
		lines += text[i] == '\n';
	out("stdin bytes: %ld lines: %ld checksum: %016llx\n", total, lines,
	    (unsigned long long)fnv1a(text, total, 0));
	/* echo (the first 4 KiB) back with writev, framed */
	long shown = total < 4096 ? total : 4096;
	struct iovec e[3] = {
		{ "--- stdin begins ---\n", 21 },
		{ text, shown },
		{ "--- stdin ends ---\n", 19 },
	};
	long ew = writev(1, e, 3);
	out("echo writev returned: %ld (expected %ld)\n", ew, 21 + shown + 19);
	return 0;
}
