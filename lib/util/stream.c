/*
 * stream - buffered, deadline-bounded I/O over a file descriptor.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/msg.h"
#include "util/stream.h"
#include "util/xmalloc.h"

#define STREAM_BUFSIZE  16384

long long stream_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait for fd to become ready; 1 ready, 0 timeout, -1 error. */
static int stream_poll(int fd, short events, int timeout_ms)
{
    struct pollfd pfd;
    int rc;

    pfd.fd = fd;
    pfd.events = events;
    for (;;) {
        rc = poll(&pfd, 1, timeout_ms);
        if (rc < 0 && errno == EINTR)
            continue;
        return rc < 0 ? -1 : rc > 0;
    }
}

/*
 * Sockets: try the call first and wait only when it would block, which
 * saves a poll(2) per read and write on a busy connection.  MSG_DONTWAIT
 * keeps a blocking socket from blocking past the deadline, MSG_NOSIGNAL
 * keeps a vanished peer from raising SIGPIPE.
 */
static ssize_t socket_read(void *ctx, int fd, void *buf, size_t len,
                           int timeout_ms)
{
    ssize_t n;
    int rc;

    (void) ctx;
    for (;;) {
        n = recv(fd, buf, len, MSG_DONTWAIT);
        if (n >= 0 || (errno != EAGAIN && errno != EINTR))
            return n;
        if (errno == EAGAIN
            && (rc = stream_poll(fd, POLLIN, timeout_ms)) <= 0) {
            if (rc == 0)
                errno = ETIMEDOUT;
            return -1;
        }
    }
}

static ssize_t socket_write(void *ctx, int fd, const void *buf, size_t len,
                            int timeout_ms)
{
    ssize_t n;
    int rc;

    (void) ctx;
    for (;;) {
        n = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n >= 0 || (errno != EAGAIN && errno != EINTR))
            return n;
        if (errno == EAGAIN
            && (rc = stream_poll(fd, POLLOUT, timeout_ms)) <= 0) {
            if (rc == 0)
                errno = ETIMEDOUT;
            return -1;
        }
    }
}

/* Pipes, terminals and files: poll, then read or write. */
static ssize_t plain_read(void *ctx, int fd, void *buf, size_t len,
                          int timeout_ms)
{
    ssize_t n;
    int rc;

    (void) ctx;
    for (;;) {
        if ((rc = stream_poll(fd, POLLIN, timeout_ms)) <= 0) {
            if (rc == 0)
                errno = ETIMEDOUT;
            return -1;
        }
        n = read(fd, buf, len);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        return n;
    }
}

static ssize_t plain_write(void *ctx, int fd, const void *buf, size_t len,
                           int timeout_ms)
{
    ssize_t n;
    int rc;

    (void) ctx;
    for (;;) {
        if ((rc = stream_poll(fd, POLLOUT, timeout_ms)) <= 0) {
            if (rc == 0)
                errno = ETIMEDOUT;
            return -1;
        }
        /*
         * A pipe that polls writable takes PIPE_BUF bytes without
         * blocking; more could block past the deadline.
         */
        n = write(fd, buf, len > PIPE_BUF ? PIPE_BUF : len);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        return n;
    }
}

static const STREAM_IO stream_socket_io = {socket_read, socket_write, NULL};

const STREAM_IO stream_plain_io = {plain_read, plain_write, NULL};

STREAM *stream_open(int fd, int timeout, size_t line_limit)
{
    STREAM *s = xcalloc(1, sizeof(*s));

    if (line_limit == 0)
        msg_panic("stream_open: zero line limit");
    s->fd = fd;
    s->wfd = fd;
    s->timeout = timeout;
    s->line_limit = line_limit;
    s->rsize = STREAM_BUFSIZE;
    s->rbuf = xmalloc(s->rsize);
    s->wsize = STREAM_BUFSIZE;
    s->wbuf = xmalloc(s->wsize);
    stream_set_io(s, NULL, NULL);
    return s;
}

void stream_free(STREAM **sp)
{
    STREAM *s = *sp;

    if (s == NULL)
        return;
    free(s->rbuf);
    free(s->wbuf);
    xfree(sp);
}

void stream_close(STREAM **sp)
{
    if (*sp == NULL)
        return;
    (void) close((*sp)->fd);
    stream_free(sp);
}

void stream_set_timeout(STREAM *s, int timeout)
{
    s->timeout = timeout;
}

void stream_set_line_limit(STREAM *s, size_t line_limit)
{
    if (line_limit == 0)
        msg_panic("stream_set_line_limit: zero line limit");
    s->line_limit = line_limit;
}

void stream_set_write_fd(STREAM *s, int wfd)
{
    s->wfd = wfd;
}

void stream_set_io(STREAM *s, const STREAM_IO *io, void *ctx)
{
    struct stat st;

    if (io == NULL)
        io = fstat(s->fd, &st) == 0 && S_ISSOCK(st.st_mode)
            ? &stream_socket_io : &stream_plain_io;
    s->io = io;
    s->io_ctx = ctx;
}

static long long stream_deadline(const STREAM *s)
{
    return s->timeout > 0 ? stream_now_ms() + (long long) s->timeout * 1000
        : -1;
}

static int stream_left_ms(long long deadline)
{
    long long left;

    if (deadline < 0)
        return -1;
    left = deadline - stream_now_ms();
    return left < 0 ? 0 : left > 0x7fffffff ? 0x7fffffff : (int) left;
}

