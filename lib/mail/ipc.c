/*
 * ipc - attribute records between services.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mail/ipc.h"
#include "util/msg.h"
#include "util/strnum.h"
#include "util/xmalloc.h"

IPC_MSG *ipc_msg_alloc(void)
{
    return xcalloc(1, sizeof(IPC_MSG));
}

void ipc_msg_reset(IPC_MSG *m)
{
    for (size_t i = 0; i < m->count; i++) {
        free(m->attrs[i].name);
        free(m->attrs[i].value);
    }
    m->count = 0;
}

void ipc_msg_free(IPC_MSG **mp)
{
    if (*mp == NULL)
        return;
    ipc_msg_reset(*mp);
    free((*mp)->attrs);
    xfree(mp);
}

static int ipc_valid_name(const char *name, size_t len)
{
    if (len == 0 || len > IPC_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char ch = name[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')
              || ch == '_'))
            return 0;
    }
    return 1;
}

const IPC_ATTR *ipc_find(const IPC_MSG *m, const char *name)
{
    for (size_t i = 0; i < m->count; i++)
        if (strcmp(m->attrs[i].name, name) == 0)
            return &m->attrs[i];
    return NULL;
}

/* Append an attribute; the caller has checked name and uniqueness. */
static void ipc_append(IPC_MSG *m, const char *name, size_t name_len,
                       const void *data, size_t len)
{
    IPC_ATTR *a;

    if (m->count == m->size) {
        m->size = m->size ? m->size * 2 : 8;
        m->attrs = xreallocarray(m->attrs, m->size, sizeof(IPC_ATTR));
    }
    a = &m->attrs[m->count++];
    a->name = xstrndup(name, name_len);
    a->value = xmalloc(len + 1);
    if (len)
        memcpy(a->value, data, len);
    a->value[len] = 0;
    a->len = len;
}

void ipc_put_data(IPC_MSG *m, const char *name, const void *data, size_t len)
{
    /* Our own code builds these records: a bad one is a bug. */
    if (!ipc_valid_name(name, strlen(name)))
        msg_panic("ipc_put: bad attribute name \"%s\"", name);
    if (ipc_find(m, name) != NULL)
        msg_panic("ipc_put: duplicate attribute \"%s\"", name);
    if (m->count >= IPC_ATTR_MAX)
        msg_panic("ipc_put: too many attributes");
    if (len > UINT32_MAX)
        msg_panic("ipc_put: attribute \"%s\" too large", name);
    ipc_append(m, name, strlen(name), data, len);
}

void ipc_put_str(IPC_MSG *m, const char *name, const char *value)
{
    ipc_put_data(m, name, value, strlen(value));
}

void ipc_put_long(IPC_MSG *m, const char *name, long value)
{
    STRBUF *tmp = strbuf_alloc(24);

    strbuf_printf(tmp, "%ld", value);
    ipc_put_data(m, name, tmp->data, tmp->len);
    strbuf_free(&tmp);
}

static void ipc_put_u32(STRBUF *buf, uint32_t v)
{
    unsigned char b[4];

    b[0] = (unsigned char) (v >> 24);
    b[1] = (unsigned char) (v >> 16);
    b[2] = (unsigned char) (v >> 8);
    b[3] = (unsigned char) v;
    strbuf_append(buf, b, 4);
}

static uint32_t ipc_get_u32(const unsigned char *b)
{
    return ((uint32_t) b[0] << 24) | ((uint32_t) b[1] << 16)
        | ((uint32_t) b[2] << 8) | (uint32_t) b[3];
}

void ipc_encode(const IPC_MSG *m, STRBUF *buf)
{
    size_t start;

    strbuf_reset(buf);
    ipc_put_u32(buf, 0);                /* length, patched below */
    start = buf->len;
    for (size_t i = 0; i < m->count; i++) {
        size_t nlen = strlen(m->attrs[i].name);

        strbuf_addch(buf, (int) nlen);
        strbuf_append(buf, m->attrs[i].name, nlen);
        ipc_put_u32(buf, (uint32_t) m->attrs[i].len);
        strbuf_append(buf, m->attrs[i].value, m->attrs[i].len);
    }
    if (buf->len - start > UINT32_MAX)
        msg_panic("ipc_encode: record too large");
    {
        uint32_t len = (uint32_t) (buf->len - start);
        unsigned char *b = (unsigned char *) buf->data;

        b[0] = (unsigned char) (len >> 24);
        b[1] = (unsigned char) (len >> 16);
        b[2] = (unsigned char) (len >> 8);
        b[3] = (unsigned char) len;
    }
}

