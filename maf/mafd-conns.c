/*
 * saef-mafd's connections. Before its handshake a peer is anonymous, so what
 * it may hold is bounded: a deadline from the accept to a whole request that
 * bytes do not extend, a number of connections in all and per source
 * address, and when the table is full a connection that has not yet made a
 * request gives way to the newcomer: the oldest of those from the address
 * with the most connections, so a flood of slow handshakes from a few
 * addresses neither keeps a client out nor cuts its handshake short. Out of descriptors, accepting
 * pauses instead of spinning. Conditions caused by the network are logged at most every 10 s.
 */
#include "mafd-conns.h"
#include "mafd-registry.h"

#include <errno.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>

struct saef_mafd_conn {
    TAILQ_ENTRY(saef_mafd_conn) next; /* in accept order */
    struct bufferevent *bev;
    struct event *timer; /* admission just after the accept, then the deadline */
    struct sockaddr_storage addr;
    int admitted, answered, km_set;
    long peers; /* connections from its address, itself included */
    unsigned char km[32];
};

TAILQ_HEAD(conn_list, saef_mafd_conn);

/* A condition logged at most once every 10 s, with how often it recurred. */
typedef struct {
    const char *what;
    time_t last;
    unsigned long more;
} rate_log;

static struct {
    struct conn_list all;
    long open;
    saef_mafd_limits lim;
    struct event_base *base;
    struct evconnlistener *lev;
    struct event *resume;
    int paused, ex_index;
    rate_log full, per_addr, nofile, late;
} s = {.full = {"connection table full"},
       .per_addr = {"too many connections from one address"},
       .nofile = {"out of descriptors: accepting paused"},
       .late = {"request not complete within the deadline"}};

static void note(rate_log *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void note(rate_log *r, const char *fmt, ...)
{
    char detail[160];
    time_t now = time(NULL);
    va_list ap;

    if (r->last != 0 && now - r->last < 10) {
        r->more++;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(detail, sizeof(detail), fmt, ap);
    va_end(ap);
    saef_mafd_log("%s (%s); %lu more since the last such line", r->what, detail, r->more);
    r->last = now;
    r->more = 0;
}

static void addr_text(const struct sockaddr_storage *a, char *buf, size_t len)
{
    const void *p = a->ss_family == AF_INET6
                        ? (const void *)&((const struct sockaddr_in6 *)a)->sin6_addr
                        : (const void *)&((const struct sockaddr_in *)a)->sin_addr;

    if (evutil_inet_ntop(a->ss_family, p, buf, len) == NULL)
        snprintf(buf, len, "?");
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
    return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
           ((const struct sockaddr_in *)b)->sin_addr.s_addr;
}

/* Ends a connection from outside evhttp: its next read sees the end, and
   evhttp frees it as any closed connection (harmless if that happened). */
static void cut(saef_mafd_conn *c)
{
    evutil_socket_t fd = bufferevent_getfd(c->bev);

    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
    event_del(c->timer);
}

/* Makes room: of the connections without a request yet, the oldest from
   the address with the most connections. */
static int evict_pending(void)
{
    saef_mafd_conn *c, *victim = NULL;

    TAILQ_FOREACH(c, &s.all, next)
    {
        if (!c->answered && c->admitted && (victim == NULL || c->peers > victim->peers))
            victim = c;
    }
    if (victim == NULL)
        return 0;
    victim->answered = 1; /* not chosen twice */
    cut(victim);
    return 1;
}

/* Counts c in (add 1) or out (-1) of its address's connections. */
static void count_peers(saef_mafd_conn *c, long add)
{
    saef_mafd_conn *o;

    c->peers = 1;
    TAILQ_FOREACH(o, &s.all, next)
    {
        if (o != c && o->admitted && same_addr(&o->addr, &c->addr)) {
            o->peers += add;
            c->peers++;
        }
    }
}

static void resume_accepting(void)
{
    if (s.paused) {
        s.paused = 0;
        event_del(s.resume);
        evconnlistener_enable(s.lev);
    }
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    resume_accepting();
}

/* evconnlistener's error callback: EMFILE and the like would otherwise make
   libevent retry accept() at once, forever. Pause until a connection closes
   (or 1 s passes), and free a descriptor from a connection still pending. */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    int err = EVUTIL_SOCKET_ERROR();
    struct timeval second = {1, 0};

    (void)arg;
    if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) {
        saef_mafd_log("accept: %s", evutil_socket_error_to_string(err));
        return;
    }
    evconnlistener_disable(lev);
    s.paused = 1;
    evtimer_add(s.resume, &second);
    note(&s.nofile, "%s, %ld connections open", evutil_socket_error_to_string(err), s.open);
    evict_pending();
}

