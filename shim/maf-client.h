/* Internal: one HTTPS request to a MAF over TLS-PSK with KmID/Km (TS-0003
   8.8.2.2), used by Entity A (saef-maf) and Entity B's key retrieval. */
#ifndef SAEF_MAF_CLIENT_H
#define SAEF_MAF_CLIENT_H

#include <stddef.h>

#define SAEF_MAF_EXPORTER "EXPORTER-oneM2M-Connection"
#define SAEF_MAF_BODY_MAX 65536

typedef struct {
    long status;            /* HTTP status; 0 when there was no answer */
    char *body;             /* NUL-terminated, or NULL */
    unsigned char ekm[48];  /* RFC 5705 export of the connection (want_ekm) */
    char err[256];          /* why it failed, when it did */
} saef_maf_reply;

/*
 * method URL with a JSON body (or NULL). The handshake uses only PSK suites
 * and is checked to have used the PSK (no server certificate is verified).
 * 1 if an HTTP answer arrived (any status), 0 otherwise (out->err says why).
 */
int saef_maf_call(const char *method, const char *url, const char *body, const char *kmid,
                  const unsigned char *km, size_t km_len, long timeout_ms, int want_ekm,
                  saef_maf_reply *out);
void saef_maf_reply_free(saef_maf_reply *r);

/* Set while saef itself makes TLS connections, so the preload leaves them alone. */
extern _Thread_local int saef_inside;

#endif
