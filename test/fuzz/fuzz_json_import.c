/* saef-key import --format json: JSON lines into a store batch. */
#include "fuzz-util.h"
#include "json-file.h"
#include "psk-file.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

static saef_ks *ks;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    FUZZ_CHECK(saef_ks_open(fuzz_path("json.db"), SAEF_KS_CREATE, &ks) == SAEF_KS_OK);
    return 0;
}

typedef struct {
    SAEF_KS_TYPE type;
    const char *id;
    const saef_ks_record *rec;
} expect;

static int same(SAEF_KS_TYPE type, const char *id, const saef_ks_record *rec, long lineno,
                void *arg)
{
    const expect *e = arg;

    (void)lineno;
    FUZZ_CHECK(type == e->type && strcmp(id, e->id) == 0);
    FUZZ_CHECK(memcmp(rec, e->rec, sizeof(*rec)) == 0);
    return 0;
}

static int put(SAEF_KS_TYPE type, const char *id, const saef_ks_record *rec, long lineno, void *arg)
{
    int any = *(const int *)arg;
    size_t len = strlen(id), n;
    expect e = {type, id, rec};
    char *line = NULL;
    FILE *f;

    FUZZ_CHECK(lineno > 0);
    FUZZ_CHECK(type == SAEF_KS_KPSA || type == SAEF_KS_KM || type == SAEF_KS_KC);
    FUZZ_CHECK(saef_psk_id_problem(id, len, type, any) == NULL);
    FUZZ_CHECK(rec->key_len > 0 && rec->key_len <= SAEF_KS_KEY_MAX);
    FUZZ_CHECK(!rec->peer[0] || saef_entity_problem(rec->peer) == NULL);
    FUZZ_CHECK(!rec->self[0] || saef_entity_problem(rec->self) == NULL);
    FUZZ_CHECK(rec->suid >= 0 && rec->suid <= 99 && rec->not_after >= 0 && rec->created >= 0);
    /* What export writes for it reads back as the same record. */
    FUZZ_CHECK((f = open_memstream(&line, &n)) != NULL);
    FUZZ_CHECK(saef_json_write(f, type, id, len, rec) == 0);
    fclose(f);
    FUZZ_CHECK((f = fmemopen(line, n, "r")) != NULL);
    FUZZ_CHECK(saef_json_read(f, "export", 1, same, &e, &n) == 0 && n == 1);
    fclose(f);
    OPENSSL_cleanse(line, strlen(line));
    free(line);
    return saef_ks_put(ks, type, id, len, rec, SAEF_KS_REPLACE) == SAEF_KS_OK ? 0 : 3;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int modes[] = {0, 1};
    size_t count;
    FILE *f;

    if (size == 0)
        return 0;
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        FUZZ_CHECK((f = fmemopen((void *)data, size, "r")) != NULL);
        /* All or nothing: the batch is dropped, as saef-key does on a bad line. */
        FUZZ_CHECK(saef_ks_write_begin(ks) == SAEF_KS_OK);
        int rc = saef_json_read(f, "fuzz", modes[i], put, (void *)&modes[i], &count);
        FUZZ_CHECK(rc == 0 || rc == 2);
        saef_ks_write_abort(ks);
        fclose(f);
    }
    return 0;
}
