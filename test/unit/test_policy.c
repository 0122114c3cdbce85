/* The association rules (libsaef/keys.c, client.c, install.c, api.c):
   Entity B's decision on each kind of offered identity, the binding of a
   record to this server, Entity A's choice of key, and the cipher lists
   saef puts back after a program changed them. Internal entry points
   through libsaef/rules.h; no handshake, no network. */
#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rules.h"

#define MAF "maf.example.com"
#define KCID "00112233445566778899AABBCCDDEEFF@" MAF

static char dir[] = "/tmp/saef-test-policy-XXXXXX";
static saef_ctx *server, *client, *lone; /* each on a store of its own */

/* A context on store (created if new) with kv's settings. A MAF is
   configured so that the store is opened writable, as the tests write it. */
static saef_ctx *make(const char *store, const char *const *kv)
{
    saef_conf *conf = saef_conf_new();
    saef_ctx *s = NULL;
    saef_ks *ks;
    char err[256], path[512];
    int ok;

    snprintf(path, sizeof(path), "%s/%s", dir, store);
    if (conf == NULL || saef_ks_open(path, SAEF_KS_CREATE, &ks) != SAEF_KS_OK) {
        saef_conf_free(conf);
        return NULL;
    }
    saef_ks_close(ks);
    ok = saef_conf_set(conf, "maf", MAF " https://127.0.0.1:9", err, sizeof(err)) &&
         saef_conf_set(conf, "store", path, err, sizeof(err)) &&
         saef_conf_set(conf, "log", getenv("SAEF_TEST_LOG") ? "stderr" : "none", err, sizeof(err));
    for (; ok && kv != NULL && kv[0] != NULL; kv += 2)
        ok = saef_conf_set(conf, kv[0], kv[1], err, sizeof(err));
    if (ok)
        s = saef_new(conf);
    else
        fprintf(stderr, "%s\n", err);
    saef_conf_free(conf);
    return s;
}

/* A record: key bytes 0x11.., peer, self, not_after (0 = never), suid, created. */
static void put(saef_ctx *s, SAEF_KS_TYPE type, const char *id, const char *peer, const char *self,
                int64_t not_after, int suid, int64_t created)
{
    saef_ks_record rec = {0};

    memset(rec.key, 0x11, 32);
    rec.key_len = 32;
    snprintf(rec.peer, sizeof(rec.peer), "%s", peer);
    snprintf(rec.self, sizeof(rec.self), "%s", self);
    rec.not_after = not_after;
    rec.suid = suid;
    rec.created = created;
    if (saef_ks_put(saef_store(s), type, id, strlen(id), &rec, SAEF_KS_REPLACE) != SAEF_KS_OK) {
        fprintf(stderr, "cannot store %s: %s\n", id, saef_ks_last_error(saef_store(s)));
        abort();
    }
}

/* Entity B's decision for id (no SSL: sni stands for the ClientHello's). */
static key_result decide(saef_ctx *s, int maf, const char *id, const char *sni, conn *c,
                         saef_ks_record *rec)
{
    ctx_data cd = {.s = s, .maf = maf};
    key_result r;

    memset(c, 0, sizeof(*c));
    if (sni != NULL)
        snprintf(c->sni, sizeof(c->sni), "%s", sni);
    r = saef_server_key(NULL, &cd, (const unsigned char *)id, strlen(id), rec, c);
    if (r == KEY_OK)
        saef_ks_record_wipe(rec);
    return r;
}

static const char *const server_conf[] = {"entity_id", "/id-in",
                                          "sni",       "cse.example.com, alias.example.com",
                                          "maf",       MAF " https://127.0.0.1:9",
                                          NULL};

