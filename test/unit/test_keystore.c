/* CUnit tests of libsaef-keystore: records, errors, concurrency, helpers. */
#include "saef_conf.h"
#include "saef_keystore.h"

#include <CUnit/Basic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char dir[] = "/tmp/saef-unit.XXXXXX";
static int counter;

/* A fresh store path per test. */
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

static int mode_of(const char *p)
{
    struct stat st;

    return stat(p, &st) == 0 ? (int)(st.st_mode & 0777) : -1;
}

static void test_round_trip_keeps_every_field(void)
{
    saef_ks *ks = fresh();
    saef_ks_record in = rec_with("00112233", "/sp/C-dev1"), out;

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

static void test_missing_store_is_enostore(void)
{
    saef_ks *ks = (saef_ks *)1;

    CU_ASSERT_EQUAL(saef_ks_open(path(), 0, &ks), SAEF_KS_ENOSTORE);
    CU_ASSERT_PTR_NULL(ks);
    CU_ASSERT_PTR_NOT_NULL(strstr(saef_ks_last_error(NULL), "init"));
}

static void test_created_owner_only(void)
{
    const char *p = path();
    char lock[300];
    saef_ks *ks;

    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_CREATE, &ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(mode_of(p), 0600);
    saef_ks_close(ks);
    p = path();
    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_CREATE | SAEF_KS_GROUP_READ, &ks), SAEF_KS_OK);
    snprintf(lock, sizeof(lock), "%s-lock", p);
    CU_ASSERT_EQUAL(mode_of(p), 0640);
    CU_ASSERT_EQUAL(mode_of(lock), 0660);
    saef_ks_close(ks);
}

static void test_unsafe_permissions_refused(void)
{
    static const struct {
        int mode;
        unsigned flags;
        SAEF_KS_ERR want;
    } cases[] = {
        {0644, 0, SAEF_KS_EPERM},
        {0666, 0, SAEF_KS_EPERM},
        {0620, 0, SAEF_KS_EPERM},
        {0640, 0, SAEF_KS_EPERM},
        {0640, SAEF_KS_GROUP_READ, SAEF_KS_OK},
        {0644, SAEF_KS_GROUP_READ, SAEF_KS_EPERM},
        {0600, 0, SAEF_KS_OK},
    };
    const char *p = path();
    saef_ks *ks;

    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_CREATE, &ks), SAEF_KS_OK);
    saef_ks_close(ks);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        chmod(p, (mode_t)cases[i].mode);
        CU_ASSERT_EQUAL(saef_ks_open(p, cases[i].flags, &ks), cases[i].want);
        if (cases[i].want == SAEF_KS_OK)
            saef_ks_close(ks);
        else
            CU_ASSERT_PTR_NOT_NULL(strstr(saef_ks_last_error(NULL), "chmod"));
    }
}

static void write_file(const char *p, const void *data, size_t len)
{
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);

    CU_ASSERT_FATAL(fd >= 0);
    CU_ASSERT_EQUAL((size_t)write(fd, data, len), len);
    close(fd);
}

static void test_corrupt_empty_and_truncated_files_refused(void)
{
    unsigned char junk[65536];
    const char *p = path(), *q;
    saef_ks *ks;
    saef_ks_record r = rec_with("00112233445566778899", "");
    char id[64];
    FILE *f;

    for (size_t i = 0; i < sizeof(junk); i++)
        junk[i] = (unsigned char)(i * 7919 + 13);
    write_file(p, junk, sizeof(junk));
    CU_ASSERT_EQUAL(saef_ks_open(p, 0, &ks), SAEF_KS_ECORRUPT);
    write_file(p = path(), "", 0);
    CU_ASSERT_EQUAL(saef_ks_open(p, 0, &ks), SAEF_KS_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(saef_ks_last_error(NULL), "empty"));

    /* A real store, cut short. */
    p = path();
    CU_ASSERT_EQUAL_FATAL(saef_ks_open(p, SAEF_KS_CREATE, &ks), SAEF_KS_OK);
    saef_ks_write_begin(ks);
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof(id), "dev-%05d@sp.example.com", i);
        CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, id, strlen(id), &r, 0), SAEF_KS_OK);
    }
    CU_ASSERT_EQUAL(saef_ks_write_commit(ks), SAEF_KS_OK);
    saef_ks_close(ks);
    f = fopen(p, "rb");
    CU_ASSERT_FATAL(f != NULL);
    CU_ASSERT_EQUAL(fread(junk, 1, 8192, f), 8192);
    fclose(f);
    write_file(q = path(), junk, 8192);
    CU_ASSERT_EQUAL(saef_ks_open(q, 0, &ks), SAEF_KS_ECORRUPT);
    CU_ASSERT_PTR_NOT_NULL(strstr(saef_ks_last_error(NULL), "truncated"));
}

