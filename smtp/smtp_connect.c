/*
 * smtp_connect - from a next hop to open connections.
 *
 * Next hops are Postfix's: "domain" (its MX hosts, or the domain itself
 * when it has none), "domain:port", "[host]" and "[host]:port" (that host,
 * no MX lookup), an address literal "[192.0.2.1]", and for LMTP also
 * "unix:/path" and "inet:host:port".  MX hosts are tried by preference,
 * hosts of equal preference in random order (RFC 5321 5.1); the null MX
 * "0 ." (RFC 7505) bounces at once.  Every lookup goes through lib/mail/dns,
 * so $dns_servers decides where the questions go.
 *
 * A process keeps one idle connection after a delivery, for
 * $smtp_connection_cache_time_limit, and reuses it when its next request is
 * for the same transport and next hop (Postfix's connection cache, without
 * the separate scache process: master hands requests to busy-free
 * processes, so a process that just delivered to a destination is the
 * likely one to get the next job for it).
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mail/dns.h"
#include "mail/params.h"
#include "smtp.h"
#include "util/msg.h"
#include "util/strnum.h"
#include "util/xmalloc.h"

/* --- next hops ---------------------------------------------------------- */

static int smtp_port(const char *service, int lmtp, STRBUF *why)
{
    struct servent *se;
    unsigned long port;

    if (service == NULL || *service == 0)
        return lmtp ? 24 : 25;
    if (str_to_ulong(service, 65535, &port) == 0 && port > 0)
        return (int) port;
    if ((se = getservbyname(service, "tcp")) != NULL)
        return ntohs((unsigned short) se->s_port);
    strbuf_printf(why, "unknown service \"%s\"", service);
    return -1;
}

int smtp_dest_parse(SMTP_DEST *dest, const char *nexthop, int lmtp,
                    STRBUF *why)
{
    const char *hop = nexthop;
    char   *host = NULL;
    const char *service = NULL;
    char   *copy = NULL;

    memset(dest, 0, sizeof(*dest));
    dest->nexthop = xstrdup(nexthop);
    if (lmtp && strncmp(hop, "unix:", 5) == 0) {
        if (hop[5] == 0) {
            strbuf_printf(why, "bad next hop \"%s\": no socket path", nexthop);
            return -1;
        }
        dest->host = xstrdup(hop + 5);
        dest->unix_path = 1;
        return 0;
    }
    if (strncmp(hop, "inet:", 5) == 0)
        hop += 5;
    copy = xstrdup(hop);
    if (*copy == '[') {
        char   *end = strchr(copy, ']');

        if (end == NULL || end == copy + 1
            || (end[1] != 0 && end[1] != ':')) {
            strbuf_printf(why, "bad next hop \"%s\"", nexthop);
            free(copy);
            return -1;
        }
        *end = 0;
        host = copy + 1;
        if (strncasecmp(host, "ipv6:", 5) == 0)
            host += 5;
        service = end[1] == ':' ? end + 2 : NULL;
        dest->mx = 0;
    } else {
        char   *colon = strrchr(copy, ':');

        /* host:port; a bare IPv6 address must be written [addr]. */
        if (colon && strchr(copy, ':') == colon) {
            *colon = 0;
            service = colon + 1;
        }
        host = copy;
        dest->mx = !lmtp;
    }
    if (*host == 0) {
        strbuf_printf(why, "bad next hop \"%s\": no host", nexthop);
        free(copy);
        return -1;
    }
    if ((dest->port = smtp_port(service, lmtp, why)) < 0) {
        free(copy);
        return -1;
    }
    dest->host = xstrdup(host);
    free(copy);
    return 0;
}

void smtp_dest_free(SMTP_DEST *dest)
{
    xfree(&dest->nexthop);
    xfree(&dest->host);
}

/* --- addresses ------------------------------------------------------------ */

static void smtp_addr_add(SMTP_ADDR_LIST *list, const char *host,
                          const char *addr, int family, int port, int pref)
{
    SMTP_ADDR *a;

    list->addrs = xreallocarray(list->addrs, list->count + 1,
                                sizeof(SMTP_ADDR));
    a = &list->addrs[list->count++];
    a->host = xstrdup(host);
    a->addr = xstrdup(addr);
    a->family = family;
    a->port = port;
    a->pref = pref;
}

