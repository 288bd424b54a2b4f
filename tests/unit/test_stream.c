/*
 * test_stream - bounded line reads, partial reads from a dribbling peer,
 * per-call deadlines, buffered writes, pending input and a layered
 * transport, over socketpairs and pipes.
 *
 * Peers that must run concurrently are threads; tests that could hang or
 * die from a signal run in a child with an alarm.
 */
#include "unit.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "util/stream.h"

#define LIMIT   1000                    /* default line limit */

static void make_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

/* Write all of data to fd (the test's side of the connection). */
static void put_all(int fd, const void *data, size_t len)
{
    const char *cp = data;

    while (len > 0) {
        ssize_t n = send(fd, cp, len, MSG_NOSIGNAL);

        if (n < 0 && errno == ENOTSOCK)
            n = write(fd, cp, len);
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n > 0);
        cp += n;
        len -= (size_t) n;
    }
}

static void put_str(int fd, const char *str)
{
    put_all(fd, str, strlen(str));
}

/* Read from fd until EOF into buf. */
static void get_all(int fd, STRBUF *buf)
{
    char chunk[4096];
    ssize_t n;

    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        strbuf_append(buf, chunk, (size_t) n);
    }
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/*
 * A peer thread that writes data in small pieces with a pause before each,
 * then optionally half-closes; or (reader) collects everything until EOF.
 */
typedef struct PEER {
    int     fd;
    const char *data;
    size_t  len;
    size_t  chunk;                      /* bytes per write */
    int     delay_ms;                   /* pause before each write */
    int     shut;                       /* shutdown(SHUT_WR) when done */
    int     reader;                     /* read into got instead */
    STRBUF *got;
    atomic_int stop;
    pthread_t tid;
} PEER;

static void *peer_main(void *arg)
{
    PEER *p = arg;
    size_t done = 0;

    if (p->reader) {
        get_all(p->fd, p->got);
        return NULL;
    }
    while (done < p->len && !atomic_load(&p->stop)) {
        size_t take = p->len - done < p->chunk ? p->len - done : p->chunk;
        ssize_t n;

        if (p->delay_ms)
            sleep_ms(p->delay_ms);
        n = send(p->fd, p->data + done, take, MSG_NOSIGNAL);
        if (n < 0 && errno == ENOTSOCK)
            n = write(p->fd, p->data + done, take);
        if (n <= 0)
            break;
        done += (size_t) n;
    }
    if (p->shut)
        (void) shutdown(p->fd, SHUT_WR);
    return NULL;
}

static void peer_start(PEER *p)
{
    atomic_store(&p->stop, 0);
    assert_int_equal(pthread_create(&p->tid, NULL, peer_main, p), 0);
}

static void peer_join(PEER *p)
{
    atomic_store(&p->stop, 1);
    assert_int_equal(pthread_join(p->tid, NULL), 0);
}

static void test_lines_lf_crlf(void **state)
{
    STRBUF *buf = strbuf_alloc(0);
    STREAM *s;
    int sv[2];

    (void) state;
    make_pair(sv);
    s = stream_open(sv[0], 5, LIMIT);
    put_str(sv[1], "one\ntwo\r\n\nthree\r\r\n");
    close(sv[1]);
    assert_int_equal(stream_get_line(s, buf), 4);
    assert_string_equal(buf->data, "one\n");
    assert_int_equal(stream_get_line(s, buf), 5);
    assert_string_equal(buf->data, "two\r\n");
    assert_int_equal(stream_get_line(s, buf), 1);
    assert_string_equal(buf->data, "\n");
    assert_int_equal(stream_get_line(s, buf), 8);
    assert_string_equal(buf->data, "three\r\r\n");
    assert_false(stream_eof(s));
    assert_int_equal(stream_get_line(s, buf), 0);
    assert_int_equal(buf->len, 0);
    assert_true(stream_eof(s));
    assert_false(stream_error(s));
    assert_int_equal(stream_get_line(s, buf), 0);       /* stays at EOF */
    assert_int_equal(s->bytes_in, 18);
    stream_close(&s);
    assert_null(s);
    strbuf_free(&buf);
}

