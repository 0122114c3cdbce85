/*
 * saef_conf.h - saef's configuration: one table of keys, read from the
 * provider's section of openssl.cnf (see saef.cnf(5)).
 *
 * A saef_conf is opaque: made by saef_conf_new (every key at its default)
 * or saef_conf_dup, changed only through saef_conf_set, read through the
 * getters, released with saef_conf_free. Adding a key adds an enum value
 * at the end and changes no structure a program has compiled in.
 *
 * Values are validated strictly by saef_conf_set and kept normalised
 * ("yes"/"no", enum names, decimal integers), so the provider can expose
 * them as parameters and every reader sees the same text.
 *
 * Errors: functions that can fail return 1 on success and 0 on failure
 * (NULL for the constructors, on allocation failure), with a message
 * naming the key in the caller's err buffer where they take one; the
 * readers of openssl.cnf also say "not there" (0) apart from "wrong" (-1).
 *
 * ABI: libsaef-keystore.so, which carries these functions, changes its
 * SONAME's number whenever an exported function's signature or a public
 * structure changes, and keeps it when functions or keys are only added.
 */
#ifndef SAEF_CONF_H
#define SAEF_CONF_H

#include <stddef.h>
#include <openssl/types.h>
#include "saef_keystore.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    SAEF_CONF_STORE,
    SAEF_CONF_STORE_GROUP_READ,
    SAEF_CONF_ENTITY_ID,
    SAEF_CONF_SNI,
    SAEF_CONF_ROLE,
    SAEF_CONF_REFUSE,
    SAEF_CONF_REQUIRE_PSK,
    SAEF_CONF_TLS13,
    SAEF_CONF_LOG,
    SAEF_CONF_LOG_LEVEL,
    SAEF_CONF_MAF,
    SAEF_CONF_MAF_KMID,
    SAEF_CONF_MAF_TIMEOUT,
    SAEF_CONF_MAF_NEGATIVE_TTL,
    SAEF_CONF_MAF_REVALIDATE,
    SAEF_CONF_MAF_RATE,
    SAEF_CONF_MAF_SOURCE_RATE,
    SAEF_CONF_KC_HALF,
    SAEF_CONF_KC_SUID,
    SAEF_CONF_TARGETS,
    SAEF_CONF_NKEYS
} SAEF_CONF_KEY;

/* Enum values, as saef_conf_int returns them. */
enum { SAEF_ROLE_OFF, SAEF_ROLE_SERVER, SAEF_ROLE_CLIENT, SAEF_ROLE_BOTH };
enum { SAEF_REFUSE_WRONG_KEY, SAEF_REFUSE_UNKNOWN_PSK_IDENTITY };
enum { SAEF_LOG_STDERR, SAEF_LOG_SYSLOG, SAEF_LOG_NONE };
enum { SAEF_LEVEL_ERROR, SAEF_LEVEL_WARNING, SAEF_LEVEL_INFO, SAEF_LEVEL_DEBUG };

/* The longest value saef_conf_set accepts, NUL included. */
#define SAEF_CONF_VALUE_MAX 1024

typedef struct saef_conf saef_conf;

/* A configuration with every key at its default; NULL if out of memory. */
SAEF_EXPORT saef_conf *saef_conf_new(void);
/* A copy of conf (NULL: of the defaults); NULL if out of memory. */
SAEF_EXPORT saef_conf *saef_conf_dup(const saef_conf *conf);
/* Releases conf (NULL is fine). */
SAEF_EXPORT void saef_conf_free(saef_conf *conf);
/* The key's name in openssl.cnf and as a provider parameter; NULL if out of range. */
SAEF_EXPORT const char *saef_conf_name(SAEF_CONF_KEY key);
/*
 * Validate and set one key by name. 1 on success; 0 and a message naming
 * the key in err (may be NULL) for an unknown key or a bad value, which
 * leaves the key's old value whole.
 */
SAEF_EXPORT int saef_conf_set(saef_conf *conf, const char *name, const char *value, char *err,
                              size_t errlen);
/* The normalised value ("" when unset or key is out of range). Valid until
   the key is set again or conf is freed. */
SAEF_EXPORT const char *saef_conf_str(const saef_conf *conf, SAEF_CONF_KEY key);
/* Booleans 0/1, enums their index, integers their value. */
SAEF_EXPORT long saef_conf_int(const saef_conf *conf, SAEF_CONF_KEY key);
/* The URL of MAF `fqdn` (case-insensitive) from the maf list; 0 if none. */
SAEF_EXPORT int saef_conf_maf_url(const saef_conf *conf, const char *fqdn, size_t fqdn_len,
                                  char *url, size_t url_len);
/*
 * Entity A: the entity ID (IdB) the targets list maps `where` to: a host
 * name (case-insensitive) or an address "A.B.C.D:PORT" / "[V6]:PORT" as
 * inet_ntop writes it. 1 with idb filled, 0 if not listed (or idb too small).
 */
SAEF_EXPORT int saef_conf_target(const saef_conf *conf, const char *where, char *idb,
                                 size_t idb_len);
/*
 * The configuration OpenSSL loaded: the parameters of the "saef" provider in
 * libctx (NULL = default). 1 if read, 0 if the provider is not loaded
 * (conf unchanged), -1 on error (conf unchanged).
 */
SAEF_EXPORT int saef_conf_from_provider(OSSL_LIB_CTX *libctx, saef_conf *conf);
/*
 * The keys of provider `prov`'s section in the configuration file `file`,
 * found as OpenSSL finds it (openssl_conf, providers, the provider's name or
 * identity). A key that is neither saef's nor one OpenSSL reads itself
 * (module, activate, identity, soft_load) is unknown; when in_use is given,
 * only if in_use(name, arg) also says the loaded configuration holds it.
 * With conf, saef's keys are also validated and set in it.
 * 1: the section is there and usable; 0: no such section (or no such file);
 * -1: an unknown key or a bad value, named in err.
 */
SAEF_EXPORT int saef_conf_file_check(const char *file, const char *prov,
                                     int (*in_use)(const char *name, void *arg), void *arg,
                                     saef_conf *conf, char *err, size_t errlen);

#ifdef __cplusplus
}
#endif

#endif
