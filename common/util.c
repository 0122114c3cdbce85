/* Identity, hex, time and path helpers shared by every part (saef_common.h). */
#include "saef_common.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ASCII only, whatever the program's locale says a letter is. */
static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int is_alnum(int c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_relchar(int c)
{
    return is_alnum(c) || c == '.' || c == '_' || c == '-';
}

/* DNS name: labels of [A-Za-z0-9-], 1..63, not starting or ending with '-'. */
static int is_fqdn(const char *s, size_t len)
{
    size_t label = 0;

    if (len == 0 || len > 253)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.') {
            if (label == 0 || s[i - 1] == '-')
                return 0;
            label = 0;
            continue;
        }
        if (!is_alnum(c) && c != '-')
            return 0;
        if (label == 0 && c == '-')
            return 0;
        if (++label > 63)
            return 0;
    }
    return label > 0 && s[len - 1] != '-';
}

int saef_id_is_conforming(const char *id, size_t id_len)
{
    const char *at;

    if (id == NULL || id_len == 0 || id_len > SAEF_KS_ID_MAX)
        return 0;
    at = memchr(id, '@', id_len);
    if (at == NULL || at == id)
        return 0;
    for (const char *p = id; p < at; p++)
        if (!is_relchar((unsigned char)*p))
            return 0;
    return is_fqdn(at + 1, id_len - (size_t)(at - id) - 1);
}

int saef_id_parse_maf(const char *id, size_t id_len, const char **fqdn,
                      unsigned char kcid[SAEF_KCID_LEN])
{
    enum { AT = SAEF_KCID_HEX_LEN };
    unsigned char tmp[SAEF_KCID_LEN];

    if (id == NULL || id_len < AT + 2 || id_len > SAEF_KS_ID_MAX || id[AT] != '@')
        return 0;
    if (saef_hex_decode(id, AT, tmp, sizeof(tmp)) != SAEF_KCID_LEN)
        return 0;
    if (!is_fqdn(id + AT + 1, id_len - AT - 1))
        return 0;
    if (fqdn != NULL)
        *fqdn = id + AT + 1;
    if (kcid != NULL)
        memcpy(kcid, tmp, SAEF_KCID_LEN);
    return 1;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int saef_hex_decode(const char *hex, size_t hex_len, unsigned char *out, size_t out_max)
{
    if (hex_len % 2 != 0 || hex_len / 2 > out_max)
        return -1;
    for (size_t i = 0; i < hex_len; i += 2) {
        int hi = hexval((unsigned char)hex[i]), lo = hexval((unsigned char)hex[i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i / 2] = (unsigned char)(hi << 4 | lo);
    }
    return (int)(hex_len / 2);
}

void saef_hex_encode(const unsigned char *in, size_t len, char *out)
{
    static const char digits[] = "0123456789ABCDEF";

    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * len] = '\0';
}

/* 9999-12-31T23:59:59Z: the last second both formats can write back. */
#define TIME_MAX INT64_C(253402300799)

/* n fixed-width decimal digits at *p; advances *p. -1 if not digits. */
static int digits(const char **p, int n)
{
    int v = 0;

    for (int i = 0; i < n; i++) {
        if (!is_digit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    return v;
}

static int days_in_month(int y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

    return m == 2 && leap ? 29 : d[m - 1];
}

static int skip_fraction(const char **p, char sep)
{
    if (**p != sep)
        return 1;
    (*p)++;
    if (!is_digit((unsigned char)**p))
        return 0;
    while (is_digit((unsigned char)**p))
        (*p)++;
    return 1;
}

static int to_time(int y, int mo, int d, int h, int mi, int s, int64_t *out)
{
    struct tm tm = {0};

    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
        s > 60)
        return 0;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    *out = (int64_t)timegm(&tm);
    return 1;
}

static int parse_relative(const char *p, int64_t now, int64_t *out)
{
    int64_t n = 0, unit;

    if (!is_digit((unsigned char)*p))
        return 0;
    while (is_digit((unsigned char)*p)) {
        if (n > INT64_C(100000000000))
            return 0;
        n = n * 10 + (*p++ - '0');
    }
    switch (*p++) {
    case 's': unit = 1; break;
    case 'm': unit = 60; break;
    case 'h': unit = 3600; break;
    case 'd': unit = 86400; break;
    case 'w': unit = 604800; break;
    default: return 0;
    }
    if (*p != '\0' || n == 0 || n > INT64_C(100000000000) / unit || now < 0 ||
        now > TIME_MAX - n * unit)
        return 0;
    *out = now + n * unit;
    return 1;
}

int saef_time_parse(const char *text, int64_t now, int64_t *out)
{
    const char *p = text;
    int y, mo, d, h, mi, s;
    int64_t t;

    if (text == NULL)
        return 0;
    if (*p == '+')
        return parse_relative(p + 1, now, out);
    if ((y = digits(&p, 4)) < 0)
        return 0;
    if (*p == '-') { /* RFC 3339 */
        p++;
        if ((mo = digits(&p, 2)) < 0 || *p++ != '-' || (d = digits(&p, 2)) < 0 ||
            (*p != 'T' && *p != 't') || (p++, h = digits(&p, 2)) < 0 || *p++ != ':' ||
            (mi = digits(&p, 2)) < 0 || *p++ != ':' || (s = digits(&p, 2)) < 0 ||
            !skip_fraction(&p, '.') || !to_time(y, mo, d, h, mi, s, &t))
            return 0;
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '+' ? 1 : -1, oh, om;
            if ((oh = digits(&p, 2)) < 0 || *p++ != ':' || (om = digits(&p, 2)) < 0 || oh > 23 ||
                om > 59)
                return 0;
            t -= sign * (oh * 3600 + om * 60);
        } else {
            return 0;
        }
    } else { /* oneM2M basic: YYYYMMDDTHHMMSS[,fraction], UTC */
        if ((mo = digits(&p, 2)) < 0 || (d = digits(&p, 2)) < 0 || *p++ != 'T' ||
            (h = digits(&p, 2)) < 0 || (mi = digits(&p, 2)) < 0 || (s = digits(&p, 2)) < 0 ||
            !skip_fraction(&p, ',') || !to_time(y, mo, d, h, mi, s, &t))
            return 0;
    }
    if (*p != '\0' || t < 0 || t > TIME_MAX)
        return 0;
    *out = t;
    return 1;
}

/* A time gmtime cannot express (past year 2^31) comes out as "". */
static void format(int64_t t, int onem2m, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (len == 0)
        return;
    if (gmtime_r(&tt, &tm) == NULL || (onem2m ? strftime(buf, len, "%Y%m%dT%H%M%S", &tm)
                                              : strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm)) == 0)
        buf[0] = '\0';
}

