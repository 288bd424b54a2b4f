/*
 * token - split text with an explicit cursor (Postfix mystrtok).
 *
 * The input is never modified; tokens are returned as pointer + length.
 */
#ifndef POSTERN_TOKEN_H
#define POSTERN_TOKEN_H

#include <stddef.h>

typedef struct TOKEN_CURSOR {
    const char *pos;
} TOKEN_CURSOR;

static inline void token_init(TOKEN_CURSOR *cur, const char *str)
{
    cur->pos = str;
}

/* Next run of non-delimiter characters: 1, or 0 at the end. */
int     token_next(TOKEN_CURSOR *cur, const char *delim,
                   const char **tok_r, size_t *len_r);

/*
 * Like token_next(), but "{ text }" is one token, returned without the
 * braces and without the whitespace just inside them; braces nest.  A
 * brace must start a token (Postfix: "{" in the middle of a word is
 * ordinary text).  Returns 1, 0 at the end, -1 with *error_r set on a
 * missing "}" or text glued to a closing "}".
 */
int     token_next_braced(TOKEN_CURSOR *cur, const char *delim,
                          const char **tok_r, size_t *len_r,
                          const char **error_r);

/*
 * Like token_next(), but delimiters inside braces do not split, and the
 * braces stay: "inline:{ a=1, b=2 }, lmdb:/x" gives "inline:{ a=1, b=2 }"
 * and "lmdb:/x" (Postfix mystrtokq).  -1 with *error_r on a missing "}".
 */
int     token_next_grouped(TOKEN_CURSOR *cur, const char *delim,
                           const char **tok_r, size_t *len_r,
                           const char **error_r);

/* Find the "}" matching the "{" at str[0]; NULL if unbalanced. */
const char *token_match_brace(const char *str);

#endif
