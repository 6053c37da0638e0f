/* POSIX ACLs on tmpfs (issue 14 item 9): system.posix_acl_access and
 * system.posix_acl_default as Linux stores, checks and answers them: the xattr format and
 * its validation (order of entries, required entries, permissions, version), the mode kept
 * in step with the ACL both ways (setting an ACL rewrites the mode, chmod rewrites the ACL,
 * an ACL the mode can say is not kept), who may set one (the owner or CAP_FOWNER, S_ISGID
 * dropped as Linux drops it), permission checks through named users, groups and the mask,
 * and default ACLs inherited by new files and directories instead of the umask.
 *
 * Works in /dev/shm (tmpfs both natively and in the sandbox); runs as root and checks
 * other users' access from forked children that change their ids. */
#include "conf.h"
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>

#define ACCESS "system.posix_acl_access"
#define DEFAULT "system.posix_acl_default"

enum { USER_OBJ = 1, USER = 2, GROUP_OBJ = 4, GROUP = 8, MASK = 0x10, OTHER = 0x20 };
#define NO_ID 0xffffffffu

struct entry {
	unsigned short tag, perm;
	unsigned int id;
};

/* Encodes entries as the xattr value (version 2, little-endian, as x86 is). */
static size_t encode(unsigned char *buf, unsigned version, const struct entry *e, int n)
{
	memcpy(buf, &version, 4);
	for (int i = 0; i < n; i++)
		memcpy(buf + 4 + 8 * i, &e[i], 8);
	return 4 + 8 * (size_t)n;
}

static int set_acl(const char *path, const char *name, const struct entry *e, int n)
{
	unsigned char buf[4 + 8 * 32];
	size_t len = encode(buf, 2, e, n);
	return setxattr(path, name, buf, len, 0);
}

static const char *tag_name(unsigned tag)
{
	switch (tag) {
	case USER_OBJ: return "user_obj";
	case USER: return "user";
	case GROUP_OBJ: return "group_obj";
	case GROUP: return "group";
	case MASK: return "mask";
	case OTHER: return "other";
	default: return "?";
	}
}

/* Prints an ACL xattr as Linux returns it, or its errno. */
static void show(const char *label, const char *path, const char *name)
{
	unsigned char buf[4 + 8 * 64];
	ssize_t n = getxattr(path, name, buf, sizeof buf);
	if (n < 0) {
		printf("%s: errno=%s\n", label, errname(errno));
		return;
	}
	unsigned version;
	memcpy(&version, buf, 4);
	printf("%s: %zd bytes, version %u:", label, n, version);
	for (ssize_t off = 4; off + 8 <= n; off += 8) {
		struct entry e;
		memcpy(&e, buf + off, 8);
		if (e.id == NO_ID)
			printf(" %s::%o", tag_name(e.tag), e.perm);
		else
			printf(" %s:%u:%o", tag_name(e.tag), e.id, e.perm);
	}
	printf("\n");
}

static void show_mode(const char *label, const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0)
		printf("%s: stat errno=%s\n", label, errname(errno));
	else
		printf("%s: mode %04o\n", label, st.st_mode & 07777);
}

static void show_list(const char *label, const char *path)
{
	char names[512];
	ssize_t n = listxattr(path, names, sizeof names);
	printf("%s:", label);
	if (n < 0)
		printf(" errno=%s", errname(errno));
	for (ssize_t off = 0; off < n; off += (ssize_t)strlen(names + off) + 1)
		printf(" %s", names + off);
	printf("\n");
}

/* Runs `body` in a child with these ids (no supplementary groups but `group`, if not -1),
 * and prints what it printed with the child's status. */
