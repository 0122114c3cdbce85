/*
 * originator.c - TS-0003 7.2.1: a request's From against the entity its
 * security association is bound to.
 *
 * ID forms (TS-0004 V3.32 6.2.3, the ABNF of TS-0001 7.2):
 *   SP-relative CSE-ID  /CSE-ID          Absolute CSE-ID  //SP-ID/CSE-ID
 *   AE-ID-Stem          Cxxx (assigned by the Registrar CSE) or Sxxx (by the SP)
 *   SP-relative AE-ID   /CSE-ID/Cxxx or /Sxxx
 *   Absolute AE-ID      //SP-ID/CSE-ID/Cxxx or //SP-ID/Sxxx
 * with CSE-IDs and stems of "unreserved" characters (letters, digits, '-',
 * '.', '_') and the SP-ID a domain name. An AE sends its AE-ID-Stem as From
 * (TS-0001 7.2: "the shortest format"); the other forms are what Registrar
 * CSEs and transit CSEs write.
 */
#include <ctype.h>
#include <string.h>
#include <strings.h>

#include "saef-internal.h"

typedef enum { ID_BAD, ID_CSE, ID_AE, ID_CRED } id_kind;

/* One ID, split; a part that the form leaves out has len 0 (then it is the
   receiving CSE's own SP or CSE). */
typedef struct {
    id_kind kind;
    const char *sp, *cse, *stem;
    size_t sp_len, cse_len, stem_len;
} id_parts;

/* Bytes an ID may hold: valid UTF-8 (TS-0001 IDs are strings; From travels
   in an HTTP header, MQTT topic or CoAP option) without NUL, controls or
   spaces, which no ID form has and which would corrupt what a CSE logs. */
static int clean_utf8(const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len;) {
        unsigned c = p[i], n, min, cp;

        if (c < 0x80) {
            if (c <= 0x20 || c == 0x7f)
                return 0;
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf)
            n = 1, min = 0x80, cp = c & 0x1f;
        else if (c >= 0xe0 && c <= 0xef)
            n = 2, min = 0x800, cp = c & 0x0f;
        else if (c >= 0xf0 && c <= 0xf4)
            n = 3, min = 0x10000, cp = c & 0x07;
        else
            return 0;
        if (len - i <= n)
            return 0;
        for (unsigned k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (p[i + k] & 0x3f);
        }
        /* overlong forms, UTF-16 surrogates, beyond U+10FFFF */
        if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return 0;
        i += n + 1;
    }
    return 1;
}

/* Length of the segment at p (up to '/' or end); 0 if empty or if it holds
   a character outside TS-0004's "unreserved" (the ABNF also wants a letter
   or digit first, which the stems "C-dev1" this project writes do not
   have: saef does not insist on it). */
static size_t segment(const char *p, const char *end)
{
    const char *s = memchr(p, '/', (size_t)(end - p));
    size_t n = (size_t)((s != NULL ? s : end) - p);

    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)p[i]) || p[i] == '-' || p[i] == '.' || p[i] == '_'))
            return 0;
    return n;
}

/* Splits id (already clean) into its parts per table 7.2-1. */
static id_parts parse_id(const char *id, size_t len)
{
    id_parts r = {ID_BAD, NULL, NULL, NULL, 0, 0, 0};
    const char *p = id, *end = id + len;
    size_t n, i = 0;

    if (len == 0)
        return r;
    /* Credential-ID (TS-0003 10.4): "<sec:credIDTypeID>-<value>", e.g.
       "12-<KpsaID>"; no AE-ID-Stem or CSE-ID form starts with a digit. */
    while (i < len && id[i] >= '0' && id[i] <= '9')
        i++;
    if (i > 0) {
        if (i < len - 1 && id[i] == '-')
            r.kind = ID_CRED;
        return r;
    }
    if (len > 2 && p[0] == '/' && p[1] == '/') { /* absolute: //SP-ID/... */
        p += 2;
        if ((n = segment(p, end)) == 0 || p + n == end)
            return r;
        r.sp = p, r.sp_len = n;
        p += n;
    }
    if (p < end && *p == '/') { /* SP-relative: /CSE-ID[/Cxxx] */
        p++;
        if ((n = segment(p, end)) == 0)
            return r;
        if (p + n == end) {
            /* A single segment is a CSE-ID or an S-AE-ID ("/S..." is
               both in the ABNF). 'C' and 'S' are read as AE-IDs: a CSE-ID
               starting with them is then checked (fail closed) rather than
               an AE passing unchecked as a CSE. */
            if (*p == 'C' || *p == 'S') {
                r.kind = ID_AE, r.stem = p, r.stem_len = n;
            } else {
                r.kind = ID_CSE, r.cse = p, r.cse_len = n;
            }
            return r;
        }
        r.cse = p, r.cse_len = n;
        p += n + 1;
        /* only a C-AE-ID has its Registrar's CSE-ID before the stem */
        if ((n = segment(p, end)) == 0 || p + n != end || *p != 'C')
            return r;
        r.kind = ID_AE, r.stem = p, r.stem_len = n;
        return r;
    }
    if (r.sp != NULL || segment(p, end) != len) /* also: a bad character */
        return r;
    /* AE-ID-Stem: 'C' or 'S' and at least one more character (the single
       letters are registration requests, see first_registration) */
    if ((*p == 'C' || *p == 'S') && len > 1)
        r.kind = ID_AE, r.stem = p, r.stem_len = len;
    return r;
}

