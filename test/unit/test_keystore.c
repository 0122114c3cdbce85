/* CUnit tests of libsaef-keystore: records, errors, concurrency, type names. */
#define _GNU_SOURCE /* memmem */
#include "unit.h"
#include "saef_common.h"
#include "saef_keystore.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#include <openssl/err.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/saef-unit.XXXXXX";
static int counter;

/* A fresh store path per call (a static buffer: copy it to keep two). */
static const char *path(void)
{
    static char p[256];

    snprintf(p, sizeof(p), "%s/s%d.db", dir, ++counter);
    return p;
}

static saef_ks *fresh(void)
{
    saef_ks *ks = NULL;

    CU_ASSERT_EQUAL_FATAL(saef_ks_open(path(), SAEF_KS_CREATE, &ks), SAEF_KS_OK);
    return ks;
}

static saef_ks_record rec_with(const char *hex, const char *peer)
{
    saef_ks_record r = {0};

    r.key_len = (size_t)saef_hex_decode(hex, strlen(hex), r.key, sizeof(r.key));
    snprintf(r.peer, sizeof(r.peer), "%s", peer);
    return r;
}

/* The biggest record there is: every field full. */
static saef_ks_record big_rec(void)
{
    saef_ks_record r = {0};

    r.key_len = SAEF_KS_KEY_MAX;
    memset(r.key, 0x42, r.key_len);
    memset(r.peer, 'p', SAEF_KS_ENTITY_MAX);
    memset(r.self, 's', SAEF_KS_ENTITY_MAX);
    memset(r.meta, 'm', SAEF_KS_META_MAX);
    return r;
}

static int mode_of(const char *p)
{
    struct stat st;

    return stat(p, &st) == 0 ? (int)(st.st_mode & 0777) : -1;
}

/* kpsa "STEM-N@sp.example.com" */
static int put_id(saef_ks *ks, const char *stem, int i, const saef_ks_record *r)
{
    char id[64];
    int len = snprintf(id, sizeof(id), "%s-%d@sp.example.com", stem, i);

    return saef_ks_put(ks, SAEF_KS_KPSA, id, (size_t)len, r, 0);
}

static int get_id(saef_ks *ks, const char *stem, int i, saef_ks_record *out)
{
    char id[64];
    int len = snprintf(id, sizeof(id), "%s-%d@sp.example.com", stem, i);

    return saef_ks_get(ks, SAEF_KS_KPSA, id, (size_t)len, out);
}

static void write_file(const char *p, const void *data, size_t len)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL((size_t)write(fd, data, len), len);
    close(fd);
}

/* How many descriptors this process holds on `file`. */
static int fds_on(const char *file)
{
    char want[PATH_MAX], link[PATH_MAX], fdpath[300];
    struct dirent *d;
    DIR *dp;
    int n = 0;

    if (realpath(file, want) == NULL || (dp = opendir("/proc/self/fd")) == NULL)
        return -1;
    while ((d = readdir(dp)) != NULL) {
        ssize_t len;
        snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%s", d->d_name);
        if ((len = readlink(fdpath, link, sizeof(link) - 1)) > 0) {
            link[len] = '\0';
            n += strcmp(link, want) == 0;
        }
    }
    closedir(dp);
    return n;
}

static void send_byte(int fd)
{
    CU_ASSERT_EQUAL(write(fd, "x", 1), 1);
}

static int wait_byte(int fd)
{
    char c;

    return read(fd, &c, 1) == 1;
}

static int child_ok(pid_t pid)
{
    int status;

    return waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* ---- records ------------------------------------------------------------ */

static void test_round_trip_keeps_every_field(void)
{
    saef_ks *ks = fresh();
    saef_ks_record in = rec_with("00112233", "/sp/C-dev1"), out, big = big_rec();

    strcpy(in.self, "/sp/in-cse");
    strcpy(in.meta, "{\"adminFQDN\":\"sp.example.com\"}");
    in.not_after = 4000000000;
    in.created = 1700000000;
    in.suid = 12;
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &in, 0), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KPSA, "a@b.c", 5, &out), SAEF_KS_OK);
    CU_ASSERT_EQUAL(out.key_len, 4);
    CU_ASSERT(memcmp(out.key, in.key, 4) == 0);
    CU_ASSERT_STRING_EQUAL(out.peer, "/sp/C-dev1");
    CU_ASSERT_STRING_EQUAL(out.self, "/sp/in-cse");
    CU_ASSERT_STRING_EQUAL(out.meta, "{\"adminFQDN\":\"sp.example.com\"}");
    CU_ASSERT_EQUAL(out.not_after, 4000000000);
    CU_ASSERT_EQUAL(out.created, 1700000000);
    CU_ASSERT_EQUAL(out.suid, 12);
    /* Every field at its limit, and a negative SUID. */
    big.suid = -7;
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KC, "big@b.c", 7, &big, 0), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KC, "big@b.c", 7, &out), SAEF_KS_OK);
    CU_ASSERT(out.key_len == SAEF_KS_KEY_MAX && memcmp(out.key, big.key, SAEF_KS_KEY_MAX) == 0);
    CU_ASSERT_STRING_EQUAL(out.peer, big.peer);
    CU_ASSERT_STRING_EQUAL(out.self, big.self);
    CU_ASSERT_STRING_EQUAL(out.meta, big.meta);
    CU_ASSERT_EQUAL(out.suid, -7);
    /* Types are separate namespaces. */
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KM, "a@b.c", 5, &out), SAEF_KS_ENOTFOUND);
    saef_ks_close(ks);
}

static void test_created_defaults_to_now(void)
{
    saef_ks *ks = fresh();
    saef_ks_record in = rec_with("01", ""), out;
    time_t before = time(NULL);

    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &in, 0), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KPSA, "a@b.c", 5, &out), SAEF_KS_OK);
    CU_ASSERT(out.created >= before && out.created <= time(NULL));
    saef_ks_close(ks);
}

static void test_expired_record_is_returned_with_its_expiry(void)
{
    saef_ks *ks = fresh();
    saef_ks_record r = rec_with("01", ""), out;

    r.not_after = 1000; /* 1970: long gone */
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KC, "x@y.z", 5, &r, 0), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KC, "x@y.z", 5, &out), SAEF_KS_OK);
    CU_ASSERT_EQUAL(out.not_after, 1000);
    saef_ks_close(ks);
}

static void test_record_wipe_clears_key(void)
{
    saef_ks_record r = rec_with("DEADBEEF", "/sp/x");
    saef_ks_record zero = {0};

    saef_ks_record_wipe(&r);
    CU_ASSERT(memcmp(&r, &zero, sizeof(r)) == 0);
}

/* Entity B fills a missed kc record in from the MAF: nothing stale may remain. */
static void test_failed_get_leaves_an_empty_record(void)
{
    saef_ks *ks = fresh();
    saef_ks_record out, zero = {0};

    memset(&out, 0xAA, sizeof(out));
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KC, "x@y.z", 5, &out), SAEF_KS_ENOTFOUND);
    CU_ASSERT(memcmp(&out, &zero, sizeof(out)) == 0);
    saef_ks_close(ks);
}

/* ---- opening: missing, permissions, corrupt ----------------------------- */

static void test_missing_store_is_enostore(void)
{
    saef_ks *ks = (saef_ks *)1;
    char want[600];
    const char *p = path();

    CU_ASSERT_EQUAL(saef_ks_open(p, 0, &ks), SAEF_KS_ENOSTORE);
    CU_ASSERT_PTR_NULL(ks);
    snprintf(want, sizeof(want), "store %s does not exist: create it with saef-key -s %s init", p,
             p);
    CU_ASSERT_STRING_EQUAL(saef_ks_last_error(NULL), want);
    /* Read-only never creates. */
    CU_ASSERT_EQUAL(saef_ks_open(p, SAEF_KS_RDONLY | SAEF_KS_CREATE, &ks), SAEF_KS_ENOSTORE);
    CU_ASSERT_EQUAL(access(p, F_OK), -1);
}

static void test_bad_arguments_to_open_refused(void)
{
    saef_ks *ks;

    CU_ASSERT_EQUAL(saef_ks_open("", 0, &ks), SAEF_KS_EINVAL);
    CU_ASSERT_EQUAL(saef_ks_open(NULL, 0, &ks), SAEF_KS_EINVAL);
    CU_ASSERT_EQUAL(saef_ks_open(path(), 0x100, &ks), SAEF_KS_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(saef_ks_last_error(NULL), "flags"));
    CU_ASSERT_EQUAL(saef_ks_open(path(), SAEF_KS_CREATE, NULL), SAEF_KS_EINVAL);
}

static void test_created_owner_only_and_group_read(void)
{
    char p[256], lock[300];
    saef_ks *ks;

    snprintf(p, sizeof(p), "%s", path());
    snprintf(lock, sizeof(lock), "%s-lock", p);
    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_CREATE, &ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(mode_of(p), 0600);
    CU_ASSERT_EQUAL(mode_of(lock), 0600);
    saef_ks_close(ks);
    snprintf(p, sizeof(p), "%s", path());
    snprintf(lock, sizeof(lock), "%s-lock", p);
    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_CREATE | SAEF_KS_GROUP_READ, &ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(mode_of(p), 0640);
    CU_ASSERT_EQUAL(mode_of(lock), 0660);
    saef_ks_close(ks);
    /* A lock file made again under a umask gets group write back. */
    unlink(lock);
    umask(022);
    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_RDONLY | SAEF_KS_GROUP_READ, &ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(mode_of(lock), 0660);
    saef_ks_close(ks);
}

