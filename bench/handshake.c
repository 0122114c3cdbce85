/*
 * saef-bench-handshake: full PSK handshakes against a server, as fast as it
 * takes them. Every connection is new (no session, no ticket), the client
 * checks that the PSK really authenticated it, sends close_notify and closes.
 *
 * Usage: saef-bench-handshake -p PORT [-H HOST] [-V tls1.2|tls1.3|dtls1.2]
 *            (-i IDENTITY -k HEXKEY | -f FILE) [-c CONCURRENCY]
 *            [-t SECONDS | -n COUNT | -u SECONDS] [-C CIPHER] [-r FILE] [-R]
 *   -f FILE   the first "identity:hexkey" line of FILE (the psk file format)
 *   -c N      N threads, each with its own connections (default 1)
 *   -t / -n   run for SECONDS (default 5), or make COUNT attempts in all
 *   -u S      retry single handshakes until one works (at most S seconds):
 *             how long a new key takes to become usable
 *   -r FILE   after each handshake send FILE (an HTTP request; with dtls1.2 a
 *             CoAP message) and count the connection only when the answer
 *             is a 2xx, or a CoAP 2.xx (MAF registrations)
 *   -R        resumed handshakes: each thread's first connection is a full
 *             PSK handshake whose session (TLS 1.2) or ticket (TLS 1.3) every
 *             later one resumes; only resumed connections count (TLS 1.3
 *             offers the ticket alone, so nothing else can succeed)
 * Prints one line of key=value pairs: mode, concurrency, handshakes, failures,
 * seconds, hs_per_s, and the per-handshake latency p50_us / p99_us.
 * Exit status 0 when at least one handshake succeeded and none failed
 * (with -u: when one succeeded in time).
 */
#include "psk_cbs.h"
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define MAX_LAT 200000 /* latencies kept per thread */

enum mode { TLS12, TLS13, DTLS12 };

static struct {
    enum mode mode;
    struct sockaddr_in addr;
    char identity[256];
    unsigned char key[64];
    size_t key_len;
    const char *cipher;
    char *request;
    size_t request_len;
    double seconds, until_ok;
    long count;
    int threads;
    SSL_CTX *ctx, *resume_ctx; /* resume_ctx: -R, without the external PSK */
    double end;                /* monotonic seconds */
} cfg = {.mode = TLS12, .seconds = 5, .threads = 1};

static long g_started;                  /* handshakes begun, for -n (atomic) */
static __thread SSL_SESSION *t_session; /* -R: what this thread resumes */

struct worker {
    pthread_t tid;
    long ok, failed;
    long n_lat;
    double *lat; /* microseconds */
};

static double now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int die(const char *msg)
{
    fprintf(stderr, "saef-bench-handshake: %s\n", msg);
    return 2;
}

static SSL_CTX *make_ctx(int resume, int external_psk)
{
    SSL_CTX *ctx = SSL_CTX_new(cfg.mode == DTLS12 ? DTLS_client_method() : TLS_client_method());
    int v = cfg.mode == TLS12   ? TLS1_2_VERSION
            : cfg.mode == TLS13 ? TLS1_3_VERSION
                                : DTLS1_2_VERSION;
    const char *def = cfg.mode == DTLS12 ? "PSK-AES128-CCM8" : "PSK-AES128-CBC-SHA256";

    if (ctx == NULL || !SSL_CTX_set_min_proto_version(ctx, v) ||
        !SSL_CTX_set_max_proto_version(ctx, v))
        goto err;
    if (resume)
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL);
    else
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    if (cfg.mode == TLS13) {
        if (!SSL_CTX_set_ciphersuites(ctx, cfg.cipher ? cfg.cipher : "TLS_AES_128_GCM_SHA256"))
            goto err;
        if (external_psk)
            SSL_CTX_set_psk_use_session_callback(ctx, psk_cbs_use_session);
    } else {
        /* PSK suites only: a server that ignores the PSK cannot complete. */
        if (!SSL_CTX_set_cipher_list(ctx, cfg.cipher ? cfg.cipher : def))
            goto err;
        SSL_CTX_set_psk_client_callback(ctx, psk_cbs_client);
    }
    return ctx;
err:
    ERR_print_errors_fp(stderr);
    SSL_CTX_free(ctx);
    return NULL;
}

/* Sends the request; 1 when the answer's status line says 2xx, or over
   DTLS when the CoAP answer (one record) is a 2.xx. */
static int request(SSL *ssl)
{
    unsigned char coap[4096];
    char buf[4096];
    size_t got = 0;
    int n;

    if (SSL_write(ssl, cfg.request, (int)cfg.request_len) != (int)cfg.request_len)
        return 0;
    if (cfg.mode == DTLS12)
        return SSL_read(ssl, coap, sizeof(coap)) >= 4 && (coap[0] & 0xC0) == 0x40 &&
               coap[1] >> 5 == 2;
    while (got < 12 && (n = SSL_read(ssl, buf + got, (int)(sizeof(buf) - got))) > 0)
        got += (size_t)n;
    return got >= 12 && strncmp(buf, "HTTP/1.", 7) == 0 && buf[9] == '2';
}

