/*
 * test_showq - the queue listing, against golden text written from
 * Postfix's format strings (showq_compat.c, showq_json.c, long queue IDs):
 * header, rows, marks (* active, ! hold, # forced to expire), long IDs
 * and addresses that push the columns, "(reason)" lines (when the reason
 * changes, "(reason unavailable)", no padding past 76 columns), defer log
 * recipients first and done ones left out, Kbytes rounding,
 * Request/Requests, the empty queue, JSON and its escaping; which files
 * are listed (queue order, ID order, hashed subdirectories, not-ready,
 * corrupt (truncated, NUL in an address, an oversized record), non-regular
 * and misnamed files, maildrop files without a size or time record, a
 * malformed size record); files written with the queue_file writer;
 * output errors; showq_find and showq_format_time.
 * One test compares with the output of a real Postfix 3.7.11.
 */
#include "unit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <utime.h>

#include "mail/dsn_log.h"
#include "mail/queue_file.h"
#include "mail/record.h"
#include "mail/showq.h"

#define SP10    "          "
#define SP47    SP10 SP10 SP10 SP10 "       "
#define RCPT(a) SP47 a "\n"
#define HEADER  "----Queue ID----- --Size-- ---Arrival Time---- " \
                "--Sender/Recipient------\n"

/* --- a queue directory per test ---------------------------------------- */

static void new_queue(const char *name)
{
    static const char *const dirs[] = {
        "tmp", "maildrop", "incoming", "active", "deferred", "hold",
        "defer", NULL,
    };
    STRBUF *path = strbuf_alloc(0);

    strbuf_printf(path, "%s/%s", unit_tmpdir(), name);
    assert_int_equal(mkdir(path->data, 0755), 0);
    assert_int_equal(chdir(path->data), 0);
    for (const char *const *dp = dirs; *dp; dp++)
        assert_int_equal(mkdir(*dp, 0700), 0);
    strbuf_free(&path);
}

static void put(const char *path, const char *data, size_t len, mode_t mode)
{
    int     fd;

    assert_true((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600)) >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t) len);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

/*
 * A queue file as cleanup writes it: size, time, sender, then for each
 * recipient O and R (D when it starts with "D:"), the content, the end.
 * arrival 0: no time record; sender NULL: none; with_size 0: no size
 * record (a maildrop file).  offsets_r gets each R/D record's offset.
 */
static void build(STRBUF *out, long arrival, const char *sender,
                  const char *const *rcpts, const char *content,
                  int with_size, long *offsets_r)
{
    STRBUF *body = strbuf_alloc(256);
    STRBUF *tmp = strbuf_alloc(64);
    size_t head = with_size ? 2 + 63 : 0;
    long    count = 0;
    size_t  content_offset;

    if (arrival) {
        strbuf_printf(tmp, "%ld 123456", arrival);
        rec_encode(body, QREC_TIME, tmp->data, tmp->len);
    }
    if (sender)
        rec_encode(body, QREC_SENDER, sender, strlen(sender));
    rec_encode(body, QREC_ATTR, "origin=smtpd", 12);
    for (; rcpts && *rcpts; rcpts++, count++) {
        int     done = strncmp(*rcpts, "D:", 2) == 0;
        const char *addr = *rcpts + (done ? 2 : 0);

        rec_encode(body, QREC_ORIG_RCPT, addr, strlen(addr));
        if (offsets_r)
            offsets_r[count] = (long) (head + body->len);
        rec_encode(body, done ? QREC_DONE : QREC_RCPT, addr, strlen(addr));
    }
    content_offset = head + body->len;
    rec_encode(body, QREC_CONTENT, "", 0);
    rec_encode(body, QREC_DATA, content, strlen(content));
    rec_encode(body, QREC_CONTENT_END, "", 0);
    rec_encode(body, QREC_END, "", 0);
    strbuf_reset(out);
    if (with_size) {
        strbuf_printf(tmp, "%15ld %15ld %15ld %15ld", (long) strlen(content),
                      (long) content_offset, count, 0L);
        rec_encode(out, QREC_SIZE, tmp->data, tmp->len);
        assert_int_equal(out->len, head);
    }
    strbuf_append(out, body->data, body->len);
    strbuf_free(&body);
    strbuf_free(&tmp);
}

static void put_msg(const char *path, long arrival, const char *sender,
                    const char *const *rcpts, const char *content,
                    long *offsets_r)
{
    STRBUF *buf = strbuf_alloc(256);

    build(buf, arrival, sender, rcpts, content, 1, offsets_r);
    put(path, buf->data, buf->len, 0700);
    strbuf_free(&buf);
}

/* --- capturing a listing ----------------------------------------------- */

typedef struct CAPTURE {
    STRBUF *out;
    STRBUF *warnings;
    int     fail_after;                 /* write calls before failing; -1 */
} CAPTURE;

static int capture_write(const char *data, size_t len, void *ctx)
{
    CAPTURE *c = ctx;

    if (c->fail_after == 0)
        return -1;
    if (c->fail_after > 0)
        c->fail_after--;
    strbuf_append(c->out, data, len);
    return 0;
}

static void capture_warn(const char *text, void *ctx)
{
    CAPTURE *c = ctx;

    strbuf_printf_append(c->warnings, "%s\n", text);
}

/* The listing in format; warnings (if wanted) into *warnings_r. */
static char *list(int format, STRBUF **warnings_r)
{
    CAPTURE c = {strbuf_alloc(256), strbuf_alloc(64), -1};
    SHOWQ_OUTPUT out = {capture_write, capture_warn, &c};
    STRBUF *err = strbuf_alloc(0);

    assert_int_equal(showq_list(format, &out, err), 0);
    strbuf_free(&err);
    if (warnings_r)
        *warnings_r = c.warnings;
    else
        strbuf_free(&c.warnings);
    return strbuf_export(&c.out);
}

