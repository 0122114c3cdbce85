/* The MAF client side of TS-0003 8.8.2.2: HTTPS over TLS-PSK with KmID/Km. */
#include "maf-client.h"
#include "saef-internal.h"

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Thread_local int saef_inside;

typedef struct {
    const char *kmid;
    const unsigned char *km;
    size_t km_len;
    char *body;
    size_t len;
    CURL *curl;
    saef_maf_reply *out;
    int want_ekm, checked;
} call_ctx;

static int ctx_idx = -1;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init_once(void)
{
    json_malloc_t jm;
    json_free_t jf;

    /* Key text passes through libcurl's and jansson's buffers: wipe them on
       free. A program that set its own allocators (or started libcurl
       first) keeps them. */
    curl_global_init_mem(CURL_GLOBAL_DEFAULT, malloc, saef_wipe_free, saef_wipe_realloc, strdup,
                         calloc);
    json_get_alloc_funcs(&jm, &jf);
    if (jm == malloc && jf == free)
        json_set_alloc_funcs(malloc, saef_wipe_free);
    ctx_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

static unsigned int psk_cb(SSL *ssl, const char *hint, char *identity, unsigned int max_id,
                           unsigned char *psk, unsigned int max_psk)
{
    const call_ctx *c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_idx);

    (void)hint;
    if (c == NULL || strlen(c->kmid) >= max_id || c->km_len > max_psk)
        return 0;
    strcpy(identity, c->kmid);
    memcpy(psk, c->km, c->km_len);
    return (unsigned int)c->km_len;
}

static int use_session_cb(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
                          SSL_SESSION **sess)
{
    const call_ctx *c = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_idx);

    *sess = NULL;
    if (c == NULL || (md != NULL && !EVP_MD_is_a(md, "SHA256")))
        return 1;
    if ((*sess = saef_psk_session(ssl, c->km, c->km_len)) == NULL)
        return 0;
    *id = (const unsigned char *)c->kmid;
    *idlen = strlen(c->kmid);
    return 1;
}

static CURLcode ssl_ctx_cb(CURL *curl, void *sslctx, void *parm)
{
    (void)curl;
    SSL_CTX_set_ex_data(sslctx, ctx_idx, parm);
    /* The answer may carry a key: no plaintext left in OpenSSL's buffers. */
    SSL_CTX_set_options(sslctx, SSL_OP_CLEANSE_PLAINTEXT);
    SSL_CTX_set_psk_client_callback(sslctx, psk_cb);
    SSL_CTX_set_psk_use_session_callback(sslctx, use_session_cb);
    return CURLE_OK;
}

static size_t write_cb(char *data, size_t size, size_t n, void *arg)
{
    call_ctx *c = arg;
    size_t len = size * n;
    char *p;

    if (c->len + len > SAEF_MAF_BODY_MAX ||
        (p = saef_wipe_realloc(c->body, c->len + len + 1)) == NULL)
        return 0;
    memcpy(p + c->len, data, len);
    c->len += len;
    p[c->len] = '\0';
    c->body = p;
    return len;
}

/* No certificate is checked, so the PSK must really have been used. */
int saef_maf_psk_used(SSL *ssl)
{
    const SSL_CIPHER *ci = SSL_get_current_cipher(ssl);
    int kx;

    if (SSL_version(ssl) == TLS1_3_VERSION)
        return SSL_session_reused(ssl);
    kx = ci != NULL ? SSL_CIPHER_get_kx_nid(ci) : NID_undef;
    return kx == NID_kx_psk || kx == NID_kx_ecdhe_psk || kx == NID_kx_dhe_psk;
}

/* On the connection, before the request: the PSK really authenticated the
   MAF, and (for key registration) the key export. libcurl's SSL pointer is
   valid only during the transfer. */
