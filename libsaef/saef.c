/* The oneM2M association rules as OpenSSL callbacks (TS-0003 8.2.2.1, 8.2.2.3). */
#include "saef-internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define TLS13_SHA256_SUITES "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_CCM_SHA256"

struct saef_ctx {
    int refs; /* atomic */
    saef_conf *conf; /* its own copy */
    long num[SAEF_CONF_NKEYS]; /* saef_conf_int of each key, read once */
    pthread_mutex_t lock; /* guards ks while it is opened */
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
   ok says the finished handshake used it (judged in servername_cb or by the
   TLS 1.2 PSK callbacks, which run only when a PSK suite was chosen). */
typedef struct {
    char identity[SAEF_KS_ID_MAX + 1];
    char peer[SAEF_KS_ENTITY_MAX + 16];
    SAEF_FRAMEWORK fw;
    int ok, resumed;
    int judged;      /* servername_cb ran */
    int offered;     /* client: a saef key is in the ClientHello */
    int bound;       /* origin marks the sessions this handshake made */
    int ticket_ok;   /* server: ticket_cb found the ticket's key unchanged */
    int logged;
    unsigned char origin[16];
    char want_identity[SAEF_KS_ID_MAX + 1];
    char target[SAEF_KS_ENTITY_MAX + 1];
    char sni[256]; /* the ClientHello's host name, for TLS 1.3 PSK callbacks */
    char addr[INET6_ADDRSTRLEN]; /* saef_psk_lookup, which has no SSL: the peer's address */
} conn;

typedef enum { KEY_OK, KEY_UNKNOWN, KEY_REFUSED } key_result;

static int ctx_idx = -1, ssl_idx = -1;
static pthread_once_t idx_once = PTHREAD_ONCE_INIT;
/* For the key digests sessions carry, and what makes each origin unique. */
static EVP_MD *g_sha256;
static pthread_key_t g_md_key; /* a digest context per thread, reused */
/* Some context has a program's info callback behind saef's (atomic). */
static int g_chained_info;
static unsigned char g_origin_base[8];
static uint32_t g_origin_count; /* atomic */

static void ctx_data_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                          void *argp)
{
    ctx_data *cd = ptr;

    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    if (cd != NULL) {
        saef_free(cd->s);
        free(cd);
    }
}

static void conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    free(ptr);
}

static void make_indexes(void)
{
    ctx_idx = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ctx_data_free);
    ssl_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_free);
    g_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (RAND_bytes(g_origin_base, sizeof(g_origin_base)) != 1 ||
        pthread_key_create(&g_md_key, (void (*)(void *))EVP_MD_CTX_free) != 0) {
        EVP_MD_free(g_sha256); /* then no session is bound, and none resumes */
        g_sha256 = NULL;
    }
}

static ctx_data *get_cd(const SSL_CTX *ctx)
{
    pthread_once(&idx_once, make_indexes);
    return SSL_CTX_get_ex_data(ctx, ctx_idx);
}

static ctx_data *ssl_cd(const SSL *ssl)
{
    return get_cd(SSL_get_SSL_CTX(ssl));
}

static conn *get_conn(SSL *ssl)
{
    conn *c;

    pthread_once(&idx_once, make_indexes);
    if ((c = SSL_get_ex_data(ssl, ssl_idx)) == NULL && (c = calloc(1, sizeof(*c))) != NULL &&
        !SSL_set_ex_data(ssl, ssl_idx, c)) {
        free(c);
        c = NULL;
    }
    return c;
}

static long conf_int(const saef_ctx *s, SAEF_CONF_KEY key)
{
    return s->num[key];
}

/* ---- logging ---------------------------------------------------------- */

static void saef_log(const saef_ctx *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Callers that format costly arguments (peer_addr) ask first. */
static int log_on(const saef_ctx *s, int level)
{
    return conf_int(s, SAEF_CONF_LOG) != SAEF_LOG_NONE &&
           level <= conf_int(s, SAEF_CONF_LOG_LEVEL);
}

/* line holds "saef: " and n more bytes; one write per line, so the lines of
   several processes never mix. */
static void emit(const saef_ctx *s, int level, char *line, size_t n, size_t size)
{
    static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};

    n = 6 + (n < size - 7 ? n : size - 8);
    if (conf_int(s, SAEF_CONF_LOG) == SAEF_LOG_SYSLOG) {
        line[n] = '\0';
        syslog(LOG_AUTH | prio[level], "%s", line);
    } else {
        line[n++] = '\n';
        if (write(STDERR_FILENO, line, n) < 0)
            return;
    }
}

static void vlog(const saef_ctx *s, int level, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void vlog(const saef_ctx *s, int level, const char *fmt, va_list ap)
{
    char line[1024] = "saef: ";
    int n;

    if (!log_on(s, level))
        return;
    n = vsnprintf(line + 6, sizeof(line) - 7, fmt, ap);
    if (n >= 0)
        emit(s, level, line, (size_t)n, sizeof(line));
}

static void saef_log(const saef_ctx *s, int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(s, level, fmt, ap);
    va_end(ap);
}

/* Appends s at p, never past end: the audit line is built without printf,
   which cost more than the rest of saef's share of a handshake. */
static char *put(char *p, const char *end, const char *s)
{
    size_t n = strlen(s);

    if (n > (size_t)(end - p))
        n = (size_t)(end - p);
    memcpy(p, s, n);
    return p + n;
}

static char *put_uint(char *p, const char *end, unsigned v)
{
    char digits[12];
    int n = 0;

    do
        digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n > 0 && p < end)
        *p++ = digits[--n];
    return p;
}

/* The peer's address (4 or 16 bytes into raw) and port; AF_UNSPEC if none. */
static int peer_raw(const SSL *ssl, unsigned char raw[16], unsigned short *port)
{
    struct sockaddr_storage sa;
    socklen_t sl = sizeof(sa);
    int fd = SSL_get_fd(ssl), family = AF_UNSPEC;

    /* TCP: the socket's peer; DTLS on an unconnected socket: the BIO's. */
    if (fd >= 0 && getpeername(fd, (struct sockaddr *)&sa, &sl) == 0 &&
        (sa.ss_family == AF_INET || sa.ss_family == AF_INET6)) {
        family = sa.ss_family;
        if (family == AF_INET) {
            memcpy(raw, &((struct sockaddr_in *)&sa)->sin_addr, 4);
            *port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
        } else {
            memcpy(raw, &((struct sockaddr_in6 *)&sa)->sin6_addr, 16);
            *port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
        }
    } else if (SSL_is_dtls(ssl)) {
        BIO_ADDR *addr = BIO_ADDR_new();
        size_t rl = 16;
        if (addr != NULL && BIO_dgram_get_peer(SSL_get_rbio(ssl), addr) > 0 &&
            (BIO_ADDR_family(addr) == AF_INET || BIO_ADDR_family(addr) == AF_INET6) &&
            BIO_ADDR_rawaddress(addr, NULL, &rl) && rl <= 16 &&
            BIO_ADDR_rawaddress(addr, raw, &rl)) {
            family = BIO_ADDR_family(addr);
            *port = ntohs(BIO_ADDR_rawport(addr));
        }
        BIO_ADDR_free(addr);
    }
    return family;
}

/* "ADDRESS:PORT" of the peer, or "-" (len >= 2). Not getnameinfo: this runs
   for every audit line. */
