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

#define TLS13_SHA256_SUITES "TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_CCM_SHA256"
#define TLSEXT_SERVER_NAME 0
#define TLSEXT_PSK 41
#define TLSEXT_SUPPORTED_VERSIONS 43

struct saef_ctx {
    int refs; /* atomic */
    saef_conf conf;
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
} ctx_data;

/* Per connection. */
typedef struct {
    char identity[SAEF_KS_ID_MAX + 1];
    char peer[SAEF_KS_ENTITY_MAX + 16];
    SAEF_FRAMEWORK fw;
    int logged;
    char want_identity[SAEF_KS_ID_MAX + 1];
    char target[SAEF_KS_ENTITY_MAX + 1];
    char sni[256]; /* the ClientHello's host name, for TLS 1.3 PSK callbacks */
} conn;

typedef enum { KEY_OK, KEY_UNKNOWN, KEY_REFUSED } key_result;

static int ctx_idx = -1, ssl_idx = -1;
static pthread_once_t idx_once = PTHREAD_ONCE_INIT;

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

/* ---- logging ---------------------------------------------------------- */

static void saef_log(const saef_ctx *s, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Callers that format costly arguments (peer_addr) ask first. */
static int log_on(const saef_ctx *s, int level)
{
    return saef_conf_int(&s->conf, SAEF_CONF_LOG) != SAEF_LOG_NONE &&
           level <= saef_conf_int(&s->conf, SAEF_CONF_LOG_LEVEL);
}

static void saef_log(const saef_ctx *s, int level, const char *fmt, ...)
{
    static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
    char line[1024];
    va_list ap;
    long where = saef_conf_int(&s->conf, SAEF_CONF_LOG);

    if (!log_on(s, level))
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (where == SAEF_LOG_SYSLOG)
        syslog(LOG_AUTH | prio[level], "saef: %s", line);
    else
        fprintf(stderr, "saef: %s\n", line);
}

/* Identities come from the network: escape anything unprintable. */
static const char *printable(const void *in, size_t len, char *out, size_t outlen)
{
    const unsigned char *p = in;
    size_t o = 0;

    for (size_t i = 0; i < len && o + 5 < outlen; i++) {
        if (isgraph(p[i]) && p[i] != '\\' && p[i] != '"')
            out[o++] = (char)p[i];
        else
            o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", p[i]);
    }
    out[o] = '\0';
    return out;
}

static const char *peer_addr(const SSL *ssl, char *buf, size_t len)
{
    BIO_ADDR *addr = BIO_ADDR_new();
    char *host = NULL, *port = NULL;
    int ok = 0;

    /* TCP: the socket's peer; DTLS on an unconnected socket: the BIO's. */
    if (addr != NULL) {
        struct sockaddr_storage sa;
        socklen_t sl = sizeof(sa);
        int fd = SSL_get_fd(ssl);
        if (fd >= 0 && getpeername(fd, (struct sockaddr *)&sa, &sl) == 0)
            ok = BIO_ADDR_rawmake(addr, sa.ss_family,
                                  sa.ss_family == AF_INET6
                                      ? (void *)&((struct sockaddr_in6 *)&sa)->sin6_addr
                                      : (void *)&((struct sockaddr_in *)&sa)->sin_addr,
                                  sa.ss_family == AF_INET6 ? 16 : 4,
                                  sa.ss_family == AF_INET6
                                      ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                      : ((struct sockaddr_in *)&sa)->sin_port);
        else if (SSL_is_dtls(ssl))
            ok = BIO_dgram_get_peer(SSL_get_rbio(ssl), addr) > 0;
    }
    if (ok && BIO_ADDR_family(addr) != AF_UNSPEC && (host = BIO_ADDR_hostname_string(addr, 1)) != NULL &&
        (port = BIO_ADDR_service_string(addr, 1)) != NULL)
        snprintf(buf, len, "%s:%s", host, port);
    else
        snprintf(buf, len, "-");
    OPENSSL_free(host);
    OPENSSL_free(port);
    BIO_ADDR_free(addr);
    return buf;
}

/* ---- context ---------------------------------------------------------- */

/* Opened at once, so a program that drops privileges later keeps access;
   retried at the next handshake if it failed. */
static saef_ks *store(saef_ctx *s)
{
    saef_ks *ks;

    pthread_mutex_lock(&s->lock);
    if (s->ks == NULL) {
        const char *path = saef_conf_str(&s->conf, SAEF_CONF_STORE);
        unsigned flags = saef_conf_int(&s->conf, SAEF_CONF_STORE_GROUP_READ) ? SAEF_KS_GROUP_READ : 0;
        /* Writable when MAF keys are cached here; read-only is enough otherwise,
           and what a worker without write access gets. */
        if (*saef_conf_str(&s->conf, SAEF_CONF_MAF) == '\0' ||
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
    s->conf = *conf;
    pthread_mutex_init(&s->lock, NULL);
    store(s);
    return s;
}

saef_ctx *saef_new_from_openssl(OSSL_LIB_CTX *libctx)
{
    saef_conf conf;

    saef_conf_init(&conf);
    if (!OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL) ||
        saef_conf_from_provider(libctx, &conf) < 0)
        return NULL;
    return saef_new(&conf);
}

void saef_free(saef_ctx *s)
{
    if (s == NULL || __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) > 0)
        return;
    saef_ks_close(s->ks);
    pthread_mutex_destroy(&s->lock);
    OPENSSL_cleanse(&s->conf, sizeof(s->conf));
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
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    const char *list = saef_conf_str(&s->conf, SAEF_CONF_SNI);
    size_t n;

    /* OpenSSL 3.0 shows no SNI to the TLS 1.3 PSK callback yet. */
    if (sni == NULL && c->sni[0] != '\0')
        sni = c->sni;
    if (self[0] == '\0' || strcmp(self, saef_conf_str(&s->conf, SAEF_CONF_ENTITY_ID)) == 0)
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
    type = cd->maf ? SAEF_KS_KM : saef_id_type(&s->conf, (const char *)id, id_len);
    if ((ks = store(s)) == NULL) {
        why = "key store unavailable";
        goto refuse;
    }
    if (type == SAEF_KS_KC && !saef_maf_key(&s->conf, ks, (const char *)id, id_len, rec, &why))
        goto refuse;
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
        long suid = saef_conf_int(&s->conf, SAEF_CONF_KC_SUID);
        if (suid != 0 && rec->suid != suid) {
            why = "connection key has the wrong SUID";
            goto refuse_rec;
        }
        if (saef_conf_int(&s->conf, SAEF_CONF_KC_HALF) && rec->key_len > 16)
            rec->key_len = 16;
    }
    memcpy(c->identity, id, id_len);
    c->identity[id_len] = '\0';
    if (rec->peer[0] != '\0')
        snprintf(c->peer, sizeof(c->peer), "%s", rec->peer);
    else /* TS-0003 10.4 Credential-ID: type 11 for KmID, 12 for KpsaID / KcID */
        snprintf(c->peer, sizeof(c->peer), "%s-%s", cd->maf ? "11" : "12", c->identity);
    c->fw = cd->maf ? SAEF_FW_MAF_CLIENT : type == SAEF_KS_KC ? SAEF_FW_MAF : SAEF_FW_PSK;
    return KEY_OK;
refuse_rec:
    saef_ks_record_wipe(rec);
refuse:
    printable(id, id_len, shown, sizeof(shown));
    saef_log(s, SAEF_LEVEL_INFO, "refused identity=\"%s\" reason=\"%s\" peer=%s", shown, why,
             peer_addr(ssl, addr, sizeof(addr)));
    return KEY_REFUSED;
}

