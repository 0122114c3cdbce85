/* Entity B for servers whose TLS layer asks for a key without showing
   the SSL (a broker plugin). */
#include "rules.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

/* saef_addr_source for an address as text (a broker plugin's view of its peer). */
size_t saef_addr_source(const char *addr, unsigned char src[16])
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
    switch (saef_server_key(NULL, &cd, (const unsigned char *)identity, len, &rec, c)) {
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
        *key_len = saef_refusal_key(s, key, *key_len);
    return ok;
}
