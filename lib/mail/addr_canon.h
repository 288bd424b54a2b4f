/*
 * addr_canon - the canonical form of an envelope address, as Postfix's
 * trivial-rewrite makes it: site!user becomes user@site (swap_bangpath),
 * user%domain@ourdomain becomes user@domain (allow_percent_hack, for
 * mydestination domains only), and an address without a domain gets
 * @$myorigin.  The null address stays empty.
 *
 * cleanup rewrites with it, and smtpd decides relaying on the same form,
 * so that user%remote@ourdomain cannot slip past the relay check.
 */
#ifndef POSTERN_ADDR_CANON_H
#define POSTERN_ADDR_CANON_H

#include "mail/match_list.h"
#include "util/strbuf.h"

void    addr_canon(const char *addr, MATCH_LIST *local_domains, STRBUF *out);

/* The domain part (after the last "@"), or "" when there is none. */
const char *addr_domain(const char *addr);

#endif
