/* The originator check (TS-0003 7.2.1, libsaef/originator.c): each ID form of
   TS-0001 table 7.2-1 against each kind of binding, and bad originators. */
#include "unit.h"
#include <string.h>

#include "saef-internal.h"

#define OK SAEF_ORIGIN_OK
#define NOT_AUTH SAEF_ORIGIN_NOT_AUTHENTICATED
#define NO_SA SAEF_ORIGIN_NO_ASSOCIATION
#define REG SAEF_ORIGIN_CREATE_AE

/* judge(entity, own CSE-ID, From as a C string, flags) */
static SAEF_ORIGIN judge(const char *entity, const char *own, const char *from, unsigned flags)
{
    return saef_origin_judge(entity, own, from, from != NULL ? strlen(from) : 0, flags);
}

static void test_no_association_is_4107(void)
{
    CU_ASSERT_EQUAL(judge(NULL, "/id-in", "Csaef1", 0), NO_SA);
    CU_ASSERT_EQUAL(judge("", "/id-in", "Csaef1", 0), NO_SA);
    CU_ASSERT_EQUAL(judge(NULL, NULL, NULL, REG), NO_SA);
    CU_ASSERT_EQUAL(saef_originator_check(NULL, "Csaef1", 6, 0), NO_SA);
}

static void test_cse_bound_passes_others_originators(void)
{
    static const char *const from[] = {
        "Cvictim", "CAdmin", "/id-mn", "/id-in/Cother", "//sp.example.com/id-asn/Cx", "Sdev",
        "C",       "S",      ""};

    for (size_t i = 0; i < sizeof(from) / sizeof(*from); i++) {
        CU_ASSERT_EQUAL(judge("/id-mn", "/id-in", from[i], 0), OK);
        CU_ASSERT_EQUAL(judge("//sp.example.com/id-mn", NULL, from[i], REG), OK);
    }
    CU_ASSERT_EQUAL(judge("/id-mn", NULL, NULL, 0), OK);
}

static void test_own_ae_id_in_every_form(void)
{
    const char *own = "//sp.example.com/id-in";

    /* bound to the SP-relative AE-ID, From in each form naming the same AE */
    CU_ASSERT_EQUAL(judge("/id-in/Csaef1", own, "Csaef1", 0), OK);
    CU_ASSERT_EQUAL(judge("/id-in/Csaef1", own, "/id-in/Csaef1", 0), OK);
    CU_ASSERT_EQUAL(judge("/id-in/Csaef1", own, "//sp.example.com/id-in/Csaef1", 0), OK);
    CU_ASSERT_EQUAL(judge("/id-in/Csaef1", own, "//SP.Example.COM/id-in/Csaef1", 0), OK);
    /* bound to the absolute AE-ID or to the stem */
    CU_ASSERT_EQUAL(judge("//sp.example.com/id-in/Csaef1", own, "Csaef1", 0), OK);
    CU_ASSERT_EQUAL(judge("Csaef1", own, "/id-in/Csaef1", 0), OK);
    CU_ASSERT_EQUAL(judge("Csaef1", NULL, "Csaef1", 0), OK);
    /* re-registration with the stem (TS-0001 10.2.2.2 step 002 i, ii, vi) */
    CU_ASSERT_EQUAL(judge("/id-in/Csaef1", own, "Csaef1", REG), OK);
    /* S-AE-IDs are unique in the SP, whichever CSE the AE registers with */
    CU_ASSERT_EQUAL(judge("Sdev1", own, "Sdev1", 0), OK);
    CU_ASSERT_EQUAL(judge("Sdev1", own, "//sp.example.com/Sdev1", 0), OK);
    CU_ASSERT_EQUAL(judge("//sp.example.com/Sdev1", "//sp.example.com/id-mn", "Sdev1", 0), OK);
    /* the SP-relative S-AE-ID of the ABNF, "/S..." */
    CU_ASSERT_EQUAL(judge("Sdev1", own, "/Sdev1", 0), OK);
    CU_ASSERT_EQUAL(judge("//sp.example.com/Sdev1", own, "/Sdev1", 0), OK);
    /* '-', '.', '_' in stems and CSE-IDs */
    CU_ASSERT_EQUAL(judge("/in-cse.1/C-dev_1.a", "/in-cse.1", "C-dev_1.a", 0), OK);
}

