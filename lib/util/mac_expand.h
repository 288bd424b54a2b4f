/*
 * mac_expand - Postfix-style $name expansion.
 *
 *   $name, ${name}, $(name)    the value of name; undefined -> empty
 *   ${name?value}              value when $name is non-empty
 *   ${name:value}              value when $name is empty
 *   ${name?{v1}:{v2}}          v1 or v2 (also ${name?{v1}:v2}, ${name:{v}})
 *   ${{a} OP {b} ? {v1} : {v2}}
 *                              a relational test in place of the name; OP
 *                              is == != < <= > >=, numeric when both sides
 *                              are all digits, else lexical; OP followed by
 *                              "level" compares compatibility levels (3.10
 *                              is above 3.9)
 *   $$                         a single $
 * Each value is itself expanded; whitespace around {value} is ignored.
 */
#ifndef POSTERN_MAC_EXPAND_H
#define POSTERN_MAC_EXPAND_H

#include "util/strbuf.h"

/* Return the raw value of name, or NULL when it is undefined. */
typedef const char *(*MAC_LOOKUP)(const char *name, void *ctx);

#define MAC_EXP_RECURSE (1 << 0)        /* expand looked-up values too */

/*
 * Append the expansion of text to out.  Returns 0, or -1 with err set on
 * a syntax error or runaway recursion (a parameter that refers to itself).
 */
int     mac_expand(STRBUF *out, const char *text, int flags,
                   MAC_LOOKUP lookup, void *ctx, STRBUF *err);

/* Compare compatibility levels "major[.minor[.patch]]"; -2 if malformed. */
int     mac_level_compare(const char *a, const char *b);

#endif
