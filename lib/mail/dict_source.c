/*
 * dict_source - postmap(1)-format source parser.
 */
#include <ctype.h>
#include <errno.h>
#include <string.h>

#include "mail/dict_source.h"
#include "util/cfline.h"
#include "util/htable.h"
#include "util/msg.h"

int dict_source_parse(const char *text, size_t len, const char *origin,
                      int flags, DICT_SOURCE_FN fn, void *ctx, STRBUF *err)
{
    int fold = flags & DICT_SOURCE_FOLD;
    int aliases = flags & DICT_SOURCE_ALIASES;
    STRBUF *line = strbuf_alloc(256);
    HTABLE *seen = htable_alloc(256);
    CFLINE cf;
    int lineno;
    int rc;
    int status = 0;

    cfline_init(&cf, text, len);
    while ((rc = cfline_next(&cf, line, &lineno, NULL)) > 0) {
        char *key = line->data;
        char *cp = key;
        char *value;

        while (isspace((unsigned char) *key))
            key++;
        cp = key;
        if (*cp == '"') {
            /* Quoted key: up to the closing quote, quotes included. */
            char *close = strchr(cp + 1, '"');

            if (close == NULL) {
                strbuf_printf(err, "%s, line %d: missing '\"' in key", origin,
                              lineno);
                status = -1;
                break;
            }
            cp = close + 1;
            if (*cp && !isspace((unsigned char) *cp) && !(aliases && *cp == ':')) {
                strbuf_printf(err, "%s, line %d: text after quoted key",
                              origin, lineno);
                status = -1;
                break;
            }
        } else if (aliases) {
            cp = strchr(key, ':') ? strchr(key, ':') : key + strlen(key);
            while (cp > key && isspace((unsigned char) cp[-1]))
                cp--;
        } else {
            while (*cp && !isspace((unsigned char) *cp))
                cp++;
        }
        value = cp;
        while (isspace((unsigned char) *value))
            value++;
        if (aliases) {
            if (*value != ':' || cp == key) {
                strbuf_printf(err, "%s, line %d: expected format: name: "
                              "value", origin, lineno);
                status = -1;
                break;
            }
            value++;
            while (isspace((unsigned char) *value))
                value++;
        }
        if (*value == 0) {
            strbuf_printf(err, "%s, line %d: expected format: key whitespace "
                          "value", origin, lineno);
            status = -1;
            break;
        }
        *cp = 0;
        /* postalias drops the quotes around an alias name. */
        if (aliases && *key == '"' && cp - key >= 2 && cp[-1] == '"') {
            cp[-1] = 0;
            key++;
        }
        if (fold)
            for (char *kp = key; *kp; kp++)
                *kp = (char) tolower((unsigned char) *kp);
        if (htable_enter(seen, key, NULL) == NULL) {
            msg_warn("%s, line %d: duplicate entry: \"%s\"", origin, lineno,
                     key);
            continue;
        }
        if (fn(key, value, lineno, ctx, err) < 0) {
            status = -1;
            break;
        }
    }
    if (rc < 0) {
        strbuf_printf(err, "%s, line %d: NUL byte in input", origin, lineno);
        status = -1;
    }
    htable_free(&seen, NULL);
    strbuf_free(&line);
    return status;
}

int dict_source_parse_file(const char *path, int flags, DICT_SOURCE_FN fn,
                           void *ctx, STRBUF *err)
{
    STRBUF *text = strbuf_alloc(8192);
    int status;

    if (cfline_read_file(path, text) < 0) {
        strbuf_printf(err, "open %s: %s", path, strerror(errno));
        status = -1;
    } else {
        status = dict_source_parse(text->data, text->len, path, flags, fn, ctx,
                                   err);
    }
    strbuf_free(&text);
    return status;
}