static void test_other_originators_are_4106(void)
{
    static const char *const from[] = {"Cvictim",
                                       "CAdmin",
                                       "/id-mn",
                                       "//sp.example.com/id-mn",
                                       "/id-in/Cvictim",
                                       "Csaef1x",
                                       "csaef1",
                                       "Csaef",
                                       "/id-mn/Csaef1", /* the same stem at another Registrar */
                                       "//other.example.com/id-in/Csaef1", /* in another SP */
                                       "Ssaef1",
                                       "12-dev1@sp.example.com"};

    for (size_t i = 0; i < sizeof(from) / sizeof(*from); i++) {
        CU_ASSERT_EQUAL(judge("/id-in/Csaef1", "//sp.example.com/id-in", from[i], 0), NOT_AUTH);
        CU_ASSERT_EQUAL(judge("/id-in/Csaef1", "//sp.example.com/id-in", from[i], REG), NOT_AUTH);
    }
    /* The stem alone names an AE of this CSE: without entity_id it cannot
       be matched to an AE-ID that names its CSE, nor an SP to an absolute. */
    CU_ASSERT_EQUAL(judge("/id-in/Csaef1", NULL, "Csaef1", 0), NOT_AUTH);
    CU_ASSERT_EQUAL(judge("/id-in/Csaef1", "/id-in", "//sp.example.com/id-in/Csaef1", 0), NOT_AUTH);
    CU_ASSERT_EQUAL(judge("Sdev1", "/id-in", "//sp.example.com/Sdev1", 0), NOT_AUTH);
    /* SP-relative S-AE-IDs have no CSE-ID (table 7.2-1) */
    CU_ASSERT_EQUAL(judge("Sdev1", "/id-in", "/id-in/Sdev1", 0), NOT_AUTH);
    /* only len bytes are the originator */
    CU_ASSERT_EQUAL(saef_origin_judge("/id-in/Csaef1", "/id-in", "Csaef1", 3, 0), NOT_AUTH);
}

static void test_first_registration_forms(void)
{
    static const char *const first[] = {"C", "S", "", NULL};

    for (size_t i = 0; i < sizeof(first) / sizeof(*first); i++) {
        /* Credential-ID bound: the Registrar assigns the AE-ID (TS-0003 8.2.1 a) */
        CU_ASSERT_EQUAL(judge("12-dev1@sp.example.com", "/id-in", first[i], REG), OK);
        CU_ASSERT_EQUAL(judge("11-km1@maf.example.com", "/id-in", first[i], REG), OK);
        /* ... but nothing else: these claim no identity */
        CU_ASSERT_EQUAL(judge("12-dev1@sp.example.com", "/id-in", first[i], 0), NOT_AUTH);
        /* an AE bound to its AE-ID registers with it */
        CU_ASSERT_EQUAL(judge("/id-in/Csaef1", "/id-in", first[i], REG), NOT_AUTH);
        CU_ASSERT_EQUAL(judge("/id-in/Csaef1", "/id-in", first[i], 0), NOT_AUTH);
    }
}

static void test_credential_bound_cannot_claim_an_ae_id(void)
{
    static const char *const from[] = {"Cdev1", "/id-in/Cdev1", "12-dev1@sp.example.com",
                                       "dev1@sp.example.com", "Sdev1"};

    for (size_t i = 0; i < sizeof(from) / sizeof(*from); i++) {
        CU_ASSERT_EQUAL(judge("12-dev1@sp.example.com", "/id-in", from[i], 0), NOT_AUTH);
        CU_ASSERT_EQUAL(judge("12-dev1@sp.example.com", "/id-in", from[i], REG), NOT_AUTH);
    }
}

static void test_binding_forms(void)
{
    /* Outside TS-0004's characters an ID has no forms: exact match only,
       which a From of clean bytes can still make (a CSE's own names). */
    CU_ASSERT_EQUAL(judge("/id-in/Cd\xc3\xa9v", "/id-in", "Cd\xc3\xa9v", 0), NOT_AUTH);
    CU_ASSERT_EQUAL(judge("/id-in/Cd\xc3\xa9v", "/id-in", "/id-in/Cd\xc3\xa9v", 0), OK);
    CU_ASSERT_EQUAL(judge("admin:admin", "/id-in", "admin:admin", 0), OK);
    CU_ASSERT_EQUAL(judge("/id-in/Csaef1", "/id-in", "Csaef1:x", 0), NOT_AUTH);
    CU_ASSERT_EQUAL(judge("/id-in/Csaef1", "/id-in", "/id-in/C~saef1", 0), NOT_AUTH);
    /* A CSE-ID starting with C or S reads as an AE-ID: checked, fail closed. */
    CU_ASSERT_EQUAL(judge("/CSE01", "/id-in", "/id-in/Cother", 0), NOT_AUTH);
    CU_ASSERT_EQUAL(judge("//sp.example.com/Sx", "/id-in", "Cother", 0), NOT_AUTH);
    /* A binding in no TS-0001 form matches only itself. */
    CU_ASSERT_EQUAL(judge("dev1", "/id-in", "dev1", 0), OK);
    CU_ASSERT_EQUAL(judge("dev1", "/id-in", "Cdev1", 0), NOT_AUTH);
    CU_ASSERT_EQUAL(judge("dev1", "/id-in", NULL, REG), NOT_AUTH);
}