static void stream_set_failure(STREAM *s)
{
    s->error = errno;
    if (errno == ETIMEDOUT)
        s->flags |= STREAM_FLAG_TIMEOUT;
    s->flags |= STREAM_FLAG_ERROR;
}

/* Refill the read buffer; 1 = data, 0 = EOF, -1 = error/timeout. */
static int stream_fill(STREAM *s, long long deadline)
{
    ssize_t n;

    if (s->rpos == s->rend)
        s->rpos = s->rend = 0;
    else if (s->rend == s->rsize && s->rpos > 0) {
        memmove(s->rbuf, s->rbuf + s->rpos, s->rend - s->rpos);
        s->rend -= s->rpos;
        s->rpos = 0;
    }
    if (s->rend == s->rsize)
        msg_panic("stream_fill: buffer full");
    if (s->flags & (STREAM_FLAG_EOF | STREAM_FLAG_ERROR))
        return (s->flags & STREAM_FLAG_ERROR) ? -1 : 0;
    n = s->io->read(s->io_ctx, s->fd, s->rbuf + s->rend, s->rsize - s->rend,
                    stream_left_ms(deadline));
    if (n < 0) {
        stream_set_failure(s);
        return -1;
    }
    if (n == 0) {
        s->flags |= STREAM_FLAG_EOF;
        return 0;
    }
    s->rend += (size_t) n;
    s->bytes_in += (unsigned long long) n;
    return 1;
}

ssize_t stream_get_line(STREAM *s, STRBUF *buf)
{
    long long deadline = stream_deadline(s);
    int rc;

    strbuf_reset(buf);
    for (;;) {
        size_t avail = s->rend - s->rpos;
        size_t room = s->line_limit - buf->len;
        size_t take = avail < room ? avail : room;
        unsigned char *nl = memchr(s->rbuf + s->rpos, '\n', take);

        if (nl)
            take = (size_t) (nl - (s->rbuf + s->rpos)) + 1;
        strbuf_append(buf, s->rbuf + s->rpos, take);
        s->rpos += take;
        if (nl || buf->len >= s->line_limit)
            return (ssize_t) buf->len;
        if ((rc = stream_fill(s, deadline)) <= 0)
            return rc < 0 ? -1 : (ssize_t) buf->len;
    }
}

ssize_t stream_read(STREAM *s, void *buf, size_t len)
{
    size_t take;
    int rc;

    if (len == 0)
        return 0;
    if (s->rpos == s->rend && (rc = stream_fill(s, stream_deadline(s))) <= 0)
        return rc;
    take = s->rend - s->rpos;
    if (take > len)
        take = len;
    memcpy(buf, s->rbuf + s->rpos, take);
    s->rpos += take;
    return (ssize_t) take;
}

int stream_read_exact(STREAM *s, STRBUF *buf, size_t len)
{
    long long deadline = stream_deadline(s);

    while (len > 0) {
        size_t take;

        if (s->rpos == s->rend && stream_fill(s, deadline) <= 0)
            return -1;
        take = s->rend - s->rpos;
        if (take > len)
            take = len;
        strbuf_append(buf, s->rbuf + s->rpos, take);
        s->rpos += take;
        len -= take;
    }
    return 0;
}

int stream_flush(STREAM *s)
{
    long long deadline = stream_deadline(s);
    size_t done = 0;

    if (s->flags & STREAM_FLAG_ERROR) {
        /* An earlier write failed: report why (ENOSPC is not EIO). */
        errno = s->error;
        s->wlen = 0;
        return -1;
    }
    while (done < s->wlen) {
        ssize_t n = s->io->write(s->io_ctx, s->wfd, s->wbuf + done,
                                 s->wlen - done, stream_left_ms(deadline));

        if (n <= 0) {
            if (n == 0)
                errno = EPIPE;
            stream_set_failure(s);
            s->wlen = 0;
            return -1;
        }
        done += (size_t) n;
        s->bytes_out += (unsigned long long) n;
    }
    s->wlen = 0;
    return 0;
}

void stream_write(STREAM *s, const void *data, size_t len)
{
    const unsigned char *cp = data;

    while (len > 0) {
        size_t room = s->wsize - s->wlen;
        size_t take = len < room ? len : room;

        memcpy(s->wbuf + s->wlen, cp, take);
        s->wlen += take;
        cp += take;
        len -= take;
        if (s->wlen == s->wsize && stream_flush(s) < 0)
            return;
    }
}

void stream_puts(STREAM *s, const char *str)
{
    stream_write(s, str, strlen(str));
}

void stream_printf(STREAM *s, const char *fmt, ...)
{
    STRBUF *tmp = strbuf_alloc(256);
    va_list ap;

    va_start(ap, fmt);
    strbuf_vprintf_append(tmp, fmt, ap);
    va_end(ap);
    stream_write(s, tmp->data, tmp->len);
    strbuf_free(&tmp);
}

size_t stream_pending(const STREAM *s)
{
    size_t n = s->rend - s->rpos;

    if (s->io->pending)
        n += s->io->pending(s->io_ctx);
    return n;
}

int stream_wait_input(STREAM *s, int timeout_ms)
{
    if (stream_pending(s) > 0)
        return 1;
    return stream_poll(s->fd, POLLIN, timeout_ms);
}

void stream_purge_input(STREAM *s)
{
    s->rpos = s->rend = 0;
}