static int setup(void)
{
    static const char *const client_conf[] = {"targets", "mapped.example.com=/id-mapped", NULL};
    int64_t now = (int64_t)time(NULL);

    if (saef_unit_mkdir(dir) != 0 || (server = make("server", server_conf)) == NULL ||
        (client = make("client", client_conf)) == NULL || (lone = make("lone", NULL)) == NULL ||
        saef_store(server) == NULL || saef_store(client) == NULL || saef_store(lone) == NULL)
        return 1;
    /* Entity B */
    put(server, SAEF_KS_KPSA, "dev1", "/id-in/Cdev1", "", 0, 0, 0);
    put(server, SAEF_KS_KPSA, "anon", "", "", 0, 0, 0);
    put(server, SAEF_KS_KPSA, "old", "/id-in/Cold", "", now - 10, 0, 0);
    put(server, SAEF_KS_KPSA, "own", "/id-in/Cown", "/id-in", 0, 0, 0);
    put(server, SAEF_KS_KPSA, "other", "/id-in/Cother", "/id-mn", 0, 0, 0);
    put(server, SAEF_KS_KPSA, "named", "/id-in/Cnamed", "alias.example.com", 0, 0, 0);
    put(server, SAEF_KS_KPSA, "unlisted", "/id-in/Cx", "unlisted.example.com", 0, 0, 0);
    put(server, SAEF_KS_KM, "kmid1", "", "", 0, 0, 0);
    /* Entity A: for /id-in a kpsa and a newer kpsa, and a live kc; for
       /id-mn only an expired kc beside a kpsa. */
    put(client, SAEF_KS_KPSA, "to-in-older", "/id-in", "", 0, 0, now - 100);
    put(client, SAEF_KS_KPSA, "to-in-newer", "/id-in", "", 0, 0, now - 50);
    put(client, SAEF_KS_KC, KCID, "/id-in", "", now + 3600, 32, now - 200);
    put(client, SAEF_KS_KC, "FFEEDDCCBBAA99887766554433221100@" MAF, "/id-mn", "", now - 1, 32,
        now);
    put(client, SAEF_KS_KPSA, "to-mn", "/id-mn", "", 0, 0, now - 300);
    put(client, SAEF_KS_KPSA, "to-mapped", "/id-mapped", "", 0, 0, now);
    put(client, SAEF_KS_KPSA, "to-host", "host.example.com", "", 0, 0, now);
    put(client, SAEF_KS_KPSA, "expired", "/id-gone", "", now - 1, 0, now);
    put(lone, SAEF_KS_KPSA, "only", "/id-any", "", 0, 0, now);
    put(lone, SAEF_KS_KPSA, "dead", "/id-any", "", now - 1, 0, now);
    return 0;
}

static int teardown(void)
{
    saef_free(server);
    saef_free(client);
    saef_free(lone);
    return saef_unit_rmdir(dir);
}

/* ---- Entity B: the key decision ------------------------------------------- */

static void test_known_kpsa_binds_its_peer(void)
{
    conn c;
    saef_ks_record rec;

    CU_ASSERT_EQUAL(decide(server, 0, "dev1", NULL, &c, &rec), KEY_OK);
    CU_ASSERT_STRING_EQUAL(c.identity, "dev1");
    CU_ASSERT_STRING_EQUAL(c.peer, "/id-in/Cdev1");
    CU_ASSERT_EQUAL(c.fw, SAEF_FW_PSK);
}

static void test_kpsa_without_peer_binds_credential_id_12(void)
{
    conn c;
    saef_ks_record rec;

    CU_ASSERT_EQUAL(decide(server, 0, "anon", NULL, &c, &rec), KEY_OK);
    CU_ASSERT_STRING_EQUAL(c.peer, "12-anon");
}

static void test_unknown_identity_is_unknown(void)
{
    conn c;
    saef_ks_record rec;

    CU_ASSERT_EQUAL(decide(server, 0, "nobody", NULL, &c, &rec), KEY_UNKNOWN);
    /* A MAF that is not configured: only a kpsa of that name would do. */
    CU_ASSERT_EQUAL(
        decide(server, 0, "00112233445566778899AABBCCDDEEFF@other.example.com", NULL, &c, &rec),
        KEY_UNKNOWN);
    CU_ASSERT_EQUAL(saef_id_type(server->conf, KCID, strlen(KCID)), SAEF_KS_KC);
    CU_ASSERT_EQUAL(saef_id_type(server->conf, "x@other.example.com", 19), SAEF_KS_KPSA);
}

