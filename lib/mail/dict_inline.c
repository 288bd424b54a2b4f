/*
 * dict_inline - inline:{ key=value, { key = value with spaces } }.
 *
 * Items are separated by commas and/or whitespace; a braced item may hold
 * spaces around "=" and in the value.  Keys are folded like other
 * fixed-key tables.
 */
#include <ctype.h>
#include <string.h>

#include "mail/dict_hashed.h"
#include "util/token.h"
#include "util/xmalloc.h"

#define INLINE_DELIM    ", \t\r\n"

static int dict_inline_item(DICT_HASHED *dh, const char *item, size_t len,
                            int flags, STRBUF *err)
{
    STRBUF *key = strbuf_alloc(len + 1);
    const char *eq = memchr(item, '=', len);
    const char *value;
    size_t vlen;
    int status = 0;

    if (eq == NULL || eq == item) {
        strbuf_printf(err, "inline table: expected key=value, found \"%.*s\"",
                      (int) len, item);
        strbuf_free(&key);
        return -1;
    }
    strbuf_append(key, item, (size_t) (eq - item));
    strbuf_trim_right(key);
    if (flags & DICT_FLAG_FOLD_FIX)
        strbuf_lower(key);
    value = eq + 1;
    vlen = len - (size_t) (value - item);
    while (vlen > 0 && isspace((unsigned char) *value))
        value++, vlen--;
    {
        char *v = xstrndup(value, vlen);

        if (key->len == 0) {
            strbuf_printf(err, "inline table: empty key in \"%.*s\"",
                          (int) len, item);
            status = -1;
        } else if (dict_hashed_add(dh, key->data, v) < 0) {
            strbuf_printf(err, "inline table: duplicate key \"%s\"", key->data);
            status = -1;
        }
        free(v);
    }
    strbuf_free(&key);
    return status;
}

DICT *dict_inline_open(const char *name, int flags, STRBUF *err)
{
    DICT_HASHED *dh;
    const char *end = token_match_brace(name);
    const char *error;
    const char *tok;
    char *body;
    size_t len;
    TOKEN_CURSOR cur;
    int rc;

    if (*name != '{' || end == NULL || end[1] != 0) {
        strbuf_printf(err, "inline:%s: expected inline:{ key=value, ... }",
                      name);
        return NULL;
    }
    dh = dict_hashed_alloc("inline", name, flags);
    body = xstrndup(name + 1, (size_t) (end - name - 1));
    token_init(&cur, body);
    while ((rc = token_next_braced(&cur, INLINE_DELIM, &tok, &len,
                                   &error)) > 0)
        if (dict_inline_item(dh, tok, len, flags, err) < 0)
            break;
    if (rc < 0)
        strbuf_printf(err, "inline:%s: %s", name, error);
    free(body);
    if (rc != 0) {
        dh->dict.close(&dh->dict);
        return NULL;
    }
    return &dh->dict;
}
