/* The MAF's request authorisation (maf/mafd-registry.c): who may read,
   update and delete which registration, every 401/403/404 of
   saef_mafd_handle, driven without sockets as fuzz_mafd_request does. */
#include "unit.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mafd-registry.h"

#define FQDN "maf.example.com"
#define A "//sp.example.com/C-a"  /* a source client */
#define B "//sp.example.com/id-b" /* a target CSE */
#define C "//sp.example.com/C-c"  /* a third client */

static char dir[] = "/tmp/saef-test-mafd-XXXXXX";
static saef_mafd maf = {.fqdn = FQDN, .max_lifetime = 86400, .max_reg_lifetime = 86400};

static void put_km(const char *kmid, const char *peer)
{
    saef_ks_record rec = {0};

    memset(rec.key, 0x42, 16);
    rec.key_len = 16;
    snprintf(rec.peer, sizeof(rec.peer), "%s", peer);
    if (saef_ks_put(maf.ks, SAEF_KS_KM, kmid, strlen(kmid), &rec, SAEF_KS_REPLACE) != SAEF_KS_OK)
        abort();
}

static int setup(void)
{
    char path[64];

    if (saef_unit_mkdir(dir) != 0)
        return 1;
    snprintf(path, sizeof(path), "%s/registry", dir);
    if (saef_ks_open(path, SAEF_KS_CREATE, &maf.ks) != SAEF_KS_OK)
        return 1;
    put_km("km-a", A);
    put_km("km-b", B);
    put_km("km-c", C);
    return 0;
}

static int teardown(void)
{
    saef_ks_close(maf.ks);
    return saef_unit_rmdir(dir);
}

/* method path as client with body; the status; *out the answer (may be NULL). */
static int call(enum evhttp_cmd_type method, const char *path, const char *client, const char *body,
                json_t **out)
{
    saef_mafd_request req = {method, path, body, body ? strlen(body) : 0, NULL, client};
    json_t *answer = NULL;
    int status = saef_mafd_handle(&maf, &req, &answer);

    if (status >= 400)
        CU_ASSERT_TRUE(json_is_string(json_object_get(answer, "error")));
    if (out != NULL)
        *out = answer;
    else
        json_decref(answer);
    return status;
}

static const char *future(void)
{
    static char buf[16];

    saef_time_format_onem2m((int64_t)time(NULL) + 3600, buf, sizeof(buf));
    return buf;
}

/* A registers a key for target; its relativeKeyID into rel (33 bytes). 201 expected. */
static int register_key(const char *client, const char *target, char *rel)
{
    char body[512];
    json_t *answer;
    int status;

    snprintf(body, sizeof(body),
             "{\"expirationTime\":\"%s\",\"adminFQDN\":\"admin.example.com\",\"SUID\":32,"
             "\"targetIDs\":[\"%s\"],\"keyValue\":\"00112233445566778899aabbccddeeff\"}",
             future(), target);
    status = call(EVHTTP_REQ_POST, "/keyReg", client, body, &answer);
    if (status == 201 && rel != NULL)
        snprintf(rel, 33, "%s", json_string_value(json_object_get(answer, "relativeKeyID")));
    json_decref(answer);
    return status;
}

static int retrieve(const char *client, const char *rel)
{
    char body[128];

    snprintf(body, sizeof(body), "{\"relativeKeyID\":\"%s\"}", rel);
    return call(EVHTTP_REQ_POST, "/keyRetrieve", client, body, NULL);
}

static void test_unauthenticated_is_401(void)
{
    CU_ASSERT_EQUAL(call(EVHTTP_REQ_POST, "/keyRetrieve", NULL, "{}", NULL), 401);
}

static void test_unknown_resource_is_404(void)
{
    CU_ASSERT_EQUAL(call(EVHTTP_REQ_GET, "/nothing", A, NULL, NULL), 404);
    CU_ASSERT_EQUAL(call(EVHTTP_REQ_GET, "/keyRegX", A, NULL, NULL), 404);
}

static void test_only_the_target_retrieves(void)
{
    char rel[33];

    CU_ASSERT_EQUAL_FATAL(register_key(A, B, rel), 201);
    CU_ASSERT_EQUAL(retrieve(B, rel), 200);
    CU_ASSERT_EQUAL(retrieve(A, rel), 403); /* the source is not a target */
    CU_ASSERT_EQUAL(retrieve(C, rel), 403);
    CU_ASSERT_EQUAL(retrieve(B, "0123456789ABCDEF0123456789ABCDEF"), 404);
}

