/*
 * saef.h - oneM2M security associations (TS-0003 8.2.2.1, 8.2.2.3) as
 * OpenSSL TLS-PSK callbacks.
 *
 * A program that can change installs the roles on its SSL_CTX:
 *
 *     saef_ctx *s = saef_new_from_openssl(NULL);   // config from openssl.cnf
 *     saef_ssl_ctx_server(ctx, s);                 // Entity B
 *     ...after the handshake:
 *     saef_ssl_peer_entity(ssl)                    // the AE-ID/CSE-ID bound
 *
 * Programs that cannot change get the same through libsaef-preload.so
 * (saef-run(1)). Keys come from the saef keystore at every handshake, so a
 * key added, replaced or deleted with saef-key(1) applies at the next one.
 *
 * Errors: constructors return NULL on failure; the calls that install or
 * set something return 1 on success and 0 on failure; the per-connection
 * getters return NULL / SAEF_FW_NONE when there is nothing (yet);
 * saef_originator_check answers the oneM2M RSC itself. Why something was
 * refused goes to saef's log (saef.cnf(5) log), never to the peer.
 *
 * ABI: libsaef.so changes its SONAME's number whenever an exported
 * function's signature or a public structure changes (here or in the
 * headers it includes: saef_conf.h, saef_keystore.h), and keeps it when
 * functions are only added. Contexts and configurations are opaque.
 */
#ifndef SAEF_H
#define SAEF_H

#include <openssl/ssl.h>
#include "saef_conf.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct saef_ctx saef_ctx;

typedef enum {
    SAEF_FW_NONE = 0,      /* no association (yet), or not a saef PSK */
    SAEF_FW_PSK = 1,       /* pre-provisioned key, TS-0003 8.2.2.1 */
    SAEF_FW_MAF = 2,       /* MAF-based, TS-0003 8.2.2.3 */
    SAEF_FW_MAF_CLIENT = 3 /* a MAF client (KmID/Km) at the MAF, TS-0003 8.8.2.2 */
} SAEF_FRAMEWORK;

/* A context for this configuration (it keeps a copy: free conf when you like;
   NULL: the defaults). NULL on allocation failure. */
SAEF_EXPORT saef_ctx *saef_new(const saef_conf *conf);
/*
 * A context for the configuration OpenSSL loaded (the saef provider's section
 * of openssl.cnf in libctx, NULL = default); defaults when the provider is not
 * loaded. NULL on error.
 */
SAEF_EXPORT saef_ctx *saef_new_from_openssl(OSSL_LIB_CTX *libctx);
/* Drops the caller's reference; SSL_CTXs using it keep their own. */
SAEF_EXPORT void saef_free(saef_ctx *s);

/*
 * Entity B: PSK server callbacks for TLS 1.2 / DTLS 1.2 and TLS 1.3, a
 * ClientHello callback and an info callback (for the audit line; one the
 * program set before is called too). Sets TLS 1.2 as the minimum and puts
 * the TS-0003 10.2.2 suites first. 1 on success.
 */
SAEF_EXPORT int saef_ssl_ctx_server(SSL_CTX *ctx, saef_ctx *s);
/*
 * The MAF: like the server role, but clients authenticate with KmID/Km (km
 * records) and are bound to the record's peer (the MAF Client ID) or to the
 * Credential-ID "11-<KmID>".
 */
SAEF_EXPORT int saef_ssl_ctx_maf_server(SSL_CTX *ctx, saef_ctx *s);
/* Entity A: PSK client callbacks for TLS 1.2 / DTLS 1.2 and TLS 1.3. */
SAEF_EXPORT int saef_ssl_ctx_client(SSL_CTX *ctx, saef_ctx *s);

/*
 * saef judges what each handshake used in the context's servername callback
 * (it runs on both sides once OpenSSL has chosen a PSK, ticket or session).
 * A program that needs its own sets it here, after installing a role; saef
 * calls it first. SSL_CTX_set_tlsext_servername_callback would replace saef's.
 */
SAEF_EXPORT int saef_ssl_ctx_set_servername_callback(SSL_CTX *ctx, int (*cb)(SSL *, int *, void *),
                                                     void *arg);

