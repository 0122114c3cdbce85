/* Entity B's callbacks, and the judgement of what a finished handshake
   used (both roles). */
#include "rules.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

/* Some context has a program's info callback behind saef's (atomic). */
static int g_chained_info;

SAEF_KS_TYPE saef_fw_type(SAEF_FRAMEWORK fw)
{
    return fw == SAEF_FW_MAF ? SAEF_KS_KC : fw == SAEF_FW_MAF_CLIENT ? SAEF_KS_KM : SAEF_KS_KPSA;
}

int saef_require_psk(const ctx_data *cd)
{
    return (int)saef_ctx_int(cd->s, SAEF_CONF_REQUIRE_PSK);
}

unsigned int saef_psk_server_cb(SSL *ssl, const char *identity, unsigned char *psk,
                                unsigned int max_psk_len)
{
    ctx_data *cd = saef_ssl_cd(ssl);
    conn *c = saef_get_conn(ssl);
    saef_ks_record rec;
    size_t len = identity != NULL ? strlen(identity) : 0;
    unsigned int n = 0;

    if (cd == NULL || c == NULL)
        return 0;
    /* TLS 1.3: saef_find_session_cb has judged every identity; this is OpenSSL's
       second try for the ones it left, tickets among them. */
    if (SSL_version(ssl) == TLS1_3_VERSION)
        return cd->next_server != NULL && !saef_require_psk(cd)
                   ? cd->next_server(ssl, identity, psk, max_psk_len)
                   : 0;
    switch (saef_server_key(ssl, cd, (const unsigned char *)identity, len, &rec, c)) {
    case KEY_OK:
        if (rec.key_len <= max_psk_len)
            n = saef_use_key(ssl, c, &rec, psk);
        saef_ks_record_wipe(&rec);
        return n;
    case KEY_UNKNOWN:
        if (cd->next_server != NULL && !saef_require_psk(cd) &&
            (n = cd->next_server(ssl, identity, psk, max_psk_len)) > 0)
            return n;
        saef_log_unknown(ssl, cd->s, identity, len);
        break;
    case KEY_REFUSED: break;
    }
    return (unsigned int)saef_refusal_key(cd->s, psk, max_psk_len);
}

int saef_find_session_cb(SSL *ssl, const unsigned char *id, size_t id_len, SSL_SESSION **sess)
{
    ctx_data *cd = saef_ssl_cd(ssl);
    conn *c = saef_get_conn(ssl);
    saef_ks_record rec;
    unsigned char rnd[32];
    size_t n;

    *sess = NULL;
    if (cd == NULL || c == NULL)
        return 0;
    /* Not an identity: OpenSSL tries it as one of its tickets next. */
    if (!saef_plausible_identity(id, id_len))
        return 1;
    switch (saef_server_key(ssl, cd, id, id_len, &rec, c)) {
    case KEY_OK:
        *sess = saef_psk_session(ssl, rec.key, rec.key_len);
        /* OpenSSL may still pass it over (a suite of another hash, a key
           exchange mode it cannot use): saef_servername_cb judges what was used. */
        if (*sess != NULL)
            saef_bind_session(c, saef_fw_type(c->fw), *sess, &rec,
                              SSL_CTX_get_timeout(SSL_get_SSL_CTX(ssl)));
        saef_ks_record_wipe(&rec);
        return *sess != NULL;
    case KEY_UNKNOWN:
        if (saef_require_psk(cd)) {
            saef_log_unknown(ssl, cd->s, id, id_len);
            break;
        }
        if (cd->next_find != NULL)
            return cd->next_find(ssl, id, id_len, sess);
        /* No session: OpenSSL then asks saef_psk_server_cb, which chains to the
           program's TLS 1.2-style callback (mosquitto sets only that one). */
        if (cd->next_server != NULL)
            return 1;
        saef_log_unknown(ssl, cd->s, id, id_len);
        break;
    case KEY_REFUSED: break;
    }
    if ((n = saef_refusal_key(cd->s, rnd, sizeof(rnd))) > 0)
        *sess = saef_psk_session(ssl, rnd, n);
    OPENSSL_cleanse(rnd, sizeof(rnd));
    return 1;
}

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
        key_result r = saef_server_key(ssl, cd, (const unsigned char *)b->identity,
                                       strlen(b->identity), &rec, c);
        if (r == KEY_REFUSED) /* logged with its reason */
            return 0;
        if (r == KEY_UNKNOWN)
            why = "key deleted";
    } else if (!saef_client_get(cd->s, c, b->type, b->identity, &rec)) {
        why = "key deleted or expired";
    }
    if (why == NULL) {
        same = saef_key_digest(&rec, d) && CRYPTO_memcmp(d, b->digest, sizeof(d)) == 0 &&
               c->fw == b->fw && strcmp(c->peer, b->peer) == 0;
        saef_ks_record_wipe(&rec);
        if (same)
            return 1;
        why = "key or binding changed";
    }
    c->fw = SAEF_FW_NONE;
    saef_log(cd->s, SAEF_LEVEL_INFO, "refused resumption identity=\"%s\" reason=\"%s\" peer=%s",
             saef_escape(b->identity, strlen(b->identity), shown, sizeof(shown)), why,
             saef_peer_addr(ssl, addr, sizeof(addr)));
    return 0;
}