static void log_unknown(SSL *ssl, const saef_ctx *s, const void *id, size_t id_len)
{
    char shown[4 * SAEF_KS_ID_MAX + 8], addr[64];

    printable(id, id_len, shown, sizeof(shown));
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
    if (saef_conf_int(&s->conf, SAEF_CONF_REFUSE) == SAEF_REFUSE_UNKNOWN_PSK_IDENTITY)
        return 0;
    if (max > 32)
        max = 32;
    return RAND_bytes(key, (int)max) == 1 ? max : 0;
}

/* ---- server callbacks --------------------------------------------------- */

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
    switch (server_key(ssl, cd, (const unsigned char *)identity, len, &rec, c)) {
    case KEY_OK:
        if (rec.key_len <= max_psk_len) {
            memcpy(psk, rec.key, rec.key_len);
            n = (unsigned int)rec.key_len;
        }
        saef_ks_record_wipe(&rec);
        return n;
    case KEY_UNKNOWN:
        if (cd->next_server != NULL && (n = cd->next_server(ssl, identity, psk, max_psk_len)) > 0)
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
    switch (server_key(ssl, cd, id, id_len, &rec, c)) {
    case KEY_OK:
        *sess = saef_psk_session(ssl, rec.key, rec.key_len);
        saef_ks_record_wipe(&rec);
        return *sess != NULL;
    case KEY_UNKNOWN:
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

/* Does the ClientHello offer one of our identities in pre_shared_key? */
static int offers_known_psk(SSL *ssl, const ctx_data *cd)
{
    saef_ctx *s = cd->s;
    const unsigned char *p;
    size_t len, total;
    saef_ks *ks = store(s);
    saef_ks_record rec;

    if (ks == NULL || !SSL_client_hello_get0_ext(ssl, TLSEXT_PSK, &p, &len) || len < 2)
        return 0;
    total = (size_t)p[0] << 8 | p[1];
    p += 2;
    if (total > len - 2)
        return 0;
    while (total >= 6) {
        size_t idlen = (size_t)p[0] << 8 | p[1];
        if (idlen + 6 > total)
            return 0;
        if (idlen > 0 && idlen <= SAEF_KS_ID_MAX) {
            SAEF_KS_TYPE type =
                cd->maf ? SAEF_KS_KM : saef_id_type(&s->conf, (const char *)p + 2, idlen);
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

static int offers_tls13(SSL *ssl)
{
    const unsigned char *p;
    size_t len;

    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_SUPPORTED_VERSIONS, &p, &len) || len < 1)
        return 0;
    for (size_t i = 1; i + 1 < len && i < (size_t)p[0] + 1; i += 2)
        if (p[i] == 0x03 && p[i + 1] == 0x04)
            return 1;
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

    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_SERVER_NAME, &p, &len) || len < 5 ||
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
    char addr[64];
    int known, sha384, require;

    if (cd->next_hello != NULL) {
        int r = cd->next_hello(ssl, al, cd->next_hello_arg);
        if (r != SSL_CLIENT_HELLO_SUCCESS)
            return r;
    }
    hello_sni(ssl);
    /* Only these two need the PSK identities looked up here; the suite list
       is rebuilt per connection, which costs more than the handshake's lookup. */
    sha384 = offers_sha384(ssl);
    require = saef_conf_int(&cd->s->conf, SAEF_CONF_REQUIRE_PSK) &&
              saef_conf_int(&cd->s->conf, SAEF_CONF_TLS13) && offers_tls13(ssl);
    if (!sha384 && !require)
        return SSL_CLIENT_HELLO_SUCCESS;
    known = offers_known_psk(ssl, cd);
    /* A SHA-384 suite would make the server ignore a SHA-256 external PSK. */
    if (known && sha384 && !SSL_set_ciphersuites(ssl, TLS13_SHA256_SUITES))
        return SSL_CLIENT_HELLO_ERROR;
    if (require && !known) {
        saef_log(cd->s, SAEF_LEVEL_INFO,
                 "refused TLS 1.3 handshake without a known PSK (require_psk) peer=%s",
                 peer_addr(ssl, addr, sizeof(addr)));
        *al = SSL_AD_HANDSHAKE_FAILURE;
        return SSL_CLIENT_HELLO_ERROR;
    }
    return SSL_CLIENT_HELLO_SUCCESS;
}

static void info_cb(const SSL *ssl, int where, int ret)
{
    ctx_data *cd = ssl_cd(ssl);
    conn *c;
    char addr[64];

    if (cd == NULL)
        return;
    /* Called at every state change: only the two events logged cost more. */
    if ((where & (SSL_CB_HANDSHAKE_DONE | SSL_CB_ALERT)) && log_on(cd->s, SAEF_LEVEL_INFO)) {
        c = SSL_get_ex_data(ssl, ssl_idx);
        if (c != NULL && c->fw != SAEF_FW_NONE && !c->logged && (where & SSL_CB_HANDSHAKE_DONE)) {
            c->logged = 1;
            saef_log(cd->s, SAEF_LEVEL_INFO,
                     "association %s identity=\"%s\" entity=\"%s\" framework=%s protocol=%s "
                     "cipher=%s peer=%s",
                     SSL_is_server((SSL *)ssl) ? "accepted" : "established", c->identity,
                     c->peer,
                     c->fw == SAEF_FW_MAF          ? "maf"
                     : c->fw == SAEF_FW_MAF_CLIENT ? "maf-client"
                                                   : "psk",
                     SSL_get_version(ssl), SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)),
                     peer_addr(ssl, addr, sizeof(addr)));
        }
        if (c != NULL && c->fw != SAEF_FW_NONE && !c->logged && (where & SSL_CB_ALERT) &&
            (ret >> 8) == SSL3_AL_FATAL)
            saef_log(cd->s, SAEF_LEVEL_INFO,
                     "handshake failed identity=\"%s\" alert=%s (%s) peer=%s", c->identity,
                     SSL_alert_desc_string_long(ret), (where & SSL_CB_READ) ? "received" : "sent",
                     peer_addr(ssl, addr, sizeof(addr)));
    }
    if (cd->next_info != NULL)
        cd->next_info(ssl, where, ret);
}

