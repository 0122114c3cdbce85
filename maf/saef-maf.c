/*
 * saef-maf: Entity A's side of the MAF-based SAEF (TS-0003 8.2.2.3): register
 * a connection key Kc for one target at the MAF, update or deregister it.
 * The kc record it stores is what the client shim offers to the target.
 */
#include "maf-answer.h"
#include "maf-client.h"
#include "saef_common.h"

#include <getopt.h>
#include <stdarg.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

enum { EXIT_NOTFOUND = 1, EXIT_USAGE = 2, EXIT_STORE = 3, EXIT_MAF = 4 };

static const char usage[] =
    "usage: saef-maf [-s STORE] register --maf URL --target IDB [--kmid KmID]\n"
    "                [--expires TIME] [--admin-fqdn FQDN] [--label LABEL]...\n"
    "       saef-maf [-s STORE] update --maf URL --key KEY-ID [--kmid KmID]\n"
    "                [--expires TIME] [--target IDB]\n"
    "       saef-maf [-s STORE] deregister --maf URL --key KEY-ID [--kmid KmID]\n"
    "       saef-maf [-s STORE] client-register --maf URL [--admin-fqdn FQDN]\n"
    "                [--expires TIME] [--label LABEL]... [--kmid KmID]\n"
    "       saef-maf [-s STORE] client-config|client-deregister --maf URL --reg ID\n"
    "       saef-maf [-s STORE] client-update --maf URL --reg ID [--expires TIME]\n"
    "                [--label LABEL]...\n"
    "URL: https://HOST:PORT or coaps://HOST:PORT (CoAP over DTLS).\n"
    "STORE: -s, else $SAEF_STORE. TIME: +N[smhdw], RFC 3339 or YYYYMMDDTHHMMSS.\n"
    "Exit status: 0 ok, 1 not found, 2 usage, 3 store error, 4 MAF error or refusal.\n";

static struct {
    const char *store, *maf, *target, *kmid, *expires, *admin, *key, *reg;
    json_t *labels;
    saef_ks *ks;
    saef_ks_record km;
    char fqdn[SAEF_KS_ID_MAX + 1];
    long timeout_ms;
} o = {.timeout_ms = 10000};

static int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int fail(int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "saef-maf: ");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return code;
}

static int only_km(SAEF_KS_TYPE type, const char *id, size_t id_len, const saef_ks_record *rec,
                   void *arg)
{
    char **found = arg;

    (void)type, (void)rec;
    if (*found != NULL) {
        free(*found);
        *found = strdup(""); /* more than one */
        return 1;
    }
    *found = strndup(id, id_len);
    return 0;
}

/* The KmID (given, or the store's only km key), its key, and the MAF-FQDN
   (KmID = relative@MAF-FQDN, TS-0003 10.6). */
static int load_km(void)
{
    static char *found;
    const char *at;

    if (saef_ks_open(o.store, 0, &o.ks) != SAEF_KS_OK)
        return fail(EXIT_STORE, "%s", saef_ks_last_error(NULL));
    if (o.kmid == NULL) {
        if (saef_ks_iter(o.ks, SAEF_KS_KM, only_km, &found) != SAEF_KS_OK || found == NULL ||
            *found == '\0')
            return fail(EXIT_USAGE, "the store has %s km key: name one with --kmid",
                        found == NULL ? "no" : "more than one");
        o.kmid = found;
    }
    if (saef_ks_get(o.ks, SAEF_KS_KM, o.kmid, strlen(o.kmid), &o.km) != SAEF_KS_OK)
        return fail(EXIT_NOTFOUND, "%s", saef_ks_last_error(o.ks));
    /* HEX32@MAF-FQDN must fit OpenSSL's 128-byte identity. */
    if ((at = strchr(o.kmid, '@')) == NULL || at[1] == '\0' || strlen(at + 1) > SAEF_MAF_FQDN_MAX)
        return fail(EXIT_USAGE, "KmID %s is not relative@MAF-FQDN (MAF-FQDN up to %d bytes)",
                    o.kmid, SAEF_MAF_FQDN_MAX);
    snprintf(o.fqdn, sizeof(o.fqdn), "%s", at + 1);
    return 0;
}

static int call(const char *method, const char *path, json_t *body, int want_ekm, saef_maf_reply *r)
{
    char url[1024], *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
    int ok;

    snprintf(url, sizeof(url), "%s%s%s", o.maf, o.maf[strlen(o.maf) - 1] == '/' ? "" : "/", path);
    ok =
        saef_maf_call(method, url, text, o.kmid, o.km.key, o.km.key_len, o.timeout_ms, want_ekm, r);
    free(text);
    if (!ok)
        return fail(EXIT_MAF, "%s", r->err);
    return 0;
}