static const char *peer_addr(const SSL *ssl, char *buf, size_t len)
{
    unsigned char raw[16];
    unsigned short port = 0;
    char host[INET6_ADDRSTRLEN], *p = buf, *end = buf + len - 1;
    int family = peer_raw(ssl, raw, &port);

    if (family == AF_INET) {
        for (int i = 0; i < 4; i++) {
            p = put_uint(p, end, raw[i]);
            p = put(p, end, i < 3 ? "." : ":");
        }
    } else if (family == AF_INET6 && inet_ntop(family, raw, host, sizeof(host)) != NULL) {
        p = put(put(p, end, host), end, ":");
    } else {
        p = put(p, end, "-");
    }
    if (family != AF_UNSPEC)
        p = put_uint(p, end, port);
    *p = '\0';
    return buf;
}

/* Where a client comes from, for the MAF retrieval budget: its IPv4
   address, or its IPv6 /64 (one host usually holds a whole /64). Bytes
   into src, their count returned; 0 if unknown. */
static size_t peer_source(const SSL *ssl, unsigned char src[16])
{
    static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    unsigned short port;
    int family = peer_raw(ssl, src, &port);

    if (family == AF_INET6 && memcmp(src, v4mapped, 12) == 0) {
        memmove(src, src + 12, 4);
        return 4;
    }
    return family == AF_INET ? 4 : family == AF_INET6 ? 8 : 0;
}

/* ---- context ---------------------------------------------------------- */

/* Opened at once, so a program that drops privileges later keeps access;
   retried at the next handshake if it failed. */
static saef_ks *store(saef_ctx *s)
{
    saef_ks *ks;

    pthread_mutex_lock(&s->lock);
    if (s->ks == NULL) {
        const char *path = saef_conf_str(s->conf, SAEF_CONF_STORE);
        unsigned flags = conf_int(s, SAEF_CONF_STORE_GROUP_READ) ? SAEF_KS_GROUP_READ : 0;
        /* Writable when MAF keys are cached here; read-only is enough otherwise,
           and what a worker without write access gets. */
        if (*saef_conf_str(s->conf, SAEF_CONF_MAF) == '\0' ||
            saef_ks_open(path, flags, &s->ks) != SAEF_KS_OK)
            if (saef_ks_open(path, flags | SAEF_KS_RDONLY, &s->ks) != SAEF_KS_OK)
                saef_log(s, SAEF_LEVEL_ERROR, "%s", saef_ks_last_error(NULL));
    }
    ks = s->ks;
    pthread_mutex_unlock(&s->lock);
    return ks;
}

saef_ctx *saef_new(const saef_conf *conf)
{
    saef_ctx *s = calloc(1, sizeof(*s));

    if (s == NULL)
        return NULL;
    s->refs = 1;
    if ((s->conf = saef_conf_dup(conf)) == NULL) {
        free(s);
        return NULL;
    }
    for (int k = 0; k < SAEF_CONF_NKEYS; k++)
        s->num[k] = saef_conf_int(s->conf, (SAEF_CONF_KEY)k);
    pthread_mutex_init(&s->lock, NULL);
    store(s);
    return s;
}

saef_ctx *saef_new_from_openssl(OSSL_LIB_CTX *libctx)
{
    saef_conf *conf = saef_conf_new();
    saef_ctx *s = NULL;

    if (conf != NULL && OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL) &&
        saef_conf_from_provider(libctx, conf) >= 0)
        s = saef_new(conf);
    saef_conf_free(conf);
    return s;
}

void saef_free(saef_ctx *s)
{
    if (s == NULL || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    saef_ks_close(s->ks);
    pthread_mutex_destroy(&s->lock);
    saef_conf_free(s->conf);
    free(s);
}

static ctx_data *attach(SSL_CTX *ctx, saef_ctx *s)
{
    ctx_data *cd = get_cd(ctx);

    if (cd != NULL)
        return cd;
    if ((cd = calloc(1, sizeof(*cd))) == NULL)
        return NULL;
    cd->s = s;
    __atomic_add_fetch(&s->refs, 1, __ATOMIC_ACQ_REL);
    if (!SSL_CTX_set_ex_data(ctx, ctx_idx, cd)) {
        saef_free(s);
        free(cd);
        return NULL;
    }
    cd->dtls = SSL_CTX_get_ssl_method(ctx) == DTLS_method() ||
               SSL_CTX_get_ssl_method(ctx) == DTLS_server_method() ||
               SSL_CTX_get_ssl_method(ctx) == DTLS_client_method();
    return cd;
}

int saef_is_installed(const SSL_CTX *ctx)
{
    return get_cd(ctx) != NULL;
}

/* ---- keys ------------------------------------------------------------- */

SAEF_KS_TYPE saef_id_type(const saef_conf *conf, const char *id, size_t len)
{
    const char *fqdn;
    char url[SAEF_CONF_VALUE_MAX];

    if (saef_id_parse_maf(id, len, &fqdn, NULL) &&
        saef_conf_maf_url(conf, fqdn, len - (size_t)(fqdn - id), url, sizeof(url)))
        return SAEF_KS_KC;
    return SAEF_KS_KPSA;
}

/* The record may be bound to one local entity: ours, or the authority the
   client named in SNI (when it is one we serve). */
static int bound_here(const saef_ctx *s, const SSL *ssl, const conn *c, const char *self)
{
    const char *sni = ssl != NULL ? SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name) : NULL;
    const char *list = saef_conf_str(s->conf, SAEF_CONF_SNI);
    size_t n;

    /* OpenSSL 3.0 shows no SNI to the TLS 1.3 PSK callback yet. */
    if (sni == NULL && c->sni[0] != '\0')
        sni = c->sni;
    if (self[0] == '\0' || strcmp(self, saef_conf_str(s->conf, SAEF_CONF_ENTITY_ID)) == 0)
        return 1;
    if (sni == NULL || strcasecmp(self, sni) != 0)
        return 0;
    if (*list == '\0')
        return 1;
    n = strlen(sni);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncasecmp(p, sni, n) == 0)
            return 1;
        p += len + (end != NULL);
    }
    return 0;
}

static size_t addr_source(const char *addr, unsigned char src[16]);

