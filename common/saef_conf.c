/* saef's configuration table: names, defaults, strict validation. */
#include "saef_conf.h"
#include "saef_common.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <openssl/conf.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <openssl/provider.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Opaque to programs (saef_conf.h): only this file knows its layout. */
struct saef_conf {
    char val[SAEF_CONF_NKEYS][SAEF_CONF_VALUE_MAX]; /* normalised; "" = unset */
};

typedef enum { T_PATH, T_TEXT, T_HOSTS, T_BOOL, T_ENUM, T_INT, T_MAF, T_ID, T_TARGETS } conf_type;

static const char *const roles[] = {"off", "server", "client", "both", NULL};
static const char *const refuses[] = {"wrong_key", "unknown_psk_identity", NULL};
static const char *const logs[] = {"stderr", "syslog", "none", NULL};
static const char *const levels[] = {"error", "warning", "info", "debug", NULL};

static const struct {
    const char *name;
    conf_type type;
    const char *def;
    const char *const *choices; /* T_ENUM */
    long min, max;              /* T_INT */
} keys[SAEF_CONF_NKEYS] = {
    [SAEF_CONF_STORE] = {"store", T_PATH, "/var/lib/saef/keys.db", NULL, 0, 0},
    [SAEF_CONF_STORE_GROUP_READ] = {"store_group_read", T_BOOL, "no", NULL, 0, 0},
    [SAEF_CONF_ENTITY_ID] = {"entity_id", T_TEXT, "", NULL, 0, 0},
    [SAEF_CONF_SNI] = {"sni", T_HOSTS, "", NULL, 0, 0},
    [SAEF_CONF_ROLE] = {"role", T_ENUM, "off", roles, 0, 0},
    [SAEF_CONF_REFUSE] = {"refuse", T_ENUM, "wrong_key", refuses, 0, 0},
    [SAEF_CONF_REQUIRE_PSK] = {"require_psk", T_BOOL, "no", NULL, 0, 0},
    [SAEF_CONF_TLS13] = {"tls13", T_BOOL, "yes", NULL, 0, 0},
    [SAEF_CONF_LOG] = {"log", T_ENUM, "stderr", logs, 0, 0},
    [SAEF_CONF_LOG_LEVEL] = {"log_level", T_ENUM, "info", levels, 0, 0},
    [SAEF_CONF_MAF] = {"maf", T_MAF, "", NULL, 0, 0},
    [SAEF_CONF_MAF_KMID] = {"maf_kmid", T_ID, "", NULL, 0, 0},
    [SAEF_CONF_MAF_TIMEOUT] = {"maf_timeout", T_INT, "2000", NULL, 1, 60000},
    [SAEF_CONF_MAF_NEGATIVE_TTL] = {"maf_negative_ttl", T_INT, "30", NULL, 0, 86400},
    [SAEF_CONF_MAF_REVALIDATE] = {"maf_revalidate", T_INT, "300", NULL, 0, 86400},
    [SAEF_CONF_MAF_RATE] = {"maf_rate", T_INT, "20", NULL, 1, 100000},
    [SAEF_CONF_MAF_SOURCE_RATE] = {"maf_source_rate", T_INT, "5", NULL, 1, 100000},
    [SAEF_CONF_KC_HALF] = {"kc_half", T_BOOL, "no", NULL, 0, 0},
    [SAEF_CONF_KC_SUID] = {"kc_suid", T_INT, SAEF_STR(SAEF_SUID_MAF_SAEF), NULL, 0, 99},
    [SAEF_CONF_TARGETS] = {"targets", T_TARGETS, "", NULL, 0, 0},
};

const char *saef_conf_name(SAEF_CONF_KEY key)
{
    return (unsigned)key < SAEF_CONF_NKEYS ? keys[key].name : NULL;
}

saef_conf *saef_conf_new(void)
{
    saef_conf *conf = malloc(sizeof(*conf));

    if (conf == NULL)
        return NULL;
    for (int k = 0; k < SAEF_CONF_NKEYS; k++)
        snprintf(conf->val[k], sizeof(conf->val[k]), "%s", keys[k].def);
    return conf;
}

saef_conf *saef_conf_dup(const saef_conf *conf)
{
    saef_conf *copy;

    if (conf == NULL)
        return saef_conf_new();
    if ((copy = malloc(sizeof(*copy))) != NULL)
        memcpy(copy, conf, sizeof(*copy));
    return copy;
}

void saef_conf_free(saef_conf *conf)
{
    free(conf);
}