static int maf_error(const saef_maf_reply *r)
{
    char msg[256];

    saef_maf_answer_error(r->body, msg, sizeof(msg));
    return fail(r->status == 404 ? EXIT_NOTFOUND : EXIT_MAF, "the MAF answered %ld: %s", r->status,
                msg);
}

/* POST a registration request (consumed) with the --label list; 0 when the
   MAF answered 201. The reply is the caller's to free either way. */
static int post_created(const char *path, json_t *req, int want_ekm, saef_maf_reply *r)
{
    int rc;

    if (o.labels != NULL)
        json_object_set(req, "labels", o.labels);
    rc = call("POST", path, req, want_ekm, r);
    json_decref(req);
    if (rc == 0 && r->status != 201)
        rc = maf_error(r);
    return rc;
}

static int parse_time(int64_t *t)
{
    int64_t now = (int64_t)time(NULL);

    if (!saef_time_parse(o.expires, now, t) || *t <= now)
        return fail(EXIT_USAGE, "bad --expires '%s': a future time", o.expires);
    return 0;
}

static int cmd_register(void)
{
    char exp[16], hex[33], id[SAEF_KS_ID_MAX + 64], why[512];
    saef_maf_reg_request want_req = {hex, o.target, NULL, NULL};
    json_t *req;
    saef_maf_reply r;
    saef_ks_record kc = {0};
    int64_t want, got;
    int rc;

    if (o.maf == NULL || o.target == NULL)
        return fail(EXIT_USAGE, "register needs --maf URL and --target IDB\n%s", usage);
    if (o.expires == NULL)
        o.expires = "+1d";
    if ((rc = parse_time(&want)) != 0 || (rc = load_km()) != 0)
        return rc;
    want_req.admin = o.admin != NULL ? o.admin : o.fqdn;
    want_req.self = o.km.self;
    saef_time_format_onem2m(want, exp, sizeof(exp));
    req = json_pack("{s:s, s:s, s:s, s:i, s:[s]}", "MAF-FQDN", o.fqdn, "expirationTime", exp,
                    "adminFQDN", want_req.admin, "SUID", SAEF_SUID_MAF_SAEF, "targetIDs", o.target);
    if ((rc = post_created("keyReg", req, 1, &r)) != 0)
        goto out;
    /* TS-0003 8.3.9.9.5: every returned value checked before the key is used. */
    saef_hex_encode(r.ekm, SAEF_KCID_LEN, hex);
    if (!saef_maf_check_registration(r.body, &want_req, (int64_t)time(NULL), &got, why,
                                     sizeof(why))) {
        rc = fail(EXIT_MAF, "%s", why);
        goto out;
    }
    memcpy(kc.key, r.ekm + SAEF_KCID_LEN, SAEF_KC_LEN);
    kc.key_len = SAEF_KC_LEN;
    kc.not_after = got;
    kc.suid = SAEF_SUID_MAF_SAEF;
    snprintf(kc.peer, sizeof(kc.peer), "%s", o.target);
    snprintf(id, sizeof(id), "%s@%s", hex, o.fqdn);
    if (saef_ks_put(o.ks, SAEF_KS_KC, id, strlen(id), &kc, SAEF_KS_REPLACE) != SAEF_KS_OK) {
        rc = fail(EXIT_STORE, "%s", saef_ks_last_error(o.ks));
        goto out;
    }
    saef_time_format_onem2m(got, exp, sizeof(exp));
    printf("%s\t%s\t%s\n", id, o.target, exp);
    rc = 0;
out:
    saef_ks_record_wipe(&kc);
    saef_maf_reply_free(&r);
    return rc;
}

/* KEY-ID is HEX32@MAF-FQDN (or just HEX32). */
static int key_hex(char hex[SAEF_KCID_HEX_LEN + 1])
{
    enum { H = SAEF_KCID_HEX_LEN };

    if (o.maf == NULL || o.key == NULL || strlen(o.key) < H ||
        saef_hex_decode(o.key, H, (unsigned char[SAEF_KCID_LEN]){0}, SAEF_KCID_LEN) !=
            SAEF_KCID_LEN ||
        (o.key[H] != '\0' && o.key[H] != '@'))
        return fail(EXIT_USAGE, "needs --maf URL and --key HEX32@MAF-FQDN\n%s", usage);
    memcpy(hex, o.key, H);
    hex[H] = '\0';
    return 0;
}

