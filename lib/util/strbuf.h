/*
 * strbuf - growable, binary-safe string buffer that is always NUL-terminated.
 *
 * The buffer keeps a spare byte after the data so that strbuf_str() can be
 * handed to C string functions at any time.  Lengths are checked for
 * overflow; memory exhaustion is fatal (see xmalloc.h).  Use this instead of
 * fixed char arrays everywhere (Postfix vstring, Dovecot string_t).
 */
#ifndef POSTERN_STRBUF_H
#define POSTERN_STRBUF_H

#include <stdarg.h>
#include <stddef.h>

typedef struct STRBUF {
    char   *data;                       /* always data[len] == 0 */
    size_t  len;                        /* bytes in use, excluding the NUL */
    size_t  size;                       /* allocated bytes, including the NUL */
} STRBUF;

STRBUF *strbuf_alloc(size_t initial);
void    strbuf_free(STRBUF **sbp);

/* Make room for at least 'more' further bytes (plus the NUL). */
void    strbuf_reserve(STRBUF *sb, size_t more);

void    strbuf_reset(STRBUF *sb);
void    strbuf_truncate(STRBUF *sb, size_t len);

void    strbuf_append(STRBUF *sb, const void *data, size_t len);
void    strbuf_cat(STRBUF *sb, const char *str);
void    strbuf_addch(STRBUF *sb, int ch);
void    strbuf_set(STRBUF *sb, const char *str);
void    strbuf_setn(STRBUF *sb, const void *data, size_t len);

/* Formatted output; the _append variants add to what is there. */
void    strbuf_printf(STRBUF *sb, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
void    strbuf_printf_append(STRBUF *sb, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
void    strbuf_vprintf_append(STRBUF *sb, const char *fmt, va_list ap)
        __attribute__((format(printf, 2, 0)));

/* Remove whitespace at the end; lowercase ASCII in place. */
void    strbuf_trim_right(STRBUF *sb);
void    strbuf_lower(STRBUF *sb);

/* Transfer ownership of the data to the caller and free the STRBUF. */
char   *strbuf_export(STRBUF **sbp);

static inline char *strbuf_str(const STRBUF *sb) { return sb->data; }
static inline size_t strbuf_len(const STRBUF *sb) { return sb->len; }

#endif
