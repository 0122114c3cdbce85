/* saef-key: provision, list, rotate, import and export saef keys. */
#include "saef_conf.h"
#include "ks-types.h"
#include "saef_common.h"
#include "json-file.h"
#include "psk-file.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifndef SAEF_VERSION
#define SAEF_VERSION "dev"
#endif

enum { EXIT_NOTFOUND = 1, EXIT_USAGE = 2, EXIT_STORE = 3 };

static const char *store_path;
static unsigned group_read;

static const char usage_text[] =
    "usage: saef-key [-s STORE] [--group-read] COMMAND [ARGS]\n"
    "\n"
    "  init                              create the store (owner-only)\n"
    "  add TYPE ID [KEY OPTIONS]         add a key; TYPE is kpsa, km or kc (creg: MAF only)\n"
    "      --hex HEX | --random BYTES    the key (default: hex read from stdin)\n"
    "      --peer ENTITY-ID --self ENTITY-ID --expires TIME --suid N\n"
    "      --replace --any-identity --allow-short-key (a key under 16 bytes)\n"
    "  list [TYPE]                       list keys (never prints them)\n"
    "  show TYPE ID [--reveal [--key-only]]\n"
    "  del TYPE ID                       delete a key\n"
    "  import [--format psk|json] [--type TYPE] [--peer ID] [--self ID] [--expires TIME]\n"
    "         [--replace] [--any-identity] [--allow-short-key] FILE|-\n"
    "                                    lines identity:hexkey, all or nothing\n"
    "  export [--format psk|json] [--type TYPE] [FILE|-]   writes keys (a new 0600 file)\n"
    "      json: one object per key and line, every field (type, identity, key, peer,\n"
    "      self, expires, created, suid, meta); import --format json reads it back\n"
    "  purge [--type TYPE] [--dry-run]   delete expired keys of TYPE (default kc)\n"
    "\n"
    "STORE (an absolute path): -s, else $SAEF_STORE, else 'store' of the saef provider in\n"
    "OPENSSL_CONF, else /var/lib/saef/keys.db.\n"
    "TIME: RFC 3339, YYYYMMDDTHHMMSS (UTC) or +N[smhdw].\n"
    "Exit status: 0 ok, 1 not found, 2 usage or bad input, 3 store error.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "saef-key: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(saef-key --help shows the usage)\n");
    va_end(ap);
    return EXIT_USAGE;
}

static int ks_exit(SAEF_KS_ERR err)
{
    switch (err) {
    case SAEF_KS_OK: return 0;
    case SAEF_KS_ENOTFOUND: return EXIT_NOTFOUND;
    case SAEF_KS_EINVAL:
    case SAEF_KS_EEXISTS: return EXIT_USAGE;
    default: return EXIT_STORE;
    }
}

static int ks_fail(saef_ks *ks, SAEF_KS_ERR err)
{
    fprintf(stderr, "saef-key: %s\n", saef_ks_last_error(ks));
    return ks_exit(err);
}

static const char *resolve_store(void)
{
    static saef_conf *conf;
    const char *env = getenv("SAEF_STORE");

    if (store_path != NULL)
        return store_path;
    if (env != NULL && *env != '\0')
        return env;
    /* Kept to the end: the path returned lives in it. */
    if (conf == NULL && (conf = saef_conf_new()) == NULL)
        return "";
    if (OPENSSL_init_crypto(OPENSSL_INIT_LOAD_CONFIG, NULL) &&
        saef_conf_from_provider(NULL, conf) == 1 && saef_conf_int(conf, SAEF_CONF_STORE_GROUP_READ))
        group_read = 1;
    return saef_conf_str(conf, SAEF_CONF_STORE);
}

static int open_store(unsigned flags, saef_ks **ks)
{
    SAEF_KS_ERR err = saef_ks_open(resolve_store(), flags | group_read, ks);

    return err == SAEF_KS_OK ? 0 : ks_fail(NULL, err);
}

