/*
 * Private to the files of libsaef's association rules (context.c, log.c,
 * keys.c, binding.c, hello.c, server.c, client.c, install.c, api.c,
 * lookup.c) and their unit tests: what saef keeps per context, SSL_CTX and
 * SSL, and the functions one of those files calls in another. Nothing here
 * is exported from libsaef.so (no SAEF_EXPORT).
 */
#ifndef SAEF_RULES_H
#define SAEF_RULES_H

#include "saef-internal.h"

#include <netinet/in.h>
#include <pthread.h>
#include <string.h>

struct saef_ctx {
    int refs;                  /* atomic */
    saef_conf *conf;           /* its own copy */
    long num[SAEF_CONF_NKEYS]; /* saef_conf_int of each key, read once */
    pthread_mutex_t lock;      /* guards ks while it is opened */
    saef_ks *ks;
};

/* Per SSL_CTX. */
typedef struct {
    saef_ctx *s;
    int server, client, dtls;
    int maf; /* clients are MAF clients: km records */
    SSL_psk_server_cb_func next_server;
    SSL_psk_find_session_cb_func next_find;
    SSL_psk_client_cb_func next_client;
    SSL_psk_use_session_cb_func next_use;
    void (*next_info)(const SSL *, int, int);
    SSL_client_hello_cb_fn next_hello;
    void *next_hello_arg;
    int (*next_servername)(SSL *, int *, void *);
    void *next_servername_arg;
    int warned; /* that saef's servername callback was replaced */
} ctx_data;

/* Per connection. identity, peer and fw describe the key a callback chose;
   ok says the finished handshake used it (judged in saef_servername_cb or by the
   TLS 1.2 PSK callbacks, which run only when a PSK suite was chosen). */
typedef struct {
    char identity[SAEF_KS_ID_MAX + 1];
    char peer[SAEF_KS_ENTITY_MAX + 16];
    SAEF_FRAMEWORK fw;
    int ok, resumed;
    int judged;    /* saef_servername_cb ran */
    int offered;   /* client: a saef key is in the ClientHello */
    int bound;     /* origin marks the sessions this handshake made */
    int ticket_ok; /* server: saef_ticket_cb found the ticket's key unchanged */
    int logged;
    unsigned char origin[16];
    char want_identity[SAEF_KS_ID_MAX + 1];
    char target[SAEF_KS_ENTITY_MAX + 1];
    char sni[256];               /* the ClientHello's host name, for TLS 1.3 PSK callbacks */
    char addr[INET6_ADDRSTRLEN]; /* saef_psk_lookup, which has no SSL: the peer's address */
} conn;

typedef enum { KEY_OK, KEY_UNKNOWN, KEY_REFUSED } key_result;

/*
 * A session made with a saef key carries, as its ticket appdata (inside the
 * encrypted ticket, and with the session in any cache), which key it was
 * made with: type, framework, identity, a digest of the key's bytes and the
 * entity bound. It resumes only while that key is still there, unchanged.
 * origin tells the session of this very handshake from a resumed one.
 */
typedef struct {
    SAEF_KS_TYPE type;
    SAEF_FRAMEWORK fw;
    unsigned char origin[16], digest[16];
    char identity[SAEF_KS_ID_MAX + 1];
    char peer[SAEF_KS_ENTITY_MAX + 16];
} binding;

/* ---- context.c: the context and the ex_data of SSL_CTX and SSL ---------- */

/* saef's data on ctx (on ssl's context); NULL where no role is installed. */
ctx_data *saef_get_cd(const SSL_CTX *ctx);
ctx_data *saef_ssl_cd(const SSL *ssl);
/* ssl's connection data, made on first use; NULL on allocation failure. */
conn *saef_get_conn(SSL *ssl);
/* ssl's connection data if a callback made it, else NULL (never allocates). */
conn *saef_find_conn(const SSL *ssl);
/* The configuration's value of key, read once in saef_new. Inline, as the
   few helpers below that every handshake calls several times. */
static inline long saef_ctx_int(const saef_ctx *s, SAEF_CONF_KEY key)
{
    return s->num[key];
}
/* The key store, opened on first use (and again after a failure); NULL if
   it cannot be opened (logged). */
saef_ks *saef_store(saef_ctx *s);
/* ctx's data, made (holding a reference to s) on first use. */
ctx_data *saef_attach(SSL_CTX *ctx, saef_ctx *s);

/* ---- log.c -------------------------------------------------------------- */