static void as_user(const char *label, uid_t uid, gid_t gid, int group, void (*body)(void))
{
	fflush(stdout);
	pid_t pid = fork();
	if (pid == 0) {
		gid_t groups[1] = {(gid_t)group};
		if (setgroups(group < 0 ? 0 : 1, groups) != 0 || setresgid(gid, gid, gid) != 0 ||
		    setresuid(uid, uid, uid) != 0) {
			printf("%s: cannot change ids: %s\n", label, errname(errno));
			_exit(1);
		}
		body();
		fflush(stdout);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	printf("%s: %s\n", label, wait_status(st));
}

static void try_open(const char *label, const char *path, int flags)
{
	int fd = open(path, flags);
	printf("%s: %s\n", label, fd >= 0 ? "ok" : errname(errno));
	if (fd >= 0)
		close(fd);
}

static void checks_for_named_user(void)
{
	try_open("  named user reads", "f", O_RDONLY);
	try_open("  named user writes", "f", O_WRONLY);
	ERRCALL("  named user access(R_OK)", access("f", R_OK));
	ERRCALL("  named user access(W_OK)", access("f", W_OK));
	struct entry e[] = {{USER_OBJ, 7, NO_ID}, {GROUP_OBJ, 0, NO_ID}, {OTHER, 0, NO_ID}};
	ERRCALL("  non-owner sets an ACL", set_acl("f", ACCESS, e, 3));
	ERRCALL("  non-owner removes the ACL", removexattr("f", ACCESS));
	try_open("  named user opens d/inner", "d/inner", O_RDONLY);
}

static void checks_for_named_group(void)
{
	try_open("  named group reads", "f", O_RDONLY);
	try_open("  named group writes", "f", O_WRONLY);
}

static void checks_for_other(void)
{
	try_open("  other reads", "f", O_RDONLY);
	try_open("  other writes", "f", O_WRONLY);
	try_open("  other opens d/inner", "d/inner", O_RDONLY);
}

static void checks_for_group_obj(void)
{
	/* The owning group matches but grants nothing: OTHER's rights don't apply. */
	try_open("  owning group reads", "f", O_RDONLY);
}

static void sets_own_acl(void)
{
	struct entry e[] = {{USER_OBJ, 7, NO_ID}, {USER, 4, 1234}, {GROUP_OBJ, 5, NO_ID},
			    {MASK, 7, NO_ID}, {OTHER, 0, NO_ID}};
	ERRCALL("  owner outside the group sets an ACL", set_acl("sgid", ACCESS, e, 5));
}

int main(void)
{
	char dir[64];
	snprintf(dir, sizeof dir, "/dev/shm/acl-conf-%d", (int)getpid());
	if (mkdir(dir, 0755) != 0 || chdir(dir) != 0) {
		printf("setup: %s\n", errname(errno));
		return 1;
	}
	umask(022);
	int fd = open("f", O_CREAT | O_WRONLY, 0640);
	close(fd);
	show("no ACL yet", "f", ACCESS);
	show("no default ACL on a file", "f", DEFAULT);
	show_list("names before", "f");

	/* A full ACL: the group bits become the mask's. */
	struct entry full[] = {{USER_OBJ, 6, NO_ID}, {USER, 4, 1000},	{GROUP_OBJ, 4, NO_ID},
			       {GROUP, 6, 3000},     {MASK, 6, NO_ID}, {OTHER, 0, NO_ID}};
	ERRCALL("set full", set_acl("f", ACCESS, full, 6));
	show_mode("after set full", "f");
	show("full", "f", ACCESS);
	show_list("names with an ACL", "f");
	printf("size query: %zd\n", getxattr("f", ACCESS, NULL, 0));
	{
		char small[8];
		ERRCALL("too small a buffer", getxattr("f", ACCESS, small, sizeof small));
	}

	/* Ids of the base entries are ignored on the way in and shown as -1. */
	struct entry ids[] = {{USER_OBJ, 6, 5}, {GROUP_OBJ, 4, 6}, {OTHER, 4, 7}, {USER, 6, 1}};
	ERRCALL("unsorted entries", set_acl("f", ACCESS, ids, 4));

	/* Validation. */
	unsigned char buf[64];
	ERRCALL("version 1", setxattr("f", ACCESS, buf, encode(buf, 1, full, 6), 0));
	ERRCALL("3 bytes", setxattr("f", ACCESS, buf, 3, 0));
	encode(buf, 2, full, 6);
	ERRCALL("a partial entry", setxattr("f", ACCESS, buf, 4 + 8 * 2 + 3, 0));
	struct entry nomask[] = {{USER_OBJ, 6, NO_ID}, {USER, 4, 1000}, {GROUP_OBJ, 4, NO_ID},
				 {OTHER, 0, NO_ID}};
	ERRCALL("named user without a mask", set_acl("f", ACCESS, nomask, 4));
	struct entry badperm[] = {{USER_OBJ, 8, NO_ID}, {GROUP_OBJ, 4, NO_ID}, {OTHER, 0, NO_ID}};
	ERRCALL("permission 8", set_acl("f", ACCESS, badperm, 3));
	struct entry twice[] = {{USER_OBJ, 6, NO_ID}, {USER_OBJ, 6, NO_ID}, {GROUP_OBJ, 4, NO_ID},
				{OTHER, 0, NO_ID}};
	ERRCALL("user_obj twice", set_acl("f", ACCESS, twice, 4));
	struct entry dupuser[] = {{USER_OBJ, 6, NO_ID}, {USER, 4, 7},	  {USER, 4, 7},
				  {GROUP_OBJ, 4, NO_ID}, {MASK, 4, NO_ID}, {OTHER, 0, NO_ID}};
	ERRCALL("a named user twice", set_acl("f", ACCESS, dupuser, 6));
	struct entry badtag[] = {{USER_OBJ, 6, NO_ID}, {GROUP_OBJ, 4, NO_ID}, {0x40, 0, NO_ID},
				 {OTHER, 0, NO_ID}};
	ERRCALL("unknown tag", set_acl("f", ACCESS, badtag, 4));
	struct entry noid[] = {{USER_OBJ, 6, NO_ID}, {USER, 4, NO_ID}, {GROUP_OBJ, 4, NO_ID},
			       {MASK, 4, NO_ID}, {OTHER, 0, NO_ID}};
	ERRCALL("a named user -1", set_acl("f", ACCESS, noid, 5));
	struct entry noother[] = {{USER_OBJ, 6, NO_ID}, {GROUP_OBJ, 4, NO_ID}};
	ERRCALL("no other entry", set_acl("f", ACCESS, noother, 2));
	ERRCALL("an unknown system name", setxattr("f", "system.posix_acl_other", buf, 4, 0));
	show("duplicate named users are kept", "f", ACCESS);
	ERRCALL("set full again", set_acl("f", ACCESS, full, 6));
	show("full again", "f", ACCESS);

	/* chmod rewrites the ACL: owner, mask and other. */
	ERRCALL("chmod 0604", chmod("f", 0604));
	show("after chmod", "f", ACCESS);
	ERRCALL("chmod back 0660", chmod("f", 0660));

	/* Rights of other users. */
	mkdir("d", 0700);
	fd = open("d/inner", O_CREAT | O_WRONLY, 0644);
	close(fd);
	struct entry dacl[] = {{USER_OBJ, 7, NO_ID}, {USER, 1, 1000}, {GROUP_OBJ, 0, NO_ID},
			       {MASK, 1, NO_ID}, {OTHER, 0, NO_ID}};
	ERRCALL("search right for 1000 on d", set_acl("d", ACCESS, dacl, 5));
	show_mode("d", "d");
	as_user("uid 1000", 1000, 1000, -1, checks_for_named_user);
	as_user("gid 3000 (supplementary)", 1500, 1500, 3000, checks_for_named_group);
	as_user("uid 1001 (other)", 1001, 1001, -1, checks_for_other);
	/* Lower the mask: the named user loses what the mask doesn't give. */
	struct entry masked[] = {{USER_OBJ, 6, NO_ID}, {USER, 6, 1000}, {GROUP_OBJ, 4, NO_ID},
				 {MASK, 4, NO_ID}, {OTHER, 6, NO_ID}};
	ERRCALL("set masked", set_acl("f", ACCESS, masked, 5));
	show_mode("after set masked", "f");
	as_user("uid 1000 under mask r", 1000, 1000, -1, checks_for_named_user);
	struct entry grp[] = {{USER_OBJ, 6, NO_ID}, {GROUP_OBJ, 0, NO_ID}, {GROUP, 0, 3000},
			      {MASK, 6, NO_ID}, {OTHER, 6, NO_ID}};
	ERRCALL("set groups granting nothing", set_acl("f", ACCESS, grp, 5));
	as_user("member of a group granting nothing", 1500, 1500, 3000, checks_for_named_group);
	as_user("owning group granting nothing", 1500, 0, -1, checks_for_group_obj);
	as_user("uid 1001 gets other", 1001, 1001, -1, checks_for_other);

	/* An ACL the mode can say is not kept. */
	struct entry base[] = {{USER_OBJ, 7, NO_ID}, {GROUP_OBJ, 5, NO_ID}, {OTHER, 1, NO_ID}};
	ERRCALL("set base only", set_acl("f", ACCESS, base, 3));
	show_mode("after base only", "f");
	show("base only is not kept", "f", ACCESS);
	ERRCALL("set full again", set_acl("f", ACCESS, full, 6));
	ERRCALL("empty value removes", setxattr("f", ACCESS, "", 0, 0));
	show("after empty value", "f", ACCESS);
	show_mode("mode after empty value", "f");
	ERRCALL("set full again", set_acl("f", ACCESS, full, 6));
	ERRCALL("header only removes", setxattr("f", ACCESS, buf, encode(buf, 2, full, 0), 0));
	show("after header only", "f", ACCESS);
	ERRCALL("set full again", set_acl("f", ACCESS, full, 6));
	ERRCALL("removexattr", removexattr("f", ACCESS));
	show("after removexattr", "f", ACCESS);
	ERRCALL("removexattr again", removexattr("f", ACCESS));
	show_mode("mode after removexattr", "f");

	/* Default ACLs: directories only. */
	struct entry def[] = {{USER_OBJ, 7, NO_ID}, {USER, 7, 1000}, {GROUP_OBJ, 5, NO_ID},
			      {MASK, 7, NO_ID}, {OTHER, 0, NO_ID}};
	ERRCALL("default ACL on a file", set_acl("f", DEFAULT, def, 5));
	ERRCALL("removing a file's default ACL", removexattr("f", DEFAULT));
	ERRCALL("empty default on a file", setxattr("f", DEFAULT, "", 0, 0));
	mkdir("inherit", 0755);
	ERRCALL("default ACL on a directory", set_acl("inherit", DEFAULT, def, 5));
	show("inherit default", "inherit", DEFAULT);
	show("inherit access", "inherit", ACCESS);
	show_list("names of inherit", "inherit");
	umask(077);
	fd = open("inherit/file", O_CREAT | O_WRONLY, 0666);
	close(fd);
	show_mode("inherited file (umask 077 ignored)", "inherit/file");
	show("inherited file access", "inherit/file", ACCESS);
	show("inherited file default", "inherit/file", DEFAULT);
	fd = open("inherit/private", O_CREAT | O_WRONLY, 0600);
	close(fd);
	show_mode("inherited 0600 file", "inherit/private");
	show("inherited 0600 file access", "inherit/private", ACCESS);
	mkdir("inherit/sub", 0777);
	show_mode("inherited dir", "inherit/sub");
	show("inherited dir access", "inherit/sub", ACCESS);
	show("inherited dir default", "inherit/sub", DEFAULT);
	mkfifo("inherit/fifo", 0644);
	show_mode("inherited fifo", "inherit/fifo");
	symlink("file", "inherit/link");
	{
		unsigned char v[64];
		ssize_t n = lgetxattr("inherit/link", ACCESS, v, sizeof v);
		printf("symlink access: %s\n", n < 0 ? errname(errno) : "has one");
	}
	struct entry basedef[] = {{USER_OBJ, 7, NO_ID}, {GROUP_OBJ, 0, NO_ID}, {OTHER, 0, NO_ID}};
	mkdir("plain", 0755);
	ERRCALL("a base-only default", set_acl("plain", DEFAULT, basedef, 3));
	show("base-only default is kept", "plain", DEFAULT);
	fd = open("plain/file", O_CREAT | O_WRONLY, 0666);
	close(fd);
	show_mode("file under a base-only default", "plain/file");
	show("its access ACL", "plain/file", ACCESS);
	ERRCALL("remove the default", removexattr("inherit", DEFAULT));
	fd = open("inherit/after", O_CREAT | O_WRONLY, 0666);
	close(fd);
	show_mode("after removing the default (umask 077)", "inherit/after");
	umask(022);

	/* The owner outside the file's group loses S_ISGID when setting an ACL. */
	fd = open("sgid", O_CREAT | O_WRONLY, 0644);
	close(fd);
	if (chown("sgid", 1000, 5000) != 0 || chmod("sgid", 02775) != 0)
		printf("sgid setup: %s\n", errname(errno));
	show_mode("sgid before", "sgid");
	as_user("uid 1000 not in 5000", 1000, 1000, -1, sets_own_acl);
	show_mode("sgid after", "sgid");
	show("sgid acl", "sgid", ACCESS);

	/* Symlinks have no ACLs. */
	ERRCALL("ACL on a symlink", lsetxattr("inherit/link", ACCESS, buf, encode(buf, 2, base, 3), 0));

	/* Clean up. */
	const char *files[] = {"f", "d/inner", "inherit/file", "inherit/private", "inherit/fifo",
			       "inherit/link", "inherit/after", "plain/file", "sgid"};
	for (size_t i = 0; i < sizeof files / sizeof *files; i++)
		unlink(files[i]);
	rmdir("inherit/sub");
	rmdir("inherit");
	rmdir("plain");
	rmdir("d");
	if (chdir("/") != 0 || rmdir(dir) != 0)
		printf("cleanup: %s\n", errname(errno));
	return 0;
}