static void test_create_leaves_no_temporary_file(void)
{
    char sub[300], p[320];
    struct dirent *d;
    saef_ks *ks;
    DIR *dp;
    int others = 0;

    snprintf(sub, sizeof(sub), "%s/create", dir);
    CU_ASSERT_FATAL(mkdir(sub, 0700) == 0);
    snprintf(p, sizeof(p), "%s/keys.db", sub);
    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_CREATE, &ks), SAEF_KS_OK);
    saef_ks_close(ks);
    /* Opening it again with CREATE keeps it as it is. */
    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_CREATE, &ks), SAEF_KS_OK);
    saef_ks_close(ks);
    CU_ASSERT_FATAL((dp = opendir(sub)) != NULL);
    while ((d = readdir(dp)) != NULL)
        others += strcmp(d->d_name, ".") && strcmp(d->d_name, "..") &&
                  strcmp(d->d_name, "keys.db") && strcmp(d->d_name, "keys.db-lock");
    closedir(dp);
    CU_ASSERT_EQUAL(others, 0);
    /* No directory, no store: a clear error, nothing left behind. */
    snprintf(p, sizeof(p), "%s/nodir/keys.db", dir);
    CU_ASSERT_EQUAL(saef_ks_open(p, SAEF_KS_CREATE, &ks), SAEF_KS_EIO);
    CU_ASSERT_PTR_NOT_NULL(strstr(saef_ks_last_error(NULL), "cannot create store"));
}

static void test_unsafe_permissions_refused(void)
{
    static const struct {
        int mode;
        unsigned flags;
        SAEF_KS_ERR want;
        const char *msg;
    } cases[] = {
        {0644, 0, SAEF_KS_EPERM, "is readable by others (mode 0644): chmod 600 "},
        {0666, 0, SAEF_KS_EPERM, "is writable by others (mode 0666): chmod 600 "},
        {0620, 0, SAEF_KS_EPERM, "is writable by its group (mode 0620)"},
        {0660, 0, SAEF_KS_EPERM, "is writable by its group (mode 0660)"},
        {0660, SAEF_KS_GROUP_READ, SAEF_KS_EPERM,
         "is writable by its group (mode 0660): chmod 640"},
        {0640, 0, SAEF_KS_EPERM, "store_group_read"},
        {0604, SAEF_KS_GROUP_READ, SAEF_KS_EPERM, "readable by others"},
        {0644, SAEF_KS_GROUP_READ, SAEF_KS_EPERM, "readable by others"},
        {0640, SAEF_KS_GROUP_READ, SAEF_KS_OK, NULL},
        {0640, SAEF_KS_GROUP_READ | SAEF_KS_RDONLY, SAEF_KS_OK, NULL},
        {0600, 0, SAEF_KS_OK, NULL},
        {0400, SAEF_KS_RDONLY, SAEF_KS_OK, NULL},
    };
    const char *p = path();
    saef_ks *ks;

    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_CREATE, &ks), SAEF_KS_OK);
    saef_ks_close(ks);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        chmod(p, (mode_t)cases[i].mode);
        CU_ASSERT_EQUAL(saef_ks_open(p, cases[i].flags, &ks), cases[i].want);
        if (cases[i].want == SAEF_KS_OK) {
            saef_ks_close(ks);
        } else {
            CU_ASSERT_PTR_NOT_NULL(strstr(saef_ks_last_error(NULL), cases[i].msg));
            CU_ASSERT_PTR_NOT_NULL(strstr(saef_ks_last_error(NULL), p));
        }
    }
}

/* As root: a member of the store's group opens a group-readable store. */
static void test_group_member_reads_but_cannot_write(void)
{
    char sub[300], p[320], lock[330];
    saef_ks_record r = rec_with("01", ""), out;
    saef_ks *ks;
    pid_t pid;

    if (geteuid() != 0) {
        CU_PASS("needs root to switch users");
        return;
    }
    snprintf(sub, sizeof(sub), "%s/group", dir);
    CU_ASSERT_FATAL(mkdir(sub, 0750) == 0 && chown(sub, 0, 65534) == 0 && chmod(dir, 0711) == 0);
    snprintf(p, sizeof(p), "%s/keys.db", sub);
    snprintf(lock, sizeof(lock), "%s-lock", p);
    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_CREATE | SAEF_KS_GROUP_READ, &ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &r, 0), SAEF_KS_OK);
    saef_ks_close(ks);
    CU_ASSERT_FATAL(chown(p, 0, 65534) == 0 && chown(lock, 0, 65534) == 0);
    if ((pid = fork()) == 0) {
        int ok = setgid(65534) == 0 && setuid(65534) == 0;
        ok = ok && saef_ks_open(p, SAEF_KS_RDONLY | SAEF_KS_GROUP_READ, &ks) == SAEF_KS_OK &&
             saef_ks_get(ks, SAEF_KS_KPSA, "a@b.c", 5, &out) == SAEF_KS_OK;
        /* A writer in the same process shares the read-only environment. */
        saef_ks *w;
        ok = ok && saef_ks_open(p, SAEF_KS_GROUP_READ, &w) == SAEF_KS_EPERM &&
             strstr(saef_ks_last_error(NULL), "not writable") != NULL;
        /* Without the group flag the same store is refused. */
        ok = ok && saef_ks_open(p, SAEF_KS_RDONLY, &w) == SAEF_KS_EPERM;
        saef_ks_close(ks);
        _exit(ok ? 0 : 1);
    }
    CU_ASSERT(child_ok(pid));
    chmod(dir, 0700);
}

static void test_corrupt_empty_and_truncated_files_refused(void)
{
    static unsigned char junk[65536];
    static const size_t cuts[] = {8192, 4096, 100};
    const char *p = path(), *q;
    saef_ks *ks;
    saef_ks_record r = rec_with("00112233445566778899", "");
    FILE *f;

    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)(i * 7919 + 13);
    write_file(p, junk, sizeof(junk));
    CU_ASSERT_EQUAL(saef_ks_open(p, 0, &ks), SAEF_KS_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(saef_ks_last_error(NULL), "not a saef store"));
    write_file(p = path(), "", 0);
    CU_ASSERT_EQUAL(saef_ks_open(p, SAEF_KS_CREATE, &ks), SAEF_KS_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(saef_ks_last_error(NULL), "is empty"));

    /* A real store, cut short at several places. */
    p = path();
    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_CREATE, &ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_write_begin(ks), SAEF_KS_OK);
    for (int i = 0; i < 5000; i++)
        CU_ASSERT_EQUAL(put_id(ks, "dev", i, &r), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_write_commit(ks), SAEF_KS_OK);
    saef_ks_close(ks);
    f = fopen(p, "rb");
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT_EQUAL(fread(junk, 1, 8192, f), 8192);
    fclose(f);
    for (size_t i = 0; i < sizeof(cuts) / sizeof(*cuts); i++) {
        write_file(q = path(), junk, cuts[i]);
        CU_ASSERT_EQUAL(saef_ks_open(q, SAEF_KS_RDONLY, &ks), SAEF_KS_ECORRUPT);
        CU_ASSERT_PTR_NOT_NULL(strstr(saef_ks_last_error(NULL), q));
    }
    write_file(q = path(), junk, 8192);
    CU_ASSERT_EQUAL(saef_ks_open(q, 0, &ks), SAEF_KS_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(saef_ks_last_error(NULL), "truncated"));
    /* A directory is not a store. */
    CU_ASSERT_EQUAL(saef_ks_open(dir, 0, &ks), SAEF_KS_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(saef_ks_last_error(NULL), "not a regular file"));
}

/* The guard catches faults only inside saef's reads: any other SIGBUS goes
   where it went before, the default (death by SIGBUS) or, in a sanitized
   build, ASan's handler (a report, then exit 1). */
#if defined(__SANITIZE_ADDRESS__)
#define DIED_OF_SIGBUS(st) (WIFEXITED(st) && WEXITSTATUS(st) != 0)
#else
#define DIED_OF_SIGBUS(st) (WIFSIGNALED(st) && WTERMSIG(st) == SIGBUS)
#endif

static void test_faults_outside_reads_keep_their_default(void)
{
    char p[256];
    saef_ks *ks;
    int status, fd;
    pid_t pid;

    snprintf(p, sizeof(p), "%s", path());
    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_CREATE, &ks), SAEF_KS_OK);
    saef_ks_close(ks);
    if ((pid = fork()) == 0) {
        raise(SIGBUS);
        _exit(0);
    }
    CU_ASSERT(waitpid(pid, &status, 0) == pid && DIED_OF_SIGBUS(status));
    if ((pid = fork()) == 0) {
        /* A page of a mapping past the end of its file: a real fault. */
        volatile char *m;
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        fd = open(p, O_RDONLY);
        m = mmap(NULL, 1 << 24, PROT_READ, MAP_SHARED, fd, 0);
        _exit(m != MAP_FAILED && m[(1 << 24) - 1] == 0 ? 0 : 1);
    }
    CU_ASSERT(waitpid(pid, &status, 0) == pid && DIED_OF_SIGBUS(status));
}

/* Writes raw LMDB: no saef handle may be open on `p` meanwhile. */
static void raw_put(const char *p, const void *k, size_t klen, const void *v, size_t vlen)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_val key = {klen, (void *)k}, val = {vlen, (void *)v};

    CU_ASSERT_FATAL(mdb_env_create(&env) == 0);
    CU_ASSERT_FATAL(mdb_env_open(env, p, MDB_NOSUBDIR, 0600) == 0);
    CU_ASSERT_FATAL(mdb_txn_begin(env, NULL, 0, &txn) == 0);
    CU_ASSERT_FATAL(mdb_dbi_open(txn, NULL, 0, &dbi) == 0);
    CU_ASSERT(mdb_put(txn, dbi, &key, &val, 0) == 0);
    CU_ASSERT(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
}

static int count_cb(SAEF_KS_TYPE type, const char *id, size_t id_len, const saef_ks_record *rec,
                    void *arg)
{
    (void)type, (void)id, (void)id_len, (void)rec;
    ++*(int *)arg;
    return 0;
}

/*
 * Two bytes of a page header (mp_lower, the end of the page's node table)
 * set to 0x7fff: LMDB then reads past the end of the file. Every reader
 * runs in a child, so a fault fails the test instead of ending the suite.
 */
