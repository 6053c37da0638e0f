/* treewalk DIR: walks DIR (opendir/readdir, lstat, never following a symlink) and prints one
 * line per entry, sorted by path: relative path, type, mode & 07777, uid, gid, link count,
 * size (regular files and symlinks), rdev (devices), symlink target, mtime with nanoseconds,
 * a hard-link group (non-directories with several links: the same number for the same
 * inode), every xattr (name=hex value; values over 64 bytes as their length and SHA-256)
 * and the SHA-256 of a regular file's content. It also checks that readdir's d_type matches
 * lstat's type. Access and change times are not printed (reading moves the first; a copy
 * can't keep the second).
 * Used by tests/tests/imgfs_mount.rs to compare a tree with an ImgFS image of it. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

/* ---- SHA-256 (FIPS 180-4) ---------------------------------------------------------- */

typedef struct {
    uint32_t h[8];
    uint64_t len;
    uint8_t buf[64];
    size_t used;
} sha256_ctx;

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
    0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
    0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
    0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
    0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
    0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
    0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
    0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(sha256_ctx *c, const uint8_t *p) {
    uint32_t w[64], a, b, d, e, f, g, h, cc, t1, t2;
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = c->h[0]; b = c->h[1]; cc = c->h[2]; d = c->h[3];
    e = c->h[4]; f = c->h[5]; g = c->h[6]; h = c->h[7];
    for (int i = 0; i < 64; i++) {
        t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & cc) ^ (b & cc));
        h = g; g = f; f = e; e = d + t1; d = cc; cc = b; b = a; a = t1 + t2;
    }
    c->h[0] += a; c->h[1] += b; c->h[2] += cc; c->h[3] += d;
    c->h[4] += e; c->h[5] += f; c->h[6] += g; c->h[7] += h;
}

static void sha256_init(sha256_ctx *c) {
    static const uint32_t init[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                     0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, init, sizeof init);
    c->len = 0;
    c->used = 0;
}

static void sha256_update(sha256_ctx *c, const uint8_t *p, size_t n) {
    c->len += n;
    while (n > 0) {
        size_t take = 64 - c->used < n ? 64 - c->used : n;
        memcpy(c->buf + c->used, p, take);
        c->used += take;
        p += take;
        n -= take;
        if (c->used == 64) {
            sha256_block(c, c->buf);
            c->used = 0;
        }
    }
}

static void sha256_final(sha256_ctx *c, uint8_t out[32]) {
    uint64_t bits = c->len * 8;
    uint8_t pad = 0x80, zero = 0, lenb[8];
    sha256_update(c, &pad, 1);
    while (c->used != 56)
        sha256_update(c, &zero, 1);
    for (int i = 0; i < 8; i++)
        lenb[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_update(c, lenb, 8);
    for (int i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
}

/* ---- output helpers ------------------------------------------------------------------ */

/* Appends printf-style text to a growing line. */
typedef struct {
    char *s;
    size_t len, cap;
} line;

static void put(line *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(line *l, const char *fmt, ...) {
    if (!l->s) {
        l->cap = 256;
        l->s = malloc(l->cap);
        if (!l->s)
            abort();
        l->s[0] = 0;
    }
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(l->s + l->len, l->cap - l->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            abort();
        if ((size_t)n < l->cap - l->len) {
            l->len += (size_t)n;
            return;
        }
        l->cap = l->cap * 2 + (size_t)n + 64;
        l->s = realloc(l->s, l->cap);
        if (!l->s)
            abort();
    }
}

/* Bytes as printable text: anything outside 0x21..0x7e, and backslash, as \xNN. */
static void put_escaped(line *l, const char *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c > 0x20 && c < 0x7f && c != '\\')
            put(l, "%c", c);
        else
            put(l, "\\x%02x", c);
    }
}

static void put_hex(line *l, const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++)
        put(l, "%02x", p[i]);
}