/* ssl is NULL for saef_psk_lookup: c->sni and c->addr stand for it. */
static key_result server_key(SSL *ssl, const ctx_data *cd, const unsigned char *id,
                             size_t id_len, saef_ks_record *rec, conn *c)
{
    saef_ctx *s = cd->s;
    char shown[4 * SAEF_KS_ID_MAX + 8], addr[64];
    const char *why;
    SAEF_KS_TYPE type;
    saef_ks *ks;
    SAEF_KS_ERR err;

    if (id_len == 0 || id_len > SAEF_KS_ID_MAX || memchr(id, '\0', id_len) != NULL) {
        why = "malformed identity";
        goto refuse;
    }
    type = cd->maf ? SAEF_KS_KM : saef_id_type(s->conf, (const char *)id, id_len);
    if ((ks = store(s)) == NULL) {
        why = "key store unavailable";
        goto refuse;
    }
    if (type == SAEF_KS_KC) {
        unsigned char src[16];
        size_t src_len = ssl != NULL ? peer_source(ssl, src) : addr_source(c->addr, src);
        if (!saef_maf_key(s->conf, ks, (const char *)id, id_len, src, src_len, rec, &why))
            goto refuse;
    }
    err = type == SAEF_KS_KC ? SAEF_KS_OK : saef_ks_get(ks, type, id, id_len, rec);
    if (err == SAEF_KS_ENOTFOUND)
        return KEY_UNKNOWN; /* the caller may chain it; it logs the refusal */
    if (err != SAEF_KS_OK) {
        saef_log(s, SAEF_LEVEL_ERROR, "%s", saef_ks_last_error(ks));
        why = "key store error";
        goto refuse;
    }
    if (rec->not_after != 0 && rec->not_after <= (int64_t)time(NULL)) {
        why = "key expired";
        goto refuse_rec;
    }
    if (!bound_here(s, ssl, c, rec->self)) {
        why = "key bound to another server";
        goto refuse_rec;
    }
    if (type == SAEF_KS_KC) {
        long suid = conf_int(s, SAEF_CONF_KC_SUID);
        if (suid != 0 && rec->suid != suid) {
            why = "connection key has the wrong SUID";
            goto refuse_rec;
        }
        if (conf_int(s, SAEF_CONF_KC_HALF) && rec->key_len > 16)
            rec->key_len = 16;
    }
    memcpy(c->identity, id, id_len);
    c->identity[id_len] = '\0';
    if (rec->peer[0] != '\0')
        snprintf(c->peer, sizeof(c->peer), "%s", rec->peer);
    else /* TS-0003 10.4 Credential-ID: type 11 for KmID, 12 for KpsaID / KcID */
        snprintf(c->peer, sizeof(c->peer), "%s%s", cd->maf ? SAEF_CREDID_KM : SAEF_CREDID_KPSA,
                 c->identity);
    c->fw = cd->maf ? SAEF_FW_MAF_CLIENT : type == SAEF_KS_KC ? SAEF_FW_MAF : SAEF_FW_PSK;
    return KEY_OK;
refuse_rec:
    saef_ks_record_wipe(rec);
refuse:
    saef_escape(id, id_len, shown, sizeof(shown));
    saef_log(s, SAEF_LEVEL_INFO, "refused identity=\"%s\" reason=\"%s\" peer=%s", shown, why,
             ssl != NULL ? peer_addr(ssl, addr, sizeof(addr)) : c->addr[0] ? c->addr : "-");
    return KEY_REFUSED;
}

static void log_unknown(SSL *ssl, const saef_ctx *s, const void *id, size_t id_len)
{
    char shown[4 * SAEF_KS_ID_MAX + 8], addr[64];

    saef_escape(id, id_len, shown, sizeof(shown));
    saef_log(s, SAEF_LEVEL_INFO, "refused identity=\"%s\" reason=\"unknown identity\" peer=%s",
             shown, peer_addr(ssl, addr, sizeof(addr)));
}

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

/* What a refused client gets: by default the same as a wrong key. */
static size_t refusal_key(const saef_ctx *s, unsigned char *key, size_t max)
{
    if (conf_int(s, SAEF_CONF_REFUSE) == SAEF_REFUSE_UNKNOWN_PSK_IDENTITY)
        return 0;
    if (max > 32)
        max = 32;
    return RAND_bytes(key, (int)max) == 1 ? max : 0;
}

/* ---- sessions bound to their key ----------------------------------------- */

/*
 * A session made with a saef key carries, as its ticket appdata (inside the
 * encrypted ticket, and with the session in any cache), which key it was
 * made with: type, framework, identity, a digest of the key's bytes and the
 * entity bound. It resumes only while that key is still there, unchanged.
 * origin tells the session of this very handshake from a resumed one.
 */
#define BINDING_V1 1
#define BINDING_MAX (3 + 16 + 16 + 2 + SAEF_KS_ID_MAX + SAEF_KS_ENTITY_MAX + 16)

typedef struct {
    SAEF_KS_TYPE type;
    SAEF_FRAMEWORK fw;
    unsigned char origin[16], digest[16];
    char identity[SAEF_KS_ID_MAX + 1];
    char peer[SAEF_KS_ENTITY_MAX + 16];
} binding;

/* SHA-256 of the key, first 16 bytes. The context is kept: a new one per
   handshake cost more than the hash. */
static int key_digest(const saef_ks_record *rec, unsigned char out[16])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    EVP_MD_CTX *ctx = g_sha256 != NULL ? pthread_getspecific(g_md_key) : NULL;
    int ok;

    if (g_sha256 != NULL && ctx == NULL && (ctx = EVP_MD_CTX_new()) != NULL &&
        pthread_setspecific(g_md_key, ctx) != 0) {
        EVP_MD_CTX_free(ctx);
        ctx = NULL;
    }
    ok = ctx != NULL && EVP_DigestInit_ex2(ctx, g_sha256, NULL) &&
         EVP_DigestUpdate(ctx, rec->key, rec->key_len) && EVP_DigestFinal_ex(ctx, md, NULL);

    memcpy(out, md, 16);
    OPENSSL_cleanse(md, sizeof(md));
    return ok;
}

/* Binds sess to the key in rec (c says which), its lifetime capped at the
   key's expiry. */
static int bind_session(conn *c, SAEF_KS_TYPE type, SSL_SESSION *sess, const saef_ks_record *rec,
                        long lifetime)
{
    unsigned char buf[BINDING_MAX], *p = buf;
    size_t il = strlen(c->identity), pl = strlen(c->peer);
    uint32_t n = __atomic_add_fetch(&g_origin_count, 1, __ATOMIC_RELAXED);
    uint32_t pid = (uint32_t)getpid();

    if (sess == NULL || il > 255 || pl > 255)
        return 0;
    memcpy(c->origin, g_origin_base, 8);
    memcpy(c->origin + 8, &pid, 4);
    memcpy(c->origin + 12, &n, 4);
    *p++ = BINDING_V1;
    *p++ = (unsigned char)type;
    *p++ = (unsigned char)c->fw;
    memcpy(p, c->origin, 16);
    p += 16;
    if (!key_digest(rec, p))
        return 0;
    p += 16;
    *p++ = (unsigned char)il;
    memcpy(p, c->identity, il);
    p += il;
    *p++ = (unsigned char)pl;
    memcpy(p, c->peer, pl);
    p += pl;
    if (rec->not_after != 0 && rec->not_after - (int64_t)time(NULL) < lifetime)
        lifetime = (long)(rec->not_after - (int64_t)time(NULL));
    SSL_SESSION_set_timeout(sess, lifetime > 0 ? lifetime : 1);
    c->bound = SSL_SESSION_set1_ticket_appdata(sess, buf, (size_t)(p - buf));
    return c->bound;
}

static int read_binding(const SSL_SESSION *sess, binding *b)
{
    const unsigned char *p;
    size_t len, il, pl;
    void *data;

    if (sess == NULL || !SSL_SESSION_get0_ticket_appdata((SSL_SESSION *)sess, &data, &len) ||
        len < 3 + 32 + 2)
        return 0;
    p = data;
    il = p[35];
    if (p[0] != BINDING_V1 || il == 0 || il > SAEF_KS_ID_MAX || len < 37 + il ||
        (pl = p[36 + il]) != len - 37 - il)
        return 0;
    b->type = (SAEF_KS_TYPE)p[1];
    b->fw = (SAEF_FRAMEWORK)p[2];
    memcpy(b->origin, p + 3, 16);
    memcpy(b->digest, p + 19, 16);
    memcpy(b->identity, p + 36, il);
    b->identity[il] = '\0';
    memcpy(b->peer, p + 37 + il, pl);
    b->peer[pl] = '\0';
    return memchr(b->identity, '\0', il) == NULL;
}

