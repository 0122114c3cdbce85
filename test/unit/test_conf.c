/* CUnit tests of the configuration table (common/saef_conf.c, saef_conf.h). */
#include "unit.h"
#include "saef_conf.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[] = "/tmp/saef-unit-conf.XXXXXX";

/* A new configuration holds every default; free takes NULL. */
static void test_conf_new_holds_the_defaults(void)
{
    saef_conf *c = saef_conf_new();

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(saef_conf_str(c, SAEF_CONF_STORE), "/var/lib/saef/keys.db");
    CU_ASSERT_EQUAL(saef_conf_int(c, SAEF_CONF_ROLE), SAEF_ROLE_OFF);
    CU_ASSERT_EQUAL(saef_conf_int(c, SAEF_CONF_KC_SUID), 32);
    CU_ASSERT_STRING_EQUAL(saef_conf_str(c, SAEF_CONF_ENTITY_ID), "");
    /* Out of range: "" and 0, never a read outside the table. */
    CU_ASSERT_STRING_EQUAL(saef_conf_str(c, SAEF_CONF_NKEYS), "");
    CU_ASSERT_EQUAL(saef_conf_int(c, (SAEF_CONF_KEY)-1), 0);
    CU_ASSERT_PTR_NULL(saef_conf_name(SAEF_CONF_NKEYS));
    for (int k = 0; k < SAEF_CONF_NKEYS; k++)
        CU_ASSERT_PTR_NOT_NULL(saef_conf_name((SAEF_CONF_KEY)k));
    saef_conf_free(c);
    saef_conf_free(NULL);
}

/* A copy is a configuration of its own; a copy of NULL is the defaults. */
static void test_conf_dup_is_independent(void)
{
    saef_conf *a = saef_conf_new(), *b, *d = saef_conf_dup(NULL);
    char err[256];

    CU_ASSERT_PTR_NOT_NULL_FATAL(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(d);
    CU_ASSERT(saef_conf_set(a, "entity_id", "/id-in", err, sizeof(err)));
    CU_ASSERT(saef_conf_set(a, "sni", "a.example.com", err, sizeof(err)));
    b = saef_conf_dup(a);
    CU_ASSERT_PTR_NOT_NULL_FATAL(b);
    CU_ASSERT(b != a);
    for (int k = 0; k < SAEF_CONF_NKEYS; k++)
        CU_ASSERT_STRING_EQUAL(saef_conf_str(a, k), saef_conf_str(b, k));
    CU_ASSERT(saef_conf_set(b, "entity_id", "/id-mn", err, sizeof(err)));
    CU_ASSERT_STRING_EQUAL(saef_conf_str(a, SAEF_CONF_ENTITY_ID), "/id-in");
    CU_ASSERT_STRING_EQUAL(saef_conf_str(b, SAEF_CONF_ENTITY_ID), "/id-mn");
    saef_conf_free(a); /* b outlives its original */
    CU_ASSERT_STRING_EQUAL(saef_conf_str(b, SAEF_CONF_SNI), "a.example.com");
    CU_ASSERT_STRING_EQUAL(saef_conf_str(d, SAEF_CONF_STORE), "/var/lib/saef/keys.db");
    saef_conf_free(b);
    saef_conf_free(d);
}

/* saef_conf_set validates before it writes: a bad value of every kind of
   key (and an unknown key, and one too long) changes no key at all. */
static void test_conf_set_bad_value_leaves_the_old_one(void)
{
    static const struct {
        const char *name, *good, *bad;
    } cases[] = {
        {"store", "/var/lib/saef/other.db", "relative.db"},
        {"entity_id", "/id-in", "two words"},
        {"maf_kmid", "km1@maf.example.com", "no-at-sign"},
        {"require_psk", "yes", "perhaps"},
        {"role", "client", "king"},
        {"maf_timeout", "1500", "60001"},
        {"maf_timeout", "1500", "12abc"},
        {"kc_suid", "0", "-1"},
        {"sni", "a.example.com", "a.example.com, b!"},
        {"maf", "m.example.com https://127.0.0.1:1", "m.example.com http://127.0.0.1:1"},
        {"targets", "a.example.com=/a", "a.example.com=/a, b.example.com"},
    };
    saef_conf *c = saef_conf_new(), *before;
    char err[1024], longval[SAEF_CONF_VALUE_MAX + 8];

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
        CU_ASSERT(saef_conf_set(c, cases[i].name, cases[i].good, err, sizeof(err)));
    before = saef_conf_dup(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(before);
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        err[0] = '\0';
        CU_ASSERT(!saef_conf_set(c, cases[i].name, cases[i].bad, err, sizeof(err)));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, cases[i].name));
    }
    CU_ASSERT(!saef_conf_set(c, "no_such_key", "1", err, sizeof(err)));
    memset(longval, 'a', sizeof(longval) - 1);
    longval[0] = '/';
    longval[sizeof(longval) - 1] = '\0';
    CU_ASSERT(!saef_conf_set(c, "store", longval, err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "too long"));
    CU_ASSERT(!saef_conf_set(c, "role", "king", NULL, 0)); /* no err buffer */
    for (int k = 0; k < SAEF_CONF_NKEYS; k++)
        CU_ASSERT_STRING_EQUAL(saef_conf_str(c, k), saef_conf_str(before, k));
    saef_conf_free(before);
    saef_conf_free(c);
}

