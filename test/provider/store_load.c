/* Loads a saef:// URI through OSSL_STORE and prints the PSK as hex (the
   test compares it with what saef-key stored), or the error and exit 1. */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    OSSL_STORE_CTX *st;
    OSSL_STORE_INFO *info;
    unsigned char key[256];
    size_t len = sizeof(key);
    char store[1024] = "", entity[300] = "";
    OSSL_PARAM params[3];
    OSSL_PROVIDER *prov;
    int found = 0;

    if (argc != 2) {
        fprintf(stderr, "usage: store_load URI\n");
        return 2;
    }
    /* The configuration OpenSSL loaded, through the provider's parameters. */
    if ((prov = OSSL_PROVIDER_load(NULL, "saef")) == NULL) {
        ERR_print_errors_fp(stderr);
        return 1;
    }
    params[0] = OSSL_PARAM_construct_utf8_string("store", store, sizeof(store));
    params[1] = OSSL_PARAM_construct_utf8_string("entity_id", entity, sizeof(entity));
    params[2] = OSSL_PARAM_construct_end();
    if (!OSSL_PROVIDER_get_params(prov, params)) {
        fprintf(stderr, "get_params failed\n");
        goto end;
    }
    printf("store=%s\nentity_id=%s\n", store, entity);
    if ((st = OSSL_STORE_open(argv[1], NULL, NULL, NULL, NULL)) == NULL)
        goto end;
    while (!OSSL_STORE_eof(st) && (info = OSSL_STORE_load(st)) != NULL) {
        EVP_PKEY *pk = OSSL_STORE_INFO_get1_PKEY(info);
        if (pk != NULL && EVP_PKEY_is_a(pk, "HMAC") &&
            EVP_PKEY_get_raw_private_key(pk, key, &len) == 1) {
            printf("key=");
            for (size_t i = 0; i < len; i++)
                printf("%02X", key[i]);
            printf("\n");
            found = 1;
        }
        EVP_PKEY_free(pk);
        OSSL_STORE_INFO_free(info);
    }
    OSSL_STORE_close(st);
end:
    OSSL_PROVIDER_unload(prov);
    if (!found)
        ERR_print_errors_fp(stderr);
    return found ? 0 : 1;
}
