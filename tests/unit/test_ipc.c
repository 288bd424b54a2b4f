/*
 * test_ipc - the attribute record format between services: encoding and
 * decoding of strings, numbers and binary data, records over a socketpair
 * (whole, back to back, one byte at a time), end of file, the size limit,
 * the read deadline, malformed payloads, strict scanning, connecting to a
 * service socket, and panics on records our own code builds wrongly.
 *
 * Malformed payloads are decoded from heap buffers of their exact size,
 * so that ASan and valgrind catch any read past the end.
 */
#include "unit.h"

#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>

#include "mail/ipc.h"
#include "util/stream.h"

static void make_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

static void put_all(int fd, const void *data, size_t len)
{
    const char *cp = data;

    while (len > 0) {
        ssize_t n = send(fd, cp, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n > 0);
        cp += n;
        len -= (size_t) n;
    }
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* Decode from a heap copy of exactly len bytes. */
static int decode_exact(IPC_MSG *m, const void *payload, size_t len,
                        STRBUF *err)
{
    char *copy = malloc(len ? len : 1);
    int rc;

    assert_non_null(copy);
    if (len)
        memcpy(copy, payload, len);
    rc = ipc_decode(m, copy, len, err);
    free(copy);
    return rc;
}

/* Encode m and decode the payload into a fresh message. */
static IPC_MSG *round_trip(const IPC_MSG *m)
{
    STRBUF *buf = strbuf_alloc(0);
    STRBUF *err = strbuf_alloc(0);
    IPC_MSG *out = ipc_msg_alloc();

    ipc_encode(m, buf);
    assert_true(buf->len >= 4);
    assert_int_equal(decode_exact(out, buf->data + 4, buf->len - 4, err), 0);
    assert_int_equal(err->len, 0);
    strbuf_free(&buf);
    strbuf_free(&err);
    return out;
}

static void assert_same_msg(const IPC_MSG *a, const IPC_MSG *b)
{
    assert_int_equal(a->count, b->count);
    for (size_t i = 0; i < a->count; i++) {
        assert_string_equal(a->attrs[i].name, b->attrs[i].name);
        assert_int_equal(a->attrs[i].len, b->attrs[i].len);
        assert_memory_equal(a->attrs[i].value, b->attrs[i].value,
                            a->attrs[i].len + 1);
    }
}

/* The wire format, byte for byte. */
static void test_encode_bytes(void **state)
{
    static const char want[] =
        "\0\0\0\x12"                    /* payload length 12 + 6 */
        "\x04" "mode" "\0\0\0\x03" "abc"
        "\x01" "x" "\0\0\0\0";
    STRBUF *buf = strbuf_alloc(0);
    IPC_MSG *m = ipc_msg_alloc();

    (void) state;
    ipc_encode(m, buf);
    assert_int_equal(buf->len, 4);
    assert_memory_equal(buf->data, "\0\0\0\0", 4);

    ipc_put_str(m, "mode", "abc");
    ipc_put_str(m, "x", "");
    strbuf_set(buf, "junk that encode replaces");
    ipc_encode(m, buf);
    assert_int_equal(buf->len, sizeof(want) - 1);
    assert_memory_equal(buf->data, want, sizeof(want) - 1);
    ipc_msg_free(&m);
    assert_null(m);
    ipc_msg_free(&m);                   /* NULL is allowed */
    strbuf_free(&buf);
}

static void test_round_trip_str(void **state)
{
    IPC_MSG *m = ipc_msg_alloc();
    IPC_MSG *out;
    const IPC_ATTR *a;
    char big[5000];

    (void) state;
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    ipc_put_str(m, "request", "cleanup");
    ipc_put_str(m, "empty", "");
    ipc_put_str(m, "sender", "<user@example.com>");
    ipc_put_str(m, "big", big);
    ipc_put_str(m, "utf8", "gr\xc3\xbc\xc3\x9f \r\n\t");
    out = round_trip(m);
    assert_same_msg(m, out);
    assert_non_null(a = ipc_find(out, "request"));
    assert_string_equal(a->value, "cleanup");
    assert_non_null(a = ipc_find(out, "empty"));
    assert_int_equal(a->len, 0);
    assert_string_equal(a->value, "");
    assert_non_null(a = ipc_find(out, "big"));
    assert_int_equal(a->len, sizeof(big) - 1);
    assert_null(ipc_find(out, "missing"));
    assert_null(ipc_find(out, "Request"));

    /* Reset empties a message for reuse. */
    ipc_msg_reset(out);
    assert_int_equal(out->count, 0);
    assert_null(ipc_find(out, "request"));
    ipc_put_str(out, "request", "again");
    assert_string_equal(ipc_find(out, "request")->value, "again");
    ipc_msg_free(&out);
    ipc_msg_free(&m);
}

static void test_round_trip_long(void **state)
{
    static const long values[] = {
        0, 1, -1, 42, -42, 1000000007L, LONG_MAX, LONG_MIN, LONG_MAX - 1,
        LONG_MIN + 1,
    };
    static const char *const names[] = {
        "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9",
    };
    long got[10];
    IPC_SPEC specs[11];
    IPC_MSG *m = ipc_msg_alloc();
    IPC_MSG *out;
    STRBUF *err = strbuf_alloc(0);
    STRBUF *text = strbuf_alloc(0);

    (void) state;
    for (size_t i = 0; i < 10; i++) {
        ipc_put_long(m, names[i], values[i]);
        specs[i].name = names[i];
        specs[i].type = IPC_LONG;
        specs[i].required = 1;
        specs[i].dest = &got[i];
        got[i] = 12345;
    }
    specs[10] = (IPC_SPEC) IPC_SPEC_END;
    out = round_trip(m);
    assert_same_msg(m, out);
    /* Decimal text on the wire. */
    for (size_t i = 0; i < 10; i++) {
        strbuf_printf(text, "%ld", values[i]);
        assert_string_equal(ipc_find(out, names[i])->value, text->data);
    }
    assert_int_equal(ipc_scan(out, specs, err), 0);
    for (size_t i = 0; i < 10; i++)
        assert_true(got[i] == values[i]);
    ipc_msg_free(&out);
    ipc_msg_free(&m);
    strbuf_free(&err);
    strbuf_free(&text);
}

/* Binary values: every byte value, NUL bytes, empty data. */
static void test_round_trip_data(void **state)
{
    unsigned char all[512];
    IPC_MSG *m = ipc_msg_alloc();
    IPC_MSG *out;
    const IPC_ATTR *a;

    (void) state;
    for (size_t i = 0; i < sizeof(all); i++)
        all[i] = (unsigned char) (255 - i % 256);
    ipc_put_data(m, "all", all, sizeof(all));
    ipc_put_data(m, "nuls", "\0\0\0", 3);
    ipc_put_data(m, "mid", "a\0b", 3);
    ipc_put_data(m, "none", NULL, 0);
    out = round_trip(m);
    assert_same_msg(m, out);
    assert_non_null(a = ipc_find(out, "all"));
    assert_int_equal(a->len, sizeof(all));
    assert_memory_equal(a->value, all, sizeof(all));
    assert_int_equal(a->value[a->len], 0);      /* terminated anyway */
    assert_non_null(a = ipc_find(out, "nuls"));
    assert_int_equal(a->len, 3);
    assert_memory_equal(a->value, "\0\0\0\0", 4);
    assert_non_null(a = ipc_find(out, "mid"));
    assert_memory_equal(a->value, "a\0b", 4);
    assert_non_null(a = ipc_find(out, "none"));
    assert_int_equal(a->len, 0);
    assert_int_equal(a->value[0], 0);
    ipc_msg_free(&out);
    ipc_msg_free(&m);
}

/* The limits for names and counts are inclusive. */
static void test_decode_limits_ok(void **state)
{
    char name[IPC_NAME_MAX + 1];
    STRBUF *payload = strbuf_alloc(0);
    STRBUF *err = strbuf_alloc(0);
    IPC_MSG *m = ipc_msg_alloc();

    (void) state;
    memset(name, 'n', IPC_NAME_MAX);
    name[IPC_NAME_MAX] = 0;
    ipc_put_str(m, name, "v");
    ipc_put_str(m, "az09_", "w");
    for (int i = 2; i < IPC_ATTR_MAX; i++) {
        char n[16];

        snprintf(n, sizeof(n), "a%d", i);
        ipc_put_long(m, n, i);
    }
    assert_int_equal(m->count, IPC_ATTR_MAX);
    ipc_encode(m, payload);
    ipc_msg_reset(m);
    assert_int_equal(decode_exact(m, payload->data + 4, payload->len - 4, err),
                     0);
    assert_int_equal(m->count, IPC_ATTR_MAX);
    assert_string_equal(ipc_find(m, name)->value, "v");
    assert_string_equal(ipc_find(m, "az09_")->value, "w");
    assert_string_equal(ipc_find(m, "a255")->value, "255");

    /* An empty payload is an empty record. */
    assert_int_equal(decode_exact(m, "", 0, err), 0);
    assert_int_equal(m->count, 0);
    ipc_msg_free(&m);
    strbuf_free(&payload);
    strbuf_free(&err);
}

typedef struct BAD_CASE {
    const char *label;
    const char *payload;
    size_t  len;
    const char *want;
} BAD_CASE;

#define BAD(label, lit, want) {label, lit, sizeof(lit) - 1, want}

static void test_decode_malformed(void **state)
{
    static const BAD_CASE cases[] = {
        BAD("truncated name", "\x05" "ab", "bad attribute name"),
        BAD("name length only", "\x01", "bad attribute name"),
        BAD("truncated second name",
            "\x01" "a" "\0\0\0\0" "\x09" "abc", "bad attribute name"),
        BAD("name length 0", "\0" "\0\0\0\0", "bad attribute name"),
        BAD("upper case", "\x01" "A" "\0\0\0\0", "bad attribute name"),
        BAD("dash", "\x03" "a-b" "\0\0\0\0", "bad attribute name"),
        BAD("space", "\x03" "a b" "\0\0\0\0", "bad attribute name"),
        BAD("NUL in name", "\x03" "a\0b" "\0\0\0\0", "bad attribute name"),
        BAD("8-bit name", "\x02" "a\xe4" "\0\0\0\0", "bad attribute name"),
        BAD("length 255", "\xff" "abc" "\0\0\0\0", "bad attribute name"),
        BAD("no length", "\x01" "a", "truncated attribute"),
        BAD("truncated length", "\x01" "a" "\0\0\0", "truncated attribute"),
        BAD("value beyond record", "\x01" "a" "\0\0\0\x05" "abc",
            "attribute length 5 exceeds record"),
        BAD("value beyond by one", "\x01" "a" "\0\0\0\x04" "abc",
            "exceeds record"),
        BAD("huge value", "\x01" "a" "\xff\xff\xff\xff" "abc",
            "attribute length 4294967295 exceeds record"),
        BAD("duplicate", "\x01" "a" "\0\0\0\x01" "1" "\x01" "a" "\0\0\0\0",
            "duplicate attribute \"a\""),
        BAD("duplicate later", "\x02" "ab" "\0\0\0\0" "\x01" "a" "\0\0\0\0"
            "\x02" "ab" "\0\0\0\0", "duplicate attribute \"ab\""),
    };
    STRBUF *err = strbuf_alloc(0);
    IPC_MSG *m = ipc_msg_alloc();

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ipc_msg_reset(m);
        ipc_put_str(m, "stale", "from before");
        strbuf_reset(err);
        if (decode_exact(m, cases[i].payload, cases[i].len, err) != -1)
            fail_msg("%s: decoded", cases[i].label);
        if (strstr(err->data, cases[i].want) == NULL)
            fail_msg("%s: error \"%s\", want \"%s\"", cases[i].label,
                     err->data, cases[i].want);
        assert_non_null(strstr(err->data, "malformed record"));
    }
    ipc_msg_free(&m);
    strbuf_free(&err);
}

