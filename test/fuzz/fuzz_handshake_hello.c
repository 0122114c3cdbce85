/* saef's server callbacks (ClientHello, PSK identity, TLS 1.3 session) fed
   a fuzzed first flight over memory BIOs: TLS or DTLS, three server roles. */
#include "fuzz-tls.h"

#include <openssl/err.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Input: a byte choosing role and protocol, then the client's records. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    SSL *ssl;
    BIO *in, *out;
    int dtls;

    if (size < 1)
        return 0;
    dtls = data[0] & 1;
    ssl = SSL_new(fuzz_server_ctx((data[0] >> 1) % FUZZ_NSRV, dtls));
    in = BIO_new_mem_buf(data + 1, (int)(size - 1));
    out = BIO_new(BIO_s_mem());
    FUZZ_CHECK(ssl != NULL && in != NULL && out != NULL);
    SSL_set_bio(ssl, in, out);
    if (dtls) {
        SSL_set_options(ssl, SSL_OP_NO_QUERY_MTU);
        SSL_set_mtu(ssl, 1400);
    }
    SSL_set_accept_state(ssl);
    /* The input ends the flight: the handshake stops at the first read past it. */
    FUZZ_CHECK(SSL_do_handshake(ssl) <= 0);
    SSL_free(ssl);
    ERR_clear_error();
    return 0;
}