static void assert_listing(int format, const char *want)
{
    char   *got = list(format, NULL);

    assert_string_equal(got, want);
    free(got);
}

/* --- golden listings --------------------------------------------------- */

static void test_empty(void **state)
{
    (void) state;
    new_queue("empty");
    assert_listing(SHOWQ_TEXT, "Mail queue is empty\n");
    assert_listing(SHOWQ_JSON, "");
    /* No queue directories at all is an empty queue too. */
    assert_int_equal(chdir(unit_tmpdir()), 0);
    assert_listing(SHOWQ_TEXT, "Mail queue is empty\n");
}

/* Every queue, marks, long IDs and addresses, reasons, the summary. */
static void golden_queue(void)
{
    static const char *const maildrop[] = {"x@y.test", NULL};
    static const char *const active[] = {"a@b", NULL};
    static const char *const incoming[] = {
        "another-very-long-recipient-address@subdomain.example.org", NULL,
    };
    static const char *const deferred[] = {
        "carol@remote.test", "D:dave@remote.test", "erin@remote.test", NULL,
    };
    static const char *const hold[] = {"bob@x.test", NULL};
    STRBUF *buf = strbuf_alloc(256);
    STRBUF *big = strbuf_alloc(3000);
    DSN_LOG_ENTRY e = {.status = "4.4.1", .action = "delayed"};
    STRBUF *err = strbuf_alloc(0);
    long    offs[8];
    struct stat st;

    build(buf, 1795738900, "root", maildrop, "hi\n", 0, NULL);
    put("maildrop/4jbDdp0000zB", buf->data, buf->len, 0744);
    assert_int_equal(stat("maildrop/4jbDdp0000zB", &st), 0);
    assert_int_equal(st.st_size, 70);
    for (int i = 0; i < 3000; i++)
        strbuf_addch(big, 'x');
    put_msg("active/4jbDds6GYFz1bcVB", 1795738960,
            "user with space@example.org", active, big->data, NULL);
    put_msg("incoming/4jbDdt6GYFzBCDFGH", 1795738970,
            "a-very-long-sender-address-that-goes-on@example.org", incoming,
            "Subject: x\n\nbody\n", NULL);
    assert_int_equal(mkdir("deferred/B", 0700), 0);
    assert_int_equal(mkdir("defer/B", 0700), 0);
    put_msg("deferred/B/4jbDdq6GYFz1bcV8", 1795738946, "alice@example.org",
            deferred, "Subject: hi\nFrom: alice\n\nbody line\n", offs);
    e.recipient = "carol@remote.test";
    e.offset = offs[0];
    e.reason = "connect to 127.0.0.1[127.0.0.1]:9: Connection refused";
    assert_int_equal(dsn_log_append("defer/B/4jbDdq6GYFz1bcV8", &e, err), 0);
    e.recipient = "dave@remote.test";   /* done since: left out */
    e.offset = offs[1];
    assert_int_equal(dsn_log_append("defer/B/4jbDdq6GYFz1bcV8", &e, err), 0);
    e.recipient = "frank@remote.test";  /* not in the file: shown */
    e.offset = 0;
    e.reason = "host not found";
    assert_int_equal(dsn_log_append("defer/B/4jbDdq6GYFz1bcV8", &e, err), 0);
    put_msg("hold/4jbDdr6GYFz1bcV9", 1795738950, "", hold,
            "Subject: bounce\n\nx\n", NULL);
    strbuf_free(&buf);
    strbuf_free(&big);
    strbuf_free(&err);
}

static void test_golden_text(void **state)
{
    (void) state;
    new_queue("golden-text");
    golden_queue();
    assert_listing(SHOWQ_TEXT,
        HEADER
        "4jbDdp0000zB            70 Fri Nov 27 00:21:40 root\n"
        RCPT("x@y.test")
        "\n"
        "4jbDds6GYFz1bcVB*     3000 Fri Nov 27 00:22:40 "
        "\"user with space\"@example.org\n"
        RCPT("a@b")
        "\n"
        "4jbDdt6GYFzBCDFGH       17 Fri Nov 27 00:22:50 "
        "a-very-long-sender-address-that-goes-on@example.org\n"
        RCPT("another-very-long-recipient-address@subdomain.example.org")
        "\n"
        "4jbDdq6GYFz1bcV8        35 Fri Nov 27 00:22:26 alice@example.org\n"
        SP10 SP10 "   "
        "(connect to 127.0.0.1[127.0.0.1]:9: Connection refused)\n"
        RCPT("carol@remote.test")
        SP10 SP10 SP10 SP10 SP10 SP10 "  "
        "(host not found)\n"
        RCPT("frank@remote.test")
        SP10 SP10 SP10 SP10 SP10 "        "
        "(reason unavailable)\n"
        RCPT("erin@remote.test")
        "\n"
        "4jbDdr6GYFz1bcV9!       19 Fri Nov 27 00:22:30 MAILER-DAEMON\n"
        RCPT("bob@x.test")
        "\n"
        "-- 3 Kbytes in 5 Requests.\n");
}