/* One full handshake on a new connection; 1 when the PSK authenticated it. */
static int handshake(void)
{
    int dtls = cfg.mode == DTLS12;
    int fd = socket(AF_INET, dtls ? SOCK_DGRAM : SOCK_STREAM, 0), one = 1, ok = 0;
    struct timeval tv = {5, 0};
    SSL *ssl = NULL;
    BIO *bio;

    if (fd < 0)
        return 0;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (!dtls)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&cfg.addr, sizeof(cfg.addr)) != 0 ||
        (ssl = SSL_new(t_session != NULL ? cfg.resume_ctx : cfg.ctx)) == NULL ||
        (t_session != NULL && !SSL_set_session(ssl, t_session)))
        goto out;
    if ((bio = dtls ? BIO_new_dgram(fd, BIO_NOCLOSE) : BIO_new_socket(fd, BIO_NOCLOSE)) == NULL)
        goto out;
    if (dtls)
        BIO_ctrl_set_connected(bio, &cfg.addr);
    SSL_set_bio(ssl, bio, bio);
    if (SSL_connect(ssl) == 1) {
        /* TLS 1.3: a server that did not take the PSK authenticated with a
           certificate we did not check. */
        ok = (cfg.mode != TLS13 && t_session == NULL) || SSL_session_reused(ssl);
        if (ok && cfg.request != NULL)
            ok = request(ssl);
        /* -R: the second call reads on to the server's close, and the
           TLS 1.3 tickets before it. */
        if (SSL_shutdown(ssl) == 0 && cfg.resume_ctx != NULL)
            SSL_shutdown(ssl);
        if (ok && cfg.resume_ctx != NULL) {
            SSL_SESSION_free(t_session);
            t_session = SSL_get1_session(ssl);
        }
    }
out:
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
    return ok;
}

static void *work(void *arg)
{
    struct worker *w = arg;

    while (now() < cfg.end) {
        if (cfg.count > 0 && __atomic_fetch_add(&g_started, 1, __ATOMIC_RELAXED) >= cfg.count)
            break;
        double t0 = now();
        if (handshake()) {
            w->ok++;
            if (w->n_lat < MAX_LAT)
                w->lat[w->n_lat++] = (now() - t0) * 1e6;
        } else {
            w->failed++;
        }
    }
    SSL_SESSION_free(t_session);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static int hexkey(const char *hex)
{
    long len;
    unsigned char *k = OPENSSL_hexstr2buf(hex, &len);

    if (k == NULL || len < 1 || (size_t)len > sizeof(cfg.key)) {
        OPENSSL_free(k);
        return 0;
    }
    memcpy(cfg.key, k, (size_t)len);
    cfg.key_len = (size_t)len;
    OPENSSL_clear_free(k, (size_t)len);
    return 1;
}

static int from_file(const char *path)
{
    char line[1024], *colon;
    FILE *f = fopen(path, "r");
    int ok;

    if (f == NULL)
        return 0;
    ok = fgets(line, sizeof(line), f) != NULL && (colon = strrchr(line, ':')) != NULL &&
         (size_t)(colon - line) < sizeof(cfg.identity);
    fclose(f);
    if (ok) {
        memcpy(cfg.identity, line, (size_t)(colon - line));
        cfg.identity[colon - line] = '\0';
        colon[1 + strcspn(colon + 1, "\r\n")] = '\0';
        ok = hexkey(colon + 1);
    }
    OPENSSL_cleanse(line, sizeof(line));
    return ok;
}

static const char *mode_name(void)
{
    return cfg.mode == TLS12 ? "tls1.2" : cfg.mode == TLS13 ? "tls1.3" : "dtls1.2";
}

static int read_request(const char *path)
{
    FILE *f = fopen(path, "rb");
    long len;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) <= 0 || len > 65536 ||
        fseek(f, 0, SEEK_SET) != 0 || (cfg.request = malloc((size_t)len)) == NULL ||
        fread(cfg.request, 1, (size_t)len, f) != (size_t)len) {
        if (f != NULL)
            fclose(f);
        return 0;
    }
    cfg.request_len = (size_t)len;
    fclose(f);
    return 1;
}

/* -u: single handshakes until one works; prints the time it took. */
static int until_ok(void)
{
    double t0 = now();
    long tries = 0;

    while (now() - t0 < cfg.until_ok) {
        tries++;
        if (handshake()) {
            printf("mode=%s usable_ms=%.1f tries=%ld\n", mode_name(), (now() - t0) * 1e3, tries);
            return 0;
        }
        usleep(1000);
    }
    printf("mode=%s usable_ms=-1 tries=%ld\n", mode_name(), tries);
    return 1;
}