static void test_corrupt_page_header_fails_reads_without_a_fault(void)
{
    static unsigned char page[4096];
    char p[256];
    saef_ks *ks;
    saef_ks_record r = rec_with("00112233445566778899AABBCCDDEEFF", "");
    int fd, hit = 0;
    pid_t pid;
    int status;

    if (getenv("SAEF_VALGRIND") != NULL) {
        CU_PASS("valgrind reports every fault the guard catches as an invalid access");
        return;
    }

    snprintf(p, sizeof(p), "%s", path());
    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_CREATE, &ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_write_begin(ks), SAEF_KS_OK);
    for (int i = 0; i < 300; i++)
        CU_ASSERT_EQUAL(put_id(ks, "dev", i, &r), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_write_commit(ks), SAEF_KS_OK);
    saef_ks_close(ks);
    /* Every leaf page (flags 0x02 at offset 10) but the ones with the marker
       and the index's name, which open reads: those near the end fault. */
    CU_ASSERT_FATAL((fd = open(p, O_RDWR)) >= 0);
    for (long n = 2; pread(fd, page, sizeof(page), n * 4096) == (ssize_t)sizeof(page); n++)
        if ((page[10] | page[11] << 8) == 0x02 && !memmem(page, sizeof(page), "saef-store", 10) &&
            !memmem(page, sizeof(page), "\xffpeer", 5))
            hit += pwrite(fd, "\xff\x7f", 2, n * 4096 + 12) == 2;
    CU_ASSERT_FATAL(hit > 2);
    close(fd);

    if ((pid = fork()) == 0) {
        saef_ks_record out;
        int ok = 0, corrupt = 0, walk;
        SAEF_KS_ERR err;
        if (saef_ks_open(p, SAEF_KS_RDONLY, &ks) != SAEF_KS_OK)
            _exit(2);
        for (int i = 0; i < 300; i++) {
            /* A page read in the file gives garbage (not found); outside it, an error. */
            err = get_id(ks, "dev", i, &out);
            ok += err == SAEF_KS_OK || err == SAEF_KS_ENOTFOUND;
            corrupt += err == SAEF_KS_ECORRUPT &&
                       strstr(saef_ks_last_error(ks), "went outside the file") != NULL;
        }
        walk = saef_ks_iter(ks, 0, count_cb, &status);
        saef_ks_close(ks);
        _exit(corrupt > 0 && ok + corrupt == 300 && walk == SAEF_KS_ECORRUPT ? 0 : 3);
    }
    CU_ASSERT(waitpid(pid, &status, 0) == pid);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    if (WIFSIGNALED(status))
        fprintf(stderr, "reader died of signal %d\n", WTERMSIG(status));
}

static void test_foreign_lmdb_file_and_malformed_record_refused(void)
{
    char p[256];
    saef_ks_record r = rec_with("01", ""), out;
    saef_ks *ks;
    int seen = 0;

    snprintf(p, sizeof(p), "%s", path());
    raw_put(p, "hello", 5, "world", 5);
    CU_ASSERT_EQUAL(saef_ks_open(p, 0, &ks), SAEF_KS_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(saef_ks_last_error(NULL), "an LMDB file but not a saef store"));

    snprintf(p, sizeof(p), "%s", path());
    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_CREATE, &ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &r, 0), SAEF_KS_OK);
    saef_ks_close(ks);
    raw_put(p, "\001bad@b.c", 8, "\001junk", 5);
    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, 0, &ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KPSA, "bad@b.c", 7, &out), SAEF_KS_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(saef_ks_last_error(ks), "kpsa record bad@b.c is malformed"));
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KPSA, "a@b.c", 5, &out), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_iter(ks, 0, count_cb, &seen), SAEF_KS_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(saef_ks_last_error(ks), "bad@b.c"));
    saef_ks_close(ks);
}

/* ---- argument checks ---------------------------------------------------- */

static void test_identity_and_key_limits(void)
{
    saef_ks *ks = fresh();
    saef_ks_record r = rec_with("00", ""), out;
    char id[130];

    memset(id, 'a', sizeof(id));
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, id, 129, &r, 0), SAEF_KS_EINVAL);
    CU_ASSERT_STRING_EQUAL(saef_ks_last_error(ks), "identity is 129 bytes; the limit is 128");
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, id, 128, &r, 0), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KPSA, id, 128, &out), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KPSA, id, 129, &out), SAEF_KS_EINVAL);
    CU_ASSERT_EQUAL(saef_ks_del(ks, SAEF_KS_KPSA, id, 129), SAEF_KS_EINVAL);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "", 0, &r, 0), SAEF_KS_EINVAL);
    CU_ASSERT_STRING_EQUAL(saef_ks_last_error(ks), "empty identity");
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KPSA, "", 0, &out), SAEF_KS_EINVAL);
    CU_ASSERT_EQUAL(saef_ks_put(ks, (SAEF_KS_TYPE)9, "a@b.c", 5, &r, 0), SAEF_KS_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(saef_ks_last_error(ks), "unknown key type 9"));
    CU_ASSERT_EQUAL(saef_ks_get(ks, (SAEF_KS_TYPE)0, "a@b.c", 5, &out), SAEF_KS_EINVAL);
    r.key_len = 0;
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &r, 0), SAEF_KS_EINVAL);
    CU_ASSERT_STRING_EQUAL(saef_ks_last_error(ks), "key is 0 bytes; it must be 1 to 256");
    r.key_len = SAEF_KS_KEY_MAX + 1;
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &r, 0), SAEF_KS_EINVAL);
    r.key_len = SAEF_KS_KEY_MAX;
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &r, 0), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "n@b.c", 5, NULL, 0), SAEF_KS_EINVAL);
    saef_ks_close(ks);
}

static void test_record_fields_that_do_not_fit_refused(void)
{
    saef_ks *ks = fresh();
    saef_ks_record r = big_rec();
    size_t n;

    memset(r.peer, 'p', sizeof(r.peer)); /* no room left for the NUL */
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &r, 0), SAEF_KS_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(saef_ks_last_error(ks), "peer entity ID"));
    r = big_rec();
    memset(r.self, 's', sizeof(r.self));
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &r, 0), SAEF_KS_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(saef_ks_last_error(ks), "self entity ID"));
    r = big_rec();
    memset(r.meta, 'm', sizeof(r.meta));
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &r, 0), SAEF_KS_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(saef_ks_last_error(ks), "metadata"));
    r = big_rec();
    r.not_after = -1;
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &r, 0), SAEF_KS_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(saef_ks_last_error(ks), "expiry"));
    CU_ASSERT_EQUAL(saef_ks_count(ks, 0, &n), SAEF_KS_OK);
    CU_ASSERT_EQUAL(n, 0);
    saef_ks_close(ks);
}

static void test_duplicate_replace_and_delete(void)
{
    saef_ks *ks = fresh();
    saef_ks_record a = rec_with("AA", ""), b = rec_with("BB", ""), out;

    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &a, 0), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &b, 0), SAEF_KS_EEXISTS);
    CU_ASSERT_STRING_EQUAL(saef_ks_last_error(ks),
                           "kpsa key a@b.c already exists (--replace overwrites it)");
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KPSA, "a@b.c", 5, &out), SAEF_KS_OK);
    CU_ASSERT_EQUAL(out.key[0], 0xAA);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &b, SAEF_KS_REPLACE), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KPSA, "a@b.c", 5, &out), SAEF_KS_OK);
    CU_ASSERT_EQUAL(out.key[0], 0xBB);
    CU_ASSERT_EQUAL(saef_ks_del(ks, SAEF_KS_KPSA, "a@b.c", 5), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_del(ks, SAEF_KS_KPSA, "a@b.c", 5), SAEF_KS_ENOTFOUND);
    CU_ASSERT_STRING_EQUAL(saef_ks_last_error(ks), "no kpsa key a@b.c");
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KPSA, "a@b.c", 5, &out), SAEF_KS_ENOTFOUND);
    /* REPLACE also adds. */
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "n@b.c", 5, &b, SAEF_KS_REPLACE), SAEF_KS_OK);
    saef_ks_close(ks);
}

static void test_errors_never_contain_key_bytes(void)
{
    saef_ks *ks = fresh();
    saef_ks_record r = rec_with("DEADBEEFCAFE", "");

    saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &r, 0);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &r, 0), SAEF_KS_EEXISTS);
    CU_ASSERT_PTR_NOT_NULL(strstr(saef_ks_last_error(ks), "a@b.c"));
    CU_ASSERT_PTR_NULL(strstr(saef_ks_last_error(ks), "DEADBEEF"));
    CU_ASSERT_PTR_NULL(strstr(saef_ks_last_error(ks), "deadbeef"));
    CU_ASSERT_PTR_NULL(
        memmem(saef_ks_last_error(ks), strlen(saef_ks_last_error(ks)), "\xde\xad\xbe\xef", 4));
    saef_ks_close(ks);
}

static void test_identity_bytes_escaped_in_messages(void)
{
    saef_ks *ks = fresh();
    saef_ks_record out;

    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KPSA, "a\nb\001\\@c\0d", 9, &out), SAEF_KS_ENOTFOUND);
    CU_ASSERT_STRING_EQUAL(saef_ks_last_error(ks), "no kpsa key a\\x0ab\\x01\\x5c@c\\x00d");
    saef_ks_close(ks);
}

static void test_last_error_belongs_to_its_handle(void)
{
    saef_ks *a = fresh(), *b = fresh();
    saef_ks_record out;

    CU_ASSERT_EQUAL(saef_ks_get(a, SAEF_KS_KPSA, "x@y.z", 5, &out), SAEF_KS_ENOTFOUND);
    CU_ASSERT_STRING_EQUAL(saef_ks_last_error(a), "no kpsa key x@y.z");
    CU_ASSERT_STRING_EQUAL(saef_ks_last_error(b), "");
    saef_ks_close(a);
    saef_ks_close(b);
}

/* ---- walks and batches -------------------------------------------------- */

static int collect(SAEF_KS_TYPE type, const char *id, size_t id_len, const saef_ks_record *rec,
                   void *arg)
{
    char *buf = arg;

    (void)rec;
    CU_ASSERT_EQUAL(strlen(id), id_len); /* a C string too */
    snprintf(buf + strlen(buf), 256 - strlen(buf), "%s:%s,", saef_ks_type_name(type), id);
    return 0;
}

