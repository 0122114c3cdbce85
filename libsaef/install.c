/* Installing saef's roles on an SSL_CTX, and chaining a program's own
   callbacks behind them. */
#include "rules.h"

#include <stdio.h>
#include <string.h>

/* TLS 1.2 list: TS-0003 suites first, then the program's; only PSK suites
   with require_psk. TLS 1.3 list: keep a SHA-256 suite for the PSK. */
static void apply_ciphers(SSL_CTX *ctx, const ctx_data *cd)
{
    STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(ctx);
    char list[4096] = SAEF_PSK_CIPHERS, suites[512] = "";
    /* Only in a context that serves and never connects: a program's own
       outgoing connections keep their suites (saef_servername_cb judges both). */
    int require = cd->server && !cd->client && saef_require_psk(cd);
    int has_sha256 = 0;

    for (int i = 0; i < sk_SSL_CIPHER_num(sk); i++) {
        const SSL_CIPHER *ci = sk_SSL_CIPHER_value(sk, i);
        const char *name = SSL_CIPHER_get_name(ci);
        if (strcmp(SSL_CIPHER_get_version(ci), "TLSv1.3") == 0) {
            has_sha256 |= strcmp(name, "TLS_AES_128_GCM_SHA256") == 0;
            snprintf(suites + strlen(suites), sizeof(suites) - strlen(suites), "%s%s",
                     suites[0] ? ":" : "", name);
        } else if (strstr(SAEF_PSK_CIPHERS, name) == NULL &&
                   (!require || strstr(name, "PSK") != NULL)) {
            snprintf(list + strlen(list), sizeof(list) - strlen(list), ":%s", name);
        }
    }
    SSL_CTX_set_cipher_list(ctx, list);
    if (!has_sha256) {
        snprintf(suites + strlen(suites), sizeof(suites) - strlen(suites), "%s%s",
                 suites[0] ? ":" : "", "TLS_AES_128_GCM_SHA256");
        SSL_CTX_set_ciphersuites(ctx, suites);
    }
}

static void apply_versions(SSL_CTX *ctx, const ctx_data *cd)
{
    int min = cd->dtls ? DTLS1_2_VERSION : TLS1_2_VERSION;
    long cur = SSL_CTX_get_min_proto_version(ctx);

    /* Nothing below (D)TLS 1.2 (TS-0003 10.2.1); DTLS numbers count down. */
    if (cur == 0 || (cd->dtls ? cur > min : cur < min))
        SSL_CTX_set_min_proto_version(ctx, min);
    if (!cd->dtls && !saef_ctx_int(cd->s, SAEF_CONF_TLS13))
        SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
}

void saef_reapply_ciphers(SSL_CTX *ctx)
{
    ctx_data *cd = saef_get_cd(ctx);

    if (cd != NULL)
        apply_ciphers(ctx, cd);
}

int saef_ssl_ctx_server(SSL_CTX *ctx, saef_ctx *s)
{
    ctx_data *cd;

    if (ctx == NULL || s == NULL || (cd = saef_attach(ctx, s)) == NULL)
        return 0;
    if (cd->server)
        return 1;
    cd->server = 1;
    cd->next_info = SSL_CTX_get_info_callback(ctx);
    saef_note_info(cd);
    SSL_CTX_set_tlsext_servername_callback(ctx, saef_servername_cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, cd);
    SSL_CTX_set_psk_server_callback(ctx, saef_psk_server_cb);
    SSL_CTX_set_psk_find_session_callback(ctx, saef_find_session_cb);
    SSL_CTX_set_client_hello_cb(ctx, saef_hello_cb, cd);
    SSL_CTX_set_session_ticket_cb(ctx, NULL, saef_ticket_cb, cd);
    SSL_CTX_set_info_callback(ctx, saef_info_cb);
    /* With a certificate loaded, the client's order would pick a certificate suite. */
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    apply_versions(ctx, cd);
    apply_ciphers(ctx, cd);
    return 1;
}

int saef_ssl_ctx_maf_server(SSL_CTX *ctx, saef_ctx *s)
{
    ctx_data *cd;

    if (ctx == NULL || s == NULL || (cd = saef_attach(ctx, s)) == NULL || cd->server)
        return 0;
    cd->maf = 1;
    return saef_ssl_ctx_server(ctx, s);
}

int saef_ssl_ctx_client(SSL_CTX *ctx, saef_ctx *s)
{
    ctx_data *cd;

    if (ctx == NULL || s == NULL || (cd = saef_attach(ctx, s)) == NULL)
        return 0;
    if (cd->client)
        return 1;
    cd->client = 1;
    if (!cd->server) {
        cd->next_info = SSL_CTX_get_info_callback(ctx);
        saef_note_info(cd);
        SSL_CTX_set_info_callback(ctx, saef_info_cb);
        SSL_CTX_set_tlsext_servername_callback(ctx, saef_servername_cb);
        SSL_CTX_set_tlsext_servername_arg(ctx, cd);
    }
    SSL_CTX_set_psk_client_callback(ctx, saef_psk_client_cb);
    SSL_CTX_set_psk_use_session_callback(ctx, saef_use_session_cb);
    apply_versions(ctx, cd);
    apply_ciphers(ctx, cd);
    return 1;
}

int saef_chain(SSL_CTX *ctx, SAEF_NEXT which, void (*fn)(void), void *arg)
{
    ctx_data *cd = saef_get_cd(ctx);

    if (cd == NULL)
        return 0;
    switch (which) {
    case SAEF_NEXT_PSK_SERVER: cd->next_server = (SSL_psk_server_cb_func)fn; return cd->server;
    case SAEF_NEXT_FIND_SESSION:
        cd->next_find = (SSL_psk_find_session_cb_func)fn;
        return cd->server;
    case SAEF_NEXT_PSK_CLIENT: cd->next_client = (SSL_psk_client_cb_func)fn; return cd->client;
    case SAEF_NEXT_USE_SESSION: cd->next_use = (SSL_psk_use_session_cb_func)fn; return cd->client;
    case SAEF_NEXT_INFO:
        cd->next_info = (void (*)(const SSL *, int, int))fn;
        saef_note_info(cd);
        return 1;
    case SAEF_NEXT_HELLO:
        cd->next_hello = (SSL_client_hello_cb_fn)fn;
        cd->next_hello_arg = arg;
        return cd->server;
    case SAEF_NEXT_SERVERNAME: cd->next_servername = (int (*)(SSL *, int *, void *))fn; return 1;
    case SAEF_NEXT_SERVERNAME_ARG: cd->next_servername_arg = arg; return 1;
    }
    return 0;
}

int saef_ssl_ctx_set_servername_callback(SSL_CTX *ctx, int (*cb)(SSL *, int *, void *), void *arg)
{
    if (saef_chain(ctx, SAEF_NEXT_SERVERNAME, (void (*)(void))cb, NULL))
        return saef_chain(ctx, SAEF_NEXT_SERVERNAME_ARG, NULL, arg);
    return SSL_CTX_set_tlsext_servername_callback(ctx, cb) &&
           SSL_CTX_set_tlsext_servername_arg(ctx, arg);
}