void smtp_addr_list_free(SMTP_ADDR_LIST *list)
{
    for (size_t i = 0; i < list->count; i++) {
        free(list->addrs[i].host);
        free(list->addrs[i].addr);
    }
    free(list->addrs);
    list->addrs = NULL;
    list->count = 0;
}

/*
 * The addresses of one host, as $inet_protocols allows (IPv4 first).
 * Returns DNS_FOUND, DNS_NOTFOUND or DNS_RETRY with why.
 */
static int smtp_host_addrs(const char *host, int port, int pref,
                           SMTP_ADDR_LIST *list, STRBUF *why)
{
    int want4 = strstr(var_inet_protocols, "ipv4") != NULL
        || strcasecmp(var_inet_protocols, "all") == 0;
    int want6 = strstr(var_inet_protocols, "ipv6") != NULL
        || strcasecmp(var_inet_protocols, "all") == 0;
    ARGV *answers = argv_alloc(4);
    unsigned char bin[16];
    int found = 0;
    int retry = 0;
    int rc;

    /* An address literal needs no lookup. */
    if (inet_pton(AF_INET, host, bin) == 1) {
        smtp_addr_add(list, host, host, AF_INET, port, pref);
        argv_free(&answers);
        return DNS_FOUND;
    }
    if (inet_pton(AF_INET6, host, bin) == 1) {
        smtp_addr_add(list, host, host, AF_INET6, port, pref);
        argv_free(&answers);
        return DNS_FOUND;
    }
    for (int pass = 0; pass < 2; pass++) {
        int family = pass == 0 ? AF_INET : AF_INET6;

        if ((pass == 0 && !want4) || (pass == 1 && !want6))
            continue;
        rc = dns_lookup(host, pass == 0 ? ns_t_a : ns_t_aaaa, answers, why);
        if (rc == DNS_RETRY)
            retry = 1;
        for (size_t i = 0; rc == DNS_FOUND && i < answers->argc; i++) {
            smtp_addr_add(list, host, answers->argv[i], family, port, pref);
            found = 1;
        }
    }
    argv_free(&answers);
    if (found)
        return DNS_FOUND;
    return retry ? DNS_RETRY : DNS_NOTFOUND;
}

typedef struct SMTP_MX {
    int     pref;
    char   *host;
    unsigned order;                     /* random, for equal preferences */
} SMTP_MX;

static int smtp_mx_compare(const void *a, const void *b)
{
    const SMTP_MX *x = a;
    const SMTP_MX *y = b;

    if (x->pref != y->pref)
        return x->pref < y->pref ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order;
}

