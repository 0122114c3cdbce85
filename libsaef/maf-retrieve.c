/* Entity B's MAF Key Retrieval (TS-0003 8.8.2.8), from inside the handshake. */
#include "maf-client.h"
#include "saef-internal.h"

#include <ctype.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Identities the MAF refused, so a flood of them costs no round trips. */
#define NEG_SLOTS 1024
/* Source addresses tracked for their own budget (maf_source_rate). */
#define SRC_SLOTS 1024
/* Records of B's store the retrieval path looks at for expired copies, at
   most once a second per process. */
#define PURGE_VISIT 256

static struct {
    uint64_t hash;
    int64_t until;
    int by_rate; /* refused by a rate limit, not by the MAF */
} neg[NEG_SLOTS];
/* A MAF that did not answer is asked again only after a pause (seconds)
   that doubles while it keeps failing, so a flood cannot make handshake
   after handshake wait maf_timeout for it. */
#define DOWN_SLOTS 16
#define PAUSE_MAX 32

static struct resting {
    uint64_t hash; /* of the lower-case MAF-FQDN; 0 = slot free */
    int64_t until, pause;
} down[DOWN_SLOTS];
/* Retrievals of one source address in its current second that have not
   released a key: made-up identities spend a source's budget, keys the MAF
   releases give it back, so one flooding address cannot use up maf_rate. */
static struct source {
    uint64_t hash; /* 0 = slot free */
    int64_t second;
    long spent;
} sources[SRC_SLOTS];
static int64_t bucket_second;
static long bucket_used;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t fnv1a(const void *p, size_t n)
{
    const unsigned char *b = p;
    uint64_t h = 1469598103934665603ULL;

    while (n--)
        h = (h ^ *b++) * 1099511628211ULL;
    return h;
}

/* The MAF as saef_conf_maf_url matches it: case-insensitive. */
static uint64_t maf_hash(const char *fqdn, size_t n)
{
    char low[SAEF_KS_ID_MAX];

    n = n < sizeof(low) ? n : sizeof(low);
    for (size_t i = 0; i < n; i++)
        low[i] = (char)tolower((unsigned char)fqdn[i]);
    return fnv1a(low, n);
}

/* 1 if a retrieval may go out now (not refused recently, the MAF not
   resting, under the source's and the process's rate). A refusal by a
   rate is remembered like the MAF's own. */
static int admit(const saef_conf *conf, uint64_t h, uint64_t maf, uint64_t src, int64_t now,
                 const char **why)
{
    const struct resting *d = &down[maf % DOWN_SLOTS];
    struct source *s = &sources[src % SRC_SLOTS];
    int ok = 1, limited = 0;

    pthread_mutex_lock(&lock);
    if (neg[h % NEG_SLOTS].hash == h && neg[h % NEG_SLOTS].until > now) {
        *why = neg[h % NEG_SLOTS].by_rate ? "refused by a MAF retrieval rate limit recently"
                                          : "refused by the MAF recently";
        ok = 0;
    } else if (d->hash == maf && d->until > now) {
        *why = "the MAF did not answer recently (asked again after a pause)";
        ok = 0;
    } else if (src != 0 && s->hash == src && s->second == now &&
               s->spent >= saef_conf_int(conf, SAEF_CONF_MAF_SOURCE_RATE)) {
        *why = "MAF retrieval rate limit of this source address reached";
        ok = 0, limited = 1;
    } else if (bucket_second == now && bucket_used >= saef_conf_int(conf, SAEF_CONF_MAF_RATE)) {
        *why = "MAF retrieval rate limit reached";
        ok = 0, limited = 1;
    } else {
        if (bucket_second != now) {
            bucket_second = now;
            bucket_used = 0;
        }
        bucket_used++;
        if (src != 0) {
            if (s->hash != src || s->second != now)
                *s = (struct source){src, now, 0};
            s->spent++;
        }
    }
    if (limited) {
        neg[h % NEG_SLOTS].hash = h;
        neg[h % NEG_SLOTS].until = now + saef_conf_int(conf, SAEF_CONF_MAF_NEGATIVE_TTL);
        neg[h % NEG_SLOTS].by_rate = 1;
    }
    pthread_mutex_unlock(&lock);
    return ok;
}

