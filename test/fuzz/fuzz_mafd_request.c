/* saef-mafd's registry handlers with fuzzed requests from an authenticated
   client: method, path, client and JSON body. The key export comes from a
   real TLS 1.2 PSK session made once over memory BIOs. */
#include "fuzz-util.h"
#include "mafd-registry.h"

#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static saef_mafd maf = {.fqdn = FUZZ_MAF_FQDN, .max_lifetime = 86400, .max_reg_lifetime = 31536000};
static SSL *session;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned int client_psk(SSL *ssl, const char *hint, char *id, unsigned int max_id,
                               unsigned char *psk, unsigned int max_psk)
{
    (void)ssl, (void)hint, (void)max_psk;
    snprintf(id, max_id, "client-a@" FUZZ_MAF_FQDN);
    memset(psk, 0x42, 16);
    return 16;
}

static unsigned int server_psk(SSL *ssl, const char *id, unsigned char *psk, unsigned int max)
{
    (void)ssl, (void)id, (void)max;
    memset(psk, 0x42, 16);
    return 16;
}

/* A finished TLS 1.2 PSK session (Extended Master Secret on): the server end. */
static SSL *make_session(void)
{
    SSL_CTX *cc = SSL_CTX_new(TLS_client_method()), *sc = SSL_CTX_new(TLS_server_method());
    SSL *c, *s;
    BIO *a, *b;
    int done = 0;

    FUZZ_CHECK(cc != NULL && sc != NULL);
    SSL_CTX_set_max_proto_version(cc, TLS1_2_VERSION);
    SSL_CTX_set_cipher_list(cc, "PSK-AES128-CBC-SHA256");
    SSL_CTX_set_cipher_list(sc, "PSK-AES128-CBC-SHA256");
    SSL_CTX_set_psk_client_callback(cc, client_psk);
    SSL_CTX_set_psk_server_callback(sc, server_psk);
    c = SSL_new(cc);
    s = SSL_new(sc);
    FUZZ_CHECK(BIO_new_bio_pair(&a, 0, &b, 0));
    SSL_set_bio(c, a, a);
    SSL_set_bio(s, b, b);
    SSL_set_connect_state(c);
    SSL_set_accept_state(s);
    for (int i = 0; i < 20 && done != 3; i++) {
        if (SSL_do_handshake(c) == 1)
            done |= 1;
        if (SSL_do_handshake(s) == 1)
            done |= 2;
    }
    FUZZ_CHECK(done == 3);
    SSL_free(c);
    SSL_CTX_free(cc);
    SSL_CTX_free(sc);
    return s;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    FUZZ_CHECK(saef_ks_open(fuzz_store_create(), 0, &maf.ks) == SAEF_KS_OK);
    session = make_session();
    return 0;
}

static int same_as_seeded(void)
{
    saef_ks_record got, want;
    size_t n;
    int same = 1;

    FUZZ_CHECK(saef_ks_count(maf.ks, 0, &n) == SAEF_KS_OK);
    for (size_t i = 0; i < fuzz_nrecords && same; i++) {
        fuzz_record_fill(&fuzz_records[i], &want);
        same = saef_ks_get(maf.ks, fuzz_records[i].type, fuzz_records[i].id,
                           strlen(fuzz_records[i].id), &got) == SAEF_KS_OK &&
               got.key_len == want.key_len && !memcmp(got.key, want.key, got.key_len) &&
               !strcmp(got.peer, want.peer) && !strcmp(got.self, want.self) &&
               got.not_after == want.not_after;
        saef_ks_record_wipe(&got);
        saef_ks_record_wipe(&want);
    }
    return same && n == fuzz_nrecords;
}

/* A retrieved key is that of a live registration whose target asked. */
static int released_to_target(const saef_mafd_request *req, json_t *answer)
{
    const char *key = json_string_value(json_object_get(answer, "keyValue"));

    for (size_t i = 0; key != NULL && i < fuzz_nrecords; i++)
        if (fuzz_records[i].type == SAEF_KS_KC && !fuzz_records[i].expired &&
            strcmp(fuzz_records[i].peer, req->client) == 0 &&
            strcasecmp(fuzz_records[i].key_hex, key) == 0)
            return 1;
    return 0;
}

/* An update or deregistration came from the source of a live registration. */
static int changed_by_source(const saef_mafd_request *req)
{
    const char *rel = req->path + strlen("/keyReg/");

    for (size_t i = 0; i < fuzz_nrecords; i++)
        if (fuzz_records[i].type == SAEF_KS_KC && !fuzz_records[i].expired &&
            strncasecmp(fuzz_records[i].id, rel, 32) == 0 && strlen(rel) == 32)
            return strcmp(fuzz_records[i].self, req->client) == 0;
    return 0;
}

/*
 * Input: "METHOD PATH CLIENT\n" then the body; without that first line the
 * whole input is the body of POST /keyReg from the registration's source.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"POST", "PUT", "DELETE", "GET"};
    static const enum evhttp_cmd_type cmds[] = {EVHTTP_REQ_POST, EVHTTP_REQ_PUT, EVHTTP_REQ_DELETE,
                                                EVHTTP_REQ_GET};
    char *text = fuzz_strndup(data, size), method[8], path[256], client[256];
    const char *nl = memchr(data, '\n', size);
    saef_mafd_request req = {EVHTTP_REQ_POST,       "/keyReg", (const char *)data, size, session,
                             "//sp.example.com/C-a"};
    json_t *answer = NULL;
    int status;

    if (nl != NULL && sscanf(text, "%7s %255s %255s", method, path, client) >= 2) {
        req.method = EVHTTP_REQ_PATCH;
        for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
            if (strcmp(method, methods[i]) == 0)
                req.method = cmds[i];
        req.path = path;
        req.client =
            sscanf(text, "%*s %*s %255s", client) == 1 && strcmp(client, "-") != 0 ? client : NULL;
        req.body = nl + 1;
        req.body_len = size - (size_t)(nl + 1 - (const char *)data);
    }
    status = saef_mafd_handle(&maf, &req, &answer);
    switch (status) {
    case 200: /* a retrieval by the target, or an update by the source */
        FUZZ_CHECK(req.method == EVHTTP_REQ_POST || req.method == EVHTTP_REQ_PUT);
        if (req.method == EVHTTP_REQ_POST)
            FUZZ_CHECK(released_to_target(&req, answer));
        else
            FUZZ_CHECK(changed_by_source(&req));
        break;
    case 201: FUZZ_CHECK(json_is_string(json_object_get(answer, "relativeKeyID"))); break;
    case 204:
        FUZZ_CHECK(req.method == EVHTTP_REQ_DELETE && answer == NULL && changed_by_source(&req));
        break;
    default:
        /* Refused: an error text, and nothing in the registry changed. */
        FUZZ_CHECK(status >= 400 && status < 600 && status != 500);
        FUZZ_CHECK(json_is_string(json_object_get(answer, "error")));
        FUZZ_CHECK(status == 410 || same_as_seeded());
    }
    if (status < 300 || status == 410) {
        /* Back to the seeded registry: drop what was added, restore the rest. */
        if (status == 201) {
            char id[SAEF_KS_ID_MAX + 1];
            snprintf(id, sizeof(id), "%s@%s",
                     json_string_value(json_object_get(answer, "relativeKeyID")), FUZZ_MAF_FQDN);
            FUZZ_CHECK(saef_ks_del(maf.ks, SAEF_KS_KC, id, strlen(id)) == SAEF_KS_OK);
        }
        fuzz_store_reset(maf.ks);
    }
    json_decref(answer);
    free(text);
    return 0;
}
