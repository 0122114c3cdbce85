/*
 * The saef:// OSSL_STORE loader: saef://kpsa/ID, saef://km/ID, saef://kc/ID.
 *
 * OpenSSL 3.0 has no store object for a bare secret, so the key is handed
 * out as an HMAC private key: the loader passes an object reference, and
 * the core imports it into the HMAC key manager (of the default provider)
 * through export_object.
 */
#include "saef-provider.h"

#include <openssl/core_names.h>
#include <openssl/core_object.h>
#include <openssl/crypto.h>
#include <openssl/params.h>
#include <openssl/store.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static OSSL_FUNC_store_open_fn store_open;
static OSSL_FUNC_store_settable_ctx_params_fn store_settable;
static OSSL_FUNC_store_set_ctx_params_fn store_set;
static OSSL_FUNC_store_load_fn store_load;
static OSSL_FUNC_store_eof_fn store_eof;
static OSSL_FUNC_store_close_fn store_close;
static OSSL_FUNC_store_export_object_fn store_export;

typedef struct {
    SAEF_PROV_CTX *prov;
    SAEF_KS_TYPE type;
    char id[SAEF_KS_ID_MAX + 1];
    size_t id_len;
    int expect; /* OSSL_STORE_INFO_* the caller wants, 0 = any */
    int done;
    saef_ks_record rec;
} STORE_CTX;

static int hexdigit(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Percent-decodes src into ctx->id; 0 on bad escapes or length. */
static int decode_id(STORE_CTX *ctx, const char *src)
{
    size_t n = 0;

    for (; *src; src++) {
        unsigned char c = (unsigned char)*src;
        if (c == '%') {
            if (!hexdigit(src[1]) || !hexdigit(src[2]))
                return 0;
            saef_hex_decode(src + 1, 2, &c, 1);
            src += 2;
        }
        if (c == '\0' || n >= SAEF_KS_ID_MAX)
            return 0;
        ctx->id[n++] = (char)c;
    }
    ctx->id[n] = '\0';
    ctx->id_len = n;
    return n > 0;
}

static void *store_open(void *provctx, const char *uri)
{
    SAEF_PROV_CTX *prov = provctx;
    STORE_CTX *ctx;
    const char *type, *slash;
    char tname[8];

    if (strncmp(uri, "saef://", 7) != 0) {
        saef_prov_err(prov, SAEF_R_BAD_URI, "%s: use saef://kpsa/ID, saef://km/ID or saef://kc/ID",
                      uri);
        return NULL;
    }
    type = uri + 7;
    slash = strchr(type, '/');
    if (slash == NULL || (size_t)(slash - type) >= sizeof(tname)) {
        saef_prov_err(prov, SAEF_R_BAD_URI, "%s: no key type (kpsa, km or kc)", uri);
        return NULL;
    }
    memcpy(tname, type, (size_t)(slash - type));
    tname[slash - type] = '\0';
    if ((ctx = calloc(1, sizeof(*ctx))) == NULL)
        return NULL;
    ctx->prov = prov;
    ctx->type = saef_ks_type_from_name(tname);
    if (ctx->type == 0) {
        saef_prov_err(prov, SAEF_R_BAD_URI, "%s: unknown key type '%s' (kpsa, km or kc)", uri,
                      tname);
        goto fail;
    }
    if (!decode_id(ctx, slash + 1)) {
        saef_prov_err(prov, SAEF_R_BAD_URI,
                      "%s: the identity must be 1 to %d bytes, percent-encoded correctly", uri,
                      SAEF_KS_ID_MAX);
        goto fail;
    }
    return ctx;
fail:
    free(ctx);
    return NULL;
}

static const OSSL_PARAM *store_settable(void *provctx)
{
    static const OSSL_PARAM settable[] = {
        OSSL_PARAM_int(OSSL_STORE_PARAM_EXPECT, NULL),
        OSSL_PARAM_END,
    };

    (void)provctx;
    return settable;
}

static int store_set(void *loaderctx, const OSSL_PARAM params[])
{
    STORE_CTX *ctx = loaderctx;
    const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, OSSL_STORE_PARAM_EXPECT);

    return p == NULL || OSSL_PARAM_get_int(p, &ctx->expect);
}

