/* Keystore records as read back from a store that may be corrupt. */
#include "fuzz-util.h"
#include "ks-record.h"

#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same_record(const saef_ks_record *a, const saef_ks_record *b)
{
    FUZZ_CHECK(a->key_len == b->key_len && memcmp(a->key, b->key, a->key_len) == 0);
    FUZZ_CHECK(strcmp(a->peer, b->peer) == 0 && strcmp(a->self, b->self) == 0);
    FUZZ_CHECK(strcmp(a->meta, b->meta) == 0);
    FUZZ_CHECK(a->not_after == b->not_after && a->created == b->created && a->suid == b->suid);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char buf[REC_MAX];
    saef_ks_record r, again;
    size_t peer, self, meta, n;

    /* A malformed record is refused before anything is written to r. */
    memset(&r, 0x5a, sizeof(r));
    if (!saef_ks_rec_decode(data, size, &r)) {
        for (size_t i = 0; i < sizeof(r); i++)
            FUZZ_CHECK(((unsigned char *)&r)[i] == 0x5a);
        return 0;
    }
    FUZZ_CHECK(r.key_len > 0 && r.key_len <= SAEF_KS_KEY_MAX && size <= REC_MAX);
    peer = strlen(r.peer);
    self = strlen(r.self);
    meta = strlen(r.meta);
    FUZZ_CHECK(peer <= SAEF_KS_ENTITY_MAX && self <= SAEF_KS_ENTITY_MAX &&
               meta <= SAEF_KS_META_MAX);
    /* Encoding what was read gives a record that reads back the same; byte
       for byte when the strings held no NUL. */
    n = saef_ks_rec_encode(&r, peer, self, meta, buf);
    if (n == size)
        FUZZ_CHECK(memcmp(buf, data, size) == 0);
    FUZZ_CHECK(saef_ks_rec_decode(buf, n, &again));
    same_record(&r, &again);
    saef_ks_record_wipe(&r);
    saef_ks_record_wipe(&again);
    return 0;
}