static int prereq_cb(void *arg, char *ip, char *local_ip, int port, int local_port)
{
    call_ctx *c = arg;
    struct curl_tlssessioninfo *tls = NULL;

    (void)ip, (void)local_ip, (void)port, (void)local_port;
    if (curl_easy_getinfo(c->curl, CURLINFO_TLS_SSL_PTR, &tls) != CURLE_OK || tls == NULL ||
        tls->backend != CURLSSLBACKEND_OPENSSL || tls->internals == NULL ||
        !saef_maf_psk_used(tls->internals)) {
        snprintf(c->out->err, sizeof(c->out->err), "the MAF did not authenticate with the PSK");
        return CURL_PREREQFUNC_ABORT;
    }
    if (c->want_ekm && SSL_export_keying_material(tls->internals, c->out->ekm, sizeof(c->out->ekm),
                                                  SAEF_EXPORTER_LABEL, strlen(SAEF_EXPORTER_LABEL),
                                                  NULL, 0, 0) != 1) {
        snprintf(c->out->err, sizeof(c->out->err), "key export failed");
        return CURL_PREREQFUNC_ABORT;
    }
    c->checked = 1;
    return CURL_PREREQFUNC_OK;
}

/* coaps:// goes to libcoap, when saef was built with it. */
static int coap_call(const char *method, const char *url, const char *body, const char *kmid,
                     const unsigned char *km, size_t km_len, long timeout_ms, int want_ekm,
                     saef_maf_reply *out)
{
#ifdef SAEF_HAVE_COAP
    return saef_maf_coap_call(method, url, body, kmid, km, km_len, timeout_ms, want_ekm, out);
#else
    (void)method, (void)body, (void)kmid, (void)km, (void)km_len, (void)timeout_ms, (void)want_ekm;
    memset(out, 0, sizeof(*out));
    snprintf(out->err, sizeof(out->err), "%.60s: saef was built without libcoap (libcoap3-dev)",
             url);
    return 0;
#endif
}

int saef_maf_call(const char *method, const char *url, const char *body, const char *kmid,
                  const unsigned char *km, size_t km_len, long timeout_ms, int want_ekm,
                  saef_maf_reply *out)
{
    call_ctx c = {kmid, km, km_len, NULL, 0, NULL, out, want_ekm, 0};
    struct curl_slist *hdr = NULL;
    CURL *curl;
    CURLcode rc;
    int ok = 0;

    if (strncmp(url, "coaps://", 8) == 0)
        return coap_call(method, url, body, kmid, km, km_len, timeout_ms, want_ekm, out);
    memset(out, 0, sizeof(*out));
    pthread_once(&once, init_once);
    if ((curl = curl_easy_init()) == NULL) {
        snprintf(out->err, sizeof(out->err), "out of memory");
        return 0;
    }
    c.curl = curl;
    saef_inside++;
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (body != NULL)
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    /* The PSK authenticates the MAF; the suites allow nothing else on TLS 1.2,
       and saef_maf_psk_used() checks TLS 1.3. */
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
    curl_easy_setopt(curl, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
    curl_easy_setopt(curl, CURLOPT_SSL_CIPHER_LIST,
                     "PSK-AES128-CBC-SHA256:ECDHE-PSK-AES128-CBC-SHA256:PSK-AES128-GCM-SHA256:"
                     "DHE-PSK-AES128-GCM-SHA256");
    curl_easy_setopt(curl, CURLOPT_TLS13_CIPHERS, "TLS_AES_128_GCM_SHA256");
    curl_easy_setopt(curl, CURLOPT_SSL_CTX_FUNCTION, ssl_ctx_cb);
    curl_easy_setopt(curl, CURLOPT_SSL_CTX_DATA, &c);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &c);
    curl_easy_setopt(curl, CURLOPT_PREREQFUNCTION, prereq_cb);
    curl_easy_setopt(curl, CURLOPT_PREREQDATA, &c);
    rc = curl_easy_perform(curl);
    if (rc != CURLE_OK || !c.checked) {
        char why[sizeof(out->err)];
        snprintf(why, sizeof(why), "%s", out->err[0] ? out->err : curl_easy_strerror(rc));
        snprintf(out->err, sizeof(out->err), "%.60s: %.190s", url, why);
        goto done;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &out->status);
    out->body = c.body;
    c.body = NULL;
    ok = 1;
done:
    saef_wipe_free(c.body);
    curl_slist_free_all(hdr);
    curl_easy_cleanup(curl);
    saef_inside--;
    return ok;
}

void saef_maf_reply_free(saef_maf_reply *r)
{
    saef_wipe_free(r->body);
    OPENSSL_cleanse(r, sizeof(*r));
}
