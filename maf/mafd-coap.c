/*
 * saef-mafd --listen-coaps: the MAF's procedures as CoAP requests with JSON
 * payloads over DTLS 1.2 PSK (TS-0003 8.8.2.2 says "(D)TLS"); the mapping is
 * in docs/maf-protocol.md. The registry is the one the HTTPS listener uses.
 *
 * libcoap runs on saef-mafd's libevent loop: an event on libcoap's epoll
 * descriptor, which also holds libcoap's timerfd (retransmissions, DTLS
 * timers, idle sessions). One thread, so the registry (its rate and quota
 * state, LMDB's write transactions) needs no locks.
 */
#include "mafd-coap.h"

#include <coap3/coap.h>
#include <netdb.h>
#include <openssl/rand.h>
#include <openssl/sha.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What the handshake authenticated, kept with the session's SSL object. */
typedef struct {
    char kmid[SAEF_KS_ID_MAX + 1];
    char bound[SAEF_KS_ENTITY_MAX + 1];     /* the MAF Client ID */
    unsigned char md[SHA256_DIGEST_LENGTH]; /* of the Km the handshake used */
} coap_client;

static struct {
    coap_context_t *ctx;
    struct event *io;
    const saef_mafd *m;
    long max_body;
    int idx; /* SSL ex_data index of the coap_client */
    unsigned char psk[SAEF_KS_KEY_MAX], nobody[32];
    coap_bin_const_t psk_out;
} c = {.idx = -1};

static void free_client(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    OPENSSL_clear_free(ptr, sizeof(coap_client));
}

/* The PSK for a client's identity (KmID). Unknown, expired or malformed
   identities get a random key: the handshake fails as with a wrong key
   (RFC 4279 lets the server hide which). libcoap copies the key it gets;
   ours is wiped after each round of the loop. */
static const coap_bin_const_t *psk_for(coap_bin_const_t *identity, coap_session_t *session,
                                       void *arg)
{
    SSL *ssl = coap_session_get_tls(session, NULL);
    char kmid[SAEF_KS_ID_MAX + 1], log_id[600];
    unsigned char md[SHA256_DIGEST_LENGTH];
    coap_client *cl = NULL;
    saef_ks_record rec;
    int found = 0;

    (void)arg;
    c.psk_out.s = c.psk;
    c.psk_out.length = 32;
    RAND_bytes(c.psk, 32);
    snprintf(kmid, sizeof(kmid), "%.*s", (int)identity->length, (const char *)identity->s);
    if (ssl == NULL || identity->length == 0 || identity->length != strlen(kmid))
        goto refuse;
    if (saef_ks_get(c.m->ks, SAEF_KS_KM, kmid, identity->length, &rec) != SAEF_KS_OK)
        goto refuse;
    found = 1;
    if ((cl = OPENSSL_zalloc(sizeof(*cl))) == NULL ||
        !saef_mafd_km_client(c.m, kmid, cl->bound, md) ||
        SHA256(rec.key, rec.key_len, cl->md) == NULL || CRYPTO_memcmp(md, cl->md, sizeof(md)) != 0)
        goto refuse;
    snprintf(cl->kmid, sizeof(cl->kmid), "%s", kmid);
    /* One handshake per session, so one client: no renegotiation to bind
       it to another mid-way. */
    SSL_set_options(ssl, SSL_OP_NO_RENEGOTIATION);
    if (!SSL_set_ex_data(ssl, c.idx, cl))
        goto refuse;
    memcpy(c.psk, rec.key, rec.key_len);
    c.psk_out.length = rec.key_len;
    saef_ks_record_wipe(&rec);
    return &c.psk_out;
refuse:
    if (found)
        saef_ks_record_wipe(&rec);
    OPENSSL_clear_free(cl, sizeof(*cl));
    saef_mafd_log("coaps %s: handshake refused: KmID %s unknown or expired",
                  coap_session_str(session), saef_mafd_escaped(kmid, log_id, sizeof(log_id)));
    return &c.psk_out;
}

/* The client of the session as the store has it now: the km record still
   there, unexpired, naming the same client, holding the key the handshake
   used. As over HTTPS, deleting or changing it revokes the client. */
static const char *current_client(SSL *ssl)
{
    const coap_client *cl = ssl != NULL ? SSL_get_ex_data(ssl, c.idx) : NULL;
    char now[SAEF_KS_ENTITY_MAX + 1];
    unsigned char md[SHA256_DIGEST_LENGTH];
    int ok;

    ok = cl != NULL && saef_mafd_km_client(c.m, cl->kmid, now, md) && strcmp(now, cl->bound) == 0 &&
         CRYPTO_memcmp(md, cl->md, sizeof(md)) == 0;
    OPENSSL_cleanse(md, sizeof(md));
    return ok ? cl->bound : NULL;
}