/* Names longer than 64 bytes and more than 256 attributes. */
static void test_decode_too_long_too_many(void **state)
{
    STRBUF *payload = strbuf_alloc(0);
    STRBUF *err = strbuf_alloc(0);
    IPC_MSG *m = ipc_msg_alloc();

    (void) state;
    strbuf_addch(payload, IPC_NAME_MAX + 1);
    for (int i = 0; i <= IPC_NAME_MAX; i++)
        strbuf_addch(payload, 'a');
    strbuf_append(payload, "\0\0\0\0", 4);
    assert_int_equal(decode_exact(m, payload->data, payload->len, err), -1);
    assert_non_null(strstr(err->data, "bad attribute name"));

    strbuf_reset(payload);
    for (int i = 0; i <= IPC_ATTR_MAX; i++) {
        char name[16];
        int n = snprintf(name, sizeof(name), "a%d", i);

        strbuf_addch(payload, n);
        strbuf_append(payload, name, (size_t) n);
        strbuf_append(payload, "\0\0\0\x01" "x", 5);
    }
    strbuf_reset(err);
    assert_int_equal(decode_exact(m, payload->data, payload->len, err), -1);
    assert_non_null(strstr(err->data, "too many attributes"));
    ipc_msg_free(&m);
    strbuf_free(&payload);
    strbuf_free(&err);
}

