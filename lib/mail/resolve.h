/*
 * resolve - where a recipient goes: transport and next hop (Postfix's
 * trivial-rewrite resolve), for qmgr.
 *
 * The address is first put in canonical form.  transport_maps decides
 * first (transport:nexthop, either part may be empty); otherwise the
 * domain's class: mydestination -> $local_transport, virtual_mailbox_domains
 * -> $virtual_transport, relay_domains -> $relay_transport, anything else
 * -> $default_transport.  The next hop of the last two is $relayhost when
 * set; a transport_maps next hop wins over both.  An empty next hop means
 * the recipient domain ($myhostname for local).
 */
#ifndef POSTERN_RESOLVE_H
#define POSTERN_RESOLVE_H

#include "util/strbuf.h"

typedef enum {
    RESOLVE_LOCAL, RESOLVE_VIRTUAL, RESOLVE_RELAY, RESOLVE_DEFAULT,
} RESOLVE_CLASS;

typedef struct RESOLVE_REPLY {
    STRBUF *transport;
    STRBUF *nexthop;
    STRBUF *recipient;                  /* canonical */
    RESOLVE_CLASS class;
} RESOLVE_REPLY;

/* Open the tables and lists (before chroot). */
void    resolve_init(void);

RESOLVE_REPLY *resolve_reply_alloc(void);
void    resolve_reply_free(RESOLVE_REPLY **rp);

/* 0, or -1 with err when a table failed (try again later). */
int     resolve_addr(const char *addr, RESOLVE_REPLY *reply, STRBUF *err);

#endif