static void test_golden_json(void **state)
{
    (void) state;
    new_queue("golden-json");
    golden_queue();
    assert_listing(SHOWQ_JSON,
        "{\"queue_name\": \"maildrop\", \"queue_id\": \"4jbDdp0000zB\", "
        "\"arrival_time\": 1795738900, \"message_size\": 70, "
        "\"forced_expire\": false, \"sender\": \"root\", \"recipients\": "
        "[{\"address\": \"x@y.test\"}]}\n"
        "{\"queue_name\": \"active\", \"queue_id\": \"4jbDds6GYFz1bcVB\", "
        "\"arrival_time\": 1795738960, \"message_size\": 3000, "
        "\"forced_expire\": false, \"sender\": "
        "\"\\\"user with space\\\"@example.org\", \"recipients\": "
        "[{\"address\": \"a@b\"}]}\n"
        "{\"queue_name\": \"incoming\", \"queue_id\": \"4jbDdt6GYFzBCDFGH\", "
        "\"arrival_time\": 1795738970, \"message_size\": 17, "
        "\"forced_expire\": false, \"sender\": "
        "\"a-very-long-sender-address-that-goes-on@example.org\", "
        "\"recipients\": [{\"address\": "
        "\"another-very-long-recipient-address@subdomain.example.org\"}]}\n"
        "{\"queue_name\": \"deferred\", \"queue_id\": \"4jbDdq6GYFz1bcV8\", "
        "\"arrival_time\": 1795738946, \"message_size\": 35, "
        "\"forced_expire\": false, \"sender\": \"alice@example.org\", "
        "\"recipients\": [{\"address\": \"carol@remote.test\", "
        "\"delay_reason\": \"connect to 127.0.0.1[127.0.0.1]:9: Connection "
        "refused\"}, {\"address\": \"frank@remote.test\", \"delay_reason\": "
        "\"host not found\"}, {\"address\": \"erin@remote.test\"}]}\n"
        "{\"queue_name\": \"hold\", \"queue_id\": \"4jbDdr6GYFz1bcV9\", "
        "\"arrival_time\": 1795738950, \"message_size\": 19, "
        "\"forced_expire\": false, \"sender\": \"MAILER-DAEMON\", "
        "\"recipients\": [{\"address\": \"bob@x.test\"}]}\n");
}

/* One message: "Request"; Kbytes round down. */
static void test_kbytes(void **state)
{
    static const char *const rcpts[] = {"a@b", NULL};
    STRBUF *big = strbuf_alloc(0);

    (void) state;
    new_queue("kbytes");
    for (int i = 0; i < 1023; i++)
        strbuf_addch(big, 'x');
    put_msg("incoming/4jbDdq6GYFz1bcV8", 1795738946, "s@x", rcpts,
            big->data, NULL);
    assert_listing(SHOWQ_TEXT,
        HEADER
        "4jbDdq6GYFz1bcV8      1023 Fri Nov 27 00:22:26 s@x\n"
        RCPT("a@b")
        "\n"
        "-- 0 Kbytes in 1 Request.\n");
    strbuf_addch(big, 'x');
    put_msg("incoming/4jbDdr6GYFz1bcV8", 1795738946, "s@x", rcpts,
            big->data, NULL);
    assert_listing(SHOWQ_TEXT,
        HEADER
        "4jbDdq6GYFz1bcV8      1023 Fri Nov 27 00:22:26 s@x\n"
        RCPT("a@b")
        "\n"
        "4jbDdr6GYFz1bcV8      1024 Fri Nov 27 00:22:26 s@x\n"
        RCPT("a@b")
        "\n"
        "-- 1 Kbytes in 2 Requests.\n");
    strbuf_free(&big);
}

/*
 * A reason line when the reason changes, none for a repeat, "(reason
 * unavailable)" after one with a reason; 76 columns and beyond.
 */
static void test_reason_lines(void **state)
{
    static const char *const rcpts[] = {
        "a@x", "b@x", "c@x", "d@x", "e@x", "f@x", "g@x", NULL,
    };
    static const char r75[] =
        "7654321098765432109876543210987654321098765432109876543210987654"
        "32109876543";
    static const char r80[] =
        "8765432109876543210987654321098765432109876543210987654321098765"
        "4321098765432109";
    const char *reasons[] = {"one", "one", "two", r75, r80, NULL, NULL};
    DSN_LOG_ENTRY e = {.status = "4.4.1", .action = "delayed"};
    STRBUF *err = strbuf_alloc(0);
    STRBUF *want = strbuf_alloc(0);
    long    offs[8];
    char   *got;

    (void) state;
    assert_int_equal(strlen(r75), 75);
    assert_int_equal(strlen(r80), 80);
    new_queue("reasons");
    put_msg("deferred/4jbDdq6GYFz1bcV8", 1795738946, "s@x", rcpts, "x\n",
            offs);
    for (int i = 0; i < 5; i++) {
        e.recipient = (char *) rcpts[i];
        e.offset = offs[i];
        e.reason = (char *) reasons[i];
        assert_int_equal(dsn_log_append("defer/4jbDdq6GYFz1bcV8", &e, err),
                         0);
    }
    strbuf_printf(want,
        HEADER
        "4jbDdq6GYFz1bcV8         2 Fri Nov 27 00:22:26 s@x\n"
        "%73s(one)\n" RCPT("a@x") RCPT("b@x")
        "%73s(two)\n" RCPT("c@x")
        " (%s)\n" RCPT("d@x")
        "(%s)\n" RCPT("e@x")
        "%58s(reason unavailable)\n" RCPT("f@x") RCPT("g@x")
        "\n-- 0 Kbytes in 1 Request.\n", "", "", r75, r80, "");
    got = list(SHOWQ_TEXT, NULL);
    assert_string_equal(got, want->data);
    free(got);
    strbuf_free(&err);
    strbuf_free(&want);
}

/*
 * Without a defer log nothing is filtered; with one, a queue recipient
 * with a logged address is not repeated (Postfix's duplicate filter),
 * and a logged recipient whose record is done is left out.
 */
