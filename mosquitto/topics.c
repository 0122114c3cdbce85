/*
 * TS-0010 topics: /oneM2M/{req,resp,reg_req,reg_resp}/<originator>/<receiver>/<format>,
 * the originator and receiver of the request in both the request and its
 * response, IDs with '/' written as ':'. A requester publishes req with
 * itself as originator and subscribes to resp with itself as originator; a
 * receiver subscribes to req with itself as receiver and publishes resp with
 * itself as receiver. reg_req / reg_resp (an AE's first registration) follow
 * the same roles. See docs/deploy-mqtt.md for the readings taken.
 */
#include "topics.h"

#include <string.h>

int saef_mq_entity_init(saef_mq_entity *e, const char *id)
{
    const char *rel = id;
    size_t n = strlen(id), slashes = 0;

    memset(e, 0, sizeof(*e));
    if (n == 0 || n >= sizeof(e->enc[0]))
        return 0;
    while (*rel == '/')
        rel++;
    for (const char *p = id; *p; p++)
        slashes += *p == '/';
    /* SP-relative "/X" or absolute "//SP/X" CSE-ID; an AE-ID is "C...",
       "S...", "/X/C..." or "//SP/X/C..." (TS-0001 7.2). */
    e->cse = (id[0] == '/' && id[1] != '/' && slashes == 1) ||
             (id[0] == '/' && id[1] == '/' && slashes == 3);
    for (size_t i = 0; i < n; i++) {
        if (id[i] == '+' || id[i] == '#')
            return 0; /* could never be a topic level */
        e->enc[0][i] = id[i] == '/' ? ':' : id[i];
    }
    for (size_t i = 0; rel[i]; i++)
        e->enc[1][i] = rel[i] == '/' ? ':' : rel[i];
    return 1;
}

/* Is the topic level [l, l+len) the entity, or (a CSE) an AE it serves? */
static int is_own(const saef_mq_entity *e, const char *l, size_t len)
{
    for (int k = 0; k < 2; k++) {
        size_t n = strlen(e->enc[k]);
        if (n == 0 || len < n || memcmp(l, e->enc[k], n) != 0)
            continue;
        if (len == n)
            return 1;
        /* "/mn-cse/Cxyz": an AE registered with this CSE (TS-0003 7.2.1
           lets a CSE originate for those it forwards). */
        if (e->cse && l[n] == ':' && len > n + 1)
            return 1;
    }
    return 0;
}

SAEF_MQ_VERDICT saef_mq_topic(const saef_mq_entity *e, SAEF_MQ_ACCESS access, const char *topic)
{
    static const char *const kinds[] = {"req/", "resp/", "reg_req/", "reg_resp/"};
    const char *p, *lv[8];
    size_t ln[8], nl = 0;
    int kind = -1, own;

    if (strncmp(topic, "/oneM2M/", 8) != 0)
        return SAEF_MQ_NOT_ONEM2M;
    p = topic + 8;
    for (int k = 0; k < 4; k++)
        if (strncmp(p, kinds[k], strlen(kinds[k])) == 0) {
            kind = k;
            p += strlen(kinds[k]);
            break;
        }
    if (kind < 0)
        return SAEF_MQ_FOREIGN;
    for (;;) {
        const char *end = strchr(p, '/');
        if (nl == 8)
            return SAEF_MQ_FOREIGN;
        lv[nl] = p;
        ln[nl] = end != NULL ? (size_t)(end - p) : strlen(p);
        nl++;
        if (end == NULL)
            break;
        p = end + 1;
    }
    /* Which level must be the entity: the originator (0) when it sends a
       request or receives a response, the receiver (1) otherwise. */
    own = (kind == 0 || kind == 2) == (access == SAEF_MQ_PUBLISH) ? 0 : 1;
    if (nl <= (size_t)own || !is_own(e, lv[own], ln[own]))
        return SAEF_MQ_FOREIGN;
    if (access != SAEF_MQ_SUBSCRIBE)
        return nl == 3 ? SAEF_MQ_OWN : SAEF_MQ_FOREIGN;
    /* A filter: 3 levels, or '#' after the entity's level. */
    if (nl == 3 || (nl == (size_t)own + 2 && ln[nl - 1] == 1 && lv[nl - 1][0] == '#'))
        return SAEF_MQ_OWN;
    return SAEF_MQ_FOREIGN;
}
