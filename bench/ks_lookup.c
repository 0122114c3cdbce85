/*
 * Keystore lookup latency at 10, 10,000 and 1,000,000 keys: p50/p99/p99.9 of
 * saef_ks_get over random identities, plus fill and open time.
 * Usage: saef-bench-lookup [DIR] [LOOKUPS]   (CSV line per size on stdout)
 */
#include "saef_keystore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    static const long sizes[] = {10, 10000, 1000000};
    const char *dir = argc > 1 ? argv[1] : "/tmp";
    long lookups = argc > 2 ? atol(argv[2]) : 200000;
    double *lat = malloc(sizeof(double) * (size_t)lookups);
    saef_ks_record rec = {0};
    char path[512], id[64];

    if (lat == NULL || lookups < 1)
        return 2;
    rec.key_len = 32;
    memset(rec.key, 0x5a, 32);
    printf("keys,fill_s,open_us,p50_ns,p99_ns,p999_ns\n");
    for (size_t s = 0; s < sizeof(sizes) / sizeof(*sizes); s++) {
        saef_ks *ks;
        double t0, fill, open_us;
        long n = sizes[s];

        snprintf(path, sizeof(path), "%s/saef-bench-%ld.db", dir, n);
        unlink(path);
        t0 = now_ns();
        if (saef_ks_open(path, SAEF_KS_CREATE, &ks) != SAEF_KS_OK ||
            saef_ks_write_begin(ks) != SAEF_KS_OK) {
            fprintf(stderr, "%s\n", saef_ks_last_error(NULL));
            return 1;
        }
        for (long i = 0; i < n; i++) {
            int len = snprintf(id, sizeof(id), "dev-%07ld@sp.example.com", i);
            if (saef_ks_put(ks, SAEF_KS_KPSA, id, (size_t)len, &rec, 0) != SAEF_KS_OK)
                return 1;
        }
        saef_ks_write_commit(ks);
        saef_ks_close(ks);
        fill = (now_ns() - t0) / 1e9;
        /* What a server pays at start: open read-only. */
        t0 = now_ns();
        if (saef_ks_open(path, SAEF_KS_RDONLY, &ks) != SAEF_KS_OK)
            return 1;
        open_us = (now_ns() - t0) / 1e3;
        srand(42);
        for (long i = 0; i < lookups; i++) {
            saef_ks_record out;
            int len = snprintf(id, sizeof(id), "dev-%07ld@sp.example.com", rand() % n);
            double a = now_ns();
            SAEF_KS_ERR err = saef_ks_get(ks, SAEF_KS_KPSA, id, (size_t)len, &out);
            lat[i] = now_ns() - a;
            if (err != SAEF_KS_OK)
                return 1;
        }
        saef_ks_close(ks);
        qsort(lat, (size_t)lookups, sizeof(double), cmp);
        printf("%ld,%.2f,%.0f,%.0f,%.0f,%.0f\n", n, fill, open_us, lat[lookups / 2],
               lat[lookups * 99 / 100], lat[lookups * 999 / 1000]);
        fflush(stdout);
        unlink(path);
        snprintf(path + strlen(path), sizeof(path) - strlen(path), "-lock");
        unlink(path);
    }
    free(lat);
    return 0;
}