/* ---- client callbacks ------------------------------------------------- */

typedef struct {
    const char *target;
    int64_t now, best_created;
    size_t usable;
    SAEF_KS_TYPE type;
    char id[SAEF_KS_ID_MAX + 1];
} pick;

static int pick_cb(SAEF_KS_TYPE type, const char *id, size_t id_len, const saef_ks_record *rec,
                   void *arg)
{
    pick *p = arg;

    if (type == SAEF_KS_KM || type == SAEF_KS_CREG ||
        (rec->not_after != 0 && rec->not_after <= p->now))
        return 0;
    p->usable++;
    if (p->target != NULL && strcasecmp(rec->peer, p->target) != 0)
        return 0;
    if (p->type == 0 || rec->created > p->best_created) {
        p->type = type;
        p->best_created = rec->created;
        memcpy(p->id, id, id_len);
        p->id[id_len] = '\0';
    }
    return 0;
}

/* Entity A's key for this connection (see saef_ssl_set_identity). */
static int client_key(SSL *ssl, saef_ctx *s, conn *c, saef_ks_record *rec)
{
    saef_ks *ks = store(s);
    pick p = {0};
    const char *id = c->want_identity;
    SAEF_KS_TYPE type;

    if (ks == NULL)
        return 0;
    p.now = (int64_t)time(NULL);
    if (*id == '\0') {
        p.target = c->target[0] ? c->target : SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
        if (saef_ks_iter(ks, 0, pick_cb, &p) != SAEF_KS_OK)
            return 0;
        if (p.type == 0 || (p.target == NULL && p.usable != 1)) {
            saef_log(s, SAEF_LEVEL_INFO, "no key to offer for target \"%s\"",
                     p.target ? p.target : "(none: set one, or keep one key in the store)");
            return 0;
        }
        id = p.id;
    }
    type = p.type != 0 ? p.type : saef_id_type(&s->conf, id, strlen(id));
    if (saef_ks_get(ks, type, id, strlen(id), rec) != SAEF_KS_OK) {
        saef_log(s, SAEF_LEVEL_INFO, "no %s key %s to offer", saef_ks_type_name(type), id);
        return 0;
    }
    if (rec->not_after != 0 && rec->not_after <= p.now) {
        saef_ks_record_wipe(rec);
        saef_log(s, SAEF_LEVEL_INFO, "not offering expired key %s", id);
        return 0;
    }
    if (type == SAEF_KS_KC && saef_conf_int(&s->conf, SAEF_CONF_KC_HALF) && rec->key_len > 16)
        rec->key_len = 16;
    snprintf(c->identity, sizeof(c->identity), "%s", id);
    snprintf(c->peer, sizeof(c->peer), "%s", rec->peer);
    c->fw = type == SAEF_KS_KC ? SAEF_FW_MAF : SAEF_FW_PSK;
    return 1;
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
    if (!client_key(ssl, cd->s, c, &rec))
        return cd->next_client != NULL
                   ? cd->next_client(ssl, hint, identity, max_identity_len, psk, max_psk_len)
                   : 0;
    if (strlen(c->identity) < max_identity_len && rec.key_len <= max_psk_len) {
        strcpy(identity, c->identity);
        memcpy(psk, rec.key, rec.key_len);
        n = (unsigned int)rec.key_len;
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
        return cd->next_use != NULL ? cd->next_use(ssl, md, id, idlen, sess) : 1;
    *sess = saef_psk_session(ssl, rec.key, rec.key_len);
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
    int require = cd->server && saef_conf_int(&cd->s->conf, SAEF_CONF_REQUIRE_PSK);
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
    if (!cd->dtls && !saef_conf_int(&cd->s->conf, SAEF_CONF_TLS13))
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
    SSL_CTX_set_psk_server_callback(ctx, psk_server_cb);
    SSL_CTX_set_psk_find_session_callback(ctx, find_session_cb);
    SSL_CTX_set_client_hello_cb(ctx, hello_cb, cd);
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
        SSL_CTX_set_info_callback(ctx, info_cb);
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
    case SAEF_NEXT_INFO: cd->next_info = (void (*)(const SSL *, int, int))fn; return 1;
    case SAEF_NEXT_HELLO:
        cd->next_hello = (SSL_client_hello_cb_fn)fn;
        cd->next_hello_arg = arg;
        return cd->server;
    }
    return 0;
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
    return c != NULL && c->fw != SAEF_FW_NONE && SSL_is_init_finished(ssl) ? c : NULL;
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
