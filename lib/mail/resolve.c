/*
 * resolve - recipient to transport:nexthop.
 */
#include <string.h>

#include "mail/addr_canon.h"
#include "mail/maps.h"
#include "mail/match_list.h"
#include "mail/params.h"
#include "mail/resolve.h"
#include "util/msg.h"
#include "util/xmalloc.h"

static MATCH_LIST *resolve_mydest;
static MATCH_LIST *resolve_vmailbox;
static MATCH_LIST *resolve_relay;
static MAPS *resolve_transport_maps;

void resolve_init(void)
{
    resolve_mydest = match_list_domains("mydestination", var_mydestination);
    resolve_vmailbox = match_list_domains("virtual_mailbox_domains",
                                          var_virtual_mailbox_domains);
    resolve_relay = match_list_domains("relay_domains", var_relay_domains);
    resolve_transport_maps = maps_open("transport_maps", var_transport_maps,
                                       DICT_FLAG_DEFAULT);
}

RESOLVE_REPLY *resolve_reply_alloc(void)
{
    RESOLVE_REPLY *r = xcalloc(1, sizeof(*r));

    r->transport = strbuf_alloc(16);
    r->nexthop = strbuf_alloc(64);
    r->recipient = strbuf_alloc(64);
    return r;
}

void resolve_reply_free(RESOLVE_REPLY **rp)
{
    if (*rp == NULL)
        return;
    strbuf_free(&(*rp)->transport);
    strbuf_free(&(*rp)->nexthop);
    strbuf_free(&(*rp)->recipient);
    xfree(rp);
}

/* "transport:nexthop" into the reply; empty parts stay empty. */
static void resolve_split(const char *value, RESOLVE_REPLY *r)
{
    const char *colon = strchr(value, ':');

    if (colon == NULL) {
        strbuf_set(r->transport, value);
        strbuf_reset(r->nexthop);
    } else {
        strbuf_setn(r->transport, value, (size_t) (colon - value));
        strbuf_set(r->nexthop, colon + 1);
    }
}

int resolve_addr(const char *addr, RESOLVE_REPLY *r, STRBUF *err)
{
    STRBUF *from_table = strbuf_alloc(64);
    const char *domain;
    const char *value;
    const char *class_transport;
    int m;
    int rc = -1;

    addr_canon(addr, resolve_mydest, r->recipient);
    domain = addr_domain(r->recipient->data);
    strbuf_reset(r->transport);
    strbuf_reset(r->nexthop);
    switch (maps_find_addr(resolve_transport_maps, r->recipient->data,
                           MAPS_ADDR_TRANSPORT, 0, &value, NULL)) {
    case DICT_ERROR:
        strbuf_set(err, resolve_transport_maps->error->data);
        goto done;
    case DICT_FOUND:
        strbuf_set(from_table, value);
        break;
    }
    if ((m = match_list_domain(resolve_mydest, domain)) == MATCH_YES) {
        r->class = RESOLVE_LOCAL;
        class_transport = var_local_transport;
    } else if (m == MATCH_ERROR) {
        strbuf_set(err, match_list_error(resolve_mydest));
        goto done;
    } else if ((m = match_list_domain(resolve_vmailbox, domain))
               == MATCH_YES) {
        r->class = RESOLVE_VIRTUAL;
        class_transport = var_virtual_transport;
    } else if (m == MATCH_ERROR) {
        strbuf_set(err, match_list_error(resolve_vmailbox));
        goto done;
    } else if ((m = match_list_domain(resolve_relay, domain)) == MATCH_YES) {
        r->class = RESOLVE_RELAY;
        class_transport = var_relay_transport;
    } else if (m == MATCH_ERROR) {
        strbuf_set(err, match_list_error(resolve_relay));
        goto done;
    } else {
        r->class = RESOLVE_DEFAULT;
        class_transport = var_default_transport;
    }
    resolve_split(class_transport, r);
    /* relayhost: the next hop of mail to other domains (Postfix). */
    if ((r->class == RESOLVE_RELAY || r->class == RESOLVE_DEFAULT)
        && r->nexthop->len == 0 && *var_relayhost)
        strbuf_set(r->nexthop, var_relayhost);
    if (from_table->len) {
        RESOLVE_REPLY *t = resolve_reply_alloc();

        resolve_split(from_table->data, t);
        if (t->transport->len)
            strbuf_set(r->transport, t->transport->data);
        /*
         * A table next hop wins; a table transport alone means the
         * recipient domain; ":" alone changes nothing (transport(5)).
         */
        if (t->transport->len || t->nexthop->len)
            strbuf_set(r->nexthop, t->nexthop->data);
        resolve_reply_free(&t);
    }
    if (r->nexthop->len == 0)
        strbuf_set(r->nexthop, r->class == RESOLVE_LOCAL ? var_myhostname
                   : domain);
    rc = 0;
done:
    strbuf_free(&from_table);
    return rc;
}
