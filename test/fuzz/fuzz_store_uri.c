/* saef:// URIs through OSSL_STORE into the provider's loader, over a store
   with known keys. The provider is built in; its section names the store. */
#include "fuzz-util.h"

#include <openssl/core.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

OSSL_provider_init_fn OSSL_provider_init;

static OSSL_LIB_CTX *lib;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The key the URI resolves to, if any, must be one of the usable keys. */
static int load(const char *uri)
{
    unsigned char key[SAEF_KS_KEY_MAX];
    OSSL_STORE_CTX *c = OSSL_STORE_open_ex(uri, lib, NULL, NULL, NULL, NULL, NULL, NULL);
    int found = 0;

    while (c != NULL && !OSSL_STORE_eof(c)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(c);
        size_t len = sizeof(key);
        saef_ks_record rec;
        if (info == NULL)
            break;
        FUZZ_CHECK(OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY);
        FUZZ_CHECK(EVP_PKEY_get_raw_private_key(OSSL_STORE_INFO_get0_PKEY(info), key, &len));
        for (size_t i = 0; i < fuzz_nrecords && !found; i++) {
            fuzz_record_fill(&fuzz_records[i], &rec);
            found = !fuzz_records[i].expired && rec.key_len == len && !memcmp(rec.key, key, len);
            saef_ks_record_wipe(&rec);
        }
        FUZZ_CHECK(found);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(c);
    ERR_clear_error();
    return found;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *store = fuzz_store_create();
    const char *cnf = fuzz_path("openssl.cnf");
    char uri[256];
    FILE *f;

    (void)argc, (void)argv;
    FUZZ_CHECK((f = fopen(cnf, "w")) != NULL);
    fprintf(f,
            "openssl_conf = init\n[init]\nproviders = provs\n[provs]\ndefault = dflt\n"
            "saef = saef_sect\n[dflt]\nactivate = 1\n[saef_sect]\nactivate = 1\n"
            "store = %s\n",
            store);
    fclose(f);
    FUZZ_CHECK((lib = OSSL_LIB_CTX_new()) != NULL);
    FUZZ_CHECK(OSSL_PROVIDER_add_builtin(lib, "saef", OSSL_provider_init));
    FUZZ_CHECK(OSSL_LIB_CTX_load_config(lib, cnf));
    /* The harness works: every usable record loads, the expired one does not. */
    for (size_t i = 0; i < fuzz_nrecords; i++) {
        snprintf(uri, sizeof(uri), "saef://%s/%s", saef_ks_type_name(fuzz_records[i].type),
                 fuzz_records[i].id);
        FUZZ_CHECK(load(uri) == !fuzz_records[i].expired);
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Only saef: URIs; anything else would make OpenSSL open local files. */
    char *uri = malloc(size + 8);

    FUZZ_CHECK(uri != NULL);
    if (size >= 5 && memcmp(data, "saef:", 5) == 0)
        snprintf(uri, size + 8, "%.*s", (int)size, (const char *)data);
    else
        snprintf(uri, size + 8, "saef://%.*s", (int)size, (const char *)data);
    load(uri);
    free(uri);
    return 0;
}
