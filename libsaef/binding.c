/* Sessions bound to the key they were made with. */
#include "rules.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define BINDING_V1 1
#define BINDING_MAX (3 + 16 + 16 + 2 + SAEF_KS_ID_MAX + SAEF_KS_ENTITY_MAX + 16)

/* For the key digests sessions carry, and what makes each origin unique. */
static EVP_MD *g_sha256;
static pthread_key_t g_md_key; /* a digest context per thread, reused */
static unsigned char g_origin_base[8];
static uint32_t g_origin_count; /* atomic */

void saef_binding_init(void)
{
    g_sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (RAND_bytes(g_origin_base, sizeof(g_origin_base)) != 1 ||
        pthread_key_create(&g_md_key, (void (*)(void *))EVP_MD_CTX_free) != 0) {
        EVP_MD_free(g_sha256); /* then no session is bound, and none resumes */
        g_sha256 = NULL;
    }
}

/* SHA-256 of the key, first 16 bytes. The context is kept: a new one per
   handshake cost more than the hash. */
int saef_key_digest(const saef_ks_record *rec, unsigned char out[16])
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
int saef_bind_session(conn *c, SAEF_KS_TYPE type, SSL_SESSION *sess, const saef_ks_record *rec,
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
    if (!saef_key_digest(rec, p))
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

unsigned int saef_use_key(SSL *ssl, conn *c, const saef_ks_record *rec, unsigned char *psk)
{
    SSL_SESSION *sess = SSL_get_session(ssl);

    memcpy(psk, rec->key, rec->key_len);
    c->ok = 1;
    saef_bind_session(c, saef_fw_type(c->fw), sess, rec, SSL_SESSION_get_timeout(sess));
    return (unsigned int)rec->key_len;
}

int saef_read_binding(const SSL_SESSION *sess, binding *b)
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
