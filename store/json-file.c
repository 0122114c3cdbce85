/* The lossless export format: one JSON object per record and line. */
#define _GNU_SOURCE /* getline */
#include "json-file.h"
#include "psk-file.h"
#include "saef_common.h"

#include <errno.h>
#include <jansson.h>
#include <malloc.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BAD_LINE 2 /* saef-key's exit status for bad input */

/* jansson holds the key's hex: every block it frees is wiped first. */
static void wipe_free(void *p)
{
    if (p != NULL)
        OPENSSL_cleanse(p, malloc_usable_size(p));
    free(p);
}

static int bad(const char *file, long lineno, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(const char *file, long lineno, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "saef-key: %s:%ld: ", file, lineno);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return BAD_LINE;
}

/* A string field without NUL bytes, or NULL. */
static const char *text(json_t *v, size_t *len)
{
    const char *s = json_string_value(v);

    if (s == NULL || strlen(s) != json_string_length(v))
        return NULL;
    *len = json_string_length(v);
    return s;
}

/* Messages name fields and say why; they never quote a value (the key may
   be anywhere in a malformed line). */
static int parse_object(json_t *o, const char *file, long lineno, int any, SAEF_KS_TYPE *type,
                        const char **id, saef_ks_record *rec)
{
    static const char *const fields[] = {"type",    "identity", "key",  "peer", "self",
                                         "expires", "created",  "suid", "meta", NULL};
    const char *name, *s, *why;
    json_t *v;
    size_t len;
    int n;

    if (!json_is_object(o))
        return bad(file, lineno, "not a JSON object");
    json_object_foreach(o, name, v)
    {
        int known = 0;
        for (const char *const *f = fields; *f != NULL; f++)
            known |= strcmp(name, *f) == 0;
        if (!known)
            return bad(file, lineno,
                       "unknown field (fields are type, identity, key, peer, "
                       "self, expires, created, suid and meta)");
    }
    if ((s = text(json_object_get(o, "type"), &len)) == NULL ||
        ((*type = saef_ks_type_from_name(s)) != SAEF_KS_KPSA && *type != SAEF_KS_KM &&
         *type != SAEF_KS_KC))
        return bad(file, lineno, "\"type\" must be \"kpsa\", \"km\" or \"kc\"");
    if ((*id = text(json_object_get(o, "identity"), &len)) == NULL)
        return bad(file, lineno, "\"identity\" must be a string");
    if ((why = saef_psk_id_problem(*id, len, *type, any)) != NULL)
        return bad(file, lineno, "%s", why);
    if ((s = text(json_object_get(o, "key"), &len)) == NULL ||
        (n = saef_hex_decode(s, len, rec->key, sizeof(rec->key))) <= 0)
        return bad(file, lineno, "\"key\" must be 1 to 256 bytes of hex");
    rec->key_len = (size_t)n;
    if ((v = json_object_get(o, "peer")) != NULL &&
        ((s = text(v, &len)) == NULL || (why = saef_entity_problem(s)) != NULL))
        return bad(file, lineno, "\"peer\" %s", s == NULL ? "must be a string" : why);
    if (v != NULL)
        memcpy(rec->peer, s, len + 1);
    if ((v = json_object_get(o, "self")) != NULL &&
        ((s = text(v, &len)) == NULL || (why = saef_entity_problem(s)) != NULL))
        return bad(file, lineno, "\"self\" %s", s == NULL ? "must be a string" : why);
    if (v != NULL)
        memcpy(rec->self, s, len + 1);
    /* A copy of a store keeps its expired keys, as they were. */
    if ((v = json_object_get(o, "expires")) != NULL &&
        ((s = text(v, &len)) == NULL || !saef_time_parse(s, 0, &rec->not_after) || s[0] == '+' ||
         rec->not_after == 0))
        return bad(file, lineno, "\"expires\" must be an RFC 3339 time");
    if ((v = json_object_get(o, "created")) != NULL &&
        ((s = text(v, &len)) == NULL || !saef_time_parse(s, 0, &rec->created) || s[0] == '+' ||
         rec->created == 0))
        return bad(file, lineno, "\"created\" must be an RFC 3339 time");
    if ((v = json_object_get(o, "suid")) != NULL &&
        (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 99))
        return bad(file, lineno, "\"suid\" must be an integer from 1 to 99");
    if (v != NULL)
        rec->suid = (int32_t)json_integer_value(v);
    if ((v = json_object_get(o, "meta")) != NULL &&
        ((s = text(v, &len)) == NULL || len == 0 || len > SAEF_KS_META_MAX))
        return bad(file, lineno, "\"meta\" must be a string of 1 to %d bytes", SAEF_KS_META_MAX);
    if (v != NULL)
        memcpy(rec->meta, s, len + 1);
    return 0;
}