static enum evhttp_cmd_type method_of(coap_pdu_code_t code)
{
    switch (code) {
    case COAP_REQUEST_CODE_GET: return EVHTTP_REQ_GET;
    case COAP_REQUEST_CODE_POST: return EVHTTP_REQ_POST;
    case COAP_REQUEST_CODE_PUT: return EVHTTP_REQ_PUT;
    default: return EVHTTP_REQ_DELETE;
    }
}

/* The registry's HTTP status as a CoAP code (docs/maf-protocol.md): 2.05
   answers GET, 2.04 a POST or PUT that answers with a result (RFC 7252
   5.9.1); CoAP has no Gone, so 410 is 4.04 with the registry's reason. */
static coap_pdu_code_t code_of(int status, coap_pdu_code_t method)
{
    switch (status) {
    case 200:
        return method == COAP_REQUEST_CODE_GET ? COAP_RESPONSE_CODE_CONTENT
                                               : COAP_RESPONSE_CODE_CHANGED;
    case 201: return COAP_RESPONSE_CODE_CREATED;
    case 204: return COAP_RESPONSE_CODE_DELETED;
    case 410: return COAP_RESPONSE_CODE_NOT_FOUND;
    case 400:
    case 401:
    case 403:
    case 404:
    case 405:
    case 409:
    case 413:
    case 415:
    case 429: return (coap_pdu_code_t)COAP_RESPONSE_CODE(status);
    default: return COAP_RESPONSE_CODE_INTERNAL_ERROR;
    }
}

static int content_format(const coap_pdu_t *pdu)
{
    coap_opt_iterator_t it;
    coap_opt_t *o = coap_check_option(pdu, COAP_OPTION_CONTENT_FORMAT, &it);

    return o != NULL ? (int)coap_decode_var_bytes(coap_opt_value(o), coap_opt_length(o)) : -1;
}

/* The answer may hold a key (retrieval): wiped once libcoap has sent it. */
static void release_text(coap_session_t *session, void *text)
{
    (void)session;
    OPENSSL_cleanse(text, strlen(text));
    free(text);
}

/* One request to the registry; the answer is sent, logged and wiped. */
static void on_request(coap_resource_t *res, coap_session_t *session, const coap_pdu_t *in,
                       const coap_string_t *query, coap_pdu_t *out)
{
    coap_pdu_code_t method = coap_pdu_get_code(in);
    SSL *ssl = coap_session_get_tls(session, NULL);
    coap_string_t *uri = coap_get_uri_path(in);
    char path[512], log_path[600], log_client[300];
    const uint8_t *data = NULL;
    size_t len = 0, offset = 0, total = 0;
    saef_mafd_request r = {method_of(method), path, NULL, 0, ssl, current_client(ssl)};
    json_t *answer = NULL, *retry;
    char *text;
    int status;

    snprintf(path, sizeof(path), "/%.*s", uri != NULL ? (int)uri->length : 0,
             uri != NULL ? (const char *)uri->s : "");
    coap_delete_string(uri);
    coap_get_data_large(in, &len, &data, &offset, &total);
    r.body = (const char *)data;
    r.body_len = len;
    if (method != COAP_REQUEST_CODE_GET && method != COAP_REQUEST_CODE_POST &&
        method != COAP_REQUEST_CODE_PUT && method != COAP_REQUEST_CODE_DELETE)
        status = saef_mafd_error(&answer, 405, "the MAF takes GET, POST, PUT and DELETE");
    else if (total > (size_t)c.max_body || len != total)
        status = saef_mafd_error(&answer, 413, "the body is over the limit");
    else if (len > 0 && content_format(in) != COAP_MEDIATYPE_APPLICATION_JSON)
        status = saef_mafd_error(&answer, 415, "the body must be application/json (50)");
    else
        status = saef_mafd_handle(c.m, &r, &answer);
    coap_pdu_set_code(out, code_of(status, method));
    text = answer != NULL ? json_dumps(answer, JSON_COMPACT) : NULL;
    saef_mafd_log("COAP %s %s -> %d client=%s",
                  method == COAP_REQUEST_CODE_GET      ? "GET"
                  : method == COAP_REQUEST_CODE_POST   ? "POST"
                  : method == COAP_REQUEST_CODE_PUT    ? "PUT"
                  : method == COAP_REQUEST_CODE_DELETE ? "DELETE"
                                                       : "other",
                  saef_mafd_escaped(path, log_path, sizeof(log_path)), status,
                  saef_mafd_escaped(r.client, log_client, sizeof(log_client)));
    /* RFC 8516: 4.29 says when to retry in Max-Age. */
    if (text != NULL)
        coap_add_data_large_response(res, session, in, out, query, COAP_MEDIATYPE_APPLICATION_JSON,
                                     status == 429 &&
                                             (retry = json_object_get(answer, "retryAfter"))
                                         ? (int)json_integer_value(retry)
                                         : -1,
                                     0, strlen(text), (const uint8_t *)text, release_text, text);
    json_decref(answer);
}

