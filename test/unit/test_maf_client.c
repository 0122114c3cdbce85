/* saef_maf_psk_used (libsaef/maf-client.c): the MAF client checks no
   certificate, so its handshake must have used the PSK. Real handshakes
   between two SSL objects over a BIO pair, no sockets: with a certificate
   and with a PSK, on TLS 1.2 and 1.3, and before any handshake. */
#include "unit.h"
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <string.h>

#include "maf-client.h"

static const unsigned char km[32] = {0x4b, 0x6d, 1, 2, 3, 4, 5, 6, 7, 8, 9};
static const char kmid[] = "kmid@maf.example.com";

static unsigned int psk_client(SSL *ssl, const char *hint, char *id, unsigned int max_id,
                               unsigned char *psk, unsigned int max_psk)
{
    (void)ssl, (void)hint;
    if (sizeof(kmid) > max_id || sizeof(km) > max_psk)
        return 0;
    memcpy(id, kmid, sizeof(kmid));
    memcpy(psk, km, sizeof(km));
    return sizeof(km);
}

static unsigned int psk_server(SSL *ssl, const char *id, unsigned char *psk, unsigned int max_psk)
{
    (void)ssl;
    if (strcmp(id, kmid) != 0 || sizeof(km) > max_psk)
        return 0;
    memcpy(psk, km, sizeof(km));
    return sizeof(km);
}

/* The TLS 1.3 external PSK km, made here rather than by libsaef. */
static SSL_SESSION *session(SSL *ssl)
{
    static const unsigned char aes128gcmsha256[] = {0x13, 0x01};
    const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, aes128gcmsha256);
    SSL_SESSION *sess = SSL_SESSION_new();

    if (sess == NULL || cipher == NULL || !SSL_SESSION_set1_master_key(sess, km, sizeof(km)) ||
        !SSL_SESSION_set_cipher(sess, cipher) ||
        !SSL_SESSION_set_protocol_version(sess, TLS1_3_VERSION)) {
        SSL_SESSION_free(sess);
        return NULL;
    }
    return sess;
}

static int use_session(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
                       SSL_SESSION **sess)
{
    (void)md;
    *id = (const unsigned char *)kmid;
    *idlen = strlen(kmid);
    return (*sess = session(ssl)) != NULL;
}

static int find_session(SSL *ssl, const unsigned char *id, size_t idlen, SSL_SESSION **sess)
{
    *sess = idlen == strlen(kmid) && memcmp(id, kmid, idlen) == 0 ? session(ssl) : NULL;
    return 1;
}

/* A self-signed certificate on a fresh P-256 key for the server. */
static int add_cert(SSL_CTX *ctx)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    X509_NAME *name = x != NULL ? X509_get_subject_name(x) : NULL;
    int ok = key != NULL && name != NULL && ASN1_INTEGER_set(X509_get_serialNumber(x), 1) &&
             X509_gmtime_adj(X509_getm_notBefore(x), 0) &&
             X509_gmtime_adj(X509_getm_notAfter(x), 3600) &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                        (const unsigned char *)"maf.example.com", -1, -1, 0) &&
             X509_set_issuer_name(x, name) && X509_set_pubkey(x, key) &&
             X509_sign(x, key, EVP_sha256()) > 0 && SSL_CTX_use_certificate(ctx, x) &&
             SSL_CTX_use_PrivateKey(ctx, key);

    X509_free(x);
    EVP_PKEY_free(key);
    return ok;
}

/* Both ends held to version and its suites (ciphersuites on TLS 1.3). */
static int limit(SSL_CTX *ctx, int version, const char *suites)
{
    return ctx != NULL && SSL_CTX_set_min_proto_version(ctx, version) &&
           SSL_CTX_set_max_proto_version(ctx, version) &&
           (version == TLS1_3_VERSION ? SSL_CTX_set_ciphersuites(ctx, suites)
                                      : SSL_CTX_set_cipher_list(ctx, suites));
}

/* saef_maf_psk_used on the client after a handshake at version with suites,
   the server holding a certificate (cert) or both ends the PSK (!cert); -1
   when the handshake failed or made another version. */
static int psk_used(int version, const char *suites, int cert)
{
    SSL_CTX *cc = SSL_CTX_new(TLS_client_method()), *sc = SSL_CTX_new(TLS_server_method());
    SSL *c = NULL, *s = NULL;
    BIO *cb, *sb;
    int used = -1, rc = 0, rs = 0;

    if (!limit(cc, version, suites) || !limit(sc, version, suites) || (cert && !add_cert(sc)))
        goto out;
    if (!cert && version == TLS1_3_VERSION) {
        SSL_CTX_set_psk_use_session_callback(cc, use_session);
        SSL_CTX_set_psk_find_session_callback(sc, find_session);
    } else if (!cert) {
        SSL_CTX_set_psk_client_callback(cc, psk_client);
        SSL_CTX_set_psk_server_callback(sc, psk_server);
    }
    if ((c = SSL_new(cc)) == NULL || (s = SSL_new(sc)) == NULL || !BIO_new_bio_pair(&cb, 0, &sb, 0))
        goto out;
    SSL_set_bio(c, cb, cb);
    SSL_set_bio(s, sb, sb);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    for (int i = 0; i < 20 && (rc != 1 || rs != 1); i++) {
        rc = SSL_do_handshake(c);
        rs = SSL_do_handshake(s);
    }
    if (rc == 1 && rs == 1 && SSL_version(c) == version)
        used = saef_maf_psk_used(c);
out:
    SSL_free(c);
    SSL_free(s);
    SSL_CTX_free(cc);
    SSL_CTX_free(sc);
    return used;
}

/* The PSK-only list of the MAF client hides the TLS 1.2 half: a
   certificate suite must be refused by the rule itself. */
static void test_tls12_certificate_is_not_psk(void)
{
    CU_ASSERT_EQUAL(psk_used(TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256", 1), 0);
}

static void test_tls13_certificate_is_not_psk(void)
{
    CU_ASSERT_EQUAL(psk_used(TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 1), 0);
}

static void test_tls12_psk_suites(void)
{
    CU_ASSERT_EQUAL(psk_used(TLS1_2_VERSION, "PSK-AES128-CBC-SHA256", 0), 1);
    CU_ASSERT_EQUAL(psk_used(TLS1_2_VERSION, "ECDHE-PSK-AES128-CBC-SHA256", 0), 1);
}

static void test_tls13_external_psk(void)
{
    CU_ASSERT_EQUAL(psk_used(TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", 0), 1);
}

static void test_no_handshake_is_not_psk(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = ctx != NULL ? SSL_new(ctx) : NULL;

    CU_ASSERT_PTR_NOT_NULL_FATAL(ssl);
    CU_ASSERT_EQUAL(saef_maf_psk_used(ssl), 0);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
}

int main(int argc, char **argv)
{
    static const CU_TestInfo tests[] = {
        SAEF_TEST(test_tls12_certificate_is_not_psk),
        SAEF_TEST(test_tls13_certificate_is_not_psk),
        SAEF_TEST(test_tls12_psk_suites),
        SAEF_TEST(test_tls13_external_psk),
        SAEF_TEST(test_no_handshake_is_not_psk),
        CU_TEST_INFO_NULL,
    };

    return saef_unit_run("maf_client", tests, NULL, NULL, argc, argv);
}
