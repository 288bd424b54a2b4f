/*
 * dict_hashed - an in-memory table of strings, the store behind the
 * texthash: and inline: types.
 */
#ifndef POSTERN_DICT_HASHED_H
#define POSTERN_DICT_HASHED_H

#include "mail/dict.h"
#include "util/htable.h"

typedef struct DICT_HASHED {
    DICT    dict;
    HTABLE *table;                      /* key -> xstrdup'ed value */
    HTABLE_ENTRY *cursor;               /* sequence() position */
} DICT_HASHED;

DICT_HASHED *dict_hashed_alloc(const char *type, const char *name, int flags);

/* Add key/value unless the key exists; returns 0, or -1 for a duplicate. */
int     dict_hashed_add(DICT_HASHED *dh, const char *key, const char *value);

#endif