/* Just after the accept (evhttp has given the bufferevent its socket by
   then): admit or refuse; later: the deadline passed. */
static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    saef_mafd_conn *c = arg, *o;
    struct timeval deadline = {s.lim.deadline, 0};
    socklen_t len = sizeof(c->addr);
    char text[64];
    long same = 0;

    (void)fd, (void)what;
    if (c->admitted) {
        addr_text(&c->addr, text, sizeof(text));
        note(&s.late, "%ld s, last from %s", s.lim.deadline, text);
        cut(c);
        return;
    }
    if (getpeername(bufferevent_getfd(c->bev), (struct sockaddr *)&c->addr, &len) != 0) {
        cut(c);
        return;
    }
    addr_text(&c->addr, text, sizeof(text));
    TAILQ_FOREACH(o, &s.all, next) same += o != c && o->admitted && same_addr(&o->addr, &c->addr);
    if (same >= s.lim.per_addr) {
        note(&s.per_addr, "%s has %ld, the limit", text, same);
        cut(c);
        return;
    }
    if (s.open > s.lim.max && !evict_pending()) {
        note(&s.full, "%ld open, all with requests; refused %s", s.open - 1, text);
        cut(c);
        return;
    }
    if (s.open > s.lim.max)
        note(&s.full, "%ld open; one without a request gave way to %s", s.open - 1, text);
    count_peers(c, 1);
    c->admitted = 1;
    evtimer_add(c->timer, &deadline);
}

/* CRYPTO_EX_free for the SSL's slot: the connection is gone. */
static void conn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    saef_mafd_conn *c = ptr;

    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    if (c == NULL)
        return;
    TAILQ_REMOVE(&s.all, c, next);
    s.open--;
    if (c->admitted)
        count_peers(c, -1);
    event_free(c->timer);
    OPENSSL_cleanse(c->km, sizeof(c->km));
    free(c);
    resume_accepting();
}

int saef_mafd_conns_init(struct event_base *base, struct evconnlistener *lev,
                         const saef_mafd_limits *lim)
{
    TAILQ_INIT(&s.all);
    s.lim = *lim;
    s.base = base;
    s.lev = lev;
    s.ex_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, conn_free);
    if (s.ex_index < 0 || (s.resume = evtimer_new(base, on_resume, NULL)) == NULL)
        return 0;
    evconnlistener_set_error_cb(lev, on_accept_error);
    return 1;
}

struct bufferevent *saef_mafd_conn_new(struct event_base *base, void *arg)
{
    SSL *ssl = SSL_new(arg);
    saef_mafd_conn *c = calloc(1, sizeof(*c));

    if (ssl == NULL || c == NULL || (c->timer = evtimer_new(base, on_timer, c)) == NULL ||
        !SSL_set_ex_data(ssl, s.ex_index, c)) {
        if (c != NULL && c->timer != NULL)
            event_free(c->timer);
        free(c);
        SSL_free(ssl);
        return NULL; /* evhttp then reads plain HTTP, which gets 401 */
    }
    TAILQ_INSERT_TAIL(&s.all, c, next);
    s.open++;
    c->bev = bufferevent_openssl_socket_new(base, -1, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                            BEV_OPT_CLOSE_ON_FREE);
    if (c->bev == NULL) {
        /* Whether libevent freed ssl differs between versions: a leak
           when out of memory rather than a double free. */
        SSL_set_ex_data(ssl, s.ex_index, NULL);
        TAILQ_REMOVE(&s.all, c, next);
        s.open--;
        event_free(c->timer);
        free(c);
        return NULL;
    }
    /* evhttp sets the socket when this returns: admission runs next. */
    event_active(c->timer, EV_TIMEOUT, 1);
    return c->bev;
}

saef_mafd_conn *saef_mafd_conn_of(const SSL *ssl)
{
    return ssl != NULL ? SSL_get_ex_data(ssl, s.ex_index) : NULL;
}

void saef_mafd_conn_answered(saef_mafd_conn *c)
{
    struct timeval deadline = {s.lim.deadline, 0};

    c->answered = 1;
    evtimer_add(c->timer, &deadline);
}

int saef_mafd_conn_same_km(saef_mafd_conn *c, const unsigned char digest[32])
{
    if (!c->km_set) {
        memcpy(c->km, digest, sizeof(c->km));
        c->km_set = 1;
    }
    return CRYPTO_memcmp(c->km, digest, sizeof(c->km)) == 0;
}

long saef_mafd_conns_open(void)
{
    return s.open;
}
