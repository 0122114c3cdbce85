/*
 * libsaef-preload.so: saef's roles in programs that cannot change.
 *
 * Off unless the saef provider's `role` (or SAEF_ROLE, for tests and
 * saef-run --role) says server, client or both. Every SSL_CTX the program
 * creates gets the roles; what the program sets afterwards (cipher lists,
 * its own PSK, info and ClientHello callbacks) is applied around saef's
 * instead of replacing it. A configuration that asks for saef but cannot
 * be used makes every handshake fail instead (saef.cnf(5), DIAGNOSTICS).
 */
#define _GNU_SOURCE
#include "saef-internal.h"

#include <dlfcn.h>
#include <openssl/conf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static saef_ctx *g_saef;
static long g_role = SAEF_ROLE_OFF;

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

#define REAL(name)                                                                                 \
    static __typeof__(name) *real_##name;                                                          \
    if (real_##name == NULL)                                                                       \
        real_##name = (__typeof__(name) *)real(#name);

/*
 * Why saef was asked for and cannot run ("" when it can). The program then
 * runs, but every TLS handshake it tries is refused with this reason on
 * stderr: it must never talk TLS silently without saef.
 */
static char g_broken[1024];

static void broken(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void broken(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(g_broken, sizeof(g_broken), fmt, ap);
    va_end(ap);
    fprintf(stderr, "saef: %s: every TLS handshake of this program will be refused\n", g_broken);
}

/* Where the provider did not load: the reason from its section in the file
   OpenSSL read. A file without one means saef is off, unless saef-run asked
   for saef and no role came from elsewhere. 1 if that made saef unusable. */
static int provider_missing(const char *env)
{
    char *file = CONF_get1_default_config_file(), err[sizeof(g_broken) - 100];
    saef_conf *scratch = saef_conf_new();
    int rc;

    rc = scratch == NULL
             ? (snprintf(err, sizeof(err), "out of memory"), -1)
             : saef_conf_file_check(file, "saef", NULL, NULL, scratch, err, sizeof(err));
    if (rc < 0)
        broken("%s", err);
    else if (rc > 0)
        broken("the saef provider configured in %s did not load (its reason is above)", file);
    else if (getenv("SAEF_RUN") != NULL && (env == NULL || *env == '\0'))
        broken("saef-run: %s configures no saef provider and no --role was given (see saef.cnf(5))",
               file != NULL ? file : "the configuration");
    saef_conf_free(scratch);
    OPENSSL_free(file);
    return *g_broken != '\0';
}

/* Opened now as the handshakes will open it: a store that is missing or
   unsafe is a configuration that cannot be used. */
static int store_opens(const saef_conf *conf)
{
    saef_ks *ks;
    unsigned flags = SAEF_KS_RDONLY;

    if (saef_conf_int(conf, SAEF_CONF_STORE_GROUP_READ))
        flags |= SAEF_KS_GROUP_READ;
    if (saef_ks_open(saef_conf_str(conf, SAEF_CONF_STORE), flags, &ks) != SAEF_KS_OK) {
        broken("%s", saef_ks_last_error(NULL));
        return 0;
    }
    saef_ks_close(ks);
    return 1;
}

/* g_role and g_saef from the configuration (got: saef_conf_from_provider's
   answer) and SAEF_ROLE, or the reason in g_broken. 1 when g_saef took
   conf (it is then freed with it). */
static int start(saef_conf *conf, int got, const char *env)
{
    char err[256];

    if (env != NULL && strcmp(env, "off") == 0)
        return 0; /* saef-run --role off: asked to run without saef */
    if (got < 0) {
        broken("cannot read the saef provider's configuration");
        return 0;
    }
    if (got == 0 && provider_missing(env))
        return 0;
    if (env != NULL && *env != '\0' && !saef_conf_set(conf, "role", env, err, sizeof(err))) {
        broken("SAEF_ROLE: %s", err);
        return 0;
    }
    if ((g_role = saef_conf_int(conf, SAEF_CONF_ROLE)) == SAEF_ROLE_OFF || !store_opens(conf))
        return 0;
    if ((g_saef = saef_new_adopt(conf)) == NULL)
        broken("out of memory");
    return 1;
}

/* Read when the library loads: nginx workers lose the environment, and
   programs that drop privileges must have the store open before. */
__attribute__((constructor)) static void saef_preload_init(void)
{
    saef_conf *conf;
    int got = 0;

    saef_inside++;
    if ((conf = saef_conf_new()) == NULL) {
        broken("out of memory");
    } else {
        if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL))
            got = saef_conf_from_provider(NULL, conf);
        if (!start(conf, got, getenv("SAEF_ROLE")))
            saef_conf_free(conf);
    }
    saef_inside--;
}

