/*
 * saef-mafd: a M2M Authentication Function (TS-0003 8.8) for the MAF-based
 * SAEF. HTTPS over TLS-PSK (clients authenticate with KmID/Km); the HTTP/JSON
 * mapping is in docs/maf-protocol.md. Registrations are kc records in the
 * MAF's own saef store: identity RelativeKeyID@MAF-FQDN, peer = the target,
 * self = the source client, meta = adminFQDN and labels.
 */
#include "saef-internal.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/http.h>
#include <getopt.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SUID_SAEF 32
#define EKM_LABEL "EXPORTER-oneM2M-Connection"

static struct {
    const char *store, *fqdn, *listen;
    long max_lifetime, max_body;
    saef_ks *ks; /* read-write: the MAF writes registrations */
    SSL_CTX *ssl;
} g = {NULL, NULL, "127.0.0.1:8443", 86400, 16384, NULL, NULL};

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void logf_(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "saef-mafd: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static SSL *req_ssl(struct evhttp_request *req)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);

    return conn != NULL ? bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(conn))
                        : NULL;
}

/* Answers status with a JSON body (consumed) and logs the request. */
static void reply(struct evhttp_request *req, int status, json_t *body, const char *client)
{
    struct evbuffer *out = evbuffer_new();
    char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;

    if (text != NULL) {
        evbuffer_add_printf(out, "%s\n", text);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "application/json");
    }
    logf_("%s %s -> %d client=%s", evhttp_request_get_command(req) == EVHTTP_REQ_POST ? "POST"
                                   : evhttp_request_get_command(req) == EVHTTP_REQ_PUT ? "PUT"
                                   : evhttp_request_get_command(req) == EVHTTP_REQ_DELETE
                                       ? "DELETE"
                                       : "other",
          evhttp_request_get_uri(req), status, client != NULL ? client : "-");
    evhttp_send_reply(req, status, NULL, out);
    /* Key bytes may be in the answer (retrieval): wipe our copy. */
    if (text != NULL) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
    json_decref(body);
    evbuffer_free(out);
}

