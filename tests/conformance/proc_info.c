/* /proc completeness (issue 14 item 10): /proc/loadavg, /proc/meminfo and /proc/stat in
 * Linux's formats and agreeing with sysinfo; /proc/self/{limits,io,uid_map,gid_map,setgroups,
 * smaps,smaps_rollup} agreeing with getrlimit, the bytes the program read and wrote, its
 * ids and its mappings; /proc/sys/kernel/{pid_max,threads-max,ngroups_max,random/uuid,
 * random/boot_id} and /proc/sys/vm/overcommit_memory.
 *
 * Values differ between the host and the sandbox, so properties are printed, never values. */
#include "conf.h"
#include <ctype.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sysinfo.h>
#include <time.h>

static char text[1 << 20];

/* Reads a whole file into text; returns its length or -1. */
static int slurp(const char *path)
{
	int fd = open(path, O_RDONLY);
	text[0] = 0;
	if (fd < 0)
		return -1;
	int n = 0, r;
	while ((r = read(fd, text + n, sizeof text - 1 - n)) > 0)
		n += r;
	close(fd);
	text[n] = 0;
	return n;
}

/* The number after "key" at a line start in text (-1 if missing). */
static long long field(const char *key)
{
	size_t k = strlen(key);
	for (char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, key, k))
			return strtoll(l + k, NULL, 10);
	return -1;
}

static void loadavg(void)
{
	CHECK("loadavg readable", slurp("/proc/loadavg") > 0);
	double a, b, c;
	int run, total, last;
	int n = sscanf(text, "%lf %lf %lf %d/%d %d", &a, &b, &c, &run, &total, &last);
	CHECK("loadavg format", n == 6);
	CHECK("loadavg counts", run >= 1 && total >= run && last >= 1);
}

static void meminfo(void)
{
	CHECK("meminfo readable", slurp("/proc/meminfo") > 0);
	const char *keys[] = {"MemTotal:", "MemFree:", "MemAvailable:", "Buffers:", "Cached:",
			      "SwapTotal:", "SwapFree:", "Shmem:", "Committed_AS:", "VmallocTotal:"};
	for (unsigned i = 0; i < sizeof keys / sizeof *keys; i++)
		printf("meminfo has %s %d\n", keys[i], field(keys[i]) >= 0);
	struct sysinfo si;
	sysinfo(&si);
	long long total = field("MemTotal:"), free_kb = field("MemFree:");
	CHECK("MemTotal is sysinfo's totalram", total == (long long)si.totalram * si.mem_unit / 1024);
	CHECK("MemFree <= MemAvailable <= MemTotal",
	      free_kb <= field("MemAvailable:") && field("MemAvailable:") <= total);
}

