/*
 * local_resolve - what a recipient address is: a virtual mailbox, an
 * alias, or a system user.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "local.h"
#include "mail/addr_canon.h"
#include "mail/params.h"
#include "util/msg.h"
#include "util/strnum.h"
#include "util/xmalloc.h"

/* The local part of an address, lowercase, in out. */
static void local_localpart(const char *address, STRBUF *out)
{
    const char *at = strrchr(address, '@');

    strbuf_setn(out, address, at ? (size_t) (at - address) : strlen(address));
    strbuf_lower(out);
}

/* The local part without its extension (recipient_delimiter). */
static void local_user(const char *localpart, STRBUF *out)
{
    size_t cut = *var_recipient_delimiter
        ? strcspn(localpart, var_recipient_delimiter) : strlen(localpart);

    /* "+foo" alone is a user named "+foo", not an extension of nobody. */
    if (cut == 0)
        cut = strlen(localpart);
    strbuf_setn(out, localpart, cut);
}

/*
 * Mail that already went through this address (a Delivered-To: header
 * names it) is looping: bounce it.  1 when it did.
 */
int local_loop_check(LOCAL_RCPT *lrc, const char *address)
{
    STRBUF *key = strbuf_alloc(64);
    int loop;

    strbuf_set(key, address);
    strbuf_lower(key);
    loop = htable_locate(lrc->lr->delivered, key->data) != NULL;
    strbuf_free(&key);
    if (loop)
        local_branch(lrc, address, 550, "5.4.6", "mail forwarding loop for %s",
                     address);
    return loop;
}

void local_deliver_address(LOCAL_RCPT *lrc, const char *address, int depth,
                           ARGV *chain)
{
    STRBUF *localpart = strbuf_alloc(64);
    STRBUF *user = strbuf_alloc(64);

    if (local_loop_check(lrc, address))
        goto done;
    local_localpart(address, localpart);
    if (local_alias(lrc, address, localpart->data, depth, chain) == 0) {
        local_user(localpart->data, user);
        local_deliver_user(lrc, address, user->data);
    }
done:
    strbuf_free(&localpart);
    strbuf_free(&user);
}

/* "\user" in an alias: the user's own mailbox, no alias lookup. */
void local_deliver_bare(LOCAL_RCPT *lrc, const char *address)
{
    STRBUF *localpart = strbuf_alloc(64);
    STRBUF *user = strbuf_alloc(64);

    if (!local_loop_check(lrc, address)) {
        local_localpart(address, localpart);
        local_user(localpart->data, user);
        local_deliver_user(lrc, address, user->data);
    }
    strbuf_free(&localpart);
    strbuf_free(&user);
}

/* --- virtual mailboxes ------------------------------------------------ */

void local_deliver_virtual(LOCAL_RCPT *lrc, const char *address)
{
    VMAILBOX box;
    LOCAL_PRIV priv;
    STRBUF *name = strbuf_alloc(64);

    memset(&priv, 0, sizeof(priv));
    box.path = strbuf_alloc(128);
    if (local_loop_check(lrc, address))
        goto done;
    switch (vmailbox_find(&local_tables.vmailbox, address, &box)) {
    case VMAILBOX_FOUND:
        break;
    case VMAILBOX_NOTFOUND:
        local_branch(lrc, address, 550, "5.1.1", "unknown user: \"%s\"",
                     address);
        goto done;
    case VMAILBOX_RETRY:
        local_branch(lrc, address, 450, "4.3.0",
                     "virtual_mailbox_maps lookup failure");
        goto done;
    default:
        local_branch(lrc, address, 450, "4.3.5",
                     "mail system configuration error");
        goto done;
    }
    /* Every decision uses the address folded to lower case (virtual(8)). */
    strbuf_set(name, address);
    strbuf_lower(name);
    priv.uid = box.uid;
    priv.gid = box.gid;
    priv.extra_gid = (gid_t) -1;
    priv.name = name->data;
    if (local_mark_done(lrc, "mailbox", box.path->data))
        local_deliver_store(lrc, address, box.path->data, &priv,
                            var_virtual_mailbox_limit,
                            MAILDIR_FLAG_DOTLOCK | MAILDIR_FLAG_OWNER_CHECK
                            | MAILDIR_FLAG_MKDIR, "virtual");
done:
    strbuf_free(&box.path);
    strbuf_free(&name);
}
