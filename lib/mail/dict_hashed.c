/*
 * dict_hashed - in-memory string table shared by texthash: and inline:.
 */
#include <stdlib.h>

#include "mail/dict_hashed.h"
#include "util/xmalloc.h"

static int dict_hashed_lookup(DICT *d, const char *key, const char **value_r)
{
    const char *value = htable_find(((DICT_HASHED *) d)->table, key);

    if (value == NULL)
        return DICT_NOTFOUND;
    *value_r = value;
    return DICT_FOUND;
}

static int dict_hashed_sequence(DICT *d, int first, const char **key_r,
                                const char **value_r)
{
    DICT_HASHED *dh = (DICT_HASHED *) d;

    dh->cursor = first ? dh->table->head
        : dh->cursor ? dh->cursor->list_next : NULL;
    if (dh->cursor == NULL)
        return DICT_NOTFOUND;
    *key_r = dh->cursor->key;
    *value_r = dh->cursor->value;
    return DICT_FOUND;
}

static void dict_hashed_close(DICT *d)
{
    htable_free(&((DICT_HASHED *) d)->table, free);
    dict_free(d);
}

DICT_HASHED *dict_hashed_alloc(const char *type, const char *name, int flags)
{
    DICT_HASHED *dh = (DICT_HASHED *) dict_alloc(type, name, sizeof(*dh),
                                                 flags | DICT_FLAG_FIXED);

    dh->table = htable_alloc(64);
    dh->dict.lookup = dict_hashed_lookup;
    dh->dict.sequence = dict_hashed_sequence;
    dh->dict.close = dict_hashed_close;
    return dh;
}

int dict_hashed_add(DICT_HASHED *dh, const char *key, const char *value)
{
    char *copy = xstrdup(value);

    if (htable_enter(dh->table, key, copy) == NULL) {
        free(copy);
        return -1;
    }
    return 0;
}