static int parse_type(const char *name, SAEF_KS_TYPE *type)
{
    *type = strcmp(name, SAEF_KS_CREG_NAME) == 0 ? SAEF_KS_CREG : saef_ks_type_from_name(name);
    if (*type == 0)
        return usage_error("unknown key type '%s' (use kpsa, km, kc or creg)", name);
    return 0;
}

/* creg records are saef-mafd's client registrations: listed, never provisioned. */
static int parse_key_type(const char *name, SAEF_KS_TYPE *type)
{
    int rc = parse_type(name, type);

    if (rc == 0 && *type == SAEF_KS_CREG)
        return usage_error("creg records are written by saef-mafd; add kpsa, km or kc keys");
    return rc;
}

/* The identity rules: length and control characters always; syntax unless
   --any-identity. */
static int check_identity(SAEF_KS_TYPE type, const char *id, int any)
{
    const char *why = saef_psk_id_problem(id, strlen(id), type, any);

    return why == NULL ? 0 : usage_error("%s", why);
}

struct meta {
    const char *peer, *self, *expires, *suid;
    int replace, any, short_key;
};

static int set_entity(const char *opt, const char *v, char out[SAEF_KS_ENTITY_MAX + 1])
{
    const char *why = saef_entity_problem(v);

    if (why != NULL)
        return usage_error("%s %s", opt, why);
    strcpy(out, v);
    return 0;
}

/* Fills the metadata fields of rec from the options. */
static int apply_meta(const struct meta *m, saef_ks_record *rec)
{
    time_t now = time(NULL);
    int rc;

    if (m->peer != NULL && (rc = set_entity("--peer", m->peer, rec->peer)) != 0)
        return rc;
    if (m->self != NULL && (rc = set_entity("--self", m->self, rec->self)) != 0)
        return rc;
    if (m->expires != NULL) {
        if (!saef_time_parse(m->expires, now, &rec->not_after))
            return usage_error("bad --expires '%s': use RFC 3339 (2027-01-31T12:00:00Z), "
                               "YYYYMMDDTHHMMSS (UTC) or +N[smhdw]",
                               m->expires);
        if (rec->not_after <= now)
            return usage_error("--expires '%s' is in the past", m->expires);
    }
    if (m->suid != NULL) {
        char *end;
        long n = strtol(m->suid, &end, 10);
        if (*m->suid == '\0' || *end != '\0' || n < 1 || n > 99)
            return usage_error("bad --suid '%s': an integer from 1 to 99", m->suid);
        rec->suid = (int32_t)n;
    }
    return 0;
}

enum {
    O_HEX = 256,
    O_RANDOM,
    O_PEER,
    O_SELF,
    O_EXPIRES,
    O_SUID,
    O_REPLACE,
    O_ANY,
    O_REVEAL,
    O_KEYONLY,
    O_FORMAT,
    O_TYPE,
    O_SHORT
};

/* clang-format off */
static const struct option key_opts[] = {
    {"hex", required_argument, NULL, O_HEX},
    {"random", required_argument, NULL, O_RANDOM},
    {"peer", required_argument, NULL, O_PEER},
    {"self", required_argument, NULL, O_SELF},
    {"expires", required_argument, NULL, O_EXPIRES},
    {"suid", required_argument, NULL, O_SUID},
    {"replace", no_argument, NULL, O_REPLACE},
    {"any-identity", no_argument, NULL, O_ANY},
    {"reveal", no_argument, NULL, O_REVEAL},
    {"key-only", no_argument, NULL, O_KEYONLY},
    {"format", required_argument, NULL, O_FORMAT},
    {"type", required_argument, NULL, O_TYPE},
    {"allow-short-key", no_argument, NULL, O_SHORT},
    {NULL, 0, NULL, 0},
};
/* clang-format on */

/* Options of one command; `allowed` lists the O_ codes it takes. */
struct opts {
    struct meta m;
    const char *hex, *random, *format, *type;
    int reveal, key_only;
};

