/*
 * xmalloc - allocation wrappers that end the process when memory runs out.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/msg.h"
#include "util/xmalloc.h"

void *xmalloc(size_t len)
{
    void *ptr;

    if ((ptr = malloc(len ? len : 1)) == NULL)
        msg_fatal("out of memory allocating %zu bytes", len);
    return ptr;
}

void *xcalloc(size_t nmemb, size_t size)
{
    void *ptr;

    if (nmemb == 0 || size == 0)
        nmemb = size = 1;
    if ((ptr = calloc(nmemb, size)) == NULL)
        msg_fatal("out of memory allocating %zu x %zu bytes", nmemb, size);
    return ptr;
}

void *xrealloc(void *ptr, size_t len)
{
    void *res;

    if ((res = realloc(ptr, len ? len : 1)) == NULL)
        msg_fatal("out of memory reallocating %zu bytes", len);
    return res;
}

void *xreallocarray(void *ptr, size_t nmemb, size_t size)
{
    if (size != 0 && nmemb > SIZE_MAX / size)
        msg_panic("xreallocarray: size overflow: %zu x %zu", nmemb, size);
    return xrealloc(ptr, nmemb * size);
}

char *xstrdup(const char *str)
{
    return xmemdup(str, strlen(str) + 1);
}

char *xstrndup(const char *str, size_t len)
{
    size_t n = strnlen(str, len);
    char *res = xmalloc(n + 1);

    memcpy(res, str, n);
    res[n] = 0;
    return res;
}

void *xmemdup(const void *ptr, size_t len)
{
    void *res = xmalloc(len);

    memcpy(res, ptr, len);
    return res;
}
