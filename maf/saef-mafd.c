/*
 * saef-mafd: a M2M Authentication Function (TS-0003 8.8) for the MAF-based
 * SAEF. HTTPS over TLS-PSK (clients authenticate with KmID/Km); the HTTP/JSON
 * mapping is in docs/maf-protocol.md, the registry in mafd-registry.c.
 */
#include "mafd-coap.h"
#include "mafd-conns.h"
#include "mafd-registry.h"
#include "saef-internal.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/keyvalq_struct.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/sha.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <time.h>

/* Lifetimes beyond ten years are a typo, and now + lifetime must not overflow. */
#define LIFETIME_MAX 315360000L

static struct {
    const char *store, *listen, *coaps;
    char coaps_host[256];
    long max_body, purge_every;
    int max_conns_set; /* --max-connections given: not fitted to the descriptor limit */
    saef_mafd m;
    saef_mafd_limits lim;
    SSL_CTX *ssl;
} g = {
    .listen = "127.0.0.1:8443",
    .max_body = 16384,
    .purge_every = 60,
    .lim = {.max = 512, .per_addr = 32, .deadline = 10},
    .m = {.max_lifetime = 86400, .max_reg_lifetime = 31536000, .max_regs = 1000, .reg_rate = 60}};

static SSL *req_ssl(struct evhttp_request *req)
{
    struct evhttp_connection *conn = evhttp_request_get_connection(req);

    return conn != NULL ? bufferevent_openssl_get_ssl(evhttp_connection_get_bufferevent(conn))
                        : NULL;
}

static const char *method_name(enum evhttp_cmd_type cmd)
{
    switch (cmd) {
    case EVHTTP_REQ_GET: return "GET";
    case EVHTTP_REQ_POST: return "POST";
    case EVHTTP_REQ_PUT: return "PUT";
    case EVHTTP_REQ_DELETE: return "DELETE";
    default: return "other";
    }
}

/* Two Content-Length headers, or one beside Transfer-Encoding: the body's
   end is ambiguous (and libevent reads only the first), so refuse. */
static int ambiguous_length(struct evhttp_request *req)
{
    struct evkeyval *h;
    int lengths = 0, chunked = 0;

    TAILQ_FOREACH(h, evhttp_request_get_input_headers(req), next)
    {
        lengths += evutil_ascii_strcasecmp(h->key, "Content-Length") == 0;
        chunked |= evutil_ascii_strcasecmp(h->key, "Transfer-Encoding") == 0;
    }
    return lengths > 1 || (lengths > 0 && chunked);
}

/* The client as the store has it now: its km record still there, unexpired,
   naming the entity the handshake bound and holding the key its connection's
   first request was authorised with. A deleted or changed client is no
   client any more, also on a connection open since before. */
static const char *current_client(SSL *ssl)
{
    static char now[SAEF_KS_ENTITY_MAX + 1];
    const char *bound = ssl != NULL ? saef_ssl_peer_entity(ssl) : NULL;
    saef_mafd_conn *c = saef_mafd_conn_of(ssl);
    unsigned char md[SHA256_DIGEST_LENGTH];
    int ok;

    ok = bound != NULL && c != NULL && saef_mafd_km_client(&g.m, saef_ssl_identity(ssl), now, md) &&
         strcmp(now, bound) == 0 && saef_mafd_conn_same_km(c, md);
    OPENSSL_cleanse(md, sizeof(md));
    return ok ? bound : NULL;
}

/* One request to the registry; the answer is sent, logged and wiped. */
static void handle(struct evhttp_request *req, void *arg)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req), *out = evbuffer_new();
    struct evkeyvalq *headers = evhttp_request_get_output_headers(req);
    SSL *ssl = req_ssl(req);
    saef_mafd_conn *c = saef_mafd_conn_of(ssl);
    saef_mafd_request r = {evhttp_request_get_command(req),
                           evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req)),
                           NULL,
                           evbuffer_get_length(in),
                           ssl,
                           current_client(ssl)};
    char uri[512], client[300], wait[24];
    json_t *answer = NULL, *retry;
    char *text;
    int status, smuggled;

    (void)arg;
    if (c != NULL)
        saef_mafd_conn_answered(c);
    r.body = (const char *)evbuffer_pullup(in, -1);
    if ((smuggled = ambiguous_length(req)))
        status =
            saef_mafd_error(&answer, 400, "one Content-Length, and not with Transfer-Encoding");
    else
        status = saef_mafd_handle(&g.m, &r, &answer);
    /* Not a client (any more), or a request whose end is unclear: nothing
       more on this connection. */
    if (status == 401 || smuggled)
        evhttp_add_header(headers, "Connection", "close");
    if (status == 429 && (retry = json_object_get(answer, "retryAfter")) != NULL) {
        snprintf(wait, sizeof(wait), "%lld", (long long)json_integer_value(retry));
        evhttp_add_header(headers, "Retry-After", wait);
    }
    text = answer != NULL ? json_dumps(answer, JSON_COMPACT) : NULL;
    if (text != NULL) {
        evbuffer_add_printf(out, "%s\n", text);
        evhttp_add_header(headers, "Content-Type", "application/json");
    }
    saef_mafd_log("%s %s -> %d client=%s", method_name(r.method),
                  saef_mafd_escaped(evhttp_request_get_uri(req), uri, sizeof(uri)), status,
                  saef_mafd_escaped(r.client, client, sizeof(client)));
    evhttp_send_reply(req, status, NULL, out);
    /* Key bytes may be in the answer (retrieval): wipe our copy. */
    if (text != NULL) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
    json_decref(answer);
    evbuffer_free(out);
}