/* Every strict prefix of a good payload that cuts an attribute fails. */
static void test_decode_prefixes(void **state)
{
    STRBUF *buf = strbuf_alloc(0);
    STRBUF *err = strbuf_alloc(0);
    IPC_MSG *m = ipc_msg_alloc();
    size_t ends[3];
    size_t plen;

    (void) state;
    ipc_put_str(m, "one", "value1");
    ipc_put_data(m, "two", "\0\1\2", 3);
    ipc_put_long(m, "three", -3);
    ipc_encode(m, buf);
    plen = buf->len - 4;
    ends[0] = 1 + 3 + 4 + 6;
    ends[1] = ends[0] + 1 + 3 + 4 + 3;
    ends[2] = plen;
    for (size_t cut = 0; cut <= plen; cut++) {
        int whole = cut == 0 || cut == ends[0] || cut == ends[1]
            || cut == ends[2];

        strbuf_reset(err);
        assert_int_equal(decode_exact(m, buf->data + 4, cut, err),
                         whole ? 0 : -1);
        assert_int_equal(err->len == 0, whole);
    }
    ipc_msg_free(&m);
    strbuf_free(&buf);
    strbuf_free(&err);
}

static void test_write_read(void **state)
{
    STRBUF *err = strbuf_alloc(0);
    IPC_MSG *m = ipc_msg_alloc();
    IPC_MSG *got = ipc_msg_alloc();
    STREAM *w;
    STREAM *r;
    int sv[2];

    (void) state;
    make_pair(sv);
    w = stream_open(sv[1], 5, 1024);
    r = stream_open(sv[0], 5, 1024);
    ipc_put_str(m, "request", "lookup");
    ipc_put_data(m, "key", "a\0b", 3);
    ipc_put_long(m, "flags", -7);
    assert_int_equal(ipc_write(w, m), 0);
    /* Two more records in one go: records do not run together. */
    ipc_msg_reset(m);
    ipc_put_str(m, "status", "0");
    assert_int_equal(ipc_write(w, m), 0);
    ipc_msg_reset(m);
    assert_int_equal(ipc_write(w, m), 0);       /* empty record */

    assert_int_equal(ipc_read(r, got, IPC_RECORD_MAX, err), 1);
    assert_int_equal(got->count, 3);
    assert_string_equal(ipc_find(got, "request")->value, "lookup");
    assert_memory_equal(ipc_find(got, "key")->value, "a\0b", 4);
    assert_string_equal(ipc_find(got, "flags")->value, "-7");
    assert_int_equal(ipc_read(r, got, IPC_RECORD_MAX, err), 1);
    assert_int_equal(got->count, 1);
    assert_string_equal(ipc_find(got, "status")->value, "0");
    assert_int_equal(ipc_read(r, got, IPC_RECORD_MAX, err), 1);
    assert_int_equal(got->count, 0);

    /* A clean end of file before a record. */
    stream_close(&w);
    assert_int_equal(ipc_read(r, got, IPC_RECORD_MAX, err), 0);
    assert_int_equal(got->count, 0);
    assert_int_equal(err->len, 0);
    assert_int_equal(ipc_read(r, got, IPC_RECORD_MAX, err), 0);

    /* Writing to a peer that went away fails without SIGPIPE. */
    w = stream_open(sv[0], 5, 1024);
    stream_free(&r);
    ipc_put_str(m, "x", "y");
    assert_int_equal(ipc_write(w, m), -1);
    assert_true(stream_error(w));
    stream_close(&w);
    ipc_msg_free(&m);
    ipc_msg_free(&got);
    strbuf_free(&err);
}