static void test_recipient_selection(void **state)
{
    static const char *const rcpts[] = {
        "dup@x", "dup@x", "D:done@x", "other@x", NULL,
    };
    DSN_LOG_ENTRY e = {.recipient = "dup@x", .reason = "later"};
    STRBUF *err = strbuf_alloc(0);
    long    offs[8];

    (void) state;
    new_queue("selection");
    put_msg("deferred/4jbDdq6GYFz1bcV8", 1795738946, "s@x", rcpts, "x\n",
            offs);
    assert_listing(SHOWQ_TEXT,
        HEADER
        "4jbDdq6GYFz1bcV8         2 Fri Nov 27 00:22:26 s@x\n"
        RCPT("dup@x") RCPT("dup@x") RCPT("other@x")
        "\n-- 0 Kbytes in 1 Request.\n");
    /* Logged by address only (an old-style entry has no offset). */
    assert_int_equal(dsn_log_append("defer/4jbDdq6GYFz1bcV8", &e, err), 0);
    e.recipient = "done@x";
    assert_int_equal(dsn_log_append("defer/4jbDdq6GYFz1bcV8", &e, err), 0);
    assert_listing(SHOWQ_TEXT,
        HEADER
        "4jbDdq6GYFz1bcV8         2 Fri Nov 27 00:22:26 s@x\n"
        SP10 SP10 SP10 SP10 SP10 SP10 SP10 " "
        "(later)\n" RCPT("dup@x")
        SP10 SP10 SP10 SP10 SP10 "        "
        "(reason unavailable)\n" RCPT("other@x")
        "\n-- 0 Kbytes in 1 Request.\n");
    strbuf_free(&err);
}

/* Text makes everything printable; JSON escapes, as postqueue -j. */
static void test_escaping(void **state)
{
    static const char *const rcpts[] = {
        "tab\there@x", "caf\xc3\xa9@x", "bad\xff" "byte@x", NULL,
    };
    DSN_LOG_ENTRY e = {.recipient = "tab\there@x", .reason = "said \"no\""};
    STRBUF *err = strbuf_alloc(0);
    long    offs[8];

    (void) state;
    new_queue("escaping");
    put_msg("deferred/4jbDdq6GYFz1bcV8", 1795738946,
            "a\\b\x01\x7f\"q\"@x", rcpts, "x\n", offs);
    e.offset = offs[0];
    assert_int_equal(dsn_log_append("defer/4jbDdq6GYFz1bcV8", &e, err), 0);
    assert_listing(SHOWQ_TEXT,
        HEADER
        "4jbDdq6GYFz1bcV8         2 Fri Nov 27 00:22:26 "
        "\"a\\\\b??\\\"q\\\"\"@x\n"
        SP10 SP10 SP10 SP10 SP10 SP10 "       "
        "(said \"no\")\n" RCPT("\"tab?here\"@x")
        SP10 SP10 SP10 SP10 SP10 "        "
        "(reason unavailable)\n" RCPT("caf\xc3\xa9@x")
        RCPT("bad?byte@x")
        "\n-- 0 Kbytes in 1 Request.\n");
    assert_listing(SHOWQ_JSON,
        "{\"queue_name\": \"deferred\", \"queue_id\": \"4jbDdq6GYFz1bcV8\", "
        "\"arrival_time\": 1795738946, \"message_size\": 2, "
        "\"forced_expire\": false, "
        "\"sender\": \"\\\"a\\\\\\\\b\\u0001\\u007F\\\\\\\"q\\\\\\\"\\\"@x\", "
        "\"recipients\": [{\"address\": \"\\\"tab?here\\\"@x\", "
        "\"delay_reason\": \"said \\\"no\\\"\"}, "
        "{\"address\": \"caf\xc3\xa9@x\"}, {\"address\": \"bad?byte@x\"}]}\n");
    strbuf_free(&err);
}

static void test_json_quote(void **state)
{
    STRBUF *out = strbuf_alloc(0);

    (void) state;
    showq_json_quote(out, "\b\f\n\r\t\x01\x1f\x7f \"\\/ \xc3\xa9\xff");
    assert_string_equal(out->data,
                        "\\b\\f\\n\\r\\t\\u0001\\u001F\\u007F \\\"\\\\/ "
                        "\xc3\xa9?");
    strbuf_free(&out);
}

/*
 * The same queue as a real Postfix 3.7.11 showed it (scratch instance,
 * enable_long_queue_ids = yes, relayhost [127.0.0.1]:9, TZ=UTC; "postsuper
 * -e" on the first deferred message, "postsuper -h" on the bounce, the
 * last message still in maildrop/ with Postfix stopped), captured with
 * "postqueue -p" and "postqueue -j".  Sizes: Postfix's content sizes,
 * and the maildrop file's own size (no size record).  The defer log
 * entries are written by dsn_log_append() from the raw addresses, as
 * Postfix's bounce service writes them.
 */
