/*
 * record - type, varint length, data.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>

#include "mail/record.h"

static size_t rec_varint(unsigned char *out, size_t len)
{
    size_t n = 0;

    do {
        unsigned char b = (unsigned char) (len & 0x7f);

        len >>= 7;
        out[n++] = (unsigned char) (b | (len ? 0x80 : 0));
    } while (len);
    return n;
}

void rec_encode(STRBUF *buf, int type, const void *data, size_t len)
{
    unsigned char hdr[16];
    size_t n;

    hdr[0] = (unsigned char) type;
    n = 1 + rec_varint(hdr + 1, len);
    strbuf_append(buf, hdr, n);
    strbuf_append(buf, data, len);
}

void rec_put(STREAM *s, int type, const void *data, size_t len)
{
    unsigned char hdr[16];
    size_t n;

    hdr[0] = (unsigned char) type;
    n = 1 + rec_varint(hdr + 1, len);
    stream_write(s, hdr, n);
    stream_write(s, data, len);
}

void rec_puts(STREAM *s, int type, const char *str)
{
    rec_put(s, type, str, strlen(str));
}

void rec_fprintf(STREAM *s, int type, const char *fmt, ...)
{
    STRBUF *tmp = strbuf_alloc(128);
    va_list ap;

    va_start(ap, fmt);
    strbuf_vprintf_append(tmp, fmt, ap);
    va_end(ap);
    rec_put(s, type, tmp->data, tmp->len);
    strbuf_free(&tmp);
}

int rec_get(STREAM *s, int *type_r, STRBUF *data, size_t limit, STRBUF *err)
{
    unsigned char b;
    size_t len = 0;
    ssize_t n;
    int shift;

    strbuf_reset(data);
    if ((n = stream_read(s, &b, 1)) <= 0) {
        if (n == 0)
            return 0;
        strbuf_printf(err, "read error: %s", strerror(errno));
        return -1;
    }
    *type_r = b;
    for (shift = 0;; shift += 7) {
        if (shift > 28 || stream_read(s, &b, 1) != 1) {
            strbuf_printf(err, shift > 28 ? "bad record length"
                          : "truncated record header");
            return -1;
        }
        len |= (size_t) (b & 0x7f) << shift;
        if (!(b & 0x80))
            break;
    }
    if (len > limit) {
        strbuf_printf(err, "record of %zu bytes exceeds the limit of %zu",
                      len, limit);
        return -1;
    }
    if (stream_read_exact(s, data, len) < 0) {
        strbuf_printf(err, "truncated record");
        return -1;
    }
    return 1;
}

int rec_decode(const char *buf, size_t len, size_t *pos, int *type_r,
               const char **data_r, size_t *data_len_r, size_t limit,
               STRBUF *err)
{
    const unsigned char *cp = (const unsigned char *) buf + *pos;
    const unsigned char *end = (const unsigned char *) buf + len;
    size_t rlen = 0;
    int shift;

    if (cp >= end)
        return 0;
    *type_r = *cp++;
    for (shift = 0;; shift += 7) {
        if (shift > 28 || cp >= end) {
            strbuf_printf(err, shift > 28 ? "bad record length"
                          : "truncated record header");
            return -1;
        }
        rlen |= (size_t) (*cp & 0x7f) << shift;
        if (!(*cp++ & 0x80))
            break;
    }
    if (rlen > limit || rlen > (size_t) (end - cp)) {
        strbuf_printf(err, rlen > limit ? "record too large"
                      : "truncated record");
        return -1;
    }
    *data_r = (const char *) cp;
    *data_len_r = rlen;
    *pos = (size_t) (cp + rlen - (const unsigned char *) buf);
    return 1;
}
