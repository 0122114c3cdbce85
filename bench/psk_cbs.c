#include "psk_cbs.h"
#include <string.h>

static const char *cb_identity;
static const unsigned char *cb_key;
static size_t cb_key_len;

void psk_cbs_set(const char *identity, const unsigned char *key, size_t key_len)
{
    cb_identity = identity;
    cb_key = key;
    cb_key_len = key_len;
}

unsigned int psk_cbs_client(SSL *ssl, const char *hint, char *identity,
                            unsigned int max_identity_len, unsigned char *psk,
                            unsigned int max_psk_len)
{
    (void)ssl, (void)hint;
    if (strlen(cb_identity) >= max_identity_len || cb_key_len > max_psk_len)
        return 0;
    strcpy(identity, cb_identity);
    memcpy(psk, cb_key, cb_key_len);
    return (unsigned int)cb_key_len;
}

int psk_cbs_use_session(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
                        SSL_SESSION **sess)
{
    static const unsigned char aes128gcmsha256[] = {0x13, 0x01};
    const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, aes128gcmsha256);

    *sess = NULL;
    if (md != NULL && !EVP_MD_is_a(md, "SHA256"))
        return 1;
    if (cipher == NULL || (*sess = SSL_SESSION_new()) == NULL ||
        !SSL_SESSION_set1_master_key(*sess, cb_key, cb_key_len) ||
        !SSL_SESSION_set_cipher(*sess, cipher) ||
        !SSL_SESSION_set_protocol_version(*sess, TLS1_3_VERSION)) {
        SSL_SESSION_free(*sess);
        *sess = NULL;
        return 0;
    }
    *id = (const unsigned char *)cb_identity;
    *idlen = strlen(cb_identity);
    return 1;
}
