/*
 * Internal to libsaef and libsaef-preload.so.
 *
 * Errors, as in saef.h: 1 on success and 0 on failure, NULL for a pointer
 * that could not be had; where the caller logs the reason, a const char
 * **why is set to a static message (never a key, never the identity).
 */
#ifndef SAEF_INTERNAL_H
#define SAEF_INTERNAL_H

#include "saef.h"
#include "saef_common.h"

/* Callbacks a program set on a context where saef's roles are installed:
   saef keeps its own and calls these for identities it does not know. */
typedef enum {
    SAEF_NEXT_PSK_SERVER,
    SAEF_NEXT_FIND_SESSION,
    SAEF_NEXT_PSK_CLIENT,
    SAEF_NEXT_USE_SESSION,
    SAEF_NEXT_INFO,
    SAEF_NEXT_HELLO,
    SAEF_NEXT_SERVERNAME,    /* fn */
    SAEF_NEXT_SERVERNAME_ARG /* arg */
} SAEF_NEXT;

/* 1 if saef's roles are on ctx and fn (with arg, for HELLO) was chained. */
int saef_chain(SSL_CTX *ctx, SAEF_NEXT which, void (*fn)(void), void *arg);
/* After the program changed ctx's cipher lists: PSK suites first again. */
void saef_reapply_ciphers(SSL_CTX *ctx);
int saef_is_installed(const SSL_CTX *ctx);
/* saef_new keeping conf itself (freed with the context, or now if NULL is
   returned): the preload and saef_new_from_openssl leave no copy behind. */
saef_ctx *saef_new_adopt(saef_conf *conf);
/* A TLS 1.3 external PSK session (SHA-256) for key, with ssl's id context
   (libsaef/psk-session.c: below both the rules and the MAF client). */
SSL_SESSION *saef_psk_session(SSL *ssl, const unsigned char *key, size_t len);

/*
 * Non-zero while saef itself makes TLS connections or configures a context
 * (the MAF client, defined in maf-client.c, and maf-coap.c; the preload
 * around its calls into libsaef): the preload's interposed OpenSSL
 * functions then pass straight through instead of installing saef's roles
 * on saef's own connections. One per thread.
 */
extern _Thread_local int saef_inside;

/* kc for HEX32@MAF-FQDN when that MAF is configured, else kpsa. */
SAEF_KS_TYPE saef_id_type(const saef_conf *conf, const char *id, size_t len);

/* Entity B: the MAF's Key Retrieval answer (TS-0003 8.8.2.8) into rec; 1, or
   0 with why set if it is not acceptable. */
int saef_maf_parse_reply(const char *body, int64_t now, saef_ks_record *rec, const char **why);
/* Entity B: Kc for identity (HEX32@fqdn of a configured MAF): the store's
   copy while maf_revalidate trusts it, else Key Retrieval from that MAF
   within maf_timeout (and maf_rate, maf_source_rate for the client's source
   address src: its bytes, none when src_len is 0), cached under the
   canonical identity. 1 with rec filled, or 0 with why set. */
int saef_maf_key(const saef_conf *conf, saef_ks *ks, const char *id, size_t id_len, const void *src,
                 size_t src_len, saef_ks_record *rec, const char **why);

/* The rule of saef_originator_check for the bound entity and the
   receiving node's own CSE-ID (entity_id; NULL if not configured). */
SAEF_ORIGIN saef_origin_judge(const char *entity, const char *own_id, const char *from, size_t len,
                              unsigned flags);
/* entity_id of the saef configuration on ssl's context; NULL if none. */
const char *saef_ssl_own_entity(const SSL *ssl);
/* The audit line of a request refused with rsc. */
void saef_log_origin(const SSL *ssl, SAEF_ORIGIN rsc, const char *entity, const char *from,
                     size_t len);

/* free() and realloc() that wipe the block first (libsaef/wipe.c), for the
   libraries that hold key text: jansson, libcurl, libevent. */
void saef_wipe_free(void *p);
void *saef_wipe_realloc(void *p, size_t n);

#endif
