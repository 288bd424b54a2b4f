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

/*
 * A numeric id from virtual_uid_maps or virtual_gid_maps: 0 with *id_r,
 * or -1 after a warning (a configuration error: the mail waits).
 */
static int local_virtual_id(MAPS *maps, const char *title,
                            const char *address, long min, long *id_r)
{
    const char *value;

    switch (maps_find_addr(maps, address, MAPS_ADDR_MAILBOX, 0, &value,
                           NULL)) {
    case DICT_FOUND:
        if (str_to_long(value, min, 0x7fffffffL, id_r) == 0)
            return 0;
        msg_warn("recipient %s: bad %s value \"%s\" (the least allowed is "
                 "%ld)", address, title, value, min);
        return -1;
    case DICT_NOTFOUND:
        msg_warn("recipient %s: not found in %s", address, title);
        return -1;
    default:
        msg_warn("recipient %s: %s", address, maps->error->data);
        return -1;
    }
}

/* Is there a ".." component in a path from a table? */
static int local_dotdot(const char *path)
{
    for (const char *cp = path; (cp = strstr(cp, "..")) != NULL; cp += 2)
        if ((cp == path || cp[-1] == '/') && (cp[2] == 0 || cp[2] == '/'))
            return 1;
    return 0;
}

void local_deliver_virtual(LOCAL_RCPT *lrc, const char *address)
{
    STRBUF *key = strbuf_alloc(64);
    STRBUF *path = strbuf_alloc(128);
    LOCAL_PRIV priv;
    const char *value;
    long uid;
    long gid;

    memset(&priv, 0, sizeof(priv));
    if (local_loop_check(lrc, address))
        goto done;
    /* Every decision uses the address folded to lower case (virtual(8)). */
    strbuf_set(key, address);
    strbuf_lower(key);
    switch (maps_find_addr(local_tables.vmailbox_maps, key->data,
                           MAPS_ADDR_MAILBOX, 0, &value, NULL)) {
    case DICT_FOUND:
        break;
    case DICT_NOTFOUND:
        local_branch(lrc, address, 550, "5.1.1", "unknown user: \"%s\"",
                     address);
        goto done;
    default:
        msg_warn("recipient %s: %s", address,
                 local_tables.vmailbox_maps->error->data);
        local_branch(lrc, address, 450, "4.3.0",
                     "virtual_mailbox_maps lookup failure");
        goto done;
    }
    strbuf_printf(path, "%s/%s", var_virtual_mailbox_base, value);
    if (*var_virtual_mailbox_base != '/' || *value == 0
        || local_dotdot(value)) {
        msg_warn("recipient %s: bad mailbox path \"%s\" (virtual_mailbox_base"
                 " must be an absolute path, the table result a path under "
                 "it)", address, path->data);
        local_branch(lrc, address, 450, "4.3.5",
                     "mail system configuration error");
        goto done;
    }
    if (local_virtual_id(local_tables.vuid_maps, "virtual_uid_maps",
                         key->data, var_virtual_minimum_uid, &uid) < 0
        || local_virtual_id(local_tables.vgid_maps, "virtual_gid_maps",
                            key->data, 1, &gid) < 0) {
        local_branch(lrc, address, 450, "4.3.5",
                     "mail system configuration error");
        goto done;
    }
    priv.uid = (uid_t) uid;
    priv.gid = (gid_t) gid;
    priv.extra_gid = (gid_t) -1;
    priv.name = key->data;
    if (local_mark_done(lrc, "mailbox", path->data))
        local_deliver_store(lrc, address, path->data, &priv,
                            var_virtual_mailbox_limit,
                            MAILDIR_FLAG_DOTLOCK | MAILDIR_FLAG_OWNER_CHECK
                            | MAILDIR_FLAG_MKDIR, "virtual");
done:
    strbuf_free(&key);
    strbuf_free(&path);
}