static int bad(char *err, size_t errlen, const char *name, const char *value, const char *why)
{
    if (err != NULL)
        snprintf(err, errlen, "bad value for '%s': \"%.200s\" (%s)", name, value, why);
    return 0;
}

static int printable_token(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!isgraph((unsigned char)*s))
            return 0;
    return 1;
}

/* Host names separated by commas and optional spaces; normalised to "a,b". */
static int norm_hosts(const char *v, char *out, size_t outlen)
{
    char tmp[SAEF_CONF_VALUE_MAX], *save = NULL;
    size_t used = 0;

    snprintf(tmp, sizeof(tmp), "%s", v);
    out[0] = '\0';
    for (char *h = strtok_r(tmp, ", \t", &save); h != NULL; h = strtok_r(NULL, ", \t", &save)) {
        for (const char *p = h; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.')
                return 0;
        used += (size_t)snprintf(out + used, outlen - used, "%s%s", used ? "," : "", h);
        if (used >= outlen)
            return 0;
    }
    return used > 0;
}

/* A MAF is reached over HTTPS or over CoAP/DTLS (coaps://). */
static int maf_url(const char *url)
{
    return (strncmp(url, "https://", 8) == 0 || strncmp(url, "coaps://", 8) == 0) && url[8] != '\0';
}

/* "FQDN URL[, FQDN URL...]"; normalised to "fqdn url,fqdn url". */
static int norm_maf(const char *v, char *out, size_t outlen, const char **why)
{
    char tmp[SAEF_CONF_VALUE_MAX], *save = NULL;
    size_t used = 0;

    snprintf(tmp, sizeof(tmp), "%s", v);
    out[0] = '\0';
    for (char *e = strtok_r(tmp, ",", &save); e != NULL; e = strtok_r(NULL, ",", &save)) {
        char fqdn[256], url[SAEF_CONF_VALUE_MAX], extra;
        if (sscanf(e, " %255s %1023s %c", fqdn, url, &extra) != 2) {
            *why = "each entry is 'MAF-FQDN https://host:port' (or coaps://host:port)";
            return 0;
        }
        char probe[300];
        snprintf(probe, sizeof(probe), "x@%s", fqdn);
        if (strlen(fqdn) > SAEF_MAF_FQDN_MAX || !saef_id_is_conforming(probe, strlen(probe))) {
            *why =
                "MAF-FQDN must be a DNS name of at most " SAEF_STR(SAEF_MAF_FQDN_MAX) " characters";
            return 0;
        }
        if (!maf_url(url)) {
            *why = "the MAF URL must start with https:// or coaps://";
            return 0;
        }
        used += (size_t)snprintf(out + used, outlen - used, "%s%s %s", used ? "," : "", fqdn, url);
        if (used >= outlen) {
            *why = "too long";
            return 0;
        }
    }
    if (used == 0)
        *why = "empty list";
    return used > 0;
}

/* In a normalised targets list; idb may be NULL (is it listed?). */
static int target_in(const char *list, const char *where, char *idb, size_t idb_len)
{
    size_t wl = strlen(where);

    for (const char *p = list; *p;) {
        const char *eq = strchr(p, '='), *end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        if (eq != NULL && eq < end && (size_t)(eq - p) == wl && strncasecmp(p, where, wl) == 0) {
            if (idb == NULL)
                return 1;
            if ((size_t)(end - eq - 1) >= idb_len)
                return 0;
            memcpy(idb, eq + 1, (size_t)(end - eq - 1));
            idb[end - eq - 1] = '\0';
            return 1;
        }
        p = *end ? end + 1 : end;
    }
    return 0;
}

/* A target's place: a host name (lower-cased), or an address with its port,
   written as inet_ntop writes the peer's address. 1, or 0 with why set. */
static int norm_where(const char *w, char *out, size_t outlen, const char **why)
{
    char addr[INET6_ADDRSTRLEN + 2], *end;
    const char *port = strrchr(w, ':');
    unsigned char bin[16];
    long n;
    int v6 = w[0] == '[';

    if (port == NULL) {
        if (inet_pton(AF_INET, w, bin) == 1) {
            *why = "an address needs its port (A.B.C.D:PORT)";
            return 0;
        }
        if (strlen(w) > 253 || strspn(w, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                         "0123456789-.") != strlen(w)) {
            *why = "not a host name, A.B.C.D:PORT or [IPV6]:PORT";
            return 0;
        }
        snprintf(out, outlen, "%s", w);
        for (char *c = out; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        return 1;
    }
    if ((size_t)(port - w) >= sizeof(addr) || (v6 && (port - w < 3 || port[-1] != ']'))) {
        *why = "not a host name, A.B.C.D:PORT or [IPV6]:PORT";
        return 0;
    }
    memcpy(addr, w + v6, (size_t)(port - w) - 2 * v6);
    addr[port - w - 2 * v6] = '\0';
    errno = 0;
    n = strtol(port + 1, &end, 10);
    if (inet_pton(v6 ? AF_INET6 : AF_INET, addr, bin) != 1) {
        *why = strchr(addr, ':') != NULL && !v6 ? "write an IPv6 address as [IPV6]:PORT"
               : isalpha((unsigned char)addr[0]) && !v6
                   ? "a host name is matched without a port (SNI carries none)"
                   : "not an IP address";
        return 0;
    }
    if (!isdigit((unsigned char)port[1]) || *end != '\0' || errno != 0 || n < 1 || n > 65535) {
        *why = "the port must be 1 to 65535";
        return 0;
    }
    inet_ntop(v6 ? AF_INET6 : AF_INET, bin, addr, sizeof(addr));
    snprintf(out, outlen, v6 ? "[%s]:%ld" : "%s:%ld", addr, n);
    return 1;
}

/* "WHERE=IdB[, WHERE=IdB...]"; normalised to "where=IdB,where=IdB". why
   names the entry that is wrong (in ebuf). */
static int norm_targets(const char *v, char *out, size_t outlen, char *ebuf, size_t elen,
                        const char **why)
{
    char tmp[SAEF_CONF_VALUE_MAX], where[300], *save = NULL;
    size_t used = 0;

    snprintf(tmp, sizeof(tmp), "%s", v);
    out[0] = '\0';
    for (char *e = strtok_r(tmp, ",", &save); e != NULL; e = strtok_r(NULL, ",", &save)) {
        char *eq, *id = NULL, *end;
        const char *what = NULL;
        e += strspn(e, " \t");
        for (end = e + strlen(e); end > e && isspace((unsigned char)end[-1]); end--)
            ;
        *end = '\0';
        if (*e == '\0')
            continue;
        if ((eq = strchr(e, '=')) == NULL) {
            what = "each entry is HOST=IdB or ADDRESS:PORT=IdB";
        } else {
            for (*eq = '\0', end = eq; end > e && isspace((unsigned char)end[-1]); end--)
                end[-1] = '\0';
            id = eq + 1 + strspn(eq + 1, " \t");
            if (!norm_where(e, where, sizeof(where), &what))
                ; /* what says why */
            else if (!printable_token(id) || strlen(id) > SAEF_KS_ENTITY_MAX)
                what = "IdB must be a CSE-ID or AE-ID: printable, no spaces, at most 255 "
                       "characters";
            else if (target_in(out, where, NULL, 0))
                what = "listed twice";
            else {
                used += (size_t)snprintf(out + used, outlen - used, "%s%s=%s", used ? "," : "",
                                         where, id);
                if (used >= outlen)
                    what = "too long";
            }
        }
        if (what != NULL) {
            snprintf(ebuf, elen, "entry \"%.200s%s%.200s\": %s", e, eq ? "=" : "", eq ? id : "",
                     what);
            *why = ebuf;
            return 0;
        }
    }
    if (used == 0)
        *why = "empty list";
    return used > 0;
}

int saef_conf_set(saef_conf *conf, const char *name, const char *value, char *err, size_t errlen)
{
    int k;
    char *out, norm[SAEF_CONF_VALUE_MAX];
    const char *why = NULL;

    for (k = 0; k < SAEF_CONF_NKEYS; k++)
        if (strcmp(name, keys[k].name) == 0)
            break;
    if (k == SAEF_CONF_NKEYS) {
        if (err != NULL)
            snprintf(err, errlen, "unknown key '%.100s' (see saef.cnf(5))", name);
        return 0;
    }
    if (value == NULL)
        value = "";
    if (strlen(value) >= SAEF_CONF_VALUE_MAX)
        return bad(err, errlen, name, value, "too long");
    out = conf->val[k];
    switch (keys[k].type) {
    case T_PATH:
        if (value[0] != '/')
            return bad(err, errlen, name, value, "an absolute path is required");
        break;
    case T_TEXT:
        if (!printable_token(value) || strlen(value) > SAEF_KS_ENTITY_MAX)
            return bad(err, errlen, name, value,
                       "a CSE-ID or AE-ID: printable, no spaces, at most 255 characters");
        break;
    case T_ID:
        if (!saef_id_is_conforming(value, strlen(value)))
            return bad(err, errlen, name, value, "an identity 'relative@fqdn' (TS-0003 10.6)");
        break;
    /* Lists are normalised into norm, so a bad entry leaves the old value. */
    case T_HOSTS:
        if (!norm_hosts(value, norm, sizeof(norm)))
            return bad(err, errlen, name, value, "a comma-separated list of host names");
        memcpy(out, norm, sizeof(norm));
        return 1;
    case T_MAF:
        if (!norm_maf(value, norm, sizeof(norm), &why))
            return bad(err, errlen, name, value, why);
        memcpy(out, norm, sizeof(norm));
        return 1;
    case T_TARGETS: {
        char ebuf[600];
        if (!norm_targets(value, norm, sizeof(norm), ebuf, sizeof(ebuf), &why))
            return bad(err, errlen, name, value, why);
        memcpy(out, norm, sizeof(norm));
        return 1;
    }
    case T_BOOL:
        if (!strcasecmp(value, "yes") || !strcasecmp(value, "true") || !strcmp(value, "1") ||
            !strcasecmp(value, "on"))
            value = "yes";
        else if (!strcasecmp(value, "no") || !strcasecmp(value, "false") || !strcmp(value, "0") ||
                 !strcasecmp(value, "off"))
            value = "no";
        else
            return bad(err, errlen, name, value, "use yes or no");
        break;
    case T_ENUM: {
        int i;
        char choices[128] = "";
        for (i = 0; keys[k].choices[i] != NULL; i++)
            if (strcmp(value, keys[k].choices[i]) == 0)
                break;
        if (keys[k].choices[i] == NULL) {
            for (int j = 0; keys[k].choices[j] != NULL; j++)
                snprintf(choices + strlen(choices), sizeof(choices) - strlen(choices), "%s%s",
                         j ? ", " : "use ", keys[k].choices[j]);
            return bad(err, errlen, name, value, choices);
        }
        break;
    }
    case T_INT: {
        char *end, range[64];
        long n;
        errno = 0;
        n = strtol(value, &end, 10);
        snprintf(range, sizeof(range), "an integer from %ld to %ld", keys[k].min, keys[k].max);
        if (errno != 0 || end == value || *end != '\0' || n < keys[k].min || n > keys[k].max)
            return bad(err, errlen, name, value, range);
        snprintf(out, SAEF_CONF_VALUE_MAX, "%ld", n);
        return 1;
    }
    }
    snprintf(out, SAEF_CONF_VALUE_MAX, "%s", value);
    return 1;
}

const char *saef_conf_str(const saef_conf *conf, SAEF_CONF_KEY key)
{
    return (unsigned)key < SAEF_CONF_NKEYS ? conf->val[key] : "";
}

long saef_conf_int(const saef_conf *conf, SAEF_CONF_KEY key)
{
    const char *v = saef_conf_str(conf, key);

    if ((unsigned)key >= SAEF_CONF_NKEYS)
        return 0;
    switch (keys[key].type) {
    case T_BOOL: return strcmp(v, "yes") == 0;
    case T_ENUM:
        for (int i = 0; keys[key].choices[i] != NULL; i++)
            if (strcmp(v, keys[key].choices[i]) == 0)
                return i;
        return 0;
    case T_INT: return strtol(v, NULL, 10);
    default: return 0;
    }
}

int saef_conf_maf_url(const saef_conf *conf, const char *fqdn, size_t fqdn_len, char *url,
                      size_t url_len)
{
    const char *p = conf->val[SAEF_CONF_MAF];

    while (*p) {
        const char *sp = strchr(p, ' '), *end = strchr(p, ',');
        if (end == NULL)
            end = p + strlen(p);
        if (sp != NULL && sp < end && (size_t)(sp - p) == fqdn_len &&
            strncasecmp(p, fqdn, fqdn_len) == 0) {
            if ((size_t)(end - sp - 1) >= url_len)
                return 0;
            memcpy(url, sp + 1, (size_t)(end - sp - 1));
            url[end - sp - 1] = '\0';
            return 1;
        }
        p = *end ? end + 1 : end;
    }
    return 0;
}

int saef_conf_target(const saef_conf *conf, const char *where, char *idb, size_t idb_len)
{
    return target_in(conf->val[SAEF_CONF_TARGETS], where, idb, idb_len);
}

int saef_conf_from_provider(OSSL_LIB_CTX *libctx, saef_conf *conf)
{
    OSSL_PARAM params[SAEF_CONF_NKEYS + 1];
    OSSL_PROVIDER *prov;
    saef_conf *got;
    int ok;

    if (!OSSL_PROVIDER_available(libctx, "saef"))
        return 0;
    /* Into a copy: a failure halfway leaves conf as it was. */
    if ((got = saef_conf_dup(conf)) == NULL)
        return -1;
    /* Already activated by the configuration: this only takes a reference. */
    if ((prov = OSSL_PROVIDER_load(libctx, "saef")) == NULL) {
        saef_conf_free(got);
        return -1;
    }
    for (int k = 0; k < SAEF_CONF_NKEYS; k++)
        params[k] =
            OSSL_PARAM_construct_utf8_string(keys[k].name, got->val[k], sizeof(got->val[k]));
    params[SAEF_CONF_NKEYS] = OSSL_PARAM_construct_end();
    ok = OSSL_PROVIDER_get_params(prov, params);
    OSSL_PROVIDER_unload(prov);
    if (ok)
        memcpy(conf, got, sizeof(*conf));
    saef_conf_free(got);
    return ok ? 1 : -1;
}

/* OpenSSL strips a "prefix." from these names (crypto/provider_conf.c), not
   from the parameters it passes on. */
static const char *skip_dot(const char *name)
{
    const char *dot = strchr(name, '.');

    return dot != NULL ? dot + 1 : name;
}

static int openssl_key(const char *name)
{
    static const char *const own[] = {"module", "activate", "identity", "soft_load", NULL};

    for (int i = 0; own[i] != NULL; i++)
        if (strcmp(skip_dot(name), own[i]) == 0)
            return 1;
    return 0;
}

static int saef_key(const char *name)
{
    for (int k = 0; k < SAEF_CONF_NKEYS; k++)
        if (strcmp(name, keys[k].name) == 0)
            return 1;
    return 0;
}

/* The section of provider prov in a providers section; NULL if none. */
static const char *provider_section(const CONF *cnf, STACK_OF(CONF_VALUE) *providers,
                                    const char *prov)
{
    for (int i = 0; i < sk_CONF_VALUE_num(providers); i++) {
        const CONF_VALUE *p = sk_CONF_VALUE_value(providers, i);
        STACK_OF(CONF_VALUE) *sect = NCONF_get_section(cnf, p->value);
        const char *name = skip_dot(p->name);

        for (int j = 0; j < sk_CONF_VALUE_num(sect); j++) {
            const CONF_VALUE *v = sk_CONF_VALUE_value(sect, j);
            if (strcmp(skip_dot(v->name), "identity") == 0)
                name = v->value;
        }
        if (sect != NULL && strcmp(name, prov) == 0)
            return p->value;
    }
    return NULL;
}

int saef_conf_file_check(const char *file, const char *prov,
                         int (*in_use)(const char *name, void *arg), void *arg, saef_conf *conf,
                         char *err, size_t errlen)
{
    CONF *cnf = NCONF_new(NULL);
    STACK_OF(CONF_VALUE) *init, *sect = NULL;
    const char *init_name, *name = NULL;
    int rc = 0;

    /* Whatever OpenSSL says about the file stays out of the caller's queue. */
    ERR_set_mark();
    if (cnf == NULL || file == NULL || NCONF_load(cnf, file, NULL) <= 0 ||
        (init_name = NCONF_get_string(cnf, NULL, "openssl_conf")) == NULL ||
        (init = NCONF_get_section(cnf, init_name)) == NULL)
        goto done;
    /* Modules are named up to a last '.': "providers", "providers.2". */
    for (int i = 0; i < sk_CONF_VALUE_num(init) && name == NULL; i++) {
        const CONF_VALUE *m = sk_CONF_VALUE_value(init, i);
        const char *dot = strrchr(m->name, '.');
        size_t len = dot != NULL ? (size_t)(dot - m->name) : strlen(m->name);
        if (len == 9 && strncmp(m->name, "providers", 9) == 0)
            name = provider_section(cnf, NCONF_get_section(cnf, m->value), prov);
    }
    if (name == NULL || (sect = NCONF_get_section(cnf, name)) == NULL)
        goto done;
    rc = 1;
    for (int i = 0; i < sk_CONF_VALUE_num(sect) && rc == 1; i++) {
        const CONF_VALUE *v = sk_CONF_VALUE_value(sect, i);
        if (openssl_key(v->name))
            continue;
        if (!saef_key(v->name)) {
            if (in_use != NULL && !in_use(v->name, arg))
                continue;
            if (err != NULL)
                snprintf(err, errlen,
                         "unknown key '%.100s' in [%.100s] of %.300s (see saef.cnf(5))", v->name,
                         name, file);
            rc = -1;
        } else if (conf != NULL && !saef_conf_set(conf, v->name, v->value, err, errlen)) {
            rc = -1;
        }
    }
done:
    ERR_pop_to_mark();
    NCONF_free(cnf);
    return rc;
}