/* Without the provider loaded, the configuration is left as it was. */
static void test_conf_from_provider_without_provider_changes_nothing(void)
{
    saef_conf *c = saef_conf_new();
    OSSL_LIB_CTX *lib = OSSL_LIB_CTX_new();
    char err[256];

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_PTR_NOT_NULL_FATAL(lib);
    CU_ASSERT(saef_conf_set(c, "role", "server", err, sizeof(err)));
    CU_ASSERT_EQUAL(saef_conf_from_provider(lib, c), 0);
    CU_ASSERT_EQUAL(saef_conf_int(c, SAEF_CONF_ROLE), SAEF_ROLE_SERVER);
    OSSL_LIB_CTX_free(lib);
    saef_conf_free(c);
}

static void test_conf_validates_and_names_the_key(void)
{
    saef_conf *c = saef_conf_new();
    char err[512], url[128];

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_STRING_EQUAL(saef_conf_str(c, SAEF_CONF_STORE), "/var/lib/saef/keys.db");
    CU_ASSERT_EQUAL(saef_conf_int(c, SAEF_CONF_TLS13), 1);
    CU_ASSERT_EQUAL(saef_conf_int(c, SAEF_CONF_MAF_TIMEOUT), 2000);
    CU_ASSERT(saef_conf_set(c, "require_psk", "TRUE", err, sizeof(err)));
    CU_ASSERT_STRING_EQUAL(saef_conf_str(c, SAEF_CONF_REQUIRE_PSK), "yes");
    CU_ASSERT(saef_conf_set(c, "role", "both", err, sizeof(err)));
    CU_ASSERT_EQUAL(saef_conf_int(c, SAEF_CONF_ROLE), SAEF_ROLE_BOTH);
    CU_ASSERT(!saef_conf_set(c, "role", "king", err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "'role'"));
    CU_ASSERT_EQUAL(saef_conf_int(c, SAEF_CONF_ROLE), SAEF_ROLE_BOTH);
    CU_ASSERT(!saef_conf_set(c, "maf_timeout", "60001", err, sizeof(err)));
    /* A cached Kc is trusted a few minutes, at most a day (issue 11 item 5). */
    CU_ASSERT_EQUAL(saef_conf_int(c, SAEF_CONF_MAF_REVALIDATE), 300);
    CU_ASSERT(saef_conf_set(c, "maf_revalidate", "0", err, sizeof(err)));
    CU_ASSERT(!saef_conf_set(c, "maf_revalidate", "86401", err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "'maf_revalidate'"));
    CU_ASSERT(!saef_conf_set(c, "nonsense", "1", err, sizeof(err)));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown key"));
    CU_ASSERT(saef_conf_set(
        c, "maf", "maf.example.com https://127.0.0.1:1, m2.example.com https://10.0.0.1:2", err,
        sizeof(err)));
    CU_ASSERT(saef_conf_maf_url(c, "MAF.example.com", 15, url, sizeof(url)));
    CU_ASSERT_STRING_EQUAL(url, "https://127.0.0.1:1");
    CU_ASSERT(saef_conf_maf_url(c, "m2.example.com", 14, url, sizeof(url)));
    CU_ASSERT_STRING_EQUAL(url, "https://10.0.0.1:2");
    CU_ASSERT(!saef_conf_maf_url(c, "maf.example", 11, url, sizeof(url)));
    CU_ASSERT(!saef_conf_set(c, "maf", "maf.example.com http://x", err, sizeof(err)));
    CU_ASSERT(!saef_conf_set(c, "maf", "maf.example.com coaps://", err, sizeof(err)));
    /* The MAF over CoAP/DTLS (saef-mafd --listen-coaps). */
    CU_ASSERT(saef_conf_set(c, "maf", "maf.example.com coaps://127.0.0.1:5684", err, sizeof(err)));
    CU_ASSERT(saef_conf_maf_url(c, "maf.example.com", 15, url, sizeof(url)));
    CU_ASSERT_STRING_EQUAL(url, "coaps://127.0.0.1:5684");
    CU_ASSERT(saef_conf_set(c, "sni", "a.example.com, b.example.com", err, sizeof(err)));
    CU_ASSERT_STRING_EQUAL(saef_conf_str(c, SAEF_CONF_SNI), "a.example.com,b.example.com");
    saef_conf_free(c);
}