/* A line longer than the limit comes in limit-sized pieces without "\n". */
static void test_long_line_pieces(void **state)
{
    STRBUF *buf = strbuf_alloc(0);
    STREAM *s;
    int sv[2];

    (void) state;
    make_pair(sv);
    s = stream_open(sv[0], 5, 10);
    put_str(sv[1], "abcdefghijKLMNOPQRSTuv\n123456789\n1234567890\nx");
    close(sv[1]);
    assert_int_equal(stream_get_line(s, buf), 10);
    assert_string_equal(buf->data, "abcdefghij");
    assert_int_equal(stream_get_line(s, buf), 10);
    assert_string_equal(buf->data, "KLMNOPQRST");
    assert_int_equal(stream_get_line(s, buf), 3);
    assert_string_equal(buf->data, "uv\n");
    /* Exactly the limit including the newline. */
    assert_int_equal(stream_get_line(s, buf), 10);
    assert_string_equal(buf->data, "123456789\n");
    /* One past: the newline comes alone. */
    assert_int_equal(stream_get_line(s, buf), 10);
    assert_string_equal(buf->data, "1234567890");
    assert_int_equal(stream_get_line(s, buf), 1);
    assert_string_equal(buf->data, "\n");
    /* End of file in mid-line. */
    assert_int_equal(stream_get_line(s, buf), 1);
    assert_string_equal(buf->data, "x");
    assert_int_equal(stream_get_line(s, buf), 0);
    assert_true(stream_eof(s));

    stream_close(&s);

    /* The limit can change between calls. */
    make_pair(sv);
    s = stream_open(sv[0], 5, 4);
    put_str(sv[1], "abcdefgh\nij");
    close(sv[1]);
    assert_int_equal(stream_get_line(s, buf), 4);
    assert_string_equal(buf->data, "abcd");
    stream_set_line_limit(s, 100);
    assert_int_equal(stream_get_line(s, buf), 5);
    assert_string_equal(buf->data, "efgh\n");
    stream_set_line_limit(s, 1);
    assert_int_equal(stream_get_line(s, buf), 1);
    assert_string_equal(buf->data, "i");
    assert_int_equal(stream_get_line(s, buf), 1);
    assert_string_equal(buf->data, "j");
    assert_int_equal(stream_get_line(s, buf), 0);
    stream_close(&s);
    strbuf_free(&buf);
}

/* Oversized input: 1 MB without a newline, far beyond the buffers. */
static void test_oversized_line(void **state)
{
    STRBUF *buf = strbuf_alloc(0);
    STRBUF *all = strbuf_alloc(0);
    char *data = malloc(1 << 20);
    PEER peer = {0};
    STREAM *s;
    ssize_t n;
    int sv[2];

    (void) state;
    assert_non_null(data);
    for (size_t i = 0; i < (1 << 20); i++)
        data[i] = (char) ('A' + i % 23);
    data[(1 << 20) - 1] = '\n';
    make_pair(sv);
    peer.fd = sv[1];
    peer.data = data;
    peer.len = 1 << 20;
    peer.chunk = 65536;
    peer.shut = 1;
    peer_start(&peer);

    s = stream_open(sv[0], 5, 4096);
    while ((n = stream_get_line(s, buf)) > 0) {
        assert_true(n <= 4096);
        assert_int_equal((size_t) n, buf->len);
        assert_int_equal(buf->data[n], 0);
        if (buf->data[n - 1] != '\n')
            assert_int_equal(n, 4096);  /* only full pieces lack "\n" */
        strbuf_append(all, buf->data, buf->len);
    }
    assert_int_equal(n, 0);
    assert_int_equal(all->len, 1 << 20);
    assert_memory_equal(all->data, data, 1 << 20);
    peer_join(&peer);
    stream_close(&s);
    close(sv[1]);

    /* A limit larger than the internal buffer: one call, one line. */
    make_pair(sv);
    peer.fd = sv[1];
    peer.len = 50000;
    data[49999] = '\n';
    peer_start(&peer);
    s = stream_open(sv[0], 5, 100000);
    assert_int_equal(stream_get_line(s, buf), 50000);
    assert_memory_equal(buf->data, data, 50000);
    assert_int_equal(stream_get_line(s, buf), 0);
    peer_join(&peer);
    stream_close(&s);
    close(sv[1]);
    free(data);
    strbuf_free(&buf);
    strbuf_free(&all);
}