static void test_matches_postfix(void **state)
{
    static const char *const alice[] = {
        "carol@remote.test", "dave@remote.test", NULL,
    };
    static const char *const john[] = {
        "tab here@remote.test",
        "a-very-long-recipient-address-for-testing-the-column@"
        "subdomain.remote.test", NULL,
    };
    static const char *const bounce[] = {"erin@remote.test", NULL};
    static const char *const bob[] = {"zed@remote.test", NULL};
    static const struct {
        const char *path;
        long    arrival;
        const char *sender;
        const char *const *rcpts;
        size_t  size;
    } msgs[] = {
        {"deferred/2/4jbKm70zsqz1bd3B", 1795752823, "alice@example.org",
         alice, 279},
        {"deferred/A/4jbKmX4qvcz1bcTw", 1795752844,
         "john@scratch.example.test", john, 280},
        {"hold/4jbKm71QMjz1bccD", 1795752823, "", bounce, 268},
    };
    DSN_LOG_ENTRY e = {.status = "4.4.1", .action = "delayed",
        .reason = "connect to 127.0.0.1[127.0.0.1]:9: Connection refused"};
    STRBUF *buf = strbuf_alloc(0);
    STRBUF *content = strbuf_alloc(0);
    STRBUF *log = strbuf_alloc(0);
    STRBUF *err = strbuf_alloc(0);
    long    offs[4];

    (void) state;
    new_queue("postfix");
    assert_int_equal(mkdir("deferred/2", 0700), 0);
    assert_int_equal(mkdir("deferred/A", 0700), 0);
    assert_int_equal(mkdir("defer/2", 0700), 0);
    assert_int_equal(mkdir("defer/3", 0700), 0);
    assert_int_equal(mkdir("defer/A", 0700), 0);
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        const char *id = strrchr(msgs[i].path, '/') + 1;

        strbuf_reset(content);
        while (content->len < msgs[i].size)
            strbuf_addch(content, 'x');
        put_msg(msgs[i].path, msgs[i].arrival, msgs[i].sender,
                msgs[i].rcpts, content->data, offs);
        strbuf_printf(log, "defer/%c/%s", i == 0 ? '2' : i == 1 ? 'A' : '3',
                      id);
        for (int r = 0; msgs[i].rcpts[r]; r++) {
            e.recipient = (char *) msgs[i].rcpts[r];
            e.offset = offs[r];
            assert_int_equal(dsn_log_append(log->data, &e, err), 0);
        }
    }
    assert_int_equal(chmod(msgs[0].path, 0710), 0);
    /* The maildrop file: 108 bytes like Postfix's, no size record. */
    build(buf, 1795752855, "bob@example.org", bob, "0123456789abcde\n", 0,
          NULL);
    assert_int_equal(buf->len, 108);
    put("maildrop/4jbKml6pJMz1bcC5", buf->data, buf->len, 0744);
    assert_listing(SHOWQ_TEXT,
        "----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient---"
        "---\n"
        "4jbKml6pJMz1bcC5       108 Fri Nov 27 04:14:15 bob@example.org\n"
        "                                               zed@remote.test\n"
        "\n"
        "4jbKm70zsqz1bd3B#      279 Fri Nov 27 04:13:43 alice@example.org\n"
        "                       (connect to 127.0.0.1[127.0.0.1]:9: Connectio"
        "n refused)\n"
        "                                               carol@remote.test\n"
        "                                               dave@remote.test\n"
        "\n"
        "4jbKmX4qvcz1bcTw       280 Fri Nov 27 04:14:04 john@scratch.example."
        "test\n"
        "                       (connect to 127.0.0.1[127.0.0.1]:9: Connectio"
        "n refused)\n"
        "                                               \"tab here\"@remote.t"
        "est\n"
        "                                               a-very-long-recipient"
        "-address-for-testing-the-column@subdomain.remote.test\n"
        "\n"
        "4jbKm71QMjz1bccD!      268 Fri Nov 27 04:13:43 MAILER-DAEMON\n"
        "                       (connect to 127.0.0.1[127.0.0.1]:9: Connectio"
        "n refused)\n"
        "                                               erin@remote.test\n"
        "\n"
        "-- 0 Kbytes in 4 Requests.\n");
    assert_listing(SHOWQ_JSON,
        "{\"queue_name\": \"maildrop\", \"queue_id\": \"4jbKml6pJMz1bcC5\", "
        "\"arrival_time\": 1795752855, \"message_size\": 108, \"forced_expire"
        "\": false, \"sender\": \"bob@example.org\", \"recipients\": [{\"addr"
        "ess\": \"zed@remote.test\"}]}\n"
        "{\"queue_name\": \"deferred\", \"queue_id\": \"4jbKm70zsqz1bd3B\", "
        "\"arrival_time\": 1795752823, \"message_size\": 279, \"forced_expire"
        "\": true, \"sender\": \"alice@example.org\", \"recipients\": [{\"add"
        "ress\": \"carol@remote.test\", \"delay_reason\": \"connect to 127.0."
        "0.1[127.0.0.1]:9: Connection refused\"}, {\"address\": \"dave@remote"
        ".test\", \"delay_reason\": \"connect to 127.0.0.1[127.0.0.1]:9: Conn"
        "ection refused\"}]}\n"
        "{\"queue_name\": \"deferred\", \"queue_id\": \"4jbKmX4qvcz1bcTw\", "
        "\"arrival_time\": 1795752844, \"message_size\": 280, \"forced_expire"
        "\": false, \"sender\": \"john@scratch.example.test\", \"recipients\""
        ": [{\"address\": \"\\\"tab here\\\"@remote.test\", \"delay_reason\":"
        " \"connect to 127.0.0.1[127.0.0.1]:9: Connection refused\"}, {\"addr"
        "ess\": \"a-very-long-recipient-address-for-testing-the-column@subdom"
        "ain.remote.test\", \"delay_reason\": \"connect to 127.0.0.1[127.0.0."
        "1]:9: Connection refused\"}]}\n"
        "{\"queue_name\": \"hold\", \"queue_id\": \"4jbKm71QMjz1bccD\", \"arr"
        "ival_time\": 1795752823, \"message_size\": 268, \"forced_expire\": f"
        "alse, \"sender\": \"MAILER-DAEMON\", \"recipients\": [{\"address\": "
        "\"erin@remote.test\", \"delay_reason\": \"connect to 127.0.0.1[127.0"
        ".0.1]:9: Connection refused\"}]}\n");
    strbuf_free(&buf);
    strbuf_free(&content);
    strbuf_free(&log);
    strbuf_free(&err);
}

/* --- which files ------------------------------------------------------- */