/* A refused value leaves the old one whole, also after a good first entry. */
static void test_conf_bad_list_leaves_the_old_value(void)
{
    saef_conf *c = saef_conf_new();
    char err[512];

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT(saef_conf_set(c, "sni", "good.example.com", err, sizeof(err)));
    CU_ASSERT(!saef_conf_set(c, "sni", "a.example.com, b!", err, sizeof(err)));
    CU_ASSERT_STRING_EQUAL(saef_conf_str(c, SAEF_CONF_SNI), "good.example.com");
    CU_ASSERT(saef_conf_set(c, "maf", "m.example.com https://127.0.0.1:1", err, sizeof(err)));
    CU_ASSERT(!saef_conf_set(c, "maf", "n.example.com https://127.0.0.1:2, bad", err, sizeof(err)));
    CU_ASSERT_STRING_EQUAL(saef_conf_str(c, SAEF_CONF_MAF), "m.example.com https://127.0.0.1:1");
    saef_conf_free(c);
}

static void test_conf_targets_parsed_strictly(void)
{
    static const struct {
        const char *value, *why;
    } bad[] = {
        {"in-cse.example.com", "entry \"in-cse.example.com\": each entry is HOST=IdB"},
        {"a.example.com=/a, 127.0.0.1=/b", "entry \"127.0.0.1=/b\": an address needs its port"},
        {"127.0.0.1:0=/b", "the port must be 1 to 65535"},
        {"127.0.0.1:x=/b", "the port must be 1 to 65535"},
        {"127.0.0.1:65536=/b", "the port must be 1 to 65535"},
        {"a.example.com:443=/b", "a host name is matched without a port"},
        {"::1:443=/b", "write an IPv6 address as [IPV6]:PORT"},
        {"[::1=/b", "not a host name"},
        {"a_b.example.com=/b", "not a host name"},
        {"a.example.com=", "entry \"a.example.com=\": IdB must be a CSE-ID"},
        {"a.example.com=/a b", "IdB must be"},
        {"A.example.com=/a, a.example.com=/b", "entry \"a.example.com=/b\": listed twice"},
        {"[::1]:443=/a, [0:0::1]:443=/b", "listed twice"},
        {" , ", "empty list"},
    };
    saef_conf *c = saef_conf_new();
    char err[1024], idb[64];

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT(!saef_conf_target(c, "in-cse.example.com", idb, sizeof(idb)));
    CU_ASSERT(saef_conf_set(c, "targets",
                            " In-CSE.example.com = //sp.example.com/in-cse ,127.0.0.1:8443=/id-mn,"
                            "[::FFFF:10.0.0.1]:1=CAE1",
                            err, sizeof(err)));
    CU_ASSERT_STRING_EQUAL(saef_conf_str(c, SAEF_CONF_TARGETS),
                           "in-cse.example.com=//sp.example.com/in-cse,127.0.0.1:8443=/id-mn,"
                           "[::ffff:10.0.0.1]:1=CAE1");
    CU_ASSERT(saef_conf_target(c, "IN-cse.example.com", idb, sizeof(idb)));
    CU_ASSERT_STRING_EQUAL(idb, "//sp.example.com/in-cse");
    CU_ASSERT(saef_conf_target(c, "127.0.0.1:8443", idb, sizeof(idb)));
    CU_ASSERT_STRING_EQUAL(idb, "/id-mn");
    CU_ASSERT(!saef_conf_target(c, "127.0.0.1:844", idb, sizeof(idb)));
    CU_ASSERT(!saef_conf_target(c, "cse.example.com", idb, sizeof(idb)));
    CU_ASSERT(!saef_conf_target(c, "127.0.0.1:8443", idb, 6)); /* does not fit */
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        CU_ASSERT(!saef_conf_set(c, "targets", bad[i].value, err, sizeof(err)));
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "bad value for 'targets'"));
        if (strstr(err, bad[i].why) == NULL)
            fprintf(stderr, "\n%s: %s\n", bad[i].value, err);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, bad[i].why));
    }
    /* A refused value leaves the last good one. */
    CU_ASSERT(saef_conf_target(c, "127.0.0.1:8443", idb, sizeof(idb)));
    saef_conf_free(c);
}