static int store_load(void *loaderctx, OSSL_CALLBACK *object_cb, void *object_cbarg,
                      OSSL_PASSPHRASE_CALLBACK *pw_cb, void *pw_cbarg)
{
    STORE_CTX *ctx = loaderctx;
    OSSL_PARAM params[4];
    int object_type = OSSL_OBJECT_PKEY;
    saef_ks *ks;
    SAEF_KS_ERR err;

    (void)pw_cb;
    (void)pw_cbarg;
    ctx->done = 1;
    /* Only a key lives here; any other expectation finds nothing. */
    if (ctx->expect != 0 && ctx->expect != OSSL_STORE_INFO_PKEY)
        return 1;
    if ((ks = saef_prov_store(ctx->prov)) == NULL)
        return 0;
    err = saef_ks_get(ks, ctx->type, ctx->id, ctx->id_len, &ctx->rec);
    if (err != SAEF_KS_OK) {
        saef_prov_err(ctx->prov, err == SAEF_KS_ENOTFOUND ? SAEF_R_NOT_FOUND : SAEF_R_STORE, "%s",
                      saef_ks_last_error(ks));
        return 0;
    }
    if (ctx->rec.not_after != 0 && ctx->rec.not_after <= (int64_t)time(NULL)) {
        saef_ks_record_wipe(&ctx->rec);
        saef_prov_err(ctx->prov, SAEF_R_EXPIRED, "%s key %s has expired",
                      saef_ks_type_name(ctx->type), ctx->id);
        return 0;
    }
    params[0] = OSSL_PARAM_construct_int(OSSL_OBJECT_PARAM_TYPE, &object_type);
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_OBJECT_PARAM_DATA_TYPE, "HMAC", 0);
    /* The reference is the loader context itself; export_object reads it. */
    params[2] = OSSL_PARAM_construct_octet_string(OSSL_OBJECT_PARAM_REFERENCE, &ctx, sizeof(ctx));
    params[3] = OSSL_PARAM_construct_end();
    return object_cb(params, object_cbarg);
}

static int store_export(void *loaderctx, const void *reference, size_t reference_sz,
                        OSSL_CALLBACK *export_cb, void *export_cbarg)
{
    STORE_CTX *ctx = loaderctx;
    OSSL_PARAM params[2];
    int ok;

    if (reference_sz != sizeof(ctx) || memcmp(reference, &ctx, sizeof(ctx)) != 0 ||
        ctx->rec.key_len == 0)
        return 0;
    params[0] =
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PRIV_KEY, ctx->rec.key, ctx->rec.key_len);
    params[1] = OSSL_PARAM_construct_end();
    ok = export_cb(params, export_cbarg);
    saef_ks_record_wipe(&ctx->rec);
    return ok;
}

static int store_eof(void *loaderctx)
{
    return ((STORE_CTX *)loaderctx)->done;
}

static int store_close(void *loaderctx)
{
    STORE_CTX *ctx = loaderctx;

    saef_ks_record_wipe(&ctx->rec);
    free(ctx);
    return 1;
}

const OSSL_DISPATCH saef_store_functions[] = {
    {OSSL_FUNC_STORE_OPEN, (void (*)(void))store_open},
    {OSSL_FUNC_STORE_SETTABLE_CTX_PARAMS, (void (*)(void))store_settable},
    {OSSL_FUNC_STORE_SET_CTX_PARAMS, (void (*)(void))store_set},
    {OSSL_FUNC_STORE_LOAD, (void (*)(void))store_load},
    {OSSL_FUNC_STORE_EOF, (void (*)(void))store_eof},
    {OSSL_FUNC_STORE_CLOSE, (void (*)(void))store_close},
    {OSSL_FUNC_STORE_EXPORT_OBJECT, (void (*)(void))store_export},
    {0, NULL},
};