static int parse_opts(int argc, char **argv, const int *allowed, struct opts *o)
{
    int c;

    memset(o, 0, sizeof(*o));
    optind = 0; /* 0, not 1: glibc re-initialises its permutation state */
    while ((c = getopt_long(argc, argv, "", key_opts, NULL)) != -1) {
        int ok = 0;
        for (const int *a = allowed; *a; a++)
            ok |= *a == c;
        if (c == '?' || !ok)
            return usage_error("option %s is not valid here", argv[optind - 1]);
        switch (c) {
        case O_HEX: o->hex = optarg; break;
        case O_RANDOM: o->random = optarg; break;
        case O_PEER: o->m.peer = optarg; break;
        case O_SELF: o->m.self = optarg; break;
        case O_EXPIRES: o->m.expires = optarg; break;
        case O_SUID: o->m.suid = optarg; break;
        case O_REPLACE: o->m.replace = 1; break;
        case O_ANY: o->m.any = 1; break;
        case O_SHORT: o->m.short_key = 1; break;
        case O_REVEAL: o->reveal = 1; break;
        case O_KEYONLY: o->key_only = 1; break;
        case O_FORMAT: o->format = optarg; break;
        case O_TYPE: o->type = optarg; break;
        }
    }
    if (o->format != NULL && strcmp(o->format, "psk") != 0 && strcmp(o->format, "json") != 0)
        return usage_error("unknown --format '%s' (psk: identity:hexkey lines; json: one "
                           "object per record, every field)",
                           o->format);
    return 0;
}

/* 128 bits: shorter keys fall to a search; tests may use them. */
#define KEY_MIN 16

static const char *key_len_problem(size_t len, int short_ok)
{
    return len < KEY_MIN && !short_ok
               ? "key is shorter than 16 bytes (--allow-short-key accepts it, for tests)"
               : NULL;
}

static int check_key_len(const saef_ks_record *rec, int short_ok)
{
    const char *why = key_len_problem(rec->key_len, short_ok);

    return why == NULL ? 0 : usage_error("%s", why);
}

static int decode_key(const char *hex, saef_ks_record *rec)
{
    size_t len = strlen(hex);
    int n;

    if (len == 0)
        return usage_error("empty key");
    if (len % 2 != 0)
        return usage_error("key has an odd number of hex digits");
    n = saef_hex_decode(hex, len, rec->key, sizeof(rec->key));
    if (n < 0) {
        if (len / 2 > SAEF_KS_KEY_MAX)
            fprintf(stderr, "saef-key: key is %zu bytes; the limit is %d\n", len / 2,
                    SAEF_KS_KEY_MAX);
        else
            fprintf(stderr, "saef-key: key is not hex (digits 0-9, a-f)\n");
        return EXIT_USAGE;
    }
    rec->key_len = (size_t)n;
    return 0;
}

/* Key as hex from stdin, so it never appears in the process list. */
static int read_key_stdin(saef_ks_record *rec)
{
    char line[2 * SAEF_KS_KEY_MAX + 16];
    struct termios old, quiet;
    int tty = isatty(STDIN_FILENO), rc;
    size_t len;

    if (tty) {
        fprintf(stderr, "key (hex): ");
        tcgetattr(STDIN_FILENO, &old);
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)ECHO;
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet);
    }
    if (fgets(line, sizeof(line), stdin) == NULL)
        line[0] = '\0';
    if (tty) {
        tcsetattr(STDIN_FILENO, TCSANOW, &old);
        fputc('\n', stderr);
    }
    len = strcspn(line, "\r\n");
    if (line[len] == '\0' && len == sizeof(line) - 1) {
        OPENSSL_cleanse(line, sizeof(line));
        fprintf(stderr, "saef-key: key on stdin is longer than %d bytes\n", SAEF_KS_KEY_MAX);
        return EXIT_USAGE;
    }
    line[len] = '\0';
    rc = decode_key(line, rec);
    OPENSSL_cleanse(line, sizeof(line));
    return rc;
}

