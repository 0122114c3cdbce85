/* The psk file format: "identity:hexkey" lines. */
#define _GNU_SOURCE /* getline */
#include "psk-file.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#define BAD_LINE 2 /* saef-key's exit status for bad input */

/* One line into rec; the identity ends at the last ':'. */
static int parse_line(char *line, const char *file, long lineno, SAEF_KS_TYPE type, int any,
                      saef_ks_record *rec, char **id)
{
    char *colon = strrchr(line, ':');
    size_t idlen;
    int n;

    if (colon == NULL) {
        fprintf(stderr, "saef-key: %s:%ld: no ':' (lines are identity:hexkey)\n", file, lineno);
        return BAD_LINE;
    }
    *colon = '\0';
    *id = line;
    idlen = strlen(line);
    if (idlen == 0 || idlen > SAEF_KS_ID_MAX) {
        fprintf(stderr, "saef-key: %s:%ld: identity is %zu bytes; it must be 1 to %d\n", file,
                lineno, idlen, SAEF_KS_ID_MAX);
        return BAD_LINE;
    }
    if (!any && (type == SAEF_KS_KC ? !saef_id_parse_maf(line, idlen, NULL, NULL)
                                    : !saef_id_is_conforming(line, idlen))) {
        fprintf(stderr,
                "saef-key: %s:%ld: identity '%s' does not follow TS-0003 (relative@fqdn); "
                "--any-identity accepts it\n",
                file, lineno, line);
        return BAD_LINE;
    }
    n = saef_hex_decode(colon + 1, strlen(colon + 1), rec->key, sizeof(rec->key));
    if (n <= 0) {
        fprintf(stderr, "saef-key: %s:%ld: key is %s\n", file, lineno,
                colon[1] == '\0' ? "empty" : "not 1 to 256 bytes of hex");
        return BAD_LINE;
    }
    rec->key_len = (size_t)n;
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
