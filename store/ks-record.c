/*
 * The record codec: a saef_ks_record to the value stored in LMDB and back.
 * Apart because it is the on-disk format, knows no transaction, and is
 * fuzzed on its own (fuzz_record).
 */
#include "ks-internal.h"

#include <openssl/crypto.h>
#include <string.h>

void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

uint64_t get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;

    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* version, flags (0), key_len(2), created(8), not_after(8), suid(4),
   peer_len, self_len, meta_len(2), then key, peer, self, meta. */
size_t saef_ks_rec_encode(const saef_ks_record *r, size_t peer_len, size_t self_len,
                          size_t meta_len, unsigned char *buf)
{
    unsigned char *p = buf + REC_HDR;

    buf[0] = REC_VERSION;
    buf[1] = 0;
    put_le(buf + 2, r->key_len, 2);
    put_le(buf + 4, (uint64_t)r->created, 8);
    put_le(buf + 12, (uint64_t)r->not_after, 8);
    put_le(buf + 20, (uint32_t)r->suid, 4);
    buf[24] = (unsigned char)peer_len;
    buf[25] = (unsigned char)self_len;
    put_le(buf + 26, meta_len, 2);
    memcpy(p, r->key, r->key_len);
    memcpy(p += r->key_len, r->peer, peer_len);
    memcpy(p += peer_len, r->self, self_len);
    memcpy(p += self_len, r->meta, meta_len);
    return (size_t)(p + meta_len - buf);
}

/* Checks every length before writing anything to r. */
int saef_ks_rec_decode(const void *data, size_t size, saef_ks_record *r)
{
    const unsigned char *b = data, *p = b + REC_HDR;
    size_t key_len, peer_len, self_len, meta_len;

    if (size < REC_HDR || b[0] != REC_VERSION || b[1] != 0)
        return 0;
    key_len = get_le(b + 2, 2);
    peer_len = b[24];
    self_len = b[25];
    meta_len = get_le(b + 26, 2);
    if (key_len == 0 || key_len > SAEF_KS_KEY_MAX || peer_len > SAEF_KS_ENTITY_MAX ||
        self_len > SAEF_KS_ENTITY_MAX || meta_len > SAEF_KS_META_MAX ||
        size != REC_HDR + key_len + peer_len + self_len + meta_len)
        return 0;
    r->key_len = key_len;
    r->created = (int64_t)get_le(b + 4, 8);
    r->not_after = (int64_t)get_le(b + 12, 8);
    r->suid = (int32_t)get_le(b + 20, 4);
    memcpy(r->key, p, key_len);
    memcpy(r->peer, p += key_len, peer_len);
    r->peer[peer_len] = '\0';
    memcpy(r->self, p += peer_len, self_len);
    r->self[self_len] = '\0';
    memcpy(r->meta, p += self_len, meta_len);
    r->meta[meta_len] = '\0';
    return 1;
}

void saef_ks_record_wipe(saef_ks_record *rec)
{
    /* The key with OpenSSL's cleanse, which the compiler cannot drop; the
       rest (not secret, 1.5 KiB, wiped at every handshake) with memset. */
    if (rec != NULL) {
        OPENSSL_cleanse(rec->key, sizeof(rec->key));
        memset(&rec->key_len, 0, sizeof(*rec) - offsetof(saef_ks_record, key_len));
    }
}

/* The peer (INDEX_PEER) or self (INDEX_SELF) of an encoded record, without
   touching its key bytes; its length, 0 if none or the record is malformed. */
size_t rec_field(const MDB_val *v, int index, const unsigned char **out)
{
    const unsigned char *b = v->mv_data;
    size_t key_len;

    if (v->mv_size < REC_HDR || b[0] != REC_VERSION)
        return 0;
    key_len = get_le(b + 2, 2);
    if (REC_HDR + key_len + b[24] + b[25] > v->mv_size)
        return 0;
    *out = b + REC_HDR + key_len + (index == INDEX_SELF ? b[24] : 0);
    return index == INDEX_SELF ? b[25] : b[24];
}
