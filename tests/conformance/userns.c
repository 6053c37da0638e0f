/* User namespaces (issue 15 item 5): unshare(CLONE_NEWUSER) as root and as uid 1000, the
 * ids before and after uid_map/gid_map are written (65534 when unmapped), the write rules
 * of uid_map, gid_map and setgroups (once, EINVAL for a bad map, EPERM for ids the writer
 * may not map), the capabilities a new namespace gives and what they reach (the UTS and
 * mount namespaces it owns, files whose owner is mapped) and what they don't (files of an
 * unmapped owner, the parent's hostname), nesting, and the EINVAL/EPERM cases of unshare
 * and setns. Natively this runs as root: every namespace is made by a child for itself,
 * the only mount is a tmpfs in a mount namespace of the child's own, and the scratch
 * directory is removed at the end. */
#include "conf.h"
#include <fcntl.h>
#include <grp.h>
#include <sys/sysmacros.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>

struct cap_header {
	uint32_t version;
	int pid;
};
struct cap_data {
	uint32_t effective, permitted, inheritable;
};
#define CAP_V3 0x20080522

static char base[64];

static const char *at(const char *rel)
{
	static char buf[4][128];
	static int i;
	char *out = buf[i++ % 4];
	snprintf(out, 128, "%s/%s", base, rel);
	return out;
}

#define P(label, expr)                                                       \
	do {                                                                 \
		errno = 0;                                                   \
		long r_ = (long)(expr);                                      \
		printf("%s: %s\n", label, r_ < 0 ? errname(errno) : "0");    \
	} while (0)

/* Writes `text` to /proc/self/NAME (or /proc/PID/NAME): "0" or the errno's name. */
static const char *write_file(pid_t pid, const char *name, const char *text)
{
	char path[64];
	if (pid)
		snprintf(path, sizeof path, "/proc/%d/%s", pid, name);
	else
		snprintf(path, sizeof path, "/proc/self/%s", name);
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return errname(errno);
	ssize_t n = write(fd, text, strlen(text));
	int e = errno;
	close(fd);
	return n < 0 ? errname(e) : "0";
}

static void show_file(const char *label, pid_t pid, const char *name)
{
	char path[64], buf[512];
	if (pid)
		snprintf(path, sizeof path, "/proc/%d/%s", pid, name);
	else
		snprintf(path, sizeof path, "/proc/self/%s", name);
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
	printf("%s: [%s]\n", label, buf);
}

static void show_ids(const char *label)
{
	uid_t r, e, s;
	gid_t gr, ge, gs;
	getresuid(&r, &e, &s);
	getresgid(&gr, &ge, &gs);
	printf("%s: uid %u %u %u gid %u %u %u\n", label, r, e, s, gr, ge, gs);
}

static void show_status_ids(const char *label)
{
	char buf[4096];
	int fd = open("/proc/self/status", O_RDONLY);
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n"))
		if (!strncmp(l, "Uid:", 4) || !strncmp(l, "Gid:", 4) || !strncmp(l, "Groups:", 7))
			printf("%s: %s\n", label, l);
}

static void show_caps(const char *label)
{
	struct cap_header h = {CAP_V3, 0};
	struct cap_data d[2];
	if (syscall(SYS_capget, &h, d)) {
		printf("%s: capget %s\n", label, errname(errno));
		return;
	}
	printf("%s: eff %08x%08x prm %08x%08x\n", label, d[1].effective, d[0].effective,
	       d[1].permitted, d[0].permitted);
}

static void show_owner(const char *label, const char *path)
{
	struct stat st;
	if (stat(path, &st)) {
		printf("%s: %s\n", label, errname(errno));
		return;
	}
	printf("%s: %u:%u\n", label, st.st_uid, st.st_gid);
}

static void try_open(const char *label, const char *path, int flags)
{
	int fd = open(path, flags);
	printf("%s: %s\n", label, fd < 0 ? errname(errno) : "0");
	if (fd >= 0)
		close(fd);
}