static void test_identity_and_key_limits(void)
{
    saef_ks *ks = fresh();
    saef_ks_record r = rec_with("00", ""), out;
    char id[130];

    memset(id, 'a', sizeof(id));
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, id, 129, &r, 0), SAEF_KS_EINVAL);
    CU_ASSERT_PTR_NOT_NULL(strstr(saef_ks_last_error(ks), "limit is 128"));
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, id, 128, &r, 0), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KPSA, id, 128, &out), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KPSA, id, 129, &out), SAEF_KS_EINVAL);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "", 0, &r, 0), SAEF_KS_EINVAL);
    CU_ASSERT_EQUAL(saef_ks_put(ks, (SAEF_KS_TYPE)9, "a@b.c", 5, &r, 0), SAEF_KS_EINVAL);
    r.key_len = 0;
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &r, 0), SAEF_KS_EINVAL);
    r.key_len = SAEF_KS_KEY_MAX + 1;
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &r, 0), SAEF_KS_EINVAL);
    r.key_len = SAEF_KS_KEY_MAX;
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &r, 0), SAEF_KS_OK);
    saef_ks_close(ks);
}

static void test_duplicate_replace_and_delete(void)
{
    saef_ks *ks = fresh();
    saef_ks_record a = rec_with("AA", ""), b = rec_with("BB", ""), out;

    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &a, 0), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &b, 0), SAEF_KS_EEXISTS);
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KPSA, "a@b.c", 5, &out), SAEF_KS_OK);
    CU_ASSERT_EQUAL(out.key[0], 0xAA);
    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &b, SAEF_KS_REPLACE), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KPSA, "a@b.c", 5, &out), SAEF_KS_OK);
    CU_ASSERT_EQUAL(out.key[0], 0xBB);
    CU_ASSERT_EQUAL(saef_ks_del(ks, SAEF_KS_KPSA, "a@b.c", 5), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_del(ks, SAEF_KS_KPSA, "a@b.c", 5), SAEF_KS_ENOTFOUND);
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KPSA, "a@b.c", 5, &out), SAEF_KS_ENOTFOUND);
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

static int collect(SAEF_KS_TYPE type, const char *id, size_t id_len, const saef_ks_record *rec,
                   void *arg)
{
    char *buf = arg;

    (void)rec;
    snprintf(buf + strlen(buf), 256 - strlen(buf), "%s:%.*s,", saef_ks_type_name(type),
             (int)id_len, id);
    return 0;
}

static void test_iteration_order_filter_and_count(void)
{
    saef_ks *ks = fresh();
    saef_ks_record r = rec_with("01", "");
    char seen[256] = "";
    size_t n;

    saef_ks_put(ks, SAEF_KS_KC, "k@m.n", 5, &r, 0);
    saef_ks_put(ks, SAEF_KS_KPSA, "b@b.c", 5, &r, 0);
    saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &r, 0);
    saef_ks_put(ks, SAEF_KS_KM, "m@m.n", 5, &r, 0);
    CU_ASSERT_EQUAL(saef_ks_iter(ks, 0, collect, seen), SAEF_KS_OK);
    CU_ASSERT_STRING_EQUAL(seen, "kpsa:a@b.c,kpsa:b@b.c,km:m@m.n,kc:k@m.n,");
    seen[0] = '\0';
    CU_ASSERT_EQUAL(saef_ks_iter(ks, SAEF_KS_KPSA, collect, seen), SAEF_KS_OK);
    CU_ASSERT_STRING_EQUAL(seen, "kpsa:a@b.c,kpsa:b@b.c,");
    CU_ASSERT_EQUAL(saef_ks_count(ks, 0, &n), SAEF_KS_OK);
    CU_ASSERT_EQUAL(n, 4);
    CU_ASSERT_EQUAL(saef_ks_count(ks, SAEF_KS_KM, &n), SAEF_KS_OK);
    CU_ASSERT_EQUAL(n, 1);
    saef_ks_close(ks);
}

