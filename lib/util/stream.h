/*
 * stream - buffered I/O over a file descriptor with deadlines and bounded
 * line reads.
 *
 * Every read and every flush is bounded by the stream's timeout, measured
 * per call as a deadline: a peer that dribbles one byte at a time cannot
 * hold a call open longer than the timeout (Postfix smtp_stream deadlines).
 * Lines are bounded by the line limit given to the constructor, so network
 * input is never read unbounded; nobody can forget either limit.
 *
 * The actual transfer goes through a STREAM_IO (read/write with a timeout),
 * so TLS can be slid underneath later with stream_set_io() and the protocol
 * code using the stream does not change.
 */
#ifndef POSTERN_STREAM_H
#define POSTERN_STREAM_H

#include <stddef.h>
#include <sys/types.h>

#include "util/strbuf.h"

/*
 * Transport.  Both functions wait at most timeout_ms (-1: forever) and
 * return the byte count (>0), 0 for end of file (read only), or -1 with
 * errno set; ETIMEDOUT means the time ran out.
 */
typedef struct STREAM_IO {
    ssize_t (*read)(void *ctx, int fd, void *buf, size_t len, int timeout_ms);
    ssize_t (*write)(void *ctx, int fd, const void *buf, size_t len,
                     int timeout_ms);
    /* Bytes already decoded inside the transport (TLS records); may be NULL. */
    size_t  (*pending)(void *ctx);
} STREAM_IO;

typedef struct STREAM {
    int     fd;
    int     wfd;                        /* where writes go; normally fd */
    int     timeout;                    /* seconds per call; 0 = no limit */
    size_t  line_limit;                 /* longest line returned in one call */
    unsigned char *rbuf;
    size_t  rpos;                       /* next unread byte */
    size_t  rend;                       /* end of buffered data */
    size_t  rsize;
    unsigned char *wbuf;
    size_t  wlen;
    size_t  wsize;
    int     flags;
    int     error;                      /* errno of the failure that set
                                         * STREAM_FLAG_ERROR */
    const STREAM_IO *io;
    void   *io_ctx;
    unsigned long long bytes_in;        /* statistics for logging */
    unsigned long long bytes_out;
} STREAM;

#define STREAM_FLAG_EOF         (1 << 0)
#define STREAM_FLAG_ERROR       (1 << 1)
#define STREAM_FLAG_TIMEOUT     (1 << 2)

STREAM *stream_open(int fd, int timeout, size_t line_limit);
void    stream_free(STREAM **sp);       /* leaves the fd open */
void    stream_close(STREAM **sp);      /* flushes nothing, closes the fd */

void    stream_set_timeout(STREAM *s, int timeout);
void    stream_set_line_limit(STREAM *s, size_t line_limit);
/* io NULL: back to the plain transport for the descriptor. */
void    stream_set_io(STREAM *s, const STREAM_IO *io, void *ctx);

/* Write to another descriptor (SMTP over a stdin/stdout pair). */
void    stream_set_write_fd(STREAM *s, int wfd);

/*
 * Read one line into buf (replacing its contents): up to and including the
 * newline, or line_limit bytes when no newline comes first (the caller sees
 * no trailing "\n" and may read on), or what precedes end of file.
 * Returns the byte count, 0 at end of file, -1 on error or timeout.
 */
ssize_t stream_get_line(STREAM *s, STRBUF *buf);

/* Read 1..len bytes (whatever is available first); 0 = EOF, -1 = error. */
ssize_t stream_read(STREAM *s, void *buf, size_t len);

/* Read exactly len bytes, appending them to buf; -1 on EOF or error. */
int     stream_read_exact(STREAM *s, STRBUF *buf, size_t len);

/* Buffered output; errors are reported by stream_flush(). */
void    stream_write(STREAM *s, const void *data, size_t len);
void    stream_puts(STREAM *s, const char *str);
void    stream_printf(STREAM *s, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
int     stream_flush(STREAM *s);        /* 0, or -1 with errno set */

/* Bytes received but not yet consumed (pipelining detection). */
size_t  stream_pending(const STREAM *s);

/* Wait up to timeout_ms for input; 1 ready, 0 none, -1 error. */
int     stream_wait_input(STREAM *s, int timeout_ms);

/* Throw away buffered input (STARTTLS: CVE-2011-0411). */
void    stream_purge_input(STREAM *s);

static inline int stream_eof(const STREAM *s)
{ return (s->flags & STREAM_FLAG_EOF) != 0; }
static inline int stream_error(const STREAM *s)
{ return (s->flags & STREAM_FLAG_ERROR) != 0; }
static inline int stream_timed_out(const STREAM *s)
{ return (s->flags & STREAM_FLAG_TIMEOUT) != 0; }
static inline void stream_clear_flags(STREAM *s) { s->flags = 0; }

/* The plain transport, for layers that wrap it. */
extern const STREAM_IO stream_plain_io;

/* The monotonic clock in milliseconds. */
long long stream_now_ms(void);

#endif
