/*
 * saef_common.h - helpers every part of saef shares: oneM2M identity
 * syntax, hex, time and path safety.
 *
 * Internal: not installed, and not exported from any library. The static
 * library saef-common (common/CMakeLists.txt) gives each binary that uses
 * them (libsaef-keystore, libsaef, saef.so, saef-key, saef-mafd...) its own
 * hidden copy, so they are no part of any library's ABI and can change
 * with the code that calls them.
 *
 * Errors: a function that can fail returns 1 when it succeeded and 0 when
 * it did not (a count, or -1 for bad input, where it returns a size); where
 * the caller needs to say why, it passes an err buffer that the function
 * fills with a message naming what is wrong and how to fix it. Nothing here
 * prints, exits or keeps state.
 */
#ifndef SAEF_COMMON_H
#define SAEF_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include "saef_keystore.h"
#include "saef_onem2m.h"

/* TS-0003 10.5/10.6: "relative@fqdn", relative part [A-Za-z0-9._-]+,
   fqdn a DNS name; whole thing 1..SAEF_KS_ID_MAX. 1 if conforming. */
int saef_id_is_conforming(const char *id, size_t id_len);

/* TS-0003 10.3.5: "HEX32@fqdn". On success returns 1, sets *fqdn to the
   part after '@' and writes the KcID (SAEF_KCID_LEN bytes) to kcid (if not NULL). */
int saef_id_parse_maf(const char *id, size_t id_len, const char **fqdn,
                      unsigned char kcid[SAEF_KCID_LEN]);

/*
 * Time: RFC 3339 ("2026-11-24T12:00:00Z", offsets allowed), oneM2M
 * "YYYYMMDDTHHMMSS" (UTC, optional ",fraction"), and relative
 * "+N[smhdw]" from `now`. Returns 1 and sets *out (Unix seconds) if valid,
 * else 0 with *out untouched.
 */
int saef_time_parse(const char *text, int64_t now, int64_t *out);
/* Writes RFC 3339 UTC ("2026-11-24T12:00:00Z") into buf (>= 21 bytes);
   "" when it does not fit or cannot be written. */
void saef_time_format(int64_t t, char *buf, size_t len);
/* oneM2M basic format "20261124T120000" into buf (>= 16 bytes). */
void saef_time_format_onem2m(int64_t t, char *buf, size_t len);

/*
 * Files that decide whom saef trusts (the store, openssl.cnf), by OpenSSH's
 * StrictModes rule: the file and every directory above it belong to root,
 * the effective user or `owner` (-1: nobody else), and nobody else may write
 * them; a sticky directory (/tmp) passes, since others cannot rename what is
 * in it. A missing file is judged by its nearest existing directory.
 * 1 if safe; else 0 and a message in err saying what to chmod or chown.
 */
int saef_path_is_safe(const char *path, long owner, char *err, size_t errlen);

/* Hex: returns bytes written, or -1 on bad hex / too long. Accepts upper
   and lower case, no separators. */
int saef_hex_decode(const char *hex, size_t hex_len, unsigned char *out, size_t out_max);
/* Upper-case hex of len bytes into out (>= 2*len + 1). */
void saef_hex_encode(const unsigned char *in, size_t len, char *out);

/*
 * The store's lock file, "<store>-lock" (LMDB's MDB_NOSUBDIR naming), into
 * out. 1, or 0 (out "") when it does not fit in outlen bytes
 * (strlen(store) + sizeof(SAEF_LOCK_SUFFIX) always fits).
 */
#define SAEF_LOCK_SUFFIX "-lock"
int saef_lock_path(const char *store, char *out, size_t outlen);

/*
 * Bytes from outside (identities, originators, client IDs, request lines)
 * as one token of printable ASCII for a message or an audit line: the
 * bytes 0x21 to 0x7e pass except '"' and '\', and every other byte (space,
 * controls, DEL, '"', '\', NUL, bytes from 0x80) becomes "\xNN" with
 * lower-case hex, so what is printed can neither forge a line or a field
 * nor hide a byte. When out is too small the text is cut after a whole byte
 * and ends in "..." (outlen >= 4; SAEF_ESCAPED_MAX(len) always fits, with
 * no cut). Returns out.
 */
#define SAEF_ESCAPED_MAX(len) (4 * (len) + 1)
const char *saef_escape(const void *in, size_t len, char *out, size_t outlen);

#endif
