/* Internal: one request to a MAF over TLS-PSK (https://) or DTLS-PSK
   (coaps://) with KmID/Km (TS-0003 8.8.2.2), used by Entity A (saef-maf)
   and Entity B's key retrieval. Errors: 1 / 0, the reason in the reply's
   err. */
#ifndef SAEF_MAF_CLIENT_H
#define SAEF_MAF_CLIENT_H

#include <openssl/ssl.h>
#include <stddef.h>

#include "saef_onem2m.h"

#define SAEF_MAF_BODY_MAX 65536

typedef struct {
    long status; /* HTTP status (CoAP codes mapped); 0 when there was no answer */
    char *body;  /* NUL-terminated, or NULL */
    unsigned char ekm[SAEF_EXPORT_LEN]; /* RFC 5705 export of the connection (want_ekm) */
    char err[256];                      /* why it failed, when it did */
} saef_maf_reply;

/*
 * method URL with a JSON body (or NULL); URL is https:// or coaps://. The
 * handshake uses only PSK suites and is checked to have used the PSK (no
 * server certificate is verified). 1 if an answer arrived (any status), 0
 * otherwise (out->err says why).
 */
int saef_maf_call(const char *method, const char *url, const char *body, const char *kmid,
                  const unsigned char *km, size_t km_len, long timeout_ms, int want_ekm,
                  saef_maf_reply *out);
void saef_maf_reply_free(saef_maf_reply *r);
/* saef_maf_call for coaps:// URLs (maf-coap.c, when built with libcoap). */
int saef_maf_coap_call(const char *method, const char *url, const char *body, const char *kmid,
                       const unsigned char *km, size_t km_len, long timeout_ms, int want_ekm,
                       saef_maf_reply *out);
/* 1 if the finished handshake of ssl used a PSK key exchange. */
int saef_maf_psk_used(SSL *ssl);

#endif
