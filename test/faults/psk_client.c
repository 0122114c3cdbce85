/*
 * saef-test-psk-client: native TLS-PSK handshakes in a loop, one new
 * connection each, for load and latency tests (no saef in this client).
 *
 *   saef-test-psk-client [-v 1.2|1.3|both] [-n COUNT] [-t SECONDS] [-s STOPFILE]
 *                        [-w MS] [-o RESULTS] [-m [-c]] [-b ADDRESS] [-r REQUEST]
 *                        HOST:PORT IDENTITY HEXKEY
 *
 * After each handshake the client sends REQUEST (default "ping\n"; "\r\n"
 * written as such) and, with -r, reads the answer to its end; a handshake
 * whose answer is empty counts as failed.
 * -m: made-up MAF identities: IDENTITY is "@MAF-FQDN", and each handshake
 * sends a new random HEX32 in front of it; -c: each in a random mix of
 * upper and lower case, MAF-FQDN included.
 * -b: connect from ADDRESS (127.0.0.2 ... on Linux loopback), a source
 * address of its own.
 *
 * Stops after COUNT handshakes, SECONDS, or when STOPFILE exists (first
 * met). Prints "handshakes=N ok=N fail=N p50_ms=X p99_ms=X max_ms=X"; with
 * -o, also appends one "ok MS [LAST-LINE]" or "fail MS" line per handshake
 * to RESULTS, LAST-LINE being the answer's last line (with -r).
 * Exit status: 0 if every handshake completed, 1 if one failed, 2 on usage.
 */