/* check_file(LINES): saef_conf_file_check on a file whose provider "saef"
   (found through providers.2, a "x.saef" entry and identity) has LINES. */
static int check_file(const char *lines, saef_conf *c, char *err, size_t errlen)
{
    char path[sizeof(dir) + 16];
    FILE *f;

    snprintf(path, sizeof(path), "%s/conf.cnf", dir);
    if ((f = fopen(path, "w")) == NULL)
        return -2;
    fprintf(f,
            "openssl_conf = init\n[init]\nproviders.2 = provs\n[provs]\n"
            "x.other = saef_sect\n[saef_sect]\nx.identity = saef\n%s\n",
            lines);
    fclose(f);
    return saef_conf_file_check(path, "saef", NULL, NULL, c, err, errlen);
}

static void test_conf_file_names_an_unknown_key(void)
{
    saef_conf *c = saef_conf_new();
    char err[512];

    CU_ASSERT_PTR_NOT_NULL_FATAL(c);
    CU_ASSERT_EQUAL(check_file("module = /x.so\nactivate = 1\nsoft_load = 0\nrole = server", c, err,
                               sizeof(err)),
                    1);
    CU_ASSERT_EQUAL(saef_conf_int(c, SAEF_CONF_ROLE), SAEF_ROLE_SERVER);
    CU_ASSERT_EQUAL(check_file("require-psk = yes", c, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "unknown key 'require-psk' in [saef_sect]"));
    CU_ASSERT_EQUAL(check_file("Require_psk = yes", c, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(check_file("y.require_psk = yes", c, err, sizeof(err)), -1);
    CU_ASSERT_EQUAL(check_file("tls13 = perhaps", c, err, sizeof(err)), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "bad value for 'tls13'"));
    /* Without conf, values are not looked at. */
    CU_ASSERT_EQUAL(check_file("tls13 = perhaps", NULL, err, sizeof(err)), 1);
    CU_ASSERT_EQUAL(
        saef_conf_file_check("/nonexistent.cnf", "saef", NULL, NULL, NULL, err, sizeof(err)), 0);
    CU_ASSERT_EQUAL(ERR_peek_error(), 0);
    saef_conf_free(c);
}

/* saef-test-conf [WORD]: only the tests whose name holds WORD. */
int main(int argc, char **argv)
{
    static const CU_TestInfo tests[] = {
        SAEF_TEST(test_conf_new_holds_the_defaults),
        SAEF_TEST(test_conf_dup_is_independent),
        SAEF_TEST(test_conf_set_bad_value_leaves_the_old_one),
        SAEF_TEST(test_conf_from_provider_without_provider_changes_nothing),
        SAEF_TEST(test_conf_validates_and_names_the_key),
        SAEF_TEST(test_conf_bad_list_leaves_the_old_value),
        SAEF_TEST(test_conf_targets_parsed_strictly),
        SAEF_TEST(test_conf_file_names_an_unknown_key),
        CU_TEST_INFO_NULL,
    };

    return saef_unit_run_in(dir, "conf", tests, argc, argv);
}