static int stop_after_two(SAEF_KS_TYPE type, const char *id, size_t id_len,
                          const saef_ks_record *rec, void *arg)
{
    (void)type, (void)id, (void)id_len, (void)rec;
    return ++*(int *)arg == 2;
}

static void test_iteration_order_filter_and_count(void)
{
    saef_ks *ks = fresh();
    saef_ks_record r = rec_with("01", "");
    char seen[256] = "";
    size_t n;
    int calls = 0;

    saef_ks_put(ks, SAEF_KS_KC, "k@m.n", 5, &r, 0);
    saef_ks_put(ks, SAEF_KS_KPSA, "b@b.c", 5, &r, 0);
    saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &r, 0);
    saef_ks_put(ks, SAEF_KS_KPSA, "ab@b.c", 6, &r, 0);
    saef_ks_put(ks, SAEF_KS_KM, "m@m.n", 5, &r, 0);
    CU_ASSERT_EQUAL(saef_ks_iter(ks, 0, collect, seen), SAEF_KS_OK);
    CU_ASSERT_STRING_EQUAL(seen, "kpsa:a@b.c,kpsa:ab@b.c,kpsa:b@b.c,km:m@m.n,kc:k@m.n,");
    seen[0] = '\0';
    CU_ASSERT_EQUAL(saef_ks_iter(ks, SAEF_KS_KPSA, collect, seen), SAEF_KS_OK);
    CU_ASSERT_STRING_EQUAL(seen, "kpsa:a@b.c,kpsa:ab@b.c,kpsa:b@b.c,");
    seen[0] = '\0';
    CU_ASSERT_EQUAL(saef_ks_iter(ks, SAEF_KS_KC, collect, seen), SAEF_KS_OK);
    CU_ASSERT_STRING_EQUAL(seen, "kc:k@m.n,");
    CU_ASSERT_EQUAL(saef_ks_iter(ks, 0, stop_after_two, &calls), SAEF_KS_OK);
    CU_ASSERT_EQUAL(calls, 2);
    CU_ASSERT_EQUAL(saef_ks_iter(ks, 0, NULL, NULL), SAEF_KS_EINVAL);
    CU_ASSERT_EQUAL(saef_ks_iter(ks, (SAEF_KS_TYPE)7, collect, seen), SAEF_KS_EINVAL);
    CU_ASSERT_EQUAL(saef_ks_count(ks, 0, &n), SAEF_KS_OK);
    CU_ASSERT_EQUAL(n, 5);
    CU_ASSERT_EQUAL(saef_ks_count(ks, SAEF_KS_KPSA, &n), SAEF_KS_OK);
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_EQUAL(saef_ks_count(ks, SAEF_KS_KM, &n), SAEF_KS_OK);
    CU_ASSERT_EQUAL(n, 1);
    saef_ks_close(ks);
    /* An empty store walks and counts nothing. */
    ks = fresh();
    CU_ASSERT_EQUAL(saef_ks_count(ks, 0, &n), SAEF_KS_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(saef_ks_count(ks, SAEF_KS_KC, &n), SAEF_KS_OK);
    CU_ASSERT_EQUAL(n, 0);
    saef_ks_close(ks);
}

static void peers_of(saef_ks *ks, SAEF_KS_TYPE type, const char *peer, char seen[256])
{
    seen[0] = '\0';
    CU_ASSERT_EQUAL(saef_ks_iter_peer(ks, type, peer, collect, seen), SAEF_KS_OK);
}

static void selves_of(saef_ks *ks, SAEF_KS_TYPE type, const char *self, char seen[256])
{
    seen[0] = '\0';
    CU_ASSERT_EQUAL(saef_ks_iter_self(ks, type, self, collect, seen), SAEF_KS_OK);
}

static saef_ks_record rec_self(const char *hex, const char *peer, const char *self)
{
    saef_ks_record r = rec_with(hex, peer);

    snprintf(r.self, sizeof(r.self), "%s", self);
    return r;
}

static saef_ks_record expiring(int64_t not_after, const char *peer)
{
    saef_ks_record r = rec_with("0102030405060708090A0B0C0D0E0F10", peer);

    r.not_after = not_after;
    return r;
}

/* A write that frees pages it allocated leaves LMDB's last page number past
   the file's end: the writer extends the file, so readers open it again. */