/* A peer thread that sends a buffer one byte at a time. */
typedef struct DRIBBLE {
    int     fd;
    const char *data;
    size_t  len;
    int     delay_ms;
    pthread_t tid;
} DRIBBLE;

static void *dribble_main(void *arg)
{
    DRIBBLE *d = arg;

    for (size_t i = 0; i < d->len; i++) {
        sleep_ms(d->delay_ms);
        if (send(d->fd, d->data + i, 1, MSG_NOSIGNAL) != 1)
            break;
    }
    (void) shutdown(d->fd, SHUT_WR);
    return NULL;
}

static void test_read_dribble(void **state)
{
    STRBUF *err = strbuf_alloc(0);
    STRBUF *wire = strbuf_alloc(0);
    IPC_MSG *m = ipc_msg_alloc();
    IPC_MSG *got = ipc_msg_alloc();
    DRIBBLE d;
    STREAM *r;
    int sv[2];

    (void) state;
    ipc_put_str(m, "sender", "a@example.com");
    ipc_put_data(m, "blob", "\0\xff\0", 3);
    ipc_put_long(m, "size", 1234567);
    ipc_encode(m, wire);
    ipc_msg_reset(m);
    ipc_put_str(m, "second", "record");
    {
        STRBUF *second = strbuf_alloc(0);

        ipc_encode(m, second);
        strbuf_append(wire, second->data, second->len);
        strbuf_free(&second);
    }
    make_pair(sv);
    d.fd = sv[1];
    d.data = wire->data;
    d.len = wire->len;
    d.delay_ms = 1;
    assert_int_equal(pthread_create(&d.tid, NULL, dribble_main, &d), 0);
    r = stream_open(sv[0], 5, 1024);
    assert_int_equal(ipc_read(r, got, IPC_RECORD_MAX, err), 1);
    assert_int_equal(got->count, 3);
    assert_string_equal(ipc_find(got, "sender")->value, "a@example.com");
    assert_memory_equal(ipc_find(got, "blob")->value, "\0\xff\0", 4);
    assert_string_equal(ipc_find(got, "size")->value, "1234567");
    assert_int_equal(ipc_read(r, got, IPC_RECORD_MAX, err), 1);
    assert_int_equal(got->count, 1);
    assert_string_equal(ipc_find(got, "second")->value, "record");
    assert_int_equal(ipc_read(r, got, IPC_RECORD_MAX, err), 0);
    assert_int_equal(pthread_join(d.tid, NULL), 0);
    stream_close(&r);
    close(sv[1]);
    ipc_msg_free(&m);
    ipc_msg_free(&got);
    strbuf_free(&err);
    strbuf_free(&wire);
}

