/*
 * dict_static - static:value and static:{ value with spaces }: every key
 * finds the same value.
 */
#include <stdlib.h>
#include <string.h>

#include "mail/dict.h"
#include "util/token.h"
#include "util/xmalloc.h"

typedef struct DICT_STATIC {
    DICT    dict;
    char   *value;
} DICT_STATIC;

static int dict_static_lookup(DICT *d, const char *key, const char **value_r)
{
    (void) key;
    *value_r = ((DICT_STATIC *) d)->value;
    return DICT_FOUND;
}

static void dict_static_close(DICT *d)
{
    free(((DICT_STATIC *) d)->value);
    dict_free(d);
}

DICT *dict_static_open(const char *name, int flags, STRBUF *err)
{
    DICT_STATIC *ds;
    const char *value = name;
    size_t len = strlen(name);

    if (*name == '{') {
        const char *end = token_match_brace(name);
        TOKEN_CURSOR cur;
        const char *error;

        if (end == NULL || end[1] != 0) {
            strbuf_printf(err, "static:%s: missing or misplaced '}'", name);
            return NULL;
        }
        token_init(&cur, name);
        if (token_next_braced(&cur, "", &value, &len, &error) < 0) {
            strbuf_printf(err, "static:%s: %s", name, error);
            return NULL;
        }
    }
    ds = (DICT_STATIC *) dict_alloc("static", name, sizeof(*ds),
                                    flags | DICT_FLAG_FIXED);
    ds->value = xstrndup(value, len);
    ds->dict.lookup = dict_static_lookup;
    ds->dict.close = dict_static_close;
    return &ds->dict;
}
