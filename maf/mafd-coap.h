/* Internal to saef-mafd: the MAF's procedures as CoAP requests over DTLS 1.2
   PSK (--listen-coaps), beside the HTTPS listener on the same event loop.
   Errors: 1 / 0, the reason on saef-mafd's log. */
#ifndef SAEF_MAFD_COAP_H
#define SAEF_MAFD_COAP_H

#include "mafd-registry.h"

#include <event2/event.h>

typedef struct {
    long max_sessions; /* DTLS sessions kept at once (the oldest idle one goes) */
    long idle;         /* seconds a session may stay idle */
    long max_body;     /* bytes of a request body */
} saef_mafd_coap_limits;

/* Serves m on UDP host:port from base. 1 on success, 0 with a message. */
int saef_mafd_coap_start(struct event_base *base, const char *host, int port, const saef_mafd *m,
                         const saef_mafd_coap_limits *lim);
/* Closes every session and the endpoint. */
void saef_mafd_coap_stop(void);

#endif