static int cmd_change(int delete)
{
    char hex[33], path[64], id[SAEF_KS_ID_MAX + 64], exp[16];
    saef_maf_reply r;
    saef_ks_record kc;
    json_t *req = NULL;
    int64_t want = 0;
    int rc;

    if ((rc = key_hex(hex)) != 0 || (o.expires != NULL && (rc = parse_time(&want)) != 0) ||
        (rc = load_km()) != 0)
        return rc;
    if (!delete) {
        if (o.expires == NULL && o.target == NULL)
            return fail(EXIT_USAGE, "update needs --expires or --target");
        req = json_object();
        if (o.expires != NULL) {
            saef_time_format_onem2m(want, exp, sizeof(exp));
            json_object_set_new(req, "expirationTime", json_string(exp));
        }
        if (o.target != NULL)
            json_object_set_new(req, "targetIDs", json_pack("[s]", o.target));
    }
    snprintf(path, sizeof(path), "keyReg/%s", hex);
    rc = call(delete ? "DELETE" : "PUT", path, req, 0, &r);
    json_decref(req);
    if (rc != 0)
        return rc;
    if (r.status != (delete ? 204 : 200)) {
        rc = maf_error(&r);
        saef_maf_reply_free(&r);
        return rc;
    }
    /* Keep the local record in step with the MAF (whose policy may cap the expiry). */
    snprintf(id, sizeof(id), "%s@%s", hex, o.fqdn);
    if (delete) {
        saef_ks_del(o.ks, SAEF_KS_KC, id, strlen(id));
    } else if (saef_ks_get(o.ks, SAEF_KS_KC, id, strlen(id), &kc) == SAEF_KS_OK) {
        saef_maf_answer_expiry(r.body, &kc.not_after);
        if (o.target != NULL)
            snprintf(kc.peer, sizeof(kc.peer), "%s", o.target);
        saef_ks_put(o.ks, SAEF_KS_KC, id, strlen(id), &kc, SAEF_KS_REPLACE);
        saef_ks_record_wipe(&kc);
    }
    saef_maf_reply_free(&r);
    printf("%s %s\n", delete ? "deregistered" : "updated", id);
    return 0;
}

/* MAF Client Registration (TS-0003 8.8.2.3): once per adminFQDN. */
static int cmd_client_register(void)
{
    char exp[16];
    const char *id, *rexp, *me, *admin, *want_admin;
    json_t *req, *resp = NULL;
    saef_maf_reply r;
    int64_t want, got;
    int rc;

    if (o.maf == NULL)
        return fail(EXIT_USAGE, "client-register needs --maf URL\n%s", usage);
    if (o.expires == NULL)
        o.expires = "+365d";
    if ((rc = parse_time(&want)) != 0 || (rc = load_km()) != 0)
        return rc;
    want_admin = o.admin != NULL ? o.admin : o.fqdn;
    saef_time_format_onem2m(want, exp, sizeof(exp));
    req = json_pack("{s:s, s:s, s:s}", "MAF-FQDN", o.fqdn, "expirationTime", exp, "adminFQDN",
                    want_admin);
    if ((rc = post_created("clientReg", req, 0, &r)) != 0)
        goto out;
    resp = json_loads(r.body, 0, NULL);
    rc = EXIT_MAF;
    if (json_unpack(resp, "{s:s, s:s, s:s, s:s}", "mafClientRegID", &id, "expirationTime", &rexp,
                    "mafClientID", &me, "adminFQDN", &admin) != 0) {
        fail(rc, "the MAF's answer lacks mandatory fields");
        goto out;
    }
    if (!saef_time_parse(rexp, 0, &got) || got <= (int64_t)time(NULL)) {
        fail(rc, "the MAF's expirationTime %s is not in the future", rexp);
        goto out;
    }
    if (strcmp(admin, want_admin) != 0 || (o.km.self[0] != '\0' && strcmp(me, o.km.self) != 0)) {
        fail(rc, "the MAF changed the adminFQDN or names this client %s", me);
        goto out;
    }
    printf("%s\t%s\t%s\t%s\n", id, me, admin, rexp);
    rc = 0;
out:
    json_decref(resp);
    saef_maf_reply_free(&r);
    return rc;
}