/* Runs `f` in a child and waits. */
static void in_child(void (*f)(void))
{
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		f();
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(c, &st, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st))
		printf("child status %d\n", st);
}

/* Root makes a namespace: unmapped ids, every capability there, then the maps. */
static void as_root(void)
{
	char before[64], after[64];
	readlink("/proc/self/ns/user", before, sizeof before);
	P("unshare(NEWUSER)", unshare(CLONE_NEWUSER));
	ssize_t n = readlink("/proc/self/ns/user", after, sizeof after);
	after[n > 0 ? n : 0] = 0;
	printf("new ns link differs: %d\n", strcmp(before, after) != 0);
	show_ids("unmapped");
	show_status_ids("unmapped");
	show_caps("unmapped");
	show_owner("unmapped / owner", "/");
	show_file("uid_map empty", 0, "uid_map");
	show_file("setgroups", 0, "setgroups");
	P("setuid(0) unmapped", setuid(0));

	/* Malformed maps: EINVAL before anything is written. */
	const char *bad[] = {
		"",            "0 0",          "0 0 0\n",       "0 0 1 x\n",
		"x 0 1\n",     "4294967295 0 1\n", "0 4294967295 1\n", "0 0 1\n\n",
		"0 0 2\n1 5 1\n", "0 0 1\n5 0 1\n", "4294967294 0 2\n",
	};
	for (unsigned i = 0; i < sizeof bad / sizeof *bad; i++)
		printf("uid_map bad %u: %s\n", i, write_file(0, "uid_map", bad[i]));
	/* Not at offset 0: EINVAL; pwrite isn't allowed at all (a seq file's). */
	int fd = open("/proc/self/uid_map", O_WRONLY);
	errno = 0;
	printf("uid_map pwrite: %s\n", pwrite(fd, "0 0 1\n", 6, 0) < 0 ? errname(errno) : "0");
	lseek(fd, 1, SEEK_SET);
	errno = 0;
	printf("uid_map write at 1: %s\n", write(fd, "0 0 1\n", 6) < 0 ? errname(errno) : "0");
	close(fd);

	printf("setgroups bogus: %s\n", write_file(0, "setgroups", "maybe"));
	printf("setgroups allow: %s\n", write_file(0, "setgroups", "allow\n"));
	printf("uid_map 0 0 1: %s\n", write_file(0, "uid_map", "0 0 1\n"));
	printf("uid_map again: %s\n", write_file(0, "uid_map", "0 0 1\n"));
	printf("gid_map 0 0 1 10 10 5: %s\n", write_file(0, "gid_map", "0 0 1\n10 10 5\n"));
	printf("setgroups deny: %s\n", write_file(0, "setgroups", "deny"));
	printf("gid_map 0 0 1: %s\n", write_file(0, "gid_map", "0 0 1\n"));
	printf("setgroups deny after gid_map: %s\n", write_file(0, "setgroups", "deny"));
	printf("setgroups allow after deny: %s\n", write_file(0, "setgroups", "allow"));
	show_file("uid_map", 0, "uid_map");
	show_file("gid_map", 0, "gid_map");
	show_ids("mapped");
	show_status_ids("mapped");
	show_caps("mapped");
	show_owner("mapped / owner", "/");
	gid_t g[2] = {10, 12};
	P("setgroups(10,12)", setgroups(2, g));
	gid_t bad_g = 20;
	P("setgroups(20) unmapped", setgroups(1, &bad_g));
	show_status_ids("groups");
	P("setresuid(-1,5,-1) unmapped", setresuid(-1, 5, -1));
	P("setgid(12)", setgid(12));
	show_ids("after setgid");

	/* The parent's UTS namespace isn't this namespace's: EPERM. */
	P("sethostname in parent's uts", sethostname("x", 1));
	int user = open("/proc/self/ns/user", O_RDONLY);
	P("setns(own user)", setns(user, CLONE_NEWUSER));
	close(user);
}