/* OpenSSL decrypted one of its tickets: one whose key is gone or changed is
   passed over (a full handshake follows), not used. */
SSL_TICKET_RETURN saef_ticket_cb(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname,
                                 size_t keyname_len, SSL_TICKET_STATUS status, void *arg)
{
    ctx_data *cd = arg;
    conn *c = saef_get_conn(ssl);
    binding b;

    (void)keyname, (void)keyname_len;
    if (status != SSL_TICKET_SUCCESS && status != SSL_TICKET_SUCCESS_RENEW)
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    if (!saef_read_binding(sess, &b)) {
        if (saef_require_psk(cd))
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
        if (!saef_require_psk(cd))
            return NULL;
        if (SSL_version(ssl) == TLS1_3_VERSION)
            return "TLS 1.3 handshake without a saef PSK (require_psk)";
        /* TLS 1.2 picks its suite after this: with no certificate, only a
           PSK suite can be picked, whatever the program's lists say. */
        SSL_certs_clear(ssl);
        return NULL;
    }
    if (!saef_read_binding(sess, &b)) {
        if (!saef_require_psk(cd))
            return NULL;
        forget_session(ssl, sess);
        return "resumed a session made without a saef PSK (require_psk)";
    }
    if (c->bound && memcmp(b.origin, c->origin, sizeof(b.origin)) == 0) {
        c->ok = 1; /* TLS 1.3: the external PSK saef_find_session_cb chose */
        return NULL;
    }
    if (!(c->ticket_ok && strcmp(b.identity, c->identity) == 0) && !binding_holds(ssl, cd, c, &b)) {
        forget_session(ssl, sess);
        return "resumed session's key is gone or changed";
    }
    c->ok = c->resumed = 1;
    SAEF_DEBUG(cd->s, "resumed session of identity=\"%s\": its key is unchanged", c->identity);
    return NULL;
}