static void test_batch_abort_keeps_nothing_commit_keeps_all(void)
{
    saef_ks *ks = fresh();
    saef_ks_record r = rec_with("01", "");
    size_t n;

    CU_ASSERT_EQUAL(saef_ks_write_begin(ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_write_begin(ks), SAEF_KS_EINVAL);
    saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &r, 0);
    saef_ks_put(ks, SAEF_KS_KPSA, "b@b.c", 5, &r, 0);
    saef_ks_write_abort(ks);
    CU_ASSERT_EQUAL(saef_ks_count(ks, 0, &n), SAEF_KS_OK);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_EQUAL(saef_ks_write_begin(ks), SAEF_KS_OK);
    saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &r, 0);
    saef_ks_put(ks, SAEF_KS_KPSA, "b@b.c", 5, &r, 0);
    CU_ASSERT_EQUAL(saef_ks_write_commit(ks), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_count(ks, 0, &n), SAEF_KS_OK);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(saef_ks_write_commit(ks), SAEF_KS_EINVAL);
    saef_ks_close(ks);
}

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
    saef_ks_close(rd);
    saef_ks_close(w);
}

static void test_fork_child_reopens_and_parent_keeps_working(void)
{
    saef_ks *ks = fresh();
    saef_ks_record r = rec_with("01", ""), out;
    int status;
    pid_t pid;

    CU_ASSERT_EQUAL(saef_ks_put(ks, SAEF_KS_KPSA, "a@b.c", 5, &r, 0), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KPSA, "a@b.c", 5, &out), SAEF_KS_OK);
    pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        int ok = saef_ks_get(ks, SAEF_KS_KPSA, "a@b.c", 5, &out) == SAEF_KS_OK &&
                 saef_ks_put(ks, SAEF_KS_KPSA, "child@b.c", 9, &r, 0) == SAEF_KS_OK;
        /* Like a worker process: it exits without closing. */
        _exit(ok ? 0 : 1);
    }
    CU_ASSERT_EQUAL(waitpid(pid, &status, 0), pid);
    CU_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KPSA, "child@b.c", 9, &out), SAEF_KS_OK);
    CU_ASSERT_EQUAL(saef_ks_get(ks, SAEF_KS_KPSA, "a@b.c", 5, &out), SAEF_KS_OK);
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
    saef_ks_close(ks);
}

static void test_record_wipe_clears_key(void)
{
    saef_ks_record r = rec_with("DEADBEEF", "/sp/x");
    saef_ks_record zero = {0};

    saef_ks_record_wipe(&r);
    CU_ASSERT(memcmp(&r, &zero, sizeof(r)) == 0);
}