static void test_order(void **state)
{
    static const char *const rcpts[] = {"r@x", NULL};
    static const char *const queues[] = {
        "hold", "deferred", "incoming", "active", "maildrop",
    };
    STRBUF *path = strbuf_alloc(0);
    STRBUF *ids = strbuf_alloc(0);
    char   *got;

    (void) state;
    new_queue("order");
    for (int i = 0; i < 5; i++) {
        /* Two per queue, the later ID written first. */
        strbuf_printf(path, "%s/4jbDdq6GYFz2%d", queues[i], i);
        put_msg(path->data, 1795738946, queues[i], rcpts, "x\n", NULL);
        strbuf_printf(path, "%s/4jbDdq6GYFz1%d", queues[i], i);
        put_msg(path->data, 1795738946, queues[i], rcpts, "x\n", NULL);
    }
    got = list(SHOWQ_JSON, NULL);
    for (const char *cp = got; (cp = strstr(cp, "\"queue_id\": \"")) != NULL;
         cp++)
        strbuf_printf_append(ids, "%.13s ", cp + 13);
    assert_string_equal(ids->data,
                        "4jbDdq6GYFz14 4jbDdq6GYFz24 "      /* maildrop */
                        "4jbDdq6GYFz13 4jbDdq6GYFz23 "      /* active */
                        "4jbDdq6GYFz12 4jbDdq6GYFz22 "      /* incoming */
                        "4jbDdq6GYFz11 4jbDdq6GYFz21 "      /* deferred */
                        "4jbDdq6GYFz10 4jbDdq6GYFz20 ");    /* hold */
    free(got);
    strbuf_free(&path);
    strbuf_free(&ids);
}

/* Hashed deferred/ (one and two levels) and defer/ beside flat ones. */
static void test_hashed(void **state)
{
    static const char *const rcpts[] = {"r@x", NULL};
    DSN_LOG_ENTRY e = {.recipient = "r@x", .reason = "hashed log"};
    STRBUF *err = strbuf_alloc(0);
    STRBUF *path = strbuf_alloc(0);
    char   *got;

    (void) state;
    new_queue("hashed");
    assert_int_equal(mkdir("deferred/A", 0700), 0);
    assert_int_equal(mkdir("deferred/B", 0700), 0);
    assert_int_equal(mkdir("deferred/B/C", 0700), 0);
    assert_int_equal(mkdir("defer/F", 0700), 0);
    put_msg("deferred/A/4jbDdq6GYFz3", 1795738946, "s@x", rcpts, "x\n",
            NULL);
    put_msg("deferred/B/C/4jbDdq6GYFz2", 1795738946, "s@x", rcpts, "x\n",
            NULL);
    put_msg("deferred/4jbDdq6GYFz1", 1795738946, "s@x", rcpts, "x\n", NULL);
    assert_int_equal(dsn_log_append("defer/F/4jbDdq6GYFz2", &e, err), 0);
    got = list(SHOWQ_JSON, NULL);
    assert_string_equal(got,
        "{\"queue_name\": \"deferred\", \"queue_id\": \"4jbDdq6GYFz1\", "
        "\"arrival_time\": 1795738946, \"message_size\": 2, "
        "\"forced_expire\": false, \"sender\": \"s@x\", \"recipients\": "
        "[{\"address\": \"r@x\"}]}\n"
        "{\"queue_name\": \"deferred\", \"queue_id\": \"4jbDdq6GYFz2\", "
        "\"arrival_time\": 1795738946, \"message_size\": 2, "
        "\"forced_expire\": false, \"sender\": \"s@x\", \"recipients\": "
        "[{\"address\": \"r@x\", \"delay_reason\": \"hashed log\"}]}\n"
        "{\"queue_name\": \"deferred\", \"queue_id\": \"4jbDdq6GYFz3\", "
        "\"arrival_time\": 1795738946, \"message_size\": 2, "
        "\"forced_expire\": false, \"sender\": \"s@x\", \"recipients\": "
        "[{\"address\": \"r@x\"}]}\n");
    free(got);
    /* showq_find: flat, hashed, two levels, missing. */
    assert_int_equal(showq_find("deferred", "4jbDdq6GYFz1", path), 1);
    assert_string_equal(path->data, "deferred/4jbDdq6GYFz1");
    assert_int_equal(showq_find("deferred", "4jbDdq6GYFz3", path), 1);
    assert_string_equal(path->data, "deferred/A/4jbDdq6GYFz3");
    assert_int_equal(showq_find("deferred", "4jbDdq6GYFz2", path), 1);
    assert_string_equal(path->data, "deferred/B/C/4jbDdq6GYFz2");
    assert_int_equal(showq_find("deferred", "4jbDdq6GYFz4", path), 0);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(showq_find("nosuchqueue", "4jbDdq6GYFz4", path), 0);
    strbuf_free(&err);
    strbuf_free(&path);
}

/*
 * Not ready: silently skipped.  Corrupt, unreadable as a queue file, not
 * a regular file: reported and skipped.  Names that are no queue IDs
 * (temporary names, dot files): ignored.
 */
