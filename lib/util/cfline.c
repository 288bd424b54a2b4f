/*
 * cfline - logical line reader for configuration text.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "util/cfline.h"

void cfline_init(CFLINE *cf, const char *text, size_t len)
{
    cf->text = text;
    cf->len = len;
    cf->pos = 0;
    cf->lineno = 1;
}

/* One physical line: [start, end) without the newline and trailing space. */
static int cfline_physical(CFLINE *cf, const char **start_r, size_t *len_r)
{
    const char *start = cf->text + cf->pos;
    const char *nl;
    size_t len;

    if (cf->pos >= cf->len)
        return 0;
    nl = memchr(start, '\n', cf->len - cf->pos);
    len = nl ? (size_t) (nl - start) : cf->len - cf->pos;
    if (memchr(start, 0, len) != NULL)
        return -1;
    cf->pos += len + (nl ? 1 : 0);
    cf->lineno++;
    while (len > 0 && isspace((unsigned char) start[len - 1]))
        len--;
    *start_r = start;
    *len_r = len;
    return 1;
}

static int cfline_is_skipped(const char *start, size_t len)
{
    size_t i = 0;

    while (i < len && isspace((unsigned char) start[i]))
        i++;
    return i == len || start[i] == '#';
}

int cfline_next(CFLINE *cf, STRBUF *buf, int *lineno_r, int *leading_ws_r)
{
    const char *start;
    size_t len;
    int rc;

    strbuf_reset(buf);
    if (leading_ws_r)
        *leading_ws_r = 0;
    /* Find the first line of the logical line. */
    for (;;) {
        *lineno_r = cf->lineno;
        if ((rc = cfline_physical(cf, &start, &len)) <= 0)
            return rc;
        if (!cfline_is_skipped(start, len))
            break;
    }
    if (isspace((unsigned char) *start) && leading_ws_r)
        *leading_ws_r = 1;
    strbuf_append(buf, start, len);

    /* Append continuation lines, skipping comments in between. */
    for (;;) {
        size_t save_pos = cf->pos;
        int save_lineno = cf->lineno;

        if ((rc = cfline_physical(cf, &start, &len)) == 0)
            return 1;
        if (rc < 0) {
            /*
             * A NUL in a line that cannot continue this one is the next
             * call's error; this logical line is complete and is returned.
             */
            if (!isspace((unsigned char) cf->text[save_pos]))
                return 1;
            *lineno_r = save_lineno;
            return -1;
        }
        if (cfline_is_skipped(start, len))
            continue;
        if (!isspace((unsigned char) *start)) {
            cf->pos = save_pos;
            cf->lineno = save_lineno;
            return 1;
        }
        strbuf_append(buf, start, len);
    }
}

int cfline_read_file(const char *path, STRBUF *buf)
{
    char chunk[8192];
    ssize_t n;
    int fd;

    strbuf_reset(buf);
    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return -1;
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            int saved = errno;

            close(fd);
            errno = saved;
            return -1;
        }
        strbuf_append(buf, chunk, (size_t) n);
    }
    close(fd);
    return 0;
}

int cfline_parse_file(const char *path, CFLINE_PARSE_FN parse, void *ctx,
                      STRBUF *err)
{
    STRBUF *text = strbuf_alloc(8192);
    int saved_errno = 0;
    int rc;

    if (cfline_read_file(path, text) < 0) {
        saved_errno = errno;
        strbuf_printf(err, "open %s: %s", path, strerror(errno));
        rc = -1;
    } else {
        rc = parse(ctx, text->data, text->len, err);
    }
    strbuf_free(&text);
    errno = saved_errno;
    return rc;
}
