/* Configuration values from openssl.cnf: every key of the table, strict
   validation, normalised values, the MAF list. */
#include "fuzz-util.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Input: a key index byte (past the table: the name is the text up to '='), the value. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    saef_conf *conf, *again, *fresh;
    char err[512], url[SAEF_CONF_VALUE_MAX], *text, *value, *eq;
    const char *name;
    int k;

    if (size == 0)
        return 0;
    text = fuzz_strndup(data + 1, size - 1);
    k = data[0] % (SAEF_CONF_NKEYS + 1);
    name = saef_conf_name((SAEF_CONF_KEY)k);
    value = text;
    if (name == NULL) {
        if ((eq = strchr(text, '=')) == NULL) {
            free(text);
            return 0;
        }
        *eq = '\0';
        name = text;
        value = eq + 1;
    }
    FUZZ_CHECK((conf = saef_conf_new()) != NULL && (fresh = saef_conf_new()) != NULL);
    err[0] = '\0';
    if (!saef_conf_set(conf, name, value, err, sizeof(err))) {
        FUZZ_CHECK(err[0] != '\0' && memchr(err, '\0', sizeof(err)) != NULL);
        /* A refused value changed nothing. */
        for (k = 0; k < SAEF_CONF_NKEYS; k++)
            FUZZ_CHECK(strcmp(saef_conf_str(conf, k), saef_conf_str(fresh, k)) == 0);
        saef_conf_free(conf);
        saef_conf_free(fresh);
        free(text);
        return 0;
    }
    saef_conf_free(fresh);
    for (k = 0; k < SAEF_CONF_NKEYS; k++)
        if (strcmp(name, saef_conf_name((SAEF_CONF_KEY)k)) == 0)
            break;
    FUZZ_CHECK(k < SAEF_CONF_NKEYS);
    /* A normalised value is valid and normalises to itself. */
    FUZZ_CHECK((again = saef_conf_new()) != NULL);
    FUZZ_CHECK(saef_conf_set(again, name, saef_conf_str(conf, k), err, sizeof(err)));
    FUZZ_CHECK(strcmp(saef_conf_str(again, k), saef_conf_str(conf, k)) == 0);
    FUZZ_CHECK(saef_conf_int(again, k) == saef_conf_int(conf, k));
    if (k == SAEF_CONF_MAF) {
        /* Every listed MAF has its URL; a lookup of any name stays in bounds. */
        const char *p = saef_conf_str(conf, k);
        while (*p) {
            size_t flen = strcspn(p, " ");
            FUZZ_CHECK(saef_conf_maf_url(conf, p, flen, url, sizeof(url)));
            FUZZ_CHECK(strncmp(url, "https://", 8) == 0 || strncmp(url, "coaps://", 8) == 0);
            p += strcspn(p, ",");
            p += *p == ',';
        }
        saef_conf_maf_url(conf, value, strlen(value), url, 8);
    }
    saef_conf_free(again);
    saef_conf_free(conf);
    free(text);
    return 0;
}
