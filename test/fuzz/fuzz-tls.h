/* saef's server roles over the fuzz store, for the handshake targets. */
#ifndef SAEF_FUZZ_TLS_H
#define SAEF_FUZZ_TLS_H

#include <openssl/ssl.h>
#include "fuzz-util.h"

enum {
    FUZZ_SRV_DEFAULT, /* Entity B with the default rules */
    FUZZ_SRV_STRICT,  /* require_psk, refuse = unknown_psk_identity, kc_half */
    FUZZ_SRV_MAF,     /* the MAF's role: km records */
    FUZZ_NSRV
};

/* The server context of that variant, TLS or DTLS (made at first use). */
SSL_CTX *fuzz_server_ctx(int variant, int dtls);
/* Its configuration. */
const saef_conf *fuzz_server_config(int variant);

#endif
