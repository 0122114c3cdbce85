/*
 * The MAF's registry: registrations are kc records in the MAF's own saef
 * store, identity RelativeKeyID@MAF-FQDN, peer = the target, self = the
 * source client, meta = adminFQDN and labels. HTTP is saef-mafd.c's job.
 */
#include "mafd-registry.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

void saef_mafd_log(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "saef-mafd: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Request text for the log, escaped as every identity saef logs is. */
const char *saef_mafd_escaped(const char *in, char *out, size_t len)
{
    return in != NULL ? saef_escape(in, strlen(in), out, len) : "-";
}

static int error_answer(json_t **answer, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int error_answer(json_t **answer, int status, const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* A field name echoed from the request may hold what JSON cannot carry
       (a NUL from \u0000, or a UTF-8 sequence cut by the size): ASCII only then. */
    if ((*answer = json_pack("{s:s}", "error", msg)) == NULL) {
        for (char *p = msg; *p != '\0'; p++)
            if ((unsigned char)*p >= 0x80)
                *p = '?';
        *answer = json_pack("{s:s}", "error", msg);
    }
    return status;
}

int saef_mafd_error(json_t **answer, int status, const char *msg)
{
    return error_answer(answer, status, "%s", msg);
}

static json_t *read_json(const saef_mafd_request *req, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *j;

    j = json_loadb(req->body != NULL ? req->body : "", req->body_len, JSON_REJECT_DUPLICATES,
                   &jerr);
    if (j == NULL)
        snprintf(err, errlen, "malformed JSON: %s", jerr.text);
    else if (!json_is_object(j)) {
        snprintf(err, errlen, "the body must be a JSON object");
        json_decref(j);
        j = NULL;
    }
    return j;
}

/* Unknown fields are errors, so a typo is not silently ignored. */
static const char *unknown_field(json_t *j, const char *const *allowed)
{
    const char *k;
    json_t *v;

    json_object_foreach(j, k, v)
    {
        int ok = 0;
        (void)v;
        for (const char *const *a = allowed; *a != NULL; a++)
            ok |= strcmp(k, *a) == 0;
        if (!ok)
            return k;
    }
    return NULL;
}

/* The request's JSON object holding only allowed fields (a typo is not
   silently ignored); NULL with the 400 answer's status in *status. */
static json_t *read_request(const saef_mafd *m, const saef_mafd_request *req,
                            const char *const *allowed, json_t **answer, int *status)
{
    char err[256];
    const char *bad;
    json_t *j = read_json(req, err, sizeof(err)), *fqdn;

    if (j == NULL) {
        *status = error_answer(answer, 400, "%s", err);
        return NULL;
    }
    if ((bad = unknown_field(j, allowed)) != NULL)
        *status = error_answer(answer, 400, "unknown field '%s'", bad);
    else if ((fqdn = json_object_get(j, "MAF-FQDN")) != NULL && !json_is_string(fqdn))
        *status = error_answer(answer, 400, "MAF-FQDN must be a string");
    else if (fqdn != NULL && strcasecmp(json_string_value(fqdn), m->fqdn) != 0)
        *status = error_answer(answer, 400, "MAF-FQDN %s is not this MAF (%s)",
                               json_string_value(fqdn), m->fqdn);
    else
        return j;
    json_decref(j);
    return NULL;
}

static int valid_labels(json_t *labels)
{
    size_t i;
    json_t *v;

    if (labels == NULL)
        return 1;
    if (!json_is_array(labels))
        return 0;
    json_array_foreach(labels, i, v) if (!json_is_string(v)) return 0;
    return 1;
}

int saef_mafd_absolute_id(const char *id)
{
    size_t n = strlen(id);

    if (n < 4 || n > SAEF_KS_ENTITY_MAX || strncmp(id, "//", 2) != 0 || strchr(id + 2, '/') == NULL)
        return 0;
    for (const char *p = id; *p; p++)
        if (*p <= ' ' || *p > '~')
            return 0;
    return 1;
}

int saef_mafd_dns_name(const char *name)
{
    size_t n = strlen(name), label = 0;

    if (n == 0 || n > 253)
        return 0;
    for (const char *p = name; *p != '\0'; p++) {
        if (*p == '.') {
            if (label == 0 || p[-1] == '-')
                return 0;
            label = 0;
        } else if (isalnum((unsigned char)*p) || (*p == '-' && label > 0)) {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return label > 0 && name[n - 1] != '-';
}

int saef_mafd_cse_id(const char *id)
{
    const char *seg = saef_mafd_absolute_id(id) ? strchr(id + 2, '/') + 1 : NULL;

    return seg != NULL && *seg != '\0' && strchr(seg, '/') == NULL && *seg != 'C' && *seg != 'S';
}

typedef struct {
    const char *want;
    int found;
} peer_search;

static int has_peer(SAEF_KS_TYPE type, const char *id, size_t id_len, const saef_ks_record *rec,
                    void *arg)
{
    peer_search *p = arg;

    (void)type, (void)id, (void)id_len;
    return p->found = strcmp(rec->peer, p->want) == 0;
}

/* "The MAF has to know IdB" (TS-0003 8.2.2.3): a key is only for a target
   this MAF knows, else anyone could have it released to anyone. NULL if the
   target is known, else why not. */
static const char *unknown_target(const saef_mafd *m, const char *target)
{
    peer_search p = {target, 0};

    if (m->cse_targets_only && !saef_mafd_cse_id(target))
        return "this MAF registers keys only for CSEs (--cse-targets-only)";
    if (m->targets != NULL) {
        for (const char *const *t = m->targets; *t != NULL; t++)
            if (strcmp(*t, target) == 0)
                return NULL;
        return "it is not in this MAF's list of targets (--targets)";
    }
    /* A km record's peer is a MAF client's authenticated ID. */
    if (saef_ks_iter_peer(m->ks, SAEF_KS_KM, target, has_peer, &p) != SAEF_KS_OK) {
        saef_mafd_log("%s", saef_ks_last_error(m->ks));
        return "the registry could not be read";
    }
    return p.found ? NULL : "it is not a client of this MAF";
}

/* The registration's metadata as stored: adminFQDN and labels. 0 if they do
   not fit (cut, they would no longer read back as JSON). */
static int set_meta(saef_ks_record *rec, const char *admin, json_t *labels)
{
    json_t *m = json_pack("{s:s}", "adminFQDN", admin);
    char *text;
    int ok;

    if (labels != NULL)
        json_object_set(m, "labels", labels);
    text = json_dumps(m, JSON_COMPACT);
    ok = text != NULL && strlen(text) < sizeof(rec->meta);
    snprintf(rec->meta, sizeof(rec->meta), "%s", ok ? text : "");
    free(text);
    json_decref(m);
    return ok;
}

#define META_TOO_LONG "adminFQDN and labels must fit in 1024 bytes of JSON"

/* Registrations per client per minute (--max-reg-rate): a token bucket per
   client that registered lately; buckets that are full again are dropped
   by the purge. In memory: a restart refills them. */
typedef struct {
    char client[SAEF_KS_ENTITY_MAX + 1];
    double tokens, at;
} bucket;

static struct {
    bucket *b;
    size_t n;
} rate;

static double now_mono(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The client's bucket, refilled to now; NULL if out of memory. */
static bucket *bucket_of(const saef_mafd *m, const char *client)
{
    double now = now_mono();
    bucket *b = NULL;

    for (size_t i = 0; i < rate.n && b == NULL; i++)
        if (strcmp(rate.b[i].client, client) == 0)
            b = &rate.b[i];
    if (b == NULL) {
        bucket *grown = realloc(rate.b, (rate.n + 1) * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        rate.b = grown;
        b = &rate.b[rate.n++];
        snprintf(b->client, sizeof(b->client), "%s", client);
        b->tokens = (double)m->reg_rate;
        b->at = now;
    }
    b->tokens += (now - b->at) * (double)m->reg_rate / 60.0;
    if (b->tokens > (double)m->reg_rate)
        b->tokens = (double)m->reg_rate;
    b->at = now;
    return b;
}

typedef struct {
    const char *client;
    int by_self; /* kc: the source is self; creg: the client is peer */
    int64_t now;
    long n, stop;
} live_count;

static int count_live(SAEF_KS_TYPE type, const char *id, size_t id_len, const saef_ks_record *rec,
                      void *arg)
{
    live_count *c = arg;

    (void)type, (void)id, (void)id_len;
    if (strcmp(c->by_self ? rec->self : rec->peer, c->client) == 0 && rec->not_after > c->now)
        c->n++;
    return c->n >= c->stop;
}

/* --max-registrations and --max-reg-rate: 0 if the client may register one
   more, else the refusal's status with *answer set. A refused attempt costs
   nothing; a stored one takes its token (rate_take). */
static int over_quota(const saef_mafd *m, const char *client, json_t **answer)
{
    live_count c = {client, 0, (int64_t)time(NULL), 0, m->max_regs};
    bucket *b;

    if (m->reg_rate > 0) {
        if ((b = bucket_of(m, client)) == NULL)
            return error_answer(answer, 500, "out of memory");
        if (b->tokens < 1.0) {
            long wait = (long)((1.0 - b->tokens) * 60.0 / (double)m->reg_rate) + 1;
            error_answer(answer, 429,
                         "more than %ld registrations a minute from this client "
                         "(--max-reg-rate): try again in %ld s",
                         m->reg_rate, wait);
            json_object_set_new(*answer, "retryAfter", json_integer(wait));
            return 429;
        }
    }
    if (m->max_regs <= 0)
        return 0;
    /* Client registrations name their client as peer, key registrations as
       self: both through an index, never a walk of the registry. */
    if (saef_ks_iter_peer(m->ks, SAEF_KS_CREG, client, count_live, &c) != SAEF_KS_OK ||
        (c.by_self = 1, c.n < c.stop && saef_ks_iter_self(m->ks, SAEF_KS_KC, client, count_live,
                                                          &c) != SAEF_KS_OK)) {
        saef_mafd_log("%s", saef_ks_last_error(m->ks));
        return error_answer(answer, 500, "registry error");
    }
    if (c.n >= m->max_regs)
        return error_answer(answer, 403,
                            "this client holds %ld live registrations, the limit "
                            "(--max-registrations): deregister some or let them expire",
                            c.n);
    return 0;
}

static void rate_take(const saef_mafd *m, const char *client)
{
    bucket *b = m->reg_rate > 0 ? bucket_of(m, client) : NULL;

    if (b != NULL)
        b->tokens -= 1.0;
}

/* Buckets full again are as good as none. */
static void rate_prune(const saef_mafd *m)
{
    size_t kept = 0;

    for (size_t i = 0; i < rate.n; i++) {
        bucket b = rate.b[i];
        b.tokens += (now_mono() - b.at) * (double)m->reg_rate / 60.0;
        if (b.tokens < (double)m->reg_rate)
            rate.b[kept++] = rate.b[i];
    }
    rate.n = kept;
}

/* Adds the stored adminFQDN and labels to an answer. */
static void add_meta(json_t *out, const saef_ks_record *rec)
{
    json_t *m = json_loads(rec->meta, 0, NULL);

    if (m != NULL)
        json_object_update(out, m);
    json_decref(m);
}

static void timestamp(int64_t t, char *buf)
{
    saef_time_format_onem2m(t, buf, 16);
}

static int get_registration(const saef_mafd *m, const char *rel, saef_ks_record *rec, char *id)
{
    unsigned char kcid[SAEF_KCID_LEN];

    if (strlen(rel) != SAEF_KCID_HEX_LEN ||
        saef_hex_decode(rel, SAEF_KCID_HEX_LEN, kcid, sizeof(kcid)) != SAEF_KCID_LEN)
        return -1;
    saef_hex_encode(kcid, SAEF_KCID_LEN, id); /* canonical upper case */
    snprintf(id + SAEF_KCID_HEX_LEN, SAEF_KS_ID_MAX + 1 - SAEF_KCID_HEX_LEN, "@%s", m->fqdn);
    return saef_ks_get(m->ks, SAEF_KS_KC, id, strlen(id), rec) == SAEF_KS_OK;
}

/* Expired registrations are never released, and go. */
static int expired_purged(const saef_mafd *m, const char *id, const saef_ks_record *rec)
{
    if (rec->not_after > (int64_t)time(NULL))
        return 0;
    saef_ks_del(m->ks, SAEF_KS_KC, id, strlen(id));
    return 1;
}

/*
 * MAF Client Registration (TS-0003 8.8.2.3-8.8.2.6). A client registers once
 * per administrating stakeholder, so mafClientRegID is derived from (MAF
 * Client ID, adminFQDN): the same pair always names the same registration.
 * Records: type creg, peer = the client, self = adminFQDN, meta = labels.
 */
static void creg_id(const char *client, const char *admin, char id[33], saef_ks_record *rec)
{
    unsigned char md[32];
    EVP_MD_CTX *c = EVP_MD_CTX_new();

    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    EVP_DigestUpdate(c, client, strlen(client) + 1); /* the NUL separates the two */
    EVP_DigestUpdate(c, admin, strlen(admin));
    EVP_DigestFinal_ex(c, md, NULL);
    EVP_MD_CTX_free(c);
    saef_hex_encode(md, 16, id);
    if (rec != NULL) {
        memcpy(rec->key, md, 16); /* a record needs key bytes; these are not secret */
        rec->key_len = 16;
    }
}

/* 1 with the live registration in *rec, 0 if none, -1 if it expired (purged). */
static int creg_get(const saef_mafd *m, const char *id, saef_ks_record *rec)
{
    if (strlen(id) != 32 || saef_ks_get(m->ks, SAEF_KS_CREG, id, 32, rec) != SAEF_KS_OK)
        return 0;
    if (rec->not_after > (int64_t)time(NULL))
        return 1;
    saef_ks_del(m->ks, SAEF_KS_CREG, id, 32);
    saef_ks_record_wipe(rec);
    return -1;
}

/* With require_reg: is the client registered for this stakeholder? */
static int registered(const saef_mafd *m, const char *client, const char *admin)
{
    char id[33];
    saef_ks_record rec;
    int ok;

    if (!m->require_reg)
        return 1;
    creg_id(client, admin, id, NULL);
    ok = creg_get(m, id, &rec) == 1 && strcmp(rec.peer, client) == 0;
    saef_ks_record_wipe(&rec);
    return ok;
}

static int64_t capped(int64_t want, int64_t now, long max)
{
    return want < now + max ? want : now + max;
}

/* The registration's adminFQDN (static buffer: one request at a time). */
static const char *admin_of(const saef_ks_record *rec)
{
    static char admin[SAEF_KS_ENTITY_MAX + 1];
    json_t *j = json_loads(rec->meta, 0, NULL);
    const char *a = json_string_value(json_object_get(j, "adminFQDN"));

    snprintf(admin, sizeof(admin), "%s", a != NULL ? a : "");
    json_decref(j);
    return admin;
}

/* The rest of an update (8.8.2.5, 8.8.2.9): a future expirationTime, capped at
   max, and labels go into rec, which is stored; *answer becomes out (consumed)
   with what changed. */
static int store_update(const saef_mafd *m, SAEF_KS_TYPE type, const char *id, saef_ks_record *rec,
                        const char *expires, json_t *labels, long max, json_t *out, json_t **answer)
{
    char exp[16];
    int64_t now = (int64_t)time(NULL), want;

    if (expires != NULL && (!saef_time_parse(expires, now, &want) || want <= now)) {
        json_decref(out);
        return error_answer(answer, 400, "expirationTime must be a future YYYYMMDDTHHMMSS");
    }
    if (expires != NULL) {
        rec->not_after = capped(want, now, max);
        timestamp(rec->not_after, exp);
        json_object_set_new(out, "expirationTime", json_string(exp));
    }
    if (labels != NULL) {
        if (!set_meta(rec, admin_of(rec), labels)) {
            json_decref(out);
            return error_answer(answer, 400, META_TOO_LONG);
        }
        json_object_set(out, "labels", labels);
    }
    if (saef_ks_put(m->ks, type, id, strlen(id), rec, SAEF_KS_REPLACE) != SAEF_KS_OK) {
        saef_mafd_log("%s", saef_ks_last_error(m->ks));
        json_decref(out);
        return error_answer(answer, 500, "registry error");
    }
    *answer = out;
    return 200;
}

/* 8.8.2.3: POST /clientReg. */
static int client_registration(const saef_mafd *m, const saef_mafd_request *req, json_t **answer)
{
    static const char *const allowed[] = {"MAF-FQDN", "expirationTime", "labels", "adminFQDN",
                                          NULL};
    char id[33], exp[16];
    const char *admin = NULL, *expires = NULL;
    json_t *j, *labels = NULL;
    saef_ks_record rec = {0}, old;
    int64_t now = (int64_t)time(NULL), want;
    int status;

    if ((j = read_request(m, req, allowed, answer, &status)) == NULL)
        return status;
    if (json_unpack(j, "{s:s, s?o, s:s}", "expirationTime", &expires, "labels", &labels,
                    "adminFQDN", &admin) != 0) {
        status = error_answer(answer, 400,
                              "expirationTime and adminFQDN are mandatory, with "
                              "the types of docs/maf-protocol.md");
        goto out;
    }
    if (!valid_labels(labels) || !saef_mafd_dns_name(admin)) {
        status = error_answer(answer, 400,
                              "labels must be a list of strings, adminFQDN a "
                              "domain name of at most 253 characters");
        goto out;
    }
    if (!saef_time_parse(expires, now, &want) || want <= now) {
        status = error_answer(answer, 400, "expirationTime must be a future YYYYMMDDTHHMMSS");
        goto out;
    }
    creg_id(req->client, admin, id, &rec);
    /* An expired registration gives way to the new one (creg_get purges it). */
    if (creg_get(m, id, &old) == 1) {
        saef_ks_record_wipe(&old);
        status = error_answer(answer, 409,
                              "already registered for %s as %s: update or "
                              "deregister it",
                              admin, id);
        goto out;
    }
    if (!set_meta(&rec, admin, labels)) {
        status = error_answer(answer, 400, META_TOO_LONG);
        goto out;
    }
    if ((status = over_quota(m, req->client, answer)) != 0)
        goto out;
    rec.not_after = capped(want, now, m->max_reg_lifetime);
    snprintf(rec.peer, sizeof(rec.peer), "%s", req->client);
    snprintf(rec.self, sizeof(rec.self), "%s", admin);
    if (saef_ks_put(m->ks, SAEF_KS_CREG, id, 32, &rec, 0) != SAEF_KS_OK) {
        saef_mafd_log("%s", saef_ks_last_error(m->ks));
        status = error_answer(answer, 500, "registry error");
        goto out;
    }
    timestamp(rec.not_after, exp);
    *answer = json_pack("{s:s, s:s, s:s, s:s}", "mafClientRegID", id, "expirationTime", exp,
                        "mafClientID", req->client, "adminFQDN", admin);
    if (labels != NULL)
        json_object_set(*answer, "labels", labels);
    rate_take(m, req->client);
    status = 201;
out:
    saef_ks_record_wipe(&rec);
    json_decref(j);
    return status;
}

/* 8.8.2.4-8.8.2.6: GET (configuration), PUT (update), DELETE /clientReg/ID. */
static int client_registration_change(const saef_mafd *m, const saef_mafd_request *req,
                                      const char *id, json_t **answer)
{
    static const char *const allowed[] = {"MAF-FQDN", "expirationTime", "labels", NULL};
    char exp[16];
    const char *expires = NULL;
    json_t *j = NULL, *labels = NULL, *cfg;
    saef_ks_record rec;
    int found = creg_get(m, id, &rec), status;

    if (found == 0)
        return error_answer(answer, 404, "no such client registration");
    if (found < 0)
        return error_answer(answer, 410, "the client registration expired");
    if (strcmp(rec.peer, req->client) != 0) {
        status = error_answer(answer, 403, "only the registered client may use it");
        goto out;
    }
    timestamp(rec.not_after, exp);
    if (req->method == EVHTTP_REQ_DELETE) {
        saef_ks_del(m->ks, SAEF_KS_CREG, id, 32);
        status = 204;
        goto out;
    }
    if (req->method == EVHTTP_REQ_GET) {
        /* mafClientCfg (TS-0003 12.4.2, sec:clientRegCfg). */
        cfg = json_pack("{s:s, s:s, s:s, s:i}", "fqdn", m->fqdn, "adminFQDN", rec.self,
                        "expirationTime", exp, "httpPort", m->port);
        if (m->coap_port != 0)
            json_object_set_new(cfg, "coapPort", json_integer(m->coap_port));
        add_meta(cfg, &rec);
        *answer = json_pack("{s:o}", "mafClientCfg", cfg);
        status = 200;
        goto out;
    }
    if ((j = read_request(m, req, allowed, answer, &status)) == NULL)
        goto out;
    if (json_unpack(j, "{s?s, s?o}", "expirationTime", &expires, "labels", &labels) != 0 ||
        (expires == NULL && labels == NULL) || !valid_labels(labels)) {
        status = error_answer(answer, 400,
                              "give expirationTime and/or labels "
                              "(docs/maf-protocol.md)");
        goto out;
    }
    status = store_update(m, SAEF_KS_CREG, id, &rec, expires, labels, m->max_reg_lifetime,
                          json_object(), answer);
out:
    saef_ks_record_wipe(&rec);
    json_decref(j);
    return status;
}

/* TS-0003 8.8.2.7: key registration by the source client. */
static int key_registration(const saef_mafd *m, const saef_mafd_request *req, json_t **answer)
{
    static const char *const allowed[] = {"MAF-FQDN", "expirationTime", "labels",   "adminFQDN",
                                          "SUID",     "targetIDs",      "keyValue", NULL};
    char id[SAEF_KS_ID_MAX + 1], exp[16];
    const char *admin = NULL, *expires = NULL, *keyhex = NULL, *target, *why;
    json_t *j, *labels = NULL, *targets = NULL;
    json_int_t suid = -1;
    unsigned char ekm[SAEF_EXPORT_LEN];
    saef_ks_record rec = {0};
    int64_t now = (int64_t)time(NULL), want;
    int status;

    if ((j = read_request(m, req, allowed, answer, &status)) == NULL)
        return status;
    if (json_unpack(j, "{s:s, s?o, s:s, s:I, s:o, s?s}", "expirationTime", &expires, "labels",
                    &labels, "adminFQDN", &admin, "SUID", &suid, "targetIDs", &targets, "keyValue",
                    &keyhex) != 0) {
        status = error_answer(answer, 400,
                              "expirationTime, adminFQDN, SUID and targetIDs are mandatory, "
                              "with the types of docs/maf-protocol.md");
        goto out;
    }
    if (!valid_labels(labels) || !saef_mafd_dns_name(admin)) {
        status = error_answer(answer, 400,
                              "labels must be a list of strings, adminFQDN a domain name of at "
                              "most 253 characters");
        goto out;
    }
    if (!set_meta(&rec, admin, labels)) {
        status = error_answer(answer, 400, META_TOO_LONG);
        goto out;
    }
    if (suid != SAEF_SUID_MAF_SAEF) {
        status = error_answer(answer, 400, "SUID %lld: this MAF registers keys for the SAEF (%d)",
                              (long long)suid, SAEF_SUID_MAF_SAEF);
        goto out;
    }
    /* TS-0003 8.8.2.7: for the SAEF exactly one Absolute CSE-ID or AE-ID. */
    if (!json_is_array(targets) || json_array_size(targets) != 1 ||
        !json_is_string(json_array_get(targets, 0)) ||
        !saef_mafd_absolute_id(target = json_string_value(json_array_get(targets, 0)))) {
        status = error_answer(answer, 400,
                              "targetIDs must hold exactly one Absolute CSE-ID or AE-ID (//sp/id)");
        goto out;
    }
    if (!saef_time_parse(expires, now, &want) || want <= now) {
        status = error_answer(answer, 400, "expirationTime must be a future YYYYMMDDTHHMMSS");
        goto out;
    }
    if ((why = unknown_target(m, target)) != NULL) {
        status = error_answer(answer, 403, "target %s refused: %s", target, why);
        goto out;
    }
    if (!registered(m, req->client, admin)) {
        status = error_answer(answer, 403, "register with this MAF for %s first (POST /clientReg)",
                              admin);
        goto out;
    }
    if ((status = over_quota(m, req->client, answer)) != 0)
        goto out;
    /* The MAF's policy caps the lifetime; the answer says what it decided. */
    rec.not_after = capped(want, now, m->max_lifetime);
    if (keyhex == NULL) {
        /* TS-0003 10.3.1: both ends export the same bytes: KcID, then Kc. */
        if (SSL_version(req->ssl) != TLS1_3_VERSION && SSL_get_extms_support(req->ssl) != 1) {
            status =
                error_answer(answer, 400, "key export needs Extended Master Secret (RFC 7627)");
            goto out;
        }
        if (SSL_export_keying_material(req->ssl, ekm, sizeof(ekm), SAEF_EXPORTER_LABEL,
                                       strlen(SAEF_EXPORTER_LABEL), NULL, 0, 0) != 1) {
            status = error_answer(answer, 500, "key export failed");
            goto out;
        }
        memcpy(rec.key, ekm + SAEF_KCID_LEN, SAEF_KC_LEN);
        rec.key_len = SAEF_KC_LEN;
    } else {
        int n = saef_hex_decode(keyhex, strlen(keyhex), rec.key, sizeof(rec.key)), zero = 0;
        if (n < 16 || n > 64) {
            status = error_answer(answer, 400, "keyValue must be 16 to 64 bytes of hex");
            goto out;
        }
        for (int i = 0; i < n; i++)
            zero |= rec.key[i];
        if (zero == 0) {
            status = error_answer(answer, 400, "keyValue is all zero: give a random key");
            goto out;
        }
        rec.key_len = (size_t)n;
        if (RAND_bytes(ekm, SAEF_KCID_LEN) != 1) {
            status = error_answer(answer, 500, "random generator failed");
            goto out;
        }
    }
    saef_hex_encode(ekm, SAEF_KCID_LEN, id);
    snprintf(id + SAEF_KCID_HEX_LEN, sizeof(id) - SAEF_KCID_HEX_LEN, "@%s", m->fqdn);
    snprintf(rec.peer, sizeof(rec.peer), "%s", target);
    snprintf(rec.self, sizeof(rec.self), "%s", req->client);
    rec.suid = SAEF_SUID_MAF_SAEF;
    /* Committed (and synced by LMDB) before the answer: nothing lost on a crash. */
    switch (saef_ks_put(m->ks, SAEF_KS_KC, id, strlen(id), &rec, 0)) {
    case SAEF_KS_OK: break;
    case SAEF_KS_EEXISTS:
        status = error_answer(answer, 409, "this TLS session already registered its key");
        goto out;
    default:
        saef_mafd_log("%s", saef_ks_last_error(m->ks));
        status = error_answer(answer, 500, "registry error");
        goto out;
    }
    id[32] = '\0';
    timestamp(rec.not_after, exp);
    *answer = json_pack("{s:s, s:s, s:s, s:s, s:I, s:[s]}", "relativeKeyID", id, "expirationTime",
                        exp, "sourceMAFClientID", req->client, "adminFQDN", admin, "SUID",
                        (json_int_t)SAEF_SUID_MAF_SAEF, "targetIDs", target);
    if (labels != NULL)
        json_object_set(*answer, "labels", labels);
    rate_take(m, req->client);
    status = 201;
out:
    OPENSSL_cleanse(ekm, sizeof(ekm));
    saef_ks_record_wipe(&rec);
    json_decref(j);
    return status;
}

/* TS-0003 8.8.2.8: key retrieval by a target client. */
static int key_retrieval(const saef_mafd *m, const saef_mafd_request *req, json_t **answer)
{
    static const char *const allowed[] = {"relativeKeyID", NULL};
    char id[SAEF_KS_ID_MAX + 1], exp[16], hex[2 * SAEF_KS_KEY_MAX + 1];
    const char *rel = NULL;
    saef_ks_record rec;
    int found, status;
    json_t *j = read_request(m, req, allowed, answer, &status);

    if (j == NULL)
        return status;
    if (json_unpack(j, "{s:s}", "relativeKeyID", &rel) != 0) {
        status = error_answer(answer, 400, "the body is {\"relativeKeyID\": HEX32}");
        goto out;
    }
    if ((found = get_registration(m, rel, &rec, id)) < 0) {
        status = error_answer(answer, 400, "relativeKeyID must be 32 hex digits");
        goto out;
    }
    if (!found) {
        status = error_answer(answer, 404, "no such key registration");
        goto out;
    }
    if (expired_purged(m, id, &rec)) {
        status = error_answer(answer, 410, "the key registration expired");
    } else if (strcmp(rec.peer, req->client) != 0) {
        /* TS-0003 8.8.2.8 step 4: only an authorised target gets the key. */
        status = error_answer(answer, 403, "this client is not a target of the key");
    } else if (!registered(m, req->client, admin_of(&rec))) {
        status = error_answer(answer, 403, "register with this MAF for %s first (POST /clientReg)",
                              admin_of(&rec));
    } else {
        saef_hex_encode(rec.key, rec.key_len, hex);
        timestamp(rec.not_after, exp);
        *answer = json_pack("{s:s, s:s, s:s, s:I}", "keyValue", hex, "expirationTime", exp,
                            "sourceMAFClientID", rec.self, "SUID", (json_int_t)rec.suid);
        add_meta(*answer, &rec);
        OPENSSL_cleanse(hex, sizeof(hex));
        status = 200;
    }
    saef_ks_record_wipe(&rec);
out:
    json_decref(j);
    return status;
}

/* TS-0003 8.8.2.9 / 8.8.2.10: update and deregistration by the source client. */
static int key_registration_change(const saef_mafd *m, const saef_mafd_request *req,
                                   const char *rel, json_t **answer)
{
    static const char *const allowed[] = {"MAF-FQDN", "expirationTime", "labels", "targetIDs",
                                          NULL};
    char id[SAEF_KS_ID_MAX + 1];
    json_t *j = NULL, *labels = NULL, *targets = NULL, *out;
    const char *expires = NULL, *target = NULL, *why;
    saef_ks_record rec;
    int found = get_registration(m, rel, &rec, id), status;

    if (found < 0)
        return error_answer(answer, 400, "the key is /keyReg/HEX32");
    if (!found)
        return error_answer(answer, 404, "no such key registration");
    if (expired_purged(m, id, &rec)) {
        status = error_answer(answer, 410, "the key registration expired");
        goto out;
    }
    if (strcmp(rec.self, req->client) != 0) {
        status = error_answer(answer, 403, "only the source client may change it");
        goto out;
    }
    if (req->method == EVHTTP_REQ_DELETE) {
        saef_ks_del(m->ks, SAEF_KS_KC, id, strlen(id));
        status = 204;
        goto out;
    }
    if ((j = read_request(m, req, allowed, answer, &status)) == NULL)
        goto out;
    if (json_unpack(j, "{s?s, s?o, s?o}", "expirationTime", &expires, "labels", &labels,
                    "targetIDs", &targets) != 0 ||
        (expires == NULL && labels == NULL && targets == NULL) || !valid_labels(labels)) {
        status = error_answer(answer, 400,
                              "give at least one of expirationTime, labels, "
                              "targetIDs (docs/maf-protocol.md)");
        goto out;
    }
    if (targets != NULL &&
        (!json_is_array(targets) || json_array_size(targets) != 1 ||
         !json_is_string(json_array_get(targets, 0)) ||
         !saef_mafd_absolute_id(target = json_string_value(json_array_get(targets, 0))))) {
        status =
            error_answer(answer, 400, "targetIDs must hold exactly one Absolute CSE-ID or AE-ID");
        goto out;
    }
    if (target != NULL && (why = unknown_target(m, target)) != NULL) {
        status = error_answer(answer, 403, "target %s refused: %s", target, why);
        goto out;
    }
    out = json_object();
    if (target != NULL) {
        snprintf(rec.peer, sizeof(rec.peer), "%s", target);
        json_object_set(out, "targetIDs", targets);
    }
    status = store_update(m, SAEF_KS_KC, id, &rec, expires, labels, m->max_lifetime, out, answer);
out:
    saef_ks_record_wipe(&rec);
    json_decref(j);
    return status;
}

int saef_mafd_handle(const saef_mafd *m, const saef_mafd_request *req, json_t **answer)
{
    const char *path = req->path;
    enum evhttp_cmd_type cmd = req->method;
    json_t *id;

    *answer = NULL;
    /* Every answer may name the client: its ID must be valid in JSON (UTF-8). */
    if (req->client == NULL || path == NULL || (id = json_string(req->client)) == NULL)
        return error_answer(answer, 401, "not (or no longer) an authenticated MAF client");
    json_decref(id);
    if (strcmp(path, "/keyReg") == 0) {
        if (cmd != EVHTTP_REQ_POST)
            return error_answer(answer, 405, "use POST /keyReg");
        return key_registration(m, req, answer);
    }
    if (strcmp(path, "/keyRetrieve") == 0) {
        if (cmd != EVHTTP_REQ_POST)
            return error_answer(answer, 405, "use POST /keyRetrieve");
        return key_retrieval(m, req, answer);
    }
    if (strcmp(path, "/clientReg") == 0) {
        if (cmd != EVHTTP_REQ_POST)
            return error_answer(answer, 405, "use POST /clientReg");
        return client_registration(m, req, answer);
    }
    if (strncmp(path, "/clientReg/", 11) == 0) {
        if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_PUT && cmd != EVHTTP_REQ_DELETE)
            return error_answer(answer, 405, "use GET, PUT or DELETE /clientReg/ID");
        return client_registration_change(m, req, path + 11, answer);
    }
    if (strncmp(path, "/keyReg/", 8) == 0) {
        if (cmd != EVHTTP_REQ_PUT && cmd != EVHTTP_REQ_DELETE)
            return error_answer(answer, 405, "use PUT or DELETE /keyReg/HEX32");
        return key_registration_change(m, req, path + 8, answer);
    }
    return error_answer(answer, 404, "no such resource (see docs/maf-protocol.md)");
}

int saef_mafd_km_client(const saef_mafd *m, const char *kmid, char id[SAEF_KS_ENTITY_MAX + 1],
                        unsigned char digest[32])
{
    saef_ks_record rec;
    int ok;

    if (kmid == NULL || saef_ks_get(m->ks, SAEF_KS_KM, kmid, strlen(kmid), &rec) != SAEF_KS_OK)
        return 0;
    ok = rec.not_after == 0 || rec.not_after > (int64_t)time(NULL);
    if (rec.peer[0] != '\0')
        snprintf(id, SAEF_KS_ENTITY_MAX + 1, "%s", rec.peer);
    else
        snprintf(id, SAEF_KS_ENTITY_MAX + 1, SAEF_CREDID_KM "%s", kmid);
    ok = ok && SHA256(rec.key, rec.key_len, digest) != NULL;
    saef_ks_record_wipe(&rec);
    return ok;
}

/* Expired registrations go, also those nobody asks for: collected in
   batches, until none is left. One transaction per delete: a batched
   delete of many records can leave the file shorter than LMDB's last page,
   which the keystore then refuses as truncated. */
#define PURGE_BATCH 4096

typedef struct {
    char ids[PURGE_BATCH][SAEF_KS_ID_MAX + 1];
    size_t n;
    int64_t now;
} expired_list;

static int collect_expired(SAEF_KS_TYPE type, const char *id, size_t id_len,
                           const saef_ks_record *rec, void *arg)
{
    expired_list *l = arg;

    (void)type;
    if (rec->not_after != 0 && rec->not_after <= l->now) {
        memcpy(l->ids[l->n], id, id_len);
        l->ids[l->n++][id_len] = '\0';
    }
    return l->n == PURGE_BATCH;
}

void saef_mafd_purge(const saef_mafd *m)
{
    static expired_list l;

    l.now = (int64_t)time(NULL);
    for (SAEF_KS_TYPE t = SAEF_KS_KC; t <= SAEF_KS_CREG; t++) {
        do {
            l.n = 0;
            if (saef_ks_iter(m->ks, t, collect_expired, &l) != SAEF_KS_OK) {
                saef_mafd_log("purge: %s", saef_ks_last_error(m->ks));
                return;
            }
            for (size_t i = 0; i < l.n; i++)
                saef_ks_del(m->ks, t, l.ids[i], strlen(l.ids[i]));
        } while (l.n == PURGE_BATCH);
    }
    rate_prune(m);
}

static int no_admin(SAEF_KS_TYPE type, const char *id, size_t id_len, const saef_ks_record *rec,
                    void *arg)
{
    (void)type;
    if (rec->meta[0] != '\0')
        return 0;
    memcpy(arg, id, id_len + 1);
    return 1;
}

int saef_mafd_foreign_kc(const saef_mafd *m, char id[SAEF_KS_ID_MAX + 1])
{
    id[0] = '\0';
    saef_ks_iter(m->ks, SAEF_KS_KC, no_admin, id);
    return id[0] != '\0';
}