/* NUL bytes are data; line length comes from the return value. */
static void test_nul_bytes(void **state)
{
    STRBUF *buf = strbuf_alloc(0);
    STREAM *s;
    int sv[2];

    (void) state;
    make_pair(sv);
    s = stream_open(sv[0], 5, 6);
    put_all(sv[1], "a\0b\n\0\0\0\0\0\0\0\n", 12);
    close(sv[1]);
    assert_int_equal(stream_get_line(s, buf), 4);
    assert_memory_equal(buf->data, "a\0b\n", 5);
    assert_int_equal(stream_get_line(s, buf), 6);
    assert_memory_equal(buf->data, "\0\0\0\0\0\0", 7);
    assert_int_equal(stream_get_line(s, buf), 2);
    assert_memory_equal(buf->data, "\0\n", 3);
    assert_int_equal(stream_get_line(s, buf), 0);
    stream_close(&s);
    strbuf_free(&buf);
}

/* A peer that sends one byte at a time: partial reads make whole lines. */
static void test_dribbling_peer(void **state)
{
    static const char text[] = "EHLO client.example\r\nMAIL FROM:<a@b>\r\n";
    STRBUF *buf = strbuf_alloc(0);
    PEER peer = {0};
    STREAM *s;
    int sv[2];

    (void) state;
    make_pair(sv);
    peer.fd = sv[1];
    peer.data = text;
    peer.len = sizeof(text) - 1;
    peer.chunk = 1;
    peer.delay_ms = 2;
    peer.shut = 1;
    peer_start(&peer);
    s = stream_open(sv[0], 5, LIMIT);
    assert_int_equal(stream_get_line(s, buf), 21);
    assert_string_equal(buf->data, "EHLO client.example\r\n");
    assert_int_equal(stream_get_line(s, buf), 17);
    assert_string_equal(buf->data, "MAIL FROM:<a@b>\r\n");
    assert_int_equal(stream_get_line(s, buf), 0);
    peer_join(&peer);
    stream_close(&s);
    close(sv[1]);
    strbuf_free(&buf);
}

/*
 * The timeout is a deadline per call: a peer that sends a byte every 200 ms
 * must not keep stream_get_line() busy past the 1-second timeout.
 */
static void test_get_line_deadline(void **state)
{
    static char slow[64];
    STRBUF *buf = strbuf_alloc(0);
    PEER peer = {0};
    long long start;
    long long took;
    STREAM *s;
    int sv[2];

    (void) state;
    memset(slow, 'x', sizeof(slow));
    make_pair(sv);
    peer.fd = sv[1];
    peer.data = slow;
    peer.len = sizeof(slow);
    peer.chunk = 1;
    peer.delay_ms = 200;
    peer_start(&peer);
    s = stream_open(sv[0], 1, LIMIT);
    start = stream_now_ms();
    assert_int_equal(stream_get_line(s, buf), -1);
    took = stream_now_ms() - start;
    assert_true(stream_timed_out(s));
    assert_true(stream_error(s));
    assert_false(stream_eof(s));
    if (took < 900 || took > 1600)
        fail_msg("stream_get_line took %lld ms, timeout is 1000", took);
    assert_true(s->bytes_in >= 2);      /* bytes did arrive meanwhile */

    /* The error sticks until cleared. */
    start = stream_now_ms();
    assert_int_equal(stream_get_line(s, buf), -1);
    assert_true(stream_now_ms() - start < 100);
    stream_clear_flags(s);
    assert_false(stream_timed_out(s));
    assert_false(stream_error(s));
    peer_join(&peer);
    stream_close(&s);
    close(sv[1]);
    strbuf_free(&buf);
}