static void stat_file(void)
{
	CHECK("stat readable", slurp("/proc/stat") > 0);
	unsigned long long v[10] = {0};
	int n = sscanf(text, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
		       &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
	CHECK("stat cpu line has 10 fields", n == 10);
	int cpus = 0;
	for (char *l = text; l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
		if (!strncmp(l, "cpu", 3) && isdigit((unsigned char)l[3]))
			cpus++;
	CHECK("stat has a line per cpu", cpus >= 1);
	const char *keys[] = {"intr ", "ctxt ", "btime ", "processes ", "procs_running ",
			      "procs_blocked ", "softirq "};
	for (unsigned i = 0; i < sizeof keys / sizeof *keys; i++)
		printf("stat has %s%d\n", keys[i], field(keys[i]) >= 0);
	CHECK("procs_running >= 1", field("procs_running ") >= 1);
	CHECK("btime in the past", field("btime ") > 1000000000 && field("btime ") <= time(NULL));
}

static void limits(void)
{
	CHECK("limits readable", slurp("/proc/self/limits") > 0);
	printf("limits header: %.*s\n", (int)(strchr(text, '\n') - text), text);
	struct {
		const char *name;
		int res;
	} rows[] = {{"Max cpu time", RLIMIT_CPU},
		    {"Max file size", RLIMIT_FSIZE},
		    {"Max data size", RLIMIT_DATA},
		    {"Max stack size", RLIMIT_STACK},
		    {"Max core file size", RLIMIT_CORE},
		    {"Max resident set", RLIMIT_RSS},
		    {"Max processes", RLIMIT_NPROC},
		    {"Max open files", RLIMIT_NOFILE},
		    {"Max locked memory", RLIMIT_MEMLOCK},
		    {"Max address space", RLIMIT_AS},
		    {"Max file locks", RLIMIT_LOCKS},
		    {"Max pending signals", RLIMIT_SIGPENDING},
		    {"Max msgqueue size", RLIMIT_MSGQUEUE},
		    {"Max nice priority", RLIMIT_NICE},
		    {"Max realtime priority", RLIMIT_RTPRIO},
		    {"Max realtime timeout", RLIMIT_RTTIME}};
	struct rlimit nl = {1234, 5678};
	struct rlimit old;
	getrlimit(RLIMIT_NOFILE, &old);
	setrlimit(RLIMIT_NOFILE, &nl);
	slurp("/proc/self/limits");
	for (unsigned i = 0; i < sizeof rows / sizeof *rows; i++) {
		char *l = strstr(text, rows[i].name);
		struct rlimit r;
		getrlimit(rows[i].res, &r);
		char soft[32], hard[32], want_s[32], want_h[32];
		int ok = l && sscanf(l + 26, "%31s %31s", soft, hard) == 2;
		if (r.rlim_cur == RLIM_INFINITY)
			strcpy(want_s, "unlimited");
		else
			snprintf(want_s, sizeof want_s, "%llu", (unsigned long long)r.rlim_cur);
		if (r.rlim_max == RLIM_INFINITY)
			strcpy(want_h, "unlimited");
		else
			snprintf(want_h, sizeof want_h, "%llu", (unsigned long long)r.rlim_max);
		printf("limits %s: %s\n", rows[i].name,
		       !ok ? "missing" : !strcmp(soft, want_s) && !strcmp(hard, want_h) ? "as getrlimit" : "differs");
	}
	setrlimit(RLIMIT_NOFILE, &old);
}

static void io(void)
{
	CHECK("io readable", slurp("/proc/self/io") > 0);
	const char *keys[] = {"rchar: ", "wchar: ", "syscr: ", "syscw: ", "read_bytes: ",
			      "write_bytes: ", "cancelled_write_bytes: "};
	for (unsigned i = 0; i < sizeof keys / sizeof *keys; i++)
		printf("io has %s%d\n", keys[i], field(keys[i]) >= 0);
	fflush(stdout);
	slurp("/proc/self/io");
	long long r0 = field("rchar: "), w0 = field("wchar: "), sr0 = field("syscr: "),
		  sw0 = field("syscw: ");
	int p[2];
	pipe(p);
	static char buf[100000];
	for (int i = 0; i < 10; i++) {
		write(p[1], buf, 5000);
		read(p[0], buf, 5000);
	}
	close(p[0]);
	close(p[1]);
	slurp("/proc/self/io");
	long long dr = field("rchar: ") - r0, dw = field("wchar: ") - w0;
	long long dsr = field("syscr: ") - sr0, dsw = field("syscw: ") - sw0;
	/* The reads of /proc/self/io itself count too. */
	CHECK("rchar grew by the pipe reads", dr >= 50000 && dr < 50000 + 4 * (long long)sizeof text);
	CHECK("wchar grew by exactly the pipe writes", dw == 50000);
	CHECK("syscr grew by the reads", dsr >= 10 && dsr < 20);
	CHECK("syscw grew by exactly the writes", dsw == 10);
}

static void id_maps(void)
{
	const char *files[] = {"/proc/self/uid_map", "/proc/self/gid_map"};
	for (int i = 0; i < 2; i++) {
		CHECK(files[i], slurp(files[i]) > 0);
		unsigned long inside, outside, count;
		int n = sscanf(text, "%lu %lu %lu", &inside, &outside, &count);
		unsigned long id = i ? getgid() : getuid();
		printf("%s maps own id: %d\n", files[i],
		       n == 3 && id >= inside && id - inside < count);
	}
	CHECK("setgroups readable", slurp("/proc/self/setgroups") > 0);
	printf("setgroups: %s", text);
}

static void smaps(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	char *m = mmap(NULL, 16 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	for (int i = 0; i < 5; i++)
		m[i * pg] = 1;
	CHECK("smaps readable", slurp("/proc/self/smaps") > 0);
	char head[64];
	snprintf(head, sizeof head, "%lx-", (unsigned long)m);
	char *l = strstr(text, head);
	CHECK("smaps has the mapping", l != NULL);
	if (l) {
		char *save = text;
		memmove(text, l, strlen(l) + 1);
		(void)save;
		printf("smaps Size: %lld kB\n", field("Size:"));
		/* The sandbox may populate pages around a fault (Linux does for files only). */
		long long rss = field("Rss:");
		CHECK("smaps Rss covers the touched pages", rss >= 20 && rss <= 64);
		CHECK("smaps Pss, Private_Dirty, Anonymous = Rss",
		      field("Pss:") == rss && field("Private_Dirty:") == rss &&
			      field("Anonymous:") == rss);
		printf("smaps Swap: %lld kB\n", field("Swap:"));
		printf("smaps Locked: %lld kB\n", field("Locked:"));
		printf("smaps KernelPageSize: %lld kB\n", field("KernelPageSize:"));
		char *vf = strstr(text, "VmFlags:");
		printf("smaps VmFlags rd wr: %d\n", vf && strstr(vf, " rd wr") == vf + 8);
	}
	munmap(m, 16 * pg);
	/* The rollup is the sum of the mappings' Rss. */
	slurp("/proc/self/smaps");
	long long sum = 0;
	for (char *p = text; (p = strstr(p, "\nRss:")); p++)
		sum += strtoll(p + 5, NULL, 10);
	CHECK("smaps_rollup readable", slurp("/proc/self/smaps_rollup") > 0);
	long long roll = field("Rss:");
	if (roll < 0) {
		char *p = strstr(text, "\nRss:");
		roll = p ? strtoll(p + 5, NULL, 10) : -1;
	}
	CHECK("smaps_rollup Rss is the sum (within 64 kB)", roll >= 0 && llabs(roll - sum) <= 64);
	printf("smaps_rollup header [rollup]: %d\n", strstr(text, "[rollup]") != NULL);
}

static void sys_kernel(void)
{
	slurp("/proc/sys/kernel/pid_max");
	CHECK("pid_max", atol(text) >= 301 && atol(text) <= 4194304 && atol(text) > getpid());
	slurp("/proc/sys/kernel/threads-max");
	CHECK("threads-max", atol(text) >= 20);
	slurp("/proc/sys/kernel/ngroups_max");
	printf("ngroups_max: %s", text);
	char a[64], b[64];
	slurp("/proc/sys/kernel/random/uuid");
	strcpy(a, text);
	slurp("/proc/sys/kernel/random/uuid");
	strcpy(b, text);
	CHECK("uuid format", strlen(a) == 37 && a[8] == '-' && a[14] == '4' && a[36] == '\n' &&
				     strchr("89ab", a[19]));
	CHECK("uuid differs per read", strcmp(a, b) != 0);
	slurp("/proc/sys/kernel/random/boot_id");
	strcpy(a, text);
	slurp("/proc/sys/kernel/random/boot_id");
	strcpy(b, text);
	CHECK("boot_id format", strlen(a) == 37 && a[8] == '-' && a[14] == '4');
	CHECK("boot_id stays", strcmp(a, b) == 0);
	slurp("/proc/sys/vm/overcommit_memory");
	CHECK("overcommit_memory", strlen(text) == 2 && strchr("012", text[0]));
}

int main(void)
{
	loadavg();
	meminfo();
	stat_file();
	limits();
	io();
	id_maps();
	smaps();
	sys_kernel();
	return 0;
}
