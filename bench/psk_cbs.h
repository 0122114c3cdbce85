/* Client-side TLS-PSK callbacks for one identity and key, shared by the
 * benchmark client and the test load client (no saef in either). */
#ifndef SAEF_BENCH_PSK_CBS_H
#define SAEF_BENCH_PSK_CBS_H
#include <openssl/ssl.h>

/* What the callbacks offer; the caller keeps both buffers alive and may
   change the identity's bytes in place between handshakes. */
void psk_cbs_set(const char *identity, const unsigned char *key, size_t key_len);
/* TLS 1.2 and DTLS: SSL_CTX_set_psk_client_callback. */
unsigned int psk_cbs_client(SSL *ssl, const char *hint, char *identity,
                            unsigned int max_identity_len, unsigned char *psk,
                            unsigned int max_psk_len);
/* TLS 1.3 external PSK with SHA-256 (TLS_AES_128_GCM_SHA256, what s_client
   -psk offers): SSL_CTX_set_psk_use_session_callback. */
int psk_cbs_use_session(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
                        SSL_SESSION **sess);
#endif
