/* CUnit tests of the shared helpers (common/util.c, saef_common.h). */
#include "unit.h"
#include "saef_common.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void test_identity_syntax(void)
{
    static const char *good[] = {"a@b.c", "dev-1_x.y@sp.example.com", "A@localhost", "._-@a-b.c",
                                 "0@0.0", "x@xn--bcher-kva.example"};
    static const char *bad[] = {"a",      "@b.c",    "a@",           "a b@c.d",       "a@b..c",
                                "a@-b.c", "a@b@c.d", "a@b.c-",       "a@b_c.d",       "",
                                "a@b.c.", "a@.b.c",  "\xc3\xa4@b.c", "a@b\xc3\xa4.c", "a:b@c.d",
                                "a@b/c",  "a@b.c "};
    char longid[140], label[80];

    for (size_t i = 0; i < sizeof(good) / sizeof(*good); i++)
        CU_ASSERT(saef_id_is_conforming(good[i], strlen(good[i])));
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        CU_ASSERT(!saef_id_is_conforming(bad[i], strlen(bad[i])));
    CU_ASSERT(!saef_id_is_conforming("a@b\0c", 5)); /* a NUL inside */
    CU_ASSERT(!saef_id_is_conforming(NULL, 0));
    memset(longid, 'a', sizeof(longid));
    memcpy(longid + 124, "@b.c", 4);
    CU_ASSERT(saef_id_is_conforming(longid, 128));
    memcpy(longid + 125, "@b.c", 4);
    CU_ASSERT(!saef_id_is_conforming(longid, 129));
    /* DNS labels: 63 bytes at most. */
    memset(label, 'l', sizeof(label));
    memcpy(label, "a@", 2);
    memcpy(label + 65, ".c", 2);
    CU_ASSERT(saef_id_is_conforming(label, 67));
    label[65] = 'l';
    memcpy(label + 66, ".c", 2);
    CU_ASSERT(!saef_id_is_conforming(label, 68));
}