int saef_json_read(FILE *in, const char *file, int any, saef_json_put_fn put, void *arg,
                   size_t *count)
{
    saef_ks_record rec;
    SAEF_KS_TYPE type = 0;
    json_error_t jerr;
    json_t *o;
    const char *id = NULL;
    char *line = NULL;
    size_t cap = 0;
    long lineno = 0;
    ssize_t len;
    int rc = 0;

    json_set_alloc_funcs(malloc, wipe_free);
    *count = 0;
    while (rc == 0 && (len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = '\0';
        if (len == 0)
            continue;
        memset(&rec, 0, sizeof(rec));
        /* jerr.text may quote the line: only its column is told. */
        if ((o = json_loadb(line, (size_t)len, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
            rc = bad(file, lineno, "not valid JSON (column %d)", jerr.column);
        else if ((rc = parse_object(o, file, lineno, any, &type, &id, &rec)) == 0 &&
                 (rc = put(type, id, &rec, lineno, arg)) == 0)
            (*count)++;
        json_decref(o);
        saef_ks_record_wipe(&rec);
        OPENSSL_cleanse(line, cap);
    }
    if (rc == 0 && ferror(in))
        rc = bad(file, lineno, "read error: %s", strerror(errno));
    if (line != NULL)
        OPENSSL_cleanse(line, cap);
    free(line);
    return rc;
}

static int set_text(json_t *o, const char *name, const char *s, size_t len)
{
    return json_object_set_new(o, name, json_stringn(s, len));
}

static int set_time(json_t *o, const char *name, int64_t t)
{
    char buf[32];

    saef_time_format(t, buf, sizeof(buf));
    return json_object_set_new(o, name, json_string(buf));
}

int saef_json_write(FILE *out, SAEF_KS_TYPE type, const char *id, size_t id_len,
                    const saef_ks_record *rec)
{
    char hex[2 * SAEF_KS_KEY_MAX + 1], *line = NULL;
    json_t *o;
    int rc;

    json_set_alloc_funcs(malloc, wipe_free);
    if ((o = json_object()) == NULL)
        return -1;
    saef_hex_encode(rec->key, rec->key_len, hex);
    /* json_stringn refuses what is not UTF-8: the set fails. */
    rc = json_object_set_new(o, "type", json_string(saef_ks_type_name(type))) |
         set_text(o, "identity", id, id_len) | json_object_set_new(o, "key", json_string(hex));
    OPENSSL_cleanse(hex, sizeof(hex));
    if (rec->peer[0])
        rc |= set_text(o, "peer", rec->peer, strlen(rec->peer));
    if (rec->self[0])
        rc |= set_text(o, "self", rec->self, strlen(rec->self));
    if (rec->not_after != 0)
        rc |= set_time(o, "expires", rec->not_after);
    if (rec->created != 0)
        rc |= set_time(o, "created", rec->created);
    if (rec->suid != 0)
        rc |= json_object_set_new(o, "suid", json_integer(rec->suid));
    if (rec->meta[0])
        rc |= set_text(o, "meta", rec->meta, strlen(rec->meta));
    if (rc == 0 && (line = json_dumps(o, JSON_COMPACT)) != NULL)
        fprintf(out, "%s\n", line);
    else
        rc = -1;
    wipe_free(line);
    json_decref(o);
    return rc;
}