/* The nesting limit: each level maps root to the parent's root. */
static void nesting(void)
{
	int levels = 0;
	for (;;) {
		if (unshare(CLONE_NEWUSER)) {
			printf("nesting stops after %d: %s\n", levels, errname(errno));
			break;
		}
		levels++;
		const char *u = write_file(0, "uid_map", "0 0 1\n");
		const char *s = write_file(0, "setgroups", "deny");
		const char *g = write_file(0, "gid_map", "0 0 1\n");
		if (strcmp(u, "0") || strcmp(s, "0") || strcmp(g, "0")) {
			printf("level %d maps: %s %s %s\n", levels, u, s, g);
			break;
		}
		if (levels > 64)
			break;
	}
}

/* No mapping for the creator's euid in the namespace: a child can't be made (EPERM). */
static void unmapped_creator(void)
{
	P("unshare(NEWUSER)", unshare(CLONE_NEWUSER));
	P("unshare(NEWUSER) unmapped creator", unshare(CLONE_NEWUSER));
}

/* clone(CLONE_NEWUSER): the child is in the new namespace with every capability there;
 * the parent maps it from outside (as root: any ids of its own namespace). */
static void cloned(void)
{
	/* ready: the child has shown its unmapped ids; go: the parent has mapped them. (A
	 * sleep instead of ready let a busy machine map them first.) */
	int go[2], ready[2];
	if (pipe(go) || pipe(ready))
		return;
	fflush(stdout);
	pid_t c = (pid_t)syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
	if (c == 0) {
		show_ids("cloned unmapped");
		show_caps("cloned unmapped");
		fflush(stdout);
		write(ready[1], "r", 1);
		char b;
		read(go[0], &b, 1);
		show_ids("cloned mapped");
		show_file("cloned uid_map", 0, "uid_map");
		fflush(stdout);
		_exit(0);
	}
	char r;
	read(ready[0], &r, 1);
	printf("parent maps 0 0 2: %s\n", write_file(c, "uid_map", "0 0 2\n"));
	printf("parent maps gid 0 0 1: %s\n", write_file(c, "gid_map", "0 0 1\n"));
	show_file("parent sees", c, "uid_map");
	fflush(stdout);
	write(go[1], "g", 1);
	int st;
	waitpid(c, &st, 0);
	printf("cloned status %d\n", st);
}

static void *sleeper(void *arg)
{
	(void)arg;
	pause();
	return NULL;
}

static void threaded(void)
{
	pthread_t th;
	pthread_create(&th, NULL, sleeper, NULL);
	P("unshare(NEWUSER) with two threads", unshare(CLONE_NEWUSER));
}

static void chrooted(void)
{
	P("chroot(scratch)", chroot(base));
	P("unshare(NEWUSER) chrooted", unshare(CLONE_NEWUSER));
}

/* Mounts a new user namespace's root inherits stay as they were (Linux's lock_mnt_tree):
 * no unmounting or moving them, no clearing their ro flag, no reconfiguring their file
 * system, and no bind of their parent that would uncover what they hide. Natively the
 * mounts are made in a private mount namespace of the child's own first. */