static void test_skipped_files(void **state)
{
    static const char *const rcpts[] = {"r@x", NULL};
    STRBUF *buf = strbuf_alloc(0);
    STRBUF *warnings = NULL;
    char   *got;

    (void) state;
    new_queue("skipped");
    put_msg("incoming/4jbDdq6GYFz1", 1795738946, "s@x", rcpts, "x\n", NULL);
    put_msg("incoming/4jbDdq6GYFz2", 1795738946, "s@x", rcpts, "x\n", NULL);
    assert_int_equal(chmod("incoming/4jbDdq6GYFz2", 0600), 0);
    build(buf, 1795738946, "s@x", rcpts, "x\n", 1, NULL);
    put("incoming/4jbDdq6GYFz3", buf->data, 30, 0700);      /* truncated */
    put("incoming/4jbDdq6GYFz4", "garbage\xff\xff\xff\xff\xff", 12, 0700);
    build(buf, 1795738946, NULL, rcpts, "x\n", 1, NULL);
    put("incoming/4jbDdq6GYFz5", buf->data, buf->len, 0700); /* no sender */
    assert_int_equal(mkdir("incoming/4jbDdq6GYFz6", 0700), 0);
    assert_int_equal(mkfifo("incoming/4jbDdq6GYFz7", 0700), 0);
    put_msg("incoming/.4jbDdq6GYFz8", 1795738946, "s@x", rcpts, "x\n", NULL);
    put_msg("incoming/4jbDdq6GYFz9.tmp", 1795738946, "s@x", rcpts, "x\n",
            NULL);
    put("incoming/4jbDdq6GYFzB", "", 0, 0700);             /* empty */
    build(buf, 1795738946, "s\001x@y", rcpts, "x\n", 1, NULL);
    *(char *) memchr(buf->data, 1, buf->len) = 0;          /* NUL */
    put("incoming/4jbDdq6GYFzC", buf->data, buf->len, 0700);
    /* A record that claims 16 MB. */
    put("incoming/4jbDdq6GYFzD", "S\x80\x80\x80\x08xxxx", 9, 0700);
    got = list(SHOWQ_TEXT, &warnings);
    assert_string_equal(got,
        HEADER
        "4jbDdq6GYFz1             2 Fri Nov 27 00:22:26 s@x\n"
        RCPT("r@x")
        "\n-- 0 Kbytes in 1 Request.\n");
    assert_string_equal(warnings->data,
        "4jbDdq6GYFz3: corrupt queue file: truncated record\n"
        "4jbDdq6GYFz4: corrupt queue file: truncated record\n"
        "4jbDdq6GYFz5: corrupt queue file: recipient before sender\n"
        "incoming/4jbDdq6GYFz6: not a regular file\n"
        "incoming/4jbDdq6GYFz7: not a regular file\n"
        "4jbDdq6GYFzB: corrupt queue file: premature end of file\n"
        "4jbDdq6GYFzC: corrupt queue file: NUL in address\n"
        "4jbDdq6GYFzD: corrupt queue file: record of 16777216 bytes "
        "exceeds the limit of 1048576\n");
    free(got);
    strbuf_free(&warnings);
    strbuf_free(&buf);
}

/*
 * A maildrop file without a size record: the file size; without a time
 * record: the file's mtime.  A malformed size record: the file size and a
 * warning (Postfix).  The group execute bit: forced to expire.
 */
static void test_fallbacks(void **state)
{
    static const char *const rcpts[] = {"r@x", NULL};
    STRBUF *buf = strbuf_alloc(0);
    struct utimbuf ut = {1795738000, 1795738000};
    char   *got;

    (void) state;
    new_queue("fallbacks");
    build(buf, 0, "s@x", rcpts, "hello\n", 0, NULL);
    put("maildrop/4jbDdq6GYFz1", buf->data, buf->len, 0744);
    assert_int_equal(utime("maildrop/4jbDdq6GYFz1", &ut), 0);
    build(buf, 1795738946, "s@x", rcpts, "hello\n", 1, NULL);
    memcpy(buf->data + 2, "           abc", 14);
    put("incoming/4jbDdq6GYFz2", buf->data, buf->len, 0700);
    put_msg("deferred/4jbDdq6GYFz3", 1795738946, "s@x", rcpts, "x\n", NULL);
    assert_int_equal(chmod("deferred/4jbDdq6GYFz3", 0710), 0);
    put_msg("hold/4jbDdq6GYFz4", 1795738946, "s@x", rcpts, "x\n", NULL);
    assert_int_equal(chmod("hold/4jbDdq6GYFz4", 0710), 0);
    unit_log_reset();
    got = list(SHOWQ_TEXT, NULL);
    assert_true(unit_logged("4jbDdq6GYFz2: malformed size record"));
    assert_string_equal(got,
        HEADER
        "4jbDdq6GYFz1            43 Fri Nov 27 00:06:40 s@x\n"
        RCPT("r@x")
        "\n"
        "4jbDdq6GYFz2           127 Fri Nov 27 00:22:26 s@x\n"
        RCPT("r@x")
        "\n"
        "4jbDdq6GYFz3#            2 Fri Nov 27 00:22:26 s@x\n"
        RCPT("r@x")
        "\n"
        "4jbDdq6GYFz4!#           2 Fri Nov 27 00:22:26 s@x\n"
        RCPT("r@x")
        "\n-- 0 Kbytes in 4 Requests.\n");
    free(got);
    got = list(SHOWQ_JSON, NULL);
    assert_non_null(strstr(got, "\"queue_id\": \"4jbDdq6GYFz3\", "
                           "\"arrival_time\": 1795738946, \"message_size\": "
                           "2, \"forced_expire\": true,"));
    assert_non_null(strstr(got, "\"queue_id\": \"4jbDdq6GYFz1\", "
                           "\"arrival_time\": 1795738000, \"message_size\": "
                           "43, \"forced_expire\": false,"));
    free(got);
    strbuf_free(&buf);
}

