/*
 * token - cursor-based splitting with brace grouping.
 */
#include <ctype.h>
#include <string.h>

#include "util/token.h"

int token_next(TOKEN_CURSOR *cur, const char *delim,
               const char **tok_r, size_t *len_r)
{
    const char *cp = cur->pos + strspn(cur->pos, delim);
    size_t len = strcspn(cp, delim);

    cur->pos = cp + len;
    if (len == 0)
        return 0;
    *tok_r = cp;
    *len_r = len;
    return 1;
}

const char *token_match_brace(const char *str)
{
    int depth = 0;

    for (const char *cp = str; *cp; cp++) {
        if (*cp == '{')
            depth++;
        else if (*cp == '}' && --depth == 0)
            return cp;
    }
    return NULL;
}

int token_next_braced(TOKEN_CURSOR *cur, const char *delim,
                      const char **tok_r, size_t *len_r,
                      const char **error_r)
{
    const char *cp = cur->pos + strspn(cur->pos, delim);
    const char *end;
    const char *start;

    if (*cp != '{')
        return token_next(cur, delim, tok_r, len_r);
    if ((end = token_match_brace(cp)) == NULL) {
        *error_r = "missing '}'";
        cur->pos = cp + strlen(cp);
        return -1;
    }
    if (end[1] != 0 && strchr(delim, end[1]) == NULL) {
        *error_r = "text after '}' must be separated by a delimiter";
        cur->pos = cp + strlen(cp);
        return -1;
    }
    start = cp + 1;
    while (start < end && isspace((unsigned char) *start))
        start++;
    cur->pos = end + 1;
    while (end > start && isspace((unsigned char) end[-1]))
        end--;
    *tok_r = start;
    *len_r = (size_t) (end - start);
    return 1;
}

int token_next_grouped(TOKEN_CURSOR *cur, const char *delim,
                       const char **tok_r, size_t *len_r,
                       const char **error_r)
{
    const char *start = cur->pos + strspn(cur->pos, delim);
    const char *cp = start;
    int depth = 0;

    for (; *cp; cp++) {
        if (*cp == '{')
            depth++;
        else if (*cp == '}' && depth > 0)
            depth--;
        else if (depth == 0 && strchr(delim, *cp))
            break;
    }
    cur->pos = cp;
    if (depth > 0) {
        *error_r = "missing '}'";
        return -1;
    }
    if (cp == start)
        return 0;
    *tok_r = start;
    *len_r = (size_t) (cp - start);
    return 1;
}