static void test_malformed_originators_are_4106(void)
{
    static const char *const from[] = {"/",
                                       "//",
                                       "///",
                                       "//sp.example.com",
                                       "//sp.example.com/",
                                       "/id-in/",
                                       "/id-in//Csaef1",
                                       "Csaef1/",
                                       "/id-in/Csaef1/x",
                                       "//sp.example.com/id-in/Csaef1/",
                                       "Csaef1 ",
                                       " Csaef1",
                                       "Csaef1\r\nX-M2M-Origin: CAdmin",
                                       "Csaef1\t",
                                       "Csaef1\x7f"};

    for (size_t i = 0; i < sizeof(from) / sizeof(*from); i++)
        CU_ASSERT_EQUAL(judge("/id-in/Csaef1", "/id-in", from[i], 0), NOT_AUTH);
}

static void test_bad_bytes_are_4106_for_every_binding(void)
{
    static const struct {
        const char *s;
        size_t len;
    } bad[] = {
        {"Csaef1\0x", 8}, /* NUL */
        {"\0", 1},
        {"Csaef1\xff", 7},        /* never UTF-8 */
        {"C\xc0\xaf", 3},         /* overlong '/' */
        {"C\xe0\x80\xaf", 4},     /* overlong, 3 bytes */
        {"C\xed\xa0\x80", 4},     /* UTF-16 surrogate */
        {"C\xf4\x90\x80\x80", 5}, /* beyond U+10FFFF */
        {"C\xc3", 2},             /* cut short */
        {"C\xe2\x82", 3},
        {"C\x80", 2}, /* continuation byte first */
    };
    static const char *const entity[] = {"/id-in/Csaef1", "/id-mn", "12-dev1@sp.example.com"};

    for (size_t e = 0; e < sizeof(entity) / sizeof(*entity); e++)
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
            CU_ASSERT_EQUAL(saef_origin_judge(entity[e], "/id-in", bad[i].s, bad[i].len, REG),
                            NOT_AUTH);
}

static void test_overlong_originator_is_4106(void)
{
    char from[SAEF_ORIGIN_MAX + 2], bound[SAEF_ORIGIN_MAX + 1];

    memset(from, 'a', sizeof(from));
    from[0] = 'C';
    memcpy(bound, from, SAEF_ORIGIN_MAX);
    bound[SAEF_ORIGIN_MAX] = '\0';
    CU_ASSERT_EQUAL(saef_origin_judge(bound, NULL, from, SAEF_ORIGIN_MAX, 0), OK);
    CU_ASSERT_EQUAL(saef_origin_judge(bound, NULL, from, SAEF_ORIGIN_MAX + 1, 0), NOT_AUTH);
    CU_ASSERT_EQUAL(saef_origin_judge("/id-mn", NULL, from, SAEF_ORIGIN_MAX + 1, 0), NOT_AUTH);
    CU_ASSERT_EQUAL(saef_origin_judge("/id-in/Csaef1", "/id-in", from, sizeof(from), 0), NOT_AUTH);
}

/* Through the public call: a connection without a finished saef handshake. */
static void test_connection_without_handshake_is_4107(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    saef_conf *conf = saef_conf_new();
    char err[256];
    saef_ctx *s;
    SSL *ssl;

    CU_ASSERT_PTR_NOT_NULL_FATAL(conf);
    CU_ASSERT(saef_conf_set(conf, "log", "none", err, sizeof(err)));
    s = saef_new(conf);
    saef_conf_free(conf);
    CU_ASSERT_FATAL(ctx != NULL && s != NULL && saef_ssl_ctx_server(ctx, s));
    ssl = SSL_new(ctx);
    CU_ASSERT_FATAL(ssl != NULL);
    CU_ASSERT_EQUAL(saef_originator_check(ssl, "Csaef1", 6, 0), NO_SA);
    CU_ASSERT_EQUAL(saef_originator_check(ssl, NULL, 0, REG), NO_SA);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    saef_free(s);
}

int main(int argc, char **argv)
{
    static const CU_TestInfo tests[] = {
        SAEF_TEST(test_no_association_is_4107),
        SAEF_TEST(test_cse_bound_passes_others_originators),
        SAEF_TEST(test_own_ae_id_in_every_form),
        SAEF_TEST(test_other_originators_are_4106),
        SAEF_TEST(test_first_registration_forms),
        SAEF_TEST(test_credential_bound_cannot_claim_an_ae_id),
        SAEF_TEST(test_binding_forms),
        SAEF_TEST(test_malformed_originators_are_4106),
        SAEF_TEST(test_bad_bytes_are_4106_for_every_binding),
        SAEF_TEST(test_overlong_originator_is_4106),
        SAEF_TEST(test_connection_without_handshake_is_4107),
        CU_TEST_INFO_NULL,
    };

    return saef_unit_run("originator", tests, NULL, NULL, argc, argv);
}