/* Configuration retrieval, update, de-registration (8.8.2.4-8.8.2.6). */
static int cmd_client_change(const char *method)
{
    char path[64], exp[16];
    saef_maf_reply r;
    json_t *req = NULL;
    int64_t want = 0;
    int rc, put = strcmp(method, "PUT") == 0;

    if (o.maf == NULL || o.reg == NULL || strlen(o.reg) != 32 ||
        saef_hex_decode(o.reg, 32, (unsigned char[16]){0}, 16) != 16)
        return fail(EXIT_USAGE, "needs --maf URL and --reg ID (32 hex digits)\n%s", usage);
    if (put && o.expires == NULL && o.labels == NULL)
        return fail(EXIT_USAGE, "client-update needs --expires or --label");
    if ((o.expires != NULL && (rc = parse_time(&want)) != 0) || (rc = load_km()) != 0)
        return rc;
    if (put) {
        req = json_object();
        if (o.expires != NULL) {
            saef_time_format_onem2m(want, exp, sizeof(exp));
            json_object_set_new(req, "expirationTime", json_string(exp));
        }
        if (o.labels != NULL)
            json_object_set(req, "labels", o.labels);
    }
    snprintf(path, sizeof(path), "clientReg/%s", o.reg);
    rc = call(method, path, req, 0, &r);
    json_decref(req);
    if (rc != 0)
        return rc;
    if (r.status != (strcmp(method, "DELETE") == 0 ? 204 : 200))
        rc = maf_error(&r);
    else if (r.body != NULL)
        fputs(r.body, stdout); /* the MAF's JSON: the configuration or what changed */
    else
        printf("deregistered %s\n", o.reg);
    saef_maf_reply_free(&r);
    return rc;
}

/* The MAF over HTTPS (TLS), or over CoAP (DTLS, docs/maf-protocol.md). */
static int maf_url(const char *url)
{
    return (strncmp(url, "https://", 8) == 0 && url[8] != '\0') ||
           (strncmp(url, "coaps://", 8) == 0 && url[8] != '\0');
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"store", required_argument, NULL, 's'},   {"maf", required_argument, NULL, 'm'},
        {"target", required_argument, NULL, 't'},  {"kmid", required_argument, NULL, 'k'},
        {"expires", required_argument, NULL, 'e'}, {"admin-fqdn", required_argument, NULL, 'a'},
        {"label", required_argument, NULL, 'L'},   {"key", required_argument, NULL, 'K'},
        {"timeout", required_argument, NULL, 'T'}, {"help", no_argument, NULL, 'h'},
        {"reg", required_argument, NULL, 'R'},     {NULL, 0, NULL, 0},
    };
    const char *cmd;
    int c, rc;

    o.store = getenv("SAEF_STORE");
    while ((c = getopt_long(argc, argv, "s:h", opts, NULL)) != -1) {
        switch (c) {
        case 's': o.store = optarg; break;
        case 'm': o.maf = optarg; break;
        case 't': o.target = optarg; break;
        case 'k': o.kmid = optarg; break;
        case 'e': o.expires = optarg; break;
        case 'a': o.admin = optarg; break;
        case 'K': o.key = optarg; break;
        case 'R': o.reg = optarg; break;
        case 'T': o.timeout_ms = atol(optarg); break;
        case 'L':
            if (o.labels == NULL)
                o.labels = json_array();
            json_array_append_new(o.labels, json_string(optarg));
            break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return EXIT_USAGE;
        }
    }
    if (optind != argc - 1)
        return fail(EXIT_USAGE,
                    "one command: register, update, deregister, client-register, client-config, "
                    "client-update or client-deregister\n%s",
                    usage);
    if (o.store == NULL || *o.store == '\0')
        return fail(EXIT_USAGE, "no store: give -s STORE or set SAEF_STORE");
    if (o.maf != NULL && !maf_url(o.maf))
        return fail(EXIT_USAGE, "--maf must be an https:// or coaps:// URL");
    if (o.timeout_ms < 1 || o.timeout_ms > 600000)
        return fail(EXIT_USAGE, "--timeout is 1 to 600000 milliseconds");
    cmd = argv[optind];
    if (strcmp(cmd, "register") == 0)
        rc = cmd_register();
    else if (strcmp(cmd, "update") == 0)
        rc = cmd_change(0);
    else if (strcmp(cmd, "deregister") == 0)
        rc = cmd_change(1);
    else if (strcmp(cmd, "client-register") == 0)
        rc = cmd_client_register();
    else if (strcmp(cmd, "client-config") == 0)
        rc = cmd_client_change("GET");
    else if (strcmp(cmd, "client-update") == 0)
        rc = cmd_client_change("PUT");
    else if (strcmp(cmd, "client-deregister") == 0)
        rc = cmd_client_change("DELETE");
    else
        rc = fail(EXIT_USAGE, "unknown command '%s'\n%s", cmd, usage);
    saef_ks_record_wipe(&o.km);
    saef_ks_close(o.ks);
    json_decref(o.labels);
    return rc;
}