static void say_refused(void)
{
    fprintf(stderr, "saef: TLS handshake refused: %s\n", g_broken);
}

static int refuse_hello(SSL *ssl, int *al, void *arg)
{
    (void)ssl;
    (void)arg;
    say_refused();
    *al = SSL_AD_INTERNAL_ERROR;
    return SSL_CLIENT_HELLO_ERROR;
}

/* A client's ClientHello fails while it is written: nothing is sent. */
static int refuse_client(SSL *ssl, unsigned ext_type, unsigned context, const unsigned char **out,
                         size_t *outlen, X509 *x, size_t chainidx, int *al, void *arg)
{
    (void)ssl, (void)ext_type, (void)context, (void)out, (void)outlen, (void)x, (void)chainidx,
        (void)arg;
    say_refused();
    *al = SSL_AD_INTERNAL_ERROR;
    return -1;
}

/* An extension type no one uses: its add callback refuses the handshake. */
#define SAEF_REFUSE_EXT 0xfa5e

/* Every handshake through ctx refused, as server and as client; a context
   where that cannot be installed is not handed to the program at all. */
static SSL_CTX *refuse_all(SSL_CTX *ctx)
{
    REAL(SSL_CTX_set_client_hello_cb);
    real_SSL_CTX_set_client_hello_cb(ctx, refuse_hello, NULL);
    if (SSL_CTX_add_custom_ext(ctx, SAEF_REFUSE_EXT, SSL_EXT_CLIENT_HELLO, refuse_client, NULL,
                               NULL, NULL, NULL))
        return ctx;
    SSL_CTX_free(ctx);
    return NULL;
}

/* A context made for one side gets only that side's role: server options
   never reach a program's outgoing connections. */
static SSL_CTX *install(SSL_CTX *ctx, const SSL_METHOD *meth)
{
    int client_only, server_only;

    if (ctx == NULL || saef_inside)
        return ctx;
    if (*g_broken != '\0')
        return refuse_all(ctx);
    if (g_role == SAEF_ROLE_OFF)
        return ctx;
    client_only = meth == TLS_client_method() || meth == DTLS_client_method();
    server_only = meth == TLS_server_method() || meth == DTLS_server_method();
    saef_inside++;
    if ((g_role == SAEF_ROLE_SERVER || g_role == SAEF_ROLE_BOTH) && !client_only)
        saef_ssl_ctx_server(ctx, g_saef);
    if ((g_role == SAEF_ROLE_CLIENT || g_role == SAEF_ROLE_BOTH) && !server_only)
        saef_ssl_ctx_client(ctx, g_saef);
    saef_inside--;
    return ctx;
}

SAEF_EXPORT SSL_CTX *SSL_CTX_new_ex(OSSL_LIB_CTX *libctx, const char *propq, const SSL_METHOD *meth)
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
    if (ok && !saef_inside && saef_is_installed(ctx)) {
        saef_inside++;
        saef_reapply_ciphers(ctx);
        saef_inside--;
    }
    return ok;
}

SAEF_EXPORT int SSL_CTX_set_ciphersuites(SSL_CTX *ctx, const char *str)
{
    int ok;

    REAL(SSL_CTX_set_ciphersuites);
    ok = real_SSL_CTX_set_ciphersuites(ctx, str);
    if (ok && !saef_inside && saef_is_installed(ctx)) {
        saef_inside++;
        saef_reapply_ciphers(ctx);
        saef_inside--;
    }
    return ok;
}

/* The program's own callbacks are chained behind saef's. */
#define CHAIN(ctx, which, cb, arg)                                                                 \
    (!saef_inside && saef_chain(ctx, which, (void (*)(void))(cb), arg))

/* SSL_CTX_set_*_callback(ctx, cb) with the program's cb chained behind saef's. */
#define CHAINED_SETTER(name, which, cb_type)                                                       \
    SAEF_EXPORT void name(SSL_CTX *ctx, cb_type cb)                                                \
    {                                                                                              \
        REAL(name);                                                                                \
        if (!CHAIN(ctx, which, cb, NULL))                                                          \
            real_##name(ctx, cb);                                                                  \
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
    if (*g_broken != '\0')
        return; /* refuse_hello stays */
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
    if (cmd == SSL_CTRL_SET_TLSEXT_SERVERNAME_ARG &&
        CHAIN(ctx, SAEF_NEXT_SERVERNAME_ARG, NULL, parg))
        return 1;
    return real_SSL_CTX_ctrl(ctx, cmd, larg, parg);
}
