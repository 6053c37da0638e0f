/* argv, environment, auxiliary vector and the initial stack layout. */
#include "conf.h"
#include <elf.h>
#include <link.h>
#include <sys/auxv.h>
#include <unistd.h>

extern char **environ;
extern char _start[];
extern const ElfW(Ehdr) __ehdr_start;

static const char *base(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static unsigned long aux(unsigned long type, int *found)
{
	errno = 0;
	unsigned long v = getauxval(type);
	*found = !(v == 0 && errno == ENOENT);
	return v;
}

static void print_value(const char *name, unsigned long type)
{
	int found;
	unsigned long v = aux(type, &found);
	if (found)
		printf("%s: %lu\n", name, v);
	else
		printf("%s: missing\n", name);
}

static void print_present(const char *name, unsigned long type)
{
	int found;
	unsigned long v = aux(type, &found);
	printf("%s: %s\n", name, found && v != 0 ? "present" : "missing");
}

int main(int argc, char **argv, char **envp)
{
	int found;

	printf("argc: %d\n", argc);
	for (int i = 0; i < argc; i++)
		printf("argv[%d]: \"%s\"\n", i, argv[i]);
	CHECK("argv[argc] == NULL", argv[argc] == NULL);
	CHECK("envp follows argv", envp == argv + argc + 1);
	CHECK("environ == envp", environ == envp);

	int nconf = 0;
	for (char **e = envp; *e; e++) {
		if (strncmp(*e, "CONF_", 5) == 0) {
			printf("env: \"%s\"\n", *e);
			nconf++;
		}
	}
	printf("CONF_ vars: %d\n", nconf);
	const char *a = getenv("CONF_A"), *b = getenv("CONF_B");
	printf("getenv CONF_A: %s\n", a ? a : "(null)");
	printf("getenv CONF_B: %s\n", b ? b : "(null)");

	/* The auxiliary vector follows the environment's NULL. */
	char **e = envp;
	while (*e)
		e++;
	ElfW(auxv_t) *av = (ElfW(auxv_t) *)(e + 1);
	int auxv_ok = 0, n = 0;
	for (; av->a_type != AT_NULL && n < 256; av++, n++)
		if (av->a_type == AT_PAGESZ && av->a_un.a_val == getauxval(AT_PAGESZ))
			auxv_ok = 1;
	CHECK("auxv follows envp and has AT_PAGESZ", auxv_ok);
	CHECK("auxv is AT_NULL terminated", av->a_type == AT_NULL);

	print_value("AT_PAGESZ", AT_PAGESZ);
	print_value("AT_PHENT", AT_PHENT);
	print_value("AT_PHNUM", AT_PHNUM);
	print_value("AT_UID", AT_UID);
	print_value("AT_EUID", AT_EUID);
	print_value("AT_GID", AT_GID);
	print_value("AT_EGID", AT_EGID);
	print_value("AT_SECURE", AT_SECURE);
	print_value("AT_CLKTCK", AT_CLKTCK);
	print_value("AT_FLAGS", AT_FLAGS);
	/* A static executable has no interpreter: AT_BASE is 0 (or absent). */
	unsigned long at_base = aux(AT_BASE, &found);
	printf("AT_BASE: %lu\n", at_base);
	print_present("AT_PHDR", AT_PHDR);
	print_present("AT_ENTRY", AT_ENTRY);
	print_present("AT_RANDOM", AT_RANDOM);
	print_present("AT_HWCAP", AT_HWCAP);
	print_present("AT_EXECFN", AT_EXECFN);
	print_present("AT_PLATFORM", AT_PLATFORM);

	CHECK("AT_UID == getuid()", getauxval(AT_UID) == getuid());
	CHECK("AT_EUID == geteuid()", getauxval(AT_EUID) == geteuid());
	CHECK("AT_GID == getgid()", getauxval(AT_GID) == getgid());
	CHECK("AT_EGID == getegid()", getauxval(AT_EGID) == getegid());
	CHECK("AT_PAGESZ == sysconf(_SC_PAGESIZE)",
	      getauxval(AT_PAGESZ) == (unsigned long)sysconf(_SC_PAGESIZE));

	const char *execfn = (const char *)getauxval(AT_EXECFN);
	printf("AT_EXECFN basename: %s\n", execfn ? base(execfn) : "(null)");
	CHECK("AT_EXECFN basename == argv[0] basename",
	      execfn && strcmp(base(execfn), base(argv[0])) == 0);
	const char *plat = (const char *)getauxval(AT_PLATFORM);
	printf("AT_PLATFORM: %s\n", plat ? plat : "(null)");

	const unsigned char *rnd = (const unsigned char *)getauxval(AT_RANDOM);
	int nonzero = 0;
	if (rnd)
		for (int i = 0; i < 16; i++)
			nonzero |= rnd[i];
	CHECK("AT_RANDOM 16 bytes not all zero", nonzero);

	CHECK("AT_ENTRY == _start", getauxval(AT_ENTRY) == (unsigned long)_start);
	const ElfW(Ehdr) *eh = &__ehdr_start;
	CHECK("ELF header mapped", memcmp(eh->e_ident, ELFMAG, SELFMAG) == 0);
	CHECK("AT_PHDR == ehdr + e_phoff",
	      getauxval(AT_PHDR) == (unsigned long)eh + eh->e_phoff);
	CHECK("AT_PHNUM == e_phnum", getauxval(AT_PHNUM) == eh->e_phnum);
	CHECK("AT_PHENT == e_phentsize", getauxval(AT_PHENT) == eh->e_phentsize);
	const ElfW(Phdr) *ph = (const ElfW(Phdr) *)getauxval(AT_PHDR);
	unsigned long bias = 0;
	int have_load0 = 0;
	for (int i = 0; ph && i < eh->e_phnum; i++) {
		if (ph[i].p_type == PT_LOAD && ph[i].p_offset == 0) {
			bias = (unsigned long)eh - ph[i].p_vaddr;
			have_load0 = 1;
			break;
		}
	}
	CHECK("first PT_LOAD maps the ELF header", have_load0);
	CHECK("AT_ENTRY == e_entry + bias", getauxval(AT_ENTRY) == eh->e_entry + bias);
	for (int i = 0; ph && i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_PHDR)
			CHECK("PT_PHDR matches AT_PHDR",
			      ph[i].p_vaddr + bias == getauxval(AT_PHDR));

	/* Strings live above the pointer arrays, on the stack. */
	CHECK("argv[0] above auxv", (char *)argv[0] > (char *)av);

	/* readlink("/proc/self/exe"): absolute path ending in our basename. */
	char buf[4096];
	ssize_t len = readlink("/proc/self/exe", buf, sizeof buf - 1);
	if (len < 0) {
		printf("readlink /proc/self/exe: %s\n", errname(errno));
	} else {
		buf[len] = 0;
		printf("readlink /proc/self/exe: succeeded\n");
		CHECK("/proc/self/exe is absolute", buf[0] == '/');
		CHECK("/proc/self/exe basename == argv[0] basename",
		      strcmp(base(buf), base(argv[0])) == 0);
	}
	return 0;
}