void saef_time_format(int64_t t, char *buf, size_t len)
{
    format(t, 0, buf, len);
}

void saef_time_format_onem2m(int64_t t, char *buf, size_t len)
{
    format(t, 1, buf, len);
}

static int unsafe(char *err, size_t errlen, const char *what, const char *path, const char *why,
                  const char *fix)
{
    snprintf(err, errlen, "%s %s %s: %s %s", what, path, why, fix, path);
    return 0;
}

int saef_path_is_safe(const char *path, long owner, char *err, size_t errlen)
{
    char real[PATH_MAX], up[PATH_MAX], *d;
    struct stat st;

    /* What does not exist yet is judged by its nearest existing directory. */
    snprintf(up, sizeof(up), "%s", path);
    while (realpath(up, real) == NULL) {
        if (errno != ENOENT || strcmp(up, ".") == 0 || strcmp(up, "/") == 0) {
            snprintf(err, errlen, "%s: %s", path, strerror(errno));
            return 0;
        }
        d = dirname(up);
        memmove(up, d, strlen(d) + 1);
    }
    for (;;) {
        if (stat(real, &st) != 0) {
            snprintf(err, errlen, "%s: %s", real, strerror(errno));
            return 0;
        }
        const char *what = S_ISDIR(st.st_mode) ? "directory" : "file";
        if (st.st_uid != 0 && st.st_uid != geteuid() && (long)st.st_uid != owner)
            return unsafe(err, errlen, what, real, "belongs to another user",
                          "chown root (or the user saef runs as)");
        if ((st.st_mode & 0022) && !(S_ISDIR(st.st_mode) && (st.st_mode & S_ISVTX)))
            return unsafe(err, errlen, what, real,
                          st.st_mode & 0002 ? "is writable by others" : "is writable by its group",
                          "chmod go-w");
        if (strcmp(real, "/") == 0)
            return 1;
        strcpy(up, real);
        strcpy(real, dirname(up));
    }
}

int saef_lock_path(const char *store, char *out, size_t outlen)
{
    int n = snprintf(out, outlen, "%s" SAEF_LOCK_SUFFIX, store);

    if (n < 0 || (size_t)n >= outlen) {
        if (outlen > 0)
            out[0] = '\0';
        return 0;
    }
    return 1;
}

static int escaped_plain(unsigned char c)
{
    return c > 0x20 && c < 0x7f && c != '"' && c != '\\';
}

const char *saef_escape(const void *in, size_t len, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = in;
    size_t need = 0, o = 0, i;

    if (outlen == 0)
        return out;
    for (i = 0; i < len; i++)
        need += escaped_plain(p[i]) ? 1 : 4;
    /* Cut: room for "..." and the NUL after the last whole byte. */
    for (i = 0; i < len; i++) {
        size_t n = escaped_plain(p[i]) ? 1 : 4;
        if (need >= outlen && o + n + 4 > outlen)
            break;
        if (n == 1) {
            out[o++] = (char)p[i];
        } else {
            out[o++] = '\\';
            out[o++] = 'x';
            out[o++] = hex[p[i] >> 4];
            out[o++] = hex[p[i] & 15];
        }
    }
    if (i < len && o + 4 <= outlen) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}
