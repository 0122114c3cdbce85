/* saef-key import: psk files ("identity:hexkey" lines) into a store batch. */
#include "fuzz-util.h"
#include "psk-file.h"

#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

static saef_ks *ks;

typedef struct {
    SAEF_KS_TYPE type;
    int any;
} mode;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    FUZZ_CHECK(saef_ks_open(fuzz_path("import.db"), SAEF_KS_CREATE, &ks) == SAEF_KS_OK);
    return 0;
}

typedef struct {
    const char *id;
    const saef_ks_record *rec;
} expect;

static int same_key(const char *id, const saef_ks_record *rec, long lineno, void *arg)
{
    const expect *e = arg;

    (void)lineno;
    FUZZ_CHECK(strcmp(id, e->id) == 0);
    FUZZ_CHECK(rec->key_len == e->rec->key_len && memcmp(rec->key, e->rec->key, rec->key_len) == 0);
    return 0;
}

static int put(const char *id, const saef_ks_record *rec, long lineno, void *arg)
{
    const mode *m = arg;
    size_t len = strlen(id), n;
    char line[SAEF_KS_ID_MAX + 2 * SAEF_KS_KEY_MAX + 3];
    expect e = {id, rec};
    FILE *f;

    FUZZ_CHECK(lineno > 0 && len > 0 && len <= SAEF_KS_ID_MAX);
    for (size_t i = 0; i < len; i++)
        FUZZ_CHECK((unsigned char)id[i] >= 0x20 && id[i] != 0x7f);
    FUZZ_CHECK(rec->key_len > 0 && rec->key_len <= SAEF_KS_KEY_MAX);
    if (!m->any)
        FUZZ_CHECK(m->type == SAEF_KS_KC ? saef_id_parse_maf(id, len, NULL, NULL)
                                         : saef_id_is_conforming(id, len));
    /* The line saef-key export writes for it reads back as the same key. */
    n = (size_t)snprintf(line, sizeof(line), "%s:", id);
    saef_hex_encode(rec->key, rec->key_len, line + n);
    FUZZ_CHECK((f = fmemopen(line, strlen(line), "r")) != NULL);
    FUZZ_CHECK(saef_psk_read(f, "export", m->type, 1, rec, same_key, &e, &n) == 0 && n == 1);
    fclose(f);
    OPENSSL_cleanse(line, sizeof(line));
    return saef_ks_put(ks, m->type, id, len, rec, SAEF_KS_REPLACE) == SAEF_KS_OK ? 0 : 3;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const mode modes[] = {{SAEF_KS_KPSA, 0}, {SAEF_KS_KC, 0}, {SAEF_KS_KM, 1}};
    saef_ks_record base = {0};
    size_t count;
    FILE *f;

    if (size == 0)
        return 0;
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
        FUZZ_CHECK((f = fmemopen((void *)data, size, "r")) != NULL);
        /* All or nothing: the batch is dropped, as saef-key does on a bad line. */
        FUZZ_CHECK(saef_ks_write_begin(ks) == SAEF_KS_OK);
        int rc = saef_psk_read(f, "fuzz", modes[i].type, modes[i].any, &base, put,
                               (void *)&modes[i], &count);
        FUZZ_CHECK(rc == 0 || rc == 2);
        saef_ks_write_abort(ks);
        fclose(f);
    }
    return 0;
}
