/* The per-connection API: what a program sets before, and reads after,
   the handshake. */
#include "rules.h"

#include <string.h>

static int set_str(SSL *ssl, const char *v, size_t field)
{
    conn *c = saef_get_conn(ssl);
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

    c = saef_find_conn(ssl);
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

const char *saef_ssl_own_entity(const SSL *ssl)
{
    const ctx_data *cd = saef_ssl_cd(ssl);
    const char *id = cd != NULL ? saef_conf_str(cd->s->conf, SAEF_CONF_ENTITY_ID) : NULL;

    return id != NULL && *id != '\0' ? id : NULL;
}
