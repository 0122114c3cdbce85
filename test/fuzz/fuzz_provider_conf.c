/* The provider's section of openssl.cnf: fuzzed lines after "activate = 1"
   are loaded into a fresh library context with saef built in; what saef
   accepts comes back through its parameters, normalised. */
#include "fuzz-util.h"

#include <openssl/core.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <stdio.h>
#include <string.h>

OSSL_provider_init_fn OSSL_provider_init;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *cnf = fuzz_path("openssl.cnf");
    saef_conf *conf, *again;
    OSSL_LIB_CTX *lib;
    char err[512];
    FILE *f;

    /* Only lines of saef's section: no other sections, no .include of files. */
    for (size_t i = 0; i < size; i++)
        if (data[i] == '[' || (data[i] == '.' && (i == 0 || data[i - 1] == '\n')))
            return 0;
    FUZZ_CHECK((f = fopen(cnf, "w")) != NULL);
    fprintf(f, "openssl_conf = init\n[init]\nproviders = provs\n[provs]\nsaef = saef_sect\n"
               "[saef_sect]\nactivate = 1\n");
    fwrite(data, 1, size, f);
    fclose(f);
    FUZZ_CHECK((lib = OSSL_LIB_CTX_new()) != NULL);
    FUZZ_CHECK(OSSL_PROVIDER_add_builtin(lib, "saef", OSSL_provider_init));
    if (OSSL_LIB_CTX_load_config(lib, cnf) && OSSL_PROVIDER_available(lib, "saef")) {
        /* Loaded: the parameters give back normalised values, valid as they are. */
        FUZZ_CHECK((conf = saef_conf_new()) != NULL);
        FUZZ_CHECK(saef_conf_from_provider(lib, conf) == 1);
        for (int k = 0; k < SAEF_CONF_NKEYS; k++) {
            const char *v = saef_conf_str(conf, k);
            FUZZ_CHECK((again = saef_conf_new()) != NULL);
            FUZZ_CHECK(v[0] == '\0' ||
                       (saef_conf_set(again, saef_conf_name(k), v, err, sizeof(err)) &&
                        strcmp(saef_conf_str(again, k), v) == 0));
            saef_conf_free(again);
        }
        saef_conf_free(conf);
    }
    OSSL_LIB_CTX_free(lib);
    ERR_clear_error();
    return 0;
}
