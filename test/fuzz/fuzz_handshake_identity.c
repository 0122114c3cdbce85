/* Whole handshakes over memory BIOs with a fuzzed PSK identity: the client
   offers the input as its identity (TLS 1.2, TLS 1.3 or DTLS 1.2), with the
   stored key when there is one and a random key otherwise. Only an
   identity the server may accept completes, and it binds the right entity. */
#include "fuzz-tls.h"
#include "saef-internal.h"

#include <openssl/err.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { P_TLS12, P_TLS13, P_DTLS12, P_N };

static struct {
    const uint8_t *id;
    size_t id_len;
    unsigned char key[SAEF_KS_KEY_MAX];
    size_t key_len;
} offer;
static SSL_CTX *clients[P_N];

static unsigned int client_psk(SSL *ssl, const char *hint, char *id, unsigned int max_id,
                               unsigned char *psk, unsigned int max_psk)
{
    (void)ssl, (void)hint;
    /* OpenSSL's TLS 1.2 identity is a C string of at most 128 bytes. */
    if (offer.id_len >= max_id || offer.key_len > max_psk)
        return 0;
    memcpy(id, offer.id, offer.id_len);
    id[offer.id_len] = '\0';
    memcpy(psk, offer.key, offer.key_len);
    return (unsigned int)offer.key_len;
}

static int client_session(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *len,
                          SSL_SESSION **sess)
{
    (void)md;
    *sess = saef_psk_session(ssl, offer.key, offer.key_len);
    *id = offer.id;
    *len = offer.id_len;
    return *sess != NULL;
}

static SSL_CTX *client_ctx(int proto)
{
    if (clients[proto] != NULL)
        return clients[proto];
    SSL_CTX *c = SSL_CTX_new(proto == P_DTLS12 ? DTLS_client_method() : TLS_client_method());
    FUZZ_CHECK(c != NULL);
    if (proto == P_TLS13) {
        SSL_CTX_set_min_proto_version(c, TLS1_3_VERSION);
        SSL_CTX_set_psk_use_session_callback(c, client_session);
    } else {
        SSL_CTX_set_max_proto_version(c, proto == P_DTLS12 ? DTLS1_2_VERSION : TLS1_2_VERSION);
        SSL_CTX_set_cipher_list(c, "PSK-AES128-CBC-SHA256:PSK-AES128-CCM8");
        SSL_CTX_set_psk_client_callback(c, client_psk);
    }
    return clients[proto] = c;
}

/* saef's rules, restated: which stored record (if any) must be accepted. */
static const fuzz_record *acceptable(int variant, const char *sni, const saef_conf *conf)
{
    SAEF_KS_TYPE type = variant == FUZZ_SRV_MAF
                            ? SAEF_KS_KM
                            : saef_id_type(conf, (const char *)offer.id, offer.id_len);

    for (size_t i = 0; i < fuzz_nrecords; i++) {
        const fuzz_record *r = &fuzz_records[i];
        if (r->type != type || strlen(r->id) != offer.id_len ||
            memcmp(r->id, offer.id, offer.id_len) != 0)
            continue;
        if (r->expired)
            return NULL;
        if (r->self[0] == '\0' || strcmp(r->self, FUZZ_ENTITY_ID) == 0 ||
            (sni != NULL && strcmp(r->self, sni) == 0))
            return r;
        return NULL;
    }
    return NULL;
}

/* Runs both ends until neither moves; 1 if both finished. */
static int handshake(SSL *c, SSL *s)
{
    char buf[16384];
    int n, moved = 1;

    for (int i = 0; i < 64 && moved; i++) {
        moved = 0;
        SSL_do_handshake(c);
        while ((n = BIO_read(SSL_get_wbio(c), buf, sizeof(buf))) > 0)
            moved |= BIO_write(SSL_get_rbio(s), buf, n) == n;
        SSL_do_handshake(s);
        while ((n = BIO_read(SSL_get_wbio(s), buf, sizeof(buf))) > 0)
            moved |= BIO_write(SSL_get_rbio(c), buf, n) == n;
    }
    return SSL_is_init_finished(c) && SSL_is_init_finished(s);
}

