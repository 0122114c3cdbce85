/* Entity B's ClientHello callback: the raw pre_shared_key, server_name and
   cipher suite fields OpenSSL 3.0's PSK callbacks cannot see. */
#include "rules.h"

#include <string.h>

#define TLS13_SHA256_SUITES                                                                        \
    "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_CCM_SHA256"

/*
 * Could these bytes be a PSK identity (UTF-8 text, no control characters)?
 * TLS 1.3 sends session tickets through the same list: OpenSSL's are longer
 * than any identity, or (stateful) 32 random bytes, which almost never pass.
 */
int saef_plausible_identity(const unsigned char *p, size_t len)
{
    if (len == 0 || len > SAEF_KS_ID_MAX)
        return 0;
    for (size_t i = 0; i < len;) {
        unsigned char b = p[i];
        size_t n = (b & 0xe0) == 0xc0 ? 1 : (b & 0xf0) == 0xe0 ? 2 : (b & 0xf8) == 0xf0 ? 3 : 0;

        if (b < 0x20 || b == 0x7f)
            return 0;
        if (b >= 0x80 && (n == 0 || b < 0xc2 || b > 0xf4 || i + n >= len))
            return 0;
        for (size_t k = 1; k <= n; k++)
            if ((p[i + k] & 0xc0) != 0x80)
                return 0;
        i += n + 1;
    }
    return 1;
}

/* Does the ClientHello offer one of our identities in pre_shared_key? */
static int offers_known_psk(SSL *ssl, const ctx_data *cd)
{
    saef_ctx *s = cd->s;
    const unsigned char *p;
    size_t len, total;
    saef_ks *ks = saef_store(s);
    saef_ks_record rec;

    if (ks == NULL || !SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_psk, &p, &len) || len < 2)
        return 0;
    total = (size_t)p[0] << 8 | p[1];
    p += 2;
    if (total > len - 2)
        return 0;
    while (total >= 6) {
        size_t idlen = (size_t)p[0] << 8 | p[1];
        if (idlen + 6 > total)
            return 0;
        /* A ticket: ours, or a certificate session's; a SHA-256 suite harms neither. */
        if (!saef_plausible_identity(p + 2, idlen))
            return 1;
        {
            SAEF_KS_TYPE type =
                cd->maf ? SAEF_KS_KM : saef_id_type(s->conf, (const char *)p + 2, idlen);
            /* A MAF identity may not be fetched yet: it is ours all the same. */
            if (type == SAEF_KS_KC)
                return 1;
            if (saef_ks_get(ks, type, p + 2, idlen, &rec) == SAEF_KS_OK) {
                saef_ks_record_wipe(&rec);
                return 1;
            }
        }
        p += idlen + 6;
        total -= idlen + 6;
    }
    return 0;
}

/* Does the client offer TLS_AES_256_GCM_SHA384, the one SHA-384 suite? */
static int offers_sha384(SSL *ssl)
{
    const unsigned char *p;
    size_t len = SSL_client_hello_get0_ciphers(ssl, &p);

    for (size_t i = 0; i + 1 < len; i += 2)
        if (p[i] == 0x13 && p[i + 1] == 0x02)
            return 1;
    return 0;
}

/* The host_name of the server_name extension (RFC 6066 3), if there is one. */
static void hello_sni(SSL *ssl)
{
    const unsigned char *p;
    size_t len, n;
    conn *c;

    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) || len < 5 ||
        ((size_t)p[0] << 8 | p[1]) != len - 2 || p[2] != TLSEXT_NAMETYPE_host_name)
        return;
    n = (size_t)p[3] << 8 | p[4];
    if (n == 0 || n > len - 5 || memchr(p + 5, '\0', n) != NULL ||
        (c = saef_get_conn(ssl)) == NULL || n >= sizeof(c->sni))
        return;
    memcpy(c->sni, p + 5, n);
    c->sni[n] = '\0';
}

int saef_hello_cb(SSL *ssl, int *al, void *arg)
{
    ctx_data *cd = arg;
    const unsigned char *psk;
    size_t len;

    if (cd->next_hello != NULL) {
        int r = cd->next_hello(ssl, al, cd->next_hello_arg);
        if (r != SSL_CLIENT_HELLO_SUCCESS)
            return r;
    }
    /* The rest concerns TLS 1.3 PSKs only: the SNI their callbacks cannot
       see on OpenSSL 3.0, and the suite. */
    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_psk, &psk, &len))
        return SSL_CLIENT_HELLO_SUCCESS;
    hello_sni(ssl);
    /* A SHA-384 suite would make the server ignore a SHA-256 external PSK.
       Only then are the identities looked up here: the suite list is rebuilt
       per connection, which costs more than the handshake's lookup. */
    if (offers_sha384(ssl) && offers_known_psk(ssl, cd)) {
        SAEF_DEBUG(cd->s, "ClientHello offers a saef PSK and a SHA-384 suite: SHA-256 suites only");
        if (!SSL_set_ciphersuites(ssl, TLS13_SHA256_SUITES))
            return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}