/* ---- server callbacks --------------------------------------------------- */

static SAEF_KS_TYPE fw_type(SAEF_FRAMEWORK fw)
{
    return fw == SAEF_FW_MAF ? SAEF_KS_KC : fw == SAEF_FW_MAF_CLIENT ? SAEF_KS_KM : SAEF_KS_KPSA;
}

static int require_psk(const ctx_data *cd)
{
    return (int)conf_int(cd->s, SAEF_CONF_REQUIRE_PSK);
}

/*
 * Could these bytes be a PSK identity (UTF-8 text, no control characters)?
 * TLS 1.3 sends session tickets through the same list: OpenSSL's are longer
 * than any identity, or (stateful) 32 random bytes, which almost never pass.
 */
static int plausible_identity(const unsigned char *p, size_t len)
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

static unsigned int psk_server_cb(SSL *ssl, const char *identity, unsigned char *psk,
                                  unsigned int max_psk_len)
{
    ctx_data *cd = ssl_cd(ssl);
    conn *c = get_conn(ssl);
    saef_ks_record rec;
    size_t len = identity != NULL ? strlen(identity) : 0;
    unsigned int n = 0;

    if (cd == NULL || c == NULL)
        return 0;
    /* TLS 1.3: find_session_cb has judged every identity; this is OpenSSL's
       second try for the ones it left, tickets among them. */
    if (SSL_version(ssl) == TLS1_3_VERSION)
        return cd->next_server != NULL && !require_psk(cd)
                   ? cd->next_server(ssl, identity, psk, max_psk_len)
                   : 0;
    switch (server_key(ssl, cd, (const unsigned char *)identity, len, &rec, c)) {
    case KEY_OK:
        if (rec.key_len <= max_psk_len) {
            memcpy(psk, rec.key, rec.key_len);
            n = (unsigned int)rec.key_len;
            /* TLS 1.2 asks only once a PSK suite was chosen: the key is used. */
            c->ok = 1;
            bind_session(c, fw_type(c->fw), SSL_get_session(ssl), &rec,
                         SSL_SESSION_get_timeout(SSL_get_session(ssl)));
        }
        saef_ks_record_wipe(&rec);
        return n;
    case KEY_UNKNOWN:
        if (cd->next_server != NULL && !require_psk(cd) &&
            (n = cd->next_server(ssl, identity, psk, max_psk_len)) > 0)
            return n;
        log_unknown(ssl, cd->s, identity, len);
        break;
    case KEY_REFUSED:
        break;
    }
    return (unsigned int)refusal_key(cd->s, psk, max_psk_len);
}

static int find_session_cb(SSL *ssl, const unsigned char *id, size_t id_len, SSL_SESSION **sess)
{
    ctx_data *cd = ssl_cd(ssl);
    conn *c = get_conn(ssl);
    saef_ks_record rec;
    unsigned char rnd[32];
    size_t n;

    *sess = NULL;
    if (cd == NULL || c == NULL)
        return 0;
    /* Not an identity: OpenSSL tries it as one of its tickets next. */
    if (!plausible_identity(id, id_len))
        return 1;
    switch (server_key(ssl, cd, id, id_len, &rec, c)) {
    case KEY_OK:
        *sess = saef_psk_session(ssl, rec.key, rec.key_len);
        /* OpenSSL may still pass it over (a suite of another hash, a key
           exchange mode it cannot use): servername_cb judges what was used. */
        if (*sess != NULL)
            bind_session(c, fw_type(c->fw), *sess, &rec, SSL_CTX_get_timeout(SSL_get_SSL_CTX(ssl)));
        saef_ks_record_wipe(&rec);
        return *sess != NULL;
    case KEY_UNKNOWN:
        if (require_psk(cd)) {
            log_unknown(ssl, cd->s, id, id_len);
            break;
        }
        if (cd->next_find != NULL)
            return cd->next_find(ssl, id, id_len, sess);
        /* No session: OpenSSL then asks psk_server_cb, which chains to the
           program's TLS 1.2-style callback (mosquitto sets only that one). */
        if (cd->next_server != NULL)
            return 1;
        log_unknown(ssl, cd->s, id, id_len);
        break;
    case KEY_REFUSED:
        break;
    }
    if ((n = refusal_key(cd->s, rnd, sizeof(rnd))) > 0)
        *sess = saef_psk_session(ssl, rnd, n);
    OPENSSL_cleanse(rnd, sizeof(rnd));
    return 1;
}

static int client_get(saef_ctx *s, conn *c, SAEF_KS_TYPE type, const char *id,
                      saef_ks_record *rec);

/* A session bound to a key resumes only while the key is there with the same
   bytes, unexpired, bound here and to the same entity; c then describes it. */
static int binding_holds(SSL *ssl, const ctx_data *cd, conn *c, const binding *b)
{
    saef_ks_record rec;
    unsigned char d[16];
    char shown[4 * SAEF_KS_ID_MAX + 8], addr[64];
    const char *why = NULL;
    int same;

    if (SSL_is_server(ssl)) {
        key_result r = server_key(ssl, cd, (const unsigned char *)b->identity,
                                  strlen(b->identity), &rec, c);
        if (r == KEY_REFUSED) /* logged with its reason */
            return 0;
        if (r == KEY_UNKNOWN)
            why = "key deleted";
    } else if (!client_get(cd->s, c, b->type, b->identity, &rec)) {
        why = "key deleted or expired";
    }
    if (why == NULL) {
        same = key_digest(&rec, d) && CRYPTO_memcmp(d, b->digest, sizeof(d)) == 0 &&
               c->fw == b->fw && strcmp(c->peer, b->peer) == 0;
        saef_ks_record_wipe(&rec);
        if (same)
            return 1;
        why = "key or binding changed";
    }
    c->fw = SAEF_FW_NONE;
    saef_log(cd->s, SAEF_LEVEL_INFO, "refused resumption identity=\"%s\" reason=\"%s\" peer=%s",
             saef_escape(b->identity, strlen(b->identity), shown, sizeof(shown)), why,
             peer_addr(ssl, addr, sizeof(addr)));
    return 0;
}

/* OpenSSL decrypted one of its tickets: one whose key is gone or changed is
   passed over (a full handshake follows), not used. */
static SSL_TICKET_RETURN ticket_cb(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname,
                                   size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
    ctx_data *cd = arg;
    conn *c = get_conn(ssl);
    binding b;

    (void)keyname, (void)keyname_len;
    if (status != SSL_TICKET_SUCCESS && status != SSL_TICKET_SUCCESS_RENEW)
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    if (!read_binding(sess, &b)) {
        if (require_psk(cd))
            return SSL_TICKET_RETURN_IGNORE_RENEW;
    } else if (c == NULL || !binding_holds(ssl, cd, c, &b)) {
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    } else {
        c->ticket_ok = 1;
    }
    return status == SSL_TICKET_SUCCESS ? SSL_TICKET_RETURN_USE : SSL_TICKET_RETURN_USE_RENEW;
}

/* A resumed session that is no longer good must not come back. */
static void forget_session(SSL *ssl, SSL_SESSION *sess)
{
    SSL_SESSION_set_timeout(sess, 0);
    SSL_CTX_remove_session(SSL_get_SSL_CTX(ssl), sess);
}

static int is_psk_kx(const SSL_CIPHER *ci)
{
    int kx = ci != NULL ? SSL_CIPHER_get_kx_nid(ci) : NID_undef;

    return kx == NID_kx_psk || kx == NID_kx_ecdhe_psk || kx == NID_kx_dhe_psk ||
           kx == NID_kx_rsa_psk;
}

