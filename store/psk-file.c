/* The psk file format: "identity:hexkey" lines. */
#define _GNU_SOURCE /* getline */
#include "psk-file.h"
#include "saef_common.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define BAD_LINE 2 /* saef-key's exit status for bad input */

const char *saef_psk_id_problem(const char *id, size_t len, SAEF_KS_TYPE type, int any)
{
    if (len == 0 || len > SAEF_KS_ID_MAX)
        return "identity must be 1 to 128 bytes (OpenSSL's PSK limit)";
    /* A newline or escape would forge rows and lines in list and logs. */
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)id[i] < 0x20 || id[i] == 0x7f)
            return "identity holds a control character (newline, tab, escape...)";
    if (any)
        return NULL;
    if (type == SAEF_KS_KC ? !saef_id_parse_maf(id, len, NULL, NULL)
                           : !saef_id_is_conforming(id, len))
        return type == SAEF_KS_KC ? "kc identity is not HEX32@MAF-FQDN (TS-0003 10.3.5); "
                                    "--any-identity accepts it anyway"
                                  : "identity is not relative@fqdn with a relative part of "
                                    "letters, digits, '.', '_' and '-' (TS-0003 10.5/10.6); "
                                    "--any-identity accepts it anyway";
    return NULL;
}

const char *saef_entity_problem(const char *v)
{
    size_t len = strlen(v);

    if (len == 0 || len > SAEF_KS_ENTITY_MAX)
        return "must be 1 to 255 bytes";
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return "holds a control character (newline, tab, escape...)";
    return NULL;
}

/*
 * One line into rec; the identity ends at the last ':'. A malformed line
 * may hold its key anywhere, so messages quote none of it.
 */
static int parse_line(char *line, const char *file, long lineno, SAEF_KS_TYPE type, int any,
                      saef_ks_record *rec, char **id)
{
    char *colon = strrchr(line, ':');
    const char *why;
    int n;

    if (colon == NULL) {
        fprintf(stderr, "saef-key: %s:%ld: no ':' (lines are identity:hexkey)\n", file, lineno);
        return BAD_LINE;
    }
    *colon = '\0';
    *id = line;
    n = saef_hex_decode(colon + 1, strlen(colon + 1), rec->key, sizeof(rec->key));
    if (n <= 0) {
        fprintf(stderr, "saef-key: %s:%ld: key is %s\n", file, lineno,
                colon[1] == '\0' ? "empty (lines are identity:hexkey, nothing after the key)"
                                 : "not 1 to 256 bytes of hex");
        return BAD_LINE;
    }
    rec->key_len = (size_t)n;
    if ((why = saef_psk_id_problem(line, strlen(line), type, any)) != NULL) {
        fprintf(stderr, "saef-key: %s:%ld: %s\n", file, lineno, why);
        return BAD_LINE;
    }
    return 0;
}

int saef_psk_read(FILE *in, const char *file, SAEF_KS_TYPE type, int any,
                  const saef_ks_record *base, saef_psk_put_fn put, void *arg, size_t *count)
{
    saef_ks_record rec;
    char *line = NULL, *id;
    size_t cap = 0;
    long lineno = 0;
    ssize_t len;
    int rc = 0;

    *count = 0;
    while (rc == 0 && (len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0 || line[0] == '#')
            continue;
        rec = *base;
        if ((rc = parse_line(line, file, lineno, type, any, &rec, &id)) == 0 &&
            (rc = put(id, &rec, lineno, arg)) == 0)
            (*count)++;
        saef_ks_record_wipe(&rec);
        OPENSSL_cleanse(line, cap);
    }
    if (rc == 0 && ferror(in)) {
        fprintf(stderr, "saef-key: reading %s: %s\n", file, strerror(errno));
        rc = BAD_LINE;
    }
    if (line != NULL)
        OPENSSL_cleanse(line, cap);
    free(line);
    return rc;
}
