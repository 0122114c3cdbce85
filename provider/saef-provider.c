/* saef.so: entry point, configuration, parameters and errors. */
#include "saef-provider.h"

#include <openssl/conf.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef SAEF_VERSION
#define SAEF_VERSION "dev"
#endif

static OSSL_FUNC_core_new_error_fn *core_new_error;
static OSSL_FUNC_core_set_error_debug_fn *core_set_error_debug;
static OSSL_FUNC_core_vset_error_fn *core_vset_error;
static OSSL_FUNC_core_get_params_fn *core_get_params;
static OSSL_FUNC_core_get_libctx_fn *core_get_libctx;

static OSSL_FUNC_provider_teardown_fn saef_teardown;
static OSSL_FUNC_provider_gettable_params_fn saef_gettable_params;
static OSSL_FUNC_provider_get_params_fn saef_get_params;
static OSSL_FUNC_provider_query_operation_fn saef_query;
static OSSL_FUNC_provider_get_reason_strings_fn saef_reason_strings;

static const OSSL_ITEM reasons[] = {
    {SAEF_R_BAD_CONFIG, "bad saef configuration"}, {SAEF_R_BAD_URI, "bad saef URI"},
    {SAEF_R_NOT_FOUND, "no such saef key"},        {SAEF_R_STORE, "saef key store error"},
    {SAEF_R_EXPIRED, "saef key expired"},          {0, NULL},
};

void saef_prov_err(const SAEF_PROV_CTX *ctx, int reason, const char *fmt, ...)
{
    va_list ap;

    if (core_new_error == NULL)
        return;
    va_start(ap, fmt);
    core_new_error(ctx->core);
    core_set_error_debug(ctx->core, OPENSSL_FILE, OPENSSL_LINE, "saef");
    core_vset_error(ctx->core, (uint32_t)reason, fmt, ap);
    va_end(ap);
}

saef_ks *saef_prov_store(SAEF_PROV_CTX *ctx)
{
    saef_ks *ks;
    SAEF_KS_ERR err = SAEF_KS_OK;

    pthread_mutex_lock(&ctx->lock);
    if (ctx->ks == NULL) {
        unsigned flags = SAEF_KS_RDONLY;
        if (saef_conf_int(ctx->conf, SAEF_CONF_STORE_GROUP_READ))
            flags |= SAEF_KS_GROUP_READ;
        err = saef_ks_open(saef_conf_str(ctx->conf, SAEF_CONF_STORE), flags, &ctx->ks);
    }
    ks = ctx->ks;
    pthread_mutex_unlock(&ctx->lock);
    if (err != SAEF_KS_OK)
        saef_prov_err(ctx, SAEF_R_STORE, "%s", saef_ks_last_error(NULL));
    return ks;
}

static const OSSL_ALGORITHM store_algs[] = {
    {"saef", "provider=saef", saef_store_functions, "saef:// key store (KpsaID, KmID, KcID)"},
    {NULL, NULL, NULL, NULL},
};

static const OSSL_ALGORITHM *saef_query(void *provctx, int operation_id, int *no_cache)
{
    (void)provctx;
    *no_cache = 0;
    return operation_id == OSSL_OP_STORE ? store_algs : NULL;
}

static const OSSL_ITEM *saef_reason_strings(void *provctx)
{
    (void)provctx;
    return reasons;
}

static OSSL_PARAM gettable[4 + SAEF_CONF_NKEYS + 1];

static void build_gettable(void)
{
    gettable[0] = OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_NAME, NULL, 0);
    gettable[1] = OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_VERSION, NULL, 0);
    gettable[2] = OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_BUILDINFO, NULL, 0);
    gettable[3] = OSSL_PARAM_construct_int(OSSL_PROV_PARAM_STATUS, NULL);
    for (int k = 0; k < SAEF_CONF_NKEYS; k++)
        gettable[4 + k] = OSSL_PARAM_construct_utf8_ptr(saef_conf_name(k), NULL, 0);
    gettable[4 + SAEF_CONF_NKEYS] = OSSL_PARAM_construct_end();
}

static const OSSL_PARAM *saef_gettable_params(void *provctx)
{
    (void)provctx;
    return gettable;
}

static int saef_get_params(void *provctx, OSSL_PARAM params[])
{
    SAEF_PROV_CTX *ctx = provctx;
    OSSL_PARAM *p;

    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_NAME)) != NULL &&
        !OSSL_PARAM_set_utf8_ptr(p, "saef: oneM2M security associations"))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_VERSION)) != NULL &&
        !OSSL_PARAM_set_utf8_ptr(p, SAEF_VERSION))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_BUILDINFO)) != NULL &&
        !OSSL_PARAM_set_utf8_ptr(p, "saef " SAEF_VERSION))
        return 0;
    if ((p = OSSL_PARAM_locate(params, OSSL_PROV_PARAM_STATUS)) != NULL &&
        !OSSL_PARAM_set_int(p, 1))
        return 0;
    for (int k = 0; k < SAEF_CONF_NKEYS; k++) {
        p = OSSL_PARAM_locate(params, saef_conf_name(k));
        if (p == NULL)
            continue;
        /* Both buffer and pointer requests: the shim passes buffers. */
        if (!(p->data_type == OSSL_PARAM_UTF8_PTR
                  ? OSSL_PARAM_set_utf8_ptr(p, saef_conf_str(ctx->conf, k))
                  : OSSL_PARAM_set_utf8_string(p, saef_conf_str(ctx->conf, k))))
            return 0;
    }
    return 1;
}