static int cmd_init(int argc, char **argv)
{
    saef_ks *ks;
    const char *path;
    struct stat st;
    SAEF_KS_ERR err;

    (void)argv;
    if (argc != 1)
        return usage_error("init takes no arguments");
    path = resolve_store();
    if (stat(path, &st) == 0) {
        if (st.st_uid != 0 && st.st_uid != geteuid())
            fprintf(stderr,
                    "saef-key: %s already exists and belongs to another user (uid %u): "
                    "saef will not use it; remove it, then run init again\n",
                    path, (unsigned)st.st_uid);
        else
            fprintf(stderr, "saef-key: %s already exists; nothing done\n", path);
        return EXIT_USAGE;
    }
    if ((err = saef_ks_open(path, SAEF_KS_CREATE | group_read, &ks)) != SAEF_KS_OK)
        return ks_fail(NULL, err);
    saef_ks_close(ks);
    printf("created %s (mode %s)\n", path, group_read ? "0640" : "0600");
    return 0;
}

static int cmd_add(int argc, char **argv)
{
    static const int allowed[] = {O_HEX,  O_RANDOM,  O_PEER, O_SELF,  O_EXPIRES,
                                  O_SUID, O_REPLACE, O_ANY,  O_SHORT, 0};
    struct opts o;
    saef_ks_record rec = {0};
    SAEF_KS_TYPE type;
    saef_ks *ks = NULL;
    SAEF_KS_ERR err;
    int rc;

    if ((rc = parse_opts(argc, argv, allowed, &o)) != 0)
        return rc;
    if (argc - optind != 2)
        return usage_error("add needs TYPE and IDENTITY");
    if ((rc = parse_key_type(argv[optind], &type)) != 0 ||
        (rc = check_identity(type, argv[optind + 1], o.m.any)) != 0 ||
        (rc = apply_meta(&o.m, &rec)) != 0)
        return rc;
    if (o.hex != NULL && o.random != NULL)
        return usage_error("give either --hex or --random");
    if (o.random != NULL) {
        char *end;
        long n = strtol(o.random, &end, 10);
        if (*o.random == '\0' || *end != '\0' || n < 1 || n > SAEF_KS_KEY_MAX)
            return usage_error("bad --random '%s': a byte count from 1 to 256", o.random);
        if (RAND_priv_bytes(rec.key, (int)n) != 1) {
            fprintf(stderr, "saef-key: the random generator failed\n");
            return EXIT_STORE;
        }
        rec.key_len = (size_t)n;
    } else if (o.hex != NULL) {
        rc = decode_key(o.hex, &rec);
    } else {
        rc = read_key_stdin(&rec);
    }
    if (rc == 0)
        rc = check_key_len(&rec, o.m.short_key);
    if (rc == 0 && (rc = open_store(0, &ks)) == 0) {
        err = saef_ks_put(ks, type, argv[optind + 1], strlen(argv[optind + 1]), &rec,
                          o.m.replace ? SAEF_KS_REPLACE : 0);
        rc = err == SAEF_KS_OK ? 0 : ks_fail(ks, err);
        saef_ks_close(ks);
    }
    saef_ks_record_wipe(&rec);
    return rc;
}

static void fmt_time(int64_t t, char *buf, size_t len)
{
    if (t == 0)
        snprintf(buf, len, "-");
    else
        saef_time_format(t, buf, len);
}

static int print_row(SAEF_KS_TYPE type, const char *id, size_t id_len, const saef_ks_record *rec,
                     void *arg)
{
    char exp[32], created[32];
    int64_t now = *(const int64_t *)arg;

    fmt_time(rec->not_after, exp, sizeof(exp));
    fmt_time(rec->created, created, sizeof(created));
    printf("%s\t%.*s\t%s\t%s\t%s\t%s\t%d\t%s\n", saef_ks_type_name(type), (int)id_len, id,
           rec->peer[0] ? rec->peer : "-", rec->self[0] ? rec->self : "-", exp, created,
           (int)rec->suid, rec->not_after != 0 && rec->not_after <= now ? "expired" : "ok");
    return 0;
}