/* Files from the queue_file writer: its size and time records. */
static void test_queue_file_writer(void **state)
{
    STRBUF *err = strbuf_alloc(0);
    STRBUF *want = strbuf_alloc(0);
    STRBUF *when = strbuf_alloc(0);
    QFILE  *q;
    QENV   *env = NULL;
    STREAM *s;
    STRBUF *path = strbuf_alloc(0);
    off_t   content;
    char   *got;

    (void) state;
    new_queue("writer");
    assert_non_null(q = qfile_create(err));
    s = qfile_stream(q);
    rec_puts(s, QREC_SENDER, "writer@example.org");
    rec_puts(s, QREC_ORIG_RCPT, "first@example.org");
    rec_puts(s, QREC_RCPT, "first@example.org");
    rec_puts(s, QREC_ORIG_RCPT, "second@example.org");
    rec_puts(s, QREC_RCPT, "second@example.org");
    content = qfile_offset(q);
    rec_put(s, QREC_CONTENT, "", 0);
    rec_puts(s, QREC_DATA, "Subject: test\n\nHello.\n");
    rec_put(s, QREC_CONTENT_END, "", 0);
    qfile_set_size(q, 22, content, 2, 0);
    strbuf_printf(path, "incoming/%s", qfile_id(q));
    assert_int_equal(qfile_commit(&q, "incoming", err), 0);
    /* The reader of the queue_file module agrees on the time. */
    assert_int_equal(qenv_read(path->data, &env, err), 0);
    showq_format_time(when, env->arrival_sec);
    strbuf_printf(want, HEADER "%-17s %8d %19.19s %s\n"
                  RCPT("first@example.org") RCPT("second@example.org")
                  "\n-- 0 Kbytes in 1 Request.\n",
                  env->id, 22, when->data, "writer@example.org");
    got = list(SHOWQ_TEXT, NULL);
    assert_string_equal(got, want->data);
    free(got);
    qenv_free(&env);
    strbuf_free(&err);
    strbuf_free(&want);
    strbuf_free(&when);
    strbuf_free(&path);
}

/* --- failures and helpers ---------------------------------------------- */

static void test_output_error(void **state)
{
    static const char *const rcpts[] = {"r@x", NULL};
    CAPTURE c = {strbuf_alloc(0), strbuf_alloc(0), 0};
    SHOWQ_OUTPUT out = {capture_write, capture_warn, &c};
    STRBUF *err = strbuf_alloc(0);

    (void) state;
    new_queue("output-error");
    put_msg("incoming/4jbDdq6GYFz1", 1795738946, "s@x", rcpts, "x\n", NULL);
    assert_int_equal(showq_list(SHOWQ_TEXT, &out, err), -1);
    assert_string_equal(err->data, "output write error");
    strbuf_free(&c.out);
    strbuf_free(&c.warnings);
    strbuf_free(&err);
}

/* A queue that cannot be read fails the listing, naming it. */
static void test_bad_queue_dir(void **state)
{
    CAPTURE c = {strbuf_alloc(0), strbuf_alloc(0), -1};
    SHOWQ_OUTPUT out = {capture_write, capture_warn, &c};
    STRBUF *err = strbuf_alloc(0);

    (void) state;
    new_queue("bad-dir");
    assert_int_equal(rmdir("active"), 0);
    put("active", "x", 1, 0600);
    assert_int_equal(showq_list(SHOWQ_TEXT, &out, err), -1);
    assert_non_null(strstr(err->data, "open queue directory active"));
    assert_non_null(strstr(err->data, strerror(ENOTDIR)));
    strbuf_free(&c.out);
    strbuf_free(&c.warnings);
    strbuf_free(&err);
}

static void test_format_time(void **state)
{
    STRBUF *out = strbuf_alloc(0);

    (void) state;
    showq_format_time(out, 1795738946);
    assert_string_equal(out->data, "Fri Nov 27 00:22:26 2026");
    strbuf_reset(out);
    showq_format_time(out, 1780790400);         /* 2026-06-07 */
    assert_string_equal(out->data, "Sun Jun  7 00:00:00 2026");
    strbuf_reset(out);
    showq_format_time(out, 0);
    assert_string_equal(out->data, "Thu Jan  1 00:00:00 1970");
    strbuf_reset(out);
    showq_format_time(out, 0x7fffffffffffffffL);
    assert_string_equal(out->data, "??");
    strbuf_free(&out);
}

static void test_id_ok(void **state)
{
    STRBUF *longid = strbuf_alloc(0);

    (void) state;
    assert_true(showq_id_ok("4jbDdq6GYFz1bcV8"));
    assert_true(showq_id_ok("6398BA74400"));
    assert_true(showq_id_ok("a_b"));
    assert_false(showq_id_ok(""));
    assert_false(showq_id_ok("../etc"));
    assert_false(showq_id_ok("a.b"));
    assert_false(showq_id_ok("a/b"));
    assert_false(showq_id_ok("caf\xc3\xa9"));
    for (int i = 0; i < 64; i++)
        strbuf_addch(longid, 'B');
    assert_true(showq_id_ok(longid->data));
    strbuf_addch(longid, 'B');
    assert_false(showq_id_ok(longid->data));
    strbuf_free(&longid);
}

static int setup(void **state)
{
    (void) state;
    setenv("TZ", "UTC", 1);
    tzset();
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_golden_text),
        cmocka_unit_test(test_golden_json),
        cmocka_unit_test(test_kbytes),
        cmocka_unit_test(test_reason_lines),
        cmocka_unit_test(test_recipient_selection),
        cmocka_unit_test(test_escaping),
        cmocka_unit_test(test_json_quote),
        cmocka_unit_test(test_matches_postfix),
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_hashed),
        cmocka_unit_test(test_skipped_files),
        cmocka_unit_test(test_fallbacks),
        cmocka_unit_test(test_queue_file_writer),
        cmocka_unit_test(test_output_error),
        cmocka_unit_test(test_bad_queue_dir),
        cmocka_unit_test(test_format_time),
        cmocka_unit_test(test_id_ok),
    };

    return cmocka_run_group_tests(tests, setup, NULL);
}