int smtp_dest_addrs(SMTP_STATE *state, SMTP_ADDR_LIST *list)
{
    const SMTP_DEST *dest = &state->dest;
    ARGV *answers = argv_alloc(8);
    STRBUF *why = strbuf_alloc(128);
    SMTP_MX *mx = NULL;
    size_t nmx = 0;
    int implicit_mx = 0;
    int retry = 0;
    int rc = -1;

    if (dest->unix_path) {
        smtp_addr_add(list, var_myhostname, dest->host, AF_UNIX, 0, 0);
        rc = 0;
        goto done;
    }
    if (!dest->mx) {
        switch (smtp_host_addrs(dest->host, dest->port, 0, list, why)) {
        case DNS_FOUND:
            rc = 0;
            break;
        case DNS_RETRY:
            smtp_fail(state, 450, "4.4.3", "Host or domain name not found. "
                      "Name service error for name=%s type=A: Host not "
                      "found, try again", dest->host);
            break;
        default:
            smtp_fail(state, 550, "5.4.4", "Host or domain name not found. "
                      "Name service error for name=%s type=A: Host not "
                      "found", dest->host);
            break;
        }
        goto done;
    }
    switch (dns_lookup(dest->host, ns_t_mx, answers, why)) {
    case DNS_RETRY:
        smtp_fail(state, 450, "4.4.3", "Host or domain name not found. "
                  "Name service error for name=%s type=MX: Host not found, "
                  "try again", dest->host);
        goto done;
    case DNS_NOTFOUND:
        /* No MX: the domain itself (RFC 5321 5.1, the implicit MX). */
        argv_truncate(answers, 0);
        implicit_mx = 1;
        {
            STRBUF *self = strbuf_alloc(64);

            strbuf_printf(self, "0 %s", dest->host);
            argv_add(answers, self->data);
            strbuf_free(&self);
        }
        break;
    }
    for (size_t i = 0; i < answers->argc; i++) {
        char   *sp = strchr(answers->argv[i], ' ');
        unsigned long pref;

        if (sp == NULL)
            continue;
        *sp = 0;
        if (str_to_ulong(answers->argv[i], 65535, &pref) < 0)
            continue;
        if (strcmp(sp + 1, ".") == 0) {
            /* RFC 7505: the domain accepts no mail at all. */
            smtp_fail(state, 556, "5.1.10", "Domain %s does not accept mail "
                      "(nullMX)", dest->host);
            goto done;
        }
        mx = xreallocarray(mx, nmx + 1, sizeof(SMTP_MX));
        mx[nmx].pref = (int) pref;
        mx[nmx].host = xstrdup(sp + 1);
        mx[nmx].order = (unsigned) random();
        nmx++;
    }
    qsort(mx, nmx, sizeof(SMTP_MX), smtp_mx_compare);
    for (size_t i = 0; i < nmx; i++) {
        switch (smtp_host_addrs(mx[i].host, dest->port, mx[i].pref, list,
                                why)) {
        case DNS_RETRY:
            retry = 1;
            break;
        default:
            break;
        }
        if (var_smtp_mx_address_limit > 0
            && list->count >= (size_t) var_smtp_mx_address_limit) {
            while (list->count > (size_t) var_smtp_mx_address_limit) {
                list->count--;
                free(list->addrs[list->count].host);
                free(list->addrs[list->count].addr);
            }
            break;
        }
    }
    if (list->count == 0) {
        if (!implicit_mx)
            msg_warn("no MX host for %s has a valid address record",
                     dest->host);
        if (retry)
            smtp_fail(state, 450, "4.4.3", "Host or domain name not found. "
                      "Name service error for name=%s type=A: Host not "
                      "found, try again", nmx ? mx[0].host : dest->host);
        else
            smtp_fail(state, 550, "5.4.4", "Host or domain name not found. "
                      "Name service error for name=%s type=A: Host not "
                      "found", nmx ? mx[0].host : dest->host);
        goto done;
    }
    rc = 0;
done:
    for (size_t i = 0; i < nmx; i++)
        free(mx[i].host);
    free(mx);
    argv_free(&answers);
    strbuf_free(&why);
    return rc;
}

/* --- connections -------------------------------------------------------- */

static void smtp_session_names(SMTP_SESSION *sess)
{
    STRBUF *buf = strbuf_alloc(64);

    if (sess->port)
        strbuf_printf(buf, "%s[%s]:%d", sess->host, sess->addr, sess->port);
    else
        strbuf_printf(buf, "%s[%s]", sess->host, sess->addr);
    sess->namaddr = strbuf_export(&buf);
}

SMTP_SESSION *smtp_connect(SMTP_STATE *state, const SMTP_ADDR *a)
{
    struct sockaddr_storage ss;
    socklen_t len;
    SMTP_SESSION *sess;
    struct pollfd pfd;
    int fd;
    int err = 0;
    int flags;
    socklen_t errlen = sizeof(err);
    STRBUF *label = strbuf_alloc(64);

    if (a->port)
        strbuf_printf(label, "%s[%s]:%d", a->host, a->addr, a->port);
    else
        strbuf_printf(label, "%s[%s]", a->host, a->addr);
    memset(&ss, 0, sizeof(ss));
    if (a->family == AF_UNIX) {
        struct sockaddr_un *sun = (struct sockaddr_un *) &ss;

        if (strlen(a->addr) >= sizeof(sun->sun_path)) {
            smtp_fail(state, 450, "4.4.1", "connect to %s: socket path too "
                      "long", label->data);
            strbuf_free(&label);
            return NULL;
        }
        sun->sun_family = AF_UNIX;
        strcpy(sun->sun_path, a->addr);     /* fits: checked */
        len = sizeof(*sun);
    } else if (a->family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *) &ss;

        sin->sin_family = AF_INET;
        sin->sin_port = htons((unsigned short) a->port);
        inet_pton(AF_INET, a->addr, &sin->sin_addr);
        len = sizeof(*sin);
    } else {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *) &ss;

        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((unsigned short) a->port);
        inet_pton(AF_INET6, a->addr, &sin6->sin6_addr);
        len = sizeof(*sin6);
    }
    if ((fd = socket(a->family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        smtp_fail(state, 450, "4.4.1", "connect to %s: %s", label->data,
                  strerror(errno));
        strbuf_free(&label);
        return NULL;
    }
    /* Connect within smtp_connect_timeout, not the kernel's minutes. */
    flags = fcntl(fd, F_GETFL);
    (void) fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    if (connect(fd, (struct sockaddr *) &ss, len) < 0) {
        if (errno != EINPROGRESS) {
            err = errno;
        } else {
            int rc;

            pfd.fd = fd;
            pfd.events = POLLOUT;
            do
                rc = poll(&pfd, 1, var_smtp_connect_timeout * 1000);
            while (rc < 0 && errno == EINTR);
            if (rc == 0)
                err = ETIMEDOUT;
            else if (rc < 0)
                err = errno;
            else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &errlen) < 0)
                err = errno;
        }
    }
    if (err) {
        close(fd);
        smtp_fail(state, 450, "4.4.1", "connect to %s: %s", label->data,
                  strerror(err));
        /* Postfix logs every failed attempt, not only the last one. */
        msg_info("%s", state->fail.reason->data);
        strbuf_free(&label);
        return NULL;
    }
    strbuf_free(&label);
    sess = xcalloc(1, sizeof(*sess));
    sess->stream = stream_open(fd, var_smtp_helo_timeout, 4096);
    sess->host = xstrdup(a->host);
    sess->addr = xstrdup(a->addr);
    sess->port = a->port;
    sess->opened_ms = stream_now_ms();
    smtp_session_names(sess);
    return sess;
}