static int cmd_list(int argc, char **argv)
{
    SAEF_KS_TYPE type = 0;
    int64_t now = (int64_t)time(NULL);
    saef_ks *ks;
    SAEF_KS_ERR err;
    int rc;

    if (argc > 2)
        return usage_error("list takes at most a TYPE");
    if (argc == 2 && (rc = parse_type(argv[1], &type)) != 0)
        return rc;
    if ((rc = open_store(SAEF_KS_RDONLY, &ks)) != 0)
        return rc;
    printf("TYPE\tIDENTITY\tPEER\tSELF\tEXPIRES\tCREATED\tSUID\tSTATUS\n");
    err = saef_ks_iter(ks, type, print_row, &now);
    rc = err == SAEF_KS_OK ? 0 : ks_fail(ks, err);
    saef_ks_close(ks);
    return rc;
}

static int cmd_show(int argc, char **argv)
{
    static const int allowed[] = {O_REVEAL, O_KEYONLY, 0};
    char exp[32], created[32], hex[2 * SAEF_KS_KEY_MAX + 1];
    struct opts o;
    saef_ks_record rec;
    SAEF_KS_TYPE type;
    saef_ks *ks;
    SAEF_KS_ERR err;
    int rc;

    if ((rc = parse_opts(argc, argv, allowed, &o)) != 0)
        return rc;
    if (argc - optind != 2)
        return usage_error("show needs TYPE and IDENTITY");
    if (o.key_only && !o.reveal)
        return usage_error("--key-only needs --reveal");
    if ((rc = parse_type(argv[optind], &type)) != 0 || (rc = open_store(SAEF_KS_RDONLY, &ks)) != 0)
        return rc;
    err = saef_ks_get(ks, type, argv[optind + 1], strlen(argv[optind + 1]), &rec);
    if (err != SAEF_KS_OK) {
        rc = ks_fail(ks, err);
        saef_ks_close(ks);
        return rc;
    }
    saef_ks_close(ks);
    if (o.reveal)
        saef_hex_encode(rec.key, rec.key_len, hex);
    if (o.key_only) {
        printf("%s\n", hex);
    } else {
        fmt_time(rec.not_after, exp, sizeof(exp));
        fmt_time(rec.created, created, sizeof(created));
        printf("type: %s\nidentity: %s\npeer: %s\nself: %s\nexpires: %s%s\ncreated: %s\n"
               "suid: %d\nkey-length: %zu\n",
               saef_ks_type_name(type), argv[optind + 1], rec.peer[0] ? rec.peer : "-",
               rec.self[0] ? rec.self : "-", exp,
               rec.not_after != 0 && rec.not_after <= (int64_t)time(NULL) ? " (expired)" : "",
               created, (int)rec.suid, rec.key_len);
        if (o.reveal)
            printf("key: %s\n", hex);
    }
    OPENSSL_cleanse(hex, sizeof(hex));
    saef_ks_record_wipe(&rec);
    return 0;
}

static int cmd_del(int argc, char **argv)
{
    SAEF_KS_TYPE type;
    saef_ks *ks;
    SAEF_KS_ERR err;
    int rc;

    if (argc != 3)
        return usage_error("del needs TYPE and IDENTITY");
    if ((rc = parse_type(argv[1], &type)) != 0 || (rc = open_store(0, &ks)) != 0)
        return rc;
    err = saef_ks_del(ks, type, argv[2], strlen(argv[2]));
    rc = err == SAEF_KS_OK ? 0 : ks_fail(ks, err);
    saef_ks_close(ks);
    return rc;
}