static void test_store_opens_after_a_large_delete(void)
{
    saef_ks *ks = fresh();
    saef_ks_record r = expiring(1, "/id-x");
    char store[256], id[64];
    size_t removed = 0;

    snprintf(store, sizeof(store), "%s/s%d.db", dir, counter);
    snprintf(r.meta, sizeof(r.meta), "adminFQDN=admin.example.com");
    CU_ASSERT_EQUAL(saef_ks_write_begin(ks), SAEF_KS_OK);
    for (int i = 0; i < 600; i++) {
        snprintf(id, sizeof(id), "%032X@maf.example.com", i);
        CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KC, id, strlen(id), &r, 0), SAEF_KS_OK);
    }
    CU_ASSERT_EQUAL(saef_ks_write_commit(ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(
        saef_ks_purge(ks, SAEF_KS_KC, (int64_t)time(NULL), SAEF_KS_PURGE_MAX, NULL, &removed),
        SAEF_KS_OK);
    CU_ASSERT_EQUAL(removed, 600);
    saef_ks_close(ks);
    ks = NULL;
    CU_ASSERT_EQUAL(saef_ks_open(store, SAEF_KS_RDONLY, &ks), SAEF_KS_OK);
    saef_ks_close(ks);
}

static void test_purge_removes_expired_records_in_bounded_steps(void)
{
    saef_ks *ks = fresh(), *ro = NULL;
    int64_t now = (int64_t)time(NULL);
    saef_ks_record gone = expiring(now - 10, ""), live = expiring(now + 100, ""),
                   edge = expiring(now, ""), never = expiring(0, ""),
                   indexed = expiring(1, "/id-x");
    char from[SAEF_KS_ID_MAX + 1] = "", seen[256] = "", other[256];
    size_t removed = 99;

    saef_ks_put(ks, SAEF_KS_KC, "a@m.n", 5, &gone, 0);
    saef_ks_put(ks, SAEF_KS_KC, "b@m.n", 5, &live, 0);
    saef_ks_put(ks, SAEF_KS_KC, "c@m.n", 5, &edge, 0);
    saef_ks_put(ks, SAEF_KS_KC, "d@m.n", 5, &never, 0);
    saef_ks_put(ks, SAEF_KS_KC, "e@m.n", 5, &indexed, 0);
    saef_ks_put(ks, SAEF_KS_KPSA, "p@b.c", 5, &gone, 0);
    /* Two records a call; where to go on comes back in from. */
    CU_ASSERT_EQUAL(saef_ks_purge(ks, SAEF_KS_KC, now, 2, from, &removed), SAEF_KS_OK);
    CU_ASSERT_EQUAL(removed, 1);
    CU_ASSERT_STRING_EQUAL(from, "c@m.n");
    CU_ASSERT_EQUAL(saef_ks_purge(ks, SAEF_KS_KC, now, 2, from, &removed), SAEF_KS_OK);
    CU_ASSERT_EQUAL(removed, 1); /* not_after == now has expired */
    CU_ASSERT_STRING_EQUAL(from, "e@m.n");
    CU_ASSERT_EQUAL(saef_ks_purge(ks, SAEF_KS_KC, now, 2, from, &removed), SAEF_KS_OK);
    CU_ASSERT_EQUAL(removed, 1);
    CU_ASSERT_STRING_EQUAL(from, ""); /* the end: the next call starts again */
    CU_ASSERT_EQUAL(saef_ks_iter(ks, 0, collect, seen), SAEF_KS_OK);
    CU_ASSERT_STRING_EQUAL(seen, "kpsa:p@b.c,kc:b@m.n,kc:d@m.n,");
    /* Deleted with its peer index entry. */
    peers_of(ks, 0, "/id-x", seen);
    CU_ASSERT_STRING_EQUAL(seen, "");
    /* Nothing expired: nothing removed; a start past the last record is the end. */
    CU_ASSERT_EQUAL(saef_ks_purge(ks, SAEF_KS_KC, now, SAEF_KS_PURGE_MAX, NULL, &removed),
                    SAEF_KS_OK);
    CU_ASSERT_EQUAL(removed, 0);
    snprintf(from, sizeof(from), "zz@m.n");
    CU_ASSERT_EQUAL(saef_ks_purge(ks, SAEF_KS_KC, now, 1, from, NULL), SAEF_KS_OK);
    CU_ASSERT_STRING_EQUAL(from, "");
    CU_ASSERT_EQUAL(saef_ks_purge(ks, SAEF_KS_KPSA, now, 1, NULL, &removed), SAEF_KS_OK);
    CU_ASSERT_EQUAL(removed, 1);
    /* Bad arguments, an open batch and a read-only handle change nothing. */
    CU_ASSERT_EQUAL(saef_ks_purge(ks, SAEF_KS_KC, now + 1000, 0, NULL, &removed), SAEF_KS_EINVAL);
    CU_ASSERT_EQUAL(
        saef_ks_purge(ks, SAEF_KS_KC, now + 1000, SAEF_KS_PURGE_MAX + 1, NULL, &removed),
        SAEF_KS_EINVAL);
    CU_ASSERT_EQUAL(saef_ks_purge(ks, (SAEF_KS_TYPE)7, now, 1, NULL, &removed), SAEF_KS_EINVAL);
    memset(from, 'x', sizeof(from));
    CU_ASSERT_EQUAL(saef_ks_purge(ks, SAEF_KS_KC, now + 1000, 1, from, &removed), SAEF_KS_EINVAL);
    CU_ASSERT_EQUAL(saef_ks_write_begin(ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_purge(ks, SAEF_KS_KC, now + 1000, 1, NULL, &removed), SAEF_KS_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(saef_ks_last_error(ks), "batch"));
    saef_ks_write_abort(ks);
    snprintf(other, sizeof(other), "%s", path());
    CU_ASSERT_EQUAL(saef_ks_open(other, SAEF_KS_CREATE, &ro), SAEF_KS_OK);
    saef_ks_close(ro);
    CU_ASSERT_EQUAL(saef_ks_open(other, SAEF_KS_RDONLY, &ro), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_purge(ro, SAEF_KS_KC, now, 1, NULL, &removed), SAEF_KS_EINVAL);
    saef_ks_close(ro);
    CU_ASSERT_EQUAL(removed, 0);
    CU_ASSERT_EQUAL(saef_ks_count(ks, SAEF_KS_KC, &removed), SAEF_KS_OK);
    CU_ASSERT_EQUAL(removed, 2);
    saef_ks_close(ks);
}

/* A write transaction on store p straight through LMDB, as another program
   would make one: no saef handle may be open on p meanwhile. */
static MDB_txn *raw_begin(const char *p, MDB_env **env)
{
    MDB_txn *txn;

    CU_ASSERT_FATAL(mdb_env_create(env) == 0 && mdb_env_set_maxdbs(*env, 2) == 0);
    CU_ASSERT_FATAL(mdb_env_open(*env, p, MDB_NOSUBDIR, 0600) == 0);
    CU_ASSERT_FATAL(mdb_txn_begin(*env, NULL, 0, &txn) == 0);
    return txn;
}

static void raw_end(MDB_env *env, MDB_txn *txn)
{
    CU_ASSERT(mdb_txn_commit(txn) == 0);
    mdb_env_close(env);
}

/* Entries in the index db ("\xffpeer" or "\xffself"; -1: none), dropping it
   if asked, as a store made before it was: no saef handle may be open on p
   meanwhile. */
static long raw_index_db(const char *p, const char *db, int drop)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_stat st;
    long n = -1;

    txn = raw_begin(p, &env);
    if (mdb_dbi_open(txn, db, MDB_DUPSORT, &dbi) == 0 && mdb_stat(txn, dbi, &st) == 0) {
        n = (long)st.ms_entries;
        if (drop)
            CU_ASSERT(mdb_drop(txn, dbi, 1) == 0);
    }
    raw_end(env, txn);
    return n;
}

/* A stale entry, as an older saef that kept no such index could leave:
   index db maps value to the record key (type, id). */
static void raw_index_add(const char *p, const char *db, const char *value, SAEF_KS_TYPE type,
                          const char *id)
{
    unsigned char key[64];
    MDB_val v = {strlen(value), (void *)value}, k = {1 + strlen(id), key};
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;

    key[0] = (unsigned char)type;
    memcpy(key + 1, id, strlen(id));
    txn = raw_begin(p, &env);
    CU_ASSERT(mdb_dbi_open(txn, db, MDB_DUPSORT, &dbi) == 0 && mdb_put(txn, dbi, &v, &k, 0) == 0);
    raw_end(env, txn);
}

/* The store's format marker into out (64 bytes), after setting it to set
   (NULL: left as it is). */
static void raw_marker(const char *p, const char *set, char out[64])
{
    MDB_val k = {11, "\0saef-store"}, v;
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;

    out[0] = '\0';
    txn = raw_begin(p, &env);
    CU_ASSERT_FATAL(mdb_dbi_open(txn, NULL, 0, &dbi) == 0);
    if (set != NULL) {
        v = (MDB_val){strlen(set), (void *)set};
        CU_ASSERT(mdb_put(txn, dbi, &k, &v, 0) == 0);
    }
    if (mdb_get(txn, dbi, &k, &v) == 0 && v.mv_size < 64) {
        memcpy(out, v.mv_data, v.mv_size);
        out[v.mv_size] = '\0';
    }
    raw_end(env, txn);
}

static long raw_index(const char *p, int drop)
{
    return raw_index_db(p, "\xffpeer", drop);
}

static void test_peer_index_follows_every_write(void)
{
    saef_ks *ks = fresh();
    saef_ks_record x = rec_with("01", "/id-x"), y = rec_with("02", "/id-y"),
                   none = rec_with("03", "");
    char seen[256];
    size_t n;
    int calls = 0;

    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &x, 0), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KC, "k@m.n", 5, &x, 0), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "b@b.c", 5, &y, 0), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "c@b.c", 5, &none, 0), SAEF_KS_OK);
    peers_of(ks, 0, "/id-x", seen);
    CU_ASSERT_STRING_EQUAL(seen, "kpsa:a@b.c,kc:k@m.n,");
    peers_of(ks, SAEF_KS_KC, "/id-x", seen);
    CU_ASSERT_STRING_EQUAL(seen, "kc:k@m.n,");
    /* Entity IDs are compared exactly. */
    peers_of(ks, 0, "/ID-X", seen);
    CU_ASSERT_STRING_EQUAL(seen, "");
    CU_ASSERT_EQUAL(saef_ks_iter_peer(ks, 0, "/id-x", stop_after_two, &calls), SAEF_KS_OK);
    CU_ASSERT_EQUAL(calls, 2);
    CU_ASSERT_EQUAL(saef_ks_iter_peer(ks, 0, "", collect, seen), SAEF_KS_EINVAL);
    /* Replacing moves the entry; deleting drops it; a duplicate add changes nothing. */
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &y, SAEF_KS_REPLACE), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &x, 0), SAEF_KS_EEXISTS);
    peers_of(ks, 0, "/id-x", seen);
    CU_ASSERT_STRING_EQUAL(seen, "kc:k@m.n,");
    peers_of(ks, 0, "/id-y", seen);
    CU_ASSERT_STRING_EQUAL(seen, "kpsa:a@b.c,kpsa:b@b.c,");
    CU_ASSERT_EQUAL(saef_ks_del(ks, SAEF_KS_KPSA, "b@b.c", 5), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "c@b.c", 5, &y, SAEF_KS_REPLACE), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "c@b.c", 5, &none, SAEF_KS_REPLACE), SAEF_KS_OK);
    peers_of(ks, 0, "/id-y", seen);
    CU_ASSERT_STRING_EQUAL(seen, "kpsa:a@b.c,");
    /* Batches: an abort leaves no entry, a commit keeps them. */
    CU_ASSERT_EQUAL(saef_ks_write_begin(ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "d@b.c", 5, &x, 0), SAEF_KS_OK);
    saef_ks_write_abort(ks);
    peers_of(ks, 0, "/id-x", seen);
    CU_ASSERT_STRING_EQUAL(seen, "kc:k@m.n,");
    CU_ASSERT_EQUAL(saef_ks_write_begin(ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "d@b.c", 5, &x, 0), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_write_commit(ks), SAEF_KS_OK);
    peers_of(ks, 0, "/id-x", seen);
    CU_ASSERT_STRING_EQUAL(seen, "kpsa:d@b.c,kc:k@m.n,");
    /* The index is neither counted nor walked as records. */
    CU_ASSERT_EQUAL(saef_ks_count(ks, 0, &n), SAEF_KS_OK);
    CU_ASSERT_EQUAL(n, 4);
    seen[0] = '\0';
    CU_ASSERT_EQUAL(saef_ks_iter(ks, 0, collect, seen), SAEF_KS_OK);
    CU_ASSERT_STRING_EQUAL(seen, "kpsa:a@b.c,kpsa:c@b.c,kpsa:d@b.c,kc:k@m.n,");
    saef_ks_close(ks);
}

/* The self index (a MAF counts a client's registrations by it) is kept by
   every write as the peer index is, and neither is counted as records. */
static void test_self_index_follows_every_write(void)
{
    saef_ks *ks = fresh();
    saef_ks_record a = rec_self("01", "/id-b", "/id-in/Ca"),
                   b = rec_self("02", "/id-b", "/id-in/Cb"), none = rec_self("03", "/id-b", "");
    char seen[256];
    size_t n;
    int calls = 0;

    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KC, "1@m.n", 5, &a, 0), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KC, "2@m.n", 5, &a, 0), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "p@b.c", 5, &a, 0), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KC, "3@m.n", 5, &b, 0), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KC, "4@m.n", 5, &none, 0), SAEF_KS_OK);
    selves_of(ks, 0, "/id-in/Ca", seen);
    CU_ASSERT_STRING_EQUAL(seen, "kpsa:p@b.c,kc:1@m.n,kc:2@m.n,");
    selves_of(ks, SAEF_KS_KC, "/id-in/Ca", seen);
    CU_ASSERT_STRING_EQUAL(seen, "kc:1@m.n,kc:2@m.n,");
    selves_of(ks, 0, "/id-in/ca", seen);
    CU_ASSERT_STRING_EQUAL(seen, "");
    /* The peer index is not the self index. */
    selves_of(ks, 0, "/id-b", seen);
    CU_ASSERT_STRING_EQUAL(seen, "");
    peers_of(ks, SAEF_KS_KC, "/id-b", seen);
    CU_ASSERT_STRING_EQUAL(seen, "kc:1@m.n,kc:2@m.n,kc:3@m.n,kc:4@m.n,");
    CU_ASSERT_EQUAL(saef_ks_iter_self(ks, 0, "/id-in/Ca", stop_after_two, &calls), SAEF_KS_OK);
    CU_ASSERT_EQUAL(calls, 2);
    CU_ASSERT_EQUAL(saef_ks_iter_self(ks, 0, "", collect, seen), SAEF_KS_EINVAL);
    CU_ASSERT_EQUAL(saef_ks_iter_self(ks, 0, "/id-in/Ca", NULL, seen), SAEF_KS_EINVAL);
    /* Replacing moves the entry, deleting drops it; a batch is kept whole or not at all. */
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KC, "1@m.n", 5, &b, SAEF_KS_REPLACE), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KC, "4@m.n", 5, &b, SAEF_KS_REPLACE), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_del(ks, SAEF_KS_KC, "2@m.n", 5), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KC, "3@m.n", 5, &none, SAEF_KS_REPLACE), SAEF_KS_OK);
    selves_of(ks, 0, "/id-in/Ca", seen);
    CU_ASSERT_STRING_EQUAL(seen, "kpsa:p@b.c,");
    selves_of(ks, 0, "/id-in/Cb", seen);
    CU_ASSERT_STRING_EQUAL(seen, "kc:1@m.n,kc:4@m.n,");
    CU_ASSERT_EQUAL(saef_ks_write_begin(ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KC, "5@m.n", 5, &a, 0), SAEF_KS_OK);
    saef_ks_write_abort(ks);
    selves_of(ks, SAEF_KS_KC, "/id-in/Ca", seen);
    CU_ASSERT_STRING_EQUAL(seen, "");
    CU_ASSERT_EQUAL(saef_ks_write_begin(ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KC, "5@m.n", 5, &a, 0), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_write_commit(ks), SAEF_KS_OK);
    selves_of(ks, SAEF_KS_KC, "/id-in/Ca", seen);
    CU_ASSERT_STRING_EQUAL(seen, "kc:5@m.n,");
    CU_ASSERT_EQUAL(saef_ks_count(ks, 0, &n), SAEF_KS_OK);
    CU_ASSERT_EQUAL(n, 5);
    seen[0] = '\0';
    CU_ASSERT_EQUAL(saef_ks_iter(ks, 0, collect, seen), SAEF_KS_OK);
    CU_ASSERT_STRING_EQUAL(seen, "kpsa:p@b.c,kc:1@m.n,kc:3@m.n,kc:4@m.n,kc:5@m.n,");
    saef_ks_close(ks);
}