/* The MAF released a key: the retrieval was legitimate, the source gets
   its budget back. */
static void refund(uint64_t src, int64_t second)
{
    struct source *s = &sources[src % SRC_SLOTS];

    pthread_mutex_lock(&lock);
    if (src != 0 && s->hash == src && s->second == second && s->spent > 0)
        s->spent--;
    pthread_mutex_unlock(&lock);
}

/* Expired copies leave B's store a few at a time, outside the MAF call,
   so the store does not grow by one record per device and key lifetime. */
static void purge_some(saef_ks *ks, int64_t now)
{
    static pthread_mutex_t purging = PTHREAD_MUTEX_INITIALIZER;
    static char from[SAEF_KS_ID_MAX + 1];
    static int64_t last;

    if (pthread_mutex_trylock(&purging) != 0)
        return;
    if (last != now) {
        last = now;
        /* A read-only store fails here: its copies are not ours to remove. */
        saef_ks_purge(ks, SAEF_KS_KC, now, PURGE_VISIT, from, NULL);
    }
    pthread_mutex_unlock(&purging);
}

static void remember_refusal(uint64_t h, int64_t until)
{
    pthread_mutex_lock(&lock);
    neg[h % NEG_SLOTS].hash = h;
    neg[h % NEG_SLOTS].until = until;
    neg[h % NEG_SLOTS].by_rate = 0;
    pthread_mutex_unlock(&lock);
}

/* After a retrieval: a MAF that answered is up; one that did not rests. */
static void note_answer(uint64_t maf, int answered, int64_t now)
{
    struct resting *d = &down[maf % DOWN_SLOTS];

    pthread_mutex_lock(&lock);
    if (answered) {
        if (d->hash == maf)
            d->hash = 0;
    } else {
        d->pause = d->hash != maf ? 1 : d->pause < PAUSE_MAX ? 2 * d->pause : PAUSE_MAX;
        d->hash = maf;
        d->until = now + d->pause;
    }
    pthread_mutex_unlock(&lock);
}

int saef_maf_parse_reply(const char *body, int64_t now, saef_ks_record *rec, const char **why)
{
    json_t *j = json_loads(body, 0, NULL);
    const char *key, *exp, *src;
    json_int_t suid;
    int n, ok = 0;

    /* The whole record is cached: no field may keep the caller's stack bytes. */
    memset(rec, 0, sizeof(*rec));
    *why = "malformed MAF answer";
    if (j == NULL || json_unpack(j, "{s:s, s:s, s:I, s:s}", "keyValue", &key, "expirationTime",
                                 &exp, "SUID", &suid, "sourceMAFClientID", &src) != 0)
        goto out;
    n = saef_hex_decode(key, strlen(key), rec->key, sizeof(rec->key));
    if (n <= 0 || !saef_time_parse(exp, now, &rec->not_after) || strlen(src) == 0 ||
        strlen(src) > SAEF_KS_ENTITY_MAX || suid < 0 || suid > 99)
        goto out;
    if (rec->not_after <= now) {
        *why = "the MAF answered with an expired key";
        goto out;
    }
    rec->key_len = (size_t)n;
    rec->suid = (int32_t)suid;
    strcpy(rec->peer, src);
    ok = 1;
out:
    json_decref(j);
    return ok;
}

/* Fetches and caches Kc for the canonical identity id; when the MAF says the
   key is gone or not ours, the cached copy goes too. */
