/*
 * strbuf - growable, always-terminated string buffer.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "util/msg.h"
#include "util/strbuf.h"
#include "util/xmalloc.h"

STRBUF *strbuf_alloc(size_t initial)
{
    STRBUF *sb = xmalloc(sizeof(*sb));

    if (initial < 16)
        initial = 16;
    sb->data = xmalloc(initial);
    sb->size = initial;
    sb->len = 0;
    sb->data[0] = 0;
    return sb;
}

void strbuf_free(STRBUF **sbp)
{
    if (*sbp == NULL)
        return;
    free((*sbp)->data);
    xfree(sbp);
}

void strbuf_reserve(STRBUF *sb, size_t more)
{
    size_t need;
    size_t size;

    /* len + more + 1 must not wrap. */
    if (more > SIZE_MAX - sb->len - 1)
        msg_panic("strbuf_reserve: length overflow: %zu + %zu", sb->len, more);
    need = sb->len + more + 1;
    if (need <= sb->size)
        return;
    size = sb->size;
    while (size < need)
        size = (size > SIZE_MAX / 2) ? need : size * 2;
    sb->data = xrealloc(sb->data, size);
    sb->size = size;
}

void strbuf_reset(STRBUF *sb)
{
    sb->len = 0;
    sb->data[0] = 0;
}

void strbuf_truncate(STRBUF *sb, size_t len)
{
    if (len < sb->len) {
        sb->len = len;
        sb->data[len] = 0;
    }
}

void strbuf_append(STRBUF *sb, const void *data, size_t len)
{
    strbuf_reserve(sb, len);
    if (len)
        memcpy(sb->data + sb->len, data, len);
    sb->len += len;
    sb->data[sb->len] = 0;
}

void strbuf_cat(STRBUF *sb, const char *str)
{
    strbuf_append(sb, str, strlen(str));
}

void strbuf_addch(STRBUF *sb, int ch)
{
    if (sb->len + 1 >= sb->size)
        strbuf_reserve(sb, 1);
    sb->data[sb->len++] = (char) ch;
    sb->data[sb->len] = 0;
}

void strbuf_set(STRBUF *sb, const char *str)
{
    strbuf_reset(sb);
    strbuf_cat(sb, str);
}

void strbuf_setn(STRBUF *sb, const void *data, size_t len)
{
    strbuf_reset(sb);
    strbuf_append(sb, data, len);
}

void strbuf_vprintf_append(STRBUF *sb, const char *fmt, va_list ap)
{
    va_list ap2;
    int n;

    va_copy(ap2, ap);
    n = vsnprintf(sb->data + sb->len, sb->size - sb->len, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        msg_panic("strbuf_vprintf_append: bad format: %s", fmt);
    if ((size_t) n >= sb->size - sb->len) {
        strbuf_reserve(sb, (size_t) n);
        va_copy(ap2, ap);
        n = vsnprintf(sb->data + sb->len, sb->size - sb->len, fmt, ap2);
        va_end(ap2);
        if (n < 0 || (size_t) n >= sb->size - sb->len)
            msg_panic("strbuf_vprintf_append: vsnprintf disagrees with itself");
    }
    sb->len += (size_t) n;
}

void strbuf_printf(STRBUF *sb, const char *fmt, ...)
{
    va_list ap;

    strbuf_reset(sb);
    va_start(ap, fmt);
    strbuf_vprintf_append(sb, fmt, ap);
    va_end(ap);
}

void strbuf_printf_append(STRBUF *sb, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    strbuf_vprintf_append(sb, fmt, ap);
    va_end(ap);
}

void strbuf_trim_right(STRBUF *sb)
{
    while (sb->len > 0 && isspace((unsigned char) sb->data[sb->len - 1]))
        sb->len--;
    sb->data[sb->len] = 0;
}

void strbuf_lower(STRBUF *sb)
{
    for (size_t i = 0; i < sb->len; i++)
        sb->data[i] = (char) tolower((unsigned char) sb->data[i]);
}

char *strbuf_export(STRBUF **sbp)
{
    char *data = (*sbp)->data;

    xfree(sbp);
    return data;
}
