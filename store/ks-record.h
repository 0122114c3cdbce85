/* Internal to libsaef-keystore (and its fuzz target): the stored record format.
   Errors: decode returns 1 / 0; the store's own calls return SAEF_KS_ERR. */
#ifndef SAEF_KS_RECORD_H
#define SAEF_KS_RECORD_H

#include "ks-types.h"
#include "saef_common.h"

#define REC_VERSION 1
#define REC_HDR 28
#define REC_MAX (REC_HDR + SAEF_KS_KEY_MAX + 2 * SAEF_KS_ENTITY_MAX + SAEF_KS_META_MAX)

/* r into buf (REC_MAX bytes); the lengths are the caller's, already checked. */
size_t saef_ks_rec_encode(const saef_ks_record *r, size_t peer_len, size_t self_len,
                          size_t meta_len, unsigned char *buf);
/* A stored value into r: 1, or 0 (r untouched) if malformed in any way. */
int saef_ks_rec_decode(const void *data, size_t size, saef_ks_record *r);

#endif
