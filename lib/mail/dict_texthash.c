/*
 * dict_texthash - texthash:/path reads a postmap(1)-format source file into
 * memory when opened; no build step, and no update until reopened.
 */
#include "mail/dict_hashed.h"
#include "mail/dict_source.h"

static int dict_texthash_add(const char *key, const char *value, int lineno,
                             void *ctx, STRBUF *err)
{
    (void) lineno;
    (void) err;
    (void) dict_hashed_add(ctx, key, value);    /* duplicates already warned */
    return 0;
}

DICT *dict_texthash_open(const char *name, int flags, STRBUF *err)
{
    DICT_HASHED *dh = dict_hashed_alloc("texthash", name, flags);

    if (dict_source_parse_file(name, (flags & DICT_FLAG_FOLD_FIX)
                               ? DICT_SOURCE_FOLD : 0,
                               dict_texthash_add, dh, err) < 0) {
        dh->dict.close(&dh->dict);
        return NULL;
    }
    return &dh->dict;
}
