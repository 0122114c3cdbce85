/* Entity A's callbacks: which key to offer for the connection. */
#include "rules.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

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
static const char *client_target(SSL *ssl, const saef_ctx *s, const conn *c, char *idb, size_t len)
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
int saef_client_get(saef_ctx *s, conn *c, SAEF_KS_TYPE type, const char *id, saef_ks_record *rec)
{
    saef_ks *ks = saef_store(s);

    if (ks == NULL || saef_ks_get(ks, type, id, strlen(id), rec) != SAEF_KS_OK) {
        saef_log(s, SAEF_LEVEL_INFO, "no %s key %s to offer", saef_ks_type_name(type), id);
        return 0;
    }
    if (rec->not_after != 0 && rec->not_after <= (int64_t)time(NULL)) {
        saef_ks_record_wipe(rec);
        saef_log(s, SAEF_LEVEL_INFO, "not offering expired key %s", id);
        return 0;
    }
    if (type == SAEF_KS_KC && saef_ctx_int(s, SAEF_CONF_KC_HALF) && rec->key_len > 16)
        rec->key_len = 16;
    snprintf(c->identity, sizeof(c->identity), "%s", id);
    snprintf(c->peer, sizeof(c->peer), "%s", rec->peer);
    c->fw = type == SAEF_KS_KC ? SAEF_FW_MAF : SAEF_FW_PSK;
    return 1;
}

/* Entity A's key for this connection (see saef_ssl_set_identity). */
int saef_client_key(SSL *ssl, saef_ctx *s, conn *c, saef_ks_record *rec)
{
    saef_ks *ks = saef_store(s);
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
        SAEF_DEBUG(s, "target \"%s\": chose %s %s of %zu usable", target ? target : "(only key)",
                   saef_ks_type_name(p.type), id, p.usable);
    }
    type = p.type != 0 ? p.type : saef_id_type(s->conf, id, strlen(id));
    return saef_client_get(s, c, type, id, rec);
}

unsigned int saef_psk_client_cb(SSL *ssl, const char *hint, char *identity,
                                unsigned int max_identity_len, unsigned char *psk,
                                unsigned int max_psk_len)
{
    ctx_data *cd = saef_ssl_cd(ssl);
    conn *c = saef_get_conn(ssl);
    saef_ks_record rec;
    unsigned int n = 0;

    if (cd == NULL || c == NULL)
        return 0;
    /* TLS 1.3 (no suite yet, or a HelloRetryRequest's): saef_use_session_cb
       offers saef's keys; TLS 1.2 asks here once a PSK suite was chosen. */
    if (SSL_get_pending_cipher(ssl) == NULL || SSL_version(ssl) == TLS1_3_VERSION ||
        !saef_client_key(ssl, cd->s, c, &rec))
        return cd->next_client != NULL && !saef_require_psk(cd)
                   ? cd->next_client(ssl, hint, identity, max_identity_len, psk, max_psk_len)
                   : 0;
    if (strlen(c->identity) < max_identity_len && rec.key_len <= max_psk_len) {
        strcpy(identity, c->identity);
        n = saef_use_key(ssl, c, &rec, psk);
    }
    saef_ks_record_wipe(&rec);
    return n;
}

int saef_use_session_cb(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
                        SSL_SESSION **sess)
{
    ctx_data *cd = saef_ssl_cd(ssl);
    conn *c = saef_get_conn(ssl);
    saef_ks_record rec;

    *sess = NULL;
    if (cd == NULL || c == NULL)
        return 0;
    /* After a HelloRetryRequest md is set (a new object each time): by type. */
    if (md != NULL && !EVP_MD_is_a(md, "SHA256"))
        return 1;
    if (!saef_client_key(ssl, cd->s, c, &rec))
        return cd->next_use != NULL && !saef_require_psk(cd)
                   ? cd->next_use(ssl, md, id, idlen, sess)
                   : 1;
    *sess = saef_psk_session(ssl, rec.key, rec.key_len);
    /* Offered, not yet used: saef_servername_cb sees whether the server took it. */
    c->offered = *sess != NULL && saef_bind_session(c, saef_fw_type(c->fw), *sess, &rec,
                                                    SSL_CTX_get_timeout(SSL_get_SSL_CTX(ssl)));
    saef_ks_record_wipe(&rec);
    *id = (const unsigned char *)c->identity;
    *idlen = strlen(c->identity);
    return *sess != NULL;
}
