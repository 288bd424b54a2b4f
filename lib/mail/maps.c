/*
 * maps - table lists and address lookup orders.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "mail/maps.h"
#include "mail/params.h"
#include "util/argv.h"
#include "util/msg.h"
#include "util/token.h"
#include "util/xmalloc.h"

#define MAPS_DELIM  ", \t\r\n"

MAPS *maps_open(const char *title, const char *list, int flags)
{
    MAPS *maps = xcalloc(1, sizeof(*maps));
    ARGV *specs = argv_alloc(4);
    TOKEN_CURSOR cur;
    const char *error;
    const char *tok;
    size_t len;
    int rc;

    maps->title = xstrdup(title);
    maps->error = strbuf_alloc(64);
    token_init(&cur, list);
    while ((rc = token_next_grouped(&cur, MAPS_DELIM, &tok, &len,
                                    &error)) > 0)
        argv_addn(specs, tok, len);
    if (rc < 0) {
        argv_free(&specs);
        /* A list that cannot be parsed: one failing table stands for it. */
        msg_warn("%s = %s: %s", title, list, error);
        maps->dicts = xcalloc(1, sizeof(DICT *));
        maps->dicts[maps->count++] = dict_open_surrogate(list, flags);
        return maps;
    }
    maps->dicts = xcalloc(specs->argc ? specs->argc : 1, sizeof(DICT *));
    for (size_t i = 0; i < specs->argc; i++)
        maps->dicts[maps->count++] = dict_open_surrogate(specs->argv[i], flags);
    argv_free(&specs);
    return maps;
}

void maps_free(MAPS **mapsp)
{
    MAPS *maps = *mapsp;

    if (maps == NULL)
        return;
    for (size_t i = 0; i < maps->count; i++)
        dict_close(&maps->dicts[i]);
    free(maps->dicts);
    free(maps->title);
    strbuf_free(&maps->error);
    xfree(mapsp);
}

static int maps_find_flags(MAPS *maps, const char *key, int first_key,
                           const char **value_r)
{
    for (size_t i = 0; i < maps->count; i++) {
        DICT *d = maps->dicts[i];

        /* Pattern tables see only the whole address, once. */
        if ((d->flags & DICT_FLAG_PATTERN) && !first_key)
            continue;
        switch (dict_lookup(d, key, value_r)) {
        case DICT_FOUND:
            return DICT_FOUND;
        case DICT_ERROR:
            strbuf_printf(maps->error, "%s: %s:%s: %s", maps->title, d->type,
                          d->name, d->error->data);
            return DICT_ERROR;
        }
    }
    return DICT_NOTFOUND;
}

int maps_find(MAPS *maps, const char *key, const char **value_r)
{
    return maps_find_flags(maps, key, 1, value_r);
}

static void maps_add_key(ARGV *keys, const char *key)
{
    for (size_t i = 0; i < keys->argc; i++)
        if (strcmp(keys->argv[i], key) == 0)
            return;
    argv_add(keys, key);
}

void maps_addr_keys(const char *address, MAPS_ADDR_KIND kind, int flags,
                    const char *delimiters, ARGV *keys)
{
    STRBUF *buf = strbuf_alloc(128);
    const char *at = strrchr(address, '@');
    char *local = at ? xstrndup(address, (size_t) (at - address))
        : xstrdup(address);
    const char *domain = at ? at + 1 : "";
    char *bare = xstrdup(local);        /* the user without extension */
    size_t cut;

    if (*address == 0 && kind == MAPS_ADDR_ACCESS) {
        argv_add(keys, "<>");
        goto done;
    }
    if (delimiters && *delimiters
        && (cut = strcspn(local, delimiters)) > 0 && local[cut])
        bare[cut] = 0;

    /* user+ext@domain, user@domain */
    if (kind != MAPS_ADDR_ALIAS && at) {
        strbuf_printf(buf, "%s@%s", local, domain);
        maps_add_key(keys, buf->data);
        strbuf_printf(buf, "%s@%s", bare, domain);
        maps_add_key(keys, buf->data);
    }
    switch (kind) {
    case MAPS_ADDR_VIRTUAL:
        if (!at || (flags & MAPS_ADDR_FLAG_LOCAL)) {
            maps_add_key(keys, local);
            maps_add_key(keys, bare);
        }
        if (at) {
            strbuf_printf(buf, "@%s", domain);
            maps_add_key(keys, buf->data);
        }
        break;
    case MAPS_ADDR_MAILBOX:
        if (at) {
            strbuf_printf(buf, "@%s", domain);
            maps_add_key(keys, buf->data);
        }
        break;
    case MAPS_ADDR_ALIAS:
        maps_add_key(keys, local);
        maps_add_key(keys, bare);
        break;
    case MAPS_ADDR_ACCESS:
    case MAPS_ADDR_TRANSPORT:
        if (at && *domain) {
            const char *cp = domain;

            maps_add_key(keys, domain);
            while ((cp = strchr(cp, '.')) != NULL) {
                if (kind == MAPS_ADDR_ACCESS
                    && (flags & MAPS_ADDR_FLAG_PARENT)) {
                    if (cp[1])
                        maps_add_key(keys, cp + 1);
                } else {
                    maps_add_key(keys, cp);
                }
                cp++;
            }
        }
        if (kind == MAPS_ADDR_ACCESS) {
            strbuf_printf(buf, "%s@", local);
            maps_add_key(keys, buf->data);
            strbuf_printf(buf, "%s@", bare);
            maps_add_key(keys, buf->data);
        } else {
            maps_add_key(keys, "*");
        }
        break;
    }
done:
    free(local);
    free(bare);
    strbuf_free(&buf);
}

int maps_find_addr(MAPS *maps, const char *address, MAPS_ADDR_KIND kind,
                   int flags, const char **value_r, const char **key_r)
{
    static ARGV *keys;
    int rc = DICT_NOTFOUND;

    if (keys == NULL)
        keys = argv_alloc(8);
    argv_truncate(keys, 0);
    maps_addr_keys(address, kind, flags, var_recipient_delimiter, keys);
    for (size_t i = 0; i < keys->argc; i++) {
        if ((rc = maps_find_flags(maps, keys->argv[i], i == 0, value_r))
            != DICT_NOTFOUND) {
            if (key_r)
                *key_r = keys->argv[i];
            break;
        }
    }
    return rc;
}
