/* Helpers of the fuzz targets. */
#define _GNU_SOURCE /* nftw flags */
#include "fuzz-util.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

const fuzz_record fuzz_records[] = {
    {SAEF_KS_KPSA, "dev1@sp.example.com", "00112233445566778899aabbccddeeff",
     "//sp.example.com/C-dev1", "", 0},
    {SAEF_KS_KPSA, "dev2@sp.example.com", "0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c", "", "", 0},
    {SAEF_KS_KPSA, "old@sp.example.com", "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf", "", "", 1},
    {SAEF_KS_KPSA, "elsewhere@sp.example.com", "b0b1b2b3b4b5b6b7b8b9babbbcbdbebf", "",
     "//sp.example.com/other-cse", 0},
    {SAEF_KS_KPSA, "sni@sp.example.com", "c0c1c2c3c4c5c6c7c8c9cacbcccdcecf", "", "cse.example.com",
     0},
    {SAEF_KS_KM, "client-a@maf.example.com", "d0d1d2d3d4d5d6d7d8d9dadbdcdddedf",
     "//sp.example.com/C-a", "", 0},
    {SAEF_KS_KC, "00112233445566778899AABBCCDDEEFF@maf.example.com",
     "e0e1e2e3e4e5e6e7e8e9eaebecedeeefe0e1e2e3e4e5e6e7e8e9eaebecedeeef", "//sp.example.com/C-a", "",
     0},
};
const size_t fuzz_nrecords = sizeof(fuzz_records) / sizeof(fuzz_records[0]);

static char dir[256], path[512];

void fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: invariant broken: %s\n", file, line, what);
    abort();
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(p);
}

static void rm_dir(void)
{
    nftw(dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_dir(void)
{
    const char *base = getenv("TMPDIR");
    struct stat st;

    if (dir[0] != '\0')
        return dir;
    if (stat("/dev/shm", &st) == 0 && S_ISDIR(st.st_mode) && access("/dev/shm", W_OK) == 0)
        base = "/dev/shm";
    snprintf(dir, sizeof(dir), "%s/saef-fuzz.XXXXXX", base != NULL ? base : "/tmp");
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        abort();
    }
    atexit(rm_dir);
    return dir;
}

const char *fuzz_path(const char *name)
{
    snprintf(path, sizeof(path), "%s/%s", fuzz_dir(), name);
    return path;
}

void fuzz_record_fill(const fuzz_record *r, saef_ks_record *rec)
{
    memset(rec, 0, sizeof(*rec));
    rec->key_len =
        (size_t)saef_hex_decode(r->key_hex, strlen(r->key_hex), rec->key, sizeof(rec->key));
    snprintf(rec->peer, sizeof(rec->peer), "%s", r->peer);
    snprintf(rec->self, sizeof(rec->self), "%s", r->self);
    rec->not_after = r->expired ? 86400 : INT64_C(4102444800); /* 2100-01-01 */
    rec->created = (int64_t)time(NULL); /* a fresh copy: not revalidated at the MAF */
    rec->suid = r->type == SAEF_KS_KC ? 32 : 0;
}

void fuzz_store_reset(saef_ks *ks)
{
    saef_ks_record rec;

    for (size_t i = 0; i < fuzz_nrecords; i++) {
        fuzz_record_fill(&fuzz_records[i], &rec);
        FUZZ_CHECK(saef_ks_put(ks, fuzz_records[i].type, fuzz_records[i].id,
                               strlen(fuzz_records[i].id), &rec, SAEF_KS_REPLACE) == SAEF_KS_OK);
    }
}

const char *fuzz_store_create(void)
{
    static char store[512];
    saef_ks *ks;

    snprintf(store, sizeof(store), "%s", fuzz_path("keys.db"));
    FUZZ_CHECK(saef_ks_open(store, SAEF_KS_CREATE, &ks) == SAEF_KS_OK);
    fuzz_store_reset(ks);
    saef_ks_close(ks);
    return store;
}

saef_conf *fuzz_server_conf(const char *store)
{
    static const char *const set[][2] = {
        {"entity_id", FUZZ_ENTITY_ID},
        {"sni", "cse.example.com, other.example.com"},
        {"maf", FUZZ_MAF_FQDN " " FUZZ_MAF_URL},
        {"maf_kmid", "b-at-maf@" FUZZ_MAF_FQDN},
        {"maf_timeout", "50"},
        /* The kc record is a cached copy the targets trust (no MAF to ask). */
        {"maf_revalidate", "86400"},
        {"log_level", "debug"},
    };
    char err[256];
    saef_conf *conf = saef_conf_new();

    FUZZ_CHECK(conf != NULL);
    FUZZ_CHECK(saef_conf_set(conf, "store", store, err, sizeof(err)));
    for (size_t i = 0; i < sizeof(set) / sizeof(set[0]); i++)
        FUZZ_CHECK(saef_conf_set(conf, set[i][0], set[i][1], err, sizeof(err)));
    return conf;
}

char *fuzz_strndup(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);

    FUZZ_CHECK(s != NULL);
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}