static void locked_mounts(void)
{
	P("unshare(NEWNS)", unshare(CLONE_NEWNS));
	P("make private", mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL));
	P("mount ro tmpfs", mount("t", at("mnt"), "tmpfs", MS_RDONLY, "size=1m"));
	P("mount covering tmpfs", mount("t", at("rootdir"), "tmpfs", 0, "size=1m"));
	P("unshare(NEWUSER|NEWNS)", unshare(CLONE_NEWUSER | CLONE_NEWNS));
	printf("uid_map: %s\n", write_file(0, "uid_map", "0 0 1\n"));
	P("remount bind rw", mount(NULL, at("mnt"), NULL, MS_REMOUNT | MS_BIND, NULL));
	P("remount bind ro,nosuid", mount(NULL, at("mnt"), NULL,
					  MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID, NULL));
	P("remount sb", mount(NULL, at("mnt"), NULL, MS_REMOUNT | MS_RDONLY, NULL));
	P("umount locked", umount(at("mnt")));
	P("umount2 detach locked", umount2(at("rootdir"), MNT_DETACH));
	P("move locked", mount(at("mnt"), at("rootdir"), NULL, MS_MOVE, NULL));
	P("bind parent non-recursive", mount(base, at("rootdir"), NULL, MS_BIND, NULL));
	P("bind parent recursive", mount(base, at("rootdir"), NULL, MS_BIND | MS_REC, NULL));
	P("umount the recursive bind", umount2(at("rootdir"), MNT_DETACH));
	P("mount own tmpfs over", mount("t", at("mnt"), "tmpfs", 0, "size=1m"));
	P("remount own rw->ro", mount(NULL, at("mnt"), NULL, MS_REMOUNT | MS_RDONLY, NULL));
	P("umount own", umount(at("mnt")));
}

static int to_parent[2], from_parent[2];
static int root_shm = -1;
static volatile uid_t got_uid = 12345;

static void on_usr1(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)ctx;
	got_uid = si->si_uid;
}

static const char *send_creds(int fd, uid_t uid, gid_t gid)
{
	struct ucred c = {getpid(), uid, gid};
	char cbuf[CMSG_SPACE(sizeof c)];
	memset(cbuf, 0, sizeof cbuf);
	struct iovec iov = {"x", 1};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			   .msg_controllen = sizeof cbuf};
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	h->cmsg_level = SOL_SOCKET;
	h->cmsg_type = SCM_CREDENTIALS;
	h->cmsg_len = CMSG_LEN(sizeof c);
	memcpy(CMSG_DATA(h), &c, sizeof c);
	return sendmsg(fd, &m, 0) < 0 ? errname(errno) : "0";
}

static void recv_creds(int fd)
{
	char buf[4], cbuf[CMSG_SPACE(sizeof(struct ucred))];
	struct iovec iov = {buf, sizeof buf};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			   .msg_controllen = sizeof cbuf};
	if (recvmsg(fd, &m, MSG_DONTWAIT) < 0) {
		printf("recvmsg: %s\n", errname(errno));
		return;
	}
	struct cmsghdr *h = CMSG_FIRSTHDR(&m);
	struct ucred c;
	if (h && h->cmsg_type == SCM_CREDENTIALS) {
		memcpy(&c, CMSG_DATA(h), sizeof c);
		printf("received ids: %u %u\n", c.uid, c.gid);
	}
}

/* uid 1000 makes a namespace: only its own ids may be mapped; the namespace's root has
 * every capability over what it owns and over files of mapped owners, none over files of
 * unmapped owners (the sandbox's root's). */
