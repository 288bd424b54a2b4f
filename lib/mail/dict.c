/*
 * dict - table registry, case folding and surrogate tables.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "mail/dict.h"
#include "util/htable.h"
#include "util/msg.h"
#include "util/xmalloc.h"

static const struct {
    const char *type;
    DICT_OPEN_FN open;
} dict_types[] = {
    {"lmdb", dict_lmdb_open},
    {"pcre", dict_pcre_open},
    {"texthash", dict_texthash_open},
    {"inline", dict_inline_open},
    {"static", dict_static_open},
    {"unix", dict_unix_open},
    {"proxy", dict_proxy_open},         /* no proxymap: opens TYPE:NAME */
};

/* Open tables by "type:name|flags"; see dict.h on why they are shared. */
static HTABLE *dict_registry;

static DICT_OPEN_FN dict_find_type(const char *type, size_t len)
{
    for (size_t i = 0; i < sizeof(dict_types) / sizeof(dict_types[0]); i++)
        if (strlen(dict_types[i].type) == len
            && strncmp(dict_types[i].type, type, len) == 0)
            return dict_types[i].open;
    return NULL;
}

int dict_type_known(const char *type)
{
    return dict_find_type(type, strlen(type)) != NULL;
}

DICT *dict_alloc(const char *type, const char *name, size_t size, int flags)
{
    DICT *d;

    if (size < sizeof(DICT))
        msg_panic("dict_alloc: size %zu too small", size);
    d = xcalloc(1, size);
    d->type = xstrdup(type);
    d->name = xstrdup(name);
    d->flags = flags;
    d->error = strbuf_alloc(64);
    return d;
}

void dict_free(DICT *d)
{
    free(d->type);
    free(d->name);
    strbuf_free(&d->error);
    free(d);
}

int dict_fail(DICT *d, const char *fmt, ...)
{
    va_list ap;

    strbuf_reset(d->error);
    va_start(ap, fmt);
    strbuf_vprintf_append(d->error, fmt, ap);
    va_end(ap);
    return DICT_ERROR;
}

static void dict_registry_key(STRBUF *key, const char *spec, int flags)
{
    strbuf_printf(key, "%s|%d", spec, flags & ~(DICT_FLAG_FIXED
                                                | DICT_FLAG_PATTERN
                                                | DICT_FLAG_SURROGATE));
}

DICT *dict_open(const char *spec, int flags, STRBUF *err)
{
    const char *colon = strchr(spec, ':');
    DICT_OPEN_FN open_fn;
    STRBUF *key;
    DICT *d;

    if (colon == NULL || colon == spec) {
        strbuf_printf(err, "table \"%s\": need type:name", spec);
        return NULL;
    }
    if ((open_fn = dict_find_type(spec, (size_t) (colon - spec))) == NULL) {
        strbuf_printf(err, "table \"%s\": unsupported dictionary type: %.*s",
                      spec, (int) (colon - spec), spec);
        return NULL;
    }
    if (dict_registry == NULL)
        dict_registry = htable_alloc(32);
    key = strbuf_alloc(128);
    dict_registry_key(key, spec, flags);
    if ((d = htable_find(dict_registry, key->data)) != NULL) {
        d->refcount++;
    } else if ((d = open_fn(colon + 1, flags, err)) != NULL) {
        d->refcount = 1;
        htable_enter(dict_registry, key->data, d);
    }
    strbuf_free(&key);
    return d;
}

void dict_close(DICT **dp)
{
    DICT *d = *dp;
    HTABLE_ENTRY *ent;

    if (d == NULL)
        return;
    *dp = NULL;
    if (--d->refcount > 0)
        return;

    /*
     * Forget the entry that points to this table, rather than rebuild its
     * key from d->type and d->name: a type may store another name than
     * the one it was opened with, and a stale entry is a use after free.
     */
    if (!(d->flags & DICT_FLAG_SURROGATE) && dict_registry != NULL) {
        HTABLE_FOREACH(dict_registry, ent) {
            if (ent->value == d) {
                htable_delete(dict_registry, ent->key, NULL);
                break;
            }
        }
    }
    d->close(d);
}

/* Surrogate: every lookup fails with the reason the table did not open. */
static int dict_surrogate_lookup(DICT *d, const char *key,
                                 const char **value_r)
{
    (void) d;
    (void) key;
    (void) value_r;
    return DICT_ERROR;
}

static void dict_surrogate_close(DICT *d)
{
    dict_free(d);
}

DICT *dict_open_surrogate(const char *spec, int flags)
{
    STRBUF *err = strbuf_alloc(128);
    const char *colon;
    DICT *d;

    if ((d = dict_open(spec, flags, err)) == NULL) {
        char *type;

        msg_warn("%s", err->data);
        colon = strchr(spec, ':');
        type = colon ? xstrndup(spec, (size_t) (colon - spec)) : xstrdup("");
        d = dict_alloc(type, colon ? colon + 1 : spec, sizeof(DICT),
                       flags | DICT_FLAG_SURROGATE);
        free(type);
        d->lookup = dict_surrogate_lookup;
        d->close = dict_surrogate_close;
        d->refcount = 1;
        strbuf_set(d->error, err->data);
    }
    strbuf_free(&err);
    return d;
}

int dict_lookup(DICT *d, const char *key, const char **value_r)
{
    STRBUF *folded;
    int rc;

    if ((d->flags & (DICT_FLAG_FIXED | DICT_FLAG_FOLD_FIX))
        != (DICT_FLAG_FIXED | DICT_FLAG_FOLD_FIX))
        return d->lookup(d, key, value_r);
    folded = strbuf_alloc(strlen(key) + 1);
    strbuf_set(folded, key);
    strbuf_lower(folded);
    rc = d->lookup(d, folded->data, value_r);
    strbuf_free(&folded);
    return rc;
}
