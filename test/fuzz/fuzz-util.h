/* Shared by the fuzz targets: a private store with known records, input copies. */
#ifndef SAEF_FUZZ_UTIL_H
#define SAEF_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include "saef_common.h"
#include "saef_conf.h"

/* The records every store-backed target starts from. */
typedef struct {
    SAEF_KS_TYPE type;
    const char *id, *key_hex, *peer, *self;
    int expired;
} fuzz_record;

extern const fuzz_record fuzz_records[];
extern const size_t fuzz_nrecords;

#define FUZZ_ENTITY_ID "//sp.example.com/in-cse"
#define FUZZ_MAF_FQDN "maf.example.com"
/* Nothing listens there: a retrieval that got this far fails at once. */
#define FUZZ_MAF_URL "https://127.0.0.1:9"

/* Aborts with a message: a broken invariant is a finding. */
#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__FILE__, __LINE__, #cond);                                                  \
    } while (0)
void fuzz_fail(const char *file, int line, const char *what) __attribute__((noreturn));

/* A private directory (on tmpfs when there is one), removed at exit. */
const char *fuzz_dir(void);
/* fuzz_dir()/name. */
const char *fuzz_path(const char *name);
/* A store at fuzz_dir()/keys.db holding fuzz_records; its path. */
const char *fuzz_store_create(void);
/* Writes the records again (after a target changed them). */
void fuzz_store_reset(saef_ks *ks);
/* The record's stored form. */
void fuzz_record_fill(const fuzz_record *r, saef_ks_record *rec);
/* A configuration for a server on that store (entity_id, the MAF, sni); free it. */
saef_conf *fuzz_server_conf(const char *store);
/* A NUL-terminated copy (free it). */
char *fuzz_strndup(const uint8_t *data, size_t size);

#endif