struct import_ctx {
    saef_ks *ks;
    SAEF_KS_TYPE type;
    const char *file;
    unsigned flags;
    int short_key;
};

static int import_put(const char *id, const saef_ks_record *rec, long lineno, void *arg)
{
    const struct import_ctx *ic = arg;
    const char *why = key_len_problem(rec->key_len, ic->short_key);
    SAEF_KS_ERR err;

    if (why != NULL) {
        fprintf(stderr, "saef-key: %s:%ld: %s\n", ic->file, lineno, why);
        return EXIT_USAGE;
    }
    err = saef_ks_put(ic->ks, ic->type, id, strlen(id), rec, ic->flags);

    if (err == SAEF_KS_OK)
        return 0;
    fprintf(stderr, "saef-key: %s:%ld: %s\n", ic->file, lineno, saef_ks_last_error(ic->ks));
    return ks_exit(err);
}

static int import_json_put(SAEF_KS_TYPE type, const char *id, const saef_ks_record *rec,
                           long lineno, void *arg)
{
    struct import_ctx *ic = arg;

    ic->type = type;
    return import_put(id, rec, lineno, ic);
}

static int cmd_import(int argc, char **argv)
{
    static const int allowed[] = {O_FORMAT, O_TYPE,    O_PEER, O_SELF,  O_EXPIRES,
                                  O_SUID,   O_REPLACE, O_ANY,  O_SHORT, 0};
    struct opts o;
    struct import_ctx ic = {NULL, SAEF_KS_KPSA, NULL, 0, 0};
    saef_ks_record base = {0};
    FILE *in;
    size_t count = 0;
    SAEF_KS_ERR err;
    int rc, json;

    if ((rc = parse_opts(argc, argv, allowed, &o)) != 0)
        return rc;
    if (argc - optind != 1)
        return usage_error("import needs one FILE (or - for stdin)");
    json = o.format != NULL && strcmp(o.format, "json") == 0;
    if (json && (o.type || o.m.peer || o.m.self || o.m.expires || o.m.suid))
        return usage_error("with --format json each line has its own type, peer, self, expires "
                           "and suid: --type, --peer, --self, --expires and --suid do not apply");
    if (o.type != NULL && (rc = parse_key_type(o.type, &ic.type)) != 0)
        return rc;
    if ((rc = apply_meta(&o.m, &base)) != 0)
        return rc;
    ic.file = argv[optind];
    ic.flags = o.m.replace ? SAEF_KS_REPLACE : 0;
    ic.short_key = o.m.short_key;
    in = strcmp(ic.file, "-") == 0 ? stdin : fopen(ic.file, "r");
    if (in == NULL) {
        fprintf(stderr, "saef-key: cannot read %s: %s\n", ic.file, strerror(errno));
        return EXIT_USAGE;
    }
    if ((rc = open_store(0, &ic.ks)) != 0)
        goto out;
    if ((err = saef_ks_write_begin(ic.ks)) != SAEF_KS_OK) {
        rc = ks_fail(ic.ks, err);
        goto out;
    }
    rc = json ? saef_json_read(in, ic.file, o.m.any, import_json_put, &ic, &count)
              : saef_psk_read(in, ic.file, ic.type, o.m.any, &base, import_put, &ic, &count);
    if (rc != 0) {
        fprintf(stderr, "saef-key: nothing imported\n");
        goto out;
    }
    if ((err = saef_ks_write_commit(ic.ks)) != SAEF_KS_OK) {
        rc = ks_fail(ic.ks, err);
        goto out;
    }
    printf("imported %zu keys\n", count);
out:
    if (ic.ks != NULL) {
        saef_ks_write_abort(ic.ks);
        saef_ks_close(ic.ks);
    }
    if (in != stdin)
        fclose(in);
    return rc;
}

struct export_ctx {
    FILE *out;
    int json, all, failed;
};