static SSL *endpoint(SSL_CTX *ctx, int dtls)
{
    SSL *ssl = SSL_new(ctx);
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());

    FUZZ_CHECK(ssl != NULL && in != NULL && out != NULL);
    BIO_set_mem_eof_return(in, -1); /* empty means "wait", not end of stream */
    SSL_set_bio(ssl, in, out);
    if (dtls) {
        SSL_set_options(ssl, SSL_OP_NO_QUERY_MTU);
        SSL_set_mtu(ssl, 1400);
    }
    return ssl;
}

/* Input: protocol byte, server role and SNI byte, then the identity. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const snis[] = {NULL, "cse.example.com", "other.example.com"};
    int proto, variant, ok;
    const char *sni;
    const fuzz_record *want;
    const saef_conf *conf;
    saef_ks_record rec;
    SSL *c, *s;

    if (size < 2)
        return 0;
    proto = data[0] % P_N;
    variant = data[1] % FUZZ_NSRV;
    sni = snis[(data[1] / FUZZ_NSRV) % 3];
    offer.id = data + 2;
    offer.id_len = size - 2;
    conf = fuzz_server_config(variant);
    want = acceptable(variant, sni, conf);
    /* The right key for a stored identity (half of a kc with kc_half). */
    rec.key_len = 0;
    for (size_t i = 0; i < fuzz_nrecords; i++)
        if (strlen(fuzz_records[i].id) == offer.id_len &&
            memcmp(fuzz_records[i].id, offer.id, offer.id_len) == 0)
            fuzz_record_fill(&fuzz_records[i], &rec);
    if (rec.key_len == 0)
        FUZZ_CHECK(RAND_bytes(rec.key, (int)(rec.key_len = 32)) == 1);
    if (want != NULL && want->type == SAEF_KS_KC && saef_conf_int(conf, SAEF_CONF_KC_HALF) &&
        rec.key_len > 16)
        rec.key_len = 16;
    memcpy(offer.key, rec.key, rec.key_len);
    offer.key_len = rec.key_len;
    saef_ks_record_wipe(&rec);

    c = endpoint(client_ctx(proto), proto == P_DTLS12);
    s = endpoint(fuzz_server_ctx(variant, proto == P_DTLS12), proto == P_DTLS12);
    if (sni != NULL)
        SSL_set_tlsext_host_name(c, sni);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    ok = handshake(c, s);
    /* TLS 1.2's identity is a C string: an embedded NUL ends it. */
    if (proto != P_TLS13 && memchr(offer.id, '\0', offer.id_len) != NULL)
        FUZZ_CHECK(!ok);
    else
        FUZZ_CHECK(ok == (want != NULL));
    if (ok) {
        char entity[SAEF_KS_ENTITY_MAX + 16];
        if (want->peer[0] != '\0')
            snprintf(entity, sizeof(entity), "%s", want->peer);
        else
            snprintf(entity, sizeof(entity), "%s-%s", variant == FUZZ_SRV_MAF ? "11" : "12",
                     want->id);
        FUZZ_CHECK(strcmp(saef_ssl_identity(s), want->id) == 0);
        FUZZ_CHECK(strcmp(saef_ssl_peer_entity(s), entity) == 0);
        FUZZ_CHECK(saef_ssl_framework(s) == (variant == FUZZ_SRV_MAF    ? SAEF_FW_MAF_CLIENT
                                             : want->type == SAEF_KS_KC ? SAEF_FW_MAF
                                                                        : SAEF_FW_PSK));
    }
    OPENSSL_cleanse(&offer, sizeof(offer));
    SSL_free(c);
    SSL_free(s);
    ERR_clear_error();
    return 0;
}