static void test_malformed_identity_is_refused(void)
{
    ctx_data cd = {.s = server};
    conn c = {0};
    saef_ks_record rec;
    char big[SAEF_KS_ID_MAX + 2];

    CU_ASSERT_EQUAL(saef_server_key(NULL, &cd, (const unsigned char *)"dev1\0x", 6, &rec, &c),
                    KEY_REFUSED);
    CU_ASSERT_EQUAL(saef_server_key(NULL, &cd, (const unsigned char *)"", 0, &rec, &c),
                    KEY_REFUSED);
    memset(big, 'a', sizeof(big));
    CU_ASSERT_EQUAL(saef_server_key(NULL, &cd, (const unsigned char *)big, sizeof(big), &rec, &c),
                    KEY_REFUSED);
}

static void test_expired_kpsa_is_refused(void)
{
    conn c;
    saef_ks_record rec;

    CU_ASSERT_EQUAL(decide(server, 0, "old", NULL, &c, &rec), KEY_REFUSED);
    CU_ASSERT_STRING_EQUAL(c.identity, ""); /* nothing bound */
}

static void test_record_bound_elsewhere_is_refused(void)
{
    conn c;
    saef_ks_record rec;

    CU_ASSERT_EQUAL(decide(server, 0, "own", NULL, &c, &rec), KEY_OK);
    CU_ASSERT_EQUAL(decide(server, 0, "other", NULL, &c, &rec), KEY_REFUSED);
    CU_ASSERT_EQUAL(decide(server, 0, "other", "id-mn", &c, &rec), KEY_REFUSED);
    /* bound to a host name: only when the client named it in SNI */
    CU_ASSERT_EQUAL(decide(server, 0, "named", "ALIAS.example.com", &c, &rec), KEY_OK);
    CU_ASSERT_EQUAL(decide(server, 0, "named", NULL, &c, &rec), KEY_REFUSED);
    CU_ASSERT_EQUAL(decide(server, 0, "named", "cse.example.com", &c, &rec), KEY_REFUSED);
    /* ... and only a name this server serves (sni list) */
    CU_ASSERT_EQUAL(decide(server, 0, "unlisted", "unlisted.example.com", &c, &rec), KEY_REFUSED);
}

/* kc records as a retrieval leaves them: fresh (within maf_revalidate), no meta. */
static void test_kc_rules(void)
{
    static const char *const half[] = {
        "maf", MAF " https://127.0.0.1:9", "kc_half", "yes", "kc_suid", "0", NULL};
    int64_t now = (int64_t)time(NULL);
    saef_ks_record rec;
    saef_ctx *h;
    ctx_data cd;
    conn c;

    put(server, SAEF_KS_KC, KCID, "/id-in/Ca", "", now + 3600, 32, now);
    CU_ASSERT_EQUAL(decide(server, 0, KCID, NULL, &c, &rec), KEY_OK);
    CU_ASSERT_EQUAL(c.fw, SAEF_FW_MAF);
    CU_ASSERT_STRING_EQUAL(c.peer, "/id-in/Ca");
    /* the MAF-FQDN in any case names the same cached copy */
    CU_ASSERT_EQUAL(
        decide(server, 0, "00112233445566778899aabbccddeeff@MAF.example.com", NULL, &c, &rec),
        KEY_OK);
    /* wrong SUID (kc_suid = 32) */
    put(server, SAEF_KS_KC, KCID, "/id-in/Ca", "", now + 3600, 12, now);
    CU_ASSERT_EQUAL(decide(server, 0, KCID, NULL, &c, &rec), KEY_REFUSED);
    /* kc_suid = 0 takes any SUID; kc_half cuts the key to 16 bytes */
    saef_free(server); /* one environment per store and process: reopen */
    server = NULL;
    CU_ASSERT_PTR_NOT_NULL_FATAL(h = make("server", half));
    memset(&cd, 0, sizeof(cd));
    cd.s = h;
    memset(&c, 0, sizeof(c));
    CU_ASSERT_EQUAL(saef_server_key(NULL, &cd, (const unsigned char *)KCID, strlen(KCID), &rec, &c),
                    KEY_OK);
    CU_ASSERT_EQUAL(rec.key_len, 16);
    saef_ks_record_wipe(&rec);
    /* expired */
    put(h, SAEF_KS_KC, KCID, "/id-in/Ca", "", now - 1, 32, now);
    CU_ASSERT_EQUAL(decide(h, 0, KCID, NULL, &c, &rec), KEY_REFUSED);
    /* a MAF's registry (adminFQDN in meta) is not a server's cache */
    put(h, SAEF_KS_KC, KCID, "/id-in/Ca", "", now + 3600, 32, now);
    {
        saef_ks_record r;
        CU_ASSERT_EQUAL(saef_ks_get(saef_store(h), SAEF_KS_KC, KCID, strlen(KCID), &r), SAEF_KS_OK);
        snprintf(r.meta, sizeof(r.meta), "{\"adminFQDN\":\"x.example.com\"}");
        CU_ASSERT_EQUAL(
            saef_ks_put(saef_store(h), SAEF_KS_KC, KCID, strlen(KCID), &r, SAEF_KS_REPLACE),
            SAEF_KS_OK);
        saef_ks_record_wipe(&r);
    }
    CU_ASSERT_EQUAL(decide(h, 0, KCID, NULL, &c, &rec), KEY_REFUSED);
    /* not cached and the MAF cannot be asked (no maf_kmid): refused, never unknown */
    saef_ks_del(saef_store(h), SAEF_KS_KC, KCID, strlen(KCID));
    CU_ASSERT_EQUAL(decide(h, 0, KCID, NULL, &c, &rec), KEY_REFUSED);
    saef_free(h);
    CU_ASSERT_PTR_NOT_NULL_FATAL(server = make("server", server_conf));
}

