/* A saef context (the configuration, the key store) and what saef keeps
   on each SSL_CTX and SSL. */
#include "rules.h"

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdlib.h>

static int ctx_idx = -1, ssl_idx = -1;
static pthread_once_t idx_once = PTHREAD_ONCE_INIT;

static void ctx_data_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                          void *argp)
{
    ctx_data *cd = ptr;

    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    if (cd != NULL) {
        saef_free(cd->s);
        free(cd);
    }
}

static void conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    free(ptr);
}

static void make_indexes(void)
{
    ctx_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ctx_data_free);
    ssl_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_free);
    saef_binding_init();
}

ctx_data *saef_get_cd(const SSL_CTX *ctx)
{
    pthread_once(&idx_once, make_indexes);
    return SSL_CTX_get_ex_data(ctx, ctx_idx);
}

ctx_data *saef_ssl_cd(const SSL *ssl)
{
    return saef_get_cd(SSL_get_SSL_CTX(ssl));
}

conn *saef_get_conn(SSL *ssl)
{
    conn *c;

    pthread_once(&idx_once, make_indexes);
    if ((c = SSL_get_ex_data(ssl, ssl_idx)) == NULL && (c = calloc(1, sizeof(*c))) != NULL &&
        !SSL_set_ex_data(ssl, ssl_idx, c)) {
        free(c);
        c = NULL;
    }
    return c;
}

conn *saef_find_conn(const SSL *ssl)
{
    pthread_once(&idx_once, make_indexes);
    return SSL_get_ex_data(ssl, ssl_idx);
}

/* Opened at once, so a program that drops privileges later keeps access;
   retried at the next handshake if it failed. */
saef_ks *saef_store(saef_ctx *s)
{
    saef_ks *ks;

    pthread_mutex_lock(&s->lock);
    if (s->ks == NULL) {
        const char *path = saef_conf_str(s->conf, SAEF_CONF_STORE);
        unsigned flags = saef_ctx_int(s, SAEF_CONF_STORE_GROUP_READ) ? SAEF_KS_GROUP_READ : 0;
        /* Writable when MAF keys are cached here; read-only is enough otherwise,
           and what a worker without write access gets. */
        if (*saef_conf_str(s->conf, SAEF_CONF_MAF) == '\0' ||
            saef_ks_open(path, flags, &s->ks) != SAEF_KS_OK) {
            if (saef_ks_open(path, flags | SAEF_KS_RDONLY, &s->ks) != SAEF_KS_OK)
                saef_log(s, SAEF_LEVEL_ERROR, "%s", saef_ks_last_error(NULL));
            else if (*saef_conf_str(s->conf, SAEF_CONF_MAF) != '\0')
                saef_log(s, SAEF_LEVEL_WARNING,
                         "key store %s is read-only for this process: keys fetched from a MAF "
                         "are not cached (give it write access to share them)",
                         path);
        }
    }
    ks = s->ks;
    pthread_mutex_unlock(&s->lock);
    return ks;
}

saef_ctx *saef_new_adopt(saef_conf *conf)
{
    saef_ctx *s = conf != NULL ? calloc(1, sizeof(*s)) : NULL;

    if (s == NULL) {
        saef_conf_free(conf);
        return NULL;
    }
    s->refs = 1;
    s->conf = conf;
    for (int k = 0; k < SAEF_CONF_NKEYS; k++)
        s->num[k] = saef_conf_int(s->conf, (SAEF_CONF_KEY)k);
    pthread_mutex_init(&s->lock, NULL);
    saef_store(s);
    return s;
}

saef_ctx *saef_new(const saef_conf *conf)
{
    return saef_new_adopt(saef_conf_dup(conf));
}

saef_ctx *saef_new_from_openssl(OSSL_LIB_CTX *libctx)
{
    saef_conf *conf = saef_conf_new();

    if (conf != NULL && OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL) &&
        saef_conf_from_provider(libctx, conf) >= 0)
        return saef_new_adopt(conf);
    saef_conf_free(conf);
    return NULL;
}

void saef_free(saef_ctx *s)
{
    if (s == NULL || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    saef_ks_close(s->ks);
    pthread_mutex_destroy(&s->lock);
    saef_conf_free(s->conf);
    free(s);
}

ctx_data *saef_attach(SSL_CTX *ctx, saef_ctx *s)
{
    ctx_data *cd = saef_get_cd(ctx);

    if (cd != NULL)
        return cd;
    if ((cd = calloc(1, sizeof(*cd))) == NULL)
        return NULL;
    cd->s = s;
    __atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
    if (!SSL_CTX_set_ex_data(ctx, ctx_idx, cd)) {
        saef_free(s);
        free(cd);
        return NULL;
    }
    cd->dtls = SSL_CTX_get_ssl_method(ctx) == DTLS_method() ||
               SSL_CTX_get_ssl_method(ctx) == DTLS_server_method() ||
               SSL_CTX_get_ssl_method(ctx) == DTLS_client_method();
    return cd;
}

int saef_is_installed(const SSL_CTX *ctx)
{
    return saef_get_cd(ctx) != NULL;
}
