/*
 * dns - resolver queries through glibc's res_n* API.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/dns.h"
#include "mail/params.h"
#include "util/msg.h"
#include "util/strnum.h"
#include "util/xmalloc.h"

#define DNS_ANSWER_MAX  65535

static struct __res_state dns_state;
static int dns_ready;
static int dns_no_servers;              /* $dns_servers set, none usable */

/* Give glibc's resolver state back at exit (valgrind sees it as lost). */
static void dns_cleanup(void)
{
    res_nclose(&dns_state);
}

/* Set up the resolver once: the system's, or $dns_servers. */
static void dns_init(void)
{
    ARGV *servers;
    int n = 0;

    if (dns_ready)
        return;
    if (res_ninit(&dns_state) < 0)
        msg_warn("res_ninit failed; using defaults");
    else
        atexit(dns_cleanup);
    dns_state.retrans = 2;
    dns_state.retry = 2;
    servers = argv_split(var_dns_servers ? var_dns_servers : "", ", \t");
    for (size_t i = 0; i < servers->argc && n < MAXNS; i++) {
        char *host = xstrdup(servers->argv[i]);
        char *colon = strrchr(host, ':');
        unsigned long port = 53;
        struct in_addr addr;

        if (colon) {
            *colon = 0;
            if (str_to_ulong(colon + 1, 65535, &port) < 0 || port == 0) {
                msg_warn("dns_servers: bad port in \"%s\"", servers->argv[i]);
                free(host);
                continue;
            }
        }
        if (inet_pton(AF_INET, host, &addr) != 1) {
            msg_warn("dns_servers: \"%s\" is not an IPv4 address",
                     servers->argv[i]);
            free(host);
            continue;
        }
        memset(&dns_state.nsaddr_list[n], 0, sizeof(struct sockaddr_in));
        dns_state.nsaddr_list[n].sin_family = AF_INET;
        dns_state.nsaddr_list[n].sin_addr = addr;
        dns_state.nsaddr_list[n].sin_port = htons((unsigned short) port);
        n++;
        free(host);
    }
    if (n > 0)
        dns_state.nscount = n;
    /* Never fall back to the system's resolvers behind the admin's back. */
    else if (servers->argc > 0)
        dns_no_servers = 1;
    argv_free(&servers);
    dns_ready = 1;
}

int dns_lookup(const char *name, int type, ARGV *answers, STRBUF *why)
{
    unsigned char *buf = xmalloc(DNS_ANSWER_MAX);
    ns_msg msg;
    int len;
    int rc = DNS_NOTFOUND;

    dns_init();
    argv_truncate(answers, 0);
    if (dns_no_servers) {
        strbuf_printf(why, "%s: no usable server in dns_servers", name);
        rc = DNS_RETRY;
        goto done;
    }
    len = res_nquery(&dns_state, name, ns_c_in, type, buf, DNS_ANSWER_MAX);
    if (len < 0) {
        switch (dns_state.res_h_errno) {
        case HOST_NOT_FOUND:
            strbuf_printf(why, "%s: host not found", name);
            rc = DNS_NOTFOUND;
            break;
        case NO_DATA:
            strbuf_printf(why, "%s: no data", name);
            rc = DNS_NOTFOUND;
            break;
        default:
            strbuf_printf(why, "%s: temporary failure", name);
            rc = DNS_RETRY;
            break;
        }
        goto done;
    }
    if (ns_initparse(buf, len, &msg) < 0) {
        strbuf_printf(why, "%s: malformed reply", name);
        rc = DNS_RETRY;
        goto done;
    }
    for (int i = 0; i < ns_msg_count(msg, ns_s_an); i++) {
        char text[NS_MAXDNAME + 16];
        ns_rr rr;

        if (ns_parserr(&msg, ns_s_an, i, &rr) < 0
            || (int) ns_rr_type(rr) != type)
            continue;
        switch (type) {
        case ns_t_a:
            if (ns_rr_rdlen(rr) == 4
                && inet_ntop(AF_INET, ns_rr_rdata(rr), text, sizeof(text)))
                argv_add(answers, text);
            break;
        case ns_t_aaaa:
            if (ns_rr_rdlen(rr) == 16
                && inet_ntop(AF_INET6, ns_rr_rdata(rr), text, sizeof(text)))
                argv_add(answers, text);
            break;
        case ns_t_mx:
            if (ns_rr_rdlen(rr) >= 3) {
                char host[NS_MAXDNAME];
                unsigned pref = ns_get16(ns_rr_rdata(rr));

                if (dn_expand(ns_msg_base(msg), ns_msg_end(msg),
                              ns_rr_rdata(rr) + 2, host, sizeof(host)) >= 0) {
                    snprintf(text, sizeof(text), "%u %s", pref,
                             *host ? host : ".");
                    argv_add(answers, text);
                }
            }
            break;
        case ns_t_ptr:
        case ns_t_cname:
            if (dn_expand(ns_msg_base(msg), ns_msg_end(msg), ns_rr_rdata(rr),
                          text, sizeof(text)) >= 0)
                argv_add(answers, text);
            break;
        case ns_t_txt:
            {
                STRBUF *joined = strbuf_alloc(256);
                const unsigned char *cp = ns_rr_rdata(rr);
                const unsigned char *end = cp + ns_rr_rdlen(rr);

                while (cp < end && cp + 1 + *cp <= end) {
                    strbuf_append(joined, cp + 1, *cp);
                    cp += 1 + *cp;
                }
                argv_add(answers, joined->data);
                strbuf_free(&joined);
            }
            break;
        }
    }
    rc = answers->argc > 0 ? DNS_FOUND : DNS_NOTFOUND;
    if (rc == DNS_NOTFOUND)
        strbuf_printf(why, "%s: no data", name);
done:
    free(buf);
    return rc;
}

int dns_domain_exists(const char *domain)
{
    static const int types[] = {ns_t_a, ns_t_aaaa};
    ARGV *answers = argv_alloc(4);
    STRBUF *why = strbuf_alloc(64);
    int rc;
    int retry = 0;

    if ((rc = dns_lookup(domain, ns_t_mx, answers, why)) == DNS_FOUND) {
        /* RFC 7505: a single "0 ." MX says the domain takes no mail. */
        rc = !(answers->argc == 1 && strcmp(answers->argv[0], "0 .") == 0);
        goto done;
    }
    retry = rc == DNS_RETRY;
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        if ((rc = dns_lookup(domain, types[i], answers, why)) == DNS_FOUND)
            goto done;
        retry |= rc == DNS_RETRY;
    }
    rc = retry ? DNS_RETRY : DNS_NOTFOUND;
done:
    argv_free(&answers);
    strbuf_free(&why);
    return rc;
}