/* ---- the walk ------------------------------------------------------------------------ */

typedef struct {
    char *rel;  /* path relative to the root ("." for the root) */
    char *text; /* the printed line, without the path */
    dev_t dev;
    ino_t ino;
    int multi; /* a non-directory with several links */
} entry;

static entry *entries;
static size_t n_entries, cap_entries;
static int failures;

static char type_char(mode_t m) {
    switch (m & S_IFMT) {
    case S_IFREG: return 'f';
    case S_IFDIR: return 'd';
    case S_IFLNK: return 'l';
    case S_IFCHR: return 'c';
    case S_IFBLK: return 'b';
    case S_IFIFO: return 'p';
    case S_IFSOCK: return 's';
    }
    return '?';
}

static char dtype_char(unsigned char t) {
    switch (t) {
    case DT_REG: return 'f';
    case DT_DIR: return 'd';
    case DT_LNK: return 'l';
    case DT_CHR: return 'c';
    case DT_BLK: return 'b';
    case DT_FIFO: return 'p';
    case DT_SOCK: return 's';
    }
    return '?';
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void describe(const char *path, const char *rel, line *l, struct stat *st) {
    put(l, " type=%c mode=%04o uid=%u gid=%u nlink=%lu", type_char(st->st_mode),
        (unsigned)(st->st_mode & 07777), (unsigned)st->st_uid, (unsigned)st->st_gid,
        (unsigned long)st->st_nlink);
    if (S_ISREG(st->st_mode) || S_ISLNK(st->st_mode))
        put(l, " size=%lld", (long long)st->st_size);
    if (S_ISCHR(st->st_mode) || S_ISBLK(st->st_mode))
        put(l, " rdev=%u,%u", major(st->st_rdev), minor(st->st_rdev));
    if (S_ISLNK(st->st_mode)) {
        char target[4097];
        ssize_t n = readlink(path, target, sizeof target);
        if (n < 0) {
            put(l, " target-error=%d", errno);
            failures++;
        } else {
            put(l, " target=");
            put_escaped(l, target, (size_t)n);
        }
    }
    put(l, " mtime=%lld.%09ld", (long long)st->st_mtim.tv_sec, st->st_mtim.tv_nsec);

    /* Extended attributes, sorted by name. */
    ssize_t len = llistxattr(path, NULL, 0);
    if (len < 0) {
        put(l, " listxattr-error=%d", errno);
        failures++;
    } else if (len > 0) {
        char *names = malloc((size_t)len);
        len = llistxattr(path, names, (size_t)len);
        if (len < 0)
            abort();
        char **list = NULL;
        size_t n = 0;
        for (char *p = names; p < names + len; p += strlen(p) + 1) {
            list = realloc(list, (n + 1) * sizeof *list);
            list[n++] = p;
        }
        qsort(list, n, sizeof *list, cmp_str);
        for (size_t i = 0; i < n; i++) {
            unsigned char value[65536];
            ssize_t vn = lgetxattr(path, list[i], value, sizeof value);
            put(l, " xattr:%s=", list[i]);
            if (vn < 0) {
                put(l, "error-%d", errno);
                failures++;
            } else if (vn <= 64) {
                put_hex(l, value, (size_t)vn);
            } else {
                /* Long values: their length and digest keep the line readable. */
                sha256_ctx c;
                uint8_t digest[32];
                sha256_init(&c);
                sha256_update(&c, value, (size_t)vn);
                sha256_final(&c, digest);
                put(l, "%zd-bytes-sha256:", vn);
                put_hex(l, digest, 32);
            }
        }
        free(list);
        free(names);
    }

    if (S_ISREG(st->st_mode)) {
        int fd = open(path, O_RDONLY | O_NOFOLLOW);
        if (fd < 0) {
            put(l, " open-error=%d", errno);
            failures++;
            return;
        }
        sha256_ctx c;
        sha256_init(&c);
        static unsigned char buf[1 << 16];
        long long total = 0;
        for (;;) {
            ssize_t n = read(fd, buf, sizeof buf);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                put(l, " read-error=%d", errno);
                failures++;
                break;
            }
            if (n == 0)
                break;
            sha256_update(&c, buf, (size_t)n);
            total += n;
        }
        close(fd);
        uint8_t digest[32];
        sha256_final(&c, digest);
        if (total != st->st_size)
            put(l, " read-bytes=%lld", total);
        put(l, " sha256=");
        put_hex(l, digest, 32);
    }
    (void)rel;
}