/* Entity B: what did the handshake use? NULL if it may go on, else why not. */
static const char *judge_server(SSL *ssl, const ctx_data *cd, conn *c)
{
    SSL_SESSION *sess = SSL_get_session(ssl);
    binding b;

    if (!SSL_session_reused(ssl)) {
        if (!require_psk(cd))
            return NULL;
        if (SSL_version(ssl) == TLS1_3_VERSION)
            return "TLS 1.3 handshake without a saef PSK (require_psk)";
        /* TLS 1.2 picks its suite after this: with no certificate, only a
           PSK suite can be picked, whatever the program's lists say. */
        SSL_certs_clear(ssl);
        return NULL;
    }
    if (!read_binding(sess, &b)) {
        if (!require_psk(cd))
            return NULL;
        forget_session(ssl, sess);
        return "resumed a session made without a saef PSK (require_psk)";
    }
    if (c->bound && memcmp(b.origin, c->origin, sizeof(b.origin)) == 0) {
        c->ok = 1; /* TLS 1.3: the external PSK find_session_cb chose */
        return NULL;
    }
    if (!(c->ticket_ok && strcmp(b.identity, c->identity) == 0) && !binding_holds(ssl, cd, c, &b)) {
        forget_session(ssl, sess);
        return "resumed session's key is gone or changed";
    }
    c->ok = c->resumed = 1;
    return NULL;
}

/* Does the ClientHello offer one of our identities in pre_shared_key? */
static int offers_known_psk(SSL *ssl, const ctx_data *cd)
{
    saef_ctx *s = cd->s;
    const unsigned char *p;
    size_t len, total;
    saef_ks *ks = store(s);
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
        if (!plausible_identity(p + 2, idlen))
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
    if (n == 0 || n > len - 5 || memchr(p + 5, '\0', n) != NULL || (c = get_conn(ssl)) == NULL ||
        n >= sizeof(c->sni))
        return;
    memcpy(c->sni, p + 5, n);
    c->sni[n] = '\0';
}

static int hello_cb(SSL *ssl, int *al, void *arg)
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
    if (offers_sha384(ssl) && offers_known_psk(ssl, cd) &&
        !SSL_set_ciphersuites(ssl, TLS13_SHA256_SUITES))
        return SSL_CLIENT_HELLO_ERROR;
    return SSL_CLIENT_HELLO_SUCCESS;
}

/* Entity A: what did the server use? NULL if the handshake may go on. */
static const char *judge_client(SSL *ssl, const ctx_data *cd, conn *c)
{
    int want = c->offered || require_psk(cd);
    binding b;

    if (SSL_session_reused(ssl)) {
        SSL_SESSION *sess = SSL_get_session(ssl);
        if (!read_binding(sess, &b))
            return want ? "the server did not use the saef PSK" : NULL;
        if (c->bound && memcmp(b.origin, c->origin, sizeof(b.origin)) == 0) {
            c->ok = 1; /* TLS 1.3: the external PSK use_session_cb offered */
            return NULL;
        }
        if (!binding_holds(ssl, cd, c, &b)) {
            forget_session(ssl, sess);
            return "resumed session's key is gone or changed";
        }
        c->ok = c->resumed = 1;
        return NULL;
    }
    if (!want)
        return NULL;
    if (SSL_version(ssl) == TLS1_3_VERSION)
        return "the server did not use the saef PSK";
    /* TLS 1.2: the key is sent after this, if the suite is a PSK one. */
    return is_psk_kx(SSL_get_pending_cipher(ssl)) ? NULL : "the server chose a certificate suite";
}

/*
 * Called once the ClientHello (server) or ServerHello (client) is through,
 * when OpenSSL has chosen a PSK, a ticket, a cached session or none: the
 * place to judge what the handshake uses, never what was offered.
 */
static int servername_cb(SSL *ssl, int *al, void *arg)
{
    ctx_data *cd = arg;
    conn *c = get_conn(ssl);
    int ret = SSL_TLSEXT_ERR_NOACK;
    const char *why;
    char addr[64];

    if (cd->next_servername != NULL &&
        (ret = cd->next_servername(ssl, al, cd->next_servername_arg)) == SSL_TLSEXT_ERR_ALERT_FATAL)
        return ret;
    if (c == NULL)
        why = "out of memory";
    else
        why = SSL_is_server(ssl) ? judge_server(ssl, cd, c) : judge_client(ssl, cd, c);
    if (c != NULL)
        c->judged = 1;
    if (why == NULL)
        return ret;
    saef_log(cd->s, SAEF_LEVEL_INFO, "refused %s handshake: %s peer=%s",
             SSL_get_version(ssl), why, peer_addr(ssl, addr, sizeof(addr)));
    if (c != NULL)
        c->logged = 1;
    *al = SSL_AD_HANDSHAKE_FAILURE;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static void note_info(const ctx_data *cd)
{
    if (cd->next_info != NULL)
        __atomic_store_n(&g_chained_info, 1, __ATOMIC_RELAXED);
}

static void info_cb(const SSL *ssl, int where, int ret)
{
    ctx_data *cd;
    conn *c;
    char addr[64];

    /* Called at every state change: most need nothing at all. */
    if (!(where & (SSL_CB_HANDSHAKE_DONE | SSL_CB_ALERT)) &&
        !__atomic_load_n(&g_chained_info, __ATOMIC_RELAXED))
        return;
    if ((cd = ssl_cd(ssl)) == NULL)
        return;
    if ((where & (SSL_CB_HANDSHAKE_DONE | SSL_CB_ALERT)) && log_on(cd->s, SAEF_LEVEL_INFO)) {
        c = SSL_get_ex_data(ssl, ssl_idx);
        if (c != NULL && c->ok && !c->logged && (where & SSL_CB_HANDSHAKE_DONE)) {
            char line[1024] = "saef: association ", *p = line + 18, *end = line + sizeof(line) - 2;
            c->logged = 1;
            p = put(p, end, SSL_is_server((SSL *)ssl) ? "accepted" : "established");
            p = put(put(p, end, " identity=\""), end, c->identity);
            p = put(put(p, end, "\" entity=\""), end, c->peer);
            p = put(p, end, c->fw == SAEF_FW_MAF          ? "\" framework=maf"
                            : c->fw == SAEF_FW_MAF_CLIENT ? "\" framework=maf-client"
                                                          : "\" framework=psk");
            p = put(put(p, end, " protocol="), end, SSL_get_version(ssl));
            p = put(put(p, end, " cipher="), end, SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)));
            p = put(put(p, end, " peer="), end, peer_addr(ssl, addr, sizeof(addr)));
            p = put(p, end, c->resumed ? " session=resumed" : " session=new");
            emit(cd->s, SAEF_LEVEL_INFO, line, (size_t)(p - line - 6), sizeof(line));
        }
        if (c != NULL && c->fw != SAEF_FW_NONE && !c->logged && (where & SSL_CB_ALERT) &&
            (ret >> 8) == SSL3_AL_FATAL)
            saef_log(cd->s, SAEF_LEVEL_INFO,
                     "handshake failed identity=\"%s\" alert=%s (%s) peer=%s", c->identity,
                     SSL_alert_desc_string_long(ret), (where & SSL_CB_READ) ? "received" : "sent",
                     peer_addr(ssl, addr, sizeof(addr)));
    }
    /* A program that set its own servername callback over saef's (not
       through saef_ssl_ctx_set_servername_callback) left nothing to judge
       resumptions and require_psk: say so, once. */
    if ((where & SSL_CB_HANDSHAKE_DONE) && !cd->warned && (c = SSL_get_ex_data(ssl, ssl_idx)) != NULL &&
        !c->judged) {
        cd->warned = 1;
        saef_log(cd->s, SAEF_LEVEL_ERROR,
                 "saef's servername callback was replaced: resumed sessions and require_psk are "
                 "not judged (use saef_ssl_ctx_set_servername_callback)");
    }
    if (cd->next_info != NULL)
        cd->next_info(ssl, where, ret);
}