static void as_user(void)
{
	/* Opened as root: a process of another user's ns links can't be opened. */
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/ns/user", getppid());
	int parent_ns = open(path, O_RDONLY);
	if (setgroups(0, NULL) || setresgid(1000, 1000, 1000) || setresuid(1000, 1000, 1000)) {
		printf("drop: %s\n", errname(errno));
		return;
	}
	/* Changing the effective uid made the process non-dumpable, which leaves its /proc
	 * files to root. */
	prctl(PR_SET_DUMPABLE, 1);
	int sv[2];
	socketpair(AF_UNIX, SOCK_DGRAM, 0, sv);
	int on = 1;
	setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
	show_caps("uid 1000");
	P("unshare(NEWUSER) as 1000", unshare(CLONE_NEWUSER));
	show_ids("1000 unmapped");
	show_caps("1000 unmapped");
	printf("uid_map 0 0 1: %s\n", write_file(0, "uid_map", "0 0 1\n"));
	printf("uid_map 0 1000 2: %s\n", write_file(0, "uid_map", "0 1000 2\n"));
	printf("uid_map 0 999 1: %s\n", write_file(0, "uid_map", "0 999 1\n"));
	printf("gid_map before deny: %s\n", write_file(0, "gid_map", "0 1000 1\n"));
	printf("uid_map 0 1000 1: %s\n", write_file(0, "uid_map", "0 1000 1\n"));
	printf("setgroups deny: %s\n", write_file(0, "setgroups", "deny\n"));
	printf("setgroups allow after deny: %s\n", write_file(0, "setgroups", "allow\n"));
	printf("gid_map 0 1000 1: %s\n", write_file(0, "gid_map", "0 1000 1\n"));
	show_file("1000 uid_map", 0, "uid_map");
	show_ids("1000 mapped");
	show_status_ids("1000 mapped");
	show_caps("1000 mapped");
	P("setgroups(0) after deny", setgroups(0, NULL));

	/* System V owners in this namespace's terms; IPC_SET takes them in its terms. */
	struct shmid_ds ds;
	P("IPC_STAT root's segment", shmctl(root_shm, IPC_STAT, &ds));
	printf("root's segment owner %u:%u creator %u:%u\n", ds.shm_perm.uid, ds.shm_perm.gid,
	       ds.shm_perm.cuid, ds.shm_perm.cgid);
	int own = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
	P("IPC_STAT own segment", shmctl(own, IPC_STAT, &ds));
	printf("own segment owner %u:%u creator %u:%u\n", ds.shm_perm.uid, ds.shm_perm.gid,
	       ds.shm_perm.cuid, ds.shm_perm.cgid);
	ds.shm_perm.uid = 5;
	P("IPC_SET unmapped owner", shmctl(own, IPC_SET, &ds));
	ds.shm_perm.uid = 0;
	P("IPC_SET owner 0", shmctl(own, IPC_SET, &ds));
	P("IPC_RMID own", shmctl(own, IPC_RMID, NULL));

	/* Credentials on a socket made before the namespace, in its terms. */
	struct ucred peer;
	socklen_t plen = sizeof peer;
	getsockopt(sv[0], SOL_SOCKET, SO_PEERCRED, &peer, &plen);
	printf("SO_PEERCRED ids: %u %u\n", peer.uid, peer.gid);
	printf("SCM_CREDENTIALS 0 0: %s\n", send_creds(sv[0], 0, 0));
	printf("SCM_CREDENTIALS unmapped 5: %s\n", send_creds(sv[0], 5, 0));
	recv_creds(sv[1]);

	/* Files: the unmapped owner's stay closed to this root; the mapped owner's open. */
	show_owner("root's secret owner", at("secret"));
	try_open("read root's 0600 secret", at("secret"), O_RDONLY);
	try_open("write root's 0666-less dir", at("rootdir/new"), O_WRONLY | O_CREAT);
	show_owner("own 0000 file owner", at("mine"));
	try_open("read own 0000 file (DAC override)", at("mine"), O_RDONLY);
	P("chmod root's secret", chmod(at("secret"), 0644));
	P("chown own file to unmapped 5", chown(at("mine"), 5, -1));
	P("chown own file to 0:0", chown(at("mine"), 0, 0));
	show_owner("own file owner after", at("mine"));

	/* A UTS namespace of its own: its hostname is this root's to set. */
	P("sethostname in parent's uts", sethostname("x", 1));
	P("unshare(NEWUTS)", unshare(CLONE_NEWUTS));
	P("sethostname inner", sethostname("inner", 5));
	struct utsname u;
	uname(&u);
	printf("nodename: %s\n", u.nodename);

	/* A mount namespace of its own: tmpfs mounts there. */
	P("mount tmpfs before NEWNS", mount("t", at("mnt"), "tmpfs", 0, NULL));
	P("unshare(NEWNS)", unshare(CLONE_NEWNS));
	P("mount tmpfs in own mount ns", mount("t", at("mnt"), "tmpfs", 0, "size=1m"));
	try_open("create in the tmpfs", at("mnt/f"), O_CREAT | O_WRONLY);
	show_owner("its owner", at("mnt/f"));
	/* Devices need CAP_MKNOD in the initial namespace. */
	P("mknod char device", mknod(at("mnt/dev"), S_IFCHR | 0600, makedev(1, 3)));
	P("mknod fifo", mknod(at("mnt/fifo"), S_IFIFO | 0600, 0));
	P("umount", umount(at("mnt")));

	/* si_uid in this namespace's terms: its own (0), a child's (0) and root outside's
	 * (unmapped: 65534). */
	struct sigaction sa = {.sa_sigaction = on_usr1, .sa_flags = SA_SIGINFO | SA_RESTART};
	sigaction(SIGUSR1, &sa, NULL);
	kill(getpid(), SIGUSR1);
	printf("si_uid from self: %u\n", got_uid);
	pid_t kid = fork();
	if (kid == 0)
		_exit(3);
	siginfo_t wi;
	memset(&wi, 0, sizeof wi);
	waitid(P_PID, kid, &wi, WEXITED);
	printf("waitid si_uid: %u status %d\n", wi.si_uid, wi.si_status);
	got_uid = 12345;

	/* The parent reads this namespace's maps in its own terms. */
	fflush(stdout);
	char c = 'r';
	write(to_parent[1], &c, 1);
	read(from_parent[0], &c, 1);

	printf("si_uid from root outside: %u\n", got_uid);

	/* Back to the parent's namespace: no CAP_SYS_ADMIN there. */
	P("setns(parent's user ns)", setns(parent_ns, CLONE_NEWUSER));
	close(parent_ns);
}