static void test_store_without_index_is_indexed_or_walked(void)
{
    char sub[300], p[320], lock[330];
    saef_ks_record x = rec_self("01", "/id-x", "/id-s");
    char seen[256], marker[64];
    saef_ks *ks;
    pid_t pid;

    snprintf(sub, sizeof(sub), "%s/noindex", dir);
    CU_ASSERT_FATAL(mkdir(sub, 0750) == 0);
    snprintf(p, sizeof(p), "%s/keys.db", sub);
    snprintf(lock, sizeof(lock), "%s-lock", p);
    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_CREATE | SAEF_KS_GROUP_READ, &ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &x, 0), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KC, "k@m.n", 5, &x, 0), SAEF_KS_OK);
    saef_ks_close(ks);
    CU_ASSERT_EQUAL(raw_index(p, 1), 2);
    CU_ASSERT_EQUAL(raw_index(p, 0), -1);
    CU_ASSERT_EQUAL(raw_index_db(p, "\xffself", 1), 2);
    CU_ASSERT_EQUAL(raw_index_db(p, "\xffself", 0), -1);
    /* Made by saef before the self index: a v1 store. This one writes v2. */
    raw_marker(p, NULL, marker);
    CU_ASSERT_STRING_EQUAL(marker, "saef keystore v2");
    raw_marker(p, "saef keystore v1", marker);
    /* A reader that may not write walks the store instead. */
    if (geteuid() == 0) {
        CU_ASSERT_FATAL(chown(sub, 0, 65534) == 0 && chmod(dir, 0711) == 0);
        CU_ASSERT_FATAL(chown(p, 0, 65534) == 0 && chown(lock, 0, 65534) == 0);
        if ((pid = fork()) == 0) {
            char got[256] = "";
            int ok = setgid(65534) == 0 && setuid(65534) == 0 &&
                     saef_ks_open(p, SAEF_KS_RDONLY | SAEF_KS_GROUP_READ, &ks) == SAEF_KS_OK &&
                     saef_ks_iter_peer(ks, 0, "/id-x", collect, got) == SAEF_KS_OK &&
                     strcmp(got, "kpsa:a@b.c,kc:k@m.n,") == 0 &&
                     (got[0] = '\0', saef_ks_iter_self(ks, SAEF_KS_KC, "/id-s", collect, got)) ==
                         SAEF_KS_OK &&
                     strcmp(got, "kc:k@m.n,") == 0;
            saef_ks_close(ks);
            _exit(ok ? 0 : 1);
        }
        CU_ASSERT(child_ok(pid));
        chmod(dir, 0700);
        raw_marker(p, NULL, marker);
        CU_ASSERT_STRING_EQUAL(marker, "saef keystore v1"); /* a reader changes nothing */
    }
    /* The first writable open builds it. */
    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_RDONLY | SAEF_KS_GROUP_READ, &ks), SAEF_KS_OK);
    peers_of(ks, 0, "/id-x", seen);
    CU_ASSERT_STRING_EQUAL(seen, "kpsa:a@b.c,kc:k@m.n,");
    selves_of(ks, 0, "/id-s", seen);
    CU_ASSERT_STRING_EQUAL(seen, "kpsa:a@b.c,kc:k@m.n,");
    saef_ks_close(ks);
    CU_ASSERT_EQUAL(raw_index(p, 0), 2);
    CU_ASSERT_EQUAL(raw_index_db(p, "\xffself", 0), 2);
    /* With the self index built, the store says v2: saef before it refuses
       the store rather than write it without keeping the index. */
    raw_marker(p, NULL, marker);
    CU_ASSERT_STRING_EQUAL(marker, "saef keystore v2");
    /* A later format is not taken for this one. */
    raw_marker(p, "saef keystore v3", marker);
    CU_ASSERT_EQUAL(saef_ks_open(p, SAEF_KS_RDONLY | SAEF_KS_GROUP_READ, &ks), SAEF_KS_ECORRUPT);
    raw_marker(p, "saef keystore v2", marker);
    /* An entry whose record names another peer or self is not believed. */
    raw_index_add(p, "\xffself", "/id-stale", SAEF_KS_KC, "k@m.n");
    raw_index_add(p, "\xffpeer", "/id-stale", SAEF_KS_KC, "k@m.n");
    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_RDONLY | SAEF_KS_GROUP_READ, &ks), SAEF_KS_OK);
    selves_of(ks, 0, "/id-stale", seen);
    CU_ASSERT_STRING_EQUAL(seen, "");
    peers_of(ks, 0, "/id-stale", seen);
    CU_ASSERT_STRING_EQUAL(seen, "");
    saef_ks_close(ks);
}

static void test_batch_abort_keeps_nothing_commit_keeps_all(void)
{
    saef_ks *ks = fresh();
    saef_ks_record r = rec_with("01", ""), two = rec_with("02", ""), out;
    size_t n;

    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "old@b.c", 7, &r, 0), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_write_begin(ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_write_begin(ks), SAEF_KS_EINVAL);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &r, 0), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "b@b.c", 5, &r, 0), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_del(ks, SAEF_KS_KPSA, "old@b.c", 7), SAEF_KS_OK);
    saef_ks_write_abort(ks);
    CU_ASSERT_EQUAL(saef_ks_count(ks, 0, &n), SAEF_KS_OK);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KPSA, "old@b.c", 7, &out), SAEF_KS_OK);
    /* A refused put leaves the batch going; the rest commits. */
    CU_ASSERT_EQUAL(saef_ks_write_begin(ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &r, 0), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &two, 0), SAEF_KS_EEXISTS);
    CU_ASSERT_EQUAL(saef_ks_del(ks, SAEF_KS_KPSA, "zz@b.c", 6), SAEF_KS_ENOTFOUND);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "b@b.c", 5, &r, 0), SAEF_KS_OK);
    /* Reads outside the batch do not see it yet. */
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KPSA, "b@b.c", 5, &out), SAEF_KS_ENOTFOUND);
    CU_ASSERT_EQUAL(saef_ks_write_commit(ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_count(ks, 0, &n), SAEF_KS_OK);
    CU_ASSERT_EQUAL(n, 3);
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KPSA, "a@b.c", 5, &out), SAEF_KS_OK);
    CU_ASSERT_EQUAL(out.key[0], 0x01);
    CU_ASSERT_EQUAL(saef_ks_write_commit(ks), SAEF_KS_EINVAL);
    /* Closing with a batch open drops it. */
    CU_ASSERT_EQUAL(saef_ks_write_begin(ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "c@b.c", 5, &r, 0), SAEF_KS_OK);
    saef_ks_close(ks);
}

/* ---- sharing, processes, threads ---------------------------------------- */

static void test_reader_sees_committed_write_without_reopen(void)
{
    const char *p = path();
    saef_ks *w, *rd;
    saef_ks_record r = rec_with("01", ""), out;

    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_CREATE, &w), SAEF_KS_OK);
    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_RDONLY, &rd), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_get(rd, SAEF_KS_KPSA, "a@b.c", 5, &out), SAEF_KS_ENOTFOUND);
    CU_ASSERT_EQUAL(saef_ks_put(w, SAEF_KS_KPSA, "a@b.c", 5, &r, 0), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_get(rd, SAEF_KS_KPSA, "a@b.c", 5, &out), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_del(w, SAEF_KS_KPSA, "a@b.c", 5), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_get(rd, SAEF_KS_KPSA, "a@b.c", 5, &out), SAEF_KS_ENOTFOUND);
    CU_ASSERT_EQUAL(saef_ks_put(rd, SAEF_KS_KPSA, "a@b.c", 5, &r, 0), SAEF_KS_EINVAL);
    CU_ASSERT_EQUAL(saef_ks_del(rd, SAEF_KS_KPSA, "a@b.c", 5), SAEF_KS_EINVAL);
    CU_ASSERT_EQUAL(saef_ks_write_begin(rd), SAEF_KS_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(saef_ks_last_error(rd), "read-only"));
    saef_ks_close(rd);
    saef_ks_close(w);
}

static void test_forked_reader_sees_committed_write_without_reopen(void)
{
    const char *p = path();
    saef_ks *w;
    saef_ks_record r = rec_with("01", "");
    int go[2], ready[2];
    pid_t pid;

    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_CREATE, &w), SAEF_KS_OK);
    CU_ASSERT_FATAL(pipe(go) == 0 && pipe(ready) == 0);
    if ((pid = fork()) == 0) {
        saef_ks *rd;
        saef_ks_record out;
        int ok = saef_ks_open(p, SAEF_KS_RDONLY, &rd) == SAEF_KS_OK &&
                 saef_ks_get(rd, SAEF_KS_KPSA, "a@b.c", 5, &out) == SAEF_KS_ENOTFOUND;
        send_byte(ready[1]);
        ok =
            ok && wait_byte(go[0]) && saef_ks_get(rd, SAEF_KS_KPSA, "a@b.c", 5, &out) == SAEF_KS_OK;
        _exit(ok ? 0 : 1);
    }
    CU_ASSERT(wait_byte(ready[0]));
    CU_ASSERT_EQUAL(saef_ks_put(w, SAEF_KS_KPSA, "a@b.c", 5, &r, 0), SAEF_KS_OK);
    send_byte(go[1]);
    CU_ASSERT(child_ok(pid));
    close(go[0]), close(go[1]), close(ready[0]), close(ready[1]);
    saef_ks_close(w);
}

