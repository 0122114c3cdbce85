/*
 * saef-mafd: a M2M Authentication Function (TS-0003 8.8) for the MAF-based
 * SAEF. HTTPS over TLS-PSK (clients authenticate with KmID/Km); the HTTP/JSON
 * mapping is in docs/maf-protocol.md, the registry in mafd-registry.c.
 */
#include "mafd-registry.h"
#include "saef-internal.h"

#include <event2/buffer.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
    const char *store, *listen;
    long max_body;
    saef_mafd m;
    SSL_CTX *ssl;
} g = {.listen = "127.0.0.1:8443",
       .max_body = 16384,
       .m = {.max_lifetime = 86400, .max_reg_lifetime = 31536000}};

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

/* One request to the registry; the answer is sent, logged and wiped. */
static void handle(struct evhttp_request *req, void *arg)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req), *out = evbuffer_new();
    SSL *ssl = req_ssl(req);
    saef_mafd_request r = {evhttp_request_get_command(req),
                           evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req)), NULL,
                           evbuffer_get_length(in), ssl,
                           ssl != NULL ? saef_ssl_peer_entity(ssl) : NULL};
    json_t *answer;
    char *text;
    int status;

    (void)arg;
    r.body = (const char *)evbuffer_pullup(in, -1);
    status = saef_mafd_handle(&g.m, &r, &answer);
    text = answer != NULL ? json_dumps(answer, JSON_COMPACT) : NULL;
    if (text != NULL) {
        evbuffer_add_printf(out, "%s\n", text);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "application/json");
    }
    saef_mafd_log("%s %s -> %d client=%s", method_name(r.method), evhttp_request_get_uri(req),
                  status, r.client != NULL ? r.client : "-");
    evhttp_send_reply(req, status, NULL, out);
    /* Key bytes may be in the answer (retrieval): wipe our copy. */
    if (text != NULL) {
        OPENSSL_cleanse(text, strlen(text));
        free(text);
    }
    json_decref(answer);
    evbuffer_free(out);
}

static struct bufferevent *make_bev(struct event_base *base, void *arg)
{
    (void)arg;
    return bufferevent_openssl_socket_new(base, -1, SSL_new(g.ssl), BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
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
            fprintf(stderr, "saef-mafd: %s line %zu: '%s' is not an Absolute CSE-ID or AE-ID "
                            "(//sp/id)\n", file, lineno, id);
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
    "usage: saef-mafd --store STORE --fqdn MAF-FQDN [--listen HOST:PORT]\n"
    "                 [--max-lifetime SECONDS] [--max-reg-lifetime SECONDS]\n"
    "                 [--require-client-reg] [--max-body BYTES]\n"
    "                 [--targets FILE] [--cse-targets-only]\n";

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"store", required_argument, NULL, 's'},  {"fqdn", required_argument, NULL, 'f'},
        {"listen", required_argument, NULL, 'l'}, {"max-lifetime", required_argument, NULL, 'L'},
        {"max-body", required_argument, NULL, 'B'}, {"help", no_argument, NULL, 'h'},
        {"max-reg-lifetime", required_argument, NULL, 'R'},
        {"require-client-reg", no_argument, NULL, 'r'},
        {"targets", required_argument, NULL, 't'},
        {"cse-targets-only", no_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    char host[256], err[256], probe[300], foreign[SAEF_KS_ID_MAX + 1];
    const char *targets = NULL;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *tick, *sigint, *sigterm;
    struct timeval minute = {60, 0};
    saef_conf conf;
    saef_ctx *s;
    int c, port, one = 1;

    /* Requests and answers carry keys: their buffers are wiped when freed. */
    event_set_mem_functions(malloc, saef_wipe_realloc, saef_wipe_free);
    json_set_alloc_funcs(malloc, saef_wipe_free);
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's': g.store = optarg; break;
        case 'f': g.m.fqdn = optarg; break;
        case 'l': g.listen = optarg; break;
        case 'L': g.m.max_lifetime = atol(optarg); break;
        case 'B': g.max_body = atol(optarg); break;
        case 'R': g.m.max_reg_lifetime = atol(optarg); break;
        case 'r': g.m.require_reg = 1; break;
        case 't': targets = optarg; break;
        case 'c': g.m.cse_targets_only = 1; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    snprintf(probe, sizeof(probe), "x@%s", g.m.fqdn != NULL ? g.m.fqdn : "");
    if (g.store == NULL || g.m.fqdn == NULL || optind != argc || g.m.max_lifetime < 1 ||
        g.m.max_reg_lifetime < 1 ||
        g.max_body < 256 || strlen(g.m.fqdn) > 95 || !saef_id_is_conforming(probe, strlen(probe))) {
        fprintf(stderr, "saef-mafd: --store and --fqdn (a DNS name of at most 95 characters) "
                        "are required; lifetimes and sizes must be positive\n%s", usage);
        return 2;
    }
    if (sscanf(g.listen, "%255[^:]:%d", host, &port) != 2 || port < 1 || port > 65535) {
        fprintf(stderr, "saef-mafd: bad --listen '%s' (HOST:PORT)\n", g.listen);
        return 2;
    }
    g.m.port = port;
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
    saef_conf_init(&conf);
    if (!saef_conf_set(&conf, "store", g.store, err, sizeof(err)) ||
        (s = saef_new(&conf)) == NULL) {
        fprintf(stderr, "saef-mafd: %s\n", err);
        return 2;
    }
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
    evhttp_set_bevcb(http, make_bev, NULL);
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
    tick = event_new(base, -1, EV_PERSIST, purge, NULL);
    event_add(tick, &minute);
    sigint = evsignal_new(base, SIGINT, on_signal, base);
    sigterm = evsignal_new(base, SIGTERM, on_signal, base);
    event_add(sigint, NULL);
    event_add(sigterm, NULL);
    saef_mafd_log("MAF %s listening on %s, store %s", g.m.fqdn, g.listen, g.store);
    event_base_dispatch(base);
    saef_mafd_log("stopping");
    event_free(tick);
    event_free(sigint);
    event_free(sigterm);
    evhttp_free(http);
    event_base_free(base);
    SSL_CTX_free(g.ssl);
    saef_ks_close(g.m.ks);
    return 0;
}
