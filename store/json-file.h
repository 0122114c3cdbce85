/* Internal to saef-key: the lossless export format, one JSON object per
   record and line, with the fields type, identity, key (hex) and, where
   set, peer, self, expires, created (RFC 3339), suid and meta.
   Errors, as saef-key's (psk-file.h): 0, or non-zero with the message on
   stderr. */
#ifndef SAEF_JSON_FILE_H
#define SAEF_JSON_FILE_H

#include <stdio.h>
#include "saef_keystore.h"

/* Called for each record line; non-zero stops the read. */
typedef int (*saef_json_put_fn)(SAEF_KS_TYPE type, const char *id, const saef_ks_record *rec,
                                long lineno, void *arg);

/*
 * Reads every line of `in` (named `file` in messages); blank lines are
 * skipped. Each object is checked whole (identities by saef_psk_id_problem,
 * `any` as --any-identity) before put sees it. Returns 0 with *count
 * records put, 2 with "FILE:LINE: reason" on stderr (never a value of the
 * line), or put's non-zero result.
 */
int saef_json_read(FILE *in, const char *file, int any, saef_json_put_fn put, void *arg,
                   size_t *count);

/* One record as a line; 0, or -1 when a text field is not UTF-8. */
int saef_json_write(FILE *out, SAEF_KS_TYPE type, const char *id, size_t id_len,
                    const saef_ks_record *rec);

#endif