static void test_maf_identity_parsing(void)
{
    const char *ok = "000102030405060708090A0B0C0D0E0f@maf.example.com", *fqdn;
    unsigned char kcid[16];

    CU_ASSERT(saef_id_parse_maf(ok, strlen(ok), &fqdn, kcid));
    CU_ASSERT_STRING_EQUAL(fqdn, "maf.example.com");
    CU_ASSERT_EQUAL(kcid[0], 0x00);
    CU_ASSERT_EQUAL(kcid[15], 0x0f);
    CU_ASSERT(saef_id_parse_maf(ok, strlen(ok), NULL, NULL));
    static const char *bad[] = {
        "000102030405060708090A0B0C0D0E0@maf.example.com",   /* 31 hex */
        "000102030405060708090A0B0C0D0E0FF@maf.example.com", /* 33 hex */
        "G00102030405060708090A0B0C0D0E0F@maf.example.com",  /* not hex */
        "000102030405060708090A0B0C0D0E0F@",                 /* no FQDN */
        "000102030405060708090A0B0C0D0E0F@-maf.example.com", /* bad FQDN */
        "000102030405060708090A0B0C0D0E0F@maf..example.com",
        "000102030405060708090A0B0C0D0E0F@maf@example.com",
        "000102030405060708090A0B0C0D0E0Fmaf.example.com",
        "dev1@sp.example.com",
        "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        CU_ASSERT(!saef_id_parse_maf(bad[i], strlen(bad[i]), NULL, NULL));
    /* 129 bytes in all. */
    char longid[140];
    memcpy(longid, ok, 33);
    memset(longid + 33, 'a', 96);
    for (int i = 33 + 60; i < 129; i += 60)
        longid[i] = '.';
    CU_ASSERT(saef_id_parse_maf(longid, 128, NULL, NULL));
    CU_ASSERT(!saef_id_parse_maf(longid, 129, NULL, NULL));
}

static void test_time_parsing(void)
{
    int64_t t, now = 1700000000;

    CU_ASSERT(saef_time_parse("2026-11-24T12:00:00Z", now, &t) && t == 1795521600);
    CU_ASSERT(saef_time_parse("2026-11-24T14:00:00+02:00", now, &t) && t == 1795521600);
    CU_ASSERT(saef_time_parse("2026-11-24T09:30:00-02:30", now, &t) && t == 1795521600);
    CU_ASSERT(saef_time_parse("2026-11-24T12:00:00-00:00", now, &t) && t == 1795521600);
    CU_ASSERT(saef_time_parse("2026-11-24T12:00:00.250z", now, &t) && t == 1795521600);
    CU_ASSERT(saef_time_parse("2026-11-24t12:00:00.123456789+00:00", now, &t) && t == 1795521600);
    CU_ASSERT(saef_time_parse("20261124T120000", now, &t) && t == 1795521600);
    CU_ASSERT(saef_time_parse("20261124T120000,5", now, &t) && t == 1795521600);
    CU_ASSERT(saef_time_parse("1970-01-01T00:00:00Z", now, &t) && t == 0);
    CU_ASSERT(saef_time_parse("20280229T000000", now, &t) && t == 1835395200);
    CU_ASSERT(saef_time_parse("2000-02-29T00:00:00Z", now, &t) && t == 951782400);
    CU_ASSERT(saef_time_parse("9999-12-31T23:59:59Z", now, &t) && t == INT64_C(253402300799));
    CU_ASSERT(saef_time_parse("+30s", now, &t) && t == now + 30);
    CU_ASSERT(saef_time_parse("+5m", now, &t) && t == now + 300);
    CU_ASSERT(saef_time_parse("+1h", now, &t) && t == now + 3600);
    CU_ASSERT(saef_time_parse("+30d", now, &t) && t == now + 30 * 86400);
    CU_ASSERT(saef_time_parse("+2w", now, &t) && t == now + 14 * 86400);
    CU_ASSERT(saef_time_parse("+007h", now, &t) && t == now + 7 * 3600);
    static const char *bad[] = {
        /* calendar */
        "20261324T120000", "20260230T000000", "20270229T000000", "21000229T000000",
        "20261100T120000", "20261124T240000", "20261124T126000", "20261124T120061",
        "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-04-31T00:00:00Z",
        "1969-12-31T23:59:59Z", "1970-01-01T00:30:00+01:00",
        /* past 9999-12-31T23:59:59Z, which neither format can write (fuzz_time) */
        "9999-12-31T23:59:60Z", "99991231T235960", "9999-12-31T23:59:59-00:01",
        /* syntax */
        "2026-11-24T12:00:00", "2026-11-24T12:00:00Zjunk", "2026-11-24 12:00:00Z",
        "2026-11-24T12:00Z", "2026-11-24T12:00:00.Z", "2026-11-24T12:00:00+0200",
        "2026-11-24T12:00:00+25:00", "2026-11-24T12:00:00+02:60", "2026-1-24T12:00:00Z",
        "20261124T120000,", "20261124T120000Z", "20261124120000", "20261124T1200",
        "20261124T120000.5", "20261124T120000 ", " 20261124T120000", "tomorrow", "",
        /* relative */
        "+0h", "+5x", "+", "+1", "+h", "+-1h", "-1h", "+1hx", "+1.5h", "+ 1h",
        "+99999999999999999d", "+9223372036854775807s", "+100000000000w"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        t = 42;
        CU_ASSERT(!saef_time_parse(bad[i], now, &t));
        CU_ASSERT_EQUAL(t, 42); /* untouched */
    }
    CU_ASSERT(!saef_time_parse(NULL, now, &t));
    CU_ASSERT(!saef_time_parse("+1s", INT64_MAX, &t)); /* no overflow */
    CU_ASSERT(!saef_time_parse("+1s", INT64_C(253402300799), &t));
}

static void test_time_format_round_trip(void)
{
    char buf[32];
    int64_t t;

    saef_time_format(1795521600, buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "2026-11-24T12:00:00Z");
    CU_ASSERT(saef_time_parse(buf, 0, &t) && t == 1795521600);
    saef_time_format_onem2m(1795521600, buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "20261124T120000");
    CU_ASSERT(saef_time_parse(buf, 0, &t) && t == 1795521600);
    saef_time_format(0, buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "1970-01-01T00:00:00Z");
    /* Too small a buffer or an impossible time: "", never garbage. */
    saef_time_format(1795521600, buf, 10);
    CU_ASSERT_STRING_EQUAL(buf, "");
    saef_time_format(INT64_MAX, buf, sizeof(buf));
    CU_ASSERT_STRING_EQUAL(buf, "");
}

static void test_hex(void)
{
    unsigned char out[4];
    char hex[9];

    CU_ASSERT_EQUAL(saef_hex_decode("00aAfF10", 8, out, sizeof(out)), 4);
    CU_ASSERT(out[0] == 0x00 && out[1] == 0xAA && out[2] == 0xFF && out[3] == 0x10);
    saef_hex_encode(out, 4, hex);
    CU_ASSERT_STRING_EQUAL(hex, "00AAFF10");
    saef_hex_encode(out, 0, hex);
    CU_ASSERT_STRING_EQUAL(hex, "");
    CU_ASSERT_EQUAL(saef_hex_decode("", 0, out, sizeof(out)), 0);
    CU_ASSERT_EQUAL(saef_hex_decode("123", 3, out, sizeof(out)), -1);
    CU_ASSERT_EQUAL(saef_hex_decode("zz", 2, out, sizeof(out)), -1);
    CU_ASSERT_EQUAL(saef_hex_decode("0g", 2, out, sizeof(out)), -1);
    CU_ASSERT_EQUAL(saef_hex_decode("0 11", 4, out, sizeof(out)), -1);
    CU_ASSERT_EQUAL(saef_hex_decode("0x11", 4, out, sizeof(out)), -1);
    CU_ASSERT_EQUAL(saef_hex_decode("0011223344", 10, out, sizeof(out)), -1);
}

/* Every byte class: 0x21-0x7e pass but '"' and '\\'; space, controls,
   DEL, NUL, '"', '\\' and bytes from 0x80 become \\xNN in lower case. */
static void test_escape_every_byte_class(void)
{
    char out[SAEF_ESCAPED_MAX(256)], want[8];
    unsigned char all[256];

    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        saef_escape(&c, 1, out, sizeof(out));
        if (b > 0x20 && b < 0x7f && b != '"' && b != '\\')
            snprintf(want, sizeof(want), "%c", b);
        else
            snprintf(want, sizeof(want), "\\x%02x", b);
        if (strcmp(out, want) != 0)
            fprintf(stderr, "\nbyte 0x%02x: \"%s\"\n", b, out);
        CU_ASSERT_STRING_EQUAL(out, want);
    }
    for (int b = 0; b < 256; b++)
        all[b] = (unsigned char)b;
    saef_escape(all, sizeof(all), out, sizeof(out)); /* the documented size: no cut */
    CU_ASSERT_EQUAL(strlen(out), 4 * 0x21 + (0x7f - 0x21 - 2) + 2 * 4 + 4 * 0x81);
    CU_ASSERT_PTR_NULL(strstr(out, "..."));
    CU_ASSERT_STRING_EQUAL(saef_escape("a b\"c\\d\xc3\xa4\r\n", 11, out, sizeof(out)),
                           "a\\x20b\\x22c\\x5cd\\xc3\\xa4\\x0d\\x0a");
    CU_ASSERT_STRING_EQUAL(saef_escape("x\0y", 3, out, sizeof(out)), "x\\x00y");
    CU_ASSERT_STRING_EQUAL(saef_escape(NULL, 0, out, sizeof(out)), "");
}