/* Entity A: what did the server use? NULL if the handshake may go on. */
static const char *judge_client(SSL *ssl, const ctx_data *cd, conn *c)
{
    int want = c->offered || saef_require_psk(cd);
    binding b;

    if (SSL_session_reused(ssl)) {
        SSL_SESSION *sess = SSL_get_session(ssl);
        if (!saef_read_binding(sess, &b))
            return want ? "the server did not use the saef PSK" : NULL;
        if (c->bound && memcmp(b.origin, c->origin, sizeof(b.origin)) == 0) {
            c->ok = 1; /* TLS 1.3: the external PSK saef_use_session_cb offered */
            return NULL;
        }
        if (!binding_holds(ssl, cd, c, &b)) {
            forget_session(ssl, sess);
            return "resumed session's key is gone or changed";
        }
        c->ok = c->resumed = 1;
        SAEF_DEBUG(cd->s, "resumed session of identity=\"%s\": its key is unchanged", c->identity);
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
int saef_servername_cb(SSL *ssl, int *al, void *arg)
{
    ctx_data *cd = arg;
    conn *c = saef_get_conn(ssl);
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
    saef_log(cd->s, SAEF_LEVEL_INFO, "refused %s handshake: %s peer=%s", SSL_get_version(ssl), why,
             saef_peer_addr(ssl, addr, sizeof(addr)));
    if (c != NULL)
        c->logged = 1;
    *al = SSL_AD_HANDSHAKE_FAILURE;
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

void saef_note_info(const ctx_data *cd)
{
    if (cd->next_info != NULL)
        __atomic_store_n(&g_chained_info, 1, __ATOMIC_RELAXED);
}

void saef_info_cb(const SSL *ssl, int where, int ret)
{
    ctx_data *cd;
    conn *c;
    char addr[64];

    /* Called at every state change: most need nothing at all. */
    if (!(where & (SSL_CB_HANDSHAKE_DONE | SSL_CB_ALERT)) &&
        !__atomic_load_n(&g_chained_info, __ATOMIC_RELAXED))
        return;
    if ((cd = saef_ssl_cd(ssl)) == NULL)
        return;
    if ((where & (SSL_CB_HANDSHAKE_DONE | SSL_CB_ALERT)) && saef_log_on(cd->s, SAEF_LEVEL_INFO)) {
        c = saef_find_conn(ssl);
        if (c != NULL && c->ok && !c->logged && (where & SSL_CB_HANDSHAKE_DONE)) {
            char line[1024] = "saef: association ", *p = line + 18, *end = line + sizeof(line) - 2;
            c->logged = 1;
            p = saef_put(p, end, SSL_is_server((SSL *)ssl) ? "accepted" : "established");
            p = saef_put(saef_put(p, end, " identity=\""), end, c->identity);
            p = saef_put(saef_put(p, end, "\" entity=\""), end, c->peer);
            p = saef_put(p, end,
                         c->fw == SAEF_FW_MAF          ? "\" framework=maf"
                         : c->fw == SAEF_FW_MAF_CLIENT ? "\" framework=maf-client"
                                                       : "\" framework=psk");
            p = saef_put(saef_put(p, end, " protocol="), end, SSL_get_version(ssl));
            p = saef_put(saef_put(p, end, " cipher="), end,
                         SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)));
            p = saef_put(saef_put(p, end, " peer="), end, saef_peer_addr(ssl, addr, sizeof(addr)));
            p = saef_put(p, end, c->resumed ? " session=resumed" : " session=new");
            saef_log_emit(cd->s, SAEF_LEVEL_INFO, line, (size_t)(p - line - 6), sizeof(line));
        }
        if (c != NULL && c->fw != SAEF_FW_NONE && !c->logged && (where & SSL_CB_ALERT) &&
            (ret >> 8) == SSL3_AL_FATAL)
            saef_log(cd->s, SAEF_LEVEL_INFO,
                     "handshake failed identity=\"%s\" alert=%s (%s) peer=%s", c->identity,
                     SSL_alert_desc_string_long(ret), (where & SSL_CB_READ) ? "received" : "sent",
                     saef_peer_addr(ssl, addr, sizeof(addr)));
    }
    /* A program that set its own servername callback over saef's (not
       through saef_ssl_ctx_set_servername_callback) left nothing to judge
       resumptions and require_psk: say so, once. */
    if ((where & SSL_CB_HANDSHAKE_DONE) && !cd->warned && (c = saef_find_conn(ssl)) != NULL &&
        !c->judged) {
        cd->warned = 1;
        saef_log(cd->s, SAEF_LEVEL_ERROR,
                 "saef's servername callback was replaced: resumed sessions and require_psk are "
                 "not judged (use saef_ssl_ctx_set_servername_callback)");
    }
    if (cd->next_info != NULL)
        cd->next_info(ssl, where, ret);
}
