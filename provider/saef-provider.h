/* Internal to saef.so: the provider context and error reporting.
   Errors: OpenSSL's convention (1 / 0, NULL) with the reason raised on
   OpenSSL's error queue through saef_prov_err (library "saef", SAEF_R_*). */
#ifndef SAEF_PROVIDER_H
#define SAEF_PROVIDER_H

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <pthread.h>
#include "saef_common.h"
#include "saef_conf.h"

typedef struct {
    const OSSL_CORE_HANDLE *core;
    OSSL_LIB_CTX *libctx;
    saef_conf *conf;
    pthread_mutex_t lock; /* guards ks */
    saef_ks *ks;          /* opened read-only at first use */
} SAEF_PROV_CTX;

enum {
    SAEF_R_BAD_CONFIG = 1,
    SAEF_R_BAD_URI,
    SAEF_R_NOT_FOUND,
    SAEF_R_STORE,
    SAEF_R_EXPIRED,
};

void saef_prov_err(const SAEF_PROV_CTX *ctx, int reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The keystore, opened on first use; NULL with an error raised. */
saef_ks *saef_prov_store(SAEF_PROV_CTX *ctx);

extern const OSSL_DISPATCH saef_store_functions[];

#endif
