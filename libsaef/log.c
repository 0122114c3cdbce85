/* saef's log: one line per event, to stderr or syslog, and the peer's
   address as the lines show it. */
#include "rules.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

/* Callers that format costly arguments (saef_peer_addr) ask first. */
/* line holds "saef: " and n more bytes; one write per line, so the lines of
   several processes never mix. */
void saef_log_emit(const saef_ctx *s, int level, char *line, size_t n, size_t size)
{
    static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};

    n = 6 + (n < size - 7 ? n : size - 8);
    if (saef_ctx_int(s, SAEF_CONF_LOG) == SAEF_LOG_SYSLOG) {
        line[n] = '\0';
        syslog(LOG_AUTH | prio[level], "%s", line);
    } else {
        line[n++] = '\n';
        if (write(STDERR_FILENO, line, n) < 0)
            return;
    }
}

static void vlog(const saef_ctx *s, int level, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void vlog(const saef_ctx *s, int level, const char *fmt, va_list ap)
{
    char line[1024] = "saef: ";
    int n;

    if (!saef_log_on(s, level))
        return;
    n = vsnprintf(line + 6, sizeof(line) - 7, fmt, ap);
    if (n >= 0)
        saef_log_emit(s, level, line, (size_t)n, sizeof(line));
}

void saef_log(const saef_ctx *s, int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vlog(s, level, fmt, ap);
    va_end(ap);
}

/* Appends s at p, never past end: the audit line is built without printf,
   which cost more than the rest of saef's share of a handshake. */
char *saef_put_uint(char *p, const char *end, unsigned v)
{
    char digits[12];
    int n = 0;

    do
        digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n > 0 && p < end)
        *p++ = digits[--n];
    return p;
}

/* The peer's address (4 or 16 bytes into raw) and port; AF_UNSPEC if none. */
static int peer_raw(const SSL *ssl, unsigned char raw[16], unsigned short *port)
{
    struct sockaddr_storage sa;
    socklen_t sl = sizeof(sa);
    int fd = SSL_get_fd(ssl), family = AF_UNSPEC;

    /* TCP: the socket's peer; DTLS on an unconnected socket: the BIO's. */
    if (fd >= 0 && getpeername(fd, (struct sockaddr *)&sa, &sl) == 0 &&
        (sa.ss_family == AF_INET || sa.ss_family == AF_INET6)) {
        family = sa.ss_family;
        if (family == AF_INET) {
            memcpy(raw, &((struct sockaddr_in *)&sa)->sin_addr, 4);
            *port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
        } else {
            memcpy(raw, &((struct sockaddr_in6 *)&sa)->sin6_addr, 16);
            *port = ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
        }
    } else if (SSL_is_dtls(ssl)) {
        BIO_ADDR *addr = BIO_ADDR_new();
        size_t rl = 16;
        if (addr != NULL && BIO_dgram_get_peer(SSL_get_rbio(ssl), addr) > 0 &&
            (BIO_ADDR_family(addr) == AF_INET || BIO_ADDR_family(addr) == AF_INET6) &&
            BIO_ADDR_rawaddress(addr, NULL, &rl) && rl <= 16 &&
            BIO_ADDR_rawaddress(addr, raw, &rl)) {
            family = BIO_ADDR_family(addr);
            *port = ntohs(BIO_ADDR_rawport(addr));
        }
        BIO_ADDR_free(addr);
    }
    return family;
}

/* "ADDRESS:PORT" of the peer, or "-" (len >= 2). Not getnameinfo: this runs
   for every audit line. */
const char *saef_peer_addr(const SSL *ssl, char *buf, size_t len)
{
    unsigned char raw[16];
    unsigned short port = 0;
    char host[INET6_ADDRSTRLEN], *p = buf, *end = buf + len - 1;
    int family = peer_raw(ssl, raw, &port);

    if (family == AF_INET) {
        for (int i = 0; i < 4; i++) {
            p = saef_put_uint(p, end, raw[i]);
            p = saef_put(p, end, i < 3 ? "." : ":");
        }
    } else if (family == AF_INET6 && inet_ntop(family, raw, host, sizeof(host)) != NULL) {
        p = saef_put(saef_put(p, end, host), end, ":");
    } else {
        p = saef_put(p, end, "-");
    }
    if (family != AF_UNSPEC)
        p = saef_put_uint(p, end, port);
    *p = '\0';
    return buf;
}

/* Where a client comes from, for the MAF retrieval budget: its IPv4
   address, or its IPv6 /64 (one host usually holds a whole /64). Bytes
   into src, their count returned; 0 if unknown. */
size_t saef_peer_source(const SSL *ssl, unsigned char src[16])
{
    static const unsigned char v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    unsigned short port;
    int family = peer_raw(ssl, src, &port);

    if (family == AF_INET6 && memcmp(src, v4mapped, 12) == 0) {
        memmove(src, src + 12, 4);
        return 4;
    }
    return family == AF_INET ? 4 : family == AF_INET6 ? 8 : 0;
}

void saef_log_printf(const saef_ctx *s, int level, const char *fmt, ...)
{
    va_list ap;

    if (s == NULL)
        return;
    va_start(ap, fmt);
    vlog(s, level, fmt, ap);
    va_end(ap);
}

void saef_log_origin(const SSL *ssl, SAEF_ORIGIN rsc, const char *entity, const char *from,
                     size_t len)
{
    const ctx_data *cd = saef_ssl_cd(ssl);
    /* The originator comes from the network: escaped, and 128 bytes of it. */
    char shown[4 * 128 + 8] = "-", addr[64];
    size_t n = len < 128 ? len : 128;

    if (cd == NULL || !saef_log_on(cd->s, SAEF_LEVEL_INFO))
        return;
    if (from != NULL) {
        shown[0] = '"';
        saef_escape(from, n, shown + 1, sizeof(shown) - 6);
        strcat(shown, n < len ? "\"..." : "\"");
    }
    saef_log(cd->s, SAEF_LEVEL_INFO,
             "refused request rsc=%d (%s) entity=\"%s\" originator=%s peer=%s", (int)rsc,
             rsc == SAEF_ORIGIN_NO_ASSOCIATION ? "SECURITY_ASSOCIATION_REQUIRED"
                                               : "ORIGINATOR_NOT_AUTHENTICATED",
             entity != NULL ? entity : "-", shown, saef_peer_addr(ssl, addr, sizeof(addr)));
}
