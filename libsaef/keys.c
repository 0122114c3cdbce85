/* Entity B's decision on an offered identity (TS-0003 8.2.2.1, 8.2.2.3):
   which key it gets, or why it is refused. */
#include "rules.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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
int saef_bound_here(const saef_ctx *s, const SSL *ssl, const conn *c, const char *self)
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

/* ssl is NULL for saef_psk_lookup: c->sni and c->addr stand for it. */
key_result saef_server_key(SSL *ssl, const ctx_data *cd, const unsigned char *id, size_t id_len,
                           saef_ks_record *rec, conn *c)
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
    if ((ks = saef_store(s)) == NULL) {
        why = "key store unavailable";
        goto refuse;
    }
    if (type == SAEF_KS_KC) {
        unsigned char src[16];
        size_t src_len = ssl != NULL ? saef_peer_source(ssl, src) : saef_addr_source(c->addr, src);
        if (!saef_maf_key(s->conf, ks, (const char *)id, id_len, src, src_len, rec, &why))
            goto refuse;
    }
    err = type == SAEF_KS_KC ? SAEF_KS_OK : saef_ks_get(ks, type, id, id_len, rec);
    if (err == SAEF_KS_ENOTFOUND) {
        SAEF_DEBUG(s, "identity=\"%s\": no %s record",
                   saef_escape(id, id_len, shown, sizeof(shown)), saef_ks_type_name(type));
        return KEY_UNKNOWN; /* the caller may chain it; it logs the refusal */
    }
    if (err != SAEF_KS_OK) {
        saef_log(s, SAEF_LEVEL_ERROR, "%s", saef_ks_last_error(ks));
        why = "key store error";
        goto refuse;
    }
    if (rec->not_after != 0 && rec->not_after <= (int64_t)time(NULL)) {
        why = "key expired";
        goto refuse_rec;
    }
    if (!saef_bound_here(s, ssl, c, rec->self)) {
        why = "key bound to another server";
        goto refuse_rec;
    }
    if (type == SAEF_KS_KC) {
        long suid = saef_ctx_int(s, SAEF_CONF_KC_SUID);
        if (suid != 0 && rec->suid != suid) {
            why = "connection key has the wrong SUID";
            goto refuse_rec;
        }
        if (saef_ctx_int(s, SAEF_CONF_KC_HALF) && rec->key_len > 16)
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
    SAEF_DEBUG(s, "identity=\"%s\": %s record for entity \"%s\", self \"%s\", expires %lld",
               saef_escape(id, id_len, shown, sizeof(shown)), saef_ks_type_name(type), c->peer,
               rec->self, (long long)rec->not_after);
    return KEY_OK;
refuse_rec:
    saef_ks_record_wipe(rec);
refuse:
    saef_escape(id, id_len, shown, sizeof(shown));
    saef_log(s, SAEF_LEVEL_INFO, "refused identity=\"%s\" reason=\"%s\" peer=%s", shown, why,
             ssl != NULL  ? saef_peer_addr(ssl, addr, sizeof(addr))
             : c->addr[0] ? c->addr
                          : "-");
    return KEY_REFUSED;
}

void saef_log_unknown(SSL *ssl, const saef_ctx *s, const void *id, size_t id_len)
{
    char shown[4 * SAEF_KS_ID_MAX + 8], addr[64];

    saef_escape(id, id_len, shown, sizeof(shown));
    saef_log(s, SAEF_LEVEL_INFO, "refused identity=\"%s\" reason=\"unknown identity\" peer=%s",
             shown, saef_peer_addr(ssl, addr, sizeof(addr)));
}

/* What a refused client gets: by default the same as a wrong key. */
size_t saef_refusal_key(const saef_ctx *s, unsigned char *key, size_t max)
{
    if (saef_ctx_int(s, SAEF_CONF_REFUSE) == SAEF_REFUSE_UNKNOWN_PSK_IDENTITY)
        return 0;
    if (max > 32)
        max = 32;
    return RAND_bytes(key, (int)max) == 1 ? max : 0;
}