/* ---- client callbacks ------------------------------------------------- */

/* A connect BIO (s_time, BIO_new_ssl_connect) connects only when the
   ClientHello is written: TLS 1.3 picks its key before. Its address then. */
static int connect_bio_addr(SSL *ssl, char *buf, size_t len)
{
    BIO *b = SSL_get_wbio(ssl);
    const char *host, *port;
    unsigned char bin[16];
    char text[INET6_ADDRSTRLEN];
    int v6;

    if (b == NULL || BIO_method_type(b) != BIO_TYPE_CONNECT ||
        (host = BIO_get_conn_hostname(b)) == NULL || (port = BIO_get_conn_port(b)) == NULL)
        return 0;
    v6 = inet_pton(AF_INET6, host, bin) == 1;
    if ((!v6 && inet_pton(AF_INET, host, bin) != 1) ||
        inet_ntop(v6 ? AF_INET6 : AF_INET, bin, text, sizeof(text)) == NULL)
        return 0;
    snprintf(buf, len, v6 ? "[%s]:%s" : "%s:%s", text, port);
    return 1;
}

/* The peer's address as the targets list writes it: "A.B.C.D:PORT" or
   "[V6]:PORT" (an IPv4 client on a dual-stack socket as IPv4). 0 without a
   socket (a program with a BIO of its own). */
static int target_addr(SSL *ssl, char *buf, size_t len)
{
    struct sockaddr_storage sa;
    socklen_t sl = sizeof(sa);
    const struct sockaddr_in *in = (const struct sockaddr_in *)&sa;
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&sa;
    char host[INET6_ADDRSTRLEN];
    int fd = SSL_get_fd(ssl);

    if (fd < 0 || getpeername(fd, (struct sockaddr *)&sa, &sl) != 0)
        return connect_bio_addr(ssl, buf, len);
    if (sa.ss_family == AF_INET && inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host)))
        snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
    else if (sa.ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr) &&
             inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], host, sizeof(host)))
        snprintf(buf, len, "%s:%u", host, ntohs(in6->sin6_port));
    else if (sa.ss_family == AF_INET6 && inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host)))
        snprintf(buf, len, "[%s]:%u", host, ntohs(in6->sin6_port));
    else
        return 0;
    return 1;
}

/*
 * IdB of this connection: the program's (saef_ssl_set_target), else what
 * the targets list maps the SNI host name or the peer's address to, else
 * the SNI host name itself (a record's peer may name the host). NULL: none.
 */
static const char *client_target(SSL *ssl, const saef_ctx *s, const conn *c, char *idb,
                                 size_t len)
{
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    char where[INET6_ADDRSTRLEN + 8];

    if (c->target[0])
        return c->target;
    if (sni != NULL && saef_conf_target(s->conf, sni, idb, len))
        return idb;
    if (*saef_conf_str(s->conf, SAEF_CONF_TARGETS) != '\0' &&
        target_addr(ssl, where, sizeof(where)) && saef_conf_target(s->conf, where, idb, len))
        return idb;
    return sni;
}

typedef struct {
    int only; /* no target: the store's only usable key, if it has one */
    int64_t now, best_created;
    size_t usable;
    SAEF_KS_TYPE type;
    char id[SAEF_KS_ID_MAX + 1];
} pick;

/* A live kc registered for IdB wins (the MAF-based SAEF is what A set up
   last for it), the newest; else the newest live kpsa. */
static int pick_cb(SAEF_KS_TYPE type, const char *id, size_t id_len, const saef_ks_record *rec,
                   void *arg)
{
    pick *p = arg;

    if ((type != SAEF_KS_KPSA && type != SAEF_KS_KC) ||
        (rec->not_after != 0 && rec->not_after <= p->now))
        return 0;
    p->usable++;
    if (p->type == 0 || (type == SAEF_KS_KC && p->type != SAEF_KS_KC) ||
        (type == p->type && rec->created > p->best_created)) {
        p->type = type;
        p->best_created = rec->created;
        memcpy(p->id, id, id_len);
        p->id[id_len] = '\0';
    }
    /* A second key already means there is no only one. */
    return p->only && p->usable > 1;
}

/* Entity A's record for id, unexpired, as it is offered; c then describes it. */
static int client_get(saef_ctx *s, conn *c, SAEF_KS_TYPE type, const char *id,
                      saef_ks_record *rec)
{
    saef_ks *ks = store(s);

    if (ks == NULL || saef_ks_get(ks, type, id, strlen(id), rec) != SAEF_KS_OK) {
        saef_log(s, SAEF_LEVEL_INFO, "no %s key %s to offer", saef_ks_type_name(type), id);
        return 0;
    }
    if (rec->not_after != 0 && rec->not_after <= (int64_t)time(NULL)) {
        saef_ks_record_wipe(rec);
        saef_log(s, SAEF_LEVEL_INFO, "not offering expired key %s", id);
        return 0;
    }
    if (type == SAEF_KS_KC && conf_int(s, SAEF_CONF_KC_HALF) && rec->key_len > 16)
        rec->key_len = 16;
    snprintf(c->identity, sizeof(c->identity), "%s", id);
    snprintf(c->peer, sizeof(c->peer), "%s", rec->peer);
    c->fw = type == SAEF_KS_KC ? SAEF_FW_MAF : SAEF_FW_PSK;
    return 1;
}

/* Entity A's key for this connection (see saef_ssl_set_identity). */
static int client_key(SSL *ssl, saef_ctx *s, conn *c, saef_ks_record *rec)
{
    saef_ks *ks = store(s);
    pick p = {0};
    const char *id = c->want_identity, *target;
    char idb[SAEF_KS_ENTITY_MAX + 1];
    SAEF_KS_TYPE type;
    SAEF_KS_ERR err;

    if (ks == NULL)
        return 0;
    p.now = (int64_t)time(NULL);
    if (*id == '\0') {
        target = client_target(ssl, s, c, idb, sizeof(idb));
        p.only = target == NULL;
        /* Entity IDs compare exactly (the peer index is byte for byte). */
        err = target != NULL ? saef_ks_iter_peer(ks, 0, target, pick_cb, &p)
                             : saef_ks_iter(ks, 0, pick_cb, &p);
        if (err != SAEF_KS_OK && err != SAEF_KS_EINVAL)
            return 0;
        if (p.type == 0 || (target == NULL && p.usable != 1)) {
            saef_log(s, SAEF_LEVEL_INFO, "no key to offer for target \"%s\"",
                     target ? target
                            : "(none: map it in targets, set one, or keep one key in the store)");
            return 0;
        }
        id = p.id;
    }
    type = p.type != 0 ? p.type : saef_id_type(s->conf, id, strlen(id));
    return client_get(s, c, type, id, rec);
}