static void test_maf_server_takes_km_records(void)
{
    conn c;
    saef_ks_record rec;

    CU_ASSERT_EQUAL(decide(server, 1, "kmid1", NULL, &c, &rec), KEY_OK);
    CU_ASSERT_EQUAL(c.fw, SAEF_FW_MAF_CLIENT);
    CU_ASSERT_STRING_EQUAL(c.peer, "11-kmid1");
    /* a MAF client's connection never takes a kpsa */
    CU_ASSERT_EQUAL(decide(server, 1, "dev1", NULL, &c, &rec), KEY_UNKNOWN);
}

static void test_refused_client_gets_a_random_key(void)
{
    static const char *const unknown[] = {"refuse", "unknown_psk_identity", NULL};
    unsigned char a[64], b[64];
    char entity[SAEF_KS_ENTITY_MAX + 16];
    size_t n = sizeof(a);
    SAEF_FRAMEWORK fw = SAEF_FW_NONE;
    saef_ctx *u;

    CU_ASSERT_EQUAL(saef_refusal_key(server, a, sizeof(a)), 32);
    CU_ASSERT_EQUAL(saef_refusal_key(server, b, sizeof(b)), 32);
    CU_ASSERT(memcmp(a, b, 32) != 0);
    /* saef_psk_lookup: refused (expired) and unknown both answer a wrong key */
    CU_ASSERT_EQUAL(
        saef_psk_lookup(server, "old", NULL, "192.0.2.1", a, &n, entity, sizeof(entity), &fw), 0);
    CU_ASSERT_EQUAL(n, 32);
    n = sizeof(a);
    CU_ASSERT_EQUAL(
        saef_psk_lookup(server, "nobody", NULL, NULL, a, &n, entity, sizeof(entity), &fw), 0);
    CU_ASSERT_EQUAL(n, 32);
    n = sizeof(a);
    CU_ASSERT_EQUAL(
        saef_psk_lookup(server, "dev1", NULL, "2001:db8::1", a, &n, entity, sizeof(entity), &fw),
        1);
    CU_ASSERT_EQUAL(n, 32);
    CU_ASSERT_STRING_EQUAL(entity, "/id-in/Cdev1");
    CU_ASSERT_EQUAL(fw, SAEF_FW_PSK);
    /* refuse = unknown_psk_identity: no key at all */
    CU_ASSERT_PTR_NOT_NULL_FATAL(u = make("refuse", unknown));
    CU_ASSERT_EQUAL(saef_refusal_key(u, a, sizeof(a)), 0);
    saef_free(u);
}

/* ---- bound_here ---------------------------------------------------------- */