int main(void)
{
	strcpy(base, "/tmp/usernsconf-XXXXXX");
	if (!mkdtemp(base))
		return 1;
	chmod(base, 0755);
	/* root's secret (0600, owner 0) and a file of uid 1000 nobody may read by mode. */
	int fd = open(at("secret"), O_CREAT | O_WRONLY, 0600);
	write(fd, "s", 1);
	close(fd);
	fd = open(at("mine"), O_CREAT | O_WRONLY, 0600);
	close(fd);
	chown(at("mine"), 1000, 1000);
	chmod(at("mine"), 0);
	mkdir(at("rootdir"), 0755);
	mkdir(at("mnt"), 0777);
	chmod(at("mnt"), 0777);

	show_file("overflowuid", 0, "../sys/kernel/overflowuid");
	show_file("overflowgid", 0, "../sys/kernel/overflowgid");
	in_child(as_root);
	in_child(nesting);
	in_child(cloned);
	in_child(unmapped_creator);
	in_child(threaded);
	in_child(chrooted);
	in_child(locked_mounts);

	if (pipe(to_parent) || pipe(from_parent))
		return 1;
	root_shm = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0644);
	fflush(stdout);
	pid_t c = fork();
	if (c == 0) {
		as_user();
		fflush(stdout);
		_exit(0);
	}
	char b;
	if (read(to_parent[0], &b, 1) == 1) {
		show_file("parent reads child's uid_map", c, "uid_map");
		show_file("parent reads child's gid_map", c, "gid_map");
		show_file("parent reads child's setgroups", c, "setgroups");
		printf("parent writes child's uid_map: %s\n", write_file(c, "uid_map", "1 1 1\n"));
		kill(c, SIGUSR1);
		usleep(100000);
		write(from_parent[1], &b, 1);
	}
	int st;
	waitpid(c, &st, 0);
	printf("user child status %d\n", st);
	shmctl(root_shm, IPC_RMID, NULL);

	unlink(at("secret"));
	unlink(at("mine"));
	unlink(at("rootdir/new"));
	rmdir(at("rootdir"));
	rmdir(at("mnt"));
	printf("cleaned %d\n", rmdir(base) == 0);
	return 0;
}