static void error_reply(struct evhttp_request *req, int status, const char *client,
                        const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void error_reply(struct evhttp_request *req, int status, const char *client,
                        const char *fmt, ...)
{
    char msg[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    reply(req, status, json_pack("{s:s}", "error", msg), client);
}

static json_t *read_json(struct evhttp_request *req, char *err, size_t errlen)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    json_error_t jerr;
    json_t *j;

    j = json_loadb((const char *)evbuffer_pullup(in, (ssize_t)len), len, JSON_REJECT_DUPLICATES,
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

    json_object_foreach(j, k, v) {
        int ok = 0;
        (void)v;
        for (const char *const *a = allowed; *a != NULL; a++)
            ok |= strcmp(k, *a) == 0;
        if (!ok)
            return k;
    }
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

/* An Absolute CSE-ID or AE-ID: "//sp-fqdn/..." (TS-0001 7.2), kept strict. */
static int absolute_id(const char *id)
{
    size_t n = strlen(id);

    if (n < 4 || n > SAEF_KS_ENTITY_MAX || strncmp(id, "//", 2) != 0 || strchr(id + 2, '/') == NULL)
        return 0;
    for (const char *p = id; *p; p++)
        if (*p <= ' ' || *p > '~')
            return 0;
    return 1;
}

/* The registration's metadata as stored: adminFQDN and labels. */
static void set_meta(saef_ks_record *rec, const char *admin, json_t *labels)
{
    json_t *m = json_pack("{s:s}", "adminFQDN", admin);
    char *text;

    if (labels != NULL)
        json_object_set(m, "labels", labels);
    text = json_dumps(m, JSON_COMPACT);
    snprintf(rec->meta, sizeof(rec->meta), "%s", text != NULL ? text : "");
    free(text);
    json_decref(m);
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

static int get_registration(const char *rel, saef_ks_record *rec, char *id)
{
    unsigned char kcid[16];

    if (strlen(rel) != 32 || saef_hex_decode(rel, 32, kcid, sizeof(kcid)) != 16)
        return -1;
    saef_hex_encode(kcid, 16, id); /* canonical upper case */
    snprintf(id + 32, SAEF_KS_ID_MAX + 1 - 32, "@%s", g.fqdn);
    return saef_ks_get(g.ks, SAEF_KS_KC, id, strlen(id), rec) == SAEF_KS_OK;
}

/* Expired registrations are never released, and go. */
static int expired_purged(const char *id, const saef_ks_record *rec)
{
    if (rec->not_after > (int64_t)time(NULL))
        return 0;
    saef_ks_del(g.ks, SAEF_KS_KC, id, strlen(id));
    return 1;
}

/* TS-0003 8.8.2.7: key registration by the source client. */
static void key_registration(struct evhttp_request *req, SSL *ssl, const char *client)
{
    static const char *const allowed[] = {"MAF-FQDN", "expirationTime", "labels", "adminFQDN",
                                          "SUID", "targetIDs", "keyValue", NULL};
    char err[256], id[SAEF_KS_ID_MAX + 1], exp[16];
    const char *admin = NULL, *expires = NULL, *keyhex = NULL, *fqdn = NULL, *bad, *target;
    json_t *j = read_json(req, err, sizeof(err)), *labels = NULL, *targets = NULL, *out;
    json_int_t suid = -1;
    unsigned char ekm[48];
    saef_ks_record rec = {0};
    int64_t now = (int64_t)time(NULL), want;

    if (j == NULL)
        return error_reply(req, 400, client, "%s", err);
    if ((bad = unknown_field(j, allowed)) != NULL) {
        error_reply(req, 400, client, "unknown field '%s'", bad);
        goto out;
    }
    if (json_unpack_ex(j, NULL, 0, "{s?s, s:s, s?o, s:s, s:I, s:o, s?s}", "MAF-FQDN", &fqdn,
                       "expirationTime", &expires, "labels", &labels, "adminFQDN", &admin,
                       "SUID", &suid, "targetIDs", &targets, "keyValue", &keyhex) != 0) {
        error_reply(req, 400, client,
                    "expirationTime, adminFQDN, SUID and targetIDs are mandatory, with the "
                    "types of docs/maf-protocol.md");
        goto out;
    }
    if (fqdn != NULL && strcasecmp(fqdn, g.fqdn) != 0) {
        error_reply(req, 400, client, "MAF-FQDN %s is not this MAF (%s)", fqdn, g.fqdn);
        goto out;
    }
    if (!valid_labels(labels) || *admin == '\0') {
        error_reply(req, 400, client, "labels must be a list of strings, adminFQDN not empty");
        goto out;
    }
    if (suid != SUID_SAEF) {
        error_reply(req, 400, client, "SUID %lld: this MAF registers keys for the SAEF (32)",
                    (long long)suid);
        goto out;
    }
    /* TS-0003 8.8.2.7: for the SAEF exactly one Absolute CSE-ID or AE-ID. */
    if (!json_is_array(targets) || json_array_size(targets) != 1 ||
        !json_is_string(json_array_get(targets, 0)) ||
        !absolute_id(target = json_string_value(json_array_get(targets, 0)))) {
        error_reply(req, 400, client,
                    "targetIDs must hold exactly one Absolute CSE-ID or AE-ID (//sp/id)");
        goto out;
    }
    if (!saef_time_parse(expires, now, &want) || want <= now) {
        error_reply(req, 400, client, "expirationTime must be a future YYYYMMDDTHHMMSS");
        goto out;
    }
    /* The MAF's policy caps the lifetime; the answer says what it decided. */
    rec.not_after = want < now + g.max_lifetime ? want : now + g.max_lifetime;
    if (keyhex == NULL) {
        /* TS-0003 10.3.1: both ends export 48 bytes; KcID = 0-15, Kc = 16-47. */
        if (SSL_version(ssl) == TLS1_2_VERSION && SSL_get_extms_support(ssl) != 1) {
            error_reply(req, 400, client, "key export needs Extended Master Secret (RFC 7627)");
            goto out;
        }
        if (SSL_export_keying_material(ssl, ekm, sizeof(ekm), EKM_LABEL, strlen(EKM_LABEL), NULL,
                                       0, 0) != 1) {
            error_reply(req, 500, client, "key export failed");
            goto out;
        }
        memcpy(rec.key, ekm + 16, 32);
        rec.key_len = 32;
    } else {
        int n = saef_hex_decode(keyhex, strlen(keyhex), rec.key, sizeof(rec.key));
        if (n < 16 || n > 64) {
            error_reply(req, 400, client, "keyValue must be 16 to 64 bytes of hex");
            goto out;
        }
        rec.key_len = (size_t)n;
        if (RAND_bytes(ekm, 16) != 1) {
            error_reply(req, 500, client, "random generator failed");
            goto out;
        }
    }
    saef_hex_encode(ekm, 16, id);
    snprintf(id + 32, sizeof(id) - 32, "@%s", g.fqdn);
    snprintf(rec.peer, sizeof(rec.peer), "%s", target);
    snprintf(rec.self, sizeof(rec.self), "%s", client);
    rec.suid = SUID_SAEF;
    set_meta(&rec, admin, labels);
    /* Committed (and synced by LMDB) before the answer: nothing lost on a crash. */
    switch (saef_ks_put(g.ks, SAEF_KS_KC, id, strlen(id), &rec, 0)) {
    case SAEF_KS_OK:
        break;
    case SAEF_KS_EEXISTS:
        error_reply(req, 409, client, "this TLS session already registered its key");
        goto out;
    default:
        logf_("%s", saef_ks_last_error(g.ks));
        error_reply(req, 500, client, "registry error");
        goto out;
    }
    id[32] = '\0';
    timestamp(rec.not_after, exp);
    out = json_pack("{s:s, s:s, s:s, s:s, s:I, s:[s]}", "relativeKeyID", id, "expirationTime", exp,
                    "sourceMAFClientID", client, "adminFQDN", admin, "SUID", (json_int_t)SUID_SAEF,
                    "targetIDs", target);
    if (labels != NULL)
        json_object_set(out, "labels", labels);
    reply(req, 201, out, client);
out:
    OPENSSL_cleanse(ekm, sizeof(ekm));
    saef_ks_record_wipe(&rec);
    json_decref(j);
}

/* TS-0003 8.8.2.8: key retrieval by a target client. */
static void key_retrieval(struct evhttp_request *req, const char *client)
{
    static const char *const allowed[] = {"relativeKeyID", NULL};
    char err[256], id[SAEF_KS_ID_MAX + 1], exp[16], hex[2 * SAEF_KS_KEY_MAX + 1];
    const char *rel = NULL, *bad;
    json_t *j = read_json(req, err, sizeof(err)), *out;
    saef_ks_record rec;
    int found;

    if (j == NULL)
        return error_reply(req, 400, client, "%s", err);
    if ((bad = unknown_field(j, allowed)) != NULL || json_unpack(j, "{s:s}", "relativeKeyID", &rel) != 0) {
        error_reply(req, 400, client, "the body is {\"relativeKeyID\": HEX32}");
        goto out;
    }
    if ((found = get_registration(rel, &rec, id)) < 0) {
        error_reply(req, 400, client, "relativeKeyID must be 32 hex digits");
        goto out;
    }
    if (!found) {
        error_reply(req, 404, client, "no such key registration");
        goto out;
    }
    if (expired_purged(id, &rec)) {
        error_reply(req, 410, client, "the key registration expired");
    } else if (strcmp(rec.peer, client) != 0) {
        /* TS-0003 8.8.2.8 step 4: only an authorised target gets the key. */
        error_reply(req, 403, client, "this client is not a target of the key");
    } else {
        saef_hex_encode(rec.key, rec.key_len, hex);
        timestamp(rec.not_after, exp);
        out = json_pack("{s:s, s:s, s:s, s:I}", "keyValue", hex, "expirationTime", exp,
                        "sourceMAFClientID", rec.self, "SUID", (json_int_t)rec.suid);
        add_meta(out, &rec);
        reply(req, 200, out, client);
        OPENSSL_cleanse(hex, sizeof(hex));
    }
    saef_ks_record_wipe(&rec);
out:
    json_decref(j);
}

/* TS-0003 8.8.2.9 / 8.8.2.10: update and deregistration by the source client. */
static void key_registration_change(struct evhttp_request *req, const char *rel,
                                    const char *client, int delete)
{
    static const char *const allowed[] = {"MAF-FQDN", "expirationTime", "labels", "targetIDs",
                                          NULL};
    char err[256], id[SAEF_KS_ID_MAX + 1], exp[16];
    json_t *j = NULL, *labels = NULL, *targets = NULL, *out, *meta;
    const char *expires = NULL, *bad, *target = NULL, *fqdn = NULL;
    saef_ks_record rec;
    int64_t now = (int64_t)time(NULL), want;
    int found = get_registration(rel, &rec, id);

    if (found < 0)
        return error_reply(req, 400, client, "the key is /keyReg/HEX32");
    if (!found)
        return error_reply(req, 404, client, "no such key registration");
    if (expired_purged(id, &rec)) {
        saef_ks_record_wipe(&rec);
        return error_reply(req, 410, client, "the key registration expired");
    }
    if (strcmp(rec.self, client) != 0) {
        saef_ks_record_wipe(&rec);
        return error_reply(req, 403, client, "only the source client may change it");
    }
    if (delete) {
        saef_ks_del(g.ks, SAEF_KS_KC, id, strlen(id));
        saef_ks_record_wipe(&rec);
        return reply(req, 204, NULL, client);
    }
    if ((j = read_json(req, err, sizeof(err))) == NULL) {
        error_reply(req, 400, client, "%s", err);
        goto out;
    }
    if ((bad = unknown_field(j, allowed)) != NULL ||
        json_unpack(j, "{s?s, s?s, s?o, s?o}", "MAF-FQDN", &fqdn, "expirationTime", &expires,
                    "labels", &labels, "targetIDs", &targets) != 0 ||
        (expires == NULL && labels == NULL && targets == NULL) || !valid_labels(labels)) {
        error_reply(req, 400, client,
                    "give at least one of expirationTime, labels, targetIDs (docs/maf-protocol.md)");
        goto out;
    }
    if (targets != NULL &&
        (!json_is_array(targets) || json_array_size(targets) != 1 ||
         !json_is_string(json_array_get(targets, 0)) ||
         !absolute_id(target = json_string_value(json_array_get(targets, 0))))) {
        error_reply(req, 400, client, "targetIDs must hold exactly one Absolute CSE-ID or AE-ID");
        goto out;
    }
    if (expires != NULL && (!saef_time_parse(expires, now, &want) || want <= now)) {
        error_reply(req, 400, client, "expirationTime must be a future YYYYMMDDTHHMMSS");
        goto out;
    }
    out = json_object();
    if (expires != NULL) {
        rec.not_after = want < now + g.max_lifetime ? want : now + g.max_lifetime;
        timestamp(rec.not_after, exp);
        json_object_set_new(out, "expirationTime", json_string(exp));
    }
    if (target != NULL) {
        snprintf(rec.peer, sizeof(rec.peer), "%s", target);
        json_object_set(out, "targetIDs", targets);
    }
    if (labels != NULL) {
        meta = json_loads(rec.meta, 0, NULL);
        set_meta(&rec, json_string_value(json_object_get(meta, "adminFQDN")), labels);
        json_decref(meta);
        json_object_set(out, "labels", labels);
    }
    if (saef_ks_put(g.ks, SAEF_KS_KC, id, strlen(id), &rec, SAEF_KS_REPLACE) != SAEF_KS_OK) {
        json_decref(out);
        error_reply(req, 500, client, "registry error");
        goto out;
    }
    reply(req, 200, out, client);
out:
    saef_ks_record_wipe(&rec);
    json_decref(j);
}

static void handle(struct evhttp_request *req, void *arg)
{
    SSL *ssl = req_ssl(req);
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    const char *client = ssl != NULL ? saef_ssl_peer_entity(ssl) : NULL;
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);

    (void)arg;
    if (client == NULL || path == NULL)
        return error_reply(req, 401, NULL, "not an authenticated MAF client");
    if (strcmp(path, "/keyReg") == 0) {
        if (cmd != EVHTTP_REQ_POST)
            return error_reply(req, 405, client, "use POST /keyReg");
        return key_registration(req, ssl, client);
    }
    if (strcmp(path, "/keyRetrieve") == 0) {
        if (cmd != EVHTTP_REQ_POST)
            return error_reply(req, 405, client, "use POST /keyRetrieve");
        return key_retrieval(req, client);
    }
    if (strncmp(path, "/keyReg/", 8) == 0) {
        if (cmd != EVHTTP_REQ_PUT && cmd != EVHTTP_REQ_DELETE)
            return error_reply(req, 405, client, "use PUT or DELETE /keyReg/HEX32");
        return key_registration_change(req, path + 8, client, cmd == EVHTTP_REQ_DELETE);
    }
    error_reply(req, 404, client, "no such resource (see docs/maf-protocol.md)");
}

static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
    (void)arg;
    return bufferevent_openssl_socket_new(base, -1, SSL_new(g.ssl), BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

/* Expired registrations go, also those nobody asks for (256 a minute). */
typedef struct {
    char ids[256][SAEF_KS_ID_MAX + 1];
    size_t n;
} expired_list;

static int collect_expired(SAEF_KS_TYPE type, const char *id, size_t id_len,
                           const saef_ks_record *rec, void *arg)
{
    expired_list *l = arg;

    (void)type;
    if (rec->not_after != 0 && rec->not_after <= (int64_t)time(NULL)) {
        memcpy(l->ids[l->n], id, id_len);
        l->ids[l->n++][id_len] = '\0';
    }
    return l->n == 256;
}

static void purge(evutil_socket_t fd, short what, void *arg)
{
    static expired_list l;

    (void)fd, (void)what, (void)arg;
    l.n = 0;
    saef_ks_iter(g.ks, SAEF_KS_KC, collect_expired, &l);
    for (size_t i = 0; i < l.n; i++)
        saef_ks_del(g.ks, SAEF_KS_KC, l.ids[i], strlen(l.ids[i]));
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    event_base_loopbreak(arg);
}

static const char usage[] =
    "usage: saef-mafd --store STORE --fqdn MAF-FQDN [--listen HOST:PORT]\n"
    "                 [--max-lifetime SECONDS] [--max-body BYTES]\n";

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"store", required_argument, NULL, 's'},  {"fqdn", required_argument, NULL, 'f'},
        {"listen", required_argument, NULL, 'l'}, {"max-lifetime", required_argument, NULL, 'L'},
        {"max-body", required_argument, NULL, 'B'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char host[256], err[256], probe[300];
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *tick, *sigint, *sigterm;
    struct timeval minute = {60, 0};
    saef_conf conf;
    saef_ctx *s;
    int c, port, one = 1;

    /* Requests and answers carry keys: their buffers are wiped when freed. */
    event_set_mem_functions(malloc, saef_wipe_realloc, saef_wipe_free);
    json_set_alloc_funcs(malloc, saef_wipe_free);
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': g.store = optarg; break;
        case 'f': g.fqdn = optarg; break;
        case 'l': g.listen = optarg; break;
        case 'L': g.max_lifetime = atol(optarg); break;
        case 'B': g.max_body = atol(optarg); break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    snprintf(probe, sizeof(probe), "x@%s", g.fqdn != NULL ? g.fqdn : "");
    if (g.store == NULL || g.fqdn == NULL || optind != argc || g.max_lifetime < 1 ||
        g.max_body < 256 || strlen(g.fqdn) > 95 || !saef_id_is_conforming(probe, strlen(probe))) {
        fprintf(stderr, "saef-mafd: --store and --fqdn (a DNS name of at most 95 characters) "
                        "are required; lifetimes and sizes must be positive\n%s", usage);
        return 2;
    }
    if (sscanf(g.listen, "%255[^:]:%d", host, &port) != 2 || port < 1 || port > 65535) {
        fprintf(stderr, "saef-mafd: bad --listen '%s' (HOST:PORT)\n", g.listen);
        return 2;
    }
    if (saef_ks_open(g.store, 0, &g.ks) != SAEF_KS_OK) {
        fprintf(stderr, "saef-mafd: %s\n", saef_ks_last_error(NULL));
        return 3;
    }
    saef_conf_init(&conf);
    if (!saef_conf_set(&conf, "store", g.store, err, sizeof(err)) ||
        (s = saef_new(&conf)) == NULL) {
        fprintf(stderr, "saef-mafd: %s\n", err);
        return 2;
    }
    g.ssl = SSL_CTX_new(TLS_server_method());
    if (g.ssl != NULL)
        SSL_CTX_set_options(g.ssl, SSL_OP_CLEANSE_PLAINTEXT);
    if (g.ssl == NULL || !saef_ssl_ctx_maf_server(g.ssl, s)) {
        fprintf(stderr, "saef-mafd: cannot set up TLS\n");
        return 3;
    }
    saef_free(s);
    signal(SIGPIPE, SIG_IGN);
    base = event_base_new();
    http = evhttp_new(base);
    evhttp_set_bevcb(http, make_bev, NULL);
    evhttp_set_gencb(http, handle, NULL);
    evhttp_set_max_body_size(http, (ev_ssize_t)g.max_body);
    evhttp_set_max_headers_size(http, 8192);
    evhttp_set_timeout(http, 10);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                         EVHTTP_REQ_GET);
    if ((bound = evhttp_bind_socket_with_handle(http, host, (ev_uint16_t)port)) == NULL) {
        fprintf(stderr, "saef-mafd: cannot listen on %s\n", g.listen);
        return 3;
    }
    /* Accepted sockets inherit it: an answer written in two TLS records
       would otherwise wait for the client's delayed ACK (40 ms). */
    setsockopt(evhttp_bound_socket_get_fd(bound), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    tick = event_new(base, -1, EV_PERSIST, purge, NULL);
    event_add(tick, &minute);
    sigint = evsignal_new(base, SIGINT, on_signal, base);
    sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    event_add(sigint, NULL);
    event_add(sigterm, NULL);
    logf_("MAF %s listening on %s, store %s", g.fqdn, g.listen, g.store);
    event_base_dispatch(base);
    logf_("stopping");
    event_free(tick);
    event_free(sigint);
    event_free(sigterm);
    evhttp_free(http);
    event_base_free(base);
    SSL_CTX_free(g.ssl);
    saef_ks_close(g.ks);
    return 0;
}
