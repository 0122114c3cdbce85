/*
 * Keystore lookup latency at 10, 10,000 and 1,000,000 keys.
 *
 * For each size: build a store in one batch (identities "dev-000123@sp.example.com"
 * inserted in random order, random 32-byte keys), open it read-only as a
 * server would, then time each saef_ks_get with clock_gettime: a first pass
 * over fresh mappings (cold: page faults), then LOOKUPS random hits and
 * LOOKUPS/4 misses on a warm store. Prints a table, then CSV.
 *
 * Usage: saef-bench-lookup [DIR [LOOKUPS [MAX_KEYS]]]   (defaults /tmp 200000 1000000)
 */
#include "saef_keystore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct result {
    long keys;
    double import_s, file_mb, open_us;
    double cold_p99, p50, p99, p999, max, miss_p50, miss_p99;
};

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* xorshift64*: a fixed sequence, so runs compare. */
static uint64_t rnd(void)
{
    static uint64_t s = 0x9E3779B97F4A7C15u;

    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return s * 0x2545F4914F6CDD1Du;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double pct(const double *sorted, long n, double p)
{
    return sorted[(long)(p * (double)(n - 1))];
}

/* Misses use another domain: they fall between stored identities. */
static int id_of(char *buf, const char *domain, long i)
{
    return snprintf(buf, 64, "dev-%06ld@%s", i, domain);
}

/* Times `n` lookups of random ids in `domain` below `range` into lat (sorted). */
static int time_lookups(saef_ks *ks, const char *domain, long range, long n, double *lat,
                        SAEF_KS_ERR want)
{
    saef_ks_record out;
    char id[64];

    for (long i = 0; i < n; i++) {
        int len = id_of(id, domain, (long)(rnd() % (uint64_t)range));
        double a = now_ns();
        SAEF_KS_ERR err = saef_ks_get(ks, SAEF_KS_KPSA, id, (size_t)len, &out);
        lat[i] = now_ns() - a;
        if (err != want) {
            fprintf(stderr, "saef-bench-lookup: %s: %s\n", id, saef_ks_last_error(ks));
            return 0;
        }
    }
    saef_ks_record_wipe(&out);
    qsort(lat, (size_t)n, sizeof(double), cmp);
    return 1;
}

static int build(const char *path, long n, struct result *r)
{
    saef_ks_record rec = {0};
    uint32_t *order = malloc(sizeof(uint32_t) * (size_t)n);
    struct stat st;
    saef_ks *ks;
    char id[64];
    double t0;

    if (order == NULL)
        return 0;
    for (long i = 0; i < n; i++)
        order[i] = (uint32_t)i;
    for (long i = n - 1; i > 0; i--) {
        long j = (long)(rnd() % (uint64_t)(i + 1));
        uint32_t t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    if (saef_ks_open(path, SAEF_KS_CREATE, &ks) != SAEF_KS_OK) {
        fprintf(stderr, "saef-bench-lookup: %s\n", saef_ks_last_error(NULL));
        free(order);
        return 0;
    }
    rec.key_len = 32;
    t0 = now_ns();
    int ok = saef_ks_write_begin(ks) == SAEF_KS_OK;
    for (long i = 0; ok && i < n; i++) {
        for (int b = 0; b < 32; b += 8) {
            uint64_t v = rnd();
            memcpy(rec.key + b, &v, 8);
        }
        int len = id_of(id, "sp.example.com", order[i]);
        ok = saef_ks_put(ks, SAEF_KS_KPSA, id, (size_t)len, &rec, 0) == SAEF_KS_OK;
    }
    ok = ok && saef_ks_write_commit(ks) == SAEF_KS_OK;
    r->import_s = (now_ns() - t0) / 1e9;
    if (!ok)
        fprintf(stderr, "saef-bench-lookup: %s\n", saef_ks_last_error(ks));
    saef_ks_close(ks);
    saef_ks_record_wipe(&rec);
    free(order);
    r->file_mb = stat(path, &st) == 0 ? (double)st.st_size / (1 << 20) : 0;
    return ok;
}

static int run(const char *dir, long n, long lookups, double *lat, struct result *r)
{
    char path[512], lock[520];
    saef_ks *ks = NULL;
    double t0, opens[5];
    int ok;

    snprintf(path, sizeof(path), "%s/saef-bench-%ld.db", dir, n);
    snprintf(lock, sizeof(lock), "%s-lock", path);
    unlink(path);
    unlink(lock);
    r->keys = n;
    if (!build(path, n, r))
        return 0;
    /* What a server pays at start: the median of 5 opens. */
    for (int i = 0; i < 5; i++) {
        if (i > 0)
            saef_ks_close(ks);
        t0 = now_ns();
        if (saef_ks_open(path, SAEF_KS_RDONLY, &ks) != SAEF_KS_OK) {
            fprintf(stderr, "saef-bench-lookup: %s\n", saef_ks_last_error(NULL));
            return 0;
        }
        opens[i] = (now_ns() - t0) / 1e3;
    }
    qsort(opens, 5, sizeof(double), cmp);
    r->open_us = opens[2];
    ok = time_lookups(ks, "sp.example.com", n, lookups, lat, SAEF_KS_OK);
    if (ok) {
        r->cold_p99 = pct(lat, lookups, 0.99);
        ok = time_lookups(ks, "sp.example.com", n, lookups, lat, SAEF_KS_OK);
    }
    if (ok) {
        r->p50 = pct(lat, lookups, 0.50);
        r->p99 = pct(lat, lookups, 0.99);
        r->p999 = pct(lat, lookups, 0.999);
        r->max = lat[lookups - 1];
        ok = time_lookups(ks, "sp.example.org", n, lookups / 4, lat, SAEF_KS_ENOTFOUND);
    }
    if (ok) {
        r->miss_p50 = pct(lat, lookups / 4, 0.50);
        r->miss_p99 = pct(lat, lookups / 4, 0.99);
    }
    saef_ks_close(ks);
    unlink(path);
    unlink(lock);
    return ok;
}

int main(int argc, char **argv)
{
    static const long sizes[] = {10, 10000, 1000000};
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    long lookups = argc > 2 ? atol(argv[2]) : 200000;
    long max_keys = argc > 3 ? atol(argv[3]) : 1000000;
    struct result res[3];
    int nres = 0;
    double *lat, timer[1001];

    if (argc > 4 || lookups < 100 || max_keys < 10) {
        fprintf(stderr, "usage: saef-bench-lookup [DIR [LOOKUPS>=100 [MAX_KEYS>=10]]]\n");
        return 2;
    }
    if ((lat = malloc(sizeof(double) * (size_t)lookups)) == NULL)
        return 1;
    /* What timing itself costs: it is inside every figure below. */
    for (int i = 0; i < 1001; i++) {
        double a = now_ns();
        timer[i] = now_ns() - a;
    }
    qsort(timer, 1001, sizeof(double), cmp);
    for (size_t s = 0; s < sizeof(sizes) / sizeof(*sizes) && sizes[s] <= max_keys; s++) {
        if (!run(dir, sizes[s], lookups, lat, &res[nres]))
            return 1;
        nres++;
    }
    free(lat);

    printf("saef_ks_get latency, %ld random hits per size after a cold pass, %ld misses;\n"
           "store in %s; clock_gettime pair costs %.0f ns (included)\n\n",
           lookups, lookups / 4, dir, timer[500]);
    printf("%9s %9s %8s %8s | %8s | %7s %7s %7s %8s | %8s %8s\n", "keys", "import s", "file MB",
           "open us", "cold p99", "p50 ns", "p99 ns", "p99.9", "max ns", "miss p50", "miss p99");
    for (int i = 0; i < nres; i++)
        printf("%9ld %9.2f %8.2f %8.0f | %8.0f | %7.0f %7.0f %7.0f %8.0f | %8.0f %8.0f\n",
               res[i].keys, res[i].import_s, res[i].file_mb, res[i].open_us, res[i].cold_p99,
               res[i].p50, res[i].p99, res[i].p999, res[i].max, res[i].miss_p50, res[i].miss_p99);
    printf("\nkeys,import_s,file_mb,open_us,cold_p99_ns,p50_ns,p99_ns,p999_ns,max_ns,"
           "miss_p50_ns,miss_p99_ns\n");
    for (int i = 0; i < nres; i++)
        printf("%ld,%.3f,%.2f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f,%.0f\n", res[i].keys,
               res[i].import_s, res[i].file_mb, res[i].open_us, res[i].cold_p99, res[i].p50,
               res[i].p99, res[i].p999, res[i].max, res[i].miss_p50, res[i].miss_p99);
    return 0;
}