int ipc_decode(IPC_MSG *m, const char *payload, size_t len, STRBUF *err)
{
    const unsigned char *cp = (const unsigned char *) payload;
    const unsigned char *end = cp + len;

    ipc_msg_reset(m);
    while (cp < end) {
        size_t nlen = *cp++;
        const char *name = (const char *) cp;
        uint32_t vlen;

        if (!ipc_valid_name(name, (size_t) (end - cp) < nlen ? 0 : nlen)) {
            strbuf_printf(err, "malformed record: bad attribute name");
            return -1;
        }
        cp += nlen;
        if (end - cp < 4) {
            strbuf_printf(err, "malformed record: truncated attribute");
            return -1;
        }
        vlen = ipc_get_u32(cp);
        cp += 4;
        if ((size_t) (end - cp) < vlen) {
            strbuf_printf(err, "malformed record: attribute length %lu "
                          "exceeds record", (unsigned long) vlen);
            return -1;
        }
        if (m->count >= IPC_ATTR_MAX) {
            strbuf_printf(err, "malformed record: too many attributes");
            return -1;
        }
        for (size_t i = 0; i < m->count; i++) {
            if (strlen(m->attrs[i].name) == nlen
                && memcmp(m->attrs[i].name, name, nlen) == 0) {
                strbuf_printf(err, "malformed record: duplicate attribute "
                              "\"%.*s\"", (int) nlen, name);
                return -1;
            }
        }
        ipc_append(m, name, nlen, cp, vlen);
        cp += vlen;
    }
    return 0;
}

int ipc_write(STREAM *s, const IPC_MSG *m)
{
    STRBUF *buf = strbuf_alloc(256);
    int rc;

    ipc_encode(m, buf);
    stream_write(s, buf->data, buf->len);
    rc = stream_flush(s);
    strbuf_free(&buf);
    return rc;
}

static void ipc_read_error(STREAM *s, STRBUF *err, const char *what)
{
    if (stream_timed_out(s))
        strbuf_printf(err, "timeout while reading %s", what);
    else if (stream_error(s))
        strbuf_printf(err, "error reading %s: %s", what, strerror(errno));
    else
        strbuf_printf(err, "unexpected end of input in %s", what);
}

int ipc_read(STREAM *s, IPC_MSG *m, size_t limit, STRBUF *err)
{
    STRBUF *buf = strbuf_alloc(256);
    uint32_t len;
    ssize_t n;
    int rc = -1;

    ipc_msg_reset(m);
    /* A clean end of file is only allowed before the first length byte. */
    if ((n = stream_read(s, buf->data, 1)) <= 0) {
        if (n == 0) {
            strbuf_free(&buf);
            return 0;
        }
        ipc_read_error(s, err, "record length");
        goto done;
    }
    buf->len = 1;
    if (stream_read_exact(s, buf, 3) < 0) {
        ipc_read_error(s, err, "record length");
        goto done;
    }
    len = ipc_get_u32((unsigned char *) buf->data);
    if (len > limit) {
        strbuf_printf(err, "record of %lu bytes exceeds the limit of %zu",
                      (unsigned long) len, limit);
        goto done;
    }
    strbuf_reset(buf);
    if (stream_read_exact(s, buf, len) < 0) {
        ipc_read_error(s, err, "record");
        goto done;
    }
    rc = ipc_decode(m, buf->data, buf->len, err) < 0 ? -1 : 1;
done:
    strbuf_free(&buf);
    return rc;
}

int ipc_scan(const IPC_MSG *m, const IPC_SPEC *specs, STRBUF *err)
{
    const IPC_SPEC *sp;

    /* Strict: every attribute must be expected. */
    for (size_t i = 0; i < m->count; i++) {
        for (sp = specs; sp->name; sp++)
            if (strcmp(sp->name, m->attrs[i].name) == 0)
                break;
        if (sp->name == NULL) {
            strbuf_printf(err, "unexpected attribute \"%s\"",
                          m->attrs[i].name);
            return -1;
        }
    }
    for (sp = specs; sp->name; sp++) {
        const IPC_ATTR *a = ipc_find(m, sp->name);

        if (a == NULL) {
            if (sp->required) {
                strbuf_printf(err, "missing attribute \"%s\"", sp->name);
                return -1;
            }
            continue;
        }
        switch (sp->type) {
        case IPC_STR:
            if (memchr(a->value, 0, a->len) != NULL) {
                strbuf_printf(err, "attribute \"%s\": NUL in text", a->name);
                return -1;
            }
            *(const char **) sp->dest = a->value;
            break;
        case IPC_LONG:
            if (str_to_long(a->value, LONG_MIN, LONG_MAX,
                            (long *) sp->dest) < 0
                || strlen(a->value) != a->len) {
                strbuf_printf(err, "attribute \"%s\": bad number", a->name);
                return -1;
            }
            break;
        case IPC_DATA:
            *(const IPC_ATTR **) sp->dest = a;
            break;
        }
    }
    return 0;
}

int ipc_connect(const char *class, const char *name, STRBUF *err)
{
    struct sockaddr_un sun;
    int fd;
    int n;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    n = snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s", class, name);
    if (n < 0 || (size_t) n >= sizeof(sun.sun_path)) {
        strbuf_printf(err, "socket name too long: %s/%s", class, name);
        return -1;
    }
    if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
        strbuf_printf(err, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (struct sockaddr *) &sun, sizeof(sun)) < 0) {
        strbuf_printf(err, "connect to %s/%s: %s", class, name,
                      strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}