static unsigned int psk_client_cb(SSL *ssl, const char *hint, char *identity,
                                  unsigned int max_identity_len, unsigned char *psk,
                                  unsigned int max_psk_len)
{
    ctx_data *cd = ssl_cd(ssl);
    conn *c = get_conn(ssl);
    saef_ks_record rec;
    unsigned int n = 0;

    if (cd == NULL || c == NULL)
        return 0;
    /* TLS 1.3 (no suite yet, or a HelloRetryRequest's): use_session_cb
       offers saef's keys; TLS 1.2 asks here once a PSK suite was chosen. */
    if (SSL_get_pending_cipher(ssl) == NULL || SSL_version(ssl) == TLS1_3_VERSION ||
        !client_key(ssl, cd->s, c, &rec))
        return cd->next_client != NULL && !require_psk(cd)
                   ? cd->next_client(ssl, hint, identity, max_identity_len, psk, max_psk_len)
                   : 0;
    if (strlen(c->identity) < max_identity_len && rec.key_len <= max_psk_len) {
        strcpy(identity, c->identity);
        memcpy(psk, rec.key, rec.key_len);
        n = (unsigned int)rec.key_len;
        c->ok = 1;
        bind_session(c, fw_type(c->fw), SSL_get_session(ssl), &rec,
                     SSL_SESSION_get_timeout(SSL_get_session(ssl)));
    }
    saef_ks_record_wipe(&rec);
    return n;
}

static int use_session_cb(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
                          SSL_SESSION **sess)
{
    ctx_data *cd = ssl_cd(ssl);
    conn *c = get_conn(ssl);
    saef_ks_record rec;

    *sess = NULL;
    if (cd == NULL || c == NULL)
        return 0;
    /* After a HelloRetryRequest md is set (a new object each time): by type. */
    if (md != NULL && !EVP_MD_is_a(md, "SHA256"))
        return 1;
    if (!client_key(ssl, cd->s, c, &rec))
        return cd->next_use != NULL && !require_psk(cd) ? cd->next_use(ssl, md, id, idlen, sess)
                                                        : 1;
    *sess = saef_psk_session(ssl, rec.key, rec.key_len);
    /* Offered, not yet used: servername_cb sees whether the server took it. */
    c->offered = *sess != NULL &&
                 bind_session(c, fw_type(c->fw), *sess, &rec, SSL_CTX_get_timeout(SSL_get_SSL_CTX(ssl)));
    saef_ks_record_wipe(&rec);
    *id = (const unsigned char *)c->identity;
    *idlen = strlen(c->identity);
    return *sess != NULL;
}

/* ---- installation ----------------------------------------------------- */

/* TLS 1.2 list: TS-0003 suites first, then the program's; only PSK suites
   with require_psk. TLS 1.3 list: keep a SHA-256 suite for the PSK. */
static void apply_ciphers(SSL_CTX *ctx, const ctx_data *cd)
{
    STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(ctx);
    char list[4096] = SAEF_PSK_CIPHERS, suites[512] = "";
    /* Only in a context that serves and never connects: a program's own
       outgoing connections keep their suites (servername_cb judges both). */
    int require = cd->server && !cd->client && require_psk(cd);
    int has_sha256 = 0;

    for (int i = 0; i < sk_SSL_CIPHER_num(sk); i++) {
        const SSL_CIPHER *ci = sk_SSL_CIPHER_value(sk, i);
        const char *name = SSL_CIPHER_get_name(ci);
        if (strcmp(SSL_CIPHER_get_version(ci), "TLSv1.3") == 0) {
            has_sha256 |= strcmp(name, "TLS_AES_128_GCM_SHA256") == 0;
            snprintf(suites + strlen(suites), sizeof(suites) - strlen(suites), "%s%s",
                     suites[0] ? ":" : "", name);
        } else if (strstr(SAEF_PSK_CIPHERS, name) == NULL &&
                   (!require || strstr(name, "PSK") != NULL)) {
            snprintf(list + strlen(list), sizeof(list) - strlen(list), ":%s", name);
        }
    }
    SSL_CTX_set_cipher_list(ctx, list);
    if (!has_sha256) {
        snprintf(suites + strlen(suites), sizeof(suites) - strlen(suites), "%s%s",
                 suites[0] ? ":" : "", "TLS_AES_128_GCM_SHA256");
        SSL_CTX_set_ciphersuites(ctx, suites);
    }
}

static void apply_versions(SSL_CTX *ctx, const ctx_data *cd)
{
    int min = cd->dtls ? DTLS1_2_VERSION : TLS1_2_VERSION;
    long cur = SSL_CTX_get_min_proto_version(ctx);

    /* Nothing below (D)TLS 1.2 (TS-0003 10.2.1); DTLS numbers count down. */
    if (cur == 0 || (cd->dtls ? cur > min : cur < min))
        SSL_CTX_set_min_proto_version(ctx, min);
    if (!cd->dtls && !conf_int(cd->s, SAEF_CONF_TLS13))
        SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
}

void saef_reapply_ciphers(SSL_CTX *ctx)
{
    ctx_data *cd = get_cd(ctx);

    if (cd != NULL)
        apply_ciphers(ctx, cd);
}

int saef_ssl_ctx_server(SSL_CTX *ctx, saef_ctx *s)
{
    ctx_data *cd;

    if (ctx == NULL || s == NULL || (cd = attach(ctx, s)) == NULL)
        return 0;
    if (cd->server)
        return 1;
    cd->server = 1;
    cd->next_info = SSL_CTX_get_info_callback(ctx);
    note_info(cd);
    SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
    SSL_CTX_set_tlsext_servername_arg(ctx, cd);
    SSL_CTX_set_psk_server_callback(ctx, psk_server_cb);
    SSL_CTX_set_psk_find_session_callback(ctx, find_session_cb);
    SSL_CTX_set_client_hello_cb(ctx, hello_cb, cd);
    SSL_CTX_set_session_ticket_cb(ctx, NULL, ticket_cb, cd);
    SSL_CTX_set_info_callback(ctx, info_cb);
    /* With a certificate loaded, the client's order would pick a certificate suite. */
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    apply_versions(ctx, cd);
    apply_ciphers(ctx, cd);
    return 1;
}

int saef_ssl_ctx_maf_server(SSL_CTX *ctx, saef_ctx *s)
{
    ctx_data *cd;

    if (ctx == NULL || s == NULL || (cd = attach(ctx, s)) == NULL || cd->server)
        return 0;
    cd->maf = 1;
    return saef_ssl_ctx_server(ctx, s);
}

int saef_ssl_ctx_client(SSL_CTX *ctx, saef_ctx *s)
{
    ctx_data *cd;

    if (ctx == NULL || s == NULL || (cd = attach(ctx, s)) == NULL)
        return 0;
    if (cd->client)
        return 1;
    cd->client = 1;
    if (!cd->server) {
        cd->next_info = SSL_CTX_get_info_callback(ctx);
        note_info(cd);
        SSL_CTX_set_info_callback(ctx, info_cb);
        SSL_CTX_set_tlsext_servername_callback(ctx, servername_cb);
        SSL_CTX_set_tlsext_servername_arg(ctx, cd);
    }
    SSL_CTX_set_psk_client_callback(ctx, psk_client_cb);
    SSL_CTX_set_psk_use_session_callback(ctx, use_session_cb);
    apply_versions(ctx, cd);
    apply_ciphers(ctx, cd);
    return 1;
}