/* A line at level (SAEF_LEVEL_*) if log_level lets it through. */
void saef_log(const saef_ctx *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Whether a line at level would be written (for callers that format costly
   arguments). */
static inline int saef_log_on(const saef_ctx *s, int level)
{
    return saef_ctx_int(s, SAEF_CONF_LOG) != SAEF_LOG_NONE &&
           level <= saef_ctx_int(s, SAEF_CONF_LOG_LEVEL);
}
/*
 * A trace line at log_level = debug: how a key was chosen or refused, step
 * by step (never a key). Its arguments are evaluated only when debug lines
 * are wanted, and a build with -DSAEF_DEBUG_LOG=OFF (SAEF_NO_DEBUG) has
 * none at all.
 */
#ifdef SAEF_NO_DEBUG
#define SAEF_DEBUG(s, ...) ((void)0)
#else
#define SAEF_DEBUG(s, ...)                                                                         \
    (saef_log_on((s), SAEF_LEVEL_DEBUG) ? saef_log((s), SAEF_LEVEL_DEBUG, __VA_ARGS__) : (void)0)
#endif
/* Writes line ("saef: " and n more bytes, size the buffer) as it is. */
void saef_log_emit(const saef_ctx *s, int level, char *line, size_t n, size_t size);
/* s at p, never past end; the end of what was written. (Inline: the audit
   line puts literals, whose length the compiler then knows.) */
static inline char *saef_put(char *p, const char *end, const char *s)
{
    size_t n = strlen(s);

    if (n > (size_t)(end - p))
        n = (size_t)(end - p);
    memcpy(p, s, n);
    return p + n;
}
char *saef_put_uint(char *p, const char *end, unsigned v);
/* "ADDRESS:PORT" of ssl's peer, or "-" (len >= 2). */
const char *saef_peer_addr(const SSL *ssl, char *buf, size_t len);
/* ssl's peer for the MAF retrieval budget (IPv4 address or IPv6 /64):
   bytes into src, their count (0 if unknown). */
size_t saef_peer_source(const SSL *ssl, unsigned char src[16]);

/* ---- keys.c: Entity B's decision on an offered identity ------------------- */

/* Whether a record bound to self ("" = not bound) may be used here: self
   is this node's entity_id, or the SNI host name (ssl's, else c->sni) when
   it is one of sni_names (or that list is empty). */
int saef_bound_here(const saef_ctx *s, const SSL *ssl, const conn *c, const char *self);
/* The key for identity id of a client of cd's context: KEY_OK with rec
   filled and c->identity, c->peer, c->fw set; KEY_UNKNOWN (not logged, the
   caller may chain it); KEY_REFUSED (logged with its reason). ssl is NULL
   for saef_psk_lookup: c->sni and c->addr stand for it. */
key_result saef_server_key(SSL *ssl, const ctx_data *cd, const unsigned char *id, size_t id_len,
                           saef_ks_record *rec, conn *c);
/* The refusal line of an unknown identity. */
void saef_log_unknown(SSL *ssl, const saef_ctx *s, const void *id, size_t id_len);
/* What a refused client gets into key (max bytes): random bytes (a wrong
   key), or 0 with refuse = unknown_psk_identity. */
size_t saef_refusal_key(const saef_ctx *s, unsigned char *key, size_t max);

/* ---- binding.c: sessions bound to their key -------------------------------- */

/* Once per process, from the context's initialisation. */
void saef_binding_init(void);
/* SHA-256 of rec's key, first 16 bytes. 1 on success. */
int saef_key_digest(const saef_ks_record *rec, unsigned char out[16]);
/* Binds sess to the key in rec (c says which), its lifetime capped at the
   key's expiry; c->origin marks it as this handshake's. 1 on success. */
int saef_bind_session(conn *c, SAEF_KS_TYPE type, SSL_SESSION *sess, const saef_ks_record *rec,
                      long lifetime);
/* A TLS 1.2 PSK callback hands rec's key to OpenSSL: into psk (room
   checked by the caller), c marked as using it (TLS 1.2 asks only once a
   PSK suite was chosen) and ssl's session bound to it. The key's length. */
unsigned int saef_use_key(SSL *ssl, conn *c, const saef_ks_record *rec, unsigned char *psk);
/* The binding sess carries: 1, or 0 if it has none (or a malformed one). */
int saef_read_binding(const SSL_SESSION *sess, binding *b);

/* ---- hello.c: the ClientHello -------------------------------------------- */

/* Could these bytes be a PSK identity (UTF-8 text, no control characters)? */
int saef_plausible_identity(const unsigned char *p, size_t len);
/* SSL_CTX_set_client_hello_cb's callback (arg: the ctx_data). */
int saef_hello_cb(SSL *ssl, int *al, void *arg);

/* ---- server.c: Entity B's callbacks, and the judgement of both roles ----- */

SAEF_KS_TYPE saef_fw_type(SAEF_FRAMEWORK fw);
int saef_require_psk(const ctx_data *cd);
unsigned int saef_psk_server_cb(SSL *ssl, const char *identity, unsigned char *psk,
                                unsigned int max_psk_len);
int saef_find_session_cb(SSL *ssl, const unsigned char *id, size_t id_len, SSL_SESSION **sess);
SSL_TICKET_RETURN saef_ticket_cb(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname,
                                 size_t keyname_len, SSL_TICKET_STATUS status, void *arg);
/* The servername callback of both roles (arg: the ctx_data): judges what
   the handshake used. */
int saef_servername_cb(SSL *ssl, int *al, void *arg);
/* Notes that cd chains a program's info callback (saef_info_cb then runs
   it at every state change). */
void saef_note_info(const ctx_data *cd);
void saef_info_cb(const SSL *ssl, int where, int ret);

/* ---- client.c: Entity A's callbacks ---------------------------------------- */

/* Entity A's record for id, unexpired, as it is offered; c then describes
   it. 1, or 0 (logged). */
int saef_client_get(saef_ctx *s, conn *c, SAEF_KS_TYPE type, const char *id, saef_ks_record *rec);
/* Entity A's key for ssl (see saef_ssl_set_identity): 1 with rec filled
   and c describing it, or 0. */
int saef_client_key(SSL *ssl, saef_ctx *s, conn *c, saef_ks_record *rec);
unsigned int saef_psk_client_cb(SSL *ssl, const char *hint, char *identity,
                                unsigned int max_identity_len, unsigned char *psk,
                                unsigned int max_psk_len);
int saef_use_session_cb(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
                        SSL_SESSION **sess);

/* ---- lookup.c: servers that ask for a key without showing the SSL --------- */

/* saef_peer_source for an address as text. */
size_t saef_addr_source(const char *addr, unsigned char src[16]);

#endif