static int export_row(SAEF_KS_TYPE type, const char *id, size_t id_len, const saef_ks_record *rec,
                      void *arg)
{
    struct export_ctx *ec = arg;
    char hex[2 * SAEF_KS_KEY_MAX + 1];

    if (!ec->json) {
        saef_hex_encode(rec->key, rec->key_len, hex);
        fprintf(ec->out, "%.*s:%s\n", (int)id_len, id, hex);
        OPENSSL_cleanse(hex, sizeof(hex));
        return 0;
    }
    /* All records: the keys, not saef-mafd's client registrations. */
    if (ec->all && type == SAEF_KS_CREG)
        return 0;
    if (saef_json_write(ec->out, type, id, id_len, rec) != 0) {
        fprintf(stderr,
                "saef-key: a %s identity, peer, self or meta is not UTF-8, which JSON "
                "cannot carry: export it with --format psk\n",
                saef_ks_type_name(type));
        return ec->failed = 1;
    }
    return 0;
}

/*
 * Keys on disk: a new owner-only file renamed into place, never written
 * through an existing one (another user's file in /tmp, which they could
 * read). Returns the stream, with the temporary name in tmp; NULL on error.
 */
static FILE *export_open(const char *file, char **tmp)
{
    FILE *out;
    int fd;

    if ((*tmp = malloc(strlen(file) + 8)) == NULL)
        return NULL;
    sprintf(*tmp, "%s.XXXXXX", file);
    if ((fd = mkstemp(*tmp)) < 0) { /* mkstemp: O_EXCL, mode 0600 */
        fprintf(stderr, "saef-key: cannot write %s: %s\n", file, strerror(errno));
        free(*tmp);
        *tmp = NULL;
        return NULL;
    }
    if ((out = fdopen(fd, "w")) == NULL) {
        fprintf(stderr, "saef-key: cannot write %s: %s\n", file, strerror(errno));
        close(fd);
        unlink(*tmp);
    }
    return out;
}

/* Flushes to disk and renames into place; on failure removes the temporary. */
static int export_close(FILE *out, const char *tmp, const char *file, int rc)
{
    int ok = fflush(out) == 0 && !ferror(out) && fsync(fileno(out)) == 0;

    if (!ok)
        fprintf(stderr, "saef-key: writing the export failed: %s\n", strerror(errno));
    fclose(out);
    if (rc == 0 && ok && rename(tmp, file) != 0) {
        fprintf(stderr, "saef-key: cannot replace %s: %s (remove it, or export elsewhere)\n", file,
                strerror(errno));
        ok = 0;
    }
    if (rc != 0 || !ok)
        unlink(tmp);
    return rc != 0 ? rc : ok ? 0 : EXIT_STORE;
}

static int cmd_export(int argc, char **argv)
{
    static const int allowed[] = {O_FORMAT, O_TYPE, 0};
    struct opts o;
    struct export_ctx ec = {stdout, 0, 0, 0};
    SAEF_KS_TYPE type = SAEF_KS_KPSA;
    saef_ks *ks;
    char *tmp = NULL;
    const char *file = NULL;
    SAEF_KS_ERR err;
    int rc;

    if ((rc = parse_opts(argc, argv, allowed, &o)) != 0)
        return rc;
    if (argc - optind > 1)
        return usage_error("export takes at most one FILE");
    ec.json = o.format != NULL && strcmp(o.format, "json") == 0;
    /* JSON carries the type: without --type, every key. */
    if (ec.json && o.type == NULL)
        type = 0, ec.all = 1;
    if (o.type != NULL && (rc = parse_type(o.type, &type)) != 0)
        return rc;
    if ((rc = open_store(SAEF_KS_RDONLY, &ks)) != 0)
        return rc;
    if (argc - optind == 1 && strcmp(argv[optind], "-") != 0 &&
        (ec.out = export_open(file = argv[optind], &tmp)) == NULL) {
        free(tmp);
        saef_ks_close(ks);
        return EXIT_USAGE;
    }
    err = saef_ks_iter(ks, type, export_row, &ec);
    rc = err != SAEF_KS_OK ? ks_fail(ks, err) : ec.failed ? EXIT_USAGE : 0;
    if (file != NULL) {
        rc = export_close(ec.out, tmp, file, rc);
    } else if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "saef-key: writing the export failed: %s\n", strerror(errno));
        rc = EXIT_STORE;
    }
    free(tmp);
    saef_ks_close(ks);
    return rc;
}