/*
 * Entity A's choice of key, per connection: an explicit identity, or the
 * target entity (IdB) whose record's peer matches (exactly; a live kc before
 * a kpsa). Without either, IdB is what `targets` (saef.cnf(5)) maps the SNI
 * host name or the peer's address:port to, else the SNI host name itself;
 * without any, the store's only usable key.
 */
SAEF_EXPORT int saef_ssl_set_identity(SSL *ssl, const char *identity);
SAEF_EXPORT int saef_ssl_set_target(SSL *ssl, const char *idb);

/* What the association established; NULL / SAEF_FW_NONE before it did. */
SAEF_EXPORT const char *saef_ssl_identity(const SSL *ssl);
SAEF_EXPORT const char *saef_ssl_peer_entity(const SSL *ssl);
SAEF_EXPORT SAEF_FRAMEWORK saef_ssl_framework(const SSL *ssl);

/*
 * Entity B for a server whose own TLS layer asks for the key of a PSK
 * identity and shows no SSL (a broker plugin): the same rules as the server
 * callbacks (identity forms, expiry, the record bound to entity_id or to the
 * host name sni, MAF retrieval for HEX32@MAF-FQDN within the budget of the
 * peer's address). sni may be NULL (not known); peer is the client's
 * address as text ("192.0.2.1", "2001:db8::1"), NULL if not known.
 * *key_len is the room in key on entry.
 * 1: accepted; key and *key_len hold the key (wipe it after use), entity the
 *    bound entity (entity_len >= SAEF_KS_ENTITY_MAX + 16 always fits), fw
 *    (may be NULL) the framework. The caller logs the association once the
 *    key is proven (the peer's first authenticated message).
 * 0: refused, logged with its reason; key and *key_len hold what to answer
 *    so the peer sees a wrong key (*key_len 0 when refuse is
 *    unknown_psk_identity: fail the handshake).
 */
SAEF_EXPORT int saef_psk_lookup(saef_ctx *s, const char *identity, const char *sni,
                                const char *peer, unsigned char *key, size_t *key_len, char *entity,
                                size_t entity_len, SAEF_FRAMEWORK *fw);

/* A line in saef's log (saef.cnf(5) log, log_level; SAEF_LEVEL_*), after
   "saef: ". Never give it a key. */
SAEF_EXPORT void saef_log_printf(const saef_ctx *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
 * TS-0003 7.2.1: may a request with originator (From) `from` (len bytes;
 * NULL when the request has none) travel over ssl's association?
 *   SAEF_ORIGIN_OK                 yes
 *   SAEF_ORIGIN_NOT_AUTHENTICATED  no: ORIGINATOR_NOT_AUTHENTICATED, RSC 4106
 *                                  (HTTP 403)
 *   SAEF_ORIGIN_NO_ASSOCIATION     ssl has no saef association:
 *                                  SECURITY_ASSOCIATION_REQUIRED, RSC 4107
 * A CSE-bound association passes every originator (a CSE forwards others'
 * requests); an AE-bound one only its own AE-ID, in any TS-0001 form
 * (TS-0004 6.2.3); a
 * Credential-ID-bound one ("12-...", "11-...") only AE registration with the
 * first-registration forms (From "C", "S", empty or absent; flags has
 * SAEF_ORIGIN_CREATE_AE for a CREATE of an <AE>, ty=2). Refusals get an
 * audit line. The rules and their clauses: docs/security.md.
 */
typedef enum {
    SAEF_ORIGIN_OK = 0,
    SAEF_ORIGIN_NOT_AUTHENTICATED = 4106,
    SAEF_ORIGIN_NO_ASSOCIATION = 4107
} SAEF_ORIGIN;
#define SAEF_ORIGIN_CREATE_AE 1u
/* Longer originators are refused (no ID form needs more). */
#define SAEF_ORIGIN_MAX 512
SAEF_EXPORT SAEF_ORIGIN saef_originator_check(const SSL *ssl, const char *from, size_t len,
                                              unsigned flags);

/* The TS-0003 10.2.2 TLS 1.2 suites saef puts first, OpenSSL names. */
#define SAEF_PSK_CIPHERS                                                                           \
    "PSK-AES128-CBC-SHA256:PSK-AES128-CCM8:ECDHE-PSK-AES128-CBC-SHA256:"                           \
    "DHE-PSK-AES128-GCM-SHA256:DHE-PSK-AES128-CCM8:PSK-AES128-GCM-SHA256"

#ifdef __cplusplus
}
#endif

#endif