static void saef_teardown(void *provctx)
{
    SAEF_PROV_CTX *ctx = provctx;

    saef_ks_close(ctx->ks);
    saef_conf_free(ctx->conf);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
}

static const OSSL_DISPATCH provider_functions[] = {
    {OSSL_FUNC_PROVIDER_TEARDOWN, (void (*)(void))saef_teardown},
    {OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, (void (*)(void))saef_gettable_params},
    {OSSL_FUNC_PROVIDER_GET_PARAMS, (void (*)(void))saef_get_params},
    {OSSL_FUNC_PROVIDER_QUERY_OPERATION, (void (*)(void))saef_query},
    {OSSL_FUNC_PROVIDER_GET_REASON_STRINGS, (void (*)(void))saef_reason_strings},
    {0, NULL},
};

/* Fails with a message naming what is wrong. OpenSSL 3.0 drops errors of
   providers activated from the config: without the line on stderr a typo
   would silently disable saef. */
static int refuse(SAEF_PROV_CTX *ctx, const char *what, const char *why)
{
    saef_prov_err(ctx, SAEF_R_BAD_CONFIG, "saef provider: %s", why);
    fprintf(stderr, "saef provider: %s%s; saef is not loaded\n", what, why);
    return 0;
}

/* The configuration names the store and the peers' identities: one that
   others may change is refused, as OpenSSH refuses such a ~/.ssh/config.
   It is the file OpenSSL loads by default (OPENSSL_CONF or OPENSSLDIR's);
   /dev/null and other non-files hold nothing to trust. */
static int config_file_safe(SAEF_PROV_CTX *ctx, const char *file)
{
    char why[4200];
    struct stat st;

    if (file == NULL || stat(file, &st) != 0 || !S_ISREG(st.st_mode) ||
        saef_path_is_safe(file, -1, why, sizeof(why)))
        return 1;
    return refuse(ctx, "unsafe configuration: ", why);
}

/* Whether the core holds `name` for us: the file read by saef_conf_file_check
   may not be the configuration this provider was loaded from. */
static int key_in_use(const char *name, void *arg)
{
    SAEF_PROV_CTX *ctx = arg;
    char *value = NULL;
    OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_ptr(name, &value, 0), OSSL_PARAM_END};

    return core_get_params(ctx->core, p) && value != NULL;
}

/* A misspelled key would leave a setting at its default without a word. */
static int no_unknown_key(SAEF_PROV_CTX *ctx, const char *file)
{
    char *prov = NULL, err[600];
    OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_ptr(OSSL_PROV_PARAM_CORE_PROV_NAME, &prov, 0),
                      OSSL_PARAM_END};

    if (!core_get_params(ctx->core, p) || prov == NULL ||
        saef_conf_file_check(file, prov, key_in_use, ctx, NULL, err, sizeof(err)) >= 0)
        return 1;
    return refuse(ctx, "openssl.cnf: ", err);
}

/* All configuration keys in one core_get_params call; every value validated. */
static int read_config(SAEF_PROV_CTX *ctx)
{
    OSSL_PARAM params[SAEF_CONF_NKEYS + 1];
    char *values[SAEF_CONF_NKEYS] = {0};
    char *file = CONF_get1_default_config_file(), err[512];
    int ok = config_file_safe(ctx, file) && no_unknown_key(ctx, file);

    OPENSSL_free(file);
    if (!ok)
        return 0;
    for (int k = 0; k < SAEF_CONF_NKEYS; k++)
        params[k] = OSSL_PARAM_construct_utf8_ptr(saef_conf_name(k), &values[k], 0);
    params[SAEF_CONF_NKEYS] = OSSL_PARAM_construct_end();
    if (!core_get_params(ctx->core, params))
        return 0;
    for (int k = 0; k < SAEF_CONF_NKEYS; k++)
        if (values[k] != NULL &&
            !saef_conf_set(ctx->conf, saef_conf_name(k), values[k], err, sizeof(err)))
            return refuse(ctx, "openssl.cnf: ", err);
    return 1;
}

SAEF_EXPORT OSSL_provider_init_fn OSSL_provider_init;

int OSSL_provider_init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in,
                       const OSSL_DISPATCH **out, void **provctx)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    SAEF_PROV_CTX *ctx;

    for (; in->function_id != 0; in++) {
        switch (in->function_id) {
        case OSSL_FUNC_CORE_NEW_ERROR: core_new_error = OSSL_FUNC_core_new_error(in); break;
        case OSSL_FUNC_CORE_SET_ERROR_DEBUG:
            core_set_error_debug = OSSL_FUNC_core_set_error_debug(in);
            break;
        case OSSL_FUNC_CORE_VSET_ERROR: core_vset_error = OSSL_FUNC_core_vset_error(in); break;
        case OSSL_FUNC_CORE_GET_PARAMS: core_get_params = OSSL_FUNC_core_get_params(in); break;
        case OSSL_FUNC_CORE_GET_LIBCTX: core_get_libctx = OSSL_FUNC_core_get_libctx(in); break;
        }
    }
    if (core_get_params == NULL || core_get_libctx == NULL ||
        (ctx = calloc(1, sizeof(*ctx))) == NULL)
        return 0;
    pthread_once(&once, build_gettable);
    ctx->core = handle;
    ctx->libctx = (OSSL_LIB_CTX *)core_get_libctx(handle);
    pthread_mutex_init(&ctx->lock, NULL);
    if ((ctx->conf = saef_conf_new()) == NULL || !read_config(ctx)) {
        saef_teardown(ctx);
        return 0;
    }
    *out = provider_functions;
    *provctx = ctx;
    return 1;
}