void smtp_session_free(SMTP_SESSION **sessp)
{
    SMTP_SESSION *sess = *sessp;

    if (sess == NULL)
        return;
    tls_session_free(&sess->tls, sess->stream);
    stream_close(&sess->stream);
    free(sess->host);
    free(sess->addr);
    free(sess->namaddr);
    free(sess->dest_key);
    free(sess->auth_mechs);
    free(sess->tls_summary);
    free(sess);
    *sessp = NULL;
}

/* --- the connection cache ------------------------------------------------ */

static SMTP_SESSION *smtp_cached;

/* Did the server say or close anything while we did not listen? */
static int smtp_cache_alive(SMTP_SESSION *sess)
{
    struct pollfd pfd;

    if (stream_pending(sess->stream) > 0)
        return 0;
    pfd.fd = sess->stream->fd;
    pfd.events = POLLIN;
    return poll(&pfd, 1, 0) == 0;
}

static int smtp_cache_expired(const SMTP_SESSION *sess, long long now)
{
    return now - sess->idle_ms >= var_smtp_connection_cache_time_limit * 1000LL
        || now - sess->opened_ms
        >= var_smtp_connection_reuse_time_limit * 1000LL
        || (var_smtp_connection_reuse_count_limit > 0
            && sess->uses >= var_smtp_connection_reuse_count_limit);
}

SMTP_SESSION *smtp_cache_take(const char *dest_key)
{
    SMTP_SESSION *sess = smtp_cached;

    if (sess == NULL)
        return NULL;
    smtp_cached = NULL;
    if (strcmp(sess->dest_key, dest_key) == 0
        && !smtp_cache_expired(sess, stream_now_ms())
        && smtp_cache_alive(sess))
        return sess;
    /* Another destination, or gone stale: say goodbye. */
    if (smtp_cache_alive(sess))
        smtp_quit(sess);
    smtp_session_free(&sess);
    return NULL;
}

void smtp_cache_put(SMTP_SESSION *sess)
{
    SMTP_SESSION *old = smtp_cached;

    smtp_cached = NULL;
    if (old) {
        smtp_quit(old);
        smtp_session_free(&old);
    }
    sess->idle_ms = stream_now_ms();
    if (var_smtp_connection_cache_time_limit == 0
        || smtp_cache_expired(sess, sess->idle_ms)) {
        smtp_quit(sess);
        smtp_session_free(&sess);
        return;
    }
    smtp_cached = sess;
}

int smtp_cache_idle(void)
{
    long long left;

    if (smtp_cached == NULL)
        return 0;
    left = smtp_cached->idle_ms
        + var_smtp_connection_cache_time_limit * 1000LL - stream_now_ms();
    if (left <= 0 || !smtp_cache_alive(smtp_cached)) {
        smtp_cache_close();
        return 0;
    }
    return (int) left;
}

void smtp_cache_close(void)
{
    SMTP_SESSION *sess = smtp_cached;

    smtp_cached = NULL;
    if (sess) {
        if (smtp_cache_alive(sess))
            smtp_quit(sess);
        smtp_session_free(&sess);
    }
}
