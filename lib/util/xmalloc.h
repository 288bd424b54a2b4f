/*
 * xmalloc - memory allocation that never returns NULL.
 *
 * Running out of memory ends the process with msg_fatal(); master restarts
 * the service.  Callers therefore never test for NULL (Postfix mymalloc.c).
 * Size arithmetic is overflow-checked here so that callers cannot wrap it.
 */
#ifndef POSTERN_XMALLOC_H
#define POSTERN_XMALLOC_H

#include <stddef.h>
#include <stdlib.h>

void *xmalloc(size_t len);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *ptr, size_t len);
void *xreallocarray(void *ptr, size_t nmemb, size_t size);
char *xstrdup(const char *str);
char *xstrndup(const char *str, size_t len);
void *xmemdup(const void *ptr, size_t len);

/* xfree - free *pp and set it to NULL; NULL is allowed. */
#define xfree(pp) do { free(*(pp)); *(pp) = NULL; } while (0)

#endif
