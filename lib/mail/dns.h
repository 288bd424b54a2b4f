/*
 * dns - the one DNS resolver module of Postern.
 *
 * Queries go to $dns_servers when set (address[:port], so that tests run
 * their own server on loopback; set without a usable entry, every lookup
 * is DNS_RETRY), else to the system's resolvers.  Every answer is one of
 * three: found, not found (NXDOMAIN or no data: a permanent answer), or
 * try again (SERVFAIL, REFUSED, timeout).
 */
#ifndef POSTERN_DNS_H
#define POSTERN_DNS_H

#include "util/argv.h"
#include "util/strbuf.h"

#define DNS_FOUND       1
#define DNS_NOTFOUND    0
#define DNS_RETRY       (-1)

/* Resource records of one type, as text: an address, a name, TXT
 * strings joined, or "PREF NAME" for MX. */
int     dns_lookup(const char *name, int type, ARGV *answers, STRBUF *why);

/* Does the domain accept mail: an MX that is not the null MX (RFC 7505),
 * or else an A or AAAA record? */
int     dns_domain_exists(const char *domain);

#endif
