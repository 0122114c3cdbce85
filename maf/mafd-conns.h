/* Internal to saef-mafd: which connections the MAF keeps, and for how long,
   so that idle or slow peers cannot use up its descriptors. Errors: 1 / 0,
   NULL. */
#ifndef SAEF_MAFD_CONNS_H
#define SAEF_MAFD_CONNS_H

#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <openssl/ssl.h>
#include <sys/socket.h>

typedef struct {
    long max;      /* connections at once */
    long per_addr; /* connections at once from one source address */
    long deadline; /* seconds from the accept, or from the last answer, to a whole request */
} saef_mafd_limits;

/* One accepted connection; lives as long as its SSL object. */
typedef struct saef_mafd_conn saef_mafd_conn;

/* Starts the bookkeeping; lev is the HTTP server's listener. 1 on success. */
int saef_mafd_conns_init(struct event_base *base, struct evconnlistener *lev,
                         const saef_mafd_limits *lim);
/* For evhttp_set_bevcb (arg: the SSL_CTX): a TLS bufferevent for a
   connection just accepted, whose deadline starts now. */
struct bufferevent *saef_mafd_conn_new(struct event_base *base, void *arg);
/* The connection of ssl (NULL if none). */
saef_mafd_conn *saef_mafd_conn_of(const SSL *ssl);
/* A request was read whole: the peer is no longer pending (it cannot be
   evicted for newcomers), and its next request is due within the deadline. */
void saef_mafd_conn_answered(saef_mafd_conn *c);
/* Whether digest (of the client's Km now) is the one the connection's first
   request was authorised with, which it remembers: 1 if so. */
int saef_mafd_conn_same_km(saef_mafd_conn *c, const unsigned char digest[32]);
/* Connections now open. */
long saef_mafd_conns_open(void);

#endif