static void purge(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    saef_mafd_purge(&g.m);
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    event_base_loopbreak(arg);
}

/* --targets FILE: one Absolute ID a line; blank lines and '#' comments. */
static const char *const *read_targets(const char *file)
{
    char line[SAEF_KS_ENTITY_MAX + 2];
    const char **list = NULL;
    size_t n = 0, lineno = 0;
    FILE *f = fopen(file, "r");

    if (f == NULL) {
        fprintf(stderr, "saef-mafd: cannot read --targets %s\n", file);
        return NULL;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *id = line + strspn(line, " \t");
        lineno++;
        id[strcspn(id, " \t\r\n")] = '\0';
        if (*id == '\0' || *id == '#')
            continue;
        if (!saef_mafd_absolute_id(id)) {
            fprintf(stderr,
                    "saef-mafd: %s line %zu: '%s' is not an Absolute CSE-ID or AE-ID "
                    "(//sp/id)\n",
                    file, lineno, id);
            fclose(f);
            return NULL;
        }
        const char **grown = realloc(list, (n + 2) * sizeof(*list));
        if (grown == NULL || (grown[n] = strdup(id)) == NULL) {
            fprintf(stderr, "saef-mafd: out of memory reading --targets\n");
            fclose(f);
            return NULL;
        }
        list = grown;
        list[++n] = NULL;
    }
    fclose(f);
    if (n == 0)
        fprintf(stderr, "saef-mafd: --targets %s names no target\n", file);
    return list;
}

static const char usage[] =
    "usage: saef-mafd --store STORE --fqdn MAF-FQDN [--listen HOST:PORT|[IPV6]:PORT]\n"
    "                 [--listen-coaps HOST:PORT|[IPV6]:PORT]\n"
    "                 [--max-lifetime SECONDS] [--max-reg-lifetime SECONDS]\n"
    "                 [--require-client-reg] [--max-body BYTES]\n"
    "                 [--targets FILE] [--cse-targets-only]\n"
    "                 [--max-connections N] [--max-connections-per-address N]\n"
    "                 [--request-timeout SECONDS] [--max-registrations N]\n"
    "                 [--max-reg-rate PER-MINUTE] [--purge-interval SECONDS]\n";

/* A whole decimal number in [min, max] for --opt, else a message naming it. */
static int number(const char *opt, const char *text, long min, long max, long *out)
{
    char *end;
    long long v;

    errno = 0;
    v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || *text < '0' || *text > '9' || v < min ||
        v > max) {
        fprintf(stderr, "saef-mafd: --%s '%s': give a whole number from %ld to %ld\n", opt, text,
                min, max);
        return 0;
    }
    *out = (long)v;
    return 1;
}

/* --listen HOST:PORT, or [IPV6-ADDRESS]:PORT. */
static int parse_listen(const char *text, char *host, size_t len, int *port)
{
    const char *end = text[0] == '[' ? strchr(text, ']') : strrchr(text, ':');
    const char *start = text[0] == '[' ? text + 1 : text;
    long p;

    if (end == NULL || (text[0] == '[' ? *++end != ':' : strchr(text, ':') != end) ||
        end == start || (size_t)(end - start) - (text[0] == '[') >= len)
        return 0;
    snprintf(host, len, "%.*s", (int)(end - start) - (text[0] == '['), start);
    if (!number("listen", end + 1, 1, 65535, &p))
        return 0;
    *port = (int)p;
    return 1;
}

/* Without --max-connections, what the descriptor limit leaves room for:
   the store, the log and a margin are not connections. */