#define _GNU_SOURCE /* memrchr */
#include "psk_cbs.h"
#include <ctype.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static const char *identity, *request = "ping\n";
static int want_answer, random_case;
static struct addrinfo *source;
static char made_up[256];
static unsigned char key[256];
static long key_len;

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int connect_to(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    struct timeval limit = {10, 0};

    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
    if ((source != NULL && bind(fd, source->ai_addr, source->ai_addrlen) != 0) ||
        connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The answer's last non-empty line into last (size 256); 0 if none. */
static int read_answer(SSL *ssl, char *last)
{
    char buf[4096];
    const char *line;
    size_t len = 0;
    int n;

    while (len < sizeof(buf) - 1 &&
           (n = SSL_read(ssl, buf + len, (int)(sizeof(buf) - 1 - len))) > 0)
        len += (size_t)n;
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    buf[len] = '\0';
    if (len == 0)
        return 0;
    line = memrchr(buf, '\n', len);
    line = line != NULL ? line + 1 : buf;
    len -= (size_t)(line - buf);
    memcpy(last, line, len < 255 ? len : 255);
    last[len < 255 ? len : 255] = '\0';
    return 1;
}

/* One handshake on a new connection; 1 if it completed with the PSK (and,
   with -r, an answer came). */
static int handshake(SSL_CTX *ctx, const struct addrinfo *ai, char *last)
{
    SSL *ssl = SSL_new(ctx);
    int fd = connect_to(ai), ok = 0;

    last[0] = '\0';
    if (ssl != NULL && fd >= 0 && SSL_set_fd(ssl, fd) && SSL_connect(ssl) == 1) {
        ok = SSL_version(ssl) != TLS1_3_VERSION || SSL_session_reused(ssl);
        if (ok && SSL_write(ssl, request, (int)strlen(request)) != (int)strlen(request))
            ok = 0;
        if (ok && want_answer)
            ok = read_answer(ssl, last);
        SSL_shutdown(ssl);
    }
    ERR_clear_error();
    SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    return ok;
}

/* A new HEX32 before the "@MAF-FQDN" in made_up[32...]. */
static void make_up_identity(void)
{
    unsigned char r[16];
    char hex[33];

    RAND_bytes(r, sizeof(r));
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02X", r[i]);
    memcpy(made_up, hex, 32);
    for (char *c = made_up; random_case && *c; c++) {
        RAND_bytes(r, 1);
        *c = (char)(r[0] & 1 ? toupper((unsigned char)*c) : tolower((unsigned char)*c));
    }
}

/* "\r" and "\n" in a command-line REQUEST, in place. */
static char *unescape(char *s)
{
    char *o = s;

    for (const char *p = s; *p; p++) {
        if (p[0] == '\\' && (p[1] == 'r' || p[1] == 'n')) {
            *o++ = p[1] == 'r' ? '\r' : '\n';
            p++;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
    return s;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static int usage(void)
{
    fprintf(stderr, "usage: saef-test-psk-client [-v 1.2|1.3|both] [-n COUNT] [-t SECONDS] "
                    "[-s STOPFILE] [-w MS] [-o RESULTS] [-m [-c]] [-b ADDRESS] [-r REQUEST] "
                    "HOST:PORT IDENTITY HEXKEY\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *versions = "both", *stop = NULL, *results = NULL;
    long count = 1, secs = 0, wait_ms = 0, n = 0, ok = 0, cap = 1024;
    double *lat = malloc(sizeof(double) * (size_t)cap), start;
    char host[256], port[16], last[256];
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *ai;
    const char *bind_to = NULL;
    unsigned char *k;
    SSL_CTX *ctx[2];
    FILE *out = NULL;
    int c, make_up = 0;

    while ((c = getopt(argc, argv, "v:n:t:s:w:o:mcb:r:")) != -1) {
        switch (c) {
        case 'v': versions = optarg; break;
        case 'n': count = atol(optarg); break;
        case 't': secs = atol(optarg), count = 0; break;
        case 's': stop = optarg, count = 0; break;
        case 'w': wait_ms = atol(optarg); break;
        case 'o': results = optarg; break;
        case 'm': make_up = 1; break;
        case 'c': random_case = 1; break;
        case 'b': bind_to = optarg; break;
        case 'r':
            request = unescape(optarg);
            want_answer = 1;
            break;
        default: return usage();
        }
    }
    if (argc - optind != 3 || lat == NULL ||
        sscanf(argv[optind], "%255[^:]:%15s", host, port) != 2 ||
        (strcmp(versions, "1.2") && strcmp(versions, "1.3") && strcmp(versions, "both")))
        return usage();
    identity = argv[optind + 1];
    if (make_up) {
        if (identity[0] != '@' || strlen(identity) > sizeof(made_up) - 33)
            return usage();
        snprintf(made_up, sizeof(made_up), "%032d%s", 0, identity);
        identity = made_up;
    }
    if ((k = OPENSSL_hexstr2buf(argv[optind + 2], &key_len)) == NULL || key_len > 256)
        return usage();
    memcpy(key, k, (size_t)key_len);
    OPENSSL_clear_free(k, (size_t)key_len);
    psk_cbs_set(identity, key, (size_t)key_len);
    if (getaddrinfo(host, port, &hints, &ai) != 0 ||
        (bind_to != NULL && getaddrinfo(bind_to, NULL, &hints, &source) != 0))
        return usage();
    if (results != NULL && (out = fopen(results, "a")) == NULL)
        return usage();
    for (int i = 0; i < 2; i++) {
        int v = i ? TLS1_3_VERSION : TLS1_2_VERSION;
        ctx[i] = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_min_proto_version(ctx[i], v);
        SSL_CTX_set_max_proto_version(ctx[i], v);
        SSL_CTX_set_cipher_list(ctx[i], "PSK");
        SSL_CTX_set_ciphersuites(ctx[i], "TLS_AES_128_GCM_SHA256");
        SSL_CTX_set_psk_client_callback(ctx[i], psk_cbs_client);
        SSL_CTX_set_psk_use_session_callback(ctx[i], psk_cbs_use_session);
    }
    start = now_ms();
    while ((count == 0 || n < count) && (secs == 0 || now_ms() - start < secs * 1e3) &&
           (stop == NULL || access(stop, F_OK) != 0)) {
        int v = !strcmp(versions, "1.3") || (!strcmp(versions, "both") && n % 2);
        double t0 = now_ms();
        int good;

        if (make_up)
            make_up_identity();
        good = handshake(ctx[v], ai, last);
        if (n == cap && (lat = realloc(lat, sizeof(double) * (size_t)(cap *= 2))) == NULL)
            return 2;
        lat[n++] = now_ms() - t0;
        ok += good;
        if (out != NULL)
            fprintf(out, "%s %.3f%s%s\n", good ? "ok" : "fail", lat[n - 1], last[0] ? " " : "",
                    last);
        if (wait_ms > 0)
            usleep((useconds_t)wait_ms * 1000);
    }
    qsort(lat, (size_t)n, sizeof(double), cmp_double);
    printf("handshakes=%ld ok=%ld fail=%ld p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", n, ok, n - ok,
           n ? lat[n / 2] : 0.0, n ? lat[n * 99 / 100] : 0.0, n ? lat[n - 1] : 0.0);
    if (out != NULL)
        fclose(out);
    OPENSSL_cleanse(key, sizeof(key));
    freeaddrinfo(ai);
    if (source != NULL)
        freeaddrinfo(source);
    SSL_CTX_free(ctx[0]);
    SSL_CTX_free(ctx[1]);
    free(lat);
    return ok == n ? 0 : 1;
}
