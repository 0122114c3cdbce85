/* The TLS 1.3 external PSK session, shared by the rules and the MAF client. */
#include "saef-internal.h"

#include <openssl/ssl.h>

/* A TLS 1.3 external PSK: SHA-256, the hash RFC 8446 assumes for one. */
SSL_SESSION *saef_psk_session(SSL *ssl, const unsigned char *key, size_t len)
{
    static const unsigned char aes128gcmsha256[] = {0x13, 0x01};
    const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, aes128gcmsha256);
    SSL_SESSION *sess = SSL_SESSION_new();

    SSL_SESSION *cur = SSL_get_session(ssl);
    const unsigned char *sid_ctx = NULL;
    unsigned int sid_ctx_len = 0;

    /* OpenSSL refuses a session whose id context differs from the SSL's
       (programs like Python set one); 3.0 has no getter for the SSL's, but
       the session it is building carries a copy. */
    if (cur != NULL)
        sid_ctx = SSL_SESSION_get0_id_context(cur, &sid_ctx_len);
    if (sess == NULL || cipher == NULL || !SSL_SESSION_set1_master_key(sess, key, len) ||
        !SSL_SESSION_set_cipher(sess, cipher) ||
        !SSL_SESSION_set_protocol_version(sess, TLS1_3_VERSION) ||
        (sid_ctx_len > 0 && !SSL_SESSION_set1_id_context(sess, sid_ctx, sid_ctx_len))) {
        SSL_SESSION_free(sess);
        return NULL;
    }
    return sess;
}