/* Too small a buffer: whole bytes only, then "...", always terminated. */
static void test_escape_cuts_whole_bytes(void)
{
    char out[16];

    memset(out, 'Z', sizeof(out));
    CU_ASSERT_STRING_EQUAL(saef_escape("abcdefghijklmnopqrstuvwxyz", 26, out, 10), "abcdef...");
    CU_ASSERT_STRING_EQUAL(saef_escape("abc\ndef", 7, out, 10), "abc..."); /* \x0a... is 7 */
    CU_ASSERT_STRING_EQUAL(saef_escape("ab\n\ndef", 7, out, 10), "ab\\x0a...");
    CU_ASSERT_STRING_EQUAL(saef_escape("abcdefghi", 9, out, 10), "abcdefghi"); /* fits exactly */
    CU_ASSERT_STRING_EQUAL(saef_escape("abcdefghij", 10, out, 4), "...");
    CU_ASSERT_STRING_EQUAL(saef_escape("\n", 1, out, 5), "\\x0a");
    CU_ASSERT_STRING_EQUAL(saef_escape("\n", 1, out, 4), "...");
    CU_ASSERT_STRING_EQUAL(saef_escape("\n", 1, out, 2), "");
    out[0] = 'Z';
    saef_escape("abc", 3, out, 0); /* no room at all: nothing written */
    CU_ASSERT_EQUAL(out[0], 'Z');
}

static void test_lock_path(void)
{
    char out[64];

    CU_ASSERT(saef_lock_path("/var/lib/saef/keys.db", out, sizeof(out)));
    CU_ASSERT_STRING_EQUAL(out, "/var/lib/saef/keys.db-lock");
    CU_ASSERT(saef_lock_path("/k", out, strlen("/k") + sizeof(SAEF_LOCK_SUFFIX)));
    CU_ASSERT_STRING_EQUAL(out, "/k-lock");
    CU_ASSERT(!saef_lock_path("/k", out, strlen("/k") + sizeof(SAEF_LOCK_SUFFIX) - 1));
    CU_ASSERT_STRING_EQUAL(out, "");
}

/* saef-test-common [WORD]: only the tests whose name holds WORD. */
int main(int argc, char **argv)
{
    static const CU_TestInfo tests[] = {
        SAEF_TEST(test_identity_syntax),
        SAEF_TEST(test_maf_identity_parsing),
        SAEF_TEST(test_time_parsing),
        SAEF_TEST(test_time_format_round_trip),
        SAEF_TEST(test_hex),
        SAEF_TEST(test_escape_every_byte_class),
        SAEF_TEST(test_escape_cuts_whole_bytes),
        SAEF_TEST(test_lock_path),
        CU_TEST_INFO_NULL,
    };

    return saef_unit_run("common", tests, NULL, NULL, argc, argv);
}