static int retrieve(const saef_conf *conf, saef_ks *ks, const char *id, size_t id_len,
                    const char *fqdn, size_t fqdn_len, uint64_t src, saef_ks_record *rec,
                    const char **why)
{
    char url[SAEF_CONF_VALUE_MAX + 32], body[64];
    const char *kmid = saef_conf_str(conf, SAEF_CONF_MAF_KMID);
    int64_t now = (int64_t)time(NULL);
    uint64_t h = fnv1a(id, id_len), maf = maf_hash(fqdn, fqdn_len);
    saef_ks_record km;
    saef_maf_reply reply;
    int ok;

    if (!admit(conf, h, maf, src, now, why))
        return 0;
    if (!saef_conf_maf_url(conf, fqdn, fqdn_len, url, sizeof(url) - 32)) {
        *why = "no URL for this MAF";
        return 0;
    }
    if (*kmid == '\0' || saef_ks_get(ks, SAEF_KS_KM, kmid, strlen(kmid), &km) != SAEF_KS_OK) {
        *why = "maf_kmid is not set, or its km key is not in the store";
        return 0;
    }
    strcat(url, url[strlen(url) - 1] == '/' ? "keyRetrieve" : "/keyRetrieve");
    snprintf(body, sizeof(body), "{\"relativeKeyID\":\"%.32s\"}", id);
    ok = saef_maf_call("POST", url, body, kmid, km.key, km.key_len,
                       saef_conf_int(conf, SAEF_CONF_MAF_TIMEOUT), 0, &reply);
    saef_ks_record_wipe(&km);
    note_answer(maf, ok, (int64_t)time(NULL));
    if (!ok) {
        *why = "MAF unreachable or not authenticated";
    } else if (reply.status != 200) {
        *why = reply.status == 403   ? "the MAF refused: this server is not the key's target"
               : reply.status == 404 ? "the MAF does not know the key"
               : reply.status == 410 ? "the key expired at the MAF"
                                     : "the MAF answered with an error";
        remember_refusal(h, now + saef_conf_int(conf, SAEF_CONF_MAF_NEGATIVE_TTL));
        if (reply.status == 403 || reply.status == 404 || reply.status == 410)
            saef_ks_del(ks, SAEF_KS_KC, id, id_len);
        ok = 0;
    } else {
        ok = saef_maf_parse_reply(reply.body, now, rec, why);
    }
    saef_maf_reply_free(&reply);
    if (ok) {
        refund(src, now);
        /* Cached where every worker sees it; on a read-only store each retrieves. */
        saef_ks_put(ks, SAEF_KS_KC, id, id_len, rec, SAEF_KS_REPLACE);
    }
    purge_some(ks, now);
    return ok;
}

/* One key, one record: hex is case-insensitive (XSD hexBinary) and so are
   DNS names, so the upper-case RelativeKeyID and the lower-case MAF-FQDN
   name the cached copy, and case variants share it and its refusals. */
static void canonical(const char *id, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++)
        out[i] = (char)(i < SAEF_KCID_HEX_LEN ? toupper((unsigned char)id[i])
                                              : tolower((unsigned char)id[i]));
    out[len] = '\0';
}

int saef_maf_key(const saef_conf *conf, saef_ks *ks, const char *id, size_t id_len, const void *src,
                 size_t src_len, saef_ks_record *rec, const char **why)
{
    char canon[SAEF_KS_ID_MAX + 1];
    int64_t age;

    canonical(id, id_len, canon);
    switch (saef_ks_get(ks, SAEF_KS_KC, canon, id_len, rec)) {
    case SAEF_KS_OK:
        /* saef-mafd's registrations carry their adminFQDN, a retrieved copy
           never does: in a MAF's store peer and self mean the opposite. */
        if (rec->meta[0] != '\0') {
            saef_ks_record_wipe(rec);
            *why = "the store is a MAF's registry (saef-mafd): give this server its own store";
            return 0;
        }
        /* The source may have deregistered, re-targeted or shortened the key
           since: past maf_revalidate the MAF is asked again. */
        age = (int64_t)time(NULL) - rec->created;
        if (age >= 0 && age < saef_conf_int(conf, SAEF_CONF_MAF_REVALIDATE))
            return 1;
        saef_ks_record_wipe(rec);
        break;
    case SAEF_KS_ENOTFOUND: break;
    default: *why = "key store error"; return 0;
    }
    return retrieve(conf, ks, canon, id_len, canon + SAEF_KCID_HEX_LEN + 1,
                    id_len - SAEF_KCID_HEX_LEN - 1, src_len > 0 ? fnv1a(src, src_len) | 1 : 0, rec,
                    why);
}
