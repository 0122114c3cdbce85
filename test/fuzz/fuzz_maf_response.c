/* What a MAF answers: Entity B's Key Retrieval parsing (libsaef) and Entity
   A's checks on registration, update and error answers (saef-maf). */
#include "fuzz-util.h"
#include "maf-answer.h"
#include "saef-internal.h"

#include <stdlib.h>
#include <string.h>

#define NOW INT64_C(1795521600)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Bodies reach the parsers NUL-terminated, as the MAF client stores them. */
    char *body = fuzz_strndup(data, size), why[512], msg[64];
    const saef_maf_reg_request asked[] = {
        {"00112233445566778899AABBCCDDEEFF", "//sp.example.com/in-cse", "sp.example.com", ""},
        {"00112233445566778899AABBCCDDEEFF", "//sp.example.com/in-cse", "sp.example.com",
         "//sp.example.com/C-a"},
    };
    const char *reason = NULL;
    saef_ks_record rec = {0};
    int64_t t;

    if (saef_maf_parse_reply(body, NOW, &rec, &reason)) {
        FUZZ_CHECK(rec.key_len > 0 && rec.key_len <= SAEF_KS_KEY_MAX);
        FUZZ_CHECK(rec.not_after > NOW && rec.suid >= 0 && rec.suid <= 99);
        FUZZ_CHECK(rec.peer[0] != '\0' && strlen(rec.peer) <= SAEF_KS_ENTITY_MAX);
    } else {
        FUZZ_CHECK(reason != NULL);
    }
    saef_ks_record_wipe(&rec);
    for (size_t i = 0; i < sizeof(asked) / sizeof(asked[0]); i++) {
        why[0] = '\0';
        if (saef_maf_check_registration(body, &asked[i], NOW, &t, why, sizeof(why)))
            FUZZ_CHECK(t > NOW);
        else
            FUZZ_CHECK(why[0] != '\0');
    }
    if (saef_maf_answer_expiry(body, &t))
        FUZZ_CHECK(t >= 0);
    saef_maf_answer_error(body, msg, sizeof(msg));
    FUZZ_CHECK(msg[0] != '\0' || strstr(body, "error") != NULL);
    saef_maf_answer_error(NULL, msg, sizeof(msg));
    free(body);
    return 0;
}
