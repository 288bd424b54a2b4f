/*
 * argv - a growable, NULL-terminated vector of strings that it owns.
 */
#ifndef POSTERN_ARGV_H
#define POSTERN_ARGV_H

#include <stddef.h>

typedef struct ARGV {
    char  **argv;                       /* argv[argc] == NULL */
    size_t  argc;
    size_t  size;
} ARGV;

ARGV   *argv_alloc(size_t initial);
void    argv_free(ARGV **argvp);
void    argv_add(ARGV *argvp, const char *str);
void    argv_addn(ARGV *argvp, const char *str, size_t len);
void    argv_truncate(ARGV *argvp, size_t argc);
void    argv_sort(ARGV *argvp);
ARGV   *argv_copy(const ARGV *argvp);

/* Split on any of the delimiter characters; empty fields are dropped. */
ARGV   *argv_split(const char *str, const char *delim);

/*
 * Split like Postfix lists: separators are the delimiter characters, and
 * "{ text }" is one item with the braces and their surrounding whitespace
 * removed.  Returns NULL with *error_r set on unbalanced braces.
 */
ARGV   *argv_split_braced(const char *str, const char *delim,
                          const char **error_r);

#endif