/* stream_read_exact() has one deadline for the whole transfer, too. */
static void test_read_exact_deadline(void **state)
{
    static char slow[32];
    STRBUF *buf = strbuf_alloc(0);
    PEER peer = {0};
    long long start;
    long long took;
    STREAM *s;
    int sv[2];

    (void) state;
    memset(slow, 'y', sizeof(slow));
    make_pair(sv);
    peer.fd = sv[1];
    peer.data = slow;
    peer.len = sizeof(slow);
    peer.chunk = 1;
    peer.delay_ms = 150;
    peer_start(&peer);
    s = stream_open(sv[0], 1, LIMIT);
    start = stream_now_ms();
    assert_int_equal(stream_read_exact(s, buf, sizeof(slow)), -1);
    took = stream_now_ms() - start;
    assert_true(stream_timed_out(s));
    if (took < 900 || took > 1600)
        fail_msg("stream_read_exact took %lld ms, timeout is 1000", took);
    assert_true(buf->len < sizeof(slow));
    peer_join(&peer);
    stream_close(&s);
    close(sv[1]);
    strbuf_free(&buf);
}

/* No data at all: the plain timeout. */
static void test_idle_timeout(void **state)
{
    STRBUF *buf = strbuf_alloc(0);
    char ch;
    long long start;
    STREAM *s;
    int sv[2];

    (void) state;
    make_pair(sv);
    s = stream_open(sv[0], 1, LIMIT);
    start = stream_now_ms();
    assert_int_equal(stream_read(s, &ch, 1), -1);
    assert_true(stream_timed_out(s));
    assert_true(stream_now_ms() - start >= 900);

    /* Timeout 0 means no limit: data that comes late is still read. */
    stream_clear_flags(s);
    stream_set_timeout(s, 0);
    put_str(sv[1], "late\n");
    assert_int_equal(stream_get_line(s, buf), 5);
    assert_string_equal(buf->data, "late\n");
    stream_close(&s);
    close(sv[1]);
    strbuf_free(&buf);
}

static void test_read_exact(void **state)
{
    static const char text[] = "0123456789";
    STRBUF *buf = strbuf_alloc(0);
    PEER peer = {0};
    STREAM *s;
    int sv[2];

    (void) state;
    make_pair(sv);
    peer.fd = sv[1];
    peer.data = text;
    peer.len = 10;
    peer.chunk = 1;
    peer.delay_ms = 1;
    peer.shut = 1;
    peer_start(&peer);
    s = stream_open(sv[0], 5, LIMIT);
    strbuf_set(buf, "X");
    assert_int_equal(stream_read_exact(s, buf, 7), 0);   /* appends */
    assert_string_equal(buf->data, "X0123456");
    assert_int_equal(stream_read_exact(s, buf, 0), 0);
    assert_string_equal(buf->data, "X0123456");
    /* Only 3 bytes remain before EOF. */
    assert_int_equal(stream_read_exact(s, buf, 5), -1);
    assert_true(stream_eof(s));
    assert_false(stream_error(s));
    peer_join(&peer);
    stream_close(&s);
    close(sv[1]);
    strbuf_free(&buf);
}

static void test_stream_read(void **state)
{
    char got[16];
    STRBUF *line = strbuf_alloc(0);
    STREAM *s;
    int sv[2];

    (void) state;
    make_pair(sv);
    s = stream_open(sv[0], 5, LIMIT);
    put_str(sv[1], "hello\nworld");
    assert_int_equal(stream_get_line(s, line), 6);
    /* Whatever is buffered, at most len. */
    assert_int_equal(stream_read(s, got, 0), 0);
    assert_int_equal(stream_read(s, got, 3), 3);
    assert_memory_equal(got, "wor", 3);
    assert_int_equal(stream_read(s, got, sizeof(got)), 2);
    assert_memory_equal(got, "ld", 2);
    close(sv[1]);
    assert_int_equal(stream_read(s, got, sizeof(got)), 0);
    assert_true(stream_eof(s));
    stream_close(&s);
    strbuf_free(&line);
}