struct expired_count {
    int64_t now;
    size_t n;
};

static int count_expired(SAEF_KS_TYPE type, const char *id, size_t id_len,
                         const saef_ks_record *rec, void *arg)
{
    struct expired_count *c = arg;

    (void)type, (void)id, (void)id_len;
    c->n += rec->not_after != 0 && rec->not_after <= c->now;
    return 0;
}

/* Expired keys of one type go, in bounded transactions, so servers
   caching kc records are never kept waiting long for the write lock. */
static int cmd_purge(int argc, char **argv)
{
    static const struct option opts[] = {
        {"type", required_argument, NULL, 't'},
        {"dry-run", no_argument, NULL, 'n'},
        {NULL, 0, NULL, 0},
    };
    struct expired_count expired = {(int64_t)time(NULL), 0};
    char from[SAEF_KS_ID_MAX + 1] = "";
    SAEF_KS_TYPE type = SAEF_KS_KC;
    saef_ks *ks;
    SAEF_KS_ERR err;
    size_t removed;
    int c, dry = 0, rc;

    optind = 0;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 't' && (rc = parse_type(optarg, &type)) != 0)
            return rc;
        if (c == 'n')
            dry = 1;
        else if (c != 't')
            return usage_error("option %s is not valid here", argv[optind - 1]);
    }
    if (optind != argc)
        return usage_error("purge takes only --type TYPE and --dry-run");
    if ((rc = open_store(dry ? SAEF_KS_RDONLY : 0, &ks)) != 0)
        return rc;
    if (dry) {
        err = saef_ks_iter(ks, type, count_expired, &expired);
    } else {
        do {
            err = saef_ks_purge(ks, type, expired.now, 4096, from, &removed);
            expired.n += removed;
        } while (err == SAEF_KS_OK && from[0] != '\0');
    }
    rc = err == SAEF_KS_OK ? 0 : ks_fail(ks, err);
    saef_ks_close(ks);
    if (rc == 0 || expired.n > 0)
        printf("%s %zu expired %s key%s\n", dry ? "would purge" : "purged", expired.n,
               saef_ks_type_name(type), expired.n == 1 ? "" : "s");
    return rc;
}

int main(int argc, char **argv)
{
    static const struct option global[] = {
        {"store", required_argument, NULL, 's'},
        {"group-read", no_argument, NULL, 'g'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    static const struct {
        const char *name;
        int (*fn)(int, char **);
    } cmds[] = {{"init", cmd_init},     {"add", cmd_add},    {"list", cmd_list},
                {"show", cmd_show},     {"del", cmd_del},    {"import", cmd_import},
                {"export", cmd_export}, {"purge", cmd_purge}};
    int c;

    /* "+": stop at the command; each command parses its own options. */
    while ((c = getopt_long(argc, argv, "+s:h", global, NULL)) != -1) {
        switch (c) {
        case 's': store_path = optarg; break;
        case 'g': group_read = SAEF_KS_GROUP_READ; break;
        case 'h': fputs(usage_text, stdout); return 0;
        case 'V': printf("saef-key %s\n", SAEF_VERSION); return 0;
        default: return usage_error("%s", "bad option");
        }
    }
    if (optind >= argc)
        return usage_error("no command given");
    for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
        if (strcmp(argv[optind], cmds[i].name) == 0)
            return cmds[i].fn(argc - optind, argv + optind);
    return usage_error("unknown command '%s'", argv[optind]);
}