static void test_bound_here(void)
{
    static const char *const nolist[] = {"entity_id", "/id-in", NULL};
    conn c = {0};
    saef_ctx *open_sni;

    CU_ASSERT_TRUE(saef_bound_here(server, NULL, &c, ""));       /* not bound */
    CU_ASSERT_TRUE(saef_bound_here(server, NULL, &c, "/id-in")); /* ours */
    CU_ASSERT_FALSE(saef_bound_here(server, NULL, &c, "/id-mn"));
    CU_ASSERT_FALSE(saef_bound_here(server, NULL, &c, "cse.example.com")); /* no SNI */
    strcpy(c.sni, "CSE.example.com");
    CU_ASSERT_TRUE(saef_bound_here(server, NULL, &c, "cse.example.com"));
    CU_ASSERT_FALSE(saef_bound_here(server, NULL, &c, "alias.example.com")); /* not the SNI */
    strcpy(c.sni, "alias.example.com"); /* the list's second name */
    CU_ASSERT_TRUE(saef_bound_here(server, NULL, &c, "alias.example.com"));
    strcpy(c.sni, "alias.example"); /* a prefix of a listed name is not it */
    CU_ASSERT_FALSE(saef_bound_here(server, NULL, &c, "alias.example"));
    /* no sni list: the SNI name the record is bound to is enough */
    CU_ASSERT_PTR_NOT_NULL_FATAL(open_sni = make("nolist", nolist));
    strcpy(c.sni, "any.example.com");
    CU_ASSERT_TRUE(saef_bound_here(open_sni, NULL, &c, "any.example.com"));
    CU_ASSERT_FALSE(saef_bound_here(open_sni, NULL, &c, "else.example.com"));
    saef_free(open_sni);
}

/* ---- Entity A: the key choice --------------------------------------------- */

static SSL_CTX *cctx;

/* The identity Entity A offers on a new SSL; "" if none. */
static const char *offer(saef_ctx *s, const char *identity, const char *target, const char *sni,
                         char *out, size_t len)
{
    SSL *ssl = SSL_new(cctx);
    conn *c;
    saef_ks_record rec;

    out[0] = '\0';
    CU_ASSERT_PTR_NOT_NULL_FATAL(ssl);
    if (identity != NULL)
        CU_ASSERT_TRUE(saef_ssl_set_identity(ssl, identity));
    if (target != NULL)
        CU_ASSERT_TRUE(saef_ssl_set_target(ssl, target));
    if (sni != NULL)
        SSL_set_tlsext_host_name(ssl, sni);
    CU_ASSERT_PTR_NOT_NULL_FATAL(c = saef_get_conn(ssl));
    if (saef_client_key(ssl, s, c, &rec)) {
        snprintf(out, len, "%s", c->identity);
        saef_ks_record_wipe(&rec);
    }
    SSL_free(ssl);
    return out;
}

static void test_client_key_choice(void)
{
    char id[SAEF_KS_ID_MAX + 1];

    CU_ASSERT_PTR_NOT_NULL_FATAL(cctx = SSL_CTX_new(TLS_client_method()));
    /* an explicit identity, live; expired or unknown: none */
    CU_ASSERT_STRING_EQUAL(offer(client, "to-mn", NULL, NULL, id, sizeof(id)), "to-mn");
    CU_ASSERT_STRING_EQUAL(offer(client, "expired", NULL, NULL, id, sizeof(id)), "");
    CU_ASSERT_STRING_EQUAL(offer(client, "nobody", NULL, NULL, id, sizeof(id)), "");
    /* a target: its live kc before its kpsas */
    CU_ASSERT_STRING_EQUAL(offer(client, NULL, "/id-in", NULL, id, sizeof(id)), KCID);
    /* an expired kc gives way to the kpsa */
    CU_ASSERT_STRING_EQUAL(offer(client, NULL, "/id-mn", NULL, id, sizeof(id)), "to-mn");
    /* entity IDs compare exactly */
    CU_ASSERT_STRING_EQUAL(offer(client, NULL, "/ID-MN", NULL, id, sizeof(id)), "");
    /* the targets list maps the SNI name; else the SNI name is IdB itself */
    CU_ASSERT_STRING_EQUAL(offer(client, NULL, NULL, "MAPPED.example.com", id, sizeof(id)),
                           "to-mapped");
    CU_ASSERT_STRING_EQUAL(offer(client, NULL, NULL, "host.example.com", id, sizeof(id)),
                           "to-host");
    /* the program's target wins over the SNI name */
    CU_ASSERT_STRING_EQUAL(offer(client, NULL, "/id-mn", "host.example.com", id, sizeof(id)),
                           "to-mn");
    /* no target: the store's only usable key, and none when there are more */
    CU_ASSERT_STRING_EQUAL(offer(lone, NULL, NULL, NULL, id, sizeof(id)), "only");
    CU_ASSERT_STRING_EQUAL(offer(client, NULL, NULL, NULL, id, sizeof(id)), "");
}

