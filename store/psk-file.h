/* Internal to saef-key (and its fuzz target): the psk file of stunnel,
   mosquitto and GnuTLS, one "identity:hexkey" line per key.
   Errors, as saef-key's: 0, or saef-key's exit status with the message on
   stderr; the *_problem checks return the message, NULL when all is well. */
#ifndef SAEF_PSK_FILE_H
#define SAEF_PSK_FILE_H

#include <stdio.h>
#include "saef_keystore.h"

/* Called for each key line with a copy of base holding the key; non-zero stops. */
typedef int (*saef_psk_put_fn)(const char *id, const saef_ks_record *rec, long lineno, void *arg);

/* Why saef-key refuses an identity (NULL: it does not): length, control
   characters, and TS-0003 syntax for `type` unless `any`. Never quotes it. */
const char *saef_psk_id_problem(const char *id, size_t len, SAEF_KS_TYPE type, int any);

/* Why saef-key refuses a peer or self entity ID (NULL: it does not): 1 to
   255 bytes, no control characters (a newline would forge a row of list). */
const char *saef_entity_problem(const char *v);

/*
 * Reads every line of `in` (named `file` in messages): empty lines and lines
 * starting with '#' are skipped, the identity ends at the last ':', and it must
 * pass saef_psk_id_problem(). Returns 0 with *count keys put,
 * 2 with the reason on stderr for a bad line, or put's non-zero result.
 */
int saef_psk_read(FILE *in, const char *file, SAEF_KS_TYPE type, int any,
                  const saef_ks_record *base, saef_psk_put_fn put, void *arg, size_t *count);

#endif
