/*
 * libsaef-preload.so: saef's roles in programs that cannot change.
 *
 * Off unless the saef provider's `role` (or SAEF_ROLE, for tests and
 * saef-run --role) says server, client or both. Every SSL_CTX the program
 * creates gets the roles; what the program sets afterwards (cipher lists,
 * its own PSK, info and ClientHello callbacks) is applied around saef's
 * instead of replacing it.
 */
#define _GNU_SOURCE
#include "saef-internal.h"
#include "maf-client.h"

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static saef_ctx *g_saef;
static long g_role = SAEF_ROLE_OFF;
/* saef_inside is set while saef itself calls the functions interposed here. */
#define inside saef_inside

/*
 * The real function. This library links libssl, so libssl is in the global
 * scope after it even when the program dlopen()s its TLS code (Python's _ssl):
 * RTLD_NEXT always finds it.
 */
static void *real(const char *name)
{
    void *fn = dlsym(RTLD_NEXT, name);

    if (fn == NULL) {
        fprintf(stderr, "saef: cannot find the real %s: %s\n", name, dlerror());
        abort();
    }
    return fn;
}

#define REAL(name)                                                                            \
    static __typeof__(name) *real_##name;                                                     \
    if (real_##name == NULL)                                                                  \
        real_##name = (__typeof__(name) *)real(#name);

/* Read when the library loads: nginx workers lose the environment, and
   programs that drop privileges must have the store open before. */
__attribute__((constructor)) static void saef_preload_init(void)
{
    const char *env = getenv("SAEF_ROLE");
    saef_conf conf;
    char err[256];

    inside++;
    saef_conf_init(&conf);
    if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL) &&
        saef_conf_from_provider(NULL, &conf) < 0)
        fprintf(stderr, "saef: cannot read the saef provider's configuration\n");
    if (env != NULL && *env != '\0' && !saef_conf_set(&conf, "role", env, err, sizeof(err)))
        fprintf(stderr, "saef: SAEF_ROLE: %s\n", err);
    g_role = saef_conf_int(&conf, SAEF_CONF_ROLE);
    if (g_role != SAEF_ROLE_OFF && (g_saef = saef_new(&conf)) == NULL)
        g_role = SAEF_ROLE_OFF;
    OPENSSL_cleanse(&conf, sizeof(conf));
    inside--;
}

/* A context made for one side gets only that side's role: server options
   never reach a program's outgoing connections. */
static SSL_CTX *install(SSL_CTX *ctx, const SSL_METHOD *meth)
{
    int client_only, server_only;

    if (ctx == NULL || g_role == SAEF_ROLE_OFF || inside)
        return ctx;
    client_only = meth == TLS_client_method() || meth == DTLS_client_method();
    server_only = meth == TLS_server_method() || meth == DTLS_server_method();
    inside++;
    if ((g_role == SAEF_ROLE_SERVER || g_role == SAEF_ROLE_BOTH) && !client_only)
        saef_ssl_ctx_server(ctx, g_saef);
    if ((g_role == SAEF_ROLE_CLIENT || g_role == SAEF_ROLE_BOTH) && !server_only)
        saef_ssl_ctx_client(ctx, g_saef);
    inside--;
    return ctx;
}

SAEF_EXPORT SSL_CTX *SSL_CTX_new_ex(OSSL_LIB_CTX *libctx, const char *propq,
                                    const SSL_METHOD *meth)
{
    REAL(SSL_CTX_new_ex);
    return install(real_SSL_CTX_new_ex(libctx, propq, meth), meth);
}

SAEF_EXPORT SSL_CTX *SSL_CTX_new(const SSL_METHOD *meth)
{
    REAL(SSL_CTX_new);
    return install(real_SSL_CTX_new(meth), meth);
}

/* The program's cipher list is applied, then the PSK suites go first again. */
SAEF_EXPORT int SSL_CTX_set_cipher_list(SSL_CTX *ctx, const char *str)
{
    int ok;

    REAL(SSL_CTX_set_cipher_list);
    ok = real_SSL_CTX_set_cipher_list(ctx, str);
    if (ok && !inside && saef_is_installed(ctx)) {
        inside++;
        saef_reapply_ciphers(ctx);
        inside--;
    }
    return ok;
}

SAEF_EXPORT int SSL_CTX_set_ciphersuites(SSL_CTX *ctx, const char *str)
{
    int ok;

    REAL(SSL_CTX_set_ciphersuites);
    ok = real_SSL_CTX_set_ciphersuites(ctx, str);
    if (ok && !inside && saef_is_installed(ctx)) {
        inside++;
        saef_reapply_ciphers(ctx);
        inside--;
    }
    return ok;
}

/* The program's own callbacks are chained behind saef's. */
#define CHAIN(ctx, which, cb, arg)                                                            \
    (!inside && saef_chain(ctx, which, (void (*)(void))(cb), arg))

/* SSL_CTX_set_*_callback(ctx, cb) with the program's cb chained behind saef's. */
#define CHAINED_SETTER(name, which, cb_type)                                                  \
    SAEF_EXPORT void name(SSL_CTX *ctx, cb_type cb)                                           \
    {                                                                                         \
        REAL(name);                                                                           \
        if (!CHAIN(ctx, which, cb, NULL))                                                     \
            real_##name(ctx, cb);                                                             \
    }

typedef void (*info_cb_fn)(const SSL *, int, int);
CHAINED_SETTER(SSL_CTX_set_psk_server_callback, SAEF_NEXT_PSK_SERVER, SSL_psk_server_cb_func)
CHAINED_SETTER(SSL_CTX_set_psk_find_session_callback, SAEF_NEXT_FIND_SESSION,
               SSL_psk_find_session_cb_func)
CHAINED_SETTER(SSL_CTX_set_psk_client_callback, SAEF_NEXT_PSK_CLIENT, SSL_psk_client_cb_func)
CHAINED_SETTER(SSL_CTX_set_psk_use_session_callback, SAEF_NEXT_USE_SESSION,
               SSL_psk_use_session_cb_func)
CHAINED_SETTER(SSL_CTX_set_info_callback, SAEF_NEXT_INFO, info_cb_fn)

SAEF_EXPORT void SSL_CTX_set_client_hello_cb(SSL_CTX *ctx, SSL_client_hello_cb_fn cb, void *arg)
{
    REAL(SSL_CTX_set_client_hello_cb);
    if (!CHAIN(ctx, SAEF_NEXT_HELLO, cb, arg))
        real_SSL_CTX_set_client_hello_cb(ctx, cb, arg);
}

/* SSL_CTX_set_tlsext_servername_callback and _arg are macros over these two:
   the program's callback runs inside saef's, which judges the handshake. */
SAEF_EXPORT long SSL_CTX_callback_ctrl(SSL_CTX *ctx, int cmd, void (*fp)(void))
{
    REAL(SSL_CTX_callback_ctrl);
    if (cmd == SSL_CTRL_SET_TLSEXT_SERVERNAME_CB && CHAIN(ctx, SAEF_NEXT_SERVERNAME, fp, NULL))
        return 1;
    return real_SSL_CTX_callback_ctrl(ctx, cmd, fp);
}

SAEF_EXPORT long SSL_CTX_ctrl(SSL_CTX *ctx, int cmd, long larg, void *parg)
{
    REAL(SSL_CTX_ctrl);
    if (cmd == SSL_CTRL_SET_TLSEXT_SERVERNAME_ARG && CHAIN(ctx, SAEF_NEXT_SERVERNAME_ARG, NULL, parg))
        return 1;
    return real_SSL_CTX_ctrl(ctx, cmd, larg, parg);
}
