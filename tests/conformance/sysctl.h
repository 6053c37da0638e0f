/* Reading and writing the sysctl files of one /proc/sys directory, printing the outcome:
 * the file that includes this defines SYSCTL_DIR first (e.g. "/proc/sys/kernel"). Needs
 * conf.h's errname. */
#ifndef SYSCTL_DIR
#error "define SYSCTL_DIR before including sysctl.h"
#endif

static void show(const char *name)
{
	char path[64], buf[128] = {0};
	snprintf(path, sizeof path, SYSCTL_DIR "/%s", name);
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
	if (n < 0)
		printf("%s: read %s\n", name, errname(errno));
	else
		printf("%s: %s", name, buf);
	if (fd >= 0)
		close(fd);
}

/* Writes `text` to the file in one write; prints the outcome. */
static void put(const char *name, const char *text)
{
	char path[64];
	snprintf(path, sizeof path, SYSCTL_DIR "/%s", name);
	int fd = open(path, O_WRONLY | O_TRUNC);
	if (fd < 0) {
		printf("write %s '%s': open %s\n", name, text, errname(errno));
		return;
	}
	ssize_t n = write(fd, text, strlen(text));
	printf("write %s '%s': %s\n", name, text, n < 0 ? errname(errno) : "ok");
	close(fd);
}

/* Enters an IPC namespace of its own, so that the host's limits stay as they were, and
 * shows the starting values of `names`; ends the program if that can't be done. */
static void enter_ipc_namespace_showing(const char *const *names, size_t n)
{
	if (unshare(CLONE_NEWIPC) < 0) {
		printf("unshare(CLONE_NEWIPC): %s (needs root)\n", errname(errno));
		exit(1);
	}
	for (size_t i = 0; i < n; i++)
		show(names[i]);
}
