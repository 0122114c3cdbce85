/* Internal to saef-mafd (and its fuzz target): the MAF's registry procedures
   (TS-0003 8.8.2.3-8.8.2.10) apart from HTTP. Errors: a request's outcome
   is its HTTP status with an {"error": ...} body; the checks return 1 / 0. */
#ifndef SAEF_MAFD_REGISTRY_H
#define SAEF_MAFD_REGISTRY_H

#include <event2/http.h>
#include <jansson.h>
#include <openssl/ssl.h>
#include "ks-types.h"
#include "saef_common.h"

typedef struct {
    saef_ks *ks;                /* the registry, read-write */
    const char *fqdn;           /* this MAF's FQDN */
    long max_lifetime;          /* seconds a key registration may live */
    long max_reg_lifetime;      /* seconds a client registration may live */
    int require_reg;            /* keys only for registered clients (8.8.2.3) */
    int port;                   /* the MAF's HTTP port, for mafClientCfg */
    int coap_port;              /* its CoAP (DTLS) port, 0 = none */
    const char *const *targets; /* --targets: the only IDs keys may be for (NULL-ended);
                                   NULL = every MAF client (a km record's peer) */
    int cse_targets_only;       /* --cse-targets-only: targets are Absolute CSE-IDs */
    long max_regs;              /* live key and client registrations per client; 0 = no limit */
    long reg_rate;              /* registrations per client per minute; 0 = no limit */
} saef_mafd;

typedef struct {
    enum evhttp_cmd_type method;
    const char *path;
    const char *body; /* may be NULL when body_len is 0 */
    size_t body_len;
    SSL *ssl;           /* the client's connection, for the key export */
    const char *client; /* its authenticated MAF Client ID; NULL if none */
} saef_mafd_request;

/* Answers one request: returns the HTTP status and sets *answer to the JSON
   body (NULL for none). A retrieval answer holds a key: wipe its text. */
int saef_mafd_handle(const saef_mafd *m, const saef_mafd_request *req, json_t **answer);
/* Sets *answer to the error object {"error": msg}; returns status. */
int saef_mafd_error(json_t **answer, int status, const char *msg);
/* An Absolute CSE-ID or AE-ID: "//sp-fqdn/..." (TS-0001 7.2), kept strict. 1 if it is. */
int saef_mafd_absolute_id(const char *id);
/* An Absolute CSE-ID: "//sp-fqdn/CSE-ID", one segment not starting with C
   or S (those begin AE-IDs, TS-0001 7.2). 1 if it is. */
int saef_mafd_cse_id(const char *id);
/* 1 and the first identity in id if the store holds kc records that are no
   registration (Entity B's retrieved copies: no adminFQDN), i.e. it is a
   server's store. */
int saef_mafd_foreign_kc(const saef_mafd *m, char id[SAEF_KS_ID_MAX + 1]);
/* The MAF Client ID the km record of kmid names now (its peer, else
   11-KmID, TS-0003 10.4) and the SHA-256 of its key: 1 if the record
   exists and is unexpired, else 0. Both transports authorise each request
   with it. */
int saef_mafd_km_client(const saef_mafd *m, const char *kmid, char id[SAEF_KS_ENTITY_MAX + 1],
                        unsigned char digest[32]);
/* Deletes every expired key and client registration. */
void saef_mafd_purge(const saef_mafd *m);
/* A domain name: dot-separated labels of letters, digits and hyphens (not
   at either end), 1 to 63 characters each, 253 in all. 1 if it is. */
int saef_mafd_dns_name(const char *name);

/* in for a log line, into out, by saef_escape (a client cannot forge
   lines; long text cut with "..."); NULL is "-". */
const char *saef_mafd_escaped(const char *in, char *out, size_t len);
void saef_mafd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