static void test_identity_syntax(void)
{
    static const char *good[] = {"a@b.c", "dev-1_x.y@sp.example.com", "A@localhost"};
    static const char *bad[] = {"a",     "@b.c",   "a@",     "a b@c.d", "a@b..c",
                                "a@-b.c", "a@b@c.d", "a@b.c-", "a@b_c.d", ""};
    char longid[140];

    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
        CU_ASSERT(saef_id_is_conforming(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        CU_ASSERT(!saef_id_is_conforming(bad[i], strlen(bad[i])));
    memset(longid, 'a', sizeof(longid));
    memcpy(longid + 120, "@b.c", 4);
    CU_ASSERT(saef_id_is_conforming(longid, 124));
    memcpy(longid + 125, "@b.c", 4);
    CU_ASSERT(!saef_id_is_conforming(longid, 129));
}

static void test_maf_identity_parsing(void)
{
    const char *ok = "000102030405060708090A0B0C0D0E0f@maf.example.com", *fqdn;
    unsigned char kcid[16];

    CU_ASSERT(saef_id_parse_maf(ok, strlen(ok), &fqdn, kcid));
    CU_ASSERT_STRING_EQUAL(fqdn, "maf.example.com");
    CU_ASSERT_EQUAL(kcid[0], 0x00);
    CU_ASSERT_EQUAL(kcid[15], 0x0f);
    CU_ASSERT(!saef_id_parse_maf("000102030405060708090A0B0C0D0E0@maf.example.com", 47, NULL, NULL));
    CU_ASSERT(!saef_id_parse_maf("000102030405060708090A0B0C0D0E0FF@maf.example.com", 49, NULL, NULL));
    CU_ASSERT(!saef_id_parse_maf("G00102030405060708090A0B0C0D0E0F@maf.example.com", 48, NULL, NULL));
    CU_ASSERT(!saef_id_parse_maf("000102030405060708090A0B0C0D0E0F@", 33, NULL, NULL));
    CU_ASSERT(!saef_id_parse_maf("dev1@sp.example.com", 19, NULL, NULL));
}

static void test_time_parsing(void)
{
    int64_t t, now = 1700000000;

    CU_ASSERT(saef_time_parse("2026-11-24T12:00:00Z", now, &t) && t == 1795521600);
    CU_ASSERT(saef_time_parse("2026-11-24T14:00:00+02:00", now, &t) && t == 1795521600);
    CU_ASSERT(saef_time_parse("2026-11-24T12:00:00.250z", now, &t) && t == 1795521600);
    CU_ASSERT(saef_time_parse("20261124T120000", now, &t) && t == 1795521600);
    CU_ASSERT(saef_time_parse("20261124T120000,5", now, &t) && t == 1795521600);
    CU_ASSERT(saef_time_parse("+30s", now, &t) && t == now + 30);
    CU_ASSERT(saef_time_parse("+1h", now, &t) && t == now + 3600);
    CU_ASSERT(saef_time_parse("+30d", now, &t) && t == now + 30 * 86400);
    CU_ASSERT(saef_time_parse("+2w", now, &t) && t == now + 14 * 86400);
    CU_ASSERT(saef_time_parse("20280229T000000", now, &t));
    static const char *bad[] = {"20261324T120000", "20260230T000000", "20270229T000000",
                                "20261124T240000", "2026-11-24T12:00:00",
                                "2026-11-24T12:00:00Zjunk", "", "+0h", "+5x", "+", "+1",
                                "+99999999999999999d", "tomorrow", "2026-11-24 12:00:00Z",
                                "2026-11-24T12:00:00+25:00", "20261124T120000,"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        CU_ASSERT(!saef_time_parse(bad[i], now, &t));
}

static void test_time_format_round_trip(void)
{
    char buf[32];
    int64_t t;

    saef_time_format(1795521600, buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "2026-11-24T12:00:00Z");
    CU_ASSERT(saef_time_parse(buf, 0, &t) && t == 1795521600);
    saef_time_format_onem2m(1795521600, buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "20261124T120000");
    CU_ASSERT(saef_time_parse(buf, 0, &t) && t == 1795521600);
}

static void test_hex(void)
{
    unsigned char out[4];
    char hex[9];

    CU_ASSERT_EQUAL(saef_hex_decode("00aAfF10", 8, out, sizeof(out)), 4);
    CU_ASSERT(out[1] == 0xAA && out[2] == 0xFF);
    saef_hex_encode(out, 4, hex);
    CU_ASSERT_STRING_EQUAL(hex, "00AAFF10");
    CU_ASSERT_EQUAL(saef_hex_decode("123", 3, out, sizeof(out)), -1);
    CU_ASSERT_EQUAL(saef_hex_decode("zz", 2, out, sizeof(out)), -1);
    CU_ASSERT_EQUAL(saef_hex_decode("0011223344", 10, out, sizeof(out)), -1);
}

static void test_conf_validates_and_names_the_key(void)
{
    saef_conf c;
    char err[512], url[128];

    saef_conf_init(&c);
    CU_ASSERT_STRING_EQUAL(saef_conf_str(&c, SAEF_CONF_STORE), "/var/lib/saef/keys.db");
    CU_ASSERT_EQUAL(saef_conf_int(&c, SAEF_CONF_TLS13), 1);
    CU_ASSERT_EQUAL(saef_conf_int(&c, SAEF_CONF_MAF_TIMEOUT), 2000);
    CU_ASSERT(saef_conf_set(&c, "require_psk", "TRUE", err, sizeof(err)));
    CU_ASSERT_STRING_EQUAL(saef_conf_str(&c, SAEF_CONF_REQUIRE_PSK), "yes");
    CU_ASSERT(saef_conf_set(&c, "role", "both", err, sizeof(err)));
    CU_ASSERT_EQUAL(saef_conf_int(&c, SAEF_CONF_ROLE), SAEF_ROLE_BOTH);
    CU_ASSERT(!saef_conf_set(&c, "role", "king", err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "'role'"));
    CU_ASSERT_EQUAL(saef_conf_int(&c, SAEF_CONF_ROLE), SAEF_ROLE_BOTH);
    CU_ASSERT(!saef_conf_set(&c, "maf_timeout", "60001", err, sizeof(err)));
    CU_ASSERT(!saef_conf_set(&c, "nonsense", "1", err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown key"));
    CU_ASSERT(saef_conf_set(&c, "maf", "maf.example.com https://127.0.0.1:1, m2.example.com https://10.0.0.1:2",
                            err, sizeof(err)));
    CU_ASSERT(saef_conf_maf_url(&c, "MAF.example.com", 15, url, sizeof(url)));
    CU_ASSERT_STRING_EQUAL(url, "https://127.0.0.1:1");
    CU_ASSERT(saef_conf_maf_url(&c, "m2.example.com", 14, url, sizeof(url)));
    CU_ASSERT_STRING_EQUAL(url, "https://10.0.0.1:2");
    CU_ASSERT(!saef_conf_maf_url(&c, "maf.example", 11, url, sizeof(url)));
    CU_ASSERT(!saef_conf_set(&c, "maf", "maf.example.com http://x", err, sizeof(err)));
    CU_ASSERT(saef_conf_set(&c, "sni", "a.example.com, b.example.com", err, sizeof(err)));
    CU_ASSERT_STRING_EQUAL(saef_conf_str(&c, SAEF_CONF_SNI), "a.example.com,b.example.com");
}

int main(void)
{
    static const struct {
        const char *name;
        CU_TestFunc fn;
    } tests[] = {
#define T(f) {#f, f}
        T(test_round_trip_keeps_every_field),
        T(test_created_defaults_to_now),
        T(test_missing_store_is_enostore),
        T(test_created_owner_only),
        T(test_unsafe_permissions_refused),
        T(test_corrupt_empty_and_truncated_files_refused),
        T(test_identity_and_key_limits),
        T(test_duplicate_replace_and_delete),
        T(test_expired_record_is_returned_with_its_expiry),
        T(test_iteration_order_filter_and_count),
        T(test_batch_abort_keeps_nothing_commit_keeps_all),
        T(test_reader_sees_committed_write_without_reopen),
        T(test_fork_child_reopens_and_parent_keeps_working),
        T(test_errors_never_contain_key_bytes),
        T(test_record_wipe_clears_key),
        T(test_identity_syntax),
        T(test_maf_identity_parsing),
        T(test_time_parsing),
        T(test_time_format_round_trip),
        T(test_hex),
        T(test_conf_validates_and_names_the_key),
    };
    CU_pSuite suite;
    unsigned failed;
    char cmd[64];

    if (mkdtemp(dir) == NULL || CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    suite = CU_add_suite("keystore", NULL, NULL);
    for (size_t i = 0; i < sizeof(tests) / sizeof(*tests); i++)
        CU_add_test(suite, tests[i].name, tests[i].fn);
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failed = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    CU_cleanup_registry();
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 2;
    return failed != 0;
}
