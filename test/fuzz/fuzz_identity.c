/* Identities from the network and from files: TS-0003 syntax, KpsaID vs
   HEX32@MAF-FQDN, the server's classification, Absolute Entity IDs. */
#include "fuzz-util.h"
#include "mafd-registry.h"
#include "saef-internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static saef_conf *conf;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    conf = fuzz_server_conf("/nonexistent/keys.db");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The parsers get the exact bytes: ASan sees any read past them. */
    const char *id = (const char *)data, *fqdn = NULL;
    unsigned char kcid[16];
    char hex[33], *text;
    int conforming = saef_id_is_conforming(id, size);
    int maf = saef_id_parse_maf(id, size, &fqdn, kcid);
    SAEF_KS_TYPE type = saef_id_type(conf, id, size);

    if (conforming) {
        FUZZ_CHECK(size >= 3 && size <= SAEF_KS_ID_MAX);
        FUZZ_CHECK(memchr(id, '@', size) != NULL);
    }
    if (maf) {
        /* HEX32@fqdn is a TS-0003 identity too, and its KcID is the hex. */
        FUZZ_CHECK(conforming);
        FUZZ_CHECK(fqdn == id + 33);
        saef_hex_encode(kcid, 16, hex);
        FUZZ_CHECK(strncasecmp(hex, id, 32) == 0);
    }
    /* kc only for a configured MAF; everything else is looked up as kpsa. */
    FUZZ_CHECK(type == SAEF_KS_KPSA || type == SAEF_KS_KC);
    if (type == SAEF_KS_KC)
        FUZZ_CHECK(maf && size - 33 == strlen(FUZZ_MAF_FQDN) &&
                   strncasecmp(fqdn, FUZZ_MAF_FQDN, size - 33) == 0);

    text = fuzz_strndup(data, size);
    if (saef_mafd_absolute_id(text))
        FUZZ_CHECK(strncmp(text, "//", 2) == 0 && strlen(text) <= SAEF_KS_ENTITY_MAX);
    free(text);
    return 0;
}