/* Send raw bytes, half-close, and expect ipc_read to fail with 'want'. */
static void expect_read_error(const void *raw, size_t len, size_t limit,
                              const char *want)
{
    STRBUF *err = strbuf_alloc(0);
    IPC_MSG *got = ipc_msg_alloc();
    STREAM *r;
    int sv[2];

    make_pair(sv);
    put_all(sv[1], raw, len);
    (void) shutdown(sv[1], SHUT_WR);
    r = stream_open(sv[0], 5, 1024);
    assert_int_equal(ipc_read(r, got, limit, err), -1);
    if (strstr(err->data, want) == NULL)
        fail_msg("error \"%s\", want \"%s\"", err->data, want);
    stream_close(&r);
    close(sv[1]);
    ipc_msg_free(&got);
    strbuf_free(&err);
}

/* End of file inside a record is an error, not a clean end. */
static void test_read_eof_inside(void **state)
{
    (void) state;
    expect_read_error("\0", 1, IPC_RECORD_MAX,
                      "unexpected end of input in record length");
    expect_read_error("\0\0\0", 3, IPC_RECORD_MAX,
                      "unexpected end of input in record length");
    expect_read_error("\0\0\0\x09", 4, IPC_RECORD_MAX,
                      "unexpected end of input in record");
    expect_read_error("\0\0\0\x09" "\x01" "a" "\0\0", 8, IPC_RECORD_MAX,
                      "unexpected end of input in record");
    /* A complete record whose payload is malformed. */
    expect_read_error("\0\0\0\x06" "\x01" "A" "\0\0\0\0", 10, IPC_RECORD_MAX,
                      "bad attribute name");
    expect_read_error("\0\0\0\x05" "\x01" "a" "\0\0\0", 9, IPC_RECORD_MAX,
                      "truncated attribute");
}

/*
 * A record over the limit is refused from its length alone: ipc_read must
 * neither wait for the payload (the peer sends none and stays connected)
 * nor allocate it.
 */
static void test_read_limit(void **state)
{
    STRBUF *err = strbuf_alloc(0);
    STRBUF *wire = strbuf_alloc(0);
    IPC_MSG *m = ipc_msg_alloc();
    IPC_MSG *got = ipc_msg_alloc();
    long long start;
    STREAM *r;
    int sv[2];

    (void) state;
    make_pair(sv);
    r = stream_open(sv[0], 5, 1024);
    put_all(sv[1], "\xff\xff\xff\xff", 4);
    start = stream_now_ms();
    assert_int_equal(ipc_read(r, got, IPC_RECORD_MAX, err), -1);
    assert_true(stream_now_ms() - start < 1000);
    assert_string_equal(err->data, "record of 4294967295 bytes exceeds "
                        "the limit of 1048576");
    assert_int_equal(got->count, 0);
    stream_close(&r);
    close(sv[1]);

    /* The limit is inclusive. */
    ipc_put_str(m, "a", "0123456789");          /* payload 1+1+4+10 = 16 */
    ipc_encode(m, wire);
    assert_int_equal(wire->len, 20);
    make_pair(sv);
    r = stream_open(sv[0], 5, 1024);
    put_all(sv[1], wire->data, wire->len);
    put_all(sv[1], wire->data, wire->len);
    assert_int_equal(ipc_read(r, got, 16, err), 1);
    assert_string_equal(ipc_find(got, "a")->value, "0123456789");
    strbuf_reset(err);
    start = stream_now_ms();
    assert_int_equal(ipc_read(r, got, 15, err), -1);
    assert_true(stream_now_ms() - start < 1000);
    assert_string_equal(err->data,
                        "record of 16 bytes exceeds the limit of 15");
    stream_close(&r);
    close(sv[1]);

    /* An empty record passes a zero limit. */
    expect_read_error("\0\0\0\x01" "\0", 5, 0, "exceeds the limit of 0");
    ipc_msg_free(&m);
    ipc_msg_free(&got);
    strbuf_free(&err);
    strbuf_free(&wire);
}

/* ipc_read() in a thread, so that two deadlines run side by side. */
typedef struct READER {
    STREAM *s;
    IPC_MSG *m;
    STRBUF *err;
    int     rc;
    long long took;
    pthread_t tid;
} READER;

static void *reader_main(void *arg)
{
    READER *r = arg;
    long long start = stream_now_ms();

    r->rc = ipc_read(r->s, r->m, IPC_RECORD_MAX, r->err);
    r->took = stream_now_ms() - start;
    return NULL;
}

/*
 * Silent peers: ipc_read gives up at the stream's deadline, both before
 * the first byte of a record (in a thread) and inside one.
 */