static void test_client_newest_kpsa_wins(void)
{
    char id[SAEF_KS_ID_MAX + 1];

    put(client, SAEF_KS_KC, KCID, "/id-in", "", (int64_t)time(NULL) - 1, 32, 0);
    CU_ASSERT_STRING_EQUAL(offer(client, NULL, "/id-in", NULL, id, sizeof(id)), "to-in-newer");
}

static void test_set_target_and_identity_limits(void)
{
    SSL *ssl = SSL_new(cctx);
    char big[SAEF_KS_ENTITY_MAX + 2];

    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    CU_ASSERT_FALSE(saef_ssl_set_target(ssl, NULL));
    CU_ASSERT_FALSE(saef_ssl_set_target(ssl, big));
    CU_ASSERT_TRUE(saef_ssl_set_target(ssl, "/id-in"));
    CU_ASSERT_STRING_EQUAL(saef_get_conn(ssl)->target, "/id-in");
    CU_ASSERT_FALSE(saef_ssl_set_identity(ssl, NULL));
    /* nothing is established before a handshake */
    CU_ASSERT_PTR_NULL(saef_ssl_identity(ssl));
    CU_ASSERT_PTR_NULL(saef_ssl_peer_entity(ssl));
    CU_ASSERT_EQUAL(saef_ssl_framework(ssl), SAEF_FW_NONE);
    SSL_free(ssl);
    SSL_CTX_free(cctx);
    cctx = NULL;
}

/* ---- cipher lists ---------------------------------------------------------- */

/* The first TLS 1.2 suite (the TLS 1.3 ones come first in the list). */
static const char *first_cipher(SSL_CTX *ctx)
{
    STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(ctx);

    for (int i = 0; i < sk_SSL_CIPHER_num(sk); i++)
        if (strcmp(SSL_CIPHER_get_version(sk_SSL_CIPHER_value(sk, i)), "TLSv1.3") != 0)
            return SSL_CIPHER_get_name(sk_SSL_CIPHER_value(sk, i));
    return "";
}

static int has_cipher(SSL_CTX *ctx, const char *name)
{
    STACK_OF(SSL_CIPHER) *sk = SSL_CTX_get_ciphers(ctx);

    for (int i = 0; i < sk_SSL_CIPHER_num(sk); i++)
        if (strcmp(SSL_CIPHER_get_name(sk_SSL_CIPHER_value(sk, i)), name) == 0)
            return 1;
    return 0;
}