static void test_fork_child_reopens_and_parent_keeps_working(void)
{
    saef_ks *ks = fresh();
    saef_ks_record r = rec_with("01", ""), out;
    pid_t pid;

    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &r, 0), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KPSA, "a@b.c", 5, &out), SAEF_KS_OK);
    if ((pid = fork()) == 0) {
        int ok = saef_ks_get(ks, SAEF_KS_KPSA, "a@b.c", 5, &out) == SAEF_KS_OK &&
                 saef_ks_put(ks, SAEF_KS_KPSA, "child@b.c", 9, &r, 0) == SAEF_KS_OK;
        /* Like a worker process: it exits without closing. */
        _exit(ok ? 0 : 1);
    }
    CU_ASSERT(child_ok(pid));
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KPSA, "child@b.c", 9, &out), SAEF_KS_OK);
    /* A child that closes the inherited handle leaves the parent alone. */
    if ((pid = fork()) == 0) {
        int ok = saef_ks_get(ks, SAEF_KS_KPSA, "a@b.c", 5, &out) == SAEF_KS_OK;
        saef_ks_close(ks);
        _exit(ok ? 0 : 1);
    }
    CU_ASSERT(child_ok(pid));
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KPSA, "a@b.c", 5, &out), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "parent@b.c", 10, &r, 0), SAEF_KS_OK);
    saef_ks_close(ks);
}

static void test_fork_child_does_not_inherit_a_batch(void)
{
    saef_ks *ks = fresh();
    saef_ks_record r = rec_with("01", ""), out;
    pid_t pid;

    CU_ASSERT_EQUAL(saef_ks_write_begin(ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &r, 0), SAEF_KS_OK);
    if ((pid = fork()) == 0) {
        /* Reads only: the parent's batch holds the store's one write lock. */
        int ok = saef_ks_get(ks, SAEF_KS_KPSA, "a@b.c", 5, &out) == SAEF_KS_ENOTFOUND &&
                 saef_ks_write_commit(ks) == SAEF_KS_EINVAL;
        saef_ks_write_abort(ks);
        _exit(ok ? 0 : 1);
    }
    CU_ASSERT(child_ok(pid));
    CU_ASSERT_EQUAL(saef_ks_write_commit(ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KPSA, "a@b.c", 5, &out), SAEF_KS_OK);
    saef_ks_close(ks);
}

static void test_handles_on_one_store_share_one_environment(void)
{
    char p[256], lock[300];
    saef_ks *rd, *w, *rd2;
    saef_ks_record r = rec_with("01", ""), out;

    snprintf(p, sizeof(p), "%s", path());
    snprintf(lock, sizeof(lock), "%s-lock", p);
    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_CREATE, &w), SAEF_KS_OK);
    saef_ks_close(w);
    /* The shim's reader, then a writer for a moment (its Kc cache). */
    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_RDONLY, &rd), SAEF_KS_OK);
    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, 0, &w), SAEF_KS_OK);
    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_RDONLY, &rd2), SAEF_KS_OK);
    CU_ASSERT_EQUAL(fds_on(lock), 1);
    CU_ASSERT_EQUAL(saef_ks_put(w, SAEF_KS_KPSA, "a@b.c", 5, &r, 0), SAEF_KS_OK);
    saef_ks_close(w);
    CU_ASSERT_EQUAL(fds_on(lock), 1);
    CU_ASSERT_EQUAL(saef_ks_get(rd, SAEF_KS_KPSA, "a@b.c", 5, &out), SAEF_KS_OK);
    saef_ks_close(rd);
    CU_ASSERT_EQUAL(saef_ks_get(rd2, SAEF_KS_KPSA, "a@b.c", 5, &out), SAEF_KS_OK);
    saef_ks_close(rd2);
    CU_ASSERT_EQUAL(fds_on(lock), 0);
}

static void small_map(void)
{
    setenv("SAEF_KS_MAP_SIZE", "65536", 1);
}

static void test_map_grows_for_single_puts_and_batches(void)
{
    saef_ks *ks;
    saef_ks_record big = big_rec(), r = rec_with("0102030405060708", "/sp/C-x"), out;
    size_t n;

    small_map();
    ks = fresh();
    unsetenv("SAEF_KS_MAP_SIZE");
    /* 60 records of 1.8 KB in 64 KiB: single puts must grow it. */
    for (int i = 0; i < 60; i++)
        CU_ASSERT_EQUAL(put_id(ks, "big", i, &big), SAEF_KS_OK);
    /* A batch that grows it several times, with a refused put in it that
       the replay must leave out. */
    CU_ASSERT_EQUAL(saef_ks_write_begin(ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(put_id(ks, "big", 0, &r), SAEF_KS_EEXISTS);
    for (int i = 0; i < 3000; i++)
        CU_ASSERT_EQUAL(put_id(ks, "dev", i, &r), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_write_commit(ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_count(ks, 0, &n), SAEF_KS_OK);
    CU_ASSERT_EQUAL(n, 3060);
    CU_ASSERT_EQUAL(get_id(ks, "big", 0, &out), SAEF_KS_OK);
    CU_ASSERT_EQUAL(out.key_len, SAEF_KS_KEY_MAX);
    CU_ASSERT_EQUAL(get_id(ks, "dev", 2999, &out), SAEF_KS_OK);
    CU_ASSERT_STRING_EQUAL(out.peer, "/sp/C-x");
    /* A batch that grew the map and was then aborted leaves nothing. */
    CU_ASSERT_EQUAL(saef_ks_write_begin(ks), SAEF_KS_OK);
    for (int i = 0; i < 3000; i++)
        CU_ASSERT_EQUAL(put_id(ks, "gone", i, &big), SAEF_KS_OK);
    saef_ks_write_abort(ks);
    CU_ASSERT_EQUAL(saef_ks_count(ks, 0, &n), SAEF_KS_OK);
    CU_ASSERT_EQUAL(n, 3060);
    saef_ks_close(ks);
}

static void test_reader_adopts_map_grown_by_another_process(void)
{
    char p[256];
    saef_ks *rd;
    saef_ks_record r = rec_with("0102030405060708", ""), out;
    size_t n;
    pid_t pid;

    snprintf(p, sizeof(p), "%s", path());
    small_map();
    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_CREATE, &rd), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_count(rd, 0, &n), SAEF_KS_OK);
    if ((pid = fork()) == 0) {
        saef_ks *w;
        int ok = saef_ks_open(p, 0, &w) == SAEF_KS_OK && saef_ks_write_begin(w) == SAEF_KS_OK;
        for (int i = 0; ok && i < 5000; i++)
            ok = put_id(w, "dev", i, &r) == SAEF_KS_OK;
        ok = ok && saef_ks_write_commit(w) == SAEF_KS_OK;
        _exit(ok ? 0 : 1);
    }
    unsetenv("SAEF_KS_MAP_SIZE");
    CU_ASSERT_FATAL(child_ok(pid));
    CU_ASSERT_EQUAL(get_id(rd, "dev", 4999, &out), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_count(rd, 0, &n), SAEF_KS_OK);
    CU_ASSERT_EQUAL(n, 5000);
    /* Its writes work too, with the adopted map. */
    CU_ASSERT_EQUAL(put_id(rd, "more", 1, &r), SAEF_KS_OK);
    saef_ks_close(rd);
}

static void test_bad_map_size_variable_refused(void)
{
    static const char *bad[] = {"abc", "100", "-65536", "65536k", "", "99999999999999999999999"};
    saef_ks *ks;

    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        setenv("SAEF_KS_MAP_SIZE", bad[i], 1);
        CU_ASSERT_EQUAL(saef_ks_open(path(), SAEF_KS_CREATE, &ks), SAEF_KS_EINVAL);
        CU_ASSERT_PTR_NOT_NULL(strstr(saef_ks_last_error(NULL), "SAEF_KS_MAP_SIZE="));
    }
    unsetenv("SAEF_KS_MAP_SIZE");
}

/*
 * Another program on the store (LMDB directly) that takes every free reader
 * slot (all) or sits in one read transaction, and is killed with SIGKILL
 * there, as a crashed worker would be: its slots stay taken.
 */