static void test_read_timeout(void **state)
{
    STRBUF *err = strbuf_alloc(0);
    IPC_MSG *got = ipc_msg_alloc();
    READER idle;
    long long start;
    long long took;
    STREAM *r;
    int sv[2];
    int iv[2];

    (void) state;
    make_pair(iv);
    idle.s = stream_open(iv[0], 1, 1024);
    idle.m = ipc_msg_alloc();
    idle.err = strbuf_alloc(0);
    assert_int_equal(pthread_create(&idle.tid, NULL, reader_main, &idle), 0);
    make_pair(sv);
    r = stream_open(sv[0], 1, 1024);
    /* The length arrives, the payload never does. */
    put_all(sv[1], "\0\0\0\x10" "\x01" "a", 6);
    start = stream_now_ms();
    assert_int_equal(ipc_read(r, got, IPC_RECORD_MAX, err), -1);
    took = stream_now_ms() - start;
    assert_true(stream_timed_out(r));
    assert_non_null(strstr(err->data, "timeout"));
    assert_string_equal(err->data, "timeout while reading record");
    if (took < 800 || took > 2000)
        fail_msg("ipc_read took %lld ms, timeout is 1000", took);

    assert_int_equal(pthread_join(idle.tid, NULL), 0);
    assert_int_equal(idle.rc, -1);
    assert_true(stream_timed_out(idle.s));
    assert_string_equal(idle.err->data,
                        "timeout while reading record length");
    if (idle.took < 800 || idle.took > 2000)
        fail_msg("idle ipc_read took %lld ms, timeout is 1000", idle.took);
    stream_close(&idle.s);
    close(iv[1]);
    ipc_msg_free(&idle.m);
    strbuf_free(&idle.err);
    stream_close(&r);
    close(sv[1]);
    ipc_msg_free(&got);
    strbuf_free(&err);
}

/* A read error is reported as such, with the system's reason. */
static void test_read_io_error(void **state)
{
    STRBUF *err = strbuf_alloc(0);
    IPC_MSG *got = ipc_msg_alloc();
    STREAM *r;
    int fd;

    (void) state;
    assert_true((fd = open(unit_tmpdir(), O_RDONLY | O_DIRECTORY)) >= 0);
    r = stream_open(fd, 1, 1024);
    assert_int_equal(ipc_read(r, got, IPC_RECORD_MAX, err), -1);
    assert_false(stream_timed_out(r));
    assert_string_equal(err->data, "error reading record length: "
                        "Is a directory");
    stream_close(&r);
    ipc_msg_free(&got);
    strbuf_free(&err);
}

static void test_scan_ok(void **state)
{
    const char *sender = "unset";
    const char *absent_str = "unset";
    const IPC_ATTR *blob = NULL;
    const IPC_ATTR *absent_data = NULL;
    const char *empty = NULL;
    long size = 0;
    long absent_long = 99;
    IPC_SPEC specs[] = {
        {"sender", IPC_STR, 1, &sender},
        {"size", IPC_LONG, 1, &size},
        {"blob", IPC_DATA, 1, &blob},
        {"empty", IPC_STR, 1, &empty},
        {"opt_str", IPC_STR, 0, &absent_str},
        {"opt_long", IPC_LONG, 0, &absent_long},
        {"opt_data", IPC_DATA, 0, &absent_data},
        IPC_SPEC_END,
    };
    STRBUF *err = strbuf_alloc(0);
    IPC_MSG *m = ipc_msg_alloc();

    (void) state;
    ipc_put_data(m, "blob", "x\0y", 3);
    ipc_put_str(m, "sender", "a@b");
    ipc_put_long(m, "size", -100);
    ipc_put_str(m, "empty", "");
    assert_int_equal(ipc_scan(m, specs, err), 0);
    assert_int_equal(err->len, 0);
    assert_string_equal(sender, "a@b");
    assert_ptr_equal(sender, ipc_find(m, "sender")->value);
    assert_int_equal(size, -100);
    assert_ptr_equal(blob, ipc_find(m, "blob"));
    assert_int_equal(blob->len, 3);
    assert_memory_equal(blob->value, "x\0y", 3);
    assert_string_equal(empty, "");
    /* Optional attributes that are absent leave their destination alone. */
    assert_string_equal(absent_str, "unset");
    assert_int_equal(absent_long, 99);
    assert_null(absent_data);

    /* Present optional attributes are filled in. */
    ipc_put_str(m, "opt_str", "here");
    ipc_put_long(m, "opt_long", 0);
    ipc_put_data(m, "opt_data", "", 0);
    assert_int_equal(ipc_scan(m, specs, err), 0);
    assert_string_equal(absent_str, "here");
    assert_int_equal(absent_long, 0);
    assert_non_null(absent_data);
    assert_int_equal(absent_data->len, 0);

    /* An empty message satisfies a spec without required attributes. */
    ipc_msg_reset(m);
    assert_int_equal(ipc_scan(m, specs + 4, err), 0);
    ipc_msg_free(&m);
    strbuf_free(&err);
}