int main(int argc, char **argv)
{
    static struct worker w[MAX_THREADS];
    const char *host = "127.0.0.1", *mode = "tls1.2";
    long ok = 0, failed = 0, n_lat = 0, port = 0;
    double t0, elapsed, *lat;
    int opt, have_key = 0, resume = 0;

    while ((opt = getopt(argc, argv, "H:p:V:i:k:f:c:t:n:u:C:r:R")) != -1) {
        switch (opt) {
        case 'H': host = optarg; break;
        case 'p': port = strtol(optarg, NULL, 10); break;
        case 'V': mode = optarg; break;
        case 'i': snprintf(cfg.identity, sizeof(cfg.identity), "%s", optarg); break;
        case 'k':
            if (!hexkey(optarg))
                return die("-k: not a hex key of 1 to 64 bytes");
            have_key = 1;
            break;
        case 'f':
            if (!from_file(optarg))
                return die("-f: no readable identity:hexkey line in the file");
            have_key = 1;
            break;
        case 'c': cfg.threads = (int)strtol(optarg, NULL, 10); break;
        case 't': cfg.seconds = strtod(optarg, NULL); break;
        case 'n': cfg.count = strtol(optarg, NULL, 10); break;
        case 'u': cfg.until_ok = strtod(optarg, NULL); break;
        case 'C': cfg.cipher = optarg; break;
        case 'r':
            if (!read_request(optarg))
                return die("-r: cannot read the request file (1 byte to 64 KiB)");
            break;
        case 'R': resume = 1; break;
        default: return die("usage: see the comment at the top of bench/handshake.c");
        }
    }
    if (strcmp(mode, "tls1.2") == 0)
        cfg.mode = TLS12;
    else if (strcmp(mode, "tls1.3") == 0)
        cfg.mode = TLS13;
    else if (strcmp(mode, "dtls1.2") == 0)
        cfg.mode = DTLS12;
    else
        return die("-V: tls1.2, tls1.3 or dtls1.2");
    if (port < 1 || port > 65535 || !have_key || cfg.identity[0] == '\0')
        return die("need -p PORT and -i IDENTITY -k HEXKEY (or -f FILE)");
    if (cfg.threads < 1 || cfg.threads > MAX_THREADS)
        return die("-c: 1 to 64");
    if (cfg.count > 0)
        cfg.seconds = 1e9;
    cfg.addr.sin_family = AF_INET;
    cfg.addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &cfg.addr.sin_addr) != 1)
        return die("-H: an IPv4 address");
    psk_cbs_set(cfg.identity, cfg.key, cfg.key_len);
    if ((cfg.ctx = make_ctx(resume, 1)) == NULL ||
        (resume && (cfg.resume_ctx = make_ctx(1, 0)) == NULL))
        return die("cannot set up the TLS client");
    if (cfg.until_ok > 0)
        return until_ok();

    t0 = now();
    cfg.end = t0 + cfg.seconds;
    for (int i = 0; i < cfg.threads; i++) {
        if ((w[i].lat = malloc(sizeof(double) * MAX_LAT)) == NULL)
            return die("out of memory");
        if (pthread_create(&w[i].tid, NULL, work, &w[i]) != 0)
            return die("cannot start a thread");
    }
    for (int i = 0; i < cfg.threads; i++) {
        pthread_join(w[i].tid, NULL);
        ok += w[i].ok;
        failed += w[i].failed;
        n_lat += w[i].n_lat;
    }
    elapsed = now() - t0;
    if ((lat = malloc(sizeof(double) * (size_t)(n_lat + 1))) == NULL)
        return die("out of memory");
    for (long i = 0, o = 0; i < cfg.threads; o += w[i].n_lat, i++) {
        memcpy(lat + o, w[i].lat, sizeof(double) * (size_t)w[i].n_lat);
        free(w[i].lat);
    }
    qsort(lat, (size_t)n_lat, sizeof(double), cmp);
    printf("mode=%s concurrency=%d handshakes=%ld failures=%ld seconds=%.3f hs_per_s=%.1f "
           "p50_us=%.0f p99_us=%.0f\n",
           mode_name(), cfg.threads, ok, failed, elapsed, (double)ok / elapsed,
           n_lat ? lat[n_lat / 2] : 0.0, n_lat ? lat[(long)(0.99 * (double)(n_lat - 1))] : 0.0);
    free(lat);
    SSL_CTX_free(cfg.ctx);
    SSL_CTX_free(cfg.resume_ctx);
    OPENSSL_cleanse(cfg.key, sizeof(cfg.key));
    return ok > 0 && failed == 0 ? 0 : 1;
}
