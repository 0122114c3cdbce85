/* Server contexts of the handshake targets. */
#include "fuzz-tls.h"
#include "saef.h"

static SSL_CTX *ctxs[FUZZ_NSRV][2];
static saef_conf *confs[FUZZ_NSRV];

static void make_all(void)
{
    const char *store = fuzz_store_create();
    char err[256];

    for (int v = 0; v < FUZZ_NSRV; v++) {
        confs[v] = fuzz_server_conf(store);
        if (v == FUZZ_SRV_STRICT) {
            FUZZ_CHECK(saef_conf_set(confs[v], "require_psk", "yes", err, sizeof(err)));
            FUZZ_CHECK(saef_conf_set(confs[v], "refuse", "unknown_psk_identity", err, sizeof(err)));
            FUZZ_CHECK(saef_conf_set(confs[v], "kc_half", "yes", err, sizeof(err)));
        }
        saef_ctx *s = saef_new(confs[v]);
        FUZZ_CHECK(s != NULL);
        for (int d = 0; d < 2; d++) {
            SSL_CTX *c = SSL_CTX_new(d ? DTLS_server_method() : TLS_server_method());
            FUZZ_CHECK(c != NULL);
            FUZZ_CHECK(v == FUZZ_SRV_MAF ? saef_ssl_ctx_maf_server(c, s)
                                         : saef_ssl_ctx_server(c, s));
            ctxs[v][d] = c;
        }
        saef_free(s);
    }
}

SSL_CTX *fuzz_server_ctx(int variant, int dtls)
{
    if (ctxs[0][0] == NULL)
        make_all();
    return ctxs[variant][dtls != 0];
}

const saef_conf *fuzz_server_config(int variant)
{
    if (ctxs[0][0] == NULL)
        make_all();
    return confs[variant];
}