static void test_reapply_ciphers_puts_psk_suites_first(void)
{
    static const char *const req[] = {"require_psk", "yes", NULL};
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method()), *plain = SSL_CTX_new(TLS_server_method());
    saef_ctx *r;

    CU_ASSERT_TRUE_FATAL(ctx != NULL && plain != NULL);
    CU_ASSERT_TRUE(saef_ssl_ctx_server(ctx, lone));
    CU_ASSERT_STRING_EQUAL(first_cipher(ctx), "PSK-AES128-CBC-SHA256");
    /* the program's own list: its suites stay, behind saef's */
    CU_ASSERT_TRUE(SSL_CTX_set_cipher_list(ctx, "ECDHE-RSA-AES256-GCM-SHA384"));
    CU_ASSERT_STRING_EQUAL(first_cipher(ctx), "ECDHE-RSA-AES256-GCM-SHA384");
    saef_reapply_ciphers(ctx);
    CU_ASSERT_STRING_EQUAL(first_cipher(ctx), "PSK-AES128-CBC-SHA256");
    CU_ASSERT_TRUE(has_cipher(ctx, "PSK-AES128-CCM8"));
    CU_ASSERT_TRUE(has_cipher(ctx, "ECDHE-RSA-AES256-GCM-SHA384"));
    /* TLS 1.3 without a SHA-256 suite gets one back for the PSK */
    CU_ASSERT_TRUE(SSL_CTX_set_ciphersuites(ctx, "TLS_AES_256_GCM_SHA384"));
    saef_reapply_ciphers(ctx);
    CU_ASSERT_TRUE(has_cipher(ctx, "TLS_AES_128_GCM_SHA256"));
    CU_ASSERT_TRUE(has_cipher(ctx, "TLS_AES_256_GCM_SHA384"));
    /* a context without saef is left alone */
    CU_ASSERT_TRUE(SSL_CTX_set_cipher_list(plain, "ECDHE-RSA-AES256-GCM-SHA384"));
    saef_reapply_ciphers(plain);
    CU_ASSERT_STRING_EQUAL(first_cipher(plain), "ECDHE-RSA-AES256-GCM-SHA384");
    CU_ASSERT_FALSE(has_cipher(plain, "PSK-AES128-CBC-SHA256"));
    SSL_CTX_free(ctx);
    /* require_psk on a serving context: only PSK suites remain */
    CU_ASSERT_PTR_NOT_NULL_FATAL(r = make("require", req));
    ctx = SSL_CTX_new(TLS_server_method());
    CU_ASSERT_TRUE(saef_ssl_ctx_server(ctx, r));
    CU_ASSERT_TRUE(SSL_CTX_set_cipher_list(ctx, "ECDHE-RSA-AES256-GCM-SHA384:PSK-AES256-CBC-SHA"));
    saef_reapply_ciphers(ctx);
    CU_ASSERT_STRING_EQUAL(first_cipher(ctx), "PSK-AES128-CBC-SHA256");
    CU_ASSERT_FALSE(has_cipher(ctx, "ECDHE-RSA-AES256-GCM-SHA384"));
    CU_ASSERT_TRUE(has_cipher(ctx, "PSK-AES256-CBC-SHA"));
    SSL_CTX_free(ctx);
    SSL_CTX_free(plain);
    saef_free(r);
}

/* ---- the public constructors ----------------------------------------------- */

static void test_new_from_openssl_without_provider(void)
{
    saef_ctx *s = saef_new_from_openssl(NULL);

    /* No saef provider in the configuration: the defaults. */
    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_EQUAL(saef_ctx_int(s, SAEF_CONF_REQUIRE_PSK), 0);
    CU_ASSERT_EQUAL(saef_ctx_int(s, SAEF_CONF_LOG_LEVEL), SAEF_LEVEL_INFO);
    saef_free(s);
}

static void test_log_level_debug_still_loads(void)
{
    static const char *const debug[] = {"log_level", "debug", NULL};
    saef_ctx *s = make("debug", debug);

    CU_ASSERT_PTR_NOT_NULL_FATAL(s);
    CU_ASSERT_TRUE(saef_log_on(s, SAEF_LEVEL_DEBUG) == 0); /* log = none */
    saef_free(s);
}

int main(int argc, char **argv)
{
    static const CU_TestInfo tests[] = {
        SAEF_TEST(test_known_kpsa_binds_its_peer),
        SAEF_TEST(test_kpsa_without_peer_binds_credential_id_12),
        SAEF_TEST(test_unknown_identity_is_unknown),
        SAEF_TEST(test_malformed_identity_is_refused),
        SAEF_TEST(test_expired_kpsa_is_refused),
        SAEF_TEST(test_record_bound_elsewhere_is_refused),
        SAEF_TEST(test_kc_rules),
        SAEF_TEST(test_maf_server_takes_km_records),
        SAEF_TEST(test_refused_client_gets_a_random_key),
        SAEF_TEST(test_bound_here),
        SAEF_TEST(test_client_key_choice),
        SAEF_TEST(test_client_newest_kpsa_wins),
        SAEF_TEST(test_set_target_and_identity_limits),
        SAEF_TEST(test_reapply_ciphers_puts_psk_suites_first),
        SAEF_TEST(test_new_from_openssl_without_provider),
        SAEF_TEST(test_log_level_debug_still_loads),
        CU_TEST_INFO_NULL,
    };

    setenv("OPENSSL_CONF", "/dev/null", 1); /* the defaults, whatever the host has */
    return saef_unit_run("policy", tests, setup, teardown, argc, argv);
}