static void expect_scan_error(const IPC_MSG *m, const IPC_SPEC *specs,
                              const char *want)
{
    STRBUF *err = strbuf_alloc(0);

    assert_int_equal(ipc_scan(m, specs, err), -1);
    if (strcmp(err->data, want) != 0)
        fail_msg("error \"%s\", want \"%s\"", err->data, want);
    strbuf_free(&err);
}

static void test_scan_strict(void **state)
{
    static const struct {
        const char *text;
        size_t  len;
    } bad_numbers[] = {
        {"12x", 3}, {"", 0}, {"99999999999999999999", 20},
        {"-99999999999999999999", 21}, {"9223372036854775808", 19},
        {"-9223372036854775809", 20}, {"-", 1}, {"+1", 2}, {" 1", 2},
        {"1 ", 2}, {"0x10", 4}, {"1e3", 3}, {"1.0", 3}, {"--1", 3},
        {"1\0", 2}, {"1\0002", 3}, {"\0001", 2}, {"\xd9\xa1", 2},
    };
    const char *str = NULL;
    long num = 0;
    IPC_SPEC specs[] = {
        {"str", IPC_STR, 1, &str},
        {"num", IPC_LONG, 0, &num},
        IPC_SPEC_END,
    };
    IPC_MSG *m = ipc_msg_alloc();
    STRBUF *err = strbuf_alloc(0);

    (void) state;
    /* Missing required attribute. */
    expect_scan_error(m, specs, "missing attribute \"str\"");
    ipc_put_long(m, "num", 5);
    expect_scan_error(m, specs, "missing attribute \"str\"");

    /* Unexpected attribute, even when all required ones are there. */
    ipc_put_str(m, "str", "s");
    ipc_put_str(m, "extra", "e");
    expect_scan_error(m, specs, "unexpected attribute \"extra\"");
    expect_scan_error(m, (IPC_SPEC[]) {IPC_SPEC_END},
                      "unexpected attribute \"num\"");

    /* Numbers that are not numbers. */
    for (size_t i = 0; i < sizeof(bad_numbers) / sizeof(bad_numbers[0]);
         i++) {
        ipc_msg_reset(m);
        ipc_put_str(m, "str", "s");
        ipc_put_data(m, "num", bad_numbers[i].text, bad_numbers[i].len);
        num = 777;
        expect_scan_error(m, specs, "attribute \"num\": bad number");
        (void) num;
    }
    /* The extremes are numbers. */
    ipc_msg_reset(m);
    ipc_put_str(m, "str", "s");
    ipc_put_str(m, "num", "-9223372036854775808");
    assert_int_equal(ipc_scan(m, specs, err), 0);
    assert_true(num == LONG_MIN);
    ipc_msg_reset(m);
    ipc_put_str(m, "str", "s");
    ipc_put_str(m, "num", "9223372036854775807");
    assert_int_equal(ipc_scan(m, specs, err), 0);
    assert_true(num == LONG_MAX);
    ipc_msg_reset(m);
    ipc_put_str(m, "str", "s");
    ipc_put_str(m, "num", "-0");
    assert_int_equal(ipc_scan(m, specs, err), 0);
    assert_true(num == 0);

    /* NUL inside a string. */
    ipc_msg_reset(m);
    ipc_put_data(m, "str", "a\0b", 3);
    expect_scan_error(m, specs, "attribute \"str\": NUL in text");
    ipc_msg_reset(m);
    ipc_put_data(m, "str", "ab\0", 3);
    expect_scan_error(m, specs, "attribute \"str\": NUL in text");
    ipc_msg_reset(m);
    ipc_put_data(m, "str", "\0", 1);
    expect_scan_error(m, specs, "attribute \"str\": NUL in text");
    ipc_msg_free(&m);
    strbuf_free(&err);
}

/* Misuse by our own code is a bug: ipc_put_*() panics. */
static IPC_MSG *panic_msg;              /* reachable in the child */

static void put_panic_child(void *arg)
{
    const char *which = arg;

    msg_init("test_ipc", MSG_STDERR);
    panic_msg = ipc_msg_alloc();
    ipc_put_str(panic_msg, "ok", "1");
    if (strcmp(which, "upper") == 0)
        ipc_put_str(panic_msg, "Bad", "x");
    else if (strcmp(which, "empty") == 0)
        ipc_put_str(panic_msg, "", "x");
    else if (strcmp(which, "dash") == 0)
        ipc_put_long(panic_msg, "a-b", 1);
    else if (strcmp(which, "long") == 0)
        ipc_put_data(panic_msg, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                     "aaaaaaaaaaaaaaaaaaaa", "x", 1);       /* 65 */
    else if (strcmp(which, "duplicate") == 0)
        ipc_put_long(panic_msg, "ok", 2);
    else if (strcmp(which, "many") == 0) {
        for (int i = 1; i <= IPC_ATTR_MAX; i++) {
            char name[16];

            snprintf(name, sizeof(name), "n%d", i);
            ipc_put_long(panic_msg, name, i);
        }
    }
}