static void test_only_the_source_updates_and_deletes(void)
{
    char rel[33], path[64], body[128];

    CU_ASSERT_EQUAL_FATAL(register_key(A, B, rel), 201);
    snprintf(path, sizeof(path), "/keyReg/%s", rel);
    snprintf(body, sizeof(body), "{\"expirationTime\":\"%s\"}", future());
    CU_ASSERT_EQUAL(call(EVHTTP_REQ_PUT, path, B, body, NULL), 403); /* the target */
    CU_ASSERT_EQUAL(call(EVHTTP_REQ_PUT, path, C, body, NULL), 403);
    CU_ASSERT_EQUAL(call(EVHTTP_REQ_DELETE, path, B, NULL, NULL), 403);
    CU_ASSERT_EQUAL(call(EVHTTP_REQ_DELETE, path, C, NULL, NULL), 403);
    CU_ASSERT_EQUAL(retrieve(B, rel), 200); /* still there, unchanged */
    CU_ASSERT_EQUAL(call(EVHTTP_REQ_PUT, path, A, body, NULL), 200);
    /* re-targeting to an ID that is no client of this MAF */
    CU_ASSERT_EQUAL(
        call(EVHTTP_REQ_PUT, path, A, "{\"targetIDs\":[\"//sp.example.com/id-x\"]}", NULL), 403);
    CU_ASSERT_EQUAL(retrieve(B, rel), 200);
    CU_ASSERT_EQUAL(call(EVHTTP_REQ_DELETE, path, A, NULL, NULL), 204);
    CU_ASSERT_EQUAL(retrieve(B, rel), 404);
    CU_ASSERT_EQUAL(call(EVHTTP_REQ_DELETE, path, A, NULL, NULL), 404);
    CU_ASSERT_EQUAL(call(EVHTTP_REQ_PUT, "/keyReg/0123456789ABCDEF0123456789ABCDEF", A, body, NULL),
                    404);
}

static void test_key_only_for_known_targets(void)
{
    static const char *const list[] = {B, NULL};

    /* not a MAF client (no km record names it) */
    CU_ASSERT_EQUAL(register_key(A, "//sp.example.com/id-x", NULL), 403);
    /* --targets: only those listed */
    maf.targets = list;
    CU_ASSERT_EQUAL(register_key(A, C, NULL), 403);
    CU_ASSERT_EQUAL(register_key(A, B, NULL), 201);
    maf.targets = NULL;
    /* --cse-targets-only: an AE-ID is refused even when it is a client */
    maf.cse_targets_only = 1;
    CU_ASSERT_EQUAL(register_key(A, C, NULL), 403);
    CU_ASSERT_EQUAL(register_key(A, B, NULL), 201);
    maf.cse_targets_only = 0;
}

static void test_require_reg_for_registration_and_retrieval(void)
{
    char rel[33], body[256];
    json_t *answer;

    CU_ASSERT_EQUAL_FATAL(register_key(A, B, rel), 201);
    maf.require_reg = 1;
    CU_ASSERT_EQUAL(register_key(A, B, NULL), 403); /* A not registered for admin.example.com */
    CU_ASSERT_EQUAL(retrieve(B, rel), 403);         /* nor B */
    snprintf(body, sizeof(body), "{\"expirationTime\":\"%s\",\"adminFQDN\":\"admin.example.com\"}",
             future());
    CU_ASSERT_EQUAL(call(EVHTTP_REQ_POST, "/clientReg", A, body, &answer), 201);
    json_decref(answer);
    CU_ASSERT_EQUAL(register_key(A, B, NULL), 201);
    CU_ASSERT_EQUAL(retrieve(B, rel), 403);
    CU_ASSERT_EQUAL(call(EVHTTP_REQ_POST, "/clientReg", B, body, NULL), 201);
    CU_ASSERT_EQUAL(retrieve(B, rel), 200);
    maf.require_reg = 0;
}

static void test_only_the_registered_client_uses_its_registration(void)
{
    char body[256], path[64];
    json_t *answer;

    snprintf(body, sizeof(body), "{\"expirationTime\":\"%s\",\"adminFQDN\":\"other.example.com\"}",
             future());
    CU_ASSERT_EQUAL_FATAL(call(EVHTTP_REQ_POST, "/clientReg", C, body, &answer), 201);
    snprintf(path, sizeof(path), "/clientReg/%s",
             json_string_value(json_object_get(answer, "mafClientRegID")));
    json_decref(answer);
    CU_ASSERT_EQUAL(call(EVHTTP_REQ_GET, path, A, NULL, NULL), 403);
    CU_ASSERT_EQUAL(call(EVHTTP_REQ_PUT, path, A, body, NULL), 403);
    CU_ASSERT_EQUAL(call(EVHTTP_REQ_DELETE, path, A, NULL, NULL), 403);
    CU_ASSERT_EQUAL(call(EVHTTP_REQ_GET, path, C, NULL, NULL), 200);
    CU_ASSERT_EQUAL(call(EVHTTP_REQ_DELETE, path, C, NULL, NULL), 204);
    CU_ASSERT_EQUAL(call(EVHTTP_REQ_GET, path, C, NULL, NULL), 404);
    CU_ASSERT_EQUAL(
        call(EVHTTP_REQ_GET, "/clientReg/0123456789abcdef0123456789abcdef", C, NULL, NULL), 404);
}

static void test_registration_quota_is_403(void)
{
    maf.max_regs = 1;
    /* C holds no live registration now: one more, then refused */
    CU_ASSERT_EQUAL(register_key(C, B, NULL), 201);
    CU_ASSERT_EQUAL(register_key(C, B, NULL), 403);
    maf.max_regs = 0;
}

int main(int argc, char **argv)
{
    static const CU_TestInfo tests[] = {
        SAEF_TEST(test_unauthenticated_is_401),
        SAEF_TEST(test_unknown_resource_is_404),
        SAEF_TEST(test_only_the_target_retrieves),
        SAEF_TEST(test_only_the_source_updates_and_deletes),
        SAEF_TEST(test_key_only_for_known_targets),
        SAEF_TEST(test_require_reg_for_registration_and_retrieval),
        SAEF_TEST(test_only_the_registered_client_uses_its_registration),
        SAEF_TEST(test_registration_quota_is_403),
        CU_TEST_INFO_NULL,
    };

    return saef_unit_run("mafd_registry", tests, setup, teardown, argc, argv);
}