static int same(const char *a, size_t al, const char *b, size_t bl, int nocase)
{
    return al == bl && (nocase ? strncasecmp(a, b, al) : memcmp(a, b, al)) == 0;
}

/* A part that both IDs leave out is the receiving CSE's own on both; one
   that only one of them names must equal ours, which is known only when own
   names it. SP-IDs are domain names (case-insensitive), the rest is not. */
static int same_part(const char *a, size_t al, const char *b, size_t bl, const char *own, size_t ol,
                     int nocase)
{
    if (al == 0 && bl == 0)
        return 1;
    if (al == 0)
        a = own, al = ol;
    if (bl == 0)
        b = own, bl = ol;
    return al > 0 && bl > 0 && same(a, al, b, bl, nocase);
}

static int same_ae(const id_parts *a, const id_parts *b, const id_parts *own)
{
    if (!same(a->stem, a->stem_len, b->stem, b->stem_len, 0) ||
        !same_part(a->sp, a->sp_len, b->sp, b->sp_len, own->sp, own->sp_len, 1))
        return 0;
    /* An S-AE-ID is unique in the SP; a C-AE-ID only at its Registrar. */
    return a->stem[0] == 'S' ||
           same_part(a->cse, a->cse_len, b->cse, b->cse_len, own->cse, own->cse_len, 0);
}

/* TS-0001 10.2.2.2 step 002 iii)-v): an AE without an AE-ID-Stem registers
   with From "S", "C" or none. Releases before 3 let From be empty, so an
   empty header counts as none. */
static int first_registration(const char *from, size_t len)
{
    return from == NULL || len == 0 || (len == 1 && (*from == 'C' || *from == 'S'));
}

SAEF_ORIGIN saef_origin_judge(const char *entity, const char *own_id, const char *from, size_t len,
                              unsigned flags)
{
    id_parts bound, claimed, own = {ID_BAD, NULL, NULL, NULL, 0, 0, 0};

    if (entity == NULL || *entity == '\0')
        return SAEF_ORIGIN_NO_ASSOCIATION;
    if (from != NULL && (len > SAEF_ORIGIN_MAX || !clean_utf8((const void *)from, len)))
        return SAEF_ORIGIN_NOT_AUTHENTICATED;
    bound = parse_id(entity, strlen(entity));
    /* TS-0003 7.2.1: the check "does not apply" to a CSE: a transit CSE
       forwards the requests of others, with their From. */
    if (bound.kind == ID_CSE)
        return SAEF_ORIGIN_OK;
    if (first_registration(from, len))
        /* A Credential-ID-bound association has no AE-ID yet: the Registrar
           assigns one (TS-0003 8.2.1 a) after checking the credential
           against the service subscription (TS-0001 10.2.2.2 step 003). An
           AE whose association names its AE-ID registers with that. */
        return bound.kind == ID_CRED && (flags & SAEF_ORIGIN_CREATE_AE)
                   ? SAEF_ORIGIN_OK
                   : SAEF_ORIGIN_NOT_AUTHENTICATED;
    if (bound.kind != ID_AE) /* a Credential-ID or an unreadable binding */
        return bound.kind == ID_BAD && same(entity, strlen(entity), from, len, 0)
                   ? SAEF_ORIGIN_OK
                   : SAEF_ORIGIN_NOT_AUTHENTICATED;
    claimed = parse_id(from, len);
    if (own_id != NULL)
        own = parse_id(own_id, strlen(own_id));
    if (own.kind != ID_CSE) /* own parts are known only from a CSE-ID */
        own.sp = own.cse = NULL, own.sp_len = own.cse_len = 0;
    return claimed.kind == ID_AE && same_ae(&bound, &claimed, &own) ? SAEF_ORIGIN_OK
                                                                    : SAEF_ORIGIN_NOT_AUTHENTICATED;
}

SAEF_ORIGIN saef_originator_check(const SSL *ssl, const char *from, size_t len, unsigned flags)
{
    const char *entity = ssl != NULL ? saef_ssl_peer_entity(ssl) : NULL;
    SAEF_ORIGIN r;

    r = saef_origin_judge(entity, ssl != NULL ? saef_ssl_own_entity(ssl) : NULL, from, len, flags);
    if (r != SAEF_ORIGIN_OK && ssl != NULL)
        saef_log_origin(ssl, r, entity, from, len);
    return r;
}
