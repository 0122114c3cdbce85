/* The MAF client over CoAP/DTLS 1.2 PSK with KmID/Km (coaps:// MAF URLs);
   the mapping is in docs/maf-protocol.md. */
#include "maf-client.h"
#include "saef-internal.h"

#include <coap3/coap.h>
#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

typedef struct {
    saef_maf_reply *out;
    int connected, failed, answered;
} coap_call;

static pthread_once_t once = PTHREAD_ONCE_INIT;
/* libcoap keeps global state (its start-up, log handler, random source):
   one call at a time per process. */
static pthread_mutex_t one_call = PTHREAD_MUTEX_INITIALIZER;

/* libcoap logs to stderr, which is the host program's: nothing of it. */
static void no_log(coap_log_t level, const char *message)
{
    (void)level, (void)message;
}

static void init_once(void)
{
    coap_startup();
    coap_set_log_handler(no_log);
    coap_set_log_level(LOG_EMERG);
}

static int on_event(coap_session_t *session, const coap_event_t event)
{
    coap_call *c = coap_session_get_app_data(session);

    if (c == NULL)
        return 0;
    if (event == COAP_EVENT_DTLS_CONNECTED)
        c->connected = 1;
    else if (event == COAP_EVENT_DTLS_CLOSED || event == COAP_EVENT_DTLS_ERROR ||
             event == COAP_EVENT_SESSION_FAILED)
        c->failed = 1;
    return 0;
}

static void on_nack(coap_session_t *session, const coap_pdu_t *sent,
                    const coap_nack_reason_t reason, const coap_mid_t mid)
{
    coap_call *c = coap_session_get_app_data(session);

    (void)sent, (void)reason, (void)mid;
    if (c != NULL)
        c->failed = 1;
}

/* The CoAP code as the HTTP status callers know: 2.01 Created 201, 2.02
   Deleted 204, 2.04 Changed and 2.05 Content 200, errors c.dd as cdd. */
static long http_status(coap_pdu_code_t code)
{
    switch (code) {
    case COAP_RESPONSE_CODE_CREATED: return 201;
    case COAP_RESPONSE_CODE_DELETED: return 204;
    case COAP_RESPONSE_CODE_CHANGED:
    case COAP_RESPONSE_CODE_CONTENT: return 200;
    default: return (long)COAP_RESPONSE_CLASS(code) * 100 + (code & 0x1F);
    }
}

static coap_response_t on_response(coap_session_t *session, const coap_pdu_t *sent,
                                   const coap_pdu_t *received, const coap_mid_t mid)
{
    coap_call *c = coap_session_get_app_data(session);
    const uint8_t *data = NULL;
    size_t len = 0, offset = 0, total = 0;

    (void)sent, (void)mid;
    if (c == NULL || c->answered)
        return COAP_RESPONSE_OK;
    coap_get_data_large(received, &len, &data, &offset, &total);
    c->answered = 1;
    if (len != total || len > SAEF_MAF_BODY_MAX ||
        (len > 0 && (c->out->body = saef_wipe_realloc(NULL, len + 1)) == NULL)) {
        snprintf(c->out->err, sizeof(c->out->err), "the MAF's answer is too large or incomplete");
        c->failed = 1;
        return COAP_RESPONSE_OK;
    }
    if (len > 0) {
        memcpy(c->out->body, data, len);
        c->out->body[len] = '\0';
    }
    c->out->status = http_status(coap_pdu_get_code(received));
    return COAP_RESPONSE_OK;
}

/* Runs libcoap until *flag, a failure, or the deadline: 1 if *flag. */
static int run_until(coap_context_t *ctx, const coap_call *c, const int *flag,
                     const struct timespec *deadline)
{
    struct timespec now;
    long ms;

    while (!*flag && !c->failed) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        ms = (deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
        if (ms <= 0)
            return 0;
        if (coap_io_process(ctx, (uint32_t)ms) < 0)
            return 0;
    }
    return *flag;
}

/* The destination of a coaps:// URL and where its path starts. */
static int destination(const char *url, coap_address_t *dst, coap_uri_t *uri, char *err,
                       size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM}, *ai;
    char host[256], port[8];
    int ok;

    if (coap_split_uri((const uint8_t *)url, strlen(url), uri) < 0 ||
        uri->scheme != COAP_URI_SCHEME_COAPS || uri->host.length >= sizeof(host)) {
        snprintf(err, errlen, "not a coaps://HOST:PORT URL");
        return 0;
    }
    snprintf(host, sizeof(host), "%.*s", (int)uri->host.length, (const char *)uri->host.s);
    snprintf(port, sizeof(port), "%u", uri->port);
    if (getaddrinfo(host, port, &hints, &ai) != 0) {
        snprintf(err, errlen, "cannot resolve %.64s", host);
        return 0;
    }
    coap_address_init(dst);
    ok = ai->ai_addrlen <= sizeof(dst->addr);
    if (ok) {
        memcpy(&dst->addr, ai->ai_addr, ai->ai_addrlen);
        dst->size = ai->ai_addrlen;
    }
    freeaddrinfo(ai);
    return ok;
}