static void add(const char *path, const char *rel, unsigned char dtype) {
    struct stat st;
    line l = {0};
    put(&l, "%s", "");
    if (lstat(path, &st) != 0) {
        put(&l, " lstat-error=%d", errno);
        failures++;
    } else {
        if (dtype != DT_UNKNOWN && dtype_char(dtype) != type_char(st.st_mode)) {
            put(&l, " dtype-mismatch=%c", dtype_char(dtype));
            failures++;
        }
        describe(path, rel, &l, &st);
    }
    if (n_entries == cap_entries) {
        cap_entries = cap_entries * 2 + 64;
        entries = realloc(entries, cap_entries * sizeof *entries);
    }
    entry *e = &entries[n_entries++];
    e->rel = strdup(rel);
    e->text = l.s;
    e->dev = st.st_dev;
    e->ino = st.st_ino;
    e->multi = !S_ISDIR(st.st_mode) && st.st_nlink > 1;

    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (!d) {
            fprintf(stderr, "treewalk: opendir %s: %s\n", path, strerror(errno));
            failures++;
            return;
        }
        int dots = 0;
        struct dirent *de;
        while ((errno = 0, de = readdir(d))) {
            if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) {
                dots++;
                continue;
            }
            size_t pl = strlen(path), rl = strlen(rel), nl = strlen(de->d_name);
            char *child = malloc(pl + nl + 2), *crel = malloc(rl + nl + 2);
            sprintf(child, "%s/%s", path, de->d_name);
            if (!strcmp(rel, "."))
                strcpy(crel, de->d_name);
            else
                sprintf(crel, "%s/%s", rel, de->d_name);
            add(child, crel, de->d_type);
            free(child);
            free(crel);
        }
        if (errno) {
            fprintf(stderr, "treewalk: readdir %s: %s\n", path, strerror(errno));
            failures++;
        }
        if (dots != 2) {
            fprintf(stderr, "treewalk: %s: %d of . and ..\n", path, dots);
            failures++;
        }
        closedir(d);
    }
}

static int cmp_entry(const void *a, const void *b) {
    return strcmp(((const entry *)a)->rel, ((const entry *)b)->rel);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: treewalk DIR\n");
        return 2;
    }
    add(argv[1], ".", DT_UNKNOWN);
    qsort(entries, n_entries, sizeof *entries, cmp_entry);
    /* Hard-link groups, numbered in path order. */
    int *group = calloc(n_entries, sizeof *group);
    int groups = 0;
    for (size_t i = 0; i < n_entries; i++) {
        if (!entries[i].multi || group[i])
            continue;
        group[i] = ++groups;
        for (size_t j = i + 1; j < n_entries; j++)
            if (entries[j].multi && entries[j].dev == entries[i].dev &&
                entries[j].ino == entries[i].ino)
                group[j] = groups;
    }
    for (size_t i = 0; i < n_entries; i++) {
        line l = {0};
        put_escaped(&l, entries[i].rel, strlen(entries[i].rel));
        printf("%s%s", l.s, entries[i].text);
        if (group[i])
            printf(" linkgroup=%d", group[i]);
        printf("\n");
        free(l.s);
    }
    printf("entries=%zu failures=%d\n", n_entries, failures);
    return failures ? 1 : 0;
}