static void test_write_flush(void **state)
{
    STRBUF *got = strbuf_alloc(0);
    STREAM *s;
    int sv[2];

    (void) state;
    make_pair(sv);
    s = stream_open(sv[0], 5, LIMIT);
    stream_puts(s, "220 ready\r\n");
    stream_write(s, "a\0b", 3);
    stream_printf(s, "%d %s\r\n", 250, "ok");
    /* Nothing leaves before the flush. */
    assert_int_equal(recv(sv[1], got->data, 1, MSG_DONTWAIT), -1);
    assert_int_equal(stream_flush(s), 0);
    assert_int_equal(stream_flush(s), 0);       /* nothing more to send */
    stream_close(&s);
    get_all(sv[1], got);
    assert_int_equal(got->len, 11 + 3 + 8);
    assert_memory_equal(got->data, "220 ready\r\na\0b250 ok\r\n", 22);
    close(sv[1]);
    strbuf_free(&got);
}

/* More than the write buffer: flushed as it fills, everything arrives. */
static void test_large_write(void **state)
{
    size_t total = 300000;
    char *data = malloc(total);
    PEER peer = {0};
    STREAM *s;
    int sv[2];

    (void) state;
    assert_non_null(data);
    for (size_t i = 0; i < total; i++)
        data[i] = (char) (i * 7 + i / 251);
    make_pair(sv);
    peer.fd = sv[1];
    peer.reader = 1;
    peer.got = strbuf_alloc(0);
    peer_start(&peer);
    s = stream_open(sv[0], 5, LIMIT);
    stream_write(s, data, 1);
    stream_write(s, data + 1, total - 1000 - 1);
    for (size_t i = total - 1000; i < total; i += 100)
        stream_write(s, data + i, 100);
    assert_int_equal(stream_flush(s), 0);
    assert_int_equal(s->bytes_out, total);
    stream_close(&s);
    peer_join(&peer);
    assert_int_equal(peer.got->len, total);
    assert_memory_equal(peer.got->data, data, total);
    close(sv[1]);
    strbuf_free(&peer.got);
    free(data);
}

static void closed_peer_child(void *arg)
{
    static STREAM *volatile s;
    int sv[2];
    int rc;

    (void) arg;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        _exit(2);
    close(sv[1]);
    s = stream_open(sv[0], 5, LIMIT);
    stream_puts(s, "221 bye\r\n");
    rc = stream_flush(s);
    if (rc != -1 || !stream_error(s) || stream_timed_out(s))
        _exit(3);
    /* Later writes fail too, they do not crash, and still say why. */
    stream_puts(s, "more");
    errno = 0;
    if (stream_flush(s) != -1)
        _exit(4);
    if (errno != EPIPE)
        _exit(5);
    stream_close((STREAM **) &s);
}