static void fit_to_descriptors(void)
{
    struct rlimit rl;

    if (g.max_conns_set || getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return;
    if ((rlim_t)g.lim.max + 32 > rl.rlim_cur) {
        g.lim.max = rl.rlim_cur > 64 ? (long)rl.rlim_cur - 32 : 32;
        saef_mafd_log("descriptor limit %lu: at most %ld connections", (unsigned long)rl.rlim_cur,
                      g.lim.max);
    }
}

/* --listen-coaps HOST:PORT: the same registry over CoAP/DTLS (mafd-coap.c). */
static int parse_coaps(void)
{
#ifdef SAEF_HAVE_COAP
    if (parse_listen(g.coaps, g.coaps_host, sizeof(g.coaps_host), &g.m.coap_port))
        return 1;
    fprintf(stderr, "saef-mafd: bad --listen-coaps '%s' (HOST:PORT or [IPV6-ADDRESS]:PORT)\n",
            g.coaps);
#else
    fprintf(stderr, "saef-mafd: built without libcoap (libcoap3-dev): no --listen-coaps\n");
#endif
    return 0;
}

static int start_coaps(struct event_base *base)
{
#ifdef SAEF_HAVE_COAP
    saef_mafd_coap_limits lim = {g.lim.max, g.lim.deadline, g.max_body};

    return g.coaps == NULL || saef_mafd_coap_start(base, g.coaps_host, g.m.coap_port, &g.m, &lim);
#else
    (void)base;
    return 1;
#endif
}

static void stop_coaps(void)
{
#ifdef SAEF_HAVE_COAP
    if (g.coaps != NULL)
        saef_mafd_coap_stop();
#endif
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"store", required_argument, NULL, 's'},
        {"fqdn", required_argument, NULL, 'f'},
        {"listen", required_argument, NULL, 'l'},
        {"max-lifetime", required_argument, NULL, 'L'},
        {"max-body", required_argument, NULL, 'B'},
        {"help", no_argument, NULL, 'h'},
        {"max-reg-lifetime", required_argument, NULL, 'R'},
        {"require-client-reg", no_argument, NULL, 'r'},
        {"targets", required_argument, NULL, 't'},
        {"cse-targets-only", no_argument, NULL, 'c'},
        {"max-connections", required_argument, NULL, 'C'},
        {"max-connections-per-address", required_argument, NULL, 'A'},
        {"request-timeout", required_argument, NULL, 'T'},
        {"max-registrations", required_argument, NULL, 'N'},
        {"max-reg-rate", required_argument, NULL, 'Q'},
        {"purge-interval", required_argument, NULL, 'P'},
        {"listen-coaps", required_argument, NULL, 'U'},
        {NULL, 0, NULL, 0},
    };
    char host[256], err[256], probe[300], foreign[SAEF_KS_ID_MAX + 1];
    const char *name;
    const char *targets = NULL;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *tick, *sigint, *sigterm;
    struct timeval purge_every;
    saef_conf *conf;
    saef_ctx *s;
    int c, idx, port, one = 1;
    long *num;

    /* Requests and answers carry keys: their buffers are wiped when freed. */
    event_set_mem_functions(malloc, saef_wipe_realloc, saef_wipe_free);
    json_set_alloc_funcs(malloc, saef_wipe_free);
    while ((c = getopt_long(argc, argv, "h", opts, &idx)) != -1) {
        long min = 1, max = 1000000;
        num = NULL;
        switch (c) {
        case 's': g.store = optarg; break;
        case 'f': g.m.fqdn = optarg; break;
        case 'l': g.listen = optarg; break;
        case 'L': num = &g.m.max_lifetime, max = LIFETIME_MAX; break;
        case 'B': num = &g.max_body, min = 256, max = 1048576; break;
        case 'R': num = &g.m.max_reg_lifetime, max = LIFETIME_MAX; break;
        case 'r': g.m.require_reg = 1; break;
        case 't': targets = optarg; break;
        case 'c': g.m.cse_targets_only = 1; break;
        case 'C': num = &g.lim.max, g.max_conns_set = 1; break;
        case 'A': num = &g.lim.per_addr; break;
        case 'T': num = &g.lim.deadline, max = 3600; break;
        case 'N': num = &g.m.max_regs; break;
        case 'Q': num = &g.m.reg_rate; break;
        case 'P': num = &g.purge_every, max = 3600; break;
        case 'U': g.coaps = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
        name = opts[idx].name;
        if (num != NULL && !number(name, optarg, min, max, num))
            return 2;
    }
    snprintf(probe, sizeof(probe), "x@%s", g.m.fqdn != NULL ? g.m.fqdn : "");
    if (g.store == NULL || g.m.fqdn == NULL || optind != argc ||
        strlen(g.m.fqdn) > SAEF_MAF_FQDN_MAX || !saef_id_is_conforming(probe, strlen(probe))) {
        fprintf(stderr,
                "saef-mafd: --store and --fqdn (a DNS name of at most %d characters) "
                "are required\n%s",
                SAEF_MAF_FQDN_MAX, usage);
        return 2;
    }
    if (!parse_listen(g.listen, host, sizeof(host), &port)) {
        fprintf(stderr, "saef-mafd: bad --listen '%s' (HOST:PORT or [IPV6-ADDRESS]:PORT)\n",
                g.listen);
        return 2;
    }
    g.m.port = port;
    if (g.coaps != NULL && !parse_coaps())
        return 2;
    fit_to_descriptors();
    if (targets != NULL && ((g.m.targets = read_targets(targets)) == NULL || *g.m.targets == NULL))
        return 2;
    if (saef_ks_open(g.store, 0, &g.m.ks) != SAEF_KS_OK) {
        fprintf(stderr, "saef-mafd: %s\n", saef_ks_last_error(NULL));
        return 3;
    }
    /* Its kc records would be taken for registrations, and its server
       would take ours for keys it retrieved (peer and self swapped). */
    if (saef_mafd_foreign_kc(&g.m, foreign)) {
        fprintf(stderr,
                "saef-mafd: %s is a server's store: it holds connection keys retrieved from a "
                "MAF (kc %s, no adminFQDN). Give the MAF a store of its own (saef-key -s "
                "FILE init)\n",
                g.store, foreign);
        return 3;
    }
    snprintf(err, sizeof(err), "out of memory");
    if ((conf = saef_conf_new()) == NULL ||
        !saef_conf_set(conf, "store", g.store, err, sizeof(err)) || (s = saef_new(conf)) == NULL) {
        fprintf(stderr, "saef-mafd: %s\n", err);
        saef_conf_free(conf);
        return 2;
    }
    saef_conf_free(conf);
    g.ssl = SSL_CTX_new(TLS_server_method());
    if (g.ssl != NULL)
        SSL_CTX_set_options(g.ssl, SSL_OP_CLEANSE_PLAINTEXT);
    if (g.ssl == NULL || !saef_ssl_ctx_maf_server(g.ssl, s)) {
        fprintf(stderr, "saef-mafd: cannot set up TLS\n");
        return 3;
    }
    saef_free(s);
    signal(SIGPIPE, SIG_IGN);
    base = event_base_new();
    http = evhttp_new(base);
    evhttp_set_bevcb(http, saef_mafd_conn_new, g.ssl);
    evhttp_set_gencb(http, handle, NULL);
    evhttp_set_max_body_size(http, (ev_ssize_t)g.max_body);
    evhttp_set_max_headers_size(http, 8192);
    evhttp_set_timeout(http, 10);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_POST | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                         EVHTTP_REQ_GET);
    if ((bound = evhttp_bind_socket_with_handle(http, host, (ev_uint16_t)port)) == NULL) {
        fprintf(stderr, "saef-mafd: cannot listen on %s\n", g.listen);
        return 3;
    }
    /* Accepted sockets inherit it: an answer written in two TLS records
       would otherwise wait for the client's delayed ACK (40 ms). */
    setsockopt(evhttp_bound_socket_get_fd(bound), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (!saef_mafd_conns_init(base, evhttp_bound_socket_get_listener(bound), &g.lim)) {
        fprintf(stderr, "saef-mafd: out of memory\n");
        return 3;
    }
    if (!start_coaps(base))
        return 3;
    tick = event_new(base, -1, EV_PERSIST, purge, NULL);
    purge_every.tv_sec = g.purge_every;
    purge_every.tv_usec = 0;
    event_add(tick, &purge_every);
    sigint = evsignal_new(base, SIGINT, on_signal, base);
    sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    event_add(sigint, NULL);
    event_add(sigterm, NULL);
    saef_mafd_log("MAF %s listening on %s%s%s, store %s", g.m.fqdn, g.listen,
                  g.coaps != NULL ? " and coaps " : "", g.coaps != NULL ? g.coaps : "", g.store);
    event_base_dispatch(base);
    saef_mafd_log("stopping");
    event_free(tick);
    event_free(sigint);
    event_free(sigterm);
    evhttp_free(http);
    stop_coaps();
    event_base_free(base);
    SSL_CTX_free(g.ssl);
    saef_ks_close(g.m.ks);
    return 0;
}
