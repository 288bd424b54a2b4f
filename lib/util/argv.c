/*
 * argv - string vectors.
 */
#include <stdlib.h>
#include <string.h>

#include "util/argv.h"
#include "util/token.h"
#include "util/xmalloc.h"

ARGV *argv_alloc(size_t initial)
{
    ARGV *av = xmalloc(sizeof(*av));

    av->size = initial < 4 ? 4 : initial;
    av->argv = xreallocarray(NULL, av->size + 1, sizeof(char *));
    av->argc = 0;
    av->argv[0] = NULL;
    return av;
}

void argv_free(ARGV **argvp)
{
    ARGV *av = *argvp;

    if (av == NULL)
        return;
    for (size_t i = 0; i < av->argc; i++)
        free(av->argv[i]);
    free(av->argv);
    xfree(argvp);
}

static void argv_push(ARGV *av, char *str)
{
    if (av->argc >= av->size) {
        av->size *= 2;
        av->argv = xreallocarray(av->argv, av->size + 1, sizeof(char *));
    }
    av->argv[av->argc++] = str;
    av->argv[av->argc] = NULL;
}

void argv_add(ARGV *av, const char *str)
{
    argv_push(av, xstrdup(str));
}

void argv_addn(ARGV *av, const char *str, size_t len)
{
    argv_push(av, xstrndup(str, len));
}

void argv_truncate(ARGV *av, size_t argc)
{
    while (av->argc > argc)
        free(av->argv[--av->argc]);
    av->argv[av->argc] = NULL;
}

static int argv_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

void argv_sort(ARGV *av)
{
    qsort(av->argv, av->argc, sizeof(char *), argv_cmp);
}

ARGV *argv_copy(const ARGV *src)
{
    ARGV *av = argv_alloc(src->argc);

    for (size_t i = 0; i < src->argc; i++)
        argv_add(av, src->argv[i]);
    return av;
}

ARGV *argv_split(const char *str, const char *delim)
{
    ARGV *av = argv_alloc(4);
    const char *cp = str;
    size_t len;

    while ((len = strcspn(cp += strspn(cp, delim), delim)) > 0) {
        argv_addn(av, cp, len);
        cp += len;
    }
    return av;
}

ARGV *argv_split_braced(const char *str, const char *delim,
                        const char **error_r)
{
    ARGV *av = argv_alloc(4);
    TOKEN_CURSOR cur;
    const char *tok;
    size_t len;
    int rc;

    token_init(&cur, str);
    while ((rc = token_next_braced(&cur, delim, &tok, &len, error_r)) > 0)
        argv_addn(av, tok, len);
    if (rc < 0)
        argv_free(&av);
    return av;
}