int saef_chain(SSL_CTX *ctx, SAEF_NEXT which, void (*fn)(void), void *arg)
{
    ctx_data *cd = get_cd(ctx);

    if (cd == NULL)
        return 0;
    switch (which) {
    case SAEF_NEXT_PSK_SERVER: cd->next_server = (SSL_psk_server_cb_func)fn; return cd->server;
    case SAEF_NEXT_FIND_SESSION:
        cd->next_find = (SSL_psk_find_session_cb_func)fn;
        return cd->server;
    case SAEF_NEXT_PSK_CLIENT: cd->next_client = (SSL_psk_client_cb_func)fn; return cd->client;
    case SAEF_NEXT_USE_SESSION:
        cd->next_use = (SSL_psk_use_session_cb_func)fn;
        return cd->client;
    case SAEF_NEXT_INFO:
        cd->next_info = (void (*)(const SSL *, int, int))fn;
        note_info(cd);
        return 1;
    case SAEF_NEXT_HELLO:
        cd->next_hello = (SSL_client_hello_cb_fn)fn;
        cd->next_hello_arg = arg;
        return cd->server;
    case SAEF_NEXT_SERVERNAME:
        cd->next_servername = (int (*)(SSL *, int *, void *))fn;
        return 1;
    case SAEF_NEXT_SERVERNAME_ARG: cd->next_servername_arg = arg; return 1;
    }
    return 0;
}

int saef_ssl_ctx_set_servername_callback(SSL_CTX *ctx, int (*cb)(SSL *, int *, void *),
                                         void *arg)
{
    if (saef_chain(ctx, SAEF_NEXT_SERVERNAME, (void (*)(void))cb, NULL))
        return saef_chain(ctx, SAEF_NEXT_SERVERNAME_ARG, NULL, arg);
    return SSL_CTX_set_tlsext_servername_callback(ctx, cb) &&
           SSL_CTX_set_tlsext_servername_arg(ctx, arg);
}

/* ---- per-connection API ----------------------------------------------- */

static int set_str(SSL *ssl, const char *v, size_t field)
{
    conn *c = get_conn(ssl);
    char *dst;
    size_t max;

    if (c == NULL || v == NULL)
        return 0;
    dst = field ? c->target : c->want_identity;
    max = field ? sizeof(c->target) : sizeof(c->want_identity);
    if (strlen(v) >= max)
        return 0;
    strcpy(dst, v);
    return 1;
}

int saef_ssl_set_identity(SSL *ssl, const char *identity)
{
    return set_str(ssl, identity, 0);
}

int saef_ssl_set_target(SSL *ssl, const char *idb)
{
    return set_str(ssl, idb, 1);
}

static const conn *done_conn(const SSL *ssl)
{
    const conn *c;

    pthread_once(&idx_once, make_indexes);
    c = SSL_get_ex_data(ssl, ssl_idx);
    return c != NULL && c->ok && SSL_is_init_finished(ssl) ? c : NULL;
}

const char *saef_ssl_identity(const SSL *ssl)
{
    const conn *c = done_conn(ssl);

    return c != NULL ? c->identity : NULL;
}

const char *saef_ssl_peer_entity(const SSL *ssl)
{
    const conn *c = done_conn(ssl);

    return c != NULL && c->peer[0] ? c->peer : NULL;
}

SAEF_FRAMEWORK saef_ssl_framework(const SSL *ssl)
{
    const conn *c = done_conn(ssl);

    return c != NULL ? c->fw : SAEF_FW_NONE;
}

/* ---- servers that ask for a key without showing the SSL ---------------- */

/* addr_source for an address as text (a broker plugin's view of its peer). */
static size_t addr_source(const char *addr, unsigned char src[16])
{
    static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    if (inet_pton(AF_INET, addr, src) == 1)
        return 4;
    if (inet_pton(AF_INET6, addr, src) != 1)
        return 0;
    if (memcmp(src, v4mapped, 12) == 0) {
        memmove(src, src + 12, 4);
        return 4;
    }
    return 8;
}

int saef_psk_lookup(saef_ctx *s, const char *identity, const char *sni, const char *peer,
                    unsigned char *key, size_t *key_len, char *entity, size_t entity_len,
                    SAEF_FRAMEWORK *fw)
{
    ctx_data cd = {.s = s};
    saef_ks_record rec;
    char shown[4 * SAEF_KS_ID_MAX + 8];
    conn conn_, *c = &conn_;
    size_t len = identity != NULL ? strlen(identity) : 0;
    int ok = 0;

    if (s == NULL || key == NULL || key_len == NULL || entity == NULL)
        return 0;
    memset(c, 0, sizeof(*c));
    if (sni != NULL)
        snprintf(c->sni, sizeof(c->sni), "%s", sni);
    if (peer != NULL)
        snprintf(c->addr, sizeof(c->addr), "%s", peer);
    switch (server_key(NULL, &cd, (const unsigned char *)identity, len, &rec, c)) {
    case KEY_OK:
        if (rec.key_len <= *key_len && strlen(c->peer) < entity_len) {
            memcpy(key, rec.key, rec.key_len);
            *key_len = rec.key_len;
            strcpy(entity, c->peer);
            if (fw != NULL)
                *fw = c->fw;
            ok = 1;
        }
        saef_ks_record_wipe(&rec);
        break;
    case KEY_UNKNOWN:
        saef_escape(identity, len, shown, sizeof(shown));
        saef_log(s, SAEF_LEVEL_INFO, "refused identity=\"%s\" reason=\"unknown identity\" peer=%s",
                 shown, c->addr[0] ? c->addr : "-");
        break;
    case KEY_REFUSED: break;
    }
    if (!ok)
        *key_len = refusal_key(s, key, *key_len);
    return ok;
}

void saef_log_printf(const saef_ctx *s, int level, const char *fmt, ...)
{
    va_list ap;

    if (s == NULL)
        return;
    va_start(ap, fmt);
    vlog(s, level, fmt, ap);
    va_end(ap);
}

const char *saef_ssl_own_entity(const SSL *ssl)
{
    const ctx_data *cd = ssl_cd(ssl);
    const char *id = cd != NULL ? saef_conf_str(cd->s->conf, SAEF_CONF_ENTITY_ID) : NULL;

    return id != NULL && *id != '\0' ? id : NULL;
}

void saef_log_origin(const SSL *ssl, SAEF_ORIGIN rsc, const char *entity, const char *from,
                     size_t len)
{
    const ctx_data *cd = ssl_cd(ssl);
    /* The originator comes from the network: escaped, and 128 bytes of it. */
    char shown[4 * 128 + 8] = "-", addr[64];
    size_t n = len < 128 ? len : 128;

    if (cd == NULL || !log_on(cd->s, SAEF_LEVEL_INFO))
        return;
    if (from != NULL) {
        shown[0] = '"';
        saef_escape(from, n, shown + 1, sizeof(shown) - 6);
        strcat(shown, n < len ? "\"..." : "\"");
    }
    saef_log(cd->s, SAEF_LEVEL_INFO,
             "refused request rsc=%d (%s) entity=\"%s\" originator=%s peer=%s", (int)rsc,
             rsc == SAEF_ORIGIN_NO_ASSOCIATION ? "SECURITY_ASSOCIATION_REQUIRED"
                                               : "ORIGINATOR_NOT_AUTHENTICATED",
             entity != NULL ? entity : "-", shown, peer_addr(ssl, addr, sizeof(addr)));
}