/* Whatever libcoap has to do now; then its timerfd is set for what it
   does next, which wakes this event again. */
static void run(evutil_socket_t fd, short what, void *arg)
{
    coap_tick_t now;

    (void)fd, (void)what, (void)arg;
    coap_io_process(c.ctx, COAP_IO_NO_WAIT);
    OPENSSL_cleanse(c.psk, sizeof(c.psk));
    coap_ticks(&now);
    coap_io_prepare_epoll(c.ctx, now);
}

/* libcoap's own messages, as saef-mafd's log lines (warnings and worse). */
static void log_line(coap_log_t level, const char *message)
{
    (void)level;
    saef_mafd_log("coaps: %.*s", (int)strcspn(message, "\n"), message);
}

static int bind_endpoint(const char *host, int port)
{
    struct addrinfo hints = {.ai_flags = AI_PASSIVE, .ai_socktype = SOCK_DGRAM}, *ai;
    char service[8];
    coap_address_t addr;
    int ok;

    snprintf(service, sizeof(service), "%d", port);
    if (getaddrinfo(host, service, &hints, &ai) != 0)
        return 0;
    coap_address_init(&addr);
    ok = ai->ai_addrlen <= sizeof(addr.addr);
    if (ok) {
        memcpy(&addr.addr, ai->ai_addr, ai->ai_addrlen);
        addr.size = ai->ai_addrlen;
        ok = coap_new_endpoint(c.ctx, &addr, COAP_PROTO_DTLS) != NULL;
    }
    freeaddrinfo(ai);
    return ok;
}

int saef_mafd_coap_start(struct event_base *base, const char *host, int port, const saef_mafd *m,
                         const saef_mafd_coap_limits *lim)
{
    coap_dtls_spsk_t psk = {.version = COAP_DTLS_SPSK_SETUP_VERSION,
                            .validate_id_call_back = psk_for};
    coap_resource_t *any;

    coap_startup();
    coap_set_log_handler(log_line);
    coap_set_log_level(LOG_WARNING);
    coap_dtls_set_log_level(LOG_WARNING);
    if (!coap_dtls_is_supported() ||
        coap_get_tls_library_version()->type != COAP_TLS_LIBRARY_OPENSSL) {
        fprintf(stderr, "saef-mafd: --listen-coaps needs libcoap's OpenSSL backend\n");
        return 0;
    }
    c.m = m;
    c.max_body = lim->max_body;
    c.idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, free_client);
    /* libcoap offers PSK suites only when the context has a default key:
       a random one nobody holds (every identity gets its own). */
    RAND_bytes(c.nobody, sizeof(c.nobody));
    psk.psk_info.key.s = c.nobody;
    psk.psk_info.key.length = 32;
    if (c.idx < 0 || (c.ctx = coap_new_context(NULL)) == NULL ||
        !coap_context_set_psk2(c.ctx, &psk) || !bind_endpoint(host, port)) {
        fprintf(stderr, "saef-mafd: cannot listen for CoAP over DTLS on %s:%d\n", host, port);
        return 0;
    }
    coap_context_set_block_mode(c.ctx, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
    coap_context_set_max_idle_sessions(c.ctx, (unsigned int)lim->max_sessions);
    coap_context_set_session_timeout(c.ctx, (unsigned int)lim->idle);
    any = coap_resource_unknown_init2(on_request, 0);
    coap_register_request_handler(any, COAP_REQUEST_GET, on_request);
    coap_register_request_handler(any, COAP_REQUEST_POST, on_request);
    coap_register_request_handler(any, COAP_REQUEST_DELETE, on_request);
    /* Methods the MAF does not take get 4.05 from the registry's rule, not
       libcoap's 4.04. */
    coap_register_request_handler(any, COAP_REQUEST_FETCH, on_request);
    coap_register_request_handler(any, COAP_REQUEST_PATCH, on_request);
    coap_register_request_handler(any, COAP_REQUEST_IPATCH, on_request);
    coap_add_resource(c.ctx, any);
    c.io = event_new(base, coap_context_get_coap_fd(c.ctx), EV_READ | EV_PERSIST, run, NULL);
    if (coap_context_get_coap_fd(c.ctx) < 0 || c.io == NULL || event_add(c.io, NULL) != 0) {
        fprintf(stderr, "saef-mafd: libcoap has no epoll descriptor to wait on\n");
        return 0;
    }
    run(-1, 0, NULL);
    return 1;
}

void saef_mafd_coap_stop(void)
{
    if (c.io != NULL)
        event_free(c.io);
    if (c.ctx != NULL)
        coap_free_context(c.ctx);
    coap_cleanup();
}