/* The request: Uri-Path options from the URL's path, JSON in blocks if long. */
static coap_pdu_t *request(coap_session_t *session, const char *method, const coap_uri_t *uri,
                           const char *body)
{
    coap_pdu_code_t code = strcmp(method, "GET") == 0    ? COAP_REQUEST_CODE_GET
                           : strcmp(method, "PUT") == 0  ? COAP_REQUEST_CODE_PUT
                           : strcmp(method, "POST") == 0 ? COAP_REQUEST_CODE_POST
                                                         : COAP_REQUEST_CODE_DELETE;
    coap_pdu_t *pdu = coap_new_pdu(COAP_MESSAGE_CON, code, session);
    const uint8_t *p = uri->path.s, *end = p + uri->path.length;
    uint8_t token[8], fmt[4];
    size_t tlen;

    if (pdu == NULL)
        return NULL;
    coap_session_new_token(session, &tlen, token);
    coap_add_token(pdu, tlen, token);
    while (p < end) {
        const uint8_t *slash = memchr(p, '/', (size_t)(end - p));
        size_t n = slash != NULL ? (size_t)(slash - p) : (size_t)(end - p);
        if (n > 0)
            coap_add_option(pdu, COAP_OPTION_URI_PATH, n, p);
        p += n + 1;
    }
    if (body != NULL) {
        coap_add_option(pdu, COAP_OPTION_CONTENT_FORMAT,
                        coap_encode_var_safe(fmt, sizeof(fmt), COAP_MEDIATYPE_APPLICATION_JSON),
                        fmt);
        coap_add_data_large_request(session, pdu, strlen(body), (const uint8_t *)body, NULL, NULL);
    }
    return pdu;
}

int saef_maf_coap_call(const char *method, const char *url, const char *body, const char *kmid,
                       const unsigned char *km, size_t km_len, long timeout_ms, int want_ekm,
                       saef_maf_reply *out)
{
    coap_call c = {out, 0, 0, 0};
    coap_dtls_cpsk_t psk = {.version = COAP_DTLS_CPSK_SETUP_VERSION};
    coap_context_t *ctx = NULL;
    coap_session_t *session = NULL;
    coap_address_t dst;
    coap_uri_t uri;
    coap_pdu_t *pdu;
    struct timespec deadline;
    SSL *ssl;
    char why[sizeof(out->err)] = "";
    int ok = 0;

    memset(out, 0, sizeof(*out));
    pthread_once(&once, init_once);
    if (!destination(url, &dst, &uri, why, sizeof(why)))
        goto report;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    psk.psk_info.identity.s = (const uint8_t *)kmid;
    psk.psk_info.identity.length = strlen(kmid);
    psk.psk_info.key.s = km;
    psk.psk_info.key.length = km_len;
    pthread_mutex_lock(&one_call);
    /* libcoap's SSL_CTX is saef's own: the preload leaves it alone. */
    saef_inside++;
    if ((ctx = coap_new_context(NULL)) == NULL) {
        snprintf(why, sizeof(why), "out of memory");
        goto done;
    }
    coap_context_set_block_mode(ctx, COAP_BLOCK_USE_LIBCOAP | COAP_BLOCK_SINGLE_BODY);
    coap_register_event_handler(ctx, on_event);
    coap_register_nack_handler(ctx, on_nack);
    coap_register_response_handler(ctx, on_response);
    if ((session = coap_new_client_session_psk2(ctx, NULL, &dst, COAP_PROTO_DTLS, &psk)) == NULL) {
        snprintf(why, sizeof(why), "cannot start a DTLS session");
        goto done;
    }
    coap_session_set_app_data(session, &c);
    if (!run_until(ctx, &c, &c.connected, &deadline)) {
        snprintf(why, sizeof(why), "no DTLS handshake with the MAF (timeout, or wrong key)");
        goto done;
    }
    /* No certificate is checked (and libcoap offers PSK suites only), so the
       PSK must really have been used; then the export, as over TLS. */
    ssl = coap_session_get_tls(session, NULL);
    if (ssl == NULL || !saef_maf_psk_used(ssl)) {
        snprintf(why, sizeof(why), "the MAF did not authenticate with the PSK");
        goto done;
    }
    if (want_ekm && SSL_export_keying_material(ssl, out->ekm, sizeof(out->ekm), SAEF_EXPORTER_LABEL,
                                               strlen(SAEF_EXPORTER_LABEL), NULL, 0, 0) != 1) {
        snprintf(why, sizeof(why), "key export failed");
        goto done;
    }
    if ((pdu = request(session, method, &uri, body)) == NULL ||
        coap_send(session, pdu) == COAP_INVALID_MID) {
        snprintf(why, sizeof(why), "cannot send the request");
        goto done;
    }
    /* An answer counts even if the session closed right after it. */
    run_until(ctx, &c, &c.answered, &deadline);
    if (!c.answered || out->status == 0) {
        snprintf(why, sizeof(why), "%s", out->err[0] ? out->err : "no answer from the MAF");
        goto done;
    }
    ok = 1;
done:
    if (session != NULL) {
        coap_session_set_app_data(session, NULL);
        coap_session_release(session);
    }
    if (ctx != NULL)
        coap_free_context(ctx);
    saef_inside--;
    pthread_mutex_unlock(&one_call);
report:
    if (!ok) {
        saef_wipe_free(out->body);
        out->body = NULL;
        out->status = 0;
        OPENSSL_cleanse(out->ekm, sizeof(out->ekm));
        snprintf(out->err, sizeof(out->err), "%.60s: %.190s", url, why);
    }
    return ok;
}
