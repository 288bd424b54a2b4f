/*
 * dict_proxy - proxy:TYPE:NAME, accepted for Postfix compatibility and
 * opened as TYPE:NAME in the calling process.
 *
 * In Postfix, proxy: sends lookups to the proxymap(8) service, which
 * opens tables a chrooted or unprivileged daemon could not open itself
 * and shares one open table among many processes.  Postern has no
 * proxymap service, but Postfix configurations use the prefix widely
 * (the default local_recipient_maps is "proxy:unix:passwd.byname
 * $alias_maps"), so an admin's main.cf must not break on it.  The table
 * is opened directly instead: it must therefore be readable where the
 * daemon runs (inside its chroot, as mail_owner).  A proxy: table behaves
 * exactly like the table it names, including its folding and errors.
 *
 * The wrapper holds its own reference to the inner table, so that the
 * registry in dict.c can share "proxy:X" and "X" independently.
 */
#include <stdlib.h>
#include <string.h>

#include "mail/dict.h"

typedef struct DICT_PROXY {
    DICT    dict;
    DICT   *inner;
} DICT_PROXY;

/* Pass an error of the inner table on, with its reason. */
static int dict_proxy_result(DICT_PROXY *dp, int rc)
{
    if (rc == DICT_ERROR)
        strbuf_set(dp->dict.error, dp->inner->error->data);
    return rc;
}

static int dict_proxy_lookup(DICT *d, const char *key, const char **value_r)
{
    DICT_PROXY *dp = (DICT_PROXY *) d;

    /* Same flags as the inner table: dict_lookup() folded as it would. */
    return dict_proxy_result(dp, dp->inner->lookup(dp->inner, key, value_r));
}

static int dict_proxy_sequence(DICT *d, int first, const char **key_r,
                               const char **value_r)
{
    DICT_PROXY *dp = (DICT_PROXY *) d;

    return dict_proxy_result(dp, dp->inner->sequence(dp->inner, first, key_r,
                                                     value_r));
}

static void dict_proxy_close(DICT *d)
{
    DICT_PROXY *dp = (DICT_PROXY *) d;

    dict_close(&dp->inner);
    dict_free(d);
}

DICT *dict_proxy_open(const char *name, int flags, STRBUF *err)
{
    DICT_PROXY *dp;
    DICT   *inner;

    if (strncmp(name, "proxy:", 6) == 0) {
        strbuf_printf(err, "proxy:%s: a proxy: table cannot name another "
                      "proxy: table", name);
        return NULL;
    }
    if ((inner = dict_open(name, flags, err)) == NULL)
        return NULL;
    dp = (DICT_PROXY *) dict_alloc("proxy", name, sizeof(*dp), inner->flags);
    dp->inner = inner;
    dp->dict.lookup = dict_proxy_lookup;
    dp->dict.sequence = inner->sequence ? dict_proxy_sequence : NULL;
    dp->dict.close = dict_proxy_close;
    return &dp->dict;
}