/* Flushing to a peer that hung up is an error, not a fatal SIGPIPE. */
static void test_flush_closed_peer(void **state)
{
    int status;

    (void) state;
    status = unit_fork(closed_peer_child, NULL, NULL);
    if (WIFSIGNALED(status))
        fail_msg("killed by signal %d", WTERMSIG(status));
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/* A peer that never reads: the flush gives up at the deadline. */
static void test_flush_deadline(void **state)
{
    char *junk = calloc(1, 1 << 20);
    long long start;
    long long took;
    STREAM *s;
    int sv[2];
    int i;

    (void) state;
    assert_non_null(junk);
    make_pair(sv);
    s = stream_open(sv[0], 1, LIMIT);
    start = stream_now_ms();
    for (i = 0; i < 64 && !stream_error(s); i++)
        stream_write(s, junk, 1 << 20);
    assert_int_equal(stream_flush(s), -1);
    took = stream_now_ms() - start;
    assert_true(stream_timed_out(s));
    if (took < 900 || took > 1800)
        fail_msg("writing took %lld ms, timeout is 1000", took);
    stream_close(&s);
    close(sv[1]);
    free(junk);
}

static void test_pending_purge(void **state)
{
    STRBUF *buf = strbuf_alloc(0);
    STREAM *s;
    int sv[2];

    (void) state;
    make_pair(sv);
    s = stream_open(sv[0], 5, LIMIT);
    assert_int_equal(stream_pending(s), 0);
    put_str(sv[1], "STARTTLS\r\nINJECTED\r\n");
    assert_int_equal(stream_get_line(s, buf), 10);
    assert_string_equal(buf->data, "STARTTLS\r\n");
    /* Pipelined text after the command is visible... */
    assert_int_equal(stream_pending(s), 10);
    assert_int_equal(stream_wait_input(s, 0), 1);
    /* ...and can be thrown away (CVE-2011-0411). */
    stream_purge_input(s);
    assert_int_equal(stream_pending(s), 0);
    assert_int_equal(stream_wait_input(s, 0), 0);
    put_str(sv[1], "EHLO x\r\n");
    assert_int_equal(stream_get_line(s, buf), 8);
    assert_string_equal(buf->data, "EHLO x\r\n");
    stream_close(&s);
    close(sv[1]);
    strbuf_free(&buf);
}

static void test_wait_input(void **state)
{
    PEER peer = {0};
    long long start;
    long long took;
    STREAM *s;
    int sv[2];

    (void) state;
    make_pair(sv);
    s = stream_open(sv[0], 5, LIMIT);
    start = stream_now_ms();
    assert_int_equal(stream_wait_input(s, 100), 0);
    took = stream_now_ms() - start;
    assert_true(took >= 90 && took < 1000);

    /* Input that arrives while waiting. */
    peer.fd = sv[1];
    peer.data = "x";
    peer.len = 1;
    peer.chunk = 1;
    peer.delay_ms = 50;
    peer_start(&peer);
    start = stream_now_ms();
    assert_int_equal(stream_wait_input(s, 2000), 1);
    assert_true(stream_now_ms() - start < 1500);
    peer_join(&peer);

    /* End of file counts as input: the next read says so. */
    close(sv[1]);
    assert_int_equal(stream_wait_input(s, 1000), 1);
    stream_close(&s);
}

/* stream_free() leaves the descriptor open, stream_close() closes it. */
static void test_free_close(void **state)
{
    STREAM *s;
    int sv[2];

    (void) state;
    make_pair(sv);
    s = stream_open(sv[0], 5, LIMIT);
    stream_free(&s);
    assert_null(s);
    stream_free(&s);
    assert_true(fcntl(sv[0], F_GETFD) >= 0);
    s = stream_open(sv[0], 5, LIMIT);
    stream_close(&s);
    assert_null(s);
    stream_close(&s);
    assert_int_equal(fcntl(sv[0], F_GETFD), -1);
    assert_int_equal(errno, EBADF);
    close(sv[1]);
}

/* Pipes: lines in, and buffered output through write(2). */
static void test_pipes(void **state)
{
    STRBUF *buf = strbuf_alloc(0);
    STREAM *in;
    STREAM *out;
    int p1[2];
    int p2[2];

    (void) state;
    assert_int_equal(pipe(p1), 0);
    assert_int_equal(pipe(p2), 0);
    in = stream_open(p1[0], 5, 8);
    out = stream_open(p2[1], 5, LIMIT);
    put_str(p1[1], "MAIL FROM:<x@y>\r\nQUIT");
    close(p1[1]);
    assert_int_equal(stream_get_line(in, buf), 8);
    assert_string_equal(buf->data, "MAIL FRO");
    assert_int_equal(stream_get_line(in, buf), 8);
    assert_string_equal(buf->data, "M:<x@y>\r");
    assert_int_equal(stream_get_line(in, buf), 1);
    assert_int_equal(stream_get_line(in, buf), 4);
    assert_string_equal(buf->data, "QUIT");
    assert_int_equal(stream_get_line(in, buf), 0);
    stream_printf(out, "250 %s\r\n", "2.1.0 Ok");
    assert_int_equal(stream_flush(out), 0);
    stream_close(&out);
    strbuf_reset(buf);
    get_all(p2[0], buf);
    assert_string_equal(buf->data, "250 2.1.0 Ok\r\n");
    stream_close(&in);
    close(p2[0]);
    strbuf_free(&buf);
}

static void pipe_full_child(void *arg)
{
    static char *volatile big;
    static STREAM *volatile s;
    int fds[2];
    int rc;

    (void) arg;
    alarm(5);                           /* a hang ends with SIGALRM */
    if (pipe(fds) < 0)
        _exit(2);
    big = calloc(1, 300000);
    s = stream_open(fds[1], 1, LIMIT);
    stream_write(s, "x", 1);            /* misalign the pipe's pages */
    if (stream_flush(s) != 0)
        _exit(3);
    stream_write(s, big, 300000);       /* nobody reads */
    rc = stream_flush(s);
    _exit(rc == -1 && stream_timed_out(s) ? 0 : 4);
}

/* A pipe nobody reads: the flush deadline holds there too. */
static void test_pipe_flush_deadline(void **state)
{
    long long start = stream_now_ms();
    int status;

    (void) state;
    status = unit_fork(pipe_full_child, NULL, NULL);
    if (WIFSIGNALED(status))
        fail_msg("child killed by signal %d (hung in write?)",
                 WTERMSIG(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_true(stream_now_ms() - start < 3000);
}

static void pipe_closed_child(void *arg)
{
    static STREAM *volatile s;
    int fds[2];

    (void) arg;
    signal(SIGPIPE, SIG_IGN);           /* as every daemon does */
    if (pipe(fds) < 0)
        _exit(2);
    close(fds[0]);
    s = stream_open(fds[1], 1, LIMIT);
    stream_puts(s, "hello\n");
    if (stream_flush(s) != -1 || !stream_error(s))
        _exit(3);
    stream_close((STREAM **) &s);
}

static void test_pipe_closed_reader(void **state)
{
    int status;

    (void) state;
    status = unit_fork(pipe_closed_child, NULL, NULL);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

/*
 * A ROT13 transport slid under the stream, the way TLS will be: the
 * protocol code below runs unchanged on both transports.
 */
typedef struct ROT13 {
    int     reads;
    int     writes;
    size_t  pending;                    /* pretend-decoded bytes */
} ROT13;

static void rot13(unsigned char *cp, size_t len)
{
    for (; len > 0; cp++, len--) {
        if (*cp >= 'a' && *cp <= 'z')
            *cp = (unsigned char) ('a' + (*cp - 'a' + 13) % 26);
        else if (*cp >= 'A' && *cp <= 'Z')
            *cp = (unsigned char) ('A' + (*cp - 'A' + 13) % 26);
    }
}

static ssize_t rot13_read(void *ctx, int fd, void *buf, size_t len,
                          int timeout_ms)
{
    ROT13 *r = ctx;
    ssize_t n = stream_plain_io.read(NULL, fd, buf, len, timeout_ms);

    r->reads++;
    if (n > 0)
        rot13(buf, (size_t) n);
    return n;
}

static ssize_t rot13_write(void *ctx, int fd, const void *buf, size_t len,
                           int timeout_ms)
{
    ROT13 *r = ctx;
    unsigned char *tmp = malloc(len);
    ssize_t n;

    assert_non_null(tmp);
    memcpy(tmp, buf, len);
    rot13(tmp, len);
    n = stream_plain_io.write(NULL, fd, tmp, len, timeout_ms);
    free(tmp);
    r->writes++;
    return n;
}

static size_t rot13_pending(void *ctx)
{
    return ((ROT13 *) ctx)->pending;
}

static const STREAM_IO rot13_io = {rot13_read, rot13_write, rot13_pending};

/* A toy protocol: echo each line with "250 " until QUIT. */
static int toy_session(STREAM *s)
{
    STRBUF *line = strbuf_alloc(64);
    int lines = 0;

    while (stream_get_line(s, line) > 0) {
        strbuf_trim_right(line);
        if (strcmp(line->data, "QUIT") == 0) {
            stream_puts(s, "221 Bye\r\n");
            break;
        }
        stream_printf(s, "250 %s\r\n", line->data);
        lines++;
    }
    strbuf_free(&line);
    return stream_flush(s) == 0 ? lines : -1;
}

static void run_toy(const STREAM_IO *io, void *ctx, const char *wire_in,
                    const char *wire_out)
{
    STRBUF *got = strbuf_alloc(0);
    STREAM *s;
    int sv[2];

    make_pair(sv);
    s = stream_open(sv[0], 5, LIMIT);
    if (io)
        stream_set_io(s, io, ctx);
    put_str(sv[1], wire_in);
    shutdown(sv[1], SHUT_WR);
    assert_int_equal(toy_session(s), 2);
    stream_close(&s);
    get_all(sv[1], got);
    assert_string_equal(got->data, wire_out);
    close(sv[1]);
    strbuf_free(&got);
}

static void test_layered_io(void **state)
{
    ROT13 r = {0, 0, 0};
    STREAM *s;
    int sv[2];

    (void) state;
    run_toy(NULL, NULL, "HELO a\r\nNOOP\r\nQUIT\r\n",
            "250 HELO a\r\n250 NOOP\r\n221 Bye\r\n");
    /* The same session over ROT13: the wire is scrambled both ways. */
    run_toy(&rot13_io, &r, "URYB n\r\nABBC\r\nDHVG\r\n",
            "250 URYB n\r\n250 ABBC\r\n221 Olr\r\n");
    assert_true(r.reads >= 1);
    assert_true(r.writes >= 1);

    /* Bytes held inside the transport count as pending input. */
    make_pair(sv);
    s = stream_open(sv[0], 5, LIMIT);
    stream_set_io(s, &rot13_io, &r);
    assert_int_equal(stream_pending(s), 0);
    assert_int_equal(stream_wait_input(s, 0), 0);
    r.pending = 5;
    assert_int_equal(stream_pending(s), 5);
    assert_int_equal(stream_wait_input(s, 0), 1);
    /* Back to the plain transport. */
    stream_set_io(s, &stream_plain_io, NULL);
    assert_int_equal(stream_pending(s), 0);
    stream_close(&s);
    close(sv[1]);
}

/* A zero line limit is a programming error. */
static void zero_limit_child(void *arg)
{
    (void) arg;
    (void) stream_open(0, 1, 0);
}

static void test_zero_limit_panics(void **state)
{
    int status;

    (void) state;
    status = unit_fork(zero_limit_child, NULL, NULL);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGABRT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_lf_crlf),
        cmocka_unit_test(test_long_line_pieces),
        cmocka_unit_test(test_oversized_line),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_dribbling_peer),
        cmocka_unit_test(test_get_line_deadline),
        cmocka_unit_test(test_read_exact_deadline),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_read_exact),
        cmocka_unit_test(test_stream_read),
        cmocka_unit_test(test_write_flush),
        cmocka_unit_test(test_large_write),
        cmocka_unit_test(test_flush_closed_peer),
        cmocka_unit_test(test_flush_deadline),
        cmocka_unit_test(test_pending_purge),
        cmocka_unit_test(test_wait_input),
        cmocka_unit_test(test_free_close),
        cmocka_unit_test(test_pipes),
        cmocka_unit_test(test_pipe_flush_deadline),
        cmocka_unit_test(test_pipe_closed_reader),
        cmocka_unit_test(test_layered_io),
        cmocka_unit_test(test_zero_limit_panics),
    };

    msg_init("test_stream", 0);
    unit_log_reset();                   /* keep panics off stderr */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