static void test_put_panics(void **state)
{
    static const struct {
        const char *which;
        const char *want;
    } cases[] = {
        {"upper", "bad attribute name \"Bad\""},
        {"empty", "bad attribute name \"\""},
        {"dash", "bad attribute name \"a-b\""},
        {"long", "bad attribute name"},
        {"duplicate", "duplicate attribute \"ok\""},
        {"many", "too many attributes"},
    };
    STRBUF *err = strbuf_alloc(0);

    (void) state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int status = unit_fork(put_panic_child, (void *) cases[i].which, err);

        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
            fail_msg("%s: status 0x%x, want SIGABRT", cases[i].which, status);
        if (strstr(err->data, cases[i].want) == NULL)
            fail_msg("%s: stderr \"%s\"", cases[i].which, err->data);
    }
    strbuf_free(&err);
}

static void test_connect(void **state)
{
    struct sockaddr_un sun;
    STRBUF *err = strbuf_alloc(0);
    IPC_MSG *m = ipc_msg_alloc();
    IPC_MSG *got = ipc_msg_alloc();
    STRBUF *name = strbuf_alloc(0);
    STREAM *c;
    STREAM *s;
    int saved_cwd;
    int lfd;
    int cfd;
    int afd;

    (void) state;
    assert_true((saved_cwd = open(".", O_RDONLY | O_DIRECTORY)) >= 0);
    assert_int_equal(chdir(unit_tmpdir()), 0);
    assert_int_equal(mkdir("private", 0755), 0);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, "private/svc", sizeof("private/svc"));
    assert_true((lfd = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0);
    assert_int_equal(bind(lfd, (struct sockaddr *) &sun, sizeof(sun)), 0);
    assert_int_equal(listen(lfd, 5), 0);

    cfd = ipc_connect("private", "svc", err);
    if (cfd < 0)
        fail_msg("ipc_connect: %s", err->data);
    assert_int_equal(err->len, 0);
    assert_true((afd = accept(lfd, NULL, NULL)) >= 0);
    c = stream_open(cfd, 5, 1024);
    s = stream_open(afd, 5, 1024);
    ipc_put_str(m, "request", "ping");
    assert_int_equal(ipc_write(c, m), 0);
    assert_int_equal(ipc_read(s, got, IPC_RECORD_MAX, err), 1);
    assert_string_equal(ipc_find(got, "request")->value, "ping");
    ipc_msg_reset(m);
    ipc_put_str(m, "reply", "pong");
    assert_int_equal(ipc_write(s, m), 0);
    assert_int_equal(ipc_read(c, got, IPC_RECORD_MAX, err), 1);
    assert_string_equal(ipc_find(got, "reply")->value, "pong");
    stream_close(&c);
    assert_int_equal(ipc_read(s, got, IPC_RECORD_MAX, err), 0);
    stream_close(&s);

    /* A service that is not there: the error names the socket. */
    assert_int_equal(ipc_connect("private", "nosuch", err), -1);
    assert_non_null(strstr(err->data, "private/nosuch"));
    assert_non_null(strstr(err->data, strerror(ENOENT)));
    assert_int_equal(ipc_connect("public", "svc", err), -1);
    assert_non_null(strstr(err->data, "public/svc"));

    /* Not a socket. */
    unit_write_file("private/plain", "");
    assert_int_equal(ipc_connect("private", "plain", err), -1);
    assert_non_null(strstr(err->data, "private/plain"));

    /* A name that does not fit in sun_path. */
    for (size_t i = 0; i < sizeof(sun.sun_path); i++)
        strbuf_addch(name, 'n');
    assert_int_equal(ipc_connect("private", name->data, err), -1);
    assert_non_null(strstr(err->data, "socket name too long: private/nnn"));

    close(lfd);
    assert_int_equal(fchdir(saved_cwd), 0);
    close(saved_cwd);
    ipc_msg_free(&m);
    ipc_msg_free(&got);
    strbuf_free(&err);
    strbuf_free(&name);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_encode_bytes),
        cmocka_unit_test(test_round_trip_str),
        cmocka_unit_test(test_round_trip_long),
        cmocka_unit_test(test_round_trip_data),
        /* Before the first thread: under valgrind, an aborting child
         * would report the exited thread's cached stack as lost. */
        cmocka_unit_test(test_put_panics),
        cmocka_unit_test(test_decode_limits_ok),
        cmocka_unit_test(test_decode_malformed),
        cmocka_unit_test(test_decode_too_long_too_many),
        cmocka_unit_test(test_decode_prefixes),
        cmocka_unit_test(test_write_read),
        cmocka_unit_test(test_read_dribble),
        cmocka_unit_test(test_read_eof_inside),
        cmocka_unit_test(test_read_limit),
        cmocka_unit_test(test_read_timeout),
        cmocka_unit_test(test_read_io_error),
        cmocka_unit_test(test_scan_ok),
        cmocka_unit_test(test_scan_strict),
        cmocka_unit_test(test_connect),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