static void die_holding_readers(const char *p, int all)
{
    int fds[2];
    char c = 0;
    pid_t pid;

    CU_ASSERT_FATAL(pipe(fds) == 0);
    if ((pid = fork()) == 0) {
        MDB_env *env;
        MDB_txn *txn;
        int n = 0;

        if (mdb_env_create(&env) != 0 ||
            mdb_env_open(env, p, MDB_NOSUBDIR | MDB_NOTLS | MDB_RDONLY, 0600) != 0)
            _exit(1);
        while (n < 100000 && mdb_txn_begin(env, NULL, MDB_RDONLY, &txn) == 0 && (n++, all))
            ;
        c = n > 0 ? 'y' : 'n';
        if (write(fds[1], &c, 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    close(fds[1]);
    CU_ASSERT(read(fds[0], &c, 1) == 1 && c == 'y');
    close(fds[0]);
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
}

static void test_slots_of_killed_readers_are_reclaimed(void)
{
    char p[256];
    saef_ks *ks;
    saef_ks_record r = rec_with("0102030405060708", "/sp/C-x"), out;

    snprintf(p, sizeof(p), "%s", path());
    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_CREATE, &ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(put_id(ks, "dev", 1, &r), SAEF_KS_OK);
    die_holding_readers(p, 1);
    /* A lookup needs a slot of its own: it must not fail with READERS_FULL. */
    CU_ASSERT_EQUAL(get_id(ks, "dev", 1, &out), SAEF_KS_OK);
    CU_ASSERT_STRING_EQUAL(out.peer, "/sp/C-x");
    saef_ks_close(ks);
}

static void test_reader_killed_in_a_read_does_not_grow_the_store(void)
{
    char p[256];
    saef_ks *ks;
    saef_ks_record r = rec_with("0102030405060708", "");
    struct stat st;
    const long map = 65536;

    snprintf(p, sizeof(p), "%s", path());
    small_map();
    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_CREATE, &ks), SAEF_KS_OK);
    unsetenv("SAEF_KS_MAP_SIZE");
    CU_ASSERT_EQUAL(put_id(ks, "dev", 1, &r), SAEF_KS_OK);
    die_holding_readers(p, 0);
    /* Rewrites of one record fill the map many times over unless the pages
       the dead reader pinned are freed for reuse. */
    for (long i = 0; i < 4 * map / sysconf(_SC_PAGESIZE); i++)
        CU_ASSERT_EQUAL(
            saef_ks_put(ks, SAEF_KS_KPSA, "dev-1@sp.example.com", 20, &r, SAEF_KS_REPLACE),
            SAEF_KS_OK);
    CU_ASSERT(stat(p, &st) == 0 && st.st_size <= map);
    saef_ks_close(ks);
}

/* > 0: calls to mmap() for more bytes fail with ENOMEM, as when the address
   space runs out. Exported, so LMDB and the keystore call this one. */
static size_t mmap_fail_over;

__attribute__((visibility("default"))) void *mmap(void *addr, size_t len, int prot, int flags,
                                                  int fd, off_t off)
{
    static void *(*real_mmap)(void *, size_t, int, int, int, off_t);

    if (mmap_fail_over != 0 && len > mmap_fail_over) {
        errno = ENOMEM;
        return MAP_FAILED;
    }
    if (real_mmap == NULL)
        *(void **)&real_mmap = dlsym(RTLD_NEXT, "mmap");
    return real_mmap(addr, len, prot, flags, fd, off);
}

static void test_failed_remap_fails_lookups_without_crashing(void)
{
    char p[256];
    pid_t pid;

    snprintf(p, sizeof(p), "%s", path());
    /* In a child: the failure leaves its environment unusable for good. */
    if ((pid = fork()) == 0) {
        saef_ks *rd;
        saef_ks_record r = rec_with("0102030405060708", ""), out;
        size_t n;
        pid_t w;
        int ok;

        small_map();
        ok = saef_ks_open(p, SAEF_KS_CREATE, &rd) == SAEF_KS_OK &&
             saef_ks_count(rd, 0, &n) == SAEF_KS_OK;
        unsetenv("SAEF_KS_MAP_SIZE");
        /* Another process grows the store past this one's 64 KiB map. */
        if ((w = fork()) == 0) {
            saef_ks *ks;
            int wok =
                saef_ks_open(p, 0, &ks) == SAEF_KS_OK && saef_ks_write_begin(ks) == SAEF_KS_OK;
            for (int i = 0; wok && i < 5000; i++)
                wok = put_id(ks, "dev", i, &r) == SAEF_KS_OK;
            _exit(wok && saef_ks_write_commit(ks) == SAEF_KS_OK ? 0 : 1);
        }
        ok = ok && child_ok(w);
        mmap_fail_over = 65536;
        /* Adopting the grown map fails, and so does every later use. */
        ok = ok && get_id(rd, "dev", 1, &out) == SAEF_KS_EIO;
        ok = ok && get_id(rd, "dev", 1, &out) == SAEF_KS_EIO &&
             strstr(saef_ks_last_error(rd), "address space") != NULL;
        ok = ok && put_id(rd, "more", 1, &r) == SAEF_KS_EIO;
        _exit(ok ? 0 : 1);
    }
    CU_ASSERT(child_ok(pid));
}

struct reader {
    saef_ks *ks;
    atomic_int *stop;
    long lookups, failures;
};

static void *read_loop(void *arg)
{
    struct reader *rd = arg;
    saef_ks_record out;

    while (!atomic_load(rd->stop)) {
        for (int i = 0; i < 50; i++, rd->lookups++)
            rd->failures += get_id(rd->ks, "pre", i, &out) != SAEF_KS_OK;
        sched_yield(); /* valgrind runs one thread at a time */
    }
    saef_ks_record_wipe(&out);
    return NULL;
}

static void test_threads_read_while_the_map_grows(void)
{
    saef_ks *ks;
    saef_ks_record r = rec_with("0102030405060708", ""), big = big_rec();
    struct reader rd[4];
    pthread_t th[4];
    atomic_int stop = 0;

    small_map();
    ks = fresh();
    unsetenv("SAEF_KS_MAP_SIZE");
    for (int i = 0; i < 50; i++)
        CU_ASSERT_EQUAL(put_id(ks, "pre", i, &r), SAEF_KS_OK);
    for (int t = 0; t < 4; t++) {
        rd[t] = (struct reader){ks, &stop, 0, 0};
        CU_ASSERT_FATAL(pthread_create(&th[t], NULL, read_loop, &rd[t]) == 0);
    }
    /* 900 KB in batches: the map doubles four times under the readers. */
    for (int b = 0; b < 5; b++) {
        CU_ASSERT_EQUAL(saef_ks_write_begin(ks), SAEF_KS_OK);
        for (int i = 0; i < 100; i++)
            CU_ASSERT_EQUAL(put_id(ks, "bulk", b * 100 + i, &big), SAEF_KS_OK);
        CU_ASSERT_EQUAL(saef_ks_write_commit(ks), SAEF_KS_OK);
    }
    atomic_store(&stop, 1);
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        CU_ASSERT(rd[t].lookups > 0);
        CU_ASSERT_EQUAL(rd[t].failures, 0);
    }
    saef_ks_close(ks);
}

/* ---- type names --------------------------------------------------------- */

static void test_type_names(void)
{
    CU_ASSERT_STRING_EQUAL(saef_ks_type_name(SAEF_KS_KPSA), "kpsa");
    CU_ASSERT_STRING_EQUAL(saef_ks_type_name(SAEF_KS_KM), "km");
    CU_ASSERT_STRING_EQUAL(saef_ks_type_name(SAEF_KS_KC), "kc");
    CU_ASSERT_PTR_NULL(saef_ks_type_name((SAEF_KS_TYPE)0));
    CU_ASSERT_EQUAL(saef_ks_type_from_name("kc"), SAEF_KS_KC);
    CU_ASSERT_EQUAL(saef_ks_type_from_name("KC"), 0);
    CU_ASSERT_EQUAL(saef_ks_type_from_name(NULL), 0);
    CU_ASSERT_STRING_EQUAL(saef_ks_strerror(SAEF_KS_ENOSTORE), "no such store");
}

/* saef-test-keystore [WORD]: only the tests whose name holds WORD. */
int main(int argc, char **argv)
{
    static const CU_TestInfo tests[] = {
        SAEF_TEST(test_round_trip_keeps_every_field),
        SAEF_TEST(test_created_defaults_to_now),
        SAEF_TEST(test_expired_record_is_returned_with_its_expiry),
        SAEF_TEST(test_record_wipe_clears_key),
        SAEF_TEST(test_failed_get_leaves_an_empty_record),
        SAEF_TEST(test_missing_store_is_enostore),
        SAEF_TEST(test_bad_arguments_to_open_refused),
        SAEF_TEST(test_created_owner_only_and_group_read),
        SAEF_TEST(test_create_leaves_no_temporary_file),
        SAEF_TEST(test_unsafe_permissions_refused),
        SAEF_TEST(test_group_member_reads_but_cannot_write),
        SAEF_TEST(test_corrupt_empty_and_truncated_files_refused),
        SAEF_TEST(test_corrupt_page_header_fails_reads_without_a_fault),
        SAEF_TEST(test_faults_outside_reads_keep_their_default),
        SAEF_TEST(test_foreign_lmdb_file_and_malformed_record_refused),
        SAEF_TEST(test_identity_and_key_limits),
        SAEF_TEST(test_record_fields_that_do_not_fit_refused),
        SAEF_TEST(test_duplicate_replace_and_delete),
        SAEF_TEST(test_errors_never_contain_key_bytes),
        SAEF_TEST(test_identity_bytes_escaped_in_messages),
        SAEF_TEST(test_last_error_belongs_to_its_handle),
        SAEF_TEST(test_iteration_order_filter_and_count),
        SAEF_TEST(test_purge_removes_expired_records_in_bounded_steps),
        SAEF_TEST(test_store_opens_after_a_large_delete),
        SAEF_TEST(test_peer_index_follows_every_write),
        SAEF_TEST(test_self_index_follows_every_write),
        SAEF_TEST(test_store_without_index_is_indexed_or_walked),
        SAEF_TEST(test_batch_abort_keeps_nothing_commit_keeps_all),
        SAEF_TEST(test_reader_sees_committed_write_without_reopen),
        SAEF_TEST(test_forked_reader_sees_committed_write_without_reopen),
        SAEF_TEST(test_fork_child_reopens_and_parent_keeps_working),
        SAEF_TEST(test_fork_child_does_not_inherit_a_batch),
        SAEF_TEST(test_handles_on_one_store_share_one_environment),
        SAEF_TEST(test_map_grows_for_single_puts_and_batches),
        SAEF_TEST(test_reader_adopts_map_grown_by_another_process),
        SAEF_TEST(test_bad_map_size_variable_refused),
        SAEF_TEST(test_slots_of_killed_readers_are_reclaimed),
        SAEF_TEST(test_reader_killed_in_a_read_does_not_grow_the_store),
        SAEF_TEST(test_failed_remap_fails_lookups_without_crashing),
        SAEF_TEST(test_threads_read_while_the_map_grows),
        SAEF_TEST(test_type_names),
        CU_TEST_INFO_NULL,
    };

    return saef_unit_run_in(dir, "keystore", tests, argc, argv);
}
